"""The public API (``import chainrule``, spec section 7) against the command line: the same numbers
on every example, the same one-line messages for bad input, nothing written on an error, no
traceback of chainrule's internals, and an import that leaves sympy, NumPy and jinja2 unloaded."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import traceback
from pathlib import Path

import numpy as np
import pytest
import yaml

import chainrule
from chainrule.codegen.cli import main
from helpers import EXAMPLE_FILES, ROOT, SEQUENCE_EXAMPLES, SPATIAL_EXAMPLES
from test_user_messages import BAD_SPECS

MAZUR = ROOT / "examples" / "mazur.yaml"
API_FILES = {str((ROOT / "chainrule" / name).resolve()) for name in ("__init__.py", "api.py", "results.py")}

#: More bad input, beside tests/test_user_messages.py's: malformed text, unknown keys and names,
#: a formula that is not allowed.
MORE_BAD_SPECS = {
    "malformed": "name: n\ninputs: [1\n",
    "duplicate": "name: n\nname: m\ninputs: 1\nlayers: [{name: o, units: 1, activation: relu}]\nloss: mse\n",
    "unknown key": "name: n\ninputs: 1\nlayers: [{name: o, units: 1, activation: relu}]\nloss: mse\nlearning_rate: 2\n",
    "formula": "name: n\ninputs: 1\nlayers: [{name: o, units: 1, activation: '__import__(\"os\")'}]\nloss: mse\n",
    "no layers": "name: n\ninputs: 2\nlayers: []\nloss: sse\n",
}
ALL_BAD = {**{k: v[0] for k, v in BAD_SPECS.items()}, **MORE_BAD_SPECS}


def cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def cli_message(capsys: pytest.CaptureFixture, *argv: str) -> str:
    code, out, err = cli(capsys, *argv)
    assert code == 2 and out == "" and err.startswith("chainrule: error: ") and err.count("\n") == 1, (code, out, err)
    return err.removeprefix("chainrule: error: ").rstrip("\n")


def raised(call, *args, **kwargs) -> chainrule.ChainruleError:
    with pytest.raises(chainrule.ChainruleError) as caught:
        call(*args, **kwargs)
    return caught.value


def same(api_value, json_value) -> bool:
    """A number of the API equals the JSON's (null is a number that is not finite)."""
    if json_value is None:
        return not np.all(np.isfinite(api_value))
    return np.array_equal(np.asarray(api_value, dtype=float), np.asarray(json_value, dtype=float))


# ---------------------------------------------------------------------------------------------
# Loading


def test_load_a_path_a_dict_and_text_give_the_same_spec() -> None:
    text = MAZUR.read_text(encoding="utf-8")
    from_path = chainrule.load(MAZUR)
    from_dict = chainrule.load(yaml.safe_load(text))
    from_text = chainrule.loads(text, format="yaml")
    assert from_path.source == str(MAZUR) and from_dict.source == "<dict>" and from_text.source == "<string>"
    assert from_path == chainrule.load(str(MAZUR)) and chainrule.load(from_path) is from_path
    for other in (from_dict, from_text):
        assert [getattr(other, f) for f in ("name", "inputs", "layers", "targets", "loss", "optimizer")] == \
               [getattr(from_path, f) for f in ("name", "inputs", "layers", "targets", "loss", "optimizer")]
    assert isinstance(from_path, chainrule.Spec)


def test_loads_reads_toml_and_json() -> None:
    for path in EXAMPLE_FILES:
        fmt = {".yaml": "yaml", ".yml": "yaml", ".toml": "toml", ".json": "json"}[path.suffix]
        assert chainrule.loads(path.read_text(encoding="utf-8"), format=fmt, source=str(path)) == chainrule.load(path)


def test_load_refuses_what_is_neither_a_path_nor_a_dict() -> None:
    with pytest.raises(chainrule.ChainruleError, match=r"^chainrule.load: source: expected a path or a dict \(text: chainrule.loads\), got 3$"):
        chainrule.load(3)
    error = raised(chainrule.loads, "name: n", format="xml")
    assert str(error) == "chainrule.loads: format: expected one of 'yaml', 'toml', 'json', got 'xml'"


@pytest.mark.parametrize("name", list(ALL_BAD))
def test_bad_specs_raise_the_command_lines_message(name: str, tmp_path: Path, capsys) -> None:
    path = tmp_path / "n.yaml"
    path.write_text(ALL_BAD[name], encoding="utf-8")
    message = cli_message(capsys, "derive", path)
    if name in BAD_SPECS:
        assert BAD_SPECS[name][1] in message
    for call in (lambda: chainrule.load(path), lambda: chainrule.derive(str(path)), lambda: chainrule.loads(ALL_BAD[name], source=str(path))):
        error = raised(call)
        assert str(error) == message and isinstance(error, ValueError)
    assert list(tmp_path.iterdir()) == [path]


def test_missing_files_and_suffixes(tmp_path: Path, capsys) -> None:
    for path in (tmp_path / "none.yaml", tmp_path / "spec.txt", tmp_path):
        assert str(raised(chainrule.load, path)) == cli_message(capsys, "derive", path)


def test_an_error_carries_no_internal_traceback(tmp_path: Path) -> None:
    path = tmp_path / "n.yaml"
    path.write_text(BAD_SPECS["case"][0], encoding="utf-8")
    for call in (lambda: chainrule.load(path), lambda: chainrule.derive(MAZUR, ["w99"]), lambda: chainrule.derive(MAZUR).chain("w99")):
        error = raised(call)
        frames = {str(Path(frame.filename).resolve()) for frame in traceback.extract_tb(error.__traceback__)}
        assert frames - {str(Path(__file__).resolve())} <= API_FILES, frames
        assert error.__cause__ is None and error.__suppress_context__
        assert "\n" not in "".join(traceback.format_exception_only(error)).rstrip("\n")


def _a_cell() -> None:
    chainrule.derive(MAZUR).chain("w99")


def test_a_notebook_shows_the_callers_frames_and_the_message() -> None:
    """IPython renders an exception with ``_render_traceback_`` by that method: the user's
    frames (here this test's), none of chainrule's, and the one-line message."""
    shown = raised(_a_cell)._render_traceback_()
    assert shown[0] == "Traceback (most recent call last):" and shown[-1].startswith("ChainruleError: ") and "w99" in shown[-1]
    assert any("in _a_cell" in line for line in shown) and 'chainrule.derive(MAZUR).chain("w99")' in "\n".join(shown)
    assert not any(str(ROOT / folder) in line for line in shown for folder in ("chainrule", "derive", "codegen")), shown


@pytest.mark.parametrize("call, field, got", [
    (lambda: chainrule.check(MAZUR, points="3"), "chainrule.check: points", "got '3'"),
    (lambda: chainrule.check(MAZUR, points=2.5), "chainrule.check: points", "got 2.5"),
    (lambda: chainrule.check(MAZUR, points=True), "chainrule.check: points", "got True"),
    (lambda: chainrule.check(MAZUR, emitted=5), "chainrule.check: emitted", "got 5"),
    (lambda: chainrule.train(MAZUR, seed=-1), "chainrule.train: seed", "got -1"),
    (lambda: chainrule.train(MAZUR, seed="a"), "chainrule.train: seed", "got 'a'"),
    (lambda: chainrule.derive(MAZUR).chain(5), "chainrule.Derivation.chain: name", "got 5"),
    (lambda: chainrule.derive(MAZUR, params=[5]), "chainrule.derive: params", "got 5"),
    (lambda: chainrule.derive(MAZUR, params=5), "chainrule.derive: params", "got 5"),
    (lambda: chainrule.loads(123), "chainrule.loads: text", "got 123"),
    (lambda: chainrule.loads("name: n", format="xml"), "chainrule.loads: format", "got 'xml'"),
    (lambda: chainrule.load(5), "chainrule.load: source", "got 5"),
    (lambda: chainrule.verify(MAZUR, {"claims": []}), "chainrule.verify: claims", "got {'claims': []}"),
    (lambda: chainrule.emit(MAZUR, None), "chainrule.emit: out_dir", "got None"),
    (lambda: chainrule.report(MAZUR, 3), "chainrule.report: out_dir", "got 3"),
])
def test_a_bad_argument_is_named_in_one_line(call, field, got) -> None:
    message = str(raised(call))
    assert message.startswith(field + ": expected ") and message.endswith(got) and "\n" not in message, message


def test_one_name_is_a_list_of_one_and_formats_are_read_in_any_case() -> None:
    assert chainrule.derive(MAZUR, params="w5").text == chainrule.derive(MAZUR, params=["w5"]).text
    text = MAZUR.read_text(encoding="utf-8")
    assert chainrule.loads(text, format="YAML") == chainrule.loads(text, format="yml") == chainrule.loads(text)


# ---------------------------------------------------------------------------------------------
# Deriving


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_derive_gives_the_command_lines_numbers(path: Path, capsys) -> None:
    code, out, _ = cli(capsys, "derive", path, "--json")
    document = json.loads(out)
    d = chainrule.derive(path)
    assert code == 0 and d.name == document["spec"] and d.form == document["form"] and d.parameters == document["parameters"]
    assert d.loss == document["loss"]
    for key in ("forward", "gradients", "updated"):
        api, expected = getattr(d, key), document[key]
        assert list(api) == list(expected), key
        assert all(same(api[name], value) for name, value in expected.items()), key
    assert dict(d.closed_forms) == document["closed_forms"]
    assert d.text == cli(capsys, "derive", path)[1]


def test_derive_of_the_worked_example() -> None:
    d = chainrule.derive(chainrule.load(MAZUR))
    assert round(d.loss, 9) == 0.298371109
    assert round(d.gradients["w5"], 9) == 0.082167041 and round(d.updated["w5"], 8) == 0.35891648
    chain = d.chain("w5")
    assert [f.name for f in chain.paths[0]] == ["dE/dout_o1", "dout_o1/dnet_o1", "dnet_o1/dw5"]
    assert chain.closed_form == d.closed_forms["w5"] == "(out_o1 - t1)*out_o1*(1 - out_o1)*out_h1"
    assert chain.gradient == pytest.approx(d.gradients["w5"], rel=1e-12) and chain.updated == d.updated["w5"]
    assert chain.update == "w5+ = w5 - lr*dE/dw5 = 0.4 - 0.5*0.0821670406 = 0.35891648"
    assert math.prod(f.value for f in chain.paths[0]) == pytest.approx(chain.gradient, rel=1e-12)
    with pytest.raises(Exception):
        d.loss = 0  # frozen
    with pytest.raises(TypeError):
        d.gradients["w5"] = 0  # read-only


def test_a_chain_prints_as_derive_param_does(capsys) -> None:
    out = cli(capsys, "derive", MAZUR, "--param", "b1")[1]
    chain = chainrule.derive(MAZUR).chain("b1")
    assert chain.text in out and len(chain.paths) == 4
    assert chainrule.derive(MAZUR, ["b1"]).text == out


def test_a_big_network_is_keyed_by_layer_and_gives_any_chain(capsys) -> None:
    path = ROOT / "examples" / "digits.yaml"
    d = chainrule.derive(path)
    assert d.form == "layer" and d.gradients["W1"].shape == d.updated["W1"].shape == (32, 64) and d.forward["out_h"].ndim == 1
    assert dict(d.closed_forms) == {}
    with pytest.raises(ValueError, match="read-only"):  # a result is frozen, its arrays too
        d.gradients["W1"][0, 0] = 1.0
    out = cli(capsys, "derive", path, "--param", "w2049")[1]
    assert d.chain("w2049").text in out
    asked = chainrule.derive(path, ["w2049"])
    assert list(asked.closed_forms) == ["w2049"] and asked.text == out
    assert str(raised(d.chain, "q")) == cli_message(capsys, "derive", path, "--param", "q")


def test_results_display_as_markdown() -> None:
    d = chainrule.derive(MAZUR)
    assert "0.298371109" in d._repr_markdown_() and "dE/dw5" in d.chain("w5")._repr_markdown_()
    assert repr(d) == "<chainrule.Derivation mazur: 10 parameters, scalar form, loss 0.298371109>"


# ---------------------------------------------------------------------------------------------
# Checking, emitting, importing the trainer, reporting, verifying


def check_against_the_command_line(path: Path, capsys) -> None:
    code, out, _ = cli(capsys, "check", path, "--points", "1")
    checked = chainrule.check(path, points=1)
    assert checked.text == out and checked.passed == (code == 0) and checked.points == 2
    assert [g.group for g in checked.groups] and checked.emitted is None


@pytest.mark.parametrize("name", ["mazur", "digits"])
def test_check_gives_the_command_lines_table(name: str, capsys) -> None:
    check_against_the_command_line(ROOT / "examples" / f"{name}.yaml", capsys)


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_check_of_every_example_gives_the_command_lines_table(path: Path, capsys) -> None:
    check_against_the_command_line(path, capsys)


def test_check_of_an_emitted_trainer_and_its_errors(tmp_path: Path, capsys) -> None:
    written = chainrule.emit(MAZUR, tmp_path)
    checked = chainrule.check(MAZUR, points=1, emitted=written)
    assert checked.passed and "emitted" in {g.form for g in checked.emitted}
    assert checked.text == cli(capsys, "check", MAZUR, "--points", "1", "--emitted", written)[1]
    for argv, kwargs in ((["--points", "500"], {"points": 500}), (["--emitted", str(tmp_path / "none.py")], {"emitted": tmp_path / "none.py"})):
        assert str(raised(chainrule.check, MAZUR, **kwargs)) == cli_message(capsys, "check", MAZUR, *argv)


@pytest.mark.filterwarnings("ignore::chainrule.codegen.commands.FormulasLeftOut")  # examples without formulas: tests/test_emit.py
@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_emit_writes_what_the_command_line_writes(path: Path, tmp_path: Path, capsys) -> None:
    assert cli(capsys, "emit", path, "-o", tmp_path / "cli")[0] == 0
    written = chainrule.emit(chainrule.load(path), tmp_path / "api")
    assert written == tmp_path / "api" / f"{chainrule.load(path).name}.py"
    assert written.read_bytes() == (tmp_path / "cli" / written.name).read_bytes()
    cli(capsys, "emit", path, "-o", tmp_path / "cli_formulas", "--formulas")
    formulas = chainrule.emit(path, tmp_path / "formulas", formulas=True)
    assert formulas.read_bytes() == (tmp_path / "cli_formulas" / written.name).read_bytes()


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.stem)
def test_trainer_is_the_emitted_module_imported_without_a_file(path: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    module = chainrule.trainer(path)
    assert list(tmp_path.iterdir()) == []  # nothing written
    assert module.__name__ not in sys.modules or sys.modules[module.__name__] is not module
    source = module.__loader__.get_source(module.__name__)
    assert source == chainrule.emit(path, tmp_path).read_text(encoding="utf-8")
    d = chainrule.derive(path)
    net = module.Network(dtype=np.float64)
    x, t = d.engine.values.X, d.engine.values.T
    assert net.loss(x, t) == pytest.approx(d.loss, rel=1e-12)


def test_a_trainer_s_traceback_shows_its_lines() -> None:
    module = chainrule.trainer(ROOT / "examples" / "xor.yaml")
    net = module.Network()
    with pytest.raises(ValueError) as caught:
        net.fit(np.zeros((4, 2)), np.zeros((4, 1)), batch_size=0)
    last = traceback.extract_tb(caught.value.__traceback__)[-1]
    assert "xor" in last.filename and last.line.startswith("raise ValueError(")


def report_against_the_command_line(path: Path, tmp_path: Path, capsys) -> None:
    code, out, _ = cli(capsys, "report", path, "-o", tmp_path / "cli")
    written = chainrule.report(path, tmp_path / "api")
    assert code == 0 and out == f"wrote {tmp_path / 'cli' / written[0].name}\n" and capsys.readouterr().out == ""
    assert [p.name for p in written] == [f"{chainrule.load(path).name}.tex"]
    assert written[0].read_bytes() == (tmp_path / "cli" / written[0].name).read_bytes()


@pytest.mark.parametrize("name", ["mazur", "digits"])
def test_report_writes_what_the_command_line_writes(name: str, tmp_path: Path, capsys) -> None:
    report_against_the_command_line(ROOT / "examples" / f"{name}.yaml", tmp_path, capsys)


@pytest.mark.slow
@pytest.mark.parametrize("path", [p for p in EXAMPLE_FILES if p.stem not in SPATIAL_EXAMPLES + SEQUENCE_EXAMPLES], ids=lambda p: p.stem)
def test_report_of_every_example_writes_what_the_command_line_writes(path: Path, tmp_path: Path, capsys) -> None:
    report_against_the_command_line(path, tmp_path, capsys)


def test_report_params_and_their_errors(tmp_path: Path, capsys) -> None:
    (tex,) = chainrule.report(MAZUR, tmp_path, params=["w5"])
    cli(capsys, "report", MAZUR, "-o", tmp_path / "cli", "--param", "w5")
    assert tex.read_bytes() == (tmp_path / "cli" / "mazur.tex").read_bytes()
    assert str(raised(chainrule.report, MAZUR, tmp_path / "bad", params=["w99"])) == cli_message(capsys, "report", MAZUR, "-o", tmp_path / "bad", "--param", "w99")
    assert not (tmp_path / "bad").exists()


def test_report_html_writes_the_command_lines_page(tmp_path: Path, capsys) -> None:
    (page,) = chainrule.report(MAZUR, tmp_path / "api", html=True)
    code, out, _ = cli(capsys, "report", MAZUR, "-o", tmp_path / "cli", "--html")
    assert code == 0 and page.name == "mazur.html" and out == f"wrote {tmp_path / 'cli' / 'mazur.html'}\n"
    assert page.read_bytes() == (tmp_path / "cli" / "mazur.html").read_bytes()
    assert sorted(p.name for p in (tmp_path / "api").iterdir()) == ["mazur.html"]
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "<math" in text and "<svg" in text
    assert str(raised(chainrule.report, MAZUR, tmp_path / "bad", params=["w99"], html=True)) == cli_message(capsys, "report", MAZUR, "-o", tmp_path / "bad", "--html", "--param", "w99")
    assert not (tmp_path / "bad").exists()


#: The claims files; one of 10,000 steps (two trajectories, three times here) is a slow test.
CLAIMS = [pytest.param(p, marks=pytest.mark.slow) if p.stem == "mazur_trained_figures" else p
          for p in sorted((ROOT / "examples" / "claims").glob("*.yaml"))]


@pytest.mark.parametrize("claims", CLAIMS, ids=lambda p: getattr(p, "stem", None))
def test_verify_judges_as_the_command_line_does(claims: Path, capsys) -> None:
    spec = ROOT / "examples" / f"{claims.stem.rsplit('_', 1)[0]}.yaml"
    code, out, _ = cli(capsys, "verify", spec, claims)
    verified = chainrule.verify(spec, claims)
    assert verified.text == out and verified.passed == (code == 0)
    assert verified.total == len(verified.claims) and verified.right == sum(v.correct for v in verified.claims)
    document = json.loads(cli(capsys, "verify", spec, claims, "--json")[1])
    assert [(c["label"], c["verdict"] == "correct") for c in document["claims"]] == [(v.label, v.correct) for v in verified.claims]
    assert "of" in verified._repr_markdown_()


def test_verify_refuses_bad_claims_as_the_command_line_does(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("claims:\n  - {of: w99, value: 1}\n", encoding="utf-8")
    for claims in (bad, tmp_path / "none.yaml", ROOT / "examples" / "claims" / "textbook_121_correct.yaml"):
        assert str(raised(chainrule.verify, MAZUR, claims)) == cli_message(capsys, "verify", MAZUR, claims)


def test_errors_write_nothing(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "specs" / "n.yaml"
    bad.parent.mkdir()
    bad.write_text(BAD_SPECS["case"][0], encoding="utf-8")
    out = tmp_path / "out"
    for call in (chainrule.emit, chainrule.report):
        assert str(raised(call, bad, out)) == cli_message(capsys, call.__name__, bad, "-o", out)
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("", encoding="utf-8")
    for call in (chainrule.emit, chainrule.report):
        assert str(raised(call, MAZUR, not_a_directory)) == cli_message(capsys, call.__name__, MAZUR, "-o", not_a_directory)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "specs"] and not_a_directory.read_text() == ""


# ---------------------------------------------------------------------------------------------
# The package


def test_chainrule_derive_is_the_function_and_its_modules_import() -> None:
    import chainrule.derive.spec  # noqa: F401 - a submodule imported after the package

    assert callable(chainrule.derive) and chainrule.derive.__module__ == "chainrule.api"
    assert sys.modules["chainrule.derive"].__file__.endswith("__init__.py")
    from chainrule.derive import derive as engine_derive

    assert engine_derive.__module__ == "chainrule.derive.derivation"


def test_import_loads_no_sympy_numpy_or_jinja() -> None:
    code = "import sys, chainrule; print(sorted(m for m in ('sympy', 'numpy', 'jinja2', 'yaml') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"


def test_the_version_is_the_packages(capsys) -> None:
    from importlib import metadata

    assert chainrule.__version__ == metadata.version("chainrule")
    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0 and capsys.readouterr().out == f"chainrule {chainrule.__version__}\n"


@pytest.mark.slow
def test_the_console_script_prints_the_version() -> None:
    exe = Path(sys.executable).parent / "chainrule"
    run = subprocess.run([str(exe), "--version"], capture_output=True, text=True)
    assert (run.returncode, run.stdout, run.stderr) == (0, f"chainrule {chainrule.__version__}\n", "")
    assert set(chainrule.__all__) <= set(dir(chainrule)) | {"__version__", "Spec"}
