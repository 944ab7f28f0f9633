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

from chainrule.codegen.trainer.layout import width as text_width

__all__ = ["Py", "code", "comment", "comment_lines", "docstring", "docstring_lines", "literal"]


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


def comment_lines(text: str, width: int) -> tuple[Py, ...]:
    """``text`` for after ``# ``, as lines of at most ``width`` characters where its words allow:
    broken at spaces, a long sum before one of its ``+`` where that keeps the line at least half
    full; the lines after the first are indented by two spaces."""
    return tuple(Py(line) for line in _wrap(_escaped(text), width, "  "))


def docstring_lines(text: str, width: int) -> tuple[Py, ...]:
    """``text`` for inside a docstring (as :func:`docstring`), broken at spaces into lines of at
    most ``width`` characters where its words allow."""
    return tuple(Py(line) for line in _wrap(str(docstring(text)), width, ""))


def _wrap(text: str, width: int, hang: str) -> list[str]:
    lines: list[str] = []
    words = text.split(" ")
    current: list[str] = []
    for word in words:
        prefix = hang if lines else ""
        if current and text_width(prefix + " ".join(current + [word])) > width:
            cut = _sum_break(current, prefix, width)
            lines.append(prefix + " ".join(current[:cut]))
            current = current[cut:]
        current.append(word)
    lines.append((hang if lines else "") + " ".join(current))
    return lines


def _sum_break(words: list[str], prefix: str, width: int) -> int:
    """Where a full line breaks: before its last ``+`` if what stays is at least half the width."""
    for index in range(len(words) - 1, 0, -1):
        if words[index] == "+" and text_width(prefix + " ".join(words[:index])) >= width // 2:
            return index
    return len(words)


def literal(value: Any) -> Py:
    """``value`` (a string, number, bool, None, or a tuple, list or dict of those) as a Python
    literal that evaluates to it, written as ruff writes it: strings in double quotes unless they
    hold more double quotes than single ones, containers on one line (the formatter breaks them)."""
    if isinstance(value, str):
        return Py(_string(value))
    if isinstance(value, tuple):
        return Py("(" + ", ".join(map(literal, value)) + ("," if len(value) == 1 else "") + ")")
    if isinstance(value, list):
        return Py("[" + ", ".join(map(literal, value)) + "]")
    if isinstance(value, dict):
        return Py("{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items()) + "}")
    return Py(repr(value))


def _string(value: str) -> str:
    quote = "'" if value.count('"') > value.count("'") else '"'
    body = []
    for char in value:
        if char == "\\":
            body.append("\\\\")
        elif char == quote:
            body.append("\\" + char)
        elif char in "'\"":
            body.append(char)
        else:
            body.append(repr(char)[1:-1])  # printable as it is; line breaks, NUL ... as escapes
    return quote + "".join(body) + quote
