"""Legacy EventLogging beacons in the terminal app: listed with their own badge, counted in
the status bar, filterable by is:legacy and action, with an explanation in the detail."""

from __future__ import annotations

import aiohttp

from mpsandbox.tui.widgets.event_table import EventTable
from tests.test_legacy_beacons import browser_beacon_query, browser_capsule
from tests.test_tui import fixture_db, running, screen_text, settings, until  # noqa: F401


async def test_a_beacon_is_listed_counted_filtered_and_explained(settings):  # noqa: F811
    async with running(settings) as (app, pilot):
        table = app.screen.query_one(EventTable)
        before = table.total
        assert "legacy" not in screen_text(app)  # no legacy count until a beacon arrives
        url = app.status.url + "/beacon/event?" + browser_beacon_query(browser_capsule("ready"))
        async with aiohttp.ClientSession() as session, session.get(url) as resp:
            assert resp.status == 204
        await until(pilot, lambda: table.total == before + 1, what="the beacon in the table")
        row = table.row_at(0)
        assert (row["verdict"], row["action"]) == ("legacy", "ready")
        await until(pilot, lambda: app.status.counts["legacy"] == 1, what="the legacy count")
        await until(pilot, lambda: "◇ 1 legacy" in screen_text(app), what="the status bar")

        await pilot.press("slash", *"is:legacy action:ready", "enter")
        await until(pilot, lambda: table.total == 1, what="the filtered table")
        await pilot.press("enter")
        await until(
            pilot, lambda: "not validated" in screen_text(app), what="the detail's explanation"
        )
        assert "Schema:EditAttemptStep" in screen_text(app)


async def test_the_streams_screen_counts_a_streams_legacy_beacons(settings):  # noqa: F811
    from textual.widgets import DataTable

    from mpsandbox.tui.screens.streams import StreamsScreen

    async with running(settings) as (app, pilot):
        url = app.status.url + "/beacon/event?" + browser_beacon_query(browser_capsule("init"))
        async with aiohttp.ClientSession() as session, session.post(url) as resp:
            assert resp.status == 204
        await until(pilot, lambda: app.status.counts["legacy"] == 1, what="the legacy count")
        await pilot.press("4")
        assert isinstance(app.screen, StreamsScreen)
        table = app.screen.query_one("#streams-table", DataTable)
        key = "eventlogging_EditAttemptStep"
        await until(pilot, lambda: key in [k.value for k in table.rows], what="the stream row")
        row = [k.value for k in table.rows].index(key)
        valid = str(table.get_cell_at((row, table.get_column_index("valid"))))
        assert valid == "0 +1 legacy"
