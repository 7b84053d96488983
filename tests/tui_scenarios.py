"""The screens worth a picture, each a Pilot script on the fixed fixture database.

The snapshot tests run them on fixed data so that the pictures compare between runs; the
README's pictures (``scripts/screenshots``) come from a live session instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

from mpsandbox.config import Settings
from mpsandbox.fixtures.replay import Progress
from mpsandbox.tui.app import MpSandboxApp
from mpsandbox.tui.widgets.event_detail import EventDetail
from mpsandbox.tui.widgets.event_table import EventTable
from tests.tui_fixture import (
    WM,
    copy_db,
    ensure_schema_copies,
    instrument_files,
    platform_settings,
)

SIZE = (130, 40)


def shown_detail(app) -> EventDetail | None:
    """The event detail on screen, once its event is read: in place of the Live screen's
    list, or on a detail screen of its own."""
    for detail in app.screen.query(EventDetail):
        if detail.display and detail.data is not None:
            return detail
    return None


def make_app(fixture_db: Path, workdir: Path, *, platform: bool = False) -> MpSandboxApp:
    """A read-only app on a private copy of the fixture (nothing listens, nothing varies);
    ``platform``: with the platform fixture's stream configs, experiments and wiki URL (use
    it on a database built with ``build_fixture_db(..., platform=True)``)."""
    settings = Settings(
        host="127.0.0.1",
        port=8192,
        db=copy_db(fixture_db, workdir / "screens.db"),
        schema_dirs=ensure_schema_copies(),
        # The built-in library's path is the checkout's, which differs between machines.
        use_builtin_schemas=False,
        cache_dir=workdir / "cache",
        watch_schemas=False,
        instruments=str(instrument_files()),
    )
    if platform:
        settings = platform_settings(settings)
    return MpSandboxApp(settings, listen=False)


async def settle(pilot, condition: Callable[[], object] = lambda: True, timeout=10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the screen did not settle")
        await pilot.pause(0.05)
    await pilot.pause(0.2)
    await pilot.wait_for_scheduled_animations()


def _loaded(pilot) -> bool:
    tables = pilot.app.screen.query(EventTable)
    return bool(tables) and tables.first().total > 0 and tables.first().row_at(0) is not None


async def live(pilot) -> None:
    await settle(pilot, lambda: _loaded(pilot))


async def live_filtered(pilot) -> None:
    await live(pilot)
    await pilot.press("slash", *"is:invalid", "enter")
    await settle(pilot, lambda: pilot.app.screen.query_one(EventTable).total == 3)
    await pilot.press("down")
    await settle(pilot)


async def detail(pilot) -> None:
    await live(pilot)
    await pilot.press("slash", *"request:6", "enter")
    await settle(pilot, lambda: pilot.app.screen.query_one(EventTable).total == 2)
    await pilot.press("end", "enter")
    await settle(pilot, lambda: shown_detail(pilot.app) is not None)


async def errors(pilot) -> None:
    await live(pilot)
    await pilot.press("2")
    groups = pilot.app.screen.query_one("#error-groups")
    await settle(pilot, lambda: groups.row_count > 0)
    await pilot.press("down", "enter")
    await settle(pilot, lambda: pilot.app.screen.query_one("#group-events").table.total)


async def schemas(pilot) -> None:
    await live(pilot)
    await pilot.press("3")
    await pilot.press("slash", *"/analytics/product_metrics/web/base/9.9.9", "enter")
    screen = pilot.app.screen
    await settle(
        pilot,
        lambda: (
            "does not resolve" in str(screen.query_one("#probe-result").render())
            and "schemas," in str(screen.query_one("#sources").render())
        ),
    )


async def help_screen(pilot) -> None:
    await live(pilot)
    await pilot.press("question_mark")
    await settle(pilot)


async def port_taken(pilot) -> None:
    await live(pilot)
    app = pilot.app
    app.status = replace(
        app.status,
        read_only=False,
        port=8192,
        port_problem="port 8192 on 127.0.0.1 is already in use (another mpsandbox, or the "
        "EventGate devserver?). Stop it, or choose another port with --port 8193.",
    )
    await settle(pilot)


async def streams(pilot) -> None:
    await live(pilot)
    await pilot.press("4")
    screen = pilot.app.screen
    table = screen.query_one("#streams-table")
    await settle(pilot, lambda: table.row_count > 0)
    await pilot.press("slash", *"0.25", "enter")
    await settle(pilot, lambda: "at rate 0.25" in str(screen.query_one("#whatif-result").render()))
    await pilot.press("escape")  # back to the table: the footer shows the screen's keys
    await settle(pilot)


async def sessions(pilot) -> None:
    await live(pilot)
    await pilot.press("5")
    screen = pilot.app.screen
    table = screen.query_one("#sessions-table")
    await settle(pilot, lambda: table.row_count > 0)
    await pilot.press("enter")  # the most recently active: the platform fixture's session
    timeline = screen.query_one("#timeline-table")
    await settle(pilot, lambda: timeline.row_count > 0)


async def experiments(pilot) -> None:
    await live(pilot)
    await pilot.press("6")
    screen = pilot.app.screen
    table = screen.query_one("#experiments-table")
    await settle(
        pilot,
        lambda: table.row_count > 0 and "treatment" in str(table.get_row_at(0)[5]),
    )


async def flips(pilot) -> None:
    await live(pilot)
    await pilot.press("7")
    table = pilot.app.screen.query_one("#flips-table")
    await settle(pilot, lambda: table.row_count > 0)


#: A fixture file at a path that is the same on every machine (the screen shows it).
REPLAY_FIXTURE = Path("/tmp/mpsandbox-replay-fixture/events.json")


def replay_fixture() -> Path:
    """The EventGate devserver's recorded events.json, copied to REPLAY_FIXTURE."""
    REPLAY_FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    data = (WM / "eventgate/recorded-local-run/events.json").read_bytes()
    if not REPLAY_FIXTURE.exists() or REPLAY_FIXTURE.read_bytes() != data:
        REPLAY_FIXTURE.write_bytes(data)
    return REPLAY_FIXTURE


async def replay(pilot) -> None:
    """The Replay screen with a file chosen and a finished run shown (a fixed Progress: the
    snapshot app is read-only and nothing listens, so nothing is actually sent)."""
    from textual.widgets import Select

    await live(pilot)
    await pilot.press("9")
    screen = pilot.app.screen
    await pilot.press("slash", *str(replay_fixture()))
    screen.query_one("#replay-pacing", Select).value = "fast"
    screen.query_one("#replay-dt", Select).value = "shift"
    screen.query_one("#replay-ids", Select).value = "fresh"
    preview = screen.query_one("#replay-preview")
    await settle(pilot, lambda: "7 requests" in str(preview.render()))
    screen._show(
        Progress(
            total=7,
            target="http://127.0.0.1:8192/v1/events",
            done=7,
            by_status={"201": 6, "400": 1},
            elapsed=0.4,
            finished=True,
            dts_changed=14,
            ids_changed=7,
        )
    )
    screen.query_one("#replay-start").focus()  # the key bar shows the screen's keys
    await settle(pilot)


async def metrics(pilot) -> None:
    await live(pilot)
    await pilot.press("0")
    table = pilot.app.screen.query_one("#metrics-table")
    await settle(pilot, lambda: table.row_count > 0)


async def instruments(pilot) -> None:
    await live(pilot)
    await pilot.press("8")
    screen = pilot.app.screen
    table = screen.query_one("#instruments-table")
    await settle(pilot, lambda: table.row_count > 0)
    await pilot.press("down", "down", "down", "down", "down")  # the toolbar click: a failure
    await settle(pilot)


async def chaos_dialog(pilot) -> None:
    """The chaos dialog (as the palette opens it), its grammar beside the input."""
    await live(pilot)
    app = pilot.app
    app.status = replace(app.status, read_only=False)  # the fixture app is read-only
    app.action_set_chaos()
    await settle(pilot, lambda: bool(app.screen.query("#prompt-help")))


#: Scenarios on the platform fixture (stream configs, experiments, sessions with funnels).
PLATFORM = {"streams", "sessions", "experiments", "metrics"}

SCENARIOS: dict[str, Callable[..., Awaitable[None]]] = {
    "live": live,
    "live-filtered": live_filtered,
    "detail": detail,
    "errors": errors,
    "schemas": schemas,
    "help": help_screen,
    "port-taken": port_taken,
    "streams": streams,
    "sessions": sessions,
    "experiments": experiments,
    "flips": flips,
    "replay": replay,
    "metrics": metrics,
    "instruments": instruments,
    "chaos-dialog": chaos_dialog,
}
