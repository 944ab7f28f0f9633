"""Activations and losses by name: each entry a definition, a few lines a row.

An entry holds what a function *is*. Its derivative always comes from ``sympy.diff``. Where people
write the derivative in terms of the unit's output (σ'(net) as out·(1 - out)), the entry holds
that form in ``in_output``, and the test suite proves it equal to ``sympy.diff`` of the definition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Callable, Mapping

import sympy

from chainrule.derive.formula import to_step_form  # re-exported: the registry's users spell steps so
from chainrule.derive.functions import row_of, step

X = sympy.Symbol("x", real=True)
Y = sympy.Symbol("y", real=True)
T = sympy.Symbol("t", real=True)


@dataclass(frozen=True)
class ActivationDef:
    """An activation function.

    Attributes:
        name: the registry name.
        define: ``f(x, **params)``, the definition.
        in_output: ``f'(x)`` written in ``y = f(x)`` (and the parameters), or None where the
            derivative cannot be written in the output alone, or would lose its digits so
            (elu's out + alpha, softplus' 1 - exp(-out) cancel for large negative nets).
        params: the parameters and their defaults (``alpha`` of leaky_relu).
        output_range: the open interval the outputs lie in, when bounded.
        init: ``glorot`` or ``he``: how seeded weights of a layer with this activation are drawn.
        whole_layer: True for softmax, whose units each depend on the whole layer.
    """

    name: str
    define: Callable[..., sympy.Expr]
    in_output: Callable[..., sympy.Expr] | None = None
    params: Mapping[str, float] = field(default_factory=dict)
    output_range: tuple[float, float] | None = None
    init: str = "glorot"
    whole_layer: bool = False


@dataclass(frozen=True)
class LossDef:
    """A loss, per output ``l(y, t)``, summed or averaged over the outputs.

    Attributes:
        per_output: ``l(y, t)``.
        mean: True when the per-output terms are averaged over the outputs (mse, bce).
        targets: ``real``, ``unit`` (each in [0, 1]) or ``distribution`` (>= 0, summing to 1).
        needs_unit_outputs: True when the outputs must lie in (0, 1) (a logarithm of y or 1 - y).
    """

    name: str
    per_output: Callable[[sympy.Expr, sympy.Expr], sympy.Expr]
    mean: bool = False
    targets: str = "real"
    needs_unit_outputs: bool = False


def _leaky(x: sympy.Expr, alpha: sympy.Expr) -> sympy.Expr:
    return sympy.Piecewise((alpha * x, x <= 0), (x, True))


def _elu(x: sympy.Expr, alpha: sympy.Expr) -> sympy.Expr:
    return sympy.Piecewise((alpha * (sympy.exp(x) - 1), x <= 0), (x, True))


def _gelu(x: sympy.Expr) -> sympy.Expr:
    inner = sympy.sqrt(2 / sympy.pi) * (x + sympy.Rational("0.044715") * x**3)
    return x / 2 * (1 + sympy.tanh(inner))


def softmax_unit(nets: tuple[sympy.Expr, ...], k: int) -> sympy.Expr:
    """Output ``k`` of a softmax over ``nets``: exp(net_k) / sum_m exp(net_m)."""
    return sympy.exp(nets[k]) / sympy.Add(*[sympy.exp(n) for n in nets])


def softmax_in_output(out_k: sympy.Expr, out_j: sympy.Expr, same: bool) -> sympy.Expr:
    """d out_k / d net_j of a softmax, written in its outputs: out_k (1 - out_k) or -out_k out_j."""
    return out_k * (1 - out_k) if same else -out_k * out_j


UNIT = (0.0, 1.0)
_activations = (
    ActivationDef("identity", lambda x: x, lambda y: sympy.Integer(1)),
    ActivationDef("sigmoid", lambda x: 1 / (1 + sympy.exp(-x)), lambda y: y * (1 - y), output_range=UNIT),
    ActivationDef("tanh", sympy.tanh, lambda y: 1 - y**2, output_range=(-1.0, 1.0)),
    ActivationDef("relu", lambda x: sympy.Piecewise((0, x <= 0), (x, True)), step, init="he"),
    ActivationDef(
        "leaky_relu", _leaky, lambda y, alpha: alpha + (1 - alpha) * step(y), {"alpha": 0.01}, init="he"
    ),
    # elu' and softplus' are computed in the net, as PyTorch does: written in the output they
    # cancel (out + alpha, 1 - exp(-out)) and lose every digit below net = -40 (0 for 8.6e-20).
    ActivationDef("elu", _elu, None, {"alpha": 1.0}, init="he"),
    ActivationDef("softplus", lambda x: sympy.log(1 + sympy.exp(x))),
    ActivationDef("gelu", _gelu, init="he"),
    ActivationDef("swish", lambda x: x / (1 + sympy.exp(-x)), init="he"),
    ActivationDef("softmax", lambda x: x, output_range=UNIT, whole_layer=True),
)
ACTIVATIONS: Mapping[str, ActivationDef] = MappingProxyType({a.name: a for a in _activations})

_losses = (
    LossDef("half_sse", lambda y, t: (t - y) ** 2 / 2),
    LossDef("sse", lambda y, t: (t - y) ** 2),
    LossDef("mse", lambda y, t: (t - y) ** 2, mean=True),
    LossDef(
        "bce",
        lambda y, t: -(t * sympy.log(y) + (1 - t) * sympy.log(1 - y)),
        mean=True,
        targets="unit",
        needs_unit_outputs=True,
    ),
    LossDef("cross_entropy", lambda y, t: -t * sympy.log(y), targets="distribution", needs_unit_outputs=True),
)
LOSSES: Mapping[str, LossDef] = MappingProxyType({loss.name: loss for loss in _losses})


# ---------------------------------------------------------------------------------------------
# Kinks: one spelling for derivatives that jump


def kink_arguments(expr: sympy.Expr) -> tuple[sympy.Expr, ...]:
    """The expressions that are zero exactly where ``expr`` or its derivative jumps: each
    function's kinks as its row of the table gives them, and each branch's condition.

    Finite differences are checked only at points where each of these is well away from zero.
    """
    found: list[sympy.Expr] = []
    for node in sympy.preorder_traversal(expr):
        row = row_of(node)
        if row is not None:
            found.extend(row.kinks(*node.args))
        elif isinstance(node, sympy.Piecewise):
            found.extend(c.lhs - c.rhs for _, c in node.args if isinstance(c, sympy.core.relational.Relational))
    return tuple(found)
