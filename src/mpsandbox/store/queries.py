"""Reading the store: filters, listings with cursor pagination, detail, totals.

Readers use their own read-only connections, one per thread, so asyncio handlers, CLI
commands and TUI workers can read while the writer thread writes (WAL lets readers and the
writer proceed together). Listings page by id (``before_id`` / ``after_id``) rather than
OFFSET, so a page costs the same at row 10 and at row 1,000,000 and stays stable while new
events arrive.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from ..platform.findings import render_all as render_findings
from ..query import TEXT_INDEX, TEXT_STATE, Query, TextBlocks, text_candidates, text_clause
from ..query import like_escape as like_escape
from ..query import schema_clause as _schema_clause
from ..records import VERDICTS, apply_fills
from .database import DEFAULT_BUSY_TIMEOUT, StoreError, connect, explain_error
from .writer import loads

#: Candidate blocks (of 16 events) beyond which a free-text term is tested by a scan of
#: the newest events instead of through its index (see StoreReader._planned): listing 4,096
#: blocks' ids costs ~30 ms, and a term in that many blocks is met at once walking by id.
TEXT_SCAN_BLOCKS = 4096

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
    "platform",
)
_SUMMARY_SQL = (
    ", ".join(SUMMARY_COLUMNS)
    + ", coalesce(json_array_length(errors), 0) AS errors_count"
    # Warnings and errors the platform rules found (info findings are not problems).
    + ", problems AS findings_count"
)

#: Every column of an events row as readers see it: the JSON unpacked, the explanation's
#: text in place of its id (see codec.py and the explanations table).
_EVENT_ROW_SQL = (
    "id, request_id, idx, received_at, verdict, stream, schema_uri, schema_title,"
    " schema_version, action, session_id, pageview_id, meta_id, dt,"
    " unpack_text(event) AS event, unpack_text(fills) AS fills, errors, errors_text, message,"
    " (SELECT x.text FROM explanations x WHERE x.id = events.explanation_id) AS explanation,"
    " unpack_text(findings) AS findings, platform, retracts"
)
#: Every column of a requests row as readers see it: the bodies unpacked.
_REQUEST_ROW_SQL = (
    "id, received_at, method, path, query, unpack_text(headers) AS headers,"
    " unpack_blob(body) AS body, remote,"
    " request_id, status, reason, response_body, hasty, event_count, stored_events, error,"
    " note, chaos"
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
    "chaos",
)
_REQUEST_SUMMARY_SQL = (
    ", ".join(REQUEST_SUMMARY_COLUMNS) + ", length(unpack_blob(body)) AS body_size"
)

Value = str | Sequence[str] | None


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


@dataclass
class EventFilter:
    """What the faces filter events on; every field set narrows the result (AND).

    Equality fields accept one value or a list of values (any of them). ``since`` is
    inclusive and ``until`` exclusive, both epoch seconds against ``received_at``.
    ``text`` is a case-insensitive (ASCII) substring of the event JSON as received.
    ``error_group`` selects the events of one error group (see
    :meth:`StoreReader.list_error_groups`). ``query`` is a parsed search (see
    :mod:`mpsandbox.query`) whose clauses are ANDed with the other fields.

    :meth:`clauses` is the one place SQL is composed; it keeps every criterion a separate
    ``(sql, params)`` pair that can be combined or negated.
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
    error_group: int | None = None
    query: Query | None = None
    #: Event id bounds, both inclusive: a table pins its snapshot to ``max_id`` and counts
    #: what arrived since with ``min_id``.
    min_id: int | None = None
    max_id: int | None = None

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
            yield text_clause(self.text)
        if self.error_group is not None:
            yield (
                "id IN (SELECT event_id FROM error_links WHERE group_id = ?)",
                [int(self.error_group)],
            )
        if self.query is not None:
            yield from self.query.clauses()
        if self.min_id is not None:
            yield "id >= ?", [int(self.min_id)]
        if self.max_id is not None:
            yield "id <= ?", [int(self.max_id)]

    def where(self) -> tuple[str, list[Any]]:
        """A WHERE expression (``"1"`` when nothing is set) and its parameters."""
        sql: list[str] = []
        params: list[Any] = []
        for clause, values in self.clauses():
            sql.append(clause)
            params.extend(values)
        return (" AND ".join(sql) or "1"), params

    def is_empty(self) -> bool:
        """True when the filter matches every event."""
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "query":
                if value is not None and not value.is_empty():
                    return False
            elif value not in (None, ""):
                return False
        return True


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
    d["chaos"] = loads(d.get("chaos"))
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

    def _planned(self, conn: sqlite3.Connection, flt: EventFilter | None) -> EventFilter:
        """``flt`` with the candidate blocks of each free-text term read from the index
        once (the query then tests those events alone), or, past TEXT_SCAN_BLOCKS blocks,
        the term marked to be tested by a scan: the candidates of a word most events hold
        cost more to list than walking the newest events does."""
        flt = flt or EventFilter()
        if flt.query is None:
            return flt
        values = flt.query.indexed_text()
        if not values:
            return flt
        upto = conn.execute(f"SELECT upto FROM {TEXT_STATE}").fetchone()[0]
        plan: dict[str, TextBlocks | None] = {}
        for value in values:
            blocks = tuple(
                r[0]
                for r in conn.execute(
                    f"SELECT rowid FROM {TEXT_INDEX} WHERE {TEXT_INDEX} MATCH ? LIMIT ?",
                    (text_candidates(value), TEXT_SCAN_BLOCKS),
                )
            )
            plan[value] = None if len(blocks) >= TEXT_SCAN_BLOCKS else TextBlocks(upto, blocks)
        return replace(flt, query=flt.query.planned(plan))

    def _page_where(
        self,
        conn: sqlite3.Connection,
        flt: EventFilter | None,
        before_id: int | None,
        after_id: int | None,
    ) -> tuple[str, list[Any]]:
        """The WHERE clause and parameters of a page of events by id: the filter, its
        free text planned on the index (:meth:`_planned`), then the id cursor."""
        where, params = self._planned(conn, flt).where()
        if before_id is not None:
            where += " AND id < ?"
            params.append(int(before_id))
        if after_id is not None:
            where += " AND id > ?"
            params.append(int(after_id))
        return where, params

    def list_events(
        self,
        filter: EventFilter | None = None,
        *,
        before_id: int | None = None,
        after_id: int | None = None,
        limit: int = 50,
        newest_first: bool = True,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Summary rows, paged by id.

        Next page newest-first: ``before_id=<last id>``. Tailing new events:
        ``after_id=<newest seen>, newest_first=False`` (oldest of the new ones first, so
        none are skipped when more than ``limit`` arrived).

        ``offset`` skips that many rows of the filtered, ordered result, for a virtual
        table that jumps to row N. It costs a walk over the skipped rows (on an index when
        the filter has one), so prefer ``before_id`` for paging; combined with a cursor,
        it counts from the cursor.
        """
        with self._read() as conn:
            where, params = self._page_where(conn, filter, before_id, after_id)
            order = "DESC" if newest_first else "ASC"
            params.append(max(0, min(int(limit), MAX_LIMIT)))
            params.append(max(0, int(offset)))
            sql = (
                f"SELECT {_SUMMARY_SQL} FROM events WHERE {where}"
                f" ORDER BY id {order} LIMIT ? OFFSET ?"
            )
            return [dict(r) for r in conn.execute(sql, params)]

    def count_events(self, filter: EventFilter | None = None, cap: int | None = None) -> int:
        """How many events match; with ``cap``, stop counting there (a table can show
        "10,000+" without counting a million rows)."""
        with self._read() as conn:
            where, params = self._planned(conn, filter).where()
            if cap is None:
                sql = f"SELECT count(*) FROM events WHERE {where}"
            else:
                sql = f"SELECT count(*) FROM (SELECT 1 FROM events WHERE {where} LIMIT ?)"
                params.append(max(0, int(cap)))
            return conn.execute(sql, params).fetchone()[0]

    def newest_event_id(self, filter: EventFilter | None = None) -> int | None:
        """Id of the newest matching event, None when none matches (one index step for the
        indexed filters): a face polls it to learn that its view has new rows."""
        with self._read() as conn:
            where, params = self._planned(conn, filter).where()
            sql = f"SELECT id FROM events WHERE {where} ORDER BY id DESC LIMIT 1"
            row = conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def list_error_groups(
        self, filter: EventFilter | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Error groups of the matching events, most frequent first.

        Each: ``id, schema_title, schema_version, data_path, keyword, detail, message``
        (a sample), ``count`` (errors), ``events`` (distinct events), ``first_seen`` and
        ``last_seen`` (received_at). Counts cover only the events still stored and matching
        ``filter``; list a group's events with ``EventFilter(error_group=id)``.
        """
        where, params = (filter or EventFilter()).where()
        params.append(max(0, min(int(limit), MAX_LIMIT)))
        # The filter's columns are resolved inside the subquery, against events alone.
        sql = f"""
            SELECT g.id, g.schema_title, g.schema_version, g.data_path, g.keyword, g.detail,
                   g.message, a.count, a.events, a.first_seen, a.last_seen
            FROM (
                SELECT l.group_id, sum(l.n) AS count, count(*) AS events,
                       min(e.received_at) AS first_seen, max(e.received_at) AS last_seen
                FROM (SELECT id, received_at FROM events WHERE {where}) AS e
                JOIN error_links AS l ON l.event_id = e.id
                GROUP BY l.group_id
            ) AS a JOIN error_groups AS g ON g.id = a.group_id
            ORDER BY a.count DESC, a.last_seen DESC, g.id
            LIMIT ?
        """
        with self._read() as conn:
            return [dict(r) for r in conn.execute(sql, params)]

    def get_error_group(self, group_id: int) -> dict[str, Any] | None:
        """One group, as :meth:`list_error_groups` gives it, counted over every stored
        event (``count`` 0 and no dates once its events are gone); None if unknown."""
        sql = """
            SELECT g.id, g.schema_title, g.schema_version, g.data_path, g.keyword, g.detail,
                   g.message, coalesce(sum(l.n), 0) AS count, count(e.id) AS events,
                   min(e.received_at) AS first_seen, max(e.received_at) AS last_seen
            FROM error_groups AS g
            LEFT JOIN error_links AS l ON l.group_id = g.id
            LEFT JOIN events AS e ON e.id = l.event_id
            WHERE g.id = ?
            GROUP BY g.id
        """
        with self._read() as conn:
            row = conn.execute(sql, (int(group_id),)).fetchone()
        return None if row is None else dict(row)

    def max_event_id(self) -> int:
        """Newest event id, 0 when empty (ids are never reused, even after a reset)."""
        with self._read() as conn:
            return conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]

    def get_event(self, event_id: int) -> dict[str, Any] | None:
        """Everything about one event: as received, as accepted, why, and its request."""
        with self._read(snapshot=True) as conn:
            row = conn.execute(
                f"SELECT {_EVENT_ROW_SQL} FROM events WHERE id = ?", (int(event_id),)
            ).fetchone()
            if row is None:
                return None
            d = dict(row)
            d["event"] = loads(d["event"])
            d["fills"] = loads(d["fills"], {})
            d["errors"] = loads(d["errors"], [])
            d["explanation"] = loads(d["explanation"], {})
            d["findings"] = render_findings(loads(d.get("findings")))
            d["errors_count"] = len(d["errors"])
            d["accepted"] = apply_fills(d["event"], d["fills"])
            req = conn.execute(
                f"SELECT {_REQUEST_ROW_SQL} FROM requests WHERE id = ?", (d["request_id"],)
            ).fetchone()
            d["request"] = None if req is None else _request_dict(req)
            d["siblings"] = [
                dict(r)
                for r in conn.execute(
                    "SELECT id, idx, verdict FROM events WHERE request_id = ? ORDER BY idx, id",
                    (d["request_id"],),
                )
            ]
            d["flips"] = self._flips(conn, "f.event_id = ?", [d["id"]], 100, 0)
        return d

    def event_bodies(
        self,
        filter: EventFilter | None = None,
        *,
        before_id: int | None = None,
        after_id: int | None = None,
        limit: int = 500,
        newest_first: bool = False,
    ) -> list[dict[str, Any]]:
        """Matching events with their JSON, paged by id like :meth:`list_events`: each has
        the summary columns, ``event`` (as received), ``fills``, ``accepted`` (with the
        fills), ``errors`` and ``message``. What instrument checks judge."""
        with self._read() as conn:
            where, params = self._page_where(conn, filter, before_id, after_id)
            params.append(max(0, min(int(limit), MAX_LIMIT)))
            order = "DESC" if newest_first else "ASC"
            sql = f"""
                SELECT id, received_at, verdict, stream, schema_title, schema_version,
                       action, session_id, pageview_id, dt, unpack_text(event) AS event,
                       unpack_text(fills) AS fills, errors,
                       message
                FROM events WHERE {where} ORDER BY id {order} LIMIT ?
            """
            rows = [dict(r) for r in conn.execute(sql, params)]
        for r in rows:
            r["event"] = loads(r["event"])
            r["fills"] = loads(r["fills"], {})
            r["errors"] = loads(r["errors"], [])
            r["accepted"] = apply_fills(r["event"], r["fills"])
        return rows

    # -- re-validation --------------------------------------------------------------------

    def revalidation_candidates(
        self, titles: list[str] | None, limit: int | None, before_id: int | None = None
    ) -> list[dict[str, Any]]:
        """The newest stored events of ``titles`` (every title: None), each with its verdict
        and errors as last judged (its latest flip, else as stored) and its request's
        headers: what re-validation needs to judge it again in the same context."""
        # A legacy beacon is never validated, so no schema change can flip it.
        where, params = "e.verdict != 'legacy'", []
        if titles is not None:
            where += " AND e.schema_title IN (SELECT value FROM json_each(?))"
            params.append(json.dumps(sorted(titles)))
        if before_id is not None:
            where += " AND e.id < ?"
            params.append(int(before_id))
        params.append(-1 if limit is None else max(0, int(limit)))
        sql = f"""
            SELECT e.id, unpack_text(e.event) AS event, unpack_text(e.fills) AS fills,
                   e.received_at,
                   unpack_text(r.headers) AS headers,
                   coalesce(f.after_verdict, e.verdict) AS verdict,
                   CASE WHEN f.id IS NULL THEN e.errors ELSE f.after_errors END AS errors
            FROM events e
            JOIN requests r ON r.id = e.request_id
            LEFT JOIN flips f ON f.id = (
                SELECT max(id) FROM flips WHERE event_id = e.id)
            WHERE {where}
            ORDER BY e.id DESC LIMIT ?
        """
        with self._read(snapshot=True) as conn:
            return [dict(r) for r in conn.execute(sql, params)]

    def list_flips(
        self,
        *,
        run: int | None = None,
        event_id: int | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Verdict flips, newest first, with the event's stream and action."""
        where, params = ["1"], []
        if run is not None:
            where.append("f.run_id = ?")
            params.append(int(run))
        if event_id is not None:
            where.append("f.event_id = ?")
            params.append(int(event_id))
        with self._read() as conn:
            return self._flips(conn, " AND ".join(where), params, limit, offset)

    def _flips(
        self, conn: sqlite3.Connection, where: str, params: list[Any], limit: int, offset: int
    ) -> list[dict[str, Any]]:
        sql = f"""
            SELECT f.*, r.started_at AS at, r.trigger, e.stream, e.action, e.schema_title
            FROM flips f JOIN revalidations r ON r.id = f.run_id
            JOIN events e ON e.id = f.event_id
            WHERE {where} ORDER BY f.id DESC LIMIT ? OFFSET ?
        """
        params = [*params, max(0, min(int(limit), MAX_LIMIT)), max(0, int(offset))]
        out = []
        for r in conn.execute(sql, params):
            d = dict(r)
            d["before_errors"] = loads(d["before_errors"], [])
            d["after_errors"] = loads(d["after_errors"], [])
            out.append(d)
        return out

    def list_revalidations(self, limit: int = 20) -> list[dict[str, Any]]:
        """Re-validation runs, newest first."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT * FROM revalidations ORDER BY id DESC LIMIT ?",
                (max(0, min(int(limit), MAX_LIMIT)),),
            ).fetchall()
        out = []
        for r in rows:
            d = dict(r)
            d["titles"] = loads(d["titles"], None)
            d["summary"] = loads(d["summary"], {})
            out.append(d)
        return out

    # -- sessions -------------------------------------------------------------------------

    def list_sessions(
        self, *, limit: int = 100, offset: int = 0, platform: str | None = None
    ) -> list[dict[str, Any]]:
        """Sessions, most recently active first, with their pageview count and streams."""
        where, params = "1", []
        if platform:
            where, params = "s.platform = ?", [platform]
        params += [max(0, min(int(limit), MAX_LIMIT)), max(0, int(offset))]
        sql = f"""
            SELECT s.*,
                   (SELECT count(*) FROM session_pageviews p
                    WHERE p.session_id = s.session_id) AS pageviews,
                   (SELECT json_group_object(stream, events) FROM session_streams t
                    WHERE t.session_id = s.session_id) AS streams
            FROM sessions s WHERE {where}
            ORDER BY s.last_seen DESC LIMIT ? OFFSET ?
        """
        with self._read() as conn:
            rows = [dict(r) for r in conn.execute(sql, params)]
        for r in rows:
            r["streams"] = loads(r["streams"], {})
        return rows

    def count_sessions(self) -> int:
        with self._read() as conn:
            return conn.execute("SELECT count(*) FROM sessions").fetchone()[0]

    def session_events(self, session_id: str, limit: int = 2_000) -> list[dict[str, Any]]:
        """A session's events (newest ``limit``), each with its event JSON and findings,
        in dt order (receive order where dt is missing): the session's timeline."""
        sql = f"""
            SELECT {_SUMMARY_SQL}, unpack_text(event) AS event,
                   unpack_text(findings) AS findings FROM events
            WHERE session_id = ? ORDER BY id DESC LIMIT ?
        """
        with self._read() as conn:
            rows = [dict(r) for r in conn.execute(sql, (session_id, int(limit)))]
        for r in rows:
            r["event"] = loads(r["event"])
            r["findings"] = render_findings(loads(r["findings"]))
        rows.sort(key=lambda r: (r.get("dt") or "", r["received_at"], r["id"]))
        return rows

    # -- streams and experiments -----------------------------------------------------------

    def seen_streams(self, limit: int = 500) -> list[str]:
        """Distinct streams of stored events, in name order: one index step per stream
        (a skip scan of ``events_stream``), however many events each has."""
        sql = """
            WITH RECURSIVE s(name) AS (
                SELECT min(stream) FROM events
                UNION ALL
                SELECT (SELECT min(stream) FROM events WHERE stream > s.name) FROM s
                WHERE s.name IS NOT NULL
            )
            SELECT name FROM s WHERE name IS NOT NULL LIMIT ?
        """
        with self._read() as conn:
            return [r[0] for r in conn.execute(sql, (max(0, int(limit)),))]

    def experiment_enrollment(self, scan: int = 200_000) -> dict[str, Any]:
        """Events per experiment and group (``experiment.enrolled`` / ``.assigned``) among
        the newest ``scan`` events: ``{"groups": [{"experiment", "group", "events"}],
        "scanned": n, "bounded": bool}`` (``bounded`` when older events were left out).
        The JSON is read only for events that mention ``"experiment"``."""
        sql = """
            SELECT json_extract(event, '$.experiment.enrolled') AS name,
                   json_extract(event, '$.experiment.assigned') AS grp, count(*) AS n
            FROM (SELECT unpack_text(event) AS event FROM events ORDER BY id DESC LIMIT ?)
            WHERE instr(event, '"experiment"') AND json_valid(event)
              AND json_type(event, '$.experiment.enrolled') = 'text'
            GROUP BY name, grp ORDER BY name, grp
        """
        with self._read(snapshot=True) as conn:
            rows = conn.execute(sql, (max(0, int(scan)),)).fetchall()
            total = conn.execute(
                "SELECT count(*) FROM (SELECT 1 FROM events LIMIT ?)", (int(scan) + 1,)
            ).fetchone()[0]
        return {
            "groups": [{"experiment": n, "group": g, "events": c} for n, g, c in rows],
            "scanned": min(total, scan),
            "bounded": total > scan,
        }

    def snapshot(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """A connection inside one read transaction, for readers outside the store (metric
        previews, the sampling what-if) that run several queries which must see the same
        events. The store does not import them: they sit above it."""
        return self._read(snapshot=True)

    # -- requests --------------------------------------------------------------------------

    def get_request(self, request_id: int) -> dict[str, Any] | None:
        """A request as received and answered, with the events it stored."""
        with self._read(snapshot=True) as conn:
            row = conn.execute(
                f"SELECT {_REQUEST_ROW_SQL} FROM requests WHERE id = ?", (int(request_id),)
            ).fetchone()
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
            r["chaos"] = loads(r["chaos"])
        return rows

    # -- export (fixtures) ------------------------------------------------------------------

    def iter_requests(
        self, filter: EventFilter | None = None, *, methods: Sequence[str] | None = ("POST",)
    ) -> Iterator[dict[str, Any]]:
        """Whole request rows, oldest first, read in one snapshot: ``body`` and
        ``response_body`` as bytes, ``headers`` as ``[name, value]`` pairs.

        With a filter that selects anything, only the requests of matching events (a
        request whose every event was left out, or that had none, is skipped); without
        one, every request. ``methods`` keeps only those (None: all)."""
        where, params = "1", []
        if filter is not None and not filter.is_empty():
            ev_where, ev_params = filter.where()
            where = f"id IN (SELECT request_id FROM events WHERE {ev_where})"
            params = list(ev_params)
        if methods is not None:
            where += f" AND method IN ({', '.join('?' * len(methods))})"
            params += list(methods)
        with self._read(snapshot=True) as conn:
            for row in conn.execute(
                f"SELECT {_REQUEST_ROW_SQL} FROM requests WHERE {where} ORDER BY id", params
            ):
                d = dict(row)
                d["headers"] = [list(h) for h in loads(d.get("headers"), [])]
                d["hasty"] = bool(d.get("hasty"))
                d["chaos"] = loads(d.get("chaos"))
                for key in ("body", "response_body"):
                    if d.get(key) is not None:
                        d[key] = bytes(d[key])
                yield d

    def iter_events(self, filter: EventFilter | None = None) -> Iterator[dict[str, Any]]:
        """Whole event rows, oldest first, read in one snapshot, with the JSON columns
        parsed (``event`` is the event as received)."""
        where, params = (filter or EventFilter()).where()
        with self._read(snapshot=True) as conn:
            for row in conn.execute(
                f"SELECT {_EVENT_ROW_SQL} FROM events WHERE {where} ORDER BY id", params
            ):
                d = dict(row)
                d["event"] = loads(d["event"])
                d["fills"] = loads(d["fills"], {})
                d["errors"] = loads(d["errors"], [])
                d["explanation"] = loads(d["explanation"], {})
                d["findings"] = render_findings(loads(d.get("findings")))
                d["retracts"] = loads(d.get("retracts"), [])
                yield d

    # -- totals ----------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Totals for status bars and ``/stats``; each is one index scan at worst."""
        with self._read(snapshot=True) as conn:
            by_verdict = dict.fromkeys(VERDICTS, 0)
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
