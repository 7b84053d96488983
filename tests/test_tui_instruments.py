"""The Instruments screen, driven by Pilot on the real app with a real intake: coverage of
a definition by the fixture's events, updated live as events arrive and as the definition
file changes; Enter opens a check's nearest event."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable

from mpsandbox.config import Settings
from mpsandbox.tui.screens.detail import DetailScreen
from mpsandbox.tui.screens.help import HelpScreen
from mpsandbox.tui.screens.instruments import InstrumentsScreen
from tests.test_tui import VALID_EVENT, intake_url, post, running, screen_text, until
from tests.tui_fixture import FIXTURE_INSTRUMENT, SCHEMA_DIRS, build_fixture_db, copy_db, use_utc


@pytest.fixture(scope="module")
def fixture_db(tmp_path_factory) -> Path:
    use_utc()
    path = tmp_path_factory.mktemp("tui-instruments") / "fixture.db"
    build_fixture_db(path)
    return path


@pytest.fixture
def settings(fixture_db: Path, tmp_path: Path) -> Settings:
    folder = tmp_path / "instruments"
    folder.mkdir()
    (folder / "fixture-web-base.yaml").write_text(FIXTURE_INSTRUMENT)
    return Settings(
        host="127.0.0.1",
        port=0,
        db=copy_db(fixture_db, tmp_path / "tui.db"),
        schema_dirs=SCHEMA_DIRS,
        cache_dir=tmp_path / "cache",
        watch_schemas=False,
        instruments=str(folder),
    )


def status_of(table: DataTable, check_id: str) -> str | None:
    for i in range(table.row_count):
        if str(table.get_cell_at((i, 0))).strip() == check_id:
            return str(table.get_cell_at((i, 1))).strip()
    return None


async def test_coverage_updates_live_and_enter_opens_the_nearest_event(settings):
    async with running(settings) as (app, pilot):
        await pilot.press("8")
        screen = app.screen
        assert isinstance(screen, InstrumentsScreen) and app.current_mode == "instruments"
        table = screen.query_one("#instruments-table", DataTable)
        await until(pilot, lambda: table.row_count == 8, what="the checks")
        assert [status_of(table, c) for c in ("init", "submit", "toolbar-click", "save")] == [
            "pass",
            "pass",
            "FAIL",
            "not seen",
        ]
        assert screen.totals() == {
            "instruments": 1,
            "checks": 7,
            "pass": 2,
            "fail": 4,
            "not_seen": 1,
        }
        assert "1 instrument from" in screen_text(app) and "31 events judged" in screen_text(app)

        # a save arrives: the expectation is seen and passes, without touching a key
        assert await post(intake_url(app), {**VALID_EVENT, "action": "save"}) == 201
        await until(pilot, lambda: status_of(table, "save") == "pass", what="save to pass")
        assert screen.totals()["not_seen"] == 0

        # the toolbar click fails; its nearest event opens with Enter
        row = next(
            i for i in range(table.row_count) if "toolbar-click" in str(table.get_cell_at((i, 0)))
        )
        table.move_cursor(row=row)
        await pilot.pause()
        detail = str(screen.query_one("#instrument-detail").render())
        assert "nearest is event 10: action_source is missing, expected 'toolbar'" in detail
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen), what="the detail")
        assert app.screen.event_id == 10
        await pilot.press("escape")
        assert app.screen is screen

        # the definition file changes: read again within the poll interval
        path = Path(settings.instruments) / "fixture-web-base.yaml"
        path.write_text(FIXTURE_INSTRUMENT.replace("save", "hover"))
        await until(
            pilot,
            lambda: status_of(table, "save") is None and status_of(table, "hover") == "pass",
            timeout=8,
            what="the edited definition",
        )
        # a broken edit is reported, not a crash
        path.write_text(FIXTURE_INSTRUMENT + "    count: {per: week, min: 1}\n")
        await until(
            pilot,
            lambda: "per: must be one of" in screen_text(app),
            timeout=8,
            what="the definition problem",
        )
        assert table.row_count == 0


async def test_instruments_in_palette_and_help(settings):
    async with running(settings, listen=False) as (app, pilot):
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert "Instruments" in titles
        await pilot.press("8")
        assert isinstance(app.screen, InstrumentsScreen)
        assert "Reload instruments" in {c.title for c in app.get_system_commands(app.screen)}
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert "Instruments, here: Coverage of the instrument definitions" in screen_text(app)
