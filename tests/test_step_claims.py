"""Claims about the network after several optimizer steps (``step: N``), judged against the
derivation's own steps, with the mistakes of a training loop written by hand."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule.codegen.cli import main
from chainrule.codegen.steps import follow_steps
from chainrule.derive import derive
from chainrule.derive.errors import ChainruleError
from chainrule.derive.hand.claims import parse_claims
from chainrule.derive.hand.verify import Verifier
from chainrule.derive.trajectory import EARLY_UPDATE, follow
from helpers import ROOT, example_spec

TRAINED = ROOT / "examples" / "mazur_trained.yaml"
CLAIMS = ROOT / "examples" / "claims" / "mazur_trained_figures.yaml"


def test_the_authors_figures_are_judged_and_explained():
    """The worked example's author printed E = 0.291027924 after the first round: what updating
    the output weights before sending the deltas back through them gives (the right figure is
    0.291027774); and 0.0000351085 'after 10,000 rounds': the loss of the 10,000th forward pass,
    after 9,999 updates (after 10,000 it is 3.5101878e-05, as PyTorch float64 has it)."""
    v = Verifier(derive(example_spec("mazur_trained")))
    claims = parse_claims(CLAIMS.read_text(), str(CLAIMS), "yaml", v.network, v.graph)
    verdicts = v.verify(claims)
    assert [x.correct for x in verdicts] == [True, False, False, True]
    assert verdicts[1].findings[0].mistake == EARLY_UPDATE and verdicts[1].expected == pytest.approx(0.291027774, abs=5e-10)
    assert verdicts[2].findings[0].mistake == "other_step" and "after 9,999 steps, not 10,000" in verdicts[2].findings[0].words
    assert verdicts[2].expected == pytest.approx(3.5101878e-05, rel=1e-7)


def test_the_derivations_steps_are_the_trainers():
    """verify's steps (the derivation's numbers) and derive --steps (the emitted trainer's) agree."""
    d = derive(example_spec("mazur_trained"))
    ours = follow(d, [0, 1, 2, 50])
    theirs = follow_steps(d, 50)
    for k, state in ours.items():
        flat = np.concatenate([a.ravel() for l in range(len(state.W)) for a in (state.W[l], state.b[l]) if a is not None])
        np.testing.assert_allclose(flat, theirs.theta[k], rtol=1e-13)
        assert state.run.loss == pytest.approx(theirs.losses[k], rel=1e-13)


@pytest.mark.slow  # 10,000 steps twice; docs/claims.md's session runs the same command in the fast suite
def test_the_command_line(capsys):
    assert main(["verify", str(TRAINED), str(CLAIMS)]) == 1
    out = capsys.readouterr().out
    assert "✗ 2. E after 1 step (value): 0.291027924" in out and "✓ 4. w5 after 1 step (value): 0.35891648" in out


@pytest.mark.parametrize("claim, field, message", [
    ("{of: E, step: -1, value: 0.3}", "claims[0].step", "expected a number of optimizer steps, an integer from 0 to 100,000"),
    ("{of: E, step: 1.5, value: 0.3}", "claims[0].step", "expected a number of optimizer steps"),
    ("{of: E, step: 1, formula: '(t1 - o1)**2/2'}", "claims[0]", "a claim with step: is a value after that many steps"),
    ("{of: w5+, step: 1, value: 0.3}", "claims[0].of", "after step: claim E, a unit, a parameter or its gradient, not w5+"),
    ("{of: w5, value: 0.3}", "claims[0].of", "'w5' is a parameter: claim its gradient (dE/dw5) or its update (w5+)"),
])
def test_bad_step_claims(claim, field, message):
    v = Verifier(derive(example_spec("mazur_trained")))
    with pytest.raises(ChainruleError) as error:
        parse_claims(f"claims:\n  - {claim}\n", "c.yaml", "yaml", v.network, v.graph)
    assert str(error.value).startswith(f"c.yaml: {field}: {message}")
