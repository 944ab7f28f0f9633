"""Text of a spec or claims file (YAML 1.2, TOML or JSON) into plain Python data, safely.

- **YAML** is read from libyaml's event stream (PyYAML's C parser, which keeps its own stack and
  never recurses), composed here by a loop with an explicit stack: nesting is counted exactly and
  refused past :data:`MAX_DEPTH` the moment it is reached, aliases are counted at their expanded
  size against :data:`MAX_NODES` (no alias bomb) and may not refer to themselves, duplicate keys
  are errors (``<<`` is an ordinary key, so a merge cannot hide one), and plain scalars are
  resolved by the YAML 1.2 core schema (``no``, ``off``, ``1_000``, ``2001-12-14`` stay strings;
  ``1e-3`` is a number). A ``%YAML`` directive other than 1.2 is refused.
- **JSON** and **TOML** are parsed by the standard library after their raw text has been checked
  for nesting depth (``json`` and ``tomllib`` recurse; ``tomllib`` also builds one table per
  dotted-key segment), with duplicate keys refused (TOML refuses them itself) and JSON's ``NaN``
  and ``Infinity`` refused.

Every error is one :class:`~chainrule.derive.errors.ChainruleError` line.
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from typing import Any, Callable

import yaml

from chainrule.derive.errors import ChainruleError

try:  # libyaml's parser, as PyYAML's wheels ship it
    from yaml._yaml import CParser as _EventParser
except ImportError:  # pragma: no cover - a PyYAML built without libyaml: slower, same events
    _EventParser = yaml.SafeLoader

MAX_BYTES = 16 * 2**20  # JSON, read by the C parser of the standard library
MAX_TEXT_BYTES = {"json": MAX_BYTES, "yaml": 2 * 2**20, "toml": 2 * 2**20}  # Python-speed readers
MAX_DEPTH = 32
MAX_NODES = 2_000_000
MAX_INT_DIGITS = 4_000
FORMATS = {".yaml": "yaml", ".yml": "yaml", ".toml": "toml", ".json": "json"}


def format_of(path: str) -> str | None:
    """``yaml``, ``toml`` or ``json`` by the file name's suffix, or None."""
    lowered = path.lower()
    return next((fmt for suffix, fmt in FORMATS.items() if lowered.endswith(suffix)), None)


def load_document(text: str, source: str, fmt: str, parse_float: Callable[[str], Any] = float) -> Any:
    """Parse ``text`` in format ``fmt`` into dicts, lists, strings, numbers, booleans and None.

    ``parse_float`` turns the text of each finite non-integer number into its value (a claims
    file keeps the digits as written: ``0.0820`` is not ``0.082``).

    Raises:
        ChainruleError: too large, too deeply nested, malformed, duplicate keys, non-finite JSON
            constants, or too many values once aliases are expanded.
    """
    limit = MAX_TEXT_BYTES[fmt]
    if len(text) > limit:
        hint = "" if fmt == "json" else " (a larger spec, such as one with big weight matrices, can be written in JSON, up to 16 MiB)"
        raise ChainruleError(source, "", f"expected at most {limit // 2**20} MiB of {fmt.upper()}, got {len(text):,} characters{hint}")
    if fmt == "yaml":
        return _YamlComposer(text, source, parse_float).compose()
    scanner = _TomlScanner() if fmt == "toml" else _JsonScanner()
    if scanner.run(text) > MAX_DEPTH:
        raise too_deep(source, scanner.too_deep_line)
    data = (_parse_json if fmt == "json" else _parse_toml)(text, source, parse_float)
    _check_expanded_size(data, source)
    return data


def too_deep(source: str, line: int) -> ChainruleError:
    """The one message for nesting past :data:`MAX_DEPTH`, whatever the format and the parser."""
    return ChainruleError(source, "", f"nesting deeper than {MAX_DEPTH} levels (at line {line})")


# ---------------------------------------------------------------------------------------------
# YAML: libyaml events, composed by a loop

_CORE_TAG = "tag:yaml.org,2002:"
_NULL = re.compile(r"~|null|Null|NULL|")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"[-+]?[0-9]+")
_OCT = re.compile(r"0o[0-7]+")
_HEX = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_INF = re.compile(r"[-+]?\.(inf|Inf|INF)")
_NAN = re.compile(r"\.(nan|NaN|NAN)")


class _Frame:
    """An open mapping or sequence: its value, its expanded size so far, a key awaiting its value."""

    __slots__ = ("value", "size", "key", "key_mark", "anchor")

    def __init__(self, value: Any, anchor: str | None) -> None:
        self.value, self.size, self.key, self.key_mark, self.anchor = value, 1, _Frame, None, anchor


class _YamlComposer:
    def __init__(self, text: str, source: str, parse_float: Callable[[str], Any] = float, parser: Any = _EventParser) -> None:
        self.text = text
        self.parser = parser(text)
        self.source = source
        self.parse_float = parse_float
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.open_anchors: set[str] = set()

    def fail(self, message: str, mark: Any = None) -> ChainruleError:
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        return ChainruleError(self.source, "", f"malformed YAML: {where}{message}")

    def events(self):
        try:
            while True:
                event = self.parser.get_event()
                if event is None or isinstance(event, yaml.StreamEndEvent):
                    return
                yield event
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark or error.context_mark
            if "nesting depth" in str(error.problem) and mark is not None:
                raise self.too_deep_before(mark) from None
            raise self.fail(str(error.problem or error.context or "not YAML"), mark) from None
        except yaml.YAMLError as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise self.fail(first) from None

    def too_deep_before(self, mark: Any) -> ChainruleError:
        """libyaml (0.2.6 and newer) stops flow nesting past its own limit while scanning ahead,
        before our count of 32 is reached; the text up to where it stopped is composed again by
        PyYAML's pure-Python parser, which scans lazily, so the message names the line where
        nesting passed 32, exactly as for shallower text."""
        try:
            _YamlComposer(self.text[: mark.index], self.source, self.parse_float, yaml.SafeLoader).compose()
        except ChainruleError as error:
            if "nesting deeper than" in str(error):
                return error
        return too_deep(self.source, mark.line + 1)

    def compose(self) -> Any:
        stack: list[_Frame] = []
        result: list[Any] = []
        documents = 0
        for event in self.events():
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise self.fail("expected one document, found a second", event.start_mark)
                if event.version not in (None, (1, 2)):
                    version = ".".join(map(str, event.version))
                    raise self.fail(f"%YAML {version}: chainrule reads YAML 1.2 (remove the directive)", event.start_mark)
            elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                self.check_tag(event, "map" if isinstance(event, yaml.MappingStartEvent) else "seq")
                if len(stack) >= MAX_DEPTH:
                    raise too_deep(self.source, event.start_mark.line + 1)
                if event.anchor:
                    self.open_anchors.add(event.anchor)
                stack.append(_Frame({} if isinstance(event, yaml.MappingStartEvent) else [], event.anchor))
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                frame = stack.pop()
                if isinstance(frame.value, dict) and frame.key is not _Frame:
                    raise self.fail("a key without a value", event.start_mark)
                if frame.anchor:
                    self.open_anchors.discard(frame.anchor)
                    self.anchors[frame.anchor] = (frame.value, frame.size)
                self.add(stack, result, frame.value, frame.size, event.start_mark)
            elif isinstance(event, yaml.ScalarEvent):
                value = self.scalar(event)
                if event.anchor:
                    self.anchors[event.anchor] = (value, 1)
                self.add(stack, result, value, 1, event.start_mark)
            elif isinstance(event, yaml.AliasEvent):
                if event.anchor in self.open_anchors:
                    raise self.fail(f"the alias *{event.anchor} refers to the node it is in (recursive aliases are not allowed)", event.start_mark)
                if event.anchor not in self.anchors:
                    raise self.fail(f"unknown alias *{event.anchor}", event.start_mark)
                value, size = self.anchors[event.anchor]
                self.add(stack, result, value, size, event.start_mark)
        return result[0] if result else None

    def add(self, stack: list[_Frame], result: list[Any], value: Any, size: int, mark: Any) -> None:
        if not stack:
            result.append(value)
            return
        frame = stack[-1]
        frame.size += size
        if frame.size > MAX_NODES:
            raise ChainruleError(self.source, "", f"more than {MAX_NODES:,} values once aliases are expanded (an alias bomb?)")
        if isinstance(frame.value, list):
            frame.value.append(value)
        elif frame.key is _Frame:
            if isinstance(value, (dict, list)):
                raise self.fail("a mapping key must be a plain value, not a mapping or a list", mark)
            if value in frame.value:
                raise self.fail(f"duplicate key {value!r}", mark)
            frame.key, frame.key_mark = value, mark
        else:
            frame.value[frame.key] = value
            frame.key = _Frame

    def check_tag(self, event: Any, kind: str) -> None:
        if event.tag not in (None, "!", _CORE_TAG + kind):
            raise self.fail(f"the tag {event.tag} is not allowed (only the YAML 1.2 core tags)", event.start_mark)

    def scalar(self, event: Any) -> Any:
        tag, text = event.tag, event.value
        if tag is None and event.implicit[0]:
            return self.resolve_plain(text, event.start_mark)
        if tag in (None, "!", _CORE_TAG + "str"):
            return text
        resolvers: dict[str, Callable[[str], Any]] = {
            _CORE_TAG + "int": lambda v: self.integer(v, event.start_mark) if _INT.fullmatch(v) else None,
            _CORE_TAG + "float": lambda v: self.parse_float(v) if _FLOAT.fullmatch(v) else None,
            _CORE_TAG + "bool": _BOOL.get,
            _CORE_TAG + "null": lambda v: None,
        }
        if tag not in resolvers:
            raise self.fail(f"the tag {tag} is not allowed (only the YAML 1.2 core tags)", event.start_mark)
        value = resolvers[tag](text)
        if value is None and tag != _CORE_TAG + "null":
            raise self.fail(f"{text!r} is not a valid {tag[len(_CORE_TAG):]}", event.start_mark)
        return value

    def resolve_plain(self, text: str, mark: Any) -> Any:
        """The YAML 1.2 core schema: null, booleans, integers (decimal, 0o, 0x), floats, strings."""
        if _NULL.fullmatch(text):
            return None
        if text in _BOOL:
            return _BOOL[text]
        if _INT.fullmatch(text):
            return self.integer(text, mark)
        if _OCT.fullmatch(text):
            return int(text[2:], 8) if len(text) <= MAX_INT_DIGITS else self.integer(text, mark)
        if _HEX.fullmatch(text):
            return int(text[2:], 16) if len(text) <= MAX_INT_DIGITS else self.integer(text, mark)
        if _FLOAT.fullmatch(text):
            return self.parse_float(text)
        if _INF.fullmatch(text):
            return float("-inf") if text.startswith("-") else float("inf")
        if _NAN.fullmatch(text):
            return float("nan")
        return text

    def integer(self, text: str, mark: Any) -> int:
        if len(text) > MAX_INT_DIGITS:
            raise self.fail(f"an integer of {len(text):,} digits (at most {MAX_INT_DIGITS:,})", mark)
        return int(text)


# ---------------------------------------------------------------------------------------------
# JSON and TOML: depth from the raw text, then the standard library


def nesting_depth(text: str, fmt: str) -> int:
    """An upper bound on the nesting depth of JSON or TOML text.

    Counts brackets outside strings and comments; for TOML also the segments of dotted keys
    (``a.b.c = 1`` nests three tables) and strings that span lines (``'''``, ``\"\"\"``).
    """
    scanner = _TomlScanner() if fmt == "toml" else _JsonScanner()
    return scanner.run(text)


class _DepthScanner:
    """Remembers the line on which the depth first passed :data:`MAX_DEPTH`."""

    too_deep_line = 0

    def deeper(self, depth: int, deepest: int, text: str, i: int) -> int:
        if depth > MAX_DEPTH and not self.too_deep_line:
            self.too_deep_line = text.count("\n", 0, i) + 1
        return max(deepest, depth)


class _JsonScanner(_DepthScanner):
    def run(self, text: str) -> int:
        depth = deepest = 0
        inside = escaped = False
        for i, char in enumerate(text):
            if inside:
                if escaped:
                    escaped = False
                elif char == "\\":
                    escaped = True
                elif char == '"':
                    inside = False
            elif char == '"':
                inside = True
            elif char in "[{":
                depth += 1
                deepest = self.deeper(depth, deepest, text, i)
            elif char in "]}":
                depth = max(0, depth - 1)
        return deepest


class _TomlScanner(_DepthScanner):
    def run(self, text: str) -> int:
        depth = deepest = 0
        quote = ""  # the open string's delimiter: ' " ''' or """
        escaped = False
        key_dots = 0
        on_key_side = True
        i = 0
        while i < len(text):
            char = text[i]
            if quote:
                if escaped:
                    escaped = False
                elif char == "\\" and quote[0] == '"':
                    escaped = True
                elif text.startswith(quote, i):
                    i += len(quote) - 1
                    quote = ""
                elif char == "\n" and len(quote) == 1:
                    quote = ""  # an unterminated one-line string: tomllib will say so
            elif text.startswith("'''", i) or text.startswith('"""', i):
                quote = text[i : i + 3]
                i += 2
            elif char in "'\"":
                quote = char
            elif char == "#":
                while i < len(text) and text[i] != "\n":
                    i += 1
                continue
            elif char == "\n":
                on_key_side, key_dots = depth == 0, 0
            elif char == "=" and depth == 0:
                on_key_side = False
            elif char == "." and (on_key_side or depth > 0 and text[i - 1 : i] not in "0123456789"):
                key_dots += 1
                deepest = self.deeper(depth + key_dots + 1, deepest, text, i)
            elif char in "[{":
                depth += 1
                deepest = self.deeper(depth + key_dots, deepest, text, i)
            elif char in "]}":
                depth = max(0, depth - 1)
            i += 1
        return deepest


def _parse_toml(text: str, source: str, parse_float: Callable[[str], Any] = float) -> Any:
    try:
        return tomllib.loads(text, parse_float=parse_float)
    except tomllib.TOMLDecodeError as error:
        raise ChainruleError(source, "", f"malformed TOML: {error}") from None
    except ChainruleError:  # a ValueError too, raised by parse_float: already one line
        raise
    except (RecursionError, ValueError) as error:
        raise ChainruleError(source, "", f"malformed TOML: {_python_message(error)}") from None


def _parse_json(text: str, source: str, parse_float: Callable[[str], Any] = float) -> Any:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in items:
            if key in seen:
                raise ChainruleError(source, "", f"malformed JSON: duplicate key {key!r}")
            seen[key] = value
        return seen

    def constant(name: str) -> Any:
        raise ChainruleError(source, "", f"malformed JSON: {name} is not a JSON number")

    def integer(text: str) -> int:
        if len(text) > MAX_INT_DIGITS:
            raise ChainruleError(source, "", f"malformed JSON: an integer of {len(text):,} digits (at most {MAX_INT_DIGITS:,})")
        return int(text)

    try:
        return json.loads(text, object_pairs_hook=pairs, parse_constant=constant, parse_int=integer, parse_float=parse_float)
    except json.JSONDecodeError as error:
        raise ChainruleError(source, "", f"malformed JSON: line {error.lineno}, column {error.colno}: {error.msg}") from None
    except ChainruleError:  # a ValueError too, raised by the hooks above: already one line
        raise
    except (RecursionError, ValueError) as error:
        raise ChainruleError(source, "", f"malformed JSON: {_python_message(error)}") from None


def _python_message(error: Exception) -> str:
    if isinstance(error, RecursionError):
        return f"nested too deeply (more than {sys.getrecursionlimit()} levels)"
    text = str(error).split(";")[0]
    if "digits" in text and "integer" in text:
        return f"an integer of more than {sys.get_int_max_str_digits():,} digits"
    return text


def _check_expanded_size(data: Any, source: str) -> None:
    """Refuse data of more than :data:`MAX_NODES` values (JSON and TOML have no aliases)."""
    stack = [data]
    count = 0
    while stack:
        node = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise ChainruleError(source, "", f"more than {MAX_NODES:,} values")
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
