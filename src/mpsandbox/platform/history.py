"""Findings that need what came before: duplicates, funnels, sessions, repeated exposures.

:func:`rules.evaluate` judges one event alone; this tracker remembers a bounded recent past
(in memory, newest kept) and judges each new event against it. Funnel steps are ordered by
``dt``, never by arrival, because concurrent beacons arrive out of order; a step is judged
against the steps known when it arrives (the Sessions view re-judges a whole funnel with
:func:`funnel_steps`).
"""

from __future__ import annotations

import bisect
import hashlib
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from mpsandbox.platform.findings import KINDS, Finding
from mpsandbox.platform.identifiers import parse_dt, platform_kind
from mpsandbox.records import field_at

#: Apps start a new session after 30 minutes in the background (PLATFORM.md §6).
APP_SESSION_TIMEOUT_S = 30 * 60
EXPOSURE_ACTION = "experiment_exposure"


def _finding(kind: str, message: str, **facts: Any) -> Finding:
    return Finding(kind, KINDS[kind].severity, message, facts)


def fingerprint(event: Any) -> str:
    """The same JSON as received, whatever the key order."""
    try:
        data = orjson.dumps(event, option=orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        data = repr(event).encode()
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class _Bounded(OrderedDict):
    """A dict that forgets its oldest entries past ``limit``."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit

    def remember(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)


@dataclass(slots=True)
class FunnelStep:
    dt: float
    position: int
    ref: Any = None
    #: A funnel.gap finding was given to this step (and not retracted yet).
    gap: bool = False


@dataclass(slots=True)
class Funnel:
    steps: list[FunnelStep] = field(default_factory=list)

    def add(self, step: FunnelStep) -> int:
        keys = [(s.dt, s.position) for s in self.steps]
        index = bisect.bisect_right(keys, (step.dt, step.position))
        self.steps.insert(index, step)
        return index


def funnel_steps(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Judge a whole funnel at once (events of one instrument and entry token), by dt.

    Returns the steps in dt order, each with ``problems``: ``repeat``, ``gap`` (positions
    missing before it) or ``disorder`` (its position is lower than the step before it).
    """
    steps = []
    for e in events:
        pos = field_at(e, "funnel_event_sequence_position")
        if isinstance(pos, int) and not isinstance(pos, bool):
            steps.append((parse_dt(field_at(e, "dt")) or 0.0, pos, e))
    steps.sort(key=lambda s: (s[0], s[1]))
    out: list[dict[str, Any]] = []
    seen: set[int] = set()
    previous: int | None = None
    for dt, pos, e in steps:
        problems = []
        if pos in seen:
            problems.append("repeat")
        elif previous is not None and pos < previous:
            problems.append("disorder")
        elif (previous is not None and pos > previous + 1) or (previous is None and pos > 1):
            problems.append("gap")
        seen.add(pos)
        previous = pos if previous is None else max(previous, pos)
        out.append({"dt": dt, "position": pos, "event": e, "problems": problems})
    return out


class History:
    """What recent events looked like, enough to judge the next one. Thread-compatible
    (one intake loop calls it); memory is bounded by the limits below."""

    def __init__(self, *, max_events: int = 200_000, max_groups: int = 50_000):
        self._meta_ids = _Bounded(max_events)
        self._prints = _Bounded(max_events)
        self._funnels = _Bounded(max_groups)
        self._sessions = _Bounded(max_groups)
        self._exposures = _Bounded(max_groups)
        self._retracted: list[tuple[str, Any]] = []

    def take_retractions(self) -> list[tuple[str, Any]]:
        """(kind, ref) of findings given earlier that later events proved wrong: a funnel
        gap filled by a step that arrived late but belongs before it by dt."""
        out, self._retracted = self._retracted, []
        return out

    def clear(self) -> None:
        """Forget everything seen (the store was reset: the past is gone)."""
        for table in (self._meta_ids, self._prints, self._funnels, self._sessions, self._exposures):
            table.clear()
        self._retracted = []

    def observe(self, event: Any, *, received_at: float, ref: Any = None) -> list[Finding]:
        """Remember ``event`` and return what is wrong with it given the past."""
        if not isinstance(event, dict):
            return []
        found: list[Finding] = []
        found += self._duplicates(event, received_at, ref)
        found += self._funnel(event, ref)
        found += self._session(event)
        found += self._exposure(event, ref)
        return found

    def _duplicates(self, event: dict, received_at: float, ref: Any) -> list[Finding]:
        found = []
        meta_id = field_at(event, "meta", "id")
        if isinstance(meta_id, str) and meta_id:
            first = self._meta_ids.get(meta_id)
            if first is not None:
                found.append(
                    _finding(
                        "duplicate.meta_id",
                        f"meta.id {meta_id} was already received",
                        meta_id=meta_id,
                        first_received_at=first[0],
                        first=first[1],
                    )
                )
            else:
                self._meta_ids.remember(meta_id, (received_at, ref))
        print_ = fingerprint(event)
        first = self._prints.get(print_)
        if first is not None:
            found.append(
                _finding(
                    "duplicate.event",
                    "the same event (identical JSON) was already received",
                    first_received_at=first[0],
                    first=first[1],
                )
            )
        else:
            self._prints.remember(print_, (received_at, ref))
        return found

    def _funnel(self, event: dict, ref: Any) -> list[Finding]:
        pos = event.get("funnel_event_sequence_position")
        token = event.get("funnel_entry_token")
        if not isinstance(pos, int) or isinstance(pos, bool) or not token:
            return []
        instrument = event.get("instrument_name") or event.get("funnel_name") or ""
        key = (str(instrument), str(token))
        funnel = self._funnels.get(key) or Funnel()
        self._funnels.remember(key, funnel)
        dt = parse_dt(event.get("dt"))
        facts = {"instrument": instrument, "funnel_entry_token": token, "position": pos}
        if any(s.position == pos for s in funnel.steps):
            funnel.add(FunnelStep(dt or 0.0, pos, ref))
            return [_finding("funnel.repeat", f"funnel step {pos} was already received", **facts)]
        step = FunnelStep(dt or 0.0, pos, ref)
        index = funnel.add(step)
        self._retract_filled_gaps(funnel)
        before = funnel.steps[index - 1] if index > 0 else None
        after = funnel.steps[index + 1] if index + 1 < len(funnel.steps) else None
        if (before is not None and before.position > pos) or (
            after is not None and after.position < pos
        ):
            other = before if before is not None and before.position > pos else after
            return [
                _finding(
                    "funnel.disorder",
                    f"by dt, step {pos} and step {other.position} are in the wrong order",
                    **facts,
                    other_position=other.position,
                    other=other.ref,
                )
            ]
        expected = 1 if before is None else before.position + 1
        if pos > expected:
            missing = list(range(expected, pos))
            step.gap = True
            return [
                _finding(
                    "funnel.gap",
                    f"funnel step {pos} arrived, but step{'s' * (len(missing) > 1)} "
                    f"{', '.join(map(str, missing[:5]))} before it (by dt) did not",
                    **facts,
                    missing=missing[:20],
                )
            ]
        return []

    def _retract_filled_gaps(self, funnel: Funnel) -> None:
        for i, s in enumerate(funnel.steps):
            if not s.gap:
                continue
            expected = 1 if i == 0 else funnel.steps[i - 1].position + 1
            if s.position <= expected:
                s.gap = False
                self._retracted.append(("funnel.gap", s.ref))

    def _session(self, event: dict) -> list[Finding]:
        session = field_at(event, "performer", "session_id")
        if not isinstance(session, str) or platform_kind(event) not in ("android", "ios"):
            return []
        dt = parse_dt(event.get("dt"))
        if dt is None:
            return []
        last = self._sessions.get(session)
        self._sessions.remember(session, max(dt, last or dt))
        if last is not None and dt - last > APP_SESSION_TIMEOUT_S:
            gap = dt - last
            return [
                _finding(
                    "session.inactive_kept_id",
                    f"{gap / 60:.0f} minutes after the previous event, the app kept session "
                    f"{session}",
                    session_id=session,
                    inactive_s=round(gap, 3),
                    timeout_s=APP_SESSION_TIMEOUT_S,
                )
            ]
        return []

    def _exposure(self, event: dict, ref: Any) -> list[Finding]:
        if event.get("action") != EXPOSURE_ACTION:
            return []
        pageview = field_at(event, "performer", "pageview_id")
        name = field_at(event, "experiment", "name") or field_at(event, "experiment", "enrolled")
        if not pageview or not name:
            return []
        key = (str(pageview), str(name))
        if key in self._exposures:
            first = self._exposures[key]
            return [
                _finding(
                    "experiment.repeated_exposure",
                    f"experiment {name} was already exposed in pageview {pageview}",
                    experiment=name,
                    pageview_id=pageview,
                    first=first,
                )
            ]
        self._exposures.remember(key, ref)
        return []


def funnel_key(event: Any) -> tuple[str, str] | None:
    """The funnel an event is a step of: (instrument, funnel_entry_token), as the stateful
    check groups them; None when it is no funnel step."""
    if not isinstance(event, dict):
        return None
    pos = event.get("funnel_event_sequence_position")
    token = event.get("funnel_entry_token")
    if not isinstance(pos, int) or isinstance(pos, bool) or not token:
        return None
    return str(event.get("instrument_name") or event.get("funnel_name") or ""), str(token)


def session_funnels(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every funnel among one session's events, each judged whole by :func:`funnel_steps`.

    Returns ``{"instrument", "token", "steps", "problems"}`` per funnel (in order of first
    appearance); ``problems`` counts each problem kind over the funnel's steps.
    """
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for e in events:
        key = funnel_key(e)
        if key is not None:
            groups.setdefault(key, []).append(e)
    out = []
    for (instrument, token), members in groups.items():
        steps = funnel_steps(members)
        problems: dict[str, int] = {}
        for s in steps:
            for p in s["problems"]:
                problems[p] = problems.get(p, 0) + 1
        out.append({"instrument": instrument, "token": token, "steps": steps, "problems": problems})
    return out


def dt_gaps(dts: Iterable[Any]) -> list[float | None]:
    """Seconds from each timestamp (ISO-8601 ``dt``) to the one before it in the list:
    None for the first and wherever either side does not parse."""
    out: list[float | None] = []
    previous: float | None = None
    for value in dts:
        t = parse_dt(value)
        out.append(None if t is None or previous is None else t - previous)
        if t is not None:
            previous = t
    return out
