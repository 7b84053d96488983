"""Every filter the faces offer reads an index: the SQL the store actually runs (captured with
a trace callback while StoreReader, EventFilter, the writer and retention do their work) is
put through EXPLAIN QUERY PLAN. Each index in docs/storage.md is there for one of these."""

from __future__ import annotations

import contextlib
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mpsandbox.query import parse_query
from mpsandbox.records import EventRecord, RequestRecord
from mpsandbox.store import EventFilter, StoreReader, StoreWriter, apply_retention, connect

TITLE = "analytics/product_metrics/web/base"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """An empty store (no statistics: the plans do not lean on what a table holds)."""
    path = tmp_path / "plans.db"
    connect(path).close()
    return path


@contextlib.contextmanager
def captured(conn: sqlite3.Connection) -> Iterator[list[str]]:
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    try:
        yield seen
    finally:
        conn.set_trace_callback(None)


def plans(db: Path, statements: list[str]) -> list[str]:
    """The query plan of each captured SELECT/DELETE, one line per statement."""
    out = []
    with contextlib.closing(connect(db)) as conn:
        for sql in statements:
            head = sql.lstrip().split(None, 1)[0].upper()
            if head not in ("SELECT", "DELETE", "WITH"):
                continue
            rows = conn.execute("EXPLAIN QUERY PLAN " + sql).fetchall()
            out.append(" | ".join(r[3] for r in rows))
    assert out, statements
    return out


def reader_plans(db: Path, run: Callable[[StoreReader], object]) -> list[str]:
    with StoreReader(db) as reader:
        with captured(reader._conn()) as seen:
            run(reader)
        return plans(db, seen)


#: A walk of the whole events table, or of a whole index of it (the partial index of
#: events with problems holds only those, so walking it newest first is its use).
FULL_SCAN = re.compile(r"\bSCAN events(?! USING (COVERING )?INDEX events_problems)")


def assert_indexed(plan: str, index: str) -> None:
    assert re.search(rf"INDEX {index}\b", plan), plan
    assert not FULL_SCAN.search(plan), plan
    assert "TEMP B-TREE" not in plan, plan


FILTERS = [
    ("is:invalid", "events_verdict"),
    ("stream:product_metrics.web_base", "events_stream"),
    (f"schema:{TITLE}", "events_schema"),
    (f"schema:{TITLE}/1.3.0", "events_schema"),
    (f"schema:{TITLE}/1", "events_schema"),
    ("action:click", "events_action"),
    ("session:s1", "events_session"),
    ("pageview:p1", "events_pageview"),
    ("id:meta-1", "events_meta_id"),
    ("has:finding", "events_problems"),
    ("request:3", "events_request"),
]


@pytest.mark.parametrize(("text", "index"), FILTERS)
def test_each_filter_pages_newest_first_on_its_index(db: Path, text: str, index: str) -> None:
    flt = EventFilter(query=parse_query(text))
    for plan in reader_plans(
        db,
        lambda r: (
            r.list_events(flt, limit=50),
            r.list_events(flt, before_id=1_000, limit=50),
            r.newest_event_id(flt),
        ),
    ):
        assert re.search(rf"INDEX {index}\b", plan), plan
        assert not FULL_SCAN.search(plan), plan
        if text != "request:3":  # a request's few events are sorted by id
            assert "TEMP B-TREE" not in plan, plan


@pytest.mark.parametrize("text", ["finding:funnel.gap", "finding:funnel", "group:3"])
def test_finding_and_group_filters_read_their_link_tables_by_key(db: Path, text: str) -> None:
    flt = EventFilter(query=parse_query(text))
    for plan in reader_plans(db, lambda r: r.list_events(flt, limit=50)):
        table = "error_links" if text.startswith("group") else "event_findings"
        assert f"SEARCH {table} USING PRIMARY KEY" in plan, plan
        assert "SEARCH events USING INTEGER PRIMARY KEY" in plan, plan
        assert "SCAN" not in plan and "TEMP B-TREE" not in plan, plan


@pytest.mark.parametrize("text", ["since:5m", "until:2026-01-01"])
def test_time_filters_walk_ids_newest_first_without_sorting(db: Path, text: str) -> None:
    # received_at grows with id: the newest events of since:5m are the first ids walked
    # down, so a page stops early.
    flt = EventFilter(query=parse_query(text))
    for plan in reader_plans(db, lambda r: r.list_events(flt, before_id=1_000, limit=50)):
        assert "SEARCH events USING INTEGER PRIMARY KEY (rowid<?)" in plan, plan
        assert "TEMP B-TREE" not in plan, plan


def test_a_time_window_reads_the_received_at_index(db: Path) -> None:
    # Both bounds: the window's events, found on events_received_at, sorted by id.
    flt = EventFilter(query=parse_query("since:1d until:1h"))
    for plan in reader_plans(db, lambda r: r.list_events(flt, before_id=1_000, limit=50)):
        assert "INDEX events_received_at (" in plan, plan
        assert not FULL_SCAN.search(plan), plan


def test_an_event_its_siblings_and_its_request_read_by_key(db: Path) -> None:
    for plan in reader_plans(db, lambda r: (r.get_event(1), r.get_request(1))):
        assert "SCAN" not in plan and "TEMP B-TREE" not in plan, plan
    with StoreReader(db) as reader, captured(reader._conn()) as seen:
        reader.get_event(1)
    sibling_sql = [s for s in seen if "SELECT id, idx, verdict FROM events" in s]
    # No event 1 here, so get_event stops early: plan the siblings query it would run.
    sibling_sql = sibling_sql or [
        "SELECT id, idx, verdict FROM events WHERE request_id = 1 ORDER BY idx, id"
    ]
    assert_indexed(plans(db, sibling_sql)[0], "events_request")


def test_error_groups_of_a_filter_read_indexes(db: Path) -> None:
    flt = EventFilter(query=parse_query("stream:product_metrics.web_base"))
    for plan in reader_plans(db, lambda r: (r.list_error_groups(flt), r.get_error_group(1))):
        assert "SCAN events" not in plan, plan
        assert "SCAN error_links" not in plan, plan


def test_retention_by_age_and_by_count_reads_indexes(db: Path) -> None:
    writer = StoreWriter(db)
    writer.start()
    try:
        for i in range(3):
            submit_one(writer, f"m{i}", at=time.time() - 7200 * (3 - i))
    finally:
        writer.close()
    with contextlib.closing(connect(db)) as conn, captured(conn) as seen:
        result = apply_retention(conn, max_events=1, max_age_s=3600 * 5, chunk=100)
    assert result["events"] == 2
    statements = [s for s in seen if s.lstrip().split(None, 1)[0].upper() != "BEGIN"]
    planned = dict(zip(statements, plans(db, statements), strict=False))
    for sql, plan in planned.items():
        if "SCAN events" in plan or "SCAN requests" in plan:
            # Only walks of the id order that stop at a LIMIT (the oldest event, the
            # newest beyond the count limit).
            assert "ORDER BY id" in sql and "LIMIT" in sql, (sql, plan)
        assert "SCAN event_findings" not in plan and "TEMP B-TREE" not in plan, (sql, plan)
    joined = " ".join(planned.values())
    for index in ("events_received_at", "requests_received_at", "requests_without_events"):
        assert re.search(rf"INDEX {index}\b", joined), joined
    # The finding links of deleted events go by their key, kind by kind.
    assert "SEARCH event_findings USING PRIMARY KEY (kind=? AND event_id<?)" in joined, joined


def submit_one(writer: StoreWriter, meta_id: str, *, at: float, retracts=None) -> None:
    request = RequestRecord(
        received_at=at, method="POST", path="/v1/events", query="", headers=[], body=b"[]"
    )
    event = EventRecord(
        index=0,
        received={"meta": {"id": meta_id}},
        verdict="valid",
        received_at=at,
        schema_title=TITLE,
        findings=[{"kind": "funnel.gap", "severity": "warning", "message": "gap"}],
        retracts=retracts,
    )
    writer.submit(request, [event]).result(5)


def test_the_writers_retraction_lookup_reads_the_meta_id_index(db: Path) -> None:
    """A late event retracts a finding of an earlier one, found by meta.id."""
    writer = StoreWriter(db)
    writer.start()
    seen: list[str] = []
    try:
        writer.run_in_writer(lambda c: c.set_trace_callback(seen.append)).result(5)
        submit_one(
            writer, "late", at=time.time(), retracts=[{"kind": "funnel.gap", "meta_id": "m"}]
        )
        writer.run_in_writer(lambda c: c.set_trace_callback(None)).result(5)
    finally:
        writer.close()
    lookups = [s for s in seen if "WHERE meta_id = " in s]
    assert lookups, seen
    assert_indexed(plans(db, lookups)[0], "events_meta_id")
