"""Central differences in float64 against the derivation, at the sample and at seeded random points.

For each parameter group (``W1``, ``b1``, ...) the check reports the largest relative error

    |g - fd| / max(|g|, |fd|, FLOOR * max(1, |E|))

between the derived gradient ``g`` and the central difference ``fd = (E(θ+h) - E(θ-h)) / 2h``,
with ``h = STEP * max(1, |θ|)``. The floor keeps entries near zero from being judged on rounding
noise, which grows with the loss (about 1e-16 |E| / h). A small network checks every parameter, in both forms (the sum
over paths of the scalar chains, and the layer form). A big one checks random directions in each
group and a sample of coordinates (the largest gradient and a few at random), so that it costs a
few dozen forward passes, not two per weight.

Random points draw weights, biases, inputs and targets from a seeded generator and are redrawn
while any unit sits within :data:`KINK_MARGIN` of a kink of its activation (relu at 0), where a
derivative is not defined and differences straddle the jump, or while the network is not defined
there (a formula such as log(x) at a negative net, outputs outside (0, 1) for a loss that takes
their logarithm). The sample itself is skipped, with a note, when it sits on a kink.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np
import sympy

from chainrule.derive import spatial
from chainrule.derive.counts import count
from chainrule.derive.derivation import Derivation, PointValues, diagnose, factor_at
from chainrule.derive.evaluate import Pass
from chainrule.derive.network import Network, ParamRef, Values, seeded_sample
from chainrule.derive.numeric import compile_expr
from chainrule.derive.registry import kink_arguments

STEP = 1e-5
FLOOR = 1e-6
TOLERANCE = 1e-4
KINK_MARGIN = 1e-3
RANDOM_POINTS = 3
DIRECTIONS = 2
COORDINATES = 3


@dataclass(frozen=True)
class GroupResult:
    """The largest relative error in one parameter group, in one form of the derivation."""

    group: str
    form: str
    checked: int
    max_error: float
    worst: str


@dataclass(frozen=True)
class CheckResult:
    points: int
    groups: tuple[GroupResult, ...]
    tolerance: float
    notes: tuple[str, ...]

    @property
    def passed(self) -> bool:
        """Every comparison within the tolerance, and at least one point compared."""
        return self.points > 0 and all(g.max_error <= self.tolerance for g in self.groups)


@dataclass
class _Worst:
    error: float = 0.0
    where: str = ""
    checked: int = 0

    def add(self, derived: float, differenced: float, where: str, loss: float) -> None:
        error = abs(derived - differenced) / max(abs(derived), abs(differenced), FLOOR * max(1.0, abs(loss)))
        if not np.isfinite(error):
            error = np.inf
        self.checked += 1
        if error > self.error or not self.where:
            self.error, self.where = error, where


#: Told after each point a check is done with: (points done, points in all).
Progress = Callable[[int, int], None]


def check_derivation(derivation: Derivation, random_points: int = RANDOM_POINTS, tolerance: float = TOLERANCE,
                     progress: Progress | None = None) -> CheckResult:
    """Finite differences against ``derivation`` at its sample and at ``random_points`` seeded
    points; ``progress(done, total)`` after each point.

    Returns:
        Per group and form, the largest relative error found; ``passed`` when all are within
        ``tolerance``.
    """
    return _over_points(derivation, random_points, tolerance, lambda values, run, worst: _check_point(derivation, values, run, worst), progress)


def check_emitted(derivation: Derivation, trainer, random_points: int = RANDOM_POINTS, tolerance: float = TOLERANCE,
                  progress: Progress | None = None) -> CheckResult:
    """Central differences of an emitted trainer's own loss against its own ``gradients``, and its
    gradients against the derivation's, at the sample and at the same seeded points as
    :func:`check_derivation`.

    ``trainer`` is a ``Network`` instance of the emitted module (float64): its ``params`` (views
    that can be written), ``loss(X, T)`` and ``gradients(X, T)`` are all that is used. Two forms
    per group: ``emitted`` (its gradients against differences of its loss) and ``derived`` (its
    gradients against the layer form, relative error with the same floor). The trainer's
    parameters are as they were afterwards.
    """
    saved = {name: np.array(value, copy=True) for name, value in trainer.params.items()}
    try:
        return _over_points(derivation, random_points, tolerance, lambda values, run, worst: _check_emitted_point(derivation, trainer, values, run, worst), progress)
    finally:
        for name, value in saved.items():
            trainer.params[name][...] = value


def _over_points(derivation: Derivation, random_points: int, tolerance: float, check: Callable, progress: Progress | None = None) -> CheckResult:
    """``check(values, run, worst)`` at the sample (unless on a kink) and at up to
    ``random_points`` seeded points; the worst error per (group, form) and the notes."""
    told = progress or (lambda done, total: None)
    worst: dict[tuple[str, str], _Worst] = {}
    notes: list[str] = []
    kinks = _kink_functions(derivation.network)
    checked = drawn = 0
    kink = _near_kink(derivation, derivation.sample, kinks)
    if kink:
        notes.append(f"the sample is skipped: {kink}")
    else:
        checked += 1
        check(derivation.values, derivation.sample, worst)
    told(1, 1 + random_points)
    with np.errstate(all="ignore"):
        for values in iter_random_values(derivation, random_points, kinks):
            drawn += 1
            check(values, derivation.numbers.run(values.W, values.b, values.X, values.T), worst)
            told(1 + drawn, 1 + random_points)
    if drawn < random_points:
        notes.append(f"{count(random_points - drawn, 'random point')} not found: none of 200 draws was away from kinks with the network defined")
    checked += drawn
    groups = tuple(GroupResult(group, form, w.checked, w.error, w.where) for (group, form), w in worst.items())
    return CheckResult(checked, groups, tolerance, tuple(notes))


def _check_emitted_point(derivation: Derivation, trainer, values: Values, run: Pass, worst: dict[tuple[str, str], _Worst]) -> None:
    X, T = values.X, values.T
    groups = []  # (layer, kind, name, the derivation's gradient)
    for l, form in enumerate(derivation.layers):
        if form.weight is None:
            continue  # a layer without weights
        matrices = derivation.network.weight_matrices(l + 1, values.W[l])
        for name, W in matrices:  # an rnn's W and U apart
            trainer.params[name][...] = W
        groups.append((l, "W", ",".join(name for name, _ in matrices), run.dW[l]))
        if form.bias is not None:
            trainer.params[form.bias][...] = values.b[l]
            groups.append((l, "b", form.bias, run.db[l]))
    with np.errstate(all="ignore"):
        E = float(trainer.loss(X, T))
        emitted = {name: np.asarray(g, dtype=float) for name, g in trainer.gradients(X, T).items()}
    for l, _, name, _ in groups:  # an rnn's W and U side by side, as the derivation holds them
        if "," in name:
            emitted[name] = np.concatenate([emitted[n] for n in name.split(",")], axis=1)

    def loss(l: int, kind: str, group: np.ndarray) -> float:
        pairs = derivation.network.weight_matrices(l + 1, group) if kind == "W" else ((derivation.layers[l].bias, group),)
        kept = [(name, trainer.params[name].copy()) for name, _ in pairs]
        for name, part in pairs:
            trainer.params[name][...] = part
        try:
            with np.errstate(all="ignore"):
                return float(trainer.loss(X, T))
        finally:
            for name, part in kept:
                trainer.params[name][...] = part

    for l, kind, name, derived in groups:
        got, derived = emitted[name], np.asarray(derived, dtype=float)
        against_differences = worst.setdefault((name, "emitted"), _Worst())
        for where, g, differenced in _group_checks(derivation.network, values, loss, l, kind, got, derivation.small):
            against_differences.add(g, differenced, where, E)
        against_derivation = worst.setdefault((name, "derived"), _Worst())
        if got.shape != derived.shape:
            against_derivation.add(np.inf, 0.0, f"{name} has shape {got.shape}, the derivation's {derived.shape}", E)
            continue
        with np.errstate(all="ignore"):
            errors = np.abs(got - derived) / np.maximum(np.maximum(np.abs(got), np.abs(derived)), FLOOR * max(1.0, abs(E)))
        index = np.unravel_index(int(np.argmax(np.where(np.isfinite(errors), errors, np.inf))), got.shape)
        label = derivation.network.weight_label(l + 1, tuple(int(i) for i in index)) if kind == "W" else f"{name}[{', '.join(str(int(i)) for i in index)}]"
        against_derivation.add(float(got[index]), float(derived[index]), label, E)
        against_derivation.checked += got.size - 1


def _check_point(derivation: Derivation, values: Values, run: Pass, worst: dict[tuple[str, str], _Worst]) -> None:
    network = derivation.network
    loss = _loss_function(derivation, values)
    E = run.loss
    for l, form in enumerate(derivation.layers):
        for kind, grads in (("W", run.dW[l]), ("b", run.db[l])):
            if grads is None:
                continue
            group = (form.weight if form.recurrent is None else f"{form.weight},{form.recurrent}") if kind == "W" else form.bias or ""
            layer_worst = worst.setdefault((group, "layer"), _Worst())
            for where, derived, differenced in _group_checks(network, values, loss, l, kind, grads, derivation.small):
                layer_worst.add(derived, differenced, where, E)
    if derivation.small:
        envs = [PointValues(network, values, run, row) for row in range(values.samples)]
        reduce = np.mean if network.spec.reduction == "mean" else np.sum
        for name, chain in derivation.chains.items():
            ref = chain.param
            group = derivation.layers[ref.layer - 1].weight if ref.is_weight else derivation.layers[ref.layer - 1].bias or ""
            # each sample's chain, then reduced as the loss is; the L2 penalty's l2*w once
            derived = float(reduce([sum(np.prod([factor_at(f, env) for f in p.factors]) for p in chain.paths) for env in envs]))
            if chain.penalty != 0:
                derived += _value(chain.penalty, envs[0])
            differenced = _difference(loss, l=ref.layer - 1, kind="W" if ref.is_weight else "b", index=_index(values, ref), values=values)
            worst.setdefault((group, "scalar"), _Worst()).add(derived, differenced, name, E)


def _index(values: Values, ref: ParamRef) -> tuple[int, ...]:
    """Where a parameter sits in its layer's array (a kernel weight's ``col`` unravelled over
    [in, kh, kw])."""
    if not ref.is_weight:
        return (ref.row,)
    shape = values.W[ref.layer - 1].shape
    return (ref.row, *(int(i) for i in np.unravel_index(ref.col, shape[1:])))


def _value(expr: sympy.Expr, env: PointValues) -> float:
    with np.errstate(all="ignore"):
        return float(compile_expr(expr)(env))


Loss = Callable[[int, str, np.ndarray], float]


def _loss_function(derivation: Derivation, values: Values) -> Loss:
    """E as a function of one group's values (the others held at ``values``)."""
    numbers = derivation.numbers

    def loss(l: int, kind: str, group: np.ndarray) -> float:
        W, b = list(values.W), list(values.b)
        (W if kind == "W" else b)[l] = group
        return numbers.loss(tuple(W), tuple(b), values.X, values.T)

    return loss


def _difference(loss: Loss, l: int, kind: str, index: tuple[int, ...], values: Values) -> float:
    base = (values.W if kind == "W" else values.b)[l]
    h = STEP * max(1.0, abs(float(base[index])))
    plus, minus = base.copy(), base.copy()
    plus[index] += h
    minus[index] -= h
    return (loss(l, kind, plus) - loss(l, kind, minus)) / (2 * h)


def _group_checks(network: Network, values: Values, loss: Loss, l: int, kind: str, grads: np.ndarray, small: bool):
    """(where, derived, differenced) for every coordinate (small) or for directions and a few
    coordinates (big)."""
    base = (values.W if kind == "W" else values.b)[l]
    name = f"{kind}{network.matrix_number(l + 1)}"
    if kind == "W" and network.spec.layers[l].is_rnn:
        name += f",U{network.matrix_number(l + 1)}"
    if small:
        coordinates: Sequence[tuple[int, ...]] = list(np.ndindex(*base.shape))
    else:
        rng = np.random.default_rng([network.spec.seed, 7, l, kind == "W"])
        largest = np.unravel_index(int(np.argmax(np.abs(grads))), grads.shape)
        drawn = [tuple(int(rng.integers(n)) for n in base.shape) for _ in range(COORDINATES - 1)]
        coordinates = [tuple(int(i) for i in largest)] + drawn
        for d in range(DIRECTIONS):
            v = rng.standard_normal(base.shape)
            v /= np.linalg.norm(v)
            h = STEP * max(1.0, float(np.max(np.abs(base))))
            differenced = (loss(l, kind, base + h * v) - loss(l, kind, base - h * v)) / (2 * h)
            yield f"{name} direction {d + 1}", float(np.sum(grads * v)), differenced
    for index in coordinates:
        label = network.weight_label(l + 1, index) if kind == "W" else f"{name}[{', '.join(map(str, index))}]"
        yield label, float(grads[index]), _difference(loss, l, kind, index, values)


def iter_random_values(derivation: Derivation, count: int, kinks: list[tuple[int, Callable]]) -> Iterator[Values]:
    """Up to ``count`` seeded points, one at a time, away from kinks and where the network is
    defined: weights ~ N(0, 1/fan_in), biases ~ N(0, 0.25), inputs uniform in [-1, 1), targets
    valid for the loss."""
    network = derivation.network
    for point in range(count):
        rng = np.random.default_rng([network.spec.seed, 1000 + point])
        for _attempt in range(200):
            W = tuple(rng.standard_normal(network.fans(l)[2]) / np.sqrt(network.fans(l)[0]) if layer.has_parameters else None
                      for l, layer in enumerate(network.spec.layers, start=1))
            b = tuple(None if layer.bias_count == 0 else 0.5 * rng.standard_normal(layer.bias_count) for layer in network.spec.layers)
            x, t, _ = seeded_sample(network, rng)
            candidate = Values(W, b, (2 * x - 1)[np.newaxis, :], t[np.newaxis, :], True)
            run = derivation.numbers.run(candidate.W, candidate.b, candidate.X, candidate.T)
            if _distance_to_kink(run.nets, kinks)[1] is None and not _pool_tie(derivation, run) and diagnose(network, candidate, run) is None:
                yield candidate
                break


def random_values(derivation: Derivation, count: int, kinks: list[tuple[int, Callable]]) -> list[Values]:
    """:func:`iter_random_values` as a list (for tests and small networks)."""
    return list(iter_random_values(derivation, count, kinks))


def _kink_functions(network: Network) -> list[tuple[int, Callable]]:
    result = []
    for l in range(1, network.depth + 1):
        if network.is_softmax(l):
            continue
        f = network.activation(l)
        for arg in kink_arguments(f) + kink_arguments(sympy.diff(f, sympy.Symbol("x", real=True))):
            result.append((l, compile_expr(arg)))
    return result


def _distance_to_kink(nets: Sequence[np.ndarray], kinks: list[tuple[int, Callable]]) -> tuple[int, int | None]:
    """The first (layer, unit) within :data:`KINK_MARGIN` of a kink at the first row, or (0, None)."""
    for l, f in kinks:
        distance = np.abs(np.broadcast_to(f({"x": nets[l - 1]}), nets[l - 1].shape))[0]
        close = np.flatnonzero(distance < KINK_MARGIN)
        if close.size:
            return l, int(close[0])
    return 0, None


def _pool_tie(derivation: Derivation, run: Pass) -> str:
    """The first max-pool window (at the first row) whose two largest inputs lie within
    :data:`KINK_MARGIN` of each other, a kink of max where differences straddle the switch of
    the largest (PyTorch routes a tie to the first), or ``""``."""
    for form in derivation.layers:
        if form.window is None or not form.kind.startswith("maxpool") or form.window.places < 2:
            continue
        values = run.nets[form.index - 1][:1].copy()  # the pool's input: the layer below's outputs
        below = derivation.layers[form.index - 2] if form.index > 1 else None
        if below is not None and below.weight is not None and below.f_prime is not None:
            # an input whose f' is 0 (relu's dead units) does not move: a tie among those is no kink
            slope = np.broadcast_to(compile_expr(below.f_prime)({"x": run.nets[form.index - 2][:1]}), values.shape)
            values[slope == 0] = -np.inf
        tiles = spatial._tiles(values, form.window.geometry)  # [1, C, Ho, kh, Wo, kw]
        places = np.sort(tiles.transpose(0, 1, 2, 4, 3, 5).reshape(-1, form.window.places), axis=1)
        with np.errstate(invalid="ignore"):  # -inf - -inf: two dead inputs, no kink
            close = np.flatnonzero(places[:, -1] - places[:, -2] < KINK_MARGIN)
        if close.size:
            unit = derivation.network.units(form.index)[int(close[0])]
            return f"the window of {unit} has two largest inputs within {KINK_MARGIN:g} of each other, a kink of max"
    return ""


def _near_kink(derivation: Derivation, run: Pass, kinks: list[tuple[int, Callable]]) -> str:
    """Why the point of ``run`` sits on a kink (which unit, which activation; a max-pool window
    with two largest inputs), or ``""``."""
    l, unit = _distance_to_kink(run.nets, kinks)
    if unit is None:
        return _pool_tie(derivation, run)
    name = derivation.network.activation_input(l, unit % derivation.network.sizes[l]).name  # a sequence: flat, step by step
    return f"{name} = {float(run.nets[l - 1][0, unit]):.3g} is at a kink of {derivation.layers[l - 1].activation}"
