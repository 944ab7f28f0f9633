"""A dense layer with a softmax activation: ``net = W x + b``, ``out = softmax(net)``.

Its local derivative is a Jacobian, applied to the upstream gradient ``g`` without building it:
``delta = out * (g - sum(g * out))`` (:class:`~chainrule.derive.program.SoftmaxVJP`). As the
output layer, ``g = dE/dout`` is derived from the loss by sympy and the product simplified where
the loss allows it (cross-entropy over targets that sum to 1: ``delta = out - t``,
:func:`chainrule.derive.layers._softmax_delta`); where it does not close, the delta is computed
from ``w = out * dE/dout`` without cancelling where an output rounds to 1
(:class:`~chainrule.derive.program.SoftmaxDelta`). The weighted sums and the per-weight rules are
the dense layer's.
"""

from __future__ import annotations

import sympy

from chainrule.derive.kinds import dense
from chainrule.derive.layers import LOG_ONE_MINUS_OUT, LOG_OUT, ONE_MINUS_OUT, LayerForm
from chainrule.derive.registry import Y
from chainrule.derive.program import (
    Backprop, LogOneMinusSoftmax, LogSoftmax, Softmax, SoftmaxDelta, SoftmaxVJP, Stage, Statement, Vector, in_vectors,
)

KIND = "softmax"


def names(form: LayerForm, targets: str) -> dict:
    """The generic symbols as the layer's vectors; ``log_out`` and ``log_one_minus_out`` (the
    loss's logarithms of the outputs) computed from the net."""
    net = Vector(form.net)
    return {**dense.names(form, targets), LOG_OUT: LogSoftmax(net), LOG_ONE_MINUS_OUT: LogOneMinusSoftmax(net)}


def forward(form: LayerForm, previous: str, targets: str) -> list[Statement]:
    return [dense.weighted_sums(form, previous, KIND),
            Statement(Vector(form.out), Softmax(Vector(form.net)), Stage.FORWARD, form.index, KIND, "activation", function="softmax")]


def output_delta(form: LayerForm, targets: str) -> list[Statement]:
    """``delta = out * (g - sum(g * out))`` with ``g = dE/dout``: closed where sympy closes it,
    else from ``w = out * g`` (statements ``q``, ``w``, ``wq`` before the delta)."""
    output = form.output
    assert output is not None
    vectors = names(form, targets)
    out, net = Vector(form.out), Vector(form.net)
    factors = (f"dE/d{form.out}", f"d{form.out}/d{form.net}")

    def statement(target: str, expr: sympy.Expr, rule: str, note: str = "") -> Statement:
        return Statement(Vector(target), expr, Stage.BACKWARD, form.index, KIND, rule, factors, note)

    if output.closed is not None:
        return [statement(form.delta, in_vectors(output.closed, vectors), "output delta", output.constraint)]
    if output.weighted is None:
        return [statement(form.delta, SoftmaxVJP(out, in_vectors(output.dE_dy, vectors)), "output delta")]
    q, w, wq = (Vector(f"{part}_{form.name}") for part in ("q", "w", "wq"))
    low = sympy.Min(out, sympy.Rational(1, 2))
    near_one = in_vectors(output.weighted_near_one, {**vectors, ONE_MINUS_OUT: q})
    return [
        statement(q.name, sympy.exp(LogOneMinusSoftmax(net)), "1 - out"),
        statement(w.name, in_vectors(output.weighted, {**vectors, Y: low}), "out * dE/dout"),
        statement(wq.name, sympy.Piecewise((w * q, sympy.Le(out, sympy.Rational(1, 2))), (near_one, True)), "out * dE/dout * (1 - out)"),
        statement(form.delta, SoftmaxDelta(w, wq, net), "output delta"),
    ]


def hidden_delta(form: LayerForm, above: LayerForm, targets: str) -> Statement:
    upstream = Backprop(Vector(above.weight), Vector(above.delta))
    return Statement(Vector(form.delta), SoftmaxVJP(Vector(form.out), upstream), Stage.BACKWARD, form.index, KIND, "delta",
                     (f"dE/d{form.out}", f"d{form.out}/d{form.net}"))


def gradients(form: LayerForm, previous: str) -> list[Statement]:
    return dense.gradients(form, previous, KIND)
