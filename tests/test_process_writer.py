"""The store process: same guarantees as the writer thread, and a clear failure if it dies."""

from __future__ import annotations

import os
import signal
import sqlite3
import time

import pytest

from mpsandbox.records import EventRecord, RequestRecord
from mpsandbox.store import BacklogFull, ProcessStoreWriter, StoreError
from tests.test_bad_input import VALID


def request(n: int) -> tuple[RequestRecord, list[EventRecord]]:
    now = time.time()
    req = RequestRecord(
        received_at=now,
        method="POST",
        path="/v1/events",
        query="",
        headers=[("content-type", "application/json")],
        body=b"[]",
        event_count=n,
    )
    events = [
        EventRecord(
            index=i,
            received=dict(VALID, action=f"a{i}"),
            verdict="valid",
            received_at=now,
            stream="s",
        )
        for i in range(n)
    ]
    return req, events


def count(db) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("select count(*) from events").fetchone()[0]


def test_commits_and_close_drains(tmp_path):
    db = tmp_path / "p.db"
    w = ProcessStoreWriter(db)
    w.start()
    futures = [w.submit(*request(10)) for _ in range(500)]
    rid, ids = futures[0].result(timeout=30)
    assert rid >= 1 and len(ids) == 10
    w.close()
    assert all(f.done() and f.exception() is None for f in futures)
    assert count(db) == 5000
    assert w.stats()["committed_events"] == 5000


def test_backlog_is_bounded_in_the_parent(tmp_path):
    w = ProcessStoreWriter(tmp_path / "p.db", max_backlog_events=5)
    w.start()
    try:
        with pytest.raises(BacklogFull):
            w.submit(*request(6))
        assert w.submit(*request(5)).result(timeout=30)
    finally:
        w.close()


def test_child_ignores_interrupts_meant_for_the_parent(tmp_path):
    w = ProcessStoreWriter(tmp_path / "p.db")
    w.start()
    try:
        os.kill(w._proc.pid, signal.SIGINT)
        os.kill(w._proc.pid, signal.SIGTERM)
        assert w.submit(*request(1)).result(timeout=30)
        assert w.running
    finally:
        w.close()


def test_a_killed_store_process_fails_writes_clearly(tmp_path):
    w = ProcessStoreWriter(tmp_path / "p.db")
    w.start()
    w.submit(*request(1)).result(timeout=30)
    os.kill(w._proc.pid, signal.SIGKILL)
    w._proc.join(10)
    deadline = time.time() + 10
    while w.running and time.time() < deadline:
        time.sleep(0.05)
    assert not w.running
    with pytest.raises(StoreError, match="stopped"):
        w.submit(*request(1)).result(timeout=10)
    assert "stopped" in w.stats()["last_error"]
    w.close()


def test_start_reports_an_unusable_path(tmp_path):
    (tmp_path / "dir.db").mkdir()
    w = ProcessStoreWriter(tmp_path / "dir.db")
    with pytest.raises(StoreError, match=r"dir\.db"):
        w.start()


async def test_the_writes_of_one_loop_iteration_are_one_message_and_one_commit(tmp_path):
    """Requests handled in one turn of the event loop reach the store process together
    (one pickled message, not one thread hand-off each) and are committed together."""
    import asyncio

    w = ProcessStoreWriter(tmp_path / "p.db")
    w.start()
    try:
        await w.submit_async(*request(1))  # the first commit, alone
        before = w.stats()["committed_batches"]
        futures = [w.submit_async(*request(2)) for _ in range(100)]
        results = await asyncio.gather(*futures)
        assert len({rid for rid, _ in results}) == 100
        assert all(len(ids) == 2 for _, ids in results)
        assert w.stats()["committed_batches"] - before == 1
    finally:
        w.close()
    assert count(tmp_path / "p.db") == 201


def test_a_full_pipe_neither_blocks_the_sender_nor_reorders(tmp_path):
    """Frames that do not fit in the pipe wait for room in order, off the sender's thread."""
    import multiprocessing

    from mpsandbox.store.process_writer import _frame, _Sender

    reader, writer = multiprocessing.Pipe(duplex=False)
    errors = []
    sender = _Sender(writer, errors.append)
    payload = "x" * 100_000
    started = time.monotonic()
    for i in range(100):  # 10 MB: ten times what the pipe holds
        sender.send(_frame([("m", i, payload)]))
    assert time.monotonic() - started < 2  # nobody read yet: the sender did not wait
    got = [reader.recv()[0][1] for _ in range(100)]
    assert got == list(range(100))
    sender.close(5)
    assert not errors
    reader.close()
    writer.close()

    reader, writer = multiprocessing.Pipe(duplex=False)
    sender = _Sender(writer, errors.append)
    reader.close()  # the store process is gone: the sender says so once, and drops the rest
    sender.send(_frame([("m", 0, "")]))
    sender.send(_frame([("m", 1, "")]))
    assert len(errors) == 1 and isinstance(errors[0], BrokenPipeError)
    writer.close()


async def test_a_big_batch_goes_in_slices_and_a_bad_one_leaves_nothing_behind(tmp_path):
    """A big batch reaches the store process a slice at a time (the loop stays free) and is
    committed whole; one whose encoding fails half-way stores nothing, and the store
    process forgets the slices it had."""
    db = tmp_path / "p.db"
    w = ProcessStoreWriter(db)
    w.start()
    try:
        req, events = request(1000)
        rid, ids = await (await w.submit_async_sliced(req, events))
        assert ids == list(range(ids[0], ids[0] + 1000))
        req, events = request(1000)
        events[700].verdict = "nonsense"  # cannot be encoded: the caller's bug
        with pytest.raises(StoreError, match="malformed"):
            await w.submit_async_sliced(req, events)
        assert w.stats()["queued_events"] == 0
        rid2, ids2 = await w.submit_async(*request(3))
        assert rid2 == rid + 1 and ids2 == [ids[-1] + 1, ids[-1] + 2, ids[-1] + 3]
    finally:
        w.close()
    assert count(db) == 1003


def _migrated(db) -> bool:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return conn.execute("select count(*) from _migrations").fetchone()[0] > 0
    except sqlite3.Error:
        return False


def test_a_begun_store_process_opens_the_database_before_start_waits(tmp_path):
    """begin_start() returns at once and the store process opens and migrates the database
    meanwhile (serve imports the intake in that time); start() then only waits."""
    db = tmp_path / "p.db"
    w = ProcessStoreWriter(db)
    w.begin_start()
    try:
        deadline = time.monotonic() + 30
        while not _migrated(db) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _migrated(db)
        assert not w.running  # not wired up until start()
        w.start()
        assert w.submit(*request(3)).result(timeout=30)
    finally:
        w.close()
    assert count(db) == 3


def test_a_begun_store_process_never_waited_for_stops_on_close(tmp_path):
    """A start abandoned between begin_start() and start() (the port was busy, the intake
    failed to import) leaves no store process behind."""
    import multiprocessing

    w = ProcessStoreWriter(tmp_path / "p.db")
    w.begin_start()
    w.close(timeout=30)
    assert not [p for p in multiprocessing.active_children() if p.name == "mpsandbox-store"]


def test_rows_submitted_with_a_callback_answer_once_committed_or_failed(tmp_path):
    """submit_rows_then, as the store process submits: the callback gets the ids after the
    COMMIT, or the error of a write that failed, never both."""
    from mpsandbox.store.writer import StoreWriter, encode_event, encode_request

    writer = StoreWriter(tmp_path / "s.db")
    writer.start_inline()
    answers = []
    try:
        req, events = request(2)
        writer.submit_rows_then(
            encode_request(req, 2),
            [encode_event(e) for e in events],
            lambda result, exc: answers.append(("good", result, exc)),
        )
        bad = encode_request(req, 1)
        bad[1] = None  # received_at is NOT NULL
        writer.submit_rows_then(
            bad, [encode_event(events[0])], lambda result, exc: answers.append(("bad", result, exc))
        )
        assert answers == []  # nothing answered before the writer ran
        writer.work_inline()
    finally:
        writer.close_inline()
    assert answers[0] == ("good", (1, [1, 2]), None)
    assert answers[1][0] == "bad" and answers[1][1] is None
    assert isinstance(answers[1][2], StoreError)
    assert count(tmp_path / "s.db") == 2
