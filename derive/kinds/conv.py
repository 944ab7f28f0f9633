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

The per-weight (scalar) chains and the graph of its units are phase 2 of issue 16: a network with
a convolution takes the layer-level route (:func:`chainrule.derive.derivation.is_small`).
"""

from __future__ import annotations

import dataclasses

import sympy

from chainrule.derive import naming
from chainrule.derive.kinds import dense
from chainrule.derive.layers import LayerForm
from chainrule.derive.program import ChannelBiasSum, Correlate, KernelGradient, Stage, Statement, geometry, vector

KIND = "conv"
out_reads, names = dense.out_reads, dense.names


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
