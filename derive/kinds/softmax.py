"""A dense layer with a softmax activation: ``net = W x + b``, ``out = softmax(net)``.

Its local derivative is a Jacobian, applied to the upstream gradient ``g`` without building it:
``delta = out * (g - sum(g * out))`` (:class:`~chainrule.derive.program.SoftmaxVJP`). As the
output layer, ``g = dE/dout`` is derived from the loss by sympy and the product simplified where
the loss allows it (cross-entropy over targets that sum to 1: ``delta = out - t``,
:func:`chainrule.derive.layers._softmax_delta`); where it does not close, the delta is computed
from ``w = out * dE/dout`` without cancelling where an output rounds to 1
(:class:`~chainrule.derive.program.SoftmaxDelta`). The weighted sums and the per-weight rules are
the dense layer's, and so are its nets' edges in the network's graph; its outputs differ: each
reads every net of the layer.
"""

from __future__ import annotations

import sympy

from chainrule.derive import naming
from chainrule.derive.kinds import dense
from chainrule.derive.layers import LOG_ONE_MINUS_OUT, LOG_OUT, ONE_MINUS_OUT, LayerForm
from chainrule.derive.registry import Y
from chainrule.derive.program import (
    LogOneMinusSoftmax, LogSoftmax, Softmax, SoftmaxDelta, SoftmaxVJP, Stage, Statement, vector, in_vectors,
)

KIND = "softmax"
net_reads, net_parameters, parameter_readers = dense.net_reads, dense.net_parameters, dense.parameter_readers
net_terms, net_bias, net_definition, out_definition = dense.net_terms, dense.net_bias, dense.net_definition, dense.out_definition


def out_reads(size: int, row: int) -> range:
    """The units of its layer (of ``size``) whose nets the output of unit ``row`` reads: every one."""
    return range(size)


def names(form: LayerForm, targets: str) -> dict:
    """The generic symbols as the layer's vectors; ``log_out`` and ``log_one_minus_out`` (the
    loss's logarithms of the outputs) computed from the net."""
    net = vector(form.net)
    return {**dense.names(form, targets), LOG_OUT: LogSoftmax(net), LOG_ONE_MINUS_OUT: LogOneMinusSoftmax(net)}


def activate(form: LayerForm, targets: str, kind: str = KIND) -> Statement:
    """``out = softmax(net)``."""
    return Statement(vector(form.out), Softmax(vector(form.net)), Stage.FORWARD, form.index, kind, "activation", function="softmax")


def forward(form: LayerForm, previous: str, targets: str) -> list[Statement]:
    return [dense.weighted_sums(form, previous, KIND), activate(form, targets)]


def output_delta(form: LayerForm, targets: str) -> list[Statement]:
    """``delta = out * (g - sum(g * out))`` with ``g = dE/dout``: closed where sympy closes it,
    else from ``w = out * g`` (statements ``q``, ``w``, ``wq`` before the delta)."""
    output = form.output
    assert output is not None
    vectors = names(form, targets)
    out, net = vector(form.out), vector(form.net)
    factors = (f"dE/d{form.out}", f"d{form.out}/d{form.net}")

    def statement(target: str, expr: sympy.Expr, rule: str, note: str = "", shown: sympy.Expr | None = None) -> Statement:
        return Statement(vector(target), expr, Stage.BACKWARD, form.index, KIND, rule, factors, note, shown=shown)

    if output.closed is not None:
        return [Statement(vector(form.delta), in_vectors(output.closed, vectors), Stage.BACKWARD, form.index, KIND, "output delta", factors,
                          output.constraint, simplified=output.simplified)]
    if output.weighted is None:
        return [statement(form.delta, SoftmaxVJP(out, in_vectors(output.dE_dy, vectors)), "output delta")]
    q, w, wq = (vector(f.format(name=form.name)) for f in (naming.SOFTMAX_ONE_MINUS_OUT, naming.SOFTMAX_WEIGHTED, naming.SOFTMAX_WEIGHTED_Q))
    low = sympy.Min(out, sympy.Rational(1, 2))
    near_one = in_vectors(output.weighted_near_one, {**vectors, ONE_MINUS_OUT: q})
    return [
        statement(q.name, sympy.exp(LogOneMinusSoftmax(net)), "1 - out"),
        statement(w.name, in_vectors(output.weighted, {**vectors, Y: low}), "out * dE/dout"),
        statement(wq.name, sympy.Piecewise((w * q, sympy.Le(out, sympy.Rational(1, 2))), (near_one, True)), "out * dE/dout * (1 - out)"),
        statement(form.delta, SoftmaxDelta(w, wq, net), "output delta", shown=SoftmaxVJP(out, in_vectors(output.dE_dy, vectors))),
    ]


def hidden_delta(form: LayerForm, above: LayerForm, targets: str) -> list[Statement]:
    return [Statement(vector(form.delta), SoftmaxVJP(vector(form.out), dense.upstream(above)), Stage.BACKWARD, form.index, KIND, "delta",
                      (f"dE/d{form.out}", f"d{form.out}/d{form.net}"))]


def gradients(form: LayerForm, previous: str) -> list[Statement]:
    return dense.gradients(form, previous, KIND)
