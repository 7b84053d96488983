"""Fixed fixture data for TUI tests, snapshots and screenshots.

Events go through the real pipeline (real schemas from tests/data) and the real writer
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
WM = ROOT / "tests" / "data"
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
        (staging / ".complete").write_text("copied from tests/data\n")
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


#: Where the platform fixture's stream configs and experiments are written: a fixed place,
#: like the schema copies, so the paths screens show are the same everywhere.
PLATFORM_HOME = Path("/tmp/mpsandbox-fixture-platform")
WIKI_URL = "http://localhost:8080/wiki/Main_Page"

STREAM_CONFIG = """\
# the fixture's stream configs, a $wgEventStreams-style map
product_metrics.web_base:
  schema_title: analytics/product_metrics/web/base
  destination_event_service: eventgate-analytics-external
  sample: {unit: session, rate: 0.5}
  producers:
    metrics_platform_client:
      provide_values: [agent_client_platform, performer_session_id]
product_metrics.app_base:
  schema_title: analytics/product_metrics/app/base
  sample: {unit: device, rate: 1}
/^mpsandbox\\..+/:
  schema_title: mpsandbox/smoke_test
"""

EXPERIMENTS = """\
- name: fixture-button-test
  groups: [control, treatment]
  sample_rate: 0.5
  sampling_unit: edge-unique
  stream: product_metrics.web_base
- name: fixture-user-test
  groups: [control, treatment, b]
  sample_rate: 1
  sampling_unit: mw-user
  stream: product_metrics.web_base
"""

#: The platform fixture's own session: two pageviews, a funnel with a gap, a repeat and
#: steps in disorder (by dt), and events of two experiments.
PLATFORM_SESSION = "c0ffee0c0ffee0c0ffee"


def platform_files() -> tuple[Path, Path]:
    """The stream config and experiments files (written once, atomically)."""
    PLATFORM_HOME.mkdir(parents=True, exist_ok=True)
    out = []
    for name, text in (("streams.yaml", STREAM_CONFIG), ("experiments.yaml", EXPERIMENTS)):
        target = PLATFORM_HOME / name
        if not target.exists() or target.read_text() != text:
            staging = target.with_name(f"{name}.{os.getpid()}.tmp")
            staging.write_text(text)
            staging.replace(target)
        out.append(target)
    return out[0], out[1]


def platform_requests() -> list[list[dict]]:
    """Requests the platform screens need, appended after :func:`fixture_requests`."""
    valid = _load("valid_web_base.json")
    base = 1000
    out: list[list[dict]] = []

    def ev(n: int, second: float, **fields: Any) -> dict:
        e = _with_meta(valid, base + n)
        e["dt"] = f"2024-10-01T12:{int(second // 60):02d}:{second % 60:06.3f}Z"
        e["performer"] = {
            "is_logged_in": False,
            "session_id": PLATFORM_SESSION,
            "pageview_id": fields.pop("pageview", "aaaa1111bbbb2222cccc"),
        }
        e.update(fields)
        return e

    funnel = {"instrument_name": "fixture-funnel", "funnel_entry_token": "entry-token-1"}
    out.append([ev(1, 10, action="init", **funnel, funnel_event_sequence_position=1)])
    out.append([ev(2, 14.5, action="click", **funnel, funnel_event_sequence_position=3)])
    # sent later, but by dt before step 3: disorder
    out.append([ev(3, 12, action="click", **funnel, funnel_event_sequence_position=4)])
    out.append([ev(4, 20, action="click", **funnel, funnel_event_sequence_position=3)])
    second_page = "dddd3333eeee4444ffff"
    for i, (exp, group) in enumerate(
        [
            ("fixture-button-test", "treatment"),
            ("fixture-button-test", "treatment"),
            ("fixture-button-test", "control"),
            ("fixture-user-test", "b"),
        ]
    ):
        experiment = {
            "enrolled": exp,
            "assigned": group,
            "subject_id": "awaiting",
            "sampling_unit": "edge-unique",
            "coordinator": "default",
        }
        out.append(
            [
                ev(
                    10 + i,
                    95 + i * 3,
                    action="experiment_exposure",
                    experiment=experiment,
                    pageview=second_page,
                )
            ]
        )
    return out


def copy_db(source: Path, target: Path) -> Path:
    """A consistent private copy (the WAL included), so a test that writes disturbs no other."""
    with (
        contextlib.closing(sqlite3.connect(source)) as src,
        contextlib.closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst)
    return target


def platform_settings(settings: Settings) -> Settings:
    """``settings`` with the platform fixture's stream configs, experiments and wiki URL."""
    streams, experiments = platform_files()
    return settings.with_(
        stream_config=str(streams), experiments_file=str(experiments), wiki_url=WIKI_URL
    )


def _add_revalidation(sandbox: Sandbox, settings: Settings, workdir: Path) -> None:
    """One re-validation run, as if web/base 1.3.0 had been edited to allow actions of at
    most 4 characters: most fixture events flip (fixed times, so pictures do not vary)."""
    from mpsandbox.pipeline import Pipeline
    from mpsandbox.revalidation import Report, rejudge, store_call
    from mpsandbox.sandbox import build_registry

    title = "analytics/product_metrics/web/base"
    secondary = workdir / "secondary"
    shutil.rmtree(workdir, ignore_errors=True)
    shutil.copytree(settings.schema_dirs[0], secondary, symlinks=True)
    path = secondary / title / "1.3.0.yaml"
    text = path.read_text()
    head, rest = text.split("  action:\n", 1)
    before, after = rest.split("    maxLength: ", 1)
    path.write_text(f"{head}  action:\n{before}    maxLength: 4\n{after.split(chr(10), 1)[1]}")
    narrowed = settings.with_(schema_dirs=(secondary, *settings.schema_dirs[1:]))
    pipeline = Pipeline(build_registry(narrowed))
    report = Report(trigger="schema change", titles=[title], limit=10_000, started_at=START + 400)
    rows = sandbox.reader.revalidation_candidates(report.titles, report.limit)
    rejudge(pipeline, rows, report, pause=lambda: None)
    report.seconds = 0.12
    sandbox.writer.run_in_writer(store_call(report)).result(30)


def store_settings(path: Path, schema_dirs=None) -> Settings:
    """Settings for a store the test fills itself (in-process writer, the schema copies)."""
    return Settings(
        host="127.0.0.1",
        port=0,
        db=path,
        schema_dirs=tuple(schema_dirs or ensure_schema_copies()),
        cache_dir=path.parent / "cache",
        watch_schemas=False,
        writer_process=False,
    )


def build_fixture_db(path: Path, *, schema_dirs=None, platform: bool = False) -> Settings:
    """Write the fixture into a new database at ``path``; returns matching settings.

    ``platform``: judged with the fixture's stream configs and experiments, with the
    platform screens' session, funnel and experiment events appended."""
    settings = store_settings(path, schema_dirs)
    requests = fixture_requests()
    if platform:
        settings = platform_settings(settings)
        requests += platform_requests()
    sandbox = Sandbox(settings)
    sandbox.start()
    if sandbox.stream_source is not None:
        sandbox.pipeline.stream_configs = sandbox.stream_source.load()
    try:
        for i, events in enumerate(requests):
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
        _add_revalidation(sandbox, settings, path.parent / "narrowed-schemas")
    finally:
        sandbox.writer.close()
        if sandbox.reader is not None:
            sandbox.reader.close()
    return settings


#: The Instruments screen's definitions, written to a fixed place like the files above.
INSTRUMENTS_HOME = Path("/tmp/mpsandbox-fixture-instruments")

FIXTURE_INSTRUMENT = """\
# the fixture's web/base events, as an instrument that gets some of it wrong
name: fixture-web-base
description: Clicks, scrolls and a form on the fixture's pages.
stream: product_metrics.web_base
schema: {title: analytics/product_metrics/web/base, version: "1.3.0"}
expects:
  - id: init
    action: init
    count: 1
  - id: submit
    action: submit
    required: [performer.session_id, agent.client_platform]
  - id: toolbar-click
    action: click
    action_source: toolbar
  - id: scroll
    action: scroll
    count: {max: 5, per: session}
  - id: save
    action: save
"""


def instrument_files() -> Path:
    """The folder of the fixture's instrument definitions (written once, atomically)."""
    INSTRUMENTS_HOME.mkdir(parents=True, exist_ok=True)
    target = INSTRUMENTS_HOME / "fixture-web-base.yaml"
    if not target.exists() or target.read_text() != FIXTURE_INSTRUMENT:
        staging = target.with_name(f"fixture-web-base.{os.getpid()}.tmp")
        staging.write_text(FIXTURE_INSTRUMENT)
        staging.replace(target)
    return INSTRUMENTS_HOME
