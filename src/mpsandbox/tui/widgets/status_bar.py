"""The header every screen shows: where the intake listens, what judges, what arrived."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from mpsandbox.records import ERROR, INVALID, LEGACY, VALID
from mpsandbox.tui.safe_text import clean


class StatusBar(Static):
    """Listen address, schema sources, counts by verdict and events per second; a CHAOS
    badge with the spec while chaos is on, and a line when a schema host is unreachable."""

    DEFAULT_CSS = "StatusBar { height: 1; }"

    def on_mount(self) -> None:
        self.watch(self.app, "status", self._show, init=True)

    def _show(self, status) -> None:
        # One line, always: no need to lay out the screen (the counts change ten times a
        # second while events stream in).
        self.update(status_text(status), layout=False)


def status_text(status) -> Text:
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append(" mpsandbox ", style="bold reverse")
    line.append(" ")
    if status.chaos:
        # First after the name, so a narrow terminal still shows it.
        line.append(" ⚡ CHAOS ", style="bold white on red")
        line.append(" ")
        line.append(clean(status.chaos, 60), style="bold red")
        line.append("  │ ", style="dim")
    if status.store_alarm:
        # Before everything else: events sent now are not acknowledged.
        line.append(" ✖ STORE ", style="bold white on red")
        line.append(" ")
        line.append(clean(status.store_alarm, 120), style="bold red")
    if status.schemas_unreachable:
        # Early too: events of schemas not held locally are errors until it is back.
        line.append("⚠ " + clean(status.schemas_unreachable, 160), style="bold yellow")
        line.append("  │ ", style="dim")
    if status.read_only:
        line.append("read-only", style="bold yellow")
    elif status.listening:
        paths = status.intake_paths[:1] or ("",)
        line.append("● ", style="bold green")
        line.append(clean(f"{status.url}{paths[0]}"), style="bold")
    elif status.starting:
        line.append("◌ starting on port ", style="yellow")
        line.append(str(status.port), style="yellow")
    elif status.store_problem:
        line.append("✖ store unusable: ", style="bold red")
        line.append(clean(status.store_problem, 160), style="red")
    elif status.port_problem:
        line.append(f"✖ not listening: port {status.port} is busy", style="bold red")
    else:
        line.append("✖ not listening", style="bold red")
    line.append("  │ ", style="dim")
    line.append(f"✔ {status.counts.get(VALID, 0):,}", style="green")
    line.append("  ")
    line.append(f"✖ {status.counts.get(INVALID, 0):,}", style="red")
    line.append("  ")
    line.append(f"⚠ {status.counts.get(ERROR, 0):,}", style="yellow")
    legacy = status.counts.get(LEGACY, 0)
    if legacy:  # only once a legacy beacon arrived: most sandboxes never see one
        line.append("  ")
        line.append(f"◇ {legacy:,} legacy", style="cyan")
    line.append("  │ ", style="dim")
    line.append(f"{status.rate:,.0f} ev/s")
    line.append("  │ ", style="dim")
    line.append("schemas: " + clean(", ".join(status.sources) or "none"), style="dim")
    return line
