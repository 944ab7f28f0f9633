"""Several optimizer steps on the sample (``chainrule derive --steps N``), taken by the emitted
trainer's own ``step`` in float64, so the figures are the trainer's (spec.md section 5).

Row ``k`` holds the loss and the parameters after ``k`` steps (row 0: before any), and the
optimizer's state (momentum's velocity, adam's m and v) after them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from chainrule.derive.derivation import Derivation
from chainrule.derive.errors import ChainruleError
from chainrule.derive.optimizers import OPTIMIZERS

from chainrule.codegen.progress import progress
from chainrule.codegen.trainer.inprocess import trainer_module

#: The most numbers (parameters and state, over every step) one run records: 16 MB as float64,
#: about 60 MB of JSON with --json.
MAX_RECORDED = 2_000_000
FIELD = "--steps"


#: ``derive --steps N`` prints every step up to this many, else the first ten, each power of ten
#: and the last.
STEPS_SHOWN = 20


def shown_steps(count: int) -> list[int]:
    """The rows of the steps table: all up to :data:`STEPS_SHOWN`, else 0-10, 100, 1000, ...
    and the last."""
    if count <= STEPS_SHOWN:
        return list(range(count + 1))
    rows = list(range(11))
    power = 100
    while power < count:
        rows.append(power)
        power *= 10
    return rows + [count]


@dataclass(frozen=True)
class Steps:
    """The loss and parameters after each of ``count`` optimizer steps on the sample.

    Attributes:
        count: N, the number of steps taken.
        losses: [N + 1] E after 0, 1, ..., N steps (float64, the loss's units).
        theta: [N + 1, parameters] every parameter after 0, 1, ..., N steps, in the order of
            :meth:`~chainrule.derive.network.Network.parameters` (layer by layer, weights row by
            row, then biases).
        state: the optimizer's state by name (``velocity``, ``m``, ``v``), each [N + 1, parameters].
        names: the scalar parameters' names, in the order of ``theta``'s columns.
        slots: each matrix's name (``W1``, ``b1``), its columns of ``theta`` and its shape.
    """

    count: int
    losses: np.ndarray
    theta: np.ndarray
    state: Mapping[str, np.ndarray]
    names: tuple[str, ...]
    slots: tuple[tuple[str, int, int, tuple[int, ...]], ...]

    @property
    def shown(self) -> list[int]:
        """The steps a table shows (:func:`shown_steps`): derive's text and the report alike."""
        return shown_steps(self.count)

    def params(self, k: int, by: str = "name") -> dict[str, Any]:
        """The parameters after ``k`` steps: by scalar name (``{"w5": 0.35}``) or, with
        ``by="matrix"``, as nested lists per matrix (``{"W1": [[...]], "b1": [...]}``)."""
        return self._values(self.theta[k], by)

    def state_after(self, k: int, by: str = "name") -> dict[str, dict[str, Any]]:
        """The optimizer's state after ``k`` steps, each entry as :meth:`params` gives it."""
        return {name: self._values(values[k], by) for name, values in self.state.items()}

    def _values(self, row: np.ndarray, by: str) -> dict[str, Any]:
        if by == "name":
            return dict(zip(self.names, map(float, row)))
        return {name: row[start:stop].reshape(shape).tolist() for name, start, stop, shape in self.slots}


def follow_steps(d: Derivation, count: int, spec_path: str = ".") -> Steps:
    """``count`` optimizer steps on ``d``'s sample, by the emitted trainer in float64.

    Raises:
        ChainruleError: ``count`` is negative, or the run would record more than
            :data:`MAX_RECORDED` numbers; a step would make the loss or a parameter inf or nan
            (said with the step).
    """
    network = d.network
    state_names = OPTIMIZERS[network.spec.optimizer.kind].state
    if count < 0:
        raise ChainruleError(network.spec.source, FIELD, f"expected a number of steps of at least 0, got {count}")
    recorded = (count + 1) * network.parameter_count * (1 + len(state_names))
    if recorded > MAX_RECORDED:
        raise ChainruleError(network.spec.source, FIELD, f"{count} steps of {network.parameter_count:,} parameters would record {recorded:,} numbers; "
                             f"at most {MAX_RECORDED:,}: ask for fewer steps")
    module = trainer_module(d, spec_path)
    net = module.Network(dtype=np.float64)
    X, T = d.values.X, d.values.T
    losses = np.empty(count + 1)
    theta = np.empty((count + 1, net.theta.size))
    state = {name: np.zeros((count + 1, net.theta.size)) for name in state_names}
    theta[0] = net.theta
    with progress("steps", "step") as told:
        for k in range(count):
            try:
                losses[k] = net.step(X, T)
            except FloatingPointError as error:
                raise ChainruleError(network.spec.source, FIELD, f"step {k + 1}: {error}") from None
            theta[k + 1] = net.theta
            for name in state_names:
                state[name][k + 1] = getattr(net, name)
            if (k + 1) % 1000 == 0:
                told(k + 1, count)
    losses[count] = net.loss(X, T)
    slots = tuple((name, start, stop, tuple(shape)) for name, (start, stop, shape) in module.SLOTS.items())
    return Steps(count, losses, theta, state, tuple(ref.name for ref in network.parameters()), slots)
