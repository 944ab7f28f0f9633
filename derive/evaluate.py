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
    Affine, Backprop, BiasSum, Chain, EntrySum, LogOneMinusSoftmax, LogSoftmax, Op, Outer, Program, Role, SampleLoss,
    SharedBiasSum, Softmax, SoftmaxDelta, SoftmaxVJP, Stage, Statement, in_vectors,
    AvgPool, AvgPoolBackprop, ChannelBiasSum, Correlate, CorrelateBackprop, Flatten, KernelGradient, MaxPool, MaxPoolBackprop,
)
from chainrule.derive import spatial

Env = dict[str, Any]


def _affine(W: np.ndarray, x: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    net = x @ W.T
    return net if b is None else net + b


def _softmax(net: np.ndarray) -> np.ndarray:
    """exp(net_k) / sum_m exp(net_m), shifted by the row's largest net (same value, no overflow)."""
    shifted = np.exp(net - net.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _chain(*factors: np.ndarray) -> np.ndarray:
    return functools.reduce(np.multiply, factors)


def _vjp(y: np.ndarray, g: np.ndarray) -> np.ndarray:
    return y * (g - np.sum(g * y, axis=1, keepdims=True))


#: Each operation as NumPy on a batch (rows are samples); the gradients average over the rows.
_OPERATIONS: Mapping[type[Op], Callable[..., Any]] = {
    Affine: _affine,
    Softmax: _softmax,
    LogSoftmax: log_softmax,
    LogOneMinusSoftmax: log_one_minus_softmax,
    Chain: _chain,
    Backprop: lambda W, delta: delta @ W,
    SoftmaxVJP: _vjp,
    SoftmaxDelta: softmax_output_delta,
    Outer: lambda delta, x: delta.T @ x / x.shape[0],
    BiasSum: lambda delta: delta.sum(axis=0) / delta.shape[0],
    SharedBiasSum: lambda delta: np.array([(delta.sum(axis=0) / delta.shape[0]).sum()]),
    SampleLoss: lambda terms: float(np.mean(terms.sum(axis=1))),
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
        with np.errstate(all="ignore"):  # non-finite values are diagnosed by the caller
            for statement in statements:
                # an elementwise part has the shape of its layer's vectors (the penalty's, its weights')
                shape = None if statement.rule in PENALTY_RULES else (batch, self.program.sizes[statement.layer])
                env[statement.target.name] = compile_statement(statement.expr)(env, shape)
                if after is not None:
                    after(statement, env)
        return env, batch

    def _data(self, W, b, X_, T_) -> Env:
        program = self.program
        env: Env = {program.inputs: np.atleast_2d(np.asarray(X_, dtype=float)),
                    program.targets: np.atleast_2d(np.asarray(T_, dtype=float))}
        for name, info in program.vectors.items():
            if info.role is Role.PARAMETER:
                env[name] = (W if len(info.shape) >= 2 else b)[info.layer - 1]
        if program.l2:
            env[naming.L2] = program.l2
        return env

    def _pass(self, env: Env, batch: int) -> Pass:
        def per_layer(rule: str) -> dict[int, Any]:
            return {s.layer: env[s.target.name] for s in self.program.statements if s.rule == rule}

        nets, outs = per_layer("weighted sums"), {**per_layer("activation"), **per_layer("pooling"), **per_layer("flatten")}
        deltas = {s.layer: env[s.target.name] for s in self.program.stage(Stage.BACKWARD) if s.rule in ("output delta", "delta")}
        dW, db = per_layer("weight gradient"), per_layer("bias gradient")
        layers = range(1, len(self.program.sizes))
        loss = env[naming.LOSS]
        scale = self._reduced(batch)
        outputs = (env[self.program.inputs], *(outs[l] for l in layers))
        # the penalty is added once, after the reduction
        penalty = env.get(naming.PENALTY, 0.0)
        dP = {s.layer: env[s.target.name] for s in self.program.statements if s.rule == "penalty gradient" and s.target.name in env}
        return Pass(tuple(nets.get(l, outputs[l - 1]) for l in layers), outputs, loss * scale + penalty,
                    tuple(deltas[l] for l in layers), tuple(None if dW.get(l) is None else dW[l] * scale + dP.get(l, 0.0) for l in layers),
                    tuple(None if db.get(l) is None else db[l] * scale for l in layers), penalty)

    def _reduced(self, batch: int) -> int:
        """The operations average over the batch; a sum is ``batch`` times the mean."""
        return batch if self.program.reduction == "sum" else 1


def gradients_of(numbers: ProgramNumbers, values: Values, X_: Any = None, T_: Any = None) -> Pass:
    """One pass at ``values`` on the sample (or on ``X_``, ``T_`` when given)."""
    X_ = values.X if X_ is None else X_
    T_ = values.T if T_ is None else T_
    return numbers.run(values.W, values.b, X_, T_)
