"""`mpsandbox demo`: the TUI with the simulator posting to its intake (a child process)."""

from __future__ import annotations

import socket
import subprocess
import sys

from mpsandbox.cli.simulate import demo_settings, start_simulator, stop_simulator
from mpsandbox.tui.app import MpSandboxApp
from mpsandbox.tui.widgets.event_table import EventTable
from tests.test_tui import SIZE, until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_the_demo_app_shows_simulated_events_arriving(tmp_path, schema_host, monkeypatch):
    """With no --schemas, the demo judges by the remote repositories (here a loopback
    stand-in for schema.wikimedia.org), as every command does."""
    monkeypatch.delenv("MPSANDBOX_OFFLINE")
    monkeypatch.setenv("MPSANDBOX_REMOTE_SCHEMAS", " ".join(schema_host.bases))
    opts = {"port": free_port(), "db": tmp_path / "demo.db", "no_watch": True}
    settings = demo_settings(opts)
    assert settings.stream_config and settings.experiments_file and settings.instruments
    assert not settings.schema_dirs and not settings.offline
    assert settings.remote_schemas == schema_host.bases
    url = f"http://127.0.0.1:{settings.port}/v1/events"
    log = tmp_path / "simulator.log"
    app = MpSandboxApp(settings, listen=True)
    proc = start_simulator(url, log=log, rate=40)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.status.listening, 20, "the intake to listen")
            table = app.screen.query_one(EventTable)
            await until(pilot, lambda: table.total >= 20, 30, "simulated events")
            verdicts = [table.row_at(i)["verdict"] for i in range(20)]
            # Clean traffic, plus the labelled --bugs mistakes (one invalid field among
            # them); never an error (every schema resolves).
            assert set(verdicts) <= {"valid", "invalid"}, log.read_text()
            assert verdicts.count("valid") >= 18, verdicts
            assert any("web/base" in hit for hit in schema_host.hits)
    finally:
        stop_simulator(proc)
        app.shutdown_intake()
    assert proc.returncode is not None


def test_demo_without_a_terminal_runs_headless(tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mpsandbox",
            "demo",
            "--port",
            str(port),
            "--db",
            str(tmp_path / "d.db"),
            "--rate",
            "40",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert '"ready":true' in line
        import sqlite3
        import time

        deadline = time.monotonic() + 20
        count = 0
        while time.monotonic() < deadline and count < 10:
            time.sleep(0.5)
            conn = sqlite3.connect(tmp_path / "d.db")
            try:
                count = conn.execute("SELECT count(*) FROM events").fetchone()[0]
            finally:
                conn.close()
        assert count >= 10
    finally:
        proc.terminate()
        proc.wait(30)
    assert "headless" in proc.stderr.read()
