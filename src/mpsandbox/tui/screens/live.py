"""The main screen: every event as it arrives, filterable, newest first.

Enter shows the event's detail in place of the list (Escape brings the list back where it
was): toggling two widgets is several times cheaper than a screen switch, and the keys that
open and close events are the ones pressed most while events keep arriving.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding

from mpsandbox.tui.messages import StoreChanged
from mpsandbox.tui.screens.keys import BACK, KeyedScreen
from mpsandbox.tui.widgets.event_detail import EventDetail
from mpsandbox.tui.widgets.event_list import EventList
from mpsandbox.tui.widgets.event_table import EventTable
from mpsandbox.tui.widgets.filter_bar import FilterBar
from mpsandbox.tui.widgets.key_bar import KeyBar
from mpsandbox.tui.widgets.port_banner import PortBanner
from mpsandbox.tui.widgets.status_bar import StatusBar


class LiveScreen(KeyedScreen):
    AUTO_FOCUS = "EventTable"
    BINDINGS = [
        Binding(
            "slash",
            "focus_filter",
            "Filter",
            id="live.focus_field",
            tooltip="type a filter (the language below); Enter applies it",
        ),
        # Shown here (the key bar says where Esc leads); the same id as everywhere else.
        Binding(
            "escape",
            "escape",
            "Back",
            id=BACK,
            tooltip="back from an event (and along events opened from it); "
            "from the filter bar to the table",
        ),
        Binding(
            "backspace",
            "close_detail",
            "Back",
            show=False,
            id="live.close_detail",
            tooltip="back from an event to the list",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        #: Events opened from the detail (siblings of a request): Escape walks back along it.
        self._trail: list[int] = []
        #: A reset arrived while the list was hidden; the list catches up when shown.
        self._missed: bool | None = None

    def compose(self) -> ComposeResult:
        yield StatusBar()
        yield PortBanner()
        yield FilterBar(id="live-filter")
        yield EventList(id="live-events")
        detail = EventDetail(id="live-detail")
        detail.display = False
        yield detail
        yield KeyBar()

    @property
    def table(self) -> EventTable:
        return self.query_one("#live-events", EventList).table

    @property
    def detail(self) -> EventDetail:
        return self.query_one("#live-detail", EventDetail)

    @property
    def detail_open(self) -> bool:
        return self.detail.display

    @on(StoreChanged)
    def _store_changed(self, message: StoreChanged) -> None:
        if self.detail_open:
            # Nothing to repaint while hidden: remember and catch up on the way back.
            self._missed = bool(self._missed) or message.reset
            return
        self.table.store_changed(message.reset)

    def on_screen_resume(self) -> None:
        if not self.detail_open:
            self.table.store_changed(reset=False)

    def on_filter_bar_changed(self, event: FilterBar.Changed) -> None:
        self.table.set_filter(event.event_filter)

    # -- the detail, in place of the list --------------------------------------------------
    def on_event_table_selected(self, event: EventTable.Selected) -> None:
        self.open_detail(event.event_id)

    def on_event_detail_open_sibling(self, message: EventDetail.OpenSibling) -> None:
        if self.detail.event_id is not None:
            self._trail.append(self.detail.event_id)
        self.detail.show(message.event_id)
        self.detail.focus()

    def open_detail(self, event_id: int) -> None:
        self._trail.clear()
        self.detail.show(event_id, reveal=self._reveal_detail)

    def _reveal_detail(self) -> None:
        self.query_one("#live-filter").display = False
        self.query_one("#live-events").display = False
        self.detail.display = True
        self.detail.focus()

    def action_close_detail(self) -> None:
        if not self.detail_open:
            return
        self._trail.clear()
        self.detail.display = False
        self.query_one("#live-filter").display = True
        self.query_one("#live-events").display = True
        self.table.focus()
        if self._missed is not None:
            self.table.store_changed(self._missed)
            self._missed = None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "escape":
            # Shown (and live) only where Escape leads somewhere: out of the detail, or
            # from the filter bar back to the table.
            return self.detail_open or not self.table.has_focus
        return True

    def action_escape(self) -> None:
        """Escape: back along the trail of siblings, then to the list, then to the table."""
        if self.detail_open and self._trail:
            self.detail.show(self._trail.pop())
        elif self.detail_open:
            self.action_close_detail()
        else:
            self.table.focus()

    def action_focus_filter(self) -> None:
        self.action_close_detail()
        self.query_one(FilterBar).input.focus()

    def screen_commands(self):
        yield SystemCommand(
            "Filter events",
            self.with_key("Focus the filter bar", "focus_filter"),
            self.action_focus_filter,
        )
        yield SystemCommand(
            "Follow newest",
            self.with_key("Resume following new events", "follow"),
            self.table.action_follow,
        )
        if self.detail_open:
            yield from self.detail.commands()
            yield SystemCommand(
                "Back to the list",
                self.with_key("Close the event", "close_detail"),
                self.action_close_detail,
            )
