"""Benchmark of issue 5: grading a class of claims files against one spec, whole process.

Writes 300 claims files of 10 claims each into a temporary directory, as a class hands them in:
values to 3-9 digits (some truncated, some with a slip or a typical mistake), formulas and
chains, right or with a typical mistake, spelled with either alias (o1 or out_o1) and their own
spacing. Then times, each a fresh process, ``chainrule verify SPEC one.yaml`` and ``chainrule
verify SPEC *.yaml --csv grades.csv`` interleaved, and prints the medians and their ratio (the
goal: at most 3x, the derivation shared, not redone per file).

    .venv/bin/python benchmarks/bench_verify.py [--files 300] [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "examples" / "mazur.yaml"
CHAINRULE = [sys.executable, "-m", "chainrule.codegen.cli"]

# (of, true value) from the published worked example and `chainrule derive examples/mazur.yaml`
VALUES = [("E", 0.298371109), ("out_h1", 0.593269992), ("o1", 0.75136507), ("dE/dw5", 0.0821670406), ("dE/dw1", 0.000438567734), ("w5+", 0.35891648), ("w1+", 0.149780716), ("dE/dw6", 0.0826676278), ("net_o1", 1.10590597)]
FORMULAS = {
    "dE/dw5": ["({o1} - t1)*{o1}*(1 - {o1})*{h1}", "(t1 - {o1})*{o1}*(1 - {o1})*{h1}", "({o1} - t1)*{o1}*{h1}", "({o1} - t1)*{o1}*(1 - {o1})"],
    "dE/dw1": ["(({o1} - t1)*{o1}*(1 - {o1})*w5 + ({o2} - t2)*{o2}*(1 - {o2})*w7)*{h1}*(1 - {h1})*i1", "({o1} - t1)*{o1}*(1 - {o1})*w5*{h1}*(1 - {h1})*i1", "({o1} - t1)*{o1}*(1 - {o1})*({o2} - t2)*{o2}*(1 - {o2})*i1"],
    "E": ["(t1 - {o1})**2/2 + (t2 - {o2})**2/2", "(t1 - {o1})**2 + (t2 - {o2})**2"],
    "w5+": ["w5 - lr*dE/dw5", "w5 + lr*dE/dw5", "w5 - dE/dw5"],
}
CHAINS = {
    "dE/dw5": ["dE/d{o1} * d{o1}/dnet_o1 * dnet_o1/dw5", "dE/d{o1} * dnet_o1/dw5", "dE/dnet_o1 * dnet_o1/dw5"],
    "dE/dw1": ["dE/d{o1}*d{o1}/dnet_o1*dnet_o1/d{h1}*d{h1}/dnet_h1*dnet_h1/dw1 + dE/d{o2}*d{o2}/dnet_o2*dnet_o2/d{h1}*d{h1}/dnet_h1*dnet_h1/dw1", "dE/d{o1}*d{o1}/dnet_o1*dnet_o1/d{h1}*d{h1}/dnet_h1*dnet_h1/dw1"],
}


def claim(rng: random.Random) -> dict:
    kind = rng.choice(["value", "value", "formula", "chain"])
    names = {k: rng.choice([k, f"out_{k}"]) for k in ("o1", "o2", "h1")}
    if kind == "formula":
        of = rng.choice(list(FORMULAS))
        text = rng.choice(FORMULAS[of]).format(**names)
        return {"of": of, "formula": text.replace(" ", " " * rng.randint(0, 2)) if rng.random() < 0.5 else text}
    if kind == "chain":
        of = rng.choice(list(CHAINS))
        return {"of": of, "chain": rng.choice(CHAINS[of]).format(**names)}
    of, value = rng.choice(VALUES)
    digits = rng.randint(3, 9)
    text = f"{value:.{digits}g}"
    if rng.random() < 0.3:
        text = f"{value * rng.choice([-1, 2, 0.5, 1.013, 0.97]):.{digits}g}"
    return {"of": of, "value": text}


def write_class(folder: Path, files: int, seed: int = 5) -> list[str]:
    rng = random.Random(seed)
    paths = []
    for i in range(files):
        path = folder / f"student_{i:03d}.json"
        path.write_text(json.dumps({"spec": str(SPEC), "claims": [claim(rng) for _ in range(10)]}, indent=1))
        paths.append(str(path))
    return paths


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
    elapsed = time.perf_counter() - start
    if result.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(args[:6])} ... failed ({result.returncode}): {result.stderr.strip()}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=7)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = write_class(folder, options.files)
        one = CHAINRULE + ["verify", str(SPEC), paths[0]]
        everyone = CHAINRULE + ["verify", str(SPEC), *paths, "--csv", str(folder / "grades.csv")]
        timed(one), timed(everyone)  # warm the file cache and the bytecode
        times: dict[str, list[float]] = {"one": [], "all": []}
        for _ in range(options.repeats):
            times["one"].append(timed(one))
            times["all"].append(timed(everyone))
        rows = (folder / "grades.csv").read_text().count("\n") - 1
    one_median, all_median = statistics.median(times["one"]), statistics.median(times["all"])
    print(f"machine: {os.cpu_count()} CPUs; python {sys.version.split()[0]}")
    print(f"| case | median s | min s | max s |\n| --- | --- | --- | --- |")
    for key, label in (("one", "1 file x 10 claims"), ("all", f"{options.files} files x 10 claims, --csv ({rows} rows)")):
        print(f"| {label} | {statistics.median(times[key]):.3f} | {min(times[key]):.3f} | {max(times[key]):.3f} |")
    print(f"ratio (all / one): {all_median / one_median:.2f}x (goal: at most 3x)")


if __name__ == "__main__":
    main()
