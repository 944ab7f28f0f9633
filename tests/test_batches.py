"""A batch of samples (``samples:``, ``reduction: mean | sum``): the loss, every gradient (layer
form and each parameter's per-sample chains, reduced), the update and the trainer, against
PyTorch float64 autograd and torch.optim."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import yaml

from chainrule.codegen.cli import main
from chainrule.codegen.steps import follow_steps
from chainrule.derive import derive
from chainrule.derive.spec import spec_from_data
from generator import _targets, random_spec
from helpers import ROOT, needs_torch, torch
from test_emit import emitted

MAZUR = ROOT / "examples" / "mazur.yaml"


def batch_spec(seed: int, samples: int, reduction: str) -> dict:
    """A random spec (tests/generator.py) with a batch of ``samples`` drawn from the seed."""
    data = random_spec(seed, max_depth=3, max_width=3)
    rng = random.Random(seed * 31 + samples)
    inputs = data["inputs"]
    data.pop("sample")
    data["samples"] = [{"x": [round(rng.uniform(-1, 1), 6) for _ in range(inputs)], "t": _targets(rng, data["loss"], len(data["layers"][-1]["weights"]))}
                       for _ in range(samples)]
    data["reduction"] = reduction
    return data


def _torch(d):
    """Loss and per-matrix gradients by autograd: the spec's per-sample loss, mean or summed."""
    import torch_bridge

    loss, dW, db = torch_bridge.torch_gradients(d.network, d.values, d.values.X, d.values.T)
    n = d.values.samples if d.network.spec.reduction == "sum" else 1
    return loss * n, [w * n for w in dW], [None if b is None else b * n for b in db]


CASES = [(seed, samples, reduction) for seed in range(12) for samples, reduction in ((1 + seed % 7, "mean"), (1 + (seed * 3) % 7, "sum"))]


@needs_torch
@pytest.mark.parametrize("seed, samples, reduction", CASES)
def test_a_batch_is_torchs(seed, samples, reduction, tmp_path):
    """The loss, the layer form's gradients, each parameter's reduced per-sample chains and the
    trainer's gradients equal PyTorch float64 on batches of 1 to 7, both reductions."""
    d = derive(spec_from_data(batch_spec(seed, samples, reduction), f"seed {seed}"))
    loss, dW, db = _torch(d)
    assert d.loss == pytest.approx(loss, rel=1e-12, abs=1e-14)
    for l in range(d.network.depth):
        np.testing.assert_allclose(d.sample.dW[l], dW[l], rtol=1e-10, atol=1e-13)
        if db[l] is not None:
            np.testing.assert_allclose(d.sample.db[l], db[l], rtol=1e-10, atol=1e-13)
    for name, chain in d.chains.items():
        ref = chain.param
        expected = dW[ref.layer - 1][ref.row, ref.col] if ref.is_weight else db[ref.layer - 1][ref.row]
        assert d.chain_gradient(chain) == pytest.approx(float(expected), rel=1e-8, abs=1e-12), name
    net = emitted(d.network.spec, tmp_path).Network()
    assert net.loss(d.values.X, d.values.T) == pytest.approx(loss, rel=1e-12, abs=1e-14)
    grads = net.gradients(d.values.X, d.values.T)
    for l in range(d.network.depth):
        np.testing.assert_allclose(grads[f"W{l + 1}"], dW[l], rtol=1e-10, atol=1e-13)


@needs_torch
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_steps_on_a_batch_are_torch_optims(kind, reduction):
    from test_optimizers import TORCH

    import torch_bridge

    data = batch_spec(4, 5, reduction)
    data["optimizer"] = {"kind": kind, "lr": 0.05}
    d = derive(spec_from_data(data, "batch"))
    steps = follow_steps(d, 10)
    W = [torch.tensor(w, requires_grad=True) for w in d.values.W]
    b = [None if v is None else torch.tensor(v, requires_grad=True) for v in d.values.b]
    trained = [p for l, layer in enumerate(d.network.spec.layers) for p, part in ((W[l], "weights"), (b[l], "biases")) if p is not None and part not in layer.freeze]
    optimizer = TORCH[kind](trained, dict(d.network.spec.optimizer.hyper))
    X, T = torch.tensor(d.values.X), torch.tensor(d.values.T)
    for _ in range(10):
        optimizer.zero_grad()
        out = X
        for l in range(1, d.network.depth + 1):
            out = torch_bridge.activation(d.network, l)(out @ W[l - 1].T + (b[l - 1] if b[l - 1] is not None else 0))
        loss = torch_bridge.loss(d.network, out, T) * (len(X) if reduction == "sum" else 1)
        loss.backward()
        optimizer.step()
    flat = np.concatenate([p.detach().numpy().ravel() for l in range(len(W)) for p in (W[l], b[l]) if p is not None])
    np.testing.assert_allclose(steps.theta[10], flat, rtol=1e-10, atol=1e-13)


def _batch_of_mazur(reduction: str = "mean") -> dict:
    data = yaml.safe_load(MAZUR.read_text())
    del data["sample"]
    data["samples"] = [{"x": [0.05, 0.10], "t": [0.01, 0.99]}, {"x": [0.10, 0.20], "t": [0.99, 0.01]}, {"x": [0.3, -0.2], "t": [0.5, 0.5]}]
    data["reduction"] = reduction
    return data


def test_text_shows_each_sample_then_the_reduction(tmp_path, capsys):
    path = tmp_path / "batch.yaml"
    path.write_text(yaml.safe_dump(_batch_of_mazur()))
    assert main(["derive", str(path), "--param", "w5"]) == 0
    out = capsys.readouterr().out
    assert "Samples: a batch of 3, E the mean of their losses" in out
    assert "E_1    = (t1 - out_o1)**2/2 + (t2 - out_o2)**2/2 = 0.298371109" in out  # the worked example's own E
    assert "E = mean of the samples' losses = (0.298371109 + 0.320373762 + 0.0682899552)/3 = 0.229011609" in out
    assert "    dE_1/dw5 = 0.0821670406" in out  # the worked example's dE/dw5, sample 1's term
    assert "dE/dw5 = mean over the samples = (0.0821670406 + (-0.0264956441) + 0.0275691189)/3" in out


def test_json_per_sample(tmp_path, capsys):
    path = tmp_path / "batch.yaml"
    path.write_text(yaml.safe_dump(_batch_of_mazur("sum")))
    assert main(["derive", str(path), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["reduction"] == "sum" and len(document["samples"]) == 3 and "sample" not in document
    per = document["per_sample"]
    assert document["loss"] == pytest.approx(sum(p["loss"] for p in per), rel=1e-14)
    assert per[0]["loss"] == pytest.approx(0.298371109, abs=5e-10)
    assert document["gradients"]["w5"] == pytest.approx(sum(p["gradients"]["w5"] for p in per), rel=1e-12)
    assert document["forward"]["out_o1"][0] == pytest.approx(0.75136507, abs=5e-9)
    assert len(document["chains"]["w5"][0][0]["values"]) == 3


@pytest.mark.parametrize("change, field, message", [
    ({"sample": {"x": [0, 0], "t": [0, 1]}}, "samples", "a spec has sample: (one) or samples: (a batch), not both"),
    ({"samples": []}, "samples", "expected 1 to 64 samples, got 0"),
    ({"samples": [{"x": [0, 0], "t": [0, 1]}] * 65}, "samples", "expected 1 to 64 samples, got 65"),
    ({"samples": [{"x": [0, 0], "t": [0, 1]}, {"x": [0], "t": [0, 1]}]}, "samples[1].x", "expected a list of 2 numbers"),
    ({"reduction": "max"}, "reduction", "unknown reduction 'max'; expected one of mean, sum"),
])
def test_bad_batches(change, field, message, tmp_path, capsys):
    data = _batch_of_mazur()
    data.update(change)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["emit", str(path), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"{path}: {field}: {message}" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()
