"""Displayed equations for the report, broken into rows that fit the page.

An equation is ``lhs = step = step ...`` (a formula, the numbers put in, the result). Each step
is a list of pieces, the first bare and the others carrying their operator (``+ w_{2} i_{2}``,
``\\cdot 0.2``); rows break between steps, and inside a step between pieces, where a row would
pass :data:`ROW_WIDTH`. Pieces come from sympy expressions split at their sums and products
(:func:`pieces`), with plain parentheses, which TeX lets open on one row and close on the next.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Collection, Sequence

import numpy as np

import sympy

from chainrule.codegen.report.document import CDOT, CLOSE, EQUALS, MINUS, OPEN, PLUS, SPACE, Expr, Math, Matrix, Num, Prose, Retex, Script, Seq, Tok
from chainrule.codegen.report.latex import width
from chainrule.codegen.report.mathml import CLOSE as CLOSE_MO, OPEN as OPEN_MO

#: Row width in average characters of math (A4, 2 cm margins, 11 pt).
ROW_WIDTH = 74
#: A matrix column's width per character of :func:`~chainrule.codegen.report.latex.width` (digits are
#: 5.5 pt wide against its average of about 6.5 pt), and the space between two columns.
DIGIT_WIDTH, COLUMN_GAP = 0.85, 1.6
QUAD = Tok(r"\quad ", '<mspace width="1em"></mspace>')
NOTHING = Tok("", "")


@dataclass(frozen=True)
class Row:
    """One row of an ``align*``: ``lhs &rel rhs``; a continuation row has ``lhs`` and ``rel``
    empty and its ``rhs`` indented."""

    lhs: Math
    rel: Math
    rhs: Math


@dataclass(frozen=True)
class Display:
    """An ``align*`` block with an optional sentence before it and a note after it."""

    caption: Prose
    rows: tuple[Row, ...]
    note: Prose = Prose()


def equation(lhs: Math, steps: Sequence[Sequence[Math]], rel: Math = EQUALS, new_rows: Collection[int] = ()) -> tuple[Row, ...]:
    """Rows of ``lhs rel step1 rel step2 ...``, broken where rows are full and before the steps
    whose indices are in ``new_rows``."""
    rows: list[list] = [[lhs, rel, []]]
    lhs_width = width(lhs.tex())
    used = lhs_width + 1.5
    spaced_rel = Seq(SPACE, rel, SPACE)
    for n, step in enumerate(steps):
        step_width = sum(width(p.tex()) for p in step) + 1.5
        if rows[-1][2] and (used + step_width > ROW_WIDTH or n in new_rows):
            rows.append([NOTHING, rel, []])
            used = lhs_width + 1.5
        elif rows[-1][2]:
            rows[-1][2].append(spaced_rel)
        for i, piece in enumerate(step):
            piece_width = width(piece.tex())
            if i and used + piece_width > ROW_WIDTH:
                rows.append([NOTHING, NOTHING, [QUAD]])
                used = lhs_width + 3.5
            rows[-1][2].append(piece)
            if i + 1 != len(step):
                rows[-1][2].append(SPACE)
            used += piece_width + 0.5
    for row in rows:
        while row[2] and row[2][-1] is SPACE:  # a row that broke after a piece ends with it
            row[2].pop()
    return tuple(Row(a, b, Seq(*c)) for a, b, c in rows)


Printer = Callable[[sympy.Expr], Math]


def pieces(expr: sympy.Expr, printer: Printer, limit: float = ROW_WIDTH - 12, last: Collection[sympy.Symbol] = ()) -> list[Math]:
    """``expr`` as pieces for :func:`equation`: whole when it fits in ``limit``, else split at its
    top-level sum (``+ term``), then at products (``\\cdot factor``), recursively; terms and
    factors in the order the printer writes them whole (those holding ``last`` symbols at the end)."""
    whole = printer(expr)
    if width(whole.tex()) <= limit:
        return [whole]
    if isinstance(expr, sympy.Add):
        out: list[Math] = []
        for i, term in enumerate(_printed_order(expr.args, last)):
            negative = term.could_extract_minus_sign()
            sub = pieces(-term if negative and i else term, printer, limit, last)
            sign = MINUS if negative and i else (PLUS if i else None)
            out.append(Seq(sign, sub[0]) if sign else sub[0])
            out.extend(sub[1:])
        return out
    if isinstance(expr, sympy.Mul) and len(expr.args) > 1:
        out = []
        for i, factor in enumerate(_printed_order(expr.args, last, numbers_first=True)):
            sub = pieces(factor, printer, limit, last)
            if isinstance(factor, sympy.Add):
                sub = parenthesized(sub)
            out.append(Seq(CDOT, sub[0]) if i else sub[0])
            out.extend(sub[1:])
        return out
    return [whole]


def _printed_order(args: Sequence[sympy.Expr], last: Collection[sympy.Symbol], numbers_first: bool = False) -> list[sympy.Expr]:
    """``args`` in the order :class:`~chainrule.codegen.report.latex.ReportPrinter` prints them (its
    order is "none": as sympy holds them), those holding a ``last`` symbol moved to the end."""
    if not last:
        return list(args)
    late = frozenset(last)
    return sorted(args, key=lambda a: (bool(a.free_symbols & late), numbers_first and not a.is_Number))


def parenthesized(parts: Sequence[Math]) -> list[Math]:
    """Pieces of one expression in plain parentheses (TeX lets them open on one row and close on
    the next)."""
    return [Seq(OPEN, parts[0], CLOSE)] if len(parts) == 1 else [Seq(OPEN, parts[0]), *parts[1:-1], Seq(parts[-1], CLOSE)]


def product(factors: Sequence[Math]) -> list[Math]:
    """Factors as pieces of a product: ``a``, ``\\cdot b``, ``\\cdot c``."""
    return [f if not i else Seq(CDOT, f) for i, f in enumerate(factors)]


def total(terms: Sequence[Math]) -> list[Math]:
    """Terms as pieces of a sum; a term given with its sign (``-0.2``) keeps it."""
    out: list[Math] = []
    for i, term in enumerate(terms):
        text = term.tex()
        if not i:
            out.append(term)
        elif text.startswith("-"):
            out.append(Retex("- " + text[1:].lstrip(), term))
        else:
            out.append(Seq(PLUS, term))
    return out


def scaled(terms: Sequence[Math], scale: sympy.Expr) -> list[Math]:
    """Terms as a sum (:func:`total`) times ``scale``: ``1/4 (E_1 + E_2 + E_3 + E_4)``, the
    bare sum where ``scale`` is 1."""
    parts = total(terms)
    if scale == 1:
        return parts
    parts[0] = Seq(Expr(scale), Tok(r" \bigl(", OPEN_MO), parts[0])
    parts[-1] = Seq(parts[-1], Tok(r"\bigr)", CLOSE_MO))
    return parts


def math_pieces(expr: sympy.Expr, **settings) -> list[Math]:
    """:func:`pieces` of :class:`~chainrule.codegen.report.document.Expr` with its settings."""
    return pieces(expr, lambda e: Expr(e, **settings), last=settings.get("last", ()))


def matrix_rows(lhs: Math, matrix: np.ndarray) -> list[Row]:
    """``lhs = matrix`` in one row when it fits the page; else one row per block of columns that
    fits, each named by its columns (``(lhs) columns 1-3 = ...``), so that no number is cut off."""
    entries = [[Num(x) for x in row] for row in matrix]
    columns = range(matrix.shape[1])
    widths = [DIGIT_WIDTH * max(width(row[c].tex()) for row in entries) + COLUMN_GAP for c in columns]
    if width(lhs.tex()) + sum(widths) + 3.5 <= ROW_WIDTH:
        return [Row(lhs, EQUALS, _pmatrix(entries, columns))]
    label_width = width(_block_label(lhs, 10, 10).tex())
    blocks: list[list[int]] = [[]]
    for c in columns:
        if blocks[-1] and label_width + sum(widths[k] for k in blocks[-1]) + widths[c] + 3.5 > ROW_WIDTH:
            blocks.append([])
        blocks[-1].append(c)
    return [Row(_block_label(lhs, block[0] + 1, block[-1] + 1), EQUALS, _pmatrix(entries, block)) for block in blocks]


def _block_label(lhs: Math, first: int, last: int) -> Math:
    which = f"column {first}" if first == last else f"columns {first}--{last}"
    which = Tok(rf"\text{{{which}}}", f"<mtext>{which.replace('--', '–')}</mtext>")
    return Script(lhs, which, sup=False, wrap=(r"\left(", r"\right)"))


def _pmatrix(entries: list[list[Num]], columns: Sequence[int]) -> Math:
    return Matrix([[row[c] for c in columns] for row in entries])
