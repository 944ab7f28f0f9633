"""No text of a user's runs: every string that reaches an emitted trainer or a report (the spec's
file name, its description, formulas as written, data paths and column names) is escaped for the
place it lands, so the trainer parses, imports without running anything, and keeps the text."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chainrule.codegen.trainer import pysource
from chainrule.codegen.cli import main

#: What breaks out of a string, a comment or a docstring, or forms an escape, in one place or another.
NASTY = [
    'x"""+str(__import__("os").system("touch PWNED"))+"""',
    "x'''+str(__import__('os').system('touch PWNED'))+'''",
    "a\nimport os; os.system('touch PWNED')\n#",
    "a\r__import__('os').system('touch PWNED')\r",
    "\\N{BULLET} \\u0041 \\x41 \\",
    "nul \x00 here",
    "\u201cquoted\u201d \u2013 \u00b5s \u00e9 \U0001f600 \u2028 line sep \ud800",
    '{__import__("os").system("touch PWNED")}',
    "\"\"\"\n'''\n\\",
]


@pytest.mark.parametrize("text", NASTY, ids=range(len(NASTY)))
def test_escapes_keep_the_text_and_stay_in_place(text: str) -> None:
    source = f'"""{pysource.docstring(text)}"""\n# {pysource.comment(text)}\nvalue = {pysource.literal(text)}\n'
    tree = ast.parse(source)
    assert ast.get_docstring(tree, clean=False) == text
    assert len(tree.body) == 2  # the comment stayed a comment
    assert ast.literal_eval(tree.body[1].value) == text


def nasty_spec(text: str) -> dict:
    return {
        "name": "fnet",
        "description": text,
        "inputs": [2 * "x", "i2"],
        "layers": [
            {"name": "h", "units": 2, "activation": {"formula": "tanh(x)\n        + 0*x\r\t"}},
            {"name": "o", "units": 1, "activation": "sigmoid"},
        ],
        "loss": {"formula": "(t - y)**2\n        / 2"},
        "data": {"path": text.replace("\x00", "") + ".csv", "inputs": [text, text + "2"], "targets": [text + "t"]},
        "seed": 3,
    }


def file_name_of(text: str) -> str:
    return text.replace("\x00", "").replace("/", "_").replace("\ud800", "")[:100] + ".json"


@pytest.mark.slow
@pytest.mark.parametrize("text", NASTY, ids=range(len(NASTY)))
def test_emitted_trainer_of_nasty_text_parses_and_runs_nothing(text: str, tmp_path: Path) -> None:
    spec_dir, out = tmp_path / "spec", tmp_path / "out"
    spec_dir.mkdir()
    spec_path = spec_dir / file_name_of(text)
    spec_path.write_text(json.dumps(nasty_spec(text)), encoding="utf-8")
    assert main(["emit", str(spec_path), "-o", str(out)]) == 0
    trainer = out / "fnet.py"
    source = trainer.read_text(encoding="utf-8")
    tree = ast.parse(source)
    assert "touch PWNED" not in "".join(ast.unparse(node) for node in tree.body[1:] if not isinstance(node, ast.Assign))
    run = subprocess.run([sys.executable, "-c", "import runpy, sys; runpy.run_path(sys.argv[1], run_name='imported'); print('imported')", str(trainer)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "imported\n"
    assert not any(p.name == "PWNED" for p in tmp_path.rglob("*")) and not (Path.cwd() / "PWNED").exists()
    assert sorted(os.listdir(out)) == ["fnet.py"]
    assert ast.get_docstring(tree).count(text.replace("\x00", "")[:4]) >= 0  # readable: the docstring parsed


@pytest.mark.slow
def test_the_checker_imports_a_nasty_trainer_without_running_it(tmp_path: Path, capsys) -> None:
    text = NASTY[0]
    spec_path = tmp_path / file_name_of(text)
    data = nasty_spec(text)
    del data["data"]
    spec_path.write_text(json.dumps(data), encoding="utf-8")
    assert main(["emit", str(spec_path), "-o", str(tmp_path)]) == 0
    assert main(["check", str(spec_path), "--emitted", str(tmp_path / "fnet.py"), "--points", "1"]) == 0
    assert not (tmp_path / "PWNED").exists() and not (Path.cwd() / "PWNED").exists()
