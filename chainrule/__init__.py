"""chainrule: derive, explain, check and generate backpropagation for a network spec.

::

    import chainrule
    spec = chainrule.load("examples/mazur.yaml")  # a path, a dict; text: chainrule.loads(text, format="yaml")
    d = chainrule.derive(spec)                     # d.loss, d.gradients["w5"], d.updated["w5"], d.chain("w5")

Bad input raises :class:`ChainruleError` (a :class:`ValueError`) with the one-line message the
command line prints. The engine is in the subpackages :mod:`chainrule.derive` (the derivation)
and :mod:`chainrule.codegen` (what is written from it); reach their modules with ``from
chainrule.derive.spec import Spec``: the attribute ``chainrule.derive`` is the function.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# Installed, the subpackages derive/ and codegen/ are folders of this package (pyproject.toml maps
# them in). In a source tree they are this folder's siblings: Python started at the tree's root
# (or with it on PYTHONPATH) finds this folder, and the subpackages are looked for beside it.
_TREE = Path(__file__).resolve().parent.parent
if not (Path(__file__).parent / "derive").is_dir() and (_TREE / "derive" / "__init__.py").is_file():
    __path__.append(str(_TREE))

# Imported before the functions: importing the subpackage chainrule.derive sets the attribute
# chainrule.derive once, and the function of that name defined below then takes its place.
from chainrule.derive.errors import ChainruleError

from chainrule.api import check, derive, emit, load, loads, report, train, trainer, verify
from chainrule.results import Chain, Check, Derivation, Factor, History, Verification

__all__ = [
    "Chain", "Check", "ChainruleError", "Derivation", "Factor", "History", "Spec", "Verification", "__version__",
    "check", "derive", "emit", "load", "loads", "report", "train", "trainer", "verify",
]


def __getattr__(name: str) -> Any:
    # Read when first asked for: importlib.metadata and the spec module (sympy) cost time.
    if name == "__version__":
        from chainrule.codegen.version import package_version

        globals()["__version__"] = version = package_version()
        return version
    if name == "Spec":
        from chainrule.derive.spec import Spec

        return Spec
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
