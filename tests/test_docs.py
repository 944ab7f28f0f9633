"""The user documentation (docs/ and README.md) kept honest where a machine can check it.

- every registry name (activation, loss, optimizer, formula function), spec key, reserved name,
  default and limit the code has is on the page that documents it;
- every option of the command line is in docs/commands.md, and every option the docs mention
  exists (nothing unbuilt is documented as working);
- every relative link resolves to a file (and a heading), and nothing links the contract outside
  the repository;
- every YAML, TOML and JSON block parses; every full spec in them is valid and derives, and the
  same spec written in several formats is the same spec; every claims block is judged right;
- every `$ chainrule ...` command shown parses, and those that only print (derive, check, verify)
  print the lines shown, with the exit code shown;
- the JSON blocks are real output (keys, order and values), and every key of the real documents
  and every mistake key is documented;
- the Python examples of docs/python.md, docs/trainer.md and README.md run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from chainrule.codegen import cli, commands
from chainrule.codegen.files import load_spec
from chainrule.codegen.terminal import describe
from chainrule.codegen.terminal.jsonout import render_json
from chainrule.codegen.terminal.verify import CSV_COLUMNS
from chainrule.derive import chain, check, derivation, documents, formula, naming, spec as spec_module
from chainrule.derive.derivation import derive
from chainrule.derive.documents import load_document
from chainrule.derive.hand import chains as hand_chains, claims, verify as hand_verify
from chainrule.derive.hand.claims import parse_claims
from chainrule.derive.hand.verify import Verifier
from chainrule.derive.optimizers import OPTIMIZERS
from chainrule.derive.registry import ACTIVATIONS, LOSSES
from chainrule.derive.spec import parse_spec
from helpers import EXAMPLE_FILES, ROOT

DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
MARKDOWN = PAGES + [ROOT / "README.md"]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```[ \t]*$", re.M | re.S)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FORMATS = ("yaml", "toml", "json")  # as the fence names them, and as load_document does


def page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def blocks(path: Path, *languages: str) -> list[str]:
    return [body for language, body in FENCE.findall(path.read_text(encoding="utf-8")) if language in languages]


def prose(text: str) -> str:
    """The text outside fenced blocks (where a `# comment` is no heading)."""
    return FENCE.sub("", text)


def in_backticks(name: str, text: str) -> bool:
    return f"`{name}`" in text


def documented(key: str, text: str) -> bool:
    """A JSON key named on the page: `` `key` `` or ``"key"``."""
    return in_backticks(key, text) or f'"{key}"' in text


def number_in(value: float, text: str) -> bool:
    """``value`` written as the docs write numbers (``20,000,000``, ``1e-4``), standing alone."""
    if isinstance(value, int) or float(value).is_integer():
        spelled = {f"{int(value):,}", f"{int(value)}"}
    else:
        spelled = {f"{value:g}", f"{value:.0e}", re.sub(r"e([+-])0+(\d)", r"e\1\2", f"{value:.0e}")}
    return any(re.search(rf"(?<![\d,.]){re.escape(s)}(?![\d,]|\.\d)", text) for s in spelled)


# ---------------------------------------------------------------------------------------------
# The spec format


def table_row(text: str, name: str) -> str:
    """The table row of ``text`` that starts with the cell `` `name` ``."""
    rows = [line for line in text.splitlines() if line.startswith(f"| `{name}` |")]
    assert rows, f"no table row for `{name}`"
    return rows[0]


def test_every_activation_loss_and_optimizer_is_documented_with_its_defaults() -> None:
    text = page("spec-format.md")
    for name, definition in ACTIVATIONS.items():
        row = table_row(text, name)
        for param, default in definition.params.items():
            assert f"`{param}` ({default:g})" in row, (name, param)
    for name in LOSSES:
        assert table_row(text, name)
    for kind, definition in OPTIMIZERS.items():
        row = table_row(text, kind)
        for setting, hyper in definition.hyper.items():
            assert f"`{setting}` {hyper.default:g}" in row, (kind, setting)
    default = spec_module.DEFAULT_OPTIMIZER
    assert f"`{{kind: {default['kind']}, lr: {default['lr']:g}}}`" in text


def test_every_spec_key_formula_function_and_reserved_name_is_documented() -> None:
    text = page("spec-format.md")
    for key in spec_module.TOP_KEYS + spec_module.LAYER_KEYS + ("path", "x", "t", "kind", "formula"):
        assert in_backticks(key, text), key
    values = [m.value for m in spec_module.BiasMode] + [m.value for m in spec_module.Naming] + ["weights", "biases"]
    for value in values:
        assert in_backticks(value, text), value
    for name in naming.FORMULA_FUNCTIONS + naming.FORMULA_CONSTANTS:
        assert in_backticks(name, text), name
    for name in sorted(naming.RESERVED) + list(naming.DERIVED_PREFIXES):
        assert in_backticks(name, text), name


LIMITS = {
    "spec-format.md": [
        spec_module.MAX_LAYERS, spec_module.MAX_UNITS, spec_module.MAX_PARAMETERS, spec_module.MAX_SEED,
        spec_module.MAX_DESCRIPTION, spec_module.MAX_FORMULA_NODES, spec_module.MAX_DERIVATIVE_NODES,
        formula.MAX_LENGTH, formula.MAX_DEPTH, formula.MAX_EXPONENT, formula.MAX_LITERAL_DIGITS,
        formula.MAX_LITERAL_EXPONENT, formula.MAX_PIECEWISE_ARGUMENTS, formula.MAX_PIECEWISE_DEPTH,
        documents.MAX_DEPTH, documents.MAX_NODES, documents.MAX_INT_DIGITS, naming.MAX_NAME_LENGTH,
    ],
    "commands.md": [
        derivation.SMALL_MAX_PARAMETERS, derivation.SMALL_MAX_DEPTH, chain.PATH_CAP,
        describe.EXPANDED_MAX_NODES, commands.MAX_POINTS, check.TOLERANCE, check.STEP, check.FLOOR,
        check.KINK_MARGIN,
    ],
    "json.md": [derivation.SMALL_MAX_PARAMETERS, derivation.SMALL_MAX_DEPTH, describe.EXPANDED_MAX_NODES],
    "claims.md": [claims.MAX_CLAIMS, claims.MAX_VALUE_DIGITS, claims.MAX_VALUE_EXPONENT, hand_chains.MAX_TERMS, hand_verify.RANDOM_POINTS],
}


@pytest.mark.parametrize("name", sorted(LIMITS))
def test_limits_are_the_code_s(name: str) -> None:
    text = page(name)
    for value in LIMITS[name]:
        assert number_in(value, text), f"{name} does not give {value}"
    if name == "spec-format.md":
        sizes = {fmt: size // 2**20 for fmt, size in documents.MAX_TEXT_BYTES.items()}
        flat = " ".join(text.split())
        assert f"{sizes['yaml']} MiB of YAML or TOML, or {sizes['json']} MiB of JSON" in flat and sizes["yaml"] == sizes["toml"]


# ---------------------------------------------------------------------------------------------
# The command line


def subparsers() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in cli._parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_and_option_is_documented_with_its_default() -> None:
    text = page("commands.md")
    for name, parser in subparsers().items():
        assert f"\n## {name}\n" in text, name
        for action in parser._actions:
            options = [o for o in action.option_strings if o not in ("-h", "--help")]
            if not options and action.dest != "claims":
                continue
            rows = [line for line in text.splitlines() if line.startswith("| `") and any(f"`{o}" in line for o in options or ["CLAIMS..."])]
            assert rows, f"{name}: no table row for {options or action.dest}"
            if action.default not in (None, False, []):
                assert any(f"default {action.default}" in row or f"default `{action.default}`" in row for row in rows), (name, options)


def trainer_options() -> set[str]:
    """The options of an emitted trainer's command line (``python NAME.py --epochs N``)."""
    return set(re.findall(r"""add_argument\(\s*["'](--[\w-]+)""", (ROOT / "generated" / "mazur.py").read_text()))


def test_the_trainer_s_options_are_documented_with_their_defaults() -> None:
    text = page("trainer.md")
    code = (ROOT / "generated" / "mazur.py").read_text()
    for option in trainer_options():
        row = table_row_of(text, option)
        default = re.search(rf"""add_argument\(\s*["']{option}["'][^)]*default=([\w.]+)""", code)
        if default is not None and default.group(1) not in ("None", "False"):
            assert f"default {default.group(1)}" in row, option


def table_row_of(text: str, option: str) -> str:
    rows = [line for line in text.splitlines() if line.startswith(f"| `{option}")]
    assert rows, f"no table row for {option}"
    return rows[0]


def test_every_option_the_docs_mention_exists() -> None:
    known = {"--help"} | trainer_options() | {o for a in cli._parser()._actions for o in a.option_strings}
    for parser in subparsers().values():
        known.update(o for a in parser._actions for o in a.option_strings)
    for path in MARKDOWN:
        mentioned = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", path.read_text(encoding="utf-8")))
        assert not mentioned - known, f"{path.name}: {sorted(mentioned - known)}"


# ---------------------------------------------------------------------------------------------
# Links


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    for heading in re.findall(r"^#{1,6} (.+)$", prose(path.read_text(encoding="utf-8")), re.M):
        base, n = slug(heading), 0
        while (name := base if n == 0 else f"{base}-{n}") in found:
            n += 1
        found.add(name)
    return found


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert "../shared" not in text and "shared/spec.md" not in text and "design.md" not in text
    for target in LINK.findall(prose(text)):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        assert linked.is_file(), f"{path.name}: {target} does not exist"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked), f"{path.name}: no heading #{anchor} in {linked.name}"


def test_the_index_lists_every_page_and_the_readme_links_the_docs() -> None:
    index = page("README.md")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for path in PAGES:
        if path.name not in ("README.md", "spec.md"):
            assert f"]({path.name})" in index, path.name
            assert f"](docs/{path.name})" in readme, path.name


# ---------------------------------------------------------------------------------------------
# Blocks of YAML, TOML and JSON


def documents_in(path: Path) -> Iterator[tuple[str, str, Any]]:
    for language, body in FENCE.findall(path.read_text(encoding="utf-8")):
        if language in FORMATS:
            yield language, body, load_document(body, f"{path.name} block", language)


def is_spec(data: Any) -> bool:
    return isinstance(data, dict) and {"name", "inputs", "layers", "loss"} <= set(data)


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_spec_shown_is_valid_and_derives(path: Path) -> None:
    by_name: dict[str, list] = {}
    for fmt, body, data in documents_in(path):  # every block parses
        if is_spec(data):
            spec = parse_spec(body, f"{path.name} block", fmt)
            derive(spec)
            by_name.setdefault(spec.name, []).append(dataclasses.replace(spec, source=""))
    for name, specs in by_name.items():
        assert all(s == specs[0] for s in specs), f"{path.name}: the blocks of {name!r} are not the same spec"
        example = [p for p in EXAMPLE_FILES if p.stem == name]
        if example:  # shown as the example of that name: the same network, sample and optimizer
            assert dataclasses.replace(load_spec(str(example[0])), source="", description="") == dataclasses.replace(specs[0], description=""), name


def test_the_spec_format_shows_one_spec_in_three_formats() -> None:
    fmts = [fmt for fmt, _, data in documents_in(DOCS / "spec-format.md") if is_spec(data) and data["name"] == "tiny"]
    assert sorted(fmts) == ["json", "toml", "yaml"]


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_claims_file_shown_is_judged_right(path: Path) -> None:
    for fmt, body, data in documents_in(path):
        if isinstance(data, dict) and "claims" in data and set(data) <= set(claims.FILE_KEYS):
            named = Path(data["spec"]).name  # an example's, or one of the tests' own (tests/data)
            spec = load_spec(str(next((d / named for d in (ROOT / "examples", ROOT / "tests" / "data") if (d / named).exists()), ROOT / "examples" / named)))
            verifier = Verifier(derive(spec))
            verdicts = verifier.verify(parse_claims(body, f"{path.name} block", fmt, verifier.network, verifier.graph))
            assert all(v.correct for v in verdicts), [(v.label, v.part.value, v.diagnosis) for v in verdicts if not v.correct]


# ---------------------------------------------------------------------------------------------
# Console sessions: `$ chainrule ...`, its output, `$ echo $?` and the exit code


def sessions(path: Path) -> Iterator[tuple[list[str], list[str], int | None]]:
    """Each ``$ chainrule`` command of the console blocks, the lines shown after it, and the exit
    code a following ``$ echo $?`` shows (or None)."""
    for block in blocks(path, "console"):
        runs: list[tuple[list[str], list[str], int | None]] = []
        shown: list[str] | None = None
        lines = block.splitlines()
        for i, line in enumerate(lines):
            if line.startswith("$ echo $?") and runs:
                args, out, _ = runs[-1]
                runs[-1] = (args, out, int(lines[i + 1]))
                shown = None
            elif line.startswith("$ "):
                words = shlex.split(line[2:])
                shown = [] if words[0] == "chainrule" else None
                if shown is not None:
                    runs.append((words[1:], shown, None))
            elif shown is not None:
                shown.append(line)
        yield from runs


SESSIONS = [(path, run) for path in MARKDOWN for run in sessions(path)]


@pytest.mark.parametrize("path, run", SESSIONS, ids=[f"{p.relative_to(ROOT)}: {' '.join(r[0][:2])}" for p, r in SESSIONS])
def test_console_sessions_are_what_chainrule_prints(path: Path, run, capsys, monkeypatch) -> None:
    args, shown, code = run
    parsed = cli._parser().parse_args(args)  # every command shown is a valid command line
    if parsed.command in ("emit", "report", "init") or getattr(parsed, "csv", None):
        return  # these write files; their options were checked above (init's session: tests/test_starter.py)
    monkeypatch.chdir(ROOT)
    returned = cli.main(args)
    assert code is None or returned == code
    output = capsys.readouterr()
    printed = output.out + output.err
    for line in shown:
        if line.strip() and line.strip() != "..." and not line.rstrip().endswith("..."):
            assert line.rstrip() in printed, line


def trainer_sessions(path: Path) -> Iterator[tuple[str, list[str], list[str]]]:
    """Each ``$ python generated/NAME.py ...`` command of the console blocks: the trainer, its
    arguments and the lines shown after it."""
    for block in blocks(path, "console"):
        shown: list[str] | None = None
        for line in block.splitlines():
            if line.startswith("$ "):
                words = shlex.split(line[2:])
                shown = None
                if words[:1] == ["python"] and words[1].startswith("generated/"):
                    shown = []
                    yield words[1], words[2:], shown
            elif shown is not None:
                shown.append(line)


TRAINER_SESSIONS = [(path, *run) for path in MARKDOWN for run in trainer_sessions(path)]


@pytest.mark.slow  # trains digits for three epochs in a fresh process
@pytest.mark.parametrize("path, trainer, args, shown", TRAINER_SESSIONS,
                         ids=[f"{p.relative_to(ROOT)}: {t} {' '.join(a)}" for p, t, a, _ in TRAINER_SESSIONS])
def test_trainer_sessions_are_what_the_trainer_prints(path: Path, trainer: str, args: list[str], shown: list[str], tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(ROOT / trainer), *args], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    printed = done.stdout + done.stderr
    assert done.returncode == 0, printed
    for line in shown:
        if line.strip() and line.strip() != "..." and not line.rstrip().endswith("..."):
            assert line.rstrip() in printed, line


# ---------------------------------------------------------------------------------------------
# JSON


def matches(shown: Any, real: Any, where: str = "") -> None:
    """``shown`` is a part of ``real``: its keys in the same order, its lists a prefix (lists of
    objects: each one some object of the real list), strings equal, numbers equal to 1e-9."""
    if isinstance(shown, dict):
        assert isinstance(real, dict), where
        assert list(shown) == [k for k in real if k in shown], f"{where}: keys {list(shown)} not in {list(real)}"
        for key, value in shown.items():
            matches(value, real[key], f"{where}.{key}")
    elif isinstance(shown, list) and shown and all(isinstance(s, dict) for s in shown):
        for item in shown:
            assert any(_matches(item, r) for r in real), f"{where}: {json.dumps(item)[:80]} is in no entry"
    elif isinstance(shown, list):
        assert isinstance(real, list) and len(shown) <= len(real), where
        for i, (a, b) in enumerate(zip(shown, real)):
            matches(a, b, f"{where}[{i}]")
    elif isinstance(shown, float) and isinstance(real, float):
        assert math.isclose(shown, real, rel_tol=1e-9, abs_tol=1e-300), f"{where}: {shown} != {real}"
    else:
        assert shown == real, f"{where}: {shown!r} != {real!r}"


def _matches(shown: Any, real: Any) -> bool:
    try:
        matches(shown, real)
    except AssertionError:
        return False
    return True


def real_document(shown: dict, capsys, monkeypatch) -> dict:
    monkeypatch.chdir(ROOT)
    if "form" in shown:
        params = list(shown.get("expanded_forms", {}))
        return json.loads(render_json(derive(load_spec(shown["source"]), params), params))
    files = [f["file"] for f in shown["files"]]
    cli.main(["verify", shown["spec"], *files, "--json"])
    return json.loads(capsys.readouterr().out)


def test_the_json_shown_is_real_output(capsys, monkeypatch) -> None:
    shown = [json.loads(body) for body in blocks(DOCS / "json.md", "json")]
    assert {"form" in s for s in shown} == {True, False}
    for document in shown:
        matches(document, real_document(document, capsys, monkeypatch), document.get("spec", ""))


def test_every_json_key_is_documented(capsys, monkeypatch) -> None:
    text = page("json.md")
    monkeypatch.chdir(ROOT)
    for spec, params in (("examples/mazur.yaml", ["w5"]), ("examples/digits.yaml", ["w2049"])):
        document = json.loads(render_json(derive(load_spec(spec), params), params))
        keys = set(document) | set(document["sample"]) | set(document["layers"][0]) | {"kind"}
        keys |= {key for path in document["chains"][params[0]] for factor in path for key in factor}
        assert all(documented(k, text) for k in keys), sorted(k for k in keys if not documented(k, text))
    cli.main(["verify", "examples/mazur.yaml", "examples/claims/mazur_mistakes.yaml", "nonexistent.yaml", "--json"])
    document = json.loads(capsys.readouterr().out)
    assert {"error"} <= set(document["files"][1])
    for key in set(document["claims"][0]) | set(document["claims"][0]["findings"][0]) | set(document["files"][1]):
        assert documented(key, text) or f"`claims[].{key}`" in text, key
    for key in document:
        assert in_backticks(key, text), key


def test_every_mistake_and_the_csv_header_are_documented() -> None:
    text = page("claims.md")
    source = "\n".join(p.read_text() for p in sorted((ROOT / "derive" / "hand").glob("*.py")))
    mistakes = set(re.findall(r'Finding\(\s*"([a-z_]+)"', source)) | set(re.findall(r'slips\.append\(\(\s*"([a-z_]+)"', source))
    assert len(mistakes) > 20
    assert not {m for m in mistakes if f"| `{m}` |" not in text}, sorted(m for m in mistakes if f"| `{m}` |" not in text)
    assert ",".join(CSV_COLUMNS) in text
    for key in claims.FILE_KEYS + claims.CLAIM_KEYS:
        assert in_backticks(key, text), key


# ---------------------------------------------------------------------------------------------
# Python examples


def run_blocks(path: Path) -> None:
    namespace: dict[str, Any] = {"__name__": f"docs_{path.stem}"}
    for block in blocks(path, "python"):
        exec(compile(block, str(path), "exec"), namespace)  # noqa: S102 - the docs' own examples


def test_the_python_page_runs(capsys, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    run_blocks(DOCS / "python.md")


def test_the_readme_s_python_runs(capsys, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    assert blocks(ROOT / "README.md", "python")
    run_blocks(ROOT / "README.md")


def test_the_trainer_page_runs(tmp_path, capsys, monkeypatch) -> None:
    for name in ("xor", "sequence_sum"):
        commands.emit(load_spec(str(ROOT / "examples" / f"{name}.yaml")), str(ROOT / "examples" / f"{name}.yaml"), str(tmp_path))
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        run_blocks(DOCS / "trainer.md")
    finally:
        sys.modules.pop("xor", None)
        sys.modules.pop("sequence_sum", None)
    assert (tmp_path / "xor_weights.npz").is_file()
