"""The report's feature maps: convolution, pooling and flatten in the layer form, and their numbers.

The layer program (:mod:`chainrule.derive.program`) holds a convolution's and a pool's rules as
operations over maps; :class:`SpatialMath` prints each as people write it by hand:

- ``corr(x, W1) + b1``: PyTorch's cross-correlation (the kernel is not flipped);
- ``∂E/∂W1 = corr(x, δ)``: the input correlated with the output's deltas (each kernel weight is
  used at every position, its gradient the sum over them);
- the deltas below, ``corr_full(δ, rot180(W1))``: the full correlation with the kernel rotated
  by 180 degrees;
- ``maxpool``, and its deltas routed to each window's largest input (PyTorch's tie rule, in words);
  ``avgpool``, and its deltas spread evenly; ``flatten``, a reshape.

What a rule means index by index is said once under the display of the layer it belongs to
(:func:`spatial_note`). Maps [C, H, W] (held flat by the derivation, row-major) are printed as
one matrix per channel where they are small (:func:`map_rows`); a big network's are summarised by
the report's per-layer summary.
"""

from __future__ import annotations

import html
import math
import re
from typing import Sequence

import numpy as np
import sympy

from chainrule.derive import kinds, naming
from chainrule.derive.chain import ChainRule
from chainrule.derive.derivation import Derivation
from chainrule.derive.formula import tree_size
from chainrule.derive.layers import LayerForm
from chainrule.derive.network import real_symbol
from chainrule.derive.program import CorrelateBackprop, Program

from chainrule.codegen.report.document import CDOT, PARTIAL, PLUS, SPACE, Expr, Math, Matrix, Name, Num, Prose, Script, Seq, Tok, Vec, Words, partial
from chainrule.codegen.report.equations import Display, Row, equation, math_pieces, matrix_rows, total
from chainrule.codegen.report.mathml import CLOSE as CLOSE_MO, OPEN as OPEN_MO

#: A map, kernel or delta array is printed with its numbers when it holds at most this many
#: values in at most :data:`MATRICES_MAX` matrices (a channel's map, or a kernel's [out, in] pair, each).
VALUES_MAX, MATRICES_MAX = 36, 4

LEFT, RIGHT = Tok(r"\left(", OPEN_MO), Tok(r"\right)", CLOSE_MO)
COMMA = Tok(r",\ ", '<mo>,</mo><mspace width="0.3em"></mspace>')
SEMI = Tok(r";\ ", '<mo>;</mo><mspace width="0.3em"></mspace>')
TIMES = "\u00d7"


def operator(name: str, sub: str = "") -> Tok:
    """An operator's name upright (``corr``), with a subscript (``maxpool_{2×2}``)."""
    spaced = name.replace(" ", r"\,")
    tex = rf"\operatorname{{{spaced}}}"
    markup = f"<mi>{name}</mi>"
    if sub:
        written = sub.replace(TIMES, r"\times ")
        tex += rf"_{{{written}}}"
        markup = f"<msub>{markup}<mtext>{sub}</mtext></msub>"
    return Tok(tex, markup + "<mo>\u2061</mo>")


def applied(name: str, args: Sequence[Math], sub: str = "", separator: Tok = COMMA) -> Math:
    """``name_sub(a, b)``."""
    inner = [x for i, a in enumerate(args) for x in ((separator, a) if i else (a,))]
    return Seq(operator(name, sub), LEFT, *inner, RIGHT)


class Geometry:
    """A window's geometry ``(C, H, W, kh, kw, sh, sw, ph, pw)`` (a 1-D one is 2-D of height 1)."""

    def __init__(self, geometry) -> None:
        self.C, self.H, self.W, self.kh, self.kw, self.sh, self.sw, self.ph, self.pw = (int(v) for v in geometry)
        self.one = self.H == 1 and self.kh == 1 and self.sh == 1 and self.ph == 0

    def _side(self, a: int, b: int) -> str:
        return str(b) if self.one else f"{a}{TIMES}{b}"

    @property
    def kernel(self) -> str:
        return self._side(self.kh, self.kw)

    @property
    def stride(self) -> str:
        return str(self.sw) if self.one or self.sh == self.sw else f"{self.sh}{TIMES}{self.sw}"

    @property
    def padding(self) -> str:
        return str(self.pw) if self.one or self.ph == self.pw else f"{self.ph}{TIMES}{self.pw}"

    @property
    def strided(self) -> bool:
        return max(self.sh, self.sw) > 1

    @property
    def padded(self) -> bool:
        return max(self.ph, self.pw) > 0

    def words(self, pool: bool = False) -> str:
        """``kernel 2×2, stride 1, padding 0`` (a pool: ``2×2 windows``, its stride the kernel's)."""
        if pool:
            return f"{self.kernel} windows" + (f", padding {self.padding}" if self.padded else "")
        return f"kernel {self.kernel}, stride {self.stride}, padding {self.padding}"


class SpatialMath:
    """The layer program's operations over maps as pieces of math: a mixin of the report's
    program printer (its ``program``, ``pieces`` and ``factor`` print the arguments)."""

    program: Program

    def pieces(self, expr: sympy.Expr) -> list[Math]:  # noqa: D102 - the printer's
        raise NotImplementedError

    def _one(self, expr: sympy.Expr) -> Math:
        return Seq(*[x for i, p in enumerate(self.pieces(expr)) for x in ((SPACE, p) if i else (p,))])

    def _Correlate(self, x, K, g, *bias) -> list[Math]:
        plus = Tok(" + ", "<mo>+</mo>")
        return [Seq(applied("corr", [Vec(x.name), Vec(K.name)]), *[y for b in bias for y in (plus, Vec(b.name))])]

    def _KernelGradient(self, delta, x, g, shape) -> list[Math]:
        return [applied("corr", [Vec(x.name), Vec(delta.name)])]

    def _ChannelBiasSum(self, delta, channels) -> list[Math]:
        one = len(self.program.vectors[delta.name].shape) == 2  # a 1-D map [C, L]
        where = "i" if one else "i,j"
        return [Seq(formula(f"Σ_{{{where}}} "), Vec(delta.name), formula(f"[·,{where}]"))]

    def _CorrelateBackprop(self, K, delta, g) -> list[Math]:
        return [applied("corr full", [Vec(delta.name), applied("rot180", [Vec(K.name)])])]

    def _MaxPool(self, x, g) -> list[Math]:
        return [applied("maxpool", [Vec(x.name)], Geometry(g).kernel)]

    def _AvgPool(self, x, g) -> list[Math]:
        return [applied("avgpool", [Vec(x.name)], Geometry(g).kernel)]

    def _MaxPoolBackprop(self, x, up, g) -> list[Math]:
        return [applied("to argmax", [self._one(up), Vec(x.name)], Geometry(g).kernel, SEMI)]

    def _AvgPoolBackprop(self, up, g) -> list[Math]:
        return [applied("spread", [self._one(up)], Geometry(g).kernel)]

    def _Flatten(self, x) -> list[Math]:
        return [applied("flatten", [Vec(x.name)])]


# ---------------------------------------------------------------------------------------------
# Index formulas in the notes, written once for both printers


_TEX = {"Σ": r"\sum", "·": r"\cdot ", "δ": r"\delta", "∂": r"\partial ", "−": "-", "°": r"^{\circ}"}
_TOKEN = re.compile(r"Σ_\{([^}]*)\}|[A-Za-z]+[0-9]*|[0-9]+|\s+|.")


def formula(text: str) -> Tok:
    """A small formula of the notes (``W[k,c,u,v]``, ``Σ_{i,j} δ[k,i,j]``, ``2i+u``) as LaTeX and
    MathML: letters one identifier each (a run of them upright, as a function's name), digits
    numbers, ``Σ_{...}`` a sum under its indices; the text is fixed by this module."""
    tex, markup = [], []
    text = re.sub(r"\s*([=+−·])\s*", r"\1", text)  # an operator is spaced by the printers
    for match in _TOKEN.finditer(text):
        token = match.group(0)
        if match.group(1) is not None:
            inner = formula(match.group(1))
            tex.append(rf"\sum_{{{inner.tex()}}}")
            markup.append(f"<munder><mo>∑</mo><mrow>{inner.mathml()}</mrow></munder>")
        elif token.isspace():
            tex.append(r"\,\allowbreak ")  # a long formula of a note may break between its factors
            markup.append('<mspace width="0.17em"></mspace>')
        elif token[0].isalpha() and len(token) == 1 or token in ("δ",):
            tex.append(_TEX.get(token, token))
            markup.append(f"<mi>{token}</mi>")
        elif token[0].isalpha():
            tex.append(rf"\operatorname{{{token}}}")
            markup.append(f"<mi>{token}</mi>")
        elif token.isdigit():
            tex.append(token)
            markup.append(f"<mn>{token}</mn>")
        else:
            tex.append(_TEX.get(token, token))
            markup.append(f'<mo stretchy="false">{html.escape(token)}</mo>' if token in "[]()" else "<mo lspace='0' rspace='0'>/</mo>" if token == "/"
                          else f"<mo>{html.escape(token)}</mo>")
    return Tok("".join(tex), "".join(markup))


def _at(index: str, stride: int) -> str:
    """``2i+u`` (``i+u`` at stride 1)."""
    return f"{'' if stride == 1 else stride}{index[0]}+{index[1]}"


def conv_note(form: LayerForm) -> Prose:
    """What ``corr``, ``∂E/∂W`` and ``∂E/∂b`` are, index by index, for the convolution ``form``."""
    g = Geometry(form.window.geometry)
    where = [_at("iu", g.sw)] if g.one else [_at("iu", g.sh), _at("jv", g.sw)]
    out, kernel, pos = ("k,i", "k,c,u", "i") if g.one else ("k,i,j", "k,c,u,v", "i,j")
    x = f"x[c,{','.join(where)}]"
    net = formula(f"net[{out}] = Σ_{{{kernel[2:]}}} W[{kernel}] {x}" + (" + b[k]" if form.bias else ""))
    padded = f", the input padded with {g.padding} {'zero' if g.padding == '1' else 'zeros'} on each side" if g.padded else ""
    prose = Prose(
        "Here corr is PyTorch's cross-correlation: the kernel slides over the input without being flipped, ", net,
        f" (indices from 0, x the layer's input, stride {g.stride}{padded}). Each kernel weight is used at every position ({pos}), "
        "so its gradient is the sum over them, ", formula(f"∂E/∂W[{kernel}] = Σ_{{{pos}}} δ[{out}] {x}"), ": the input correlated with the deltas",
    )
    if form.bias:
        prose += Prose("; and ", formula(f"∂E/∂b[k] = Σ_{{{pos}}} δ[{out}]"), ", each channel's deltas summed")
    return prose + "."


def backprop_note(above: LayerForm) -> Prose:
    """How the convolution ``above`` sends its deltas back: the full correlation with its kernel
    rotated by 180 degrees, index by index."""
    g = Geometry(above.window.geometry)
    back = ["a−" + ("" if g.sw == 1 else str(g.sw)) + "i"] if g.one else ["a−" + ("" if g.sh == 1 else str(g.sh)) + "i", "b−" + ("" if g.sw == 1 else str(g.sw)) + "j"]
    out, at, pos = ("k,i", "c,a", "k,i") if g.one else ("k,i,j", "c,a,b", "k,i,j")
    prose = Prose(
        f"Layer {above.name} sends back ", formula(f"∂E/∂x[{at}] = Σ_{{{pos}}} δ[{out}] W[k,{','.join(['c'] + back)}]"),
        f" (δ and W its deltas and kernel, x its input; terms whose kernel index falls outside the kernel are 0): the full correlation of its deltas "
        f"(padded with kernel size − 1 zeros on each side) with its kernel rotated by 180°, rot180 flipping it {'end to end' if g.one else 'top to bottom and left to right'}",
    )
    if g.strided:
        prose += f"; with stride {g.stride}, the deltas first get {'s − 1 zeros' if g.one or g.sh == g.sw else 'stride − 1 zeros'} between them"
    if g.padded:
        prose += f"; the input's padding of {g.padding} is cut off again"
    return prose + "."


def maxpool_note(form: LayerForm) -> Prose:
    g = Geometry(form.window.geometry)
    return Prose(
        f"to argmax sends each {g.kernel} window's delta to the input that is largest in the window (the pool's output is that input: "
        "its derivative is 1, the other inputs' 0), and every other input gets 0; where several inputs of a window are equally largest, "
        "the first of them in row-major order gets it, as PyTorch breaks the tie."
    )


def avgpool_note(form: LayerForm) -> Prose:
    g = Geometry(form.window.geometry)
    share = g.kh * g.kw
    return Prose(f"spread gives each of a window's {share} inputs 1/{share} of the window's delta (the mean's derivative with respect to each input).")


def flatten_note(form: LayerForm, shape: Sequence[int]) -> Prose:
    maps = TIMES.join(str(n) for n in shape)
    order = "channel, then position" if len(shape) == 2 else "channel, then row, then column"
    return Prose(f"flatten writes the maps {maps} as one vector of {form.size}, row-major ({order}), as PyTorch's flatten; "
                 "its delta is the same numbers back in the maps' shape, which the layer below reads.")


# ---------------------------------------------------------------------------------------------
# Numbers


def _shown(shape: Sequence[int]) -> bool:
    """Whether an array of ``shape`` is printed: at most :data:`VALUES_MAX` values in at most
    :data:`MATRICES_MAX` matrices."""
    return math.prod(shape) <= VALUES_MAX and math.prod(shape[:-2]) <= MATRICES_MAX


def _labelled(lhs: Math, words: str) -> Math:
    which = Tok(rf"\text{{{words}}}", f"<mtext>{words}</mtext>")
    return Script(lhs, which, sup=False, wrap=(r"\left(", r"\right)"))


#: Rows of one array: one ``align*`` each, as an ``align*`` is as wide as its widest left side
#: plus its widest right side, and :func:`~chainrule.codegen.report.equations.matrix_rows` fits
#: a matrix to its own left side.
Group = list[Row]


def array_rows(lhs: Math, array: np.ndarray, names: Sequence[str] = ("channel",)) -> list[Group]:
    """``lhs = array``: a vector as a column, a 1-D map [C, L] as one matrix (a row per channel),
    a 2-D map [C, H, W] as a matrix per channel, a kernel [out, in, kh, kw] as a matrix per
    (out, in) pair (``names``: what each leading index counts, for the labels)."""
    if array.ndim == 1:
        return [matrix_rows(lhs, array.reshape(-1, 1))]
    if array.ndim == 2:
        return [matrix_rows(lhs, array)]
    lead = array.shape[:-2]
    if math.prod(lead) == 1:
        return [matrix_rows(lhs, array.reshape(array.shape[-2:]))]
    return [matrix_rows(_labelled(lhs, ", ".join(f"{name} {i + 1}" for name, i in zip(names, index))), array[index]) for index in np.ndindex(*lead)]


def _kernel_rows(lhs: Math, kernel: np.ndarray) -> list[Group]:
    """A kernel [out, in, kh, kw] (a matrix per pair) or [out, in, k] (a matrix per output channel,
    a row per input channel)."""
    if kernel.ndim == 3:
        return array_rows(lhs, kernel, ("out",)) if kernel.shape[0] > 1 else [matrix_rows(lhs, kernel[0])]
    return array_rows(lhs, kernel, ("out", "in"))


def displays(caption: Prose, groups: Sequence[Group]) -> tuple[Display, ...]:
    """A display per group of rows, the caption on the first; rows of vectors (a column each,
    narrow) share one."""
    out: list[Display] = []
    for group in groups:
        if out and len(group) == 1 and _narrow(group[0]) and all(_narrow(row) for row in out[-1].rows):
            out[-1] = Display(out[-1].caption, out[-1].rows + tuple(group))
            continue
        out.append(Display(caption if not out else Prose(), tuple(group)))
    return tuple(out)


def _narrow(row: Row) -> bool:
    return isinstance(row.rhs, Matrix) and all(len(r) == 1 for r in row.rhs.rows)


def forward_maps(d: Derivation) -> tuple[Display, ...]:
    """The sample's input maps, and each layer's maps (net and out) and vectors with their
    numbers, where they are small; none on a batch (its summary has every sample)."""
    if d.batch:
        return ()
    net = d.network
    groups: list[Group] = []
    x = d.values.X[0]
    if _shown(net.spec.input_shape):
        groups += array_rows(Vec(net.input_vector), x.reshape(net.spec.input_shape))
    for form, nets, outs in zip(d.layers, d.sample.nets, d.sample.outs[1:]):
        shape = form.window.out_shape if form.window is not None else (form.size,)
        if not _shown(shape) or (form.window is None and form.size > VECTOR_MAX):
            continue
        if form.weight is not None:
            groups += array_rows(Vec(form.net), nets[0].reshape(shape))
        groups += array_rows(Vec(form.out), outs[0].reshape(shape))
    caption = Prose(f"The maps and vectors with their numbers (those of at most {VALUES_MAX} values; a map is a matrix per channel, its rows and columns the map's):")
    return displays(caption, groups)


#: A vector (a flatten's or a dense layer's) is printed with its numbers up to this many entries.
VECTOR_MAX = 6


def map_numbers(d: Derivation, form: LayerForm) -> list[Group]:
    """A convolution's, pool's or flatten's delta (on one sample) and gradients (of the batch)
    with their numbers, where they are small."""
    l = form.index
    groups: list[Group] = []
    if form.kind == "flatten":
        shape: tuple[int, ...] = (form.size,)
    else:
        shape = form.window.out_shape if form.weight is not None else form.window.in_shape
    small = _shown(shape) if form.kind != "flatten" else form.size <= VECTOR_MAX
    if small and not d.batch:
        groups += array_rows(Vec(form.delta), d.sample.deltas[l - 1][0].reshape(shape))
    if form.weight is not None and _shown(form.window.kernel_shape):
        groups += _kernel_rows(partial(Name("E"), Vec(form.weight)), d.sample.dW[l - 1])
    if form.bias is not None and form.window.channels <= VECTOR_MAX:
        groups.append(matrix_rows(partial(Name("E"), Vec(form.bias)), np.asarray(d.sample.db[l - 1]).reshape(-1, 1)))
    return groups

def spatial_note(d: Derivation, form: LayerForm, note: Prose) -> Prose:
    """``note`` and what the layer's operations over maps mean (:func:`conv_note` and the like),
    for the display of layer ``form`` of a network over maps."""
    parts = [note] if note else []
    if form.weight is not None and form.window is not None:
        parts.append(conv_note(form))
    if form.kind.startswith("maxpool"):
        parts.append(maxpool_note(form))
    elif form.kind.startswith("avgpool"):
        parts.append(avgpool_note(form))
    elif form.kind == "flatten":
        parts.append(flatten_note(form, d.layers[form.index - 2].window.out_shape if form.index > 1 else d.network.spec.input_shape))
    delta = next((s for s in d.program.layer(form.index) if s.rule in ("delta", "output delta")), None)
    if delta is not None and delta.expr.has(CorrelateBackprop):
        parts.append(backprop_note(d.layers[form.index]))
    out = Prose()
    for i, part in enumerate(parts):
        out += (Prose(" ") if i else Prose()) + part
    return out


# ---------------------------------------------------------------------------------------------
# A small network's units (the per-weight chains of issue 16)

#: A kernel weight's sum over positions is written whole up to this many terms; past it, its
#: first :data:`SUM_TERMS_SHOWN` terms and a count of the others.
SUM_TERMS_MAX, SUM_TERMS_SHOWN = 16, 6


def positions_display(d: Derivation, chain) -> Display | None:
    """A kernel weight's gradient as the sum over the positions where it is used:
    ``∂E/∂k = Σ_u ∂E/∂net_u · ∂net_u/∂k``, each ``∂net_u/∂k`` by ``sympy.diff`` of the unit's
    definition (the input under the weight there) and ``∂E/∂net_u = δ_u`` the unit's delta (the
    sum of the paths through it); the names, then the numbers, then the value. None for a weight
    that is not a kernel's, or on a batch."""
    net, ref = d.network, chain.param
    layer = net.spec.layers[ref.layer - 1]
    own = chain.cut_layer == ref.layer  # from its own layer's deltas: a bias too
    if d.batch or layer.window is None or not (ref.is_weight or own):
        return None
    symbol = real_symbol(ref.name)
    names, numbers = [], []
    used = {p.factors[-1].of for p in chain.paths}
    for r in range(net.sizes[ref.layer]):
        if net.net(ref.layer, r) not in used:
            continue
        unit = net.net(ref.layer, r).name
        local = sympy.diff(kinds.net_definition(net, ref.layer, r), symbol)
        delta = naming.DELTA_UNIT.format(unit=net.units(ref.layer)[r])
        if local == 1:  # a bias: each delta itself
            names.append(Name(delta))
            numbers.append(Num(d.env[delta], operand=True))
            continue
        names.append(Seq(Name(delta), CDOT, Expr(local)))
        numbers.append(Seq(Num(d.env[delta], operand=True), CDOT, Num(d.value(local), operand=True)))
    delta_u = formula("δ_u = ∂E/∂net_u")
    where = ("worked above where it is not 0" if d.small else "its numbers are in the layer form") if own else "the sum of its paths above; their numbers are in the layer form"
    caption = Prose(f"{'The' if chain.cut_layer == ref.layer else 'The same'} gradient as a sum over the {len(names):,} positions where ", Name(ref.name),
                    " is used, each the unit's delta ", delta_u, f" ({where})" + (" times the input under the weight there:" if ref.is_weight else "; the bias adds to each net with the factor 1:"))
    return Display(caption, sum_equation(d, chain, names, numbers))


def sum_equation(d: Derivation, chain, names: Sequence[Math], numbers: Sequence[Math]) -> tuple[Row, ...]:
    """``∂E/∂θ = Σ terms = Σ numbers = value`` for a shared weight's terms (one per position or
    step where it is used), past :data:`SUM_TERMS_MAX` the first :data:`SUM_TERMS_SHOWN` and a
    count; the value is the data's gradient (a penalty's term is shown apart)."""
    shown = len(names) if len(names) <= SUM_TERMS_MAX else SUM_TERMS_SHOWN
    rest = [] if shown == len(names) else [Seq(PLUS, Tok(r"\dots", "<mo>…</mo>"), Words(f" ({len(names) - shown:,} more terms)"))]
    value = d.chain_gradient(chain) - (d.value(chain.penalty) if chain.penalty != 0 else 0.0)
    steps = [total(list(names[:shown])) + rest, total(list(numbers[:shown])) + rest, [Num(value)]]
    return equation(partial(Name("E"), Name(chain.param.name)), steps)


#: The deltas that are 0 are listed by name up to this many; past it, the first and a count.
ZERO_DELTAS_LISTED = 8
#: At most this many deltas are worked in the report; the others are said in a count.
DELTAS_WORKED = 16
#: A worked delta's dE/d(the unit above) is written as its formula up to this many nodes, else
#: by its name (its number follows).
DELTA_FORM_NODES = 24


def deltas_display(d: Derivation, chain) -> Display | None:
    """The deltas of a shared weight's layer that are not 0, each worked once, one step up the
    chain: ``δ_u = Σ_R ∂E/∂R · ∂R/∂out_u · ∂out_u/∂net_u`` over the units R reading out_u
    (:meth:`~chainrule.derive.chain.ChainRule.delta_steps`), a max-pool's factor in words (1 if
    out_u is the window's largest, else 0); then the names of those that are 0. None where the
    chain does not start at its own layer's deltas, or on a batch."""
    net, layer = d.network, chain.param.layer
    if d.batch or chain.cut_layer != layer or not d.small:  # a big network's deltas: the layer form's
        return None
    engine, rows, zero, worked, more = ChainRule(net, d.layers), [], [], 0, 0
    ties: list[list[str]] = []  # the windows of the worked deltas with a tie on the sample
    for r in range(net.sizes[layer]):
        delta = naming.DELTA_UNIT.format(unit=net.units(layer)[r])
        if d.env[delta] == 0:
            zero.append(delta)
            continue
        if worked == DELTAS_WORKED:
            more += 1
            continue
        worked += 1
        steps: list[list[Math]] = [[], [], []]
        for k, (reader, local, activation) in enumerate(engine.delta_steps(("net", layer, r))):
            gradient, factors = engine.unit_gradient(reader), (local, activation)
            largest = _largest(d, reader, local)
            if len(largest) > 1 and local.wrt.name in largest:
                ties.append(largest)
            above = partial(Name("E"), Name(engine.symbol(reader).name))
            written = _in_product(Expr(gradient), gradient) if tree_size(gradient, DELTA_FORM_NODES + 1) <= DELTA_FORM_NODES else above
            terms = ([above] + [partial(Name(f.of.name), Name(f.wrt.name)) for f in factors], [written] + [_factor_math(f) for f in factors],
                     [Num(d.value(gradient), operand=True)] + [Num(d.value(f.human), operand=True) for f in factors])
            for step, pieces in zip(steps, terms):  # a piece per factor: a long product breaks between them
                step += [Seq(PLUS, pieces[0]) if k else pieces[0]] + [Seq(CDOT, p) for p in pieces[1:]]
        rows += equation(Name(delta), [*steps, [Num(d.env[delta])]], new_rows=(1, 2))
    shown = [Name(z) for z in zero[:ZERO_DELTAS_LISTED]]
    listed = [piece for i, name in enumerate(shown) for piece in ((", ", name) if i else (name,))]
    more_zero = f", ... ({len(zero):,} in all)" if len(zero) > len(shown) else ""
    caption = Prose(f"The deltas of layer {net.layer_name(layer)} that are not 0, each worked once, one step up the chain "
                    "(the sums over positions below use them):")
    others = (f"The {more:,} other deltas that are not 0 are worked the same way (their values are in the layer form). " if more > 1 else
              "The other delta that is not 0 is worked the same way (its value is in the layer form). " if more else "")
    tie_words: list = []
    for i, largest in enumerate(ties):
        tie_words += ([", " if i < len(ties) - 1 else " and "] if i else []) + [Name(largest[0]), " (tied with "]
        tie_words += [piece for j, other in enumerate(largest[1:]) for piece in (((", " if j < len(largest) - 2 else " and "), Name(other)) if j else (Name(other),))] + [")"]
    at_ties = ((f"At {'a tie' if len(ties) == 1 else 'the ties'} on this sample the max-pool's factor is 1 for the first largest in row-major "
                "order, as PyTorch routes the gradient: ", *tie_words, ". ") if ties else ())
    return Display(caption, tuple(rows), Prose(*at_ties, others, *(("The other deltas are 0: ", *listed, more_zero + ".") if zero else ())))


def _in_product(math: Math, expr: sympy.Expr) -> Math:
    return Seq(Tok("(", OPEN_MO), math, Tok(")", CLOSE_MO)) if expr.is_Add or expr.could_extract_minus_sign() else math


def _factor_math(factor) -> Math:
    """A factor's form in a product: a max-pool's in words (1 if out_u is the window's largest,
    else 0), any other its formula."""
    if factor.note == kinds.pool.MAX_NOTE:
        return Seq(Tok("(", OPEN_MO), Words("1 if "), Name(factor.wrt.name), Words(" is the window's largest, else 0"), Tok(")", CLOSE_MO))
    return _in_product(Expr(factor.human), factor.human)


def _largest(d: Derivation, reader: tuple, factor) -> list[str]:
    """The largest inputs on the sample of max-pool unit ``reader``'s window, where ``factor`` is
    its dp/dout; [] for any other factor."""
    if factor.note != kinds.pool.MAX_NOTE:
        return []
    return kinds.pool.largest_on_sample(d.network, reader[1], reader[2], lambda u: d.value(u))


def pool_rows(d: Derivation, l: int, r: int) -> tuple[Row, ...]:
    """A pool's or flatten's unit: its definition (``max`` or the mean of its window, or the unit
    it copies) in the outputs before it, the numbers put in, the value."""
    net, env = d.network, d.env
    out = net.out(l, r)
    definition = kinds.out_definition(net, l, r)
    numbers = {s.name: Num(env[s.name], operand=True) for s in definition.free_symbols}
    steps = [math_pieces(definition)]
    if not definition.is_Symbol:
        steps.append(math_pieces(definition, names=numbers))
    return equation(Name(out.name), steps + [[Num(env[out.name])]])
