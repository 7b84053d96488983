"""A virtual, newest-first table of stored events.

Only the rows on screen (plus a margin) are ever read from SQLite, by OFFSET within the
filtered order, so the widget costs the same with ten events or ten million. The table shows
a snapshot bounded by an *anchor*: the newest event id included. While following, each
burst of new events moves the anchor up and the cursor stays on the newest row; as soon as
the user moves, the anchor stays put, the rows under the cursor stop shifting, and the
table only counts what arrived since.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events, work
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Static

from mpsandbox.records import ERROR, INVALID, LEGACY, VALID
from mpsandbox.store import EventFilter
from mpsandbox.tui.fit import Col, cut_path, fit_columns
from mpsandbox.tui.safe_text import clean, safe
from mpsandbox.tui.timefmt import clock_ms

#: Rows read per window: the visible page plus a page above and below.
_MARGIN_PAGES = 1
#: Past this many cached rows, rows far from the viewport are forgotten.
_CACHE_LIMIT = 3_000
#: ... and past this many characters of text in them: a row's stream, action, session id
#: are whatever a client sent, so 3,000 rows of a client sending 100 kB actions would hold
#: 300 MB. Rows of ordinary events hold ~300 characters; the window just read always stays.
_CACHE_CHARS = 2_000_000
#: Rendered rows kept (a few screens' worth); the cache starts over beyond this.
_STRIP_CACHE_LIMIT = 300
#: A table that follows new events adds the matches among them to its last exact count
#: (a count over a range of ids, however big the store); it counts everything again in the
#: background at most this often, so rows deleted meanwhile (retention, a ``since:5m``
#: window sliding on) leave the total within seconds.
_RECOUNT_INTERVAL = 10.0

BADGES = {
    VALID: (" valid ", "bold #000000 on #3fb950"),
    INVALID: ("invalid", "bold #ffffff on #d1242f"),
    ERROR: (" error ", "bold #000000 on #d29922"),
    LEGACY: ("legacy ", "bold #000000 on #58a6ff"),
}


def _row_chars(row: dict[str, Any]) -> int:
    return sum(len(v) for v in row.values() if isinstance(v, str))


@dataclass(frozen=True, slots=True)
class _Count:
    """``total`` rows match ``filter`` up to event id ``anchor``; ``full_at`` is when the
    full count this derives from ran (time.monotonic())."""

    filter: EventFilter
    anchor: int
    total: int
    full_at: float


#: The event table's columns (rules in :mod:`mpsandbox.tui.fit`): the verdict and the id
#: (how an event is named) stay longest, then what the event is (stream, action, schema);
#: the session and the time go first.
COLUMNS = (
    Col("time", "time", priority=60),
    Col("verdict", "verdict", priority=100),
    Col("stream", "stream", priority=80, min=12, cap=40, shorten=cut_path(".")),
    Col("action", "action", priority=75, min=10, cap=32),
    Col("schema", "schema", priority=70, min=16, cap=48, shorten=cut_path("/")),
    # Validation errors only; the platform rules' findings have a column of their own.
    Col("errors", "errs", priority=65),
    Col("findings", "finds", priority=55),
    Col("session", "session", priority=30),
    Col("id", "id", priority=90),
)
#: Blank cells between two columns.
GAP = 1


def cell_value(row: dict[str, Any], key: str) -> Text:
    """The whole value of one cell (the column shortens it to its width)."""
    if key == "time":
        return safe(clock_ms(row.get("received_at")), "dim")
    if key == "verdict":
        label, style = BADGES.get(row.get("verdict"), (clean(row.get("verdict"), 7), "reverse"))
        return Text(label, style=style)
    if key == "errors":
        n = row.get("errors_count") or 0
        return Text(f"{n}", style="bold red", justify="right") if n else _NONE
    if key == "findings":
        n = row.get("findings_count") or 0
        return Text(f"{n}", style="bold yellow", justify="right") if n else _NONE
    if key == "schema":
        title, version = row.get("schema_title"), row.get("schema_version")
        if not title:
            return safe(row.get("schema_uri") or "—", "dim", 300)
        return safe(f"{title} {version}" if version else title, "", 300)
    if key == "session":
        return safe((row.get("session_id") or "")[:8], "cyan")
    if key == "id":
        return Text(f"{row.get('id', '')}", style="dim", justify="right")
    return safe(row.get(key) or "", "", 300)


_NONE = Text("·", style="dim", justify="right")

#: One fitted column as drawn: its declaration and its width (never 0: dropped columns
#: are left out).
Placed = tuple[Col, int]


def layout(content: list[int], width: int) -> list[Placed]:
    """The columns shown in ``width`` cells for content ``content`` cells wide at most."""
    widths = fit_columns(COLUMNS, content, width, gap=GAP)
    return [(col, w) for col, w in zip(COLUMNS, widths, strict=True) if w]


def row_content(row: dict[str, Any]) -> list[int]:
    """How wide each column's value is in ``row``."""
    return [cell_value(row, col.key).cell_len for col in COLUMNS]


def render_cell(row: dict[str, Any], col: Col, width: int) -> Text:
    """One cell, shortened by its column's rule and padded to ``width``."""
    cell = cell_value(row, col.key)
    text = col.shorten(cell, width).copy()
    text.align("right" if cell.justify == "right" else "left", width)
    return text


def render_row(row: dict[str, Any], columns: list[Placed]) -> Text:
    line = Text(no_wrap=True, end="")
    for i, (col, width) in enumerate(columns):
        if i:
            line.append(" " * GAP)
        line.append_text(render_cell(row, col, width))
    return line


class EventTableHeader(Static):
    """Column titles, laid out by the same function as the rows below."""

    # The table below always shows its vertical scrollbar; keep the columns above it aligned.
    DEFAULT_CSS = "EventTableHeader { height: 1; padding-right: 2; }"

    def __init__(self, table: EventTable) -> None:
        super().__init__()
        self.table = table
        table.header = self

    def render(self) -> Text:
        line = Text(no_wrap=True, end="")
        for i, (col, width) in enumerate(self.table.columns_for(self.size.width)):
            if i:
                line.append(" " * GAP)
            title = col.heading(width)
            right = cell_value({}, col.key).justify == "right"
            line.append(title.rjust(width) if right else title.ljust(width), style="bold")
        return line


class EventTable(ScrollView, can_focus=True):
    """Newest-first events matching a filter; reads only the rows it shows."""

    BINDINGS = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "first", "Newest", show=False),
        Binding("end", "last", "Oldest", show=False),
        # The ids every screen gives g/G (mpsandbox.tui.screens.keys), so one keymap entry
        # moves them everywhere.
        Binding("g", "first", "Top", show=False, id="table.top", tooltip="top: the newest"),
        Binding("G", "last", "Bottom", show=False, id="table.bottom", tooltip="bottom: the oldest"),
        Binding(
            "enter",
            "open",
            "Open",
            id="table.open",
            tooltip="open an event, an error group's events, a check's nearest event",
        ),
        Binding(
            "f",
            "follow",
            "Follow",
            id="table.follow",
            tooltip="follow the newest events again (moving stops following)",
        ),
    ]

    COMPONENT_CLASSES = {"event-table--cursor", "event-table--placeholder"}
    """``--cursor`` styles the selected row, ``--placeholder`` a row still being read."""

    DEFAULT_CSS = """
    EventTable { height: 1fr; overflow-x: hidden; overflow-y: scroll; }
    EventTable > .event-table--cursor { background: $accent 40%; text-style: bold; }
    EventTable:focus > .event-table--cursor { background: $accent 70%; }
    EventTable > .event-table--placeholder { color: $text-muted; }
    """

    following: reactive[bool] = reactive(True)
    """New events scroll in at the top; cleared as soon as the user moves."""

    cursor: reactive[int] = reactive(0, always_update=True)
    """Position of the selected row in the table's order (0 is the newest)."""

    class Selected(Message):
        """The user opened an event (Enter or a click on the selected row)."""

        def __init__(self, table: EventTable, event_id: int) -> None:
            super().__init__()
            self.table = table
            self.event_id = event_id

        @property
        def control(self) -> EventTable:
            return self.table

    class FollowChanged(Message):
        def __init__(self, table: EventTable, following: bool) -> None:
            super().__init__()
            self.table = table
            self.following = following

        @property
        def control(self) -> EventTable:
            return self.table

    class Counted(Message):
        """The table knows its size and how many newer events wait above its anchor."""

        def __init__(self, table: EventTable, total: int, waiting: int) -> None:
            super().__init__()
            self.table = table
            self.total = total
            self.waiting = waiting

        @property
        def control(self) -> EventTable:
            return self.table

    def __init__(
        self,
        event_filter: EventFilter | None = None,
        *,
        follow: bool = True,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._filter = event_filter or EventFilter()
        self._anchor: int | None = None
        self._total = 0
        self._waiting = 0
        self._rows: dict[int, dict[str, Any]] = {}
        #: Characters of text in ``_rows`` (see _CACHE_CHARS).
        self._rows_chars = 0
        self._strips: dict[tuple[Any, ...], Strip] = {}
        self._frame: tuple[int, Style, Style] | None = None
        #: The generation of the snapshot being read, if any; new events that arrive
        #: meanwhile only set ``_refresh_again``.
        self._snapshot_running: int | None = None
        self._refresh_again = False
        self._generation = 0
        self._loading: tuple[int, int, int] | None = None
        #: The last exact count, reused while following (see _RECOUNT_INTERVAL).
        self._count: _Count | None = None
        #: True while ``total`` only counts the rows read so far (a full count runs).
        self._counting = False
        #: The filter a background count runs for, if any.
        self._counting_for: EventFilter | None = None
        self.set_reactive(EventTable.following, follow)
        #: The widest value seen in each column since the filter last changed.
        self._content = [0] * len(COLUMNS)
        self._layouts: dict[tuple[int, tuple[int, ...]], list[Placed]] = {}
        #: The column titles above this table, kept in step with its columns.
        self.header: EventTableHeader | None = None

    # -- public API -------------------------------------------------------------------------
    @property
    def event_filter(self) -> EventFilter:
        return self._filter

    @property
    def total(self) -> int:
        return self._total

    @property
    def waiting(self) -> int:
        return self._waiting

    @property
    def counting(self) -> bool:
        """True while the matches are still being counted: ``total`` is then the number of
        rows read so far, and grows to the exact figure when the count finishes."""
        return self._counting

    @property
    def selected_id(self) -> int | None:
        row = self._rows.get(self.cursor)
        return None if row is None else row["id"]

    def row_at(self, index: int) -> dict[str, Any] | None:
        return self._rows.get(index)

    def columns_for(self, width: int) -> list[Placed]:
        """The columns shown at ``width`` cells for the values read so far."""
        key = (width, tuple(self._content))
        placed = self._layouts.get(key)
        if placed is None:
            if len(self._layouts) > 16:
                self._layouts.clear()
            placed = self._layouts[key] = layout(self._content, width)
        return placed

    def shown_columns(self) -> list[Placed]:
        """The columns as drawn now."""
        return self.columns_for(self.scrollable_content_region.width)

    def _measure(self, rows: Any, fresh: bool = False) -> None:
        """Widen the columns for ``rows`` (``fresh``: forget the widths seen before)."""
        content = [0] * len(COLUMNS) if fresh else list(self._content)
        for row in rows:
            for i, w in enumerate(row_content(row)):
                if w > content[i]:
                    content[i] = w
        if content != self._content:
            self._content = content
            self._strips.clear()
            self.refresh()
            if self.header is not None:
                self.header.refresh()

    def set_filter(self, event_filter: EventFilter, *, follow: bool | None = None) -> None:
        """Show another selection from the top.

        A following table (or ``follow=True``) shows the newest matches; a paused one keeps
        its anchor, so events that arrived since stay out until the user follows again.
        """
        self._filter = event_filter
        self._content = [0] * len(COLUMNS)
        if follow is not None:
            self.following = follow
        self._reload(keep_cursor=False, newest=self.following or self._anchor is None)

    def store_changed(self, reset: bool = False) -> None:
        """New events were committed (or the store was reset): refresh what that changes."""
        if reset:
            self._content = [0] * len(COLUMNS)
            self._count = None
            self._counting_for = None
            self.workers.cancel_group(self, "event-table-count")
            self._reload(keep_cursor=False, newest=True)
        elif self.following:
            if self._snapshot_running is not None:
                # One read at a time: another would cancel this one, and under sustained
                # load (a read slower than the gap between deliveries) nothing would land.
                self._refresh_again = True
            else:
                self._reload(keep_cursor=False, newest=True, refresh=True)
        elif self._anchor is None:
            self._reload(keep_cursor=False, newest=True)
        else:
            self._count_waiting()

    # -- loading ----------------------------------------------------------------------------
    def on_mount(self) -> None:
        self._reload(keep_cursor=False, newest=True)

    def _bounded(self, anchor: int | None) -> EventFilter:
        return self._filter if anchor is None else replace(self._filter, max_id=anchor)

    def _reload(self, keep_cursor: bool, newest: bool = False, refresh: bool = False) -> None:
        """Read a new snapshot: up to the newest event (``newest``) or the current anchor.

        ``refresh`` marks the reads that only bring in new events while following: one that
        lands after the user moved away is dropped, so the rows under the cursor stay put.
        """
        self._generation += 1
        self._load_snapshot(self._generation, keep_cursor, newest, refresh)

    @work(exclusive=True, group="event-table-snapshot")
    async def _load_snapshot(
        self, generation: int, keep_cursor: bool, newest: bool, refresh: bool
    ) -> None:
        self._snapshot_running = generation
        try:
            await self._read_snapshot(generation, keep_cursor, newest, refresh)
        finally:
            if self._snapshot_running == generation:  # not replaced by a newer read
                self._snapshot_running = None
                if self._refresh_again:
                    self._refresh_again = False
                    if self.following:
                        self.call_later(self._reload, False, True, True)

    async def _read_snapshot(
        self, generation: int, keep_cursor: bool, newest: bool, refresh: bool
    ) -> None:
        """Rows first, so they are on screen at once; then the total.

        The total is exact at once when every match fits in the rows read, or when the
        last exact count for this filter can be extended by the events that arrived since
        (a range of ids). Otherwise the table shows what it read, flags ``counting``, and a
        background count (one at a time, on the app's slow-read thread) fills in the total.
        """
        reader = self.app.reader
        if reader is None:
            return
        flt = self._filter
        anchor = None if newest else self._anchor
        known = self._count if self._count is not None and self._count.filter is flt else None
        page = max(1, self.size.height)
        top = int(self.scroll_y) if keep_cursor else 0
        start = max(0, top - page * _MARGIN_PAGES)
        limit = page * (1 + 2 * _MARGIN_PAGES)

        def read() -> tuple[int | None, int | None, list[dict[str, Any]]] | None:
            if generation != self._generation:
                return None  # superseded while it waited for a reader thread
            new_anchor = anchor if anchor is not None else reader.newest_event_id(flt)
            rows = reader.list_events(replace(flt, max_id=new_anchor), offset=start, limit=limit)
            total: int | None = None
            if len(rows) < limit and (rows or start == 0):
                total = start + len(rows)
            elif known is not None and new_anchor is not None and new_anchor >= known.anchor:
                total = known.total
                if new_anchor > known.anchor:
                    since = replace(flt, min_id=known.anchor + 1, max_id=new_anchor)
                    total += reader.count_events(since)
            return new_anchor, total, rows

        result = await self.app.read(read)
        if result is None or generation != self._generation:
            return
        if refresh and not self.following:
            # The user moved while this was read: keep the rows under the cursor.
            self._count_waiting()
            return
        new_anchor, total, rows = result
        self._anchor = new_anchor
        self._waiting = 0
        self._rows = {start + i: row for i, row in enumerate(rows)}
        self._rows_chars = sum(map(_row_chars, rows))
        self._measure(rows)
        recount = False
        if total is None:
            self._counting = True
            total = start + len(rows)
            recount = True
        else:
            self._counting = False
            if new_anchor is not None:
                full_at = known.full_at if known is not None else time.monotonic()
                latest = self._count
                if latest is None or latest.filter is not flt or full_at >= latest.full_at:
                    self._count = _Count(flt, new_anchor, total, full_at)
                recount = time.monotonic() - full_at > _RECOUNT_INTERVAL
        self._total = total
        self._set_height(total)
        if not keep_cursor:
            self.cursor = 0
            self.scroll_to(y=0, animate=False, immediate=True)
        else:
            self.cursor = min(self.cursor, max(0, total - 1))
        self.refresh()
        self.post_message(self.Counted(self, total, 0))
        if recount and self._counting_for is not flt:
            self._count_total(flt)

    @work(exclusive=True, group="event-table-count")
    async def _count_total(self, flt: EventFilter) -> None:
        """Count every match of ``flt`` up to the shown anchor, then keep the total exact
        while the anchor moves on (adding the matches among the new events)."""
        self._counting_for = flt
        try:
            full = True
            while (reader := self.app.reader) is not None and flt is self._filter:
                anchor = self._anchor
                known = self._count if not full and self._count is not None else None
                if anchor is None or (known is not None and anchor == known.anchor):
                    break

                def count(anchor: int = anchor, known: _Count | None = known) -> int | None:
                    if flt is not self._filter:
                        return None  # the user typed on: skip the work
                    if known is None:
                        return reader.count_events(replace(flt, max_id=anchor))
                    since = replace(flt, min_id=known.anchor + 1, max_id=anchor)
                    return known.total + reader.count_events(since)

                started = time.monotonic()
                if known is None:
                    total = await self.app.read_slow(count)
                else:
                    total = await self.app.read(count)
                if total is None or flt is not self._filter:
                    return
                full_at = started if known is None else known.full_at
                self._count = _Count(flt, anchor, total, full_at)
                full = False
                if anchor == self._anchor:
                    self._counting = False
                    self._total = total
                    self._set_height(total)
                    self.cursor = min(self.cursor, max(0, total - 1))
                    self.refresh()
                    self.post_message(self.Counted(self, total, self._waiting))
                    break
                # The table moved to newer events meanwhile: add the matches among them.
        finally:
            if self._counting_for is flt:
                self._counting_for = None

    def _set_height(self, total: int) -> None:
        """Set the scroll range to ``total`` rows.

        Not through ``virtual_size`` as such: it is a layout reactive, and a layout pass
        re-renders the whole screen, ten times a second while events stream in. Only this
        widget's scroll range changes: update the scrollbar and repaint the table.
        """
        size = Size(self.size.width, total)
        if size == self.virtual_size:
            return
        self.set_reactive(ScrollView.virtual_size, size)
        scrollbar = self.vertical_scrollbar
        scrollbar.window_virtual_size = total
        scrollbar.refresh()
        self.refresh()

    @work(exclusive=True, group="event-table-waiting")
    async def _count_waiting(self) -> None:
        reader, anchor, flt = self.app.reader, self._anchor, self._filter
        if reader is None or anchor is None:
            return
        waiting = await self.app.read(reader.count_events, replace(flt, min_id=anchor + 1))
        if anchor == self._anchor and waiting != self._waiting:
            self._waiting = waiting
            self.post_message(self.Counted(self, self._total, waiting))

    def _ensure_rows(self) -> None:
        """Read the window around the viewport if any visible row is missing."""
        page = max(1, self.size.height)
        top = int(self.scroll_y)
        visible = range(top, min(self._total, top + page))
        if all(i in self._rows for i in visible):
            return
        start = max(0, top - page * _MARGIN_PAGES)
        want = (self._generation, start, page * (1 + 2 * _MARGIN_PAGES))
        if self._loading == want:
            return
        self._loading = want
        self._load_window(*want)

    @work(exclusive=True, group="event-table-window")
    async def _load_window(self, generation: int, start: int, limit: int) -> None:
        reader = self.app.reader
        if reader is None or self._anchor is None:
            self._loading = None
            return
        bounded = self._bounded(self._anchor)
        rows = await self.app.read(reader.list_events, bounded, offset=start, limit=limit)
        self._loading = None
        if generation != self._generation:
            self.call_later(self._ensure_rows)  # for the snapshot now shown, if still needed
            return
        incoming = sum(map(_row_chars, rows))
        if len(self._rows) > _CACHE_LIMIT or self._rows_chars + incoming > _CACHE_CHARS:
            self._rows = {k: v for k, v in self._rows.items() if abs(k - start) < limit * 2}
            self._rows_chars = sum(map(_row_chars, self._rows.values()))
            if self._rows_chars + incoming > _CACHE_CHARS:
                self._rows, self._rows_chars = {}, 0
        for i, row in enumerate(rows):
            old = self._rows.get(start + i)
            if old is not None:
                self._rows_chars -= _row_chars(old)
            self._rows[start + i] = row
        self._rows_chars += incoming
        self._measure(rows)
        self.refresh()

    # -- rendering --------------------------------------------------------------------------
    def render_lines(self, crop: Region) -> list[Strip]:
        # Work out the width and styles once per frame rather than once per line: each
        # style asks every ancestor for its colours (a third of a millisecond a line).
        self._frame = (
            self.scrollable_content_region.width,
            self.rich_style,
            self.get_component_rich_style("event-table--cursor"),
        )
        try:
            return super().render_lines(crop)
        finally:
            self._frame = None

    def render_line(self, y: int) -> Strip:
        index = int(self.scroll_y) + y
        frame = self._frame
        if frame is None:
            frame = (
                self.scrollable_content_region.width,
                self.rich_style,
                self.get_component_rich_style("event-table--cursor"),
            )
        width, base, cursor_style = frame
        if index >= self._total:
            return Strip.blank(width, base)
        row = self._rows.get(index)
        if row is None:
            self.call_after_refresh(self._ensure_rows)
            style = self.get_component_rich_style("event-table--placeholder")
            return Strip([Segment("  reading…".ljust(width), style)], width)
        if index == self.cursor:
            base = base + cursor_style
        # A row is rendered once per content, width and style, not on every refresh (ten a
        # second while events stream in, each shifting every row). The key is the whole row
        # (not just its id), so a value read again differently (a count) renders anew.
        try:
            key: tuple[Any, ...] | None = (
                tuple(row.values()),
                width,
                base,
                tuple(self._content),
            )
            strip = self._strips.get(key)
        except TypeError:  # an unhashable value: render without the cache
            key, strip = None, None
        if strip is None:
            text = render_row(row, self.columns_for(width))
            segments = list(text.render(self.app.console))
            strip = Strip(segments).crop_extend(0, width, base)
            if index == self.cursor:
                strip = strip.apply_style(base)
            if key is not None:
                if len(self._strips) >= _STRIP_CACHE_LIMIT:
                    self._strips.clear()
                self._strips[key] = strip
        return strip

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if round(old_value) != round(new_value):
            if int(new_value) > 0:
                self._stop_following()
            self._ensure_rows()

    def on_resize(self, event: events.Resize) -> None:
        self.virtual_size = Size(event.size.width, self._total)
        self._ensure_rows()

    # -- moving -----------------------------------------------------------------------------
    def _stop_following(self) -> None:
        if self.following:
            self.following = False

    def watch_following(self, following: bool) -> None:
        self.post_message(self.FollowChanged(self, following))

    def watch_cursor(self, old: int, new: int) -> None:
        # Only the two rows whose highlight changes (scrolling repaints the rest).
        self.refresh_line(old)
        self.refresh_line(new)

    def _move_to(self, index: int) -> None:
        if self._total == 0:
            return
        index = max(0, min(index, self._total - 1))
        if index != 0 or self.cursor != 0:
            self._stop_following()
        self.cursor = index
        page = max(1, self.size.height)
        top = int(self.scroll_y)
        if index < top:
            self.scroll_to(y=index, animate=False, immediate=True)
        elif index >= top + page:
            self.scroll_to(y=index - page + 1, animate=False, immediate=True)

    def action_cursor(self, delta: int) -> None:
        self._stop_following()
        self._move_to(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        self._stop_following()
        self._move_to(self.cursor + direction * max(1, self.size.height - 1))

    def action_first(self) -> None:
        self._stop_following()
        self._move_to(0)

    def action_last(self) -> None:
        self._stop_following()
        self._move_to(self._total - 1)

    def action_follow(self) -> None:
        """Jump to the newest event and keep following."""
        self.following = True
        self._reload(keep_cursor=False, newest=True)

    def action_open(self) -> None:
        event_id = self.selected_id
        if event_id is not None:
            self.post_message(self.Selected(self, event_id))

    def on_click(self, event: events.Click) -> None:
        """A click selects a row; a click on the selected row (or a double click) opens it."""
        index = int(self.scroll_y) + event.y
        if index >= self._total:
            return
        again = index == self.cursor and not self.following
        self._stop_following()
        self._move_to(index)
        if again or event.chain >= 2:
            self.action_open()
