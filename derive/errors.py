"""The one error type users see, and how it reads.

Every error chainrule raises for bad input is a :class:`ChainruleError`, whose message fits on one
line and names the file, the field path and what was expected. The command line prints it and
exits 2; nothing else is caught.
"""

from __future__ import annotations

from typing import Any

MAX_SHOWN = 60


def shown(value: Any) -> str:
    """A short, one-line rendering of a user value for an error message."""
    text = repr(value).replace("\n", "\\n")
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


class ChainruleError(ValueError):
    """Bad input: a spec, a formula, a claim or a command line that cannot be used.

    A :class:`ValueError`, so that code catching bad values catches it; its ``str`` is the one
    line the command line prints after ``chainrule: error:``.

    Args:
        source: the file (or ``<string>``) the input came from.
        field: the dotted field path inside it (``layers[1].activation``), or ``""``.
        message: what was expected and what was found.
    """

    def __init__(self, source: str, field: str, message: str) -> None:
        self.source = source
        self.field = field
        self.message = " ".join(message.split())
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [p for p in (self.source, self.field) if p]
        text = ": ".join(parts + [self.message])
        return text.replace("\r", "\\r").replace("\n", "\\n")  # one line, whatever a file is called


class SpecError(ChainruleError):
    """The network spec is invalid."""


class FormulaError(ChainruleError):
    """A formula (activation, loss or claim) cannot be parsed or is not allowed."""

    def __init__(self, source: str, field: str, message: str, text: str = "", column: int | None = None) -> None:
        if column is not None:
            message = f"{message} at column {column + 1} of {shown(text)}"
        super().__init__(source, field, message)
        self.column = column
