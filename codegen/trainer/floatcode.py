"""Small networks in straight-line float code: the one-sample sgd step and the per-weight chains.

Below :data:`SCALAR_MAX_PARAMS` parameters a one-sample step is faster as float arithmetic on
named scalars than as array calls (benchmarks/RESULTS.md: the measured switch-over), and the
per-weight closed forms (``dE_dw5 = ...``) read like the report's chains.
"""

from __future__ import annotations

import sympy

from chainrule.derive import naming
from chainrule.derive.chain import ParamChain
from chainrule.derive.derivation import Derivation
from chainrule.derive.network import Network
from chainrule.derive.optimizers import GRAD, THETA, first_step_expr
from chainrule.derive.registry import T, X, Y

from chainrule.codegen.trainer.arraycode import Line, net_text
from chainrule.codegen.trainer.printers import scalar_code

#: Straight-line float code replaces the array code for one-sample steps up to this many
#: parameters (benchmarks/RESULTS.md: the measured switch-over).
SCALAR_MAX_PARAMS = 128
#: Temporaries of a softmax in float code: no unit or parameter can have these names
#: (``max`` and ``sum`` are reserved, so no unit makes ``net_max`` or ``out_sum``).
SOFTMAX_MAX, SOFTMAX_SUM = naming.NET.format(unit="max"), naming.OUT.format(unit="sum")


def scalar_wanted(d: Derivation) -> bool:
    """Straight-line float steps for small sgd networks whose output delta closes (and with no
    hidden softmax, whose Jacobian the unit-by-unit deltas do not spell out)."""
    network = d.network
    if network.parameter_count > SCALAR_MAX_PARAMS or network.spec.optimizer.kind != "sgd":
        return False
    return d.layers[-1].output.closed is not None and not any(form.softmax for form in d.layers[:-1])


def _scalar_forward(d: Derivation) -> list[Line]:
    network = d.network
    lines = []
    for l in range(1, network.depth + 1):
        nets = [network.net(l, r).name for r in range(network.sizes[l])]
        outs = [network.out(l, r).name for r in range(network.sizes[l])]
        for r, (net, out) in enumerate(zip(nets, outs)):
            lines.append(Line("", f"{net} = {net_text(network, l, r)}"))
            if not network.is_softmax(l):
                lines.append(Line("", f"{out} = {scalar_code(network.activation(l), {X: net})}"))
        if network.is_softmax(l):
            largest = f"max({', '.join(nets)})" if len(nets) > 1 else nets[0]
            lines.append(Line("softmax, shifted by the largest net (same value, no overflow)", f"{SOFTMAX_MAX} = {largest}"))
            lines.extend(Line("", f"{out} = math.exp({net} - {SOFTMAX_MAX})") for net, out in zip(nets, outs))
            lines.append(Line("", f"{SOFTMAX_SUM} = {' + '.join(outs)}"))
            lines.extend(Line("", f"{out} /= {SOFTMAX_SUM}") for out in outs)
    return lines


def _unpack(d: Derivation) -> list[Line]:
    network, spec = d.network, d.network.spec
    names = [ref.name for ref in _flat_refs(network)]
    # one assignment: the right side is read before any name is bound, so an input named t (or a
    # parameter named x) cannot overwrite the vector x or t before it is unpacked
    return [Line("", f"({_targets(names)}), ({_targets(spec.inputs)}), ({_targets(spec.targets)}) = self.theta.tolist(), x, t")]


def _targets(names) -> str:
    """``a, b`` (or ``a,`` for one name) as the left side of an unpacking assignment."""
    return ", ".join(names) + ("," if len(names) == 1 else "")


def _flat_refs(network: Network) -> list:
    """Parameters in the order of ``theta``: each layer's weights row by row, then its biases."""
    refs = []
    for l in range(1, network.depth + 1):
        layer = [ref for ref in network.parameters() if ref.layer == l]
        refs += [r for r in layer if r.is_weight] + [r for r in layer if not r.is_weight]
    return refs


def scalar_step(d: Derivation, frozen: frozenset[str]) -> tuple[Line, ...]:
    """One sgd step on one sample as float arithmetic; ``frozen`` names the parameter blocks (W1,
    b2, ...) the spec keeps fixed."""
    network = d.network
    lines = _unpack(d) + _scalar_forward(d)
    loss = network.loss_definition()
    lines.append(Line("E, the loss of this sample", f"E = {scalar_code(loss)}"))
    last = d.layers[-1]
    closed = last.output.closed
    depth = network.depth
    for l in range(depth, 0, -1):
        for r in range(network.sizes[l]):
            out, net, delta = network.out(l, r), network.net(l, r), naming.DELTA_UNIT.format(unit=network.units(l)[r])
            if l == depth:
                code = scalar_code(closed, {Y: out.name, T: network.target(r).name, X: net.name})
                lines.append(Line(f"{delta} = dE/d{net.name}", f"{delta} = {code}"))
            else:
                form = d.layers[l - 1]
                local = form.f_prime_out if form.f_prime_out is not None else form.f_prime
                upstream = " + ".join(f"{naming.DELTA_UNIT.format(unit=network.units(l + 1)[k])}*{network.weight_name(l + 1, k, r)}" for k in range(network.sizes[l + 1]))
                lines.append(Line(f"{delta} = (sum of the deltas above times their weights) * d{out.name}/d{net.name}",
                                  f"{delta} = ({upstream})*{_factor(scalar_code(local, {Y: out.name, X: net.name}))}"))
    hyper = dict(network.spec.optimizer.hyper)
    rule = first_step_expr("sgd", hyper)
    updated = []
    for ref in _flat_refs(network):
        layer_slot = (naming.LAYER_WEIGHT if ref.is_weight else naming.LAYER_BIAS).format(layer=ref.layer)
        if layer_slot in frozen:
            updated.append(ref.name)
            continue
        gradient = _scalar_gradient(network, ref)
        updated.append(scalar_code(rule, {THETA: ref.name, GRAD: sympy.Symbol("GRADIENT")}).replace("GRADIENT", f"({gradient})"))
    lines.append(Line("the loss, and theta - lr*dE/dtheta for every parameter; dE/dw = delta of its unit * the output it multiplies",
                      f"return E, ({', '.join(updated)},)"))
    return tuple(lines)


def _scalar_gradient(network: Network, ref) -> str:
    unit = naming.DELTA_UNIT.format(unit=network.units(ref.layer)[ref.row])
    if not ref.is_weight:
        layer = network.spec.layers[ref.layer - 1]
        if layer.bias.value == "shared":
            return " + ".join(naming.DELTA_UNIT.format(unit=u) for u in network.units(ref.layer))
        return unit
    source = network.spec.inputs[ref.col] if ref.layer == 1 else network.out(ref.layer - 1, ref.col).name
    return f"{unit}*{source}"


def _factor(code: str) -> str:
    return code if code.replace("_", "").isalnum() else f"({code})"


def _operand(expr: sympy.Expr) -> str:
    """A factor of a product as float code: sums and negatives in parentheses."""
    code = scalar_code(expr)
    return f"({code})" if expr.is_Add or code.startswith("-") else code


def formulas(d: Derivation) -> tuple[Line, ...]:
    """dE/dθ for every parameter of a small network as its chain writes it, path by path."""
    lines = _unpack(d) + _scalar_forward(d)
    for name, chain in d.chains.items():
        if chain.cut_layer is not None:
            return ()
        lines.append(Line(f"dE/d{name} = {_chain_names(chain)}", f"{naming.GRADIENT_CODE.format(name=name)} = {_chain_code(chain)}"))
    gradient_names = ", ".join(f'"{name}": {naming.GRADIENT_CODE.format(name=name)}' for name in d.chains)
    lines.append(Line("", f"return {{{gradient_names}}}"))
    return tuple(lines)


def _chain_names(chain: ParamChain) -> str:
    return " + ".join(" * ".join(f"d{f.of.name}/d{f.wrt.name}" for f in path.factors) for path in chain.paths)


def _chain_code(chain: ParamChain) -> str:
    paths = []
    for path in chain.paths:
        kept = [_operand(f.human) for f in path.factors if f.human != 1]
        paths.append("*".join(kept) if kept else "1.0")
    return " + ".join(paths)
