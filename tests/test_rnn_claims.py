"""verify on rnns (issue 16): claims about W's, U's and b's gradients, hidden units at a step
(dE/dh1_t1), values, formulas, chains and steps are judged; the mistakes of backpropagation
through time are named (the path through h_(t+1) left out, a step left out of a shared weight's
sum, U's factor taken at h_t), each from a rule of the chain engine; bad claims are one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from chainrule.codegen.cli import main
from chainrule.codegen.files import load_spec
from chainrule.derive import derive
from chainrule.derive.chain import ChainRule
from chainrule.derive.hand.claims import parse_claims
from chainrule.derive.graph import MAX_PATHS
from chainrule.derive.hand.verify import Verifier
from chainrule.derive.sequences import sum_over_steps
from chainrule.derive.spec import spec_from_data
from helpers import ROOT
from test_conv_claims import _judge, _keys
from test_rnn import random_rnn_spec
from test_rnn_chains import _small_rnn

EXAMPLE = ROOT / "examples" / "bptt_worked.yaml"
CLAIMS = ROOT / "examples" / "claims" / "bptt_worked_claims.yaml"


def test_the_example_claims_are_judged_as_their_comments_say():
    v = Verifier(derive(load_spec(str(EXAMPLE))))
    verdicts = v.verify(parse_claims(CLAIMS.read_text(), str(CLAIMS), "yaml", v.network, v.graph))
    assert [verdict.correct for verdict in verdicts] == [True] * 13 + [False] * 4
    assert _keys(verdicts[13])[0] == "next_step_left_out"
    assert _keys(verdicts[14])[0] == "step_left_out" and "t = 2" in verdicts[14].findings[0].words
    assert _keys(verdicts[15])[0] == "recurrent_wrong_step"
    assert _keys(verdicts[16]) == ["dropped_path"] and "out_h1_t2, out_h1_t1 is missing" in verdicts[16].findings[0].words


def test_the_example_from_the_command_line(capsys):
    assert main(["verify", str(EXAMPLE), str(CLAIMS)]) == 1
    out = capsys.readouterr().out
    assert "13 of 17 right" in out and "the path through the next step is left out" in out


def test_the_mistakes_are_the_engines_rules():
    """Each named mistake is the engine with one rule changed: dnet_h_(t+1)/dh_t as 0, U's factor at h_t."""
    d = derive(spec_from_data(_small_rnn(), "r"))
    v = Verifier(d)
    h = v.graph.node_named("h1_t1")
    no_next = ChainRule(d.network, d.layers, v.graph, recurrence="no_next_step")
    through_y = sum(v.engine.unit_gradient(r) * v.engine.local(r, h) for r in v.graph.readers(h) if r[1] == 2)
    assert no_next.unit_gradient(h) == through_y
    same = ChainRule(d.network, d.layers, v.graph, recurrence="same_step")
    factor = same.factor(v.graph.node_named("net_h1_t2"), ("param", "u12"))
    assert factor.human.name == "out_h2_t2" and v.engine.factor(v.graph.node_named("net_h1_t2"), ("param", "u12")).human.name == "out_h2_t1"


def test_claims_about_every_kind_of_target_on_a_small_rnn():
    d = derive(spec_from_data(_small_rnn(), "r"))
    v = Verifier(d)
    env = v.sample
    value = {name: v.evaluate(v.unit_gradient(v.graph.node_named(name)), env) for name in ("h1_t1", "h2_t2", "net_h1_t2")}
    gradient = {name: d.gradient(d.network.locate(name)) for name in ("w1", "u12", "b2", "w5")}
    text = "claims:\n" + "".join(f"  - {{of: dE/d{n}, value: {x!r}}}\n" for n, x in {**value, **gradient}.items())
    text += "  - {of: net_h1_t2, formula: 'w1*x1_t2 + w2*x2_t2 + u11*h1_t1 + u12*h2_t1 + b1'}\n"
    text += "  - {of: net_h1_t1, formula: 'w1*x1_t1 + w2*x2_t1 + u11*h1_t0 + u12*h2_t0 + b1'}\n"
    text += "  - {of: dE/du12, formula: 'delta_h1_t1*h2_t0 + delta_h1_t2*h2_t1 + delta_h1_t3*h2_t2'}\n"
    text += "  - {of: dE/dw5, chain: 'dE/dnet_y1_t1 * dnet_y1_t1/dw5 + dE/dnet_y1_t3 * dnet_y1_t3/dw5'}\n"
    text += f"  - {{of: w1, step: 1, value: {d.updated(d.network.locate('w1'))!r}}}\n"
    verdicts = _judge(d, text)
    assert all(verdict.correct for verdict in verdicts), [(verdict.label, verdict.diagnosis) for verdict in verdicts if not verdict.correct]


@pytest.mark.parametrize("seed", [2, 4, 13, 20, 24, 31], ids=lambda s: f"rnn-seed{s}")
def test_a_step_left_out_is_named_on_random_rnns(seed):
    d = derive(spec_from_data(random_rnn_spec(seed), f"seed {seed}"))
    if d.batch or d.network.spec.steps < 2:
        pytest.skip("a single sample of several steps")
    v = Verifier(d)
    chain = v.chain_of("w1")
    values = d.path_values(chain)
    terms: dict = {}
    for p, x in zip(chain.paths, values):
        terms[p.factors[-1].of] = terms.get(p.factors[-1].of, 0.0) + x
    largest = max(terms, key=lambda net: abs(terms[net]))  # the step whose term matters most
    if abs(terms[largest]) < 1e-6:
        pytest.skip("w1's terms are all about 0 (dead relu units)")
    without = d.gradient(chain.param) - terms[largest]
    verdict = _judge(d, f"claims:\n  - {{of: dE/dw1, value: {without!r}}}\n")[0]
    assert not verdict.correct and _keys(verdict)[0] in ("step_left_out", "next_step_left_out"), verdict.diagnosis


def test_a_big_rnn_is_judged_by_its_deltas():
    d = derive(load_spec(str(ROOT / "examples" / "sequence_sum.yaml")))
    assert not d.small
    v = Verifier(d)
    h = v.graph.node_named("h1_t7")
    expected = v.evaluate(v.unit_gradient(h), v.sample)
    deltas = d.sample.deltas
    units = d.network.sizes[1]
    through = float(d.values.W[1][0, 0] * deltas[1][0, 6] + d.values.W[0][:, 1:][:, 0] @ deltas[0][0, 7 * units:8 * units])
    assert expected == pytest.approx(through, rel=1e-12)
    verdicts = _judge(d, f"claims:\n  - {{of: dE/dh1_t7, value: {expected!r}}}\n  - {{of: dE/du1_2, value: {d.gradient(d.network.locate('u1_2'))!r}}}\n")
    assert all(verdict.correct for verdict in verdicts)
    assert np.isfinite(expected)


# -- a factor dnet_h_t/dw is local (issue 16, tester 18's D1) ------------------------------------

RNN_A = {"name": "rnn_a", "inputs": ["x1", "x2"], "steps": 3, "layers": [
    {"name": "h", "kind": "rnn", "units": 2, "activation": "tanh", "weights": [[0.3, -0.2], [0.1, 0.4]],
     "recurrent_weights": [[0.5, -0.3], [0.2, 0.1]], "biases": [0.05, -0.1], "initial": [0.1, -0.2]},
    {"name": "y", "units": 2, "activation": "identity", "weights": [[0.7, -0.5], [0.3, 0.9]], "biases": [0.01, 0.02]}],
    "loss": "half_sse", "sample": {"x": [[1.0, 0.5], [-0.5, 2.0], [0.3, -1.0]], "t": [[0.2, 0.4], None, [0.5, -0.3]]}}


def _delta_form(v, name: str, leave_out: int | None = None) -> str:
    """``dE/dnet_h1_t1*dnet_h1_t1/dw1 + ...``: a term per net reading ``name`` that E depends on (all but
    ``leave_out``)."""
    readers = [v.graph.name(n) for n in v.graph.readers(("param", name)) if v.graph.count(("E",), n)]  # a last step without targets: none
    return " + ".join(f"dE/d{net}*d{net}/d{name}" for i, net in enumerate(readers) if i != leave_out)


def _derived_chain(v, name: str) -> str:
    return " + ".join(" * ".join(f"d{f.of.name}/d{f.wrt.name}" for f in p.factors) for p in v.chain_of(name).paths)


@pytest.mark.parametrize("spec", ["bptt_worked", "rnn_a"])
def test_right_chains_through_time_are_right(spec):
    """dnet_h1_t2/dw1 is the local derivative (x1_t2), as derive prints it: its chain pasted in,
    the delta form summed over the steps, for W, U and b, are right, each path counted once."""
    d = derive(load_spec(str(EXAMPLE)) if spec == "bptt_worked" else spec_from_data(RNN_A, "rnn_a.yaml"))
    v = Verifier(d)
    rnn = [p.name for p in d.network.parameters() if p.layer == 1]
    text = "claims:\n" + "".join(f"  - {{of: dE/d{n}, chain: '{_derived_chain(v, n)}'}}\n  - {{of: dE/d{n}, chain: '{_delta_form(v, n)}'}}\n"
                                 f"  - {{of: dE/d{n}, formula: '{_delta_form(v, n)}'}}\n" for n in rnn)
    verdicts = _judge(d, text)
    assert len(verdicts) == 3 * len(rnn)
    assert all(verdict.correct for verdict in verdicts), [(verdict.label, verdict.diagnosis) for verdict in verdicts if not verdict.correct]
    assert not any(verdict.note for verdict in verdicts[1::3]), [verdict.note for verdict in verdicts[1::3]]  # a delta per step needs no note


def test_the_testers_chains_on_bptt_worked():
    d = derive(load_spec(str(EXAMPLE)))
    full = ("dE/dout_y1_t1 * dout_y1_t1/dnet_y1_t1 * dnet_y1_t1/dout_h1_t1 * dout_h1_t1/dnet_h1_t1 * dnet_h1_t1/dw1 + "
            "dE/dout_y1_t2 * dout_y1_t2/dnet_y1_t2 * dnet_y1_t2/dout_h1_t2 * dout_h1_t2/dnet_h1_t2 * dnet_h1_t2/dout_h1_t1 * dout_h1_t1/dnet_h1_t1 * dnet_h1_t1/dw1 + "
            "dE/dout_y1_t2 * dout_y1_t2/dnet_y1_t2 * dnet_y1_t2/dout_h1_t2 * dout_h1_t2/dnet_h1_t2 * dnet_h1_t2/dw1")
    missing = "dE/dnet_h1_t2*dnet_h1_t2/dw1 + dE/dy1_t1*dy1_t1/dnet_y1_t1*dnet_y1_t1/dh1_t1*dh1_t1/dnet_h1_t1*dnet_h1_t1/dw1"
    verdicts = _judge(d, f"claims:\n  - {{of: dE/dw1, chain: '{full}'}}\n"
                         "  - {of: dE/dw1, chain: 'dE/dnet_h1_t1*dnet_h1_t1/dw1 + dE/dnet_h1_t2*dnet_h1_t2/dw1'}\n"
                         "  - {of: dE/db1, chain: 'dE/dnet_h1_t1*dnet_h1_t1/db1 + dE/dnet_h1_t2*dnet_h1_t2/db1'}\n"
                         f"  - {{of: dE/dw1, chain: '{missing}'}}\n")
    assert [verdict.correct for verdict in verdicts] == [True, True, True, False]
    wrong = verdicts[3].findings[0]
    assert wrong.mistake == "dropped_path" and "out_y1_t2, out_h1_t2, out_h1_t1 is missing" in wrong.words, wrong.words
    assert wrong.formula == "dE/dout_y1_t2 * dout_y1_t2/dnet_y1_t2 * dnet_y1_t2/dout_h1_t2 * dout_h1_t2/dnet_h1_t2 * dnet_h1_t2/dout_h1_t1 * dout_h1_t1/dnet_h1_t1 * dnet_h1_t1/dw1"


@pytest.mark.parametrize("seed", [2, 4, 13, 20, 24, 31], ids=lambda s: f"rnn-seed{s}")
def test_a_step_left_out_of_the_delta_form_is_wrong_on_random_rnns(seed):
    d = derive(spec_from_data(random_rnn_spec(seed), f"seed {seed}"))
    v = Verifier(d)
    if d.network.spec.steps < 2 or not d.small or max(v.graph.count(("E",), ("param", n)) for n in ("w1", "u11")) > MAX_PATHS:
        pytest.skip("a small rnn of several steps, its chains judged (at most MAX_PATHS paths)")
    right = _judge(d, f"claims:\n  - {{of: dE/du11, chain: '{_delta_form(v, 'u11')}'}}\n  - {{of: dE/dw1, chain: '{_delta_form(v, 'w1')}'}}\n")
    assert all(verdict.correct for verdict in right), [verdict.diagnosis for verdict in right]
    wrong = _judge(d, f"claims:\n  - {{of: dE/dw1, chain: '{_delta_form(v, 'w1', leave_out=0)}'}}\n")[0]
    assert not wrong.correct and _keys(wrong) == ["step_left_out"] and "the step t = 1 is left out" in wrong.diagnosis, wrong.diagnosis


def test_a_local_factor_of_a_shared_weight_is_its_partial_derivative():
    d = derive(load_spec(str(EXAMPLE)))
    v = Verifier(d)
    net, out = v.graph.symbol_named("net_h1_t2"), v.graph.symbol_named("h1_t2")
    assert v.partial_value(net, v.graph.symbol_named("w1")).name == "x1_t2"
    assert v.partial_value(net, v.graph.symbol_named("u11")).name == "out_h1_t1"
    total = v.partial_value(out, v.graph.symbol_named("w1"))  # dh1_t2/dw1 is no local derivative: both paths
    assert total.has(v.graph.symbol_named("x1_t1")) and total.has(v.graph.symbol_named("x1_t2"))


# -- tester 18's D2, D3, D6 and the count of steps -------------------------------------------------

def test_u_untransposed_in_the_delta_recursion_is_named():
    """dE/dh_j_t sums delta_hk_(t+1)*u_kj over k; written with u_jk (U's row) it is the engine's
    ``transposed`` rule, named in a value below it and in a formula."""
    d = derive(spec_from_data(RNN_A, "rnn_a.yaml"))
    v = Verifier(d)
    net, h = v.graph.node_named("net_h1_t2"), v.graph.node_named("h2_t1")
    transposed = ChainRule(d.network, d.layers, v.graph, recurrence="transposed")
    assert v.engine.local(net, h).name == "u12" and transposed.local(net, h).name == "u21"
    verdicts = _judge(d, "claims:\n  - {of: dE/dh2_t1, value: -0.0903272}\n  - {of: dE/du12, value: -0.147077}\n"
                         "  - {of: dE/dh1_t2, formula: 'delta_h1_t3*u11 + delta_h2_t3*u12'}\n"
                         "  - {of: dE/dh1_t2, formula: 'delta_h1_t3*u11 + delta_h2_t3*u21'}\n")
    assert [verdict.correct for verdict in verdicts] == [False, False, False, True]
    assert all(_keys(verdict)[0] == "recurrent_transposed" for verdict in verdicts[:3]), [verdict.diagnosis for verdict in verdicts]
    one_unit = derive(load_spec(str(EXAMPLE)))  # U of one unit is its own transpose: no such mistake
    assert not any("recurrent_transposed" in _keys(verdict) for verdict in _judge(one_unit, "claims:\n  - {of: dE/dh1_t1, value: -0.2}\n"))


RNN_2 = {"name": "rnn2", "inputs": ["x1", "x2"], "steps": 3, "layers": [
    {"name": "h", "kind": "rnn", "units": 2, "activation": "sigmoid", "weights": [[0.3, -0.2], [0.1, 0.4]],
     "recurrent_weights": [[0.5, -0.3], [0.2, 0.6]], "biases": [0.1, -0.1], "initial": [0.0, 0.0]},
    {"name": "y", "units": 1, "activation": "tanh", "weights": [[0.7, -0.4]], "biases": [0.05]}],
    "loss": "half_sse", "sample": {"x": [[1.0, 0.5], [-0.5, 1.0], [0.2, -0.3]], "t": [[0.3], None, [-0.2]]}}


def test_u_untransposed_at_a_step_with_its_own_loss_is_named():
    """Tester 19: dE/dh1_t1 = its own loss's path + delta_h1_t2*u11 + delta_h2_t2*u12 (U's row,
    with the right deltas of step 2): untransposed in that hop alone, named as such."""
    d = derive(spec_from_data(RNN_2, "rnn2.yaml"))
    verdicts = _judge(d, "claims:\n  - {of: dE/dh1_t1, formula: '(y1_t1-t1_t1)*(1-y1_t1**2)*w5 + delta_h1_t2*u11 + delta_h2_t2*u12'}\n"
                         "  - {of: dE/dh1_t1, value: -0.0415663}\n  - {of: dE/dh1_t1, value: -0.0463876}\n")
    assert [verdict.correct for verdict in verdicts] == [False, False, True]
    assert [_keys(verdict)[:1] for verdict in verdicts[:2]] == [["recurrent_transposed"], ["recurrent_transposed"]], [v.diagnosis for v in verdicts]


def test_a_chain_leaving_out_a_step_names_it():
    """Tester 19: a per-step chain of w1 without step 2's term is step_left_out, as its value is."""
    d = derive(spec_from_data(RNN_2, "rnn2.yaml"))
    verdict = _judge(d, "claims:\n  - {of: dE/dw1, chain: 'dE/dnet_h1_t1*dnet_h1_t1/dw1 + dE/dnet_h1_t3*dnet_h1_t3/dw1'}\n")[0]
    assert not verdict.correct and _keys(verdict) == ["step_left_out"], verdict.findings
    assert "the step t = 2 is left out of the sum over the 3 steps where w1 is used" in verdict.findings[0].words


def test_a_sign_flipped_in_one_term_of_a_hidden_state_is_named():
    """Tester 19: dE/dh1_t1 with the sign of its own loss's term flipped (t - y for y - t)."""
    d = derive(spec_from_data(RNN_2, "rnn2.yaml"))
    verdict = _judge(d, "claims:\n  - {of: dE/dh1_t1, formula: '(t1_t1 - y1_t1)*(1 - y1_t1**2)*w5 + delta_h1_t2*u11 + delta_h2_t2*u21'}\n")[0]
    assert not verdict.correct and _keys(verdict) == ["sign"] and "the sign of the term through net_y1_t1 is flipped" in verdict.diagnosis


def test_a_target_of_a_step_without_targets_is_named():
    d = derive(spec_from_data(RNN_A, "rnn_a.yaml"))
    verdict = _judge(d, "claims:\n  - {of: dE/dh1_t2, formula: '(y1_t2 - t1_t2)*w5 + delta_h1_t3*u11 + delta_h2_t3*u21'}\n")[0]
    assert not verdict.correct and _keys(verdict) == ["target_without_loss"]
    words = verdict.findings[0].words
    assert "t1_t2 is a target at step 2, where the sample has none (null)" in words and "dE/dout_y1_t2 is 0" in words and "nan" not in words


def test_a_value_of_a_target_at_a_step_without_targets_is_refused(tmp_path, capsys):
    """Tester 19: ``of: t1_t2`` where step 2's targets are null got 'expected: nan'."""
    spec, claims = tmp_path / "rnn_a.yaml", tmp_path / "c.yaml"
    spec.write_text(yaml.safe_dump(RNN_A), encoding="utf-8")
    claims.write_text("claims:\n  - {of: t1_t1, value: 0.5}\n  - {of: t1_t2, value: 0.5}\n", encoding="utf-8")
    assert main(["verify", str(spec), str(claims)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "c.yaml: claims[1].of: t1_t2 is a target at step 2, where the sample has none (null)" in err, err


#: Claims on names an rnn spec does not have, what the one line says, and what it must not say.
UNKNOWN_NAMES = [
    ("dE/dh1_t5", "'h1_t5' is neither", ()),
    ("h3_t1", "unknown name 'h3_t1'", ()),
    ("dE/du21", "'u21' is neither", ()),
    ("h1", "'h1' is at every step of the sequence: give its step, h1_t1 ... h1_t2", ("neither", "unknown")),
    ("dE/dh1", "'h1' is at every step of the sequence: give its step, h1_t1 ... h1_t2", ("neither", "unknown")),
    ("x1", "'x1' is at every step of the sequence: give its step, x1_t1 ... x1_t2", ("neither", "unknown")),
    ("dE/dh1_t0", "'h1_t0' is h_0, the initial state of layer h: a constant of the spec (its initial), not a parameter or a unit, and not trained",
     ("neither", "unknown")),
]


@pytest.mark.parametrize("of, message, absent", UNKNOWN_NAMES, ids=[u[0] for u in UNKNOWN_NAMES])
def test_a_claim_on_a_step_or_unit_the_spec_lacks_is_one_line(of, message, absent, tmp_path, capsys):
    """A step or unit that does not exist, a unit without its step, h_0: one line, exit 2."""
    claims = tmp_path / "c.yaml"
    claims.write_text(f"claims:\n  - {{of: {of}, value: 1}}\n", encoding="utf-8")
    assert main(["verify", str(EXAMPLE), str(claims)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "claims[0].of" in err and not any(a in err for a in absent), err


def test_a_weight_above_the_rnn_counts_the_steps_with_targets(capsys, tmp_path):
    """rnn_a's step 2 has no targets: w5 (the dense layer's) is used at 3 steps, 2 of them with
    targets; the rnn's own weights reach a loss from every step."""
    spec = tmp_path / "rnn_a.yaml"
    spec.write_text(json.dumps(RNN_A), encoding="utf-8")
    assert main(["derive", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "dE/dw5: the sum over the 2 steps with targets, of the 3 where w5 is used, 2 paths" in out
    assert "dE/dw1: the sum over the 3 steps where w1 is used, 16 paths" in out
    d = derive(spec_from_data(RNN_A, "rnn_a.yaml"))
    left_out = d.gradient(d.network.locate("w5")) - float(d.path_values(d.chains["w5"])[0])
    verdict = _judge(d, f"claims:\n  - {{of: dE/dw5, value: {left_out!r}}}\n")[0]
    assert _keys(verdict)[0] == "step_left_out" and "the step t = 1 is left out of the sum over the 2 steps with targets, of the 3 where w5 is used" in verdict.findings[0].words
    last_null = dict(RNN_A, sample={"x": RNN_A["sample"]["x"], "t": [[0.2, 0.4], [0.1, 0.0], None]})
    assert sum_over_steps(spec_from_data(last_null, "r"), 1, "w1", 2) == "the sum over the 2 steps up to the last with targets, of the 3 where w1 is used"
    assert sum_over_steps(spec_from_data(last_null, "r"), 2, "w5", 1) == "used at 3 steps, one of them leading to a loss"
