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

Its units' edges in the network's graph (:mod:`chainrule.derive.graph`), unrolled over the
steps (a row ``t * units + k`` is unit k at step t + 1, :meth:`~chainrule.derive.network.Network.rows`):
``net_h1_t2`` reads the inputs at step 2 (W's entries ``w1, ...``), the layer's own outputs at
step 1 (U's entries ``u11, ...``; at step 1, h_0: ``out_h1_t0``, a constant) and its bias
(:func:`net_definition`, which the per-weight chains differentiate). Every weight is read at
every step: dE/dw is the sum over the steps, and dE/dh_t has two paths, through the layer above
at step t and through h_(t+1).
"""

from __future__ import annotations

import dataclasses

import sympy

from chainrule.derive import naming
from chainrule.derive.kinds import dense
from chainrule.derive.layers import LayerForm
from chainrule.derive.network import Network, ParamRef, real_symbol
from chainrule.derive.program import (
    BACKWARD_IN_TIME, FORWARD_IN_TIME, AtFirstStep, Backprop, BiasSum, Chain, Following, Outer, Previous, RecurrentAffine, Stage, Statement, vector,
)

KIND = "rnn"
#: Its nets read rows at another step (h_(t-1)): its definitions take a row of every step.
THROUGH_TIME = True
out_reads, names, net_reads, parameter_readers, net_bias, out_definition = (
    dense.out_reads, dense.names, dense.net_reads, dense.parameter_readers, dense.net_bias, dense.out_definition)


def net_parameters(network: Network, layer: int, row: int) -> list[str]:
    """The parameters ``net`` of unit ``row`` (at any step) reads: W's row, U's row, its bias."""
    names = [network.weight_name(layer, row, c) for c in range(network.sizes[layer - 1] + network.sizes[layer])]
    bias = network.bias_name(layer, row)
    return names + ([bias] if bias else [])


def recurrent_reads(network: Network, layer: int, row: int) -> list[int]:
    """The rows of its own layer ``net`` of row ``row`` reads: every unit at the step before
    (none at the first step, whose h_0 is a constant)."""
    step, _ = network.step_of(layer, row)
    units = network.sizes[layer]
    return list(range((step - 1) * units, step * units)) if step > 0 else []


def net_terms(network: Network, layer: int, row: int) -> list[tuple[ParamRef, int]]:
    """W's products in ``net`` of row ``row``: (W's entry, the row of layer ``layer - 1`` at the
    same step it multiplies)."""
    step, k = network.step_of(layer, row)
    before = network.sizes[layer - 1]
    return [(ParamRef(network.weight_name(layer, k, c), layer, "weight", k, c), step * before + c) for c in range(before)]


def net_products(network: Network, layer: int, row: int) -> list[tuple[ParamRef, sympy.Symbol]]:
    """Every product in ``net`` of row ``row``: W's entries times the inputs at its step, then
    U's times the layer's outputs at the step before (h_0's entries at the first)."""
    step, k = network.step_of(layer, row)
    before, units = network.sizes[layer - 1], network.sizes[layer]
    out = [(ref, network.out(layer - 1, c)) for ref, c in net_terms(network, layer, row)]
    for j in range(units):
        ref = ParamRef(network.weight_name(layer, k, before + j), layer, "weight", k, before + j)
        out.append((ref, network.out(layer, (step - 1) * units + j) if step > 0 else network.initial(layer, j)))
    return out


def net_definition(network: Network, layer: int, row: int) -> sympy.Expr:
    """``net_h1_t2 = w1*x1_t2 + u11*out_h1_t1 + b1``: W x_t + U h_(t-1) + b for unit k at its step."""
    bias = net_bias(network, layer, network.step_of(layer, row)[1])
    products = [real_symbol(ref.name) * symbol for ref, symbol in net_products(network, layer, row)]
    return sympy.Add(*products, *([real_symbol(bias.name)] if bias is not None else []))


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
