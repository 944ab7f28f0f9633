"""The report's per-layer parts: the spec table's layer rows and the layer form (delta recursion).

The layer form is written with the vectors and matrices named as in the emitted trainer
(``W2``, ``b2``, ``net_o``, ``out_o``, ``delta_o``), each elementwise piece printed from the
derivation's :class:`~chainrule.derive.layers.LayerForm` (f', dE/dy, the output delta, derived by
sympy on generic symbols). For a network whose layers have at most :data:`NUMBERS_MAX` units, the
deltas and gradient matrices are also given with their numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import sympy

from chainrule.derive.derivation import Derivation
from chainrule.derive.layers import LayerForm
from chainrule.derive.program import Op, SoftmaxVJP, vector, in_vectors
from chainrule.derive.registry import X

from chainrule.codegen.report.equations import ROW_WIDTH, Display, Row, equation, math_pieces, parenthesized
from chainrule.codegen.report.latex import Tex, activation_tex, counted, escape_text, math_tex, name_tex, number_tex, vector_tex, width

#: Layers of at most this many units (and inputs) get their delta and gradient numbers.
NUMBERS_MAX = 6
#: Unit lists in the spec table are cut to their first and last names past this many.
UNITS_LISTED = 6
#: A matrix column's width per character of :func:`~chainrule.codegen.report.latex.width` (digits are
#: 5.5 pt wide against its average of about 6.5 pt), and the space between two columns.
DIGIT_WIDTH, COLUMN_GAP = 0.85, 1.6


@dataclass(frozen=True)
class SpecRow:
    """A row of the spec table: one layer (or the inputs)."""

    label: Tex
    units: Tex
    activation: Tex
    bias: Tex
    weights: Tex


def _names(names: tuple[str, ...]) -> Tex:
    shown = [f"${name_tex(n)}$" for n in names]
    if len(shown) > UNITS_LISTED:
        shown = shown[:3] + [r"\dots"] + shown[-1:]
    return Tex(", ".join(shown) + (f" ({len(names):,})" if len(names) > UNITS_LISTED else ""))


def spec_rows(d: Derivation) -> tuple[SpecRow, ...]:
    """The inputs, then one row per layer: units, activation (its definition), bias, weights."""
    net, spec = d.network, d.network.spec
    rows = [SpecRow(Tex("input"), _names(spec.inputs), Tex(""), Tex(""), Tex(""))]
    for l, layer in enumerate(spec.layers, start=1):
        bias = {"shared": "shared", "per_unit": "per unit", "none": "none"}[layer.bias.value]
        if layer.bias_count:
            first = net.bias_name(l, 0) or ""
            bias += f": ${name_tex(first)}$" + (r", \dots" if layer.bias_count > 1 else "")
        given = "given" if layer.weights is not None else f"seeded ({spec.seed})"
        frozen = f"; frozen: {escape_text(', '.join(layer.freeze))}" if layer.freeze else ""
        first_weight = net.weight_name(l, 0, 0)
        weights = f"${name_tex(first_weight)}, \\dots$ {given}{frozen}"
        rows.append(SpecRow(Tex(f"{escape_text(layer.name)} (layer {l})"), _names(layer.units), activation_definition(d, l), Tex(bias), Tex(weights)))
    return tuple(rows)


def activation_definition(d: Derivation, l: int) -> Tex:
    """``sigmoid: 1/(1+e^{-x})``, or the formula, in math."""
    net = d.network
    activation = net.spec.layers[l - 1].activation
    label = escape_text(activation.name if activation.expression is None else "formula")
    if net.is_softmax(l):
        return Tex(label + r": $e^{x_k} / \sum_j e^{x_j}$")
    # each branch with its common factor out, as people write elu: 0.18 (e^x - 1), not -0.18 + 0.18 e^x
    definition = math_tex(net.activation(l).replace(
        lambda e: isinstance(e, sympy.Piecewise), lambda e: sympy.Piecewise(*[(sympy.factor_terms(v), c) for v, c in e.args])))
    return Tex(f"{label}: ${definition}$")


# ---------------------------------------------------------------------------------------------
# The layer form


def _factor_pieces(expr: sympy.Expr, operator: str = "") -> list[str]:
    """``expr`` as a factor of a product, in pieces that rows may break between (a sum in plain
    parentheses, which TeX lets open on one row and close on the next), after ``operator``."""
    parts = math_pieces(expr, vectors=True)
    if expr.is_Add:
        parts = parenthesized(parts)
    parts[0] = f"{operator} {parts[0]}" if operator else parts[0]
    return parts


def layer_displays(d: Derivation) -> tuple[Display, ...]:
    """Per layer, output layer first: forward, local derivative, delta, gradients; then (small
    layers) their numbers, in a display of their own: an ``align*`` is as wide as its widest
    left side plus its widest right side, and a matrix's rows were fitted to their own left sides."""
    out = []
    for form in reversed(d.layers):
        out.append(_layer_display(d, form))
        numbers = _numbers(d, form)
        if numbers:
            out.append(Display(Tex("With the numbers of the sample:"), tuple(numbers)))
    return tuple(out)


def _layer_display(d: Derivation, form: LayerForm) -> Display:
    """The layer's statements of the layer program (:attr:`Derivation.program`), in vectors."""
    v = vector_tex
    statements = {s.rule: s for s in d.program.layer(form.index)}
    printer = _ProgramTex(d)
    rows = list(equation(v(form.net), [printer.pieces(statements["weighted sums"].written)]))
    rows += equation(v(form.out), [_activation_applied(d, form)])
    local = statements.get("local derivative")
    if local is not None:
        rows += equation(Tex(rf"\frac{{\partial {v(form.out)}}}{{\partial {v(form.net)}}}"), [math_pieces(local.written, vectors=True)])
    delta = statements.get("output delta") or statements["delta"]
    rows += equation(v(form.delta), [printer.pieces(delta.written)])
    for rule, parameter in (("weight gradient", form.weight), ("bias gradient", form.bias)):
        if rule in statements:
            rows += equation(Tex(rf"\frac{{\partial E}}{{\partial {v(parameter)}}}"), [printer.pieces(statements[rule].written)])
    caption = Tex(f"Layer {form.index}, {escape_text(form.name)} ({counted(form.size, 'unit')}):")
    return Display(caption, tuple(rows), _note(d, form, delta, printer))


def _note(d: Derivation, form: LayerForm, delta, printer: "_ProgramTex") -> Tex:
    """What the delta rule relies on, or what a symbol in it stands for."""
    v = vector_tex
    if delta.simplified or delta.note:
        loss = escape_text(d.network.spec.loss.name if d.network.spec.loss.formula is None else "the loss")
        relies = f" ({escape_text(delta.note)})." if delta.note else "."
        return Tex(f"With {escape_text(form.activation)} and {loss}, sympy simplifies $\\partial E/\\partial {v(form.out)} \\odot \\partial {v(form.out)}/\\partial {v(form.net)}$ to this" + relies)
    if isinstance(delta.written, SoftmaxVJP):
        upstream = " ".join(printer.factor(delta.written.args[1]))
        return Tex(rf"Here $\mathbf{{g}} = {upstream}$ and $\mathbf{{1}}$ is a vector of ones (the softmax's Jacobian times $\mathbf{{g}}$).")
    return Tex("")


def _activation_applied(d: Derivation, form: LayerForm) -> list[str]:
    if form.softmax:
        return [rf"\operatorname{{softmax}}\left({vector_tex(form.net)}\right)"]
    activation = d.network.spec.layers[form.index - 1].activation
    if activation.expression is not None:
        return math_pieces(in_vectors(activation.expression, {X: vector(form.net)}), vectors=True)

    return [rf"{activation_tex(activation)}\left({vector_tex(form.net)}\right)\ \text{{(elementwise)}}"]


class _ProgramTex:
    """Statements of the layer program as LaTeX pieces (rows may break between pieces): one
    method per operation of :mod:`chainrule.derive.program`; a local derivative that a delta
    multiplies is written out, as people write the delta rule."""

    def __init__(self, d: Derivation) -> None:
        self.program = d.program

    def pieces(self, expr: sympy.Expr) -> list[str]:
        method = getattr(self, f"_{type(expr).__name__}", None)
        return method(*expr.args) if method is not None else math_pieces(expr, vectors=True)

    def factor(self, expr: sympy.Expr, operator: str = "") -> list[str]:
        local = self.program.local_derivative(expr)
        if local is not None:
            expr = local.written
        if isinstance(expr, Op):
            parts = self.pieces(expr)
            parts[0] = f"{operator} {parts[0]}" if operator else parts[0]
            return parts
        return _factor_pieces(expr, operator)

    def _Affine(self, W, x, *bias) -> list[str]:
        return [f"{vector_tex(W.name)} {vector_tex(x.name)}" + "".join(f" + {vector_tex(b.name)}" for b in bias)]

    def _Chain(self, first, *rest) -> list[str]:
        return self.factor(first) + [piece for f in rest for piece in self.factor(f, r"\odot")]

    def _Backprop(self, W, delta) -> list[str]:
        return [rf"\left({vector_tex(W.name)}^{{\top}} {vector_tex(delta.name)}\right)"]

    def _SoftmaxVJP(self, y, g) -> list[str]:
        g_ = r"\mathbf{g}"
        return [rf"{vector_tex(y.name)} \odot \left({g_} - ({g_}^{{\top}} {vector_tex(y.name)})\,\mathbf{{1}}\right)"]

    def _Outer(self, delta, x) -> list[str]:
        return [rf"{vector_tex(delta.name)}\, {vector_tex(x.name)}^{{\top}}"]

    def _BiasSum(self, delta) -> list[str]:
        return [vector_tex(delta.name)]

    def _SharedBiasSum(self, delta) -> list[str]:
        return [rf"\sum_{{k}} \left({vector_tex(delta.name)}\right)_{{k}}"]


def _numbers(d: Derivation, form: LayerForm) -> list[Row]:
    """δ and the gradient matrices with their numbers, for small layers."""
    l = form.index
    if max(d.network.sizes[l], d.network.sizes[l - 1]) > NUMBERS_MAX:
        return []
    rows = list(equation(vector_tex(form.delta), [[_column(d.sample.deltas[l - 1][0])]]))
    rows += matrix_rows(Tex(rf"\frac{{\partial E}}{{\partial {vector_tex(form.weight)}}}"), d.sample.dW[l - 1])
    return rows


def _column(vector: np.ndarray) -> str:
    return r"\begin{pmatrix}" + r" \\ ".join(number_tex(float(x)) for x in vector) + r"\end{pmatrix}"


def matrix_rows(lhs: Tex, matrix: np.ndarray) -> list[Row]:
    """``lhs = matrix`` in one row when it fits the page; else one row per block of columns that
    fits, each named by its columns (``(lhs) columns 1-3 = ...``), so that no number is cut off."""
    entries = [[number_tex(float(x)) for x in row] for row in matrix]
    columns = range(matrix.shape[1])
    widths = [DIGIT_WIDTH * max(width(row[c]) for row in entries) + COLUMN_GAP for c in columns]
    if width(lhs) + sum(widths) + 3.5 <= ROW_WIDTH:
        return [Row(lhs, Tex("="), _pmatrix(entries, columns))]
    label_width = width(_block_label(lhs, 10, 10))
    blocks: list[list[int]] = [[]]
    for c in columns:
        if blocks[-1] and label_width + sum(widths[k] for k in blocks[-1]) + widths[c] + 3.5 > ROW_WIDTH:
            blocks.append([])
        blocks[-1].append(c)
    return [Row(_block_label(lhs, block[0] + 1, block[-1] + 1), Tex("="), _pmatrix(entries, block)) for block in blocks]


def _block_label(lhs: Tex, first: int, last: int) -> Tex:
    which = f"column {first}" if first == last else f"columns {first}--{last}"
    return Tex(rf"\left({lhs}\right)_{{\text{{{which}}}}}")


def _pmatrix(entries: list[list[Tex]], columns: Sequence[int]) -> Tex:
    lines = (" & ".join(row[c] for c in columns) for row in entries)
    return Tex(r"\begin{pmatrix}" + r" \\ ".join(lines) + r"\end{pmatrix}")
