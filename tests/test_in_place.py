"""The in-place printer: its lines compute what the plain NumPy expression computes, without
temporaries of the batch's size, for every activation's derivative and every loss's delta."""

from __future__ import annotations

import re

import numpy as np
import pytest
import sympy

from chainrule.codegen.trainer.printers import InPlace, NotInPlace, vector_code
from chainrule.derive import registry

Y, T, X = (sympy.Symbol(n, real=True) for n in ("y", "t", "x"))
NAMES = {Y: "out", T: "T", X: "net"}


def _run(lines: list[str], arrays: dict[str, np.ndarray]) -> None:
    from chainrule.codegen.trainer.context import _HELPERS

    scope = {"np": np, **arrays}
    exec("\n".join(_HELPERS["sigmoid"].splitlines()), scope)  # noqa: S102 - our own printed code, in a test
    exec("\n".join(lines), scope)  # noqa: S102


def _expressions() -> list[tuple[str, sympy.Expr]]:
    out = []
    for name, definition in registry.ACTIVATIONS.items():
        if definition.whole_layer:
            continue
        f = registry.to_step_form(definition.define(X, **{k: sympy.Float(v) for k, v in definition.params.items()}))
        out += [(name, f), (f"{name}'", registry.to_step_form(sympy.diff(f, X)))]
        if definition.in_output is not None:
            out.append((f"{name}' in out", definition.in_output(Y, **{k: sympy.Float(v) for k, v in definition.params.items()})))
    for name, loss in registry.LOSSES.items():
        out += [(name, loss.per_output(Y, T)), (f"{name} dE/dy", sympy.diff(loss.per_output(Y, T), Y))]
    out += [("half_sse delta", Y * (1 - Y) * (Y - T)), ("sum", X * sympy.exp(-X**2) + 3 * Y - T / 2 + 1), ("power", (X - T) ** 3 / Y)]
    return out


@pytest.mark.parametrize("label, expr", _expressions(), ids=lambda v: v if isinstance(v, str) else "")
def test_in_place_lines_equal_the_expression(label: str, expr: sympy.Expr) -> None:
    rng = np.random.default_rng(0)
    arrays = {"net": rng.uniform(-3, 3, (5, 4)), "out": rng.uniform(0.05, 0.95, (5, 4)), "T": rng.uniform(0.05, 0.95, (5, 4))}
    printer = InPlace(NAMES, ["tmp", "tmp2"])
    try:
        lines = printer.lines_into(expr, "target")
    except NotInPlace:
        pytest.skip(f"{label} is printed as one expression")
    buffers = {"target": np.full((5, 4), np.nan), "tmp": np.full((5, 4), np.nan), "tmp2": np.full((5, 4), np.nan)}
    inputs = {k: v.copy() for k, v in arrays.items()}
    _run(lines, {**inputs, **buffers})
    expected = eval(vector_code(expr, NAMES), {"np": np, "sigmoid": lambda z: 1 / (1 + np.exp(-z)), "erf": None, **arrays})  # noqa: S307
    np.testing.assert_allclose(buffers["target"], np.broadcast_to(expected, (5, 4)), rtol=1e-12, atol=1e-14)
    for k, v in arrays.items():  # the inputs are read, never written
        np.testing.assert_array_equal(inputs[k], v)
    assert not any(re.match(r"\w+ = ", line) for line in lines), lines  # no new arrays: calls into buffers


def test_common_forms_are_single_ufunc_calls() -> None:
    cases = {Y - T: ["np.subtract(out, T, out=d)"], 1 - Y**2: ["np.multiply(out, out, out=d)", "np.subtract(1.0, d, out=d)"],
             sympy.Heaviside(Y, 0): ["np.greater(out, 0.0, out=d)"], -X: ["np.negative(net, out=d)"],
             Y * (1 - Y) * (Y - T): ["np.subtract(1.0, out, out=d)", "d *= out", "np.subtract(out, T, out=s)", "d *= s"]}
    for expr, lines in cases.items():
        assert InPlace(NAMES, ["s"]).lines_into(expr, "d") == lines, expr


def test_without_enough_buffers_it_says_so() -> None:
    with pytest.raises(NotInPlace):
        InPlace(NAMES, []).lines_into(Y * (1 - Y) * (Y - T), "d")
