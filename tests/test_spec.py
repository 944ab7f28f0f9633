"""The spec loader: every example loads, and every kind of bad input is refused by one line that
names the file, the field path and what was expected."""

from __future__ import annotations

import copy
import json
from typing import Any, Callable

import pytest

from chainrule.derive.errors import SpecError
from chainrule.derive.network import build_network
from chainrule.derive.spec import BiasMode, Naming, parse_spec, spec_from_data

from helpers import EXAMPLE_FILES, example_spec

BASE: dict[str, Any] = {
    "name": "net",
    "inputs": ["i1", "i2"],
    "layers": [
        {"name": "h", "units": 2, "activation": "sigmoid", "bias": "shared", "weights": [[0.15, 0.2], [0.25, 0.3]], "biases": [0.35]},
        {"name": "o", "units": 2, "activation": "sigmoid", "bias": "shared", "weights": [[0.4, 0.45], [0.5, 0.55]], "biases": [0.6]},
    ],
    "targets": ["t1", "t2"],
    "loss": "half_sse",
    "sample": {"x": [0.05, 0.1], "t": [0.01, 0.99]},
    "optimizer": {"kind": "sgd", "lr": 0.5},
}


def spec_with(change: Callable[[dict], Any]) -> dict:
    data = copy.deepcopy(BASE)
    change(data)
    return data


def setter(path: str, value: Any) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        keys = path.replace("]", "").replace("[", ".").split(".")
        target = data
        for key in keys[:-1]:
            target = target[int(key)] if key.isdigit() else target[key]
        last = keys[-1]
        target[int(last) if last.isdigit() else last] = value

    return change


def deleter(path: str) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        *parents, last = path.split(".")
        target = data
        for key in parents:
            target = target[key]
        del target[last]

    return change


BAD = [
    ("not a mapping", lambda d: d.clear() or d.update({"x": 1}), "x", "unknown key 'x'"),
    ("misspelt key", setter("layers[0].activaton", "relu"), "layers[0].activaton", "unknown key 'activaton' (did you mean 'activation'?)"),
    ("misspelt top key", setter("optimiser", {"kind": "sgd"}), "optimiser", "did you mean 'optimizer'?"),
    ("missing name", deleter("name"), "name", "required but missing"),
    ("missing layers", deleter("layers"), "layers", "required but missing"),
    ("missing loss", deleter("loss"), "loss", "required but missing"),
    ("name not identifier", setter("name", "my net"), "name", "expected an ASCII identifier"),
    ("name keyword", setter("name", "class"), "name", "Python keyword"),
    ("name stdlib", setter("name", "json"), "name", "would shadow the module"),
    ("name np", setter("name", "np"), "name", "reserved"),
    ("fullwidth np", setter("inputs", ["\uff4e\uff50", "i2"]), "inputs[0]", "ASCII identifier"),
    ("dunder", setter("inputs", ["__init__", "i2"]), "inputs[0]", "dunder"),
    ("input E", setter("inputs", ["E", "i2"]), "inputs[0]", "reserved"),
    ("input net_", setter("inputs", ["net_x", "i2"]), "inputs[0]", "starts with 'net_'"),
    ("inputs empty", setter("inputs", []), "inputs", "non-empty list"),
    ("inputs zero", setter("inputs", 0), "inputs", "expected an integer in [1, 100,000]"),
    ("inputs bool", setter("inputs", True), "inputs", "expected a count of inputs"),
    ("inputs huge", setter("inputs", 10**9), "inputs", "expected an integer in [1, 100,000], got 1000000000"),
    ("units huge", setter("layers[0].units", 10**9), "layers[0].units", "expected an integer in [1, 100,000]"),
    ("units negative", setter("layers[0].units", -2), "layers[0].units", "expected an integer in [1, 100,000]"),
    ("units float", setter("layers[0].units", 2.5), "layers[0].units", "expected a count of units"),
    ("units string", setter("layers[0].units", "2"), "layers[0].units", "expected a count of units"),
    ("too many parameters", lambda d: d.update(inputs=100_000, layers=[{"name": "h", "units": 100_000, "activation": "relu"}]), "layers", "expected at most 20,000,000 parameters"),
    ("no layers", setter("layers", []), "layers", "expected 1 to 64 layers"),
    ("layer not mapping", setter("layers", ["dense"]), "layers[0]", "expected a mapping"),
    ("unknown activation", setter("layers[1].activation", "sigmod"), "layers[1].activation", "unknown activation 'sigmod' (did you mean 'sigmoid'?)"),
    ("activation number", setter("layers[1].activation", 3), "layers[1].activation", "expected an activation name"),
    ("activation param unknown", setter("layers[1].activation", {"name": "leaky_relu", "slope": 0.1}), "layers[1].activation.slope", "unknown key 'slope'"),
    ("activation param range", setter("layers[1].activation", {"name": "leaky_relu", "alpha": -1}), "layers[1].activation.alpha", "expected a number in (0, 10]"),
    ("activation formula attr", setter("layers[0].activation", {"formula": "x.real"}), "layers[0].activation.formula", "unexpected character '.'"),
    ("activation formula call", setter("layers[0].activation", {"formula": "__import__('os')"}), "layers[0].activation.formula", "unexpected character"),
    ("activation formula other name", setter("layers[0].activation", {"formula": "y * 2"}), "layers[0].activation.formula", "unknown name 'y' (known: x)"),
    ("activation formula constant", setter("layers[0].activation", {"formula": "2 + 1"}), "layers[0].activation.formula", "does not use x"),
    ("activation formula huge power", setter("layers[0].activation", {"formula": "x**x**99999"}), "layers[0].activation.formula", "exponent larger than 100"),
    ("activation formula not string", setter("layers[0].activation", {"formula": 5}), "layers[0].activation.formula", "expected a formula (a string)"),
    ("activation formula extra key", setter("layers[0].activation", {"formula": "x", "alpha": 1}), "layers[0].activation.alpha", "unknown key"),
    ("bias mode", setter("layers[0].bias", "sharde"), "layers[0].bias", "did you mean 'shared'?"),
    ("weights shape rows", setter("layers[0].weights", [[0.1, 0.2]]), "layers[0].weights", "expected a list of 2 rows, one per unit of this layer, got 1 entry"),
    ("weights shape cols", setter("layers[0].weights", [[0.1], [0.2]]), "layers[0].weights[0]", "expected a row of 2 entries, one per unit of the layer before, got 1 entry"),
    ("weights nan", setter("layers[0].weights", [[float("nan"), 0.2], [0.1, 0.2]]), "layers[0].weights[0][0]", "expected a finite number, got nan"),
    ("weights inf", setter("layers[0].weights", [[float("inf"), 0.2], [0.1, 0.2]]), "layers[0].weights[0][0]", "expected a finite number, got inf"),
    ("weights string", setter("layers[0].weights", [["0.1", 0.2], [0.1, 0.2]]), "layers[0].weights[0][0]", "expected a number, got '0.1'"),
    ("weights bool", setter("layers[0].weights", [[True, 0.2], [0.1, 0.2]]), "layers[0].weights[0][0]", "expected a number, got True"),
    ("weights huge int", setter("layers[0].weights", [[10**400, 0.2], [0.1, 0.2]]), "layers[0].weights[0][0]", "expected a finite number"),
    ("biases length", setter("layers[0].biases", [0.1, 0.2]), "layers[0].biases", "expected a list of one shared bias, got 2 entries"),
    ("biases per unit length", lambda d: d["layers"][0].update(bias="per_unit", biases=[0.1]), "layers[0].biases", "expected a list of 2 biases, one per unit, got 1 entry"),
    ("biases with none", lambda d: d["layers"][0].update(bias="none"), "layers[0].biases", "bias: none"),
    ("weight_names shape", setter("layers[0].weight_names", [["a", "b"]]), "layers[0].weight_names", "a list of 2 rows"),
    ("weight_names keyword", setter("layers[0].weight_names", [["a", "lambda"], ["c", "d"]]), "layers[0].weight_names[0][1]", "Python keyword"),
    ("weight_names duplicate", setter("layers[0].weight_names", [["a", "b"], ["c", "a"]]), "layers[0].weight_names[1][1]", "already used by layers[0].weight_names[0][0]"),
    ("unit equals input", setter("layers[0].units", ["i1", "h2"]), "layers[0].units[0]", "already used by inputs[0]"),
    ("target equals unit", setter("targets", ["h1", "t2"]), "targets[0]", "already used by layers[0].units[0]"),
    ("layer name equals unit", setter("layers[1].name", "h1"), "layers[1].name", "already used by layers[0].units[0]"),
    ("targets length", setter("targets", ["t1"]), "targets", "expected a list of 2 names, got 1 entry"),
    ("freeze unknown", setter("layers[0].freeze", ["weight"]), "layers[0].freeze[0]", "did you mean 'weights'?"),
    ("unknown loss", setter("loss", "mse2"), "loss", "unknown loss 'mse2' (did you mean 'mse'?)"),
    # issue 13: registry names are lower-case, suggestions match whatever the case
    ("activation Sigmoid", setter("layers[1].activation", "Sigmoid"), "layers[1].activation", "unknown activation 'Sigmoid' (did you mean 'sigmoid'?)"),
    ("activation name Leaky_ReLU", setter("layers[1].activation", {"name": "Leaky_ReLU"}), "layers[1].activation.name", "(did you mean 'leaky_relu'?)"),
    ("optimizer SGD", setter("optimizer", {"kind": "SGD"}), "optimizer.kind", "unknown optimizer 'SGD' (did you mean 'sgd'?)"),
    ("optimizer Adam", setter("optimizer", "Adam"), "optimizer.kind", "(did you mean 'adam'?)"),
    ("loss MSE", setter("loss", "MSE"), "loss", "unknown loss 'MSE' (did you mean 'mse'?)"),
    ("bias Shared", setter("layers[0].bias", "Shared"), "layers[0].bias", "(did you mean 'shared'?)"),
    ("naming Indexed", setter("naming", "Indexed"), "naming", "(did you mean 'indexed'?)"),
    ("freeze Weights", setter("layers[0].freeze", ["Weights"]), "layers[0].freeze[0]", "(did you mean 'weights'?)"),
    ("key Activation", setter("layers[0].Activation", "relu"), "layers[0].Activation", "unknown key 'Activation' (did you mean 'activation'?)"),
    ("key Optimizer", setter("Optimizer", {"kind": "sgd"}), "Optimizer", "(did you mean 'optimizer'?)"),
    # one entry, one row: no "1 entries"
    ("one target of two", setter("targets", ["t1"]), "targets", "expected a list of 2 names, got 1 entry"),
    ("loss formula without y", setter("loss", {"formula": "t**2"}), "loss.formula", "does not use y"),
    ("loss formula other name", setter("loss", {"formula": "(t - o1)**2"}), "loss.formula", "unknown name 'o1' (known: y, t)"),
    ("loss formula extra", setter("loss", {"formula": "(t-y)**2", "mean": True}), "loss.mean", "unknown key"),
    ("bce needs unit outputs", lambda d: d["layers"][1].update(activation="relu") or d.update(loss="bce"), "loss", "bce needs outputs in (0, 1)"),
    ("ce needs unit outputs", lambda d: d["layers"][1].update(activation="tanh") or d.update(loss="cross_entropy"), "loss", "cross_entropy needs outputs in (0, 1)"),
    ("ce targets sum", lambda d: d.update(loss="cross_entropy", sample={"x": [0, 0], "t": [0.2, 0.3]}), "sample.t", "sum to 1"),
    ("bce targets range", lambda d: d.update(loss="bce", sample={"x": [0, 0], "t": [1.5, 0]}), "sample.t", "targets in [0, 1]"),
    ("sample x length", setter("sample.x", [0.05]), "sample.x", "expected a list of 2 numbers, got 1 entry"),
    ("sample t nan", setter("sample.t", [float("nan"), 0.99]), "sample.t[0]", "finite"),
    ("sample missing t", setter("sample", {"x": [0, 0]}), "sample.t", "required but missing"),
    ("naming", setter("naming", "sequencial"), "naming", "did you mean 'sequential'?"),
    ("optimizer kind", setter("optimizer", {"kind": "adamm"}), "optimizer.kind", "did you mean 'adam'?"),
    ("optimizer missing kind", setter("optimizer", {"lr": 0.1}), "optimizer.kind", "required but missing"),
    ("optimizer not mapping", setter("optimizer", 3), "optimizer", "expected an optimizer name or a mapping"),
    ("optimizer lr zero", setter("optimizer", {"kind": "sgd", "lr": 0}), "optimizer.lr", "expected a number in (0, 1000]"),
    ("optimizer momentum one", setter("optimizer", {"kind": "momentum", "momentum": 1.0}), "optimizer.momentum", "expected a number in [0, 1)"),
    ("optimizer wrong hyper", setter("optimizer", {"kind": "sgd", "momentum": 0.9}), "optimizer.momentum", "unknown key 'momentum'"),
    ("optimizer beta", setter("optimizer", {"kind": "adam", "beta1": 1.2}), "optimizer.beta1", "[0, 1)"),
    ("seed negative", setter("seed", -1), "seed", "expected an integer in [0,"),
    ("seed float", setter("seed", 1.5), "seed", "expected an integer"),
    ("data path", setter("data", {"path": "train.txt"}), "data.path", "a .csv or .npz file"),
    ("data columns", setter("data", {"path": "d.csv", "inputs": [1]}), "data.inputs[0]", "expected a column name"),
    ("data too few inputs", setter("data", {"path": "d.csv", "inputs": ["a"]}), "data.inputs", "expected 2 column names, one per input of the network, got 1"),
    ("data too many targets", setter("data", {"path": "d.csv", "targets": ["a", "b", "c"]}), "data.targets", "expected 2 column names, one per output of the network, got 3"),
    ("data same column twice", setter("data", {"path": "d.csv", "inputs": ["a", "a"]}), "data.inputs", "expected different column names"),
    ("description", setter("description", ["x"]), "description", "expected text, got ['x']"),
    ("description long", setter("description", "x" * 3000), "description", "at most 2,000 characters, got 3,000"),
    ("name lr", setter("layers[0].units", ["lr", "h2"]), "layers[0].units[0]", "'lr' is reserved"),
    ("name weight_decay", setter("layers[0].bias_names", ["weight_decay"]), "layers[0].bias_names[0]", "reserved"),
    ("name E", setter("layers[0].units", ["E", "h2"]), "layers[0].units[0]", "'E' is reserved: E is the loss"),
    ("name step", setter("targets", ["step", "t2"]), "targets[0]", "'step' is reserved"),
    ("formula too big", setter("layers[0].activation", {"formula": " + ".join(f"abs(x - {k})" for k in range(300))}), "layers[0].activation.formula", "at most 400 terms"),
    ("formula (-1)**x", setter("layers[0].activation", {"formula": "(-1)**x"}), "layers[0].activation.formula", "the power is not real (a negative number to a power that is not a whole number) at column 5 of '(-1)**x'"),
    ("formula (-2)**(x/2) in a loss", setter("loss", {"formula": "(y - t)**2 + (-2)**(y/2)"}), "loss.formula", "the power is not real"),
    ("formula too big to build", setter("layers[0].activation", {"formula": " + ".join(f"max(x, {k}*x)" for k in range(150))}), "layers[0].activation.formula", "at most 400 terms"),
    ("formula max 6 deep", setter("layers[0].activation", {"formula": "max(max(max(max(max(max(x, 0.1*x), 0.1*x), 0.1*x), 0.1*x), 0.1*x), 0.1*x)"}), "layers[0].activation.formula", "nested at most 3 deep"),
    ("ce targets off by 1e-10", lambda d: d.update(loss="cross_entropy", sample={"x": [0, 0], "t": [0.1, 0.9000000001]}), "sample.t", "sum to 1"),
]


@pytest.mark.parametrize("change, field, message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_spec(change: Callable[[dict], Any], field: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        spec_from_data(spec_with(change), "spec.yaml")
    error = caught.value
    assert error.source == "spec.yaml"
    assert error.field == field, str(error)
    assert message in error.message, str(error)
    assert "\n" not in str(error)


@pytest.mark.parametrize(
    "change, field, message",
    [
        (setter("layers[0].units", ["w1", "h2"]), "layers[0].units[0]", "also the name of a parameter"),
        (setter("inputs", ["b2", "i2"]), "inputs[0]", "also the name of a parameter"),
        (setter("layers[0].weight_names", [["w5", "a"], ["b", "c"]]), "layers[0].weight_names[0][0]", "generated name of another parameter (weight of layer 2)"),
        (setter("layers[1].bias_names", ["b1"]), "layers[1].bias_names[0]", "generated name of another parameter (bias of layer 1)"),
    ],
)
def test_names_colliding_with_parameters(change: Callable[[dict], Any], field: str, message: str) -> None:
    spec = spec_from_data(spec_with(change), "spec.yaml")
    with pytest.raises(SpecError) as caught:
        build_network(spec)
    assert caught.value.field == field
    assert message in caught.value.message


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_examples_load(path) -> None:
    spec = example_spec(path.stem)
    assert spec.name == path.stem
    build_network(spec)


def test_three_formats_same_spec() -> None:
    as_json = parse_spec(json.dumps(BASE), "a.json", "json")
    as_yaml = parse_spec(
        """
name: net
inputs: [i1, i2]
layers:
  - {name: h, units: 2, activation: sigmoid, bias: shared, weights: [[0.15, 0.2], [0.25, 0.3]], biases: [0.35]}
  - {name: o, units: 2, activation: sigmoid, bias: shared, weights: [[0.4, 0.45], [0.5, 0.55]], biases: [0.6]}
targets: [t1, t2]
loss: half_sse
sample: {x: [0.05, 0.1], t: [0.01, 0.99]}
optimizer: {kind: sgd, lr: 0.5}
""",
        "a.json",
        "yaml",
    )
    as_toml = parse_spec(
        """
name = "net"
inputs = ["i1", "i2"]
targets = ["t1", "t2"]
loss = "half_sse"
[[layers]]
name = "h"
units = 2
activation = "sigmoid"
bias = "shared"
weights = [[0.15, 0.2], [0.25, 0.3]]
biases = [0.35]
[[layers]]
name = "o"
units = 2
activation = "sigmoid"
bias = "shared"
weights = [[0.4, 0.45], [0.5, 0.55]]
biases = [0.6]
[sample]
x = [0.05, 0.1]
t = [0.01, 0.99]
[optimizer]
kind = "sgd"
lr = 0.5
""",
        "a.json",
        "toml",
    )
    assert as_json == as_yaml == as_toml


def test_defaults() -> None:
    spec = spec_from_data({"name": "n", "inputs": 3, "layers": [{"name": "o", "units": 2, "activation": "relu"}], "loss": "mse"}, "s")
    assert spec.inputs == ("x1", "x2", "x3")
    assert spec.targets == ("t1", "t2")
    assert spec.layers[0].units == ("o1", "o2")
    assert spec.layers[0].bias is BiasMode.PER_UNIT
    assert spec.naming is Naming.SEQUENTIAL
    assert spec.optimizer.kind == "sgd" and spec.optimizer.value("lr") == 0.1
    assert spec.sample is None and spec.seed == 0


def test_unit_names_after_a_digit() -> None:
    spec = spec_from_data({"name": "n", "inputs": 1, "layers": [{"name": "h1", "units": 2, "activation": "relu"}], "loss": "mse"}, "s")
    assert spec.layers[0].units == ("h1_1", "h1_2")


def test_spec_is_frozen() -> None:
    spec = spec_from_data(copy.deepcopy(BASE), "s")
    with pytest.raises(AttributeError):
        spec.name = "other"  # type: ignore[misc]
    assert hash(spec.layers[0]) == hash(spec.layers[0])


def test_a_formula_over_several_lines_is_shown_on_one():
    """A formula's line breaks (a YAML block) are white space: summaries, comments and the
    architecture line show it on one line."""
    from chainrule.derive.spec import spec_from_data

    spec = spec_from_data({"name": "nl", "inputs": 1, "layers": [{"name": "h", "units": 1, "activation": {"formula": "x\n*2"}},
                                                                  {"name": "o", "units": 1, "activation": "sigmoid"}],
                           "loss": {"formula": "(y -\n\tt)**2"}}, "nl.yaml")
    assert spec.layers[0].activation.formula == "x *2" and spec.loss.formula == "(y - t)**2"
