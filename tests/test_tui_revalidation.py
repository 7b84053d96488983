"""The TUI side of re-validation: a schema edited on disk, the notification, the Flips screen
and the flip history in the event's detail. Real app, real intake child, real files."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from textual.message import Message
from textual.widgets import DataTable

from mpsandbox.config import Settings
from mpsandbox.tui.app import MpSandboxApp
from mpsandbox.tui.messages import Revalidated
from mpsandbox.tui.screens.detail import DetailScreen
from mpsandbox.tui.screens.flips import FlipsScreen
from tests.conftest import PRIMARY, SECONDARY
from tests.test_revalidation import EVENT, narrow_action
from tests.test_tui import SIZE, intake_url, post, screen_text, until


def reports(messages: list[Message]) -> list[dict]:
    """Each run's report once: the app hears it from the intake and tells each screen."""
    return list({id(m.report): m.report for m in messages if isinstance(m, Revalidated)}.values())


async def test_a_schema_edit_shows_its_flips_and_the_event_keeps_its_verdict(tmp_path: Path):
    secondary, primary = tmp_path / "secondary", tmp_path / "primary"
    shutil.copytree(SECONDARY, secondary, symlinks=True)
    shutil.copytree(PRIMARY, primary, symlinks=True)
    settings = Settings(
        host="127.0.0.1",
        port=0,
        db=tmp_path / "tui.db",
        schema_dirs=(secondary, primary),
        cache_dir=tmp_path / "cache",
        watch_schemas=True,
    )
    messages: list[Message] = []
    app = MpSandboxApp(settings)
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        await until(pilot, lambda: app.status.listening, 20, "the intake")
        assert await post(intake_url(app), [EVENT, {**EVENT, "action": "go"}]) == 201
        await until(pilot, lambda: app.status.total == 2, what="the events")

        await pilot.press("7")
        screen = app.screen
        assert isinstance(screen, FlipsScreen)
        await until(pilot, lambda: "No re-validation yet" in screen_text(app), what="empty")

        narrow_action(secondary, 3)
        await until(
            pilot,
            lambda: any(isinstance(m, Revalidated) for m in messages),
            20,
            "the re-validation report",
        )
        report = reports(messages)[0]
        assert report["by_change"] == {"valid→invalid": 1}
        flips = screen.query_one("#flips-table", DataTable)
        await until(pilot, lambda: flips.row_count == 1, what="the flip listed")
        await pilot.pause(0.2)
        text = screen_text(app)
        assert re.search(r"valid\s*→\s*invalid", text)
        assert "action should NOT be longer than 3 characters" in text
        assert "schema change" in text and "analytics/product_metrics/web/base" in text

        # r asks the intake to judge again now: nothing new flips (judged from the latest).
        await pilot.press("r")
        await until(
            pilot,
            lambda: len(reports(messages)) == 2,
            20,
            "the second run",
        )
        again = reports(messages)[-1]
        assert again["trigger"] == "asked" and again["flipped"] == 0 and again["checked"] == 2
        runs = screen.query_one("#runs-table", DataTable)
        await until(pilot, lambda: runs.row_count == 2, what="both runs listed")
        await until(pilot, lambda: flips.row_count == 0, what="the new run's (no) flips")

        # The first run's flip, opened from the list.
        runs.focus()
        await pilot.press("down", "enter")
        await until(pilot, lambda: flips.row_count == 1, what="run #1's flip")
        assert flips.has_focus
        await pilot.press("enter")
        await until(
            pilot,
            lambda: isinstance(app.screen, DetailScreen) and app.screen.data is not None,
            what="the flipped event",
        )
        await pilot.pause(0.2)
        text = screen_text(app)
        # The badge is the stored verdict; the flip history says what it is now.
        assert re.search(r"valid\s+event #1\b", text)
        assert re.search(r"Judged again after schema changes: now\s+invalid", text)
        assert "action: should NOT be longer than 3 characters" in text
        assert app.screen.data["verdict"] == "valid"

        # The published file was edited; the working copy (current.yaml) still allows it.
        await pilot.press("w")
        await until(
            pilot, lambda: "Judged by the working copy" in screen_text(app), what="w's answer"
        )
        await until(pilot, lambda: "current.yaml" in screen_text(app), what="the working copy")
        text = screen_text(app)
        assert re.search(r"valid\s+by the working copy;\s+valid\s+as stored \(no change\)", text)
