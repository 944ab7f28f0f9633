"""The classic 2-2-2 worked example reproduces its published figures to every printed digit."""

from __future__ import annotations

import pytest

from chainrule.derive.derivation import Derivation

# As printed in the walkthrough (Mazur, "A Step by Step Backpropagation Example").
PUBLISHED = {
    "net_h1": "0.3775",
    "out_h1": "0.593269992",
    "out_h2": "0.596884378",
    "net_o1": "1.105905967",
    "out_o1": "0.75136507",
    "out_o2": "0.772928465",
}
GRADIENTS = {"w5": "0.082167041"}
UPDATED = {
    "w5": "0.35891648",
    "w6": "0.408666186",
    "w7": "0.511301270",
    "w8": "0.561370121",
    "w1": "0.149780716",
    "w2": "0.19956143",
    "w3": "0.24975114",
    "w4": "0.29950229",
}
FACTORS = {("E", "out_o1"): "0.74136507", ("out_o1", "net_o1"): "0.186815602", ("net_o1", "w5"): "0.593269992"}


def agrees(value: float, printed: str) -> bool:
    """``value`` rounds to ``printed`` at the number of decimals printed."""
    decimals = len(printed.split(".")[1])
    return round(value, decimals) == round(float(printed), decimals)


def test_loss(mazur: Derivation) -> None:
    assert agrees(mazur.loss, "0.298371109")


@pytest.mark.parametrize("symbol, printed", PUBLISHED.items())
def test_forward_pass(mazur: Derivation, symbol: str, printed: str) -> None:
    assert agrees(mazur.env[symbol], printed)


@pytest.mark.parametrize("name, printed", GRADIENTS.items())
def test_gradient(mazur: Derivation, name: str, printed: str) -> None:
    chain = mazur.chains[name]
    assert agrees(mazur.chain_gradient(chain), printed)
    assert agrees(mazur.gradient(chain.param), printed)


@pytest.mark.parametrize("name, printed", UPDATED.items())
def test_updated(mazur: Derivation, name: str, printed: str) -> None:
    assert agrees(mazur.updated(mazur.chains[name].param), printed)


def test_w5_chain_factor_by_factor(mazur: Derivation) -> None:
    (path,) = mazur.chains["w5"].paths
    assert [(f.of.name, f.wrt.name) for f in path.factors] == list(FACTORS)
    for factor in path.factors:
        assert agrees(mazur.factor_value(factor), FACTORS[(factor.of.name, factor.wrt.name)])


def test_w1_sums_two_paths(mazur: Derivation) -> None:
    chain = mazur.chains["w1"]
    through = [[f.of.name for f in p.factors] for p in chain.paths]
    assert through == [["E", "out_o1", "net_o1", "out_h1", "net_h1"], ["E", "out_o2", "net_o2", "out_h1", "net_h1"]]
    # dE/dout_h1 = dE_o1/dout_h1 + dE_o2/dout_h1 = 0.055399425 - 0.019049119 (walkthrough)
    assert agrees(mazur.chain_gradient(chain) / (mazur.env["out_h1"] * (1 - mazur.env["out_h1"]) * 0.05), "0.036350306")
