"""Per-weight (scalar) chains of convolutions, pools and flattens (issue 16 phase 2).

A kernel weight is shared: its chain is the sum over every position where it multiplies a real
input. The chains' numbers against the layer form and PyTorch float64 (tests/test_conv.py's
modules) on seeded random small networks (ties in max-pools, padding, stride 2, two channels,
conv1d); the names (k11, the indexed rule, weight_names); the max-pool's factor (PyTorch's tie
rule); --param on a big network; check per weight; bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sympy
import yaml

from chainrule.codegen.cli import main
from chainrule.derive import derive
from chainrule.derive.chain import ChainRule
from chainrule.derive.check import check_derivation
from chainrule.derive.graph import Graph
from chainrule.derive.kinds import out_definition
from chainrule.derive.spec import spec_from_data
from helpers import needs_torch, torch
from test_conv import SMALL, TIES, _torch_modules, _torch_run, random_conv_spec


def chain_gradients(d) -> dict[str, float]:
    """Each chain's dE/dθ with its deltas (a convolution's weights start at their layer's) written
    out by the chain engine's own factors, sympy's, not taken from the layer form."""
    engine, found = ChainRule(d.network, d.layers), {}
    for name, chain in d.chains.items():
        expr = chain.gradient
        if chain.cut_layer is not None:
            units = d.network.units(chain.cut_layer)
            expr = expr.xreplace({s: engine.unit_gradient(("net", chain.cut_layer, units.index(s.name[len("delta_"):])))
                                  for s in expr.free_symbols if s.name.startswith("delta_")})
        found[name] = d.reduce([d.value(expr, row) for row in range(d.values.samples)]) + d.penalty_value(chain)
    return found


def layer_gradients(d) -> dict[str, float]:
    return {ref.name: d.gradient(ref) for ref in d.network.parameters()}


def assert_chains_are_the_layer_form(d) -> None:
    assert d.small
    chains, layer = chain_gradients(d), layer_gradients(d)
    assert chains.keys() == layer.keys()
    for name in layer:
        assert chains[name] == pytest.approx(layer[name], rel=1e-10, abs=1e-13), name


#: The cases the brief names: ties in a max-pool, padding, stride 2, two channels, conv1d.
CASES = {
    "ties": TIES,
    "small": SMALL,
    "padding and stride 2": {
        "name": "ps", "inputs": {"shape": [1, 5, 5]},
        "layers": [{"name": "c", "kind": "conv2d", "channels": 1, "kernel": 3, "stride": 2, "padding": 1, "activation": "tanh"},
                   {"name": "f", "kind": "flatten"}, {"name": "o", "units": 2, "activation": "sigmoid"}],
        "loss": "half_sse", "seed": 3},
    "two channels": {
        "name": "two", "inputs": {"shape": [2, 4, 4]},
        "layers": [{"name": "c", "kind": "conv2d", "channels": 2, "kernel": 2, "stride": 1, "padding": 0, "activation": "relu"},
                   {"name": "p", "kind": "maxpool2d", "kernel": 3}, {"name": "f", "kind": "flatten"},
                   {"name": "o", "units": 2, "activation": "softmax"}],
        "loss": "cross_entropy", "seed": 5,
        "sample": {"x": [[[1, 0, 1, 0], [0, 1, 0, 1], [1, 1, 0, 0], [0, 0, 1, 1]], [[0.5, 0.5, 0, 1], [1, 0, 0.5, 0], [0, 0, 1, 1], [0.5, 1, 0, 0]]],
                   "t": [0, 1]}},
    "conv1d": {
        "name": "c1", "inputs": {"shape": [2, 7]},
        "layers": [{"name": "c", "kind": "conv1d", "channels": 2, "kernel": 3, "stride": 2, "padding": 1, "activation": "tanh"},
                   {"name": "p", "kind": "avgpool1d", "kernel": 2}, {"name": "f", "kind": "flatten"},
                   {"name": "o", "units": 2, "activation": "sigmoid"}], "loss": "bce", "seed": 4},
    "two convolutions": {
        "name": "cc", "inputs": {"shape": [1, 5, 5]},
        "layers": [{"name": "c", "kind": "conv2d", "channels": 2, "kernel": 2, "activation": "tanh"},
                   {"name": "d", "kind": "conv2d", "channels": 1, "kernel": 2, "stride": 2, "activation": "sigmoid"},
                   {"name": "f", "kind": "flatten"}, {"name": "o", "units": 1, "activation": "identity"}], "loss": "half_sse", "seed": 2},
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_chains_are_the_layer_forms(case):
    assert_chains_are_the_layer_form(derive(spec_from_data(CASES[case], case)))


@pytest.mark.parametrize("seed", range(12), ids=lambda s: f"small-conv-{s}")
def test_random_small_networks_chains_are_the_layer_forms(seed):
    spec = random_conv_spec(seed)
    d = derive(spec_from_data(spec, f"seed {seed}"))
    if not d.small:
        pytest.skip("a network past the small limits takes the layer route")
    assert_chains_are_the_layer_form(d)


def test_the_random_small_networks_cover_the_kinds():
    small = [random_conv_spec(s) for s in range(12) if derive(spec_from_data(random_conv_spec(s), "s")).small]
    kinds = {layer.get("kind") for spec in small for layer in spec["layers"]}
    assert len(small) >= 6 and {"conv1d", "conv2d", "flatten"} <= kinds and kinds & {"maxpool1d", "maxpool2d"}


@needs_torch
@pytest.mark.parametrize("case", sorted(CASES))
def test_the_chains_are_torchs(case):
    d = derive(spec_from_data(CASES[case], case))
    modules, params = _torch_modules(d)
    _torch_run(d, modules).backward()
    chains = chain_gradients(d)
    for ref in d.network.parameters():
        layer = [l for l, spec in enumerate(d.network.spec.layers, start=1) if spec.has_parameters].index(ref.layer)
        weight, bias = params[layer]
        grad = weight.grad.numpy().reshape(weight.shape[0], -1)[ref.row, ref.col] if ref.is_weight else bias.grad.numpy()[ref.row]
        assert chains[ref.name] == pytest.approx(float(grad), rel=1e-10, abs=1e-13), ref.name


def test_kernel_names():
    d = derive(spec_from_data(SMALL, "small"))
    assert [p.name for p in d.network.parameters()] == ["k11", "k12", "k21", "k22", "b1", "w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8", "b2", "b3"]
    two = derive(spec_from_data(CASES["two convolutions"], "cc")).network
    names = [p.name for p in two.parameters()]
    assert names[:3] == ["k1_1_1_1_1", "k1_1_1_1_2", "k1_1_1_2_1"] and "k2_1_2_2_2" in names and "w1" in names
    one_d = derive(spec_from_data(CASES["conv1d"], "c1")).network
    assert [p.name for p in one_d.parameters()][:4] == ["k1_1_1_1", "k1_1_1_2", "k1_1_1_3", "k1_1_2_1"]
    for network in (d.network, two, one_d):
        for ref in network.parameters():
            assert network.locate(ref.name) == ref
    assert d.network.locate("k13") is None and d.network.locate("k011") is None and two.locate("k1_3_1_1_1") is None
    indexed = derive(spec_from_data({**SMALL, "naming": "indexed"}, "i")).network
    assert [p.name for p in indexed.parameters()][:6] == ["k11", "k12", "k21", "k22", "b1_1", "w2_11"]


def test_a_one_channel_conv1d_and_a_wide_kernel():
    spec = {"name": "w", "inputs": {"shape": [1, 12, 12]},
            "layers": [{"name": "c", "kind": "conv2d", "channels": 1, "kernel": [1, 10], "activation": "tanh"},
                       {"name": "f", "kind": "flatten"}, {"name": "o", "units": 1, "activation": "identity"}], "loss": "half_sse"}
    network = derive(spec_from_data(spec, "w")).network
    names = [p.name for p in network.parameters()]
    assert names[:2] == ["k1_1", "k1_2"] and names[9] == "k1_10"
    one = {"name": "o", "inputs": {"shape": [1, 6]},
           "layers": [{"name": "c", "kind": "conv1d", "channels": 1, "kernel": 3, "activation": "tanh"},
                      {"name": "f", "kind": "flatten"}, {"name": "o", "units": 1, "activation": "identity"}], "loss": "half_sse"}
    assert [p.name for p in derive(spec_from_data(one, "o")).network.parameters()][:3] == ["k1", "k2", "k3"]


def test_weight_names_nested_as_the_kernel_win():
    layers = [dict(SMALL["layers"][0], weight_names=[[[["a1", "a2"], ["a3", "a4"]]]], bias_names=["beta"]), *SMALL["layers"][1:]]
    d = derive(spec_from_data({**SMALL, "layers": layers}, "named"))
    assert [p.name for p in d.network.parameters()][:5] == ["a1", "a2", "a3", "a4", "beta"]
    assert d.chain_gradient(d.chains["a2"]) == pytest.approx(derive(spec_from_data(SMALL, "s")).chain_gradient(derive(spec_from_data(SMALL, "s")).chains["k12"]))


def test_a_kernel_weight_is_read_by_every_position_it_multiplies_a_real_input():
    d = derive(spec_from_data(CASES["padding and stride 2"], "ps"))
    graph = Graph(d.network)
    # a 3x3 kernel, stride 2, padding 1 on 5x5: 3x3 positions; k11 lands on the padding in the first row and column
    assert len(graph.readers(("param", "k11"))) == 4 and len(graph.readers(("param", "k22"))) == 9
    assert len(graph.readers(("param", "b1"))) == 9
    paths = d.chains["k11"].paths  # from the deltas of layer c: a term at each of the 4 positions
    assert len(paths) == 4 and len({path.factors[-1].of for path in paths}) == 4 and d.chains["k11"].paths_from_E == 8
    paths = ChainRule(d.network, d.layers, shared_from_deltas=False).chain(d.chains["k11"].param).paths  # from E: through each of the 2 outputs too
    assert len(paths) == 8 and len({path.factors[-1].of for path in paths}) == 4


def test_the_max_pools_factor_routes_to_the_first_largest():
    d = derive(spec_from_data(TIES, "ties"))
    engine, net = ChainRule(d.network, d.layers), d.network
    factor = engine.factor(("out", 1, 0), ("out", 0, 0))
    assert "row-major" in factor.note and "PyTorch" in factor.note
    # the first window [[1, 1], [0, 1]]: x_1_1_1 is the first largest
    values = [d.factor_value(engine.factor(("out", 1, 0), ("out", 0, u))) for u in (0, 1, 4, 5)]
    assert values == [1.0, 0.0, 0.0, 0.0]
    # away from ties the factor is sympy's derivative of Max
    a, b, c, e = sympy.symbols("a b c e", real=True)
    definition = out_definition(net, 1, 0)
    for wrt in sorted(definition.free_symbols, key=lambda s: s.name):
        f = engine.factor(("out", 1, 0), ("out", 0, d.network.units(0).index(wrt.name)))
        point = dict(zip(sorted(definition.free_symbols, key=lambda s: s.name), (0.1, 0.7, 0.3, 0.2)))
        assert float(f.human.subs(point)) == float(sympy.diff(definition, wrt).subs(point))


def test_derive_prints_the_sum_over_positions(tmp_path, capsys):
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(SMALL))
    assert main(["derive", str(path)]) == 0
    text = capsys.readouterr().out
    assert "dE/dk11: the sum over the 16 positions of layer c where k11 is used" in text
    assert "delta_c_1_1_1 * x_1_1_1 = " in text and "p_1_1_1     = max(out_c_1_1_1, out_c_1_1_2, out_c_1_2_1, out_c_1_2_2)" in text
    assert main(["derive", str(path), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["form"] == "scalar" and {"k11", "k22", "b1", "w8"} <= document["gradients"].keys()
    assert "net_c_1_1_1" in document["forward"] and "p_1_2_2" in document["forward"] and len(document["chains"]["k11"]) == 16


def test_param_on_a_big_conv_network(tmp_path, capsys):
    from test_conv import BIG

    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(BIG))
    assert main(["derive", str(path), "--param", "k11"]) == 0
    text = capsys.readouterr().out
    assert "dE/dk11: the sum over the 196 positions of layer c where k11 is used" in text
    assert "... (188 more)" in text and "(196 terms)" in text
    d = derive(spec_from_data(BIG, "big"), params=["k11", "b1"])
    assert not d.small
    for name in ("k11", "b1"):
        assert d.chain_gradient(d.chains[name]) == pytest.approx(d.gradient(d.network.locate(name)), rel=1e-10, abs=1e-13)


@pytest.mark.parametrize("case", ["small", "two channels", "conv1d"])
def test_check_per_weight(case):
    result = check_derivation(derive(spec_from_data(CASES[case], case)))
    assert result.passed and any(g.form == "scalar" for g in result.groups)


@pytest.mark.parametrize("name", ["k13", "w9", "k1_1_1_1_1"])
def test_a_param_that_is_no_parameter_is_one_line(name, tmp_path, capsys):
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(SMALL))
    assert main(["derive", str(path), "--param", name]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--param" in err and "k11" in err


@pytest.mark.parametrize("name,says", [("W1", "'W1' is layer c's weights (a matrix); --param takes one parameter, such as 'k11'"),
                                       ("W2", "'W2' is layer o's weights (a matrix); --param takes one parameter, such as 'w1'")])
def test_a_matrix_name_is_said_to_be_a_matrix(name, says, tmp_path, capsys):
    """A kernel's matrix name (``W1``) is not answered with a dense weight's name (``w1``)."""
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(SMALL))
    assert main(["derive", str(path), "--param", name]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err, err


def test_a_weight_name_that_clashes_with_a_kernel_name_is_refused(tmp_path, capsys):
    layers = [*SMALL["layers"][:3], dict(SMALL["layers"][3], weight_names=[["k11", "v2", "v3", "v4"], ["v5", "v6", "v7", "v8"]])]
    path = tmp_path / "clash.yaml"
    path.write_text(yaml.safe_dump({**SMALL, "layers": layers}))
    assert main(["derive", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "weight_names[0][0]" in err and "k11" in err


def test_an_uncut_chain_is_sympys_derivative_of_the_expanded_loss():
    """Paths from E (no cut): the closed form equals sympy.diff of E written out in the inputs and
    parameters, at the sample (the symbolic level of the checks)."""
    from chainrule.derive.chain import expanded_loss

    d = derive(spec_from_data(CASES["padding and stride 2"], "ps"))
    loss = expanded_loss(d.network, d.expanded)
    env = d.envs[0]
    point = {s: sympy.Float(float(env[s.name]), 30) for s in loss.free_symbols}
    engine = ChainRule(d.network, d.layers, shared_from_deltas=False)
    for name in ("k11", "k13", "k31", "w5"):  # k22 and b1, used at all 9 positions: cut at the deltas
        chain = engine.chain(d.network.locate(name))
        assert chain.cut_layer is None
        symbol = sympy.Symbol(name, real=True)
        # the other symbols as numbers first: sympy then differentiates an expression in one
        alone = loss.xreplace({s: v for s, v in point.items() if s != symbol})
        expected = float(sympy.diff(alone, symbol).xreplace({symbol: point[symbol]}))
        closed = chain.gradient.xreplace(dict(d.expanded))
        assert float(closed.xreplace({s: point[s] for s in closed.free_symbols})) == pytest.approx(expected, rel=1e-10)
        assert d.chain_gradient(chain) == pytest.approx(expected, rel=1e-10) == d.chain_gradient(d.chains[name])


def test_the_notebook_of_a_network_that_starts_with_a_pool():
    from chainrule.codegen.report.notebook import derivation_html

    d = derive(spec_from_data(TIES, "ties"))
    assert "w1" in derivation_html(d, "ties", "") and d.network.weight_name(3, 0, 0) == "w1"


def test_derive_param_writes_a_kernel_weight_from_the_deltas(capsys):
    """conv_worked's --param k11: a term per position, the sum of those not 0, and their deltas
    worked one step up with the max-pool's factor in words; no step(max(...)), and the closed form
    is not repeated (it is the sum itself). The numbers are the layer form's."""
    from helpers import ROOT

    assert main(["derive", str(ROOT / "examples" / "conv_worked.yaml"), "--param", "k11"]) == 0
    out = capsys.readouterr().out
    section = out.split("dE/dk11: ", 1)[1].split("Layer form", 1)[0]
    assert section.count("delta_c_1_") >= 16 and "step(" not in section and "in inputs, targets and parameters" not in section
    assert "dE/dk11 = delta_c_1_1_4*x_1_1_4 + delta_c_1_3_3*x_1_3_3 + delta_c_1_4_2*x_1_4_2 (the 3 terms not 0 on the sample)" in section
    assert ("delta_c_1_1_4 = dE/dp_1_1_2 * dp_1_1_2/dout_c_1_1_4 * dout_c_1_1_4/dnet_c_1_1_4 = w2*(out_o1 - t1) * "
            "(1 if out_c_1_1_4 is the window's largest, else 0) * out_c_1_1_4*(1 - out_c_1_1_4)") in section
    assert "= 0.150423019 * 1 * 0.149146452 = 0.0224350595" in section
    assert "dE/dk11 = 0 + 0 + 0 + 0.0224350595" in section and section.rstrip().endswith("0.529741203")
    assert len(section) < 3000  # 13,371 characters with the 16 paths from E


@pytest.mark.parametrize("seed", range(12), ids=lambda s: f"small-conv-{s}")
def test_the_worked_deltas_are_the_layer_forms(seed):
    """Each delta derive and the report work one step up (dE/dR * dR/dout * dout/dnet over the units
    R reading the output, each factor sympy's) is the layer form's delta."""
    from chainrule.codegen.terminal.describe import describe_deltas

    d = derive(spec_from_data(random_conv_spec(seed), f"seed {seed}"))
    if not d.small or d.batch:
        pytest.skip("deltas are worked for one sample of a small network")
    worked = [delta for chain in d.chains.values() for delta in describe_deltas(d, chain)]
    assert worked or all(chain.cut_layer != chain.param.layer for chain in d.chains.values())
    for delta in worked:
        factors = np.array(delta.factors).reshape(-1, 3)
        assert float(np.sum(np.prod(factors, axis=1))) == pytest.approx(float(d.env[delta.name]), rel=1e-10, abs=1e-14) == pytest.approx(delta.value)


def test_derive_says_who_takes_the_gradient_at_a_tie(capsys):
    """conv_tie (a tester's, issue 16 D4): windows tie 3, 2 and 4 ways on the sample; where a
    worked delta's max-pool factor is at a tie, derive's text and JSON say whom it ties with and
    that the first in row-major order takes the gradient, as PyTorch; a window without a tie is
    written as before."""
    from helpers import ROOT

    spec = str(ROOT / "tests" / "data" / "conv_tie.yaml")
    assert main(["derive", spec, "--param", "k11"]) == 0
    section = capsys.readouterr().out.split("dE/dk11: ", 1)[1].split("Layer form", 1)[0]
    assert ("(1 if out_c_1_1_1 is the window's largest, else 0: tied with out_c_1_1_2 and out_c_1_2_1 here, 1 for the first in "
            "row-major order, as PyTorch)") in section
    assert "(1 if out_c_1_3_2 is the window's largest, else 0: tied with out_c_1_4_2 here," in section
    assert "(1 if out_c_1_1_4 is the window's largest, else 0) *" in section
    assert main(["derive", spec, "--json"]) == 0
    assert "tied with out_c_1_1_2 and out_c_1_2_1 here, 1 for the first in row-major order, as PyTorch" in capsys.readouterr().out


def test_the_tie_words_name_the_first_for_a_later_unit():
    from chainrule.derive.kinds.pool import tie_text

    assert tie_text("out_c_1_1_2", ["out_c_1_1_1", "out_c_1_1_2"]) == (
        "(1 if out_c_1_1_2 is the window's largest, else 0: tied with out_c_1_1_1 here, 1 for the first in row-major order, "
        "out_c_1_1_1, as PyTorch)")
