"""chainrule's derivation engine: specs in, derivations out. Pure functions over immutable data."""

from .derivation import Derivation, derive
from .errors import ChainruleError, FormulaError, SpecError
from .spec import Spec, parse_spec

__all__ = ["ChainruleError", "Derivation", "FormulaError", "Spec", "SpecError", "derive", "parse_spec"]
