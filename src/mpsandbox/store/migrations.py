"""Named, ordered schema migrations.

A database remembers which migrations it has had in ``_migrations``, so opening a file made
by an older mpsandbox upgrades it in place, and opening an up-to-date file takes no write
lock at all (important when another process is busy writing). Each migration runs in its
own ``BEGIN IMMEDIATE`` transaction and re-checks ``_migrations`` inside it, so two
processes opening the same new file cannot both apply it.

Add a migration by appending a function decorated with ``@migration("NNNN_name")``;
never edit or reorder one that has shipped.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from . import codec


@dataclass(frozen=True)
class Migration:
    name: str
    apply: Callable[[sqlite3.Connection], None]
    #: VACUUM once it is committed: it freed much of the file (rows rewritten smaller).
    vacuum: bool = False


MIGRATIONS: list[Migration] = []


def migration(
    name: str, *, vacuum: bool = False
) -> Callable[[Callable[[sqlite3.Connection], None]], Migration]:
    def register(fn: Callable[[sqlite3.Connection], None]) -> Migration:
        if any(m.name == name for m in MIGRATIONS):
            raise ValueError(f"duplicate migration name {name!r}")
        m = Migration(name, fn, vacuum)
        MIGRATIONS.append(m)
        return m

    return register


@migration("0001_initial")
def _initial(conn: sqlite3.Connection) -> None:
    # AUTOINCREMENT keeps ids from ever being reused (sqlite_sequence survives a reset), so a
    # face tailing "events after id N" never mistakes new events for ones it has seen.
    # `stored_events` counts the events written with the request; `event_count` is what the
    # intake reported (a refused request may report events that were never stored).
    conn.execute(
        """
        CREATE TABLE requests (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            received_at REAL NOT NULL,
            method TEXT,
            path TEXT,
            query TEXT,
            headers TEXT,
            body BLOB,
            remote TEXT,
            request_id TEXT,
            status INTEGER,
            reason TEXT,
            response_body BLOB,
            hasty INTEGER NOT NULL DEFAULT 0,
            event_count INTEGER NOT NULL DEFAULT 0,
            stored_events INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            note TEXT
        )
        """
    )
    conn.execute(
        """
        CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            request_id INTEGER NOT NULL REFERENCES requests(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            received_at REAL NOT NULL,
            verdict TEXT NOT NULL,
            stream TEXT,
            schema_uri TEXT,
            schema_title TEXT,
            schema_version TEXT,
            action TEXT,
            session_id TEXT,
            pageview_id TEXT,
            meta_id TEXT,
            dt TEXT,
            event TEXT NOT NULL,
            fills TEXT,
            errors TEXT,
            errors_text TEXT,
            message TEXT,
            explanation TEXT
        )
        """
    )
    for sql in (
        # Retention by age and "requests since".
        "CREATE INDEX requests_received_at ON requests(received_at)",
        # Retention keeps a count bound on requests that stored no events; partial, so it
        # costs nothing for ordinary requests.
        "CREATE INDEX requests_without_events ON requests(id) WHERE stored_events = 0",
        # Siblings of an event, and ON DELETE CASCADE without a full scan per request.
        "CREATE INDEX events_request ON events(request_id, idx)",
        "CREATE INDEX events_received_at ON events(received_at)",
        # Filters list newest first by id, so each filter index ends with id: an equality
        # filter then reads exactly one page of the index, no sort.
        "CREATE INDEX events_stream ON events(stream, id)",
        "CREATE INDEX events_schema ON events(schema_title, schema_version, id)",
        # Title alone is the common schema filter; the index above would have to sort
        # every event of that title by id to answer it.
        "CREATE INDEX events_schema_title ON events(schema_title, id)",
        "CREATE INDEX events_verdict ON events(verdict, id)",
        "CREATE INDEX events_action ON events(action, id)",
        "CREATE INDEX events_session ON events(session_id, id)",
        "CREATE INDEX events_pageview ON events(pageview_id, id)",
        "CREATE INDEX events_meta_id ON events(meta_id)",
    ):
        conn.execute(sql)


def _raw(conn: Any) -> sqlite3.Connection:
    """Accept a sqlite_utils.Database as well as a raw connection."""
    return getattr(conn, "conn", conn)


def _has_table(conn: sqlite3.Connection) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_migrations'"
    ).fetchone()
    return row is not None


def applied_migrations(conn: Any) -> dict[str, float]:
    """Names of applied migrations and when (epoch seconds); empty for a new file."""
    conn = _raw(conn)
    if not _has_table(conn):
        return {}
    return dict(conn.execute("SELECT name, applied_at FROM _migrations ORDER BY rowid"))


def pending_migrations(conn: Any, migrations: Iterable[Migration] | None = None) -> list[str]:
    done = applied_migrations(conn)
    return [
        m.name for m in (MIGRATIONS if migrations is None else migrations) if m.name not in done
    ]


def apply_migrations(conn: Any, migrations: Iterable[Migration] | None = None) -> list[str]:
    """Apply what is pending, each in its own transaction; return the names applied.

    Works on a connection in autocommit mode or in Python's default transaction mode, as
    long as no transaction is open.
    """
    conn = _raw(conn)
    todo = list(MIGRATIONS if migrations is None else migrations)
    if not pending_migrations(conn, todo):
        return []
    if conn.in_transaction:
        raise RuntimeError("apply_migrations needs a connection with no open transaction")
    # Later migrations read packed JSON (codec.py), whoever opened the connection.
    codec.register(conn)
    applied: list[str] = []
    for m in todo:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL)"
            )
            if conn.execute("SELECT 1 FROM _migrations WHERE name = ?", (m.name,)).fetchone():
                conn.execute("ROLLBACK")
                continue
            m.apply(conn)
            conn.execute(
                "INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", (m.name, time.time())
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        applied.append(m.name)
    if any(m.vacuum and m.name in applied for m in todo):
        # Busy (another connection reading): the free pages are reused by new rows instead.
        with contextlib.suppress(sqlite3.OperationalError):
            conn.execute("VACUUM")
    return applied


#: How an AJV error's ``params`` refine its group: the property that is missing or extra
#: (``required`` and ``additionalProperties`` report the parent object's dataPath, so without
#: it every missing field of an event would share one group and one sample message).
GROUP_DETAIL_PARAMS = {"required": "missingProperty", "additionalProperties": "additionalProperty"}
#: Events whose findings migration 0009 converts at a time (bounded memory at any size).
FINDINGS_CHUNK = 2000
#: Keyword of the groups formed by events with verdict "error" (no AJV errors).
ERROR_VERDICT_KEYWORD = "(error)"


@migration("0002_error_groups")
def _error_groups(conn: sqlite3.Connection) -> None:
    # A group is one kind of failure: (schema, dataPath, keyword, detail), where detail is
    # the missing/extra property for required/additionalProperties, the message for events
    # that failed with an error, and "" otherwise. Missing values are stored as "" so the
    # UNIQUE constraint holds (NULLs would all be distinct). `message` is the first message
    # seen, as a sample. AUTOINCREMENT: group ids are never reused, even after a reset.
    conn.execute(
        """
        CREATE TABLE error_groups (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            schema_title TEXT NOT NULL,
            schema_version TEXT NOT NULL,
            data_path TEXT NOT NULL,
            keyword TEXT NOT NULL,
            detail TEXT NOT NULL,
            message TEXT,
            UNIQUE (schema_title, schema_version, data_path, keyword, detail)
        )
        """
    )
    # One row per (group, event); n counts that event's errors in the group. Deleting an
    # event (retention, reset) deletes its links through the cascade, using error_links_event.
    conn.execute(
        """
        CREATE TABLE error_links (
            group_id INTEGER NOT NULL,
            event_id INTEGER NOT NULL REFERENCES events(id) ON DELETE CASCADE,
            n INTEGER NOT NULL DEFAULT 1,
            PRIMARY KEY (group_id, event_id)
        ) WITHOUT ROWID
        """
    )
    conn.execute("CREATE INDEX error_links_event ON error_links(event_id)")
    _backfill_error_groups(conn)


#: The errors column as a JSON array, '[]' when it is NULL, not JSON or not an array (CASE
#: evaluates lazily, so json_type never sees malformed text).
_ERRORS_ARRAY = (
    "CASE WHEN e.errors IS NULL OR NOT json_valid(e.errors) THEN '[]'"
    " WHEN json_type(e.errors) = 'array' THEN e.errors ELSE '[]' END"
)


def _backfill_error_groups(conn: sqlite3.Connection) -> None:
    """Group the errors of events stored before this migration, exactly as the writer
    groups new ones (see ``writer.error_group_keys``)."""
    text = "CASE json_type(j.value, '$.{0}') WHEN 'text' THEN json_extract(j.value, '$.{0}') END"
    keyword = f"coalesce({text.format('keyword')}, '')"
    detail = " ".join(
        f"WHEN '{kw}' THEN {text.format('params.' + param)}"
        for kw, param in GROUP_DETAIL_PARAMS.items()
    )
    conn.execute(
        f"""
        CREATE TEMP TABLE _error_keys AS
        SELECT e.id AS event_id,
               coalesce(e.schema_title, '') AS schema_title,
               coalesce(e.schema_version, '') AS schema_version,
               coalesce({text.format("dataPath")}, '') AS data_path,
               {keyword} AS keyword,
               coalesce(CASE {keyword} {detail} END, '') AS detail,
               {text.format("message")} AS message
        FROM events e,
             json_each({_ERRORS_ARRAY}) j
        WHERE e.errors IS NOT NULL AND j.type = 'object'
        UNION ALL
        SELECT e.id, coalesce(e.schema_title, ''), coalesce(e.schema_version, ''), '',
               '{ERROR_VERDICT_KEYWORD}', coalesce(e.message, ''), e.message
        FROM events e
        WHERE e.verdict = 'error'
          AND json_array_length({_ERRORS_ARRAY}) = 0
        """
    )
    conn.execute(
        """
        INSERT OR IGNORE INTO error_groups
            (schema_title, schema_version, data_path, keyword, detail, message)
        SELECT schema_title, schema_version, data_path, keyword, detail, message
        FROM _error_keys ORDER BY event_id
        """
    )
    conn.execute(
        """
        INSERT INTO error_links (group_id, event_id, n)
        SELECT g.id, k.event_id, count(*)
        FROM _error_keys k JOIN error_groups g USING
            (schema_title, schema_version, data_path, keyword, detail)
        GROUP BY g.id, k.event_id
        """
    )
    conn.execute("DROP TABLE _error_keys")


@migration("0003_findings")
def _findings(conn: sqlite3.Connection) -> None:
    # What the platform rules found (platform/rules.py, platform/history.py), as JSON on
    # the event, plus one row per (kind, event) so `finding:KIND` and `has:finding` read an
    # index. The producer's platform (agent.client_platform) is kept for the sessions view.
    conn.execute("ALTER TABLE events ADD COLUMN findings TEXT")
    conn.execute("ALTER TABLE events ADD COLUMN platform TEXT")
    conn.execute(
        """
        CREATE TABLE event_findings (
            kind TEXT NOT NULL,
            event_id INTEGER NOT NULL REFERENCES events(id) ON DELETE CASCADE,
            severity TEXT NOT NULL,
            PRIMARY KEY (kind, event_id)
        ) WITHOUT ROWID
        """
    )
    conn.execute("CREATE INDEX event_findings_event ON event_findings(event_id)")
    # Sessions, summarised as events are written (a GROUP BY over a million events would
    # take seconds). They cover everything received since the last reset: retention does
    # not shrink them.
    conn.execute(
        """
        CREATE TABLE sessions (
            session_id TEXT PRIMARY KEY,
            platform TEXT,
            first_seen REAL NOT NULL,
            last_seen REAL NOT NULL,
            events INTEGER NOT NULL DEFAULT 0,
            findings INTEGER NOT NULL DEFAULT 0
        )
        """
    )
    conn.execute("CREATE INDEX sessions_last_seen ON sessions(last_seen)")
    conn.execute(
        """
        CREATE TABLE session_pageviews (
            session_id TEXT NOT NULL,
            pageview_id TEXT NOT NULL,
            PRIMARY KEY (session_id, pageview_id)
        ) WITHOUT ROWID
        """
    )
    conn.execute(
        """
        CREATE TABLE session_streams (
            session_id TEXT NOT NULL,
            stream TEXT NOT NULL,
            events INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (session_id, stream)
        ) WITHOUT ROWID
        """
    )
    conn.execute(
        """
        INSERT INTO sessions (session_id, first_seen, last_seen, events)
        SELECT session_id, min(received_at), max(received_at), count(*)
        FROM events WHERE session_id IS NOT NULL GROUP BY session_id
        """
    )
    conn.execute(
        """
        INSERT OR IGNORE INTO session_pageviews
        SELECT DISTINCT session_id, pageview_id FROM events
        WHERE session_id IS NOT NULL AND pageview_id IS NOT NULL
        """
    )
    conn.execute(
        """
        INSERT INTO session_streams
        SELECT session_id, stream, count(*) FROM events
        WHERE session_id IS NOT NULL AND stream IS NOT NULL GROUP BY session_id, stream
        """
    )


@migration("0004_overrides")
def _overrides(conn: sqlite3.Connection) -> None:
    # Local overrides (experiment groups, stream sample rates, flags; see overrides.py) and
    # their change log, so "revert all" and "undo the last change" are single steps.
    conn.execute(
        """
        CREATE TABLE overrides (
            kind TEXT NOT NULL CHECK (kind IN ('experiment', 'sample_rate', 'flag')),
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            set_by TEXT NOT NULL,
            set_at REAL NOT NULL,
            PRIMARY KEY (kind, key)
        )
        """
    )
    # One row per override touched by a change; a change (set, delete, clear, revert) is a
    # batch. old_* is the row before (NULL: absent), new_value after (NULL: removed).
    # reverted_by is the batch that undid this one.
    conn.execute(
        """
        CREATE TABLE override_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            batch INTEGER NOT NULL,
            at REAL NOT NULL,
            action TEXT NOT NULL,
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            old_value TEXT,
            old_set_by TEXT,
            old_set_at REAL,
            new_value TEXT,
            by TEXT NOT NULL,
            reverted_by INTEGER
        )
        """
    )
    conn.execute("CREATE INDEX override_log_batch ON override_log(batch)")


@migration("0005_finding_retractions")
def _finding_retractions(conn: sqlite3.Connection) -> None:
    # Findings of earlier events that this event proved wrong (a funnel gap it filled by
    # arriving late but belonging before by dt): kept on the event that retracted them.
    conn.execute("ALTER TABLE events ADD COLUMN retracts TEXT")


@migration("0006_revalidations")
def _revalidations(conn: sqlite3.Connection) -> None:
    # A schema changed and stored events were judged again: each run, and each event whose
    # verdict flipped in it, with the errors before and after. The event's own verdict is
    # never rewritten: what the intake answered at the time stays what it answered.
    conn.execute(
        """
        CREATE TABLE revalidations (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            started_at REAL NOT NULL,
            seconds REAL NOT NULL,
            trigger TEXT NOT NULL,
            titles TEXT,
            limit_n INTEGER,
            checked INTEGER NOT NULL,
            flipped INTEGER NOT NULL,
            errors_changed INTEGER NOT NULL,
            summary TEXT NOT NULL
        )
        """
    )
    conn.execute(
        """
        CREATE TABLE flips (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id INTEGER NOT NULL REFERENCES revalidations(id) ON DELETE CASCADE,
            event_id INTEGER NOT NULL REFERENCES events(id) ON DELETE CASCADE,
            schema_uri TEXT,
            schema_location TEXT,
            before_verdict TEXT NOT NULL,
            after_verdict TEXT NOT NULL,
            before_errors TEXT,
            after_errors TEXT,
            after_message TEXT
        )
        """
    )
    conn.execute("CREATE INDEX flips_event ON flips(event_id, id)")
    conn.execute("CREATE INDEX flips_run ON flips(run_id, id)")


@migration("0007_chaos")
def _chaos(conn: sqlite3.Connection) -> None:
    # The chaos setting (chaos.py): one row, settings NULL when off (as on a fresh database);
    # revision moves on every change so a polling intake re-reads it only then. Each
    # request records the chaos applied to it (JSON; NULL when none was).
    conn.execute(
        """
        CREATE TABLE chaos (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            settings TEXT,
            set_by TEXT,
            set_at REAL,
            revision INTEGER NOT NULL DEFAULT 0
        )
        """
    )
    conn.execute("INSERT INTO chaos (id, revision) VALUES (1, 0)")
    conn.execute("ALTER TABLE requests ADD COLUMN chaos TEXT")


@migration("0008_legacy_indexed_columns")
def _legacy_indexed_columns(conn: sqlite3.Connection) -> None:
    # Legacy EventLogging events (an `event` object beside a `schema` name, such as
    # EditAttemptStep as /analytics/legacy/editattemptstep) keep their action, session,
    # pageview, platform and time inside `event` and `client_dt`; before the field map
    # (mpsandbox.fieldmap) they were stored with those columns empty. Fill them from the
    # same map the writer uses, and fold the events into the sessions summary as the
    # writer would have. Other events' columns already are what the map gives.
    from mpsandbox import fieldmap

    from .writer import _FINDINGS, _summarise_sessions, loads

    # The events columns as they were at this migration (the writer's list moves on).
    event_columns = (
        "id, request_id, idx, received_at, verdict, stream, schema_uri, schema_title,"
        " schema_version, action, session_id, pageview_id, meta_id, dt, event, fills, errors,"
        " errors_text, message, explanation, findings, platform, retracts"
    )

    rows = conn.execute(
        """
        SELECT id, event, fills FROM events
        WHERE instr(event, '"schema"') AND json_valid(event)
          AND json_type(event, '$.event') = 'object' AND json_type(event, '$.schema') = 'text'
        """
    ).fetchall()
    updates = []
    for event_id, text, fills in rows:
        v = fieldmap.indexed(loads(text), loads(fills, {}))
        updates.append((v.action, v.session_id, v.pageview_id, v.platform, v.dt, event_id))
    if not updates:
        return
    conn.executemany(
        "UPDATE events SET action = ?, session_id = ?, pageview_id = ?, platform = ?,"
        " dt = coalesce(?, dt) WHERE id = ?",
        updates,
    )
    with_session = [u[-1] for u in updates if u[1] is not None]
    for start in range(0, len(with_session), 500):
        ids = with_session[start : start + 500]
        marks = ",".join("?" * len(ids))
        batch = [
            list(r)
            for r in conn.execute(f"SELECT {event_columns} FROM events WHERE id IN ({marks})", ids)
        ]
        problems = {
            row[0]: sum(
                1
                for f in loads(row[_FINDINGS], [])
                if isinstance(f, dict) and f.get("severity") != "info"
            )
            for row in batch
        }
        _summarise_sessions(conn, batch, problems)


#: Rows packed per statement by migration 0010.
@migration("0009_compact_findings")
def _compact_findings(conn: sqlite3.Connection) -> None:
    # Findings are stored as kind + facts (platform/findings.py): the severity comes from the
    # kind, the message and the facts that follow from others are rendered on read. Convert
    # the whole findings an earlier release stored, a chunk of events at a time so memory
    # stays bounded at any size; what does not follow from its kind's form is kept beside
    # it (findings.pack), so every reader shows what it showed before. event_findings rows
    # (kind, event, severity) are unchanged.
    from mpsandbox.jsonio import escape_lone_surrogates
    from mpsandbox.platform.findings import storable

    from .writer import dumps, loads

    last = 0
    while True:
        rows = conn.execute(
            "SELECT id, findings FROM events WHERE id > ? AND findings IS NOT NULL"
            " ORDER BY id LIMIT ?",
            (last, FINDINGS_CHUNK),
        ).fetchall()
        if not rows:
            return
        last = rows[-1][0]
        updates = []
        for event_id, text in rows:
            try:
                findings = loads(text)
            except ValueError:
                continue  # not JSON: left as it is (readers show it as before)
            if isinstance(findings, list) and any(isinstance(f, dict) for f in findings):
                updates.append((escape_lone_surrogates(dumps(storable(findings))), event_id))
        conn.executemany("UPDATE events SET findings = ? WHERE id = ?", updates)


_PACK_CHUNK = 2_000


@migration("0010_lean_events", vacuum=True)
def _lean_events(conn: sqlite3.Connection) -> None:
    # Event, fills and findings JSON, request bodies and headers packed with zstd
    # (store/codec.py), with dictionaries trained on the store's own values; each distinct explanation stored once
    # and referenced by id; the two schema indexes merged into one that serves title and
    # title+version filters alike. Opening the file afterwards VACUUMs it, so the space the
    # packed rows freed goes back to the disk.
    from .codec import Packer

    conn.execute(
        "CREATE TABLE codec_dicts (id INTEGER PRIMARY KEY, column_name TEXT NOT NULL,"
        " data BLOB NOT NULL)"
    )
    # last_event_id: the newest event using it, so retention deletes an explanation once
    # every event older than the oldest one kept has gone (see retention.py).
    conn.execute(
        "CREATE TABLE explanations (id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE,"
        " last_event_id INTEGER NOT NULL)"
    )
    conn.execute("ALTER TABLE events ADD COLUMN explanation_id INTEGER")
    conn.execute(
        "INSERT INTO explanations (text, last_event_id) SELECT explanation, max(id) FROM events"
        " WHERE explanation IS NOT NULL GROUP BY explanation ORDER BY min(id)"
    )
    conn.execute(
        "UPDATE events SET explanation_id ="
        " (SELECT x.id FROM explanations x WHERE x.text = events.explanation)"
        " WHERE explanation IS NOT NULL"
    )
    conn.execute("ALTER TABLE events DROP COLUMN explanation")
    conn.execute("DROP INDEX events_schema")
    conn.execute("DROP INDEX events_schema_title")
    # Filters list newest first by id: `schema_title = ?` walks (title, id) in order, and a
    # version (exact or prefix) is checked on the same index entries, no sort, no table read.
    conn.execute("CREATE INDEX events_schema ON events(schema_title, id, schema_version)")
    # Summaries show how many of an event's findings are problems, and `has:finding`
    # selects those with any: a column (and a partial index of the events that have some)
    # instead of a count over event_findings per listed row through an index of its own.
    conn.execute("ALTER TABLE events ADD COLUMN problems INTEGER NOT NULL DEFAULT 0")
    conn.execute(
        "UPDATE events SET problems = (SELECT count(*) FROM event_findings f"
        " WHERE f.event_id = events.id AND f.severity != 'info')"
        " WHERE id IN (SELECT event_id FROM event_findings WHERE severity != 'info')"
    )
    conn.execute("CREATE INDEX events_problems ON events(id) WHERE problems > 0")
    # event_findings without its foreign key: ON DELETE CASCADE needed an index by event
    # (~110 bytes an event) to find the rows of each deleted event; retention deletes
    # them itself, by kind and event id range on the primary key (see retention.py).
    conn.execute(
        """
        CREATE TABLE event_findings_0010 (
            kind TEXT NOT NULL,
            event_id INTEGER NOT NULL,
            severity TEXT NOT NULL,
            PRIMARY KEY (kind, event_id)
        ) WITHOUT ROWID
        """
    )
    conn.execute(
        "INSERT INTO event_findings_0010 SELECT kind, event_id, severity FROM event_findings"
    )
    conn.execute("DROP TABLE event_findings")
    conn.execute("ALTER TABLE event_findings_0010 RENAME TO event_findings")
    _pack_column(conn, "events", "event", Packer("events.event"), text=True)
    _pack_column(conn, "events", "findings", Packer("events.findings"), text=True)
    conn.execute("UPDATE events SET fills = NULL WHERE fills IN ('', '{}')")  # has:fill
    _pack_column(conn, "events", "fills", Packer("events.fills"), text=True)
    _pack_column(conn, "requests", "body", Packer("requests.body"), text=False)
    _pack_column(conn, "requests", "headers", Packer("requests.headers"), text=True)


def _pack_column(
    conn: sqlite3.Connection, table: str, column: str, packer: Any, *, text: bool
) -> None:
    """Pack every stored value of a column, in chunks, with a dictionary trained on the
    first values when there are enough of them."""
    from .codec import TRAIN_MAX_SAMPLES

    sample = conn.execute(
        f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL ORDER BY id LIMIT ?",
        (TRAIN_MAX_SAMPLES,),
    )
    for (value,) in sample:
        packer.pack(value.encode("utf-8") if isinstance(value, str) else bytes(value))
    packer.train_if_ready(conn)
    packer.committed()
    after = 0
    while True:
        rows = conn.execute(
            f"SELECT id, {column} FROM {table} WHERE id > ? AND {column} IS NOT NULL"
            " ORDER BY id LIMIT ?",
            (after, _PACK_CHUNK),
        ).fetchall()
        if not rows:
            return
        updates = []
        for row_id, value in rows:
            if text and not isinstance(value, str):  # packed already
                continue
            raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
            updates.append((packer.pack(raw), row_id))
        conn.executemany(f"UPDATE {table} SET {column} = ? WHERE id = ?", updates)
        after = rows[-1][0]


@migration("0011_event_text_index")
def _event_text_index(conn: sqlite3.Connection) -> None:
    # Free text searched through an FTS5 trigram index of blocks of events instead of a
    # scan of every event's JSON (store/text_index.py says why blocks); the events already
    # stored are indexed now, a chunk at a time. And what the metrics read without opening
    # the events (store/metric_index.py): the action index covering their columns, the
    # events that mention an experiment.
    from . import metric_index, text_index

    text_index.create(conn)
    text_index.catch_up(conn)
    metric_index.create(conn)
