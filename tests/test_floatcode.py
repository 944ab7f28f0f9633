"""The straight-line float step (the layer program unrolled unit by unit) against the array step
of the same trainer, on random small networks."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule.codegen.trainer.floatcode import UNROLLED, scalar_wanted
from chainrule.derive import derive
from chainrule.derive.spec import spec_from_data
from generator import random_spec
from test_emit import emitted


def _sgd(seed: int) -> dict:
    data = random_spec(seed)
    data["optimizer"] = {"kind": "sgd", "lr": 0.3, "weight_decay": [0.0, 0.01][seed % 2]}
    return data


SEEDS = range(60)


@pytest.mark.parametrize("seed", SEEDS)
def test_float_step_is_the_array_step(seed, tmp_path):
    """One step on a sample in floats equals the array code's step on a batch of that sample
    twice (the batch mean of two equal gradients is the gradient): the loss and every parameter
    to 1e-12 relative."""
    spec = spec_from_data(_sgd(seed), f"seed {seed}")
    if not scalar_wanted(derive(spec)):
        pytest.skip("a program the float printer does not unroll (a softmax Jacobian below the output)")
    module = emitted(spec, tmp_path)
    net = module.Network()
    x, t = np.array(spec.sample.x, dtype=float), np.array(spec.sample.t, dtype=float)
    before = net.theta.copy()
    E_float, theta_float = net._step_one(x.tolist(), t.tolist())
    assert np.array_equal(net.theta, before), "_step_one writes nothing"
    E_array = net.step(np.stack([x, x]), np.stack([t, t]))
    assert E_float == pytest.approx(E_array, rel=1e-12, abs=1e-15)
    np.testing.assert_allclose(theta_float, net.theta, rtol=1e-12, atol=1e-15)


def test_most_random_sgd_networks_take_the_float_step():
    """The printer unrolls what the sweep draws, except a softmax's Jacobian below the output."""
    programs = [derive(spec_from_data(_sgd(seed), f"seed {seed}")) for seed in SEEDS]
    unrolled = [d for d in programs if scalar_wanted(d)]
    assert len(unrolled) >= 40
    for d in programs:
        if d not in unrolled and d.network.parameter_count <= 128:
            assert any(not s.operations <= UNROLLED for s in d.program.statements)
