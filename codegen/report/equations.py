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

import sympy

from chainrule.codegen.report.latex import Tex, math_tex, width

#: Row width in average characters of math (A4, 2 cm margins, 11 pt).
ROW_WIDTH = 74


@dataclass(frozen=True)
class Row:
    """One row of an ``align*``: ``lhs &rel rhs``; a continuation row has ``lhs`` and ``rel``
    empty and its ``rhs`` indented."""

    lhs: Tex
    rel: Tex
    rhs: Tex


@dataclass(frozen=True)
class Display:
    """An ``align*`` block with an optional sentence before it and a note after it."""

    caption: Tex
    rows: tuple[Row, ...]
    note: Tex = Tex("")


def equation(lhs: Tex, steps: Sequence[Sequence[str]], rel: str = "=", new_rows: Collection[int] = ()) -> tuple[Row, ...]:
    """Rows of ``lhs rel step1 rel step2 ...``, broken where rows are full and before the steps
    whose indices are in ``new_rows``."""
    rows: list[list[str]] = [[lhs, rel, ""]]
    used = width(lhs) + 1.5
    for n, step in enumerate(steps):
        step_width = sum(width(p) for p in step) + 1.5
        if rows[-1][2] and (used + step_width > ROW_WIDTH or n in new_rows):
            rows.append(["", rel, ""])
            used = width(lhs) + 1.5
        elif rows[-1][2]:
            rows[-1][2] += f" {rel} "
        for i, piece in enumerate(step):
            piece_width = width(piece)
            if i and used + piece_width > ROW_WIDTH:
                rows.append(["", "", r"\quad "])
                used = width(lhs) + 3.5
            rows[-1][2] += piece + ("" if i + 1 == len(step) else " ")
            used += piece_width + 0.5
    return tuple(Row(Tex(a), Tex(b), Tex(c.rstrip())) for a, b, c in rows)


Printer = Callable[[sympy.Expr], Tex]


def pieces(expr: sympy.Expr, printer: Printer, limit: float = ROW_WIDTH - 12, last: Collection[sympy.Symbol] = ()) -> list[str]:
    """``expr`` as pieces for :func:`equation`: whole when it fits in ``limit``, else split at its
    top-level sum (``+ term``), then at products (``\\cdot factor``), recursively; terms and
    factors in the order the printer writes them whole (those holding ``last`` symbols at the end)."""
    text = printer(expr)
    if width(text) <= limit:
        return [text]
    if isinstance(expr, sympy.Add):
        out: list[str] = []
        for i, term in enumerate(_printed_order(expr.args, last)):
            negative = term.could_extract_minus_sign()
            sub = pieces(-term if negative and i else term, printer, limit, last)
            sign = "- " if negative and i else ("+ " if i else "")
            out.append(sign + sub[0])
            out.extend(sub[1:])
        return out
    if isinstance(expr, sympy.Mul) and len(expr.args) > 1:
        out = []
        for i, factor in enumerate(_printed_order(expr.args, last, numbers_first=True)):
            sub = pieces(factor, printer, limit, last)
            if isinstance(factor, sympy.Add):
                sub = parenthesized(sub)
            out.append((r"\cdot " if i else "") + sub[0])
            out.extend(sub[1:])
        return out
    return [text]


def _printed_order(args: Sequence[sympy.Expr], last: Collection[sympy.Symbol], numbers_first: bool = False) -> list[sympy.Expr]:
    """``args`` in the order :class:`~chainrule.codegen.report.latex.ReportPrinter` prints them (its
    order is "none": as sympy holds them), those holding a ``last`` symbol moved to the end."""
    if not last:
        return list(args)
    late = frozenset(last)
    return sorted(args, key=lambda a: (bool(a.free_symbols & late), numbers_first and not a.is_Number))


def parenthesized(parts: Sequence[str]) -> list[str]:
    """Pieces of one expression in plain parentheses (TeX lets them open on one row and close on
    the next)."""
    return ["(" + parts[0] + ")"] if len(parts) == 1 else ["(" + parts[0], *parts[1:-1], parts[-1] + ")"]


def product(factors: Sequence[str]) -> list[str]:
    """Factors as pieces of a product: ``a``, ``\\cdot b``, ``\\cdot c``."""
    return [f if not i else r"\cdot " + f for i, f in enumerate(factors)]


def total(terms: Sequence[str]) -> list[str]:
    """Terms as pieces of a sum; a term given with its sign (``-0.2``) keeps it."""
    out = []
    for i, term in enumerate(terms):
        if not i:
            out.append(term)
        elif term.startswith("-"):
            out.append("- " + term[1:].lstrip())
        else:
            out.append("+ " + term)
    return out


def math_pieces(expr: sympy.Expr, **settings) -> list[str]:
    """:func:`pieces` with :func:`~chainrule.codegen.report.latex.math_tex` and its settings."""
    return pieces(expr, lambda e: math_tex(e, **settings), last=settings.get("last", ()))
