"""Judging a request's events without holding the event loop.

A part of :class:`~mpsandbox.sandbox.Sandbox` (a mixin): the state it reads and writes is
set up in ``Sandbox.__init__``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Collection
from typing import Any

from mpsandbox.records import EventRecord
from mpsandbox.slicing import map_in_slices

log = logging.getLogger(__name__)

#: Bodies over this many bytes are parsed and judged in their turn, in slices (slicing.py).
BIG_BODY = 64 * 1024


class _AtOnce(contextlib.AbstractAsyncContextManager):
    """The turn of a small request while no big one is judged: now, not in slices."""

    async def __aenter__(self) -> bool:
        return False

    async def __aexit__(self, *exc_info: object) -> None:
        return None


_AT_ONCE = _AtOnce()


class Judging:
    """Takes requests in turn and judges big ones in slices (slicing.py)."""

    def judging_turn(self, body_bytes: int) -> contextlib.AbstractAsyncContextManager[bool]:
        """A request's turn to parse and judge; yields whether to judge it in slices.

        A big body (over ``BIG_BODY`` bytes) takes its turn behind the others, and its
        steps (parsing, judging a few milliseconds at a time: slicing.py) leave the event
        loop free in between: four 10,000-event posts judged in one go held /readyz for
        5 s. A small request is judged at once unless a big one is being judged, then it
        waits its turn: requests are judged one after another in the order they got here,
        so the findings that depend on earlier events come out as before."""
        if body_bytes <= BIG_BODY and not self._judging.locked():
            return _AT_ONCE  # every request but a few: no generator-based context
        return self._waited_turn(body_bytes)

    @contextlib.asynccontextmanager
    async def _waited_turn(self, body_bytes: int) -> AsyncIterator[bool]:
        async with self._judging:
            self._last_big = time.monotonic()
            if self.on_big_turn is not None and body_bytes > BIG_BODY:
                self.on_big_turn()
            try:
                yield body_bytes > BIG_BODY
            finally:
                self._last_big = time.monotonic()

    async def judge(
        self,
        events: list[Any],
        ctx: Any,
        *,
        sliced=False,
        skip: Collection[int] = (),
    ) -> list[EventRecord]:
        """Judge a request's events, in slices with the loop free between them if asked
        (inside a ``judging_turn``). ``skip``: positions left unjudged (chaos fails them
        before judging); the result holds the others, in order, each at its position."""
        if not sliced and not skip:
            return self.pipeline.judge_batch(events, ctx)

        def work(start: int, end: int) -> list[EventRecord]:
            if skip:
                return [
                    self.pipeline.judge(events[i], ctx, i)
                    for i in range(start, end)
                    if i not in skip
                ]
            return self.pipeline.judge_batch(events[start:end], ctx, start)

        if not sliced:
            return work(0, len(events))
        return await map_in_slices(len(events), work)

    @property
    def busy_with_big_batches(self) -> bool:
        """A big batch is being judged, or was a moment ago (more are likely to follow)."""
        return self._judging.locked() or time.monotonic() - self._last_big < 2.0
