"""The filter bar: the shared query language, parsed as the user types.

A query that does not parse yet (``stream:`` half typed) leaves the table as it was and
says what is wrong underneath, so typing never flashes an empty table.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Static

from mpsandbox.query import QuerySyntaxError, parse_query
from mpsandbox.store import EventFilter


class FilterBar(Vertical):
    DEFAULT_CSS = """
    FilterBar { height: auto; }
    FilterBar > Input { border: tall $panel; }
    FilterBar > .filter-problem { color: $error; height: auto; display: none; padding: 0 1; }
    FilterBar.-invalid > .filter-problem { display: block; }
    """

    class Changed(Message):
        """A new valid filter; ``text`` is what the user typed."""

        def __init__(self, bar: FilterBar, event_filter: EventFilter, text: str) -> None:
            super().__init__()
            self.bar = bar
            self.event_filter = event_filter
            self.text = text

        @property
        def control(self) -> FilterBar:
            return self.bar

    def __init__(self, value: str = "", *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._initial = value

    def compose(self) -> ComposeResult:
        yield Input(
            value=self._initial,
            placeholder='filter: stream:NAME is:invalid schema:TITLE -action:x "text"   (? help)',
            id="filter-input",
        )
        yield Static("", classes="filter-problem", markup=False)

    @property
    def input(self) -> Input:
        return self.query_one(Input)

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.apply(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.apply(event.value)
        self.screen.focus_next()

    def apply(self, text: str) -> None:
        problem = self.query_one(".filter-problem", Static)
        try:
            query = parse_query(text)
        except QuerySyntaxError as exc:
            problem.update(f"{exc}")
            self.add_class("-invalid")
            return
        self.remove_class("-invalid")
        problem.update("")
        self.post_message(self.Changed(self, EventFilter(query=query), text))
