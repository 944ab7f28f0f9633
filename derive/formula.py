"""Formulas users write, read by an allow-list parser, and the plain text we write back.

A formula is text such as ``x / (1 + exp(-x))`` or ``(o1 - t1) * o1 * (1 - o1) * h1``. It is
tokenised and parsed here into a small tree of :class:`Node` values (never by ``eval``, ``exec``,
``sympify`` or ``parse_expr``), and the tree is then built into a sympy expression through
:func:`to_sympy`, where every name is resolved by the caller and every function comes from the
table of :mod:`chainrule.derive.functions` (:data:`FUNCTIONS`: its rows that formulas may call).
Limits on length, nesting, exponents and literals keep hostile input from costing time or memory.
:func:`format_expr` writes expressions back in the same language, so what chainrule prints,
chainrule can read.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence, Union

import sympy
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter

from chainrule.derive.counts import count as counted
from chainrule.derive.errors import ChainruleError, FormulaError
from chainrule.derive.functions import FORMULA_FUNCTIONS, Function, Max, Min, row_of, step  # noqa: F401 - Max, Min: read from here

MAX_LENGTH = 20_000
MAX_DEPTH = 64
MAX_EXPONENT = 100
MAX_LITERAL_DIGITS = 40
MAX_LITERAL_EXPONENT = 300
#: max and min (rows that ``compare``): the derivative of a nest of depth d holds about 3**d step
#: functions, and sympy compares every pair of arguments when it differentiates one (6 deep: 27 s;
#: one max of 16 arguments: 52 s to derive, 230 s to emit). relu6, hard sigmoid and hardtanh take 4.
MAX_PIECEWISE_DEPTH = 3
MAX_PIECEWISE_ARGUMENTS = 8
_PIECEWISE = frozenset(row.name for row in FORMULA_FUNCTIONS.values() if row.compares)

_TOKEN = re.compile(
    r"(?P<space>\s+)"
    r"|(?P<number>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>\*\*|[-+*/^(),])"
)
#: Typographic spellings people paste from notes, folded into ASCII one character for one.
_FOLD = str.maketrans({"\u2212": "-", "\u00b7": "*", "\u00d7": "*", "\u22c5": "*", "\u2013": "-", "\u2202": "d"})


#: The allow-list: the table's functions that formulas may call, by name.
FUNCTIONS: Mapping[str, Function] = FORMULA_FUNCTIONS
CONSTANTS: Mapping[str, sympy.Expr] = {"pi": sympy.pi}


# ---------------------------------------------------------------------------------------------
# The tree


@dataclass(frozen=True)
class Number:
    text: str
    column: int


@dataclass(frozen=True)
class Name:
    id: str
    column: int


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple["Node", ...]
    column: int


@dataclass(frozen=True)
class Neg:
    operand: "Node"


@dataclass(frozen=True)
class Power:
    base: "Node"
    exponent: "Node"
    column: int


@dataclass(frozen=True)
class Sum:
    """``terms[0] ± terms[1] ± ...``: each term with its sign, +1 or -1."""

    terms: tuple[tuple[int, "Node"], ...]


@dataclass(frozen=True)
class Product:
    """``factors[0] */ factors[1] */ ...``: each factor with ``*`` or ``/`` before it."""

    factors: tuple[tuple[str, "Node"], ...]


@dataclass(frozen=True)
class Partial:
    """``dA/dB`` read as one derivative (only when parsing with ``partials=True``)."""

    of: str
    wrt: str
    column: int


Node = Union[Number, Name, Call, Neg, Power, Sum, Product, Partial]


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    column: int


class _Parser:
    """Recursive descent over the grammar below, with the nesting depth bounded.

    ``sum := product (('+'|'-') product)*``; ``product := unary (('*'|'/') unary)*``;
    ``unary := ('+'|'-') unary | power``; ``power := atom (('**'|'^') unary)?``;
    ``atom := NUMBER | NAME | NAME '(' sum (',' sum)* ')' | '(' sum ')'``; with ``partials``
    also ``atom := DNAME '/' DNAME``, two names starting with ``d`` (``dE/dout_o1``), read as one
    derivative.
    """

    def __init__(self, text: str, source: str, field: str, partials: bool = False) -> None:
        self.text, self.source, self.field, self.partials = text, source, field, partials
        self.tokens = list(self._tokenize(text))
        self.pos = 0
        self.depth = 0

    def error(self, message: str, column: int | None) -> FormulaError:
        return FormulaError(self.source, self.field, message, self.text, column)

    def _tokenize(self, text: str) -> Iterable[_Token]:
        pos = 0
        while pos < len(text):
            match = _TOKEN.match(text, pos)
            if not match:
                raise self.error(f"unexpected character {text[pos]!r}", pos)
            if match.lastgroup != "space":
                yield _Token(match.lastgroup or "", match.group(), pos)
            pos = match.end()

    def peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, *texts: str) -> _Token | None:
        token = self.peek()
        if token is not None and token.kind == "op" and token.text in texts:
            self.pos += 1
            return token
        return None

    def expect(self, text: str, what: str) -> None:
        if self.take(text) is None:
            token = self.peek()
            found = repr(token.text) if token else "the end"
            raise self.error(f"expected {what}, found {found}", token.column if token else len(self.text))

    def parse(self) -> Node:
        if not self.tokens:
            raise self.error("expected a formula, got an empty string", None)
        node = self.sum()
        token = self.peek()
        if token is not None:
            raise self.error(f"unexpected {token.text!r} (an operator missing before it?)", token.column)
        return node

    def nested(self, column: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"nesting deeper than {MAX_DEPTH} levels", column)

    def sum(self) -> Node:
        terms = [(1, self.product())]
        while (op := self.take("+", "-")) is not None:
            terms.append((1 if op.text == "+" else -1, self.product()))
        return terms[0][1] if len(terms) == 1 else Sum(tuple(terms))

    def product(self) -> Node:
        factors = [("*", self.unary())]
        while (op := self.take("*", "/")) is not None:
            factors.append((op.text, self.unary()))
        return factors[0][1] if len(factors) == 1 else Product(tuple(factors))

    def unary(self) -> Node:
        op = self.take("+", "-")
        if op is None:
            return self.power()
        self.nested(op.column)
        operand = self.unary()
        self.depth -= 1
        return Neg(operand) if op.text == "-" else operand

    def power(self) -> Node:
        base = self.atom()
        op = self.take("**", "^")
        if op is None:
            return base
        self.nested(op.column)
        exponent = self.unary()
        self.depth -= 1
        return Power(base, exponent, op.column)

    def atom(self) -> Node:
        token = self.peek()
        if token is None:
            raise self.error("expected a number, a name or '(', found the end", len(self.text))
        self.pos += 1
        if token.kind == "number":
            return Number(token.text, token.column)
        if token.kind == "name":
            partial = self.partial(token)
            if partial is not None:
                return partial
            if self.take("(") is None:
                return Name(token.text, token.column)
            self.nested(token.column)
            args = [self.sum()]
            while self.take(",") is not None:
                args.append(self.sum())
            self.expect(")", "',' or ')'")
            self.depth -= 1
            return Call(token.text, tuple(args), token.column)
        if token.text == "(":
            self.nested(token.column)
            node = self.sum()
            self.expect(")", "')'")
            self.depth -= 1
            return node
        raise self.error(f"expected a number, a name or '(', found {token.text!r}", token.column)

    def partial(self, token: _Token) -> Partial | None:
        """``dA/dB`` after the name ``dA`` has been taken, or None (nothing consumed)."""
        if not self.partials or len(token.text) < 2 or token.text[0] != "d" or self.pos + 1 >= len(self.tokens):
            return None
        slash, below = self.tokens[self.pos], self.tokens[self.pos + 1]
        if slash.text != "/" or below.kind != "name" or len(below.text) < 2 or below.text[0] != "d":
            return None
        self.pos += 2
        return Partial(token.text[1:], below.text[1:], token.column)


def parse_formula(text: object, *, source: str = "<formula>", field: str = "", partials: bool = False) -> Node:
    """Parse formula text into a tree, refusing everything outside the grammar.

    Args:
        text: the formula as the user wrote it.
        source, field: where it came from, for error messages.
        partials: read ``dA/dB`` (two names starting with ``d``; ``∂`` is read as ``d``) as one
            :class:`Partial` derivative rather than a quotient of two names.

    Returns:
        The tree; build it into sympy with :func:`to_sympy`.

    Raises:
        FormulaError: the text is not a string, too long, too deep or not in the grammar.
    """
    if not isinstance(text, str):
        raise FormulaError(source, field, f"expected a formula (a string), got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise FormulaError(source, field, f"expected a formula of at most {MAX_LENGTH} characters, got {len(text)}")
    return _Parser(text.translate(_FOLD), source, field, partials).parse()


# ---------------------------------------------------------------------------------------------
# From the tree to sympy

Resolver = Callable[[str], "sympy.Expr | None"]
#: ``(of, wrt, column)`` of a derivative ``dof/dwrt`` -> its expression, or None to read it as
#: the quotient of the names ``dof`` and ``dwrt``.
PartialResolver = Callable[[str, str, int], "sympy.Expr | None"]


@dataclass(frozen=True)
class _Builder:
    text: str
    resolve: Resolver
    known: Sequence[str]
    source: str
    field: str
    partial: PartialResolver | None = None

    def error(self, message: str, column: int | None) -> FormulaError:
        return FormulaError(self.source, self.field, message, self.text, column)

    def build(self, node: Node) -> sympy.Expr:
        if isinstance(node, Partial):
            found = self.partial(node.of, node.wrt, node.column) if self.partial is not None else None
            if found is not None:
                return found
            return self.name(Name("d" + node.of, node.column)) / self.name(Name("d" + node.wrt, node.column))
        if isinstance(node, Number):
            return self.number(node)
        if isinstance(node, Name):
            return self.name(node)
        if isinstance(node, Call):
            return self.call(node)
        if isinstance(node, Neg):
            return -self.build(node.operand)
        if isinstance(node, Power):
            return self.power(node)
        if isinstance(node, Sum):
            return sympy.Add(*[sign * self.build(term) for sign, term in node.terms])
        factors = [self.build(f) if op == "*" else 1 / self.build(f) for op, f in node.factors]
        return sympy.Mul(*factors)

    def number(self, node: Number) -> sympy.Expr:
        mantissa, _, exponent = node.text.lower().partition("e")
        if len(mantissa) > MAX_LITERAL_DIGITS or (exponent and abs(int(exponent)) > MAX_LITERAL_EXPONENT):
            raise self.error("number too large or too precise", node.column)
        return sympy.Rational(node.text)

    def name(self, node: Name) -> sympy.Expr:
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        if node.id in FUNCTIONS:
            raise self.error(f"{node.id!r} is a function; write {node.id}(...)", node.column)
        value = self.resolve(node.id)
        if value is None:
            listed = ", ".join(self.known[:24]) + (", ..." if len(self.known) > 24 else "")
            raise self.error(f"unknown name {node.id!r} (known: {listed})", node.column)
        return value

    def call(self, node: Call) -> sympy.Expr:
        if node.func not in FUNCTIONS:
            allowed = ", ".join(FUNCTIONS)
            raise self.error(f"unknown function {node.func!r} (allowed: {allowed})", node.column)
        row = FUNCTIONS[node.func]
        low, high = row.arguments
        if not low <= len(node.args) <= high:
            count = counted(low, "argument") if low == high else f"{low} to {high} arguments"
            raise self.error(f"{node.func}() takes {count}, got {len(node.args)}", node.column)
        result = row.build(*[self.build(arg) for arg in node.args])
        if result.has(sympy.I):  # sqrt(-1): refused where it is written, before it can cancel
            raise self.error(f"{node.func}() of these arguments is not real (a root or logarithm of a negative number)", node.column)
        return result

    def power(self, node: Power) -> sympy.Expr:
        exponent = self.build(node.exponent)
        if exponent.is_Number and abs(exponent) > MAX_EXPONENT:
            raise self.error(f"exponent larger than {MAX_EXPONENT} in absolute value", node.column)
        result = sympy.Pow(self.build(node.base), exponent)
        # sympy folds (pi**100)**100 into pi**10000: the exponent is checked after folding too.
        if isinstance(result, sympy.Pow) and result.exp.is_Number and abs(result.exp) > MAX_EXPONENT:
            raise self.error(f"exponent larger than {MAX_EXPONENT} in absolute value", node.column)
        if result.has(sympy.nan, sympy.zoo, sympy.oo, -sympy.oo):
            raise self.error("the power is not a finite number (0 to a negative power?)", node.column)
        if result.has(sympy.I) or not_real(result):
            raise self.error("the power is not real (a negative number to a power that is not a whole number)", node.column)
        if result.is_Number and result != 0 and abs(sympy.log(abs(result), 10)) > 300:
            raise self.error("power too large", node.column)
        return result


def to_sympy(
    tree: Node,
    names: Mapping[str, sympy.Expr] | Resolver,
    *,
    text: str = "",
    known: Sequence[str] | None = None,
    source: str = "<formula>",
    field: str = "",
    partial: PartialResolver | None = None,
) -> sympy.Expr:
    """Build the sympy expression of a parsed formula.

    Args:
        tree: from :func:`parse_formula`.
        names: the names the formula may use, as a mapping or a resolver returning None for an
            unknown name.
        text: the formula text, quoted in error messages.
        known: the names listed when an unknown one is used (default: the mapping's keys).
        partial: resolves the :class:`Partial` derivatives of a tree parsed with ``partials``.

    Raises:
        FormulaError: an unknown name or function, a wrong argument count, an exponent or literal
            out of range, or a division by zero.
    """
    if isinstance(names, Mapping):
        mapping = names
        resolve: Resolver = mapping.get
        known = list(known if known is not None else mapping)
    else:
        resolve, known = names, list(known or [])
    depth, arguments = piecewise_depth(tree), piecewise_arguments(tree)
    if depth > MAX_PIECEWISE_DEPTH or arguments > MAX_PIECEWISE_ARGUMENTS:
        raise FormulaError(source, field, f"expected max and min with at most {MAX_PIECEWISE_ARGUMENTS} arguments in all, nested at most {MAX_PIECEWISE_DEPTH} deep (their derivative grows with each), got {arguments}, {depth} deep; write a simpler formula", text)
    try:
        expr = _Builder(text, resolve, known, source, field, partial).build(tree)
    except ChainruleError:  # a ValueError too: already one line
        raise
    except (ValueError, TypeError, ZeroDivisionError) as error:  # sympy refusing a value (max of 1/0)
        raise FormulaError(source, field, f"the formula {text!r} has no finite real value ({error})") from None
    if expr.has(sympy.zoo, sympy.oo, -sympy.oo, sympy.nan):
        raise FormulaError(source, field, f"the formula {text!r} divides by zero or is not finite")
    if expr.has(sympy.I):
        raise FormulaError(source, field, f"the formula {text!r} is not real (a root or logarithm of a negative number)")
    return expr


def _children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, Call):
        return node.args
    if isinstance(node, Neg):
        return (node.operand,)
    if isinstance(node, Power):
        return (node.base, node.exponent)
    if isinstance(node, Sum):
        return tuple(child for _, child in node.terms)
    if isinstance(node, Product):
        return tuple(child for _, child in node.factors)
    return ()


def piecewise_depth(node: Node) -> int:
    """How deep ``max`` and ``min`` calls nest in a parsed formula (0 without any)."""
    inner = max((piecewise_depth(child) for child in _children(node)), default=0)
    return inner + (isinstance(node, Call) and node.func in _PIECEWISE)


def piecewise_arguments(node: Node) -> int:
    """How many arguments the ``max`` and ``min`` calls of a parsed formula take in all."""
    own = len(node.args) if isinstance(node, Call) and node.func in _PIECEWISE else 0
    return own + sum(piecewise_arguments(child) for child in _children(node))


def node_count(node: Node) -> int:
    """The terms and operations of a parsed formula, counted before sympy builds anything."""
    return 1 + sum(node_count(child) for child in _children(node))


def not_real(expr: sympy.Expr) -> str:
    """Why ``expr`` is not a real function of real variables ("" where it is): a power of a
    negative number to a variable exponent (``(-1)**x``: complex for all but integer x; its
    derivative holds ``I*pi``), or the imaginary unit itself."""
    if expr.has(sympy.I):
        return "its derivative is complex (the imaginary unit appears)"
    for power in expr.atoms(sympy.Pow):
        base, exponent = power.args
        if base.is_number and base.is_negative and not exponent.is_number:
            return f"a negative number to a variable power ({format_expr(power)}) is complex for most values"
    return ""


def read_formula(
    text: object,
    names: Mapping[str, sympy.Expr] | Resolver,
    *,
    known: Sequence[str] | None = None,
    source: str = "<formula>",
    field: str = "",
) -> sympy.Expr:
    """Parse and build in one call: the sympy expression of a formula in the given names."""
    tree = parse_formula(text, source=source, field=field)
    return to_sympy(tree, names, text=str(text), known=known, source=source, field=field)


# ---------------------------------------------------------------------------------------------
# Writing formulas back


#: Decimals in positional notation between these powers of ten, as Python's repr writes floats.
_FIXED_FROM, _FIXED_TO = -4, 16


def decimal_parts(value: sympy.Expr, halves: bool = False) -> tuple[str, int] | None:
    """A fraction the user wrote as a decimal, as ``(digits, exponent)``: ``("44715", -2)`` for
    0.044715 (4.4715e-2), ``("-1", -8)`` for -1e-8; None for any other number.

    A decimal is a fraction whose denominator is 2^a*5^b with a factor 5: hyper-parameters
    (0.01, 1e-8), formula literals and registry constants (gelu's 0.044715), and what arithmetic
    on them leaves (1 - 0.9). Halves and quarters (half_sse's 1/2, gelu's x/2) and fractions such
    as 1/3 stay fractions, as the registry writes them; so do decimals longer than a literal may be.
    With ``halves``, any fraction that has a decimal is one (a learning rate of 0.5 named alone).
    """
    if not isinstance(value, sympy.Rational) or value.q == 1:
        return None
    q, fives = value.q, 0
    while q % 5 == 0:
        q, fives = q // 5, fives + 1
    if (not fives and not halves) or q & (q - 1):
        return None
    twos = q.bit_length() - 1
    places = max(twos, fives)
    scaled = value.p * 2 ** (places - twos) * 5 ** (places - fives)
    digits = str(abs(scaled)).rstrip("0")
    if len(digits) > MAX_LITERAL_DIGITS:
        return None
    return ("-" if scaled < 0 else "") + digits, len(str(abs(scaled))) - 1 - places


def decimal_text(value: sympy.Expr, halves: bool = False) -> str | None:
    """A decimal (see :func:`decimal_parts`) as :func:`parse_formula` reads it: ``0.044715``,
    ``1e-8``, ``2.5e-7``; None for any other number."""
    parts = decimal_parts(value, halves)
    if parts is None:
        return None
    digits, exponent = parts
    sign, digits = ("-", digits[1:]) if digits.startswith("-") else ("", digits)
    if not _FIXED_FROM <= exponent < _FIXED_TO:
        return f"{sign}{digits[0]}{'.' + digits[1:] if digits[1:] else ''}e{exponent}"
    if exponent < 0:
        return f"{sign}0.{'0' * (-exponent - 1)}{digits}"
    whole = digits[: exponent + 1].ljust(exponent + 1, "0")
    return f"{sign}{whole}.{digits[exponent + 1:]}"


def decimal_coefficient(expr: sympy.Expr) -> tuple[sympy.Rational, sympy.Expr] | None:
    """A product as ``(coefficient, rest)`` when its numbers multiply to a decimal
    (:func:`decimal_parts`), unevaluated products flattened; else None."""
    if not isinstance(expr, sympy.Mul):
        return None
    numbers, factors, stack = [], [], list(reversed(expr.args))
    while stack:
        factor = stack.pop()
        if isinstance(factor, sympy.Mul):
            stack.extend(reversed(factor.args))
        else:
            (numbers if factor.is_Rational else factors).append(factor)
    coefficient = sympy.Mul(*numbers)
    if decimal_parts(coefficient) is None:
        return None
    return coefficient, sympy.Mul(*factors, evaluate=False) if len(factors) > 1 else (factors or [sympy.Integer(1)])[0]


class FormulaPrinter(StrPrinter):
    """Plain text in the language :func:`parse_formula` reads; one method per deviation."""

    printmethod = "_chainrule_formula"
    _default_settings = dict(StrPrinter._default_settings, full_prec=False)

    def _as_ordered_terms(self, expr: sympy.Expr, order: str | None = None) -> list[sympy.Expr]:
        """Positive terms first: ``y - t`` and ``1 - out_h1``, not ``-t + y``."""
        terms = super()._as_ordered_terms(expr, order=order)
        return sorted(terms, key=lambda term: term.could_extract_minus_sign())

    def _print_Rational(self, expr: sympy.Rational) -> str:
        """Decimals as decimals (``1e-8``, ``0.044715``), not ``1/100000000``."""
        return decimal_text(expr) or super()._print_Rational(expr)

    def _print_Mul(self, expr: sympy.Expr) -> str:
        """A decimal coefficient in front (``0.01*dE/dw5``), where sympy divides by 100."""
        split = decimal_coefficient(expr)
        if split is None:
            return super()._print_Mul(expr)
        coefficient, rest = split
        if coefficient < 0:
            return "-" + self._print(sympy.Mul(-coefficient, rest, evaluate=False))
        if rest.is_Pow and rest.exp.is_extended_negative:
            return f"{decimal_text(coefficient)}/{self.parenthesize(1 / rest, PRECEDENCE['Mul'], strict=False)}"
        return f"{decimal_text(coefficient)}*{self.parenthesize(rest, PRECEDENCE['Mul'], strict=True)}"

    def _print(self, expr: sympy.Basic, **kwargs) -> str:
        """A function of the table under its formula name, with the arguments a formula gives it:
        ``step(u)`` for sympy's ``Heaviside(u, 0)``, ``abs(u)``, ``max(a, b)``."""
        row = row_of(expr)
        if row is None:
            return super()._print(expr, **kwargs)
        return f"{row.name}({', '.join(self._print(a) for a in expr.args[: row.arguments[1]])})"

    def _print_Exp1(self, expr: sympy.Expr) -> str:
        return "exp(1)"

    def _print_Piecewise(self, expr: sympy.Piecewise) -> str:
        """In ``step()``, which the parser reads (relu's closed forms hold a Piecewise); a
        Piecewise no ``step()`` writes is printed as sympy writes it, to be read by people."""
        try:
            stepped = to_step_form(expr)
        except ValueError:
            return self._print_Basic(expr)
        if stepped.has(sympy.Piecewise):
            return self._print_Basic(expr)
        # a Piecewise binds as an atom where it stands (2*Piecewise): its sum is parenthesized
        return f"({self._print(stepped)})" if stepped.is_Add else self._print(stepped)


def format_expr(expr: sympy.Expr, last: Iterable[sympy.Symbol] = ()) -> str:
    """Plain text for an expression, readable by :func:`parse_formula`.

    Args:
        last: symbols written last in any product they appear in (``lr*dE/dw5``, not
            ``dE/dw5*lr``).
    """
    late = frozenset(last)
    if not late:
        return _format(expr)
    return FormulaPrinter({"order": "none"}).doprint(_move_last(expr, late))


def format_number(value: sympy.Expr) -> str:
    """A number named alone in words (the learning rate 0.5, a factor 0.01) as a decimal wherever
    it has one; otherwise as :func:`format_expr` writes it (1/3)."""
    return decimal_text(value, halves=True) or format_expr(value)


@functools.lru_cache(maxsize=16384)
def _format(expr: sympy.Expr) -> str:
    """Printing is the slow part of describing a derivation, and factors repeat across paths."""
    return FormulaPrinter().doprint(expr)


def _move_last(expr: sympy.Expr, late: frozenset) -> sympy.Expr:
    if not expr.args or expr.is_Atom:
        return expr
    args = [_move_last(a, late) for a in expr.args]
    if isinstance(expr, sympy.Mul):
        ordered = sorted(args, key=lambda a: (bool(a.free_symbols & late), not a.is_Number))
        return sympy.Mul(*ordered, evaluate=False)
    return expr.func(*args, evaluate=False) if isinstance(expr, sympy.Add) else expr.func(*args)


def tree_size(expr: sympy.Basic, limit: int = 10**9) -> int:
    """The number of nodes of ``expr`` written out as a tree (shared subtrees counted each time
    they occur), computed on the shared graph, so it is cheap even when the tree is huge."""
    sizes: dict[int, int] = {}
    stack: list[tuple[sympy.Basic, bool]] = [(expr, False)]
    while stack:
        node, expanded = stack.pop()
        if id(node) in sizes:
            continue
        if expanded or not node.args:
            sizes[id(node)] = min(limit, 1 + sum(sizes[id(a)] for a in node.args))
        else:
            stack.append((node, True))
            stack.extend((a, False) for a in node.args if id(a) not in sizes)
    return sizes[id(expr)]


def to_step_form(expr: sympy.Expr) -> sympy.Expr:
    """Rewrite jumps in one spelling, ``step(u)`` (Heaviside with step(0) = 0).

    ``Piecewise((a, u <= 0), (b, True))`` becomes ``a + (b - a)*step(u)`` and sympy's
    ``Heaviside(u)`` (which is 1/2 at 0) becomes ``step(u)``: at a kink the derivative takes the
    value on the side where the unit is off, as PyTorch's relu does. ``DiracDelta`` (the
    derivative of a step or a sign) is 0 away from its kink, and is taken as 0 at it, as autograd
    takes it. Expressions are otherwise unchanged.
    """
    expr = expr.replace(lambda e: isinstance(e, sympy.DiracDelta), lambda e: sympy.Integer(0))
    expr = expr.replace(
        lambda e: isinstance(e, sympy.Heaviside) and (len(e.args) == 1 or e.args[1] != 0),
        lambda e: step(e.args[0]),
    )
    return expr.replace(lambda e: isinstance(e, sympy.Piecewise), _piecewise_to_step)


def _piecewise_to_step(pw: sympy.Piecewise) -> sympy.Expr:
    (value, cond), rest = pw.args[0], pw.args[1:]
    if cond == sympy.true or not rest:
        return value
    other = _piecewise_to_step(sympy.Piecewise(*rest)) if len(rest) > 1 or rest[0][1] != sympy.true else rest[0][0]
    if not isinstance(cond, (sympy.LessThan, sympy.StrictLessThan, sympy.GreaterThan, sympy.StrictGreaterThan)):
        raise ValueError(f"cannot write {pw} with step()")
    u = cond.lhs - cond.rhs
    # The branch `value` holds where u <= 0 (or < 0, >= 0, > 0); step(v) is 1 exactly where v > 0.
    if isinstance(cond, sympy.LessThan):
        return value + (other - value) * step(u)
    if isinstance(cond, sympy.StrictGreaterThan):
        return other + (value - other) * step(u)
    if isinstance(cond, sympy.StrictLessThan):
        return other + (value - other) * step(-u)
    return value + (other - value) * step(-u)
