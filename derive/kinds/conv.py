"""A convolution (``kind: conv1d`` or ``conv2d``): ``net = K * x + b``, ``out = f(net)``.

``*`` is PyTorch's cross-correlation, ``b`` a bias per output channel.

Its rules, each from the network's own definitions:

- forward: the correlation of the input maps with the kernel
  (:class:`~chainrule.derive.program.Correlate`), then f applied to each value, as a dense
  layer applies it (the dense kind's statement: f, and below f', derived by sympy);
- below a layer: ``delta = upstream * f'(net)``, the dense kind's rule (its upstream gradient:
  :func:`chainrule.derive.kinds.dense.upstream`);
- the layer below it receives the full correlation of its deltas with the flipped kernel
  (:class:`~chainrule.derive.program.CorrelateBackprop`);
- per weight: ``dE/dK`` the correlation of the input with the deltas (each kernel weight summed
  over every position where it is used), ``dE/db`` each channel's deltas summed over its positions.

Its units' edges in the network's graph (:mod:`chainrule.derive.graph`), for the per-weight
chains: ``net_u`` of the unit at channel o and position (y, x) reads its receptive field (the
inputs under the kernel; places on the zero padding read nothing), the kernel weights of channel
o there and the channel's bias: ``net_c_o_y_x = sum_{c,i,j} K[o,c,i,j] * in[c, y*sh + i - ph,
x*sw + j - pw] + b_o`` (:func:`net_definition`, which the chains differentiate). A kernel weight
is read by every position of its channel where it multiplies a real input: a shared weight, whose
dE/dk is the sum over those positions.
"""

from __future__ import annotations

import dataclasses

import sympy

from chainrule.derive import naming
from chainrule.derive.kinds import dense
from chainrule.derive.layers import LayerForm
from chainrule.derive.network import Network, ParamRef
from chainrule.derive.windows import Window
from chainrule.derive.program import ChannelBiasSum, Correlate, KernelGradient, Stage, Statement, geometry, vector

KIND = "conv"
out_reads, names, out_definition = dense.out_reads, dense.names, dense.out_definition


def _window(network: Network, layer: int) -> Window:
    window = network.spec.layers[layer - 1].window
    assert window is not None
    return window


def net_terms(network: Network, layer: int, row: int) -> list[tuple[ParamRef, int]]:
    """The products of ``net`` of unit ``row``: (a kernel weight of its channel, the input unit
    of layer ``layer - 1`` it multiplies), over its receptive field in the kernel's order."""
    window = _window(network, layer)
    channel = row // window.positions
    return [(ParamRef(network.weight_name(layer, channel, col), layer, "weight", channel, col), unit) for unit, col in window.field(row)]


def net_bias(network: Network, layer: int, row: int) -> ParamRef | None:
    """The bias of unit ``row``'s channel, or None (``bias: none``)."""
    channel = row // _window(network, layer).positions
    name = network.bias_name(layer, channel)
    return None if name is None else ParamRef(name, layer, "bias", channel, -1)


def net_definition(network: Network, layer: int, row: int) -> sympy.Expr:
    """``net_u = sum over its field of k*x + b``: the kernel weights times the inputs under them."""
    return dense.weighted_sum(network, net_terms(network, layer, row), net_bias(network, layer, row), layer)


def net_reads(network: Network, layer: int, row: int) -> list[int]:
    """The units of layer ``layer - 1`` in unit ``row``'s receptive field, in the kernel's order."""
    return [unit for unit, _ in _window(network, layer).field(row)]


def net_parameters(network: Network, layer: int, row: int) -> list[str]:
    """The parameters ``net`` of unit ``row`` reads: the kernel weights over its field, then its
    channel's bias."""
    bias = net_bias(network, layer, row)
    return [ref.name for ref, _ in net_terms(network, layer, row)] + ([bias.name] if bias else [])


def parameter_readers(network: Network, ref: ParamRef) -> tuple[int, ...] | range:
    """The units of its layer whose nets read ``ref``: for a kernel weight, every position of its
    channel where it multiplies a real input (not the padding); for a bias, every position of
    its channel."""
    window = _window(network, ref.layer)
    if ref.is_weight:
        return window.readers(ref.row, ref.col)
    return range(ref.row * window.positions, (ref.row + 1) * window.positions)


def _ours(statements: list[Statement], form: LayerForm) -> list[Statement]:
    return [dataclasses.replace(s, kind=form.kind) for s in statements]


def forward(form: LayerForm, previous: str, targets: str) -> list[Statement]:
    """The correlation with the kernel (plus a bias per channel), then the activation."""
    assert form.window is not None and form.weight is not None
    args = [vector(previous), vector(form.weight), geometry(form.window)] + ([vector(form.bias)] if form.bias else [])
    net = Statement(vector(form.net), Correlate(*args), Stage.FORWARD, form.index, form.kind, "weighted sums")
    return [net, dense.activate(form, targets, form.kind)]


def output_delta(form: LayerForm, targets: str) -> list[Statement]:
    """The dense kind's (a spec never ends on feature maps: the loader refuses it)."""
    return _ours(dense.output_delta(form, targets), form)


def hidden_delta(form: LayerForm, above: LayerForm, targets: str) -> list[Statement]:
    """``delta = upstream * f'(net)``: dE/d(its outputs) from the layer above, through f."""
    return _ours(dense.hidden_delta(form, above, targets), form)


def gradients(form: LayerForm, previous: str) -> list[Statement]:
    """``dE/dK``: the input correlated with the deltas; ``dE/db``: each channel's deltas summed."""
    assert form.window is not None and form.weight is not None
    delta, window = vector(form.delta), form.window
    shape = sympy.Tuple(*window.kernel_shape)
    out = [Statement(vector(naming.LAYER_GRADIENT.format(param=form.weight)), KernelGradient(delta, vector(previous), geometry(window), shape),
                     Stage.BACKWARD, form.index, form.kind, "weight gradient", (f"dE/d{form.net}", f"d{form.net}/d{form.weight}"))]
    if form.bias:
        out.append(Statement(vector(naming.LAYER_GRADIENT.format(param=form.bias)), ChannelBiasSum(delta, sympy.Tuple(window.channels)),
                             Stage.BACKWARD, form.index, form.kind, "bias gradient", (f"dE/d{form.net}", f"d{form.net}/d{form.bias}")))
    return out
