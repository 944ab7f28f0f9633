"""The network diagram of the report, as TikZ commands computed here (the template only lists them).

Small networks are drawn unit by unit: one column per layer, units named as the spec names them,
weights on the edges with their values, a shared bias as a square feeding its layer with dashed
arrows and per-unit biases written under their units. The picture is scaled down to the line
width when wider; a network that would then be unreadable (its smallest text under
:data:`MIN_TEXT_PT`), or that has a column of more than :data:`UNITS_MAX` units, is drawn as
labelled boxes, one per layer, with its size, activation and parameter matrices.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from chainrule.derive.counts import noun
from chainrule.derive.derivation import Derivation

from chainrule.codegen.report.latex import Tex, counted, escape_text, name_tex, number_tex, number_text, vector_tex, width

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
#: The line width the picture is scaled to (A4, 2 cm margins), and the smallest text a reader
#: can take in after the scaling (\\tiny at 11 pt; 8 layers of 5 units came out at about 4 pt).
LINE_WIDTH_CM, MIN_TEXT_PT = 17.0, 6.0
#: The diagram's type sizes in pt (an 11 pt document): edge and per-unit bias labels
#: (\\scriptsize), shared bias squares (\\footnotesize), layer names (\\small).
LABEL_PT, BIAS_PT, LAYER_PT = 8.0, 9.0, 10.0
#: A character of a layer name (\\small bold).
LAYER_CHAR_CM = 0.22
#: Layer boxes to a row (4 of them span 16.2 cm: no scaling), and how far below a row its last
#: arrow turns towards the next row.
BOXES_PER_ROW, BOX_TURN_CM = 4, 1.3


@dataclass(frozen=True)
class Diagram:
    """TikZ commands, one per line, and the caption under the picture."""

    commands: tuple[Tex, ...]
    caption: Tex


def build_diagram(d: Derivation) -> Diagram:
    """The diagram of ``d``'s network: unit by unit when every column is small and the drawing
    stays readable on the page, else layer boxes."""
    if max(d.network.sizes) <= UNITS_MAX and smallest_text_pt(d) >= MIN_TEXT_PT:
        return _units(d)
    return _boxes(d)


def smallest_text_pt(d: Derivation) -> float:
    """The size of the smallest text of the unit-by-unit drawing once it is scaled to the line
    width, in pt."""
    net, biases = d.network, d.values.b
    modes = {net.bias_mode(l).value for l in range(1, net.depth + 1) if biases[l - 1] is not None}
    labelled = any(_edge_labels(d, l) for l in range(1, net.depth + 1))
    smallest = LABEL_PT if labelled or "per_unit" in modes else BIAS_PT if modes else LAYER_PT
    return smallest * min(1.0, LINE_WIDTH_CM / _units_width_cm(d))


def _units_width_cm(d: Derivation) -> float:
    """How wide the unit-by-unit drawing is before scaling: its columns, and the layer names and
    bias labels that stick out of the first and the last."""
    net = d.network
    ends = []
    for l in (0, net.depth):
        half = [NODE_RADIUS_CM, width(_layer_label(d, l)) * LAYER_CHAR_CM / 2]
        half += [width(label) * LABEL_CHAR_CM / 2 for label in _bias_labels(d, l)]
        ends.append(max(half))
    return net.depth * COLUMN_CM + sum(ends)


def _layer_label(d: Derivation, l: int) -> Tex:
    return escape_text(d.network.layer_name(l)) if l else Tex("input")


def _bias_labels(d: Derivation, l: int) -> list[Tex]:
    """The labels written under layer ``l``'s units: its per-unit biases, ``b3 = 0.1``."""
    net = d.network
    bias = d.values.b[l - 1] if l else None
    if bias is None or net.bias_mode(l).value == "shared":
        return []
    return [Tex(f"{name_tex(net.bias_name(l, r) or '')} = {number_tex(float(bias[r]))}") for r in range(net.sizes[l])]


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
        commands.append(rf"\node[layer] at ({x:.2f},{top + 1.5:.2f}) {{{_layer_label(d, l)}}};")
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
            caption += f"; those into {noun(len(shown), 'layer')} {layers} with their values{digits}"
    return Diagram(tuple(Tex(c) for c in commands), Tex(caption + _bias_caption(d)))


def _bias_caption(d: Derivation) -> str:
    """What the caption says of the biases: only how those drawn are drawn."""
    net = d.network
    modes = [net.bias_mode(l).value for l in range(1, net.depth + 1) if d.values.b[l - 1] is not None]
    said = []
    if "shared" in modes:
        said.append("a shared bias is a square with dashed arrows to its layer")
    if "per_unit" in modes:
        said.append("per-unit biases are written under their units")
    return "; " + "; ".join(said) + "." if said else "."


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
    return [rf"\node[biaslabel] at (u{l}-{r}.south) {{${label}$}};" for r, label in enumerate(_bias_labels(d, l))]


def _boxes(d: Derivation) -> Diagram:
    """One box per layer, :data:`BOXES_PER_ROW` to a row, rows read like lines of text: the arrow
    from the last box of a row runs down and back to the first box of the next."""
    net = d.network
    heights = [1.2 + 2.2 * min(size, 1000) / 1000 for size in net.sizes]
    places = _box_places(heights)
    commands = []
    for l, (size, height, (x, y, _)) in enumerate(zip(net.sizes, heights, places)):
        if l == 0:
            label = rf"input ${vector_tex('x')}$\\{counted(size, 'unit')}"
        else:
            form = d.layers[l - 1]
            label = rf"{escape_text(form.name)}: {counted(size, 'unit')}\\{escape_text(form.activation if len(form.activation) <= 16 else 'formula')}"
        commands.append(rf"\node[box, minimum height={height:.2f}cm] (L{l}) at ({x:.2f},{y:.2f}) {{{label}}};")
    for l in range(1, net.depth + 1):
        form = d.layers[l - 1]
        shape = rf"${vector_tex(form.weight)}$\\${net.sizes[l]:,}\times{net.sizes[l - 1]:,}$"
        if form.bias:
            shape += rf"\\${vector_tex(form.bias)}$ ({'shared' if form.shared_bias else net.sizes[l]})"
        (x0, y0, bottom), (x1, y1, _) = places[l - 1], places[l]
        if y0 == y1:
            commands.append(rf"\draw[layeredge] (L{l - 1}) -- node[matrix label] {{{shape}}} (L{l});")
        else:
            turn = bottom - BOX_TURN_CM  # below the row just ended, with room for the label above
            commands.append(rf"\draw[layeredge] (L{l - 1}.south) -- ({x0:.2f},{turn:.2f}) -- node[matrix label] {{{shape}}} ({x1:.2f},{turn:.2f}) -- (L{l}.north);")
    have = [bool(form.bias) for form in d.layers]
    biases = " and its bias" if all(have) else " (and its bias, where the layer has one)" if any(have) else ""
    return Diagram(tuple(Tex(c) for c in commands), Tex(f"Layers as boxes with their sizes; each arrow a weight matrix{biases}."))


def _box_places(heights: list[float]) -> list[tuple[float, float, float]]:
    """Each box's centre and the bottom of its row: rows of :data:`BOXES_PER_ROW` boxes centred
    on a line, each row below the one before with room for the arrow that turns between them."""
    places: list[tuple[float, float, float]] = []
    bottom = None
    for start in range(0, len(heights), BOXES_PER_ROW):
        tallest = max(heights[start : start + BOXES_PER_ROW])
        y = 0.0 if bottom is None else bottom - 2 * BOX_TURN_CM - tallest / 2
        bottom = y - tallest / 2
        places += [(k * COLUMN_CM, y, bottom) for k in range(len(heights[start : start + BOXES_PER_ROW]))]
    return places
