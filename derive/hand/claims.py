"""Claims files (spec.md section 4): hand calculations to verify, read and validated.

A claims file holds an optional ``spec:`` and a list of ``claims``; each claim names what it is
about in ``of`` (``E``, a unit symbol, ``dE/dNAME``, ``NAME+``) and gives a ``value``, a
``formula``, a ``chain`` or several of them, and optionally a ``tolerance`` for its value. Names are
resolved here against the network, with the aliases people use (``h1`` for ``out_h1``, an input
or a target by its own name, ``lr`` and the optimizer's other settings as their values), so that
every error is raised at the border, one line naming the file and the field.

Values are kept as the digits were written (``0.0820`` is judged to four decimals), from the
text of the number in the file (see :func:`~chainrule.derive.documents.load_document`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any, Callable, Mapping

import sympy

from chainrule.derive import naming
from chainrule.derive.documents import load_document
from chainrule.derive.errors import ChainruleError, shown
from chainrule.derive.graph import Graph
from chainrule.derive.network import Network, ParamRef, exact, real_symbol

MAX_CLAIMS = 5_000
MAX_VALUE_DIGITS = 40
MAX_VALUE_EXPONENT = 300
MAX_LISTED = 24

FILE_KEYS = ("spec", "claims", "description")
CLAIM_KEYS = ("of", "value", "formula", "chain", "tolerance", "step", "sample")
#: The most optimizer steps a claim may speak of (``step: N``).
MAX_CLAIM_STEP = 100_000


class TargetKind(Enum):
    LOSS = "loss"
    UNIT = "unit"  # a unit's net or out, an input or a target
    GRADIENT = "gradient"  # dE/dθ for a parameter θ
    UNIT_GRADIENT = "unit_gradient"  # dE/dnet_u or dE/dout_u
    UPDATE = "update"  # θ+ after one optimizer step
    PARAMETER = "parameter"  # θ itself, after ``step: N`` optimizer steps


class Part(Enum):
    """What a claim asserts; one claim may assert several."""

    CHAIN = "chain"
    FORMULA = "formula"
    VALUE = "value"


@dataclass(frozen=True)
class Target:
    """What a claim is about: ``symbol`` is the spec's symbol (the unit, the parameter, E)."""

    kind: TargetKind
    symbol: sympy.Symbol
    param: ParamRef | None = None

    @property
    def label(self) -> str:
        """The spec's own spelling: ``E``, ``out_h1``, ``dE/dw5``, ``w5+``."""
        if self.kind in (TargetKind.GRADIENT, TargetKind.UNIT_GRADIENT):
            return naming.GRADIENT.format(name=self.symbol.name)
        if self.kind is TargetKind.UPDATE:
            return naming.UPDATED.format(name=self.symbol.name)
        return self.symbol.name


@dataclass(frozen=True)
class Literal:
    """A claimed number as written: its text and its exact decimal value."""

    text: str
    value: Decimal


@dataclass(frozen=True)
class Claim:
    """One claim of a file; ``index`` counts from 1, ``field`` is its path (``claims[0]``)."""

    index: int
    field: str
    of: str
    target: Target
    value: Literal | None
    formula: str | None
    chain: str | None
    tolerance: float | None
    step: int | None = None  # the claim is about the network after this many optimizer steps
    sample: int | None = None  # the claim is about this sample of the batch alone (from 1)

    @property
    def parts(self) -> tuple[Part, ...]:
        given = {Part.CHAIN: self.chain, Part.FORMULA: self.formula, Part.VALUE: self.value}
        return tuple(part for part in Part if given[part] is not None)


@dataclass(frozen=True)
class ClaimsFile:
    source: str
    spec: str | None
    claims: tuple[Claim, ...]


class NumberText(float):
    """A float that remembers the digits it was written with."""

    text: str

    def __new__(cls, text: str) -> "NumberText":
        number = super().__new__(cls, text)
        number.text = text.replace("_", "")  # 8_2.167e-3: TOML and YAML separate digits so
        return number


# ---------------------------------------------------------------------------------------------
# Names


def settings(network: Network) -> dict[str, sympy.Expr]:
    """The optimizer's settings (``lr``, ``momentum``, ...) and the L2 penalty's ``l2`` (where the
    loss has one) as their exact values, by name."""
    values = {k: exact(v) for k, v in network.spec.optimizer.hyper}
    if network.spec.loss.l2:
        values[naming.L2] = exact(network.spec.loss.l2)
    return values


def resolve_name(graph: Graph, name: str, values: Mapping[str, sympy.Expr]) -> sympy.Expr | None:
    """What a name in a claimed formula stands for: a unit, input, target, E or parameter (the
    graph's names), a delta ``delta_h1`` (dE/dnet_h1), or one of the optimizer's settings
    ``values`` (:func:`settings`); None for an unknown name."""
    found = graph.symbol_named(name)
    if found is None and name.startswith("delta_") and naming.NET.format(unit=name[len("delta_"):]) in graph.unit_nodes:
        return real_symbol(name)
    return found if found is not None else values.get(name)


def known(graph: Graph) -> list[str]:
    """The names a spec offers, compact: ``E, i1, i2, t1, t2, units h1, h2, o1, o2 (each also
    as net_ and out_), w1 ... w8, b1, b2, lr``."""
    listed = graph.listed() + [k for k, _ in graph.network.spec.optimizer.hyper] + ([naming.L2] if graph.network.spec.loss.l2 else [])
    return listed[:MAX_LISTED] + (["..."] if len(listed) > MAX_LISTED else [])


def unknown(graph: Graph, name: str) -> str:
    """Why ``name`` is unknown, listing the names the spec has; a sequence's unit, input or target
    named without its step (``h1`` for ``h1_t1`` ... ``h1_t2``) is told to give one."""
    at_step = step_hint(graph, name)
    if at_step:
        return f"{at_step} (the spec has: {', '.join(known(graph))})"
    return f"unknown name {name!r} (the spec has: {', '.join(known(graph))})"


def step_hint(graph: Graph, name: str) -> str:
    """``'h1' is at every step of the sequence: give its step, h1_t1 ... h1_t2`` where ``name`` is
    a sequence's unit, input or target without its step; ``""`` otherwise."""
    steps = graph.network.spec.steps
    first = naming.AT_STEP.format(name=name, step=1)
    if not steps or graph.symbol_named(first) is None:
        return ""
    return f"{name!r} is at every step of the sequence: give its step, {first} ... {naming.AT_STEP.format(name=name, step=steps)}"


def initial_hint(graph: Graph, name: str) -> str:
    """``'h1_t0' is h_0, the initial state of layer h: ...`` where ``name`` is an entry of an rnn's
    h_0 (a constant of the spec, not trained); ``""`` otherwise."""
    symbol = graph.names.get(name)
    if symbol is None or symbol not in graph.initial_symbols:
        return ""
    layer = next(l for l in range(1, graph.network.depth + 1) if graph.network.spec.layers[l - 1].is_rnn
                 and symbol in {graph.network.initial(l, j) for j in range(graph.network.sizes[l])})
    layer_name = graph.network.layer_name(layer)
    return (f"{name!r} is h_0, the initial state of layer {layer_name}: a constant of the spec (its initial), not a parameter or "
            f"a unit, and not trained; verify judges no gradient of it (derive prints it, dE_dh0_{layer_name})")


# ---------------------------------------------------------------------------------------------
# Reading a claims file

_GRADIENT = re.compile(r"(?:dE/d|\u2202E/\u2202|dE_d)([A-Za-z_][A-Za-z0-9_]*)")
_UPDATE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:\+|_new|\u207a)")
_DECIMAL = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?", re.ASCII)  # no 1_0, no non-ASCII digits


def parse_target(text: Any, graph: Graph, source: str, field: str, stepped: bool = False) -> Target:
    """The target of ``of``: ``E``, a unit symbol, ``dE/dNAME`` or ``NAME+``; with ``stepped`` (a
    claim with ``step:``), also a parameter's own name (its value after the steps).

    Raises:
        ChainruleError: not a string, or a name the spec does not have.
    """
    if not isinstance(text, str):
        raise ChainruleError(source, field, f"expected what the claim is about (E, a unit such as out_h1, dE/dw5 or w5+), got {shown(text)}")
    written = text.strip()
    network = graph.network
    if match := _GRADIENT.fullmatch(written):
        name = match.group(1)
        ref = network.locate(name)
        if ref is not None:
            return Target(TargetKind.GRADIENT, real_symbol(name), ref)
        symbol = graph.names.get(name)
        # an input of feature maps too: dE/dx_1_2_2 is the full correlation with the flipped kernel
        if symbol is not None and symbol.name in graph.unit_nodes and (graph.unit_nodes[symbol.name][1] > 0 or network.spec.spatial):
            return Target(TargetKind.UNIT_GRADIENT, symbol)
        if initial_hint(graph, name):
            raise ChainruleError(source, field, f"dE/d{name}: {initial_hint(graph, name)}")
        why = step_hint(graph, name) or f"{name!r} is neither"
        raise ChainruleError(source, field, f"dE/d{name}: gradients are claimed for parameters and hidden or output units{' (and inputs of feature maps)' if network.spec.spatial else ''}, and {why} (the spec has: {', '.join(known(graph))})")
    if match := _UPDATE.fullmatch(written):
        name = match.group(1)
        ref = network.locate(name)
        if ref is None:
            raise ChainruleError(source, field, f"{written}: no parameter named {name!r} (the spec has: {', '.join(known(graph))})")
        return Target(TargetKind.UPDATE, real_symbol(name), ref)
    symbol = graph.names.get(written)
    if symbol is None and stepped and network.locate(written) is not None:
        return Target(TargetKind.PARAMETER, real_symbol(written), network.locate(written))
    if symbol is None:
        if network.locate(written) is not None:
            raise ChainruleError(source, field, f"{written!r} is a parameter: claim its gradient (dE/d{written}) or its update ({written}+)")
        raise ChainruleError(source, field, unknown(graph, written))
    kind = TargetKind.LOSS if written == naming.LOSS else TargetKind.UNIT
    if network.spec.steps:  # a target at a step whose targets are null has no value
        outputs = network.sizes[network.depth]
        row = next((r for r in range(network.rows(network.depth)) if network.target(r) == symbol), None)
        if row is not None and row // outputs not in network.loss_steps:
            raise ChainruleError(source, field, f"{written} is a target at step {row // outputs + 1}, where the sample has none (null): "
                                                f"it has no value to claim, and E has no term at that step")
    return Target(kind, symbol)


def parse_literal(value: Any, source: str, field: str) -> Literal:
    """A claimed number, its digits kept as written (a number or a string of one).

    Raises:
        ChainruleError: not a finite decimal number, or too long.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ChainruleError(source, field, f"expected a number, got {shown(value)}")
    text = value.text if isinstance(value, NumberText) else value.strip() if isinstance(value, str) else repr(value)
    if not _DECIMAL.fullmatch(text):
        raise ChainruleError(source, field, f"expected a decimal number such as 0.0821, got {shown(text)}")
    mantissa, _, exponent = text.lower().partition("e")
    if sum(c.isdigit() for c in mantissa) > MAX_VALUE_DIGITS or (exponent and abs(int(exponent)) > MAX_VALUE_EXPONENT):
        raise ChainruleError(source, field, f"expected at most {MAX_VALUE_DIGITS} digits and an exponent of at most {MAX_VALUE_EXPONENT}, got {shown(text)}")
    try:
        return Literal(text, Decimal(text))
    except InvalidOperation:
        raise ChainruleError(source, field, f"expected a decimal number, got {shown(value)}") from None


def _tolerance(value: Any, source: str, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ChainruleError(source, field, f"expected a positive number, got {shown(value)}")
    try:
        tolerance = float(value)  # an int of 400 digits does not fit a float
    except OverflowError:
        tolerance = float("inf")
    if not 0 < tolerance < float("inf"):
        raise ChainruleError(source, field, f"expected a positive finite number, got {shown(value)}")
    return tolerance


def _text(value: Any, source: str, field: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ChainruleError(source, field, f"expected {what} (a string), got {shown(value)}")
    return value


def _claim(raw: Any, i: int, graph: Graph, source: str) -> Claim:
    field = f"claims[{i}]"
    if not isinstance(raw, dict):
        raise ChainruleError(source, field, f"expected a mapping with of: and value:, formula: or chain:, got {shown(raw)}")
    for key in raw:
        if key not in CLAIM_KEYS:
            raise ChainruleError(source, f"{field}.{key}" if isinstance(key, str) else field, f"unknown key (allowed: {', '.join(CLAIM_KEYS)})")
    if "of" not in raw:
        raise ChainruleError(source, field, "missing 'of': what the claim is about (E, out_h1, dE/dw5, w5+)")
    step = _step(raw["step"], source, f"{field}.step") if "step" in raw else None
    target = parse_target(raw["of"], graph, source, f"{field}.of", stepped=step is not None)
    if step is not None and ("formula" in raw or "chain" in raw or "value" not in raw):
        raise ChainruleError(source, field, "a claim with step: is a value after that many steps (of: E, a unit or a parameter, and value:)")
    if step is not None and target.kind not in (TargetKind.LOSS, TargetKind.UNIT, TargetKind.PARAMETER, TargetKind.GRADIENT):
        raise ChainruleError(source, f"{field}.of", f"after step: claim E, a unit, a parameter or its gradient, not {target.label}")
    if not any(k in raw for k in ("value", "formula", "chain")):
        raise ChainruleError(source, field, "expected value:, formula: or chain: (what is claimed)")
    sample = _sample(raw, target, graph.network, source, field, step)
    value = parse_literal(raw["value"], source, f"{field}.value") if "value" in raw else None
    if "tolerance" in raw and value is None:
        raise ChainruleError(source, f"{field}.tolerance", "a tolerance needs a value: to apply to")
    tolerance = _tolerance(raw["tolerance"], source, f"{field}.tolerance") if "tolerance" in raw else None
    formula = _text(raw["formula"], source, f"{field}.formula", "a formula") if "formula" in raw else None
    chain = _text(raw["chain"], source, f"{field}.chain", "a chain of factors such as dE/dout_o1 * dout_o1/dnet_o1") if "chain" in raw else None
    if chain is not None and target.kind not in (TargetKind.GRADIENT, TargetKind.UNIT_GRADIENT):
        raise ChainruleError(source, f"{field}.chain", f"a chain is a claim about a gradient dE/dNAME, not about {target.label}")
    return Claim(i + 1, field, raw["of"].strip(), target, value, formula, chain, tolerance, step, sample)


def _sample(raw: Mapping[str, Any], target: Target, network: Network, source: str, field: str, step: int | None) -> int | None:
    """A claim's ``sample: k`` (from 1), checked against the spec's batch; in a batch of several
    without it, a claim must be about the batch as a whole: E, a gradient or an update, by value.

    Raises:
        ChainruleError: not an integer from 1 to the batch's size; given with ``step:``; absent
            where the claim speaks of one sample's units, or gives a formula or a chain.
    """
    size = max(len(network.spec.batch), 1)
    if "sample" not in raw:
        if size == 1:
            return None
        give = f"give sample: k (1 to {size}) for sample k alone"
        if target.kind in (TargetKind.UNIT, TargetKind.UNIT_GRADIENT):
            raise ChainruleError(source, f"{field}.of", f"{target.label} has a value on each of the {size} samples of the batch: {give}")
        for part in ("formula", "chain"):
            if part in raw:
                raise ChainruleError(source, f"{field}.{part}", f"a {part} is written in one sample's units, and the spec has a batch of {size}: {give} "
                                                                 "(the batch's E, gradients and updates are claimed by value)")
        return None
    value = raw["sample"]
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= size:
        what = "the spec has one sample: sample: 1, or leave it out" if size == 1 else f"the number of a sample of the batch, an integer from 1 to {size}"
        raise ChainruleError(source, f"{field}.sample", f"expected {what}, got {shown(value)}")
    if step is not None:
        raise ChainruleError(source, f"{field}.sample", "a claim with step: is about the batch after that many steps: leave sample: out")
    return value


def _step(value: Any, source: str, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_CLAIM_STEP:
        raise ChainruleError(source, field, f"expected a number of optimizer steps, an integer from 0 to {MAX_CLAIM_STEP:,}, got {shown(value)}")
    return value


def parse_claims(text: str, source: str, fmt: str, network: Network, graph: Graph | None = None, check_spec: Callable[[str], None] | None = None) -> ClaimsFile:
    """Read and validate a claims file against ``network``.

    Args:
        text, source, fmt: the file's text, its name, and ``yaml``, ``toml`` or ``json``.
        graph: the network's :class:`~chainrule.derive.graph.Graph`, whose names claims use
            (built here when not given; share it across files).
        check_spec: called with the file's ``spec:`` before any name is resolved (a file about
            another spec is said to be so, not that the names are unknown).

    Raises:
        ChainruleError: malformed, an unknown key, a name the spec does not have, a value that is
            not a number.
    """
    data = load_document(text, source, fmt, parse_float=NumberText)
    if not isinstance(data, dict):
        raise ChainruleError(source, "", f"expected a mapping with a 'claims' list, got {shown(data)}")
    for key in data:
        if key not in FILE_KEYS:
            raise ChainruleError(source, str(key), f"unknown key (allowed: {', '.join(FILE_KEYS)})")
    spec = data.get("spec")
    if spec is not None and not isinstance(spec, str):
        raise ChainruleError(source, "spec", f"expected the spec's file name, got {shown(spec)}")
    if spec is not None and check_spec is not None:
        check_spec(spec)
    raw = data.get("claims")
    if not isinstance(raw, list) or not raw:
        raise ChainruleError(source, "claims", f"expected a non-empty list of claims, got {shown(raw)}")
    if len(raw) > MAX_CLAIMS:
        raise ChainruleError(source, "claims", f"expected at most {MAX_CLAIMS:,} claims, got {len(raw):,}")
    graph = graph or Graph(network)
    return ClaimsFile(source, spec, tuple(_claim(item, i, graph, source) for i, item in enumerate(raw)))
