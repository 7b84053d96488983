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
