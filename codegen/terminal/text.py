"""The derivation as terminal text: forward pass, chains with numbers, updates, layer form."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from chainrule.derive.counts import count
from chainrule.derive.derivation import Derivation

from chainrule.codegen.terminal.describe import (
    EXPANDED_MAX_NODES,
    Line,
    expanded_form,
    ParamText,
    describe_layer,
    describe_param,
    forward_lines,
    number,
    penalty_line,
)

if TYPE_CHECKING:  # the steps are taken by the trainer: derive without --steps never imports it
    from chainrule.codegen.steps import Steps


def network_summary(d: Derivation) -> str:
    spec = d.network.spec
    inputs = ", ".join(spec.inputs) if len(spec.inputs) <= 6 else count(len(spec.inputs), "input")
    if spec.input_shape is not None:
        inputs = f"inputs {list(spec.input_shape)}"
    layers = " -> ".join(_layer_summary(l) for l in spec.layers)
    optimizer = ", ".join(f"{k} {v:g}" for k, v in spec.optimizer.hyper if v != 0 or k == "lr")
    groups = "".join(f"; group {', '.join(g.params)}: {', '.join(f'{k} {v:g}' for k, v in g.hyper)}" for g in spec.optimizer.groups)
    l2 = f" + l2 penalty ({spec.loss.l2:g})" if spec.loss.l2 else ""
    return f"{spec.name} ({spec.source}): {inputs} -> {layers}; loss {spec.loss.formula or spec.loss.name}{l2}; optimizer {spec.optimizer.kind} ({optimizer}{groups})"


def _layer_summary(layer) -> str:
    """``h: 2 sigmoid, bias per_unit``; a convolution's or pool's kind, kernel and output maps."""
    activation = layer.activation.formula or layer.activation.name
    if layer.window is not None:
        w = layer.window
        conv = f"{layer.kind} {w.channels}x{list(w.kernel)}" + (f" stride {list(w.stride)}" if any(v != 1 for v in w.stride) else "")
        conv += f" padding {list(w.padding)}" if any(w.padding) else ""
        if layer.has_parameters:
            return f"{layer.name}: {conv} -> {list(w.out_shape)} {activation}, bias {layer.bias.value}"
        return f"{layer.name}: {layer.kind} {list(w.kernel)} -> {list(w.out_shape)}"
    if layer.kind == "flatten":
        return f"{layer.name}: flatten -> {len(layer.units)}"
    return f"{layer.name}: {len(layer.units)} {activation}, " + (f"bias {layer.bias.value}" if layer.has_parameters else "no weights")


def sample_summary(d: Derivation) -> str:
    """The sample's inputs and targets; for a batch, a line per sample and the reduction."""
    spec = d.network.spec
    seeded = f" (seeded: the spec has no sample; seed {spec.seed})" if d.values.seeded_sample else ""
    rows = [_sample_pairs(spec, x, t) for x, t in zip(d.values.X, d.values.T)]
    if not d.batch:
        return f"Sample{seeded}: {rows[0]}"
    lines = [f"Samples: a batch of {len(rows)}, E the {spec.reduction} of their losses"]
    return "\n".join(lines + [f"  sample {k}: {row}" for k, row in enumerate(rows, start=1)])


def _sample_pairs(spec, x, t) -> str:
    if spec.sequence:
        return _sequence_pairs(spec, x, t)
    pairs = [f"{n} = {number(v)}" for n, v in zip(spec.inputs, x)]
    targets = [f"{n} = {number(v)}" for n, v in zip(spec.targets, t)]
    if len(pairs) > 6:
        pairs = pairs[:3] + ["..."] + pairs[-1:]
    if len(targets) > 6:
        hidden = [pair for pair, v in zip(targets[3:-1], t[3:-1]) if v != 0]
        targets = targets[:3] + (["..."] if len(hidden) > 3 else [f"... {', '.join(hidden)}, ..."] if hidden else ["..."]) + targets[-1:]
    return f"{', '.join(pairs)}; {', '.join(targets)}"


def _sequence_pairs(spec, x, t) -> str:
    """A sequence's inputs and targets, step by step (``null``: no loss at that step)."""
    def step(values) -> str:
        return "null" if np.isnan(values).all() else "[" + ", ".join(number(v) for v in values) + "]"

    steps = [(step(xs), step(ts)) for xs, ts in zip(x.reshape(spec.steps, -1), t.reshape(spec.steps, -1))]
    shown = steps if len(steps) <= 6 else steps[:3] + [("...", "...")] + steps[-1:]
    return f"x = [{', '.join(a for a, _ in shown)}]; t = [{', '.join(b for _, b in shown)}] ({count(spec.steps, 'step')})"


#: A sequence's values are shown step by step up to this many steps and units.
SHOWN_STEPS, SHOWN_UNITS = 8, 4


def _sequence_forward(d: Derivation) -> list[str]:
    """Each layer's outputs at each step (small layers), or their smallest, mean and largest."""
    steps = d.network.spec.steps
    out = [f"Forward pass ({count(steps, 'step')}; per layer: its outputs at t = 1, 2, ...{' on sample 1' if d.batch else ''})"]
    for form, a in zip(d.layers, d.sample.outs[1:]):
        row = a[0].reshape(steps, -1)
        if steps <= SHOWN_STEPS and form.size <= SHOWN_UNITS:
            values = "  ".join("[" + ", ".join(number(v) for v in step) + "]" for step in row)
            out.append(f"  {form.out:<10} {values}")
        else:
            out.append(f"  {form.out:<10} {count(form.size, 'unit'):>12}  min {number(row.min())}  mean {number(row.mean())}  max {number(row.max())}")
    return out


def _line(line: Line, width: int) -> str:
    parts = [line.formula] + ([line.substituted] if line.substituted else []) + [number(line.value)]
    return f"  {line.name:<{width}} = " + " = ".join(parts)


def render_forward(d: Derivation) -> list[str]:
    if d.small and d.batch:
        out = []
        for row in range(d.values.samples):
            lines = forward_lines(d, row)
            width = max(len(line.name) for line in lines)
            out += [f"Forward pass, sample {row + 1}"] + [_line(line, width) for line in lines] + [""]
        terms = " + ".join(number(e) for e in d.sample_losses)
        over = f"({terms})/{d.values.samples}" if d.network.spec.reduction == "mean" else terms
        if not d.network.spec.loss.l2:
            return out + [f"E = {d.network.spec.reduction} of the samples' losses = {over} = {number(d.loss)}"]
        penalty = penalty_line(d)
        return out + [f"E = {d.network.spec.reduction} of the samples' losses + {penalty.formula} = {over} + {penalty.substituted}"
                      f" = {number(d.data_loss)} + {number(penalty.value)} = {number(d.loss)}",
                      "  (the penalty is added once to the batch's loss; each sample's E_k is its loss alone)"]
    if d.small:
        lines = forward_lines(d)
        width = max(len(line.name) for line in lines)
        return ["Forward pass"] + [_line(line, width) for line in lines]
    out = ["Forward pass (per layer: units, smallest, mean and largest output)"] if not d.network.spec.sequence else _sequence_forward(d)
    for form, a in zip(d.layers, d.sample.outs[1:]) if not d.network.spec.sequence else ():
        row = a[0]
        out.append(f"  {form.out:<10} {count(form.size, 'unit'):>12}  min {number(row.min())}  mean {number(row.mean())}  max {number(row.max())}")
    if d.network.spec.loss.l2:
        penalty = penalty_line(d)
        out.append(f"  E = loss + {penalty.formula} = {number(d.data_loss)} + {penalty.substituted} = {number(d.loss)}")
    else:
        out.append(f"  E = {number(d.loss)}")
    return out


def _signed(value: float) -> str:
    return f"({number(value)})" if value < 0 else number(value)


def _paths(paths: tuple, gradient_name: str, total: float, indent: str = "") -> list[str]:
    """A chain's paths with forms and numbers, and their sum."""
    out = []
    for i, path in enumerate(paths, start=1):
        label = f"{indent}  path {i}: " if len(paths) > 1 else f"{indent}  "
        out.append(f"{label}{path.names}")
        pad = " " * (len(label) - 2)
        out.append(f"  {pad}  = {path.forms}")
        out.append(f"  {pad}  = {path.values} = {number(path.value)}")
        for factor in path.factors:
            if factor.note:
                out.append(f"  {pad}  ({factor.name}{'' if factor.words else ' = ' + factor.form}: {factor.note})")
    if len(paths) > 1:
        out.append(f"{indent}  {gradient_name} = " + " + ".join(_signed(path.value) for path in paths) + f" = {number(total)}")
    return out


#: A shared weight's sum writes out this many positions in full; past it, the first
#: :data:`FIRST_POSITIONS` and a count.
SHOWN_POSITIONS = 16
FIRST_POSITIONS = 8


def _positions(paths: tuple, gradient_name: str, total: float, indent: str = "") -> list[str]:
    """A shared weight's paths, a line each (``delta_c_1_1_1 * x_1_1_1 = 0.01 * 0.3 = 0.003``),
    and their sum; past :data:`SHOWN_POSITIONS`, the first terms and a count."""
    shown = paths if len(paths) <= SHOWN_POSITIONS else paths[:FIRST_POSITIONS]
    out = [f"{indent}  {path.forms} = {path.values} = {number(path.value)}" for path in shown]
    notes = dict.fromkeys(f"{factor.name}{'' if factor.words else ' = ' + factor.form}: {factor.note}" for path in shown for factor in path.factors
                          if factor.note and factor.note != "the delta of the layer form")
    out += [f"{indent}  ({note})" for note in notes]
    terms = " + ".join(_signed(path.value) for path in shown)
    if len(shown) < len(paths):
        out.append(f"{indent}  ... ({len(paths) - len(shown):,} more)")
        terms += f" + ... ({len(paths):,} terms)"
    return out + [f"{indent}  {gradient_name} = {terms} = {number(total)}"]


def _worked_deltas(p: ParamText) -> list[str]:
    """A shared weight's sum without its terms that are 0 on the sample, and the deltas of the
    others, each worked one step up (the factors, their forms, their numbers)."""
    out = [f"  {p.gradient_name} = {p.nonzero}"] if p.nonzero else []
    if p.deltas:
        terms = "the terms above" if not p.nonzero else "those terms"
        first = f"the first {len(p.deltas)} of " if len(p.deltas) < p.deltas_of else ""  # past 16 terms: those of the first 8
        out.append(f"  the deltas of {first}{terms}, each one step up the chain:")
    for delta in p.deltas:
        out.append(f"    {delta.name} = {delta.chain} = {delta.form}")
        out.append(f"    {' ' * len(delta.name)} = {delta.numbers} = {number(delta.value)}")
    return out


def render_param(p: ParamText) -> list[str]:
    paths = p.per_sample[0] if p.per_sample else p.paths
    written = _positions if p.shared and p.cut_note else _paths  # cut at the deltas: a line per position
    head = p.positions if p.shared else count(len(paths), "path")
    out = [f"{p.gradient_name}: {head}" + (f", on each of {count(len(p.per_sample), 'sample')}" if p.per_sample else "")]
    if p.cut_note:
        out.append(f"  ({p.cut_note})")
    if not p.per_sample:
        out += written(p.paths, p.gradient_name, p.paths_gradient)
    for k, (sample, value) in enumerate(zip(p.per_sample, p.sample_gradients), start=1):
        out.append(f"  sample {k}:")
        out += written(sample, f"dE_{k}/d{p.name}", value, "  ")
        if len(sample) == 1 and written is _paths:
            out.append(f"    dE_{k}/d{p.name} = {number(value)}")
    if p.per_sample:
        terms = " + ".join(_signed(v) for v in p.sample_gradients)
        over = f"({terms})/{len(p.sample_gradients)}" if p.reduction == "mean" else terms
        out.append(f"  {p.gradient_name} = {p.reduction} over the samples = {over} = {number(p.paths_gradient)}"
                   + (" (the paths; the penalty below)" if p.penalty else ""))
    if p.penalty is not None:  # the penalty's term, once, after the paths' (reduced) sum
        paths = "(paths)" if not p.per_sample else f"({p.reduction} over the samples)"
        out.append(f"  {p.gradient_name} = {paths} + {p.penalty.formula} = {_signed(p.paths_gradient)} + {p.penalty.substituted} = {number(p.gradient)}")
    if p.shared and len(paths) > SHOWN_POSITIONS:  # its form is the sum of the terms above
        pass
    elif p.per_sample:
        out.append(f"  dE_k/d{p.name} = {p.closed_form} (sample k's units)")
    else:
        out.append(f"  {p.gradient_name} = {p.closed_form}")
    out += _worked_deltas(p)
    update = p.update
    if p.frozen:
        out.append(f"  {update.name} = {number(update.value)} (frozen: not updated)")
    else:
        out.append(f"  {update.name} = {update.formula} = {update.substituted} = {number(update.value)}")
    return out


def render_layers(d: Derivation) -> list[str]:
    steps = "; v[t] is v at step t, target[t] the targets at step t" if d.network.spec.sequence else ""
    out = [f"Layer form (delta recursion; * is elementwise, @ the matrix product{steps})"]
    for form in d.layers:
        layer = describe_layer(d, form)
        without = ", no weights: delta is dE/d(its input)" if layer.weight is None else ""
        what = layer.activation if form.kind in ("dense", "softmax", "activation") else form.kind if form.weight is None else f"{form.kind}, {layer.activation}"
        size = f"maps {list(form.window.out_shape)}" if form.window is not None else count(layer.units, "unit")
        size += f" at each of {count(d.network.spec.steps, 'step')}" if d.network.spec.sequence else ""
        out.append(f"  layer {layer.index} ({layer.name}: {size}, {what}{without})")
        out.extend(f"    {line}" for line in layer.forward)
        out.append(f"    {layer.delta}")
        out.extend(f"    {line}" for line in layer.gradients)
    return out


#: A layer-level matrix with at most this many entries is printed whole (its signs matter).
SHOWN_ENTRIES = 6


def _nested(values: np.ndarray) -> str:
    """``[[0.5, -0.25]]``: the entries in the array's nesting, each to 9 significant digits."""
    if values.ndim == 0:
        return number(float(values))
    return "[" + ", ".join(_nested(v) for v in values) + "]"


def render_gradient_summary(d: Derivation) -> list[str]:
    """Per layer matrix: its gradient, and the matrix after one optimizer step with what the
    step changed (norm and largest |entry| of each)."""
    out = ["Gradients and one optimizer step, per layer matrix (its entries where it has at most "
           f"{SHOWN_ENTRIES}, else norm and largest |entry|)"]

    def row(name: str, values: np.ndarray, step: np.ndarray | None = None) -> str:
        if values.size <= SHOWN_ENTRIES:  # a small matrix: its entries, signs and all
            return f"  {name:<10} = {_nested(values)}" + ("" if step is None else f"  (step: {_nested(step)})")
        text = f"  {name:<10} norm {number(float(np.linalg.norm(values)))}  max {number(float(np.max(np.abs(values))))}"
        return text + ("" if step is None else f"  (step: norm {number(float(np.linalg.norm(step)))}, max {number(float(np.max(np.abs(step))))})")

    layers = zip(d.layers, d.sample.dW, d.sample.db, d.values.W, d.values.b, d.updated_W, d.updated_b)
    for form, dW, db, W0, b0, W1, b1 in layers:
        if dW is None:  # a layer without weights
            continue
        split = zip(*(d.network.weight_matrices(form.index, m) for m in (dW, W0, W1)))  # an rnn's W and U apart
        matrices = [(name, g, before, after) for (name, g), (_, before), (_, after) in split] + ([(form.bias, db, b0, b1)] if db is not None else [])
        for name, gradient, before, after in matrices:
            out += [row(f"dE_d{name}", gradient), row(f"{name}+", after, after - before)]
    for name, gradient in d.initial_gradients.items():  # an rnn's h_0: a constant, not updated
        out.append(_initial_row(name, gradient))
    return out


def _from_own_deltas(d: Derivation, name: str) -> bool:
    """Whether a parameter's chain starts at its own layer's deltas (a convolution's shared weight)."""
    chain = d.chains[name]
    return chain.cut_layer is not None and chain.cut_layer == chain.param.layer


def _initial_row(name: str, gradient: np.ndarray) -> str:
    """``dE_dh0_h = [-0.0146197075]  (h_0: not trained)``, its entries where it has at most
    :data:`SHOWN_ENTRIES`."""
    shown = _nested(gradient) if gradient.size <= SHOWN_ENTRIES else f"norm {number(float(np.linalg.norm(gradient)))}  max {number(float(np.max(np.abs(gradient))))}"
    return f"  {'dE_d' + name:<10} = {shown}  (h_0: not trained)"


def render_derivation(d: Derivation, params: Sequence[str] = ()) -> str:
    """The whole derivation as text; with ``params``, only those parameters' chains."""
    out = [network_summary(d), sample_summary(d), ""]
    out += render_forward(d) + [""]
    names = list(params) or list(d.chains)
    for name in names:
        out += render_param(describe_param(d, name))
        if params and not _from_own_deltas(d, name):  # from its own layer's deltas, it would repeat the sum above
            expanded = expanded_form(d, name)
            shown = expanded or f"(more than {EXPANDED_MAX_NODES:,} terms written out: see the form in unit symbols above)"
            out.append(f"  in inputs, targets and parameters{' (dE_k, sample k)' if d.batch else ''}: {shown}")
        out.append("")
    if d.small and d.initial_gradients:  # an rnn's h_0: no parameter, its gradient all the same
        out += [_initial_row(name, gradient) for name, gradient in d.initial_gradients.items()] + [""]
    if not d.small:
        out += render_gradient_summary(d) + [""]
        if not params:
            out += ["(a big network: pass --param NAME for one parameter's chain and closed form)", ""]
    out += render_layers(d)
    return "\n".join(out) + "\n"


def render_check(d: Derivation, result, emitted=None, emitted_path: str = "") -> str:
    """The check's verdict: per group and form, the largest relative error; with ``emitted`` (the
    emitted trainer's result), a second table for the file at ``emitted_path``."""
    out = [network_summary(d), f"Central differences (float64) at {count(result.points, 'point')}: the sample and seeded random points away from kinks"]
    out += _check_table(result)
    out.append(f"The derivation and finite differences {_verdict(result)}.")
    if emitted is not None:
        out.append(f"Emitted trainer {emitted_path} at {count(emitted.points, 'point')}: emitted = its gradients against central differences of its loss, derived = against the layer form")
        out += _check_table(emitted)
        out.append(f"The emitted trainer, finite differences and the derivation {_verdict(emitted)}.")
    return "\n".join(out) + "\n"


def _verdict(result) -> str:
    if not result.points:
        return "were NOT COMPARED: no point was left to check (take --points 1 or more)"
    return f"{'agree' if result.passed else 'DISAGREE'} (tolerance {result.tolerance:.0e})"


def _check_table(result) -> list[str]:
    out = [f"  note: {note}" for note in result.notes]
    width = max((len(g.group) for g in result.groups), default=1)
    form_width = max((len(g.form) for g in result.groups), default=1)
    for g in result.groups:
        mark = "ok" if g.max_error <= result.tolerance else "DISAGREES"
        out.append(f"  {g.group:<{width}} {g.form:<{form_width}} {g.checked:>6} {'check ' if g.checked == 1 else 'checks'}  largest relative error {g.max_error:.2e} at {g.worst}  {mark}")
    return out


def render_steps(d: Derivation, steps: Steps, params: Sequence[str] = ()) -> str:
    """The loss (and the parameters ``params``) after each step, then every parameter after the
    last (per matrix for a big network) and the optimizer's state."""
    spec = d.network.spec
    settings = ", ".join(f"{k} {v:g}" for k, v in spec.optimizer.hyper if v != 0 or k == "lr")
    out = [f"Steps: {count(steps.count, 'step')} of {spec.optimizer.kind} ({settings}) on the sample, taken by the emitted trainer in float64"]
    columns = [steps.names.index(name) for name in params]
    header = ["step", "E"] + list(params)
    rows = [[str(k), number(float(steps.losses[k]))] + [number(float(steps.theta[k, c])) for c in columns] for k in steps.shown]
    widths = [max(len(row[i]) for row in rows + [header]) for i in range(len(header))]
    out.append("  " + "  ".join(h.rjust(w) for h, w in zip(header, widths)))
    previous = -1
    for row in rows:
        if int(row[0]) != previous + 1:
            out.append("  " + "...".rjust(widths[0]))
        previous = int(row[0])
        out.append("  " + "  ".join(cell.rjust(w) for cell, w in zip(row, widths)))
    last = steps.count
    if d.small:
        values = steps.params(last)
        width = max(map(len, values))
        out += ["", f"Parameters after step {last}"] + [f"  {name:<{width}} = {number(v)}" for name, v in values.items()]
        for state, entries in steps.state_after(last).items():
            out += ["", f"Optimizer state {state} after step {last}"] + [f"  {name:<{width}} = {number(v)}" for name, v in entries.items()]
    else:
        out += ["", f"Parameters after step {last}, per matrix (norm, largest |entry|)"]
        for name, start, stop, _ in steps.slots:
            row = steps.theta[last, start:stop]
            out.append(f"  {name:<6} norm {number(float(np.linalg.norm(row)))}  max {number(float(np.max(np.abs(row))))}")
    return "\n".join(out) + "\n"
