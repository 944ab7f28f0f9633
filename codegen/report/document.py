"""The report's values: math as small trees and prose as runs of text and math, each printed as
LaTeX (:meth:`Math.tex`, for ``report.tex.j2``) or as MathML and HTML (:meth:`Math.mathml`, for
``report.html.j2``) and, for the diagram's labels, as SVG text (:meth:`Math.svg`).

The report's context (:mod:`chainrule.codegen.report.context`) is made of these, so that both
printers read one structured value: a sympy expression stays an expression (:class:`Expr`), a name
a name (:class:`Name`), a number a number (:class:`Num`), and what the report writes around them
is a :class:`Tok` that carries its LaTeX and its MathML side by side. Plain text in :class:`Prose`
is escaped by each printer (:func:`~chainrule.codegen.report.latex.escape_text` for TeX,
:func:`html.escape` for HTML), so user text reaches neither unescaped.
"""

from __future__ import annotations

import functools
import html
from typing import Iterable, Mapping, Sequence

import sympy

from chainrule.codegen.report import latex as tx
from chainrule.codegen.report import mathml as ml
from chainrule.codegen.report.latex import Printable, Tex
from chainrule.codegen.report.latex_text import text_tex


class Math(Printable):
    """A piece of math; :meth:`tex` is computed once."""

    __slots__ = ("_tex",)

    def tex(self) -> Tex:
        try:
            return self._tex
        except AttributeError:
            self._tex = Tex(self._print_tex())
            return self._tex

    def _print_tex(self) -> str:
        raise NotImplementedError

    def mathml(self) -> str:
        """Presentation MathML markup (the content of a ``<math>`` element)."""
        raise NotImplementedError

    def svg(self) -> str:
        """Markup for an SVG ``<text>``: characters, subscripts as ``<tspan>``."""
        raise NotImplementedError(type(self).__name__)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.tex()!r})"


class Tok(Math):
    """Notation the report writes, fixed in its code: its LaTeX, MathML and SVG text."""

    __slots__ = ("_text", "_mathml", "_svg")

    def __init__(self, tex: str, mathml: str = "", svg: str | None = None) -> None:
        self._text, self._mathml, self._svg = tex, mathml, svg

    def _print_tex(self) -> str:
        return self._text

    def mathml(self) -> str:
        return self._mathml

    def svg(self) -> str:
        if self._svg is None:
            raise NotImplementedError(f"no SVG text for {self._text!r}")
        return self._svg


class Name(Math):
    """A symbol of the scalar form (``w5``, ``net_h1``): :func:`~chainrule.codegen.report.latex.name_tex`."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def _print_tex(self) -> str:
        return tx.name_tex(self.name)

    def mathml(self) -> str:
        return ml.name_mathml(self.name)

    def svg(self) -> str:
        return _svg_name(self.name)


class Vec(Math):
    """A vector or matrix of the layer form (``net_h``, ``W2``): bold."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def _print_tex(self) -> str:
        return tx.vector_tex(self.name)

    def mathml(self) -> str:
        return ml.vector_mathml(self.name)

    def svg(self) -> str:
        return _svg_name(self.name)


class Num(Math):
    """A value the derivation computed, to 9 (or ``digits``) significant digits; as an
    ``operand`` (in a sum, product or power) in parentheses when negative or a power of ten."""

    __slots__ = ("value", "digits", "operand")

    def __init__(self, value: float, digits: int = tx.DIGITS, operand: bool = False) -> None:
        self.value, self.digits, self.operand = float(value), digits, operand

    def _print_tex(self) -> str:
        text = tx.number_tex(self.value, self.digits)
        return f"({text})" if self.operand and (self.value < 0 or r"\times" in text) else text

    def _wrapped(self) -> bool:
        return self.operand and (self.value < 0 or "e" in tx.number_text(self.value, self.digits))

    def mathml(self) -> str:
        markup = ml.number_mathml(self.value, self.digits)
        return f"<mrow>{ml.OPEN}{markup}{ml.CLOSE}</mrow>" if self._wrapped() else markup

    def svg(self) -> str:
        text = tx.number_text(self.value, self.digits).replace("-", "−")
        if "e" in text:
            mantissa, exponent = text.split("e")
            text = f'{mantissa}×10<tspan baseline-shift="super" font-size="70%">{int(exponent)}</tspan>'.replace("-", "−")
        return text


class Expr(Math):
    """A sympy expression of the derivation, printed by :class:`~chainrule.codegen.report.latex.ReportPrinter`
    or :class:`~chainrule.codegen.report.mathml.ReportMathML` with the same settings: ``names``
    (symbol name to the math written in its place), ``vectors``, ``last``."""

    __slots__ = ("expr", "names", "vectors", "last")

    def __init__(self, expr: sympy.Expr, names: Mapping[str, Math] | None = None, vectors: bool = False, last: Iterable[sympy.Symbol] = ()) -> None:
        self.expr, self.names, self.vectors, self.last = expr, dict(names or {}), vectors, tuple(last)

    def _print_tex(self) -> str:
        names = tuple(sorted((k, v.tex()) for k, v in self._used().items()))
        return _math_tex(self.expr, names, self.vectors, self.last)

    def mathml(self) -> str:
        names = tuple(sorted((k, one(v)) for k, v in self._used().items()))
        return _math_mathml(self.expr, names, self.vectors, self.last)

    def _used(self) -> dict[str, Math]:
        """The names of symbols the expression holds (the cache key leaves the others out)."""
        if not self.names:
            return self.names
        held = {s.name for s in self.expr.free_symbols}
        return {k: v for k, v in self.names.items() if k in held}

    def with_expr(self, expr: sympy.Expr) -> "Expr":
        """The same settings for another expression (a term or factor of this one)."""
        return Expr(expr, self.names, self.vectors, self.last)


class Seq(Math):
    """Math written one after the other."""

    __slots__ = ("parts",)

    def __init__(self, *parts: Math) -> None:
        self.parts = parts

    def _print_tex(self) -> str:
        return "".join(p.tex() for p in self.parts)

    def mathml(self) -> str:
        """The parts' markup one after the other, in the row around them (so that an operator
        between two parts is spaced as one: ``a + b``, not a prefix ``+b``); see :func:`one`."""
        return "".join(p.mathml() for p in self.parts)

    def svg(self) -> str:
        return "".join(p.svg() for p in self.parts)


class Frac(Math):
    """``\\frac{a}{b}``."""

    __slots__ = ("top", "bottom")

    def __init__(self, top: Math, bottom: Math) -> None:
        self.top, self.bottom = top, bottom

    def _print_tex(self) -> str:
        return rf"\frac{{{self.top.tex()}}}{{{self.bottom.tex()}}}"

    def mathml(self) -> str:
        return f"<mfrac>{one(self.top)}{one(self.bottom)}</mfrac>"


class Script(Math):
    """``base^{sup}`` or ``base_{sub}`` (``tex_base`` prints the base's LaTeX around it, e.g.
    ``\\left(...\\right)``)."""

    __slots__ = ("base", "script", "sup", "wrap")

    def __init__(self, base: Math, script: Math, sup: bool, wrap: tuple[str, str] = ("", "")) -> None:
        self.base, self.script, self.sup, self.wrap = base, script, sup, wrap

    def _print_tex(self) -> str:
        mark = "^" if self.sup else "_"
        return f"{self.wrap[0]}{self.base.tex()}{self.wrap[1]}{mark}{{{self.script.tex()}}}"

    def mathml(self) -> str:
        base = one(self.base)
        if self.wrap[0]:
            base = f"<mrow>{ml.OPEN}{base}{ml.CLOSE}</mrow>"
        tag = "msup" if self.sup else "msub"
        return f"<{tag}>{base}{one(self.script)}</{tag}>"


class Words(Math):
    """Words inside math (``\\text{path 1}``): fixed text of the report."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def _print_tex(self) -> str:
        return rf"\text{{{tx.escape_text(self.text)}}}"

    def mathml(self) -> str:
        return f"<mtext>{html.escape(self.text)}</mtext>"


class Matrix(Math):
    """A matrix (or a column) in parentheses."""

    __slots__ = ("rows",)

    def __init__(self, rows: Sequence[Sequence[Math]]) -> None:
        self.rows = tuple(tuple(r) for r in rows)

    def _print_tex(self) -> str:
        lines = (" & ".join(x.tex() for x in row) for row in self.rows)
        return r"\begin{pmatrix}" + r" \\ ".join(lines) + r"\end{pmatrix}"

    def mathml(self) -> str:
        rows = "".join("<mtr>" + "".join(f"<mtd>{x.mathml()}</mtd>" for x in row) + "</mtr>" for row in self.rows)
        return f"<mrow><mo>(</mo><mtable>{rows}</mtable><mo>)</mo></mrow>"  # stretchy: the matrix's height


class Retex(Math):
    """``inner`` with its LaTeX written another way (``- 0.5`` for ``-0.5`` as a term of a sum);
    the MathML is the inner's."""

    __slots__ = ("text", "inner")

    def __init__(self, text: str, inner: Math) -> None:
        self.text, self.inner = text, inner

    def _print_tex(self) -> str:
        return self.text

    def mathml(self) -> str:
        return self.inner.mathml()


# The same formula is printed many times (a factor in every chain it is part of): once here.
@functools.lru_cache(maxsize=4096)
def _math_tex(expr: sympy.Expr, names: tuple[tuple[str, str], ...], vectors: bool, last: tuple[sympy.Symbol, ...]) -> str:
    return tx.math_tex(expr, names=dict(names), vectors=vectors, last=last)


@functools.lru_cache(maxsize=4096)
def _math_mathml(expr: sympy.Expr, names: tuple[tuple[str, str], ...], vectors: bool, last: tuple[sympy.Symbol, ...]) -> str:
    return ml.math_mathml(expr, names=dict(names), vectors=vectors, last=last)


def one(math: Math) -> str:
    """``math`` as one element (a :class:`Seq` in an ``<mrow>``), where MathML takes one: a
    fraction's parts, a script's base and script, a symbol's place in an expression."""
    return f"<mrow>{math.mathml()}</mrow>" if isinstance(math, (Seq, Retex)) else math.mathml()


def _svg_name(name: str) -> str:
    """A name as SVG text: ``w5`` as w with a subscript 5, ``net_h1`` as net with subscript h1."""
    for prefix, shown in (("net_", "net"), ("out_", "out"), ("delta_", "δ")):
        if name.startswith(prefix) and len(name) > len(prefix):
            return f'{shown}<tspan baseline-shift="sub" font-size="75%">{html.escape(name[len(prefix):])}</tspan>'
    match = ml._LETTER_INDEX.fullmatch(name)
    if match:
        return f'{match.group(1)}<tspan baseline-shift="sub" font-size="75%">{match.group(2)}</tspan>'
    return html.escape(name)


# ---------------------------------------------------------------------------------------------
# Common notation


def tok(tex: str, mathml: str, svg: str | None = None) -> Tok:
    return Tok(tex, mathml, svg)


EQUALS = Tok("=", "<mo>=</mo>", " = ")
COLON = Tok(":", "<mo>:</mo>")
SPACE = Tok(" ", "", " ")
PARTIAL = Tok(r"\partial ", "<mi>∂</mi>")
E = Name("E")


def mo(tex: str, char: str) -> Tok:
    """An operator: its LaTeX and the character MathML writes."""
    return Tok(tex, f"<mo>{html.escape(char)}</mo>", html.escape(char))


PLUS, MINUS, CDOT, ODOT = mo("+ ", "+"), mo("- ", "−"), mo(r"\cdot ", "·"), mo(r"\odot", "⊙")
OPEN, CLOSE = Tok("(", ml.OPEN, "("), Tok(")", ml.CLOSE, ")")


def partial(of: Math, wrt: Math) -> Frac:
    """∂of/∂wrt as a fraction."""
    return Frac(Seq(PARTIAL, of), Seq(PARTIAL, wrt))


def gradient(name: str) -> Frac:
    return partial(E, Name(name))


def gradient_inline(name: str) -> Math:
    """∂E/∂w5 with a slash, for headings and running text."""
    return Seq(PARTIAL, Tok("E/", "<mi>E</mi><mo lspace='0' rspace='0'>/</mo>"), PARTIAL, Name(name))


def updated(name: str) -> Math:
    return Script(Name(name), Tok("+", "<mo>+</mo>"), sup=True)


def hyper(name: str) -> Tok:
    """An optimizer's setting as textbooks write it (η for lr)."""
    return Tok(tx.HYPER_TEX.get(name, name), ml.HYPER_MATHML.get(name) or ml.mi(name, italic=True))


def activation(activation) -> Tok:
    """A registry activation's name: σ, tanh, relu upright."""
    return Tok(tx.activation_tex(activation), ml.activation_mathml(activation))


# ---------------------------------------------------------------------------------------------
# Prose


class Code:
    """Text in typewriter type (a file name, a command): escaped by each printer."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


class Bare:
    """Math that LaTeX writes in running text without ``$`` (a number: ``\\val{0.5}``)."""

    __slots__ = ("math",)

    def __init__(self, math: Math) -> None:
        self.math = math


Part = "str | Math | Code | Bare"


class Prose(Printable):
    """Running text: plain strings (escaped by each printer), inline math, code."""

    __slots__ = ("parts", "_tex")

    def __init__(self, *parts: object) -> None:
        self.parts = tuple(p for p in parts if p != "")

    def __bool__(self) -> bool:
        return bool(self.parts)

    def __add__(self, other: "Prose | str | Math") -> "Prose":
        more = other.parts if isinstance(other, Prose) else (other,)
        return Prose(*self.parts, *more)

    def tex(self) -> Tex:
        try:
            return self._tex
        except AttributeError:
            self._tex = Tex("".join(_part_tex(p) for p in self.parts))
            return self._tex

    def html(self) -> str:
        return "".join(_part_html(p) for p in self.parts)

    def svg(self) -> str:
        out = []
        for p in self.parts:
            out.append(html.escape(p) if isinstance(p, str) else p.svg() if isinstance(p, Math) else p.math.svg() if isinstance(p, Bare) else html.escape(p.text))
        return "".join(out)

    def __repr__(self) -> str:
        return f"Prose({self.tex()!r})"


def _part_tex(part: object) -> str:
    if isinstance(part, str):
        return text_tex(part)
    if isinstance(part, Math):
        return f"${part.tex()}$"
    if isinstance(part, Bare):
        return part.math.tex()
    if isinstance(part, Code):
        return tx.code_text(part.text)
    raise TypeError(f"not prose: {part!r}")


def inline(math: Math) -> str:
    """Inline math in HTML."""
    return f"<math>{math.mathml()}</math>"


def _part_html(part: object) -> str:
    if isinstance(part, str):
        return html.escape(part, quote=False)
    if isinstance(part, Math):
        return inline(part)
    if isinstance(part, Bare):
        return inline(part.math)
    if isinstance(part, Code):
        return f"<code>{html.escape(part.text, quote=False)}</code>"
    raise TypeError(f"not prose: {part!r}")


def joined(separator: str, items: Sequence[Prose]) -> Prose:
    """Prose items with ``separator`` (plain text) between them."""
    parts: list[object] = []
    for i, item in enumerate(items):
        if i:
            parts.append(separator)
        parts.extend(item.parts)
    return Prose(*parts)
