"""The network diagram of the report: its items placed here, printed as TikZ commands or as SVG.

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

from chainrule.derive.counts import count, noun
from chainrule.derive.derivation import Derivation

from chainrule.codegen.report.document import Math, Name, Num, Prose, Seq, Tok, Vec
from chainrule.codegen.report.latex import Tex, number_text, width

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
class Unit:
    """A unit (or an input) drawn as a circle at (x, y) cm, named ``u{layer}-{row}``."""

    key: str
    x: float
    y: float
    shape: str  # "input" or "unit"
    label: Math


@dataclass(frozen=True)
class Label:
    """Text at (x, y) cm: a layer's name above its column."""

    x: float
    y: float
    text: Prose


@dataclass(frozen=True)
class Edge:
    """An arrow from one node to another, its label (if any) at ``pos`` along it; ``style``
    ``edge`` (a weight), ``biasedge`` (dashed, from a shared bias) or ``layeredge`` (between
    boxes, its label lines above it and ``turn`` the y where it runs back to the next row)."""

    source: str
    target: str
    style: str
    label: tuple[Prose, ...] = ()
    pos: float = 0.5
    turn: tuple[float, float, float] | None = None  # (x of the source, y of the turn, x of the target)


@dataclass(frozen=True)
class Bias:
    """A shared bias: a square at (x, y) cm (``b{layer}``)."""

    key: str
    x: float
    y: float
    label: Math


@dataclass(frozen=True)
class BiasLabel:
    """A per-unit bias written under its unit."""

    unit: str
    label: Math


@dataclass(frozen=True)
class Box:
    """A layer as a box at (x, y) cm, ``height`` cm tall, with lines of text (``L{layer}``)."""

    key: str
    x: float
    y: float
    height: float
    lines: tuple[Prose, ...]


Item = Unit | Label | Edge | Bias | BiasLabel | Box


@dataclass(frozen=True)
class Diagram:
    """The picture as items with their places in cm (y up), and the caption under it: printed
    as TikZ commands (:attr:`commands`) or as SVG (:func:`chainrule.codegen.report.svg.diagram_svg`)."""

    items: tuple[Item, ...]
    caption: Prose

    @property
    def commands(self) -> tuple[Tex, ...]:
        """TikZ commands, one per line."""
        return tuple(Tex(_tikz(item)) for item in self.items)


def _tikz(item: Item) -> str:
    if isinstance(item, Unit):
        return rf"\node[{item.shape}] ({item.key}) at ({item.x:.2f},{item.y:.2f}) {{${item.label.tex()}$}};"
    if isinstance(item, Label):
        return rf"\node[layer] at ({item.x:.2f},{item.y:.2f}) {{{item.text.tex()}}};"
    if isinstance(item, Bias):
        return rf"\node[bias] ({item.key}) at ({item.x:.2f},{item.y:.2f}) {{${item.label.tex()}$}};"
    if isinstance(item, BiasLabel):
        return rf"\node[biaslabel] at ({item.unit}.south) {{${item.label.tex()}$}};"
    if isinstance(item, Box):
        text = r"\\".join(line.tex() for line in item.lines)
        return rf"\node[box, minimum height={item.height:.2f}cm] ({item.key}) at ({item.x:.2f},{item.y:.2f}) {{{text}}};"
    if item.style == "edge":
        label = rf" node[weight, pos={item.pos:.2f}] {{{item.label[0].tex()}}}" if item.label else ""
        return rf"\draw[edge] ({item.source}) --{label} ({item.target});"
    if item.style == "stepedge":  # the unrolled recurrence: a matrix's name, upright
        label = rf" node[steplabel, pos={item.pos:.2f}] {{{item.label[0].tex()}}}" if item.label else ""
        return rf"\draw[stepedge] ({item.source}) --{label} ({item.target});"
    if item.style == "biasedge":
        return rf"\draw[biasedge] ({item.source}) -- ({item.target});"
    shape = r"\\".join(line.tex() for line in item.label)
    if item.turn is None:
        return rf"\draw[layeredge] ({item.source}) -- node[matrix label] {{{shape}}} ({item.target});"
    x0, turn, x1 = item.turn
    return rf"\draw[layeredge] ({item.source}.south) -- ({x0:.2f},{turn:.2f}) -- node[matrix label] {{{shape}}} ({x1:.2f},{turn:.2f}) -- ({item.target}.north);"


def build_diagram(d: Derivation) -> Diagram:
    """The diagram of ``d``'s network: unit by unit when every column is small and the drawing
    stays readable on the page, else layer boxes (always for a network over feature maps: a box per
    layer with its maps' shape)."""
    if not d.network.spec.spatial and max(d.network.sizes) <= UNITS_MAX and smallest_text_pt(d) >= MIN_TEXT_PT:
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
        half = [NODE_RADIUS_CM, width(_layer_label(d, l).tex()) * LAYER_CHAR_CM / 2]
        half += [width(label.tex()) * LABEL_CHAR_CM / 2 for label in _bias_labels(d, l)]
        ends.append(max(half))
    return net.depth * COLUMN_CM + sum(ends)


def _layer_label(d: Derivation, l: int) -> Prose:
    return Prose(d.network.layer_name(l)) if l else Prose("input")


def _bias_labels(d: Derivation, l: int) -> list[Math]:
    """The labels written under layer ``l``'s units: its per-unit biases, ``b3 = 0.1``."""
    net = d.network
    bias = d.values.b[l - 1] if l else None
    if bias is None or net.bias_mode(l).value == "shared":
        return []
    return [Seq(Name(net.bias_name(l, r) or ""), EQUALS_SPACED, Num(bias[r])) for r in range(net.sizes[l])]


EQUALS_SPACED = Tok(" = ", "<mo>=</mo>", " = ")


def _y(rows: int, r: int) -> float:
    return (rows - 1) / 2 * ROW_CM - r * ROW_CM


def _units(d: Derivation) -> Diagram:
    net, values = d.network, d.values
    items: list[Item] = []
    top = max(_y(n, 0) for n in net.sizes)
    for l, size in enumerate(net.sizes):
        x = l * COLUMN_CM
        shape = "input" if l == 0 else "unit"
        for r, unit in enumerate(net.units(l)):
            items.append(Unit(f"u{l}-{r}", x, _y(size, r), shape, Name(unit)))
        items.append(Label(x, top + 1.5, _layer_label(d, l)))
    shown = []
    for l in range(1, net.depth + 1):
        labels = _edge_labels(d, l)
        shown += [l] if labels else []
        for r in range(net.sizes[l]):
            for c in range(net.sizes[l - 1]) if net.has_parameters(l) else _activation_reads(net, l, r):
                label = (Prose(labels[r, c][0]),) if labels else ()
                items.append(Edge(f"u{l - 1}-{c}", f"u{l}-{r}", "edge", label, labels[r, c][1] if labels else 0.5))
        items.extend(_bias(d, l, top))
    caption = "Units in columns (inputs on the left); each edge is a weight"
    if shown:
        rounded = any(number_text(float(v), EDGE_DIGITS) != number_text(float(v)) for l in shown for v in values.W[l - 1].flat)
        digits = f" to {EDGE_DIGITS} digits" if rounded else ""
        if len(shown) == len(net.parameter_layers):
            caption += f", with its value{digits}"
        else:
            layers = ", ".join(net.layer_name(l) for l in shown)
            caption += f"; those into {noun(len(shown), 'layer')} {layers} with their values{digits}"
    without = [net.layer_name(l) for l in range(1, net.depth + 1) if not net.has_parameters(l)]
    if without:
        caption += f"; {noun(len(without), 'layer')} {', '.join(without)} {'has' if len(without) == 1 else 'have'} no weights: an edge into it carries the output it applies its activation to"
    return Diagram(tuple(items), Prose(caption + _bias_caption(d)))


def _activation_reads(net, l: int, r: int) -> range:
    """The units of layer ``l - 1`` whose outputs unit ``r`` of a layer without weights reads:
    its own, or every one for softmax."""
    return range(net.sizes[l - 1]) if net.is_softmax(l) else range(r, r + 1)


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


def _edge_labels(d: Derivation, l: int) -> dict[tuple[int, int], tuple[Math, float]]:
    """Layer ``l``'s edge labels (name = value) and where along its edge each sits, by (row,
    column); none when two labels, or a label and a unit, would lie on top of each other."""
    net = d.network
    rows, cols = net.sizes[l], net.sizes[l - 1]
    if rows * cols > LABELLED_EDGES_MAX or not net.has_parameters(l):
        return {}
    labels, axes = {}, []
    for r in range(rows):
        for c in range(cols):
            text = Seq(Name(net.weight_name(l, r, c)), EQUALS_SPACED, Num(d.values.W[l - 1][r, c], EDGE_DIGITS))
            start, end = ((l - 1) * COLUMN_CM, _y(cols, c)), (l * COLUMN_CM, _y(rows, r))
            length = math.dist(start, end)
            half = width(text.tex()) * LABEL_CHAR_CM / 2
            pos = min(0.45, max(0.25, (half + NODE_CLEARANCE_CM) / length))  # clear of the source's circle
            labels[r, c] = (text, pos)
            axes.append([_along(start, end, pos + k * half / length) for k in (-1, -0.5, 0, 0.5, 1)])
    units = [((l - 1) * COLUMN_CM, _y(cols, c)) for c in range(cols)] + [(l * COLUMN_CM, _y(rows, r)) for r in range(rows)]
    crowded = any(math.dist(p, q) < LABEL_GAP_CM for a, b in itertools.combinations(axes, 2) for p in a for q in b)
    covered = any(math.dist(p, u) < NODE_RADIUS_CM for axis in axes for p in axis for u in units)
    return {} if crowded or covered else labels


def _along(start: tuple[float, float], end: tuple[float, float], t: float) -> tuple[float, float]:
    return start[0] + t * (end[0] - start[0]), start[1] + t * (end[1] - start[1])


def _bias(d: Derivation, l: int, top: float) -> list[Item]:
    net, bias = d.network, d.values.b[l - 1]
    if bias is None:
        return []
    x = l * COLUMN_CM
    if net.bias_mode(l).value == "shared":
        name = net.bias_name(l, 0) or ""
        out: list[Item] = [Bias(f"b{l}", x - COLUMN_CM / 2, top + 0.7, Seq(Name(name), EQUALS_SPACED, Num(bias[0])))]
        out += [Edge(f"b{l}", f"u{l}-{r}", "biasedge") for r in range(net.sizes[l])]
        return out
    return [BiasLabel(f"u{l}-{r}", label) for r, label in enumerate(_bias_labels(d, l))]


def _boxes(d: Derivation) -> Diagram:
    """One box per layer, :data:`BOXES_PER_ROW` to a row, rows read like lines of text: the arrow
    from the last box of a row runs down and back to the first box of the next."""
    net = d.network
    heights = [1.2 + 2.2 * min(size, 1000) / 1000 for size in net.sizes]
    places = _box_places(heights)
    items: list[Item] = []
    for l, (size, height, (x, y, _)) in enumerate(zip(net.sizes, heights, places)):
        if l == 0:
            shape = net.spec.input_shape
            lines = (Prose("input ", Vec("x")), Prose(f"{_times(shape)} maps" if shape else count(size, "unit")))
        elif d.layers[l - 1].window is not None or d.layers[l - 1].kind == "flatten":
            lines = _map_box(d.layers[l - 1])
        else:
            form = d.layers[l - 1]
            lines = (Prose(f"{form.name}: {count(size, 'unit')}"), Prose(form.activation if len(form.activation) <= 16 else "formula"))
        items.append(Box(f"L{l}", x, y, height, lines))
    for l in range(1, net.depth + 1):
        form = d.layers[l - 1]
        size = Tok(rf"{net.sizes[l]:,}\times{net.sizes[l - 1]:,}", f"<mn>{net.sizes[l]:,}</mn><mo>×</mo><mn>{net.sizes[l - 1]:,}</mn>", f"{net.sizes[l]:,}×{net.sizes[l - 1]:,}")
        shape = [Prose(Vec(form.weight)), Prose(size)] if form.weight else [Prose("no weights")]
        if form.window is not None or form.kind == "flatten":
            shape = _map_arrow(form)
        if form.bias:
            shape.append(Prose(Vec(form.bias), f" ({'shared' if form.shared_bias else form.window.channels if form.window else net.sizes[l]})"))
        (x0, y0, bottom), (x1, y1, _) = places[l - 1], places[l]
        if y0 == y1:
            items.append(Edge(f"L{l - 1}", f"L{l}", "layeredge", tuple(shape)))
        else:
            turn = bottom - BOX_TURN_CM  # below the row just ended, with room for the label above
            items.append(Edge(f"L{l - 1}", f"L{l}", "layeredge", tuple(shape), turn=(x0, turn, x1)))
    have = [bool(form.bias) for form in d.layers]
    biases = " and its bias" if all(have) else " (and its bias, where the layer has one)" if any(have) else ""
    if net.spec.spatial:
        return Diagram(tuple(items), Prose(
            "Layers as boxes with their shapes (maps: channels×height×width); an arrow into a convolution carries its kernel "
            "[out, in, height, width], how it slides and its bias, one into a pool its windows, one into a dense layer its weight matrix."))
    without = "; an arrow into a layer without weights carries the outputs it applies its activation to" if any(f.weight is None for f in d.layers) else ""
    return Diagram(tuple(items), Prose(f"Layers as boxes with their sizes; each arrow a weight matrix{biases}{without}."))


def _times(shape) -> str:
    return "×".join(str(n) for n in shape)


def _map_box(form) -> tuple[Prose, ...]:
    """A convolution's, pool's or flatten's box: its name and kind, its shape, its activation."""
    if form.window is None:
        return (Prose(f"{form.name}: flatten"), Prose(count(form.size, "unit")))
    lines = (Prose(f"{form.name}: {form.kind}"), Prose(f"{_times(form.window.out_shape)} maps"))
    return lines + ((Prose(form.activation if len(form.activation) <= 16 else "formula"),) if form.weight else ())


def _map_arrow(form) -> list[Prose]:
    """The label of the arrow into a convolution (kernel, stride, padding), pool (windows) or flatten."""
    if form.window is None:
        return [Prose("reshape")]
    w = form.window
    stride = str(w.stride[0]) if len(set(w.stride)) == 1 else _times(w.stride)
    padding = [] if not any(w.padding) else [Prose(f"padding {str(w.padding[0]) if len(set(w.padding)) == 1 else _times(w.padding)}")]
    if form.weight is None:
        return [Prose(f"{'max' if form.kind.startswith('max') else 'mean'} of {_times(w.kernel)}"), Prose(f"stride {stride}")] + padding
    return [Prose(Vec(form.weight), f" {_times(w.kernel_shape)}"), Prose(f"kernel {_times(w.kernel)}"), Prose(f"stride {stride}")] + padding


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
