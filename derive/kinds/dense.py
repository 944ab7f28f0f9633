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
  every weight used once per sample;
- its units' edges in the network's graph (:mod:`chainrule.derive.graph`): ``net_u`` reads every
  output of the layer below, its weights and its bias; ``out_u`` reads ``net_u`` alone; their
  definitions (:func:`net_definition`, :func:`out_definition`), which the per-weight chains
  differentiate.

The softmax kind (:mod:`chainrule.derive.kinds.softmax`) shares the weighted sums and the
per-weight rules and differs in its activation.
"""

from __future__ import annotations

import sympy

from chainrule.derive import naming
from chainrule.derive.layers import LayerForm, local_derivative
from chainrule.derive.network import Network, ParamRef, real_symbol
from chainrule.derive.program import (
    Affine, Backprop, BiasSum, Chain, CorrelateBackprop, Outer, SharedBiasSum, Stage, Statement, geometry, vector, in_vectors,
)
from chainrule.derive.registry import T, X, Y, softmax_unit
from chainrule.derive.spec import BiasMode

KIND = "dense"


def out_reads(size: int, row: int) -> range:
    """The units of its layer (of ``size``) whose nets the output of unit ``row`` reads: its own."""
    return range(row, row + 1)


def net_reads(network: Network, layer: int, row: int) -> range:
    """The units of layer ``layer - 1`` whose outputs ``net`` of unit ``row`` of ``layer`` reads: all."""
    return range(network.sizes[layer - 1])


def net_parameters(network: Network, layer: int, row: int) -> list[str]:
    """The parameters ``net`` of unit ``row`` reads, in order: its weights, then its bias."""
    names = [network.weight_name(layer, row, c) for c in range(network.sizes[layer - 1])]
    bias = network.bias_name(layer, row)
    return names + ([bias] if bias else [])


def parameter_readers(network: Network, ref: ParamRef) -> range:
    """The units of its layer whose nets read the parameter ``ref``: its unit's; every unit for
    a shared bias."""
    if not ref.is_weight and network.bias_mode(ref.layer) is BiasMode.SHARED:
        return range(network.sizes[ref.layer])
    return range(ref.row, ref.row + 1)


def net_terms(network: Network, layer: int, row: int) -> list[tuple[ParamRef, int]]:
    """The products of ``net`` of unit ``row``: (its weight, the unit of layer ``layer - 1`` it
    multiplies), one per unit below."""
    return [(ParamRef(network.weight_name(layer, row, c), layer, "weight", row, c), c) for c in range(network.sizes[layer - 1])]


def net_bias(network: Network, layer: int, row: int) -> ParamRef | None:
    """The bias ``net`` of unit ``row`` adds (the layer's one where shared), or None."""
    name = network.bias_name(layer, row)
    shared = network.bias_mode(layer) is BiasMode.SHARED
    return None if name is None else ParamRef(name, layer, "bias", 0 if shared else row, -1)


def weighted_sum(network: Network, terms: list[tuple[ParamRef, int]], bias: ParamRef | None, layer: int) -> sympy.Expr:
    """``sum_j w_j out_j + b``: the products ``terms`` of a net of ``layer`` and its bias."""
    products = [real_symbol(ref.name) * network.out(layer - 1, c) for ref, c in terms]
    return sympy.Add(*products, *([real_symbol(bias.name)] if bias is not None else []))


def net_definition(network: Network, layer: int, row: int) -> sympy.Expr:
    """``net_u = sum_j w_uj out_j + b_u`` for unit ``row`` of ``layer``."""
    return weighted_sum(network, net_terms(network, layer, row), net_bias(network, layer, row), layer)


def out_definition(network: Network, layer: int, row: int) -> sympy.Expr:
    """``out_u = f(net_u)`` in the net symbols of its layer (softmax: over every net of it); for
    a layer without weights, in the outputs of the layer before (``s_k = f(out_h_k)``, softmax
    over every ``out_h_j``)."""
    if network.is_softmax(layer):
        nets = tuple(network.activation_input(layer, r) for r in range(network.sizes[layer]))
        return softmax_unit(nets, row)
    return network.activation(layer).xreplace({X: network.activation_input(layer, row)})


def names(form: LayerForm, targets: str) -> dict:
    """The generic symbols of the layer's derived pieces (``x`` the net, ``y`` the output, ``t``
    the target) as the layer's vectors."""
    return {X: vector(form.net), Y: vector(form.out), T: vector(targets)}


def weighted_sums(form: LayerForm, previous: str, kind: str = KIND) -> Statement:
    """``net = W x + b``."""
    args = [vector(form.weight), vector(previous)] + ([vector(form.bias)] if form.bias else [])
    return Statement(vector(form.net), Affine(*args), Stage.FORWARD, form.index, kind, "weighted sums")


def activate(form: LayerForm, targets: str, kind: str = KIND) -> Statement:
    """``out = f(net)``, elementwise."""
    assert form.f is not None
    activation = in_vectors(form.f, names(form, targets))
    return Statement(vector(form.out), activation, Stage.FORWARD, form.index, kind, "activation", function=form.activation)


def forward(form: LayerForm, previous: str, targets: str) -> list[Statement]:
    """The weighted sums and the activation."""
    return [weighted_sums(form, previous), activate(form, targets)]


def local(form: LayerForm, targets: str) -> Statement:
    """``dout/dnet = f'(net)`` as it is computed (:func:`~chainrule.derive.layers.local_derivative`),
    shown as people write it: in the output where the registry writes it so, else sympy's diff."""
    vectors = names(form, targets)
    computed = in_vectors(local_derivative(form), vectors)
    human = form.f_prime_out if form.f_prime_out is not None else form.f_prime
    assert human is not None
    shown = in_vectors(human, vectors)
    return Statement(vector(naming.LAYER_LOCAL.format(name=form.name)), computed, Stage.BACKWARD, form.index, KIND,
                     "local derivative", (f"d{form.out}/d{form.net}",), shown=None if shown == computed else shown)


def _through(form: LayerForm, upstream: sympy.Expr, derivative: Statement) -> sympy.Expr:
    """``upstream * f'(net)``: the chain rule's product, elementwise (``upstream`` alone where f' is 1)."""
    return upstream if derivative.expr == 1 else Chain(upstream, derivative.target)


def output_delta(form: LayerForm, targets: str) -> list[Statement]:
    """``delta = dE/dout * dout/dnet`` for the output layer, or the simpler form sympy finds for
    the product (then one factor, ``dE/dnet``, as people take it)."""
    output = form.output
    assert output is not None
    vectors = names(form, targets)
    derivative = local(form, targets)
    factors = (f"dE/d{form.out}", f"d{form.out}/d{form.net}")
    product = output.closed is None or (form.f_prime_out not in (None, 1) and output.closed == output.dE_dy * form.f_prime_out)
    expr = _through(form, in_vectors(output.dE_dy, vectors), derivative) if product else in_vectors(output.closed, vectors)
    return [derivative, Statement(vector(form.delta), expr, Stage.BACKWARD, form.index, KIND, "output delta", factors, output.constraint,
                                  simplified=output.simplified and not product)]


def upstream(above: LayerForm) -> sympy.Expr:
    """dE/d(out of the layer below ``above``): ``W_above^T delta_above``, the full correlation
    of a convolution's deltas with its flipped kernel, or ``delta_above`` itself where ``above``
    has no weights (its delta is dE/d(its input))."""
    if above.weight and above.window is not None:
        return CorrelateBackprop(vector(above.weight), vector(above.delta), geometry(above.window))
    return Backprop(vector(above.weight), vector(above.delta)) if above.weight else vector(above.delta)


def hidden_delta(form: LayerForm, above: LayerForm, targets: str) -> list[Statement]:
    """``delta = (W_above^T delta_above) * f'(net)`` (``delta_above * f'(net)`` below a layer
    without weights)."""
    derivative = local(form, targets)
    expr = _through(form, upstream(above), derivative)
    return [derivative, Statement(vector(form.delta), expr, Stage.BACKWARD, form.index, KIND, "delta",
                                  (f"dE/d{form.out}", f"d{form.out}/d{form.net}"))]


def gradients(form: LayerForm, previous: str, kind: str = KIND) -> list[Statement]:
    """``dE/dW = delta x^T`` and ``dE/db``: each weight multiplies one input of its unit."""
    delta = vector(form.delta)
    out = [Statement(vector(naming.LAYER_GRADIENT.format(param=form.weight)), Outer(delta, vector(previous)), Stage.BACKWARD, form.index, kind,
                     "weight gradient", (f"dE/d{form.net}", f"d{form.net}/d{form.weight}"))]
    if form.bias:
        total = SharedBiasSum(delta) if form.shared_bias else BiasSum(delta)
        out.append(Statement(vector(naming.LAYER_GRADIENT.format(param=form.bias)), total, Stage.BACKWARD, form.index, kind,
                             "bias gradient", (f"dE/d{form.net}", f"d{form.net}/d{form.bias}")))
    return out
