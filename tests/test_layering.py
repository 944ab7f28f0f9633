"""derive/ is pure: it never imports codegen or jinja2, never prints or opens files, and nothing
in the package evaluates strings (eval, exec, sympify, parse_expr, lambdify)."""

from __future__ import annotations

import ast

import pytest

from helpers import ROOT

DERIVE = sorted((ROOT / "derive").glob("*.py"))
EVERYTHING = DERIVE + sorted((ROOT / "codegen").glob("*.py"))
FORBIDDEN_BUILTINS = {"eval", "exec", "compile", "__import__"}
FORBIDDEN_ANYWHERE = {"sympify", "parse_expr", "lambdify", "S"}


def imported(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", DERIVE, ids=lambda p: p.name)
def test_derive_is_pure(path) -> None:
    tree = ast.parse(path.read_text())
    assert not any(name.startswith(("chainrule.codegen", "codegen", "jinja2")) or name == "codegen" for name in imported(tree))
    calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert not calls & {"print", "open", "input"}, calls & {"print", "open", "input"}


@pytest.mark.parametrize("path", EVERYTHING, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_string_evaluation(path) -> None:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name):
                assert node.func.id not in FORBIDDEN_BUILTINS | FORBIDDEN_ANYWHERE, f"{path.name}:{node.lineno} calls {node.func.id}"
            elif isinstance(node.func, ast.Attribute):
                assert node.func.attr not in FORBIDDEN_ANYWHERE, f"{path.name}:{node.lineno} calls .{node.func.attr}"


#: Sizes that keep things readable (../shared/style.md, principle 9): a function of more than 60
#: lines is split; a template of more than about 150 lines has logic that belongs in its context.
MAX_FUNCTION_LINES, MAX_TEMPLATE_LINES = 60, 150
TEMPLATES = sorted((ROOT / "codegen" / "templates").glob("*.j2"))


@pytest.mark.parametrize("path", EVERYTHING, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_functions_are_short(path) -> None:
    tree = ast.parse(path.read_text())
    long = [f"{node.name} ({node.end_lineno - node.lineno + 1} lines)" for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"{path.name}: split {', '.join(long)}"


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_templates_are_short(path) -> None:
    assert len(path.read_text().splitlines()) <= MAX_TEMPLATE_LINES


#: Peers and extras a test may lean on that a test run can lack (PyTorch is a large download); a
#: test that needs one skips alone. (hypothesis, like pytest, is the test runner's own kit.)
OPTIONAL_IN_TESTS = {"torch", "sklearn", "matplotlib", "jax", "nbclient", "ipykernel"}
TEST_MODULES = sorted((ROOT / "tests").glob("*.py"))


@pytest.mark.parametrize("path", TEST_MODULES, ids=lambda p: p.name)
def test_optional_packages_are_not_imported_at_module_level(path) -> None:
    # A module-level `import torch` (or importorskip) makes a whole module error or vanish when
    # torch is missing; tests/helpers.optional and needs_torch make each test skip alone. The one
    # exception is torch_bridge, which only tests that already need torch import.
    if path.name == "torch_bridge.py":
        return
    tree = ast.parse(path.read_text())
    top = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    assert not {name.split(".")[0] for name in imported(ast.Module(body=top, type_ignores=[]))} & OPTIONAL_IN_TESTS
    skips = [n for n in tree.body if "importorskip" in ast.unparse(n) and not isinstance(n, ast.FunctionDef)]
    assert not skips, f"{path.name}: importorskip at module level skips the whole module"
