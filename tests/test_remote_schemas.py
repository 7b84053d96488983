"""Remote schema repositories, as a user without a checkout meets them: schema.wikimedia.org
stood in for by a loopback server (conftest.schema_host) serving tests/data's repositories.

Real processes (`python -m mpsandbox ...`) with the environment a user sets: nothing but
``MPSANDBOX_REMOTE_SCHEMAS`` pointing at the stand-in, a cache of the test's own, and no
``--schemas``. The suite is otherwise offline (conftest); these tests turn it back on.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import RECORDED

PY = sys.executable
WEB_BASE = "/analytics/product_metrics/web/base/1.3.0"
EVENT = json.loads((RECORDED / "req/valid_web_base.json").read_text())
INSTRUMENT = """\
name: web-base-click
description: The recorded web/base click.
stream: product_metrics.web_base
schema: {title: analytics/product_metrics/web/base, version: "1.3.0"}
expects:
  - id: click
    action: click
"""


def online_env(cache: Path, *bases: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("MPSANDBOX_OFFLINE", None)
    env["MPSANDBOX_REMOTE_SCHEMAS"] = " ".join(bases)
    env["MPSANDBOX_CACHE"] = str(cache)
    return env


async def run_cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        PY,
        "-m",
        "mpsandbox",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode, out.decode(), err.decode()


class Serve:
    """`mpsandbox serve` in a child process on a free port, JSON lines on its stdout."""

    def __init__(self, proc: asyncio.subprocess.Process, url: str):
        self.proc, self.url = proc, url

    @classmethod
    async def start(cls, db: Path, env: dict[str, str], *args: str) -> Serve:
        proc = await asyncio.create_subprocess_exec(
            PY,
            "-m",
            "mpsandbox",
            "serve",
            "--port",
            "0",
            "--db",
            str(db),
            "--output",
            "jsonl",
            *args,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        ready = json.loads(line)
        return cls(proc, ready["intake"][0])

    async def post(self, session: aiohttp.ClientSession, event: dict) -> tuple[int, str, float]:
        started = time.monotonic()
        async with session.post(self.url, json=event) as resp:
            return resp.status, await resp.text(), time.monotonic() - started

    async def stop(self) -> tuple[str, str]:
        self.proc.terminate()
        out, err = await asyncio.wait_for(self.proc.communicate(), 60)
        return out.decode(), err.decode()


async def newest_event(session: aiohttp.ClientSession, serve: Serve) -> dict:
    """The newest stored event with its explanation, from the inspection API."""
    root = serve.url.rsplit("/v1/", 1)[0]
    async with session.get(root + "/sandbox/events?limit=1") as resp:
        newest = (await resp.json())["events"][0]["id"]
    async with session.get(f"{root}/sandbox/events/{newest}") as resp:
        return await resp.json()


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s


async def test_serve_judges_a_real_event_from_the_remote_and_again_from_the_cache(
    schema_host, session, tmp_path
):
    env = online_env(tmp_path / "cache", *schema_host.bases)
    serve = await Serve.start(tmp_path / "a.db", env)
    try:
        status, body, _ = await serve.post(session, EVENT)
        assert status == 201, body
        assert any(hit.endswith("web/base/1.3.0.yaml") for hit in schema_host.hits)
        await schema_host.stop()  # the schema host is gone
        status, body, _ = await serve.post(session, EVENT)
        assert status == 201, body
    finally:
        await serve.stop()
    # a new process, the host still gone: the disk cache answers
    again = await Serve.start(tmp_path / "b.db", env)
    try:
        status, body, _ = await again.post(session, EVENT)
        assert status == 201, body
    finally:
        out, err = await again.stop()
    assert "unreachable" not in out + err  # the cache held all it needed


async def test_validate_import_and_check_judge_the_event_alike(schema_host, tmp_path):
    env = online_env(tmp_path / "cache", *schema_host.bases)
    event = tmp_path / "event.json"
    event.write_text(json.dumps(EVENT))

    code, out, err = await run_cli("validate", str(event), "--format", "json", env=env)
    assert code == 0, out + err
    assert json.loads(out.splitlines()[0])["verdict"] == "valid"

    db = tmp_path / "imported.db"
    code, out, err = await run_cli("import", str(event), "--db", str(db), env=env)
    assert code == 0, out + err
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT verdict FROM events").fetchall() == [("valid",)]

    library = tmp_path / "instruments"
    library.mkdir()
    (library / "web-base-click.yaml").write_text(INSTRUMENT)
    args = ("check", "web-base-click", "--instruments", str(library), "--fixtures", str(event))
    code, out, err = await run_cli(*args, env=env)
    assert code == 0, out + err
    assert "3 checks: 3 passed, 0 failed" in out

    # Offline with nothing cached, the same three commands agree the other way.
    empty = online_env(tmp_path / "empty-cache", *schema_host.bases)
    empty["MPSANDBOX_OFFLINE"] = "1"
    code, out, _ = await run_cli("validate", str(event), "--format", "json", env=empty)
    assert code == 1 and json.loads(out.splitlines()[0])["verdict"] == "error"
    db = tmp_path / "offline.db"
    await run_cli("import", str(event), "--db", str(db), env=empty)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT verdict FROM events").fetchall() == [("error",)]
    code, out, _ = await run_cli(*args, env=empty)
    assert code == 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_an_unreachable_host_is_said_once_and_each_event_names_the_cause(session, tmp_path):
    gone = f"http://127.0.0.1:{free_port()}/repositories"  # nothing listens there
    env = online_env(
        tmp_path / "cache", f"{gone}/primary/jsonschema", f"{gone}/secondary/jsonschema"
    )
    serve = await Serve.start(tmp_path / "a.db", env)
    try:
        answers = [await serve.post(session, EVENT) for _ in range(3)]
    finally:
        out, err = await serve.stop()
    for status, body, _ in answers:
        assert status == 500, body
        assert "Failed loading schema" in body
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    notices = [x for x in lines if "schemas_unreachable" in x]
    assert len(notices) == 1, out
    message = notices[0]["schemas_unreachable"]["message"]
    assert f"{gone[7:].split('/')[0]} unreachable: 0 cached schemas, built-ins; --schemas DIR" in (
        message
    )
    events = [x for x in lines if "verdict" in x]
    assert [e["verdict"] for e in events] == ["error"] * 3
    assert err.count("unreachable: 0 cached schemas") == 1  # the words, once, on stderr


async def test_a_silent_host_costs_one_timeout_then_nothing(session, tmp_path):
    done = asyncio.Event()

    async def never_answer(reader, writer):
        await done.wait()
        writer.close()

    silent = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}/repositories/secondary/jsonschema"
    env = online_env(tmp_path / "cache", base)
    serve = await Serve.start(tmp_path / "a.db", env, "--remote-timeout", "0.5")
    try:
        first = await serve.post(session, EVENT)
        second = await serve.post(session, EVENT)
        newest = await newest_event(session, serve)
    finally:
        await serve.stop()
        done.set()
        silent.close()
    assert first[0] == 500 and second[0] == 500
    assert first[2] < 0.5 + 1.5  # one timeout, plus the work
    assert second[2] < 0.5  # the host is known to be silent: not asked again for a minute
    text = json.dumps(newest)
    assert "timed out" in text
    assert "--remote-schemas" not in text


async def test_a_schema_no_repository_has_is_a_404_not_an_outage(schema_host, session, tmp_path):
    env = online_env(tmp_path / "cache", *schema_host.bases)
    serve = await Serve.start(tmp_path / "a.db", env)
    missing = dict(EVENT, **{"$schema": "/analytics/product_metrics/web/base/9.9.9"})
    try:
        status, body, _ = await serve.post(session, missing)
        newest = await newest_event(session, serve)
    finally:
        out, _ = await serve.stop()
    assert status == 500, body
    text = json.dumps(newest)
    assert "answered 404" in text and "unreachable" not in text
    assert "schemas_unreachable" not in out


async def test_schema_fetch_fills_the_cache_for_an_offline_trip(schema_host, tmp_path):
    cache = tmp_path / "cache"
    env = online_env(cache, *schema_host.bases)
    code, out, err = await run_cli("schema", "fetch", WEB_BASE.lstrip("/"), env=env)
    assert code == 0, out + err
    code, listing, _ = await run_cli("schema", "cache", env=env)
    assert code == 0
    assert "secondary/jsonschema/analytics/product_metrics/web/base/1.3.0.yaml" in listing
    await schema_host.stop()

    event = tmp_path / "event.json"
    event.write_text(json.dumps(EVENT))
    code, out, err = await run_cli("validate", str(event), "--offline", env=env)
    assert code == 0, out + err

    code, out, _ = await run_cli("schema", "cache", "--clear", env=env)
    assert code == 0 and "removed" in out
    code, listing, _ = await run_cli("schema", "cache", env=env)
    assert listing.startswith("0 cached schemas")
    code, out, _ = await run_cli("validate", str(event), "--offline", env=env)
    assert code == 1
    assert "offline" in out and "--remote-schemas" not in out


def test_the_environment_and_options_choose_the_remotes(monkeypatch):
    from mpsandbox.cli.options import build_settings
    from mpsandbox.schemas.configured import PUBLIC_REMOTES, schema_sources
    from mpsandbox.schemas.remote import RemoteSource

    monkeypatch.delenv("MPSANDBOX_OFFLINE")
    settings = build_settings(remote_schemas=True)  # accepted, changes nothing
    assert settings.remote_schemas == PUBLIC_REMOTES and not settings.offline
    assert settings.remote_timeout == 3.0
    kinds = [s.kind for s in schema_sources(settings)]
    assert kinds == ["remote", "remote", "directory"]  # then the built-ins

    monkeypatch.setenv("MPSANDBOX_REMOTE_SCHEMAS", "http://a.example/x  http://b.example/y")
    settings = build_settings(remote_bases=("http://c.example/z",), remote_timeout=0.5)
    assert settings.remote_schemas == (
        "http://a.example/x",
        "http://b.example/y",
        "http://c.example/z",
    )
    assert settings.remote_timeout == 0.5

    monkeypatch.setenv("MPSANDBOX_OFFLINE", "1")
    remotes = [s for s in schema_sources(build_settings()) if isinstance(s, RemoteSource)]
    assert remotes and all(s.offline for s in remotes)
    monkeypatch.delenv("MPSANDBOX_OFFLINE")
    assert build_settings(offline=True).offline
