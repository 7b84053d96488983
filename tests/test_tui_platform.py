"""The platform screens (Streams, Sessions, Experiments and flags), driven by Pilot on the
real app with a real intake, on the platform fixture: stream configs, experiments and a
session with pageviews, a funnel and experiment exposures, judged by the real pipeline."""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path

import aiohttp
import pytest
from textual.message import Message
from textual.widgets import DataTable

from mpsandbox.config import Settings
from mpsandbox.overrides import OverrideError, Overrides
from mpsandbox.store import StoreReader
from mpsandbox.tui.messages import OverridesChanged
from mpsandbox.tui.screens.detail import DetailScreen
from mpsandbox.tui.screens.experiments import ExperimentsScreen
from mpsandbox.tui.screens.prompt import PromptScreen
from mpsandbox.tui.screens.registry import SCREENS
from mpsandbox.tui.screens.sessions import PAGE, SessionsScreen
from mpsandbox.tui.screens.streams import StreamsScreen
from tests.test_tui import running, screen_text, until
from tests.tui_fixture import (
    PLATFORM_SESSION,
    SCHEMA_DIRS,
    WIKI_URL,
    build_fixture_db,
    copy_db,
    platform_settings,
    use_utc,
)

STREAM = "product_metrics.web_base"


@pytest.fixture(scope="module")
def platform_db(tmp_path_factory) -> Path:
    use_utc()
    path = tmp_path_factory.mktemp("tui-platform") / "fixture.db"
    build_fixture_db(path, platform=True)
    return path


@pytest.fixture
def settings(platform_db: Path, tmp_path: Path) -> Settings:
    db = copy_db(platform_db, tmp_path / "tui.db")
    base = Settings(
        host="127.0.0.1",
        port=0,
        db=db,
        schema_dirs=SCHEMA_DIRS,
        cache_dir=tmp_path / "cache",
        watch_schemas=False,
    )
    return platform_settings(base)


def cell(table: DataTable, row: int, column: str) -> str:
    return str(table.get_cell_at((row, table.get_column_index(column))))


def stored(settings: Settings) -> list[tuple[str, str, object, str]]:
    o = Overrides(settings.db)
    try:
        return [(x.kind, x.key, x.value, x.set_by) for x in o.list()]
    finally:
        o.close()


def changes(messages: list[Message]) -> list[str]:
    return [m.what for m in messages if isinstance(m, OverridesChanged)]


async def test_streams_counts_whatif_and_rate_override(settings):
    messages: list[Message] = []
    async with running(settings, messages) as (app, pilot):
        await pilot.press("4")
        screen = app.screen
        assert isinstance(screen, StreamsScreen)
        table = screen.query_one("#streams-table", DataTable)
        await until(pilot, lambda: table.row_count == 3, what="the configured streams")
        assert [str(k.value) for k in table.rows] == [
            STREAM,
            "product_metrics.app_base",
            "/^mpsandbox\\..+/",
        ]
        reader = StoreReader(settings.db)
        assert cell(table, 0, "valid") == "31" and cell(table, 0, "invalid") == "7"
        assert cell(table, 0, "error") == "1"
        assert cell(table, 0, "findings") == str(reader.count_events())  # every event
        # In/out of sample at the configured rate 0.5, by session: 2 of 7 sessions in.
        assert cell(table, 0, "expected") == "2 / 5 of 7"
        config = str(screen.query_one("#stream-config").render())
        assert "provide_values agent_client_platform, performer_session_id" in config
        assert "sample unit session, rate 0.5" in config

        await pilot.press("slash", *"0.25", "enter")
        result = screen.query_one("#whatif-result")
        await until(pilot, lambda: "at rate 0.25" in str(result.render()), what="the what-if")
        text = str(result.render())
        assert "this stream's 7 ids" in text and "web: 2 in / 5 out" in text
        assert "app: 1 in / 6 out" in text

        await pilot.press("escape", "o")
        await until(pilot, lambda: changes(messages), what="the override message")
        assert changes(messages) == [f"{STREAM}: sample rate overridden to 0.25"]
        assert stored(settings) == [("sample_rate", STREAM, 0.25, "tui")]
        await until(pilot, lambda: "0.5→0.25" in cell(table, 0, "rate"), what="the new rate")
        assert cell(table, 0, "expected") == "2 / 5 of 7"
        # The intake (another process) serves the overridden rate within its poll.
        url = app.status.url + f"/v1/stream-configs/{STREAM}"

        async def served_rate() -> float:
            async with aiohttp.ClientSession() as http, http.get(url) as resp:
                return (await resp.json())[STREAM]["sample"]["rate"]

        for _ in range(60):
            if await served_rate() == 0.25:
                break
            await pilot.pause(0.1)
        assert await served_rate() == 0.25

        await pilot.press("x")
        await until(pilot, lambda: len(changes(messages)) == 2, what="the clearing")
        assert stored(settings) == []
        await until(pilot, lambda: "→" not in cell(table, 0, "rate"), what="the rate back")
        reader.close()


async def test_streams_without_stream_config_lists_streams_seen(settings):
    settings = settings.with_(stream_config=None)
    async with running(settings, listen=False) as (app, pilot):
        await pilot.press("4")
        table = app.screen.query_one("#streams-table", DataTable)
        await until(pilot, lambda: table.row_count == 1, what="the streams seen")
        assert str(next(iter(table.rows)).value) == STREAM
        assert "No --stream-config: every stream is allowed" in screen_text(app)
        assert cell(table, 0, "expected") == "—"


async def test_sessions_timeline_funnels_and_detail(settings):
    messages: list[Message] = []
    async with running(settings, messages, listen=False) as (app, pilot):
        await pilot.press("5")
        screen = app.screen
        assert isinstance(screen, SessionsScreen)
        sessions = screen.query_one("#sessions-table", DataTable)
        await until(pilot, lambda: sessions.row_count == 7, what="the sessions")
        assert str(next(iter(sessions.rows)).value) == PLATFORM_SESSION  # latest first
        assert cell(sessions, 0, "pageviews") == "2" and cell(sessions, 0, "events") == "8"

        await pilot.press("enter")
        timeline = screen.query_one("#timeline-table", DataTable)
        await until(pilot, lambda: timeline.row_count == 8, what="the timeline")
        # dt order (the step sent third happened second), gaps between events.
        assert [cell(timeline, i, "dt") for i in range(4)] == [
            "12:00:10.000",
            "12:00:12.000",
            "12:00:14.500",
            "12:00:20.000",
        ]
        assert [cell(timeline, i, "gap") for i in range(5)] == [
            "",
            "+2.0s",
            "+2.5s",
            "+5.5s",
            "+1.2m",
        ]
        assert [cell(timeline, i, "funnel") for i in range(5)] == [
            "#1",
            "#4 ✖gap",
            "#3 ✖disorder",
            "#3 ✖repeat",
            "",
        ]
        assert cell(timeline, 5, "pageview").startswith("pv2 ")
        assert "experiment.repeated_exposure" in cell(timeline, 5, "findings")
        funnels = str(screen.query_one("#session-funnels").render())
        assert "funnel fixture-funnel token entry-token-1: 1 → 4 ✖gap → 3 ✖disorder" in funnels
        assert "Session c0ffee0c0ffee0c0ffee: 8 events in dt order, 2 pageviews" in screen_text(app)

        await pilot.press("down", "enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen), what="the detail")
        assert app.screen.event_id == int(timeline.coordinate_to_cell_key((1, 0)).row_key.value)
        await until(pilot, lambda: app.screen.data is not None, what="the event")
        assert app.screen.data["session_id"] == PLATFORM_SESSION
        await pilot.press("escape")
        assert app.screen is screen


async def test_sessions_page_through_a_hundred_thousand(settings):
    conn = sqlite3.connect(settings.db)
    with conn:
        conn.executemany(
            "INSERT INTO sessions (session_id, platform, first_seen, last_seen, events) "
            "VALUES (?, 'android', ?, ?, 1)",
            ((f"bulk{i:016d}", 1e9 + i, 1e9 + i) for i in range(100_000)),
        )
    conn.close()
    async with running(settings, listen=False) as (app, pilot):
        await pilot.press("5")
        screen = app.screen
        table = screen.query_one("#sessions-table", DataTable)
        await until(pilot, lambda: screen.total == 100_007, what="the count")
        await until(pilot, lambda: table.row_count == PAGE, what="one page")
        assert str(next(iter(table.rows)).value) == PLATFORM_SESSION
        await pilot.press("right_square_bracket")
        await until(pilot, lambda: screen.page == 1 and table.row_count == PAGE, what="page 2")
        await until(
            pilot,
            lambda: str(next(iter(table.rows)).value) == f"bulk{99_999 - (PAGE - 7):016d}",
            what="the second page's rows",
        )
        await pilot.press("end")
        text = screen_text(app)
        assert "100,007 sessions" in text and "page 2 of 1,001" in text


async def test_experiments_enrollment_overrides_by_key_and_mpo(settings):
    messages: list[Message] = []
    async with running(settings, messages) as (app, pilot):
        await pilot.press("6")
        screen = app.screen
        assert isinstance(screen, ExperimentsScreen)
        table = screen.query_one("#experiments-table", DataTable)
        await until(
            pilot,
            lambda: table.row_count == 2 and "treatment" in cell(table, 0, "enrolled"),
            what="the experiments",
        )
        assert cell(table, 0, "name") == "fixture-button-test"
        assert cell(table, 0, "groups") == "control, treatment"
        assert cell(table, 0, "rate") == "0.5" and cell(table, 0, "unit") == "edge-unique"
        assert cell(table, 0, "stream") == STREAM
        assert cell(table, 0, "enrolled") == "control 1 · treatment 2"
        assert cell(table, 1, "enrolled") == "b 1"
        assert "3 events with experiment findings" in screen_text(app)

        await pilot.press("o")  # override the group: the first
        await until(pilot, lambda: changes(messages), what="the group override")
        assert stored(settings) == [("experiment", "fixture-button-test", "control", "tui")]
        await until(pilot, lambda: cell(table, 0, "override") == "forced control", what="cell")
        await pilot.press("o")
        await until(pilot, lambda: len(changes(messages)) == 2, what="the next group")
        assert stored(settings)[0][2] == "treatment"
        mpo_line = screen.query_one("#mpo-line")
        await until(
            pilot,
            lambda: "fixture-button-test:treatment" in str(mpo_line.render()),
            what="the mpo string",
        )
        await pilot.press("m")
        assert app.clipboard == WIKI_URL + "?mpo=fixture-button-test:treatment"

        await pilot.press("s")
        assert isinstance(app.screen, PromptScreen)
        await pilot.press(*'dark-mode={"on": true}', "enter")
        await until(pilot, lambda: len(changes(messages)) == 3, what="the flag")
        assert ("flag", "dark-mode", {"on": True}, "tui") in stored(settings)
        overrides = screen.query_one("#overrides-table", DataTable)
        await until(pilot, lambda: overrides.row_count == 2, what="the overrides table")

        await pilot.press("z")  # undo: the flag goes
        await until(pilot, lambda: len(changes(messages)) == 4, what="the undo")
        assert changes(messages)[3] == "undid the last set (1 changed)"
        assert [k for k, *_ in stored(settings)] == ["experiment"]

        await pilot.press("X")
        await pilot.press("y")
        await until(pilot, lambda: len(changes(messages)) == 5, what="clear all")
        assert changes(messages)[4] == "cleared 1 overrides" and stored(settings) == []
        await until(pilot, lambda: overrides.row_count == 0, what="an empty table")
        await until(pilot, lambda: cell(table, 0, "override") == "—", what="no override")


def write_descriptors(path: Path) -> list[str]:
    """This process's descriptors open for writing on the database file (Linux's /proc):
    a SQLite write connection holds one, a read-only connection (mode=ro) does not."""
    target = os.path.realpath(path)
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") != target:
                continue
            info = Path(f"/proc/self/fdinfo/{fd}").read_text()
        except OSError:
            continue
        flags = int(re.search(r"flags:\s*(\d+)", info).group(1), 8)
        if flags & os.O_ACCMODE != os.O_RDONLY:
            found.append(fd)
    return found


async def test_tui_changes_are_committed_by_the_intake_and_the_tui_never_writes(settings):
    """A flag and a chaos setting made in the TUI are intents the intake commits through
    its single writer: visible to a StoreReader and the API, set by "tui", while the TUI's
    own process holds the database open for reading only."""
    from mpsandbox import chaos as chaos_table
    from mpsandbox import overrides as override_table

    messages: list[Message] = []
    async with running(settings, messages) as (app, pilot):
        await pilot.press("6")
        screen = app.screen
        assert isinstance(screen, ExperimentsScreen)
        await pilot.press("s")
        assert isinstance(app.screen, PromptScreen)
        await pilot.press(*"beta-ui=true", "enter")
        await until(pilot, lambda: changes(messages), what="the flag")
        assert changes(messages) == ["flag beta-ui set to true"]

        app.action_set_chaos()
        await until(pilot, lambda: isinstance(app.screen, PromptScreen), what="the dialog")
        await pilot.press(*"503:0.5,seed:2", "enter")
        await until(pilot, lambda: app.status.chaos == "503:0.5,seed:2", what="the badge")

        reader = StoreReader(settings.db)
        try:
            with reader.snapshot() as conn:
                flags = [
                    (o.key, o.value, o.set_by)
                    for o in override_table.db_list(conn)
                    if o.kind == override_table.FLAG
                ]
                state = chaos_table.db_state(conn)
        finally:
            reader.close()
        assert flags == [("beta-ui", True, "tui")]
        assert (state.spec, state.set_by) == ("503:0.5,seed:2", "tui")

        async with aiohttp.ClientSession() as http:
            async with http.get(app.status.url + "/sandbox/overrides") as resp:
                assert (await resp.json())["flags"] == {"beta-ui": True}
            async with http.get(app.status.url + "/sandbox/chaos") as resp:
                data = await resp.json()
        assert data["spec"] == "503:0.5,seed:2" and data["set_by"] == "tui"

        assert app.local.overrides() is not None and app.local.chaos() is not None  # open
        assert write_descriptors(settings.db) == []


async def test_a_change_the_intake_refuses_is_said_in_the_tui(settings):
    """The intake validates: a rate out of range comes back as its own words."""
    async with running(settings) as (app, _):
        with pytest.raises(OverrideError, match=r"sample rate must be in 0\.\.1"):
            await app.change_overrides("set", "sample_rate", STREAM, 2)
        with pytest.raises(OverrideError, match="no such change"):
            await app.change_overrides("drop_table", "x")


async def test_overrides_are_refused_read_only(settings):
    messages: list[Message] = []
    async with running(settings, messages, listen=False) as (app, pilot):
        await pilot.press("6")
        table = app.screen.query_one("#experiments-table", DataTable)
        await until(pilot, lambda: table.row_count == 2, what="the experiments")
        await pilot.press("o")
        await until(
            pilot,
            lambda: any("read-only" in str(n.message) for n in app._notifications),
            what="the refusal",
        )
        assert changes(messages) == [] and stored(settings) == []


async def test_platform_screens_in_palette_keys_and_help(settings):
    async with running(settings, listen=False) as (app, pilot):
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert {"Streams", "Sessions", "Experiments and flags"} <= set(titles)
        for key, mode, cls, commands in (
            (
                "4",
                "streams",
                StreamsScreen,
                {"Sampling what-if", "Override the stream's sample rate"},
            ),
            ("5", "sessions", SessionsScreen, {"Next page of sessions"}),
            ("6", "experiments", ExperimentsScreen, {"Copy the mpo string", "Clear all overrides"}),
        ):
            await pilot.press(key)
            assert app.current_mode == mode and isinstance(app.screen, cls)
            titles = {c.title for c in app.get_system_commands(app.screen)}
            assert commands <= titles
        keys = {e.mode: e.key for e in SCREENS}
        assert (keys["streams"], keys["sessions"], keys["experiments"]) == ("4", "5", "6")
