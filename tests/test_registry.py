"""Registry entries are definitions; each derivative written in the output is proved equal to
sympy.diff of the definition, and numbers stay finite at large pre-activations."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import sympy

from chainrule.derive.network import exact
from chainrule.derive.numeric import compile_expr, evaluate
from chainrule.derive.registry import ACTIVATIONS, LOSSES, X, Y, kink_arguments, softmax_in_output, softmax_unit, to_step_form

ELEMENTWISE = [a for a in ACTIVATIONS.values() if not a.whole_layer]
WRITTEN_IN_OUTPUT = [a for a in ELEMENTWISE if a.in_output is not None]
POSITIVE = sympy.Symbol("p", positive=True)
NEGATIVE = sympy.Symbol("n", negative=True)


def definition(activation, arg=X):
    params = {k: exact(v if k != "alpha" else 0.3) for k, v in activation.params.items()}
    return activation.define(arg, **params), params


@pytest.mark.parametrize("activation", WRITTEN_IN_OUTPUT, ids=lambda a: a.name)
def test_derivative_in_output_equals_diff(activation) -> None:
    """f'(x) == in_output(f(x)) on each side of any kink, symbolically."""
    f, params = definition(activation)
    if not f.has(sympy.Piecewise):
        written = activation.in_output(f, **params)
        assert sympy.simplify(sympy.diff(f, X) - written) == 0, (activation.name, written)
        return
    # Written with step(out): that needs out > 0 exactly where net > 0 ...
    xs = np.linspace(-5, 5, 101)
    assert np.array_equal(evaluate(f, {"x": xs}) > 0, xs > 0)
    # ... and then, on each side of the kink, step(out) is 1 or 0.
    for point, step in ((POSITIVE, 1), (NEGATIVE, 0)):
        derived = sympy.diff(f, X).subs(X, point)
        written = activation.in_output(f.subs(X, point), **params).replace(lambda e: isinstance(e, sympy.Heaviside), lambda e: sympy.Integer(step))
        assert sympy.simplify(derived - written) == 0, (activation.name, point, derived, written)


@pytest.mark.parametrize("activation", WRITTEN_IN_OUTPUT, ids=lambda a: a.name)
def test_derivative_in_output_numerically(activation) -> None:
    f, params = definition(activation)
    derived = to_step_form(sympy.diff(f, X))
    written = activation.in_output(Y, **params)
    xs = np.array([-3.0, -0.7, -0.01, 0.02, 0.5, 2.5])
    ys = evaluate(f, {"x": xs})
    assert np.allclose(evaluate(derived, {"x": xs}), evaluate(written, {"y": ys}), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("k, j", [(0, 0), (0, 1), (2, 1)])
def test_softmax_in_output_equals_diff(k: int, j: int) -> None:
    nets = sympy.symbols("n0:3", real=True)
    outs = [softmax_unit(nets, m) for m in range(3)]
    derived = sympy.diff(outs[k], nets[j])
    written = softmax_in_output(outs[k], outs[j], k == j)
    assert sympy.simplify(derived - written) == 0


@pytest.mark.parametrize("activation", ELEMENTWISE, ids=lambda a: a.name)
def test_stable_at_large_pre_activations(activation) -> None:
    f, _ = definition(activation)
    derived = to_step_form(sympy.diff(f, X))
    xs = np.array([-1000.0, -50.0, 50.0, 1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            values = compile_expr(f)({"x": xs})
    assert np.all(np.isfinite(values))
    if activation.in_output is not None:
        with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
            warnings.simplefilter("error")
            slopes = compile_expr(activation.in_output(Y, **{k: exact(v) for k, v in activation.params.items()}))({"y": values})
        assert np.all(np.isfinite(slopes))
    else:
        assert np.all(np.isfinite(evaluate(derived, {"x": np.array([-30.0, 30.0])})))


def test_sigmoid_and_softplus_exact_at_extremes() -> None:
    sigmoid, _ = definition(ACTIVATIONS["sigmoid"])
    softplus, _ = definition(ACTIVATIONS["softplus"])
    assert compile_expr(sigmoid)({"x": np.array([-1000.0, 1000.0])}).tolist() == [0.0, 1.0]
    assert compile_expr(softplus)({"x": np.array([1000.0])}).tolist() == [1000.0]


@pytest.mark.parametrize(
    "pw, expected",
    [
        (sympy.Piecewise((0, X <= 0), (1, True)), sympy.Heaviside(X, 0)),
        (sympy.Piecewise((2, X < 0), (5, True)), 5 - 3 * sympy.Heaviside(-X, 0)),
        (sympy.Piecewise((2, X > 1), (5, True)), 5 - 3 * sympy.Heaviside(X - 1, 0)),
        (sympy.Heaviside(X), sympy.Heaviside(X, 0)),
    ],
)
def test_to_step_form(pw, expected) -> None:
    assert sympy.simplify(to_step_form(pw) - expected) == 0
    xs = np.array([-2.0, -0.5, 0.5, 2.0])
    assert np.allclose(evaluate(to_step_form(pw), {"x": xs}), evaluate(pw, {"x": xs}))


def test_kink_arguments() -> None:
    relu, _ = definition(ACTIVATIONS["relu"])
    assert X in kink_arguments(relu)
    assert kink_arguments(sympy.Max(X, 2 * X + 1)) == (-X - 1,)
    assert kink_arguments(ACTIVATIONS["sigmoid"].define(X)) == ()


@pytest.mark.parametrize("loss", LOSSES.values(), ids=lambda l: l.name)
def test_losses_are_definitions_in_y_and_t(loss) -> None:
    t = sympy.Symbol("t", real=True)
    expr = loss.per_output(Y, t)
    assert expr.free_symbols == {Y, t}
    assert sympy.diff(expr, Y) != 0


@pytest.mark.parametrize(
    "text",
    [
        "exp(-x)/(1 + exp(-x))**2",
        "exp(x)/(exp(x) + 1)",
        "x*exp(-x)/(1 + exp(-x))**2 + 1/(1 + exp(-x))",
        "exp(2*x)/(1 + exp(x))**2",
        "1/(1 + exp(-x))**3",
    ],
)
def test_logistic_products_are_stable(text: str) -> None:
    """Products of exp(±a) and 1 + exp(±a) go through σ(a): finite at |x| = 1000, and exact."""
    from chainrule.derive.formula import read_formula

    expr = read_formula(text, {"x": X})
    xs = np.array([-1000.0, -30.0, -1.5, 0.0, 0.7, 30.0, 1000.0])
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        values = compile_expr(expr)({"x": xs})
    assert np.all(np.isfinite(values))
    moderate = np.abs(xs) < 50
    reference = np.array([float(expr.subs(X, v).evalf(30)) for v in xs[moderate]])
    np.testing.assert_allclose(values[moderate], reference, rtol=1e-12)
