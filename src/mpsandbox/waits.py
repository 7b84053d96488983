"""Waiting until enough stored events match a filter, one count shared by all who wait.

Each waiter counting on its own made every commit cost one ``count(*)`` per waiter: 100
waiting test runners cut intake throughput four times. Here waiters with the same filter
share one watch, which counts once per change (changes that arrive during a count are
answered by one more count, not one each) and at most every ``MIN_INTERVAL`` seconds, and
hands the result to every waiter. A waiter only trusts a count that started after it began
waiting, so a reset just before it arrived cannot answer it with an old number.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

#: Seconds between two counts of one filter while events keep arriving.
MIN_INTERVAL = 0.05
#: Seconds between counts when nothing is heard (another process may write the store).
IDLE_RECOUNT = 1.0


class _Watch:
    __slots__ = (
        "counted",
        "error",
        "filter",
        "finished",
        "started",
        "task",
        "value",
        "waiters",
        "wake",
    )

    def __init__(self, flt: Any):
        self.filter = flt
        self.waiters = 0
        self.task: asyncio.Task | None = None
        #: Counts started, and the number of the last one finished with its value.
        self.started = 0
        self.finished = 0
        self.value = 0
        #: Why counting stopped (the store failed): raised to every waiter.
        self.error: BaseException | None = None
        self.wake = asyncio.Event()
        self.counted = asyncio.Event()


class SharedWaits:
    """Watches keyed by filter; ``count`` returns how many stored events match one."""

    def __init__(self, count: Callable[[Any], Awaitable[int]], key: Callable[[Any], Hashable]):
        self._count, self._key = count, key
        self._watches: dict[Hashable, _Watch] = {}
        self.counts_run = 0

    def changed(self) -> None:
        """The store changed (a commit or a reset): every watch counts again."""
        for watch in self._watches.values():
            watch.wake.set()

    async def wait_for(self, flt: Any, count: int, timeout: float) -> int | None:
        """Wait until at least ``count`` stored events match ``flt``; None on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        key = self._key(flt)
        watch = self._watches.get(key)
        if watch is None:
            watch = self._watches[key] = _Watch(flt)
            watch.task = asyncio.create_task(self._run(key, watch), name="sandbox-wait-count")
        watch.waiters += 1
        need = watch.started + 1
        watch.wake.set()
        try:
            while True:
                counted = watch.counted
                if watch.error is not None:
                    raise watch.error
                if watch.finished >= need and watch.value >= count:
                    return watch.value
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(counted.wait(), remaining)
        finally:
            watch.waiters -= 1

    async def _run(self, key: Hashable, watch: _Watch) -> None:
        loop = asyncio.get_running_loop()
        try:
            while watch.waiters > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(watch.wake.wait(), IDLE_RECOUNT)
                watch.wake.clear()
                watch.started += 1
                number = watch.started
                began = loop.time()
                watch.value = await self._count(watch.filter)
                self.counts_run += 1
                watch.finished = number
                watch.counted.set()
                watch.counted = asyncio.Event()
                await asyncio.sleep(max(0.0, MIN_INTERVAL - (loop.time() - began)))
        except Exception as exc:  # the store failed: tell the waiters rather than hang them
            watch.error = exc
        finally:
            if self._watches.get(key) is watch:
                del self._watches[key]
            watch.counted.set()  # nobody may stay waiting on a watch that ended
