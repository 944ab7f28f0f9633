"""verify on a batch of samples (spec.md sections 4 and 5): claims without ``sample:`` are about
the batch (the reduced E, the reduced gradient, the update from it), claims with ``sample: k``
about sample k alone; the batch's mistakes are named (sum for mean and the reverse, one sample's
value for the batch's, the batch's for one sample's, another sample's)."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
import yaml

from chainrule.codegen.cli import main
from chainrule.codegen.files import load_spec
from chainrule.derive import derive
from chainrule.derive.errors import ChainruleError
from chainrule.derive.hand.claims import parse_claims
from chainrule.derive.hand.verify import Verifier
from chainrule.derive.spec import spec_from_data
from helpers import ROOT, needs_torch, torch
from test_batches import CASES, batch_spec

DATA = ROOT / "tests" / "data"
BATCH, BATCH_SUM = DATA / "mazur_batch.yaml", DATA / "mazur_batch_sum.yaml"


def _verdicts(spec_path, claims_path):
    v = Verifier(derive(load_spec(str(spec_path))))
    return v.verify(parse_claims(claims_path.read_text(), str(claims_path), "yaml", v.network, v.graph))


def _judge(spec_path, text):
    v = Verifier(derive(load_spec(str(spec_path))))
    return v.verify(parse_claims(text, "c.yaml", "yaml", v.network, v.graph))


def test_right_claims_about_the_batch_and_one_sample():
    verdicts = _verdicts(BATCH, DATA / "mazur_batch_right.yaml")
    assert all(v.correct for v in verdicts), [(v.label, v.diagnosis) for v in verdicts if not v.correct]
    assert [v.label for v in verdicts][5:8] == ["out_o1 on sample 2", "E on sample 2", "dE/dw5 on sample 2"]


def test_the_batch_mistakes_are_named():
    verdicts = _verdicts(BATCH, DATA / "mazur_batch_mistakes.yaml")
    assert not any(v.correct for v in verdicts)
    assert [v.findings[0].mistake for v in verdicts] == ["sum_for_mean"] * 3 + ["one_sample"] * 3 + ["batch_for_sample", "other_sample"]
    assert "sample 1's gradient alone (dE_1/dw5)" in verdicts[4].diagnosis
    assert "out_h1 on sample 1, not on sample 2" in verdicts[7].diagnosis


def test_the_mean_where_the_spec_says_sum():
    verdicts = _verdicts(BATCH_SUM, DATA / "mazur_batch_sum_mistakes.yaml")
    assert [v.correct for v in verdicts] == [False] * 3 + [True] * 3
    assert {v.findings[0].mistake for v in verdicts[:3]} == {"mean_for_sum"}


def test_each_samples_own_mistakes_are_reduced():
    """A mistake made on every sample (the sign of dE/dout flipped) is named in the batch's value."""
    d = derive(load_spec(str(BATCH)))
    (verdict,) = _judge(BATCH, f"claims:\n  - {{of: dE/dw5, value: {-d.gradient(d.network.locate('w5')):.9g}}}\n")
    assert verdict.findings[0].mistake == "sign" and "in each sample's term" in verdict.diagnosis


def test_sample_one_of_a_spec_of_one_sample_is_the_sample():
    verdicts = _judge(ROOT / "examples" / "mazur.yaml", "claims:\n  - {of: E, sample: 1, value: 0.298371109}\n  - {of: o1, value: 0.75136507}\n")
    assert all(v.correct for v in verdicts) and verdicts[0].label == "E"


@pytest.mark.parametrize("claim, field, message", [
    ("{of: o1, value: 0.75}", "claims[0].of", "out_o1 has a value on each of the 3 samples of the batch: give sample: k (1 to 3) for sample k alone"),
    ("{of: i1, value: 0.05}", "claims[0].of", "i1 has a value on each of the 3 samples"),
    ("{of: dE/dnet_o1, value: 0.1}", "claims[0].of", "dE/dnet_o1 has a value on each of the 3 samples"),
    ("{of: dE/dw5, formula: 'h1'}", "claims[0].formula", "a formula is written in one sample's units, and the spec has a batch of 3: give sample: k"),
    ("{of: dE/dw5, chain: 'dE/dnet_o1 * dnet_o1/dw5'}", "claims[0].chain", "a chain is written in one sample's units"),
    ("{of: E, sample: 0, value: 0.3}", "claims[0].sample", "expected the number of a sample of the batch, an integer from 1 to 3, got 0"),
    ("{of: E, sample: 4, value: 0.3}", "claims[0].sample", "expected the number of a sample of the batch, an integer from 1 to 3, got 4"),
    ("{of: E, sample: 1.5, value: 0.3}", "claims[0].sample", "an integer from 1 to 3, got 1.5"),
    ("{of: E, sample: '2', value: 0.3}", "claims[0].sample", "an integer from 1 to 3, got '2'"),
    ("{of: E, sample: true, value: 0.3}", "claims[0].sample", "an integer from 1 to 3, got True"),
    ("{of: E, sample: 2, step: 1, value: 0.3}", "claims[0].sample", "a claim with step: is about the batch after that many steps: leave sample: out"),
])
def test_bad_sample_claims(claim, field, message):
    v = Verifier(derive(load_spec(str(BATCH))))
    with pytest.raises(ChainruleError) as error:
        parse_claims(f"claims:\n  - {claim}\n", "c.yaml", "yaml", v.network, v.graph)
    assert str(error.value).startswith(f"c.yaml: {field}: ") and message in str(error.value)


def test_sample_two_of_one_sample_is_refused():
    v = Verifier(derive(load_spec(str(ROOT / "examples" / "mazur.yaml"))))
    with pytest.raises(ChainruleError) as error:
        parse_claims("claims:\n  - {of: E, sample: 2, value: 0.3}\n", "c.yaml", "yaml", v.network, v.graph)
    assert str(error.value) == "c.yaml: claims[0].sample: expected the spec has one sample: sample: 1, or leave it out, got 2"


def test_the_command_line_refuses_with_one_line_and_writes_nothing(tmp_path, capsys):
    claims = tmp_path / "c.yaml"
    claims.write_text("claims:\n  - {of: E, sample: 0, value: 0.3}\n")
    out = tmp_path / "grades.csv"
    assert main(["verify", str(BATCH), str(claims), "--csv", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "claims[0].sample" in err and "Traceback" not in err
    assert not out.exists()


def test_csv_of_a_batch(tmp_path, capsys):
    out = tmp_path / "grades.csv"
    assert main(["verify", str(BATCH), str(DATA / "mazur_batch_right.yaml"), str(DATA / "mazur_batch_mistakes.yaml"), "--csv", str(out)]) == 1
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    totals = [r["score"] for r in rows if r["claim"] == "total"]
    assert totals == ["10/10", "0/8"]
    assert "sum of the 3 samples' losses" in rows[11]["diagnosis"]
    assert [r["of"] for r in rows[5:8]] == ["o1 on sample 2", "E on sample 2", "dE/dw5 on sample 2"]


def test_steps_on_a_batch():
    """step: N without sample: is about the batch: its reduced loss after N steps."""
    from chainrule.codegen.steps import follow_steps

    d = derive(load_spec(str(BATCH)))
    steps = follow_steps(d, 3)
    verdicts = _judge(BATCH, f"claims:\n  - {{of: E, step: 3, value: {steps.losses[3]:.10g}}}\n")
    assert verdicts[0].correct


def _torch_reference(d):
    """The reduced loss and gradients, each sample's loss and gradients, and the parameters after
    one step of the spec's optimizer, by PyTorch float64 autograd and torch.optim."""
    from test_optimizers import TORCH

    import torch_bridge

    n = d.values.samples
    scale = n if d.network.spec.reduction == "sum" else 1
    W = [torch.tensor(w, requires_grad=True) for w in d.values.W]
    b = [None if v is None else torch.tensor(v, requires_grad=True) for v in d.values.b]
    X, T = torch.tensor(d.values.X), torch.tensor(d.values.T)

    def run(rows):
        out = X[rows]
        for l in range(1, d.network.depth + 1):
            out = torch_bridge.activation(d.network, l)(out @ W[l - 1].T + (b[l - 1] if b[l - 1] is not None else 0))
        return torch_bridge.loss(d.network, out, T[rows])

    per_sample = []
    for k in range(n):
        loss = run([k])
        grads = torch.autograd.grad(loss, [p for p in W + b if p is not None])
        per_sample.append((float(loss.detach()), [g.numpy() for g in grads]))
    trained = [p for l, layer in enumerate(d.network.spec.layers) for p, part in ((W[l], "weights"), (b[l], "biases")) if p is not None and part not in layer.freeze]
    optimizer = TORCH[d.network.spec.optimizer.kind](trained, dict(d.network.spec.optimizer.hyper))
    loss = run(list(range(n))) * scale
    loss.backward()
    grads = [p.grad.numpy().copy() for p in W + b if p is not None]
    optimizer.step()
    after = [p.detach().numpy() for p in W + b if p is not None]
    return float(loss.detach()), grads, per_sample, after


def _slot(d, ref):
    """The index of a parameter's matrix in the list of W and b (None left out) and its entry."""
    arrays = [("W", l) for l in range(d.network.depth)] + [("b", l) for l in range(d.network.depth) if d.values.b[l] is not None]
    i = arrays.index(("W" if ref.is_weight else "b", ref.layer - 1))
    return i, (ref.row, ref.col) if ref.is_weight else (ref.row,)


def _claim(of, value, sample=None):
    return f"  - {{of: '{of}', value: {value:.12g}{'' if sample is None else f', sample: {sample}'}}}\n"


@needs_torch
@pytest.mark.parametrize("seed, samples, reduction", CASES)
def test_verify_judges_a_batch_as_torch_has_it(seed, samples, reduction):
    """Right values from PyTorch float64 (the reduced E, gradients, one step of torch.optim; each
    sample's E and gradient) are judged right on batches of 1 to 7, both reductions; the other
    reduction's values, where they differ, are named as that mistake."""
    data = batch_spec(seed, samples, reduction)
    data["optimizer"].pop("groups", None)
    d = derive(spec_from_data(data, f"seed {seed}"))
    loss, grads, per_sample, after = _torch_reference(d)
    refs = list(d.network.parameters())[:6]
    text = _claim("E", loss)
    right = 1
    for ref in refs:
        i, at = _slot(d, ref)
        if abs(grads[i][at]) > 1e-8:
            text += _claim(f"dE/d{ref.name}", grads[i][at])
            right += 1
        if not d.frozen(ref) and abs(after[i][at]) > 1e-8:
            text += _claim(f"{ref.name}+", after[i][at])
            right += 1
    for k, (own, own_grads) in enumerate(per_sample, start=1):
        text += _claim("E", own, k)
        right += 1
        i, at = _slot(d, refs[0])
        if abs(own_grads[i][at]) > 1e-8:
            text += _claim(f"dE/d{refs[0].name}", own_grads[i][at], k)
            right += 1
    other = loss * samples if reduction == "mean" else loss / samples
    text += _claim("E", other)
    v = Verifier(d)
    verdicts = v.verify(parse_claims("claims:\n" + text, "c.yaml", "yaml", v.network, v.graph))
    assert all(x.correct for x in verdicts[:right]), [(x.label, x.claimed, x.expected, x.diagnosis) for x in verdicts[:right] if not x.correct]
    last = verdicts[right]
    if samples == 1:
        assert last.correct
    elif abs(other - loss) > 1e-6 * abs(loss):
        assert not last.correct and last.findings[0].mistake == ("sum_for_mean" if reduction == "mean" else "mean_for_sum")


EXAMPLE = ROOT / "examples" / "batch_softmax.yaml"


def test_the_batch_example_s_claims_are_judged_as_its_comments_say():
    """examples/claims/batch_softmax_claims.yaml: sample 1's own numbers, chain (through every
    ds_k/dout_h1) and formula, the batch's mean E, gradient and step are right; the sum given for
    the mean and sample 1's gradient given for the batch's are named."""
    verdicts = _verdicts(EXAMPLE, ROOT / "examples" / "claims" / "batch_softmax_claims.yaml")
    assert [v.correct for v in verdicts] == [True] * 8 + [False, False]
    assert [verdicts[8].findings[0].mistake, verdicts[9].findings[0].mistake] == ["sum_for_mean", "one_sample"]


@needs_torch
def test_the_batch_example_is_torchs():
    """The example's loss, mean gradients and one sgd step against PyTorch float64 autograd."""
    d = derive(load_spec(str(EXAMPLE)))
    spec = d.network.spec
    W = torch.tensor(spec.layers[0].weights, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(spec.layers[0].biases, dtype=torch.float64, requires_grad=True)
    X = torch.tensor([s.x for s in spec.samples], dtype=torch.float64)
    T = torch.tensor([s.t for s in spec.samples], dtype=torch.float64)
    s = torch.softmax(torch.sigmoid(X @ W.T + b), dim=1)
    E = -(T * torch.log(s)).sum(dim=1).mean()
    E.backward()
    assert d.loss == pytest.approx(E.item(), rel=1e-13)
    names = [[f"w{2 * r + c + 1}" for c in range(2)] for r in range(3)]
    for r in range(3):
        for c in range(2):
            ref = d.network.locate(names[r][c])
            assert d.gradient(ref) == pytest.approx(W.grad[r, c].item(), rel=1e-12, abs=1e-15)
            assert d.updated(ref) == pytest.approx((W - 0.5 * W.grad)[r, c].item(), rel=1e-13)
        assert d.gradient(d.network.locate(f"b{r + 1}")) == pytest.approx(b.grad[r].item(), rel=1e-12, abs=1e-15)


def _group_batch():
    """Two samples, sgd with weight decay, the biases in a group without it (the fresh user's
    spec that found the batch's update mistakes unnamed)."""
    return {"name": "gb", "inputs": ["i1", "i2"],
            "layers": [{"name": "h", "units": 2, "activation": "sigmoid", "bias": "shared", "weights": [[0.15, 0.2], [0.25, 0.3]], "biases": [0.35]},
                       {"name": "o", "units": 2, "activation": "sigmoid", "weights": [[0.4, 0.45], [0.5, 0.55]], "biases": [0.6, 0.6]}],
            "loss": "half_sse", "samples": [{"x": [0.05, 0.1], "t": [0.01, 0.99]}, {"x": [0.1, 0.2], "t": [0.99, 0.01]}],
            "optimizer": {"kind": "sgd", "lr": 0.5, "weight_decay": 0.1, "groups": [{"params": ["biases"], "weight_decay": 0}]}}


def test_the_updates_own_mistakes_are_named_on_a_batch(tmp_path):
    """update_sign, not_updated and group_ignored on the batch's update, as on one sample: each
    value computed here from the batch's gradient by the rule the finding names."""
    spec = tmp_path / "gb.yaml"
    spec.write_text(yaml.safe_dump(_group_batch()))
    d = derive(load_spec(str(spec)))
    w5, b2 = d.network.locate("w5"), d.network.locate("b2")
    g5, theta5 = d.gradient(w5), d.values.scalar(w5)
    step5 = 0.5 * (g5 + 0.1 * theta5)
    assert abs(d.updated(w5) - (theta5 - step5)) < 1e-12
    claims = [("w5+", theta5 + step5, "update_sign"), ("w5+", g5, "not_updated"), ("w5+", step5, "not_updated"),
              ("b2+", d.values.scalar(b2) - 0.5 * (d.gradient(b2) + 0.1 * d.values.scalar(b2)), "group_ignored")]
    text = "claims:\n" + "".join(f"  - {{of: {of}, value: {value:.9g}}}\n" for of, value, _ in claims)
    verdicts = _judge(spec, text)
    assert [v.findings[0].mistake if v.findings else None for v in verdicts] == [m for _, _, m in claims], [v.diagnosis for v in verdicts]


def test_adams_update_mistakes_are_named_on_a_batch(tmp_path):
    data = _group_batch()
    data["optimizer"] = {"kind": "adam", "lr": 0.01}
    spec = tmp_path / "adam.yaml"
    spec.write_text(yaml.safe_dump(data))
    d = derive(load_spec(str(spec)))
    w5 = d.network.locate("w5")
    theta, g = d.values.scalar(w5), d.gradient(w5)
    sgd = theta - 0.01 * g  # sgd's step at adam's rate (adam's first step is lr * sign(g), about)
    (gradient, other) = _judge(spec, f"claims:\n  - {{of: w5+, value: {g:.9g}}}\n  - {{of: w5+, value: {sgd:.9g}}}\n")
    assert gradient.findings[0].mistake == "not_updated"
    assert other.findings and other.findings[0].mistake in ("other_optimizer", "update_rate"), other.diagnosis


def test_one_sample_is_named_with_a_penalty(tmp_path):
    """With l2, a sample's own E_k and dE_k/dw as derive prints them (no penalty) given for the
    batch's: one_sample, as without l2 (before: an arithmetic slip, only E_k + penalty named)."""
    data = yaml.safe_load(BATCH.read_text())
    data["loss"] = {"kind": "half_sse", "l2": 0.05}
    spec = tmp_path / "l2.yaml"
    spec.write_text(yaml.safe_dump(data))
    d = derive(load_spec(str(spec)))
    chain = d.chains["w5"]
    own_loss, own_gradient = d.sample_losses[0], d.sample_gradient(chain, 0)
    with_penalty = own_gradient + d.penalty_value(chain)
    text = f"claims:\n  - {{of: E, value: {own_loss:.9g}}}\n  - {{of: dE/dw5, value: {own_gradient:.9g}}}\n  - {{of: dE/dw5, value: {with_penalty:.9g}}}\n"
    verdicts = _judge(spec, text)
    assert [v.findings[0].mistake for v in verdicts] == ["one_sample"] * 3, [v.diagnosis for v in verdicts]
    assert "plus the penalty's l2*w" not in verdicts[1].diagnosis and "plus the penalty's l2*w" in verdicts[2].diagnosis
