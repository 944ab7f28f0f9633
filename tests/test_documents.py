"""YAML 1.2, TOML and JSON read safely: size and depth before parsing, duplicates refused."""

from __future__ import annotations

import time

import pytest

from chainrule.derive.documents import MAX_DEPTH, load_document, nesting_depth
from chainrule.derive.errors import ChainruleError


def load(text: str, fmt: str = "yaml"):
    return load_document(text, "f", fmt)


def test_yaml_is_1_2() -> None:
    data = load("lr: 1e-3\na: no\nb: off\nc: 010\nd: yes\ne: 0o10\nf: true\ng: 1_000\nh: 0b101\ni: 2001-12-14\nj: ~\nk: 0x1F\nl: -.inf\nm: +12\nn: '3'\no: !!str 4\np: !!float 5\n")
    assert data == {"lr": 0.001, "a": "no", "b": "off", "c": 10, "d": "yes", "e": 8, "f": True, "g": "1_000", "h": "0b101", "i": "2001-12-14", "j": None, "k": 31, "l": float("-inf"), "m": 12, "n": "3", "o": "4", "p": 5.0}


@pytest.mark.parametrize(
    "text, message",
    [
        ("%YAML 1.1\n---\nlr: 1e-3\n", "%YAML 1.1: chainrule reads YAML 1.2"),
        ("a: !!python/object:os.system x\n", "the tag tag:yaml.org,2002:python/object:os.system is not allowed"),
        ("a: !custom 3\n", "the tag !custom is not allowed"),
        ("a: !!int x\n", "'x' is not a valid int"),
        ("? [1, 2]\n: 3\n", "a mapping key must be a plain value"),
        ("a: *nowhere\n", "unknown alias *nowhere"),
        ("a: " + "9" * 5000 + "\n", "an integer of 5,000 digits"),
        ("optimizer: {<<: {kind: sgd}, lr: 0.5, lr: 0.7}\n", "duplicate key 'lr'"),
        ("<<: {seed: 1}\nname: a\nname: b\n", "duplicate key 'name'"),
    ],
)
def test_yaml_refusals(text: str, message: str) -> None:
    with pytest.raises(ChainruleError) as caught:
        load(text)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_yaml_merge_key_is_an_ordinary_key() -> None:
    assert load("a: {<<: {b: 1}, c: 2}\n") == {"a": {"<<": {"b": 1}, "c": 2}}


def test_yaml_brackets_inside_scalars_are_not_nesting() -> None:
    text = "description: |\n  " + "[" * 40 + "\nname: \"{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{\n  {{{{{{{{{{\"\ntitle: x' [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n"
    data = load(text)
    assert data["description"] == "[" * 40 + "\n" and data["title"].startswith("x' [[[")


def test_yaml_quote_inside_a_string_cannot_hide_nesting() -> None:
    text = 'junk: ["x\n ,\'", ' + "[" * 300 + "]" * 300 + "]\n"
    with pytest.raises(ChainruleError, match="nesting deeper than 32"):
        load(text)


@pytest.mark.parametrize("segments", [40, 30_000])
def test_toml_dotted_keys_count_as_nesting(segments: int) -> None:
    start = time.perf_counter()
    with pytest.raises(ChainruleError, match="nesting deeper than"):
        load(".".join(["a"] * segments) + " = 1\n", "toml")
    assert time.perf_counter() - start < 2


def test_toml_multiline_strings_cannot_hide_nesting() -> None:
    text = "a = \'\'\'\nx\'\n\'\'\' \nb = " + "[" * 300 + "]" * 300 + "\n"
    with pytest.raises(ChainruleError, match="nesting deeper than"):
        load(text, "toml")
    assert load("a = \'\'\'\n[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n\'\'\'\nb = 1.5\n", "toml") == {"a": "[" * 40 + "\n", "b": 1.5}


def test_huge_integers_in_json_and_toml() -> None:
    with pytest.raises(ChainruleError, match="an integer of 5,000 digits"):
        load('{"a": ' + "9" * 5000 + "}", "json")
    with pytest.raises(ChainruleError, match="an integer of more than"):
        load("a = " + "9" * 5000 + "\n", "toml")


@pytest.mark.parametrize(
    "text, fmt",
    [
        ("a: 1\na: 2\n", "yaml"),
        ('{"a": 1, "a": 2}', "json"),
        ("a = 1\na = 2\n", "toml"),
        ("a:\n  b: 1\n  b: 2\n", "yaml"),
        ('{"x": {"b": 1, "b": 2}}', "json"),
    ],
)
def test_duplicate_keys(text: str, fmt: str) -> None:
    with pytest.raises(ChainruleError, match="duplicate|[Cc]annot overwrite|already"):
        load(text, fmt)


@pytest.mark.parametrize(
    "text, fmt, message",
    [
        ("a: [1, 2\n", "yaml", "malformed YAML: line"),
        ("a: b: c\n", "yaml", "malformed YAML"),
        ("---\na: 1\n---\nb: 2\n", "yaml", "malformed YAML"),
        ("a = \n", "toml", "malformed TOML"),
        ('{"a": 1,}', "json", "malformed JSON: line 1"),
        ('{"a": NaN}', "json", "NaN is not a JSON number"),
        ('{"a": -Infinity}', "json", "-Infinity is not a JSON number"),
        ('{"a": ' + "9" * 5000 + "}", "json", "malformed JSON"),
    ],
)
def test_malformed(text: str, fmt: str, message: str) -> None:
    with pytest.raises(ChainruleError, match=message) as caught:
        load(text, fmt)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("fmt", ["yaml", "json", "toml"])
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1_000, 1_001, 2_000, 30_000])
def test_deep_nesting_refused_before_parsing(fmt: str, depth: int) -> None:
    # One cause, one message: libyaml 0.2.6 stops flow nesting at 1,000 levels itself, with its
    # own text; the user sees the same line whatever the depth, the format and the libyaml.
    opening = {"yaml": "a: [\n", "json": '{"a": [\n', "toml": "a = [\n"}[fmt]
    closing = {"yaml": "]", "json": "]}", "toml": "]"}[fmt]
    text = opening + "[" * depth + "]" * depth + closing
    start = time.perf_counter()
    with pytest.raises(ChainruleError) as caught:
        load(text, fmt)
    assert str(caught.value) == "f: nesting deeper than 32 levels (at line 2)"
    assert time.perf_counter() - start < 2


def test_deep_yaml_block_nesting_refused() -> None:  # exactly, from the event stream
    text = "".join(" " * i + "a:\n" for i in range(200)) + " " * 200 + "b: 1\n"
    with pytest.raises(ChainruleError, match="nesting deeper than"):
        load(text)
    compact = "- " * 15_000 + "x\n"
    with pytest.raises(ChainruleError, match="nesting deeper than"):
        load(compact)


def test_brackets_in_strings_and_comments_do_not_count() -> None:
    assert nesting_depth('a = "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[" # [[[[[[[[[[[[[[[[[[[[[[\n', "toml") <= 2
    assert nesting_depth('{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\"[[[[[["}', "json") == 1
    assert load('a: "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["\n') == {"a": "[" * 39}


def test_alias_bomb_refused_quickly() -> None:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, 10):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    start = time.perf_counter()
    with pytest.raises(ChainruleError, match="aliases"):
        load("\n".join(lines) + "\n")
    assert time.perf_counter() - start < 5


def test_recursive_alias_refused() -> None:
    with pytest.raises(ChainruleError, match="aliases"):
        load("a: &a [*a]\n")


@pytest.mark.parametrize("fmt, size", [("yaml", 2 * 2**20 + 1), ("toml", 2 * 2**20 + 1), ("json", 16 * 2**20 + 1)])
def test_size_checked_before_parsing(fmt: str, size: int) -> None:
    with pytest.raises(ChainruleError, match="MiB of") as caught:
        load(" " * size, fmt)
    assert ("written in JSON" in str(caught.value)) == (fmt != "json")


@pytest.mark.parametrize(
    "text",
    [
        "a: [x', " + "[" * 40 + "]" * 40 + "]\n",
        "a: [x#, " + "[" * 40 + "]" * 40 + "]\n",
        'a: [x", ' + "[" * 40 + "]" * 40 + "]\n",
    ],
)
def test_yaml_quotes_and_hashes_cannot_hide_brackets(text: str) -> None:
    with pytest.raises(ChainruleError, match="nesting deeper than"):
        load(text)


def test_large_yaml_is_fast() -> None:
    """A 300x300 weight matrix in flow style (about 800 KB) reads in well under a second."""
    rows = ",\n".join("[" + ", ".join(["0.123456"] * 300) + "]" for _ in range(300))
    start = time.perf_counter()
    assert len(load("w: [" + rows + "]\n")["w"]) == 300
    assert time.perf_counter() - start < 2


def test_yaml_quotes_inside_scalars_and_comments_still_read() -> None:
    text = "description: it's a net # with a comment [[[[\nname: 'o''brien'\nx: \"[[\"\n"
    assert load(text) == {"description": "it's a net", "name": "o'brien", "x": "[["}
