"""AJV 6's "secure schema" rules, the ones EventGate production applies before compiling.

Production refuses a schema that fails AJV's ``lib/refs/json-schema-secure.json`` meta-schema
(with the opaque ``Failed loading schema`` error). Producers developing against the sandbox need
to hear about that *before* deploying, and in words that point at the offending keyword, so the
rules are re-stated here as a walk that reports JSON-pointer paths instead of being run as a
meta-schema. The walk visits exactly the places that meta-schema recurses into, including its
blind spots (tuple-form ``items`` is not inspected; ``propertyNames: true`` satisfies the
``patternProperties`` rule), because the sandbox must refuse what production refuses and nothing
more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Insecurity", "find_insecurities"]

_LARGE_ITEM_TYPES = ("object", "array")


@dataclass(frozen=True)
class Insecurity:
    """One rule a subschema breaks; ``pointer`` is a JSON pointer into the schema."""

    pointer: str
    rule: str
    explanation: str

    def __str__(self) -> str:
        return f"{self.pointer or '/'} {self.explanation}"


def _pointer_part(key: str | int) -> str:
    return "/" + str(key).replace("~", "~0").replace("/", "~1")


def _items_may_be_large(schema: dict) -> bool:
    """Mirror the meta-schema's ``if``: true unless ``items.type`` clearly names scalars."""
    items = schema.get("items")
    if not isinstance(items, dict) or "type" not in items:
        return True
    t = items["type"]
    if isinstance(t, str):
        return t in _LARGE_ITEM_TYPES
    if isinstance(t, list):
        return any(x in _LARGE_ITEM_TYPES for x in t)
    return False


def _check_node(schema: dict, pointer: str, out: list[Insecurity]) -> None:
    if "pattern" in schema and "maxLength" not in schema:
        out.append(
            Insecurity(pointer, "pattern", 'has "pattern" but no "maxLength"'),
        )
    if "format" in schema and "maxLength" not in schema:
        out.append(Insecurity(pointer, "format", 'has "format" but no "maxLength"'))
    if "patternProperties" in schema:
        names = schema.get("propertyNames")
        if names is None and "propertyNames" not in schema:
            out.append(
                Insecurity(
                    pointer,
                    "patternProperties",
                    'has "patternProperties" but no "propertyNames" with "maxLength"',
                )
            )
        elif isinstance(names, dict) and "maxLength" not in names:
            out.append(
                Insecurity(
                    pointer,
                    "patternProperties",
                    'has "patternProperties" but its "propertyNames" has no "maxLength"',
                )
            )
    if (
        schema.get("uniqueItems") is True
        and _items_may_be_large(schema)
        and "maxItems" not in schema
    ):
        out.append(
            Insecurity(
                pointer,
                "uniqueItems",
                'has "uniqueItems": true over items that may be objects or arrays '
                'but no "maxItems"',
            )
        )


def _walk(schema: Any, pointer: str, out: list[Insecurity]) -> None:
    if not isinstance(schema, dict):
        return
    _check_node(schema, pointer, out)
    for key in ("additionalItems", "additionalProperties", "not", "contains", "propertyNames"):
        if key in schema:
            _walk(schema[key], pointer + _pointer_part(key), out)
    for key in ("if", "then", "else"):
        if key in schema:
            _walk(schema[key], pointer + _pointer_part(key), out)
    items = schema.get("items")
    if isinstance(items, dict):
        _walk(items, pointer + "/items", out)
    for key in ("definitions", "properties", "patternProperties"):
        members = schema.get(key)
        if isinstance(members, dict):
            for name, sub in members.items():
                _walk(sub, pointer + _pointer_part(key) + _pointer_part(name), out)
    deps = schema.get("dependencies")
    if isinstance(deps, dict):
        for name, sub in deps.items():
            if isinstance(sub, dict):
                _walk(sub, pointer + "/dependencies" + _pointer_part(name), out)
    for key in ("allOf", "anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list):
            for i, sub in enumerate(branches):
                _walk(sub, pointer + _pointer_part(key) + _pointer_part(i), out)


def find_insecurities(schema: Any) -> list[Insecurity]:
    """Every place ``schema`` breaks AJV's secure-schema rules, in document order."""
    out: list[Insecurity] = []
    _walk(schema, "", out)
    return out
