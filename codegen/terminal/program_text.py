"""The layer program as plain text: ``net_h = W1 @ x + b1``, ``delta_o = (out_o - t) * out_o*(1 - out_o)``.

One printer method per operation of :mod:`chainrule.derive.program`; the elementwise parts are
written by :class:`~chainrule.derive.formula.FormulaPrinter` (what ``chainrule`` prints it can read
back). ``*`` is elementwise and ``@`` the matrix product, as in NumPy.
"""

from __future__ import annotations

import sympy

from chainrule.derive.formula import FormulaPrinter, format_expr
from chainrule.derive.program import Program, Statement


#: The target vector at step t of a sequence (``t`` is the step there).
SEQUENCE_TARGETS = "target"


class ProgramTextPrinter(FormulaPrinter):
    """Statements of a program as text; a local derivative a delta multiplies is written out
    (``* out_h*(1 - out_h)``), as people write the delta rule."""

    def __init__(self, program: Program, sequence: bool = False) -> None:
        super().__init__()
        self.program = program
        self.sequence = sequence  # vectors with a value per step written at step t

    def factor(self, expr: sympy.Expr) -> str:
        """``expr`` as a factor of a product: sums and negatives in parentheses."""
        local = self.program.local_derivative(expr)
        if local is not None:
            expr = local.written
        text = self._print(expr)
        return f"({text})" if expr.is_Add or text.startswith("-") else text

    def _print_Affine(self, expr) -> str:
        W, x, *bias = expr.args
        return f"{W} @ {self._print(x)}" + "".join(f" + {b}" for b in bias)

    def _print_Softmax(self, expr) -> str:
        return f"softmax({expr.args[0]})"

    def _print_Chain(self, expr) -> str:
        return " * ".join(self.factor(f) for f in expr.args)

    def _print_Backprop(self, expr) -> str:
        W, delta = expr.args
        return f"({W}.T @ {self._print(delta)})"

    def _print_SoftmaxVJP(self, expr) -> str:
        y, g = expr.args
        return f"{y} * (g - sum(g * {y})) with g = {self.factor(g)}"

    def _print_Outer(self, expr) -> str:
        text = f"outer({self._print(expr.args[0])}, {self._print(expr.args[1])})"
        return f"sum over t of {text}" if self.sequence else text

    def _print_BiasSum(self, expr) -> str:
        return f"sum over t of {self._print(expr.args[0])}" if self.sequence else str(expr.args[0])

    def _print_SharedBiasSum(self, expr) -> str:
        return f"sum({expr.args[0]})"

    # feature maps: the window's geometry as PyTorch's arguments (stride, padding per side)

    def _window(self, geometry) -> str:
        C, H, W, kh, kw, sh, sw, ph, pw = (int(v) for v in geometry)
        one = H == 1 and kh == 1 and sh == 1 and ph == 0  # 1-D, or a 2-D window of one row
        kernel, stride, padding = (kw, sw, pw) if one else ((kh, kw), (sh, sw), (ph, pw))
        return f"kernel={_side(kernel)}, stride={_side(stride)}, padding={_side(padding)}"

    def _print_Correlate(self, expr) -> str:
        x, K, g, *bias = expr.args
        return f"correlate({x}, {K}, {self._window(g)})" + "".join(f" + {b}" for b in bias)

    def _print_KernelGradient(self, expr) -> str:
        delta, x, g, _ = expr.args
        return f"correlate({x}, {delta}, {self._window(g)})"

    def _print_ChannelBiasSum(self, expr) -> str:
        return f"sum of {expr.args[0]} over each channel's positions"

    def _print_CorrelateBackprop(self, expr) -> str:
        K, delta, g = expr.args
        return f"full_correlate({delta}, flip({K}), {self._window(g)})"

    def _print_MaxPool(self, expr) -> str:
        return f"maxpool({expr.args[0]}, {self._window(expr.args[1])})"

    def _print_AvgPool(self, expr) -> str:
        return f"avgpool({expr.args[0]}, {self._window(expr.args[1])})"

    def _print_MaxPoolBackprop(self, expr) -> str:
        x, up, g = expr.args
        return f"to_argmax({self._print(up)}, windows of {x}, {self._window(g)})"

    def _print_AvgPoolBackprop(self, expr) -> str:
        up, g = expr.args
        return f"spread({self._print(up)}, {self._window(g)})"

    def _print_Flatten(self, expr) -> str:
        return f"flatten({expr.args[0]})"

    # sequences: a vector at step t is written v[t] (from 1), as people index h_t

    def _print_RecurrentAffine(self, expr) -> str:
        W, x, U, h, *bias = expr.args
        return f"{W} @ {x}[t] + {U} @ {self._print(h)}" + "".join(f" + {b}" for b in bias)

    def _print_Previous(self, expr) -> str:
        return f"{expr.args[0]}[t-1]"

    def _print_Following(self, expr) -> str:
        return f"{expr.args[0]}[t+1]"

    def _print_AtFirstStep(self, expr) -> str:
        return f"{expr.args[0]}[1]"

    def _print_Masked(self, expr) -> str:
        return self._print(expr.args[0])

    def _print_Symbol(self, expr) -> str:
        name = super()._print_Symbol(expr)
        if self.sequence and expr.name == self.program.targets:
            return f"{SEQUENCE_TARGETS}[t]"  # t is the step: the targets are written out
        return f"{name}[t]" if self.sequence and per_step(self.program, expr.name) else name


def per_step(program: Program, name: str) -> bool:
    """Whether the vector ``name`` has a value at each step of a sequence (data and the layers'
    values; not the parameters, nor h_0)."""
    info = program.vectors.get(name)
    return bool(program.steps) and info is not None and info.role.value in ("data", "activation") and name not in dict(program.constants)


def _side(value) -> str:
    """``2`` where both sides are equal (PyTorch's int form), else ``(2, 3)``."""
    if isinstance(value, tuple):
        return str(value[0]) if value[0] == value[1] else f"({value[0]}, {value[1]})"
    return str(value)


def statement_text(program: Program, statement: Statement) -> str:
    """``target = expression`` as people write it, with what it relies on after it; a sequence's
    statement at step t, with its loop (``for t = 1, ..., T``) and what it reads at the edges."""
    indexed = bool(program.steps) and statement.stage.value != "loss"  # a sequence's statements: written at step t
    written = ProgramTextPrinter(program, indexed).doprint(statement.written)
    per_step_target = indexed and per_step(program, statement.target.name) and "gradient" not in statement.rule
    target = f"{statement.target}[t]" if per_step_target else str(statement.target)
    text = f"{target} = {written}" + _loop_text(program, statement)
    return text + (f"    (derived: {statement.note})" if statement.note else "")


def _loop_text(program: Program, statement: Statement) -> str:
    """Where a sequence's statement runs: every step at once, or its loop through time."""
    if not program.steps or statement.stage.value == "loss":
        return ""
    T = program.steps
    edges = []
    for node in sympy.preorder_traversal(statement.expr):
        if type(node).__name__ == "Previous":
            edges.append(f"{node.args[0]}[0] = {node.args[1]}")
        elif type(node).__name__ == "Following":
            edges.append(f"{node.args[0]}[{T + 1}] = 0")
        elif type(node).__name__ == "Masked":
            edges.append("0 at a step whose targets are null")
    edge = "; ".join(dict.fromkeys(edges))
    if statement.rule == "initial state gradient":
        return "    (h_0 reaches the loss through step 1 alone; it is not trained)"
    if statement.loop == "backward in time":
        where = f"for t = {T} down to 1"
    elif statement.loop:
        where = f"for t = 1, ..., {T}"
    elif statement.rule in ("weight gradient", "recurrent weight gradient", "bias gradient"):
        where = f"t = 1, ..., {T}"
    else:
        where = f"at every t = 1, ..., {T}"
    return f"    ({where}{'; ' + edge if edge else ''})"


def expression_text(program: Program, statement: Statement) -> str:
    """The right side of ``statement`` alone."""
    if not any(True for _ in statement.operations):
        return format_expr(statement.written)
    return ProgramTextPrinter(program).doprint(statement.written)
