"""An independent PyTorch model of a spec, for comparing gradients with autograd.

Registry activations and losses use torch's own functions (not chainrule's definitions); formulas
are translated from their sympy trees. Everything is float64.
"""

from __future__ import annotations

from typing import Callable

import sympy
import torch
import torch.nn.functional as F

from chainrule.derive.network import Network, Values
from chainrule.derive.registry import T, X, Y

torch.set_default_dtype(torch.float64)

_UNARY: dict[type, Callable] = {
    sympy.exp: torch.exp,
    sympy.log: torch.log,
    sympy.tanh: torch.tanh,
    sympy.sin: torch.sin,
    sympy.cos: torch.cos,
    sympy.Abs: torch.abs,
    sympy.sign: torch.sign,
    sympy.erf: torch.erf,
}


def to_torch(expr: sympy.Expr, env: dict[str, torch.Tensor]) -> torch.Tensor:
    """Evaluate a sympy expression with torch operations (so autograd can differentiate it)."""
    if expr.is_Symbol:
        return env[expr.name]
    if expr.is_Number or isinstance(expr, sympy.NumberSymbol):
        return torch.tensor(float(expr))
    if isinstance(expr, sympy.Add):
        return sum((to_torch(a, env) for a in expr.args[1:]), to_torch(expr.args[0], env))
    if isinstance(expr, sympy.Mul):
        result = to_torch(expr.args[0], env)
        for a in expr.args[1:]:
            result = result * to_torch(a, env)
        return result
    if isinstance(expr, sympy.Pow):
        return torch.pow(to_torch(expr.args[0], env), to_torch(expr.args[1], env))
    if isinstance(expr, sympy.Heaviside):
        return (to_torch(expr.args[0], env) > 0).double()
    if isinstance(expr, (sympy.Max, sympy.Min)):
        combine = torch.maximum if isinstance(expr, sympy.Max) else torch.minimum
        result = to_torch(expr.args[0], env)
        for a in expr.args[1:]:
            result = combine(result, to_torch(a, env))
        return result
    return _UNARY[type(expr)](to_torch(expr.args[0], env))


def activation(network: Network, l: int) -> Callable[[torch.Tensor], torch.Tensor]:
    spec = network.spec.layers[l - 1].activation
    params = dict(spec.params)
    table: dict[str, Callable] = {
        "identity": lambda z: z,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "relu": torch.relu,
        "leaky_relu": lambda z: F.leaky_relu(z, params.get("alpha", 0.01)),
        "elu": lambda z: F.elu(z, params.get("alpha", 1.0)),
        "softplus": F.softplus,
        "gelu": lambda z: F.gelu(z, approximate="tanh"),
        "swish": F.silu,
        "softmax": lambda z: torch.softmax(z, dim=-1),
    }
    if spec.expression is not None:
        return lambda z: to_torch(spec.expression, {X.name: z})
    return table[spec.name]


def loss(network: Network, y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The per-sample loss averaged over the batch (rows)."""
    name = network.spec.loss.name
    per_sample: dict[str, Callable] = {
        "half_sse": lambda: 0.5 * ((t - y) ** 2).sum(-1),
        "sse": lambda: ((t - y) ** 2).sum(-1),
        "mse": lambda: F.mse_loss(y, t, reduction="none").mean(-1),
        "bce": lambda: F.binary_cross_entropy(y, t, reduction="none").mean(-1),
        "cross_entropy": lambda: -(torch.xlogy(t, y)).sum(-1),
    }
    if network.spec.loss.expression is not None:
        return to_torch(network.spec.loss.expression, {Y.name: y, T.name: t}).sum(-1).mean()
    return per_sample[name]().mean()


def torch_gradients(network: Network, values: Values, X_=None, T_=None):
    """(loss, [dW per layer], [db per layer or None]) by autograd; a layer without weights
    (``kind: activation``) has dW None."""
    W = [None if w is None else torch.tensor(w, requires_grad=True) for w in values.W]
    b = [None if v is None else torch.tensor(v, requires_grad=True) for v in values.b]
    out = forward(network, W, b, torch.atleast_2d(torch.tensor(values.x if X_ is None else X_)))
    value = loss(network, out, torch.atleast_2d(torch.tensor(values.t if T_ is None else T_)))
    value.backward()
    return float(value.detach()), [None if w is None else w.grad.numpy() for w in W], [None if v is None else v.grad.numpy() for v in b]


def forward(network: Network, W, b, out: torch.Tensor) -> torch.Tensor:
    """The outputs for inputs ``out`` [batch, inputs]: per layer, the weighted sums (none for a
    layer without weights, whose activation takes the outputs of the layer before) and the
    activation, by torch's own functions."""
    for l in range(1, network.depth + 1):
        if W[l - 1] is not None:
            out = out @ W[l - 1].T + (b[l - 1] if b[l - 1] is not None else 0)
        out = activation(network, l)(out)
    return out
