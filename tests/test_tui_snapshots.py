"""Snapshot tests of every screen, on the fixed fixture database (read-only, UTC).

Update the stored SVGs after an intended change with
``.venv/bin/python -m pytest tests/test_tui_snapshots.py --snapshot-update`` and look at
the report before committing them.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from mpsandbox.config import Settings
from mpsandbox.tui.app import MpSandboxApp
from mpsandbox.tui.widgets.event_table import EventTable
from tests.tui_fixture import build_fixture_db, copy_db, ensure_schema_copies, use_utc

SIZE = (130, 40)


@pytest.fixture(scope="module")
def fixture_db(tmp_path_factory) -> Path:
    use_utc()
    path = tmp_path_factory.mktemp("snap") / "fixture.db"
    build_fixture_db(path)
    return path


@pytest.fixture
def app(fixture_db: Path, tmp_path: Path) -> MpSandboxApp:
    db = copy_db(fixture_db, tmp_path / "snap.db")
    settings = Settings(
        host="127.0.0.1",
        port=8192,
        db=db,
        schema_dirs=ensure_schema_copies(),
        cache_dir=tmp_path / "cache",
        watch_schemas=False,
    )
    return MpSandboxApp(settings, listen=False)


async def settle(pilot, condition=lambda: True, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the screen did not settle")
        await pilot.pause(0.05)
    await pilot.pause(0.2)
    await pilot.wait_for_scheduled_animations()


def loaded(pilot) -> bool:
    table = pilot.app.screen.query(EventTable)
    return bool(table) and table.first().total > 0 and table.first().row_at(0) is not None


def test_live_screen(snap_compare, app):
    async def before(pilot):
        await settle(pilot, lambda: loaded(pilot))

    assert snap_compare(app, terminal_size=SIZE, run_before=before)


def test_live_screen_filtered_and_paused(snap_compare, app):
    async def before(pilot):
        await settle(pilot, lambda: loaded(pilot))
        await pilot.press("slash", *"is:invalid", "enter")
        await settle(pilot, lambda: pilot.app.screen.query_one(EventTable).total == 3)
        await pilot.press("down")
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=before)


def test_detail_screen_with_errors(snap_compare, app):
    async def before(pilot):
        await settle(pilot, lambda: loaded(pilot))
        await pilot.press("slash", *"request:6", "enter")
        await settle(pilot, lambda: pilot.app.screen.query_one(EventTable).total == 2)
        await pilot.press("end", "enter")
        await settle(pilot, lambda: getattr(pilot.app.screen, "data", None) is not None)

    assert snap_compare(app, terminal_size=SIZE, run_before=before)


def test_errors_screen_with_a_group_open(snap_compare, app):
    async def before(pilot):
        await settle(pilot, lambda: loaded(pilot))
        await pilot.press("2")
        groups = pilot.app.screen.query_one("#error-groups")
        await settle(pilot, lambda: groups.row_count > 0)
        await pilot.press("down", "enter")
        await settle(pilot, lambda: pilot.app.screen.query_one("#group-events").table.total)

    assert snap_compare(app, terminal_size=SIZE, run_before=before)


def test_schemas_screen_with_a_probe(snap_compare, app):
    async def before(pilot):
        await settle(pilot, lambda: loaded(pilot))
        await pilot.press("3")
        await pilot.press("slash", *"/analytics/product_metrics/web/base/9.9.9", "enter")
        await settle(
            pilot,
            lambda: (
                "does not resolve" in str(pilot.app.screen.query_one("#probe-result").render())
                and "schemas," in str(pilot.app.screen.query_one("#sources").render())
            ),
        )

    assert snap_compare(app, terminal_size=SIZE, run_before=before)


def test_help_screen(snap_compare, app):
    async def before(pilot):
        await settle(pilot, lambda: loaded(pilot))
        await pilot.press("question_mark")
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=before)


def test_port_taken_banner(snap_compare, app):
    async def before(pilot):
        await settle(pilot, lambda: loaded(pilot))
        a = pilot.app
        a.status = replace(
            a.status,
            read_only=False,
            port=8192,
            port_problem="port 8192 on 127.0.0.1 is already in use (another mpsandbox, or the "
            "EventGate devserver?). Stop it, or choose another port with --port 8193.",
        )
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=before)
