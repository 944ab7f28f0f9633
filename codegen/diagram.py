"""The network diagram of the report, as TikZ commands computed here (the template only lists them).

Small networks are drawn unit by unit: one column per layer, units named as the spec names them,
weights on the edges with their values, a shared bias as a square feeding its layer and per-unit
biases beside their units. A network with a column of more than :data:`UNITS_MAX` units is drawn
as labelled boxes, one per layer, with its size, activation and parameter matrices.
"""

from __future__ import annotations

from dataclasses import dataclass

from chainrule.derive.derivation import Derivation

from .latex import Tex, name_tex, number_tex, vector_tex, escape_text

UNITS_MAX = 6
#: Edge labels (name = value) are written for a layer when it has at most this many weights.
LABELLED_EDGES_MAX = 9
COLUMN_CM = 4.6
ROW_CM = 2.3


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
    for l in range(1, net.depth + 1):
        labelled = net.sizes[l] * net.sizes[l - 1] <= LABELLED_EDGES_MAX
        for r in range(net.sizes[l]):
            for c in range(net.sizes[l - 1]):
                text = rf"${name_tex(net.weight_name(l, r, c))} = {number_tex(float(values.W[l - 1][r, c]))}$" if labelled else ""
                label = rf" node[weight, pos=0.25] {{{text}}}" if text else ""
                commands.append(rf"\draw[edge] (u{l - 1}-{c}) --{label} (u{l}-{r});")
        commands.extend(_bias(d, l, top))
    caption = "Units in columns (inputs on the left); each edge is a weight"
    caption += ", with its value" if any(net.sizes[l] * net.sizes[l - 1] <= LABELLED_EDGES_MAX for l in range(1, net.depth + 1)) else ""
    caption += "; biases dashed." if any(b is not None for b in values.b) else "."
    return Diagram(tuple(Tex(c) for c in commands), Tex(caption))


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
