"""A bounded fuzzing run over what users write: formulas (as activations, losses and claims) and
claims' values and tolerances, through every command. Each input ends in an answer or in one
line on stderr with exit 2, within 10 s: no traceback, no hang, and every emitted trainer parses.
Seeded, so a failure names an input that fails again; FUZZ_SEEDS=N runs N seeds of formulas (CI: 4)."""

from __future__ import annotations

import ast
import json
import os
import random
import time
from pathlib import Path

import pytest

from chainrule.codegen.cli import main
from helpers import ROOT

#: Pieces of formulas: the allowed functions, numbers of every size, operators, and (rarely)
#: what a slip of the keyboard brings: an unknown name, a bracket too many, a power too large.
NUMBERS = ["1", "2", "0.5", "2.5", "1e-20", "1e20", "-1", "0.044715", "pi", "0"]
FUNCTIONS = ["exp", "log", "sqrt", "tanh", "sin", "cos", "abs", "max", "min", "erf", "sign", "sigmoid", "step"]
OPERATORS = ["+", "-", "*", "/", "**", "^"]
RARE = ["__import__", "lambda", "(v", "v)", "v +", "**v", "max(v)", "exp(-1e20)", "(-1)**v", "v**1000", "1/0", "log(0)", "v\n+ 1"]


def random_formula(rng: random.Random, names: list[str], depth: int = 0) -> str:
    """A formula in ``names``: mostly well formed, one piece in 60 a slip."""
    roll = rng.random()
    if roll < 1 / 60:
        return rng.choice(RARE).replace("v", rng.choice(names))
    if depth > 3 or roll < 0.4:
        return rng.choice(names * 3 + NUMBERS)
    if roll < 0.6:
        name = rng.choice(FUNCTIONS)
        count = 2 if name in ("max", "min") else 1
        return f"{name}({', '.join(random_formula(rng, names, depth + 1) for _ in range(count))})"
    return f"({random_formula(rng, names, depth + 1)} {rng.choice(OPERATORS)} {random_formula(rng, names, depth + 1)})"


def run(argv: list[str], capsys) -> tuple[int, str, float]:
    start = time.perf_counter()
    code = main(argv)
    elapsed = time.perf_counter() - start
    captured = capsys.readouterr()
    if code == 2:
        assert captured.err.count("\n") == 1 and "Traceback" not in captured.err, captured.err
    return code, captured.out, elapsed


def spec_with(activation: str, loss: str) -> dict:
    return {
        "name": "fuzz",
        "inputs": ["i1", "i2"],
        "layers": [
            {"name": "h", "units": 2, "activation": {"formula": activation}},
            {"name": "o", "units": 2, "activation": "sigmoid"},
        ],
        "loss": {"formula": loss},
        "seed": 1,
    }


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(int(os.environ.get("FUZZ_SEEDS", "4"))))
def test_formulas_through_every_command(seed: int, tmp_path: Path, capsys) -> None:
    rng = random.Random(seed)
    answered = 0
    for i in range(16):
        # half of them anchored to a plain part, so that more reach past "the formula does not use x"
        activation, loss = random_formula(rng, ["x"]), random_formula(rng, ["y", "t"])
        if i % 4:
            activation, loss = f"x + ({activation})/10", f"(y - t)**2 + ({loss})/10"
        spec = tmp_path / f"fuzz_{i}.json"
        spec.write_text(json.dumps(spec_with(activation, loss)), encoding="utf-8")
        code, _, elapsed = run(["derive", str(spec)], capsys)
        assert code in (0, 2) and elapsed < 10, (activation, loss, elapsed)
        if code != 0:
            continue
        answered += 1
        out = tmp_path / f"out_{i}"
        for argv in (["emit", str(spec), "-o", str(out)], ["report", str(spec), "-o", str(out)], ["check", str(spec), "--points", "2"]):
            code, _, elapsed = run(argv, capsys)
            assert code in (0, 1, 2) and elapsed < 10, (argv[0], activation, loss, elapsed)
        if (out / "fuzz.py").exists():
            ast.parse((out / "fuzz.py").read_text(encoding="utf-8"))
            code, _, elapsed = run(["check", str(spec), "--emitted", str(out / "fuzz.py"), "--points", "2"], capsys)
            assert code in (0, 1, 2) and elapsed < 10, ("check --emitted", activation, loss, elapsed)
    assert answered >= 3  # the run reaches past the loader


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3))
def test_claims_are_judged_or_refused_in_one_line(seed: int, tmp_path: Path, capsys) -> None:
    rng = random.Random(100 + seed)
    claims = []
    for _ in range(20):
        of = rng.choice(["E", "dE/dw5", "dE/dw1", "out_o1", "w5+", "dE/db2", "net_h1"])
        formula = random_formula(rng, ["o1", "h1", "w5", "i1", "t1", "o2", "dE/dw5", "lr"])
        claims.append({"of": of, "formula": formula})
        claims.append({"of": of, "value": rng.choice([0.0822, -1e300, 1e-320, 123456789.123456789, 0.298371109])})
        claims.append({"of": of, "value": 0.08, "tolerance": rng.choice([1e-3, 0.0, 1e300])})
    path = tmp_path / "claims.json"
    path.write_text(json.dumps({"claims": claims}), encoding="utf-8")
    spec = str(ROOT / "examples" / "mazur.yaml")
    code, _, elapsed = run(["verify", spec, str(path)], capsys)
    assert code in (0, 1, 2) and elapsed < 10 * len(claims) / 10, elapsed
    judged = 0
    for claim in claims:  # one at a time: each within 10 s
        one = tmp_path / "one.json"
        one.write_text(json.dumps({"claims": [claim]}), encoding="utf-8")
        code, _, elapsed = run(["verify", spec, str(one)], capsys)
        assert code in (0, 1, 2) and elapsed < 10, (claim, elapsed)
        judged += code in (0, 1)
    assert judged >= len(claims) // 2
