"""Find, compile and cache the schema for a `$schema` URI, and explain every miss.

EventGate compiles a schema once per process, so a `latest` URI never moves until restart.
Here the cache is dropped whenever a file under a local source changes (see `watcher.py`),
so `latest` follows the newest version and a fixed schema takes effect at once.

Both caches are bounded, because `$schema` comes from clients: compiled schemas in a
least-recently-used cache (a `#fragment` makes any number of URIs for one file), and misses
in a small one whose entries expire, so a flood of made-up URIs costs no memory and a schema
added later (with the watcher off) is found within `MISS_TTL` seconds.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mpsandbox.schemas.configured import Source
from mpsandbox.schemas.refs import RefError, inline_refs
from mpsandbox.schemas.remote import (
    NOT_FOUND,
    OFFLINE,
    RETRY_AFTER_S,
    TIMED_OUT,
    TRANSIENT,
    host_of,
)
from mpsandbox.schemas.sources import (
    Attempt,
    Found,
    SchemaParseError,
    UnloadableURI,
    eventgate_path,
    has_protocol,
    title_and_version,
)

if TYPE_CHECKING:
    from mpsandbox.schemas.validator import CompiledSchema

#: Compiled schemas kept (least recently used dropped first).
MAX_RESOLVED = 256
#: URIs whose lookup failed kept, and for how many seconds before they are looked up again.
MAX_MISSES = 1024
MISS_TTL = 5.0


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
    #: A remote could not be asked (unreachable, timed out): resolve again after this
    #: (time.monotonic), rather than keep the failure until the next schema change.
    retry_at: float | None = None

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

    def probe(self) -> dict[str, Any]:
        """What a person probing a URI is told (the API's ``/sandbox/schemas/resolve``,
        the TUI's Schemas screen): where it resolves from or why not, every place tried,
        and the versions that exist."""
        out = self.explanation()
        out["found"] = self.ok
        out["title"] = self.title
        out["version"] = self.version
        out["tried"] = [a.as_dict() for a in self.attempts]
        if not self.ok:
            out["message"] = self.message
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
        local_dirs_given: bool = False,
        max_resolved: int = MAX_RESOLVED,
        max_misses: int = MAX_MISSES,
        miss_ttl: float = MISS_TTL,
    ):
        self.sources = list(sources)
        #: Whether --schemas was given, so a hint never suggests what is already done.
        self.local_dirs_given = local_dirs_given
        self.secure = secure
        self.allow_absolute_uris = allow_absolute_uris
        self.max_resolved, self.max_misses, self.miss_ttl = max_resolved, max_misses, miss_ttl
        self._cache: OrderedDict[str, Resolution] = OrderedDict()
        #: uri -> (failed resolution, monotonic time it expires)
        self._misses: OrderedDict[str, tuple[Resolution, float]] = OrderedDict()
        self._lock = threading.RLock()
        #: location -> parser message for files that failed to parse, for the Schemas view.
        self.load_errors: dict[str, str] = {}
        self.generation = 0

    def invalidate(self) -> None:
        with self._lock:
            self._cache.clear()
            self._misses.clear()
            self.generation += 1

    def cached_count(self) -> tuple[int, int]:
        """(compiled schemas, misses) held now, for tests and stats."""
        return len(self._cache), len(self._misses)

    def resolve(self, uri: str) -> Resolution:
        with self._lock:
            hit = self._cached(uri)
            if hit is not None:
                return hit
            res = self._resolve_uncached(uri)
            if res.ok:
                self._cache[uri] = res
                if len(self._cache) > self.max_resolved:
                    self._cache.popitem(last=False)
            else:
                # A remote that could not be asked says when to ask again; a local miss
                # is looked up again soon, so a schema file added meanwhile is found.
                expires = res.retry_at or time.monotonic() + self.miss_ttl
                self._misses[uri] = (res, expires)
                if len(self._misses) > self.max_misses:
                    self._misses.popitem(last=False)
            return res

    def _cached(self, uri: str) -> Resolution | None:
        hit = self._cache.get(uri)
        if hit is not None:
            self._cache.move_to_end(uri)
            return hit
        miss = self._misses.get(uri)
        if miss is None:
            return None
        if miss[1] > time.monotonic():
            return miss[0]
        del self._misses[uri]
        return None

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
            res.reason = self._miss_reason(res.attempts)
            if any(a.cause in TRANSIENT for a in res.attempts):
                res.retry_at = time.monotonic() + RETRY_AFTER_S
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
        # The validator (AJV's plan, jsonschema, jsonschema-rs: a tenth of a second to
        # import) is imported by the first compile, not by the intake's start.
        from mpsandbox.schemas.validator import CompiledSchema, SchemaCompileError

        ref_attempts: list[Attempt] = []
        try:
            schema = inline_refs(found.schema, lambda ref: self._load_ref(ref, ref_attempts))
            res.compiled = CompiledSchema(schema, uri=uri, secure=self.secure)
        except (RefError, SchemaParseError) as exc:
            res.message = failed
            res.reason = f"a $ref could not be resolved: {exc}"
            if any(a.cause in TRANSIENT for a in ref_attempts):
                res.retry_at = time.monotonic() + RETRY_AFTER_S
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

    def _load_ref(self, uri: str, tried_so_far: list[Attempt]) -> Any:
        attempts: list[Attempt] = []
        found = self.find(uri, attempts)
        tried_so_far.extend(attempts)
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
        causes = {a.cause for a in res.attempts}
        if causes & TRANSIENT:
            res.hints.append(
                "The schema host could not be reached: it is asked again within a minute; "
                "`mpsandbox schema fetch TITLE/VERSION` fills the cache while online."
            )
        elif OFFLINE in causes:
            res.hints.append(
                "Remote schemas are off (--offline or MPSANDBOX_OFFLINE=1) and this one is not "
                "cached: run once without them, or `mpsandbox schema fetch` it while online."
            )
        if self.local_dirs_given:
            res.hints.append(
                "Check that the --schemas checkouts are up to date (git pull) and hold this title."
            )
        else:
            res.hints.append(
                "For schemas not yet published, point --schemas at a local checkout "
                "(e.g. of schemas/event/secondary)."
            )

    @staticmethod
    def _miss_reason(attempts: list[Attempt]) -> str:
        """Why no source held the URI, naming the real cause of each remote's failure."""
        remote: dict[str, set[str]] = {}
        for a in attempts:
            if a.cause is not None:
                remote.setdefault(host_of(a.source), set()).add(a.cause)
        parts = []
        for host, causes in remote.items():
            if causes & TRANSIENT:
                what = "timed out" if causes <= {TIMED_OUT, NOT_FOUND} else "unreachable"
                parts.append(f"{host} {what}, and no cached copy")
            elif OFFLINE in causes:
                parts.append(f"{host} not asked (offline), and no cached copy")
            elif causes == {NOT_FOUND}:
                parts.append(f"{host} answered 404")
            else:
                parts.append(f"{host} failed ({', '.join(sorted(causes))})")
        if not parts:
            return "not in any schema source"
        return "not in any local schema source; " + "; ".join(parts)

    def describe(self) -> list[dict[str, Any]]:
        return [s.describe() for s in self.sources]
