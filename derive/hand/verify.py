"""Judging hand calculations: each part of each claim correct or wrong, with what differs.

A :class:`Verifier` holds one derivation and everything derived from it for judging (the names,
the graph of symbols, the true forms, values and typical mistakes per target, random points for
the numeric second opinion), computed once and shared by every claims file of a class.

- **Values** are judged at the precision their own digits imply: ``0.0822`` is right for
  0.082167041 (rounded), ``0.0821`` too (truncated, and said so), ``0.0823`` is not; or within
  an explicit ``tolerance``.
- **Formulas** are equal to the true form symbolically (the net symbols written out, outputs kept
  as symbols), or else at random points of the network (every symbol from one forward pass);
  equal there but not shown equal by sympy, they are accepted with a note.
- **Chains** are sums of products of factors ``dA/dB``: each factor must be a derivative that
  exists (A depends on B), each product must link E to the parameter, and together they must
  cover each path from E to it exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Callable, Sequence

import numpy as np
import sympy

from chainrule.derive.trajectory import EARLY_UPDATE, State, follow
from chainrule.derive.counts import count
from chainrule.derive import naming
from chainrule.derive.chain import ChainRule, Factor, Path
from chainrule.derive.hand.chains import judge_chain
from chainrule.derive.hand.claims import Claim, ClaimsFile, Part, Target, TargetKind, known, resolve_name, settings, unknown
from chainrule.derive.derivation import Derivation, PointValues, weight_entry
from chainrule.derive.penalty import L2
from chainrule.derive.hand.diagnosis import (
    Alternative,
    Finding,
    Rate,
    Verdict,
    expandable,
    gradient_alternatives,
    path_findings,
    path_form,
    penalty_alternatives,
    ratio_findings,
    same,
    sum_alternatives,
    update_alternatives,
)
from chainrule.derive.errors import ChainruleError, FormulaError
from chainrule.derive.formula import format_expr, parse_formula, to_sympy, tree_size
from chainrule.derive.network import ParamRef, Values, exact, real_symbol, seeded_sample
from chainrule.derive.evaluate import gradients_of
from chainrule.derive.numeric import compile_expr
from chainrule.derive.optimizers import GRAD, OPTIMIZERS, THETA, compile_rule, first_step_expr
from chainrule.derive.graph import Graph, Node
from chainrule.derive.kinds import net_bias, net_definition, out_definition
from chainrule.derive.windows import FLATTEN_KIND, POOL_KINDS
from chainrule.derive.hand.shared import (
    MAX_POOL_MISTAKES, RECURRENCE_MISTAKES, SHOWN_NODES, flip_alternatives, left_out_finding, max_pool_ties, max_pool_words, position_alternatives, position_terms,
)
from chainrule.derive.hand.valuecheck import at_precision, judge_number, matches, significant, value_findings, within_rounding

RANDOM_POINTS = 6
RELATIVE = 1e-9
MAX_SIBLINGS = 16
#: A difference of at most this many nodes is shown when a wrong form gives the true value on the sample.
MAX_SHOWN_DIFFERENCE = 40
#: Earlier right values a value may carry on, and the paths whose factors' rounding is bounded.
MAX_CARRIED, MAX_ROUNDED_PATHS = 16, 256


@dataclass(frozen=True)
class Truth:
    """What is true of one target: its value, its form (and paths), the typical mistakes."""

    value: float
    expr: sympy.Expr | None
    form: str
    paths: tuple[Path, ...] = ()
    alternatives: tuple[Alternative, ...] = ()
    rate: Rate | None = None


class _Env:
    """Symbol values at a point, plus ``NAME+`` for parameters after the step (sample only)."""

    def __init__(self, base: PointValues, derivation: Derivation | None = None) -> None:
        self.base, self.d = base, derivation

    def __getitem__(self, name: str) -> Any:
        if name.endswith("+") and self.d is not None:
            ref = self.d.network.locate(name[:-1])
            if ref is not None:
                return np.float64(self.d.updated(ref))
        return self.base[name]


class Verifier:
    """Judges claims about one derivation; see the module docstring."""

    def __init__(self, derivation: Derivation, batch: Verifier | None = None, row: int = 0) -> None:
        """Args:
            derivation: what claims are judged against; for a batch of several samples, claims
                without ``sample:`` are about the batch (E, gradients and updates by value), and
                each ``sample: k`` is judged by a verifier of sample k alone (:meth:`of_sample`).
            batch, row: for such a verifier of one sample, the batch's verifier and the sample
                (from 0), whose values name the batch's mistakes (the batch's value given for
                one sample's, another sample's value).
        """
        self.d = derivation
        self.network = derivation.network
        self.graph = Graph(self.network) if batch is None else batch.graph
        self.engine = ChainRule(self.network, derivation.layers, self.graph)
        self.settings = settings(self.network)
        # a batch of several has no one sample: its claims are judged by value (judge_batch_value)
        self.sample = _Env(derivation.env, derivation) if not derivation.batch else None  # type: ignore[assignment]
        self.batch, self.row = batch, row
        self._samples: dict[int, Verifier] = {}
        self._truths: dict[str, Truth] = {}
        self._states: dict[int, State] = {}  # after n steps (claims with step:)
        self._early: dict[int, State] = {}  # the same, with the early-update mistake
        self._formulas: dict[tuple[str, sympy.Expr], tuple[bool, tuple[Finding, ...], str]] = {}
        self._read: dict[tuple[str, str], sympy.Expr] = {}  # (target, text) -> claimed, canonical
        self._restating: set[tuple[str, str]] = set()  # (target, text) of formulas that restate the target
        self._chains: dict[tuple[str, str], Verdict] = {}
        self._alternative_values: dict[str, list[tuple[Finding, float]]] = {}
        self._sample_values: dict[sympy.Expr, float] = {}

    # -- points ------------------------------------------------------------------------------

    @cached_property
    def points(self) -> list[_Env]:
        """Seeded random points: weights and biases uniform in [-1, 1], a valid random sample."""
        rng = np.random.default_rng(20261123)
        envs = []
        for _ in range(RANDOM_POINTS):
            W = tuple(None if w is None else rng.uniform(-1, 1, w.shape) for w in self.d.values.W)
            b = tuple(None if v is None else rng.uniform(-1, 1, v.shape) for v in self.d.values.b)
            x, t, _ = seeded_sample(self.network, rng)
            values = Values(W, b, x[np.newaxis, :], t[np.newaxis, :], True)
            envs.append(_Env(PointValues(self.network, values, gradients_of(self.d.numbers, values))))
        return envs

    def evaluate(self, expr: sympy.Expr, env: Any) -> float:
        with np.errstate(all="ignore"):
            return float(compile_expr(expr)(env))

    # -- truths ------------------------------------------------------------------------------

    def truth(self, target: Target) -> Truth:
        if target.label not in self._truths:
            self._truths[target.label] = self._truth(target)
        return self._truths[target.label]

    def _truth(self, target: Target) -> Truth:
        kind, d, net = target.kind, self.d, self.network
        if kind is TargetKind.LOSS:
            expr = net.loss_definition()
            terms = {net.loss_term(k): f"of {net.out(net.depth, k).name}" for k in range(net.sizes[-1])} if net.sizes[-1] > 1 else {}
            double = " (the 1/2 of half_sse left out)" if net.spec.loss.name == "half_sse" else ""
            alts = sum_alternatives(expr, "E", terms, double)
            if net.spec.loss.l2 and self.batch is None:  # E = loss + l2/2 * (sum of the squared weights); a sample's E_k has none
                penalty = self._exact_l2(net.penalty_definition())
                form = f"{format_expr(expr)} + {format_expr(net.penalty_definition())}"
                alts = penalty_alternatives(expr, penalty, "l2/2*(sum of the squared weights)", "E", alts)
                return Truth(d.loss, expr + penalty, form, alternatives=tuple(alts))
            return Truth(d.loss, expr, format_expr(expr), alternatives=tuple(alts))
        if kind is TargetKind.UNIT:
            return self._unit_truth(target.symbol)
        if kind is TargetKind.UNIT_GRADIENT:
            node = self.graph.node_of(target.symbol)
            expr = self.unit_gradient(node)
            alts = [Alternative(Finding("sign", "the sign is flipped", format_expr(-expr)), -expr)] + self._reader_signs(expr, node)
            alts += flip_alternatives(net, self.graph, node, self.unit_gradient) + self._max_pool_alternatives(expr, lambda engine: engine.unit_gradient(node), node)
            alts += self._recurrence_alternatives(expr, lambda engine: engine.unit_gradient(node)) + self._transposed_here(expr, node)
            return Truth(self.evaluate(expr, self.sample), expr, format_expr(expr), alternatives=tuple(alts))
        if kind is TargetKind.GRADIENT:
            return self._gradient_truth(target)
        return self._update_truth(target)

    def _unit_truth(self, symbol: sympy.Symbol) -> Truth:
        net, node = self.network, self.graph.node_of(symbol)
        value = self.evaluate(symbol, self.sample)
        if node[0] == "net":
            expr = net_definition(net, node[1], node[2])
            bias_ref = net_bias(net, node[1], node[2])
            bias = None if bias_ref is None else real_symbol(bias_ref.name)
            alts = [Alternative(Finding("missing_term", f"the bias {bias} is left out", bias.name), expr - bias)] if bias is not None else []
            out = net.out(node[1], node[2])
            alts.append(Alternative(Finding("net_out", f"this is {out.name}, the output, not the weighted sum", out.name), out))
            if net.sizes[node[1]] == net.sizes[node[1] - 1] and net.sizes[node[1]] > 1 and net.spec.layers[node[1] - 1].window is None:
                other = sympy.Add(*[net.weight(node[1], c, node[2]) * net.out(node[1] - 1, c) for c in range(net.sizes[node[1] - 1])]) + (bias or 0)
                alts.append(Alternative(Finding("weight_order", "the weights are read in the other order (the weight from unit j into unit k taken as the one from k into j)", format_expr(other)), other))
            return Truth(value, expr, format_expr(expr), alternatives=tuple(alts))
        if node[0] == "out" and node[1] > 0 and net.spec.layers[node[1] - 1].kind in POOL_KINDS + (FLATTEN_KIND,):
            expr = out_definition(net, node[1], node[2])  # a pool's max or mean of its window, a flatten's one output
            return Truth(value, expr, format_expr(expr))
        if node[0] == "out" and node[1] > 0:
            expr = out_definition(net, node[1], node[2])
            nsym = net.activation_input(node[1], node[2])
            what = "the weighted sum" if net.has_parameters(node[1]) else f"the input of {net.out(node[1], node[2]).name}"
            alts = [Alternative(Finding("net_out", f"this is {nsym.name}, {what}: the activation is not applied", nsym.name), nsym)]
            bias_ref = net_bias(net, node[1], node[2]) if net.has_parameters(node[1]) else None
            bias = None if bias_ref is None else real_symbol(bias_ref.name)
            if bias is not None:
                alts.append(Alternative(Finding("missing_term", f"the bias {bias} is left out of {nsym.name}", bias.name), expr.xreplace({nsym: nsym - bias})))
            return Truth(value, expr, format_expr(expr), alternatives=tuple(alts))
        return Truth(value, symbol, symbol.name)

    def unit_gradient(self, node: Node) -> sympy.Expr:
        """dE/d(unit) in the spec's symbols; through the deltas of the layer above for big networks."""
        net = self.network
        if self.d.small or node[1] == net.depth:
            return self.engine.unit_gradient(node)
        if node[0] == "net":
            return real_symbol(naming.DELTA_UNIT.format(unit=net.unit_name(node[1], node[2])))
        l = node[1] + 1
        if net.spec.steps:  # a sequence: the deltas of the nets that read it (the layer above at its step; an rnn's at the next step)
            return sympy.Add(*[real_symbol(naming.DELTA_UNIT.format(unit=net.unit_name(r[1], r[2]))) * self.engine.local(r, node) if r[0] == "net"
                               else real_symbol(naming.DELTA_UNIT.format(unit=net.unit_name(r[1], r[2]))) for r in self.graph.readers(node)])
        if not net.has_parameters(l):  # the delta of a layer without weights is dE/d(its input)
            return real_symbol(naming.DELTA_UNIT.format(unit=net.units(l)[node[2]]))
        if net.spec.layers[l - 1].window is not None:  # the deltas of the positions whose field holds it, each times its kernel weight
            return sympy.Add(*[real_symbol(naming.DELTA_UNIT.format(unit=net.units(l)[r[2]])) * self.engine.local(r, node) for r in self.graph.readers(node)])
        return sympy.Add(*[net.weight(l, k, node[2]) * real_symbol(naming.DELTA_UNIT.format(unit=net.units(l)[k])) for k in range(net.sizes[l])])

    def chain_of(self, name: str):
        chain = self.d.chains.get(name)
        if chain is None:
            ref = self.network.locate(name)
            assert ref is not None
            chain = self.engine.chain(ref)
        return chain

    def _gradient_truth(self, target: Target) -> Truth:
        ref = target.param
        assert ref is not None
        chain = self.chain_of(ref.name)
        expr = chain.gradient
        activations = {net_out.name: self.network.spec.layers[l - 1].activation.name for l in range(1, self.network.depth + 1) for net_out in (self.network.out(l, r) for r in range(self.network.sizes[l]))}
        later = {self.network.weight_name(l, r, c) for l in self.network.parameter_layers if l > ref.layer for r in range(self.network.sizes[l]) for c in range(self.network.sizes[l - 1])} if self.d.small else set()
        siblings = {}
        if self.d.small:
            layer = [p for p in self.network.parameters() if p.layer == ref.layer and p.kind == ref.kind and p.name != ref.name]
            siblings = {p.name: self.d.chains[p.name].gradient for p in layer[:MAX_SIBLINGS]}
        alts = position_alternatives(self.network, ref, chain.paths) + self._recurrence_alternatives(expr, lambda engine: self._expanded_gradient(engine, ref))
        alts += gradient_alternatives(chain.paths, activations, later, siblings, self.graph.unit_nodes)
        alts += self._bias_alternatives(ref) + self._max_pool_alternatives(expr, lambda engine: self._expanded_gradient(engine, ref))
        form = " + ".join(path_form(p) for p in chain.paths)
        if chain.penalty != 0 and self.batch is None:  # the L2 penalty's l2*w after the paths' sum (a sample's dE_k/dw has none)
            penalty = self._exact_l2(chain.penalty)
            alts = penalty_alternatives(expr, penalty, format_expr(chain.penalty), naming.GRADIENT.format(name=ref.name), alts)
            expr, form = expr + penalty, f"{form} + {format_expr(chain.penalty)}"
        return Truth(self.d.gradient(ref), expr, form, chain.paths, tuple(alts))

    def _max_pool_alternatives(self, true: sympy.Expr, build: Callable[[ChainRule], sympy.Expr], node: Node | None = None) -> list[Alternative]:
        """The max-pool mistakes (:data:`~chainrule.derive.hand.shared.MAX_POOL_MISTAKES`): what
        ``build`` gives with an engine that routes a max-pool's gradient so, where it differs
        from ``true`` (small networks with a max-pool); the words name the sample's ties (those
        of ``node``'s window, a unit's dE/d)."""
        if not self.d.small or not any(layer.kind.startswith(("maxpool", "avgpool")) for layer in self.network.spec.layers):
            return []
        ties = max_pool_ties(self.network, self.at_sample) if self.batch is None else []
        unit = self.network.out(node[1], node[2]) if node is not None and node[1] > 0 else None
        rules = list(MAX_POOL_MISTAKES)
        if not any(unit in t for t in ties):  # 'every' names it first (both give each of a tie the whole), but not a tied unit's own
            rules.remove("tied")
            rules.insert(rules.index("every") + 1, "tied")
        alts = []
        for rule in rules:
            key = MAX_POOL_MISTAKES[rule]
            wrong = build(ChainRule(self.network, self.d.layers, self.graph, max_pool=rule))
            if wrong != true and wrong != self._expanded_true(true):
                words = max_pool_words(rule, ties, unit)
                alts.append(Alternative(Finding(key, words, format_expr(wrong) if tree_size(wrong, SHOWN_NODES) < SHOWN_NODES else ""), wrong))
        return alts

    def _recurrence_alternatives(self, true: sympy.Expr, build: Callable[[ChainRule], sympy.Expr]) -> list[Alternative]:
        """The recurrence mistakes (:data:`~chainrule.derive.hand.shared.RECURRENCE_MISTAKES`):
        what ``build`` gives with an engine that reads the step before so, where it differs from
        ``true`` (small networks with an rnn)."""
        if not self.d.small or not self.network.spec.steps:
            return []
        alts = []
        for rule, (key, words) in RECURRENCE_MISTAKES.items():
            wrong = build(ChainRule(self.network, self.d.layers, self.graph, recurrence=rule))
            if wrong != true and wrong != self._expanded_true(true):
                alts.append(Alternative(Finding(key, words, format_expr(wrong) if tree_size(wrong, SHOWN_NODES) < SHOWN_NODES else ""), wrong))
        return alts

    def _reader_signs(self, true: sympy.Expr, node) -> list[Alternative]:
        """dE/d(``node``) with the sign of one reader's term flipped (the term through the layer
        above at step t, or through the next step), where it has several readers."""
        readers = self.graph.readers(node)
        if len(readers) < 2:
            return []
        alts = []
        for r in readers:
            term = self.unit_gradient(r) * self.engine.local(r, node)
            if term != 0:
                words = f"the sign of the term through {self.graph.name(r)} is flipped"
                alts.append(Alternative(Finding("sign", words, format_expr(-term) if tree_size(term, SHOWN_NODES) < SHOWN_NODES else ""), true - 2 * term))
        return alts

    def _transposed_here(self, true: sympy.Expr, node) -> list[Alternative]:
        """``recurrent_transposed`` at this step alone: dE/dh_j_t from the right dE/d of each
        reader, with U untransposed only in the hop to net_h_(t+1) (a hand calculation that takes
        the deltas of step t+1 as given and sums delta_hk_(t+1)*u_jk). The engine's rule
        transposes every hop back from the last step; this is the other way to make it."""
        if not self.d.small or not self.network.spec.steps or node[0] != "out":
            return []
        engine = ChainRule(self.network, self.d.layers, self.graph, recurrence="transposed")
        wrong = sympy.Add(*[self.unit_gradient(r) * engine.local(r, node) for r in self.graph.readers(node)])
        if wrong == true:
            return []
        key, words = RECURRENCE_MISTAKES["transposed"]
        return [Alternative(Finding(key, words, format_expr(wrong) if tree_size(wrong, SHOWN_NODES) < SHOWN_NODES else ""), wrong)]

    def _expanded_gradient(self, engine: ChainRule, ref: ParamRef) -> sympy.Expr:
        """dE/dθ by ``engine``'s factors, its paths' deltas (cut at a layer) written out by the same."""
        chain = engine.chain(ref)
        deltas = {f.derivative: engine.unit_gradient(self.graph.unit_nodes[f.wrt.name])
                  for p in chain.paths for f in p.factors if chain.cut_layer is not None and f.derivative.is_Symbol and f.derivative.name.startswith("delta_")}
        return chain.gradient.xreplace(deltas) if deltas else chain.gradient

    def _expanded_true(self, true: sympy.Expr) -> sympy.Expr:
        deltas = {s: self.unit_gradient(self.graph.unit_nodes["net_" + s.name[len("delta_"):]]) for s in true.free_symbols if s.name.startswith("delta_")}
        return true.xreplace(deltas) if deltas else true

    def _exact_l2(self, expr: sympy.Expr) -> sympy.Expr:
        """``expr`` with the penalty's setting as its exact value, as a claimed formula reads it."""
        return expr.xreplace({L2: exact(self.network.spec.loss.l2)})

    def _optimizer_alternatives(self, theta: sympy.Symbol, updated: sympy.Expr, gradient: sympy.Expr, g: sympy.Symbol,
                                hyper: dict[str, float]) -> list[Alternative]:
        """Another optimizer's first step (the parameter's settings ``hyper`` where it has them,
        else its defaults): sgd's ``w - lr*dE/dw`` where the spec's is adam."""
        spec = self.network.spec.optimizer
        own = format_expr(first_step_expr(spec.kind, hyper).xreplace({THETA: theta, GRAD: g}), last=[g])
        alts, seen = [], {updated}
        for kind, definition in OPTIMIZERS.items():
            values = {h: hyper.get(h, d.default) for h, d in definition.hyper.items()}
            step = first_step_expr(kind, values).xreplace({sympy.Symbol(h, real=True): exact(v) for h, v in values.items()})
            expr = step.xreplace({THETA: theta, GRAD: gradient})
            if kind != spec.kind and expr not in seen:
                seen.add(expr)
                words = f"this is {kind}'s update; {spec.kind}'s first step is {own}"
                alts.append(Alternative(Finding("other_optimizer", words, format_expr(step.xreplace({THETA: theta, GRAD: g}), last=[g])), expr))
        return alts

    def _group_alternatives(self, theta: sympy.Symbol, updated: sympy.Expr, gradient: sympy.Expr, hyper: dict[str, float],
                            g: sympy.Symbol) -> list[Alternative]:
        """The update with the optimizer's own settings where ``optimizer.groups`` give this
        parameter others (weight decay on a bias its group exempts, the common rate for a
        weight with a rate of its own)."""
        spec = self.network.spec.optimizer
        common = dict(spec.hyper)
        if common == hyper:
            return []
        step = first_step_expr(spec.kind, common).xreplace({sympy.Symbol(h, real=True): exact(v) for h, v in common.items()})
        expr = step.xreplace({THETA: theta, GRAD: gradient})
        if expr == updated:
            return []
        own = ", ".join(f"{k} {v:g}" for k, v in hyper.items() if common.get(k) != v)
        words = f"this is the update with the optimizer's own settings; {theta.name} is in a group of optimizer.groups with {own}"
        return [Alternative(Finding("group_ignored", words, format_expr(step.xreplace({THETA: theta, GRAD: g}), last=[g])), expr)]

    def _bias_alternatives(self, ref: ParamRef) -> list[Alternative]:
        """A per-unit bias given the gradient a shared bias of its layer would have (the sum
        over the layer's units), which is what chainrule derives for ``bias: shared``."""
        layer = self.network.spec.layers[ref.layer - 1]
        if ref.is_weight or layer.bias_count < 2 or not self.d.small:
            return []
        names = [self.network.bias_name(ref.layer, r) for r in range(layer.bias_count)]
        shared = sympy.Add(*[self.chain_of(n).gradient for n in names if n])
        unit = self.network.units(ref.layer)[ref.row]
        words = f"this is the gradient of a shared bias (bias: shared, one bias for the layer: the sum over its units); {ref.name} is {unit}'s own bias, whose gradient is {unit}'s term alone"
        return [Alternative(Finding("shared_bias", words, format_expr(shared)), shared)]

    def _update_truth(self, target: Target) -> Truth:
        ref = target.param
        assert ref is not None
        theta = target.symbol
        value = self.d.updated(ref)
        if self.d.frozen(ref):
            return Truth(value, theta, theta.name + " (frozen: not updated)")
        gradient = self._gradient_truth(Target(TargetKind.GRADIENT, theta, ref))
        spec = self.network.spec.optimizer
        hyper = self.network.settings_of(ref)  # its group's settings where it is in one
        step = first_step_expr(spec.kind, hyper).xreplace({sympy.Symbol(h, real=True): exact(v) for h, v in hyper.items()})
        g = real_symbol(naming.GRADIENT.format(name=theta.name))
        written = step.xreplace({THETA: theta, GRAD: g})
        expr = step.xreplace({THETA: theta, GRAD: gradient.expr})
        rate = self._rate(theta, written, g, hyper)
        alts = update_alternatives(theta, expr, gradient.expr, rate, gradient.alternatives, g) + self._optimizer_alternatives(theta, expr, gradient.expr, g, hyper)
        alts += self._group_alternatives(theta, expr, gradient.expr, hyper, g)
        form = format_expr(written, last=[g]) + f", with {g.name} = {gradient.form}"
        return Truth(value, expr, form, gradient.paths, tuple(alts), rate)

    def _rate(self, theta: sympy.Symbol, written: sympy.Expr, g: sympy.Symbol, hyper: dict[str, float]) -> Rate | None:
        """The step's factor where the first step ``written`` is ``theta - rate * g``, else None."""
        slope = sympy.diff(written - theta, g)
        if slope.free_symbols or sympy.expand(written - theta - slope * g) != 0:
            return None
        kind = self.network.spec.optimizer.kind
        return Rate(-slope, exact(hyper["lr"]), kind, format_expr(-sympy.diff(first_step_expr(kind, hyper), GRAD)))

    def _batch_update_alternatives(self, target: Target) -> list[tuple[Finding, float]]:
        """The update's own mistakes on a batch (``update_sign``, ``not_updated``, ``update_rate``,
        ``other_optimizer``, ``group_ignored``): as for one sample, with dE/dθ the batch's
        gradient (a number: the reduced gradient, penalty included), each with its value."""
        ref, theta = target.param, target.symbol
        assert ref is not None
        hyper = self.network.settings_of(ref)
        step = first_step_expr(self.network.spec.optimizer.kind, hyper).xreplace({sympy.Symbol(h, real=True): exact(v) for h, v in hyper.items()})
        g = real_symbol(naming.GRADIENT.format(name=theta.name))  # the batch's gradient, as a value
        written = step.xreplace({THETA: theta, GRAD: g})
        alts = update_alternatives(theta, written, g, self._rate(theta, written, g, hyper), (), g)
        alts += self._optimizer_alternatives(theta, written, g, g, hyper) + self._group_alternatives(theta, written, g, hyper, g)
        at = {theta: exact(self.d.values.scalar(ref)), g: exact(self.d.gradient(ref))}
        return [(a.finding, float(a.expr.xreplace(at))) for a in alts]

    # -- reading claimed formulas ------------------------------------------------------------

    def read(self, text: str, source: str, field: str, chain: bool = False, spellings: dict[str, tuple[str, str]] | None = None, used: set[tuple[sympy.Symbol, sympy.Symbol]] | None = None) -> sympy.Expr:
        """A claimed formula (or chain) as an expression in the spec's symbols.

        In a formula, ``dA/dB`` stands for its true value (``w5 - lr*dE/dw5``); in a chain, for
        a symbol named ``dA/dB`` whose meaning :meth:`factor_nodes` recovers.

        Raises:
            FormulaError: not in the grammar, an unknown name or function.
        """
        tree = parse_formula(text, source=source, field=field, partials=True)
        graph = self.graph

        def resolve_partial(of: str, wrt: str, column: int) -> sympy.Expr:
            a, b = graph.symbol_named(of), graph.symbol_named(wrt)
            for written, symbol in ((of, a), (wrt, b)):
                if symbol is None:
                    raise FormulaError(source, field, f"in d{of}/d{wrt}: {unknown(graph, written)}", text, column)
            assert a is not None and b is not None
            if used is not None:
                used.add((a, b))
            if chain:
                symbol = sympy.Symbol(f"d{a.name}/d{b.name}")
                if spellings is not None:
                    spellings.setdefault(symbol.name, (of, wrt))
                return symbol
            return self.partial_value(a, b)

        def resolve(name: str) -> sympy.Expr | None:
            if chain:
                raise FormulaError(source, field, f"a chain is written in factors dA/dB (found {name!r}); a formula goes under formula:", text, None)
            found = resolve_name(graph, name, self.settings)
            if found is not None and found == self.network.loss_symbol:
                # E has no value of its own to evaluate, and a formula in terms of E is no closed form
                raise FormulaError(source, field, f"{name!r} is the loss itself: write the formula in the inputs, targets, unit outputs and parameters (for E, its definition)", text, None)
            return found

        return to_sympy(tree, resolve, text=text, known=known(graph), source=source, field=field, partial=resolve_partial)

    def partial_value(self, a: sympy.Symbol, b: sympy.Symbol) -> sympy.Expr:
        """The true dA/dB in the spec's symbols (0 where A does not depend on B): where B is in
        A's own definition, the local (partial) derivative, sympy.diff of that definition
        (``dnet_h1_t2/dw1`` of an rnn: x1_t2, not the path back through h1_t1 as well); else the
        sum over the paths from A to B."""
        if a == b:
            return sympy.Integer(1)
        above, below = self.graph.node_of(a), self.graph.node_of(b)
        if above == ("E",) and below[0] == "param":
            return self.chain_of(b.name).gradient
        if above == ("E",) and below[0] in ("out", "net") and below[1] > 0:
            return self.unit_gradient(below)
        if self.graph.count(above, below) == 0:
            return sympy.Integer(0)
        return sympy.Add(*[sympy.Mul(*[self.engine.local(p, q) for p, q in zip(path, path[1:])]) for path in self.graph.factor_paths(above, below)])

    def canon(self, expr: sympy.Expr) -> sympy.Expr:
        """Deltas written out where the network is small (delta_o1 as dE/dnet_o1), then weighted
        sums (net_o1 as w5*out_h1 + w6*out_h2 + b2); outputs stay symbols."""
        if self.d.small:
            deltas = {s: self.unit_gradient(self.graph.unit_nodes["net_" + s.name[len("delta_"):]]) for s in expr.free_symbols if s.name.startswith("delta_")}
            expr = expr.xreplace(deltas) if deltas else expr
        nets = {s: net_definition(self.network, *self.graph.unit_nodes[s.name][1:]) for s in expr.free_symbols if s.name.startswith("net_") and s.name in self.graph.unit_nodes}
        expr = expr.xreplace(nets) if nets else expr
        frozen = {s: v for s, v in self.frozen.items() if s in expr.free_symbols}
        return expr.xreplace(frozen) if frozen else expr

    @cached_property
    def frozen(self) -> dict[sympy.Symbol, sympy.Expr]:
        """The frozen parameters and their values: constants, which formulas may write as numbers."""
        found = {}
        for p in self.network.parameters():
            if self.d.frozen(p):
                symbol = real_symbol(p.name)
                found[symbol] = exact(self.evaluate(symbol, self.sample))
        return found

    def frozen_note(self, truth: Truth) -> str:
        used = [s for s in self.frozen if truth.expr is not None and s in truth.expr.free_symbols]
        if not used:
            return ""
        values = ", ".join(f"{s.name} = {format_expr(self.frozen[s])}" for s in used)
        return f"frozen parameters are constants: judged with {values}"

    # -- judging -----------------------------------------------------------------------------

    def verify(self, claims: ClaimsFile, tolerant: bool = False) -> tuple[Verdict, ...]:
        """Every part of every claim of a file, in the order of the file.

        Args:
            tolerant: a part that cannot be read (a formula outside the grammar) is a verdict of
                its own, mistake ``unreadable``, and the rest of the file is still judged (a class).

        Raises:
            ChainruleError: a part that cannot be read, unless ``tolerant``.
        """
        verdicts: list[Verdict] = []
        # the values judged right so far, per sample (None: the batch): a hand calculation carries them on
        held: dict[int | None, list[tuple[Claim, float]]] = {}
        self._follow({c.step for c in claims.claims if c.step is not None})
        for claim in claims.claims:
            if claim.sample is not None and self.d.batch:
                judged = self.of_sample(claim.sample)._judge(claim, claims.source, held.setdefault(claim.sample, []), tolerant)
                # "on sample k" in what the claim is about, as written and as labelled (text, CSV, JSON)
                verdicts += [replace(v, of=f"{v.of} on sample {claim.sample}", label=f"{v.label} on sample {claim.sample}") for v in judged]
            else:
                verdicts += self._judge(claim, claims.source, held.setdefault(None, []), tolerant)
        return tuple(verdicts)

    def _judge(self, claim: Claim, source: str, held: list[tuple[Claim, float]], tolerant: bool) -> list[Verdict]:
        """Every part of one claim; ``held`` gains its value where that is judged right."""
        verdicts: list[Verdict] = []
        own = None  # only the claim's own formula explains its value, never another claim's
        for part in claim.parts:
            try:
                if part is Part.CHAIN:
                    verdicts.append(self.judge_chain(claim, source))
                elif part is Part.FORMULA:
                    verdict, expr = self.judge_formula(claim, source)
                    own = (expr, verdict.correct)
                    verdicts.append(verdict)
                elif claim.step is not None:
                    verdicts.append(self.judge_step(claim))
                elif self.d.batch:
                    verdicts.append(self.judge_batch_value(claim))
                else:
                    verdicts.append(self.judge_value(claim, own, held))
                    if verdicts[-1].correct:
                        held.append((claim, float(claim.value.value)))  # type: ignore[union-attr]
            except ChainruleError as error:
                if not tolerant:
                    raise
                written = {Part.CHAIN: claim.chain, Part.FORMULA: claim.formula}.get(part) or ""
                verdicts.append(Verdict(claim.index, claim.of, claim.target.label, part, False, "", written, (Finding("unreadable", f"not read: {error}"),)))
        return verdicts

    # -- a batch of several samples -----------------------------------------------------------

    def of_sample(self, k: int) -> Verifier:
        """The verifier of sample ``k`` (from 1) of the batch alone: its units, its loss E_k, its
        gradients dE_k/dθ, its chains and formulas (made once, on demand)."""
        if k not in self._samples:
            self._samples[k] = Verifier(self.d.at_sample(k - 1), self, k - 1)
        return self._samples[k]

    def batch_value(self, target: Target) -> float:
        """The batch's value of ``target``: E reduced over the samples, the reduced gradient
        (the layer form's), the update it gives."""
        ref = target.param
        if target.kind is TargetKind.LOSS:
            return self.d.loss
        assert ref is not None and target.kind in (TargetKind.GRADIENT, TargetKind.UPDATE)
        return self.d.gradient(ref) if target.kind is TargetKind.GRADIENT else self.d.updated(ref)

    def judge_batch_value(self, claim: Claim) -> Verdict:
        """A value about the whole batch (E, dE/dθ, θ+), with the batch's mistakes
        (:meth:`batch_alternatives`) and each sample's typical mistakes reduced as the loss is."""
        assert claim.value is not None
        truth = self.batch_value(claim.target)
        correct, note = judge_number(claim.value, truth, claim.tolerance)
        findings: tuple[Finding, ...] = ()
        if not correct:
            findings = tuple(value_findings(claim.value, truth, self.batch_alternatives(claim.target), None))
        return Verdict(claim.index, claim.of, claim.target.label, Part.VALUE, correct, truth, float(claim.value.value), findings, note, claim.value.text, claim.tolerance)

    def batch_alternatives(self, target: Target) -> list[tuple[Finding, float]]:
        """The batch's typical mistakes in E, dE/dθ or θ+, each with its value: the sum where
        the spec says mean (or the reverse: ``sum_for_mean``, ``mean_for_sum``), one sample's
        value given for the batch's (``one_sample``); for E and gradients then each mistake of a
        sample's catalogue, reduced over the samples as the loss is."""
        n, reduction = self.d.values.samples, self.network.spec.reduction
        rows = [self.of_sample(k) for k in range(1, n + 1)]
        label = target.label
        if target.kind is TargetKind.UPDATE:
            ref = target.param
            assert ref is not None
            if self.d.frozen(ref):
                return []
            gradient = Target(TargetKind.GRADIENT, target.symbol, ref)
            per = [r.batch_value(gradient) for r in rows]
            rule = compile_rule(self.network.spec.optimizer.kind, self.network.settings_of(ref))
            theta = np.array([self.d.values.scalar(ref)])

            def value(g: float) -> float:
                return float(rule.first_step(theta, np.array([g]))[0])
            what = f"the update from the {_other(reduction)} of the samples' gradients"
        else:
            per = [r.batch_value(target) for r in rows]

            def value(g: float) -> float:
                return g
            what = f"the {_other(reduction)} of the {n} samples' {'losses' if target.kind is TargetKind.LOSS else 'gradients'}"
        pen = self._penalty_value(target)  # the L2 penalty (0 without one): once, after the reduction
        other = float(np.sum(per) if reduction == "mean" else np.mean(per)) + pen
        spec_says = f"reduction: {reduction} makes {label} {'their mean (the sum divided by ' + str(n) + ')' if reduction == 'mean' else 'their sum (' + str(n) + ' times the mean)'}"
        if target.kind is TargetKind.UPDATE:
            spec_says = f"the update takes dE/d{target.symbol.name}, which reduction: {reduction} makes the {reduction} of the samples' gradients"
        alternatives = [(Finding("sum_for_mean" if reduction == "mean" else "mean_for_sum", f"this is {what}; {spec_says}"), value(other))]
        whole = f"the step from the batch's gradient, the {reduction} over its {n} samples'" if target.kind is TargetKind.UPDATE else f"the batch's, the {reduction} over its {n} samples"
        with_penalty = {TargetKind.LOSS: " plus the L2 penalty", TargetKind.GRADIENT: " plus the penalty's l2*w", TargetKind.UPDATE: " and the penalty's l2*w"}[target.kind]
        for k, v in enumerate(per, start=1):
            one = {TargetKind.LOSS: f"sample {k}'s loss alone (E_{k})", TargetKind.GRADIENT: f"sample {k}'s gradient alone (dE_{k}/d{target.symbol.name})",
                   TargetKind.UPDATE: f"the update from sample {k}'s gradient alone"}[target.kind]
            alternatives.append((Finding("one_sample", f"this is {one}; {label} is {whole}"), value(v)))
            if pen:  # a sample's own value as derive prints it, and with the penalty added to it
                alternatives.append((Finding("one_sample", f"this is {one}{with_penalty}; {label} is {whole}{', plus the penalty once' if target.kind is not TargetKind.UPDATE else ''}"), value(v + pen)))
        if target.kind is TargetKind.UPDATE:
            alternatives += self._batch_update_alternatives(target)
        else:
            catalogue = [r.catalogue_values(target) for r in rows]
            for i, (finding, _) in enumerate(catalogue[0]):
                alternatives.append((Finding(finding.mistake, f"{finding.words}, in each sample's term", finding.formula), self.d.reduce([c[i][1] for c in catalogue]) + pen))
        if pen:
            reduced = self.d.reduce(per)
            of = "E" if target.kind is TargetKind.LOSS else naming.GRADIENT.format(name=target.symbol.name)
            used = "" if target.kind is not TargetKind.UPDATE else " (in the gradient the update used)"
            alternatives += [(Finding("penalty_left_out", f"the L2 penalty is left out of {of}{used}: it is added once to the {reduction} of the samples'"), value(reduced)),
                             (Finding("penalty_doubled", f"the L2 penalty counted twice in {of}{used}: E holds l2/2 * (sum of the squared weights), its derivative l2*w"),
                              value(reduced + 2 * pen))]
        return alternatives

    def _penalty_value(self, target: Target) -> float:
        """The L2 penalty's part of the batch's ``target``: its value in E, its l2*w in a weight's
        gradient (and in the gradient an update uses); 0.0 for a bias or without a penalty."""
        if not self.network.spec.loss.l2:
            return 0.0
        if target.kind is TargetKind.LOSS:
            return self.d.sample.penalty
        assert target.param is not None
        return self.d.penalty_value(self.chain_of(target.param.name))

    def judge_chain(self, claim: Claim, source: str) -> Verdict:
        """The chain part of a claim (judged once per target and text, shared across files)."""
        assert claim.chain is not None
        key = (claim.target.label, claim.chain)
        if key not in self._chains:
            self._chains[key] = judge_chain(self, claim, source)
        return replace(self._chains[key], claim=claim.index, of=claim.of)

    def at_sample(self, expr: sympy.Expr) -> float:
        if expr not in self._sample_values:
            self._sample_values[expr] = self.evaluate(expr, self.sample)
        return self._sample_values[expr]

    def alternative_values(self, target: Target) -> list[tuple[Finding, float]]:
        """Each typical mistake of ``target`` with the value it gives on the sample."""
        return self._sample_alternatives(target) + self.catalogue_values(target)

    def catalogue_values(self, target: Target) -> list[tuple[Finding, float]]:
        """Each mistake of the catalogue (:attr:`Truth.alternatives`) with its value on the sample."""
        if target.label not in self._alternative_values:
            truth = self.truth(target)
            self._alternative_values[target.label] = [(a.finding, self.at_sample(self.canon(a.expr))) for a in truth.alternatives]
        return self._alternative_values[target.label]

    def _sample_alternatives(self, target: Target) -> list[tuple[Finding, float]]:
        """For a verifier of one sample of a batch (``sample: k``): the batch's value given for
        the sample's (``batch_for_sample``), another sample's value (``other_sample``)."""
        batch = self.batch
        if batch is None:
            return []
        k, n = self.row + 1, batch.d.values.samples
        found = []
        if target.kind in (TargetKind.LOSS, TargetKind.GRADIENT, TargetKind.UPDATE):
            words = {TargetKind.LOSS: f"this is the batch's E, the {batch.network.spec.reduction} over its {n} samples; sample {k}'s is its own loss E_{k}",
                     TargetKind.GRADIENT: f"this is the batch's gradient, the {batch.network.spec.reduction} over its {n} samples; sample {k}'s is dE_{k}/d{target.symbol.name}, its own term",
                     TargetKind.UPDATE: f"this is the batch's update; sample {k}'s is the step from its own gradient dE_{k}/d{target.symbol.name}"}[target.kind]
            found.append((Finding("batch_for_sample", words), batch.batch_value(target)))
        if target.kind in (TargetKind.LOSS, TargetKind.GRADIENT, TargetKind.UPDATE, TargetKind.UNIT, TargetKind.UNIT_GRADIENT):
            for j in range(1, n + 1):
                if j != k:
                    other = batch.of_sample(j)
                    value = other.batch_value(target) if target.kind is not TargetKind.UNIT and target.kind is not TargetKind.UNIT_GRADIENT else other.truth(target).value
                    found.append((Finding("other_sample", f"this is {target.label} on sample {j}, not on sample {k}"), value))
        return found

    # -- claims after several steps -----------------------------------------------------------

    def _follow(self, steps: set[int]) -> None:
        """The right states after ``steps`` (and the steps either side, a claim off by one), and
        the states of the early-update mistake (:data:`~chainrule.derive.trajectory.EARLY_UPDATE`)."""
        wanted = {m for n in steps for m in (n - 1, n, n + 1) if m >= 0} - set(self._states)
        if wanted:
            self._states.update(follow(self.d, wanted))
            self._early.update(follow(self.d, steps - set(self._early), EARLY_UPDATE))

    def judge_step(self, claim: Claim) -> Verdict:
        """A value after ``claim.step`` optimizer steps on the sample, with the mistakes of a hand
        calculation of several steps: the weights updated before the deltas below were sent back
        through them, or the value of one step more or fewer."""
        assert claim.value is not None and claim.step is not None
        n = claim.step
        self._follow({n})
        truth = self._value_at(claim.target, self._states[n])
        correct, note = judge_number(claim.value, truth, claim.tolerance)
        findings: tuple[Finding, ...] = ()
        if not correct:
            words = ("this is what one gets updating each layer's weights as soon as their gradient is known, so that the deltas "
                     "below are sent back through the updated weights; a step takes every gradient at the weights of its forward pass")
            alternatives = [(Finding(EARLY_UPDATE, words), self._value_at(claim.target, self._early[n]))]
            why = {n - 1: ": the loss of the last step's forward pass, before that step's update, as a training loop prints it",
                   n + 1: ": one step more"}
            alternatives += [(Finding("other_step", f"this is the value after {count(m, 'step')}, not {n:,}{why[m] if claim.target.kind is TargetKind.LOSS else ''}"),
                              self._value_at(claim.target, self._states[m])) for m in (n - 1, n + 1) if m in self._states]
            findings = tuple(value_findings(claim.value, truth, alternatives, None))
        label = f"{claim.target.label} after {count(n, 'step')}"
        return Verdict(claim.index, claim.of, label, Part.VALUE, correct, truth, float(claim.value.value), findings, note, claim.value.text, claim.tolerance)

    def _value_at(self, target: Target, state: State) -> float:
        """``target``'s value at a state: E, a unit on the sample, a parameter or its gradient."""
        if target.kind is TargetKind.LOSS:
            return float(state.run.loss)
        ref = target.param
        if target.kind is TargetKind.PARAMETER and ref is not None:
            return weight_entry(state.W[ref.layer - 1], ref) if ref.is_weight else float(state.b[ref.layer - 1][ref.row])  # type: ignore[index]
        if target.kind is TargetKind.GRADIENT and ref is not None:
            return weight_entry(state.run.dW[ref.layer - 1], ref) if ref.is_weight else float(state.run.db[ref.layer - 1][ref.row])  # type: ignore[index]
        node = self.graph.unit_nodes[target.symbol.name]
        kind, l, r = node
        if l == 0:
            return float(self.d.values.X[0, r])
        return float((state.run.nets if kind == "net" else state.run.outs[1:])[l - 1][0, r])

    def judge_value(self, claim: Claim, formula: tuple[sympy.Expr, bool] | None, held: Sequence[tuple[Claim, float]] = ()) -> Verdict:
        assert claim.value is not None
        truth = self.truth(claim.target)
        correct, note = judge_number(claim.value, truth.value, claim.tolerance)
        if not correct and claim.tolerance is None:
            note = self.rounded_note(claim, truth, held)
            correct = bool(note)
        findings: tuple[Finding, ...] = ()
        if not correct:
            alternatives = self.alternative_values(claim.target)
            own = None
            if formula is not None:
                own = (formula[1], self.at_sample(formula[0]))
            findings = tuple(value_findings(claim.value, truth.value, alternatives, own))
        return Verdict(claim.index, claim.of, claim.target.label, Part.VALUE, correct, truth.value, float(claim.value.value), findings, note, claim.value.text, claim.tolerance)

    def rounded_note(self, claim: Claim, truth: Truth, held: Sequence[tuple[Claim, float]]) -> str:
        """Why a value that is not the true one to its digits is right all the same, or ``""``: it
        is what the claimant's own earlier right values give (``dE/db2`` rounded, put in for
        ``dE/dnet_o2`` in ``dE/dw2``), or it is within the rounding of the factors it multiplies."""
        assert claim.value is not None
        exact_here = f"the true value to the digits written is {at_precision(truth.value, claim.value)}"
        for used, value in self._carried_values(truth, held):
            if matches(claim.value, value):
                return f"right with {used} put in (that gives {value:.12g}); {exact_here}"
        # the digits the claimant shows for the values before this one (none shown: none assumed);
        # a value that is a typical mistake's is that mistake, not a rounding
        digits = min((significant(c.value) for c, _ in held if c.value is not None), default=0)
        mistaken = any(matches(claim.value, value) for _, value in self.alternative_values(claim.target))
        if digits and not mistaken and claim.target.kind is TargetKind.GRADIENT and len(truth.paths) <= MAX_ROUNDED_PATHS:
            paths = [[self.at_sample(f.human) for f in p.factors] for p in truth.paths]
            if within_rounding(claim.value, truth.value, paths, digits):
                return f"right to within the rounding of the factors it multiplies to {digits} significant digits, as the values before it are written; {exact_here}"
        return ""

    def _carried_values(self, truth: Truth, held: Sequence[tuple[Claim, float]]) -> list[tuple[str, float]]:
        """The target's value with earlier right claims put in for what they name, each alone and
        all together: a unit's value for its symbol, a gradient's for its form where it is a part."""
        if truth.expr is None:
            return []
        parts: list[tuple[str, sympy.Expr, float]] = []
        for earlier, value in held[-MAX_CARRIED:]:
            kind = earlier.target.kind
            if kind is TargetKind.UNIT:
                part = earlier.target.symbol
            elif kind in (TargetKind.GRADIENT, TargetKind.UNIT_GRADIENT):
                part = self.truth(earlier.target).expr
            else:
                continue
            if part is not None and not part.is_Number and part != truth.expr and truth.expr.has(part):
                parts.append((f"claim {earlier.index}'s {earlier.target.label} = {earlier.value.text}", part, value))  # type: ignore[union-attr]
        chosen = [[p] for p in parts] + ([parts] if len(parts) > 1 else [])
        return [(" and ".join(w for w, _, _ in c), self.evaluate(truth.expr.xreplace({e: sympy.Float(v, 17) for _, e, v in c}), self.sample)) for c in chosen]

    def judge_formula(self, claim: Claim, source: str) -> tuple[Verdict, sympy.Expr]:
        assert claim.formula is not None
        truth = self.truth(claim.target)
        read_key = (claim.target.label, claim.formula)
        if read_key not in self._read:
            used: set[tuple[sympy.Symbol, sympy.Symbol]] = set()
            raw = self.read(claim.formula, source, f"{claim.field}.formula", used=used)
            self._read[read_key] = self.canon(raw)
            if self._restates(claim.target, raw, used):
                self._restating.add(read_key)
        claimed = self._read[read_key]
        key = (claim.target.label, claimed)
        if read_key in self._restating:
            correct, findings, note = False, (Finding("restates", f"this restates what is asked ({claim.target.label}); write it in the inputs, targets, unit outputs and parameters", truth.form),), ""
        else:
            if key not in self._formulas:
                self._formulas[key] = self._judge_expr(claim.target, claimed, truth)
            correct, findings, note = self._formulas[key]
        if correct and not note:
            note = self.frozen_note(truth)
        verdict = Verdict(claim.index, claim.of, claim.target.label, Part.FORMULA, correct, truth.form, claim.formula, findings, note)
        return verdict, claimed

    def _restates(self, target: Target, raw: sympy.Expr, used: set[tuple[sympy.Symbol, sympy.Symbol]]) -> bool:
        """Whether a formula uses what it is a formula of: dE/dw5 in one for dE/dw5, delta_o1 in one
        for dE/dnet_o1, h1 in one for out_h1 (inputs and targets are their own formulas)."""
        if target.kind in (TargetKind.GRADIENT, TargetKind.UNIT_GRADIENT):
            delta = [s for s in raw.free_symbols if s.name.startswith("delta_") and naming.NET.format(unit=s.name[len("delta_"):]) == target.symbol.name]
            return (self.network.loss_symbol, target.symbol) in used or bool(delta)
        if target.kind is TargetKind.UNIT:
            node = self.graph.unit_nodes.get(target.symbol.name)
            return node is not None and node[1] > 0 and target.symbol in raw.free_symbols
        return False

    def _judge_expr(self, target: Target, claimed: sympy.Expr, truth: Truth) -> tuple[bool, tuple[Finding, ...], str]:
        if truth.expr is None:
            return False, (Finding("unknown", "no true form to compare with"),), ""
        true = self.canon(truth.expr)
        agree = self.agree_at_points(claimed, true)
        if same(claimed, true):
            # the numeric second opinion, kept even when sympy has shown them equal
            return True, (), "" if agree else "equal symbolically, though not at every random point of the network (a kink, or a value outside a function's domain?)"
        if agree:
            return True, (), f"equal to {truth.form} at {RANDOM_POINTS} random points of the network (not shown equal symbolically)"
        return False, tuple(self.diagnose(target, claimed, true, truth)), ""

    def agree_at_points(self, a: sympy.Expr, b: sympy.Expr) -> bool:
        for env in self.points:
            x, y = self.evaluate(a, env), self.evaluate(b, env)
            if not (np.isfinite(x) and np.isfinite(y)) or abs(x - y) > RELATIVE * max(abs(x), abs(y), 1e-12):
                return False
        return True

    def diagnose(self, target: Target, claimed: sympy.Expr, true: sympy.Expr, truth: Truth) -> list[Finding]:
        """What differs between a claimed formula and the true one (see :mod:`.diagnosis`).

        sympy's algebra runs only on expressions whose cost it bounds (:func:`.diagnosis.expandable`)
        and only where the values on the sample already agree; other formulas are judged by value."""
        without = self._targets_without_loss(claimed)
        if without:
            return [without]
        if target.kind is TargetKind.UPDATE and truth.rate is not None:
            found = self._update_findings(target, claimed, truth, constants_only=True)
            if found:
                return found
        if not expandable(claimed):
            return self._findings_by_value(claimed, true, truth, " (judged by its values: the formula is too costly to compare symbolically)")
        left_out = self._positions_left_out(target, claimed)  # some of a shared weight's terms: cheap, and says which are missing
        if left_out:
            return left_out
        symbolic = [a for a in truth.alternatives if not any(s.name.endswith("+") for s in a.expr.free_symbols)]
        for alt in symbolic:
            if self.same_here(claimed, self.canon(alt.expr)):
                return [alt.finding]
        factors: Sequence[Factor] = truth.paths[0].factors if len(truth.paths) == 1 else ()
        if target.kind is TargetKind.UPDATE and truth.rate is not None:
            found = self._update_findings(target, claimed, truth)
        else:
            found = ratio_findings(claimed, true, factors, truth.rate) or path_findings(claimed, truth.paths, self.close_here)
        return found or self._findings_by_value(claimed, true, truth)

    def _targets_without_loss(self, claimed: sympy.Expr) -> Finding | None:
        """``target_without_loss`` where a formula reads a target of a step whose targets are null
        (``t1_t2`` where the sample's t at step 2 is null): E has no term at that step; else None."""
        net = self.network
        if not net.spec.steps:
            return None
        outputs = net.sizes[net.depth]
        used = sorted((row for row in range(net.rows(net.depth)) if net.target(row) in claimed.free_symbols and row // outputs not in net.loss_steps))
        if not used:
            return None
        names = [net.target(row).name for row in used]
        steps = sorted({row // outputs + 1 for row in used})
        at = f"step {steps[0]}" if len(steps) == 1 else "steps " + ", ".join(map(str, steps[:-1])) + f" and {steps[-1]}"
        read = f"{names[0]} is a target" if len(names) == 1 else ", ".join(names[:-1]) + f" and {names[-1]} are targets"
        value = f"{names[0]} has no value and dE/d{net.out(net.depth, used[0]).name} is 0" if len(names) == 1 else "they have no value and dE/dout is 0 there"
        return Finding("target_without_loss", f"{read} at {at}, where the sample has none (null): E has no term there, so {value}", ", ".join(names))

    def _positions_left_out(self, target: Target, claimed: sympy.Expr) -> list[Finding]:
        """A shared weight's formula that has some of its positions' terms, each once, and not the
        others: ``position_left_out`` naming the positions left out; else none."""
        ref = target.param
        if target.kind is not TargetKind.GRADIENT or ref is None or self.network.spec.layers[ref.layer - 1].window is None:
            return []
        terms = position_terms(self.chain_of(ref.name).paths)
        if len(terms) < 2:
            return []
        canonical = {net: self.canon(term) for net, (term, _) in terms.items()}
        unmatched = dict(canonical)
        for written in sympy.Add.make_args(claimed):
            net = next((n for n, t in unmatched.items() if written == t or self.same_here(written, t)), None)
            if net is None:
                return []  # a term that is no position's: another mistake
            del unmatched[net]
        if not unmatched or len(unmatched) == len(terms):
            return []
        zero = all(self.at_sample(t) == 0 for t in unmatched.values())
        return [left_out_finding(self.network, ref, list(unmatched), terms, zero)]

    def close_here(self, a: sympy.Expr, b: sympy.Expr) -> bool:
        """Whether ``a`` and ``b`` may be equal: their values on the sample agree (or are not
        finite). The cheap test that spares sympy the comparisons that cannot succeed."""
        x, y = self.at_sample(a), self.at_sample(b)
        return not (np.isfinite(x) and np.isfinite(y)) or abs(x - y) <= 1e-6 * max(abs(x), abs(y), 1e-12)

    def same_here(self, a: sympy.Expr, b: sympy.Expr) -> bool:
        return self.close_here(a, b) and same(a, b)

    def _findings_by_value(self, claimed: sympy.Expr, true: sympy.Expr, truth: Truth, how: str = "") -> list[Finding]:
        """A wrong formula that matches no typical mistake in form: named by its value."""
        value, right = self.evaluate(claimed, self.sample), self.evaluate(true, self.sample)
        if np.isfinite(right) and abs(value - right) <= 1e-12 * max(abs(right), 1e-300):
            # equal here only: every mistake that is 0 on this sample would match it by value
            difference = true - claimed  # expanded only where it is small: a deep gradient's expansion is slow
            difference = sympy.expand(difference) if tree_size(difference) <= 4 * MAX_SHOWN_DIFFERENCE and expandable(difference) else difference
            shown_difference = f" (the true form minus yours, {format_expr(difference)}, is 0 here)" if tree_size(difference) <= MAX_SHOWN_DIFFERENCE else ""
            return [Finding("different", f"not equal to the true form, though on this sample both give {right:.9g}{shown_difference}{how}", truth.form)]
        for alt in truth.alternatives:
            other = self.evaluate(self.canon(alt.expr), self.sample)
            if np.isfinite(other) and abs(value - other) <= 1e-4 * max(abs(other), 1e-12):
                return [Finding(alt.finding.mistake, alt.finding.words + " (by its value on the sample)", alt.finding.formula)]
        words = f"not equal to the true form; on the sample yours gives {value:.9g} where the true value is {right:.9g}{how}"
        return [Finding("different", words, truth.form)]

    def _update_findings(self, target: Target, claimed: sympy.Expr, truth: Truth, constants_only: bool = False) -> list[Finding]:
        theta, rate = target.symbol, truth.rate
        assert rate is not None and truth.expr is not None
        step_true, step_claimed = truth.expr - theta, claimed - theta
        if step_claimed == 0:
            return [Finding("not_updated", "the parameter is left as it was (no step)", theta.name)]
        if not expandable(step_claimed / step_true):
            return []
        ratio = sympy.cancel(step_claimed / step_true)
        if ratio.is_Number:
            if ratio == -1:
                return [Finding("update_sign", "the step is added instead of subtracted (the update goes uphill)", format_expr(theta - step_true))]
            if ratio == 1 / rate.value:
                return [Finding("update_rate", rate.left_out(), format_expr(theta + step_true / rate.value))]
            return [Finding("update_rate", rate.wrong(ratio * rate.value), format_expr(rate.value))]
        if constants_only:
            return []
        gradient = -step_claimed / rate.value
        true_gradient = -step_true / rate.value
        factors = truth.paths[0].factors if len(truth.paths) == 1 else ()
        found = ratio_findings(gradient, true_gradient, factors) or path_findings(gradient, truth.paths)
        return [Finding(f.mistake, f"in its gradient: {f.words}", f.formula) for f in found]


def _other(reduction: str) -> str:
    """The reduction the spec does not take: ``sum`` for ``mean`` and the reverse."""
    return "sum" if reduction == "mean" else "mean"
