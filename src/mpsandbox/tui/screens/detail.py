"""One event on a screen of its own, for the screens that list events in a pane (errors,
sessions); the Live screen shows the same widget in place."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen

from mpsandbox.tui.widgets.event_detail import EventDetail
from mpsandbox.tui.widgets.key_bar import KeyBar
from mpsandbox.tui.widgets.status_bar import StatusBar


class DetailScreen(Screen):
    """Escape goes back to where it was opened."""

    AUTO_FOCUS = "EventDetail"
    BINDINGS = [Binding("escape,backspace", "app.pop_screen", "Back")]

    def __init__(self, event_id: int) -> None:
        super().__init__()
        self.event_id = event_id

    def compose(self) -> ComposeResult:
        yield StatusBar()
        yield EventDetail(self.event_id, id="detail-body")
        yield KeyBar()

    @property
    def data(self):
        """The event as read from the store, or None until it is read (or if it is gone)."""
        return self.query_one(EventDetail).data

    def on_event_detail_open_sibling(self, message: EventDetail.OpenSibling) -> None:
        self.app.push_screen(DetailScreen(message.event_id))

    def screen_commands(self):
        return self.query_one(EventDetail).commands()
