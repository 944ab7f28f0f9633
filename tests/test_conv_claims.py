"""verify over feature maps (issue 16 phase 2): claims about kernel weights (value, formula as the
sum over positions, step), pooled and convolution units and the inputs under a kernel are
judged; the typical mistakes of weight sharing are named (a position left out of a kernel
weight's sum, the kernel not flipped in the deltas below, a max-pool's gradient sent to every
unit of its window or at a tie to the last largest); bad claims are one line."""

from __future__ import annotations

import pytest
import yaml

from chainrule.codegen.cli import main
from chainrule.codegen.files import load_spec
from chainrule.derive import derive
from chainrule.derive.hand.claims import parse_claims
from chainrule.derive.hand.verify import Verifier
from chainrule.derive.spec import spec_from_data
from helpers import ROOT
from test_conv import TIES
from test_conv_chains import CASES

EXAMPLE = ROOT / "examples" / "conv_small.yaml"
CLAIMS = ROOT / "examples" / "claims" / "conv_small_claims.yaml"


def _judge(d, text: str):
    v = Verifier(d)
    return v.verify(parse_claims(text, "c.yaml", "yaml", v.network, v.graph))


def _keys(verdict) -> list[str]:
    return [f.mistake for f in verdict.findings]


def test_the_example_claims_are_judged_as_their_comments_say():
    v = Verifier(derive(load_spec(str(EXAMPLE))))
    verdicts = v.verify(parse_claims(CLAIMS.read_text(), str(CLAIMS), "yaml", v.network, v.graph))
    assert [verdict.correct for verdict in verdicts] == [True] * 11 + [False] * 3
    assert _keys(verdicts[11])[0] == "position_left_out" and "the term at (2,2) is left out" in verdicts[11].findings[0].words
    assert _keys(verdicts[12])[0] == "maxpool_to_every_unit"
    assert _keys(verdicts[13])[0] == "kernel_not_flipped"


def test_the_example_from_the_command_line(capsys):
    assert main(["verify", str(EXAMPLE), str(CLAIMS)]) == 1
    out = capsys.readouterr().out
    assert "11 of 14 right" in out and "the term at (2,2) is left out" in out


def test_a_tie_sent_to_the_last_largest_is_named():
    d = derive(spec_from_data(TIES, "ties"))
    # the first window [[1, 1], [0, 1]]: x_1_1_1 is the first largest (the gradient's), x_1_1_2 and x_1_2_2 tie with it
    v = Verifier(d)
    routed = v.evaluate(v.unit_gradient(v.graph.node_named("x_1_1_1")), v.sample)
    assert routed != 0
    verdicts = _judge(d, "claims:\n  - {of: dE/dx_1_1_1, value: 0}\n  - {of: dE/dx_1_2_2, value: %r}\n  - {of: dE/dx_1_1_1, value: %r}\n" % (routed, routed))
    assert not verdicts[0].correct and _keys(verdicts[0])[0] == "maxpool_wrong_unit"
    assert not verdicts[1].correct and _keys(verdicts[1])[0] in ("maxpool_to_every_unit", "maxpool_wrong_unit")
    assert verdicts[2].correct


def test_kernel_weight_formulas_and_chains():
    d = derive(spec_from_data(CASES["padding and stride 2"], "ps"))
    chain = d.chains["k11"]
    positions = sorted({p.factors[-1].of.name for p in chain.paths})
    assert positions == ["net_c_1_2_2", "net_c_1_2_3", "net_c_1_3_2", "net_c_1_3_3"]
    right = "delta_c_1_2_2*x_1_2_2 + delta_c_1_2_3*x_1_2_4 + delta_c_1_3_2*x_1_4_2 + delta_c_1_3_3*x_1_4_4"
    left_out = "delta_c_1_2_2*x_1_2_2 + delta_c_1_2_3*x_1_2_4 + delta_c_1_3_2*x_1_4_2"
    verdicts = _judge(d, f"claims:\n  - {{of: dE/dk11, formula: '{right}'}}\n  - {{of: dE/dk11, formula: '{left_out}'}}\n"
                         f"  - {{of: dE/dk11, value: {d.gradient(d.network.locate('k11'))!r}}}\n")
    assert verdicts[0].correct, verdicts[0].diagnosis
    assert not verdicts[1].correct and "the term at (3,3) is left out" in verdicts[1].diagnosis
    assert verdicts[2].correct


#: The tester's tie: a 3x3 input, the kernel [[1, 0], [0, 0]], so that the conv's first row is [1, 1]
#: (out_c_1_1_1 and out_c_1_1_2 tie in the one 2x2 max-pool window), one linear output w1 = 2, t = 0:
#: dE/dp = 4, routed whole to out_c_1_1_1 (the first largest, as PyTorch).
TIE = {
    "name": "tie",
    "inputs": {"shape": [1, 3, 3]},
    "layers": [
        {"name": "c", "kind": "conv2d", "channels": 1, "kernel": 2, "activation": "identity", "bias": "none", "weights": [[[[1.0, 0.0], [0.0, 0.0]]]]},
        {"name": "p", "kind": "maxpool2d", "kernel": 2},
        {"name": "f", "kind": "flatten"},
        {"name": "o", "units": 1, "activation": "identity", "weights": [[2.0]], "biases": [0.0]},
    ],
    "loss": "half_sse",
    "sample": {"x": [[[1, 1, 5], [0, 0, 0], [0, 0, 0]]], "t": [0]},
    "optimizer": {"kind": "sgd", "lr": 0.1},
}


def test_a_tie_sent_to_the_wrong_unit_or_split_is_named_on_units_and_kernel_weights():
    """A one-digit claim that is a mistake's value exactly (4, not 4 rounded) is telling; splitting a
    tie evenly (1/2 each) is maxpool_tie_split. dE/dk12 meets x_1_1_2 = 1 at c_1_1_1 and x_1_1_3 = 5 at
    c_1_1_2: 4 (right), 20 (the last largest), 12 (split: 2*1 + 2*5), 24 (every unit)."""
    d = derive(spec_from_data(TIE, "tie"))
    claims = [("dE/dout_c_1_1_1", 4), ("dE/dout_c_1_1_2", 4), ("dE/dout_c_1_1_1", 0), ("dE/dout_c_1_1_1", 2), ("dE/dout_c_1_1_2", 2),
              ("dE/dk12", 4), ("dE/dk12", 20), ("dE/dk12", 12), ("dE/dk12", 24)]
    verdicts = _judge(d, "claims:\n" + "".join(f"  - {{of: {of}, value: {value}}}\n" for of, value in claims))
    assert [v.correct for v in verdicts] == [True, False, False, False, False, True, False, False, False]
    keys = [_keys(v)[0] if v.findings else None for v in verdicts]
    assert keys == [None, "maxpool_wrong_unit", "maxpool_wrong_unit", "maxpool_tie_split", "maxpool_tie_split",
                    None, "maxpool_wrong_unit", "maxpool_tie_split", "maxpool_to_every_unit"]


def test_a_formula_leaving_out_positions_says_which(capsys, tmp_path):
    """Three of the 16 terms of conv_worked's dE/dk11 (the ones that are not 0 here): the other 13
    positions are named, and the expected form is printed once."""
    example = EXAMPLE.parent / "conv_worked.yaml"
    d = derive(load_spec(str(example)))
    written = "delta_c_1_1_4*x_1_1_4 + delta_c_1_4_2*x_1_4_2 + delta_c_1_3_3*x_1_3_3"
    verdict = _judge(d, f"claims:\n  - {{of: dE/dk11, formula: '{written}'}}\n")[0]
    assert not verdict.correct and _keys(verdict) == ["position_left_out"]
    words = verdict.findings[0].words
    assert words.startswith("the terms at (1,1), (1,2), (1,3), (2,1), (2,2), (2,3), (2,4), (3,1), (3,2), (3,4), (4,1), (4,3) and (4,4) are left out")
    assert "they give 0 on this sample, but not in general" in words
    claims = tmp_path / "claims.yaml"
    claims.write_text(f"claims:\n  - {{of: dE/dk11, formula: '{written}'}}\n")
    assert main(["verify", str(example), str(claims)]) == 1
    out = capsys.readouterr().out
    assert out.count("delta_c_1_1_1*x_1_1_1 + delta_c_1_1_2*x_1_1_2") == 2  # the expected form once, the left-out terms once
    assert len(out) < 2000


def test_two_channels_and_conv1d_claims():
    for case, name in (("two channels", "k1_2_2_1_2"), ("conv1d", "k1_2_1_3")):
        d = derive(spec_from_data(CASES[case], case))
        ref = d.network.locate(name)
        gradient = d.gradient(ref)
        verdicts = _judge(d, f"claims:\n  - {{of: dE/d{name}, value: {gradient!r}}}\n  - {{of: '{name}+', value: {d.updated(ref)!r}}}\n")
        assert all(v.correct for v in verdicts), [v.diagnosis for v in verdicts]


def test_the_flip_below_a_second_convolution_is_named():
    d = derive(spec_from_data(CASES["two convolutions"], "cc"))
    v = Verifier(d)
    node = v.graph.node_named("c_2_2_2")  # an output of the first convolution, under the second's kernel
    true = v.evaluate(v.unit_gradient(node), v.sample)
    truth = v._truth(parse_claims("claims: [{of: dE/dc_2_2_2, value: 0}]", "c.yaml", "yaml", v.network, v.graph).claims[0].target)
    flipped = [a for a in truth.alternatives if a.finding.mistake == "kernel_not_flipped"]
    assert flipped and v.evaluate(flipped[0].expr, v.sample) != pytest.approx(true)
    verdicts = _judge(d, f"claims:\n  - {{of: dE/dc_2_2_2, value: {v.evaluate(flipped[0].expr, v.sample)!r}}}\n  - {{of: dE/dc_2_2_2, value: {true!r}}}\n")
    assert _keys(verdicts[0])[0] == "kernel_not_flipped" and verdicts[1].correct


@pytest.mark.parametrize("claim, field", [
    ("{of: dE/dc_1_5_5, value: 0}", "claims[0].of"),
    ("{of: p_1_3_1, value: 0}", "claims[0].of"),
    ("{of: dE/dk13, value: 0}", "claims[0].of"),
])
def test_a_claim_naming_no_unit_or_parameter_is_one_line(claim, field, tmp_path, capsys):
    path = tmp_path / "claims.yaml"
    path.write_text(f"claims:\n  - {claim}\n")
    assert main(["verify", str(EXAMPLE), str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{field}:" in err


def test_verify_on_a_big_conv_network_judges_values(tmp_path, capsys):
    from test_conv import BIG

    spec = tmp_path / "big.yaml"
    spec.write_text(yaml.safe_dump(BIG))
    d = derive(load_spec(str(spec)))
    assert not d.small
    ref = d.network.locate("k12")
    claims = tmp_path / "claims.yaml"
    claims.write_text(f"claims:\n  - {{of: dE/dk12, value: {d.gradient(ref)!r}}}\n  - {{of: E, value: {d.loss!r}}}\n  - {{of: dE/dx_1_2_2, value: 123}}\n")
    assert main(["verify", str(spec), str(claims)]) == 1
    out = capsys.readouterr().out
    assert "2 of 3 right" in out


def test_a_kernel_weights_chain_and_its_value_after_steps():
    d = derive(load_spec(str(EXAMPLE)))
    terms = [f"dE/dnet_c_1_{i}_{j} * dnet_c_1_{i}_{j}/dk11" for i in range(1, 5) for j in range(1, 5)]
    short = [t for t in terms if "c_1_2_2" not in t]
    v = Verifier(d)
    after = v.verify(parse_claims("claims: [{of: k11, step: 2, value: 0}]", "c.yaml", "yaml", v.network, v.graph))[0].expected
    verdicts = _judge(d, f"claims:\n  - {{of: dE/dk11, chain: '{' + '.join(terms)}'}}\n  - {{of: dE/dk11, chain: '{' + '.join(short)}'}}\n"
                         f"  - {{of: k11, step: 2, value: {after!r}}}\n")
    assert verdicts[0].correct and verdicts[2].correct
    assert not verdicts[1].correct and "the term at (2,2) is left out" in verdicts[1].diagnosis


def test_an_average_pool_not_divided_is_named():
    """dE/d(an input of an average-pool window) is the window's delta over n (the mean's
    derivative, 1/2 for conv1d's pool of 2); the delta whole is named avgpool_not_divided, for a
    conv unit's gradient and for a kernel weight's (before: an arithmetic slip)."""
    d = derive(spec_from_data(CASES["conv1d"], "conv1d"))
    v = Verifier(d)
    unit = v.evaluate(v.unit_gradient(v.graph.node_named("out_c_1_1")), v.sample)
    pooled = v.evaluate(v.unit_gradient(v.graph.node_named("p_1_1")), v.sample)
    assert unit == pytest.approx(pooled / 2, rel=1e-12)
    k = d.network.parameters().__next__().name
    whole = 2 * d.gradient(d.network.locate(k))  # every position's delta doubled: one pool
    verdicts = _judge(d, f"claims:\n  - {{of: dE/dout_c_1_1, value: {pooled!r}}}\n  - {{of: dE/d{k}, value: {whole!r}}}\n")
    assert _keys(verdicts[0])[0] == "avgpool_not_divided", verdicts[0].diagnosis
    # every position pooled by 2: the kernel weight's is exactly twice, which the generic "a factor 2 too many" names first
    assert _keys(verdicts[1])[0] in ("avgpool_not_divided", "factor") and not verdicts[1].correct


def test_a_full_chain_through_the_pool_and_a_chain_from_the_deltas_are_both_right():
    """conv_worked's chains start at the deltas of layer c; a claimed chain with every path from E
    through the pool and the dense layer (16) is judged right, as is one from the deltas; one path
    left out is not."""
    from chainrule.derive.graph import LOSS

    d = derive(load_spec(str(EXAMPLE.parent / "conv_worked.yaml")))
    graph = Verifier(d).graph
    full = [graph.path_text(p) for p in graph.paths(LOSS, ("param", "k11"))]
    assert len(full) == 16 and all("dp_1_" in p for p in full)
    deltas = " + ".join(f"dE/dnet_c_1_{i}_{j} * dnet_c_1_{i}_{j}/dk11" for i in range(1, 5) for j in range(1, 5))
    verdicts = _judge(d, "claims:\n" + "".join(f"  - {{of: dE/dk11, chain: '{c}'}}\n" for c in (" + ".join(full), deltas, " + ".join(full[1:]))))
    assert [v.correct for v in verdicts] == [True, True, False]


TIE_SPEC = ROOT / "tests" / "data" / "conv_tie.yaml"


def _judge_file(name: str):
    v = Verifier(derive(load_spec(str(TIE_SPEC))))
    path = ROOT / "tests" / "data" / name
    return v.verify(parse_claims(path.read_text(), str(path), "yaml", v.network, v.graph))


def test_ties_of_three_and_four_are_named_with_their_units_and_shares():
    """A tester's claims on conv_tie (issue 16, D4): windows with a tie of 3 (out_c_1_1_1, out_c_1_1_2,
    out_c_1_2_1), of 2 and of 4 on the sample. The middle of the 3-way tie given the gradient is
    the tie rule's mistake, named with its window's largest (not 'sent to every unit'); a split is
    1/3 each at the tie of three, 1/4 at four, 1/2 (sympy's) at two."""
    verdicts = _judge_file("conv_tie_claims.yaml")
    assert [v.correct for v in verdicts] == [True, True] + [False] * 4 + [True] + [False] * 5
    keys = [_keys(v)[0] if v.findings else None for v in verdicts]
    assert keys == [None, None, "maxpool_wrong_unit", "maxpool_tie_split", "maxpool_wrong_unit", "maxpool_tie_split", None,
                    "maxpool_tie_split", "maxpool_tie_split", "maxpool_wrong_unit", "maxpool_tie_split", "maxpool_wrong_unit"]
    middle = verdicts[11].findings[0].words
    assert middle.startswith("the max-pool's gradient sent to out_c_1_1_2, one of the 3 largest inputs of its window (tied with out_c_1_1_1 and out_c_1_2_1)")
    assert "to the first in row-major order alone, out_c_1_1_1" in middle and "every unit" not in middle
    assert "(1/3 each for out_c_1_1_1, out_c_1_1_2 and out_c_1_2_1)" in verdicts[3].findings[0].words
    assert "1/2 each" not in verdicts[3].findings[0].words
    assert "(1/2 each for out_c_1_3_2 and out_c_1_4_2, as sympy's derivative of Max gives at a tie of two)" in verdicts[5].findings[0].words
    assert "(1/4 each for out_c_1_3_3, out_c_1_3_4, out_c_1_4_3 and out_c_1_4_4)" in verdicts[10].findings[0].words


def test_chains_leaving_out_positions_name_them_and_a_chain_from_the_deltas_has_no_note():
    """The tester's conv_pos claims (issue 16, D5): a chain of k11 from the deltas leaving out
    positions is told which, as a formula is ('the term at (3,3) is left out ...; it gives 0 on
    this sample'), the expected chain printed from the deltas as derive writes it; the right chain
    from the deltas is accepted without a note on each dE/dnet_c_u (derive writes them)."""
    verdicts = _judge_file("conv_pos_claims.yaml")
    right, one, three = verdicts[4], verdicts[5], verdicts[9]  # claim 1 has two parts (formula, value)
    assert right.correct and right.note == ""
    assert not one.correct and _keys(one) == ["position_left_out"] and one.note == ""
    assert one.findings[0].words == ("the term at (3,3) is left out of the sum over the 16 positions of layer c where k11 is used; "
                                     "it gives 0 on this sample, but not in general")
    assert one.findings[0].formula == "dE/dnet_c_1_3_3 * dnet_c_1_3_3/dk11"
    assert one.expected.startswith("dE/dnet_c_1_1_1 * dnet_c_1_1_1/dk11 + dE/dnet_c_1_1_2 * dnet_c_1_1_2/dk11") and "dp_" not in one.expected
    assert three.findings[0].words.startswith("the terms at (1,2), (1,3), (2,1), (2,2), (2,3), (2,4), (3,1), (3,3), (3,4), (4,1), (4,2), (4,3) and (4,4) are left out")
    assert "they give 0 on this sample" in three.findings[0].words


def test_a_chain_from_e_leaving_out_a_position_names_it():
    """Every path from E through the pool and the dense layer but those through net_c_1_4_4: the
    position (4,4) is named, not 'the path through f4, p_1_2_2, out_c_1_4_4'."""
    from chainrule.derive.graph import LOSS

    d = derive(load_spec(str(TIE_SPEC)))
    graph = Verifier(d).graph
    full = [graph.path_text(p) for p in graph.paths(LOSS, ("param", "k11")) if "net_c_1_4_4" not in graph.path_text(p)]
    verdict = _judge(d, f"claims:\n  - {{of: dE/dk11, chain: '{' + '.join(full)}'}}\n")[0]
    assert not verdict.correct and _keys(verdict) == ["position_left_out"]
    assert verdict.findings[0].words.startswith("the term at (4,4) is left out of the sum over the 16 positions of layer c")
