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

from chainrule.derive import naming
from chainrule.derive.derivation import Derivation
from chainrule.derive.layers import LayerForm
from chainrule.derive.network import real_symbol
from chainrule.derive.registry import T, X, Y

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


def _names_of(form: LayerForm) -> dict:
    return {X: real_symbol(form.net), Y: real_symbol(form.out), T: real_symbol(naming.TARGET_VECTOR)}


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
    v = vector_tex
    bias = f" + {v(form.bias)}" if form.bias else ""
    rows = list(equation(v(form.net), [[f"{v(form.weight)} {v(form.previous)}{bias}"]]))
    rows += equation(v(form.out), [_activation_applied(d, form)])
    local = _local(form)
    if local is not None:
        rows += equation(Tex(rf"\frac{{\partial {v(form.out)}}}{{\partial {v(form.net)}}}"), [math_pieces(local.xreplace(_names_of(form)), vectors=True)])
    delta, note = _delta_rule(d, form)
    rows += equation(v(form.delta), [delta])
    rows += equation(Tex(rf"\frac{{\partial E}}{{\partial {v(form.weight)}}}"), [[rf"{v(form.delta)}\, {v(form.previous)}^{{\top}}"]])
    if form.bias:
        rule = rf"\sum_{{k}} \left({v(form.delta)}\right)_{{k}}" if form.shared_bias else v(form.delta)
        rows += equation(Tex(rf"\frac{{\partial E}}{{\partial {v(form.bias)}}}"), [[rule]])
    caption = Tex(f"Layer {form.index}, {escape_text(form.name)} ({counted(form.size, 'unit')}):")
    return Display(caption, tuple(rows), note)


def _activation_applied(d: Derivation, form: LayerForm) -> list[str]:
    if form.softmax:
        return [rf"\operatorname{{softmax}}\left({vector_tex(form.net)}\right)"]
    activation = d.network.spec.layers[form.index - 1].activation
    if activation.expression is not None:
        return math_pieces(activation.expression.xreplace(_names_of(form)), vectors=True)

    return [rf"{activation_tex(activation)}\left({vector_tex(form.net)}\right)\ \text{{(elementwise)}}"]


def _local(form: LayerForm) -> sympy.Expr | None:
    if form.softmax:
        return None
    return form.f_prime_out if form.f_prime_out is not None else form.f_prime


def _delta_rule(d: Derivation, form: LayerForm) -> tuple[list[str], Tex]:
    """δ of ``form``'s layer in vectors, and a note on what it relies on."""
    v = vector_tex
    names = _names_of(form)
    note = Tex("")
    if form.output is not None:
        output = form.output
        if output.closed is not None and form.f_prime_out not in (None, 1) and output.closed == output.dE_dy * form.f_prime_out:
            return _factor_pieces(output.dE_dy.xreplace(names)) + _factor_pieces(form.f_prime_out.xreplace(names), r"\odot"), note
        if output.closed is not None:
            if output.constraint or output.simplified:
                loss = escape_text(d.network.spec.loss.name if d.network.spec.loss.formula is None else "the loss")
                note = Tex(f"With {escape_text(form.activation)} and {loss}, sympy simplifies $\\partial E/\\partial {v(form.out)} \\odot \\partial {v(form.out)}/\\partial {v(form.net)}$ to this" + (f" ({escape_text(output.constraint)})." if output.constraint else "."))
            return math_pieces(output.closed.xreplace(names), vectors=True), note
        upstream = _factor_pieces(output.dE_dy.xreplace(names))
    else:
        after = d.layers[form.index]
        upstream = [rf"\left({v(after.weight)}^{{\top}} {v(after.delta)}\right)"]
    if form.softmax:
        g = r"\mathbf{g}"
        note = Tex(rf"Here $\mathbf{{g}} = {' '.join(upstream)}$ and $\mathbf{{1}}$ is a vector of ones (the softmax's Jacobian times $\mathbf{{g}}$).")
        return [rf"{v(form.out)} \odot \left({g} - ({g}^{{\top}} {v(form.out)})\,\mathbf{{1}}\right)"], note
    local = _local(form)
    assert local is not None  # every elementwise layer has f'
    return [*upstream, *_factor_pieces(local.xreplace(names), r"\odot")], note


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
