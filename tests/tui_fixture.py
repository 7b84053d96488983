"""Fixed fixture data for TUI tests, snapshots and screenshots.

Events go through the real pipeline (real schemas from ../shared/wm) and the real writer
with fixed receive times, request ids and headers, so every screen renders the same on
every machine. Times are shown in UTC (``use_utc``).
"""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

from mpsandbox import jsonio
from mpsandbox.config import Settings
from mpsandbox.pipeline import RequestContext
from mpsandbox.records import RequestRecord
from mpsandbox.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[1]
WM = (ROOT / ".." / "shared" / "wm").resolve()
REQ = WM / "eventgate/recorded-local-run/req"
#: The real schema repositories, copied to a fixed place so that the paths screens show
#: (where a schema was loaded from) are the same on every machine and in CI.
FIXED_HOME = Path("/tmp/mpsandbox-fixture-schemas")
SCHEMA_DIRS = (FIXED_HOME / "secondary", FIXED_HOME / "primary")


def ensure_schema_copies() -> tuple[Path, ...]:
    for target, origin in zip(
        SCHEMA_DIRS,
        (WM / "schemas/secondary/jsonschema", WM / "schemas/primary/jsonschema"),
        strict=True,
    ):
        marker = target / ".complete"
        if marker.exists():
            continue
        staging = target.with_name(target.name + f".{os.getpid()}.tmp")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(origin, staging, symlinks=True)
        (staging / ".complete").write_text("copied from ../shared/wm\n")
        shutil.rmtree(target, ignore_errors=True)
        with contextlib.suppress(OSError):  # another process may have won the race
            staging.rename(target)
        shutil.rmtree(staging, ignore_errors=True)
    return SCHEMA_DIRS


#: 2024-10-01T12:00:00Z, when the fixture's first request arrives.
START = 1_727_784_000.0
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) Firefox/131.0"

#: Strings that must be shown literally and safely.
NASTY = {
    "markup": "[bold red]not bold[/bold red] [link=http://x]link[/link]",
    "ansi": "\x1b[31mred\x1b[0m\x1b[2J cleared? \x07bell",
    "rtl": "\u202eevil\u202c שלום עולם مرحبا",
    "emoji": "👩‍💻🎉 clicks 🇺🇦",
    "long": "x" * 5000,
}


def use_utc() -> None:
    os.environ["TZ"] = "UTC"
    time.tzset()


def _load(name: str) -> Any:
    return jsonio.loads((REQ / name).read_bytes())


def _with_meta(event: dict, n: int) -> dict:
    event = copy.deepcopy(event)
    meta = event.setdefault("meta", {})
    meta.setdefault("id", f"00000000-0000-7000-8000-{n:012d}")
    meta.setdefault("dt", "2024-10-01T12:00:00.000Z")
    return event


def fixture_requests() -> list[list[dict]]:
    """Each inner list is one POST body's events."""
    valid = _load("valid_web_base.json")
    invalid = _load("invalid_web_base.json")
    unknown = _load("unknown_schema.json")
    requests: list[list[dict]] = []
    n = 0

    def ev(base: dict, **changes: Any) -> dict:
        nonlocal n
        n += 1
        e = _with_meta(base, n)
        for key, value in changes.items():
            target = e
            *parents, last = key.split("__")
            for p in parents:
                target = target.setdefault(p, {})
            target[last] = value
        return e

    sessions = ["a1b2c3d4e5f6a7b8c9d0", "0f1e2d3c4b5a69788796", "ffffeeeeddddccccbbbb"]
    for i, action in enumerate(["init", "click", "click", "submit", "click"]):
        requests.append([ev(valid, action=action, performer__session_id=sessions[i % 3])])
    requests.append([ev(invalid), ev(valid, action="hover")])
    requests.append([ev(invalid, performer__session_id="short")])
    requests.append([ev(unknown) if isinstance(unknown, dict) else ev(unknown[0])])
    requests.append([ev(valid, action="click", action_context=NASTY["markup"])])
    requests.append(
        [
            ev(
                valid,
                action="nasty",
                action_source=NASTY["ansi"],
                action_subtype=NASTY["rtl"],
                action_context=NASTY["emoji"],
                funnel_name=NASTY["long"],
            )
        ]
    )
    for i in range(20):
        requests.append([ev(valid, action="scroll", performer__session_id=sessions[i % 3])])
    return requests


def copy_db(source: Path, target: Path) -> Path:
    """A consistent private copy (the WAL included), so a test that writes disturbs no other."""
    with (
        contextlib.closing(sqlite3.connect(source)) as src,
        contextlib.closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst)
    return target


def build_fixture_db(path: Path, *, schema_dirs=None) -> Settings:
    """Write the fixture into a new database at ``path``; returns matching settings."""
    schema_dirs = schema_dirs or ensure_schema_copies()
    settings = Settings(
        host="127.0.0.1",
        port=0,
        db=path,
        schema_dirs=tuple(schema_dirs),
        cache_dir=path.parent / "cache",
        watch_schemas=False,
        writer_process=False,
    )
    sandbox = Sandbox(settings)
    sandbox.start()
    try:
        for i, events in enumerate(fixture_requests()):
            at = START + i * 7.25
            body = jsonio.dumps(events if len(events) > 1 else events[0])
            headers = [
                ("Host", "localhost:8192"),
                ("User-Agent", USER_AGENT),
                ("Content-Type", "text/plain;charset=UTF-8"),
            ]
            ctx = RequestContext(
                received_at=at,
                request_id=f"fixture-request-{i:03d}",
                headers={k.lower(): v for k, v in headers},
                peer="127.0.0.1",
            )
            records = sandbox.pipeline.judge_batch(events, ctx)
            invalid = any(r.verdict != "valid" for r in records)
            request = RequestRecord(
                received_at=at,
                method="POST",
                path="/v1/events",
                query="",
                headers=headers,
                body=body,
                remote="127.0.0.1",
                request_id=ctx.request_id,
                status=400 if invalid and len(records) == 1 else (207 if invalid else 201),
                reason="Bad Request"
                if invalid and len(records) == 1
                else ("Multi-Status" if invalid else "Created"),
                event_count=len(records),
            )
            sandbox.writer.submit(request, records).result(30)
    finally:
        sandbox.writer.close()
        if sandbox.reader is not None:
            sandbox.reader.close()
    return settings
