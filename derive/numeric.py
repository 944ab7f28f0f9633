"""Numbers from sympy expressions, with NumPy, by a table-driven walk (no code strings, no exec).

:func:`compile_expr` turns an expression into a closure over NumPy that takes a mapping from
symbol names to arrays (or floats). Each function is computed as its row of the table says
(:mod:`chainrule.derive.functions`: ``numpy``, the overflow-safe way where there is one, the same
row the emitted trainer prints its code from); sums, products, powers and branches by one method
each. The deviations from the plain translation are deliberate and each has its reason:

- a product of powers of ``exp(±a)`` and ``1 + exp(±a)`` (``1/(1 + exp(-x))``, sympy's
  ``exp(-x)/(1 + exp(-x))**2`` for σ', mish's ``exp(x)/(exp(x) + 1)``) is evaluated through
  s = σ(a) and 1 - s = σ(-a), each computed stably: exp(a)^p (1 + exp(a))^q (1 + exp(-a))^r
  = s^(p-r) (1-s)^(-p-q), exactly; and ``log(1 + exp(u))`` as softplus(u): no overflow at
  |u| = 1000. Which products and logarithms these are is decided by the stable rewrites
  (:func:`chainrule.derive.stable.logistic_groups`, :func:`~chainrule.derive.stable.softplus_argument`),
  the rules the emitted trainer's code is printed through; here each group is evaluated where it
  stands in the product, so the numbers are those of the rewritten expression;
- a product holding ``log(u)`` is 0 where its other factors are 0 (``0·log 0 = 0``, the
  convention of cross-entropy with one-hot targets).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping

import numpy as np
import sympy

from chainrule.derive.functions import FUNCTIONS, row_of, softplus
from chainrule.derive.stable import logistic_groups, softplus_argument

Env = Mapping[str, Any]
Compiled = Callable[[Env], Any]


class UnsupportedExpression(ValueError):
    """An expression holds a node the evaluator has no NumPy equivalent for (a bug, not bad input)."""


@functools.lru_cache(maxsize=8192)
def compile_expr(expr: sympy.Expr) -> Compiled:
    """A NumPy closure computing ``expr`` from a mapping of symbol names to values (cached:
    the same factor is evaluated at many points).

    Raises:
        UnsupportedExpression: ``expr`` holds a node outside the table.
    """
    if isinstance(expr, (int, float)):
        value = np.float64(expr)
        return lambda env: value
    return _compile(expr)


def evaluate(expr: sympy.Expr, env: Env) -> Any:
    """Evaluate ``expr`` once; see :func:`compile_expr`."""
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        return compile_expr(expr)(env)


def _compile(expr: sympy.Basic) -> Compiled:
    if expr.is_Symbol:
        name = expr.name
        return lambda env: env[name]
    if expr.is_Number or isinstance(expr, sympy.NumberSymbol):
        value = _constant(expr)
        return lambda env: value
    for kind, method in _METHODS:
        if isinstance(expr, kind):
            return method(expr)
    row = row_of(expr)
    if row is not None and row.numpy is not None:
        return _compile_function(row.numpy, expr.args)
    raise UnsupportedExpression(f"no NumPy equivalent for {type(expr).__name__} in {expr}")


def _compile_function(function: Callable[..., Any], args: tuple[sympy.Expr, ...]) -> Compiled:
    """A function of the table applied to its arguments (step's second is its value at 0)."""
    if len(args) == 1:
        arg = _compile(args[0])
        return lambda env: function(arg(env))
    parts = [_compile(a) for a in args]
    return lambda env: function(*[p(env) for p in parts])


def _constant(expr: sympy.Expr) -> np.float64:
    """A constant as float64 (so that arithmetic on it overflows to inf instead of raising)."""
    try:
        return np.float64(float(expr))
    except OverflowError:
        return np.float64(np.inf if expr > 0 else -np.inf)


def _compile_add(expr: sympy.Add) -> Compiled:
    parts = [_compile(a) for a in expr.args]
    return lambda env: sum((p(env) for p in parts[1:]), parts[0](env))


def _compile_mul(expr: sympy.Expr) -> Compiled:
    factors = list(sympy.Mul.make_args(expr))
    groups, factors = _logistic_groups(factors)
    logs = [_compile(a) for a in factors if isinstance(a, sympy.log)]
    others = [_compile(a) for a in factors if not isinstance(a, sympy.log)] + groups

    def product(env: Env) -> Any:
        value = others[0](env) if others else 1.0
        for part in others[1:]:
            value = value * part(env)
        if not logs:
            return value
        scaled = value
        for part in logs:
            scaled = scaled * part(env)
        return np.where(np.asarray(value) == 0, 0.0, scaled)

    return product


def _logistic_groups(factors: list[sympy.Expr]) -> tuple[list[Compiled], list[sympy.Expr]]:
    groups, rest = logistic_groups(factors)
    return [_logistic_power(_compile(key), m, n) for key, m, n in groups], rest


def _logistic_power(a: Compiled, m: int, n: int) -> Compiled:
    """σ(a)^m σ(-a)^n, each σ as the table computes the stable rewrites' sigmoid."""
    s = FUNCTIONS["sigmoid"].numpy

    def value(env: Env) -> Any:
        u = a(env)
        return s(u) ** m * s(-u) ** n

    return value


def _compile_pow(expr: sympy.Pow) -> Compiled:
    base, exponent = expr.args
    groups, _ = _logistic_groups([expr])
    if groups:
        return groups[0]
    b = _compile(base)
    if exponent == sympy.S.Half:
        return lambda env: np.sqrt(b(env))
    if exponent == -1:
        return lambda env: 1.0 / b(env)
    if exponent.is_Integer:
        n = int(exponent)
        return lambda env: b(env) ** n
    e = _compile(exponent)
    return lambda env: np.power(b(env), e(env))


def _compile_log(expr: sympy.log) -> Compiled:
    """``log(1 + exp(u))`` as softplus(u); otherwise the logarithm as the table computes it."""
    u = softplus_argument(expr)
    if u is not None:
        return _compile(softplus(u))
    return _compile_function(row_of(expr).numpy, expr.args)


def _compile_piecewise(expr: sympy.Piecewise) -> Compiled:
    values = [_compile(v) for v, _ in expr.args]
    conds = [_compile_condition(c) for _, c in expr.args]

    def select(env: Env) -> Any:
        chosen = [np.asarray(c(env), dtype=bool) for c in conds]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            # Every branch is computed and all but one discarded per entry (elu's exp(1000)
            # where x > 0); an overflow in the branch chosen still shows as inf in the result.
            results = [v(env) for v in values]
        shape = np.broadcast_shapes(*[np.shape(r) for r in results + chosen])
        return np.select([np.broadcast_to(c, shape) for c in chosen], [np.broadcast_to(r, shape) for r in results])

    return select


_RELATIONS: Mapping[type, Callable[[Any, Any], Any]] = {
    sympy.LessThan: np.less_equal,
    sympy.StrictLessThan: np.less,
    sympy.GreaterThan: np.greater_equal,
    sympy.StrictGreaterThan: np.greater,
}


def _compile_condition(cond: sympy.Basic) -> Compiled:
    if cond == sympy.true:
        return lambda env: True
    relation = _RELATIONS.get(type(cond))
    if relation is None:
        raise UnsupportedExpression(f"no NumPy equivalent for the condition {cond}")
    lhs, rhs = _compile(cond.lhs), _compile(cond.rhs)
    return lambda env: relation(lhs(env), rhs(env))


_METHODS: tuple[tuple[type, Callable[[Any], Compiled]], ...] = (
    (sympy.Add, _compile_add),
    (sympy.Mul, _compile_mul),
    (sympy.Pow, _compile_pow),
    (sympy.log, _compile_log),
    (sympy.Piecewise, _compile_piecewise),
)
