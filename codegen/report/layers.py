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
from chainrule.derive.penalty import L2
from chainrule.derive.program import Op, SoftmaxVJP, vector, in_vectors
from chainrule.derive.counts import count
from chainrule.derive.registry import X

from chainrule.codegen.report.document import (
    EQUALS, ODOT, PLUS, Bare, Expr, Math, Matrix, Name, Num, Prose, Script, Seq, Tok, Vec, activation, joined, partial,
)
from chainrule.codegen.report.equations import Display, Row, equation, math_pieces, matrix_rows, parenthesized, total
from chainrule.codegen.report.maps import TIMES, SpatialMath, Geometry, displays, map_numbers, spatial_note
from chainrule.codegen.report.mathml import CLOSE as CLOSE_MO, OPEN as OPEN_MO
from chainrule.codegen.report.recurrence import StepMath, is_sequence, layer_numbers, recurrence_note, small_sequence, spec_weights

#: Layers of at most this many units (and inputs) get their delta and gradient numbers.
NUMBERS_MAX = 6
#: Unit lists in the spec table are cut to their first and last names past this many.
UNITS_LISTED = 6
#: A map's units (``x_1_1_1``, long names) are listed up to this many, else the first and the last.
MAP_UNITS_LISTED = 2


@dataclass(frozen=True)
class SpecRow:
    """A row of the spec table: one layer (or the inputs)."""

    label: Prose
    units: Prose
    activation: Prose
    bias: Prose
    weights: Prose


DOTS = Tok(r"\dots", "<mo>…</mo>")


def _names(names: tuple[str, ...], listed: int = UNITS_LISTED) -> Prose:
    """The names, cut to the first three and the last past ``listed`` of them."""
    shown = [Prose(Name(n)) for n in names]
    if len(shown) > listed and listed < 4:  # a map's units, x_1_1_1: the first and the last
        return joined(", ", [shown[0], Prose(Bare(DOTS)), shown[-1]]) + f" ({len(names):,})"
    if len(shown) > listed:
        shown = shown[:3] + [Prose(Bare(DOTS))] + shown[-1:]
        return joined(", ", shown) + f" ({len(names):,})"
    return joined(", ", shown)


def spec_rows(d: Derivation) -> tuple[SpecRow, ...]:
    """The inputs, then one row per layer: units, activation (its definition), bias, weights."""
    net, spec = d.network, d.network.spec
    maps = Prose(f"maps {TIMES.join(map(str, spec.input_shape))}: ") if spec.spatial else Prose()
    rows = [SpecRow(Prose("input"), maps + _names(spec.inputs, MAP_UNITS_LISTED if spec.spatial else UNITS_LISTED), Prose(), Prose(), Prose())]
    for l, layer in enumerate(spec.layers, start=1):
        if layer.window is not None or layer.kind == "flatten":
            rows.append(_spatial_row(d, l))
            continue
        if not layer.has_parameters:
            before = f"layer {net.layer_name(l - 1)}" if l > 1 else "the inputs"
            rows.append(SpecRow(Prose(f"{layer.name} (layer {l})"), _names(layer.units), activation_definition(d, l), Prose("none"),
                                Prose(f"none (kind: activation): applied to the outputs of {before}")))
            continue
        bias = Prose({"shared": "shared", "per_unit": "per unit", "none": "none"}[layer.bias.value])
        if layer.bias_count:
            first = net.bias_name(l, 0) or ""
            bias += Prose(": ", Name(first)) + (Prose(", ", Bare(DOTS)) if layer.bias_count > 1 else Prose())
        given = "given" if layer.weights is not None else f"seeded ({spec.seed})"
        frozen = f"; frozen: {', '.join(layer.freeze)}" if layer.freeze else ""
        first_weight = net.weight_name(l, 0, 0)
        weights = Prose(Seq(Name(first_weight), Tok(", \\dots", "<mo>,</mo><mo>…</mo>")), f" {given}{frozen}")
        if is_sequence(d):  # the layer form's matrices: an rnn's network has no per-weight chains yet
            weights = Prose(Vec(d.layers[l - 1].weight), f" {net.sizes[l]}×{net.sizes[l - 1]} {given}{frozen}")
            bias = Prose({"per_unit": "per unit: ", "none": "none"}.get(layer.bias.value, "shared: "), Vec(d.layers[l - 1].bias)) if d.layers[l - 1].bias else Prose("none")
        label = Prose(f"{layer.name} (layer {l}{', rnn' if layer.is_rnn else ''})")
        rows.append(SpecRow(label, _names(layer.units), activation_definition(d, l), bias, spec_weights(d, l) if layer.is_rnn else weights))
    return tuple(rows)


def _spatial_row(d: Derivation, l: int) -> SpecRow:
    """A convolution's, pool's or flatten's row: its maps, the kernel and how it slides."""
    net, layer = d.network, d.network.spec.layers[l - 1]
    label = Prose(f"{layer.name} (layer {l}, {layer.kind})")
    if layer.window is None:  # flatten
        return SpecRow(label, _names(layer.units), Prose("none: the maps as one vector, row-major"), Prose("none"), Prose("none"))
    g = Geometry(layer.window.geometry)
    units = Prose(f"maps {TIMES.join(map(str, layer.window.out_shape))}: ") + _names(layer.units, MAP_UNITS_LISTED)
    if not layer.has_parameters:
        what = "largest" if layer.kind.startswith("max") else "mean"
        return SpecRow(label, units, Prose(f"none: the {what} of each window ({g.words(pool=True)})"), Prose("none"), Prose("none"))
    bias = Prose("none")
    if layer.bias_count:
        bias = Prose("per channel: ", Name(net.bias_name(l, 0) or "")) + (Prose(", ", Bare(DOTS)) if layer.bias_count > 1 else Prose())
    given = "given" if layer.weights is not None else f"seeded ({net.spec.seed})"
    frozen = f"; frozen: {', '.join(layer.freeze)}" if layer.freeze else ""
    kernel = TIMES.join(map(str, layer.window.kernel_shape))
    weights = Prose(f"kernel {kernel} [out, in, {'k' if g.one else 'kh, kw'}]: ", Seq(Name(net.weight_name(l, 0, 0)), Tok(", \\dots", "<mo>,</mo><mo>…</mo>")),
                    f" {given}{frozen}; {g.words()}")
    return SpecRow(label, units, activation_definition(d, l), bias, weights)


def activation_definition(d: Derivation, l: int) -> Prose:
    """``sigmoid: 1/(1+e^{-x})``, or the formula, in math."""
    net = d.network
    function = net.spec.layers[l - 1].activation
    label = function.name if function.expression is None else "formula"
    if net.is_softmax(l):
        softmax = Tok(r"e^{x_k} / \sum_j e^{x_j}", "<msup><mi>e</mi><msub><mi>x</mi><mi>k</mi></msub></msup><mo lspace='0' rspace='0'>/</mo>"
                      "<munder><mo>∑</mo><mi>j</mi></munder><msup><mi>e</mi><msub><mi>x</mi><mi>j</mi></msub></msup>")
        return Prose(label + ": ", softmax)
    # each branch with its common factor out, as people write elu: 0.18 (e^x - 1), not -0.18 + 0.18 e^x
    definition = Expr(net.activation(l).replace(
        lambda e: isinstance(e, sympy.Piecewise), lambda e: sympy.Piecewise(*[(sympy.factor_terms(v), c) for v, c in e.args])))
    return Prose(f"{label}: ", definition)


# ---------------------------------------------------------------------------------------------
# The layer form


def _factor_pieces(expr: sympy.Expr, operator: Math | None = None, names: dict[str, Math] | None = None) -> list[Math]:
    """``expr`` as a factor of a product, in pieces that rows may break between (a sum in plain
    parentheses, which TeX lets open on one row and close on the next), after ``operator``;
    ``names``: the math written for some of its symbols (a vector at step t)."""
    parts = math_pieces(expr, vectors=True, names=names or {})
    if expr.is_Add:
        parts = parenthesized(parts)
    parts[0] = Seq(operator, SPACE, parts[0]) if operator else parts[0]
    return parts


def layer_displays(d: Derivation) -> tuple[Display, ...]:
    """Per layer, output layer first: forward, local derivative, delta, gradients; then (small
    layers) their numbers, in a display of their own: an ``align*`` is as wide as its widest
    left side plus its widest right side, and a matrix's rows were fitted to their own left sides."""
    out = []
    for form in reversed(d.layers):
        out.append(_layer_display(d, form))
        if is_sequence(d):  # numbers step by step where the network is small
            out += layer_numbers(d, form, _ProgramMath(d)) if small_sequence(d) else ()
            continue
        if form.window is not None or form.kind == "flatten":  # maps: an align* per array
            caption = "With the numbers of the sample:" if not d.batch else f"With the numbers of the batch (the gradients, the {d.network.spec.reduction} over the samples):"
            out += displays(Prose(caption), map_numbers(d, form))
            continue
        numbers = _numbers(d, form)
        if numbers:
            caption = "With the numbers of the sample:" if not d.batch else f"With the numbers of the batch (a column of the delta per sample; the gradient, the {d.network.spec.reduction} over the samples):"
            out.append(Display(Prose(caption), tuple(numbers)))
    return tuple(out)


def _gradient(parameter: str) -> Math:
    """∂E/∂W2 as a fraction."""
    return partial(Name("E"), Vec(parameter))


def _layer_display(d: Derivation, form: LayerForm) -> Display:
    """The layer's statements of the layer program (:attr:`Derivation.program`), in vectors."""
    statements = {s.rule: s for s in d.program.layer(form.index)}
    printer = _ProgramMath(d)
    weighted = statements.get("weighted sums")
    rows = list(equation(printer.vec(form.net), [printer.pieces(weighted.written)])) if weighted is not None else []
    forward = statements.get("pooling") or statements.get("flatten")  # a pool or flatten: its own operation
    rows += equation(printer.vec(form.out), [printer.pieces(forward.written) if forward is not None else _activation_applied(d, form, printer)])
    local = statements.get("local derivative")
    if local is not None:
        rows += equation(partial(printer.vec(form.out), printer.vec(form.net)), [math_pieces(local.written, vectors=True, names=printer.step_names(local.written))])
    delta = statements.get("output delta") or statements["delta"]
    rows += equation(printer.vec(form.delta), [printer.pieces(delta.written)])
    for rule, parameter in (("weight gradient", form.weight), ("recurrent weight gradient", form.recurrent), ("bias gradient", form.bias),
                            ("initial state gradient", form.initial)):
        if rule in statements:
            written = printer.pieces(statements[rule].written)
            if rule == "weight gradient" and "penalty gradient" in statements:  # + l2*W, once per batch
                coefficient, matrix = statements["penalty gradient"].expr.as_independent(*(statements["penalty gradient"].expr.free_symbols - {L2}))
                written += [Seq(PLUS, *math_pieces(coefficient), THIN, Vec(matrix.name))]
            rows += equation(_gradient(parameter), [written])
    caption = Prose(f"Layer {form.index}, {form.name} ({_layer_words(d, form)}):")
    note = _note(d, form, delta, printer)
    if d.network.spec.spatial:
        note = spatial_note(d, form, note)
    if is_sequence(d):
        note = recurrence_note(d, form, note, printer)
    return Display(caption, tuple(rows), note)


def _layer_words(d: Derivation, form: LayerForm) -> str:
    """What the layer is, for its caption: ``2 units``; ``conv2d: 1×5×5 to 1×4×4 maps, kernel 2×2,
    stride 1, padding 0``; and what a delta of a layer without weights is."""
    without = "; no weights: its activation applied to the layer before's outputs, and its delta is the gradient of E with respect to them"
    if form.window is None and form.kind != "flatten":
        return count(form.size, "unit") + (without if form.weight is None else "")
    if form.kind == "flatten":
        return f"flatten to {count(form.size, 'unit')}; no weights: its delta is the gradient of E with respect to its input"
    w, g = form.window, Geometry(form.window.geometry)
    maps = f"{form.kind}: {'×'.join(map(str, w.in_shape))} to {'×'.join(map(str, w.out_shape))} maps"
    if form.weight is not None:
        return f"{maps}, {g.words()}"
    return f"{maps}, {g.words(pool=True)}; no weights: its delta is the gradient of E with respect to its input"


def _note(d: Derivation, form: LayerForm, delta, printer: "_ProgramMath") -> Prose:
    """What the delta rule relies on, or what a symbol in it stands for."""
    if delta.simplified or delta.note:
        loss = d.network.spec.loss.name if d.network.spec.loss.formula is None else "the loss"
        relies = f" ({delta.note})." if delta.note else "."
        product = Seq(
            Tok(r"\partial E/\partial ", "<mi>∂</mi><mi>E</mi><mo lspace='0' rspace='0'>/</mo><mi>∂</mi>"), Vec(form.out), Tok(r" \odot \partial ", "<mo>⊙</mo><mi>∂</mi>"),
            Vec(form.out), Tok(r"/\partial ", "<mo lspace='0' rspace='0'>/</mo><mi>∂</mi>"), Vec(form.net),
        )
        return Prose(f"With {form.activation} and {loss}, sympy simplifies ", product, " to this" + relies)
    if isinstance(delta.written, SoftmaxVJP):
        upstream = printer.factor(delta.written.args[1])
        g = Seq(Tok(r"\mathbf{g} = ", '<mi class="bf" mathvariant="normal">g</mi><mo>=</mo>'), *[x for i, p in enumerate(upstream) for x in ((SPACE, p) if i else (p,))])
        return Prose("Here ", g, " and ", ONES, " is a vector of ones (the softmax's Jacobian times ", G, ").")
    return Prose()


G = Tok(r"\mathbf{g}", '<mi class="bf" mathvariant="normal">g</mi>')
ONES = Tok(r"\mathbf{1}", '<mn class="bf">1</mn>')
SPACE = Tok(" ", "")
THIN = Tok(" ", '<mspace width="0.17em"></mspace>')  # a product written as juxtaposition: W x


def _activation_applied(d: Derivation, form: LayerForm, printer: "_ProgramMath") -> list[Math]:
    left, right = Tok(r"\left(", OPEN_MO), Tok(r"\right)", CLOSE_MO)
    if form.softmax:
        return [Seq(Tok(r"\operatorname{softmax}", "<mi>softmax</mi><mo>\u2061</mo>"), left, printer.vec(form.net), right)]
    function = d.network.spec.layers[form.index - 1].activation
    if function.expression is not None:
        return math_pieces(in_vectors(function.expression, {X: vector(form.net)}), vectors=True, names=printer.step_names(vector(form.net)))
    return [Seq(activation(function), Tok("", "<mo>\u2061</mo>"), left, printer.vec(form.net), right, Tok(r"\ \text{(elementwise)}", "<mspace width=\"0.5em\"></mspace><mtext>(elementwise)</mtext>"))]


class _ProgramMath(SpatialMath, StepMath):
    """Statements of the layer program as pieces of math (rows may break between pieces): one
    method per operation of :mod:`chainrule.derive.program`; a local derivative that a delta
    multiplies is written out, as people write the delta rule."""

    def __init__(self, d: Derivation) -> None:
        self.program = d.program

    def pieces(self, expr: sympy.Expr) -> list[Math]:
        method = getattr(self, f"_{type(expr).__name__}", None)
        return method(*expr.args) if method is not None else math_pieces(expr, vectors=True, names=self.step_names(expr))

    def factor(self, expr: sympy.Expr, operator: Math | None = None) -> list[Math]:
        local = self.program.local_derivative(expr)
        if local is not None:
            expr = local.written
        if isinstance(expr, sympy.Add) and any(isinstance(a, Op) for a in expr.args):  # BPTT's two paths: a sum of operations
            parts = parenthesized(total([self._one(a) for a in expr.args]))
            parts[0] = Seq(operator, SPACE, parts[0]) if operator else parts[0]
            return parts
        if isinstance(expr, Op):
            parts = self.pieces(expr)
            parts[0] = Seq(operator, SPACE, parts[0]) if operator else parts[0]
            return parts
        return _factor_pieces(expr, operator, self.step_names(expr))

    def _Affine(self, W, x, *bias) -> list[Math]:
        plus = Tok(" + ", "<mo>+</mo>")
        return [Seq(Vec(W.name), THIN, self.vec(x.name), *[x for b in bias for x in (plus, Vec(b.name))])]

    def _Chain(self, first, *rest) -> list[Math]:
        return self.factor(first) + [piece for f in rest for piece in self.factor(f, ODOT)]

    def _Backprop(self, W, delta) -> list[Math]:
        return [Seq(Tok(r"\left(", OPEN_MO), Script(Vec(W.name), TOP, sup=True), THIN, self.argument(delta), Tok(r"\right)", CLOSE_MO))]

    def _SoftmaxVJP(self, y, g) -> list[Math]:
        y_ = Vec(y.name)
        return [Seq(
            y_, Tok(r" \odot \left(", "<mo>⊙</mo>" + OPEN_MO), G, Tok(" - (", "<mo>−</mo>" + OPEN_MO), Script(G, TOP, sup=True), SPACE, y_,
            Tok(r")\,", CLOSE_MO + '<mspace width="0.17em"></mspace>'), ONES, Tok(r"\right)", CLOSE_MO),
        )]

    def _Outer(self, delta, x) -> list[Math]:
        return [self.summed(Seq(self.argument(delta), Tok(r"\, ", '<mspace width="0.17em"></mspace>'), Script(self.argument(x), TOP, sup=True)))]

    def _BiasSum(self, delta) -> list[Math]:
        return [self.summed(self.argument(delta))]

    def _SharedBiasSum(self, delta) -> list[Math]:
        total = Tok(r"\sum_{k} ", "<munder><mo>∑</mo><mi>k</mi></munder>")
        return [Seq(total, Script(Vec(delta.name), Tok("k", "<mi>k</mi>"), sup=False, wrap=(r"\left(", r"\right)")))]


TOP = Tok(r"\top", "<mo>⊤</mo>")


def _numbers(d: Derivation, form: LayerForm) -> list[Row]:
    """δ and the gradient matrices with their numbers, for small layers."""
    l = form.index
    if max(d.network.sizes[l], d.network.sizes[l - 1]) > NUMBERS_MAX:
        return []
    deltas = d.sample.deltas[l - 1]
    # a batch's deltas: a column per sample (the gradient matrices are reduced over them)
    rows = list(equation(Vec(form.delta), [[Matrix([[Num(x)] for x in deltas[0]])]])) if not d.batch else matrix_rows(Vec(form.delta), deltas.T)
    if form.weight is not None:
        rows += matrix_rows(_gradient(form.weight), d.sample.dW[l - 1])
    return rows
