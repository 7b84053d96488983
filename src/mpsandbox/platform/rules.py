"""Stateless platform rules for one event: ``evaluate(event, ...) -> list[Finding]``.

Each check is a small function taking what it needs and returning findings as
``(kind, stored facts)`` (:data:`~mpsandbox.platform.findings.Found`): the facts carry the
numbers, and the message and the facts that follow from them are derived on read
(platform/finding_forms.py). :func:`find` is what the intake calls for every event, so it
does as little as it can: what a stream config asks is worked out once per config
(:class:`ConfigPlan`), and an event with no config and no experiment block only has its
ids and time checked. Stateful checks (duplicates, funnels, sessions, repeated exposures)
live elsewhere: they need more than one event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mpsandbox.platform import attributes as attrs
from mpsandbox.platform import experiments as exps
from mpsandbox.platform import identifiers as ids
from mpsandbox.platform import sampling
from mpsandbox.platform.findings import Finding, Found

_MISSING = object()


def _attribute_paths() -> tuple[dict[str, dict[str, str]], tuple[str, ...]]:
    """Known attributes by (object, field), and those that are a top-level field."""
    by_head: dict[str, dict[str, str]] = {}
    single: list[str] = []
    for name in sorted(attrs.KNOWN_ATTRIBUTES):
        path = attrs.attribute_path(name)
        if len(path) == 2:
            by_head.setdefault(path[0], {})[path[1]] = name
        else:
            single.append(name)
    return by_head, tuple(single)


_KNOWN_BY_HEAD, _KNOWN_SINGLE = _attribute_paths()


def _attribute(event: dict[str, Any], path: tuple[str, ...]) -> Any:
    """attributes.attribute_value for a one- or two-step path."""
    if len(path) == 1:
        return event.get(path[0], _MISSING)
    parent = event.get(path[0])
    if not isinstance(parent, dict):
        return _MISSING
    return parent.get(path[1], _MISSING)


def _known_present_and_null(event: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Known attributes the event carries with a value, and those it sends as null (each
    sorted): one pass over the event's own fields instead of one lookup per known name."""
    present: list[str] = []
    nulls: list[str] = []
    for head, names in _KNOWN_BY_HEAD.items():
        parent = event.get(head)
        if not isinstance(parent, dict):
            continue
        for tail, value in parent.items():
            name = names.get(tail)
            if name is not None:
                (nulls if value is None else present).append(name)
    for name in _KNOWN_SINGLE:
        value = event.get(name, _MISSING)
        if value is not _MISSING:
            (nulls if value is None else present).append(name)
    present.sort()
    nulls.sort()
    return present, nulls


# --- what a stream config asks, once per config ------------------------------------------


class ConfigPlan:
    """What one stream config asks of every event, worked out once: which checks apply,
    the requested attributes and their paths, and sampling decisions already made."""

    #: How many identifiers' sampling decisions a plan remembers.
    DECISIONS = 4096

    def __init__(self, config: dict[str, Any]):
        self.config = config
        self.has_sample = "sample" in config and config.get("sample") is not None
        self.sample = config.get("sample")
        sample = self.sample if isinstance(self.sample, dict) else {}
        self.unit, self.rate = sample.get("unit"), sample.get("rate")
        self.decisions: dict[tuple[str, str], tuple[bool, bool]] = {}
        mpc = config.get("producers")
        mpc = mpc.get("metrics_platform_client") if isinstance(mpc, dict) else None
        self.provides = isinstance(mpc, dict) and isinstance(mpc.get("provide_values"), list)
        self.requested = attrs.requested_attributes(config)
        self.unknown = [n for n in self.requested if n not in attrs.KNOWN_ATTRIBUTES]
        self.wanted = [(n, attrs.attribute_path(n)) for n in dict.fromkeys(self.requested)]
        self.allowed = set(self.requested) | attrs.ALWAYS_SENT
        self.curates = bool(attrs.curation_config(config))

    def decide(self, ident: str, unit: str) -> tuple[bool, bool]:
        """(web rule in sample, app rule in sample) for an identifier at this rate."""
        key = (ident, unit)
        hit = self.decisions.get(key)
        if hit is None:
            if len(self.decisions) >= self.DECISIONS:
                self.decisions.clear()
            hit = self.decisions[key] = (
                sampling.web_in_sample(ident, self.rate, unit),
                sampling.app_in_sample(ident, self.rate, unit),
            )
        return hit


_PLANS: dict[int, ConfigPlan] = {}
_PLANS_MAX = 256


def plan_for(config: dict[str, Any]) -> ConfigPlan:
    """The plan of a stream config, remembered by identity (configs are replaced whole, not
    changed in place; the plan keeps its config alive, so an id is not reused meanwhile)."""
    plan = _PLANS.get(id(config))
    if plan is None or plan.config is not config:
        if len(_PLANS) >= _PLANS_MAX:
            _PLANS.clear()
        plan = _PLANS[id(config)] = ConfigPlan(config)
    return plan


# --- sampling ---------------------------------------------------------------------------


def check_sampling(event: dict[str, Any], plan: ConfigPlan) -> list[Found]:
    """The sampling decision under the stream's ``sample`` config (none: in sample)."""
    if not plan.has_sample:
        return []
    if not isinstance(plan.sample, dict):
        return [("sampling.invalid_rate", {"sample": plan.sample})]
    unit, rate = plan.unit, plan.rate
    if unit not in sampling.UNIT_IDENTIFIERS:
        return [("sampling.unknown_unit", {"unit": unit, "rate": rate})]
    if not (isinstance(rate, int | float) and not isinstance(rate, bool) and 0 <= rate <= 1):
        return [("sampling.invalid_rate", {"unit": unit, "rate": rate})]
    ident = sampling.identifier_for(event, unit)
    rule = sampling.rule_for(event)
    facts = [unit, rate, ident, rule]  # finding_forms.SAMPLING_STORED, as a list
    if ident is None:
        return [("sampling.identifier_missing", facts)]
    web, app = plan.decide(ident, unit)
    out: list[Found] = [("sampling.decision", facts)]
    if not (app if rule == "app" else web):
        out.append(("sampling.out_of_sample", facts))
    if web != app:
        out.append(("sampling.rules_disagree", facts))
    return out


def _same_rate(a: Any, b: Any) -> bool:
    numbers = all(isinstance(x, int | float) and not isinstance(x, bool) for x in (a, b))
    return a == b if numbers else False


def check_sample_field(event: dict[str, Any], plan: ConfigPlan) -> list[Found]:
    """The event's ``sample`` field (the JS library copies the config's) against the config."""
    if "sample" not in event:
        return []
    event_sample = event.get("sample")
    config_sample = plan.config.get("sample")
    if (
        isinstance(event_sample, dict)
        and isinstance(config_sample, dict)
        and event_sample.get("unit") == config_sample.get("unit")
        and _same_rate(event_sample.get("rate"), config_sample.get("rate"))
    ):
        return []
    return [
        (
            "sampling.sample_field_mismatch",
            {"event_sample": event_sample, "config_sample": config_sample},
        )
    ]


# --- contextual attributes --------------------------------------------------------------


def _extra_requested(
    event: dict[str, Any], experiments: Mapping[str, exps.Experiment] | None
) -> tuple[tuple[str, ...], bool]:
    """Attributes requested outside the stream config (Test Kitchen), and whether the
    event's full request is known."""
    extra: tuple[str, ...] = ()
    if event.get("action") == "experiment_exposure":
        extra += attrs.EXPOSURE_ATTRIBUTES
    experiment = event.get("experiment")
    if not isinstance(experiment, dict):
        return extra, True
    name = experiment.get("enrolled")
    if experiments is not None and isinstance(name, str) and name in experiments:
        return extra + experiments[name].contextual_attributes, True
    return extra, False


def check_attributes(
    event: dict[str, Any],
    plan: ConfigPlan,
    experiments: Mapping[str, exps.Experiment] | None = None,
) -> list[Found]:
    """Requested but missing, present but unrequested, null values, unknown names."""
    if not plan.provides:
        return []
    out: list[Found] = []
    extra, request_known = _extra_requested(event, experiments)
    unknown = plan.unknown
    if unknown:
        out.append(("attributes.unknown_requested", {"attributes": list(unknown)}))
    wanted = plan.wanted
    if extra:
        seen = {n for n, _ in wanted}
        wanted = wanted + [
            (n, attrs.attribute_path(n)) for n in dict.fromkeys(extra) if n not in seen
        ]
    missing = []
    for name, path in wanted:
        value = _attribute(event, path)
        if (value is _MISSING or value is None) and name not in unknown:
            missing.append(name)
    hard = [n for n in missing if n not in attrs.NULLABLE_ATTRIBUTES]
    if hard:
        out.append(
            (
                "attributes.missing_requested",
                {
                    "attributes": hard,
                    "absent_nullable": [n for n in missing if n in attrs.NULLABLE_ATTRIBUTES],
                    "requested": list(plan.requested),
                    "extra_requested": list(extra),
                },
            )
        )
    present, nulls = _known_present_and_null(event)
    if request_known:
        allowed = plan.allowed | set(extra) if extra else plan.allowed
        unrequested = [n for n in present if n not in allowed]
        if unrequested:
            out.append(
                (
                    "attributes.unrequested_present",
                    {
                        "attributes": unrequested,
                        "requested": list(plan.requested),
                        "extra_requested": list(extra),
                    },
                )
            )
    if nulls:
        out.append(("attributes.null_value", {"attributes": nulls}))
    return out


def check_curation(event: dict[str, Any], plan: ConfigPlan) -> list[Found]:
    """One finding per curation rule that fails (a missing or null value fails)."""
    if not plan.curates:
        return []
    return [
        (
            "attributes.curation_failed",
            {
                "attribute": failure.attribute,
                "rule": failure.rule,
                "operand": failure.operand,
                "value": failure.value,
                "reason": failure.reason,
            },
        )
        for failure in attrs.curation_failures(event, plan.config)
    ]


# --- identifiers and time ---------------------------------------------------------------


#: (kind, session id, pageview id) -> their findings, for events with both ids as strings
#: and no install id (web events): the ids repeat for every event of a pageview.
_ID_FINDINGS: dict[tuple[str, str, str], list[Found]] = {}
_ID_FINDINGS_MAX = 8192


def check_identifiers(event: dict[str, Any], kind: ids.PlatformKind) -> list[Found]:
    """Session, pageview and install id formats. The list may be shared with other
    events of the same ids: do not change it."""
    performer = event.get("performer")
    if isinstance(performer, dict):
        session, pageview = performer.get("session_id"), performer.get("pageview_id")
    else:
        session = pageview = None
    agent = event.get("agent")
    install_id = agent.get("app_install_id") if isinstance(agent, dict) else None
    if type(session) is not str or type(pageview) is not str or install_id is not None:
        # Not the common shape (a web event with both ids): judged without the memo.
        return _id_findings(kind, session, pageview, install_id)
    key = (kind, session, pageview)
    found = _ID_FINDINGS.get(key)
    if found is None:
        if len(_ID_FINDINGS) >= _ID_FINDINGS_MAX:
            _ID_FINDINGS.clear()
        found = _ID_FINDINGS[key] = _id_findings(kind, session, pageview, None)
    return found


def _id_findings(
    kind: ids.PlatformKind, session: Any, pageview: Any, install_id: Any
) -> list[Found]:
    out: list[Found] = []
    if session is not None and not ids.session_id_ok(session, kind):
        out.append(("ids.session_id_format", [session, kind]))
    if pageview is not None and not ids.session_id_ok(pageview, kind):
        out.append(("ids.pageview_id_format", [pageview, kind]))
    if install_id is not None and not ids.app_install_id_ok(install_id):
        out.append(("ids.app_install_id_format", [install_id, kind]))
    return out


def check_time(
    event: dict[str, Any],
    received_at: float,
    kind: ids.PlatformKind,
    *,
    schema_has_dt: bool = True,
) -> list[Found]:
    """``schema_has_dt=False``: the event's schema has no ``dt`` (a smoke test, a legacy
    capsule), so an event without one is not missing anything."""
    out: list[Found] = []
    has_dt = "dt" in event
    if "client_dt" in event:
        if has_dt:
            facts = {"client_dt": event.get("client_dt"), "dt": event.get("dt")}
            out.append(("time.client_dt_and_dt", facts))
        else:
            out.append(("time.client_dt_legacy", [event.get("client_dt"), event.get("$schema")]))
    elif not has_dt and schema_has_dt:
        out.append(("time.dt_missing", {"schema": event.get("$schema")}))
    if not has_dt:
        return out
    dt = event["dt"]
    millis, app_form, parsed = ids.dt_facts(dt)
    if not (millis if kind == "web" else app_form):
        out.append(("time.dt_format", [dt, kind]))
    if parsed is not None:
        skew = parsed - received_at
        # dt and the receive time: the receive time's text and the skew follow on read.
        if skew > ids.MAX_FUTURE_SKEW_S:
            out.append(("time.dt_future", [dt, received_at]))
        elif skew < -ids.MAX_PAST_SKEW_S:
            out.append(("time.dt_past", [dt, received_at]))
    return out


# --- experiments ------------------------------------------------------------------------


def check_experiment_shape(experiment: dict[str, Any]) -> list[Found]:
    """Checks that need no experiment config: override, names, subject id, unit,
    coordinator, other_assigned."""
    out: list[Found] = []
    name = experiment.get("enrolled")
    group = experiment.get("assigned")
    subject = experiment.get("subject_id")
    unit = experiment.get("sampling_unit")
    coordinator = experiment.get("coordinator")
    if (
        subject == exps.SUBJECT_ID_OVERRIDDEN
        or coordinator == exps.COORDINATOR_FORCED
        or unit == "overridden"
    ):
        facts = {"subject_id": subject, "coordinator": coordinator, "sampling_unit": unit}
        out.append(("experiment.overridden", {**facts, "experiment": name, "group": group}))
    if not exps.valid_name(name) or not exps.valid_group(group):
        out.append(("experiment.name_format", {"experiment": name, "group": group}))
    subject_form = (
        "awaiting"
        if subject == exps.SUBJECT_ID_AWAITING
        else "overridden"
        if subject == exps.SUBJECT_ID_OVERRIDDEN
        else "sha256"
        if isinstance(subject, str) and exps.SUBJECT_ID_RE.fullmatch(subject)
        else None
    )
    expected_form = {"edge-unique": "awaiting", "mw-user": "sha256"}.get(unit)
    if subject_form is None or (
        expected_form and subject_form not in (expected_form, "overridden")
    ):
        facts = {
            "subject_id": subject,
            "subject_form": subject_form,
            "expected_form": expected_form,
            "sampling_unit": unit,
        }
        out.append(("experiment.subject_id_format", {**facts, "experiment": name, "group": group}))
    if unit not in exps.EVENT_SAMPLING_UNITS:
        facts = {"sampling_unit": unit, "experiment": name, "group": group}
        out.append(("experiment.sampling_unit", facts))
    if coordinator not in exps.COORDINATORS:
        facts = {"coordinator": coordinator, "experiment": name, "group": group}
        out.append(("experiment.coordinator", facts))
    if "other_assigned" in experiment:
        out.extend(_check_other_assigned(experiment.get("other_assigned"), name, group))
    return out


def _check_other_assigned(other: Any, name: Any, group: Any) -> list[Found]:
    problems: list[str] = []
    if not isinstance(other, dict):
        problems.append(f"not a map of experiment to group: {other!r}")
    else:
        if not other:
            problems.append("empty (clients leave it out when there are no other experiments)")
        if name in other:
            problems.append(f"includes the event's own experiment {name!r}")
        for other_name, other_group in other.items():
            if not exps.valid_name(other_name):
                problems.append(f"invalid experiment name {other_name!r}")
            if not exps.valid_group(other_group):
                problems.append(f"invalid group {other_group!r} for {other_name!r}")
    if not problems:
        return []
    facts = {"other_assigned": other, "problems": problems, "experiment": name, "group": group}
    return [("experiment.other_assigned", facts)]


def check_experiment_config(
    event: dict[str, Any],
    experiment: dict[str, Any],
    experiments: Mapping[str, exps.Experiment],
    *,
    stream: str | None,
    received_at: float,
) -> list[Found]:
    """Checks against the loaded experiment: known, group, stream, dates, and for
    ``mw-user`` the expected enrollment and group computed from the subject id."""
    name = experiment.get("enrolled")
    group = experiment.get("assigned")
    subject = experiment.get("subject_id")
    base = {"experiment": name, "group": group}
    config = experiments.get(name) if isinstance(name, str) else None
    if config is None:
        return [("experiment.unknown", {"known": sorted(experiments)[:50], **base})]
    out: list[Found] = []
    if group not in config.groups:
        out.append(("experiment.group_unknown", {"groups": list(config.groups), **base}))
    unit = experiment.get("sampling_unit")
    if unit in exps.SAMPLING_UNITS and unit != config.sampling_unit:
        facts = {"sampling_unit": unit, "configured": config.sampling_unit, **base}
        out.append(("experiment.sampling_unit", facts))
    if config.stream and stream and stream != config.stream:
        facts = {"stream": stream, "configured": config.stream, **base}
        out.append(("experiment.stream_mismatch", facts))
    if config.active_at(received_at) is False:
        # The receive time as ``at``, as for the clock-skew findings.
        facts = {"start": config.start, "end": config.end, "at": received_at, **base}
        out.append(("experiment.inactive", facts))
    if (
        config.sampling_unit == "mw-user"
        and isinstance(subject, str)
        and exps.SUBJECT_ID_RE.fullmatch(subject)
    ):
        wiki = event.get("mediawiki")
        wiki = wiki.get("database") if isinstance(wiki, dict) else None
        rate = config.rate_for(wiki if isinstance(wiki, str) else None)
        hash_ = exps.user_hash(subject)
        enrolled = exps.is_sampled(rate, config.groups, hash_)
        expected = exps.bucket(config.groups, hash_)
        facts = {
            "subject_id": subject,
            "user_hash": hash_,
            "scaled": hash_ * max(1, len(config.groups)),
            "sample_rate": rate,
            "wiki": wiki,
            "groups": list(config.groups),
            "expected_enrolled": enrolled,
            "expected_group": expected if enrolled else None,
            **base,
        }
        if not enrolled:
            out.append(("experiment.not_enrolled", facts))
        elif group != expected:
            out.append(("experiment.group_mismatch", facts))
    return out


def check_experiment(
    event: dict[str, Any],
    experiments: Mapping[str, exps.Experiment] | None,
    *,
    stream: str | None,
    received_at: float,
) -> list[Found]:
    experiment = event.get("experiment")
    if not isinstance(experiment, dict):
        return []
    out = check_experiment_shape(experiment)
    if experiments is not None:
        out.extend(
            check_experiment_config(
                event, experiment, experiments, stream=stream, received_at=received_at
            )
        )
    return out


# --- all of it --------------------------------------------------------------------------


def find(
    event: dict[str, Any],
    *,
    stream: str | None,
    stream_config: dict[str, Any] | None,
    experiments: Mapping[str, exps.Experiment] | None,
    received_at: float,
    schema_has_dt: bool = True,
    kind: ids.PlatformKind | None = None,
) -> list[Found]:
    """Every stateless platform check for one event (as received, before fill-ins), as
    the store keeps them (see :func:`evaluate` for the arguments). ``kind``: the event's
    platform kind when the caller has it already."""
    if not isinstance(event, dict):
        return []
    if stream is None:
        meta = event.get("meta")
        meta_stream = meta.get("stream") if isinstance(meta, dict) else None
        stream = meta_stream if isinstance(meta_stream, str) else None
    if kind is None:
        kind = ids.platform_kind(event)
    found: list[Found] = []
    if isinstance(stream_config, dict):
        plan = plan_for(stream_config)
        found += check_sampling(event, plan)
        found += check_sample_field(event, plan)
        found += check_attributes(event, plan, experiments)
        found += check_curation(event, plan)
    found += check_identifiers(event, kind)
    found += check_time(event, received_at, kind, schema_has_dt=schema_has_dt)
    if "experiment" in event:
        found += check_experiment(event, experiments, stream=stream, received_at=received_at)
    return found


def evaluate(
    event: dict[str, Any],
    *,
    stream: str | None,
    stream_config: dict[str, Any] | None,
    experiments: Mapping[str, exps.Experiment] | None,
    received_at: float,
    schema_has_dt: bool = True,
) -> list[Finding]:
    """Every stateless platform check for one event (as received, before fill-ins), each
    rendered.

    ``stream`` defaults to ``meta.stream``; ``stream_config`` is that stream's config or
    None (no config loaded / stream unknown); ``experiments`` the loaded experiments or
    None; ``received_at`` epoch seconds; ``schema_has_dt`` whether the event's schema
    declares ``dt`` (unknown: assume it does).
    """
    found = find(
        event,
        stream=stream,
        stream_config=stream_config,
        experiments=experiments,
        received_at=received_at,
        schema_has_dt=schema_has_dt,
    )
    return [Finding.of(f) for f in found]
