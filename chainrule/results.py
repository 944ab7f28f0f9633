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
    engine: EngineDerivation | None = field(default=None, repr=False, compare=False)

    def _repr_markdown_(self) -> str:
        return f"**{self.gradient_name}** = {self.gradient:.9g}\n\n" + _fenced(self.text)

    def _repr_html_(self) -> str | None:
        """The report's section of this parameter: the chain rule, each factor with its numbers,
        each path, the optimizer's step, as MathML."""
        if self.engine is None:
            return None
        from chainrule.codegen.report.notebook import chain_html

        return chain_html(self.engine, self.name, f"{self.gradient_name} = {self.gradient:.9g}", self.text)

    def _repr_latex_(self) -> str | None:
        """The same displays as LaTeX (an ``aligned`` block, for MathJax and nbconvert)."""
        if self.engine is None:
            return None
        from chainrule.codegen.report.notebook import chain_latex

        return chain_latex(self.engine, self.name)


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
        __tracebackhide__ = True  # IPython and pytest leave this frame out of what they show
        return self._chain(name)

    def __repr__(self) -> str:
        return f"<chainrule.Derivation {self.name}: {self.parameters:,} parameters, {self.form} form, loss {self.loss:.9g}>"

    def _repr_markdown_(self) -> str:
        return f"**{self.name}**: loss E = {self.loss:.9g}\n\n" + _fenced(self.text)

    def _repr_html_(self) -> str:
        """The derivation typeset (MathML): the forward pass and loss, every gradient and updated
        value, the layer form; a big network per layer, as ``chainrule derive`` prints it."""
        from chainrule.codegen.report.notebook import derivation_html

        summary = f"{self.name}: {self.parameters:,} parameters, loss E = {self.loss:.9g}"
        return derivation_html(self.engine, summary, self.text)

    def _repr_latex_(self) -> str | None:
        """The forward pass and loss (a big network: the layer form) as LaTeX for MathJax."""
        from chainrule.codegen.report.notebook import derivation_latex

        return derivation_latex(self.engine)


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

    def _repr_html_(self) -> str:
        """Passed or not, then each group's largest relative error, as a table."""
        from chainrule.codegen.report.notebook import check_html

        return check_html(self.passed, self.points, self.tolerance, self.groups, self.emitted, self.engine.emitted_path)


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

    def _repr_html_(self) -> str:
        """Right of total, then each judged part as a row: the label as math, what was claimed,
        what is right and what went wrong (the claims' own text escaped)."""
        from chainrule.codegen.report.notebook import verification_html

        return verification_html(self.path, self.right, self.total, self.claims)


@dataclass(frozen=True, eq=False)
class History:
    """A network trained by :func:`chainrule.train`, epoch by epoch.

    Attributes:
        name: the spec's name.
        epochs, batch_size, seed: as trained (the shuffling is seeded by ``seed``, as
            ``Network.fit`` seeds it: the same steps as ``fit(X, T, epochs, batch_size, seed)``).
        rows: the training rows (the held-out rows not counted).
        before: the loss on the training rows before the first step.
        loss: the loss on the training rows after each epoch (``Network.evaluate``; units of
            the spec's loss, averaged over the rows as the spec reduces).
        step_loss: the mean loss of each epoch's steps (what ``Network.fit`` returns).
        accuracy: the accuracy after each epoch (fraction of rows, 0 to 1), for a classifier
            (a softmax output, or ``bce`` after a sigmoid); else None.
        held_out_loss, held_out_accuracy: the same on the held-out rows (``validation_split``),
            or None.
        network: the trained network (the emitted trainer's ``Network``).
    """

    name: str
    epochs: int
    batch_size: int
    seed: int
    rows: int
    before: float
    loss: tuple[float, ...]
    step_loss: tuple[float, ...]
    accuracy: tuple[float, ...] | None
    held_out_loss: tuple[float, ...] | None
    held_out_accuracy: tuple[float, ...] | None
    network: Any = field(repr=False)

    @property
    def final_loss(self) -> float:
        """The loss on the training rows after the last epoch (``before`` with no epochs)."""
        return self.loss[-1] if self.loss else self.before

    def plot(self, ax: Any = None) -> Any:
        """Draw the loss per epoch (and the accuracy on a second axis) with matplotlib; returns
        the loss's axes.

        Args:
            ax: a matplotlib Axes to draw into; by default a new figure's (``pyplot.subplots``).

        Raises:
            ImportError: matplotlib is not installed (``pip install chainrule[notebook]``).
        """
        from chainrule.codegen.report.notebook import plot_history

        if ax is None:
            try:
                from matplotlib import pyplot
            except ImportError:
                raise ImportError("History.plot needs matplotlib: pip install chainrule[notebook]") from None
            _, ax = pyplot.subplots(figsize=(6.4, 3.2), layout="constrained")
        return plot_history(ax, self.loss, self.accuracy, self.held_out_loss, self.held_out_accuracy, self.name)

    def __repr__(self) -> str:
        from chainrule.codegen.report.notebook import epoch_count

        return f"<chainrule.History {self.name}: {epoch_count(self.epochs)}, loss {self.before:.6g} -> {self.final_loss:.6g}>"

    def _repr_markdown_(self) -> str:
        from chainrule.codegen.report.notebook import epoch_count

        lines = [f"**{self.name}**: {epoch_count(self.epochs)}, loss {self.before:.6g} before, {self.final_loss:.6g} after", ""]
        if self.accuracy:
            lines[0] += f", accuracy {self.accuracy[-1]:.4f}"
        return "\n".join(lines) + "\n"

    def _repr_html_(self) -> str:
        """A table (the first, middle and last epochs) and the curve as a PNG when matplotlib is
        installed."""
        from chainrule.codegen.report.notebook import history_html, history_png

        image = history_png(self.loss, self.accuracy, self.held_out_loss, self.held_out_accuracy, self.name) if self.loss else None
        return history_html(self.name, self.loss, self.accuracy, self.held_out_loss, self.held_out_accuracy, self.before, image)
