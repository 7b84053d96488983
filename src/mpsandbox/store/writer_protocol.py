"""The one write interface of the store: what the sandbox (and anything else) may ask of a
writer, whichever writer it is.

Two writers implement it: :class:`~mpsandbox.store.writer.StoreWriter` (a thread in this
process) and :class:`~mpsandbox.store.process_writer.ProcessStoreWriter` (a child process,
so SQLite gets a core of its own). Callers hold a ``Writer`` and call it; they never probe
which one they have (looking a method up by name, with a fallback when it is absent), where
a method one of them lacked would be a silent fallback on one path, never tested.
``tests/test_writer_protocol.py`` checks that both satisfy it, member by member.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol

from ..records import EventRecord, RequestRecord
from .database import StoreError


class Writer(Protocol):
    """The store's single writer, as its callers use it.

    Writes resolve to ``(request_row_id, [event_row_ids])`` once committed (a 201 may be
    answered then, not before) or fail with StoreError; a backlog past
    ``max_backlog_events`` raises BacklogFull with nothing queued.
    """

    path: str
    max_backlog_events: int
    #: The most recent failure of any kind, for status displays.
    last_error: StoreError | None
    #: The latest write's failure, None once one succeeds: what readiness reports.
    write_error: StoreError | None
    #: Set when the writer can never write again (a store process that could not be
    #: restarted); ``on_fatal(error)`` is then called once, from a thread.
    fatal: StoreError | None
    on_fatal: Callable[[StoreError], Any] | None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Open (creating and migrating) the database; raise StoreError when it cannot."""

    def close(self, timeout: float | None = 30) -> None:
        """Commit everything queued, then stop."""

    @property
    def running(self) -> bool: ...

    @property
    def state(self) -> str:
        """ "ok", "restarting", "failed" or "closed"."""

    # -- writing requests and events -------------------------------------------------------
    def reserve_ok(self, n: int) -> bool:
        """Would ``n`` more events fit in the backlog now? (Advisory.)"""

    def submit(self, request: RequestRecord, events: list[EventRecord]) -> Future:
        """Queue a write; a concurrent future of its row ids."""

    def submit_async(
        self, request: RequestRecord, events: list[EventRecord]
    ) -> asyncio.Future[tuple[int, list[int]]]:
        """`submit` for a caller on an event loop: a future of the running loop."""

    async def submit_async_sliced(
        self, request: RequestRecord, events: list[EventRecord]
    ) -> asyncio.Future[tuple[int, list[int]]]:
        """`submit_async` for a big batch, encoded a slice at a time with the loop free."""

    def submit_unbounded_note(self, request: RequestRecord) -> Future:
        """Record a request without events even when the backlog is full (a refusal);
        bounded by count and bytes, dropped beyond them. Resolves to the row id or None."""

    # -- maintenance -----------------------------------------------------------------------
    def run_in_writer(self, fn: Callable[[sqlite3.Connection], Any]) -> Future:
        """Run ``fn(connection)`` on the write connection after everything queued before
        it (the process writer needs ``fn`` to pickle)."""

    def flush(self) -> Future:
        """Resolves once everything submitted before it is handled."""

    def reset(self) -> Future:
        """Delete every request and event."""

    def run_retention(self, max_events: int | None, max_age_s: float | None) -> Future:
        """Apply retention once, to completion."""

    def stats(self) -> dict[str, Any]:
        """Counters for status displays and the API's ``writer``."""
