"""Per-event findings: what the platform rules noticed about one event.

A finding is data: a stable dotted ``kind`` (filterable as ``finding:KIND``), a
``severity``, a one-line ``message`` for people and the ``facts`` (JSON-serialisable
inputs and numbers) behind it. :data:`KINDS` lists every kind the rules can produce,
for help screens and documentation.

Store facts, derive words: the rules produce each finding as ``(kind, stored facts)``
(:data:`Found`), which is also how it is stored (see :func:`storable` and :func:`pack`); the severity comes
from :data:`KINDS` and the message and the derived facts from the kind's form
(platform/finding_forms.py), rendered on read by :func:`render`, the one function every
reader uses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from mpsandbox.platform.finding_forms import FORMS

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")


@dataclass(frozen=True)
class KindInfo:
    """What one finding kind means: its severity and a short description."""

    severity: Severity
    description: str


#: Every finding kind, its severity and what it means. Keys are stable: they are
#: stored with events and used in filters.
KINDS: dict[str, KindInfo] = {
    # sampling
    "sampling.decision": KindInfo(
        "info",
        "The stream samples: unit, rate, the identifier used and the decision by the "
        "web (JS) rule and the app (Java/Android) rule.",
    ),
    "sampling.out_of_sample": KindInfo(
        "warning",
        "The client should have sampled this event out: the identifier is out of sample "
        "at the stream's rate, so production never receives it.",
    ),
    "sampling.rules_disagree": KindInfo(
        "info",
        "The web rule and the app rule decide differently for this identifier and rate "
        "(rate 1 with an id starting ffffffff).",
    ),
    "sampling.identifier_missing": KindInfo(
        "warning",
        "The stream samples by a unit whose identifier the event does not carry, so the "
        "decision cannot be checked.",
    ),
    "sampling.unknown_unit": KindInfo(
        "warning",
        "The stream's sample unit is not pageview, session or device; the JS client "
        "treats every event as out of sample.",
    ),
    "sampling.invalid_rate": KindInfo(
        "warning",
        "The stream's sample rate is missing, not a number or outside 0..1; the JS "
        "client treats every event as out of sample.",
    ),
    "sampling.sample_field_mismatch": KindInfo(
        "warning",
        "The event's own sample field (copied by the JS library) disagrees with the "
        "stream config's sample.",
    ),
    # contextual attributes
    "attributes.missing_requested": KindInfo(
        "warning",
        "The stream's provide_values requests contextual attributes the event lacks "
        "(or has as null, which clients never send).",
    ),
    "attributes.unrequested_present": KindInfo(
        "warning",
        "The event carries contextual attributes the stream did not request: a privacy "
        "smell (the client should only send what is configured).",
    ),
    "attributes.unknown_requested": KindInfo(
        "info",
        "provide_values names an attribute no client knows; clients ignore it.",
    ),
    "attributes.curation_failed": KindInfo(
        "warning",
        "A curation rule of the stream fails for this event (or its value is missing); "
        "the client would not have sent it.",
    ),
    "attributes.null_value": KindInfo(
        "info",
        "A contextual attribute is present with a null value; clients omit nulls.",
    ),
    # identifiers and time
    "ids.session_id_format": KindInfo(
        "warning", "performer.session_id does not have the format of the event's platform."
    ),
    "ids.pageview_id_format": KindInfo(
        "warning", "performer.pageview_id does not have the format of the event's platform."
    ),
    "ids.app_install_id_format": KindInfo("warning", "agent.app_install_id is not a UUID."),
    "time.dt_format": KindInfo(
        "warning",
        "dt is not ISO-8601 UTC with milliseconds and Z (Java/Android: whole seconds).",
    ),
    "time.dt_future": KindInfo(
        "warning", "dt is further in the future than the receive time allows (clock skew)."
    ),
    "time.dt_past": KindInfo(
        "warning", "dt is older than the receive time allows (clock skew or a stale queue)."
    ),
    "time.client_dt_legacy": KindInfo(
        "info", "A legacy event with client_dt and no dt: the server fills dt."
    ),
    "time.client_dt_and_dt": KindInfo(
        "warning", "The event has both client_dt and dt; legacy clients send only client_dt."
    ),
    "time.dt_missing": KindInfo("warning", "The event has neither dt nor client_dt."),
    # experiments
    "experiment.unknown": KindInfo(
        "warning", "The event's experiment is not in the loaded experiments."
    ),
    "experiment.not_enrolled": KindInfo(
        "error",
        "By the mw-user assignment this subject is not enrolled in the experiment, so no "
        "experiment event should exist.",
    ),
    "experiment.group_mismatch": KindInfo(
        "error", "The event's assigned group differs from the group computed for the subject."
    ),
    "experiment.group_unknown": KindInfo(
        "warning", "The event's assigned group is not one of the experiment's groups."
    ),
    "experiment.subject_id_format": KindInfo(
        "warning",
        "experiment.subject_id is not 'awaiting' (edge-unique), 'overridden' or a 64-hex "
        "sha256 (mw-user), or does not fit the sampling unit.",
    ),
    "experiment.sampling_unit": KindInfo(
        "warning",
        "experiment.sampling_unit is not one the platform uses, or disagrees with the "
        "loaded experiment.",
    ),
    "experiment.coordinator": KindInfo(
        "warning", "experiment.coordinator is not 'default' (or 'forced' for overrides)."
    ),
    "experiment.other_assigned": KindInfo(
        "warning",
        "experiment.other_assigned is not a map of valid experiment names to valid group "
        "names, or includes the event's own experiment.",
    ),
    "experiment.name_format": KindInfo(
        "warning", "The experiment or group name does not match the platform's name rules."
    ),
    "experiment.overridden": KindInfo(
        "error",
        "The event claims an overridden enrollment (subject_id 'overridden' or coordinator "
        "'forced'); production never sends events for overridden experiments.",
    ),
    "experiment.inactive": KindInfo(
        "warning", "The event arrived outside the experiment's start and end dates."
    ),
    "experiment.stream_mismatch": KindInfo(
        "warning", "The event's stream is not the experiment's configured stream."
    ),
    # stateful: judged against earlier events (platform/history.py)
    "duplicate.meta_id": KindInfo(
        "warning", "Another event with the same meta.id was received earlier."
    ),
    "duplicate.event": KindInfo(
        "warning", "An identical event (same JSON as received) was received earlier."
    ),
    "funnel.repeat": KindInfo(
        "warning",
        "This funnel step (instrument, funnel_entry_token, sequence position) was "
        "already received.",
    ),
    "funnel.gap": KindInfo(
        "warning",
        "Ordered by dt, the funnel step before this one has a lower position than the "
        "one just before it should (steps are missing in between).",
    ),
    "funnel.disorder": KindInfo(
        "warning",
        "Ordered by dt, this funnel step comes before a step with a lower position (or "
        "after one with a higher position).",
    ),
    "session.inactive_kept_id": KindInfo(
        "warning",
        "An app event more than 30 minutes after the previous one of the same session "
        "kept the session id; apps start a new session after 30 minutes.",
    ),
    "experiment.repeated_exposure": KindInfo(
        "warning",
        "Another exposure event for the same experiment in the same pageview: exposures "
        "are de-duplicated per page.",
    ),
}

#: Kinds judged against earlier events (platform/history.py), not by rules.evaluate.
STATEFUL_KINDS: tuple[str, ...] = (
    "duplicate.meta_id",
    "duplicate.event",
    "funnel.repeat",
    "funnel.gap",
    "funnel.disorder",
    "session.inactive_kept_id",
    "experiment.repeated_exposure",
)


@dataclass(frozen=True)
class Finding:
    """One thing the platform rules noticed about one event."""

    kind: str
    severity: Severity
    message: str
    facts: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "severity": self.severity,
            "message": self.message,
            "facts": dict(self.facts),
        }

    @classmethod
    def of(cls, found: Found) -> Finding:
        """The finding the rules stored as ``(kind, facts)``, rendered."""
        d = render(found)
        return cls(kind=d["kind"], severity=d["severity"], message=d["message"], facts=d["facts"])

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        return cls(
            kind=str(data["kind"]),
            severity=data["severity"],
            message=str(data["message"]),
            facts=dict(data.get("facts") or {}),
        )


#: A finding as the rules produce and the store keeps it: the kind and its stored facts,
#: an object or, for a kind with positional facts, the list of their values (see
#: platform/finding_forms.py for which facts each kind keeps).
Found = tuple[str, dict[str, Any] | list[Any]]

#: Keys of a stored finding's optional third element, for what its kind and facts do not
#: give: a severity or message of its own, or facts kept whole (``v``) because they do not
#: follow the kind's form (a finding written by another release).
SEVERITY_KEY, MESSAGE_KEY, VERBATIM_KEY = "s", "m", "v"

#: Findings the rules did not produce (a rule that failed), with the severity they carry.
UNREGISTERED_SEVERITY: Severity = "info"


def render(entry: Any) -> dict[str, Any]:
    """A stored finding as every reader shows it: kind, severity, message and facts.

    ``entry`` is ``[kind, facts]`` or ``[kind, facts, extra]`` as the rules or :func:`pack`
    made it (facts as an object, or as a list of values for a kind with ``positional``
    names); a dict (a finding stored whole by an earlier release) is returned as it is.
    """
    if isinstance(entry, dict):
        return entry
    kind, stored = entry[0], entry[1] if len(entry) > 1 else {}
    extra = entry[2] if len(entry) > 2 and isinstance(entry[2], dict) else None
    info = KINDS.get(kind)
    severity = info.severity if info is not None else UNREGISTERED_SEVERITY
    form = FORMS.get(kind)
    if type(stored) is list and form is not None and form.positional is not None:
        stored = dict(zip(form.positional, stored, strict=False))
    facts = stored
    message = kind
    try:
        if form is not None and not (extra and extra.get(VERBATIM_KEY)):
            facts = form.expand(stored) if form.expand is not None else dict(stored)
        if form is not None and not (extra and MESSAGE_KEY in extra):
            message = form.words(facts, stored)
    except (KeyError, TypeError, ValueError, AttributeError):
        facts = dict(stored) if isinstance(stored, dict) else {"stored": stored}
    if extra:
        severity = extra.get(SEVERITY_KEY, severity)
        message = extra.get(MESSAGE_KEY, message)
    return {"kind": kind, "severity": severity, "message": message, "facts": facts}


def render_all(entries: Any) -> list[dict[str, Any]]:
    """Every finding of an event (the parsed ``findings`` column, or a record's list)."""
    if not entries:
        return []
    return [render(e) for e in entries if isinstance(e, dict | list | tuple) and e]


def kind_of(entry: Any) -> str | None:
    if isinstance(entry, dict):
        kind = entry.get("kind")
    elif isinstance(entry, list | tuple) and entry:
        kind = entry[0]
    else:
        return None
    return kind if isinstance(kind, str) else None


def severity_of(entry: Any) -> str:
    """A stored finding's severity without rendering it."""
    if isinstance(entry, dict):
        return str(entry.get("severity") or "warning")
    if len(entry) > 2 and isinstance(entry[2], dict) and SEVERITY_KEY in entry[2]:
        return str(entry[2][SEVERITY_KEY])
    info = KINDS.get(entry[0])
    return info.severity if info is not None else UNREGISTERED_SEVERITY


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON (1 and 1.0, or True and 1, are not the same fact)."""
    try:
        return orjson.dumps(a, option=orjson.OPT_SORT_KEYS) == orjson.dumps(
            b, option=orjson.OPT_SORT_KEYS
        )
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(a, sort_keys=True, default=repr) == json.dumps(
            b, sort_keys=True, default=repr
        )


def pack(finding: dict[str, Any]) -> list[Any]:
    """The stored form of a finding given whole (kind, severity, message, facts), such as
    a reader returned it: its form's stored facts when they give back the same facts and
    message, else what differs is kept beside them, so nothing is lost."""
    kind = str(finding.get("kind"))
    facts = finding.get("facts")
    facts = facts if isinstance(facts, dict) else {}
    form = FORMS.get(kind)
    extra: dict[str, Any] = {}
    stored = facts
    if form is not None and form.stored is not None:
        try:
            if form.pack is not None:
                candidate = form.pack(facts)
            else:
                candidate = {k: facts[k] for k in form.stored if k in facts}
        except (KeyError, TypeError, ValueError, AttributeError):
            candidate = None
        if candidate is not None and _same(render([kind, candidate])["facts"], facts):
            stored = candidate
            if form.positional is not None and tuple(candidate) == form.positional:
                stored = list(candidate.values())
        else:
            extra[VERBATIM_KEY] = 1
    entry: list[Any] = [kind, stored]
    shown = render([kind, stored, extra] if extra else entry)
    if finding.get("severity") != shown["severity"]:
        extra[SEVERITY_KEY] = finding.get("severity")
    if finding.get("message") != shown["message"]:
        extra[MESSAGE_KEY] = finding.get("message")
    if extra:
        entry.append(extra)
    return entry


def storable(findings: Any) -> list[Any]:
    """A record's findings in their stored form: the rules' ``(kind, facts)`` pairs as
    they are, whole findings (from a reader: a bundle, a copy) packed."""
    return [pack(f) if isinstance(f, dict) else f for f in findings]
