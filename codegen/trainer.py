"""The emitted trainer's template context: the derivation turned into names, shapes and code lines.

:func:`build_trainer_context` reads a :class:`~chainrule.derive.derivation.Derivation` and returns
a :class:`TrainerContext` holding only strings, numbers, booleans and tuples of those; the
template ``trainer.py.j2`` lays them out. Every expression in the emitted code is printed from the
derivation (the layer form's f', dE/dy and output delta; the chains of small networks; the
optimizer's rule) by :mod:`chainrule.codegen.printers`.

Layout of the emitted parameters: one flat vector ``theta`` (layer by layer, ``W_l`` row-major,
then ``b_l``), with ``params["W1"]`` and friends as views into it, so that an optimizer step is one
pass over one array and the straight-line code of a small network reads and writes all parameters
at once.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sympy

from chainrule.derive import naming
from chainrule.derive.chain import ParamChain
from chainrule.derive.derivation import Derivation
from chainrule.derive.formula import format_expr
from chainrule.derive.layers import LayerForm
from chainrule.derive.network import Network
from chainrule.derive.optimizers import GRAD, OPTIMIZERS, STEP, THETA, first_step_expr
from chainrule.derive.registry import T, X, Y

from .render import render
from .printers import InPlace, NotInPlace, scalar_code, sigmoid, stable_form, vector_code

TEMPLATE = "trainer.py.j2"
#: Straight-line float code replaces the array code for one-sample steps up to this many
#: parameters (benchmarks/RESULTS.md: the measured switch-over).
SCALAR_MAX_PARAMS = 128
#: Ufunc-like calls that take ``out=``: the activation is written straight into its buffer.
_INTO = ("np.tanh(", "np.exp(", "sigmoid(", "np.logaddexp(0.0, ", "np.maximum(")
LOG_OUT = sympy.Symbol("log_out", real=True)
#: Temporaries of a softmax in float code: no unit or parameter can have these names
#: (``max`` and ``sum`` are reserved, so no unit makes ``net_max`` or ``out_sum``).
SOFTMAX_MAX, SOFTMAX_SUM = naming.NET.format(unit="max"), naming.OUT.format(unit="sum")


@dataclass(frozen=True)
class Line:
    """A line of code and the comment above it (``""`` for none)."""

    comment: str
    code: str


@dataclass(frozen=True)
class Slot:
    """A parameter's place in ``theta``: ``name``, NumPy ``shape`` text, ``start``:``stop``."""

    name: str
    shape: str
    start: int
    stop: int


@dataclass(frozen=True)
class TrainerContext:
    """What ``trainer.py.j2`` lays out; see the module docstring."""

    name: str
    spec_file: str
    template: str
    summary: tuple[str, ...]
    inputs: str
    outputs: str
    targets: str
    architecture: str
    slots: tuple[Slot, ...]
    size: int
    frozen: tuple[Slot, ...]
    init_lines: tuple[str, ...]
    sample_x: str
    sample_t: str
    data_path: str
    data_inputs: str
    data_targets: str
    optimizer: str
    hyper: tuple[tuple[str, str], ...]
    state: tuple[str, ...]
    fold_lr: bool
    update_locals: tuple[str, ...]
    update_step: bool
    update_lines: tuple[Line, ...]
    forward_lines: tuple[Line, ...]
    output: str
    loss_lines: tuple[Line, ...]
    backward_lines: tuple[Line, ...]
    scalar_step: tuple[Line, ...]
    formulas: tuple[Line, ...]
    helpers: tuple[str, ...]
    classifier: bool
    epochs: int
    needs_math: bool
    buffers: str
    inputs_count: int
    outputs_count: int
    forward_returns: str
    targets_sum_to_one: bool
    output_delta: str
    loss_name: str
    unit_ones: tuple[tuple[str, int], ...]


def build_trainer_context(d: Derivation, spec_path: str, out_dir: str) -> TrainerContext:
    """The template context of ``d``'s trainer, to be written into ``out_dir``."""
    network, spec = d.network, d.network.spec
    slots = _slots(network)
    vector = _vector_code(d)
    scalar = _scalar_step(d, slots) if _scalar_wanted(d) else ()
    formulas = _formulas(d) if d.small else ()
    updates = _updates(d)
    code = "\n".join(line.code for line in vector[0] + vector[1] + vector[2] + scalar + formulas + updates)
    helpers = tuple(source for name, source in _HELPERS.items() if f"{name}(" in code)
    return TrainerContext(
        name=spec.name,
        spec_file=Path(spec_path).name,
        template=TEMPLATE,
        summary=_summary(d),
        inputs=repr(tuple(spec.inputs)),
        outputs=repr(tuple(network.units(network.depth))),
        targets=repr(tuple(spec.targets)),
        architecture=architecture(d),
        slots=slots,
        size=slots[-1].stop,
        frozen=tuple(s for s in slots if _is_frozen(network, s)),
        init_lines=_init_lines(d),
        sample_x=repr([[float(v) for v in d.values.x]]),
        sample_t=repr([[float(v) for v in d.values.t]]),
        data_path=_data_path(spec, spec_path, out_dir),
        data_inputs=repr(tuple(spec.data.inputs)) if spec.data and spec.data.inputs else "None",
        data_targets=repr(tuple(spec.data.targets)) if spec.data and spec.data.targets else "None",
        optimizer=spec.optimizer.kind,
        hyper=tuple((k, repr(float(v))) for k, v in dict(spec.optimizer.hyper).items()),
        state=OPTIMIZERS[spec.optimizer.kind].state,
        update_locals=tuple(k for k, _ in spec.optimizer.hyper if _uses(updates, k)),
        update_step=_uses(updates, "k"),
        fold_lr=_fold_lr(d),
        update_lines=updates,
        forward_lines=vector[0],
        output=d.layers[-1].out,
        loss_lines=vector[1],
        backward_lines=vector[2],
        scalar_step=scalar,
        formulas=formulas,
        helpers=helpers,
        classifier=network.is_softmax(network.depth) or spec.loss.name == "bce",
        epochs=1000 if spec.data is None else 30,
        needs_math="math." in code or any("math." in h for h in helpers),
        buffers=repr(_buffers(d, code)),
        inputs_count=len(spec.inputs),
        outputs_count=network.sizes[-1],
        forward_returns=", ".join(name for form in d.layers for name in (form.net, form.out)),
        targets_sum_to_one=_targets_sum_to_one(d),
        output_delta=_output_delta_text(d),
        loss_name=spec.loss.formula or spec.loss.name,
        unit_ones=tuple((_ones(form), form.size) for form in d.layers if f'work["{_ones(form)}"]' in code),
    )


def _targets_sum_to_one(d: Derivation) -> bool:
    """True when the output delta's closed form holds only where each row of targets sums to 1
    (softmax with cross-entropy): the trainer then refuses other targets."""
    return bool(d.layers[-1].output.constraint)


def _output_delta_text(d: Derivation) -> str:
    """The output delta's closed form as the emitted comments write it (``delta_o = out_o - T``)."""
    last = d.layers[-1]
    closed = last.output.closed
    return "" if closed is None else f"{last.delta} = {_human(closed, {Y: last.out, T: 'T', X: last.net})}"


def _ones(form: LayerForm) -> str:
    """A [units, 1] column of ones: the rows of a [batch, units] array summed as one product."""
    return f"ones_{form.name}"


def _buffers(d: Derivation, code: str) -> tuple[tuple[str, int], ...]:
    """(name, units) of every [batch, units] buffer: per layer net, out and delta, and the scratch
    and log-sum-exp buffers where the code uses them."""
    out = []
    for form in d.layers:
        out += [(form.net, form.size), (form.out, form.size), (form.delta, form.size)]
        if _scratch(form) in code:
            out.append((f"tmp_{form.name}", form.size))
        if f'work["{_lse(form)}"]' in code:
            out.append((_lse(form), 1))
    return tuple(out)


def render_trainer(d: Derivation, spec_path: str, out_dir: str) -> str:
    """The emitted trainer module's source for ``d``."""
    return render(TEMPLATE, build_trainer_context(d, spec_path, out_dir))


# ---------------------------------------------------------------------------------------------
# Names, shapes and values


def _slots(network: Network) -> tuple[Slot, ...]:
    slots, start = [], 0
    for l in range(1, network.depth + 1):
        rows, cols = network.sizes[l], network.sizes[l - 1]
        slots.append(Slot(naming.LAYER_WEIGHT.format(layer=l), f"({rows}, {cols})", start, start + rows * cols))
        start += rows * cols
        count = network.spec.layers[l - 1].bias_count
        if count:
            slots.append(Slot(naming.LAYER_BIAS.format(layer=l), f"({count},)", start, start + count))
            start += count
    return tuple(slots)


def _is_frozen(network: Network, slot: Slot) -> bool:
    layer = network.spec.layers[int(slot.name[1:]) - 1]
    return ("weights" if slot.name.startswith("W") else "biases") in layer.freeze


def architecture(d: Derivation) -> str:
    """One line that a saved file must match: sizes, activations, biases, loss."""
    parts = [f"{d.network.spec.name}: " + "-".join(str(s) for s in d.network.sizes)]
    for form, layer in zip(d.layers, d.network.spec.layers):
        parts.append(f"{form.name}:{form.activation}:{layer.bias.value}")
    parts.append(d.network.spec.loss.formula or d.network.spec.loss.name)
    return " ".join(parts)


def _summary(d: Derivation) -> tuple[str, ...]:
    spec = d.network.spec
    lines = [f"Inputs: {', '.join(spec.inputs)}."]
    for form, layer in zip(d.layers, spec.layers):
        bias = {"none": "no bias", "shared": "one shared bias", "per_unit": "a bias per unit"}.get(layer.bias.value, layer.bias.value)
        lines.append(f"Layer {form.name}: {form.size} units {', '.join(d.network.units(form.index)[:4])}{', ...' if form.size > 4 else ''}; {form.activation}; {bias}.")
    lines.append(f"Loss: {spec.loss.formula or spec.loss.name} per sample, averaged over the batch.")
    hyper = ", ".join(f"{k} = {v:g}" for k, v in dict(spec.optimizer.hyper).items())
    lines.append(f"Optimizer: {spec.optimizer.kind} ({hyper}).")
    return tuple(lines)


def _init_lines(d: Derivation) -> tuple[str, ...]:
    """Code that rebuilds the derivation's starting values exactly: given numbers, or the same
    seeded draw (``np.random.default_rng([seed, layer]).uniform``)."""
    network, spec = d.network, d.network.spec
    lines = []
    for l, layer in enumerate(spec.layers, start=1):
        W, b = naming.LAYER_WEIGHT.format(layer=l), naming.LAYER_BIAS.format(layer=l)
        if layer.weights is not None:
            lines.append(f'"{W}": {_literal(d.values.W[l - 1])},')
        else:
            fan_in, fan_out = network.sizes[l - 1], network.sizes[l]
            definition = network.activation_def(l)
            he = definition is not None and definition.init == "he"
            limit = float(np.sqrt(6.0 / (fan_in if he else fan_in + fan_out)))
            rule = "He" if he else "Glorot"
            lines.append(f'"{W}": np.random.default_rng([{spec.seed}, {l}]).uniform(-{limit!r}, {limit!r}, size=({fan_out}, {fan_in})),  # {rule}')
        if layer.bias_count:
            values = d.values.b[l - 1]
            given = layer.biases is not None
            lines.append(f'"{b}": {_literal(values)},' if given else f'"{b}": np.zeros({layer.bias_count}),')
    return tuple(lines)


def _literal(array: np.ndarray) -> str:
    return f"np.array({np.asarray(array, dtype=float).tolist()!r})"


def _data_path(spec, spec_path: str, out_dir: str) -> str:
    if spec.data is None:
        return ""
    target = Path(spec_path).resolve().parent / spec.data.path
    return Path(os.path.relpath(target, Path(out_dir).resolve())).as_posix()


# ---------------------------------------------------------------------------------------------
# The layer form as array code


def _vector_code(d: Derivation) -> tuple[tuple[Line, ...], tuple[Line, ...], tuple[Line, ...]]:
    forward: list[Line] = []
    for form in d.layers:
        forward.extend(_forward_layer(d, form))
    return tuple(forward), _loss_lines(d), _backward(d)


def _forward_layer(d: Derivation, form: LayerForm) -> list[Line]:
    network = d.network
    previous = "X" if form.index == 1 else form.previous
    example = f"{naming.NET.format(unit=network.units(form.index)[0])} = {_net_text(network, form.index)}"
    lines = [Line(f"{form.net} = {previous} {form.weight}^T + {form.bias or '0'}, a row per sample ({example})",
                  f'{form.net} = np.dot({previous}, p["{form.weight}"].T, out=work["{form.net}"])')]
    if form.bias is not None:
        lines.append(Line("", f'{form.net} += p["{form.bias}"]'))
    if form.softmax:
        if form.index == d.network.depth and _loss_terms(d).has(LOG_OUT):
            lines.append(Line(f"{form.out} = softmax({form.net}), each row shifted by its largest net; its log-sum-exp kept for the loss",
                              f'{form.out} = softmax({form.net}, out=work["{form.out}"], lse=work["{_lse(form)}"], ones=work["{_ones(form)}"])'))
        else:
            lines.append(Line(f"{form.out} = softmax({form.net}), each row shifted by its largest net",
                              f'{form.out} = softmax({form.net}, out=work["{form.out}"], ones=work["{_ones(form)}"])'))
        return lines
    assert form.f is not None
    code = vector_code(form.f, {X: form.net})
    if code == form.net:
        lines.append(Line(f"{form.out} = {form.net} ({form.activation})", f"{form.out} = {form.net}"))
    elif code.startswith(_INTO) and code.endswith(")") and code.count("(") == 1:
        lines.append(Line(f"{form.out} = {form.activation}({form.net})", f'{form.out} = {code[:-1]}, out=work["{form.out}"])'))
    else:
        in_place = _in_place(form.f, {X: form.net}, form.out, [_scratch(form)])
        if in_place is None:
            lines.append(Line(f"{form.out} = {form.activation}({form.net})", f"{form.out} = {code}"))
        else:
            lines.append(Line(f"{form.out} = {form.activation}({form.net}), in its buffer", f'{form.out} = work["{form.out}"]'))
            lines.extend(Line("", line) for line in in_place)
    return lines


def _scratch(form: LayerForm) -> str:
    """A buffer of the layer's shape for the pieces of an expression computed in place."""
    return f'work["tmp_{form.name}"]'


def _lse(form: LayerForm) -> str:
    return f"lse_{form.name}"


def _in_place(expr: sympy.Expr, names: dict, target: str, scratch: list[str]) -> list[str] | None:
    """The lines computing ``expr`` into ``target`` without temporaries, or None (print it whole)."""
    try:
        return InPlace(names, scratch).lines_into(expr, target)
    except NotInPlace:
        return None


def _net_text(network: Network, l: int, r: int = 0) -> str:
    """net = w*in + ... + b, in the order people write it."""
    sources = network.spec.inputs if l == 1 else [network.out(l - 1, c).name for c in range(network.sizes[l - 1])]
    terms = [f"{network.weight_name(l, r, c)}*{source}" for c, source in enumerate(sources)]
    bias = network.bias_name(l, r)
    return " + ".join(terms + ([bias] if bias else []))


def _loss_terms(d: Derivation) -> sympy.Expr:
    """The scaled per-output loss in arrays: ``out``, ``T`` and, where logarithms of the outputs
    would lose digits or overflow, the net itself (sigmoid) or ``log_out`` (softmax)."""
    network, last = d.network, d.layers[-1]
    expr = network.loss_scale * network.per_output_loss()
    if expr.has(sympy.log) and last.softmax:
        expr = expr.replace(lambda e: isinstance(e, sympy.log) and e.args[0] == Y, lambda e: LOG_OUT)
    elif expr.has(sympy.log) and last.activation == "sigmoid":
        expr = stable_form(expr.xreplace({Y: sigmoid(X)}))
    return expr


def _loss_lines(d: Derivation) -> tuple[Line, ...]:
    last = d.layers[-1]
    expr = _loss_terms(d)
    names = {Y: last.out, T: "T", X: last.net, LOG_OUT: "log_out"}
    lines = []
    coefficient, rest = expr.as_coeff_Mul()
    if _targets_sum_to_one(d) and rest == T * LOG_OUT:
        # -sum T*(net - lse) = sum of lse - sum T*net where every row of T sums to 1 (_inputs checks it)
        scale = "" if coefficient == -1 else f"{vector_code(-coefficient)}*"
        lse, ones = f'work["{_lse(last)}"]', 'work["ones"]'
        return (Line(f"E = mean over the batch of -sum T*log({last.out}) = log-sum-exp of each row (kept by softmax) - sum T*{last.net}"
                     " (each row of T sums to 1)", f"E = {scale}(np.vdot({ones}, {lse}) - np.vdot(T, {last.net}))" if scale
                     else f"E = np.vdot({ones}, {lse}) - np.vdot(T, {last.net})"),
                Line("", "return float(E) / X.shape[0]"))
    if expr.has(LOG_OUT):
        lines.append(Line(f"log({last.out}) = {last.net} - log-sum-exp of the row (kept by softmax): no log(0) where an output underflows",
                          f'log_out = np.subtract({last.net}, work["{_lse(last)}"], out={_scratch(last)})'))
    per_output = d.network.spec.loss.formula or d.network.spec.loss.name
    comment = f"E = mean over the batch of the sum over outputs of {per_output}"
    sums = _loss_sums(expr, names, _scratch(last))
    if sums is None:
        lines.append(Line(comment, f"return float(({vector_code(expr, names)}).sum()) / X.shape[0]"))
        return tuple(lines)
    for i, (pre, total) in enumerate(sums):
        lines.extend(Line(comment if (i == 0 and j == 0) else "", code) for j, code in enumerate(pre))
        if not pre and i == 0:
            lines.append(Line(comment, f"E = {total}"))
        else:
            lines.append(Line("", f"E {'=' if i == 0 else '+='} {total}"))
    lines.append(Line("", "return float(E) / X.shape[0]"))
    return tuple(lines)


def _loss_sums(expr: sympy.Expr, names: dict, scratch: str) -> list[tuple[list[str], str]] | None:
    """The loss summed over the batch as dot products, term by term: ``c*t*u`` is
    ``c*np.vdot(T, u)`` and ``c*u**2`` is ``c*np.vdot(u, u)``, ``u`` computed in place into the
    scratch buffer; None when a term is neither (the caller sums the whole expression)."""
    out = []
    for term in sympy.Add.make_args(expr):
        coefficient, factors = term.as_coeff_mul()
        scale = "" if coefficient == 1 else "-" if coefficient == -1 else f"{vector_code(coefficient)}*"
        rest = sympy.Mul(*factors)
        if T in factors and not (rest / T).has(T):
            left, right = "T", rest / T
        elif len(factors) == 1 and isinstance(rest, sympy.Pow) and rest.args[1] == 2:
            left = right = rest.args[0]
        else:
            return None
        atom = names.get(right) if isinstance(right, sympy.Symbol) else None
        pre = [] if atom is not None else _in_place(right, names, scratch, [])
        if pre is None:
            return None
        source = atom or scratch
        out.append((pre, f"{scale}np.vdot({'T' if left == 'T' else source}, {source})"))
    return out


def _backward(d: Derivation) -> tuple[Line, ...]:
    lines = list(_output_delta(d))
    for form in reversed(d.layers):
        previous = "X" if form.index == 1 else form.previous
        lines.append(Line(f"dE/d{form.weight} = {form.delta}^T {previous} (dE/dw = delta of its unit * the output it multiplies)",
                          f'np.dot({form.delta}.T, {previous}, out=grads["{form.weight}"])'))
        if form.bias is not None and form.shared_bias:
            lines.append(Line(f"dE/d{form.bias} = sum of {form.delta} (one bias shared by the layer)", f'grads["{form.bias}"][0] = {form.delta}.sum()'))
        elif form.bias is not None:
            lines.append(Line(f"dE/d{form.bias} = {form.delta} summed over the batch (a row of ones times {form.delta}: one BLAS call)",
                              f'np.dot(work["ones"], {form.delta}, out=grads["{form.bias}"])'))
        if form.index == 1:
            break
        below = d.layers[form.index - 2]
        lines.extend(_hidden_delta(form, below))
    return tuple(lines)


def _output_delta(d: Derivation) -> list[Line]:
    last = d.layers[-1]
    output = last.output
    assert output is not None
    names = {Y: last.out, T: "T", X: last.net}
    scaled = "times scale (the batch mean and, for sgd, the rate)"
    if output.closed is not None:
        why = f"dE/dnet = {_human(output.closed, names)}" + (f" ({output.constraint})" if output.constraint else "")
        lines = _delta_in_place(last, output.closed, names, f"{last.delta} = {why}, {scaled}")
    elif last.softmax:
        lines = [
            Line(f"g = dE/d{last.out} = {_human(output.dE_dy, names)}", f"g = {vector_code(output.dE_dy, names)}"),
            Line(f"{last.delta} = dE/d{last.net} = {last.out} * (g - sum(g * {last.out})) (softmax's Jacobian), {scaled}",
                 f"{last.delta} = {last.out} * (g - np.sum(g * {last.out}, axis=1, keepdims=True))"),
        ]
    else:
        local = last.f_prime_out if last.f_prime_out is not None else last.f_prime
        why = f"{last.delta} = dE/d{last.out} * d{last.out}/d{last.net} = ({_human(output.dE_dy, names)}) * ({_human(local, names)}), {scaled}"
        lines = _delta_in_place(last, sympy.Mul(output.dE_dy, local), names, why, f"({vector_code(output.dE_dy, names)}) * ({vector_code(local, names)})")
    lines.append(Line("", f"{last.delta} *= scale"))
    return lines


def _delta_in_place(form: LayerForm, expr: sympy.Expr, names: dict, comment: str, whole: str = "") -> list[Line]:
    """``delta = expr`` computed into the layer's delta buffer, or printed whole where it cannot be."""
    in_place = _in_place(expr, names, form.delta, [_scratch(form)])
    if in_place is None:
        return [Line(comment, f"{form.delta} = {whole or vector_code(expr, names)}")]
    first = in_place[0].replace(f"out={form.delta})", f'out=work["{form.delta}"])')
    if first != in_place[0] and first.endswith(f'out=work["{form.delta}"])'):
        return [Line(comment, f"{form.delta} = {first}")] + [Line("", line) for line in in_place[1:]]
    return [Line(comment, f'{form.delta} = work["{form.delta}"]')] + [Line("", line) for line in in_place]


def _hidden_delta(above: LayerForm, form: LayerForm) -> list[Line]:
    local = form.f_prime_out if form.f_prime_out is not None else form.f_prime
    lines = [Line(f"{form.delta} = ({above.delta} {above.weight}) * d{form.out}/d{form.net}: the deltas above, back through the weights",
                  f'{form.delta} = np.dot({above.delta}, p["{above.weight}"], out=work["{form.delta}"])')]
    if form.softmax:
        lines.append(Line(f"softmax's Jacobian: {form.out} * (g - sum(g * {form.out}))", f"{form.delta} = {form.out} * ({form.delta} - np.sum({form.delta} * {form.out}, axis=1, keepdims=True))"))
        return lines
    assert local is not None
    names = {Y: form.out, X: form.net}
    if local == 1:
        return lines
    comment = f"d{form.out}/d{form.net} = {_human(local, names)}"
    in_place = None if isinstance(local, sympy.Symbol) else _in_place(local, names, _scratch(form), [])
    if in_place is None:
        lines.append(Line(comment, f"{form.delta} *= {vector_code(local, names)}"))
    else:
        lines += [Line(comment if i == 0 else "", line) for i, line in enumerate(in_place)] + [Line("", f"{form.delta} *= {_scratch(form)}")]
    return lines


def _human(expr: sympy.Expr, names: dict) -> str:
    return format_expr(expr.xreplace({s: sympy.Symbol(n, real=True) for s, n in names.items()}))


# ---------------------------------------------------------------------------------------------
# The optimizer


def _uses(lines: tuple[Line, ...], name: str) -> bool:
    return any(re.search(rf"\b{name}\b", line.code) for line in lines)


def _fold_lr(d: Derivation) -> bool:
    """Plain sgd takes lr into the deltas: theta -= grad is then the whole update."""
    return d.network.spec.optimizer.kind == "sgd"


def _updates(d: Derivation) -> tuple[Line, ...]:
    """The optimizer's rule over the flat vectors; frozen slices kept where decay would move them."""
    lines = _rule_lines(d)
    hyper = dict(d.network.spec.optimizer.hyper)
    frozen = [s for s in _slots(d.network) if _is_frozen(d.network, s)]
    if not frozen or not (hyper.get("weight_decay") or d.network.spec.optimizer.kind == "adamw"):
        return lines
    keep = tuple(Line("frozen in the spec: weight decay must not move it" if i == 0 else "", f"kept_{s.name} = theta[{s.start}:{s.stop}].copy()") for i, s in enumerate(frozen))
    restore = tuple(Line("", f"theta[{s.start}:{s.stop}] = kept_{s.name}") for s in frozen)
    return keep + lines + restore


def _rule_lines(d: Derivation) -> tuple[Line, ...]:
    kind, hyper = d.network.spec.optimizer.kind, dict(d.network.spec.optimizer.hyper)
    if _fold_lr(d):
        lines = []
        if hyper.get("weight_decay"):
            lines.append(Line("weight decay: theta - lr*(g + weight_decay*theta), with lr*g already in grad", "theta *= 1.0 - lr*weight_decay"))
        lines.append(Line("theta - lr*dE/dtheta (lr was taken into the deltas)", "theta -= grad"))
        return tuple(lines)
    zero = {sympy.Symbol(k, real=True): sympy.Integer(0) for k, v in hyper.items() if v == 0}
    names = {THETA: "theta", GRAD: "grad", STEP: "k"}
    lines = []
    for target, expr in OPTIMIZERS[kind].rule:
        expr = expr.xreplace(zero)
        if target == THETA:
            lines.append(Line(f"theta = {_human(expr, {})}", f"theta[...] = {vector_code(expr, names)}"))
        elif expr != GRAD or target.name != "gd":
            lines.append(Line("", f"{target.name}[...] = {vector_code(expr, names)}" if target.name != "gd" else f"gd = {vector_code(expr, names)}"))
        else:
            lines.append(Line("", "gd = grad"))
    return tuple(lines)


# ---------------------------------------------------------------------------------------------
# Small networks: straight-line float code and the per-weight chains


def _scalar_wanted(d: Derivation) -> bool:
    """Straight-line float steps for small sgd networks whose output delta closes (and with no
    hidden softmax, whose Jacobian the unit-by-unit deltas do not spell out)."""
    network = d.network
    if network.parameter_count > SCALAR_MAX_PARAMS or network.spec.optimizer.kind != "sgd":
        return False
    return d.layers[-1].output.closed is not None and not any(form.softmax for form in d.layers[:-1])


def _scalar_forward(d: Derivation) -> list[Line]:
    network = d.network
    lines = []
    for l in range(1, network.depth + 1):
        nets = [network.net(l, r).name for r in range(network.sizes[l])]
        outs = [network.out(l, r).name for r in range(network.sizes[l])]
        for r, (net, out) in enumerate(zip(nets, outs)):
            lines.append(Line("", f"{net} = {_net_text(network, l, r)}"))
            if not network.is_softmax(l):
                lines.append(Line("", f"{out} = {scalar_code(network.activation(l), {X: net})}"))
        if network.is_softmax(l):
            lines.append(Line("softmax, shifted by the largest net (same value, no overflow)", f"{SOFTMAX_MAX} = max({', '.join(nets)})"))
            lines.extend(Line("", f"{out} = math.exp({net} - {SOFTMAX_MAX})") for net, out in zip(nets, outs))
            lines.append(Line("", f"{SOFTMAX_SUM} = {' + '.join(outs)}"))
            lines.extend(Line("", f"{out} /= {SOFTMAX_SUM}") for out in outs)
    return lines


def _unpack(d: Derivation) -> list[Line]:
    network, spec = d.network, d.network.spec
    names = [ref.name for ref in _flat_refs(network)]
    return [
        Line("", f"{_targets(names)} = self.theta.tolist()"),
        Line("", f"{_targets(spec.inputs)} = x"),
        Line("", f"{_targets(spec.targets)} = t"),
    ]


def _targets(names) -> str:
    """``a, b`` (or ``a,`` for one name) as the left side of an unpacking assignment."""
    return ", ".join(names) + ("," if len(names) == 1 else "")


def _flat_refs(network: Network) -> list:
    """Parameters in the order of ``theta``: each layer's weights row by row, then its biases."""
    refs = []
    for l in range(1, network.depth + 1):
        layer = [ref for ref in network.parameters() if ref.layer == l]
        refs += [r for r in layer if r.is_weight] + [r for r in layer if not r.is_weight]
    return refs


def _scalar_step(d: Derivation, slots: tuple[Slot, ...]) -> tuple[Line, ...]:
    network = d.network
    lines = _unpack(d) + _scalar_forward(d)
    loss = network.loss_definition()
    lines.append(Line("E, the loss of this sample", f"E = {scalar_code(loss)}"))
    last = d.layers[-1]
    closed = last.output.closed
    depth = network.depth
    for l in range(depth, 0, -1):
        for r in range(network.sizes[l]):
            out, net, delta = network.out(l, r), network.net(l, r), naming.DELTA_UNIT.format(unit=network.units(l)[r])
            if l == depth:
                code = scalar_code(closed, {Y: out.name, T: network.target(r).name, X: net.name})
                lines.append(Line(f"{delta} = dE/d{net.name}", f"{delta} = {code}"))
            else:
                form = d.layers[l - 1]
                local = form.f_prime_out if form.f_prime_out is not None else form.f_prime
                upstream = " + ".join(f"{naming.DELTA_UNIT.format(unit=network.units(l + 1)[k])}*{network.weight_name(l + 1, k, r)}" for k in range(network.sizes[l + 1]))
                lines.append(Line(f"{delta} = (sum of the deltas above times their weights) * d{out.name}/d{net.name}",
                                  f"{delta} = ({upstream})*{_factor(scalar_code(local, {Y: out.name, X: net.name}))}"))
    hyper = dict(network.spec.optimizer.hyper)
    rule = first_step_expr("sgd", hyper)
    frozen = {(s.name) for s in slots if _is_frozen(network, s)}
    updated = []
    for ref in _flat_refs(network):
        layer_slot = (naming.LAYER_WEIGHT if ref.is_weight else naming.LAYER_BIAS).format(layer=ref.layer)
        if layer_slot in frozen:
            updated.append(ref.name)
            continue
        gradient = _scalar_gradient(network, ref)
        updated.append(scalar_code(rule, {THETA: ref.name, GRAD: sympy.Symbol("GRADIENT")}).replace("GRADIENT", f"({gradient})"))
    lines.append(Line("theta - lr*dE/dtheta for every parameter; dE/dw = delta of its unit * the output it multiplies", f"self.theta[:] = ({', '.join(updated)},)"))
    lines.append(Line("", "return E"))
    return tuple(lines)


def _scalar_gradient(network: Network, ref) -> str:
    unit = naming.DELTA_UNIT.format(unit=network.units(ref.layer)[ref.row])
    if not ref.is_weight:
        layer = network.spec.layers[ref.layer - 1]
        if layer.bias.value == "shared":
            return " + ".join(naming.DELTA_UNIT.format(unit=u) for u in network.units(ref.layer))
        return unit
    source = network.spec.inputs[ref.col] if ref.layer == 1 else network.out(ref.layer - 1, ref.col).name
    return f"{unit}*{source}"


def _factor(code: str) -> str:
    return code if code.replace("_", "").isalnum() else f"({code})"


def _operand(expr: sympy.Expr) -> str:
    """A factor of a product as float code: sums and negatives in parentheses."""
    code = scalar_code(expr)
    return f"({code})" if expr.is_Add or code.startswith("-") else code


def _formulas(d: Derivation) -> tuple[Line, ...]:
    """dE/dθ for every parameter of a small network as its chain writes it, path by path."""
    lines = _unpack(d) + _scalar_forward(d)
    for name, chain in d.chains.items():
        if chain.cut_layer is not None:
            return ()
        lines.append(Line(f"dE/d{name} = {_chain_names(chain)}", f"{naming.GRADIENT_CODE.format(name=name)} = {_chain_code(chain)}"))
    gradient_names = ", ".join(f'"{name}": {naming.GRADIENT_CODE.format(name=name)}' for name in d.chains)
    lines.append(Line("", f"return {{{gradient_names}}}"))
    return tuple(lines)


def _chain_names(chain: ParamChain) -> str:
    return " + ".join(" * ".join(f"d{f.of.name}/d{f.wrt.name}" for f in path.factors) for path in chain.paths)


def _chain_code(chain: ParamChain) -> str:
    paths = []
    for path in chain.paths:
        kept = [_operand(f.human) for f in path.factors if f.human != 1]
        paths.append("*".join(kept) if kept else "1.0")
    return " + ".join(paths)


# ---------------------------------------------------------------------------------------------
# Helpers the emitted module defines, by name: written once here, emitted where the code calls them

_HELPERS = {
    "sigmoid": '''def sigmoid(z, out=None):
    """1 / (1 + exp(-z)) without overflow at any z: exp(-logaddexp(0, -z))."""
    out = np.negative(z, out=out)
    np.logaddexp(0.0, out, out=out)
    np.negative(out, out=out)
    return np.exp(out, out=out)''',
    "softmax": '''def softmax(z, out=None, lse=None, ones=None):
    """exp(z_k) / sum_m exp(z_m) per row, shifted by the row's largest z (same value, no overflow);
    with ``lse`` ([batch, 1]), the row's log-sum-exp log(sum_m exp(z_m)) is written there too;
    with ``ones`` ([units, 1]), the rows are summed as one matrix product (a reduction along short
    rows costs twice as much)."""
    top = np.maximum.reduce(z, axis=1, keepdims=True)
    out = np.subtract(z, top, out=out)
    np.exp(out, out=out)
    total = np.add.reduce(out, axis=1, keepdims=True) if ones is None else np.dot(out, ones, out=lse)
    out /= total
    if lse is not None:
        np.log(total, out=lse)
        lse += top
    return out''',
    "log_softmax": '''def log_softmax(z):
    """log(softmax(z)) per row, as z - max - log(sum(exp(z - max))): finite where softmax underflows."""
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))''',
    "erf": '''def erf(z):
    """The error function, elementwise (math.erf: NumPy has none)."""
    return np.vectorize(math.erf, otypes=[z.dtype])(z)''',
}
