"""The single writer: one thread owns the only write connection.

SQLite allows one writer at a time; funnelling every write through one thread turns lock
contention into a queue, and lets the thread group everything queued into one transaction
(group commit), which is what makes throughput grow with concurrency instead of collapsing.

Results are handed back through ``concurrent.futures.Future`` objects resolved only after
the COMMIT returned, so a caller that answers "201 Created" or a face that shows an event
never gets ahead of what is on disk.

Rows are encoded (JSON, indexed fields) in the submitting thread: the writer thread then
spends its time in SQLite, which releases the GIL, so encoding the next batch overlaps with
writing this one (see :func:`insert_rows` for why it inserts with multi-row statements).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import functools
import itertools
import json
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, InvalidStateError
from pathlib import Path
from typing import Any

import orjson

from .. import fieldmap
from ..jsonio import escape_lone_surrogates as storable
from ..platform.findings import kind_of, severity_of
from ..platform.findings import storable as storable_findings
from ..records import ERROR, INVALID, LEGACY, VALID, EventRecord, RequestRecord
from . import metric_index, text_index
from .codec import Packer
from .database import DEFAULT_BUSY_TIMEOUT, StoreError, connect, explain_error
from .migrations import ERROR_VERDICT_KEYWORD, GROUP_DETAIL_PARAMS
from .retention import apply_retention

log = logging.getLogger(__name__)

VERDICTS = frozenset((VALID, INVALID, ERROR, LEGACY))
#: Store error kinds that fail every write alike (see explain_error): a group commit that
#: fails with one of these is not retried item by item.
ENVIRONMENTAL_KINDS = frozenset(("full", "locked", "readonly", "io", "corrupt", "notadb"))

#: Bounds for requests recorded with :meth:`StoreWriter.submit_unbounded_note`.
MAX_PENDING_NOTES = 10_000
NOTE_BODY_LIMIT = 64 * 1024
#: Total body bytes that pending notes may hold; beyond it, note bodies are dropped whole.
NOTE_BYTES_BUDGET = 32 * 1024 * 1024

#: Seconds since the last commit within which the writer counts as busy and may linger.
LINGER_BUSY = 0.05

#: Texts of committed events the writer holds for the free-text index at most (~3 MB of
#: realistic events: two of its chunks); older ones that wait are read back from the table
#: when indexed (~3 us each, against ~40 us for indexing one; 8,192 held cost 12 MB of RSS).
HELD_TEXTS = 2048

#: Writer connection tuning; user pragmas passed to StoreWriter override these.
#: 4 MiB of page cache (1,024 pages): a write touches the right edge of the events table and
#: one path down each index, and pages it misses come from the OS's cache in microseconds.
#: Writing into a million-event store measured the same CPU per event with 16, 8 and 4 MiB
#: (docs/performance.md), and the page cache is most of the store process's memory.
WRITER_PRAGMAS = {"cache_size": -4096, "temp_store": "MEMORY"}

_REQUEST_COLUMNS = (
    "id, received_at, method, path, query, headers, body, remote, request_id, status, reason,"
    " response_body, hasty, event_count, stored_events, error, note, chaos"
)
_EVENT_COLUMNS = (
    "id, request_id, idx, received_at, verdict, stream, schema_uri, schema_title, schema_version,"
    " action, session_id, pageview_id, meta_id, dt, event, fills, errors, errors_text, message,"
    " explanation_id, findings, platform, retracts"
)
#: What the writer inserts: encode_event's columns, and the count of the event's findings
#: (one per kind) that are not info, known once the findings are linked.
_STORED_EVENT_COLUMNS = _EVENT_COLUMNS + ", problems"
#: Positions in an events row (see encode_event).
_RECEIVED_AT, _VERDICT, _STREAM, _SESSION, _PAGEVIEW = 3, 4, 5, 10, 11
_EVENT, _FILLS, _EXPLANATION, _FINDINGS, _PLATFORM, _RETRACTS = 14, 15, 19, 20, 21, 22
#: Positions in a requests row (see encode_request).
_HEADERS, _BODY = 5, 6
#: Rows per multi-row INSERT; the remainder of a batch goes in the smaller sizes, so a
#: handful of statement texts covers every batch (and stays in the statement cache).
_CHUNK_SIZES = (1024, 256, 64, 16, 4, 1)


@functools.lru_cache(maxsize=32)
def _insert_sql(table: str, columns: str, rows: int) -> str:
    n = columns.count(",") + 1
    one = "(" + ",".join("?" * n) + ")"
    return f"INSERT INTO {table} ({columns}) VALUES " + ",".join([one] * rows)


def insert_rows(conn: sqlite3.Connection, table: str, columns: str, rows: list[list[Any]]) -> None:
    """Insert rows with multi-row INSERTs rather than executemany.

    executemany releases and re-takes the GIL around every row; while another thread is
    busy in Python (the event loop validating the next request) each re-take waits for a
    GIL switch interval, which measured 8x slower. One statement of 1024 rows runs in one
    sqlite3_step: one GIL hand-off per thousand rows.
    """
    i, n = 0, len(rows)
    max_rows = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // (columns.count(",") + 1)
    for size in _CHUNK_SIZES:
        if n - i < size or size > max_rows:
            continue
        sql = _insert_sql(table, columns, size)
        while n - i >= size:
            conn.execute(sql, list(itertools.chain.from_iterable(rows[i : i + size])))
            i += size


_OPTS = orjson.OPT_NON_STR_KEYS


def _json_default(obj: Any) -> Any:
    if isinstance(obj, set | frozenset):
        return sorted(obj, key=repr)
    if isinstance(obj, bytes | bytearray | memoryview):
        return bytes(obj).decode("utf-8", "backslashreplace")
    return str(obj)


def dumps(value: Any) -> str:
    """JSON text for storage.

    orjson is fast but refuses integers beyond 64 bits; the stdlib handles those exactly.
    Such text is stored with a leading space (still valid JSON) so that :func:`loads` knows
    to decode it with the stdlib too instead of turning big integers into floats.
    """
    try:
        return orjson.dumps(value, default=_json_default, option=_OPTS).decode()
    except TypeError:
        return " " + storable(json.dumps(value, ensure_ascii=False, default=_json_default))


def _storable_row(row: list[Any]) -> list[Any]:
    """Make every text value of an encoded row storable (see :func:`storable`)."""
    for i, value in enumerate(row):
        if value.__class__ is str and not value.isascii():
            row[i] = storable(value)
    return row


def loads(text: str | bytes | None, empty: Any = None) -> Any:
    if text is None:
        return empty
    if isinstance(text, str) and text.startswith(" "):
        return json.loads(text)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _dumps_or_null(value: Any) -> str | None:
    return dumps(value) if value else None


def _opt_str(value: Any) -> str | None:
    return value if value is None or isinstance(value, str) else str(value)


def indexed_fields(received: Any, fills: Mapping[str, Any] | None) -> dict[str, str | None]:
    """The filterable values of an event (see :mod:`mpsandbox.fieldmap`), by column."""
    return fieldmap.indexed(received, fills)._asdict()


def _as_bytes(value: Any) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    return bytes(value)


def encode_request(r: RequestRecord, stored_events: int) -> list[Any]:
    """A requests row with the id left as None for the writer to assign."""
    headers = dumps([[_opt_str(k), _opt_str(v)] for k, v in (r.headers or ())])
    row = [
        None,
        float(r.received_at),
        _opt_str(r.method),
        _opt_str(r.path),
        _opt_str(r.query),
        headers,
        _as_bytes(r.body),
        _opt_str(r.remote),
        _opt_str(r.request_id),
        None if r.status is None else int(r.status),
        _opt_str(r.reason),
        _as_bytes(r.response_body),
        1 if r.hasty else 0,
        int(r.event_count or 0),
        stored_events,
        _opt_str(r.error),
        _opt_str(r.note),
        None if r.chaos is None else dumps(r.chaos),
    ]
    return _storable_row(row)


#: id(explanation) -> (explanation, its JSON text). The pipeline hands every event of a
#: schema the same explanation dict (copied before any per-event change), so its text is
#: encoded once per schema instead of once per event. The dict is kept alive with its text,
#: so an id cannot be reused while cached.
_EXPLANATION_TEXT: dict[int, tuple[Any, str | None]] = {}
_EXPLANATION_CACHE_MAX = 256


def _explanation_text(explanation: Any) -> str | None:
    key = id(explanation)
    hit = _EXPLANATION_TEXT.get(key)
    if hit is not None and hit[0] is explanation:
        return hit[1]
    text = _dumps_or_null(explanation)
    if isinstance(explanation, dict):
        if len(_EXPLANATION_TEXT) >= _EXPLANATION_CACHE_MAX:
            _EXPLANATION_TEXT.clear()
        _EXPLANATION_TEXT[key] = (explanation, text)
    return text


def encode_event(e: EventRecord) -> list[Any]:
    """An events row with id and request_id left as None for the writer to assign.

    The event JSON and the explanation are plain text here: the writer packs the one and
    turns the other into an ``explanations`` id as it inserts (see
    ``StoreWriter._stored_events``).
    """
    verdict = e.verdict
    if verdict not in VERDICTS:
        raise ValueError(f"unknown verdict {verdict!r} (expected one of {sorted(VERDICTS)})")
    fills = e.fills
    action, session_id, pageview_id, platform, meta_id, dt = fieldmap.indexed(e.received, fills)
    errors = e.errors
    row = [
        None,
        None,
        int(e.index),
        float(e.received_at),
        verdict,
        _opt_str(e.stream),
        _opt_str(e.schema_uri),
        _opt_str(e.schema_title),
        _opt_str(e.schema_version),
        action,
        session_id,
        pageview_id,
        meta_id,
        dt,
        dumps(e.received),
        dumps(fills) if fills else None,
        dumps(errors) if errors else None,
        _opt_str(e.errors_text),
        _opt_str(e.message),
        _explanation_text(e.explanation),
        dumps(storable_findings(e.findings)) if e.findings else None,
        platform,
        dumps(e.retracts) if e.retracts else None,
    ]
    return _storable_row(row)


#: (schema_title, schema_version, data_path, keyword, detail): an error group's identity.
GroupKey = tuple[str, str, str, str, str]
_LINK_COLUMNS = "group_id, event_id, n"
#: Group ids the writer remembers; beyond this many distinct groups it starts over.
MAX_CACHED_GROUPS = 50_000


def _text(value: Any) -> str | None:
    return storable(value) if isinstance(value, str) else None


_KEYS_MEMO: dict[tuple[Any, ...], list[tuple[GroupKey, str | None]]] = {}
#: At most this many entries of at most this many characters of errors JSON (~8 MiB).
_KEYS_MEMO_SIZE = 4096
_KEYS_MEMO_TEXT = 2048


def error_group_keys(row: list[Any]) -> list[tuple[GroupKey, str | None]]:
    """:func:`group_keys_of`, memoised on what it reads: the same failure tends to repeat,
    event after event, with byte-identical errors."""
    errors = row[16]
    if errors is None or len(errors) > _KEYS_MEMO_TEXT:
        return group_keys_of(row)
    memo_key = (row[7], row[8], errors, row[4], row[18])
    keys = _KEYS_MEMO.get(memo_key)
    if keys is None:
        if len(_KEYS_MEMO) >= _KEYS_MEMO_SIZE:
            _KEYS_MEMO.clear()
        keys = _KEYS_MEMO[memo_key] = group_keys_of(row)
    return keys


def group_keys_of(row: list[Any]) -> list[tuple[GroupKey, str | None]]:
    """The error groups of an encoded events row, each with its message; [] for none.

    Must agree with the backfill in migration 0002: AJV errors (objects in the errors
    array) group by schema, dataPath, keyword and detail (the missing/extra property for
    required/additionalProperties); an event with verdict "error" and no such errors forms
    a group of its own keyed by its message.
    """
    title = row[7] or ""
    version = row[8] or ""
    errors: Any = None
    if row[16] is not None:
        try:
            errors = loads(row[16])
        except ValueError:
            errors = None
    if not isinstance(errors, list):
        errors = []
    if not errors:
        if row[4] != ERROR:
            return []
        message = _text(row[18])
        return [((title, version, "", ERROR_VERDICT_KEYWORD, message or ""), message)]
    keys = []
    for e in errors:
        if not isinstance(e, dict):
            continue
        keyword = _text(e.get("keyword")) or ""
        detail = None
        param = GROUP_DETAIL_PARAMS.get(keyword)
        if param is not None:
            params = e.get("params")
            if isinstance(params, dict):
                detail = _text(params.get(param))
        key = (title, version, _text(e.get("dataPath")) or "", keyword, detail or "")
        keys.append((key, _text(e.get("message"))))
    return keys


def _install_fast_binding() -> None:
    """Register identity adapters for the two non-"base" types the writer binds.

    Python's sqlite3 module looks for an adapter for every parameter that is not exactly
    int, float, str or bytearray; for None and bytes that failed lookup formats and discards
    an AttributeError, about 0.6 microseconds per parameter, which made binding NULLs the
    largest single cost of an insert. An adapter that returns its argument unchanged keeps
    the values and their storage exactly as before, only faster. Adapters are process-wide,
    hence identity only, and an adapter someone else registered for these types is kept.
    """
    for t in (type(None), bytes):
        if (t, sqlite3.PrepareProtocol) not in sqlite3.adapters:
            sqlite3.register_adapter(t, _identity)


def _identity(value: Any) -> Any:
    return value


class BacklogFull(Exception):
    """The writer holds as many uncommitted events as allowed; answer 503 and retry later."""


class _Done:
    """A future's two setters, calling ``fn(result, exception)`` at once: what the store
    process gives a write whose answer it only forwards (a Future's lock, condition and
    callback list cost more than the rest of a 1-event request's bookkeeping)."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[Any, BaseException | None], Any]) -> None:
        self.fn = fn

    def set_result(self, result: Any) -> None:
        self.fn(result, None)

    def set_exception(self, exc: BaseException) -> None:
        self.fn(None, exc)


class _Write:
    __slots__ = ("event_rows", "future", "note_bytes", "request_row")

    def __init__(
        self,
        request_row: list[Any],
        event_rows: list[list[Any]],
        note_bytes: int | None,
        future: Future | _Done | None = None,
    ) -> None:
        self.request_row = request_row
        self.event_rows = event_rows
        #: None for ordinary writes; body bytes held for a note (to release its budget).
        self.note_bytes = note_bytes
        self.future: Any = Future() if future is None else future


class _Call:
    __slots__ = ("fn", "future")

    def __init__(self, fn: Callable[[sqlite3.Connection], Any]) -> None:
        self.fn = fn
        self.future: Future = Future()


def _resolve(fut: Future, result: Any) -> None:
    # A caller may have cancelled (client went away); the data is still written.
    with contextlib.suppress(InvalidStateError):
        fut.set_result(result)


def _reject(fut: Future, exc: BaseException) -> None:
    with contextlib.suppress(InvalidStateError):
        fut.set_exception(exc)


_FINDING_COLUMNS = "kind, event_id, severity"


#: kind -> (kind and severity as stored, whether a problem) of the findings stored as
#: ``[kind, facts]``, whose severity is their kind's: what _finding_links asks per finding.
_KIND_LINKS: dict[str, tuple[str, str, bool]] = {}
_KIND_LINKS_MAX = 1024


def _kind_link(entry: Any, kind: str) -> tuple[str, str, bool]:
    severity = severity_of(entry)
    return storable(kind), storable(severity), severity != "info"


def _finding_links(rows: list[list[Any]]) -> tuple[list[list[Any]], dict[int, int], dict[int, int]]:
    """One event_findings row per (kind, event), so finding filters read an index.

    Also returns, per event id, how many of its findings are problems (not info), for the
    sessions summary, and how many of its links are (the event's ``problems`` column, which
    summaries show and ``has:finding`` reads), so the findings JSON is parsed once per event.
    """
    links: list[list[Any]] = []
    problems: dict[int, int] = {}
    flagged: dict[int, int] = {}
    memo = _KIND_LINKS
    for row in rows:
        text = row[_FINDINGS]
        if text is None:
            continue
        event_id = row[0]
        seen: set[str] = set()
        n_problems = n_flagged = 0
        for f in loads(text, []):
            if type(f) is list and len(f) == 2 and type(f[0]) is str:
                kind = f[0]
                link = memo.get(kind)
                if link is None:
                    if len(memo) >= _KIND_LINKS_MAX:
                        memo.clear()
                    link = memo[kind] = _kind_link(f, kind)
            else:
                kind = kind_of(f)
                if kind is None:
                    continue
                link = _kind_link(f, kind)
            if link[2]:
                n_problems += 1
            if kind not in seen:
                seen.add(kind)
                links.append([link[0], event_id, link[1]])
                if link[2]:
                    n_flagged += 1
        if n_problems:
            problems[event_id] = n_problems
        if n_flagged:
            flagged[event_id] = n_flagged
    return links, problems, flagged


def _summarise_sessions(
    conn: sqlite3.Connection, rows: list[list[Any]], problems: dict[int, int]
) -> None:
    """Fold the batch's events into the sessions summary (one upsert per session);
    ``problems`` counts each event's non-info findings (see _finding_links)."""
    sessions: dict[str, list[Any]] = {}
    pageviews: set[tuple[str, str]] = set()
    streams: dict[tuple[str, str], int] = {}
    for row in rows:
        sid = row[_SESSION]
        if sid is None:
            continue
        at = row[_RECEIVED_AT]
        findings = problems.get(row[0], 0)
        s = sessions.get(sid)
        if s is None:
            sessions[sid] = [sid, row[_PLATFORM], at, at, 1, findings]
        else:
            s[1] = s[1] or row[_PLATFORM]
            s[2], s[3] = min(s[2], at), max(s[3], at)
            s[4] += 1
            s[5] += findings
        if row[_PAGEVIEW] is not None:
            pageviews.add((sid, row[_PAGEVIEW]))
        if row[_STREAM] is not None:
            key = (sid, row[_STREAM])
            streams[key] = streams.get(key, 0) + 1
    if not sessions:
        return
    conn.executemany(
        "INSERT INTO sessions (session_id, platform, first_seen, last_seen, events, findings)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(session_id) DO UPDATE SET"
        " platform = coalesce(platform, excluded.platform),"
        " first_seen = min(first_seen, excluded.first_seen),"
        " last_seen = max(last_seen, excluded.last_seen),"
        " events = events + excluded.events, findings = findings + excluded.findings",
        list(sessions.values()),
    )
    if pageviews:
        conn.executemany("INSERT OR IGNORE INTO session_pageviews VALUES (?, ?)", pageviews)
    if streams:
        conn.executemany(
            "INSERT INTO session_streams VALUES (?, ?, ?) ON CONFLICT(session_id, stream)"
            " DO UPDATE SET events = events + excluded.events",
            [[sid, stream, n] for (sid, stream), n in streams.items()],
        )


def _apply_retractions(conn: sqlite3.Connection, rows: list[list[Any]]) -> None:
    """Remove findings that later events proved wrong from the events they were given to
    (found by meta.id, newest first), keeping each event's JSON, its links and its
    session's count in step."""
    for row in rows:
        if row[_RETRACTS] is None:
            continue
        for r in loads(row[_RETRACTS], []):
            if not isinstance(r, dict) or not r.get("meta_id") or not r.get("kind"):
                continue
            target = conn.execute(
                "SELECT id, unpack_text(findings), session_id FROM events"
                " WHERE meta_id = ? AND id < ?"
                " ORDER BY id DESC LIMIT 1",
                (storable(str(r["meta_id"])), row[0]),
            ).fetchone()
            if target is None or target[1] is None:
                continue
            event_id, text, session_id = target
            findings = [f for f in loads(text, []) if kind_of(f) is not None]
            kept = [f for f in findings if kind_of(f) != r["kind"]]
            if len(kept) == len(findings):
                continue
            removed = sum(
                1 for f in findings if kind_of(f) == r["kind"] and severity_of(f) != "info"
            )
            # Plain text (readers take it as it is): retractions are rare, packing can wait.
            conn.execute(
                "UPDATE events SET findings = ? WHERE id = ?",
                (dumps(kept) if kept else None, event_id),
            )
            link = conn.execute(
                "DELETE FROM event_findings WHERE kind = ? AND event_id = ? RETURNING severity",
                (r["kind"], event_id),
            ).fetchall()
            if link and link[0][0] != "info":
                conn.execute(
                    "UPDATE events SET problems = max(0, problems - 1) WHERE id = ?", (event_id,)
                )
            if session_id is not None and removed:
                conn.execute(
                    "UPDATE sessions SET findings = max(0, findings - ?) WHERE session_id = ?",
                    (removed, session_id),
                )


def _index_experiments(conn: sqlite3.Connection, rows: list[list[Any]]) -> None:
    """Note the events just inserted (ids assigned) that the metrics of an experiment read
    (metric_index), from their text as received. (The free-text index follows behind the
    commits: see StoreWriter.index_behind.)"""
    metric_index.feed(conn, [(row[0], row[_EVENT]) for row in rows])


def _nothing(conn: sqlite3.Connection) -> None:
    """What a flush runs: a call that changes nothing (so the writer forgets nothing)."""


def _reset(conn: sqlite3.Connection) -> dict[str, int]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        text_index.clear(conn)
        # Links first, while they are one truncation, rather than one cascade per event.
        conn.execute("DELETE FROM error_links")
        conn.execute("DELETE FROM error_groups")
        conn.execute("DELETE FROM event_findings")
        conn.execute("DELETE FROM event_experiments")
        conn.execute("DELETE FROM flips")
        conn.execute("DELETE FROM revalidations")
        for table in ("sessions", "session_pageviews", "session_streams"):
            conn.execute(f"DELETE FROM {table}")
        events = conn.execute("DELETE FROM events").rowcount
        requests = conn.execute("DELETE FROM requests").rowcount
        # Dictionaries stay: packed values elsewhere (and readers' caches) may name them.
        conn.execute("DELETE FROM explanations")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return {"events": events, "requests": requests}


def probe_write(conn: sqlite3.Connection, path: str) -> None:
    """Commit one real write, so a store that cannot be written fails the start.

    Opening and migrating an up-to-date database writes nothing: a read-only file (or a
    folder where the journal cannot be created) would start "ready" and then refuse every
    event, and a hasty 202 would be lost. Rewriting the header's user_version with its own
    value changes nothing, yet goes through the journal and the file like any commit.
    """
    try:
        conn.execute("BEGIN IMMEDIATE")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        conn.execute(f"PRAGMA user_version = {int(version)}")
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise explain_error(exc, path, "write to") from exc


def _group_id(conn: sqlite3.Connection, key: GroupKey, message: str | None) -> int:
    """The id of an error group, created (with ``message`` as its sample) if new."""
    row = conn.execute(
        "SELECT id FROM error_groups WHERE schema_title = ? AND schema_version = ?"
        " AND data_path = ? AND keyword = ? AND detail = ?",
        key,
    ).fetchone()
    if row is not None:
        return row[0]
    cur = conn.execute(
        "INSERT INTO error_groups (schema_title, schema_version, data_path, keyword, detail,"
        " message) VALUES (?, ?, ?, ?, ?, ?)",
        (*key, message),
    )
    return cur.lastrowid


def _next_id(conn: sqlite3.Connection, table: str) -> int:
    # Read inside the write transaction, so it is exact even if another process wrote.
    return conn.execute(
        "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = ?), 0),"
        f" coalesce((SELECT max(id) FROM {table}), 0))",
        (table,),
    ).fetchone()[0]


class StoreWriter:
    """Owns the write connection; see the module docstring for why.

    ``on_commit(event_row_ids)`` is called from the writer thread after every commit that
    wrote rows (the list is empty when only event-less requests were written); callers
    hop to their own thread or loop themselves, and exceptions are logged, not raised.
    ``retention=(max_events, max_age_s)`` (either may be None) runs retention every
    ``retention_interval`` seconds and after every ``retention_every_events`` committed
    events. ``pragmas`` are applied to the write connection after migrations.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        max_backlog_events: int = 100_000,
        on_commit: Callable[[list[int]], Any] | None = None,
        retention: tuple[int | None, float | None] | None = None,
        retention_interval: float = 5.0,
        retention_every_events: int | None = None,
        retention_chunk: int = 20_000,
        batch_events: int = 5_000,
        batch_requests: int = 2_000,
        linger: float = 0.002,
        linger_events: int = 128,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        pragmas: Mapping[str, Any] | None = None,
        max_pending_notes: int = MAX_PENDING_NOTES,
    ) -> None:
        self.path = str(path)
        self.max_backlog_events = max_backlog_events
        self.on_commit = on_commit
        self.batch_events = max(1, batch_events)
        self.batch_requests = max(1, batch_requests)
        #: Group commit under load: when the previous commit ended less than LINGER_BUSY
        #: seconds ago and fewer than `linger_events` are queued, wait up to `linger` seconds
        #: for more. Every commit rewrites a page of each of the 13 B-trees it touches, so a
        #: commit of 4 requests writes several times the bytes per event of one of 32; an idle
        #: writer commits at once.
        self.linger = max(0.0, linger)
        self.linger_events = linger_events
        self._last_commit = 0.0
        self.busy_timeout = busy_timeout
        self.pragmas = {**WRITER_PRAGMAS, **(pragmas or {})}
        self.max_pending_notes = max_pending_notes
        if retention is not None:
            max_events, max_age_s = retention
            if max_events is None and max_age_s is None:
                retention = None
            elif (max_events is not None and max_events < 0) or (
                max_age_s is not None and max_age_s <= 0
            ):
                raise ValueError("retention needs max_events >= 0 and max_age_s > 0")
        self.retention = retention
        self.retention_interval = retention_interval
        if retention_every_events is None:
            base = retention[0] if retention and retention[0] is not None else 100_000
            retention_every_events = min(10_000, max(100, base // 10))
        self.retention_every_events = retention_every_events
        self.retention_chunk = retention_chunk

        #: The most recent write/retention failure (a StoreError), for status displays.
        self.last_error: StoreError | None = None
        #: The failure of the latest write, None once one succeeds (a full disk that has
        #: space again, a lock released): what readiness reports.
        self.write_error: StoreError | None = None
        #: Always None: a thread cannot die alone (the interface of ProcessStoreWriter).
        self.fatal: StoreError | None = None
        self.on_fatal: Any = None

        self._cond = threading.Condition()
        self._queue: deque[_Write | _Call] = deque()
        self._thread: threading.Thread | None = None
        #: Driven by the thread that called start_inline(), not by a thread of its own.
        self._inline = False
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._closing = False
        self._conn: sqlite3.Connection | None = None
        # Counters, guarded by _cond.
        self._pending_events = 0
        self._pending_requests = 0
        self._pending_notes = 0
        self._pending_note_bytes = 0
        self._committed_requests = 0
        self._committed_events = 0
        self._committed_batches = 0
        self._failed_batches = 0
        self._dropped_notes = 0
        self._truncated_notes = 0
        self._retention_runs = 0
        self._retention_failures = 0
        self._retained_deleted_events = 0
        # Retention scheduling, writer thread only.
        self._events_since_retention = 0
        self._next_retention = 0.0
        self._retention_more = False
        #: Error group ids by key, writer thread only; cleared on reset.
        self._groups: dict[GroupKey, int] = {}
        #: Explanation ids by text, writer thread only; cleared on reset and retention.
        self._explanations: dict[str, int] = {}
        #: ... and those the open transaction inserted (kept once it commits).
        self._new_explanations: dict[str, int] = {}
        #: (id, text as received) of the events committed since the free-text index was
        #: last known to be complete up to a point, ascending, for index_behind: every
        #: stored event from the first id on (emptied whenever something else may have
        #: deleted events: a call, retention). Writer thread only.
        self._behind: list[tuple[int, str]] = []
        #: The index's ``upto`` as last read or written; None: read it again.
        self._indexed_upto: int | None = None
        #: An id past every event stored (read when the writer opens, moved by each
        #: commit): what index_behind indexes up to. Ids are never reused (AUTOINCREMENT).
        self._stored_end = 0
        #: No indexing before this time (monotonic) after the index failed.
        self._index_retry_at = 0.0
        #: Packers of the large columns (see codec.py), writer thread only.
        self._event_packer = Packer("events.event")
        self._findings_packer = Packer("events.findings")
        self._fills_packer = Packer("events.fills")
        self._body_packer = Packer("requests.body")
        self._headers_packer = Packer("requests.headers")
        self._packers = (
            self._event_packer,
            self._findings_packer,
            self._fills_packer,
            self._body_packer,
            self._headers_packer,
        )

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Open (and migrate) the database in the writer thread; raise StoreError on failure.

        Waiting for the open here means a bad path is reported by whoever starts the
        server, not discovered later by the first request.
        """
        _install_fast_binding()
        with self._cond:
            started = self._thread is not None
            if not started and self._closing:
                raise StoreError(
                    f"The writer for {self.path} was closed; create a new one",
                    path=self.path,
                    kind="closed",
                )
            if not started:
                self._thread = threading.Thread(
                    target=self._run,
                    name=f"mpsandbox-store-writer({Path(self.path).name})",
                    daemon=True,
                )
                self._thread.start()
        self._ready.wait()
        if self._start_error is not None:
            raise self._start_error

    def close(self, timeout: float | None = 30) -> None:
        """Commit everything queued, then stop. Safe to call twice, or without start()."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            thread = self._thread
        if thread is None:
            self._fail_queued(self._closed_error())
            return
        thread.join(timeout)
        if thread.is_alive():
            raise StoreError(
                f"The writer for {self.path} did not finish within {timeout} s; "
                f"{self.stats()['queued_events']} events were still being written",
                path=self.path,
                kind="timeout",
            )

    def __enter__(self) -> StoreWriter:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def running(self) -> bool:
        if self._inline:
            return self._conn is not None and not self._closing
        return self._thread is not None and self._thread.is_alive() and not self._closing

    @property
    def state(self) -> str:
        """ "ok" or "closed" (see ProcessStoreWriter.state)."""
        return "ok" if self.running else "closed"

    # -- driven by its caller (the store process) -------------------------------------------

    def start_inline(self) -> None:
        """Open (and migrate) the database in the calling thread, which then drives the
        writer itself: it queues with `submit_rows`, then calls `work_inline`.

        For the store process, whose only job is this writer: there a thread of its own
        meant a hand-off per request (a condition variable's notify, the wait for the
        interpreter lock) for nothing. Raises StoreError as `start` does."""
        _install_fast_binding()
        with self._cond:
            if self._thread is not None or self._inline or self._closing:
                raise StoreError(
                    f"The writer for {self.path} was started or closed already",
                    path=self.path,
                    kind="closed",
                )
            self._inline = True
        self._open()

    def work_inline(self) -> None:
        """Write everything queued (group commits, as the writer thread does), then apply
        retention if it is due."""
        while True:
            with self._cond:
                if not self._queue:
                    break
                work = self._take()
            if isinstance(work, _Call):
                self._run_call(work)
            else:
                self._write_batch(work)
        if not self._closing and self._retention_due():
            self._periodic_retention()

    def inline_wait(self) -> float | None:
        """Seconds the driver may wait for work before retention is due (None: forever)."""
        if self.retention is None:
            return None
        if self._retention_more:
            return 0.0
        return max(0.0, self._next_retention - time.monotonic())

    def inline_linger(self) -> float:
        """Seconds the driver may wait for more writes before committing what it has: the
        writer thread's `linger`, under the same conditions (busy, a small batch so far)."""
        with self._cond:
            if (
                not self.linger
                or time.monotonic() - self._last_commit > LINGER_BUSY
                or self._pending_events >= self.linger_events
                or not self._queue
                or not isinstance(self._queue[0], _Write)
            ):
                return 0.0
        return self.linger

    @property
    def queued_events(self) -> int:
        with self._cond:
            return self._pending_events

    def index_behind(self, busy: bool = False) -> bool:
        """Index the free text of events already committed, in a transaction of its own;
        True when it indexed something (call again while it does and the writer is idle).

        The acknowledgement of a write does not wait for this (see text_index): the driver
        calls it between rounds. An idle writer indexes once FEED_EVERY events wait, a
        chunk of them per call; a ``busy`` one (more writes waiting) only once MAX_BEHIND
        wait, and then enough to be FEED_EVERY below it, so under any load readers never
        scan much more than MAX_BEHIND unindexed events. A failure is logged and retried
        later: readers find the events by the scan meanwhile."""
        conn = self._conn
        behind = self._behind
        if conn is None or time.monotonic() < self._index_retry_at:
            return False
        step = text_index.FEED_EVERY
        try:
            start, end = self._unindexed()
            waiting = end - start
            if busy:
                if waiting < text_index.MAX_BEHIND:
                    return False
                step = waiting - text_index.MAX_BEHIND + step
            elif waiting < step:
                return False
            conn.execute("BEGIN IMMEDIATE")
            upto = text_index.index_upto(conn, min(start + step, end), behind)
            conn.execute("COMMIT")
        except Exception as exc:
            self._rollback()
            log.warning("indexing the free text of %s failed (%s); retrying later", self.path, exc)
            self._index_retry_at = time.monotonic() + 5.0
            self._forget_behind()
            return False
        self._indexed_upto = upto
        done = bisect.bisect_left(behind, upto, key=lambda item: item[0])
        del behind[:done]
        return upto > start

    def index_pending(self) -> bool:
        """Would an idle `index_behind` index something (FEED_EVERY events wait)?"""
        if self._conn is None or time.monotonic() < self._index_retry_at:
            return False
        try:
            start, end = self._unindexed()
        except sqlite3.Error:
            return False
        return end - start >= text_index.FEED_EVERY

    def _unindexed(self) -> tuple[int, int]:
        """(start, end): the ids of the stored events the free-text index lacks, from the
        index's ``upto`` (read again after it was forgotten) to past the newest stored."""
        if self._indexed_upto is None:
            self._indexed_upto = text_index.indexed_upto(self._conn)
        return self._indexed_upto, self._stored_end

    def _forget_behind(self) -> None:
        """Forget the texts held for the index (events may have been deleted meanwhile):
        it reads what it needs from the table."""
        self._behind = []
        self._indexed_upto = None

    def close_inline(self) -> None:
        """Write what is queued, then close the connection."""
        with self._cond:
            self._closing = True
        try:
            if self._conn is not None:
                self.work_inline()
                while self.index_behind():  # a store left complete (as its size on disk)
                    pass
        finally:
            conn, self._conn = self._conn, None
            if conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("PRAGMA optimize")
                conn.close()

    # -- submitting ------------------------------------------------------------------------

    def reserve_ok(self, n: int) -> bool:
        """Would ``n`` more events fit in the backlog right now? (Advisory: racy by nature.)"""
        with self._cond:
            return not self._closing and self._pending_events + n <= self.max_backlog_events

    def submit(self, request: RequestRecord, events: list[EventRecord]) -> Future:
        """Queue a request and its events.

        The future resolves to ``(request_row_id, [event_row_ids])`` once committed, or
        fails with StoreError. Raises BacklogFull (nothing queued) if the events would
        push the uncommitted backlog past ``max_backlog_events``.
        """
        n = len(events)
        if not self.reserve_ok(n):
            self._raise_refusal(n)
        try:
            request_row = encode_request(request, n)
            event_rows = [encode_event(e) for e in events]
        except (TypeError, ValueError, OverflowError, AttributeError) as exc:
            raise self._malformed(exc) from exc
        return self.submit_rows(request_row, event_rows)

    def submit_rows(self, request_row: list[Any], event_rows: list[list[Any]]) -> Future:
        """`submit` for rows already encoded (by `encode_request`/`encode_event`)."""
        item = _Write(request_row, event_rows, None)
        self._queue_write(item)
        return item.future

    def submit_rows_then(
        self,
        request_row: list[Any],
        event_rows: list[list[Any]],
        on_done: Callable[[Any, BaseException | None], Any],
    ) -> None:
        """`submit_rows` as the store process submits the rows the intake process sent:
        ``on_done(result, None)`` or ``on_done(None, exception)`` is called (from whoever
        drives the writer) instead of resolving a future."""
        self._queue_write(_Write(request_row, event_rows, None, _Done(on_done)))

    def _queue_write(self, item: _Write) -> None:
        n = len(item.event_rows)
        with self._cond:
            if self._closing or self._pending_events + n > self.max_backlog_events:
                self._raise_refusal(n)
            self._pending_events += n
            self._pending_requests += 1
            self._queue.append(item)
            self._cond.notify()

    def _malformed(self, exc: BaseException) -> StoreError:
        return StoreError(
            f"Could not store a request in {self.path}: the record is malformed ({exc}); "
            "this is a bug in the caller",
            path=self.path,
            kind="data",
        )

    def _raise_refusal(self, n: int) -> None:
        if self._start_error is not None:
            raise self._start_error
        if self._closing:
            raise self._closed_error()
        raise BacklogFull(
            f"The store writer already holds {self._pending_events} uncommitted events "
            f"(limit {self.max_backlog_events}); {n} more do not fit. Retry shortly."
        )

    async def write(
        self, request: RequestRecord, events: list[EventRecord]
    ) -> tuple[int, list[int]]:
        return await asyncio.wrap_future(self.submit(request, events))

    def submit_async(
        self, request: RequestRecord, events: list[EventRecord]
    ) -> asyncio.Future[tuple[int, list[int]]]:
        """`submit` for a caller on an event loop: a future of the running loop (the
        Writer protocol, as ProcessStoreWriter.submit_async)."""
        return asyncio.wrap_future(self.submit(request, events))

    async def submit_async_sliced(
        self, request: RequestRecord, events: list[EventRecord]
    ) -> asyncio.Future[tuple[int, list[int]]]:
        """`submit_async` for a big batch: its events are encoded a few milliseconds at a
        time with the event loop free in between (slicing.py), then queued as rows."""
        from mpsandbox.slicing import map_in_slices

        n = len(events)
        if not self.reserve_ok(n):
            self._raise_refusal(n)

        def encode(start: int, end: int) -> list[list[Any]]:
            try:
                return [encode_event(e) for e in events[start:end]]
            except (TypeError, ValueError, OverflowError, AttributeError) as exc:
                raise self._malformed(exc) from exc

        try:
            request_row = encode_request(request, n)
        except (TypeError, ValueError, OverflowError, AttributeError) as exc:
            raise self._malformed(exc) from exc
        rows = await map_in_slices(n, encode)
        return asyncio.wrap_future(self.submit_rows(request_row, rows))

    def submit_unbounded_note(self, request: RequestRecord) -> Future:
        """Record a request without events, even when the backlog is full.

        Used for requests refused with 503, so the refusal itself is visible. Memory stays
        bounded: at most ``max_pending_notes`` are pending (more are dropped), bodies are cut
        to 64 KiB, and bodies are dropped whole once pending notes hold 32 MiB. Every drop
        or cut is counted in ``stats()``. The future resolves to the request row id, or to
        None when the note was dropped.
        """
        try:
            row = encode_request(request, 0)
        except (TypeError, ValueError, OverflowError, AttributeError) as exc:
            raise self._malformed(exc) from exc
        body = row[6] or b""
        with self._cond:
            if self._closing or self._pending_notes >= self.max_pending_notes:
                self._dropped_notes += 1
                dropped: Future = Future()
                dropped.set_result(None)
                return dropped
            keep = body[:NOTE_BODY_LIMIT]
            if self._pending_note_bytes + len(keep) > NOTE_BYTES_BUDGET:
                keep = b""
            if len(keep) < len(body):
                self._truncated_notes += 1
                mark = f"[body cut by the store: kept {len(keep)} of {len(body)} bytes]"
                row[16] = f"{row[16]} {mark}" if row[16] else mark
            row[6] = keep
            item = _Write(row, [], len(keep))
            self._pending_notes += 1
            self._pending_note_bytes += len(keep)
            self._pending_requests += 1
            self._queue.append(item)
            self._cond.notify()
        return item.future

    def run_in_writer(self, fn: Callable[[sqlite3.Connection], Any]) -> Future:
        """Run ``fn(connection)`` in the writer thread, after everything queued before it.

        For maintenance and tests. ``fn`` manages its own transactions (the connection is
        in autocommit mode) and must not keep the connection.
        """
        item = _Call(fn)
        with self._cond:
            if self._closing:
                raise self._closed_error()
            self._queue.append(item)
            self._cond.notify()
        return item.future

    def flush(self) -> Future:
        """A future that resolves once everything submitted before it has been handled."""
        return self.run_in_writer(_nothing)

    def reset(self) -> Future:
        """Delete every request and event; resolves to the numbers deleted.

        Ids keep increasing after a reset, so cursors held by faces stay meaningful.
        """
        return self.run_in_writer(_reset)

    def run_retention(self, max_events: int | None, max_age_s: float | None) -> Future:
        """Apply retention once, to completion; resolves to ``{"events", "requests"}`` deleted."""

        def run(conn: sqlite3.Connection) -> dict[str, int]:
            total = {"events": 0, "requests": 0}
            while True:
                result = apply_retention(
                    conn, max_events=max_events, max_age_s=max_age_s, chunk=self.retention_chunk
                )
                total["events"] += result["events"]
                total["requests"] += result["requests"]
                if not result["more"]:
                    return total

        return self.run_in_writer(run)

    def stats(self) -> dict[str, Any]:
        with self._cond:
            return {
                "running": self.running,
                "queued_events": self._pending_events,
                "queued_requests": self._pending_requests,
                "queued_notes": self._pending_notes,
                "committed_requests": self._committed_requests,
                "committed_events": self._committed_events,
                "committed_batches": self._committed_batches,
                "failed_batches": self._failed_batches,
                "dropped_notes": self._dropped_notes,
                "truncated_notes": self._truncated_notes,
                "retention_runs": self._retention_runs,
                "retention_failures": self._retention_failures,
                "retention_deleted_events": self._retained_deleted_events,
                "last_error": None if self.last_error is None else str(self.last_error),
            }

    # -- writer thread ---------------------------------------------------------------------

    def _closed_error(self) -> StoreError:
        return StoreError(
            f"The store writer for {self.path} is closed; nothing more can be written",
            path=self.path,
            kind="closed",
        )

    def _open(self) -> None:
        """Open (and migrate) the database, prove it writable and take up the stored
        dictionaries, in whichever thread drives the writer (its own, or the store
        process's); on failure, close, remember and raise the StoreError."""
        try:
            self._conn = connect(self.path, busy_timeout=self.busy_timeout, pragmas=self.pragmas)
            probe_write(self._conn, self.path)
            for packer in self._packers:
                packer.load(self._conn)
            top = self._conn.execute("SELECT max(id) FROM events").fetchone()[0]
            self._stored_end = (top or 0) + 1
        except BaseException as exc:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self._start_error = explain_error(exc, self.path, "open")
            with self._cond:
                self._closing = True
            self._ready.set()
            raise self._start_error from exc
        self._next_retention = time.monotonic() + self.retention_interval
        self._ready.set()

    def _run(self) -> None:
        try:
            self._open()
        except StoreError as exc:
            self._fail_queued(exc)
            return
        try:
            self._loop()
        except BaseException as exc:  # a bug: never leave callers waiting forever
            log.exception("store writer for %s stopped unexpectedly", self.path)
            self.last_error = StoreError(
                f"The store writer for {self.path} stopped unexpectedly ({exc!r}); "
                "restart mpsandbox and report a bug",
                path=self.path,
            )
            with self._cond:
                self._closing = True
            self._fail_queued(self.last_error)
        finally:
            conn, self._conn = self._conn, None
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA optimize")
            conn.close()

    def _fail_queued(self, exc: StoreError) -> None:
        with self._cond:
            items = list(self._queue)
            self._queue.clear()
            for item in items:
                if isinstance(item, _Write):
                    self._release(item)
        for item in items:
            _reject(item.future, exc)

    def _release(self, item: _Write) -> None:
        """Give back an item's backlog share (call with _cond held)."""
        self._pending_requests -= 1
        if item.note_bytes is None:
            self._pending_events -= len(item.event_rows)
        else:
            self._pending_notes -= 1
            self._pending_note_bytes -= item.note_bytes

    def _retention_due(self) -> bool:
        return self.retention is not None and (
            self._retention_more
            or self._events_since_retention >= self.retention_every_events
            or time.monotonic() >= self._next_retention
        )

    def _loop(self) -> None:
        while self.index_behind(busy=bool(self._queue)):  # what a killed writer left
            pass
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    if self.retention is None:
                        self._cond.wait()
                        continue
                    wait = 0.0 if self._retention_more else self._next_retention - time.monotonic()
                    if wait <= 0:
                        break
                    self._cond.wait(wait)
                if self._queue and self.linger:
                    self._linger()
                if not self._queue:
                    if self._closing:
                        return
                    work: list[_Write] | _Call | None = None
                else:
                    work = self._take()
            if isinstance(work, _Call):
                self._run_call(work)
            elif work:
                self._write_batch(work)
            while self.index_behind(busy=bool(self._queue)):
                pass
            if not self._closing and self._retention_due():
                self._periodic_retention()

    def _linger(self) -> None:
        """Wait briefly for a bigger batch when busy (see `linger`; _cond held)."""
        start = time.monotonic()
        if start - self._last_commit > LINGER_BUSY:
            return
        deadline = start + self.linger
        while (
            not self._closing
            and self._pending_events < self.linger_events
            and isinstance(self._queue[0], _Write)
        ):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._cond.wait(remaining)

    def _take(self) -> list[_Write] | _Call:
        """Everything writable at the head of the queue, up to the batch limits (_cond held)."""
        if isinstance(self._queue[0], _Call):
            return self._queue.popleft()
        batch: list[_Write] = []
        n = 0
        queue = self._queue
        while queue and isinstance(queue[0], _Write) and len(batch) < self.batch_requests:
            k = len(queue[0].event_rows)
            if batch and n + k > self.batch_events:
                break
            batch.append(queue.popleft())  # type: ignore[arg-type]
            n += k
        return batch

    def _rollback(self) -> None:
        conn = self._conn
        try:
            if conn is not None and conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error:
            log.exception("rollback failed on %s", self.path)

    def _write_batch(self, batch: list[_Write]) -> None:
        """Commit a batch; when it fails for a reason that may be one item's own (not a
        full disk, a lock or an I/O error, which would fail every item alike), commit the
        items one by one, so one bad request never costs its neighbours their writes."""
        try:
            done = self._commit_batch(batch)
        except Exception as exc:
            self._rollback()
            err = explain_error(exc, self.path, "write to")
            if len(batch) > 1 and err.kind not in ENVIRONMENTAL_KINDS:
                log.warning("a group commit failed (%s); writing its requests one by one", err)
                for item in batch:
                    self._write_batch([item])
                return
            log.error("%s", err)
            with self._cond:
                for item in batch:
                    self._release(item)
                self._failed_batches += 1
                self.last_error = self.write_error = err
            for item in batch:
                _reject(item.future, err)
            return
        self.write_error = None
        self._after_commit(batch, *done)

    def _commit_batch(
        self, batch: list[_Write]
    ) -> tuple[list[tuple[int, list[int]]], list[int], dict[GroupKey, int]]:
        """One transaction for the batch: (per item (request id, event ids), every event
        id, error groups created). Rolled back and raised on any failure."""
        conn = self._conn
        assert conn is not None
        results: list[tuple[int, list[int]]] = []
        event_ids: list[int] = []
        new_groups: dict[GroupKey, int] = {}
        try:
            conn.execute("BEGIN IMMEDIATE")
            req_id = _next_id(conn, "requests")
            ev_id = _next_id(conn, "events")
            request_rows = []
            event_rows: list[list[Any]] = []
            for item in batch:
                req_id += 1
                item.request_row[0] = req_id
                request_rows.append(item.request_row)
                ids = []
                for row in item.event_rows:
                    ev_id += 1
                    row[0] = ev_id
                    row[1] = req_id
                    ids.append(ev_id)
                event_rows.extend(item.event_rows)
                event_ids.extend(ids)
                results.append((req_id, ids))
            insert_rows(
                conn, "requests", _REQUEST_COLUMNS, [self._stored_request(r) for r in request_rows]
            )
            links, problems, flagged = _finding_links(event_rows)
            insert_rows(
                conn,
                "events",
                _STORED_EVENT_COLUMNS,
                self._stored_events(conn, event_rows, flagged),
            )
            if links:
                insert_rows(conn, "event_findings", _FINDING_COLUMNS, links)
            _index_experiments(conn, event_rows)
            for packer in self._packers:
                packer.train_if_ready(conn)
            # A legacy beacon is not validated: it has no errors to group.
            failed = [row for row in event_rows if row[4] in (INVALID, ERROR)]
            if failed:
                new_groups = self._link_errors(conn, failed)
            _summarise_sessions(conn, event_rows, problems)
            _apply_retractions(conn, event_rows)
            conn.execute("COMMIT")
        except Exception:
            self._rollback()  # before anyone else touches the connection
            self._after_rollback()
            raise
        for packer in self._packers:
            packer.committed()
        self._explanations.update(self._new_explanations)
        self._new_explanations = {}
        if event_rows:
            self._stored_end = event_rows[-1][0] + 1
        behind = self._behind
        behind.extend([(row[0], row[_EVENT]) for row in event_rows])
        if len(behind) > HELD_TEXTS:  # the older ones are read back when indexed
            del behind[: len(behind) - HELD_TEXTS]
        return results, event_ids, new_groups

    def _after_rollback(self) -> None:
        """Forget what the rolled-back transaction created (dictionaries, explanations)."""
        for packer in self._packers:
            packer.rolled_back()
        self._new_explanations = {}

    def _stored_request(self, row: list[Any]) -> list[Any]:
        """The requests row as stored: a copy with the headers and body packed (the item
        keeps the plain row, so a batch retried item by item packs again from it)."""
        stored = row.copy()
        stored[_HEADERS] = self._headers_packer.pack_text(row[_HEADERS])
        if row[_BODY] is not None:
            stored[_BODY] = self._body_packer.pack(row[_BODY])
        return stored

    def _stored_events(
        self, conn: sqlite3.Connection, rows: list[list[Any]], flagged: dict[int, int]
    ) -> list[list[Any]]:
        """The events rows as stored (see _STORED_EVENT_COLUMNS): copies with the event,
        fills and findings JSON packed, the explanation replaced by its id, and the count of
        problem findings (ids assigned). Here each row's plain event JSON is still at hand
        (``row[_EVENT]``), for anything that must read it as text at write time."""
        pack = self._event_packer.pack
        pack_findings = self._findings_packer.pack
        pack_fills = self._fills_packer.pack
        out = []
        last_use: dict[int, int] = {}
        for row in rows:
            stored = row.copy()
            stored[_EVENT] = pack(row[_EVENT].encode("utf-8"))
            if row[_FILLS] is not None:
                stored[_FILLS] = pack_fills(row[_FILLS].encode("utf-8"))
            if row[_FINDINGS] is not None:
                stored[_FINDINGS] = pack_findings(row[_FINDINGS].encode("utf-8"))
            stored.append(flagged.get(row[0], 0))
            text = row[_EXPLANATION]
            if text is not None:
                eid = self._explanation_id(conn, text)
                stored[_EXPLANATION] = eid
                last_use[eid] = row[0]
            out.append(stored)
        if last_use:
            conn.executemany(
                "UPDATE explanations SET last_event_id = max(last_event_id, ?) WHERE id = ?",
                [(event_id, eid) for eid, event_id in last_use.items()],
            )
        return out

    def _explanation_id(self, conn: sqlite3.Connection, text: str) -> int:
        """The id of an explanation's row, inserted on first use (one row per distinct
        explanation: the pipeline shares one per schema)."""
        eid = self._explanations.get(text) or self._new_explanations.get(text)
        if eid is None:
            row = conn.execute("SELECT id FROM explanations WHERE text = ?", (text,)).fetchone()
            if row is None:
                row = conn.execute(
                    "INSERT INTO explanations (text, last_event_id) VALUES (?, 0) RETURNING id",
                    (text,),
                ).fetchone()
            eid = self._new_explanations[text] = row[0]
            if len(self._explanations) >= MAX_CACHED_GROUPS:
                self._explanations.clear()
        return eid

    def _after_commit(
        self,
        batch: list[_Write],
        results: list[tuple[int, list[int]]],
        event_ids: list[int],
        new_groups: dict[GroupKey, int],
    ) -> None:
        if new_groups:
            # Only now: ids created by a transaction that rolled back must not be reused.
            if len(self._groups) + len(new_groups) > MAX_CACHED_GROUPS:
                self._groups.clear()
            self._groups.update(new_groups)
        self._last_commit = time.monotonic()
        with self._cond:
            for item in batch:
                self._release(item)
            self._committed_batches += 1
            self._committed_requests += len(batch)
            self._committed_events += len(event_ids)
        self._events_since_retention += len(event_ids)
        for item, result in zip(batch, results, strict=True):
            _resolve(item.future, result if item.note_bytes is None else result[0])
        if self.on_commit is not None:
            try:
                self.on_commit(event_ids)
            except Exception:
                log.exception("on_commit callback failed")

    def _link_errors(self, conn: sqlite3.Connection, rows: list[list[Any]]) -> dict[GroupKey, int]:
        """Link failed events (rows with ids assigned) to their error groups, creating
        groups as needed; return the groups created, for the cache once committed."""
        cache = self._groups
        created: dict[GroupKey, int] = {}
        links: list[list[Any]] = []
        for row in rows:
            keys = error_group_keys(row)
            if not keys:
                continue
            counts: dict[int, int] = {}
            for key, message in keys:
                gid = cache.get(key) or created.get(key)
                if gid is None:
                    gid = created[key] = _group_id(conn, key, message)
                counts[gid] = counts.get(gid, 0) + 1
            event_id = row[0]
            links.extend([gid, event_id, n] for gid, n in counts.items())
        if links:
            insert_rows(conn, "error_links", _LINK_COLUMNS, links)
        return created

    def _run_call(self, call: _Call) -> None:
        conn = self._conn
        assert conn is not None
        # A call may delete explanations and events (reset, retention): look them up afresh.
        if call.fn is not _nothing:
            self._explanations.clear()
            self._forget_behind()
        try:
            result = call.fn(conn)
        except Exception as exc:
            self._rollback()
            if isinstance(exc, sqlite3.Error | StoreError):
                err = explain_error(exc, self.path, "update")
                self.last_error = err
                _reject(call.future, err)
            else:
                _reject(call.future, exc)
            return
        if call.fn is _reset:
            self._events_since_retention = 0
            self._groups.clear()
            with self._cond:  # failures of the old contents are no news about the new
                self._failed_batches = 0
                self._retention_failures = 0
                self.last_error = self.write_error = None
        _resolve(call.future, result)

    def _periodic_retention(self) -> None:
        assert self.retention is not None and self._conn is not None
        max_events, max_age_s = self.retention
        self._events_since_retention = 0
        self._explanations.clear()  # retention may delete explanations no event uses
        self._forget_behind()  # ... and events the texts held for the index name
        self._next_retention = time.monotonic() + self.retention_interval
        try:
            result = apply_retention(
                self._conn, max_events=max_events, max_age_s=max_age_s, chunk=self.retention_chunk
            )
        except Exception as exc:
            self._rollback()
            self._retention_more = False
            err = explain_error(exc, self.path, "apply retention to")
            log.error("%s", err)
            with self._cond:
                self._retention_failures += 1
                self.last_error = err
            return
        self._retention_more = result["more"]
        with self._cond:
            self._retention_runs += 1
            self._retained_deleted_events += result["events"]
