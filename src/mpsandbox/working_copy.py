"""Judge events against a schema's working copy: its unmaterialized ``current.yaml``.

The published ``X.Y.Z.yaml`` changes only when an author materializes; until then, what they
are editing is ``current.yaml``, with ``$ref``s to fragments and an ``allOf`` to merge. To test
an edit before materializing, the working copy is materialized in memory exactly as
``mpsandbox schema materialize`` would (refs resolved across every schema source, ``allOf``
merged with ``required`` unioned) and used in place of the version the event names, for the
titles that have one. Everything else about the judgement is the intake's own pipeline.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from mpsandbox.authoring.materialize import AuthoringError, build
from mpsandbox.authoring.repo import Resolver
from mpsandbox.pipeline import Pipeline, RequestContext
from mpsandbox.records import EventRecord
from mpsandbox.schemas.registry import Resolution, SchemaRegistry
from mpsandbox.schemas.sources import DirectorySource, title_and_version
from mpsandbox.schemas.validator import CompiledSchema, SchemaCompileError

CURRENT = "current.yaml"


def find_current(registry: SchemaRegistry, title: str) -> Path | None:
    """The first local source's ``current.yaml`` for ``title`` (search order as for schemas)."""
    rel = title.strip("/")
    for source in registry.sources:
        if not isinstance(source, DirectorySource):
            continue
        for base in (source.root, source.root / "jsonschema"):
            path = (base / rel / CURRENT).resolve()
            if source.root in path.parents and path.is_file():
                return path
    return None


class WorkingCopyRegistry:
    """A registry that answers with the working copy of a title when there is one, and as
    ``base`` does otherwise. Compiled copies are kept until the file (or any schema file,
    through ``base.generation``) changes."""

    def __init__(self, base: SchemaRegistry):
        self.base = base
        self.sources = base.sources
        self._cache: dict[str, tuple[Any, Resolution]] = {}
        self._lock = threading.Lock()

    def resolve(self, uri: str) -> Resolution:
        title, _version = title_and_version(uri)
        current = find_current(self.base, title) if title else None
        if current is None:
            return self.base.resolve(uri)
        try:
            stamp = (current.stat().st_mtime_ns, self.base.generation)
        except OSError:
            return self.base.resolve(uri)
        with self._lock:
            cached = self._cache.get(uri)
            if cached is not None and cached[0] == stamp:
                return cached[1]
        res = self._materialize(uri, current)
        with self._lock:
            self._cache[uri] = (stamp, res)
        return res

    def _materialize(self, uri: str, current: Path) -> Resolution:
        title, version = title_and_version(uri)
        res = Resolution(
            uri=uri, title=title, version=version, location=str(current), source="working copy"
        )
        failed = f"Failed loading schema at {uri}"
        try:
            built = build(current, Resolver(list(self.base.sources)))
        except AuthoringError as exc:
            res.message, res.reason = failed, f"the working copy cannot be materialized: {exc}"
            return res
        res.version = built.version
        try:
            res.compiled = CompiledSchema(built.schema, uri=uri, secure=self.base.secure)
        except SchemaCompileError as exc:
            res.message, res.reason = failed, f"production would refuse this schema: {exc.reason}"
        return res


def judge_stored(
    registry: SchemaRegistry, stored: dict[str, Any], *, fill_ins: bool = True
) -> dict[str, Any]:
    """A stored event (as ``StoreReader.get_event`` reads it) judged by its schema's working
    copy, in the context it arrived in; with its ``id`` and ``stored_verdict``. Reads and
    compiles schema files: call it off the event loop."""
    from mpsandbox.revalidation import stored_context

    headers = (stored.get("request") or {}).get("headers") or []
    ctx = stored_context(stored["id"], stored["received_at"], stored.get("fills") or {}, headers)
    out = judge_against_working_copy(registry, stored["event"], ctx, fill_ins=fill_ins)
    out["id"] = stored["id"]
    out["stored_verdict"] = stored["verdict"]
    return out


def judge_against_working_copy(
    registry: SchemaRegistry, event: Any, ctx: RequestContext, *, fill_ins: bool = True
) -> dict[str, Any]:
    """The event judged by the working copy of its schema: verdict, errors, and which file
    and version judged it (or why there is no working copy)."""
    working = WorkingCopyRegistry(registry)
    uri = event.get("$schema") if isinstance(event, dict) else None
    title = title_and_version(uri)[0] if isinstance(uri, str) else None
    current = find_current(registry, title) if title else None
    record: EventRecord = Pipeline(working, fill_ins=fill_ins).rejudge(event, ctx)  # type: ignore[arg-type]
    explanation = record.explanation or {}
    return {
        "working_copy": None if current is None else str(current),
        "schema_uri": record.schema_uri,
        "judged_by": explanation.get("schema_location"),
        "working_copy_version": record.schema_version if current is not None else None,
        "verdict": record.verdict,
        "errors": record.errors or [],
        "message": record.message,
        "reason": explanation.get("reason"),
    }
