"""The typical mistakes of weight sharing (convolutions and pools), as alternatives.

Each is the expression a person gets who makes the mistake, built from the derivation's own
paths, factors and graph (see :mod:`chainrule.derive.hand.diagnosis`):

- ``position_left_out``: a kernel weight (or a convolution's bias) is used at every position of
  its channel where it meets a real input, so dE/dk is a sum over those positions; one left out;
- ``kernel_not_flipped``: dE/d(an output of the layer below a convolution) is the full
  correlation of the convolution's deltas with its kernel turned by 180 degrees, so that each
  delta_u meets the weight that multiplied that output at u; written with the kernel unflipped
  (or flipped twice), each delta meets the weight at the mirrored place instead;
- ``maxpool_to_every_unit`` and ``maxpool_wrong_unit``: a max-pool's gradient goes to its
  window's largest input alone (the first in row-major order at a tie, as PyTorch routes it);
  sent to every input of the window, or at a tie to the last largest (the engine's other
  ``max_pool`` rules, :class:`chainrule.derive.chain.ChainRule`);
- ``avgpool_not_divided``: an average-pool's gradient is spread over its window, 1/n to each of
  its n inputs; sent whole to each instead (the engine's ``undivided`` rule).
"""

from __future__ import annotations

from typing import Callable, Sequence

import sympy

from chainrule.derive.chain import Path
from chainrule.derive.formula import format_expr, tree_size
from chainrule.derive.graph import Graph, Node
from chainrule.derive.hand.diagnosis import Alternative, Finding, path_product
from chainrule.derive.network import Network, ParamRef, real_symbol

#: A mistake's formula is shown up to this many nodes (the words say what it is).
SHOWN_NODES = 120
#: What the max-pool mistakes say, by the engine's ``max_pool`` rule that makes them.
MAX_POOL_MISTAKES = {
    "every": ("maxpool_to_every_unit", "the max-pool's gradient sent to every unit of its window; it goes to the window's largest input "
              "alone (the others' derivative is 0)"),
    "last": ("maxpool_wrong_unit", "the max-pool's gradient sent to the last of a window's largest inputs; where several are largest, "
             "it goes to the first in row-major order (as PyTorch routes it)"),
    "undivided": ("avgpool_not_divided", "the average-pool's gradient sent whole to every unit of its window; each gets 1/n of it, "
                  "n the window's size (the derivative of the mean)"),
}


def position_alternatives(network: Network, ref: ParamRef, paths: Sequence[Path]) -> list[Alternative]:
    """A shared weight's sum over its positions with one position left out, for each position
    (a position is the net its paths end at: ``net_c_1_2_3``)."""
    if network.spec.layers[ref.layer - 1].window is None:
        return []
    products = [path_product(p) for p in paths]
    positions: dict[sympy.Symbol, list[int]] = {}
    for i, path in enumerate(paths):
        positions.setdefault(path.factors[-1].of, []).append(i)
    if len(positions) < 2:
        return []
    true = sympy.Add(*products)
    alts = []
    for net, members in positions.items():
        term = sympy.Add(*[products[i] for i in members])
        unit = net.name[len("net_"):]
        under = paths[members[0]].factors[-1].human
        there = f"it multiplies {format_expr(under)} there" if under != 1 else f"it adds to {net.name} there"
        words = f"the position {unit} is left out of the sum over the {len(positions)} positions where {ref.name} is used ({there})"
        alts.append(Alternative(Finding("position_left_out", words, format_expr(term)), true - term))
    return alts


def flip_alternatives(network: Network, graph: Graph, node: Node, gradient: Callable[[Node], sympy.Expr]) -> list[Alternative]:
    """dE/d(``node``), an output of the layer below a convolution, with each delta meeting the
    kernel weight at the mirrored place (the kernel not flipped, or flipped twice); ``gradient``
    gives dE/dnet of a unit of the convolution."""
    if node[0] != "out" or node[1] >= network.depth:
        return []
    above = node[1] + 1
    window = network.spec.layers[above - 1].window
    if window is None or not window.is_conv:
        return []
    true, flipped, pairs = [], [], {}
    for reader in graph.readers(node):
        col = next(col for unit, col in window.field(reader[2]) if unit == node[2])
        channel = reader[2] // window.positions
        k, mirrored = (network.weight_name(above, channel, c) for c in (col, _mirror(col, window.kernel)))
        pairs.setdefault(k, mirrored)
        true.append(gradient(reader) * real_symbol(k))
        flipped.append(gradient(reader) * real_symbol(mirrored))
    wrong = sympy.Add(*flipped)
    if all(k == m for k, m in pairs.items()) or wrong == sympy.Add(*true):
        return []
    shown = ", ".join(f"{m} for {k}" for k, m in list(pairs.items())[:3])
    words = (f"the kernel is not flipped (or flipped twice): dE/d{graph.name(node)} is the full correlation of the deltas of layer "
             f"{network.layer_name(above)} with the kernel turned by 180 degrees, each delta meeting the weight that multiplied "
             f"{graph.name(node)} there; this takes the weight at the mirrored place ({shown})")
    return [Alternative(Finding("kernel_not_flipped", words, format_expr(wrong) if tree_size(wrong, SHOWN_NODES) < SHOWN_NODES else ""), wrong)]


def _mirror(col: int, kernel: tuple[int, ...]) -> int:
    """The kernel column at the place turned by 180 degrees (the same input channel)."""
    places = 1
    for k in kernel:
        places *= k
    channel, place = divmod(col, places)
    mirrored = places - 1 - place  # row-major: turning by 180 degrees reverses the order of the places
    return channel * places + mirrored
