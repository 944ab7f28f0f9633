"""Stable forms: expressions rewritten so that computing them cannot overflow where the value is
finite. The derivation's numbers (:mod:`chainrule.derive.layers`) and the emitted trainer's code
(:mod:`chainrule.codegen.trainer.printers`) are computed from the same rewrite, so they agree where the
outputs saturate (a sigmoid at |net| = 500 under bce).

:func:`stable_form`: products of powers of ``exp(±a)`` and ``1 + exp(±a)`` become
``σ(a)^m σ(-a)^n`` (σ' of a sigmoid, swish, mish's ``exp(x)/(exp(x) + 1)``), ``log(1 + exp(u))``
becomes ``softplus(u)``, ``log(σ(u))`` becomes ``-softplus(-u)``, and in a branch that holds only
where ``u <= 0`` an ``exp(c*u)`` is taken of ``min(u, 0)`` (elu's other branch is computed too).

The derivation's evaluator (:mod:`chainrule.derive.numeric`) finds the same groups and logarithms
with :func:`logistic_groups` and :func:`softplus_argument`, and computes σ and softplus as their
rows in :mod:`chainrule.derive.functions` say, as the trainer's code does.
"""

from __future__ import annotations

import sympy

from chainrule.derive.functions import sigmoid, softplus

__all__ = ["exp_power", "logistic_groups", "sigmoid", "softplus", "softplus_argument", "stable_form"]


def stable_form(expr: sympy.Expr) -> sympy.Expr:
    """``expr`` rewritten so that it is computed without overflow; see the module docstring.

    Products are regrouped before their factors are visited (σ' = exp(-x)/(1 + exp(-x))**2 is one
    group), logarithms after their argument (log(1/(1 + exp(-z))) is -softplus(-z)).
    """
    if not expr.args:
        return expr
    if isinstance(expr, sympy.Piecewise):
        return _clamped_piecewise(expr)
    if isinstance(expr, sympy.log):
        return _log(stable_form(expr.args[0]))
    if isinstance(expr, (sympy.Mul, sympy.Pow)):
        expr = _logistic(expr)
    rebuilt = expr.func(*[stable_form(a) for a in expr.args])
    return _complement(rebuilt) if isinstance(rebuilt, sympy.Add) else rebuilt


def _complement(expr: sympy.Add) -> sympy.Expr:
    """1 - σ(u) is σ(-u), which keeps its digits where σ(u) is near 1."""
    if len(expr.args) == 2 and sympy.Integer(1) in expr.args:
        other = expr.args[0] if expr.args[1] == 1 else expr.args[1]
        coefficient, rest = other.as_coeff_Mul()
        if coefficient == -1 and isinstance(rest, sigmoid):
            return sigmoid(-rest.args[0])
    return expr


def _logistic(expr: sympy.Expr) -> sympy.Expr:
    """exp(a)^p (1 + exp(a))^q (1 + exp(-a))^r = σ(a)^(p-r) σ(-a)^(-p-q), exactly (the grouping
    the derivation's own evaluator uses)."""
    groups, rest = logistic_groups(list(sympy.Mul.make_args(expr)))
    if not groups:
        return expr
    return sympy.Mul(*[sigmoid(key) ** m * sigmoid(-key) ** n for key, m, n in groups], *rest)


def _log(arg: sympy.Expr) -> sympy.Expr:
    """log(arg) for an argument already in stable form."""
    base, k = arg.args if isinstance(arg, sympy.Pow) and arg.exp.is_Integer else (arg, sympy.Integer(1))
    if isinstance(base, sigmoid):
        return -k * softplus(-base.args[0])
    parsed = exp_power(base)
    if parsed is not None and parsed[2] == "one_plus":
        return k * parsed[1] * softplus(parsed[0])
    if isinstance(base, sympy.Mul) and any(isinstance(f.args[0] if isinstance(f, sympy.Pow) else f, sigmoid) for f in base.args):
        return k * sympy.Add(*[_log(f) if isinstance(f, (sigmoid, sympy.Pow)) else sympy.log(f) for f in base.args])
    return sympy.log(arg)


def _clamped_piecewise(expr: sympy.Piecewise) -> sympy.Piecewise:
    pieces = []
    for value, cond in expr.args:
        value = stable_form(value)
        if isinstance(cond, sympy.LessThan) and cond.rhs == 0:
            u = cond.lhs
            value = value.replace(
                lambda e: isinstance(e, sympy.exp) and (e.args[0] / u).is_positive and (e.args[0] / u).is_Number,
                lambda e: sympy.exp((e.args[0] / u) * sympy.Min(u, 0)),
            )
        pieces.append((value, cond))
    return sympy.Piecewise(*pieces)


# ---------------------------------------------------------------------------------------------
# The patterns, shared with the derivation's evaluator


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
    factor are left as they are."""
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


def softplus_argument(expr: sympy.log) -> sympy.Expr | None:
    """``u`` where ``expr`` is ``log(1 + exp(u))``, which is softplus(u); else None."""
    parsed = exp_power(expr.args[0])
    if parsed is not None and parsed[1:] == (1, "one_plus"):
        return parsed[0]
    return None
