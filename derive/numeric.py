"""Numbers from sympy expressions, with NumPy, by a table-driven walk (no code strings, no exec).

:func:`compile_expr` turns an expression into a closure over NumPy that takes a mapping from
symbol names to arrays (or floats). Each sympy node type maps to one NumPy function in
:data:`_FUNCTIONS` or to one method; the deviations from the plain translation are deliberate and
each has its reason:

- a product of powers of ``exp(±a)`` and ``1 + exp(±a)`` (``1/(1 + exp(-x))``, sympy's
  ``exp(-x)/(1 + exp(-x))**2`` for σ', mish's ``exp(x)/(exp(x) + 1)``) is evaluated through
  s = σ(a) and 1 - s = σ(-a), each computed stably: exp(a)^p (1 + exp(a))^q (1 + exp(-a))^r
  = s^(p-r) (1-s)^(-p-q), exactly; and ``log(1 + exp(u))`` as ``logaddexp(0, u)``: no overflow
  at |u| = 1000;
- a product holding ``log(u)`` is 0 where its other factors are 0 (``0·log 0 = 0``, the
  convention of cross-entropy with one-hot targets);
- ``step(u)`` (Heaviside with step(0) = 0) is ``u > 0``.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Mapping

import numpy as np
import sympy

from chainrule.derive.functions import sigmoid, softplus

Env = Mapping[str, Any]
Compiled = Callable[[Env], Any]

_erf = np.vectorize(math.erf, otypes=[float])


def _logistic(u: Any) -> Any:
    """1 / (1 + exp(-u)) without overflow: exp is only taken of -|u|."""
    e = np.exp(-np.abs(u))
    return np.where(np.asarray(u) >= 0, 1 / (1 + e), e / (1 + e))


def _heaviside(u: Any, at_zero: float) -> Any:
    return np.where(u > 0, 1.0, np.where(u < 0, 0.0, at_zero))


_FUNCTIONS: Mapping[type, Callable[..., Any]] = {
    sigmoid: _logistic,
    softplus: lambda u: np.logaddexp(0.0, u),
    sympy.exp: np.exp,
    sympy.log: np.log,
    sympy.tanh: np.tanh,
    sympy.sin: np.sin,
    sympy.cos: np.cos,
    sympy.Abs: np.abs,
    sympy.sign: np.sign,
    sympy.erf: _erf,
}


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
    function = _FUNCTIONS.get(type(expr))
    if function is not None and len(expr.args) == 1:
        arg = _compile(expr.args[0])
        return lambda env: function(arg(env))
    raise UnsupportedExpression(f"no NumPy equivalent for {type(expr).__name__} in {expr}")


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


def exp_power(factor: sympy.Expr) -> tuple[sympy.Expr, int, str] | None:
    """(u, k, kind) for ``exp(u)**k`` (kind ``exp``) or ``(1 + exp(u))**k`` (kind ``one_plus``)."""
    base, k = (factor.args if isinstance(factor, sympy.Pow) else (factor, sympy.Integer(1)))
    if not k.is_Integer:
        return None
    if isinstance(base, sympy.exp):
        coefficient, u = base.args[0].as_coeff_Mul()  # sympy writes exp(u)**2 as exp(2*u)
        if coefficient.is_Integer:
            return u, int(k) * int(coefficient), "exp"
        return base.args[0], int(k), "exp"
    if isinstance(base, sympy.Add) and len(base.args) == 2 and sympy.Integer(1) in base.args:
        other = base.args[0] if base.args[1] == 1 else base.args[1]
        if isinstance(other, sympy.exp):
            return other.args[0], int(k), "one_plus"
    return None


def logistic_groups(factors: list[sympy.Expr]) -> tuple[list[tuple[sympy.Expr, int, int]], list[sympy.Expr]]:
    """The factors in exp(±a) and 1 + exp(±a) of a product, as (a, m, n) with the group equal to
    s^m (1-s)^n, s = σ(a), exactly; and the factors left over. Groups without a ``1 + exp``
    factor are left as they are. The emitted trainer's printer uses the same grouping."""
    found: dict[sympy.Expr, list[int]] = {}
    members: dict[sympy.Expr, list[sympy.Expr]] = {}
    for factor in factors:
        parsed = exp_power(factor)
        if parsed is None:
            continue
        u, k, kind = parsed
        key = -u if u.could_extract_minus_sign() else u
        sign = 1 if u == key else -1
        p, q, r = found.setdefault(key, [0, 0, 0])
        if kind == "exp":
            found[key][0] = p + sign * k
        elif sign > 0:
            found[key][1] = q + k
        else:
            found[key][2] = r + k
        members.setdefault(key, []).append(factor)
    groups, taken = [], set()
    for key, (p, q, r) in found.items():
        if q == 0 and r == 0:
            continue
        taken.update(members[key])
        groups.append((key, p - r, -p - q))
    return groups, [f for f in factors if f not in taken]


def _logistic_groups(factors: list[sympy.Expr]) -> tuple[list[Compiled], list[sympy.Expr]]:
    groups, rest = logistic_groups(factors)
    return [_logistic_power(_compile(key), m, n) for key, m, n in groups], rest


def _logistic_power(a: Compiled, m: int, n: int) -> Compiled:
    def value(env: Env) -> Any:
        u = a(env)
        return _logistic(u) ** m * _logistic(-u) ** n

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
    """``log(1 + exp(u))`` as logaddexp(0, u); otherwise the plain logarithm."""
    arg = expr.args[0]
    if isinstance(arg, sympy.Add) and len(arg.args) == 2:
        one, other = sorted(arg.args, key=lambda a: not a.is_Number)
        if one == 1 and isinstance(other, sympy.exp):
            u = _compile(other.args[0])
            return lambda env: np.logaddexp(0.0, u(env))
    inner = _compile(arg)
    return lambda env: np.log(inner(env))


def _compile_heaviside(expr: sympy.Heaviside) -> Compiled:
    u = _compile(expr.args[0])
    at_zero = float(expr.args[1]) if len(expr.args) > 1 else 0.5
    return lambda env: _heaviside(u(env), at_zero)


def _compile_minmax(expr: sympy.Expr) -> Compiled:
    parts = [_compile(a) for a in expr.args]
    combine = np.maximum if isinstance(expr, sympy.Max) else np.minimum

    def reduce(env: Env) -> Any:
        value = parts[0](env)
        for part in parts[1:]:
            value = combine(value, part(env))
        return value

    return reduce


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
    (sympy.Heaviside, _compile_heaviside),
    (sympy.Max, _compile_minmax),
    (sympy.Min, _compile_minmax),
    (sympy.Piecewise, _compile_piecewise),
)
