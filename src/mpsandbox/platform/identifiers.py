"""Identifier and time conventions per producer (PLATFORM.md §6).

- web (``mediawiki_js`` and other MediaWiki producers): session and pageview ids are
  20 lowercase hex characters (80 random bits); ``dt`` is ISO-8601 UTC with
  milliseconds and ``Z`` (``Date.prototype.toISOString``).
- Android / the Java library: ids are 20 hex characters; ``dt`` is whole seconds.
- iOS app: ids are 20 hex characters (five 4-hex-digit groups concatenated);
  the Swift library uses an uppercase UUID with dashes instead.
- ``agent.app_install_id`` (apps): a UUID.
- Legacy events carry ``client_dt`` and no ``dt``; the server fills ``dt``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Literal

from mpsandbox.fillins import utc_seconds

PlatformKind = Literal["web", "android", "ios", "unknown"]

WEB_ID_RE = re.compile(r"[0-9a-f]{20}")
HEX20_RE = re.compile(r"[0-9a-fA-F]{20}")
UPPER_UUID_RE = re.compile(r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}")
UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

#: ISO-8601 UTC with exactly three fractional digits and Z, as JS toISOString writes it.
DT_MILLIS_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
#: ISO-8601 UTC with Z, whole seconds or any fraction (Java/Android, iOS).
DT_APP_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z")

#: A dt more than this many seconds ahead of the receive time is flagged.
MAX_FUTURE_SKEW_S = 5 * 60
#: A dt more than this many seconds behind the receive time is flagged.
MAX_PAST_SKEW_S = 24 * 60 * 60

#: What each format check expects, for messages and facts.
ID_EXPECTATIONS: dict[str, str] = {
    "web": "20 lowercase hex characters",
    "android": "20 hex characters",
    "ios": "20 hex characters (iOS app) or an uppercase UUID with dashes (Swift library)",
    "unknown": "20 hex characters or an uppercase UUID with dashes",
}
DT_EXPECTATIONS: dict[str, str] = {
    "web": "ISO-8601 UTC with milliseconds and Z (YYYY-MM-DDTHH:MM:SS.sssZ)",
    "android": "ISO-8601 UTC with Z, whole seconds (YYYY-MM-DDTHH:MM:SSZ)",
    "ios": "ISO-8601 UTC with Z",
    "unknown": "ISO-8601 UTC with Z",
}


def platform_kind(event: dict[str, Any]) -> PlatformKind:
    """The producer family from ``agent.client_platform`` (and its family)."""
    agent = event.get("agent")
    platform = agent.get("client_platform") if isinstance(agent, dict) else None
    family = agent.get("client_platform_family") if isinstance(agent, dict) else None
    if platform == "android":
        return "android"
    if platform == "ios":
        return "ios"
    if isinstance(platform, str) and platform.startswith("mediawiki"):
        return "web"
    if family in ("desktop_browser", "mobile_browser"):
        return "web"
    return "unknown"


def id_form(value: Any) -> str | None:
    """Which known id form a value has: ``hex20-lower``, ``hex20``, ``uuid-upper``,
    ``uuid`` or None."""
    if not isinstance(value, str):
        return None
    if WEB_ID_RE.fullmatch(value):
        return "hex20-lower"
    if HEX20_RE.fullmatch(value):
        return "hex20"
    if UPPER_UUID_RE.fullmatch(value):
        return "uuid-upper"
    if UUID_RE.fullmatch(value):
        return "uuid"
    return None


def session_id_ok(value: Any, kind: PlatformKind) -> bool:
    """Whether a session or pageview id has the format of the producer family."""
    form = id_form(value)
    if kind == "web":
        return form == "hex20-lower"
    if kind == "android":
        return form in ("hex20-lower", "hex20")
    return form in ("hex20-lower", "hex20", "uuid-upper")


def app_install_id_ok(value: Any) -> bool:
    return isinstance(value, str) and UUID_RE.fullmatch(value) is not None


def dt_format_ok(value: Any, kind: PlatformKind) -> bool:
    if not isinstance(value, str):
        return False
    if kind == "web":
        return DT_MILLIS_RE.fullmatch(value) is not None
    return DT_APP_RE.fullmatch(value) is not None


def parse_dt(value: Any) -> float | None:
    """Epoch seconds of an ISO-8601 timestamp with a zone, or None when unparsable or
    without a zone."""
    if not isinstance(value, str) or not value:
        return None
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    # Python 3.11's fromisoformat takes at most 6 fractional digits: trim longer ones.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.timestamp()


def dt_skew(value: Any, received_at: float) -> float | None:
    """``dt - received_at`` in seconds (positive: the client clock is ahead)."""
    parsed = parse_dt(value)
    return None if parsed is None else parsed - received_at


def skew_problem(skew: float | None) -> Literal["future", "past"] | None:
    if skew is None:
        return None
    if skew > MAX_FUTURE_SKEW_S:
        return "future"
    if skew < -MAX_PAST_SKEW_S:
        return "past"
    return None


def iso_utc(epoch: float) -> str:
    """Epoch seconds as ISO-8601 UTC with milliseconds and Z (the datetime's milliseconds:
    rounded to the microsecond, then cut), the second's text remembered (it is asked for
    every event)."""
    if not 0 <= epoch < 253402300800:  # before 1970 or after 9999: the long way
        moment = datetime.fromtimestamp(epoch, tz=UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    whole = int(epoch)
    us = round((epoch - whole) * 1e6)
    if us >= 1_000_000:
        whole, us = whole + 1, us - 1_000_000
    return f"{utc_seconds(whole)}.{us // 1000:03d}Z"


def is_legacy_schema(event: dict[str, Any]) -> bool:
    """Whether the server fills ``dt`` for this event (schema title under analytics/legacy)."""
    schema = event.get("$schema")
    return isinstance(schema, str) and schema.lstrip("/").startswith("analytics/legacy")
