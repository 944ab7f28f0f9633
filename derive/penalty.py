"""The L2 penalty inside the loss: ``E = reduced loss + l2/2 * (sum of the squared weights)``.

``loss: {kind: cross_entropy, l2: 0.05}`` makes the penalty part of E (unlike the optimizer's
``weight_decay``): every form of dE/dw gains its derivative. One weight's share of the penalty is
:data:`TERM`, ``l2/2 * w**2``; its derivative, ``l2*w``, is ``sympy.diff`` of that term, never
typed in. Biases are not penalised. The penalty is added once to the batch's reduced loss (mean
or sum of the per-sample losses), not per sample: a sample's own loss and gradients are the
data loss alone.

The layer program holds the penalty as statements (:func:`penalty_statement`,
:func:`gradient_statement`): ``penalty = sum(l2*W1**2/2) + ...`` and per layer
``dpenalty_dW2 = l2*W2``, which the evaluator and the printers add after the reduction.
"""

from __future__ import annotations

import sympy

from chainrule.derive import naming
from chainrule.derive.program import EntrySum, Stage, Statement, in_vectors, vector

#: The penalty's setting, as E, the chains and claims write it.
L2 = sympy.Symbol(naming.L2, real=True)
#: A generic weight.
W = sympy.Symbol("w", real=True)
#: One weight's share of E.
TERM = L2 / 2 * W**2
#: The rule names of the penalty's statements in the layer program.
PENALTY_RULES = ("penalty", "penalty gradient")


def term(weight: sympy.Symbol) -> sympy.Expr:
    """``l2/2 * weight**2``: the weight's share of E."""
    return TERM.xreplace({W: weight})


def derivative(weight: sympy.Symbol) -> sympy.Expr:
    """d(penalty)/d(weight) = ``l2*weight``, by ``sympy.diff`` of the weight's term."""
    return sympy.diff(term(weight), weight)


def penalty_statement(weights: tuple[str, ...], layer: int) -> Statement:
    """``penalty = sum(l2*W1**2/2) + sum(l2*W2**2/2) + ...`` over the matrices ``weights``."""
    expr = sympy.Add(*[EntrySum(term(vector(name))) for name in weights], evaluate=False)
    return Statement(vector(naming.PENALTY), expr, Stage.LOSS, layer, "penalty", "penalty", note="added once to the reduced loss")


def gradient_statement(weight: str, layer: int) -> Statement:
    """``dpenalty_dW = l2*W``: the penalty's derivative for every weight of the matrix."""
    generic = derivative(W)
    expr = in_vectors(generic, {W: vector(weight)})
    return Statement(vector(naming.PENALTY_GRADIENT.format(param=weight)), expr, Stage.BACKWARD, layer, "penalty",
                     "penalty gradient", (f"dpenalty/d{weight}",))
