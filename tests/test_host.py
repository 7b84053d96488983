"""The intake as a child process of a face: start, busy port, batches, intents, stopping."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
import urllib.request

import pytest

from mpsandbox import jsonio
from mpsandbox.host import Batch, IntakeHost
from mpsandbox.intake.server import PortBusy
from mpsandbox.store import StoreError
from tests.conftest import settings_for

EVENT = {
    "$schema": "/mpsandbox/smoke_test/1.0.0",
    "meta": {"stream": "mpsandbox.smoke_test"},
    "message": "from a test",
}


def post(url: str, body, query: str = "") -> int:
    req = urllib.request.Request(
        url + "/v1/events" + query,
        data=jsonio.dumps(body),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.status


def wait_for(condition, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_batches_reach_listeners_and_stop_drains(tmp_path):
    host = IntakeHost(settings_for(tmp_path))
    batches: list[Batch] = []
    lock = threading.Lock()

    def listen(batch: Batch) -> None:
        with lock:
            batches.append(batch)

    host.add_listener(listen)
    url = host.start()
    try:
        assert url.startswith("http://127.0.0.1:") and host.running
        assert post(url, [EVENT, EVENT, {"meta": {"stream": "x"}}]) == 207
        wait_for(lambda: sum(b.events for b in batches) == 3)
        with lock:
            verdicts: dict[str, int] = {}
            for b in batches:
                for v, n in b.by_verdict.items():
                    verdicts[v] = verdicts.get(v, 0) + n
        assert verdicts == {"valid": 2, "error": 1}
        assert max(b.newest_id for b in batches) == 3

        assert host.call("reset").result(30) is True
        wait_for(lambda: any(b.reset for b in batches))
        for _ in range(50):
            post(url, EVENT, "?hasty=true")  # acknowledged before they are written
    finally:
        host.stop()
    assert not host.running
    with sqlite3.connect(settings_for(tmp_path).db) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 50


def test_a_busy_port_raises_and_another_port_works(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        host = IntakeHost(settings_for(tmp_path, port=port))
        with pytest.raises(PortBusy) as caught:
            host.start()
        assert str(port) in str(caught.value)
        try:
            url = host.start(port=0)
            assert post(url, EVENT) == 201
        finally:
            host.stop()


def test_an_unusable_store_raises_store_error(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    host = IntakeHost(settings_for(tmp_path, db=tmp_path / "file" / "x.db"))
    with pytest.raises(StoreError):
        host.start()
    assert not host.running


def test_the_intake_stops_when_its_parent_goes_away(tmp_path):
    host = IntakeHost(settings_for(tmp_path))
    url = host.start()
    proc = host._proc
    post(url, EVENT)
    proc.stdin.close()  # what the OS does when the face is killed
    proc.wait(30)
    assert proc.returncode == 0
    with sqlite3.connect(settings_for(tmp_path).db) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 1
    host.stop()


def test_intents_are_committed_by_the_intake_and_refusals_are_worded(tmp_path):
    """The calls a face writes and asks through: an override and a chaos setting stored by
    the intake (set by "tui"), schema questions answered by its registry, and a refused
    change said as the person should read it."""
    from mpsandbox.host import IntakeError

    host = IntakeHost(settings_for(tmp_path))
    host.start()
    try:
        change = host.call("override", change="set", args=["flag", "dark-mode", True]).result(30)
        assert change["override"]["value"] is True and change["override"]["set_by"] == "tui"
        chaos = host.call("chaos", spec="latency:5ms").result(30)
        assert chaos["chaos"]["spec"] == "latency:5ms" and chaos["chaos"]["set_by"] == "tui"
        with pytest.raises(IntakeError) as refused:
            host.call("override", change="set", args=["sample_rate", "s", 7]).result(30)
        assert str(refused.value) == "sample rate must be in 0..1, got 7"
        with pytest.raises(IntakeError, match="between 0 and 1"):
            host.call("chaos", spec="503:2").result(30)
        probe = host.call("resolve", uri="/mpsandbox/smoke_test/1.0.0").result(30)
        assert probe["found"] and probe["version"] == "1.0.0"
        sources = host.call("schema_sources").result(30)
        assert sources["catalogs"] and sources["load_errors"] == {}
    finally:
        host.stop()
    with sqlite3.connect(settings_for(tmp_path).db) as conn:
        assert conn.execute("SELECT by FROM override_log").fetchall() == [("tui",)]
        assert conn.execute("SELECT set_by FROM chaos").fetchall() == [("tui",)]
