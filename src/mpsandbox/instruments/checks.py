"""Judge captured events against instrument definitions.

Each definition picks its events (its ``stream``, its ``match`` fields and, for an
experiment, ``experiment.enrolled``), orders them by ``dt`` (never by arrival: concurrent
beacons arrive out of order), and gets one result per check:

- ``valid``: every event of the instrument was accepted (an ``invalid`` or ``error``
  verdict fails, with its validation errors or EventGate's message);
- ``schema``: every event has the definition's schema title and a version in its range;
- ``experiment``: every event's experiment block fits (group, sampling unit, subject id,
  coordinator ``default``);
- one per expectation: the events whose ``action`` and other interaction fields (and funnel
  name and step) are the expectation's are its matches. None: **not seen** when no event of
  the instrument has the action, else **fail** with the nearest event (the one with that
  action that differs in the fewest fields) and what differs. Matches: **pass** unless a
  match is invalid, lacks a ``required`` field, breaks a ``values`` constraint, the ``count``
  is out of range, a funnel step comes before its previous step (or without it, or twice),
  or an ``after`` event has no earlier event of the expectation it must follow.

A failing result carries every issue (the first is its reason), each with the id of the
event it is about: the "nearest event" a person opens to see what went wrong.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from mpsandbox.instruments.definitions import (
    UNITS,
    Count,
    Definition,
    Expectation,
    ExperimentSpec,
    SchemaSpec,
    is_empty,
    lookup,
    show,
    split_field,
)
from mpsandbox.platform.experiments import COORDINATOR_DEFAULT, SUBJECT_ID_RE
from mpsandbox.platform.identifiers import parse_dt
from mpsandbox.records import VALID, apply_fills

PASS = "pass"
FAIL = "fail"
NOT_SEEN = "not_seen"
STATUSES = (PASS, FAIL, NOT_SEEN)

#: Issues kept per result (the count of all of them is kept too).
MAX_ISSUES = 50


@dataclass(slots=True)
class ObservedEvent:
    """One captured event, as the checks need it: the event as accepted (fill-ins applied),
    its verdict and errors, and where it is stored (``id``: open it in the TUI or at
    ``/sandbox/events/{id}``)."""

    id: int
    verdict: str
    event: Any
    stream: str | None = None
    schema_title: str | None = None
    schema_version: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    message: str | None = None
    received_at: float | None = None
    _when: float | None = None

    @property
    def when(self) -> float:
        """``dt`` as epoch seconds, else the receive time: what order is judged by."""
        if self._when is None:
            dt = self.event.get("dt") if isinstance(self.event, dict) else None
            self._when = parse_dt(dt) or self.received_at or 0.0
        return self._when

    @property
    def dt(self) -> str | None:
        dt = self.event.get("dt") if isinstance(self.event, dict) else None
        return dt if isinstance(dt, str) else None

    @classmethod
    def from_stored(cls, row: dict[str, Any]) -> ObservedEvent:
        """From a store row (``StoreReader.event_bodies``) or the inspection API's
        ``/sandbox/events/{id}`` answer."""
        event = row.get("accepted")
        if event is None:
            event = apply_fills(row.get("event"), row.get("fills") or {})
        stream = row.get("stream")
        if stream is None and isinstance(event, dict):
            meta = event.get("meta")
            stream = meta.get("stream") if isinstance(meta, dict) else None
        return cls(
            id=int(row["id"]),
            verdict=row.get("verdict") or VALID,
            event=event,
            stream=stream,
            schema_title=row.get("schema_title"),
            schema_version=row.get("schema_version"),
            errors=list(row.get("errors") or []),
            message=row.get("message"),
            received_at=row.get("received_at"),
        )


@dataclass(frozen=True, slots=True)
class Issue:
    """Why a result fails: the message, the event it is about, and the field differences."""

    message: str
    event_id: int | None = None
    differs: tuple[str, ...] = ()
    #: Which rule: valid, schema, experiment, identity (nothing matched), required,
    #: values, count, funnel or after.
    rule: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "message": self.message,
            "event": self.event_id,
            "differs": list(self.differs),
        }


@dataclass
class CheckResult:
    """One check of one instrument: an expectation, or ``valid``/``schema``/``experiment``."""

    id: str
    title: str
    kind: str  # "expectation" | "valid" | "schema" | "experiment"
    status: str = NOT_SEEN
    matched: list[int] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    #: Issues found in all (``issues`` keeps the first MAX_ISSUES).
    issue_count: int = 0
    #: Why it was not seen (and what was seen instead).
    note: str | None = None
    line: int | None = None

    def add(self, issue: Issue, rule: str) -> None:
        self.issue_count += 1
        if len(self.issues) < MAX_ISSUES:
            self.issues.append(replace(issue, rule=rule))

    @property
    def reason(self) -> str | None:
        """One line: the first issue (and how many more), or why it was not seen."""
        if self.issues:
            more = self.issue_count - 1
            return self.issues[0].message + (f" (+{more} more)" if more else "")
        return self.note

    @property
    def event_id(self) -> int | None:
        """The event to open: the first issue's, else the newest match."""
        for issue in self.issues:
            if issue.event_id is not None:
                return issue.event_id
        return self.matched[-1] if self.matched else None


@dataclass
class InstrumentResult:
    definition: Definition
    events: int
    checks: list[CheckResult]
    #: Events of the instrument no expectation matched, by action.
    unmatched_actions: dict[str, int] = field(default_factory=dict)

    @property
    def status(self) -> str:
        statuses = {c.status for c in self.checks}
        if FAIL in statuses:
            return FAIL
        if NOT_SEEN in statuses:
            return NOT_SEEN
        return PASS

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for c in self.checks:
            out[c.status] += 1
        return out


# --- keys and helpers ---------------------------------------------------------------------


def _get(event: Any, *path: str) -> Any:
    return lookup(event, path)[1]


def subject_key(event: Any) -> str | None:
    """Who an experiment event is about: ``experiment.subject_id`` when it is a real one (a
    sha256 for ``mw-user``); ``awaiting`` (edge-unique: the CDN fills the real id in
    production) and ``overridden`` stand for no one, so the session id stands in."""
    subject = _get(event, "experiment", "subject_id")
    if isinstance(subject, str) and SUBJECT_ID_RE.fullmatch(subject):
        return subject
    session = _get(event, "performer", "session_id")
    if isinstance(session, str) and session:
        return session
    pageview = _get(event, "performer", "pageview_id")
    return pageview if isinstance(pageview, str) and pageview else None


def unit_key(per: str, event: Any) -> str | None:
    """The group an event belongs to when counting or ordering ``per`` a unit."""
    if per == "total":
        return "all"
    if per == "subject":
        return subject_key(event)
    path = UNITS[per]
    assert path is not None
    value = lookup(event, path)[1]
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else show(value)


def _unit_label(per: str, key: str | None) -> str:
    if key is None:
        return f"events without a {per} id"
    return f"{per} {key}"


def _ids(events: Sequence[ObservedEvent], limit: int = 5) -> str:
    ids = [str(e.id) for e in events[:limit]]
    more = len(events) - limit
    return ", ".join(ids) + (f" (+{more})" if more > 0 else "")


def errors_text(e: ObservedEvent, limit: int = 3) -> list[str]:
    """An invalid event's first errors as AJV writes them, or an error's message."""
    if e.verdict == VALID:
        return []
    if e.errors:
        out = [f"'{x.get('dataPath', '')}' {x.get('message', '')}" for x in e.errors[:limit]]
        if len(e.errors) > limit:
            out.append(f"+{len(e.errors) - limit} more errors")
        return out
    return [e.message or f"verdict {e.verdict}"]


def _belongs(definition: Definition, e: ObservedEvent) -> bool:
    if e.stream != definition.stream:
        return False
    for path, c in definition.match_paths:
        if not c.test(*lookup(e.event, path)):
            return False
    if definition.experiment is not None:
        return _get(e.event, "experiment", "enrolled") == definition.experiment.name
    return True


def _token(event: Any) -> str | None:
    """The funnel entry token as text (whatever the client sent), None when absent."""
    token = _get(event, "funnel_entry_token")
    if is_empty(token):
        return None
    return token if isinstance(token, str) else show(token)


def _mismatches(x: Expectation, event: Any) -> list[str]:
    out = []
    for name, c in x.identity:
        present, value = lookup(event, split_field(name))
        if not c.test(present, value):
            out.append(c.mismatch(name, present, value))
    return out


# --- instrument-wide checks --------------------------------------------------------------------


def _selection(definition: Definition) -> str:
    text = f"stream {definition.stream}"
    if definition.match:
        text += " with " + ", ".join(f"{n}={c.describe()}" for n, c in definition.match)
    if definition.experiment is not None:
        text += f" in experiment {definition.experiment.name}"
    return text


def _check_valid(definition: Definition, events: list[ObservedEvent]) -> CheckResult:
    r = CheckResult("valid", "every event is valid", "valid")
    if not events:
        r.note = f"no events of {_selection(definition)}"
        return r
    bad = [e for e in events if e.verdict != VALID]
    r.matched = [e.id for e in events]
    for e in bad:
        errors = errors_text(e)
        r.add(
            Issue(f"event {e.id} was {e.verdict}: " + "; ".join(errors), e.id, tuple(errors)),
            "valid",
        )
    r.status = FAIL if bad else PASS
    return r


def _check_schema(spec: SchemaSpec, events: list[ObservedEvent]) -> CheckResult:
    r = CheckResult("schema", f"schema is {spec.describe()}", "schema")
    if not events:
        r.note = "no events"
        return r
    r.matched = [e.id for e in events]
    for e in events:
        schema = e.event.get("$schema") if isinstance(e.event, dict) else None
        if e.schema_title != spec.title:
            got = show(schema) if schema is not None else "no $schema"
            r.add(
                Issue(
                    f"event {e.id} has {got}, expected title {spec.title}",
                    e.id,
                    (f"$schema was {got}, expected title {spec.title}",),
                ),
                "schema",
            )
        elif spec.version is not None and not spec.version.contains(e.schema_version):
            text = f"version {e.schema_version} is not in {spec.version.text}"
            r.add(Issue(f"event {e.id}: {text}", e.id, (text,)), "schema")
    r.status = FAIL if r.issues else PASS
    return r


def _check_experiment(spec: ExperimentSpec, events: list[ObservedEvent]) -> CheckResult:
    r = CheckResult("experiment", f"experiment block of {spec.name}", "experiment")
    if not events:
        r.note = f"no events with experiment.enrolled {spec.name!r}"
        return r
    r.matched = [e.id for e in events]
    for e in events:
        differs = []
        assigned = _get(e.event, "experiment", "assigned")
        if spec.groups and assigned not in spec.groups:
            differs.append(
                f"experiment.assigned was {show(assigned)}, expected one of "
                f"[{', '.join(show(g) for g in spec.groups)}]"
            )
        unit = _get(e.event, "experiment", "sampling_unit")
        if spec.sampling_unit and unit != spec.sampling_unit:
            differs.append(
                f"experiment.sampling_unit was {show(unit)}, expected {show(spec.sampling_unit)}"
            )
        if is_empty(_get(e.event, "experiment", "subject_id")):
            differs.append("experiment.subject_id is missing")
        coordinator = _get(e.event, "experiment", "coordinator")
        if coordinator != COORDINATOR_DEFAULT:
            why = (
                " (production never sends events of overridden experiments)"
                if coordinator == "forced"
                else ""
            )
            differs.append(
                f"experiment.coordinator was {show(coordinator)}, expected 'default'{why}"
            )
        if differs:
            r.add(Issue(f"event {e.id}: {differs[0]}", e.id, tuple(differs)), "experiment")
    r.status = FAIL if r.issues else PASS
    return r


# --- expectations ------------------------------------------------------------------------------


def _not_matched(
    r: CheckResult, x: Expectation, events: list[ObservedEvent], matched_action: list
) -> None:
    """No event matched: fail with the nearest one that has the action, else not seen."""
    if matched_action:
        scored = [(len(_mismatches(x, e.event)), -e.id, e) for e in matched_action]
        _, _, nearest = min(scored, key=lambda s: (s[0], s[1]))
        differs = _mismatches(x, nearest.event)
        r.status = FAIL
        r.add(
            Issue(
                f"no event matched; nearest is event {nearest.id}: " + "; ".join(differs),
                nearest.id,
                tuple(differs),
            ),
            "identity",
        )
        return
    actions = sorted({a for e in events if isinstance(a := _get(e.event, "action"), str)})
    what = x.action.describe() if x.action.kind != "equals" else repr(x.action.value)
    note = f"no {what} event among the {len(events)} events of the instrument"
    if actions:
        note += f" (actions seen: {', '.join(actions[:8])}{'…' if len(actions) > 8 else ''})"
        if x.action.kind == "equals" and isinstance(x.action.value, str):
            close = difflib.get_close_matches(x.action.value, actions, n=1, cutoff=0.7)
            if close:
                note += f"; did you mean {close[0]!r}?"
    r.note = note
    r.status = NOT_SEEN


def _check_fields(r: CheckResult, x: Expectation, matched: list[ObservedEvent]) -> None:
    invalid = [e for e in matched if e.verdict != VALID]
    if invalid:
        e = invalid[0]
        errors = errors_text(e)
        more = (
            f" ({len(invalid) - 1} more matching events were not valid)" if len(invalid) > 1 else ""
        )
        r.add(
            Issue(f"event {e.id} was {e.verdict}: {'; '.join(errors)}{more}", e.id, tuple(errors)),
            "valid",
        )
    for name in x.required:
        path = split_field(name)
        bad = []
        for e in matched:
            present, value = lookup(e.event, path)
            if not present or is_empty(value):
                bad.append((e, "missing" if not present else f"empty ({show(value)})"))
        if bad:
            e, what = bad[0]
            more = (
                f" (and in {len(bad) - 1} more of the {len(matched)} events)"
                if len(bad) > 1
                else ""
            )
            r.add(
                Issue(f"event {e.id}: {name} is {what}{more}", e.id, (f"{name} is {what}",)),
                "required",
            )
    for name, c in x.values:
        path = split_field(name)
        bad = [(e, lookup(e.event, path)) for e in matched]
        bad = [(e, pv) for e, pv in bad if not c.test(*pv)]
        if bad:
            e, (present, value) = bad[0]
            text = c.mismatch(name, present, value)
            more = (
                f" (and in {len(bad) - 1} more of the {len(matched)} events)"
                if len(bad) > 1
                else ""
            )
            r.add(Issue(f"event {e.id}: {text}{more}", e.id, (text,)), "values")


def _check_count(
    r: CheckResult, count: Count, matched: list[ObservedEvent], events: list[ObservedEvent]
) -> None:
    if count.per == "total":
        groups: dict[str | None, list[ObservedEvent]] = {"all": list(matched)}
        population: dict[str | None, list[ObservedEvent]] = {"all": list(events)}
    else:
        groups = defaultdict(list)
        population = defaultdict(list)
        for e in events:
            population[unit_key(count.per, e.event)].append(e)
        for e in matched:
            groups[unit_key(count.per, e.event)].append(e)
    for key, members in population.items():
        got = groups.get(key, [])
        n = len(got)
        where = "" if count.per == "total" else f"{_unit_label(count.per, key)}: "
        if count.min is not None and n < count.min:
            nearest = got[-1] if got else members[0]
            text = f"{n} matching event{'' if n == 1 else 's'}, expected {count.describe()}"
            r.add(Issue(f"{where}{text}", nearest.id, (text,)), "count")
        elif count.max is not None and n > count.max:
            extra = got[count.max]
            text = f"{n} matching events, expected {count.describe()}: events {_ids(got)}"
            r.add(Issue(f"{where}{text}", extra.id, (text,)), "count")


def _check_funnel(
    r: CheckResult, x: Expectation, matched: list[ObservedEvent], events: list[ObservedEvent]
) -> None:
    funnel = x.funnel
    assert funnel is not None
    by_token: dict[Any, dict[int, list[ObservedEvent]]] = defaultdict(lambda: defaultdict(list))
    for e in events:
        if _get(e.event, "funnel_name") != funnel.name:
            continue
        pos = _get(e.event, "funnel_event_sequence_position")
        if isinstance(pos, int) and not isinstance(pos, bool):
            by_token[_token(e.event)][pos].append(e)
    name = funnel.name
    step = funnel.step
    for e in matched:
        if _token(e.event) is None:
            r.add(
                Issue(
                    f"event {e.id} (step {step} of funnel {name}) has no "
                    "funnel_entry_token, so its funnel cannot be told apart",
                    e.id,
                    ("funnel_entry_token is missing",),
                ),
                "funnel",
            )
    tokens = sorted({t for e in matched if (t := _token(e.event)) is not None})
    for token in tokens:
        steps = by_token[token]
        here = steps.get(step, [])
        label = f"funnel {name} (token {token})"
        if len(here) > 1:
            r.add(
                Issue(
                    f"step {step} was sent {len(here)} times in {label}: events {_ids(here)}",
                    here[1].id,
                    (f"step {step} repeated",),
                ),
                "funnel",
            )
        if step == 1:
            continue
        first = min(here, key=lambda e: (e.when, e.id))
        before = steps.get(step - 1, [])
        if not before:
            r.add(
                Issue(
                    f"step {step} without step {step - 1} in {label}: event {first.id}",
                    first.id,
                    (f"step {step - 1} is missing",),
                ),
                "funnel",
            )
            continue
        earliest = min(before, key=lambda e: (e.when, e.id))
        if earliest.when > first.when:
            text = (
                f"step {step} came before step {step - 1} in {label}: event {first.id} "
                f"(dt {first.dt}) before event {earliest.id} (dt {earliest.dt})"
            )
            r.add(Issue(text, first.id, (f"step {step} came before step {step - 1}",)), "funnel")


def _check_after(
    r: CheckResult,
    x: Expectation,
    matched: list[ObservedEvent],
    earlier: list[ObservedEvent],
) -> None:
    after = x.after
    assert after is not None
    firsts: dict[str | None, ObservedEvent] = {}
    for e in earlier:
        key = unit_key(after.per, e.event)
        if key not in firsts or (e.when, e.id) < (firsts[key].when, firsts[key].id):
            firsts[key] = e
    for e in matched:
        key = unit_key(after.per, e.event)
        label = _unit_label(after.per, key)
        first = firsts.get(key) if key is not None else None
        if first is None:
            text = f"no {after.expect} event before it ({label})"
            r.add(Issue(f"event {e.id}: {text}", e.id, (text,)), "after")
        elif first.when > e.when:
            text = (
                f"came before the first {after.expect} event of {label} "
                f"(event {first.id}, dt {first.dt})"
            )
            r.add(Issue(f"event {e.id} (dt {e.dt}) {text}", e.id, (text,)), "after")


def check_instrument(definition: Definition, events: Iterable[ObservedEvent]) -> InstrumentResult:
    """Every check of one definition against ``events`` (any order; other streams' events
    are left out)."""
    if not isinstance(events, Sequence):
        events = list(events)
    mine = sorted((e for e in events if _belongs(definition, e)), key=lambda e: (e.when, e.id))
    checks = [_check_valid(definition, mine)]
    if definition.schema is not None:
        checks.append(_check_schema(definition.schema, mine))
    if definition.experiment is not None:
        checks.append(_check_experiment(definition.experiment, mine))
    matches: dict[str, list[ObservedEvent]] = {}
    for x in definition.expects:
        matches[x.id] = [e for e in mine if x.picks(e.event)]
    claimed: set[int] = set()
    for x in definition.expects:
        r = CheckResult(x.id, x.title, "expectation", line=x.line)
        matched = matches[x.id]
        claimed.update(e.id for e in matched)
        if not matched:
            with_action = [e for e in mine if x.action.test(*lookup(e.event, ("action",)))]
            _not_matched(r, x, mine, with_action)
            checks.append(r)
            continue
        r.matched = [e.id for e in matched]
        _check_fields(r, x, matched)
        if x.count is not None:
            _check_count(r, x.count, matched, mine)
        if x.funnel is not None:
            _check_funnel(r, x, matched, mine)
        if x.after is not None:
            _check_after(r, x, matched, matches.get(x.after.expect, []))
        r.status = FAIL if r.issue_count else PASS
        checks.append(r)
    unmatched: dict[str, int] = defaultdict(int)
    for e in mine:
        if e.id not in claimed:
            action = _get(e.event, "action")
            unmatched[action if isinstance(action, str) else show(action)] += 1
    return InstrumentResult(definition, len(mine), checks, dict(unmatched))


def check_all(
    definitions: Iterable[Definition], events: Sequence[ObservedEvent]
) -> list[InstrumentResult]:
    """Every definition against the events (each sees only its stream's)."""
    by_stream: dict[str | None, list[ObservedEvent]] = defaultdict(list)
    for e in events:
        by_stream[e.stream].append(e)
    return [check_instrument(d, by_stream.get(d.stream, [])) for d in definitions]


def summary(results: Sequence[InstrumentResult]) -> dict[str, Any]:
    """Totals over every check: ``{"instruments", "checks", "pass", "fail", "not_seen"}``."""
    out: dict[str, Any] = {"instruments": len(results), "checks": 0}
    out.update(dict.fromkeys(STATUSES, 0))
    for res in results:
        for status, n in res.counts().items():
            out[status] += n
            out["checks"] += n
    return out


def exit_status(results: Sequence[InstrumentResult], *, allow_not_seen: bool = False) -> int:
    """1 when any check fails, or (unless allowed) was not seen; else 0."""
    totals = summary(results)
    if totals[FAIL] or (totals[NOT_SEEN] and not allow_not_seen):
        return 1
    return 0
