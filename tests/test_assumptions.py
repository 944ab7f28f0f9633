"""No silent assumption: a simplification holds only where the spec guarantees its condition, and
the derivation's numbers are computed in the same stable forms as the trainer's. Each case is
compared with PyTorch float64 autograd."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from chainrule.codegen.trainer.context import render_trainer
from chainrule.derive import derive
from chainrule.derive.check import check_derivation
from chainrule.derive.spec import spec_from_data
from helpers import needs_torch


def softmax_formula_spec(t: list[float], loss: str = "-t*log(y)") -> dict:
    return {
        "name": "softmax_formula_targets",
        "inputs": ["x1"],
        "layers": [{"name": "o", "units": 2, "activation": "softmax", "weights": [[0.0], [0.0]], "biases": [0.0, 0.0]}],
        "loss": {"formula": loss},
        "sample": {"x": [1.0], "t": t},
    }


def emitted_network(d, tmp_path: Path):
    path = tmp_path / f"{d.network.spec.name}.py"
    path.write_text(render_trainer(d, str(tmp_path / "spec.yaml"), str(tmp_path)), encoding="utf-8")
    spec = importlib.util.spec_from_file_location(f"emitted_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Network()


def test_softmax_with_a_formula_loss_does_not_assume_targets_sum_to_one() -> None:
    # -t*log(y) over t = [1, 1] at equal logits: E = 2 log 2, dE/dnet = 2y - t = [0, 0]. The
    # a - t simplification (which needs sum(t) = 1) used to give -0.5.
    d = derive(spec_from_data(softmax_formula_spec([1.0, 1.0]), "f.yaml"))
    assert d.loss == pytest.approx(2 * np.log(2), rel=1e-15)
    for name, chain in d.chains.items():
        assert d.gradient(chain.param) == pytest.approx(0.0, abs=1e-15), name
        assert d.chain_gradient(chain) == pytest.approx(0.0, abs=1e-15), name
    assert check_derivation(d).passed


@needs_torch
@pytest.mark.parametrize("t", [[1.0, 1.0], [1.0, 0.0], [0.0, 0.0], [0.3, 2.5], [-1.0, 0.5]])
@pytest.mark.parametrize("loss", ["-t*log(y)", "-2*t*log(y) + t", "(t - y)**2"])
def test_softmax_with_a_formula_loss_matches_torch(t: list[float], loss: str, tmp_path: Path) -> None:
    from torch_bridge import torch_gradients

    data = softmax_formula_spec(t, loss)
    data["layers"][0]["weights"] = [[0.3], [-0.7]]
    data["layers"][0]["biases"] = [0.1, -0.2]
    d = derive(spec_from_data(data, "f.yaml"))
    value, dW, db = torch_gradients(d.network, d.values)
    assert d.loss == pytest.approx(value, rel=1e-12)
    for name, expected in zip(("w1", "w2", "b1", "b2"), (dW[0][0, 0], dW[0][1, 0], db[0][0], db[0][1])):
        assert d.gradient(d.chains[name].param) == pytest.approx(expected, rel=1e-10, abs=1e-14), name
        assert d.chain_gradient(d.chains[name]) == pytest.approx(expected, rel=1e-10, abs=1e-14), name
    assert check_derivation(d).passed
    net = emitted_network(d, tmp_path)
    X = np.array([[1.0], [0.4]])
    T = np.array([t, [2.0, -1.0]])
    value, dW, db = torch_gradients(d.network, d.values, X, T)
    grads = net.gradients(X, T)  # no "targets must sum to 1" refusal: the loss allows any
    np.testing.assert_allclose(grads["W1"], dW[0], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(grads["b1"], db[0], rtol=1e-10, atol=1e-14)


SATURATED = {
    # a sigmoid output at net = 500 under bce, softmax logits of 5,000 under cross-entropy: the
    # derivation refused both ("the loss on the sample is inf") where PyTorch and the trainer are finite
    "sigmoid_bce_500": ({"name": "o", "units": 1, "activation": "sigmoid", "weights": [[500.0]], "biases": [0.0]}, "bce", [0.0], 500.0),
    "sigmoid_bce_-500": ({"name": "o", "units": 1, "activation": "sigmoid", "weights": [[-500.0]], "biases": [0.0]}, "bce", [1.0], 500.0),
    "softmax_ce_5000": ({"name": "o", "units": 3, "activation": "softmax", "weights": [[5000.0], [0.0], [-10.0]], "biases": [0.0, 0.0, 0.0]},
                        "cross_entropy", [0.0, 1.0, 0.0], 5000.0),
}


@pytest.mark.parametrize("case", SATURATED, ids=list(SATURATED))
def test_saturated_outputs_give_the_stable_loss_and_gradients(case: str, tmp_path: Path) -> None:
    layer, loss, t, expected = SATURATED[case]
    d = derive(spec_from_data({"name": "s", "inputs": ["x1"], "layers": [layer], "loss": loss, "sample": {"x": [1.0], "t": t}}, "s.yaml"))
    assert d.loss == pytest.approx(expected, rel=1e-12)
    net = emitted_network(d, tmp_path)
    assert net.loss(np.array([[1.0]]), np.array([t])) == pytest.approx(expected, rel=1e-12)
    grads = net.gradients(np.array([[1.0]]), np.array([t]))
    np.testing.assert_allclose(d.sample.dW[0], grads["W1"], rtol=1e-12, atol=1e-300)
    assert check_derivation(d).passed


@needs_torch
@pytest.mark.parametrize("case", SATURATED, ids=list(SATURATED))
def test_saturated_outputs_match_torch(case: str) -> None:
    import torch

    layer, loss, t, _ = SATURATED[case]
    d = derive(spec_from_data({"name": "s", "inputs": ["x1"], "layers": [layer], "loss": loss, "sample": {"x": [1.0], "t": t}}, "s.yaml"))
    W = torch.tensor(layer["weights"], dtype=torch.float64, requires_grad=True)
    net = torch.tensor([[1.0]], dtype=torch.float64) @ W.T
    target = torch.tensor([t], dtype=torch.float64)
    if loss == "bce":  # PyTorch's stable form of sigmoid + bce
        value = torch.nn.functional.binary_cross_entropy_with_logits(net, target)
    else:
        value = torch.nn.functional.cross_entropy(net, target)
    value.backward()
    assert d.loss == pytest.approx(float(value.detach()), rel=1e-12)
    np.testing.assert_allclose(d.sample.dW[0], W.grad.numpy(), rtol=1e-12, atol=1e-300)


def mp_softmax_bce(logits: list[float], t: list[float]) -> tuple[float, list[float]]:
    """The loss and dE/dnet of bce after softmax, with digits to spare (mpmath, with sympy)."""
    import mpmath

    def loss(z):
        top = max(z)
        total = mpmath.fsum(mpmath.exp(v - top) for v in z)
        y = [mpmath.exp(v - top) / total for v in z]
        return -mpmath.fsum(tk * mpmath.log(yk) + (1 - tk) * mpmath.log(1 - yk) for tk, yk in zip(t, y)) / len(z)

    with mpmath.workdps(60 + int(max(logits) - min(logits))):  # exp(-700) needs 300 digits past the 1
        z = [mpmath.mpf(v) for v in logits]
        grads = [mpmath.diff(lambda u, k=k: loss(z[:k] + [u] + z[k + 1:]), z[k]) for k in range(len(z))]
        return float(loss(z)), [float(g) for g in grads]


@pytest.mark.parametrize("gap", [2.0, 16.75, 36.75, 100.0, 700.0])
@pytest.mark.parametrize("t", [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.3, 0.0, 0.7]], ids=["right", "wrong", "soft"])
def test_softmax_bce_is_stable_at_any_logit_gap(gap: float, t: list[float], tmp_path: Path) -> None:
    # bce after softmax turned NaN at a logit gap of 36.75 (float64) and 16.75 (float32) for a
    # right, confident prediction: log(1 - out) and dE/dout = ... /(1 - out) as written.
    logits = [gap, 0.0, -1.0]
    layer = {"name": "o", "units": 3, "activation": "softmax", "weights": [[v] for v in logits], "biases": [0.0, 0.0, 0.0]}
    d = derive(spec_from_data({"name": "sb", "inputs": ["x1"], "layers": [layer], "loss": "bce", "sample": {"x": [1.0], "t": t}}, "sb.yaml"))
    loss, grads = mp_softmax_bce(logits, t)
    assert d.loss == pytest.approx(loss, rel=1e-9, abs=1e-300)
    np.testing.assert_allclose(d.sample.deltas[-1][0], grads, rtol=1e-7, atol=1e-300)
    for dtype, rtol in ((np.float64, 1e-9), (np.float32, 1e-4)):
        net = emitted_network(d, tmp_path)
        net = type(net)(dtype=dtype)
        X, T = np.array([[1.0]]), np.array([t])
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            assert net.loss(X, T) == pytest.approx(loss, rel=rtol, abs=1e-30)
            np.testing.assert_allclose(net.gradients(X, T)["b1"], grads, rtol=rtol, atol=1e-30)


@pytest.mark.parametrize("activation, expected", [
    # dE/dw of h1 (net -30) and h2 (net -45) into an identity output, x = -1, t = 1: PyTorch float64
    ("softplus", (9.357622968838424e-14, 2.862518580549126e-20)),
    ("elu", (2.8072868906519647e-13, 8.587555741647913e-20)),
])
def test_derivatives_keep_their_digits_for_large_negative_nets(activation: str, expected: tuple[float, float], tmp_path: Path) -> None:
    # written in the output, elu' = out + alpha and softplus' = 1 - exp(-out) cancelled: 1.7e-4
    # off at net -30, 0 at net -45
    layers = [{"name": "h", "units": 2, "activation": activation, "weights": [[30.0], [45.0]], "biases": [0.0, 0.0]},
              {"name": "o", "units": 1, "activation": "identity", "weights": [[1.0, 1.0]], "biases": [0.0]}]
    d = derive(spec_from_data({"name": "n", "inputs": 1, "layers": layers, "loss": "half_sse", "sample": {"x": [-1.0], "t": [1.0]}}, "n.yaml"))
    np.testing.assert_allclose(d.sample.dW[0][:, 0], expected, rtol=1e-12)
    grads = emitted_network(d, tmp_path).gradients(np.array([[-1.0]]), np.array([[1.0]]))
    np.testing.assert_allclose(grads["W1"][:, 0], expected, rtol=1e-12)
