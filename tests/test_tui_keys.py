"""Keys and focus, driven by Pilot on the real app: the screen registry is the only list of
screens (modes, keys, palette and help come from it), one key means one thing on every
screen, a keymap moves keys by their ids, and Esc always leads out of a text field."""

from __future__ import annotations

import re
import socket
from pathlib import Path

from textual.binding import Binding
from textual.widgets import Input

from mpsandbox.tui.app import MpSandboxApp
from mpsandbox.tui.keymap import load_keymap
from mpsandbox.tui.screens import registry
from mpsandbox.tui.screens.experiments import ExperimentsScreen
from mpsandbox.tui.screens.help import HelpScreen
from mpsandbox.tui.screens.keys import KeyedScreen
from mpsandbox.tui.widgets.event_table import EventTable
from tests import test_tui
from tests.test_tui import running, until

#: The Live tests' fixtures: a private copy of the fixture database per test.
fixture_db, settings = test_tui.fixture_db, test_tui.settings

TUI = Path(__file__).resolve().parent.parent / "src" / "mpsandbox" / "tui"


def test_the_registry_makes_the_modes_and_the_screen_keys():
    assert {e.mode: e.screen for e in registry.SCREENS} == MpSandboxApp.MODES
    switches = [b for b in MpSandboxApp.BINDINGS if "switch_mode" in b.action]
    assert [(b.key, b.action, b.id) for b in switches] == [
        (e.key, f"switch_mode('{e.mode}')", f"screen.{e.mode}") for e in registry.SCREENS
    ]
    assert len({e.key for e in registry.SCREENS}) == len(registry.SCREENS)
    # No second list by hand: the registry is the only module that names a mode switch.
    naming = [p.name for p in TUI.rglob("*.py") if "switch_mode" in p.read_text()]
    assert naming == ["registry.py"]


async def test_palette_and_help_list_every_screen_and_key_of_the_registry(settings):
    async with running(settings, listen=False) as (app, pilot):
        commands = {c.title: c.help for c in app.get_system_commands(app.screen)}
        for entry in registry.SCREENS:
            assert commands[entry.title] == f"{entry.about} ({entry.key})"
        for command in registry.COMMANDS:
            assert command.title is None or command.title in commands

        await pilot.press("question_mark")
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        (screens, everywhere), here, others = help_screen.key_sections()
        assert screens == ("Screens", [(e.key, e.name) for e in registry.SCREENS])
        assert here[0][0].startswith("Live events, here")
        assert len(others) == len(registry.SCREENS) - 1
        listed = {meaning for _title, rows in (*here, *others) for _key, meaning in rows}
        for entry, binding in registry.all_screen_bindings():
            if binding.id:
                assert registry.describe(binding) in listed, (entry.mode, binding)
        everywhere_keys = {key for key, _ in everywhere[1]}
        assert {"?", "q", "esc", "g", "G"} <= {k.split()[0] for k in everywhere_keys}


def _meaning(binding: Binding) -> str:
    """What a key does, by its id without the screen's name (``streams.override`` and
    ``experiments.override`` mean the same: override the selected row)."""
    return (binding.id or binding.action).split(".")[-1]


def test_one_meaning_per_key_on_every_screen():
    meanings: dict[str, set[str]] = {}
    bindings = [*registry.shared_keys(), *(b for _e, b in registry.all_screen_bindings())]
    for binding in bindings:
        if not binding.id:
            continue  # a plain move of Textual's (arrows, pages)
        for key in binding.key.split(","):
            meanings.setdefault(key.strip(), set()).add(_meaning(binding))
    clashes = {key: m for key, m in meanings.items() if len(m) > 1}
    assert clashes == {}
    assert meanings["g"] == {"top"} and meanings["G"] == {"bottom"}
    assert meanings["f"] == {"follow"} and meanings["r"] == {"revalidate"}
    assert meanings["w"] == {"working_copy"} and meanings["slash"] == {"focus_field"}


def test_every_key_of_ours_has_an_id_a_keymap_can_name():
    for cls in (KeyedScreen, *(e.screen for e in registry.SCREENS)):
        for binding in registry.own_bindings(cls):
            assert binding.id, (cls.__name__, binding.key)
    for command in registry.COMMANDS:
        assert command.key is None or command.binding().id == f"app.{command.action}"


async def test_g_and_G_are_top_and_bottom_on_a_screen_table(settings):
    async with running(settings, listen=False) as (app, pilot):
        await pilot.press("2")
        table = app.screen.query_one("#error-groups")
        await until(pilot, lambda: table.row_count > 1, what="the error groups")
        table.focus()
        await pilot.press("G")
        assert table.cursor_row == table.row_count - 1
        await pilot.press("g")
        assert table.cursor_row == 0


async def test_escape_leaves_every_text_field_and_the_screen_keys_work_again(settings):
    async with running(settings, listen=False) as (app, pilot):
        for entry in registry.SCREENS:
            await pilot.press(entry.key)
            await until(pilot, lambda e=entry: app.current_mode == e.mode, what=entry.mode)
            screen = app.screen
            fields = [f for f in screen.query(Input) if f.display and f.parent.display]
            for field in fields:
                field.focus()
                await pilot.pause()
                await pilot.press("escape")
                await pilot.pause()
                assert not isinstance(app.focused, Input), (entry.mode, field.id)
                assert app.focused is screen.home, (entry.mode, app.focused)


async def test_on_replay_escape_leaves_the_file_field_and_1_goes_to_live(settings):
    async with running(settings, listen=False) as (app, pilot):
        await pilot.press("9")
        await pilot.press("slash", "x", "1")  # in the field, 1 is typed
        field = app.screen.query_one("#replay-file", Input)
        assert field.value == "x1" and app.current_mode == "replay"
        await pilot.press("escape")
        start = app.screen.query_one("#replay-start")
        assert app.focused is start
        app.screen.query_one("#replay-pacing").focus()  # a choice, not a text field
        await pilot.press("escape")
        assert app.focused is start
        await pilot.press("1")
        assert app.current_mode == "live"


async def test_streams_slash_focuses_the_whatif_and_escape_returns_to_the_table(settings):
    async with running(settings, listen=False) as (app, pilot):
        await pilot.press("4")
        await pilot.press("slash")
        assert app.focused is app.screen.query_one("#whatif-rate", Input)
        await pilot.press("escape")
        assert app.focused is app.screen.query_one("#streams-table")


async def test_the_port_field_takes_the_focus_with_the_banner_and_gives_it_back(settings):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        async with running(settings.with_(port=port)) as (app, pilot):
            field = app.screen.query_one("#port-input", Input)
            await until(pilot, lambda: app.focused is field, what="the port field's focus")
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                free = s.getsockname()[1]
            await pilot.press(*["backspace"] * 6, *str(free))  # digits type, not switch
            assert field.value == str(free) and app.current_mode == "live"
            await pilot.press("enter")
            await until(pilot, lambda: app.status.listening, what="listening elsewhere")
            await until(
                pilot, lambda: isinstance(app.focused, EventTable), what="the table's focus"
            )


async def test_a_keymap_moves_keys_by_id_and_the_palette_and_help_follow(settings, tmp_path):
    path = tmp_path / "keymap.toml"
    path.write_text('"screen.metrics" = "m"\n"table.top" = "t"\n"no.such" = "x"\n')
    keymap, problems = load_keymap(path, registry.binding_ids())
    assert keymap == {"screen.metrics": "m", "table.top": "t"}
    assert problems == [f"{path}: no binding has the id 'no.such'"]
    bad = tmp_path / "bad.toml"
    bad.write_text("screen.live = \n")
    assert load_keymap(bad, registry.binding_ids())[0] == {}

    keymap["experiments.override"] = "n"
    app = MpSandboxApp(settings, listen=False, keymap=keymap)
    async with app.run_test(size=(150, 45)) as pilot:
        await pilot.pause(0.2)
        await pilot.press("m")
        assert app.current_mode == "metrics"
        commands = {c.title: c.help for c in app.get_system_commands(app.screen)}
        assert commands["Metrics"].endswith("(m)")
        await pilot.press("6")
        commands = {c.title: c.help for c in app.get_system_commands(app.screen)}
        assert commands["Force the experiment's next group"].endswith("group (n)")
        await pilot.press("question_mark")
        (screens, everywhere), here, _others = app.screen.key_sections()
        assert ("m", "Metrics") in screens[1]
        assert any(re.fullmatch("t", key) for key, _ in everywhere[1])
        assert ("n", registry.describe(ExperimentsScreen.BINDINGS[1])) in here[0][1]


def test_a_flood_of_store_changes_collapses_and_keeps_a_reset():
    from mpsandbox.tui.messages import EventsWaiting, OverridesChanged, StoreChanged

    older, newer = StoreChanged(reset=True), StoreChanged(reset=False)
    assert older.can_replace(newer) and newer.reset  # the newer one stands for both
    assert EventsWaiting().can_replace(EventsWaiting())
    assert not StoreChanged().can_replace(OverridesChanged("x"))
    # Posted by the app to screens: none may bubble back to the app.
    assert not StoreChanged.bubble and not OverridesChanged.bubble


def test_the_keymap_document_lists_every_id_with_its_default_keys():
    doc = (Path(__file__).resolve().parent.parent / "docs" / "keymap.md").read_text()
    listed = dict(re.findall(r"^\| `([^`]+)` \| `([^`]+)` \|", doc, flags=re.M))
    assert set(listed) == registry.binding_ids()
    for entry in registry.SCREENS:
        assert listed[entry.binding_id] == entry.key
    for _entry, binding in registry.all_screen_bindings():
        if binding.id and binding.id not in {"back"}:
            assert listed[binding.id] == binding.key, binding.id
