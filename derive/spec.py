"""The network spec: a frozen, typed model, and its validation against an allow-list.

:func:`parse_spec` reads spec text (YAML, TOML or JSON, the same fields in each) and returns a
:class:`Spec`, or raises a :class:`~chainrule.derive.errors.SpecError` naming the file, the field
path (``layers[1].activation``) and what was expected. Every key is checked against the keys its
place allows, every value against a type and a range, and every name against
:func:`~chainrule.derive.naming.identifier_problem`.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass
from enum import Enum
from typing import Any, Iterable, Mapping, Sequence

import sympy

from chainrule.derive import naming
from chainrule.derive.counts import count as counted
from chainrule.derive.documents import load_document
from chainrule.derive.errors import ChainruleError, FormulaError, SpecError, shown
from chainrule.derive.formula import format_expr, node_count, not_real, parse_formula, to_sympy, tree_size
from chainrule.derive.numeric import UnsupportedExpression, compile_expr
from chainrule.derive.optimizers import OPTIMIZERS
from chainrule.derive.registry import ACTIVATIONS, LOSSES, UNIT, T, X, Y, to_step_form
from chainrule.derive.sequences import RNN_KIND, SequenceReader
from chainrule.derive.windows import CONV_KINDS, SPATIAL_KINDS, SpatialReader, Window

MAX_UNITS = 100_000
MAX_LAYERS = 64
MAX_PARAMETERS = 20_000_000
MAX_SEED = 2**32 - 1
MAX_DESCRIPTION = 2_000
DISTRIBUTION_TOLERANCE = 1e-12  # float rounding of decimals such as 0.1 + 0.2 + 0.7, no more
MAX_FORMULA_NODES = 400  # an activation or loss formula; the registry's largest (gelu) has 23
MAX_DERIVATIVE_NODES = 4_000  # and its derivative (a product of 60 max() has 18,000)


class BiasMode(Enum):
    PER_UNIT = "per_unit"
    SHARED = "shared"
    NONE = "none"
    PER_CHANNEL = "per_channel"  # a convolution's: one bias per output channel


class Naming(Enum):
    SEQUENTIAL = "sequential"
    INDEXED = "indexed"


@dataclass(frozen=True)
class ActivationSpec:
    """A registry activation with its parameters, or a formula in ``x``.

    ``name`` is the registry name, or ``formula`` with ``formula`` the text and ``expression``
    its sympy expression in :data:`~chainrule.derive.registry.X`.
    """

    name: str
    params: tuple[tuple[str, float], ...] = ()
    formula: str | None = None
    expression: sympy.Expr | None = None


@dataclass(frozen=True)
class LossSpec:
    """A registry loss, or a per-output formula in ``y`` and ``t`` (summed over the outputs).

    ``l2`` (>= 0, 0 for none) adds the penalty ``l2/2 * (sum of the squared weights)`` to E, once
    for the whole batch after the reduction; biases are not penalised."""

    name: str
    formula: str | None = None
    expression: sympy.Expr | None = None
    l2: float = 0.0


@dataclass(frozen=True)
class LayerSpec:
    name: str
    units: tuple[str, ...]
    activation: ActivationSpec
    bias: BiasMode
    weights: tuple[tuple[float, ...], ...] | None
    biases: tuple[float, ...] | None
    weight_names: tuple[tuple[str, ...], ...] | None
    bias_names: tuple[str, ...] | None
    freeze: tuple[str, ...]
    kind: str = "dense"
    window: Window | None = None
    recurrent: tuple[tuple[float, ...], ...] | None = None  # an rnn's U [units][units], if given
    initial: tuple[float, ...] | None = None  # an rnn's h_0, if given (else zeros)

    @property
    def is_rnn(self) -> bool:
        """True for a recurrent layer (``kind: rnn``): h_t = f(W x_t + U h_(t-1) + b)."""
        return self.kind == RNN_KIND

    @property
    def bias_count(self) -> int:
        channels = self.window.channels if self.window is not None else 0
        return {BiasMode.PER_UNIT: len(self.units), BiasMode.SHARED: 1, BiasMode.NONE: 0, BiasMode.PER_CHANNEL: channels}[self.bias]

    @property
    def has_parameters(self) -> bool:
        """False for a layer without weights (``kind: activation``, a pool, a flatten)."""
        return self.kind in PARAMETER_KINDS

    def weight_shape(self, before: int) -> tuple[int, ...]:
        """The weights' array after a layer of ``before`` units: [units, before] (dense), the
        kernel [out, in, kh, kw] ([out, in, k] for conv1d), or () without weights. An rnn's W and
        U side by side, [units, before + units]: its values are held so (its parameters, their
        names, steps and checks are a dense layer's), and the layer program splits them."""
        if not self.has_parameters:
            return ()
        if self.is_rnn:
            return (len(self.units), before + len(self.units))
        return self.window.kernel_shape if self.window is not None else (len(self.units), before)

    def weight_count(self, before: int) -> int:
        """How many weights the layer has after a layer of ``before`` units (none without weights)."""
        return math.prod(self.weight_shape(before)) if self.has_parameters else 0


@dataclass(frozen=True)
class Sample:
    x: tuple[float, ...]
    t: tuple[float, ...]


@dataclass(frozen=True)
class GroupSpec:
    """``optimizer.groups[i]``: settings of their own for the parameters named, as PyTorch's
    parameter groups. ``params`` holds parameter names (``w5``), matrix names (``W1``, ``b2``),
    a layer's ``h.weights`` or ``h.biases``, and the words ``weights`` and ``biases``; ``hyper``
    the settings it overrides."""

    params: tuple[str, ...]
    hyper: tuple[tuple[str, float], ...]


#: The words a group's ``params`` may use for every weight or every bias of the network.
GROUP_WORDS = ("weights", "biases")


@dataclass(frozen=True)
class OptimizerSpec:
    kind: str
    hyper: tuple[tuple[str, float], ...]
    groups: tuple[GroupSpec, ...] = ()

    def value(self, name: str) -> float:
        return dict(self.hyper)[name]


@dataclass(frozen=True)
class DataSpec:
    path: str
    inputs: tuple[str, ...] | None
    targets: tuple[str, ...] | None


@dataclass(frozen=True)
class Spec:
    """A validated network spec; docs/spec-format.md describes the fields."""

    source: str
    name: str
    description: str
    inputs: tuple[str, ...]
    layers: tuple[LayerSpec, ...]
    targets: tuple[str, ...]
    loss: LossSpec
    naming: Naming
    sample: Sample | None
    optimizer: OptimizerSpec
    seed: int
    data: DataSpec | None
    samples: tuple[Sample, ...] = ()
    reduction: str = "mean"
    input_shape: tuple[int, ...] | None = None
    steps: int = 0

    @property
    def sequence(self) -> bool:
        """True where every sample is a sequence of :attr:`steps` steps (the network has an rnn)."""
        return self.steps > 0

    @property
    def spatial(self) -> bool:
        """True where the inputs are feature maps (``inputs: {shape: [C, H, W]}``): the network
        has convolution, pooling or flatten layers."""
        return self.input_shape is not None

    @property
    def batch(self) -> tuple[Sample, ...]:
        """The samples every number is computed on: ``samples``, or the one ``sample`` (empty
        when the spec gives neither and a sample is drawn from the seed)."""
        return self.samples or ((self.sample,) if self.sample is not None else ())

    @property
    def sizes(self) -> tuple[int, ...]:
        """Units per layer, inputs first."""
        return (len(self.inputs),) + tuple(len(layer.units) for layer in self.layers)

    @property
    def parameter_count(self) -> int:
        return sum(layer.weight_count(before) + layer.bias_count for layer, before in zip(self.layers, self.sizes))


TOP_KEYS = ("name", "description", "inputs", "steps", "layers", "targets", "loss", "naming", "sample", "samples", "reduction", "optimizer", "seed", "data")
#: How the per-sample losses of a batch make E, as PyTorch's ``reduction``.
REDUCTIONS = ("mean", "sum")
#: The most samples a spec's batch may hold (each is shown, per sample, in the derivation).
MAX_SAMPLES = 64
LAYER_KEYS = ("name", "kind", "units", "activation", "bias", "weights", "biases", "weight_names", "bias_names", "freeze")
#: A layer's ``kind``: ``dense`` (weighted sums, then the activation; the default) or
#: ``activation`` (no parameters: the activation applied to the outputs of the layer before).
LAYER_KINDS = ("dense", "activation") + SPATIAL_KINDS + (RNN_KIND,)
ACTIVATION_KIND = "activation"
#: The kinds whose layers have weights.
PARAMETER_KINDS = ("dense",) + CONV_KINDS + (RNN_KIND,)
#: The keys a ``kind: activation`` layer takes.
ACTIVATION_LAYER_KEYS = ("name", "kind", "units", "activation")
DEFAULT_OPTIMIZER = {"kind": "sgd", "lr": 0.1}


def one_line(text: str) -> str:
    """A formula's text as it is shown (summaries, comments, reports): every run of white space,
    line breaks included, one space (``x\n*2`` is ``x *2``, as a YAML block may fold it)."""
    return " ".join(text.split())


def parse_spec(text: str, source: str, fmt: str) -> Spec:
    """Validate spec text into a :class:`Spec`.

    Args:
        text: the file's text.
        source: the file name, quoted in errors.
        fmt: ``yaml``, ``toml`` or ``json``.

    Raises:
        SpecError: the first problem found, naming the field path and what was expected.
    """
    try:
        data = load_document(text, source, fmt)
    except SpecError:
        raise
    except ChainruleError as error:
        raise SpecError(error.source, error.field, error.message) from None
    return spec_from_data(data, source)


def spec_from_data(data: Any, source: str) -> Spec:
    """Validate already-parsed data (dicts, lists, strings, numbers) into a :class:`Spec`."""
    return _Reader(source).spec(data)


def suggest(word: str, options: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest option, or ``""``.

    Case is ignored in the comparison (``Sigmoid`` finds ``sigmoid``, ``SGD`` finds ``sgd``); the
    option is shown as it is spelled.
    """
    spelled = {}
    for option in options:
        spelled.setdefault(str(option).lower(), str(option))
    close = difflib.get_close_matches(str(word).lower(), list(spelled), n=1, cutoff=0.6)
    return f" (did you mean {spelled[close[0]]!r}?)" if close else ""


class _Reader:
    """Reads one spec: small typed accessors that raise with the field path."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.spatial = SpatialReader(self)
        self.sequences = SequenceReader(self)
        self.input_shape: tuple[int, ...] | None = None
        self.steps = 0

    def fail(self, path: str, message: str) -> SpecError:
        return SpecError(self.source, path, message)

    # -- generic accessors --------------------------------------------------------------------

    def mapping(self, value: Any, path: str, allowed: Sequence[str], required: Sequence[str] = ()) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            what = "an empty document" if value is None and not path else type(value).__name__
            raise self.fail(path, f"expected a mapping with keys {', '.join(allowed)}; got {what}")
        for key in value:
            if key not in allowed:
                where = f"{path}.{key}" if path else str(key)
                raise self.fail(where, f"unknown key {shown(key)}{suggest(key, allowed)}; allowed: {', '.join(allowed)}")
        for key in required:
            if key not in value:
                raise self.fail(f"{path}.{key}" if path else key, "required but missing")
        return value

    def number(self, value: Any, path: str, low: float = -math.inf, high: float = math.inf) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(path, f"expected a number, got {shown(value)}")
        try:
            result = float(value)
        except OverflowError:
            raise self.fail(path, f"expected a finite number, got an integer of {len(str(value))} digits") from None
        if not math.isfinite(result):
            raise self.fail(path, f"expected a finite number, got {result!r}")
        if not low <= result <= high:
            raise self.fail(path, f"expected a number in [{low:g}, {high:g}], got {result!r}")
        return result

    def integer(self, value: Any, path: str, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"expected an integer, got {shown(value)}")
        if not low <= value <= high:
            raise self.fail(path, f"expected an integer in [{low:,}, {high:,}], got {shown(value)}")
        return value

    def name(self, value: Any, path: str) -> str:
        problem = naming.identifier_problem(value)
        if problem:
            raise self.fail(path, problem)
        return value

    def choice(self, value: Any, path: str, options: Sequence[str], what: str) -> str:
        if not isinstance(value, str) or value not in options:
            hint = suggest(value, options) if isinstance(value, str) else ""
            raise self.fail(path, f"unknown {what} {shown(value)}{hint}; expected one of {', '.join(options)}")
        return value

    def sequence(self, value: Any, path: str, length: int | None = None, what: str = "a list") -> list[Any]:
        """A list; ``what`` says what is expected, its length included where one is required."""
        if not isinstance(value, list):
            raise self.fail(path, f"expected {what}, got {shown(value)}")
        if length is not None and len(value) != length:
            raise self.fail(path, f"expected {what}, got {counted(len(value), 'entry')}")
        return value

    def numbers(self, value: Any, path: str, length: int) -> tuple[float, ...]:
        items = self.sequence(value, path, length, f"a list of {counted(length, 'number')}")
        return tuple(self.number(v, f"{path}[{i}]") for i, v in enumerate(items))

    def names(self, value: Any, path: str, length: int | None = None) -> tuple[str, ...]:
        what = "a list of names" if length is None else f"a list of {counted(length, 'name')}"
        items = self.sequence(value, path, length, what)
        return tuple(self.name(v, f"{path}[{i}]") for i, v in enumerate(items))

    def table(self, value: Any, path: str, rows: int, cols: int, cell: Any) -> tuple[tuple[Any, ...], ...]:
        """A ``rows`` x ``cols`` nested list, each cell read by ``cell(value, path)``."""
        outer = self.sequence(value, path, rows, f"a list of {counted(rows, 'row')}, one per unit of this layer")
        result = []
        for r, row in enumerate(outer):
            inner = self.sequence(row, f"{path}[{r}]", cols, f"a row of {counted(cols, 'entry')}, one per unit of the layer before")
            result.append(tuple(cell(v, f"{path}[{r}][{c}]") for c, v in enumerate(inner)))
        return tuple(result)

    # -- the spec -----------------------------------------------------------------------------

    def spec(self, data: Any) -> Spec:
        top = self.mapping(data, "", TOP_KEYS, ("name", "inputs", "layers", "loss"))
        name = top["name"]
        problem = naming.module_name_problem(name)
        if problem:
            raise self.fail("name", problem)
        description = top.get("description", "")
        if not isinstance(description, str):
            raise self.fail("description", f"expected text, got {shown(description)}")
        if len(description) > MAX_DESCRIPTION:
            raise self.fail("description", f"expected text of at most {MAX_DESCRIPTION:,} characters, got {len(description):,}")
        self.input_shape = self.spatial.input_shape(top["inputs"])
        inputs = self.spatial.input_names(self.input_shape) if self.input_shape else self.inputs(top["inputs"])
        self.steps = self.sequences.steps(top)
        if isinstance(top["layers"], list):
            self.sequences.check_order(top["layers"], self.steps, self.input_shape is not None)
        layers = self.layers(top["layers"], len(inputs))
        sizes = [len(inputs)] + [len(layer.units) for layer in layers]
        count = sum(layer.weight_count(before) + layer.bias_count for layer, before in zip(layers, sizes))
        if count > MAX_PARAMETERS:
            raise self.fail("layers", f"expected at most {MAX_PARAMETERS:,} parameters, got {count:,}")
        outputs = len(layers[-1].units)
        targets = self.targets(top.get("targets"), outputs)
        loss = self.loss(top["loss"], layers[-1])
        spec = Spec(
            source=self.source,
            name=name,
            description=description,
            inputs=inputs,
            layers=layers,
            targets=targets,
            loss=loss,
            naming=Naming(self.choice(top.get("naming", "sequential"), "naming", [n.value for n in Naming], "naming")),
            sample=self.sample(top.get("sample"), len(inputs), outputs, loss),
            samples=self.samples(top, len(inputs), outputs, loss),
            reduction=self.choice(top.get("reduction", "mean"), "reduction", REDUCTIONS, "reduction"),
            optimizer=self.optimizer(top.get("optimizer", DEFAULT_OPTIMIZER)),
            seed=self.integer(top.get("seed", 0), "seed", 0, MAX_SEED),
            data=self.data(top.get("data"), len(inputs), outputs),
            input_shape=self.input_shape,
            steps=self.steps,
        )
        if spec.sequence:
            if spec.data is not None and not spec.data.path.lower().endswith(".npz"):
                raise self.fail("data.path", f"expected a .npz file of sequences (X [samples, {spec.steps}, inputs], T [samples, {spec.steps}, outputs], "
                                             f"nan at a step without targets): a .csv holds one row per sample, got {shown(spec.data.path)}")
            self.sequences.check_some_loss(spec.batch, "samples" if spec.samples else "sample.t")
        self.check_unique_names(spec)
        return spec

    def inputs(self, value: Any) -> tuple[str, ...]:
        if isinstance(value, int) and not isinstance(value, bool):
            count = self.integer(value, "inputs", 1, MAX_UNITS)
            return tuple(naming.INPUT_DEFAULT.format(n=n) for n in range(1, count + 1))
        if not isinstance(value, list) or not value:
            raise self.fail("inputs", f"expected a count of inputs or a non-empty list of their names, got {shown(value)}")
        if len(value) > MAX_UNITS:
            raise self.fail("inputs", f"expected at most {MAX_UNITS:,} inputs, got {len(value):,}")
        return self.names(value, "inputs")

    def layers(self, value: Any, inputs: int) -> tuple[LayerSpec, ...]:
        items = self.sequence(value, "layers", what="a non-empty list of layers")
        if not items or len(items) > MAX_LAYERS:
            raise self.fail("layers", f"expected 1 to {MAX_LAYERS} layers, got {len(items)}")
        layers: list[LayerSpec] = []
        before, shape = inputs, self.input_shape
        for i, item in enumerate(items):
            path, below = f"layers[{i}]", f"layer {layers[-1].name}" if layers else "the inputs"
            kind = item.get("kind", "dense") if isinstance(item, dict) else "dense"
            self.spatial.check_order(kind, path, shape, below)
            if kind in SPATIAL_KINDS and isinstance(kind, str):
                layer = self.spatial.layer(item, path, shape, below)
                shape = layer.window.out_shape if layer.window is not None else None
            elif kind == RNN_KIND:
                layer = self.sequences.layer(item, path, before)
            else:
                layer = self.layer(item, path, before, below)
            layers.append(layer)
            before = len(layer.units)
        if shape is not None:
            raise self.fail(f"layers[{len(items) - 1}]", f"the network ends on feature maps of shape {list(shape)}; expected a flatten, then dense layers")
        if layers[-1].kind == "flatten":  # its outputs are the maps' values: no layer of outputs to take a loss of
            raise self.fail(f"layers[{len(items) - 1}]", "the network ends on a flatten; expected dense layers after it (the outputs the loss compares with the targets)")
        if not any(layer.has_parameters for layer in layers):
            raise self.fail("layers", "expected at least one layer with weights (dense, conv1d, conv2d or rnn): without parameters there is no gradient to derive")
        return tuple(layers)

    def layer(self, value: Any, path: str, before: int, below: str = "the inputs") -> LayerSpec:
        kind = self.choice(value.get("kind", "dense"), f"{path}.kind", LAYER_KINDS, "layer kind") if isinstance(value, dict) else "dense"
        if kind == ACTIVATION_KIND:
            return self.activation_layer(value, path, before, below)
        raw = self.mapping(value, path, LAYER_KEYS, ("name", "units", "activation"))
        name = self.name(raw["name"], f"{path}.name")
        units = self.units(raw["units"], f"{path}.units", name)
        bias = BiasMode(self.choice(raw.get("bias", "per_unit"), f"{path}.bias", [b.value for b in BiasMode if b is not BiasMode.PER_CHANNEL], "bias mode"))
        count = {BiasMode.PER_UNIT: len(units), BiasMode.SHARED: 1, BiasMode.NONE: 0}[bias]
        return LayerSpec(
            name=name,
            units=units,
            activation=self.activation(raw["activation"], f"{path}.activation"),
            bias=bias,
            weights=self.optional_table(raw, "weights", path, len(units), before, self.number),
            biases=self.biases(raw.get("biases"), f"{path}.biases", count, bias),
            weight_names=self.optional_table(raw, "weight_names", path, len(units), before, self.name),
            bias_names=None if raw.get("bias_names") is None else self.bias_names(raw["bias_names"], f"{path}.bias_names", count),
            freeze=self.freeze(raw.get("freeze", []), f"{path}.freeze"),
        )

    def layer_spec(self, name: str, units: tuple[str, ...], kind: str, window: Window | None = None, activation: ActivationSpec | None = None,
                   bias: str = "none", weights: Any = None, biases: Any = None, freeze: tuple[str, ...] = (),
                   names: tuple[Any, Any] = (None, None)) -> LayerSpec:
        """A convolution's, pool's or flatten's :class:`LayerSpec` (:mod:`chainrule.derive.windows`
        reads their fields); a pool or flatten has no activation (identity) and no parameters.
        ``names``: a kernel's ``weight_names`` (a row per output channel) and ``bias_names``."""
        return LayerSpec(name=name, units=units, activation=activation or ActivationSpec("identity"), bias=BiasMode(bias), weights=weights,
                         biases=biases, weight_names=names[0], bias_names=names[1], freeze=freeze, kind=kind, window=window)

    def activation_layer(self, value: Mapping[str, Any], path: str, before: int, below: str) -> LayerSpec:
        """A layer without weights (``kind: activation``): its name, its activation and, where
        given, its units (a count or names, as many as the layer before has: ``below``)."""
        for key in value:
            if key not in ACTIVATION_LAYER_KEYS and key in LAYER_KEYS:
                raise self.fail(f"{path}.{key}", f"a layer of kind: activation has no parameters, so no {key}; it takes {', '.join(ACTIVATION_LAYER_KEYS)}")
        raw = self.mapping(value, path, ACTIVATION_LAYER_KEYS, ("name", "activation"))
        name = self.name(raw["name"], f"{path}.name")
        units = self.units(raw.get("units", before), f"{path}.units", name)
        if len(units) != before:
            raise self.fail(f"{path}.units", f"a layer of kind: activation has as many units as the layer before ({below}: {before}), got {len(units)}")
        return LayerSpec(name=name, units=units, activation=self.activation(raw["activation"], f"{path}.activation"), bias=BiasMode.NONE,
                         weights=None, biases=None, weight_names=None, bias_names=None, freeze=(), kind=ACTIVATION_KIND)

    def units(self, value: Any, path: str, layer: str) -> tuple[str, ...]:
        if isinstance(value, int) and not isinstance(value, bool):
            count = self.integer(value, path, 1, MAX_UNITS)
            return tuple(naming.unit_name(layer, n) for n in range(1, count + 1))
        if not isinstance(value, list) or not value or len(value) > MAX_UNITS:
            raise self.fail(path, f"expected a count of units (1 to {MAX_UNITS:,}) or a non-empty list of their names, got {shown(value)}")
        return self.names(value, path)

    def optional_table(self, raw: Mapping[str, Any], key: str, path: str, rows: int, cols: int, cell: Any) -> Any:
        if raw.get(key) is None:
            return None
        return self.table(raw[key], f"{path}.{key}", rows, cols, cell)

    def biases(self, value: Any, path: str, count: int, mode: BiasMode) -> tuple[float, ...] | None:
        if value is None:
            return None
        if count == 0:
            raise self.fail(path, "given, but the layer has bias: none")
        if mode is BiasMode.SHARED and not isinstance(value, list):
            return (self.number(value, path),)
        what = "a list of one shared bias" if mode is BiasMode.SHARED else f"a list of {counted(count, 'bias', 'biases')}, one per unit"
        items = self.sequence(value, path, count, what)
        return tuple(self.number(v, f"{path}[{i}]") for i, v in enumerate(items))

    def bias_names(self, value: Any, path: str, count: int) -> tuple[str, ...]:
        if count == 0:
            raise self.fail(path, "given, but the layer has bias: none")
        return self.names(value, path, count)

    def freeze(self, value: Any, path: str) -> tuple[str, ...]:
        items = self.sequence(value, path, what="a list of 'weights' and/or 'biases'")
        return tuple(sorted({self.choice(v, f"{path}[{i}]", ("weights", "biases"), "freeze entry") for i, v in enumerate(items)}))

    def activation(self, value: Any, path: str) -> ActivationSpec:
        if isinstance(value, str):
            self.choice(value, path, list(ACTIVATIONS), "activation")
            return ActivationSpec(value, self.activation_params(value, {}, path))
        if isinstance(value, dict) and "formula" in value:
            self.mapping(value, path, ("formula",))
            expr = self.formula(value["formula"], f"{path}.formula", {"x": X}, X)
            return ActivationSpec("formula", (), one_line(value["formula"]), expr)
        if isinstance(value, dict) and "name" in value:
            kind = self.choice(value["name"], f"{path}.name", list(ACTIVATIONS), "activation")
            self.mapping(value, path, ("name",) + tuple(ACTIVATIONS[kind].params))
            return ActivationSpec(kind, self.activation_params(kind, value, path))
        raise self.fail(path, f"expected an activation name ({', '.join(ACTIVATIONS)}), {{name: ..., alpha: ...}} or {{formula: ...}} in x; got {shown(value)}")

    def activation_params(self, kind: str, given: Mapping[str, Any], path: str) -> tuple[tuple[str, float], ...]:
        defaults = ACTIVATIONS[kind].params
        values = []
        for key, default in defaults.items():
            value = self.number(given.get(key, default), f"{path}.{key}")
            if not 0 < value <= 10:
                raise self.fail(f"{path}.{key}", f"expected a number in (0, 10], got {value!r}")
            values.append((key, value))
        return tuple(values)

    def formula(self, value: Any, path: str, names: Mapping[str, sympy.Expr], needed: sympy.Symbol) -> sympy.Expr:
        too_big = f"expected a formula of at most {MAX_FORMULA_NODES} terms and operations, got more"
        try:
            tree = parse_formula(value, source=self.source, field=path)
            if node_count(tree) > MAX_FORMULA_NODES:  # before sympy spends any time on it
                raise self.fail(path, too_big)
            expr = to_sympy(tree, names, text=str(value), source=self.source, field=path)
        except FormulaError as error:
            raise SpecError(error.source, error.field, error.message) from None
        if needed not in expr.free_symbols:
            raise self.fail(path, f"the formula does not use {needed.name}")
        if tree_size(expr, MAX_FORMULA_NODES + 1) > MAX_FORMULA_NODES:
            raise self.fail(path, too_big)
        derivative = sympy.diff(expr, needed)
        if tree_size(derivative, MAX_DERIVATIVE_NODES + 1) > MAX_DERIVATIVE_NODES:
            raise self.fail(path, f"the formula's derivative has more than {MAX_DERIVATIVE_NODES:,} terms and operations; write a simpler formula")
        problem = not_real(expr) or not_real(derivative)
        if problem:
            raise self.fail(path, f"expected a formula with real values, got {shown(value)}: {problem}")
        if derivative.has(sympy.Derivative, sympy.Subs):
            raise self.fail(path, f"expected a formula sympy can differentiate in closed form, got {shown(value)}: its derivative holds {format_expr(next(iter(derivative.atoms(sympy.Derivative, sympy.Subs))))}")
        try:  # every node must have a NumPy form, before anything is derived from it
            compile_expr(to_step_form(expr)), compile_expr(to_step_form(derivative))
        except UnsupportedExpression as error:
            raise self.fail(path, f"expected a formula chainrule can compute, got {shown(value)}: {error}") from None
        return expr

    def loss(self, value: Any, output: LayerSpec) -> LossSpec:
        """``loss``: a registry name, ``{kind: name, l2: lambda}`` or ``{formula: ..., l2: lambda}``."""
        if isinstance(value, dict) and "formula" in value:
            self.mapping(value, "loss", ("formula", "l2"), ("formula",))
            expr = self.formula(value["formula"], "loss.formula", {"y": Y, "t": T}, Y)
            return LossSpec("formula", one_line(value["formula"]), expr, self.l2(value))
        if isinstance(value, dict):
            self.mapping(value, "loss", ("kind", "formula", "l2"), ("kind",))
            kind = self.choice(value["kind"], "loss.kind", list(LOSSES), "loss")
            return dataclasses.replace(self.loss(kind, output), l2=self.l2(value))
        name = self.choice(value, "loss", list(LOSSES), "loss")
        definition = LOSSES[name]
        activation = output.activation
        bounded = activation.name == "formula" or ACTIVATIONS[activation.name].output_range == UNIT
        if definition.needs_unit_outputs and not bounded:
            raise self.fail("loss", f"{name} needs outputs in (0, 1), so an output activation sigmoid or softmax; the output layer has {activation.name}")
        return LossSpec(name)

    def l2(self, raw: Mapping[str, Any]) -> float:
        """``loss.l2``: a finite number >= 0 (0, the default, is no penalty)."""
        value = self.number(raw.get("l2", 0.0), "loss.l2")
        if value < 0:
            raise self.fail("loss.l2", f"expected a number >= 0 (the L2 penalty's lambda; 0 for none), got {value!r}")
        return value

    def targets(self, value: Any, outputs: int) -> tuple[str, ...]:
        if value is None:
            return tuple(naming.TARGET_DEFAULT.format(n=n) for n in range(1, outputs + 1))
        return self.names(value, "targets", outputs)

    def sample(self, value: Any, inputs: int, outputs: int, loss: LossSpec, path: str = "sample") -> Sample | None:
        if value is None:
            return None
        raw = self.mapping(value, path, ("x", "t"), ("x", "t"))
        if self.steps:
            check = lambda t, where: self.check_targets(t, where, loss)  # noqa: E731
            return Sample(self.sequences.sample_x(raw["x"], f"{path}.x", self.steps, inputs),
                          self.sequences.sample_t(raw["t"], f"{path}.t", self.steps, outputs, check))
        x = self.spatial.sample_x(raw["x"], f"{path}.x", self.input_shape) if self.input_shape else self.numbers(raw["x"], f"{path}.x", inputs)
        sample = Sample(x, self.numbers(raw["t"], f"{path}.t", outputs))
        self.check_targets(sample.t, f"{path}.t", loss)
        return sample

    def samples(self, top: Mapping[str, Any], inputs: int, outputs: int, loss: LossSpec) -> tuple[Sample, ...]:
        """``samples:``, a batch: a list of {x, t}; a spec has ``sample:`` or ``samples:``."""
        if "samples" not in top:
            return ()
        if "sample" in top:
            raise self.fail("samples", "a spec has sample: (one) or samples: (a batch), not both")
        items = self.sequence(top["samples"], "samples", what="a list of samples, each {x: [...], t: [...]}")
        if not 1 <= len(items) <= MAX_SAMPLES:
            raise self.fail("samples", f"expected 1 to {MAX_SAMPLES} samples, got {len(items)}")
        return tuple(self.sample(item, inputs, outputs, loss, f"samples[{i}]") for i, item in enumerate(items))

    def check_targets(self, t: Sequence[float], path: str, loss: LossSpec) -> None:
        kind = LOSSES[loss.name].targets if loss.name in LOSSES else "real"
        if kind in ("unit", "distribution") and any(not 0 <= v <= 1 for v in t):
            raise self.fail(path, f"{loss.name} needs targets in [0, 1], got {list(t)}")
        if kind == "distribution" and abs(math.fsum(t) - 1) > DISTRIBUTION_TOLERANCE:
            raise self.fail(path, f"{loss.name} needs targets that sum to 1 (one-hot or probabilities), got a sum of {math.fsum(t)!r}")

    def optimizer(self, value: Any) -> OptimizerSpec:
        raw = {"kind": value} if isinstance(value, str) else value
        if not isinstance(raw, dict):
            raise self.fail("optimizer", f"expected an optimizer name or a mapping of kind and hyper-parameters, got {shown(value)}")
        if "kind" not in raw:
            raise self.fail("optimizer.kind", f"required but missing; expected one of {', '.join(OPTIMIZERS)}")
        kind = self.choice(raw["kind"], "optimizer.kind", list(OPTIMIZERS), "optimizer")
        definition = OPTIMIZERS[kind]
        self.mapping(raw, "optimizer", ("kind",) + tuple(definition.hyper) + ("groups",))
        hyper = tuple((key, self.setting(raw.get(key, spec.default), kind, key, "optimizer")) for key, spec in definition.hyper.items())
        groups = self.sequence(raw.get("groups", []), "optimizer.groups", what="a list of groups, each {params: [...], setting: value}")
        return OptimizerSpec(kind, hyper, tuple(self.group(g, kind, f"optimizer.groups[{i}]") for i, g in enumerate(groups)))

    def group_member(self, value: Any, path: str) -> str:
        """A name in a group's ``params``: a name, or ``LAYER.weights`` / ``LAYER.biases``."""
        layer, dot, word = value.partition(".") if isinstance(value, str) else (value, "", "")
        if dot and word not in GROUP_WORDS:
            raise self.fail(path, f"expected LAYER.weights or LAYER.biases after the dot, got {shown(value)}")
        self.name(layer, path)
        return value

    def setting(self, value: Any, kind: str, key: str, path: str) -> float:
        number = self.number(value, f"{path}.{key}")
        problem = OPTIMIZERS[kind].hyper[key].problem(number)
        if problem:
            raise self.fail(f"{path}.{key}", problem)
        return number

    def group(self, value: Any, kind: str, path: str) -> GroupSpec:
        """A parameter group: ``params`` and at least one setting of the optimizer."""
        settings = tuple(OPTIMIZERS[kind].hyper)
        raw = self.mapping(value, path, ("params",) + settings, ("params",))
        items = self.sequence(raw["params"], f"{path}.params", what="a list of parameter names, matrix names (W1, b2), weights, biases or LAYER.weights / LAYER.biases")
        params = tuple(self.group_member(v, f"{path}.params[{i}]") for i, v in enumerate(items))
        if not params:
            raise self.fail(f"{path}.params", "expected at least one parameter name, matrix name (W1, b2), weights or biases")
        hyper = tuple((key, self.setting(raw[key], kind, key, path)) for key in settings if key in raw)
        if not hyper:
            raise self.fail(path, f"expected at least one setting of {kind} besides params ({', '.join(settings)})")
        return GroupSpec(params, hyper)

    def data(self, value: Any, inputs: int, outputs: int) -> DataSpec | None:
        if value is None:
            return None
        raw = self.mapping(value, "data", ("path", "inputs", "targets"), ("path",))
        path = raw["path"]
        if not isinstance(path, str) or not path or "\0" in path or not path.lower().endswith((".csv", ".npz")):
            raise self.fail("data.path", f"expected the path of a .csv or .npz file, got {shown(path)}")
        columns = [None if raw.get(k) is None else self.column_names(raw[k], f"data.{k}") for k in ("inputs", "targets")]
        for key, names, count, what in (("inputs", columns[0], inputs, "input"), ("targets", columns[1], outputs, "output")):
            if names is not None and len(names) != count:
                raise self.fail(f"data.{key}", f"expected {counted(count, 'column name')}, one per {what} of the network, got {len(names)}")
            if names is not None and len(set(names)) != len(names):
                raise self.fail(f"data.{key}", f"expected different column names, got {shown(list(names))}")
        return DataSpec(path, columns[0], columns[1])

    def column_names(self, value: Any, path: str) -> tuple[str, ...]:
        items = self.sequence(value, path, what="a list of column names")
        for i, item in enumerate(items):
            if not isinstance(item, str) or not item or len(item) > 200:
                raise self.fail(f"{path}[{i}]", f"expected a column name, got {shown(item)}")
        return tuple(items)

    def check_unique_names(self, spec: Spec) -> None:
        """Inputs, units, layers, targets and given parameter names share one namespace."""
        seen: dict[str, str] = {}

        def claim(name: str, path: str) -> None:
            if name in seen:
                raise self.fail(path, f"the name {name!r} is already used by {seen[name]}")
            seen[name] = path

        if spec.loss.l2:  # the penalty's setting is written l2 in E, the chains and claims
            claim(naming.L2, "loss.l2")
        for i, name in enumerate(spec.inputs):
            claim(name, f"inputs[{i}]")
        for i, layer in enumerate(spec.layers):
            claim(layer.name, f"layers[{i}].name")
            for j, unit in enumerate(layer.units):
                claim(unit, f"layers[{i}].units[{j}]")
        for i, name in enumerate(spec.targets):
            claim(name, f"targets[{i}]")
        for i, layer in enumerate(spec.layers):
            for r, row in enumerate(layer.weight_names or ()):
                for c, name in enumerate(row):
                    claim(name, f"layers[{i}].weight_names[{r}][{c}]")
            for j, name in enumerate(layer.bias_names or ()):
                claim(name, f"layers[{i}].bias_names[{j}]")
