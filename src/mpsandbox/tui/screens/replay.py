"""Replay: send a fixture file's requests again, into this sandbox or to any intake URL.

The screen gathers the same choices as ``mpsandbox replay`` (file, target, pacing, ``dt``,
ids), previews the file (its format and how many requests), and runs
:func:`mpsandbox.fixtures.replay.replay` on a worker thread; the core reports progress,
the screen shows it. "This sandbox" means the running intake's URL, so the replayed events
come in over HTTP like any client's and the Live screen shows them arriving. Cancel stops
sending at once (requests in flight finish).
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, ProgressBar, Select, Static

from mpsandbox.fixtures.replay import TRANSPORT, Progress, ReplayOptions
from mpsandbox.tui.paths import typed_path
from mpsandbox.tui.safe_text import clean, safe
from mpsandbox.tui.screens.keys import BACK, KeyedScreen
from mpsandbox.tui.widgets.key_bar import KeyBar
from mpsandbox.tui.widgets.status_bar import StatusBar

THIS_SANDBOX = "sandbox"
#: Shortest gap between two progress repaints while a replay runs.
PROGRESS_INTERVAL = 0.1

TARGETS = [("this sandbox's intake", THIS_SANDBOX), ("another intake (URL)", "url")]
PACINGS = [
    ("one at a time, in order", "sequential"),
    ("N requests per second", "rate"),
    ("fast (16 in flight)", "fast"),
    ("original timing", "original"),
]
DTS = [("dt as sent", "keep"), ("dt shifted to now", "shift"), ("dt set to send time", "now")]
IDS = [("ids as sent", "keep"), ("fresh ids", "fresh")]


class ReplayScreen(KeyedScreen):
    AUTO_FOCUS = "#replay-start"
    BINDINGS = [
        Binding("ctrl+s", "start", "Start", id="replay.start", tooltip="start the replay"),
        Binding(
            "escape", "escape", "Cancel", id=BACK, tooltip="leave a field; cancel a running replay"
        ),
        Binding(
            "slash",
            "focus_file",
            "File",
            id="replay.focus_field",
            tooltip="type the fixture file's path",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.running = False
        self._cancel = threading.Event()
        self._last_paint = 0.0
        self.progress: Progress | None = None

    def compose(self) -> ComposeResult:
        yield StatusBar()
        yield Static(
            Text.assemble(
                (" Replay ", "bold"),
                "a fixture (mpsandbox export, EventGate events.json, a HAR from devtools, a "
                "JSON array of events) into this sandbox or any EventGate-compatible intake.",
            ),
            id="replay-summary",
        )
        with Vertical(id="replay-form"):
            with Horizontal(classes="replay-row"):
                yield Static("File", classes="replay-label")
                yield Input(placeholder="path of the fixture file", id="replay-file")
            yield Static("", id="replay-preview")
            with Horizontal(classes="replay-row"):
                yield Static("Target", classes="replay-label")
                yield Select(TARGETS, value=THIS_SANDBOX, allow_blank=False, id="replay-target")
                yield Input(placeholder="http://127.0.0.1:8192/v1/events", id="replay-url")
            with Horizontal(classes="replay-row"):
                yield Static("Pace", classes="replay-label")
                yield Select(PACINGS, value="sequential", allow_blank=False, id="replay-pacing")
                yield Input(placeholder="requests/s", id="replay-rate", restrict=r"[0-9.]*")
            with Horizontal(classes="replay-row"):
                yield Static("Rewrite", classes="replay-label")
                yield Select(DTS, value="keep", allow_blank=False, id="replay-dt")
                yield Select(IDS, value="keep", allow_blank=False, id="replay-ids")
            with Horizontal(classes="replay-row"):
                yield Static("", classes="replay-label")
                yield Button("Start", id="replay-start", variant="primary")
                yield Button("Cancel", id="replay-cancel", disabled=True)
        yield ProgressBar(total=1, id="replay-progress", show_eta=False)
        yield Static("Not started.", id="replay-status")
        yield KeyBar()

    def on_mount(self) -> None:
        self._sync_inputs()

    # -- the form --------------------------------------------------------------------------
    def action_focus_file(self) -> None:
        self.query_one("#replay-file", Input).focus()

    @on(Select.Changed)
    def _sync_inputs(self) -> None:
        target = self.query_one("#replay-target", Select).value
        pacing = self.query_one("#replay-pacing", Select).value
        self.query_one("#replay-url", Input).display = target == "url"
        self.query_one("#replay-rate", Input).display = pacing == "rate"

    @on(Input.Changed, "#replay-file")
    def _file_changed(self, event: Input.Changed) -> None:
        self._preview(event.value)

    @on(Input.Submitted, "#replay-file")
    def _file_submitted(self) -> None:
        self.query_one("#replay-start", Button).focus()

    @work(exclusive=True, group="replay-preview")
    async def _preview(self, path: str) -> None:
        await asyncio.sleep(0.25)  # typing: read the file once it stops changing
        preview = self.query_one("#replay-preview", Static)
        if not path.strip():
            preview.update("")
            return
        from mpsandbox.fixtures import FixtureError, read_fixture

        try:
            fixture = await asyncio.to_thread(read_fixture, typed_path(path))
        except FixtureError as exc:
            preview.update(safe(str(exc), "red", 300))
            return
        text = Text.assemble(
            (f"{len(fixture.requests):,} requests", "bold"), f" ({fixture.format_name})"
        )
        if fixture.problems:
            text.append(
                f"; {len(fixture.problems):,} lines skipped, first: {fixture.problems[0]}",
                "yellow",
            )
        preview.update(text)
        bar = self.query_one("#replay-progress", ProgressBar)
        if not self.running:
            bar.update(total=max(1, len(fixture.requests)), progress=0)

    def _options(self) -> tuple[str | None, ReplayOptions] | None:
        """The target URL (None: this sandbox) and the options; None after telling why
        the form cannot be used."""
        target = self.query_one("#replay-target", Select).value
        pacing = self.query_one("#replay-pacing", Select).value
        rate = None
        if pacing == "rate":
            try:
                rate = float(self.query_one("#replay-rate", Input).value)
            except ValueError:
                rate = None
            if not rate or rate <= 0:
                return self._refuse("Give a rate above 0 requests per second.")
        options = ReplayOptions(
            pacing=pacing,  # type: ignore[arg-type]
            rate=rate,
            dt=self.query_one("#replay-dt", Select).value,  # type: ignore[arg-type]
            ids=self.query_one("#replay-ids", Select).value,  # type: ignore[arg-type]
        )
        if target == "url":
            url = self.query_one("#replay-url", Input).value.strip()
            if not url:
                return self._refuse("Give the intake's URL, or choose this sandbox.")
            return url, options
        status = self.app.status
        if not status.listening or not status.url:
            return self._refuse(
                "This sandbox's intake is not running (a read-only view): replay to a URL."
            )
        paths = status.intake_paths or ("/v1/events",)
        return status.url + paths[0], options

    def _refuse(self, why: str) -> None:
        """Say why the replay cannot start, where the outcome would have been shown."""
        self.query_one("#replay-status", Static).update(Text(why, style="bold yellow"))
        self.notify(why, severity="warning")

    # -- intents ---------------------------------------------------------------------------
    @on(Button.Pressed, "#replay-start")
    def action_start(self) -> None:
        if self.running:
            self.notify("A replay is running; cancel it first.", severity="warning")
            return
        path = self.query_one("#replay-file", Input).value.strip()
        if not path:
            self._refuse("Choose a fixture file first (/ to type its path).")
            return
        chosen = self._options()
        if chosen is None:
            return
        url, options = chosen
        self._cancel = threading.Event()
        self.progress = None  # this run's, once the worker reports
        self._set_running(True)
        self.query_one("#replay-status", Static).update(f"Reading {path}…")
        self._run(path, url, options, self._cancel)

    @on(Button.Pressed, "#replay-cancel")
    def action_cancel(self) -> None:
        if self.running:
            self._cancel.set()
            self.query_one("#replay-status", Static).update("Cancelling…")

    def _set_running(self, running: bool) -> None:
        self.running = running
        self.query_one("#replay-start", Button).disabled = running
        self.query_one("#replay-cancel", Button).disabled = not running
        self.refresh_bindings()

    def action_escape(self) -> None:
        """Out of a field (or a choice) first, to the Start button; then Esc cancels a
        running replay."""
        if self.running and not isinstance(self.focused, Input):
            self.action_cancel()
        else:
            self.focus_home()

    @property
    def home(self) -> Button | None:
        # While a replay runs Start is disabled (it cannot take the focus): Cancel can.
        return next(iter(self.query("#replay-cancel" if self.running else "#replay-start")), None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "escape":
            return self.running or self.focused is not self.home or None
        if action == "start":
            return not self.running or None
        return True

    @work(thread=True, exclusive=True, group="replay")
    def _run(self, path: str, url: str, options: ReplayOptions, cancel: threading.Event) -> None:
        """On a worker thread: read the file and replay it, reporting back to the screen."""
        from mpsandbox.fixtures import FixtureError, read_fixture
        from mpsandbox.fixtures.replay import replay

        try:
            fixture = read_fixture(typed_path(path))
            progress = replay(
                fixture.requests,
                to=url,
                options=options,
                on_progress=self._from_worker,
                cancel=cancel,
            )
        except (FixtureError, ValueError, OSError) as exc:
            self.app.call_from_thread(self._failed, str(exc))
            return
        self.app.call_from_thread(self._show, _snapshot(progress))

    def _from_worker(self, progress: Progress) -> None:
        """The core's progress callback, on the worker thread: repaint at most ten times a
        second (and always at the end)."""
        now = time.monotonic()
        if progress.finished or now - self._last_paint >= PROGRESS_INTERVAL:
            self._last_paint = now
            self.app.call_from_thread(self._show, _snapshot(progress))

    def _failed(self, message: str) -> None:
        self._set_running(False)
        self.query_one("#replay-status", Static).update(safe(message, "bold red", 400))

    def _show(self, progress: Progress) -> None:
        self.progress = progress
        bar = self.query_one("#replay-progress", ProgressBar)
        bar.update(total=max(1, progress.total), progress=progress.done)
        self.query_one("#replay-status", Static).update(progress_text(progress))
        if progress.finished:
            self._set_running(False)

    def screen_commands(self):
        yield SystemCommand(
            "Start the replay", self.with_key("Send the chosen file", "start"), self.action_start
        )
        yield SystemCommand(
            "Cancel the replay", self.with_key("Stop sending", "escape"), self.action_cancel
        )


def _snapshot(progress: Progress) -> Progress:
    """A copy the UI thread may keep while the worker goes on counting."""
    return dataclasses.replace(
        progress, by_status=dict(progress.by_status), by_verdict=dict(progress.by_verdict)
    )


def progress_text(p: Progress) -> Text:
    """Counts by status, failures and the state, in a line or three."""
    text = Text()
    if p.finished:
        state = "Cancelled" if p.cancelled else "Stopped" if p.aborted else "Done"
        style = "bold yellow" if p.cancelled or p.aborted else "bold green"
        text.append(f"{state}: ", style)
    else:
        text.append("Sending: ", "bold")
    text.append(f"{p.done:,} of {p.total:,} requests in {p.elapsed:.1f} s to ")
    text.append(clean(p.target, 120), "dim")
    text.append("\n")
    if not p.by_status:
        text.append("no answer yet", "dim")
    for status, n in sorted(p.by_status.items()):
        style = "red" if status == TRANSPORT else "green" if status.startswith("2") else "yellow"
        text.append(f" {status} ", f"bold reverse {style}")
        text.append(f" ×{n:,}  ")
    if p.last_failure:
        text.append("\n")
        text.append(f"last failure: {clean(p.last_failure, 200)}", "red")
    if p.aborted:
        text.append("\n")
        text.append(clean(p.aborted, 200), "red")
    if p.finished and (p.dts_changed or p.ids_changed):
        text.append("\n")
        text.append(f"rewrote {p.dts_changed:,} timestamps and {p.ids_changed:,} ids", "dim")
    return text
