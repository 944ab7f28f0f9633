"""The layer program evaluated with NumPy on a batch: the derivation's own numbers.

:class:`ProgramNumbers` runs the statements of a :class:`~chainrule.derive.program.Program` in
order, a sample per row. Elementwise parts are compiled once by
:func:`chainrule.derive.numeric.compile_expr`; each operation of the program is one NumPy
function here (:data:`_OPERATIONS`), the same computation the emitted trainer prints
(softmax shifted by its largest net, the log-softmax helpers of :mod:`chainrule.derive.layers`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np
import sympy

from chainrule.derive import naming
from chainrule.derive.layers import log_one_minus_softmax, log_softmax, softmax_output_delta
from chainrule.derive.network import Values
from chainrule.derive.numeric import compile_expr
from chainrule.derive.penalty import PENALTY_RULES
from chainrule.derive.program import (
    FORWARD_IN_TIME, Affine, Backprop, BiasSum, Chain, EntrySum, LogOneMinusSoftmax, LogSoftmax, Op, Outer, Program, Role, SampleLoss,
    SharedBiasSum, Softmax, SoftmaxDelta, SoftmaxVJP, Stage, Statement, in_vectors,
    AvgPool, AvgPoolBackprop, ChannelBiasSum, Correlate, CorrelateBackprop, Flatten, KernelGradient, MaxPool, MaxPoolBackprop,
    AtFirstStep, Following, Masked, Previous, RecurrentAffine,
)
from chainrule.derive import spatial

Env = dict[str, Any]


def _affine(W: np.ndarray, x: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    net = x @ W.T
    return net if b is None else net + b


def _softmax(net: np.ndarray) -> np.ndarray:
    """exp(net_k) / sum_m exp(net_m), shifted by the row's largest net (same value, no overflow)."""
    shifted = np.exp(net - net.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _chain(*factors: np.ndarray) -> np.ndarray:
    return functools.reduce(np.multiply, factors)


def _vjp(y: np.ndarray, g: np.ndarray) -> np.ndarray:
    return y * (g - np.sum(g * y, axis=-1, keepdims=True))


def _lead(a: np.ndarray) -> tuple[int, ...]:
    """The axes of the samples (and of a sequence's steps): all but the units'."""
    return tuple(range(a.ndim - 1))


def _outer(delta: np.ndarray, x: np.ndarray) -> np.ndarray:
    """sum over the samples (and steps) of delta x^T, averaged over the batch."""
    return np.tensordot(delta, x, axes=(_lead(delta), _lead(x))) / x.shape[0]


def _rows(a: np.ndarray) -> np.ndarray:
    """A sequence's values [batch, steps, units] as rows [batch * steps, units] (the helpers of
    softmax near 0 and 1 take rows)."""
    return a.reshape(-1, a.shape[-1])


def _by_rows(function: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    def run(*arrays: np.ndarray) -> np.ndarray:
        return function(*(_rows(a) for a in arrays)).reshape(arrays[-1].shape)
    return run


def _recurrent_affine(W, x, U, h, b=None):
    net = x @ W.T + h @ U.T
    return net if b is None else net + b


#: Each operation as NumPy on a batch (rows are samples); the gradients average over the rows.
_OPERATIONS: Mapping[type[Op], Callable[..., Any]] = {
    Affine: _affine,
    Softmax: _softmax,
    LogSoftmax: _by_rows(log_softmax),
    LogOneMinusSoftmax: _by_rows(log_one_minus_softmax),
    Chain: _chain,
    Backprop: lambda W, delta: delta @ W,
    SoftmaxVJP: _vjp,
    SoftmaxDelta: _by_rows(softmax_output_delta),
    Outer: _outer,
    BiasSum: lambda delta: delta.sum(axis=_lead(delta)) / delta.shape[0],
    SharedBiasSum: lambda delta: np.array([delta.sum() / delta.shape[0]]),
    SampleLoss: lambda terms: float(np.sum(terms) / terms.shape[0]),
    RecurrentAffine: _recurrent_affine,
    Masked: lambda expr, t: np.where(np.isnan(t), 0.0, expr),
    AtFirstStep: lambda v: v[:, 0],
    Correlate: lambda x, K, g, b=None: spatial.correlate(x, K, b, g),
    KernelGradient: lambda delta, x, g, shape: spatial.correlate_kernel_gradient(delta, x, g).reshape(shape) / x.shape[0],
    ChannelBiasSum: lambda delta, channels: delta.reshape(delta.shape[0], channels[0], -1).sum(axis=(0, 2)) / delta.shape[0],
    CorrelateBackprop: lambda K, delta, g: spatial.correlate_backprop(K, delta, g),
    MaxPool: spatial.maxpool,
    MaxPoolBackprop: spatial.maxpool_backprop,
    AvgPool: spatial.avgpool,
    AvgPoolBackprop: spatial.avgpool_backprop,
    Flatten: lambda x: x,
}


Evaluator = Callable[[Env, tuple[int, ...]], Any]


@functools.lru_cache(maxsize=4096)
def compile_statement(expr: sympy.Expr) -> Evaluator:
    """A closure computing ``expr`` from ``env`` (vectors by name, a sample per row) and the
    shape of its layer's vectors, to which an elementwise expression is broadcast (a constant
    fills the batch). Compiled once per expression; operations by :data:`_OPERATIONS`."""
    if isinstance(expr, sympy.Symbol):
        name = expr.name
        return lambda env, shape: env[name]
    if isinstance(expr, EntrySum):  # a matrix expression (the penalty), summed: not per sample
        entries = compile_statement(expr.args[0])
        return lambda env, shape: float(np.sum(entries(env, None)))
    if isinstance(expr, Previous | Following):
        return _shifted(expr)
    if isinstance(expr, sympy.Tuple):  # an operation's geometry
        value = tuple(int(v) for v in expr)
        return lambda env, shape: value
    if isinstance(expr, Op):
        operation, args = _OPERATIONS[type(expr)], [compile_statement(a) for a in expr.args]
        return lambda env, shape: operation(*(arg(env, shape) for arg in args))
    # the outermost operations inside an elementwise expression, each computed and named
    inner: dict[sympy.Expr, sympy.Symbol] = {}
    for node in sympy.preorder_traversal(expr):
        if isinstance(node, Op) and not any(outer.has(node) for outer in inner):
            inner[node] = sympy.Symbol(f"_op{len(inner)}", real=True)
    elementwise = compile_expr(in_vectors(expr, inner))  # in_vectors: as derived, not re-sorted
    parts = [(symbol.name, compile_statement(node)) for node, symbol in inner.items()]

    def run(env: Env, shape: tuple[int, ...]) -> Any:
        local = {**env, **{name: part(env, shape) for name, part in parts}} if parts else env
        value = elementwise(local)
        return (np.asarray(value) if shape is None else np.broadcast_to(value, shape)) + 0.0

    return run


#: Where a loop over a sequence's steps puts the step t, and the whole sequences, in ``env``.
STEP, WHOLE = "_step", "_whole"


def _shifted(expr: Previous | Following) -> Evaluator:
    """A sequence at the step before (after): in a loop at step t, the whole sequence's value at
    t - 1 (t + 1), h_0 (zeros) past the first (last) step; outside a loop, every step shifted."""
    name = expr.args[0].name
    first = compile_statement(expr.args[1]) if isinstance(expr, Previous) else None

    def run(env: Env, shape: tuple[int, ...]) -> Any:
        whole = env[WHOLE][name] if STEP in env else env[name]
        edge = first(env, shape) if first is not None else 0.0
        if STEP in env:
            t = env[STEP] + (-1 if first is not None else 1)
            return whole[:, t] if 0 <= t < whole.shape[1] else np.broadcast_to(edge, shape)
        edge = np.broadcast_to(edge, whole[:, :1].shape)
        return np.concatenate([edge, whole[:, :-1]] if first is not None else [whole[:, 1:], edge], axis=1)

    return run


@dataclass(frozen=True, eq=False)
class Pass:
    """One forward and backward pass over a batch (rows are samples).

    ``nets[l]``, ``outs[l]`` and ``deltas[l]`` are [batch, units] for layer ``l + 1``; ``outs`` has
    the inputs in front. ``dW`` and ``db`` are reduced over the batch, like the loss; with an L2
    penalty, ``loss`` and ``dW`` include it (added once, after the reduction) and ``penalty`` is
    its value (0.0 without one). A layer without weights (``kind: activation``) has ``dW`` and
    ``db`` None, its ``nets`` are its input (the outputs of the layer before) and its ``deltas``
    dE/d(its input).
    """

    nets: tuple[np.ndarray, ...]
    outs: tuple[np.ndarray, ...]
    loss: float
    deltas: tuple[np.ndarray, ...]
    dW: tuple[np.ndarray | None, ...]
    db: tuple[np.ndarray | None, ...]
    penalty: float = 0.0


@dataclass(frozen=True, eq=False)
class ProgramNumbers:
    """The layer program ready to compute with: forward, loss and gradients for any parameters."""

    program: Program

    def run(self, W: tuple[np.ndarray, ...], b: tuple[np.ndarray | None, ...], X_: np.ndarray, T_: np.ndarray,
            after: Callable[[Statement, Env], None] | None = None, penalty: bool = True) -> Pass:
        """Forward, loss and backward for a batch (rows are samples); ``after(statement, env)``,
        if given, runs after each statement (and may change what later ones read). With
        ``penalty`` False, the loss and gradients are the data loss's alone (a sample's own)."""
        env, batch = self._execute(self._statements(self.program.statements, penalty), W, b, X_, T_, after)
        return self._pass(env, batch)

    def loss(self, W: tuple[np.ndarray, ...], b: tuple[np.ndarray | None, ...], X_: np.ndarray, T_: np.ndarray,
             penalty: bool = True) -> float:
        """The loss alone (the forward and loss statements), for finite differences; with
        ``penalty`` False, without the L2 penalty (a sample's own loss)."""
        statements = self._statements(self.program.stage(Stage.FORWARD) + self.program.stage(Stage.LOSS), penalty)
        env, batch = self._execute(statements, W, b, X_, T_)
        return env[naming.LOSS] * self._reduced(batch) + env.get(naming.PENALTY, 0.0)

    @staticmethod
    def _statements(statements: tuple[Statement, ...], penalty: bool) -> tuple[Statement, ...]:
        return statements if penalty else tuple(s for s in statements if s.rule not in PENALTY_RULES)

    def _execute(self, statements, W, b, X_, T_, after=None) -> tuple[Env, int]:
        env = self._data(W, b, X_, T_)
        batch = env[self.program.inputs].shape[0]
        steps = (self.program.steps,) if self.program.steps else ()
        with np.errstate(all="ignore"):  # non-finite values are diagnosed by the caller
            for block in _blocks(statements):
                if block[0].loop:
                    self._loop(block, env, batch, after)
                    continue
                statement = block[0]
                # an elementwise part has the shape of its layer's vectors (the penalty's, its weights')
                shape = None if statement.rule in PENALTY_RULES else (batch, *steps, self.program.sizes[statement.layer])
                env[statement.target.name] = compile_statement(statement.expr)(env, shape)
                if after is not None:
                    after(statement, env)
        return env, batch

    def _loop(self, block: list[Statement], env: Env, batch: int, after) -> None:
        """Statements of one loop over the steps, run step by step (t = 1..T, or back), each
        reading and writing its vectors at step t."""
        steps = self.program.steps
        for s in block:
            env[s.target.name] = np.zeros((batch, steps, self.program.sizes[s.layer]))
        order = range(steps) if block[0].loop == FORWARD_IN_TIME else range(steps - 1, -1, -1)
        for t in order:
            local = {name: value[:, t] if isinstance(value, np.ndarray) and value.ndim == 3 else value for name, value in env.items()}
            local[STEP], local[WHOLE] = t, env
            for s in block:
                value = compile_statement(s.expr)(local, (batch, self.program.sizes[s.layer]))
                env[s.target.name][:, t] = value
                local[s.target.name] = env[s.target.name][:, t]
        if after is not None:
            for s in block:
                after(s, env)

    def _data(self, W, b, X_, T_) -> Env:
        program = self.program
        env: Env = {program.inputs: np.atleast_2d(np.asarray(X_, dtype=float)),
                    program.targets: np.atleast_2d(np.asarray(T_, dtype=float))}
        if program.steps:  # a sequence's values held flat, step by step: [batch, steps, units]
            for name in (program.inputs, program.targets):
                env[name] = env[name].reshape(env[name].shape[0], program.steps, -1)
        for name, info in program.vectors.items():
            if info.role is Role.PARAMETER:
                env[name] = (W if len(info.shape) >= 2 else b)[info.layer - 1]
                if info.columns is not None:  # an rnn's W or U, held side by side
                    env[name] = env[name][:, info.columns[0]:info.columns[1]]
        env.update({name: np.array(values) for name, values in program.constants})
        if program.l2:
            env[naming.L2] = program.l2
        return env

    def _pass(self, env: Env, batch: int) -> Pass:
        def per_layer(rule: str) -> dict[int, Any]:
            return {s.layer: env[s.target.name] for s in self.program.statements if s.rule == rule}

        nets, outs = per_layer("weighted sums"), {**per_layer("activation"), **per_layer("pooling"), **per_layer("flatten")}
        deltas = {s.layer: env[s.target.name] for s in self.program.stage(Stage.BACKWARD) if s.rule in ("output delta", "delta")}
        dW, db = per_layer("weight gradient"), per_layer("bias gradient")
        for l, dU in per_layer("recurrent weight gradient").items():  # an rnn's W and U, side by side
            dW[l] = np.concatenate([dW[l], dU], axis=1)
        if self.program.steps:  # a sequence's values flat per sample, step by step
            nets, outs, deltas = ({l: v.reshape(v.shape[0], -1) for l, v in table.items()} for table in (nets, outs, deltas))
        layers = range(1, len(self.program.sizes))
        loss = env[naming.LOSS]
        scale = self._reduced(batch)
        inputs = env[self.program.inputs]
        outputs = (inputs.reshape(inputs.shape[0], -1), *(outs[l] for l in layers))
        # the penalty is added once, after the reduction
        penalty = env.get(naming.PENALTY, 0.0)
        dP: dict[int, Any] = {}
        for s in self.program.statements:  # an rnn's W's and U's side by side
            if s.rule == "penalty gradient" and s.target.name in env:
                dP[s.layer] = env[s.target.name] if s.layer not in dP else np.concatenate([dP[s.layer], env[s.target.name]], axis=1)
        return Pass(tuple(nets.get(l, outputs[l - 1]) for l in layers), outputs, loss * scale + penalty,
                    tuple(deltas[l] for l in layers), tuple(None if dW.get(l) is None else dW[l] * scale + dP.get(l, 0.0) for l in layers),
                    tuple(None if db.get(l) is None else db[l] * scale for l in layers), penalty)

    def _reduced(self, batch: int) -> int:
        """The operations average over the batch; a sum is ``batch`` times the mean."""
        return batch if self.program.reduction == "sum" else 1


def _blocks(statements: tuple[Statement, ...]) -> list[list[Statement]]:
    """The statements in runs: each alone, or consecutive ones of the same loop over the steps."""
    blocks: list[list[Statement]] = []
    for s in statements:
        if s.loop and blocks and blocks[-1][0].loop == s.loop:
            blocks[-1].append(s)
        else:
            blocks.append([s])
    return blocks


def gradients_of(numbers: ProgramNumbers, values: Values, X_: Any = None, T_: Any = None) -> Pass:
    """One pass at ``values`` on the sample (or on ``X_``, ``T_`` when given)."""
    X_ = values.X if X_ is None else X_
    T_ = values.T if T_ is None else T_
    return numbers.run(values.W, values.b, X_, T_)
