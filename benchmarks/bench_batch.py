"""Whole-process cost of batches and steps in `chainrule derive` (issue 15), against one sample.

    python benchmarks/bench_batch.py [--repeats N]

Cases, interleaved, each a fresh process (imports included):

- `derive --json` of the 784-128-10 network (examples/mlp_784_128_10.yaml) with one sample and
  with a batch of 4 (goal: the batch at most 3x the one sample). The samples are drawn from a
  seeded generator (inputs uniform in [0, 1), one-hot targets) into temporary JSON specs; the one
  sample is the batch's first.
- `derive --steps 10000` of the worked example trained with frozen biases
  (examples/mazur_trained.yaml; goal: under 2 s whole process), beside `derive` of the same spec.

Prints the median, smallest and largest wall time of each and the ratios, as Markdown.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_derive import EXE, ROOT, machine, run_once  # noqa: E402

BATCH = 4


def specs(folder: Path) -> tuple[Path, Path]:
    """The 784-128-10 spec with its first sample alone, and with the batch of :data:`BATCH`."""
    rng = np.random.default_rng(0)
    X = rng.random((BATCH, 784)).round(4)
    T = np.eye(10)[rng.integers(0, 10, BATCH)]
    base = {"name": "mlp_784_128_10", "inputs": 784,
            "layers": [{"name": "h", "units": 128, "activation": "relu"}, {"name": "o", "units": 10, "activation": "softmax"}],
            "loss": "cross_entropy", "seed": 1, "optimizer": {"kind": "sgd", "lr": 0.1}}
    one, batch = folder / "one.json", folder / "batch.json"
    one.write_text(json.dumps({**base, "sample": {"x": X[0].tolist(), "t": T[0].tolist()}}))
    batch.write_text(json.dumps({**base, "samples": [{"x": x.tolist(), "t": t.tolist()} for x, t in zip(X, T)]}))
    return one, batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        one, batch = specs(Path(folder))
        cases = {
            "derive 784-128-10 --json, 1 sample": [EXE, "derive", str(one), "--json"],
            f"derive 784-128-10 --json, {BATCH} samples": [EXE, "derive", str(batch), "--json"],
            "derive mazur_trained": [EXE, "derive", "examples/mazur_trained.yaml"],
            "derive mazur_trained --steps 10000": [EXE, "derive", "examples/mazur_trained.yaml", "--steps", "10000"],
        }
        times: dict[str, list[float]] = {name: [] for name in cases}
        for command in cases.values():  # warm the file cache
            run_once(command)
        for _ in range(args.repeats):
            for name, command in cases.items():
                times[name].append(run_once(command)[0])
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"Machine: {machine()}\n")
    print(f"Command: `python benchmarks/bench_batch.py --repeats {args.repeats}` (interleaved; fresh processes; cwd {ROOT.name})\n")
    print("| case | median s | min s | max s |")
    print("| --- | ---: | ---: | ---: |")
    for name, values in times.items():
        print(f"| {name} | {medians[name]:.3f} | {min(values):.3f} | {max(values):.3f} |")
    names = list(medians)
    print(f"\nbatch of {BATCH} / one sample: {medians[names[1]] / medians[names[0]]:.2f}x (goal at most 3x); "
          f"--steps 10000: {medians[names[3]]:.2f} s (goal under 2 s), {medians[names[3]] / medians[names[2]]:.2f}x derive alone")


if __name__ == "__main__":
    main()
