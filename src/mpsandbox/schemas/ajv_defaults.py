"""AJV's ``useDefaults`` for the common case, without running a whole validation.

AJV assigns a default while validating: at the start of an object's rule group, for each
``properties`` entry whose value is undefined, and only outside composite keywords; so which
objects get defaults depends on the data (a nested object must exist to be filled). The intake
applies defaults to every event, so this walk is kept cheap: it follows the validator's plan
but only into nodes the planner marked as able to write (for most schemas: none at all).

It is only used for plans where writing first and validating afterwards gives AJV's answer
(see ``ajv_compile._order_sensitive``). Those plans have no allOf/anyOf/oneOf/not/if or schema
dependency on the way to a write, which is why no handler for them exists here; the other
plans get AJV's single interleaved pass from the engine instead (see ``validator.py``).
"""

from __future__ import annotations

from typing import Any

from mpsandbox.schemas.ajv_compile import (
    ChildSpec,
    DefaultsSpec,
    ItemsSpec,
    Node,
    PropertiesSpec,
    js_keys,
)
from mpsandbox.schemas.ajv_engine import UNDEFINED, js_get, json_copy, node_is_valid

__all__ = ["apply_defaults"]


class _Walk:
    def __init__(self, validator: Any) -> None:
        self.validator = validator
        self.written: list[tuple[tuple[str, ...], Any]] = []

    def valid(self, node: Node, data: Any) -> bool:
        return node_is_valid(self.validator, data, node)

    def node(self, node: Node | None, data: Any, path: tuple[str, ...]) -> None:
        if node is None or not node.may_write:
            return
        for kw, spec in node.ops:
            handler = getattr(self, "op_" + kw.lstrip("$"), None)
            if handler is not None:
                handler(spec, data, path)

    # -- writers ---------------------------------------------------------------------------
    def op_defaultProperties(self, spec: DefaultsSpec, data: Any, path: tuple) -> None:
        if not isinstance(data, dict):
            return
        for key, default in spec.entries:
            if js_get(data, key) is UNDEFINED:
                value = json_copy(default)
                data[key] = value
                self.written.append(((*path, key), value))

    def op_defaultItems(self, spec: DefaultsSpec, data: Any, path: tuple) -> None:
        if not isinstance(data, list):
            return
        for index, default in spec.entries:
            if index < len(data):
                continue
            if index > len(data):
                break  # JavaScript would leave holes; JSON cannot, so stop at the first gap
            value = json_copy(default)
            data.append(value)
            self.written.append(((*path, str(index)), value))

    # -- structure -------------------------------------------------------------------------
    def op_ref(self, spec: ChildSpec, data: Any, path: tuple) -> None:
        self.node(spec.node, data, path)

    def op_items(self, spec: ItemsSpec, data: Any, path: tuple) -> None:
        if not isinstance(data, list):
            return
        if spec.tuple_nodes is None:
            for i, item in enumerate(data):
                self.node(spec.single, item, (*path, str(i)))
            return
        for i, node in enumerate(spec.tuple_nodes):
            if node is not None and i < len(data):
                self.node(node, data[i], (*path, str(i)))
        if spec.additional is not None:
            for i in range(len(spec.tuple_nodes), len(data)):
                self.node(spec.additional, data[i], (*path, str(i)))

    def op_contains(self, spec: ChildSpec, data: Any, path: tuple) -> None:
        if not isinstance(data, list) or spec.node is None or not spec.node.may_write:
            return
        for i, item in enumerate(data):
            self.node(spec.node, item, (*path, str(i)))
            if self.valid(spec.node, item):
                break

    def op_properties(self, spec: PropertiesSpec, data: Any, path: tuple) -> None:
        if not isinstance(data, dict):
            return
        if spec.additional is not None and spec.additional.may_write:
            for key in js_keys(data):
                if spec.some_properties and (
                    key in spec.names or any(rx.search(key) for rx in spec.name_patterns)
                ):
                    continue
                self.node(spec.additional, data[key], (*path, key))
        for entry in spec.entries:
            if entry.node.may_write and entry.key in data:
                self.node(entry.node, data[entry.key], (*path, entry.key))
        for _source, rx, node in spec.pattern_entries:
            if node.may_write:
                for key in js_keys(data):
                    if rx.search(key):
                        self.node(node, data[key], (*path, key))


def apply_defaults(root: Node, validator: Any, event: Any) -> list[tuple[tuple[str, ...], Any]]:
    """Write defaults into ``event`` in place; return ``(path, value)`` in the order written."""
    if not root.may_write:
        return []
    walk = _Walk(validator)
    walk.node(root, event, ())
    return walk.written
