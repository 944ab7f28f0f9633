"""Helpers shared by the tests: the example specs, loaded and derived once per session."""

from __future__ import annotations

import functools
import importlib
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from chainrule.codegen.files import load_spec
from chainrule.derive import derive
from chainrule.derive.derivation import Derivation
from chainrule.derive.spec import Spec

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
EXAMPLE_FILES = sorted(p for p in EXAMPLES.iterdir() if p.suffix in (".yaml", ".yml", ".toml", ".json"))
#: The examples with convolution, pooling or flatten layers: compared with PyTorch's own modules in
#: tests/test_conv.py (the dense bridge does not build them).
SPATIAL_EXAMPLES = ("conv_small", "conv_worked", "digits_conv")
#: The examples with an rnn layer: no report yet (issue 16 phase 2), sequences as samples, and
#: compared with PyTorch's nn.RNN in tests/test_rnn.py.
SEQUENCE_EXAMPLES = ("bptt_worked", "sequence_sum")


def optional(name: str) -> ModuleType | None:
    """The module ``name``, or None where it is not installed (tests that need it skip alone)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


torch = optional("torch")
needs_torch = pytest.mark.skipif(torch is None, reason="needs PyTorch (pip install '.[test]')")


@functools.lru_cache(maxsize=None)
def example_spec(name: str) -> Spec:
    path = next(p for p in EXAMPLE_FILES if p.stem == name)
    return load_spec(str(path.relative_to(ROOT)) if path.is_relative_to(Path.cwd()) else str(path))


@functools.lru_cache(maxsize=None)
def example(name: str) -> Derivation:
    """The derivation of ``examples/NAME.*`` (cached: derivations are immutable)."""
    return derive(example_spec(name))


def finite_difference(net, X, T, h=1e-6) -> np.ndarray:
    """Central differences of an emitted Network's loss, entry by entry of its flat theta."""
    theta, grad = net.theta, np.zeros_like(net.theta)
    for i in range(theta.size):
        keep = theta[i]
        theta[i] = keep + h
        up = net.loss(X, T)
        theta[i] = keep - h
        down = net.loss(X, T)
        theta[i] = keep
        grad[i] = (up - down) / (2 * h)
    return grad
