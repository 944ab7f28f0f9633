"""The rnn's per-weight chains through time (issue 16): names per step, the graph unrolled over
the steps, each shared weight's gradient as the sum over the steps where it is used, against the
layer form, sympy's own diff of the expanded loss and PyTorch float64."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sympy

from chainrule.codegen.cli import main
from chainrule.derive import derive
from chainrule.derive.chain import expanded_loss
from chainrule.derive.check import check_derivation
from chainrule.derive.graph import LOSS, Graph
from chainrule.derive.network import build_network, real_symbol
from chainrule.derive.spec import spec_from_data
from helpers import EXAMPLES, example, needs_torch, torch
from test_rnn import SEEDS, _torch_loss, _torch_model, random_rnn_spec


def _spec(seed: int):
    return spec_from_data(random_rnn_spec(seed), f"seed {seed}")


def _small_rnn(**changes) -> dict:
    data = {"name": "r", "inputs": 2, "steps": 3, "layers": [
        {"name": "h", "kind": "rnn", "units": 2, "activation": "tanh", "initial": [0.2, -0.1]},
        {"name": "y", "units": 1, "activation": "sigmoid"}], "loss": "bce",
        "sample": {"x": [[1.0, 0.5], [-0.3, 0.2], [0.4, -0.8]], "t": [[1.0], None, [0.0]]}, "seed": 3}
    data.update(changes)
    return data


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"rnn-seed{s}")
def test_every_chain_equals_the_layer_form(seed):
    """Every weight's sum over the steps (paths from E, or cut at the deltas per step), each
    sample's then reduced, equals BPTT's gradient within 1e-10."""
    d = derive(_spec(seed))
    assert d.small and set(d.chains) == {ref.name for ref in d.network.parameters()}
    for chain in d.chains.values():
        assert d.chain_gradient(chain) == pytest.approx(d.gradient(chain.param), rel=1e-10, abs=1e-13)


@needs_torch
@pytest.mark.parametrize("seed", SEEDS[::3], ids=lambda s: f"rnn-seed{s}")
def test_every_chain_equals_torch(seed):
    d = derive(_spec(seed))
    steps = d.network.spec.steps
    X, T = (a.reshape(d.values.samples, steps, -1) for a in (d.values.X, d.values.T))
    run, params = _torch_model(d)
    _torch_loss(d, run(torch.tensor(X)), torch.tensor(T)).backward()
    layers = [l for l, layer in enumerate(d.network.spec.layers, start=1) if layer.has_parameters]
    for l, (W, U, b) in zip(layers, params):
        before = d.network.sizes[l - 1]
        for ref in (r for r in d.network.parameters() if r.layer == l):
            if not ref.is_weight:
                expected = b.grad.numpy()[ref.row]
            elif ref.col < before:
                expected = W.grad.numpy()[ref.row, ref.col]
            else:
                expected = U.grad.numpy()[ref.row, ref.col - before]
            assert d.chain_gradient(d.chains[ref.name]) == pytest.approx(float(expected), rel=1e-10, abs=1e-13), ref.name


def test_the_chains_are_sympys_diff_of_the_expanded_loss():
    """Where the paths run from E (not cut), their sum is dE/dθ of the loss written out in
    inputs and parameters, differentiated by sympy, at the sample."""
    d = derive(spec_from_data(_small_rnn(steps=2, sample={"x": [[1.0, 0.5], [-0.3, 0.2]], "t": [[1.0], [0.0]]}), "r"))
    loss = expanded_loss(d.network, d.expanded)
    env = d.env
    values = {s: float(env[s.name]) for s in loss.free_symbols}
    for name, chain in d.chains.items():
        assert chain.cut_layer is None
        exact = float(sympy.diff(loss, real_symbol(name)).xreplace(values))
        assert d.chain_gradient(chain) == pytest.approx(exact, rel=1e-10), name


def test_the_graph_unrolls_over_the_steps():
    net = build_network(spec_from_data(_small_rnn(), "r"))
    graph = Graph(net)
    node = graph.node_named
    # net_h1_t2 reads the inputs at step 2, h at step 1 and its parameters
    assert graph.children(node("net_h1_t2")) == (node("x1_t2"), node("x2_t2"), node("h1_t1"), node("h2_t1"),
                                                  ("param", "w1"), ("param", "w2"), ("param", "u11"), ("param", "u12"), ("param", "b1"))
    assert graph.children(node("net_h1_t1"))[:2] == (node("x1_t1"), node("x2_t1"))  # h_0 is a constant, no node
    # h1_t1 is read by the layer above at step 1 and by every net of h at step 2: two kinds of paths
    assert set(graph.readers(node("h1_t1"))) == {node("net_y1_t1"), node("net_h1_t2"), node("net_h2_t2")}
    assert graph.readers(node("h1_t3")) == (node("net_y1_t3"),)  # no step after the last
    # the loss reads the steps with targets (step 2's are null)
    assert graph.unit_children(LOSS) == (node("y1_t1"), node("y1_t3"), ("target", "t1_t1"), ("target", "t1_t3"))
    assert graph.readers(node("y1_t2")) == ()
    # a shared weight is read at every step
    assert graph.readers(("param", "u12")) == (node("net_h1_t1"), node("net_h1_t2"), node("net_h1_t3"))
    assert graph.readers(("param", "w5")) == (node("net_y1_t1"), node("net_y1_t2"), node("net_y1_t3"))


def test_every_factor_is_sympys_diff_of_the_units_definition():
    d = derive(spec_from_data(_small_rnn(), "r"))
    net_h1_t2 = d.expanded  # noqa: F841 - the definitions are the kind's: w1*x1_t2 + w2*x2_t2 + u11*out_h1_t1 + u12*out_h2_t1 + b1
    from chainrule.derive.kinds import net_definition
    network = d.network
    s = {n: real_symbol(n) for n in ("w1", "w2", "u11", "u12", "b1", "x1_t2", "x2_t2", "out_h1_t1", "out_h2_t1", "out_h1_t0", "out_h2_t0", "x1_t1", "x2_t1")}
    assert net_definition(network, 1, 2) == s["w1"] * s["x1_t2"] + s["w2"] * s["x2_t2"] + s["u11"] * s["out_h1_t1"] + s["u12"] * s["out_h2_t1"] + s["b1"]
    assert net_definition(network, 1, 0) == s["w1"] * s["x1_t1"] + s["w2"] * s["x2_t1"] + s["u11"] * s["out_h1_t0"] + s["u12"] * s["out_h2_t0"] + s["b1"]
    factors = {(f.of.name, f.wrt.name): f for chain in d.chains.values() for path in chain.paths for f in path.factors}
    assert factors[("net_h1_t2", "out_h1_t1")].derivative == s["u11"]
    assert factors[("net_h1_t2", "u12")].derivative == s["out_h2_t1"]
    assert factors[("net_h1_t1", "u12")].human == s["out_h2_t0"] and d.env["out_h2_t0"] == -0.1  # h_0's entry, the spec's initial


def test_u_has_its_own_names_and_w_keeps_the_dense_scheme():
    net = build_network(spec_from_data(_small_rnn(), "r"))
    names = [ref.name for ref in net.parameters()]
    assert names == ["w1", "w2", "u11", "u12", "w3", "w4", "u21", "u22", "b1", "b2", "w5", "w6", "b3"]
    assert all(net.locate(n) is not None and net.locate(n).name == n for n in names)
    assert net.locate("u12").col == 3 and net.locate("w3").col == 0 and net.locate("w3").row == 1
    assert net.locate("u13") is None and net.locate("u31") is None and net.locate("w7") is None
    indexed = build_network(spec_from_data(_small_rnn(naming="indexed"), "r"))
    assert [ref.name for ref in indexed.parameters()][:6] == ["w1_11", "w1_12", "u1_11", "u1_12", "w1_21", "w1_22"]
    assert indexed.locate("u1_12").col == 3 and indexed.locate("w1_13") is None
    two = _small_rnn()
    two["layers"] = [two["layers"][0], {"name": "g", "kind": "rnn", "units": 1, "activation": "relu"}, two["layers"][1]]
    net = build_network(spec_from_data(two, "r"))
    assert [ref.name for ref in net.parameters() if net.recurrent(ref)] == ["u1_11", "u1_12", "u1_21", "u1_22", "u2_11"]
    wide = build_network(spec_from_data(_small_rnn(layers=[{"name": "h", "kind": "rnn", "units": 10, "activation": "tanh"},
                                                           {"name": "y", "units": 1, "activation": "sigmoid"}]), "r"))
    assert (wide.locate("u10_3").row, wide.locate("u10_3").col) == (9, 2 + 2) and wide.weight_name(1, 0, 2 + 9) == "u1_10"


def test_null_targets_and_batches_check_per_weight():
    data = _small_rnn(samples=[{"x": [[1.0, 0.5], [-0.3, 0.2], [0.4, -0.8]], "t": [[1.0], None, [0.0]]},
                               {"x": [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]], "t": [None, [1.0], [1.0]]}])
    del data["sample"]
    d = derive(spec_from_data(data, "r"))
    assert d.small and d.batch
    result = check_derivation(d)
    assert result.passed and any(g.form == "scalar" for g in result.groups)
    for chain in d.chains.values():
        assert d.chain_gradient(chain) == pytest.approx(d.gradient(chain.param), rel=1e-10, abs=1e-13)


def test_derive_prints_each_weights_sum_over_the_steps(capsys):
    assert main(["derive", str(EXAMPLES / "bptt_worked.yaml")]) == 0
    out = capsys.readouterr().out
    assert "net_h1_t2 = w1*x1_t2 + u11*out_h1_t1 + b1 = 0.5*2 + 0.1*0.462117157 + 0 = 1.04621172" in out
    assert "dE/dw1: the sum over the 2 steps where w1 is used, 3 paths" in out
    assert "dE/dw1 = (-0.119171503) + (-0.0270255717) + (-0.687282081) = -0.833479155" in out  # dE_dW1 of the layer form
    assert "dE/du11 = 0 + 0 + (-0.158802421) = -0.158802421" in out and "dE_dh0_h   = [-0.0146197075]" in out


def test_the_chains_agree_with_the_reports_numbers_step_by_step():
    """bptt_worked's report (generated/) gives dE/dW1 = delta_h[1] x[1] + delta_h[2] x[2] with
    its numbers: the paths of w1 ending at net_h1_t1 sum to the first term, at net_h1_t2 to the second."""
    d = example("bptt_worked")
    tex = (EXAMPLES.parent / "generated" / "bptt_worked.tex").read_text(encoding="utf-8")
    assert r"(\val{-0.146197075})\cdot \val{1} + (\val{-0.34364104})\cdot \val{2}" in tex
    for name, terms in (("w1", (-0.146197075 * 1, -0.34364104 * 2)), ("b1", (-0.146197075, -0.34364104))):
        chain = d.chains[name]
        values = d.path_values(chain)
        by_step = [sum(v for p, v in zip(chain.paths, values) if p.factors[-1].of.name == f"net_h1_t{t}") for t in (1, 2)]
        assert by_step == pytest.approx(terms, rel=1e-8)


def test_big_rnns_cut_at_the_deltas_per_step(capsys):
    assert main(["derive", str(EXAMPLES / "sequence_sum.yaml"), "--param", "u1_2"]) == 0
    out = capsys.readouterr().out
    assert "dE/du1_2: the sum over the 8 steps where u1_2 is used" in out
    assert "delta_h1_t2 * out_h2_t1 = " in out and "delta_h1_t1 * out_h2_t0 = " in out
    d = derive(example("bptt_worked").network.spec, ())  # a small one is never cut
    assert all(c.cut_layer is None for c in d.chains.values())


def test_derive_json_keys(capsys):
    assert main(["derive", "--json", str(EXAMPLES / "bptt_worked.yaml")]) == 0
    small = json.loads(capsys.readouterr().out)
    assert small["form"] == "scalar" and list(small["gradients"]) == ["w1", "u11", "b1", "w2"]
    assert small["forward"]["out_h1_t2"] == pytest.approx(0.780329185) and "net_y1_t1" in small["forward"]
    assert small["initial_gradients"]["h0_h"] == pytest.approx([-0.0146197075])
    assert main(["derive", "--json", str(EXAMPLES / "sequence_sum.yaml")]) == 0
    big = json.loads(capsys.readouterr().out)
    assert big["form"] == "layer" and list(big["gradients"]) == ["W1", "U1", "b1", "W2", "b2"]


@pytest.mark.parametrize("param, message", [
    ("U1", "'U1' is layer h's recurrent_weights (a matrix); --param takes one parameter, such as 'u11'"),
    ("u21", "no parameter named 'u21' (did you mean 'u11'?)"),
    ("h1_t1", "no parameter named 'h1_t1'"),
])
def test_a_param_that_is_no_parameter_is_one_line(param, message, capsys):
    assert main(["derive", str(EXAMPLES / "bptt_worked.yaml"), "--param", param]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "--param" in err, err


def test_no_count_of_one_with_a_plural(capsys):
    """'used at one step', 'the term not 0': never 'the 1 steps' or 'the 1 term' (the
    random rnns of 1 to 5 steps, cut and not)."""
    import re

    from chainrule.codegen.terminal.text import render_derivation

    pattern = re.compile(r"(?<![\w.,\-])1 [a-z]+s\b|\bthe 1 ")
    for seed in SEEDS:
        text = render_derivation(derive(_spec(seed)))
        assert not pattern.findall(text), (seed, pattern.findall(text))
