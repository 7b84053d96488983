"""Full garbage collections when the intake is idle, not in the middle of a big batch.

CPython starts a full collection by itself whenever the heap has grown by a quarter; with
four 10,000-event posts in flight the heap holds millions of objects and each of those
collections stopped the event loop for 170-270 ms (measured), however finely the judging
was sliced. So the served intake (``serve`` and the TUI's intake child, never a library
user's process) turns automatic full collections off, freezes what start-up made (modules,
compiled schemas: never garbage), and collects in full itself: every ``IDLE_EVERY``
seconds when no big batch is being judged, and at least every ``MAX_GAP`` seconds
regardless. Reference counting frees almost everything anyway, so only cyclic garbage
waits, and never long.

Young objects are still collected by CPython, but after ``YOUNG`` allocations instead of its
700: each request parses and judges thousands of objects that live until their store
commit, so at 700 a collection ran every few events and traversed the whole request (7-9 us
of CPU per event of 10-event bodies, measured, plus the cache it evicted). A collection
costs about what the young objects it walks cost, so fewer, larger ones cost less in all:
at ``YOUNG`` a collection walks ~10,000 objects (~2 ms) and the objects of the requests in
flight are mostly freed before the count reaches it. While big batches are judged
CPython's own thresholds are back (:func:`big_batch_turn`, as a batch takes its turn,
before it is parsed; the intake's again once ``busy()`` is over, looked at every ``TICK``
seconds): such a batch keeps everything it parsed alive, and small collections keep each
pause short.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Callable

IDLE_EVERY = 5.0
MAX_GAP = 30.0
#: Generation-2 threshold high enough that CPython never starts a full collection itself.
_NEVER = 1_000_000_000
#: Net allocations between young collections, and young collections per middle one.
YOUNG, OLDER = 10_000, 5
#: Seconds between looks at ``busy()``.
TICK = 0.25


#: The thresholds for big batches while collections are paced, else None.
_big_batches: tuple[int, int, int] | None = None


def big_batch_turn() -> None:
    """A big batch takes its turn: CPython's own young thresholds from now on, while the
    collections are paced (the pacer puts the intake's back when the batches are done)."""
    if _big_batches is not None:
        gc.set_threshold(*_big_batches)


async def pace_collections(busy: Callable[[], bool], stop: asyncio.Event) -> None:
    """Run until ``stop`` is set; ``busy()`` says a big batch is being judged now."""
    global _big_batches
    before = gc.get_threshold()
    many_small = (YOUNG, OLDER, _NEVER)
    big_batches = _big_batches = (before[0], before[1], _NEVER)
    gc.collect()
    gc.freeze()
    gc.set_threshold(*many_small)
    last = time.monotonic()
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), TICK)
            is_busy = busy()
            gc.set_threshold(*(big_batches if is_busy else many_small))
            gap = time.monotonic() - last
            if gap >= MAX_GAP or (gap >= IDLE_EVERY and not is_busy):
                gc.collect()
                last = time.monotonic()
    finally:
        _big_batches = None
        gc.set_threshold(*before)
        gc.unfreeze()
