"""The report (``chainrule report``): golden .tex files, every number the derivation's, escaping,
the template's guard, the command line; compiling lives in test_report_pdf.py."""

from __future__ import annotations

import difflib
import itertools
import json
import math
import re

import numpy as np
import pytest

from chainrule.codegen.report import diagram, latex, latex_text
from chainrule.codegen.cli import main
from chainrule.codegen.report.document import Expr, Tok
from chainrule.codegen.report.equations import pieces
from chainrule.codegen.golden import REFRESH, render_generated_reports
from chainrule.codegen.terminal.jsonout import derivation_document
from chainrule.codegen.report.latex import Tex, environment, escape_text, math_tex, name_tex, number_text, operand_tex
from chainrule.codegen.report.writer import render_report
from chainrule.derive import derive
from chainrule.derive.optimizers import GRAD, OPTIMIZERS, THETA, first_step_expr
from chainrule.derive.spec import spec_from_data
from helpers import EXAMPLE_FILES, ROOT, SEQUENCE_EXAMPLES, example

GENERATED = ROOT / "generated"
NAMES = [p.stem for p in EXAMPLE_FILES if p.stem not in SEQUENCE_EXAMPLES]


def report_of(name: str, params=()) -> str:
    return render_report(example(name), f"examples/{name}.yaml", params)


# -- golden files --------------------------------------------------------------------------------


def test_generated_reports_match_what_report_writes() -> None:
    expected = render_generated_reports(ROOT)
    present = sorted(p.name for p in [*GENERATED.glob("*.tex"), *GENERATED.glob("*.html")])
    assert present == sorted(expected), f"generated/ holds {present}, expected {sorted(expected)}; refresh with `{REFRESH}`"
    for name, text in expected.items():
        found = (GENERATED / name).read_text(encoding="utf-8")
        if found != text:
            diff = "".join(difflib.unified_diff(found.splitlines(True), text.splitlines(True), f"generated/{name}", "reported now"))
            pytest.fail(f"generated/{name} differs from what report writes; refresh with `{REFRESH}`\n{diff[:20000]}")


def test_same_spec_same_bytes() -> None:
    first = report_of("softmax_classifier")
    again = render_report(derive(example("softmax_classifier").network.spec), "examples/softmax_classifier.yaml")
    assert first == again and first.endswith("\n") and not first.endswith("\n\n") and "\r" not in first


# -- every number is the derivation's --------------------------------------------------------------


#: A weight's label on an edge of the diagram: its name and its value.
EDGE_LABEL = re.compile(r"node\[weight, pos=[0-9.]+\] \{\$([^$]*) = \\val\{(-?[0-9.e+-]+)\}\$\}")


def tex_numbers(text: str) -> list[str]:
    """Every ``\\val{...}`` of the body, back in the plain form ``number_text`` writes."""
    body = text.split(r"\begin{document}", 1)[1]
    found = []
    for raw in re.findall(r"\\val\{([^{}]*(?:\{[^{}]*\}[^{}]*)?)\}", body):
        match = re.fullmatch(r"(-?[0-9.]+)\\times 10\^\{(-?[0-9]+)\}", raw)
        found.append(f"{match.group(1)}e{int(match.group(2)):+03d}" if match else raw)
    return found


def known_numbers(d, params=()) -> set[str]:
    """Every number the derivation holds, as the report prints them: the JSON document of
    ``derive --json``, the parameters and sample, the layer form's arrays and their summaries."""
    values: list[float] = []

    def walk(node) -> None:
        if isinstance(node, bool):
            return
        if isinstance(node, (int, float)):
            values.append(float(node))
        elif isinstance(node, dict):
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(json.loads(json.dumps(derivation_document(d, params))))
    arrays = list(d.values.W) + [b for b in d.values.b if b is not None] + [d.values.X.ravel(), d.values.T.ravel()]
    arrays += list(d.sample.nets) + list(d.sample.outs) + list(d.sample.deltas) + list(d.sample.dW)
    arrays += [b for b in d.sample.db if b is not None]
    for a in arrays:
        a = np.asarray(a, dtype=float)
        values += a.ravel().tolist() + [a.min(), a.max(), a.mean(), float(np.linalg.norm(a)), float(np.abs(a).max())]
    for chain in d.chains.values():
        values += d.path_values(chain) + [d.chain_gradient(chain)]
        values += [d.factor_value(f) for p in chain.paths for f in p.factors]
    values += [v for _, v in d.network.spec.optimizer.hyper]
    values += [v for layer in d.network.spec.layers for _, v in layer.activation.params]
    return {number_text(v) for v in values} | {number_text(abs(v)) for v in values}


@pytest.mark.parametrize("name", NAMES)
def test_every_number_in_the_report_is_the_derivations(name: str) -> None:
    text = (GENERATED / f"{example(name).network.spec.name}.tex").read_text(encoding="utf-8")
    numbers = tex_numbers(EDGE_LABEL.sub("", text))  # the diagram's labels: to 4 digits, tested below
    assert len(numbers) > 20
    d = example(name)
    if not d.small or len(d.chains) < d.network.parameter_count:
        from chainrule.codegen.report.context import _chosen, _with_chains

        d = _with_chains(d, _chosen(d, (), False))
    known = known_numbers(d)
    unknown = sorted(set(numbers) - known)
    assert not unknown, f"numbers in generated/{name}.tex that the derivation does not hold: {unknown[:10]}"


@pytest.mark.parametrize("name", ["mazur", "textbook_121", "xor", "custom_activation"])
def test_the_diagram_labels_each_edge_with_its_weight_to_four_digits(name: str) -> None:
    d = example(name)
    text = (GENERATED / f"{d.network.spec.name}.tex").read_text(encoding="utf-8")
    weights = {latex.name_tex(d.network.weight_name(l, r, c)): float(W[r, c])
               for l, W in enumerate(d.values.W, start=1) for r in range(W.shape[0]) for c in range(W.shape[1])}
    labels = EDGE_LABEL.findall(text)
    assert labels and len(labels) == len(dict(labels))
    for weight, value in labels:
        assert value == latex.number_text(weights[weight], 4), weight


def deep_net(depth: int, units: int = 5, bias: str = "per_unit") -> dict:
    layers = [{"name": f"l{k}", "units": units, "activation": "tanh", "bias": bias} for k in range(1, depth)]
    return {"name": "deep", "inputs": units, "layers": [*layers, {"name": "o", "units": units, "activation": "sigmoid", "bias": bias}], "loss": "half_sse", "seed": 1}


def test_a_diagram_too_small_to_read_unit_by_unit_is_drawn_as_boxes_that_fit() -> None:
    # 8 layers of 5 units (240 parameters) were drawn unit by unit at about 4 pt
    d = derive(spec_from_data(deep_net(8), "deep.yaml"))
    assert diagram.smallest_text_pt(d) < diagram.MIN_TEXT_PT
    drawn = diagram.build_diagram(d)
    assert not any("node[unit]" in c for c in drawn.commands) and sum("node[box" in c for c in drawn.commands) == 9
    xs = [float(x) for c in drawn.commands for x in re.findall(r"\bat \(([-0-9.]+),", c)]
    assert max(xs) + 2.4 <= diagram.LINE_WIDTH_CM  # four boxes to a row: not scaled down
    assert "Layers as boxes" in drawn.caption.tex()


@pytest.mark.parametrize("name", ["mazur", "deep_tanh_relu", "xor", "textbook_121", "custom_activation", "softmax_classifier"])
def test_examples_drawn_unit_by_unit_are_readable(name: str) -> None:
    d = example(name)
    assert any("node[unit]" in c for c in diagram.build_diagram(d).commands)
    assert diagram.smallest_text_pt(d) >= diagram.MIN_TEXT_PT


@pytest.mark.parametrize("spec", [pytest.param(deep_net(2, 3, "none"), id="no bias"), pytest.param(deep_net(2, 3, "shared"), id="shared"),
                                  pytest.param(deep_net(2, 3), id="per unit"), pytest.param(deep_net(8, 3, "none"), id="boxes, no bias"),
                                  pytest.param(deep_net(8, 3), id="boxes")])
def test_the_diagram_caption_says_only_what_is_drawn(spec: dict) -> None:
    drawn = diagram.build_diagram(derive(spec_from_data(spec, "deep.yaml")))
    commands, caption = "\n".join(drawn.commands), drawn.caption.tex()
    assert ("dashed" in caption) == ("biasedge" in commands)
    assert ("under their units" in caption) == ("biaslabel" in commands)
    assert ("bias" in caption) == ("bias" in commands or r"\mathbf{b}" in commands)


TEX_COMMANDS = [
    (r"\left|", " abs("), (r"\right|", ")"), (r"\left(", "("), (r"\right)", ")"), (r"\left[", "("), (r"\right]", ")"),
    (r"\cdot", "*"), (r"\times", "*"), (r"\exp", "exp"), (r"\tanh", "tanh"), (r"\log", "log"), (r"\ln", "log"),
    (r"\operatorname{step}", "step"), (r"\sqrt", "sqrt"), (r"\quad", " "), (r"\,", " "),
]
TEX_FUNCTIONS = {"abs": abs, "exp": math.exp, "tanh": math.tanh, "log": math.log, "sqrt": math.sqrt, "step": lambda u: 1.0 if u > 0 else 0.0, "e": math.e}


def tex_python(step: str) -> str | None:
    """A step of numbers in LaTeX as Python source, or None when it holds anything else."""
    text = re.sub(r"\\val\{(-?[0-9.]+)\\times 10\^\{(-?[0-9]+)\}\}", r"(\1e\2)", step)
    text = re.sub(r"\\val\{(-?[0-9.]+)\}", r"(\1)", text)
    while r"\frac" in text:
        start = text.index(r"\frac")
        parts, i = [], start + len(r"\frac")
        for _ in range(2):
            depth, j = 0, i
            while True:
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                j += 1
                if not depth:
                    break
            parts.append(text[i + 1 : j - 1])
            i = j
        text = f"{text[:start]}(({parts[0]})/({parts[1]})){text[i:]}"
    for tex, py in TEX_COMMANDS:
        text = text.replace(tex, py)
    text = text.replace("^", "**").replace("{", "(").replace("}", ")")
    if "\\" in text or re.search(r"[A-Za-df-z_]", re.sub(r"\b(abs|exp|tanh|log|sqrt|step)\(", "", re.sub(r"[0-9.]e-?[0-9]", "", text))):
        return None
    return text


def numbers_rows(tex: str) -> list[tuple[str, str, str, float]]:
    """(lhs, step, value of the step, next step's value) for every step of numbers followed by a
    step that is one number, in every align* of ``tex``."""
    out = []
    for block in re.findall(r"\\begin\{align\*\}(.*?)\\end\{align\*\}", tex, re.DOTALL):
        equations: list[list[str]] = []
        for row in block.split("\\\\"):
            lhs, _, rhs = row.partition("&")
            if lhs.strip() or not equations:
                equations.append([lhs.strip()])
            equations[-1].append(rhs.strip())
        for lhs, *rows in equations:
            steps = top_level_steps(" ".join(rows))[1:]
            for step, following in itertools.pairwise(steps):
                source, result = tex_python(step), re.fullmatch(r"\s*\\val\{([^{}]*)\}\s*", following)
                if source is None or result is None or source.strip() == f"({result.group(1)})":
                    continue
                out.append((lhs, step, source, float(result.group(1))))
    return out


def top_level_steps(text: str) -> list[str]:
    """``text`` split at its ``=`` outside braces."""
    steps: list[str] = []
    depth, current = 0, ""
    for ch in text:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if ch == "=" and not depth:
            steps.append(current)
            current = ""
        else:
            current += ch
    return [*steps, current]


def evaluate_tex(source: str) -> float:
    return float(eval(source, {"__builtins__": {}}, dict(TEX_FUNCTIONS)))  # our own digits and operators only


@pytest.mark.parametrize("name", NAMES)
def test_every_row_of_numbers_evaluates_to_its_result(name: str) -> None:
    """A row with the numbers put in, read back as arithmetic, gives the number after its ``=``;
    every parameter update is among the rows checked."""
    text = (GENERATED / f"{example(name).network.spec.name}.tex").read_text(encoding="utf-8")
    rows = numbers_rows(text)
    wrong = [(lhs, step, evaluate_tex(source), result) for lhs, step, source, result in rows if not math.isclose(evaluate_tex(source), result, rel_tol=1e-6, abs_tol=1e-9)]
    assert not wrong, f"rows of generated/{name}.tex whose arithmetic is false: {wrong[:3]}"
    updates = {lhs for lhs, *_ in rows if lhs.endswith("^{+}")}
    assert len(updates) == text.count("One step of"), "an update row was not read back"


@pytest.mark.parametrize("kind", sorted(OPTIMIZERS))
@pytest.mark.parametrize("decay", [0.0, 0.1])
def test_update_formula_with_numbers_put_in_is_the_rules_arithmetic(kind: str, decay: float) -> None:
    """Each optimizer's first step, printed with the gradient last and numbers for every symbol,
    reads back as the same number sympy gets."""
    hyper = {h: spec.default for h, spec in OPTIMIZERS[kind].hyper.items()} | {"weight_decay": decay}
    expr = first_step_expr(kind, hyper)
    values = {THETA.name: -0.4, GRAD.name: -0.13, **hyper}
    tex = math_tex(expr, names={s.name: operand_tex(values[s.name]) for s in expr.free_symbols}, last=[GRAD])
    source = tex_python(tex)
    assert source is not None, tex
    expected = float(expr.xreplace({s: values[s.name] for s in expr.free_symbols}))
    assert math.isclose(evaluate_tex(source), expected, rel_tol=1e-6), f"{kind}: {tex}"


@pytest.mark.parametrize("kind", sorted(OPTIMIZERS))
def test_an_update_split_over_rows_keeps_the_order_of_the_whole(kind: str) -> None:
    """Pieces of a row too wide for the page come in the order of the row printed whole: the
    parameter first, the gradient last."""
    hyper = {h: spec.default for h, spec in OPTIMIZERS[kind].hyper.items()} | {"weight_decay": 0.1}
    expr = first_step_expr(kind, hyper)
    names = {THETA.name: "THETA", GRAD.name: "GRAD"}
    whole = math_tex(expr, names=names, last=[GRAD])
    split = " ".join(p.tex() for p in pieces(expr, lambda e: Expr(e, names={k: Tok(v) for k, v in names.items()}, last=[GRAD]), limit=4, last=[GRAD]))
    assert len(split) > len(whole) / 2 and whole.startswith("THETA") and split.startswith("THETA"), (whole, split)
    assert re.findall("THETA|GRAD", split) == re.findall("THETA|GRAD", whole)


def named_results(text: str) -> dict[str, str]:
    """lhs -> the last number of its equation, for every equation of the body."""
    body = text.split(r"\begin{document}", 1)[1]
    results: dict[str, str] = {}
    for block in re.findall(r"\\begin\{align\*\}\n(.*?)\n\\end\{align\*\}", body, re.S):
        lhs = None
        for row in block.split(" \\\\\n"):
            head, _, rest = row.partition(" &")
            if head.strip():
                lhs = head.strip()
            values = tex_numbers(r"\begin{document}" + rest)
            if lhs is not None and values and rest.rstrip().endswith("}"):
                results[lhs] = values[-1]
    return results


def test_worked_example_figures_are_the_json_values() -> None:
    """Each named result in the .tex (net and out of every unit, E, every gradient and update)
    is the value ``derive --json`` prints for that name."""
    d = example("mazur")
    doc = derivation_document(d)
    results = named_results((GENERATED / "mazur.tex").read_text(encoding="utf-8"))
    expected = {name_tex(k): v for k, v in doc["forward"].items()}
    expected["E"] = doc["loss"]
    expected.update({rf"\frac{{\partial E}}{{\partial {name_tex(k)}}}": v for k, v in doc["gradients"].items()})
    expected.update({f"{name_tex(k)}^{{+}}": v for k, v in doc["updated"].items()})
    assert len(expected) == 8 + 1 + 10 + 10
    for lhs, value in expected.items():
        assert lhs in results, lhs
        assert results[lhs] == number_text(value), (lhs, results[lhs], value)
    published = {"E": "0.298371109", name_tex("out_h1"): "0.593269992", name_tex("out_o1"): "0.75136507", r"w_{5}^{+}": "0.35891648", r"w_{1}^{+}": "0.149780716"}
    for lhs, figure in published.items():
        assert results[lhs] == figure
    assert results[r"\frac{\partial E}{\partial w_{5}}"].startswith("0.08216704")


# -- contents ---------------------------------------------------------------------------------------


def test_the_loss_row_names_the_specs_own_output_and_target() -> None:
    """textbook_121's target is named y: the row must not also call the output y."""
    row = next(line for line in (GENERATED / "textbook_121.tex").read_text(encoding="utf-8").splitlines() if line.startswith("loss &"))
    assert r"\frac{\left(y - \mathrm{out}_{o1}\right)^{2}}{2}$ for the output $\mathrm{out}_{o1}$ and its target $y$" in row
    for name in NAMES:
        text = (GENERATED / f"{example(name).network.spec.name}.tex").read_text(encoding="utf-8")
        assert "an output, $t$ its target" not in text and " 1 outputs" not in text, name


def test_worked_example_contents_in_order() -> None:
    text = (GENERATED / "mazur.tex").read_text(encoding="utf-8")
    marks = [r"\section*{The network}", r"\begin{tikzpicture}", r"\section*{Forward pass}", r"E &=", r"\section*{Backward pass", r"\subsection*{$\partial E/\partial w_{5}$}", r"\subsection*{$\partial E/\partial w_{1}$}", r"\section*{The layer form"]
    positions = [text.index(m) for m in marks]
    assert positions == sorted(positions)
    assert r"\mathrm{net}_{h1} &= w_{1} \cdot i_{1} + w_{2} \cdot i_{2} + b_{1} = \val{0.15} \cdot \val{0.05} + \val{0.2} \cdot \val{0.1} + \val{0.35} = \val{0.3775}" in text
    assert r"\text{path 2}" in text  # w1 reaches E through o1 and o2
    assert r"\boldsymbol{\delta}_{h} &= \left(\mathbf{W}_{2}^{\top} \boldsymbol{\delta}_{o}\right)" in text


@pytest.mark.parametrize("seed", range(12))
def test_the_sample_line_shows_a_one_hot_targets_1(seed: int) -> None:
    # t1 = 0, ..., t10 = 0 hid t7 = 1
    from chainrule.codegen.report.context import _sample

    data = {"name": "hot", "inputs": 12, "layers": [{"name": "o", "units": 10, "activation": "softmax"}], "loss": "cross_entropy", "seed": seed}
    d = derive(spec_from_data(data, "hot.yaml"))
    hot = int(np.argmax(d.values.t))
    assert d.values.t[hot] == 1 and d.values.t.sum() == 1
    line = _sample(d).tex()
    assert rf"$t_{{{hot + 1}}} = \val{{1}}$" in line and "those not listed are \\val{0}" in line
    assert line.count("$t_") == len({0, 1, 2, 9, hot}) and line.count("$x_") == 4


def test_big_network_report_is_small_with_one_chain_per_layer() -> None:
    d = example("mlp_784_128_10")
    text = (GENERATED / "mlp_784_128_10.tex").read_text(encoding="utf-8")
    assert len(text) < 60_000
    assert text.count(r"\subsection*{$\partial E/\partial") == d.network.depth
    assert r"\node[box" in text and r"\node[unit]" not in text
    asked = report_of("mlp_784_128_10", ["w1000", "b3"])
    assert asked.count(r"\subsection*{") == 2 and r"\partial E/\partial w_{1000}" in asked


def test_a_small_network_with_too_many_rows_shows_one_chain_per_layer() -> None:
    d = example("deep_tanh_relu")
    text = (GENERATED / "deep_tanh_relu.tex").read_text(encoding="utf-8")
    assert text.count(r"\subsection*{") == d.network.depth
    assert "would fill about" in text and r"\mathrm{net}_{a1} &=" in text  # forward pass still unit by unit


def test_too_many_params_are_refused(tmp_path, capsys) -> None:
    args = ["report", str(ROOT / "examples/mlp_784_128_10.yaml"), "-o", str(tmp_path)]
    for n in range(1, 40):
        args += ["--param", f"w{n}"]
    assert main(args) == 2
    assert "at most 32" in capsys.readouterr().err and not list(tmp_path.iterdir())


# -- escaping ---------------------------------------------------------------------------------------


HOSTILE = r"\input{/etc/passwd} ^^5cinput{/etc/passwd} \^^5c % # $ & ~ _ { } < > | \" ` é 中 \x00"


#: Every character a description may hold: ASCII, Latin, Greek, Cyrillic, punctuation, arrows and
#: operators, CJK, controls, format characters, a lone surrogate and a lone accent.
EVERY_KIND = "".join(map(chr, [*range(0x0, 0x500), *range(0x2000, 0x2070), *range(0x2100, 0x2300), *range(0x4E00, 0x4E10), 0xD800, 0xFB01, 0xFEFF, 0xFF21]))
#: What escaped text may hold: letters, digits, plain punctuation, and these commands.
ESCAPED = re.compile(r"""[A-Za-z0-9 .,;:!?()\[\]/'+=*@-]|\\(?:[a-zA-Z]+|[{}&%#_$])(?:\{\}|\{|(?=[^a-zA-Z]))|\\[`'^~=."]\{|\{|\}""")


@pytest.mark.parametrize("text", [HOSTILE + "\u200b\n\t\u2028", EVERY_KIND], ids=["hostile", "every kind of character"])
@pytest.mark.parametrize("escape", [escape_text, lambda text: latex.code_text(text)[len(r"\texttt{") : -1]], ids=["roman", "typewriter"])
def test_text_escaping_leaves_nothing_tex_would_act_on(text: str, escape) -> None:
    escaped = escape(text)
    assert escaped.isascii() and "\n" not in escaped and "^^" not in escaped
    assert "^" not in escaped.replace(r"\textasciicircum{}", "").replace("\\^{", "")
    assert not ESCAPED.sub("", escaped), ESCAPED.sub("", escaped)[:200]
    depth = 0
    for char in re.sub(r"\\[{}]", "", escaped):  # braces balance: no group left open or closed early
        depth += {"{": 1, "}": -1}.get(char, 0)
        assert depth >= 0
    assert depth == 0
    commands = set(re.findall(r"\\([a-zA-Z]+)", escaped))
    assert commands <= TEXT_COMMANDS, commands - TEXT_COMMANDS


#: The commands escaped text may use: glyphs, accents, and math symbols through \ensuremath.
TEXT_COMMANDS = {
    "textbackslash", "textasciitilde", "textasciicircum", "textless", "textgreater", "textbar", "textquotedblleft", "textquotedblright",
    "textquoteleft", "textquoteright", "textendash", "textemdash", "dots", "textexclamdown", "textquestiondown", "ss", "ae", "AE", "oe",
    "OE", "o", "O", "l", "L", "i", "j", "textsuperscript", "ensuremath", "u", "r", "H", "v", "d", "c", "b", "mathbb", "mathsterling",
    *(name for name in latex_text._MATH.values() if name.isalpha()),
}


def test_text_escaping_typesets_what_the_fonts_have() -> None:
    assert escape_text("“Quoted” – en-dash, µ, naïve café, ‘single’, ß, Ångström, ﬁt, η ≤ ½, 日本") == (
        r"\textquotedblleft{}Quoted\textquotedblright{} \textendash{} en-dash, \ensuremath{\mu}, na\"{\i}ve caf\'{e}, "
        r"\textquoteleft{}single\textquoteright{}, \ss{}, \r{A}ngstr\"{o}m, fit, \ensuremath{\eta} \ensuremath{\leq} 1/2, ??"
    )
    # the typewriter font holds other glyphs where the roman one has the dashes, quotes and ł's stroke
    assert latex.code_text("a–b—“c” Łódź ő") == r"\texttt{a-b--''c'' L\'{o}d\'{z} \"{o}}"


def test_hostile_description_and_file_name_are_escaped(tmp_path) -> None:
    data = {"name": "net", "description": HOSTILE, "inputs": 1, "layers": [{"name": "o", "units": 1, "activation": "sigmoid"}], "loss": "half_sse"}
    spec = spec_from_data(data, "x.yaml")
    text = render_report(derive(spec), r"dir/\input{evil}^^5c%.yaml")
    body = text.split(r"\begin{document}", 1)[1]
    assert r"\input" not in body.replace(r"\textbackslash{}input", "") and "^^" not in text
    assert r"\textbackslash{}input\{/etc/passwd\}" in body


@pytest.mark.parametrize("bad", [r"\input{x}", "a^^5c", "a b", "é", "h%1"])
def test_names_that_are_not_identifiers_never_reach_latex(bad: str) -> None:
    with pytest.raises(ValueError):
        name_tex(bad)
    data = {"name": "net", "inputs": [bad], "layers": [{"name": "o", "units": 1, "activation": "sigmoid"}], "loss": "half_sse"}
    from chainrule.derive.errors import ChainruleError

    with pytest.raises(ChainruleError, match=r"inputs\[0\]"):
        spec_from_data(data, "x.yaml")


def test_hostile_formula_is_refused_or_printed_from_its_parse(tmp_path, capsys) -> None:
    spec = tmp_path / "f.json"
    spec.write_text(json.dumps({"name": "f", "inputs": 1, "layers": [{"name": "o", "units": 1, "activation": {"formula": r"x \input{/etc/passwd}"}}], "loss": "half_sse"}))
    assert main(["report", str(spec), "-o", str(tmp_path / "out")]) == 2
    assert "layers[0].activation" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_template_refuses_strings_not_made_latex() -> None:
    template = environment().from_string(r"\VAR{value}")
    assert template.render(value=Tex(r"\alpha")) == r"\alpha"
    with pytest.raises(TypeError):
        template.render(value=r"\input{/etc/passwd}")


# -- the command line ---------------------------------------------------------------------------------


def test_report_writes_the_tex(tmp_path, capsys) -> None:
    assert main(["report", str(ROOT / "examples/mazur.yaml"), "-o", str(tmp_path / "new")]) == 0
    written = tmp_path / "new" / "mazur.tex"
    assert written.read_text(encoding="utf-8") == (GENERATED / "mazur.tex").read_text(encoding="utf-8")
    assert capsys.readouterr().out == f"wrote {written}\n"
    assert [p.name for p in (tmp_path / "new").iterdir()] == ["mazur.tex"]


def test_a_pdf_that_cannot_be_written_leaves_no_tex(tmp_path, capsys, monkeypatch) -> None:
    from chainrule.codegen.report import writer as report

    def fake_compile(text: str, name: str, work) -> object:
        (work / f"{name}.pdf").write_bytes(b"%PDF-1.5")
        return work / f"{name}.pdf"

    monkeypatch.setattr(report, "compiler", lambda: None)
    monkeypatch.setattr(report, "compile_pdf", fake_compile)
    (tmp_path / "mazur.pdf").mkdir()
    assert main(["report", str(ROOT / "examples/mazur.yaml"), "-o", str(tmp_path), "--pdf"]) == 2
    assert "cannot write" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["mazur.pdf"]


@pytest.mark.parametrize("args, message", [(["--param", "w99"], "no parameter named 'w99'"), (["--param", "w1", "--param", "w1"], "named twice")])
def test_bad_params_exit_2_and_write_nothing(tmp_path, capsys, args, message) -> None:
    assert main(["report", str(ROOT / "examples/mazur.yaml"), "-o", str(tmp_path)] + args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not list(tmp_path.iterdir())


def test_output_that_is_a_file_exits_2(tmp_path, capsys) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    assert main(["report", str(ROOT / "examples/mazur.yaml"), "-o", str(target)]) == 2
    assert "expected a directory" in capsys.readouterr().err


def test_no_tex_installed_names_the_packages(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main(["report", str(ROOT / "examples/mazur.yaml"), "-o", str(tmp_path / "out"), "--pdf"]) == 2
    err = capsys.readouterr().err
    assert "texlive-latex-base texlive-latex-recommended texlive-pictures" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_readme_shows_page_one_of_the_worked_example() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    picture = re.search(r"!\[[^\]]*\]\((docs/[^)]+\.png)\)", readme)
    assert picture is not None
    assert (ROOT / picture.group(1)).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
