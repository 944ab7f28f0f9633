"""A recurrent layer (``kind: rnn``), PyTorch's ``nn.RNN`` with one bias (Elman):
``net_t = W x_t + U h_(t-1) + b``, ``h_t = out_t = f(net_t)``, from ``h_0`` (``initial``).

Its rules, each from the network's own definitions:

- forward, in a loop over the steps t = 1, ..., T (:data:`~chainrule.derive.program.FORWARD_IN_TIME`):
  the weighted sums (:class:`~chainrule.derive.program.RecurrentAffine`, the output of the step
  before by :class:`~chainrule.derive.program.Previous`), then f applied to each (the dense
  kind's statement: f, and below f', derived by sympy);
- backpropagation through time, in a loop t = T, ..., 1
  (:data:`~chainrule.derive.program.BACKWARD_IN_TIME`): dE/dh_t has two parts, from the layer
  above at step t and through h_(t+1) (``U^T delta_(t+1)``, by
  :class:`~chainrule.derive.program.Following`; none after the last step), and
  ``delta_t = (W_above^T delta_above_t + U^T delta_(t+1)) * f'(net_t)``;
- per weight, each shared by every step, the sum over the steps: ``dE/dW = sum_t delta_t x_t^T``,
  ``dE/dU = sum_t delta_t h_(t-1)^T``, ``dE/db = sum_t delta_t`` (:class:`Outer` and
  :class:`BiasSum` sum a sequence's steps as they sum a batch's samples);
- the initial state's, ``dE/dh_0 = U^T delta_1`` (h_0 is not trained: a constant of the spec).

The per-weight (scalar) chains through time are not built yet: a network with an rnn takes the
layer-level route (:func:`chainrule.derive.derivation.is_small`).
"""

from __future__ import annotations

import dataclasses

import sympy

from chainrule.derive import naming
from chainrule.derive.kinds import dense
from chainrule.derive.layers import LayerForm
from chainrule.derive.program import (
    BACKWARD_IN_TIME, FORWARD_IN_TIME, AtFirstStep, Backprop, BiasSum, Chain, Following, Outer, Previous, RecurrentAffine, Stage, Statement, vector,
)

KIND = "rnn"
out_reads, names, net_reads, net_parameters, parameter_readers = (
    dense.out_reads, dense.names, dense.net_reads, dense.net_parameters, dense.parameter_readers)


def previous_state(form: LayerForm) -> sympy.Expr:
    """``h_(t-1)``: the layer's outputs at the step before, ``h_0`` at the first."""
    assert form.initial is not None
    return Previous(vector(form.out), vector(form.initial))


def forward(form: LayerForm, previous: str, targets: str) -> list[Statement]:
    """``net_t = W x_t + U h_(t-1) + b`` and ``out_t = f(net_t)``, step after step."""
    assert form.weight is not None and form.recurrent is not None
    args = [vector(form.weight), vector(previous), vector(form.recurrent), previous_state(form)] + ([vector(form.bias)] if form.bias else [])
    net = Statement(vector(form.net), RecurrentAffine(*args), Stage.FORWARD, form.index, KIND, "weighted sums", loop=FORWARD_IN_TIME)
    return [net, dataclasses.replace(dense.activate(form, targets, KIND), loop=FORWARD_IN_TIME)]


def output_delta(form: LayerForm, targets: str) -> list[Statement]:
    raise ValueError("an rnn is never the output layer (the spec loader refuses it)")


def hidden_delta(form: LayerForm, above: LayerForm, targets: str) -> list[Statement]:
    """``delta_t = (dE/dout_t from the layer above + U^T delta_(t+1)) * f'(net_t)``, from the
    last step back to the first."""
    assert form.recurrent is not None
    derivative = dataclasses.replace(dense.local(form, targets), kind=KIND)
    through_time = Backprop(vector(form.recurrent), Following(vector(form.delta)))
    upstream = sympy.Add(dense.upstream(above), through_time, evaluate=False)
    expr = upstream if derivative.expr == 1 else Chain(upstream, derivative.target)
    factors = (f"dE/d{form.out}", f"d{form.out}/d{form.net}")
    return [derivative, Statement(vector(form.delta), expr, Stage.BACKWARD, form.index, KIND, "delta", factors, loop=BACKWARD_IN_TIME)]


def gradients(form: LayerForm, previous: str) -> list[Statement]:
    """``dE/dW = sum_t delta_t x_t^T``, ``dE/dU = sum_t delta_t h_(t-1)^T``, ``dE/db = sum_t delta_t``."""
    assert form.weight is not None and form.recurrent is not None
    delta = vector(form.delta)
    out = [
        Statement(vector(naming.LAYER_GRADIENT.format(param=form.weight)), Outer(delta, vector(previous)), Stage.BACKWARD, form.index, KIND,
                  "weight gradient", (f"dE/d{form.net}", f"d{form.net}/d{form.weight}")),
        Statement(vector(naming.LAYER_GRADIENT.format(param=form.recurrent)), Outer(delta, previous_state(form)), Stage.BACKWARD, form.index, KIND,
                  "recurrent weight gradient", (f"dE/d{form.net}", f"d{form.net}/d{form.recurrent}")),
    ]
    if form.bias:
        out.append(Statement(vector(naming.LAYER_GRADIENT.format(param=form.bias)), BiasSum(delta), Stage.BACKWARD, form.index, KIND,
                             "bias gradient", (f"dE/d{form.net}", f"d{form.net}/d{form.bias}")))
    assert form.initial is not None
    out.append(Statement(vector(naming.LAYER_GRADIENT.format(param=form.initial)), Backprop(vector(form.recurrent), AtFirstStep(delta)),
                         Stage.BACKWARD, form.index, KIND, "initial state gradient", (f"dE/d{form.net}", f"d{form.net}/d{form.initial}")))
    return out
