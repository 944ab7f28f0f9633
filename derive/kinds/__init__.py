"""Layer kinds: each a module holding its rules (forward, local derivative, delta, per-weight
gradients) as statements of the layer program; :func:`layer_program` puts a network's together.

A kind module provides ``forward(form, previous, targets)``, ``output_delta(form, targets)``,
``hidden_delta(form, above, targets)`` (each a list of statements), ``gradients(form, previous)`` and ``names(form, targets)``
(its derived pieces' generic symbols as its vectors), and its units' edges in the network's graph
(:mod:`chainrule.derive.graph`): ``out_reads(size, row)``, ``net_reads(network, layer, row)``,
``net_parameters(network, layer, row)`` and ``parameter_readers(network, ref)``, and its units'
definitions, which the per-weight chains differentiate: ``net_definition(network, layer, row)``
(with ``net_terms`` and ``net_bias``, its products and bias) and ``out_definition(network, layer,
row)``; a kind whose units have no nets (:mod:`~chainrule.derive.kinds.activation`, a layer
without weights; a pool; a flatten) sets ``OUT_READS_BELOW`` and gives ``out_reads_below(network,
layer, row)``, the outputs of the layer before that a unit reads; a kind whose local factor is
not an elementwise activation's (a pool, a flatten) gives ``local_factor(network, layer, row,
wrt)``. A new kind is a new module and a line in :data:`KINDS`.
"""

from __future__ import annotations

from types import MappingProxyType, ModuleType

import sympy

from chainrule.derive import naming
import dataclasses

from chainrule.derive.kinds import activation, conv, dense, flatten, pool, rnn, softmax
from chainrule.derive.layers import LayerForm, stable_loss
from chainrule.derive.network import Network, ParamRef
from chainrule.derive import penalty
from chainrule.derive.program import Masked, Program, Role, SampleLoss, Stage, Statement, vector, VectorInfo, in_vectors

KINDS: MappingProxyType[str, ModuleType] = MappingProxyType({
    "dense": dense, "softmax": softmax, "activation": activation, "conv1d": conv, "conv2d": conv, "flatten": flatten,
    "maxpool1d": pool, "maxpool2d": pool, "avgpool1d": pool, "avgpool2d": pool, "rnn": rnn,
})


def kind_of(form: LayerForm) -> ModuleType:
    """The kind module whose rules ``form``'s layer follows (its :attr:`LayerForm.kind`)."""
    return KINDS[form.kind]


def kind_of_layer(network: Network, layer: int) -> ModuleType:
    """The kind module of ``network``'s layer ``layer`` (1-based), before its form is derived:
    the spec's ``kind`` (a dense layer with a softmax follows the softmax kind)."""
    kind = network.spec.layers[layer - 1].kind
    if kind == "dense" and network.is_softmax(layer):
        kind = "softmax"
    return KINDS[kind]


def _at_step(network: Network, layer: int, step: int, expr: sympy.Expr) -> sympy.Expr:
    """``expr``, written by a kind for a unit at the first step of a sequence, at step ``step``
    (from 0): the outputs of layer ``layer - 1`` and the nets and outputs of ``layer`` moved to it
    (a kind other than the rnn reads one step only)."""
    if step == 0:
        return expr
    moved = {}
    for l in (layer - 1, layer):
        size = network.sizes[l]
        for k in range(size):
            moved[network.out(l, k)] = network.out(l, step * size + k)
            if l > 0 and network.has_parameters(l):
                moved[network.net(l, k)] = network.net(l, step * size + k)
    return expr.xreplace(moved)


def _through_time(network: Network, layer: int) -> bool:
    """Whether ``layer``'s kind reads rows at several steps itself (an rnn: h_(t-1))."""
    return getattr(kind_of_layer(network, layer), "THROUGH_TIME", False)


def net_definition(network: Network, layer: int, row: int) -> sympy.Expr:
    """``net`` of unit ``row`` of ``layer`` in the outputs below and the parameters, as its kind
    defines it (a dense layer's weighted sum, a convolution's sum over its receptive field); in
    a sequence, ``row`` counts step by step (:meth:`Network.rows`) and the net is the step's.

    Raises:
        AttributeError: a layer without nets (activation, pool, flatten)."""
    kind = kind_of_layer(network, layer)
    if _through_time(network, layer):
        return kind.net_definition(network, layer, row)
    step, k = network.step_of(layer, row)
    return _at_step(network, layer, step, kind.net_definition(network, layer, k))


def net_terms(network: Network, layer: int, row: int) -> list[tuple[ParamRef, int]]:
    """The products of ``net`` of unit ``row`` of ``layer``: (its weight, the row of layer
    ``layer - 1`` it multiplies), in the order the kind writes them (an rnn's U terms, which
    read its own layer, are in :func:`net_products`)."""
    kind = kind_of_layer(network, layer)
    if _through_time(network, layer):
        return kind.net_terms(network, layer, row)
    step, k = network.step_of(layer, row)
    below = step * network.sizes[layer - 1]
    return [(ref, below + c) for ref, c in kind.net_terms(network, layer, k)]


def net_products(network: Network, layer: int, row: int) -> list[tuple[ParamRef, sympy.Symbol]]:
    """The products of ``net`` of unit ``row`` of ``layer``: (its weight, the symbol it
    multiplies), an rnn's ``u*out_h1_t1`` (``out_h1_t0``: h_0) after its ``w*x1_t2``."""
    kind = kind_of_layer(network, layer)
    if hasattr(kind, "net_products"):
        return kind.net_products(network, layer, row)
    return [(ref, network.out(layer - 1, c)) for ref, c in net_terms(network, layer, row)]


def net_bias(network: Network, layer: int, row: int) -> ParamRef | None:
    """The bias ``net`` of unit ``row`` of ``layer`` adds (a shared one, a channel's), or None."""
    return kind_of_layer(network, layer).net_bias(network, layer, network.step_of(layer, row)[1])


def out_definition(network: Network, layer: int, row: int) -> sympy.Expr:
    """The output of unit ``row`` of ``layer`` in its net symbols, or for a layer without nets
    in the outputs of the layer before (``s_k = f(out_h_k)``, a pool's ``Max`` or mean of its
    window, a flatten's one output), as its kind defines it."""
    step, k = network.step_of(layer, row)
    return _at_step(network, layer, step, kind_of_layer(network, layer).out_definition(network, layer, k))


def layer_program(network: Network, forms: tuple[LayerForm, ...]) -> Program:
    """The forward pass, loss and delta recursion of ``network`` (its layer forms ``forms``)."""
    inputs, targets = network.input_vector, network.target_vector
    statements: list[Statement] = []
    for form in forms:
        statements += kind_of(form).forward(form, _previous(network, form), targets)
    last = forms[-1]
    loss = in_vectors(stable_loss(network), kind_of(last).names(last, targets))
    steps = network.spec.steps
    if steps:  # a sequence's loss: the steps whose targets are null have none
        loss = Masked(loss, vector(targets))
    statements.append(Statement(vector(naming.LOSS), SampleLoss(loss), Stage.LOSS, last.index, kind_of(last).KIND, "loss"))
    l2 = network.spec.loss.l2
    # a layer without weights has no penalty; an rnn's W and U have theirs
    weights = tuple(name for form in forms for name in (form.weight, form.recurrent) if name is not None)
    if l2 and weights:
        statements.append(penalty.penalty_statement(weights, last.index))
    statements += _masked(kind_of(last).output_delta(last, targets), targets) if steps else kind_of(last).output_delta(last, targets)
    for form in reversed(forms):
        statements += kind_of(form).gradients(form, _previous(network, form))
        if l2 and form.weight is not None:
            statements += [penalty.gradient_statement(name, form.index) for name in (form.weight, form.recurrent) if name is not None]
        if form.index > 1:
            below = forms[form.index - 2]
            statements += kind_of(below).hidden_delta(below, form, targets)
    constants = tuple((form.initial, _initial(network, form)) for form in forms if form.initial is not None)
    return Program(tuple(statements), _vectors(network, forms, statements), inputs, targets, tuple(network.sizes), network.spec.reduction, l2,
                   steps, constants)


def _masked(statements: list[Statement], targets: str) -> list[Statement]:
    """The output delta of a sequence: 0 at the steps without targets (they have no loss)."""
    def masked(s: Statement) -> Statement:
        if s.rule != "output delta":
            return s
        shown = None if s.shown is None else Masked(s.shown, vector(targets))
        return dataclasses.replace(s, expr=Masked(s.expr, vector(targets)), shown=shown)
    return [masked(s) for s in statements]


def _initial(network: Network, form: LayerForm) -> tuple[float, ...]:
    """An rnn's h_0: the spec's ``initial``, or zeros."""
    given = network.spec.layers[form.index - 1].initial
    return tuple(given) if given is not None else (0.0,) * form.size


def _previous(network: Network, form: LayerForm) -> str:
    return network.input_vector if form.index == 1 else form.previous


def _vectors(network: Network, forms: tuple[LayerForm, ...], statements: list[Statement]) -> MappingProxyType:
    sizes = network.sizes
    vectors = {network.input_vector: VectorInfo(Role.DATA, 0, (sizes[0],)),
               network.target_vector: VectorInfo(Role.DATA, len(forms), (sizes[-1],))}
    for form in forms:
        l = form.index
        if form.recurrent:  # W and U are held side by side: each its own columns
            before, units = network.sizes[l - 1], network.sizes[l]
            vectors[form.weight] = VectorInfo(Role.PARAMETER, l, (units, before), (0, before))
            vectors[form.recurrent] = VectorInfo(Role.PARAMETER, l, (units, units), (before, before + units))
            vectors[form.initial] = VectorInfo(Role.DATA, l, (units,))
        elif form.weight:
            vectors[form.weight] = VectorInfo(Role.PARAMETER, l, network.weight_shape(l))
        if form.bias:
            vectors[form.bias] = VectorInfo(Role.PARAMETER, l, (network.spec.layers[l - 1].bias_count,))
    gradient_of = {naming.LAYER_GRADIENT.format(param=p): p for p, info in vectors.items() if info.role is Role.PARAMETER}
    gradient_of.update({naming.PENALTY_GRADIENT.format(param=p): p for p, info in vectors.items() if info.role is Role.PARAMETER})
    for statement in statements:
        name = statement.target.name
        if statement.stage is Stage.LOSS:
            vectors[name] = VectorInfo(Role.LOSS, statement.layer, ())
        elif name in gradient_of:
            vectors[name] = VectorInfo(Role.GRADIENT, statement.layer, vectors[gradient_of[name]].shape)
        else:
            window = forms[statement.layer - 1].window
            # a convolution's or pool's values are maps [C, H, W] (held flat, row-major)
            vectors[name] = VectorInfo(Role.ACTIVATION, statement.layer, window.out_shape if window is not None else (sizes[statement.layer],))
    return MappingProxyType(vectors)

