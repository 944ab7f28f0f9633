"""Compiling the report: the worked example's PDF, reproducible bytes, errors, TeX's sandbox.

Needs pdflatex and poppler's pdftotext (``.ci/run`` installs them); skipped where they are not.
One module-scoped compile of the worked example serves most tests.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from chainrule.codegen.cli import main
from chainrule.codegen.report.writer import compile_pdf, first_error, render_report, tex_environment
from chainrule.derive.derivation import derive
from chainrule.derive.errors import ChainruleError
from chainrule.derive.spec import spec_from_data
from generator import random_spec, spec_id
from helpers import ROOT, example

pytestmark = pytest.mark.skipif(shutil.which("pdflatex") is None or shutil.which("pdftotext") is None, reason="needs pdflatex and pdftotext")

MINIMAL = "\\documentclass{article}\n\\begin{document}\n%s\n\\end{document}\n"


@pytest.fixture(scope="module")
def mazur_pdf(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    assert main(["report", str(ROOT / "examples/mazur.yaml"), "-o", str(out), "--pdf"]) == 0
    return out / "mazur.pdf"


def test_only_the_tex_and_the_pdf_are_written(mazur_pdf: Path) -> None:
    assert sorted(p.name for p in mazur_pdf.parent.iterdir()) == ["mazur.pdf", "mazur.tex"]


def test_pdf_and_html_together_write_all_three_and_a_failing_compile_none(tmp_path: Path, monkeypatch, capsys) -> None:
    out = tmp_path / "out"
    assert main(["report", str(ROOT / "examples/mazur.yaml"), "-o", str(out), "--pdf", "--html"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["mazur.html", "mazur.pdf", "mazur.tex"]
    assert capsys.readouterr().out == "".join(f"wrote {out / n}\n" for n in ("mazur.pdf", "mazur.html", "mazur.tex"))
    import chainrule.codegen.report.writer as report

    monkeypatch.setattr(report, "render_tex_context", lambda context: MINIMAL % "\\undefinedmacro")
    assert main(["report", str(ROOT / "examples/mazur.yaml"), "-o", str(tmp_path / "none"), "--pdf", "--html"]) == 2
    assert not (tmp_path / "none").exists()


def test_the_pdf_holds_the_published_figures(mazur_pdf: Path) -> None:
    text = subprocess.run(["pdftotext", "-layout", str(mazur_pdf), "-"], capture_output=True, text=True, check=True).stdout
    for figure in ("0.298371109", "0.593269992", "0.75136507", "0.0821670406", "0.35891648", "0.149780716"):
        assert figure in text, figure


def test_the_pdf_is_reproducible(mazur_pdf: Path, tmp_path: Path) -> None:
    again = compile_pdf(render_report(example("mazur"), "examples/mazur.yaml"), "mazur", tmp_path)
    assert again.read_bytes() == mazur_pdf.read_bytes()
    assert b"/ID" not in mazur_pdf.read_bytes()


def test_a_failing_compile_shows_the_first_error_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ChainruleError) as error:
        compile_pdf(MINIMAL % "fine\n\\undefinedmacro{}\n\\alsoundefined", "bad", tmp_path)
    message = str(error.value)
    assert "Undefined control sequence" in message and "line 4" in message and "alsoundefined" not in message
    assert "\n" not in message


def test_tex_cannot_write_outside_its_directory(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    outside = tmp_path / "escaped.txt"
    body = f"\\immediate\\openout5={outside}\\immediate\\write5{{x}}\\immediate\\closeout5\n" "\\immediate\\openout6=../up.txt\\immediate\\write6{x}\\immediate\\closeout6\nok"
    try:
        compile_pdf(MINIMAL % body, "sandbox", work)
    except ChainruleError:
        pass  # refusing to open the file is as good as not writing it
    assert not outside.exists() and not (tmp_path / "up.txt").exists()


def test_tex_cannot_read_outside_its_directory(tmp_path: Path) -> None:
    secret = tmp_path / "secret.tex"
    secret.write_text("SECRETWORD")
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(ChainruleError):
        compile_pdf(MINIMAL % f"\\input{{{secret}}}", "reader", work)


def test_shell_escape_is_off(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    work = tmp_path / "work"
    work.mkdir()
    try:
        compile_pdf(MINIMAL % f"\\immediate\\write18{{touch {marker}}}ok", "shell", work)
    except ChainruleError:
        pass
    assert not marker.exists()


def test_first_error_reads_a_plain_log() -> None:
    log = "This is pdfTeX\n! Missing $ inserted.\n<inserted text>\n$\nl.12 a_\n        b\n! Another error\n"
    assert first_error(log) == "Missing $ inserted. (line 12 near 'a_')"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["textbook_121", "softmax_classifier", "custom_activation", "mlp_784_128_10"])
def test_examples_compile_without_overfull_lines(name: str, tmp_path: Path) -> None:
    spec_name = example(name).network.spec.name
    pdf = compile_pdf((ROOT / "generated" / f"{spec_name}.tex").read_text(encoding="utf-8"), spec_name, tmp_path)
    log = (tmp_path / f"{spec_name}.log").read_text(errors="replace")
    assert pdf.stat().st_size > 10_000
    assert "Overfull \\hbox" not in log
    pages = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    if name == "mlp_784_128_10":
        assert int(pages.split("Pages:")[1].split()[0]) <= 10


def test_a_failing_compile_leaves_nothing_in_the_output_directory(tmp_path: Path, monkeypatch, capsys) -> None:
    import chainrule.codegen.report.writer as report

    monkeypatch.setattr(report, "render_tex_context", lambda context: MINIMAL % "\\undefinedmacro")
    assert main(["report", str(ROOT / "examples/mazur.yaml"), "-o", str(tmp_path / "out"), "--pdf"]) == 2
    err = capsys.readouterr().err
    assert "pdflatex failed: Undefined control sequence" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


WIDE = spec_from_data({
    "name": "wide", "inputs": ["p", "q"],
    "layers": [{"name": "h", "units": 2, "activation": "gelu", "bias": "none"},
               {"name": "g", "units": 1, "activation": {"formula": " + ".join(f"sin({k}*x)/{k + 1}" for k in range(1, 25))}},
               {"name": "o", "units": 2, "activation": "softmax"}],
    "loss": "cross_entropy", "seed": 1, "sample": {"x": [1.2, -0.7], "t": [0, 1]}}, "wide.yaml")
#: The issue's wide matrices: a 5x6 dE/dW1 lost its 6th column (85 pt over), a 4-6-5-3 net one more (152 pt).
SIX_INPUTS = spec_from_data({
    "name": "six", "inputs": 6, "layers": [{"name": "h", "units": 5, "activation": "tanh"}, {"name": "o", "units": 1, "activation": "sigmoid"}],
    "loss": "half_sse", "seed": 1}, "six.yaml")
GELU_ELU = spec_from_data({
    "name": "gelu_elu", "inputs": 4, "layers": [{"name": "h", "units": 6, "activation": "gelu"}, {"name": "g", "units": 5, "activation": "elu"},
                                                {"name": "o", "units": 3, "activation": "sigmoid"}],
    "loss": "half_sse", "seed": 1}, "gelu_elu.yaml")


def overfull_widths(tex: str, work: Path) -> list[float]:
    """How far each overfull line of ``tex`` runs past the margin, in pt (one pdflatex pass in
    draft mode: enough to set every line, and faster than writing the PDF)."""
    (work / "r.tex").write_text(tex, encoding="utf-8")
    run = subprocess.run(["pdflatex", "-draftmode", "-interaction=nonstopmode", "-halt-on-error", "r.tex"], cwd=work, env=tex_environment(), capture_output=True)
    log = (work / "r.log").read_text(encoding="utf-8", errors="replace")
    assert run.returncode == 0, first_error(log)
    return [float(x) for x in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log)]


@pytest.mark.parametrize("derivation", [pytest.param(lambda: example("deep_tanh_relu"), id="deep_tanh_relu (4 layers)"),
                                        pytest.param(lambda: derive(WIDE), id="gelu and a 24-term formula activation"),
                                        pytest.param(lambda: derive(SIX_INPUTS), id="6-5-1 tanh (a 5x6 matrix)"),
                                        pytest.param(lambda: derive(GELU_ELU), id="4-6-5-3 gelu elu")])
def test_nothing_runs_off_the_page(derivation, tmp_path: Path) -> None:
    # the diagram of 4 layers, the unbroken gelu and formula lines of the layer form and the
    # gradient matrices of 6 columns did, by 70-4600 pt
    wide = overfull_widths(render_report(derivation(), "spec.yaml"), tmp_path)
    assert max(wide, default=0.0) < 5.0, wide


#: Random architectures of up to 6 layers and 8 units a layer (and 8 inputs).
UP_TO_8 = {"max_depth": 6, "max_width": 8, "max_inputs": 8}


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(48), ids=lambda seed: spec_id(seed, **UP_TO_8))
def test_no_random_architecture_runs_off_the_page(seed: int, tmp_path: Path) -> None:
    spec = spec_from_data(random_spec(seed, **UP_TO_8), f"net{seed}.yaml")
    wide = overfull_widths(render_report(derive(spec), f"net{seed}.yaml"), tmp_path)
    assert max(wide, default=0.0) < 5.0, wide


def test_the_diagram_width_the_readability_rule_uses_is_what_tex_draws(tmp_path: Path) -> None:
    # the rule scales each unit-by-unit drawing to the line width and asks whether its smallest
    # text stays readable: its width estimate must be TeX's, within 10 %
    from chainrule.codegen.report import diagram

    derivations = [example("mazur"), example("deep_tanh_relu"), example("softmax_classifier")]
    derivations.append(derive(spec_from_data({"name": "long_names", "inputs": 2, "layers": [
        {"name": "first_hidden_layer", "units": 2, "activation": "tanh"}, {"name": "the_output_layer", "units": 2, "activation": "sigmoid"}],
        "loss": "half_sse", "seed": 3}, "long.yaml")))
    preamble = render_report(derivations[0], "m.yaml").split(r"\begin{document}")[0]
    pictures = ["\\setbox0\\hbox{\\begin{tikzpicture}\n" + "\n".join(diagram._units(d).commands) + f"\n\\end{{tikzpicture}}}}\\typeout{{WIDTH{i}:\\the\\wd0}}" for i, d in enumerate(derivations)]
    (tmp_path / "w.tex").write_text(preamble + "\\begin{document}\n" + "\n".join(pictures) + "\nx\n\\end{document}\n", encoding="utf-8")
    subprocess.run(["pdflatex", "-draftmode", "-interaction=nonstopmode", "w.tex"], cwd=tmp_path, env=tex_environment(), capture_output=True)
    measured = dict(re.findall(r"WIDTH(\d+):([\d.]+)pt", (tmp_path / "w.log").read_text(errors="replace")))
    for i, d in enumerate(derivations):
        tex_cm = float(measured[str(i)]) / 72.27 * 2.54
        assert abs(diagram._units_width_cm(d) - tex_cm) <= 0.1 * tex_cm, (d.network.spec.name, diagram._units_width_cm(d), tex_cm)


def test_non_ascii_text_is_typeset_in_type_1_fonts_and_reads_back(tmp_path: Path) -> None:
    # curly quotes, the en-dash and µ used to print as "?"
    import unicodedata

    description = "“Quoted” – en-dash, 5 µs, naïve café, ‘single’, Straße, Ångström, Łódź, η ≤ 0.5, 90°, ﬁne, 日本"
    spec = spec_from_data({"name": "text", "description": description, "inputs": 1, "layers": [{"name": "o", "units": 1, "activation": "sigmoid"}],
                           "loss": "half_sse", "seed": 1}, "text.yaml")
    pdf = compile_pdf(render_report(derive(spec), "dir/naïve–“v2”.yaml"), "text", tmp_path)
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert "Type 3" not in fonts, fonts  # bitmaps, whose text pdftotext cannot read back
    text = subprocess.run(["pdftotext", "-l", "1", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    # pdftotext reads an accented i as a dotless one and the accent, Ł (an L and a stroke) as L,
    # and the degree sign as a raised ring, ◦
    text = unicodedata.normalize("NFKC", text.replace("ı", "i").replace("◦ ", "°"))
    expected = unicodedata.normalize("NFKC", description.replace("Ł", "L").replace("日本", "??"))
    assert expected in " ".join(text.split())
    assert "naïve-’’v2’’.yaml" in text  # in typewriter type: what its font has
