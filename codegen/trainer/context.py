"""The emitted trainer's template context: the derivation turned into names, shapes and code lines.

:func:`build_trainer_context` reads a :class:`~chainrule.derive.derivation.Derivation` and returns
a :class:`TrainerContext` holding only strings, numbers, booleans and tuples of those; the
template ``trainer.py.j2`` lays them out. The code is laid out here, as ``ruff format
--line-length 100`` would write it (:mod:`~chainrule.codegen.trainer.pyformat`), with each
line's comment above it; the code that is the same for every spec is copied from
:mod:`~chainrule.codegen.trainer.runtime`, a module of its own. Every expression in the emitted code is printed from the
derivation by :mod:`chainrule.codegen.trainer.printers`: the layer form's forward, loss and backward lines
come from :mod:`~chainrule.codegen.trainer.arraycode`, a small network's straight-line step and
per-weight chains from :mod:`~chainrule.codegen.trainer.floatcode`, and the optimizer's rule from here.

Layout of the emitted parameters: one flat vector ``theta`` (layer by layer, ``W_l`` row-major,
then ``b_l``), with ``params["W1"]`` and friends as views into it, so that an optimizer step is one
pass over one array and the straight-line code of a small network reads and writes all parameters
at once.
"""

from __future__ import annotations

import ast
import functools
import inspect
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sympy

from chainrule.derive import layers, naming, spatial
from chainrule.derive.derivation import SMALL_MAX_DEPTH, SMALL_MAX_PARAMETERS, Derivation
from chainrule.derive.functions import HELPERS
from chainrule.derive.network import Network
from chainrule.derive.optimizers import DECAY, GRAD, LR, OPTIMIZERS, STEP, THETA, first_step_expr

from chainrule.codegen.trainer import runtime
from chainrule.codegen.trainer.arraycode import (
    SPATIAL_HELPERS, ArrayCode, Line, array_code, human, initial_name, output_delta_text, targets_sum_to_one,
)
from chainrule.codegen.trainer.floatcode import formulas as chain_formulas
from chainrule.codegen.trainer.floatcode import scalar_step, scalar_wanted
from chainrule.codegen.trainer.preamble import string_constant, architecture, constants, initial_params, module_docstring
from chainrule.codegen.trainer.printers import vector_code
from chainrule.codegen.trainer.pyformat import format_statement
from chainrule.codegen.trainer.pysource import Py, comment_lines, literal
from chainrule.codegen.trainer.pysource import code as py
from chainrule.codegen.trainer.render import render

__all__ = ["TrainerContext", "architecture", "block", "build_trainer_context", "render_trainer"]

TEMPLATE = "trainer.py.j2"
#: The emitted code's line width (what tests/test_ruff.py checks with ``ruff format``).
WIDTH = 100


@dataclass(frozen=True)
class Slot:
    """A parameter's place in ``theta``: ``name``, NumPy ``shape`` text, ``start``:``stop``;
    ``frozen`` where the spec keeps it fixed."""

    name: Py
    shape: Py
    start: int
    stop: int
    frozen: bool = False


@dataclass(frozen=True)
class TrainerContext:
    """What ``trainer.py.j2`` lays out; see the module docstring. Every field is code or text
    already escaped for its place (:class:`Py`), laid out as ruff would (``*_body`` fields are
    indented whole blocks), or a number or flag."""

    name: Py
    docstring: Py
    constants: Py
    helpers: tuple[Py, ...]
    runtime: dict[str, Py]
    initial_params: Py
    size: int
    frozen: tuple[Slot, ...]
    optimizer: Py
    hyper: tuple[tuple[Py, Py], ...]
    state: tuple[Py, ...]
    kept_rows: int
    kept_arrays: Py
    fold_lr: bool
    step_vector: Py
    per_batch: Py
    plain_update: bool
    inputs_count: int
    inputs_expected: Py
    input_shape: Py
    input_ndim: int
    outputs_count: int
    targets_sum_to_one: bool
    targets_comment: Py
    unit_ones: tuple[tuple[Py, int], ...]
    forward_body: Py
    forward_return: Py
    unpack_outputs: Py
    loss_body: Py
    backward_body: Py
    backward_reads_params: bool
    formulas_body: Py
    update_body: Py
    scalar_body: Py
    classifier: bool
    per_label_accuracy: bool
    steps: int = 0


def formulas_left_out(d: Derivation) -> str | None:
    """Why ``d``'s trainer gets no ``gradient_formulas`` (``--formulas``), or None when it does."""
    spec = d.network.spec
    if spec.spatial or spec.sequence:
        return ("gradient_formulas is written for dense networks only, not yet for convolution, pooling, flatten or rnn layers; "
                "the trainer's gradients are the layer form's (see chainrule derive)")
    if not d.small:
        return (f"gradient_formulas is written for small networks only (at most {SMALL_MAX_PARAMETERS} parameters in at most "
                f"{SMALL_MAX_DEPTH} layers; this one has {d.network.parameter_count} in {d.network.depth}); ask for one chain with chainrule derive --param")
    return None


def build_trainer_context(d: Derivation, spec_path: str, out_dir: str, formulas: bool = False) -> TrainerContext:
    """The template context of ``d``'s trainer, to be written into ``out_dir``; with ``formulas``,
    the trainer also gets ``gradient_formulas`` (every weight's chain, for a small network)."""
    network, spec = d.network, d.network.spec
    slots = _slots(network)
    frozen = tuple(s for s in slots if s.frozen)
    vector = array_code(d)
    forward, loss, backward = vector.forward, vector.loss, vector.backward
    scalar = scalar_step(d, frozenset(s.name for s in frozen)) if scalar_wanted(d) and not spec.sequence else ()
    chains = chain_formulas(d) if formulas and formulas_left_out(d) is None else ()
    updates = _updates(d)
    state = OPTIMIZERS[spec.optimizer.kind].state
    outputs = ", ".join(name for form in d.layers for name in ((form.net, form.out) if form.weight else (form.out,)))
    return TrainerContext(
        name=py(spec.name),
        docstring=module_docstring(d, Path(spec_path).name, TEMPLATE, bool(chains)),
        constants=block(constants(d, spec_path, out_dir, _slot_lines(slots), _extra_constants(d, vector)), 0),
        helpers=tuple(py(source) for name, source in _HELPERS.items() if name in vector.helpers),
        runtime={**{name: runtime_source(name) for name in RUNTIME}, **_sequence_runtime(d)},
        initial_params=block(initial_params(d), 1),
        size=slots[-1].stop,
        frozen=frozen,
        optimizer=py(spec.optimizer.kind),
        hyper=_settings_code(d),
        state=tuple(map(py, state)),
        kept_rows=1 + len(state),
        kept_arrays=py(", ".join(f"self.{name}" for name in ("theta",) + state) + ("," if not state else "")),
        fold_lr=_fold_lr(d),
        step_vector=py(_step_vector(d)),
        per_batch=py(" / X.shape[0]" if d.program.reduction == "mean" else ""),
        plain_update=_fold_lr(d) and not updates.reads,
        inputs_count=len(spec.inputs),
        inputs_expected=py(_inputs_expected(spec)),
        input_shape=py(str(spec.input_shape) if spec.input_shape else ""),
        input_ndim=1 + len(spec.input_shape or ()),
        outputs_count=network.sizes[-1],
        targets_sum_to_one=targets_sum_to_one(d),
        targets_comment=_comment(f"{output_delta_text(d)} only where each row of T sums to 1: other targets would train on wrong gradients", 2),
        unit_ones=tuple((py(name), units) for name, units in vector.ones),
        forward_body=block(forward, 2),
        forward_return=block((Line("", f"return {outputs}"),), 2),
        unpack_outputs=block((Line("", f"{outputs} = outs"),), 2),
        loss_body=block(loss, 2),
        backward_body=block(backward, 2),
        backward_reads_params=vector.reads_parameters,
        formulas_body=block(chains, 2),
        update_body=block(_update_lines(d, updates), 2),
        scalar_body=block(_bound(d, first_step_expr("sgd", dict(spec.optimizer.hyper)).free_symbols) + scalar, 2) if scalar else py(""),
        classifier=(network.is_softmax(network.depth) or spec.loss.name == "bce") and not spec.sequence,
        per_label_accuracy=spec.loss.name == "bce" and not network.is_softmax(network.depth),
        steps=spec.steps,
    )


def _sequence_runtime(d: Derivation) -> dict[str, Py]:
    """A sequence network's own runtime: ``forward`` [batch, steps, outputs] (else none)."""
    if not d.network.spec.sequence:
        return {}
    return {"forward": py(runtime_source("forward_sequence").replace("def forward_sequence(", "def forward(", 1))}


def _inputs_expected(spec) -> str:
    """The shapes of ``X`` the trainer takes: [batch, inputs]; for feature maps also [batch, C, H, W]."""
    if spec.input_shape is None:
        return f"[batch, {len(spec.inputs)}]"
    return "[batch, " + ", ".join(map(str, spec.input_shape)) + f"] or [batch, {len(spec.inputs)}]"


def render_trainer(d: Derivation, spec_path: str, out_dir: str, formulas: bool = False) -> str:
    """The emitted trainer module's source for ``d`` (with ``gradient_formulas`` if ``formulas``)."""
    return render(TEMPLATE, build_trainer_context(d, spec_path, out_dir, formulas))


def block(lines: tuple[Line, ...], level: int) -> Py:
    """``lines`` as text at ``level`` indents of four spaces: each one's comment above it,
    wrapped, and its code laid out as ruff would (:func:`~chainrule.codegen.trainer.pyformat.format_statement`;
    code with a line break of its own is laid out already)."""
    pad = "    " * level
    out = []
    for line in lines:
        out += [f"{pad}# {text}" for text in comment_lines(line.comment, WIDTH - len(pad) - 2)] if line.comment else []
        if not line.code:  # a comment of its own
            continue
        laid_out = line.code.replace("\n", "\n" + pad) if "\n" in line.code else format_statement(line.code, level, WIDTH)
        out.append(pad + laid_out)
    return py("\n".join(out))


def _comment(text: str, level: int) -> Py:
    pad = "    " * level
    return py("\n".join(f"{pad}# {line}" for line in comment_lines(text, WIDTH - len(pad) - 2)))


def _slot_lines(slots: tuple[Slot, ...]) -> tuple[Line, ...]:
    entries = ", ".join(f'"{s.name}": ({s.start}, {s.stop}, {s.shape})' for s in slots)
    return (Line("each parameter's place in the flat vector theta: W{l} is [units, units before], row = destination",
                 f"SLOTS = {{{entries}}}"),)


def _extra_constants(d: Derivation, vector: ArrayCode) -> tuple[Line, ...]:
    """The [batch, units] buffers a step writes into; with softmax and cross-entropy, how far a row
    of targets may be from summing to 1, and what the loss needs."""
    lines = [Line("the [batch, units] arrays a step writes into, made once per batch size", f"BUFFERS = {literal(vector.buffers)}")]
    if d.network.spec.sequence:  # every sequence's length, and each rnn's h_0
        lines = [Line("the steps of every sequence; the [steps * batch, units] arrays a step writes into, a row per step of each sequence",
                      f"STEPS = {d.network.spec.steps}"), Line("", f"BUFFERS = {literal(vector.buffers)}")]
        lines += [Line(f"h_0 of layer {name}", f"{initial_name(name[len('h0_'):])} = np.array({literal(list(values))})") for name, values in d.program.constants]
    if targets_sum_to_one(d):
        spec = d.network.spec
        rule = f"{spec.loss.formula or spec.loss.name} after softmax needs each row of targets to sum to 1 (one-hot or probabilities)"
        lines.append(Line("how far from 1 a row of targets may sum (root mean square over the batch): float32 rounding",
                          "TARGET_TOLERANCE = 1e-6"))
        lines += string_constant("TARGET_RULE", rule)
    return tuple(lines)


def _bound(d: Derivation, reads: frozenset[sympy.Symbol]) -> tuple[Line, ...]:
    """The optimizer's settings among the symbols ``reads`` (those of the rule as printed),
    bound to locals (``lr = self.lr``), in the spec's order."""
    names = {symbol.name for symbol in reads}
    return tuple(Line("", f"{k} = self.{k}") for k, _ in d.network.spec.optimizer.hyper if k in names)


def _update_lines(d: Derivation, updates: Updates) -> tuple[Line, ...]:
    state = OPTIMIZERS[d.network.spec.optimizer.kind].state
    lines = [Line("", "theta = self.theta")]
    if state:
        lines.append(Line("", f"{', '.join(state)} = {', '.join(f'self.{s}' for s in state)}"))
    lines += _bound(d, updates.reads)
    if STEP in updates.reads:
        lines.append(Line("", "k = self.steps"))
    return tuple(lines) + updates.lines


# ---------------------------------------------------------------------------------------------
# Names, shapes and values


def _slots(network: Network) -> tuple[Slot, ...]:
    slots, start = [], 0
    for l in network.parameter_layers:  # a layer without weights has no slot
        shape, n = network.weight_shape(l), network.matrix_number(l)
        layer = network.spec.layers[l - 1]
        for name, matrix in network.weight_matrices(l, np.empty(shape)):  # an rnn's W and U: two slots
            size = math.prod(matrix.shape)
            slots.append(Slot(py(name), py(str(matrix.shape)), start, start + size, "weights" in layer.freeze))
            start += size
        count = layer.bias_count
        if count:
            slots.append(Slot(py(naming.LAYER_BIAS.format(layer=n)), py(f"({count},)"), start, start + count, "biases" in layer.freeze))
            start += count
    return tuple(slots)


# ---------------------------------------------------------------------------------------------
# The optimizer


@dataclass(frozen=True)
class Updates:
    """The optimizer's update as printed lines, and the symbols they read (its settings, the step
    count ``k``): the settings are bound to locals from these, never found in the printed text."""

    lines: tuple[Line, ...]
    reads: frozenset[sympy.Symbol]


def _fold_lr(d: Derivation) -> bool:
    """Plain sgd takes lr into the deltas: the backward pass then gives ``lr_grad`` = lr*dE/dtheta
    (named so), and ``theta -= lr_grad`` is the whole update, one pass over theta fewer (one rate
    for every parameter: not where ``optimizer.groups`` give some their own)."""
    return d.network.spec.optimizer.kind == "sgd" and "lr" not in varying_settings(d)


def varying_settings(d: Derivation) -> dict[str, np.ndarray]:
    """The optimizer's settings that ``optimizer.groups`` make differ between parameters: each a
    vector over ``theta`` (layer by layer, weights row by row, then biases)."""
    settings = d.network.settings
    flat = {}
    for key, _ in d.network.spec.optimizer.hyper:
        parts = []  # in theta's order: each matrix row by row (an rnn's W, then U), then the biases
        for l, layer in enumerate(settings, start=1):
            if layer.W[key].size:
                parts += [m.ravel() for _, m in d.network.weight_matrices(l, layer.W[key])]
            if layer.b is not None:
                parts.append(layer.b[key])
        values = np.concatenate(parts)
        if np.any(values != values[0]):
            flat[key] = values
    return flat


def _settings_code(d: Derivation) -> tuple[tuple[Py, Py], ...]:
    """``self.lr = 0.5`` for each setting: a number, or where groups make it differ, a vector
    over theta as runs of equal values (``np.repeat([0.01, 0.0], [8, 2])``)."""
    varying = varying_settings(d)
    code = []
    for key, value in d.network.spec.optimizer.hyper:
        if key not in varying:
            code.append((py(key), literal(float(value))))
            continue
        values = varying[key]
        starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
        counts = np.diff(np.r_[starts, values.size])
        runs = ", ".join(repr(float(values[i])) for i in starts)
        code.append((py(key), py(f"np.repeat([{runs}], [{', '.join(map(str, counts))}]).astype(self.dtype)")))
    if d.network.spec.loss.l2:  # the loss's own setting (E gains l2/2 * sum of the squared weights)
        code.append((py(naming.L2), literal(float(d.network.spec.loss.l2))))
    return tuple(code)


def _step_vector(d: Derivation) -> str:
    """The name of the vector the backward pass fills and the update reads: ``lr_grad`` (lr times
    dE/dtheta) where sgd takes the rate into the deltas, else ``grad`` (dE/dtheta)."""
    return "lr_grad" if _fold_lr(d) else "grad"


def _updates(d: Derivation) -> Updates:
    """The optimizer's rule over the flat vectors; frozen slices kept where decay would move them."""
    rule = _rule_lines(d)
    hyper = dict(d.network.spec.optimizer.hyper)
    frozen = [s for s in _slots(d.network) if s.frozen]
    decays = hyper.get("weight_decay") or "weight_decay" in varying_settings(d) or d.network.spec.optimizer.kind == "adamw"
    if not frozen or not decays:
        return rule
    keep = tuple(Line("frozen in the spec: weight decay must not move it" if i == 0 else "", f"kept_{s.name} = theta[{s.start}:{s.stop}].copy()") for i, s in enumerate(frozen))
    restore = tuple(Line("", f"theta[{s.start}:{s.stop}] = kept_{s.name}") for s in frozen)
    return Updates(keep + rule.lines + restore, rule.reads)


def _rule_lines(d: Derivation) -> Updates:
    """The optimizer's rule (:data:`~chainrule.derive.optimizers.OPTIMIZERS`) printed over the
    flat vectors, settings that are zero taken out."""
    kind, hyper = d.network.spec.optimizer.kind, dict(d.network.spec.optimizer.hyper)
    varying = varying_settings(d)
    zero = {sympy.Symbol(k, real=True): sympy.Integer(0) for k, v in hyper.items() if v == 0 and k not in varying}
    rule = [(target, expr.xreplace(zero)) for target, expr in OPTIMIZERS[kind].rule]
    if _fold_lr(d):
        decay = LR * DECAY if hyper.get("weight_decay") or "weight_decay" in varying_settings(d) else sympy.Integer(0)
        lines = [Line("weight decay: theta - lr*(g + weight_decay*theta), with lr*g in lr_grad", "theta *= 1.0 - lr*weight_decay")] if decay else []
        lines.append(Line("theta - lr*dE/dtheta (lr was taken into the deltas)", "theta -= lr_grad"))
        return Updates(tuple(lines), frozenset(decay.free_symbols))
    names = {THETA: "theta", GRAD: "grad", STEP: "k"}
    lines = []
    for target, expr in rule:
        if target == THETA:
            lines.append(Line(f"theta = {human(expr)}", f"theta[...] = {vector_code(expr, names)}"))
        elif expr != GRAD or target.name != "gd":
            lines.append(Line("", f"{target.name}[...] = {vector_code(expr, names)}" if target.name != "gd" else f"gd = {vector_code(expr, names)}"))
        else:
            lines.append(Line("", "gd = grad"))
    return Updates(tuple(lines), frozenset().union(*(expr.free_symbols for _, expr in rule)))


# ---------------------------------------------------------------------------------------------
# The trainer's fixed code: helpers and the runtime, copied verbatim

#: The definitions of :mod:`~chainrule.codegen.trainer.runtime` every trainer holds (the helpers
#: only where its code calls them).
RUNTIME = ("_finite", "_finite_data", "_finite_params", "Params", "forward", "loss", "gradients", "fit", "save", "load",
           "_count", "load_data", "_parser", "main")


@functools.cache
def runtime_source(name: str) -> Py:
    """The source text of the definition ``name`` in :mod:`~chainrule.codegen.trainer.runtime`
    (``fit`` for its ``Network.fit``), as written there: a method keeps its class indentation."""
    text = inspect.getsource(runtime)
    definitions = {}
    for node in ast.parse(text).body:
        if isinstance(node, ast.ClassDef) and node.name == "Network":
            definitions.update((n.name, n) for n in node.body if isinstance(n, ast.FunctionDef))
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            definitions[node.name] = node
    node = definitions[name]
    first = min([node.lineno] + [d.lineno for d in node.decorator_list])
    return py("\n".join(text.splitlines()[first - 1 : node.end_lineno]))


def _helper_sources() -> dict[str, str]:
    """Helpers by name, in the order emitted: those of the formula functions NumPy has not (an
    overflow-safe sigmoid, erf; the function table's), the runtime's softmax, and the derivation's
    own softmax functions as written in derive/layers.py (the trainer computes near 0 and 1 as it
    does)."""
    return {
        **HELPERS,
        "softmax": runtime_source("softmax"),
        "sequence_rows": runtime_source("sequence_rows"),
        "_largest_and_share": inspect.getsource(layers._largest_and_share).rstrip(),
        "log_softmax": inspect.getsource(layers.log_softmax).rstrip(),
        "log_one_minus_softmax": inspect.getsource(layers.log_one_minus_softmax).rstrip(),
        "softmax_output_delta": inspect.getsource(layers.softmax_output_delta).rstrip(),
        **{name: inspect.getsource(getattr(spatial, name)).rstrip() for name in ("columns", "_tiles") + SPATIAL_HELPERS},
    }


_HELPERS = _helper_sources()
