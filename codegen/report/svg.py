"""The network diagram as inline SVG, for the HTML report: the items of
:class:`~chainrule.codegen.report.diagram.Diagram` drawn where the TikZ picture draws them.

Places are in cm with y up (as TikZ has them); here one cm is :data:`PX_PER_CM` user units with
y down. The picture has a ``viewBox`` and scales down to the page's width (never wider), as the
PDF's picture is scaled to the line width. Text is SVG text: names with their indices as
subscripts (``<tspan>``), escaped.
"""

from __future__ import annotations

import math

from chainrule.codegen.report.diagram import Bias, BiasLabel, Box, Diagram, Edge, Item, Label, Unit
from chainrule.codegen.report.latex import width

PX_PER_CM = 50.0
#: A unit circle's radius (TikZ: minimum size 9 mm), a box's smallest width, and room around.
RADIUS_CM, BOX_WIDTH_CM, MARGIN_CM = 0.45, 2.4, 0.4
#: Type sizes in px (the TikZ picture's pt at 28.45 pt to the cm).
LABEL_PX, BIAS_PX, LAYER_PX, UNIT_PX, BOX_PX = 11.2, 12.6, 14.0, 15.0, 13.5
#: A character's width in cm, for boxes and backgrounds, and in a unit's name.
CHAR_CM, UNIT_CHAR_CM = 0.19, 0.16


def _p(x: float, y: float) -> tuple[float, float]:
    return x * PX_PER_CM, -y * PX_PER_CM


def _f(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".") if v != 0 else "0"


class _Places:
    """Each node's centre and its half size (cm), by key."""

    def __init__(self, items: tuple[Item, ...]) -> None:
        self.centre: dict[str, tuple[float, float]] = {}
        self.half: dict[str, tuple[float, float]] = {}
        self.round: set[str] = set()
        for item in items:
            if isinstance(item, Unit):
                self.centre[item.key] = (item.x, item.y)
                radius = max(RADIUS_CM, width(item.label.tex()) * UNIT_CHAR_CM / 2 + 0.1)  # grows with its name, as TikZ's
                radius = {"gap": 0.25, "loss": 0.35}.get(item.shape, radius)
                self.half[item.key] = (radius, radius)
                self.round.add(item.key)
            elif isinstance(item, Bias):
                self.centre[item.key] = (item.x, item.y)
                self.half[item.key] = (_text_cm(item.label.tex()) / 2 + 0.1, 0.25)
            elif isinstance(item, Box):
                self.centre[item.key] = (item.x, item.y)
                wide = max([BOX_WIDTH_CM] + [_text_cm(line.tex()) + 0.4 for line in item.lines])
                self.half[item.key] = (wide / 2, item.height / 2)

    def border(self, key: str, towards: tuple[float, float]) -> tuple[float, float]:
        """Where the line from ``key``'s centre towards a point leaves its shape."""
        (cx, cy), (hx, hy) = self.centre[key], self.half[key]
        dx, dy = towards[0] - cx, towards[1] - cy
        length = math.hypot(dx, dy) or 1.0
        if key in self.round:
            return cx + dx / length * hx, cy + dy / length * hy
        scale = min(hx / abs(dx) if dx else math.inf, hy / abs(dy) if dy else math.inf)
        return cx + dx * scale, cy + dy * scale


def _text_cm(tex: str) -> float:
    return width(tex) * CHAR_CM


def diagram_svg(diagram: Diagram) -> str:
    """The diagram as one ``<svg>`` element (no external references)."""
    places = _Places(diagram.items)
    body: list[str] = []
    xs: list[float] = []
    ys: list[float] = []

    def extent(x: float, y: float, hx: float = 0.0, hy: float = 0.0) -> None:
        xs.extend((x - hx, x + hx))
        ys.extend((y - hy, y + hy))

    for item in diagram.items:  # lines first, nodes over them
        if isinstance(item, Edge):
            body.append(_edge(item, places, extent))
    for item in diagram.items:
        if isinstance(item, Unit):
            body.append(_unit(item, places.half[item.key][0]))
            extent(item.x, item.y, places.half[item.key][0], places.half[item.key][0])
        elif isinstance(item, Label):
            x, y = _p(item.x, item.y)
            body.append(f'<text x="{_f(x)}" y="{_f(y)}" class="layer">{item.text.svg()}</text>')
            extent(item.x, item.y, _text_cm(item.text.tex()) * 0.7, 0.3)
        elif isinstance(item, Bias):
            (hx, hy) = places.half[item.key]
            x, y = _p(item.x - hx, item.y + hy)
            body.append(f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(2 * hx * PX_PER_CM)}" height="{_f(2 * hy * PX_PER_CM)}" fill="#f5f5f5" stroke="#000"/>')
            x, y = _p(item.x, item.y)
            body.append(f'<text x="{_f(x)}" y="{_f(y)}" class="bias">{item.label.svg()}</text>')
            extent(item.x, item.y, hx, hy)
        elif isinstance(item, BiasLabel):
            cx, cy = places.centre[item.unit]
            below = cy - places.half[item.unit][1] - 0.3
            x, y = _p(cx, below)
            body.append(f'<text x="{_f(x)}" y="{_f(y)}" class="lbl">{item.label.svg()}</text>')
            extent(cx, below, _text_cm(item.label.tex()) * 0.75 / 2, 0.2)
        elif isinstance(item, Box):
            (hx, hy) = places.half[item.key]
            x, y = _p(item.x - hx, item.y + hy)
            body.append(f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(2 * hx * PX_PER_CM)}" height="{_f(2 * hy * PX_PER_CM)}" rx="6" fill="#fff" stroke="#000"/>')
            body.append(_lines(item.x, item.y, item.lines, "box"))
            extent(item.x, item.y, hx, hy)
    left, right = min(xs) - MARGIN_CM, max(xs) + MARGIN_CM
    bottom, top = min(ys) - MARGIN_CM, max(ys) + MARGIN_CM
    x0, y0 = _p(left, top)
    w, h = (right - left) * PX_PER_CM, (top - bottom) * PX_PER_CM
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{_f(x0)} {_f(y0)} {_f(w)} {_f(h)}" width="{_f(w)}" '
        f'role="img" aria-label="the network">'
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        '<path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>'
        + "".join(body)
        + "</svg>"
    )


def _unit(item: Unit, radius: float) -> str:
    """A unit's circle (an input's grey), a step's loss as a square, or the ellipsis of left-out
    steps as its text alone; the name in it."""
    x, y = _p(item.x, item.y)
    fill = "#ebebeb" if item.shape == "input" else "#f5f5f5" if item.shape == "loss" else "#ffffff"
    shape = ""
    if item.shape == "loss":
        side = 2 * radius * PX_PER_CM
        shape = f'<rect x="{_f(x - side / 2)}" y="{_f(y - side / 2)}" width="{_f(side)}" height="{_f(side)}" fill="{fill}" stroke="#000"/>'
    elif item.shape != "gap":
        shape = f'<circle cx="{_f(x)}" cy="{_f(y)}" r="{_f(radius * PX_PER_CM)}" fill="{fill}" stroke="#000"/>'
    return shape + f'<text x="{_f(x)}" y="{_f(y)}" class="u">{item.label.svg()}</text>'


def _lines(x: float, y: float, lines, kind: str) -> str:
    """Lines of text centred on (x, y) cm, one under the other."""
    px, py = _p(x, y)
    step = 1.25
    first = -(len(lines) - 1) / 2 * step
    spans = "".join(f'<tspan x="{_f(px)}" dy="{_f(first if not i else step)}em">{line.svg()}</tspan>' for i, line in enumerate(lines))
    return f'<text x="{_f(px)}" y="{_f(py)}" class="{kind}">{spans}</text>'


def _edge(item: Edge, places: _Places, extent) -> str:
    source, target = places.centre[item.source], places.centre[item.target]
    if item.style == "layeredge":
        if item.turn is None:
            start, end = places.border(item.source, target), places.border(item.target, source)
            points = [start, end]
            middle = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
        else:
            x0, turn, x1 = item.turn
            start = (source[0], source[1] - places.half[item.source][1])
            end = (target[0], target[1] + places.half[item.target][1])
            points = [start, (x0, turn), (x1, turn), end]
            middle = ((x0 + x1) / 2, turn)
        path = " ".join(f"{_f(_p(*q)[0])},{_f(_p(*q)[1])}" for q in points)
        lines = item.label
        label_y = middle[1] + 0.25 + (len(lines) - 1) * 0.2
        for q in points:
            extent(*q)
        extent(middle[0], label_y, 1.0, 0.6)
        return (
            f'<polyline points="{path}" fill="none" stroke="#000" stroke-width="1.6" marker-end="url(#arrow)"/>'
            + _lines(middle[0], label_y + 0.15 * (len(lines) - 1), lines, "mlbl")
        )
    start, end = places.border(item.source, target), places.border(item.target, source)
    (x1, y1), (x2, y2) = _p(*start), _p(*end)
    dashed = ' stroke-dasharray="5 3"' if item.style == "biasedge" else ""
    colour = "#808080" if item.style == "biasedge" else "#444" if item.style == "stepedge" else "#666"
    line = f'<line x1="{_f(x1)}" y1="{_f(y1)}" x2="{_f(x2)}" y2="{_f(y2)}" stroke="{colour}"{dashed} marker-end="url(#arrow)"/>'
    if not item.label:
        return line
    lx, ly = x1 + item.pos * (x2 - x1), y1 + item.pos * (y2 - y1)
    angle = math.degrees(math.atan2(y2 - y1, x2 - x1)) if item.style == "edge" else 0.0  # stepedge: upright
    wide, high = width(item.label[0].tex()) * LABEL_PX * 0.48 + 4, LABEL_PX + 3
    rotate = f'transform="rotate({angle:.1f} {_f(lx)} {_f(ly)})"'
    background = f'<rect x="{_f(lx - wide / 2)}" y="{_f(ly - high / 2)}" width="{_f(wide)}" height="{_f(high)}" fill="#fff" {rotate}/>'
    return line + background + f'<text x="{_f(lx)}" y="{_f(ly)}" class="lbl" {rotate}>{item.label[0].svg()}</text>'
