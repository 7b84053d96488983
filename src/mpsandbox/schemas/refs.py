"""Inline external `$ref`s so that each compiled schema is self-contained.

Schema sources reference fragments by absolute path (`/fragment/common/1.2.0`), possibly in
another repository. Resolving them here, through the same sources as events use, guarantees
that nothing is fetched from anywhere else and that both validators see the same schema.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any


class RefError(Exception):
    pass


def _pointer(doc: Any, pointer: str, ref: str) -> Any:
    if pointer in ("", "/"):
        return doc
    node = doc
    for raw in pointer.lstrip("/").split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise RefError(f"$ref {ref}: pointer {pointer!r} does not exist")
    return node


def inline_refs(schema: Any, load: Callable[[str], Any], *, max_depth: int = 32) -> Any:
    """Return a copy of `schema` with every non-local `$ref` replaced by its target.

    Local refs (`#/definitions/x`) stay, since the compiled validators resolve them; a local
    ref inside an inlined document is rewritten against that document by inlining it too.
    """

    def walk(node: Any, doc: Any, depth: int, stack: tuple[str, ...]) -> Any:
        if depth > max_depth:
            raise RefError("$ref chain nested too deep (a cycle?): " + " -> ".join(stack))
        if isinstance(node, list):
            return [walk(item, doc, depth, stack) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str):
            if ref.startswith("#"):
                if doc is None:
                    return dict(node)
                target = _pointer(doc, ref[1:], ref)
                return walk(copy.deepcopy(target), doc, depth + 1, (*stack, ref))
            if ref in stack:
                raise RefError("$ref cycle: " + " -> ".join((*stack, ref)))
            uri, _, pointer = ref.partition("#")
            target_doc = load(uri)
            target = _pointer(target_doc, pointer, ref)
            return walk(copy.deepcopy(target), target_doc, depth + 1, (*stack, ref))
        return {key: walk(value, doc, depth, stack) for key, value in node.items()}

    return walk(schema, None, 0, ())


def has_external_refs(node: Any) -> bool:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            return True
        return any(has_external_refs(v) for v in node.values())
    if isinstance(node, list):
        return any(has_external_refs(v) for v in node)
    return False
