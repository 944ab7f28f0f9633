"""The network diagram of the report, as TikZ commands computed here (the template only lists them).

Small networks are drawn unit by unit: one column per layer, units named as the spec names them,
weights on the edges with their values, a shared bias as a square feeding its layer and per-unit
biases beside their units. A network with a column of more than :data:`UNITS_MAX` units is drawn
as labelled boxes, one per layer, with its size, activation and parameter matrices.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from chainrule.derive.derivation import Derivation

from .latex import Tex, escape_text, name_tex, number_tex, number_text, vector_tex, width

UNITS_MAX = 6
#: Edge labels (name = value) are written for a layer of at most this many weights, and only
#: where no two of them (and no label and unit) would overlap.
LABELLED_EDGES_MAX = 9
#: Significant digits of the values on the edges (the tables print all 9).
EDGE_DIGITS = 4
COLUMN_CM = 4.6
ROW_CM = 2.3
#: A character of an edge label (\\scriptsize) and the room a unit circle takes from an edge's end.
#: Closer than LABEL_GAP_CM, two labels' centre lines overlap.
LABEL_CHAR_CM, NODE_CLEARANCE_CM, LABEL_GAP_CM = 0.13, 0.6, 0.25
#: A unit circle (9 mm across) with a little room around it.
NODE_RADIUS_CM = 0.5


@dataclass(frozen=True)
class Diagram:
    """TikZ commands, one per line, and the caption under the picture."""

    commands: tuple[Tex, ...]
    caption: Tex


def build_diagram(d: Derivation) -> Diagram:
    """The diagram of ``d``'s network: units when every column is small, else layer boxes."""
    if max(d.network.sizes) <= UNITS_MAX:
        return _units(d)
    return _boxes(d)


def _y(rows: int, r: int) -> float:
    return (rows - 1) / 2 * ROW_CM - r * ROW_CM


def _units(d: Derivation) -> Diagram:
    net, values = d.network, d.values
    commands: list[str] = []
    top = max(_y(n, 0) for n in net.sizes)
    for l, size in enumerate(net.sizes):
        x = l * COLUMN_CM
        shape = "input" if l == 0 else "unit"
        for r, unit in enumerate(net.units(l)):
            commands.append(rf"\node[{shape}] (u{l}-{r}) at ({x:.2f},{_y(size, r):.2f}) {{${name_tex(unit)}$}};")
        label = escape_text(net.layer_name(l)) if l else Tex("input")
        commands.append(rf"\node[layer] at ({x:.2f},{top + 1.5:.2f}) {{{label}}};")
    shown = []
    for l in range(1, net.depth + 1):
        labels = _edge_labels(d, l)
        shown += [l] if labels else []
        for r in range(net.sizes[l]):
            for c in range(net.sizes[l - 1]):
                label = rf" node[weight, pos={labels[r, c][1]:.2f}] {{${labels[r, c][0]}$}}" if labels else ""
                commands.append(rf"\draw[edge] (u{l - 1}-{c}) --{label} (u{l}-{r});")
        commands.extend(_bias(d, l, top))
    caption = "Units in columns (inputs on the left); each edge is a weight"
    if shown:
        rounded = any(number_text(float(v), EDGE_DIGITS) != number_text(float(v)) for l in shown for v in values.W[l - 1].flat)
        digits = f" to {EDGE_DIGITS} digits" if rounded else ""
        if len(shown) == net.depth:
            caption += f", with its value{digits}"
        else:
            layers = ", ".join(escape_text(net.layer_name(l)) for l in shown)
            caption += f"; those into layer{'s' if len(shown) > 1 else ''} {layers} with their values{digits}"
    caption += "; biases dashed." if any(b is not None for b in values.b) else "."
    return Diagram(tuple(Tex(c) for c in commands), Tex(caption))


def _edge_labels(d: Derivation, l: int) -> dict[tuple[int, int], tuple[str, float]]:
    """Layer ``l``'s edge labels (name = value) and where along its edge each sits, by (row,
    column); none when two labels, or a label and a unit, would lie on top of each other."""
    net = d.network
    rows, cols = net.sizes[l], net.sizes[l - 1]
    if rows * cols > LABELLED_EDGES_MAX:
        return {}
    labels, axes = {}, []
    for r in range(rows):
        for c in range(cols):
            text = f"{name_tex(net.weight_name(l, r, c))} = {number_tex(float(d.values.W[l - 1][r, c]), EDGE_DIGITS)}"
            start, end = ((l - 1) * COLUMN_CM, _y(cols, c)), (l * COLUMN_CM, _y(rows, r))
            length = math.dist(start, end)
            half = width(text) * LABEL_CHAR_CM / 2
            pos = min(0.45, max(0.25, (half + NODE_CLEARANCE_CM) / length))  # clear of the source's circle
            labels[r, c] = (text, pos)
            axes.append([_along(start, end, pos + k * half / length) for k in (-1, -0.5, 0, 0.5, 1)])
    units = [((l - 1) * COLUMN_CM, _y(cols, c)) for c in range(cols)] + [(l * COLUMN_CM, _y(rows, r)) for r in range(rows)]
    crowded = any(math.dist(p, q) < LABEL_GAP_CM for a, b in itertools.combinations(axes, 2) for p in a for q in b)
    covered = any(math.dist(p, u) < NODE_RADIUS_CM for axis in axes for p in axis for u in units)
    return {} if crowded or covered else labels


def _along(start: tuple[float, float], end: tuple[float, float], t: float) -> tuple[float, float]:
    return start[0] + t * (end[0] - start[0]), start[1] + t * (end[1] - start[1])


def _bias(d: Derivation, l: int, top: float) -> list[str]:
    net, bias = d.network, d.values.b[l - 1]
    if bias is None:
        return []
    x = l * COLUMN_CM
    if net.bias_mode(l).value == "shared":
        name = net.bias_name(l, 0) or ""
        out = [rf"\node[bias] (b{l}) at ({x - COLUMN_CM / 2:.2f},{top + 0.7:.2f}) {{${name_tex(name)} = {number_tex(float(bias[0]))}$}};"]
        out += [rf"\draw[biasedge] (b{l}) -- (u{l}-{r});" for r in range(net.sizes[l])]
        return out
    return [
        rf"\node[biaslabel] at (u{l}-{r}.south) {{${name_tex(net.bias_name(l, r) or '')} = {number_tex(float(bias[r]))}$}};"
        for r in range(net.sizes[l])
    ]


def _boxes(d: Derivation) -> Diagram:
    net = d.network
    commands = []
    for l, size in enumerate(net.sizes):
        x = l * COLUMN_CM
        if l == 0:
            label = rf"input ${vector_tex('x')}$\\{size:,} units"
        else:
            form = d.layers[l - 1]
            label = rf"{escape_text(form.name)}: {size:,} units\\{escape_text(form.activation if len(form.activation) <= 16 else 'formula')}"
        height = 1.2 + 2.2 * min(size, 1000) / 1000
        commands.append(rf"\node[box, minimum height={height:.2f}cm] (L{l}) at ({x:.2f},0) {{{label}}};")
    for l in range(1, net.depth + 1):
        form = d.layers[l - 1]
        shape = rf"${vector_tex(form.weight)}$\\${net.sizes[l]:,}\times{net.sizes[l - 1]:,}$"
        if form.bias:
            shape += rf"\\${vector_tex(form.bias)}$ ({'shared' if form.shared_bias else net.sizes[l]})"
        commands.append(rf"\draw[layeredge] (L{l - 1}) -- node[matrix label] {{{shape}}} (L{l});")
    return Diagram(tuple(Tex(c) for c in commands), Tex("Layers as boxes with their sizes; each arrow a weight matrix (and bias)."))
