"""Recurrent layers in the spec: ``steps``, ``kind: rnn`` and sequences as samples (spec section 6).

An rnn layer is PyTorch's ``nn.RNN`` with one bias (Elman): ``h_t = f(W x_t + U h_(t-1) + b)``
over the ``steps`` of a sequence, from ``h_0`` (``initial``, zeros by default). Layers before it
and after it are applied at every step; the loss is summed over the steps that have a target.
:class:`SequenceReader` reads these fields for the spec loader (:mod:`chainrule.derive.spec`),
raising its one-line errors.

A sequence sample is ``x: [steps][inputs]`` and ``t: [steps][outputs]``, a step's targets
``null`` where that step has no loss. Both are held flat, step by step (``steps * inputs``
numbers), a step without targets as NaN: the layer program's mask (``Masked``) leaves them out.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Sequence

from chainrule.derive.counts import count as counted
from chainrule.derive.errors import shown

RNN_KIND = "rnn"
RNN_KEYS = ("name", "kind", "units", "activation", "bias", "weights", "recurrent_weights", "biases", "initial", "freeze")
MAX_STEPS = 1_000


class SequenceReader:
    """Reads ``steps``, rnn layers and sequence samples for the spec loader ``reader`` (its
    accessors and ``fail``)."""

    def __init__(self, reader: Any) -> None:
        self.r = reader

    def steps(self, top: dict) -> int:
        """``steps``: the sequence length T (0 where the spec gives none: no sequences)."""
        if "steps" not in top:
            return 0
        return self.r.integer(top["steps"], "steps", 1, MAX_STEPS)

    def check_order(self, items: Sequence[Any], steps: int, spatial: bool) -> None:
        """An rnn reads one vector per step: the spec gives ``steps``, vector inputs, and a dense
        layer after the rnn gives the outputs at each step."""
        kinds = [item.get("kind", "dense") if isinstance(item, dict) else "dense" for item in items]
        rnns = [i for i, kind in enumerate(kinds) if kind == RNN_KIND]
        if not rnns:
            if steps:
                raise self.r.fail("steps", "given, but no layer is of kind: rnn (steps is the length of an rnn's sequences)")
            return
        first = rnns[0]
        if spatial:
            raise self.r.fail(f"layers[{first}].kind", "an rnn layer reads a vector at each step, but the inputs are feature maps "
                              "(inputs: {shape: ...}, convolutions, flatten); give inputs as a list or count, and steps: T")
        if not steps:
            raise self.r.fail("steps", f"required by layers[{first}] (kind: rnn): the number of steps T of every sequence")
        if rnns[-1] == len(items) - 1:
            raise self.r.fail(f"layers[{len(items) - 1}].kind", "an rnn layer is not the output layer here; add a dense layer after it "
                              "(applied at every step, as PyTorch's nn.RNN followed by nn.Linear)")

    def layer(self, value: Any, path: str, before: int) -> Any:
        """An rnn layer after a layer of ``before`` units per step: the reader's ``LayerSpec``,
        its ``weights`` W [units][before], ``recurrent`` U [units][units], ``initial`` h_0."""
        r = self.r
        raw = r.mapping(value, path, RNN_KEYS, ("name", "units", "activation"))
        name = r.name(raw["name"], f"{path}.name")
        units = r.units(raw["units"], f"{path}.units", name)
        n = len(units)
        activation = r.activation(raw["activation"], f"{path}.activation")
        if activation.name == "softmax":
            raise r.fail(f"{path}.activation", "an rnn layer takes an elementwise activation (tanh, relu, sigmoid, ...); softmax belongs on a dense layer after it")
        bias = r.choice(raw.get("bias", "per_unit"), f"{path}.bias", ("per_unit", "none"), "bias mode")
        weights = self.matrix(raw.get("weights"), f"{path}.weights", n, before, "W", "the layer before's units at a step")
        recurrent = self.matrix(raw.get("recurrent_weights"), f"{path}.recurrent_weights", n, n, "U", "the layer's own units at the step before")
        biases = None
        if raw.get("biases") is not None:
            if bias == "none":
                raise r.fail(f"{path}.biases", "given, but the layer has bias: none")
            biases = r.numbers(raw["biases"], f"{path}.biases", n)
        initial = None if raw.get("initial") is None else r.numbers(raw["initial"], f"{path}.initial", n)
        layer = r.layer_spec(name=name, units=units, kind=RNN_KIND, activation=activation, bias=bias, weights=weights, biases=biases,
                             freeze=r.freeze(raw.get("freeze", []), f"{path}.freeze"))
        return dataclasses.replace(layer, recurrent=recurrent, initial=initial)

    def matrix(self, value: Any, path: str, rows: int, cols: int, symbol: str, columns: str) -> tuple[tuple[float, ...], ...] | None:
        """``rows`` x ``cols`` numbers (W or U, row j the weights into unit j), or None."""
        if value is None:
            return None
        what = f"{symbol} as {rows} rows of {cols} (row j: the weights into unit j from {columns})"
        if not isinstance(value, list) or len(value) != rows:
            got = counted(len(value), "row") if isinstance(value, list) else shown(value)
            raise self.r.fail(path, f"expected {what}; got {got}")
        out = []
        for i, row in enumerate(value):
            if not isinstance(row, list) or len(row) != cols:
                got = counted(len(row), "entry") if isinstance(row, list) else shown(row)
                raise self.r.fail(f"{path}[{i}]", f"expected {what}; got {got}")
            out.append(tuple(self.r.number(v, f"{path}[{i}][{j}]") for j, v in enumerate(row)))
        return tuple(out)

    def sample_x(self, value: Any, path: str, steps: int, inputs: int) -> tuple[float, ...]:
        """A sequence's inputs ``[steps][inputs]``, flat step by step."""
        rows = self.rows(value, path, steps, "inputs")
        return tuple(v for i, row in enumerate(rows) for v in self.r.numbers(row, f"{path}[{i}]", inputs))

    def sample_t(self, value: Any, path: str, steps: int, outputs: int, check: Callable[[tuple[float, ...], str], None]) -> tuple[float, ...]:
        """A sequence's targets ``[steps][outputs]``, a step ``null`` where it has no loss (NaN
        here), each other step's checked by ``check(row, path)``."""
        out: list[float] = []
        for i, row in enumerate(self.rows(value, path, steps, "targets (or null: no loss at that step)")):
            if row is None:
                out += [math.nan] * outputs
                continue
            if isinstance(row, list) and None in row:
                k = row.index(None)
                raise self.r.fail(f"{path}[{i}][{k}]", f"expected a number, got null: a step has all its targets or none (write null for the "
                                                       f"whole step, {path}[{i}]: null, for no loss at step {i + 1})")
            numbers = self.r.numbers(row, f"{path}[{i}]", outputs)
            check(numbers, f"{path}[{i}]")
            out += numbers
        return tuple(out)

    def rows(self, value: Any, path: str, steps: int, what: str) -> list[Any]:
        if not isinstance(value, list) or len(value) != steps:
            got = counted(len(value), "step") if isinstance(value, list) else shown(value)
            raise self.r.fail(path, f"expected a sequence of {counted(steps, 'step')} (steps: {steps}; every sequence has that length), "
                              f"one list of {what} per step; got {got}")
        return value

    def check_some_loss(self, samples: Sequence[Any], path: str) -> None:
        """At least one step of one sample has targets: else there is no loss at all."""
        if samples and all(math.isnan(v) for s in samples for v in s.t):
            raise self.r.fail(path, "every step's target is null, so there is no loss at all; give at least one step its targets")


def sum_over_steps(spec: Any, layer: int, name: str, used: int) -> str:
    """How a sequence network's parameter ``name`` of ``layer`` (1-based) sums over the steps, for
    derive's text and verify's words: ``the sum over the 3 steps where w1 is used``; where only
    ``used`` of the ``spec.steps`` steps lead to a loss (steps without targets add no term), ``the
    sum over the 2 steps with targets, of the 3 where w5 is used`` (an rnn's own weights: ``up to
    the last with targets``); one step: ``used at one step``, ``used at 3 steps, one of them
    leading to a loss``."""
    read = spec.steps
    if used >= read:
        return f"the sum over the {used} steps where {name} is used" if used > 1 else "used at one step"
    if used > 1:
        which = "up to the last with targets" if spec.layers[layer - 1].is_rnn else "with targets"
        return f"the sum over the {used} steps {which}, of the {read} where {name} is used"
    return f"used at {read} steps, {'one' if used else 'none'} of them leading to a loss"
