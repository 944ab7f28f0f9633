"""Optimizers by name, each an update rule written once as sympy assignments.

A rule reads the parameter ``theta``, its gradient ``g``, the hyper-parameters, its state (zero
before the first step) and the step count ``k`` (1 on the first step), and assigns, in order, the
new state and the new ``theta``. The derivation evaluates a rule for its one-step updates, the
emitted trainer prints it as NumPy and the report as LaTeX, so all three agree by construction. The
rules follow PyTorch's ``torch.optim`` (weight decay added to the gradient, as L2; AdamW's
decoupled), and the test suite checks them against it step by step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np
import sympy

from chainrule.derive.numeric import compile_expr

THETA, GRAD, STEP = sympy.symbols("theta g k", real=True)
LR, DECAY, MU, ALPHA, BETA1, BETA2, EPS = sympy.symbols("lr weight_decay momentum alpha beta1 beta2 eps", real=True)
VELOCITY, SQUARES, MEAN, VARIANCE = sympy.symbols("velocity square_avg m v", real=True)
DECAYED = sympy.Symbol("gd", real=True)


@dataclass(frozen=True)
class Hyper:
    """A hyper-parameter: its default and the interval it must lie in."""

    default: float
    low: float
    high: float
    low_open: bool = False
    high_open: bool = False

    def problem(self, value: float) -> str | None:
        """Why ``value`` is out of range, or None."""
        below = value <= self.low if self.low_open else value < self.low
        above = value >= self.high if self.high_open else value > self.high
        if below or above or not math.isfinite(value):
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"expected a number in {left}{self.low:g}, {self.high:g}{right}, got {value!r}"
        return None


@dataclass(frozen=True)
class OptimizerDef:
    """An optimizer: hyper-parameters, state and the update rule as ordered assignments."""

    name: str
    hyper: Mapping[str, Hyper]
    state: tuple[str, ...]
    rule: tuple[tuple[sympy.Symbol, sympy.Expr], ...]


_LR = Hyper(0.01, 0.0, 1e3, low_open=True)
_ADAM_LR = Hyper(0.001, 0.0, 1e3, low_open=True)
_DECAY = Hyper(0.0, 0.0, 1e3)
_FRACTION = Hyper(0.9, 0.0, 1.0, high_open=True)
_EPS = Hyper(1e-8, 0.0, 1.0, low_open=True)
_ADAM = {"beta1": _FRACTION, "beta2": Hyper(0.999, 0.0, 1.0, high_open=True), "eps": _EPS}

_decay = (DECAYED, GRAD + DECAY * THETA)
_adam_moments = (
    (MEAN, BETA1 * MEAN + (1 - BETA1) * DECAYED),
    (VARIANCE, BETA2 * VARIANCE + (1 - BETA2) * DECAYED**2),
)
_adam_step = LR * (MEAN / (1 - BETA1**STEP)) / (sympy.sqrt(VARIANCE / (1 - BETA2**STEP)) + EPS)

_optimizers = (
    OptimizerDef("sgd", {"lr": _LR, "weight_decay": _DECAY}, (), (_decay, (THETA, THETA - LR * DECAYED))),
    OptimizerDef(
        "momentum",
        {"lr": _LR, "momentum": _FRACTION, "weight_decay": _DECAY},
        ("velocity",),
        (_decay, (VELOCITY, MU * VELOCITY + DECAYED), (THETA, THETA - LR * VELOCITY)),
    ),
    OptimizerDef(
        "nesterov",
        {"lr": _LR, "momentum": _FRACTION, "weight_decay": _DECAY},
        ("velocity",),
        (_decay, (VELOCITY, MU * VELOCITY + DECAYED), (THETA, THETA - LR * (DECAYED + MU * VELOCITY))),
    ),
    OptimizerDef(
        "rmsprop",
        {"lr": _LR, "alpha": Hyper(0.99, 0.0, 1.0, high_open=True), "eps": _EPS, "weight_decay": _DECAY},
        ("square_avg",),
        (
            _decay,
            (SQUARES, ALPHA * SQUARES + (1 - ALPHA) * DECAYED**2),
            (THETA, THETA - LR * DECAYED / (sympy.sqrt(SQUARES) + EPS)),
        ),
    ),
    OptimizerDef(
        "adam",
        {"lr": _ADAM_LR, **_ADAM, "weight_decay": _DECAY},
        ("m", "v"),
        (_decay, *_adam_moments, (THETA, THETA - _adam_step)),
    ),
    OptimizerDef(
        "adamw",
        {"lr": _ADAM_LR, **_ADAM, "weight_decay": Hyper(0.01, 0.0, 1e3)},
        ("m", "v"),
        ((DECAYED, GRAD), *_adam_moments, (THETA, THETA * (1 - LR * DECAY) - _adam_step)),
    ),
)
OPTIMIZERS: Mapping[str, OptimizerDef] = MappingProxyType({o.name: o for o in _optimizers})


@dataclass(frozen=True)
class CompiledRule:
    """An optimizer rule ready to run on arrays: :meth:`step` returns the new parameter and state."""

    definition: OptimizerDef
    hyper: Mapping[str, float]
    assignments: tuple[tuple[str, Any], ...]

    def step(self, theta: np.ndarray, grad: np.ndarray, state: Mapping[str, np.ndarray], k: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        env: dict[str, Any] = {**self.hyper, **state, "theta": theta, "g": grad, "k": float(k)}
        for target, compiled in self.assignments:
            env[target] = compiled(env)
        return np.asarray(env["theta"], dtype=float), {s: env[s] for s in self.definition.state}

    def first_step(self, theta: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """The parameter after one step from the zero state."""
        zeros = {s: np.zeros_like(theta) for s in self.definition.state}
        return self.step(theta, grad, zeros, 1)[0]


def compile_rule(kind: str, hyper: Mapping[str, float]) -> CompiledRule:
    """The rule of optimizer ``kind`` with the given hyper-parameters, ready to run."""
    definition = OPTIMIZERS[kind]
    assignments = tuple((target.name, compile_expr(expr)) for target, expr in definition.rule)
    return CompiledRule(definition, MappingProxyType(dict(hyper)), assignments)


def first_step_expr(kind: str, hyper: Mapping[str, float]) -> sympy.Expr:
    """The new ``theta`` after one step from the zero state, as one expression in ``theta``,
    ``g`` and the hyper-parameters that are not zero (adam's is ``theta - lr*g/(|g| + eps)``).

    Derived by substituting the rule's assignments in order, with the state at zero and ``k = 1``.
    """
    definition = OPTIMIZERS[kind]
    env: dict[sympy.Symbol, sympy.Expr] = {sympy.Symbol(s, real=True): sympy.Integer(0) for s in definition.state}
    env[STEP] = sympy.Integer(1)
    env.update({sympy.Symbol(h, real=True): sympy.Integer(0) for h, v in hyper.items() if v == 0})
    for target, expr in definition.rule:
        env[target] = expr.xreplace(env)
    return env[THETA].xreplace({THETA: THETA})
