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
    from chainrule.derive.layers import compile_layers

    broken = dataclasses.replace(d, layers=layers, numbers=compile_layers(d.network, layers))
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
