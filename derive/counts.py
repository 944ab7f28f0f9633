"""Counts in words: the one place a number is put beside its noun (``1 unit``, ``2 units``).

Every user-facing message that prints a count (spec errors, the command line's text, the report,
verify's findings) says it through :func:`count`, so none reads "1 units" or "the 1 outputs".
"""

from __future__ import annotations

#: Plurals that are not the noun plus ``s``.
IRREGULAR = {"entry": "entries", "this": "these", "is": "are", "has": "have", "was": "were", "it": "they"}


def noun(n: int, word: str, plural: str | None = None) -> str:
    """``word`` for one, else its plural (``plural``, an irregular one, or ``word + 's'``)."""
    if n == 1:
        return word
    return plural or IRREGULAR.get(word) or f"{word}s"


def count(n: int, word: str, plural: str | None = None) -> str:
    """``1 unit``, ``2 units``, ``1,024 units``, ``1 entry``, ``0 entries``."""
    return f"{n:,} {noun(n, word, plural)}"


def the(n: int, word: str, plural: str | None = None) -> str:
    """``the output`` for one, ``the 2 outputs`` for more: a definite count."""
    return f"the {word}" if n == 1 else f"the {count(n, word, plural)}"
