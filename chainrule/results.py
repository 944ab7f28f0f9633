"""What the functions of :mod:`chainrule` return: frozen values, each holding the numbers and text
of one command's output, and the engine's own object for anything further.

Numbers are Python floats in float64, in the units of the spec (the loss E of its loss function,
a gradient dE/dθ in units of E per unit of θ). Names are the spec's own (``w5``, ``out_h1``,
``W1``). Nothing here imports sympy or NumPy: a result is built by :mod:`chainrule.api`, which has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

if TYPE_CHECKING:
    from chainrule.codegen.commands import Checked
    from chainrule.derive.check import GroupResult
    from chainrule.derive.derivation import Derivation as EngineDerivation
    from chainrule.derive.hand.diagnosis import Verdict


def _fenced(text: str) -> str:
    return "```text\n" + text.rstrip("\n").replace("```", "'''") + "\n```\n"


@dataclass(frozen=True)
class Factor:
    """One factor of a chain-rule path: ``d(of)/d(wrt)``, as ``chainrule derive`` prints it.

    Attributes:
        name: ``dE/dout_o1``.
        form: the factor as people write it, in the spec's symbols (``out_o1 - t1``).
        derivative: the same factor as sympy differentiates it, before it is written the
            people's way (often equal to ``form``).
        value: its value on the sample (units of ``of`` per unit of ``wrt``).
        note: a remark where the factor needs one (why a form differs), or ``""``.
    """

    name: str
    form: str
    derivative: str
    value: float
    note: str


@dataclass(frozen=True)
class Chain:
    """One parameter's chain rule, as ``chainrule derive SPEC --param NAME`` prints it.

    Attributes:
        name: the parameter (``w5``); ``gradient_name`` its derivative (``dE/dw5``).
        paths: every path from E to the parameter, each a tuple of its factors in chain order;
            a big network's paths start at the deltas of a layer (``note`` says which).
        gradient: dE/dθ, the sum over paths of the products of the factor values (float).
        closed_form: dE/dθ in unit symbols, path by path (text chainrule can read back).
        updated: θ after one step of the spec's optimizer from its zero state (float; θ itself
            when the parameter is frozen).
        update: the step written out (``w5+ = w5 - lr*dE/dw5 = 0.4 - 0.5*0.0821670406 = ...``).
        frozen: the spec freezes this parameter.
        note: why paths start at a layer's deltas (big networks), or ``""``.
        text: the lines ``chainrule derive`` prints for this parameter.
    """

    name: str
    gradient_name: str
    paths: tuple[tuple[Factor, ...], ...]
    gradient: float
    closed_form: str
    updated: float
    update: str
    frozen: bool
    note: str
    text: str

    def _repr_markdown_(self) -> str:
        return f"**{self.gradient_name}** = {self.gradient:.9g}\n\n" + _fenced(self.text)


@dataclass(frozen=True, eq=False)
class Derivation:
    """The derivation of a spec on its sample, as ``chainrule derive SPEC --json`` gives it.

    A *small* network (``form == "scalar"``: one whose report lists every weight) is keyed by
    scalar names (``net_h1``, ``w5``) and each value is a float. A big one (``form == "layer"``)
    is keyed by layer vectors and matrices, each value a NumPy float64 array: ``forward["out_h"]``
    has shape ``(units,)``, ``gradients["W1"]`` and ``updated["W1"]`` shape ``(units, units of
    the layer before)`` (row = destination unit, as in the spec), ``gradients["b1"]`` shape
    ``(units,)`` (``(1,)`` for a shared bias).

    Attributes:
        name: the spec's name; ``form``: ``"scalar"`` or ``"layer"``; ``parameters``: how many.
        loss: E on the sample (float).
        forward: every weighted sum and output on the sample.
        gradients: dE/dθ on the sample, from the layer form.
        updated: every parameter after one step of the spec's optimizer from its zero state.
        closed_forms: dE/dθ in unit symbols (text), for every parameter of a small network and
            for those asked for (``params``) in a big one.
        text: what ``chainrule derive`` prints (with ``params``: only their chains).
        engine: the derivation engine's own object
            (:class:`chainrule.derive.derivation.Derivation`: sympy chains, layer form, program).
    """

    name: str
    form: str
    parameters: int
    loss: float
    forward: Mapping[str, Any]
    gradients: Mapping[str, Any]
    updated: Mapping[str, Any]
    closed_forms: Mapping[str, str]
    text: str
    engine: EngineDerivation = field(repr=False)
    _chain: Callable[[str], Chain] = field(repr=False)

    def chain(self, name: str) -> Chain:
        """The chain rule of parameter ``name`` (any parameter, in a big network too).

        Raises:
            ChainruleError: no parameter is called ``name`` (the message of ``--param``).
        """
        return self._chain(name)

    def __repr__(self) -> str:
        return f"<chainrule.Derivation {self.name}: {self.parameters:,} parameters, {self.form} form, loss {self.loss:.9g}>"

    def _repr_markdown_(self) -> str:
        return f"**{self.name}**: loss E = {self.loss:.9g}\n\n" + _fenced(self.text)


@dataclass(frozen=True, eq=False)
class Check:
    """Central differences against the derivation (and an emitted trainer), as ``chainrule
    check`` runs them.

    Attributes:
        passed: every comparison within the tolerance (``chainrule check`` exits 0).
        points: the points compared (the sample and the seeded random points).
        tolerance: the largest relative error allowed.
        groups: per parameter group and form, the largest relative error and where
            (:class:`chainrule.derive.check.GroupResult`: ``group`` such as ``W1``, ``form``,
            ``checked`` (how many comparisons), ``max_error`` (relative, no unit), ``worst``
            (where it is largest)).
        emitted: the same for the emitted trainer, or ``None`` when none was named.
        text: what ``chainrule check`` prints.
        engine: the command's own result (:class:`chainrule.codegen.commands.Checked`).
    """

    passed: bool
    points: int
    tolerance: float
    groups: tuple[GroupResult, ...]
    emitted: tuple[GroupResult, ...] | None
    text: str
    engine: Checked = field(repr=False)

    def __repr__(self) -> str:
        return f"<chainrule.Check {'passed' if self.passed else 'FAILED'}: {self.points} points>"

    def _repr_markdown_(self) -> str:
        return f"**check {'passed' if self.passed else 'failed'}**\n\n" + _fenced(self.text)


@dataclass(frozen=True, eq=False)
class Verification:
    """A claims file judged, as ``chainrule verify SPEC CLAIMS`` judges it.

    Attributes:
        path: the claims file.
        right, total: how many of the judged parts are right, of how many.
        claims: each judged part (:class:`chainrule.derive.hand.diagnosis.Verdict`: ``claim``,
            ``of``, ``label``, ``part``, ``correct``, ``expected``, ``claimed``, ``written``,
            ``findings``, ``note``, ``diagnosis``), in file order.
        text: what ``chainrule verify`` prints.
    """

    path: str
    right: int
    total: int
    claims: tuple[Verdict, ...]
    text: str

    @property
    def passed(self) -> bool:
        """Every claim right (``chainrule verify`` exits 0)."""
        return self.right == self.total

    def __repr__(self) -> str:
        return f"<chainrule.Verification {self.path}: {self.right} of {self.total} right>"

    def _repr_markdown_(self) -> str:
        return f"**{self.right} of {self.total} right**\n\n" + _fenced(self.text)
