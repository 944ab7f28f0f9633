"""What is wrong with a hand calculation: the typical mistakes, as expressions, and how to name them.

Every mistake of the catalogue is an *alternative*: the expression a person gets who makes it
(the true chain with a factor left out, a path dropped, σ′ taken as σ, the output weights already
updated, the update added instead of subtracted, ...), built from the derivation's own paths and
factors. A claimed formula is compared with each symbolically, a claimed value with each
numerically at the claim's precision; a formula that matches none is then compared with the truth
itself: their ratio (a constant: a sign, a factor ½ or 2, the learning rate; a product: the
factors missing or extra) and their difference (whole paths dropped or counted twice).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from itertools import combinations
from typing import Callable, Sequence

import sympy

from chainrule.derive.chain import Factor, Path
from chainrule.derive.hand.claims import Part
from chainrule.derive.formula import format_expr, format_number, tree_size
from chainrule.derive.hand.paths import paths_phrase, through_label
from chainrule.derive.registry import ACTIVATIONS

MAX_RATIO_NODES = 60
MAX_FACTOR_NODES = 400
MAX_SUBSETS_PATHS = 6


@dataclass(frozen=True)
class Finding:
    """One thing that differs: ``mistake`` a stable key (``missing_factor``, ``sign``, ...),
    ``words`` the sentence a reader sees, ``formula`` the expression it is about (or ``""``)."""

    mistake: str
    words: str
    formula: str = ""


@dataclass(frozen=True)
class Verdict:
    """The judgement of one part of one claim.

    Attributes:
        claim: the claim's number in its file (from 1); ``of`` as written, ``label`` in the
            spec's spelling (``dE/dw5``).
        expected, claimed: numbers for a value, text for a formula or a chain.
        findings: what differs (empty when correct); ``note`` a remark on a correct one.
    """

    claim: int
    of: str
    label: str
    part: Part
    correct: bool
    expected: float | str
    claimed: float | str
    findings: tuple[Finding, ...] = ()
    note: str = ""
    written: str = ""  # a claimed value's digits as written
    tolerance: float | None = None  # a claimed value's own tolerance: then its digits are not the rule

    @property
    def diagnosis(self) -> str:
        return "; ".join(f.words for f in self.findings)


@dataclass(frozen=True)
class Alternative:
    """The result of one typical mistake: ``expr`` in the spec's symbols; a symbol ``w5+`` stands
    for the updated value of w5 (such alternatives are compared by value only)."""

    finding: Finding
    expr: sympy.Expr


def updated_symbol(name: str) -> sympy.Symbol:
    return sympy.Symbol(f"{name}+", real=True)


def in_product(expr: sympy.Expr) -> str:
    text = format_expr(expr)
    return f"({text})" if expr.is_Add or text.startswith("-") else text


def factor_text(f: Factor) -> str:
    return f"d{f.of.name}/d{f.wrt.name} = {format_expr(f.human)}"


def path_product(path: Path, replace: dict[int, sympy.Expr] | None = None) -> sympy.Expr:
    replace = replace or {}
    return sympy.Mul(*[replace.get(i, f.human) for i, f in enumerate(path.factors)])


def path_label(path: Path, paths: Sequence[Path] = ()) -> str:
    """The units that tell a path from its siblings (see :func:`paths.through_label`)."""
    inner = [f.wrt.name for f in path.factors[:-1] if f.wrt.name.startswith(("out_", "net_"))]
    shared = set.intersection(*[{f.wrt.name for f in p.factors} for p in paths]) if len(paths) > 1 else set()
    return through_label(inner, shared, path.factors[-1].wrt.name)


def _group(paths: Sequence[Path], subset: Sequence[int]) -> tuple[str, str]:
    """The paths of ``subset`` named as a group (see :func:`paths.paths_phrase`), and the verb."""
    inner = [[f.wrt.name for f in p.factors[:-1] if f.wrt.name.startswith(("out_", "net_"))] for p in paths]
    chosen = [inner[i] for i in subset]
    others = [inner[i] for i in range(len(paths)) if i not in subset]
    return paths_phrase(chosen, others, [path_label(paths[i], paths) for i in subset])


def path_form(path: Path) -> str:
    kept = [f.human for f in path.factors if f.human != 1]
    return "*".join(in_product(h) for h in kept) if kept else "1"


# ---------------------------------------------------------------------------------------------
# The catalogue, as alternatives


def gradient_alternatives(paths: Sequence[Path], activations: dict[str, str], later_weights: set[str], siblings: dict[str, sympy.Expr], nodes: dict[str, tuple] | None = None) -> list[Alternative]:
    """The typical mistakes in dE/dθ written as the sum of ``paths``.

    Args:
        activations: unit output name -> activation name, for naming σ′ taken as σ.
        later_weights: names of weights of layers above θ's (updated too early in a hidden delta).
        siblings: other parameters' gradients (the gradient of the wrong weight).
    """
    products = [path_product(p) for p in paths]
    true = sympy.Add(*products)
    alts = [
        Alternative(Finding("sign", "the sign is flipped (e.g. t - out where the derivative of the loss gives out - t)", format_expr(-true)), -true),
        Alternative(Finding("factor", "a factor 2 too many (the 2 of the square not cancelled by the 1/2?)", "2"), 2 * true),
        Alternative(Finding("factor", "a factor 1/2 too many", "1/2"), true / 2),
    ]
    many = len(paths) > 1
    for i, path in enumerate(paths):
        label = path_label(path, paths)
        where = f" in the path through {label}" if many else ""
        if many:
            alts.append(Alternative(Finding("dropped_path", f"the path through {label} is missing (a parameter behind several units has one path through each)", path_form(path)), true - products[i]))
            alts.append(Alternative(Finding("sign", f"the sign of the path through {label} is flipped", path_form(path)), true - 2 * products[i]))
        for j, f in enumerate(path.factors):
            if f.human == 1:
                continue
            alts.append(Alternative(Finding("missing_factor", f"missing the factor {factor_text(f)}{where}", format_expr(f.human)), true - products[i] + path_product(path, {j: sympy.Integer(1)})))
            if f.of.name.startswith("out_") and f.wrt.name.startswith("net_") and f.human != f.of:
                kind = activations.get(f.of.name, "the activation")
                words = f"{_prime(kind)} taken as {_plain(kind)}: d{f.of.name}/d{f.wrt.name} written as {f.of.name} instead of {format_expr(f.human)}{where}"
                alts.append(Alternative(Finding("derivative_as_function", words, format_expr(f.human)), true - products[i] + path_product(path, {j: f.of})))
    if many:
        for name in sorted({f"d{f.of.name}/d{f.wrt.name}" for p in paths for f in p.factors}):
            common = [next((f for f in p.factors if f"d{f.of.name}/d{f.wrt.name}" == name), None) for p in paths]
            if all(c is not None for c in common) and common[0].human != 1:  # type: ignore[union-attr]
                f = common[0]
                assert f is not None
                alts.append(Alternative(Finding("missing_factor", f"missing the factor {factor_text(f)} (in every path)", format_expr(f.human)), sympy.Add(*[p / f.human for p in products])))
        outs = {f.of for p in paths for f in p.factors if f.of.name.startswith("out_") and f.wrt.name.startswith("net_") and f.human != f.of}
        for out in sorted(outs, key=lambda s: s.name):
            replaced = sympy.Add(*[path_product(p, {j: out for j, f in enumerate(p.factors) if f.of == out and f.wrt.name.startswith("net_")}) for p in paths])
            kind = activations.get(out.name, "the activation")
            alts.append(Alternative(Finding("derivative_as_function", f"{_prime(kind)} taken as {_plain(kind)}: d{out.name}/dnet written as {out.name} (in every path)", out.name), replaced))
    if later_weights:
        moved = {sympy.Symbol(w, real=True): updated_symbol(w) for w in later_weights}
        late = sympy.Add(*[path_product(p, {j: f.human.xreplace(moved) for j, f in enumerate(p.factors) if f.human.free_symbols & set(moved)}) for p in paths])
        if late != true:
            names = ", ".join(sorted(w for w in later_weights if sympy.Symbol(w, real=True) in true.free_symbols))
            alts.append(Alternative(Finding("updated_weights", f"the updated weights ({names} after the step) used in the backward pass; the gradients of one step all use the weights before it", format_expr(late)), late))
    alts += role_alternatives(paths, activations, nodes or {})
    for name, expr in siblings.items():
        alts.append(Alternative(Finding("other_parameter", f"this is dE/d{name}, the gradient of another parameter", format_expr(expr)), expr))
    return alts


def _activation_slips(f: Factor, kind: str) -> list[tuple[str, str, sympy.Expr]]:
    """The ways a local dout/dnet is written wrong, each (mistake, words, the factor as written):
    the derivative taken at the output (σ′(out_o1)), the net put in its output form
    (net_o1*(1 - net_o1)), another activation's derivative (out_h1*(1 - out_h1) for a tanh unit)."""
    out, net, human = f.of, f.wrt, format_expr(f.human)
    slips = []
    at_out = f.derivative.xreplace({net: out})
    if at_out.has(out) and at_out != f.human:
        slips.append(("wrong_argument", f"{_prime(kind)} taken at {out.name}, the output, where it is {_prime(kind)}({net.name}) = {human}", at_out))
    on_net = f.human.xreplace({out: net})
    if on_net != f.human:
        slips.append(("wrong_argument", f"{net.name} put in for {out.name} in {_prime(kind)} = {human}", on_net))
    for other in ACTIVATIONS.values():
        if other.name == kind or other.in_output is None or other.params or other.whole_layer:
            continue
        form = other.in_output(out)
        if form.is_Number or any(not isinstance(g, sympy.exp) for g in form.atoms(sympy.Function)) or form == f.human:
            continue
        slips.append(("other_activation", f"{_prime(kind)} is {human}; {format_expr(form)} is {_prime(other.name)}, the derivative of {other.name}", form))
    return slips


def role_alternatives(paths: Sequence[Path], activations: dict[str, str], nodes: dict[str, tuple]) -> list[Alternative]:
    """A mistake made the same way in every path, at each step of the same kind (dout_ok/dnet_ok
    for every output k, or each dnet_ok/dout_h1 = weight): the factor left out, or, for an
    activation's derivative, one of :func:`_activation_slips`.

    Args:
        nodes: symbol name -> graph node (``("out", 2, 0)``): a step's kind is its two layers.
    """
    roles: dict[tuple, list[tuple[int, int]]] = {}
    for i, p in enumerate(paths):
        for j, f in enumerate(p.factors):
            if f.human != 1 and f.of.name in nodes and f.wrt.name in nodes:
                roles.setdefault(nodes[f.of.name][:2] + nodes[f.wrt.name][:2], []).append((i, j))
    alts = []
    for role, places in roles.items():
        found = [paths[i].factors[j] for i, j in places]
        names = list(dict.fromkeys(f"d{f.of.name}/d{f.wrt.name}" for f in found))
        each = " in each path" if len(paths) > 1 else ""
        if len(names) > 1:
            listed = ", ".join(dict.fromkeys(format_expr(f.human) for f in found))
            words = f"{_generic(names)} is missing{each} ({listed})"
            alts.append(Alternative(Finding("missing_factor", words, listed), _replaced(paths, places, lambda f: sympy.Integer(1))))
        if role[0] == "out" and role[2] == "net" and role[1] == role[3] and all(f.of.name[len("out_"):] == f.wrt.name[len("net_"):] for f in found):
            kind = activations.get(found[0].of.name, "the activation")
            slips = {id(f): _activation_slips(f, kind) for f in found}
            for n, (mistake, words, _) in enumerate(slips[id(found[0])]):
                if all(len(slips[id(f)]) > n for f in found):
                    by_factor = {(f.of, f.wrt): slips[id(f)][n][2] for f in found}
                    alts.append(Alternative(Finding(mistake, words + each, format_expr(by_factor[(found[0].of, found[0].wrt)])), _replaced(paths, places, lambda f: by_factor[(f.of, f.wrt)])))
    return alts


def _replaced(paths: Sequence[Path], places: Sequence[tuple[int, int]], new: Callable[[Factor], sympy.Expr]) -> sympy.Expr:
    at = {}
    for i, j in places:
        at.setdefault(i, {})[j] = new(paths[i].factors[j])
    return sympy.Add(*[path_product(p, at.get(i)) for i, p in enumerate(paths)])


def _generic(names: Sequence[str]) -> str:
    """``dout_ok/dnet_ok`` for dout_o1/dnet_o1 and dout_o2/dnet_o2: the unit numbers that differ
    written k (or the names listed, where more than numbers differ)."""
    pieces = [re.split(r"(\d+)", n) for n in names]
    if len({len(p) for p in pieces}) != 1:
        return ", ".join(names)
    merged = []
    for column in zip(*pieces):
        if len(set(column)) == 1:
            merged.append(column[0])
        elif all(c.isdigit() for c in column):
            merged.append("k")
        else:
            return ", ".join(names)
    return "".join(merged)


def _prime(activation: str) -> str:
    return {"sigmoid": "σ′"}.get(activation, f"{activation}′")


def _plain(activation: str) -> str:
    return {"sigmoid": "σ"}.get(activation, activation)


@dataclass(frozen=True)
class Rate:
    """The factor ``value`` of a first step θ+ = θ - value·dE/dθ: the learning rate ``lr`` for sgd
    and momentum, ``form`` (``lr*(momentum + 1)``) for the first step of ``kind`` otherwise."""

    value: sympy.Expr
    lr: sympy.Expr
    kind: str
    form: str

    def _true(self) -> str:
        return f"{self.kind}'s first step from a zero state is {self.form} = {format_number(self.value)} times it"

    def wrong(self, claimed: sympy.Expr) -> str:
        """What a step of ``claimed`` times the gradient gets wrong."""
        if self.value == self.lr:
            return f"the learning rate used is {format_number(claimed)}; the spec's is {format_number(self.value)}"
        used = f"lr = {format_number(claimed)}" if claimed == self.lr else format_number(claimed)
        return f"the step is {used} times the gradient; {self._true()}"

    def left_out(self) -> str:
        if self.value == self.lr:
            return f"the learning rate ({format_number(self.value)}) is left out"
        return f"the step is the gradient itself; {self._true()}"


def update_alternatives(theta: sympy.Symbol, updated: sympy.Expr, gradient: sympy.Expr, rate: Rate | None, gradient_alts: Sequence[Alternative], g: sympy.Symbol) -> list[Alternative]:
    """The typical mistakes in θ+ = ``updated`` (a function of θ and dE/dθ = ``gradient``).

    Args:
        rate: the factor when the step is ``-rate.value * dE/dθ``, else None.
        g: the symbol ``dE/dθ``, in which the formulas of the findings are written.
    """
    step = updated - theta
    written = step.xreplace({gradient: g}) if rate is None else -rate.value * g
    text = lambda expr: format_expr(expr, last=[g])  # noqa: E731 - w5 + lr*dE/dw5, not expanded
    alts = [
        Alternative(Finding("update_sign", "the step is added instead of subtracted (the update goes uphill)", text(theta - written)), theta - step),
        Alternative(Finding("not_updated", f"this is {g.name}, the gradient, not the updated parameter", g.name), gradient),
        Alternative(Finding("not_updated", "this is the step alone, not the parameter after it", text(written)), step),
        Alternative(Finding("not_updated", "this is the step's size alone, not the parameter after it", text(-written)), -step),
    ]
    if rate is not None and rate.value != 1:
        alts.append(Alternative(Finding("update_rate", rate.left_out(), text(theta - g)), theta - gradient))
        if rate.lr != rate.value:  # momentum's factor on the first step left out
            alts.append(Alternative(Finding("update_rate", rate.wrong(rate.lr), text(theta - rate.value * g)), theta - rate.lr * gradient))
        for alt in gradient_alts:
            if alt.finding.mistake == "other_parameter":
                continue
            words = f"the update uses a wrong gradient: {alt.finding.words}"
            alts.append(Alternative(Finding(alt.finding.mistake, words, alt.finding.formula), theta - rate.value * alt.expr))
    return alts


def sum_alternatives(true: sympy.Expr, what: str, terms_named: dict[sympy.Expr, str], double: str = "") -> list[Alternative]:
    """The mistakes in a sum (the loss, a weighted sum): a term left out, a factor 2 or 1/2.

    Args:
        double: what a factor 2 too many means here (`` (the 1/2 of half_sse left out)``).
    """
    alts = [
        Alternative(Finding("factor", f"a factor 2 too many{double}", "2"), 2 * true),
        Alternative(Finding("factor", "a factor 1/2 too many", "1/2"), true / 2),
    ]
    for term, name in terms_named.items():
        alts.append(Alternative(Finding("missing_term", f"the term {name} of {what} is missing", format_expr(term)), true - term))
    return alts


def penalty_alternatives(data: sympy.Expr, penalty: sympy.Expr, shown: str, what: str, alternatives: Sequence[Alternative]) -> list[Alternative]:
    """With an L2 penalty in E (``loss: {l2: ...}``): the mistakes of ``alternatives`` (made on
    the data part ``data``) with the penalty added, then the penalty's own two: left out (``data``
    alone) and doubled (``2*penalty``: differentiating l2*w**2 without the 1/2, or E with
    l2*sum(w**2)).

    Args:
        penalty: the penalty's part of the quantity (``l2*w5`` of dE/dw5, ``l2/2*(w1**2 + ...)``
            of E), in exact numbers; ``shown`` the same as people write it (``l2*w5``).
        what: ``E`` or the gradient's name, for the words.
    """
    alts = [Alternative(a.finding, a.expr + penalty) for a in alternatives]
    alts.append(Alternative(Finding("penalty_left_out", f"the L2 penalty's term {shown} is left out of {what} (loss: l2 makes it part of E)", shown), data))
    doubled = f"2*{shown}, as from differentiating l2*w**2 without its 1/2" if what != "E" else "l2*sum(w**2), without the 1/2"
    alts.append(Alternative(Finding("penalty_doubled", f"the L2 penalty's term counted twice: {doubled}; E holds l2/2 * (sum of the squared weights)",
                                f"2*{shown}" if what != "E" else "l2*sum(w**2)"), data + 2 * penalty))
    return alts


# ---------------------------------------------------------------------------------------------
# Comparing expressions


MAX_EXPAND_NODES = 3_000
MAX_EXPAND_POWER = 6
#: terms a product of sums may have once multiplied out, anywhere in an expression
MAX_EXPANDED_TERMS = 2_000
#: the largest integer power, multiple inside exp, or root index polynomial algebra is given:
#: exp(-1e20) is exp(1)**(-10**20) to sympy's polys, a dense polynomial of that degree
MAX_DEGREE = 64
#: distinct denominators a sum may bring together (their product is the common denominator)
MAX_DENOMINATORS = 12


def expandable(expr: sympy.Expr) -> bool:
    """Whether sympy's polynomial algebra on ``expr`` (expand, together, cancel, factor) stays
    cheap: a bounded tree, at most :data:`MAX_EXPANDED_TERMS` terms once multiplied out (a hostile
    ``(o1 + h1 + w5 + w6)**100`` has millions), small degrees (no ``exp(-1e20)``, no ``x**10**6``)
    and few denominators. Expressions that are not are compared by their values alone."""
    if tree_size(expr, MAX_EXPAND_NODES + 1) > MAX_EXPAND_NODES:
        return False
    nodes = list(sympy.preorder_traversal(expr))
    if not all(_small_degree(node) for node in nodes):
        return False
    denominators = {node.base for node in nodes if node.is_Pow and node.exp.is_negative}
    return len(denominators) <= MAX_DENOMINATORS and expanded_terms(expr) <= MAX_EXPANDED_TERMS


def _small_degree(node: sympy.Basic) -> bool:
    """Whether a power or an exp stays a polynomial of small degree in its generator."""
    if node.is_Pow:
        if node.base.is_Add and node.exp.is_Number and abs(node.exp) > MAX_EXPAND_POWER:
            return False
        multiples = [node.exp]
    elif isinstance(node, sympy.exp):
        multiples = list(sympy.Add.make_args(node.args[0]))
    else:
        return True
    for term in multiples:
        k = term.as_coeff_Mul()[0]
        if not k.is_Number:
            continue
        if abs(k) > MAX_DEGREE or (k.is_Rational and k.q > MAX_DEGREE) or (k.is_Float and k != int(k)):
            return False
    return True


def expanded_terms(expr: sympy.Expr) -> int:
    """An upper bound on the terms of any part of ``expr`` multiplied out (capped just above
    :data:`MAX_EXPANDED_TERMS`)."""
    cap = MAX_EXPANDED_TERMS + 1
    memo: dict[sympy.Basic, int] = {}
    worst = [1]

    def terms(node: sympy.Basic) -> int:
        if node in memo:
            return memo[node]
        inner = [terms(a) for a in node.args]
        if node.is_Add:
            n = sum(inner)
        elif node.is_Mul:
            n = math.prod(inner)
        elif node.is_Pow and node.exp.is_Integer and node.exp > 0:
            n = math.comb(min(inner[0], cap) + int(node.exp) - 1, int(node.exp)) if int(node.exp) <= MAX_DEGREE else cap
        else:
            n = 1
        memo[node] = n = min(n, cap)
        worst[0] = max(worst[0], n)
        return n

    terms(expr)
    return worst[0]


def is_zero(expr: sympy.Expr) -> bool:
    """True when ``expr`` is 0 as a rational function of its symbols (functions kept whole);
    False also when that would be too costly to find out."""
    if not expandable(expr):
        return False
    expanded = sympy.expand(expr)
    if expanded == 0:
        return True
    if any(p.exp.is_negative for p in expanded.atoms(sympy.Pow)):
        return sympy.cancel(sympy.together(expanded)) == 0
    return False


def same(a: sympy.Expr, b: sympy.Expr) -> bool:
    return is_zero(a - b)


def ratio_findings(claimed: sympy.Expr, true: sympy.Expr, factors: Sequence[Factor], rate: sympy.Expr | None = None, where: str = "") -> list[Finding]:
    """What the ratio claimed/true says, when it is simple: a constant or a product of factors."""
    if true == 0 or claimed == 0 or not expandable(claimed / true):
        return []
    cancelled = sympy.cancel(claimed / true)
    if tree_size(cancelled, MAX_FACTOR_NODES + 1) > MAX_FACTOR_NODES:
        return []  # factoring a big multivariate polynomial is slow, and its factors say little
    ratio = sympy.factor(cancelled)
    if tree_size(ratio, MAX_RATIO_NODES + 1) > MAX_RATIO_NODES:
        return []
    if ratio.is_Number:
        return [constant_finding(ratio, rate, where)] if ratio != 1 else []
    coefficient, numerator, denominator = _signed_parts(ratio)
    if denominator != 1 and numerator != 1 and (same(denominator, true) or same(denominator, -true)):
        return []  # "missing everything, extra something else" says nothing a reader can use
    findings = []
    if denominator != 1:
        text, names = named(denominator, factors)
        findings.append(Finding("missing_factor", f"missing the factor {text}{names}{where}", text))
    if numerator != 1:
        text, names = named(numerator, factors)
        findings.append(Finding("extra_factor", f"an extra factor {text}{where}", text))
    if coefficient != 1:
        findings.append(constant_finding(coefficient, rate, where))
    return findings


def _signed_parts(ratio: sympy.Expr) -> tuple[sympy.Expr, sympy.Expr, sympy.Expr]:
    """(coefficient, numerator, denominator) with every factor written without a leading minus
    (``1 - out_h1``, not ``out_h1 - 1``), the signs gathered in the coefficient."""
    coefficient, rest = ratio.as_coeff_Mul()
    sides = []
    for side in sympy.fraction(rest):
        kept = []
        for factor in sympy.Mul.make_args(side):
            base, power = factor.as_base_exp()
            if _negative(base):
                base = -base
                if power.is_Integer and int(power) % 2:
                    coefficient = -coefficient
            kept.append(base**power)
        sides.append(sympy.Mul(*kept))
    return coefficient, sides[0], sides[1]


def _negative(expr: sympy.Expr) -> bool:
    """Whether ``expr`` reads better negated: most terms negative, or as many and a negative
    constant (``out_h1 - 1`` is ``-(1 - out_h1)``)."""
    if not expr.is_Add:
        return expr.could_extract_minus_sign()
    minus = sum(t.could_extract_minus_sign() for t in expr.args)
    constant = next((t for t in expr.args if t.is_Number), None)
    return 2 * minus > len(expr.args) or (2 * minus == len(expr.args) and constant is not None and constant < 0)


def constant_finding(k: sympy.Expr, rate: sympy.Expr | None, where: str = "") -> Finding:
    if k == -1:
        return Finding("sign", f"the sign is flipped{where}", "-1")
    if rate is not None and k == rate:
        return Finding("factor", f"multiplied by the learning rate {format_number(rate)}{where}", format_expr(k))
    if k in (2, sympy.Rational(1, 2)):
        return Finding("factor", f"a factor {format_expr(k)} too many{where}", format_expr(k))
    return Finding("factor", f"off by a constant factor {format_expr(k)}{where}", format_expr(k))


def named(missing: sympy.Expr, factors: Sequence[Factor]) -> tuple[str, str]:
    """``missing`` as text, in the chain's order where the chain's factors make it up, and
    `` (the factors dnet_o1/dout_h1 = w21 and ...)`` naming them (or ``""``)."""
    left, used = missing, []
    for f in factors:
        if f.human == 1 or not (f.human.free_symbols & left.free_symbols):
            continue
        rest = sympy.cancel(left / f.human)
        if sympy.fraction(rest)[1] == 1 and tree_size(rest) < tree_size(left):
            used.append(f)
            left = rest
    if not used or left != 1:
        return format_expr(missing), ""
    text = "*".join(in_product(f.human) for f in used)
    if len(used) == 1:
        return text, f" (the factor {factor_text(used[0])})"
    return text, " (the factors " + ", ".join(factor_text(f) for f in used[:-1]) + f" and {factor_text(used[-1])})"


def path_findings(claimed: sympy.Expr, paths: Sequence[Path], close: Callable[[sympy.Expr, sympy.Expr], bool] = lambda a, b: True) -> list[Finding]:
    """Whole paths dropped or counted twice, and a mistake confined to one path.

    Args:
        close: a cheap test that two expressions may be equal (their values agree somewhere);
            only those are compared symbolically.
    """
    products = [path_product(p) for p in paths]
    true = sympy.Add(*products)
    if len(paths) < 2:
        return []
    n = len(paths)
    sizes = range(1, n) if n <= MAX_SUBSETS_PATHS else [1]
    for size in sizes:
        for subset in combinations(range(n), size):
            part = sympy.Add(*[products[i] for i in subset])
            forms = " + ".join(path_form(paths[i]) for i in subset)
            if close(claimed, true - part) and same(claimed, true - part):
                group, verb = _group(paths, subset)
                return [Finding("dropped_path", f"{group} {verb} missing (a parameter behind several units has one path through each)", forms)]
            if close(claimed, true + part) and same(claimed, true + part):
                group, verb = _group(paths, subset)
                return [Finding("extra_path", f"{group} {verb} counted twice", forms)]
    for i, path in enumerate(paths):
        rest = true - products[i]
        found = ratio_findings(claimed - rest, products[i], path.factors, where=f" in the path through {path_label(path, paths)}")
        if found:
            return found
    return []
