"""The layer (vector) form of the chain rule: delta recursion, with every elementwise piece derived.

For layer ``l`` with weighted sums ``net_l = W_l out_{l-1} + b_l`` and outputs ``out_l = f(net_l)``:

    delta_L = dE/dnet_L                        (the output layer)
    delta_l = (W_{l+1}^T delta_{l+1}) * f'(net_l)
    dE/dW_l = delta_l out_{l-1}^T,   dE/db_l = delta_l  (sum(delta_l) for a shared bias)

The elementwise pieces are derived by sympy on generic symbols ``x`` (a weighted sum), ``y`` (an
output) and ``t`` (a target): ``f'`` by ``sympy.diff`` (and in the output, where the registry
writes it so), ``dE/dy`` by differentiating the per-output loss, their product simplified (sigmoid
with binary cross-entropy gives ``(y - t)/n``), and for softmax the vector-Jacobian product
``y * (g - sum(g * y))`` simplified where the loss allows it: with cross-entropy,
``g*y = -t`` sums to -1 over targets that sum to 1, and the delta is ``y - t``. The cost is a few
small sympy operations per layer, whatever the layer's size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy

from chainrule.derive import naming
from chainrule.derive.network import Network
from chainrule.derive.formula import tree_size
from chainrule.derive.registry import T, X, Y, to_step_form
from chainrule.derive.stable import sigmoid, stable_form
from chainrule.derive.windows import Window

G = sympy.Symbol("g", real=True)
#: log(out) of a softmax layer, computed as net - log-sum-exp of the row: finite where out underflows.
LOG_OUT = sympy.Symbol("log_out", real=True)
#: log(1 - out) and 1 - out of a softmax layer, computed without 1 - out (where out rounds to 1,
#: from the log-sum-exp of the row's other entries): finite where out rounds to 1 (bce).
LOG_ONE_MINUS_OUT = sympy.Symbol("log_one_minus_out", real=True)
ONE_MINUS_OUT = sympy.Symbol("one_minus_out", real=True)


def stable_loss(network: Network) -> sympy.Expr:
    """The scaled per-output loss as it is computed, by the derivation and the trainer alike:
    in ``y`` and ``t``, and where a logarithm of the outputs would lose its digits or overflow,
    in the net ``x`` itself (a sigmoid output: log(σ(x)) = -softplus(-x)) or ``log_out`` (a
    softmax output). At |net| = 500 under bce the plain form gives inf; PyTorch and this, 500."""
    expr = network.loss_scale * network.per_output_loss()
    if not expr.has(sympy.log):
        return expr
    if network.is_softmax(network.depth):
        expr = expr.replace(lambda e: isinstance(e, sympy.log) and e.args[0] == 1 - Y, lambda e: LOG_ONE_MINUS_OUT)
        return expr.replace(lambda e: isinstance(e, sympy.log) and e.args[0] == Y, lambda e: LOG_OUT)
    if network.spec.layers[-1].activation.name == "sigmoid":
        return stable_form(expr.xreplace({Y: sigmoid(X)}))
    return expr


@dataclass(frozen=True)
class OutputDelta:
    """How ``delta_L`` follows from the outputs and targets.

    Attributes:
        dE_dy: the derivative of the (scaled) per-output loss, in ``y`` and ``t``.
        closed: ``delta_L`` elementwise in ``y`` and ``t`` where it closes (always for an
            elementwise activation written in its output; for softmax where ``g*y`` is linear in
            ``t``), else None.
        constraint: a condition the closed form relies on (targets summing to 1), or ``""``.
        simplified: True when ``closed`` is simpler than the chain's product (softmax with
            cross-entropy, sigmoid with binary cross-entropy): the scalar form then takes
            dE/dnet as one factor, as people do, which also stays finite where the output
            saturates.
        weighted: for softmax without a closed form, ``y * dE/dy`` cancelled (``delta = w -
            y*sum(w)``, finite where dE/dy is not: bce's (y - t)/(y(1 - y)) at y = 1), else None.
        weighted_near_one: ``weighted * (1 - y)`` written in ``q = 1 - y``
            (:data:`ONE_MINUS_OUT`), for outputs above 1/2, where ``1 - y`` computed from ``y``
            would have lost its digits (bce: ((1 - t) - q)/2, finite at q = 0).
    """

    dE_dy: sympy.Expr
    closed: sympy.Expr | None
    constraint: str
    simplified: bool = False
    weighted: sympy.Expr | None = None
    weighted_near_one: sympy.Expr | None = None


@dataclass(frozen=True)
class LayerForm:
    """One layer of the delta recursion, in names and generic-symbol expressions.

    Attributes:
        index: 1-based layer number; ``name`` the spec's layer name.
        weight, bias: the parameter matrices' names (``W2``, ``b2``, numbered by the layers that
            have parameters); ``bias`` None without one, both None for a layer without weights.
        shared_bias: True when one bias serves the whole layer (its gradient sums the deltas).
        net, out, delta, previous: the vector names (``net_o``, ``out_o``, ``delta_o``, ``out_h``).
            A layer without weights (``kind: activation``) applies its activation to the outputs
            of the layer before: its ``net`` is ``previous``, and its ``delta`` is dE/d(its
            input), ``dE/dprevious``, as a dense layer's is dE/dnet.
        activation: how the activation is written (``sigmoid``, a formula's text).
        softmax: True for a softmax layer.
        f: the activation in ``x`` (None for softmax).
        f_prime: ``sympy.diff(f, x)`` (None for softmax).
        f_prime_out: ``f'`` written in ``y``, where the registry writes it so, else None.
        output: for the last layer, how its delta follows from the loss; else None.
        kind: the layer kind whose rules apply (:data:`chainrule.derive.kinds.KINDS`):
            ``dense``, ``softmax`` (a dense layer with a softmax), ``activation``, ``conv2d``,
            ``maxpool2d``, ``flatten``, ...
        window: a convolution's or pool's geometry (its input's shape, kernel, stride,
            padding), else None. A pool or flatten has no weights: its ``net`` is ``previous``
            and its ``delta`` dE/d(its input), as a layer without weights has.
        recurrent, initial: an rnn's recurrent weights (``U1``) and initial state (``h0_h``),
            else None.
    """

    index: int
    name: str
    size: int
    weight: str | None
    bias: str | None
    shared_bias: bool
    net: str
    out: str
    delta: str
    previous: str
    activation: str
    softmax: bool
    f: sympy.Expr | None
    f_prime: sympy.Expr | None
    f_prime_out: sympy.Expr | None
    output: OutputDelta | None
    kind: str = "dense"
    window: Window | None = None
    recurrent: str | None = None
    initial: str | None = None


def derive_layers(network: Network) -> tuple[LayerForm, ...]:
    """The delta recursion of ``network``, one :class:`LayerForm` per layer."""
    return tuple(_layer_form(network, l) for l in range(1, network.depth + 1))


def _layer_form(network: Network, l: int) -> LayerForm:
    spec = network.spec.layers[l - 1]
    softmax = network.is_softmax(l)
    f = None if softmax else network.activation(l)
    f_prime = None if f is None else to_step_form(sympy.diff(f, X))
    f_prime_out = None if softmax else network.activation_in_output(l)
    previous = network.input_vector if l == 1 else naming.LAYER_OUT.format(name=network.layer_name(l - 1))
    weighted = spec.has_parameters
    return LayerForm(
        index=l,
        name=spec.name,
        size=network.sizes[l],
        weight=naming.LAYER_WEIGHT.format(layer=network.matrix_number(l)) if weighted else None,
        bias=None if spec.bias_count == 0 else naming.LAYER_BIAS.format(layer=network.matrix_number(l)),
        shared_bias=spec.bias.value == "shared",
        net=naming.LAYER_NET.format(name=spec.name) if weighted else previous,
        out=naming.LAYER_OUT.format(name=spec.name),
        delta=naming.LAYER_DELTA.format(name=spec.name),
        previous=previous,
        activation=spec.activation.formula or spec.activation.name,
        softmax=softmax,
        f=f,
        f_prime=f_prime,
        f_prime_out=f_prime_out,
        output=_output_delta(network, softmax, f_prime_out) if l == network.depth else None,
        kind=("softmax" if softmax else "dense") if spec.kind == "dense" else spec.kind,
        window=spec.window,
        recurrent=naming.LAYER_RECURRENT.format(layer=network.matrix_number(l)) if spec.is_rnn else None,
        initial=naming.LAYER_INITIAL.format(name=spec.name) if spec.is_rnn else None,
    )


def _output_delta(network: Network, softmax: bool, f_prime_out: sympy.Expr | None) -> OutputDelta:
    dE_dy = to_step_form(sympy.diff(network.loss_scale * network.per_output_loss(), Y))
    if softmax:
        return _softmax_delta(dE_dy, network.targets_sum_to_one)
    if f_prime_out is None:
        return OutputDelta(dE_dy, None, "")
    product = dE_dy * f_prime_out
    if not _cheap_to_cancel(product):
        return OutputDelta(dE_dy, product, "")
    simplified = sympy.cancel(product)
    # Sigmoid with binary cross-entropy cancels to (y - t)/n; where cancelling only reshuffles
    # (a log-cosh formula loss), the product stays as the chain rule writes it.
    if sympy.count_ops(simplified) < sympy.count_ops(product):
        return OutputDelta(dE_dy, sympy.factor(simplified), "", simplified=True)
    return OutputDelta(dE_dy, product, "")


def _softmax_delta(dE_dy: sympy.Expr, targets_sum_to_one: bool) -> OutputDelta:
    """delta_k = y_k (g_k - sum_j g_j y_j); closed when g_j y_j = c t_j and the spec guarantees
    that the targets sum to 1 (the sum is then c). Without that guarantee (a formula loss, whose
    targets may be anything) the general product is kept: with t = [1, 1], -t*log(y) has
    delta = 2y - t, not y - t."""
    if not _cheap_to_cancel(dE_dy * Y):
        return OutputDelta(dE_dy, None, "")
    weighted = sympy.cancel(dE_dy * Y)
    linear = weighted.free_symbols <= {T} and sympy.Poly(weighted, T).degree() == 1 and weighted.subs(T, 0) == 0
    if not (linear and targets_sum_to_one):
        near_one = _grouped_in(sympy.cancel(weighted.xreplace({Y: 1 - ONE_MINUS_OUT}) * ONE_MINUS_OUT), ONE_MINUS_OUT)
        return OutputDelta(dE_dy, None, "", weighted=weighted, weighted_near_one=near_one)
    total = weighted.subs(T, 1)
    closed = sympy.cancel(Y * (dE_dy - total))
    return OutputDelta(dE_dy, closed, "the targets sum to 1", simplified=True)


def _grouped_in(expr: sympy.Expr, symbol: sympy.Symbol) -> sympy.Expr:
    """``expr`` with its numerator and denominator summed power by power of ``symbol``, each
    coefficient whole: bce's (1 - t - q)/(2q) is ((1 - t) - q)/(2q), so that at t = 1 the sum is
    -q, where (-q - t) + 1 rounds to 0 for q below 1e-16."""
    def grouped(part: sympy.Expr) -> sympy.Expr:
        if not part.is_polynomial(symbol):
            return part
        return sympy.Add(*[c * symbol**k for (k,), c in sympy.Poly(part, symbol).terms()], evaluate=False)

    numerator, denominator = sympy.fraction(expr)
    return grouped(numerator) / grouped(denominator)


def _cheap_to_cancel(expr: sympy.Expr) -> bool:
    """cancel() multiplies out polynomials: fine for the registry's losses, exponential in the
    degree for a formula such as (y + t + 1)**100/(y - t + 2)**100, which is left as it is."""
    powers = [p.exp for p in expr.atoms(sympy.Pow) if p.exp.is_Number]
    return tree_size(expr, 201) <= 200 and all(abs(e) <= 4 for e in powers)


# ---------------------------------------------------------------------------------------------
# Softmax near 0 and 1: the derivation's evaluator and the emitted trainer both call these


def _largest_and_share(net: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row [batch, 1]: the largest net, and the others' share sum_m exp(net_m - largest)
    over the entries but one largest (log1p of it keeps digits that log(1 + share) loses)."""
    rows, top = np.arange(net.shape[0]), np.argmax(net, axis=1)
    largest = net[rows, top][:, None]
    shares = np.exp(net - largest)
    shares[rows, top] = 0.0
    return largest, shares.sum(axis=1, keepdims=True)


def softmax_output_delta(w: np.ndarray, wq: np.ndarray, net: np.ndarray) -> np.ndarray:
    """delta_k = y_k (g_k - sum_j g_j y_j) for a softmax output, from w = y*dE/dy (needed only
    where y <= 1/2: every entry but a row's largest) and wq = w*(1 - y) (every entry): with m a
    row's largest entry, delta_m = wq_m - y_m sum_(j != m) w_j, and for k != m
    delta_k = wq_k - y_k sum_(j != k, m) w_j - (y_k / (1 - y_m)) wq_m. Nothing cancels, and
    nothing is inf * 0, where an output rounds to 1 (softmax + bce at any logit gap)."""
    rows, top = np.arange(net.shape[0]), np.argmax(net, axis=1)
    log_out, log_rest = log_softmax(net), log_one_minus_softmax(net)[rows, top][:, None]
    w = np.array(w, dtype=net.dtype)
    w[rows, top] = 0.0
    rest = w.sum(axis=1, keepdims=True)
    out = np.exp(log_out)
    wq_top = wq[rows, top][:, None]
    ratio = log_out - log_rest  # log(y_k / (1 - y_m)) <= 0 for k != m
    ratio[rows, top] = 0.0
    delta = wq - out * (rest - w) - np.exp(ratio) * wq_top
    delta[rows, top] = (wq_top - out[rows, top][:, None] * rest)[:, 0]
    return delta


def log_softmax(net: np.ndarray) -> np.ndarray:
    """log(softmax(net)) [batch, units], as (net - largest) - log1p(share): the largest entry's
    -4.2e-18 at a gap of 40 is kept (net - log-sum-exp gives 0 there)."""
    largest, share = _largest_and_share(net)
    return (net - largest) - np.log1p(share)


def log_one_minus_softmax(net: np.ndarray) -> np.ndarray:
    """log(1 - softmax(net)) [batch, units], finite where softmax(net) rounds to 1: an entry that
    is not its row's largest has out <= 1/2, and log1p(-out) keeps its digits; for the largest,
    1 - out is the others' share of the row: log(share) - log1p(share), share taken in the log
    domain from the second largest (no underflow at any gap)."""
    if net.shape[1] == 1:
        return np.full_like(net, -np.inf)
    with np.errstate(divide="ignore"):  # the largest entries' log1p(-1) are replaced below
        result = np.log1p(-np.exp(log_softmax(net)))
    rows, top = np.arange(net.shape[0]), np.argmax(net, axis=1)
    largest, share = _largest_and_share(net)
    others = net.copy()
    others[rows, top] = -np.inf
    second, rest = _largest_and_share(others)
    result[rows, top] = ((second - largest) + np.log1p(rest) - np.log1p(share))[:, 0]
    return result


def local_derivative(form: LayerForm) -> sympy.Expr:
    """f' as it is computed, by the derivation and the trainer: in the output where the registry
    writes it so (as people compute it), else in the net, with a branch taken only where u <= 0
    computing its exp of min(u, 0) (elu' = alpha*exp(x) at x = 1000 is not inf*0 = nan)."""
    if form.f_prime_out is not None:
        return form.f_prime_out
    assert form.f is not None
    return to_step_form(stable_form(sympy.diff(form.f, X)))
