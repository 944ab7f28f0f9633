"""The layer form of a derivation as NumPy array code: forward, loss and backward lines.

Each :class:`Line` is a line of the emitted trainer and the comment above it, naming the chain-rule
factors it implements. Every expression is printed from the derivation (the layer form's f', dE/dy
and output delta) by :mod:`chainrule.codegen.trainer.printers`; buffers are named once, here.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from chainrule.derive import naming
from chainrule.derive.derivation import Derivation
from chainrule.derive.formula import format_expr
from chainrule.derive.layers import LayerForm
from chainrule.derive.network import Network
from chainrule.derive.registry import T, X, Y

from chainrule.codegen.trainer import pysource
from chainrule.derive.layers import LOG_ONE_MINUS_OUT, LOG_OUT, ONE_MINUS_OUT, OutputDelta, local_derivative, stable_loss

from chainrule.codegen.trainer.printers import InPlace, NotInPlace, vector_code

#: Ufunc-like calls that take ``out=``: the activation is written straight into its buffer.
_INTO = ("np.tanh(", "np.exp(", "sigmoid(", "np.logaddexp(0.0, ", "np.maximum(")


@dataclass(frozen=True)
class Line:
    """A line of code and the comment above it (``""`` for none). The comment is text, escaped
    where it is printed; the code is printed from the derivation (:func:`pysource.code`)."""

    comment: str
    code: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "code", pysource.code(self.code))


def array_code(d: Derivation) -> tuple[tuple[Line, ...], tuple[Line, ...], tuple[Line, ...]]:
    """The forward, loss and backward lines of ``d``'s trainer, a row per sample."""
    forward: list[Line] = []
    for form in d.layers:
        forward.extend(_forward_layer(d, form))
    return tuple(forward), _loss_lines(d), _backward(d)


def targets_sum_to_one(d: Derivation) -> bool:
    """True when the output delta's closed form holds only where each row of targets sums to 1
    (softmax with cross-entropy): the trainer then refuses other targets."""
    return bool(d.layers[-1].output.constraint)


def output_delta_text(d: Derivation) -> str:
    """The output delta's closed form as the emitted comments write it (``delta_o = out_o - T``)."""
    last = d.layers[-1]
    closed = last.output.closed
    return "" if closed is None else f"{last.delta} = {human(closed, {Y: last.out, T: 'T', X: last.net})}"


def ones_name(form: LayerForm) -> str:
    """A [units, 1] column of ones: the rows of a [batch, units] array summed as one product."""
    return f"ones_{form.name}"


def buffers(d: Derivation, code: str) -> tuple[tuple[str, int], ...]:
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



def _forward_layer(d: Derivation, form: LayerForm) -> list[Line]:
    network = d.network
    previous = "X" if form.index == 1 else form.previous
    example = f"{naming.NET.format(unit=network.units(form.index)[0])} = {net_text(network, form.index, elide=True)}"
    lines = [Line(f"{form.net} = {previous} {form.weight}^T + {form.bias or '0'}, a row per sample ({example})",
                  f'{form.net} = np.dot({previous}, p["{form.weight}"].T, out=work["{form.net}"])')]
    if form.bias is not None:
        lines.append(Line("", f'{form.net} += p["{form.bias}"]'))
    if form.softmax:
        if form.index == d.network.depth and _loss_terms(d).has(LOG_OUT):
            lines.append(Line(f"{form.out} = softmax({form.net}), each row shifted by its largest net; its log-sum-exp kept for the loss",
                              f'{form.out} = softmax({form.net}, out=work["{form.out}"], lse=work["{_lse(form)}"], ones=work["{ones_name(form)}"])'))
        else:
            lines.append(Line(f"{form.out} = softmax({form.net}), each row shifted by its largest net",
                              f'{form.out} = softmax({form.net}, out=work["{form.out}"], ones=work["{ones_name(form)}"])'))
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


def net_text(network: Network, l: int, r: int = 0, elide: bool = False) -> str:
    """net = w*in + ... + b, in the order people write it; with ``elide``, more than four
    products as people shorten them (``w1*x1 + w2*x2 + ... + w784*x784 + b1``)."""
    sources = network.spec.inputs if l == 1 else [network.out(l - 1, c).name for c in range(network.sizes[l - 1])]
    terms = [f"{network.weight_name(l, r, c)}*{source}" for c, source in enumerate(sources)]
    if elide and len(terms) > 4:
        terms = terms[:2] + ["..."] + terms[-1:]
    bias = network.bias_name(l, r)
    return " + ".join(terms + ([bias] if bias else []))


def _loss_terms(d: Derivation) -> sympy.Expr:
    """The scaled per-output loss in arrays (the derivation's :func:`stable_loss`)."""
    return stable_loss(d.network)


def _loss_lines(d: Derivation) -> tuple[Line, ...]:
    last = d.layers[-1]
    expr = _loss_terms(d)
    names = {Y: last.out, T: "T", X: last.net, LOG_OUT: "log_out"}
    lines = []
    coefficient, rest = expr.as_coeff_Mul()
    if targets_sum_to_one(d) and rest == T * LOG_OUT:
        # -sum T*(net - lse) = sum of lse - sum T*net where every row of T sums to 1 (_inputs checks it)
        scale = "" if coefficient == -1 else f"{vector_code(-coefficient)}*"
        lse, ones = f'work["{_lse(last)}"]', 'work["ones"]'
        return (Line(f"E = mean over the batch of -sum T*log({last.out}) = log-sum-exp of each row (kept by softmax) - sum T*{last.net}"
                     " (each row of T sums to 1)", f"E = {scale}(np.vdot({ones}, {lse}) - np.vdot(T, {last.net}))" if scale
                     else f"E = np.vdot({ones}, {lse}) - np.vdot(T, {last.net})"),
                Line("", "return float(E) / X.shape[0]"))
    if expr.has(LOG_ONE_MINUS_OUT):
        names[LOG_ONE_MINUS_OUT] = "log_one_minus_out"
        lines.append(Line(f"log({last.out}) and log(1 - {last.out}), with the digits of an output near 0 or 1 (from the row's largest net)",
                          f"log_out, log_one_minus_out = log_softmax({last.net}), log_one_minus_softmax({last.net})"))
    elif expr.has(LOG_OUT):
        lines.append(Line(f"log({last.out}) = {last.net} - log-sum-exp of the row (kept by softmax): no log(0) where an output underflows",
                          f'log_out = np.subtract({last.net}, work["{_lse(last)}"], out={_scratch(last)})'))
    per_output = d.network.spec.loss.formula or d.network.spec.loss.name
    comment = f"E = mean over the batch of the sum over outputs of {per_output}"
    sums = None if expr.has(LOG_ONE_MINUS_OUT) else _loss_sums(expr, names, _scratch(last))
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
        why = f"dE/dnet = {human(output.closed, names)}" + (f" ({output.constraint})" if output.constraint else "")
        lines = _delta_in_place(last, output.closed, names, f"{last.delta} = {why}, {scaled}")
    elif last.softmax and output.weighted is not None:
        lines = _softmax_output_delta(last, output, names, scaled)
    elif last.softmax:
        lines = [
            Line(f"g = dE/d{last.out} = {human(output.dE_dy, names)}", f"g = {vector_code(output.dE_dy, names)}"),
            Line(f"{last.delta} = dE/d{last.net} = {last.out} * (g - sum(g * {last.out})) (softmax's Jacobian), {scaled}",
                 f"{last.delta} = {last.out} * (g - np.sum(g * {last.out}, axis=1, keepdims=True))"),
        ]
    else:
        local = local_derivative(last)
        why = f"{last.delta} = dE/d{last.out} * d{last.out}/d{last.net} = ({human(output.dE_dy, names)}) * ({human(local, names)}), {scaled}"
        lines = _delta_in_place(last, sympy.Mul(output.dE_dy, local), names, why, f"({vector_code(output.dE_dy, names)}) * ({vector_code(local, names)})")
    lines.append(Line("", f"{last.delta} *= scale"))
    return lines


def _softmax_output_delta(last: LayerForm, output: OutputDelta, names: dict, scaled: str) -> list[Line]:
    """A softmax output's delta from w = out * dE/dout and w * (1 - out) in 1 - out, by the
    derivation's own :func:`~chainrule.derive.layers.softmax_output_delta` (emitted with the
    trainer): finite, and without cancelling, where an output rounds to 1."""
    low, q = {**names, Y: "low"}, {**names, ONE_MINUS_OUT: "q"}
    return [
        Line(f"q = 1 - {last.out}, with its digits where {last.out} rounds to 1", f"q = np.exp(log_one_minus_softmax({last.net}))"),
        Line(f"w = {last.out} * dE/d{last.out} = {human(output.weighted, names)} where {last.out} <= 1/2 (all but a row's largest)",
             f"low = np.minimum({last.out}, 0.5)"),
        Line("", f"w = {vector_code(output.weighted, low)}"),
        Line(f"w * q, in q where {last.out} > 1/2: {human(output.weighted_near_one, q)}",
             f"wq = np.where({last.out} <= 0.5, w * q, {vector_code(output.weighted_near_one, q)})"),
        Line(f"{last.delta} = dE/d{last.net} = {last.out} * (g - sum(g * {last.out})), from w and wq without cancelling, {scaled}",
             f"{last.delta} = softmax_output_delta(w, wq, {last.net})"),
    ]


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
    local = None if form.softmax else local_derivative(form)
    lines = [Line(f"{form.delta} = ({above.delta} {above.weight}) * d{form.out}/d{form.net}: the deltas above, back through the weights",
                  f'{form.delta} = np.dot({above.delta}, p["{above.weight}"], out=work["{form.delta}"])')]
    if form.softmax:
        lines.append(Line(f"softmax's Jacobian: {form.out} * (g - sum(g * {form.out}))", f"{form.delta} = {form.out} * ({form.delta} - np.sum({form.delta} * {form.out}, axis=1, keepdims=True))"))
        return lines
    assert local is not None
    names = {Y: form.out, X: form.net}
    if local == 1:
        return lines
    comment = f"d{form.out}/d{form.net} = {human(local, names)}"
    in_place = None if isinstance(local, sympy.Symbol) else _in_place(local, names, _scratch(form), [])
    if in_place is None:
        lines.append(Line(comment, f"{form.delta} *= {vector_code(local, names)}"))
    else:
        lines += [Line(comment if i == 0 else "", line) for i, line in enumerate(in_place)] + [Line("", f"{form.delta} *= {_scratch(form)}")]
    return lines


def human(expr: sympy.Expr, names: dict) -> str:
    return format_expr(expr.xreplace({s: sympy.Symbol(n, real=True) for s, n in names.items()}))

