"""The emitted trainer's fixed code: what every trainer holds, whatever its spec.

:mod:`chainrule.codegen.trainer.context` copies these definitions into each trainer verbatim, by
their source text (:func:`source`): the helpers a trainer's code calls, the checks a step makes,
``Params``, the ``Network`` methods that are the same for every network (forward, loss,
gradients, fit, save and load), ``load_data`` and ``main``. A trainer never imports this module
(it imports nothing but NumPy and the standard library); what depends on the spec (its constants,
``initial_params``, and the methods that compute forward, loss, gradients and the step) is printed
from the derivation.

The definitions are written as the trainer's code is: plain, unannotated Python. The constants
below the imports are stand-ins for the ones each trainer defines from its spec, so that this
module imports and lints on its own; they are never copied.
"""

import argparse
import csv
import math
import zipfile
from pathlib import Path

import numpy as np

# -- stand-ins for what each trainer defines from its spec (not copied) ---------------------------

INPUTS = ("x1",)
TARGETS = ("t1",)
ARCHITECTURE = "stand-in: 1-1 o:identity:per_unit mse"
SLOTS = {"W1": (0, 1, (1, 1)), "b1": (1, 2, (1,))}
SAMPLE_X = [[0.0]]
SAMPLE_T = [[0.0]]
DATA = None
DATA_COLUMNS = (None, None)
REDUCTION = "mean"
STEPS = 2


# -- a helper of the printed code, copied where the trainer's code calls it -----------------------


def softmax(z, out=None, lse=None, ones=None):
    """exp(z_k) / sum_m exp(z_m) per row, shifted by the row's largest z (same value, no overflow);
    with ``lse`` ([batch, 1]), the row's log-sum-exp log(sum_m exp(z_m)) is written there too;
    with ``ones`` ([units, 1]), the rows are summed as one matrix product (a reduction along short
    rows costs twice as much)."""
    top = np.maximum.reduce(z, axis=1, keepdims=True)
    out = np.subtract(z, top, out=out)
    np.exp(out, out=out)
    if ones is None:
        total = np.add.reduce(out, axis=1, keepdims=True)
    else:
        total = np.dot(out, ones, out=lse)
    out /= total
    if lse is not None:
        np.log(total, out=lse)
        lse += top
    return out


def sequence_rows(A):
    """A batch of sequences [batch, steps, n] as rows [steps * batch, n], step by step (time
    major): the rows of step t are t*batch to (t + 1)*batch, one block each recurrence reads."""
    return A.transpose(1, 0, 2).reshape(-1, A.shape[2])


# -- what a step checks before it is kept, and the parameters as views into theta ------------------


def _finite(E):
    """Raises FloatingPointError where the loss ``E`` is not finite: the step is not taken."""
    if not math.isfinite(E):
        raise FloatingPointError(f"the loss became {E}")


def _finite_data(name, data):
    """Raises ValueError naming ``name`` (X or T) where a value is inf or nan. The sum of squares
    (one product) is finite where every value is; only where it is not (or a value is too large
    to square) are the values looked at one by one."""
    if math.isfinite(np.vdot(data, data)):
        return
    finite = np.isfinite(data).all(axis=1)
    if not finite.all():
        row = int(np.argmin(finite))
        raise ValueError(f"{name}: row {row} (from 0) holds a value that is not a finite number")


def _finite_params(theta, zeros):
    """The same where a parameter is inf or nan (inf*0 and nan*0 are nan: one dot product)."""
    with np.errstate(invalid="ignore"):
        finite = math.isfinite(np.dot(theta, zeros))
    if not finite:
        raise FloatingPointError(
            "a step made a parameter inf or nan (is the learning rate too large?); it was not taken"
        )


class Params(dict):
    """W1, b1, ... as views into the flat ``theta``: ``params["W1"] = A`` copies A into its view
    (same shape), so theta always holds every parameter; entries cannot be removed."""

    def __setitem__(self, name, value):
        if name not in self:
            raise KeyError(f"{name}: not a parameter of this network (it has {', '.join(self)})")
        value = np.asarray(value)
        if value.shape != self[name].shape:
            raise ValueError(f"{name}: expected shape {self[name].shape}, got {value.shape}")
        self[name][...] = value

    def update(self, *args, **kwargs):
        for name, value in dict(*args, **kwargs).items():
            self[name] = value

    def _fixed(self, *args, **kwargs):
        raise TypeError("the parameters are views into theta: assign params[name] = array instead")

    __delitem__ = pop = popitem = clear = setdefault = _fixed


class Network:
    """Stand-in for a trainer's ``Network``: the methods every network has in common, each copied
    into the trainer's class; the rest (``_inputs``, ``_workspace``, ``_forward``, ``_loss``,
    ``_backward``, ``step``, ``evaluate``) is printed from the spec."""

    def forward(self, X):
        """The network's outputs [batch, outputs] for inputs X [batch, inputs]; for one sample
        X [inputs], its outputs [outputs]."""
        one = np.ndim(X) == 1
        if one and np.size(X) != len(INPUTS):
            n, shape = len(INPUTS), list(np.shape(X))
            raise ValueError(f"X: expected one sample [{n}] or a batch [batch, {n}], got {shape}")
        X = self._inputs(np.reshape(X, (1, -1)) if one else X)
        Y = self._forward(X, self._workspace(X.shape[0]))[-1]
        return Y[0].copy() if one else Y.copy()

    def forward_sequence(self, X):
        """The network's outputs [batch, steps, outputs] for sequences X [batch, steps, inputs];
        for one sequence X [steps, inputs], its outputs [steps, outputs]."""
        one = np.ndim(X) == 2
        X = self._inputs(np.asarray(X)[np.newaxis] if one else X)
        Y = self._forward(X, self._workspace(X.shape[0]))[-1]
        Y = Y.reshape(STEPS, X.shape[0], -1).transpose(1, 0, 2)
        return Y[0].copy() if one else Y.copy()

    def loss(self, X, T):
        """The loss of the batch: the mean (or, as the spec says, the sum) of its samples'."""
        X, T = self._inputs(X, T)
        work = self._workspace(X.shape[0])
        return self._loss(X, T, work, self._forward(X, work))

    def gradients(self, X, T):
        """dE/dtheta of the batch's loss (``loss``): a dict with the keys of ``params``."""
        X, T = self._inputs(X, T)
        work = self._workspace(X.shape[0])
        outs = self._forward(X, work)
        self._backward(X, T, 1.0 / X.shape[0] if REDUCTION == "mean" else 1.0, work, outs)
        return {name: g.copy() for name, g in work["grads"].items()}

    def fit(self, X, T, epochs=1, batch_size=32, seed=0, verbose=False, validation=None):
        """Mini-batch training, shuffled by a generator seeded with ``seed``; returns the loss of
        each epoch (its steps' losses: the mean per sample or, as the spec says, their sum). With
        ``validation=(X_held, T_held)`` and ``verbose``, each epoch's line adds the held-out loss
        (and accuracy). Raises FloatingPointError the moment a loss is not finite."""
        for name, value, least in (("epochs", epochs, 0), ("batch_size", batch_size, 1)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
                raise ValueError(f"{name}: expected an integer of at least {least}, got {value!r}")
        X, T = self._inputs(X, T)
        order = np.random.default_rng(seed)
        history = []
        for epoch in range(1, epochs + 1):
            rows = order.permutation(X.shape[0])
            total = 0.0
            for number, start in enumerate(range(0, X.shape[0], batch_size), start=1):
                batch = rows[start : start + batch_size]
                try:
                    E = self.step(X[batch], T[batch])
                except FloatingPointError as error:  # the weights are the last good ones
                    raise FloatingPointError(
                        f"{error} at epoch {epoch}, step {number}: "
                        "lower the rate or scale the inputs"
                    ) from None
                total += E * len(batch) if REDUCTION == "mean" else E
            history.append(total / X.shape[0] if REDUCTION == "mean" else total)
            if verbose:  # evaluate's numbers belong together: both after the epoch
                after = ", ".join(
                    f"{key} {value:.6g}" for key, value in self.evaluate(X, T).items()
                )
                if validation is not None:
                    held = self.evaluate(*validation).items()
                    after += "; held out: " + ", ".join(f"{key} {value:.6g}" for key, value in held)
                print(f"epoch {epoch}: after it {after} (mean loss of its steps {history[-1]:.6g})")
        return history

    def save(self, path):
        """The parameters and the architecture they belong to, as a .npz file (``.npz`` is added to
        a path without it, as NumPy does; ``load`` takes the same path)."""
        arrays = {name: np.array(value) for name, value in self.params.items()}
        np.savez(path, architecture=np.array(ARCHITECTURE), **arrays)

    @classmethod
    def load(cls, path, dtype=np.float64):
        """A network with the parameters saved at ``path``, refusing another architecture's."""
        if not str(path).endswith(".npz") and not Path(path).exists():
            path = f"{path}.npz"
        with np.load(path, allow_pickle=False) as saved:
            found = str(saved["architecture"]) if "architecture" in saved.files else "none recorded"
            if found != ARCHITECTURE:
                raise ValueError(
                    f"{path}: saved by another architecture ({found}); "
                    f"this module is {ARCHITECTURE}"
                )
            if missing := [name for name in SLOTS if name not in saved.files]:
                raise ValueError(f"{path}: no array {', '.join(missing)}")
            return cls({name: saved[name] for name in SLOTS}, dtype=dtype)


# -- files and the command line -------------------------------------------------------------------


def _count(n, noun, plural=None):
    """``1 epoch``, ``2 epochs``: a count and its noun, plural when not one."""
    return f"{n} {noun}" if n == 1 else f"{n} {plural or noun + 's'}"


def load_data(path, inputs=None, targets=None):
    """(X, T) from a .npz (arrays X and T) or a .csv: a header row, the columns taken by the names
    of the inputs and targets (or ``inputs`` and ``targets``); where the header names none of them,
    exactly the inputs' columns first and then the targets'."""
    path = Path(path)
    if path.suffix == ".npz":
        if not zipfile.is_zipfile(path):
            raise ValueError("not a .npz archive (a zip of .npy arrays)")
        with np.load(path, allow_pickle=False) as data:
            if not {"X", "T"} <= set(data.files):
                raise ValueError(f"expected arrays X and T, found {sorted(data.files)}")
            return data["X"], data["T"]
    # -sig: a byte-order mark is not part of the first name; csv: quoted names may hold commas
    with path.open(encoding="utf-8-sig") as handle:
        header = [name.strip() for name in next(csv.reader(handle), [])]
        rows = handle.read().splitlines()
    if inputs is None and targets is None and not set(header) & {*INPUTS, *TARGETS}:
        if len(header) != len(INPUTS) + len(TARGETS):
            named = ", ".join((*INPUTS, *TARGETS))
            counts = f"{_count(len(INPUTS), 'input')} and then {_count(len(TARGETS), 'target')}"
            raise ValueError(f"expected columns named {named}, or {counts}, header has {header}")
        inputs, targets = header[: len(INPUTS)], header[len(INPUTS) :]
    inputs, targets = inputs or INPUTS, targets or TARGETS
    if missing := [name for name in (*inputs, *targets) if name not in header]:
        raise ValueError(f"no column named {', '.join(missing)}: the header has {header}")
    if not any(row.strip() for row in rows):
        raise ValueError("no rows of data after the header")
    table = np.loadtxt(rows, delimiter=",", ndmin=2)
    if table.shape[1] != len(header):
        values, names = _count(table.shape[1], "value"), _count(len(header), "name")
        raise ValueError(f"the rows have {values}, the header {names}")
    return table[:, [header.index(n) for n in inputs]], table[:, [header.index(n) for n in targets]]


def _parser():
    """The trainer's command line."""
    parser = argparse.ArgumentParser(description="Train the network and print the loss.")
    parser.add_argument(
        "--data", help="a .csv (header row) or .npz (X, T) file; default: the spec's"
    )
    # the sample is one row: many quick epochs; a data file: fewer
    parser.add_argument("--epochs", type=int, default=1000 if DATA is None else 30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, help="the learning rate (default: the spec's)")
    parser.add_argument(
        "--validation-split",
        type=float,
        default=0.0,
        metavar="F",
        help="hold out this fraction of the rows (drawn with --seed): loss and accuracy per epoch",
    )
    parser.add_argument("--save", metavar="PATH", help="save the trained parameters (.npz)")
    parser.add_argument("--verbose", action="store_true")

    def error(message):  # one line and exit 2, without argparse's usage lines
        parser.exit(2, f"{parser.prog}: error: {message}\n")

    parser.error = error
    return parser


def main(argv=None):
    """Train on the spec's sample or data (or on ``--data``) and print the loss before and after."""
    parser = _parser()
    args = parser.parse_args(argv)
    least = {"--epochs": 0, "--batch-size": 1, "--seed": 0}
    for option, value in zip(least, (args.epochs, args.batch_size, args.seed)):
        if value < least[option]:
            parser.error(f"{option} must be at least {least[option]}, got {value}")
    if args.lr is not None and not 0 < args.lr < float("inf"):
        parser.error(f"--lr must be a positive number, got {args.lr}")
    if not 0 <= args.validation_split < 1:
        parser.error(f"--validation-split must be in [0, 1), got {args.validation_split}")
    folder = Path(args.save or ".").resolve().parent
    if args.save and not folder.is_dir():
        parser.error(f"--save {args.save}: no directory {folder}")
    source = args.data or (Path(__file__).parent / DATA if DATA else None)
    try:
        if source is None:
            X, T = np.array(SAMPLE_X), np.array(SAMPLE_T)
        else:
            X, T = load_data(source, *(() if args.data else DATA_COLUMNS))
        network = Network()
        X, T = network._inputs(X, T)
    except (OSError, ValueError) as error:  # a file missing, unreadable or of the wrong shape
        why = getattr(error, "strerror", None) or error
        parser.exit(2, f"{parser.prog}: error: {source or 'the sample'}: {why}\n")
    n = X.shape[0]
    held = round(args.validation_split * n)
    if args.validation_split and not 0 < held < n:
        split = args.validation_split
        parser.error(f"--validation-split {split} of {_count(n, 'row')} holds out {held}")
    rows = np.random.default_rng(args.seed).permutation(n) if held else np.arange(n)
    validation = (X[rows[:held]], T[rows[:held]]) if held else None
    X, T = X[rows[held:]], T[rows[held:]]
    if args.lr is not None:
        network.lr = args.lr
    print(f"loss before: {network.loss(X, T):.9g}")
    try:
        network.fit(
            X,
            T,
            epochs=args.epochs,
            batch_size=args.batch_size,
            seed=args.seed,
            verbose=args.verbose or validation is not None,
            validation=validation,
        )
    except FloatingPointError as error:
        parser.exit(1, f"{parser.prog}: {error}\n")
    print(f"loss after {_count(args.epochs, 'epoch')}: {network.loss(X, T):.9g}")
    if validation is not None:
        held_out = ", ".join(f"{k} {v:.6g}" for k, v in network.evaluate(*validation).items())
        print(f"held out ({_count(held, 'row')}): {held_out}")
    if args.save:
        try:
            network.save(args.save)
        except OSError as error:
            parser.exit(2, f"{parser.prog}: error: --save {args.save}: {error.strerror or error}\n")
        print(f"saved {args.save if str(args.save).endswith('.npz') else f'{args.save}.npz'}")
