"""A pool (``kind: maxpool1d``, ``maxpool2d``, ``avgpool1d``, ``avgpool2d``): each window's largest
input, or its mean.

No parameters; its windows tile the input (stride = kernel).

As a layer without weights (:mod:`~chainrule.derive.kinds.activation`), its ``net`` is the layer
before's output and its ``delta`` is dE/d(its input):

- max-pool: a window's delta goes to its largest input alone (the others' derivative is 0),
  the first largest in row-major order within the window where several are largest, as PyTorch
  breaks the tie (:class:`~chainrule.derive.program.MaxPoolBackprop`);
- average-pool: a window's delta divided evenly among its kh*kw inputs
  (:class:`~chainrule.derive.program.AvgPoolBackprop`);

and the layer below takes ``delta_p`` as its upstream gradient, as below an activation layer.
"""

from __future__ import annotations

from chainrule.derive.kinds import dense
from chainrule.derive.layers import LayerForm
from chainrule.derive.program import AvgPool, AvgPoolBackprop, MaxPool, MaxPoolBackprop, Stage, Statement, geometry, vector

KIND = "pool"
names = dense.names


def _max(form: LayerForm) -> bool:
    return form.kind.startswith("max")


def forward(form: LayerForm, previous: str, targets: str) -> list[Statement]:
    """``out = max (or mean) of each window of the layer before's outputs``."""
    assert form.window is not None
    op = MaxPool if _max(form) else AvgPool
    return [Statement(vector(form.out), op(vector(previous), geometry(form.window)), Stage.FORWARD, form.index, form.kind, "pooling")]


def output_delta(form: LayerForm, targets: str) -> list[Statement]:
    raise ValueError("a pool is never the output layer (the spec loader refuses it)")


def hidden_delta(form: LayerForm, above: LayerForm, targets: str) -> list[Statement]:
    """dE/d(its input): the upstream gradient routed to each window's largest input, or spread."""
    assert form.window is not None
    g, up = geometry(form.window), dense.upstream(above)
    expr = MaxPoolBackprop(vector(form.previous), up, g) if _max(form) else AvgPoolBackprop(up, g)
    factors = (f"dE/d{form.out}", f"d{form.out}/d{form.previous}")
    return [Statement(vector(form.delta), expr, Stage.BACKWARD, form.index, form.kind, "delta", factors)]


def gradients(form: LayerForm, previous: str) -> list[Statement]:
    """None: a pool has no parameters."""
    return []
