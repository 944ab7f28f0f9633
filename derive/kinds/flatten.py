"""A flatten (``kind: flatten``): the feature maps before it as one vector.

PyTorch's row-major order (channel, then row, then column); no parameters.

Its outputs are its inputs in another shape, so its delta, dE/d(its input), is the upstream
gradient from the layer above (``W^T delta`` of the dense layer after it), and the layer below
takes it as its own upstream gradient, as below a layer without weights.
"""

from __future__ import annotations

from chainrule.derive.kinds import dense
from chainrule.derive.layers import LayerForm
from chainrule.derive.program import Flatten, Stage, Statement, vector

KIND = "flatten"
names = dense.names


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
