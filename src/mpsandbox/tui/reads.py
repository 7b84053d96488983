"""The app's read side: one SQLite reader and the threads its reads run on.

Screens read through :meth:`StoreReads.read` (quick reads that put rows on screen) and
:meth:`StoreReads.read_slow` (scans that may take seconds, one at a time, so they never hold
up the quick ones). SQLite never blocks the UI's loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from mpsandbox.config import Settings
from mpsandbox.records import VERDICTS
from mpsandbox.store import EventFilter, StoreError, StoreReader

T = TypeVar("T")


class StoreReads:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.reader: StoreReader | None = None
        self._reads = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="mp-read")
        self._slow_reads = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mp-scan")

    def open(self) -> str | None:
        """Open the reader once the database exists; the problem, if it cannot be opened."""
        if self.reader is not None or not Path(self.settings.db).exists():
            return None
        try:
            self.reader = StoreReader(self.settings.db)
        except StoreError as exc:
            return str(exc)
        return None

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a store read on a reader thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reads, partial(fn, *args, **kwargs))

    async def read_slow(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """:meth:`read` for scans that may take seconds (full counts): they run one at a
        time on a thread of their own. Queued work that is no longer wanted should check
        that when it starts and return at once (it cannot be cancelled once running)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._slow_reads, partial(fn, *args, **kwargs))

    def close(self) -> None:
        """Stop reading. Closing a connection while another thread steps a query on it
        crashes the process (a count over a million rows can take seconds): drop queued
        reads, stop running ones, wait for the reader threads, and only then close."""
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


def verdict_counts(reader: StoreReader) -> dict[str, int]:
    """Events by verdict: one range of the (verdict, id) index each, where ``stats()`` also
    scans every request (a second per million events)."""
    return {v: reader.count_events(EventFilter(verdict=v)) for v in VERDICTS}


def _interrupt(reader: StoreReader) -> None:
    """Make the reader's running queries stop at their next step (StoreReader has no public
    way yet; sqlite3's interrupt() is safe to call from any thread)."""
    for conn in list(getattr(reader, "_connections", ())):
        with contextlib.suppress(Exception):
            conn.interrupt()
