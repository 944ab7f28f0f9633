"""A flatten (``kind: flatten``): the feature maps before it as one vector.

PyTorch's row-major order (channel, then row, then column); no parameters.

Its outputs are its inputs in another shape, so its delta, dE/d(its input), is the upstream
gradient from the layer above (``W^T delta`` of the dense layer after it), and the layer below
takes it as its own upstream gradient, as below a layer without weights.

In the network's graph (:mod:`chainrule.derive.graph`), unit ``f_k`` reads the one output of
the maps before it at flat position k (no net, no parameters): ``f_k = that output``, whose
derivative is 1.
"""

from __future__ import annotations

import sympy

from chainrule.derive.kinds import activation, dense
from chainrule.derive.layers import LayerForm
from chainrule.derive.network import Network
from chainrule.derive.program import Flatten, Stage, Statement, vector

KIND = "flatten"
names = dense.names
#: Its outputs read the outputs of the layer before (it has no nets).
OUT_READS_BELOW = True
#: No nets and no parameters: the graph's edges of a layer without weights.
net_reads, net_parameters, parameter_readers = activation.net_reads, activation.net_parameters, activation.parameter_readers


def out_reads(size: int, row: int) -> range:
    """Unused: see :func:`out_reads_below` (a flatten has no nets)."""
    return range(0)


def out_reads_below(network: Network, layer: int, row: int) -> range:
    """The one unit of the maps before that unit ``row`` is (row-major)."""
    return range(row, row + 1)


def out_definition(network: Network, layer: int, row: int) -> sympy.Expr:
    """``f_k = out_k`` of the maps before it (flat, row-major)."""
    return network.out(layer - 1, row)


def local_factor(network: Network, layer: int, row: int, wrt: sympy.Symbol, max_pool: str = "first") -> tuple[sympy.Expr, sympy.Expr, str]:
    """``df_k/d(wrt)`` by ``sympy.diff`` of :func:`out_definition` (1): ``(derivative, human, note)``."""
    raw = sympy.diff(out_definition(network, layer, row), wrt)
    return raw, raw, ""


def forward(form: LayerForm, previous: str, targets: str) -> list[Statement]:
    """``out = flatten(the maps before)``."""
    return [Statement(vector(form.out), Flatten(vector(previous)), Stage.FORWARD, form.index, form.kind, "flatten")]


def output_delta(form: LayerForm, targets: str) -> list[Statement]:
    raise ValueError("a flatten is never the output layer (the spec loader refuses it)")


def hidden_delta(form: LayerForm, above: LayerForm, targets: str) -> list[Statement]:
    """dE/d(its input) = dE/d(its output), reshaped: the layer above's upstream gradient."""
    return [Statement(vector(form.delta), dense.upstream(above), Stage.BACKWARD, form.index, form.kind, "delta", (f"dE/d{form.out}",))]


def gradients(form: LayerForm, previous: str) -> list[Statement]:
    """None: a flatten has no parameters."""
    return []
