"""Find, compile and cache the schema for a `$schema` URI, and explain every miss.

EventGate compiles a schema once per process, so a `latest` URI never moves until restart.
Here the cache is dropped whenever a file under a local source changes (see `watcher.py`),
so `latest` follows the newest version and a fixed schema takes effect at once.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from typing import Any

from mpsandbox.schemas.refs import RefError, inline_refs
from mpsandbox.schemas.sources import (
    Attempt,
    DirectorySource,
    Found,
    RemoteSource,
    SchemaParseError,
    UnloadableURI,
    eventgate_path,
    has_protocol,
    title_and_version,
)
from mpsandbox.schemas.validator import CompiledSchema, SchemaCompileError

Source = DirectorySource | RemoteSource


@dataclass(slots=True)
class Resolution:
    """The outcome of resolving one URI: a compiled schema, or why there is none."""

    uri: str
    compiled: CompiledSchema | None = None
    location: str | None = None
    source: str | None = None
    title: str | None = None
    version: str | None = None
    #: EventGate's context message when the schema cannot be used.
    message: str | None = None
    #: Our own explanation of the failure, for people.
    reason: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    available_versions: dict[str, list[str]] = field(default_factory=dict)
    hints: list[str] = field(default_factory=list)
    #: The schema file does not parse now; its last good version was used (the message).
    stale: str | None = None
    #: Per-schema facts the pipeline derives once (fill plan, shared explanation).
    memo: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.compiled is not None

    def explanation(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schema_uri": self.uri}
        if self.ok:
            out.update(schema_location=self.location, schema_source=self.source)
            if self.stale is not None:
                out["stale_schema_file"] = (
                    f"{self.location} does not parse ({self.stale}); judged by the last "
                    "version of it that did, until it is fixed"
                )
        else:
            out["reason"] = self.reason
            out["tried"] = [a.as_dict() for a in self.attempts]
            if self.available_versions:
                out["available_versions"] = self.available_versions
            if self.hints:
                out["hints"] = self.hints
        return out


class SchemaRegistry:
    """The ordered schema sources plus a cache of compiled schemas.

    Thread-safe: the intake resolves on the event loop while re-validation and the CLI may
    resolve from other threads.
    """

    def __init__(
        self,
        sources: list[Source],
        *,
        secure: bool = True,
        allow_absolute_uris: bool = False,
    ):
        self.sources = list(sources)
        self.secure = secure
        self.allow_absolute_uris = allow_absolute_uris
        self._cache: dict[str, Resolution] = {}
        self._lock = threading.RLock()
        #: location -> parser message for files that failed to parse, for the Schemas view.
        self.load_errors: dict[str, str] = {}
        self.generation = 0

    def invalidate(self) -> None:
        with self._lock:
            self._cache.clear()
            self.generation += 1

    def resolve(self, uri: str) -> Resolution:
        cached = self._cache.get(uri)
        if cached is not None:
            return cached
        with self._lock:
            cached = self._cache.get(uri)
            if cached is None:
                cached = self._resolve_uncached(uri)
                self._cache[uri] = cached
            return cached

    def find(self, uri: str, attempts: list[Attempt]) -> Found | None:
        """The first source holding `uri`, recording every place tried."""
        for source in self.sources:
            try:
                found = source.lookup(uri, attempts)
            except SchemaParseError as exc:
                self.load_errors[exc.location] = str(exc)
                attempts.append(Attempt(source.name, exc.location, f"parse error: {exc.message}"))
                raise
            if found is not None:
                if found.stale is not None:
                    self.load_errors[found.location] = (
                        f"{found.stale} (the last version that parsed stays in use)"
                    )
                else:
                    self.load_errors.pop(found.location, None)
                return found
        return None

    def _resolve_uncached(self, uri: str) -> Resolution:
        title, version = title_and_version(uri)
        res = Resolution(uri=uri, title=title, version=version)
        failed = f"Failed loading schema at {uri}"
        if has_protocol(uri) and not self.allow_absolute_uris:
            res.message = failed
            res.reason = (
                f"Absolute schema URIs are not allowed but event schema_uri is {uri} "
                "(EventGate refuses them; send a relative $schema such as /title/1.0.0)"
            )
            return res
        if not any(getattr(s, "base_slash", False) for s in self.sources):
            try:
                eventgate_path(uri)
            except UnloadableURI as exc:
                res.message = failed
                res.reason = str(exc)
                return res
        try:
            found = self.find(uri, res.attempts)
        except SchemaParseError as exc:
            res.message = failed
            res.reason = f"the schema file does not parse: {exc}"
            return res
        if found is None:
            res.message = failed
            res.reason = "no schema source holds this URI"
            with contextlib.suppress(OSError, ValueError):  # a name no folder can have
                self._suggest(res)
            return res
        res.location, res.source = found.location, found.source
        if found.stale is not None:
            res.stale = found.stale
        if not isinstance(found.schema, dict):
            res.message = failed
            res.reason = f"{found.location} does not hold a JSON object"
            return res
        try:
            schema = inline_refs(found.schema, self._load_ref)
            res.compiled = CompiledSchema(schema, uri=uri, secure=self.secure)
        except (RefError, SchemaParseError) as exc:
            res.message = failed
            res.reason = f"a $ref could not be resolved: {exc}"
            return res
        except SchemaCompileError as exc:
            res.message = failed
            res.reason = f"production would refuse this schema: {exc.reason}"
            return res
        schema_title = schema.get("title")
        if isinstance(schema_title, str):
            res.title = schema_title
        schema_id = schema.get("$id")
        if isinstance(schema_id, str):
            res.version = title_and_version(schema_id)[1] or res.version
        return res

    def _load_ref(self, uri: str) -> Any:
        attempts: list[Attempt] = []
        found = self.find(uri, attempts)
        if found is None:
            tried = "; ".join(f"{a.location}: {a.outcome}" for a in attempts)
            raise RefError(f"$ref {uri} not found (tried {tried})")
        return found.schema

    def _suggest(self, res: Resolution) -> None:
        if res.title:
            for source in self.sources:
                versions = source.versions(res.title)
                if versions:
                    res.available_versions[source.name] = versions
        have = sorted({v for vs in res.available_versions.values() for v in vs})
        if res.version and have:
            res.hints.append(
                f"{res.title} exists in versions {', '.join(have)}, but not {res.version}."
            )
        res.hints.append(
            "Point --schemas at an up-to-date checkout of the schema repository "
            "(e.g. schemas/event/secondary), or"
        )
        res.hints.append(
            "run with --remote-schemas to fetch from schema.wikimedia.org (cached for offline use)."
        )

    def describe(self) -> list[dict[str, Any]]:
        return [s.describe() for s in self.sources]
