"""``chainrule derive --steps N``: the loss and parameters after each optimizer step, taken by the
emitted trainer, against PyTorch float64 and torch.optim, and the worked example as its author
trained it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from chainrule.codegen.cli import main
from chainrule.codegen.steps import MAX_RECORDED, follow_steps
from chainrule.codegen.steps import shown_steps
from chainrule.derive import derive
from chainrule.derive.spec import spec_from_data
from generator import OPTIMIZERS, random_spec
from helpers import ROOT, needs_torch, torch

MAZUR = ROOT / "examples" / "mazur.yaml"


def _mazur(**changes) -> dict:
    data = yaml.safe_load(MAZUR.read_text())
    data.update(changes)
    return data


def test_the_worked_example_as_its_author_trained_it():
    """Biases frozen, 10,000 steps of sgd at lr 0.5: E = 3.5101878e-05 (PyTorch float64; the
    author printed 0.0000351085). Row 0 is the untrained network, E = 0.298371109."""
    data = _mazur()
    for layer in data["layers"]:
        layer["freeze"] = ["biases"]
    steps = follow_steps(derive(spec_from_data(data, "mazur")), 10_000)
    assert steps.losses[0] == pytest.approx(0.298371109, abs=5e-10)
    assert steps.losses[10_000] == pytest.approx(3.5101878e-05, rel=1e-7)
    assert steps.params(10_000)["b1"] == 0.35 and steps.params(10_000)["b2"] == 0.60


def test_row_one_is_the_derivations_update():
    """After one step every parameter is the derivation's w+ (the one-step update it shows)."""
    d = derive(spec_from_data(_mazur(), "mazur"))
    steps = follow_steps(d, 1)
    for name, chain in d.chains.items():
        assert steps.params(1)[name] == pytest.approx(d.updated(chain.param), rel=1e-13)


def _torch_run(d, checkpoints):
    """The spec's network in torch float64, trained by its torch.optim optimizer on the sample:
    the flat parameters (in the order of theta) at each checkpoint."""
    from test_optimizers import TORCH

    import torch_bridge

    network, values = d.network, d.values
    W = [torch.tensor(w, requires_grad=True) for w in values.W]
    b = [None if v is None else torch.tensor(v, requires_grad=True) for v in values.b]
    trained = []
    for l, layer in enumerate(network.spec.layers):
        trained += [W[l]] if "weights" not in layer.freeze else []
        trained += [b[l]] if b[l] is not None and "biases" not in layer.freeze else []
    hyper = dict(network.spec.optimizer.hyper)
    optimizer = TORCH[network.spec.optimizer.kind](trained, hyper) if trained else None
    x, t = torch.tensor(values.x)[None, :], torch.tensor(values.t)[None, :]
    flat = {}
    for k in range(max(checkpoints) + 1):
        if k in checkpoints:
            flat[k] = np.concatenate([p.detach().numpy().ravel() for l in range(len(W)) for p in (W[l], b[l]) if p is not None])
        if optimizer is None or k == max(checkpoints):
            continue
        optimizer.zero_grad()
        out = x
        for l in range(1, network.depth + 1):
            net = out @ W[l - 1].T + (b[l - 1] if b[l - 1] is not None else 0)
            out = torch_bridge.activation(network, l)(net)
        torch_bridge.loss(network, out, t).backward()
        optimizer.step()
    return flat


@pytest.mark.slow
@needs_torch
@pytest.mark.parametrize("kind", sorted(OPTIMIZERS))
@pytest.mark.parametrize("seed", [5, 8, 14])
def test_steps_are_torch_optims(kind, seed):
    """Every optimizer, on random networks: the parameters after 1, 2, 10 and 1,000 steps equal
    torch.optim's within 1e-9. The rate is a tenth of the generator's, so that after 1,000 steps
    the gradient is still far above rounding (asserted): near a minimum the gradient is rounding
    noise, which adam and rmsprop scale up to steps of about lr, and two right programs part."""
    data = random_spec(seed, max_depth=2, max_width=3)
    data["optimizer"] = {"kind": kind, **OPTIMIZERS[kind]}
    data["optimizer"]["lr"] /= 10
    d = derive(spec_from_data(data, f"seed {seed}"))
    steps = follow_steps(d, 1000)
    assert steps.losses[999] - steps.losses[1000] > 1e-9 * steps.losses[1000], "converged: the comparison would compare noise"
    expected = _torch_run(d, {1, 2, 10, 1000})
    for k, flat in expected.items():
        np.testing.assert_allclose(steps.theta[k], flat, rtol=1e-9, atol=1e-12, err_msg=f"after {k} steps")
    if steps.state:
        assert all(values.shape == steps.theta.shape for values in steps.state.values())


def test_shown_rows():
    assert shown_steps(3) == [0, 1, 2, 3]
    assert shown_steps(100_000) == list(range(11)) + [100, 1000, 10_000, 100_000]
    assert shown_steps(12_345) == list(range(11)) + [100, 1000, 10_000, 12_345]


def test_text_and_json(capsys):
    assert main(["derive", str(MAZUR), "--steps", "2", "--param", "w5"]) == 0
    text = capsys.readouterr().out
    table = text[text.index("Steps: 2 steps of sgd"):]
    assert "step            E           w5" in table
    assert "     1  0.285750887   0.35891648" in table  # w5+ of the worked example
    assert "Parameters after step 2" in table
    assert main(["derive", str(MAZUR), "--steps", "2", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [row["step"] for row in document["steps"]] == [0, 1, 2]
    assert document["steps"][0]["loss"] == pytest.approx(document["loss"], rel=1e-15)
    assert document["steps"][1]["params"]["w5"] == pytest.approx(document["updated"]["w5"], rel=1e-13)
    assert "state" not in document["steps"][0]


def test_state_and_big_networks_per_matrix(capsys):
    data = _mazur(optimizer={"kind": "adam", "lr": 0.01})
    steps = follow_steps(derive(spec_from_data(data, "mazur")), 3)
    assert set(steps.state) == {"m", "v"} and steps.state_after(0)["m"]["w5"] == 0.0
    assert steps.state_after(1, by="matrix")["v"]["W2"][0][0] > 0
    assert main(["derive", str(ROOT / "examples" / "mlp_784_128_10.yaml"), "--steps", "1", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)["steps"][1]
    assert len(row["params"]["W1"]) == 128 and len(row["params"]["W1"][0]) == 784


@pytest.mark.parametrize("argv, message", [
    (["--steps", "-1"], "--steps: expected a number of steps of at least 0, got -1"),
    (["--steps", "two"], "argument --steps: invalid int value: 'two'"),
])
def test_bad_steps(argv, message, capsys, tmp_path):
    assert main(["derive", str(MAZUR), *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err and len(captured.err.splitlines()) == 1


def test_too_many_numbers(capsys):
    spec = str(ROOT / "examples" / "mlp_784_128_10.yaml")
    assert main(["derive", spec, "--steps", "1000"]) == 2
    err = capsys.readouterr().err
    assert f"at most {MAX_RECORDED:,}" in err and len(err.splitlines()) == 1


def test_report_steps_table(tmp_path, capsys):
    """report --steps N: a table of E and the first --param parameters after each step, in the
    .tex and the HTML page alike (the same numbers as derive --steps)."""
    assert main(["report", str(MAZUR), "-o", str(tmp_path), "--html", "--steps", "30", "--param", "w5"]) == 0
    page = (tmp_path / "mazur.html").read_text()
    assert "Training: the loss step by step" in page and page.count("<td>...</td>") == 1
    for number in ("0.285750887", "0.35891648", "0.0646169257"):  # E and w5 after step 1; E after step 30
        assert number in page
    assert main(["report", str(MAZUR), "-o", str(tmp_path), "--steps", "2"]) == 0
    tex = (tmp_path / "mazur.tex").read_text()
    assert r"\section*{Training: the loss step by step}" in tex and "0.272797264" in tex
    capsys.readouterr()
    assert main(["report", str(MAZUR), "-o", str(tmp_path / "none"), "--steps", "-1"]) == 2
    assert not (tmp_path / "none").exists() and "--steps: expected a number of steps of at least 0" in capsys.readouterr().err
