"""The layer program as NumPy array code: the emitted trainer's forward, loss and backward lines.

A printer of :attr:`Derivation.program <chainrule.derive.derivation.Derivation.program>`: each
statement becomes a line or a few (one method per rule and operation), computed into buffers the
trainer makes once per batch size, a sample per row. Each :class:`Line` carries the comment above
it, naming the chain-rule factors it implements. What the code needs besides (its buffers, its
columns of ones, the helper functions it calls) is recorded as the lines are printed, in
:class:`ArrayCode`; nothing is found by reading the printed code again.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import sympy

from chainrule.derive import naming
from chainrule.derive.derivation import Derivation
from chainrule.derive.formula import format_expr
from chainrule.derive.functions import HELPERS, row_of
from chainrule.derive.network import Network
from chainrule.derive.penalty import L2
from chainrule.derive.program import (
    Affine, AvgPool, AvgPoolBackprop, Backprop, Chain, ChannelBiasSum, Correlate, CorrelateBackprop, Flatten, KernelGradient,
    LogOneMinusSoftmax, LogSoftmax, MaxPool, MaxPoolBackprop, Program, Role, SharedBiasSum, Softmax, SoftmaxDelta, SoftmaxVJP,
    Stage, Statement, Masked, RecurrentAffine,
)
from chainrule.derive.stable import stable_form

from chainrule.codegen.trainer import pysource
from chainrule.codegen.trainer.printers import InPlace, NotInPlace, fold_constants, vector_code

#: The names the loss's logarithms of a softmax output are computed into.
LOG_OUT, LOG_ONE_MINUS_OUT = sympy.Symbol("log_out", real=True), sympy.Symbol("log_one_minus_out", real=True)
#: The names of the inputs and targets, a sample per row, in the trainer.
INPUTS, TARGETS = "X", "T"
#: A sequence's inputs and targets as rows, step by step (``sequence_rows``), and where its
#: targets are null.
STEP_INPUTS, STEP_TARGETS, MISSING = "Xt", "Tt", "missing"


@dataclass(frozen=True)
class Line:
    """A line of code and the comment above it (``""`` for none). The comment is text, escaped
    where it is printed; the code is printed from the derivation (:func:`pysource.code`)."""

    comment: str
    code: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "code", pysource.code(self.code))


@dataclass(frozen=True)
class ArrayCode:
    """The trainer's array code and what it needs.

    Attributes:
        forward, loss, backward: the lines of ``_forward``, ``_loss`` and ``_backward``.
        buffers: (name, units) of every [batch, units] array the code writes into.
        ones: (name, units) of the [units, 1] columns of ones it sums rows with.
        helpers: the functions the code calls that the trainer defines (``softmax``,
            ``sigmoid``, ``log_softmax``, ...).
        reads_parameters: True when the backward lines read the parameters (``p``): a delta
            sent back through a layer's weights.
    """

    forward: tuple[Line, ...]
    loss: tuple[Line, ...]
    backward: tuple[Line, ...]
    buffers: tuple[tuple[str, int], ...]
    ones: tuple[tuple[str, int], ...]
    helpers: frozenset[str]
    reads_parameters: bool


def array_code(d: Derivation) -> ArrayCode:
    """The forward, loss and backward lines of ``d``'s trainer, a row per sample."""
    return _ArrayPrinter(d).print()


def targets_sum_to_one(d: Derivation) -> bool:
    """True when the output delta's closed form holds only where each row of targets sums to 1
    (softmax with cross-entropy): the trainer then refuses other targets."""
    return bool(_output_delta(d.program).note)


def output_delta_text(d: Derivation) -> str:
    """The output delta's closed form as the emitted comments write it (``delta_o = out_o - T``)."""
    delta = _output_delta(d.program)
    if delta.operations:
        return ""
    return f"{delta.target} = {human(delta.expr, d.program)}"


def ones_name(units_of: str) -> str:
    """A [units, 1] column of ones: the rows of a [batch, units] array summed as one product."""
    return f"ones_{units_of}"


def net_text(network: Network, l: int, r: int = 0, elide: bool = False) -> str:
    """net = w*in + ... + b, in the order people write it; with ``elide``, more than four
    products as people shorten them (``w1*x1 + w2*x2 + ... + w784*x784 + b1``)."""
    sources = network.spec.inputs if l == 1 else [network.per_step.out(l - 1, c).name for c in range(network.sizes[l - 1])]
    terms = [f"{network.weight_name(l, r, c)}*{source}" for c, source in enumerate(sources)]
    if elide and len(terms) > 4:
        terms = terms[:2] + ["..."] + terms[-1:]
    bias = network.bias_name(l, r)
    return " + ".join(terms + ([bias] if bias else []))


def human(expr: sympy.Expr, program: Program | None = None) -> str:
    """An expression of the program as the trainer's comments write it (targets as ``T``)."""
    if program is not None:
        expr = expr.xreplace({sympy.Symbol(program.targets, real=True): sympy.Symbol(TARGETS, real=True),
                              sympy.Symbol(program.inputs, real=True): sympy.Symbol(INPUTS, real=True)})
    return format_expr(expr)


def _output_delta(program: Program) -> Statement:
    return next(s for s in program.statements if s.rule == "output delta")


def _layer_name(statement: Statement) -> str:
    """The layer's name as its vectors carry it (``o`` of ``delta_o``)."""
    return statement.target.name.split("_", 1)[1]


def initial_name(layer: str) -> str:
    """The trainer's constant holding an rnn layer's h_0 (``H0_h``)."""
    return f"H0_{layer}"


class _Sequences:
    """The printer's methods for sequences (an rnn's recurrence, its backpropagation through
    time, a loss over the steps that have targets); mixed into :class:`_ArrayPrinter`."""

    def _sequence_prologue(self) -> list[Line]:
        return [Line(f"{STEP_TARGETS} = T as rows, step by step; {MISSING}: where a step's targets are null (no loss there)",
                     f"{STEP_TARGETS} = sequence_rows(T)"), Line("", f"{MISSING} = np.isnan({STEP_TARGETS})")]

    def _recurrence(self, s: Statement) -> list[Line]:
        """``net[t] = W x[t] + U h[t-1] + b``, ``out[t] = f(net[t])``: the input's part of every
        step as one product, then a loop over the steps adding ``U h[t-1]`` and applying f."""
        W, x, U, previous, *bias = s.expr.args
        form = self.d.layers[s.layer - 1]
        net, out, units = s.target.name, form.out, form.size
        activation = next(t for t in self.program.layer(s.layer) if t.rule == "activation")
        lines = [Line(f"{net} = {x} {W}^T + {bias[0] if bias else '0'} at every step at once (the inputs' part); the loop adds {U} h[t-1]",
                      f'{net} = np.dot({self._name(x)}, p["{W}"].T, out={self._buffer(net, units)})')]
        if bias:
            lines.append(Line("", f'{net} += p["{bias[0]}"]'))
        f = self._code(activation.expr, {sympy.Symbol(net, real=True): f"{net}[rows]"})
        loop = (f"h = np.broadcast_to({initial_name(form.name)}, (B, {units}))\n"
                "for t in range(STEPS):\n"
                "    rows = slice(t * B, (t + 1) * B)\n"
                f'    {net}[rows] += np.dot(h, p["{U}"].T)\n'
                f"    {out}[rows] = {f}\n"
                f"    h = {out}[rows]")
        return lines + [Line("", f"{out} = {self._buffer(out, units)}"),
                        Line(f"the recurrence, t = 1, ..., {self.program.steps}: {net}[t] += {out}[t-1] {U}^T ({out}[0] = h0, {previous.args[1]}), "
                             f"then {out}[t] = {activation.function}({net}[t])", loop)]

    def _through_time(self, s: Statement) -> list[Line]:
        """``delta[t] = (dE/dout[t] from the layer above + delta[t+1] U) * f'(net[t])``: the layer
        above's part of every step as one product, then a loop from the last step back."""
        form = self.d.layers[s.layer - 1]
        delta, units = s.target.name, form.size
        total, local = (s.expr.args[0], s.expr.args[1]) if isinstance(s.expr, Chain) else (s.expr, None)
        through = next(a for a in total.args if isinstance(a, Backprop) and not a.args[1].is_Symbol)
        above = next(a for a in total.args if a is not through)
        U = through.args[0]
        buffer = self._buffer(delta, units)
        if isinstance(above, Backprop):
            Wa, da = above.args
            lines = [Line(f"{delta} = dE/d{form.out} from the layer above at every step: {da} {Wa} (one product)",
                          f'{delta} = np.dot({da}, p["{Wa}"], out={buffer})')]
        else:
            lines = [Line(f"{delta} = dE/d{form.out} from the layer above at every step: {above}", f"np.copyto({buffer}, {above})"),
                     Line("", f"{delta} = {buffer}")]
        step = f"    {delta}[rows] *= {form.name}_local[rows]" if local is not None else ""
        if local is not None:
            computed = self._local(local)
            lines.append(Line(f"d{form.out}/d{form.net} = {human(computed, self.program)} at every step", f"{form.name}_local = {self._code(computed)}"))
        loop = ("for t in range(STEPS - 1, -1, -1):\n"
                "    rows = slice(t * B, (t + 1) * B)\n"
                "    if t < STEPS - 1:\n"
                f'        {delta}[rows] += np.dot({delta}[(t + 1) * B : (t + 2) * B], p["{U}"])\n' + step).rstrip("\n")
        return lines + [Line(f"backpropagation through time, t = {self.program.steps} down to 1: {delta}[t] = (that + {delta}[t+1] {U})"
                             f" * d{form.out}/d{form.net}[t] (nothing after the last step)", loop)]

    def _recurrent_gradient(self, s: Statement) -> list[Line]:
        """``dE/dU = sum_t delta[t] h[t-1]^T``: steps 2..T against the outputs of 1..T-1, and
        step 1 against h_0."""
        delta, previous = s.expr.args
        out, h0 = previous.args
        U = s.target.name[len("dE_d"):]
        form = self.d.layers[s.layer - 1]
        return [Line(f"dE/d{U} = sum over t of {delta}[t]^T {out}[t-1] ({out}[0] = h0): every step but the first against the step before, one product",
                     f'np.dot({delta}[B:].T, {out}[:-B], out=grads["{U}"])'),
                Line("", f'grads["{U}"] += np.outer({delta}[:B].sum(axis=0), {initial_name(form.name)})')]

    def _sequence_loss(self, s: Statement) -> tuple[Line, ...]:
        """E summed over the steps that have targets and the outputs, reduced over the batch."""
        form = self.d.layers[s.layer - 1]
        net = sympy.Symbol(form.net, real=True)
        masked = s.expr.args[0]
        expr = masked.args[0].xreplace({LogSoftmax(net): LOG_OUT, LogOneMinusSoftmax(net): LOG_ONE_MINUS_OUT})
        lines = list(self._sequence_prologue())
        if expr.has(LOG_ONE_MINUS_OUT) or expr.has(LOG_OUT):
            self.helpers |= {"log_softmax", "log_one_minus_softmax"}
            lines.append(Line(f"log({form.out}) and log(1 - {form.out}), with the digits of an output near 0 or 1 (from the row's largest net)",
                              f"log_out, log_one_minus_out = log_softmax({self._vec(form.net)}), log_one_minus_softmax({self._vec(form.net)})"))
        loss = self.d.network.spec.loss
        names = {LOG_OUT: "log_out", LOG_ONE_MINUS_OUT: "log_one_minus_out"}
        comment = f"E = {self.program.reduction} over the batch of the sum over the steps with targets and the outputs of {loss.formula or loss.name}"
        lines.append(Line(comment, f"E = np.sum({self._code(expr, names)}, where=~{MISSING})"))
        lines.append(Line("", f"return float(E){self._per_batch}"))
        return tuple(lines)


@dataclass
class _ArrayPrinter(_Sequences):
    """Prints the program's statements; records the buffers, ones and helpers it uses."""

    d: Derivation
    buffers: dict[str, int] = field(default_factory=dict)
    ones: dict[str, int] = field(default_factory=dict)
    helpers: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.program = self.d.program
        steps = bool(self.program.steps)  # a sequence's inputs and targets as rows, step by step
        self.names = {sympy.Symbol(self.program.inputs, real=True): STEP_INPUTS if steps else INPUTS,
                      sympy.Symbol(self.program.targets, real=True): STEP_TARGETS if steps else TARGETS}

    def print(self) -> ArrayCode:
        forward = [line for s in self.program.stage(Stage.FORWARD) for line in self._forward(s)]
        if self.program.steps:
            self.helpers.add("sequence_rows")
            forward = [Line(f"{STEP_INPUTS} = X as rows [steps * batch, inputs], step by step (the rows of step t: t*B to (t + 1)*B)",
                            f"{STEP_INPUTS} = sequence_rows(X)"), Line("", "B = X.shape[0]")] + forward
        for form in self.d.layers:  # every layer's net, out and delta have a buffer (a layer without weights: no net of its own)
            for name in (form.net, form.out, form.delta) if form.weight else (form.out, form.delta):
                self.buffers.setdefault(name, form.size)
        loss = self._loss(self.program.stage(Stage.LOSS)[0]) if not self.program.steps else self._sequence_loss(self.program.stage(Stage.LOSS)[0])
        penalty = [s for s in self.program.stage(Stage.LOSS) if s.rule == "penalty"]
        if penalty:
            loss = self._penalised(loss, penalty[0])
        backward = [line for s in self.program.stage(Stage.BACKWARD) for line in self._backward(s)]
        if self.program.steps:
            backward = self._sequence_prologue() + [Line("", f"{STEP_INPUTS} = sequence_rows(X)"), Line("", "B = X.shape[0]")] + backward
        reads = any(s.expr.has(Backprop) or s.expr.has(CorrelateBackprop) or s.rule == "penalty gradient" for s in self.program.stage(Stage.BACKWARD))
        return ArrayCode(tuple(forward), loss, tuple(backward), tuple(self._ordered_buffers()), tuple(self.ones.items()),
                         frozenset(self._all_helpers()), reads)

    # -- names, buffers and helpers ----------------------------------------------------------

    def _name(self, symbol: sympy.Symbol) -> str:
        return self.names.get(symbol, symbol.name)

    def _buffer(self, name: str, units: int) -> str:
        self.buffers.setdefault(name, units)
        return f'work["{name}"]'

    def _scratch(self, layer: int) -> str:
        """The layer's scratch buffer, for the pieces of an expression computed in place; it is
        made only where a line uses it (:meth:`_used`)."""
        return f'work["tmp_{self._layer(layer)}"]'

    def _used(self, in_place: InPlace, scratch: list[str]) -> None:
        for buffer in in_place.used:
            layer = next(form for form in self.d.layers if buffer == f'work["tmp_{form.name}"]')
            self.buffers.setdefault(f"tmp_{layer.name}", layer.size)

    def _layer(self, layer: int) -> str:
        return self.d.layers[layer - 1].name

    def _ordered_buffers(self) -> list[tuple[str, int]]:
        """Per layer net, out and delta, then its scratch and log-sum-exp buffers."""
        order = []
        for form in self.d.layers:
            order += ([form.net] if form.weight else []) + [form.out, form.delta, f"tmp_{form.name}", f"lse_{form.name}"]
        return [(name, self.buffers[name]) for name in order if name in self.buffers]

    def _vec(self, name: str) -> str:
        """A vector's name in the code (the inputs and targets are ``X`` and ``T``): a layer
        without weights reads the layer before's output, or the inputs, as its net."""
        return self.names.get(sympy.Symbol(name, real=True), name)

    def _code(self, expr: sympy.Expr, names: dict | None = None) -> str:
        """NumPy source of an elementwise expression; the helpers it calls are recorded."""
        self._note_helpers(expr)
        return vector_code(expr, {**self.names, **(names or {})})

    def _note_helpers(self, expr: sympy.Expr) -> None:
        for node in sympy.preorder_traversal(fold_constants(stable_form(expr))):
            row = row_of(node)
            if row is not None and row.name in HELPERS:
                self.helpers.add(row.name)

    def _in_place(self, expr: sympy.Expr, target: str, scratch: list[str]) -> list[str] | None:
        """The lines computing ``expr`` into ``target`` without temporaries, or None."""
        in_place = InPlace(self.names, scratch)
        try:
            lines = in_place.lines_into(expr, target)
        except NotInPlace:
            return None
        self._note_helpers(expr)
        self._used(in_place, scratch)
        return lines

    def _assigned(self, expr: sympy.Expr, name: str, buffer: str, scratch: list[str]) -> list[str] | None:
        """``name = ...`` computed into ``buffer``, or None where it cannot be done in place."""
        in_place = InPlace(self.names, scratch)
        try:
            lines = in_place.assigned(expr, name, buffer)
        except NotInPlace:
            return None
        self._note_helpers(expr)
        self._used(in_place, scratch)
        return lines

    def _all_helpers(self) -> set[str]:
        """The helpers called, with the helpers they call."""
        needed = set(self.helpers)
        if needed & {"log_softmax", "log_one_minus_softmax"}:
            needed.add("_largest_and_share")
        if "log_one_minus_softmax" in needed or "softmax_output_delta" in needed:
            needed.add("log_softmax")
        if "softmax_output_delta" in needed:
            needed |= {"log_one_minus_softmax", "_largest_and_share"}
        if needed & {"correlate", "correlate_kernel_gradient", "correlate_backprop"}:
            needed.add("columns")
        if needed & {"maxpool", "maxpool_backprop", "avgpool"}:
            needed.add("_tiles")
        return needed

    # -- forward -------------------------------------------------------------------------------

    def _forward(self, s: Statement) -> list[Line]:
        if s.loop:  # an rnn's recurrence: its weighted sums print the loop, its activation in it
            return self._recurrence(s) if isinstance(s.expr, RecurrentAffine) else []
        if isinstance(s.expr, Affine):
            return self._weighted_sums(s)
        if isinstance(s.expr, Correlate | MaxPool | AvgPool | Flatten):
            return self._maps(s)
        if isinstance(s.expr, Softmax):
            return self._softmax(s)
        return self._activation(s)

    def _weighted_sums(self, s: Statement) -> list[Line]:
        W, x, *bias = s.expr.args
        net, previous = s.target.name, self._name(x)
        example = f"{self.d.network.per_step.net(s.layer, 0).name} = {net_text(self.d.network.per_step, s.layer, elide=True)}"
        lines = [Line(f"{net} = {previous} {W}^T + {bias[0] if bias else '0'}, a row per sample ({example})",
                      f'{net} = np.dot({previous}, p["{W}"].T, out={self._buffer(net, self.program.sizes[s.layer])})')]
        if bias:
            lines.append(Line("", f'{net} += p["{bias[0]}"]'))
        return lines

    def _geometry(self, geometry: sympy.Tuple) -> str:
        return "(" + ", ".join(str(int(v)) for v in geometry) + ")"

    def _maps(self, s: Statement) -> list[Line]:
        """A convolution's correlation, a pool, or a flatten (the values are held flat already)."""
        target, expr = s.target.name, s.expr
        if isinstance(expr, Flatten):
            return [Line(f"{target} = flatten({expr.args[0]}): the maps as one vector, row-major (held so already)", f"{target} = {self._name(expr.args[0])}")]
        if isinstance(expr, Correlate):
            x, K, g, *bias = expr.args
            self.helpers.add("correlate")
            b = f'p["{bias[0]}"]' if bias else "None"
            why = f"{target} = {K} * {x} + {bias[0] if bias else '0'}: the cross-correlation of the maps with the kernel, a bias per output channel"
            return [Line(f"{why} {GEOMETRY_NOTE}", f'{target} = correlate({self._name(x)}, p["{K}"], {b}, {self._geometry(g)})')]
        helper = "maxpool" if isinstance(expr, MaxPool) else "avgpool"
        self.helpers.add(helper)
        what = "largest input" if helper == "maxpool" else "mean"
        x, g = expr.args
        return [Line(f"{target} = the {what} of each window of {x}", f"{target} = {helper}({self._name(x)}, {self._geometry(g)})")]

    def _softmax(self, s: Statement) -> list[Line]:
        out, net = s.target.name, s.expr.args[0]
        code_net = self._name(net)
        units = self.program.sizes[s.layer]
        self.helpers.add("softmax")
        ones = ones_name(self._layer(s.layer))
        self.ones[ones] = units
        loss = self.program.stage(Stage.LOSS)[0].expr
        if loss.has(LogSoftmax(net)):
            lse = self._buffer(f"lse_{self._layer(s.layer)}", 1)
            return [Line(f"{out} = softmax({net}), each row shifted by its largest net; its log-sum-exp kept for the loss",
                         f'{out} = softmax({code_net}, out={self._buffer(out, units)}, lse={lse}, ones=work["{ones}"])')]
        return [Line(f"{out} = softmax({net}), each row shifted by its largest net",
                     f'{out} = softmax({code_net}, out={self._buffer(out, units)}, ones=work["{ones}"])')]

    def _activation(self, s: Statement) -> list[Line]:
        out, units = s.target.name, self.program.sizes[s.layer]
        net = self.d.layers[s.layer - 1].net
        if s.expr == sympy.Symbol(net, real=True):
            return [Line(f"{out} = {net} ({s.function})", f"{out} = {self._vec(net)}")]
        lines = self._assigned(s.expr, out, self._buffer(out, units), [self._scratch(s.layer)])
        if lines is None:
            return [Line(f"{out} = {s.function}({net})", f"{out} = {self._code(s.expr)}")]
        comment = f"{out} = {s.function}({net})" + ("" if len(lines) == 1 else ", in its buffer")
        return [Line(comment if i == 0 else "", line) for i, line in enumerate(lines)]

    # -- loss ----------------------------------------------------------------------------------

    def _loss(self, s: Statement) -> tuple[Line, ...]:
        """E: the loss summed over outputs, averaged over the batch; a softmax output's
        logarithms computed from its nets (``log_out``), never log(0)."""
        form = self.d.layers[s.layer - 1]
        net = sympy.Symbol(form.net, real=True)
        expr = s.expr.args[0].xreplace({LogSoftmax(net): LOG_OUT, LogOneMinusSoftmax(net): LOG_ONE_MINUS_OUT})
        targets = sympy.Symbol(self.program.targets, real=True)
        coefficient, rest = expr.as_coeff_Mul()
        if targets_sum_to_one(self.d) and rest == targets * LOG_OUT:
            return self._cross_entropy(form, coefficient)
        lines = []
        names = {LOG_OUT: "log_out", LOG_ONE_MINUS_OUT: "log_one_minus_out"}
        if expr.has(LOG_ONE_MINUS_OUT):
            self.helpers |= {"log_softmax", "log_one_minus_softmax"}
            lines.append(Line(f"log({form.out}) and log(1 - {form.out}), with the digits of an output near 0 or 1 (from the row's largest net)",
                              f"log_out, log_one_minus_out = log_softmax({self._vec(form.net)}), log_one_minus_softmax({self._vec(form.net)})"))
        elif expr.has(LOG_OUT):
            scratch = self._buffer(f"tmp_{form.name}", form.size)
            lines.append(Line(f"log({form.out}) = {form.net} - log-sum-exp of the row (kept by softmax): no log(0) where an output underflows",
                              f'log_out = np.subtract({self._vec(form.net)}, work["lse_{form.name}"], out={scratch})'))
        loss = self.d.network.spec.loss
        comment = f"E = {self.program.reduction} over the batch of the sum over outputs of {loss.formula or loss.name}"
        sums = None if expr.has(LOG_ONE_MINUS_OUT) else self._loss_sums(expr, names, form)
        if sums is None:
            lines.append(Line(comment, f"return float(({self._code(expr, names)}).sum()){self._per_batch}"))
            return tuple(lines)
        for i, (pre, total) in enumerate(sums):
            lines.extend(Line(comment if (i == 0 and j == 0) else "", code) for j, code in enumerate(pre))
            if not pre and i == 0:
                lines.append(Line(comment, f"E = {total}"))
            else:
                lines.append(Line("", f"E {'=' if i == 0 else '+='} {total}"))
        lines.append(Line("", f"return float(E){self._per_batch}"))
        return tuple(lines)

    def _parameter_names(self) -> dict:
        """The L2 setting and the parameters as the trainer's methods read them."""
        names = {L2: "self.l2"}
        names.update({sympy.Symbol(n, real=True): f'p["{n}"]' for n, info in self.program.vectors.items() if info.role is Role.PARAMETER})
        return names

    def _penalised(self, loss: tuple[Line, ...], s: Statement) -> tuple[Line, ...]:
        """The loss lines with the L2 penalty added once to the reduced loss: ``c*W**2`` summed
        over a matrix is ``c*np.vdot(W, W)``."""
        names = self._parameter_names()
        terms = []
        for entry in sympy.Add.make_args(s.expr):
            matrix = entry.args[0]
            squares = [f for f in sympy.Mul.make_args(matrix) if isinstance(f, sympy.Pow) and f.exp == 2 and f.base in names]
            if len(squares) == 1:
                W = names[squares[0].base]
                rest = vector_code(matrix / squares[0], names)
                terms.append(f"{rest}*np.vdot({W}, {W})" if rest != "1" else f"np.vdot({W}, {W})")
            else:
                terms.append(f"np.sum({vector_code(matrix, names)})")
        *head, last = loss
        assert last.code.startswith("return ")
        return (*head, Line(last.comment, f"E = {last.code[len('return '):]}"),
                Line(f"E += l2/2 * ({' + '.join(f'sum({W}**2)' for W in self._penalised_matrices(s))}): the L2 penalty, once per batch "
                     "(biases not)", "p = self.params"),
                Line("", f"return E + float({' + '.join(terms)})"))

    @staticmethod
    def _penalised_matrices(s: Statement) -> list[str]:
        return sorted(v.name for v in s.expr.free_symbols if v != L2)

    @property
    def _per_batch(self) -> str:
        """What the batch's summed loss is divided by: its rows, for the mean (PyTorch's
        ``reduction``)."""
        return " / X.shape[0]" if self.program.reduction == "mean" else ""

    def _cross_entropy(self, form, coefficient: sympy.Expr) -> tuple[Line, ...]:
        """-sum T*(net - lse) = sum of lse - sum T*net where every row of T sums to 1 (the
        trainer checks it)."""
        scale = "" if coefficient == -1 else f"{self._code(-coefficient)}*"
        lse, ones = f'work["lse_{form.name}"]', 'work["ones"]'
        comment = (f"E = {self.program.reduction} over the batch of -sum T*log({form.out}) = log-sum-exp of each row (kept by softmax) - sum T*{form.net}"
                   " (each row of T sums to 1)")
        net = self._vec(form.net)
        code = f"E = {scale}(np.vdot({ones}, {lse}) - np.vdot(T, {net}))" if scale else f"E = np.vdot({ones}, {lse}) - np.vdot(T, {net})"
        return (Line(comment, code), Line("", f"return float(E){self._per_batch}"))

    def _loss_sums(self, expr: sympy.Expr, names: dict, form) -> list[tuple[list[str], str]] | None:
        """The loss summed over the batch as dot products, term by term: ``c*t*u`` is
        ``c*np.vdot(T, u)`` and ``c*u**2`` is ``c*np.vdot(u, u)``, ``u`` computed in place into the
        scratch buffer; None when a term is neither (the caller sums the whole expression)."""
        targets = sympy.Symbol(self.program.targets, real=True)
        scratch = self._scratch(form.index)
        out = []
        for term in sympy.Add.make_args(expr):
            coefficient, factors = term.as_coeff_mul()
            scale = "" if coefficient == 1 else "-" if coefficient == -1 else f"{self._code(coefficient)}*"
            rest = sympy.Mul(*factors)
            if targets in factors and not (rest / targets).has(targets):
                left, right = "T", rest / targets
            elif len(factors) == 1 and isinstance(rest, sympy.Pow) and rest.args[1] == 2:
                left = right = rest.args[0]
            else:
                return None
            atom = names.get(right, right.name) if isinstance(right, sympy.Symbol) else None
            pre = [] if atom is not None else self._in_place(right, scratch, [])
            if pre is None:
                return None
            source = atom or scratch
            out.append((pre, f"{scale}np.vdot({'T' if left == 'T' else source}, {source})"))
        if any(pre for pre, _ in out):
            self.buffers.setdefault(f"tmp_{form.name}", form.size)
        return out

    # -- backward ------------------------------------------------------------------------------

    _SCALED = "times scale (the batch mean and, for sgd, the rate)"

    def _backward(self, s: Statement) -> list[Line]:
        """A backward statement's lines; a local derivative is printed where a delta multiplies
        it, and a softmax output's temporaries with its delta."""
        if s.rule in ("local derivative", "1 - out", "out * dE/dout", "out * dE/dout * (1 - out)"):
            return []
        if s.rule == "output delta" and isinstance(s.expr, Masked):  # a sequence's: 0 where a step has no targets
            inner = dataclasses.replace(s, expr=s.expr.args[0], shown=None if s.shown is None else s.shown.args[0])
            return self._output_delta(inner) + [Line("no loss at a step whose targets are null: its delta is 0", f"np.copyto({s.target}, 0.0, where={MISSING})"),
                                                 Line("", f"{s.target} *= scale")]
        if s.rule == "output delta":
            return self._output_delta(s) + [Line("", f"{s.target} *= scale")]
        if s.loop:
            return self._through_time(s)
        if s.rule == "recurrent weight gradient":
            return self._recurrent_gradient(s)
        if s.rule == "initial state gradient":  # h_0 is a constant of the spec: the trainer does not train it
            return []
        if s.rule == "penalty gradient":
            W = s.target.name[len(naming.PENALTY_GRADIENT.format(param="")):]
            factor = "scale * X.shape[0]" if self.program.reduction == "mean" else "scale"
            return [Line(f"dE/d{W} += {format_expr(s.expr, last=s.expr.free_symbols - {L2})}: the L2 penalty's derivative, once per batch "
                         f"(times {factor}: not the batch mean)", f'grads["{W}"] += ({factor}) * ({vector_code(s.expr, self._parameter_names())})')]
        if isinstance(s.expr, KernelGradient):
            delta, x, g, shape = s.expr.args
            W = s.target.name[len("dE_d"):]
            self.helpers.add("correlate_kernel_gradient")
            return [Line(f"dE/d{W} = the correlation of {self._name(x)} with {delta} (each kernel weight: its products summed over every position it is used)",
                         f'grads["{W}"][...] = correlate_kernel_gradient({delta}, {self._name(x)}, {self._geometry(g)}).reshape({tuple(int(n) for n in shape)})')]
        if isinstance(s.expr, ChannelBiasSum):
            delta, channels = s.expr.args
            b = s.target.name[len("dE_d"):]
            return [Line(f"dE/d{b} = {delta} summed over each channel's positions and the batch",
                         f'grads["{b}"][...] = {delta}.reshape({delta}.shape[0], {int(channels[0])}, -1).sum(axis=(0, 2))')]
        if s.rule == "weight gradient":
            delta, x = s.expr.args
            W = s.target.name[len("dE_d"):]
            return [Line(f"dE/d{W} = {delta}^T {self._name(x)} (dE/dw = delta of its unit * the output it multiplies)",
                         f'np.dot({delta}.T, {self._name(x)}, out=grads["{W}"])')]
        if s.rule == "bias gradient":
            delta, b = s.expr.args[0], s.target.name[len("dE_d"):]
            if isinstance(s.expr, SharedBiasSum):
                return [Line(f"dE/d{b} = sum of {delta} (one bias shared by the layer)", f'grads["{b}"][0] = {delta}.sum()')]
            return [Line(f"dE/d{b} = {delta} summed over the batch (a row of ones times {delta}: one BLAS call)",
                         f'np.dot(work["ones"], {delta}, out=grads["{b}"])')]
        return self._hidden_delta(s)

    def _output_delta(self, s: Statement) -> list[Line]:
        form = self.d.layers[s.layer - 1]
        if isinstance(s.expr, SoftmaxDelta):
            return self._softmax_output_delta(s, form)
        if isinstance(s.expr, SoftmaxVJP):
            out, g = s.expr.args
            return [Line(f"g = dE/d{out} = {human(g, self.program)}", f"g = {self._code(g)}"),
                    Line(f"{s.target} = dE/d{form.net} = {out} * (g - sum(g * {out})) (softmax's Jacobian), {self._SCALED}",
                         f"{s.target} = {out} * (g - np.sum(g * {out}, axis=1, keepdims=True))")]
        if isinstance(s.expr, Chain):
            factors = [self._local(f) for f in s.expr.args]
            why = f"{s.target} = dE/d{form.out} * d{form.out}/d{form.net} = " + " * ".join(f"({human(f, self.program)})" for f in factors)
            whole = " * ".join(f"({self._code(f)})" for f in factors)
            return self._delta_into(s, sympy.Mul(*factors), f"{why}, {self._SCALED}", whole)
        why = f"dE/d{form.net} = {human(s.expr, self.program)}" + (f" ({s.note})" if s.note else "")
        return self._delta_into(s, s.expr, f"{s.target} = {why}, {self._SCALED}")

    def _local(self, expr: sympy.Expr) -> sympy.Expr:
        """A local-derivative vector as the expression that computes it; anything else as it is."""
        statement = self.program.local_derivative(expr)
        return expr if statement is None else statement.expr

    def _delta_into(self, s: Statement, expr: sympy.Expr, comment: str, whole: str = "") -> list[Line]:
        """``delta = expr`` computed into the layer's delta buffer, or printed whole where it cannot be."""
        name = s.target.name
        lines = self._assigned(expr, name, self._buffer(name, self.program.sizes[s.layer]), [self._scratch(s.layer)])
        if lines is None:
            return [Line(comment, f"{name} = {whole or self._code(expr)}")]
        return [Line(comment if i == 0 else "", line) for i, line in enumerate(lines)]

    def _softmax_output_delta(self, s: Statement, form) -> list[Line]:
        """From w = out * dE/dout and w * (1 - out) in 1 - out, by the derivation's own
        :func:`~chainrule.derive.layers.softmax_output_delta` (emitted with the trainer): finite,
        and without cancelling, where an output rounds to 1."""
        q, w, wq = self._temporaries(s)
        out = sympy.Symbol(form.out, real=True)
        low = sympy.Min(out, sympy.Rational(1, 2))
        weighted = w.expr.xreplace({low: sympy.Symbol("low", real=True)})
        near_one = wq.expr.args[1][0]
        self.helpers |= {"log_one_minus_softmax", "softmax_output_delta"}
        return [
            Line(f"q = 1 - {form.out}, with its digits where {form.out} rounds to 1", f"q = np.exp(log_one_minus_softmax({self._vec(form.net)}))"),
            Line(f"w = {form.out} * dE/d{form.out} = {human(w.expr.xreplace({low: out}), self.program)} where {form.out} <= 1/2 (all but a row's largest)",
                 f"low = np.minimum({form.out}, 0.5)"),
            Line("", f"w = {self._code(weighted, {q.target: 'q'})}"),
            Line(f"w * q, in q where {form.out} > 1/2: {human(near_one.xreplace({q.target: sympy.Symbol('q', real=True)}), self.program)}",
                 f"wq = np.where({form.out} <= 0.5, w * q, {self._code(near_one, {q.target: 'q'})})"),
            Line(f"{s.target} = dE/d{form.net} = {form.out} * (g - sum(g * {form.out})), from w and wq without cancelling, {self._SCALED}",
                 f"{s.target} = softmax_output_delta(w, wq, {self._vec(form.net)})"),
        ]

    def _temporaries(self, s: Statement) -> tuple[Statement, Statement, Statement]:
        """The statements of q = 1 - out, w and wq that a softmax output's delta reads."""
        w, wq = (self.program.assigning(v.name) for v in s.expr.args[:2])
        q = self.program.assigning(naming.SOFTMAX_ONE_MINUS_OUT.format(name=self._layer(s.layer)))
        return q, w, wq

    def _hidden_delta(self, s: Statement) -> list[Line]:
        """``delta = (delta_above W_above) * f'``: the deltas above back through the weights, then
        through the activation (softmax: its Jacobian)."""
        form = self.d.layers[s.layer - 1]
        if isinstance(s.expr, MaxPoolBackprop | AvgPoolBackprop):
            return self._pool_delta(s)
        if s.expr.has(CorrelateBackprop):
            return self._correlated_delta(s, form)
        backprop = s.expr if isinstance(s.expr, (Backprop, sympy.Symbol)) else s.expr.args[-1] if isinstance(s.expr, SoftmaxVJP) else s.expr.args[0]
        delta = s.target.name
        if isinstance(backprop, sympy.Symbol):  # the layer above has no weights: its delta is dE/d(this layer's out)
            buffer = self._buffer(delta, form.size)
            lines = [Line(f"{delta} = {backprop} * d{form.out}/d{form.net}: the delta above is dE/d{form.out} (a layer without weights)",
                          f"np.copyto({buffer}, {backprop})"), Line("", f"{delta} = {buffer}")]
            if s.expr == backprop:
                return lines
        elif s.expr == backprop and form.kind == "flatten":
            W, above = backprop.args
            return [Line(f"{delta} = dE/d{form.out} = {above} {W}: the deltas above, back through the weights (the flatten's delta, read as maps below)",
                         f'{delta} = np.dot({above}, p["{W}"], out={self._buffer(delta, form.size)})')]
        else:
            W, above = backprop.args
            lines = [Line(f"{delta} = ({above} {W}) * d{form.out}/d{form.net}: the deltas above, back through the weights",
                          f'{delta} = np.dot({above}, p["{W}"], out={self._buffer(delta, form.size)})')]
        if isinstance(s.expr, SoftmaxVJP):
            lines.append(Line(f"softmax's Jacobian: {form.out} * (g - sum(g * {form.out}))",
                              f"{delta} = {form.out} * ({delta} - np.sum({delta} * {form.out}, axis=1, keepdims=True))"))
            return lines
        if isinstance(s.expr, Backprop):
            return lines
        local = self._local(s.expr.args[1])
        comment = f"d{form.out}/d{form.net} = {human(local, self.program)}"
        in_place = None if local.is_Symbol else self._in_place(local, self._scratch(s.layer), [])
        if in_place is None:
            return lines + [Line(comment, f"{delta} *= {self._code(local)}")]
        self.buffers.setdefault(f"tmp_{form.name}", form.size)
        return lines + [Line(comment if i == 0 else "", line) for i, line in enumerate(in_place)] + [Line("", f"{delta} *= {self._scratch(s.layer)}")]

    def _upstream_code(self, expr: sympy.Expr) -> str:
        """dE/d(a layer's out) from the layer above: its delta, or a convolution's deltas back
        through its flipped kernel."""
        if isinstance(expr, CorrelateBackprop):
            K, delta, g = expr.args
            self.helpers.add("correlate_backprop")
            return f'correlate_backprop(p["{K}"], {delta}, {self._geometry(g)})'
        return self._name(expr)

    def _pool_delta(self, s: Statement) -> list[Line]:
        """A pool's delta, dE/d(its input): routed to each window's largest input, or spread."""
        delta = s.target.name
        if isinstance(s.expr, MaxPoolBackprop):
            x, up, g = s.expr.args
            self.helpers.add("maxpool_backprop")
            return [Line(f"{delta} = dE/d{x}: each window's dE/d{self._layer(s.layer)} sent to its largest input (the first in row-major order where several are, as PyTorch)",
                         f"{delta} = maxpool_backprop({self._name(x)}, {self._upstream_code(up)}, {self._geometry(g)})")]
        up, g = s.expr.args
        self.helpers.add("avgpool_backprop")
        return [Line(f"{delta} = dE/d(the pool's input): each window's delta spread evenly over its inputs",
                     f"{delta} = avgpool_backprop({self._upstream_code(up)}, {self._geometry(g)})")]

    def _correlated_delta(self, s: Statement, form) -> list[Line]:
        """``delta = (the deltas above correlated with the flipped kernel) * f'``."""
        delta = s.target.name
        up = s.expr if isinstance(s.expr, CorrelateBackprop) else s.expr.args[0]
        lines = [Line(f"{delta} = (the full correlation of {up.args[1]} with the flipped {up.args[0]}) * d{form.out}/d{form.net}",
                      f"{delta} = {self._upstream_code(up)}")]
        if s.expr == up:
            return lines
        local = self._local(s.expr.args[1])
        return lines + [Line(f"d{form.out}/d{form.net} = {human(local, self.program)}", f"{delta} *= {self._code(local)}")]


#: The trainer's helpers for feature maps, from :mod:`chainrule.derive.spatial` (emitted as written there).
SPATIAL_HELPERS = ("correlate", "correlate_kernel_gradient", "correlate_backprop", "maxpool", "maxpool_backprop", "avgpool", "avgpool_backprop")
GEOMETRY_NOTE = "(geometry: channels, height, width, kernel rows, columns, stride rows, columns, padding rows, columns)"
