"""MathML for the report: a sympy printer, the spec's names and numbers, beside the LaTeX of
:mod:`chainrule.codegen.report.latex`.

Everything here returns presentation MathML markup (the content of a ``<math>`` element) made by
this module: element names and attributes fixed here, text that is either a name (an ASCII
identifier, checked by the spec loader and again here), a number, or escaped with
:func:`html.escape`. Each function mirrors its LaTeX twin (``name_mathml`` and ``name_tex``), so that
the HTML report shows what the PDF shows. Expressions go through :class:`ReportMathML`, sympy's
presentation printer with the report's deviations (decimals as decimals, the function table's
operators, ``last`` symbols at the end, vectors multiplied elementwise, a piecewise as cases).
"""

from __future__ import annotations

import functools
import html
import re
from typing import Iterable, Mapping

import sympy
from sympy.printing.mathml import MathMLPresentationPrinter
from sympy.printing.precedence import PRECEDENCE, precedence_traditional

from chainrule.derive import naming
from chainrule.derive.formula import decimal_coefficient, decimal_text
from chainrule.derive.functions import has_slots, row_of, spell
from chainrule.derive.optimizers import THETA

from chainrule.codegen.report.latex import number_text

#: The optimizers' settings as textbooks write them (as :data:`~chainrule.codegen.report.latex.HYPER_TEX`).
HYPER_MATHML: Mapping[str, str] = {
    "lr": "<mi>η</mi>", "momentum": "<mi>μ</mi>", "alpha": "<mi>α</mi>", "beta1": "<msub><mi>β</mi><mn>1</mn></msub>",
    "beta2": "<msub><mi>β</mi><mn>2</mn></msub>", "eps": "<mi>ϵ</mi>", "weight_decay": "<mi>λ</mi>", THETA.name: "<mi>θ</mi>",
}
ACTIVATION_MATHML: Mapping[str, str] = {"sigmoid": "<mi>σ</mi>", "tanh": "<mi>tanh</mi>", "identity": "<mi>id</mi>"}

#: Parentheses as characters of the text font: stretched, without an OpenType math font, they
#: come out as wide as assembled glyphs (Chromium: ``( x )``); every row of the report is one line.
OPEN, CLOSE = '<mo stretchy="false">(</mo>', '<mo stretchy="false">)</mo>'
_FENCES = {"<mo>(</mo>": OPEN, "<mo>)</mo>": CLOSE, "<mo>|</mo>": '<mo stretchy="false">|</mo>'}
_FENCE = re.compile("|".join(re.escape(k) for k in _FENCES))

_LETTER_INDEX = re.compile(r"([A-Za-z]+)([0-9]+)")
_PREFIXES = (
    (naming.NET.format(unit=""), "<mi>net</mi>"),
    (naming.OUT.format(unit=""), "<mi>out</mi>"),
    (naming.DELTA_UNIT.format(unit=""), "<mi>δ</mi>"),
)
_VECTOR_PREFIXES = (
    (naming.LAYER_NET.format(name=""), '<mi class="bf">net</mi>'),
    (naming.LAYER_OUT.format(name=""), '<mi class="bf">out</mi>'),
    (naming.LAYER_DELTA.format(name=""), '<mi class="bf">δ</mi>'),
    (naming.LAYER_INITIAL.format(name=""), '<mi class="bf">h0</mi>'),
)


def mi(text: str, italic: bool = False) -> str:
    """An identifier; a name of several letters in italics as LaTeX's ``\\mathit`` sets it."""
    return f'<mi class="it">{html.escape(text)}</mi>' if italic and len(text) > 1 else f"<mi>{html.escape(text)}</mi>"


def _check(name: str) -> None:
    if not (name.isascii() and name.isidentifier()):
        raise ValueError(f"not an identifier: {name!r}")


def _subscript(name: str) -> str:
    return mi(name, italic=True) if not name.isalnum() else (f"<mi>{name}</mi>" if len(name) == 1 else f'<mi class="it">{name}</mi>')


@functools.lru_cache(maxsize=65536)
def name_mathml(name: str) -> str:
    """A symbol of the scalar form: ``net_h1`` as net with subscript h1, ``w5`` as w₅, ``E``."""
    _check(name)
    for prefix, markup in _PREFIXES:
        if name.startswith(prefix) and len(name) > len(prefix):
            return f"<msub>{markup}{_subscript(name[len(prefix):])}</msub>"
    if len(name) == 1:
        return f"<mi>{name}</mi>"
    match = _LETTER_INDEX.fullmatch(name)
    if match:
        return f"<msub>{mi(match.group(1), italic=True)}<mn>{match.group(2)}</mn></msub>"
    return mi(name, italic=True)


@functools.lru_cache(maxsize=4096)
def vector_mathml(name: str) -> str:
    """A name of the layer form: ``net_h`` bold, ``W2`` as bold W with subscript 2, ``x`` bold."""
    _check(name)
    for prefix, markup in _VECTOR_PREFIXES:
        if name.startswith(prefix) and len(name) > len(prefix):
            return f"<msub>{markup}{_subscript(name[len(prefix):])}</msub>"
    if base := naming.vector_base(name):
        return f'<mi class="bf" mathvariant="normal">{base}</mi>'
    match = _LETTER_INDEX.fullmatch(name)
    if match and match.group(1) in ("W", "U", "b"):
        return f'<msub><mi class="bf" mathvariant="normal">{match.group(1)}</mi><mn>{match.group(2)}</mn></msub>'
    return name_mathml(name)


def number_mathml(value: float, digits: int = 9) -> str:
    """A value to 9 (or ``digits``) significant digits, as :func:`~chainrule.codegen.report.latex.number_tex`
    writes it: a minus sign before it, a power of ten as ``× 10⁻⁵``."""
    text = number_text(value, digits)
    sign = ""
    if text.startswith("-"):
        sign, text = "<mo>−</mo>", text[1:]
    if text in ("inf", "nan"):
        body = "<mi>∞</mi>" if text == "inf" else '<mi mathvariant="normal">NaN</mi>'
    elif "e" in text:
        mantissa, exponent = text.split("e")
        power = int(exponent)
        body = f"<mn>{mantissa}</mn><mo>×</mo><msup><mn>10</mn><mrow>{'<mo>−</mo>' if power < 0 else ''}<mn>{abs(power)}</mn></mrow></msup>"
    else:
        body = f"<mn>{text}</mn>"
    return f'<mrow class="val">{sign}{body}</mrow>'


def decimal_mathml(value: sympy.Expr) -> str | None:
    """A fraction the user wrote as a decimal, as one (``0.044715``, ``10⁻⁸``); None for any other."""
    text = decimal_text(value)
    if text is None:
        return None
    sign = ""
    if text.startswith("-"):
        sign, text = "<mo>−</mo>", text[1:]
    if "e" not in text:
        return f"<mrow>{sign}<mn>{text}</mn></mrow>"
    mantissa, exponent = text.split("e")
    power = int(exponent)
    ten = f"<msup><mn>10</mn><mrow>{'<mo>−</mo>' if power < 0 else ''}<mn>{abs(power)}</mn></mrow></msup>"
    return f"<mrow>{sign}{ten if mantissa == '1' else f'<mn>{mantissa}</mn><mo>·</mo>{ten}'}</mrow>"


_PLACEHOLDER = re.compile("<mi>(?:\ue000|&#57344;)(\\d+)(?:\ue001|&#57345;)</mi>")


class ReportMathML(MathMLPresentationPrinter):
    """sympy's presentation MathML printer with the report's deviations (those of
    :class:`~chainrule.codegen.report.latex.ReportPrinter`).

    Settings (besides sympy's): ``names`` maps a symbol name to its MathML (numbers substituted,
    ∂E/∂w5); ``vectors`` prints symbols as the layer form's vectors and products as elementwise
    (⊙); ``last`` holds symbols written last in sums and products. A symbol is printed as a
    placeholder that :meth:`doprint` replaces with its markup (sympy's printer builds a DOM).
    """

    _default_settings = {**MathMLPresentationPrinter._default_settings, "mul_symbol": "dot", "order": "none", "names": {}, "vectors": False, "last": frozenset()}

    def __init__(self, settings=None) -> None:
        super().__init__(settings)
        self._markup: list[str] = []

    def doprint(self, expr: sympy.Basic) -> str:
        self._markup = []
        # as sympy's doprint, through this class's _print also at the top (a row of the table)
        return self._fill(self._print(expr).toxml())

    def _element(self, tag: str, text: str | None = None, *children):
        node = self.dom.createElement(tag)
        if text is not None:
            node.appendChild(self.dom.createTextNode(text))
        for child in children:
            node.appendChild(child)
        return node

    def _placeholder(self, markup: str):
        self._markup.append(markup)
        return self._element("mi", f"\ue000{len(self._markup) - 1}\ue001")

    def _print_Symbol(self, sym: sympy.Symbol, style: str = "plain"):
        names = self._settings["names"]
        if sym.name in names:
            return self._placeholder(names[sym.name])
        if sym.name in HYPER_MATHML:
            return self._placeholder(HYPER_MATHML[sym.name])
        return self._placeholder(vector_mathml(sym.name) if self._settings["vectors"] else name_mathml(sym.name))

    def _print_Exp1(self, e):
        return self._element("mi", "e")

    def _print_Rational(self, e: sympy.Rational):
        decimal = decimal_mathml(e)
        return self._placeholder(decimal) if decimal is not None else super()._print_Rational(e)

    def _print_Piecewise(self, expr: sympy.Piecewise):
        """As cases: a brace, then each value with its condition (``otherwise`` for the last)."""
        table = self.dom.createElement("mtable")
        for value, condition in expr.args:
            row = self.dom.createElement("mtr")
            cell = self._element("mtd", None, self._print(value))
            row.appendChild(cell)
            words = self._element("mtext", "otherwise" if condition is sympy.true else "for\u00a0")
            condition_cell = self._element("mtd", None, words)
            if condition is not sympy.true:
                condition_cell.appendChild(self._print(condition))
            row.appendChild(condition_cell)
            table.appendChild(row)
        table.setAttribute("class", "cases")  # its cells set left (CSS: MathML Core has no columnalign)
        return self._element("mrow", None, self._element("mo", "{"), table)

    def _print(self, expr: sympy.Basic, **kwargs):
        """A function of the table as its row's ``mathml``: an operator (σ, tanh, step) set
        before its arguments in parentheses, or a layout (e to the argument, |x|)."""
        row = row_of(expr)
        if row is None or not row.mathml:
            return super()._print(expr, **kwargs)
        args = expr.args[: row.arguments[1]]
        if row.arguments[1] > 1:  # max and min: their arguments in sympy's canonical order
            args = sorted(args, key=sympy.default_sort_key)
        if has_slots(row.mathml):
            return self._placeholder(spell(row.mathml, args, lambda a: f"<mrow>{self._markup_of(self._print(a))}</mrow>"))
        inner = self.dom.createElement("mrow")
        for i, arg in enumerate(args):
            if i:
                inner.appendChild(self._element("mo", ","))
            inner.appendChild(self._print(arg))
        return self._element(
            "mrow", None, self._element("mi", row.mathml), self._element("mo", "\u2061"),
            self._fenced(inner),
        )

    def _fenced(self, inner):
        """``inner`` in parentheses: as tall as it where it holds a fraction (stretched), else
        the text font's (see :data:`OPEN`)."""
        mark = [self._element("mo", c) for c in "()"]
        if inner.getElementsByTagName("mfrac"):
            for mo in mark:
                mo.setAttribute("stretchy", "true")
        return self._element("mrow", None, mark[0], inner, mark[1])

    def _markup_of(self, node) -> str:
        """A printed node's markup, its placeholders filled in."""
        return self._fill(node.toxml())

    def _fill(self, text: str) -> str:
        text = _FENCE.sub(lambda m: _FENCES[m.group(0)], text)
        return _PLACEHOLDER.sub(lambda m: self._markup[int(m.group(1))], text)

    def _print_Add(self, expr: sympy.Add, order: str | None = None):
        late = self._settings["last"]
        terms = list(expr.args) if self._settings["order"] == "none" else self._as_ordered_terms(expr, order=order)
        if late:
            terms = [t for t in terms if not t.free_symbols & late] + [t for t in terms if t.free_symbols & late]
        mrow = self._element("mrow", None, self._print(terms[0]))
        for term in terms[1:]:
            negative = term.could_extract_minus_sign()
            mrow.appendChild(self._element("mo", "−" if negative else "+"))
            mrow.appendChild(self._print(-term if negative else term))
        return mrow

    def _print_Mul(self, expr: sympy.Mul):
        late = self._settings["last"]
        if self._settings["vectors"]:
            return self._elementwise(expr)
        split = decimal_coefficient(expr)
        if split is not None:  # 0.01 · x, where sympy writes x/100
            coefficient, rest = split
            if coefficient < 0:
                return self._element("mrow", None, self._element("mo", "−"), self._print(sympy.Mul(-coefficient, rest, evaluate=False)))
            if rest.is_Pow and rest.exp.is_extended_negative:
                return self._element("mfrac", None, self._placeholder(decimal_mathml(coefficient) or ""), self._print(1 / rest))
            return self._element("mrow", None, self._placeholder(decimal_mathml(coefficient) or ""), self._element("mo", "·"), self.parenthesize(rest, PRECEDENCE["Mul"]))
        if not (late and expr.is_Mul and expr.free_symbols & late):
            return self._plain_mul(expr)
        if expr.could_extract_minus_sign():
            return self._element("mrow", None, self._element("mo", "−"), self._print(-expr))
        numerator, denominator = sympy.fraction(expr, exact=True)
        if denominator == 1:
            return self._late_product(numerator)
        return self._element("mfrac", None, self._late_product(numerator), self._print(denominator))

    def _plain_mul(self, expr: sympy.Expr):
        """sympy's product, with the factors in the order they are held (order ``none``)."""
        if expr.could_extract_minus_sign():
            return self._element("mrow", None, self._element("mo", "−"), self._print(-expr))
        numerator, denominator = sympy.fraction(expr, exact=True)
        if denominator != 1:
            return self._element("mfrac", None, self._print(numerator), self._print(denominator))
        factors = list(numerator.args) if numerator.is_Mul else [numerator]
        mrow = self.dom.createElement("mrow")
        for i, factor in enumerate(factors):
            if i:
                mrow.appendChild(self._element("mo", "·"))
            mrow.appendChild(self.parenthesize(factor, PRECEDENCE["Mul"]))
        return mrow

    def _late_product(self, expr: sympy.Expr):
        if not expr.is_Mul:
            return self._print(expr)
        late = self._settings["last"]
        factors = sorted(expr.args, key=lambda a: (bool(a.free_symbols & late), not a.is_Number))
        mrow = self.dom.createElement("mrow")
        for i, factor in enumerate(factors):
            if i:
                mrow.appendChild(self._element("mo", "·"))
            mrow.appendChild(self.parenthesize(factor, PRECEDENCE["Mul"]))
        return mrow

    def _elementwise(self, expr: sympy.Mul):
        """A product of vectors, elementwise: (out − t) ⊙ out ⊙ (1 − out); numbers in front."""
        coefficient, factors = expr.as_coeff_mul()
        numerators = [f for f in factors if not (f.is_Pow and f.exp.is_negative)]
        denominators = [1 / f for f in factors if f.is_Pow and f.exp.is_negative]

        def joined(items):
            mrow = self.dom.createElement("mrow")
            for i, item in enumerate(items):
                if i:
                    mrow.appendChild(self._element("mo", "⊙"))
                mrow.appendChild(self.parenthesize(item, PRECEDENCE["Mul"]))
            return mrow

        body = joined(numerators) if numerators else self._element("mn", "1")
        if denominators:
            body = self._element("mfrac", None, body, joined(denominators))
        if coefficient == 1:
            return body
        if coefficient == -1:
            return self._element("mrow", None, self._element("mo", "−"), body)
        return self._element("mrow", None, self._print(coefficient), body)

    def parenthesize(self, item, level, strict=False):
        prec_val = precedence_traditional(item)
        if prec_val < level or (not strict and prec_val <= level):
            return self._fenced(self._print(item))
        return self._print(item)


def math_mathml(expr: sympy.Expr, names: Mapping[str, str] | None = None, vectors: bool = False, last: Iterable[sympy.Symbol] = ()) -> str:
    """``expr`` in presentation MathML; see :class:`ReportMathML` for the settings."""
    printer = ReportMathML({"names": dict(names or {}), "vectors": vectors, "last": frozenset(last)})
    return printer.doprint(expr)


def activation_mathml(activation) -> str:
    """A registry activation's name: σ, tanh, or relu upright; parameters as a subscript."""
    name = ACTIVATION_MATHML.get(activation.name, f"<mi>{html.escape(activation.name)}</mi>")
    if activation.params:
        subs = "<mo>,</mo>".join(f"{HYPER_MATHML.get(k, mi(k, italic=True))}<mo>=</mo>{number_mathml(v)}" for k, v in activation.params)
        name = f"<msub>{name}<mrow>{subs}</mrow></msub>"
    return name
