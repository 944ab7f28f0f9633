"""The network as one graph of named nodes: who reads whom, and the paths the chain rule sums.

A node is ``("E",)`` (the loss), ``("out", l, r)`` (the output of unit ``r`` of layer ``l``;
layer 0 holds the inputs), ``("net", l, r)`` (its weighted sum), ``("param", name)`` (a weight or
a bias) or ``("target", name)``. An edge runs from a node to each node in its own definition: E
to the outputs and the targets, an output to the nets its activation reads, a net to what its
layer's rule reads (the outputs below, its weights, its bias). How a layer's units connect is its
kind's (:mod:`chainrule.derive.kinds`: an elementwise activation reads its own net, softmax every
net of its layer; a dense layer's net reads every output below); this module asks the kind and
knows no layer rule itself.

A local derivative ``dA/dB`` is an edge, and ``dA/dB`` is the sum over the paths from A down to
B. The chain-rule engine (:mod:`chainrule.derive.chain`) and the judging of hand calculations
(:mod:`chainrule.derive.hand`) read this one graph: its edges, its path counts and paths, and its
names, as people write them (``E``, ``out_h1`` or ``h1``, ``net_h1``, ``i1``, ``t1``, ``w5``).
"""

from __future__ import annotations

from functools import cached_property
from types import ModuleType
from typing import Iterator, Mapping

import sympy

from chainrule.derive import naming
from chainrule.derive.kinds import kind_of_layer
from chainrule.derive.network import Network, real_symbol

#: A node of the graph; see the module docstring.
Node = tuple
LOSS: Node = ("E",)
#: The most paths :meth:`Graph.paths` writes out: more than a hand calculation writes.
MAX_PATHS = 256
#: Path counts are written out in full up to this, past it as "about 1.2e+15".
SHOWN_COUNT = 10**9
#: The rank of E: above every unit of any network.
LOSS_RANK = 10**6


class TooManyPaths(Exception):
    """More paths between two nodes than a hand calculation writes out."""


class Graph:
    """The nodes and edges of one network, their paths and their names; see the module docstring.

    Built lazily: a network of 100,000 weights costs nothing until a node is asked about, and
    then only that node's edges.
    """

    def __init__(self, network: Network) -> None:
        self.network = network
        self._units: dict[Node, tuple[Node, ...]] = {}
        self._children: dict[Node, tuple[Node, ...]] = {}
        self._readers: dict[Node, tuple[Node, ...]] = {}
        self._fed: dict[str, frozenset[Node]] = {}
        self._ranks: dict[Node, int] = {}
        self._counts: dict[tuple[Node, Node], int] = {}

    def kind(self, layer: int) -> ModuleType:
        """The kind module of ``layer`` (1-based), which says how its units connect."""
        return kind_of_layer(self.network, layer)

    # -- edges -------------------------------------------------------------------------------

    def children(self, node: Node) -> tuple[Node, ...]:
        """The nodes in ``node``'s own definition, in the order it reads them: the units (and
        targets) first, then the parameters. Inputs, targets and parameters have none."""
        if node not in self._children:
            self._children[node] = self.unit_children(node) + self._parameters_read(node)
        return self._children[node]

    def unit_children(self, node: Node) -> tuple[Node, ...]:
        """:meth:`children` without the parameters: the units and targets ``node`` reads."""
        found = self._units.get(node)
        if found is None:
            found = self._units[node] = self._unit_children(node)
        return found

    def _unit_children(self, node: Node) -> tuple[Node, ...]:
        net = self.network
        if node[0] == "E":
            rows = net.loss_rows
            return tuple(("out", net.depth, k) for k in rows) + tuple(("target", net.target(k).name) for k in rows)
        if node[0] not in ("out", "net") or node[1] == 0:
            return ()
        layer, (step, k) = node[1], net.step_of(node[1], node[2])
        kind, below = self.kind(layer), step * net.sizes[layer - 1]  # a kind reads at one step; its rows there
        if node[0] == "out" and getattr(kind, "OUT_READS_BELOW", False):  # a layer without weights: s_k = f(out_h_k)
            return tuple(("out", layer - 1, below + j) for j in kind.out_reads_below(net, layer, k))
        if node[0] == "out":
            return tuple(("net", layer, step * net.sizes[layer] + j) for j in kind.out_reads(net.sizes[layer], k))
        own = tuple(("out", layer, j) for j in kind.recurrent_reads(net, layer, node[2])) if hasattr(kind, "recurrent_reads") else ()
        return tuple(("out", layer - 1, below + c) for c in kind.net_reads(net, layer, k)) + own

    def _parameters_read(self, node: Node) -> tuple[Node, ...]:
        if node[0] != "net":
            return ()
        k = self.network.step_of(node[1], node[2])[1]
        return tuple(("param", name) for name in self.kind(node[1]).net_parameters(self.network, node[1], k))

    def children_through(self, node: Node) -> tuple[Node, ...]:
        """The children of ``node``'s children, each once, in order: the nets of the output layer
        under E, where a loss is differentiated straight to them (softmax or sigmoid with
        cross-entropy)."""
        return tuple(dict.fromkeys(g for c in self.unit_children(node) for g in self.unit_children(c)))

    def readers(self, node: Node) -> tuple[Node, ...]:
        """The nodes whose definitions read ``node`` (the edges into it), in the graph's order."""
        if node not in self._readers:
            self._readers[node] = self._readers_of(node)
        return self._readers[node]

    def _readers_of(self, node: Node) -> tuple[Node, ...]:
        net = self.network
        if node[0] == "param":
            return tuple(sorted(self._fed_by(node)))
        if node[0] == "target" or (node[0] == "out" and node[1] == net.depth):
            return (LOSS,) if not net.spec.steps or node in self.unit_children(LOSS) else ()  # a step without targets: no loss
        if node[0] not in ("out", "net"):
            return ()
        step = net.step_of(node[1], node[2])[0]
        if node[0] == "out":
            above = "net" if net.has_parameters(node[1] + 1) else "out"
            size = net.sizes[node[1] + 1]
            candidates = [(above, node[1] + 1, step * size + k) for k in range(size)]
            if node[1] > 0 and hasattr(self.kind(node[1]), "recurrent_reads") and step + 1 < max(net.spec.steps, 1):  # h_t is read by net_(t+1)
                size = net.sizes[node[1]]
                candidates += [("net", node[1], (step + 1) * size + k) for k in range(size)]
        else:
            size = net.sizes[node[1]]
            candidates = [("out", node[1], step * size + j) for j in range(size)]
        return tuple(c for c in candidates if node in self.unit_children(c))

    def _fed_by(self, param: Node) -> frozenset[Node]:
        """The nets that read the parameter ``param`` (one; every net of its layer for a shared
        bias; in a sequence, at every step)."""
        name = param[1]
        if name not in self._fed:
            net = self.network
            ref = net.locate(name)
            rows = () if ref is None else self.kind(ref.layer).parameter_readers(net, ref)
            steps = range(max(net.spec.steps, 1)) if ref is not None else ()
            self._fed[name] = frozenset(("net", ref.layer, t * net.sizes[ref.layer] + r) for t in steps for r in rows)
        return self._fed[name]

    # -- order -------------------------------------------------------------------------------

    def rank(self, node: Node) -> int:
        """How far from the inputs a node sits: an input 1, the net of layer l 2l and its output
        2l + 1, a parameter of layer l 2l - 1 (below the nets that read it), E above everything;
        a target -1. A node reads only nodes of lower rank."""
        found = self._ranks.get(node)
        if found is None:
            found = self._ranks[node] = self._rank(node)
        return found

    def _rank(self, node: Node) -> int:
        if node[0] == "E":
            return LOSS_RANK
        if node[0] in ("out", "net"):  # in a sequence, every unit at step t above every unit at step t - 1
            step = self.network.step_of(node[1], node[2])[0]
            return step * (2 * self.network.depth + 2) + 2 * node[1] + (1 if node[0] == "out" else 0)
        if node[0] == "param":
            ref = self.network.locate(node[1])
            return 2 * ref.layer - 1 if ref is not None else -1
        return -1

    # -- paths -------------------------------------------------------------------------------

    def count(self, above: Node, below: Node) -> int:
        """The number of paths from ``above`` down to ``below`` (0: it does not depend on it; 1
        for a node and itself)."""
        if above == below:
            return 1
        if above[0] in ("param", "target") or self.rank(above) <= self.rank(below):
            return 0  # parameters and targets are leaves (and locating a name is not free)
        key = (above, below)
        found = self._counts.get(key)
        if found is None:
            reads_parameter = below[0] == "param" and above in self._fed_by(below)  # at most once
            if self.rank(above) == self.rank(below) + 1:  # its children sit at below's rank: only below leads to it
                found = int(reads_parameter if below[0] == "param" else below in self.unit_children(above))
            else:
                found = sum(self.count(c, below) for c in self.unit_children(above)) + (1 if reads_parameter else 0)
            self._counts[key] = found
        return found

    def paths(self, above: Node, below: Node, limit: int = MAX_PATHS) -> list[tuple[Node, ...]]:
        """Every path from ``above`` down to ``below``, as node sequences (none where it does not
        depend on it), in the order of :meth:`children`.

        Raises:
            TooManyPaths: more than ``limit``.
        """
        found = self.count(above, below)
        if found > limit:
            raise TooManyPaths(f"{found:,} paths" if found <= SHOWN_COUNT else f"about {float(found):.1e} paths")
        return list(self.walk(above, below))

    def factor_paths(self, above: Node, below: Node, limit: int = MAX_PATHS) -> list[tuple[Node, ...]]:
        """The paths a written factor ``d(above)/d(below)`` stands for: the edge alone where
        ``below`` is in ``above``'s own definition (the local, partial derivative, sympy.diff of
        that definition: ``dnet_h1_t2/dw1`` of an rnn reads w1 directly, though net_h1_t2 also
        reaches w1 through h1_t1), else every path of :meth:`paths` (``dE/dnet_h1`` stands for
        the paths from E to net_h1).

        Raises:
            TooManyPaths: more than ``limit``.
        """
        if below in self.children(above):
            return [(above, below)]
        return self.paths(above, below, limit)

    def walk(self, above: Node, below: Node) -> Iterator[tuple[Node, ...]]:
        """The paths of :meth:`paths`, one at a time and without a limit."""
        if above == below:
            yield (below,)
            return
        if self.rank(above) == self.rank(below) + 1:  # as in count: only below itself leads to below
            if self.count(above, below):
                yield (above, below)
            return
        for child in self.unit_children(above):
            if self.count(child, below):
                for tail in self.walk(child, below):
                    yield (above,) + tail
        if below[0] == "param" and above in self._fed_by(below):
            yield (above, below)

    # -- names -------------------------------------------------------------------------------

    def symbol(self, node: Node) -> sympy.Symbol:
        """The spec's symbol of a node (``out_h1``, ``net_h1``, ``i1``, ``t1``, ``E``, ``w5``)."""
        net = self.network
        if node[0] == "E":
            return net.loss_symbol
        if node[0] in ("param", "target"):
            return real_symbol(node[1])
        return net.out(node[1], node[2]) if node[0] == "out" else net.net(node[1], node[2])

    def name(self, node: Node) -> str:
        return self.symbol(node).name

    def path_text(self, path: tuple[Node, ...]) -> str:
        """``dE/dout_o1 * dout_o1/dnet_o1 * dnet_o1/dw5``."""
        return " * ".join(naming.PARTIAL.format(of=self.name(a), wrt=self.name(b)) for a, b in zip(path, path[1:]))

    @cached_property
    def names(self) -> Mapping[str, sympy.Symbol]:
        """The names of units, inputs, targets and E as people write them, to their symbols:
        ``o1`` and ``out_o1`` the output of unit o1, ``net_o1`` its weighted sum, an input and a
        target their own names (parameters: :meth:`symbol_named`)."""
        network = self.network
        units: dict[str, sympy.Symbol] = {}
        for l in range(1, network.depth + 1):
            for r in range(network.rows(l)):
                unit = network.unit_name(l, r)
                units[unit] = units[naming.OUT.format(unit=unit)] = network.out(l, r)
                if network.has_parameters(l):  # a layer without weights has no nets
                    units[naming.NET.format(unit=unit)] = network.net(l, r)
            if network.spec.layers[l - 1].is_rnn:  # h_0: the layer's units at step 0 (constants)
                for j, unit in enumerate(network.units(l)):
                    units[naming.AT_STEP.format(name=unit, step=0)] = units[network.initial(l, j).name] = network.initial(l, j)
        for r in range(network.rows(0)):
            units[network.unit_name(0, r)] = network.out(0, r)
        for symbol in self.target_symbols:
            units[symbol.name] = symbol
        units[naming.LOSS] = network.loss_symbol
        return units

    @cached_property
    def target_symbols(self) -> tuple[sympy.Symbol, ...]:
        """The targets' symbols: ``t1``, of a sequence at every step ``t1_t1, t1_t2, ...``."""
        return tuple(self.network.target(k) for k in range(self.network.rows(self.network.depth)))

    @cached_property
    def initial_symbols(self) -> frozenset[sympy.Symbol]:
        """The entries of every rnn's h_0 (``out_h1_t0``): constants, no nodes."""
        net = self.network
        return frozenset(net.initial(l, j) for l in range(1, net.depth + 1) if net.spec.layers[l - 1].is_rnn for j in range(net.sizes[l]))

    @cached_property
    def unit_nodes(self) -> Mapping[str, Node]:
        """The out and net nodes (inputs included) by their symbols' names."""
        network = self.network
        nodes: dict[str, Node] = {}
        for l in range(network.depth + 1):
            for r in range(network.rows(l)):
                nodes[network.out(l, r).name] = ("out", l, r)
                if l > 0 and network.has_parameters(l):
                    nodes[network.net(l, r).name] = ("net", l, r)
        return nodes

    def symbol_named(self, name: str) -> sympy.Symbol | None:
        """The symbol a unit, input, target, E or parameter name stands for, or None."""
        found = self.names.get(name)
        if found is not None:
            return found
        return real_symbol(name) if self.network.locate(name) is not None else None

    def node_of(self, symbol: sympy.Symbol) -> Node:
        """The node of one of the spec's symbols (another name is taken for a parameter's)."""
        if symbol == self.network.loss_symbol:
            return LOSS
        if symbol.name in self.unit_nodes:
            return self.unit_nodes[symbol.name]
        if symbol in self.target_symbols:
            return ("target", symbol.name)
        return ("param", symbol.name)

    def node_named(self, name: str) -> Node | None:
        """The node a name as people write it stands for (``h1`` is ``out_h1``), or None."""
        symbol = self.symbol_named(name)
        return None if symbol is None else self.node_of(symbol)

    def listed(self) -> list[str]:
        """The names of the network, compact: ``E, i1, i2, t1, t2, units h1, h2, o1, o2 (each also
        as net_ and out_), w1 ... w8, b1, b2`` (every parameter where there are at most 12)."""
        net = self.network
        if net.spec.steps:
            return _listed_in_time(self)
        units = [u for l in range(1, net.depth + 1) for u in net.units(l)]
        listed = [naming.LOSS, *_compact(list(net.units(0))), *_compact(list(net.spec.targets))]
        without = [u for l in range(1, net.depth + 1) if not net.has_parameters(l) for u in net.units(l)]
        no_nets = f"; {', '.join(_compact(without, 4))} of layers without weights have no net_" if without else ""
        listed.append("units " + ", ".join(_compact(units, 8)) + f" (each also as net_ and out_{no_nets})")
        if net.parameter_count <= 12:
            return listed + [p.name for p in net.parameters()]
        for l in net.parameter_layers:
            rows = net.weight_shape(l)[0]
            listed.append(f"{net.weight_name(l, 0, 0)} ... {net.weight_name(l, rows - 1, net.weight_columns(l) - 1)}")
            biases = [net.bias_name(l, r) or "" for r in range(net.spec.layers[l - 1].bias_count)]
            listed += _compact(biases, 2)
        return listed


def _listed_in_time(graph: Graph) -> list[str]:
    """:meth:`Graph.listed` of a sequence network: its names at each step, ``E, x1_t1 ... x1_t2,
    t1_t1 ... t1_t2, units h1, y1 at each step (h1_t1 ... y1_t2, each also as net_ and out_;
    h_0 as h1_t0), w1, u11, b1, w2``."""
    net = graph.network
    last = net.spec.steps - 1

    def span(layer: int) -> str:
        return f"{net.unit_name(layer, 0)} ... {net.unit_name(layer, net.rows(layer) - 1)}"
    targets = f"{net.target(0).name} ... {net.target(net.rows(net.depth) - 1).name}"
    units = [u for l in range(1, net.depth + 1) for u in net.units(l)]
    initial = [naming.AT_STEP.format(name=net.units(l)[0], step=0) for l in range(1, net.depth + 1) if net.spec.layers[l - 1].is_rnn]
    at_step = (f"units {', '.join(_compact(units, 8))} at each of the steps 1 ... {last + 1} ({net.unit_name(1, 0)} ... "
               f"{net.unit_name(net.depth, net.rows(net.depth) - 1)}, each also as net_ and out_; h_0 as {', '.join(initial)})")
    listed = [naming.LOSS, span(0), targets, at_step]
    if net.parameter_count <= 12:
        return listed + [p.name for p in net.parameters()]
    return listed + [f"{net.weight_name(l, 0, 0)} ..." for l in net.parameter_layers]


def _compact(names: list[str], most: int = 4) -> list[str]:
    if len(names) > most:
        return [f"{names[0]} ... {names[-1]}"]
    return names
