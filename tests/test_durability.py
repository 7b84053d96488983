"""Nothing acknowledged is lost: backlog limits, a locked database, a killed process."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3

import psutil

from tests.test_bad_input import VALID
from tests.test_cli import post, start_serve


async def test_full_backlog_answers_503_and_records_the_refusal(make_server, http):
    server = await make_server(max_backlog=5)
    async with http.post(server.url + "/v1/events", json=[VALID] * 10) as resp:
        assert resp.status == 503
        assert resp.headers["Retry-After"] == "1"
        assert "backlog" in (await resp.json())["detail"]
    async with http.post(server.url + "/v1/events", json=[VALID] * 3) as resp:
        assert resp.status == 201  # smaller batches still fit
    for _ in range(50):
        async with http.get(server.url + "/sandbox/stats") as resp:
            stats = await resp.json()
        if stats["requests"] == 2:
            break
        await asyncio.sleep(0.05)
    statuses = sorted(s["status"] for s in stats["requests_by_status"])
    assert statuses == [201, 503]
    assert stats["refused_backlog"] == 1
    assert stats["events"] == 3


async def test_locked_database_is_never_acknowledged_then_recovers(make_server, http, tmp_path):
    server = await make_server(busy_timeout=0.2)
    locker = sqlite3.connect(tmp_path / "sandbox.db", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        async with http.post(server.url + "/v1/events", json=VALID) as resp:
            assert resp.status == 503
            body = await resp.json()
            assert body["type"] == "store_error" and "locked" in body["detail"].lower()
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    async with http.post(server.url + "/v1/events", json=VALID) as resp:
        assert resp.status == 201
    async with http.get(server.url + "/sandbox/stats") as resp:
        stats = await resp.json()
    assert stats["events"] == 1 and stats["write_failures"] == 1


def test_acknowledged_events_survive_sigkill(tmp_path):
    proc, port, db = start_serve(tmp_path, "--output", "none")
    try:
        body = json.dumps([VALID] * 5).encode()
        acked = sum(5 for _ in range(40) if post(port, body) == 201)
        children = psutil.Process(proc.pid).children()
        assert children, "the store runs in a child process"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        # the store process notices its parent is gone, finishes its writes and exits
        _, alive = psutil.wait_procs(children, timeout=15)
        assert not alive
    finally:
        proc.kill()
    assert acked == 200
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*) from events").fetchone()[0] == acked


async def test_retention_by_count(make_server, http):
    server = await make_server(max_events=10)
    for _ in range(5):
        async with http.post(server.url + "/v1/events", json=[VALID] * 5) as resp:
            assert resp.status == 201
    await asyncio.wrap_future(server.sandbox.writer.run_retention(10, None))
    async with http.get(server.url + "/sandbox/stats") as resp:
        assert (await resp.json())["events"] == 10


async def test_a_dead_store_process_is_reported_not_acknowledged(make_server, http, tmp_path):
    import os

    server = await make_server(busy_timeout=0.2)
    # A write lock held elsewhere keeps the replacement store process from starting at once.
    locker = sqlite3.connect(tmp_path / "sandbox.db", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    os.kill(server.sandbox.writer._proc.pid, signal.SIGKILL)
    server.sandbox.writer._proc.join(10)
    for _ in range(100):
        if not server.sandbox.writer.running:
            break
        await asyncio.sleep(0.05)
    try:
        async with http.post(server.url + "/v1/events", json=VALID) as resp:
            assert resp.status == 503
            assert (await resp.json())["type"] == "store_error"
        async with http.get(server.url + "/readyz") as resp:
            assert resp.status == 503
    finally:
        locker.execute("ROLLBACK")
        locker.close()
