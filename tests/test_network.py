"""Parameter naming (sequential, indexed, the spec's own names), lookup without enumeration, and
seeded values that do not depend on what else the spec gives."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from chainrule.derive.network import build_network, initial_values
from chainrule.derive.spec import spec_from_data
from helpers import example, example_spec

SMALL = {
    "name": "n",
    "inputs": ["i1", "i2"],
    "layers": [{"name": "h", "units": 2, "activation": "sigmoid"}, {"name": "o", "units": 2, "activation": "sigmoid", "bias": "shared"}],
    "loss": "half_sse",
}


def net(**changes):
    data = copy.deepcopy(SMALL)
    data.update(changes)
    return build_network(spec_from_data(data, "s"))


def test_sequential_names_follow_the_worked_example() -> None:
    network = example("mazur").network
    names = [p.name for p in network.parameters()]
    assert names == ["w1", "w2", "w3", "w4", "b1", "w5", "w6", "w7", "w8", "b2"]
    # w1 = i1->h1, w2 = i2->h1, w3 = i1->h2, w5 = h1->o1, w7 = h1->o2 (spec.md section 1)
    assert network.locate("w2").row == 0 and network.locate("w2").col == 1
    assert network.locate("w3").row == 1 and network.locate("w3").col == 0
    assert (network.locate("w7").layer, network.locate("w7").row, network.locate("w7").col) == (2, 1, 0)


def test_sequential_per_unit_biases() -> None:
    assert [p.name for p in net().parameters()] == ["w1", "w2", "w3", "w4", "b1", "b2", "w5", "w6", "w7", "w8", "b3"]


def test_indexed_names() -> None:
    names = [p.name for p in net(naming="indexed").parameters()]
    assert names == ["w1_11", "w1_12", "w1_21", "w1_22", "b1_1", "b1_2", "w2_11", "w2_12", "w2_21", "w2_22", "b2"]


def test_indexed_names_separate_wide_indices() -> None:
    network = build_network(spec_from_data({"name": "n", "inputs": 12, "layers": [{"name": "o", "units": 2, "activation": "relu"}], "loss": "mse", "naming": "indexed"}, "s"))
    assert network.weight_name(1, 1, 10) == "w1_2_11"
    assert network.locate("w1_2_11").col == 10
    assert network.locate("w1_211") is None


def test_weight_names_from_the_spec() -> None:
    network = example("textbook_121").network
    assert [p.name for p in network.parameters()] == ["w11", "w12", "b11", "b12", "w21", "w22", "b21"]
    assert network.locate("w21").layer == 2 and network.locate("w21").col == 0


@pytest.mark.parametrize("name", ["w0", "w11", "b3", "w01", "wx", "W1", "w1_33", "b9_1", "", "w99999999999999"])
def test_locate_unknown(name: str) -> None:
    assert example("mazur").network.locate(name) is None


def test_locate_every_parameter_of_a_big_network_by_pattern() -> None:
    network = example("mlp_784_128_10").network
    assert network.locate("w101632").layer == 2
    assert network.locate("b138").row == 9
    assert network.locate("w101633") is None and network.locate("b139") is None


def test_every_name_round_trips() -> None:
    for name in ("mazur", "textbook_121", "softmax_classifier", "deep_tanh_relu"):
        network = example(name).network
        for ref in network.parameters():
            assert network.locate(ref.name) == ref


def test_seeded_values_are_deterministic_and_per_layer() -> None:
    spec = example_spec("softmax_classifier")
    a, b = initial_values(build_network(spec)), initial_values(build_network(spec))
    assert all(np.array_equal(x, y) for x, y in zip(a.W, b.W))
    data = copy.deepcopy(SMALL)
    data["layers"][0]["weights"] = [[1.0, 2.0], [3.0, 4.0]]
    given = initial_values(build_network(spec_from_data(data, "s")))
    seeded = initial_values(net())
    assert np.array_equal(given.W[1], seeded.W[1])  # giving layer 1 leaves layer 2's seed alone
    assert not given.W[0].flags.writeable


def test_seeded_sample_is_valid_for_the_loss() -> None:
    values = initial_values(example("mlp_784_128_10").network)
    assert values.seeded_sample and values.t.sum() == 1 and set(values.t) == {0.0, 1.0}
    assert np.all((values.x >= 0) & (values.x < 1))
