"""The table of functions (derive/functions.py): each row checked on its own, every place that meets
a function reading it, and a function added as a row alone (atan) carried through derive, emit,
report and check."""

from __future__ import annotations

import ast
import importlib.util
import re
from xml.etree import ElementTree
from pathlib import Path

import numpy as np
import pytest
import sympy

from chainrule.codegen.commands import check
from chainrule.codegen.report.latex import math_tex
from chainrule.codegen.report.mathml import math_mathml
from chainrule.codegen.report.writer import render_report
from chainrule.codegen.trainer.context import render_trainer
from chainrule.codegen.trainer.printers import InPlace, NotInPlace, ScalarPrinter, VectorPrinter
from chainrule.derive import derive, naming
from chainrule.derive.check import check_derivation
from chainrule.derive.formula import FUNCTIONS as ALLOW_LIST
from chainrule.derive.formula import read_formula
from chainrule.derive.functions import FORMULA_FUNCTIONS, FUNCTIONS, HELPERS, has_slots, row_of
from chainrule.derive.numeric import compile_expr
from chainrule.derive.registry import kink_arguments, to_step_form
from chainrule.derive.spec import spec_from_data
from helpers import ROOT, finite_difference

SYMBOLS = sympy.symbols("x0 x1 x2", real=True)
POINTS = np.array([-1000.0, -30.0, -2.5, -1.0, -0.3, 0.0, 0.4, 1.0, 3.0, 40.0, 1000.0])
NODE_ROWS = [row for row in FUNCTIONS.values() if row.node is not None]
PACKAGE = sorted((ROOT / "derive").rglob("*.py")) + sorted((ROOT / "codegen").rglob("*.py")) + sorted((ROOT / "codegen").rglob("*.j2"))


def node_of(row, arity: int | None = None) -> sympy.Expr:
    """A node of ``row`` in x0, x1, ...: what a formula builds, or the node itself where a formula
    builds a definition (sigmoid's 1/(1 + exp(-x0)))."""
    args = SYMBOLS[: arity or row.arguments[0]]
    built = row.build(*args)
    return built if row_of(built) is row else row.node(*args)


def points(arity: int) -> list[np.ndarray]:
    """The grid for each argument: the first runs over POINTS, the others over it shifted."""
    return [np.roll(POINTS, k) for k in range(arity)]


def import_source(path: Path, source: str):
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------------------------
# Every place reads the table


def test_the_allow_list_and_the_reserved_names_are_the_table() -> None:
    assert list(ALLOW_LIST) == list(FORMULA_FUNCTIONS) == list(naming.FORMULA_FUNCTIONS)
    assert set(FORMULA_FUNCTIONS) == {row.name for row in FUNCTIONS.values() if row.formula}
    assert set(FUNCTIONS) | set(HELPERS) <= naming.RESERVED | {"softplus"}  # softplus: never spelled
    for name in FORMULA_FUNCTIONS:
        assert naming.identifier_problem(name) == f"{name!r} is reserved: it is a function or constant of the formulas"


def _named_lists(path: Path) -> list[str]:
    """The tuples, lists, sets and dict keys of ``path`` that name three functions or more."""
    names = set(FUNCTIONS)
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        items = node.keys if isinstance(node, ast.Dict) else node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else []
        listed = {i.value for i in items if isinstance(i, ast.Constant) and i.value in names}
        if len(listed) >= 3:
            found.append(f"line {node.lineno}: {sorted(listed)}")
    return found


#: TeX's own operators and their typeset widths (\\tanh is four letters wide): a fact of TeX,
#: kept beside the width estimate, that holds operators the table has not (\\cosh, \\ln).
TEX_OPERATORS = ("codegen/report/latex.py", "_NAMED")


@pytest.mark.parametrize("path", [p for p in PACKAGE if p.suffix == ".py" and p.name != "functions.py"], ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_module_lists_functions_by_name(path: Path) -> None:
    found = _named_lists(path)
    if str(path.relative_to(ROOT)) == TEX_OPERATORS[0]:
        source = path.read_text(encoding="utf-8")
        line = next(i for i, text in enumerate(source.splitlines(), 1) if text.startswith(TEX_OPERATORS[1] + " ="))
        assert found == [f for f in found if f.startswith(f"line {line}:")], found
        return
    assert not found, f"{path.name} lists functions of the table by name: {found}"


def test_the_scan_finds_a_list_of_functions(tmp_path: Path) -> None:
    listed = tmp_path / "listed.py"
    listed.write_text('UNARY = {"exp": 1, "tanh": 2, "erf": 3}\n', encoding="utf-8")
    assert _named_lists(listed) == ["line 1: ['erf', 'exp', 'tanh']"]


def _without_tex_operators(path: Path) -> str:
    lines = path.read_text(encoding="utf-8").splitlines()
    if str(path.relative_to(ROOT)) == TEX_OPERATORS[0]:
        lines = [line for line in lines if not line.startswith(TEX_OPERATORS[1] + " =")]
    return "\n".join(lines)


def test_atan_is_a_row_and_nothing_else() -> None:
    """atan was added as one row of the table (and a word in the docs): no other file of the
    package names it, in any of its spellings (TeX's operators aside, which held \\arctan before)."""
    spellings = re.compile(r"\batan\b|arctan")
    for path in PACKAGE:
        if path.name != "functions.py":
            assert not spellings.search(_without_tex_operators(path)), path
    assert spellings.search((ROOT / "derive" / "functions.py").read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------
# Each row on its own


def _module_source(row, expr: sympy.Expr) -> str:
    args = ", ".join(sorted(s.name for s in expr.free_symbols))
    lines = ["import math", "import numpy as np", "", row.helper, ""]
    lines += [f"def vector({args}):", f"    return {VectorPrinter().doprint(expr)}", ""]
    lines += [f"def scalar({args}):", f"    return {ScalarPrinter().doprint(expr)}", ""]
    try:
        into = InPlace({s: s.name for s in expr.free_symbols}).lines_into(expr, "out")
    except NotInPlace:
        into = ["raise NotImplementedError"]
    lines += [f"def into({args}, out):", *(f"    {line}" for line in into), "    return out", ""]
    return "\n".join(lines)


@pytest.mark.parametrize("row", NODE_ROWS, ids=lambda row: row.name)
def test_numpy_emitted_code_and_float_code_agree(row, tmp_path: Path) -> None:
    """The derivation's numbers (``numpy``), the trainer's array code (``code``, its helper, and
    ``into``) and its float code (``math``) are one function, also at |x| = 1000."""
    arity = max(row.arguments[0], 3 if row.arguments[1] > 2 else 1)
    expr = node_of(row, arity)
    module = import_source(tmp_path / f"row_{row.name}.py", _module_source(row, expr))
    grid = points(len(expr.free_symbols))
    with np.errstate(all="ignore"):
        expected = np.broadcast_to(compile_expr(expr)(dict(zip((s.name for s in SYMBOLS), grid))), POINTS.shape)
        np.testing.assert_allclose(module.vector(*grid), expected, rtol=1e-13, equal_nan=True)
        if row.into:
            np.testing.assert_allclose(module.into(*grid, np.empty_like(POINTS)), expected, rtol=1e-13, equal_nan=True)
    compared = 0
    for i, value in enumerate(expected):
        try:
            got = module.scalar(*(float(g[i]) for g in grid))
        except (OverflowError, ValueError):  # math raises where NumPy overflows: arrays are taken then
            continue
        # the textbook float forms keep digits to 1e-16 of 1 (softplus' log(1 + exp(u)) at u = -30)
        assert float(got) == pytest.approx(value, rel=1e-13, abs=1e-15, nan_ok=True), (row.name, i)
        compared += 1
    assert compared >= len(POINTS) // 2


@pytest.mark.parametrize("row", [row for row in NODE_ROWS if row.math], ids=lambda row: row.name)
def test_float_code_binds_as_its_expression_does(row, tmp_path: Path) -> None:
    """A function's float form as a divisor, an exponent, a power's base and negated computes what
    the expression means: sigmoid's is a quotient, and x/σ(u) is not x/1.0/(1.0 + math.exp(-u))."""
    f, x = node_of(row), SYMBOLS[2]
    exprs = [x / f, x / f**2, sympy.Rational(3, 2) ** f, f**3, -f, x * f]
    names = ", ".join(s.name for s in SYMBOLS)
    source = ["import math", ""] + [f"def e{i}({names}):\n    return {ScalarPrinter().doprint(e)}\n" for i, e in enumerate(exprs)]
    module = import_source(tmp_path / f"float_{row.name}.py", "\n".join(source))
    env = {"x0": 0.7, "x1": -0.4, "x2": 1.3}
    for i, e in enumerate(exprs):
        assert getattr(module, f"e{i}")(**env) == pytest.approx(float(compile_expr(e)(env)), rel=1e-13), (e, ScalarPrinter().doprint(e))


@pytest.mark.parametrize("row", list(FUNCTIONS.values()), ids=lambda row: row.name)
def test_derivative_is_made_of_rows_and_kinks_are_declared(row) -> None:
    """sympy's derivative of what a formula builds is computed from the table (no node outside
    it) and agrees with central differences everywhere but at the row's kinks, where the
    one-sided differences agree too: a kink the row did not declare fails at 0, on the grid."""
    f = row.build(*SYMBOLS[: row.arguments[0]])
    d = to_step_form(sympy.diff(f, SYMBOLS[0]))
    grid = points(row.arguments[0])
    env = dict(zip((s.name for s in SYMBOLS), grid))
    with np.errstate(all="ignore"):
        kinks = [np.abs(compile_expr(k)(env)) for k in kink_arguments(f)]
        derivative = np.broadcast_to(compile_expr(d)(env), POINTS.shape)
        h = 1e-6 * np.maximum(1.0, np.abs(grid[0]))
        up, at, down = (np.broadcast_to(compile_expr(f)({**env, "x0": grid[0] + s * h}), POINTS.shape) for s in (1, 0, -1))
        central, left, right = (up - down) / (2 * h), (at - down) / h, (up - at) / h
    away = np.all([k > 1e-3 for k in kinks], axis=0) if kinks else np.ones(POINTS.shape, dtype=bool)
    usable = away & np.isfinite(central) & np.isfinite(derivative)
    assert usable.sum() >= 4
    np.testing.assert_allclose(derivative[usable], central[usable], rtol=1e-5, atol=1e-7)
    # one-sided differences are h*f'' apart where f' is continuous, a jump of f' apart at a kink
    assert np.all(np.abs(left - right)[usable] <= 1e-3 * np.abs(central[usable]) + 10 * h[usable]), (left, right)


@pytest.mark.parametrize("row", [row for row in FUNCTIONS.values() if row.kinks(*SYMBOLS[:2])], ids=lambda row: row.name)
def test_each_kink_is_a_jump(row) -> None:
    """At a declared kink the function jumps, or its derivative does (one-sided differences)."""
    f = compile_expr(row.build(*SYMBOLS[: row.arguments[0]]))
    h, at = 1e-6, {"x0": 0.5, "x1": 0.5} if row.arguments[0] > 1 else {"x0": 0.0}
    value = {s: float(f({**at, "x0": at["x0"] + s * h})) for s in (-1, 0, 1)}
    jumps = abs(value[1] - value[-1]) > 1e-3
    left, right = (value[0] - value[-1]) / h, (value[1] - value[0]) / h
    assert jumps or abs(left - right) > 0.5, (row.name, value)


@pytest.mark.parametrize("row", [row for row in NODE_ROWS if row.latex], ids=lambda row: row.name)
def test_latex_is_the_rows(row) -> None:
    """The report sets the row's LaTeX, piece by piece around its slots, and a power once."""
    expr = node_of(row)
    text, at = math_tex(expr), 0
    for piece in re.split(r"\{-?(?:\d+|args)\}", row.latex):
        at = text.index(piece, at) + len(piece)
    powered = math_tex(expr ** SYMBOLS[2])
    assert powered.count("x_{2}") == 1, powered


@pytest.mark.parametrize("row", [row for row in NODE_ROWS if row.latex], ids=lambda row: row.name)
def test_mathml_is_the_rows(row) -> None:
    """The HTML report sets the row's MathML (an operator by its name, a layout around its
    slots), well-formed, with the argument once and a power once; every row LaTeX sets has one."""
    assert row.mathml, row.name
    expr = node_of(row)
    text = math_mathml(expr)
    ElementTree.fromstring(f"<math>{text}</math>")
    pieces = [row.mathml] if not has_slots(row.mathml) else re.split(r"\{-?(?:\d+|args)\}", row.mathml)
    at = 0
    for piece in pieces:
        at = text.index(piece if has_slots(row.mathml) else f"<mi>{piece}</mi>", at)
    assert text.count("<mn>0</mn>") == 1, text  # x_0, the argument
    powered = math_mathml(expr ** SYMBOLS[2])
    ElementTree.fromstring(f"<math>{powered}</math>")
    assert powered.count("<mn>2</mn>") == 1 and "<msup>" in powered, powered


# ---------------------------------------------------------------------------------------------
# atan, a row added alone, through every command

ATAN_SPEC = {
    "name": "arctan_net",
    "inputs": ["x1", "x2"],
    "layers": [
        {"name": "h", "units": 3, "activation": {"formula": "atan(x) + x/8"},
         "weights": [[0.4, -0.7], [1.2, 0.3], [-0.5, 0.9]], "biases": [0.1, -0.2, 0.05]},
        {"name": "o", "units": 2, "activation": "sigmoid", "weights": [[0.6, -0.4, 0.8], [-0.3, 0.5, 0.2]], "biases": [0.0, 0.1]},
    ],
    "targets": ["t1", "t2"],
    "loss": {"formula": "(t - y)**2/2 + atan(y - t)**2"},
    "sample": {"x": [0.7, -1.3], "t": [0.2, 0.9]},
    "optimizer": {"kind": "sgd", "lr": 0.5},
}


@pytest.fixture(scope="module")
def atan_network(tmp_path_factory):
    spec = spec_from_data(ATAN_SPEC, "arctan_net.json")
    out = tmp_path_factory.mktemp("atan")
    d = derive(spec)
    path = out / "arctan_net.py"
    path.write_text(render_trainer(d, str(out / "arctan_net.json"), str(out)), encoding="utf-8")
    return spec, d, path


def test_atan_is_read_and_written_back() -> None:
    x = SYMBOLS[0]
    assert read_formula("atan(x0)", {"x0": x}) == sympy.atan(x)
    assert VectorPrinter().doprint(sympy.atan(x)) == "np.arctan(x0)"
    assert ScalarPrinter().doprint(sympy.atan(x)) == "math.atan(x0)"
    assert math_tex(sympy.atan(x) ** 2) == r"\arctan^{2}{\left(x_{0} \right)}"


def test_atan_derivation_agrees_with_finite_differences(atan_network) -> None:
    _, d, _ = atan_network
    result = check_derivation(d, random_points=3)
    assert result.passed, result


def test_atan_emitted_trainer_agrees_with_finite_differences_and_the_derivation(atan_network) -> None:
    spec, d, path = atan_network
    source = path.read_text(encoding="utf-8")
    assert "np.arctan(" in source and "math.atan(" in source
    module = import_source(path, source)
    net = module.Network()
    X, T = np.array([ATAN_SPEC["sample"]["x"]]), np.array([ATAN_SPEC["sample"]["t"]])
    grads = net.gradients(X, T)
    flat = np.concatenate([np.ravel(grads[name]) for name in net.params])
    np.testing.assert_allclose(flat, finite_difference(net, X, T), rtol=1e-6, atol=1e-9)
    for l in (1, 2):
        np.testing.assert_allclose(grads[f"W{l}"], d.sample.dW[l - 1], rtol=1e-12, atol=1e-15)


def test_atan_float_step_is_the_array_step(atan_network) -> None:
    """One sample takes the straight-line float code (``math``), two copies of it the arrays."""
    _, _, path = atan_network
    module = import_source(path, path.read_text(encoding="utf-8"))
    one, two = module.Network(), module.Network()
    X, T = np.array([ATAN_SPEC["sample"]["x"]]), np.array([ATAN_SPEC["sample"]["t"]])
    assert one.step(X, T) == pytest.approx(two.step(np.vstack([X, X]), np.vstack([T, T])), rel=1e-13)
    np.testing.assert_allclose(one.theta, two.theta, rtol=1e-13, atol=1e-15)


def test_atan_report_typesets_it(atan_network) -> None:
    _, d, _ = atan_network
    tex = render_report(d, "arctan_net.json")
    assert r"\arctan{\left(" in tex and r"\operatorname{atan}" not in tex


def test_atan_network_checks(atan_network) -> None:
    spec, _, path = atan_network
    checked = check(spec, points=3, emitted=str(path))
    assert checked.passed and checked.emitted is not None
