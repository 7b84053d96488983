"""Telling the screens: committed events, overrides and re-validations, at a pace the UI
can follow.

A mixin of the app (it needs the app's message loop, timers and status). Events wait in the
feed; :class:`~mpsandbox.tui.messages.EventsWaiting` wakes the app, which drains the feed at
most every REFRESH_INTERVAL (less often under load, and not right after a key press) and
posts one :class:`~mpsandbox.tui.messages.StoreChanged` to each screen in view. Screens of
other modes are not told: they catch up when they resume.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from textual import events, work
from textual.message import Message

from mpsandbox.store import StoreError
from mpsandbox.tui.messages import EventsWaiting, OverridesChanged, Revalidated, StoreChanged
from mpsandbox.tui.reads import verdict_counts
from mpsandbox.tui.safe_text import clean

#: Shortest gap between two table refreshes while events stream in.
REFRESH_INTERVAL = 0.1
#: The gap while events arrive faster than a reader can follow them one by one: each refresh
#: costs the UI a read and a repaint, and fewer of them leave more of the CPU to key presses.
BUSY_REFRESH_INTERVAL = 0.25
BUSY_RATE = 200.0
#: After a key press, refreshes wait this long: the key's own work (a move, a read, a
#: repaint) gets the UI's loop and its reader threads to itself.
KEY_GRACE = 0.12
#: ...but a held-down key must not stop the table from moving on for longer than this.
MAX_DEFER = 0.6
#: Window over which the header's events-per-second rate is averaged.
RATE_WINDOW = 5.0


class Delivery:
    """Mixin of :class:`~mpsandbox.tui.app.MpSandboxApp`."""

    def tell_screens(self, make: Callable[[], Message]) -> None:
        """Post a fresh message to every mounted screen of the current mode."""
        for screen in self.screen_stack:
            if screen.is_mounted:
                screen.post_message(make())

    # -- events arriving ---------------------------------------------------------------------
    def on_events_waiting(self, message: EventsWaiting) -> None:
        """Coalesce: at most one refresh per REFRESH_INTERVAL, however fast events come."""
        if self._delivery_pending:
            return
        interval = BUSY_REFRESH_INTERVAL if self.status.rate > BUSY_RATE else REFRESH_INTERVAL
        due = max(self._last_delivery + interval, self._last_key + KEY_GRACE)
        wait = due - time.monotonic()
        if wait > 0:
            self._delivery_pending = True
            self.set_timer(wait, self._deliver)
        else:
            self._deliver()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, (events.Key, events.MouseDown)):
            self._last_key = time.monotonic()
        await super().on_event(event)

    def _deliver(self, reset: bool = False) -> None:
        now = time.monotonic()
        grace = self._last_key + KEY_GRACE - now
        if grace > 0 and not reset and now - self._last_delivery < MAX_DEFER:
            self.set_timer(grace, self._deliver)  # still pending: a key came in meanwhile
            return
        self._delivery_pending = False
        self._last_delivery = time.monotonic()
        drained = self.feed.drain()
        reset = reset or drained.reset
        self._arrivals.extend(drained.arrivals)
        if drained.reset:
            self._refresh_counts()
        elif drained.events:
            counts = dict(self.status.counts)
            for verdict, n in drained.by_verdict.items():
                counts[verdict] = counts.get(verdict, 0) + n
            self.status = replace(self.status, counts=counts)
        if drained.events or reset:
            self.tell_screens(lambda: StoreChanged(reset))

    # -- other news --------------------------------------------------------------------------
    def overrides_changed(self, what: str) -> None:
        """A screen changed the local overrides (``what`` says how): tell the screens."""
        self.tell_screens(lambda: OverridesChanged(what))

    def on_revalidated(self, message: Revalidated) -> None:
        report = message.report
        by_change = report.get("by_change") or {}
        if by_change:
            changes = ", ".join(f"{n:,} {change}" for change, n in sorted(by_change.items()))
            text = f"{report.get('checked', 0):,} stored events judged again: {changes}."
            text += f" Press {self.screen_key('flips')} for the flips."
        else:
            text = f"{report.get('checked', 0):,} stored events judged again: no verdict changed."
        for problem in sorted((report.get("problems") or {}).values())[:3]:
            text += f"\n{clean(problem, 300)}"
        title = "Schema changed" if report.get("trigger") == "schema change" else "Re-validated"
        severity = "warning" if by_change or report.get("problems") else "information"
        self.notify(text, title=title, severity=severity, timeout=8, markup=False)
        self.tell_screens(lambda: Revalidated(report))

    # -- the header's numbers ------------------------------------------------------------------
    @work(exclusive=True, group="counts")
    async def _refresh_counts(self) -> None:
        if self.reader is None:
            return
        try:
            counts = await self.read_slow(verdict_counts, self.reader)
        except StoreError as exc:
            self._set_status(store_problem=str(exc))
            return
        self._set_status(counts=counts)

    def _update_rate(self) -> None:
        now = time.monotonic()
        while self._arrivals and self._arrivals[0][0] < now - RATE_WINDOW:
            self._arrivals.popleft()
        rate = sum(n for _, n in self._arrivals) / RATE_WINDOW
        if rate != self.status.rate:
            self._set_status(rate=rate)
