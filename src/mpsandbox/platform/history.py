"""Findings that need what came before: duplicates, funnels, sessions, repeated exposures.

:func:`rules.evaluate` judges one event alone; this tracker remembers a bounded recent past
(in memory, newest kept) and judges each new event against it. Funnel steps are ordered by
``dt``, never by arrival, because concurrent beacons arrive out of order; a step is judged
against the steps known when it arrives (the Sessions view re-judges a whole funnel with
:func:`funnel_steps`).
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from mpsandbox.platform.findings import Finding, Found
from mpsandbox.platform.identifiers import APP_SESSION_TIMEOUT_S, dt_facts, parse_dt, platform_kind
from mpsandbox.records import field_at

__all__ = ["APP_SESSION_TIMEOUT_S", "EXPOSURE_ACTION", "History", "fingerprint"]

EXPOSURE_ACTION = "experiment_exposure"
#: Producers whose sessions time out after 30 minutes in the background.
APP_KINDS = ("android", "ios")


def fingerprint(event: Any) -> int:
    """The same JSON as received, whatever the key order: a 64-bit hash of its canonical
    text (kept in memory only; at 200,000 remembered events a false match is about as
    likely as 1 in 10^14 per event)."""
    try:
        data = orjson.dumps(event, option=orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        data = repr(event).encode()
    return hash(data)


class _Bounded(OrderedDict):
    """A dict that forgets its oldest entries past ``limit``."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit

    def remember(self, key: Any, value: Any) -> None:
        if key in self:
            self.move_to_end(key)
        self.add(key, value)

    def add(self, key: Any, value: Any) -> None:
        """Remember a key not remembered yet (the caller just looked it up)."""
        self[key] = value
        if len(self) > self.limit:
            self.popitem(last=False)


@dataclass(slots=True)
class FunnelStep:
    dt: float
    position: int
    ref: Any = None
    #: A funnel.gap finding was given to this step (and not retracted yet).
    gap: bool = False


#: Steps remembered per funnel: a real funnel has a handful; a client that repeats one
#: entry token forever (a load generator replaying one body) must not grow one without end.
MAX_FUNNEL_STEPS = 256


def _step_key(step: FunnelStep) -> tuple[float, int]:
    return step.dt, step.position


#: Up to this many steps, a funnel finds a repeated position by looking at each step.
_FEW_STEPS = 16


class _Steps(list):
    """One funnel's remembered steps, ordered by dt, then position. Past ``_FEW_STEPS``
    steps it also counts the steps at each position, so a repeated step is found without
    walking them all (a client replaying one body fills every funnel MAX_FUNNEL_STEPS
    deep); a real funnel has a handful of steps and no counts (50,000 funnels are kept)."""

    __slots__ = ("positions",)

    def __init__(self, first: FunnelStep):
        super().__init__((first,))
        self.positions: dict[int, int] | None = None

    def holds(self, position: int) -> bool:
        """Whether a remembered step has this position."""
        positions = self.positions
        if positions is None:
            if len(self) <= _FEW_STEPS:
                return any(s.position == position for s in self)
            positions = self.positions = {}
            for s in self:
                positions[s.position] = positions.get(s.position, 0) + 1
        return position in positions

    def add(self, step: FunnelStep) -> int:
        """Put a step in, forgetting the earliest beyond MAX_FUNNEL_STEPS; its index."""
        positions = self.positions
        if len(self) >= MAX_FUNNEL_STEPS:
            dropped = self.pop(0).position
            if positions is not None:
                left = positions[dropped] - 1
                if left:
                    positions[dropped] = left
                else:
                    del positions[dropped]
        key = _step_key(step)
        if not self or _step_key(self[-1]) <= key:
            index = len(self)  # the usual case: steps arrive in dt order
            self.append(step)
        else:
            index = bisect.bisect_right(self, key, key=_step_key)
            self.insert(index, step)
        if positions is not None:
            positions[step.position] = positions.get(step.position, 0) + 1
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
        if not self._retracted:
            return []
        out, self._retracted = self._retracted, []
        return out

    def clear(self) -> None:
        """Forget everything seen (the store was reset: the past is gone)."""
        for table in (self._meta_ids, self._prints, self._funnels, self._sessions, self._exposures):
            table.clear()
        self._retracted = []

    def observe(self, event: Any, *, received_at: float, ref: Any = None) -> list[Finding]:
        """Remember ``event`` and return what is wrong with it given the past, rendered."""
        return [Finding.of(f) for f in self.find(event, received_at=received_at, ref=ref)]

    def find(
        self, event: Any, *, received_at: float, ref: Any = None, kind: str | None = None
    ) -> list[Found]:
        """Remember ``event`` and return what is wrong with it given the past, as the store
        keeps findings. ``kind``: the event's platform kind when the caller has it."""
        if not isinstance(event, dict):
            return []
        found: list[Found] = []
        meta = event.get("meta")
        meta_id = meta.get("id") if isinstance(meta, dict) else None
        if isinstance(meta_id, str) and meta_id:
            first = self._meta_ids.get(meta_id)
            if first is not None:
                facts = {"meta_id": meta_id, "first_received_at": first[0], "first": first[1]}
                found.append(("duplicate.meta_id", facts))
            else:
                self._meta_ids.add(meta_id, (received_at, ref))
        try:
            print_ = hash(orjson.dumps(event, option=orjson.OPT_SORT_KEYS))
        except (TypeError, orjson.JSONEncodeError):
            print_ = fingerprint(event)
        prints = self._prints
        first = prints.get(print_)
        if first is not None:
            facts = {"first_received_at": first[0], "first": first[1]}
            found.append(("duplicate.event", facts))
        else:
            prints[print_] = (received_at, ref)
            if len(prints) > prints.limit:
                prints.popitem(last=False)
        if "funnel_event_sequence_position" in event:
            found += self._funnel(event, ref)
        performer = event.get("performer")
        session = performer.get("session_id") if isinstance(performer, dict) else None
        if isinstance(session, str) and (kind or platform_kind(event)) in APP_KINDS:
            found += self._session(event, session)
        if event.get("action") == EXPOSURE_ACTION:
            found += self._exposure(event, ref)
        return found

    def _funnel(self, event: dict, ref: Any) -> list[Found]:
        pos = event.get("funnel_event_sequence_position")
        token = event.get("funnel_entry_token")
        if not isinstance(pos, int) or isinstance(pos, bool) or not token:
            return []
        instrument = event.get("instrument_name") or event.get("funnel_name") or ""
        key = (
            instrument if type(instrument) is str else str(instrument),
            token if type(token) is str else str(token),
        )
        step = FunnelStep(dt_facts(event.get("dt"))[2] or 0.0, pos, ref)
        funnels = self._funnels
        steps = funnels.get(key)
        if steps is None:
            # A funnel's first step (every step, when each funnel is seen once).
            funnels[key] = _Steps(step)
            if len(funnels) > funnels.limit:
                funnels.popitem(last=False)
            if pos > 1:
                step.gap = True
                # finding_forms.GAP_STORED: the missing steps are range(from, position).
                return [("funnel.gap", [instrument, token, pos, 1])]
            return []
        self._funnels.remember(key, steps)
        facts = {"instrument": instrument, "funnel_entry_token": token, "position": pos}
        if steps.holds(pos):
            steps.add(step)
            return [("funnel.repeat", facts)]
        index = steps.add(step)
        self._retract_filled_gaps(steps)
        before = steps[index - 1] if index > 0 else None
        after = steps[index + 1] if index + 1 < len(steps) else None
        if (before is not None and before.position > pos) or (
            after is not None and after.position < pos
        ):
            other = before if before is not None and before.position > pos else after
            assert other is not None
            facts["other_position"] = other.position
            facts["other"] = other.ref
            return [("funnel.disorder", facts)]
        expected = 1 if before is None else before.position + 1
        if pos > expected:
            step.gap = True
            return [("funnel.gap", [instrument, token, pos, expected])]
        return []

    def _retract_filled_gaps(self, steps: list[FunnelStep]) -> None:
        for i, s in enumerate(steps):
            if not s.gap:
                continue
            expected = 1 if i == 0 else steps[i - 1].position + 1
            if s.position <= expected:
                s.gap = False
                self._retracted.append(("funnel.gap", s.ref))

    def _session(self, event: dict, session: str) -> list[Found]:
        """An app session's inactivity (the caller checked that the event is an app's)."""
        dt = parse_dt(event.get("dt"))
        if dt is None:
            return []
        last = self._sessions.get(session)
        self._sessions.remember(session, max(dt, last or dt))
        if last is not None and dt - last > APP_SESSION_TIMEOUT_S:
            # The exact time as ``gap``: the facts show it rounded, the message in minutes.
            return [("session.inactive_kept_id", [session, dt - last])]
        return []

    def _exposure(self, event: dict, ref: Any) -> list[Found]:
        pageview = field_at(event, "performer", "pageview_id")
        name = field_at(event, "experiment", "name") or field_at(event, "experiment", "enrolled")
        if not pageview or not name:
            return []
        key = (str(pageview), str(name))
        if key in self._exposures:
            facts = {"experiment": name, "pageview_id": pageview, "first": self._exposures[key]}
            return [("experiment.repeated_exposure", facts)]
        self._exposures.add(key, ref)
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
