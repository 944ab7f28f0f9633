"""Every name chainrule makes, decided here and nowhere else.

Scalar (per-parameter) names follow hand calculations: ``net_h1``, ``out_h1``, ``w5``, ``b1``,
``t1``, ``E``. Layer (vector) names follow the emitted trainer: ``W1``, ``b1`` for the parameters
of layer 1, ``net_h``, ``out_h``, ``delta_h`` for the vectors of a layer named ``h``.
"""

from __future__ import annotations

import keyword
import re
import sys
from typing import Callable

from chainrule.derive import functions

LOSS = "E"
#: The L2 penalty's setting (``loss: {kind: ..., l2: 0.05}``), as E, the chains and claims write it.
L2 = "l2"
#: The penalty l2/2 * (sum of the squared weights) as a value of the layer program.
PENALTY = "penalty"
#: The penalty's gradient for a layer's weights in the layer program (``dpenalty_dW2``).
PENALTY_GRADIENT = "dpenalty_d{param}"
NET = "net_{unit}"
OUT = "out_{unit}"
DELTA_UNIT = "delta_{unit}"
GRADIENT = "dE/d{name}"
GRADIENT_CODE = "dE_d{name}"
UPDATED = "{name}+"
PARTIAL = "d{of}/d{wrt}"

UNIT_DEFAULT = "{layer}{n}"
UNIT_AFTER_DIGIT = "{layer}_{n}"
INPUT_DEFAULT = "x{n}"
TARGET_DEFAULT = "t{n}"

SEQUENTIAL_WEIGHT = "w{n}"
SEQUENTIAL_BIAS = "b{n}"
INDEXED_WEIGHT = "w{layer}_{to}{frm}"
INDEXED_WEIGHT_WIDE = "w{layer}_{to}_{frm}"
INDEXED_BIAS = "b{layer}_{to}"
INDEXED_SHARED_BIAS = "b{layer}"
#: Kernel weights (convolutions), whatever the naming: ``k11, k12, ...`` (row, column; ``k1, k2,
#: ...`` for conv1d) where the network has one convolution with one input and one output channel
#: (``k1_12`` style ``k{row}_{col}`` where a side of the kernel reaches 10); else
#: ``k{layer}_{out}_{in}_{row}_{col}`` (``k{layer}_{out}_{in}_{i}`` for conv1d), ``layer`` the
#: number of its matrices (``W1``), every index from 1.
KERNEL_WEIGHT = "k{place}"
#: An rnn's recurrent weights U, whatever the naming: ``u11, u12, ...`` (to, from; ``u1_12`` style
#: ``u{to}_{from}`` where the layer has 10 units or more) where the network has one rnn layer and
#: sequential naming; else ``u{layer}_{to}{from}`` (``u{layer}_{to}_{from}``), ``layer`` the number
#: of its matrices (``U1``), every index from 1. W's entries keep the weights' scheme (``w1, ...``).
RECURRENT_WEIGHT = "u{to}{frm}"
RECURRENT_WEIGHT_WIDE = "u{to}_{frm}"
RECURRENT_WEIGHT_INDEXED = "u{layer}_{to}{frm}"
RECURRENT_WEIGHT_INDEXED_WIDE = "u{layer}_{to}_{frm}"
#: A unit, input or target at step t of a sequence (from 1): ``h1_t2``, ``net_h1_t2``, ``x1_t2``,
#: ``t1_t2``; an rnn's initial state h_0 is its units at step 0 (``out_h1_t0``, ``h1_t0``).
AT_STEP = "{name}_t{step}"
KERNEL_WEIGHT_INDEXED = "k{layer}_{out}_{inp}_{place}"

LAYER_WEIGHT = "W{layer}"
LAYER_BIAS = "b{layer}"
#: An rnn layer's recurrent weights U (``U1``) and its initial state h_0 (``h0_h``) in the layer program.
LAYER_RECURRENT = "U{layer}"
LAYER_INITIAL = "h0_{name}"
LAYER_NET = "net_{name}"
LAYER_OUT = "out_{name}"
LAYER_DELTA = "delta_{name}"
#: A layer's local derivative dout/dnet as a vector of the layer program (``dout_h_dnet_h``).
LAYER_LOCAL = "dout_{name}_dnet_{name}"
#: The gradient of a layer parameter in the layer program (``dE_dW2``).
LAYER_GRADIENT = "dE_d{param}"
#: A softmax output's temporaries: 1 - out, out * dE/dout, and their product (``q_o``, ``w_o``, ``wq_o``).
SOFTMAX_ONE_MINUS_OUT, SOFTMAX_WEIGHTED, SOFTMAX_WEIGHTED_Q = "q_{name}", "w_{name}", "wq_{name}"
INPUT_VECTOR = "x"
TARGET_VECTOR = "t"
#: The layer form's vector of inputs (targets) is ``x`` (``t``), or where the spec gives that name
#: to an input, target, unit, layer or parameter, the first free of ``x_vec``, ``x_vec2``, ...
VECTOR_ELSE = "{base}_vec{n}"

MAX_NAME_LENGTH = 64

#: Names the formula parser gives a meaning of its own, and names emitted code imports or uses.
FORMULA_FUNCTIONS = tuple(functions.FORMULA_FUNCTIONS)
FORMULA_CONSTANTS = ("pi",)
CODE_NAMES = (
    "np", "numpy", "math", "self", "cls", "params", "grads", "Network", "X", "T",
    # the emitted trainer's helpers and module names, which its straight-line code must see
    "softmax", "log_softmax", "sum", "initial_params", "load_data", "main",
    "argparse", "Path", "Params",
) + tuple(functions.HELPERS)  # the helpers the table's functions bring (sigmoid, erf)
#: Written in update rules (w5+ = w5 - lr*dE/dw5) and the layer form (net_h = W1 @ x + b1).
RULE_NAMES = ("theta", "lr", "weight_decay", "momentum", "alpha", "beta1", "beta2", "eps")
RESERVED = frozenset((LOSS,) + FORMULA_FUNCTIONS + FORMULA_CONSTANTS + CODE_NAMES + RULE_NAMES)
#: Why each reserved name is refused. ``x`` and ``t`` are not reserved: the layer form calls its
#: vectors ``x_vec`` and ``t_vec`` where a spec uses those names, and the emitted code takes its
#: arguments apart in one assignment, so an input named t cannot overwrite the targets.
_RESERVED_WHY = {
    (LOSS,): "E is the loss (of: E in a claim, dE/dw5, E = ... in the derivation), a unit or parameter named E could not be told from it",
    RULE_NAMES: "it is a setting of the optimizer in update rules and claims (w5 - lr*dE/dw5), a unit or parameter of that name could not be told from it",
    FORMULA_FUNCTIONS + FORMULA_CONSTANTS: "it is a function or constant of the formulas",
    CODE_NAMES: "the emitted trainer uses it for its own module, class or arrays",
}
#: Prefixes of names chainrule derives from unit names; a unit may not start with them.
DERIVED_PREFIXES = ("net_", "out_", "delta_", "dE_")


def vector_name(base: str, taken: Callable[[str], bool]) -> str:
    """The layer form's name for the vector of inputs or targets (``base``: x or t): ``base``
    itself unless the spec already uses it (``taken``), else the first free ``x_vec``, ``x_vec2``."""
    if not taken(base):
        return base
    n = 1
    while taken(name := VECTOR_ELSE.format(base=base, n="" if n == 1 else n)):
        n += 1
    return name


def vector_base(name: str) -> str | None:
    """``x`` or ``t`` for a name :func:`vector_name` gives, None for any other name."""
    match = re.fullmatch(r"([xt])(?:_vec(?:[2-9]|[1-9][0-9]+)?)?", name)
    return match.group(1) if match else None


def unit_name(layer: str, n: int) -> str:
    """The name of unit ``n`` (1-based) of a layer named ``layer``: h1, or h1_1 after a digit."""
    pattern = UNIT_AFTER_DIGIT if layer[-1:].isdigit() else UNIT_DEFAULT
    return pattern.format(layer=layer, n=n)


def indexed_weight(layer: int, to: int, frm: int) -> str:
    """``w{layer}_{to}{from}``, with separators when an index has more than one digit."""
    pattern = INDEXED_WEIGHT if max(to, frm) < 10 else INDEXED_WEIGHT_WIDE
    return pattern.format(layer=layer, to=to, frm=frm)


def identifier_problem(name: object) -> str | None:
    """Why ``name`` cannot name a unit, a parameter or a network, or None when it can.

    A name must be an ASCII identifier (Python folds the full-width ``ｎｐ`` into ``np``), not a
    keyword, not a dunder, not a name chainrule or emitted code already uses, and not start with a
    prefix chainrule derives names with.
    """
    if not isinstance(name, str):
        return f"expected a name (a string), got {type(name).__name__}"
    if not name:
        return "expected a name, got an empty string"
    if len(name) > MAX_NAME_LENGTH:
        return f"expected a name of at most {MAX_NAME_LENGTH} characters, got {len(name)}"
    if not (name.isascii() and name.isidentifier()):
        return f"expected an ASCII identifier (letters, digits, _; not starting with a digit), got {name!r}"
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return f"{name!r} is a Python keyword"
    if name.startswith("__"):
        return f"{name!r} starts with '__' (dunder names are reserved)"
    if name in RESERVED:
        return f"{name!r} is reserved: {_RESERVED_WHY[next(k for k in _RESERVED_WHY if name in k)]}"
    for prefix in DERIVED_PREFIXES:
        if name.startswith(prefix):
            return f"{name!r} starts with {prefix!r}, which chainrule uses for derived names"
    return None


def module_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name the network (and so the emitted ``NAME.py``), or None."""
    problem = identifier_problem(name)
    if problem:
        return problem
    if name in sys.stdlib_module_names or name in ("sympy", "jinja2", "chainrule", "torch", "test"):
        return f"{name!r} would shadow the module of that name when the emitted {name}.py is imported"
    return None
