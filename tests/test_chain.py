"""The scalar form: closed forms equal sympy.diff of the fully expanded loss; scalar and layer
forms agree symbolically and numerically; deep and big networks stay tractable."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

from chainrule.derive import derive
from chainrule.derive import network as network_module
from chainrule.derive.kinds import out_definition
from chainrule.derive.chain import PATH_CAP, expanded_loss
from chainrule.derive.check import random_values
from chainrule.derive.derivation import Derivation, PointValues
from chainrule.derive.numeric import compile_expr
from chainrule.derive.registry import T, Y
from chainrule.derive.spec import spec_from_data
from generator import random_spec, spec_id
from helpers import example
from identity import same_function

SMALL_EXAMPLES = ["mazur", "textbook_121", "custom_activation", "softmax_classifier"]
SHALLOW_SEEDS = [s for s in range(400) if len(random_spec(s)["layers"]) <= 2][:25]


def constrained(d: Derivation, expr: sympy.Expr) -> sympy.Expr:
    """Targets that must sum to 1 (cross-entropy): the last one is 1 minus the others."""
    if d.network.spec.loss.name != "cross_entropy" or d.network.sizes[-1] < 2:
        return expr
    ts = [d.network.target(k) for k in range(d.network.sizes[-1])]
    return expr.xreplace({ts[-1]: 1 - sympy.Add(*ts[:-1])})


def assert_closed_forms_match_diff(d: Derivation) -> None:
    E = expanded_loss(d.network, d.expanded)
    for name, chain in d.chains.items():
        truth = sympy.diff(E, chain.symbol)
        assert same_function(constrained(d, d.closed_form(name)), constrained(d, truth)), name


@pytest.mark.parametrize("name", SMALL_EXAMPLES)
def test_closed_forms_equal_diff_of_expanded_loss(name: str) -> None:
    assert_closed_forms_match_diff(example(name))


@pytest.mark.parametrize("seed", SHALLOW_SEEDS, ids=spec_id)
def test_closed_forms_on_random_shallow_networks(seed: int) -> None:
    d = derive(spec_from_data(random_spec(seed), spec_id(seed)))
    if any(l.activation.name in ("relu", "leaky_relu", "elu") for l in d.network.spec.layers):
        pytest.skip("piecewise: sympy.diff gives Piecewise, checked numerically in test_torch")
    assert_closed_forms_match_diff(d)


@pytest.mark.slow
@pytest.mark.parametrize("param", ["w5", "w1", "w4"])
def test_closed_form_proved_by_cancel(mazur: Derivation, param: str) -> None:
    """A deterministic proof for the worked example (cancel of the difference is 0)."""
    E = expanded_loss(mazur.network, mazur.expanded)
    assert sympy.cancel(mazur.closed_form(param) - sympy.diff(E, mazur.chains[param].symbol)) == 0


def layer_deltas_symbolic(d: Derivation) -> dict[int, list[sympy.Expr]]:
    """The layer form's deltas, instantiated unit by unit in scalar symbols."""
    net, forms = d.network, d.layers
    L = net.depth
    deltas: dict[int, list[sympy.Expr]] = {}
    output = forms[-1].output
    assert output is not None
    outs = [net.out(L, k) for k in range(net.sizes[L])]
    if output.closed is not None:
        deltas[L] = [output.closed.xreplace({Y: outs[k], T: net.target(k)}) for k in range(len(outs))]
    else:
        g = [output.dE_dy.xreplace({Y: outs[k], T: net.target(k)}) for k in range(len(outs))]
        deltas[L] = through_activation(d, L, g)
    for l in range(L - 1, 0, -1):
        g = [sympy.Add(*[net.weight(l + 1, k, u) * deltas[l + 1][k] for k in range(net.sizes[l + 1])]) for u in range(net.sizes[l])]
        deltas[l] = through_activation(d, l, g)
    return deltas


def layer_gradient_symbolic(d: Derivation, name: str) -> sympy.Expr:
    """dE/dθ from the layer form, instantiated in scalar symbols (delta recursion by hand)."""
    net = d.network
    deltas = layer_deltas_symbolic(d)
    ref = net.locate(name)
    delta = deltas[ref.layer]
    if ref.is_weight:
        return delta[ref.row] * net.out(ref.layer - 1, ref.col)
    return sympy.Add(*delta) if len(d.values.b[ref.layer - 1]) == 1 else delta[ref.row]


def through_activation(d: Derivation, l: int, g: list[sympy.Expr]) -> list[sympy.Expr]:
    net, form = d.network, d.layers[l - 1]
    outs = [net.out(l, u) for u in range(net.sizes[l])]
    if form.softmax:
        inner = sympy.Add(*[gj * oj for gj, oj in zip(g, outs)])
        return [o * (gu - inner) for gu, o in zip(g, outs)]
    local = form.f_prime_out if form.f_prime_out is not None else form.f_prime
    names = {Y: None, sympy.Symbol("x", real=True): None}
    return [gu * local.xreplace({Y: outs[u], sympy.Symbol("x", real=True): net.net(l, u)}) for u, gu in enumerate(g)]


@pytest.mark.parametrize("name", SMALL_EXAMPLES + ["deep_tanh_relu"])
def test_scalar_and_layer_forms_agree_symbolically(name: str) -> None:
    d = example(name)
    deltas = layer_deltas_symbolic(d)
    named = {sympy.Symbol(f"delta_{u}", real=True): deltas[l][r] for l in deltas for r, u in enumerate(d.network.units(l))}
    for param, chain in d.chains.items():
        layer = layer_gradient_symbolic(d, param)
        scalar = chain.gradient.xreplace(named)  # chains cut at a layer start at its deltas
        assert same_function(constrained(d, scalar), constrained(d, layer)), param


@pytest.mark.parametrize("name", SMALL_EXAMPLES + ["deep_tanh_relu"])
def test_scalar_and_layer_forms_agree_at_random_points(name: str) -> None:
    d = example(name)
    from chainrule.derive.check import _kink_functions

    for values in random_values(d, 5, _kink_functions(d.network)):
        run = d.numbers.run(values.W, values.b, values.x, values.t)
        env = PointValues(d.network, values, run)
        for param, chain in d.chains.items():
            ref = chain.param
            scalar = sum(np.prod([float(compile_expr(f.human)(env)) for f in p.factors]) for p in chain.paths)
            layer = run.dW[ref.layer - 1][ref.row, ref.col] if ref.is_weight else run.db[ref.layer - 1][ref.row]
            assert np.isclose(scalar, layer, rtol=1e-10, atol=1e-13), (param, scalar, layer)


def test_fused_softmax_factor() -> None:
    """dE/dnet_k = sum_j dE/dout_j dout_j/dnet_k, which is out_k - t_k when the targets sum to 1,
    and equals sympy.diff of the composed loss."""
    d = example("softmax_classifier")
    net = d.network
    factor = d.chains["w2_11"].paths[0].factors[0]
    assert str(factor.human) == "out_o1 - setosa"
    assert "targets sum to 1" in factor.note
    assert same_function(constrained(d, factor.derivative), constrained(d, factor.human))
    L = net.depth
    composed = net.loss_definition().xreplace({net.out(L, j): out_definition(net, L, j) for j in range(net.sizes[L])})
    raw = sympy.diff(composed, net.net(L, 0))
    outs = {sympy.exp(net.net(L, j)): None for j in range(net.sizes[L])}
    assert outs  # the composed derivative is written in nets; compare numerically on the sample
    env = d.env
    value = float(compile_expr(raw)({**{f"net_o{j + 1}": env[f"net_o{j + 1}"] for j in range(3)}, **{t: env[t] for t in net.spec.targets}}))
    assert np.isclose(value, d.factor_value(factor), rtol=1e-12)


def test_every_factor_comes_from_diff_of_its_unit(mazur: Derivation) -> None:
    net = mazur.network
    for chain in mazur.chains.values():
        for path in chain.paths:
            for f in path.factors:
                assert f.derivative != 0
                env = mazur.env
                values = {s.name: env[s.name] for s in f.derivative.free_symbols}
                human = {s.name: env[s.name] for s in f.human.free_symbols}
                assert np.isclose(float(compile_expr(f.derivative)(values)), float(compile_expr(f.human)(human)), rtol=1e-12)
    assert str(mazur.chains["w5"].paths[0].factors[1].derivative) == "exp(-net_o1)/(1 + exp(-net_o1))**2"


def test_deep_wide_network_cuts_paths_at_deltas() -> None:
    data = {
        "name": "wide",
        "inputs": 2,
        "layers": [{"name": n, "units": 5, "activation": "tanh"} for n in "ghk"] + [{"name": "o", "units": 3, "activation": "sigmoid"}],
        "loss": "half_sse",
        "naming": "indexed",
    }
    d = derive(spec_from_data(data, "wide"))
    chain = d.chains["w1_11"]
    assert chain.cut_layer is not None and len(chain.paths) <= PATH_CAP
    assert chain.paths[0].factors[0].human.name.startswith("delta_")
    for name, chain in d.chains.items():
        assert np.isclose(d.chain_gradient(chain), d.gradient(chain.param), rtol=1e-10, atol=1e-14), name


def test_big_network_param_on_demand() -> None:
    d = example("mlp_784_128_10")
    assert not d.small and d.chains == {}
    d1 = derive(d.network.spec, ["w1", "w100353", "b129"])
    for name, chain in d1.chains.items():
        assert np.isclose(d1.chain_gradient(chain), d1.gradient(chain.param), rtol=1e-10, atol=1e-14), name
    assert len(d1.chains["w1"].paths) == 10  # through each of the 10 output deltas
    assert d1.network.locate("w100353").layer == 2


def test_big_network_creates_no_per_weight_symbols(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cost follows layers: deriving 101,770 parameters makes a few hundred symbols, not 10^5."""
    made = []
    original = network_module.real_symbol
    monkeypatch.setattr(network_module, "real_symbol", lambda name: made.append(name) or original(name))
    derive(example("mlp_784_128_10").network.spec)
    assert len(made) < 500, len(made)
