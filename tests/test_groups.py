"""``optimizer.groups``: settings of their own for named parameters, matrices, weights or biases
(PyTorch's parameter groups), in the derivation's update, the trainer and verify."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from chainrule.codegen.cli import main
from chainrule.codegen.steps import follow_steps
from chainrule.derive import derive
from chainrule.derive.spec import spec_from_data
from generator import OPTIMIZERS
from helpers import ROOT, needs_torch, torch

MAZUR = ROOT / "examples" / "mazur.yaml"


def _mazur(optimizer: dict, per_unit: bool = False) -> dict:
    data = yaml.safe_load(MAZUR.read_text())
    data["optimizer"] = optimizer
    if per_unit:
        for layer in data["layers"]:
            layer["bias"] = "per_unit"
            layer["biases"] = [layer["biases"][0]] * 2
    return data


def _torch_steps(d, groups, steps):
    """The network in torch float64 with torch.optim parameter groups (per matrix): theta after
    each of ``steps`` steps on the sample."""
    from test_optimizers import TORCH

    import torch_bridge

    network, values = d.network, d.values
    tensors = {}
    for l in range(network.depth):
        tensors[f"W{l + 1}"] = torch.tensor(values.W[l], requires_grad=True)
        if values.b[l] is not None:
            tensors[f"b{l + 1}"] = torch.tensor(values.b[l], requires_grad=True)
    hyper = dict(network.spec.optimizer.hyper)
    matrices = {"h.biases": "b1", "o.biases": "b2"}
    grouped = {matrices.get(name, name) for group in groups for name in group["params"]}
    param_groups = [{"params": [t for n, t in tensors.items() if n not in grouped]}]
    param_groups += [{"params": [tensors[matrices.get(n, n)] for n in group["params"]], **{k: v for k, v in group.items() if k != "params"}}
                     for group in groups]
    optimizer = TORCH[network.spec.optimizer.kind](param_groups, hyper)
    x, t = torch.tensor(values.x)[None, :], torch.tensor(values.t)[None, :]
    flats = [np.concatenate([p.detach().numpy().ravel() for p in tensors.values()])]
    for _ in range(steps):
        optimizer.zero_grad()
        out = x
        for l in range(1, network.depth + 1):
            net = out @ tensors[f"W{l}"].T + tensors.get(f"b{l}", 0)
            out = torch_bridge.activation(network, l)(net)
        torch_bridge.loss(network, out, t).backward()
        optimizer.step()
        flats.append(np.concatenate([p.detach().numpy().ravel() for p in tensors.values()]))
    return np.array(flats)


@needs_torch
@pytest.mark.parametrize("kind", sorted(OPTIMIZERS))
def test_groups_are_torch_param_groups(kind):
    """No weight decay on the biases, another rate for W2: the derivation's one-step update and
    the trainer's first ten steps equal torch.optim with the same parameter groups."""
    hyper = {k: v for k, v in OPTIMIZERS[kind].items()}
    hyper["weight_decay"] = 0.05
    groups = [{"params": ["h.biases", "o.biases"], "weight_decay": 0.0}, {"params": ["W2"], "lr": hyper["lr"] * 3}]
    data = _mazur({"kind": kind, **hyper, "groups": groups}, per_unit=True)
    d = derive(spec_from_data(data, "mazur"))
    expected = _torch_steps(d, groups, 10)
    steps = follow_steps(d, 10)
    np.testing.assert_allclose(steps.theta, expected, rtol=1e-12, atol=1e-15)
    one = np.array([d.updated(ref) for ref in d.network.parameters()])
    np.testing.assert_allclose(one, expected[1], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kind", sorted(OPTIMIZERS))
def test_a_group_of_single_weights(kind):
    """Groups of scalar parameters (w5 alone) and words (biases): the trainer's first step is the
    derivation's update for every parameter, and the parameters outside the groups move as they
    do without groups."""
    base = {"kind": kind, **OPTIMIZERS[kind], "weight_decay": 0.02}
    plain = derive(spec_from_data(_mazur(base), "mazur"))
    grouped = derive(spec_from_data(_mazur({**base, "groups": [{"params": ["w5", "w8"], "lr": 0.5}, {"params": ["biases"], "weight_decay": 0}]}), "mazur"))
    first = follow_steps(grouped, 1).params(1)
    for ref in grouped.network.parameters():
        assert first[ref.name] == pytest.approx(grouped.updated(ref), rel=1e-13), ref.name
        if ref.name not in ("w5", "w8") and ref.is_weight:
            assert grouped.updated(ref) == plain.updated(ref)
    assert grouped.network.settings_of(grouped.network.locate("w5"))["lr"] == 0.5
    assert grouped.network.settings_of(grouped.network.locate("b1"))["weight_decay"] == 0.0


def test_the_update_line_shows_the_groups_settings(capsys):
    data = _mazur({"kind": "sgd", "lr": 0.5, "weight_decay": 0.1, "groups": [{"params": ["biases"], "weight_decay": 0}]})
    path = ROOT / "tests" / "_groups.yaml"
    try:
        path.write_text(yaml.safe_dump(data))
        assert main(["derive", str(path), "--param", "b1", "--param", "w1"]) == 0
    finally:
        path.unlink()
    out = capsys.readouterr().out
    assert "b1+ = b1 - lr*dE/db1 = 0.35 - 0.5*0.0187256094" in out
    assert "w1+ = w1 - lr*(dE/dw1 + w1*weight_decay)" in out


@pytest.mark.parametrize("groups, field, message", [
    ([{"params": ["w9"], "lr": 1}], "optimizer.groups[0].params[0]", "no parameter, matrix or word 'w9'"),
    ([{"params": ["weights"], "lr": 1}, {"params": ["w5"], "lr": 2}], "optimizer.groups[1].params[0]", "'w5' is also in optimizer.groups[0]; a parameter may be in one group only"),
    ([{"params": ["b1"]}], "optimizer.groups[0]", "expected at least one setting of sgd besides params"),
    ([{"params": [], "lr": 1}], "optimizer.groups[0].params", "expected at least one parameter name"),
    ([{"params": ["w1"], "momentum": 0.9}], "optimizer.groups[0].momentum", "unknown key 'momentum'"),
    ([{"params": ["w1"], "lr": -1}], "optimizer.groups[0].lr", "expected a number in (0, 1000]"),
    ({"params": ["w1"]}, "optimizer.groups", "expected a list of groups"),
    ([{"params": ["h.bias"], "lr": 1}], "optimizer.groups[0].params[0]", "expected LAYER.weights or LAYER.biases after the dot"),
    ([{"params": ["z.biases"], "lr": 1}], "optimizer.groups[0].params[0]", "no parameter, matrix or word 'z.biases'"),
])
def test_bad_groups(groups, field, message, tmp_path, capsys):
    _refused(_mazur({"kind": "sgd", "lr": 0.5, "groups": groups}), field, message, tmp_path, capsys)


def test_the_matrix_is_named_by_its_number_among_layers_with_parameters(tmp_path, capsys):
    """A layer without weights first: o is the network's third layer but its matrices are W2 and
    b2, and the message says so (before: "layer 3's bias vector", a b3 that does not exist)."""
    data = _mazur({"kind": "sgd", "lr": 0.5, "groups": [{"params": ["b2"], "lr": 0.1}]}, per_unit=True)
    data["layers"].insert(0, {"name": "g", "kind": "activation", "activation": "tanh"})
    _refused(data, "optimizer.groups[0].params[0]", "'b2' is both a parameter and layer o's bias vector (b2); write o.biases", tmp_path, capsys)


def test_a_group_of_biases_without_biases_is_refused(tmp_path, capsys):
    """`biases` in a group where every layer has bias: none names nothing: refused, as o.biases is."""
    data = _mazur({"kind": "sgd", "lr": 0.5, "groups": [{"params": ["biases"], "lr": 0.2}]})
    for layer in data["layers"]:
        layer["bias"] = "none"
        layer.pop("biases", None)
    _refused(data, "optimizer.groups[0].params[0]", "the network has no biases (every layer has bias: none)", tmp_path, capsys)


def test_a_name_of_a_parameter_and_a_matrix_is_refused(tmp_path, capsys):
    """With a bias per unit named in sequence, b2 is h2's bias and also layer 2's bias vector's
    name: chainrule does not guess which is meant."""
    data = _mazur({"kind": "sgd", "lr": 0.5, "groups": [{"params": ["b2"], "lr": 0.1}]}, per_unit=True)
    _refused(data, "optimizer.groups[0].params[0]", "'b2' is both a parameter and layer o's bias vector (b2); write o.biases for the layer's", tmp_path, capsys)
    shared = derive(spec_from_data(_mazur({"kind": "sgd", "lr": 0.5, "groups": [{"params": ["b2"], "lr": 0.1}]}), "mazur"))
    assert shared.network.settings_of(shared.network.locate("b2"))["lr"] == 0.1  # one shared bias: the same thing


def _refused(data, field, message, tmp_path, capsys):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["emit", str(path), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"{path}: {field}: {message}" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_verify_names_an_update_that_ignores_the_group(tmp_path):
    """Weight decay applied to a bias its group exempts: the update the optimizer's own settings
    give, named as such (0.6 - 0.5*(0.100400325 + 0.1*0.6) = 0.519799837 for b2)."""
    from chainrule.derive.hand.claims import parse_claims
    from chainrule.derive.hand.verify import Verifier

    data = yaml.safe_load(MAZUR.read_text())
    data["optimizer"] = {"kind": "sgd", "lr": 0.5, "weight_decay": 0.1, "groups": [{"params": ["biases"], "weight_decay": 0}]}
    v = Verifier(derive(spec_from_data(data, "mazur")))
    verdicts = v.verify(parse_claims("claims:\n  - {of: b2+, value: 0.549799837}\n  - {of: b2+, value: 0.519799837}\n", "c.yaml", "yaml", v.network, v.graph))
    assert verdicts[0].correct and not verdicts[1].correct
    assert verdicts[1].findings[0].mistake == "group_ignored" and "weight_decay 0" in verdicts[1].findings[0].words
