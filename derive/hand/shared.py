"""The typical mistakes of weight sharing (convolutions and pools), as alternatives.

Each is the expression a person gets who makes the mistake, built from the derivation's own
paths, factors and graph (see :mod:`chainrule.derive.hand.diagnosis`):

- ``position_left_out``: a kernel weight (or a convolution's bias) is used at every position of
  its channel where it meets a real input, so dE/dk is a sum over those positions; one left out;
- ``kernel_not_flipped``: dE/d(an output of the layer below a convolution) is the full
  correlation of the convolution's deltas with its kernel turned by 180 degrees, so that each
  delta_u meets the weight that multiplied that output at u; written with the kernel unflipped
  (or flipped twice), each delta meets the weight at the mirrored place instead;
- ``maxpool_to_every_unit``, ``maxpool_wrong_unit`` and ``maxpool_tie_split``: a max-pool's gradient goes to its
  window's largest input alone (the first in row-major order at a tie, as PyTorch routes it);
  sent to every input of the window, at a tie to the last largest or to each of the largest
  (one in between too), or at a tie split evenly among the largest, 1/m to each of m (the
  engine's other ``max_pool`` rules ``every``, ``last``, ``tied`` and ``split``,
  :class:`chainrule.derive.chain.ChainRule`);
- ``avgpool_not_divided``: an average-pool's gradient is spread over its window, 1/n to each of
  its n inputs; sent whole to each instead (the engine's ``undivided`` rule).

And of recurrence (an rnn, whose weights are read at every step):

- ``step_left_out``: a weight of a sequence network is read at every step, so dE/dw is a sum
  over the steps; one left out (which one is said);
- ``next_step_left_out``: dE/dh_t has two paths, through the layer above at step t and through
  h_(t+1); the second left out (the engine's ``no_next_step`` rule: dnet_h_(t+1)/dh_t taken as 0),
  in dE/dh_t and in every gradient below it;
- ``recurrent_wrong_step``: U's factor dnet_h_t/du_jk is out_hk at the step before, h_(t-1);
  taken at h_t instead (the engine's ``same_step`` rule);
- ``recurrent_transposed``: the delta recursion goes back through U transposed: dnet_hk_(t+1)/dh_j_t
  is u_kj (the weight into unit k from unit j), so dE/dh_j_t sums delta_hk_(t+1)*u_kj over k;
  written with U's row instead of its column, u_jk (the engine's ``transposed`` rule).
"""

from __future__ import annotations

from typing import Callable, Sequence

import sympy

from chainrule.derive.chain import Path
from chainrule.derive.formula import format_expr, tree_size
from chainrule.derive.graph import Graph, Node
from chainrule.derive.hand.diagnosis import Alternative, Finding, path_product
from chainrule.derive.kinds import pool
from chainrule.derive.network import Network, ParamRef, real_symbol
from chainrule.derive.sequences import sum_over_steps

#: A mistake's formula is shown up to this many nodes (the words say what it is).
SHOWN_NODES = 120
#: The max-pool mistakes, by the engine's ``max_pool`` rule that makes them, and their keys; where
#: two give a claim's value (a tie's last largest gets it from ``last``, ``tied`` and ``every``),
#: the first named (``every`` before ``tied`` but on a tied unit's own gradient). The words are
#: :func:`max_pool_words`'s.
MAX_POOL_MISTAKES = {"last": "maxpool_wrong_unit", "tied": "maxpool_wrong_unit", "every": "maxpool_to_every_unit",
                     "split": "maxpool_tie_split", "undivided": "avgpool_not_divided"}
#: Ties named in a max-pool finding, at most (then a count).
SHOWN_TIES = 3
PYTORCH = "it goes whole to the first largest in row-major order (as PyTorch routes it)"


def max_pool_ties(network: Network, value: Callable[[sympy.Symbol], float]) -> list[list[sympy.Symbol]]:
    """The max-pool windows with a tie on the sample: each one's largest inputs (two or more, in
    row-major order, the first the one the gradient goes to); ``value`` gives a unit's value."""
    ties = []
    for layer, spec in enumerate(network.spec.layers, start=1):
        if not spec.kind.startswith("maxpool"):
            continue
        for row in range(network.sizes[layer]):
            inputs = [network.out(layer - 1, u) for u in pool.out_reads_below(network, layer, row)]
            values = [value(u) for u in inputs]
            largest = [u for u, v in zip(inputs, values) if v == max(values)]
            if len(largest) > 1:
                ties.append(largest)
    return ties


def _listed(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" and {names[-1]}"


def _tie_list(ties: Sequence[Sequence[sympy.Symbol]], each: Callable[[Sequence[sympy.Symbol]], str]) -> str:
    shown = [each(t) for t in ties[:SHOWN_TIES]]
    more = f"; ... ({len(ties)} ties)" if len(ties) > SHOWN_TIES else ""
    return "; ".join(shown) + more


def max_pool_words(rule: str, ties: Sequence[Sequence[sympy.Symbol]], unit: sympy.Symbol | None = None) -> str:
    """What the max-pool mistake of the engine's rule ``rule`` says: at the ties ``ties`` of
    :func:`max_pool_ties` (those of ``unit``'s window where the claim is about one unit), named with
    their units and the share each gets (1/3 each at a tie of three)."""
    if unit is not None:
        ties = [t for t in ties if unit in t]
    names = [[u.name for u in t] for t in ties]
    if rule == "last":
        return ("the max-pool's gradient sent to the last of a window's largest inputs; where several are largest, "
                "it goes to the first in row-major order (as PyTorch routes it)")
    if rule == "tied":
        if unit is not None and names:
            others = [n for n in names[0] if n != unit.name]
            return (f"the max-pool's gradient sent to {unit.name}, one of the {len(names[0])} largest inputs of its window (tied with "
                    f"{_listed(others)}); where several are largest, it goes to the first in row-major order alone, {names[0][0]} "
                    "(as PyTorch routes it)")
        at = f" ({_tie_list(names, _listed)})" if names else ""
        return (f"the max-pool's gradient sent to each of a window's largest inputs where several are largest{at}; it goes to the "
                "first in row-major order alone (as PyTorch routes it)")
    if rule == "every":
        return "the max-pool's gradient sent to every unit of its window; it goes to the window's largest input alone (the others' derivative is 0)"
    if rule == "split":
        if names:
            shares = _tie_list(names, lambda t: f"1/{len(t)} each for {_listed(t)}")
            two = ", as sympy's derivative of Max gives at a tie of two" if all(len(t) == 2 for t in names) else ""
            return f"the max-pool's gradient split evenly among a window's largest inputs where several are largest ({shares}{two}); {PYTORCH}"
        return (f"the max-pool's gradient split evenly among a window's largest inputs where several are largest (1/m each for m, 1/2 "
                f"each for two as sympy's derivative of Max gives at a tie); {PYTORCH}")
    assert rule == "undivided"
    return ("the average-pool's gradient sent whole to every unit of its window; each gets 1/n of it, "
            "n the window's size (the derivative of the mean)")


#: What the recurrence mistakes say, by the engine's ``recurrence`` rule that makes them.
RECURRENCE_MISTAKES = {
    "no_next_step": ("next_step_left_out", "the path through the next step is left out: dE/dh_t has two paths, through the layer above at "
                     "step t and through h_(t+1) (h_t is also an input of net_h_(t+1), with dnet_h_(t+1)/dh_t = U's entry)"),
    "same_step": ("recurrent_wrong_step", "the recurrent weight's factor is taken at the wrong step: dnet_h_t/du_jk is out_hk at the step "
                  "before, h_(t-1) (h_0 at the first step), not h_t"),
    "transposed": ("recurrent_transposed", "U is not transposed in the recursion through time: dnet_hk_(t+1)/dh_j_t is u_kj, the "
                   "weight into unit k from unit j, so dE/dh_j_t sums delta_hk_(t+1)*u_kj over k (U's column j, U^T's row), "
                   "not u_jk (U's row j)"),
}


def position_alternatives(network: Network, ref: ParamRef, paths: Sequence[Path]) -> list[Alternative]:
    """A shared weight's sum over its positions with one position left out, for each position
    (a position is the net its paths end at: ``net_c_1_2_3``); of a sequence network's weight,
    over its steps (``net_h1_t2``: ``step_left_out``)."""
    if network.spec.steps:
        return step_alternatives(network, ref, paths)
    if network.spec.layers[ref.layer - 1].window is None:
        return []

    def words(net: sympy.Symbol, there: str, places: int) -> str:
        return (f"the term at {position_label(network, ref.layer, net)} is left out of the sum over the {places} positions of layer "
                f"{network.layer_name(ref.layer)} where {ref.name} is used ({there})")

    return _term_left_out(paths, "position_left_out", words)


def _term_left_out(paths: Sequence[Path], key: str, words: Callable[[sympy.Symbol, str, int], str]) -> list[Alternative]:
    """The sum of a shared weight's paths with one place's terms left out, for each place (the
    net the paths end at), as ``key`` with ``words(net, what the weight does there, places)``."""
    products = [path_product(p) for p in paths]
    places: dict[sympy.Symbol, list[int]] = {}
    for i, path in enumerate(paths):
        places.setdefault(path.factors[-1].of, []).append(i)
    if len(places) < 2:
        return []
    true = sympy.Add(*products)
    alts = []
    for net, members in places.items():
        term = sympy.Add(*[products[i] for i in members])
        under = paths[members[0]].factors[-1].human
        there = f"it multiplies {format_expr(under)} there" if under != 1 else f"it adds to {net.name} there"
        formula = format_expr(term) if tree_size(term, SHOWN_NODES) < SHOWN_NODES else ""
        alts.append(Alternative(Finding(key, words(net, there, len(places)), formula), true - term))
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


#: A sum written out in a finding: whole up to this many terms; past it, the first
#: :data:`FIRST_TERMS` and a count (as derive writes a shared weight's sum).
SHOWN_TERMS, FIRST_TERMS = 16, 8


def shortened_sum(terms: Sequence[str]) -> str:
    """``a + b + ... + p``: whole up to :data:`SHOWN_TERMS` terms, past it the first
    :data:`FIRST_TERMS` and ``+ ... (40 terms)``."""
    if len(terms) <= SHOWN_TERMS:
        return " + ".join(terms)
    return " + ".join(terms[:FIRST_TERMS]) + f" + ... ({len(terms):,} terms)"


def position_terms(paths: Sequence[Path]) -> dict[sympy.Symbol, tuple[sympy.Expr, str]]:
    """A shared weight's paths grouped by position (the net they end at): each position's term
    (the sum of its paths' products) and its form as text, in the chain's order."""
    grouped: dict[sympy.Symbol, list[Path]] = {}
    for path in paths:
        grouped.setdefault(path.factors[-1].of, []).append(path)
    return {net: (sympy.Add(*[path_product(p) for p in members]), " + ".join(format_expr(path_product(p)) for p in members)) for net, members in grouped.items()}


def position_label(network: Network, layer: int, net: sympy.Symbol) -> str:
    """Where a position is: ``(1,2)`` (row and column; one number for conv1d) on a layer of one
    channel, else the unit's name (``c_2_1_2``)."""
    unit = net.name[len("net_"):]
    window = network.spec.layers[layer - 1].window
    assert window is not None
    if window.out_shape[0] > 1:
        return unit
    return "(" + ",".join(unit.split("_")[-(len(window.out_shape) - 1):]) + ")"


def left_out_finding(network: Network, ref: ParamRef, left_out: Sequence[sympy.Symbol], terms: dict[sympy.Symbol, tuple[sympy.Expr, str]],
                     zero_here: bool) -> Finding:
    """``position_left_out`` for a formula that has some of a shared weight's terms and not the
    others: which positions it leaves out, and their terms (shortened past :data:`SHOWN_TERMS`)."""
    places = [position_label(network, ref.layer, net) for net in left_out]
    shown = places if len(places) <= SHOWN_TERMS else places[:FIRST_TERMS] + [f"... ({len(places):,} positions)"]
    what = f"the term at {shown[0]} is" if len(places) == 1 else f"the terms at {', '.join(shown[:-1])} and {shown[-1]} are"
    here = "; they give 0 on this sample, but not in general" if zero_here and len(places) > 1 else "; it gives 0 on this sample, but not in general" if zero_here else ""
    words = f"{what} left out of the sum over the {len(terms)} positions of layer {network.layer_name(ref.layer)} where {ref.name} is used{here}"
    return Finding("position_left_out", words, shortened_sum([terms[net][1] for net in left_out]))


def steps_left_out_finding(network: Network, ref: ParamRef, left_out: Sequence[sympy.Symbol], terms: dict[sympy.Symbol, tuple[sympy.Expr, str]],
                           zero_here: bool) -> Finding:
    """``step_left_out`` for a chain of a sequence network's weight that has some of its steps'
    terms and not the others (a step: the net its paths end at, ``net_h1_t2``): which steps."""
    steps = [net.name.rsplit("_t", 1)[-1] for net in left_out]
    what = f"the step t = {steps[0]} is" if len(steps) == 1 else f"the steps t = {', '.join(steps[:-1])} and {steps[-1]} are"
    here = ("; it gives 0 on this sample, but not in general" if len(steps) == 1 else "; they give 0 on this sample, but not in general") if zero_here else ""
    words = f"{what} left out of {sum_over_steps(network.spec, ref.layer, ref.name, len(terms))}{here}"
    return Finding("step_left_out", words, shortened_sum([terms[net][1] for net in left_out]))


def step_alternatives(network: Network, ref: ParamRef, paths: Sequence[Path]) -> list[Alternative]:
    """A sequence network's weight: its sum over the steps where it is read with one step left
    out, for each step (a step is the net its paths end at: ``net_h1_t2``)."""

    def words(net: sympy.Symbol, there: str, steps: int) -> str:
        step = net.name.rsplit("_t", 1)[-1]
        return f"the step t = {step} is left out of {sum_over_steps(network.spec, ref.layer, ref.name, steps)} ({net.name}: {there})"

    return _term_left_out(paths, "step_left_out", words)
