"""Whole-process cost of `chainrule report`: the worked example and the 784-128-10 network.

    python benchmarks/bench_report.py [--repeats N]

Runs `chainrule report` of examples/mazur.yaml and examples/mlp_784_128_10.yaml, `.tex` only,
with `--pdf` and as `--html` (issue 17's goal: the page at most the time of the `.tex`), interleaved, each a fresh process (imports and the TeX compile included) writing
into a fresh temporary directory, and prints the median, smallest and largest wall time of each,
the size of what it wrote and the number of PDF pages, as a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_derive import EXE, ROOT, machine  # noqa: E402

CASES = {
    "report 2-2-2 (.tex)": ["examples/mazur.yaml"],
    "report 2-2-2 --pdf": ["examples/mazur.yaml", "--pdf"],
    "report 784-128-10 (.tex)": ["examples/mlp_784_128_10.yaml"],
    "report 784-128-10 --pdf": ["examples/mlp_784_128_10.yaml", "--pdf"],
    "report 2-2-2 --html": ["examples/mazur.yaml", "--html"],
    "report 784-128-10 --html": ["examples/mlp_784_128_10.yaml", "--html"],
}


def run_once(args: list[str]) -> tuple[float, dict[str, int], int]:
    """Wall seconds, sizes of the files written, and PDF pages (0 without one)."""
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        subprocess.run([EXE, "report", *args, "-o", out], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        elapsed = time.perf_counter() - start
        sizes = {p.suffix: p.stat().st_size for p in Path(out).iterdir()}
        pdfs = list(Path(out).glob("*.pdf"))
        pages = 0
        if pdfs:
            info = subprocess.run(["pdfinfo", str(pdfs[0])], capture_output=True, text=True).stdout
            pages = int(info.split("Pages:")[1].split()[0])
    return elapsed, sizes, pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in CASES}
    written: dict[str, tuple[dict[str, int], int]] = {}
    run_once(CASES["report 2-2-2 --pdf"])  # warm the file cache and TeX's
    for _ in range(args.repeats):
        for name, case in CASES.items():
            elapsed, sizes, pages = run_once(case)
            times[name].append(elapsed)
            written[name] = (sizes, pages)
    print(f"Machine: {machine()}\n")
    print(f"Command: `python benchmarks/bench_report.py --repeats {args.repeats}` (interleaved; fresh processes)\n")
    print("| case | median s | min s | max s | .tex or .html bytes | PDF bytes | PDF pages |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, values in times.items():
        sizes, pages = written[name]
        pdf = f"{sizes['.pdf']:,}" if ".pdf" in sizes else "-"
        page = sizes.get(".tex", sizes.get(".html", 0))
        print(f"| {name} | {statistics.median(values):.3f} | {min(values):.3f} | {max(values):.3f} | {page:,} | {pdf} | {pages or '-'} |")
    for size in ("2-2-2", "784-128-10"):
        html, tex = (statistics.median(times[f"report {size} {kind}"]) for kind in ("--html", "(.tex)"))
        print(f"\n{size}: `--html` / `.tex` = {html / tex:.2f} (medians)")


if __name__ == "__main__":
    main()
