"""Against an independent autograd: PyTorch, on a seeded generator of random valid architectures
(every activation, loss and bias mode), at the sample and on a batch."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule.derive import derive
from chainrule.derive.spec import spec_from_data
from generator import random_spec, spec_id
from helpers import EXAMPLE_FILES, SEQUENCE_EXAMPLES, SPATIAL_EXAMPLES, example, needs_torch

FAST = range(40)
SLOW = range(40, 400)


def assert_agree(d, X_=None, T_=None) -> None:
    from torch_bridge import torch_gradients

    loss, dW, db = torch_gradients(d.network, d.values, X_, T_)
    run = d.numbers.run(d.values.W, d.values.b, d.values.x if X_ is None else X_, d.values.t if T_ is None else T_)
    assert np.isclose(run.loss, loss, rtol=1e-12, atol=1e-14)
    for ours, theirs in zip(run.dW, dW):
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)
    for ours, theirs in zip(run.db, db):
        assert (ours is None) == (theirs is None)
        if ours is not None:
            np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)


def check_seed(seed: int) -> None:
    d = derive(spec_from_data(random_spec(seed), spec_id(seed)))
    assert_agree(d)
    rng = np.random.default_rng(seed)
    batch = rng.uniform(-1, 1, (4, d.network.sizes[0]))
    targets = np.tile(d.values.t, (4, 1))
    assert_agree(d, batch, targets)
    for name, chain in d.chains.items():
        assert np.isclose(d.chain_gradient(chain), d.gradient(chain.param), rtol=1e-9, atol=1e-12), name


@needs_torch
@pytest.mark.parametrize("seed", FAST, ids=spec_id)
def test_random_architectures(seed: int) -> None:
    check_seed(seed)


@needs_torch
@pytest.mark.slow
@pytest.mark.parametrize("seed", SLOW, ids=spec_id)
def test_random_architectures_slow(seed: int) -> None:
    check_seed(seed)


@needs_torch
# one sample each; the batch example is compared with PyTorch in tests/test_batch_claims.py
@pytest.mark.parametrize("path", [p for p in EXAMPLE_FILES if p.stem not in SPATIAL_EXAMPLES + SEQUENCE_EXAMPLES + ("batch_softmax",)], ids=lambda p: p.stem)
def test_examples(path) -> None:
    assert_agree(example(path.stem))


def test_generator_covers_the_registry() -> None:
    seen_acts, seen_losses, seen_bias = set(), set(), set()
    for seed in list(FAST) + list(SLOW):
        data = random_spec(seed)
        for layer in data["layers"]:
            act = layer["activation"]
            seen_acts.add("formula" if isinstance(act, dict) and "formula" in act else act["name"] if isinstance(act, dict) else act)
            seen_bias.add(layer["bias"])
        seen_losses.add(data["loss"] if isinstance(data["loss"], str) else "formula")
    from chainrule.derive.registry import ACTIVATIONS, LOSSES

    assert seen_acts >= set(ACTIVATIONS) | {"formula"}
    assert seen_losses >= set(LOSSES) | {"formula"}
    assert seen_bias == {"per_unit", "shared", "none"}
