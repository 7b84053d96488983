"""What `mpsandbox serve` does before it says it is ready: only what accepting and storing
needs. The start-up time itself is a benchmark figure (bench/intake.py, "ready after
start"); this guards the reason it is short: modules that cost tens of milliseconds to
import and that no request needs before its first schema is compiled, or that only other
commands and screens use, stay unimported until something asks for them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import psutil
import pytest

from mpsandbox.config import Settings, settings_to_json
from tests.conftest import PRIMARY, SECONDARY

#: Modules the ready line must not wait for, and why each can wait.
NOT_AT_START = {
    # The validator (AJV's plan, jsonschema for the detailed errors, jsonschema-rs for the
    # verdict): imported when the registry compiles its first schema.
    "mpsandbox.schemas.validator": "compiled schemas",
    "jsonschema": "the detailed AJV errors",
    "referencing": "the detailed AJV errors",
    "jsonschema_rs": "the fast verdict",
    # YAML is parsed when a .yaml schema file or definition is first read.
    "yaml": "YAML schema files",
    # Answers of their own routes and commands.
    "mpsandbox.whatif": "the sampling what-if route",
    "mpsandbox.metrics": "the metrics commands and screen",
    "mpsandbox.intake.openapi": "the /openapi.json route",
    "mpsandbox.fixtures": "export/import/replay",
    "mpsandbox.simulate": "simulate and demo",
    "mpsandbox.authoring": "the schema commands",
    "textual": "the terminal UI",
}


def _imported_when_ready(argv: list[str], settings: Settings | None = None) -> set[str]:
    """The modules ``python -m <argv>`` has imported when it prints its ready line: -X
    importtime names each import on stderr as it happens; the process is killed (no
    shutdown imports) once the ready line is read. ``settings`` go first on its stdin (the
    TUI's intake child)."""
    proc = subprocess.Popen(
        [sys.executable, "-X", "importtime", "-m", *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    try:
        if settings is not None:
            proc.stdin.write(json.dumps(settings_to_json(settings)) + "\n")
            proc.stdin.flush()
        line = proc.stdout.readline()
        assert json.loads(line)["ready"], line
    finally:
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
    names = set()
    for row in err.splitlines():
        if row.startswith("import time:") and "|" in row:
            names.add(row.rsplit("|", 1)[1].strip())
    assert "mpsandbox.intake.server" in names, err[-2000:]  # the parse read real output
    return names


def _roots(names: set[str]) -> set[str]:
    return {n for n in NOT_AT_START if any(m == n or m.startswith(n + ".") for m in names)}


@pytest.mark.parametrize(
    "schemas",
    [
        pytest.param(["--schemas", str(SECONDARY), "--schemas", str(PRIMARY)], id="schema-dirs"),
        pytest.param([], id="built-in-schemas"),
    ],
)
def test_serve_is_ready_before_importing_what_can_wait(tmp_path, schemas):
    """`mpsandbox serve` as the benchmark starts it (and as ./start does, on the built-in
    schemas)."""
    names = _imported_when_ready(
        [
            *("mpsandbox", "serve", "--port", "0", "--db", str(tmp_path / "start.db")),
            *("--output", "jsonl", "--no-watch", "--offline", *schemas),
        ]
    )
    early = _roots(names)
    assert not early, {n: NOT_AT_START[n] for n in early}


def test_the_tui_intake_is_ready_before_importing_what_can_wait(tmp_path):
    """The TUI's intake child (intake/child.py) starts the same way."""
    settings = Settings(
        db=tmp_path / "start.db",
        port=0,
        offline=True,
        watch_schemas=False,
        schema_dirs=(SECONDARY,),
    )
    early = _roots(_imported_when_ready(["mpsandbox.intake.child"], settings))
    assert not early, {n: NOT_AT_START[n] for n in early}


def test_the_tui_intake_forks_its_store_process(tmp_path):
    """The intake child reads its settings and forks the store process before any thread
    of its own starts: a spawned store process would start a new interpreter and import
    the store again (hundreds of milliseconds on two busy cores)."""
    settings = Settings(db=tmp_path / "start.db", port=0, offline=True, watch_schemas=False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mpsandbox.intake.child"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        proc.stdin.write(json.dumps(settings_to_json(settings)) + "\n")
        proc.stdin.flush()
        assert json.loads(proc.stdout.readline())["ready"]
        children = psutil.Process(proc.pid).children()
        assert children, "no store process"
        for child in children:
            assert not any("spawn_main" in part for part in child.cmdline()), child.cmdline()
    finally:
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
