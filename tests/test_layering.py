"""derive/ is pure: it never imports codegen or jinja2, never prints or opens files, and nothing
in the package evaluates strings (eval, exec, sympify, parse_expr, lambdify). The public API
(chainrule/: ``import chainrule``) sits on top: it imports derive and codegen, they never import it."""

from __future__ import annotations

import ast

import pytest

from helpers import ROOT

DERIVE = sorted((ROOT / "derive").rglob("*.py"))
API = sorted((ROOT / "chainrule").glob("*.py"))
EVERYTHING = DERIVE + sorted((ROOT / "codegen").rglob("*.py")) + API
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
TEMPLATES = sorted((ROOT / "codegen").rglob("*.j2"))


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


def _module_name(path) -> str:
    relative = path.relative_to(ROOT).with_suffix("")
    parts = list(relative.parts[:-1] if relative.name == "__init__" else relative.parts)
    return ".".join(parts if parts[0] == "chainrule" else ["chainrule", *parts])


def import_graph() -> dict[str, set[str]]:
    """Every module of the package and the package modules it imports, anywhere in its body
    (an import inside a function is still a dependency; one under TYPE_CHECKING is not run)."""
    modules = {_module_name(path): path for path in EVERYTHING}
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        targets = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                node.body = []
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
                # `from package import module` depends on the module; `from module import name` on it
                candidates = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            elif isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            else:
                continue
            targets.update(c for c in candidates if c in modules and c != name)
        graph[name] = targets
    return graph


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph()
    visiting, done, cycles = [], set(), []

    def visit(module: str) -> None:
        if module in done:
            return
        if module in visiting:
            cycles.append(visiting[visiting.index(module):] + [module])
            return
        visiting.append(module)
        for target in sorted(graph[module]):
            visit(target)
        visiting.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_derive_never_imports_codegen() -> None:
    graph = import_graph()
    assert len(graph) > 40  # the walk found the package
    leaks = {m: sorted(t for t in ts if t.startswith("chainrule.codegen")) for m, ts in graph.items() if m.startswith("chainrule.derive")}
    assert not {m: t for m, t in leaks.items() if t}


def test_the_api_sits_on_top() -> None:
    graph = import_graph()
    api = {_module_name(path) for path in API}
    assert {"chainrule", "chainrule.api", "chainrule.results"} <= api
    below = {m: sorted(t & api) for m, t in graph.items() if m not in api}
    assert not {m: t for m, t in below.items() if t}, "derive/ and codegen/ never import the API"
    assert any(t.startswith("chainrule.codegen") for t in graph["chainrule.api"])


def test_every_package_is_installed() -> None:
    # a subpackage missing from pyproject's list imports from the source tree but not once installed
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {_module_name(path) for path in EVERYTHING if path.name == "__init__.py"}
    assert found == listed
