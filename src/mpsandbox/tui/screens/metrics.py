"""Metrics: metric previews (ratios and funnels from metrics/*.yaml) over the captured
events, with counts, rates and 95% Wilson intervals, per group when grouped.

The numbers are :mod:`mpsandbox.metrics`'s; this screen only asks for them (again as events
arrive, at most every ``MIN_INTERVAL`` seconds) and draws them. ``b`` cycles the grouping.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.widgets import DataTable, Static

from mpsandbox.metrics import (
    Definitions,
    FunnelCounts,
    MetricResult,
    RatioCounts,
    compute_stored,
    default_metric_dirs,
    group_label,
    load_definitions,
    parse_by,
)
from mpsandbox.metrics.definitions import UNIT_FIELDS
from mpsandbox.metrics.report import explain, interval_text, percent
from mpsandbox.metrics.wilson import Ratio
from mpsandbox.store import StoreError
from mpsandbox.tui.fit import Col, cut_end, cut_path
from mpsandbox.tui.safe_text import clean, safe
from mpsandbox.tui.screens.base import ReloadingScreen
from mpsandbox.tui.widgets.fitted_table import FittedTable
from mpsandbox.tui.widgets.key_bar import KeyBar
from mpsandbox.tui.widgets.status_bar import StatusBar

#: Shortest gap between two computations while events stream in: each one reads every
#: matching event again.
MIN_INTERVAL = 0.5
#: ...and at least this many times the last computation's duration, so that a store where
#: one takes seconds (a million events) leaves the slow-read thread free most of the time.
BUSY_FACTOR = 2.0
#: Width of the interval bar, in cells, for the range 0-100%.
BAR_WIDTH = 14

#: The groupings ``b`` cycles through: (label, ``by`` or None for each metric's own).
GROUPINGS: list[tuple[str, str | None]] = [
    ("as defined", None),
    ("none", "none"),
    ("experiment.assigned", "experiment.assigned"),
    ("stream", "stream"),
]


def interval_bar(r: Ratio, width: int = BAR_WIDTH) -> Text:
    """``──━━━●━━━────────``: the interval as a thick run, the rate as a dot, on 0-100%."""
    if r.rate is None or r.low is None or r.high is None:
        return Text("·" * width, style="dim")
    last = width - 1
    lo, hi, at = (round(v * last) for v in (r.low, r.high, r.rate))
    text = Text()
    for i in range(width):
        if i == at:
            text.append("●", style="bold")
        elif lo <= i <= hi:
            text.append("━", style="cyan")
        else:
            text.append("─", style="dim")
    return text


#: The metric, its group or step and the rate with its interval stay longest; the counts
#: and the picture of the interval go first.
COLUMNS = (
    Col("metric", "metric", priority=100, min=12, cap=30),
    Col("row", "group / step", priority=95, min=14, cap=48, shorten=cut_path("/·")),
    Col("numerator", "numerator", priority=60, short="num"),
    Col("denominator", "denominator", priority=55, short="den"),
    Col("rate", "rate", priority=90),
    Col("interval", "95% interval", priority=80, short="95% CI"),
    Col("bar", "0% ── 100%", priority=40),
    Col("note", "note", priority=50, min=10, cap=40, shorten=cut_end),
)


@dataclass
class _Computed:
    definitions: Definitions
    results: list[MetricResult]
    seconds: float


def _compute(reader: Any, locations: list[Path], by: str | None) -> _Computed:
    """On a reader thread: load the definitions (so edits show) and compute them all."""
    started = time.perf_counter()
    definitions = load_definitions(locations)
    group_by = None if by is None else parse_by(by)
    results = compute_stored(reader, definitions.metrics, by=group_by)
    return _Computed(definitions, results, time.perf_counter() - started)


class MetricsScreen(ReloadingScreen):
    AUTO_FOCUS = "#metrics-table"
    BINDINGS = [
        Binding(
            "b",
            "cycle_grouping",
            "Group by",
            id="metrics.group_by",
            tooltip="group by: as defined / none / experiment.assigned / stream",
        ),
        Binding("ctrl+r", "reload", "Reload", id="metrics.reload"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.grouping = 0
        self.computed: _Computed | None = None
        self.problem: str | None = None
        #: Row key -> (metric result, the counts its row shows), for the detail lines.
        self.rows: dict[str, tuple[MetricResult, RatioCounts | FunnelCounts | None]] = {}
        self._computing = False
        self._compute_again = False
        self._last_compute = 0.0
        self._last_seconds = 0.0

    def compose(self) -> ComposeResult:
        yield StatusBar()
        yield Static("Computing metrics…", id="metrics-summary")
        yield FittedTable(COLUMNS, id="metrics-table")
        yield Static("", id="metric-detail")
        yield KeyBar()

    def on_mount(self) -> None:
        self.action_reload()

    # -- computing -------------------------------------------------------------------------
    def locations(self) -> list[Path]:
        return [*default_metric_dirs(), *self.app.settings.metrics_dirs]

    def action_reload(self) -> None:
        if self._computing:
            self._compute_again = True  # one more pass when this one ends, however many arrive
            return
        self._computing = True
        self._compute_loop()

    @work(group="metrics")
    async def _compute_loop(self) -> None:
        try:
            while True:
                self._compute_again = False
                gap = max(MIN_INTERVAL, BUSY_FACTOR * self._last_seconds)
                wait = self._last_compute + gap - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                self._last_compute = time.monotonic()
                await self._compute_once()
                if not self._compute_again:
                    return
        finally:
            self._computing = False

    async def _compute_once(self) -> None:
        reader = self.app.reader
        if reader is None:
            self.problem = "No store yet: metrics appear once events arrive."
            self._show()
            return
        by = GROUPINGS[self.grouping][1]
        try:
            self.computed = await self.app.read_slow(_compute, reader, self.locations(), by)
            self._last_seconds = self.computed.seconds
            self.problem = None
        except StoreError as exc:
            self.problem = str(exc)
        self._show()

    def action_cycle_grouping(self) -> None:
        self.grouping = (self.grouping + 1) % len(GROUPINGS)
        self._last_compute = 0.0
        self._show_summary()
        self.action_reload()

    # -- drawing ---------------------------------------------------------------------------
    def _show_summary(self) -> None:
        summary = self.query_one("#metrics-summary", Static)
        if self.problem:
            summary.update(Text(self.problem, style="bold red"))
            return
        computed = self.computed
        label = GROUPINGS[self.grouping][0]
        if computed is None:
            summary.update(Text.assemble(" Computing metrics… ", ("grouped: ", "dim"), label))
            return
        defs = computed.definitions
        sources = ", ".join(Path(s).name for s in defs.sources) or "no definitions folder"
        n = len(defs.metrics)
        summary.update(
            Text.assemble(
                (f" {n} metric{'' if n == 1 else 's'}", "bold"),
                f" from {sources}",
                (" · grouped: ", "dim"),
                (label, "bold"),
                (" (b) · rates with 95% Wilson intervals", "dim"),
            )
        )

    def _show(self) -> None:
        self._show_summary()
        table = self.query_one("#metrics-table", DataTable)
        cursor = table.cursor_row
        table.clear()
        self.rows = {}
        computed = self.computed
        if computed is not None:
            for result in computed.results:
                self._add_metric(table, result)
        if table.row_count:
            table.move_cursor(row=min(cursor, table.row_count - 1))
        self._show_detail()

    def _add_row(
        self,
        table: DataTable,
        result: MetricResult,
        first: bool,
        label: Text,
        r: Ratio | None,
        note: Text | str = "",
        counts: RatioCounts | FunnelCounts | None = None,
    ) -> None:
        key = f"{result.metric.name}|{len(self.rows)}"
        self.rows[key] = (result, counts)
        name = safe(result.metric.name, "bold", 200) if first else Text("")
        if r is None:
            cells: list[Any] = [Text("")] * 5
        else:
            cells = [
                Text(f"{r.numerator:,}", justify="right"),
                Text(f"{r.denominator:,}", justify="right"),
                Text(percent(r.rate), style="bold", justify="right"),
                Text(interval_text(r)),
                interval_bar(r),
            ]
        table.add_row(name, label, *cells, note, key=key)

    def _add_metric(self, table: DataTable, result: MetricResult) -> None:
        if result.error:
            self._add_row(table, result, True, safe(result.error, "red", 300), None)
            return
        shown = [result.total, *result.groups] if result.total is not None else []
        first = True
        for counts in shown:
            label = group_label(counts.group)
            notes = []
            if isinstance(counts, RatioCounts) and counts.outside:
                notes.append(f"{counts.outside:,} outside")
            if counts.without_unit:
                notes.append(f"{counts.without_unit:,} no unit")
            if not counts.group and result.not_valid:
                notes.append(f"{result.not_valid:,} not valid")
            if isinstance(counts, RatioCounts):
                self._add_row(
                    table,
                    result,
                    first,
                    safe(label, "" if counts.group else "dim", 200),
                    counts.ratio,
                    Text(", ".join(notes), style="yellow"),
                    counts,
                )
                first = False
                continue
            for i, step in enumerate(counts.steps, 1):
                prefix = f"{label} · " if counts.group else ""
                step_notes = [f"{percent(step.from_previous.rate)} of prev."] if i > 1 else []
                if step.skipped:
                    step_notes.append(f"{step.skipped:,} skipped")
                if i == 1:
                    step_notes += notes
                self._add_row(
                    table,
                    result,
                    first,
                    safe(f"{prefix}{i}. {step.name}", "", 200),
                    step.from_first,
                    Text(", ".join(step_notes), style="yellow" if step.skipped else "dim"),
                    counts,
                )
                first = False
        if first:  # nothing to show (no total): keep the metric visible
            self._add_row(table, result, True, Text("no data", style="dim"), None)

    def _show_detail(self) -> None:
        detail = self.query_one("#metric-detail", Static)
        parts: list[Text] = []
        table = self.query_one("#metrics-table", DataTable)
        selected = None
        if table.row_count:
            key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
            selected = self.rows.get(key or "")
        if selected is not None:
            result, counts = selected
            parts.append(_describe(result))
            if counts is not None:
                for note in explain(result, counts):
                    parts.append(Text(note, style="yellow"))
        computed = self.computed
        if computed is not None:
            for error in computed.definitions.errors:
                parts.append(safe(f"definition error: {error}", "red", 300))
            if not computed.definitions.metrics and not computed.definitions.errors:
                parts.append(
                    Text(
                        "No metric definitions. Put YAML files in the checkout's metrics/ "
                        "or start with --metrics DIR (see metrics/README.md).",
                        style="yellow",
                    )
                )
        detail.update(Text("\n").join(parts))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._show_detail()

    def screen_commands(self):
        yield SystemCommand(
            "Metrics: change the grouping",
            self.with_key("As defined, none, experiment.assigned, stream", "cycle_grouping"),
            self.action_cycle_grouping,
        )
        yield SystemCommand(
            "Metrics: compute again",
            self.with_key("Read the definitions and the events again", "reload"),
            self.action_reload,
        )


def _describe(result: MetricResult) -> Text:
    """The selected metric's definition, in two or three lines (its text is the user's:
    cleaned of control sequences, never read as markup)."""
    m = result.metric
    text = Text()
    text.append(m.name, style="bold")
    if m.description:
        text.append(f": {clean(m.description, 200)}")
    text.append(f"  ({clean(Path(m.source).name, 80)})\n" if m.source else "\n", style="dim")
    text.append("unit ", style="dim")
    text.append(f"{m.unit} ({UNIT_FIELDS[m.unit]})")
    if m.where is not None:
        text.append(" · where ", style="dim")
        text.append(clean(m.where.text, 200))
    if m.experiment:
        text.append(" · experiment ", style="dim")
        text.append(clean(m.experiment, 80))
    text.append(" · " + ("valid events only" if m.valid_only else "every verdict"), style="dim")
    if m.steps:
        text.append("\nsteps ", style="dim")
        text.append(clean(" → ".join(s.query.text for s in m.steps), 300))
    else:
        text.append("\nnumerator ", style="dim")
        text.append(clean(m.numerator.text if m.numerator else "", 150))
        text.append(" among units of the denominator ", style="dim")
        text.append(clean(m.denominator.text if m.denominator else "", 150))
    return text
