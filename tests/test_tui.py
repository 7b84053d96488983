"""The terminal app, driven by Pilot: the real app, a real intake on a free loopback port,
a real SQLite store built through the real pipeline from real schemas."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from textual.message import Message

from mpsandbox import jsonio
from mpsandbox.query import QUERY_HELP
from mpsandbox.tui.app import MpSandboxApp
from mpsandbox.tui.screens.detail import DetailScreen
from mpsandbox.tui.screens.errors import ErrorsScreen
from mpsandbox.tui.screens.help import HelpScreen
from mpsandbox.tui.screens.live import LiveScreen
from mpsandbox.tui.screens.schemas import SchemasScreen
from mpsandbox.tui.widgets.event_table import EventTable
from mpsandbox.tui.widgets.filter_bar import FilterBar
from tests.tui_fixture import NASTY, build_fixture_db, copy_db, use_utc
from tests.tui_scenarios import shown_detail

SIZE = (150, 45)
VALID_EVENT = {
    "$schema": "/analytics/product_metrics/web/base/1.3.0",
    "meta": {"stream": "product_metrics.web_base", "domain": "en.wikipedia.org"},
    "dt": "2024-10-01T11:59:59.123Z",
    "action": "click",
    "agent": {"client_platform": "mediawiki_js", "client_platform_family": "desktop_browser"},
    "performer": {"is_logged_in": False, "session_id": "abcdefghij0123456789"},
}


@pytest.fixture(scope="module")
def fixture_db(tmp_path_factory) -> Path:
    use_utc()
    path = tmp_path_factory.mktemp("tui") / "fixture.db"
    build_fixture_db(path)
    return path


@pytest.fixture
def settings(fixture_db: Path, tmp_path: Path):
    """A private copy of the fixture database, so tests that write do not disturb others."""
    db = copy_db(fixture_db, tmp_path / "tui.db")
    from mpsandbox.config import Settings
    from tests.tui_fixture import SCHEMA_DIRS

    return Settings(
        host="127.0.0.1",
        port=0,
        db=db,
        schema_dirs=SCHEMA_DIRS,
        cache_dir=tmp_path / "cache",
        watch_schemas=False,
    )


async def until(pilot, condition, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


async def post(url: str, body) -> int:
    async with aiohttp.ClientSession() as session:
        headers = {"Content-Type": "application/json"}
        async with session.post(url, data=jsonio.dumps(body), headers=headers) as resp:
            return resp.status


async def select_event(pilot, table, event_id: int, presses: int = 200) -> None:
    """Put the list's cursor on ``event_id`` with the arrow keys, as a user would, looking
    again after every press: rows read in the background may move it between presses."""
    for _ in range(presses):
        if table.selected_id == event_id:
            return
        index = next(
            (i for i in range(table.total) if (table.row_at(i) or {}).get("id") == event_id),
            None,
        )
        await pilot.press("up" if index is not None and index < table.cursor else "down")
        await pilot.pause(0.02)
    raise AssertionError(f"could not put the cursor on event {event_id}")


async def scroll_to_text(pilot, app, wanted: str, timeout: float = 10.0) -> str:
    """The screen's text once it shows ``wanted``, scrolling the open detail down a few
    lines at a time until it does (or it reaches its end and ``timeout`` passes)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        text = screen_text(app)
        if wanted in text:
            return text
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {wanted!r} in the detail")
        detail = shown_detail(app)
        if detail is not None and detail.scroll_y < detail.max_scroll_y:
            detail.scroll_relative(y=4, animate=False)
        await pilot.pause(0.05)


def screen_text(app) -> str:
    """What the terminal shows, as plain text (from the exported SVG)."""
    svg = app.export_screenshot()
    texts = re.findall(r"<text[^>]*>(.*?)</text>", svg, flags=re.S)
    import html

    return html.unescape("".join(texts)).replace("\xa0", " ")


@contextlib.asynccontextmanager
async def running(settings, messages: list[Message] | None = None, listen: bool = True, size=SIZE):
    app = MpSandboxApp(settings, listen=listen, keymap={})  # not the user's keymap file
    hook = messages.append if messages is not None else None
    async with app.run_test(size=size, message_hook=hook) as pilot:
        if listen:
            await until(
                pilot,
                lambda: app.status.listening or app.status.port_problem,
                20,
                "the intake to start",
            )
        table = app.screen.query_one(EventTable)
        await until(pilot, lambda: table.total > 0 or not listen, 10, "the first rows")
        yield app, pilot


def intake_url(app) -> str:
    return app.status.url + "/v1/events"


async def test_live_table_follows_then_pauses_on_move(settings):
    messages: list[Message] = []
    async with running(settings, messages) as (app, pilot):
        table = app.screen.query_one(EventTable)
        assert table.following and table.total == 31
        assert table.row_at(0)["id"] == 31

        assert await post(intake_url(app), {**VALID_EVENT, "action": "followed"}) == 201
        await until(pilot, lambda: table.total == 32, what="the new event in the table")
        assert table.row_at(0)["action"] == "followed" and table.cursor == 0

        await pilot.press("down")
        assert not table.following
        assert any(isinstance(m, EventTable.FollowChanged) and not m.following for m in messages)
        assert await post(intake_url(app), {**VALID_EVENT, "action": "while-paused"}) == 201
        await until(pilot, lambda: table.waiting == 1, what="the paused table to count it")
        assert table.total == 32 and table.row_at(0)["action"] == "followed"
        assert table.cursor == 1
        await until(pilot, lambda: "1 newer" in screen_text(app), what="the paused indicator")

        await pilot.press("f")
        await until(pilot, lambda: table.total == 33, what="following again")
        assert table.following and table.row_at(0)["action"] == "while-paused"
        assert app.status.counts["valid"] == 29


async def test_filter_bar_narrows_and_reports_bad_queries(settings):
    messages: list[Message] = []
    async with running(settings, messages) as (app, pilot):
        table = app.screen.query_one(EventTable)
        await pilot.press("slash")
        for ch in "is:invalid":
            await pilot.press(ch)
        await until(pilot, lambda: table.total == 3, what="the filtered table")
        changed = [m for m in messages if isinstance(m, FilterBar.Changed)]
        assert changed[-1].text == "is:invalid"
        assert {table.row_at(i)["verdict"] for i in range(3)} == {"invalid"}

        await pilot.press(*" -session:short")
        await until(pilot, lambda: table.total == 2, what="the negated term")

        bar = app.screen.query_one(FilterBar)
        bar.input.value += " bogus:x"
        await pilot.pause(0.3)
        assert bar.has_class("-invalid")
        assert "bogus" in screen_text(app)
        assert table.total == 2  # a query that does not parse leaves the table alone


async def test_open_detail_shows_errors_by_field_and_copies_a_working_curl(settings):
    async with running(settings) as (app, pilot):
        table = app.screen.query_one(EventTable)
        await select_event(pilot, table, 6)
        await pilot.press("enter")
        await until(
            pilot,
            lambda: (d := shown_detail(app)) is not None and d.event_id == 6,
            what="event 6's detail",
        )
        # Read once it is drawn (the detail's data arrives before its lines are laid out),
        # scrolling down to the line as a user would if the sections above it fill the screen.
        text = await scroll_to_text(pilot, app, '"action": 42')
        # Each error sits on the line of its field, with expected and actual values.
        action_line = next(line for line in text.splitlines() if '"action": 42' in line)
        assert "should be string" in action_line and "expected type string" in action_line
        assert any(
            "TOO-SHORT" in line and "minLength" not in line and "should" in line
            for line in text.splitlines()
        )
        assert "(absent)" in text or "additional" in text
        shown_detail(app).scroll_end(animate=False)
        await pilot.pause(0.2)
        text = screen_text(app)
        assert "The request" in text and "User-Agent" in text and "POST /v1/events" in text

        await pilot.press("u")
        curl = app.clipboard
        assert curl.startswith("curl ") and intake_url(app) in curl
        before = app.status.total
        out = await asyncio.to_thread(
            subprocess.run, ["sh", "-c", curl], capture_output=True, text=True, timeout=30
        )
        assert '"invalid"' in out.stdout or "invalid" in out.stdout
        await until(pilot, lambda: app.status.total == before + 1, what="the resent event")

        await pilot.press("c")
        assert jsonio.loads(app.clipboard)["action"] == 42

        await pilot.press("escape")
        assert shown_detail(app) is None and table.display and table.has_focus


async def test_detail_opens_in_place_walks_siblings_and_returns_to_the_same_row(settings):
    """Live shows the detail in place of the list: the list keeps its row while events
    arrive, a sibling opened from the detail is one Escape away from the event before it."""
    async with running(settings) as (app, pilot):
        screen = app.screen
        assert isinstance(screen, LiveScreen)
        table = screen.query_one(EventTable)
        await pilot.press("slash", *"request:6", "enter")
        await until(pilot, lambda: table.total == 2, what="the request's two events")
        await pilot.press("escape", "down")
        first = table.selected_id
        await pilot.press("enter")
        await until(pilot, lambda: shown_detail(app), what="the first event")
        detail = shown_detail(app)
        assert app.screen is screen and detail.event_id == first
        assert not table.display or not screen.query_one("#live-events").display
        sibling = next(s["id"] for s in detail.data["siblings"] if s["id"] != first)
        detail.scroll_end(animate=False)
        await pilot.pause(0.1)
        assert f"#{sibling} (item" in screen_text(app)

        # New events while the detail is open: the list hears of them on the way back.
        assert await post(intake_url(app), {**VALID_EVENT, "action": "meanwhile"}) == 201
        await until(pilot, lambda: app.status.total == 32, what="the new event")

        options = detail.query_one("#detail-siblings")
        options.focus()
        await pilot.press("down", "enter")
        await until(
            pilot,
            lambda: shown_detail(app) and shown_detail(app).event_id == sibling,
            what="the sibling",
        )
        assert f"event #{sibling}" in screen_text(app)
        await pilot.press("escape")
        await until(
            pilot,
            lambda: shown_detail(app) and shown_detail(app).event_id == first,
            what="the first event again",
        )
        await pilot.press("escape")
        assert shown_detail(app) is None and table.has_focus
        assert table.selected_id == first and not table.following
        await pilot.press("slash")
        bar = screen.query_one(FilterBar)
        bar.input.value = ""
        await pilot.press("enter", "escape", "f")
        await until(pilot, lambda: table.total == 32, what="the new event in the list")
        assert table.row_at(0)["action"] == "meanwhile"

        # An event gone from the store (a reset elsewhere) still opens, and says so.
        screen.open_detail(10_000)
        await until(pilot, lambda: screen.detail_open, what="the detail of a missing event")
        await until(pilot, lambda: "not in the store" in screen_text(app), what="the note")
        await pilot.press("escape")
        assert not screen.detail_open and table.has_focus


async def test_error_groups_drill_down_to_their_events(settings):
    async with running(settings) as (app, pilot):
        await pilot.press("2")
        screen = app.screen
        assert isinstance(screen, ErrorsScreen)
        from textual.widgets import DataTable

        groups = screen.query_one("#error-groups", DataTable)
        await until(pilot, lambda: groups.row_count >= 6, what="the error groups")
        row = next(i for i in range(groups.row_count) if ".action" in str(groups.get_row_at(i)[2]))
        assert str(groups.get_row_at(row)[3]) == "type"
        groups.focus()
        groups.move_cursor(row=row)
        await pilot.press("enter")
        events = screen.query_one("#group-events").table
        await until(pilot, lambda: events.total == 2, what="the group's events")
        assert {events.row_at(0)["id"], events.row_at(1)["id"]} == {6, 8}
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen), what="detail")


async def test_schemas_screen_lists_sources_and_probes_uris(settings, tmp_path):
    broken = tmp_path / "broken"
    (broken / "mine/thing").mkdir(parents=True)
    (broken / "mine/thing/1.0.0.yaml").write_text("title: mine/thing\nproperties: [unclosed\n")
    settings = settings.with_(schema_dirs=(*settings.schema_dirs, broken))
    async with running(settings) as (app, pilot):
        await pilot.press("3")
        assert isinstance(app.screen, SchemasScreen)
        await until(pilot, lambda: "schemas," in screen_text(app), what="the catalog")
        text = screen_text(app)
        assert "1.0.0.yaml" in text and "mine/thing" in text  # the broken file, named

        await pilot.press("slash")
        await pilot.press(*"/analytics/product_metrics/web/base/1.3.0", "enter")
        await until(pilot, lambda: "resolves" in screen_text(app), what="the probe")
        assert "web/base/1.3.0.yaml" in screen_text(app)

        probe = app.screen.query_one("#probe-input")
        probe.value = "/analytics/product_metrics/web/base/9.9.9"
        await pilot.press("enter")
        await until(pilot, lambda: "does not resolve" in screen_text(app), what="a miss")
        assert "1.3.0" in screen_text(app)  # the versions that do exist


def registries_alive() -> set[int]:
    """The schema registries this process holds (the TUI's process: the intake is a child)."""
    import gc

    from mpsandbox.schemas.registry import SchemaRegistry

    gc.collect()
    return {id(o) for o in gc.get_objects() if isinstance(o, SchemaRegistry)}


async def test_schema_questions_go_to_the_intakes_registry(settings):
    """One registry per running sandbox: the Schemas screen's catalog and probe and the
    working-copy judge are answered by the intake's registry; the TUI builds none."""
    before = registries_alive()
    async with running(settings) as (app, pilot):
        await pilot.press("3")
        await until(pilot, lambda: "schemas," in screen_text(app), what="the catalog")
        uri = "/analytics/product_metrics/web/base/9.9.9"
        await pilot.press("slash", *uri, "enter")
        await until(pilot, lambda: "does not resolve" in screen_text(app), what="the probe")
        assert registries_alive() - before == set()
        stored = await app.read(app.reader.get_event, 1)
        judged = await app.read_slow(app.judge_by_working_copy, stored)
        assert judged["id"] == 1 and judged["stored_verdict"] == stored["verdict"]
        assert not app.schema_questions.builds_its_own
        assert registries_alive() - before == set()

        # the very answer the API gives, from the same registry
        answer = await app.read(app.schema_questions.probe, app.host, uri)
        url = app.status.url + "/sandbox/schemas/resolve?uri=" + uri
        async with aiohttp.ClientSession() as http, http.get(url) as resp:
            assert await resp.json() == answer
        assert not answer["found"] and "1.3.0" in str(answer["available_versions"])


async def test_with_no_intake_the_app_asks_one_registry_of_its_own(settings):
    async with running(settings, listen=False) as (app, pilot):
        await pilot.press("3")
        await pilot.press("slash", *"/analytics/product_metrics/web/base/1.3.0", "enter")
        await until(pilot, lambda: "resolves" in screen_text(app), what="the probe")
        assert app.schema_questions.builds_its_own
        assert "web/base/1.3.0.yaml" in screen_text(app)


async def test_busy_port_shows_a_banner_and_listens_elsewhere(settings):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        async with running(settings.with_(port=port)) as (app, pilot):
            assert not app.status.listening and str(port) in app.status.port_problem
            # The banner is laid out on the next frames, not with the status change.
            await until(pilot, lambda: "already in use" in screen_text(app), what="the banner")
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                free = s.getsockname()[1]
            field = app.screen.query_one("#port-input")
            field.value = str(free)
            field.focus()
            await pilot.press("enter")
            await until(pilot, lambda: app.status.listening, what="listening elsewhere")
            assert app.status.port == free
            assert await post(intake_url(app), VALID_EVENT) == 201


async def test_event_content_is_rendered_literally_and_safely(settings):
    async with running(settings, size=(150, 120)) as (app, pilot):
        nasty = {
            **VALID_EVENT,
            "action": NASTY["markup"][:60],
            "action_source": NASTY["ansi"],
            "action_subtype": NASTY["rtl"],
            "action_context": NASTY["emoji"],
            "funnel_name": NASTY["long"],
        }
        await post(intake_url(app), nasty)
        table = app.screen.query_one(EventTable)
        await until(pilot, lambda: table.total == 32, what="the nasty event")
        # Markup shown as typed in the table (the action column is narrow).
        await until(pilot, lambda: "[bold red]not" in screen_text(app), what="literal markup")
        await pilot.press("enter")
        await until(pilot, lambda: shown_detail(app), what="detail")
        text = screen_text(app)
        assert "[bold red]not bold[/bold red]" in text
        assert "\x1b" not in text and "\\u001b[31mred" in text
        assert "\u202e" not in text and "\\u202eevil" in text
        assert "שלום" in text and "👩" in text
        assert "(5,000 characters)" in text
        assert "x" * 500 not in text


async def test_help_and_command_palette_cover_every_action(settings):
    async with running(settings) as (app, pilot):
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        for syntax, _meaning in QUERY_HELP[:6]:
            assert syntax.split()[0] in text
        await pilot.press("escape")
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {
            "Live events",
            "Errors",
            "Schemas",
            "Help",
            "Reset the store",
            "Listen on another port",
            "Filter events",
            "Follow newest",
        } <= titles
        await pilot.press("ctrl+p")
        await pilot.press(*"Errors")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ErrorsScreen), what="the palette")


async def test_reset_asks_first_then_empties_the_store(settings):
    async with running(settings) as (app, pilot):
        table = app.screen.query_one(EventTable)
        await pilot.press("ctrl+x")
        await pilot.press("n")
        await pilot.pause(0.3)
        assert table.total == 31
        await pilot.press("ctrl+x")
        await pilot.press("y")
        await until(pilot, lambda: table.total == 0 and app.status.total == 0, what="reset")


async def test_read_only_view_opens_without_an_intake(settings):
    async with running(settings, listen=False) as (app, pilot):
        table = app.screen.query_one(EventTable)
        await until(pilot, lambda: table.total == 31, what="rows")
        assert app.host is None and "read-only" in screen_text(app)


def test_bare_command_without_a_terminal_runs_headless(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "mpsandbox", "--port", str(port), "--db", str(tmp_path / "x.db")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert jsonio.loads(line)["ready"] is True
    finally:
        proc.terminate()
        proc.wait(30)
    assert "headless" in proc.stderr.read()


async def test_an_unusable_database_is_reported_not_fatal(settings, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a directory should be")
    app = MpSandboxApp(settings.with_(db=blocker / "x.db"))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.status.store_problem, 20, "the store problem")
        assert not app.status.listening
        await until(pilot, lambda: "store unusable" in screen_text(app), what="the header")
        await pilot.press("2")  # other screens still work without a store
        await pilot.press("3")
        assert app.is_running


async def test_findings_show_in_the_table_the_detail_and_the_filter(settings):
    async with running(settings) as (app, pilot):
        table = app.screen.query_one(EventTable)
        twice = {**VALID_EVENT, "meta": {**VALID_EVENT["meta"], "id": "dup-0001"}}
        assert await post(intake_url(app), twice) == 201
        assert await post(intake_url(app), twice) == 201
        await until(pilot, lambda: table.total == 33, what="both events")
        assert table.row_at(0)["findings_count"] >= 1
        await pilot.press("slash", *"finding:duplicate.meta_id", "enter")
        await until(pilot, lambda: table.total == 1, what="the finding filter")
        await pilot.press("enter")
        await until(pilot, lambda: shown_detail(app), what="detail")
        text = screen_text(app)
        assert "duplicate.meta_id" in text and "dup-0001" in text


async def test_chaos_badge_palette_dialog_and_changes_from_elsewhere(settings):
    from textual.widgets import Input

    from mpsandbox.tui.screens.prompt import PromptScreen

    async with running(settings) as (app, pilot):
        assert app.status.chaos is None and "CHAOS" not in screen_text(app)
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Chaos: set…", "Chaos: off"} <= titles

        await pilot.press("ctrl+p", *"Chaos: set")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen), what="the dialog")
        text = screen_text(app)
        assert "503:SHARE" in text and "503:0.2,latency:200ms,drop:0.05" in text  # grammar
        await pilot.press(*"503:2", "enter")
        await pilot.pause(0.2)
        assert isinstance(app.screen, PromptScreen)  # stays open, saying why
        assert "between 0 and 1" in screen_text(app)
        app.screen.query_one(Input).value = "503:1"
        await pilot.press("enter")
        await until(pilot, lambda: app.status.chaos == "503:1", what="the badge")
        assert not isinstance(app.screen, PromptScreen)
        header = screen_text(app).splitlines()[0]
        assert "CHAOS" in header and "503:1" in header

        # the intake (another process) applies it within a second
        for _ in range(40):
            status = await post(intake_url(app), VALID_EVENT)
            if status == 503:
                break
            await pilot.pause(0.05)
        assert status == 503

        # a change made elsewhere (the API) reaches the header through the intake
        async with aiohttp.ClientSession() as session:
            url = app.status.url + "/sandbox/chaos"
            async with session.put(url, json={"spec": "drop:0.5,seed:1"}) as resp:
                assert resp.status == 200
        await until(pilot, lambda: app.status.chaos == "drop:0.5,seed:1", 5, "the new spec")

        await pilot.press("ctrl+p", *"Chaos: off")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await until(pilot, lambda: app.status.chaos is None, what="the badge to go")
        assert "CHAOS" not in screen_text(app).splitlines()[0]


def test_event_detail_shows_the_chaos_applied_to_its_request():
    from mpsandbox.tui.widgets.event_detail import EventDetail

    request = {
        "method": "POST",
        "path": "/v1/events",
        "query": "",
        "status": 207,
        "reason": "1 out of 2 events were accepted, but 1 failed (0 invalid and 1 errored).",
        "headers": [],
        "chaos": {"spec": "207:1,latency:20ms", "injected": 207, "failed": [1], "latency_ms": 20},
    }
    text = EventDetail()._request({"request": request}).plain
    assert "CHAOS" in text
    assert "items 1 of the request failed by injection and were not stored" in text
    assert "answer delayed 20 ms" in text and "(chaos 207:1,latency:20ms)" in text
    assert "CHAOS" not in EventDetail()._request({"request": {**request, "chaos": None}}).plain


async def test_chaos_stored_before_start_shows_at_once_even_read_only(settings):
    from mpsandbox.chaos import ChaosStore, parse_spec

    store = ChaosStore(settings.db)
    store.set(parse_spec("500:0.1,latency:5ms"), "cli")
    store.close()
    async with running(settings, listen=False) as (app, pilot):
        await until(pilot, lambda: app.status.chaos == "500:0.1,latency:5ms", what="the badge")
        assert "CHAOS" in screen_text(app).splitlines()[0]
        app.action_set_chaos()  # read-only: refused, nothing opens
        await pilot.pause(0.1)
        assert app.status.chaos == "500:0.1,latency:5ms"
        assert type(app.screen).__name__ != "PromptScreen"


async def test_the_key_bar_folds_screen_keys_when_narrow_and_never_cuts_one(settings):
    from mpsandbox.tui.widgets.key_bar import KeyBar

    async with running(settings, listen=False, size=(220, 40)) as (app, pilot):
        line = str(app.screen.query_one(KeyBar).render())
        for key, name in (("1", "Live"), ("8", "Instruments"), ("9", "Replay"), ("0", "Metrics")):
            assert f" {key} {name} " in line, line
        assert "screens" not in line and line.rstrip().endswith("palette")
    async with running(settings, listen=False, size=(110, 40)) as (app, pilot):
        bar = app.screen.query_one(KeyBar)
        line = str(bar.render())
        assert " 1…0 screens " in line and " 2 Errors " not in line, line
        assert " q Quit " in line and line.rstrip().endswith("palette")
        # The folded entry opens the help, which lists every screen.
        await pilot.click(KeyBar, offset=(line.index("1…0") + 1, 0))
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), what="the help")
        assert "Instruments" in screen_text(app) and "Metrics" in screen_text(app)


async def test_header_says_once_that_the_schema_host_cannot_be_reached(settings):
    """Remote schemas on, the host gone: the header says so in one line, the events of a
    schema the local checkouts lack are errors, and the sandbox keeps taking events."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        gone = f"http://127.0.0.1:{s.getsockname()[1]}/repositories/secondary/jsonschema"
    online = settings.with_(offline=False, remote_schemas=(gone,))
    unknown = {**VALID_EVENT, "$schema": "/analytics/product_metrics/web/base/9.9.9"}
    async with running(online) as (app, pilot):
        assert app.status.schemas_unreachable is None
        assert "schemas:" in screen_text(app)
        await post(intake_url(app), unknown)
        await until(pilot, lambda: app.status.schemas_unreachable, what="the unreachable line")
        host = gone.split("/")[2]
        line = f"{host} unreachable: 0 cached schemas, built-ins; --schemas DIR for a local"
        await until(pilot, lambda: line in screen_text(app), what="the header")
        assert await post(intake_url(app), VALID_EVENT) == 201  # local schemas still judge


async def test_header_says_when_the_store_file_is_deleted_and_posts_are_refused(settings):
    async with running(settings) as (app, pilot):
        assert app.status.store_alarm is None and "STORE" not in screen_text(app)
        Path(settings.db).unlink()
        await until(pilot, lambda: app.status.store_alarm is not None, 10, "the STORE badge")
        assert app.status.store_alarm.startswith("deleted:")
        header = screen_text(app).splitlines()[0]
        assert "STORE" in header and "deleted" in header
        assert await post(intake_url(app), VALID_EVENT) == 503
