"""Streams: each configured stream's config, what arrived on it, and sampling what-ifs."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Input, Static

from mpsandbox.overrides import SAMPLE_RATE, OverrideError
from mpsandbox.platform.stream_configs import StreamConfigError, StreamConfigs, load_location
from mpsandbox.query import parse_query
from mpsandbox.records import ERROR, INVALID, LEGACY, VALID, VERDICTS
from mpsandbox.store import EventFilter, StoreError
from mpsandbox.tui.fit import Col, cut_path
from mpsandbox.tui.paths import shown_path
from mpsandbox.tui.safe_text import clean, safe
from mpsandbox.tui.screens.base import ReloadingScreen, selected_row_key
from mpsandbox.tui.widgets.fitted_table import FittedTable
from mpsandbox.tui.widgets.key_bar import KeyBar
from mpsandbox.tui.widgets.status_bar import StatusBar
from mpsandbox.whatif import UNITS, sampling_whatif_stored, stream_sample

#: Streams listed at most (configured names plus streams seen in the store).
MAX_STREAMS = 200


@dataclass
class StreamRow:
    """One line of the table: a stream (or an unmatched ``/regex/`` key) and its numbers."""

    name: str
    key: str | None
    settings: dict[str, Any]
    sample: dict[str, Any]
    counts: dict[str, int]
    findings: int
    expected: dict[str, Any] | None


def _rate(value: Any) -> str:
    return "—" if value is None else f"{value:g}"


#: The stream, its sampling and its verdict counts stay; the expected split and the
#: schema go first.
COLUMNS = (
    Col("stream", "stream", priority=100, min=16, cap=56, shorten=cut_path(".")),
    Col("unit", "unit", priority=60, min=4, cap=10),
    Col("rate", "rate", priority=90, min=6, cap=20),
    Col("valid", "valid", priority=85),
    Col("invalid", "invalid", priority=84, short="inv"),
    Col("error", "error", priority=83),
    Col("findings", "findings", priority=70, short="finds"),
    Col("expected", "expected in/out (web)", priority=40, min=10, cap=30),
    Col("schema", "schema_title", priority=50, min=16, cap=48, shorten=cut_path("/")),
)


class StreamsScreen(ReloadingScreen):
    AUTO_FOCUS = "#streams-table"
    BINDINGS = [
        Binding("ctrl+r", "reload", "Reload", id="streams.reload"),
        Binding(
            "slash",
            "focus_whatif",
            "What-if",
            id="streams.focus_field",
            tooltip="the sampling what-if: type a rate for the selected stream",
        ),
        Binding(
            "o",
            "override_rate",
            "Override rate",
            id="streams.override",
            tooltip="override the stream's sample rate with the what-if's",
        ),
        Binding(
            "x",
            "clear_override",
            "Clear override",
            id="streams.delete_override",
            tooltip="clear the stream's rate override",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.configs: StreamConfigs | None = None
        self.config_problem: str | None = None
        self.rows: dict[str, StreamRow] = {}

    def compose(self) -> ComposeResult:
        yield StatusBar()
        yield Static("Reading stream configs…", id="streams-summary")
        yield FittedTable(COLUMNS, id="streams-table")
        yield Static("", id="stream-config")
        with Horizontal(id="whatif-bar"):
            yield Static("What if the selected stream sampled at rate", id="whatif-label")
            yield Input(placeholder="0.1", id="whatif-rate", restrict=r"[0-9.]*")
        yield Static("", id="whatif-result")
        yield KeyBar()

    def on_mount(self) -> None:
        self.action_reload()

    # -- refreshing ------------------------------------------------------------------------
    def action_reload(self) -> None:
        self._load()

    @work(exclusive=True, group="streams")
    async def _load(self) -> None:
        app = self.app
        settings = app.settings
        summary = self.query_one("#streams-summary", Static)
        if settings.stream_config and self.configs is None:
            try:
                self.configs = await asyncio.to_thread(load_location, settings.stream_config)
                self.config_problem = None
            except StreamConfigError as exc:
                self.config_problem = str(exc)
        reader = app.reader
        if reader is None:
            summary.update("No store yet.")
            return
        try:
            overrides = await asyncio.to_thread(app.overrides)
            rates = await app.read(overrides.rate_overrides) if overrides is not None else {}
            rows = await app.read_slow(self._read_rows, reader, self.configs, rates)
        except (StoreError, OverrideError) as exc:
            summary.update(Text(str(exc), style="bold red"))
            return
        self.rows = {r.name: r for r in rows}
        self._show(rows)

    @staticmethod
    def _read_rows(reader, configs: StreamConfigs | None, rates: dict[str, float]):
        seen = reader.seen_streams(MAX_STREAMS)
        names: list[str] = []
        if configs is not None:
            for key in configs.names():
                if key.startswith("/"):
                    matched = [s for s in seen if (m := configs.match(s)) and m.key == key]
                    names += matched or [key]
                else:
                    names.append(key)
        names += [s for s in seen if s not in names]
        rows = []
        for name in names[:MAX_STREAMS]:
            match = configs.match(name) if configs is not None else None
            sample = stream_sample(configs, name, rates)
            counts = {v: reader.count_events(EventFilter(stream=name, verdict=v)) for v in VERDICTS}
            flt = EventFilter(stream=name, query=parse_query("has:finding"))
            findings = reader.count_events(flt)
            expected = None
            if sample["rate"] is not None and sample["unit"] in UNITS:
                expected = sampling_whatif_stored(
                    reader, unit=sample["unit"], rate=sample["rate"], stream=name
                )["scopes"]["stream"]
            rows.append(
                StreamRow(
                    name=name,
                    key=None if match is None else match.key,
                    settings={} if match is None else dict(match.settings),
                    sample=sample,
                    counts=counts,
                    findings=findings,
                    expected=expected,
                )
            )
        return rows

    def _show(self, rows: list[StreamRow]) -> None:
        summary = self.query_one("#streams-summary", Static)
        line = Text()
        if self.app.settings.stream_config is None:
            line.append(" No --stream-config: every stream is allowed; ", style="yellow")
            line.append("listing the streams seen in the store.")
        elif self.config_problem:
            line.append(" ✖ stream configs not loaded: ", style="bold red")
            line.append_text(safe(self.config_problem, "red", 200))
        else:
            configs = self.configs
            line.append(f" {len(configs or ())} configured", style="bold")
            line.append_text(safe(f" from {shown_path(self.app.settings.stream_config)}", "dim"))
            for problem in (configs.problems if configs else [])[:3]:
                line.append("  ⚠ ", style="yellow")
                line.append_text(safe(problem, "yellow", 120))
        line.append("   o overrides the rate with the what-if's, x clears it", style="dim")
        summary.update(line)
        table = self.query_one("#streams-table", DataTable)
        selected = self.selected_stream
        table.clear()
        for r in rows:
            table.add_row(*self._cells(r), key=r.name)
        if selected in self.rows:
            table.move_cursor(row=list(self.rows).index(selected))

    @staticmethod
    def _valid(r: StreamRow) -> Text:
        """Valid events, and the legacy beacons of the stream (accepted unvalidated)."""
        cell = Text(f"{r.counts[VALID]:,}", "green", justify="right")
        if r.counts.get(LEGACY):
            cell.append(f" +{r.counts[LEGACY]:,} legacy", style="cyan")
        return cell

    def _cells(self, r: StreamRow) -> list[Text]:
        if r.key is None and self.configs is not None:
            name = safe(r.name, "bold yellow", 200).append(" undeclared", style="yellow")
        elif r.key is not None and r.key != r.name:
            name = safe(r.name, "bold", 200).append_text(safe(f" {r.key}", "dim", 100))
        else:
            name = safe(r.name, "bold", 200)
        s = r.sample
        rate = Text(_rate(s["configured_rate"]))
        if s["override_rate"] is not None:
            rate = Text(f"{_rate(s['configured_rate'])}→{_rate(s['override_rate'])}", "bold cyan")
            rate.append(" override", style="cyan")
        expected = Text("—", style="dim")
        if r.expected is not None:
            web = r.expected["web"]
            expected = Text.assemble(
                (f"{web['in_sample']:,}", "green"),
                " / ",
                (f"{web['out_of_sample']:,}", "red"),
                (f" of {r.expected['ids']:,}", "dim"),
            )
        return [
            name,
            safe(s["unit"] or "—"),
            rate,
            self._valid(r),
            Text(f"{r.counts[INVALID]:,}", "red" if r.counts[INVALID] else "dim", justify="right"),
            Text(f"{r.counts[ERROR]:,}", "yellow" if r.counts[ERROR] else "dim", justify="right"),
            Text(f"{r.findings:,}", "bold yellow" if r.findings else "dim", justify="right"),
            expected,
            safe(r.settings.get("schema_title") or "—", "", 200),
        ]

    @property
    def selected_stream(self) -> str | None:
        table = self.query_one("#streams-table", DataTable)
        return selected_row_key(table)

    # -- the what-if -----------------------------------------------------------------------
    def action_focus_whatif(self) -> None:
        self.query_one("#whatif-rate", Input).focus()

    def _typed_rate(self) -> float | None:
        text = self.query_one("#whatif-rate", Input).value.strip()
        try:
            rate = float(text)
        except ValueError:
            return None
        return rate if 0 <= rate <= 1 else None

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.whatif()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        row = self.rows.get(event.row_key.value or "")
        self.query_one("#stream-config", Static).update(
            render_config(row) if row is not None else ""
        )
        if self.query_one("#whatif-rate", Input).value.strip():
            self.whatif()

    @work(exclusive=True, group="streams-whatif")
    async def whatif(self) -> None:
        out = self.query_one("#whatif-result", Static)
        stream, rate = self.selected_stream, self._typed_rate()
        row = self.rows.get(stream or "")
        reader = self.app.reader
        if row is None or reader is None:
            out.update(Text("Select a stream first.", style="yellow"))
            return
        if rate is None:
            out.update(Text("Type a rate between 0 and 1 (Enter).", style="yellow"))
            return
        unit = row.sample["unit"]
        if unit not in UNITS:
            out.update(
                safe(f"{stream} has no sample unit (pageview, session or device) to try.", "yellow")
            )
            return
        result = await self.app.read_slow(
            sampling_whatif_stored, reader, unit=unit, rate=rate, stream=stream
        )
        out.update(render_whatif(stream, result))

    # -- overrides -------------------------------------------------------------------------
    def action_override_rate(self) -> None:
        stream, rate = self.selected_stream, self._typed_rate()
        if stream is None:
            self.notify("Select a stream first.", severity="warning")
        elif rate is None:
            self.notify("Type the rate in the what-if first (w).", severity="warning")
            self.action_focus_whatif()
        else:
            self._change(stream, rate)

    def action_clear_override(self) -> None:
        stream = self.selected_stream
        if stream is not None:
            self._change(stream, None)

    @work(exclusive=True, group="streams-override")
    async def _change(self, stream: str, rate: float | None) -> None:
        try:
            if rate is None:
                done = await self.app.change_overrides("delete", SAMPLE_RATE, stream)
                what = f"{stream}: rate override cleared" if done else ""
            else:
                await self.app.change_overrides("set", SAMPLE_RATE, stream, rate)
                what = f"{stream}: sample rate overridden to {rate:g}"
        except OverrideError as exc:
            self.notify(
                clean(exc, 300), markup=False, title="Override not changed", severity="error"
            )
            return
        if what:
            self.notify(clean(what, 200), markup=False)
            self.app.overrides_changed(what)
        else:
            self.notify(
                clean(f"{stream} has no rate override.", 200), markup=False, severity="warning"
            )

    def screen_commands(self):
        yield SystemCommand(
            "Reload streams", self.with_key("Count again", "reload"), self.action_reload
        )
        yield SystemCommand(
            "Sampling what-if",
            self.with_key("Type a rate for the selected stream", "focus_whatif"),
            self.action_focus_whatif,
        )
        yield SystemCommand(
            "Override the stream's sample rate",
            self.with_key("Set the what-if's rate as a local override", "override_rate"),
            self.action_override_rate,
        )
        yield SystemCommand(
            "Clear the stream's rate override",
            self.with_key("Back to the configured rate", "clear_override"),
            self.action_clear_override,
        )


def _provide_values(settings: dict[str, Any]) -> list[str]:
    producers = settings.get("producers")
    out: list[str] = []
    if isinstance(producers, dict):
        for p in producers.values():
            if isinstance(p, dict) and isinstance(p.get("provide_values"), list):
                out += [str(v) for v in p["provide_values"]]
    return out


def render_config(row: StreamRow) -> Text:
    """The selected stream's config summary, under the table."""
    t = Text(" ")
    t.append_text(safe(row.name, "bold"))
    if row.key is None:
        t.append("  not in the stream configs", style="dim")
        return t
    if row.key != row.name:
        t.append_text(safe(f"  by {row.key}", "dim"))
    t.append("\n schema_title ", style="dim")
    t.append_text(safe(row.settings.get("schema_title") or "—", "", 100))
    t.append("   destination ", style="dim")
    t.append_text(safe(row.settings.get("destination_event_service") or "—", "", 60))
    s = row.sample
    t.append("\n sample ", style="dim")
    t.append_text(safe(f"unit {s['unit'] or '—'}, rate {_rate(s['configured_rate'])}", ""))
    if s["override_rate"] is not None:
        t.append(f"  overridden locally to {_rate(s['override_rate'])}", style="bold cyan")
    t.append("   provide_values ", style="dim")
    t.append_text(safe(", ".join(_provide_values(row.settings)) or "—", "", 200))
    return t


def render_whatif(stream: str, result: dict[str, Any]) -> Text:
    t = Text()
    t.append_text(safe(stream, "bold"))
    t.append(f" at rate {result['rate']:g}", style="bold")
    t.append_text(safe(f", by {result['identifier_field'] or result['unit']}:", "dim"))
    for scope, label in (("stream", "this stream's"), ("all", "every captured")):
        counts = result["scopes"].get(scope)
        if counts is None:
            continue
        t.append(f"\n  {label} {counts['ids']:,} ids  ")
        for rule in ("web", "app"):
            c = counts[rule]
            t.append(f"{rule}: ", style="dim")
            t.append(f"{c['in_sample']:,} in", style="green")
            t.append(" / ")
            t.append(f"{c['out_of_sample']:,} out", style="red")
            t.append("   ")
    return t
