"""The emitted trainer's template context: the derivation turned into names, shapes and code lines.

:func:`build_trainer_context` reads a :class:`~chainrule.derive.derivation.Derivation` and returns
a :class:`TrainerContext` holding only strings, numbers, booleans and tuples of those; the
template ``trainer.py.j2`` lays them out. Every expression in the emitted code is printed from the
derivation by :mod:`chainrule.codegen.trainer.printers`: the layer form's forward, loss and backward lines
come from :mod:`~chainrule.codegen.trainer.arraycode`, a small network's straight-line step and
per-weight chains from :mod:`~chainrule.codegen.trainer.floatcode`, and the optimizer's rule from here.

Layout of the emitted parameters: one flat vector ``theta`` (layer by layer, ``W_l`` row-major,
then ``b_l``), with ``params["W1"]`` and friends as views into it, so that an optimizer step is one
pass over one array and the straight-line code of a small network reads and writes all parameters
at once.
"""

from __future__ import annotations

import inspect
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sympy

from chainrule.derive import layers, naming
from chainrule.derive.counts import count
from chainrule.derive.derivation import Derivation
from chainrule.derive.functions import HELPERS
from chainrule.derive.network import Network
from chainrule.derive.optimizers import GRAD, OPTIMIZERS, STEP, THETA

from chainrule.codegen.trainer.arraycode import Line, array_code, buffers, human, ones_name, output_delta_text, targets_sum_to_one
from chainrule.codegen.trainer.floatcode import formulas, scalar_step, scalar_wanted
from chainrule.codegen.trainer.printers import vector_code
from chainrule.codegen.trainer.pysource import Py, literal
from chainrule.codegen.trainer.pysource import code as py
from chainrule.codegen.trainer.render import render

TEMPLATE = "trainer.py.j2"


@dataclass(frozen=True)
class Slot:
    """A parameter's place in ``theta``: ``name``, NumPy ``shape`` text, ``start``:``stop``."""

    name: Py
    shape: Py
    start: int
    stop: int


@dataclass(frozen=True)
class TrainerContext:
    """What ``trainer.py.j2`` lays out; see the module docstring. :class:`Py` fields are code (the
    template prints them as they are); ``str`` fields are text, which the template escapes for
    the place it puts them (:mod:`chainrule.codegen.trainer.pysource`)."""

    name: Py
    spec_file: str
    template: Py
    summary: tuple[str, ...]
    inputs: Py
    outputs: Py
    targets: Py
    architecture: str
    slots: tuple[Slot, ...]
    size: int
    frozen: tuple[Slot, ...]
    init_lines: tuple[Py, ...]
    sample_x: Py
    sample_t: Py
    data_path: str
    data_inputs: Py
    data_targets: Py
    optimizer: Py
    hyper: tuple[tuple[Py, Py], ...]
    state: tuple[Py, ...]
    state_locals: Py
    kept_rows: int
    kept_arrays: Py
    fold_lr: bool
    update_locals: tuple[Py, ...]
    scalar_locals: tuple[Py, ...]
    update_step: bool
    update_lines: tuple[Line, ...]
    forward_lines: tuple[Line, ...]
    output: Py
    loss_lines: tuple[Line, ...]
    backward_lines: tuple[Line, ...]
    scalar_step: tuple[Line, ...]
    formulas: tuple[Line, ...]
    helpers: tuple[Py, ...]
    classifier: bool
    per_label_accuracy: bool
    epochs: int
    buffers: Py
    inputs_count: int
    outputs_count: int
    forward_returns: Py
    targets_sum_to_one: bool
    output_delta: str
    targets_rule: str
    unit_ones: tuple[tuple[Py, int], ...]


def build_trainer_context(d: Derivation, spec_path: str, out_dir: str) -> TrainerContext:
    """The template context of ``d``'s trainer, to be written into ``out_dir``."""
    network, spec = d.network, d.network.spec
    slots = _slots(network)
    vector = array_code(d)
    scalar = scalar_step(d, frozenset(s.name for s in slots if _is_frozen(network, s))) if scalar_wanted(d) else ()
    chains = formulas(d) if d.small else ()
    updates = _updates(d)
    code = "\n".join(line.code for line in vector[0] + vector[1] + vector[2] + scalar + chains + updates)
    helpers = tuple(py(source) for name, source in _HELPERS.items() if any(f"{n}(" in code for n in (name,) + _NEEDED_BY.get(name, ())))
    return TrainerContext(
        name=py(spec.name),
        spec_file=Path(spec_path).name,
        template=py(TEMPLATE),
        summary=_summary(d),
        inputs=literal(tuple(spec.inputs)),
        outputs=literal(tuple(network.units(network.depth))),
        targets=literal(tuple(spec.targets)),
        architecture=architecture(d),
        slots=slots,
        size=slots[-1].stop,
        frozen=tuple(s for s in slots if _is_frozen(network, s)),
        init_lines=tuple(map(py, _init_lines(d))),
        sample_x=literal([[float(v) for v in d.values.x]]),
        sample_t=literal([[float(v) for v in d.values.t]]),
        data_path=_data_path(spec, spec_path, out_dir),
        data_inputs=literal(tuple(spec.data.inputs) if spec.data and spec.data.inputs else None),
        data_targets=literal(tuple(spec.data.targets) if spec.data and spec.data.targets else None),
        optimizer=py(spec.optimizer.kind),
        hyper=tuple((py(k), literal(float(v))) for k, v in dict(spec.optimizer.hyper).items()),
        state=tuple(map(py, OPTIMIZERS[spec.optimizer.kind].state)),
        state_locals=_state_locals(OPTIMIZERS[spec.optimizer.kind].state),
        kept_rows=1 + len(OPTIMIZERS[spec.optimizer.kind].state),
        kept_arrays=py(", ".join(f"self.{name}" for name in ("theta",) + OPTIMIZERS[spec.optimizer.kind].state) + ("," if not OPTIMIZERS[spec.optimizer.kind].state else "")),
        update_locals=tuple(py(k) for k, _ in spec.optimizer.hyper if _uses(updates, k)),
        scalar_locals=tuple(py(k) for k, _ in spec.optimizer.hyper if _uses(scalar, k)),
        update_step=_uses(updates, "k"),
        fold_lr=_fold_lr(d),
        update_lines=updates,
        forward_lines=vector[0],
        output=py(d.layers[-1].out),
        loss_lines=vector[1],
        backward_lines=vector[2],
        scalar_step=scalar,
        formulas=chains,
        helpers=helpers,
        classifier=network.is_softmax(network.depth) or spec.loss.name == "bce",
        per_label_accuracy=spec.loss.name == "bce" and not network.is_softmax(network.depth),
        epochs=1000 if spec.data is None else 30,
        buffers=literal(buffers(d, code)),
        inputs_count=len(spec.inputs),
        outputs_count=network.sizes[-1],
        forward_returns=py(", ".join(name for form in d.layers for name in (form.net, form.out))),
        targets_sum_to_one=targets_sum_to_one(d),
        output_delta=output_delta_text(d),
        targets_rule=f"{spec.loss.formula or spec.loss.name} after softmax needs each row of targets to sum to 1 (one-hot or probabilities)",
        unit_ones=tuple((py(ones_name(form)), form.size) for form in d.layers if f'work["{ones_name(form)}"]' in code),
    )




def render_trainer(d: Derivation, spec_path: str, out_dir: str) -> str:
    """The emitted trainer module's source for ``d``."""
    return render(TEMPLATE, build_trainer_context(d, spec_path, out_dir))


# ---------------------------------------------------------------------------------------------
# Names, shapes and values


def _slots(network: Network) -> tuple[Slot, ...]:
    slots, start = [], 0
    for l in range(1, network.depth + 1):
        rows, cols = network.sizes[l], network.sizes[l - 1]
        slots.append(Slot(py(naming.LAYER_WEIGHT.format(layer=l)), py(f"({rows}, {cols})"), start, start + rows * cols))
        start += rows * cols
        count = network.spec.layers[l - 1].bias_count
        if count:
            slots.append(Slot(py(naming.LAYER_BIAS.format(layer=l)), py(f"({count},)"), start, start + count))
            start += count
    return tuple(slots)


def _is_frozen(network: Network, slot: Slot) -> bool:
    layer = network.spec.layers[int(slot.name[1:]) - 1]
    return ("weights" if slot.name.startswith("W") else "biases") in layer.freeze


def architecture(d: Derivation) -> str:
    """One line that a saved file must match: sizes, activations with their parameters, biases, loss."""
    parts = [f"{d.network.spec.name}: " + "-".join(str(s) for s in d.network.sizes)]
    for form, layer in zip(d.layers, d.network.spec.layers):
        params = ", ".join(f"{k}={float(v)!r}" for k, v in layer.activation.params)
        parts.append(f"{form.name}:{form.activation}{f'({params})' if params else ''}:{layer.bias.value}")
    parts.append(d.network.spec.loss.formula or d.network.spec.loss.name)
    return " ".join(parts)


def _summary(d: Derivation) -> tuple[str, ...]:
    spec = d.network.spec
    lines = [f"Inputs: {', '.join(spec.inputs)}."]
    for form, layer in zip(d.layers, spec.layers):
        bias = {"none": "no bias", "shared": "one shared bias", "per_unit": "a bias per unit"}.get(layer.bias.value, layer.bias.value)
        lines.append(f"Layer {form.name}: {count(form.size, 'unit')} {', '.join(d.network.units(form.index)[:4])}{', ...' if form.size > 4 else ''}; {form.activation}; {bias}.")
    lines.append(f"Loss: {spec.loss.formula or spec.loss.name} per sample, averaged over the batch.")
    hyper = ", ".join(f"{k} = {v:g}" for k, v in dict(spec.optimizer.hyper).items())
    lines.append(f"Optimizer: {spec.optimizer.kind} ({hyper}).")
    return tuple(lines)


def _init_lines(d: Derivation) -> tuple[str, ...]:
    """Code that rebuilds the derivation's starting values exactly: given numbers, or the same
    seeded draw (``np.random.default_rng([seed, layer]).uniform``)."""
    network, spec = d.network, d.network.spec
    lines = []
    for l, layer in enumerate(spec.layers, start=1):
        W, b = naming.LAYER_WEIGHT.format(layer=l), naming.LAYER_BIAS.format(layer=l)
        if layer.weights is not None:
            lines.append(f'"{W}": {_literal(d.values.W[l - 1])},')
        else:
            fan_in, fan_out = network.sizes[l - 1], network.sizes[l]
            definition = network.activation_def(l)
            he = definition is not None and definition.init == "he"
            limit = float(np.sqrt(6.0 / (fan_in if he else fan_in + fan_out)))
            rule = "He" if he else "Glorot"
            lines.append(f'"{W}": np.random.default_rng([{spec.seed}, {l}]).uniform(-{limit!r}, {limit!r}, size=({fan_out}, {fan_in})),  # {rule}')
        if layer.bias_count:
            values = d.values.b[l - 1]
            given = layer.biases is not None
            lines.append(f'"{b}": {_literal(values)},' if given else f'"{b}": np.zeros({layer.bias_count}),')
    return tuple(lines)


def _literal(array: np.ndarray) -> str:
    return f"np.array({np.asarray(array, dtype=float).tolist()!r})"


def _data_path(spec, spec_path: str, out_dir: str) -> str:
    if spec.data is None:
        return ""
    target = Path(spec_path).resolve().parent / spec.data.path
    return Path(os.path.relpath(target, Path(out_dir).resolve())).as_posix()


# ---------------------------------------------------------------------------------------------
# The layer form as array code


# ---------------------------------------------------------------------------------------------
# The optimizer


def _uses(lines: tuple[Line, ...], name: str) -> bool:
    return any(re.search(rf"\b{name}\b", line.code) for line in lines)


def _state_locals(state: tuple[str, ...]) -> Py:
    """``m, v = self.m, self.v``: the optimizer's state bound to locals for the update."""
    return py(f"{', '.join(state)} = {', '.join(f'self.{s}' for s in state)}")


def _fold_lr(d: Derivation) -> bool:
    """Plain sgd takes lr into the deltas: theta -= grad is then the whole update."""
    return d.network.spec.optimizer.kind == "sgd"


def _updates(d: Derivation) -> tuple[Line, ...]:
    """The optimizer's rule over the flat vectors; frozen slices kept where decay would move them."""
    lines = _rule_lines(d)
    hyper = dict(d.network.spec.optimizer.hyper)
    frozen = [s for s in _slots(d.network) if _is_frozen(d.network, s)]
    if not frozen or not (hyper.get("weight_decay") or d.network.spec.optimizer.kind == "adamw"):
        return lines
    keep = tuple(Line("frozen in the spec: weight decay must not move it" if i == 0 else "", f"kept_{s.name} = theta[{s.start}:{s.stop}].copy()") for i, s in enumerate(frozen))
    restore = tuple(Line("", f"theta[{s.start}:{s.stop}] = kept_{s.name}") for s in frozen)
    return keep + lines + restore


def _rule_lines(d: Derivation) -> tuple[Line, ...]:
    kind, hyper = d.network.spec.optimizer.kind, dict(d.network.spec.optimizer.hyper)
    if _fold_lr(d):
        lines = []
        if hyper.get("weight_decay"):
            lines.append(Line("weight decay: theta - lr*(g + weight_decay*theta), with lr*g already in grad", "theta *= 1.0 - lr*weight_decay"))
        lines.append(Line("theta - lr*dE/dtheta (lr was taken into the deltas)", "theta -= grad"))
        return tuple(lines)
    zero = {sympy.Symbol(k, real=True): sympy.Integer(0) for k, v in hyper.items() if v == 0}
    names = {THETA: "theta", GRAD: "grad", STEP: "k"}
    lines = []
    for target, expr in OPTIMIZERS[kind].rule:
        expr = expr.xreplace(zero)
        if target == THETA:
            lines.append(Line(f"theta = {human(expr, {})}", f"theta[...] = {vector_code(expr, names)}"))
        elif expr != GRAD or target.name != "gd":
            lines.append(Line("", f"{target.name}[...] = {vector_code(expr, names)}" if target.name != "gd" else f"gd = {vector_code(expr, names)}"))
        else:
            lines.append(Line("", "gd = grad"))
    return tuple(lines)


# ---------------------------------------------------------------------------------------------
# Small networks: straight-line float code and the per-weight chains



# ---------------------------------------------------------------------------------------------
# Helpers the emitted module defines, by name: written once here, emitted where the code calls them

#: Helpers that other helpers call: emitted wherever one of those is.
_NEEDED_BY = {"_largest_and_share": ("log_softmax", "log_one_minus_softmax"), "log_softmax": ("log_one_minus_softmax",)}

_HELPERS = {
    **HELPERS,  # the functions of formulas that NumPy has not (an overflow-safe sigmoid, erf)
    "softmax": '''def softmax(z, out=None, lse=None, ones=None):
    """exp(z_k) / sum_m exp(z_m) per row, shifted by the row's largest z (same value, no overflow);
    with ``lse`` ([batch, 1]), the row's log-sum-exp log(sum_m exp(z_m)) is written there too;
    with ``ones`` ([units, 1]), the rows are summed as one matrix product (a reduction along short
    rows costs twice as much)."""
    top = np.maximum.reduce(z, axis=1, keepdims=True)
    out = np.subtract(z, top, out=out)
    np.exp(out, out=out)
    total = np.add.reduce(out, axis=1, keepdims=True) if ones is None else np.dot(out, ones, out=lse)
    out /= total
    if lse is not None:
        np.log(total, out=lse)
        lse += top
    return out''',
    # the derivation's own functions, as written in derive/layers.py (softmax near 0 and 1)
    "_largest_and_share": inspect.getsource(layers._largest_and_share).rstrip(),
    "log_softmax": inspect.getsource(layers.log_softmax).rstrip(),
    "log_one_minus_softmax": inspect.getsource(layers.log_one_minus_softmax).rstrip(),
    "softmax_output_delta": inspect.getsource(layers.softmax_output_delta).rstrip(),
}
