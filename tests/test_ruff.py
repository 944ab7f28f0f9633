"""The emitted trainers are code as ruff formats and lints it: every file in generated/, trainers
of random specs (with ``--formulas`` too) and of specs full of awkward text, and the runtime
module they copy (codegen/trainer/runtime.py).

chainrule never runs ruff: its emitter writes the layout itself (codegen/trainer/pyformat.py).
ruff is pinned in the test extra (pyproject.toml) because its formatting changes between
releases; a test here skips itself where ruff is not installed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from chainrule.codegen.cli import main
from chainrule.codegen.trainer.pyformat import format_statement
from generator import random_spec, spec_id
from helpers import ROOT

LINE_LENGTH = "100"
#: ruff's default rules (pyflakes, and pycodestyle's syntax and statement errors), line length,
#: and whitespace warnings.
RULES = "E4,E7,E9,E501,F,W"


def _ruff() -> str | None:
    beside = Path(sys.executable).parent / "ruff"
    return str(beside) if beside.exists() else shutil.which("ruff")


RUFF = _ruff()
needs_ruff = pytest.mark.skipif(RUFF is None, reason="needs ruff (pip install '.[test]')")


def pinned() -> str:
    return re.search(r'"ruff==([\d.]+)"', (ROOT / "pyproject.toml").read_text(encoding="utf-8")).group(1)


def ruff(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([RUFF, *args, "--isolated", "--line-length", LINE_LENGTH], input=stdin,
                          capture_output=True, text=True, check=False)


def assert_ruff_clean(paths: list[Path]) -> None:
    """``ruff format --check`` and ``ruff check`` find nothing to change in ``paths``."""
    version = subprocess.run([RUFF, "--version"], capture_output=True, text=True, check=True).stdout.split()[-1]
    where = f"(ruff {version}; pinned {pinned()})"
    formatted = ruff("format", "--check", "--diff", *map(str, paths))
    assert formatted.returncode == 0, f"not as ruff formats it {where}:\n{formatted.stdout[-6000:]}{formatted.stderr[-2000:]}"
    checked = ruff("check", "--select", RULES, "--output-format", "concise", *map(str, paths))
    assert checked.returncode == 0, f"ruff check {where}:\n{checked.stdout[-6000:]}{checked.stderr[-2000:]}"


@needs_ruff
def test_generated_trainers_are_as_ruff_formats_and_lints_them() -> None:
    trainers = sorted((ROOT / "generated").glob("*.py"))
    assert len(trainers) >= 8
    assert_ruff_clean(trainers)


@needs_ruff
def test_the_runtime_module_is_as_ruff_formats_and_lints_it() -> None:
    assert_ruff_clean([ROOT / "codegen" / "trainer" / "runtime.py"])


@pytest.mark.slow
@needs_ruff
def test_trainers_of_random_specs_with_formulas_are_as_ruff_formats_them(tmp_path: Path) -> None:
    for seed in range(30):
        data = random_spec(seed, max_width=9 if seed % 2 else 4, max_inputs=9 if seed % 3 else 4)
        data["name"] = f"net{seed}"
        spec = tmp_path / f"{spec_id(seed)}.json"
        spec.write_text(json.dumps(data), encoding="utf-8")
        assert main(["emit", str(spec), "-o", str(tmp_path / "plain")]) == 0
        assert main(["emit", str(spec), "-o", str(tmp_path / "formulas"), "--formulas"]) == 0
    assert_ruff_clean(sorted(tmp_path.glob("*/*.py")))


@pytest.mark.slow
@needs_ruff
def test_trainers_of_awkward_text_are_as_ruff_formats_them(tmp_path: Path) -> None:
    from test_injection import NASTY, file_name_of, nasty_spec

    for index, text in enumerate(NASTY):
        folder = tmp_path / str(index)
        folder.mkdir()
        spec = folder / file_name_of(text)
        spec.write_text(json.dumps(nasty_spec(text)), encoding="utf-8")
        assert main(["emit", str(spec), "-o", str(folder / "out"), "--formulas"]) == 0
    assert_ruff_clean(sorted(tmp_path.glob("*/out/*.py")))


# -- the layout against ruff's on single statements ---------------------------------------------

STATEMENTS = [
    "net_h1 = w1*x1 + w2*x2 + w3*x3 + w4*x4 + w5*x5 + w6*x6 + w7*x7 + w8*x8 + w9*x9 + w10*x10 + w11*x11 + b1",
    "delta_h *= net_h*(1 - np.tanh(np.logaddexp(0.0, net_h))**2)*sigmoid(net_h) + np.tanh(np.logaddexp(0.0, net_h))",
    "delta_o = -(np.exp(T) - np.exp(out_o))*(np.exp(T) + np.exp(out_o))/(np.exp(2*T) + np.exp(2*out_o))",
    "return float((T*np.logaddexp(0.0, -net_o) + (1 - T)*np.logaddexp(0.0, net_o)).sum()) / X.shape[0]",
    "theta[...] = theta*(1 - lr*weight_decay) - lr*m/((1 - beta1**k)*(eps + (v/(1 - beta2**k))**0.5))",
    "(w1, w2, w3, w4, w5, w6, w7, w8, b1, b2, b3, b4, w9, w10, w11, w12, b5), (x1, x2), (y,) = self.theta.tolist(), x, t",
    "return E, (w1 - (delta_h1*i1)*lr, w2 - (delta_h1*i2)*lr, w3 - (delta_h2*i1)*lr, w4 - (delta_h2*i2)*lr, b1 - (delta_h1 + delta_h2)*lr,)",
    'wq = np.where(out_o <= 0.5, w*q, -q*(T - out_o)*(1 - out_o)/out_o + (1 - T)*out_o - q*T*out_o + w_long_name_here)',
    "out = (1.0/(1.0 + math.exp(-net)) if net > 0 else math.exp(net)/(1.0 + math.exp(net)) + a_long_name_to_make_it_wrap)",
    'return {"W1": np.array([[0.15, 0.2], [0.25, 0.3]]), "b1": np.array([0.35]), "W2": np.array([[0.4, 0.45], [0.5, 0.55]])}',
    "z = -x**2 + (-x)**2 + x[1]**2 + x.y**2 + 2**-k + theta[0:4] + a[i + 1:]",
]


def test_statements_are_laid_out_in_ruff_style() -> None:
    assert format_statement("net_h1 = w1*i1 + w2*i2 + b1", 2) == "net_h1 = w1 * i1 + w2 * i2 + b1"
    assert format_statement("z = -x**2 + (-x)**2 + x[1]**2 + x.y**2", 0) == "z = -(x**2) + (-x) ** 2 + x[1] ** 2 + x.y**2"
    assert format_statement("return E, (a, b)", 2) == "return E, (a, b)"
    with pytest.raises(ValueError, match="not a statement"):
        format_statement("for x in y: pass")


@needs_ruff
@pytest.mark.parametrize("level", [1, 2, 3])
def test_statements_are_laid_out_as_ruff_lays_them_out(level: int) -> None:
    pad = "    " * level
    for code in STATEMENTS:
        head = "".join("    " * k + f"def f{k}():\n" for k in range(level))
        mine = head + pad + format_statement(code, level) + "\n"
        theirs = ruff("format", "-", stdin=mine).stdout
        assert mine == theirs, f"{code}\n--- laid out:\n{mine}--- ruff:\n{theirs}"
