"""The Replay screen, driven by Pilot against the real app and a real intake on loopback:
replayed events arrive on the Live screen, a replay can be cancelled, and a target that
does not answer shows transport failures. Also: a bundle opens read-only in the app."""

from __future__ import annotations

import json
import socket

from textual.widgets import Input, Select

from mpsandbox.fixtures.bundle import make_bundle
from mpsandbox.fixtures.unbundle import extract
from mpsandbox.tui.screens.replay import ReplayScreen
from mpsandbox.tui.widgets.event_table import EventTable
from tests.test_tui import fixture_db, running, screen_text, settings, until  # noqa: F401
from tests.tui_scenarios import replay_fixture

RECORDED_EVENT = json.loads(replay_fixture().read_text().splitlines()[0])


async def _start(pilot, screen: ReplayScreen, path: str, **choices: str) -> None:
    screen.query_one("#replay-file", Input).value = path
    for name, value in choices.items():
        if name == "url":
            screen.query_one("#replay-url", Input).value = value
        elif name == "rate":
            screen.query_one("#replay-rate", Input).value = value
        else:
            screen.query_one(f"#replay-{name}", Select).value = value
    await pilot.pause()
    await pilot.press("ctrl+s")
    # Starting cleared the last run's progress: what the test waits on next is this run's.


def finished(screen: ReplayScreen) -> bool:
    return screen.progress is not None and screen.progress.finished and not screen.running


async def test_replay_screen_sends_cancels_and_reports_failures(settings, tmp_path):  # noqa: F811
    async with running(settings) as (app, pilot):
        table = app.screen.query_one(EventTable)
        before = table.total
        await pilot.press("9")
        screen = app.screen
        assert isinstance(screen, ReplayScreen)

        # Into this sandbox: over HTTP, so the live table shows them.
        await _start(pilot, screen, str(replay_fixture()), ids="fresh")
        await until(pilot, lambda: finished(screen), 20, "done")
        assert screen.progress.by_status == {"201": 7} and screen.progress.ok
        assert screen.progress.target == app.status.url + "/v1/events"
        assert "Done: 7 of 7 requests" in screen_text(app)
        await pilot.press("1")
        await until(pilot, lambda: table.total == before + 7, 10, "the replayed events")

        # Cancel: 30 requests at 5 per second, stopped after the first ones.
        many = tmp_path / "many.json"
        many.write_text(json.dumps([RECORDED_EVENT] * 30))
        await pilot.press("9")
        await _start(pilot, screen, str(many), pacing="rate", rate="5", ids="fresh")
        await until(pilot, lambda: screen.progress is not None and screen.progress.done >= 2)
        await pilot.press("escape")
        await until(pilot, lambda: finished(screen), 10, "the cancel")
        assert screen.progress.cancelled and screen.progress.done < 30
        assert not screen.running and "Cancelled:" in screen_text(app)

        # A URL where nothing listens: transport failures, shown as such.
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        await _start(
            pilot,
            screen,
            str(replay_fixture()),
            target="url",
            url=f"http://127.0.0.1:{port}/v1/events",
        )
        await until(pilot, lambda: finished(screen), 20, "the failures")
        assert screen.progress.by_status == {"transport error": 7}
        assert not screen.progress.ok
        assert "last failure" in screen_text(app)


async def test_replay_screen_explains_what_it_cannot_do(settings):  # noqa: F811
    """Read-only (nothing listens): "this sandbox" is refused with a reason; a file that is
    no fixture is previewed as such."""
    async with running(settings, listen=False) as (app, pilot):
        await pilot.press("9")
        screen = app.screen
        screen.query_one("#replay-file", Input).value = str(settings.db)
        preview = screen.query_one("#replay-preview")
        await until(
            pilot,
            lambda: (
                "not a fixture" in str(preview.render())
                or "no line is JSON" in str(preview.render())
            ),
            5,
            "the preview",
        )
        screen.query_one("#replay-file", Input).value = str(replay_fixture())
        await until(pilot, lambda: "7 requests" in str(preview.render()), 5, "the preview")
        await pilot.press("ctrl+s")
        await pilot.pause(0.2)
        assert not screen.running and screen.progress is None
        status = str(screen.query_one("#replay-status").render())
        assert status.startswith("This sandbox's intake is not running")


async def test_a_bundle_opens_read_only_in_the_app(settings, tmp_path):  # noqa: F811
    """What `mpsandbox open` runs: the app on the extracted bundle's settings."""
    make_bundle(settings.db, tmp_path / "b.tar.gz", query="is:invalid", settings=settings)
    opened = extract(tmp_path / "b.tar.gz", tmp_path / "x")
    async with running(opened.settings(settings), listen=False) as (app, pilot):
        table = app.screen.query_one(EventTable)
        await until(
            pilot,
            lambda: table.total == 3 and app.status.counts["invalid"] == 3,
            10,
            "the bundle's events and counts",
        )
        assert app.status.read_only
        assert str(tmp_path / "x" / "store.db") == str(app.settings.db)
