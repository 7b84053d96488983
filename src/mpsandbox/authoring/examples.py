"""Generate the example event jsonschema-tools writes into a schema that has none.

A materialized schema always carries `examples`: EventGate's test endpoint and the repository
tests validate them, and they show a producer one complete event. When `current.yaml` gives
none, jsonschema-tools generates one. Its output is deterministic, and the published files
show the rules (every "random" choice is made as if the random number were 0.15):

* every property is present; an object with only `additionalProperties` gets one key,
  `dolorb`; an array gets one item;
* a string is `dolor`; `date-time` is `2021-01-01T00:00:00.0Z`; `uri` and `uri-reference`
  are `http://example.org`; a `pattern` is satisfied by taking, at each choice, the element
  at 15% of the way through the choices (`^[0-9a-z]{20}$` gives twenty `5`s);
* an `enum` gives the element at 15% of its length (the first, for short lists);
* an integer is `minimum + floor(0.15 * (maximum - minimum))` (bounds are always present once
  materialized), a number between bounds closer than that is `minimum + 0.15 * range`;
  a boolean is `false`;
* a `$schema` property holds the schema's own `$id`.

Formats the published files never show (`date`, `email`, ...) get a plain valid value, and a
string is cut or padded to its `maxLength`/`minLength`.
"""

from __future__ import annotations

import math
import re
from typing import Any

from mpsandbox.authoring.bounds import MAX_SAFE_INTEGER, MIN_SAFE_INTEGER

__all__ = ["generate_example", "pattern_sample"]

RANDOM = 0.15
WORD = "dolor"
MAP_KEY = "dolorb"
FORMATS = {
    "date-time": "2021-01-01T00:00:00.0Z",
    "date": "2021-01-01",
    "time": "00:00:00.0Z",
    "uri": "http://example.org",
    "uri-reference": "http://example.org",
    "url": "http://example.org",
    "email": "dolor@example.org",
    "hostname": "example.org",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "uuid": "33333333-3333-3333-3333-333333333333",
}
_MAX_DEPTH = 32


def _pick(count: int) -> int:
    return min(count - 1, math.floor(RANDOM * count))


def generate_example(
    schema: dict, schema_id: str | None = None, *, required_only: bool = False
) -> Any:
    """One example event for a materialized schema; `$schema` is set to `schema_id`.

    `required_only` leaves out every property no `required` list names (a minimal event).
    """
    example = _value(schema, 0, required_only)
    if isinstance(example, dict) and schema_id and "$schema" in (schema.get("properties") or {}):
        example["$schema"] = schema_id
    return example


def _type_of(node: dict) -> str | None:
    declared = node.get("type")
    if isinstance(declared, list):
        declared = next((t for t in declared if t != "null"), declared[0] if declared else None)
    if isinstance(declared, str):
        return declared
    if "properties" in node or "additionalProperties" in node:
        return "object"
    if "items" in node:
        return "array"
    return None


def _value(node: Any, depth: int, required_only: bool = False) -> Any:
    if not isinstance(node, dict) or depth > _MAX_DEPTH:
        return WORD
    if "const" in node:
        return node["const"]
    if isinstance(node.get("enum"), list) and node["enum"]:
        return node["enum"][_pick(len(node["enum"]))]
    kind = _type_of(node)
    if kind == "object":
        return _object(node, depth, required_only)
    if kind == "array":
        return _array(node, depth, required_only)
    if kind == "integer":
        low, high = _bounds(node)
        return low + math.floor(RANDOM * (high - low))
    if kind == "number":
        low, high = _bounds(node)
        if float(low).is_integer() and float(high).is_integer() and high - low > 1:
            return int(low) + math.floor(RANDOM * (high - low))
        return low + RANDOM * (high - low)
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return _string(node)


def _bounds(node: dict) -> tuple[Any, Any]:
    low = node.get("minimum", node.get("exclusiveMinimum", MIN_SAFE_INTEGER))
    high = node.get("maximum", node.get("exclusiveMaximum", MAX_SAFE_INTEGER))
    return low, high


def _object(node: dict, depth: int, required_only: bool) -> dict:
    properties = node.get("properties")
    if isinstance(properties, dict) and properties:
        wanted = set(node.get("required") or []) if required_only else set(properties)
        return {
            name: _value(sub, depth + 1, required_only)
            for name, sub in properties.items()
            if name in wanted
        }
    extra = node.get("additionalProperties")
    if isinstance(extra, dict) and not required_only:
        return {MAP_KEY: _value(extra, depth + 1)}
    return {}


def _array(node: dict, depth: int, required_only: bool) -> list:
    items = node.get("items")
    if isinstance(items, list):
        return [_value(sub, depth + 1, required_only) for sub in items]
    least = node.get("minItems") if isinstance(node.get("minItems"), int) else None
    count = least if least is not None and required_only else max(1, least or 1)
    return [_value(items, depth + 1, required_only) for _ in range(count)]


def _string(node: dict) -> str:
    fmt = node.get("format")
    if isinstance(fmt, str) and fmt in FORMATS:
        return FORMATS[fmt]
    pattern = node.get("pattern")
    if isinstance(pattern, str):
        sample = pattern_sample(pattern)
        if sample is not None:
            return sample
    text = WORD
    low = node.get("minLength")
    high = node.get("maxLength")
    if isinstance(low, int) and len(text) < low:
        text = (text * (low // len(text) + 1))[:low]
    if isinstance(high, int) and len(text) > high:
        text = text[:high]
    return text


# --- patterns -------------------------------------------------------------------------------

_CLASS_ESCAPES = {
    "d": [(48, 57)],
    "w": [(48, 57), (65, 90), (95, 95), (97, 122)],
    "s": [(9, 13), (32, 32)],
}
_PRINTABLE = [(32, 126)]
_UNBOUNDED_REPEAT = 100


class _Unsupported(Exception):
    pass


def pattern_sample(pattern: str) -> str | None:
    """A string matching `pattern`, made by taking the 15% choice everywhere; None when the
    pattern uses something this small generator does not know (lookarounds, backrefs)."""
    try:
        parser = _PatternSampler(pattern)
        text = parser.alternation()
        if parser.pos != len(pattern):
            raise _Unsupported
    except (_Unsupported, IndexError):
        return None
    try:
        return text if re.search(pattern, text) else None
    except re.error:
        return None


def _ranges_pick(ranges: list[tuple[int, int]]) -> str:
    merged: list[tuple[int, int]] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    total = sum(high - low + 1 for low, high in merged)
    index = _pick(total)
    for low, high in merged:
        size = high - low + 1
        if index < size:
            return chr(low + index)
        index -= size
    raise _Unsupported


def _complement(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out = []
    for low, high in _PRINTABLE:
        start = low
        for r_low, r_high in sorted(ranges):
            if r_high < start or r_low > high:
                continue
            if r_low > start:
                out.append((start, r_low - 1))
            start = max(start, r_high + 1)
        if start <= high:
            out.append((start, high))
    return out


class _PatternSampler:
    """A recursive-descent walk over a JavaScript regex that builds one matching string."""

    def __init__(self, pattern: str):
        self.p = pattern
        self.pos = 0

    def peek(self) -> str:
        return self.p[self.pos] if self.pos < len(self.p) else ""

    def take(self) -> str:
        ch = self.p[self.pos]
        self.pos += 1
        return ch

    def alternation(self) -> str:
        branches = [self.sequence()]
        while self.peek() == "|":
            self.take()
            branches.append(self.sequence())
        return branches[_pick(len(branches))]

    def sequence(self) -> str:
        out = []
        while self.peek() not in ("", "|", ")"):
            atom = self.atom()
            out.append(self.repeat(atom))
        return "".join(out)

    def atom(self) -> Any:
        ch = self.take()
        if ch in "^$":
            return ""
        if ch == "(":
            if self.p.startswith("?:", self.pos):
                self.pos += 2
            elif self.peek() == "?":
                raise _Unsupported
            start = self.pos
            self.alternation()
            end = self.pos
            if self.take() != ")":
                raise _Unsupported
            inner = self.p[start:end]
            return lambda: _PatternSampler(inner).alternation()
        if ch == "[":
            return self.char_class()
        if ch == ".":
            return _ranges_pick(_PRINTABLE)
        if ch == "\\":
            return self.escape(in_class=False)
        if ch in "*+?{":
            raise _Unsupported
        return ch

    def escape(self, *, in_class: bool) -> Any:
        ch = self.take()
        if ch in _CLASS_ESCAPES:
            return _CLASS_ESCAPES[ch] if in_class else _ranges_pick(_CLASS_ESCAPES[ch])
        if ch in "DWS":
            comp = _complement(_CLASS_ESCAPES[ch.lower()])
            return comp if in_class else _ranges_pick(comp)
        if ch.isdigit() and ch != "0":
            raise _Unsupported  # a backreference
        simple = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v", "0": "\0"}
        if ch in simple:
            ch = simple[ch]
        elif ch == "u":
            ch = chr(int(self.p[self.pos : self.pos + 4], 16))
            self.pos += 4
        elif ch == "x":
            ch = chr(int(self.p[self.pos : self.pos + 2], 16))
            self.pos += 2
        elif ch == "b" and not in_class:
            return ""
        return [(ord(ch), ord(ch))] if in_class else ch

    def class_member(self) -> tuple[list[tuple[int, int]] | None, int]:
        """One member of a `[...]` class: a set of ranges (`\\d`), or a single code point."""
        ch = self.take()
        if ch != "\\":
            return None, ord(ch)
        got = self.escape(in_class=True)
        if len(got) == 1 and got[0][0] == got[0][1]:
            return None, got[0][0]
        return got, 0

    def char_class(self) -> str:
        negate = self.peek() == "^"
        if negate:
            self.take()
        ranges: list[tuple[int, int]] = []
        first = True
        while first or self.peek() != "]":
            first = False
            several, low = self.class_member()
            if several is not None:
                ranges.extend(several)
                continue
            if self.peek() == "-" and self.p[self.pos + 1 : self.pos + 2] not in ("]", ""):
                self.take()
                several, high = self.class_member()
                if several is not None:
                    raise _Unsupported
                ranges.append((low, high))
            else:
                ranges.append((low, low))
        self.take()
        return _ranges_pick(_complement(ranges) if negate else ranges)

    def repeat(self, atom: Any) -> str:
        ch = self.peek()
        low, high = 1, 1
        if ch == "*":
            low, high = 0, _UNBOUNDED_REPEAT
        elif ch == "+":
            low, high = 1, 1 + _UNBOUNDED_REPEAT
        elif ch == "?":
            low, high = 0, 1
        elif ch == "{":
            match = re.match(r"\{(\d+)(,(\d*))?\}", self.p[self.pos :])
            if match is None:
                return self.render(atom)
            low = int(match.group(1))
            high = low if not match.group(2) else int(match.group(3) or low + _UNBOUNDED_REPEAT)
            self.pos += match.end() - 1
        else:
            return self.render(atom)
        self.take()
        if self.peek() == "?":
            self.take()
        count = low + _pick(high - low + 1)
        return "".join(self.render(atom) for _ in range(count))

    @staticmethod
    def render(atom: Any) -> str:
        return atom() if callable(atom) else atom
