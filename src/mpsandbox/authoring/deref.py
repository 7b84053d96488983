"""Replace every `$ref` in a source schema by what it points at, as jsonschema-tools does.

`schemas/refs.py` inlines refs for validation and keeps local ones; materializing must leave
none at all, and must honour two habits of the real repositories that validation never sees:

* a `$ref` with sibling keywords is an *extended* ref: the siblings win over the target's
  keys (`performer: {$ref: /fragment/.../user/1.0.0, description: ...}`), the target's other
  keys follow;
* `#/...` and `./#/...` point into the document the ref is written in, so an example's
  `$schema: {$ref: '#/$id'}` becomes the schema's own `$id`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from mpsandbox.schemas.refs import RefError

__all__ = ["RefError", "dereference"]

_LOCAL_PREFIXES = ("", ".", "./")


def _pointer(doc: Any, pointer: str, ref: str) -> Any:
    node = doc
    if pointer in ("", "/"):
        return node
    for raw in pointer.lstrip("/").split("/"):
        part = unquote(raw).replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise RefError(f"$ref {ref}: {pointer!r} does not exist in its document")
    return node


def dereference(
    schema: Any, load: Callable[[str], Any], *, name: str = "#", max_depth: int = 64
) -> Any:
    """A copy of `schema` with no `$ref` left; `load(uri)` returns the document at a URI.

    `name` identifies `schema` itself in messages and cycle checks.
    """

    def walk(node: Any, doc: Any, doc_name: str, stack: tuple[str, ...]) -> Any:
        if len(stack) > max_depth:
            raise RefError("$ref chain nested too deep (a cycle?): " + " -> ".join(stack))
        if isinstance(node, list):
            return [walk(item, doc, doc_name, stack) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if not isinstance(ref, str):
            return {key: walk(value, doc, doc_name, stack) for key, value in node.items()}
        uri, _, pointer = ref.partition("#")
        if uri in _LOCAL_PREFIXES:
            target_doc, target_name = doc, doc_name
        else:
            target_doc, target_name = load(uri), uri
        key = f"{target_name}#{pointer}"
        if key in stack:
            raise RefError("$ref cycle: " + " -> ".join((*stack, key)))
        target = _pointer(target_doc, pointer, ref)
        resolved = walk(copy.deepcopy(target), target_doc, target_name, (*stack, key))
        siblings = {k: walk(v, doc, doc_name, stack) for k, v in node.items() if k != "$ref"}
        if not siblings or not isinstance(resolved, dict):
            return resolved
        for k, v in resolved.items():
            siblings.setdefault(k, v)
        return siblings

    return walk(schema, schema, name, ())
