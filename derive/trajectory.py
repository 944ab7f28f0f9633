"""Several optimizer steps on the sample, by the derivation's own numbers: what verify judges a
claim with ``step: N`` against (the trainer's steps, ``derive --steps``, agree to rounding: tested).

Each step is the layer program evaluated (:class:`~chainrule.derive.evaluate.ProgramNumbers`) and
every parameter's optimizer rule (:func:`~chainrule.derive.optimizers.compile_rule`, its group's
settings) applied, frozen parameters kept. One typical mistake is followed as well
(:data:`EARLY_UPDATE`): each layer's weights updated as soon as their gradient is known, so that
the deltas below are sent back through the updated weights, as the worked example's author did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from chainrule.derive.derivation import Derivation
from chainrule.derive import naming
from chainrule.derive.evaluate import Env, Pass, compile_statement
from chainrule.derive.optimizers import OPTIMIZERS, compile_rule
from chainrule.derive.program import Statement

#: The mistake of sending the deltas back through weights already updated in the same step.
EARLY_UPDATE = "early_update"


@dataclass(frozen=True)
class State:
    """The parameters after ``step`` steps ([units, units before] and [biases] per layer) and the
    pass at them (forward, loss and gradients on the sample)."""

    step: int
    W: tuple[np.ndarray, ...]
    b: tuple[np.ndarray | None, ...]
    run: Pass


def follow(d: Derivation, wanted: Iterable[int], mistake: str | None = None) -> dict[int, State]:
    """The state after each step in ``wanted`` (0 is the start), stepping to the largest;
    ``mistake`` (:data:`EARLY_UPDATE`) follows that mistake instead of the right update."""
    wanted = set(wanted)
    network, values = d.network, d.values
    kind = network.spec.optimizer.kind
    rules = [(compile_rule(kind, s.W), None if s.b is None else compile_rule(kind, s.b)) for s in network.settings]
    W, b = list(values.W), list(values.b)
    names = OPTIMIZERS[kind].state
    state_W = [None if w is None else {s: np.zeros_like(w) for s in names} for w in W]
    state_b = [None if v is None else {s: np.zeros_like(v) for s in names} for v in b]
    last = max(wanted, default=0)
    found: dict[int, State] = {}
    for k in range(last + 1):
        hook = _early(d, W, rules, state_W, k + 1) if mistake == EARLY_UPDATE else None
        run = d.numbers.run(tuple(W), tuple(b), values.X, values.T, hook)
        if k in wanted:  # the state's own pass: the right one at its parameters
            found[k] = State(k, tuple(W), tuple(b), run if hook is None else d.numbers.run(tuple(W), tuple(b), values.X, values.T))
        if k == last:
            break
        for l, layer in enumerate(network.spec.layers):
            if layer.has_parameters and "weights" not in layer.freeze:
                W[l], state_W[l] = rules[l][0].step(W[l], run.dW[l], state_W[l], k + 1)
            if b[l] is not None and run.db[l] is not None and "biases" not in layer.freeze:
                b[l], state_b[l] = rules[l][1].step(b[l], run.db[l], state_b[l], k + 1)
    return found


def _early(d: Derivation, W: list, rules: list, state_W: list, k: int):
    """The hook that, right after a layer's weight gradient, puts the layer's updated weights
    where the deltas below read them (``Backprop(W, delta)``), as a hand calculation that updates
    a layer before going on down does."""
    gradient_of = {form.weight: l for l, form in enumerate(d.layers)}

    def penalty(l: int, env: Env) -> np.ndarray | float:
        """The L2 penalty's l2*W of layer ``l`` at the weights before the step (0 without one)."""
        statement = d.program.penalty_gradient(d.layers[l].weight)
        return 0.0 if statement is None else compile_statement(statement.expr)({**env, d.layers[l].weight: W[l]}, None)

    def after(statement: Statement, env: Env) -> None:
        if statement.rule == "penalty gradient":  # the layer's own penalty: its weights before the step
            env[statement.target.name] = penalty(gradient_of[statement.target.name[len(naming.PENALTY_GRADIENT.format(param="")):]], env)
        if statement.rule != "weight gradient":
            return
        l = gradient_of[statement.target.name[len("dE_d"):]]
        if "weights" in d.network.spec.layers[l].freeze or d.layers[l].recurrent is not None:
            return  # an rnn's W is held beside U, and its deltas are all known before its gradients: nothing below reads it early
        grad = env[statement.target.name] * (d.values.samples if d.network.spec.reduction == "sum" else 1) + penalty(l, env)
        env[d.layers[l].weight] = rules[l][0].step(W[l], grad, state_W[l], k)[0]

    return after
