"""Claimed numbers: judged at the precision their digits imply, and what a wrong one is.

``0.0822`` claims 0.082167041 to four decimals: it is right when it is the true value rounded
there (either way at an exact half), and also when it is the true value cut off there (``0.0821``,
a truncation, which is said). A number written with more digits than float64 carries is judged
to 12 significant digits. A claim must reach the true value's first significant digit (``0.08``
is right for 0.0822, ``0.1`` and ``0`` are not), a claim of only zeros is right only for 0, and a
truncation needs two significant digits (``0.3`` is not 0.359 cut off). An explicit ``tolerance``
replaces all of this by ``|claimed - true| <= tolerance``. :func:`within_rounding` bounds what
rounding the factors of a product to a hand calculation's digits moves it by (the verifier also
accepts a value that the claimant's own earlier right values give).
"""

from __future__ import annotations

import decimal
from decimal import ROUND_DOWN, ROUND_HALF_DOWN, ROUND_HALF_UP, Decimal
from typing import Sequence

import numpy as np

from chainrule.derive.hand.claims import Literal
from chainrule.derive.hand.diagnosis import Finding

# enough digits for a float (up to 1e308) quantized to a claim's last digit (down to 1e-340)
_CONTEXT = decimal.Context(prec=1000, Emax=10**6, Emin=-(10**6))
MAX_SIGNIFICANT = 12
ZERO = 1e-12  # a true value this small is 0 for a claim of only zeros


def significant(literal: Literal) -> int:
    digits = literal.value.as_tuple().digits
    return max(1, len(str(int("".join(map(str, digits)) or "0"))))


def at_precision(value: float, literal: Literal, rounding: str = ROUND_HALF_UP) -> Decimal:
    """``value`` rounded (or cut, with ROUND_DOWN) to the last digit ``literal`` shows."""
    quantum = Decimal(1).scaleb(literal.value.as_tuple().exponent)  # type: ignore[arg-type]
    return Decimal(repr(float(value))).quantize(quantum, rounding=rounding, context=_CONTEXT)


def matches(literal: Literal, value: float) -> str | None:
    """``"rounded"``, ``"truncated"`` or None: whether ``literal`` is ``value`` at its precision."""
    if not np.isfinite(value):
        return None
    claimed = literal.value
    if not any(claimed.as_tuple().digits):
        return "rounded" if abs(value) <= ZERO else None
    if value != 0 and literal.value.as_tuple().exponent > first_digit(value):  # type: ignore[operator]
        return None  # e.g. 0.1 or 0 for 0.0822: the digits written stop before the value starts
    if significant(literal) > MAX_SIGNIFICANT:
        exact = Decimal(repr(float(value)))
        return "rounded" if abs(claimed - exact) <= abs(exact) * Decimal("1e-12") + Decimal("1e-300") else None
    if claimed in (at_precision(value, literal, ROUND_HALF_UP), at_precision(value, literal, ROUND_HALF_DOWN)):
        return "rounded"
    if significant(literal) >= 2 and claimed == at_precision(value, literal, ROUND_DOWN):
        return "truncated"
    return None


def to_digits_written(value: float, literal: Literal) -> Decimal | None:
    """``value`` rounded to the last digit ``literal`` shows, or None where that says nothing: the
    value is 0, the claim stops before the value's first digit, or writes more digits than a
    float holds."""
    last = literal.value.as_tuple().exponent
    if not value:  # 0 says itself (rounded, -0.0 would read -0E-9)
        return None
    first = first_digit(value)
    if not isinstance(last, int) or not first - MAX_SIGNIFICANT < last <= first:
        return None
    return at_precision(value, literal)


def first_digit(value: float) -> int:
    """The power of ten of ``value``'s first significant digit (-2 for 0.0822)."""
    return Decimal(repr(float(value))).adjusted()


def judge_number(literal: Literal, value: float, tolerance: float | None) -> tuple[bool, str]:
    """Whether ``literal`` is right for ``value``, and a note (a truncation, a coarse claim)."""
    if tolerance is not None:
        ok = bool(np.isfinite(value)) and abs(float(literal.value) - value) <= tolerance
        return ok, ""
    how = matches(literal, value)
    if how is None:
        return False, ""
    if how == "truncated":
        return True, f"truncated: {value:.9g} cut off after the last digit written; rounded it is {at_precision(value, literal)}"
    if significant(literal) == 1 and abs(float(literal.value) - value) > 1e-12 * abs(value):
        return True, f"right to the one significant digit written (the value is {value:.9g})"
    return True, ""


def value_findings(literal: Literal, value: float, alternatives: Sequence[tuple[Finding, float]], own: tuple[bool, float] | None) -> list[Finding]:
    """Why a claimed number is wrong: the value of the claim's own wrong formula, else the
    typical mistake whose value it is, else (the formula right or not given) an arithmetic slip.

    Args:
        alternatives: each typical mistake with the value it gives on the sample.
        own: the claim's own formula, when it gave one: (whether it is right, its value).
    """
    if own is not None and not own[0] and matches(literal, own[1]):
        from_formula = own[1]
        return [Finding("follows_formula", f"this is what the claimed formula gives on the sample ({from_formula:.9g}); the formula is what is wrong", f"{from_formula:.9g}")]
    for finding, other in alternatives:
        # one significant digit says too little to tell most mistakes apart, but a sign it does
        # and a claimed number that is the mistake's value exactly, not rounded to it (a claimed 4
        # where a max-pool's gradient routed to the wrong unit of a tie gives 4; a claimed 0 where
        # the mistake gives exactly 0)
        exact = abs(other - float(literal.value)) <= 1e-12 * max(abs(other), 1e-300) or other == float(literal.value)
        telling = significant(literal) >= 2 or abs(other + value) <= 1e-9 * abs(value) or exact
        if telling and matches(literal, other) and not matches(literal, value):
            return [Finding(finding.mistake, f"{finding.words} (that gives {other:.9g})", finding.formula)]
    if own is not None and own[0]:
        from_formula = own[1]
        return [Finding("arithmetic", f"the formula is right, the arithmetic is not: on the sample it gives {from_formula:.9g}", f"{from_formula:.9g}")]
    coarse = too_coarse(literal, value)
    if coarse:
        return [coarse]
    slip = digit_slip(literal, value) if significant(literal) >= 2 else None
    if slip:
        return [slip]
    difference = float(literal.value) - value
    relative = f" ({abs(difference / value) * 100:.3g}%)" if value else ""
    words = f"off by {difference:+.3g}{relative}; it matches none of the typical mistakes, so an arithmetic slip"
    return [Finding("arithmetic", words, f"{value:.9g}")]


def too_coarse(literal: Literal, value: float) -> Finding | None:
    """The true value rounded to a digit before its first significant one (0.1 or 0 for 0.0822):
    right as far as it goes, but it says nothing of the value."""
    exponent = literal.value.as_tuple().exponent
    if not value or not isinstance(exponent, int) or exponent <= first_digit(value) or literal.value != at_precision(value, literal):
        return None
    least = Decimal(repr(float(value))).quantize(Decimal(1).scaleb(first_digit(value)), rounding=ROUND_HALF_UP, context=_CONTEXT)
    return Finding("coarse", f"{literal.text} is {value:.9g} rounded before its first significant digit, which says nothing of it; write at least {least}", f"{value:.9g}")


def digit_slip(literal: Literal, value: float) -> Finding | None:
    """Two neighbouring digits swapped, or one digit wrong, against the true value at the claim's
    precision."""
    right = at_precision(value, literal)
    a, b = literal.value.as_tuple(), right.as_tuple()
    if a.sign != b.sign or a.exponent != b.exponent:
        return None
    x, y = "".join(map(str, a.digits)), "".join(map(str, b.digits))
    width = max(len(x), len(y))
    x, y = x.zfill(width), y.zfill(width)
    diff = [i for i in range(width) if x[i] != y[i]]
    if len(diff) == 2 and diff[1] == diff[0] + 1 and x[diff[0]] == y[diff[1]] and x[diff[1]] == y[diff[0]]:
        return Finding("digits", f"two digits swapped: {literal.text} for {right}", str(right))
    if len(diff) == 1:
        return Finding("digits", f"one digit wrong: {literal.text} for {right}", str(right))
    return None


def rounding_error(value: float, digits: int) -> float:
    """The most ``value`` moves when written to ``digits`` significant digits (0 when it has no more)."""
    if not value or not np.isfinite(value):
        return 0.0
    written = Decimal(repr(float(value)))
    quantum = Decimal(1).scaleb(written.adjusted() - digits + 1)
    if written.quantize(quantum, context=_CONTEXT) == written:
        return 0.0
    return float(quantum) / 2


def within_rounding(literal: Literal, value: float, paths: Sequence[Sequence[float]], digits: int) -> bool:
    """Whether ``literal`` is ``value`` = the sum of the products ``paths`` with each factor (and,
    where there are several, each product) first written to ``digits`` significant digits: the
    hand calculation's own rounding of the values it multiplies, bounded to first order."""
    if not paths or not np.isfinite(value) or significant(literal) > MAX_SIGNIFICANT:
        return False
    bound = 0.0
    for factors in paths:
        for i, factor in enumerate(factors):
            others = float(np.prod([f for j, f in enumerate(factors) if j != i]))
            bound += abs(others) * rounding_error(factor, digits)
        if len(paths) > 1:
            bound += rounding_error(float(np.prod(factors)), digits)
    exponent = literal.value.as_tuple().exponent
    half_unit = float(Decimal(1).scaleb(exponent)) / 2  # type: ignore[arg-type]
    return bound > 0 and abs(float(literal.value) - value) <= bound + half_unit
