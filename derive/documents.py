"""Text of a spec or claims file (YAML 1.2, TOML or JSON) into plain Python data, safely.

Before any parser runs, the raw text is checked for size and nesting depth (PyYAML's C loader
crashes the process on ~30,000-deep nesting; ``json`` and ``tomllib`` raise RecursionError near
1,000). YAML is read as YAML 1.2 by ruamel.yaml's pure-Python safe loader (``no`` and ``off`` stay
strings, ``1e-3`` is a number), duplicate keys are errors in all three formats, and the loaded
data is walked with a node budget so that aliases cannot expand into a bomb.
"""

from __future__ import annotations

import json
import tomllib
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from .errors import ChainruleError

MAX_BYTES = 32 * 2**20
MAX_DEPTH = 32
MAX_NODES = 4_000_000
FORMATS = {".yaml": "yaml", ".yml": "yaml", ".toml": "toml", ".json": "json"}


def format_of(path: str) -> str | None:
    """``yaml``, ``toml`` or ``json`` by the file name's suffix, or None."""
    lowered = path.lower()
    return next((fmt for suffix, fmt in FORMATS.items() if lowered.endswith(suffix)), None)


def load_document(text: str, source: str, fmt: str) -> Any:
    """Parse ``text`` in format ``fmt`` into dicts, lists, strings and numbers.

    Raises:
        ChainruleError: too large, too deeply nested, malformed, duplicate keys, non-finite JSON
            constants, or too large once aliases are expanded.
    """
    if len(text) > MAX_BYTES:
        raise ChainruleError(source, "", f"expected at most {MAX_BYTES // 2**20} MiB of text, got {len(text):,} characters")
    depth = nesting_depth(text, fmt)
    if depth > MAX_DEPTH:
        raise ChainruleError(source, "", f"nesting deeper than {MAX_DEPTH} levels (found {depth})")
    data = _PARSERS[fmt](text, source)
    _check_expanded_size(data, source)
    return data


def nesting_depth(text: str, fmt: str) -> int:
    """An upper bound on the nesting depth of ``text``, from brackets and (for YAML) indentation.

    Quoted strings and comments are skipped. For YAML, each open indentation level and each
    compact ``- `` or ``? `` indicator at the start of a line counts as one level.
    """
    deepest = depth = 0
    block: list[int] = []
    for line in text.splitlines():
        if fmt == "yaml" and depth == 0:
            deepest = max(deepest, _yaml_block_depth(line, block))
        depth, inside = _bracket_depth(line, depth, fmt)
        deepest = max(deepest, inside + len(block))
    return deepest


def _yaml_block_depth(line: str, block: list[int]) -> int:
    stripped = line.lstrip(" ")
    if not stripped or stripped.startswith("#"):
        return len(block)
    indent = len(line) - len(stripped)
    while block and block[-1] >= indent:
        block.pop()
    block.append(indent)
    compact = 0
    while stripped[:2] in ("- ", "? ") or stripped in ("-", "?"):
        compact += 1
        stripped = stripped[2:].lstrip(" ")
    return len(block) + compact


_SCALAR_STARTS = ("", ":", "-", "?", ",", "[", "{")


def _bracket_depth(line: str, depth: int, fmt: str) -> tuple[int, int]:
    """The bracket depth after ``line`` and the deepest point inside it.

    Quoted strings are skipped, and so are comments. In YAML a quote opens a string only where a
    scalar can start (after ``: - ? , [ {`` or at the start of the line), and ``#`` starts a
    comment only after whitespace, so that ``[x', [[[...]]]]`` cannot hide its brackets.
    """
    deepest = depth
    quote = ""
    escaped = False
    last = ""  # the last character that was not blank
    blank_before = True
    for char in line:
        if quote:
            if escaped:
                escaped = False
            elif char == "\\" and quote == '"':
                escaped = True
            elif char == quote:
                quote = ""
        elif char in "\"'" and (fmt != "yaml" or last in _SCALAR_STARTS):
            quote = char
        elif char == "#" and (fmt == "toml" or (fmt == "yaml" and blank_before)):
            break
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(0, depth - 1)
        blank_before = char in " \t"
        if not blank_before:
            last = char
    return depth, deepest


def _parse_yaml(text: str, source: str) -> Any:
    yaml = YAML(typ="safe", pure=True)
    yaml.allow_duplicate_keys = False
    try:
        return yaml.load(text)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = error.problem or error.context or "malformed YAML"
        raise ChainruleError(source, "", f"malformed YAML: {where}{what}") from None
    except (YAMLError, RecursionError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ChainruleError(source, "", f"malformed YAML: {first}") from None


def _parse_toml(text: str, source: str) -> Any:
    try:
        return tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError, ValueError) as error:
        raise ChainruleError(source, "", f"malformed TOML: {error}") from None


def _parse_json(text: str, source: str) -> Any:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in items:
            if key in seen:
                raise ChainruleError(source, "", f"malformed JSON: duplicate key {key!r}")
            seen[key] = value
        return seen

    def constant(name: str) -> Any:
        raise ChainruleError(source, "", f"malformed JSON: {name} is not a JSON number")

    try:
        return json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except json.JSONDecodeError as error:
        raise ChainruleError(source, "", f"malformed JSON: line {error.lineno}, column {error.colno}: {error.msg}") from None
    except (RecursionError, ValueError) as error:
        raise ChainruleError(source, "", f"malformed JSON: {error}") from None


_PARSERS = {"yaml": _parse_yaml, "toml": _parse_toml, "json": _parse_json}


def _check_expanded_size(data: Any, source: str) -> None:
    """Walk the data as a tree (aliases expanded) and refuse it past :data:`MAX_NODES` nodes."""
    stack = [data]
    count = 0
    while stack:
        node = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise ChainruleError(source, "", f"more than {MAX_NODES:,} values once aliases are expanded (an alias bomb, or recursive aliases)")
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
