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

Its units' edges in the network's graph (:mod:`chainrule.derive.graph`): a pooled unit
``p_c_y_x`` reads its window of the layer before's outputs (no net, no parameters), and is
defined as ``Max(...)`` of them or their mean (:func:`out_definition`). The local factor
``dp/dout`` is sympy's derivative of that definition (:func:`local_factor`); for a max, sympy's
``Heaviside(out - Max(the others))`` is 1/2 at a tie, and the factor is taken as PyTorch routes
the gradient: 1 for the window's first largest input in row-major order, 0 for the others.
"""

from __future__ import annotations

from typing import Callable

import sympy

from chainrule.derive import functions
from chainrule.derive.kinds import activation, dense
from chainrule.derive.layers import LayerForm
from chainrule.derive.network import Network
from chainrule.derive.registry import to_step_form
from chainrule.derive.program import AvgPool, AvgPoolBackprop, MaxPool, MaxPoolBackprop, Stage, Statement, geometry, vector

KIND = "pool"
names = dense.names
#: Its outputs read the outputs of the layer before (it has no nets).
OUT_READS_BELOW = True
#: No nets and no parameters: the graph's edges of a layer without weights.
net_reads, net_parameters, parameter_readers = activation.net_reads, activation.net_parameters, activation.parameter_readers
#: What the max-pool's local factor says of itself (the derivation's note on it).
MAX_NOTE = ("1 for the window's largest input, 0 for the others; where several are largest, 1 for the first in row-major "
            "order, as PyTorch routes it (sympy's derivative of Max gives each 1/2 there)")


def largest_text(unit: str) -> str:
    """The max-pool factor dp/d(unit) in words, as a hand calculation writes it: ``(1 if out_c_1_2_2
    is the window's largest, else 0)`` (its value is sympy's, from :func:`local_factor`)."""
    return f"(1 if {unit} is the window's largest, else 0)"


def tie_text(unit: str, largest: list[str]) -> str:
    """The max-pool factor dp/d(unit) in words where the window's largest inputs on the sample are
    several (``largest``, row-major, ``unit`` among them): :func:`largest_text` and who takes the
    gradient, ``(1 if out_c_1_1_1 is the window's largest, else 0: tied with out_c_1_1_2 here, 1
    for the first in row-major order, as PyTorch)``."""
    others = [u for u in largest if u != unit]
    tied = others[0] if len(others) == 1 else ", ".join(others[:-1]) + f" and {others[-1]}"
    first = "" if largest[0] == unit else f", {largest[0]}"
    return f"(1 if {unit} is the window's largest, else 0: tied with {tied} here, 1 for the first in row-major order{first}, as PyTorch)"


def largest_on_sample(network: Network, layer: int, row: int, value: Callable[[sympy.Symbol], float]) -> list[str]:
    """The names of the largest inputs of max-pool unit ``row``'s window on a sample (``value`` gives
    a unit's), row-major: one name, or several at a tie."""
    inputs = _inputs(network, layer, row)
    values = [value(u) for u in inputs]
    return [u.name for u, v in zip(inputs, values) if v == max(values)]


def out_reads(size: int, row: int) -> range:
    """Unused: see :func:`out_reads_below` (a pool has no nets)."""
    return range(0)


def out_reads_below(network: Network, layer: int, row: int) -> list[int]:
    """The units of layer ``layer - 1`` in unit ``row``'s window, row-major."""
    window = network.spec.layers[layer - 1].window
    assert window is not None
    return [unit for unit, _ in window.field(row)]


def _inputs(network: Network, layer: int, row: int) -> list[sympy.Symbol]:
    return [network.out(layer - 1, u) for u in out_reads_below(network, layer, row)]


def out_definition(network: Network, layer: int, row: int) -> sympy.Expr:
    """``p = Max(window)`` (a max-pool) or ``p = (sum of the window)/n`` (an average-pool), in the
    outputs of the layer before."""
    inputs = _inputs(network, layer, row)
    if network.spec.layers[layer - 1].kind.startswith("max"):
        return functions.Max(*inputs)
    return sympy.Add(*inputs) / len(inputs)


def local_factor(network: Network, layer: int, row: int, wrt: sympy.Symbol, max_pool: str = "first") -> tuple[sympy.Expr, sympy.Expr, str]:
    """``dp/d(wrt)`` for an input ``wrt`` of unit ``row``'s window: ``(derivative, human, note)``,
    the derivative by ``sympy.diff`` of :func:`out_definition`; for a max, the human form is 1
    for the window's first largest input in row-major order (PyTorch's tie rule), 0 otherwise:
    ``step(wrt - max(the earlier)) * (1 - step(max(the later) - wrt))``. ``max_pool`` ``every``
    or ``last`` gives the mistakes instead (1 for every input; for the last largest), and
    ``undivided`` an average-pool's (1 for each input, the 1/n of the mean left out), ``split``
    a tie split evenly: 1/m for each of the window's m largest inputs (1/2 each where two tie, as
    sympy's Heaviside gives at a tie), ``tied`` the whole to each of the largest (at a tie, to the
    ones after the first too)."""
    raw = to_step_form(sympy.diff(out_definition(network, layer, row), wrt))
    if not network.spec.layers[layer - 1].kind.startswith("max"):  # a mean: 1/(its inputs)
        return raw, (sympy.Integer(1) if max_pool == "undivided" else raw), ""
    if max_pool == "every":
        return raw, sympy.Integer(1), ""
    inputs = _inputs(network, layer, row)
    if max_pool == "split":
        return raw, _largest(wrt, inputs) / sympy.Add(*[_largest(u, inputs) for u in inputs]), ""
    if max_pool == "tied":  # whole to each of the largest
        return raw, _largest(wrt, inputs), ""
    at = inputs.index(wrt)
    earlier, later = inputs[:at], inputs[at + 1:]
    if max_pool == "last":  # the mirror: ties to the last largest
        earlier, later = later, earlier
    human = sympy.Integer(1)
    if earlier:  # larger than every earlier input
        human *= functions.step(wrt - (functions.Max(*earlier) if len(earlier) > 1 else earlier[0]))
    if later:  # and no later input larger
        human *= 1 - functions.step((functions.Max(*later) if len(later) > 1 else later[0]) - wrt)
    return raw, human, MAX_NOTE


def _largest(unit: sympy.Symbol, inputs: list[sympy.Symbol]) -> sympy.Expr:
    """1 where ``unit`` is one of the largest of ``inputs`` (no other larger), else 0."""
    return sympy.Mul(*[1 - functions.step(other - unit) for other in inputs if other != unit])


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
