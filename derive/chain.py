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
from typing import Mapping

import sympy

from chainrule.derive import naming, penalty
from chainrule.derive.graph import LOSS, Graph, Node
from chainrule.derive.kinds import kind_of_layer, net_definition, out_definition
from chainrule.derive.layers import LayerForm
from chainrule.derive.network import Network, ParamRef, real_symbol
from chainrule.derive.registry import T, X, Y, softmax_in_output, to_step_form

PATH_CAP = 16


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
        gradient: the paths' sum, the data loss's dE/dθ (per sample, then reduced).
        cut_layer: None when the paths run from E; else the layer whose deltas they start at.
        paths_from_E: how many paths there are from E (equal to ``len(paths)`` unless cut).
        penalty: the L2 penalty's term of dE/dθ, ``l2*w`` (``sympy.diff`` of ``l2/2*w**2``),
            added once to the reduced paths' sum; 0 for a bias or without a penalty.
    """

    param: ParamRef
    symbol: sympy.Symbol
    paths: tuple[Path, ...]
    gradient: sympy.Expr
    cut_layer: int | None
    paths_from_E: int
    penalty: sympy.Expr = sympy.S.Zero

    @property
    def total(self) -> sympy.Expr:
        """dE/dθ of one sample's loss with the penalty: the paths' sum plus :attr:`penalty`."""
        return self.gradient + self.penalty


class ChainRule:
    """Builds :class:`ParamChain` values for one network; local factors are derived once each.

    Its paths are the network's graph's (:class:`~chainrule.derive.graph.Graph`), but for one
    step: where the loss's output delta simplifies (:attr:`fused`), E is differentiated straight
    to the output nets, so a path runs E -> net_o rather than E -> out -> net_o.
    """

    def __init__(self, network: Network, forms: tuple[LayerForm, ...], graph: Graph | None = None, max_pool: str = "first",
                 shared_from_deltas: bool = True, recurrence: str = "bptt") -> None:
        """Args:
            max_pool: where a max-pool's gradient goes: ``first`` the window's first largest input
                (PyTorch's rule, the truth); ``every`` every input of the window, ``last`` the last
                largest, ``split`` a tie split evenly among the largest, ``tied`` the whole to each of
                the largest, ``undivided`` an
                average-pool's whole to each input (the mistakes :mod:`chainrule.derive.hand` names).
            shared_from_deltas: a convolution's shared weight's paths start at its own layer's
                deltas, a term per position (:meth:`_shared`); False: from E where the paths are
                few (the tests compare them with sympy.diff of the expanded loss).
            recurrence: how an rnn's net reads the step before: ``bptt`` as defined (the truth);
                ``no_next_step`` with dnet_h_(t+1)/dh_t taken as 0 (the path through h_(t+1)
                left out of dE/dh_t), ``same_step`` with U's factor dnet_h_t/du taken at h_t
                instead of h_(t-1), ``transposed`` with dnet_hk_(t+1)/dh_j_t read from U
                untransposed, u_jk instead of u_kj (the mistakes :mod:`chainrule.derive.hand` names).
        """
        self.network = network
        self.forms = forms
        self.max_pool = max_pool
        self.shared_from_deltas = shared_from_deltas
        self.recurrence = recurrence
        self.graph = graph if graph is not None else Graph(network)
        self._factors: dict[tuple[Node, Node], Factor] = {}
        self._unit_gradients: dict[Node, sympy.Expr] = {}

    @cached_property
    def fused(self) -> bool:
        """True when E is differentiated straight to the output nets: the layer form's output
        delta simplifies (softmax with cross-entropy, sigmoid with binary cross-entropy)."""
        output = self.forms[-1].output
        return output is not None and output.simplified

    def symbol(self, node: Node) -> sympy.Symbol:
        return self.graph.symbol(node)

    def _below_loss(self, param: Node) -> list[Node]:
        """The nodes a path from E to ``param`` takes first: the outputs, or the output nets where
        :attr:`fused`."""
        graph = self.graph
        first = graph.children_through(LOSS) if self.fused else graph.unit_children(LOSS)
        return [c for c in first if graph.count(c, param)]

    # -- factors -----------------------------------------------------------------------------

    def factor(self, of: Node, wrt: Node) -> Factor:
        """d(of)/d(wrt) on an edge of the graph, derived once per edge."""
        if (of, wrt) not in self._factors:
            self._factors[(of, wrt)] = self._derive_factor(of, wrt)
        return self._factors[(of, wrt)]

    def local(self, above: Node, below: Node) -> sympy.Expr:
        """The human form of the local derivative on an edge."""
        return self.factor(above, below).human

    def _derive_factor(self, of: Node, wrt: Node) -> Factor:
        net = self.network
        of_symbol, wrt_symbol = self.symbol(of), self.symbol(wrt)
        if of[0] == "E" and (wrt[0] == "net" or wrt[0] == "out" and wrt[1] != net.depth):
            return self._fused_factor(of_symbol, wrt)  # the output nets (a layer without weights: the outputs below it)
        if of[0] == "E":
            # E is a sum of one term per output, l(out_k, t_k); out_k appears in its own alone.
            output = self.forms[-1].output
            assert output is not None
            raw = output.dE_dy.xreplace({Y: wrt_symbol, T: net.target(wrt[2])})
            return Factor(of_symbol, wrt_symbol, raw, raw)
        if of[0] == "out":
            form, kind = self.forms[of[1] - 1], kind_of_layer(net, of[1])
            if hasattr(kind, "local_factor"):  # a pool's or flatten's own: d(Max or mean of its window)/d(an input)
                raw, human, note = kind.local_factor(net, of[1], of[2], wrt_symbol, self.max_pool)
                return Factor(of_symbol, wrt_symbol, raw, human, note)
            if form.f_prime is not None:  # elementwise: out_u = f(net_u), so dout_u/dnet_u = f'(net_u)
                raw = form.f_prime.xreplace({X: wrt_symbol})
            else:
                raw = to_step_form(sympy.diff(out_definition(net, of[1], of[2]), wrt_symbol))
            return Factor(of_symbol, wrt_symbol, raw, self._activation_human(of, wrt, raw))
        if self.recurrence == "no_next_step" and wrt[0] == "out" and wrt[1] == of[1]:  # h_t read by net_h_(t+1): left out
            return Factor(of_symbol, wrt_symbol, sympy.S.Zero, sympy.S.Zero)
        if self.recurrence == "transposed" and wrt[0] == "out" and wrt[1] == of[1]:  # h_j,t read by net_hk,(t+1): u_jk taken for u_kj
            units, (step, k), j = net.sizes[of[1]], net.step_of(of[1], of[2]), net.step_of(wrt[1], wrt[2])[1]
            raw = sympy.diff(net_definition(net, of[1], step * units + j), net.out(wrt[1], wrt[2] - j + k))
            return Factor(of_symbol, wrt_symbol, raw, raw)
        definition = net_definition(net, of[1], of[2])
        if self.recurrence == "same_step" and wrt[0] == "param":  # h_(t-1) taken as h_t
            step, units = net.step_of(of[1], of[2])[0], net.sizes[of[1]]
            before = {net.out(of[1], (step - 1) * units + j) if step else net.initial(of[1], j): net.out(of[1], step * units + j) for j in range(units)}
            definition = definition.xreplace(before) if getattr(kind_of_layer(net, of[1]), "THROUGH_TIME", False) else definition
        raw = sympy.diff(definition, wrt_symbol)
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
        net, k = self.network, wrt[2]
        pieces = [self.factor(LOSS, out).human * self._activation_human(out, wrt, sympy.S.Zero) for out in self.graph.readers(wrt)]
        output = self.forms[-1].output
        assert output is not None and output.closed is not None
        human = output.closed.xreplace({Y: net.out(net.depth, k), T: net.target(k)})
        pieces_named = "dE/dout and dout/dnet" if net.has_parameters(net.depth) else f"dE/d{net.layer_name(net.depth)} and d{net.layer_name(net.depth)}/d{self.forms[-1].net}"
        note = f"{self.forms[-1].activation} with {net.spec.loss.name}: the product of {pieces_named} simplifies"
        if output.constraint:
            note += f" ({output.constraint})"
        return Factor(E, self.symbol(wrt), sympy.Add(*pieces), human, note)

    def delta_factor(self, node: Node) -> Factor:
        """``dE/dnet_u`` taken as the delta of the layer form (for cut paths)."""
        net = self.network
        unit = net.unit_name(node[1], node[2])
        delta = real_symbol(naming.DELTA_UNIT.format(unit=unit))
        return Factor(net.loss_symbol, net.net(node[1], node[2]), delta, delta, "the delta of the layer form")

    # -- paths -------------------------------------------------------------------------------

    def chain(self, ref: ParamRef) -> ParamChain:
        """The paths from E to ``ref`` and ``dE/dθ`` as their sum."""
        graph, param = self.graph, ("param", ref.name)
        first = self._below_loss(param)
        total = sum(graph.count(c, param) for c in first)
        cut_layer = ref.layer if self._shared(ref) else None
        if total <= PATH_CAP and cut_layer is None:
            walks = [(None, (LOSS,) + tail) for c in first for tail in graph.walk(c, param)]
        elif self.network.spec.steps:  # through time: at the deltas of each step where it is read, dE/dnet_t * dnet_t/dθ
            cut_layer = ref.layer
            walks = [(self.delta_factor(n), (n, param)) for n in graph.readers(param)]
        else:
            cut_layer = cut_layer or self._cut_layer(ref, param)
            nets = [("net", cut_layer, k) for k in range(self.network.sizes[cut_layer])]
            walks = [(self.delta_factor(n), tail) for n in nets if graph.count(n, param) for tail in graph.walk(n, param)]
        paths = []
        for head, nodes in walks:
            factors = tuple(self.factor(a, b) for a, b in zip(nodes, nodes[1:]))
            paths.append(Path(((head,) if head is not None else ()) + factors))
        gradient = sympy.Add(*[p.product for p in paths])
        symbol = real_symbol(ref.name)
        term = penalty.derivative(symbol) if ref.is_weight and self.network.spec.loss.l2 else sympy.S.Zero
        return ParamChain(ref, symbol, tuple(paths), gradient, cut_layer, total, term)

    def _shared(self, ref: ParamRef) -> bool:
        """Whether ``ref`` is a convolution's kernel weight or bias used at more than one position:
        its chain starts at the deltas of its own layer, ``delta_c_u * dnet_c_u/dk`` a term per
        position, as a person writes it (the path through the pool and the layers above is each
        delta's, worked once, not repeated in every weight's chain)."""
        window = self.network.spec.layers[ref.layer - 1].window
        return self.shared_from_deltas and window is not None and window.is_conv and len(self.graph.readers(("param", ref.name))) > 1

    def _cut_layer(self, ref: ParamRef, param: Node) -> int:
        for layer in range(self.network.depth, ref.layer - 1, -1):
            if self.network.has_parameters(layer) and sum(self.graph.count(("net", layer, k), param) for k in range(self.network.sizes[layer])) <= PATH_CAP:
                return layer
        return ref.layer

    def delta_steps(self, node: Node) -> list[tuple[Node, Factor, Factor]]:
        """``delta_u = dE/dnet_u`` one step up, as a person works a delta once: for each unit R
        reading ``out_u``, ``(R, dR/dout_u, dout_u/dnet_u)``, so that delta_u = sum over R of
        dE/dR * dR/dout_u * dout_u/dnet_u (dE/dR: :meth:`unit_gradient`). ``node`` is a net of an
        elementwise activation (a convolution's or a dense layer's unit)."""
        out = ("out", node[1], node[2])
        activation = self.factor(out, node)
        return [(reader, self.factor(reader, out), activation) for reader in self.graph.readers(out)]

    def unit_gradient(self, node: Node) -> sympy.Expr:
        """dE/d(node) for a unit's net or out, as the sum over its readers of dE/dreader *
        dreader/dnode (the fused output delta where softmax or sigmoid meets cross-entropy)."""
        if node in self._unit_gradients:
            return self._unit_gradients[node]
        if node[1] == self.network.depth and node[0] == "out" and LOSS not in self.graph.readers(node):
            value = sympy.S.Zero  # an output at a step without targets: E has no term there
        elif node[1] == self.network.depth and node[0] == "out" or self.fused and node in self.graph.children_through(LOSS):
            value = self.factor(LOSS, node).human
        else:
            value = sympy.Add(*[self.unit_gradient(r) * self.local(r, node) for r in self.graph.readers(node)])
        self._unit_gradients[node] = value
        return value


def expanded_units(network: Network) -> Mapping[sympy.Symbol, sympy.Expr]:
    """Every unit symbol (net and out) written in inputs and parameters, for small networks."""
    mapping: dict[sympy.Symbol, sympy.Expr] = {}
    for step in range(max(network.spec.steps, 1)):  # a sequence: step by step (an rnn reads the step before; h_0 stays a symbol)
        for l in range(1, network.depth + 1):
            rows = range(step * network.sizes[l], (step + 1) * network.sizes[l])
            nets = {}
            for r in rows if network.has_parameters(l) else ():
                nets[network.net(l, r)] = net_definition(network, l, r).xreplace(mapping)
            mapping.update(nets)
            outs_below = (network.out(l - 1, step * network.sizes[l - 1] + r) for r in range(network.sizes[l - 1]))
            below = nets if network.has_parameters(l) else {out: mapping.get(out, out) for out in outs_below}
            for r in rows:
                mapping[network.out(l, r)] = out_definition(network, l, r).xreplace(below)
    return mapping


def closed_form(chain: ParamChain, expanded: Mapping[sympy.Symbol, sympy.Expr], penalty: bool = True) -> sympy.Expr:
    """``dE/dθ`` in inputs, targets and parameters (deltas of cut paths stay as symbols), with
    the penalty's ``l2*w`` where there is one and ``penalty`` is True (False: a sample's own)."""
    return (chain.total if penalty else chain.gradient).xreplace(dict(expanded))


def expanded_loss(network: Network, expanded: Mapping[sympy.Symbol, sympy.Expr]) -> sympy.Expr:
    """E in inputs, targets and parameters, with the L2 penalty where there is one."""
    return (network.loss_definition() + network.penalty_definition()).xreplace(dict(expanded))

