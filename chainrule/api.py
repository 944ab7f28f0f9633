"""The functions of ``import chainrule``: what each command does, as a call that returns a value.

Each is a thin front over the library functions the command line calls (:mod:`chainrule.codegen`
and :mod:`chainrule.derive`), so numbers and messages are the command line's. sympy, NumPy and
jinja2 are imported by the first call that needs them, not by ``import chainrule``.

Every function that takes a ``spec`` takes what :func:`load` returns, or anything :func:`load`
takes (a path or a dict). Bad input raises :class:`~chainrule.derive.errors.ChainruleError` (a
:class:`ValueError`) whose message is the line ``chainrule`` prints after ``chainrule: error:``;
it is raised from this module, without the traceback of chainrule's internals.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence, TypeVar, Union

from chainrule.derive.errors import ChainruleError
from chainrule.results import Chain, Check, Derivation, Factor, History, Verification

if TYPE_CHECKING:
    from chainrule.derive.derivation import Derivation as EngineDerivation
    from chainrule.derive.spec import Spec

#: What a function taking a spec accepts: a loaded spec, a spec file's path, or the spec's data.
SpecLike = Union["Spec", str, os.PathLike, Mapping[str, Any]]
#: The formats :func:`loads` reads.
FORMATS = ("yaml", "toml", "json")

F = TypeVar("F", bound=Callable[..., Any])


def _one_line(function: F) -> F:
    """Raise a ChainruleError from here, without the frames of chainrule's internals or the
    exception it was raised while handling: a notebook shows the message and this call."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True  # IPython and pytest leave this frame out of what they show
        try:
            return function(*args, **kwargs)
        except ChainruleError as error:
            raise error.with_traceback(None) from None

    return wrapper  # type: ignore[return-value]


def _argument_error(function: str, name: str, expected: str, value: Any) -> ChainruleError:
    from chainrule.derive.errors import shown

    return ChainruleError(f"chainrule.{function}", name, f"expected {expected}, got {shown(value)}")


def _integer(function: str, name: str, value: Any, low: int, high: int | None = None) -> int:
    """``value`` as an int in [low, high]; a bool, a float or a string is refused."""
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low or (high is not None and value > high):
        expected = f"an integer from {low} to {high}" if high is not None else f"an integer of at least {low}"
        raise _argument_error(function, name, expected, value)
    return int(value)


def _names(function: str, name: str, value: Any) -> tuple[str, ...]:
    """Parameter names: one name, or a list (any iterable) of names."""
    if isinstance(value, str):
        return (value,)
    try:
        names = tuple(value)
    except TypeError:
        raise _argument_error(function, name, "a parameter name or a list of names", value) from None
    for item in names:
        if not isinstance(item, str):
            raise _argument_error(function, name, "parameter names (strings)", item)
    return names


def _path(function: str, name: str, value: Any) -> str:
    if not isinstance(value, (str, os.PathLike)):
        raise _argument_error(function, name, "a file path", value)
    return os.fspath(value)


@_one_line
def load(source: str | os.PathLike | Mapping[str, Any]) -> Spec:
    """Read and validate a network spec, as every command does first.

    Args:
        source: a spec file's path (``.yaml``, ``.yml``, ``.toml`` or ``.json``, by its suffix;
            a ``data:`` file is found relative to it), or the spec's data as a dict (lists,
            numbers and strings, as a YAML file would give them; errors name it ``<dict>``).

    Returns:
        The validated spec (:class:`chainrule.derive.spec.Spec`, frozen), every default filled in.

    Raises:
        ChainruleError: the file cannot be read, or a field is invalid (naming the field path,
            as ``layers[1].activation``, and what was expected); ``source`` is neither a path nor
            a dict.
    """
    from chainrule.codegen.files import load_spec
    from chainrule.derive.spec import Spec, spec_from_data

    if isinstance(source, Spec):
        return source
    if isinstance(source, (str, os.PathLike)):
        return load_spec(os.fspath(source))
    if isinstance(source, Mapping):
        return spec_from_data(dict(source), "<dict>")
    raise _argument_error("load", "source", "a path or a dict (text: chainrule.loads)", source)


@_one_line
def loads(text: str, format: str = "yaml", source: str = "<string>") -> Spec:
    """Read and validate a network spec from its text.

    Args:
        text: the spec, as a file would hold it.
        format: ``"yaml"`` (or ``"yml"``), ``"toml"`` or ``"json"``, in any case.
        source: the name error messages give the text (a ``data:`` file is found relative to
            the current directory).

    Raises:
        ChainruleError: ``text`` is not a string; an unknown ``format``; the text is malformed
            or a field is invalid.
    """
    from chainrule.derive.spec import parse_spec

    if not isinstance(text, str):
        raise _argument_error("loads", "text", "the spec's text, a str (a file: chainrule.load)", text)
    known = {"yml": "yaml"}.get(str(format).lower(), str(format).lower())
    if not isinstance(format, str) or known not in FORMATS:
        raise _argument_error("loads", "format", f"one of {', '.join(map(repr, FORMATS))}", format)
    return parse_spec(text, str(source), known)


def _spec(spec: SpecLike) -> Spec:
    return load(spec)


@_one_line
def derive(spec: SpecLike, params: Sequence[str] = ()) -> Derivation:
    """The derivation on the spec's sample: what ``chainrule derive SPEC`` prints and ``--json``
    holds (see :class:`chainrule.Derivation` for the keys and shapes).

    Args:
        spec: a spec, or a path or dict to :func:`load`.
        params: a parameter's name, or a list of them, whose chains are wanted (``--param``): a
            big network's closed forms and the derivation's ``text`` are limited to them;
            :meth:`Derivation.chain` gives any parameter's chain whatever is asked.

    Raises:
        ChainruleError: a bad spec; ``params`` not names, or a name that is no parameter; a
            value that is not finite on the sample.
    """
    from chainrule.derive.derivation import derive as derive_engine

    params = _names("derive", "params", params)
    return _derivation(derive_engine(_spec(spec), params), params)


def _derivation(d: EngineDerivation, params: tuple[str, ...]) -> Derivation:
    import numpy as np

    from chainrule.codegen.terminal.describe import chain_form
    from chainrule.codegen.terminal.jsonout import derivation_document
    from chainrule.codegen.terminal.text import render_derivation

    document = derivation_document(d)

    def read_only(value: Any) -> Any:
        array = np.array(value, dtype=np.float64)  # a copy: the derivation's own arrays stay its own
        array.flags.writeable = False
        return array

    def numbers(values: Mapping[str, Any]) -> Mapping[str, Any]:
        return MappingProxyType({k: v if d.small else read_only(v) for k, v in values.items()})

    return Derivation(
        name=d.network.spec.name,
        form=document["form"],
        parameters=document["parameters"],
        loss=document["loss"],
        forward=numbers(document["forward"]),
        gradients=numbers(document["gradients"]),
        updated=numbers(document["updated"]),
        closed_forms=MappingProxyType({name: chain_form(chain, penalty=not d.batch) for name, chain in d.chains.items()}),
        text=render_derivation(d, params),
        engine=d,
        _chain=functools.partial(_chain, d),
    )


@_one_line
def _chain(d: EngineDerivation, name: str) -> Chain:
    from chainrule.codegen.terminal.describe import describe_param
    from chainrule.codegen.terminal.text import render_param
    from chainrule.derive.derivation import derive as derive_engine
    from chainrule.derive.derivation import resolve_params

    if not isinstance(name, str):
        raise _argument_error("Derivation.chain", "name", "a parameter's name", name)
    if name not in d.chains:
        resolve_params(d.network, [name])  # the message of --param, before any work
        d = derive_engine(d.network.spec, [name])
    p = describe_param(d, name)
    lines = render_param(p)
    return Chain(
        name=p.name,
        gradient_name=p.gradient_name,
        paths=tuple(tuple(Factor(f.name, f.form, f.derivative, f.value, f.note) for f in path.factors) for path in p.paths),
        gradient=p.gradient,
        closed_form=p.closed_form,
        updated=p.update.value,
        update=lines[-1].strip(),
        frozen=p.frozen,
        note=p.cut_note,
        text="\n".join(lines) + "\n",
        engine=d,
    )


@_one_line
def check(spec: SpecLike, points: int = 3, emitted: str | os.PathLike | None = None) -> Check:
    """Central differences in float64 against the derivation, at the sample and ``points`` seeded
    random points away from kinks, as ``chainrule check`` runs them; with ``emitted``, against the
    gradients of that emitted trainer file too.

    Args:
        spec: a spec, or a path or dict to :func:`load`.
        points: seeded random points besides the sample, 0 to 100 (``--points``).
        emitted: a trainer written by :func:`emit` for this spec (``--emitted``).

    Returns:
        A :class:`chainrule.Check`; ``passed`` is False when some relative error exceeds the
        tolerance (``chainrule check`` exits 1).

    Raises:
        ChainruleError: a bad spec; ``points`` out of range; ``emitted`` is not a trainer of
            this spec, or fails when imported or run.
    """
    from chainrule.codegen.commands import check as check_command
    from chainrule.codegen.terminal.text import render_check

    points = _integer("check", "points", points, 0)
    emitted = None if emitted is None else _path("check", "emitted", emitted)
    checked = check_command(_spec(spec), points, emitted)
    return Check(
        passed=checked.passed,
        points=checked.result.points,
        tolerance=checked.result.tolerance,
        groups=checked.result.groups,
        emitted=None if checked.emitted is None else checked.emitted.groups,
        text=render_check(checked.derivation, checked.result, checked.emitted, checked.emitted_path),
        engine=checked,
    )


@_one_line
def trainer(spec: SpecLike) -> ModuleType:
    """The NumPy trainer :func:`emit` would write, imported in this process without writing a
    file: ``chainrule.trainer(spec).Network()`` is a network with the spec's starting values.

    The module is the emitted file's source, imported from memory
    (:func:`chainrule.codegen.trainer.inprocess.trainer_module`): its lines show in tracebacks,
    it is not put in :data:`sys.modules`, and its ``DATA`` path is relative to the current
    directory. See docs/trainer.md for what it holds (``Network``, ``load_data``, ...).

    Args:
        spec: a spec, or a path or dict to :func:`load`.

    Raises:
        ChainruleError: a bad spec.
    """
    from chainrule.codegen.trainer.inprocess import trainer_module
    from chainrule.derive.derivation import derive as derive_engine

    spec = _spec(spec)
    return trainer_module(derive_engine(spec), spec.source)


@_one_line
def train(
    spec: SpecLike,
    X: Any = None,
    T: Any = None,
    epochs: int = 100,
    batch_size: int = 32,
    seed: int = 0,
    lr: float | None = None,
    validation_split: float = 0.0,
) -> History:
    """Train a fresh network of the emitted trainer (:func:`trainer`) and record each epoch: the
    loss (and accuracy) on the training rows, and on held-out rows with ``validation_split``.
    In Jupyter the result shows a table and, with matplotlib installed, the curve.

    The steps are ``Network.fit``'s, epoch by epoch: the same as ``fit(X, T, epochs, batch_size,
    seed)`` on the same rows, so the trained weights are those of ``python NAME.py`` with the
    same options.

    Args:
        spec: a spec, or a path or dict to :func:`load`.
        X, T: the data, ``[rows, inputs]`` and ``[rows, outputs]``; both left out: the spec's
            ``data:`` file, or else its sample (or batch).
        epochs: passes over the training rows (0 or more).
        batch_size: rows per step (1 or more).
        seed: seeds the shuffling (and the held-out rows, drawn as the trainer's
            ``--validation-split`` draws them): an integer of at least 0.
        lr: the learning rate for every parameter (default: the spec's).
        validation_split: the fraction of rows held out, in [0, 1).

    Returns:
        A :class:`chainrule.History`; its ``network`` is the trained network.

    Raises:
        ChainruleError: a bad spec; only one of ``X`` and ``T``; data of the wrong shape or not
            finite (the trainer's message, naming the argument); ``epochs``, ``batch_size``,
            ``seed``, ``lr`` or ``validation_split`` out of range; the data file cannot be read.
        FloatingPointError: a step's loss is not finite (the rate is too large), naming the
            epoch and step; the network keeps the last good weights.
    """
    spec = _spec(spec)
    _check_training(X, T, epochs, batch_size, seed, validation_split, lr)
    module = trainer(spec)
    network = module.Network()
    X, T, validation = _training_rows(spec.source, module, network, X, T, validation_split, seed)
    if lr is not None:
        network.lr = lr
    before = float(network.loss(X, T))
    record = _epochs(network, X, T, validation, epochs, batch_size, seed)
    classifier, held = "accuracy" in network.evaluate(X[:1], T[:1]), validation is not None
    return History(
        name=spec.name, epochs=epochs, batch_size=batch_size, seed=seed, rows=int(X.shape[0]), before=before,
        loss=tuple(record["loss"]), step_loss=tuple(record["step"]),
        accuracy=tuple(record["accuracy"]) if classifier else None,
        held_out_loss=tuple(record["held_loss"]) if held else None,
        held_out_accuracy=tuple(record["held_accuracy"]) if held and classifier else None,
        network=network,
    )


def _check_training(X: Any, T: Any, epochs: Any, batch_size: Any, seed: Any, validation_split: Any, lr: Any) -> None:
    import numbers

    if (X is None) != (T is None):
        raise ChainruleError("chainrule.train", "X, T", "expected both X and T, or neither (the spec's data)")
    _integer("train", "epochs", epochs, 0)
    _integer("train", "batch_size", batch_size, 1)
    _integer("train", "seed", seed, 0)
    if isinstance(validation_split, bool) or not (isinstance(validation_split, numbers.Real) and 0 <= validation_split < 1):
        raise _argument_error("train", "validation_split", "a fraction in [0, 1)", validation_split)
    if lr is not None and (isinstance(lr, bool) or not (isinstance(lr, numbers.Real) and 0 < lr < float("inf"))):
        raise _argument_error("train", "lr", "a positive number", lr)


def _training_rows(where: str, module: ModuleType, network: Any, X: Any, T: Any, validation_split: float, seed: int) -> tuple[Any, Any, Any]:
    """The training rows and the held-out ones (or None), as the trainer's command line draws them."""
    import numpy as np

    source = where if X is None else "chainrule.train"
    try:
        if X is None:
            if module.DATA:
                source = str(module.DATA)
                X, T = module.load_data(module.DATA, *module.DATA_COLUMNS)
            else:
                X, T = np.array(module.SAMPLE_X), np.array(module.SAMPLE_T)
        X, T = network._inputs(X, T)
    except OSError as error:
        raise ChainruleError(source, "data", f"cannot read: {error.strerror or error}") from None
    except ValueError as error:
        raise ChainruleError(source, "X, T", str(error)) from None
    n = X.shape[0]
    held = round(validation_split * n)
    if validation_split and not 0 < held < n:
        raise ChainruleError("chainrule.train", "validation_split", f"{validation_split} of {n} rows holds out {held}")
    rows = np.random.default_rng(seed).permutation(n) if held else np.arange(n)
    validation = (X[rows[:held]], T[rows[:held]]) if held else None
    return X[rows[held:]], T[rows[held:]], validation


def _epochs(network: Any, X: Any, T: Any, validation: Any, epochs: int, batch_size: int, seed: int) -> dict[str, list[float]]:
    """Train epoch by epoch with ``fit``'s steps; the losses (and accuracies) after each."""
    import numpy as np

    order = np.random.default_rng(seed)  # fit takes it as its seed: one generator, epoch after epoch
    record: dict[str, list[float]] = {"loss": [], "step": [], "accuracy": [], "held_loss": [], "held_accuracy": []}
    for epoch in range(1, epochs + 1):
        try:
            (step_loss,) = network.fit(X, T, epochs=1, batch_size=batch_size, seed=order)
        except FloatingPointError as error:
            raise FloatingPointError(str(error).replace(" at epoch 1, ", f" at epoch {epoch}, ", 1)) from None
        record["step"].append(float(step_loss))
        for prefix, rows in (("", (X, T)), ("held_", validation)):
            if rows is not None:
                after = network.evaluate(*rows)
                record[f"{prefix}loss"].append(float(after["loss"]))
                if "accuracy" in after:
                    record[f"{prefix}accuracy"].append(float(after["accuracy"]))
    return record


@_one_line
def emit(spec: SpecLike, out_dir: str | os.PathLike = ".", formulas: bool = False) -> Path:
    """Write the standalone NumPy trainer ``out_dir/NAME.py``, as ``chainrule emit`` does
    (atomically; the directory is made if missing).

    Args:
        spec: a spec, or a path or dict to :func:`load` (a spec file's ``data:`` path is written
            relative to ``out_dir``).
        out_dir: the directory (``-o``).
        formulas: also write ``gradient_formulas(x, t)`` (``--formulas``): for a small dense
            network only.

    Returns:
        The path written.

    Warns:
        chainrule.codegen.commands.FormulasLeftOut: ``formulas`` asked for, but the network is
            not a small dense one: the trainer is written without ``gradient_formulas``.

    Raises:
        ChainruleError: a bad spec; ``out_dir`` is not a directory or cannot be written. Nothing
            is written then.
    """
    from chainrule.codegen.commands import emit as emit_command

    out_dir = _path("emit", "out_dir", out_dir)
    spec = _spec(spec)
    return emit_command(spec, spec.source, out_dir, formulas=formulas)


@_one_line
def report(spec: SpecLike, out_dir: str | os.PathLike = ".", pdf: bool = False, params: Sequence[str] = (), html: bool = False) -> tuple[Path, ...]:
    """Write the derivation as LaTeX ``out_dir/NAME.tex`` (and, with ``pdf``, ``NAME.pdf``), or
    with ``html`` as one self-contained page ``out_dir/NAME.html``, as ``chainrule report`` does.

    Args:
        spec: a spec, or a path or dict to :func:`load`.
        out_dir: the directory (``-o``).
        pdf: also compile the PDF (needs ``pdflatex``; ``--pdf``).
        params: parameters whose chains the report shows (``--param``); a big network shows one
            weight per layer when none is named.
        html: write ``NAME.html`` (``--html``): the report's content, math as MathML, the
            diagram as inline SVG, nothing fetched and no TeX needed; in place of the ``.tex``
            unless ``pdf`` is asked for too.

    Returns:
        The paths written, in the order written: ``NAME.pdf`` first when asked for, then
        ``NAME.html`` (with ``html``), then ``NAME.tex`` (unless only ``html`` was asked for).

    Raises:
        ChainruleError: a bad spec or ``params`` name; ``out_dir`` is not a directory; no TeX
            (with ``pdf``), or the compile fails (its first error). Nothing is written then.
    """
    from chainrule.codegen.report.writer import write_report

    params = _names("report", "params", params)
    out_dir = _path("report", "out_dir", out_dir)
    spec = _spec(spec)
    return tuple(write_report(spec, spec.source, out_dir, pdf=pdf, params=params, html=html))


@_one_line
def verify(spec: SpecLike, claims: str | os.PathLike) -> Verification:
    """Judge the hand calculations of a claims file, as ``chainrule verify SPEC CLAIMS`` does.

    Args:
        spec: a spec, or a path or dict to :func:`load`. A claims file that names its spec must
            name this spec's file.
        claims: the claims file (``.yaml``, ``.yml``, ``.toml`` or ``.json``; see docs/claims.md).

    Returns:
        A :class:`chainrule.Verification`: ``right`` of ``total``, each judged part in ``claims``.

    Raises:
        ChainruleError: a bad spec; the claims file cannot be read, is malformed, names what the
            spec does not have, or is about another spec.
    """
    from chainrule.codegen.terminal.verify import grade_files, render_text

    claims = _path("verify", "claims", claims)
    spec = _spec(spec)
    (result,) = grade_files(spec, spec.source, [claims])
    return Verification(result.path, result.right, len(result.verdicts), result.verdicts, render_text([result]))
