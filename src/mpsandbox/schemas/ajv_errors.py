"""The exact text AJV 6 puts into error objects: paths, numbers, messages.

EventGate hands these objects to producers verbatim, and people grep for them; a path printed
as ``["a b"]`` instead of ``['a b']`` or a limit printed ``1.0`` instead of ``1`` would make the
sandbox's answers diverge from production's for no reason. Everything here reproduces the
string-building of AJV's generated code (``lib/compile/util.js`` and ``lib/dotjs/*``).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any
from urllib.parse import quote

__all__ = [
    "DynKey",
    "data_path",
    "errors_text",
    "escape_fragment",
    "escape_quotes",
    "get_property",
    "js_json",
    "js_number",
    "js_string_of_key",
]

_IDENTIFIER = re.compile(r"[a-z$_][a-z$_0-9]*", re.IGNORECASE | re.ASCII)


class DynKey(str):
    """A property name reached by iterating the data (additionalProperties, patternProperties).

    AJV prints those as ``['key']`` with no escaping, unlike names it knew at compile time.
    """

    __slots__ = ()


def escape_quotes(s: str) -> str:
    """``util.escapeQuotes``: what AJV does to a name before pasting it into generated code."""
    return (
        s.replace("\\", "\\\\")
        .replace("'", "\\'")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\f", "\\f")
        .replace("\t", "\\t")
    )


def get_property(key: str) -> str:
    """``util.getProperty`` for a name known when the schema was compiled."""
    if _IDENTIFIER.fullmatch(key):
        return "." + key
    return "['" + escape_quotes(key) + "']"


def escape_fragment(key: str) -> str:
    """``util.escapeFragment``: JSON-pointer escaping, then ``encodeURIComponent``."""
    pointer = key.replace("~", "~0").replace("/", "~1")
    return quote(pointer, safe="-_.!~*'()", errors="surrogatepass")


def data_path(parts: Any) -> str:
    """Render an error's instance path (keys, DynKeys, indices) as AJV's ``dataPath``."""
    out = []
    for part in parts:
        if type(part) is int:
            out.append(f"[{part}]")
        elif isinstance(part, DynKey):
            out.append(f"['{part}']")
        else:
            out.append(get_property(part))
    return "".join(out)


def js_number(x: int | float) -> str:
    """``Number.prototype.toString`` for the numbers a schema or an event can hold."""
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        if abs(x) < 10**21:
            return str(x)
        x = float(x)
    if x != x:
        return "NaN"
    if x in (float("inf"), float("-inf")):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    # repr() is the shortest round-tripping form, as in JavaScript; only the layout differs.
    _, digits_t, exp = Decimal(repr(abs(x))).as_tuple()
    digits = "".join(map(str, digits_t)).rstrip("0") or "0"
    assert isinstance(exp, int)
    k = len(digits)
    n = exp + len(digits_t)  # position of the decimal point relative to the digits
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        mant = digits if k == 1 else digits[0] + "." + digits[1:]
        body = f"{mant}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + body


def js_json(value: Any) -> Any:
    """A schema value as JavaScript would serialize it: JSON has one number type, so a YAML
    ``1.0`` limit goes out as ``1``."""
    if isinstance(value, float) and value == value and abs(value) < 1e21 and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [js_json(v) for v in value]
    if isinstance(value, dict):
        return {k: js_json(v) for k, v in value.items()}
    return value


def js_string_of_key(value: Any) -> str:
    """``String(value)`` for the scalars uniqueItems hashes (it uses them as object keys)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return js_number(value)
    return str(value)


def errors_text(errors: list[dict]) -> str:
    """EventGate's ``errorsText``: ``'<dataPath>' <message>`` joined with ", "."""
    return ", ".join(f"'{e['dataPath']}' {e['message']}" for e in errors)
