"""The network as a graph of symbols, for judging chains people write by hand.

A node is ``("E",)``, ``("out", l, r)`` (layer 0: the inputs), ``("net", l, r)``, ``("param",
name)`` or ``("target", name)``. An edge runs from a symbol to each symbol in its own definition
(E to the outputs, out_u to net_u, or to every net of a softmax layer, net_u to its weights, its
bias and the outputs of the layer before), so a local derivative ``dA/dB`` is an edge and the
chain rule for ``dE/dX`` is the sum over the paths from E down to X. Unlike the engine's chains
(:mod:`~chainrule.derive.chain`), paths here always pass through the outputs (people write
``dE/dout_o1 * dout_o1/dnet_o1`` also where softmax with cross-entropy fuses the two).
"""

from __future__ import annotations

from typing import Iterator, Sequence

import sympy

from chainrule.derive import naming
from chainrule.derive.chain import ChainRule
from chainrule.derive.counts import the
from chainrule.derive.network import Network, real_symbol

Node = tuple
MAX_PATHS = 256


class TooManyPaths(Exception):
    """More paths between two symbols than a hand calculation writes out."""


class Graph:
    """Edges, reachability and paths of one network; see the module docstring."""

    def __init__(self, network: Network, engine: ChainRule) -> None:
        self.network = network
        self.engine = engine
        self._reach: dict[tuple[Node, Node], int] = {}
        self._grads: dict[Node, sympy.Expr] = {}
        self._layers: dict[Node, int] = {}
        self._children: dict[Node, list[Node]] = {}

    def children(self, node: Node) -> list[Node]:
        """The symbols in ``node``'s own definition (computed once: a wide layer has many)."""
        if node not in self._children:
            self._children[node] = self._children_of(node)
        return self._children[node]

    def _children_of(self, node: Node) -> list[Node]:
        net = self.network
        if node[0] == "E":
            return [("out", net.depth, k) for k in range(net.sizes[-1])] + [("target", t) for t in net.spec.targets]
        if node[0] == "out" and node[1] > 0:
            rows = range(net.sizes[node[1]]) if net.is_softmax(node[1]) else [node[2]]
            return [("net", node[1], j) for j in rows]
        if node[0] == "net":
            l, r = node[1], node[2]
            found: list[Node] = [("out", l - 1, c) for c in range(net.sizes[l - 1])]
            found += [("param", net.weight_name(l, r, c)) for c in range(net.sizes[l - 1])]
            bias = net.bias_name(l, r)
            return found + ([("param", bias)] if bias else [])
        return []

    def layer(self, node: Node) -> int:
        """How far down a node sits: E above everything, parameters at their layer."""
        if node not in self._layers:
            self._layers[node] = self._layer(node)
        return self._layers[node]

    def _layer(self, node: Node) -> int:
        if node[0] == "E":
            return 10**6
        if node[0] in ("out", "net"):
            return 2 * node[1] + (1 if node[0] == "out" else 0)
        if node[0] == "param":
            ref = self.network.locate(node[1])
            return 2 * ref.layer - 1 if ref is not None else -1
        return -1

    def count(self, above: Node, below: Node) -> int:
        """The number of paths from ``above`` down to ``below`` (0: it does not depend on it)."""
        if above == below:
            return 1
        if above[0] in ("param", "target") or self.layer(above) <= self.layer(below):
            return 0  # parameters and targets are leaves (and locating a name is not free)
        key = (above, below)
        if key not in self._reach:
            self._reach[key] = min(sum(self.count(c, below) for c in self.children(above)), 10**9)
        return self._reach[key]

    def paths(self, above: Node, below: Node) -> list[tuple[Node, ...]]:
        """Every path from ``above`` down to ``below``, as node sequences.

        Raises:
            TooManyPaths: more than :data:`MAX_PATHS`.
        """
        if self.count(above, below) > MAX_PATHS:
            raise TooManyPaths(f"{self.count(above, below):,} paths")
        return list(self._walk(above, below))

    def _walk(self, above: Node, below: Node) -> Iterator[tuple[Node, ...]]:
        if above == below:
            yield (below,)
            return
        for child in self.children(above):
            if self.count(child, below):
                for tail in self._walk(child, below):
                    yield (above,) + tail

    # -- names -------------------------------------------------------------------------------

    def symbol(self, node: Node) -> sympy.Symbol:
        net = self.network
        if node[0] == "E":
            return net.loss_symbol
        if node[0] in ("param", "target"):
            return real_symbol(node[1])
        return net.out(node[1], node[2]) if node[0] == "out" else net.net(node[1], node[2])

    def name(self, node: Node) -> str:
        return self.symbol(node).name

    def factor_name(self, above: Node, below: Node) -> str:
        return naming.PARTIAL.format(of=self.name(above), wrt=self.name(below))

    def path_text(self, path: tuple[Node, ...]) -> str:
        """``dE/dout_o1 * dout_o1/dnet_o1 * dnet_o1/dw5``."""
        return " * ".join(self.factor_name(a, b) for a, b in zip(path, path[1:]))

    def through(self, path: tuple[Node, ...], siblings: list[tuple[Node, ...]]) -> str:
        """The units that tell a path from its siblings (see :func:`through_label`)."""
        shared = set.intersection(*[{self.name(n) for n in p} for p in siblings]) if len(siblings) > 1 else set()
        inner = [self.name(n) for n in path[1:-1] if n[0] in ("out", "net")]
        return through_label(inner, shared, self.name(path[-1]))

    def group(self, chosen: list[tuple[Node, ...]], siblings: list[tuple[Node, ...]]) -> tuple[str, str]:
        """Some of a parameter's paths named as a group (see :func:`paths_phrase`), and the verb."""
        inner = {p: [self.name(n) for n in p[1:-1] if n[0] in ("out", "net")] for p in siblings}
        others = [inner[p] for p in siblings if p not in chosen]
        return paths_phrase([inner[p] for p in chosen], others, [self.through(p, siblings) for p in chosen])

    # -- expressions -------------------------------------------------------------------------

    def local(self, above: Node, below: Node) -> sympy.Expr:
        """The human form of the local derivative on an edge, from the engine's factors."""
        if below[0] == "param":
            ref = self.network.locate(below[1])
            assert ref is not None
            return self.engine.factor(above, ("param",), ref).human
        return self.engine.factor(above, below).human

    def gradient(self, node: Node) -> sympy.Expr:
        """dE/d(node) for a unit symbol, as the sum over its parents of dE/dparent * dparent/dnode
        (the engine's fused output delta where softmax or sigmoid meets cross-entropy)."""
        if node in self._grads:
            return self._grads[node]
        net, engine = self.network, self.engine
        if node[0] == "net" and node[1] == net.depth and engine.fused:
            value = engine.factor(("E",), node).human
        elif node[0] == "out" and node[1] == net.depth:
            value = engine.factor(("E",), node).human
        elif node[0] == "out":
            l = node[1] + 1
            value = sympy.Add(*[self.gradient(("net", l, k)) * self.local(("net", l, k), node) for k in range(net.sizes[l])])
        else:
            l = node[1]
            rows = range(net.sizes[l]) if net.is_softmax(l) else [node[2]]
            value = sympy.Add(*[self.gradient(("out", l, j)) * self.local(("out", l, j), node) for j in rows])
        self._grads[node] = value
        return value


def through_label(inner: Sequence[str], shared: set[str], last: str) -> str:
    """The units that tell a path from its siblings: ``out_o2`` where every path passes out_h1;
    ``out_o1, net_o3`` through a softmax layer. ``inner`` names the path's out_ and net_ nodes in
    order, ``shared`` those every sibling passes; ``last`` is shown when nothing else tells."""
    own = [n for n in inner if n not in shared] or [n for n in inner if n.startswith("out_")]
    outs = {n[len("out_"):] for n in own if n.startswith("out_")}
    shown = [n for n in own if n.startswith("out_") or n[len("net_"):] not in outs]
    return ", ".join(shown) if shown else last


def paths_phrase(chosen: Sequence[Sequence[str]], others: Sequence[Sequence[str]], labels: Sequence[str]) -> tuple[str, str]:
    """Some paths of a parameter named as a group, and the verb: ``("the path through out_o2",
    "is")``, ``("the 2 paths through out_h2", "are")`` where one unit is on all of them and on no
    other path, else ``("the paths through A and B", "are")``. ``chosen`` and ``others`` are the
    inner node names of the paths in the group and of the rest; ``labels`` each chosen one's own."""
    if len(chosen) == 1:
        return f"the path through {labels[0]}", "is"
    elsewhere = {name for path in others for name in path}
    common = [n for n in chosen[0] if all(n in path for path in chosen[1:]) and n not in elsewhere]
    units = [n for n in common if n.startswith("out_")] or common
    if units:
        return f"{the(len(chosen), 'path')} through {units[0]}", "are"
    return "the paths through " + ", ".join(labels[:-1]) + f" and {labels[-1]}", "are"

