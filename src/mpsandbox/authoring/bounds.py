"""Give every number a `minimum` and `maximum` inside JavaScript's safe integer range.

Events pass through JavaScript (EventGate, browsers) and end up in Hive/Spark tables; an
integer beyond 2^53 - 1 silently loses precision on the way. jsonschema-tools therefore adds
these bounds to every `number` and `integer` when it materializes, and narrows bounds that
reach past them; the published schemas all carry them.
"""

from __future__ import annotations

from typing import Any

from mpsandbox.authoring.traverse import iter_subschemas

__all__ = ["MAX_SAFE_INTEGER", "MIN_SAFE_INTEGER", "bounds_problems", "enforce_numeric_bounds"]

MAX_SAFE_INTEGER = 2**53 - 1
MIN_SAFE_INTEGER = -MAX_SAFE_INTEGER


def _numeric(node: dict) -> bool:
    return node.get("type") in ("number", "integer")


def enforce_numeric_bounds(schema: Any) -> Any:
    """Add or narrow `minimum`/`maximum` on every numeric subschema, in place."""
    for _pointer, node in iter_subschemas(schema):
        if not _numeric(node):
            continue
        low = node.get("minimum")
        if not isinstance(low, int | float) or isinstance(low, bool) or low < MIN_SAFE_INTEGER:
            node["minimum"] = MIN_SAFE_INTEGER
        high = node.get("maximum")
        if not isinstance(high, int | float) or isinstance(high, bool) or high > MAX_SAFE_INTEGER:
            node["maximum"] = MAX_SAFE_INTEGER
    return schema


def bounds_problems(schema: Any) -> list[tuple[str, str]]:
    """(pointer, message) for each numeric subschema without safe bounds."""
    out = []
    for pointer, node in iter_subschemas(schema):
        if not _numeric(node):
            continue
        for key, limit, beyond in (
            ("minimum", MIN_SAFE_INTEGER, lambda v, lim: v < lim),
            ("maximum", MAX_SAFE_INTEGER, lambda v, lim: v > lim),
        ):
            value = node.get(key)
            if not isinstance(value, int | float) or isinstance(value, bool):
                out.append((pointer, f"{node['type']} has no {key}"))
            elif beyond(value, limit):
                out.append((pointer, f"{key} {value} is beyond JavaScript's safe integers"))
    return out
