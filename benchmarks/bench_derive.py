"""Whole-process cost of `chainrule derive`, big network against the worked example, in one run.

    python benchmarks/bench_derive.py [--repeats N]

Runs `chainrule derive examples/mazur.yaml` (2-2-2, 10 parameters),
`chainrule derive examples/mlp_784_128_10.yaml --json` (101,770 parameters) and `derive` of a
conv net on a 28x28 image (benchmarks/specs/bench_conv_28x28.yaml, 5,408 conv positions),
interleaved, each as
a fresh process (imports included), and prints the median wall time of each, their ratio, and
each one's peak resident memory (from wait4), as a Markdown table with the machine it ran on.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXE = str(Path(sys.executable).parent / "chainrule")
CASES = {
    "derive 2-2-2 (text)": [EXE, "derive", "examples/mazur.yaml"],
    "derive 2-2-2 --json": [EXE, "derive", "examples/mazur.yaml", "--json"],
    "derive 784-128-10 --json": [EXE, "derive", "examples/mlp_784_128_10.yaml", "--json"],
    "check 784-128-10": [EXE, "check", "examples/mlp_784_128_10.yaml"],
    "derive conv 28x28 --json": [EXE, "derive", "benchmarks/specs/bench_conv_28x28.yaml", "--json"],
    "derive conv 28x28 (text)": [EXE, "derive", "benchmarks/specs/bench_conv_28x28.yaml"],
}


def run_once(command: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (MiB) of one run of ``command``."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed: {process.stderr.read().decode() if process.stderr else ''}")
    return elapsed, usage.ru_maxrss // 1024


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), platform.processor())
    import numpy
    import sympy

    return f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, sympy {sympy.__version__}, numpy {numpy.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in CASES}
    memory: dict[str, int] = {name: 0 for name in CASES}
    run_once(CASES["derive 2-2-2 (text)"])  # warm the file cache
    for _ in range(args.repeats):
        for name, command in CASES.items():
            elapsed, rss = run_once(command)
            times[name].append(elapsed)
            memory[name] = max(memory[name], rss)
    base = statistics.median(times["derive 2-2-2 --json"])
    print(f"Machine: {machine()}\n")
    print(f"Command: `python benchmarks/bench_derive.py --repeats {args.repeats}` (interleaved; medians of {args.repeats} fresh processes)\n")
    print("| case | median s | min s | max s | ratio to 2-2-2 --json | peak RSS MiB |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.3f} | {min(values):.3f} | {max(values):.3f} | {median / base:.2f}x | {memory[name]} |")


if __name__ == "__main__":
    main()
