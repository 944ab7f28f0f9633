"""A document printer in the manner of ruff's formatter (and Prettier's): text, line breaks, and
groups that print on one line where they fit, with the conditional pieces ruff's Python
formatting is built of. :mod:`chainrule.codegen.trainer.pyformat` builds the documents.

A document is a string, a tuple of documents, or one of the elements below. A :class:`Group`
prints *flat* (its soft line breaks as nothing or a space) when its content, and what follows it
up to the next possible line break, fits in the width; else *expanded* (its line breaks break).
Elements that name a group by ``id`` read the mode that group was printed (or measured) in.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Union

FLAT, EXPANDED = "flat", "expanded"
#: Measuring stops at the first line break (the rest may break), or must fit every line.
FIRST_LINE, ALL_LINES = "first line", "all lines"


@dataclass(frozen=True)
class Line:
    """A line break: ``soft`` (nothing when flat), ``space`` (a space when flat) or ``hard``."""

    kind: str


SOFT, SOFT_OR_SPACE, HARD = Line("soft"), Line("space"), Line("hard")


@dataclass(frozen=True)
class Group:
    """Content printed flat if it fits, else expanded; ``expand`` forces expanded."""

    content: Doc
    id: int | None = None
    expand: bool = False


@dataclass(frozen=True)
class ConditionalGroup:
    """A group where the group ``id`` is expanded; plain content where it is flat."""

    content: Doc
    id: int


@dataclass(frozen=True)
class Indent:
    content: Doc


@dataclass(frozen=True)
class IndentIfGroupBreaks:
    """Indented where the group ``id`` is expanded."""

    content: Doc
    id: int


@dataclass(frozen=True)
class IfBreaks:
    """Content printed only where the group ``id`` (or the enclosing one) is expanded."""

    content: Doc
    id: int | None = None


@dataclass(frozen=True)
class IfFits:
    """Content printed only where the group ``id`` (or the enclosing one) is flat."""

    content: Doc
    id: int | None = None


@dataclass(frozen=True)
class FitsExpanded:
    """Where the group ``id`` is flat (or always, without one), the content is measured with its
    groups expanded and every line must fit; its groups are measured again when printed."""

    content: Doc
    id: int | None = None


@dataclass(frozen=True)
class BestFitting:
    """The first variant that fits printed flat, else the last one expanded."""

    variants: tuple[Doc, ...]
    all_lines: bool = False


Doc = Union[str, tuple, Line, Group, ConditionalGroup, Indent, IndentIfGroupBreaks, IfBreaks, IfFits, FitsExpanded, BestFitting]


def soft_block_indent(content: Doc) -> Doc:
    """``content`` on its own indented lines where the enclosing group expands."""
    return (Indent((SOFT, content)), SOFT)


def width(text: str) -> int:
    """Columns ``text`` takes: wide East Asian characters two, combining marks none."""
    if text.isascii():
        return len(text)
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


class _Printer:
    def __init__(self, line_width: int, indent_width: int) -> None:
        self.limit, self.step = line_width, indent_width
        self.out: list[str] = []
        self.column = 0
        self.pending: int | None = None
        self.measured = False
        self.modes: dict[int, str] = {}

    def print(self, doc: Doc, indent: int) -> str:
        self.column = indent * self.step  # the caller writes the first line's indentation
        stack = [(indent, EXPANDED, doc)]
        while stack:
            level, mode, item = stack.pop()
            self._element(level, mode, item, stack)
        return "".join(self.out)

    def _text(self, text: str) -> None:
        if self.pending is not None:
            self.out.append(" " * (self.pending * self.step))
            self.column += self.pending * self.step
            self.pending = None
        self.out.append(text)
        self.column += width(text)

    def _element(self, level: int, mode: str, item: Doc, stack: list) -> None:
        if isinstance(item, str):
            self._text(item)
        elif isinstance(item, tuple):
            stack.extend((level, mode, child) for child in reversed(item))
        elif isinstance(item, Line):
            if mode == FLAT and item is not HARD:
                if item is SOFT_OR_SPACE:
                    self._text(" ")
            else:
                if self.column > 0:
                    self.out.append("\n")
                self.column, self.pending, self.measured = 0, level, False
        elif isinstance(item, Indent):
            stack.append((level + 1, mode, item.content))
        elif isinstance(item, (Group, ConditionalGroup)):
            if isinstance(item, ConditionalGroup) and self.modes[item.id] != EXPANDED:
                stack.append((level, mode, item.content))
                return
            group_mode = self._group_mode(item, level, mode, stack)
            if isinstance(item, Group) and item.id is not None:
                self.modes[item.id] = group_mode
            stack.append((level, group_mode, item.content))
        elif isinstance(item, (IfBreaks, IfFits)):
            wanted = EXPANDED if isinstance(item, IfBreaks) else FLAT
            if (mode if item.id is None else self.modes[item.id]) == wanted:
                stack.append((level, mode, item.content))
        elif isinstance(item, IndentIfGroupBreaks):
            stack.append((level + (self.modes[item.id] == EXPANDED), mode, item.content))
        elif isinstance(item, FitsExpanded):
            if item.id is None or self.modes[item.id] == FLAT:
                self.measured = False
            stack.append((level, mode, item.content))
        elif isinstance(item, BestFitting):
            self._best_fitting(level, mode, item, stack)
        else:
            raise TypeError(f"not a document element: {item!r}")

    def _group_mode(self, item: Group | ConditionalGroup, level: int, mode: str, stack: list) -> str:
        if isinstance(item, Group) and item.expand:
            return EXPANDED
        if mode == FLAT and self.measured:
            return FLAT
        self.measured = True
        if isinstance(item, Group) and item.id is not None:
            self.modes[item.id] = FLAT  # what its content reads while it is measured
        return FLAT if self._fits([(level, FLAT, FIRST_LINE, item.content)], stack) else EXPANDED

    def _best_fitting(self, level: int, mode: str, item: BestFitting, stack: list) -> None:
        if mode == FLAT and self.measured:
            stack.append((level, FLAT, item.variants[0]))
            return
        self.measured = True
        measure = ALL_LINES if item.all_lines else FIRST_LINE
        for variant in item.variants[:-1]:
            if self._fits([(level, FLAT, measure, variant)], stack):
                stack.append((level, FLAT, variant))
                return
        stack.append((level, EXPANDED, item.variants[-1]))

    def _fits(self, first: list, rest: list) -> bool:
        """Whether ``first`` and then ``rest`` (the print stack, top last) fit up to the first line
        break that ends measuring, from the current column."""
        column, pending = self.column, self.pending
        queue = list(reversed(first))
        rest_index = len(rest)
        while True:
            if not queue:
                if rest_index == 0:
                    return True
                rest_index -= 1
                level, mode, item = rest[rest_index]
                queue.append((level, mode, FIRST_LINE, item))
            level, mode, measure, item = queue.pop()
            if isinstance(item, str):
                if pending is not None:
                    column, pending = column + pending * self.step, None
                column += width(item)
                if column > self.limit:
                    return False
            elif isinstance(item, tuple):
                queue.extend((level, mode, measure, child) for child in reversed(item))
            elif isinstance(item, Line):
                if mode == FLAT and item is not HARD:
                    if item is SOFT_OR_SPACE:
                        column += 1
                        if column > self.limit:
                            return False
                elif measure == FIRST_LINE:
                    return True
                else:
                    column, pending = 0, level
            elif isinstance(item, Indent):
                queue.append((level + 1, mode, measure, item.content))
            elif isinstance(item, Group):
                group_mode = EXPANDED if item.expand else mode
                if item.id is not None:
                    self.modes[item.id] = group_mode
                queue.append((level, group_mode, measure, item.content))
            elif isinstance(item, ConditionalGroup):  # a group or not, it measures in the same mode
                queue.append((level, mode, measure, item.content))
            elif isinstance(item, (IfBreaks, IfFits)):
                wanted = EXPANDED if isinstance(item, IfBreaks) else FLAT
                if (mode if item.id is None else self.modes.get(item.id, mode)) == wanted:
                    queue.append((level, mode, measure, item.content))
            elif isinstance(item, IndentIfGroupBreaks):
                queue.append((level + (self.modes.get(item.id, mode) == EXPANDED), mode, measure, item.content))
            elif isinstance(item, FitsExpanded):
                if item.id is None or self.modes.get(item.id, mode) == FLAT:
                    queue.append((level, EXPANDED, ALL_LINES, item.content))
                else:
                    queue.append((level, mode, measure, item.content))
            elif isinstance(item, BestFitting):
                queue.append((level, mode, measure, item.variants[0] if mode == FLAT else item.variants[-1]))
            else:
                raise TypeError(f"not a document element: {item!r}")


def print_document(doc: Doc, indent: int = 0, line_width: int = 100, indent_width: int = 4) -> str:
    """``doc`` as text, starting at ``indent`` levels (the first line's indentation not written:
    the caller's template puts it)."""
    return _Printer(line_width, indent_width).print(doc, indent)
