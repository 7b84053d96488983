"""Sessions: the sessions list, a page at a time, and one session's timeline and funnels."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.widgets import DataTable, Static

from mpsandbox.platform.findings import STATEFUL_KINDS
from mpsandbox.platform.history import dt_gaps, session_funnels
from mpsandbox.store import StoreError
from mpsandbox.tui.fit import Col, cut_end, cut_middle, cut_path
from mpsandbox.tui.messages import StoreChanged
from mpsandbox.tui.safe_text import clean, safe
from mpsandbox.tui.screens.base import ReloadingScreen, selected_row_key
from mpsandbox.tui.timefmt import short_time
from mpsandbox.tui.widgets.event_table import BADGES
from mpsandbox.tui.widgets.fitted_table import FittedTable
from mpsandbox.tui.widgets.key_bar import KeyBar
from mpsandbox.tui.widgets.status_bar import StatusBar

#: Sessions read per page (only the page shown is read, however many sessions exist).
PAGE = 100
#: Events of one session read for its timeline (the newest).
TIMELINE_LIMIT = 2_000

PROBLEM_STYLE = {"repeat": "bold magenta", "gap": "bold yellow", "disorder": "bold red"}


def _gap(seconds: float | None) -> Text:
    if seconds is None:
        return Text("")
    text = f"{seconds / 60:+.1f}m" if abs(seconds) >= 60 else f"{seconds:+.1f}s"
    # Negative: the event's dt is before the previous one's (the list is in dt order, so
    # only equal-dt ties and unparsable dts get here); ten minutes or more stands out.
    style = "bold red" if seconds < 0 else ("yellow" if seconds >= 600 else "dim")
    return Text(text, style, justify="right")


#: A session is its id and its streams; the times and counts go before them.
SESSION_COLUMNS = (
    Col("id", "session", priority=100, min=12, cap=24, shorten=cut_middle),
    Col("platform", "platform", priority=40, min=6, cap=16),
    Col("first", "first seen", priority=30, short="first"),
    Col("last", "last seen", priority=60, short="last"),
    Col("pageviews", "pageviews", priority=50, short="pvs"),
    Col("events", "events", priority=80),
    Col("streams", "streams", priority=90, min=16, cap=80, shorten=cut_end),
    Col("findings", "findings", priority=75, short="finds"),
)
#: One event per row: what it was (stream, action) and what went wrong (findings) first.
TIMELINE_COLUMNS = (
    Col("dt", "dt", priority=70),
    Col("gap", "gap", priority=45),
    Col("verdict", "verdict", priority=90),
    Col("stream", "stream", priority=80, min=12, cap=40, shorten=cut_path(".")),
    Col("action", "action", priority=85, min=10, cap=32),
    Col("pageview", "pageview", priority=40, min=5, cap=14),
    Col("funnel", "funnel step", priority=60, min=4, cap=20),
    Col("findings", "findings", priority=75, min=10, cap=60),
    Col("id", "id", priority=95),
)


class SessionsScreen(ReloadingScreen):
    AUTO_FOCUS = "#sessions-table"
    BINDINGS = [
        Binding("ctrl+r", "reload", "Reload", id="sessions.reload"),
        Binding("right_square_bracket", "page(1)", "Next page", id="sessions.next_page"),
        Binding("left_square_bracket", "page(-1)", "Prev page", id="sessions.previous_page"),
        Binding(
            "tab",
            "focus_next",
            "Switch pane",
            show=False,
            id="sessions.switch_pane",
            tooltip="between the sessions and the timeline; Esc back to the sessions",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.page = 0
        self.total = 0
        self.session_id: str | None = None
        self.timeline: list[dict[str, Any]] = []
        self.funnels: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        yield StatusBar()
        yield Static("Reading sessions…", id="sessions-summary")
        yield FittedTable(SESSION_COLUMNS, id="sessions-table")
        yield Static("Select a session (Enter) to see its timeline.", id="timeline-title")
        yield FittedTable(TIMELINE_COLUMNS, id="timeline-table")
        yield Static("", id="session-funnels")
        yield KeyBar()

    def on_mount(self) -> None:
        self.action_reload()

    # -- refreshing ------------------------------------------------------------------------
    @on(StoreChanged)
    def _back_to_first_page(self, message: StoreChanged) -> None:
        if message.reset:
            self.page = 0  # then ReloadingScreen reloads

    def action_reload(self) -> None:
        self._load_sessions()
        if self.session_id is not None:
            self._load_timeline(self.session_id)

    def action_page(self, step: int) -> None:
        last = max(0, (self.total - 1) // PAGE)
        page = max(0, min(last, self.page + step))
        if page != self.page:
            self.page = page
            self._load_sessions()

    @work(exclusive=True, group="sessions")
    async def _load_sessions(self) -> None:
        reader = self.app.reader
        summary = self.query_one("#sessions-summary", Static)
        if reader is None:
            summary.update("No store yet.")
            return
        page = self.page

        def read() -> tuple[int, list[dict[str, Any]]]:
            return reader.count_sessions(), reader.list_sessions(limit=PAGE, offset=page * PAGE)

        try:
            total, rows = await self.app.read(read)
        except StoreError as exc:
            summary.update(Text(str(exc), style="bold red"))
            return
        self.total = total
        table = self.query_one("#sessions-table", DataTable)
        selected = self.selected_session
        table.clear()
        for r in rows:
            streams = r.get("streams") or {}
            names = ", ".join(sorted(streams, key=lambda s: -streams[s]))
            table.add_row(
                safe(r["session_id"], "bold cyan", 100),
                safe(r.get("platform") or "—", "", 100),
                short_time(r.get("first_seen")),
                short_time(r.get("last_seen")),
                Text(f"{r.get('pageviews') or 0:,}", justify="right"),
                Text(f"{r.get('events') or 0:,}", justify="right"),
                safe(names or "—", "dim", 300),
                Text(
                    f"{r.get('findings') or 0:,}",
                    "bold yellow" if r.get("findings") else "dim",
                    justify="right",
                ),
                key=r["session_id"],
            )
        keys = [r["session_id"] for r in rows]
        if selected in keys:
            table.move_cursor(row=keys.index(selected))
        pages = max(1, (total + PAGE - 1) // PAGE)
        summary.update(
            Text.assemble(
                (f" {total:,} sessions", "bold"),
                f", most recently active first; page {page + 1:,} of {pages:,} ([ ] to turn).",
                " Enter shows a session's timeline; Enter on an event opens it.",
            )
        )

    @property
    def selected_session(self) -> str | None:
        table = self.query_one("#sessions-table", DataTable)
        return selected_row_key(table)

    # -- a session's timeline ----------------------------------------------------------------
    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.data_table.id == "sessions-table":
            self.session_id = event.row_key.value
            self._load_timeline(self.session_id)
            self.query_one("#timeline-table", DataTable).focus()
        elif event.data_table.id == "timeline-table" and event.row_key.value:
            from mpsandbox.tui.screens.detail import DetailScreen

            self.app.push_screen(DetailScreen(int(event.row_key.value)))

    @work(exclusive=True, group="timeline")
    async def _load_timeline(self, session_id: str) -> None:
        reader = self.app.reader
        if reader is None:
            return
        try:
            rows = await self.app.read(reader.session_events, session_id, TIMELINE_LIMIT)
        except StoreError as exc:
            self.query_one("#timeline-title", Static).update(Text(str(exc), style="bold red"))
            return
        if session_id != self.session_id:
            return
        self.timeline = rows
        self.funnels = session_funnels(r["event"] for r in rows)
        self._show_timeline(session_id, rows)

    def _show_timeline(self, session_id: str, rows: list[dict[str, Any]]) -> None:
        # Each event's place in its funnel, as the whole funnel judges it.
        steps: dict[int, dict[str, Any]] = {}
        for funnel in self.funnels:
            for step in funnel["steps"]:
                steps[id(step["event"])] = step
        gaps = dt_gaps(r.get("dt") for r in rows)
        table = self.query_one("#timeline-table", DataTable)
        table.clear()
        pageviews: dict[str, int] = {}
        for r, gap in zip(rows, gaps, strict=True):
            label, style = BADGES.get(r["verdict"], (clean(r["verdict"], 7), "reverse"))
            pv = r.get("pageview_id")
            if pv:
                pageviews.setdefault(pv, len(pageviews) + 1)
            step = steps.get(id(r["event"]))
            funnel = Text("")
            if step is not None:
                funnel = Text(f"#{step['position']}")
                for p in step["problems"]:
                    funnel.append(f" ✖{p}", style=PROBLEM_STYLE.get(p, "bold"))
            # What only a timeline shows (funnels, repeats, sessions) first.
            kinds = sorted(
                (f["kind"] for f in r.get("findings") or [] if f.get("severity") != "info"),
                key=lambda k: k not in STATEFUL_KINDS,
            )
            table.add_row(
                safe((r.get("dt") or "")[11:23] or "—", "", 12),
                _gap(gap),
                Text(label, style=style),
                safe(r.get("stream") or "", "", 200),
                safe(r.get("action") or "", "bold", 200),
                safe(f"pv{pageviews[pv]} {pv[:8]}" if pv else "—", "cyan", 14),
                funnel,
                safe(", ".join(kinds) or "·", "yellow" if kinds else "dim", 300),
                Text(f"{r['id']}", "dim", justify="right"),
                key=str(r["id"]),
            )
        title = Text.assemble(
            ("Session ", ""),
            safe(session_id, "bold cyan"),
            (f": {len(rows):,} events in dt order, {len(pageviews)} pageviews", ""),
            (" (the newest only)" if len(rows) >= TIMELINE_LIMIT else "", "dim"),
        )
        self.query_one("#timeline-title", Static).update(title)
        self.query_one("#session-funnels", Static).update(render_funnels(self.funnels))

    def screen_commands(self):
        yield SystemCommand(
            "Reload sessions",
            self.with_key("Read the sessions again", "reload"),
            self.action_reload,
        )
        yield SystemCommand(
            "Next page of sessions",
            self.with_key("Older sessions", "page(1)"),
            lambda: self.action_page(1),
        )
        yield SystemCommand(
            "Previous page of sessions",
            self.with_key("Newer sessions", "page(-1)"),
            lambda: self.action_page(-1),
        )


def render_funnels(funnels: list[dict[str, Any]]) -> Text:
    t = Text()
    if not funnels:
        return Text(" No funnel steps in this session.", style="dim")
    for i, f in enumerate(funnels):
        if i:
            t.append("\n")
        t.append(" funnel ", style="bold")
        t.append_text(safe(f["instrument"] or "(no instrument)", "bold", 40))
        t.append_text(safe(f" token {f['token']}", "dim", 40))
        t.append(": ")
        for j, step in enumerate(f["steps"]):
            if j:
                t.append(" → ", style="dim")
            problems = step["problems"]
            style = PROBLEM_STYLE.get(problems[0], "bold") if problems else "green"
            t.append(str(step["position"]), style=style)
            for p in problems:
                t.append(f" ✖{p}", style=PROBLEM_STYLE.get(p, "bold"))
        if not f["problems"]:
            t.append("  ✔ in order", style="green")
    return t
