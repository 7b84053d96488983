"""Schema repositories over HTTP (schema.wikimedia.org by default), cached on disk.

Why the care: the intake judges on its event loop, so a slow or absent schema host must cost
an answer at most one timeout, and then nothing for a minute. So each download runs in a
thread the caller waits for only ``timeout`` seconds (DNS included, which urllib's own
timeout does not bound); a failure is remembered per URI and, for an unreachable host, per
host, and neither is tried again within :data:`RETRY_AFTER_S`. A download that finishes
after its caller gave up still fills the cache. Every file fetched is kept in the cache
(``Settings.cache_dir``) and used from there afterwards, with or without a network.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mpsandbox.schemas.sources import (
    VERSION_RE,
    Attempt,
    Found,
    UnloadableURI,
    eventgate_path,
    has_protocol,
    materialized_alias,
    parse_schema_text,
)

#: A failed URI (or an unreachable host) is tried again at most this often.
RETRY_AFTER_S = 60.0
DEFAULT_TIMEOUT_S = 3.0
#: A 404 is remembered on disk this long (a repository is searched in order, so the first
#: base's 404 for every schema of the second must not need the network once cached).
MISSING_TTL_S = 86_400.0
#: Largest schema document accepted.
MAX_BYTES = 16 * 1024 * 1024

#: Causes an :class:`Attempt` of a remote carries (``Attempt.cause``).
UNREACHABLE, TIMED_OUT, NOT_FOUND, HTTP_ERROR, OFFLINE = (
    "unreachable",
    "timed out",
    "404",
    "http error",
    "offline",
)
#: Causes that say nothing about the schema, only about the network: worth another try.
TRANSIENT = frozenset({UNREACHABLE, TIMED_OUT})


def host_of(url: str) -> str:
    """The host (with its port, when not the default) a base URL names: what is reachable
    or not, and what a user recognizes (schema.wikimedia.org)."""
    return urlsplit(url).netloc or url


# -- the cache -----------------------------------------------------------------------------


def cache_file(cache_dir: Path, url: str) -> Path:
    return Path(cache_dir) / hashlib.sha256(url.encode()).hexdigest()[:32]


def cached_urls(cache_dir: Path) -> list[tuple[str, Path]]:
    """Every cached document as (URL, file), sorted by URL."""
    out = []
    folder = Path(cache_dir)
    if folder.is_dir():
        for marker in folder.glob("*.url"):
            body = marker.with_suffix("")
            try:
                url = marker.read_text().strip()
            except OSError:
                continue
            if body.is_file():
                out.append((url, body))
    return sorted(out)


def store_in_cache(cache_dir: Path, url: str, body: bytes) -> None:
    target = cache_file(cache_dir, url)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.name}.{threading.get_ident()}.tmp")
        tmp.write_bytes(body)
        tmp.replace(target)
        target.with_suffix(".url").write_text(url)
    except OSError:
        pass  # a cache we cannot write only costs a refetch


def missing_marker(cache_dir: Path, url: str) -> Path:
    return cache_file(cache_dir, url).with_suffix(".missing")


def clear_cache(cache_dir: Path) -> int:
    """Remove every cached document (and remembered 404); returns how many documents."""
    n = 0
    folder = Path(cache_dir)
    if folder.is_dir():
        for marker in folder.glob("*.missing"):
            with contextlib.suppress(OSError):
                marker.unlink()
    for _url, body in cached_urls(cache_dir):
        for path in (body, body.with_suffix(".url")):
            try:
                path.unlink()
            except OSError:
                continue
        n += 1
    return n


# -- the health of each host ---------------------------------------------------------------


#: Failed URLs remembered in memory (to retry each at most once a minute); past this many
#: the memory starts afresh, so a client inventing `$schema` values cannot grow it for ever.
MAX_FAILURES_KEPT = 1024


@dataclass(slots=True)
class Failure:
    cause: str
    detail: str
    at: float

    def describe(self, now: float) -> str:
        ago = now - self.at
        again = max(0, int(RETRY_AFTER_S - ago))
        return f"{self.detail} ({int(ago)} s ago; tried again in {again} s)"


class Health:
    """What this process knows of each schema host, and who wants to hear of an outage.

    Process-wide on purpose: every registry of the process talks to the same network, and
    an outage is announced once (to ``add_listener``'s listeners), not once per registry
    or event.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._down: dict[str, Failure] = {}
        self._announced: set[str] = set()
        self._listeners: list[Callable[[str, Failure], None]] = []

    def add_listener(self, listener: Callable[[str, Failure], None]) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[str, Failure], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def down(self, host: str, now: float) -> Failure | None:
        with self._lock:
            failure = self._down.get(host)
        if failure is not None and now - failure.at < RETRY_AFTER_S:
            return failure
        return None

    def failed(self, host: str, failure: Failure) -> None:
        with self._lock:
            self._down[host] = failure
            first = host not in self._announced
            self._announced.add(host)
        if first:
            for listener in list(self._listeners):
                # a broken listener must not fail a lookup
                with contextlib.suppress(Exception):
                    listener(host, failure)

    def reached(self, host: str) -> None:
        with self._lock:
            self._down.pop(host, None)
            self._announced.discard(host)

    def unreachable(self) -> dict[str, Failure]:
        with self._lock:
            return dict(self._down)


HEALTH = Health()


def unreachable_line(host: str, cache_dir: Path) -> str:
    """The one line a face shows when a schema host cannot be reached."""
    n = len(cached_urls(cache_dir))
    return f"{host} unreachable: {n} cached schemas, built-ins; --schemas DIR for a local checkout"


# -- downloading ---------------------------------------------------------------------------


def _download(url: str, timeout: float) -> tuple[bytes | None, Failure | None]:
    try:
        req = urllib.request.Request(url, headers={"User-Agent": "mpsandbox"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.read(MAX_BYTES), None
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None, Failure(NOT_FOUND, "HTTP 404: not in this repository", time.monotonic())
        return None, Failure(HTTP_ERROR, f"HTTP {exc.code} {exc.reason}", time.monotonic())
    except TimeoutError:
        return None, Failure(TIMED_OUT, f"timed out after {timeout:g} s", time.monotonic())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError):
            return None, Failure(TIMED_OUT, f"timed out after {timeout:g} s", time.monotonic())
        return None, Failure(UNREACHABLE, f"unreachable ({reason})", time.monotonic())


class RemoteSource:
    """A schema repository reached over HTTP, with an on-disk cache usable offline.

    ``offline``: only the cache is read (``--offline``); the network is never tried.
    """

    kind = "remote"

    def __init__(
        self,
        base_url: str,
        cache_dir: str | Path,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        offline: bool = False,
        health: Health = HEALTH,
    ):
        self.base_url = base_url.rstrip("/")
        self.name = self.base_url
        self.host = host_of(self.base_url)
        self.cache_dir = Path(cache_dir)
        self.timeout = timeout
        self.offline = offline
        self.health = health
        self._failures: dict[str, Failure] = {}
        self._lock = threading.Lock()

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "cache": str(self.cache_dir),
            "offline": self.offline,
        }

    def urls(self, uri: str) -> list[str]:
        """The URLs tried for ``uri``, in order: the path EventGate reads (eventgate_path),
        with .yaml first when it names a published version or `latest`."""
        rel = eventgate_path(uri)  # EventGate's URL rule; raises UnloadableURI
        candidates = [rel + ".yaml", rel] if materialized_alias(rel) else [rel]
        return [self.base_url + c for c in candidates]

    def lookup(self, uri: str, attempts: list[Attempt]) -> Found | None:
        if has_protocol(uri.split("#", 1)[0]):
            return None
        try:
            urls = self.urls(uri)
        except UnloadableURI as exc:
            attempts.append(Attempt(self.name, uri, str(exc)))
            return None
        if self.offline:
            # One line per repository, not per file name tried: nothing was asked.
            for url in urls:
                body = self.cached(url)
                if body is not None:
                    return Found(parse_schema_text(body, url), location=url, source=self.name)
            attempts.append(Attempt(self.name, urls[-1], "offline, not in the cache", OFFLINE))
            return None
        for url in urls:
            body = self.fetch(url, attempts)
            if body is not None:
                return Found(schema=parse_schema_text(body, url), location=url, source=self.name)
        return None

    def cached(self, url: str) -> bytes | None:
        try:
            return cache_file(self.cache_dir, url).read_bytes()
        except OSError:
            return None

    def fetch(self, url: str, attempts: list[Attempt]) -> bytes | None:
        """The document at ``url``: from the cache, else downloaded (and cached)."""
        body = self.cached(url)
        if body is not None:
            return body
        missing = missing_marker(self.cache_dir, url)
        try:
            age = time.time() - missing.stat().st_mtime
        except OSError:
            age = None
        if age is not None and (self.offline or age < MISSING_TTL_S):
            detail = f"HTTP 404: not in this repository (remembered, {int(age // 60)} min ago)"
            attempts.append(Attempt(self.name, url, detail, NOT_FOUND))
            return None
        if self.offline:
            attempts.append(Attempt(self.name, url, "offline, not in the cache", OFFLINE))
            return None
        now = time.monotonic()
        with self._lock:
            failure = self._failures.get(url)
        if failure is not None and now - failure.at < RETRY_AFTER_S:
            attempts.append(Attempt(self.name, url, failure.describe(now), failure.cause))
            return None
        down = self.health.down(self.host, now)
        if down is not None:
            attempts.append(Attempt(self.name, url, down.describe(now), down.cause))
            return None
        body, failure = self._download_within_timeout(url)
        if failure is None:
            return body
        with self._lock:
            if len(self._failures) >= MAX_FAILURES_KEPT:  # made-up URIs must not grow it
                self._failures.clear()
            self._failures[url] = failure
        if failure.cause == NOT_FOUND:
            with contextlib.suppress(OSError):
                missing.parent.mkdir(parents=True, exist_ok=True)
                missing.write_text(url)
        if failure.cause in TRANSIENT:
            self.health.failed(self.host, failure)
        attempts.append(Attempt(self.name, url, failure.detail, failure.cause))
        return None

    def _download_within_timeout(self, url: str) -> tuple[bytes | None, Failure | None]:
        box: list[tuple[bytes | None, Failure | None]] = []

        def run() -> None:
            body, failure = _download(url, self.timeout)
            if body is not None:
                store_in_cache(self.cache_dir, url, body)
                with contextlib.suppress(OSError):
                    missing_marker(self.cache_dir, url).unlink(missing_ok=True)
            if failure is None or failure.cause not in TRANSIENT:
                self.health.reached(self.host)  # it answered, if only with a 404
            box.append((body, failure))

        worker = threading.Thread(target=run, name="mpsandbox-schema-fetch", daemon=True)
        worker.start()
        worker.join(self.timeout)
        if box:
            return box[0]
        detail = f"timed out after {self.timeout:g} s (no answer yet; cached if it comes)"
        return None, Failure(TIMED_OUT, detail, time.monotonic())

    def versions(self, title: str) -> list[str]:
        """Versions seen in the cache (a remote listing would need a network round trip)."""
        found = set()
        prefix = f"{self.base_url}/{title.strip('/')}/"
        for url, _body in cached_urls(self.cache_dir):
            if url.startswith(prefix):
                stem = url[len(prefix) :].removesuffix(".yaml")
                if VERSION_RE.match(stem):
                    found.add(stem)
        return sorted(found, key=lambda v: tuple(int(p) for p in v.split(".")))

    def watch_paths(self) -> list[Path]:
        return []
