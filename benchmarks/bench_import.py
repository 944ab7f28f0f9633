"""Whole-process cost of `import chainrule` (issue 17: under 0.6 s), against its peers in the same run.

    python benchmarks/bench_import.py [--repeats N]

Each case is a fresh interpreter (`python -c ...`), the cases interleaved: an empty program (the
interpreter's own start), `import numpy`, `import sympy`, `import chainrule`, and `import
chainrule` followed by the first derivation of the worked example (when sympy is imported).
Prints the median, smallest and largest wall time of each as a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_derive import ROOT, machine  # noqa: E402

PYTHON = sys.executable
CASES = {
    "python -c pass": "pass",
    "import numpy": "import numpy",
    "import sympy": "import sympy",
    "import chainrule": "import chainrule",
    "import chainrule; derive mazur": "import chainrule; chainrule.derive('examples/mazur.yaml')",
}


def run_once(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([PYTHON, "-c", code], cwd=ROOT, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for code in CASES.values():  # warm the file cache
        run_once(code)
    for _ in range(args.repeats):
        for name, code in CASES.items():
            times[name].append(run_once(code))
    print(f"Machine: {machine()}\n")
    print(f"Command: `python benchmarks/bench_import.py --repeats {args.repeats}` (interleaved; fresh processes)\n")
    print("| case | median s | min s | max s |")
    print("| --- | ---: | ---: | ---: |")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values):.3f} | {min(values):.3f} | {max(values):.3f} |")


if __name__ == "__main__":
    main()
