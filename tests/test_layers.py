"""The layer form: elementwise pieces derived on generic symbols, including the simplifications
a person relies on (softmax with cross-entropy gives out - t), and stable numbers."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import sympy

from chainrule.derive import derive
from chainrule.derive.layers import derive_layers
from chainrule.derive.network import build_network
from chainrule.derive.registry import T, Y
from chainrule.derive.spec import spec_from_data
from helpers import example


def network(activation, loss, units=3, inputs=2):
    return build_network(spec_from_data({"name": "n", "inputs": inputs, "layers": [{"name": "o", "units": units, "activation": activation}], "loss": loss}, "n"))


def output_of(activation, loss, units=3):
    return derive_layers(network(activation, loss, units))[-1].output


def test_softmax_cross_entropy_is_derived_to_out_minus_t() -> None:
    output = output_of("softmax", "cross_entropy")
    assert output.dE_dy == -T / Y
    assert output.closed == Y - T
    assert output.constraint == "the targets sum to 1"


def test_sigmoid_bce_cancels_to_mean_difference() -> None:
    output = output_of("sigmoid", "bce", units=4)
    assert sympy.simplify(output.closed - (Y - T) / 4) == 0


def test_softmax_with_squared_error_does_not_close() -> None:
    output = output_of("softmax", "half_sse")
    assert output.closed is None and output.dE_dy == Y - T


def test_sigmoid_half_sse_is_the_chain_product() -> None:
    output = output_of("sigmoid", "half_sse")
    assert output.closed == (Y - T) * Y * (1 - Y)


def test_formula_activation_keeps_its_derivative_in_the_net() -> None:
    form = derive_layers(network({"formula": "x / (1 + abs(x))"}, "mse"))[-1]
    x = sympy.Symbol("x", real=True)
    assert form.f_prime_out is None
    assert sympy.simplify(form.f_prime - sympy.diff(x / (1 + sympy.Abs(x)), x)) == 0


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "softplus", "elu", "gelu", "swish", "softmax", "relu"])
def test_no_overflow_at_large_pre_activations(activation: str) -> None:
    loss = "cross_entropy" if activation == "softmax" else "half_sse"
    d = derive(spec_from_data({"name": "n", "inputs": 1, "layers": [{"name": "h", "units": 3, "activation": activation, "weights": [[1000.0], [-1000.0], [1.0]]}, {"name": "o", "units": 2, "activation": "softmax" if loss == "cross_entropy" else "identity"}], "loss": loss, "sample": {"x": [1.0], "t": [1.0, 0.0]}}, "n"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run = d.numbers.run(d.values.W, d.values.b, d.values.x, d.values.t)
    assert np.isfinite(run.loss)
    assert all(np.all(np.isfinite(g)) for g in run.dW)


def test_batch_gradients_are_the_mean_of_per_sample_gradients() -> None:
    d = example("softmax_classifier")
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (5, 4))
    T_ = np.eye(3)[rng.integers(0, 3, 5)]
    batch = d.numbers.run(d.values.W, d.values.b, X, T_)
    singles = [d.numbers.run(d.values.W, d.values.b, X[i], T_[i]) for i in range(5)]
    assert np.isclose(batch.loss, np.mean([s.loss for s in singles]))
    for l in range(2):
        np.testing.assert_allclose(batch.dW[l], np.mean([s.dW[l] for s in singles], axis=0), rtol=1e-12)


def test_shared_bias_gradient_sums_the_deltas(mazur) -> None:
    assert np.isclose(mazur.sample.db[1][0], mazur.sample.deltas[1].sum())
