"""The report of a network with an rnn layer: the recurrence through time, step by step.

The layer program (:mod:`chainrule.derive.program`) holds an rnn's rules as statements in a loop
over the steps (``RecurrentAffine``, ``Previous``, ``Following``, ``Masked``); this module prints
them as people write them by hand, each vector at step t as ``v[t]``:

- the layer form: ``net_h[t] = W1 x[t] + U1 out_h[t-1] + b1``, BPTT's
  ``delta_h[t] = (W2^T delta_y[t] + U1^T delta_h[t+1]) ⊙ f'`` and each shared weight's gradient
  as the sum over the steps (:class:`StepMath`, a mixin of the report's program printer);
- for small networks (at most :data:`UNITS_MAX` units a layer and :data:`STEPS_MAX` steps) the
  forward pass step by step with the numbers put in, the loss per step, each delta per step and
  each gradient as its sum over the steps with the numbers (:func:`forward_steps`,
  :func:`loss_steps`, :func:`layer_numbers`);
- bigger ones get the report's per-layer summary.

Every number is the derivation's own evaluation of the layer program (:func:`step_values`); no
rule is derived here.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import sympy

from chainrule.derive import naming
from chainrule.derive.counts import count
from chainrule.derive.derivation import Derivation
from chainrule.derive.layers import LayerForm
from chainrule.derive.penalty import L2
from chainrule.derive.program import AtFirstStep, Backprop, Following, Masked, Op, Previous, Program
from chainrule.derive.registry import X, Y, T

from chainrule.codegen.report.document import (
    CDOT, EQUALS, ODOT, PLUS, Code, E, Expr, Math, Matrix, Name, Num, Prose, Script, Seq, Tok, Vec, activation, partial,
)
from chainrule.codegen.report.equations import Display, Row, equation, math_pieces, parenthesized, scaled, total
from chainrule.codegen.report.maps import sum_equation
from chainrule.codegen.report.mathml import CLOSE as CLOSE_MO, OPEN as OPEN_MO
from chainrule.codegen.terminal.program_text import per_step

#: A network whose layers have at most this many units, over at most this many steps, gets its
#: numbers step by step (forward, loss, deltas, each gradient's sum over the steps).
UNITS_MAX, STEPS_MAX = 3, 6

THIN = Tok(" ", '<mspace width="0.17em"></mspace>', " ")
LEFT, RIGHT = Tok(r"\left(", OPEN_MO), Tok(r"\right)", CLOSE_MO)
TOP = Tok(r"\top", "<mo>⊤</mo>")


def step_tok(step: str | int) -> Tok:
    """``[t]``, ``[t-1]``, ``[t+1]`` or ``[2]``: the step a vector is taken at."""
    text = str(step)
    if isinstance(step, int):
        inner = f"<mn>{step}</mn>"
    elif len(text) == 1:
        inner = f'<mi class="it">{text}</mi>'
    else:
        sign = "−" if text[1] == "-" else "+"
        inner = f'<mi class="it">{text[0]}</mi><mo>{sign}</mo><mn>{text[2:]}</mn>'
    return Tok(f"[{text}]", f'<mo stretchy="false">[</mo>{inner}<mo stretchy="false">]</mo>', f"[{text}]")


def at(base: Math, step: str | int) -> Math:
    """``base[step]``."""
    return Seq(base, step_tok(step))


def is_sequence(d: Derivation) -> bool:
    """Whether ``d``'s network reads sequences (it has an rnn layer)."""
    return bool(d.network.spec.sequence)


def small_sequence(d: Derivation) -> bool:
    """Whether the report gives ``d``'s numbers step by step (one sample, small layers, few steps)."""
    return is_sequence(d) and not d.batch and max(d.network.sizes) <= UNITS_MAX and d.program.steps <= STEPS_MAX


class StepMath:
    """The recurrence's operations as pieces of math: a mixin of the report's program printer
    (its ``program`` and ``pieces``); every vector with a value at each step is written ``v[t]``."""

    program: Program
    #: The step vectors are written at: ``"t"``, or a step's number (from 1).
    step: str | int = "t"

    def pieces(self, expr: sympy.Expr) -> list[Math]:  # noqa: D102 - the printer's
        raise NotImplementedError

    def shifted(self, by: int) -> str | int:
        """The step before (``by`` -1) or after (+1) :attr:`step`: ``t-1`` or a number."""
        return self.step + by if isinstance(self.step, int) else f"t{'-' if by < 0 else '+'}{abs(by)}"

    def vec(self, name: str) -> Math:
        """``name`` bold, at :attr:`step` where it has a value at each step."""
        return at(Vec(name), self.step) if per_step(self.program, name) else Vec(name)

    def step_names(self, expr: sympy.Expr) -> dict[str, Math]:
        """The math written for ``expr``'s vectors that have a value at each step (``out_h[t]``)."""
        return {s.name: self.vec(s.name) for s in expr.free_symbols if per_step(self.program, s.name)}

    def argument(self, expr: sympy.Expr) -> Math:
        """A vector or an operation on one, as one piece."""
        if isinstance(expr, sympy.Symbol):
            return self.vec(expr.name)
        parts = self.pieces(expr)
        return Seq(*[x for i, p in enumerate(parts) for x in ((Tok(" ", "", " "), p) if i else (p,))])

    def summed(self, inner: Math) -> Math:
        """``inner`` summed over the steps where the program has steps."""
        if not self.program.steps:
            return inner
        T_ = self.program.steps
        return Seq(Tok(rf"\sum_{{t=1}}^{{{T_}}} ", f'<munderover><mo>∑</mo><mrow><mi class="it">t</mi><mo>=</mo><mn>1</mn></mrow><mn>{T_}</mn></munderover>'), inner)

    def _RecurrentAffine(self, W, x, U, h, *bias) -> list[Math]:
        plus = Tok(" + ", "<mo>+</mo>")
        return [Seq(Vec(W.name), THIN, self.argument(x), plus, Vec(U.name), THIN, self.argument(h), *[y for b in bias for y in (plus, Vec(b.name))])]

    def _Previous(self, out, initial) -> list[Math]:
        return [at(Vec(out.name), self.shifted(-1))]

    def _Following(self, delta) -> list[Math]:
        return [at(Vec(delta.name), self.shifted(1))]

    def _AtFirstStep(self, delta) -> list[Math]:
        return [at(Vec(delta.name), 1)]

    def _Masked(self, expr, targets) -> list[Math]:
        return self.pieces(expr)


# ---------------------------------------------------------------------------------------------
# Numbers


def step_values(d: Derivation) -> dict[str, np.ndarray]:
    """Every vector of the layer program on the sample, as the derivation evaluates it: a
    sequence's vectors [steps, units] (sample 1's), parameters and gradients as they are."""
    held: dict = {}
    d.numbers.run(d.values.W, d.values.b, d.values.X, d.values.T, after=lambda statement, env: held.update(env=env))
    return {name: (value[0] if isinstance(value, np.ndarray) and value.ndim == 3 else value) for name, value in held["env"].items()}


def array(values: np.ndarray, transpose: bool = False) -> Math:
    """A value (one entry), a column (a vector) or a matrix of numbers; ``transpose``: a
    matrix's transpose, a vector as a row."""
    values = np.asarray(values, dtype=float)
    if values.size == 1:
        return Num(values.flat[0], operand=True)
    if values.ndim == 1:
        return Matrix([[Num(v) for v in values]] if transpose else [[Num(v)] for v in values])
    return Matrix([[Num(v) for v in row] for row in (values.T if transpose else values)])


def times(a: np.ndarray, b: Math) -> Math:
    """``a b``: a number times a number with a dot, a matrix before a vector side by side."""
    return Seq(array(a), CDOT if np.size(a) == 1 else THIN, b)


def value(values: np.ndarray) -> Math:
    """The result of a step: a number or a column."""
    values = np.asarray(values, dtype=float)
    return Num(values.flat[0]) if values.size == 1 else array(values)


def _applied(function: Math, argument: Math) -> Math:
    return Seq(function, Tok("", "<mo>\u2061</mo>"), LEFT, argument, RIGHT)


def _function(d: Derivation, form: LayerForm) -> Math:
    """The layer's activation by name (``tanh``; ``softmax``; ``f`` for a formula)."""
    if form.softmax:
        return Tok(r"\operatorname{softmax}", "<mi>softmax</mi>")
    function = d.network.spec.layers[form.index - 1].activation
    return activation(function) if function.expression is None else Tok("f", '<mi class="it">f</mi>')


def _net_rows(d: Derivation, form: LayerForm, v: dict[str, np.ndarray], t: int) -> tuple[Row, ...]:
    """``net[t] = W x[t] (+ U out[t-1]) (+ b)``, the numbers, the value."""
    previous = v[form.previous][t]
    symbols: list[Math] = [Seq(Vec(form.weight), THIN, at(Vec(form.previous), t + 1))]
    numbers: list[Math] = [times(v[form.weight], array(previous))]
    if form.recurrent is not None:
        before = v[form.out][t - 1] if t else v[form.initial]
        symbols.append(Seq(Vec(form.recurrent), THIN, at(Vec(form.out), t)))  # out[0]: h0
        numbers.append(times(v[form.recurrent], array(before)))
    if form.bias is not None:
        symbols.append(Vec(form.bias))
        numbers.append(array(v[form.bias]))
    return equation(at(Vec(form.net), t + 1), [total(symbols), total(numbers), [value(v[form.net][t])]])


def _out_rows(d: Derivation, form: LayerForm, v: dict[str, np.ndarray], t: int) -> tuple[Row, ...]:
    """``out[t] = f(net[t]) = f(numbers) = value``."""
    source = form.net if form.weight is not None else form.previous
    function = _function(d, form)
    steps = [[_applied(function, at(Vec(source), t + 1))], [_applied(function, array(v[source][t]))], [value(v[form.out][t])]]
    if form.weight is not None and form.activation == "identity":
        steps = [[at(Vec(source), t + 1)], [value(v[form.out][t])]]
    return equation(at(Vec(form.out), t + 1), steps)


def _step_loss(d: Derivation, v: dict[str, np.ndarray], t: int) -> tuple[tuple[Row, ...], float | None]:
    """``E_t``: the loss over the outputs at step t with the numbers put in, and its value (None
    where the step has no targets)."""
    net = d.network.per_step  # the names at any step, written [t]
    targets, outputs = v[d.program.targets][t], v[d.layers[-1].out][t]
    if np.isnan(targets).any():
        return (), None
    terms = [net.per_output_loss().xreplace({Y: net.out(net.depth, k), T: net.target(k)}) for k in range(net.sizes[-1])]
    numbers: dict[sympy.Symbol, float] = {}
    for k in range(net.sizes[-1]):
        numbers[net.out(net.depth, k)], numbers[net.target(k)] = float(outputs[k]), float(targets[k])
    names = {s.name: Num(x, operand=True) for s, x in numbers.items()}
    symbolic = {s.name: at(Name(s.name), t + 1) for term in terms for s in term.free_symbols}
    scale = net.loss_scale
    loss = float(scale * sum(term.xreplace({s: sympy.Float(x, 17) for s, x in numbers.items()}) for term in terms))
    lhs = Script(E, Tok(str(t + 1), f"<mn>{t + 1}</mn>"), sup=False)
    rows = equation(lhs, [scaled([Expr(x, names=symbolic) for x in terms], scale), scaled([Expr(x, names=names) for x in terms], scale), [Num(loss)]])
    return rows, loss


def forward_steps(d: Derivation) -> tuple[Display, ...]:
    """One display per step: each layer's weighted sums and outputs at step t with the numbers
    put in (the rnn's from the step before's outputs, h0 at the first), and the step's loss."""
    v = step_values(d)
    displays = []
    for t in range(d.program.steps):
        rows: list[Row] = []
        for form in d.layers:
            if form.weight is not None:
                rows += _net_rows(d, form, v, t)
            rows += _out_rows(d, form, v, t)
        loss, _ = _step_loss(d, v, t)
        rows += loss
        without = "" if loss else " (no target at this step: no loss)"
        displays.append(Display(Prose(f"Step t = {t + 1}{without}:"), tuple(rows)))
    return tuple(displays)


def loss_steps(d: Derivation) -> tuple[Display, ...]:
    """``E = E_1 + E_2 + ...`` over the steps that have targets, with the numbers."""
    v = step_values(d)
    losses = [(t, _step_loss(d, v, t)[1]) for t in range(d.program.steps)]
    kept = [(t, x) for t, x in losses if x is not None]
    names = [Script(E, Tok(str(t + 1), f"<mn>{t + 1}</mn>"), sup=False) for t, _ in kept]
    numbers = [Num(x) if not i else Seq(PLUS, Num(x)) if x >= 0 else Seq(Tok("- ", "<mo>−</mo>"), Num(-x)) for i, (_, x) in enumerate(kept)]
    steps = [total(names), numbers, [Num(d.loss)]] if len(kept) > 1 else [total(names), [Num(d.loss)]]
    skipped = len(losses) - len(kept)
    caption = Prose(f"The loss, the sum of the steps' losses ({skipped} step{'s' if skipped != 1 else ''} without targets left out):" if skipped else
                    "The loss, the sum of the steps' losses:")
    return (Display(caption, equation(E, steps)),)


class _Numbers:
    """A statement at step ``k`` (0-based) with the numbers of :func:`step_values` put in:
    vectors at the step, parameters as they are, a transpose for ``Backprop``. Raises
    NotImplementedError for an operation it does not write (its value alone is then given)."""

    def __init__(self, program: Program, v: dict[str, np.ndarray], k: int) -> None:
        self.program, self.v, self.k = program, v, k

    def vector(self, name: str, k: int) -> np.ndarray:
        return self.v[name][k] if per_step(self.program, name) else self.v[name]

    def values(self, expr: sympy.Expr) -> np.ndarray:
        """The numbers a vector argument stands for at the step."""
        if isinstance(expr, sympy.Symbol):
            return self.vector(expr.name, self.k)
        if isinstance(expr, Following):
            name = expr.args[0].name
            return self.v[name][self.k + 1] if self.k + 1 < self.program.steps else np.zeros(self.v[name].shape[-1])
        if isinstance(expr, AtFirstStep):
            return self.v[expr.args[0].name][0]
        if isinstance(expr, Previous):
            return self.v[expr.args[0].name][self.k - 1] if self.k else self.v[expr.args[1].name]
        raise NotImplementedError(type(expr).__name__)

    def pieces(self, expr: sympy.Expr) -> list[Math]:
        if isinstance(expr, Masked):
            return self.pieces(expr.args[0])
        if isinstance(expr, Backprop):
            W, delta = expr.args
            return [times(self.v[W.name].T, array(self.values(delta)))]
        if isinstance(expr, sympy.Add) and any(isinstance(a, Op) for a in expr.args):
            return total([self.one(a) for a in expr.args])
        if type(expr).__name__ == "Chain":  # each factor in parentheses, rows may break inside them
            out: list[Math] = []
            for i, factor in enumerate(expr.args):
                parts = self.pieces(self._local(factor))
                parts = parenthesized(parts) if len(parts) > 1 or self._local(factor).is_Add else parts
                out += [Seq(ODOT, Tok(" ", "", " "), parts[0]) if i else parts[0], *parts[1:]]
            return out
        if isinstance(expr, Op) or any(isinstance(a, Op) for a in sympy.preorder_traversal(expr)):
            raise NotImplementedError(type(expr).__name__)
        return math_pieces(expr, vectors=True, names={s.name: array(self.vector(s.name, self.k)) for s in expr.free_symbols})

    def _local(self, expr: sympy.Expr) -> sympy.Expr:
        local = self.program.local_derivative(expr)
        return local.written if local is not None else expr

    def one(self, expr: sympy.Expr) -> Math:
        parts = self.pieces(expr)
        return Seq(*[x for i, p in enumerate(parts) for x in ((Tok(" ", "", " "), p) if i else (p,))])


def layer_numbers(d: Derivation, form: LayerForm, printer: StepMath) -> tuple[Display, ...]:
    """Layer ``form``'s delta at each step (BPTT's from the last step back) with the numbers put
    in, then each of its gradients as the sum over the steps with the numbers.
    ``printer`` writes the layer program (the report's, a :class:`StepMath`)."""
    v = step_values(d)
    statements = {s.rule: s for s in d.program.layer(form.index)}
    delta = statements.get("output delta") or statements["delta"]
    steps = range(d.program.steps)
    rows: list[Row] = []
    for k in reversed(steps) if delta.loop else steps:
        rows += _delta_rows(d, delta, _at_step(printer, k), v, k)
    caption = "Its delta at each step with the numbers of the sample" + (f", from the last step back (t = {d.program.steps} down to 1):" if delta.loop else ":")
    out = [Display(Prose(caption), tuple(rows))]
    gradients: list[Row] = []
    for rule in ("weight gradient", "recurrent weight gradient", "bias gradient"):
        if rule in statements:
            gradients += _gradient_rows(d, statements[rule], printer, v)
    initial = statements.get("initial state gradient")
    if initial is not None:  # dE/dh0 = U^T delta[1]: through the first step alone
        numbers = _Numbers(d.program, v, 0)
        gradients += equation(partial(E, Vec(form.initial)), [printer.pieces(initial.written), numbers.pieces(initial.written), [value(v[initial.target.name])]])
    if gradients:
        out.append(Display(Prose("Each gradient, the sum of its terms over the steps, with the numbers:"), tuple(gradients)))
    return tuple(out)


def _at_step(printer: StepMath, k: int) -> StepMath:
    """``printer`` writing vectors at step ``k + 1``."""
    copy = object.__new__(type(printer))
    copy.__dict__.update(printer.__dict__)
    copy.step = k + 1
    return copy


def _delta_rows(d: Derivation, delta, printer: StepMath, v: dict[str, np.ndarray], k: int) -> tuple[Row, ...]:
    lhs = at(Vec(delta.target.name), k + 1)
    if isinstance(delta.expr, Masked) and np.isnan(v[d.program.targets][k]).any():
        return (Row(lhs, EQUALS, Seq(value(np.zeros(v[delta.target.name].shape[-1])), Tok(r"\quad\text{(no target at this step)}", '<mspace width="1em"></mspace><mtext>(no target at this step)</mtext>'))),)
    steps = [printer.pieces(delta.written)]
    try:
        steps.append(_Numbers(d.program, v, k).pieces(delta.written))
    except NotImplementedError:
        pass
    return equation(lhs, steps + [[value(v[delta.target.name][k])]])


def _gradient_rows(d: Derivation, statement, printer: StepMath, v: dict[str, np.ndarray]) -> tuple[Row, ...]:
    """``dE/dW = term[1] + ... + term[T] = numbers = value`` (and the L2 penalty's term once)."""
    name = statement.target.name
    parameter = statement.factors[-1].split("/d", 1)[1]
    symbols, numbers = [], []
    for k in range(d.program.steps):
        p, n = _at_step(printer, k), _Numbers(d.program, v, k)
        first, *rest = statement.expr.args
        if rest:  # Outer(delta, x): delta[k] x[k]^T
            symbols.append(Seq(p.argument(first), THIN, Script(p.argument(rest[0]), TOP, sup=True)))
            numbers.append(Seq(array(n.values(first)), CDOT if n.values(first).size == 1 and n.values(rest[0]).size == 1 else THIN, array(n.values(rest[0]), transpose=True)))
        else:  # BiasSum(delta)
            symbols.append(p.argument(first))
            numbers.append(array(n.values(first)))
    result = np.asarray(v[name], dtype=float)
    penalty = d.program.penalty_gradient(parameter)
    if penalty is not None:
        l2 = float(d.network.spec.loss.l2)
        symbols.append(Seq(Expr(L2), THIN, Vec(parameter)))
        numbers.append(Seq(Num(l2), THIN, array(v[parameter])))
        result = result + l2 * np.asarray(v[parameter])
    lhs = partial(E, Vec(parameter))
    return equation(lhs, [total(symbols), total(numbers), [value(result) if result.size == 1 else array(result)]])


def recurrence_note(d: Derivation, form: LayerForm, note: Prose, printer: StepMath) -> Prose:
    """``note`` and what layer ``form``'s display means step by step: its loops through time and
    their ends, the path through h[t+1], and its weights' sums over the steps."""
    T_ = d.program.steps
    statements = {s.rule: s for s in d.program.layer(form.index)}
    out = note + " " if note else Prose()
    if form.recurrent is not None:
        initial = dict(d.program.constants)[form.initial]
        shown = array(np.asarray(initial)) if len(initial) <= UNITS_MAX else Tok(r"\mathbf{0}", '<mn class="bf">0</mn>') if not any(initial) else None
        start = Prose(" = ", shown) if shown is not None else Prose()
        out += Prose(f"Forward in time, for t = 1, …, {T_}, from ", at(Vec(form.out), 0), " = ", Vec(form.initial)) + start + Prose(
                     " (the spec's ", Code("initial"), "); backward in time, for t = ", f"{T_} down to 1, from ", at(Vec(form.delta), T_ + 1),
                     " = 0 (no step comes after the last). The term ", Seq(Script(Vec(form.recurrent), TOP, sup=True), THIN, at(Vec(form.delta), "t+1")),
                     " is the path through ", at(Vec(form.out), "t+1"), ": ", at(Vec(form.out), "t"), " is also an input of ", at(Vec(form.net), "t+1"),
                     ", so E depends on it through the layer above at step t and through the next step. ")
        names = [Vec(n) for n in (form.weight, form.recurrent, form.bias) if n]
        listed = Prose()
        for i, name in enumerate(names):
            listed += Prose(", " if 0 < i < len(names) - 1 else " and " if i else "", name)
        out += listed + Prose(" are used at every step: each one's gradient is the sum of its terms over the steps. ")
        return out + Prose(Vec(form.initial), " reaches the loss through the first step alone (it is a constant of the spec, not trained).")
    out += Prose(f"At every step t = 1, …, {T_}")
    delta = statements.get("output delta")
    if delta is not None and delta.expr.has(Masked):
        out += Prose("; ", at(Vec(form.delta), "t"), " is 0 at a step whose targets are null (no loss at that step)")
    if form.weight is not None:
        return out + Prose("; ", Vec(form.weight), " is used at every step: its gradient is the sum of its terms over the steps.")
    return out + "."


# ---------------------------------------------------------------------------------------------
# The spec table and the sections' sentences


def sample_prose(d: Derivation) -> Prose:
    """The sample row of a sequence: each input's and target's values over the steps (null: no
    target at that step), the first three and the last past :data:`STEPS_MAX` steps."""
    spec, T_ = d.network.spec, d.program.steps
    x = np.asarray(d.values.x, dtype=float).reshape(T_, -1)
    t = np.asarray(d.values.t, dtype=float).reshape(T_, -1)
    out = Prose(f"a sequence of {T_} steps; ")
    for label, names, values in (("inputs", spec.inputs, x), ("targets", spec.targets, t)):
        out += Prose(f"{label} over the steps: " if label == "inputs" else "; targets: ")
        listed = names if len(names) <= 4 else (*names[:2], names[-1])
        for i, name in enumerate(listed):
            column = values[:, list(names).index(name)]
            shown = list(range(T_)) if T_ <= STEPS_MAX + 2 else [0, 1, 2, T_ - 1]
            cells = ["…" if k not in shown else "null" if np.isnan(column[k]) else None for k in range(T_)]
            out += Prose(", " if i else "", Name(name), " = (")
            previous = -1
            for k in shown:
                out += Prose(", " if previous >= 0 else "", "…, " if k != previous + 1 else "")
                out += Prose(cells[k]) if cells[k] else Prose(Num(column[k]))
                previous = k
            out += Prose(")")
        if len(listed) < len(names):
            out += Prose(f" ({len(names)} in all)")
    return out


def forward_intro(d: Derivation) -> Prose:
    """The forward pass's first sentence for a network with an rnn."""
    if small_sequence(d):
        return Prose("Step by step, t = 1, …, ", f"{d.program.steps}: each layer's weighted sums and outputs at step t with the numbers put in "
                     "(the rnn's from its own outputs at the step before), then the loss at the step where it has a target.")
    what = f" on a batch of {d.values.samples} sequences" if d.batch else ""
    return Prose(f"{d.network.parameter_count:,} parameters over {d.program.steps} steps{what}: the forward pass is given per layer, as the smallest, mean "
                 "and largest entry of each vector over every step (the layer form below says how each is computed).")


def backward_intro(d: Derivation, chains: Prose) -> Prose:
    """The backward section's sentences for a network with an rnn, before ``chains`` (what the
    per-weight chains below are)."""
    rnn = next(l for l, layer in enumerate(d.network.spec.layers, 1) if layer.is_rnn)
    unit = d.network.units(rnn)[0]
    return Prose(
        "A network with a recurrent layer: its weights are used at every step, so each gradient is the sum of its terms over the "
        "steps, and the delta of the rnn at step t has two paths, through the layer above at step t and through the next step. "
        "A unit at a step carries the step in its name: ", Name("out_" + naming.AT_STEP.format(name=unit, step=2)),
        f" is unit {unit}'s output at step 2 (", Name("out_" + naming.AT_STEP.format(name=unit, step=0)), " is the initial state, the spec's ", Code("initial"), "). ",
    ) + chains + (" The layer form at the end gives every gradient as backpropagation through time"
                  + (", with the numbers step by step." if small_sequence(d) else "."))


def steps_display(d: Derivation, chain) -> Display:
    """A shared weight's gradient as the sum over the steps where it is used, from the rnn's
    deltas at each step (a chain cut at its own layer): ``∂E/∂w = Σ_t δ_(h,t) · ∂net_(h,t)/∂w``,
    each ``∂net/∂w`` the chain's factor (``sympy.diff`` of the unit's definition at that step);
    the names, the numbers, the value."""
    names, numbers = [], []
    for path in chain.paths:
        kept = [f.human for f in path.factors if f.human != 1] or [sympy.Integer(1)]
        names.append(Seq(*[piece for k, h in enumerate(kept) for piece in ((CDOT, Expr(h)) if k else (Expr(h),))]))
        numbers.append(Seq(*[piece for k, h in enumerate(kept) for piece in ((CDOT, Num(d.value(h), operand=True)) if k else (Num(d.value(h), operand=True),))]))
    unit = naming.AT_STEP.format(name=d.network.units(chain.param.layer)[chain.param.row], step="")  # h3_t: the unit at step t
    caption = Prose(f"The gradient as a sum over the {count(len(names), 'step')} where ", Name(chain.param.name), " is used, each the delta ",
                    Name(naming.DELTA_UNIT.format(unit=unit)), " of its unit at that step (from the layer form: backpropagation through time)"
                    + (" times what the weight multiplies there:" if chain.param.is_weight else "; the bias adds to each net with the factor 1:"))
    return Display(caption, sum_equation(d, chain, names, numbers))


def spec_weights(d: Derivation, l: int) -> Prose:
    """The weights cell of an rnn layer: W and U with their shapes, and h0."""
    net, layer, form = d.network, d.network.spec.layers[l - 1], d.layers[l - 1]
    given = "given" if layer.weights is not None else f"seeded ({net.spec.seed})"
    shapes = [Prose(Vec(name), f" {rows}×{columns}") for name, rows, columns in ((form.weight, form.size, net.sizes[l - 1]), (form.recurrent, form.size, form.size))]
    frozen = f"; frozen: {', '.join(layer.freeze)}" if layer.freeze else ""
    initial = "given" if layer.initial is not None else "zeros"
    return shapes[0] + Prose(" (inputs), ") + shapes[1] + Prose(f" (recurrent) {given}{frozen}; ", Vec(form.initial), f" {initial}")
