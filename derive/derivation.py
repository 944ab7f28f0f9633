"""One derivation of a spec: both forms, the numbers on the sample, and one optimizer step.

:func:`derive` is the single entry point every output reads: the terminal text and JSON of
``chainrule derive``, the finite-difference check, and (later) the report, the emitted trainer and
the verdicts on hand calculations.

A network is *small* when it has at most :data:`SMALL_MAX_PARAMETERS` parameters in at most
:data:`SMALL_MAX_DEPTH` layers: then every parameter gets its scalar chain and its closed form. A
larger or deeper network gets the layer form, and scalar chains only for the parameters asked
for by name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Iterable, Mapping, Sequence

import numpy as np
import sympy

from chainrule.derive import naming
from chainrule.derive.chain import ChainRule, Factor, ParamChain, closed_form, expanded_units
from chainrule.derive.formula import tree_size
from chainrule.derive.registry import X
from chainrule.derive.errors import ChainruleError
from chainrule.derive.evaluate import Pass, ProgramNumbers, gradients_of
from chainrule.derive.kinds import layer_program, net_products
from chainrule.derive.layers import LayerForm, derive_layers
from chainrule.derive.program import Program
from chainrule.derive.network import Network, ParamRef, Values, build_network, initial_values
from chainrule.derive.numeric import compile_expr
from chainrule.derive.optimizers import CompiledRule, compile_rule
from chainrule.derive.spec import Spec, suggest

SMALL_MAX_PARAMETERS = 200
SMALL_MAX_DEPTH = 6
#: The most units (inputs included) of a small network over feature maps.
SMALL_MAX_UNITS = 300


class NotFinite(ChainruleError):
    """A value of the derivation is NaN or infinite on the sample."""


LossNotFinite = NotFinite  # the name the command line and tests first knew


def _layer_field(network: Network, l: int) -> str:
    activation = network.spec.layers[l - 1].activation
    return f"layers[{l - 1}].activation" + (".formula" if activation.formula is not None else "")


def _first_bad(array: np.ndarray) -> int | None:
    bad = np.flatnonzero(~np.isfinite(np.asarray(array, dtype=float).ravel()))
    return int(bad[0]) if bad.size else None


def _net_field(network: Network, values: Values, run: Pass, l: int, r: int) -> str:
    """The field whose term makes entry ``r`` of layer ``l``'s nets (flat, step by step) not
    finite: its ``weights``, or for an rnn whose recurrent part ``U h_(t-1)`` is the one that is
    not finite or the larger, its ``recurrent_weights``."""
    layer = network.spec.layers[l - 1]
    if not layer.is_rnn or values.W[l - 1] is None:
        return f"layers[{l - 1}].weights"
    units, before = network.sizes[l], network.sizes[l - 1]
    step, unit = divmod(r, units)
    W = np.asarray(values.W[l - 1], dtype=float)
    x = np.asarray(run.outs[l - 1][0], dtype=float).reshape(-1, before)[step]
    h = np.asarray(run.outs[l][0], dtype=float).reshape(-1, units)[step - 1] if step else (
        np.zeros(units) if layer.initial is None else np.asarray(layer.initial, dtype=float))
    with np.errstate(all="ignore"):
        own, recurrent = W[unit, :before] @ x, W[unit, before:] @ h
    if np.isfinite(own) and (not np.isfinite(recurrent) or abs(recurrent) > abs(own)):
        return f"layers[{l - 1}].recurrent_weights"
    return f"layers[{l - 1}].weights"


#: A net this large makes any loss of it overflow (a square: past 1.3e154).
HUGE_NET = 1e100


def _huge_nets(network: Network, values: Values, run: Pass) -> NotFinite | None:
    """The loss overflows because the nets grow too large: the first layer with parameters whose
    nets pass :data:`HUGE_NET`, blamed on the field whose term makes it so, or None."""
    for l in range(1, network.depth + 1):
        nets = np.abs(np.asarray(run.nets[l - 1][0], dtype=float))
        if not network.has_parameters(l) or not nets.size or nets.max() <= HUGE_NET:
            continue
        r = int(np.argmax(nets))
        unit = network.units(l)[r % network.sizes[l]]
        where = f" at step {r // network.sizes[l] + 1}" if network.spec.steps > 1 else ""
        return NotFinite(network.spec.source, _net_field(network, values, run, l, r),
                         f"the loss on the sample is {run.loss!r}: net_{unit}{where} is {float(run.nets[l - 1][0][r]):.3g}, too large for the loss to be computed")
    return None


def diagnose(network: Network, values: Values, run: Pass) -> NotFinite | None:
    """What is not finite on the sample, named by the field that makes it so, or None.

    Also refuses outputs outside (0, 1) for a loss that takes their logarithm (bce and
    cross-entropy with a formula activation, whose range chainrule cannot know).
    """
    source = network.spec.source
    for l in range(1, network.depth + 1):
        for kind, table in (("net", run.nets[l - 1]), ("out", run.outs[l])):
            r = _first_bad(table[0])
            if r is not None:
                unit = network.units(l)[r % network.sizes[l]]  # a sequence's values are flat, step by step
                field = _net_field(network, values, run, l, r) if kind == "net" and network.has_parameters(l) else _layer_field(network, l)
                where = f" at step {r // network.sizes[l] + 1}" if network.spec.steps > 1 else ""
                return NotFinite(source, field, f"{kind}_{unit}{where} is {float(table[0][r])!r} on the sample (the formula is not defined there, or overflows)")
    loss_def = network.loss_def
    if loss_def is not None and loss_def.needs_unit_outputs:
        out = run.outs[-1][0]
        outside = np.flatnonzero((out <= 0) | (out >= 1))
        if outside.size and network.spec.layers[-1].activation.formula is not None:
            unit = network.units(network.depth)[int(outside[0]) % network.sizes[-1]]
            return NotFinite(source, _layer_field(network, network.depth), f"{loss_def.name} needs outputs in (0, 1); on the sample out_{unit} = {float(out[outside[0]])!r}")
    if not np.isfinite(run.loss):
        return _huge_nets(network, values, run) or NotFinite(
            source, "loss.formula" if network.spec.loss.formula is not None else "loss", f"the loss on the sample is {run.loss!r} (an output outside the loss's domain?)")
    for l in range(network.depth, 0, -1):
        r = _first_bad(run.deltas[l - 1][0])
        if r is not None:
            unit = network.units(l)[r % network.sizes[l]]  # a sequence's values are flat, step by step
            field = ("loss.formula" if network.spec.loss.formula is not None else "loss") if l == network.depth and not np.isfinite(run.deltas[l - 1]).any() else _layer_field(network, l)
            return NotFinite(source, field, f"the derivative is not finite on the sample: delta_{unit} = {float(run.deltas[l - 1][0][r])!r}")
    for l in range(1, network.depth + 1):
        if (run.dW[l - 1] is not None and _first_bad(run.dW[l - 1]) is not None) or (run.db[l - 1] is not None and _first_bad(run.db[l - 1]) is not None):
            return NotFinite(source, f"layers[{l - 1}].weights", "the gradient overflows on the sample")
    return None


@dataclass(frozen=True, eq=False)
class Derivation:
    """Everything chainrule derives for a spec; see the module docstring.

    Attributes:
        network, values: the symbolic network and its parameter and sample values.
        layers: the layer form, one entry per layer.
        program: the layer program (forward, loss, delta recursion as statements), which every
            output of the layer form prints.
        numbers: the layer program evaluated with NumPy.
        sample: the forward and backward pass on the sample.
        chains: the scalar chains, by parameter name, in naming order.
        updated_W, updated_b: the parameters after one optimizer step from the zero state
            (frozen parameters unchanged).
    """

    network: Network
    values: Values
    layers: tuple[LayerForm, ...]
    program: Program
    numbers: ProgramNumbers
    sample: Pass
    chains: Mapping[str, ParamChain]
    rule: CompiledRule
    updated_W: tuple[np.ndarray, ...]
    updated_b: tuple[np.ndarray | None, ...]

    @property
    def small(self) -> bool:
        """Whether every parameter has its chain here (:func:`is_small`)."""
        return is_small(self.network)

    @property
    def loss(self) -> float:
        return self.sample.loss

    def gradient(self, ref: ParamRef) -> float:
        """dE/dθ from the layer form, on the sample."""
        if ref.is_weight:
            return weight_entry(self.sample.dW[ref.layer - 1], ref)
        return float(self.sample.db[ref.layer - 1][ref.row])

    def updated(self, ref: ParamRef) -> float:
        return weight_entry(self.updated_W[ref.layer - 1], ref) if ref.is_weight else float(self.updated_b[ref.layer - 1][ref.row])

    def frozen(self, ref: ParamRef) -> bool:
        return ("weights" if ref.is_weight else "biases") in self.network.spec.layers[ref.layer - 1].freeze

    @cached_property
    def envs(self) -> tuple[PointValues, ...]:
        """The value of every symbol on each sample of the batch, by name, computed on demand."""
        return tuple(PointValues(self.network, self.values, self.sample, row) for row in range(self.values.samples))

    @property
    def env(self) -> PointValues:
        """:attr:`envs` of the batch's only sample.

        Raises:
            ValueError: a batch of several samples (read :attr:`envs`, one per sample).
        """
        if len(self.envs) != 1:
            raise ValueError(f"a batch of {len(self.envs)} samples has no one sample: read envs, one per sample")
        return self.envs[0]

    @property
    def batch(self) -> bool:
        """True for a batch of several samples (``samples:`` in the spec)."""
        return self.values.samples > 1

    @cached_property
    def sample_losses(self) -> tuple[float, ...]:
        """Each sample's own loss E_k, the data loss alone (the loss is their mean or sum, plus
        the L2 penalty where there is one: :attr:`loss`)."""
        X, T = self.values.X, self.values.T
        return tuple(self.numbers.loss(self.values.W, self.values.b, X[k:k + 1], T[k:k + 1], penalty=False) for k in range(self.values.samples))

    def at_sample(self, row: int) -> Derivation:
        """The derivation of sample ``row`` (from 0) of the batch alone: the same network, chains
        and program, its numbers on that sample: its loss E_k, its gradients dE_k/dθ and the one
        step they would give. A batch of one is itself.

        Per-sample quantities are the data loss alone: a penalty on the parameters belongs to the
        reduced loss (added once after the reduction), never to one sample's.

        Raises:
            IndexError: ``row`` is not a sample of the batch.
        """
        if not 0 <= row < self.values.samples:
            raise IndexError(f"sample {row + 1} of a batch of {self.values.samples}")
        if not self.batch:
            return self
        values = Values(self.values.W, self.values.b, self.values.X[row:row + 1], self.values.T[row:row + 1], self.values.seeded_sample)
        sample = self.numbers.run(values.W, values.b, values.X, values.T, penalty=False)
        updated_W, updated_b = _one_step(self.network, values, sample)
        return Derivation(self.network, values, self.layers, self.program, self.numbers, sample, self.chains, self.rule, updated_W, updated_b)

    def reduce(self, per_sample: Sequence[float]) -> float:
        """The samples' values of one quantity reduced as the loss is: their mean or their sum."""
        return float(np.mean(per_sample) if self.network.spec.reduction == "mean" else np.sum(per_sample))

    def value(self, expr: sympy.Expr, row: int = 0) -> float:
        """An expression in the spec's symbols, evaluated on sample ``row`` of the batch."""
        with np.errstate(all="ignore"):
            return float(compile_expr(expr)(self.envs[row]))

    def factor_value(self, factor: Factor, row: int = 0) -> float:
        """A factor's value on sample ``row``; dE/d(an output at a step where that sample's
        targets are null) is 0: E has no term at that step."""
        return factor_at(factor, self.envs[row])

    def path_values(self, chain: ParamChain, row: int = 0) -> list[float]:
        """Each path's product of factor values on sample ``row``."""
        return [float(np.prod([self.factor_value(f, row) for f in p.factors])) for p in chain.paths]

    def sample_gradient(self, chain: ParamChain, row: int = 0) -> float:
        """dE_k/dθ of sample ``row`` alone: the sum over paths of the products of factor values."""
        return float(sum(self.path_values(chain, row)))

    def chain_gradient(self, chain: ParamChain) -> float:
        """dE/dθ from the scalar form: each sample's sum over paths of products of factor values,
        reduced over the batch as the loss is (one sample: its own), plus the L2 penalty's
        ``l2*w`` once (:meth:`penalty_value`)."""
        return self.reduce([self.sample_gradient(chain, row) for row in range(self.values.samples)]) + self.penalty_value(chain)

    def penalty_value(self, chain: ParamChain) -> float:
        """The penalty's term of dE/dθ, ``l2*w``, at the parameters' values (0.0 for a bias or
        without a penalty)."""
        return self.value(chain.penalty) if chain.penalty != 0 else 0.0

    @cached_property
    def initial_gradients(self) -> Mapping[str, np.ndarray]:
        """dE/dh_0 of each rnn layer's initial state (``h0_h``, [units]; none without an rnn):
        ``U^T delta_1`` per sample, reduced over the batch as the loss is (h_0 is shared by
        every sequence). h_0 is a constant of the spec, not trained."""
        found: dict[str, np.ndarray] = {}

        def keep(statement, env) -> None:
            if statement.rule == "initial state gradient":
                found[statement.target.name[len(naming.LAYER_GRADIENT.format(param="")):]] = np.array(env[statement.target.name])

        if any(s.rule == "initial state gradient" for s in self.program.statements):
            self.numbers.run(self.values.W, self.values.b, self.values.X, self.values.T, after=keep, penalty=False)
        reduce = np.mean if self.network.spec.reduction == "mean" else np.sum
        return {name: reduce(per_sample, axis=0) for name, per_sample in found.items()}

    @property
    def data_loss(self) -> float:
        """E without the L2 penalty: the reduced loss of the samples."""
        return self.sample.loss - self.sample.penalty

    @cached_property
    def expanded(self) -> Mapping[sympy.Symbol, sympy.Expr]:
        return expanded_units(self.network)

    def closed_form(self, name: str) -> sympy.Expr:
        """dE/dθ in inputs, targets and parameters (small networks, or any asked-for chain); for a
        batch, a sample's own dE_k/dθ (without the L2 penalty, which is the batch's)."""
        chain = self.chains[name]
        units = self._unit_sizes
        if not any(s.name in units and s.name not in self.network.spec.inputs for s in chain.total.free_symbols):
            # in inputs, parameters and deltas already (paths cut at a convolution's deltas): nothing to expand
            return closed_form(chain, {}, penalty=not self.batch)
        return closed_form(chain, self.expanded, penalty=not self.batch)

    @cached_property
    def _unit_sizes(self) -> dict[str, int]:
        """How many nodes each unit symbol stands for once written in inputs and parameters."""
        net = self.network
        if net.spec.steps:
            return _sequence_unit_sizes(net)
        sizes = {name: 1 for name in net.units(0)}
        previous = [1] * net.sizes[0]
        for l in range(1, net.depth + 1):
            weighted = sum(2 + p for p in previous) + 2 if net.has_parameters(l) else max(previous)
            if net.is_softmax(l):
                out = 3 + net.sizes[l] * (2 + weighted)
            else:
                f = net.activation(l)
                out = tree_size(f) + (weighted - 1) * f.count(X)
            for r, unit in enumerate(net.units(l)):
                if net.has_parameters(l):
                    sizes[naming.NET.format(unit=unit)] = weighted
                sizes[net.out(l, r).name] = out
            previous = [out] * net.sizes[l]
        return sizes

    def closed_form_size(self, name: str) -> int:
        """The node count of :meth:`closed_form` written out, computed without building it."""
        gradient = self.chains[name].total
        sizes = self._unit_sizes
        total = 0
        for node in sympy.preorder_traversal(gradient):
            total += sizes.get(node.name, 1) if node.is_Symbol else 1
        return total


def _sequence_unit_sizes(net: Network) -> dict[str, int]:
    """:meth:`Derivation._unit_sizes` of a sequence network, step by step (an rnn's units at step
    t hold every unit at the step before: the sizes grow with the steps)."""
    sizes = {net.out(0, r).name: 1 for r in range(net.rows(0))}
    for step in range(net.spec.steps):
        for l in range(1, net.depth + 1):
            rows = range(step * net.sizes[l], (step + 1) * net.sizes[l])
            below = [sizes.get(net.out(l - 1, step * net.sizes[l - 1] + c).name, 1) for c in range(net.sizes[l - 1])]
            for r in rows:
                weighted = sum(2 + sizes.get(symbol.name, 1) for _, symbol in net_products(net, l, r)) + 2 if net.has_parameters(l) else max(below)
                if net.is_softmax(l):
                    out = 3 + net.sizes[l] * (2 + weighted)
                else:
                    f = net.activation(l)
                    out = tree_size(f) + (weighted - 1) * f.count(X)
                if net.has_parameters(l):
                    sizes[net.net(l, r).name] = weighted
                sizes[net.out(l, r).name] = out
    return sizes


def factor_at(factor: Factor, env: PointValues) -> float:
    """A factor's value at the point ``env``; dE/d(an output at a step where that sample's
    targets are null) is 0: E has no term at that step."""
    if factor.of.name == naming.LOSS and env.without_target(factor.wrt.name):
        return 0.0
    with np.errstate(all="ignore"):
        return float(compile_expr(factor.human)(env))


def weight_entry(matrix: np.ndarray | None, ref: ParamRef) -> float:
    """A weight's entry of its layer's matrix (a kernel [out, in, kh, kw] as a row per channel)."""
    assert matrix is not None
    return float(matrix.reshape(matrix.shape[0], -1)[ref.row, ref.col])


class PointValues:
    """Values of the spec's symbols at one point, looked up by name without enumerating them.

    Args:
        network: the network.
        values: parameter values and the batch.
        run: the forward and backward pass at those values.
        row: the sample of the batch the point is (from 0).
    """

    def __init__(self, network: Network, values: Values, run: Pass, row: int = 0) -> None:
        self.network, self.values, self.run, self.row = network, values, run, row
        self.units = {network.unit_name(l, r): (l, r) for l in range(network.depth + 1) for r in range(network.rows(l))}
        self.targets = {network.target(k).name: k for k in range(network.rows(network.depth))}
        self.initial = {}  # an rnn's h_0, its units at step 0 (out_h1_t0, h1_t0)
        for l, layer in enumerate(network.spec.layers, start=1):
            for j in range(network.sizes[l] if layer.is_rnn else 0):
                value = np.float64(layer.initial[j] if layer.initial is not None else 0.0)
                self.initial[network.initial(l, j).name] = self.initial[naming.AT_STEP.format(name=layer.units[j], step=0)] = value
        self.tables = (
            (naming.NET.format(unit=""), run.nets),
            (naming.OUT.format(unit=""), run.outs[1:]),
            (naming.DELTA_UNIT.format(unit=""), run.deltas),
        )

    def __getitem__(self, name: str) -> np.float64:
        """float64, not float: a factor of 1/(1 - y) at y = 1 is inf, as NumPy has it, not an
        exception."""
        for prefix, table in self.tables:
            unit = name[len(prefix):]
            if name.startswith(prefix) and unit in self.units and self.units[unit][0] > 0 and (prefix == self.tables[2][0] or self.network.has_parameters(self.units[unit][0])):
                l, r = self.units[unit]
                return np.float64(table[l - 1][self.row, r])
        if name in self.units and self.units[name][0] == 0:
            return np.float64(self.values.X[self.row, self.units[name][1]])
        if name in self.units and not self.network.has_parameters(self.units[name][0]):  # s1 = f(out_h1): its own name
            l, r = self.units[name]
            return np.float64(self.run.outs[l][self.row, r])
        if name in self.targets:
            return np.float64(self.values.T[self.row, self.targets[name]])
        ref = self.network.locate(name)
        if ref is not None:
            return np.float64(self.values.scalar(ref))
        if name in self.initial:
            return self.initial[name]
        if name == naming.L2 and self.network.spec.loss.l2:
            return np.float64(self.network.spec.loss.l2)
        raise KeyError(name)

    def without_target(self, name: str) -> bool:
        """Whether the unit called ``name`` (a net or out of the last layer, by its symbol's name)
        sits at a step of a sequence where this sample's targets are null (NaN)."""
        if not self.network.spec.steps:
            return False
        unit = name[len(naming.NET.format(unit="")):] if name.startswith(naming.NET.format(unit="")) else name[len(naming.OUT.format(unit="")):] if name.startswith(naming.OUT.format(unit="")) else name
        if unit not in self.units:
            return False
        layer, r = self.units[unit]
        if layer != self.network.depth:
            return False
        step, outputs = self.network.step_of(layer, r)[0], self.network.sizes[-1]
        return bool(np.isnan(self.values.T[self.row, step * outputs:(step + 1) * outputs]).all())


def is_small(network: Network) -> bool:
    """Whether every parameter gets its scalar chain: at most :data:`SMALL_MAX_PARAMETERS`
    parameters in at most :data:`SMALL_MAX_DEPTH` layers, and for a network over feature maps
    (whose few shared weights may serve many units) at most :data:`SMALL_MAX_UNITS` units, each
    of which the forward pass lists."""
    if network.parameter_count > SMALL_MAX_PARAMETERS or network.depth > SMALL_MAX_DEPTH:
        return False
    if network.spec.sequence:  # every unit at every step is listed
        return sum(network.rows(l) for l in range(network.depth + 1)) <= SMALL_MAX_UNITS
    return not network.spec.spatial or sum(network.sizes) <= SMALL_MAX_UNITS


def _refuse_matrix(network: Network, name: str) -> None:
    """Raise when ``name`` is a matrix's (``W1``, ``U1``, ``b2``): ``--param`` takes one entry.

    Raises:
        ChainruleError: ``name`` names a layer's weights or biases, with its first entry's name.
    """
    found = re.fullmatch(r"([WUb])([1-9][0-9]{0,5})", name)
    layer = network.layer_of_matrix(int(found.group(2))) if found else None
    if found is None or layer is None:
        return
    spec_layer, letter = network.spec.layers[layer - 1], found.group(1)
    if letter == "U" and not spec_layer.is_rnn or letter == "b" and network.bias_name(layer, 0) is None:
        return
    first = network.bias_name(layer, 0) if letter == "b" else network.weight_name(layer, 0, network.sizes[layer - 1] if letter == "U" else 0)
    what = {"W": "weights", "U": "recurrent_weights", "b": "biases"}[letter]
    raise ChainruleError(network.spec.source, "--param", f"{name!r} is layer {spec_layer.name}'s {what} (a matrix); --param takes one "
                         f"parameter, such as {first!r}; the matrix's gradient is in derive's output without --param")


def resolve_params(network: Network, names: Iterable[str]) -> list[ParamRef]:
    """The parameters called ``names``.

    Raises:
        ChainruleError: a name that is no parameter of the network (with a suggestion).
    """
    refs = []
    for name in names:
        ref = network.locate(name)
        if ref is None and not network.parameter_layers:
            raise ChainruleError(network.spec.source, "--param", f"no parameter named {name!r}: the network has no parameters")
        if ref is None:
            _refuse_matrix(network, name)
            first, last = network.parameter_layers[0], network.parameter_layers[-1]
            rnns = [l for l in network.parameter_layers if network.spec.layers[l - 1].is_rnn]  # U's entries: u11, ...
            recurrent = [network.weight_name(l, 0, network.sizes[l - 1]) for l in rnns[:1]]
            examples = list(dict.fromkeys([network.weight_name(first, 0, 0), *recurrent, network.weight_name(last, 0, 0)]))
            bias = network.bias_name(first, 0)
            hint = suggest(name, examples + ([bias] if bias else []))
            raise ChainruleError(network.spec.source, "--param", f"no parameter named {name!r}{hint}; parameters are named like {', '.join(examples)}")
        refs.append(ref)
    return refs


def derive(spec: Spec, params: Sequence[str] = ()) -> Derivation:
    """Derive everything for ``spec``.

    Args:
        spec: a validated spec.
        params: parameter names whose scalar chains are wanted; a small network gets all of them
            whatever is asked.

    Raises:
        ChainruleError: a name in ``params`` that is no parameter; a name clash in the spec.
        NotFinite: a value on the sample is NaN or infinite (naming the layer, the loss or the
            optimizer that makes it so).
    """
    network = build_network(spec)
    values = initial_values(network)
    forms = derive_layers(network)
    program = layer_program(network, forms)
    numbers = ProgramNumbers(program)
    sample = gradients_of(numbers, values)
    problem = diagnose(network, values, sample)
    if problem is not None:
        raise problem
    asked = resolve_params(network, params)
    wanted = list(network.parameters()) if is_small(network) else asked
    engine = ChainRule(network, forms)
    chains = {ref.name: engine.chain(ref) for ref in wanted}
    rule = compile_rule(spec.optimizer.kind, dict(spec.optimizer.hyper))
    updated_W, updated_b = _one_step(network, values, sample)
    if any(w is not None and _first_bad(w) is not None for w in updated_W) or any(b is not None and _first_bad(b) is not None for b in updated_b):
        raise NotFinite(spec.source, "optimizer", "one step overflows: the updated parameters are not finite")
    return Derivation(network, values, forms, program, numbers, sample, chains, rule, updated_W, updated_b)


def _one_step(network: Network, values: Values, sample: Pass) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray | None, ...]]:
    """Every parameter after one optimizer step from the zero state, each with its own settings
    (its group's, :attr:`Network.settings`)."""
    kind = network.spec.optimizer.kind
    W, b = [], []
    for l, layer in enumerate(network.spec.layers):
        settings = network.settings[l]
        weights, grad_W = values.W[l], sample.dW[l]
        W.append(weights if weights is None or grad_W is None or "weights" in layer.freeze else compile_rule(kind, settings.W).first_step(weights, grad_W))
        bias, grad = values.b[l], sample.db[l]
        b.append(None if bias is None or grad is None or settings.b is None else bias if "biases" in layer.freeze
                 else compile_rule(kind, settings.b).first_step(bias, grad))
    return tuple(W), tuple(b)
