"""The report of a batch of samples (spec.md section 5): the forward passes as tables, a column
per sample; each sample's loss and the reduced loss; each parameter's factors and gradient per
sample, then reduced; the update from the reduced gradient. Numbers against PyTorch float64; the
.tex and the HTML page hold the same; the PDF fits the page, the page the window."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from chainrule.codegen.cli import main
from chainrule.codegen.files import load_spec
from chainrule.codegen.report.context import SAMPLE_COLUMNS, Table, build_report_context, param_section
from chainrule.codegen.report.document import Num
from chainrule.codegen.report.htmlpage import render_html_context
from chainrule.codegen.report.writer import render_report, render_tex_context
from chainrule.derive import derive
from chainrule.derive.spec import spec_from_data
from helpers import ROOT, needs_torch
from test_batches import batch_spec

BATCH = ROOT / "tests" / "data" / "mazur_batch.yaml"


def numbers(item) -> list[float]:
    """Every number of a table, a display or a piece of math, in order."""
    if isinstance(item, Num):
        return [float(item.value)]
    if isinstance(item, (list, tuple)):
        return [x for part in item for x in numbers(part)]
    found = []
    for attribute in getattr(type(item), "__slots__", ()) or getattr(item, "__dataclass_fields__", {}):
        found += numbers(getattr(item, attribute, None))
    return found


def _cells(tables: tuple[Table, ...], label: str) -> list[float]:
    """The values of the row whose label's LaTeX holds ``label``, across the tables of one
    quantity (a column per sample, several tables for many samples)."""
    return [v for t in tables for row in t.rows if label in row[0].tex() for v in numbers(row[1:])]


def test_a_batch_of_three_on_the_page():
    d = derive(load_spec(str(BATCH)))
    context = build_report_context(d, str(BATCH))
    assert context.batch and all(isinstance(t, Table) for t in context.forward)
    assert [h.tex() for h in context.forward[0].header] == ["", "sample 1", "sample 2", "sample 3"]
    assert _cells(context.forward, r"E_{k}") == pytest.approx(d.sample_losses)
    assert numbers(context.loss[-1])[-4:] == pytest.approx([*d.sample_losses, d.loss])
    section = next(p for p in context.params if p.heading.tex().endswith("w_{5}$"))
    tables = tuple(x for x in section.displays if isinstance(x, Table))
    w5 = d.chains["w5"]
    assert _cells(tables, r"E_{k}") == pytest.approx([d.sample_gradient(w5, k) for k in range(3)])
    reduced = next(x for x in section.displays if not isinstance(x, Table) and "mean of the 3 samples' gradients" in x.caption.tex())
    assert numbers(reduced)[-1] == pytest.approx(0.0277468384, abs=5e-11)
    tex = render_tex_context(context)
    page = render_html_context(context)
    for text in (tex, page):
        assert "0.0277468384" in text and "0.386126581" in text and "0.320373762" in text and "sample 3" in text
    assert "the mean of its 3 samples' losses" in tex and r"\frac{1}{3}" in tex


def test_many_samples_take_several_tables():
    data = batch_spec(3, 7, "sum")
    d = derive(spec_from_data(data, "seven.yaml"))
    context = build_report_context(d, "seven.yaml")
    widths = {len(t.header) - 1 for t in context.forward}
    assert widths == {SAMPLE_COLUMNS, 7 - SAMPLE_COLUMNS}
    assert _cells(context.forward, r"E_{k}") == pytest.approx(d.sample_losses)


def test_the_command_line_writes_a_batch_report(tmp_path, capsys):
    assert main(["report", str(BATCH), "-o", str(tmp_path), "--html"]) == 0
    assert (tmp_path / "mazur_batch.html").exists()


@needs_torch
@pytest.mark.parametrize("seed, samples, reduction", [(1, 2, "sum"), (2, 3, "mean"), (4, 5, "sum"), (5, 6, "mean"), (6, 7, "sum"), (7, 7, "mean"), (8, 4, "mean")])
def test_the_reports_numbers_are_torchs(seed, samples, reduction):
    """Each sample's loss, the reduced loss, and for every parameter each sample's gradient and
    the reduced gradient on the page equal PyTorch float64 autograd."""
    import torch_bridge

    d = derive(spec_from_data(batch_spec(seed, samples, reduction), f"seed {seed}"))
    context = build_report_context(d, "s.yaml")
    scale = samples if reduction == "sum" else 1
    per_sample = [torch_bridge.torch_gradients(d.network, d.values, d.values.X[k:k + 1], d.values.T[k:k + 1]) for k in range(samples)]
    loss, dW, db = torch_bridge.torch_gradients(d.network, d.values, d.values.X, d.values.T)
    assert _cells(context.forward, r"E_{k}") == pytest.approx([x[0] for x in per_sample], rel=1e-12, abs=1e-14)
    assert numbers(context.loss[-1])[-1] == pytest.approx(loss * scale, rel=1e-12, abs=1e-14)
    for name, chain in d.chains.items():
        ref = chain.param

        def pick(W, b):
            return float(W[ref.layer - 1][ref.row, ref.col] if ref.is_weight else b[ref.layer - 1][ref.row])
        section = param_section(d, name)
        tables = tuple(x for x in section.displays if isinstance(x, Table))
        assert _cells(tables, r"E_{k}") == pytest.approx([pick(*x[1:]) for x in per_sample], rel=1e-8, abs=1e-12), name
        reduced = next(x for x in section.displays if not isinstance(x, Table) and "samples' gradients" in x.caption.tex())
        assert numbers(reduced)[-1] == pytest.approx(pick(dW, db) * scale, rel=1e-8, abs=1e-12), name


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs pdflatex")
@pytest.mark.parametrize("data", [pytest.param(lambda: batch_spec(6, 7, "sum"), id="7 samples, 3 layers"),
                                  pytest.param(lambda: _big_batch(), id="64-32-10 on 6 samples"),
                                  pytest.param(lambda: _mazur_64(), id="mazur on 64 samples (gradients written with powers of ten)")])
def test_a_batch_report_runs_off_no_page(data, tmp_path):
    from test_report_pdf import overfull_widths

    wide = overfull_widths(render_report(derive(spec_from_data(data(), "b.yaml")), "b.yaml"), tmp_path)
    assert max(wide, default=0.0) < 5.0, wide


def _mazur_64() -> dict:
    """The worked example on 64 seeded samples: some per-sample gradients are about 1e-5, whose
    numbers (written with a power of ten) are wider than others: their tables hold fewer samples."""
    import yaml

    data = yaml.safe_load(BATCH.read_text())
    rng = np.random.default_rng(1)
    data["samples"] = [{"x": [round(float(v), 3) for v in rng.random(2)], "t": [round(float(v), 3) for v in rng.random(2)]} for _ in range(64)]
    return data


def _big_batch() -> dict:
    rng = np.random.default_rng(5)
    samples = [{"x": [round(float(v), 3) for v in rng.random(64)], "t": [float(k == j) for j in range(10)]} for k in range(6)]
    return {"name": "big_batch", "inputs": 64, "layers": [{"name": "h", "units": 32, "activation": "relu"}, {"name": "o", "units": 10, "activation": "softmax"}],
            "loss": "cross_entropy", "seed": 1, "reduction": "sum", "samples": samples}


def test_a_big_network_on_a_batch_stays_at_layer_level():
    d = derive(spec_from_data(_big_batch(), "big.yaml"))
    context = build_report_context(d, "big.yaml")
    assert not d.small and not any(isinstance(x, Table) for x in context.forward)
    assert "on all 6 samples" in context.forward[0].caption.tex()
    assert numbers(context.loss[-1])[-1] == pytest.approx(d.loss)
    assert len(context.params) == 2  # one weight per layer


@pytest.mark.slow
def test_a_batch_page_fits_the_window_in_chromium(tmp_path):
    from test_report_html import CHROMIUM, in_chromium

    if CHROMIUM is None:
        pytest.skip("needs chromium")
    page = render_html_context(build_report_context(derive(spec_from_data(batch_spec(6, 7, "sum"), "b.yaml")), "b.yaml"))
    wide = in_chromium(page, tmp_path, 1200)
    assert wide["page"] <= wide["width"] and not wide["out"], wide
    assert wide["scrolling"] == 0, wide
    narrow = in_chromium(page, tmp_path, 480)
    assert narrow["page"] <= narrow["width"] and not narrow["out"], narrow


ACTIVATION_BATCH = {
    "name": "act_batch", "inputs": 2,
    "layers": [{"name": "h", "units": 2, "activation": "sigmoid"}, {"name": "s", "kind": "activation", "activation": "softmax"}],
    "loss": "cross_entropy", "seed": 2, "reduction": "sum",
    "samples": [{"x": [0.05, 0.1], "t": [1, 0]}, {"x": [0.1, 0.2], "t": [0, 1]}, {"x": [0.3, -0.2], "t": [1, 0]}],
}


def test_a_layer_without_weights_on_a_batch():
    """A layer without weights has outputs and no nets in the batch's forward table; a claim about
    its unit on one sample is judged."""
    from chainrule.derive.hand.claims import parse_claims
    from chainrule.derive.hand.verify import Verifier

    d = derive(spec_from_data(ACTIVATION_BATCH, "act.yaml"))
    context = build_report_context(d, "act.yaml")
    labels = [row[0].tex() for t in context.forward for row in t.rows]
    assert labels[-3:] == ["$s_{1}$", "$s_{2}$", "$E_{k}$"] and not any("_{s1}" in x for x in labels)
    assert _cells(context.forward, r"E_{k}") == pytest.approx(d.sample_losses)
    v = Verifier(d)
    s1 = float(d.at_sample(1).sample.outs[2][0, 0])
    verdicts = v.verify(parse_claims(f"claims:\n  - {{of: s1, sample: 2, value: {s1:.9g}}}\n  - {{of: E, value: {d.loss:.9g}}}\n", "c.yaml", "yaml", v.network, v.graph))
    assert all(x.correct for x in verdicts), [x.diagnosis for x in verdicts]
