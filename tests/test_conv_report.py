"""The report of a network over feature maps (issue 16 phase 2, at layer level): the worked
convolution's numbers against a hand calculation in NumPy, the rules as the layer form writes
them (corr, rot180, to argmax with PyTorch's tie rule, spread, flatten), the diagram's boxes, and
reports of random conv architectures that compile and fit the page."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
import yaml

from chainrule.codegen.report.writer import render_html, render_report
from chainrule.derive import derive
from chainrule.derive.spec import spec_from_data
from helpers import ROOT, example
from test_conv import random_conv_spec

GENERATED = ROOT / "generated"
NUMBER = re.compile(r"\\val\{(-?[0-9.]+)(?:\\times 10\^\{(-?[0-9]+)\})?\}")


def matrices(tex: str) -> dict[str, np.ndarray]:
    """lhs -> the matrix on its row, for every ``lhs &= \\begin{pmatrix}...\\end{pmatrix}`` row."""
    found = {}
    for lhs, body in re.findall(r"^(.*?) &= \\begin\{pmatrix\}(.*?)\\end\{pmatrix\}", tex, flags=re.M):
        rows = [[float(m.group(1)) * 10 ** int(m.group(2) or 0) for m in NUMBER.finditer(row)] for row in body.split(r" \\ ")]
        found[lhs.strip()] = np.array(rows)
    return found


def worked_by_hand() -> dict[str, np.ndarray]:
    """examples/conv_worked.yaml computed in NumPy from its own numbers, loop by loop."""
    spec = yaml.safe_load((ROOT / "examples" / "conv_worked.yaml").read_text())
    x = np.array(spec["sample"]["x"], dtype=float)[0]
    K = np.array(spec["layers"][0]["weights"])[0, 0]
    W2, t = np.array(spec["layers"][3]["weights"]), np.array(spec["sample"]["t"], dtype=float)
    net_c = np.array([[np.sum(x[i:i + 2, j:j + 2] * K) for j in range(4)] for i in range(4)])
    out_c = 1 / (1 + np.exp(-net_c))
    windows = [(a, b) for a in range(2) for b in range(2)]
    out_p = np.array([[out_c[2 * a:2 * a + 2, 2 * b:2 * b + 2].max() for b in range(2)] for a in range(2)])
    out_o = W2 @ out_p.ravel()
    delta_o = out_o - t  # half_sse with an identity output
    delta_f = W2.T @ delta_o
    delta_p = np.zeros((4, 4))
    for (a, b), d in zip(windows, delta_f):
        window = out_c[2 * a:2 * a + 2, 2 * b:2 * b + 2]
        u, v = np.unravel_index(np.argmax(window), (2, 2))  # no ties in this example
        delta_p[2 * a + u, 2 * b + v] = d
    delta_c = delta_p * out_c * (1 - out_c)
    dK = np.array([[np.sum(delta_c * x[u:u + 4, v:v + 4]) for v in range(2)] for u in range(2)])
    return {
        r"\mathbf{x}": x, r"\mathbf{net}_{c}": net_c, r"\mathbf{out}_{c}": out_c, r"\mathbf{out}_{p}": out_p,
        r"\boldsymbol{\delta}_{f}": delta_f.reshape(-1, 1), r"\boldsymbol{\delta}_{p}": delta_p, r"\boldsymbol{\delta}_{c}": delta_c,
        r"\frac{\partial E}{\partial \mathbf{W}_{1}}": dK, r"\frac{\partial E}{\partial \mathbf{b}_{1}}": np.array([[delta_c.sum()]]),
        r"\frac{\partial E}{\partial \mathbf{W}_{2}}": np.outer(delta_o, out_p.ravel()),
    }


def test_the_worked_convolution_is_the_hand_calculation() -> None:
    """Every map, delta and gradient of generated/conv_worked.tex, as a hand calculation gets them."""
    found = matrices((GENERATED / "conv_worked.tex").read_text(encoding="utf-8"))
    expected = worked_by_hand()
    for lhs, value in expected.items():
        assert lhs in found, lhs
        np.testing.assert_allclose(found[lhs], value, rtol=1e-8, atol=1e-12, err_msg=lhs)
    # the max-pool's deltas: one per window, at its largest input
    delta_p = found[r"\boldsymbol{\delta}_{p}"]
    assert all(np.count_nonzero(delta_p[2 * a:2 * a + 2, 2 * b:2 * b + 2]) == 1 for a in range(2) for b in range(2))


def test_the_worked_convolution_is_the_derivations() -> None:
    d = example("conv_worked")
    found = matrices((GENERATED / "conv_worked.tex").read_text(encoding="utf-8"))
    np.testing.assert_allclose(found[r"\frac{\partial E}{\partial \mathbf{W}_{1}}"], d.sample.dW[0][0, 0], rtol=1e-8)
    np.testing.assert_allclose(found[r"\boldsymbol{\delta}_{c}"].ravel(), d.sample.deltas[0][0], rtol=1e-8, atol=1e-12)


def test_the_layer_form_writes_the_rules_as_by_hand() -> None:
    text = (GENERATED / "conv_worked.tex").read_text(encoding="utf-8")
    assert r"\mathbf{net}_{c} &= \operatorname{corr}\left(\mathbf{x},\ \mathbf{W}_{1}\right) + \mathbf{b}_{1}" in text
    assert r"\frac{\partial E}{\partial \mathbf{W}_{1}} &= \operatorname{corr}\left(\mathbf{x},\ \boldsymbol{\delta}_{c}\right)" in text
    assert r"\operatorname{to\,argmax}_{2\times 2}" in text and "the first of them in row-major order gets it, as PyTorch breaks the tie" in text
    assert r"\operatorname{flatten}\left(\mathbf{out}_{p}\right)" in text and "without being flipped" in text


TWO_CONVS = {
    "name": "two_convs", "inputs": {"shape": [2, 7, 7]},
    "layers": [{"name": "c", "kind": "conv2d", "channels": 2, "kernel": 3, "stride": 2, "padding": 1, "activation": "tanh"},
               {"name": "d", "kind": "conv2d", "channels": 3, "kernel": 2, "activation": "relu", "bias": "none"},
               {"name": "p", "kind": "avgpool2d", "kernel": 1}, {"name": "f", "kind": "flatten"},
               {"name": "o", "units": 2, "activation": "softmax"}],
    "loss": "cross_entropy", "seed": 4,
}


def test_a_convolution_below_a_convolution_gets_the_flipped_kernel() -> None:
    text = render_report(derive(spec_from_data(TWO_CONVS, "two_convs.yaml")), "two_convs.yaml")
    assert r"\operatorname{corr\,full}\left(\boldsymbol{\delta}_{d},\ \operatorname{rot180}\left(\mathbf{W}_{2}\right)\right)" in text
    assert "rotated by 180" in text and "top to bottom and left to right" in text
    assert r"\operatorname{spread}" in text and "stride 2" in text and "padded with 1 zero on each side" in text
    # a kernel of several [out, in] pairs: a matrix per pair, each named
    assert r"\text{out 1, in 2}" in text


def test_the_diagram_draws_maps_as_boxes_with_their_shapes() -> None:
    text = (GENERATED / "conv_worked.tex").read_text(encoding="utf-8")
    assert r"\node[box" in text and r"\node[unit]" not in text
    for label in ("1×5×5 maps", "1×4×4 maps", "1×2×2 maps", "kernel 2×2", "stride 1", "max of 2×2", "stride 2", "reshape"):
        assert label.replace("×", r"\ensuremath{\times}") in text, label
    page = (GENERATED / "conv_worked.html").read_text(encoding="utf-8")
    assert "1×4×4 maps" in page and "kernel 2×2" in page and "<circle" not in page


def test_a_big_conv_network_is_summarised() -> None:
    text = (GENERATED / "digits_conv.tex").read_text(encoding="utf-8")
    assert r"\mathbf{out}_{c} \in \mathbb{R}^{16\times 8\times 8}" in text
    assert r"\boldsymbol{\delta}_{c} &= \begin{pmatrix}" not in text  # 1,024 deltas: not printed
    assert r"\lVert\cdot\rVert" in text


@pytest.mark.parametrize("seed", range(40))
def test_every_random_conv_architecture_has_a_report(seed: int) -> None:
    d = derive(spec_from_data(random_conv_spec(seed), f"seed{seed}.yaml"))
    assert render_report(d, "s.yaml").endswith("\\end{document}\n")
    assert render_html(d, "s.yaml").endswith("</html>\n")


needs_tex = pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs pdflatex")


@needs_tex
@pytest.mark.parametrize("name", ["conv_small", "conv_worked", "digits_conv"])
def test_the_conv_examples_fit_the_page(name: str, tmp_path) -> None:
    from test_report_pdf import overfull_widths

    wide = overfull_widths((GENERATED / f"{name}.tex").read_text(encoding="utf-8"), tmp_path)
    assert max(wide, default=0.0) < 1.0, wide


@pytest.mark.slow
@needs_tex
@pytest.mark.parametrize("seed", range(40))
def test_no_random_conv_report_runs_off_the_page(seed: int, tmp_path) -> None:
    from test_report_pdf import overfull_widths

    d = derive(spec_from_data(random_conv_spec(seed), f"seed{seed}.yaml"))
    wide = overfull_widths(render_report(d, "s.yaml"), tmp_path)
    assert max(wide, default=0.0) < 5.0, wide


def test_the_notebook_shows_the_same_layer_form_and_maps() -> None:
    import chainrule

    d = chainrule.derive(str(ROOT / "examples" / "conv_worked.yaml"))
    page, latex = d._repr_html_(), d._repr_latex_()
    assert "<mi>corr</mi>" in page and "<mi>to argmax</mi>" in page and "<mn>0.817574476</mn>" in page  # out_p's largest
    assert r"k_{11} \cdot \mathit{x\_1\_1\_1}" in latex  # a small network: its units one by one


def test_each_kernel_weight_is_its_sum_over_positions() -> None:
    """The worked convolution's kernel weights: the chain of each, then the sum over its 16
    positions of the unit's delta times the input under it, with the numbers, to the gradient."""
    d = example("conv_worked")
    text = (GENERATED / "conv_worked.tex").read_text(encoding="utf-8")
    for name in ("k11", "k12", "k21", "k22"):
        section = text.split(rf"\subsection*{{$\partial E/\partial k_{{{name[1:]}}}$}}", 1)[1].split(r"\subsection*", 1)[0]
        block = section.split("positions where", 1)[1]
        assert "16" in section.split("positions where", 1)[0][-20:]
        assert block.count(r"\delta_{\mathit{c\_1\_") == 16
        numbers = re.findall(r"\\val\{(-?[0-9.]+)\}", block.split(r"\end{align*}", 1)[0])
        assert float(numbers[-1]) == pytest.approx(d.gradient(d.network.locate(name)), rel=1e-8)
        # the numbers row: each delta times the input under the weight there, summed
        pairs = [float(a) * float(b) for a, b in zip(numbers[:-1:2], numbers[1:-1:2])]
        assert sum(pairs) == pytest.approx(float(numbers[-1]), rel=1e-8, abs=1e-12)


def test_the_deltas_are_worked_once_before_the_kernel_weights_sums() -> None:
    """conv_worked's chains start at the deltas of layer c: k11's section works the 4 that are not 0
    one step up (dE/dp * the max-pool's factor in words * the sigmoid's derivative), each row's
    numbers multiplying to the delta of the layer form; the other sections only use them."""
    d = example("conv_worked")
    text = (GENERATED / "conv_worked.tex").read_text(encoding="utf-8")
    sections = {name: text.split(rf"\subsection*{{$\partial E/\partial k_{{{name[1:]}}}$}}", 1)[1].split(r"\subsection*", 1)[0] for name in ("k11", "k12")}
    worked = sections["k11"].split("positions where", 1)[0]
    assert "each worked once" in worked and "each worked once" not in sections["k12"]
    assert worked.count(r"\text{ is the window's largest, else 0}") == 4 and r"\operatorname{step}" not in worked
    rows = [line for line in worked.splitlines() if line.startswith(" &= ") and r"\val" in line and r"\cdot" in line]
    assert len(rows) == 4
    for row in rows:
        values = [float(v) for v in re.findall(r"\\val\{(-?[0-9.e-]+)\}", row)]
        assert np.prod(values[:-1]) == pytest.approx(values[-1], rel=1e-8)
        assert any(values[-1] == pytest.approx(float(d.env[f"delta_c_1_{i}_{j}"]), rel=1e-8) for i in range(1, 5) for j in range(1, 5))
    assert "The other deltas are 0" in worked


def test_a_pool_and_a_flatten_unit_by_unit() -> None:
    text = (GENERATED / "conv_worked.tex").read_text(encoding="utf-8")
    row = (r"\mathit{p\_1\_1\_1} &= \max\left(\mathrm{out}_{\mathit{c\_1\_1\_1}}, \mathrm{out}_{\mathit{c\_1\_1\_2}}, "
           r"\mathrm{out}_{\mathit{c\_1\_2\_1}}, \mathrm{out}_{\mathit{c\_1\_2\_2}}\right)")
    assert row in text and r"f_{1} &= \mathit{p\_1\_1\_1} = \val{0.562176501}" in text
    assert "Layer p (maxpool2d: each window of the outputs of layer c):" in text
    assert "Layer f (flatten: the maps of the outputs of layer p):" in text


def test_report_param_names_a_kernel_weight_of_a_big_conv_net(tmp_path) -> None:
    """--param k... on the digits conv net: its chain is taken from the layer's deltas, then the
    sum over its positions, the first terms and a count."""
    from chainrule.codegen.cli import main

    d = example("digits_conv")
    name = d.network.weight_name(1, 0, 4)  # the kernel's centre weight of channel 1
    assert main(["report", str(ROOT / "examples" / "digits_conv.yaml"), "-o", str(tmp_path), "--param", name]) == 0
    text = (tmp_path / "digits_conv.tex").read_text(encoding="utf-8")
    assert text.count(r"\subsection*") == 1 and "sum over the 64 positions where" in text and "58 more terms" in text


def test_the_report_works_at_most_16_deltas_and_counts_the_others() -> None:
    """A small conv net of 3 channels (36 units, an average-pool: no delta is 0): 16 worked, the
    other 20 counted."""
    from chainrule.codegen.report.maps import DELTAS_WORKED, deltas_display

    spec = {"name": "c1", "inputs": {"shape": [2, 6, 5]}, "seed": 3, "loss": "half_sse", "optimizer": {"kind": "sgd", "lr": 0.3},
            "layers": [{"name": "c", "kind": "conv2d", "channels": 3, "kernel": [3, 2], "stride": [2, 1], "padding": [1, 0], "activation": "tanh"},
                       {"name": "p", "kind": "avgpool2d", "kernel": [1, 2]}, {"name": "f", "kind": "flatten"},
                       {"name": "h", "units": 4, "activation": "sigmoid"}, {"name": "o", "units": 2, "activation": "identity"}]}
    d = derive(spec_from_data(spec, "c1.yaml"))
    assert d.small and d.network.sizes[1] == 36
    display = deltas_display(d, d.chains[next(iter(d.network.parameters())).name])
    assert display is not None
    assert sum(1 for row in display.rows if r"\delta" in row.lhs.tex()) == DELTAS_WORKED == 16
    assert "The 20 other deltas that are not 0 are worked the same way" in display.note.tex()


def test_the_report_says_who_takes_the_gradient_at_the_ties() -> None:
    """conv_tie (a tester's, issue 16 D4): the worked deltas' windows tie on the sample; after the
    deltas the report says the max-pool's factor is 1 for the first largest, naming each tie."""
    text = render_report(derive(spec_from_data(yaml.safe_load((ROOT / "tests" / "data" / "conv_tie.yaml").read_text()), "conv_tie.yaml")), "conv_tie.yaml")
    said = text.split("At the ties on this sample the max-pool's factor is 1 for the first largest in row-major order, as PyTorch routes the gradient: ", 1)[1]
    said = said.split(". ", 1)[0]
    assert said.startswith(r"$\mathrm{out}_{\mathit{c\_1\_1\_1}}$ (tied with $\mathrm{out}_{\mathit{c\_1\_1\_2}}$ and $\mathrm{out}_{\mathit{c\_1\_2\_1}}$)")
    assert said.count("tied with") == 3


@needs_tex
def test_the_tie_report_stays_on_the_page(tmp_path) -> None:
    from test_report_pdf import overfull_widths

    d = derive(spec_from_data(yaml.safe_load((ROOT / "tests" / "data" / "conv_tie.yaml").read_text()), "conv_tie.yaml"))
    assert max(overfull_widths(render_report(d, "conv_tie.yaml"), tmp_path), default=0.0) < 1.0
