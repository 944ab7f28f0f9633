"""A derivation described in plain strings and numbers, for the terminal and for JSON.

Every function here takes a :class:`~chainrule.derive.derivation.Derivation` (or a piece of one)
and returns frozen values holding only strings, floats and tuples of those: the forward pass line
by line, each parameter's chain with its factors and values, the update, and the layer form.
Formulas are written by :func:`~chainrule.derive.formula.format_expr`, so chainrule can read back
anything it prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import sympy

from chainrule.derive import naming
from chainrule.derive.counts import count, the
from chainrule.derive.chain import ChainRule, Factor, ParamChain, Path
from chainrule.derive.derivation import Derivation
from chainrule.derive.formula import format_expr, tree_size
from chainrule.derive.layers import LayerForm
from chainrule.derive.network import ParamRef, real_symbol
from chainrule.derive.penalty import L2
from chainrule.derive.optimizers import GRAD, THETA, first_step_expr
from chainrule.derive.registry import X
from chainrule.derive.sequences import sum_over_steps
from chainrule.derive.kinds import net_bias, net_products, net_terms, out_definition, pool
from chainrule.derive.windows import FLATTEN_KIND, POOL_KINDS

from chainrule.codegen.terminal.program_text import expression_text, statement_text

DIGITS = 9
#: Closed forms in inputs, targets and parameters are written up to this many nodes; the
#: first-layer weights of a 4-layer network run to megabytes, which no reader wants.
EXPANDED_MAX_NODES = 5_000


def number(value: float) -> str:
    """A value to 9 significant digits, as worked examples print them."""
    return f"{value + 0.0:.{DIGITS}g}"


def operand(value: float) -> str:
    """A value inside a product or sum: negative values in parentheses."""
    text = number(value)
    return f"({text})" if value < 0 else text


def in_product(expr: sympy.Expr) -> str:
    """An expression as one factor of a product: sums and negatives in parentheses."""
    text = format_expr(expr)
    return f"({text})" if expr.is_Add or text.startswith("-") else text


@dataclass(frozen=True)
class Line:
    """``name = formula = numbers = value``."""

    name: str
    formula: str
    substituted: str
    value: float


@dataclass(frozen=True)
class FactorText:
    name: str
    form: str
    derivative: str
    value: float
    note: str
    words: str = ""  # the factor as a hand calculation writes it, where that is not its formula (a max-pool's)


@dataclass(frozen=True)
class PathText:
    names: str
    forms: str
    values: str
    value: float
    factors: tuple[FactorText, ...]


@dataclass(frozen=True)
class ParamText:
    """A parameter's chain with numbers: ``paths`` on the sample, or for a batch, ``per_sample``
    (each sample's paths) and ``sample_gradients``, which ``gradient`` reduces."""

    name: str
    gradient_name: str
    paths: tuple[PathText, ...]
    gradient: float
    closed_form: str
    update: Line
    frozen: bool
    cut_note: str
    per_sample: tuple[tuple[PathText, ...], ...] = ()
    sample_gradients: tuple[float, ...] = ()
    reduction: str = "mean"
    penalty: Line | None = None
    positions: str = ""
    nonzero: str = ""  # a shared weight's sum without the terms that are 0 here
    deltas: tuple["DeltaText", ...] = ()  # the deltas of those terms, each worked once
    deltas_of: int = 0  # how many terms are not 0 (past 16, the deltas of the first 8 are worked)

    @property
    def shared(self) -> bool:
        """A convolution's weight or bias: its paths are the positions where it is used."""
        return bool(self.positions)

    @property
    def paths_gradient(self) -> float:
        """The paths' sum (reduced over a batch), without the L2 penalty's term."""
        return self.gradient - (self.penalty.value if self.penalty is not None else 0.0)


@dataclass(frozen=True)
class DeltaText:
    """A delta worked one step up: ``name = chain = form = numbers = value``; ``factors`` holds
    each factor's value, three per unit reading the output (dE/dR, dR/dout, dout/dnet)."""

    name: str
    chain: str
    form: str
    numbers: str
    factors: tuple[float, ...]
    value: float


@dataclass(frozen=True)
class LayerText:
    index: int
    name: str
    units: int
    activation: str
    weight: str | None
    bias: str | None
    bias_mode: str
    forward: tuple[str, ...]
    derivative: str
    delta: str
    gradients: tuple[str, ...]
    kind: str = "dense"


# ---------------------------------------------------------------------------------------------
# The forward pass


def forward_lines(d: Derivation, row: int = 0) -> tuple[Line, ...]:
    """Every unit's weighted sum and output, then the loss, with numbers on sample ``row``
    (small networks); for a batch, the loss line is that sample's own E_k."""
    net, env = d.network, d.envs[row]
    lines = []
    steps = max(net.spec.steps, 1)
    for step, l in ((step, l) for step in range(steps) for l in range(1, net.depth + 1)):  # a sequence: step by step
        rows = range(step * net.sizes[l], (step + 1) * net.sizes[l])
        for r in rows if net.has_parameters(l) else ():
            terms = " + ".join(_net_terms(d, l, r, row))
            lines.append(Line(net.net(l, r).name, _net_formula(d, l, r), terms, env[net.net(l, r).name]))
        for r in rows:
            lines.append(Line(net.out(l, r).name, unit_output_text(d, l, r), "", env[net.out(l, r).name]))
    loss = net.loss_definition()
    if d.batch or not net.spec.loss.l2:
        lines.append(Line(naming.LOSS if not d.batch else f"{naming.LOSS}_{row + 1}", format_expr(loss), "", d.sample_losses[row]))
        return tuple(lines)
    penalty = penalty_line(d)
    formula = f"{format_expr(loss)} + {penalty.formula}"
    lines.append(Line(naming.LOSS, formula, f"{number(d.data_loss)} + {penalty.substituted}", d.loss))
    return tuple(lines)


#: The penalty's sum of squares lists at most this many weights before it elides.
PENALTY_SHOWN = 6


def penalty_line(d: Derivation) -> Line:
    """The L2 penalty of E: ``penalty = l2/2*(w1**2 + ... + w8**2) = 0.05/2*0.565 = 0.028250000``
    (the weights listed for a small network, as their matrices for a big one)."""
    net = d.network
    if d.small:
        names = [f"{ref.name}**2" for ref in net.parameters() if ref.is_weight]
    else:
        names = [f"sum({form.weight}**2)" for form in d.layers if form.weight is not None]
    if len(names) > PENALTY_SHOWN:
        names = names[:2] + ["..."] + names[-1:]
    squares = sum(float(np.vdot(W, W)) for W in d.values.W if W is not None)
    return Line(naming.PENALTY, f"{naming.L2}/2*({' + '.join(names)})", f"{number(net.spec.loss.l2)}/2*{number(squares)}", d.sample.penalty)


def _net_formula(d: Derivation, l: int, r: int) -> str:
    """``w1*i1 + w2*i2 + b1``; a convolution's ``k11*x_1_1_1 + ... + b1`` over its field."""
    net = d.network
    terms = [f"{ref.name}*{symbol.name}" for ref, symbol in net_products(net, l, r)]
    bias = net_bias(net, l, r)
    return " + ".join(terms + ([bias.name] if bias else []))


def _net_terms(d: Derivation, l: int, r: int, row: int = 0) -> list[str]:
    net, values = d.network, d.values
    terms = [f"{operand(values.scalar(ref))}*{operand(d.envs[row][symbol.name])}" for ref, symbol in net_products(net, l, r)]
    bias = net_bias(net, l, r)
    if bias is not None:
        terms.append(operand(values.scalar(bias)))
    return terms


def activation_text(d: Derivation, l: int, argument: sympy.Symbol) -> str:
    """An activation applied to ``argument``: ``sigmoid(net_h1)``, ``leaky_relu(net_k, alpha=0.1)``
    or the formula written out."""
    spec = d.network.spec.layers[l - 1].activation
    if spec.expression is not None:
        return format_expr(spec.expression.xreplace({X: argument}))
    params = "".join(f", {k}={v:g}" for k, v in spec.params)
    return f"{spec.name}({argument.name}{params})"


def unit_output_text(d: Derivation, l: int, r: int) -> str:
    """How a unit's output is computed; for softmax, its quotient."""
    net = d.network
    kind = net.spec.layers[l - 1].kind
    if kind in POOL_KINDS or kind == FLATTEN_KIND:  # max(...), (... + ...)/4, the one output
        return format_expr(out_definition(net, l, r))
    if net.is_softmax(l):
        layer = naming.LAYER_NET.format(name=net.layer_name(l)) if net.has_parameters(l) else naming.LAYER_OUT.format(name=net.layer_name(l - 1)) if l > 1 else "inputs"
        return f"exp({net.activation_input(l, r).name})/sum(exp({layer}))"
    return activation_text(d, l, net.activation_input(l, r))


# ---------------------------------------------------------------------------------------------
# Chains


def factor_name(factor: Factor) -> str:
    return naming.PARTIAL.format(of=factor.of.name, wrt=factor.wrt.name)


def describe_path(d: Derivation, path: Path, row: int = 0) -> PathText:
    """A path's factors with their values on sample ``row``."""
    factors = tuple(
        FactorText(factor_name(f), format_expr(f.human), format_expr(f.derivative), d.factor_value(f, row), f.note, factor_words(f)) for f in path.factors
    )
    value = 1.0
    for f in factors:
        value *= f.value
    return PathText(
        names=" * ".join(f.name for f in factors),
        forms=" * ".join(factor_words(f) or in_product(f.human) for f in path.factors),
        values=" * ".join(operand(f.value) for f in factors),
        value=value,
        factors=factors,
    )


def factor_words(factor: Factor, largest: Sequence[str] = ()) -> str:
    """A max-pool's factor as a hand calculation writes it, ``(1 if out_c_1_2_2 is the window's
    largest, else 0)``, and where ``largest`` (the window's largest inputs on the sample) are a tie,
    who takes the gradient (:func:`~chainrule.derive.kinds.pool.tie_text`); "" for any other factor
    (its formula says it)."""
    if factor.note != pool.MAX_NOTE:
        return ""
    if len(largest) > 1 and factor.wrt.name in largest:
        return pool.tie_text(factor.wrt.name, list(largest))
    return pool.largest_text(factor.wrt.name)


def _tie(d: Derivation, reader: tuple, factor: Factor) -> list[str]:
    """The largest inputs on the sample of max-pool unit ``reader``'s window, where ``factor`` is
    its dp/dout; [] for any other factor."""
    if factor.note != pool.MAX_NOTE:
        return []
    return pool.largest_on_sample(d.network, reader[1], reader[2], lambda u: d.value(u))


#: A delta's dE/d(the unit above) is written as its formula up to this many nodes, else by its name.
DELTA_FORM_NODES = 24


def describe_deltas(d: Derivation, chain: ParamChain) -> tuple[DeltaText, ...]:
    """The deltas of a shared weight's terms that are not 0, each worked one step up (small
    networks, one sample): ``delta_c_1_1_4 = dE/dp_1_1_2 * dp_1_1_2/dout_c_1_1_4 *
    dout_c_1_1_4/dnet_c_1_1_4``, the factors' forms (a max-pool's in words), their numbers and the
    value; none where the chain does not start at its own layer's deltas."""
    if d.batch or not d.small or chain.cut_layer != chain.param.layer or d.network.spec.layers[chain.param.layer - 1].window is None:
        return ()  # a big network's deltas: the layer form's
    engine, net, lines = ChainRule(d.network, d.layers), d.network, []
    kept = [p for p in chain.paths if d.value(p.product) != 0 and p.factors[0].human.is_Symbol]
    for path in kept if len(kept) <= NONZERO_SHOWN else kept[:NONZERO_FIRST]:  # as many as the sum of those terms shows
        head = path.factors[0]
        node = ("net", chain.param.layer, net.units(chain.param.layer).index(head.wrt.name[len("net_"):]))
        names, forms, numbers, values = [], [], [], []
        for reader, local, activation in engine.delta_steps(node):
            above, gradient = naming.PARTIAL.format(of=net.loss_symbol.name, wrt=engine.symbol(reader).name), engine.unit_gradient(reader)
            names.append(" * ".join([above, factor_name(local), factor_name(activation)]))
            written = in_product(gradient) if tree_size(gradient, DELTA_FORM_NODES + 1) <= DELTA_FORM_NODES else above  # dE/dp_1_1_2 = (out_o1 - t1)*w2
            forms.append(" * ".join([written] + [factor_words(f, _tie(d, reader, f)) or in_product(f.human) for f in (local, activation)]))
            values += [d.value(gradient), d.factor_value(local), d.factor_value(activation)]
            numbers.append(" * ".join(operand(v) for v in values[-3:]))
        lines.append(DeltaText(head.human.name, " + ".join(names), " + ".join(forms), " + ".join(numbers), tuple(values), d.value(head.human)))
    return tuple(lines)


#: The sum of the terms not 0 is written whole up to this many; past it, the first NONZERO_FIRST.
NONZERO_SHOWN, NONZERO_FIRST = 16, 8


def nonzero_form(d: Derivation, chain: ParamChain) -> str:
    """A shared weight's sum with only the terms that are not 0 on the sample (``delta_c_1_1_4*x_1_1_4
    + ...``), where some are 0; "" otherwise."""
    if d.batch or chain.cut_layer is None:
        return ""
    kept = [p for p in chain.paths if d.value(p.product) != 0]
    if len(kept) == len(chain.paths):
        return ""
    terms = ["*".join(in_product(f.human) for f in p.factors if f.human != 1) or "1" for p in kept]
    shown = " + ".join(terms) if len(terms) <= NONZERO_SHOWN else " + ".join(terms[:NONZERO_FIRST]) + " + ..."
    return f"{shown or '0'} ({the(len(terms), 'term')} not 0 on the sample)"


def chain_form(chain: ParamChain, penalty: bool = True) -> str:
    """dE/dθ in unit symbols, path by path in chain order, factors equal to 1 left out, and the
    L2 penalty's term last (``+ l2*w5``) where there is one."""
    paths = []
    for path in chain.paths:
        kept = [f.human for f in path.factors if f.human != 1]
        paths.append("*".join(in_product(h) for h in kept) if kept else "1")
    if penalty and chain.penalty != 0:
        paths.append(format_expr(chain.penalty))
    return " + ".join(paths)


def expanded_form(d: Derivation, name: str) -> str | None:
    """dE/dθ in inputs, targets and parameters, or None when it is too large to be read."""
    if d.closed_form_size(name) > EXPANDED_MAX_NODES:  # estimated without building it
        return None
    expr = d.closed_form(name)
    return format_expr(expr) if tree_size(expr, EXPANDED_MAX_NODES + 1) <= EXPANDED_MAX_NODES else None


def describe_param(d: Derivation, name: str) -> ParamText:
    chain = d.chains[name]
    ref = chain.param
    gradient = d.chain_gradient(chain)
    cut = ""
    if chain.cut_layer is not None:
        layer = d.network.layer_name(chain.cut_layer)
        cut = f"paths start at the deltas of layer {layer} (delta_u = dE/dnet_u, from the layer form); from E there are {chain.paths_from_E:,}"
    window = d.network.spec.layers[ref.layer - 1].window
    positions = ""
    if d.network.spec.steps:  # every parameter of a sequence network is read at every step
        used = len({path.factors[-1].of for path in chain.paths})
        over = sum_over_steps(d.network.spec, ref.layer, name, used)
        positions = over + ("" if chain.cut_layer is not None else f", {count(len(chain.paths), 'path')}")
        if chain.cut_layer is not None:
            unit = naming.AT_STEP.format(name=d.network.units(ref.layer)[ref.row], step="")  # h1_t
            cut = (f"each term dE/dnet_{unit} * dnet_{unit}/d{name} = delta_{unit} * what {name} multiplies at step t, delta_{unit} = dE/dnet_{unit} "
                   f"from the layer form (backpropagation through time); from E there are {count(chain.paths_from_E, 'path')}")
    elif window is not None:  # a shared weight: one path (or group of paths) per position where it is used
        used = len({path.factors[-1].of for path in chain.paths})
        positions = f"the sum over the {used:,} positions of layer {d.network.layer_name(ref.layer)} where {name} is used" if used > 1 else ""
        if positions and chain.cut_layer == ref.layer:
            unit = d.network.layer_name(ref.layer)
            cut = (f"each term dE/dnet_{unit}_u * dnet_{unit}_u/d{name} = delta_{unit}_u * what {name} multiplies at u, delta_{unit}_u = dE/dnet_{unit}_u "
                   f"from the layer form; from E there are {count(chain.paths_from_E, 'path')}")
    rows = range(d.values.samples) if d.batch else ()
    return ParamText(
        name=name,
        gradient_name=naming.GRADIENT.format(name=name),
        paths=tuple(describe_path(d, p) for p in chain.paths) if not d.batch else (),
        gradient=gradient,
        closed_form=chain_form(chain, penalty=not d.batch),  # a batch: sample k's (the penalty is the batch's)
        update=update_line(d, ref, d.gradient(ref)),  # the gradient the update used (the layer form's)
        frozen=d.frozen(ref),
        cut_note=cut,
        per_sample=tuple(tuple(describe_path(d, p, row) for p in chain.paths) for row in rows),
        sample_gradients=tuple(d.sample_gradient(chain, row) for row in rows),
        reduction=d.network.spec.reduction,
        penalty=_penalty_term(d, chain),
        positions=positions,
        nonzero=nonzero_form(d, chain) if positions else "",
        deltas=describe_deltas(d, chain) if positions else (),
        deltas_of=sum(1 for p in chain.paths if d.value(p.product) != 0) if positions and not d.batch else 0,
    )


def _penalty_term(d: Derivation, chain: ParamChain) -> Line | None:
    """The penalty's term of dE/dθ with numbers: ``l2*w5 = 0.05*0.4 = 0.02``; None for a bias or
    without a penalty."""
    if chain.penalty == 0:
        return None
    numbers = {s: real_symbol(operand(d.value(s))) for s in chain.penalty.free_symbols}
    substituted = format_expr(chain.penalty.xreplace(numbers), last=[numbers[chain.symbol]])  # l2's number first, as l2*w5
    return Line(naming.PENALTY, format_expr(chain.penalty, last=[chain.symbol]), substituted, d.penalty_value(chain))


def update_line(d: Derivation, ref: ParamRef, gradient: float) -> Line:
    """``w5+ = w5 - lr*dE/dw5 = 0.4 - 0.5*0.0821670406 = 0.35891648`` (one step from zero state)."""
    name = ref.name
    after = naming.UPDATED.format(name=name)
    if d.frozen(ref):
        value = d.values.scalar(ref)
        return Line(after, name, operand(value), value)
    hyper = d.network.settings_of(ref)  # its group's settings where it is in one
    expr = first_step_expr(d.network.spec.optimizer.kind, hyper)
    g = real_symbol(naming.GRADIENT.format(name=name))
    formula = format_expr(expr.xreplace({THETA: real_symbol(name), GRAD: g}), last=[g])
    numbers = {THETA: real_symbol(operand(d.values.scalar(ref))), GRAD: real_symbol(operand(gradient))}
    numbers.update({sympy.Symbol(h, real=True): real_symbol(operand(v)) for h, v in hyper.items()})
    substituted = format_expr(expr.xreplace(numbers), last=[numbers[GRAD]])
    return Line(after, formula, substituted, d.updated(ref))


# ---------------------------------------------------------------------------------------------
# The layer form


def describe_layer(d: Derivation, form: LayerForm) -> LayerText:
    """A layer's statements of the layer program, as text."""
    program = d.program
    statements = {s.rule: s for s in program.layer(form.index)}
    activation = statements.get("activation")
    weighted = (statement_text(program, statements["weighted sums"]),) if "weighted sums" in statements else ()
    maps = tuple(statement_text(program, statements[rule]) for rule in ("pooling", "flatten") if rule in statements)
    if activation is not None and program.steps:  # a sequence: at step t (an rnn's in the loop of its weighted sums)
        forward = weighted + (f"{activation.target}[t] = {activation_text(d, form.index, real_symbol(form.net + '[t]'))}",)
    else:
        forward = weighted + maps + ((f"{activation.target} = {activation_text(d, form.index, real_symbol(form.net))}",) if activation is not None else ())
    local = statements.get("local derivative")
    delta = statements.get("output delta") or statements["delta"]
    gradients = tuple(statement_text(program, statements[rule]) for rule in ("weight gradient", "recurrent weight gradient", "bias gradient", "initial state gradient") if rule in statements)
    if "penalty gradient" in statements:  # dE/dW = delta out^T (reduced) + l2*W, added once
        term = statements["penalty gradient"].expr
        gradients = (f"{gradients[0]} + {format_expr(term, last=term.free_symbols - {L2})}",) + gradients[1:]
    return LayerText(
        index=form.index,
        name=form.name,
        units=form.size,
        activation=form.activation,
        weight=form.weight,
        bias=form.bias,
        bias_mode=d.network.bias_mode(form.index).value,
        kind=form.kind,
        forward=forward,
        derivative="" if local is None else expression_text(program, local),
        delta=statement_text(program, delta),
        gradients=gradients,
    )
