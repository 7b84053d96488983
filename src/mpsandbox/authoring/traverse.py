"""Visit every subschema of a schema, with its JSON pointer.

Several authoring steps look at "every schema inside this schema" (numeric bounds, snake_case
names, required fields); they must agree on what counts as one, so the walk lives here once.
It follows the keywords that hold schemas (as json-schema-traverse does), never `examples`,
`enum`, `const` or `default`, which hold data.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["iter_subschemas", "pointer_part"]

_ONE = (
    "additionalItems",
    "additionalProperties",
    "contains",
    "propertyNames",
    "not",
    "if",
    "then",
    "else",
)
_MAPS = ("properties", "patternProperties", "definitions", "dependencies")
_LISTS = ("allOf", "anyOf", "oneOf")


def pointer_part(key: str | int) -> str:
    return "/" + str(key).replace("~", "~0").replace("/", "~1")


def iter_subschemas(schema: Any, pointer: str = "") -> Iterator[tuple[str, dict]]:
    """(pointer, subschema) for `schema` and everything under it, parents first."""
    if not isinstance(schema, dict):
        return
    yield pointer, schema
    for key in _ONE:
        if key in schema:
            yield from iter_subschemas(schema[key], pointer + pointer_part(key))
    items = schema.get("items")
    if isinstance(items, list):
        for i, sub in enumerate(items):
            yield from iter_subschemas(sub, f"{pointer}/items/{i}")
    elif items is not None:
        yield from iter_subschemas(items, pointer + "/items")
    for key in _MAPS:
        members = schema.get(key)
        if isinstance(members, dict):
            for name, sub in members.items():
                yield from iter_subschemas(sub, pointer + pointer_part(key) + pointer_part(name))
    for key in _LISTS:
        members = schema.get(key)
        if isinstance(members, list):
            for i, sub in enumerate(members):
                yield from iter_subschemas(sub, f"{pointer}{pointer_part(key)}/{i}")
