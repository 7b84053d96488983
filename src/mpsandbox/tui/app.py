"""The mpsandbox terminal app: the intake running inside a live event inspector.

The app owns the status every screen's header shows and wires its parts together: the intake
host (the core, in a child process), the reads, the local settings, and the screens. Screens ask
the store for rows through :meth:`MpSandboxApp.read` and send intents (reset, change an
override or the chaos, listen on another port, resolve a schema) through the app, which
hands every write to the intake; none of them holds domain logic or a write connection.
"""

from __future__ import annotations

import asyncio
import gc
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from textual.app import App, SystemCommand
from textual.reactive import reactive
from textual.screen import Screen

from mpsandbox.config import Settings
from mpsandbox.host import IntakeHost
from mpsandbox.overrides import Overrides
from mpsandbox.records import VERDICTS
from mpsandbox.schemas.remote import cached_urls, host_of
from mpsandbox.store import StoreReader
from mpsandbox.tui.chaos_control import ChaosControl
from mpsandbox.tui.delivery import Delivery
from mpsandbox.tui.dialogs import Dialogs
from mpsandbox.tui.feed import Feed
from mpsandbox.tui.intake_lifecycle import IntakeLifecycle
from mpsandbox.tui.keymap import keymap_path, load_keymap
from mpsandbox.tui.local_stores import LocalStores
from mpsandbox.tui.messages import EventsWaiting, StoreHealthChanged
from mpsandbox.tui.reads import StoreReads
from mpsandbox.tui.safe_text import clean
from mpsandbox.tui.schema_questions import SchemaQuestions
from mpsandbox.tui.screens import registry
from mpsandbox.tui.screens.keys import KeyedScreen

T = TypeVar("T")


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
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(VERDICTS, 0))
    rate: float = 0.0
    read_only: bool = False
    #: The chaos spec while chaos is on (the header shows a CHAOS badge), else None.
    chaos: str | None = None
    #: A schema host cannot be reached (remote.unreachable_line), shown in the header.
    schemas_unreachable: str | None = None
    #: "<state>: <detail>" while the running intake's store takes no writes (restarting,
    #: failed, deleted, replaced, full...; the header shows a STORE badge), else None.
    store_alarm: str | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class MpSandboxApp(Delivery, IntakeLifecycle, ChaosControl, Dialogs, App[int]):
    """Live event inspector; ``listen=False`` only inspects an existing database.

    The app holds the status and wires its parts together; each part is a module of its
    own: the screens and keys (:mod:`~mpsandbox.tui.screens.registry`), reads
    (:mod:`~mpsandbox.tui.reads`), the local settings, read here and changed through the
    intake (:mod:`~mpsandbox.tui.local_stores`), telling the screens
    (:mod:`~mpsandbox.tui.delivery`), the intake's lifecycle
    (:mod:`~mpsandbox.tui.intake_lifecycle`), chaos (:mod:`~mpsandbox.tui.chaos_control`)
    and the dialogs (:mod:`~mpsandbox.tui.dialogs`).
    """

    CSS_PATH = "app.tcss"
    TITLE = "mpsandbox"
    MODES = registry.modes()
    DEFAULT_MODE = registry.SCREENS[0].mode
    BINDINGS = registry.bindings()

    status: reactive[AppStatus] = reactive(AppStatus, always_update=True, repaint=False)
    """Listen address, schema sources, counts by verdict and rate, for every header.

    ``repaint=False``: the widgets that show it watch it and redraw themselves; an App
    reactive that repaints redraws the whole screen, ten times a second under load."""

    def __init__(
        self, settings: Settings, *, listen: bool = True, keymap: dict[str, str] | None = None
    ) -> None:
        super().__init__()
        self.settings = settings
        self.listen = listen
        self.host: IntakeHost | None = None
        self.reads = StoreReads(settings)
        self.local = LocalStores(settings, read_only=not listen)
        #: Schema probes, the sources' catalog, working copies: asked of the intake.
        self.schema_questions = SchemaQuestions(settings)
        self.feed = Feed(lambda: self.post_message(EventsWaiting()))
        #: Binding id → keys, from the user's keymap file unless given (see keymap.py).
        self.keymap: dict[str, str] = {}
        self._keymap_given = keymap
        self._keymap_problems: list[str] = []
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

    # -- what screens use ------------------------------------------------------------------
    @property
    def reader(self) -> StoreReader | None:
        return self.reads.reader

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a store read on a reader thread (SQLite never blocks the UI's loop)."""
        return await self.reads.read(fn, *args, **kwargs)

    async def read_slow(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A scan that may take seconds (see :meth:`StoreReads.read_slow`)."""
        return await self.reads.read_slow(fn, *args, **kwargs)

    def overrides(self) -> Overrides | None:
        """The local overrides, to read (None until the database exists); blocks on SQLite."""
        return self.local.overrides()

    async def change_overrides(self, change: str, *args: Any) -> Any:
        """One change of the overrides, sent to the intake, which commits it through the
        store's single writer; its result. Raises OverrideError saying why not."""
        return await asyncio.to_thread(self.local.change_overrides, self.host, change, *args)

    def judge_by_working_copy(self, stored: dict[str, Any]) -> dict[str, Any]:
        """A stored event judged by its schema's working copy, by the intake's registry
        (see schema_questions.py); call it off the loop."""
        return self.schema_questions.working_copy(self.host, stored)

    def screen_key(self, mode: str) -> str:
        """The key that shows a screen, as the keymap has it (for messages to people)."""
        entry = next(e for e in registry.SCREENS if e.mode == mode)
        return registry.key_text(self, entry.binding(), self.keymap)

    def on_store_health_changed(self, message: StoreHealthChanged) -> None:
        """The intake says the store stopped (or started again) taking writes: say so in
        the header, and once in a notification."""
        health = message.health
        if health.get("state") == "ok":
            self._set_status(store_alarm=None)
            self.notify("The store takes writes again.")
            return
        self._set_status(store_alarm=f"{health.get('state')}: {health.get('detail') or ''}")
        self.notify(str(health.get("detail") or health.get("state")), severity="error")

    # -- lifecycle -------------------------------------------------------------------------
    def on_mount(self) -> None:
        # Everything built so far (Textual, Rich, the screens) lives as long as the app:
        # moving it out of the collector's reach, and collecting the oldest generation less
        # often, cuts the 100-300 ms full collections measured under load (bench/tui.py).
        gc.freeze()
        gen0, gen1, _ = gc.get_threshold()
        gc.set_threshold(gen0, gen1, 100)
        self._apply_keymap()
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

    def _apply_keymap(self) -> None:
        if self._keymap_given is None:
            keymap, problems = load_keymap(keymap_path(), registry.binding_ids())
        else:
            keymap, problems = self._keymap_given, []
        self.keymap = keymap
        for problem in problems:
            self.notify(clean(problem, 300), title="Keymap", severity="warning", markup=False)
        if keymap:
            self.set_keymap(keymap)

    def _open_reader(self) -> None:
        problem = self.reads.open()
        if problem is not None:
            self._set_status(store_problem=problem)

    async def on_unmount(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.shutdown_intake)

    def _set_status(self, **changes: Any) -> None:
        self.status = replace(self.status, **changes)

    # -- the command palette -----------------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield from registry.system_commands(self, self.keymap)
        if isinstance(screen, KeyedScreen):
            yield from screen.screen_commands()


def _source_names(settings: Settings) -> tuple[str, ...]:
    """Short names for the header: the last two parts of each directory."""
    names = ["/".join(Path(d).parts[-2:]) for d in settings.schema_dirs]
    if not settings.offline:
        names += list(dict.fromkeys(host_of(b) for b in settings.remote_schemas))
    elif settings.remote_schemas and cached_urls(settings.cache_dir):
        names.append("cache (offline)")
    if settings.use_builtin_schemas:
        names.append("built-in")
    return tuple(names)
