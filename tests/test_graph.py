"""The network's one graph (derive/graph.py): its edges as each layer kind lays them, its path
counts and paths against a brute-force walk, and the names people write."""

from __future__ import annotations

import pytest

from chainrule.derive.graph import LOSS, Graph, TooManyPaths
from chainrule.derive.network import build_network
from chainrule.derive.spec import parse_spec, spec_from_data
from generator import random_spec
from helpers import example_spec

SOFTMAX_SHARED = """name: softmax_shared
inputs: [x1, x2]
layers:
  - {name: h, units: 3, activation: tanh, bias: shared}
  - {name: o, units: 3, activation: softmax}
loss: cross_entropy
naming: sequential
"""


def graph_of(text: str) -> Graph:
    return Graph(build_network(parse_spec(text, "net.yaml", "yaml")))


def test_a_softmax_output_reads_every_net_of_its_layer() -> None:
    g = graph_of(SOFTMAX_SHARED)
    nets = tuple(("net", 2, j) for j in range(3))
    assert all(g.children(("out", 2, r)) == nets for r in range(3))
    assert g.readers(("net", 2, 1)) == tuple(("out", 2, j) for j in range(3))
    assert g.children(("out", 1, 1)) == (("net", 1, 1),)  # tanh: its own net alone
    assert g.readers(("net", 1, 1)) == (("out", 1, 1),)
    assert g.children_through(LOSS) == nets
    assert g.count(LOSS, ("net", 2, 0)) == 3 and g.count(("out", 2, 0), ("net", 1, 2)) == 3


def test_a_net_reads_the_outputs_below_its_weights_and_its_bias() -> None:
    g = Graph(build_network(example_spec("mazur")))
    assert [g.name(n) for n in g.children(("net", 2, 0))] == ["out_h1", "out_h2", "w5", "w6", "b2"]
    assert [g.name(n) for n in g.children(LOSS)] == ["out_o1", "out_o2", "t1", "t2"]
    assert g.children(("out", 0, 0)) == () and g.children(("param", "w5")) == ()
    assert g.readers(("param", "w5")) == (("net", 2, 0),) and g.readers(("out", 2, 1)) == (LOSS,)
    assert g.readers(("out", 1, 0)) == (("net", 2, 0), ("net", 2, 1))


def test_a_shared_bias_feeds_every_net_of_its_layer() -> None:
    g = graph_of(SOFTMAX_SHARED)
    bias = ("param", "b1")
    assert g.readers(bias) == tuple(("net", 1, r) for r in range(3))
    assert all(bias in g.children(("net", 1, r)) for r in range(3))
    assert [g.count(("net", 1, r), bias) for r in range(3)] == [1, 1, 1]
    assert g.count(LOSS, bias) == 3 * 3 * 3  # 3 outputs, each reading 3 nets, each reading 3 hidden units
    assert {p[-2] for p in g.paths(LOSS, bias)} == {("net", 1, r) for r in range(3)}


def brute_paths(g: Graph, above: tuple, below: tuple) -> list[tuple]:
    """Every path by the plain recursion over children, without counts, memos or ranks."""
    if above == below:
        return [(below,)]
    return [(above,) + tail for child in g.children(above) for tail in brute_paths(g, child, below)]


@pytest.mark.parametrize("seed", range(12))
def test_counts_and_paths_agree_with_brute_force(seed: int) -> None:
    g = Graph(build_network(spec_from_data(random_spec(seed, max_depth=3, max_width=3), f"s{seed}")))
    net = g.network
    units = [(kind, l, r) for l in range(net.depth + 1) for r in range(net.sizes[l]) for kind in ("out", "net") if l > 0 or kind == "out"]
    below = units + [("param", p.name) for p in net.parameters()] + [("target", t) for t in net.spec.targets]
    for a in [LOSS] + units:
        for b in below:
            truth = brute_paths(g, a, b)
            assert g.count(a, b) == len(truth), (a, b)
            assert g.paths(a, b) == truth, (a, b)


def test_too_many_paths() -> None:
    layers = [{"name": f"h{i}", "units": 6, "activation": "tanh"} for i in range(4)] + [{"name": "o", "units": 6, "activation": "sigmoid"}]
    g = Graph(build_network(spec_from_data({"name": "wide", "inputs": 2, "layers": layers, "loss": "mse"}, "wide.yaml")))
    first = ("param", g.network.weight_name(1, 0, 0))
    assert g.count(LOSS, first) == 6**4
    with pytest.raises(TooManyPaths, match="1,296 paths"):
        g.paths(LOSS, first)
    assert len(g.paths(LOSS, first, limit=2000)) == 6**4


def test_a_count_past_a_billion_is_told_as_its_size() -> None:
    layers = [{"name": f"h{i}", "units": 10, "activation": "tanh"} for i in range(12)] + [{"name": "o", "units": 10, "activation": "sigmoid"}]
    g = Graph(build_network(spec_from_data({"name": "deep", "inputs": 2, "layers": layers, "loss": "mse"}, "deep.yaml")))
    first = ("param", g.network.weight_name(1, 0, 0))
    assert g.count(LOSS, first) == 10**12
    with pytest.raises(TooManyPaths, match=r"^about 1\.0e\+12 paths$"):
        g.paths(LOSS, first)


def test_names_as_people_write_them() -> None:
    g = Graph(build_network(example_spec("mazur")))
    assert g.node_named("h1") == g.node_named("out_h1") == ("out", 1, 0)
    assert g.node_named("net_o2") == ("net", 2, 1)
    assert g.node_named("i2") == ("out", 0, 1) and g.node_named("t1") == ("target", "t1")
    assert g.node_named("E") == LOSS and g.node_named("w5") == ("param", "w5")
    assert g.node_named("lr") is None and g.node_named("out_i1") is None
    assert g.path_text(g.paths(LOSS, ("param", "w5"))[0]) == "dE/dout_o1 * dout_o1/dnet_o1 * dnet_o1/dw5"
    assert [g.rank(n) for n in (("out", 0, 0), ("param", "w1"), ("net", 1, 0), ("out", 1, 0), ("target", "t1"))] == [1, 1, 2, 3, -1]
