"""Explain a stored validation error in the terms of the event: which field, what was
expected, what was there.

AJV 6 reports a field as a JavaScript accessor (``.meta.stream``, ``['user-agent']``,
``[3]``); faces want the path as keys so they can put the error next to the field it
concerns, and a plain "expected / actual" pair. Used by the TUI's event detail and by any
face that prints errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mpsandbox import jsonio

PathKey = str | int

_TOKEN = re.compile(
    r"""\.(?P<ident>[A-Za-z_$][\w$]*)|\[(?P<index>\d+)\]|\['(?P<quoted>(?:[^'\\]|\\.)*)'\]"""
)
_MISSING = object()


def parse_data_path(data_path: str) -> list[PathKey] | None:
    """``.a['b-c'][0]`` -> ``["a", "b-c", 0]``; None when it is not an AJV accessor."""
    keys: list[PathKey] = []
    pos = 0
    while pos < len(data_path):
        m = _TOKEN.match(data_path, pos)
        if m is None:
            return None
        if m.group("ident") is not None:
            keys.append(m.group("ident"))
        elif m.group("index") is not None:
            keys.append(int(m.group("index")))
        else:
            keys.append(re.sub(r"\\(.)", r"\1", m.group("quoted")))
        pos = m.end()
    return keys


def value_at(doc: Any, keys: list[PathKey]) -> Any:
    """The value at ``keys`` in ``doc``, or ``MISSING``."""
    cur = doc
    for key in keys:
        if (isinstance(key, int) and isinstance(cur, list) and 0 <= key < len(cur)) or (
            isinstance(key, str) and isinstance(cur, dict) and key in cur
        ):
            cur = cur[key]
        else:
            return _MISSING
    return cur


def is_missing(value: Any) -> bool:
    return value is _MISSING


@dataclass(frozen=True, slots=True)
class ErrorDetail:
    """One error, placed: ``field`` is the key path it concerns (for ``required``, the
    missing property itself), ``expected`` and ``actual`` are short human texts."""

    field: tuple[PathKey, ...]
    keyword: str
    message: str
    expected: str
    actual: str
    rule: str


def _short(value: Any, limit: int = 80) -> str:
    if is_missing(value):
        return "(absent)"
    text = jsonio.dumps_str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _json_type(value: Any) -> str:
    if is_missing(value):
        return "absent"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _expected(keyword: str, params: dict[str, Any]) -> str:
    p = params
    match keyword:
        case "type":
            return f"type {p.get('type')}"
        case "required":
            return f"property {p.get('missingProperty')!r} present"
        case "enum":
            return "one of " + _short(p.get("allowedValues"), 120)
        case "const":
            return "exactly " + _short(p.get("allowedValue"))
        case "pattern":
            return f"matches /{p.get('pattern')}/"
        case "format":
            return f"format {p.get('format')}"
        case "maxLength" | "maxItems" | "maxProperties" | "maximum":
            return f"at most {p.get('limit')}"
        case "minLength" | "minItems" | "minProperties" | "minimum":
            return f"at least {p.get('limit')}"
        case "exclusiveMaximum":
            return f"less than {p.get('limit')}"
        case "exclusiveMinimum":
            return f"more than {p.get('limit')}"
        case "additionalProperties":
            return f"no property {p.get('additionalProperty')!r}"
        case "multipleOf":
            return f"a multiple of {p.get('multipleOf')}"
        case "uniqueItems":
            return "unique items"
    return keyword


def _actual(keyword: str, value: Any, params: dict[str, Any]) -> str:
    if keyword == "type":
        return f"{_json_type(value)} {_short(value)}"
    if keyword in ("maxLength", "minLength") and isinstance(value, str):
        return f"{len(value)} characters"
    if keyword in ("maxItems", "minItems") and isinstance(value, list):
        return f"{len(value)} items"
    if keyword in ("maxProperties", "minProperties") and isinstance(value, dict):
        return f"{len(value)} properties"
    if keyword == "required":
        return "absent"
    if keyword == "additionalProperties":
        extra = value.get(params.get("additionalProperty")) if isinstance(value, dict) else None
        return f"present: {_short(extra)}"
    return _short(value)


def detail(event: Any, error: dict[str, Any]) -> ErrorDetail:
    """Place one AJV error in ``event`` (the event as validated, fills applied)."""
    keyword = str(error.get("keyword", ""))
    params = error.get("params") or {}
    keys = parse_data_path(str(error.get("dataPath", ""))) or []
    value = value_at(event, keys)
    field: tuple[PathKey, ...] = tuple(keys)
    if keyword == "required" and params.get("missingProperty") is not None:
        prop = str(params["missingProperty"])
        field = (*keys, prop.lstrip(".")) if not prop.startswith("[") else field
    elif keyword == "additionalProperties" and params.get("additionalProperty") is not None:
        field = (*keys, str(params["additionalProperty"]))
    return ErrorDetail(
        field=field,
        keyword=keyword,
        message=str(error.get("message", "")),
        expected=_expected(keyword, params),
        actual=_actual(keyword, value, params),
        rule=str(error.get("schemaPath", "")),
    )
