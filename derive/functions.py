"""The functions of formulas, one row each: adding a function is adding a row.

A row says what a call in a formula builds (sympy), how NumPy computes the function (the
overflow-safe way where there is one), how the emitted trainer writes it (NumPy on arrays, in
place into a buffer, ``math`` on floats), how the report typesets it, and where it or its
derivative jumps. Every module that meets a function reads it here and nowhere else: the formula
parser's allow-list and printer (:mod:`~chainrule.derive.formula`), the reserved names
(:mod:`~chainrule.derive.naming`), the derivation's numbers (:mod:`~chainrule.derive.numeric`),
the kinks finite differences stay away from (:func:`chainrule.derive.registry.kink_arguments`), the
trainer's printers (``codegen/trainer/printers.py``, helpers in ``context.py``) and the report's
LaTeX (``codegen/report/latex.py``). ``tests/test_functions.py`` checks every row: its NumPy, its
emitted code and its float code agree, its derivative is made of rows, its kinks are where it
jumps. Rows with ``formula=False`` (softplus) are made by the stable rewrites
(:mod:`~chainrule.derive.stable`), not written by users.

Templates (``code``, ``into``, ``math``, ``latex``) have slots: ``{0}``, ``{1}`` the arguments as
the printer writes them, ``{-0}`` the first one negated before it is written (``-(x - y)`` is
``y - x``), ``{args}`` all of them joined by ", ", ``{out}`` the array written into. A NumPy
template with ``{1}`` on a function of any number of arguments is folded: ``np.maximum(np.maximum(a,
b), c)``. A ``latex`` without slots is an operator (``\\tanh``), set as sympy sets functions
(``\\tanh^{2}{\\left(x \\right)}``); one with slots is set as written, a power after it.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import sympy


# ---------------------------------------------------------------------------------------------
# Functions that sympy does not have, or has too slowly


class sigmoid(sympy.Function):  # noqa: N801 - printed under this name
    """σ(u) = 1 / (1 + exp(-u)), computed by the emitted module without overflow."""

    nargs = 1


class softplus(sympy.Function):  # noqa: N801
    """log(1 + exp(u)), computed as ``logaddexp(0, u)``."""

    nargs = 1


class _Lean:
    """sympy's Max and Min compare every pair of arguments through factor_terms each time one is
    built, and every rebuild (substitution, printing, a derivative) builds again: a max of 8
    linear terms took 18 s to emit. These compare only what is decided at once (equal
    arguments, a constant difference) and leave the rest as written; values are the same."""

    @classmethod
    def _collapse_arguments(cls, args, **assumptions):
        return args

    @classmethod
    def _is_connected(cls, x, y):
        if x == y:
            return True
        if not (x - y).is_number:
            return False
        found = super()._is_connected(x, y)  # sympy's answer names its own classes: ours here
        return {sympy.Max: Max, sympy.Min: Min}.get(found, found)

    def fdiff(self, argindex=1):
        """d max(a_1, ..., a_n)/d a_i = step(a_i - max(the others)), the others built lean too
        (sympy's own builds them with its costly Max); min likewise, mirrored."""
        args, i = self.args, argindex - 1
        if len(args) <= 2 or not 0 <= i < len(args):
            return super().fdiff(argindex)
        others = type(self)(*(a for j, a in enumerate(args) if j != i))
        return sympy.Heaviside(args[i] - others if isinstance(self, sympy.Max) else others - args[i])


class Max(_Lean, sympy.Max):
    """max(...) of a formula; see :class:`_Lean`."""


class Min(_Lean, sympy.Min):
    """min(...) of a formula; see :class:`_Lean`."""


def step(u: sympy.Expr) -> sympy.Expr:
    """step(u): 1 for u > 0, else 0 (Heaviside with the value 0 at 0, as relu' is taken)."""
    return sympy.Heaviside(u, 0)


# ---------------------------------------------------------------------------------------------
# How NumPy computes them, on float64 arrays or floats


def _logistic(u: Any) -> Any:
    """1 / (1 + exp(-u)) without overflow: exp is only taken of -|u|."""
    e = np.exp(-np.abs(u))
    return np.where(np.asarray(u) >= 0, 1 / (1 + e), e / (1 + e))


def _heaviside(u: Any, at_zero: Any = 0.5) -> Any:
    return np.where(u > 0, 1.0, np.where(u < 0, 0.0, at_zero))


def _folded(pair: Callable[[Any, Any], Any]) -> Callable[..., Any]:
    """A function of two arrays applied to any number of them, left to right."""
    return lambda *args: functools.reduce(pair, args)


_erf = np.vectorize(math.erf, otypes=[float])

_SIGMOID_HELPER = '''def sigmoid(z, out=None):
    """1 / (1 + exp(-z)) without overflow at any z: exp(-logaddexp(0, -z))."""
    out = np.negative(z, out=out)
    np.logaddexp(0.0, out, out=out)
    np.negative(out, out=out)
    return np.exp(out, out=out)'''

_ERF_HELPER = '''def erf(z):
    """The error function, elementwise (math.erf: NumPy has none)."""
    return np.vectorize(math.erf, otypes=[z.dtype])(z)'''


# ---------------------------------------------------------------------------------------------
# Kinks: the expressions that are zero where a function or its derivative jumps


def _smooth(*args: sympy.Expr) -> tuple[sympy.Expr, ...]:
    return ()


def _at_zero(u: sympy.Expr, *rest: sympy.Expr) -> tuple[sympy.Expr, ...]:
    return (u,)


def _ties(*args: sympy.Expr) -> tuple[sympy.Expr, ...]:
    """max and min jump where two arguments are equal."""
    return tuple(a - b for i, a in enumerate(args) for b in args[i + 1 :])


# ---------------------------------------------------------------------------------------------
# The table


@dataclass(frozen=True, eq=False)
class Function:
    """A function of formulas: one row of :data:`FUNCTIONS`.

    Attributes:
        name: as formulas write it (``tanh``); reserved, so no unit or parameter takes it.
        build: what a call in a formula becomes: the sympy class (``sympy.tanh``) or a definition
            in other rows (``sigmoid``: 1/(1 + exp(-u)), so that derivations show it so).
        node: the sympy class of the nodes printers and evaluators meet (``sympy.Heaviside`` for
            ``step``, the stable form's :class:`sigmoid`); by default ``build`` when it is a
            class; None where the function is built of others (``sqrt`` is a power).
        arguments: the smallest and largest number of arguments a formula may give it.
        numpy: computes a node on float64 arrays or floats, from the node's arguments, without
            overflow where there is a way.
        code: NumPy source on arrays in the emitted trainer (a template; see the module).
        into: NumPy source writing the result into the array ``{out}``, or "" where there is no
            such call.
        helper: the source of a function the emitted trainer defines for ``code`` (NumPy has no
            erf), named as the row.
        math: Python source on floats (``math``), for the straight-line code of small networks.
        latex: an operator (``\\tanh``) or a layout with slots (``\\left|{{0}}\\right|``).
        mathml: the same in presentation MathML (the HTML report): an operator's name, set
            upright before its arguments in parentheses (``tanh``), or a layout with slots, each
            filled with one element (``<msup><mi>e</mi>{0}</msup>``).
        kinks: the node's arguments -> the expressions that are zero where the function or its
            derivative jumps; finite differences are checked away from them.
        formula: False for a row the stable rewrites make and formulas cannot spell (softplus).
        compares: True for max and min, whose derivatives grow with each argument and level
            of nesting (:data:`chainrule.derive.formula.MAX_PIECEWISE_DEPTH`).
    """

    name: str
    build: Callable[..., sympy.Expr]
    node: type | None = None
    arguments: tuple[int, int] = (1, 1)
    numpy: Callable[..., Any] | None = None
    code: str = ""
    into: str = ""
    helper: str = ""
    math: str = ""
    latex: str = ""
    mathml: str = ""
    kinks: Callable[..., tuple[sympy.Expr, ...]] = _smooth
    formula: bool = True
    compares: bool = False

    def __post_init__(self) -> None:
        if self.node is None and isinstance(self.build, type):
            object.__setattr__(self, "node", self.build)


_ROWS = (
    Function("exp", sympy.exp, numpy=np.exp, code="np.exp({0})", into="np.exp({0}, out={out})", math="math.exp({0})", latex="e^{{0}}", mathml="<msup><mi>e</mi>{0}</msup>"),
    Function("log", sympy.log, numpy=np.log, code="np.log({0})", into="np.log({0}, out={out})", math="math.log({0})", latex=r"\log{\left({0} \right)}", mathml="log"),
    Function("sqrt", sympy.sqrt),  # a power, u**(1/2): computed and printed as one
    Function("tanh", sympy.tanh, numpy=np.tanh, code="np.tanh({0})", into="np.tanh({0}, out={out})", math="math.tanh({0})", latex=r"\tanh", mathml="tanh"),
    Function("sin", sympy.sin, numpy=np.sin, code="np.sin({0})", into="np.sin({0}, out={out})", math="math.sin({0})", latex=r"\sin", mathml="sin"),
    Function("cos", sympy.cos, numpy=np.cos, code="np.cos({0})", into="np.cos({0}, out={out})", math="math.cos({0})", latex=r"\cos", mathml="cos"),
    Function("atan", sympy.atan, numpy=np.arctan, code="np.arctan({0})", into="np.arctan({0}, out={out})", math="math.atan({0})", latex=r"\arctan", mathml="arctan"),
    Function("abs", sympy.Abs, numpy=np.abs, code="abs({0})", into="np.abs({0}, out={out})", math="abs({0})", latex=r"\left|{{0}}\right|",
             mathml='<mrow><mo stretchy="false">|</mo>{0}<mo stretchy="false">|</mo></mrow>', kinks=_at_zero),
    Function("erf", sympy.erf, numpy=_erf, code="erf({0})", helper=_ERF_HELPER, math="math.erf({0})", latex=r"\operatorname{erf}", mathml="erf"),
    Function("sign", sympy.sign, numpy=np.sign, code="np.sign({0})", math="(0.0 if {0} == 0 else math.copysign(1, {0}))", latex=r"\operatorname{sign}", mathml="sign", kinks=_at_zero),
    Function("step", step, sympy.Heaviside, numpy=_heaviside, code="np.heaviside({0}, 0.0)", into="np.greater({0}, 0.0, out={out})", math="({0} > 0)",
             latex=r"\operatorname{step}\left({0}\right)", mathml="step", kinks=_at_zero),
    Function("sigmoid", lambda u: 1 / (1 + sympy.exp(-u)), sigmoid, numpy=_logistic, code="sigmoid({0})", into="sigmoid({0}, out={out})",
             helper=_SIGMOID_HELPER, math="1.0/(1.0 + math.exp({-0}))", latex=r"\sigma", mathml="σ"),
    Function("max", Max, sympy.Max, arguments=(2, 16), numpy=_folded(np.maximum), code="np.maximum({0}, {1})", math="max({args})",
             latex=r"\max\left({args}\right)", mathml="max", kinks=_ties, compares=True),
    Function("min", Min, sympy.Min, arguments=(2, 16), numpy=_folded(np.minimum), code="np.minimum({0}, {1})", math="min({args})",
             latex=r"\min\left({args}\right)", mathml="min", kinks=_ties, compares=True),
    Function("softplus", lambda u: sympy.log(1 + sympy.exp(u)), softplus, numpy=lambda u: np.logaddexp(0.0, u), code="np.logaddexp(0.0, {0})",
             into="np.logaddexp(0.0, {0}, out={out})", math="math.log(1.0 + math.exp({0}))", latex=r"\operatorname{softplus}", mathml="softplus", formula=False),
)
#: Every function, by name.
FUNCTIONS: Mapping[str, Function] = MappingProxyType({row.name: row for row in _ROWS})
#: The functions formulas may call, by name: the parser's allow-list.
FORMULA_FUNCTIONS: Mapping[str, Function] = MappingProxyType({row.name: row for row in _ROWS if row.formula})
#: Each node class, for :func:`row_of`.
_BY_NODE: Mapping[type, Function] = MappingProxyType({row.node: row for row in _ROWS if row.node is not None})
#: The helpers the emitted trainer defines, by name, in the table's order.
HELPERS: Mapping[str, str] = MappingProxyType({row.name: row.helper for row in _ROWS if row.helper})


def row_of(expr: sympy.Basic) -> Function | None:
    """The row of a node (a formula's ``Max`` is sympy's Max), or None for any other node.

    The node's own class and its bases are looked up, not ``isinstance``: sympy counts the power
    ``E**x`` as an ``exp``, but its arguments are a power's.
    """
    for cls in type(expr).__mro__:
        row = _BY_NODE.get(cls)
        if row is not None:
            return row
    return None


_SLOT = re.compile(r"\{(-?)(\d+|args|out)\}")


def spell(template: str, args: Sequence[Any], show: Callable[[Any], str] = str, out: str = "") -> str:
    """``template`` with its slots filled (see the module): each argument written by ``show``."""

    def slot(match: re.Match) -> str:
        negated, key = match.groups()
        if key == "args":
            return ", ".join(show(a) for a in args)
        if key == "out":
            return out
        arg = args[int(key)]
        return show(-arg if negated else arg)

    return _SLOT.sub(slot, template)


def has_slots(template: str) -> bool:
    """True when ``template`` has slots; a ``latex`` without them is an operator (``\\tanh``)."""
    return _SLOT.search(template) is not None


def folds(row: Function) -> bool:
    """True when ``row.code`` takes two arguments of a function that takes more: printed folded."""
    return "{1}" in row.code and row.arguments[1] > 2
