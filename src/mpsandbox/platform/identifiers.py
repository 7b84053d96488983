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
#: Apps start a new session after 30 minutes in the background (PLATFORM.md §6).
APP_SESSION_TIMEOUT_S = 30 * 60

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
    if not isinstance(agent, dict):
        return "unknown"
    key = (agent.get("client_platform"), agent.get("client_platform_family"))
    try:
        kind = _PLATFORM_KINDS.get(key)
    except TypeError:  # a list or an object as the platform: nothing to remember
        return _platform_kind(*key)
    if kind is None:
        if len(_PLATFORM_KINDS) >= 1024:
            _PLATFORM_KINDS.clear()
        kind = _PLATFORM_KINDS[key] = _platform_kind(*key)
    return kind


def _platform_kind(platform: Any, family: Any) -> PlatformKind:
    if platform == "android":
        return "android"
    if platform == "ios":
        return "ios"
    if isinstance(platform, str) and platform.startswith("mediawiki"):
        return "web"
    if family in ("desktop_browser", "mobile_browser"):
        return "web"
    return "unknown"


#: (client_platform, client_platform_family) -> platform kind, for the few pairs seen.
_PLATFORM_KINDS: dict[tuple[Any, Any], PlatformKind] = {}


#: Bounded memos of the pure functions below, keyed by the string judged: session and
#: pageview ids repeat for many events, and a dt is parsed by the time rules, the funnel
#: and the session checks alike. Cleared whole when full (cheaper than an LRU).
_MEMO_SIZE = 8192
_ID_FORMS: dict[str, str | None] = {}
_DT: dict[str, tuple[bool, bool, float | None]] = {}
_UNSEEN: Any = object()
_LOWER_HEX = "0123456789abcdef"
_ANY_HEX = "0123456789abcdefABCDEF"


def _remember(memo: dict, key: str, value: Any) -> Any:
    if len(memo) >= _MEMO_SIZE:
        memo.clear()
    memo[key] = value
    return value


def id_form(value: Any) -> str | None:
    """Which known id form a value has: ``hex20-lower``, ``hex20``, ``uuid-upper``,
    ``uuid`` or None."""
    if not isinstance(value, str):
        return None
    form = _ID_FORMS.get(value, _UNSEEN)
    if form is not _UNSEEN:
        return form
    form = None
    if len(value) == 20:
        # strip() removes every character of the set: nothing left means all were in it.
        if not value.strip(_LOWER_HEX):
            form = "hex20-lower"
        elif not value.strip(_ANY_HEX):
            form = "hex20"
    elif UPPER_UUID_RE.fullmatch(value):
        form = "uuid-upper"
    elif UUID_RE.fullmatch(value):
        form = "uuid"
    return _remember(_ID_FORMS, value, form)


#: The id forms each producer family uses for session and pageview ids.
_SESSION_FORMS: dict[str, tuple[str, ...]] = {
    "web": ("hex20-lower",),
    "android": ("hex20-lower", "hex20"),
    "ios": ("hex20-lower", "hex20", "uuid-upper"),
    "unknown": ("hex20-lower", "hex20", "uuid-upper"),
}
#: Per family, the verdict of session_id_ok for each id string seen (a memo).
_SESSION_OK: dict[str, dict[str, bool]] = {kind: {} for kind in _SESSION_FORMS}


def session_id_ok(value: Any, kind: PlatformKind) -> bool:
    """Whether a session or pageview id has the format of the producer family."""
    memo = _SESSION_OK.get(kind)
    if memo is not None and type(value) is str:
        ok = memo.get(value)
        if ok is None:
            if len(memo) >= _MEMO_SIZE:
                memo.clear()
            ok = memo[value] = id_form(value) in _SESSION_FORMS[kind]
        return ok
    return id_form(value) in _SESSION_FORMS.get(kind, _SESSION_FORMS["unknown"])


def app_install_id_ok(value: Any) -> bool:
    return isinstance(value, str) and id_form(value) in ("uuid-upper", "uuid")


DtFacts = tuple[bool, bool, float | None]
_NOT_A_DT: DtFacts = (False, False, None)


def dt_facts(value: Any) -> DtFacts:
    """(JS form with milliseconds, app form, epoch seconds or None) of a ``dt``, from one
    memo: the time rules, the funnel and the session checks all ask about the same dt."""
    if not isinstance(value, str) or not value:
        return _NOT_A_DT
    hit = _DT.get(value)
    if hit is not None:
        return hit
    millis = DT_MILLIS_RE.fullmatch(value) is not None
    app = millis or DT_APP_RE.fullmatch(value) is not None
    if len(_DT) >= _MEMO_SIZE:
        _DT.clear()
    hit = _DT[value] = (millis, app, _parse_dt(value, millis))
    return hit


def dt_format_ok(value: Any, kind: PlatformKind) -> bool:
    return dt_facts(value)[0 if kind == "web" else 1]


def parse_dt(value: Any) -> float | None:
    """Epoch seconds of an ISO-8601 timestamp with a zone, or None when unparsable or
    without a zone."""
    return dt_facts(value)[2]


def _parse_dt(value: str, millis: bool) -> float | None:
    if millis and value.isascii():
        # The common form (JS toISOString): Python reads its Z as UTC directly, the same
        # instant as the general path below.
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            pass
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    # Python 3.11's fromisoformat takes at most 6 fractional digits: trim longer ones.
    text = _LONG_FRACTION.sub(r"\1", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.timestamp()


_LONG_FRACTION = re.compile(r"(\.\d{6})\d+")


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
