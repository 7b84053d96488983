"""The store stops being usable while the intake runs: it is noticed, said, and survived."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time

import psutil
import pytest

from tests.test_bad_input import VALID
from tests.test_cli import PY, free_port, post, schema_args, start_serve


async def get(http, server, path):
    async with http.get(server.url + path) as resp:
        return resp.status, await resp.json()


async def post_valid(http, server, body=None):
    async with http.post(server.url + "/v1/events", json=VALID if body is None else body) as resp:
        return resp.status, (await resp.json() if resp.status == 503 else None)


async def until(predicate, timeout: float, every: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(every)
    return False


async def test_a_killed_store_process_is_restarted_on_the_same_database(make_server, http):
    server = await make_server()
    for _ in range(5):
        assert (await post_valid(http, server))[0] == 201
    writer = server.sandbox.writer
    os.kill(writer._proc.pid, signal.SIGKILL)
    started = time.monotonic()

    async def not_ready():
        status, body = await get(http, server, "/readyz")
        return status == 503 and body["store"] == "restarting"

    assert await until(not_ready, 1.0), "noticed within a second"
    assert time.monotonic() - started < 1.0
    status, body = await post_valid(http, server)
    if status == 503:  # meanwhile (unless the new process was quicker than this request)
        assert body["type"] == "store_error" and "restart" in body["detail"]

    async def ready():
        return (await get(http, server, "/readyz"))[0] == 200

    assert await until(ready, 60, every=0.1)
    assert (await post_valid(http, server))[0] == 201
    _, stats = await get(http, server, "/sandbox/stats")
    assert stats["writer"]["restarts"] == 1
    assert stats["events"] >= 6  # nothing acknowledged before the kill was lost
    async with http.post(server.url + "/sandbox/reset") as resp:
        assert resp.status == 200
    assert (await post_valid(http, server))[0] == 201
    _, stats = await get(http, server, "/sandbox/stats")
    assert stats["events"] == 1


async def test_a_dead_store_answers_store_error_not_backlog_full(make_server, http, tmp_path):
    server = await make_server(busy_timeout=0.2)
    writer = server.sandbox.writer
    # Another program holds the write lock: no new store process can start its first write.
    locker = sqlite3.connect(tmp_path / "sandbox.db", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        os.kill(writer._proc.pid, signal.SIGKILL)

        async def noticed():
            return writer.state != "ok"

        assert await until(noticed, 1.0)
        for _ in range(3):
            status, body = await post_valid(http, server)
            assert status == 503 and body["type"] == "store_error", body
        status, body = await get(http, server, "/readyz")
        assert status == 503 and body["store"] in ("restarting", "failed")

        async def given_up():
            return writer.state == "failed"

        assert await until(given_up, 60, every=0.1)
        status, body = await get(http, server, "/readyz")
        assert status == 503 and body["store"] == "failed"
        assert "could not be restarted" in body["detail"] and "locked" in body["detail"]
    finally:
        locker.execute("ROLLBACK")
        locker.close()


@pytest.mark.parametrize("how", ["deleted", "replaced"])
async def test_a_deleted_or_replaced_database_file_is_noticed(make_server, http, tmp_path, how):
    server = await make_server()
    assert (await post_valid(http, server))[0] == 201
    db = tmp_path / "sandbox.db"
    if how == "deleted":
        db.unlink()
    else:
        other = tmp_path / "other.db"
        sqlite3.connect(other).close()
        os.replace(other, db)

    async def noticed():
        status, body = await get(http, server, "/readyz")
        return status == 503 and body["store"] == how

    started = time.monotonic()
    assert await until(noticed, 2.0)
    assert time.monotonic() - started < 2.0
    status, body = await post_valid(http, server)
    assert status == 503 and body["type"] == "store_error" and how in body["detail"]
    async with http.post(server.url + "/v1/events?hasty=1", json=VALID) as resp:
        assert resp.status == 503  # no 202 into a file nobody will read


def test_serve_says_when_the_database_file_is_deleted(tmp_path):
    proc, port, db = start_serve(tmp_path, "--output", "none")
    try:
        assert post(port, json.dumps(VALID).encode()) == 201
        db.unlink()
        line = json.loads(proc.stdout.readline())
        assert line["store"]["state"] == "deleted" and str(db) in line["store"]["detail"]
        assert post(port, json.dumps(VALID).encode()) == 503
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)


def test_serve_exits_non_zero_when_the_store_cannot_be_restarted(tmp_path):
    proc, _port, db = start_serve(tmp_path, "--output", "none")
    try:
        children = psutil.Process(proc.pid).children()
        db.unlink()
        db.mkdir()  # no database can be opened there any more
        for child in children:
            child.kill()
        code = proc.wait(60)
        err = proc.stderr.read().decode()
    finally:
        proc.kill()
    assert code == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith("mpsandbox: stopping:") and "could not be restarted" in last


def _read_only(path) -> None:
    """Make ``path`` unwritable even for root (the immutable flag), or skip."""
    if os.geteuid() != 0:
        path.chmod(0o444)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(path)]).returncode != 0:
        pytest.skip("cannot make a file read-only for root here (no chattr +i)")


def test_a_read_only_database_fails_the_start_with_one_line(tmp_path):
    db = tmp_path / "serve.db"
    proc, _, _ = start_serve(tmp_path, "--output", "none")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    _read_only(db)
    try:
        done = subprocess.run(
            [
                PY,
                "-m",
                "mpsandbox",
                "serve",
                "--port",
                str(free_port()),
                "--db",
                str(db),
                *schema_args(),
            ],
            capture_output=True,
            timeout=60,
        )
    finally:
        with contextlib.suppress(OSError):
            subprocess.run(["chattr", "-i", str(db)], check=False)
        db.chmod(0o644)
    assert done.returncode == 2
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert str(db) in lines[0] and "read-only" in lines[0] and "permissions" in lines[0]


def set_max_page_count(pages: int, conn: sqlite3.Connection) -> int:
    """(In the store process.) A page limit: the store is "full" beyond it."""
    if pages <= 0:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    return conn.execute(f"PRAGMA max_page_count = {pages}").fetchone()[0]


async def test_a_full_disk_is_reported_by_readiness_and_recovers(make_server, http):
    server = await make_server()
    writer = server.sandbox.writer
    await asyncio.wrap_future(writer.run_in_writer(functools.partial(set_max_page_count, 0)))
    big = [VALID] * 2000
    status, body = await post_valid(http, server, big)
    assert status == 503 and body["type"] == "store_error"
    assert "full" in body["detail"] and "reset the store" not in body["detail"]
    status, ready = await get(http, server, "/readyz")
    assert status == 503 and ready["store"] == "full"
    assert "reset the store" not in ready["detail"]
    await asyncio.wrap_future(writer.run_in_writer(functools.partial(set_max_page_count, 10**6)))
    assert (await post_valid(http, server, big))[0] == 201  # space again: writes resume
    status, ready = await get(http, server, "/readyz")
    assert status == 200 and ready == {"ready": True, "store": "ok"}
