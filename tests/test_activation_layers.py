"""Layers without weights (``kind: activation``, issue 15, spec section 5): ``s_k = f(out of the
layer before)``, no parameters. The loss, every gradient (layer form and each parameter's chain
through ``ds_k/dout_h_j``), one optimizer step and the emitted trainer against PyTorch float64
autograd and torch.optim; check; the matrices' numbering; bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from chainrule.codegen.cli import main
from chainrule.derive import derive
from chainrule.derive.check import check_derivation
from chainrule.derive.spec import spec_from_data
from generator import random_spec, spec_id, with_activation_layers
from helpers import ROOT, needs_torch, torch
from test_emit import emitted

SPEC_FILE = ROOT / "tests" / "data" / "activation_softmax.yaml"


def _spec(layers: list[dict], loss, inputs: int = 2, t: list[float] | None = None, optimizer: dict | None = None, **extra) -> dict:
    outputs = next(l["units"] for l in reversed(layers) if "units" in l)
    return {
        "name": "act",
        "inputs": inputs,
        "layers": layers,
        "loss": loss,
        "sample": {"x": [0.3, -0.7, 0.5][:inputs], "t": t if t is not None else [0.2, 0.9, 0.4][:outputs]},
        "optimizer": optimizer or {"kind": "sgd", "lr": 0.5},
        "seed": 3,
        **extra,
    }


#: The cases the issue names: softmax after sigmoid, tanh after tanh, an activation layer over the
#: inputs, two in a row; with mse, half_sse, cross_entropy and bce.
CASES = {
    "softmax_after_sigmoid_ce": _spec([{"name": "h", "units": 3, "activation": "sigmoid"},
                                       {"name": "s", "kind": "activation", "activation": "softmax"}], "cross_entropy", t=[0.0, 1.0, 0.0]),
    "softmax_after_identity_ce": _spec([{"name": "h", "units": 2, "activation": "tanh"}, {"name": "o", "units": 3, "activation": "identity"},
                                        {"name": "s", "kind": "activation", "activation": "softmax"}], "cross_entropy", t=[0.2, 0.5, 0.3]),
    "tanh_after_tanh_mse": _spec([{"name": "h", "units": 2, "activation": "tanh", "bias": "shared"},
                                  {"name": "g", "kind": "activation", "activation": "tanh"},
                                  {"name": "o", "units": 2, "activation": "tanh"}], "mse"),
    "first_half_sse": _spec([{"name": "a", "kind": "activation", "activation": "sigmoid"},
                             {"name": "o", "units": 2, "activation": "sigmoid", "bias": "none"}], "half_sse"),
    "two_in_a_row_bce": _spec([{"name": "h", "units": 3, "activation": "relu"},
                               {"name": "g", "kind": "activation", "activation": "tanh"},
                               {"name": "o", "units": 2, "activation": "identity"},
                               {"name": "a", "kind": "activation", "activation": {"formula": "x / (1 + abs(x))"}},
                               {"name": "s", "kind": "activation", "activation": "sigmoid"}], "bce", t=[1.0, 0.0]),
    "softmax_then_sigmoid_mse": _spec([{"name": "o", "units": 3, "activation": {"name": "leaky_relu", "alpha": 0.2}},
                                       {"name": "p", "kind": "activation", "activation": "softmax"},
                                       {"name": "q", "kind": "activation", "activation": "sigmoid"}], "mse"),
    "first_softmax_sse": _spec([{"name": "a", "kind": "activation", "activation": "softmax"},
                                {"name": "o", "units": 1, "activation": "elu"}], "sse", inputs=3),
}


def _torch(d):
    import torch_bridge

    loss, dW, db = torch_bridge.torch_gradients(d.network, d.values, d.values.X, d.values.T)
    return loss, dW, db


def assert_torchs(d, tmp_path) -> None:
    """The loss, the layer form's and every chain's gradients, one sgd step and the emitted
    trainer's loss, gradients and step equal PyTorch float64."""
    loss, dW, db = _torch(d)
    assert d.loss == pytest.approx(loss, rel=1e-12, abs=1e-14)
    for l, layer in enumerate(d.network.spec.layers):
        assert (d.sample.dW[l] is None) == (not layer.has_parameters) == (dW[l] is None)
        if dW[l] is not None:
            np.testing.assert_allclose(d.sample.dW[l], dW[l], rtol=1e-10, atol=1e-13)
        if db[l] is not None:
            np.testing.assert_allclose(d.sample.db[l], db[l], rtol=1e-10, atol=1e-13)
    for name, chain in d.chains.items():
        ref = chain.param
        expected = dW[ref.layer - 1][ref.row, ref.col] if ref.is_weight else db[ref.layer - 1][ref.row]
        assert d.chain_gradient(chain) == pytest.approx(float(expected), rel=1e-8, abs=1e-12), name
    # the trainer: the parameters are W1, b1, W2, ... of the layers with parameters only
    net = emitted(d.network.spec, tmp_path).Network()
    matrices = [l for l, layer in enumerate(d.network.spec.layers) if layer.has_parameters]
    expected_keys = {f"{kind}{n}" for n, l in enumerate(matrices, start=1) for kind in ("W", "b") if kind == "W" or db[l] is not None}
    assert set(net.params) == expected_keys
    assert net.loss(d.values.X, d.values.T) == pytest.approx(loss, rel=1e-12, abs=1e-14)
    grads = net.gradients(d.values.X, d.values.T)
    for n, l in enumerate(matrices, start=1):
        np.testing.assert_allclose(grads[f"W{n}"], dW[l], rtol=1e-10, atol=1e-13)
        if db[l] is not None:
            np.testing.assert_allclose(grads[f"b{n}"], db[l], rtol=1e-10, atol=1e-13)
    # one sgd step, by torch.optim, the derivation's update and the trainer's step
    W = [None if w is None else torch.tensor(w, requires_grad=True) for w in d.values.W]
    b = [None if v is None else torch.tensor(v, requires_grad=True) for v in d.values.b]
    params = [p for l in matrices for p in (W[l], b[l]) if p is not None]
    optimizer = torch.optim.SGD(params, lr=d.network.spec.optimizer.value("lr"))
    import torch_bridge

    value = torch_bridge.loss(d.network, torch_bridge.forward(d.network, W, b, torch.tensor(d.values.X)), torch.tensor(d.values.T))
    value.backward()
    optimizer.step()
    net.step(d.values.X, d.values.T)
    for n, l in enumerate(matrices, start=1):
        np.testing.assert_allclose(d.updated_W[l], W[l].detach().numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(net.params[f"W{n}"], W[l].detach().numpy(), rtol=1e-12, atol=1e-14)
        if b[l] is not None:
            np.testing.assert_allclose(d.updated_b[l], b[l].detach().numpy(), rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(net.params[f"b{n}"], b[l].detach().numpy(), rtol=1e-12, atol=1e-14)


@needs_torch
@pytest.mark.parametrize("case", sorted(CASES))
def test_activation_layers_are_torchs(case, tmp_path):
    d = derive(spec_from_data(CASES[case], case))
    assert d.chains, "a small network: every parameter's chain"
    assert_torchs(d, tmp_path)


@needs_torch
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_a_batch_through_an_activation_layer(reduction, tmp_path):
    data = dict(CASES["softmax_after_sigmoid_ce"])
    del data["sample"]
    data["samples"] = [{"x": [0.05, 0.1], "t": [0, 1, 0]}, {"x": [0.9, -0.3], "t": [1, 0, 0]}, {"x": [-0.4, 0.2], "t": [0, 0, 1]}, {"x": [0.0, 0.7], "t": [0, 1, 0]}]
    data["reduction"] = reduction
    d = derive(spec_from_data(data, "batch"))
    loss, dW, db = _torch(d)
    n = d.values.samples if reduction == "sum" else 1
    assert d.loss == pytest.approx(loss * n, rel=1e-12)
    np.testing.assert_allclose(d.sample.dW[0], dW[0] * n, rtol=1e-10, atol=1e-13)
    for name, chain in d.chains.items():
        ref = chain.param
        expected = (dW if ref.is_weight else db)[ref.layer - 1][(ref.row, ref.col) if ref.is_weight else ref.row] * n
        assert d.chain_gradient(chain) == pytest.approx(float(expected), rel=1e-8, abs=1e-12), name


ACT_SEEDS = range(30)


@needs_torch
@pytest.mark.parametrize("seed", ACT_SEEDS, ids=lambda s: spec_id(s) + "-act")
def test_random_architectures_with_activation_layers(seed, tmp_path):
    """The seeded generator's specs with layers without weights put in (first, between, last,
    two in a row; softmax or sigmoid moved to a layer of its own): loss, layer form, chains,
    update and trainer against PyTorch."""
    data = with_activation_layers(random_spec(seed), seed)
    data["optimizer"] = {"kind": "sgd", "lr": 0.1}  # the one-step comparison is plain sgd's, every parameter trained
    for layer in data["layers"]:
        layer.pop("freeze", None)
    assert_torchs(derive(spec_from_data(data, f"seed {seed}")), tmp_path)


def test_the_generator_puts_activation_layers_everywhere():
    kinds = [[layer.get("kind", "dense") for layer in with_activation_layers(random_spec(s), s)["layers"]] for s in ACT_SEEDS]
    assert any(k[0] == "activation" for k in kinds) and any(k[-1] == "activation" for k in kinds)
    assert any(a == b == "activation" for k in kinds for a, b in zip(k, k[1:]))
    acts = {str(l["activation"]) for s in ACT_SEEDS for l in with_activation_layers(random_spec(s), s)["layers"] if l.get("kind") == "activation"}
    assert {"softmax", "sigmoid", "tanh"} <= acts


@pytest.mark.parametrize("case", sorted(CASES))
def test_check_and_check_emitted_pass(case, tmp_path):
    assert check_derivation(derive(spec_from_data(CASES[case], case))).passed
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(CASES[case]))
    assert main(["emit", str(path), "-o", str(tmp_path)]) == 0
    assert main(["check", str(path), "--emitted", str(tmp_path / "act.py")]) == 0


def test_the_chain_passes_through_ds_dout_h():
    d = derive(spec_from_data(CASES["tanh_after_tanh_mse"], "tanh"))
    path = d.chains["w1"].paths[0]
    names = [f"d{f.of.name}/d{f.wrt.name}" for f in path.factors]
    assert names == ["dE/dout_o1", "dout_o1/dnet_o1", "dnet_o1/dg1", "dg1/dout_h1", "dout_h1/dnet_h1", "dnet_h1/dw1"]
    factor = path.factors[3]
    assert str(factor.human) == "1 - g1**2"  # tanh' in its output, from sympy.diff of tanh
    # softmax as the output, after sigmoid, with cross-entropy: dE/dout_h_k = s_k - t_k, derived
    d = derive(spec_from_data(CASES["softmax_after_sigmoid_ce"], "softmax"))
    first = d.chains["w1"].paths[0].factors[0]
    assert (first.of.name, first.wrt.name, str(first.human)) == ("E", "out_h1", "s1 - t1")
    assert "dE/ds and ds/dout_h" in first.note


def test_matrices_are_numbered_by_the_layers_with_parameters(capsys):
    data = CASES["tanh_after_tanh_mse"]
    d = derive(spec_from_data(data, "numbers"))
    assert [f.weight for f in d.layers] == ["W1", None, "W2"] and [f.bias for f in d.layers] == ["b1", None, "b2"]
    assert [p.name for p in d.network.parameters()][-7:] == ["b1", "w5", "w6", "w7", "w8", "b2", "b3"]
    indexed = derive(spec_from_data({**data, "naming": "indexed"}, "indexed"))
    assert "w2_11" in indexed.chains and indexed.network.locate("w2_11").layer == 3 and indexed.network.locate("w3_11") is None
    grouped = derive(spec_from_data({**data, "optimizer": {"kind": "sgd", "lr": 0.1, "groups": [{"params": ["W2"], "lr": 0.01}]}}, "groups"))
    assert grouped.network.settings_of(grouped.network.locate("w5"))["lr"] == 0.01


def test_json_and_text(tmp_path, capsys):
    assert main(["derive", str(SPEC_FILE), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["forward"]["s2"] == pytest.approx(0.318577124, rel=1e-8)
    assert "net_s1" not in document["forward"] and set(document["gradients"]) == {f"w{i}" for i in range(1, 7)} | {"b1", "b2", "b3"}
    layer = document["layers"][1]
    assert (layer["kind"], layer["weights"], layer["forward"]) == ("activation", None, ["out_s = softmax(out_h)"])
    assert layer["delta"] == "delta_s = out_s - t    (derived: the targets sum to 1)"
    assert document["layers"][0]["delta"] == "delta_h = delta_s * out_h*(1 - out_h)"
    assert main(["derive", str(SPEC_FILE)]) == 0
    text = capsys.readouterr().out
    assert "s: 3 softmax, no weights" in text and "s1     = exp(out_h1)/sum(exp(out_h))" in text


@pytest.mark.parametrize("layer, field, message", [
    ({"name": "s", "kind": "activation", "activation": "softmax", "weights": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]},
     "layers[1].weights", "a layer of kind: activation has no parameters, so no weights"),
    ({"name": "s", "kind": "activation", "activation": "softmax", "bias": "shared"}, "layers[1].bias", "has no parameters, so no bias"),
    ({"name": "s", "kind": "activation", "activation": "softmax", "units": 4},
     "layers[1].units", "a layer of kind: activation has as many units as the layer before (layer h: 3), got 4"),
    ({"name": "s", "kind": "activation", "activation": "softmaxx"}, "layers[1].activation", "unknown activation 'softmaxx'"),
    ({"name": "s", "kind": "activation"}, "layers[1].activation", "required but missing"),
    ({"name": "s", "kind": "pooling", "activation": "softmax"}, "layers[1].kind", "unknown layer kind 'pooling'"),
])
def test_bad_activation_layers(layer, field, message, tmp_path, capsys):
    data = yaml.safe_load(SPEC_FILE.read_text())
    data["layers"][1] = layer
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["emit", str(path), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"{path}: {field}: " in err and message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["derive", "emit", "check", "report"])
def test_a_network_without_parameters_is_refused(command, tmp_path, capsys):
    """Layers without weights only: no gradient to derive, train or check (before: emit crashed
    with an IndexError and check passed having checked nothing)."""
    data = {"name": "np0", "inputs": ["a1", "a2"], "layers": [{"name": "s", "kind": "activation", "activation": "softmax"}],
            "loss": "cross_entropy", "sample": {"x": [0.1, 0.2], "t": [1, 0]}}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main([command, str(path)] + (["-o", str(tmp_path / "out")] if command in ("emit", "report") else [])) == 2
    err = capsys.readouterr().err
    assert f"{path}: layers: expected at least one layer with weights" in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_units_may_be_named():
    data = yaml.safe_load(SPEC_FILE.read_text())
    data["layers"][1]["units"] = ["p1", "p2", "p3"]
    d = derive(spec_from_data(data, "named"))
    assert d.chains["w1"].paths[0].factors[0].human.free_symbols >= {sympy_symbol("p1")}


def sympy_symbol(name: str):
    from chainrule.derive.network import real_symbol

    return real_symbol(name)


# ---------------------------------------------------------------------------------------------
# verify: claims through ds_k/dout_h_j


def _judge(spec_file, text: str):
    from chainrule.derive.hand.claims import parse_claims
    from chainrule.derive.hand.verify import Verifier
    from chainrule.codegen.files import load_spec

    v = Verifier(derive(load_spec(str(spec_file))))
    return v.verify(parse_claims(text, "claims.yaml", "yaml", v.network, v.graph))


TANH_FILE = ROOT / "tests" / "data" / "activation_tanh.yaml"
THROUGH_G = "(dE/dout_o1*dout_o1/dnet_o1*dnet_o1/dg1 + dE/dout_o2*dout_o2/dnet_o2*dnet_o2/dg1)"


@pytest.mark.parametrize("spec_file, of, key, claimed", [
    (SPEC_FILE, "s2", "value", "0.318577124"),
    (SPEC_FILE, "out_s2", "formula", "exp(h2)/(exp(h1) + exp(h2) + exp(h3))"),
    (SPEC_FILE, "dE/dw1", "chain", "dE/ds1*ds1/dout_h1*dout_h1/dnet_h1*dnet_h1/dw1 + dE/ds2*ds2/dout_h1*dout_h1/dnet_h1*dnet_h1/dw1 + dE/ds3*ds3/dout_h1*dout_h1/dnet_h1*dnet_h1/dw1"),
    (SPEC_FILE, "dE/dw1", "chain", "dE/dout_h1 * dout_h1/dnet_h1 * dnet_h1/dw1"),
    (SPEC_FILE, "dE/dw1", "formula", "(s1 - t1) * h1 * (1 - h1) * i1"),
    (SPEC_FILE, "dE/dw1", "value", "0.00428046643"),
    (SPEC_FILE, "dE/dout_h1", "formula", "s1 - t1"),
    (TANH_FILE, "dE/dw1", "chain", f"{THROUGH_G} * dg1/dout_h1 * dout_h1/dnet_h1 * dnet_h1/dw1"),
    (TANH_FILE, "dE/dw1", "formula", "((o1 - t1)*(1 - o1**2)*w5 + (o2 - t2)*(1 - o2**2)*w7) * (1 - g1**2) * (1 - h1**2) * x1"),
    (TANH_FILE, "dE/dout_h1", "formula", "((o1 - t1)*(1 - o1**2)*w5 + (o2 - t2)*(1 - o2**2)*w7) * (1 - g1**2)"),
    (TANH_FILE, "g1", "formula", "tanh(h1)"),
])
def test_right_claims_through_an_activation_layer(spec_file, of, key, claimed):
    (verdict,) = _judge(spec_file, f"claims:\n  - of: {of}\n    {key}: \"{claimed}\"\n")
    assert verdict.correct, verdict.diagnosis


@pytest.mark.parametrize("spec_file, of, key, claimed, reason", [
    (SPEC_FILE, "dE/dw1", "chain", "dE/ds1 * dout_h1/dnet_h1 * dnet_h1/dw1", "ds1/dout_h1 is missing before dout_h1/dnet_h1"),
    (SPEC_FILE, "dE/dw1", "formula", "(s1 - t1) * i1", "missing the factor dout_h1/dnet_h1"),
    (TANH_FILE, "dE/dw1", "chain", f"{THROUGH_G} * dout_h1/dnet_h1 * dnet_h1/dw1", "dg1/dout_h1 is missing before dout_h1/dnet_h1"),
    (TANH_FILE, "dE/dw1", "formula", "((o1 - t1)*(1 - o1**2)*w5 + (o2 - t2)*(1 - o2**2)*w7) * (1 - h1**2) * x1", "missing the factor dg1/dout_h1 = 1 - g1**2"),
    (TANH_FILE, "g1", "formula", "h1", "the activation is not applied"),
    (TANH_FILE, "dE/dw5", "formula", "(o1 - t1)*(1 - o1**2)*h1", "missing the factor g1"),
    # the typical mistakes keep their names behind a layer without weights
    (TANH_FILE, "dE/dw1", "formula", "((o1 - t1)*(1 - o1**2)*w5 + (o2 - t2)*(1 - o2**2)*w7) * (1 - g1**2) * (1 - net_h1**2) * x1",
     "net_h1 put in for out_h1"),
    (TANH_FILE, "dE/dw1", "formula", "((o1 - t1)*(1 - o1**2)*w5) * (1 - g1**2) * (1 - h1**2) * x1", "the path through out_o2 is missing"),
])
def test_a_chain_that_skips_the_activation_layer_is_wrong_and_named(spec_file, of, key, claimed, reason):
    (verdict,) = _judge(spec_file, f"claims:\n  - of: {of}\n    {key}: \"{claimed}\"\n")
    assert not verdict.correct
    assert reason in verdict.diagnosis, verdict.diagnosis


def test_a_layer_without_weights_has_no_net(tmp_path, capsys):
    claims = tmp_path / "claims.yaml"
    claims.write_text("claims:\n  - of: net_s1\n    value: 0.1\n")
    assert main(["verify", str(SPEC_FILE), str(claims)]) == 2
    err = capsys.readouterr().err
    assert "unknown name 'net_s1'" in err and "s1, s2, s3 of layers without weights have no net_" in err


# ---------------------------------------------------------------------------------------------
# report, steps, the Python API


def test_report_tex_and_html(tmp_path):
    assert main(["report", str(SPEC_FILE), "-o", str(tmp_path), "--html"]) == 0
    page = (tmp_path / "act_softmax.html").read_text()
    assert "no weights" in page and "softmax, no weights: applied to the outputs of layer h" in page
    assert main(["report", str(SPEC_FILE), "-o", str(tmp_path)]) == 0
    tex = (tmp_path / "act_softmax.tex").read_text()
    assert "none (kind: activation): applied to the outputs of layer h" in tex
    assert r"\mathbf{net}_{s}" not in tex and "weighted sums" not in tex.lower().split("layer 2, s")[-1][:200]


def test_a_big_network_with_activation_layers(tmp_path):
    data = {"name": "big", "inputs": 20, "seed": 1, "loss": "cross_entropy",
            "layers": [{"name": "h", "units": 30, "activation": "tanh"}, {"name": "g", "kind": "activation", "activation": "relu"},
                       {"name": "o", "units": 10, "activation": "identity"}, {"name": "s", "kind": "activation", "activation": "softmax"}]}
    d = derive(spec_from_data(data, "big"))
    assert not d.small and check_derivation(d).passed
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["report", str(path), "-o", str(tmp_path), "--html"]) == 0
    assert "an arrow into a layer without weights" in (tmp_path / "big.html").read_text()


def test_steps_and_the_python_api():
    import chainrule
    from chainrule.codegen.steps import follow_steps

    spec = chainrule.load(str(SPEC_FILE))
    d = chainrule.derive(spec)
    assert d.gradients["w1"] == pytest.approx(0.00428046643, rel=1e-9)
    assert "dE/dout_h1" in d.chain("w1").text and "softmax" in d._repr_html_()
    assert sorted(chainrule.trainer(spec).Network().params) == ["W1", "b1"]
    steps = follow_steps(derive(spec), 20)
    assert steps.losses[20] < steps.losses[0] and [s[0] for s in steps.slots] == ["W1", "b1"]


@needs_torch
@pytest.mark.parametrize("activation, loss, t", [("sigmoid", "bce", [1.0, 0.0]), ("softmax", "cross_entropy", [0.0, 1.0])])
def test_the_loss_s_stable_form_reads_the_layer_before(activation, loss, t, tmp_path):
    """bce on a sigmoid layer without weights is softplus of the layer before's outputs, and
    cross-entropy on a softmax one its log-softmax: at outputs of +-500 the loss is finite and
    PyTorch's (from logits), where log(sigmoid) or log(softmax) would give inf."""
    import torch.nn.functional as F

    data = _spec([{"name": "o", "units": 2, "activation": "identity", "weights": [[1000.0, 0.0], [0.0, -1000.0]], "biases": [0.0, 0.0]},
                  {"name": "s", "kind": "activation", "activation": activation}], loss, t=t)
    data["sample"]["x"] = [-0.5, -0.5]  # nets -500, 500
    d = derive(spec_from_data(data, "stable"))
    logits = torch.tensor([[-500.0, 500.0]])
    target = torch.tensor([t])
    expected = (F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(-1) if loss == "bce"
                else F.cross_entropy(logits, target)).sum().item()
    assert d.loss == pytest.approx(expected, rel=1e-12)
    assert np.isfinite(d.sample.dW[0]).all()
    net = emitted(d.network.spec, tmp_path).Network()
    assert net.loss(d.values.X, d.values.T) == pytest.approx(expected, rel=1e-12)
    assert np.isfinite(net.gradients(d.values.X, d.values.T)["W1"]).all()
