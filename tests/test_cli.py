"""The command line, run as a user runs it: real processes, real ports, real files."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request

import click
import pytest

from mpsandbox.cli import main
from tests.conftest import PRIMARY, RECORDED, SECONDARY

PY = sys.executable


def run_cli(*args, input: bytes | None = None, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PY, "-m", "mpsandbox", *args], input=input, capture_output=True, timeout=60, env=env
    )


def schema_args():
    return ["--schemas", str(SECONDARY), "--schemas", str(PRIMARY)]


def test_validate_valid_and_invalid_files(tmp_path):
    ok = run_cli("validate", str(RECORDED / "req/valid_web_base.json"), *schema_args())
    assert ok.returncode == 0, ok.stderr
    assert b"VALID" in ok.stdout
    bad = run_cli("validate", str(RECORDED / "req/batch_mixed.json"), *schema_args())
    assert bad.returncode == 1
    out = bad.stdout.decode()
    assert ".performer.session_id: should NOT be shorter than 20 characters" in out
    assert "2 events: 1 valid, 1 not" in out


def test_validate_json_lines_from_stdin_as_json():
    lines = (RECORDED / "events.json").read_bytes()
    res = run_cli("validate", "-", "--format", "json", *schema_args(), input=lines)
    assert res.returncode == 0, res.stdout
    verdicts = [json.loads(line)["verdict"] for line in res.stdout.splitlines()]
    assert verdicts == ["valid"] * 7


def test_validate_explains_a_missing_schema_version(tmp_path):
    event = json.loads((RECORDED / "req/valid_web_base.json").read_text())
    event["$schema"] = "/analytics/product_metrics/web/base/1.5.0"
    f = tmp_path / "e.json"
    f.write_text(json.dumps(event))
    res = run_cli("validate", str(f), *schema_args())
    assert res.returncode == 1
    out = res.stdout.decode()
    assert "Failed loading schema at /analytics/product_metrics/web/base/1.5.0" in out
    assert "1.3.0" in out and "--remote-schemas" in out


def test_validate_unreadable_input(tmp_path):
    res = run_cli("validate", str(tmp_path / "nope.json"))
    assert res.returncode == 2 and b"cannot read" in res.stderr
    (tmp_path / "junk").write_text("{not json\n")
    res = run_cli("validate", str(tmp_path / "junk"))
    assert res.returncode == 2 and b"not JSON" in res.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_serve(tmp_path, *extra):
    port = free_port()
    db = tmp_path / "serve.db"
    proc = subprocess.Popen(
        [
            PY,
            "-m",
            "mpsandbox",
            "serve",
            "--port",
            str(port),
            "--db",
            str(db),
            *schema_args(),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    ready = json.loads(proc.stdout.readline())
    assert ready["ready"] and ready["url"] == f"http://127.0.0.1:{port}"
    return proc, port, db


def post(port, body: bytes, path="/v1/events"):
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=body,
        headers={"content-type": "text/plain;charset=UTF-8"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_serve_prints_jsonl_and_flushes_on_sigterm(tmp_path):
    proc, port, db = start_serve(tmp_path)
    try:
        body = (RECORDED / "req/batch_mixed.json").read_bytes()
        statuses = [post(port, body) for _ in range(20)]
        assert statuses == [207] * 20
        lines = [json.loads(proc.stdout.readline()) for _ in range(40)]
        assert {line["verdict"] for line in lines} == {"valid", "invalid"}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*) from events").fetchone()[0] == 40


def test_busy_port_gives_one_line(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        res = run_cli("serve", "--port", str(port), "--db", str(tmp_path / "x.db"))
    assert res.returncode == 2
    err = res.stderr.decode().strip()
    assert len(err.splitlines()) == 1
    assert str(port) in err and "--port" in err


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["serve", "--port", "99999"], {}),
        (["serve", "--port", "-1"], {}),
        (["serve", "--port", "65536"], {}),
        (["--port", "70000"], {}),  # the TUI (serve without a terminal)
        (["demo", "--port", "99999"], {}),
        (["serve"], {"MPSANDBOX_PORT": "99999"}),
        (["serve"], {"MPSANDBOX_PORT": "eighty"}),
    ],
)
def test_a_port_outside_1_to_65535_is_a_usage_error(tmp_path, args, env):
    """Not silently wrapped (99999 listened on 34463; run_cli's timeout fails a server
    that starts anyway)."""
    res = run_cli(*args, "--db", str(tmp_path / "x.db"), env={**os.environ, **env})
    err = res.stderr.decode()
    assert res.returncode == 2, err
    assert "port" in err.lower() and "Traceback" not in err


def test_port_0_picks_a_free_port(tmp_path):
    proc = subprocess.Popen(
        [PY, "-m", "mpsandbox", "serve", "--port", "0", "--db", str(tmp_path / "p.db")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        ready = json.loads(proc.stdout.readline())
        port = int(ready["url"].rsplit(":", 1)[1])
        assert 0 < port < 65536
        assert post(port, b"[]") == 400
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def test_unusable_database_gives_a_clear_error(tmp_path):
    (tmp_path / "dir.db").mkdir()
    res = run_cli("serve", "--port", str(free_port()), "--db", str(tmp_path / "dir.db"))
    assert res.returncode == 2
    err = res.stderr.decode()
    assert "dir.db" in err and "Traceback" not in err


def test_every_command_has_help():
    def walk(cmd: click.Command, name: str):
        assert cmd.help, f"{name} has no help text"
        for p in cmd.params:
            if isinstance(p, click.Option):
                assert p.help, f"{name} {p.opts} has no help"
        if isinstance(cmd, click.Group):
            for sub_name, sub in cmd.commands.items():
                walk(sub, f"{name} {sub_name}")

    walk(main, "mpsandbox")


def test_core_imports_without_textual():
    code = (
        "import sys, importlib, pkgutil, mpsandbox\n"
        "for m in pkgutil.walk_packages(mpsandbox.__path__, 'mpsandbox.'):\n"
        "    if '.tui' in m.name or m.name.endswith('__main__'): continue\n"
        "    importlib.import_module(m.name)\n"
        "bad = [m for m in sys.modules if m == 'textual' or m.startswith('textual.')]\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    res = subprocess.run([PY, "-c", code], capture_output=True, timeout=60)
    assert res.returncode == 0, res.stderr.decode()
    assert res.stdout.strip() == b"ok"


@pytest.mark.skipif(os.name != "posix", reason="signals")
def test_sigint_also_flushes(tmp_path):
    proc, port, db = start_serve(tmp_path)
    try:
        body = (RECORDED / "req/valid_web_base.json").read_bytes()
        assert post(port, body, "/v1/events?hasty=1") == 202
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
    time.sleep(0.1)
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*) from events").fetchone()[0] == 1
