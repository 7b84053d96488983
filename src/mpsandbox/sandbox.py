"""The core, assembled: schema registry, pipeline and store behind one object.

The headless server, the TUI and the CLI each build one `Sandbox` and drive it; none of them
holds domain logic. Listeners hear about events only after their rows are committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from mpsandbox.chaos import Chaos, ChaosState, ChaosStore, parse_spec
from mpsandbox.config import Settings
from mpsandbox.overrides import Overrides
from mpsandbox.pipeline import Pipeline
from mpsandbox.platform.experiments import Experiments, ExperimentsError, load_experiments
from mpsandbox.platform.stream_configs import StreamConfigs, StreamConfigSource
from mpsandbox.records import EventRecord, RequestRecord
from mpsandbox.revalidation import Report, rejudge, store_call, titles_for_paths
from mpsandbox.schemas.configured import schema_sources
from mpsandbox.schemas.registry import SchemaRegistry
from mpsandbox.schemas.sources import DirectorySource
from mpsandbox.slicing import map_in_slices
from mpsandbox.store import EventFilter, ProcessStoreWriter, StoreError, StoreReader, StoreWriter
from mpsandbox.store.health import CHECK_EVERY, Health, file_identity, file_problem, health
from mpsandbox.waits import SharedWaits

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Committed:
    """A stored event: its row id and the record it was stored from."""

    event_id: int
    request_id: int
    record: EventRecord


Listener = Callable[[list[Committed]], None]
RevalidationListener = Callable[[Report], None]
ChaosListener = Callable[[ChaosState], None]
StoreListener = Callable[[Health], None]

#: Stored events read at a time by a re-validation run.
REVALIDATION_CHUNK = 2_000

#: Pending re-validation of every title (a fragment changed).
_EVERY_TITLE = object()


def build_registry(settings: Settings) -> SchemaRegistry:
    return SchemaRegistry(
        schema_sources(settings),
        secure=settings.secure_schemas,
        allow_absolute_uris=settings.allow_absolute_schema_uris,
        local_dirs_given=bool(settings.schema_dirs),
    )


class Sandbox:
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
        self.writer = writer_cls(
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

    # lifecycle -------------------------------------------------------------------------
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

    # store health ----------------------------------------------------------------------
    def add_store_listener(self, listener: StoreListener) -> None:
        """Hear of every change of the store's health (on the event loop's thread)."""
        self._store_listeners.append(listener)

    @property
    def store_health(self) -> Health:
        return self._health

    def check_store(self) -> Health:
        """Look at the store now (its writer, its file); tell listeners when its health
        changed. Cheap: one stat() of the database path."""
        if self._file_error is None:  # once gone, gone: the open file stays the old one
            self._file_error = file_problem(self.settings.db, self._store_file)
        now = health(self.writer, self._file_error)
        if now != self._health:
            self._health = now
            log.warning("store: %s", now.detail or now.state)
            for listener in list(self._store_listeners):
                try:
                    listener(now)
                except Exception:
                    log.exception("store listener failed")
        return now

    def store_problem(self) -> StoreError | None:
        """Why nothing may be acknowledged now, beyond what a write itself reports: the
        database file is gone or replaced, or the store process cannot be restarted."""
        return self._file_error or self.writer.fatal

    async def _watch_store(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                self.check_store()
            except Exception:
                log.exception("store check failed")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), CHECK_EVERY)

    # overrides -------------------------------------------------------------------------
    def _write_overrides(self, fn: Callable[[Any], Any]) -> Any:
        """Run an overrides write on the store's single writer and wait for it (called
        from a worker thread, never on the event loop)."""
        return self.writer.run_in_writer(fn).result(timeout=60)

    def refresh_overrides(self) -> bool:
        """Pick up override changes made by any process (the CLI, the API, the TUI) and a
        changed experiments file; True when the overrides changed. Also picks up a changed
        chaos setting (refresh_chaos), so one poll serves both. Blocks on SQLite."""
        self.refresh_chaos()
        self._reload_experiments()
        if self.overrides is None:
            return False
        self.overrides.refresh()
        # Compared with what this sandbox last applied, not with the Overrides object's own
        # cache, which its reads and writes refresh too.
        if self.overrides.revision == self._overrides_revision:
            return False
        self._overrides_revision = self.overrides.revision
        rates = self.overrides.rate_overrides()
        if rates != self.stream_rate_overrides:
            self.stream_rate_overrides = rates  # rebinding: readers never see it half-made
            self.pipeline.rate_overrides = rates
        return True

    async def refresh_overrides_async(self) -> bool:
        return await asyncio.get_running_loop().run_in_executor(None, self.refresh_overrides)

    # chaos -------------------------------------------------------------------------------
    @property
    def chaos_store(self) -> ChaosStore:
        if self._chaos_store is None:
            raise RuntimeError("the sandbox is not started")
        return self._chaos_store

    def add_chaos_listener(self, listener: ChaosListener) -> None:
        """Hear of every change of the chaos setting (called on the thread that noticed)."""
        self._chaos_listeners.append(listener)

    def refresh_chaos(self) -> bool:
        """Apply the stored chaos setting if any process changed it; True when it did.
        One read of one row when nothing changed. Blocks on SQLite."""
        if self._chaos_store is None:
            return False
        # The poll and an API write may both look: the lock keeps them from applying two
        # changes in the wrong order.
        with self._chaos_lock:
            # Compared with what this sandbox applied, not with the store object's cache,
            # which its own writes refresh too.
            state = self._chaos_store.state()
            if state.revision == self.chaos_state.revision:
                return False
            # Rebinding: a request in flight keeps the object it started with.
            self.chaos = None if state.settings is None else Chaos(state.settings)
            self.chaos_state = state
            for listener in list(self._chaos_listeners):
                try:
                    listener(state)
                except Exception:
                    log.exception("chaos listener failed")
        return True

    async def refresh_chaos_async(self) -> bool:
        return await asyncio.get_running_loop().run_in_executor(None, self.refresh_chaos)

    def chaos_summary(self) -> dict[str, Any]:
        """The setting in force and what it did to this intake's requests so far."""
        out = self.chaos_state.as_dict()
        chaos = self.chaos
        out["counts"] = dict(chaos.counts) if chaos is not None else {}
        return out

    def _reload_experiments(self) -> None:
        path = self.settings.experiments_file
        if not path:
            return
        mtime = _mtime(path)
        if mtime == self._experiments_mtime:
            return
        self._experiments_mtime = mtime
        try:
            self.experiments = load_experiments(path)
        except ExperimentsError as exc:
            self.experiments_error = str(exc)
            log.warning("experiments file not reloaded, keeping the last good copy: %s", exc)
            return
        self.experiments_error = None
        self.pipeline.experiments = self.experiments
        if self.overrides is not None:
            self.overrides.experiments = self.experiments

    async def _poll_overrides(self, stop: asyncio.Event, every: float = 1.0) -> None:
        while not stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
            if stop.is_set():
                return
            try:
                await self.refresh_overrides_async()
            except Exception:  # a locked or vanished file must not end the polling
                log.debug("overrides refresh failed", exc_info=True)

    @property
    def stream_configs(self) -> StreamConfigs | None:
        """The stream configs in force (None: no --stream-config, every stream allowed)."""
        return self.pipeline.stream_configs

    async def load_stream_configs(self) -> None:
        """First load of --stream-config, off the event loop; raises StreamConfigError."""
        if self.stream_source is None:
            return
        loop = asyncio.get_running_loop()
        configs = await loop.run_in_executor(None, self.stream_source.load)
        self.pipeline.stream_configs = configs

    def _stream_configs_changed(self, configs: StreamConfigs) -> None:
        self.pipeline.stream_configs = configs

    async def start_stream_refresh(self) -> None:
        if self.stream_source is None or self.stream_source.refresh_s <= 0:
            return
        self._stream_stop = asyncio.Event()
        self._stream_task = asyncio.create_task(
            self.stream_source.run(self._stream_stop), name="stream-config-refresh"
        )

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

    # re-validation -----------------------------------------------------------------------
    def add_revalidation_listener(self, listener: RevalidationListener) -> None:
        self._revalidation_listeners.append(listener)

    def schemas_changed(self, paths: set[str]) -> None:
        """The watcher saw schema files change: judge the stored events of the schemas they
        hold again. Changes that arrive during a run are gathered into the next one."""
        roots = [s.root for s in self.registry.sources if isinstance(s, DirectorySource)]
        titles = titles_for_paths(paths, roots)
        if titles is None or self._pending_titles is _EVERY_TITLE:
            self._pending_titles = _EVERY_TITLE
        else:
            self._pending_titles = (self._pending_titles or set()) | titles
        if self._revalidation_task is None or self._revalidation_task.done():
            self._revalidation_task = asyncio.create_task(
                self._revalidate_pending(), name="revalidation"
            )

    async def _revalidate_pending(self) -> None:
        while self._pending_titles is not None:
            pending, self._pending_titles = self._pending_titles, None
            titles = None if pending is _EVERY_TITLE else pending
            try:
                await self.revalidate(titles=titles, trigger="schema change")
            except Exception:  # a store problem must not end the watching
                log.exception("re-validation after a schema change failed")

    async def revalidate(
        self,
        *,
        titles: set[str] | list[str] | None = None,
        limit: int | str | None = "default",
        trigger: str = "asked",
    ) -> Report:
        """Judge stored events again with the schemas as they are now; record and announce
        every verdict that flips. ``limit``: newest events taken (None: all; "default": the
        settings' --revalidate)."""
        if limit == "default":
            limit = self.settings.revalidate_limit
        if self._revalidation_lock is None:
            self._revalidation_lock = asyncio.Lock()
        loop = asyncio.get_running_loop()
        async with self._revalidation_lock:
            report = Report(
                trigger=trigger,
                titles=None if titles is None else sorted(titles),
                limit=limit,  # type: ignore[arg-type]
            )
            t0 = time.perf_counter()

            # Judged on a worker thread, with a short sleep every few dozen events so the
            # intake's loop gets the interpreter: it keeps answering while a run is judged.
            # Read a chunk at a time (newest first): `all` of a large store never sits in
            # memory at once.
            def judge() -> Callable[[Any], int]:
                before, left = None, report.limit
                while left is None or left > 0:
                    n = REVALIDATION_CHUNK if left is None else min(REVALIDATION_CHUNK, left)
                    rows = self.reader.revalidation_candidates(report.titles, n, before)
                    if not rows:
                        break
                    rejudge(self.pipeline, rows, report, pause=lambda: time.sleep(0.0005))
                    before = rows[-1]["id"]
                    left = None if left is None else left - len(rows)
                report.seconds = time.perf_counter() - t0
                report.problems = dict(self.registry.load_errors)
                return store_call(report)

            call = await loop.run_in_executor(None, judge)
            report.run_id = await asyncio.wrap_future(self.writer.run_in_writer(call))
        for listener in list(self._revalidation_listeners):
            try:
                listener(report)
            except Exception:
                log.exception("re-validation listener failed")
        return report

    # intents ---------------------------------------------------------------------------
    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    @contextlib.asynccontextmanager
    async def judging_turn(self, body_bytes: int) -> AsyncIterator[bool]:
        """A request's turn to parse and judge; yields whether to judge it in slices.

        A big body (over ``BIG_BODY`` bytes) takes its turn behind the others, and its
        steps (parsing, judging a few milliseconds at a time: slicing.py) leave the event
        loop free in between: four 10,000-event posts judged in one go held /readyz for
        5 s. A small request is judged at once unless a big one is being judged, then it
        waits its turn: requests are judged one after another in the order they got here,
        so the findings that depend on earlier events come out as before."""
        if body_bytes <= BIG_BODY and not self._judging.locked():
            yield False
            return
        async with self._judging:
            self._last_big = time.monotonic()
            try:
                yield body_bytes > BIG_BODY
            finally:
                self._last_big = time.monotonic()

    async def judge(
        self, events: list[Any], ctx: Any, working: list[Any] | None = None, *, sliced=False
    ) -> list[EventRecord]:
        """Judge a request's events, in slices with the loop free between them if asked
        (inside a ``judging_turn``)."""
        if not sliced:
            return self.pipeline.judge_batch(events, ctx, working)

        def work(start: int, end: int) -> list[EventRecord]:
            part = working[start:end] if working is not None else None
            return self.pipeline.judge_batch(events[start:end], ctx, part, start)

        return await map_in_slices(len(events), work)

    @property
    def busy_with_big_batches(self) -> bool:
        """A big batch is being judged, or was a moment ago (more are likely to follow)."""
        return self._judging.locked() or time.monotonic() - self._last_big < 2.0

    def reserve(self, n_events: int) -> bool:
        return self.writer.reserve_ok(n_events)

    def note_refused(self, request: RequestRecord) -> None:
        self.refused_backlog += 1
        self.writer.submit_unbounded_note(request)

    async def store(self, request: RequestRecord, events: list[EventRecord]) -> list[Committed]:
        """Write a request and its events; return only after they are committed."""
        problem = self.store_problem()
        if problem is not None:
            self.write_failures += 1
            raise problem
        submit_async = getattr(self.writer, "submit_async", None)
        if submit_async is not None and len(events) > BIG_BATCH:
            fut = await self.writer.submit_async_sliced(request, events)
        elif submit_async is not None:
            fut = submit_async(request, events)
        else:
            fut = asyncio.wrap_future(self.writer.submit(request, events))
        try:
            request_id, event_ids = await fut
        except StoreError:
            self.write_failures += 1
            raise
        return self._committed(request_id, event_ids, events)

    def store_later(self, request: RequestRecord, events: list[EventRecord]) -> None:
        """Queue a write without waiting for it (hasty requests); listeners still hear of
        the events only once committed. Raises BacklogFull or StoreError when refused."""
        problem = self.store_problem()
        if problem is not None:
            self.write_failures += 1
            raise problem
        loop = asyncio.get_running_loop()

        def done(fut) -> None:
            if fut.exception() is not None:
                loop.call_soon_threadsafe(self._count_failure)
                return
            request_id, event_ids = fut.result()
            loop.call_soon_threadsafe(self._committed, request_id, event_ids, events)

        self.writer.submit(request, events).add_done_callback(done)

    def _count_failure(self) -> None:
        self.write_failures += 1

    def _committed(
        self, request_id: int, event_ids: list[int], events: list[EventRecord]
    ) -> list[Committed]:
        committed = [
            Committed(eid, request_id, rec) for eid, rec in zip(event_ids, events, strict=True)
        ]
        self.notify(committed)
        return committed

    def notify(self, committed: list[Committed]) -> None:
        """Tell listeners that the store changed (committed events, or a reset)."""
        self.waits.changed()
        for listener in list(self._listeners):
            try:
                listener(committed)
            except Exception:  # a broken face must not break the intake
                log.exception("event listener failed")

    async def reset(self) -> None:
        """Delete every stored request and event, and everything derived from them: the
        platform rules' memory (duplicates, funnels, sessions, exposures), which would
        otherwise judge new events against deleted ones, and the failure counters."""
        await asyncio.wrap_future(self.writer.reset())
        self.pipeline.history.clear()
        self.write_failures = 0
        self.refused_backlog = 0
        self.notify([])

    async def wait_for(self, flt: Any, count: int, timeout: float) -> int | None:
        """Wait until at least `count` stored events match; None on timeout (one count per
        change shared by every waiter with the same filter: see waits.py)."""
        return await self.waits.wait_for(flt, count, timeout)

    async def _count_in_thread(self, flt: Any) -> int:
        return await asyncio.get_running_loop().run_in_executor(None, self.reader.count_events, flt)


#: Bodies over this many bytes are parsed and judged in their turn, in slices (slicing.py).
BIG_BODY = 64 * 1024
#: Batches with more events than this are encoded for the store in slices.
BIG_BATCH = 64


def _filter_key(flt: Any) -> tuple[str, str]:
    """Filters that select the same rows share a count (see waits.py); None is every row."""
    where, params = (flt or EventFilter()).where()
    return where, repr(params)


def _mtime(path: str) -> float | None:
    try:
        return os.stat(path).st_mtime_ns / 1e9
    except OSError:
        return None
