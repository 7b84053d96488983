"""Validation errors grouped by (schema, field, rule): what breaks most, since when."""

from __future__ import annotations

from dataclasses import replace

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from mpsandbox.simulate.bugs import INJECTED_MARK, injected_bug
from mpsandbox.store import EventFilter, StoreError
from mpsandbox.tui.fit import Col, cut_end, cut_path
from mpsandbox.tui.safe_text import safe
from mpsandbox.tui.screens.base import ReloadingScreen
from mpsandbox.tui.timefmt import short_time
from mpsandbox.tui.widgets.event_list import EventList
from mpsandbox.tui.widgets.event_table import EventTable
from mpsandbox.tui.widgets.fitted_table import FittedTable
from mpsandbox.tui.widgets.key_bar import KeyBar
from mpsandbox.tui.widgets.status_bar import StatusBar
from mpsandbox.wording import plural

#: What goes first when space runs out: the times, then the schema, then the message
#: (the field and the rule name the group; the count says how much it matters).
GROUP_COLUMNS = (
    Col("count", "count", priority=90),
    Col("schema", "schema", priority=60, min=16, cap=40, shorten=cut_path("/")),
    Col("field", "field", priority=85, min=12, cap=32, shorten=cut_path("./")),
    Col("rule", "rule", priority=80, min=8, cap=20),
    Col("message", "message", priority=50, min=16, cap=60, shorten=cut_end),
    Col("first", "first seen", priority=20, short="first"),
    Col("last", "last seen", priority=30, short="last"),
)


def _read_groups(reader) -> tuple[list[dict], dict[int, str]]:
    """The error groups, and which of them hold a mistake the demo's simulator made on
    purpose (group id -> bug): those events say so in their meta.id. The second query
    reads the invalid events only, as the first already does."""
    groups = reader.list_error_groups()
    labelled = EventFilter(verdict="invalid", text=INJECTED_MARK)
    injected: dict[int, str] = {}
    for g in reader.list_error_groups(labelled):
        rows = reader.list_events(replace(labelled, error_group=g["id"]), limit=1)
        bug = injected_bug(rows[0].get("meta_id")) if rows else None
        if bug is not None:
            injected[g["id"]] = bug
    return groups, injected


def _message(group: dict, bug: str | None) -> Text:
    message = safe(group.get("message"), "", 300)
    if bug is None:
        return message
    return Text.assemble((f"⚑ injected demo bug {bug}: ", "bold magenta"), message)


class ErrorsScreen(ReloadingScreen):
    """Error groups above, the selected group's events below."""

    BINDINGS = [
        Binding(
            "tab",
            "focus_next",
            "Switch pane",
            show=False,
            id="errors.switch_pane",
            tooltip="between the error groups and their events",
        ),
        Binding("ctrl+r", "reload", "Reload", id="errors.reload"),
    ]

    def compose(self) -> ComposeResult:
        yield StatusBar()
        yield Static("", id="errors-summary")
        yield FittedTable(GROUP_COLUMNS, id="error-groups")
        yield Static("Select a group to see its events.", id="group-title")
        yield EventList(EventFilter(error_group=-1), follow=False, id="group-events")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#error-groups", DataTable).focus()
        self.action_reload()

    def action_reload(self) -> None:
        self._load_groups()

    @work(exclusive=True, group="error-groups")
    async def _load_groups(self) -> None:
        reader = self.app.reader
        summary = self.query_one("#errors-summary", Static)
        if reader is None:
            summary.update("No store yet.")
            return
        try:
            groups, injected = await self.app.read(_read_groups, reader)
        except StoreError as exc:
            summary.update(Text(str(exc), style="bold red"))
            return
        table = self.query_one("#error-groups", DataTable)
        selected = None
        if table.row_count and table.cursor_row is not None:
            try:
                selected = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
            except Exception:
                selected = None
        table.clear()
        for g in groups:
            schema = f"{g.get('schema_title') or '?'} {g.get('schema_version') or ''}".strip()
            table.add_row(
                Text(f"{g['count']:,}", style="bold", justify="right"),
                safe(schema, "", 200),
                safe(g.get("data_path") or "(root)", "bold", 200),
                safe(g.get("keyword"), "red", 100),
                _message(g, injected.get(g["id"])),
                short_time(g.get("first_seen")),
                short_time(g.get("last_seen")),
                key=str(g["id"]),
            )
        total = sum(g["count"] for g in groups)
        summary.update(
            Text.assemble(
                (f" {plural(len(groups), 'error group')}", "bold"),
                f", {total:,} errors. Enter shows a group's events; Enter again opens one.",
            )
        )
        if selected is not None:
            for i, g in enumerate(groups):
                if str(g["id"]) == selected:
                    table.move_cursor(row=i)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        group_id = int(event.row_key.value)
        events = self.query_one("#group-events", EventList)
        events.table.set_filter(EventFilter(error_group=group_id), follow=True)
        table = self.query_one("#error-groups", FittedTable)
        title = Text.assemble(
            ("Events with ", ""),
            table.value(event.row_key, "rule"),
            (" at ", ""),
            table.value(event.row_key, "field"),
            (" in ", ""),
            table.value(event.row_key, "schema"),
        )
        self.query_one("#group-title", Static).update(title)
        events.table.focus()

    def on_event_table_selected(self, event: EventTable.Selected) -> None:
        from mpsandbox.tui.screens.detail import DetailScreen

        self.app.push_screen(DetailScreen(event.event_id))
