"""The layer program as plain text: ``net_h = W1 @ x + b1``, ``delta_o = (out_o - t) * out_o*(1 - out_o)``.

One printer method per operation of :mod:`chainrule.derive.program`; the elementwise parts are
written by :class:`~chainrule.derive.formula.FormulaPrinter` (what ``chainrule`` prints it can read
back). ``*`` is elementwise and ``@`` the matrix product, as in NumPy.
"""

from __future__ import annotations

import sympy

from chainrule.derive.formula import FormulaPrinter, format_expr
from chainrule.derive.program import Program, Statement


class ProgramTextPrinter(FormulaPrinter):
    """Statements of a program as text; a local derivative a delta multiplies is written out
    (``* out_h*(1 - out_h)``), as people write the delta rule."""

    def __init__(self, program: Program) -> None:
        super().__init__()
        self.program = program

    def factor(self, expr: sympy.Expr) -> str:
        """``expr`` as a factor of a product: sums and negatives in parentheses."""
        local = self.program.local_derivative(expr)
        if local is not None:
            expr = local.written
        text = self._print(expr)
        return f"({text})" if expr.is_Add or text.startswith("-") else text

    def _print_Affine(self, expr) -> str:
        W, x, *bias = expr.args
        return f"{W} @ {x}" + "".join(f" + {b}" for b in bias)

    def _print_Softmax(self, expr) -> str:
        return f"softmax({expr.args[0]})"

    def _print_Chain(self, expr) -> str:
        return " * ".join(self.factor(f) for f in expr.args)

    def _print_Backprop(self, expr) -> str:
        W, delta = expr.args
        return f"({W}.T @ {delta})"

    def _print_SoftmaxVJP(self, expr) -> str:
        y, g = expr.args
        return f"{y} * (g - sum(g * {y})) with g = {self.factor(g)}"

    def _print_Outer(self, expr) -> str:
        return f"outer({expr.args[0]}, {expr.args[1]})"

    def _print_BiasSum(self, expr) -> str:
        return str(expr.args[0])

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


def _side(value) -> str:
    """``2`` where both sides are equal (PyTorch's int form), else ``(2, 3)``."""
    if isinstance(value, tuple):
        return str(value[0]) if value[0] == value[1] else f"({value[0]}, {value[1]})"
    return str(value)


def statement_text(program: Program, statement: Statement) -> str:
    """``target = expression`` as people write it, with what it relies on after it."""
    text = f"{statement.target} = {ProgramTextPrinter(program).doprint(statement.written)}"
    return text + (f"    (derived: {statement.note})" if statement.note else "")


def expression_text(program: Program, statement: Statement) -> str:
    """The right side of ``statement`` alone."""
    if not any(True for _ in statement.operations):
        return format_expr(statement.written)
    return ProgramTextPrinter(program).doprint(statement.written)
