"""The hand-over between the intake host's reader thread and the UI's loop.

The host calls :meth:`Feed.push` with every committed batch; it only adds numbers under a
lock and asks for one wake-up, so it never waits for the UI. The UI drains the totals when
it is ready (at most a few times a second however fast events arrive).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mpsandbox.host import Batch


@dataclass(slots=True)
class Drained:
    """What happened since the previous drain."""

    events: int = 0
    by_verdict: dict[str, int] = field(default_factory=dict)
    newest_id: int = 0
    reset: bool = False
    #: (monotonic time, events) per pushed batch, for the events-per-second rate.
    arrivals: list[tuple[float, int]] = field(default_factory=list)


class Feed:
    def __init__(self, wake: Callable[[], None]):
        self._wake = wake
        self._lock = threading.Lock()
        self._pending = Drained()
        self._asked = False

    def push(self, batch: Batch) -> None:
        with self._lock:
            p = self._pending
            if batch.reset:  # what came before the reset no longer exists
                self._pending = p = Drained(reset=True)
            for verdict, n in batch.by_verdict.items():
                p.by_verdict[verdict] = p.by_verdict.get(verdict, 0) + n
            p.newest_id = max(p.newest_id, batch.newest_id)
            if batch.events:
                p.events += batch.events
                p.arrivals.append((time.monotonic(), batch.events))
            ask, self._asked = not self._asked, True
        if ask:
            self._wake()

    def drain(self) -> Drained:
        with self._lock:
            out, self._pending = self._pending, Drained()
            self._asked = False
        return out
