"""The command line: exit codes, the JSON contract, and bad input as one line on stderr."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chainrule.codegen.cli import main
from helpers import EXAMPLE_FILES, ROOT

MAZUR = str(ROOT / "examples" / "mazur.yaml")
BIG = str(ROOT / "examples" / "mlp_784_128_10.yaml")


def run(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_derive_text(capsys) -> None:
    code, out, err = run(capsys, "derive", MAZUR)
    assert code == 0 and err == ""
    assert "E      = (t1 - out_o1)**2/2 + (t2 - out_o2)**2/2 = 0.298371109" in out
    assert "w5+ = w5 - lr*dE/dw5 = 0.4 - 0.5*0.0821670406 = 0.35891648" in out
    assert "w1+ = w1 - lr*dE/dw1 = 0.15 - 0.5*0.000438567734 = 0.149780716" in out
    assert "delta_h = (W2.T @ delta_o) * out_h*(1 - out_h)" in out


def test_derive_json_contract(capsys) -> None:
    code, out, _ = run(capsys, "derive", MAZUR, "--json")
    assert code == 0
    doc = json.loads(out)
    assert {"loss", "forward", "gradients", "updated", "closed_forms", "layers"} <= set(doc)
    assert round(doc["loss"], 9) == 0.298371109
    assert round(doc["forward"]["out_h1"], 9) == 0.593269992
    assert round(doc["gradients"]["w5"], 9) == 0.082167041
    assert round(doc["updated"]["w5"], 8) == 0.35891648
    assert doc["closed_forms"]["w5"] == "(out_o1 - t1)*out_o1*(1 - out_o1)*out_h1"
    assert [layer["weights"] for layer in doc["layers"]] == ["W1", "W2"]
    assert doc["chains"]["w5"][0][1] == {"factor": "dout_o1/dnet_o1", "form": "out_o1*(1 - out_o1)", "derivative": "exp(-net_o1)/(1 + exp(-net_o1))**2", "value": pytest.approx(0.186815602, abs=1e-9)}


def test_derive_json_is_deterministic(capsys) -> None:
    first = run(capsys, "derive", MAZUR, "--json")[1]
    assert run(capsys, "derive", MAZUR, "--json")[1] == first


def test_derive_param(capsys) -> None:
    code, out, _ = run(capsys, "derive", MAZUR, "--param", "w5", "--json")
    doc = json.loads(out)
    assert code == 0 and list(doc["gradients"]) == ["w5"] and list(doc["expanded_forms"]) == ["w5"]
    assert "exp(-b1 - i1*w1 - i2*w2)" in doc["expanded_forms"]["w5"]


def test_big_network_json_per_layer(capsys) -> None:
    code, out, _ = run(capsys, "derive", BIG, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["form"] == "layer"
    assert len(doc["gradients"]["W1"]) == 128 and len(doc["gradients"]["W1"][0]) == 784
    assert len(doc["updated"]["b2"]) == 10 and doc["closed_forms"] == {}
    assert doc["layers"][1]["delta"].startswith("delta_o = out_o - t")
    assert doc["sample"]["seeded"] is True


def test_big_network_param(capsys) -> None:
    code, out, _ = run(capsys, "derive", BIG, "--param", "w1", "--json")
    doc = json.loads(out)
    assert code == 0 and list(doc["closed_forms"]) == ["w1"] and len(doc["chains"]["w1"]) == 10


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_check_examples(capsys, path: Path) -> None:
    code, out, _ = run(capsys, "check", str(path))
    assert code == 0 and "agree" in out


BAD_USAGE = [
    (["derive"], "the following arguments are required: spec"),
    (["frobnicate", MAZUR], "invalid choice: 'frobnicate'"),
    (["derive", MAZUR, "--nope"], "unrecognized arguments: --nope"),
    (["derive", MAZUR, "--jso"], "unrecognized arguments: --jso"),
    (["derive", "missing.yaml"], "missing.yaml: no such file"),
    (["derive", str(ROOT / "examples")], "expected a spec file ending in"),
    (["derive", str(ROOT / "README.md")], "expected a spec file ending in .yaml"),
    (["derive", MAZUR, "--param", "w55"], "--param: no parameter named 'w55' (did you mean 'w5'?)"),
    (["check", MAZUR, "--points", "1000"], "--points: expected 0 to 100 random points"),
    ([], "the following arguments are required: command"),
]


@pytest.mark.parametrize("args, message", BAD_USAGE, ids=[" ".join(a[0:1] + a[2:]) or "none" for a, _ in BAD_USAGE])
def test_bad_usage(capsys, args: list[str], message: str) -> None:
    code, out, err = run(capsys, *args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err, err
    assert not err.startswith("chainrule: error: chainrule:")


BAD_FILES = [
    ("empty.yaml", "", "expected a mapping"),
    ("list.json", "[1, 2]", "expected a mapping"),
    ("broken.toml", "name = \n", "malformed TOML"),
    ("dup.yaml", "name: a\nname: b\n", "duplicate key"),
    ("nan.json", '{"name": NaN}', "NaN is not a JSON number"),
    ("typo.yaml", "name: n\ninputs: 2\nlayers: [{name: o, units: 1, activaton: relu}]\nloss: mse\n", "layers[0].activaton: unknown key 'activaton' (did you mean 'activation'?)"),
    ("deep.json", "[" * 30_000 + "]" * 30_000, "nesting deeper than"),
    ("latin1.yaml", b"name: caf\xe9\n", "expected UTF-8 text"),
    ("loss_nan.yaml", "name: n\ninputs: 1\nlayers: [{name: o, units: 1, activation: identity, weights: [[1]], biases: [0]}]\nloss: {formula: 'log(y)'}\nsample: {x: [-1], t: [0]}\n", "loss.formula: the loss on the sample is nan"),
    ("act_nan.yaml", "name: n\ninputs: 1\nlayers: [{name: o, units: 1, activation: {formula: 'log(-x)'}, weights: [[1]], biases: [0]}]\nloss: mse\nsample: {x: [1], t: [0]}\n", "layers[0].activation.formula: out_o1 is nan on the sample"),
    ("act_inf.yaml", "name: n\ninputs: 1\nlayers: [{name: o, units: 1, activation: {formula: 'x*1e300*1e300'}}]\nloss: mse\nsample: {x: [1], t: [0]}\n", "layers[0].activation.formula: out_o1 is"),
    ("ce_formula.yaml", "name: n\ninputs: 1\nlayers: [{name: o, units: 2, activation: {formula: 'x'}, weights: [[1], [-1]]}]\nloss: cross_entropy\nsample: {x: [0.5], t: [0, 1]}\n", "cross_entropy needs outputs in (0, 1); on the sample out_o2 = -0.5"),
    ("yaml11.yaml", "%YAML 1.1\n---\nname: n\n", "%YAML 1.1: chainrule reads YAML 1.2"),
    ("loss_huge.yaml", "name: n\ninputs: 1\nlayers: [{name: h, units: 1, activation: identity, weights: [[1e160]]}, {name: o, units: 1, activation: identity}]\n"
     "loss: half_sse\nsample: {x: [2], t: [0]}\n", "layers[0].weights: the loss on the sample is inf: net_h1 is 2e+160, too large for the loss"),
]


@pytest.mark.parametrize("name, text, message", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_files(capsys, tmp_path: Path, name: str, text, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    for command in ("derive", "check"):
        code, out, err = run(capsys, command, str(path))
        assert code == 2 and out == ""
        assert err.count("\n") == 1 and message in err and str(path) in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # nothing written


def test_fifo_is_refused_not_read(capsys, tmp_path: Path) -> None:
    import os

    path = tmp_path / "pipe.yaml"
    os.mkfifo(path)
    code, _, err = run(capsys, "derive", str(path))
    assert code == 2 and "is not a regular file" in err


def test_file_name_with_a_newline_stays_one_line(capsys, tmp_path: Path) -> None:
    path = tmp_path / "a\nb.yaml"
    path.write_text("name: 3\n")
    code, _, err = run(capsys, "derive", str(path))
    assert code == 2 and err.count("\n") == 1 and "a\\nb.yaml" in err


@pytest.mark.parametrize(
    "activation, loss, sample",
    [
        ("{formula: 'sign(x)'}", "mse", "{x: [0.3], t: [0.5]}"),
        ("{formula: 'x*step(x - 0.1)'}", "mse", "{x: [0.3], t: [0.5]}"),
        ("sigmoid", "bce", "{x: [0.3], t: [1]}"),
    ],
)
def test_formerly_crashing_specs(capsys, tmp_path: Path, activation: str, loss: str, sample: str) -> None:
    path = tmp_path / "s.yaml"
    bias = "[40]" if loss == "bce" else "[0.1]"
    path.write_text(f"name: n\ninputs: 1\nlayers:\n  - {{name: h, units: 2, activation: {activation}}}\n  - {{name: o, units: 1, activation: sigmoid, biases: {bias}}}\nloss: {loss}\nsample: {sample}\n")
    for command in (["derive", str(path), "--json"], ["derive", str(path)], ["check", str(path)]):
        code, out, err = run(capsys, *command)
        assert code == 0 and err == "", (command, err)


def test_yaml_bom_and_crlf_are_read(capsys, tmp_path: Path) -> None:
    path = tmp_path / "crlf.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + Path(MAZUR).read_bytes().replace(b"\n", b"\r\n"))
    code, out, _ = run(capsys, "derive", str(path), "--json")
    assert code == 0 and round(json.loads(out)["loss"], 9) == 0.298371109


@pytest.mark.slow
def test_console_script_in_a_subprocess(tmp_path: Path) -> None:
    """The installed command: exit codes and no traceback, as a user sees them."""
    exe = Path(sys.executable).parent / "chainrule"
    good = subprocess.run([str(exe), "derive", MAZUR], capture_output=True, text=True)
    assert good.returncode == 0 and "0.35891648" in good.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: n\ninputs: 2\nlayers: [{name: o, units: 1000000000, activation: relu}]\nloss: mse\n")
    result = subprocess.run([str(exe), "derive", str(bad)], capture_output=True, text=True)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert "layers[0].units: expected an integer in [1, 100,000], got 1000000000" in result.stderr


def test_check_exits_1_on_disagreement(capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    from chainrule.derive import network as network_module
    from chainrule.derive import registry

    wrong = dataclasses.replace(registry.ACTIVATIONS["sigmoid"], in_output=lambda y: y * (1 + y))
    monkeypatch.setattr(network_module, "ACTIVATIONS", {**registry.ACTIVATIONS, "sigmoid": wrong})
    code, out, err = run(capsys, "check", MAZUR)
    assert code == 1 and err == ""
    assert "DISAGREES" in out and out.rstrip().endswith("DISAGREE (tolerance 1e-04).")


@pytest.mark.parametrize("loss", ["sign(y - t)*(y - t)", "step(y - t)*(y - t)**2 + (t - y)**2"])
def test_loss_formulas_with_jumps(capsys, tmp_path: Path, loss: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(f"name: n\ninputs: 2\nlayers: [{{name: o, units: 1, activation: tanh}}]\nloss: {{formula: '{loss}'}}\nsample: {{x: [0.2, 0.4], t: [0.9]}}\n")
    for command in ("derive", "check"):
        code, _, err = run(capsys, command, str(path))
        assert code == 0 and err == ""


def test_check_emitted_of_a_trainer_that_raises_is_one_line(tmp_path: Path, capsys) -> None:
    # a trainer whose loss raises on a point the derivation allows ended check in a traceback
    spec = ROOT / "examples" / "xor.yaml"
    assert main(["emit", str(spec), "-o", str(tmp_path)]) == 0
    trainer = tmp_path / "xor.py"
    source = trainer.read_text(encoding="utf-8")
    assert source.count("    def _loss(self, X, T, work,") == 1
    trainer.write_text(source.replace("    def _loss(self, X, T, work,", "    def _loss(self, X, T, work, *rest):\n        raise ZeroDivisionError('broken')\n\n    def _unused(self, X, T, work,"), encoding="utf-8")
    assert main(["check", str(spec), "--emitted", str(trainer)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the trainer raised ZeroDivisionError: broken" in err and "Traceback" not in err
