"""The HTML report (``chainrule report --html``): a page that parses, fetches nothing, holds
well-formed MathML with the .tex's numbers, escapes user text, and (in headless Chromium, when
installed) fits the window."""

from __future__ import annotations

import collections
import html.parser
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from chainrule.codegen.cli import main
from chainrule.codegen.report.context import build_report_context
from chainrule.codegen.report.htmlpage import render_html_context
from chainrule.codegen.report.writer import render_html, render_tex_context, write_html
from chainrule.derive import derive
from chainrule.derive.spec import spec_from_data
from helpers import ROOT, example

GENERATED = ROOT / "generated"
PAGES = sorted(GENERATED.glob("*.html"))
VOID = {"meta", "br", "hr", "img", "input", "link", "wbr", "col", "area", "base", "source", "track", "embed", "param"}


class _Strict(html.parser.HTMLParser):
    """Every element closed in order (void elements and ``<x/>`` aside); the tags seen."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: collections.Counter[str] = collections.Counter()
        self.problems: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.tags[tag] += 1
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs) -> None:
        self.tags[tag] += 1

    def handle_endtag(self, tag) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'} at {self.getpos()}")
            return
        self.stack.pop()


def parsed(text: str) -> _Strict:
    parser = _Strict()
    parser.feed(text)
    parser.close()
    return parser


def fragments(text: str, tag: str) -> list[str]:
    return re.findall(rf"<{tag}\b.*?</{tag}>", text, flags=re.S)


def page_of(name: str, params=()) -> str:
    return render_html(example(name), f"examples/{name}.yaml", params)


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_the_page_parses_and_fetches_nothing(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>\n") and text.endswith("</html>\n")
    page = parsed(text)
    assert not page.problems and not page.stack, (page.problems[:5], page.stack)
    assert page.tags["html"] == page.tags["body"] == page.tags["svg"] == 1 and page.tags["math"] > 10
    # no scripts, frames, links, images, fonts or imports; the one URL is SVG's namespace, a name
    assert not {"script", "link", "iframe", "img", "object", "embed", "base", "form"} & set(page.tags)
    assert not re.search(r"\b(?:src|href|action|srcset|poster|data)\s*=", text)
    assert re.findall(r"[a-z]+://[^\s\"'<>]*", text) == ["http://www.w3.org/2000/svg"]
    assert re.findall(r"url\(([^)]*)\)", text) == ["#arrow"] * len(re.findall(r"url\(", text))
    assert "@import" not in text and "@font-face" not in text


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_every_math_fragment_and_the_diagram_are_well_formed_xml(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for fragment in fragments(text, "math") + fragments(text, "svg"):
        ET.fromstring(fragment)  # raises on a named entity (&ExponentialE;), a stray < or an open tag


def _tex_numbers(tex: str) -> list[str]:
    body = tex.split(r"\begin{document}", 1)[1]
    found = []
    for value in re.findall(r"\\val\{((?:[^{}]|\{[^{}]*\})*)\}", body):
        value = re.sub(r"\\times 10\^\{(-?\d+)\}", r"e\1", value)
        found.append({r"\infty": "inf", r"-\infty": "-inf", r"\mathrm{NaN}": "nan"}.get(value, value))
    return found


def _html_numbers(page: str) -> list[str]:
    found = []
    for fragment in fragments(page, "math"):
        for node in ET.fromstring(fragment).iter():
            if node.get("class") == "val":
                text = "".join(node.itertext()).replace("−", "-")
                found.append(re.sub(r"×10(-?\d+)$", r"e\1", text).replace("∞", "inf").replace("NaN", "nan"))
    return found


@pytest.mark.parametrize("name", ["mazur", "mlp_784_128_10", "softmax_classifier", "custom_activation", "conv_worked", "digits_conv"])
def test_the_page_holds_the_numbers_of_the_tex(name: str) -> None:
    """One context, two printers: every number of the PDF is on the page, as often."""
    context = build_report_context(example(name), f"examples/{name}.yaml")
    tex, page = render_tex_context(context), render_html_context(context)
    numbers = _tex_numbers(tex)
    # the diagram's edge labels are SVG text on the page, the rest MathML
    edge_labels = len(re.findall(r"node\[(?:weight|bias|biaslabel)\b", tex))
    assert len(numbers) > 20
    missing = collections.Counter(numbers) - collections.Counter(_html_numbers(page))
    assert sum(missing.values()) == edge_labels, missing
    for heading in ("The network", "Forward pass", "Backward pass: the chain rule, parameter by parameter", "The layer form: the delta recursion"):
        assert f"<h2>{heading}</h2>" in page
    assert page.count("<h3>") == tex.count(r"\subsection*{")


def test_the_worked_example_shows_every_factor_as_the_pdf() -> None:
    page = (GENERATED / "mazur.html").read_text(encoding="utf-8")
    for value in ("0.593269992", "0.75136507", "0.298371109", "0.35891648", "0.0821670406"):
        assert f"<mn>{value}</mn>" in page, value
    assert "<mi>σ</mi>" in page and "<mfrac>" in page  # σ(net) and the factors as fractions
    assert page.count('<tr><td class="lhs">') > 100


def test_user_text_is_escaped() -> None:
    data = {
        "name": "x_script", "description": '<script>alert("hi")</script> & <b>bold</b> ünïcødé µ',
        "inputs": 2, "layers": [{"name": "h", "units": 2, "activation": "sigmoid"}], "loss": "mse", "seed": 1,
    }
    d = derive(spec_from_data(data, "a<b>&.yaml"))
    page = render_html(d, "dir/<img src=x>&.yaml")
    assert "<script" not in page and "<img" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(&#34;hi&#34;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt; ünïcødé µ" in page or \
        "&lt;script&gt;alert(\"hi\")&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt; ünïcødé µ" in page
    assert "<code>&lt;img src=x&gt;&amp;.yaml</code>" in page
    assert not parsed(page).problems
    for fragment in fragments(page, "math") + fragments(page, "svg"):
        ET.fromstring(fragment)


def test_same_spec_same_bytes() -> None:
    assert page_of("mazur") == page_of("mazur") == (GENERATED / "mazur.html").read_text(encoding="utf-8")


def test_report_html_writes_only_the_page(tmp_path, capsys) -> None:
    assert main(["report", str(ROOT / "examples" / "mazur.yaml"), "-o", str(tmp_path), "--html"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mazur.html"]
    assert capsys.readouterr().out == f"wrote {tmp_path / 'mazur.html'}\n"
    assert (tmp_path / "mazur.html").read_text(encoding="utf-8") == (GENERATED / "mazur.html").read_text(encoding="utf-8")


def test_write_html_is_the_library_call(tmp_path, capsys) -> None:
    from helpers import example_spec

    path = write_html(example_spec("xor"), "examples/xor.yaml", str(tmp_path / "new"))
    assert path == tmp_path / "new" / "xor.html" and path.is_file() and sorted((tmp_path / "new").iterdir()) == [path]
    assert capsys.readouterr().out == ""  # the command line says what was written


def test_bad_param_writes_no_page(tmp_path, capsys) -> None:
    code = main(["report", str(ROOT / "examples" / "mazur.yaml"), "-o", str(tmp_path), "--html", "--param", "nope"])
    assert code == 2 and not list(tmp_path.iterdir())
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--param" in err


def test_a_big_network_page_is_compact() -> None:
    page = (GENERATED / "mlp_784_128_10.html").read_text(encoding="utf-8")
    assert len(page.encode()) < 120_000 and page.count("<h3>") == 2  # one chain per layer, as the PDF
    assert "<rect" in page and "<circle" not in page  # layers as boxes


# ---------------------------------------------------------------------------------------------
# In a browser

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (Debian: apt-get install chromium)")

#: Run in the page by the test only (the report has no script): what sticks out of the window.
PROBE = """<script>
const width = document.documentElement.clientWidth, out = [];
for (const e of document.body.querySelectorAll('*')) {
  if (e.closest('.scroll') && !e.classList.contains('scroll')) continue;  // a box that scrolls on its own
  const r = e.getBoundingClientRect();
  if (r.width && (r.right > width + 0.5 || r.left < -0.5)) out.push(e.tagName + ' ' + Math.round(r.left) + '..' + Math.round(r.right));
}
const boxes = [...document.querySelectorAll('.scroll')];
const report = {width, page: document.documentElement.scrollWidth, out: out.slice(0, 20),
  scrolling: boxes.filter(b => b.scrollWidth > b.clientWidth + 1).length, boxes: boxes.length,
  maths: document.querySelectorAll('math').length, mathHeight: Math.max(...[...document.querySelectorAll('math')].map(m => m.getBoundingClientRect().height))};
document.body.insertAdjacentHTML('beforeend', '<pre id="probe">' + JSON.stringify(report) + '</pre>');
</script>"""


def in_chromium(page: str, tmp_path: Path, width: int) -> dict:
    probe = tmp_path / f"probe-{width}.html"
    probe.write_text(page.replace("</body>", PROBE + "\n</body>"), encoding="utf-8")
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
            f"--window-size={width},2000", "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()]
    dom = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True).stdout
    found = re.findall(r'<pre id="probe">(\{.*?)</pre>', dom, flags=re.S)
    assert found, dom[-2000:]
    return json.loads(html.unescape(found[-1]))


@pytest.mark.slow  # ten browser runs, about 3 s each
@needs_chromium
@pytest.mark.parametrize("name", ["mazur", "mlp_784_128_10", "batch_softmax", "conv_worked", "digits_conv", "bptt_worked", "sequence_sum"])
def test_nothing_overflows_the_window_in_chromium(name: str, tmp_path: Path) -> None:
    page = (GENERATED / f"{name}.html").read_text(encoding="utf-8")
    wide = in_chromium(page, tmp_path, 1200)
    assert wide["page"] <= wide["width"] and not wide["out"], wide
    assert wide["scrolling"] == 0, wide  # at a desktop width every row fits, as on the PDF's page
    assert wide["maths"] > 10 and wide["mathHeight"] < 200, wide  # MathML laid out (not raw text)
    narrow = in_chromium(page, tmp_path, 480)  # a phone: wide rows scroll in their own boxes
    assert narrow["page"] <= narrow["width"] and not narrow["out"], narrow
