"""Expressions to Python source for the emitted trainer: a rewrite to stable forms
(:func:`chainrule.derive.stable.stable_form`, the one the derivation's numbers use), then printing.

Two printers write the result: :class:`VectorPrinter` (NumPy, on arrays of a batch) and
:class:`ScalarPrinter` (plain floats, for the straight-line code of small networks; ``math``
raises where NumPy would overflow, and the emitted code then takes the array path). Each is a
sympy printer with one ``_print_X`` method per deliberate deviation; a function of formulas is
written as its row of the table says (:mod:`chainrule.derive.functions`: ``code`` on arrays,
``into`` in place, ``math`` on floats).
"""

from __future__ import annotations

from typing import Iterable

import sympy
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.pycode import PythonCodePrinter

from chainrule.derive.functions import folds, row_of, spell
from chainrule.derive.stable import stable_form


def _positive_first(expr: sympy.Expr) -> list[sympy.Expr]:
    """Terms in a canonical order, positive ones first, as people write them: ``out_o - t``."""
    return sorted(sympy.Add.make_args(expr), key=lambda term: (term.could_extract_minus_sign(), sympy.default_sort_key(term)))


def _is_relu(expr: sympy.Piecewise) -> sympy.Expr | None:
    """``u`` when ``expr`` is Piecewise((0, u <= 0), (u, True)), else None."""
    if len(expr.args) != 2:
        return None
    (low, cond), (high, other) = expr.args
    if low == 0 and other == sympy.true and isinstance(cond, sympy.LessThan) and cond.rhs == 0 and cond.lhs == high:
        return high
    return None


class VectorPrinter(NumPyPrinter):
    """NumPy source over arrays, with ``np`` for numpy; one method per deviation."""

    _kf = {k: v.replace("numpy.", "np.") for k, v in NumPyPrinter._kf.items()}
    _kc = {k: v.replace("numpy.", "np.") for k, v in NumPyPrinter._kc.items()}

    def __init__(self, settings: dict | None = None) -> None:
        super().__init__({"fully_qualified_modules": True, "order": "none", **(settings or {})})
        self._module = "np"

    def _module_format(self, fqn: str, register: bool = True) -> str:
        return fqn.replace("numpy.", "np.", 1) if fqn.startswith("numpy.") else fqn

    def _as_ordered_terms(self, expr: sympy.Expr, order: str | None = None) -> list[sympy.Expr]:
        return _positive_first(expr)

    def _print_Float(self, expr: sympy.Float) -> str:
        return repr(float(expr))

    def _print_Rational(self, expr: sympy.Rational) -> str:
        return repr(float(expr)) if expr.q != 1 else str(expr.p)

    def _print_Half(self, expr: sympy.Rational) -> str:
        return "0.5"

    def _print_Integer(self, expr: sympy.Integer) -> str:
        return str(expr.p)

    def _print_Pi(self, expr: sympy.Expr) -> str:
        return "np.pi"

    def _print(self, expr: sympy.Basic, **kwargs) -> str:
        """A function of the table as its row's ``code``; one of any number of arguments
        (max) folded, numbers last: ``np.maximum(np.maximum(x, y), 0)``."""
        row = row_of(expr)
        if row is None or not row.code:
            return super()._print(expr, **kwargs)
        if not folds(row):
            return spell(row.code, expr.args, self._print)
        ordered = sorted(expr.args, key=lambda a: (a.is_Number, sympy.default_sort_key(a)))
        text = self._print(ordered[0])
        for arg in ordered[1:]:
            text = spell(row.code, (text, self._print(arg)))
        return text

    def _print_Piecewise(self, expr: sympy.Piecewise) -> str:
        """``np.maximum(u, 0.0)`` for a relu, else nested ``np.where`` (not ``np.select``)."""
        u = _is_relu(expr)
        if u is not None:
            return f"np.maximum({self._print(u)}, 0.0)"
        (value, cond), rest = expr.args[0], expr.args[1:]
        if cond == sympy.true or not rest:
            return self._print(value)
        return f"np.where({self._print(cond)}, {self._print(value)}, {self._print(sympy.Piecewise(*rest))})"


class _Grouped(sympy.Function):
    """An operand :class:`ScalarPrinter` sets in parentheses."""

    nargs = 1


def _compound(expr: sympy.Expr) -> bool:
    """True for a function whose float form is an expression, not one call (sigmoid's
    ``1.0/(1.0 + math.exp(-u))``, where ``math.tanh(u)`` and ``(u > 0)`` are one)."""
    row = row_of(expr)
    if row is None or not row.math:
        return False
    head, _, rest = row.math.partition("(")
    depth = 0
    for i, char in enumerate("(" + rest):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0:
            return i != len(rest) or not (head == "" or head.replace(".", "_").isidentifier())
    return True


def _divisor(factor: sympy.Expr) -> bool:
    return factor.is_Pow and factor.exp.is_Rational and factor.exp.is_negative and _compound(factor.base)


class ScalarPrinter(PythonCodePrinter):
    """Python source over floats (``math``), for the straight-line code of small networks."""

    def __init__(self, settings: dict | None = None) -> None:
        super().__init__({"fully_qualified_modules": True, "order": "none", **(settings or {})})

    def _as_ordered_terms(self, expr: sympy.Expr, order: str | None = None) -> list[sympy.Expr]:
        return _positive_first(expr)

    _print_Float = VectorPrinter._print_Float
    _print_Rational = VectorPrinter._print_Rational
    _print_Half = VectorPrinter._print_Half
    _print_Integer = VectorPrinter._print_Integer

    def _print_Pi(self, expr: sympy.Expr) -> str:
        return "math.pi"

    def _print(self, expr: sympy.Basic, **kwargs) -> str:
        """A function of the table as its row's ``math`` (sigmoid in the textbook form: where
        math.exp overflows, the caller falls back to arrays)."""
        row = row_of(expr)
        if row is None or not row.math:
            return super()._print(expr, **kwargs)
        return spell(row.math, expr.args, self._print)

    def _print_Mul(self, expr: sympy.Expr) -> str:
        """``x/(1.0/(1.0 + math.exp(-u)))`` for x/σ(u): a divisor whose float form is a quotient in
        parentheses (sympy's precedence sees a function, which binds as a call)."""
        factors = sympy.Mul.make_args(expr)
        if not any(map(_divisor, factors)):
            return super()._print_Mul(expr)
        grouped = [sympy.Pow(_Grouped(f.base), f.exp, evaluate=False) if _divisor(f) else f for f in factors]
        return super()._print_Mul(sympy.Mul(*grouped, evaluate=False))

    def _print_Pow(self, expr: sympy.Pow, rational: bool = False) -> str:
        """``2**(1.0/(1.0 + math.exp(-u)))``: an exponent whose float form is a quotient likewise."""
        if _compound(expr.exp):
            expr = sympy.Pow(expr.base, _Grouped(expr.exp), evaluate=False)
        return super()._print_Pow(expr, rational)

    def _print__Grouped(self, expr: sympy.Expr) -> str:
        return f"({self._print(expr.args[0])})"

    def _print_Piecewise(self, expr: sympy.Piecewise) -> str:
        u = _is_relu(expr)
        if u is not None:
            return f"max({self._print(u)}, 0.0)"
        (value, cond), rest = expr.args[0], expr.args[1:]
        if cond == sympy.true or not rest:
            return self._print(value)
        return f"({self._print(value)} if {self._print(cond)} else {self._print(sympy.Piecewise(*rest))})"


def vector_code(expr: sympy.Expr, names: dict[sympy.Symbol, str] | None = None) -> str:
    """NumPy source of ``expr`` in its stable form, with symbols renamed by ``names``."""
    return VectorPrinter().doprint(_renamed(stable_form(expr), names))


def scalar_code(expr: sympy.Expr, names: dict[sympy.Symbol, str] | None = None) -> str:
    """Float source of ``expr`` in its stable form, with symbols renamed by ``names``."""
    return ScalarPrinter().doprint(_renamed(stable_form(expr), names))


def _renamed(expr: sympy.Expr, names: dict[sympy.Symbol, str] | None) -> sympy.Expr:
    expr = fold_constants(expr)
    if not names:
        return expr
    return expr.xreplace({s: n if isinstance(n, sympy.Symbol) else sympy.Symbol(n, real=True) for s, n in names.items()})


def fold_constants(expr: sympy.Expr) -> sympy.Expr:
    """Constant parts as one float each (``sqrt(2)/sqrt(pi)`` is 0.7978845608028654), computed
    once at emission rather than at every step; integers stay integers."""
    if not expr.args:
        return _float(expr) if isinstance(expr, sympy.Rational) and not expr.is_Integer else expr
    if not expr.free_symbols and not isinstance(expr, sympy.logic.boolalg.Boolean):
        return _float(expr)
    if isinstance(expr, (sympy.Mul, sympy.Add)):
        constant = [a for a in expr.args if not a.free_symbols]
        rest = [fold_constants(a) for a in expr.args if a.free_symbols]
        identity = sympy.Integer(1 if isinstance(expr, sympy.Mul) else 0)
        value = _float(expr.func(*constant)) if constant else identity
        if value == identity:
            return expr.func(*rest, evaluate=False) if len(rest) > 1 else rest[0]
        return expr.func(value, *rest, evaluate=False)
    return expr.func(*[fold_constants(a) for a in expr.args])


def _float(value: sympy.Expr) -> sympy.Expr:
    number = value.evalf(17)
    if number.is_Integer or (number.is_Float and float(number).is_integer() and abs(float(number)) < 2**53):
        return sympy.Integer(int(float(number)))
    return sympy.Float(float(number), 17)


# ---------------------------------------------------------------------------------------------
# In place: an expression as a few ufunc calls into buffers the module made once

class NotInPlace(Exception):
    """The expression needs more than the buffers given; the caller prints it as one expression."""


class InPlace:
    """Lines that leave an expression's value in an array ``target`` without temporaries.

    ``1 - out_h`` is ``np.subtract(1.0, out_h, out=target)``; a product computes its first compound
    factor into ``target`` and multiplies the rest in (``target *= out_h``), a compound factor
    beyond the first going through the next of ``scratch``. Each step is one ufunc call writing
    into a buffer, so a step allocates nothing of its batch's size. What it cannot do in the
    buffers given raises :class:`NotInPlace`.
    """

    def __init__(self, names: dict[sympy.Symbol, str], scratch: Iterable[str] = ()) -> None:
        self.names = {s if isinstance(s, sympy.Symbol) else sympy.Symbol(s, real=True): n for s, n in names.items()}
        self.scratch = list(scratch)
        self.used: list[str] = []
        self.lines: list[str] = []
        self._first: tuple[str, str] | str | None = None
        self.printer = VectorPrinter()

    def lines_into(self, expr: sympy.Expr, target: str) -> list[str]:
        """The lines computing ``expr`` (stable form, constants folded) into ``target``."""
        self.lines, self._first = [], None
        self._into(fold_constants(stable_form(expr)), target)
        return self.lines

    def assigned(self, expr: sympy.Expr, name: str, buffer: str) -> list[str]:
        """The lines binding ``name`` to ``buffer`` holding ``expr``: the first call that writes
        it writes into ``buffer`` and its result is ``name`` (``delta_o = np.subtract(out_o, T,
        out=work["delta_o"])``); where another line comes first, ``name = buffer`` is."""
        self.lines, self._first = [], (name, buffer)
        self._into(fold_constants(stable_form(expr)), name)
        if self._first == "returned":
            self.lines[0] = f"{name} = {self.lines[0]}"
        else:
            self.lines.insert(0, f"{name} = {buffer}")
        return self.lines

    def _out(self, target: str) -> str:
        """The ``out=`` of a call writing ``target``: the buffer, for :meth:`assigned`'s name
        when this call is the first line."""
        if isinstance(self._first, tuple) and target == self._first[0] and not self.lines:
            buffer, self._first = self._first[1], "returned"
            return buffer
        return target

    def _atom(self, expr: sympy.Expr) -> str | None:
        if isinstance(expr, sympy.Symbol):
            return self.names.get(expr, expr.name)
        if expr.is_Number:
            return repr(float(expr))  # 1.0 - out_h: a float constant, as the arrays are
        return None

    def _take(self) -> str:
        if not self.scratch:
            raise NotInPlace
        name = self.scratch.pop(0)
        if name not in self.used:
            self.used.append(name)
        return name

    def _give(self, name: str) -> None:
        self.scratch.insert(0, name)

    def _into(self, expr: sympy.Expr, target: str) -> None:
        atom = self._atom(expr)
        if atom is not None:
            if expr.is_Number:
                raise NotInPlace
            if atom != target:
                self.lines.append(f"np.copyto({target}, {atom})")
        elif isinstance(expr, sympy.Add):
            self._sum(expr, target)
        elif isinstance(expr, sympy.Mul):
            self._product(expr, target)
        elif isinstance(expr, sympy.Pow):
            self._power(expr, target)
        elif isinstance(expr, sympy.Piecewise) and _is_relu(expr) is not None:
            self._unary("np.maximum({0}, 0.0, out={out})", _is_relu(expr), target)
        elif (row := row_of(expr)) is not None and row.into and row.arguments == (1, 1):
            self._unary(row.into, expr.args[0], target)
        else:
            raise NotInPlace

    def _unary(self, template: str, arg: sympy.Expr, target: str) -> None:
        """``template`` (a row's ``into``) of ``arg``, which is first computed into ``target``
        unless it is an array already."""
        source = self._atom(arg)
        if source is None:
            self._into(arg, target)
            source = target
        elif arg.is_Number:
            raise NotInPlace
        self.lines.append(spell(template, (source,), out=self._out(target)))

    def _sum(self, expr: sympy.Add, target: str) -> None:
        constant = sum((a for a in expr.args if a.is_Number), sympy.Integer(0))
        # plain arrays first, then negated ones, then compound terms: y - t is one np.subtract
        terms = sorted((a for a in expr.args if not a.is_Number), key=lambda a: (self._atom(a) is None, self._atom(-a) is None, sympy.default_sort_key(a)))
        if not terms:  # a sum of numbers sympy left unevaluated: printed whole
            raise NotInPlace
        first, rest = terms[0], terms[1:]
        if self._atom(first) is not None and rest and (self._atom(rest[0]) or self._atom(-rest[0])):
            second = rest.pop(0)
            op, other = ("np.add", self._atom(second)) if self._atom(second) else ("np.subtract", self._atom(-second))
            self.lines.append(f"{op}({self._atom(first)}, {other}, out={self._out(target)})")
        elif constant != 0 and first.could_extract_minus_sign() and not rest:
            source = self._atom(-first)  # c - u: one np.subtract once u is there
            if source is None:
                self._into(-first, target)
                source = target
            self.lines.append(f"np.subtract({self._atom(constant)}, {source}, out={self._out(target)})")
            constant = sympy.Integer(0)
        else:
            self._into(first, target)
        for term in rest:
            if self._atom(term) is not None:
                self.lines.append(f"{target} += {self._atom(term)}")
            elif self._atom(-term) is not None:
                self.lines.append(f"{target} -= {self._atom(-term)}")
            else:
                buffer = self._take()
                self._into(term, buffer)
                self.lines.append(f"{target} += {buffer}")
                self._give(buffer)
        if constant != 0:
            self.lines.append(f"{target} {'+' if constant > 0 else '-'}= {self._atom(abs(constant))}")

    def _product(self, expr: sympy.Mul, target: str) -> None:
        coefficient, factors = expr.as_coeff_mul()
        compound = [f for f in factors if self._atom(f) is None and not _reciprocal(f)]
        atoms = [f for f in factors if self._atom(f) is not None]
        divisors = [f.base for f in factors if _reciprocal(f)]
        if compound:
            self._into(compound.pop(0), target)
        elif len(atoms) >= 2:
            self.lines.append(f"np.multiply({self._atom(atoms[0])}, {self._atom(atoms[1])}, out={self._out(target)})")
            atoms = atoms[2:]
        elif atoms and coefficient != 1 and len(atoms) == 1:
            operation = "np.negative(" if coefficient == -1 else f"np.multiply({self._atom(coefficient)}, "
            self.lines.append(f"{operation}{self._atom(atoms.pop())}, out={self._out(target)})")
            coefficient = sympy.Integer(1)
        elif atoms:
            self._into(atoms.pop(0), target)
        else:
            raise NotInPlace
        for factor in atoms:
            self.lines.append(f"{target} *= {self._atom(factor)}")
        for factor in compound + divisors:
            source = self._atom(factor)
            if source is None:
                source = self._take()
                self._into(factor, source)
                self._give(source)
            self.lines.append(f"{target} {'/' if factor in divisors else '*'}= {source}")
        if coefficient == -1:
            self.lines.append(f"np.negative({target}, out={self._out(target)})")
        elif coefficient != 1:
            self.lines.append(f"{target} *= {self._atom(coefficient)}")

    def _power(self, expr: sympy.Pow, target: str) -> None:
        base, exponent = expr.args
        source = self._atom(base)
        if exponent == 2:
            if source is None:
                self._into(base, target)
                source = target
            self.lines.append(f"np.multiply({source}, {source}, out={self._out(target)})")
        elif exponent == -1:
            if source is None:
                self._into(base, target)
                source = target
            self.lines.append(f"np.divide(1.0, {source}, out={self._out(target)})")
        elif exponent == sympy.Rational(1, 2):
            self._unary("np.sqrt({0}, out={out})", base, target)
        elif exponent.is_Number:
            if source is None:
                self._into(base, target)
                source = target
            power = str(int(exponent)) if exponent.is_Integer else repr(float(exponent))
            self.lines.append(f"np.power({source}, {power}, out={self._out(target)})")
        else:
            raise NotInPlace


def _reciprocal(factor: sympy.Expr) -> bool:
    return isinstance(factor, sympy.Pow) and factor.args[1] == -1 and isinstance(factor.args[0], sympy.Symbol)
