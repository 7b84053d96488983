"""Writing requests and events, telling listeners once committed, waiting for them.

A part of :class:`~mpsandbox.sandbox.Sandbox` (a mixin): the state it reads and writes is
set up in ``Sandbox.__init__``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mpsandbox.records import EventRecord, RequestRecord
from mpsandbox.store import EventFilter, StoreError

log = logging.getLogger(__name__)

#: Batches with more events than this are encoded for the store in slices.
BIG_BATCH = 64


@dataclass(slots=True)
class Committed:
    """A stored event: its row id and the record it was stored from."""

    event_id: int
    request_id: int
    record: EventRecord


Listener = Callable[[list[Committed]], None]


class Storing:
    """The intents that change the store (store, store later, reset) and the waits on it."""

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

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
        if len(events) > BIG_BATCH:
            fut = await self.writer.submit_async_sliced(request, events)
        else:
            fut = self.writer.submit_async(request, events)
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


def _filter_key(flt: Any) -> tuple[str, str]:
    """Filters that select the same rows share a count (see waits.py); None is every row."""
    where, params = (flt or EventFilter()).where()
    return where, repr(params)
