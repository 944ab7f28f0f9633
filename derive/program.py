"""The layer program: a network's forward pass, loss and delta recursion as statements.

Every output of chainrule that shows or computes the layer (vector) form prints or evaluates one
value, the :class:`Program` of :func:`layer_program`: a list of :class:`Statement`
``target = expression`` in named vectors (``net_h = W1 x + b1``, ``delta_o = out_o - t``,
``dE_dW2 = outer(delta_o, out_h)``). Each statement carries the rule it applies (the layer kind,
the chain-rule factors it multiplies, what it relies on). Its expressions are sympy expressions
whose elementwise parts were derived by sympy on the network's own definitions, already in the
forms that compute without overflow, and whose structural parts are the operations of this
module (:class:`Affine`, :class:`Chain`, :class:`Backprop`, :class:`Outer`, ...), which every
printer prints its own way (one ``_print_Affine`` per printer) and :class:`ProgramNumbers`
evaluates. A layer kind (:mod:`chainrule.derive.kinds`) writes its statements; nothing
downstream re-derives a rule.

Vectors are per sample: ``net_h`` is the layer's column of weighted sums, ``W1`` its weight matrix
[units, inputs]. The loss is the mean over a batch of per-sample losses; ``delta`` vectors are
per sample and the gradients (:class:`Outer`, :class:`BiasSum`) average over the batch. Printers
that compute on a batch hold a vector's samples as rows, as PyTorch does.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Mapping

import sympy

from chainrule.derive import naming


def vector(name: str) -> sympy.Symbol:
    """A named vector or matrix of the program (``net_h``, ``W1``, ``delta_o``): a real sympy
    symbol, which sorts and prints as any symbol does; :attr:`Program.vectors` says what it holds."""
    return sympy.Symbol(name, real=True)


class Role(enum.Enum):
    """What a vector of the program holds; printers name and store each role their own way."""

    DATA = "data"  # the inputs x and targets t of a sample
    PARAMETER = "parameter"  # W_l, b_l
    ACTIVATION = "activation"  # net_l, out_l, delta_l and a step's temporaries
    GRADIENT = "gradient"  # dE/dW_l, dE/db_l
    LOSS = "loss"  # E


class Stage(enum.Enum):
    FORWARD = "forward"
    LOSS = "loss"
    BACKWARD = "backward"


# ---------------------------------------------------------------------------------------------
# Operations. Each is an unevaluated sympy Function: the program keeps its structure, and each
# printer has one method per operation.


class Op(sympy.Function):
    """A structural operation of the program (never evaluated by sympy)."""

    @classmethod
    def eval(cls, *args):  # noqa: D102 - sympy's hook: None keeps the node unevaluated
        return None


class Affine(Op):
    """``W x + b`` (a dense layer's weighted sums; ``Affine(W, x)`` without a bias). A shared bias
    is one number added to every unit."""

    nargs = (2, 3)


class Softmax(Op):
    """``softmax(net)``: exp(net_k) / sum_j exp(net_j), over a sample's units."""

    nargs = 1


class LogSoftmax(Op):
    """``log(softmax(net))``, computed from the net so that it stays finite where an output
    underflows (the derivation's :func:`chainrule.derive.layers.log_softmax`)."""

    nargs = 1


class LogOneMinusSoftmax(Op):
    """``log(1 - softmax(net))``, finite where an output rounds to 1
    (:func:`chainrule.derive.layers.log_one_minus_softmax`)."""

    nargs = 1


class Chain(Op):
    """The elementwise product of chain-rule factors, kept apart as they are written:
    ``Chain(dE/dout, dout/dnet)`` is ``(out - t) * out*(1 - out)``."""

    nargs = None


class Backprop(Op):
    """``W^T delta``: the deltas of the layer above sent back through its weights."""

    nargs = 2


class SoftmaxVJP(Op):
    """``y * (g - sum(g * y))``: a softmax layer's Jacobian applied to ``g`` (its outputs ``y``)."""

    nargs = 2


class SoftmaxDelta(Op):
    """A softmax output's delta from ``w = y * dE/dy`` (where ``y <= 1/2``) and ``wq = w*(1 - y)``,
    without cancelling where an output rounds to 1
    (:func:`chainrule.derive.layers.softmax_output_delta`): ``SoftmaxDelta(w, wq, net)``."""

    nargs = 3


class Outer(Op):
    """``dE/dW = delta x^T``, averaged over the batch: ``Outer(delta, x)``."""

    nargs = 2


class BiasSum(Op):
    """``dE/db = delta``, averaged over the batch (one bias per unit)."""

    nargs = 1


class SharedBiasSum(Op):
    """``dE/db = sum_k delta_k``, averaged over the batch (one bias shared by the layer's units)."""

    nargs = 1


class SampleLoss(Op):
    """The loss of a sample summed over its outputs, ``sum_k l(out_k, t_k)``; ``E`` is its mean
    over the batch."""

    nargs = 1


class Correlate(Op):
    """A convolution's weighted sums, PyTorch's cross-correlation: ``Correlate(x, K, geometry)``
    or ``Correlate(x, K, geometry, b)`` (a bias per output channel). ``geometry`` is a Tuple of
    :attr:`chainrule.derive.windows.Window.geometry`; values are held flat, [C*H*W] per sample
    (:mod:`chainrule.derive.spatial`)."""

    nargs = (3, 4)


class KernelGradient(Op):
    """``dE/dK``: the correlation of the input ``x`` with the output's deltas, averaged over the
    batch: ``KernelGradient(delta, x, geometry, shape)``, an array of the kernel's ``shape``."""

    nargs = 4


class ChannelBiasSum(Op):
    """``dE/db`` of a bias per output channel: the channel's deltas summed over its positions,
    averaged over the batch: ``ChannelBiasSum(delta, (channels,))``."""

    nargs = 2


class CorrelateBackprop(Op):
    """dE/d(a convolution's input): the full correlation of the deltas with the flipped kernel
    (the transposed convolution): ``CorrelateBackprop(K, delta, geometry)``."""

    nargs = 3


class MaxPool(Op):
    """Each window's largest input: ``MaxPool(x, geometry)``."""

    nargs = 2


class MaxPoolBackprop(Op):
    """dE/d(a max-pool's input): each window's delta routed to its largest input (the first in
    row-major order where several are largest, as PyTorch): ``MaxPoolBackprop(x, delta, geometry)``."""

    nargs = 3


class AvgPool(Op):
    """Each window's mean: ``AvgPool(x, geometry)``."""

    nargs = 2


class AvgPoolBackprop(Op):
    """dE/d(an average-pool's input): each window's delta spread evenly over its inputs:
    ``AvgPoolBackprop(delta, geometry)``."""

    nargs = 2


class Flatten(Op):
    """Feature maps [C, H, W] as a vector, row-major (PyTorch's ``flatten``); held flat already,
    the same numbers."""

    nargs = 1


class EntrySum(Op):
    """The sum of the entries of a matrix expression (``sum(l2*W1**2/2)``, the L2 penalty of a
    layer's weights): one number for the batch."""

    nargs = 1


class RecurrentAffine(Op):
    """An rnn's weighted sums at a step, ``W x_t + U h_(t-1) + b``:
    ``RecurrentAffine(W, x, U, Previous(out, h0))`` or with ``b`` last."""

    nargs = (4, 5)


class Previous(Op):
    """A sequence at the step before, ``Previous(out_h, h0_h)``: ``out_h`` at t - 1, ``h0_h`` at
    the first step. Outside a loop over the steps, the whole sequence shifted by one step."""

    nargs = 2


class Following(Op):
    """A sequence at the step after, ``Following(delta_h)``: ``delta_h`` at t + 1, zeros at the
    last step (nothing comes after it). Outside a loop, the whole sequence shifted back."""

    nargs = 1


class Masked(Op):
    """``Masked(expr, t)``: ``expr`` where the step has targets, 0 where its targets are null
    (NaN in ``t``): a sequence's loss and output delta at the steps that have a loss."""

    nargs = 2


class AtFirstStep(Op):
    """A sequence at its first step, ``AtFirstStep(delta_h)``: ``delta_h`` at t = 1 (an rnn's
    h_0 reaches the loss through it alone)."""

    nargs = 1


#: The operations of a recurrence through the steps of a sequence.
SEQUENCE_OPERATIONS: tuple[type[Op], ...] = (RecurrentAffine, Previous, Following, Masked, AtFirstStep)
#: A statement's loop over the steps of a sequence: forward in time (t = 1, ..., T) or
#: backward (t = T, ..., 1); consecutive statements of one loop run step by step together.
FORWARD_IN_TIME, BACKWARD_IN_TIME = "forward in time", "backward in time"


#: The operations over feature maps (printers that unroll scalars leave them alone).
SPATIAL_OPERATIONS: tuple[type[Op], ...] = (Correlate, KernelGradient, ChannelBiasSum, CorrelateBackprop, MaxPool, MaxPoolBackprop, AvgPool, AvgPoolBackprop, Flatten)


def geometry(window) -> sympy.Tuple:
    """A :class:`~chainrule.derive.windows.Window`'s geometry as an operation's argument."""
    return sympy.Tuple(*window.geometry)


def in_vectors(expr: sympy.Expr, names: Mapping[sympy.Expr, sympy.Expr]) -> sympy.Expr:
    """``expr`` (derived on generic symbols) with ``names`` replaced (its symbols by the program's
    vectors), every sum and product kept as it was derived, in sympy's order of its new terms.

    A plain ``xreplace`` rebuilds each node as sympy would build it anew: ``(y - t)/2`` comes back
    as ``out/2 - t/2``, and a rewrite that keeps digits (bce's ``((1 - t) - q)/3``, exact at
    t = 1 where ``-q - t + 1`` rounds q away) is flattened. Here a node is rebuilt by sympy only
    where that merely reorders its terms; else it keeps its structure."""
    if expr in names:
        return names[expr]
    if not expr.args or isinstance(expr, sympy.Piecewise | sympy.Rel):
        return expr.xreplace(dict(names)) if expr.args else expr
    args = [in_vectors(a, names) for a in expr.args]
    if isinstance(expr, sympy.Add | sympy.Mul):
        canonical = expr.func(*args)
        if canonical.func is expr.func and sorted(canonical.args, key=sympy.default_sort_key) == sorted(args, key=sympy.default_sort_key):
            return canonical
    return expr.func(*args, evaluate=False)


OPERATIONS: tuple[type[Op], ...] = (
    Affine, Softmax, LogSoftmax, LogOneMinusSoftmax, Chain, Backprop, SoftmaxVJP, SoftmaxDelta,
    Outer, BiasSum, SharedBiasSum, SampleLoss, EntrySum,
) + SPATIAL_OPERATIONS + SEQUENCE_OPERATIONS


# ---------------------------------------------------------------------------------------------
# Statements and the program


@dataclass(frozen=True)
class Statement:
    """``target = expr``, and the rule it applies.

    Attributes:
        target: the vector it assigns.
        expr: the expression, in the program's vectors and operations (and hyper-parameters).
        stage: forward, loss or backward.
        layer: the 1-based layer it belongs to.
        kind: the layer kind whose rule this is (``dense``, ``softmax``).
        rule: what the statement is, in words (``weighted sums``, ``activation``,
            ``output delta``, ``delta``, ``weight gradient``, ``bias gradient``, ``loss``).
        factors: the chain-rule factors it multiplies, as people write them
            (``("dE/dout_o", "dout_o/dnet_o")``); empty where it applies no chain rule.
        note: what it relies on, for the reader (``the targets sum to 1``), or ``""``.
        function: for an activation, how the spec names it (``sigmoid``, a formula's text).
        simplified: True where the statement computes sympy's simplification of its factors'
            product (sigmoid with binary cross-entropy: ``(out - t)/n``), not the product.
        shown: the same value as people write it, where that differs from the form computed
            (elu's f' as a Piecewise in the net, computed with exp of min(net, 0); a softmax
            output's delta ``out * (g - sum(g * out))``, computed from ``w`` and ``wq``), else None.
        loop: ``""``, or the loop over a sequence's steps it runs in (:data:`FORWARD_IN_TIME`,
            :data:`BACKWARD_IN_TIME`): its vectors are then read and written at step t (an rnn's
            recurrence); else it computes every step at once.
    """

    target: sympy.Symbol
    expr: sympy.Expr
    stage: Stage
    layer: int
    kind: str
    rule: str
    factors: tuple[str, ...] = ()
    note: str = ""
    function: str = ""
    simplified: bool = False
    shown: sympy.Expr | None = None
    loop: str = ""

    @property
    def written(self) -> sympy.Expr:
        """The expression as people write it (:attr:`shown`, else :attr:`expr`)."""
        return self.expr if self.shown is None else self.shown

    @property
    def reads(self) -> frozenset[str]:
        """The names of the vectors (and hyper-parameters) the expression reads."""
        return frozenset(s.name for s in self.expr.free_symbols)

    @property
    def operations(self) -> frozenset[type[Op]]:
        """The operations the expression applies (a printer emits the helpers these need)."""
        return frozenset(type(node) for node in sympy.preorder_traversal(self.expr) if isinstance(node, Op))


@dataclass(frozen=True)
class VectorInfo:
    """A vector's role, its layer (0 for data) and its shape per sample (``(units,)``, or
    ``(units, inputs)`` for a weight matrix; per step for a sequence). ``columns``: for an
    rnn's W and U, their columns ``(start, stop)`` of the layer's weights held side by side."""

    role: Role
    layer: int
    shape: tuple[int, ...]
    columns: tuple[int, int] | None = None


@dataclass(frozen=True)
class Program:
    """The layer program of a network: its statements in order and its vectors.

    Attributes:
        statements: forward, then loss, then backward statements, each after what it reads.
        vectors: every vector by name: its role, layer and shape.
        inputs, targets: the names of the data vectors (``x``, ``t``, or ``x_vec`` where a unit
            is named ``x``).
        sizes: the units per layer, the inputs first.
        reduction: how a batch's per-sample losses make E: ``mean`` (the statements' own) or
            ``sum`` (``batch`` times the mean, as PyTorch's ``reduction="sum"``).
        l2: the L2 penalty's setting (0: none). Its statements (rules ``penalty`` and
            ``penalty gradient``) are added to E and dE/dW after the reduction, once per batch.
        steps: the length T of a sequence (0: samples are not sequences). Then every data and
            activation vector has a value per step ([batch, steps, units] where computed).
        constants: values the program reads that are no parameters (an rnn's h_0): (name, values).
    """

    statements: tuple[Statement, ...]
    vectors: Mapping[str, VectorInfo]
    inputs: str
    targets: str
    sizes: tuple[int, ...]
    reduction: str = "mean"
    l2: float = 0.0
    steps: int = 0
    constants: tuple[tuple[str, tuple[float, ...]], ...] = ()

    def penalty_gradient(self, weight: str) -> Statement | None:
        """The statement ``dpenalty_dW = l2*W`` of the matrix ``weight``, or None (no penalty)."""
        name = naming.PENALTY_GRADIENT.format(param=weight)
        return next((s for s in self.statements if s.rule == "penalty gradient" and s.target.name == name), None)

    def stage(self, stage: Stage) -> tuple[Statement, ...]:
        return tuple(s for s in self.statements if s.stage is stage)

    def layer(self, l: int) -> tuple[Statement, ...]:
        return tuple(s for s in self.statements if s.layer == l)

    def assigning(self, name: str) -> Statement:
        """The statement that assigns ``name``.

        Raises:
            KeyError: no statement assigns it.
        """
        for statement in self.statements:
            if statement.target.name == name:
                return statement
        raise KeyError(name)

    def local_derivative(self, expr: sympy.Expr) -> Statement | None:
        """The local-derivative statement (``dout_h_dnet_h = ...``) that assigns ``expr``, where
        ``expr`` is such a vector; else None. Printers write a delta's factor out through it."""
        if not expr.is_Symbol:
            return None
        statement = next((s for s in self.statements if s.target == expr), None)
        return statement if statement is not None and statement.rule == "local derivative" else None

    def role(self, name: str) -> Role:
        return self.vectors[name].role
