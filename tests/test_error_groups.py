"""Error groups: written with the events by the real writer (thread and process), backfilled
by migration 0002, listed and drilled into by the reader, cleared by reset, and kept
truthful by retention. Plus the reader's virtual-table helpers (offset, capped counts)."""

from __future__ import annotations

import copy
import sqlite3
import time
from pathlib import Path

import pytest

from mpsandbox.pipeline import Pipeline, RequestContext
from mpsandbox.query import parse_query
from mpsandbox.records import EventRecord, RequestRecord
from mpsandbox.sandbox import build_registry
from mpsandbox.store import (
    MIGRATIONS,
    EventFilter,
    ProcessStoreWriter,
    StoreReader,
    StoreWriter,
    apply_migrations,
    connect,
)
from mpsandbox.store.writer import (
    _EVENT_COLUMNS,
    _REQUEST_COLUMNS,
    encode_event,
    encode_request,
    insert_rows,
)
from tests.conftest import settings_for
from tests.test_bad_input import VALID

TITLE = "analytics/product_metrics/web/base"


def ev(**changes):
    e = copy.deepcopy(VALID)
    for key, value in changes.items():
        if value is None:
            e.pop(key, None)
        else:
            e[key] = value
    return e


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Pipeline:
    return Pipeline(build_registry(settings_for(tmp_path_factory.mktemp("registry"))))


def judge(pipeline: Pipeline, bodies: list, at: float | None = None) -> list[EventRecord]:
    ctx = RequestContext(received_at=time.time() if at is None else at)
    return pipeline.judge_batch(bodies, ctx)


def req(n: int, at: float | None = None) -> RequestRecord:
    return RequestRecord(
        received_at=time.time() if at is None else at,
        method="POST",
        path="/v1/events",
        query="",
        headers=[],
        body=b"[]",
        status=400,
        event_count=n,
    )


def write(writer, records: list[EventRecord], at: float | None = None) -> list[int]:
    return writer.submit(req(len(records), at), records).result(10)[1]


def key(group: dict) -> tuple:
    return (group["schema_title"], group["data_path"], group["keyword"], group["detail"])


#: A request of every kind of failure, and some valid events.
MIXED = [
    ev(action=42),  # type at .action
    ev(action=None),  # required at "" (action)
    ev(action=None, agent=None),  # required at "" (action) and (agent)
    ev(action=7),  # type at .action again
    ev(meta={"dt": "2024-10-01T00:00:00Z"}),  # required at .meta (stream)
    ev(**{"$schema": "/analytics/nope/1.0.0"}),  # error: schema not found
    ev(**{"$schema": None}),  # error: no $schema
    ev(),
    ev(action="hover"),
]


def test_groups_counts_and_drill_down(tmp_path, pipeline) -> None:
    db = tmp_path / "g.db"
    t0 = time.time() - 100
    with StoreWriter(db) as writer:
        first = write(writer, judge(pipeline, MIXED, t0), t0)
        second = write(writer, judge(pipeline, [ev(action=1.5), ev()], t0 + 50), t0 + 50)
    with StoreReader(db) as reader:
        groups = reader.list_error_groups()
        by_key = {key(g): g for g in groups}
        assert set(by_key) == {
            (TITLE, ".action", "type", ""),
            (TITLE, "", "required", "action"),
            (TITLE, "", "required", "agent"),
            (TITLE, ".meta", "required", "stream"),
            ("analytics/nope", "", "(error)", "Failed loading schema at /analytics/nope/1.0.0"),
            ("", "", "(error)", MIXED_NO_SCHEMA_MESSAGE),
        }
        action_type = by_key[(TITLE, ".action", "type", "")]
        assert groups[0] == action_type  # most frequent first
        assert (action_type["count"], action_type["events"]) == (3, 3)
        assert (action_type["first_seen"], action_type["last_seen"]) == (t0, t0 + 50)
        assert action_type["message"] == "should be string"
        assert action_type["schema_version"] == "1.3.0"
        missing_action = by_key[(TITLE, "", "required", "action")]
        assert missing_action["message"] == "should have required property 'action'"
        assert missing_action["events"] == 2
        not_found = by_key[("analytics/nope", "", "(error)", not_found_detail())]
        assert not_found["events"] == 1 and not_found["message"] == not_found_detail()
        assert not_found["schema_version"] == "1.0.0"
        # Valid events are in no group.
        linked = {r[0] for r in raw(db, "SELECT event_id FROM error_links")}
        assert linked == set(first[:7]) | {second[0]}

        # Drilling into a group: the filter field and the query term agree.
        expected = [second[0], first[3], first[0]]
        for flt in (
            EventFilter(error_group=action_type["id"]),
            EventFilter(query=parse_query(f"group:{action_type['id']}")),
        ):
            assert [e["id"] for e in reader.list_events(flt)] == expected
            assert reader.count_events(flt) == 3
        assert reader.list_events(EventFilter(error_group=10**6)) == []
        # Groups of a subset of events: the filter narrows the counts.
        recent = reader.list_error_groups(EventFilter(since=t0 + 10))
        assert [(key(g), g["count"]) for g in recent] == [((TITLE, ".action", "type", ""), 1)]
        only_errors = reader.list_error_groups(EventFilter(query=parse_query("is:error")))
        assert {g["keyword"] for g in only_errors} == {"(error)"}
        assert reader.list_error_groups(EventFilter(query=parse_query("is:valid"))) == []
        assert len(reader.list_error_groups(limit=2)) == 2
        # One group, counted over everything.
        assert reader.get_error_group(action_type["id"]) == action_type
        assert reader.get_error_group(10**6) is None


MIXED_NO_SCHEMA_MESSAGE = "Field(s) $schema were missing from event and could not be extracted."


def not_found_detail() -> str:
    return "Failed loading schema at /analytics/nope/1.0.0"


def raw(db: Path, sql: str, params=()) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def test_repeated_errors_in_one_event_count_once_per_event(tmp_path) -> None:
    """Two errors of the same group in one event: count 2, events 1."""
    errors = [
        {"keyword": "enum", "dataPath": ".x", "params": {}, "message": "should be one of A"},
        {"keyword": "enum", "dataPath": ".x", "params": {}, "message": "should be one of B"},
        {"keyword": "type", "dataPath": ".y", "params": {}, "message": "should be string"},
        "not an error object",
    ]
    record = EventRecord(
        index=0, received={}, verdict="invalid", received_at=time.time(), schema_title="t/x",
        schema_version="1.0.0", errors=errors,
    )  # fmt: skip
    db = tmp_path / "r.db"
    with StoreWriter(db) as writer:
        write(writer, [record])
    with StoreReader(db) as reader:
        groups = {g["keyword"]: g for g in reader.list_error_groups()}
    assert set(groups) == {"enum", "type"}
    assert (groups["enum"]["count"], groups["enum"]["events"]) == (2, 1)
    assert groups["enum"]["message"] == "should be one of A"  # the first is the sample


def test_reset_clears_groups_and_the_writers_cache(tmp_path, pipeline) -> None:
    db = tmp_path / "reset.db"
    with StoreWriter(db) as writer:
        write(writer, judge(pipeline, [ev(action=42)]))
        with StoreReader(db) as reader:
            [before] = reader.list_error_groups()
            assert writer.reset().result(10) == {"events": 1, "requests": 1}
            assert raw(db, "SELECT count(*) FROM error_groups") == [(0,)]
            assert raw(db, "SELECT count(*) FROM error_links") == [(0,)]
            assert reader.list_error_groups() == []
            # The same kind of error again: a new group (ids are never reused), linked to
            # it rather than to the id the writer remembered from before the reset.
            [new_id] = write(writer, judge(pipeline, [ev(action=43)]))
            [after] = reader.list_error_groups()
            assert key(after) == key(before) and after["id"] > before["id"]
            assert [e["id"] for e in reader.list_events(EventFilter(error_group=after["id"]))] == [
                new_id
            ]


def test_failed_batch_does_not_leave_unknown_group_ids_in_the_cache(tmp_path, pipeline) -> None:
    db = tmp_path / "fail.db"
    with StoreWriter(db) as writer:
        writer.run_in_writer(
            lambda conn: conn.execute(
                "CREATE TEMP TRIGGER boom BEFORE INSERT ON error_links"
                " BEGIN SELECT RAISE(ABORT, 'boom'); END"
            )
        ).result(5)
        failed = writer.submit(req(1), judge(pipeline, [ev(action=42)]))
        with pytest.raises(Exception, match="boom"):
            failed.result(10)
        writer.run_in_writer(lambda conn: conn.execute("DROP TRIGGER boom")).result(5)
        assert raw(db, "SELECT count(*) FROM error_groups") == [(0,)]  # rolled back
        [event_id] = write(writer, judge(pipeline, [ev(action=42)]))
    with StoreReader(db) as reader:
        [group] = reader.list_error_groups()
        assert group["events"] == 1
        assert [e["id"] for e in reader.list_events(EventFilter(error_group=group["id"]))] == [
            event_id
        ]


def test_retention_deletes_links_and_counts_follow(tmp_path, pipeline) -> None:
    db = tmp_path / "ret.db"
    now = time.time()
    with StoreWriter(db) as writer:
        old = write(writer, judge(pipeline, [ev(action=1), ev(action=2)], now - 7200), now - 7200)
        new = write(writer, judge(pipeline, [ev(action=3), ev()], now), now)
        with StoreReader(db) as reader:
            [group] = reader.list_error_groups()
            assert group["events"] == 3
            assert writer.run_retention(None, 3600).result(10)["events"] == 2
            [group] = reader.list_error_groups()
            assert (group["events"], group["count"], group["first_seen"]) == (1, 1, now)
            linked = raw(db, "SELECT event_id FROM error_links")
            assert linked == [(new[0],)] and old[0] not in linked
            assert writer.run_retention(0, None).result(10)["events"] == 2
            assert reader.list_error_groups() == []
            gone = reader.get_error_group(group["id"])
            assert gone is not None and (gone["count"], gone["events"]) == (0, 0)
            assert raw(db, "SELECT count(*) FROM error_links") == [(0,)]


def test_process_writer_links_errors_too(tmp_path, pipeline) -> None:
    db = tmp_path / "proc.db"
    w = ProcessStoreWriter(db)
    w.start()
    try:
        ids = w.submit(req(3), judge(pipeline, [ev(action=1), ev(), ev(action=None)])).result(30)[1]
        w.flush().result(30)
        with StoreReader(db) as reader:
            groups = {key(g): g for g in reader.list_error_groups()}
            assert set(groups) == {
                (TITLE, ".action", "type", ""),
                (TITLE, "", "required", "action"),
            }
            w.reset().result(30)
            assert reader.list_error_groups() == []
            w.submit(req(1), judge(pipeline, [ev(action=None)])).result(30)
            [group] = reader.list_error_groups()
            assert key(group) == (TITLE, "", "required", "action") and group["events"] == 1
    finally:
        w.close()
    assert ids


def test_migration_backfills_groups_exactly_as_the_writer_links_them(tmp_path, pipeline) -> None:
    records = judge(pipeline, [*MIXED, ev(action=[1]), ev(performer={"session_id": 5})])
    records.append(
        EventRecord(
            index=len(records), received={}, verdict="invalid", received_at=time.time(),
            errors=[{"keyword": 5, "dataPath": None}, "junk"],
        )
    )  # fmt: skip
    # The writer's way, on a current database.
    written = tmp_path / "written.db"
    with StoreWriter(written) as writer:
        write(writer, copy.deepcopy(records))
    # The same rows in a database made before 0002, then upgraded.
    old = tmp_path / "old.db"
    conn = sqlite3.connect(old, isolation_level=None)
    assert apply_migrations(conn, MIGRATIONS[:1]) == ["0001_initial"]
    request_row = encode_request(req(len(records)), len(records))[:17]
    request_row[0] = 1
    # The columns 0001 had (later migrations add more at the end).
    request_columns_0001 = ", ".join(c.strip() for c in _REQUEST_COLUMNS.split(",")[:17])
    columns_0001 = ", ".join(c.strip() for c in _EVENT_COLUMNS.split(",")[:20]).replace(
        "explanation_id", "explanation"
    )
    rows = [encode_event(r)[:20] for r in records]
    for i, row in enumerate(rows, 1):
        row[0], row[1] = i, 1
    conn.execute("BEGIN")
    insert_rows(conn, "requests", request_columns_0001, [request_row])
    insert_rows(conn, "events", columns_0001, rows)
    conn.execute("COMMIT")
    assert "error_groups" not in {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    connect(old).close()  # applies 0002

    def groups(db: Path) -> list[tuple]:
        with StoreReader(db) as reader:
            return sorted(
                (key(g), g["schema_version"], g["message"], g["count"], g["events"])
                for g in reader.list_error_groups()
            )

    backfilled = groups(old)
    assert backfilled == groups(written)
    assert len(backfilled) == 8
    assert ((TITLE, ".performer.session_id", "type", ""), "1.3.0", "should be string", 1, 1) in (
        backfilled
    )
    assert (("", "", "", ""), "", None, 1, 1) in backfilled
    applied = [r[0] for r in raw(old, "SELECT name FROM _migrations ORDER BY rowid")]
    assert applied[:2] == ["0001_initial", "0002_error_groups"]
    assert applied == [m.name for m in MIGRATIONS]


# -- virtual-table helpers -------------------------------------------------------------------


def test_offset_capped_count_and_newest_id(tmp_path, pipeline) -> None:
    db = tmp_path / "v.db"
    with StoreWriter(db) as writer:
        ids = write(writer, judge(pipeline, [ev(action=f"a{i}") for i in range(30)]))
        bad = write(writer, judge(pipeline, [ev(action=1)]))
    everything = sorted(ids + bad, reverse=True)
    with StoreReader(db) as reader:
        page = reader.list_events(offset=10, limit=5)
        assert [e["id"] for e in page] == everything[10:15]
        assert "errors_count" in page[0]
        valid = EventFilter(query=parse_query("is:valid"))
        assert [e["id"] for e in reader.list_events(valid, offset=28, limit=5)] == sorted(ids)[:2][
            ::-1
        ]
        assert reader.list_events(offset=1000) == []
        oldest = reader.list_events(newest_first=False, offset=1, limit=2)
        assert [e["id"] for e in oldest] == sorted(ids)[1:3]
        assert reader.list_events(EventFilter(verdict="invalid"))[0]["errors_count"] == 1

        assert reader.count_events() == 31
        assert reader.count_events(cap=10) == 10
        assert reader.count_events(cap=100) == 31
        assert reader.count_events(valid, cap=0) == 0
        assert reader.count_events(EventFilter(verdict="invalid"), cap=10) == 1

        assert reader.newest_event_id() == bad[0]
        assert reader.newest_event_id(valid) == ids[-1]
        assert reader.newest_event_id(EventFilter(stream="nope")) is None
