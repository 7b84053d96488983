"""Messages between the intake, the app and its screens.

The intake's reader thread never touches widgets: it fills :class:`~mpsandbox.tui.feed.Feed`
and posts one :class:`EventsWaiting` to the app (a burst of commits collapses into a single
pending message, ``can_replace``; the data waits in the feed, not in the message queue). The
app drains the feed a few times a second at most and posts :class:`StoreChanged` to the
screens in view; the other messages reach the screens the same way, and screens handle them
with ``@on(...)``. None of them bubble: a message the app posted to a screen must not come
back to the app.
"""

from __future__ import annotations

from typing import Any

from textual.message import Message


class EventsWaiting(Message, bubble=False):
    """To the app: the feed holds committed events (or a reset) not shown yet."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, EventsWaiting)


class StoreHealthChanged(Message, bubble=False):
    """The store stopped (or started again) being writable: ``health`` is
    ``Health.as_dict()`` (see store/health.py), for the header."""

    def __init__(self, health: dict) -> None:
        super().__init__()
        self.health = health


class StoreChanged(Message, bubble=False):
    """To screens: events were committed (``reset``: the store was emptied first)."""

    def __init__(self, reset: bool = False) -> None:
        super().__init__()
        self.reset = reset

    def can_replace(self, message: Message) -> bool:
        # A flood collapses into the newest pending message, which keeps any reset.
        if isinstance(message, StoreChanged):
            message.reset = message.reset or self.reset
            return True
        return False


class OverridesChanged(Message, bubble=False):
    """The local overrides changed (``what`` says how, for people): a screen that changed
    them asks the app to tell the screens in view; those that show overrides or rates read
    again."""

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what


class Revalidated(Message, bubble=False):
    """The intake judged stored events again (a schema changed, or someone asked);
    ``report`` is the run's summary as the core gives it."""

    def __init__(self, report: dict[str, Any]) -> None:
        super().__init__()
        self.report = report


class ChaosChanged(Message, bubble=False):
    """The chaos setting changed (here, or in another process: the intake noticed);
    ``state`` is ``ChaosState.as_dict()``."""

    def __init__(self, state: dict[str, Any]) -> None:
        super().__init__()
        self.state = state
