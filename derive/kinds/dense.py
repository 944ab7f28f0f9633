"""A dense layer with an elementwise activation: ``net = W x + b``, ``out = f(net)``.

Its rules, each from the network's own definitions:

- forward: the weighted sums (:class:`~chainrule.derive.program.Affine`), then f applied to each;
- local derivative: ``dout/dnet = f'(net)``, by ``sympy.diff`` (written in the output where the
  registry writes it so, as people compute it; else in the net, in its overflow-safe form:
  :func:`chainrule.derive.layers.local_derivative`);
- as the output layer: ``delta = dE/dout * dout/dnet``, or the simpler form sympy finds for the
  product (sigmoid with binary cross-entropy: ``(out - t)/n``);
- below a layer: ``delta = (W^T delta_above) * f'(net)``;
- per weight: ``dE/dW = delta x^T`` and ``dE/db = delta`` (``sum(delta)`` for a shared bias),
  every weight used once per sample.

The softmax kind (:mod:`chainrule.derive.kinds.softmax`) shares the weighted sums and the
per-weight rules and differs in its activation.
"""

from __future__ import annotations

import sympy

from chainrule.derive.layers import LayerForm, local_derivative
from chainrule.derive.program import Affine, Backprop, BiasSum, Chain, Outer, SharedBiasSum, Stage, Statement, Vector, in_vectors
from chainrule.derive.registry import T, X, Y

KIND = "dense"


def names(form: LayerForm, targets: str) -> dict:
    """The generic symbols of the layer's derived pieces (``x`` the net, ``y`` the output, ``t``
    the target) as the layer's vectors."""
    return {X: Vector(form.net), Y: Vector(form.out), T: Vector(targets)}


def weighted_sums(form: LayerForm, previous: str, kind: str = KIND) -> Statement:
    """``net = W x + b``."""
    args = [Vector(form.weight), Vector(previous)] + ([Vector(form.bias)] if form.bias else [])
    return Statement(Vector(form.net), Affine(*args), Stage.FORWARD, form.index, kind, "weighted sums")


def forward(form: LayerForm, previous: str, targets: str) -> list[Statement]:
    """The weighted sums and the activation."""
    assert form.f is not None
    activation = in_vectors(form.f, names(form, targets))
    return [weighted_sums(form, previous),
            Statement(Vector(form.out), activation, Stage.FORWARD, form.index, KIND, "activation", function=form.activation)]


def local(form: LayerForm, targets: str) -> sympy.Expr:
    """``dout/dnet`` as it is computed, in the layer's vectors."""
    return in_vectors(local_derivative(form), names(form, targets))


def _factors(form: LayerForm, upstream: str) -> tuple[str, ...]:
    return (upstream, f"d{form.out}/d{form.net}")


def output_delta(form: LayerForm, targets: str) -> list[Statement]:
    """``delta = dE/dout * dout/dnet`` for the output layer, simplified where sympy finds it
    simpler (then one factor, ``dE/dnet``, as people take it)."""
    output = form.output
    assert output is not None
    vectors = names(form, targets)
    factors = _factors(form, f"dE/d{form.out}")
    dE_dy = in_vectors(output.dE_dy, vectors)
    product = output.closed is not None and form.f_prime_out not in (None, 1) and output.closed == output.dE_dy * form.f_prime_out
    if product:
        # the product closes in the output (f' written in it): the two factors as they are written
        expr = Chain(dE_dy, in_vectors(form.f_prime_out, vectors))
    elif output.closed is not None:
        expr = in_vectors(output.closed, vectors)
    else:
        expr = Chain(dE_dy, local(form, targets))
    return [Statement(Vector(form.delta), expr, Stage.BACKWARD, form.index, KIND, "output delta", factors, output.constraint)]


def hidden_delta(form: LayerForm, above: LayerForm, targets: str) -> Statement:
    """``delta = (W_above^T delta_above) * f'(net)``."""
    upstream = Backprop(Vector(above.weight), Vector(above.delta))
    derivative = local(form, targets)
    expr = upstream if derivative == 1 else Chain(upstream, derivative)
    return Statement(Vector(form.delta), expr, Stage.BACKWARD, form.index, KIND, "delta", _factors(form, f"dE/d{form.out}"))


def gradients(form: LayerForm, previous: str, kind: str = KIND) -> list[Statement]:
    """``dE/dW = delta x^T`` and ``dE/db``: each weight multiplies one input of its unit."""
    delta = Vector(form.delta)
    out = [Statement(Vector(f"dE_d{form.weight}"), Outer(delta, Vector(previous)), Stage.BACKWARD, form.index, kind,
                     "weight gradient", (f"dE/d{form.net}", f"d{form.net}/d{form.weight}"))]
    if form.bias:
        total = SharedBiasSum(delta) if form.shared_bias else BiasSum(delta)
        out.append(Statement(Vector(f"dE_d{form.bias}"), total, Stage.BACKWARD, form.index, kind,
                             "bias gradient", (f"dE/d{form.net}", f"d{form.net}/d{form.bias}")))
    return out
