"""How each real producer shapes its POSTs (PLATFORM.md §1).

| producer | body | content type |
|---|---|---|
| ``js`` Metrics Platform JS library | array of N events (one page's queue) | text/plain;charset=UTF-8 |
| ``eventlogging`` ``mw.eventLog.submit`` | one bare object per POST | text/plain;charset=UTF-8 |
| ``testkitchen`` ``mw.testKitchen`` | array of exactly one | text/plain;charset=UTF-8 |
| ``android`` Java client | array | application/json |
| ``ios`` Swift client | array | application/json |

Browsers post to ``/v1/events?hasty=true`` (their configured URL); the apps to
``/v1/events``. ``dt`` is ISO-8601 UTC with milliseconds, except Java's whole seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mpsandbox import jsonio
from mpsandbox.fixtures.formats import FixtureRequest
from mpsandbox.simulate.world import format_dt

TEXT_PLAIN = "text/plain;charset=UTF-8"
APP_JSON = "application/json"
INTAKE_PATH = "/v1/events"


@dataclass(frozen=True)
class Producer:
    name: str
    content_type: str
    #: "array" (N events), "object" (one bare object), "one" (an array of exactly one)
    shape: str
    family: str  # web | app
    query: str
    user_agent: str
    whole_second_dt: bool = False


BROWSER_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0 Safari/537.36"
)
PRODUCERS: dict[str, Producer] = {
    "js": Producer("js", TEXT_PLAIN, "array", "web", "hasty=true", BROWSER_UA),
    "eventlogging": Producer("eventlogging", TEXT_PLAIN, "object", "web", "hasty=true", BROWSER_UA),
    "testkitchen": Producer("testkitchen", TEXT_PLAIN, "one", "web", "hasty=true", BROWSER_UA),
    "android": Producer(
        "android",
        APP_JSON,
        "array",
        "app",
        "",
        "WikipediaApp/2.7.50470-r-2026-02-27 (Android 14; Phone) Dev Channel",
        whole_second_dt=True,
    ),
    "ios": Producer(
        "ios", APP_JSON, "array", "app", "", "WikipediaApp/7.7.1.5001 (iOS 18.1; Phone)"
    ),
}


@dataclass
class Item:
    """One event to send. ``dt`` is stamped when its POST goes out (``t`` keeps the epoch);
    ``dt_before`` / ``dt_after`` tie its time to another item's (a bug's), ``bad_dt``
    writes it in the wrong format."""

    event: dict[str, Any]
    stream: str
    t: float | None = None
    dt_before: Item | None = None
    dt_after: Item | None = None
    bad_dt: bool = False
    #: the bug injected into this item, if any (see bugs.py)
    bugged: str | None = None


@dataclass
class Batch:
    """One POST of one producer."""

    producer: Producer
    items: list[Item] = field(default_factory=list)

    def stamp(self, now: float, *, spacing: float = 0.05) -> None:
        """Give every event its ``dt``: the JS library's queue was filled over the last
        moments, so earlier events are a little older."""
        n = len(self.items)
        for i, item in enumerate(self.items):
            t = now - (n - 1 - i) * spacing
            if item.dt_before is not None and item.dt_before.t is not None:
                t = item.dt_before.t - spacing / 5
            if item.dt_after is not None and item.dt_after.t is not None:
                t = max(t, item.dt_after.t + 0.002)
            item.t = t
            if item.bad_dt:
                dt = format_dt(t, whole_seconds=True)  # a web client must send milliseconds
            else:
                dt = format_dt(t, whole_seconds=self.producer.whole_second_dt)
            item.event["dt"] = dt

    def body(self) -> bytes:
        events = [item.event for item in self.items]
        if self.producer.shape == "object":
            assert len(events) == 1, "EventLogging posts one bare object"
            return jsonio.dumps(events[0])
        if self.producer.shape == "one":
            assert len(events) == 1, "Test Kitchen posts an array of one"
        return jsonio.dumps(events)

    def request(self) -> FixtureRequest:
        p = self.producer
        headers = [("Content-Type", p.content_type), ("User-Agent", p.user_agent)]
        return FixtureRequest("POST", INTAKE_PATH, p.query, headers, self.body())
