"""LaTeX for the report: a sympy printer, the spec's names and numbers in math, escaped text.

Everything here returns :class:`Tex`, a ``str`` that is LaTeX source made by this module. The
report's template environment refuses any other string (:func:`environment`), so a user string
can reach TeX only through :func:`escape_text` (free text: the description, the file name) or
:func:`name_tex` (names, which the spec loader has already checked to be ASCII identifiers:
``[A-Za-z_][A-Za-z0-9_]*``, so ``\\``, ``^``, ``{``, ``%`` and non-ASCII letters cannot occur in
them; ``_`` is the one character they can hold that TeX treats specially).

Every number the derivation computed is written as ``\\val{...}`` (a macro that prints its
argument), to 9 significant digits as worked examples print them, so that a reader of the
``.tex`` (or a test) can find each one.
"""

from __future__ import annotations

import functools
import re
from typing import Iterable, Mapping

import jinja2
import sympy
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import PRECEDENCE

from chainrule.derive import naming
from chainrule.derive.formula import decimal_coefficient, decimal_text
from chainrule.derive.functions import has_slots, row_of, spell
from chainrule.derive.optimizers import THETA

from chainrule.codegen.report.latex_text import text_tex

DIGITS = 9


class Tex(str):
    """LaTeX source made by this module (escaped text, printed math); see the module docstring."""

    __slots__ = ()


class Printable:
    """A value of the report's document (:mod:`~chainrule.codegen.report.document`: math and prose)
    that prints itself as LaTeX made by this module's printers; the template prints it so."""

    __slots__ = ()

    def tex(self) -> Tex:
        raise NotImplementedError




# ---------------------------------------------------------------------------------------------
# Text


def escape_text(text: str) -> Tex:
    """``text`` as LaTeX text that prints it: specials as glyphs, what the report's fonts have
    (quotes, dashes, accented letters, µ, Greek) typeset, the rest folded to ASCII or ``?``;
    see :mod:`chainrule.codegen.report.latex_text`."""
    return Tex(text_tex(text))




def code_text(text: str) -> Tex:
    """``text`` in typewriter type (a file name, a command), escaped."""
    return Tex(r"\texttt{" + text_tex(text, typewriter=True) + "}")


# ---------------------------------------------------------------------------------------------
# Numbers


def number_text(value: float, digits: int = DIGITS) -> str:
    """A value to 9 (or ``digits``) significant digits, as worked examples print them (``-0`` as ``0``)."""
    return f"{value + 0.0:.{digits}g}"


def number_tex(value: float, digits: int = DIGITS) -> Tex:
    """``\\val{0.593269992}``; powers of ten as ``\\val{8.2\\times 10^{-5}}``."""
    text = number_text(value, digits)
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = rf"{mantissa}\times 10^{{{int(exponent)}}}"
    elif text in ("inf", "-inf", "nan"):
        text = {"inf": r"\infty", "-inf": r"-\infty", "nan": r"\mathrm{NaN}"}[text]
    return Tex(rf"\val{{{text}}}")


def decimal_tex(value: sympy.Expr) -> Tex | None:
    """A fraction the user wrote as a decimal (:func:`decimal_parts`) as one: ``0.044715``,
    ``10^{-8}``, ``2.5 \\cdot 10^{-7}``; None for any other number."""
    text = decimal_text(value)
    if text is None or "e" not in text:
        return None if text is None else Tex(text)
    mantissa, exponent = text.split("e")
    sign, mantissa = ("-", mantissa[1:]) if mantissa.startswith("-") else ("", mantissa)
    return Tex(sign + (f"10^{{{exponent}}}" if mantissa == "1" else rf"{mantissa} \cdot 10^{{{exponent}}}"))


def operand_tex(value: float) -> Tex:
    """A value inside a product, sum or power: negative values and powers of ten in parentheses."""
    text = number_tex(value)
    return Tex(f"({text})") if value < 0 or r"\times" in text else text


# ---------------------------------------------------------------------------------------------
# Names


_LETTER_INDEX = re.compile(r"([A-Za-z]+)([0-9]+)")
_PREFIXES = (
    (naming.NET.format(unit=""), r"\mathrm{net}"),
    (naming.OUT.format(unit=""), r"\mathrm{out}"),
    (naming.DELTA_UNIT.format(unit=""), r"\delta"),
)
#: The optimizers' settings as textbooks write them.
HYPER_TEX: Mapping[str, str] = {
    "lr": r"\eta", "momentum": r"\mu", "alpha": r"\alpha", "beta1": r"\beta_{1}", "beta2": r"\beta_{2}",
    "eps": r"\epsilon", "weight_decay": r"\lambda", THETA.name: r"\theta",
}
#: The layer form's vectors and matrices (names as in the emitted trainer), in bold.
_VECTOR_PREFIXES = (
    (naming.LAYER_NET.format(name=""), r"\mathbf{net}"),
    (naming.LAYER_OUT.format(name=""), r"\mathbf{out}"),
    (naming.LAYER_DELTA.format(name=""), r"\boldsymbol{\delta}"),
    (naming.LAYER_INITIAL.format(name=""), r"\mathbf{h0}"),
)


def _plain_name(name: str) -> str:
    """An identifier in math: ``w5`` as w₅, ``out`` or ``w1_23`` upright-italic as written."""
    if len(name) == 1:
        return name
    match = _LETTER_INDEX.fullmatch(name)
    if match:
        letters = match.group(1) if len(match.group(1)) == 1 else rf"\mathit{{{match.group(1)}}}"
        return f"{letters}_{{{match.group(2)}}}"
    return r"\mathit{" + name.replace("_", r"\_") + "}"


def _subscript_name(name: str) -> str:
    """A unit name as the subscript of net, out or delta: ``h1`` as written, underscores escaped."""
    return name if name.isalnum() else r"\mathit{" + name.replace("_", r"\_") + "}"


@functools.lru_cache(maxsize=65536)
def name_tex(name: str) -> Tex:
    """A symbol of the scalar form in math: ``net_h1`` as net with subscript h1, ``w5``, ``E``.

    ``name`` is an identifier (checked by the spec loader); a name that is not is refused here
    too, so nothing unchecked reaches TeX.
    """
    if not (name.isascii() and name.isidentifier()):
        raise ValueError(f"not an identifier: {name!r}")
    for prefix, tex in _PREFIXES:
        if name.startswith(prefix) and len(name) > len(prefix):
            return Tex(f"{tex}_{{{_subscript_name(name[len(prefix):])}}}")
    return Tex(_plain_name(name))


@functools.lru_cache(maxsize=4096)
def vector_tex(name: str) -> Tex:
    """A name of the layer form in math: ``net_h`` bold, ``W2`` as W₂, ``x`` and ``t`` bold."""
    if not (name.isascii() and name.isidentifier()):
        raise ValueError(f"not an identifier: {name!r}")
    for prefix, tex in _VECTOR_PREFIXES:
        if name.startswith(prefix) and len(name) > len(prefix):
            return Tex(f"{tex}_{{{_subscript_name(name[len(prefix):])}}}")
    if base := naming.vector_base(name):  # x_vec (named so beside a unit x) is bold x all the same
        return Tex(rf"\mathbf{{{base}}}")
    match = _LETTER_INDEX.fullmatch(name)
    if match and match.group(1) in ("W", "U", "b"):
        return Tex(rf"\mathbf{{{match.group(1)}}}_{{{match.group(2)}}}")
    return name_tex(name)












# ---------------------------------------------------------------------------------------------
# Expressions


class ReportPrinter(LatexPrinter):
    """sympy's LaTeX printer with the report's deviations, one method each.

    Settings (besides sympy's): ``names`` maps a symbol name to its LaTeX (numbers substituted,
    ∂E/∂w5, η); ``vectors`` prints symbols as the layer form's vectors and products as
    elementwise (⊙); ``last`` holds symbols written last in sums and products (η ∂E/∂w5).
    """

    _default_settings = {**LatexPrinter._default_settings, "mul_symbol": "dot", "order": "none", "names": {}, "vectors": False, "last": frozenset()}

    def _print_Symbol(self, expr: sympy.Symbol, style: str = "plain") -> str:
        names = self._settings["names"]
        if expr.name in names:
            return names[expr.name]
        if expr.name in HYPER_TEX:
            return HYPER_TEX[expr.name]
        return vector_tex(expr.name) if self._settings["vectors"] else name_tex(expr.name)

    def _print_Rational(self, expr: sympy.Rational) -> str:
        """Decimals as decimals (``10^{-8}``, ``0.044715``), not ``\\frac{1}{100000000}``."""
        return decimal_tex(expr) or super()._print_Rational(expr)

    def _print(self, expr: sympy.Basic, **kwargs) -> str:
        """A function of the table as its row's ``latex`` (``exp`` is the power it is raised to):
        an operator set as sympy sets functions, ``\\tanh^{2}{\\left(x \\right)}``; a layout
        as written, with the power after it (the layout in parentheses where it holds a power)."""
        row = row_of(expr)
        if row is None or not row.latex:
            return super()._print(expr, **kwargs)
        exp, args = kwargs.get("exp"), expr.args[: row.arguments[1]]
        if row.arguments[1] > 1:  # max and min: their arguments in sympy's canonical order
            args = sorted(args, key=sympy.default_sort_key)
        if not has_slots(row.latex):
            power = f"^{{{exp}}}" if exp else ""
            return rf"{row.latex}{power}{{\left({', '.join(self._print(a) for a in args)} \right)}}"
        text = spell(row.latex, args, self._print)
        if not exp:
            return text
        return rf"\left({text}\right)^{{{exp}}}" if "^" in row.latex else f"{text}^{{{exp}}}"

    def _print_Add(self, expr: sympy.Add, order: str | None = None) -> str:
        late = self._settings["last"]
        if not late:
            return super()._print_Add(expr, order)
        terms = self._as_ordered_terms(expr, order=order)
        terms = [t for t in terms if not t.free_symbols & late] + [t for t in terms if t.free_symbols & late]
        return super()._print_Add(sympy.Add(*terms, evaluate=False), order="none")

    def _print_Mul(self, expr: sympy.Mul) -> str:
        late = self._settings["last"]
        if self._settings["vectors"]:
            return self._elementwise(expr)
        split = decimal_coefficient(expr)
        if split is not None:  # 0.01 \cdot x, where sympy writes \frac{x}{100}
            coefficient, rest = split
            if coefficient < 0:
                return "- " + self._print(sympy.Mul(-coefficient, rest, evaluate=False))
            if rest.is_Pow and rest.exp.is_extended_negative:
                return rf"\frac{{{decimal_tex(coefficient)}}}{{{self._print(1 / rest)}}}"
            return rf"{decimal_tex(coefficient)} \cdot {self.parenthesize(rest, PRECEDENCE['Mul'], strict=True)}"
        # sympy's _print_Pow hands 1/x here too: only a real product is reordered.
        if not (expr.is_Mul and expr.free_symbols & late):
            return super()._print_Mul(expr)
        if expr.could_extract_minus_sign():
            return "- " + self._print(-expr)
        numerator, denominator = sympy.fraction(expr, exact=True)
        if denominator == 1:
            return self._late_product(numerator)
        return rf"\frac{{{self._late_product(numerator)}}}{{{self._print(denominator)}}}"

    def _late_product(self, expr: sympy.Expr) -> str:
        """A product with the factors holding ``last`` symbols at the end, numbers in front."""
        if not expr.is_Mul:
            return self._print(expr)
        late = self._settings["last"]
        factors = sorted(expr.args, key=lambda a: (bool(a.free_symbols & late), not a.is_Number))
        return r" \cdot ".join(self.parenthesize(f, PRECEDENCE["Mul"]) for f in factors)

    def _elementwise(self, expr: sympy.Mul) -> str:
        """A product of vectors, elementwise: (out − t) ⊙ out ⊙ (1 − out); numbers in front."""
        coefficient, factors = expr.as_coeff_mul()
        numerators = [f for f in factors if not (f.is_Pow and f.exp.is_negative)]
        denominators = [1 / f for f in factors if f.is_Pow and f.exp.is_negative]
        body = r" \odot ".join(self.parenthesize(f, PRECEDENCE["Mul"]) for f in numerators) or "1"
        if denominators:
            below = r" \odot ".join(self.parenthesize(f, PRECEDENCE["Mul"]) for f in denominators)
            body = rf"\frac{{{body}}}{{{below}}}"
        if coefficient == 1:
            return body
        if coefficient == -1:
            return "- " + body
        return f"{self._print(coefficient)} {body}"


def math_tex(expr: sympy.Expr, names: Mapping[str, str] | None = None, vectors: bool = False, last: Iterable[sympy.Symbol] = ()) -> Tex:
    """``expr`` in LaTeX math; see :class:`ReportPrinter` for the settings."""
    printer = ReportPrinter({"names": dict(names or {}), "vectors": vectors, "last": frozenset(last)})
    return Tex(printer.doprint(expr))


# ---------------------------------------------------------------------------------------------
# Width: how long a piece of math is when typeset, roughly, in characters


_ONE_ARGUMENT = {"mathrm", "mathit", "mathbf", "boldsymbol", "operatorname", "val", "text", "texttt"}
#: Sub- and superscripts are set at 70 % (\\scriptstyle: 7.7 pt in 11 pt).
_SCRIPT = 0.7
#: Bold letters are wider than the average character.
_BOLD, _BOLD_WIDTH = {"mathbf", "boldsymbol"}, 1.2
#: Operators printed as their name in upright letters (\\tanh is four letters wide, not one).
_NAMED = {"arccos", "arcsin", "arctan", "cos", "cosh", "exp", "ln", "log", "max", "min", "sin", "sinh", "tan", "tanh"}
_OPERATORS = {"cdot", "odot", "times", "leq", "geq", "in"}
_NO_WIDTH = {"left", "right", "bigl", "bigr", ",", "!", "displaystyle"}


def width(tex: str) -> float:
    """The typeset width of ``tex`` in average characters (fractions count their wider part,
    sub- and superscripts 0.7): enough to decide where an equation breaks."""
    value, _ = _width(tex, 0)
    return value


def _group(tex: str, i: int) -> tuple[float, int]:
    """Width of the group or single token at ``i``."""
    while i < len(tex) and tex[i] == " ":
        i += 1
    if i < len(tex) and tex[i] == "{":
        return _width(tex, i + 1, closing=True)
    if i < len(tex) and tex[i] == "\\":
        match = re.match(r"\\([A-Za-z]+|.)", tex[i:])
        return 1.0, i + (match.end() if match else 1)
    return (1.0, i + 1) if i < len(tex) else (0.0, i)


def _width(tex: str, i: int, closing: bool = False) -> tuple[float, int]:
    total = 0.0
    while i < len(tex):
        char = tex[i]
        if char == "}" and closing:
            return total, i + 1
        if char in "_^":
            w, i = _group(tex, i + 1)
            total += _SCRIPT * w
        elif char == "{":
            w, i = _width(tex, i + 1, closing=True)
            total += w
        elif char == "\\":
            match = re.match(r"\\([A-Za-z]+|.)", tex[i:])
            command = match.group(1) if match else ""
            i += match.end() if match else 1
            if command == "frac":
                top, i = _group(tex, i)
                bottom, i = _group(tex, i)
                total += max(top, bottom) + 0.5
            elif command in _ONE_ARGUMENT:
                w, i = _group(tex, i)
                total += w * (_BOLD_WIDTH if command in _BOLD else 1)
            elif command in _NAMED:
                total += len(command)
            elif command == "quad":
                total += 2
            elif command in _OPERATORS:
                total += 2.2
            elif command not in _NO_WIDTH:
                total += 1
        elif char in "+-":
            total += 2.2
            i += 1
        elif char in "=<>":
            total += 2.8
            i += 1
        elif char != " ":
            total += 1
            i += 1
        else:
            i += 1
    return total, i


# ---------------------------------------------------------------------------------------------
# The template environment


def _only_tex(value: object) -> object:
    """Every value a template prints must be :class:`Tex`, a number, or math or prose of
    :mod:`~chainrule.codegen.report.document` (printed as LaTeX here): a plain string from
    anywhere else (a user's) would reach TeX unescaped."""
    if isinstance(value, Tex) or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    if isinstance(value, Printable):
        return value.tex()
    raise TypeError(f"the report template printed {type(value).__name__} {value!r:.60}, expected Tex")


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """Templates from ``codegen/report/templates`` with delimiters that cannot collide with LaTeX's
    braces and ``%``: ``\\VAR{...}``, ``\\BLOCK{...}``, ``\\#{...}``; undefined names are
    errors; everything printed must be :class:`Tex`."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("chainrule.codegen.report", "templates"),
        block_start_string=r"\BLOCK{",
        block_end_string="}",
        variable_start_string=r"\VAR{",
        variable_end_string="}",
        comment_start_string=r"\#{",
        comment_end_string="}",
        line_statement_prefix=None,
        line_comment_prefix="%#",
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
        finalize=_only_tex,
    )


ACTIVATION_TEX = {"sigmoid": r"\sigma", "tanh": r"\tanh", "identity": r"\operatorname{id}"}


def activation_tex(activation) -> Tex:
    """A registry activation's name in math: σ, tanh, or relu upright; parameters as a subscript."""
    name = ACTIVATION_TEX.get(activation.name, rf"\operatorname{{{escape_text(activation.name)}}}")
    if activation.params:
        name += "_{" + ",".join(rf"{HYPER_TEX.get(k, k)} = {number_tex(v)}" for k, v in activation.params) + "}"
    return Tex(name)
