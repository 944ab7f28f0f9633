"""Rich display in Jupyter: the API's results (:mod:`chainrule.results`) as HTML fragments with
math as MathML, and as LaTeX where a formula is the point.

The math is the report's (:mod:`chainrule.codegen.report.context` and
:mod:`chainrule.codegen.report.layers` build it, :mod:`chainrule.codegen.report.mathml` prints
it): a derivation shows the report's forward pass and layer form, one parameter's chain the
report's section of it. A big network is shown per layer, as ``chainrule derive`` prints it.
Fragments are laid out by ``notebook.html.j2`` in the report's template environment
(:func:`~chainrule.codegen.report.htmlpage.environment`), which escapes every plain string:
user text (names of files, claims as written, descriptions) reaches the page only escaped.
"""

from __future__ import annotations

import base64
import io
import itertools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from markupsafe import Markup

from chainrule.derive.derivation import Derivation

from chainrule.codegen.report.recurrence import forward_steps, loss_steps, small_sequence
from chainrule.codegen.report.context import Table, batch_forward, batch_loss_displays, forward_displays, layer_summary, loss_displays, maps_forward, param_section
from chainrule.codegen.report.document import E, Math, Name, Num, partial, updated
from chainrule.codegen.report.equations import Display
from chainrule.codegen.report.htmlpage import environment
from chainrule.codegen.report.layers import layer_displays

if TYPE_CHECKING:
    from chainrule.derive.check import GroupResult
    from chainrule.derive.hand.verify import Verdict

TEMPLATE = "notebook.html.j2"
#: A small network's gradient table lists every parameter up to this many.
TABLE_MAX = 64
_LABEL = re.compile(r"dE/d([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class Cell:
    """One row of a table: math (shown as MathML) or text (escaped)."""

    values: tuple[Any, ...]
    good: bool | None = None


def _render(kind: str, **values: Any) -> str:
    return environment().get_template(TEMPLATE).render(kind=kind, **values).strip() + "\n"


def _math(math: Math) -> Markup:
    return Markup(f"<math>{math.mathml()}</math>")


# ---------------------------------------------------------------------------------------------
# A derivation


def derivation_html(d: Derivation, summary: str, text: str) -> str:
    """A derivation: a summary line, the forward pass and loss (a small network unit by unit, a
    big one per layer), every parameter's gradient and updated value (small) and the layer form;
    a batch of several samples as the report shows it (tables, a column per sample, and E
    reduced)."""
    displays: list[Display | Table] = []
    if small_sequence(d):  # an rnn's: step by step
        displays += [*forward_steps(d), *loss_steps(d)]
    elif d.small:
        displays += [*batch_forward(d), *batch_loss_displays(d)] if d.batch else [*forward_displays(d), *loss_displays(d)]
    else:
        displays += [*layer_summary(d), *maps_forward(d), *(batch_loss_displays(d) if d.batch else ())]
    rows = _gradient_rows(d) if d.small else ()
    example = next(iter(d.chains), None) or _first_weight(d)
    return _render(
        "derivation", summary=summary, forward=tuple(displays), gradients=rows, on="the batch" if d.batch else "the sample", more=max(0, _parameters(d) - len(rows)) if d.small else 0,
        layer_form=layer_displays(d), example=example,
    )


def _parameters(d: Derivation) -> int:
    return d.network.parameter_count


def _first_weight(d: Derivation) -> str:
    return d.network.weight_name(d.network.parameter_layers[0], 0, 0)  # layer 1 may be a pool


def _gradient_rows(d: Derivation) -> tuple[Cell, ...]:
    rows = []
    for ref in itertools.islice(d.network.parameters(), TABLE_MAX):
        name = ref.name
        rows.append(Cell((_math(Name(name)), _math(Num(d.gradient(ref))), _math(Num(d.updated(ref))))))
    return tuple(rows)


def derivation_latex(d: Derivation) -> str | None:
    """The forward pass and loss (small) or the layer form (big) as one ``aligned`` block for
    MathJax; None for a batch of several samples."""
    if d.batch:
        return None
    displays = [*forward_steps(d), *loss_steps(d)] if small_sequence(d) else [*forward_displays(d), *loss_displays(d)] if d.small else list(layer_displays(d))
    return _latex(displays)


# ---------------------------------------------------------------------------------------------
# A chain


def chain_html(d: Derivation, name: str, summary: str, text: str) -> str:
    """One parameter's chain: the report's section (the chain rule, each factor with its
    numbers, each path, the optimizer's step); on a batch of several samples, the factors' values
    and each sample's gradient in a table, a column per sample, then their reduction."""
    section = param_section(d, name)
    return _render("chain", section=section)


def chain_latex(d: Derivation, name: str) -> str | None:
    """The chain's displays as one ``aligned`` block for MathJax; None for a batch."""
    if d.batch:
        return None
    return _latex(param_section(d, name).displays)


def _latex(displays: Sequence[Display]) -> str:
    """Rows of displays as ``$$\\begin{aligned} ... \\end{aligned}$$`` (``\\val`` defined, as
    the report's preamble defines it)."""
    rows = [f"{row.lhs.tex()} &{row.rel.tex()} {row.rhs.tex()}" for display in displays for row in display.rows]
    return "$$\\def\\val#1{#1}\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}$$"


# ---------------------------------------------------------------------------------------------
# A check, verdicts


def check_html(passed: bool, points: int, tolerance: float, groups: Sequence[GroupResult], emitted: Sequence[GroupResult] | None, emitted_path: str) -> str:
    """Central differences: passed or not, then each group's largest relative error (and the
    emitted trainer's)."""
    tables = [("the derivation", _check_rows(groups, tolerance))]
    if emitted is not None:
        tables.append((f"the emitted trainer {emitted_path}", _check_rows(emitted, tolerance)))
    return _render("check", passed=passed, points=points, tolerance=f"{tolerance:g}", tables=tables)


def _check_rows(groups: Sequence[GroupResult], tolerance: float) -> tuple[Cell, ...]:
    return tuple(Cell((g.group, g.form, f"{g.checked:,}", f"{g.max_error:.2e}", g.worst), g.max_error <= tolerance) for g in groups)


def _label(label: str) -> Any:
    """``dE/dw5`` as ∂E/∂w₅, ``w5+`` as w₅⁺, a unit's or the loss's name as math; any other
    label as text."""
    match = _LABEL.fullmatch(label)
    if match:
        return _math(partial(E, Name(match.group(1))))
    name = label.removesuffix("+")
    if name.isascii() and name.isidentifier():
        return _math(updated(name) if label.endswith("+") else Name(name))
    return label


def _shown(value: Any, written: str = "") -> Any:
    if written:
        return written
    return _math(Num(value)) if isinstance(value, float) else str(value)


def verification_html(path: str, right: int, total: int, verdicts: Sequence[Verdict]) -> str:
    """Verdicts: right of total, then each judged part (✓ or ✗, the claim, what was claimed, what
    is right, what went wrong)."""
    from chainrule.codegen.terminal.verify import shown_expected

    rows = []
    for v in verdicts:
        expected = _math(Num(v.expected)) if isinstance(v.expected, float) and shown_expected(v) == f"{v.expected + 0.0:.9g}" else shown_expected(v)
        findings = "; ".join(f.words for f in v.findings) or v.note
        rows.append(Cell((v.claim, _label(v.label), v.part.value, _shown(v.claimed, v.written), "" if v.correct else expected, findings), v.correct))
    return _render("verify", path=path, right=right, total=total, rows=tuple(rows))


# ---------------------------------------------------------------------------------------------
# A training history


def history_html(name: str, loss: Sequence[float], accuracy: Sequence[float] | None, held_loss: Sequence[float] | None,
                 held_accuracy: Sequence[float] | None, before: float, image: str | None) -> str:
    """The training history: the loss before, after the first and the last epoch (and the
    accuracy, held-out numbers), and the curve as a PNG (``image``, base64) when drawn."""
    epochs = len(loss)
    shown = sorted({1, (epochs + 1) // 2, epochs}) if epochs else []
    rows = []
    for e in shown:
        values = [e, f"{loss[e - 1]:.6g}"]
        if accuracy is not None:
            values.append(f"{accuracy[e - 1]:.4f}")
        if held_loss is not None:
            values.append(f"{held_loss[e - 1]:.6g}")
            if held_accuracy is not None:
                values.append(f"{held_accuracy[e - 1]:.4f}")
        rows.append(Cell(tuple(values)))
    header = ["epoch", "loss"] + (["accuracy"] if accuracy is not None else [])
    header += (["held-out loss"] + (["held-out accuracy"] if held_accuracy is not None else [])) if held_loss is not None else []
    return _render("history", name=name, epochs=epoch_count(epochs), before=f"{before:.6g}", header=header, rows=tuple(rows), image=image)


def epoch_count(epochs: int) -> str:
    """``"1 epoch"``, ``"30 epochs"``."""
    return f"{epochs} epoch" + ("" if epochs == 1 else "s")


def history_png(loss: Sequence[float], accuracy: Sequence[float] | None, held_loss: Sequence[float] | None,
                held_accuracy: Sequence[float] | None, title: str) -> str | None:
    """The curve as a base64 PNG, drawn by matplotlib (without pyplot, so no window and no
    global state); None when matplotlib is not installed."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None
    figure = Figure(figsize=(6.4, 3.2), dpi=80, layout="constrained")
    plot_history(figure, loss, accuracy, held_loss, held_accuracy, title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def plot_history(figure_or_axes: Any, loss: Sequence[float], accuracy: Sequence[float] | None, held_loss: Sequence[float] | None,
                 held_accuracy: Sequence[float] | None, title: str) -> Any:
    """Draw the loss per epoch (log scale when it spans more than a factor of 100) and, on a
    second axis, the accuracy; returns the loss's axes. ``figure_or_axes``: a matplotlib
    Figure (a new axes is added) or Axes."""
    axes = figure_or_axes.add_subplot() if hasattr(figure_or_axes, "add_subplot") else figure_or_axes
    epochs = range(1, len(loss) + 1)
    axes.plot(epochs, loss, color="C0", label="loss")
    if held_loss is not None:
        axes.plot(epochs, held_loss, color="C0", linestyle="--", label="held-out loss")
    positive = [v for v in loss if v > 0]
    if positive and max(positive) > 100 * min(positive):
        axes.set_yscale("log")
    from matplotlib.ticker import MaxNLocator

    axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole: no tick at 1.5
    axes.set_xlabel("epoch")
    axes.set_ylabel("loss")
    axes.set_title(title)
    if accuracy is not None:
        twin = axes.twinx()
        twin.plot(epochs, accuracy, color="C1", label="accuracy")
        if held_accuracy is not None:
            twin.plot(epochs, held_accuracy, color="C1", linestyle="--", label="held-out accuracy")
        twin.set_ylabel("accuracy")
        twin.set_ylim(0, 1.02)
        lines = axes.get_lines() + twin.get_lines()
        axes.legend(lines, [line.get_label() for line in lines], loc="center right")
    elif held_loss is not None:
        axes.legend(loc="upper right")
    return axes


__all__ = ["derivation_html", "derivation_latex", "chain_html", "chain_latex", "check_html", "verification_html", "epoch_count", "history_html", "history_png", "plot_history"]
