"""The finite-difference check: it agrees on correct derivations and it catches wrong ones."""

from __future__ import annotations

import dataclasses

import pytest
import sympy

from chainrule.derive import derive
from chainrule.derive import registry
from chainrule.derive.check import TOLERANCE, check_derivation
from chainrule.derive.spec import spec_from_data
from helpers import EXAMPLE_FILES, example


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_examples_agree(path) -> None:
    result = check_derivation(example(path.stem))
    assert result.passed, result
    assert result.points >= 3
    forms = {g.form for g in result.groups}
    assert forms == ({"layer", "scalar"} if example(path.stem).small else {"layer"})
    assert all(g.max_error < 1e-5 for g in result.groups)


def test_wrong_activation_derivative_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """A sigmoid whose derivative is written as out (σ' taken as σ) disagrees, in both forms."""
    wrong = dataclasses.replace(registry.ACTIVATIONS["sigmoid"], in_output=lambda y: y)
    monkeypatch.setattr(registry, "ACTIVATIONS", {**registry.ACTIVATIONS, "sigmoid": wrong})
    from chainrule.derive import network as network_module

    monkeypatch.setattr(network_module, "ACTIVATIONS", registry.ACTIVATIONS)
    d = derive(example("mazur").network.spec)
    result = check_derivation(d)
    assert not result.passed
    assert {g.form for g in result.groups if g.max_error > TOLERANCE} == {"layer", "scalar"}


def test_wrong_loss_derivative_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """dE/dout off by a factor 2 (the ½ of half_sse forgotten) is caught."""
    d = example("mazur")
    output = d.layers[-1].output
    doubled = dataclasses.replace(output, closed=2 * output.closed)
    layers = d.layers[:-1] + (dataclasses.replace(d.layers[-1], output=doubled),)
    from chainrule.derive.evaluate import ProgramNumbers
    from chainrule.derive.kinds import layer_program

    program = layer_program(d.network, layers)
    broken = dataclasses.replace(d, layers=layers, program=program, numbers=ProgramNumbers(program))
    assert not check_derivation(broken).passed


def test_sample_on_a_kink_is_skipped_with_a_note() -> None:
    data = {
        "name": "k",
        "inputs": 1,
        "layers": [{"name": "h", "units": 1, "activation": "relu", "weights": [[1.0]], "biases": [0.0]}, {"name": "o", "units": 1, "activation": "identity"}],
        "loss": "half_sse",
        "sample": {"x": [0.0], "t": [1.0]},
    }
    result = check_derivation(derive(spec_from_data(data, "k")))
    assert result.passed
    assert result.notes and "net_h1 = 0 is at a kink of relu" in result.notes[0]


def test_big_network_checks_directions_and_a_few_coordinates() -> None:
    result = check_derivation(example("mlp_784_128_10"), random_points=1)
    assert result.passed
    assert all(g.checked <= 2 * 5 for g in result.groups)
    assert any("direction" in g.worst or "[" in g.worst for g in result.groups)


# -- check --emitted: the emitted trainer against its own finite differences and the derivation ---

from chainrule.codegen.cli import main  # noqa: E402
from helpers import ROOT  # noqa: E402

GENERATED = sorted((ROOT / "generated").glob("*.py"))


def _spec_of(trainer) -> str:
    return str(next(p for p in (ROOT / "examples").iterdir() if p.stem == trainer.stem and p.suffix in (".yaml", ".toml", ".json")))


@pytest.mark.parametrize("trainer", GENERATED, ids=lambda p: p.stem)
def test_emitted_trainers_of_the_examples_agree(trainer, capsys) -> None:
    assert main(["check", _spec_of(trainer), "--emitted", str(trainer), "--points", "1"]) == 0
    out = capsys.readouterr().out
    assert "The emitted trainer, finite differences and the derivation agree" in out
    assert {line.split()[1] for line in out.split("Emitted trainer", 1)[1].splitlines()[1:-1]} == {"emitted", "derived"}


def _tampered(tmp_path, old: str, new: str):
    text = (ROOT / "generated" / "mazur.py").read_text()
    assert text.count(old) == 1, old
    path = tmp_path / "mazur.py"
    path.write_text(text.replace(old, new))
    return path


def _failing_forms(out: str) -> set[tuple[str, str]]:
    table = out.split("Emitted trainer", 1)[1].splitlines()[1:-1]
    return {(line.split()[0], line.split()[1]) for line in table if line.endswith("DISAGREES")}


def test_a_wrong_gradient_line_disagrees_with_both(tmp_path, capsys) -> None:
    """σ' taken as σ in the hidden delta: the gradients of W1 and b1 disagree with the trainer's own
    loss and with the derivation; the output layer still agrees."""
    path = _tampered(tmp_path, "delta_h *= work[\"tmp_h\"]", "delta_h *= out_h")
    assert main(["check", str(ROOT / "examples" / "mazur.yaml"), "--emitted", str(path), "--points", "1"]) == 1
    out = capsys.readouterr().out
    assert _failing_forms(out) == {("W1", "emitted"), ("W1", "derived"), ("b1", "emitted"), ("b1", "derived")}
    assert "The emitted trainer, finite differences and the derivation DISAGREE" in out


def test_a_wrong_loss_disagrees_with_its_own_gradients_only(tmp_path, capsys) -> None:
    path = _tampered(tmp_path, "E = 0.5 * np.vdot(", "E = np.vdot(")  # the emitted line, as ruff formats it
    assert main(["check", str(ROOT / "examples" / "mazur.yaml"), "--emitted", str(path), "--points", "1"]) == 1
    forms = _failing_forms(capsys.readouterr().out)
    assert {form for _, form in forms} == {"emitted"} and len(forms) == 4


def test_the_trainer_of_another_spec_is_refused(capsys) -> None:
    assert main(["check", str(ROOT / "examples" / "xor.yaml"), "--emitted", str(ROOT / "generated" / "mazur.py")]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "is not the trainer of this spec" in err and "xor: 2-4-1" in err


@pytest.mark.parametrize("content, expected", [(None, "found no such file"), ("raise RuntimeError('boom')\n", "cannot be imported: RuntimeError: boom"), ("def (:\n", "cannot be imported: SyntaxError"), ("x = 1\n", "no ARCHITECTURE line")])
def test_unusable_emitted_files_are_one_line_errors(tmp_path, capsys, content, expected) -> None:
    path = tmp_path / "trainer.py"
    if content is not None:
        path.write_text(content)
    assert main(["check", str(ROOT / "examples" / "mazur.yaml"), "--emitted", str(path)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and expected in err and "--emitted" in err


@pytest.mark.parametrize("tail, expected", [("import sys\nsys.exit(0)\n", "SystemExit: 0"), ("raise SystemExit(5)\n", "SystemExit: 5"),
                                            ("print('hello from the file')\nNetwork = None\n", "Network() fails")])
def test_a_trainer_that_exits_or_prints_at_import_cannot_decide_the_result(tmp_path, capsys, tail, expected) -> None:
    # the file's own exit code used to become check's (0: "agree", with nothing checked)
    path = tmp_path / "mazur.py"
    path.write_text((ROOT / "generated" / "mazur.py").read_text() + "\n" + tail)
    assert main(["check", str(ROOT / "examples" / "mazur.yaml"), "--emitted", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and expected in err


def test_check_emitted_leaves_the_trainers_parameters_as_they_were() -> None:
    from chainrule.codegen.trainer.emitted import load_trainer
    from chainrule.derive.check import check_emitted

    d = example("mazur")
    trainer = load_trainer(str(ROOT / "generated" / "mazur.py"), d)
    before = trainer.theta.copy()
    assert check_emitted(d, trainer, random_points=2).passed
    assert (trainer.theta == before).all()


def test_nothing_compared_is_not_agreement(tmp_path, capsys) -> None:
    # the sample on a kink and --points 0 used to print "agree" and exit 0 with nothing checked
    spec = tmp_path / "kink.yaml"
    spec.write_text("name: kink\ninputs: [i1, i2]\nlayers:\n  - {name: h, units: 2, activation: relu, weights: [[1.0, -1.0], [0.5, 0.5]], biases: [0.0, 0.0]}\n"
                    "  - {name: o, units: 1, activation: identity, weights: [[1.0, 1.0]], biases: [0.0]}\nloss: half_sse\nsample: {x: [0.3, 0.3], t: [1.0]}\n")
    assert main(["check", str(spec), "--points", "0"]) == 1
    assert "NOT COMPARED: no point was left to check" in capsys.readouterr().out
    assert main(["check", str(spec), "--points", "1"]) == 0
