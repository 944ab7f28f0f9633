"""An exact test that two expressions are the same function, cheap where ``simplify`` is not.

Every function application (exp, log, tanh, step, a power with a non-integer exponent, ...) is
taken as an independent indeterminate, so both expressions become rational functions of the
network's symbols and those indeterminates. Equal rational functions agree exactly at every
rational point; unequal ones differ at all but a measure-zero set (Schwartz-Zippel), so agreement
at a few random rational points with large denominators proves the identity with overwhelming
probability. Identities that need a relation between functions (tanh^2 = 1 - sech^2) are not
found this way; chainrule's forms do not rely on any.
"""

from __future__ import annotations

import random

import sympy


def _indeterminate(key: tuple, table: dict) -> sympy.Symbol:
    if key not in table:
        table[key] = sympy.Symbol(f"_g{len(table)}")
    return table[key]


def _atomise(expr: sympy.Expr, table: dict) -> sympy.Expr:
    if expr.is_Atom:
        return expr
    args = [_atomise(a, table) for a in expr.args]
    if isinstance(expr, (sympy.Add, sympy.Mul)):
        return expr.func(*args)
    if isinstance(expr, sympy.Pow) and args[1].is_Integer:
        return sympy.Pow(*args)
    if isinstance(expr, sympy.Pow) and args[1].is_Rational:
        # b**(p/q) = (b**(1/q))**p, so that sqrt(pi)**-1 and pi**(-1/2) are one indeterminate.
        base = sympy.expand(args[0])
        return _indeterminate(("root", base, args[1].q), table) ** args[1].p
    if isinstance(expr, sympy.exp):
        # exp(2a - b) = exp(a)**2 / exp(b): sympy merges and splits exponentials freely.
        # exp(m/q) becomes a placeholder per (m, q); same_function later writes each as a power of
        # one base per monomial, exp(m/Q) with Q the lcm of the q's seen.
        result = sympy.Integer(1)
        for term in sympy.Add.make_args(sympy.expand(args[0])):
            coefficient, monomial = term.as_coeff_Mul()
            if not coefficient.is_Rational:
                coefficient, monomial = sympy.Integer(1), term
            result *= _indeterminate(("exp", monomial, coefficient.q), table) ** coefficient.p
        return result
    return _indeterminate((expr.func, tuple(sympy.expand(a) for a in args)), table)


def same_function(a: sympy.Expr, b: sympy.Expr, points: int = 3, seed: int = 0) -> bool:
    """True when ``a`` and ``b`` are identical as rational functions of their atoms."""
    table: dict = {}
    difference = _atomise(a, table) - _atomise(b, table)
    roots: dict = {}
    for key in table:
        if key[0] == "exp":
            roots[key[1]] = sympy.ilcm(roots.get(key[1], 1), key[2])
    bases = {m: sympy.Symbol(f"_G{i}") for i, m in enumerate(roots)}
    difference = difference.xreplace({s: bases[k[1]] ** (roots[k[1]] // k[2]) for k, s in table.items() if k[0] == "exp"})
    rng = random.Random(seed)
    symbols = sorted(difference.free_symbols, key=lambda s: s.name)
    for _ in range(points):
        values = {s: sympy.Rational(rng.randint(1, 10**9), rng.randint(1, 10**9)) for s in symbols}
        if difference.xreplace(values) != 0:
            return False
    return True
