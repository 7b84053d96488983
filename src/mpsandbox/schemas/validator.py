"""EventGate's validator, reproduced: AJV 6 with ``allErrors``, ``useDefaults``, no coercion.

Producers debug against the exact error list EventGate answers with (its order, its
``dataPath`` spelling, its messages), and production refuses the same schemas EventGate refuses.
So a :class:`CompiledSchema` is built once per schema and offers three views that must agree:

* :meth:`CompiledSchema.is_valid` -- the fast verdict, from ``jsonschema-rs`` running a
  translation of the AJV plan (see ``ajv_rs``); it is what the intake calls for every event.
* :meth:`CompiledSchema.errors` -- the detailed AJV-6 error objects, from ``jsonschema`` driven
  by the same plan (see ``ajv_engine``); only needed for invalid events.
* :meth:`CompiledSchema.apply_defaults` -- AJV's ``useDefaults`` (see ``ajv_defaults``).

Where a schema uses an AJV behaviour with no faithful fast rendering, ``is_valid`` quietly uses
the detailed validator instead: a slower answer is better than two answers.
"""

from __future__ import annotations

import copy
from functools import cache, lru_cache
from typing import Any
from urllib.parse import urldefrag

import referencing
import referencing.exceptions
import referencing.jsonschema
from jsonschema import Draft4Validator, Draft6Validator, Draft7Validator

from mpsandbox.schemas.ajv_compile import SchemaCompileError, compile_schema
from mpsandbox.schemas.ajv_defaults import apply_defaults as _apply_defaults
from mpsandbox.schemas.ajv_engine import WRITES, AjvValidator, WriteLog, json_copy, to_ajv_errors
from mpsandbox.schemas.ajv_errors import errors_text
from mpsandbox.schemas.ajv_formats import FORMAT_CHECKER
from mpsandbox.schemas.ajv_rs import Untranslatable, build_rs_validator
from mpsandbox.schemas.ajv_security import find_insecurities

__all__ = ["CompiledSchema", "SchemaCompileError", "errors_text"]

_DIALECTS = {
    "json-schema.org/schema": (7, referencing.jsonschema.DRAFT7),  # AJV's alias for the latest
    "json-schema.org/draft-07/schema": (7, referencing.jsonschema.DRAFT7),
    "json-schema.org/draft-06/schema": (6, referencing.jsonschema.DRAFT6),
    "json-schema.org/draft-04/schema": (4, referencing.jsonschema.DRAFT4),
}


def _dialect(schema: dict) -> tuple[int, Any]:
    declared = schema.get("$schema")
    if declared is None:
        return _DIALECTS["json-schema.org/draft-07/schema"]
    if isinstance(declared, str):
        key = declared.split("://", 1)[-1].rstrip("#")
        if key in _DIALECTS:
            # EventGate's schemas say https://; AJV is set up to accept both spellings.
            return _DIALECTS[key]
    raise SchemaCompileError(f'no schema with key or ref "{declared}"')


@cache
def _meta_validator(draft: int) -> CompiledSchema:
    """The meta-schema as AJV 6 bundles it, compiled by this very validator: AJV checks a
    schema with its own engine (its formats, its messages), so the sandbox does too."""
    meta_cls = {7: Draft7Validator, 6: Draft6Validator, 4: Draft4Validator}[draft]
    meta = copy.deepcopy(meta_cls.META_SCHEMA)
    if draft in (6, 7):
        # AJV's copies of these meta-schemas insist on a non-empty enum without duplicates...
        meta["properties"]["enum"].update({"minItems": 1, "uniqueItems": True})
    if draft == 6:
        # ...and its draft-06 copy does not check patternProperties keys as regexes.
        meta["properties"]["patternProperties"].pop("propertyNames", None)
    return CompiledSchema(meta, uri=meta.get("$id") or meta.get("id", ""), secure=False, _meta=True)


class CompiledSchema:
    """A schema compiled the way EventGate compiles it; raises :class:`SchemaCompileError`
    where EventGate would answer ``Failed loading schema``."""

    def __init__(
        self, schema: dict, *, uri: str = "", secure: bool = True, _meta: bool = False
    ) -> None:
        if not isinstance(schema, dict):
            raise SchemaCompileError("a schema must be a JSON object")
        self.schema = schema
        self.uri = uri
        self.secure = secure
        self.draft, specification = _dialect(schema)

        if not _meta:
            meta = _meta_validator(self.draft)
            if not meta.is_valid(schema):
                problems = ", ".join(
                    f"data{e['dataPath']} {e['message']}" for e in meta.errors(schema)
                )
                raise SchemaCompileError(f"schema is invalid: {problems}")
        if secure:
            found = find_insecurities(schema)
            if found:
                more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
                raise SchemaCompileError(f"insecure: {found[0]}{more}")
            self.insecurities: list = []
        else:
            self.insecurities = find_insecurities(schema)

        id_key = "id" if self.draft == 4 else "$id"
        declared_id = schema.get(id_key)
        base = declared_id if isinstance(declared_id, str) and declared_id else uri
        self._base = urldefrag(base).url if base else ""
        self._specification = specification
        plan = compile_schema(schema, specification, self._base or "urn:mpsandbox:schema")
        self._root = plan.root
        self._validator = AjvValidator(plan.root.wrapper, format_checker=FORMAT_CHECKER)
        #: True when defaults must be written in the same pass as validation (see
        #: ajv_compile._order_sensitive); apply_defaults then also computes the errors.
        self.single_pass = plan.order_sensitive
        self._single_pass_result: tuple[Any, Any, list[dict]] | None = None

        #: Why the fast path is off, if it is (for diagnostics); None when it is on.
        self.fast_path_off_reason: str | None = None
        self.rs_schema: dict | None = None
        self._rs: Any = None
        try:
            self._rs, self.rs_schema = build_rs_validator(plan.root)
        except Untranslatable as exc:
            self.fast_path_off_reason = str(exc)
        self._declares = lru_cache(maxsize=256)(self._declares_uncached)

    # -- the three views -------------------------------------------------------------------
    @property
    def may_write_defaults(self) -> bool:
        """Whether :meth:`apply_defaults` can write anything into an event of this schema."""
        return self._root.may_write

    def apply_defaults(self, event: Any) -> list[tuple[tuple[str, ...], object]]:
        """Write schema defaults into ``event`` where AJV's ``useDefaults`` would; return
        ``(path, value)`` pairs in the order written (array indices appear as strings)."""
        if not self._root.may_write:
            return []
        if not self.single_pass:
            return _apply_defaults(self._root, self._validator, event)
        # AJV's one pass: writes and checks interleaved. Its verdict is kept for this event,
        # because validating the already-defaulted event afterwards could differ.
        log = WriteLog(event)
        token = WRITES.set(log)
        try:
            errors = to_ajv_errors(list(self._validator.iter_errors(event)))
        finally:
            WRITES.reset(token)
        self._single_pass_result = (event, json_copy(event), errors)
        return log.written

    def _single_pass_errors(self, event: Any) -> list[dict] | None:
        kept = self._single_pass_result
        if kept is not None and kept[0] is event and kept[1] == event:
            return kept[2]
        return None

    def is_valid(self, event: Any) -> bool:
        """Fast verdict; always equal to ``errors(event) == []``."""
        if self.single_pass:
            kept = self._single_pass_errors(event)
            if kept is not None:
                return not kept
        if self._rs is not None:
            try:
                return self._rs.is_valid(event)
            except Exception:
                # Values jsonschema-rs cannot take (lone surrogates, huge integers, non-JSON
                # Python objects): let the detailed validator judge them.
                pass
        for _ in self._validator.iter_errors(event):
            return False
        return True

    def errors(self, event: Any) -> list[dict]:
        """AJV 6's error objects for ``event``, in AJV's order; ``[]`` when valid."""
        if self.single_pass:
            kept = self._single_pass_errors(event)
            if kept is not None:
                return [dict(e) for e in kept]
        return to_ajv_errors(list(self._validator.iter_errors(event)))

    def declares(self, path: tuple[str, ...]) -> bool:
        """Whether the schema names a property at this nested path (through ``properties``,
        following ``$ref`` and ``allOf``), i.e. whether production would fill it in."""
        return self._declares(tuple(path))

    # -- helpers ---------------------------------------------------------------------------
    def _declares_uncached(self, path: tuple[str, ...]) -> bool:
        registry = referencing.Registry().with_resource(
            self._base or "urn:mpsandbox:schema",
            self._specification.create_resource(self.schema),
        )
        resolver = registry.resolver(base_uri=self._base or "urn:mpsandbox:schema")
        level: list[tuple[Any, Any]] = [(self.schema, resolver)]
        for key in path:
            nxt: list[tuple[Any, Any]] = []
            for schema, res in self._expand(level):
                props = schema.get("properties")
                if isinstance(props, dict) and key in props:
                    nxt.append((props[key], res))
            if not nxt:
                return False
            level = nxt
        return True

    @staticmethod
    def _expand(level: list[tuple[Any, Any]]) -> list[tuple[dict, Any]]:
        out: list[tuple[dict, Any]] = []
        seen: set[int] = set()
        work = list(level)
        while work:
            schema, res = work.pop(0)
            if not isinstance(schema, dict) or id(schema) in seen:
                continue
            seen.add(id(schema))
            out.append((schema, res))
            ref = schema.get("$ref")
            if isinstance(ref, str):
                try:
                    resolved = res.lookup(ref)
                except referencing.exceptions.Unresolvable:
                    pass
                else:
                    work.append((resolved.contents, resolved.resolver))
            for branch in schema.get("allOf") or ():
                work.append((branch, res))
        return out

    def __repr__(self) -> str:
        fast = "fast" if self._rs is not None else "detailed-only"
        return f"<CompiledSchema {self.uri or self._base or '?'} draft-0{self.draft} {fast}>"
