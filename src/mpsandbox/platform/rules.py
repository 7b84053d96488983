"""Stateless platform rules for one event: ``evaluate(event, ...) -> list[Finding]``.

Each check is a small function taking what it needs and returning findings; the facts
carry the numbers. Stateful checks (duplicates, funnels, sessions, repeated exposures)
live elsewhere: they need more than one event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mpsandbox.platform import attributes as attrs
from mpsandbox.platform import experiments as exps
from mpsandbox.platform import identifiers as ids
from mpsandbox.platform import sampling
from mpsandbox.platform.findings import Finding, finding
from mpsandbox.records import field_at


def _fmt_rate(rate: Any) -> str:
    return (
        f"{rate:g}" if isinstance(rate, int | float) and not isinstance(rate, bool) else repr(rate)
    )


# --- sampling ---------------------------------------------------------------------------


def check_sampling(event: dict[str, Any], stream_config: dict[str, Any] | None) -> list[Finding]:
    """The sampling decision under the stream's ``sample`` config (none: in sample)."""
    if not isinstance(stream_config, dict) or "sample" not in stream_config:
        return []
    sample = stream_config.get("sample")
    if sample is None:
        return []
    if not isinstance(sample, dict):
        return [
            finding(
                "sampling.invalid_rate",
                f"the stream's sample config is not an object: {sample!r}",
                sample=sample,
            )
        ]
    unit, rate = sample.get("unit"), sample.get("rate")
    out: list[Finding] = []
    if unit not in sampling.UNIT_IDENTIFIERS:
        out.append(
            finding(
                "sampling.unknown_unit",
                f"sample unit {unit!r} is not pageview, session or device: the JS client "
                "drops every event",
                unit=unit,
                rate=rate,
            )
        )
        return out
    rate_ok = isinstance(rate, int | float) and not isinstance(rate, bool) and 0 <= rate <= 1
    if not rate_ok:
        out.append(
            finding(
                "sampling.invalid_rate",
                f"sample rate {rate!r} is not a number in 0..1: the JS client drops every event",
                unit=unit,
                rate=rate,
            )
        )
        return out
    decision = sampling.decide(event, sample)
    assert decision is not None
    facts = decision.as_facts()
    if decision.identifier is None:
        out.append(
            finding(
                "sampling.identifier_missing",
                f"the stream samples by {unit} but the event has no {decision.identifier_field}",
                **facts,
            )
        )
        return out
    value = "NaN" if decision.value is None else f"{decision.value:.6f}"
    out.append(
        finding(
            "sampling.decision",
            f"{unit} {decision.identifier_field}={decision.identifier} -> {value} at rate "
            f"{_fmt_rate(rate)}: web {'in' if decision.web_in_sample else 'out'}, "
            f"app {'in' if decision.app_in_sample else 'out'} ({decision.rule} rule applies)",
            **facts,
        )
    )
    if not decision.in_sample:
        out.append(
            finding(
                "sampling.out_of_sample",
                f"should have been sampled out: {decision.identifier_field} "
                f"{decision.identifier} is out of sample at rate {_fmt_rate(rate)} "
                f"by the {decision.rule} rule",
                **facts,
            )
        )
    if decision.web_in_sample != decision.app_in_sample:
        out.append(
            finding(
                "sampling.rules_disagree",
                f"the web rule says {'in' if decision.web_in_sample else 'out'} and the app "
                f"rule says {'in' if decision.app_in_sample else 'out'} for "
                f"{decision.identifier} at rate {_fmt_rate(rate)}",
                **facts,
            )
        )
    return out


def _same_rate(a: Any, b: Any) -> bool:
    numbers = all(isinstance(x, int | float) and not isinstance(x, bool) for x in (a, b))
    return a == b if numbers else False


def check_sample_field(
    event: dict[str, Any], stream_config: dict[str, Any] | None
) -> list[Finding]:
    """The event's ``sample`` field (the JS library copies the config's) against the config."""
    if not isinstance(stream_config, dict) or "sample" not in event:
        return []
    event_sample = event.get("sample")
    config_sample = stream_config.get("sample")
    if (
        isinstance(event_sample, dict)
        and isinstance(config_sample, dict)
        and event_sample.get("unit") == config_sample.get("unit")
        and _same_rate(event_sample.get("rate"), config_sample.get("rate"))
    ):
        return []
    return [
        finding(
            "sampling.sample_field_mismatch",
            f"the event says sample {event_sample!r} but the stream config has {config_sample!r}",
            event_sample=event_sample,
            config_sample=config_sample,
        )
    ]


# --- contextual attributes --------------------------------------------------------------


def _has_provide_values(stream_config: dict[str, Any] | None) -> bool:
    mpc = field_at(stream_config, "producers", "metrics_platform_client")
    return isinstance(mpc, dict) and isinstance(mpc.get("provide_values"), list)


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
    stream_config: dict[str, Any] | None,
    experiments: Mapping[str, exps.Experiment] | None = None,
) -> list[Finding]:
    """Requested but missing, present but unrequested, null values, unknown names."""
    if not _has_provide_values(stream_config):
        return []
    out: list[Finding] = []
    extra, request_known = _extra_requested(event, experiments)
    requested = attrs.requested_attributes(stream_config)
    unknown = [n for n in requested if n not in attrs.KNOWN_ATTRIBUTES]
    if unknown:
        out.append(
            finding(
                "attributes.unknown_requested",
                f"provide_values names attributes no client knows: {', '.join(unknown)}",
                attributes=unknown,
            )
        )
    missing = attrs.missing_requested(event, stream_config, extra=extra)
    missing = [n for n in missing if n not in unknown]
    hard = [n for n in missing if n not in attrs.NULLABLE_ATTRIBUTES]
    if hard:
        out.append(
            finding(
                "attributes.missing_requested",
                f"requested but missing: {', '.join(hard)}",
                attributes=hard,
                paths=[attrs.attribute_dotted(n) for n in hard],
                absent_nullable=[n for n in missing if n in attrs.NULLABLE_ATTRIBUTES],
                requested=requested,
                extra_requested=list(extra),
            )
        )
    if request_known:
        present = attrs.unrequested_present(event, stream_config, extra=extra)
        if present:
            out.append(
                finding(
                    "attributes.unrequested_present",
                    f"present but not requested by the stream (privacy smell): {', '.join(present)}",
                    attributes=present,
                    paths=[attrs.attribute_dotted(n) for n in present],
                    requested=requested,
                    extra_requested=list(extra),
                )
            )
    nulls = attrs.null_attributes(event)
    if nulls:
        out.append(
            finding(
                "attributes.null_value",
                f"sent as null (clients omit nulls): {', '.join(nulls)}",
                attributes=nulls,
            )
        )
    return out


def check_curation(event: dict[str, Any], stream_config: dict[str, Any] | None) -> list[Finding]:
    """One finding per curation rule that fails (a missing or null value fails)."""
    out = []
    for failure in attrs.curation_failures(event, stream_config):
        shown = "missing" if failure.reason == "value is missing or null" else repr(failure.value)
        out.append(
            finding(
                "attributes.curation_failed",
                f"curation {failure.attribute} {failure.rule} {failure.operand!r} fails: "
                f"value {shown} ({failure.reason})",
                **failure.as_facts(),
            )
        )
    return out


# --- identifiers and time ---------------------------------------------------------------


def check_identifiers(event: dict[str, Any]) -> list[Finding]:
    kind = ids.platform_kind(event)
    out: list[Finding] = []
    for field, finding_kind in (
        ("session_id", "ids.session_id_format"),
        ("pageview_id", "ids.pageview_id_format"),
    ):
        value = field_at(event, "performer", field)
        if value is None:
            continue
        if not ids.session_id_ok(value, kind):
            out.append(
                finding(
                    finding_kind,
                    f"performer.{field} {value!r} is not {ids.ID_EXPECTATIONS[kind]} ({kind})",
                    path=f"performer.{field}",
                    value=value,
                    platform=kind,
                    form=ids.id_form(value),
                    expected=ids.ID_EXPECTATIONS[kind],
                )
            )
    install_id = field_at(event, "agent", "app_install_id")
    if install_id is not None and not ids.app_install_id_ok(install_id):
        out.append(
            finding(
                "ids.app_install_id_format",
                f"agent.app_install_id {install_id!r} is not a UUID",
                path="agent.app_install_id",
                value=install_id,
                platform=kind,
            )
        )
    return out


def check_time(
    event: dict[str, Any], received_at: float, *, schema_has_dt: bool = True
) -> list[Finding]:
    """``schema_has_dt=False``: the event's schema has no ``dt`` (a smoke test, a legacy
    capsule), so an event without one is not missing anything."""
    kind = ids.platform_kind(event)
    out: list[Finding] = []
    has_dt = "dt" in event
    has_client_dt = "client_dt" in event
    if has_client_dt and not has_dt:
        out.append(
            finding(
                "time.client_dt_legacy",
                "legacy event: client_dt and no dt; the server fills dt"
                + ("" if ids.is_legacy_schema(event) else " only for analytics/legacy schemas"),
                client_dt=event.get("client_dt"),
                server_fills_dt=ids.is_legacy_schema(event),
                schema=event.get("$schema"),
            )
        )
    elif has_client_dt and has_dt:
        out.append(
            finding(
                "time.client_dt_and_dt",
                "both client_dt and dt are set; legacy clients send only client_dt",
                client_dt=event.get("client_dt"),
                dt=event.get("dt"),
            )
        )
    elif not has_dt and schema_has_dt:
        out.append(
            finding(
                "time.dt_missing",
                "neither dt nor client_dt: the client time of the event is unknown",
                schema=event.get("$schema"),
            )
        )
    if not has_dt:
        return out
    dt = event.get("dt")
    if not ids.dt_format_ok(dt, kind):
        out.append(
            finding(
                "time.dt_format",
                f"dt {dt!r} is not {ids.DT_EXPECTATIONS[kind]} ({kind})",
                dt=dt,
                platform=kind,
                expected=ids.DT_EXPECTATIONS[kind],
            )
        )
    skew = ids.dt_skew(dt, received_at)
    problem = ids.skew_problem(skew)
    if problem is not None and skew is not None:
        facts = {
            "dt": dt,
            "received_at": ids.iso_utc(received_at),
            "skew_seconds": round(skew, 3),
            "max_future_seconds": ids.MAX_FUTURE_SKEW_S,
            "max_past_seconds": ids.MAX_PAST_SKEW_S,
        }
        if problem == "future":
            out.append(
                finding(
                    "time.dt_future",
                    f"dt is {skew:.0f} s ahead of the receive time (limit {ids.MAX_FUTURE_SKEW_S} s)",
                    **facts,
                )
            )
        else:
            out.append(
                finding(
                    "time.dt_past",
                    f"dt is {-skew / 3600:.1f} h behind the receive time "
                    f"(limit {ids.MAX_PAST_SKEW_S // 3600} h)",
                    **facts,
                )
            )
    return out


# --- experiments ------------------------------------------------------------------------


def check_experiment_shape(experiment: dict[str, Any]) -> list[Finding]:
    """Checks that need no experiment config: override, names, subject id, unit,
    coordinator, other_assigned."""
    out: list[Finding] = []
    name = experiment.get("enrolled")
    group = experiment.get("assigned")
    subject = experiment.get("subject_id")
    unit = experiment.get("sampling_unit")
    coordinator = experiment.get("coordinator")
    base = {"experiment": name, "group": group}
    if (
        subject == exps.SUBJECT_ID_OVERRIDDEN
        or coordinator == exps.COORDINATOR_FORCED
        or unit == "overridden"
    ):
        out.append(
            finding(
                "experiment.overridden",
                f"{name}: an overridden enrollment (forced {group!r}); production never sends "
                "events for overridden experiments",
                subject_id=subject,
                coordinator=coordinator,
                sampling_unit=unit,
                **base,
            )
        )
    bad_names = []
    if not exps.valid_name(name):
        bad_names.append(f"experiment name {name!r}")
    if not exps.valid_group(group):
        bad_names.append(f"group {group!r}")
    if bad_names:
        out.append(
            finding(
                "experiment.name_format",
                f"invalid {' and '.join(bad_names)}",
                name_pattern=exps.NAME_RE.pattern,
                group_pattern=exps.GROUP_RE.pattern,
                **base,
            )
        )
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
        out.append(
            finding(
                "experiment.subject_id_format",
                f"subject_id {subject!r} is not "
                + (
                    f"{expected_form!r} form for {unit}"
                    if expected_form and subject_form
                    else "'awaiting', 'overridden' or a 64-hex sha256"
                ),
                subject_id=subject,
                subject_form=subject_form,
                expected_form=expected_form,
                sampling_unit=unit,
                **base,
            )
        )
    if unit not in exps.EVENT_SAMPLING_UNITS:
        out.append(
            finding(
                "experiment.sampling_unit",
                f"sampling_unit {unit!r} is not one of {', '.join(exps.EVENT_SAMPLING_UNITS)}",
                sampling_unit=unit,
                **base,
            )
        )
    if coordinator not in exps.COORDINATORS:
        out.append(
            finding(
                "experiment.coordinator",
                f"coordinator {coordinator!r} is not 'default' (or 'forced' for overrides)",
                coordinator=coordinator,
                **base,
            )
        )
    if "other_assigned" in experiment:
        out.extend(_check_other_assigned(experiment.get("other_assigned"), name, base))
    return out


def _check_other_assigned(other: Any, name: Any, base: dict[str, Any]) -> list[Finding]:
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
    return [
        finding(
            "experiment.other_assigned",
            f"other_assigned: {'; '.join(problems)}",
            other_assigned=other,
            problems=problems,
            **base,
        )
    ]


def check_experiment_config(
    event: dict[str, Any],
    experiment: dict[str, Any],
    experiments: Mapping[str, exps.Experiment],
    *,
    stream: str | None,
    received_at: float,
) -> list[Finding]:
    """Checks against the loaded experiment: known, group, stream, dates, and for
    ``mw-user`` the expected enrollment and group computed from the subject id."""
    name = experiment.get("enrolled")
    group = experiment.get("assigned")
    subject = experiment.get("subject_id")
    base = {"experiment": name, "group": group}
    config = experiments.get(name) if isinstance(name, str) else None
    if config is None:
        return [
            finding(
                "experiment.unknown",
                f"experiment {name!r} is not in the loaded experiments",
                known=sorted(experiments)[:50],
                **base,
            )
        ]
    out: list[Finding] = []
    if group not in config.groups:
        out.append(
            finding(
                "experiment.group_unknown",
                f"{name}: group {group!r} is not one of {', '.join(config.groups)}",
                groups=list(config.groups),
                **base,
            )
        )
    unit = experiment.get("sampling_unit")
    if unit in exps.SAMPLING_UNITS and unit != config.sampling_unit:
        out.append(
            finding(
                "experiment.sampling_unit",
                f"{name}: the event says {unit} but the experiment is {config.sampling_unit}",
                sampling_unit=unit,
                configured=config.sampling_unit,
                **base,
            )
        )
    if config.stream and stream and stream != config.stream:
        out.append(
            finding(
                "experiment.stream_mismatch",
                f"{name}: sent to {stream} but the experiment's stream is {config.stream}",
                stream=stream,
                configured=config.stream,
                **base,
            )
        )
    active = config.active_at(received_at)
    if active is False:
        out.append(
            finding(
                "experiment.inactive",
                f"{name}: received outside {config.start} .. {config.end}",
                start=config.start,
                end=config.end,
                received_at=ids.iso_utc(received_at),
                **base,
            )
        )
    if (
        config.sampling_unit == "mw-user"
        and isinstance(subject, str)
        and exps.SUBJECT_ID_RE.fullmatch(subject)
    ):
        wiki = field_at(event, "mediawiki", "database")
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
            out.append(
                finding(
                    "experiment.not_enrolled",
                    f"{name}: this subject is not enrolled at rate {_fmt_rate(rate)} "
                    f"(hash {hash_:.4f}), yet the event claims group {group!r}",
                    **facts,
                )
            )
        elif group != expected:
            out.append(
                finding(
                    "experiment.group_mismatch",
                    f"{name}: this user is in group {expected!r}, but the event says {group!r}",
                    **facts,
                )
            )
    return out


def check_experiment(
    event: dict[str, Any],
    experiments: Mapping[str, exps.Experiment] | None,
    *,
    stream: str | None,
    received_at: float,
) -> list[Finding]:
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


def evaluate(
    event: dict[str, Any],
    *,
    stream: str | None,
    stream_config: dict[str, Any] | None,
    experiments: Mapping[str, exps.Experiment] | None,
    received_at: float,
    schema_has_dt: bool = True,
) -> list[Finding]:
    """Every stateless platform check for one event (as received, before fill-ins).

    ``stream`` defaults to ``meta.stream``; ``stream_config`` is that stream's config or
    None (no config loaded / stream unknown); ``experiments`` the loaded experiments or
    None; ``received_at`` epoch seconds; ``schema_has_dt`` whether the event's schema
    declares ``dt`` (unknown: assume it does).
    """
    if not isinstance(event, dict):
        return []
    if stream is None:
        meta_stream = field_at(event, "meta", "stream")
        stream = meta_stream if isinstance(meta_stream, str) else None
    findings: list[Finding] = []
    findings += check_sampling(event, stream_config)
    findings += check_sample_field(event, stream_config)
    findings += check_attributes(event, stream_config, experiments)
    findings += check_curation(event, stream_config)
    findings += check_identifiers(event)
    findings += check_time(event, received_at, schema_has_dt=schema_has_dt)
    findings += check_experiment(event, experiments, stream=stream, received_at=received_at)
    return findings
