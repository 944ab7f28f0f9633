"""A layer without weights (``kind: activation``): ``s_k = f(out_k)`` of the layer before, or
``s = softmax(out)`` over it; no parameters.

Its rules are the activation's, applied to the outputs of the layer before where a dense layer
applies them to its weighted sums: its form's ``net`` is the layer before's ``out`` vector
(:class:`~chainrule.derive.layers.LayerForm`), so that

- forward: ``out_s = f(out_h)`` (``softmax(out_h)``), one statement;
- local derivative: ``ds/dout_h = f'(out_h)`` by ``sympy.diff`` of the activation (written in
  its output where the registry writes it so), or softmax's vector-Jacobian product;
- its delta is dE/d(its input): as the output layer, ``dE/ds * ds/dout_h`` (or the simpler form
  sympy finds: ``s - t`` for softmax with cross-entropy, and the loss's stable form is taken from
  ``out_h`` as its net: log-softmax, softplus); below a layer, ``(W_above^T delta_above) *
  f'(out_h)``; and the layer below takes ``delta_s`` as its upstream gradient, without a weight
  matrix (:func:`chainrule.derive.kinds.dense.upstream`): ``delta_h = f_h'(net_h) * delta_s``;
- no per-weight rules: it has no parameters, and the layers with parameters are numbered
  without it (``W1``, ``W2``, ... skip it);
- its units' edges in the network's graph (:mod:`chainrule.derive.graph`): ``s_k`` reads
  ``out_h_k`` (every ``out_h_j`` for softmax) of the layer before; it has no nets.

The elementwise and softmax pieces are the dense and softmax kinds' own (one derivation of each
rule); this module only changes what they read and drops the weighted sums.
"""

from __future__ import annotations

import dataclasses

from chainrule.derive.kinds import dense, softmax
from chainrule.derive.layers import LayerForm
from chainrule.derive.network import Network, ParamRef
from chainrule.derive.program import Statement

KIND = "activation"
#: Its outputs read the outputs of the layer before (it has no nets).
OUT_READS_BELOW = True


def _rules(form: LayerForm):
    return softmax if form.softmax else dense


def _ours(statements: list[Statement]) -> list[Statement]:
    return [dataclasses.replace(s, kind=KIND) for s in statements]


def out_reads(size: int, row: int) -> range:
    """Unused: see :func:`out_reads_below` (an activation layer has no nets)."""
    return range(0)


def out_reads_below(network: Network, layer: int, row: int) -> range:
    """The units of layer ``layer - 1`` whose outputs unit ``row`` of ``layer`` reads: its own
    (an elementwise activation) or every one (softmax)."""
    return range(network.sizes[layer - 1]) if network.is_softmax(layer) else range(row, row + 1)


#: ``s_k = f(out_h_k)`` (softmax over every ``out_h_j``): the dense kind's, in the outputs below.
out_definition = dense.out_definition


def net_reads(network: Network, layer: int, row: int) -> range:
    """None: the layer has no nets."""
    return range(0)


def net_parameters(network: Network, layer: int, row: int) -> list[str]:
    """None: the layer has no parameters."""
    return []


def parameter_readers(network: Network, ref: ParamRef) -> range:
    """None: the layer has no parameters."""
    return range(0)


def names(form: LayerForm, targets: str) -> dict:
    """The generic symbols as the layer's vectors: ``x`` the layer before's output (for softmax
    also ``log_out`` and ``log_one_minus_out``, computed from it)."""
    return _rules(form).names(form, targets)


def forward(form: LayerForm, previous: str, targets: str) -> list[Statement]:
    """``out = f(previous)``: the activation alone, no weighted sums."""
    return [_rules(form).activate(form, targets, KIND)]


def output_delta(form: LayerForm, targets: str) -> list[Statement]:
    """dE/d(the layer before's output), through the activation: the dense or softmax kind's
    output delta with the layer before's output as the net."""
    return _ours(_rules(form).output_delta(form, targets))


def hidden_delta(form: LayerForm, above: LayerForm, targets: str) -> list[Statement]:
    """dE/d(the layer before's output) below ``above``."""
    return _ours(_rules(form).hidden_delta(form, above, targets))


def gradients(form: LayerForm, previous: str) -> list[Statement]:
    """None: the layer has no parameters."""
    return []
