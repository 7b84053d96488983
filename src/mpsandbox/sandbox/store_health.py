"""The store's health as the intake sees it: its writer process, its database file.

A part of :class:`~mpsandbox.sandbox.Sandbox` (a mixin): the state it reads and writes is
set up in ``Sandbox.__init__``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from mpsandbox.store import StoreError
from mpsandbox.store.health import CHECK_EVERY, Health, file_problem, health

log = logging.getLogger(__name__)

StoreListener = Callable[[Health], None]


class StoreHealth:
    """Watches the store and tells listeners when it stops or starts taking writes."""

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
