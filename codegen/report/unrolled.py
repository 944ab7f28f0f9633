"""The diagram of a network with an rnn layer: the recurrence unrolled in time.

A column per step t: the inputs x_t at the bottom, each layer's outputs at step t above them
(h_t, y_t), and the loss E_t of a step that has targets at the top; the rnn's initial state h_0
at the left. Arrows carry the matrix they multiply: W (x_t to h_t), U (h_(t-1) to h_t), the
dense layer's (h_t to y_t), the same at every step. Past :data:`STEPS_DRAWN` steps, the first
:data:`FIRST_DRAWN`, an ellipsis and the last are drawn. Items are
:class:`~chainrule.codegen.report.diagram.Diagram`'s, printed as TikZ or SVG as the others are.
"""

from __future__ import annotations

import html

import numpy as np

from chainrule.derive.counts import count
from chainrule.derive.derivation import Derivation

from chainrule.codegen.report.diagram import Diagram, Edge, Item, Label, Unit
from chainrule.codegen.report.document import Math, Prose, Tok, Vec
from chainrule.codegen.report.latex import escape_text

#: At most this many steps are drawn each; past them, the first FIRST_DRAWN, an ellipsis, the last.
STEPS_DRAWN, FIRST_DRAWN = 6, 3
#: A step's column and a layer's row, in cm.
COLUMN_CM, ROW_CM = 2.5, 1.9


def node_name(base: str, step: int | str, bold: bool = True) -> Math:
    """``h_2``: a layer's (or the inputs') vector at a step, bold, the step as its subscript."""
    tex = rf"\mathbf{{{escape_text(base)}}}" if bold else escape_text(base)
    mathml = f'<mi class="bf" mathvariant="normal">{html.escape(base)}</mi>' if bold else f"<mi>{html.escape(base)}</mi>"
    index = f"<mn>{step}</mn>" if isinstance(step, int) else f'<mi class="it">{step}</mi>'
    return Tok(f"{tex}_{{{step}}}", f"<msub>{mathml}{index}</msub>", f'{html.escape(base)}<tspan baseline-shift="sub" font-size="75%">{step}</tspan>')


DOTS = Tok(r"\cdots", "<mo>⋯</mo>", "…")


def drawn_steps(steps: int) -> list[int | None]:
    """The steps drawn, from 1, None for the ellipsis."""
    if steps <= STEPS_DRAWN:
        return list(range(1, steps + 1))
    return list(range(1, FIRST_DRAWN + 1)) + [None, steps]


def unrolled_diagram(d: Derivation) -> Diagram:
    """The recurrence of ``d``'s network unrolled over its steps (see the module docstring)."""
    net, program = d.network, d.program
    T = program.steps
    targets = np.asarray(d.values.T, dtype=float).reshape(d.values.samples, T, -1)
    has_loss = (~np.isnan(targets)).all(axis=-1).any(axis=0)  # a step with targets on some sample
    columns = drawn_steps(T)
    bases = ["x"] + [form.name for form in d.layers]
    items: list[Item] = []
    top = len(d.layers) + 1
    for c, step in enumerate(columns, start=1):
        x = c * COLUMN_CM
        for r, base in enumerate(bases):
            key = f"s{c}-{r}"
            if step is None:
                items.append(Unit(key, x, r * ROW_CM, "gap", DOTS))
                continue
            items.append(Unit(key, x, r * ROW_CM, "input" if r == 0 else "unit", node_name(base, step)))
            if r:
                form = d.layers[r - 1]
                label = (Prose(Vec(form.weight)),) if form.weight else ()
                items.append(Edge(f"s{c}-{r - 1}", key, "stepedge", label, 0.45))
        if step is not None and has_loss[step - 1]:
            items.append(Unit(f"E{c}", x, top * ROW_CM, "loss", node_name("E", step, bold=False)))
            items.append(Edge(f"s{c}-{len(d.layers)}", f"E{c}", "biasedge"))
    for r, form in enumerate(d.layers, start=1):
        if form.recurrent is None:
            continue
        items.append(Unit(f"init-{r}", 0.0, r * ROW_CM, "input", node_name(form.name, 0)))
        for c, step in enumerate(columns, start=1):
            source = f"init-{r}" if c == 1 else f"s{c - 1}-{r}"
            label = (Prose(Vec(form.recurrent)),) if step is not None and columns[c - 2] is not None or c == 1 else ()
            items.append(Edge(source, f"s{c}-{r}", "stepedge", label, 0.5))
    for r, base in enumerate(["inputs"] + [form.name for form in d.layers]):
        items.append(Label((len(columns) + 1) * COLUMN_CM - 1.0, r * ROW_CM, Prose(base)))
    return Diagram(tuple(items), _caption(d, columns))


def _caption(d: Derivation, columns: list[int | None]) -> Prose:
    T = d.program.steps
    rnns = [form for form in d.layers if form.recurrent is not None]
    weights = [form for form in d.layers if form.weight is not None]
    caption = Prose(f"The network unrolled in time, a column per step t = 1, …, {T}: the inputs ", node_name("x", "t"), " at the bottom, each layer's outputs at step t above them (")
    for i, form in enumerate(d.layers):
        caption += Prose(", " if i else "", node_name(form.name, "t"), " = ", Vec(form.out), f"[t]")
    caption += Prose("), and the loss ", node_name("E", "t", bold=False), " of each step that has targets")
    for form in rnns:
        caption += Prose("; ", node_name(form.name, 0), " = ", Vec(form.initial), ", the initial state, at the left")
    caption += Prose(". Each arrow carries the matrix it multiplies, the same at every step (")
    for i, form in enumerate(weights):
        caption += Prose(", " if i else "", Vec(form.weight))
    for form in rnns:
        caption += Prose(", and ", Vec(form.recurrent), f" from one step to the next")
    caption += Prose(")")
    if None in columns:
        caption += Prose(f"; steps {columns[-3] + 1} to {T - 1} are left out ({count(T - 1 - columns[-3], 'step')})")
    return caption + Prose(".")
