"""YAML 1.2, TOML and JSON read safely: size and depth before parsing, duplicates refused."""

from __future__ import annotations

import time

import pytest

from chainrule.derive.documents import MAX_DEPTH, load_document, nesting_depth
from chainrule.derive.errors import ChainruleError


def load(text: str, fmt: str = "yaml"):
    return load_document(text, "f", fmt)


def test_yaml_is_1_2() -> None:
    data = load("lr: 1e-3\na: no\nb: off\nc: 010\nd: yes\ne: 0o10\nf: true\n")
    assert data == {"lr": 0.001, "a": "no", "b": "off", "c": 10, "d": "yes", "e": 8, "f": True}


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
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1_000, 30_000])
def test_deep_nesting_refused_before_parsing(fmt: str, depth: int) -> None:
    text = {"yaml": "a: " + "[" * depth + "]" * depth, "json": '{"a": ' + "[" * depth + "]" * depth + "}", "toml": "a = " + "[" * depth + "]" * depth}[fmt]
    start = time.perf_counter()
    with pytest.raises(ChainruleError, match="nesting deeper than"):
        load(text, fmt)
    assert time.perf_counter() - start < 2


def test_deep_yaml_block_nesting_refused() -> None:
    text = "".join(" " * i + "a:\n" for i in range(200)) + " " * 200 + "b: 1\n"
    with pytest.raises(ChainruleError, match="nesting deeper than"):
        load(text)
    compact = "- " * 15_000 + "x\n"
    with pytest.raises(ChainruleError, match="nesting deeper than"):
        load(compact)


def test_brackets_in_strings_and_comments_do_not_count() -> None:
    assert nesting_depth('a: "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["  # [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n', "yaml") <= 2
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


def test_size_checked_before_parsing() -> None:
    with pytest.raises(ChainruleError, match="MiB"):
        load("a: " + "x" * (33 * 2**20))


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


def test_yaml_quotes_inside_scalars_and_comments_still_read() -> None:
    text = "description: it's a net # with a comment [[[[\nname: 'o''brien'\nx: \"[[\"\n"
    assert load(text) == {"description": "it's a net", "name": "o'brien", "x": "[["}
