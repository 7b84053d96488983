"""The SQLite store against real files: migrations, the single writer, queries, retention,
and every way a database can be unusable."""

from __future__ import annotations

import base64
import os
import sqlite3
import threading
import time
from concurrent.futures import Future
from pathlib import Path

import pytest

from mpsandbox.records import EventRecord, RequestRecord, apply_fills
from mpsandbox.store import (
    MIGRATIONS,
    BacklogFull,
    EventFilter,
    StoreError,
    StoreReader,
    StoreWriter,
    applied_migrations,
    apply_migrations,
    apply_retention,
    connect,
    indexed_fields,
    open_database,
)

SCHEMA_TITLE = "analytics/mediawiki/client/metrics_event"


def make_request(n_events: int = 1, *, at: float | None = None, **kw) -> RequestRecord:
    fields = {
        "received_at": time.time() if at is None else at,
        "method": "POST",
        "path": "/v1/events",
        "query": "hasty=true",
        "headers": [("content-type", "application/json"), ("user-agent", "pytest")],
        "body": b'[{"x": 1}]',
        "status": 202,
        "event_count": n_events,
    }
    fields.update(kw)
    return RequestRecord(**fields)


def make_event(index: int = 0, *, at: float | None = None, **kw) -> EventRecord:
    received = kw.pop(
        "received",
        {
            "$schema": f"/{SCHEMA_TITLE}/1.2.0",
            "meta": {"stream": "product_metrics.web_base", "id": f"meta-{index}"},
            "dt": "2024-05-01T12:00:00Z",
            "action": "click",
            "performer": {"session_id": "sess-1", "pageview_id": f"pv-{index % 3}"},
        },
    )
    fields = {
        "index": index,
        "received": received,
        "verdict": "valid",
        "received_at": time.time() if at is None else at,
        "schema_uri": f"/{SCHEMA_TITLE}/1.2.0",
        "schema_title": SCHEMA_TITLE,
        "schema_version": "1.2.0",
        "stream": "product_metrics.web_base",
    }
    fields.update(kw)
    return EventRecord(**fields)


def events(n: int, **kw) -> list[EventRecord]:
    return [make_event(i, **kw) for i in range(n)]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "store" / "mpsandbox.db"


@pytest.fixture
def writer(db_path: Path):
    w = StoreWriter(db_path)
    w.start()
    yield w
    w.close()


def count(path: Path, table: str = "events") -> int:
    """Counted on a fresh connection of its own: proves what is committed on disk."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


def blocked(writer: StoreWriter) -> tuple[threading.Event, Future]:
    """Hold the writer thread busy until the returned event is set."""
    release = threading.Event()
    started = threading.Event()

    def hold(conn: sqlite3.Connection) -> None:
        started.set()
        release.wait(10)

    fut = writer.run_in_writer(hold)
    assert started.wait(5)
    return release, fut


# -- database & migrations ---------------------------------------------------------------


def test_open_creates_parents_sets_pragmas_and_migrates(db_path: Path) -> None:
    db = open_database(db_path)
    try:
        assert db_path.exists()
        conn = db.conn
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0
        assert {"requests", "events", "_migrations"} <= set(db.table_names())
        indexes = {i.name for i in db["events"].indexes}
        assert {"events_stream", "events_schema", "events_verdict", "events_meta_id"} <= indexes
    finally:
        db.close()


def test_migrations_are_recorded_and_idempotent(db_path: Path) -> None:
    open_database(db_path).close()
    db = open_database(db_path)
    try:
        applied = applied_migrations(db)
        assert list(applied) == [m.name for m in MIGRATIONS]
        assert all(isinstance(t, float) for t in applied.values())
        assert apply_migrations(db) == []
        assert apply_migrations(db.conn) == []
        assert db["_migrations"].count == len(MIGRATIONS)
    finally:
        db.close()


def test_readonly_database_refuses_writes_and_unmigrated_files(db_path: Path, tmp_path) -> None:
    open_database(db_path).close()
    ro = open_database(db_path, readonly=True)
    try:
        with pytest.raises(sqlite3.OperationalError):
            ro.conn.execute("DELETE FROM events")
    finally:
        ro.close()
    plain = tmp_path / "plain.db"
    sqlite3.connect(plain).execute("CREATE TABLE x (y)").connection.close()
    with pytest.raises(StoreError, match="not created by mpsandbox") as info:
        open_database(plain, readonly=True)
    assert info.value.kind == "schema"
    with pytest.raises(StoreError, match="no database") as info:
        open_database(tmp_path / "missing.db", readonly=True)
    assert info.value.kind == "missing"


def test_store_error_on_a_directory(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as info:
        open_database(tmp_path)
    assert str(tmp_path) in str(info.value)
    assert "folder" in str(info.value)


def test_store_error_on_garbage_bytes(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(os.urandom(8192))
    with pytest.raises(StoreError) as info:
        open_database(path)
    assert info.value.kind == "notadb"
    assert str(path) in str(info.value) and "move it aside" in str(info.value)
    with pytest.raises(StoreError):
        StoreReader(path)
    w = StoreWriter(path)
    with pytest.raises(StoreError) as info:
        w.start()
    assert info.value.kind == "notadb"
    w.close()


def test_store_error_on_an_unreadable_path(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        path = tmp_path / "secret.db"
        open_database(path).close()
        path.chmod(0)
        try:
            with pytest.raises(StoreError) as info:
                open_database(path)
        finally:
            path.chmod(0o600)
    else:
        # Root reads anything whatever its mode; a path below a regular file is unopenable
        # for everyone.
        blocker = tmp_path / "not-a-folder"
        blocker.write_text("x")
        path = blocker / "mpsandbox.db"
        with pytest.raises(StoreError) as info:
            open_database(path)
    assert str(path) in str(info.value)


def test_store_error_when_locked_by_another_connection(tmp_path: Path) -> None:
    # A rollback-journal file that another connection holds exclusively: switching it to
    # WAL (and migrating) needs the lock.
    path = tmp_path / "locked.db"
    open_database(path).close()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("PRAGMA journal_mode = DELETE")
    other.execute("BEGIN EXCLUSIVE")
    other.execute("DELETE FROM _migrations")
    try:
        with pytest.raises(StoreError) as info:
            open_database(path, busy_timeout=0.1)
        assert info.value.kind == "locked"
        assert str(path) in str(info.value) and "locked" in str(info.value)
    finally:
        other.execute("ROLLBACK")
        other.close()
    open_database(path).close()  # fine once released


def test_store_error_for_another_programs_database(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE requests (x)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="another program") as info:
        open_database(path)
    assert info.value.kind == "schema"


def test_store_error_for_memory_paths() -> None:
    with pytest.raises(StoreError, match="real file path"):
        open_database(":memory:")


# -- writer ------------------------------------------------------------------------------


def test_round_trip_keeps_everything_exact(writer: StoreWriter, db_path: Path) -> None:
    body = b"\xff\xfe not utf-8 \x00 \xc3"
    req = make_request(
        6,
        body=body,
        headers=[("X-Émoji", "🙂"), ("content-type", "application/json")],
        remote="127.0.0.1",
        request_id="req-1",
        reason="Accepted",
        response_body=b"ok",
        hasty=True,
        note="a note",
    )
    fills = {
        "meta.id": {"value": "filled-meta", "by": "fill"},
        "dt": {"value": "2024-01-01T00:00:00Z", "by": "fill"},
        "http.request_headers.user-agent": {"value": "pytest", "by": "fill"},
    }
    evs = [
        make_event(
            0, received={"action": "naïve ☃", "performer": {"session_id": "s"}}, fills=fills
        ),
        make_event(
            1,
            received=[1, 2, {"a": None}],
            verdict="invalid",
            errors=[{"instancePath": "", "message": "must be object"}],
            errors_text="data must be object",
        ),
        make_event(2, received="just a string", verdict="error", message="EventGate said no"),
        make_event(3, received=None),
        make_event(4, received=12.5, explanation={"schema": {"from": "builtin"}, "hints": ["x"]}),
        make_event(5, received={"big": 2**80, "meta": {"id": 7}, "dt": 3}),
    ]
    req_id, ids = writer.submit(req, evs).result(5)
    assert len(ids) == 6 and ids == sorted(ids)

    with StoreReader(db_path) as reader:
        first = reader.get_event(ids[0])
        assert first["event"] == evs[0].received
        assert first["accepted"] == apply_fills(evs[0].received, fills)
        assert first["accepted"]["meta"]["id"] == "filled-meta"
        assert first["fills"] == fills
        assert first["action"] == "naïve ☃"
        assert first["session_id"] == "s"
        assert first["meta_id"] == "filled-meta" and first["dt"] == "2024-01-01T00:00:00Z"
        assert first["verdict"] == "valid" and first["idx"] == 0
        r = first["request"]
        assert r["id"] == req_id
        assert r["body_base64"] is True and base64.b64decode(r["body"]) == body
        assert r["headers"] == [["X-Émoji", "🙂"], ["content-type", "application/json"]]
        assert r["response_body"] == "ok" and r["response_body_base64"] is False
        assert r["hasty"] is True and r["remote"] == "127.0.0.1" and r["request_id"] == "req-1"
        assert r["status"] == 202 and r["reason"] == "Accepted" and r["note"] == "a note"
        assert [s["id"] for s in first["siblings"]] == ids
        assert [s["idx"] for s in first["siblings"]] == list(range(6))

        second = reader.get_event(ids[1])
        assert second["event"] == [1, 2, {"a": None}]
        assert second["errors"] == evs[1].errors and second["errors_count"] == 1
        assert second["errors_text"] == "data must be object"
        assert reader.get_event(ids[2])["event"] == "just a string"
        assert reader.get_event(ids[2])["message"] == "EventGate said no"
        assert reader.get_event(ids[3])["event"] is None
        assert reader.get_event(ids[4])["explanation"] == evs[4].explanation
        big = reader.get_event(ids[5])
        assert big["event"]["big"] == 2**80  # exact, not a float
        assert big["meta_id"] is None and big["dt"] is None  # not strings: not indexed
        assert reader.get_event(10**9) is None

        request = reader.get_request(req_id)
        assert [e["id"] for e in request["events"]] == ids
        assert request["stored_events"] == 6 and request["body_size"] == len(body)
        assert reader.list_requests(limit=5)[0]["id"] == req_id


def test_large_request_crosses_insert_chunks(writer: StoreWriter, db_path: Path) -> None:
    n = 1024 + 256 + 64 + 16 + 4 + 3
    req_id, ids = writer.submit(make_request(n), events(n)).result(10)
    assert ids == list(range(ids[0], ids[0] + n))
    with StoreReader(db_path) as reader:
        got = reader.get_request(req_id)["events"]
        assert [e["idx"] for e in got] == list(range(n))
        assert reader.get_event(ids[-1])["event"]["meta"]["id"] == f"meta-{n - 1}"


def test_insert_rows_respects_the_variable_limit() -> None:
    from mpsandbox.store.writer import insert_rows

    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (a, b, c)")
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 20)  # at most 6 rows a statement
    insert_rows(conn, "t", "a, b, c", [[i, str(i), None] for i in range(1500)])
    assert conn.execute("SELECT count(*), sum(a) FROM t").fetchone() == (1500, sum(range(1500)))
    conn.close()


def test_text_body_is_returned_as_text(writer: StoreWriter, db_path: Path) -> None:
    req_id, _ = writer.submit(make_request(0, body="ünïcode body".encode()), []).result(5)
    with StoreReader(db_path) as reader:
        got = reader.get_request(req_id)
    assert got["body"] == "ünïcode body" and got["body_base64"] is False


def test_indexed_fields_only_take_strings() -> None:
    assert indexed_fields(["not", "a", "dict"], {}) == dict.fromkeys(
        ("action", "session_id", "pageview_id", "platform", "meta_id", "dt")
    )
    got = indexed_fields(
        {"action": 1, "performer": "x", "meta": {"id": None}},
        {"meta.id": {"value": "m", "by": "default"}, "dt": {"value": 5, "by": "fill"}},
    )
    assert got == {
        "action": None,
        "session_id": None,
        "pageview_id": None,
        "platform": None,
        "meta_id": "m",
        "dt": None,
    }


def test_future_resolves_only_after_commit(db_path: Path) -> None:
    seen_in_callback: list[int] = []
    seen_on_commit: list[tuple[int, int]] = []

    def on_commit(ids: list[int]) -> None:
        seen_on_commit.append((len(ids), count(db_path)))

    w = StoreWriter(db_path, on_commit=on_commit)
    w.start()
    try:
        fut = w.submit(make_request(3), events(3))
        # Done callbacks run in the writer thread the moment the result is set.
        fut.add_done_callback(lambda f: seen_in_callback.append(count(db_path)))
        fut.result(5)
        assert count(db_path) >= 3
        w.flush().result(5)
    finally:
        w.close()
    assert seen_in_callback and seen_in_callback[0] >= 3
    assert seen_on_commit[0] == (3, 3)


def test_ids_keep_increasing_across_reset_and_reopen(db_path: Path) -> None:
    w = StoreWriter(db_path)
    w.start()
    _, first = w.submit(make_request(2), events(2)).result(5)
    assert w.reset().result(5) == {"events": 2, "requests": 1}
    _, second = w.submit(make_request(2), events(2)).result(5)
    w.close()
    assert min(second) > max(first)
    w = StoreWriter(db_path)
    w.start()
    w.reset().result(5)
    _, third = w.submit(make_request(1), events(1)).result(5)
    w.close()
    assert third[0] > max(second)


def test_group_commit_from_many_threads(db_path: Path) -> None:
    committed: list[list[int]] = []
    w = StoreWriter(db_path, on_commit=committed.append, max_backlog_events=1_000_000)
    w.start()
    release, _ = blocked(w)
    n_threads, per_thread = 8, 50
    futures: list[Future] = []
    lock = threading.Lock()

    def submit_many() -> None:
        for _ in range(per_thread):
            f = w.submit(make_request(5), events(5))
            with lock:
                futures.append(f)

    threads = [threading.Thread(target=submit_many) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    release.set()
    results = [f.result(10) for f in futures]
    stats = w.stats()
    w.close()
    all_ids = [i for _, ids in results for i in ids]
    assert len(all_ids) == len(set(all_ids)) == n_threads * per_thread * 5
    assert len({r for r, _ in results}) == n_threads * per_thread
    assert count(db_path) == len(all_ids)
    # 400 submissions queued while the writer was busy went out in a handful of commits.
    assert stats["committed_batches"] <= 5
    assert sorted(i for batch in committed for i in batch) == sorted(all_ids)
    assert stats["committed_events"] == len(all_ids) and stats["queued_events"] == 0


def test_backlog_full_is_raised_synchronously(db_path: Path) -> None:
    w = StoreWriter(db_path, max_backlog_events=10)
    w.start()
    try:
        release, _ = blocked(w)
        first = w.submit(make_request(6), events(6))
        assert w.reserve_ok(4) and not w.reserve_ok(5)
        with pytest.raises(BacklogFull):
            w.submit(make_request(5), events(5))
        assert w.stats()["queued_events"] == 6
        release.set()
        first.result(5)
        assert w.reserve_ok(10)
        w.submit(make_request(10), events(10)).result(5)
    finally:
        w.close()
    assert count(db_path) == 16


def test_notes_are_always_accepted_but_bounded(db_path: Path) -> None:
    w = StoreWriter(db_path, max_backlog_events=1, max_pending_notes=3)
    w.start()
    try:
        release, _ = blocked(w)
        w.submit(make_request(1), events(1))
        with pytest.raises(BacklogFull):
            w.submit(make_request(1), events(1))
        big = b"x" * (200 * 1024)
        notes = [
            w.submit_unbounded_note(make_request(1, body=big, status=503, note="answered 503"))
            for _ in range(5)
        ]
        assert w.stats()["queued_notes"] == 3
        release.set()
        ids = [f.result(5) for f in notes]
        stats = w.stats()
    finally:
        w.close()
    assert all(isinstance(i, int) for i in ids[:3]) and ids[3:] == [None, None]
    assert stats["dropped_notes"] == 2 and stats["truncated_notes"] == 3
    assert stats["queued_notes"] == 0
    with StoreReader(db_path) as reader:
        note = reader.get_request(ids[0])
    assert note["body_size"] == 64 * 1024 and note["status"] == 503
    assert note["note"].startswith("answered 503") and "kept 65536 of 204800" in note["note"]
    assert note["stored_events"] == 0 and note["event_count"] == 1


def test_close_drains_everything_queued(db_path: Path) -> None:
    w = StoreWriter(db_path)
    w.start()
    futures = [w.submit(make_request(10), events(10)) for _ in range(1000)]
    w.close()
    assert all(f.done() and not f.exception() for f in futures)
    assert count(db_path) == 10_000
    assert count(db_path, "requests") == 1000
    w.close()  # twice is fine
    with pytest.raises(StoreError, match="closed"):
        w.submit(make_request(1), events(1))


def test_close_without_start_and_submit_before_start(db_path: Path) -> None:
    StoreWriter(db_path).close()
    w = StoreWriter(db_path)
    fut = w.submit(make_request(1), events(1))  # queued until the thread runs
    w.start()
    assert fut.result(5)[1]
    w.close()


async def test_async_write(writer: StoreWriter, db_path: Path) -> None:
    req_id, ids = await writer.write(make_request(2), events(2))
    assert req_id > 0 and len(ids) == 2
    assert count(db_path) == 2


def test_malformed_record_is_refused_at_submit(writer: StoreWriter) -> None:
    with pytest.raises(StoreError, match="malformed") as info:
        writer.submit(make_request(1), [make_event(0, verdict="maybe")])
    assert info.value.kind == "data"
    assert writer.stats()["queued_events"] == 0


def test_locked_database_fails_the_batch_then_writer_recovers(db_path: Path) -> None:
    w = StoreWriter(db_path, busy_timeout=0.2)
    w.start()
    other = sqlite3.connect(db_path, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        failing = w.submit(make_request(2), events(2))
        with pytest.raises(StoreError) as info:
            failing.result(10)
        assert info.value.kind == "locked"
        assert str(db_path) in str(info.value)
        assert w.last_error is info.value
        stats = w.stats()
        assert stats["failed_batches"] == 1 and stats["queued_events"] == 0
        assert "locked" in stats["last_error"]
        other.execute("ROLLBACK")
        _, ids = w.submit(make_request(2), events(2)).result(5)
        assert len(ids) == 2
    finally:
        other.close()
        w.close()
    assert count(db_path) == 2


def test_full_database_fails_the_batch_then_writer_recovers(db_path: Path) -> None:
    w = StoreWriter(db_path)
    w.start()
    w.submit(make_request(20), events(20)).result(5)
    w.close()
    # max_page_count below the current size clamps to it: any growth is "disk full".
    w = StoreWriter(db_path, pragmas={"max_page_count": 1})
    w.start()
    try:
        # Random text: the store packs event JSON, so a repetitive blob would fit.
        payload = {"blob": base64.b64encode(os.urandom(150_000)).decode()}
        with pytest.raises(StoreError) as info:
            w.submit(make_request(1), [make_event(0, received=payload)]).result(5)
        assert info.value.kind == "full"
        assert "full" in str(info.value) and str(db_path) in str(info.value)
        assert w.stats()["failed_batches"] == 1

        # Freed pages make room again...
        w.reset().result(5)
        w.submit(make_request(1), events(1)).result(5)
        # ...and so does raising the limit.
        with pytest.raises(StoreError):
            w.submit(make_request(1), [make_event(0, received=payload)]).result(5)
        w.run_in_writer(lambda c: c.execute("PRAGMA max_page_count = 1000000")).result(5)
        w.submit(make_request(1), [make_event(0, received=payload)]).result(5)
        assert w.stats()["failed_batches"] == 1  # a reset starts the count again
    finally:
        w.close()
    assert count(db_path) == 2


def test_cancelled_future_is_still_written(writer: StoreWriter, db_path: Path) -> None:
    release, _ = blocked(writer)
    fut = writer.submit(make_request(1), events(1))
    assert fut.cancel()
    release.set()
    writer.flush().result(5)
    assert count(db_path) == 1


# -- retention ---------------------------------------------------------------------------


def test_retention_by_count(writer: StoreWriter, db_path: Path) -> None:
    all_ids = []
    for _ in range(10):
        all_ids += writer.submit(make_request(10), events(10)).result(5)[1]
    malformed = [writer.submit(make_request(0), []).result(5)[0] for _ in range(40)]
    result = writer.run_retention(35, None).result(10)
    assert result["events"] == 65
    with StoreReader(db_path) as reader:
        kept = [e["id"] for e in reader.list_events(limit=1000)]
        assert kept == sorted(all_ids)[-35:][::-1]
        requests = {r["id"] for r in reader.list_requests(limit=1000)}
    # 6 requests are gone entirely, the one cut in the middle stays, and the event-less
    # requests are bounded to 35 on their own.
    with_events = requests - set(malformed)
    assert len(with_events) == 4
    assert requests & set(malformed) == set(malformed[-35:])
    assert result["requests"] == 6 + 5


def test_retention_by_age(writer: StoreWriter, db_path: Path) -> None:
    now = time.time()
    writer.submit(make_request(3, at=now - 3600), events(3, at=now - 3600)).result(5)
    writer.submit(make_request(0, at=now - 3600), []).result(5)
    new_req, new_ids = writer.submit(make_request(2, at=now), events(2, at=now)).result(5)
    new_bad, _ = writer.submit(make_request(0, at=now), []).result(5)
    result = writer.run_retention(None, 60).result(10)
    assert result == {"events": 3, "requests": 2}
    with StoreReader(db_path) as reader:
        assert {r["id"] for r in reader.list_requests()} == {new_req, new_bad}
        assert sorted(e["id"] for e in reader.list_events()) == new_ids


def test_periodic_retention(db_path: Path) -> None:
    w = StoreWriter(db_path, retention=(15, None), retention_interval=0.05)
    w.start()
    try:
        for _ in range(5):
            w.submit(make_request(10), events(10)).result(5)
        deadline = time.time() + 5
        while count(db_path) > 15 and time.time() < deadline:
            time.sleep(0.02)
        assert count(db_path) == 15
        assert w.stats()["retention_runs"] >= 1
    finally:
        w.close()


def test_retention_in_chunks_reports_more(db_path: Path) -> None:
    w = StoreWriter(db_path)
    w.start()
    for _ in range(5):
        w.submit(make_request(10), events(10)).result(5)
    w.close()
    conn = connect(db_path)
    try:
        first = apply_retention(conn, max_events=0, chunk=20)
        assert first["events"] == 20 and first["more"]
        while apply_retention(conn, max_events=0, chunk=20)["more"]:
            pass
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM requests").fetchone()[0] == 0
    finally:
        conn.close()


def test_reset_deletes_everything_in_queue_order(writer: StoreWriter, db_path: Path) -> None:
    release, _ = blocked(writer)
    before = writer.submit(make_request(3), events(3))
    reset = writer.reset()
    after = writer.submit(make_request(2), events(2))
    release.set()
    assert reset.result(5) == {"events": 3, "requests": 1}
    _, after_ids = after.result(5)
    assert before.result(5)
    with StoreReader(db_path) as reader:
        assert sorted(e["id"] for e in reader.list_events()) == after_ids


# -- queries -----------------------------------------------------------------------------


@pytest.fixture
def populated(db_path: Path):
    """60 events over 20 requests with varied fields; returns (reader, {id: record})."""
    w = StoreWriter(db_path)
    w.start()
    by_id: dict[int, EventRecord] = {}
    base = 1_700_000_000.0
    for r in range(20):
        evs = []
        for k in range(3):
            i = r * 3 + k
            verdict = ("valid", "invalid", "error")[i % 3]
            received = {
                "action": f"act{i % 4}",
                "performer": {"session_id": f"s{i % 2}", "pageview_id": f"p{i % 5}"},
                "meta": {"id": f"m{i}"},
                "note": "100% done_ok" if i == 7 else "plain TEXT here",
            }
            evs.append(
                make_event(
                    k,
                    received=received,
                    verdict=verdict,
                    at=base + i,
                    stream=f"stream.{i % 3}",
                    schema_title="a/b" if i % 2 else SCHEMA_TITLE,
                    schema_version=("1.0.0", "1.2.0", "10.0.0")[i % 3],
                )
            )
        _, ids = w.submit(make_request(3, at=base + r * 3), evs).result(5)
        by_id.update(zip(ids, evs, strict=True))
    w.close()
    reader = StoreReader(db_path)
    yield reader, by_id
    reader.close()


def _expected(by_id, pred) -> list[int]:
    return sorted((i for i, e in by_id.items() if pred(e)), reverse=True)


@pytest.mark.parametrize(
    ("flt", "pred"),
    [
        (EventFilter(), lambda e: True),
        (EventFilter(stream="stream.1"), lambda e: e.stream == "stream.1"),
        (EventFilter(stream=["stream.1", "stream.2"]), lambda e: e.stream != "stream.0"),
        (EventFilter(verdict="invalid"), lambda e: e.verdict == "invalid"),
        (EventFilter(action="act2"), lambda e: e.received["action"] == "act2"),
        (EventFilter(session="s1"), lambda e: e.received["performer"]["session_id"] == "s1"),
        (EventFilter(pageview="p3"), lambda e: e.received["performer"]["pageview_id"] == "p3"),
        (EventFilter(meta_id="m7"), lambda e: e.received["meta"]["id"] == "m7"),
        (EventFilter(schema="a/b"), lambda e: e.schema_title == "a/b"),
        (
            EventFilter(schema=f"/{SCHEMA_TITLE}/1"),
            lambda e: e.schema_title == SCHEMA_TITLE and e.schema_version.startswith("1."),
        ),
        (
            EventFilter(schema=f"{SCHEMA_TITLE}/1.2.0"),
            lambda e: e.schema_title == SCHEMA_TITLE and e.schema_version == "1.2.0",
        ),
        (
            EventFilter(schema=f"{SCHEMA_TITLE}/10"),
            lambda e: e.schema_title == SCHEMA_TITLE and e.schema_version == "10.0.0",
        ),
        (
            EventFilter(since=1_700_000_010, until=1_700_000_020),
            lambda e: 1_700_000_010 <= e.received_at < 1_700_000_020,
        ),
        (EventFilter(text="100%"), lambda e: e.received["note"].startswith("100%")),
        (EventFilter(text="done_ok"), lambda e: e.received["note"].startswith("100%")),
        # Wildcards are literal: unescaped, "t_h" would match "TEXT here", "n%t" "plain TEXT".
        (EventFilter(text="t_h"), lambda e: False),
        (EventFilter(text="n%t"), lambda e: False),
        (EventFilter(text="plain text"), lambda e: e.received["note"].startswith("plain")),
        (
            EventFilter(stream="stream.0", verdict="valid", session="s0"),
            lambda e: (
                e.stream == "stream.0"
                and e.verdict == "valid"
                and e.received["performer"]["session_id"] == "s0"
            ),
        ),
        (EventFilter(stream=[]), lambda e: False),
    ],
)
def test_filters(populated, flt: EventFilter, pred) -> None:
    reader, by_id = populated
    expected = _expected(by_id, pred)
    assert [e["id"] for e in reader.list_events(flt, limit=1000)] == expected
    assert reader.count_events(flt) == len(expected)


def test_request_filter_and_summary_columns(populated) -> None:
    reader, by_id = populated
    some = min(by_id)
    req = reader.get_event(some)["request_id"]
    rows = reader.list_events(EventFilter(request=req))
    assert len(rows) == 3 and {r["request_id"] for r in rows} == {req}
    assert set(rows[0]) >= {
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
        "errors_count",
    }


def test_cursor_pagination(populated) -> None:
    reader, by_id = populated
    everything = sorted(by_id, reverse=True)
    pages, before = [], None
    while True:
        page = reader.list_events(limit=7, before_id=before)
        if not page:
            break
        pages.append([e["id"] for e in page])
        before = page[-1]["id"]
    assert [i for p in pages for i in p] == everything
    assert all(len(p) == 7 for p in pages[:-1])

    after = everything[-10]
    tail = reader.list_events(after_id=after, newest_first=False, limit=4)
    assert [e["id"] for e in tail] == sorted(i for i in by_id if i > after)[:4]
    valid = reader.list_events(EventFilter(verdict="valid"), before_id=everything[5], limit=3)
    expected = [i for i in _expected(by_id, lambda e: e.verdict == "valid") if i < everything[5]]
    assert [e["id"] for e in valid] == expected[:3]
    assert reader.max_event_id() == everything[0]


def test_reader_stats(populated) -> None:
    reader, _ = populated
    stats = reader.stats()
    assert stats["events"] == 60 and stats["requests"] == 20
    assert stats["by_verdict"] == {"valid": 20, "invalid": 20, "error": 20, "legacy": 0}
    assert stats["requests_by_status"] == [{"status": 202, "requests": 20}]
    assert stats["first_received_at"] == 1_700_000_000.0
    assert {s["stream"] for s in stats["streams"]} == {"stream.0", "stream.1", "stream.2"}
    assert stats["db_size_bytes"] > 0


def test_reader_is_usable_from_many_threads(populated) -> None:
    reader, _ = populated
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                assert reader.count_events() == 60
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_reader_sees_new_commits(writer: StoreWriter, db_path: Path) -> None:
    with StoreReader(db_path) as reader:
        assert reader.max_event_id() == 0
        _, ids = writer.submit(make_request(2), events(2)).result(5)
        assert reader.max_event_id() == ids[-1]


def test_equality_filters_use_indexes_without_sorting(db_path: Path) -> None:
    """What keeps listings fast at a million rows: an index seek, no temp sort."""
    open_database(db_path).close()
    conn = connect(db_path, readonly=True)
    try:
        for flt in (
            EventFilter(stream="x"),
            EventFilter(verdict="invalid"),
            EventFilter(action="click"),
            EventFilter(session="s"),
            EventFilter(pageview="p"),
            EventFilter(schema="t/1.0.0"),
            EventFilter(schema="t"),
            EventFilter(schema="t/1"),
        ):
            where, params = flt.where()
            plan = " | ".join(
                row[3]
                for row in conn.execute(
                    f"EXPLAIN QUERY PLAN SELECT id FROM events WHERE {where}"
                    " AND id < ? ORDER BY id DESC LIMIT 50",
                    [*params, 10**9],
                )
            )
            assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, (flt, plan)
            assert "TEMP B-TREE" not in plan, (flt, plan)
        where, params = EventFilter(meta_id="m").where()
        plan = " ".join(
            r[3]
            for r in conn.execute(f"EXPLAIN QUERY PLAN SELECT id FROM events WHERE {where}", params)
        )
        assert "events_meta_id" in plan
    finally:
        conn.close()
