"""JSON in and out, fast where it can be and exact where it must be.

orjson is ~10x faster than the standard library, but refuses what JavaScript's JSON.parse
accepts (lone surrogate escapes) and what JSON.stringify emits for them, and stops at 1,024
levels of nesting. The fallbacks keep the intake's behaviour that of EventGate, not orjson's;
like JSON.parse (and orjson), they refuse the NaN, Infinity and -Infinity literals the
standard library would accept.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

MAX_DEPTH = 1000


class TooDeepError(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(data: bytes | str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc) or "recursion" in str(exc).lower():
            raise TooDeepError(f"JSON nested deeper than {MAX_DEPTH} levels") from None
        text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
        try:
            return json.loads(text, parse_constant=_refuse_constant)
        except RecursionError:
            raise TooDeepError(f"JSON nested deeper than {MAX_DEPTH} levels") from None


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(value, ensure_ascii=True, separators=(",", ":")).encode()


def dumps_str(value: Any) -> str:
    return dumps(value).decode()


def pretty(value: Any) -> str:
    """Indented JSON for people (copying an event, printing a fixture)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(value, ensure_ascii=True, indent=2)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape_surrogate(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def escape_lone_surrogates(text: str) -> str:
    """``text`` with every lone UTF-16 surrogate written as its ``\\uXXXX`` escape.

    JSON.parse accepts ``"click\\ud83d"`` (JavaScript cuts strings mid-pair) and EventGate
    stores it, but SQLite text must be UTF-8, where a lone surrogate has no encoding: the
    whole group commit would fail. Inside JSON text the escape means the same string, so
    it loads back exactly; in a plain column (a stream name, an action) it shows the
    surrogate as an escape, which is how people should see it anyway.
    """
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub(_escape_surrogate, text)
    return text
