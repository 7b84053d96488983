"""How each finding kind is stored and worded: facts in, words out.

The rules record a finding as its kind and the facts only they know (the identifier, the
rate, the dt); everything else a reader shows is derived here, on read: the facts that
follow from others or from the platform's constants (the dotted path of an attribute, what
an id should look like, the limits of the clock-skew check) and the one-line message. So a
stored finding costs a few dozen bytes, and the rules build no sentences for findings
nobody reads.

Each :class:`Form` names the facts it keeps (``stored``: a subset of the full facts, or
every fact when None), how the full facts follow from them (``expand``) and the message
(``words``, given the full facts and the stored ones, which may hold an exact value the
full facts show rounded). :mod:`mpsandbox.platform.findings` applies them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mpsandbox.platform import attributes as attrs
from mpsandbox.platform import experiments as exps
from mpsandbox.platform import identifiers as ids
from mpsandbox.platform import sampling

Facts = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Form:
    #: Facts kept in storage, in the order of the full facts; None: all of them.
    stored: tuple[str, ...] | None
    #: The full facts from the stored ones (None: the stored facts are the full facts).
    expand: Callable[[Facts], Facts] | None
    #: The message from (full facts, stored facts).
    words: Callable[[Facts, Facts], str]
    #: The stored facts from the full ones, when they are not simply the ``stored`` keys.
    pack: Callable[[Facts], Facts] | None = None
    #: The names of the values when the facts are stored as a list (what the rules write
    #: for the frequent kinds: no key names repeated in every event's findings).
    positional: tuple[str, ...] | None = None


def fmt_rate(rate: Any) -> str:
    return (
        f"{rate:g}" if isinstance(rate, int | float) and not isinstance(rate, bool) else repr(rate)
    )


def _in(flag: Any) -> str:
    return "in" if flag else "out"


# --- sampling -----------------------------------------------------------------------------

#: What the rules keep of a sampling decision; the rest is the decision recomputed.
SAMPLING_STORED = ("unit", "rate", "identifier", "rule")


def _sampling_facts(s: Facts) -> Facts:
    """sampling.decide's facts, from the unit, rate, identifier and the rule that applies."""
    unit, rate, ident, rule = s.get("unit"), s.get("rate"), s.get("identifier"), s.get("rule")
    unit_key = unit if isinstance(unit, str) else ""
    web = sampling.web_in_sample(ident, rate, unit_key)
    app = sampling.app_in_sample(ident, rate, unit_key)
    return {
        "unit": unit,
        "rate": rate,
        "identifier_field": sampling.identifier_field(unit_key),
        "identifier": ident,
        "value": sampling.sampling_value(ident),
        "web_in_sample": web,
        "app_in_sample": app,
        "rule": rule,
        "in_sample": app if rule == "app" else web,
    }


def _decision_words(f: Facts, s: Facts) -> str:
    value = "NaN" if f["value"] is None else f"{f['value']:.6f}"
    return (
        f"{f['unit']} {f['identifier_field']}={f['identifier']} -> {value} at rate "
        f"{fmt_rate(f['rate'])}: web {_in(f['web_in_sample'])}, "
        f"app {_in(f['app_in_sample'])} ({f['rule']} rule applies)"
    )


def _invalid_rate_words(f: Facts, s: Facts) -> str:
    if "sample" in f:
        return f"the stream's sample config is not an object: {f['sample']!r}"
    return f"sample rate {f.get('rate')!r} is not a number in 0..1: the JS client drops every event"


SAMPLING_FORMS: dict[str, Form] = {
    "sampling.decision": Form(
        SAMPLING_STORED, _sampling_facts, _decision_words, positional=SAMPLING_STORED
    ),
    "sampling.out_of_sample": Form(
        SAMPLING_STORED,
        _sampling_facts,
        lambda f, s: (
            f"should have been sampled out: {f['identifier_field']} {f['identifier']} is out "
            f"of sample at rate {fmt_rate(f['rate'])} by the {f['rule']} rule"
        ),
        positional=SAMPLING_STORED,
    ),
    "sampling.rules_disagree": Form(
        SAMPLING_STORED,
        _sampling_facts,
        lambda f, s: (
            f"the web rule says {_in(f['web_in_sample'])} and the app rule says "
            f"{_in(f['app_in_sample'])} for {f['identifier']} at rate {fmt_rate(f['rate'])}"
        ),
        positional=SAMPLING_STORED,
    ),
    "sampling.identifier_missing": Form(
        SAMPLING_STORED,
        _sampling_facts,
        lambda f, s: (
            f"the stream samples by {f['unit']} but the event has no {f['identifier_field']}"
        ),
        positional=SAMPLING_STORED,
    ),
    "sampling.unknown_unit": Form(
        None,
        None,
        lambda f, s: (
            f"sample unit {f.get('unit')!r} is not pageview, session or device: the JS client "
            "drops every event"
        ),
    ),
    "sampling.invalid_rate": Form(None, None, _invalid_rate_words),
    "sampling.sample_field_mismatch": Form(
        None,
        None,
        lambda f, s: (
            f"the event says sample {f.get('event_sample')!r} but the stream config has "
            f"{f.get('config_sample')!r}"
        ),
    ),
}


# --- contextual attributes ----------------------------------------------------------------


def _with_paths(s: Facts) -> Facts:
    out: Facts = {}
    for key, value in s.items():
        out[key] = value
        if key == "attributes":
            out["paths"] = [attrs.attribute_dotted(n) for n in value]
    return out


def _curation_facts(s: Facts) -> Facts:
    return {
        "attribute": s.get("attribute"),
        "path": attrs.attribute_dotted(s.get("attribute")),
        **{k: s.get(k) for k in ("rule", "operand", "value", "reason")},
    }


def _curation_words(f: Facts, s: Facts) -> str:
    shown = "missing" if f["reason"] == "value is missing or null" else repr(f["value"])
    return (
        f"curation {f['attribute']} {f['rule']} {f['operand']!r} fails: "
        f"value {shown} ({f['reason']})"
    )


def _names(f: Facts) -> str:
    return ", ".join(f["attributes"])


ATTRIBUTE_FORMS: dict[str, Form] = {
    "attributes.missing_requested": Form(
        ("attributes", "absent_nullable", "requested", "extra_requested"),
        _with_paths,
        lambda f, s: f"requested but missing: {_names(f)}",
    ),
    "attributes.unrequested_present": Form(
        ("attributes", "requested", "extra_requested"),
        _with_paths,
        lambda f, s: f"present but not requested by the stream (privacy smell): {_names(f)}",
    ),
    "attributes.unknown_requested": Form(
        None, None, lambda f, s: f"provide_values names attributes no client knows: {_names(f)}"
    ),
    "attributes.null_value": Form(
        None, None, lambda f, s: f"sent as null (clients omit nulls): {_names(f)}"
    ),
    "attributes.curation_failed": Form(
        ("attribute", "rule", "operand", "value", "reason"), _curation_facts, _curation_words
    ),
}


# --- identifiers and time -----------------------------------------------------------------


ID_STORED = ("value", "platform")
#: The clock-skew findings as the rules write them: dt and the receive time (epoch seconds).
SKEW_POSITIONAL = ("dt", "at")


def _id_facts(path: str) -> Callable[[Facts], Facts]:
    def expand(s: Facts) -> Facts:
        value, platform = s.get("value"), s.get("platform")
        return {
            "path": path,
            "value": value,
            "platform": platform,
            "form": ids.id_form(value),
            "expected": ids.ID_EXPECTATIONS[platform],
        }

    return expand


def _id_words(f: Facts, s: Facts) -> str:
    return f"{f['path']} {f['value']!r} is not {f['expected']} ({f['platform']})"


def _install_id_facts(s: Facts) -> Facts:
    return {"path": "agent.app_install_id", "value": s.get("value"), "platform": s.get("platform")}


def _dt_format_facts(s: Facts) -> Facts:
    platform = s.get("platform")
    return {"dt": s.get("dt"), "platform": platform, "expected": ids.DT_EXPECTATIONS[platform]}


def _legacy_facts(s: Facts) -> Facts:
    schema = s.get("schema")
    return {
        "client_dt": s.get("client_dt"),
        "server_fills_dt": ids.is_legacy_schema({"$schema": schema}),
        "schema": schema,
    }


def _skew_facts(s: Facts) -> Facts:
    """The rules keep ``at`` (the receive time, epoch seconds) beside dt: the receive time
    as text and the skew follow exactly. Stores converted from full facts keep those."""
    if "at" in s:
        received_at = ids.iso_utc(s["at"])
        skew = round(_exact_skew(s), 3)
    else:
        received_at, skew = s.get("received_at"), s.get("skew_seconds")
    return {
        "dt": s.get("dt"),
        "received_at": received_at,
        "skew_seconds": skew,
        "max_future_seconds": ids.MAX_FUTURE_SKEW_S,
        "max_past_seconds": ids.MAX_PAST_SKEW_S,
    }


def _exact_skew(s: Facts) -> float:
    if "at" in s:
        parsed = ids.parse_dt(s.get("dt"))
        if parsed is not None:
            return parsed - s["at"]
    return s.get("skew_seconds") or 0.0


TIME_FORMS: dict[str, Form] = {
    "ids.session_id_format": Form(
        ID_STORED, _id_facts("performer.session_id"), _id_words, positional=ID_STORED
    ),
    "ids.pageview_id_format": Form(
        ID_STORED, _id_facts("performer.pageview_id"), _id_words, positional=ID_STORED
    ),
    "ids.app_install_id_format": Form(
        ("value", "platform"),
        _install_id_facts,
        lambda f, s: f"agent.app_install_id {f['value']!r} is not a UUID",
        positional=ID_STORED,
    ),
    "time.dt_format": Form(
        ("dt", "platform"),
        _dt_format_facts,
        lambda f, s: f"dt {f['dt']!r} is not {f['expected']} ({f['platform']})",
        positional=("dt", "platform"),
    ),
    "time.dt_future": Form(
        ("dt", "received_at", "skew_seconds"),
        _skew_facts,
        lambda f, s: (
            f"dt is {_exact_skew(s):.0f} s ahead of the receive time "
            f"(limit {f['max_future_seconds']} s)"
        ),
        positional=SKEW_POSITIONAL,
    ),
    "time.dt_past": Form(
        ("dt", "received_at", "skew_seconds"),
        _skew_facts,
        lambda f, s: (
            f"dt is {-_exact_skew(s) / 3600:.1f} h behind the receive time "
            f"(limit {f['max_past_seconds'] // 3600} h)"
        ),
        positional=SKEW_POSITIONAL,
    ),
    "time.client_dt_legacy": Form(
        ("client_dt", "schema"),
        _legacy_facts,
        lambda f, s: (
            "legacy event: client_dt and no dt; the server fills dt"
            + ("" if f["server_fills_dt"] else " only for analytics/legacy schemas")
        ),
        positional=("client_dt", "schema"),
    ),
    "time.client_dt_and_dt": Form(
        None, None, lambda f, s: "both client_dt and dt are set; legacy clients send only client_dt"
    ),
    "time.dt_missing": Form(
        None, None, lambda f, s: "neither dt nor client_dt: the client time of the event is unknown"
    ),
}


# --- experiments --------------------------------------------------------------------------


def _name_format_facts(s: Facts) -> Facts:
    return {
        "name_pattern": exps.NAME_RE.pattern,
        "group_pattern": exps.GROUP_RE.pattern,
        "experiment": s.get("experiment"),
        "group": s.get("group"),
    }


def _name_format_words(f: Facts, s: Facts) -> str:
    bad = []
    if not exps.valid_name(f["experiment"]):
        bad.append(f"experiment name {f['experiment']!r}")
    if not exps.valid_group(f["group"]):
        bad.append(f"group {f['group']!r}")
    return f"invalid {' and '.join(bad)}"


def _subject_words(f: Facts, s: Facts) -> str:
    expected, form = f.get("expected_form"), f.get("subject_form")
    return f"subject_id {f.get('subject_id')!r} is not " + (
        f"{expected!r} form for {f.get('sampling_unit')}"
        if expected and form
        else "'awaiting', 'overridden' or a 64-hex sha256"
    )


def _unit_words(f: Facts, s: Facts) -> str:
    if "configured" in f:
        return (
            f"{f['experiment']}: the event says {f['sampling_unit']} but the experiment is "
            f"{f['configured']}"
        )
    return (
        f"sampling_unit {f.get('sampling_unit')!r} is not one of "
        f"{', '.join(exps.EVENT_SAMPLING_UNITS)}"
    )


def _inactive_facts(s: Facts) -> Facts:
    """Like the clock-skew findings, the rules keep the receive time as ``at``."""
    out = {k: v for k, v in s.items() if k != "at"}
    if "at" in s:
        out = {
            "start": s.get("start"),
            "end": s.get("end"),
            "received_at": ids.iso_utc(s["at"]),
            "experiment": s.get("experiment"),
            "group": s.get("group"),
        }
    return out


EXPERIMENT_FORMS: dict[str, Form] = {
    "experiment.unknown": Form(
        None,
        None,
        lambda f, s: f"experiment {f.get('experiment')!r} is not in the loaded experiments",
    ),
    "experiment.not_enrolled": Form(
        None,
        None,
        lambda f, s: (
            f"{f['experiment']}: this subject is not enrolled at rate "
            f"{fmt_rate(f['sample_rate'])} (hash {f['user_hash']:.4f}), yet the event claims "
            f"group {f['group']!r}"
        ),
    ),
    "experiment.group_mismatch": Form(
        None,
        None,
        lambda f, s: (
            f"{f['experiment']}: this user is in group {f['expected_group']!r}, but the event "
            f"says {f['group']!r}"
        ),
    ),
    "experiment.group_unknown": Form(
        None,
        None,
        lambda f, s: (
            f"{f['experiment']}: group {f['group']!r} is not one of {', '.join(f['groups'])}"
        ),
    ),
    "experiment.subject_id_format": Form(None, None, _subject_words),
    "experiment.sampling_unit": Form(None, None, _unit_words),
    "experiment.coordinator": Form(
        None,
        None,
        lambda f, s: (
            f"coordinator {f.get('coordinator')!r} is not 'default' (or 'forced' for overrides)"
        ),
    ),
    "experiment.other_assigned": Form(
        None, None, lambda f, s: f"other_assigned: {'; '.join(f['problems'])}"
    ),
    "experiment.name_format": Form(("experiment", "group"), _name_format_facts, _name_format_words),
    "experiment.overridden": Form(
        None,
        None,
        lambda f, s: (
            f"{f['experiment']}: an overridden enrollment (forced {f['group']!r}); production "
            "never sends events for overridden experiments"
        ),
    ),
    "experiment.inactive": Form(
        ("start", "end", "received_at", "experiment", "group"),
        _inactive_facts,
        lambda f, s: f"{f['experiment']}: received outside {f['start']} .. {f['end']}",
    ),
    "experiment.stream_mismatch": Form(
        None,
        None,
        lambda f, s: (
            f"{f['experiment']}: sent to {f['stream']} but the experiment's stream is "
            f"{f['configured']}"
        ),
    ),
}


# --- judged against earlier events (platform/history.py) ----------------------------------


GAP_STORED = ("instrument", "funnel_entry_token", "position", "from")


def _gap_facts(s: Facts) -> Facts:
    """The rules keep the first missing position as ``from``; the facts list up to 20."""
    if "from" not in s:
        return dict(s)
    out = {k: v for k, v in s.items() if k != "from"}
    out["missing"] = list(range(s["from"], min(s["position"], s["from"] + 20)))
    return out


def _gap_pack(f: Facts) -> Facts:
    missing = f.get("missing")
    out = {k: v for k, v in f.items() if k != "missing"}
    if isinstance(missing, list) and missing and isinstance(missing[0], int):
        out["from"] = missing[0]
    return out


def _gap_words(f: Facts, s: Facts) -> str:
    missing = f["missing"]
    return (
        f"funnel step {f['position']} arrived, but step{'s' * (len(missing) > 1)} "
        f"{', '.join(map(str, missing[:5]))} before it (by dt) did not"
    )


def _session_facts(s: Facts) -> Facts:
    """The rules keep the exact inactive time as ``gap``; the facts show it rounded."""
    inactive = round(s["gap"], 3) if "gap" in s else s.get("inactive_s")
    return {
        "session_id": s.get("session_id"),
        "inactive_s": inactive,
        "timeout_s": ids.APP_SESSION_TIMEOUT_S,
    }


def _session_words(f: Facts, s: Facts) -> str:
    gap = s["gap"] if "gap" in s else f["inactive_s"]
    return (
        f"{gap / 60:.0f} minutes after the previous event, the app kept session {f['session_id']}"
    )


HISTORY_FORMS: dict[str, Form] = {
    "duplicate.meta_id": Form(
        None, None, lambda f, s: f"meta.id {f['meta_id']} was already received"
    ),
    "duplicate.event": Form(
        None, None, lambda f, s: "the same event (identical JSON) was already received"
    ),
    "funnel.repeat": Form(
        None, None, lambda f, s: f"funnel step {f['position']} was already received"
    ),
    "funnel.gap": Form(GAP_STORED, _gap_facts, _gap_words, _gap_pack, positional=GAP_STORED),
    "funnel.disorder": Form(
        None,
        None,
        lambda f, s: (
            f"by dt, step {f['position']} and step {f['other_position']} are in the wrong order"
        ),
    ),
    "session.inactive_kept_id": Form(
        ("session_id", "inactive_s"),
        _session_facts,
        _session_words,
        positional=("session_id", "gap"),
    ),
    "experiment.repeated_exposure": Form(
        None,
        None,
        lambda f, s: (
            f"experiment {f['experiment']} was already exposed in pageview {f['pageview_id']}"
        ),
    ),
}

#: Every registered kind's form.
FORMS: dict[str, Form] = {
    **SAMPLING_FORMS,
    **ATTRIBUTE_FORMS,
    **TIME_FORMS,
    **EXPERIMENT_FORMS,
    **HISTORY_FORMS,
}
