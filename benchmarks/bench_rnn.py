"""Speed of one training step of an emitted rnn trainer against PyTorch eager (issue 16).

    python benchmarks/bench_rnn.py [--threads 1] [--rounds 15] [--batch 32] [--dtype float64|float32]

The network: sequences of 20 steps of 16 inputs, an rnn of 64 tanh units (one bias), a dense
layer of 8 identity outputs at every step, half_sse summed over the steps (a target at each),
the mean over the batch, plain sgd. A step is forward, loss, backpropagation through time and
the update on one fixed batch (X uniform in [-1, 1), T uniform in [0, 1)). Peers: emitted,
``Network().step(X, T)`` of the module ``chainrule emit`` writes; torch, ``nn.RNN`` (its
``bias_hh`` fixed at 0, out of the optimizer: one bias) and ``nn.Linear`` with
``torch.optim.SGD`` (zero_grad, forward, backward, step).

Both run with the same thread count: the BLAS threads are set through the environment before
NumPy loads, and ``torch.set_num_threads``. Before timing, both take one float64 step from the same
start and their losses and new parameters must agree within 1e-10. Each round times a block of
about 30 ms per peer (order rotated, garbage collector off); the table gives the median time per
step over the rounds and the ratio emitted / torch.
"""

from __future__ import annotations

import argparse
import os
import sys


def _threads() -> int:
    """--threads, read before NumPy is imported (its BLAS reads the environment once)."""
    for i, arg in enumerate(sys.argv):
        if arg == "--threads" and i + 1 < len(sys.argv):
            return int(sys.argv[i + 1])
        if arg.startswith("--threads="):
            return int(arg.split("=", 1)[1])
    return 1


THREADS = _threads()
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = str(THREADS)

import gc  # noqa: E402
import importlib.util  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from chainrule.derive import derive  # noqa: E402
from chainrule.derive.spec import spec_from_data  # noqa: E402
from chainrule.codegen.trainer.context import render_trainer  # noqa: E402

SPEC = {
    "name": "bench_rnn",
    "inputs": 16,
    "steps": 20,
    "layers": [
        {"name": "h", "kind": "rnn", "units": 64, "activation": "tanh"},
        {"name": "y", "units": 8, "activation": "identity"},
    ],
    "loss": "half_sse",
    "optimizer": {"kind": "sgd", "lr": 0.001},
    "seed": 3,
}


def emitted_module(folder: Path):
    d = derive(spec_from_data(SPEC, "bench_rnn"))
    path = folder / "bench_rnn.py"
    path.write_text(render_trainer(d, str(folder / "bench_rnn.yaml"), str(folder)), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("bench_rnn_emitted", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def torch_peer(params: dict, dtype: torch.dtype):
    rnn = torch.nn.RNN(16, 64, batch_first=True).to(dtype)
    linear = torch.nn.Linear(64, 8).to(dtype)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.tensor(params["W1"]))
        rnn.weight_hh_l0.copy_(torch.tensor(params["U1"]))
        rnn.bias_ih_l0.copy_(torch.tensor(params["b1"]))
        rnn.bias_hh_l0.zero_()
        linear.weight.copy_(torch.tensor(params["W2"]))
        linear.bias.copy_(torch.tensor(params["b2"]))
    rnn.bias_hh_l0.requires_grad_(False)  # one bias, as chainrule's rnn
    trained = [rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, linear.weight, linear.bias]
    optimizer = torch.optim.SGD(trained, lr=SPEC["optimizer"]["lr"])

    def step(X, T):
        optimizer.zero_grad(set_to_none=True)
        Y = linear(rnn(X)[0])
        loss = 0.5 * ((Y - T) ** 2).sum() / X.shape[0]
        loss.backward()
        optimizer.step()
        return loss

    return dict(zip(("W1", "U1", "b1", "W2", "b2"), trained)), step


def selfcheck(module, X: np.ndarray, T: np.ndarray) -> None:
    """One float64 step of each from the same start: the same loss and parameters."""
    net = module.Network()
    start = {k: np.array(v) for k, v in net.params.items()}
    pairs, step = torch_peer(start, torch.float64)
    loss = net.step(X, T)
    theirs = step(torch.tensor(X), torch.tensor(T)).item()
    assert abs(loss - theirs) < 1e-10 * max(1.0, abs(loss)), (loss, theirs)
    for name, tensor in pairs.items():
        assert np.allclose(net.params[name], tensor.detach().numpy(), rtol=0, atol=1e-10), name


def per_step(step, block: int) -> float:
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(block):
            step()
        return (time.perf_counter() - start) / block
    finally:
        gc.enable()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    X = rng.uniform(-1.0, 1.0, (args.batch, 20, 16))
    T = rng.random((args.batch, 20, 8))
    with tempfile.TemporaryDirectory() as folder:
        module = emitted_module(Path(folder))
        selfcheck(module, X, T)
        net = module.Network(dtype=args.dtype)
        Xd, Td = X.astype(args.dtype), T.astype(args.dtype)
        tdtype = torch.float64 if args.dtype == "float64" else torch.float32
        _, step = torch_peer({k: np.array(v) for k, v in net.params.items()}, tdtype)
        Xt, Tt = torch.tensor(Xd), torch.tensor(Td)
        peers = {"emitted": lambda: net.step(Xd, Td), "torch": lambda: step(Xt, Tt)}
        blocks = {}
        for name, run in peers.items():
            for _ in range(20):
                run()
            once = per_step(run, 20)
            blocks[name] = max(5, int(0.03 / once))
        times: dict[str, list[float]] = {name: [] for name in peers}
        for r in range(args.rounds):
            order = list(peers)[r % 2:] + list(peers)[:r % 2]
            for name in order:
                time.sleep(0.05)
                peers[name]()
                times[name].append(per_step(peers[name], blocks[name]))
    medians = {name: statistics.median(t) for name, t in times.items()}
    print(f"rnn step, 20 steps of 16 inputs, 64 tanh units, 8 outputs, batch {args.batch}, {args.dtype}, {args.threads} thread(s), {args.rounds} rounds; "
          f"numpy {np.__version__}, torch {torch.__version__}")
    print("| peer | median per step | smallest | largest |")
    print("| --- | --- | --- | --- |")
    for name, t in times.items():
        print(f"| {name} | {medians[name] * 1e6:.1f} us | {min(t) * 1e6:.1f} us | {max(t) * 1e6:.1f} us |")
    print(f"\nratio emitted / torch (medians): {medians['emitted'] / medians['torch']:.2f}")


if __name__ == "__main__":
    main()
