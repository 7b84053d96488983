"""The Metrics screen, driven by Pilot: the real app, a real intake on loopback, the fixture
database built through the real pipeline, and metric definitions from a folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable

from mpsandbox.config import Settings
from mpsandbox.tui.screens.metrics import MetricsScreen, interval_bar
from mpsandbox.tui.screens.registry import SCREENS
from tests.test_tui import intake_url, post, running, screen_text, until
from tests.tui_fixture import SCHEMA_DIRS, build_fixture_db, copy_db, use_utc

#: Over the fixture: session a1b2… started (init) but never clicked; 0f1e…, ffff… and
#: abcd… (the click with markup in its action_context) clicked without an init (outside);
#: one invalid click is left out. So 0 of 1 until the test's session arrives with both.
DEFINITIONS = """\
name: live_ctr
description: Sessions with a click, of those that started
unit: session
where: stream:product_metrics.web_base
denominator: action:init
numerator: action:click
"""


@pytest.fixture(scope="module")
def fixture_db(tmp_path_factory) -> Path:
    use_utc()
    path = tmp_path_factory.mktemp("tui-metrics") / "fixture.db"
    build_fixture_db(path)
    return path


@pytest.fixture
def settings(fixture_db: Path, tmp_path: Path) -> Settings:
    folder = tmp_path / "defs"
    folder.mkdir()
    (folder / "live.yaml").write_text(DEFINITIONS)
    (folder / "broken.yaml").write_text("name: broken\nunit: visits\nnumerator: a\n")
    return Settings(
        host="127.0.0.1",
        port=0,
        db=copy_db(fixture_db, tmp_path / "tui.db"),
        schema_dirs=SCHEMA_DIRS,
        cache_dir=tmp_path / "cache",
        watch_schemas=False,
        metrics_dirs=(folder,),
    )


def row_of(table: DataTable, metric: str) -> list[str]:
    for i in range(table.row_count):
        cells = [str(c) for c in table.get_row_at(i)]
        if cells[0] == metric:
            return cells
    return []


def event(action: str, session: str) -> dict:
    return {
        "$schema": "/analytics/product_metrics/web/base/1.3.0",
        "meta": {"stream": "product_metrics.web_base", "domain": "en.wikipedia.org"},
        "dt": "2024-10-01T12:00:00.000Z",
        "action": action,
        "agent": {"client_platform": "mediawiki_js", "client_platform_family": "desktop_browser"},
        "performer": {"is_logged_in": False, "session_id": session},
    }


async def test_metrics_screen_updates_live_and_cycles_grouping(settings):
    async with running(settings) as (app, pilot):
        await pilot.press("0")
        assert app.current_mode == "metrics" and isinstance(app.screen, MetricsScreen)
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Metrics", "Metrics: change the grouping", "Metrics: compute again"} <= titles
        table = app.screen.query_one("#metrics-table", DataTable)
        await until(pilot, lambda: row_of(table, "live_ctr"), what="the metric's row")
        _, group, num, den, rate, interval, _, note = row_of(table, "live_ctr")
        assert (group, num, den, rate, interval) == ("(all)", "0", "1", "0.0%", "[0.0%, 79.3%]")
        assert note == "3 outside, 1 not valid"
        # The checkout's examples are there too, and the broken file is named with its field.
        assert row_of(table, "funnel_conversion") and row_of(table, "click_through_rate")
        text = screen_text(app)
        assert "broken.yaml: broken: unit: required, one of event" in text

        session = "0123456789abcdefghij"
        assert await post(intake_url(app), [event("init", session), event("click", session)]) == 201
        # 1 of 2 sessions: .5 [.0945, .9055]
        await until(
            pilot,
            lambda: row_of(table, "live_ctr")[2:6] == ["1", "2", "50.0%", "[9.5%, 90.5%]"],
            what="the new session counted",
        )

        await pilot.press("b")  # grouping: none
        await pilot.press("b")  # grouping: experiment.assigned
        await until(
            pilot,
            lambda: (
                "grouped: experiment.assigned" in screen_text(app)
                and any(str(table.get_row_at(i)[1]) == "(none)" for i in range(table.row_count))
            ),
            what="rows per experiment group",
        )


def test_interval_bar_marks_the_interval_and_the_rate():
    from mpsandbox.metrics import ratio

    bar = interval_bar(ratio(1, 2), width=11)
    # [.0945, .9055] on 0-100% over 11 cells: cells 1-9 thick, the rate (cell 5) a dot
    assert bar.plain == "─━━━━●━━━━─"
    assert interval_bar(ratio(0, 0), width=5).plain == "·····"


def test_help_lists_the_metrics_screen():
    assert ("0", "metrics", MetricsScreen) in {(e.key, e.mode, e.screen) for e in SCREENS}
