"""What a developer sets locally beside the events: overrides, chaos, experiments.

A part of :class:`~mpsandbox.sandbox.Sandbox` (a mixin): the state it reads and writes is
set up in ``Sandbox.__init__``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections.abc import Callable
from typing import Any

from mpsandbox.chaos import Chaos, ChaosSettings, ChaosState, ChaosStore
from mpsandbox.overrides import OverrideError
from mpsandbox.platform.experiments import ExperimentsError, load_experiments
from mpsandbox.store import StoreError

log = logging.getLogger(__name__)

ChaosListener = Callable[[ChaosState], None]

#: The changes of the overrides a face may ask for (methods of overrides.Overrides, each
#: taking ``set_by`` last).
OVERRIDE_CHANGES = frozenset(("set", "set_mpo", "delete", "clear", "clear_all", "revert_last"))


class LocalSettings:
    """Keeps the overrides, the chaos setting and the experiments file in force equal to what any process (the CLI, the API, the TUI) stored or edited."""

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

    async def change_overrides(self, change: str, *args: Any, set_by: str = "api") -> Any:
        """One change of the local overrides (``Overrides.<change>(*args, set_by)``), the
        intent every face sends (the API, the TUI through the intake's child process):
        committed by the store's single writer, then in force at once (the served stream
        configs follow). Raises OverrideError for a bad change, StoreError when the store
        cannot take it."""
        if change not in OVERRIDE_CHANGES:
            raise OverrideError(f"no such change of the overrides: {change!r}")
        if self.overrides is None:
            raise StoreError("the store is not open", kind="closed")
        write = functools.partial(getattr(self.overrides, change), *args, set_by)
        result = await asyncio.get_running_loop().run_in_executor(None, write)
        await self.refresh_overrides_async()
        return result

    async def set_chaos(self, settings: ChaosSettings | None, set_by: str = "api") -> dict:
        """Store a chaos setting (None: off) through the single writer and put it in force
        for the next request; returns ``{"chaos", "previous"}``."""
        store = self.chaos_store
        change = await asyncio.get_running_loop().run_in_executor(None, store.set, settings, set_by)
        await self.refresh_chaos_async()
        return change

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


def _mtime(path: str) -> float | None:
    try:
        return os.stat(path).st_mtime_ns / 1e9
    except OSError:
        return None
