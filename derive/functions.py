"""Functions that stable forms compute and that formulas do not spell: each evaluated by
:mod:`chainrule.derive.numeric` and printed by the trainer's printers under its own name."""

from __future__ import annotations

import sympy


class sigmoid(sympy.Function):  # noqa: N801 - printed under this name
    """σ(u) = 1 / (1 + exp(-u)), computed by the emitted module without overflow."""

    nargs = 1


class softplus(sympy.Function):  # noqa: N801
    """log(1 + exp(u)), computed as ``logaddexp(0, u)``."""

    nargs = 1
