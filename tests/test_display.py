"""Rich display in Jupyter (issue 17): every result's ``_repr_html_`` is a fragment that parses
with every tag closed, its MathML well-formed XML (the report's printer), user text escaped; the
LaTeX is an ``aligned`` block; a big network stays compact; ``chainrule.train`` trains with
``Network.fit``'s own steps and its history displays (the curve with matplotlib)."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ElementTree
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

import chainrule
from helpers import ROOT, optional

MAZUR = ROOT / "examples" / "mazur.yaml"
XOR = ROOT / "examples" / "xor.yaml"
MISTAKES = ROOT / "examples" / "claims" / "mazur_mistakes.yaml"
VOID = {"img", "br", "hr", "meta", "input", "col", "area", "base", "link", "source", "wbr"}


class _Balanced(HTMLParser):
    """Tags opened and closed in order (void elements aside); the text seen."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.text: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append(tag)
        if tag not in VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag, attrs) -> None:
        self.tags.append(tag)

    def handle_endtag(self, tag) -> None:
        assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open[-1:]}"
        self.open.pop()

    def handle_data(self, data) -> None:
        self.text.append(data)


def well_formed(fragment: str) -> _Balanced:
    """``fragment`` parses with every tag closed; each <math> is well-formed XML."""
    parser = _Balanced()
    parser.feed(fragment)
    parser.close()
    assert not parser.open, parser.open
    for math in re.findall(r"<math\b.*?</math>", fragment, re.S):
        ElementTree.fromstring(math.replace("&nbsp;", "&#160;"))
    assert "<script" not in fragment
    return parser


@pytest.fixture(scope="module")
def mazur() -> chainrule.Derivation:
    return chainrule.derive(MAZUR)


def test_a_derivation_displays_typeset(mazur) -> None:
    page = mazur._repr_html_()
    parsed = well_formed(page)
    assert page.startswith('<div class="chainrule">') and page.count("<math") > 40
    text = " ".join(parsed.text)
    assert "0.298371109" in page and "Forward pass" in text and "delta recursion" in text
    assert all(f"{value:.9g}" in page for value in (mazur.gradients["w5"], mazur.updated["w5"]))
    assert mazur._repr_markdown_().startswith("**mazur**")
    latex = mazur._repr_latex_()
    assert latex.startswith("$$") and latex.endswith("$$") and r"\begin{aligned}" in latex and "0.298371109" in latex


def test_a_chain_displays_the_report_s_section(mazur) -> None:
    chain = mazur.chain("w1")
    page = chain._repr_html_()
    well_formed(page)
    assert "2 paths" in page and "path 2" in page and f"{chain.gradient:.9g}" in page and f"{chain.updated:.9g}" in page
    latex = chain._repr_latex_()
    assert r"\frac{\partial E}{\partial w_{1}}" in latex and f"{chain.updated:.9g}" in latex
    assert chain == chainrule.derive(MAZUR).chain("w1")  # the engine is no part of equality


def test_a_big_network_displays_per_layer() -> None:
    d = chainrule.derive(ROOT / "examples" / "digits.yaml")
    page = d._repr_html_()
    well_formed(page)
    assert len(page) < 40_000 and "2,410 parameters" in page and "w1" not in re.sub(r"<[^>]+>", "", page).split("chain")[0]
    for name in ("w1", "w2049"):
        chain = d.chain(name)
        page = chain._repr_html_()
        well_formed(page)
        assert f"{chain.gradient:.9g}" in page and len(page) < 60_000


def test_a_check_displays_as_a_table(tmp_path: Path) -> None:
    folder = tmp_path / "a<b>&c"
    emitted = chainrule.emit(MAZUR, folder)
    checked = chainrule.check(MAZUR, points=1, emitted=emitted)
    page = checked._repr_html_()
    parsed = well_formed(page)
    assert "check passed" in page and page.count("<tr") == 1 + 8 + 1 + 8
    assert "a<b>&c" not in page and "a&lt;b&gt;&amp;c" in page and "a<b>&c" in " ".join(parsed.text)


def test_verdicts_display_with_the_claims_escaped(tmp_path: Path) -> None:
    claims = tmp_path / "<i>class & co.yaml"
    shutil.copy(MISTAKES, claims)
    shutil.copy(MAZUR, tmp_path / "mazur.yaml")
    verification = chainrule.verify(tmp_path / "mazur.yaml", claims)
    page = verification._repr_html_()
    parsed = well_formed(page)
    assert "<i>class" not in page and "&lt;i&gt;class &amp; co.yaml" in page
    assert f"{verification.right} of {verification.total} right" in page
    assert page.count('class="bad"') == verification.total - verification.right
    assert "(t1 - o1) * o1 * (1 - o1) * h1" in " ".join(parsed.text)  # a claim as written
    assert "w5+" not in " ".join(parsed.text) and "<msup><msub><mi>w</mi>" in page  # w5+ as math


def test_train_takes_fit_s_steps_and_records_each_epoch() -> None:
    history = chainrule.train(XOR, epochs=40, batch_size=2, seed=3)
    module = chainrule.trainer(XOR)
    X, T = module.load_data(str(ROOT / "examples" / "xor.csv"), *module.DATA_COLUMNS)
    net = module.Network()
    assert list(history.step_loss) == net.fit(X, T, epochs=40, batch_size=2, seed=3)
    assert np.array_equal(history.network.theta, net.theta)
    assert len(history.loss) == len(history.accuracy) == 40 and history.held_out_loss is None
    assert history.loss[-1] == net.evaluate(X, T)["loss"] and history.loss[-1] < history.before
    assert history.final_loss == history.loss[-1] and history.rows == 4
    held = chainrule.train(ROOT / "examples" / "digits.yaml", epochs=2, validation_split=0.2)
    assert held.rows == 1438 and len(held.held_out_loss) == len(held.held_out_accuracy) == 2 and held.accuracy[-1] > 0.5
    sample = chainrule.train(MAZUR, epochs=5, batch_size=1, lr=0.1)
    assert sample.rows == 1 and sample.accuracy is None and sample.network.lr == 0.1


def test_train_refuses_bad_arguments_in_one_line() -> None:
    for kwargs, field in (({"epochs": -1}, "epochs"), ({"batch_size": 0}, "batch_size"), ({"lr": 0}, "lr"),
                          ({"validation_split": 1.0}, "validation_split"), ({"X": np.zeros((2, 2))}, "X, T"),
                          ({"X": np.zeros((2, 3)), "T": np.zeros((2, 1))}, "X, T"),
                          ({"validation_split": 0.1}, "validation_split")):
        with pytest.raises(chainrule.ChainruleError) as caught:
            chainrule.train(XOR, **kwargs)
        assert caught.value.field == field and "\n" not in str(caught.value), (kwargs, str(caught.value))
    with pytest.raises(FloatingPointError, match="at epoch 2, step 1: "):  # fit's message, with the epoch of train
        _overflow_at_epoch_2()


def _overflow_at_epoch_2() -> None:
    spec = {"name": "lin", "inputs": 1, "layers": [{"name": "o", "units": 1, "activation": "identity", "weights": [[1.0]]}],
            "loss": "sse", "sample": {"x": [1e100], "t": [0.0]}, "optimizer": {"kind": "sgd", "lr": 1.0}}
    chainrule.train(spec, epochs=5, batch_size=1)


@pytest.mark.skipif(optional("matplotlib") is None, reason="needs matplotlib (pip install '.[notebook]')")
def test_the_history_displays_its_curve() -> None:
    history = chainrule.train(XOR, epochs=30, batch_size=4, validation_split=0.25)
    page = history._repr_html_()
    well_formed(page)
    assert '<img alt="the loss per epoch" src="data:image/png;base64,' in page
    assert "held-out accuracy" in page and history._repr_markdown_().startswith("**xor**: 30 epochs")
    import matplotlib

    matplotlib.use("Agg")
    axes = history.plot()
    assert axes.get_xlabel() == "epoch" and len(axes.get_lines()) == 2


def test_the_history_table_shows_the_first_middle_and_last_epochs() -> None:
    from chainrule.codegen.report.notebook import history_html

    def epochs_shown(n: int) -> list[int]:
        page = history_html("n", [0.5] * n, None, None, None, 1.0, None)
        return [int(e) for e in re.findall(r"<tr><td>(\d+)</td>", page)]

    assert [epochs_shown(n) for n in (1, 2, 3, 5, 40)] == [[1], [1, 2], [1, 2, 3], [1, 3, 5], [1, 20, 40]]
    assert "1 epoch," in history_html("n", [0.5], None, None, None, 1.0, None)
    one = chainrule.train(XOR, epochs=1, batch_size=4)
    assert "1 epoch," in repr(one) and "1 epoch," in one._repr_markdown_()


def test_a_batch_displays_as_the_report_shows_it() -> None:
    """A batch of several samples: tables with a column per sample, then E and the gradient
    reduced, as the report (no LaTeX: tables are no aligned block)."""
    data = {"name": "pair", "inputs": 1, "layers": [{"name": "o", "units": 1, "activation": "sigmoid", "weights": [[0.5]]}],
            "loss": "half_sse", "samples": [{"x": [1.0], "t": [0.0]}, {"x": [-2.0], "t": [1.0]}]}
    d = chainrule.derive(data)
    for result in (d, d.chain("w1")):
        page = result._repr_html_()
        well_formed(page)
        assert "<pre>" not in page and '<table class="steps">' in page and "<th>sample 2</th>" in page
        assert result._repr_latex_() is None
    assert "∂E/∂θ on the batch" in d._repr_html_()
    assert "the mean of the 2 samples' gradients" in d.chain("w1")._repr_html_()
