"""Schema sources: what each holds, which files would not load, and a resolve probe, all
asked of the running intake's registry (see tui/schema_questions.py)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Input, Static

from mpsandbox.errors import MpsandboxError
from mpsandbox.schemas.catalog import SourceCatalog
from mpsandbox.tui.messages import Revalidated
from mpsandbox.tui.paths import shown_path
from mpsandbox.tui.safe_text import safe
from mpsandbox.tui.screens.keys import KeyedScreen
from mpsandbox.tui.widgets.key_bar import KeyBar
from mpsandbox.tui.widgets.status_bar import StatusBar
from mpsandbox.wording import plural

#: Titles listed per source before "… N more".
TITLES_SHOWN = 60


class SchemasScreen(KeyedScreen):
    AUTO_FOCUS = "#schemas-body"
    BINDINGS = [
        Binding(
            "ctrl+r",
            "rescan",
            "Rescan",
            id="schemas.reload",
            tooltip="read the schema sources again",
        ),
        Binding(
            "slash",
            "focus_probe",
            "Probe",
            id="schemas.focus_field",
            tooltip="type a $schema URI to resolve",
        ),
    ]

    def compose(self) -> ComposeResult:
        yield StatusBar()
        with Horizontal(id="probe-bar"):
            yield Input(
                placeholder="$schema URI to resolve, e.g. /analytics/mediawiki/"
                "client/metrics_event/2.1.0",
                id="probe-input",
            )
            yield Button("Resolve", id="probe-button")
        with VerticalScroll(id="schemas-body"):
            yield Static("", id="probe-result")
            yield Static("Scanning schema sources…", id="sources")
        yield KeyBar()

    def on_mount(self) -> None:
        self.action_rescan()

    def action_focus_probe(self) -> None:
        self.query_one("#probe-input", Input).focus()

    def action_rescan(self) -> None:
        self.app.schema_questions.rescan()
        self._scan()

    @on(Revalidated)
    def _rescan_after_revalidation(self) -> None:
        """A schema file changed (the intake re-judged stored events): show what the files
        hold now, including any that stopped parsing."""
        self.action_rescan()

    @work(exclusive=True, group="schema-scan")
    async def _scan(self) -> None:
        app = self.app
        out = self.query_one("#sources", Static)
        try:
            catalogs, load_errors = await app.read_slow(app.schema_questions.sources, app.host)
        except MpsandboxError as exc:
            out.update(safe(f"The schema sources could not be read: {exc}", "bold red", 500))
            return
        out.update(render_sources(catalogs, load_errors))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.probe(event.value)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.probe(self.query_one("#probe-input", Input).value)

    @work(exclusive=True, group="schema-probe")
    async def probe(self, uri: str) -> None:
        uri = uri.strip()
        out = self.query_one("#probe-result", Static)
        if not uri:
            out.update(Text("Type a $schema URI first.", style="yellow"))
            return
        app = self.app
        try:
            answer = await app.read_slow(app.schema_questions.probe, app.host, uri)
        except MpsandboxError as exc:
            out.update(safe(f"{uri}: not asked ({exc})", "bold red", 500))
            return
        out.update(render_resolution(answer))


def render_resolution(res: dict[str, Any]) -> Text:
    """A probe's answer (``Resolution.probe``), for people."""
    t = Text()
    t.append_text(safe(res["schema_uri"], "bold"))
    if res["found"]:
        t.append("  ✔ resolves\n", style="bold green")
        t.append("  from ", style="dim")
        t.append_text(safe(shown_path(res.get("schema_location"))))
        t.append_text(safe(f"  ({shown_path(res.get('schema_source'))})", "dim"))
        if res.get("title"):
            t.append("\n  title ", style="dim")
            t.append_text(safe(f"{res['title']}  version {res.get('version') or '?'}"))
    else:
        t.append("  ✖ does not resolve\n", style="bold red")
        t.append_text(safe(res.get("reason") or res.get("message") or "not found"))
    for source, tried in _attempts_by_source(res.get("tried") or []):
        t.append("\n  tried ", style="dim")
        t.append_text(safe(shown_path(source), "", 300))
        for line in tried:
            t.append("\n    ")
            t.append_text(safe(line, "", 300))
    for title, versions in (res.get("available_versions") or {}).items():
        t.append("\n  available ", style="dim")
        t.append_text(safe(f"{shown_path(title)}: {', '.join(versions)}"))
    for hint in res.get("hints") or []:
        t.append("\n  hint ", style="bold cyan")
        t.append_text(safe(hint))
    return t


def _endings(others: list[str]) -> str:
    return f" ({', '.join(others)})" if others else ""


def _attempts_by_source(attempts) -> list[tuple[str, list[str]]]:
    """Each source once, with what was tried in it: locations under the source's own path
    are shown relative to it, and the same file tried with other extensions and the same
    outcome is one line (``web/base/9.9.9 (.yaml, .json) → not found``)."""
    grouped: dict[str, list[tuple[str, str]]] = {}
    for a in attempts:
        location = str(a["location"])
        prefix = str(a["source"]).rstrip("/") + "/"
        location = location[len(prefix) :] if location.startswith(prefix) else shown_path(location)
        grouped.setdefault(str(a["source"]), []).append((location, a["outcome"]))
    out: list[tuple[str, list[str]]] = []
    for source, tried in grouped.items():
        # (stem, outcome, the other endings tried with that outcome)
        runs: list[tuple[str, str, list[str]]] = []
        for location, result in tried:
            if runs and result == runs[-1][1] and location.startswith(runs[-1][0]):
                runs[-1][2].append(location[len(runs[-1][0]) :])
            else:
                runs.append((location, result, []))
        lines = [f"{stem}{_endings(others)} → {result}" for stem, result, others in runs]
        out.append((source, lines))
    return out


def render_sources(catalogs: list[SourceCatalog], load_errors: dict[str, str]) -> Text:
    """Problems first (they are why people open this screen), then what each source holds."""
    t = Text()
    problems = {path: msg for c in catalogs for path, msg in c.problems.items()}
    problems.update(load_errors)
    if problems:
        t.append(
            f"✖ {plural(len(problems), 'schema file')} would not load",
            style="bold red",
        )
        for path, message in problems.items():
            t.append("\n   ")
            t.append_text(safe(path, "bold red"))
            t.append("\n     ")
            t.append_text(safe(message, "red", 500))
    else:
        t.append("✔ every schema file checked loads", style="green")
    for i, c in enumerate(catalogs, 1):
        t.append("\n\n")
        t.append(f"{i}. ", style="bold")
        t.append_text(safe(shown_path(c.name), "bold"))
        # A directory source is named by its path: show it once.
        where = f" {shown_path(c.location)}" if str(c.location) != str(c.name) else ""
        t.append_text(safe(f"  [{c.kind}]{where}", "dim"))
        if c.note:
            t.append("\n   ")
            t.append_text(safe(c.note, "dim"))
        if c.kind == "directory":
            more = "+" if c.truncated else ""
            bad = f", {len(c.problems)} broken" if c.problems else ""
            t.append(
                f"\n   {len(c.titles):,}{more} schemas, {c.version_count:,} versions{bad}",
                style="red" if c.problems else ("green" if c.titles else "yellow"),
            )
        for n, (title, versions) in enumerate(c.titles.items()):
            if n == TITLES_SHOWN:
                t.append(f"\n   … {len(c.titles) - TITLES_SHOWN:,} more", style="dim")
                break
            t.append("\n   ")
            t.append_text(safe(title))
            t.append_text(safe("  " + ", ".join(versions[-4:]), "dim"))
            if len(versions) > 4:
                t.append(f" (+{len(versions) - 4} older)", style="dim")
    return t
