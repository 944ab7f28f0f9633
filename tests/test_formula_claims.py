"""The formula parser as claims use it (``dA/dB`` as one derivative): fuzzed, never evaluating,
and reading back every formula the derivation prints."""

from __future__ import annotations

import builtins
import contextlib

import pytest
import sympy
from hypothesis import given, settings
from sympy.parsing import sympy_parser
from hypothesis import strategies as st

from chainrule.codegen.terminal.describe import describe_param, expanded_form, forward_lines
from chainrule.derive.errors import FormulaError
from chainrule.derive.formula import Partial, Product, parse_formula
from chainrule.derive.network import real_symbol
from chainrule.derive.kinds import net_definition
from chainrule.derive.hand.verify import Verifier
from helpers import example

SMALL = ["mazur", "textbook_121", "xor", "custom_activation", "softmax_classifier", pytest.param("deep_tanh_relu", marks=pytest.mark.slow)]


def verifier(name: str) -> Verifier:
    return Verifier(example(name))


MAZUR = verifier("mazur")


def read(text: str) -> sympy.Expr:
    return MAZUR.read(text, "claims.yaml", "claims[0].formula")


def test_partials_only_on_request() -> None:
    assert isinstance(parse_formula("dE/dw5", partials=True), Partial)
    assert isinstance(parse_formula("dE/dw5"), Product)
    assert parse_formula("∂E/∂w5", partials=True) == Partial("E", "w5", 0)
    assert isinstance(parse_formula("d/dw5", partials=True), Product)  # "d" alone names nothing


def test_partial_in_formula_is_its_true_value() -> None:
    g = MAZUR.chain_of("w5").gradient
    assert read("w5 - lr*dE/dw5") == real_symbol("w5") - g / 2
    assert read("dout_h1/dw5") == 0  # out_h1 does not depend on w5


# --------------------------------------------------------------------------------------------
# Fuzzing: nothing but FormulaError, one line, and no evaluation of strings

ALPHABET = "dEwoht1250.+-*/^(),_ ∂·−×[]{}'\":;=<>!@#$%&|\\`~λ\n\t"
TOKENS = ["dE", "/", "dw5", "dout_o1", "dnet_o1", "o1", "h1", "(", ")", "**", "*", "-", "+", "exp(", "9", "99", "max(o1,", ",", "lr", "w5", "∂", "__import__", ".", "lambda", ":"]


class _Evaluated(BaseException):
    """Raised by a refused evaluator; a BaseException, so no ``except Exception`` hides it."""


@contextlib.contextmanager
def refusing_evaluation():
    """Any call of eval, exec, compile or sympy's string readers inside the block fails."""

    def refuse(*args, **kwargs):
        raise _Evaluated(repr(args)[:80])

    saved = [(builtins, n, getattr(builtins, n)) for n in ("eval", "exec", "compile")]
    saved += [(sympy, "sympify", sympy.sympify), (sympy_parser, "parse_expr", sympy_parser.parse_expr)]
    for owner, name, _ in saved:
        setattr(owner, name, refuse)
    try:
        yield
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


def _try(text: str, chain: bool) -> None:
    message = None
    with refusing_evaluation():
        try:
            MAZUR.read(text, "c.yaml", "claims[0].formula", chain=chain)
        except FormulaError as error:
            message = str(error)
    assert message is None or "\n" not in message


@settings(max_examples=800, deadline=None)
@given(st.text(alphabet=ALPHABET, max_size=60), st.booleans())
def test_fuzz_characters(text: str, chain: bool) -> None:
    _try(text, chain)


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=40), st.booleans())
def test_fuzz_tokens(tokens: list[str], chain: bool) -> None:
    _try("".join(tokens), chain)


@pytest.mark.parametrize(
    "text, message",
    [
        ("__import__('os')", "unexpected character"),
        ("o1.__class__.__bases__", "unexpected character '.'"),
        ("lambda: o1", "unexpected character ':'"),
        ("o1**o1**99999", "exponent larger than 100"),
        ("(" * 10_000 + "o1" + ")" * 10_000, "at most 20000 characters"),
        ("(" * 5_000 + "o1" + ")" * 5_000, "nesting deeper than 64"),
        ("o1 + " * 300_000, "at most 20000 characters"),
        ("dE/dfoo", "in dE/dfoo: unknown name 'foo' (the spec has: E, i1, i2, t1, t2, units h1, h2, o1, o2"),
        ("getattr(o1, o1)", "unknown function 'getattr'"),
    ],
)
def test_hostile(text: str, message: str) -> None:
    with pytest.raises(FormulaError) as caught, refusing_evaluation():
        read(text)
    assert message in str(caught.value) and "\n" not in str(caught.value)


# --------------------------------------------------------------------------------------------
# Round trip: every formula the derivation prints reads back as the same expression


def printed_formulas(name: str) -> list[tuple[str, sympy.Expr, str]]:
    """(text, the expression it was printed from, what for) of every formula ``derive`` prints."""
    d = example(name)
    v = verifier(name)
    found = []
    for line in forward_lines(d):
        symbol = real_symbol(line.name)
        node = v.graph.unit_nodes.get(line.name)
        if line.name == "E":
            found.append((line.formula, d.network.loss_definition(), "E"))
        elif node is not None and node[0] == "net":
            found.append((line.formula, net_definition(d.network, node[1], node[2]), line.name))
        del symbol
    for pname, chain in d.chains.items():
        text = describe_param(d, pname)
        found.append((text.closed_form, chain.gradient, f"dE/d{pname}"))
        for path, described in zip(chain.paths, text.paths):
            for factor, shown in zip(path.factors, described.factors):
                found.append((shown.form, factor.human, shown.name))
        expanded = expanded_form(d, pname)
        if expanded is not None:
            found.append((expanded, d.closed_form(pname), f"dE/d{pname} expanded"))
        if not text.frozen:
            found.append((text.update.formula, None, f"{pname}+"))
    return found


@pytest.mark.parametrize("name", SMALL)
def test_reads_back_what_derive_prints(name: str) -> None:
    v = verifier(name)
    formulas = printed_formulas(name)
    assert len(formulas) > 10
    for text, expr, what in formulas:
        back = v.read(text, "derive", what)
        if expr is None:  # an update formula, w5 - lr*dE/dw5: dE/dw5 is read as its true form
            target = v.truth(__import__("chainrule.derive.hand.claims", fromlist=["parse_target"]).parse_target(what, v.graph, "", ""))
            expr = target.expr
        assert back == expr or v.agree_at_points(v.canon(back), v.canon(expr)), (what, text)


@pytest.mark.parametrize("formula", ["sqrt(-1)*sqrt(-1)*-(o1 - t1)*o1*(1-o1)*h1", "-(-1)**o1*(o1 - t1)*o1*(1-o1)*h1"])
def test_a_claim_formula_that_is_not_real_is_refused(formula: str) -> None:
    # sqrt(-1)*sqrt(-1) = -1 was judged right; the spec's formulas refuse what is not real, and so do claims
    from chainrule.derive.formula import FormulaError, read_formula

    with pytest.raises(FormulaError, match="not real"):
        read_formula(formula, lambda name: sympy.Symbol(name, real=True))
