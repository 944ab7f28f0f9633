"""The layer program unrolled unit by unit: straight-line float code for small networks.

A printer of :attr:`Derivation.program <chainrule.derive.derivation.Derivation.program>`, as
:mod:`~chainrule.codegen.trainer.arraycode` is, but an element at a time: each statement of a
layer's vectors becomes a line per unit (``net_h1 = w1*i1 + w2*i2 + b1``), each operation has one
method that prints its element ``r`` (:class:`~chainrule.derive.program.Affine`'s is the unit's
weighted sum, :class:`~chainrule.derive.program.Backprop`'s the deltas above times their
weights), and the elementwise parts are the program's own expressions with each vector replaced
by its ``r``-th unit. Below :data:`SCALAR_MAX_PARAMS` parameters a one-sample step is faster as
float arithmetic on named scalars than as array calls (benchmarks/RESULTS.md: the measured
switch-over), and the code reads like the hand calculation.

The per-weight closed forms (``gradient_formulas``) print the chain engine's paths instead, as
the report writes them.
"""

from __future__ import annotations

from typing import Callable

import sympy

from chainrule.derive import naming
from chainrule.derive.chain import ParamChain
from chainrule.derive.derivation import Derivation
from chainrule.derive.optimizers import GRAD, THETA, first_step_expr
from chainrule.derive.program import (
    Affine, Backprop, BiasSum, Chain, EntrySum, LogSoftmax, Op, Outer, SampleLoss, SharedBiasSum, Softmax, Stage,
    Statement, in_vectors, vector,
)

from chainrule.codegen.trainer.arraycode import Line
from chainrule.codegen.trainer.printers import ScalarPrinter, scalar_code

#: Straight-line float code replaces the array code for one-sample steps up to this many
#: parameters (benchmarks/RESULTS.md: the measured switch-over).
SCALAR_MAX_PARAMS = 128
#: Temporaries of a softmax in float code: no unit or parameter can have these names
#: (``max`` and ``sum`` are reserved, so no unit makes ``net_max`` or ``out_sum``).
SOFTMAX_MAX, SOFTMAX_SUM = naming.NET.format(unit="max"), naming.OUT.format(unit="sum")
#: The operations an element of which this printer writes; a program with any other (a softmax
#: layer's Jacobian below the output, a softmax delta that does not close) keeps the array code.
UNROLLED: frozenset[type[Op]] = frozenset(
    {Affine, Softmax, LogSoftmax, Chain, Backprop, Outer, BiasSum, SharedBiasSum, SampleLoss, EntrySum})


def scalar_wanted(d: Derivation) -> bool:
    """Straight-line float steps for small sgd networks (one set of settings: no
    ``optimizer.groups``) whose every statement this printer unrolls (:data:`UNROLLED`)."""
    network = d.network
    if network.parameter_count > SCALAR_MAX_PARAMS or network.spec.optimizer.kind != "sgd" or network.spec.optimizer.groups:
        return False
    return all(s.operations <= UNROLLED for s in d.program.statements)


def scalar_step(d: Derivation, frozen: frozenset[str]) -> tuple[Line, ...]:
    """One sgd step on one sample as float arithmetic: ``return E, (theta after the step)``;
    ``frozen`` names the parameter blocks (W1, b2, ...) the spec keeps fixed."""
    return _UnitPrinter(d).step(frozen)


def formulas(d: Derivation) -> tuple[Line, ...]:
    """dE/dθ for every parameter of a small network as its chain writes it, path by path (empty
    where a chain is cut to the layer form)."""
    if any(chain.cut_layer is not None for chain in d.chains.values()):
        return ()
    printer = _UnitPrinter(d)
    lines = printer.unpack() + printer.forward()
    for name, chain in d.chains.items():
        lines.append(Line(f"dE/d{name} = {_chain_names(chain)}", f"{naming.GRADIENT_CODE.format(name=name)} = {_chain_code(chain)}"))
    gradient_names = ", ".join(f'"{name}": {naming.GRADIENT_CODE.format(name=name)}' for name in d.chains)
    lines.append(Line("", f"return {{{gradient_names}}}"))
    return tuple(lines)


class _Code(sympy.Symbol):
    """An operand already printed as code (a weighted sum, a parameter's gradient), set in
    parentheses where it is not a name."""


class _FloatPrinter(ScalarPrinter):
    def _print__Code(self, expr: _Code) -> str:
        return expr.name if expr.name.isidentifier() else f"({expr.name})"


class _UnitPrinter:
    """Prints the program's statements unit by unit; ``at(expr, r)`` is element ``r`` as code."""

    def __init__(self, d: Derivation) -> None:
        self.d, self.program, self.network = d, d.program, d.network
        network = self.network
        self.units: dict[sympy.Symbol, tuple] = {
            vector(self.program.inputs): tuple(network.out(0, c) for c in range(network.sizes[0])),
            vector(self.program.targets): tuple(network.target(k) for k in range(network.sizes[-1])),
        }
        self.parameters: list[tuple[str, str]] = []  # (block, name) in the order of theta
        for form in d.layers:
            l, rows = form.index, range(network.sizes[form.index])
            units = network.units(l)
            if form.weight is not None:  # a layer without weights reads the layer before's outputs as its nets
                self.units[vector(form.net)] = tuple(network.net(l, r) for r in rows)
            self.units[vector(form.out)] = tuple(network.out(l, r) for r in rows)
            self.units[vector(form.delta)] = tuple(_symbol(naming.DELTA_UNIT.format(unit=u)) for u in units)
            if form.weight is None:
                continue
            weights = tuple(tuple(_symbol(network.weight_name(l, r, c)) for c in range(network.sizes[l - 1])) for r in rows)
            self.units[vector(form.weight)] = weights
            self.parameters += [(form.weight, w.name) for row in weights for w in row]
            if form.bias:
                biases = tuple(dict.fromkeys(_symbol(network.bias_name(l, r)) for r in rows))
                self.units[vector(form.bias)] = biases
                self.parameters += [(form.bias, b.name) for b in biases]

    # -- the step ------------------------------------------------------------------------------

    def step(self, frozen: frozenset[str]) -> tuple[Line, ...]:
        lines = self.unpack() + self.forward()
        loss = self.program.stage(Stage.LOSS)[0]
        lines.append(Line("E, the loss of this sample", f"E = {self.at(loss.expr, 0)}"))
        gradients: dict[str, str] = {}
        penalty = [s for s in self.program.stage(Stage.LOSS) if s.rule == "penalty"]
        if penalty:
            lines.insert(0, Line("", f"{naming.L2} = self.l2"))
            lines.append(self._penalty(penalty[0]))
        for s in self.program.stage(Stage.BACKWARD):
            if s.rule in ("output delta", "delta"):
                lines += self._delta(s)
            elif s.rule in ("weight gradient", "bias gradient"):
                gradients.update(self._gradient(s))
            elif s.rule == "penalty gradient":
                for name, term in self._penalty_gradient(s).items():
                    gradients[name] += f" + {term}"
        rule = first_step_expr("sgd", dict(self.network.spec.optimizer.hyper))
        updated = [name if block in frozen else _FloatPrinter().doprint(rule.xreplace({THETA: _symbol(name), GRAD: _Code(gradients[name])}))
                   for block, name in self.parameters]
        lines.append(Line("the loss, and theta - lr*dE/dtheta for every parameter; dE/dw = delta of its unit * the output it multiplies",
                          f"return E, ({', '.join(updated)},)"))
        return tuple(lines)

    def unpack(self) -> list[Line]:
        spec = self.network.spec
        names = [name for _, name in self.parameters]
        # one assignment: the right side is read before any name is bound, so an input named t (or
        # a parameter named x) cannot overwrite the vector x or t before it is unpacked
        return [Line("", f"({_targets(names)}), ({_targets(spec.inputs)}), ({_targets(spec.targets)}) = self.theta.tolist(), x, t")]

    def forward(self) -> list[Line]:
        """A layer's weighted sums and activations unit by unit (``net_h1``, ``out_h1``,
        ``net_h2``, ...), a softmax after its layer's sums."""
        lines: list[Line] = []
        for l in range(1, self.network.depth + 1):
            statements = [s for s in self.program.stage(Stage.FORWARD) if s.layer == l]
            whole = [s for s in statements if isinstance(s.expr, Softmax)]
            for r in range(self.network.sizes[l]):
                lines += [Line("", f"{self.element(s.target, r)} = {self.at(s.expr, r)}") for s in statements if s not in whole]
            for s in whole:
                lines += self._softmax(s)
        return lines

    def _softmax(self, s: Statement) -> list[Line]:
        nets, outs = self.units[s.expr.args[0]], self.units[s.target]
        largest = f"max({', '.join(n.name for n in nets)})" if len(nets) > 1 else nets[0].name
        return [Line("softmax, shifted by the largest net (same value, no overflow)", f"{SOFTMAX_MAX} = {largest}"),
                *(Line("", f"{out} = math.exp({net} - {SOFTMAX_MAX})") for net, out in zip(nets, outs)),
                Line("", f"{SOFTMAX_SUM} = {' + '.join(o.name for o in outs)}"),
                *(Line("", f"{out} /= {SOFTMAX_SUM}") for out in outs)]

    def _delta(self, s: Statement) -> list[Line]:
        lines = []
        for r, delta in enumerate(self.units[s.target]):
            net, out = (self.element(vector(name), r) for name in self._layer_vectors(s))
            if s.rule == "output delta":
                product = f" = dE/d{out} * d{out}/d{net}" if isinstance(s.expr, Chain) else ""
                comment = f"{delta} = dE/d{net}{product}"
            else:
                local = f" * d{out}/d{net}" if isinstance(s.expr, Chain) else ""
                above = "the delta above (a layer without weights)" if s.expr.has(*(vector(f.delta) for f in self.d.layers if f.weight is None)) else "sum of the deltas above times their weights"
                comment = f"{delta} = ({above}){local}"
            lines.append(Line(comment, f"{delta} = {self.at(s.expr, r)}"))
        return lines

    def _layer_vectors(self, s: Statement) -> tuple[str, str]:
        form = self.d.layers[s.layer - 1]
        return form.net, form.out

    def _gradient(self, s: Statement) -> dict[str, str]:
        """Each parameter's dE/dtheta as code: a weight's is the delta of its unit times the output
        it multiplies, a bias's its unit's delta (the layer's deltas summed, for a shared one)."""
        param = s.target.name[len(naming.LAYER_GRADIENT.format(param="")):]
        entries = self.units[vector(param)]
        op = s.expr
        if isinstance(op, Outer):
            delta, source = (self.units[a] for a in op.args)
            return {w.name: f"{delta[r]}*{source[c]}" for r, row in enumerate(entries) for c, w in enumerate(row)}
        deltas = self.units[op.args[0]]
        if isinstance(op, SharedBiasSum):
            return {entries[0].name: " + ".join(d.name for d in deltas)}
        return {b.name: deltas[r].name for r, b in enumerate(entries)}

    def _penalty(self, s: Statement) -> Line:
        """``E += l2/2*w1**2 + ...``: each matrix's sum of its entries' terms, weight by weight."""
        terms = []
        for entry in sympy.Add.make_args(s.expr):
            matrix = entry.args[0]
            vectors = [v for v in matrix.free_symbols if v in self.units]
            weights = self.units[vectors[0]]
            terms += [matrix.xreplace({vectors[0]: w}) for row in weights for w in row]
        return Line("E += l2/2 * (sum of the squared weights): the L2 penalty (biases not)", f"E += {scalar_code(sympy.Add(*terms))}")

    def _penalty_gradient(self, s: Statement) -> dict[str, str]:
        """Each weight's term ``l2*w`` of the penalty's derivative, as code."""
        vectors = [v for v in s.expr.free_symbols if v in self.units]
        weights = self.units[vectors[0]]
        return {w.name: scalar_code(s.expr.xreplace({vectors[0]: w})) for row in weights for w in row}

    # -- elements ------------------------------------------------------------------------------

    def element(self, v: sympy.Symbol, r: int) -> sympy.Symbol:
        return self.units[v][r]

    def at(self, expr: sympy.Expr, r: int) -> str:
        """Element ``r`` of ``expr`` as float code."""
        if isinstance(expr, Op) and not isinstance(expr, LogSoftmax):
            method: Callable[[sympy.Expr, int], str] = getattr(self, f"_print_{type(expr).__name__}")
            return method(expr, r)
        local = self.program.local_derivative(expr)
        if local is not None:  # a delta's factor written out
            return self.at(local.expr, r)
        return scalar_code(self._element(expr, r))

    def _element(self, expr: sympy.Expr, r: int) -> sympy.Expr:
        """Element ``r`` of an elementwise expression, in the units' symbols; a softmax output's
        logarithm from the softmax's temporaries (log out_k = net_k - net_max - log(out_sum), finite
        where out_k underflows)."""
        logs = {node: self.element(node.args[0], r) - _symbol(SOFTMAX_MAX) - sympy.log(_symbol(SOFTMAX_SUM))
                for node in sympy.preorder_traversal(expr) if isinstance(node, LogSoftmax)}
        held = {node: sympy.Dummy() for node in logs}
        named = in_vectors(expr.xreplace(held), {v: self._entry(v, r) for v in expr.free_symbols if v in self.units})
        return named.xreplace({held[node]: value for node, value in logs.items()})

    def _entry(self, v: sympy.Symbol, r: int) -> sympy.Symbol:
        entries = self.units[v]
        return entries[min(r, len(entries) - 1)]  # a shared bias: its one entry

    def _print_Affine(self, expr: Affine, r: int) -> str:
        weights, sources = self.units[expr.args[0]][r], self.units[expr.args[1]]
        terms = [f"{w}*{x}" for w, x in zip(weights, sources)]
        if len(expr.args) == 3:
            terms.append(self._entry(expr.args[2], r).name)
        return " + ".join(terms)

    def _print_Backprop(self, expr: Backprop, r: int) -> str:
        weights, deltas = self.units[expr.args[0]], self.units[expr.args[1]]
        return " + ".join(f"{delta}*{weights[k][r]}" for k, delta in enumerate(deltas))

    def _print_Chain(self, expr: Chain, r: int) -> str:
        return "*".join(_factor(self.at(factor, r)) for factor in expr.args)

    def _print_SampleLoss(self, expr: SampleLoss, r: int) -> str:
        units = len(self.units[vector(self.program.targets)])
        return scalar_code(sympy.Add(*(self._element(expr.args[0], k) for k in range(units))))


def _symbol(name: str) -> sympy.Symbol:
    return sympy.Symbol(name, real=True)


def _targets(names) -> str:
    """``a, b`` (or ``a,`` for one name) as the left side of an unpacking assignment."""
    return ", ".join(names) + ("," if len(names) == 1 else "")


def _factor(code: str) -> str:
    return code if code.replace("_", "").isalnum() else f"({code})"


def _operand(expr: sympy.Expr) -> str:
    """A factor of a product as float code: sums and negatives in parentheses."""
    code = scalar_code(expr)
    return f"({code})" if expr.is_Add or code.startswith("-") else code


def _chain_names(chain: ParamChain) -> str:
    return " + ".join(" * ".join(f"d{f.of.name}/d{f.wrt.name}" for f in path.factors) for path in chain.paths)


def _chain_code(chain: ParamChain) -> str:
    paths = []
    for path in chain.paths:
        kept = [_operand(f.human) for f in path.factors if f.human != 1]
        paths.append("*".join(kept) if kept else "1.0")
    return " + ".join(paths)
