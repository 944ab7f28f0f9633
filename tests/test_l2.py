"""The L2 penalty inside the loss (``loss: {kind: ..., l2: lambda}``, issue 15, spec section 5):
E = reduced loss + l2/2 * (sum of the squared weights), in the derivation, the trainer, check,
derive's text and JSON, against PyTorch float64 autograd and torch.optim."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from chainrule.codegen.cli import main
from chainrule.codegen.steps import follow_steps
from chainrule.derive import derive
from chainrule.derive.check import check_derivation, check_emitted
from chainrule.derive.spec import spec_from_data
from generator import OPTIMIZERS
from helpers import ROOT, needs_torch, torch
from test_batches import batch_spec
from test_emit import emitted

MAZUR = ROOT / "examples" / "mazur.yaml"
SOFTMAX = ROOT / "examples" / "softmax_classifier.toml"
L2 = 0.05


def mazur(l2: float = L2, **changes) -> dict:
    data = yaml.safe_load(MAZUR.read_text())
    data["loss"] = {"kind": "half_sse", "l2": l2}
    data.update(changes)
    return data


def softmax_batch(reduction: str) -> dict:
    """A softmax output with cross-entropy on a batch of three."""
    import tomllib

    data = tomllib.loads(SOFTMAX.read_text())
    data["loss"] = {"kind": "cross_entropy", "l2": 0.1}
    data.pop("sample", None)
    inputs, outputs = len(data["inputs"]) if isinstance(data["inputs"], list) else data["inputs"], data["layers"][-1]["units"]
    outputs = outputs if isinstance(outputs, int) else len(outputs)
    rng = np.random.default_rng(3)
    data["samples"] = [{"x": rng.uniform(-1, 1, inputs).round(6).tolist(), "t": np.eye(outputs)[k % outputs].tolist()} for k in range(3)]
    data["reduction"] = reduction
    return data


def _torch_model(d):
    """The network's tensors (W1, b1, ... requiring grad) and E = reduced loss + l2/2 sum W**2."""
    import torch_bridge

    network, values = d.network, d.values
    tensors = {}
    for l in range(network.depth):
        if values.W[l] is not None:  # a layer without weights has neither
            tensors[f"W{l + 1}"] = torch.tensor(values.W[l], requires_grad=True)
        if values.b[l] is not None:
            tensors[f"b{l + 1}"] = torch.tensor(values.b[l], requires_grad=True)
    X, T = torch.tensor(values.X), torch.tensor(values.T)

    def loss():
        W = [tensors.get(f"W{l + 1}") for l in range(network.depth)]
        b = [tensors.get(f"b{l + 1}") for l in range(network.depth)]
        out = torch_bridge.forward(network, W, b, X)
        data = torch_bridge.loss(network, out, T) * (len(X) if network.spec.reduction == "sum" else 1)
        weights = sum((w**2).sum() for name, w in tensors.items() if name.startswith("W"))
        return data + network.spec.loss.l2 / 2 * weights

    return tensors, loss


def _torch_gradients(d):
    tensors, loss = _torch_model(d)
    value = loss()
    value.backward()
    return float(value.detach()), {name: t.grad.numpy() for name, t in tensors.items()}


def _torch_steps(d, steps: int, groups=()) -> np.ndarray:
    """theta after 0..steps torch.optim steps (groups by matrix name; frozen matrices left out)."""
    from test_optimizers import TORCH

    tensors, loss = _torch_model(d)
    frozen = {f"{'W' if part == 'weights' else 'b'}{l + 1}" for l, layer in enumerate(d.network.spec.layers) for part in layer.freeze}
    grouped = {name for group in groups for name in group["params"]}
    param_groups = [{"params": [t for n, t in tensors.items() if n not in grouped | frozen]}]
    param_groups += [{"params": [tensors[n] for n in group["params"]], **{k: v for k, v in group.items() if k != "params"}} for group in groups]
    optimizer = TORCH[d.network.spec.optimizer.kind]([g for g in param_groups if g["params"]], dict(d.network.spec.optimizer.hyper))
    flats = [np.concatenate([t.detach().numpy().ravel() for t in tensors.values()])]
    for _ in range(steps):
        optimizer.zero_grad()
        loss().backward()
        optimizer.step()
        flats.append(np.concatenate([t.detach().numpy().ravel() for t in tensors.values()]))
    return np.array(flats)


def _assert_gradients(d, tmp_path, rtol=1e-10):
    loss, grads = _torch_gradients(d)
    assert d.loss == pytest.approx(loss, rel=1e-12)
    for l, form in enumerate(d.layers):
        if form.weight is None:
            assert d.sample.dW[l] is None
            continue
        np.testing.assert_allclose(d.sample.dW[l], grads[form.weight], rtol=rtol, atol=1e-13)
        if form.bias is not None:
            np.testing.assert_allclose(d.sample.db[l], grads[form.bias], rtol=rtol, atol=1e-13)
    for name, chain in d.chains.items():
        ref = chain.param
        expected = grads[d.layers[ref.layer - 1].weight][ref.row, ref.col] if ref.is_weight else grads[d.layers[ref.layer - 1].bias][ref.row]
        assert d.chain_gradient(chain) == pytest.approx(float(expected), rel=1e-8, abs=1e-12), name
    for dtype, tolerance in ((np.float64, 1e-10), (np.float32, 1e-4)):
        net = emitted(d.network.spec, tmp_path).Network(dtype=dtype)
        assert net.loss(d.values.X, d.values.T) == pytest.approx(loss, rel=tolerance)
        for name, value in net.gradients(d.values.X, d.values.T).items():
            np.testing.assert_allclose(value, grads[name], rtol=tolerance, atol=tolerance * 1e-2)


@needs_torch
def test_mazur_with_l2_is_torchs(tmp_path):
    d = derive(spec_from_data(mazur(), "mazur"))
    assert d.sample.penalty == pytest.approx(L2 / 2 * sum(float((w**2).sum()) for w in d.values.W))
    assert d.loss == pytest.approx(0.298371109 + d.sample.penalty, rel=1e-9)
    w5 = d.chains["w5"]
    assert d.chain_gradient(w5) == pytest.approx(0.0821670406 + L2 * 0.4, rel=1e-9)
    assert d.chains["b2"].penalty == 0
    _assert_gradients(d, tmp_path)


@needs_torch
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("seed", [1, 5, 8])
def test_a_batch_with_l2_is_torchs(seed, reduction, tmp_path):
    """The penalty is added once to the reduced loss, mean or sum."""
    data = batch_spec(seed, 4, reduction)
    data["loss"] = {"kind": data["loss"], "l2": 0.07} if isinstance(data["loss"], str) else {**data["loss"], "l2": 0.07}
    _assert_gradients(derive(spec_from_data(data, f"seed {seed}")), tmp_path)


@needs_torch
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_softmax_cross_entropy_with_l2_is_torchs(reduction, tmp_path):
    _assert_gradients(derive(spec_from_data(softmax_batch(reduction), "softmax")), tmp_path)


@needs_torch
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_a_layer_without_weights_has_no_penalty(reduction, tmp_path):
    """A softmax layer without weights after a sigmoid layer, cross-entropy with l2: only the
    dense layer's weights are penalised; everything against torch."""
    data = mazur(reduction=reduction, samples=[{"x": [0.05, 0.1], "t": [1.0, 0.0]}, {"x": [0.3, -0.2], "t": [0.0, 1.0]}])
    data.pop("sample")
    data["loss"] = {"kind": "cross_entropy", "l2": 0.1}
    data["layers"].append({"name": "s", "kind": "activation", "activation": "softmax"})
    d = derive(spec_from_data(data, "weightless"))
    assert d.sample.penalty == pytest.approx(0.05 * sum(float((w**2).sum()) for w in d.values.W if w is not None))
    _assert_gradients(d, tmp_path)
    assert check_derivation(d).passed


def _optimizer(kind: str, decay: float) -> dict:
    return {"kind": kind, **OPTIMIZERS[kind], "lr": 0.05, "weight_decay": decay}


def _compare_steps(kind: str, decay: float, last: int) -> None:
    """The derivation's one-step update and the trainer's steps 1, 2, 10 (and ``last``) equal
    torch.optim's, at a rate low enough that after 1,000 steps the gradient is still far above
    rounding noise (as tests/test_steps.py says; l2 = 0.01: at 0.05 rmsprop brings the first
    layer's weights to where the penalty balances the loss within 600 steps, and its steps of
    about lr there are rounding noise, scaled up)."""
    d = derive(spec_from_data(mazur(l2=0.01, optimizer={**_optimizer(kind, decay), "lr": 0.001}), "mazur"))
    expected = _torch_steps(d, last)
    steps = follow_steps(d, last)
    assert steps.losses[last - 1] - steps.losses[last] > 1e-9 * steps.losses[last], "converged: the comparison would compare noise"
    for k in sorted({1, 2, 10, last}):
        np.testing.assert_allclose(steps.theta[k], expected[k], rtol=1e-9, atol=1e-12, err_msg=f"after {k} steps")
    one = np.array([d.updated(ref) for ref in d.network.parameters()])
    np.testing.assert_allclose(one, expected[1], rtol=1e-12, atol=1e-15)


@needs_torch
@pytest.mark.parametrize("decay", [0.0, 0.02])
@pytest.mark.parametrize("kind", sorted(OPTIMIZERS))
def test_steps_with_l2_are_torch_optims(kind, decay):
    """Every optimizer, with and without weight decay (which stays the optimizer's): 1, 2 and 10
    steps."""
    _compare_steps(kind, decay, 10)


@pytest.mark.slow
@needs_torch
@pytest.mark.parametrize("decay", [0.0, 0.02])
@pytest.mark.parametrize("kind", sorted(OPTIMIZERS))
def test_1000_steps_with_l2_are_torch_optims(kind, decay):
    _compare_steps(kind, decay, 1000)


@needs_torch
@pytest.mark.parametrize("kind", ["sgd", "adamw"])
def test_steps_with_l2_groups_and_a_batch(kind):
    """optimizer.groups (no decay on the biases, another rate for W2) on a batch of four, summed."""
    groups = [{"params": ["b1", "b2"], "weight_decay": 0.0}, {"params": ["W2"], "lr": 0.15}]
    data = mazur(l2=0.03, optimizer={**_optimizer(kind, 0.01), "groups": groups}, reduction="sum",
                 samples=[{"x": [0.05, 0.1], "t": [0.01, 0.99]}, {"x": [0.3, -0.2], "t": [0.5, 0.2]}, {"x": [-1.0, 0.4], "t": [0.9, 0.1]}])
    data.pop("sample")
    d = derive(spec_from_data(data, "groups"))
    steps = follow_steps(d, 10)
    np.testing.assert_allclose(steps.theta, _torch_steps(d, 10, groups), rtol=1e-10, atol=1e-13)


@needs_torch
def test_frozen_weights_keep_their_value_and_their_penalty():
    """Frozen weights are not updated, but their penalty counts in E (its value and its
    gradients, which are shown, not applied)."""
    data = mazur()
    data["layers"][1]["freeze"] = ["weights"]
    d = derive(spec_from_data(data, "frozen"))
    loss, _ = _torch_gradients(d)
    assert d.loss == pytest.approx(loss, rel=1e-12)
    assert d.updated(d.network.locate("w5")) == 0.4
    steps = follow_steps(d, 10)
    np.testing.assert_allclose(steps.theta, _torch_steps(d, 10), rtol=1e-10, atol=1e-13)


def test_check_passes_with_l2(tmp_path):
    for data in (mazur(), softmax_batch("sum")):
        d = derive(spec_from_data(data, "l2"))
        assert check_derivation(d).passed
        assert check_emitted(d, emitted(d.network.spec, tmp_path).Network()).passed


def test_the_scalar_step_is_the_array_step(tmp_path):
    """The straight-line float step of a small sgd network and the array step agree."""
    d = derive(spec_from_data(mazur(), "mazur"))
    module = emitted(d.network.spec, tmp_path)
    one, many = module.Network(), module.Network()
    X, T = d.values.X, d.values.T
    assert one.step(X, T) == pytest.approx(d.loss, rel=1e-14)
    work = many._workspace(1)
    many._backward(X, T, many.lr, work, many._forward(X, work))
    many.theta -= work["grad"]
    np.testing.assert_allclose(one.theta, many.theta, rtol=1e-14)


def _write(tmp_path, data, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_text_shows_the_penalty_as_a_named_term(tmp_path, capsys):
    path = _write(tmp_path, mazur())
    assert main(["derive", str(path), "--param", "w5"]) == 0
    out = capsys.readouterr().out
    assert "E      = (t1 - out_o1)**2/2 + (t2 - out_o2)**2/2 + l2/2*(w1**2 + w2**2 + ... + w8**2) = 0.298371109 + 0.05/2*1.13 = 0.326621109" in out
    assert "dE/dw5 = (paths) + l2*w5 = 0.0821670406 + 0.05*0.4 = 0.102167041" in out
    assert "dE/dw5 = (out_o1 - t1)*out_o1*(1 - out_o1)*out_h1 + l2*w5" in out
    assert "dE_dW2 = outer(delta_o, out_h) + l2*W2" in out
    assert "w5+ = w5 - lr*dE/dw5 = 0.4 - 0.5*0.102167041 = 0.34891648" in out
    assert main(["derive", str(path), "--param", "b2"]) == 0
    assert "l2*b2" not in capsys.readouterr().out


def test_json_keeps_the_penalty_apart_and_per_sample_without_it(tmp_path, capsys):
    data = mazur(samples=[{"x": [0.05, 0.1], "t": [0.01, 0.99]}, {"x": [0.3, 0.2], "t": [0.5, 0.2]}], reduction="sum")
    data.pop("sample")
    assert main(["derive", str(_write(tmp_path, data)), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    penalty = doc["penalty"]
    assert penalty["l2"] == L2 and penalty["value"] == pytest.approx(0.02825)
    assert doc["loss"] == pytest.approx(penalty["data_loss"] + penalty["value"])
    assert doc["loss"] == pytest.approx(sum(row["loss"] for row in doc["per_sample"]) + penalty["value"])
    assert penalty["gradients"]["w5"] == pytest.approx(0.02) and penalty["gradients"]["b2"] == 0
    for name in ("w5", "b2"):
        assert doc["gradients"][name] == pytest.approx(sum(row["gradients"][name] for row in doc["per_sample"]) + penalty["gradients"][name])
    assert doc["closed_forms"]["w5"] == "(out_o1 - t1)*out_o1*(1 - out_o1)*out_h1"  # sample k's
    assert "l2*W2" in doc["layers"][1]["gradients"][0]


def test_a_spec_without_l2_has_no_penalty(tmp_path, capsys):
    assert main(["derive", str(MAZUR), "--json"]) == 0
    assert "penalty" not in json.loads(capsys.readouterr().out)
    assert not any(s.rule.startswith("penalty") for s in derive(spec_from_data(yaml.safe_load(MAZUR.read_text()), "m")).program.statements)


@pytest.mark.parametrize("loss, message", [
    ({"kind": "half_sse", "l2": -0.1}, "loss.l2: expected a number >= 0"),
    ({"kind": "half_sse", "l2": float("nan")}, "loss.l2: expected a finite number"),
    ({"kind": "half_sse", "l2": float("inf")}, "loss.l2: expected a finite number"),
    ({"kind": "half_sse", "l2": "0.1"}, "loss.l2: expected a number, got '0.1'"),
    ({"kind": "half_sse", "l2": True}, "loss.l2: expected a number"),
    ({"kind": "huber", "l2": 0.1}, "loss.kind: unknown loss 'huber'"),
    ({"l2": 0.1}, "loss.kind: required but missing"),
    ({"formula": "(t - y)**2", "l2": -1}, "loss.l2: expected a number >= 0"),
])
def test_bad_l2(loss, message, tmp_path, capsys):
    path = _write(tmp_path, mazur() | {"loss": loss})
    out = tmp_path / "out"
    assert main(["emit", str(path), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_a_unit_named_l2_is_refused_where_the_penalty_is_written_l2(tmp_path, capsys):
    data = mazur()
    data["layers"][0]["units"] = ["h1", "l2"]
    assert main(["derive", str(_write(tmp_path, data))]) == 2
    assert "the name 'l2' is already used by loss.l2" in capsys.readouterr().err
    data["loss"] = "half_sse"
    assert main(["derive", str(_write(tmp_path, data))]) == 0


def test_a_formula_loss_takes_l2(tmp_path):
    data = mazur()
    data["loss"] = {"formula": "(t - y)**2 / 2", "l2": L2}
    d = derive(spec_from_data(data, "formula"))
    assert d.loss == pytest.approx(derive(spec_from_data(mazur(), "m")).loss, rel=1e-14)


DATA = ROOT / "tests" / "data"


def test_verify_names_the_penalty_left_out_and_doubled(capsys):
    """tests/data/l2_mazur_claims.yaml: right claims judged correct, the penalty left out of E,
    dE/dw5 and the update's gradient, and doubled (2*l2*w5, l2*sum(w**2)) named as such."""
    assert main(["verify", str(DATA / "l2_mazur.yaml"), str(DATA / "l2_mazur_claims.yaml"), "--json"]) == 1
    verdicts = json.loads(capsys.readouterr().out)["claims"]
    mistakes = [[f["mistake"] for f in v["findings"]] if v["verdict"] == "wrong" else "correct" for v in verdicts]
    assert mistakes == [
        "correct", ["penalty_left_out"], ["penalty_doubled"],
        "correct", ["penalty_doubled"],
        "correct", ["penalty_left_out"], ["penalty_doubled"], ["penalty_left_out"],
        "correct", ["penalty_left_out"],
        "correct",
    ]


def test_the_report_shows_the_penalty(tmp_path):
    """The .tex and the HTML page: the penalty in E and in the spec table, l2*w as a named term of
    each weight's chain (with its numbers), none for a bias, and + l2 W in the layer form."""
    assert main(["report", str(DATA / "l2_mazur.yaml"), "-o", str(tmp_path)]) == 0
    assert main(["report", str(DATA / "l2_mazur.yaml"), "-o", str(tmp_path), "--html"]) == 0
    tex = (tmp_path / "l2_mazur.tex").read_text(encoding="utf-8")
    assert r"+ \frac{l_{2}}{2} \left(w_{1}^{2}+ w_{2}^{2}+ \dots+ w_{8}^{2}\right)" in tex
    assert r"+ \val{0.02825} = \val{0.326621109}" in tex
    assert r"\cdot \mathrm{out}_{h1} + l_{2} \cdot w_{5} \\" in tex
    assert r"\val{0.593269992} + \val{0.05} \cdot \val{0.4} = \val{0.102167041}" in tex
    assert r"\boldsymbol{\delta}_{o}\, \mathbf{out}_{h}^{\top} + l_{2} \mathbf{W}_{2}" in tex
    assert tex.count(r"+ l_{2} \cdot w_{") == 2 * 8  # the names and the forms of each weight's chain
    assert "l_{2} \\cdot b_{" not in tex
    page = (tmp_path / "l2_mazur.html").read_text(encoding="utf-8")
    assert "with the L2 penalty on the weights (biases not)" in page


def test_verify_on_a_batch_adds_the_penalty_once(tmp_path, capsys):
    """Claims about the batch hold the penalty once (after the reduction), a sample's (sample: k)
    none; the penalty left out of the batch's E or gradient, or doubled, is named."""
    data = yaml.safe_load((DATA / "mazur_batch_sum.yaml").read_text())
    data["loss"] = {"kind": "half_sse", "l2": L2}
    d = derive(spec_from_data(data, "batch"))
    w5 = d.chains["w5"]
    paths = d.reduce([d.sample_gradient(w5, row) for row in range(3)])
    claims = {"claims": [
        {"of": "E", "value": repr(float(d.loss))},
        {"of": "E", "value": repr(float(d.data_loss))},
        {"of": "E", "sample": 1, "value": repr(float(d.sample_losses[0]))},
        {"of": "dE/dw5", "value": repr(float(paths + L2 * 0.4))},
        {"of": "dE/dw5", "value": repr(float(paths + 2 * L2 * 0.4))},
        {"of": "dE/dw5", "value": repr(float(paths))},
        {"of": "dE/dw5", "sample": 2, "value": repr(float(d.sample_gradient(w5, 1)))},
        {"of": "dE/dw5", "sample": 2, "formula": "(o1 - t1) * o1 * (1 - o1) * h1"},
    ]}
    spec, path = _write(tmp_path, data), _write(tmp_path, claims, "claims.yaml")
    assert main(["verify", str(spec), str(path), "--json"]) == 1
    verdicts = json.loads(capsys.readouterr().out)["claims"]
    mistakes = [[f["mistake"] for f in v["findings"]] if v["verdict"] == "wrong" else "correct" for v in verdicts]
    assert mistakes == ["correct", ["penalty_left_out"], "correct", "correct", ["penalty_doubled"], ["penalty_left_out"], "correct", "correct"]


def test_the_report_of_a_batch_adds_the_penalty_once(tmp_path):
    """A batch's report: E and each weight's gradient reduce the samples' (without the penalty),
    then add the penalty's term once."""
    data = yaml.safe_load((DATA / "mazur_batch_sum.yaml").read_text())
    data["loss"] = {"kind": "half_sse", "l2": L2}
    assert main(["report", str(_write(tmp_path, data)), "-o", str(tmp_path)]) == 0
    tex = (tmp_path / "mazur_batch_sum.tex").read_text(encoding="utf-8")
    d = derive(spec_from_data(data, "batch"))
    assert rf"E &= \bigl(E_{{1}} + E_{{2}} + E_{{3}}\bigr) + \frac{{l_{{2}}}}{{2}}" in tex or rf"E &= E_{{1}} + E_{{2}} + E_{{3}} + \frac{{l_{{2}}}}{{2}}" in tex
    assert tex.count("E &= ") == 1  # one E, one value: the samples' losses reduced, then the penalty
    assert rf"\val{{{d.data_loss:.9g}}} + \val{{0.02825}}" in tex and rf"= \val{{{d.loss:.9g}}}" in tex
    w5 = d.chains["w5"]
    paths = d.reduce([d.sample_gradient(w5, row) for row in range(3)])
    assert rf"\bigr) + l_{{2}} \cdot w_{{5}}" in tex or rf"w_{{5}}}} + l_{{2}} \cdot w_{{5}}" in tex
    assert rf"\val{{{paths:.9g}}} + \val{{0.05}} \cdot \val{{0.4}} = \val{{{d.chain_gradient(w5):.9g}}}" in tex


def test_the_closed_form_is_sympys_diff_of_the_expanded_loss():
    """Each parameter's closed form with its l2*w (none for a bias) equals sympy.diff of E written
    out in inputs, targets and parameters, penalty included (as tests/test_chain.py proves it
    without a penalty)."""
    import sympy

    from test_chain import assert_closed_forms_match_diff

    d = derive(spec_from_data(mazur(), "mazur"))
    assert_closed_forms_match_diff(d)
    assert d.chains["w5"].penalty == sympy.Symbol("l2", real=True) * sympy.Symbol("w5", real=True)
    assert d.chains["b1"].penalty == 0


def test_the_emitted_trainers_are_as_ruff_writes_them(tmp_path):
    from test_ruff import RUFF, assert_ruff_clean

    if RUFF is None:
        pytest.skip("needs ruff")
    batch = yaml.safe_load((DATA / "mazur_batch_sum.yaml").read_text())
    batch["loss"] = {"kind": "half_sse", "l2": L2}
    for data in (mazur(), batch, softmax_batch("mean")):
        assert main(["emit", str(_write(tmp_path, data)), "-o", str(tmp_path)]) == 0
    assert_ruff_clean(sorted(tmp_path.glob("*.py")))


def test_the_help_shows_a_valid_l2_example(capsys):
    from chainrule.codegen.starter import L2_EXAMPLE

    with pytest.raises(SystemExit):
        main(["--help"])
    assert L2_EXAMPLE in capsys.readouterr().out
    assert derive(spec_from_data(mazur() | yaml.safe_load(L2_EXAMPLE), "help")).network.spec.loss.l2 == 0.01


@needs_torch
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("kind", ["sgd", "momentum"])
def test_array_steps_on_a_batch_with_l2(kind, reduction):
    """The array path of step() on a batch (plain sgd takes lr and the batch mean into the
    deltas, and the penalty's l2*W times lr alone): 10 steps equal torch.optim's, in float64, and
    in float32 to float32's digits."""
    data = mazur(optimizer={"kind": kind, "lr": 0.5}, reduction=reduction,
                 samples=[{"x": [0.05, 0.1], "t": [0.01, 0.99]}, {"x": [0.3, -0.2], "t": [0.5, 0.2]}, {"x": [-1.0, 0.4], "t": [0.9, 0.1]}])
    data.pop("sample")
    d = derive(spec_from_data(data, "batch"))
    expected = _torch_steps(d, 10)
    np.testing.assert_allclose(follow_steps(d, 10).theta, expected, rtol=1e-12, atol=1e-15)
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        net = emitted(d.network.spec, Path(tmp)).Network(dtype=np.float32)
    for _ in range(10):
        net.step(d.values.X, d.values.T)
    np.testing.assert_allclose(net.theta, expected[10], rtol=2e-5, atol=1e-6)
