"""Every screen at 200x50, 100x30 and 80x24: snapshots, and the layout rules checked in code.

The snapshots are run on the fixed fixture database (read-only, UTC). After an intended
change, update the stored SVGs with
``.venv/bin/python -m pytest tests/test_tui_snapshots.py --snapshot-update``, look at the
report; the README's pictures are recorded separately, live, by ``scripts/screenshots``.

A snapshot can be updated without looking, so the rules it should show are also asserted
directly, at the same sizes: no table is wider than its place on the screen, the key bar
always shows ``? Help`` and ``q Quit``, and at 200 columns the columns that say what an
event or a result is keep values of up to 32 characters whole (checked on the demo's
simulated traffic, whose names are long), and tell apart values that differ.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input

from mpsandbox.tui.app import MpSandboxApp
from mpsandbox.tui.widgets.event_table import GAP, EventTable, cell_value, render_cell
from mpsandbox.tui.widgets.fitted_table import FittedTable
from mpsandbox.tui.widgets.key_bar import KeyBar
from tests.tui_fixture import build_fixture_db, use_utc
from tests.tui_scenarios import PLATFORM, SCENARIOS, make_app, settle

SIZES = {"200x50": (200, 50), "100x30": (100, 30), "80x24": (80, 24)}


@pytest.fixture(scope="module")
def fixture_db(tmp_path_factory) -> Path:
    use_utc()
    path = tmp_path_factory.mktemp("snap") / "fixture.db"
    build_fixture_db(path)
    return path


@pytest.fixture(scope="module")
def platform_db(tmp_path_factory) -> Path:
    use_utc()
    path = tmp_path_factory.mktemp("snap-platform") / "fixture.db"
    build_fixture_db(path, platform=True)
    return path


def scenario_app(name: str, fixture_db: Path, platform_db: Path, workdir: Path) -> MpSandboxApp:
    platform = name in PLATFORM
    return make_app(platform_db if platform else fixture_db, workdir, platform=platform)


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_screen(snap_compare, fixture_db, platform_db, tmp_path, name, size):
    app = scenario_app(name, fixture_db, platform_db, tmp_path)
    assert snap_compare(app, terminal_size=SIZES[size], run_before=SCENARIOS[name])


# -- the rules, in code ---------------------------------------------------------------------


def shown_screens(app):
    """The screen on top and, under a dialog, the screens it lets show through."""
    for screen in reversed(app.screen_stack):
        yield screen
        if not screen.is_modal:
            return


def event_table_width(table: EventTable) -> int:
    columns = table.shown_columns()
    return sum(w for _, w in columns) + GAP * max(0, len(columns) - 1)


def assert_fits(app, width: int) -> None:
    """No table wider than its place (nor than the screen); ? and q in the key bar."""
    for screen in shown_screens(app):
        for table in screen.query(FittedTable):
            if not table.display or not table.size.width:
                continue
            room = table.scrollable_content_region.width
            assert table.virtual_size.width <= room <= width, (table.id, table.widths)
            assert not table.show_horizontal_scrollbar, table.id
        for table in screen.query(EventTable):
            if not table.display or not table.size.width:
                continue
            room = table.scrollable_content_region.width
            assert event_table_width(table) <= room <= width, table.shown_columns()
    bars = [bar for screen in shown_screens(app) for bar in screen.query(KeyBar)]
    assert bars, "a key bar"
    for bar in bars:
        text = bar.render().plain
        assert bar.render().cell_len <= width
        if isinstance(
            bar.screen.focused, Input
        ):  # ? and q type into the field: the bar names the keys that still work
            assert "f1 Help" in text and "^q Quit" in text, text
        else:
            assert "? Help" in text and "q Quit" in text, text


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_every_screen_fits(fixture_db, platform_db, tmp_path, name, size):
    width, height = SIZES[size]
    app = scenario_app(name, fixture_db, platform_db, tmp_path)
    async with app.run_test(size=(width, height)) as pilot:
        await SCENARIOS[name](pilot)
        assert_fits(app, width)


# -- named columns, on the demo's traffic ---------------------------------------------------

#: Per screen (its key): the table and the columns that must keep values of up to 32
#: characters whole at 200 columns.
NAMED = {
    "1": ("#live-events", ("stream", "action", "schema")),
    "0": ("#metrics-table", ("row",)),
    "8": ("#instruments-table", ("what", "detail")),
    "5": ("#sessions-table", ("streams",)),
}
WHOLE = 32


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    """The demo's simulated traffic (with its labelled mistakes), through the real pipeline."""
    from tests.test_simulate import INSTRUMENTS, run_local

    tmp = tmp_path_factory.mktemp("demo")
    result, db = run_local(tmp, "demo", bugs=True)
    return result, db, INSTRUMENTS


def demo_app(demo_db, tmp_path) -> MpSandboxApp:
    from tests.test_simulate import local_settings
    from tests.tui_fixture import copy_db

    _result, db, instruments = demo_db
    settings = local_settings(tmp_path, "demo").with_(
        db=copy_db(db, tmp_path / "demo.db"), instruments=str(instruments)
    )
    return MpSandboxApp(settings, listen=False)


def named_cells(app, key: str) -> list[tuple[str, str, str]]:
    """(column, whole value, value shown) of the named columns on screen ``key``."""
    selector, columns = NAMED[key]
    out = []
    if key == "1":
        table = app.screen.query_one(EventTable)
        placed = dict((col.key, (col, w)) for col, w in table.shown_columns())
        for i in range(table.total):
            row = table.row_at(i)
            if row is None:
                continue
            for name in columns:
                assert name in placed, f"column {name} dropped"
                col, w = placed[name]
                shown = render_cell(row, col, w).plain.rstrip()
                out.append((name, cell_value(row, name).plain, shown))
        return out
    table = app.screen.query_one(selector, FittedTable)
    for i in range(table.row_count):
        for name in columns:
            whole = str(table.get_row_at(i)[table.get_column_index(name)])
            out.append((name, whole, table.shown_text(i, name)))
    return out


async def visit(pilot, key: str) -> None:
    app = pilot.app
    await pilot.press(key)
    selector = NAMED[key][0]
    if key == "1":
        await settle(pilot, lambda: app.screen.query_one(EventTable).row_at(0) is not None)
    else:
        await settle(pilot, lambda: app.screen.query_one(selector, FittedTable).row_count > 0)


async def test_named_columns_keep_values_whole_at_200_columns(demo_db, tmp_path):
    """Live's stream, action and schema, Metrics' groups, Instruments' expects and reason,
    Sessions' streams: values up to 32 characters are shown whole at 200 columns; values
    that differ never look the same (``sticky-header-edit-button / c…`` for both groups)."""
    app = demo_app(demo_db, tmp_path)
    async with app.run_test(size=SIZES["200x50"]) as pilot:
        seen = set()
        for key in NAMED:
            await visit(pilot, key)
            assert_fits(app, 200)
            cells = named_cells(app, key)
            assert cells, key
            shown_as: dict[tuple[str, str], str] = {}
            for name, whole, shown in cells:
                if len(whole) <= WHOLE:
                    assert shown == whole, (key, name, whole, shown)
                other = shown_as.setdefault((name, shown), whole)
                assert other == whole, (key, name, other, whole, shown)
                seen.add((key, name, len(whole) > 14))
        # The demo has long values where the issue found them cut.
        assert ("1", "action", True) in seen and ("0", "row", True) in seen


async def test_narrow_screens_keep_values_apart(demo_db, tmp_path):
    """At 80 columns the Live list keeps the id and tells web/base from app/base."""
    app = demo_app(demo_db, tmp_path)
    async with app.run_test(size=SIZES["80x24"]) as pilot:
        await visit(pilot, "1")
        assert_fits(app, 80)
        table = app.screen.query_one(EventTable)
        assert "id" in [col.key for col, _ in table.shown_columns()]
        shown_as: dict[str, str] = {}
        for _name, whole, shown in named_cells(app, "1"):
            assert shown_as.setdefault(shown, whole) == whole, (whole, shown)


async def test_the_demo_marks_its_injected_mistakes(demo_db, tmp_path):
    """The Errors screen's group of the injected invalid field and the Instruments checks
    failed by injected events say that the demo made them on purpose."""
    app = demo_app(demo_db, tmp_path)
    async with app.run_test(size=SIZES["200x50"]) as pilot:
        await pilot.press("2")
        groups = app.screen.query_one("#error-groups", FittedTable)
        await settle(pilot, lambda: groups.row_count > 0)
        messages = [str(groups.get_row_at(i)[4]) for i in range(groups.row_count)]
        marked = [m for m in messages if "injected demo bug invalid_field" in m]
        assert len(marked) == 1, messages
        await visit(pilot, "8")
        table = app.screen.query_one("#instruments-table", FittedTable)
        reasons = [str(table.get_row_at(i)[5]) for i in range(table.row_count)]
        assert any("injected demo bug" in r for r in reasons), reasons
        # Only the injected ones: a reason marked names a bug of the manifest.
        result, _db, _ = demo_db
        bugs = {b["bug"] for b in result.manifest}
        for reason in reasons:
            if "injected demo bug" in reason:
                assert reason.split("injected demo bug ")[1].split(":")[0] in bugs


async def test_the_chaos_dialog_wraps_each_meaning_in_its_column(fixture_db, platform_db, tmp_path):
    """At 80 columns a meaning too long for the dialog goes on below itself, not under the
    terms: every line of the grammar starts with a term or with the meaning column's
    indent."""
    from textual.geometry import Region
    from textual.widgets import Static

    from mpsandbox.chaos import SPEC_HELP

    app = scenario_app("chaos-dialog", fixture_db, platform_db, tmp_path)
    async with app.run_test(size=SIZES["80x24"]) as pilot:
        await SCENARIOS["chaos-dialog"](pilot)
        guide = app.screen.query_one("#prompt-help", Static)
        strips = guide.render_lines(Region(0, 0, guide.size.width, guide.size.height))
        lines = [strip.text.rstrip() for strip in strips]
        indent = max(len(term) for term, _ in SPEC_HELP) + 2
        grammar = lines[: lines.index(next(line for line in lines if line.startswith("e.g.")))]
        assert len(grammar) > len(SPEC_HELP), "some meanings wrap at this width"
        for line in grammar:
            starts_with_term = any(line.startswith(term) for term, _ in SPEC_HELP)
            assert starts_with_term or line[:indent].strip() == "", line
