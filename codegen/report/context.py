"""The report's template context: the derivation as LaTeX, ready for ``report.tex.j2`` to lay out.

:func:`build_report_context` reads a :class:`~chainrule.derive.derivation.Derivation` and returns a
:class:`ReportContext` of :class:`~chainrule.codegen.report.latex.Tex` strings, numbers and tuples of
those. Every number in it is the derivation's, printed once by
:func:`~chainrule.codegen.report.latex.number_tex`; every formula is a sympy expression of the derivation
printed by :class:`~chainrule.codegen.report.latex.ReportPrinter`.

What a report holds depends on the network's size. A small one (every parameter's chain fits in
:data:`ROWS_MAX` rows) gets the forward pass unit by unit, the loss, and every parameter's chain,
output layer first, as one derives them by hand. A bigger one gets the forward pass and gradients
per layer, and the chains of the parameters named with ``--param`` (by default the weight with the
largest gradient in each layer). Both get the layer form.
"""

from __future__ import annotations

import dataclasses
import html
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import sympy

from chainrule.derive import kinds, penalty
from chainrule.derive.chain import ChainRule, Factor, ParamChain
from chainrule.derive.counts import count, the
from chainrule.derive.derivation import Derivation, resolve_params
from chainrule.derive.errors import ChainruleError
from chainrule.derive.network import ParamRef
from chainrule.derive.optimizers import GRAD, THETA, first_step_expr
from chainrule.derive.registry import X, Y, T

from chainrule.codegen.report.diagram import Diagram, build_diagram
from chainrule.codegen.report.document import (
    CDOT, CLOSE, COLON, E, MINUS, OPEN, PLUS, Bare, Code, Expr, Frac, Math, Name, Num, Prose, Script, Seq, Tok, Vec, Words,
    PARTIAL, activation, gradient, gradient_inline, hyper, joined, partial, updated,
)
from chainrule.codegen.report.equations import ROW_WIDTH, Display, Row, equation, math_pieces, product, scaled, total
from chainrule.codegen.report.mathml import CLOSE as CLOSE_MO, OPEN as OPEN_MO
from chainrule.codegen.report.latex import escape_text, width
from chainrule.codegen.report.layers import layer_displays, spec_rows, SpecRow
from chainrule.codegen.report.maps import deltas_display, forward_maps, pool_rows, positions_display
from chainrule.codegen.report import recurrence
from chainrule.codegen.report.unrolled import unrolled_diagram

TEMPLATE = "report.tex.j2"
#: A report lists every parameter's chain when they take at most this many rows (about 40
#: pages); past it, one weight per layer (or those asked for).
ROWS_MAX = 800
#: At most this many ``--param`` chains in one report.
PARAMS_MAX = 32


@dataclass(frozen=True)
class Setting:
    """A row of the spec table below the layers: ``label`` and its ``value``."""

    label: Prose
    value: Prose


@dataclass(frozen=True)
class ParamSection:
    """One parameter's derivative: heading, a sentence, then its displays."""

    heading: Prose
    intro: Prose
    displays: tuple[Display | Table, ...]


@dataclass(frozen=True)
class Table:
    """A table of numbers laid out beside displays: a sentence, the header, the rows (the first
    cell of each names it), a note. A batch's values, a column per sample."""

    caption: Prose
    header: tuple[Prose, ...]
    rows: tuple[tuple[Prose, ...], ...]
    note: Prose = Prose()


#: At most this many samples (columns) in one table: more are laid out in further tables.
SAMPLE_COLUMNS = 5
#: At most this many rows in one table (a table does not break across pages): more go on.
TABLE_ROWS = 36
#: A table's width on the page in average characters of its small type (17 cm at about 5 pt a
#: character), and what each column adds beside its widest number (the space between columns).
TABLE_WIDTH, TABLE_GAP = 92.0, 2.4


def _label_width(label: Prose) -> float:
    return sum(width(p.tex()) if isinstance(p, Math) else len(str(p)) for p in label.parts)


def _column_blocks(labels: Sequence[Prose], values: Sequence[Sequence[float]]) -> list[range]:
    """The samples of each table: as many as fit the page's width beside the labels (numbers
    written with a power of ten are wider), at most :data:`SAMPLE_COLUMNS`."""
    samples = len(values[0]) if values else 0
    used = max((_label_width(x) for x in labels), default=0.0)
    blocks: list[range] = []
    start, total = 0, used
    for k in range(samples):
        column = max(width(Num(row[k]).tex()) for row in values) + TABLE_GAP
        if k > start and (k - start >= SAMPLE_COLUMNS or total + column > TABLE_WIDTH):
            blocks.append(range(start, k))
            start, total = k, used
        total += column
    return blocks + ([range(start, samples)] if samples else [])


def sample_tables(caption: Prose, labels: Sequence[Prose], values: Sequence[Sequence[float]], first: int = 1, note: Prose = Prose()) -> tuple[Table, ...]:
    """``values[r][k]`` (row ``r``, sample ``first + k``) as tables of at most
    :data:`SAMPLE_COLUMNS` samples that fit the page and :data:`TABLE_ROWS` rows, the caption
    on the first."""
    tables: list[Table] = []
    for columns in _column_blocks(labels, values):
        header = (Prose(),) + tuple(Prose(f"sample {first + k}") for k in columns)
        for top in range(0, len(labels), TABLE_ROWS):
            rows = tuple((labels[r],) + tuple(Prose(Num(values[r][k])) for k in columns) for r in range(top, min(top + TABLE_ROWS, len(labels))))
            tables.append(Table(caption if not tables else Prose(), header, rows))
    if tables and note:
        tables[-1] = dataclasses.replace(tables[-1], note=note)
    return tuple(tables)


def sample_loss(k: int | None = None) -> Math:
    """E_k, sample k's own loss (``k`` None: the letter k)."""
    script = Tok("k", '<mi class="it">k</mi>') if k is None else Tok(str(k), f"<mn>{k}</mn>")
    return Script(E, script, sup=False)


def inline_partial(of: Math, wrt: Math) -> Math:
    """∂of/∂wrt with a slash, for a table's rows."""
    return Seq(PARTIAL, of, Tok("/", "<mo lspace='0' rspace='0'>/</mo>"), PARTIAL, wrt)


def _reduced_display(d: Derivation, lhs: Math, parts: Sequence[Math], values: Sequence[float], total_value: float, caption: Prose) -> Display:
    """``lhs = 1/N (part_1 + ... + part_N) = 1/N (v_1 + ... + v_N) = total`` (without the 1/N
    for a sum)."""
    symbols, numbers = _reduced_steps(d, parts, values)
    return Display(caption, equation(lhs, [symbols, numbers, [Num(total_value)]]))


def _reduced_steps(d: Derivation, parts: Sequence[Math], values: Sequence[float]) -> tuple[list[Math], list[Math]]:
    """``1/N (part_1 + ... + part_N)`` and ``1/N (v_1 + ... + v_N)`` (without the 1/N for a sum)."""
    scale = sympy.Rational(1, len(values)) if d.network.spec.reduction == "mean" else sympy.Integer(1)
    numbers = [Seq(MINUS, Num(abs(v))) if i and v < 0 else Num(v) for i, v in enumerate(values)]  # total() takes a sign given
    return scaled(list(parts), scale), scaled(numbers, scale)


@dataclass(frozen=True)
class ReportContext:
    """What ``report.tex.j2`` and ``report.html.j2`` lay out; see the module docstring."""

    name: Prose
    spec_file: Prose
    template: Prose
    description: Prose
    layers: tuple[SpecRow, ...]
    settings: tuple[Setting, ...]
    diagram: Diagram
    forward_intro: Prose
    forward: tuple[Display | Table, ...]
    loss: tuple[Display, ...]
    backward_intro: Prose
    params: tuple[ParamSection, ...]
    layer_intro: Prose
    layer_form: tuple[Display, ...]
    training: "Training | None" = None
    batch: bool = False  # a batch of several samples: its values are in tables, a column per sample


@dataclass(frozen=True)
class Training:
    """``report --steps N``: the loss (and the asked-for parameters) after steps 0, 1, ..., N
    (every step up to 20, else 0-10, each power of ten and the last), a row per step."""

    intro: Prose
    header: tuple[Prose, ...]
    rows: tuple[tuple[Prose, ...], ...]


#: At most this many parameters get a column in the steps table (the page's width).
STEP_COLUMNS = 4


def training(d: Derivation, steps, params: Sequence[str]) -> Training:
    """The steps table of ``steps`` (:class:`~chainrule.codegen.steps.Steps`), with a column
    for each of the first :data:`STEP_COLUMNS` names in ``params``."""
    spec = d.network.spec
    names = list(params)[:STEP_COLUMNS]
    columns = [steps.names.index(name) for name in names]
    header = (Prose("step"), Prose(E), *(Prose(Name(n)) for n in names))
    rows, previous = [], -1
    for k in steps.shown:  # the rows derive --steps shows
        if k != previous + 1:  # steps left out
            rows.append((Prose("..."),) + (Prose(),) * (len(header) - 1))
        rows.append((Prose(str(k)), Prose(Num(steps.losses[k])), *(Prose(Num(steps.theta[k, c])) for c in columns)))
        previous = k
    intro = Prose(f"{count(steps.count, 'step')} of {spec.optimizer.kind} on the {'batch' if d.batch else 'sample'}, taken by the emitted trainer in float64 "
                  f"(row 0 is the network before any step; row 1 its parameters after the one step shown above).")
    return Training(intro, header, tuple(rows))


# ---------------------------------------------------------------------------------------------
# The whole report


def build_report_context(d: Derivation, spec_path: str, params: Sequence[str] = (), steps=None) -> ReportContext:
    """The report of ``d``.

    Args:
        d: the derivation.
        spec_path: the spec file (only its name is written).
        params: parameters whose chains are shown; a small network shows all of them by default,
            a big one the weight with the largest gradient in each layer.
        steps: ``report --steps N``'s :class:`~chainrule.codegen.steps.Steps`, shown as a table
            (with a column for each of the first ``params``), or None.

    Raises:
        ChainruleError: an unknown or repeated ``--param`` name, or too many of them.
    """
    spec = d.network.spec
    if len(params) > PARAMS_MAX:
        raise ChainruleError(spec.source, "--param", f"expected at most {PARAMS_MAX} parameters in one report, got {len(params)}")
    every = not params and d.small and _rows(d, list(d.chains)) <= ROWS_MAX
    names = _chosen(d, params, every)
    d = _with_chains(d, names)
    firsts = {}  # each layer's first chain from its own deltas works them
    for name in names:
        chain = d.chains[name]
        if chain.cut_layer is not None and chain.cut_layer == chain.param.layer:
            firsts.setdefault(chain.param.layer, name)
    sections = tuple(param_section(d, name, name in firsts.values()) for name in names)
    return ReportContext(
        name=Prose(spec.name),
        spec_file=Prose(Code(spec_path.replace("\\", "/").rsplit("/", 1)[-1])),
        template=Prose(Code(TEMPLATE)),
        description=Prose(spec.description),
        layers=spec_rows(d),
        settings=_settings(d),
        diagram=unrolled_diagram(d) if recurrence.is_sequence(d) else build_diagram(d),
        forward_intro=recurrence.forward_intro(d) if recurrence.is_sequence(d) else _forward_intro(d),
        forward=_forward(d),
        loss=recurrence.loss_steps(d) if recurrence.small_sequence(d) else batch_loss_displays(d) if d.batch else loss_displays(d) if d.small else (),
        backward_intro=recurrence.backward_intro(d, _backward_intro(d, every, bool(params))) if recurrence.is_sequence(d) else _backward_intro(d, every, bool(params)),
        params=sections,
        layer_intro=Prose(
            "The same derivatives for whole layers at once, with the vectors and matrices named as in the "
            "emitted trainer: ", Tok(r"\odot", "<mo>⊙</mo>"), " is the elementwise product, ",
            Tok(r"\mathbf{a}^{\top}", '<msup><mi class="bf" mathvariant="normal">a</mi><mo>⊤</mo></msup>'), " a transpose."
            + (f" On the batch, each delta has a column per sample, and the gradient matrices are the {spec.reduction} over the samples." if d.batch else "")
        ),
        layer_form=layer_displays(d),
        training=None if steps is None else training(d, steps, params),
        batch=d.batch,
    )


def _forward(d: Derivation) -> tuple[Display | Table, ...]:
    """The forward pass: unit by unit (small), step by step (a small rnn), else per layer."""
    if recurrence.small_sequence(d):
        return recurrence.forward_steps(d)
    if d.small:
        return batch_forward(d) if d.batch else forward_displays(d) + maps_forward(d)
    return layer_summary(d) + maps_forward(d)


def _chosen(d: Derivation, params: Sequence[str], every: bool) -> list[str]:
    """The parameters whose chains the report shows, in report order (output layer first)."""
    net = d.network
    if params:
        refs = resolve_params(net, params)
        seen: set[str] = set()
        for ref in refs:
            if ref.name in seen:
                raise ChainruleError(net.spec.source, "--param", f"{ref.name!r} is named twice")
            seen.add(ref.name)
    elif every:
        refs = list(net.parameters())
    else:
        refs = [_largest_weight(d, l) for l in net.parameter_layers]
    order = {ref.name: i for i, ref in enumerate(refs)}
    return [ref.name for ref in sorted(refs, key=lambda r: (-r.layer, order[r.name]))]


def _largest_weight(d: Derivation, l: int) -> ParamRef:
    """Layer ``l``'s weight with the largest |dE/dw| on the sample (the first such in naming
    order): the one whose chain shows the most."""
    grid = np.abs(d.sample.dW[l - 1])
    grid = grid.reshape(grid.shape[0], -1)  # a kernel [out, in, kh, kw]: a row per output channel
    r, c = np.unravel_index(int(np.argmax(grid)), grid.shape)
    name = d.network.weight_name(l, int(r), int(c))
    return ParamRef(name, l, "weight", int(r), int(c))


def _with_chains(d: Derivation, names: Sequence[str]) -> Derivation:
    """``d`` with the scalar chains of ``names`` (a big network's derivation has none)."""
    missing = [n for n in names if n not in d.chains]
    if not missing:
        return d
    engine = ChainRule(d.network, d.layers)
    chains = dict(d.chains)
    for ref in resolve_params(d.network, missing):
        chains[ref.name] = engine.chain(ref)
    return dataclasses.replace(d, chains=chains)


def _rows(d: Derivation, names: Sequence[str]) -> int:
    """About how many displayed rows the chains of ``names`` take."""
    rows = 0
    for name in names:
        chain = d.chains[name]
        factors = {(f.of, f.wrt) for p in chain.paths for f in p.factors}
        rows += len(factors) + 2 * len(chain.paths) + 6
    return rows


# ---------------------------------------------------------------------------------------------
# The spec table


def _settings(d: Derivation) -> tuple[Setting, ...]:
    spec, net = d.network.spec, d.network.per_step  # a sequence's: the names at any step
    # In the spec's own symbols (its first output and target): letters of our own could clash.
    out, target = net.out(net.depth, 0), net.target(0)
    loss = Expr(net.per_output_loss().xreplace({Y: out, T: target}))
    kind = spec.loss.name if spec.loss.formula is None else "formula"
    text = Prose(f"{kind}: ", loss, " for the output ", Name(out.name), " and its target ", Name(target.name))
    if net.sizes[-1] > 1:
        over = "averaged over" if net.loss_scale != 1 else "summed over"
        text += f", likewise for each output, {over} {the(net.sizes[-1], 'output')}"
    if spec.sequence:
        text += "; at each step that has targets, summed over those steps"
    if spec.loss.l2:
        text += Prose("; plus the L2 penalty ", Expr(penalty.L2 / 2), " times the sum of the squared weights (biases not), ",
                      Seq(Expr(penalty.L2), Tok(" = ", "<mo>=</mo>"), Num(spec.loss.l2)))
    rows = [Setting(Prose("loss"), text)]
    equals = Tok(" = ", "<mo>=</mo>")
    settings = [Prose(Seq(hyper(k), equals, Num(v))) for k, v in spec.optimizer.hyper if v != 0 or k == "lr"]
    rows.append(Setting(Prose("optimizer"), Prose(f"{spec.optimizer.kind}, ") + joined(", ", settings) + "; one step from a zero state"))
    for i, group in enumerate(spec.optimizer.groups):
        own = joined(", ", [Prose(Seq(hyper(k), equals, Num(v))) for k, v in group.hyper])
        rows.append(Setting(Prose(f"group {i + 1}"), Prose(f"{', '.join(group.params)}: ") + own))
    if d.batch:
        rows.append(Setting(Prose("samples"), Prose(f"a batch of {d.values.samples} (a column each in the tables below); ", E,
                                                    f" is the {spec.reduction} of the samples' own losses")))
    else:
        rows.append(Setting(Prose("sample"), recurrence.sample_prose(d) if recurrence.is_sequence(d) else _sample(d)))
    if spec.naming.value and not any(l.weight_names for l in spec.layers):
        rows.append(Setting(Prose("naming"), Prose(spec.naming.value)))
    return tuple(rows)


#: Past this many inputs (or targets), the sample line lists the first three, the last, and
#: the few that differ from all the others (a one-hot target's 1).
LISTED_MAX = 8
#: At most this many such exceptions are listed.
EXCEPTIONS_MAX = 4


def _sample(d: Derivation) -> Prose:
    spec = d.network.spec
    inputs = _listed(spec.inputs, d.values.x, "inputs")
    targets = _listed(spec.targets, d.values.t, "targets")
    seeded = f" (seeded from seed {spec.seed}: the spec gives no sample)" if d.values.seeded_sample else ""
    return Prose("inputs ") + inputs + "; targets " + targets + seeded


def _listed(names: Sequence[str], values: np.ndarray, noun: str) -> Prose:
    """``name = value`` for each; past :data:`LISTED_MAX`, the first three, the last and those
    that differ from a value most of the others hold, with ``\\dots`` for the gaps and a note of
    what the gaps hold."""
    numbers = [float(v) for v in values]
    pairs = [Prose(Seq(Name(n), Tok(" = ", "<mo>=</mo>"), Num(v))) for n, v in zip(names, numbers)]
    if len(pairs) <= LISTED_MAX:
        return joined(", ", pairs)
    common = max(set(numbers), key=numbers.count)
    odd = [i for i, v in enumerate(numbers) if v != common]
    shown = {0, 1, 2, len(pairs) - 1}
    note = Prose(f"{len(pairs):,} {noun}")
    if len(odd) <= EXCEPTIONS_MAX < numbers.count(common):
        shown |= set(odd)
        note += Prose("; those not listed are ", Bare(Num(common)))
    out: list[Prose] = []
    for i in sorted(shown):
        if out and i - 1 not in shown:
            out.append(Prose("…"))
        out.append(pairs[i])
    return joined(", ", out) + " (" + note + ")"


# ---------------------------------------------------------------------------------------------
# The forward pass and the loss, unit by unit


#: Activations written by name in the forward pass (their definition is in the spec table).


def _forward_intro(d: Derivation) -> Prose:
    if d.small and d.batch:
        return Prose(
            f"On each of the {d.values.samples} samples, a column each: its inputs and targets, each unit's weighted sum of the "
            "outputs before it and its activation (computed as the layer form below writes them), and the sample's own loss."
        )
    if d.batch:
        return Prose(
            f"{d.network.parameter_count:,} parameters on a batch of {d.values.samples}: the forward pass is given per layer, as the "
            "smallest, mean and largest entry of each vector over every sample (the layer form below says how each is computed)."
        )
    if d.small:
        return Prose("Each unit's weighted sum of the outputs before it, then its activation: the formula, the numbers put in, the result.")
    return Prose(
        f"{d.network.parameter_count:,} parameters: the forward pass is given per layer, as the smallest, mean and largest "
        "entry of each vector (the layer form below says how each is computed)."
    )


def _shape_mathml(size: str) -> str:
    """``32`` or ``1×4×4`` as one MathML element."""
    numbers = "<mo>×</mo>".join(f"<mn>{n}</mn>" for n in size.split("×"))
    return numbers if "×" not in size else f"<mrow>{numbers}</mrow>"


def maps_forward(d: Derivation) -> tuple[Display, ...]:
    """A network over maps: its small maps and vectors with their numbers (:func:`forward_maps`)."""
    return forward_maps(d) if d.network.spec.spatial else ()


def batch_forward(d: Derivation) -> tuple[Table, ...]:
    """A batch's forward pass as tables, a column per sample: the inputs and targets (when at
    most :data:`LISTED_MAX` of each), every unit's net and out layer by layer, each sample's E_k."""
    net, spec = d.network, d.network.spec
    labels: list[Prose] = []
    values: list[list[float]] = []
    X, T = d.values.X, d.values.T
    for names, data in ((spec.inputs, X), (spec.targets, T)):
        if len(names) <= LISTED_MAX:
            labels += [Prose(Name(n)) for n in names]
            values += [list(data[:, c]) for c in range(len(names))]
    for l in range(1, net.depth + 1):
        parts = ((d.sample.nets[l - 1], net.net), (d.sample.outs[l], net.out)) if net.has_parameters(l) else ((d.sample.outs[l], net.out),)
        for table, unit in parts:  # a layer without weights has no nets
            for r in range(net.sizes[l]):
                labels.append(Prose(Name(unit(l, r).name)))
                values.append(list(table[:, r]))
    labels.append(Prose(sample_loss(None)))
    values.append(list(d.sample_losses))
    return sample_tables(Prose(), labels, values)


def forward_displays(d: Derivation) -> tuple[Display, ...]:
    """One display per layer: each unit's net (formula, numbers, value), then its output."""
    net = d.network
    displays = []
    for l in range(1, net.depth + 1):
        rows: list[Row] = []
        for r in range(net.sizes[l] if net.has_parameters(l) else 0):  # a layer without weights has no nets
            rows += _net_rows(d, l, r)
        spatial = net.spec.layers[l - 1].kind != "dense" and not net.has_parameters(l) and net.spec.layers[l - 1].kind != "activation"
        for r in range(net.sizes[l]):
            rows += pool_rows(d, l, r) if spatial else _out_rows(d, l, r)
        without = ", no weights: applied to the outputs of " + (f"layer {net.layer_name(l - 1)}" if l > 1 else "the inputs") if not net.has_parameters(l) else ""
        what = d.layers[l - 1].activation if len(d.layers[l - 1].activation) <= 24 else "formula"
        if spatial:  # a pool's or flatten's units, of the outputs before it
            before = f"layer {net.layer_name(l - 1)}" if l > 1 else "the inputs"
            what, without = net.spec.layers[l - 1].kind, f": {'the maps' if net.spec.layers[l - 1].kind == 'flatten' else 'each window'} of the outputs of {before}"
        elif net.spec.layers[l - 1].window is not None:
            what = f"{net.spec.layers[l - 1].kind}, {what}"
        caption = Prose(f"Layer {net.layer_name(l)} ({what}{without}):")
        displays.append(Display(caption, tuple(rows)))
    return tuple(displays)


def _net_rows(d: Derivation, l: int, r: int) -> tuple[Row, ...]:
    """``net = sum of weight * input + bias`` as the layer's kind defines it (a dense unit's every
    input, a convolution's receptive field under its kernel), then the numbers, then the value."""
    net, env = d.network, d.env
    times = Tok(r" \cdot ", "<mo>·</mo>")
    terms = kinds.net_terms(net, l, r)
    symbols: list[Math] = [Seq(Name(ref.name), times, Name(net.out(l - 1, c).name)) for ref, c in terms]
    numbers: list[Math] = [Seq(Num(env[ref.name], operand=True), times, Num(env[net.out(l - 1, c).name], operand=True)) for ref, c in terms]
    bias = kinds.net_bias(net, l, r)
    if bias is not None:
        symbols.append(Name(bias.name))
        numbers.append(Num(env[bias.name], operand=True))
    result = Num(env[net.net(l, r).name])
    return equation(Name(net.net(l, r).name), [total(symbols), total(numbers), [result]])


def _out_rows(d: Derivation, l: int, r: int) -> tuple[Row, ...]:
    """``out = f(net) = f with the number put in = value``; a jump (relu) is applied by name."""
    net, env = d.network, d.env
    out, unit_net = net.out(l, r), net.activation_input(l, r)
    value: list[Math] = [Num(env[out.name])]
    if net.is_softmax(l):
        return equation(Name(out.name), _softmax_steps(d, l, r) + [value])
    function = net.spec.layers[l - 1].activation
    definition = net.activation(l).xreplace({X: unit_net})
    numbers = {unit_net.name: Num(env[unit_net.name], operand=True)}
    if function.expression is not None:
        steps = [math_pieces(definition), math_pieces(definition, names=numbers)]
    else:
        applied = activation(function)
        steps = [[_applied(applied, Name(unit_net.name))]]
        if definition.has(sympy.Piecewise):
            steps.append([_applied(applied, numbers[unit_net.name])])
        elif not definition.is_Symbol:
            steps.append(math_pieces(definition, names=numbers))
    return equation(Name(out.name), steps + [value])


LEFT, RIGHT = Tok(r"\left(", OPEN_MO), Tok(r"\right)", CLOSE_MO)


def _applied(function: Math, argument: Math) -> Math:
    """``f(x)`` with parentheses sized to the argument."""
    return Seq(function, Tok("", "<mo>\u2061</mo>"), LEFT, argument, RIGHT)


def _softmax_steps(d: Derivation, l: int, r: int) -> list[list[Math]]:
    net, env = d.network, d.env
    nets = [net.activation_input(l, j).name for j in range(net.sizes[l])]
    e = Tok("e", "<mi>e</mi>")

    def power(x: Math) -> Math:
        return Script(e, x, sup=True)

    def plus(items: list[Math]) -> Math:
        return Seq(*[Seq(Tok(" + ", "<mo>+</mo>"), x) if i else x for i, x in enumerate(items)])

    own = Name(nets[r])
    if len(nets) <= 4:
        below = plus([power(Name(n)) for n in nets])
        numbers = plus([power(Num(env[n], operand=True)) for n in nets])
        return [[Frac(power(own), below)], [Frac(power(Num(env[nets[r]], operand=True)), numbers)]]
    word, layer = ("net", net.layer_name(l)) if net.has_parameters(l) else ("out", net.layer_name(l - 1)) if l > 1 else ("x", "")
    total_net = Script(Tok(rf"\mathrm{{{word}}}", f"<mi>{word}</mi>"), Tok(f"{escape_text(layer)}j", f'<mi class="it">{html.escape(layer)}j</mi>'), sup=False)
    return [[Frac(power(own), Seq(Tok(r"\sum_{j} ", "<munder><mo>∑</mo><mi>j</mi></munder>"), power(total_net)))]]


def loss_displays(d: Derivation) -> tuple[Display, ...]:
    """E: the definition, the numbers put in, the value; broken between the outputs' terms."""
    net, env = d.network, d.env
    terms = [net.per_output_loss().xreplace({Y: net.out(net.depth, k), T: net.target(k)}) for k in range(net.sizes[-1])]
    numbers = {s.name: Num(env[s.name], operand=True) for term in terms for s in term.free_symbols}
    symbolic = scaled([Expr(t) for t in terms], net.loss_scale)
    substituted = scaled([Expr(t, names=numbers) for t in terms], net.loss_scale)
    if not net.spec.loss.l2:
        rows = equation(E, [symbolic, substituted, [Num(d.loss)]])
        return (Display(Prose(f"The loss over {the(net.sizes[-1], 'output')}:"), rows),)
    symbolic.append(Seq(PLUS, penalty_math(d)))
    substituted.append(Seq(PLUS, Num(d.sample.penalty)))
    rows = equation(E, [symbolic, substituted, [Num(d.loss)]])
    return (Display(Prose(f"The loss over {the(net.sizes[-1], 'output')}, with the L2 penalty on the weights (biases not):"), rows),)


#: The penalty's sum of squares lists at most this many weights before it elides.
PENALTY_SHOWN = 6


def penalty_math(d: Derivation) -> Math:
    """``l2/2 (w1^2 + w2^2 + ... + w8^2)``: the L2 penalty of E (a big network: per matrix)."""
    net = d.network
    if d.small:
        squares: list[Math] = [Expr(penalty.W**2, names={penalty.W.name: Name(ref.name)}) for ref in net.parameters() if ref.is_weight]
    else:
        squares = [Seq(Tok(r"\lVert ", "<mo>‖</mo>"), Vec(form.weight), Tok(r"\rVert^{2}", "<msup><mo>‖</mo><mn>2</mn></msup>")) for form in d.layers if form.weight is not None]
    if len(squares) > PENALTY_SHOWN:
        squares = squares[:2] + [Tok(r"\dots", "<mo>…</mo>")] + squares[-1:]
    return Seq(Expr(penalty.L2 / 2), Tok(r" \left(", OPEN_MO), *total(squares), Tok(r"\right)", CLOSE_MO))


def batch_loss_displays(d: Derivation) -> tuple[Display, ...]:
    """A batch's E: each sample's loss E_k defined as one sample's (small networks), then their
    mean or sum with the numbers."""
    net, n = d.network, d.values.samples
    displays = []
    if d.small:
        terms = [net.per_output_loss().xreplace({Y: net.out(net.depth, k), T: net.target(k)}) for k in range(net.sizes[-1])]
        rows = equation(sample_loss(None), [scaled([Expr(t) for t in terms], net.loss_scale)])
        displays.append(Display(Prose("Each sample's loss, with its own outputs and targets:"), rows))
    losses = [sample_loss(k) for k in range(1, n + 1)]
    if not net.spec.loss.l2:
        caption = Prose(f"The loss of the batch, the {net.spec.reduction} of its {n} samples' losses:")
        displays.append(_reduced_display(d, E, losses, d.sample_losses, d.loss, caption))
        return tuple(displays)
    # the L2 penalty, once, after the reduction: one equation, so E names one value
    caption = Prose(f"The loss of the batch, the {net.spec.reduction} of its {n} samples' losses, plus the L2 penalty on the weights (biases not), added once:")
    symbols, numbers = _reduced_steps(d, losses, d.sample_losses)
    penalty_number = Seq(PLUS, Num(d.sample.penalty))
    rows = equation(E, [symbols + [Seq(PLUS, penalty_math(d))], numbers + [penalty_number], [Num(d.data_loss), penalty_number], [Num(d.loss)]])
    displays.append(Display(caption, rows))
    return tuple(displays)


# ---------------------------------------------------------------------------------------------
# A big network: per layer


def layer_summary(d: Derivation) -> tuple[Display, ...]:
    """Per layer: the smallest, mean and largest entry of net and out; then E and the gradient
    matrices' norms."""
    rows: list[Row] = []
    gap = Tok(r",\ ", "<mo>,</mo><mspace width=\"0.5em\"></mspace>")
    for form, nets, outs in zip(d.layers, d.sample.nets, d.sample.outs[1:]):
        if not d.batch:  # a batch: the entries on every sample
            nets, outs = nets[0], outs[0]
        for name, vector in ((form.net, nets), (form.out, outs)) if form.weight else ((form.out, outs),):
            summary = Seq(
                Tok(r"\min ", "<mi>min</mi><mspace width=\"0.2em\"></mspace>"), Num(vector.min()), gap,
                Tok(r"\operatorname{mean} ", "<mi>mean</mi><mspace width=\"0.2em\"></mspace>"), Num(vector.mean()), gap,
                Tok(r"\max ", "<mi>max</mi><mspace width=\"0.2em\"></mspace>"), Num(vector.max()),
            )
            size = str(vector.shape[-1]) if form.window is None else "×".join(map(str, form.window.out_shape if name == form.out or form.weight else form.window.in_shape))
            if recurrence.is_sequence(d):  # a sequence's vectors, step by step: steps × units
                size = f"{d.program.steps}×{form.size}"
            space = Script(Tok(r"\in \mathbb{R}", '<mo>∈</mo><mi mathvariant="normal">ℝ</mi>'), Tok(size.replace("×", r"\times "), _shape_mathml(size)), sup=True)
            rows.append(Row(Seq(Vec(name), Tok(" ", ""), space), COLON, summary))
    if d.network.spec.loss.l2:
        rows.append(Row(E, Tok("=", "<mo>=</mo>"), Seq(Num(d.data_loss), PLUS, penalty_math(d), Tok(" = ", "<mo>=</mo>"), Num(d.loss))))
    else:
        rows.append(Row(E, Tok("=", "<mo>=</mo>"), Num(d.loss)))
    gradients: list[Row] = []
    norm = Tok(r"\lVert\cdot\rVert = ", '<mo fence="true" stretchy="false" lspace="0" rspace="0">‖</mo><mo>·</mo><mo fence="true" stretchy="false" lspace="0" rspace="0">‖</mo><mo>=</mo>')
    largest = Tok(r"\max\lvert\cdot\rvert = ", '<mi>max</mi><mo fence="true" stretchy="false" lspace="0.17em" rspace="0">|</mo><mo>·</mo><mo fence="true" stretchy="false" lspace="0" rspace="0">|</mo><mo>=</mo>')
    for l, (form, dW, db) in enumerate(zip(d.layers, d.sample.dW, d.sample.db), start=1):
        matrices = d.network.weight_matrices(l, dW) if dW is not None else ()  # an rnn's W and U
        for name, matrix in (*matrices, (form.bias, db)):
            if name is None or matrix is None:
                continue
            summary = Seq(norm, Num(np.linalg.norm(matrix)), gap, largest, Num(np.max(np.abs(matrix))))
            gradients.append(Row(Seq(Tok(r"\partial E/\partial ", "<mi>∂</mi><mi>E</mi><mo lspace='0' rspace='0'>/</mo><mi>∂</mi>"), Vec(name)), COLON, summary))
    return (
        Display(Prose("Forward pass on the sample:" if not d.batch else f"Forward pass on the batch (each vector's entries on all {d.values.samples} samples):"), tuple(rows)),
        Display(Prose("The gradients (from the layer form below), by their norm and largest entry:"), tuple(gradients)),
    )


# ---------------------------------------------------------------------------------------------
# A parameter's chain


def _backward_intro(d: Derivation, every: bool, asked: bool) -> Prose:
    if every and d.batch:
        return Prose(
            "For every parameter, output layer first: the chain rule as a sum over the paths from ", E, " to the parameter, "
            "each path a product of local derivatives; the closed form; each factor's formula; on each sample, each factor's "
            f"value and the sample's gradient; their {d.network.spec.reduction}, the batch's gradient; and one step of the optimizer with it."
        )
    if every:
        return Prose(
            "For every parameter, output layer first: the chain rule as a sum over the paths from ", E, " to the parameter, "
            "each path a product of local derivatives; each factor's formula (the derivative of one unit's definition) and "
            "value; the product; the closed form; and one step of the optimizer."
        )
    if asked:
        return Prose("The chains of the parameters asked for (", Code("--param"), "), output layer first.")
    if d.small:
        lead = f"Every parameter's chain would fill about {_rows(d, list(d.chains)) // 20} pages: "
    else:
        lead = f"A network of {d.network.parameter_count:,} parameters: "
    return Prose(
        lead + "the chain of one weight per layer, the one with the largest ",
        Tok(r"\lvert\partial E/\partial w\rvert", '<mo stretchy="false" lspace="0" rspace="0">|</mo><mi>∂</mi><mi>E</mi><mo lspace="0" rspace="0">/</mo><mi>∂</mi><mi>w</mi><mo stretchy="false" lspace="0" rspace="0">|</mo>'),
        f" on the {'batch' if d.batch else 'sample'} (name others with ", Code("--param NAME"), ").",
    )


def param_section(d: Derivation, name: str, with_deltas: bool = True) -> ParamSection:
    """A parameter's chain: the factors, the paths, the closed form, the numbers, the update. A
    convolution's shared weight, whose chain starts at its own layer's deltas: the sum over its
    positions with the numbers, after the layer's deltas worked once (``with_deltas``: in this
    section; False: an earlier section of the report has them)."""
    chain = d.chains[name]
    if chain.cut_layer is not None and chain.cut_layer == chain.param.layer and not d.batch and d.network.spec.sequence:
        intro = Prose(f"{count(chain.paths_from_E, 'path')} from ", E, " to ", Name(name), "; as by hand, its gradient is taken from the deltas of "
                      f"layer {d.network.layer_name(chain.cut_layer)} at each step, a term for each step where it is used.")
        return ParamSection(Prose(gradient_inline(name)), intro, (recurrence.steps_display(d, chain), _update_display(d, chain)))
    if chain.cut_layer is not None and chain.cut_layer == chain.param.layer and not d.batch:
        intro = Prose(f"{count(chain.paths_from_E, 'path')} from ", E, " to ", Name(name), "; as by hand, its gradient is taken from the deltas of "
                      f"layer {d.network.layer_name(chain.cut_layer)}, a term for each position where it is used")
        displays = [deltas_display(d, chain) if with_deltas else None, positions_display(d, chain), _update_display(d, chain)]
        return ParamSection(Prose(gradient_inline(name)), intro + ".", tuple(x for x in displays if x is not None))
    paths = len(chain.paths)
    intro = Prose(f"{count(paths, 'path')} from ", E, " to ", Name(name))
    if chain.cut_layer is not None:
        layer = d.network.layer_name(chain.cut_layer)
        delta = Tok(r"\delta_u = \partial E/\partial \mathrm{net}_u", "<msub><mi>δ</mi><mi>u</mi></msub><mo>=</mo><mi>∂</mi><mi>E</mi><mo lspace='0' rspace='0'>/</mo><mi>∂</mi><msub><mi>net</mi><mi>u</mi></msub>")
        intro = Prose(
            f"{count(chain.paths_from_E, 'path')} from ", E, " to ", Name(name), "; as by hand, they are taken from the deltas of "
            f"layer {layer} (", delta, f", from the layer form): {count(paths, 'path')}"
        )
    if d.batch:
        displays = [_chain_display(d, chain), _factor_display(d, chain), *_factor_tables(d, chain), _batch_gradient_display(d, chain), _update_display(d, chain)]
    else:
        displays = [_chain_display(d, chain), _factor_display(d, chain), _paths_display(d, chain), positions_display(d, chain), _update_display(d, chain)]
    return ParamSection(Prose(gradient_inline(name)), intro + ".", tuple(x for x in displays if x is not None))


#: A batch's factor tables list each path's product up to this many paths.
PATH_ROWS_MAX = 8


def _factor_tables(d: Derivation, chain: ParamChain) -> tuple[Table, ...]:
    """On each sample of a batch, a column each: every factor's value, each path's product (up to
    :data:`PATH_ROWS_MAX` paths), and the sample's own gradient dE_k/dθ (their sum)."""
    rows = range(d.values.samples)
    factors = _distinct_factors(chain)
    labels = [Prose(inline_partial(Name(f.of.name), Name(f.wrt.name))) for f in factors]
    values = [[d.factor_value(f, row) for row in rows] for f in factors]
    paths = len(chain.paths)
    if 1 < paths <= PATH_ROWS_MAX:
        products = [d.path_values(chain, row) for row in rows]
        labels += [Prose(f"path {i + 1}") for i in range(paths)]
        values += [[products[row][i] for row in rows] for i in range(paths)]
    labels.append(Prose(inline_partial(sample_loss(None), Name(chain.param.name))))
    values.append([d.sample_gradient(chain, row) for row in rows])
    what = "the product of its factors" if paths == 1 else "the sum of its paths' products" if paths <= PATH_ROWS_MAX else f"the sum of its {paths:,} paths' products"
    caption = Prose("On each sample: each factor's value, then the sample's own gradient, ", what, ":")
    return sample_tables(caption, labels, values)


def _batch_gradient_display(d: Derivation, chain: ParamChain) -> Display:
    name = chain.param.name
    n = d.values.samples
    values = [d.sample_gradient(chain, row) for row in range(n)]
    caption = Prose(f"The gradient of the batch, the {d.network.spec.reduction} of the {n} samples' gradients:")
    parts = [partial(sample_loss(k), Name(name)) for k in range(1, n + 1)]
    if chain.penalty == 0:
        return _reduced_display(d, gradient(name), parts, values, d.chain_gradient(chain), caption)
    # the L2 penalty's l2*w, once, after the reduction
    caption = Prose(f"The gradient of the batch, the {d.network.spec.reduction} of the {n} samples' gradients, and the L2 penalty's term once:")
    symbols, numbers = _reduced_steps(d, parts, values)
    term, term_numbers = Seq(PLUS, *math_pieces(chain.penalty, last=[chain.symbol])), Seq(PLUS, *_penalty_numbers(d, chain))
    reduced = Num(d.reduce(values), operand=True)
    steps = [symbols + [term], numbers + [term_numbers], [reduced, term_numbers], [Num(d.chain_gradient(chain))]]
    return Display(caption, equation(gradient(name), steps))  # one equation: dE/dw names one value


def _factor_name(f: Factor) -> Math:
    return partial(Name(f.of.name), Name(f.wrt.name))


def _chain_display(d: Derivation, chain: ParamChain) -> Display:
    """The chain of factor names, then of their forms (the closed form), then (one path) of
    their values and the product."""
    names: list[Math] = []
    times = Tok(r" \cdot ", "<mo>·</mo>")
    for i, path in enumerate(chain.paths):
        factors = [_factor_name(f) for f in path.factors]
        whole = Seq(*[Seq(times, f) if k else f for k, f in enumerate(factors)])
        # a path too long for a row (6 layers: 89 characters) is broken between its factors
        parts = [whole] if width(whole.tex()) <= ROW_WIDTH - 12 else product(factors)
        names += [Seq(PLUS, parts[0]) if i else parts[0], *parts[1:]]
    forms: list[Math] = []
    for i, path in enumerate(chain.paths):
        kept = [f.human for f in path.factors if f.human != 1] or [sympy.Integer(1)]
        path_pieces = [piece for n, h in enumerate(kept) for piece in _factor_pieces(h, first=not n)]
        forms += ([] if not i else [Seq(PLUS, path_pieces[0])]) + (path_pieces if not i else path_pieces[1:])
    penalised = chain.penalty != 0 and not d.batch  # a batch: each sample's chain; the penalty follows the reduction
    if penalised:  # the L2 penalty's term, l2*w, after the paths' sum: its own named term
        term = Seq(PLUS, *math_pieces(chain.penalty, last=[chain.symbol]))
        names, forms = names + [term], forms + [term]
    steps = [names, forms]
    if len(chain.paths) == 1 and not d.batch:
        values = product([Num(d.factor_value(f), operand=True) for f in chain.paths[0].factors])
        steps += [values + ([Seq(PLUS, *_penalty_numbers(d, chain))] if penalised else []), [Num(d.chain_gradient(chain))]]
    rows = equation(gradient(chain.param.name), steps, new_rows=(1, 2))
    numbers = len(chain.paths) == 1 and not d.batch
    return Display(Prose("The chain rule, then the closed form in the units' symbols" + (", then the numbers:" if numbers else
                                                                                         " (on each sample, with its own units):" if d.batch else ":")), rows)


def _distinct_factors(chain: ParamChain) -> list[Factor]:
    seen, out = set(), []
    for path in chain.paths:
        for f in path.factors:
            if (f.of, f.wrt) not in seen:
                seen.add((f.of, f.wrt))
                out.append(f)
    return out


def _factor_display(d: Derivation, chain: ParamChain) -> Display:
    rows: list[Row] = []
    notes = []
    for f in _distinct_factors(chain):
        steps: list[list[Math]] = []
        if f.derivative != f.human and not f.note:
            steps.append(math_pieces(f.derivative))
        steps.append(math_pieces(f.human))
        if not d.batch and f.human.free_symbols:  # a batch's values are in a table; a constant (1) is its own value
            numbers = {s.name: Num(d.env[s.name], operand=True) for s in f.human.free_symbols}
            if not f.human.is_Symbol:
                steps.append(math_pieces(f.human, names=numbers))
            steps.append([Num(d.factor_value(f))])
        rows += equation(_factor_name(f), steps)
        if f.note and f.note not in notes:
            notes.append(f.note)
    caption = Prose("Each factor: the derivative of one unit's definition, written in the outputs" + (":" if d.batch else ", with the numbers put in:"))
    return Display(caption, tuple(rows), Prose(" ".join(f"{n}." for n in notes)))


def _paths_display(d: Derivation, chain: ParamChain) -> Display | None:
    """For more than one path: each path's product, then their sum."""
    if len(chain.paths) == 1:
        return None
    values = d.path_values(chain)
    rows: list[Row] = []
    for i, (path, value) in enumerate(zip(chain.paths, values), start=1):
        factors = [Num(d.factor_value(f), operand=True) for f in path.factors]
        rows += equation(Words(f"path {i}"), [product(factors), [Num(value)]])
    terms = [Num(v) if not i else Seq(MINUS if v < 0 else PLUS, Num(abs(v))) for i, v in enumerate(values)]
    if chain.penalty != 0:  # the L2 penalty's l2*w, once
        terms.append(Seq(PLUS, *_penalty_numbers(d, chain)))
    rows += equation(gradient(chain.param.name), [terms, [Num(d.chain_gradient(chain))]])
    return Display(Prose("Each path's product, then their sum:"), tuple(rows))


def _penalty_numbers(d: Derivation, chain: ParamChain) -> list[Math]:
    """The penalty's term with its numbers put in: ``0.05 * 0.4``."""
    numbers = {s.name: Num(d.value(s), operand=True) for s in chain.penalty.free_symbols}
    return math_pieces(chain.penalty, names=numbers, last=[chain.symbol])


def _factor_pieces(expr: sympy.Expr, first: bool) -> list[Math]:
    """One factor of a product as pieces (``\\cdot`` in front unless first), in parentheses
    when it is a sum or negative."""
    parts = math_pieces(expr)
    if expr.is_Add or parts[0].tex().startswith("-"):
        parts = [Seq(OPEN, parts[0])] + parts[1:]
        parts[-1] = Seq(parts[-1], CLOSE)
    if not first:
        parts[0] = Seq(CDOT, parts[0])
    return parts


def _update_display(d: Derivation, chain: ParamChain) -> Display:
    ref = chain.param
    name = ref.name
    before = float(d.values.scalar(ref))
    if d.frozen(ref):
        rows = equation(updated(name), [[Name(name)], [Num(before)]])
        return Display(Prose("Frozen (the spec's ", Code("freeze"), "): the parameter keeps its value."), rows)
    settings = d.network.settings_of(ref)  # its group's settings where it is in one
    expr = first_step_expr(d.network.spec.optimizer.kind, settings)
    value = d.gradient(ref)
    symbols: dict[str, Math] = {THETA.name: Name(name), GRAD.name: gradient(name)}
    numbers: dict[str, Math] = {THETA.name: Num(before, operand=True), GRAD.name: Num(value, operand=True)}
    numbers.update({h: Num(v, operand=True) for h, v in settings.items()})
    steps = [math_pieces(expr, names=symbols, last=[GRAD]), math_pieces(expr, names=numbers, last=[GRAD]), [Num(d.updated(ref))]]
    return Display(Prose(f"One step of {d.network.spec.optimizer.kind}:"), equation(updated(name), steps))
