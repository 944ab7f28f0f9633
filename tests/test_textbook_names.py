"""Names textbooks use: an input x, a target t (issue 13). chainrule's own names give way: the
layer form calls its vectors x_vec and t_vec beside a unit x or t, and the emitted trainer takes
its arguments apart in one assignment. E (the loss) and lr (the rate in update rules and claims)
stay refused, with the reason: a unit of that name could not be told from them."""

from __future__ import annotations

import ast
import copy
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from chainrule.codegen.cli import main
from chainrule.derive import derive
from chainrule.derive.errors import SpecError
from chainrule.derive.naming import vector_base, vector_name
from chainrule.derive.spec import spec_from_data

from helpers import EXAMPLES, finite_difference, needs_torch

#: examples/textbook_121.yaml with the names a textbook gives: input x, target t.
TEXTBOOK = yaml.safe_load((EXAMPLES / "textbook_121.yaml").read_text(encoding="utf-8"))
TEXTBOOK.update(inputs=["x"], targets=["t"])
#: Worse: an input named t beside one named x, the target y, a formula activation in x.
CROSSED = {
    "name": "crossed",
    "inputs": ["t", "x"],
    "layers": [
        {"name": "h", "units": 2, "activation": {"formula": "x/(1 + abs(x))"}, "weights": [[0.5, -0.2], [-0.3, 0.4]], "biases": [0.1, 0.2]},
        {"name": "o", "units": 1, "activation": "sigmoid", "weights": [[0.8, -0.6]], "biases": [0.05]},
    ],
    "targets": ["y"],
    "loss": {"formula": "(t - y)**2/2"},
    "sample": {"x": [1.0, 0.5], "t": [0.6]},
    "optimizer": {"kind": "sgd", "lr": 0.1},
}


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def emitted(path: Path, tmp_path: Path):
    assert main(["emit", str(path), "-o", str(tmp_path), "--formulas"]) == 0
    file = tmp_path / f"{path.stem.replace('.yaml', '')}.py"
    ast.parse(file.read_text(encoding="utf-8"))
    loader = importlib.util.spec_from_file_location(f"emitted_{file.stem}", file)
    module = importlib.util.module_from_spec(loader)
    loader.spec = loader
    loader.loader.exec_module(module)
    return module


def gradients(d) -> dict[str, float]:
    return {ref.name: d.gradient(ref) for ref in d.network.parameters()}


def updated(d) -> dict[str, float]:
    return {ref.name: d.updated(ref) for ref in d.network.parameters()}


def test_textbook_names_derive_with_the_values_of_x1_and_y() -> None:
    """The same network as examples/textbook_121 (x1 -> x, y -> t): the same numbers."""
    renamed = derive(spec_from_data(TEXTBOOK, "textbook.yaml"))
    original = derive(spec_from_data(yaml.safe_load((EXAMPLES / "textbook_121.yaml").read_text()), "t.yaml"))
    assert renamed.loss == pytest.approx(0.000452493189, rel=1e-9) == original.loss
    assert gradients(renamed)["w11"] == pytest.approx(-0.00134958735, rel=1e-8)
    assert gradients(renamed) == gradients(original)
    assert renamed.network.input_vector == "x_vec" and renamed.network.target_vector == "t_vec"
    assert original.network.input_vector == "x" and original.network.target_vector == "t"


@pytest.mark.parametrize("data", [TEXTBOOK, CROSSED], ids=["textbook", "crossed"])
def test_derive_text_keeps_the_vectors_apart_from_the_units(data: dict, tmp_path: Path, capsys) -> None:
    assert main(["derive", str(write(tmp_path, data))]) == 0
    text = capsys.readouterr().out
    assert "net_h = W1 @ x_vec + b1" in text and "delta_o = (out_o - t_vec)" in text and "outer(delta_h, x_vec)" in text
    assert " @ x " not in text and "- t)" not in text.split("Layer form")[1]


@pytest.mark.parametrize("data", [TEXTBOOK, CROSSED], ids=["textbook", "crossed"])
def test_emitted_trainer_imports_and_its_gradients_are_right(data: dict, tmp_path: Path) -> None:
    path = write(tmp_path, data)
    module = emitted(path, tmp_path)
    d = derive(spec_from_data(data, str(path)))
    rng = np.random.default_rng(3)
    X, T = rng.uniform(-1, 1, (4, d.network.sizes[0])), rng.uniform(0, 1, (4, 1))
    net = module.Network()
    gradient = np.concatenate([np.ravel(g) for g in net.gradients(X, T).values()])
    np.testing.assert_allclose(gradient, finite_difference(net, X, T), rtol=1e-6, atol=1e-10)
    # the per-weight chains, the one-sample float step and the array step, on the sample
    x, t = d.values.x, d.values.t
    formulas = net.gradient_formulas(list(x), list(t))
    assert formulas == pytest.approx(gradients(d), rel=1e-12)
    E = net.step(np.atleast_2d(x), np.atleast_2d(t))
    assert E == pytest.approx(d.loss, rel=1e-12)
    assert dict(zip([p.name for p in d.network.parameters()], net.theta)) == pytest.approx(updated(d), rel=1e-12)
    assert len(net.fit(X, T, epochs=2, batch_size=1)) == 2  # one-sample float steps on the batch


@needs_torch
@pytest.mark.parametrize("data", [TEXTBOOK, CROSSED], ids=["textbook", "crossed"])
def test_emitted_gradients_match_torch(data: dict, tmp_path: Path) -> None:
    from torch_bridge import torch_gradients

    path = write(tmp_path, data)
    module = emitted(path, tmp_path)
    d = derive(spec_from_data(data, str(path)))
    X = np.random.default_rng(5).uniform(-1, 1, (3, d.network.sizes[0]))
    T = np.tile(d.values.t, (3, 1))
    loss, dW, db = torch_gradients(d.network, d.values, X, T)
    grads = module.Network().gradients(X, T)
    assert module.Network().loss(X, T) == pytest.approx(loss, rel=1e-10)
    for l in range(d.network.depth):
        np.testing.assert_allclose(grads[f"W{l + 1}"], dW[l], rtol=1e-8, atol=1e-11)
        np.testing.assert_allclose(grads[f"b{l + 1}"], db[l], rtol=1e-8, atol=1e-11)


@pytest.mark.parametrize("data", [TEXTBOOK, CROSSED], ids=["textbook", "crossed"])
def test_check_report_and_json(data: dict, tmp_path: Path, capsys) -> None:
    path = write(tmp_path, data)
    assert main(["emit", str(path), "-o", str(tmp_path), "--formulas"]) == 0
    assert main(["check", str(path), "--emitted", str(tmp_path / f"{data['name']}.py")]) == 0
    assert main(["report", str(path), "-o", str(tmp_path)]) == 0
    tex = (tmp_path / f"{data['name']}.tex").read_text(encoding="utf-8")
    assert r"\mathbf{W}_{1} \mathbf{x}" in tex and r"- \mathbf{t})" in tex and "_vec" not in tex and r"\_vec" not in tex
    capsys.readouterr()
    assert main(["derive", str(path), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert set(document["gradients"]) == {p.name for p in derive(spec_from_data(data, str(path))).network.parameters()}


def test_claims_in_x_and_t_are_verified(tmp_path: Path, capsys) -> None:
    path = write(tmp_path, TEXTBOOK)
    claims = tmp_path / "claims.yaml"
    claims.write_text(
        "claims:\n"
        "  - {of: dE/dw11, formula: '(o1 - t)*o1*(1 - o1)*w21*h1*(1 - h1)*x'}\n"
        "  - {of: dE/dw11, chain: 'dE/dout_o1 * dout_o1/dnet_o1 * dnet_o1/dout_h1 * dout_h1/dnet_h1 * dnet_h1/dw11'}\n"
        "  - {of: dE/dw11, value: -0.00134958735}\n"
        "  - {of: E, value: 0.000452493189}\n"
        "  - {of: w11+, formula: 'w11 - lr*dE/dw11'}\n",
        encoding="utf-8",
    )
    assert main(["verify", str(path), str(claims)]) == 0, capsys.readouterr()
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("claims:\n  - {of: dE/dw11, formula: '(o1 - t)*o1*(1 - o1)*w21*h1*(1 - h1)'}\n", encoding="utf-8")
    assert main(["verify", str(path), str(wrong)]) == 1
    assert "x" in capsys.readouterr().out


@pytest.mark.parametrize(
    "where, name, reason",
    [
        ("inputs", "E", "E is the loss"),
        ("targets", "E", "E is the loss"),
        ("units", "lr", "setting of the optimizer in update rules and claims"),
        ("bias_names", "eps", "setting of the optimizer"),
        ("inputs", "np", "the emitted trainer uses it"),
        ("units", "exp", "function or constant of the formulas"),
    ],
)
def test_truly_ambiguous_names_are_refused_with_the_reason(where: str, name: str, reason: str) -> None:
    data = copy.deepcopy(TEXTBOOK)
    if where == "units":
        data["layers"][0]["units"] = [name, "h2"]
        field = "layers[0].units[0]"
    elif where == "bias_names":
        data["layers"][0]["bias_names"] = [name, "b12"]
        field = "layers[0].bias_names[0]"
    else:
        data[where] = [name]
        field = f"{where}[0]"
    with pytest.raises(SpecError) as caught:
        spec_from_data(data, "spec.yaml")
    assert caught.value.field == field and reason in caught.value.message and f"{name!r} is reserved" in caught.value.message


def test_vector_names_step_aside_for_every_name_the_spec_uses() -> None:
    taken = {"x", "x_vec", "t"}
    assert vector_name("x", taken.__contains__) == "x_vec2" and vector_name("t", taken.__contains__) == "t_vec"
    assert vector_name("x", set().__contains__) == "x"
    assert [vector_base(n) for n in ("x", "t_vec", "x_vec2", "x_vec1", "x_vector", "xt")] == ["x", "t", "x", None, None, None]


@pytest.mark.parametrize("seed", range(12))
def test_random_networks_with_crossed_names_train_as_the_derivation_says(seed: int, tmp_path: Path) -> None:
    """Random specs whose first input is named t and first target x (the worst crossing: each
    is the other's vector name): the emitted gradients, per-weight chains and one-sample step
    are the derivation's, and the layer form names its vectors x_vec and t_vec."""
    from generator import random_spec, spec_id

    data = random_spec(seed)
    inputs = data["inputs"] if isinstance(data["inputs"], int) else len(data["inputs"])
    outputs = data["layers"][-1]["units"] if isinstance(data["layers"][-1]["units"], int) else len(data["layers"][-1]["units"])
    data["inputs"] = ["t"] + [f"in{k}" for k in range(2, inputs + 1)]
    data["targets"] = ["x"] + [f"tg{k}" for k in range(2, outputs + 1)]
    data["name"] = f"crossed{seed}"
    path = write(tmp_path, data)
    d = derive(spec_from_data(data, spec_id(seed)))
    assert d.network.input_vector == "x_vec" and d.network.target_vector == "t_vec"
    net = emitted(path, tmp_path).Network()
    x, t = d.values.x, d.values.t
    grads = net.gradients(np.atleast_2d(x), np.atleast_2d(t))
    flat = np.concatenate([np.ravel(g) for g in grads.values()])
    np.testing.assert_allclose(flat, finite_difference(net, np.atleast_2d(x), np.atleast_2d(t)), rtol=1e-5, atol=1e-8)
    if hasattr(net, "gradient_formulas") and d.small:
        assert net.gradient_formulas(list(x), list(t)) == pytest.approx(gradients(d), rel=1e-9, abs=1e-12)
    net.step(np.atleast_2d(x), np.atleast_2d(t))
    assert dict(zip([p.name for p in d.network.parameters()], net.theta)) == pytest.approx(updated(d), rel=1e-9, abs=1e-12)
