"""Judging a claimed chain: its factors, how they link, and which paths it covers.

A chain such as ``dE/dout_o1 * dout_o1/dnet_o1 * dnet_o1/dw5`` (or a sum of such products, or a
factored form like ``(dE/dout_o1*dout_o1/dnet_o1*dnet_o1/dout_h1 + ...) * dout_h1/dnet_h1 *
dnet_h1/dw1``) is multiplied out into products. In each product every factor ``dA/dB`` must
exist (A depends on B: ``dh1/dw21`` does not, h1 being computed before w21 is used), and the
factors must link E to the parameter, each one starting where the one before ended (in any
written order). A factor that is no local derivative (``dE/dnet_o1``) stands for every path it
spans; one whose B is in A's own definition is the local derivative alone, also where A reaches B
along other paths too (an rnn's ``dnet_h1_t2/dw1``: not the path back through h1_t1). The chain is complete when the products together cover each path from E to the
parameter exactly once.
"""

from __future__ import annotations

from collections import Counter
from typing import Protocol

import sympy

from chainrule.derive.hand.claims import Claim, Part
from chainrule.derive.counts import count
from chainrule.derive.chain import ChainRule, Path
from chainrule.derive.hand.diagnosis import Finding, Verdict, _group
from chainrule.derive.formula import format_expr
from chainrule.derive.errors import ChainruleError
from chainrule.derive.graph import MAX_PATHS, LOSS, Graph, Node, TooManyPaths
from chainrule.derive.hand.paths import group_phrase
from chainrule.derive.hand.shared import left_out_finding, position_terms, shortened_sum, steps_left_out_finding
from chainrule.derive.network import Network


class Verifier(Protocol):
    """What judging a chain reads of :class:`chainrule.derive.hand.verify.Verifier` (named here,
    not imported: the verifier calls this module)."""

    graph: Graph
    network: Network

    def chain_of(self, name: str) -> ChainRule: ...

    def canon(self, expr: sympy.Expr) -> sympy.Expr: ...

    def at_sample(self, expr: sympy.Expr) -> float: ...

    def read(self, text: str, source: str, field: str, chain: bool = False,
             spellings: dict[str, tuple[str, str]] | None = None) -> sympy.Expr: ...

MAX_TERMS = 256


def judge_chain(verifier: Verifier, claim: Claim, source: str) -> Verdict:
    """The verdict on the chain part of ``claim``."""
    assert claim.chain is not None
    graph = verifier.graph
    field = f"{claim.field}.chain"
    spellings: dict[str, tuple[str, str]] = {}
    expr = sympy.expand(verifier.read(claim.chain, source, field, chain=True, spellings=spellings))
    top, bottom = LOSS, graph.node_of(claim.target.symbol)
    try:
        true_paths = graph.paths(top, bottom)
    except TooManyPaths as error:
        raise ChainruleError(source, field, f"{claim.target.label} has {error} from E; chains are judged up to {MAX_PATHS} paths (claim its formula or value instead)") from None
    derived = _derived_paths(verifier, claim, true_paths)
    expected = shortened_sum([_path_text(p) for p, _ in derived]) if derived else " + ".join(graph.path_text(p) for p in true_paths)
    written_by_derive = _derive_factors(verifier, claim)
    findings: list[Finding] = []
    notes: list[str] = []
    covered: Counter = Counter()
    terms = sympy.Add.make_args(expr)
    if len(terms) > MAX_TERMS:
        findings.append(Finding("chain_form", f"{len(terms)} products once multiplied out; a chain has one per path ({len(true_paths)})"))
        terms = ()
    for term in terms:
        coefficient, factors = _factors(term)
        if factors and factors[0][0] == "?":
            findings.append(Finding("chain_form", f"{factors[0][1]} is not a product of factors dA/dB", factors[0][1]))
            continue
        if coefficient != 1 and not (coefficient.is_Integer and coefficient > 0):  # 2*... is a product written twice
            findings.append(Finding("factor", f"a coefficient {format_expr(coefficient)} that the chain rule does not give", format_expr(coefficient)))
        written = [spellings.get(f"d{a}/d{b}", (a, b)) for a, b in factors]
        nodes = [(graph.node_named(a), graph.node_named(b), f"d{w[0]}/d{w[1]}") for (a, b), w in zip(factors, written)]
        restated = next((text for a, b, text in nodes if (a, b) == (top, bottom)), None)
        if restated is not None:
            findings.append(Finding("restates", f"{restated} restates what is asked; write it as the chain of factors, one dA/dB per step from E to {graph.name(bottom)}", expected))
            continue
        bad = [_factor_problem(verifier, a, b, text, w) for (a, b, text), w in zip(nodes, written)]
        bad = [b for b in bad if b is not None]
        if bad:
            findings.extend(bad)
            continue
        linked, problem = _link(verifier, nodes, top, bottom)
        if problem is not None:
            findings.append(problem)
            continue
        for a, b, text in linked:
            if b not in graph.children(a) and (graph.name(a), graph.name(b)) not in written_by_derive:
                notes.append(f"{text} is not a local derivative: it stands for {count(graph.count(a, b), 'path')} ({' + '.join(graph.path_text(p) for p in graph.paths(a, b))})")
        for path in _expand(verifier, linked):
            covered[path] += int(coefficient) if coefficient.is_Integer and coefficient > 0 else 1
    if not findings:
        findings.extend(_positions_left_out(verifier, claim, covered, true_paths) or _coverage(verifier, covered, true_paths, derived))
    note = "; ".join(dict.fromkeys(notes))
    return Verdict(claim.index, claim.of, claim.target.label, Part.CHAIN, not findings, expected, claim.chain, tuple(findings), note)


def _factors(term: sympy.Expr) -> tuple[sympy.Expr, list[tuple[str, str]]]:
    coefficient, rest = term.as_coeff_Mul()
    factors = []
    for factor in sympy.Mul.make_args(rest):
        base, power = factor.as_base_exp()
        if not (isinstance(base, sympy.Symbol) and power.is_Integer and power > 0):
            return coefficient, [("?", format_expr(factor))]
        of, wrt = base.name[1:].split("/d", 1)
        factors.extend([(of, wrt)] * int(power))
    return coefficient, factors


def _factor_problem(verifier: Verifier, above: Node, below: Node, text: str, written: tuple[str, str]) -> Finding | None:
    graph = verifier.graph
    if above == below:
        return Finding("bad_factor", f"{text} is 1: a symbol's derivative with respect to itself is no factor of a chain", text)
    if graph.count(above, below):
        return None
    a, b = written
    if graph.count(below, above):
        return Finding("inverted_factor", f"{text} is upside down: {b} is computed from {a}, so the factor is d{b}/d{a}", f"d{b}/d{a}")
    return Finding("bad_factor", f"{text}: {a} does not depend on {b}, so this is no factor of any path", text)


def _link(verifier: Verifier, factors: list[tuple[Node, Node, str]], top: Node, bottom: Node) -> tuple[list[tuple[Node, Node, str]], Finding | None]:
    """The factors in order from ``top`` down to ``bottom``, or what breaks the chain."""
    graph = verifier.graph
    left = list(factors)
    ordered: list[tuple[Node, Node, str]] = []
    current = top
    while left:
        following = next((f for f in left if f[0] == current), None)
        if following is None:
            reachable = [f for f in left if graph.count(current, f[0])]
            if current == bottom or not reachable:
                extra = ", ".join(f[2] for f in left)
                return ordered, Finding("extra_factor", f"the factor(s) {extra} do not continue the chain from {graph.name(current)}", extra)
            nxt = max(reachable, key=lambda f: graph.rank(f[0]))
            gap = graph.path_text(graph.paths(current, nxt[0])[0])
            after = f"after {ordered[-1][2]}" if ordered else f"at {graph.name(current)}"
            return ordered, Finding("missing_link", f"the chain breaks {after}: {gap} is missing before {nxt[2]}", gap)
        left.remove(following)
        ordered.append(following)
        current = following[1]
    if current != bottom:
        if ordered and not graph.count(current, bottom) and graph.count(ordered[-1][0], bottom):
            # e.g. dnet_h1/dx1 last for dE/dw11: x1 is an input, nothing below it leads to w11
            last = f"d{graph.name(ordered[-1][0])}/d{graph.name(bottom)}"
            return ordered, Finding("missing_link", f"the chain ends at {graph.name(current)}, which does not depend on {graph.name(bottom)}: the last factor should be {last}, not {ordered[-1][2]}", last)
        rest = graph.paths(current, bottom) if graph.count(current, bottom) else []
        gap = graph.path_text(rest[0]) if rest else f"d{graph.name(current)}/d{graph.name(bottom)}"
        start = ordered[-1][2] if ordered else graph.name(top)
        return ordered, Finding("missing_link", f"the chain stops at {start} and does not reach {graph.name(bottom)}: missing {gap}", gap)
    return ordered, None


def _expand(verifier: Verifier, linked: list[tuple[Node, Node, str]]) -> list[tuple[Node, ...]]:
    """The full paths a linked product stands for (compound factors spanning several)."""
    paths: list[tuple[Node, ...]] = [()]
    for a, b, _ in linked:
        pieces = verifier.graph.factor_paths(a, b)
        paths = [p + (piece if not p else piece[1:]) for p in paths for piece in pieces]
    return paths


def _derive_factors(verifier: Verifier, claim: Claim) -> set[tuple[str, str]]:
    """The factors (A, B) of dA/dB that derive writes in the claimed parameter's chain, which
    need no note in a claimed chain: a kernel weight's start at its layer's deltas, dE/dnet_c_u;
    and for a sequence network's weight, its layer's delta at each step, dE/dnet_h1_t2 (derive
    starts there past 16 paths, and a per-step chain stops there by design), and an rnn's deltas
    in any claim's chain (``dE/dnet_h1_t2 * dnet_h1_t2/dh1_t1``)."""
    ref, network, graph = claim.target.param, verifier.network, verifier.graph
    written = set() if ref is None else {(f.of.name, f.wrt.name) for p in verifier.chain_of(ref.name).paths for f in p.factors}
    if network.spec.steps:
        layers = {l for l in range(1, network.depth + 1) if network.spec.layers[l - 1].is_rnn} | ({ref.layer} if ref else set())
        written |= {(graph.name(LOSS), name) for name, node in graph.unit_nodes.items() if node[0] == "net" and node[1] in layers}
    return written


def _from_deltas(verifier: Verifier, claim: Claim) -> bool:
    """Whether derive writes the claimed parameter's chain from its own layer's deltas (a
    convolution's shared weight: a term dE/dnet_c_u * dnet_c_u/dk per position)."""
    ref = claim.target.param
    return ref is not None and verifier.network.spec.layers[ref.layer - 1].window is not None and verifier.chain_of(ref.name).cut_layer == ref.layer


def _positions_left_out(verifier: Verifier, claim: Claim, covered: Counter, true_paths: list[tuple[Node, ...]]) -> list[Finding]:
    """A convolution's shared weight's chain that leaves out whole positions (every path through
    net_c_u, from E or from the delta) and covers the others once: ``position_left_out`` naming
    the positions, as for a formula; a sequence network's weight's that leaves out whole steps
    (every path through net_h1_t2): ``step_left_out`` naming the steps; else none."""
    ref = claim.target.param
    sequence = bool(verifier.network.spec.steps)
    if ref is None or verifier.network.spec.layers[ref.layer - 1].window is None and not sequence:
        return []
    graph = verifier.graph
    by_net: dict[str, list[tuple[Node, ...]]] = {}
    for path in true_paths:
        by_net.setdefault(graph.name(path[-2]), []).append(path)
    if len(by_net) < 2 or any(covered[p] > 1 for p in true_paths):
        return []
    left_out = [net for net, paths in by_net.items() if all(covered[p] == 0 for p in paths)]
    partly = [net for net, paths in by_net.items() if any(covered[p] == 0 for p in paths) and net not in left_out]
    if not left_out or partly or len(left_out) == len(by_net):
        return []
    terms = position_terms(verifier.chain_of(ref.name).paths)
    if not set(left_out) <= {net.name for net in terms}:
        return []
    nets = [net for net in terms if net.name in left_out]  # in derive's order of the positions
    zero = all(verifier.at_sample(verifier.canon(terms[net][0])) == 0 for net in nets)
    chains = {net: (term, " + ".join(_path_text(p) for p in verifier.chain_of(ref.name).paths if p.factors[-1].of == net)) for net, (term, _) in terms.items()}
    return [(steps_left_out_finding if sequence else left_out_finding)(verifier.network, ref, nets, chains, zero)]


def _derived_paths(verifier: Verifier, claim: Claim, true_paths: list[tuple[Node, ...]]) -> list[tuple[Path, list[tuple[Node, ...]]]]:
    """The paths derive writes for a parameter (through dE/dnet_ok where softmax or sigmoid meets
    cross-entropy, so fewer than the graph's), each with the graph's paths it stands for; empty
    where they are the graph's own."""
    if claim.target.param is None:
        return []
    paths = verifier.chain_of(claim.target.param.name).paths
    if len(paths) >= len(true_paths) and not _from_deltas(verifier, claim):
        return []
    names = [{verifier.graph.name(n) for n in p} for p in true_paths]
    derived = []
    for path in paths:
        own = {f.of.name for f in path.factors} | {f.wrt.name for f in path.factors}
        derived.append((path, [p for p, n in zip(true_paths, names) if own <= n]))
    if sorted(len(d[1]) for d in derived) and sum(len(d[1]) for d in derived) != len(true_paths):
        return []  # a graph path in two of derive's, or in none: keep the graph's
    return derived


def _path_text(path: Path) -> str:
    return " * ".join(f"d{f.of.name}/d{f.wrt.name}" for f in path.factors)


def _coverage(verifier: Verifier, covered: Counter, true_paths: list[tuple[Node, ...]], derived: list[tuple[Path, list[tuple[Node, ...]]]]) -> list[Finding]:
    graph = verifier.graph
    findings = []
    missing = [p for p in true_paths if covered[p] == 0]
    twice = [p for p in true_paths if covered[p] > 1]
    whole = [i for i, (_, group) in enumerate(derived) if all(covered[p] == 0 for p in group)]
    if missing and whole and sum(len(derived[i][1]) for i in whole) == len(missing):
        # name them as derive writes them: "the paths through net_o2 and net_o3"
        paths = [d[0] for d in derived]
        group, verb = _group(paths, whole)
        findings.append(Finding("dropped_path", f"{group} {verb} missing (the parameter sits behind {count(len(paths), 'path')} through dE/dnet; the chain needs each)", " + ".join(_path_text(paths[i]) for i in whole)))
        missing = []
    if missing:
        many = len(true_paths) > 1
        words, verb = group_phrase(graph, missing, true_paths)
        words = f"{words} {verb} missing"
        if many:
            words += f" (the parameter sits behind {count(len(true_paths), 'path')}; the chain needs one product per path)"
        findings.append(Finding("dropped_path", words, " + ".join(graph.path_text(p) for p in missing)))
    if twice:
        findings.append(Finding("extra_path", "counted more than once: " + group_phrase(graph, twice, true_paths)[0], " + ".join(graph.path_text(p) for p in twice)))
    return findings


__all__ = ["judge_chain", "TooManyPaths"]
