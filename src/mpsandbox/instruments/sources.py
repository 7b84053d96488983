"""Where the events to judge come from: a store, a running sandbox, or fixture files.

- :func:`events_from_store` reads a database (the events and their stored verdicts);
- :func:`events_from_url` asks a running sandbox's inspection API
  (``GET /sandbox/events?q=...`` page by page, following ``next``, then each event);
- :func:`events_from_fixtures` judges fixture files through the local pipeline into a
  temporary database and reads that back, so the verdicts are real;
- :class:`StoreTracker` keeps the newest events of some streams and reads only what
  arrived since, for a view that updates live.

Every source yields :class:`~mpsandbox.instruments.checks.ObservedEvent`, ids included.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mpsandbox.errors import MpsandboxError, describe_network_failure
from mpsandbox.instruments.checks import ObservedEvent
from mpsandbox.query import QuerySyntaxError, parse_query
from mpsandbox.store import EventFilter, StoreError, StoreReader

#: Events read from a store or a sandbox at most (the newest are kept).
DEFAULT_LIMIT = 100_000
PAGE = 1_000


class SourceError(MpsandboxError):
    """Events that cannot be read: a missing database, a sandbox that does not answer, a
    fixture file that is not JSON."""


def load_fixture_events(path: str | Path) -> list[Any]:
    """The events of a fixture file, in any format ``import`` and ``replay`` read (our
    request or event lines, EventGate's events.json, a HAR, a JSON array or one event)."""
    from mpsandbox.fixtures.formats import FixtureError
    from mpsandbox.fixtures.reader import read_fixture

    try:
        return read_fixture(str(path)).events()
    except FixtureError as exc:
        raise SourceError(str(exc)) from None


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def stream_query(streams: Iterable[str], since: str | None = None) -> str:
    """The filter-language query for events of ``streams`` (ORed) received ``since``."""
    terms = [f"stream:{_quote(s)}" for s in sorted(set(streams))]
    if since:
        terms.append(f"since:{since}")
    return " ".join(terms)


def since_query(since: str | None):
    """``--since`` parsed by the filter language (5m, 2h, 2024-10-01T12:00); None without."""
    if not since:
        return None
    try:
        return parse_query(f"since:{since}", now=time.time())
    except QuerySyntaxError as exc:
        raise SourceError(f"--since: {exc.message}") from None


def read_newest(
    reader: StoreReader, flt: EventFilter, limit: int, after_id: int | None = None
) -> list[dict[str, Any]]:
    """The newest ``limit`` matching rows after ``after_id``, oldest first."""
    rows: list[dict[str, Any]] = []
    before = None
    while len(rows) < limit:
        page = reader.event_bodies(
            flt,
            before_id=before,
            after_id=after_id,
            limit=min(PAGE, limit - len(rows)),
            newest_first=True,
        )
        rows += page
        if len(page) < PAGE:
            break
        before = page[-1]["id"]
    rows.reverse()
    return rows


def events_from_store(
    db: str | Path,
    streams: Iterable[str],
    *,
    since: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> list[ObservedEvent]:
    """The newest ``limit`` events of ``streams`` in the database at ``db``."""
    if not Path(db).exists():
        raise SourceError(f"{db}: no such database (start the sandbox, or give --db)")
    streams = sorted(set(streams))
    try:
        with StoreReader(db) as reader:
            flt = EventFilter(stream=streams, query=since_query(since))
            rows = read_newest(reader, flt, limit)
    except StoreError as exc:
        raise SourceError(str(exc)) from None
    return [ObservedEvent.from_stored(r) for r in rows]


def _get_json(url: str, timeout: float) -> Any:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:300]
        raise SourceError(f"{url}: HTTP {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = describe_network_failure(exc, timeout)
        raise SourceError(f"{url}: cannot reach the sandbox ({reason})") from None
    except ValueError as exc:
        raise SourceError(f"{url}: the answer is not JSON ({exc})") from None


def events_from_url(
    base: str,
    streams: Iterable[str],
    *,
    since: str | None = None,
    limit: int = DEFAULT_LIMIT,
    timeout: float = 30.0,
    workers: int = 8,
) -> list[ObservedEvent]:
    """Events of ``streams`` from a running sandbox at ``base`` (``http://127.0.0.1:8192``):
    ids from ``/sandbox/events`` (oldest first, following ``next``), then each event's
    detail from ``/sandbox/events/{id}`` (a few at a time)."""
    base = base.rstrip("/")
    since_query(since)  # the same errors as for a database
    query = urllib.parse.urlencode(
        {"q": stream_query(streams, since), "order": "asc", "limit": str(PAGE)}
    )
    url: str | None = f"{base}/sandbox/events?{query}"
    ids: list[int] = []
    while url is not None:
        page = _get_json(url, timeout)
        ids += [int(row["id"]) for row in page.get("events") or []]
        nxt = page.get("next")
        url = urllib.parse.urljoin(base + "/", nxt) if nxt else None
    ids = ids[-limit:]

    def detail(event_id: int) -> dict[str, Any]:
        return _get_json(f"{base}/sandbox/events/{event_id}", timeout)

    with ThreadPoolExecutor(max(1, workers)) as pool:
        rows = list(pool.map(detail, ids))
    return [ObservedEvent.from_stored(r) for r in rows]


def events_from_fixtures(paths: Sequence[str | Path], settings: Any) -> list[ObservedEvent]:
    """Judge the requests of fixture files as ``mpsandbox import`` does (the intake's own
    path, ``settings``' schemas, stream configs and fill-ins) into a temporary database, and
    read them back with their verdicts."""
    import asyncio
    import time

    from mpsandbox.fixtures.formats import FixtureError
    from mpsandbox.fixtures.local import LocalIntake
    from mpsandbox.fixtures.reader import read_fixture
    from mpsandbox.store import StoreReader

    try:
        fixtures = [read_fixture(str(p)) for p in paths]
    except FixtureError as exc:
        raise SourceError(str(exc)) from None

    async def judge(s: Any) -> None:
        async with LocalIntake(s) as intake:
            for fixture in fixtures:
                for req in fixture:
                    await intake.submit(req, req.received_at or time.time())

    with tempfile.TemporaryDirectory(prefix="mpsandbox-check-") as tmp:
        s = settings.with_(db=Path(tmp) / "check.db", max_events=None, max_age_s=None)
        asyncio.run(judge(s))
        with StoreReader(s.db) as reader:
            rows = read_newest(reader, EventFilter(), 10**9)
    return [ObservedEvent.from_stored(r) for r in rows]


class StoreTracker:
    """The newest ``limit`` events of some streams, read incrementally: each
    :meth:`update` reads only the events stored since the last one (all of them again after
    a reset or when the streams change). Thread-safe; meant for a live view's reader."""

    def __init__(self, limit: int = 20_000) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._events: list[ObservedEvent] = []
        self._streams: tuple[str, ...] = ()
        self._last_id: int | None = None

    def reset(self) -> None:
        with self._lock:
            self._events = []
            self._last_id = None

    def update(self, reader: StoreReader, streams: Iterable[str]) -> list[ObservedEvent]:
        streams = tuple(sorted(set(streams)))
        with self._lock:
            if streams != self._streams:
                self._streams, self._events, self._last_id = streams, [], None
            if not streams:
                return []
            newest = reader.max_event_id()
            if self._last_id is not None and newest < self._last_id:
                self._events, self._last_id = [], None  # the store was reset under us
            rows = read_newest(
                reader, EventFilter(stream=list(streams)), self.limit, after_id=self._last_id
            )
            self._events += [ObservedEvent.from_stored(r) for r in rows]
            if len(self._events) > self.limit:
                self._events = self._events[-self.limit :]
            # Events stored while this read ran may be among the rows: go past them too.
            self._last_id = max(newest, self._last_id or 0, *(r["id"] for r in rows))
            return list(self._events)

    @property
    def bounded(self) -> bool:
        """True when older events were left out."""
        return len(self._events) >= self.limit
