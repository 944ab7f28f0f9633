"""Where straight-line float code stops beating arrays: the switch-over size of the emitted step.

    python benchmarks/bench_switch.py [--rounds 9] [--sizes 2,3,4,5,6,8,10,12]

For square sigmoid networks n-n-n (half squared error, sgd; 2n^2 + 2n parameters with a bias per
unit), chainrule emits the trainer with straight-line code forced on whatever the size, then times
one batch-1 step both ways in the same process: ``_step_one`` (plain floats) and the array path
(``_forward``, ``_loss``, ``_backward``, ``_update``, what ``step`` runs for a batch). Rounds
interleave the two and the sizes; the table gives medians and the ratio scalar / array. The
emitted trainer uses straight-line code up to ``SCALAR_MAX_PARAMS`` parameters
(codegen/trainer/floatcode.py); this is the measurement that sets it.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np

from chainrule.codegen.trainer import context as trainer, floatcode
from chainrule.derive.derivation import derive
from chainrule.derive.spec import spec_from_data


def spec(n: int):
    return spec_from_data({"name": f"square_{n}", "inputs": [f"i{k}" for k in range(1, n + 1)],
                           "layers": [{"name": "h", "units": n, "activation": "sigmoid"},
                                      {"name": "o", "units": n, "activation": "sigmoid"}],
                           "loss": "half_sse", "seed": 3, "optimizer": {"kind": "sgd", "lr": 0.5}}, "<bench>")


def load(n: int, directory: Path):
    s = spec(n)
    with mock.patch.object(floatcode, "SCALAR_MAX_PARAMS", 10**9):
        text = trainer.render_trainer(derive(s), f"{s.name}.yaml", str(directory))
    path = directory / f"{s.name}.py"
    path.write_text(text)
    module_spec = importlib.util.spec_from_file_location(s.name, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module, len(text.splitlines())


def paths(module, n: int):
    rng = np.random.default_rng(n)
    X, T = rng.uniform(0, 1, (1, n)), rng.uniform(0.1, 0.9, (1, n))
    scalar_net, array_net = module.Network(), module.Network()
    x, t = X.ravel().tolist(), T.ravel().tolist()

    def scalar() -> None:
        scalar_net._step_one(x, t)

    def array() -> None:
        work = array_net._workspace(1)
        outs = array_net._forward(X, work)
        array_net._loss(X, T, work, *outs)
        array_net._update(array_net._backward(X, T, array_net.lr, work, *outs))

    scalar(), array()
    assert np.allclose(scalar_net.theta, array_net.theta, rtol=1e-12, atol=1e-15), "the two paths disagree"
    return {"scalar": scalar, "array": array}


def per_step(function, seconds: float = 0.02) -> float:
    count = 1
    while True:
        start = time.perf_counter()
        for _ in range(count):
            function()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return elapsed / count
        count *= 2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--sizes", default="2,3,4,5,6,8,10,12")
    args = parser.parse_args()
    sizes = [int(v) for v in args.sizes.split(",")]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, NumPy {np.__version__}")
    with tempfile.TemporaryDirectory() as directory:
        peers, lines = {}, {}
        for n in sizes:
            module, lines[n] = load(n, Path(directory))
            peers[n] = paths(module, n)
        times = {(n, k): [] for n in sizes for k in ("scalar", "array")}
        for r in range(args.rounds):
            gc.disable()
            for n in sizes[r % len(sizes):] + sizes[:r % len(sizes)]:
                for kind in (("scalar", "array") if r % 2 == 0 else ("array", "scalar")):
                    times[n, kind].append(per_step(peers[n][kind]))
            gc.enable()
    print(f"\nbatch-1 sgd step, median of {args.rounds} rounds (µs):\n")
    print("| network | parameters | file lines | scalar | array | scalar / array |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for n in sizes:
        s, a = (statistics.median(times[n, k]) * 1e6 for k in ("scalar", "array"))
        print(f"| {n}-{n}-{n} | {2 * n * n + 2 * n} | {lines[n]} | {s:.1f} | {a:.1f} | {s / a:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
