"""The core, assembled: schema registry, pipeline and store behind one object.

The headless server, the TUI and the CLI each build one `Sandbox` and drive it; none of them
holds domain logic. Listeners hear about events only after their rows are committed.

`Sandbox` is assembled from one part per responsibility, each in its own module: the store's
health (store_health.py), local overrides, chaos and the experiments file (local_settings.py),
stream configs (stream_configs.py), re-validation (revalidating.py), judging (judging.py), and
storing and waiting (storing.py). This module builds the state they share and runs their
background tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any

from mpsandbox.chaos import Chaos, ChaosState, ChaosStore, parse_spec
from mpsandbox.config import Settings
from mpsandbox.overrides import Overrides
from mpsandbox.pipeline import Pipeline
from mpsandbox.platform.experiments import Experiments, load_experiments
from mpsandbox.platform.stream_configs import StreamConfigSource, is_url
from mpsandbox.sandbox.judging import BIG_BODY, Judging
from mpsandbox.sandbox.local_settings import ChaosListener, LocalSettings, _mtime
from mpsandbox.sandbox.revalidating import REVALIDATION_CHUNK, Revalidating, RevalidationListener
from mpsandbox.sandbox.store_health import StoreHealth, StoreListener
from mpsandbox.sandbox.storing import BIG_BATCH, Committed, Listener, Storing, _filter_key
from mpsandbox.sandbox.stream_configs import StreamConfigsInForce
from mpsandbox.schemas.configured import schema_sources
from mpsandbox.schemas.registry import SchemaRegistry
from mpsandbox.store import ProcessStoreWriter, StoreError, StoreReader, StoreWriter, Writer
from mpsandbox.store.health import Health, file_identity
from mpsandbox.waits import SharedWaits

__all__ = [
    "BIG_BATCH",
    "BIG_BODY",
    "REVALIDATION_CHUNK",
    "ChaosListener",
    "Committed",
    "Listener",
    "RevalidationListener",
    "Sandbox",
    "StoreListener",
    "build_registry",
]


def build_registry(settings: Settings) -> SchemaRegistry:
    return SchemaRegistry(
        schema_sources(settings),
        secure=settings.secure_schemas,
        allow_absolute_uris=settings.allow_absolute_schema_uris,
        local_dirs_given=bool(settings.schema_dirs),
    )


class Sandbox(StoreHealth, LocalSettings, StreamConfigsInForce, Revalidating, Judging, Storing):
    """One sandbox: what every face drives (see the module's docstring for its parts)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.registry = build_registry(settings)
        self.pipeline = Pipeline(self.registry, fill_ins=settings.fill_ins)
        self.stream_source: StreamConfigSource | None = None
        if settings.stream_config:
            self.stream_source = StreamConfigSource(
                settings.stream_config,
                refresh_s=settings.stream_config_refresh_s,
                on_change=self._stream_configs_changed,
            )
        #: Local sample-rate overrides (stream name -> rate) applied to the served configs;
        #: kept equal to the `sample_rate` overrides in the store (see refresh_overrides).
        self.stream_rate_overrides: dict[str, float] = {}
        #: The loaded --experiments (None without it); a file that changes is read again,
        #: and a broken edit keeps the last good copy (experiments_error says why).
        self.experiments: Experiments | None = None
        self.experiments_error: str | None = None
        self._experiments_mtime: float | None = None
        if settings.experiments_file:
            self._experiments_mtime = _mtime(settings.experiments_file)
            self.experiments = load_experiments(settings.experiments_file)
            self.pipeline.experiments = self.experiments
        #: Local overrides (overrides.py), opened by start(); writes go through the writer.
        self.overrides: Overrides | None = None
        self._overrides_task: asyncio.Task | None = None
        self._overrides_revision = -1
        self._overrides_stop: asyncio.Event | None = None
        #: The chaos in force (chaos.py), None when off: the intake's hot path reads only
        #: this attribute. Kept equal to the stored setting by refresh_chaos.
        self.chaos: Chaos | None = None
        self.chaos_state = ChaosState()
        self._chaos_store: ChaosStore | None = None
        self._chaos_listeners: list[ChaosListener] = []
        self._chaos_lock = threading.Lock()
        self._stream_stop: asyncio.Event | None = None
        self._stream_task: asyncio.Task | None = None
        retention = None
        if settings.max_events is not None or settings.max_age_s is not None:
            retention = (settings.max_events, settings.max_age_s)
        writer_cls = ProcessStoreWriter if settings.writer_process else StoreWriter
        #: The store's single writer, used only through the Writer protocol.
        self.writer: Writer = writer_cls(
            settings.db,
            max_backlog_events=settings.max_backlog,
            retention=retention,
            busy_timeout=settings.busy_timeout,
        )
        self.reader: StoreReader | None = None
        self._listeners: list[Listener] = []
        #: Held while a request's events are judged in slices (see judge()).
        self._judging = asyncio.Lock()
        self._last_big = 0.0
        #: Called as a big batch takes its turn, before it is parsed (the served intake's
        #: garbage collection pacing: intake/gc_pacing.py).
        self.on_big_turn: Callable[[], None] | None = None
        self.waits = SharedWaits(self._count_in_thread, key=_filter_key)
        self._watch_stop: asyncio.Event | None = None
        self._watch_task: asyncio.Task | None = None
        self._revalidation_listeners: list[RevalidationListener] = []
        self._revalidation_lock: asyncio.Lock | None = None
        #: Titles whose schemas changed and wait for a re-validation (or _EVERY_TITLE).
        self._pending_titles: Any = None
        self._revalidation_task: asyncio.Task | None = None
        self.refused_backlog = 0
        self.write_failures = 0
        #: The database file as opened at start (device, inode), to notice it vanish.
        self._store_file: tuple[int, int] | None = None
        self._file_error: StoreError | None = None
        self._health = Health("ok")
        self._store_listeners: list[StoreListener] = []
        self._store_task: asyncio.Task | None = None
        self._store_stop: asyncio.Event | None = None

    def begin_start(self) -> None:
        """Let a store process open (and migrate) the database while the caller goes on
        (importing the intake); start() waits for it. A writer thread is started by start()
        alone, and so is the store with a stream config URL: that is fetched first, so a
        bad one fails before anything opens."""
        if isinstance(self.writer, ProcessStoreWriter) and not is_url(
            self.settings.stream_config or ""
        ):
            self.writer.begin_start()

    def start(self) -> None:
        """Open the store (creating and migrating it); raises StoreError with a clear message."""
        self.writer.start()
        self._store_file = file_identity(self.settings.db)
        self.reader = StoreReader(self.settings.db)
        self.overrides = Overrides(
            self.settings.db,
            experiments=self.experiments,
            wiki_url=self.settings.wiki_url,
            write=self._write_overrides,
            busy_timeout=self.settings.busy_timeout,
        )
        self._chaos_store = ChaosStore(
            self.settings.db, write=self._write_overrides, busy_timeout=self.settings.busy_timeout
        )
        if self.settings.chaos is not None:
            self._chaos_store.set(parse_spec(self.settings.chaos), "cli")
        self.refresh_overrides()

    async def start_watching(self) -> None:
        loop = asyncio.get_running_loop()
        self.writer.on_fatal = lambda err: loop.call_soon_threadsafe(self.check_store)
        self._store_stop = asyncio.Event()
        self._store_task = asyncio.create_task(
            self._watch_store(self._store_stop), name="store-health"
        )
        await self.start_stream_refresh()
        if self.overrides is not None:
            self._overrides_stop = asyncio.Event()
            self._overrides_task = asyncio.create_task(
                self._poll_overrides(self._overrides_stop), name="overrides-refresh"
            )
        if not self.settings.watch_schemas:
            return
        from mpsandbox.schemas.watcher import watch_sources

        self._watch_stop = asyncio.Event()
        self._watch_task = asyncio.create_task(
            watch_sources(self.registry, stop=self._watch_stop, on_change=self.schemas_changed),
            name="schema-watcher",
        )

    async def close(self) -> None:
        if self._store_stop is not None:
            self._store_stop.set()
        if self._store_task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._store_task, 2)
        if self._overrides_stop is not None:
            self._overrides_stop.set()
        if self._overrides_task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._overrides_task, 2)
        if self._stream_stop is not None:
            self._stream_stop.set()
        if self._stream_task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._stream_task, 2)
        if self._watch_stop is not None:
            self._watch_stop.set()
        if self._watch_task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._watch_task, 2)
        if self._revalidation_task is not None:
            self._pending_titles = None
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._revalidation_task, 30)
        await asyncio.get_running_loop().run_in_executor(None, self.writer.close)
        if self.reader is not None:
            self.reader.close()
        if self.overrides is not None:
            self.overrides.close()
        if self._chaos_store is not None:
            self._chaos_store.close()
