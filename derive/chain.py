"""The scalar (per-parameter) form of the chain rule: paths, factors, closed forms.

For a parameter θ, ``dE/dθ`` is a sum over the paths from E down to θ, each path a product of
local factors such as ``dE/dout_o1 · dout_o1/dnet_o1 · dnet_o1/dw5``. Each factor is
``sympy.diff`` of one unit's own definition with respect to one of its immediate symbols, and is
then written in the symbols a person uses (``out_o1*(1 - out_o1)`` for a sigmoid). A unit's
activation and its term of the loss are the layer's definition with the unit's symbols put in,
so their derivatives are the layer form's (``sympy.diff`` once per layer, on generic symbols)
with the same symbols put in: the cost follows the layers, not the units. When a
parameter has more than :data:`PATH_CAP` paths (deep, wide networks), its paths start at the
deltas ``delta_u = dE/dnet_u`` of the highest layer that keeps the count under the cap, as one
writes it by hand; those deltas come from the layer form.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Iterator, Mapping

import sympy

from chainrule.derive import naming
from chainrule.derive.layers import LayerForm
from chainrule.derive.network import Network, ParamRef, real_symbol
from chainrule.derive.registry import T, X, Y, softmax_in_output, to_step_form

PATH_CAP = 16

# A node of the network's graph: ("E",), ("out", layer, row), ("net", layer, row) or ("param",).
Node = tuple


@dataclass(frozen=True)
class Factor:
    """One local derivative ``d(of)/d(wrt)``.

    Attributes:
        derivative: ``sympy.diff`` of ``of``'s definition, in its immediate symbols.
        human: the same, in the symbols people write (outputs rather than nets where possible).
        note: why the factor is what it is, when that needs saying (``""`` otherwise).
    """

    of: sympy.Symbol
    wrt: sympy.Symbol
    derivative: sympy.Expr
    human: sympy.Expr
    note: str = ""


@dataclass(frozen=True)
class Path:
    factors: tuple[Factor, ...]

    @property
    def product(self) -> sympy.Expr:
        """The path's value as one expression (factors multiplied out by sympy)."""
        return sympy.Mul(*[f.human for f in self.factors])


@dataclass(frozen=True)
class ParamChain:
    """``dE/dθ`` for one parameter: its paths and their sum.

    Attributes:
        cut_layer: None when the paths run from E; else the layer whose deltas they start at.
        paths_from_E: how many paths there are from E (equal to ``len(paths)`` unless cut).
    """

    param: ParamRef
    symbol: sympy.Symbol
    paths: tuple[Path, ...]
    gradient: sympy.Expr
    cut_layer: int | None
    paths_from_E: int


class ChainRule:
    """Builds :class:`ParamChain` values for one network; local factors are derived once each."""

    def __init__(self, network: Network, forms: tuple[LayerForm, ...]) -> None:
        self.network = network
        self.forms = forms
        self._factors: dict[tuple[Node, Node], Factor] = {}

    # -- the graph ---------------------------------------------------------------------------

    @cached_property
    def fused(self) -> bool:
        """True when E is differentiated straight to the output nets: the layer form's output
        delta simplifies (softmax with cross-entropy, sigmoid with binary cross-entropy)."""
        output = self.forms[-1].output
        return output is not None and output.simplified

    def symbol(self, node: Node, ref: ParamRef | None = None) -> sympy.Symbol:
        if node[0] == "E":
            return self.network.loss_symbol
        if node[0] == "param":
            assert ref is not None
            return real_symbol(ref.name)
        return self.network.net(node[1], node[2]) if node[0] == "net" else self.network.out(node[1], node[2])

    def children(self, node: Node, ref: ParamRef) -> Iterator[Node]:
        """The nodes ``node`` depends on directly that depend on the parameter ``ref``."""
        net = self.network
        if node[0] == "E":
            kind = "net" if self.fused else "out"
            candidates = [(kind, net.depth, k) for k in range(net.sizes[-1])]
        elif node[0] == "out":
            rows = range(net.sizes[node[1]]) if net.is_softmax(node[1]) else [node[2]]
            candidates = [("net", node[1], j) for j in rows]
        elif node[1] == ref.layer:
            candidates = [("param",)]
        else:
            candidates = [("out", node[1] - 1, j) for j in range(net.sizes[node[1] - 1])]
        return (c for c in candidates if self.depends(c, ref))

    def depends(self, node: Node, ref: ParamRef) -> bool:
        if node[0] in ("E", "param"):
            return True
        layer = node[1]
        if layer < ref.layer or (node[0] == "out" and layer == 0):
            return False
        if layer > ref.layer:
            return True
        if node[0] == "out" and self.network.is_softmax(layer):
            return True
        shared = not ref.is_weight and self.network.spec.layers[layer - 1].bias.value == "shared"
        return shared or node[2] == ref.row

    def count(self, node: Node, ref: ParamRef, memo: dict[Node, int]) -> int:
        if node[0] == "param":
            return 1
        if node not in memo:
            memo[node] = sum(self.count(c, ref, memo) for c in self.children(node, ref))
        return memo[node]

    # -- factors -----------------------------------------------------------------------------

    def factor(self, of: Node, wrt: Node, ref: ParamRef | None = None) -> Factor:
        """d(of)/d(wrt), derived once per edge (``ref`` names the parameter when wrt is one)."""
        key = (of, wrt if ref is None else ("param", ref.name))
        if key not in self._factors:
            self._factors[key] = self._derive_factor(of, wrt, ref)
        return self._factors[key]

    def _derive_factor(self, of: Node, wrt: Node, ref: ParamRef | None) -> Factor:
        net = self.network
        of_symbol, wrt_symbol = self.symbol(of, ref), self.symbol(wrt, ref)
        if of[0] == "E" and wrt[0] == "net":
            return self._fused_factor(of_symbol, wrt)
        if of[0] == "E":
            # E is a sum of one term per output, l(out_k, t_k); out_k appears in its own alone.
            output = self.forms[-1].output
            assert output is not None
            raw = output.dE_dy.xreplace({Y: wrt_symbol, T: net.target(wrt[2])})
            return Factor(of_symbol, wrt_symbol, raw, raw)
        if of[0] == "out":
            form = self.forms[of[1] - 1]
            if form.f_prime is not None:  # elementwise: out_u = f(net_u), so dout_u/dnet_u = f'(net_u)
                raw = form.f_prime.xreplace({X: wrt_symbol})
            else:
                raw = to_step_form(sympy.diff(net.out_definition(of[1], of[2]), wrt_symbol))
            return Factor(of_symbol, wrt_symbol, raw, self._activation_human(of, wrt, raw))
        raw = sympy.diff(net.net_definition(of[1], of[2]), wrt_symbol)
        return Factor(of_symbol, wrt_symbol, raw, raw)

    def _activation_human(self, of: Node, wrt: Node, raw: sympy.Expr) -> sympy.Expr:
        net, layer = self.network, of[1]
        if net.is_softmax(layer):
            return softmax_in_output(net.out(layer, of[2]), net.out(layer, wrt[2]), of[2] == wrt[2])
        in_output = self.forms[layer - 1].f_prime_out
        if in_output is None:
            return raw
        return in_output.xreplace({Y: net.out(layer, of[2])})

    def _fused_factor(self, E: sympy.Symbol, wrt: Node) -> Factor:
        """dE/dnet_k where the output delta simplifies (softmax or sigmoid with cross-entropy).

        ``derivative`` is the chain through the outputs, sum_j dE/dout_j * dout_j/dnet_k (one
        term for an elementwise activation), each piece derived as usual; ``human`` is the layer
        form's simplified delta, equal to it (where the targets sum to 1, for softmax; the test
        suite proves it).
        """
        net, L, k = self.network, wrt[1], wrt[2]
        outs = range(net.sizes[L]) if net.is_softmax(L) else [k]
        pieces = [self.factor(("E",), ("out", L, j)).human * self._activation_human(("out", L, j), wrt, sympy.S.Zero) for j in outs]
        output = self.forms[-1].output
        assert output is not None and output.closed is not None
        human = output.closed.xreplace({Y: net.out(L, k), T: net.target(k)})
        note = f"{self.forms[-1].activation} with {net.spec.loss.name}: the product of dE/dout and dout/dnet simplifies"
        if output.constraint:
            note += f" ({output.constraint})"
        return Factor(E, net.net(L, k), sympy.Add(*pieces), human, note)

    def delta_factor(self, node: Node) -> Factor:
        """``dE/dnet_u`` taken as the delta of the layer form (for cut paths)."""
        net = self.network
        unit = net.units(node[1])[node[2]]
        delta = real_symbol(naming.DELTA_UNIT.format(unit=unit))
        return Factor(net.loss_symbol, net.net(node[1], node[2]), delta, delta, "the delta of the layer form")

    # -- paths -------------------------------------------------------------------------------

    def chain(self, ref: ParamRef) -> ParamChain:
        """The paths from E to ``ref`` and ``dE/dθ`` as their sum."""
        memo: dict[Node, int] = {}
        cut_layer = None
        starts: list[tuple[Factor | None, Node]] = [(None, ("E",))]
        total = self.count(("E",), ref, memo)
        if total > PATH_CAP:
            cut_layer = self._cut_layer(ref, memo)
            nodes = [("net", cut_layer, k) for k in range(self.network.sizes[cut_layer])]
            starts = [(self.delta_factor(n), n) for n in nodes if self.depends(n, ref)]
        paths: list[Path] = []
        for first, node in starts:
            head = (first,) if first is not None else ()
            paths.extend(Path(head + tail) for tail in self._paths(node, ref))
        gradient = sympy.Add(*[p.product for p in paths])
        return ParamChain(ref, real_symbol(ref.name), tuple(paths), gradient, cut_layer, total)

    def _cut_layer(self, ref: ParamRef, memo: dict[Node, int]) -> int:
        for layer in range(self.network.depth, ref.layer - 1, -1):
            nodes = [("net", layer, k) for k in range(self.network.sizes[layer])]
            if sum(self.count(n, ref, memo) for n in nodes if self.depends(n, ref)) <= PATH_CAP:
                return layer
        return ref.layer

    def _paths(self, node: Node, ref: ParamRef) -> Iterator[tuple[Factor, ...]]:
        for child in self.children(node, ref):
            factor = self.factor(node, child, ref if child[0] == "param" else None)
            if child[0] == "param":
                yield (factor,)
            else:
                for tail in self._paths(child, ref):
                    yield (factor,) + tail


def expanded_units(network: Network) -> Mapping[sympy.Symbol, sympy.Expr]:
    """Every unit symbol (net and out) written in inputs and parameters, for small networks."""
    mapping: dict[sympy.Symbol, sympy.Expr] = {}
    for l in range(1, network.depth + 1):
        nets = {}
        for r in range(network.sizes[l]):
            nets[network.net(l, r)] = network.net_definition(l, r).xreplace(mapping)
        mapping.update(nets)
        for r in range(network.sizes[l]):
            mapping[network.out(l, r)] = network.out_definition(l, r).xreplace(nets)
    return mapping


def closed_form(chain: ParamChain, expanded: Mapping[sympy.Symbol, sympy.Expr]) -> sympy.Expr:
    """``dE/dθ`` in inputs, targets and parameters (deltas of cut paths stay as symbols)."""
    return chain.gradient.xreplace(dict(expanded))


def expanded_loss(network: Network, expanded: Mapping[sympy.Symbol, sympy.Expr]) -> sympy.Expr:
    """E in inputs, targets and parameters."""
    return network.loss_definition().xreplace(dict(expanded))

