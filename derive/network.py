"""The symbolic network: units, their definitions, and parameters named as the spec names them.

A :class:`Network` is the spec's layout with sympy in it: every unit ``u`` of layer ``l`` has a
weighted sum ``net_u`` and an output ``out_u`` (their definitions are the layer kind's:
:func:`chainrule.derive.kinds.net_definition`), and the loss ``E`` is the spec's per-output loss
summed (or averaged) over the outputs. Parameters are named lazily, by arithmetic on their position, so that
a network of 100,000 weights costs no more to set up than one of eight.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Iterator

import numpy as np
import sympy

from chainrule.derive import naming, penalty
from chainrule.derive.errors import SpecError
from chainrule.derive.registry import ACTIVATIONS, LOSSES, X, Y, T, ActivationDef, LossDef
from chainrule.derive.spec import BiasMode, Naming, Spec


@dataclass(frozen=True)
class ParamRef:
    """Where a scalar parameter sits: layer (1-based), kind, destination row and source column.

    A bias has ``col == -1``; a shared bias has ``row == 0``.
    """

    name: str
    layer: int
    kind: str
    row: int
    col: int

    @property
    def is_weight(self) -> bool:
        return self.kind == "weight"


def real_symbol(name: str) -> sympy.Symbol:
    """The sympy symbol of a spec name. All of chainrule's symbols are real."""
    return sympy.Symbol(name, real=True)


def exact(value: float) -> sympy.Expr:
    """A hyper-parameter as an exact rational, so that 0.01 stays 1/100 in closed forms."""
    return sympy.Rational(repr(float(value)))


@dataclass(frozen=True)
class Network:
    """The spec's network in symbols; see the module docstring."""

    spec: Spec

    # -- layout ------------------------------------------------------------------------------

    @property
    def depth(self) -> int:
        return len(self.spec.layers)

    @property
    def sizes(self) -> tuple[int, ...]:
        return self.spec.sizes

    def units(self, layer: int) -> tuple[str, ...]:
        """Unit names of ``layer``; layer 0 is the inputs."""
        return self.spec.inputs if layer == 0 else self.spec.layers[layer - 1].units

    @cached_property
    def per_step(self) -> Network:
        """The network with the names of one step of a sequence, unsuffixed (``out_y1``, ``t1``:
        the layer form's, at any step), itself without sequences."""
        return self if not self.spec.steps else Network(dataclasses.replace(self.spec, steps=0))

    def rows(self, layer: int) -> int:
        """The units of ``layer`` (0: the inputs) in the network's graph: its units at every step
        of a sequence (row ``t * units + k`` is unit k at step t + 1), else its units."""
        return self.sizes[layer] * max(self.spec.steps, 1)

    def step_of(self, layer: int, row: int) -> tuple[int, int]:
        """``(step from 0, unit)`` of row ``row`` of ``layer`` (:meth:`rows`); ``(0, row)``
        without sequences."""
        return divmod(row, self.sizes[layer]) if self.spec.steps else (0, row)

    def unit_name(self, layer: int, row: int) -> str:
        """The name of row ``row`` of ``layer`` (:meth:`rows`): ``h1``, at a step of a sequence ``h1_t2``."""
        step, k = self.step_of(layer, row)
        name = self.units(layer)[k]
        return naming.AT_STEP.format(name=name, step=step + 1) if self.spec.steps else name

    @cached_property
    def loss_steps(self) -> tuple[int, ...]:
        """The steps (from 0) where some sample of the spec's batch has targets (every step
        without a batch, or without sequences: (0,)): the steps the loss reads."""
        steps = max(self.spec.steps, 1)
        batch = self.spec.batch
        if not self.spec.steps or not batch:
            return tuple(range(steps))
        outputs = self.sizes[-1]
        return tuple(t for t in range(steps) if any(not math.isnan(v) for s in batch for v in s.t[t * outputs:(t + 1) * outputs]))

    def layer_name(self, layer: int) -> str:
        return "input" if layer == 0 else self.spec.layers[layer - 1].name

    def uses_name(self, name: str) -> bool:
        """Whether the spec calls an input, target, unit, layer or parameter ``name``."""
        spec = self.spec
        if name in spec.inputs or name in spec.targets or self.locate(name) is not None:
            return True
        return any(name == layer.name or name in layer.units for layer in spec.layers)

    @cached_property
    def input_vector(self) -> str:
        """The layer form's vector of inputs: ``x``, or ``x_vec`` where the spec names a unit x."""
        return naming.vector_name(naming.INPUT_VECTOR, self.uses_name)

    @cached_property
    def target_vector(self) -> str:
        """The layer form's vector of targets: ``t``, or ``t_vec`` where the spec names a unit t."""
        return naming.vector_name(naming.TARGET_VECTOR, self.uses_name)

    def has_parameters(self, layer: int) -> bool:
        """False for a layer without weights (``kind: activation``), whose units apply the
        activation to the outputs of the layer before."""
        return self.spec.layers[layer - 1].has_parameters

    @cached_property
    def _matrix_numbers(self) -> tuple[int, ...]:
        numbers, n = [0], 0
        for layer in self.spec.layers:
            n += layer.has_parameters
            numbers.append(n if layer.has_parameters else 0)
        return tuple(numbers)

    def matrix_number(self, layer: int) -> int:
        """The number of ``layer``'s matrices (``W2``, ``b2``, indexed names ``w2_11``): layers
        with parameters are numbered 1, 2, ... and a layer without weights takes no number (0).

        Raises:
            ValueError: ``layer`` has no parameters.
        """
        number = self._matrix_numbers[layer]
        if number == 0:
            raise ValueError(f"layer {self.layer_name(layer)} has no parameters")
        return number

    def layer_of_matrix(self, number: int) -> int | None:
        """The layer (1-based) whose matrices are numbered ``number``, or None."""
        return self._matrix_numbers.index(number) if number >= 1 and number in self._matrix_numbers else None

    @property
    def parameter_layers(self) -> tuple[int, ...]:
        """The layers (1-based) with parameters, in order."""
        return tuple(l for l in range(1, self.depth + 1) if self.has_parameters(l))

    def weight_shape(self, layer: int) -> tuple[int, ...]:
        """The shape of ``layer``'s weights: [units, units before] (dense), the kernel [out, in,
        kh, kw] or [out, in, k] (a convolution), () without weights."""
        return self.spec.layers[layer - 1].weight_shape(self.sizes[layer - 1])

    def fans(self, layer: int) -> tuple[int, int, tuple[int, ...]]:
        """``(fan_in, fan_out, shape)`` of ``layer``'s seeded weights: a dense layer's units
        before and its units; a kernel's in*kh*kw and out*kh*kw (PyTorch's fans)."""
        shape = self.weight_shape(layer)
        if self.spec.layers[layer - 1].is_rnn:  # W and U side by side: [units, before + units]
            return shape[1], shape[0], shape
        if len(shape) < 3:
            return self.sizes[layer - 1], self.sizes[layer], (self.sizes[layer], self.sizes[layer - 1])
        window = math.prod(shape[2:])
        return shape[1] * window, shape[0] * window, shape

    def weight_matrices(self, layer: int, stored: np.ndarray) -> tuple[tuple[str, np.ndarray], ...]:
        """``layer``'s weights ``stored`` as the matrices users see, by name: ``(("W2", W),)``;
        for an rnn, whose W and U are held side by side, ``(("W1", W), ("U1", U))`` (views).
        ``stored`` may be the weights, their gradient or their values after a step."""
        n = self.matrix_number(layer)
        if not self.spec.layers[layer - 1].is_rnn:
            return ((naming.LAYER_WEIGHT.format(layer=n), stored),)
        before = self.sizes[layer - 1]
        return ((naming.LAYER_WEIGHT.format(layer=n), stored[:, :before]), (naming.LAYER_RECURRENT.format(layer=n), stored[:, before:]))

    def weight_label(self, layer: int, index: tuple[int, ...]) -> str:
        """An entry of ``layer``'s stored weights as users name it: ``W1[0, 2]``, an rnn's
        recurrent weight ``U1[0, 1]``."""
        before = self.sizes[layer - 1]
        if self.spec.layers[layer - 1].is_rnn and index[1] >= before:
            index = (index[0], index[1] - before)
            name = naming.LAYER_RECURRENT.format(layer=self.matrix_number(layer))
        else:
            name = naming.LAYER_WEIGHT.format(layer=self.matrix_number(layer))
        return f"{name}[{', '.join(map(str, index))}]"

    def weight_columns(self, layer: int) -> int:
        """The weights per row of ``layer``'s matrix (a kernel's per output channel, in*kh*kw):
        a weight's :class:`ParamRef` has ``row`` its unit (output channel) and ``col`` its place
        in that row, row-major."""
        return math.prod(self.weight_shape(layer)[1:])

    def bias_mode(self, layer: int) -> BiasMode:
        return self.spec.layers[layer - 1].bias

    @cached_property
    def parameter_count(self) -> int:
        return self.spec.parameter_count

    # -- parameter names ---------------------------------------------------------------------

    @cached_property
    def _offsets(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Weights and biases before each layer, for sequential numbering."""
        weights, biases = [0], [0]
        for l, layer in enumerate(self.spec.layers, start=1):
            kernel = layer.window is not None  # a kernel's weights are named k11, ... (not w1, ...)
            counted = len(layer.units) * self.sizes[l - 1] if layer.is_rnn else layer.weight_count(self.sizes[l - 1])  # an rnn's U: u11, ...
            weights.append(weights[-1] + (0 if kernel else counted))
            biases.append(biases[-1] + layer.bias_count)
        return tuple(weights), tuple(biases)

    def _wide(self, layer: int) -> bool:
        return max(self.sizes[layer], self.sizes[layer - 1]) >= 10

    def weight_name(self, layer: int, row: int, col: int) -> str:
        """The name of the weight from unit ``col`` of layer ``layer - 1`` into unit ``row``."""
        given = self.spec.layers[layer - 1].weight_names
        if given is not None:
            return given[row][col]
        if self.spec.layers[layer - 1].window is not None and self.has_parameters(layer):
            return self._kernel_name(layer, row, col)
        rnn, before = self.spec.layers[layer - 1].is_rnn, self.sizes[layer - 1]
        if rnn and col >= before:
            return self._recurrent_name(layer, row, col - before)
        if self.spec.naming is Naming.SEQUENTIAL:
            n = self._offsets[0][layer - 1] + row * (before if rnn else self.weight_columns(layer)) + col + 1
            return naming.SEQUENTIAL_WEIGHT.format(n=n)
        pattern = naming.INDEXED_WEIGHT_WIDE if self._wide(layer) else naming.INDEXED_WEIGHT
        return pattern.format(layer=self.matrix_number(layer), to=row + 1, frm=col + 1)

    @cached_property
    def _rnn_layers(self) -> tuple[int, ...]:
        return tuple(l for l, layer in enumerate(self.spec.layers, start=1) if layer.is_rnn)

    def _recurrent_name(self, layer: int, to: int, frm: int) -> str:
        """U's entry into unit ``to`` from unit ``frm`` (from 0) of the same layer at the step
        before: ``u11`` (one rnn layer, sequential naming), else ``u1_11`` (see
        :data:`~chainrule.derive.naming.RECURRENT_WEIGHT`)."""
        wide = self.sizes[layer] >= 10
        if len(self._rnn_layers) == 1 and self.spec.naming is Naming.SEQUENTIAL:
            return (naming.RECURRENT_WEIGHT_WIDE if wide else naming.RECURRENT_WEIGHT).format(to=to + 1, frm=frm + 1)
        pattern = naming.RECURRENT_WEIGHT_INDEXED_WIDE if wide else naming.RECURRENT_WEIGHT_INDEXED
        return pattern.format(layer=self.matrix_number(layer), to=to + 1, frm=frm + 1)

    def _locate_recurrent(self, name: str) -> ParamRef | None:
        """The entry of an rnn's U called ``name`` by :meth:`_recurrent_name`'s pattern, or None."""
        if not self._rnn_layers or not name.startswith("u"):
            return None
        if len(self._rnn_layers) == 1 and self.spec.naming is Naming.SEQUENTIAL:
            match = re.fullmatch(r"u(?:([1-9])([1-9])|([0-9]{1,6})_([0-9]{1,6}))", name)
            layer = self._rnn_layers[0]
            groups = match.groups() if match else ()
        else:
            match = re.fullmatch(r"u([0-9]{1,3})_(?:([1-9])([1-9])|([0-9]{1,6})_([0-9]{1,6}))", name)
            layer = (self.layer_of_matrix(int(match.group(1))) or 0) if match else 0
            groups = match.groups()[1:] if match else ()
        if not match or layer not in self._rnn_layers:
            return None
        to, frm = (groups[0], groups[1]) if groups[0] else (groups[2], groups[3])
        units = self.sizes[layer]
        if not (1 <= int(to) <= units and 1 <= int(frm) <= units):
            return None
        return ParamRef(name, layer, "weight", int(to) - 1, self.sizes[layer - 1] + int(frm) - 1)

    def recurrent(self, ref: ParamRef) -> bool:
        """Whether ``ref`` is an entry of an rnn's U (read with the layer's own units at the step before)."""
        return ref.is_weight and self.spec.layers[ref.layer - 1].is_rnn and ref.col >= self.sizes[ref.layer - 1]

    @cached_property
    def _conv_layers(self) -> tuple[int, ...]:
        return tuple(l for l, layer in enumerate(self.spec.layers, start=1) if layer.window is not None and layer.has_parameters)

    @cached_property
    def _simple_kernels(self) -> bool:
        """One convolution, with one input and one output channel: its weights are ``k11, k12,
        ...`` (:data:`~chainrule.derive.naming.KERNEL_WEIGHT`)."""
        return len(self._conv_layers) == 1 and self.weight_shape(self._conv_layers[0])[:2] == (1, 1)

    def _kernel_name(self, layer: int, row: int, col: int) -> str:
        """A kernel weight's name: output channel ``row``, ``col`` its place in the kernel's
        row (input channel, then row and column, row-major)."""
        sides = self.weight_shape(layer)[2:]
        inp, place = divmod(col, math.prod(sides))
        at = []
        for n in reversed(sides):
            place, r = divmod(place, n)
            at.insert(0, r + 1)
        if self._simple_kernels:
            return naming.KERNEL_WEIGHT.format(place=("_" if max(sides) >= 10 else "").join(map(str, at)))
        return naming.KERNEL_WEIGHT_INDEXED.format(layer=self.matrix_number(layer), out=row + 1, inp=inp + 1, place="_".join(map(str, at)))

    def _locate_kernel(self, name: str) -> ParamRef | None:
        """The kernel weight called ``name`` by :meth:`_kernel_name`'s pattern, or None."""
        if not self._conv_layers or not name.startswith("k"):
            return None
        if self._simple_kernels:
            layer, out, inp = self._conv_layers[0], 1, 1
            sides = self.weight_shape(layer)[2:]
            pattern = r"k([0-9]{1,6})" if len(sides) == 1 else r"k([0-9]{1,6})_([0-9]{1,6})" if max(sides) >= 10 else r"k([1-9])([1-9])"
            match = re.fullmatch(pattern, name)
            place = tuple(int(g) for g in match.groups()) if match else ()
        else:
            match = re.fullmatch(r"k([0-9]{1,3})_([0-9]{1,6})_([0-9]{1,6})_([0-9]{1,6})(?:_([0-9]{1,6}))?", name)
            if not match:
                return None
            layer = self.layer_of_matrix(int(match.group(1))) or 0
            if layer not in self._conv_layers:
                return None
            out, inp = int(match.group(2)), int(match.group(3))
            place = tuple(int(g) for g in match.groups()[3:] if g is not None)
            sides = self.weight_shape(layer)[2:]
        shape = self.weight_shape(layer)
        if not match or len(place) != len(sides) or not 1 <= out <= shape[0] or not 1 <= inp <= shape[1]:
            return None
        if not all(1 <= p <= n for p, n in zip(place, sides)):
            return None
        col = inp - 1
        for p, n in zip(place, sides):
            col = col * n + p - 1
        return ParamRef(name, layer, "weight", out - 1, col)

    def bias_name(self, layer: int, row: int) -> str | None:
        """The name of the bias of unit ``row`` of ``layer`` (the layer's one bias when shared)."""
        spec = self.spec.layers[layer - 1]
        if spec.bias is BiasMode.NONE:
            return None
        index = 0 if spec.bias is BiasMode.SHARED else row
        if spec.bias_names is not None:
            return spec.bias_names[index]
        if self.spec.naming is Naming.SEQUENTIAL:
            return naming.SEQUENTIAL_BIAS.format(n=self._offsets[1][layer - 1] + index + 1)
        if spec.bias is BiasMode.SHARED:
            return naming.INDEXED_SHARED_BIAS.format(layer=self.matrix_number(layer))
        return naming.INDEXED_BIAS.format(layer=self.matrix_number(layer), to=row + 1)

    def parameters(self) -> Iterator[ParamRef]:
        """Every scalar parameter in naming order: layer by layer, weights row by row, then biases."""
        for l in range(1, self.depth + 1):
            shape = self.weight_shape(l)
            for r in range(shape[0] if shape else 0):
                for c in range(self.weight_columns(l)):
                    yield ParamRef(self.weight_name(l, r, c), l, "weight", r, c)
            for b in range(self.spec.layers[l - 1].bias_count):
                yield ParamRef(self.bias_name(l, b) or "", l, "bias", b, -1)

    @cached_property
    def _given_names(self) -> dict[str, ParamRef]:
        found: dict[str, ParamRef] = {}
        for l, layer in enumerate(self.spec.layers, start=1):
            for r, row in enumerate(layer.weight_names or ()):
                for c, name in enumerate(row):
                    found[name] = ParamRef(name, l, "weight", r, c)
            for b, name in enumerate(layer.bias_names or ()):
                found[name] = ParamRef(name, l, "bias", b, -1)
        return found

    def locate(self, name: str) -> ParamRef | None:
        """The parameter called ``name``, found by its pattern (no enumeration), or None."""
        ref = self._given_names.get(name) or self._locate_generated(name)
        if ref is None or self._name_of(ref) != name:
            return None
        return ref

    def _name_of(self, ref: ParamRef) -> str | None:
        return self.weight_name(ref.layer, ref.row, ref.col) if ref.is_weight else self.bias_name(ref.layer, ref.row)

    def _locate_generated(self, name: str) -> ParamRef | None:
        kernel = self._locate_kernel(name) or self._locate_recurrent(name)
        if kernel is not None:
            return kernel
        if self.spec.naming is Naming.SEQUENTIAL:
            match = re.fullmatch(r"([wb])([1-9][0-9]{0,9})", name)
            if not match:
                return None
            n = int(match.group(2)) - 1
            offsets = self._offsets[0] if match.group(1) == "w" else self._offsets[1]
            layer = next((l for l in range(1, self.depth + 1) if offsets[l - 1] <= n < offsets[l]), None)
            if layer is None:
                return None
            i = n - offsets[layer - 1]
            if match.group(1) == "b":
                return ParamRef(name, layer, "bias", i, -1)
            columns = self.sizes[layer - 1] if self.spec.layers[layer - 1].is_rnn else self.weight_columns(layer)  # an rnn's W alone
            return ParamRef(name, layer, "weight", i // columns, i % columns)
        return self._locate_indexed(name)

    def _locate_indexed(self, name: str) -> ParamRef | None:
        match = re.fullmatch(r"w([0-9]{1,3})_(?:([0-9])([0-9])|([0-9]{1,6})_([0-9]{1,6}))", name)
        if match:
            layer = self.layer_of_matrix(int(match.group(1))) or 0
            to, frm = (match.group(2), match.group(3)) if match.group(2) else (match.group(4), match.group(5))
            if 1 <= layer <= self.depth and 1 <= int(to) <= (self.weight_shape(layer) or (0,))[0] and 1 <= int(frm) <= self.weight_columns(layer):
                return ParamRef(name, layer, "weight", int(to) - 1, int(frm) - 1)
            return None
        match = re.fullmatch(r"b([0-9]{1,3})(?:_([0-9]{1,6}))?", name)
        layer = self.layer_of_matrix(int(match.group(1))) if match else None
        if layer is None:
            return None
        row = int(match.group(2) or 1) - 1
        if row >= self.spec.layers[layer - 1].bias_count:
            return None
        return ParamRef(name, layer, "bias", row, -1)

    @cached_property
    def settings(self) -> tuple[LayerSettings, ...]:
        """Each layer's optimizer settings per parameter (``optimizer.groups`` applied)."""
        return _group_settings(self)

    def settings_of(self, ref: ParamRef) -> dict[str, float]:
        """The optimizer's settings for one parameter, its group's where it is in one."""
        layer = self.settings[ref.layer - 1]
        if ref.is_weight:
            return {k: float(v.reshape(v.shape[0], -1)[ref.row, ref.col]) for k, v in layer.W.items()}
        assert layer.b is not None
        return {k: float(v[ref.row]) for k, v in layer.b.items()}

    def check_names(self) -> None:
        """Refuse a unit, input, target or layer name that is also a parameter's name.

        Raises:
            SpecError: naming both places.
        """
        others = [(n, f"inputs[{i}]") for i, n in enumerate(self.spec.inputs)]
        others += [(n, f"targets[{i}]") for i, n in enumerate(self.spec.targets)]
        for l, layer in enumerate(self.spec.layers):
            others.append((layer.name, f"layers[{l}].name"))
            others += [(u, f"layers[{l}].units[{j}]") for j, u in enumerate(layer.units)]
        for name, path in others:
            if self.locate(name) is not None:
                raise SpecError(self.spec.source, path, f"the name {name!r} is also the name of a parameter; rename one of them")
        for name, ref in self._given_names.items():
            generated = self._locate_generated(name)
            if generated is not None and generated != ref and self._name_of(generated) == name:
                where = f"weight_names[{ref.row}][{ref.col}]" if ref.is_weight else f"bias_names[{ref.row}]"
                raise SpecError(self.spec.source, f"layers[{ref.layer - 1}].{where}", f"the name {name!r} is also the generated name of another parameter ({generated.kind} of layer {generated.layer}); rename one of them")

    # -- symbols -----------------------------------------------------------------------------

    def net(self, layer: int, row: int) -> sympy.Symbol:
        return real_symbol(naming.NET.format(unit=self.unit_name(layer, row)))

    def out(self, layer: int, row: int) -> sympy.Symbol:
        """The output of a unit; an input (layer 0) and a unit of a layer without weights
        (``s1 = f(out_h1)``, which has no net) are their own names."""
        name = self.unit_name(layer, row)
        return real_symbol(name if layer == 0 or not self.has_parameters(layer) else naming.OUT.format(unit=name))

    def initial(self, layer: int, row: int) -> sympy.Symbol:
        """Entry ``row`` of an rnn layer's h_0, as its unit at step 0: ``out_h1_t0``."""
        return real_symbol(naming.OUT.format(unit=naming.AT_STEP.format(name=self.units(layer)[row], step=0)))

    def activation_input(self, layer: int, row: int) -> sympy.Symbol:
        """What unit ``row``'s activation is applied to: its net, or for a layer without weights
        the output of the same unit of the layer before (``s1 = f(out_h1)``)."""
        return self.net(layer, row) if self.has_parameters(layer) else self.out(layer - 1, row)

    def target(self, k: int) -> sympy.Symbol:
        """Target ``k`` (of a sequence: ``k`` counts step by step, ``t1_t2``)."""
        targets = self.spec.targets
        if not self.spec.steps:
            return real_symbol(targets[k])
        step, j = divmod(k, len(targets))
        return real_symbol(naming.AT_STEP.format(name=targets[j], step=step + 1))

    def weight(self, layer: int, row: int, col: int) -> sympy.Symbol:
        return real_symbol(self.weight_name(layer, row, col))

    def bias(self, layer: int, row: int) -> sympy.Symbol | None:
        name = self.bias_name(layer, row)
        return None if name is None else real_symbol(name)

    @property
    def loss_symbol(self) -> sympy.Symbol:
        return real_symbol(naming.LOSS)

    # -- definitions -------------------------------------------------------------------------

    def activation_def(self, layer: int) -> ActivationDef | None:
        """The registry entry of ``layer``'s activation, or None for a formula."""
        return ACTIVATIONS.get(self.spec.layers[layer - 1].activation.name)

    def activation(self, layer: int) -> sympy.Expr:
        """``f(x)`` of an elementwise layer, in :data:`~chainrule.derive.registry.X`."""
        spec = self.spec.layers[layer - 1].activation
        if spec.expression is not None:
            return spec.expression
        params = {k: exact(v) for k, v in spec.params}
        return ACTIVATIONS[spec.name].define(X, **params)

    def activation_in_output(self, layer: int) -> sympy.Expr | None:
        """``f'(x)`` written in ``y = f(x)``, from the registry, or None."""
        spec = self.spec.layers[layer - 1].activation
        definition = ACTIVATIONS.get(spec.name)
        if definition is None or definition.in_output is None:
            return None
        return definition.in_output(Y, **{k: exact(v) for k, v in spec.params})

    def is_softmax(self, layer: int) -> bool:
        definition = self.activation_def(layer)
        return definition is not None and definition.whole_layer

    @property
    def loss_def(self) -> LossDef | None:
        return LOSSES.get(self.spec.loss.name)

    @property
    def targets_sum_to_one(self) -> bool:
        """True where the spec guarantees every target vector sums to 1: its loss is a registry
        loss whose targets are distributions (cross-entropy; the loader checks the sample's, the
        trainer each row of T). A formula loss guarantees nothing about its targets."""
        loss = self.spec.loss
        return loss.name in LOSSES and LOSSES[loss.name].targets == "distribution"

    def per_output_loss(self) -> sympy.Expr:
        """``l(y, t)`` in :data:`~chainrule.derive.registry.Y` and ``T``."""
        if self.spec.loss.expression is not None:
            return self.spec.loss.expression
        return LOSSES[self.spec.loss.name].per_output(Y, T)

    @property
    def loss_scale(self) -> sympy.Expr:
        """1/n for losses averaged over the n outputs, else 1."""
        mean = self.loss_def is not None and self.loss_def.mean
        return sympy.Rational(1, self.sizes[-1]) if mean else sympy.Integer(1)

    def loss_term(self, k: int) -> sympy.Expr:
        """Output ``k``'s term of ``E``: the scaled per-output loss of out_k and t_k."""
        return self.loss_scale * self.per_output_loss().xreplace({Y: self.out(self.depth, k), T: self.target(k)})

    def penalty_definition(self) -> sympy.Expr:
        """The L2 penalty ``l2/2*w1**2 + ...`` over every weight (biases not), or 0 without one;
        built weight by weight: for small networks."""
        if not self.spec.loss.l2:
            return sympy.S.Zero
        return sympy.Add(*[penalty.term(real_symbol(ref.name)) for ref in self.parameters() if ref.is_weight])

    def loss_definition(self) -> sympy.Expr:
        """``E`` in the outputs of the last layer and the targets: the sum of the terms."""
        per_output = self.per_output_loss()
        terms = [per_output.xreplace({Y: self.out(self.depth, k), T: self.target(k)}) for k in self.loss_rows]
        return self.loss_scale * sympy.Add(*terms)

    @property
    def loss_rows(self) -> list[int]:
        """The rows of the last layer (:meth:`rows`) that E reads: its units, of a sequence at
        each step with targets (:attr:`loss_steps`; E is the sum of the steps' losses)."""
        outputs = self.sizes[-1]
        return [t * outputs + k for t in self.loss_steps for k in range(outputs)]


def build_network(spec: Spec) -> Network:
    """The symbolic network of a validated spec.

    Raises:
        SpecError: a unit, input, target or layer name that is also a parameter's name.
    """
    network = Network(spec)
    network.check_names()
    network.settings  # resolves optimizer.groups: a name that is no parameter is refused here
    return network


@dataclass(frozen=True)
class LayerSettings:
    """A layer's optimizer settings per parameter: each setting's value for every weight
    (an array [units, units before]) and every bias (an array [biases], or None without)."""

    W: dict[str, np.ndarray]
    b: dict[str, np.ndarray] | None


def _group_settings(network: Network) -> tuple[LayerSettings, ...]:
    """The settings of every parameter: the optimizer's, then each of ``optimizer.groups``' for
    the parameters it names.

    Raises:
        SpecError: a group naming no parameter, matrix, ``weights`` or ``biases``; a parameter in
            two groups (PyTorch refuses that too).
    """
    spec, sizes = network.spec, network.sizes
    owner_W = [np.full(network.weight_shape(l) if network.has_parameters(l) else (0, 0), -1) for l in range(1, network.depth + 1)]
    owner_b = [np.full(layer.bias_count, -1) for layer in spec.layers]
    for i, group in enumerate(spec.optimizer.groups):
        for j, name in enumerate(group.params):
            path = f"optimizer.groups[{i}].params[{j}]"
            for owner, index in _covered(network, name, owner_W, owner_b, path):
                taken = owner[index]
                if np.any((taken >= 0) & (taken != i)):
                    other = int(taken[taken >= 0].flat[0]) if np.ndim(taken) else int(taken)
                    raise SpecError(spec.source, path, f"{name!r} is also in optimizer.groups[{other}]; a parameter may be in one group only")
                owner[index] = i
    layers = []
    for l in range(network.depth):
        W = {k: _filled(owner_W[l], v, k, spec) for k, v in spec.optimizer.hyper}
        b = {k: _filled(owner_b[l], v, k, spec) for k, v in spec.optimizer.hyper} if owner_b[l].size else None
        layers.append(LayerSettings(W, b))
    return tuple(layers)


def _covered(network: Network, name: str, owner_W: list, owner_b: list, path: str) -> list:
    """(array, index) pairs of the entries ``name`` stands for in a group: a parameter, a layer's
    matrix (``W2``, ``b2``, ``o.weights``, ``o.biases``), or every weight or bias.

    Raises:
        SpecError: no such name; a name that is a parameter's and also another matrix's
            (``b2``, a unit's bias, where layer 2's biases are b3 and b4).
    """
    source, layers = network.spec.source, [layer.name for layer in network.spec.layers]
    scalar, matrix = network.locate(name), None
    layer, _, word = name.partition(".")
    if word and layer in layers:
        matrix = (word == "weights", layers.index(layer))
    found = re.fullmatch(r"([WUb])([1-9][0-9]*)", name)
    numbered = network.layer_of_matrix(int(found.group(2))) if found else None
    part: Any = Ellipsis  # an rnn's W or U: its columns of the weights held side by side
    if found and numbered is not None and (found.group(1) != "U" or network.spec.layers[numbered - 1].is_rnn):
        matrix = (found.group(1) != "b", numbered - 1)
        if network.spec.layers[numbered - 1].is_rnn and found.group(1) != "b":
            before = network.sizes[numbered - 1]
            part = (slice(None), slice(None, before) if found.group(1) == "W" else slice(before, None))
    if matrix is not None and not matrix[0] and not owner_b[matrix[1]].size:
        raise SpecError(source, path, f"layer {layers[matrix[1]]} has no biases")
    if matrix is not None and matrix[0] and not owner_W[matrix[1]].size:
        raise SpecError(source, path, f"layer {layers[matrix[1]]} has no weights (kind: activation)")
    entries = [(owner_W[scalar.layer - 1], (scalar.row, scalar.col)) if scalar.is_weight else (owner_b[scalar.layer - 1], scalar.row)] if scalar else []
    if matrix is not None:
        whole = (owner_W if matrix[0] else owner_b)[matrix[1]]
        if scalar is not None and not (whole.size == 1 and scalar.layer - 1 == matrix[1] and not scalar.is_weight and not matrix[0]):
            word = f"{layers[matrix[1]]}.{'weights' if matrix[0] else 'biases'}"
            what = f"layer {layers[matrix[1]]}'s {'weight matrix' if matrix[0] else 'bias vector'} ({'W' if matrix[0] else 'b'}{network.matrix_number(matrix[1] + 1)})"
            raise SpecError(source, path, f"{name!r} is both a parameter and {what}; write {word} for the layer's, or give the parameter another name")
        return [(whole, part)]
    if scalar is not None:
        return entries
    if name in ("weights", "biases"):
        owners = [(owner, Ellipsis) for owner in (owner_W if name == "weights" else owner_b) if owner.size]
        if not owners:  # a group of nothing would silently set nothing
            raise SpecError(source, path, "the network has no biases (every layer has bias: none); expected a parameter name, a matrix name or weights")
        return owners
    first = network.parameter_layers[0]
    examples = ", ".join(dict.fromkeys([network.weight_name(first, 0, 0), naming.LAYER_WEIGHT.format(layer=1), f"{layers[first - 1]}.biases", "weights", "biases"]))
    raise SpecError(source, path, f"no parameter, matrix or word {name!r}; expected a parameter name, a matrix name or weights / biases, like {examples}")


def _filled(owner: np.ndarray, default: float, key: str, spec: Spec) -> np.ndarray:
    values = np.full(owner.shape, default)
    for i, group in enumerate(spec.optimizer.groups):
        if key in dict(group.hyper):
            values[owner == i] = dict(group.hyper)[key]
    values.flags.writeable = False
    return values


# ---------------------------------------------------------------------------------------------
# Values: the parameters and the sample


@dataclass(frozen=True, eq=False)
class Values:
    """Parameter values per layer (``W[l]`` is [units, units before], None for a layer without
    weights; ``b[l]`` per bias, or None)
    and the batch of samples, ``X`` [samples, inputs] and ``T`` [samples, outputs], all read-only
    float64 arrays. One sample is a batch of one."""

    W: tuple[np.ndarray | None, ...]
    b: tuple[np.ndarray | None, ...]
    X: np.ndarray
    T: np.ndarray
    seeded_sample: bool

    @property
    def samples(self) -> int:
        return self.X.shape[0]

    @property
    def x(self) -> np.ndarray:
        """The sample's inputs [inputs]: the batch's only sample.

        Raises:
            ValueError: a batch of several samples (use ``X``, a row per sample).
        """
        return self._only(self.X)

    @property
    def t(self) -> np.ndarray:
        """The sample's targets [outputs]; raises as :attr:`x` does for a batch of several."""
        return self._only(self.T)

    def _only(self, rows: np.ndarray) -> np.ndarray:
        if rows.shape[0] != 1:
            raise ValueError(f"a batch of {rows.shape[0]} samples has no one sample: read X and T, a row per sample")
        return rows[0]

    def scalar(self, ref: ParamRef) -> float:
        matrix = self.W[ref.layer - 1] if ref.is_weight else self.b[ref.layer - 1]
        assert matrix is not None
        return float(matrix.reshape(matrix.shape[0], -1)[ref.row, ref.col] if ref.is_weight else matrix[ref.row])


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.array(array, dtype=float)
    array.flags.writeable = False
    return array


def initial_values(network: Network) -> Values:
    """The spec's weights, biases and sample, or their seeded stand-ins.

    Seeded weights are uniform in ±sqrt(6 / (fan_in + fan_out)) (Glorot) or ±sqrt(6 / fan_in)
    (He, for the relu family), from a generator seeded by ``(seed, layer)`` so that giving one
    layer's weights leaves the others' unchanged; seeded biases are zero. A seeded sample has
    inputs uniform in [0, 1) and targets valid for the loss.
    """
    spec = network.spec
    weights, biases = [], []
    for l, layer in enumerate(spec.layers, start=1):
        rng = np.random.default_rng([spec.seed, l])
        fan_in, fan_out, shape = network.fans(l)
        definition = network.activation_def(l)
        he = definition is not None and definition.init == "he"
        limit = np.sqrt(6.0 / (fan_in if he else fan_in + fan_out))
        drawn = rng.uniform(-limit, limit, size=shape)
        if layer.is_rnn:
            weights.append(_frozen(_recurrent_weights(layer, network.sizes[l - 1], drawn)))
        else:
            weights.append(None if not layer.has_parameters else _frozen(layer.weights if layer.weights is not None else drawn))
        count = layer.bias_count
        biases.append(None if count == 0 else _frozen(layer.biases if layer.biases is not None else np.zeros(count)))
    if spec.batch:
        X, T, seeded = np.array([s.x for s in spec.batch]), np.array([s.t for s in spec.batch]), False
    else:
        x, t, seeded = seeded_sample(network, np.random.default_rng([spec.seed, 0]))
        X, T = x[np.newaxis, :], t[np.newaxis, :]
    return Values(tuple(weights), tuple(biases), _frozen(X), _frozen(T), seeded)


def _recurrent_weights(layer, before: int, drawn: np.ndarray) -> np.ndarray:
    """An rnn's W and U side by side [units, before + units], each given or ``drawn``."""
    if layer.weights is not None:
        drawn[:, :before] = layer.weights
    if layer.recurrent is not None:
        drawn[:, before:] = layer.recurrent
    return drawn


def seeded_sample(network: Network, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, bool]:
    """Inputs uniform in [0, 1) and targets valid for the loss: one-hot, 0/1, or uniform."""
    steps = max(network.spec.steps, 1)  # a sequence: every step's inputs and targets, flat
    x = rng.uniform(0.0, 1.0, network.sizes[0] * steps)
    outputs = network.sizes[-1]
    kind = network.loss_def.targets if network.loss_def is not None else "real"
    if kind == "distribution" and network.spec.steps:
        t = np.zeros((steps, outputs))
        t[np.arange(steps), rng.integers(outputs, size=steps)] = 1.0
        t = t.ravel()
    elif kind == "distribution":
        t = np.zeros(outputs)
        t[rng.integers(outputs)] = 1.0
    elif kind == "unit":
        t = rng.integers(0, 2, outputs * steps).astype(float)
    else:
        t = rng.uniform(0.0, 1.0, outputs * steps)
    if network.spec.steps:  # the steps without targets in the spec's batch have none here either (no loss there)
        t = t.reshape(steps, outputs)
        t[[s for s in range(steps) if s not in network.loss_steps]] = np.nan
        t = t.ravel()
    return x, t, True
