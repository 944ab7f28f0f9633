"""Speed of one training step of the emitted trainer against hand-written NumPy, PyTorch and JAX.

    python benchmarks/bench_step.py [--cases 2-2-2,64-32-10,784-128-10,784-512-512-10]
        [--dtype float64|float32] [--rounds 15] [--peers numpy,emitted,floor,torch,jax] [--quick] [--selfcheck]

A step is forward, loss, backward and a plain SGD update on one fixed batch (X uniform in [0, 1), T
one-hot; the worked example's sample for 2-2-2), from the parameters of benchmarks/specs/*.yaml.
Peers: numpy, the reference of the ratios, a careful hand-written step; emitted,
``Network().step(X, T)`` of the module that ``chainrule emit`` writes (skipped while that command is
missing); floor, the step's matrix products alone; torch, eager autograd with NumPy's BLAS thread
count; jax, one ``jax.jit`` of value_and_grad and the update. torch and jax only if installed.

Method: numpy, torch, jax and emitted first take one float64 step from the same start, and their
losses and new parameters must agree within 1e-10 (``--selfcheck`` stops there). Each peer is warmed
up and sized to blocks of about 30 ms. In each round every peer, in an order rotated per round,
rests 0.2 s (so that the spinning idle threads of the peer before, OpenBLAS's above all, leave its
cores free), takes one untimed step, then a timed block with the garbage collector off. A round in
which other processes kept over 0.1 cores busy (/proc/stat) is run again a second later. The table
gives the median time per step over the rounds and its interquartile spread. For emitted,
tracemalloc's traced bytes (all, and those allocated in the emitted file) after warm-up and after
1,000 more steps give the memory growth.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np
from chainrule.codegen.files import load_spec
from chainrule.derive.network import build_network, initial_values

SPECS = Path(__file__).resolve().parent / "specs"
EXE = str(Path(sys.executable).parent / "chainrule")
CASES = {"2-2-2": ("bench_2_2_2.yaml", 1), "64-32-10": ("bench_64_32_10.yaml", 32),  # spec, batch
         "784-128-10": ("bench_784_128_10.yaml", 128), "784-512-512-10": ("bench_784_512_512_10.yaml", 256)}
PEERS = ("numpy", "emitted", "floor", "torch", "jax")
TOLERANCE = 1e-10
REST = 0.2  # seconds before each block
BUSY = 0.1  # cores used by other processes above which a round is run again
DATA_SEED = 2024


@dataclass(frozen=True)
class Case:
    """A network and its batch: per layer W [units, units before] and b (one value if shared)."""

    name: str
    spec: Path
    module: str
    activations: tuple[str, ...]
    loss: str
    lr: float
    W: tuple[np.ndarray, ...]
    b: tuple[np.ndarray, ...]
    X: np.ndarray
    T: np.ndarray


class Peer(NamedTuple):
    step: Callable[[], Any]  # one training step; returns the loss before it
    params: Callable[[], list[np.ndarray]]  # W1, b1, W2, b2, ...
    sync: Callable[[], None]  # waits for queued work (JAX dispatches asynchronously)


def load_case(name: str, dtype: type[np.floating[Any]]) -> Case:
    """The case's spec, initial parameters and batch, in ``dtype``."""
    file, batch = CASES[name]
    spec = load_spec(str(SPECS / file))
    values = initial_values(build_network(spec))
    activations = tuple(layer.activation.name for layer in spec.layers)
    if (not set(activations) <= {"sigmoid", "relu", "softmax"} or spec.loss.name not in ("half_sse", "cross_entropy")
            or any(b is None for b in values.b) or spec.optimizer.kind != "sgd"):
        raise SystemExit(f"{file}: the peers know sigmoid, relu, softmax, half_sse, cross_entropy, biases and sgd")
    if spec.sample is not None:
        X, T = np.tile(values.x, (batch, 1)), np.tile(values.t, (batch, 1))
    else:
        rng = np.random.default_rng(DATA_SEED)
        X = rng.uniform(0.0, 1.0, (batch, spec.sizes[0]))
        T = np.eye(spec.sizes[-1])[rng.integers(spec.sizes[-1], size=batch)]
    return Case(name, SPECS / file, spec.name, activations, spec.loss.name, spec.optimizer.value("lr"),
                tuple(w.astype(dtype) for w in values.W), tuple(b.astype(dtype) for b in values.b if b is not None),
                X.astype(dtype), T.astype(dtype))


def sigmoid_(z: np.ndarray) -> np.ndarray:
    """Logistic in place, as tanh(z / 2) / 2 + 1/2, which cannot overflow."""
    z *= 0.5
    np.tanh(z, out=z)
    z *= 0.5
    z += 0.5
    return z


ACTIVATE = {"sigmoid": sigmoid_, "relu": lambda z: np.maximum(z, 0.0, out=z)}
SLOPE = {"sigmoid": lambda a, into: np.multiply(a, np.subtract(1.0, a, out=into), out=into),  # f'(net) from
         "relu": lambda a, into: np.greater(a, 0.0, out=into)}  # a = f(net), into a buffer


def numpy_peer(case: Case) -> Peer:
    """The reference step. Its buffers are reused: fresh weight-sized temporaries cost page faults
    on every step (glibc returns them to the kernel), about 1.2 ms of 2 on 784-128-10 here."""
    W, b = [w.copy() for w in case.W], [v.copy() for v in case.b]
    X, T, lr, scale, last = case.X, case.T, case.lr, 1.0 / len(case.X), len(case.W) - 1
    outs = [np.empty((len(X), w.shape[0]), X.dtype) for w in W]  # net, then out = f(net) in place
    slopes, backs = [np.empty_like(o) for o in outs], [np.empty((len(X), w.shape[1]), X.dtype) for w in W]
    grads, ins = [np.empty_like(w) for w in W], [X] + outs[:-1]

    def step() -> float:
        for l in range(last + 1):
            z = np.matmul(ins[l], W[l].T, out=outs[l])
            z += b[l]
            if l < last:
                ACTIVATE[case.activations[l]](z)
        if case.loss == "cross_entropy":  # softmax: loss from log-sum-exp, delta = y - t
            z -= z.max(axis=1, keepdims=True)
            loss = -float(np.vdot(T, z))
            y = np.exp(z, out=z)
            total = y.sum(axis=1, keepdims=True)
            y /= total
            loss += float(np.log(total).sum())
            delta = np.subtract(y, T, out=y)
        else:  # sigmoid, half squared error: delta = (y - t) y (1 - y)
            y = sigmoid_(z)
            delta = SLOPE["sigmoid"](y, slopes[last])
            y -= T
            loss = 0.5 * float(np.vdot(y, y))
            delta *= y
        delta *= scale  # the loss is the batch mean
        for l in range(last, -1, -1):
            dW = np.matmul(delta.T, ins[l], out=grads[l])
            db = delta.sum(axis=0) if b[l].size > 1 else delta.sum()  # a shared bias sums its units
            if l:
                delta = np.matmul(delta, W[l], out=backs[l])
                delta *= SLOPE[case.activations[l - 1]](ins[l], slopes[l - 1])
            dW *= lr
            W[l] -= dW
            b[l] -= lr * db
        return loss * scale

    return Peer(step, lambda: [p for pair in zip(W, b) for p in pair], lambda: None)


def floor_peer(case: Case) -> Peer:
    """The matrix products of a step alone, into preallocated arrays."""
    n, dtype, rng = len(case.X), case.X.dtype, np.random.default_rng(0)
    nets = [np.empty((n, w.shape[0]), dtype) for w in case.W]
    deltas = [np.asarray(rng.uniform(-1.0, 1.0, net.shape), dtype) for net in nets]
    backs, grads = [np.empty((n, w.shape[1]), dtype) for w in case.W], [np.empty_like(w) for w in case.W]
    ins = [case.X] + nets[:-1]

    def step() -> None:
        for l, w in enumerate(case.W):
            np.matmul(ins[l], w.T, out=nets[l])
        for l in range(len(case.W) - 1, -1, -1):
            np.matmul(deltas[l].T, ins[l], out=grads[l])
            if l:
                np.matmul(deltas[l], case.W[l], out=backs[l])

    return Peer(step, list, lambda: None)


def torch_peer(case: Case, threads: int) -> Peer | None:
    """PyTorch eager: ``loss.backward()``, then ``p -= lr * p.grad`` under no_grad."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    params = [torch.tensor(p, requires_grad=True) for pair in zip(case.W, case.b) for p in pair]
    X, T, n = torch.from_numpy(case.X), torch.from_numpy(case.T), len(case.X)
    activate = {"sigmoid": torch.sigmoid, "relu": torch.relu}

    def step() -> float:
        a = X
        for l, name in enumerate(case.activations[:-1]):
            a = activate[name](a @ params[2 * l].T + params[2 * l + 1])
        z = a @ params[-2].T + params[-1]
        if case.loss == "cross_entropy":
            loss = -(T * torch.log_softmax(z, dim=1)).sum() / n
        else:
            loss = ((torch.sigmoid(z) - T) ** 2).sum() / (2 * n)
        loss.backward()
        with torch.no_grad():
            for p in params:
                p.add_(p.grad, alpha=-case.lr)  # type: ignore[arg-type]  # backward() set it
                p.grad = None  # as optimizer.zero_grad() does
        return loss.item()

    return Peer(step, lambda: [p.detach().numpy() for p in params], lambda: None)


def jax_peer(case: Case) -> Peer | None:
    """One ``jax.jit`` of the whole step: value_and_grad of the loss, then the SGD update."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    activate, n = {"sigmoid": jax.nn.sigmoid, "relu": jax.nn.relu}, len(case.X)

    def loss_of(params: Any, X: Any, T: Any) -> Any:
        a = X
        for (w, b), name in zip(params[:-1], case.activations):
            a = activate[name](a @ w.T + b)
        z = a @ params[-1][0].T + params[-1][1]
        if case.loss == "cross_entropy":
            return -jnp.sum(T * jax.nn.log_softmax(z, axis=1)) / n
        return jnp.sum((jax.nn.sigmoid(z) - T) ** 2) / (2 * n)

    @partial(jax.jit, donate_argnums=0)  # reuses the old parameters' buffers: 13% faster on 784-128-10
    def update(params: Any, X: Any, T: Any) -> Any:
        loss, grads = jax.value_and_grad(loss_of)(params, X, T)
        return jax.tree.map(lambda p, g: p - case.lr * g, params, grads), loss

    state = [tuple((jnp.asarray(w), jnp.asarray(b)) for w, b in zip(case.W, case.b))]
    X, T = jnp.asarray(case.X), jnp.asarray(case.T)

    def step() -> Any:
        state[0], loss = update(state[0], X, T)
        return loss

    return Peer(step, lambda: [np.asarray(p) for pair in state[0] for p in pair],
                lambda: jax.block_until_ready(state[0]))


def emit_module(case: Case, out: Path) -> ModuleType | None:
    """Import the trainer that ``chainrule emit`` writes, or None while that command is missing."""
    run = subprocess.run([EXE, "emit", str(case.spec), "-o", str(out)], capture_output=True, text=True, check=False)
    if run.returncode == 2 and "invalid choice" in run.stderr:
        return None
    if run.returncode != 0:
        raise SystemExit(f"chainrule emit {case.spec} failed ({run.returncode}): {run.stderr.strip()}")
    location = importlib.util.spec_from_file_location(case.module, out / f"{case.module}.py")
    assert location is not None and location.loader is not None
    module = importlib.util.module_from_spec(location)
    location.loader.exec_module(module)
    return module


def emitted_peer(case: Case, module: ModuleType) -> Peer:
    """``Network().step(X, T)``; the selfcheck also shows that it starts where the others do."""
    dtype = case.X.dtype.type
    net = module.Network() if dtype is np.float64 else module.Network(dtype=dtype)
    return Peer(lambda: net.step(case.X, case.T),
                lambda: [net.params[f"{kind}{l}"] for l in range(1, len(case.W) + 1) for kind in "Wb"], lambda: None)


def build_peers(case: Case, names: list[str], module: ModuleType | None, threads: int) -> dict[str, Peer]:
    """Those of the peers ``names`` that are available here."""
    makers: dict[str, Callable[[], Peer | None]] = {
        "numpy": lambda: numpy_peer(case), "floor": lambda: floor_peer(case),
        "torch": lambda: torch_peer(case, threads), "jax": lambda: jax_peer(case),
        "emitted": lambda: emitted_peer(case, module) if module is not None else None}
    return {name: peer for name in names if (peer := makers[name]()) is not None}


def selfcheck(case: Case, peers: dict[str, Peer]) -> bool:
    """One step of each peer from the same start: loss and new parameters against numpy's."""
    after = {}
    for name, peer in peers.items():
        if name != "floor":
            loss = peer.step()
            peer.sync()
            after[name] = [np.atleast_1d(float(loss))] + [np.ravel(p) for p in peer.params()]
    reference, ok = after.pop("numpy"), True
    if not after:
        print(f"selfcheck {case.name}: no torch, jax or emitted to check numpy against")
    for name, values in after.items():
        diff = max(float(np.max(np.abs(v - r))) for v, r in zip(values, reference, strict=True))
        ok &= diff < TOLERANCE
        print(f"selfcheck {case.name}: {name} against numpy, largest difference of the loss and the new"
              f" parameters {diff:.1e} ({'ok' if diff < TOLERANCE else 'FAILED'})")
    return ok


def timed(peer: Peer, steps: int) -> float:
    """Seconds per step over a block of ``steps`` steps, after one untimed step."""
    peer.step()
    peer.sync()
    start = time.perf_counter()
    for _ in range(steps):
        peer.step()
    peer.sync()
    return (time.perf_counter() - start) / steps


def calibrate(peer: Peer, block: float) -> int:
    """Steps in a block of about ``block`` seconds; the doubling blocks warm up JIT and caches."""
    steps = 1
    while (seconds := timed(peer, steps) * steps) < block:
        steps *= 2
    return max(1, round(steps * block / seconds))


def clocks() -> tuple[float, float, float]:
    """Wall seconds; CPU seconds of the whole machine (/proc/stat) and of this process."""
    jiffies = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    own = os.times()
    machine = (sum(jiffies) - jiffies[3] - jiffies[4]) / os.sysconf("SC_CLK_TCK")  # all but idle, iowait
    return time.perf_counter(), machine, own.user + own.system


def measure(peers: dict[str, Peer], rounds: int, block: float) -> tuple[dict[str, list[float]], int, float]:
    """Seconds per step of each peer per round; rounds run again; others' mean load in the rest."""
    sizes = {name: calibrate(peer, block) for name, peer in peers.items()}
    times: dict[str, list[float]] = {name: [] for name in peers}
    names, redone, loads = list(peers), 0, list[float]()
    while len(loads) < rounds:
        turn, start, kept = len(loads) % len(names), clocks(), {}
        gc.collect()
        gc.disable()
        try:
            for name in names[turn:] + names[:turn]:
                time.sleep(REST)
                kept[name] = timed(peers[name], sizes[name])
        finally:
            gc.enable()
        end = clocks()
        load = ((end[1] - start[1]) - (end[2] - start[2])) / (end[0] - start[0])
        if load > BUSY and redone < 5 * rounds:
            redone += 1
            time.sleep(1.0)
            continue
        loads.append(max(load, 0.0))  # below 0: jiffies rounding
        for name, seconds in kept.items():
            times[name].append(seconds)
    return times, redone, statistics.mean(loads)


def memory_growth(peer: Peer, steps: int, file: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """tracemalloc's bytes (all, and allocated in ``file``) after 50 steps, then ``steps`` more."""
    def traced() -> tuple[int, int]:
        gc.collect()
        stats = tracemalloc.take_snapshot().statistics("filename")
        own = [s.size for s in stats if s.traceback[0].filename == file]
        return sum(s.size for s in stats if s.traceback[0].filename != tracemalloc.__file__), sum(own)

    tracemalloc.start()
    try:
        for _ in range(50):
            peer.step()
        before = traced()
        for _ in range(steps):
            peer.step()
        return before, traced()
    finally:
        tracemalloc.stop()


def environment(names: list[str]) -> tuple[list[str], int]:
    """Markdown lines on the machine and libraries, and NumPy's BLAS thread count."""
    threads, source = len(os.sched_getaffinity(0)), "no threadpoolctl nor thread variable: one per core"
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):  # OpenBLAS's own variable wins
        if os.environ.get(variable, "").isdigit():
            threads, source = int(os.environ[variable]), f"{variable}={os.environ[variable]}"
    try:
        from threadpoolctl import threadpool_info
        pool = next(pool for pool in threadpool_info() if pool["user_api"] == "blas")
        threads, source = pool["num_threads"], f"threadpoolctl, {pool['internal_api']} {pool['version']}"
    except (ImportError, StopIteration):
        pass
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    lines = [f"- CPU: {cpu}, {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable)",
             f"- Python {platform.python_version()}, numpy {np.__version__}, BLAS {blas['name']} {blas['version']}",
             f"- BLAS threads {threads} ({source}), OPENBLAS_CORETYPE {os.environ.get('OPENBLAS_CORETYPE', 'unset')}"]
    for name in ("torch", "jax"):
        if name in names:
            try:
                lines.append(f"- {name} {importlib.import_module(name).__version__}")
            except ImportError:
                lines.append(f"- {name} not installed")
    return lines, threads


def table(results: dict[str, dict[str, list[float]]]) -> list[str]:
    """Markdown rows: median µs per step, its ratio to the other peers, interquartile spread."""
    rows = ["| case | peer | µs per step | × numpy | × floor | × torch | × jax | IQR % |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for case, times in results.items():
        medians = {name: statistics.median(t) for name, t in times.items()}
        for name, t in times.items():
            ratios = [f"{medians[name] / medians[other]:.2f}" if other in medians else "—"
                      for other in ("numpy", "floor", "torch", "jax")]
            q1, _, q3 = statistics.quantiles(t, n=4) if len(t) > 1 else (t[0],) * 3
            rows.append(f"| {case} | {name} | {medians[name] * 1e6:,.1f} | {' | '.join(ratios)}"
                        f" | {100 * (q3 - q1) / medians[name]:.0f} |")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated, of " + ", ".join(CASES))
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--peers", default=",".join(PEERS), help="comma-separated, of " + ", ".join(PEERS))
    parser.add_argument("--quick", action="store_true", help="3 rounds of 10 ms blocks, 100 memory steps")
    parser.add_argument("--selfcheck", action="store_true", help="only check each peer's first step")
    args = parser.parse_args()
    cases, names = args.cases.split(","), ["numpy"] + [p for p in args.peers.split(",") if p != "numpy"]
    if unknown := [c for c in cases if c not in CASES] + [p for p in names if p not in PEERS]:
        parser.error(f"unknown case or peer: {', '.join(unknown)}")
    rounds, block, memory_steps = (3, 0.01, 100) if args.quick else (args.rounds, 0.03, 1000)
    dtype = np.float32 if args.dtype == "float32" else np.float64
    lines, threads = environment(names)
    print("\n".join(lines), "\n", sep="")
    results: dict[str, dict[str, list[float]]] = {}
    ok = True
    with tempfile.TemporaryDirectory() as out:
        for name in cases:
            reference = load_case(name, np.float64)
            module = emit_module(reference, Path(out)) if "emitted" in names else None
            if module is None and "emitted" in names:
                print("emitted: not available (chainrule has no emit command yet)")
                names.remove("emitted")
            ok &= selfcheck(reference, build_peers(reference, names, module, threads))
            if args.selfcheck or not ok:
                continue
            peers = build_peers(load_case(name, dtype), names, module, threads)
            results[name], redone, load = measure(peers, rounds, block)
            print(f"load {name}: {redone} rounds run again as other processes were busy; in the rounds"
                  f" kept they used {load:.2f} cores{' (too busy: numbers unreliable)' if load > BUSY else ''}")
            if module is not None:
                file = str(module.__file__)
                (total, own), (total_after, own_after) = memory_growth(peers["emitted"], memory_steps, file)
                print(f"memory {name} (emitted, tracemalloc): {total:,} B after warm-up, {total_after:,} B after"
                      f" {memory_steps:,} more steps, growth {total_after - total:,} B"
                      f" ({own_after - own:,} B allocated in the emitted module)")
    if results:
        print(f"\n{args.dtype}, median of {rounds} rounds:\n")
        print("\n".join(table(results)))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
