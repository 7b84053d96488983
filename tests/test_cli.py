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
    # Each error as the TUI's detail words it: the field, what was expected, what was there.
    assert (
        "performer.session_id: should NOT be shorter than 20 characters: "
        "expected at least 20, got 9 characters"
    ) in out
    assert (
        "unknown_field: should NOT have additional properties: "
        "expected no property 'unknown_field', got present: true"
    ) in out
    assert (
        "agent.client_platform: should be equal to one of the allowed values: expected one of "
        '["mediawiki_php","mediawiki_js","kaios","android","ios"], got "windows"'
    ) in out
    # ... and the platform findings.
    assert "warning: neither dt nor client_dt" in out and "[time.dt_missing]" in out
    assert "2 events: 1 valid, 1 not" in out


def test_validate_judges_the_readable_lines_of_json_lines(tmp_path):
    good = (RECORDED / "req/valid_web_base.json").read_text().replace("\n", " ")
    f = tmp_path / "events.jsonl"
    f.write_text(
        json.dumps(json.loads(good)) + "\n{not json\n" + json.dumps(json.loads(good)) + "\n"
    )
    res = run_cli("validate", str(f), *schema_args())
    assert res.returncode == 1, res.stderr
    assert f"{f}:2: not JSON" in res.stderr.decode()
    out = res.stdout.decode()
    assert out.count("VALID") == 2
    assert "2 events: 2 valid, 0 not, 1 line unreadable" in out


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
    assert "1.3.0" in out and "--remote-schemas" not in out
    # the suite runs offline (conftest): the hint says so, and names no flag already given
    assert "Remote schemas are off" in out and "point --schemas at" not in out


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


def post(
    port,
    body: bytes,
    path="/v1/events",
    content_type="text/plain;charset=UTF-8",
    timeout: float = 10,
):
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=body,
        headers={"content-type": content_type},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
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


def _listed_commands(argv: list[str]) -> list[str]:
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True).stdout
    listed = out.split("Commands:", 1)[1]
    return [line.split()[0] for line in listed.splitlines() if line.strip()]


def test_every_entry_point_lists_every_command():
    """`python -m mpsandbox`, `python -m mpsandbox.cli` and the installed script are one
    group with every command registered, however the package is first imported."""
    from pathlib import Path

    from mpsandbox.cli import COMMANDS

    script = str(Path(PY).with_name("mpsandbox"))
    listings = [
        _listed_commands([PY, "-m", "mpsandbox", "--help"]),
        _listed_commands([PY, "-m", "mpsandbox.cli", "--help"]),
        _listed_commands([script, "--help"]),
    ]
    assert listings[0] == listings[1] == listings[2]
    assert sorted(listings[0]) == sorted(c.name for c in COMMANDS)
    assert len(listings[0]) == 15


def test_user_errors_are_one_line_with_their_exit_status(tmp_path):
    """Every MpsandboxError becomes `mpsandbox: message` and its status in one place."""
    res = run_cli("chaos", "set", "600:0.5", "--db", str(tmp_path / "db.sqlite"))
    assert res.returncode == 2
    assert res.stderr.decode().startswith("mpsandbox: chaos spec ")
    assert b"Traceback" not in res.stderr
    missing = run_cli("override", "clear", "flag", "nope", "--db", str(tmp_path / "db.sqlite"))
    assert missing.returncode == 1
    assert missing.stderr.decode() == "mpsandbox: no flag override 'nope'\n"


@pytest.mark.parametrize("command", ["validate", "import", "replay", "check", "simulate"])
def test_one_shot_commands_offer_no_server_options(command):
    """A command that judges a file and exits has no port, no watcher, no refresh timer."""
    text = _help_text(command)
    for server_only in ("--port", "--host", "--stream-config-refresh", "--no-watch", "--max-age"):
        assert server_only not in text, f"{command} --help offers {server_only}"
    assert "--schemas" in text


def _help_text(command: str) -> str:
    cmd = main.commands[command]
    with click.Context(cmd, info_name=command) as ctx:
        return cmd.get_help(ctx)
