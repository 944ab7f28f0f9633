"""chainrule's derivation engine: specs in, derivations out. Pure functions over immutable data.

The names below are imported when first used, so that ``import chainrule`` (which reads
:mod:`chainrule.derive.errors`) does not import sympy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chainrule.derive.derivation import Derivation, derive
    from chainrule.derive.errors import ChainruleError, FormulaError, SpecError
    from chainrule.derive.spec import Spec, parse_spec

#: Each exported name and the module that defines it.
_EXPORTS = {
    "ChainruleError": "errors", "FormulaError": "errors", "SpecError": "errors",
    "Derivation": "derivation", "derive": "derivation",
    "Spec": "spec", "parse_spec": "spec",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
