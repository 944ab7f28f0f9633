"""The optimizer rules, written once as sympy assignments, against torch.optim step by step."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

from chainrule.derive.optimizers import GRAD, OPTIMIZERS, THETA, compile_rule, first_step_expr
from helpers import needs_torch, torch

TORCH = {
    "sgd": lambda p, h: torch.optim.SGD(p, lr=h["lr"], weight_decay=h["weight_decay"]),
    "momentum": lambda p, h: torch.optim.SGD(p, lr=h["lr"], momentum=h["momentum"], weight_decay=h["weight_decay"]),
    "nesterov": lambda p, h: torch.optim.SGD(p, lr=h["lr"], momentum=h["momentum"], nesterov=True, weight_decay=h["weight_decay"]),
    "rmsprop": lambda p, h: torch.optim.RMSprop(p, lr=h["lr"], alpha=h["alpha"], eps=h["eps"], weight_decay=h["weight_decay"]),
    "adam": lambda p, h: torch.optim.Adam(p, lr=h["lr"], betas=(h["beta1"], h["beta2"]), eps=h["eps"], weight_decay=h["weight_decay"]),
    "adamw": lambda p, h: torch.optim.AdamW(p, lr=h["lr"], betas=(h["beta1"], h["beta2"]), eps=h["eps"], weight_decay=h["weight_decay"]),
}


def hyper(kind: str, decay: float) -> dict[str, float]:
    values = {name: spec.default for name, spec in OPTIMIZERS[kind].hyper.items()}
    values["lr"] = 0.05
    values["weight_decay"] = decay
    return values


def test_every_optimizer_is_compared() -> None:
    assert set(TORCH) == set(OPTIMIZERS)


@needs_torch
@pytest.mark.parametrize("decay", [0.0, 0.1])
@pytest.mark.parametrize("kind", sorted(OPTIMIZERS))
def test_ten_steps_match_torch(kind: str, decay: float) -> None:
    """The same gradients fed to both for 10 steps give the same parameters every step."""
    h = hyper(kind, decay)
    rng = np.random.default_rng(3)
    theta = rng.standard_normal((3, 4))
    param = torch.tensor(theta.copy(), dtype=torch.float64, requires_grad=True)
    reference = TORCH[kind]([param], h)
    rule = compile_rule(kind, h)
    state = {s: np.zeros_like(theta) for s in rule.definition.state}
    for k in range(1, 11):
        grad = rng.standard_normal(theta.shape) * (1 + k % 3)
        param.grad = torch.tensor(grad)
        reference.step()
        theta, state = rule.step(theta, grad, state, k)
        np.testing.assert_allclose(theta, param.detach().numpy(), rtol=1e-12, atol=1e-14, err_msg=f"step {k}")


@pytest.mark.parametrize("kind", sorted(OPTIMIZERS))
def test_first_step_expression_is_the_rule(kind: str) -> None:
    h = hyper(kind, 0.0)
    expr = first_step_expr(kind, h)
    assert expr.free_symbols <= {THETA, GRAD} | {sympy.Symbol(n, real=True) for n in h}
    rule = compile_rule(kind, h)
    theta, grad = np.array([0.4, -1.2]), np.array([0.08, 0.3])
    values = {sympy.Symbol(n, real=True): v for n, v in h.items()}
    for th, g, new in zip(theta, grad, rule.first_step(theta, grad)):
        assert np.isclose(float(expr.xreplace({**values, THETA: th, GRAD: g})), new, rtol=1e-12)


def test_adam_first_step_is_sign_like() -> None:
    expr = first_step_expr("adam", hyper("adam", 0.0))
    assert expr == THETA - sympy.Symbol("lr", real=True) * GRAD / (sympy.Abs(GRAD) + sympy.Symbol("eps", real=True))
