"""Python source for the emitted trainer: the one place where text becomes part of a ``.py`` file.

A trainer holds four kinds of places: code, string literals, comments and docstrings. Code is made
by chainrule's printers from the derivation, in names that the spec loader checked to be
identifiers, and is marked :class:`Py` where it is built. Text that comes from a user (a file
name, a description, a formula as written, a data path, a column name) goes through one escaping
function per place: :func:`literal`, :func:`comment` or :func:`docstring`. The template
environment (:func:`chainrule.codegen.trainer.render.environment`) refuses to print any string that is
not :class:`Py`, so text that skipped this module cannot reach a trainer.

Escaping keeps printable text as it is, so a formula reads the same in a comment as in the spec;
line breaks, NUL, other control characters and backslashes are written as Python escapes
(``\\n``, ``\\x00``, ``\\\\``): a comment stays one line, a docstring cannot be closed, and the file
always parses.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Py", "code", "comment", "docstring", "literal"]


class Py(str):
    """Python source that is safe to print where the template puts it."""

    __slots__ = ()


def code(text: str) -> Py:
    """Mark ``text``, made by chainrule's printers from checked identifiers, as code."""
    if any(char in text for char in "\x00\r"):
        raise ValueError(f"code with a NUL or CR character: {text!r:.60}")
    return Py(text)


def _escaped(text: str) -> str:
    # repr's body: printable characters (non-ASCII letters too) as they are; backslashes, line
    # breaks (\n, \r, U+2028 ...), NUL and other non-printables as escapes.
    return repr(str(text))[1:-1]


def comment(text: str) -> Py:
    """``text`` for after a ``#``: one line, whatever it holds."""
    return Py(_escaped(text))


def docstring(text: str) -> Py:
    """``text`` for inside a triple-quoted (not raw) docstring: it can neither close the string
    nor form an escape of its own (``\\N``, ``\\u`` are written ``\\\\N``, ``\\\\u``)."""
    return Py(_escaped(text).replace('"', '\\"'))


def literal(value: Any) -> Py:
    """``value`` (a string, number, bool, None, or a tuple, list or dict of those) as a Python
    literal that evaluates to it; a string in double quotes unless it holds one."""
    if isinstance(value, str):
        quoted = repr("'" + value)  # the ' makes repr choose " as the delimiter where it can
        return Py('"' + quoted[2:] if quoted.startswith('"') else repr(value))
    return Py(repr(value))
