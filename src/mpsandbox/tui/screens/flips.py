"""Flips: stored events whose verdict changed when a schema change had them judged again.

The runs above (newest first: what triggered each, how many events it judged, what flipped),
the flips of the selected run below; Enter on a flip opens the event, whose detail shows
its verdict history. The stored verdicts themselves never change.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.widgets import DataTable, Static

from mpsandbox.store import StoreError
from mpsandbox.tui.fit import Col, cut_end, cut_path
from mpsandbox.tui.messages import Revalidated
from mpsandbox.tui.safe_text import safe
from mpsandbox.tui.screens.base import ReloadingScreen
from mpsandbox.tui.timefmt import short_time
from mpsandbox.tui.widgets.event_table import BADGES
from mpsandbox.tui.widgets.fitted_table import FittedTable
from mpsandbox.tui.widgets.key_bar import KeyBar
from mpsandbox.tui.widgets.status_bar import StatusBar
from mpsandbox.wording import plural

#: Flips listed for the selected run.
FLIPS_SHOWN = 500


def verdict_change(before: str, after: str) -> Text:
    b_label, b_style = BADGES.get(before, (before, ""))
    a_label, a_style = BADGES.get(after, (after, ""))
    return Text.assemble((b_label, b_style), " → ", (a_label, a_style))


def first_error(flip: dict[str, Any]) -> Text:
    """The first error after the flip (or, flipping to valid, the one it no longer has)."""
    errors = flip.get("after_errors") or flip.get("before_errors") or []
    if not errors:
        return safe(flip.get("after_message") or "", "dim", 80)
    e = errors[0]
    field = (e.get("dataPath") or "").lstrip(".") or "(the event)"
    more = f"  (+{len(errors) - 1})" if len(errors) > 1 else ""
    gone = "" if flip.get("after_errors") else "fixed: "
    return Text.assemble(
        (gone, "green"), safe(field, "bold", 40), " ", safe(e.get("message"), "", 60), more
    )


RUN_COLUMNS = (
    Col("run", "run", priority=100),
    Col("at", "at", priority=60),
    Col("trigger", "trigger", priority=50, min=6, cap=20),
    Col("schemas", "schemas", priority=70, min=12, cap=50, shorten=cut_end),
    Col("checked", "judged", priority=80),
    Col("flipped", "flipped", priority=90, short="flips"),
    Col("changes", "changes", priority=75, min=10, cap=40),
    Col("seconds", "took", priority=30),
)
FLIP_COLUMNS = (
    Col("event", "event", priority=100),
    Col("change", "verdict", priority=95),
    Col("stream", "stream", priority=70, min=12, cap=40, shorten=cut_path(".")),
    Col("action", "action", priority=75, min=10, cap=32),
    Col("schema", "schema", priority=60, min=16, cap=50, shorten=cut_path("/")),
    Col("error", "first error now", priority=80, min=16, cap=80, shorten=cut_end),
)


class FlipsScreen(ReloadingScreen):
    AUTO_FOCUS = "#runs-table"
    BINDINGS = [
        Binding(
            "r",
            "app.revalidate",
            "Re-validate now",
            id="flips.revalidate",
            tooltip="judge the newest stored events again now (also on schema file changes)",
        ),
        Binding("ctrl+r", "reload", "Reload", id="flips.reload"),
        Binding(
            "tab",
            "focus_next",
            "Switch pane",
            show=False,
            id="flips.switch_pane",
            tooltip="between the runs and their flips",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.run_id: int | None = None
        self.runs: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        yield StatusBar()
        yield Static("Reading re-validation runs…", id="flips-summary")
        yield FittedTable(RUN_COLUMNS, id="runs-table")
        yield Static("Select a run (Enter) to see its flips.", id="flips-title")
        yield FittedTable(FLIP_COLUMNS, id="flips-table")
        yield KeyBar()

    def on_mount(self) -> None:
        self.action_reload()

    @on(Revalidated)
    def _show_new_run(self) -> None:
        self.run_id = None  # show the new run
        self.action_reload()

    def action_reload(self) -> None:
        self._load()

    @work(exclusive=True, group="flips")
    async def _load(self) -> None:
        reader = self.app.reader
        summary = self.query_one("#flips-summary", Static)
        if reader is None:
            summary.update("No store yet.")
            return
        try:
            runs = await self.app.read(reader.list_revalidations, 50)
            run_id = self.run_id if self.run_id is not None else (runs[0]["id"] if runs else None)
            flips = (
                await self.app.read(reader.list_flips, run=run_id, limit=FLIPS_SHOWN)
                if run_id is not None
                else []
            )
        except StoreError as exc:
            summary.update(Text(str(exc), style="bold red"))
            return
        self.runs = runs
        self._show_runs(runs, run_id)
        self._show_flips(flips, run_id)

    def _show_runs(self, runs: list[dict[str, Any]], run_id: int | None) -> None:
        table = self.query_one("#runs-table", DataTable)
        table.clear()
        for run in runs:
            changes = (run.get("summary") or {}).get("by_change") or {}
            titles = run.get("titles")
            table.add_row(
                Text(f"#{run['id']}", style="bold"),
                short_time(run.get("started_at")),
                safe(run.get("trigger")),
                safe("every schema" if titles is None else ", ".join(titles), "", 300),
                Text(f"{run['checked']:,}", justify="right"),
                Text(
                    f"{run['flipped']:,}",
                    style="bold yellow" if run["flipped"] else "dim",
                    justify="right",
                ),
                Text(", ".join(f"{n:,} {c}" for c, n in sorted(changes.items())) or "—"),
                Text(f"{run['seconds']:.2f} s", style="dim", justify="right"),
                key=str(run["id"]),
            )
        for i, run in enumerate(runs):
            if run["id"] == run_id:
                table.move_cursor(row=i)
        summary = self.query_one("#flips-summary", Static)
        if not runs:
            summary.update(
                Text.assemble(
                    (" No re-validation yet. ", "bold"),
                    "Edit a schema file under --schemas and the stored events of that "
                    "schema are judged again; r judges the newest events of every schema now.",
                )
            )
            return
        flipped = sum(r["flipped"] for r in runs)
        summary.update(
            Text.assemble(
                (f" {len(runs):,} re-validation runs", "bold"),
                f", {flipped:,} verdicts flipped. Stored verdicts never change: a flip is "
                "kept beside the event. Enter on a flip opens the event.",
            )
        )

    def _show_flips(self, flips: list[dict[str, Any]], run_id: int | None) -> None:
        title = self.query_one("#flips-title", Static)
        table = self.query_one("#flips-table", DataTable)
        table.clear()
        if run_id is None:
            title.update("")
            return
        for flip in flips:
            table.add_row(
                Text(f"#{flip['event_id']}", style="bold"),
                verdict_change(flip["before_verdict"], flip["after_verdict"]),
                safe(flip.get("stream"), "", 200),
                safe(flip.get("action"), "", 200),
                safe(flip.get("schema_uri"), "", 200),
                first_error(flip),
                key=str(flip["event_id"]),
            )
        title.update(Text.assemble((f" Run #{run_id}: ", "bold"), plural(len(flips), "flip")))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.data_table.id == "runs-table":
            self.run_id = int(event.row_key.value)
            self.action_reload()
            self.query_one("#flips-table", DataTable).focus()
        elif event.row_key.value:
            from mpsandbox.tui.screens.detail import DetailScreen

            self.app.push_screen(DetailScreen(int(event.row_key.value)))

    def screen_commands(self):
        yield SystemCommand(
            "Reload flips",
            self.with_key("Read the runs and flips again", "reload"),
            self.action_reload,
        )
