"""Messages the app posts to its screens.

The intake thread never touches widgets: it fills :class:`~mpsandbox.tui.feed.Feed` and
posts one :class:`StoreChanged`; a burst of commits collapses into a single pending message
(``can_replace``), and the data waits in the feed, not in the message queue.
"""

from __future__ import annotations

from textual.message import Message


class StoreChanged(Message):
    """Events were committed or the store was reset; read the feed for what changed."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, StoreChanged)


class StoreHealthChanged(Message):
    """The store stopped (or started again) being writable: ``health`` is
    ``Health.as_dict()`` (see store/health.py), for the header."""

    def __init__(self, health: dict) -> None:
        super().__init__()
        self.health = health


class OverridesChanged(Message):
    """A screen changed the local overrides (``what`` says how, for people); screens that
    show overrides or rates read them again."""

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what


class Revalidated(Message):
    """The intake judged stored events again (a schema changed, or someone asked);
    ``report`` is the run's summary as the core gives it."""

    def __init__(self, report: dict) -> None:
        super().__init__()
        self.report = report


class ChaosChanged(Message):
    """The chaos setting changed (here, or in another process: the intake noticed);
    ``state`` is ``ChaosState.as_dict()``."""

    def __init__(self, state: dict) -> None:
        super().__init__()
        self.state = state
