"""The derivation as the JSON document of ``chainrule derive --json`` (spec.md section 2).

Small networks are keyed by scalar names (``net_h1``, ``w5``); big ones by layer vectors and
matrices (``out_h``, ``W1``), with chains and closed forms only for the parameters asked for.
"""

from __future__ import annotations

import json
import math

import numpy as np
from typing import TYPE_CHECKING, Any, Sequence

from chainrule.derive import naming
from chainrule.derive.derivation import Derivation
from chainrule.derive.layers import LayerForm

if TYPE_CHECKING:  # the steps are taken by the trainer: derive without --steps never imports it
    from chainrule.codegen.steps import Steps

from chainrule.codegen.terminal.describe import ParamText, describe_layer, describe_param, expanded_form, forward_lines


def _chain_json(p: ParamText) -> list[list[dict[str, Any]]]:
    """The paths' factors; a factor's ``value`` on the sample, or for a batch, ``values``: one
    per sample."""
    if not p.per_sample:
        return [
            [{"factor": f.name, "form": f.form, "derivative": f.derivative, "value": f.value, **({"note": f.note} if f.note else {})} for f in path.factors]
            for path in p.paths
        ]
    return [
        [{"factor": f.name, "form": f.form, "derivative": f.derivative, "values": [sample[i].factors[j].value for sample in p.per_sample],
          **({"note": f.note} if f.note else {})} for j, f in enumerate(path.factors)]
        for i, path in enumerate(p.per_sample[0])
    ]


def derivation_document(d: Derivation, params: Sequence[str] = ()) -> dict[str, Any]:
    """The JSON document as plain data."""
    spec = d.network.spec
    names = list(params) or (list(d.chains) if d.small else [])
    described = [describe_param(d, name) for name in names]
    document: dict[str, Any] = {
        "spec": spec.name,
        "source": spec.source,
        "form": "scalar" if d.small else "layer",
        "parameters": d.network.parameter_count,
        **_samples(d),
        "optimizer": {"kind": spec.optimizer.kind, **dict(spec.optimizer.hyper),
                      **({"groups": [{"params": list(g.params), **dict(g.hyper)} for g in spec.optimizer.groups]} if spec.optimizer.groups else {})},
        "loss": d.loss,
    }
    if d.small and d.batch:  # a unit's value on each sample
        rows = [forward_lines(d, row)[:-1] for row in range(d.values.samples)]
        document["forward"] = {line.name: [row[i].value for row in rows] for i, line in enumerate(rows[0])}
    elif d.small:
        document["forward"] = {line.name: line.value for line in forward_lines(d) if line.name != naming.LOSS}
    if d.small:
        document["gradients"] = {p.name: d.gradient(d.chains[p.name].param) for p in described}
        document["updated"] = {p.name: p.update.value for p in described}
    else:
        document["forward"] = {}
        for form, net, out in zip(d.layers, d.sample.nets, d.sample.outs[1:]):
            if form.weight is not None:  # a layer without weights: its net is the layer before's out
                document["forward"][form.net] = _shaped(d, form.net, net)
            document["forward"][form.out] = _shaped(d, form.out, out)
        document["gradients"], document["updated"] = _matrices(d)
    if d.initial_gradients:  # an rnn's h_0: not a parameter (not updated), its gradient all the same
        document["initial_gradients"] = {name: g.tolist() for name, g in d.initial_gradients.items()}
    if spec.loss.l2:
        document["penalty"] = _penalty(d, described)
    document["closed_forms"] = {p.name: p.closed_form for p in described}
    if params:
        document["expanded_forms"] = {p.name: expanded_form(d, p.name) for p in described}
    document["chains"] = {p.name: _chain_json(p) for p in described}
    worked = {p.name: [{"delta": x.name, "chain": x.chain, "form": x.form, "factors": list(x.factors), "value": x.value} for x in p.deltas] for p in described if p.deltas}
    if worked:  # a convolution's shared weights: the deltas of their terms that are not 0, one step up
        document["deltas"] = worked
    document["layers"] = [_layer_json(d, form) for form in d.layers]
    if d.batch:
        document["per_sample"] = _per_sample(d, described)
    return document


def _penalty(d: Derivation, described: list[ParamText]) -> dict[str, Any]:
    """The L2 penalty apart: its setting, its value (part of ``loss``), the loss without it, and
    its term of each gradient, ``l2*w`` (part of ``gradients``; keyed as ``gradients``, biases 0)."""
    if d.small:
        terms: dict[str, Any] = {p.name: p.penalty.value if p.penalty is not None else 0.0 for p in described}
    else:
        terms = {}
        for form, W, b in zip(d.layers, d.values.W, d.values.b):
            if form.weight is None or W is None:
                continue  # a layer without weights
            terms.update({name: (d.network.spec.loss.l2 * M).tolist() for name, M in d.network.weight_matrices(form.index, W)})
            if form.bias is not None and b is not None:
                terms[form.bias] = [0.0] * len(b)
    return {"l2": d.network.spec.loss.l2, "value": d.sample.penalty, "data_loss": d.data_loss, "gradients": terms}


def _maps(d: Derivation, name: str, row: Any) -> list:
    """One sample's values of a layer, a convolution's or pool's nested as its maps [C, H, W], a
    sequence's as its steps [steps, units]."""
    return row.reshape(_per_sample_shape(d, name)).tolist()


def _per_sample_shape(d: Derivation, name: str) -> tuple[int, ...]:
    shape = d.program.vectors[name].shape
    return (d.program.steps, *shape) if d.program.steps else shape


def _shaped(d: Derivation, name: str, rows: Any) -> list:
    """A layer's values on the sample (a list per sample for a batch), a convolution's or pool's
    nested as its maps [C, H, W] (PyTorch's layout)."""
    shape = _per_sample_shape(d, name)
    values = rows.reshape((rows.shape[0], *shape)) if len(shape) > 1 else rows
    return values.tolist() if d.batch else values[0].tolist()


def _samples(d: Derivation) -> dict[str, Any]:
    """``sample`` (one) or ``samples`` and ``reduction`` (a batch)."""
    spec = d.network.spec
    if spec.sequence:  # x [steps][inputs], t [steps][outputs] (null: no loss at that step)
        rows = [{"x": x.reshape(spec.steps, -1).tolist(), "t": [None if np.isnan(step).all() else step.tolist() for step in t.reshape(spec.steps, -1)]}
                for x, t in zip(d.values.X, d.values.T)]
    else:
        rows = [{"x": dict(zip(spec.inputs, map(float, x))), "t": dict(zip(spec.targets, map(float, t)))} for x, t in zip(d.values.X, d.values.T)]
    if not d.batch:
        return {"sample": {**rows[0], "seeded": d.values.seeded_sample}}
    return {"samples": rows, "reduction": spec.reduction}


def _per_sample(d: Derivation, described: list[ParamText]) -> list[dict[str, Any]]:
    """Each sample's own loss, forward pass and gradients (``loss`` and ``gradients`` at the top
    are their mean or sum, plus the L2 penalty where there is one: a sample's are without it)."""
    rows = []
    for row in range(d.values.samples):
        entry: dict[str, Any] = {"loss": d.sample_losses[row]}
        if d.small:
            entry["forward"] = {line.name: line.value for line in forward_lines(d, row)[:-1]}
            entry["gradients"] = {p.name: p.sample_gradients[row] for p in described}
        else:
            run = d.numbers.run(d.values.W, d.values.b, d.values.X[row:row + 1], d.values.T[row:row + 1], penalty=False)
            entry["forward"] = {k: _maps(d, k, v[0]) for form, net, out in zip(d.layers, run.nets, run.outs[1:])
                                for k, v in ((form.net, net), (form.out, out)) if k != form.net or form.weight}
            entry["gradients"] = {k: v.tolist() for form, dW, db in zip(d.layers, run.dW, run.db)
                                  for k, v in (*_named(d, form, dW), (form.bias, db)) if k and v is not None}
        rows.append(entry)
    return rows


def _matrices(d: Derivation) -> tuple[dict[str, Any], dict[str, Any]]:
    gradients: dict[str, Any] = {}
    updated: dict[str, Any] = {}
    for form, dW, db, W1, b1 in zip(d.layers, d.sample.dW, d.sample.db, d.updated_W, d.updated_b):
        if form.weight is None or dW is None or W1 is None:
            continue  # a layer without weights
        for (name, gradient), (_, after) in zip(_named(d, form, dW), _named(d, form, W1)):
            gradients[name], updated[name] = gradient.tolist(), after.tolist()
        if form.bias is not None and db is not None and b1 is not None:
            gradients[form.bias], updated[form.bias] = db.tolist(), b1.tolist()
    return gradients, updated


def _named(d: Derivation, form: LayerForm, stored: Any) -> tuple:
    """A layer's weights (or their gradient) by matrix name: an rnn's W and U apart."""
    if form.weight is None or stored is None:
        return ()
    return d.network.weight_matrices(form.index, stored)


def _layer_json(d: Derivation, form: LayerForm) -> dict[str, Any]:
    layer = describe_layer(d, form)
    return {
        "layer": layer.name,
        "index": layer.index,
        "kind": layer.kind,
        "units": layer.units,
        "activation": layer.activation,
        "weights": layer.weight,
        "bias": layer.bias,
        "bias_mode": layer.bias_mode,
        "forward": list(layer.forward),
        "derivative": layer.derivative,
        "delta": layer.delta,
        "gradients": list(layer.gradients),
    }


def render_json(d: Derivation, params: Sequence[str] = (), steps: Steps | None = None) -> str:
    """The JSON text: indented, keys in a fixed order, one trailing newline. A number that is not
    finite (a chain factor such as (1 - t)/(1 - out) where an output rounds to 1 in float64,
    though the layer form's gradient is finite) is null: JSON has no nan. With ``steps``
    (``derive --steps N``), ``"steps"``: the loss, parameters and optimizer state after each."""
    document = derivation_document(d, params)
    if steps is not None:
        document["steps"] = steps_document(d, steps)
    return json.dumps(_finite_or_null(document), indent=1, allow_nan=False) + "\n"


def steps_document(d: Derivation, steps: Steps) -> list[dict[str, Any]]:
    """``[{"step": k, "loss": E, "params": {...}, "state": {...}}, ...]`` for k = 0 (before any
    step) to N; parameters by name for a small network, by matrix for a big one; ``state`` only
    for an optimizer that keeps one."""
    by = "name" if d.small else "matrix"
    rows = []
    for k in range(steps.count + 1):
        row: dict[str, Any] = {"step": k, "loss": float(steps.losses[k]), "params": steps.params(k, by)}
        if steps.state:
            row["state"] = steps.state_after(k, by)
        rows.append(row)
    return rows


def _finite_or_null(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite_or_null(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(item) for item in value]
    return value
