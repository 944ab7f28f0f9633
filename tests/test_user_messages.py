"""What the command line and the emitted trainer say (issue 13, section 6): a bad batch size is
named, the verbose line prints numbers that belong together, counts agree with their nouns."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from chainrule.codegen.cli import main
from chainrule.derive.counts import count, noun, the
from helpers import EXAMPLE_FILES, ROOT

GENERATED = ROOT / "generated"


def generated(name: str):
    loader = importlib.util.spec_from_file_location(f"messages_{name}", GENERATED / f"{name}.py")
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"batch_size": 0}, "batch_size: expected an integer of at least 1, got 0"),
        ({"batch_size": -4}, "batch_size: expected an integer of at least 1, got -4"),
        ({"batch_size": 2.5}, "batch_size: expected an integer of at least 1, got 2.5"),
        ({"batch_size": None}, "batch_size: expected an integer of at least 1, got None"),
        ({"epochs": -1}, "epochs: expected an integer of at least 0, got -1"),
        ({"epochs": 1.5}, "epochs: expected an integer of at least 0, got 1.5"),
        ({"epochs": True}, "epochs: expected an integer of at least 0, got True"),
    ],
)
def test_fit_refuses_a_bad_batch_size_or_epochs_naming_it(arguments: dict, message: str) -> None:
    module = generated("xor")
    X, T = module.load_data(GENERATED / module.DATA, *module.DATA_COLUMNS)
    net = module.Network()
    before = net.theta.copy()
    with pytest.raises(ValueError) as caught:
        net.fit(X, T, **arguments)  # Network().fit(X, T, batch_size=0): range() arg 3 must not be zero
    assert str(caught.value) == message
    np.testing.assert_array_equal(net.theta, before)
    assert net.fit(X, T, epochs=np.int64(2), batch_size=np.int32(4))  # NumPy integers are integers


def test_verbose_prints_the_loss_and_accuracy_after_the_same_epoch(capsys) -> None:
    module = generated("xor")
    X, T = module.load_data(GENERATED / module.DATA, *module.DATA_COLUMNS)
    history = module.Network().fit(X, T, epochs=3, batch_size=2, seed=1, verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    for epoch, line in enumerate(lines, start=1):
        replay = module.Network()
        replay.fit(X, T, epochs=epoch, batch_size=2, seed=1)
        after = replay.evaluate(X, T)
        assert line == f"epoch {epoch}: after it loss {after['loss']:.6g}, accuracy {after['accuracy']:.6g} (mean loss of its steps {history[epoch - 1]:.6g})"
    # the loss of the steps is the one before each step: not the loss after the epoch
    assert history[0] != pytest.approx(module.Network().fit(X, T, epochs=1, batch_size=2, seed=1) and replay.evaluate(X, T)["loss"])


def test_counts() -> None:
    assert [count(n, "unit") for n in (0, 1, 2, 1024)] == ["0 units", "1 unit", "2 units", "1,024 units"]
    assert count(1, "entry") == "1 entry" and count(3, "entry") == "3 entries" and count(2, "bias", "biases") == "2 biases"
    assert the(1, "output") == "the output" and the(3, "output") == "the 3 outputs" and noun(2, "layer") == "layers"


#: A count of one beside a plural noun ("1 units"), or a definite count of one ("the 1 outputs").
ONE_PLURAL = re.compile(r"(?<![\w.,\-])1 [a-z]+s\b|\bthe 1 ")


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_no_count_of_one_with_a_plural_in_any_output(path: Path, tmp_path: Path) -> None:
    for argv in (["derive", str(path)], ["check", str(path), "--points", "1"], ["report", str(path), "-o", str(tmp_path)], ["emit", str(path), "-o", str(tmp_path)]):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            main(argv)
        text = out.getvalue() + "".join(f.read_text(encoding="utf-8") for f in tmp_path.iterdir() if f.suffix in (".py", ".tex"))
        assert not ONE_PLURAL.findall(text), (argv[0], ONE_PLURAL.findall(text))


#: Bad specs and the words their one-line error must hold (tests/test_api.py gives them to the API).
BAD_SPECS = {
    "row": ("name: n\ninputs: [a, b]\nlayers: [{name: o, units: 1, activation: relu, weights: [[1.0]]}]\nloss: mse\n", "expected a row of 2 entries, one per unit of the layer before, got 1 entry"),
    "rows": ("name: n\ninputs: 1\nlayers: [{name: o, units: 2, activation: relu, weights: [[1.0]]}]\nloss: mse\n", "expected a list of 2 rows, one per unit of this layer, got 1 entry"),
    "targets": ("name: n\ninputs: 1\nlayers: [{name: o, units: 2, activation: relu}]\ntargets: [t]\nloss: mse\n", "expected a list of 2 names, got 1 entry"),
    "sample": ("name: n\ninputs: 1\nlayers: [{name: o, units: 1, activation: relu}]\nloss: mse\nsample: {x: [1, 2], t: [0]}\n", "expected a list of 1 number, got 2 entries"),
    "columns": ("name: n\ninputs: 1\nlayers: [{name: o, units: 1, activation: relu}]\nloss: mse\ndata: {path: d.csv, inputs: [a, b]}\n", "expected 1 column name, one per input of the network, got 2"),
    "case": ("name: n\ninputs: 1\nlayers: [{name: o, units: 1, activation: Relu}]\nloss: MSE\n", "unknown activation 'Relu' (did you mean 'relu'?)"),
}


@pytest.mark.parametrize("spec, message", list(BAD_SPECS.values()), ids=list(BAD_SPECS))
def test_spec_errors_count_in_words(spec: str, message: str, tmp_path: Path, capsys) -> None:
    path = tmp_path / "n.yaml"
    path.write_text(spec, encoding="utf-8")
    assert main(["derive", str(path)]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1, error


def test_the_trainer_says_1_epoch(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(GENERATED / "mazur.py"), "--epochs", "1"], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines()[-1].startswith("loss after 1 epoch: ")
    csv = tmp_path / "d.csv"
    csv.write_text("a,b,c,d\n1,2,3,4\n", encoding="utf-8")
    result = subprocess.run([sys.executable, str(GENERATED / "xor.py"), "--data", str(csv)], capture_output=True, text=True, check=False)
    assert result.returncode == 2 and "or 2 inputs and then 1 target, header has" in result.stderr, result.stderr
