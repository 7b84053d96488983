"""Validation errors grouped by (schema, field, rule): what breaks most, since when."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from mpsandbox.store import EventFilter, StoreError
from mpsandbox.tui.safe_text import safe
from mpsandbox.tui.screens.base import ReloadingScreen
from mpsandbox.tui.timefmt import short_time
from mpsandbox.tui.widgets.event_list import EventList
from mpsandbox.tui.widgets.event_table import EventTable
from mpsandbox.tui.widgets.key_bar import KeyBar
from mpsandbox.tui.widgets.status_bar import StatusBar
from mpsandbox.wording import plural


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
        yield DataTable(id="error-groups", cursor_type="row", zebra_stripes=True)
        yield Static("Select a group to see its events.", id="group-title")
        yield EventList(EventFilter(error_group=-1), follow=False, id="group-events")
        yield KeyBar()

    def on_mount(self) -> None:
        table = self.query_one("#error-groups", DataTable)
        table.add_column("count", key="count")
        table.add_column("schema", key="schema")
        table.add_column("field", key="field")
        table.add_column("rule", key="rule")
        table.add_column("message", key="message")
        table.add_column("first seen", key="first")
        table.add_column("last seen", key="last")
        table.focus()
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
            groups = await self.app.read(reader.list_error_groups)
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
                safe(schema, "", 60),
                safe(g.get("data_path") or "(root)", "bold"),
                safe(g.get("keyword"), "red"),
                safe(g.get("message"), "", 48),
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
        row = event.data_table.get_row(event.row_key)
        title = Text.assemble(
            ("Events with ", ""), row[3], (" at ", ""), row[2], (" in ", ""), row[1]
        )
        self.query_one("#group-title", Static).update(title)
        events.table.focus()

    def on_event_table_selected(self, event: EventTable.Selected) -> None:
        from mpsandbox.tui.screens.detail import DetailScreen

        self.app.push_screen(DetailScreen(event.event_id))
