"""Retention: keep the store bounded by count and age.

The SQL lives here, apart from the writer, so it can be run by the writer thread on a timer,
on request, or by an offline tool on a ``sqlite_utils.Database``. It must run on the write
connection's thread in the single-writer design.

Rules:

* events: the newest ``max_events`` are kept, and none older than ``max_age_s``;
* requests that stored events are deleted once none of their events remain and they are
  older than the oldest retained event (or older than the age limit);
* requests that stored no events (malformed bodies, refusals) have no events to follow, so
  they are bounded on their own: by the age limit, and to the newest ``max_events``.

Each call works in one transaction and deletes at most ``chunk`` events, so the writer can
interleave writes between chunks instead of stalling on a huge first clean-up.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from . import text_index

_NO_EVENTS_LEFT = "NOT EXISTS (SELECT 1 FROM events e WHERE e.request_id = requests.id)"


def _one(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(sql, params).fetchone()
    return None if row is None else row[0]


def _count_cut(conn: sqlite3.Connection, max_events: int) -> int | None:
    """Id of the newest event beyond the count limit, or None if within it."""
    lo, hi = conn.execute(
        "SELECT (SELECT min(id) FROM events), (SELECT max(id) FROM events)"
    ).fetchone()
    if lo is None:
        return None
    # Ids are unique integers, so a span no wider than the limit cannot hold too many:
    # that keeps the common case (under the limit) at two index lookups.
    if hi - lo + 1 <= max_events:
        return None
    return _one(conn, "SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?", (max_events,))


#: The distinct kinds in event_findings: one primary key step each (a skip scan).
_FINDING_KINDS = """
    WITH RECURSIVE k(kind) AS (
        SELECT min(kind) FROM event_findings
        UNION ALL
        SELECT (SELECT min(kind) FROM event_findings WHERE kind > k.kind) FROM k
        WHERE k.kind IS NOT NULL
    )
    SELECT kind FROM k WHERE kind IS NOT NULL
"""


def _delete_findings_upto(conn: sqlite3.Connection, upto_id: int) -> None:
    """Delete the finding links of deleted events (ids up to ``upto_id``): per kind, a
    range of the (kind, event_id) key, each link checked against the events' key. The
    links have no foreign key, so no index by event is kept just for cascading."""
    for (kind,) in conn.execute(_FINDING_KINDS).fetchall():
        conn.execute(
            "DELETE FROM event_findings WHERE kind = ? AND event_id <= ?"
            " AND NOT EXISTS (SELECT 1 FROM events e WHERE e.id = event_findings.event_id)",
            (kind, upto_id),
        )


def apply_retention(
    conn: Any,
    *,
    max_events: int | None = None,
    max_age_s: float | None = None,
    now: float | None = None,
    chunk: int | None = None,
) -> dict[str, Any]:
    """Delete what the limits exclude; return ``{"events", "requests", "more"}``.

    ``more`` is true when ``chunk`` stopped the deletion early; call again to continue.
    """
    conn = getattr(conn, "conn", conn)
    if max_events is None and max_age_s is None:
        return {"events": 0, "requests": 0, "more": False}
    if max_events is not None and max_events < 0:
        raise ValueError("max_events must be >= 0")
    cutoff = None if max_age_s is None else (time.time() if now is None else now) - max_age_s
    limit = chunk if chunk and chunk > 0 else -1  # LIMIT -1 means no limit in SQLite
    deleted_events = deleted_requests = 0
    more = False

    conn.execute("BEGIN IMMEDIATE")
    try:
        upto_id = 0  # the newest event deleted
        if cutoff is not None:
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM events WHERE received_at < ? ORDER BY received_at LIMIT ?",
                    (cutoff, limit),
                )
            ]
            blocks = text_index.forget(conn, ids)
            for start in range(0, len(ids), 500):
                part = ids[start : start + 500]
                marks = ",".join("?" * len(part))
                conn.execute(f"DELETE FROM events WHERE id IN ({marks})", part)
            text_index.remember(conn, blocks)
            deleted_events += len(ids)
            more = more or (limit > 0 and len(ids) >= limit)
            upto_id = max(ids, default=0)
        if max_events is not None:
            cut = _count_cut(conn, max_events)
            if cut is not None:
                lo = _one(conn, "SELECT min(id) FROM events")
                if limit > 0:
                    upto = min(cut, lo + limit - 1)
                    more = more or upto < cut
                else:
                    upto = cut
                blocks = text_index.forget_range(conn, lo, upto)
                deleted_events += conn.execute("DELETE FROM events WHERE id <= ?", (upto,)).rowcount
                text_index.remember(conn, blocks)
                upto_id = max(upto_id, upto)

        if deleted_events:
            _delete_findings_upto(conn, upto_id)
            # Explanations last used by an event older than every event kept are unused.
            conn.execute(
                "DELETE FROM explanations WHERE last_event_id <"
                " coalesce((SELECT min(id) FROM events), 1 << 62)"
            )
        # Requests whose events have all gone, older than the oldest event still kept.
        bound = _one(conn, "SELECT request_id FROM events ORDER BY id LIMIT 1")
        if bound is None:
            bound = (_one(conn, "SELECT max(id) FROM requests") or 0) + 1
        cur = conn.execute(
            "DELETE FROM requests WHERE id IN ("
            f" SELECT id FROM requests WHERE id < ? AND stored_events > 0 AND {_NO_EVENTS_LEFT}"
            " LIMIT ?)",
            (bound, limit),
        )
        deleted_requests += cur.rowcount
        more = more or (limit > 0 and cur.rowcount >= limit)
        if cutoff is not None:
            cur = conn.execute(
                "DELETE FROM requests WHERE id IN ("
                " SELECT id FROM requests WHERE received_at < ?"
                f" AND (stored_events = 0 OR {_NO_EVENTS_LEFT}) LIMIT ?)",
                (cutoff, limit),
            )
            deleted_requests += cur.rowcount
            more = more or (limit > 0 and cur.rowcount >= limit)
        if max_events is not None:
            keep_from = _one(
                conn,
                "SELECT id FROM requests WHERE stored_events = 0 ORDER BY id DESC LIMIT 1 OFFSET ?",
                (max_events,),
            )
            if keep_from is not None:
                deleted_requests += conn.execute(
                    "DELETE FROM requests WHERE stored_events = 0 AND id <= ?", (keep_from,)
                ).rowcount
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return {"events": deleted_events, "requests": deleted_requests, "more": more}
