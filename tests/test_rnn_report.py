"""The report of a network with an rnn layer (issue 16, at layer level): the worked BPTT example's
numbers against a hand calculation in NumPy and the derivation's, step by step (forward, the loss
per step, each delta from the last step back, each shared weight's sum over the steps with its
numbers); the layer form's recursion; the unrolled diagram (an ellipsis past six steps); random
rnns' reports against their derivations; the pages fit (PDF) and render (HTML, the notebook)."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

from chainrule.codegen.report.recurrence import small_sequence, step_values
from chainrule.codegen.report.unrolled import drawn_steps
from chainrule.codegen.report.writer import render_html, render_report
from chainrule.derive import derive
from chainrule.derive.spec import spec_from_data
from helpers import ROOT, example
from test_rnn import random_rnn_spec

GENERATED = ROOT / "generated"
NUMBER = re.compile(r"\\val\{(-?[0-9.]+)(?:\\times 10\^\{(-?[0-9]+)\})?\}")
needs_tex = pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs pdflatex")


def numbers(text: str) -> list[float]:
    return [float(m.group(1)) * 10 ** int(m.group(2) or 0) for m in NUMBER.finditer(text)]


def equations(tex: str) -> dict[str, list[list[float]]]:
    """lhs -> the numbers of each step of its last equation with numbers (``a = b = c``: the
    numbers of b, of c), over the report's ``align*`` rows and their continuation rows."""
    found: dict[str, list[list[float]]] = {}
    lhs, body = None, ""
    for line in tex.splitlines() + [r"\end{align*}"]:
        match = re.match(r"^(.*?) &= (.*?)(?: \\\\)?$", line)
        if match and match.group(1).strip():
            if lhs is not None and numbers(body):
                found[lhs] = [numbers(step) for step in re.split(r" = |&= ", body) if numbers(step)]
            lhs, body = match.group(1).strip(), match.group(2)
        elif match:  # a continuation row
            body += " = " + match.group(2)
        elif lhs is not None and line.startswith(" & "):  # a step broken over rows
            body += " " + line.rstrip(" \\")
        elif lhs is not None:
            if numbers(body):
                found[lhs] = [numbers(step) for step in re.split(r" = |&= ", body) if numbers(step)]
            lhs, body = None, ""
    return found


def worked_by_hand() -> dict[str, float]:
    """examples/bptt_worked.yaml by hand: x = (1, 2), t = (1, 2), W = 0.5, U = 0.1, b = 0,
    h0 = 0, tanh, y = 2h, half_sse at both steps."""
    h1 = np.tanh(0.5 * 1.0 + 0.1 * 0.0)
    h2 = np.tanh(0.5 * 2.0 + 0.1 * h1)
    y1, y2 = 2 * h1, 2 * h2
    dy1, dy2 = y1 - 1.0, y2 - 2.0
    delta2 = (2 * dy2 + 0.1 * 0.0) * (1 - h2**2)
    delta1 = (2 * dy1 + 0.1 * delta2) * (1 - h1**2)  # the path through h2
    return {"net1": 0.5, "h1": h1, "net2": 0.5 * 2 + 0.1 * h1, "h2": h2, "y1": y1, "y2": y2,
            "E1": dy1**2 / 2, "E2": dy2**2 / 2, "E": (dy1**2 + dy2**2) / 2, "dy1": dy1, "dy2": dy2, "delta1": delta1, "delta2": delta2,
            "dW": delta1 * 1.0 + delta2 * 2.0, "dU": delta1 * 0.0 + delta2 * h1, "db": delta1 + delta2, "dV": dy1 * h1 + dy2 * h2}


def test_the_worked_bptt_report_is_the_hand_calculation() -> None:
    """Every step of generated/bptt_worked.tex, line by line, as a student computes it."""
    hand = worked_by_hand()
    found = equations((GENERATED / "bptt_worked.tex").read_text(encoding="utf-8"))
    expected = {
        r"\mathbf{net}_{h}[1]": [[0.5, 1, 0.1, 0, 0], [hand["net1"]]],
        r"\mathbf{out}_{h}[1]": [[hand["net1"]], [hand["h1"]]],
        r"\mathbf{net}_{h}[2]": [[0.5, 2, 0.1, hand["h1"], 0], [hand["net2"]]],
        r"\mathbf{out}_{h}[2]": [[hand["net2"]], [hand["h2"]]],
        r"\mathbf{net}_{y}[2]": [[2, hand["h2"]], [hand["y2"]]],
        "E_{1}": [[1, hand["y1"]], [hand["E1"]]],
        "E_{2}": [[2, hand["y2"]], [hand["E2"]]],
        "E": [[hand["E1"], hand["E2"]], [hand["E"]]],
        r"\boldsymbol{\delta}_{y}[1]": [[hand["y1"], 1], [hand["dy1"]]],
        r"\boldsymbol{\delta}_{h}[2]": [[2, hand["dy2"], 0.1, 0, hand["h2"]], [hand["delta2"]]],
        r"\boldsymbol{\delta}_{h}[1]": [[2, hand["dy1"], 0.1, hand["delta2"], hand["h1"]], [hand["delta1"]]],
        r"\frac{\partial E}{\partial \mathbf{W}_{1}}": [[hand["delta1"], 1, hand["delta2"], 2], [hand["dW"]]],
        r"\frac{\partial E}{\partial \mathbf{U}_{1}}": [[hand["delta1"], 0, hand["delta2"], hand["h1"]], [hand["dU"]]],
        r"\frac{\partial E}{\partial \mathbf{b}_{1}}": [[hand["delta1"], hand["delta2"]], [hand["db"]]],
        r"\frac{\partial E}{\partial \mathbf{W}_{2}}": [[hand["dy1"], hand["h1"], hand["dy2"], hand["h2"]], [hand["dV"]]],
        r"\frac{\partial E}{\partial \mathbf{h0}_{h}}": [[0.1, hand["delta1"]], [0.1 * hand["delta1"]]],  # through step 1 alone
    }
    for lhs, steps in expected.items():
        assert lhs in found, (lhs, sorted(found))
        got = found[lhs]
        assert len(got) == len(steps), (lhs, got)
        for mine, theirs in zip(got, steps):
            np.testing.assert_allclose(mine, theirs, rtol=2e-8, atol=1e-12, err_msg=lhs)


def test_the_worked_bptt_report_is_the_derivations() -> None:
    d = example("bptt_worked")
    found = equations((GENERATED / "bptt_worked.tex").read_text(encoding="utf-8"))
    W, U = (m for _, m in d.network.weight_matrices(1, d.sample.dW[0]))
    assert found["E"][-1] == pytest.approx([d.loss], rel=1e-8)
    assert found[r"\frac{\partial E}{\partial \mathbf{U}_{1}}"][-1] == pytest.approx([U[0, 0]], rel=1e-8)
    assert found[r"\frac{\partial E}{\partial \mathbf{W}_{1}}"][-1] == pytest.approx([W[0, 0]], rel=1e-8)
    for k, delta in enumerate(d.sample.deltas[0][0], start=1):
        assert found[rf"\boldsymbol{{\delta}}_{{h}}[{k}]"][-1] == pytest.approx([delta], rel=1e-8)


def test_the_layer_form_writes_bptt_as_by_hand() -> None:
    text = (GENERATED / "bptt_worked.tex").read_text(encoding="utf-8")
    assert r"\mathbf{net}_{h}[t] &= \mathbf{W}_{1} \mathbf{x}[t] + \mathbf{U}_{1} \mathbf{out}_{h}[t-1] + \mathbf{b}_{1}" in text
    assert (r"\boldsymbol{\delta}_{h}[t] &= (\left(\mathbf{W}_{2}^{\top} \boldsymbol{\delta}_{y}[t]\right) + "
            r"\left(\mathbf{U}_{1}^{\top} \boldsymbol{\delta}_{h}[t+1]\right)) \odot (1 - \mathbf{out}_{h}[t]^{2})") in text
    assert r"\frac{\partial E}{\partial \mathbf{U}_{1}} &= \sum_{t=1}^{2} \boldsymbol{\delta}_{h}[t]\, \mathbf{out}_{h}[t-1]^{\top}" in text
    assert "is the path through" in text and r"$\boldsymbol{\delta}_{h}[3]$ = 0" in text
    assert "operatorname{Backprop}" not in text and "Following" not in text and "Masked" not in text and "RecurrentAffine" not in text


def test_the_worked_report_has_each_weights_chain_through_time() -> None:
    """The small rnn's per-weight chains: dE/du11's paths through time and their sum, the
    derivation's gradient; the units named at their step."""
    d = example("bptt_worked")
    text = (GENERATED / "bptt_worked.tex").read_text(encoding="utf-8")
    for name in ("w1", "u11", "b1", "w2"):
        assert rf"\partial E/\partial {name[0]}_{{{name[1:]}}}" in text, name
    found = equations(text)
    u = r"\frac{\partial E}{\partial u_{11}}"
    assert found[u][-1] == pytest.approx([d.gradient(d.network.locate("u11"))], rel=1e-8)
    assert "3 paths from $E$ to $u_{11}$" in text and r"\mathrm{out}_{\mathit{h1\_t2}}" in text
    assert "is the initial state" in text and "not available yet" not in text


def test_a_big_rnns_chain_is_its_sum_over_the_steps(tmp_path) -> None:
    """A weight of a big rnn: the sum over the steps of its unit's deltas times what it
    multiplies, with the numbers, equal to the layer form's gradient."""
    d = example("sequence_sum")
    text = (GENERATED / "sequence_sum.tex").read_text(encoding="utf-8")
    assert "sum over the 8 steps where $w_{3}$ is used" in text
    found = equations(text)
    w3 = found[r"\frac{\partial E}{\partial w_{3}}"]
    assert w3[-1] == pytest.approx([d.gradient(d.network.locate("w3"))], rel=1e-8)
    assert sum(a * b for a, b in zip(w3[0][0::2], w3[0][1::2])) == pytest.approx(w3[-1][0], rel=1e-8)


def test_report_param_takes_an_rnns_weight(tmp_path, capsys) -> None:
    from chainrule.codegen.cli import main

    assert main(["report", str(ROOT / "examples" / "bptt_worked.yaml"), "--param", "u11", "-o", str(tmp_path)]) == 0
    text = (tmp_path / "bptt_worked.tex").read_text(encoding="utf-8")
    assert "the parameters asked for" in text and r"\partial E/\partial u_{11}" in text and r"\partial E/\partial w_{1}" not in text


def test_the_diagram_unrolls_the_steps() -> None:
    text = (GENERATED / "bptt_worked.tex").read_text(encoding="utf-8")
    assert r"\node[input] (init-1) at (0.00,1.90) {$\mathbf{h}_{0}$};" in text
    assert r"\draw[stepedge] (init-1) -- node[steplabel, pos=0.50] {$\mathbf{U}_{1}$} (s1-1);" in text
    assert text.count(r"\node[loss]") == 2
    page = (GENERATED / "bptt_worked.html").read_text(encoding="utf-8")
    assert page.count("<rect") >= 2 and "h<tspan" in page
    assert drawn_steps(6) == [1, 2, 3, 4, 5, 6] and drawn_steps(8) == [1, 2, 3, None, 8]


def test_a_long_sequence_is_drawn_with_an_ellipsis() -> None:
    data = random_rnn_spec(3)
    data.update(steps=9, samples=[{"x": [[0.1] * data["inputs"]] * 9, "t": [None] * 8 + [data["samples"][0]["t"][0] or [1.0] + [0.0] * (data["layers"][-1]["units"] - 1)]}])
    d = derive(spec_from_data(data, "long.yaml"))
    text = render_report(d, "long.yaml")
    assert r"\cdots" in text and "steps 4 to 8 are left out (5 steps)" in text
    assert text.count(r"\node[loss]") == 1  # the last step's alone


def _one_sample(seed: int) -> dict:
    data = random_rnn_spec(seed)
    data["sample"] = data.pop("samples")[0]
    data.pop("reduction")
    if all(row is None for row in data["sample"]["t"]):
        data["sample"]["t"][-1] = [1.0] + [0.0] * (data["layers"][-1]["units"] - 1)
    return data


@pytest.mark.parametrize("seed", range(12))
def test_every_number_of_a_random_rnns_report_is_the_derivations(seed: int) -> None:
    d = derive(spec_from_data(_one_sample(seed), f"seed{seed}.yaml"))
    text = render_report(d, "s.yaml")
    assert "operatorname{Backprop}" not in text and "operatorname{Previous}" not in text and "operatorname{Masked}" not in text
    if not small_sequence(d):
        return
    found, v = equations(text), step_values(d)
    assert found["E"][-1] == pytest.approx([d.loss], rel=1e-8, abs=1e-12)  # the steps' losses add up to the derivation's E
    for form, deltas in zip(d.layers, d.sample.deltas):
        per_step = deltas[0].reshape(d.program.steps, -1)
        for k in range(d.program.steps):
            got = found[rf"\boldsymbol{{\delta}}_{{{form.name}}}[{k + 1}]"][-1]
            np.testing.assert_allclose(got, per_step[k], rtol=1e-8, atol=1e-12)
        for l, name in ((form.index, form.weight), (form.index, form.recurrent)):
            if name is not None:
                got = found[rf"\frac{{\partial E}}{{\partial \mathbf{{{name[0]}}}_{{{name[1:]}}}}}"][-1]
                np.testing.assert_allclose(got, np.asarray(v["dE_d" + name]).ravel(), rtol=1e-8, atol=1e-12)
    render_html(d, "s.yaml")


@pytest.mark.parametrize("seed", range(6))
def test_a_batch_of_sequences_is_summarised(seed: int) -> None:
    d = derive(spec_from_data(random_rnn_spec(seed), f"seed{seed}.yaml"))
    text = render_report(d, "s.yaml")
    if d.batch:
        assert "over every step" in text and r"\sum_{t=1}" in text


def test_a_long_rnn_is_summarised_per_layer() -> None:
    text = (GENERATED / "sequence_sum.tex").read_text(encoding="utf-8")
    assert r"\mathbf{out}_{h} \in \mathbb{R}^{8\times 16}" in text and r"\partial E/\partial \mathbf{U}_{1}" in text
    assert "steps 4 to 7 are left out (4 steps)" in text and text.count(r"\node[loss]") == 1  # a loss at the last step alone
    assert r"(null, null, null, null, null, null, null, $\val{0.7}$)" in text


@needs_tex
@pytest.mark.parametrize("name", ["bptt_worked", "sequence_sum"])
def test_the_rnn_examples_fit_the_page(name: str, tmp_path) -> None:
    from test_report_pdf import overfull_widths

    wide = overfull_widths((GENERATED / f"{name}.tex").read_text(encoding="utf-8"), tmp_path)
    assert max(wide, default=0.0) < 1.0, wide


@pytest.mark.slow
@needs_tex
@pytest.mark.parametrize("seed", range(16))
def test_no_random_rnn_report_runs_off_the_page(seed: int, tmp_path) -> None:
    from test_report_pdf import overfull_widths

    d = derive(spec_from_data(_one_sample(seed), f"seed{seed}.yaml"))
    wide = overfull_widths(render_report(d, "s.yaml"), tmp_path)
    assert max(wide, default=0.0) < 5.0, wide


def test_the_notebook_shows_the_steps() -> None:
    import chainrule

    d = chainrule.derive(str(ROOT / "examples" / "bptt_worked.yaml"))
    page = d._repr_html_()
    assert "Step t = 2" in page and "<mn>0.0993807534</mn>" in page and "<mn>0.158802421</mn>" in page
    assert 'd.chain("w1")' in page  # an rnn's per-weight chains through time
    assert "<mn>0.583347916</mn>" in page  # the gradient table: w1, u11, b1, w2 (w1+)
