"""A seeded generator of random *valid* network specs, for property tests.

Each spec draws a depth, widths, an activation per layer (registry entries and formulas), a bias
mode per layer, a loss that suits the output layer, a naming scheme, an optimizer and explicit
weights, biases and a sample. ``spec_id`` names a spec readably, so that a failure says which.
"""

from __future__ import annotations

import random
from typing import Any

ELEMENTWISE = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "gelu", "swish"]
FORMULAS = ["x / (1 + abs(x))", "x * tanh(log(1 + exp(x)))", "sin(x) + x / 2", "x * sigmoid(1.702 * x)"]
FORMULA_LOSSES = ["(t - y)**2 / 2 + (t - y)**4 / 4", "log((exp(y - t) + exp(t - y)) / 2)"]
OPTIMIZERS = {
    "sgd": {"lr": 0.1, "weight_decay": 0.01},
    "momentum": {"lr": 0.05, "momentum": 0.8},
    "nesterov": {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.001},
    "rmsprop": {"lr": 0.01},
    "adam": {"lr": 0.01, "weight_decay": 0.01},
    "adamw": {"lr": 0.01},
}


def _activation(rng: random.Random, units: int, allow_softmax: bool) -> Any:
    roll = rng.random()
    if allow_softmax and units >= 2 and roll < 0.08:
        return "softmax"
    if roll < 0.2:
        return {"formula": rng.choice(FORMULAS)}
    name = rng.choice(ELEMENTWISE)
    if name in ("leaky_relu", "elu") and rng.random() < 0.5:
        return {"name": name, "alpha": round(rng.uniform(0.05, 1.5), 2)}
    return name


def _output_and_loss(rng: random.Random, units: int) -> tuple[Any, str | dict]:
    loss = rng.choice(["half_sse", "sse", "mse", "bce", "cross_entropy", "formula"])
    if loss == "cross_entropy":
        return ("softmax" if units >= 2 else "sigmoid"), loss
    if loss == "bce":
        return "sigmoid", loss
    if loss == "formula":
        return rng.choice(["identity", "tanh", "sigmoid"]), {"formula": rng.choice(FORMULA_LOSSES)}
    return _activation(rng, units, allow_softmax=True), loss


def _targets(rng: random.Random, loss: Any, units: int) -> list[float]:
    if loss == "cross_entropy":
        if units == 1:
            return [1.0]
        weights = [rng.random() for _ in range(units)]
        hot = rng.randrange(units)
        return [w / sum(weights) for w in weights] if rng.random() < 0.5 else [float(i == hot) for i in range(units)]
    if loss == "bce":
        return [rng.choice([0.0, 1.0, rng.random()]) for _ in range(units)]
    return [rng.uniform(-1, 1) for _ in range(units)]


def random_spec(seed: int, max_depth: int = 3, max_width: int = 4, max_inputs: int = 4) -> dict[str, Any]:
    """A valid spec (as plain data) drawn from ``seed``."""
    rng = random.Random(seed)
    inputs = rng.randint(1, max_inputs)
    depth = rng.randint(1, max_depth)
    widths = [rng.randint(1, max_width) for _ in range(depth)]
    layers = []
    before = inputs
    for index, units in enumerate(widths):
        last = index == depth - 1
        if last:
            activation, loss = _output_and_loss(rng, units)
        else:
            activation = _activation(rng, units, allow_softmax=True)
        bias = rng.choice(["per_unit", "per_unit", "shared", "none"])
        layer: dict[str, Any] = {"name": "hgkmnpq"[index] if not last else "o", "units": units, "activation": activation, "bias": bias}
        layer["weights"] = [[round(rng.gauss(0, 1 / before**0.5), 6) for _ in range(before)] for _ in range(units)]
        count = {"per_unit": units, "shared": 1, "none": 0}[bias]
        if count:
            layer["biases"] = [round(rng.gauss(0, 0.3), 6) for _ in range(count)]
        if rng.random() < 0.1:
            layer["freeze"] = [rng.choice(["weights", "biases"])]
        layers.append(layer)
        before = units
    kind = rng.choice(sorted(OPTIMIZERS))
    return {
        "name": f"net{seed}",
        "inputs": inputs,
        "layers": layers,
        "loss": loss,
        "naming": rng.choice(["sequential", "indexed"]),
        "sample": {"x": [round(rng.uniform(-1, 1), 6) for _ in range(inputs)], "t": _targets(rng, loss, widths[-1])},
        "optimizer": {"kind": kind, **OPTIMIZERS[kind]},
        "seed": seed,
    }


def spec_id(seed: int, **sizes: int) -> str:
    data = random_spec(seed, **sizes)
    acts = []
    for layer in data["layers"]:
        act = layer["activation"]
        acts.append("formula" if isinstance(act, dict) and "formula" in act else act["name"] if isinstance(act, dict) else act)
    loss = data["loss"] if isinstance(data["loss"], str) else "formula"
    sizes = "-".join(str(s) for s in [data["inputs"]] + [l["units"] for l in data["layers"]])
    return f"s{seed}-{sizes}-{'.'.join(acts)}-{loss}"


def with_activation_layers(data: dict[str, Any], seed: int) -> dict[str, Any]:
    """``data`` (a :func:`random_spec`) with layers without weights (``kind: activation``) put
    in, drawn from ``seed`` by a generator of their own (the spec's other draws are unchanged): one
    before the first layer, between layers and after the last, one or two in a row; where the
    output is softmax or sigmoid, that activation is at times moved to a layer of its own after an
    identity or tanh output (the loss then reads it: cross-entropy or bce stay valid)."""
    rng = random.Random(seed * 7919 + 17)
    names = iter(f"a{chr(ord('a') + i)}" for i in range(26))
    layers: list[dict[str, Any]] = []
    width = data["inputs"]

    def some(units: int, last: bool) -> list[dict[str, Any]]:
        added = []
        for _ in range(rng.choice([1, 1, 2])):
            activation = _activation(rng, units, allow_softmax=not last and units >= 2)
            added.append({"name": next(names), "kind": "activation", "activation": activation})
        return added

    for index, layer in enumerate(data["layers"]):
        if rng.random() < (0.3 if index == 0 else 0.4):
            layers += some(width, last=False)
        layers.append(layer)
        width = layer["units"]
    output = layers[-1]
    moved = output["activation"] in ("softmax", "sigmoid") and rng.random() < 0.6
    if moved:
        layers.append({"name": next(names), "kind": "activation", "activation": output["activation"]})
        output["activation"] = rng.choice(["identity", "tanh"])
        if rng.random() < 0.4:  # two in a row at the output: an elementwise one, then the moved one
            layers.insert(-1, {"name": next(names), "kind": "activation", "activation": rng.choice(["tanh", "sigmoid", "identity"])})
    elif not isinstance(data["loss"], str) or data["loss"] in ("half_sse", "sse", "mse"):
        if rng.random() < 0.5:
            layers += some(width, last=True)
    return {**data, "name": f"{data['name']}act", "layers": layers}
