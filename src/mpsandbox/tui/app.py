"""The mpsandbox terminal app: the intake running inside a live event inspector.

The app owns three things only: the intake host (the core, on its own thread), a small
pool of reader threads for SQLite, and the status every screen's header shows. Screens ask
the store for rows through :meth:`MpSandboxApp.read` and send intents (reset, listen on
another port, resolve a schema) through the host; none of them holds domain logic.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from textual import events, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import Screen

from mpsandbox.chaos import EXAMPLES as CHAOS_EXAMPLES
from mpsandbox.chaos import SPEC_HELP as CHAOS_HELP
from mpsandbox.chaos import ChaosError, ChaosStore, parse_spec
from mpsandbox.config import Settings
from mpsandbox.host import Batch, IntakeError, IntakeHost
from mpsandbox.intake.server import PortBusy
from mpsandbox.overrides import OverrideError, Overrides
from mpsandbox.records import ERROR, INVALID, VALID
from mpsandbox.store import EventFilter, StoreError, StoreReader
from mpsandbox.tui.feed import Feed
from mpsandbox.tui.messages import ChaosChanged, OverridesChanged, Revalidated, StoreChanged
from mpsandbox.tui.safe_text import clean
from mpsandbox.tui.screens.confirm import ConfirmScreen
from mpsandbox.tui.screens.errors import ErrorsScreen
from mpsandbox.tui.screens.experiments import ExperimentsScreen
from mpsandbox.tui.screens.flips import FlipsScreen
from mpsandbox.tui.screens.help import HelpScreen
from mpsandbox.tui.screens.instruments import InstrumentsScreen
from mpsandbox.tui.screens.live import LiveScreen
from mpsandbox.tui.screens.metrics import MetricsScreen
from mpsandbox.tui.screens.replay import ReplayScreen
from mpsandbox.tui.screens.schemas import SchemasScreen
from mpsandbox.tui.screens.sessions import SessionsScreen
from mpsandbox.tui.screens.streams import StreamsScreen

T = TypeVar("T")

#: Shortest gap between two table refreshes while events stream in.
REFRESH_INTERVAL = 0.1
#: The gap while events arrive faster than a reader can follow them one by one: each refresh
#: costs the UI a read and a repaint, and fewer of them leave more of the CPU to key presses.
BUSY_REFRESH_INTERVAL = 0.25
BUSY_RATE = 200.0
#: After a key press, refreshes wait this long: the key's own work (a move, a read, a
#: repaint) gets the UI's loop and its reader threads to itself.
KEY_GRACE = 0.12
#: ...but a held-down key must not stop the table from moving on for longer than this.
MAX_DEFER = 0.6
#: Window over which the header's events-per-second rate is averaged.
RATE_WINDOW = 5.0


@dataclass(frozen=True, slots=True)
class AppStatus:
    """What the header shows; replaced (never mutated) so watchers fire."""

    listening: bool = False
    starting: bool = False
    url: str | None = None
    intake_paths: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    port: int = 0
    port_problem: str | None = None
    store_problem: str | None = None
    sources: tuple[str, ...] = ()
    counts: dict[str, int] = field(default_factory=lambda: {VALID: 0, INVALID: 0, ERROR: 0})
    rate: float = 0.0
    read_only: bool = False
    #: The chaos spec while chaos is on (the header shows a CHAOS badge), else None.
    chaos: str | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class MpSandboxApp(App[int]):
    """Live event inspector; ``listen=False`` only inspects an existing database."""

    CSS_PATH = "app.tcss"
    TITLE = "mpsandbox"
    MODES = {
        "live": LiveScreen,
        "errors": ErrorsScreen,
        "schemas": SchemasScreen,
        "streams": StreamsScreen,
        "sessions": SessionsScreen,
        "experiments": ExperimentsScreen,
        "flips": FlipsScreen,
        "replay": ReplayScreen,
        "metrics": MetricsScreen,
        "instruments": InstrumentsScreen,
    }
    DEFAULT_MODE = "live"

    BINDINGS = [
        Binding("1", "switch_mode('live')", "Live", tooltip="Events as they arrive"),
        Binding("2", "switch_mode('errors')", "Errors", tooltip="Validation errors, grouped"),
        Binding("3", "switch_mode('schemas')", "Schemas", tooltip="Schema sources and probe"),
        Binding("4", "switch_mode('streams')", "Streams", tooltip="Stream configs, sampling"),
        Binding("5", "switch_mode('sessions')", "Sessions", tooltip="Sessions and timelines"),
        Binding("6", "switch_mode('experiments')", "Experiments", tooltip="Experiments, flags"),
        Binding("7", "switch_mode('flips')", "Flips", tooltip="Verdicts a schema change flipped"),
        # When the key bar is too narrow for every screen key, it folds them into one entry
        # (1…0 screens) that opens the help.
        Binding("8", "switch_mode('instruments')", "Instruments", tooltip="Instrument coverage"),
        Binding("9", "switch_mode('replay')", "Replay", tooltip="Replay a fixture"),
        Binding("0", "switch_mode('metrics')", "Metrics", tooltip="Metric previews"),
        Binding("question_mark,f1", "help", "Help"),
        Binding("ctrl+l", "listen_elsewhere", "Port", show=False),
        Binding("ctrl+x", "reset_store", "Reset", show=False),
        Binding("q", "quit", "Quit"),
    ]

    status: reactive[AppStatus] = reactive(AppStatus, always_update=True, repaint=False)
    """Listen address, schema sources, counts by verdict and rate, for every header.

    ``repaint=False``: the widgets that show it watch it and redraw themselves; an App
    reactive that repaints redraws the whole screen, ten times a second under load."""

    def __init__(self, settings: Settings, *, listen: bool = True) -> None:
        super().__init__()
        self.settings = settings
        self.listen = listen
        self.host: IntakeHost | None = None
        self.reader: StoreReader | None = None
        self.feed = Feed(lambda: self.post_message(StoreChanged()))
        self._reads = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="mp-read")
        # Long scans (counting a million rows) queue here, one at a time, so they never
        # hold up the reads that put rows on screen.
        self._slow_reads = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mp-scan")
        self._overrides: Overrides | None = None
        self._overrides_lock = threading.Lock()
        self._chaos: ChaosStore | None = None
        #: Revision of the chaos setting the status shows (-1: not read yet).
        self._chaos_revision = -1
        self._arrivals: deque[tuple[float, int]] = deque()
        self._last_delivery = 0.0
        self._delivery_pending = False
        self._last_key = 0.0
        self.set_reactive(
            MpSandboxApp.status,
            AppStatus(
                host=settings.host,
                port=settings.port,
                intake_paths=settings.intake_paths,
                sources=_source_names(settings),
                read_only=not listen,
            ),
        )

    # -- reading the store ----------------------------------------------------------------
    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a store read on a reader thread (SQLite never blocks the UI's loop)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reads, partial(fn, *args, **kwargs))

    async def read_slow(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """:meth:`read` for scans that may take seconds (full counts): they run one at a
        time on a thread of their own. Queued work that is no longer wanted should check
        that when it starts and return at once (it cannot be cancelled once running)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._slow_reads, partial(fn, *args, **kwargs))

    def judge_by_working_copy(self, stored: dict[str, Any]) -> dict[str, Any]:
        """A stored event (as ``get_event`` reads it) judged by its schema's working copy
        (current.yaml). Reads and compiles schema files: call it off the event loop."""
        from mpsandbox.revalidation import stored_context
        from mpsandbox.sandbox import build_registry
        from mpsandbox.working_copy import judge_against_working_copy

        headers = (stored.get("request") or {}).get("headers") or []
        ctx = stored_context(
            stored["id"], stored["received_at"], stored.get("fills") or {}, headers
        )
        registry = build_registry(self.settings)  # fresh: every file read as it is now
        return judge_against_working_copy(
            registry, stored["event"], ctx, fill_ins=self.settings.fill_ins
        )

    def overrides(self) -> Overrides | None:
        """The local overrides of this database (None until the database exists). Blocks
        on SQLite: call it, and every method of what it returns, off the event loop.

        The intake runs in a child process with its own store writer, so the TUI writes
        overrides as the CLI does: on a connection of its own, each change one
        ``BEGIN IMMEDIATE`` transaction; SQLite's lock and busy timeout (WAL mode) keep it
        and the intake's writer apart, and the intake picks the change up within a second
        (it polls the overrides' revision). Read-only, changes are refused."""
        with self._overrides_lock:
            if self._overrides is None and Path(self.settings.db).exists():
                write = None
                if self.status.read_only:
                    write = _refuse_writes
                try:
                    self._overrides = Overrides(
                        self.settings.db,
                        wiki_url=self.settings.wiki_url,
                        write=write,
                        busy_timeout=self.settings.busy_timeout,
                    )
                except (StoreError, sqlite3.Error) as exc:
                    raise StoreError(str(exc)) from exc
            return self._overrides

    def chaos_store(self) -> ChaosStore | None:
        """The chaos setting of this database (None until the database exists); written on
        a connection of its own, as overrides are, and picked up by the intake within a
        second. Blocks on SQLite: call it, and what it returns, off the event loop."""
        with self._overrides_lock:
            if self._chaos is None and Path(self.settings.db).exists():
                try:
                    self._chaos = ChaosStore(
                        self.settings.db, busy_timeout=self.settings.busy_timeout
                    )
                except (StoreError, sqlite3.Error) as exc:
                    raise StoreError(str(exc)) from exc
            return self._chaos

    @work(exclusive=True, group="chaos-read")
    async def _read_chaos(self) -> None:
        def read() -> dict[str, Any] | None:
            store = self.chaos_store()
            return None if store is None else store.state().as_dict()

        try:
            state = await asyncio.to_thread(read)
        except (StoreError, sqlite3.Error):
            return
        if state is not None:
            self._show_chaos(state)

    def on_chaos_changed(self, message: ChaosChanged) -> None:
        self._show_chaos(message.state)

    def _show_chaos(self, state: dict[str, Any]) -> None:
        """Put a (newer) chaos setting in the header, and say so."""
        revision = int(state.get("revision") or 0)
        if revision <= self._chaos_revision:
            return
        first = self._chaos_revision < 0
        self._chaos_revision = revision
        spec = state.get("spec") if state.get("on") else None
        self._set_status(chaos=spec)
        by = f" (by {state['set_by']})" if state.get("set_by") else ""
        if spec:
            self.notify(
                f"{spec}{by}: {state.get('description') or ''}",
                title="CHAOS is on: the intake answers badly on purpose",
                severity="error",
                timeout=8,
                markup=False,
            )
        elif not first:
            self.notify(f"Chaos is off{by}: the intake answers normally.", markup=False)

    def action_set_chaos(self) -> None:
        """Ask for a chaos spec (the grammar and examples shown; errors in the dialog)."""
        from mpsandbox.tui.screens.prompt import PromptScreen, term_guide

        if self.status.read_only:
            self.notify("Read-only: chaos cannot be changed.", severity="warning")
            return
        guide = term_guide(
            [(None, CHAOS_HELP), ("e.g.", CHAOS_EXAMPLES[:-1])],
            "Only POSTs on intake paths are affected; 'off' turns chaos off.",
        )

        def problem(text: str) -> str | None:
            try:
                parse_spec(text)
            except ChaosError as exc:
                return str(exc)
            return None

        def answered(text: str | None) -> None:
            if text is not None:
                self._write_chaos(text)

        self.push_screen(
            PromptScreen(
                "Chaos: answer a share of intake requests badly, to see how a client retries",
                "503:0.2,latency:200ms",
                self.status.chaos or "",
                guide=guide,
                validate=problem,
            ),
            answered,
        )

    def action_chaos_off(self) -> None:
        if self.status.read_only:
            self.notify("Read-only: chaos cannot be changed.", severity="warning")
            return
        self._write_chaos("off")

    @work(group="chaos-write")
    async def _write_chaos(self, spec: str) -> None:
        try:
            settings = parse_spec(spec)
            store = await asyncio.to_thread(self.chaos_store)
            if store is None:
                raise StoreError("there is no database yet")
            change = await asyncio.to_thread(store.set, settings, "tui")
        except (ChaosError, StoreError, sqlite3.Error) as exc:
            self.notify(clean(exc, 300), title="Chaos not changed", severity="error", markup=False)
            return
        self._show_chaos(change["chaos"])

    def on_overrides_changed(self, message: OverridesChanged) -> None:
        for screen in self._screens_to_notify():
            changed = getattr(screen, "overrides_changed", None)
            if changed is not None:
                changed()

    def _open_reader(self) -> None:
        if self.reader is not None:
            return
        if not Path(self.settings.db).exists():
            return
        try:
            self.reader = StoreReader(self.settings.db)
        except StoreError as exc:
            self._set_status(store_problem=str(exc))

    # -- lifecycle -------------------------------------------------------------------------
    def on_mount(self) -> None:
        # Everything built so far (Textual, Rich, the screens) lives as long as the app:
        # moving it out of the collector's reach, and collecting the oldest generation less
        # often, cuts the 100-300 ms full collections measured under load (bench/tui.py).
        gc.freeze()
        gen0, gen1, _ = gc.get_threshold()
        gc.set_threshold(gen0, gen1, 100)
        self._open_reader()
        self.set_interval(1.0, self._update_rate)
        self.set_interval(15.0, self._refresh_counts)
        self._refresh_counts()
        self._deliver(reset=True)  # tables mounted before the reader opened: read now
        if self.listen:
            self._set_status(starting=True)
            self.start_intake()
        else:
            self._read_chaos()

    def _from_intake(self, batch: Batch) -> None:
        """On the host's reader thread: events go to the feed, a re-validation report
        or a chaos change becomes a message."""
        if batch.revalidated is not None:
            self.post_message(Revalidated(batch.revalidated))
        elif batch.chaos is not None:
            self.post_message(ChaosChanged(batch.chaos))
        else:
            self.feed.push(batch)

    def on_revalidated(self, message: Revalidated) -> None:
        report = message.report
        by_change = report.get("by_change") or {}
        if by_change:
            changes = ", ".join(f"{n:,} {change}" for change, n in sorted(by_change.items()))
            text = f"{report.get('checked', 0):,} stored events judged again: {changes}."
            text += " Press 7 for the flips."
        else:
            text = f"{report.get('checked', 0):,} stored events judged again: no verdict changed."
        for problem in sorted((report.get("problems") or {}).values())[:3]:
            text += f"\n{clean(problem, 300)}"
        title = "Schema changed" if report.get("trigger") == "schema change" else "Re-validated"
        severity = "warning" if by_change or report.get("problems") else "information"
        self.notify(text, title=title, severity=severity, timeout=8, markup=False)
        for screen in self._screens_to_notify():
            revalidated = getattr(screen, "revalidated", None)
            if revalidated is not None:
                revalidated()

    def action_revalidate(self) -> None:
        """Judge stored events again now (every schema, the --revalidate newest)."""
        if self.host is None or not self.host.running:
            self.notify(
                "Nothing to re-judge with: the intake is not running (read-only view).",
                severity="warning",
            )
            return
        self.host.call("revalidate")
        self.notify("Judging stored events again with the schemas as they are now…")

    @work(thread=True, exclusive=True, group="intake-start")
    def start_intake(self, port: int | None = None) -> None:
        """Bind the intake (on another port when given); reports through the status."""
        if self.host is None:
            self.host = IntakeHost(self.settings)
            self.host.add_listener(self._from_intake)
        try:
            url = self.host.start(port=port)
        except PortBusy as exc:
            self.call_from_thread(self._intake_failed, str(exc), exc.port)
            return
        except (StoreError, IntakeError, OSError) as exc:
            self.call_from_thread(self._intake_failed, str(exc), None, store=True)
            return
        self.call_from_thread(self._intake_started, url, self.host.port)

    def _intake_started(self, url: str, port: int) -> None:
        self._open_reader()
        self._set_status(
            listening=True,
            starting=False,
            url=url,
            port=port,
            port_problem=None,
            store_problem=None,
        )
        self._refresh_counts()
        self._deliver(reset=True)
        self._read_chaos()  # the intake applied any --chaos before it listened

    def _intake_failed(self, message: str, port: int | None, store: bool = False) -> None:
        self._open_reader()
        if store:
            self._set_status(starting=False, listening=False, store_problem=message)
            self.notify(
                message,
                title="The store cannot be opened",
                severity="error",
                timeout=30,
                markup=False,
            )
        else:
            self._set_status(starting=False, listening=False, port_problem=message)
        self._deliver(reset=True)

    def shutdown_intake(self) -> None:
        """Stop listening and wait until every acknowledged event is on disk."""
        host, self.host = self.host, None
        if host is not None:
            host.stop()
        # Closing a connection while another thread steps a query on it crashes the process
        # (a count over a million rows can take seconds): drop queued reads, stop running
        # ones, wait for the reader threads, and only then close.
        pools = (self._reads, self._slow_reads)
        for pool in pools:
            pool.shutdown(wait=False, cancel_futures=True)
        reader, self.reader = self.reader, None
        if reader is not None:
            _interrupt(reader)
        for pool in pools:
            pool.shutdown(wait=True)
        if reader is not None:
            reader.close()
        overrides, self._overrides = self._overrides, None
        if overrides is not None:
            overrides.close()
        chaos, self._chaos = self._chaos, None
        if chaos is not None:
            chaos.close()

    async def on_unmount(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.shutdown_intake)

    # -- status ----------------------------------------------------------------------------
    def _set_status(self, **changes: Any) -> None:
        self.status = replace(self.status, **changes)

    @work(exclusive=True, group="counts")
    async def _refresh_counts(self) -> None:
        if self.reader is None:
            return
        try:
            counts = await self.read_slow(_verdict_counts, self.reader)
        except StoreError as exc:
            self._set_status(store_problem=str(exc))
            return
        self._set_status(counts=counts)

    def _update_rate(self) -> None:
        now = time.monotonic()
        while self._arrivals and self._arrivals[0][0] < now - RATE_WINDOW:
            self._arrivals.popleft()
        rate = sum(n for _, n in self._arrivals) / RATE_WINDOW
        if rate != self.status.rate:
            self._set_status(rate=rate)

    # -- events arriving ---------------------------------------------------------------------
    def on_store_changed(self, message: StoreChanged) -> None:
        """Coalesce: at most one refresh per REFRESH_INTERVAL, however fast events come."""
        if self._delivery_pending:
            return
        interval = BUSY_REFRESH_INTERVAL if self.status.rate > BUSY_RATE else REFRESH_INTERVAL
        due = max(self._last_delivery + interval, self._last_key + KEY_GRACE)
        wait = due - time.monotonic()
        if wait > 0:
            self._delivery_pending = True
            self.set_timer(wait, self._deliver)
        else:
            self._deliver()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, (events.Key, events.MouseDown)):
            self._last_key = time.monotonic()
        await super().on_event(event)

    def _deliver(self, reset: bool = False) -> None:
        now = time.monotonic()
        grace = self._last_key + KEY_GRACE - now
        if grace > 0 and not reset and now - self._last_delivery < MAX_DEFER:
            self.set_timer(grace, self._deliver)  # still pending: a key came in meanwhile
            return
        self._delivery_pending = False
        self._last_delivery = time.monotonic()
        drained = self.feed.drain()
        reset = reset or drained.reset
        self._arrivals.extend(drained.arrivals)
        if drained.reset:
            self._refresh_counts()
        elif drained.events:
            counts = dict(self.status.counts)
            for verdict, n in drained.by_verdict.items():
                counts[verdict] = counts.get(verdict, 0) + n
            self.status = replace(self.status, counts=counts)
        if drained.events or reset:
            for screen in self._screens_to_notify():
                store_changed = getattr(screen, "store_changed", None)
                if store_changed is not None:
                    store_changed(reset)

    def _screens_to_notify(self) -> Iterable[Screen]:
        """Screens of the current mode; others catch up when they resume."""
        return [screen for screen in self.screen_stack if screen.is_mounted]

    # -- intents ---------------------------------------------------------------------------
    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_listen_elsewhere(self) -> None:
        from mpsandbox.tui.screens.port import PortScreen

        suggestion = (self.status.port or self.settings.port) + 1

        def chosen(port: int | None) -> None:
            if port is not None:
                self.listen_on(port)

        self.push_screen(PortScreen(suggestion), chosen)

    def listen_on(self, port: int) -> None:
        if self.host is not None and self.host.running:
            self.notify("The intake is already listening.", severity="warning")
            return
        self._set_status(starting=True, port_problem=None, port=port)
        self.start_intake(port)

    def action_reset_store(self) -> None:
        if self.host is None or not self.host.running:
            self.notify("The store can only be reset while the intake runs.", severity="warning")
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._reset_store()

        self.push_screen(
            ConfirmScreen("Delete every stored request and event?", "Reset the store"), confirmed
        )

    @work(exclusive=True, group="reset")
    async def _reset_store(self) -> None:
        host = self.host
        if host is None or not host.running:
            return
        await asyncio.wrap_future(host.call("reset"))
        self.notify("Store reset: every request and event was deleted.")

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand(
            "Live events", "Events as they arrive (1)", partial(self.switch_mode, "live")
        )
        yield SystemCommand(
            "Errors",
            "Validation errors grouped by field and rule (2)",
            partial(self.switch_mode, "errors"),
        )
        yield SystemCommand(
            "Schemas",
            "Schema sources, load errors, resolve probe (3)",
            partial(self.switch_mode, "schemas"),
        )
        yield SystemCommand(
            "Streams",
            "Stream configs, received counts, sampling and the what-if (4)",
            partial(self.switch_mode, "streams"),
        )
        yield SystemCommand(
            "Sessions",
            "Sessions and a session's timeline with funnels (5)",
            partial(self.switch_mode, "sessions"),
        )
        yield SystemCommand(
            "Experiments and flags",
            "Experiments, enrollment, overrides and the mpo string (6)",
            partial(self.switch_mode, "experiments"),
        )
        yield SystemCommand(
            "Flips",
            "Verdicts that flipped when a schema change had stored events judged again (7)",
            partial(self.switch_mode, "flips"),
        )
        yield SystemCommand(
            "Replay a fixture",
            "Send a fixture file's requests into this sandbox or to an intake URL (9)",
            partial(self.switch_mode, "replay"),
        )
        yield SystemCommand(
            "Metrics",
            "Metric previews: rates with 95% intervals, per group, updating live (0)",
            partial(self.switch_mode, "metrics"),
        )
        yield SystemCommand(
            "Instruments",
            "Coverage of the instrument definitions by the captured events, live (8)",
            partial(self.switch_mode, "instruments"),
        )
        yield SystemCommand(
            "Re-validate stored events",
            "Judge the newest stored events again with the schemas as they are now (r on Flips)",
            self.action_revalidate,
        )
        yield SystemCommand("Help", "Keys and the filter language (?)", self.action_help)
        yield SystemCommand(
            "Listen on another port",
            "Start the intake on a port you choose (ctrl+l)",
            self.action_listen_elsewhere,
        )
        yield SystemCommand(
            "Reset the store",
            "Delete every stored request and event (ctrl+x)",
            self.action_reset_store,
        )
        yield SystemCommand(
            "Chaos: set…",
            "Answer a share of intake requests 500/503/207, drop or delay them, to see how "
            "a client retries",
            self.action_set_chaos,
        )
        yield SystemCommand(
            "Chaos: off", "Answer every intake request normally again", self.action_chaos_off
        )
        extra = getattr(screen, "screen_commands", None)
        if extra is not None:
            yield from extra()


def _interrupt(reader: StoreReader) -> None:
    """Make the reader's running queries stop at their next step (StoreReader has no public
    way yet; sqlite3's interrupt() is safe to call from any thread)."""
    for conn in list(getattr(reader, "_connections", ())):
        with contextlib.suppress(Exception):
            conn.interrupt()


def _refuse_writes(fn: Callable[..., Any]) -> Any:
    raise OverrideError("read-only: overrides cannot be changed (start without --read-only)")


def _verdict_counts(reader: StoreReader) -> dict[str, int]:
    """Events by verdict: one range of the (verdict, id) index each, where ``stats()`` also
    scans every request (a second per million events)."""
    return {v: reader.count_events(EventFilter(verdict=v)) for v in (VALID, INVALID, ERROR)}


def _source_names(settings: Settings) -> tuple[str, ...]:
    """Short names for the header: the last two parts of each directory."""
    names = ["/".join(Path(d).parts[-2:]) for d in settings.schema_dirs]
    names += list(settings.remote_schemas)
    if settings.use_builtin_schemas:
        names.append("built-in")
    return tuple(names)
