"""What a new user reaches for first: ``chainrule init NAME`` (a commented starter spec) and the
lists ``chainrule --help`` ends with (every activation, loss, optimizer and layer kind, one
example each).

Every list here is read from the registries (:data:`~chainrule.derive.registry.ACTIVATIONS`,
:data:`~chainrule.derive.registry.LOSSES`, :data:`~chainrule.derive.optimizers.OPTIMIZERS`,
:data:`~chainrule.derive.kinds.KINDS`), so a name added there shows here without an edit.
"""

from __future__ import annotations

from pathlib import Path

from chainrule.derive import naming
from chainrule.derive.errors import ChainruleError
from chainrule.derive.formula import format_expr
from chainrule.derive.kinds import KINDS
from chainrule.derive.windows import SPATIAL_KINDS
from chainrule.derive.spec import ACTIVATION_KIND
from chainrule.derive.optimizers import OPTIMIZERS
from chainrule.derive.registry import ACTIVATIONS, LOSSES, T, Y

from chainrule.codegen.files import write_atomic

#: The optimizer the starter spec trains with, and its rate (a sample of one learns quickly).
STARTER_OPTIMIZER = "sgd"
STARTER_LR = 0.5


def _value(value: float) -> str:
    """A number as YAML reads it back as one: ``1.0e-08`` (YAML 1.1 takes ``1e-08`` for text)."""
    text = f"{value:g}"
    mantissa, e, exponent = text.partition("e")
    return f"{mantissa}.0e{exponent}" if e and "." not in mantissa else text


def activation_example(name: str) -> str:
    """``activation: NAME``, or with its parameters at their defaults: ``{name: leaky_relu, alpha: 0.01}``."""
    params = ACTIVATIONS[name].params
    if not params:
        return f"activation: {name}"
    return "activation: {" + ", ".join([f"name: {name}", *(f"{k}: {_value(v)}" for k, v in params.items())]) + "}"


def optimizer_example(name: str) -> str:
    """``optimizer: {kind: NAME, SETTING: DEFAULT, ...}``, every setting at its default."""
    settings = ", ".join(f"{k}: {_value(h.default)}" for k, h in OPTIMIZERS[name].hyper.items())
    return f"optimizer: {{kind: {name}, {settings}}}"


def loss_formula(name: str) -> str:
    """A loss's term per output ``y`` with target ``t``, and how the terms are combined."""
    loss = LOSSES[name]
    return f"{format_expr(loss.per_output(Y, T))} per output, {'averaged' if loss.mean else 'summed'}"


def kind_example(kind: str) -> str:
    """A layer of the kind: the activation that makes it (softmax, for the softmax kind; an
    elementwise one for the dense kind); a layer without weights says ``kind: activation``."""
    whole = [a.name for a in ACTIVATIONS.values() if a.whole_layer]
    if kind in SPATIAL_KINDS:
        return _SPATIAL_EXAMPLES.get(kind[:-2], "{{name: f, kind: flatten}}").format(kind=kind)
    if kind == "rnn":  # over sequences: the spec's steps: T
        return f"{{name: h, kind: {kind}, units: 4, activation: tanh}}"
    if kind == ACTIVATION_KIND:
        return f"{{name: s, kind: {kind}, activation: {whole[0]}}}"
    activation = kind if kind in whole else next(a.name for a in ACTIVATIONS.values() if not a.whole_layer and a.name != "identity")
    return f"{{name: {'o' if kind in whole else 'h'}, units: 4, activation: {activation}}}"


_SPATIAL_EXAMPLES = {
    "conv": "{{name: c, kind: {kind}, channels: 4, kernel: 3, activation: relu}}",
    "maxpool": "{{name: p, kind: {kind}, kernel: 2}}",
    "avgpool": "{{name: p, kind: {kind}, kernel: 2}}",
}


def _summary(module) -> str:
    """A kind module's first docstring sentence, without its reST markup."""
    first = (module.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
    text = first.split(": ``")[0].replace("``", "").rstrip(".")
    return text[:1].lower() + text[1:]


def help_lists() -> str:
    """The end of ``chainrule --help``: every activation, loss, optimizer and layer kind, one
    example each (the spec format's field they go in, as a spec writes it)."""
    width = max(len(n) for n in (*ACTIVATIONS, *LOSSES, *OPTIMIZERS, *KINDS)) + 2
    lines = ["activations (a layer's activation; or {formula: ...} in x):"]
    lines += [f"  {name:<{width}}{activation_example(name)}" for name in ACTIVATIONS]
    lines += ["", "losses (loss; y an output, t its target):"]
    examples = {name: f"loss: {name}" for name in LOSSES}
    column = max(map(len, examples.values())) + 2
    lines += [f"  {name:<{width}}{examples[name]:<{column}}# {loss_formula(name)}" for name in LOSSES]
    lines += [f"  {'(any) + l2':<{width}}{L2_EXAMPLE}  # E + l2/2 * sum of squared weights"]
    lines += ["", "optimizers (optimizer; every setting at its default):"]
    lines += [f"  {name:<{width}}{optimizer_example(name)}" for name in OPTIMIZERS]
    lines += ["", "layer kinds (a layer's kind: field, else its activation, chooses its kind):"]
    column = max(len(kind_example(name)) for name in KINDS) + 2
    lines += [f"  {name:<{width}}{kind_example(name):<{column}}# {_summary(module)}" for name, module in KINDS.items()]
    lines += ["", "Start a spec with: chainrule init NAME (writes NAME.yaml)."]
    return "\n".join(lines)


#: A loss with the L2 penalty on the weights, as ``chainrule --help`` shows it.
L2_EXAMPLE = "loss: {kind: half_sse, l2: 0.01}"


def _names(names) -> str:
    return ", ".join(names)


def starter_spec(name: str) -> str:
    """The text of a starter spec named ``name``: a 2-3-1 network on one sample, every field
    commented with what it may be (the lists from the registries).

    Raises:
        ChainruleError: ``name`` cannot name a network (as the spec's ``name`` field).
    """
    problem = naming.identifier_problem(name)
    if problem:
        raise ChainruleError(name, "NAME", problem)
    lr = _value(STARTER_LR)
    return f"""\
# {name}: a starter network spec, written by `chainrule init {name}`. Edit it, then:
#   chainrule derive {name}.yaml          forward pass, every chain-rule factor, one update
#   chainrule check {name}.yaml           the gradients against central differences
#   chainrule emit {name}.yaml -o out     a NumPy trainer: python out/{name}.py
#   chainrule report {name}.yaml --html   the derivation as a hand-out: {name}.html
# `chainrule --help` lists every activation, loss and optimizer with an example.
name: {name}
description: A starter network, 2 inputs, 3 tanh units, 1 sigmoid output.
inputs: [x1, x2]        # the inputs' names (or how many: inputs: 2)
layers:                 # the output layer last
  - name: h             # its units are h1, h2, h3
    units: 3
    # one of {_names(ACTIVATIONS)}
    activation: tanh
    bias: per_unit      # per_unit, shared or none
    # weights: [[...], [...], [...]]   one row per unit; left out, they are seeded
  - name: o
    units: 1
    activation: sigmoid
targets: [t]            # one name per output
# one of {_names(LOSSES)}
loss: half_sse
sample:                 # the worked sample every number is computed on
  x: [0.5, -0.25]
  t: [1.0]
seed: 0                 # seeds the weights left out
# one of {_names(OPTIMIZERS)}
optimizer: {{kind: {STARTER_OPTIMIZER}, lr: {lr}}}
"""


def write_starter(name: str, out_dir: str = ".") -> Path:
    """``chainrule init NAME``: write ``out_dir/NAME.yaml``, the starter spec; returns its path.

    Raises:
        ChainruleError: ``name`` cannot name a network; the file exists (it is never
            overwritten); ``out_dir`` is not a directory or cannot be written.
    """
    text = starter_spec(name)
    directory = Path(out_dir)
    if directory.exists() and not directory.is_dir():
        raise ChainruleError(out_dir, "-o", "expected a directory")
    target = directory / f"{name}.yaml"
    if target.exists():
        raise ChainruleError(str(target), "", "already exists; not overwritten (choose another NAME or remove it)")
    try:
        write_atomic(target, text)
    except OSError as error:
        raise ChainruleError(str(directory), "-o", f"cannot write: {error.strerror or error}") from None
    return target
