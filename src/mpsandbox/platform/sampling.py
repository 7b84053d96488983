"""The client-side sampling decision (PLATFORM.md §5).

``in_sample = int(id[0:8], 16) / 4294967295 < rate`` with ``id`` chosen by the stream's
``sample.unit``. The two client families differ at the edges:

- web (Metrics Platform JS, Test Kitchen): ``rate`` 0 (falsy), a missing or
  out-of-range rate, and any unit but ``pageview``/``session`` are out of sample; an id
  starting ``ffffffff`` normalises to exactly 1.0 and is out even at rate 1.
- app (Java/Android, iOS): ``rate == 1`` is in and ``rate == 0`` is out before anything
  is computed; units ``session``, ``pageview`` and ``device`` (``agent.app_install_id``).

No ``sample`` config at all means in sample for both.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

UINT32_MAX = 4294967295  # 2**32 - 1, the JS/Java divisor

Rule = Literal["web", "app"]

#: sample unit -> (object, field) of the identifier it samples by
UNIT_IDENTIFIERS: dict[str, tuple[str, str]] = {
    "pageview": ("performer", "pageview_id"),
    "session": ("performer", "session_id"),
    "device": ("agent", "app_install_id"),
}
WEB_UNITS = frozenset({"pageview", "session"})
APP_UNITS = frozenset({"pageview", "session", "device"})

APP_PLATFORMS = frozenset({"android", "ios"})
APP_FAMILIES = frozenset({"app"})


def identifier_field(unit: str) -> str | None:
    """The dotted event path a unit samples by (``performer.session_id``), or None."""
    pair = UNIT_IDENTIFIERS.get(unit)
    return f"{pair[0]}.{pair[1]}" if pair else None


def identifier_for(event: dict[str, Any], unit: str) -> str | None:
    """The event's identifier for a sample unit, or None when absent or not a string."""
    pair = UNIT_IDENTIFIERS.get(unit)
    if pair is None:
        return None
    parent = event.get(pair[0])
    value = parent.get(pair[1]) if isinstance(parent, dict) else None
    return value if isinstance(value, str) else None


def _is_rate(rate: Any) -> bool:
    return isinstance(rate, int | float) and not isinstance(rate, bool)


def sampling_value(identifier: str | None) -> float | None:
    """``parseInt(id.slice(0, 8), 16) / 4294967295`` as JavaScript computes it.

    JavaScript's parseInt reads the leading hex digits and stops at the first other
    character; with none it gives NaN (returned here as None, which is never in sample).
    """
    if not isinstance(identifier, str):
        return None
    digits = ""
    for ch in identifier[:8]:
        if ch in "0123456789abcdefABCDEF":
            digits += ch
        else:
            break
    if not digits:
        return None
    return int(digits, 16) / UINT32_MAX


def _app_sampling_value(identifier: str | None) -> float | None:
    """Java's ``Long.parseLong(id.substring(0, 8), 16)``: all eight must be hex (else it throws)."""
    if not isinstance(identifier, str) or len(identifier) < 8:
        return None
    head = identifier[:8]
    if any(ch not in "0123456789abcdefABCDEF" for ch in head):
        return None
    return int(head, 16) / UINT32_MAX


def web_in_sample(identifier: str | None, rate: Any, unit: str) -> bool:
    """The JS rule (``SamplingController.streamInSample`` with a sample config)."""
    if not _is_rate(rate) or not rate or rate < 0 or rate > 1:
        return False
    if unit not in WEB_UNITS:
        return False
    value = sampling_value(identifier)
    return value is not None and value < rate


def app_in_sample(identifier: str | None, rate: Any, unit: str = "session") -> bool:
    """The Java/Android rule: rate 1 is in and rate 0 is out before computing anything."""
    if not _is_rate(rate):
        return False
    if rate == 1.0:
        return True
    if rate == 0.0:
        return False
    if unit not in APP_UNITS:
        return False
    value = _app_sampling_value(identifier)
    return value is not None and value < rate


def rule_for(event: dict[str, Any]) -> Rule:
    """Which client rule produced the event: ``app`` for Android/iOS apps, else ``web``."""
    agent = event.get("agent")
    if isinstance(agent, dict):
        platform = agent.get("client_platform")
        family = agent.get("client_platform_family")
        if platform in APP_PLATFORMS or family in APP_FAMILIES:
            return "app"
    return "web"


@dataclass(frozen=True)
class SamplingDecision:
    """Everything behind one event's sampling decision."""

    unit: Any
    rate: Any
    identifier_field: str | None
    identifier: str | None
    value: float | None
    web_in_sample: bool
    app_in_sample: bool
    rule: Rule
    in_sample: bool

    def as_facts(self) -> dict[str, Any]:
        return asdict(self)


def decide(event: dict[str, Any], sample: dict[str, Any] | None) -> SamplingDecision | None:
    """The decision for an event under a stream's ``sample`` config; None when the
    stream does not sample (every event is in sample)."""
    if not isinstance(sample, dict):
        return None
    unit = sample.get("unit")
    rate = sample.get("rate")
    unit_key = unit if isinstance(unit, str) else ""
    ident = identifier_for(event, unit_key)
    web = web_in_sample(ident, rate, unit_key)
    app = app_in_sample(ident, rate, unit_key)
    rule = rule_for(event)
    return SamplingDecision(
        unit=unit,
        rate=rate,
        identifier_field=identifier_field(unit_key),
        identifier=ident,
        value=sampling_value(ident),
        web_in_sample=web,
        app_in_sample=app,
        rule=rule,
        in_sample=app if rule == "app" else web,
    )
