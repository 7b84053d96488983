"""The main screen: every event as it arrives, filterable, newest first."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer

from mpsandbox.tui.widgets.event_list import EventList
from mpsandbox.tui.widgets.event_table import EventTable
from mpsandbox.tui.widgets.filter_bar import FilterBar
from mpsandbox.tui.widgets.port_banner import PortBanner
from mpsandbox.tui.widgets.status_bar import StatusBar


class LiveScreen(Screen):
    AUTO_FOCUS = "EventTable"
    BINDINGS = [
        Binding("slash", "focus_filter", "Filter"),
        Binding("escape", "focus_table", "Table", show=False),
    ]

    def compose(self) -> ComposeResult:
        yield StatusBar()
        yield PortBanner()
        yield FilterBar(id="live-filter")
        yield EventList(id="live-events")
        yield Footer()

    @property
    def table(self) -> EventTable:
        return self.query_one("#live-events", EventList).table

    def store_changed(self, reset: bool) -> None:
        self.table.store_changed(reset)

    def on_screen_resume(self) -> None:
        self.table.store_changed(reset=False)

    def on_filter_bar_changed(self, event: FilterBar.Changed) -> None:
        self.table.set_filter(event.event_filter)

    def on_event_table_selected(self, event: EventTable.Selected) -> None:
        from mpsandbox.tui.screens.detail import DetailScreen

        self.app.push_screen(DetailScreen(event.event_id))

    def action_focus_filter(self) -> None:
        self.query_one(FilterBar).input.focus()

    def action_focus_table(self) -> None:
        self.table.focus()

    def screen_commands(self):
        from textual.app import SystemCommand

        yield SystemCommand("Filter events", "Focus the filter bar (/)", self.action_focus_filter)
        yield SystemCommand(
            "Follow newest", "Resume following new events (f)", self.table.action_follow
        )
