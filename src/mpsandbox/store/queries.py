"""Reading the store: filters, listings with cursor pagination, detail, totals.

Readers use their own read-only connections, one per thread, so asyncio handlers, CLI
commands and TUI workers can read while the writer thread writes (WAL lets readers and the
writer proceed together). Listings page by id (``before_id`` / ``after_id``) rather than
OFFSET, so a page costs the same at row 10 and at row 1,000,000 and stays stable while new
events arrive.
"""

from __future__ import annotations

import base64
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ..records import ERROR, INVALID, VALID, apply_fills
from .database import DEFAULT_BUSY_TIMEOUT, StoreError, connect, explain_error
from .writer import loads

#: Largest page list_events / list_requests return, whatever the caller asks.
MAX_LIMIT = 10_000

SUMMARY_COLUMNS = (
    "id",
    "request_id",
    "idx",
    "received_at",
    "verdict",
    "stream",
    "schema_uri",
    "schema_title",
    "schema_version",
    "action",
    "session_id",
    "pageview_id",
    "meta_id",
    "dt",
)
_SUMMARY_SQL = (
    ", ".join(SUMMARY_COLUMNS) + ", coalesce(json_array_length(errors), 0) AS errors_count"
)

REQUEST_SUMMARY_COLUMNS = (
    "id",
    "received_at",
    "method",
    "path",
    "query",
    "remote",
    "request_id",
    "status",
    "reason",
    "hasty",
    "event_count",
    "stored_events",
    "error",
    "note",
)
_REQUEST_SUMMARY_SQL = ", ".join(REQUEST_SUMMARY_COLUMNS) + ", length(body) AS body_size"

Value = str | Sequence[str] | None


def like_escape(text: str) -> str:
    """Escape LIKE wildcards so user text matches literally (used with ESCAPE '\\')."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _equals(column: str, value: Value) -> tuple[str, list[Any]] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return f"{column} = ?", [value]
    values = list(value)
    if not values:
        return "0", []
    if len(values) == 1:
        return f"{column} = ?", values
    return f"{column} IN ({', '.join('?' * len(values))})", values


def _schema_clause(value: str) -> tuple[str, list[Any]]:
    """Match a schema by title, or by "title/version" where version may be a prefix.

    Titles contain slashes themselves ("analytics/mediawiki/client/metrics_event"), so a
    trailing segment counts as a version when it starts with a digit (schema titles do not
    end in one). A full x.y.z version is an exact match, served by the (title, version, id)
    index without sorting; a shorter one matches whole components ("1" matches 1.0.0 and
    1.2.0, not 10.0.0) while walking the (title, id) index.
    """
    value = value.strip().strip("/")
    title, _, version = value.rpartition("/")
    if not (title and version[:1].isdigit()):
        return "schema_title = ?", [value]
    if version.count(".") >= 2:
        return "schema_title = ? AND schema_version = ?", [title, version]
    return (
        "schema_title = ? AND (schema_version = ? OR schema_version LIKE ? ESCAPE '\\')",
        [title, version, like_escape(version) + ".%"],
    )


@dataclass
class EventFilter:
    """What the faces filter events on; every field set narrows the result (AND).

    Equality fields accept one value or a list of values (any of them). ``since`` is
    inclusive and ``until`` exclusive, both epoch seconds against ``received_at``.
    ``text`` is a case-insensitive (ASCII) substring of the event JSON as received.

    New criteria (negations, a search language) go in :meth:`clauses`, which keeps every
    criterion a separate ``(sql, params)`` pair that can be combined or negated.
    """

    stream: Value = None
    verdict: Value = None
    schema: str | None = None
    action: Value = None
    session: Value = None
    pageview: Value = None
    meta_id: Value = None
    since: float | None = None
    until: float | None = None
    text: str | None = None
    request: int | None = None

    def clauses(self) -> Iterator[tuple[str, list[Any]]]:
        for column, value in (
            ("stream", self.stream),
            ("verdict", self.verdict),
            ("action", self.action),
            ("session_id", self.session),
            ("pageview_id", self.pageview),
            ("meta_id", self.meta_id),
        ):
            clause = _equals(column, value)
            if clause is not None:
                yield clause
        if self.schema:
            yield _schema_clause(self.schema)
        if self.request is not None:
            yield "request_id = ?", [int(self.request)]
        if self.since is not None:
            yield "received_at >= ?", [float(self.since)]
        if self.until is not None:
            yield "received_at < ?", [float(self.until)]
        if self.text:
            yield "event LIKE ? ESCAPE '\\'", [f"%{like_escape(self.text)}%"]

    def where(self) -> tuple[str, list[Any]]:
        """A WHERE expression (``"1"`` when nothing is set) and its parameters."""
        sql: list[str] = []
        params: list[Any] = []
        for clause, values in self.clauses():
            sql.append(clause)
            params.extend(values)
        return (" AND ".join(sql) or "1"), params

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) in (None, "") for f in fields(self))


def _bytes_out(value: bytes | None) -> tuple[str | None, bool]:
    """Bytes as text when they are UTF-8, else base64 (the flag says which)."""
    if value is None:
        return None, False
    try:
        return bytes(value).decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(value).decode("ascii"), True


def _request_dict(row: sqlite3.Row) -> dict[str, Any]:
    d = dict(row)
    d["headers"] = [list(h) for h in loads(d.get("headers"), [])]
    d["hasty"] = bool(d.get("hasty"))
    for key in ("body", "response_body"):
        raw = d.get(key)
        d[f"{key}_size"] = None if raw is None else len(raw)
        d[key], d[f"{key}_base64"] = _bytes_out(raw)
    return d


class StoreReader:
    """Read-only access to the store, safe to share between threads.

    Each thread gets its own connection on first use; :meth:`close` closes them all.
    """

    def __init__(self, path: str | Path, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> None:
        self.path = str(path)
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._closed = False
        self._conn()  # fail now, with a StoreError, if the file is unusable

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if self._closed:
            raise StoreError(f"The reader for {self.path} is closed", path=self.path, kind="closed")
        # check_same_thread=False only so close() may close it from another thread; each
        # connection is otherwise used by the thread that opened it.
        conn = connect(
            self.path, readonly=True, busy_timeout=self.busy_timeout, check_same_thread=False
        )
        conn.row_factory = sqlite3.Row
        self._local.conn = conn
        with self._lock:
            self._connections.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conns, self._connections = self._connections, []
        for conn in conns:
            with suppress(sqlite3.Error):
                conn.close()

    def __enter__(self) -> StoreReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _read(self, snapshot: bool = False) -> Iterator[sqlite3.Connection]:
        """A connection, optionally inside one read transaction (a consistent snapshot)."""
        conn = self._conn()
        try:
            if snapshot:
                conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if snapshot and conn.in_transaction:
                    conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise explain_error(exc, self.path, "read") from exc

    # -- events ----------------------------------------------------------------------------

    def list_events(
        self,
        filter: EventFilter | None = None,
        *,
        before_id: int | None = None,
        after_id: int | None = None,
        limit: int = 50,
        newest_first: bool = True,
    ) -> list[dict[str, Any]]:
        """Summary rows, paged by id.

        Next page newest-first: ``before_id=<last id>``. Tailing new events:
        ``after_id=<newest seen>, newest_first=False`` (oldest of the new ones first, so
        none are skipped when more than ``limit`` arrived).
        """
        where, params = (filter or EventFilter()).where()
        if before_id is not None:
            where += " AND id < ?"
            params.append(int(before_id))
        if after_id is not None:
            where += " AND id > ?"
            params.append(int(after_id))
        order = "DESC" if newest_first else "ASC"
        params.append(max(0, min(int(limit), MAX_LIMIT)))
        sql = f"SELECT {_SUMMARY_SQL} FROM events WHERE {where} ORDER BY id {order} LIMIT ?"
        with self._read() as conn:
            return [dict(r) for r in conn.execute(sql, params)]

    def count_events(self, filter: EventFilter | None = None) -> int:
        where, params = (filter or EventFilter()).where()
        with self._read() as conn:
            return conn.execute(f"SELECT count(*) FROM events WHERE {where}", params).fetchone()[0]

    def max_event_id(self) -> int:
        """Newest event id, 0 when empty (ids are never reused, even after a reset)."""
        with self._read() as conn:
            return conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]

    def get_event(self, event_id: int) -> dict[str, Any] | None:
        """Everything about one event: as received, as accepted, why, and its request."""
        with self._read(snapshot=True) as conn:
            row = conn.execute("SELECT * FROM events WHERE id = ?", (int(event_id),)).fetchone()
            if row is None:
                return None
            d = dict(row)
            d["event"] = loads(d["event"])
            d["fills"] = loads(d["fills"], {})
            d["errors"] = loads(d["errors"], [])
            d["explanation"] = loads(d["explanation"], {})
            d["errors_count"] = len(d["errors"])
            d["accepted"] = apply_fills(d["event"], d["fills"])
            req = conn.execute("SELECT * FROM requests WHERE id = ?", (d["request_id"],)).fetchone()
            d["request"] = None if req is None else _request_dict(req)
            d["siblings"] = [
                dict(r)
                for r in conn.execute(
                    "SELECT id, idx, verdict FROM events WHERE request_id = ? ORDER BY idx, id",
                    (d["request_id"],),
                )
            ]
        return d

    # -- requests --------------------------------------------------------------------------

    def get_request(self, request_id: int) -> dict[str, Any] | None:
        """A request as received and answered, with the events it stored."""
        with self._read(snapshot=True) as conn:
            row = conn.execute("SELECT * FROM requests WHERE id = ?", (int(request_id),)).fetchone()
            if row is None:
                return None
            d = _request_dict(row)
            d["events"] = [
                dict(r)
                for r in conn.execute(
                    f"SELECT {_SUMMARY_SQL} FROM events WHERE request_id = ? ORDER BY idx, id",
                    (d["id"],),
                )
            ]
        return d

    def list_requests(self, limit: int = 50, before_id: int | None = None) -> list[dict[str, Any]]:
        """Newest requests first, paged by id; bodies are left out (see get_request)."""
        where, params = "1", []
        if before_id is not None:
            where, params = "id < ?", [int(before_id)]
        params.append(max(0, min(int(limit), MAX_LIMIT)))
        sql = f"SELECT {_REQUEST_SUMMARY_SQL} FROM requests WHERE {where} ORDER BY id DESC LIMIT ?"
        with self._read() as conn:
            rows = [dict(r) for r in conn.execute(sql, params)]
        for r in rows:
            r["hasty"] = bool(r["hasty"])
        return rows

    # -- totals ----------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Totals for status bars and ``/stats``; each is one index scan at worst."""
        with self._read(snapshot=True) as conn:
            by_verdict = {VALID: 0, INVALID: 0, ERROR: 0}
            for verdict, n in conn.execute("SELECT verdict, count(*) FROM events GROUP BY verdict"):
                by_verdict[verdict] = n
            requests = conn.execute("SELECT count(*) FROM requests").fetchone()[0]
            by_status = [
                {"status": status, "requests": n}
                for status, n in conn.execute(
                    "SELECT status, count(*) AS n FROM requests GROUP BY status ORDER BY n DESC"
                )
            ]
            first, last = conn.execute(
                "SELECT (SELECT min(received_at) FROM requests),"
                " (SELECT max(received_at) FROM requests)"
            ).fetchone()
            streams = [
                {"stream": stream, "events": n}
                for stream, n in conn.execute(
                    "SELECT stream, count(*) AS n FROM events GROUP BY stream"
                    " ORDER BY n DESC, stream LIMIT 20"
                )
            ]
        size = 0
        for suffix in ("", "-wal"):
            with suppress(OSError):
                size += os.path.getsize(self.path + suffix)
        return {
            "events": sum(by_verdict.values()),
            "by_verdict": by_verdict,
            "requests": requests,
            "requests_by_status": by_status,
            "first_received_at": first,
            "last_received_at": last,
            "streams": streams,
            "db_size_bytes": size,
        }
