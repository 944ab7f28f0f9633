"""What each command does, as library functions: the command line (:mod:`chainrule.codegen.cli`)
only parses arguments, calls one of these and prints what it returns."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from chainrule.derive.check import CheckResult, check_derivation
from chainrule.derive.derivation import Derivation, derive
from chainrule.derive.errors import ChainruleError
from chainrule.derive.spec import Spec

from chainrule.codegen.files import write_atomic
from chainrule.codegen.progress import progress
from chainrule.codegen.trainer.context import formulas_left_out, render_trainer
from chainrule.codegen.trainer.emitted import check_trainer, load_trainer

class FormulasLeftOut(UserWarning):
    """``emit(..., formulas=True)`` wrote no ``gradient_formulas``: the message says why."""


#: Random points ``check`` accepts besides the sample.
MAX_POINTS = 100


def emit(spec: Spec, spec_path: str, out_dir: str, formulas: bool = False) -> Path:
    """Write the trainer of ``spec`` as ``out_dir/NAME.py`` (atomically) and return its path;
    with ``formulas``, the trainer also holds ``gradient_formulas`` (every weight's chain written
    out, for a small dense network; otherwise a :class:`FormulasLeftOut` warning says why none).

    Raises:
        ChainruleError: ``out_dir`` is not a directory, or the file cannot be written.
    """
    target = Path(out_dir) / f"{spec.name}.py"
    if Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise ChainruleError(out_dir, "-o", "expected a directory")
    derivation = derive(spec)
    text = render_trainer(derivation, spec_path, out_dir, formulas)
    try:
        write_atomic(target, text)
    except OSError as error:
        raise ChainruleError(str(target), "-o", f"cannot write: {error.strerror or error}") from None
    left_out = formulas_left_out(derivation) if formulas else None
    if left_out is not None:
        warnings.warn(f"{spec.source}: --formulas: {left_out}", FormulasLeftOut, stacklevel=2)
    return target


@dataclass(frozen=True)
class Checked:
    """The outcome of ``check``: the derivation's, and the emitted trainer's when one was named."""

    derivation: Derivation
    result: CheckResult
    emitted: CheckResult | None
    emitted_path: str

    @property
    def passed(self) -> bool:
        return self.result.passed and (self.emitted is None or self.emitted.passed)


def check(spec: Spec, points: int = 3, emitted: str | None = None) -> Checked:
    """Central differences against the derivation at the sample and ``points`` seeded random
    points, and against the gradients of the emitted trainer ``emitted`` when given.

    Raises:
        ChainruleError: ``points`` outside 0 to :data:`MAX_POINTS`, or ``emitted`` is not a
            trainer of this spec.
    """
    if not 0 <= points <= MAX_POINTS:
        raise ChainruleError("", "--points", f"expected 0 to {MAX_POINTS} random points, got {points}")
    derivation = derive(spec)
    trainer = load_trainer(emitted, derivation) if emitted else None
    with progress("check: the derivation", "point") as told:
        result = check_derivation(derivation, random_points=points, progress=told)
    emitted_result = None
    if trainer is not None:
        with progress("check: the emitted trainer", "point") as told:
            emitted_result = check_trainer(derivation, trainer, emitted, points, told)
    return Checked(derivation, result, emitted_result, emitted or "")
