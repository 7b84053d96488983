"""Merge `allOf` into one schema, with the rules jsonschema-tools' merge step follows.

Materialized schemas carry no `allOf`: the source's own keywords and every fragment are folded
into one schema so that consumers (EventGate, Hive table evolution, humans) see each field
once. The rules, which the published files confirm:

* the source comes first, then each `allOf` member depth-first; annotations (`title`,
  `description`, `default`, `$id`, `$schema`, `examples`) are taken from the first that has
  them, so the source's own wording wins over a fragment's;
* `properties` are merged field by field, recursively; `required` lists are unioned (and
  then sorted, when more than one distinct list took part); `additionalProperties: false`
  anywhere makes the result closed;
* bounds combine to the tightest (`maxLength` the least, `minimum` the greatest, ...), `type`
  and `enum` to their intersection, `uniqueItems` to any; two different `pattern`s stay
  separate under a new `allOf`;
* empty leftovers (`properties: {}`, `patternProperties: {}`, `items: {}`) are dropped.

Two values that cannot be combined (two different `format`s, an empty type intersection)
raise :class:`MergeError` naming the keyword, where jsonschema-tools would stop too.
"""

from __future__ import annotations

import copy
import math
from fractions import Fraction
from typing import Any

from mpsandbox.errors import MpsandboxError

__all__ = ["MergeError", "merge_all_of"]


class MergeError(MpsandboxError):
    """Two schemas under one `allOf` that cannot be merged into one."""


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

_PROPERTY_KEYS = ("properties", "patternProperties", "additionalProperties")
_ITEM_KEYS = ("items", "additionalItems")
_GROUP_KEYS = ("properties", "patternProperties", "definitions", "dependencies")
_SCHEMA_KEYS = (
    "additionalProperties",
    "additionalItems",
    "contains",
    "propertyNames",
    "not",
    "items",
)
_FIRST = ("$id", "$ref", "$schema", "title", "description", "default", "examples", "$comment")
_LARGEST = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_SMALLEST = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
_UNORDERED = ("required", "enum", "type")


def merge_all_of(schema: Any) -> Any:
    """A copy of `schema` with every `allOf` merged away (where the rules allow it)."""
    merged = _merge(_flatten(copy.deepcopy(schema)))
    return {} if merged is MISSING else merged


def _flatten(schema: Any) -> list[Any]:
    """The schema without its `allOf`, then each member's own flattening, depth-first."""
    if isinstance(schema, dict) and isinstance(schema.get("allOf"), list):
        rest = {k: v for k, v in schema.items() if k != "allOf"}
        out = [rest]
        for member in schema["allOf"]:
            out.extend(_flatten(member))
        return out
    return [schema]


def _canonical(value: Any, key: str | None = None) -> Any:
    """A form in which two equivalent schema values compare equal (order-free keywords)."""
    if isinstance(value, dict):
        return tuple(sorted((k, _canonical(v, k)) for k, v in value.items()))
    if isinstance(value, list):
        items = [_canonical(v) for v in value]
        if key in _UNORDERED:
            return ("set", tuple(sorted(set(items), key=repr)))
        return tuple(items)
    if isinstance(value, bool):
        return ("bool", value)
    return value


def _distinct(values: list[Any], key: str | None = None) -> list[Any]:
    out: list[Any] = []
    seen: list[Any] = []
    for value in values:
        canon = _canonical(value, key)
        if canon not in seen:
            seen.append(canon)
            out.append(value)
    return out


def _is_empty_schema(value: Any) -> bool:
    return value is MISSING or (isinstance(value, dict) and not value)


def _merge(schemas: list[Any]) -> Any:
    schemas = [s for s in schemas if s is not MISSING and s is not None]
    if not schemas:
        return MISSING
    if any(s is False for s in schemas):
        return False
    if all(s is True for s in schemas):
        return True
    parts = [s for s in schemas if isinstance(s, dict)]
    if not parts:
        return schemas[0]
    if any(isinstance(p.get("allOf"), list) for p in parts):
        return _merge([x for p in parts for x in _flatten(p)])

    keys = list(dict.fromkeys(k for p in parts for k in p))
    out: dict[str, Any] = {}
    if any(k in _PROPERTY_KEYS for k in keys):
        out.update(_merge_properties(parts))
    if any(k in _ITEM_KEYS for k in keys):
        out.update(_merge_items(parts))
    for key in keys:
        if key in _PROPERTY_KEYS or key in _ITEM_KEYS:
            continue
        values = _distinct([p[key] for p in parts if key in p], key)
        if len(values) == 1 and key in ("anyOf", "oneOf") and isinstance(values[0], list):
            out[key] = [_keep(_merge([v])) for v in values[0]]
        elif len(values) == 1 and key not in _GROUP_KEYS and key not in _SCHEMA_KEYS:
            out[key] = values[0]
        else:
            _resolve(key, values, out)
    return out


def _keep(value: Any) -> Any:
    return {} if value is MISSING else value


def _merge_group(maps: list[Any]) -> dict[str, Any]:
    """Merge maps of name -> schema (`properties`, `definitions`, ...) name by name."""
    maps = [m for m in maps if isinstance(m, dict)]
    out: dict[str, Any] = {}
    for name in dict.fromkeys(k for m in maps for k in m):
        merged = _merge(_distinct([m[name] for m in maps if name in m]))
        out[name] = _keep(merged)
    return out


def _merge_properties(parts: list[dict]) -> dict[str, Any]:
    additional = _merge(
        _distinct([p["additionalProperties"] for p in parts if "additionalProperties" in p])
    )
    patterns = _merge_group([p.get("patternProperties") for p in parts])
    properties = _merge_group([p.get("properties") for p in parts])
    if additional is False:
        properties = {k: v for k, v in properties.items() if v is not False}
    out: dict[str, Any] = {}
    if not _is_empty_schema(additional):
        out["additionalProperties"] = additional
    if patterns:
        out["patternProperties"] = patterns
    if properties:
        out["properties"] = properties
    return out


def _merge_items(parts: list[dict]) -> dict[str, Any]:
    items = [p["items"] for p in parts if "items" in p]
    out: dict[str, Any] = {}
    if all(not isinstance(i, list) for i in items):
        merged = _merge(_distinct(items))
        if not _is_empty_schema(merged):
            out["items"] = merged
    else:
        longest = max(len(i) for i in items if isinstance(i, list))
        tuple_items = []
        for pos in range(longest):
            at_pos = []
            for p in parts:
                value = p.get("items", MISSING)
                if isinstance(value, list):
                    at_pos.append(value[pos] if pos < len(value) else p.get("additionalItems"))
                else:
                    at_pos.append(value)
            tuple_items.append(_keep(_merge(_distinct([v for v in at_pos if v is not None]))))
        out["items"] = tuple_items
    extra = [p["additionalItems"] for p in parts if "additionalItems" in p]
    if extra:
        merged = _merge(_distinct(extra))
        if not _is_empty_schema(merged):
            out["additionalItems"] = merged
    return out


def _resolve(key: str, values: list[Any], out: dict[str, Any]) -> None:
    """Combine several different values of one keyword into `out[key]`."""
    if key in _FIRST:
        out[key] = values[0]
    elif key in _LARGEST:
        out[key] = max(values)
    elif key in _SMALLEST:
        out[key] = min(values)
    elif key == "required":
        out[key] = sorted({v for vs in values for v in vs})
    elif key == "type":
        out[key] = _merge_type(values)
    elif key == "enum":
        common = [v for v in values[0] if all(v in other for other in values[1:])]
        if not common:
            raise MergeError(f"enum: no value is allowed by every allOf member: {values}")
        out[key] = sorted(common, key=lambda v: (type(v).__name__, str(v)))
    elif key == "uniqueItems":
        out[key] = any(v is True for v in values)
    elif key == "multipleOf":
        out[key] = _lcm(values)
    elif key == "pattern":
        out.setdefault("allOf", [])[0:0] = [{"pattern": v} for v in values]
    elif key in ("contains", "propertyNames", "additionalItems", "additionalProperties"):
        merged = _merge(values)
        if not _is_empty_schema(merged):
            out[key] = merged
    elif key == "not":
        out[key] = {"anyOf": values}
    elif key in ("definitions", "dependencies"):
        merged = _merge_dependencies(values) if key == "dependencies" else _merge_group(values)
        if merged:
            out[key] = merged
    else:
        shown = ", ".join(repr(v) for v in values)
        raise MergeError(f"{key}: allOf members disagree and cannot be merged ({shown})")


def _merge_type(values: list[Any]) -> Any:
    if not any(isinstance(v, list) for v in values):
        raise MergeError(
            f"type: allOf members require different types ({', '.join(map(str, values))})"
        )
    lists = [v if isinstance(v, list) else [v] for v in values]
    common = [t for t in dict.fromkeys(lists[0]) if all(t in other for other in lists[1:])]
    if not common:
        raise MergeError(f"type: no type is allowed by every allOf member: {values}")
    return common[0] if len(common) == 1 else common


def _merge_dependencies(values: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    maps = [v for v in values if isinstance(v, dict)]
    for name in dict.fromkeys(k for m in maps for k in m):
        found = _distinct([m[name] for m in maps if name in m])
        if all(isinstance(f, list) for f in found):
            out[name] = sorted({x for f in found for x in f})
        else:
            required = [{"required": f} for f in found if isinstance(f, list)]
            out[name] = _keep(_merge([f for f in found if not isinstance(f, list)] + required))
    return out


def _lcm(values: list[Any]) -> Any:
    fractions = [Fraction(str(v)) for v in values]
    denominator = math.lcm(*(f.denominator for f in fractions))
    numerators = [int(f * denominator) for f in fractions]
    result = Fraction(math.lcm(*numerators), denominator)
    return int(result) if result.denominator == 1 else float(result)
