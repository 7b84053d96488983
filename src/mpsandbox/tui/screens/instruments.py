"""Instruments: how far captured events cover each instrument definition, live.

The definitions come from ``--instruments`` (else ``./instruments``, else the checkout's
examples) and are read again when a file changes. One row per instrument, then one per
check (every event valid, the schema, the experiment block, each expectation): pass, fail
with the reason, or not seen, with the events it matched. The panel below shows every
issue of the selected check; Enter opens its nearest event. The judging is
:mod:`mpsandbox.instruments.checks`, run on a reader thread over the newest events of the
instruments' streams (read incrementally as they arrive).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.widgets import DataTable, Static

from mpsandbox.instruments.checks import (
    FAIL,
    NOT_SEEN,
    PASS,
    CheckResult,
    InstrumentResult,
    check_all,
    summary,
)
from mpsandbox.instruments.definitions import (
    Library,
    default_location,
    library_signature,
    load_location,
)
from mpsandbox.instruments.sources import StoreTracker
from mpsandbox.simulate.bugs import injected_bug
from mpsandbox.store import StoreError, StoreReader
from mpsandbox.tui.fit import Col, cut_end
from mpsandbox.tui.messages import StoreChanged
from mpsandbox.tui.paths import shown_path
from mpsandbox.tui.safe_text import safe
from mpsandbox.tui.screens.base import ReloadingScreen, selected_row_key
from mpsandbox.tui.widgets.fitted_table import FittedTable
from mpsandbox.tui.widgets.key_bar import KeyBar
from mpsandbox.tui.widgets.status_bar import StatusBar
from mpsandbox.wording import plural

#: Events judged at most (the newest of the instruments' streams).
EVENTS_JUDGED = 20_000
#: How often the definition files are looked at for changes (seconds).
DEFINITIONS_POLL = 2.0
#: A judging pass starts at least MIN_GAP seconds after the previous one ended, and at
#: least COST_FACTOR times as long as that one took: under a flood of events the screen
#: judges now and then, and never takes the reader threads (or the cores) for itself.
MIN_GAP = 0.25
COST_FACTOR = 3.0

STATUS_BADGES = {
    PASS: (" pass ", "bold #000000 on #3fb950"),
    FAIL: (" FAIL ", "bold #ffffff on #d1242f"),
    NOT_SEEN: ("not seen", "bold #000000 on #d29922"),
}


def badge(status: str) -> Text:
    label, style = STATUS_BADGES.get(status, (status, "reverse"))
    return Text(label, style=style)


@dataclass
class Coverage:
    """What one judging pass found (made on a reader thread, shown on the UI's)."""

    library: Library
    results: list[InstrumentResult] = field(default_factory=list)
    events: int = 0
    bounded: bool = False
    #: Event id -> the bug the demo's simulator injected in it on purpose (its meta.id
    #: says so), for the events judged.
    injected: dict[int, str] = field(default_factory=dict)


class Judge:
    """The screen's state off the UI loop: the definitions (re-read when their files
    change) and the events read so far. One pass at a time."""

    def __init__(self, location: Path | None) -> None:
        self.location = location
        self.tracker = StoreTracker(EVENTS_JUDGED)
        self._lock = threading.Lock()
        self._signature: tuple | None = None
        self.library = Library(location=location)
        #: Set by the UI on a store reset; the next pass starts over (never blocks the UI).
        self.reset_pending = False

    def changed(self) -> bool:
        return library_signature(self.location) != self._signature

    def run(self, reader: StoreReader | None) -> Coverage:
        with self._lock:
            if self.reset_pending:
                self.reset_pending = False
                self.tracker.reset()
            signature = library_signature(self.location)
            if signature != self._signature:
                self._signature = signature
                self.library = (
                    load_location(self.location)
                    if self.location is not None
                    else Library(location=None)
                )
            events = self.tracker.update(reader, self.library.streams()) if reader else []
            results = check_all(self.library.definitions, events)
            injected = {e.id: bug for e in events if (bug := _injected(e.event)) is not None}
            return Coverage(self.library, results, len(events), self.tracker.bounded, injected)


#: The check and its verdict stay; the reason before what it expects; the counts last.
COLUMNS = (
    Col("name", "instrument / check", priority=100, min=14, cap=36),
    Col("status", "status", priority=95),
    Col("events", "events", priority=40),
    Col("nearest", "event", priority=50),
    Col("what", "expects", priority=60, min=14, cap=48, shorten=cut_end),
    Col("detail", "reason", priority=70, min=16, cap=70, shorten=cut_end),
)


def _injected(event: Any) -> str | None:
    meta = event.get("meta") if isinstance(event, dict) else None
    return injected_bug(meta.get("id")) if isinstance(meta, dict) else None


def injected_in(c: CheckResult, injected: dict[int, str]) -> str | None:
    """The demo bug behind a check's failure, if its events are ones injected on purpose."""
    ids = [i.event_id for i in c.issues if i.event_id is not None]
    if c.event_id is not None:
        ids.append(c.event_id)
    return next((injected[i] for i in ids if i in injected), None)


class InstrumentsScreen(ReloadingScreen):
    AUTO_FOCUS = "#instruments-table"
    BINDINGS = [
        Binding("ctrl+r", "reload", "Reload", id="instruments.reload"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.judge: Judge | None = None
        self.coverage: Coverage | None = None
        #: Row key -> (instrument index, check index or None).
        self._rows: dict[str, tuple[int, int | None]] = {}
        self._judging = False
        self._judge_again = False
        self._judged_at = 0.0
        self._judge_cost = 0.0
        self._judge_timer: Any = None

    def compose(self) -> ComposeResult:
        yield StatusBar()
        yield Static("Reading instrument definitions…", id="instruments-summary")
        yield FittedTable(COLUMNS, id="instruments-table")
        yield Static("", id="instrument-detail")
        yield KeyBar()

    def on_mount(self) -> None:
        self.judge = Judge(default_location(self.app.settings.instruments))
        self.set_interval(DEFINITIONS_POLL, self._poll_definitions)
        self.action_reload()

    # -- refreshing ------------------------------------------------------------------------
    @on(StoreChanged)
    def _start_over_after_reset(self, message: StoreChanged) -> None:
        if message.reset and self.judge is not None:
            self.judge.reset_pending = True  # then ReloadingScreen reloads

    def _poll_definitions(self) -> None:
        if self.judge is not None and self.is_current and self.judge.changed():
            self.action_reload()

    def action_reload(self) -> None:
        """Judge again: now, or once the pause after the last pass is over (coalesced)."""
        if self._judging:
            self._judge_again = True
            return
        wait = self._judged_at + max(MIN_GAP, self._judge_cost * COST_FACTOR) - time.monotonic()
        if wait > 0:
            if self._judge_timer is None:
                self._judge_timer = self.set_timer(wait, self._due)
            return
        self._judging = True
        self._load()

    def _due(self) -> None:
        self._judge_timer = None
        self.action_reload()

    @work(group="instruments")
    async def _load(self) -> None:
        started = time.monotonic()
        try:
            judge = self.judge
            if judge is None:
                return
            try:
                coverage = await self.app.read(judge.run, self.app.reader)
            except StoreError as exc:
                summary = self.query_one("#instruments-summary", Static)
                summary.update(Text(str(exc), style="bold red"))
                return
            self.coverage = coverage
            self._show(coverage)
        finally:
            self._judging = False
            self._judged_at = time.monotonic()
            self._judge_cost = self._judged_at - started
            if self._judge_again:
                self._judge_again = False
                self.action_reload()

    # -- showing -----------------------------------------------------------------------------
    def _show(self, coverage: Coverage) -> None:
        table = self.query_one("#instruments-table", DataTable)
        selected = self.selected_key
        table.clear()
        self._rows = {}
        for i, res in enumerate(coverage.results):
            d = res.definition
            key = f"i{i}"
            self._rows[key] = (i, None)
            where = d.file.name if d.file is not None else ""
            table.add_row(
                safe(d.name, "bold", 200),
                badge(res.status),
                Text(f"{res.events:,}", justify="right"),
                Text(""),
                safe(f"stream {d.stream}", "dim", 200),
                safe(where, "dim", 200),
                key=key,
            )
            for j, c in enumerate(res.checks):
                key = f"c{i}:{j}"
                self._rows[key] = (i, j)
                table.add_row(
                    safe(f"  {c.id}", "", 200),
                    badge(c.status),
                    Text(f"{len(c.matched):,}" if c.matched else "·", "dim", justify="right"),
                    self._nearest(c),
                    safe(c.title, "", 300),
                    self._reason(c, injected_in(c, coverage.injected)),
                    key=key,
                )
        keys = list(self._rows)
        if selected in keys:
            table.move_cursor(row=keys.index(selected))
        self._show_summary(coverage)
        self._show_detail()

    @staticmethod
    def _nearest(c: CheckResult) -> Text:
        """The event Enter opens: a failure's nearest, else the newest match."""
        if c.event_id is None:
            return Text("")
        return Text(f"#{c.event_id}", "bold cyan" if c.status == FAIL else "dim", justify="right")

    @staticmethod
    def _reason(c: CheckResult, bug: str | None = None) -> Text:
        if c.status == PASS:
            return Text("✔", style="green")
        reason = safe(c.reason or "", "yellow" if c.status == NOT_SEEN else "", 300)
        if bug is None or c.status != FAIL:
            return reason
        return Text.assemble((f"⚑ injected demo bug {bug}: ", "bold magenta"), reason)

    def _show_summary(self, coverage: Coverage) -> None:
        lib = coverage.library
        out = Text()
        if not lib.definitions and not lib.problems:
            where = shown_path(lib.location) if lib.location else "instruments/"
            out.append(f" No instrument definitions in {where}. ", style="bold")
            out.append(
                "Write one (instruments/README.md), scaffold one with "
                "`mpsandbox instrument new NAME QUERY`, or start with --instruments DIR."
            )
        else:
            t = summary(coverage.results)
            out.append(f" {plural(t['instruments'], 'instrument')}", style="bold")
            out.append(f" from {shown_path(lib.location)}: " if lib.location else ": ")
            out.append(f"{t[PASS]:,} pass", style="green")
            out.append(", ")
            out.append(f"{t[FAIL]:,} fail", style="bold red" if t[FAIL] else "")
            out.append(", ")
            out.append(f"{t[NOT_SEEN]:,} not seen", style="yellow" if t[NOT_SEEN] else "")
            bounded = " (the newest only)" if coverage.bounded else ""
            out.append(f"; {coverage.events:,} events judged{bounded}.", style="dim")
            out.append(" Enter opens a check's nearest event.", style="dim")
        for p in lib.problems[:5]:
            out.append("\n ")
            out.append_text(safe(str(p), "bold red", 200))
        if len(lib.problems) > 5:
            out.append(f"\n … {len(lib.problems) - 5} more definition problems", style="red")
        self.query_one("#instruments-summary", Static).update(out)

    @property
    def selected_key(self) -> str | None:
        table = self.query_one("#instruments-table", DataTable)
        return selected_row_key(table)

    def selected(self) -> tuple[InstrumentResult, CheckResult | None] | None:
        key = self.selected_key
        if key is None or self.coverage is None or key not in self._rows:
            return None
        i, j = self._rows[key]
        res = self.coverage.results[i]
        return res, (res.checks[j] if j is not None else None)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def _show_detail(self) -> None:
        panel = self.query_one("#instrument-detail", Static)
        chosen = self.selected()
        if chosen is None:
            panel.update("")
            return
        res, c = chosen
        d = res.definition
        t = Text()
        if c is None:
            t.append(f" {d.name}", style="bold")
            if d.description:
                t.append_text(safe(f": {d.description.strip()}", "", 200))
            t.append(f"\n stream {d.stream}", style="dim")
            if d.schema is not None:
                t.append(f", schema {d.schema.describe()}", style="dim")
            if d.experiment is not None:
                t.append(f", experiment {d.experiment.name}", style="dim")
            if res.unmatched_actions:
                others = ", ".join(f"{a} ×{n}" for a, n in res.unmatched_actions.items())
                t.append("\n matched by no expectation: ", style="dim")
                t.append_text(safe(others, "", 120))
            panel.update(t)
            return
        t.append(f" {d.name} › {c.id}: ", style="bold")
        t.append_text(safe(c.title, "", 100))
        if c.status == NOT_SEEN:
            t.append("\n ")
            t.append_text(safe(c.note or "not seen", "yellow", 200))
        for issue in c.issues[:4]:
            t.append("\n ✖ ", style="bold red")
            t.append_text(safe(issue.message, "", 200))
            bug = self.coverage.injected.get(issue.event_id) if self.coverage else None
            if bug is not None:
                t.append(f"  ⚑ injected on purpose by the demo ({bug})", style="bold magenta")
        if c.issue_count > 4:
            t.append(f"\n … {c.issue_count - 4} more", style="dim")
        if c.status == PASS:
            t.append(f"\n ✔ {len(c.matched):,} events", style="green")
        if c.event_id is not None:
            t.append(f"\n Enter opens event {c.event_id}.", style="dim")
        panel.update(t)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        chosen = self.selected()
        if chosen is None or chosen[1] is None or chosen[1].event_id is None:
            return
        from mpsandbox.tui.screens.detail import DetailScreen

        self.app.push_screen(DetailScreen(chosen[1].event_id))

    def screen_commands(self):
        yield SystemCommand(
            "Reload instruments",
            self.with_key("Read the definitions and judge the events again", "reload"),
            self.action_reload,
        )

    def totals(self) -> dict[str, Any]:
        """Totals of what is shown: instruments, checks, pass, fail, not_seen."""
        return summary(self.coverage.results) if self.coverage else {}
