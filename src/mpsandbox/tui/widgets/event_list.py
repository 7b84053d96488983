"""An event table with its column header and a line saying whether it follows."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from mpsandbox.store import EventFilter
from mpsandbox.tui.widgets.event_table import EventTable, EventTableHeader
from mpsandbox.wording import plural


class EventList(Vertical):
    DEFAULT_CSS = """
    EventList { height: 1fr; }
    EventList > .follow-state { height: 1; padding: 0 1; background: $boost; }
    EventList > .follow-state.-paused { background: $warning 30%; }
    """

    def __init__(
        self, event_filter: EventFilter | None = None, *, follow: bool = True, id: str | None = None
    ) -> None:
        super().__init__(id=id)
        self._filter = event_filter
        self._follow = follow

    def compose(self) -> ComposeResult:
        table = EventTable(self._filter, follow=self._follow)
        yield Static("", classes="follow-state")
        yield EventTableHeader(table)
        yield table

    @property
    def table(self) -> EventTable:
        return self.query_one(EventTable)

    def on_event_table_follow_changed(self, event: EventTable.FollowChanged) -> None:
        self._show_state()

    def on_event_table_counted(self, event: EventTable.Counted) -> None:
        self._show_state()

    def _show_state(self) -> None:
        table = self.table
        state = self.query_one(".follow-state", Static)
        line = Text(no_wrap=True)
        if table.following:
            line.append("● following", style="bold green")
            line.append(" newest first")
        else:
            line.append("❚❚ paused", style="bold yellow")
            if table.waiting:
                line.append(f"  {table.waiting:,} newer", style="bold")
            line.append("  · f to follow")
        if table.counting:
            line.append(f"   {table.total:,}+ events, counting…", style="dim")
        else:
            line.append(f"   {plural(table.total, 'event')}", style="dim")
        state.update(line, layout=False)  # one line, always: no need to lay out the screen
        state.set_class(not table.following, "-paused")
