"""Load an emitted trainer (``chainrule check SPEC --emitted FILE``) to check it against the spec.

Importing the file runs it, as ``python FILE`` would; it is the user's own file, named on the
command line. Its ``ARCHITECTURE`` line must be the one this spec emits, so that a trainer of
another network is refused before any number is compared.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import traceback
from pathlib import Path

import numpy as np

from chainrule.derive.check import CheckResult, check_emitted
from chainrule.derive.derivation import Derivation
from chainrule.derive.errors import ChainruleError

from chainrule.codegen.trainer.context import architecture

FIELD = "--emitted"


def load_trainer(path: str, derivation: Derivation):
    """A float64 ``Network()`` of the emitted module at ``path``, after checking its architecture."""
    file = Path(path)
    if not file.is_file():
        raise ChainruleError(path, FIELD, "expected an emitted trainer (a .py file written by chainrule emit), found no such file")
    if file.suffix != ".py":
        raise ChainruleError(path, FIELD, f"expected an emitted trainer (a .py file written by chainrule emit), got a {file.suffix or 'suffix-less'} file")
    name = "_chainrule_emitted_" + hashlib.sha256(str(file.resolve()).encode()).hexdigest()[:16]
    loader_spec = importlib.util.spec_from_file_location(name, file)
    if loader_spec is None or loader_spec.loader is None:
        raise ChainruleError(path, FIELD, "cannot be imported as a Python module")
    module = importlib.util.module_from_spec(loader_spec)
    try:  # what the file prints is not check's output, and its exit is not check's exit code
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            loader_spec.loader.exec_module(module)
    except (Exception, SystemExit) as error:  # the file is arbitrary Python: any failure is the file's, said in one line
        raise ChainruleError(path, FIELD, f"cannot be imported: {type(error).__name__}: {error}") from None
    expected = architecture(derivation)
    found = getattr(module, "ARCHITECTURE", None)
    if found != expected:
        shown = "no ARCHITECTURE line" if found is None else repr(found)
        raise ChainruleError(path, FIELD, f"is not the trainer of this spec: it has {shown}, the spec's is {expected!r} (emit it again: chainrule emit SPEC)")
    try:
        return module.Network(dtype=np.float64)
    except (Exception, SystemExit) as error:
        raise ChainruleError(path, FIELD, f"Network() fails: {type(error).__name__}: {error}") from None


def check_trainer(derivation: Derivation, trainer, path: str, random_points: int, progress=None) -> CheckResult:
    """:func:`~chainrule.derive.check.check_emitted`, with an exception raised inside the trainer
    file (its loss or gradients failing on a point the derivation allows) said in one line
    naming the file, where it was a traceback; anything raised elsewhere is a bug and raised."""
    file = str(Path(path).resolve())
    try:
        return check_emitted(derivation, trainer, random_points=random_points, progress=progress)
    except (Exception, SystemExit) as error:
        frames = traceback.extract_tb(error.__traceback__)
        if not any(str(Path(frame.filename).resolve()) == file for frame in frames):
            raise
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ChainruleError(path, FIELD, f"the trainer raised {type(error).__name__}{': ' + first if first else ''} (emit it again: chainrule emit SPEC)") from None
