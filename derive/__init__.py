"""chainrule's derivation engine: specs in, derivations out. Pure functions over immutable data."""

from chainrule.derive.derivation import Derivation, derive
from chainrule.derive.errors import ChainruleError, FormulaError, SpecError
from chainrule.derive.spec import Spec, parse_spec

__all__ = ["ChainruleError", "Derivation", "FormulaError", "Spec", "SpecError", "derive", "parse_spec"]
