"""Experiments and flags: loaded experiments, enrollment seen in the store, the local
overrides (editable by key) and the ``mpo`` string that forces them on a dev wiki."""

from __future__ import annotations

import asyncio
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.widgets import DataTable, Static

from mpsandbox import jsonio
from mpsandbox.overrides import EXPERIMENT, FLAG, Override, OverrideError, parse_cli_value
from mpsandbox.platform.experiments import Experiments, ExperimentsError, load_experiments
from mpsandbox.query import parse_query
from mpsandbox.store import EventFilter, StoreError
from mpsandbox.tui.fit import Col, cut_end, cut_path
from mpsandbox.tui.messages import OverridesChanged
from mpsandbox.tui.paths import shown_path
from mpsandbox.tui.safe_text import clean, safe
from mpsandbox.tui.screens.base import ReloadingScreen, selected_row_key
from mpsandbox.tui.timefmt import short_time
from mpsandbox.tui.widgets.fitted_table import FittedTable
from mpsandbox.tui.widgets.key_bar import KeyBar
from mpsandbox.tui.widgets.status_bar import StatusBar

#: The experiment and what was enrolled stay; its settings go first.
EXPERIMENT_COLUMNS = (
    Col("name", "experiment", priority=100, min=16, cap=40),
    Col("groups", "groups", priority=60, min=10, cap=32),
    Col("rate", "sample rate", priority=40, min=6, cap=12),
    Col("unit", "unit", priority=30, min=4, cap=12),
    Col("stream", "stream", priority=50, min=12, cap=40, shorten=cut_path(".")),
    Col("enrolled", "events by group", priority=90, min=16, cap=60, shorten=cut_end),
    Col("override", "override", priority=80, min=8, cap=30),
)
OVERRIDE_COLUMNS = (
    Col("kind", "kind", priority=90),
    Col("key", "key", priority=100, min=12, cap=48, shorten=cut_path("./")),
    Col("value", "value", priority=95, min=10, cap=60),
    Col("by", "set by", priority=40, min=6, cap=16),
    Col("at", "set at", priority=50),
)


class ExperimentsScreen(ReloadingScreen):
    AUTO_FOCUS = "#experiments-table"
    BINDINGS = [
        Binding("ctrl+r", "reload", "Reload", id="experiments.reload"),
        Binding(
            "o",
            "next_group",
            "Override group",
            id="experiments.override",
            tooltip="override the experiment's group: none → first → … → last → none",
        ),
        Binding(
            "s",
            "set_flag",
            "Set flag",
            id="experiments.set_flag",
            tooltip="set a local flag override, name=value",
        ),
        Binding(
            "x,delete",
            "delete_override",
            "Delete override",
            id="experiments.delete_override",
            tooltip="delete the selected override",
        ),
        Binding(
            "z",
            "revert_last",
            "Undo",
            id="experiments.undo",
            tooltip="undo the last override change",
        ),
        Binding(
            "X",
            "clear_all",
            "Clear all",
            id="experiments.clear_all",
            tooltip="delete every local override (asks first)",
        ),
        Binding(
            "m",
            "copy_mpo",
            "Copy mpo",
            id="experiments.copy_mpo",
            tooltip="copy the mpo string (or the wiki URL with it)",
        ),
        Binding(
            "tab",
            "focus_next",
            "Switch pane",
            show=False,
            id="experiments.switch_pane",
            tooltip="between the experiments and the overrides",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.experiments: Experiments | None = None
        self.experiments_problem: str | None = None
        self.items: list[Override] = []
        self.mpo = ""
        self.wiki_url: str | None = None

    def compose(self) -> ComposeResult:
        yield StatusBar()
        yield Static("Reading experiments…", id="experiments-summary")
        yield FittedTable(EXPERIMENT_COLUMNS, id="experiments-table")
        yield Static("", id="mpo-line")
        yield Static("Local overrides", id="overrides-title")
        yield FittedTable(OVERRIDE_COLUMNS, id="overrides-table")
        yield KeyBar()

    def on_mount(self) -> None:
        self.action_reload()

    # -- refreshing ------------------------------------------------------------------------
    @on(OverridesChanged)
    def _overrides_changed(self, message: OverridesChanged) -> None:
        message.prevent_default()  # only the overrides: the experiments did not change
        self._load_overrides()

    def action_reload(self) -> None:
        self._load()
        self._load_overrides()

    @work(exclusive=True, group="experiments")
    async def _load(self) -> None:
        app = self.app
        path = app.settings.experiments_file
        if path and self.experiments is None:
            try:
                self.experiments = await asyncio.to_thread(load_experiments, path)
                self.experiments_problem = None
            except ExperimentsError as exc:
                self.experiments_problem = str(exc)
        reader = app.reader
        enrollment: dict[str, Any] = {"groups": [], "scanned": 0, "bounded": False}
        findings = 0
        if reader is not None:

            def read() -> tuple[dict[str, Any], int]:
                flt = EventFilter(query=parse_query("finding:experiment"))
                return reader.experiment_enrollment(), reader.count_events(flt)

            try:
                enrollment, findings = await app.read_slow(read)
            except StoreError as exc:
                self.query_one("#experiments-summary", Static).update(
                    Text(str(exc), style="bold red")
                )
                return
        self._show_experiments(enrollment, findings)

    def _show_experiments(self, enrollment: dict[str, Any], findings: int) -> None:
        by_name: dict[str, dict[str, int]] = {}
        for g in enrollment["groups"]:
            by_name.setdefault(g["experiment"], {})[str(g["group"])] = g["events"]
        summary = Text()
        if not self.app.settings.experiments_file:
            summary.append(" No --experiments loaded; ", style="yellow")
            summary.append("listing the experiments events name.")
        elif self.experiments_problem:
            summary.append(" ✖ experiments not loaded: ", style="bold red")
            summary.append_text(safe(self.experiments_problem, "red", 200))
        else:
            summary.append(f" {len(self.experiments or ())} experiments", style="bold")
            summary.append_text(
                safe(f" from {shown_path(self.app.settings.experiments_file)}", "dim")
            )
        summary.append("   ")
        summary.append(
            f"{findings:,} events with experiment findings",
            style="bold yellow" if findings else "dim",
        )
        summary.append(" (finding:experiment)", style="dim")
        if enrollment["bounded"]:
            summary.append(f"; counts over the newest {enrollment['scanned']:,}", style="dim")
        self.query_one("#experiments-summary", Static).update(summary)

        forced = {o.key: o.value for o in self.items if o.kind == EXPERIMENT}
        table = self.query_one("#experiments-table", DataTable)
        selected = self.selected_experiment
        table.clear()
        names = list(self.experiments or {})
        names += [n for n in by_name if n not in names]
        for name in names:
            exp = (self.experiments or {}).get(name)
            counts = by_name.get(name, {})
            enrolled = Text()
            for i, (group, n) in enumerate(sorted(counts.items())):
                if i:
                    enrolled.append(" · ", style="dim")
                unknown = exp is not None and group not in exp.groups
                enrolled.append_text(safe(group, "bold red" if unknown else "bold", 100))
                enrolled.append(f" {n:,}")
            if not counts:
                enrolled = Text("none", style="dim")
            override = Text("—", style="dim")
            if name in forced:
                override = safe(f"forced {forced[name]}", "bold cyan", 30)
            if exp is None:
                cells = [
                    safe(name, "bold yellow", 200).append(" not loaded", style="yellow"),
                    Text("—", style="dim"),
                    Text("—", style="dim"),
                    Text("—", style="dim"),
                    Text("—", style="dim"),
                ]
            else:
                rate = f"{exp.default_rate:g}"
                if exp.wiki_rates:
                    rate += f" (+{len(exp.wiki_rates)} per wiki)"
                cells = [
                    safe(name, "bold", 200),
                    safe(", ".join(exp.groups), "", 200),
                    Text(rate),
                    safe(exp.sampling_unit),
                    safe(exp.stream or "—", "", 200),
                ]
            table.add_row(*cells, enrolled, override, key=name)
        if selected in names:
            table.move_cursor(row=names.index(selected))

    @work(exclusive=True, group="overrides")
    async def _load_overrides(self) -> None:
        try:
            overrides = await asyncio.to_thread(self.app.overrides)
            if overrides is None:
                return
            items = await self.app.read(overrides.list)
            mpo, wiki = await self.app.read(lambda: (overrides.mpo(), overrides.wiki_url()))
        except (StoreError, OverrideError) as exc:
            self.query_one("#mpo-line", Static).update(Text(str(exc), style="bold red"))
            return
        self.items, self.mpo, self.wiki_url = items, mpo, wiki
        self._show_overrides()

    def _show_overrides(self) -> None:
        line = Text(" mpo ", style="bold")
        if self.mpo:
            line.append_text(safe(self.mpo, "bold cyan", 200))
            line.append("  (m copies it", style="dim")
            line.append(" and the wiki URL)" if self.wiki_url else ")", style="dim")
        else:
            line.append(
                "(no experiment overrides; g forces the selected one's next group)", style="dim"
            )
        if self.wiki_url:
            line.append("\n wiki ", style="bold")
            line.append_text(safe(self.wiki_url, "cyan", 300))
        self.query_one("#mpo-line", Static).update(line)
        table = self.query_one("#overrides-table", DataTable)
        table.clear()
        for o in self.items:
            table.add_row(
                safe(o.kind, "bold"),
                safe(o.key, "", 200),
                safe(jsonio.dumps_str(o.value), "cyan", 300),
                safe(o.set_by, "dim"),
                short_time(o.set_at),
                key=f"{o.kind}\x00{o.key}",
            )
        title = Text.assemble(
            (f"Local overrides ({len(self.items)})", "bold"),
            (
                "  f sets a flag, d deletes the selected override, z undoes the last change,"
                " X clears all",
                "dim",
            ),
        )
        self.query_one("#overrides-title", Static).update(title)
        # The experiments' override column follows the overrides.
        table = self.query_one("#experiments-table", DataTable)
        forced = {o.key: o.value for o in self.items if o.kind == EXPERIMENT}
        for row_key in list(table.rows):
            name = row_key.value
            cell = Text("—", style="dim")
            if name in forced:
                cell = safe(f"forced {forced[name]}", "bold cyan", 30)
            table.update_cell(row_key, "override", cell)

    def _selected(self, table_id: str) -> str | None:
        table = self.query_one(table_id, DataTable)
        return selected_row_key(table)

    @property
    def selected_experiment(self) -> str | None:
        return self._selected("#experiments-table")

    @property
    def selected_override(self) -> tuple[str, str] | None:
        key = self._selected("#overrides-table")
        if key is None:
            return None
        kind, _, name = key.partition("\x00")
        return kind, name

    # -- changing overrides -----------------------------------------------------------------
    @work(group="override-change")
    async def change(self, method: str, *args: Any) -> Any:
        """Ask the intake for one change of the overrides (``set``, ``delete``,
        ``clear_all``, ``revert_last``; it validates and commits it, by "tui"); tell every
        screen once it committed."""
        try:
            result = await self.app.change_overrides(method, *args)
        except OverrideError as exc:
            self.notify(
                clean(exc, 300), markup=False, title="Overrides not changed", severity="error"
            )
            return None
        what = _describe(method, args, result)
        self.notify(clean(what, 300), markup=False)
        self.app.overrides_changed(what)
        return result

    def action_next_group(self) -> None:
        """Force the selected experiment's next group (none → first → … → last → none)."""
        name = self.selected_experiment
        exp = (self.experiments or {}).get(name or "")
        if exp is None:
            self.notify("Select a loaded experiment first.", severity="warning")
            return
        current = next(
            (o.value for o in self.items if o.kind == EXPERIMENT and o.key == name), None
        )
        groups = list(exp.groups)
        index = groups.index(current) + 1 if current in groups else 0
        if index < len(groups):
            self.change("set", EXPERIMENT, name, groups[index])
        else:
            self.change("delete", EXPERIMENT, name)

    def action_set_flag(self) -> None:
        from mpsandbox.tui.screens.prompt import PromptScreen

        def answered(text: str | None) -> None:
            if not text or not text.strip():
                return
            name, sep, value = text.partition("=")
            if not sep:
                self.notify("Write name=value, e.g. dark-mode=true", severity="warning")
                return
            self.change("set", FLAG, name.strip(), parse_cli_value(FLAG, value.strip()))

        self.app.push_screen(
            PromptScreen("Set a flag: name=value (JSON, or plain text)", "dark-mode=true"),
            answered,
        )

    def action_delete_override(self) -> None:
        if self.focused is self.query_one("#experiments-table", DataTable):
            name = self.selected_experiment
            if name and any(o.kind == EXPERIMENT and o.key == name for o in self.items):
                self.change("delete", EXPERIMENT, name)
                return
        chosen = self.selected_override
        if chosen is None:
            self.notify("No override selected.", severity="warning")
            return
        self.change("delete", *chosen)

    def action_revert_last(self) -> None:
        self.change("revert_last")

    def action_clear_all(self) -> None:
        from mpsandbox.tui.screens.confirm import ConfirmScreen

        if not self.items:
            self.notify("There are no overrides to clear.", severity="warning")
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.change("clear_all")

        self.app.push_screen(
            ConfirmScreen(
                f"Remove all {len(self.items)} local overrides? (z brings them back)",
                "Clear all",
            ),
            confirmed,
        )

    def action_copy_mpo(self) -> None:
        if not self.mpo:
            self.notify("No experiment overrides: the mpo string is empty.", severity="warning")
            return
        text = self.wiki_url or self.mpo
        self.app.copy_to_clipboard(text)
        self.notify(
            clean(f"Copied {'the wiki URL' if self.wiki_url else 'mpo'}: {text}", 300), markup=False
        )

    def screen_commands(self):
        yield SystemCommand(
            "Reload experiments", self.with_key("Read again", "reload"), self.action_reload
        )
        yield SystemCommand(
            "Force the experiment's next group",
            self.with_key("Override the selected experiment's group", "next_group"),
            self.action_next_group,
        )
        yield SystemCommand(
            "Set a flag",
            self.with_key("A local flag override, name=value", "set_flag"),
            self.action_set_flag,
        )
        yield SystemCommand(
            "Delete the selected override",
            self.with_key("Remove one override", "delete_override"),
            self.action_delete_override,
        )
        yield SystemCommand(
            "Undo the last override change",
            self.with_key("Revert the newest change", "revert_last"),
            self.action_revert_last,
        )
        yield SystemCommand(
            "Clear all overrides",
            self.with_key("Remove every local override", "clear_all"),
            self.action_clear_all,
        )
        yield SystemCommand(
            "Copy the mpo string",
            self.with_key("The ?mpo= value, or the wiki URL with it, to the clipboard", "copy_mpo"),
            self.action_copy_mpo,
        )


def _describe(method: str, args: tuple, result: Any) -> str:
    if method == "set":
        kind, key, value = args
        return f"{kind} {key} set to {jsonio.dumps_str(value)}"
    if method == "delete":
        kind, key = args
        return f"{kind} {key} override removed" if result else f"{kind} {key} had no override"
    if method == "clear_all":
        return f"cleared {len(result or [])} overrides"
    if method == "revert_last":
        if not result:
            return "nothing to undo"
        return f"undid the last {result['undone']['action']} ({len(result['changes'])} changed)"
    return method
