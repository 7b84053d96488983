"""Platform rules (PLATFORM.md §4-7): every derived vector, the consistency fixture, the
Java expected events, and a crafted failing case for every finding kind."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest

from mpsandbox.platform import attributes as attrs
from mpsandbox.platform import experiments as exps
from mpsandbox.platform import identifiers as ids
from mpsandbox.platform import sampling
from mpsandbox.platform.findings import KINDS, STATEFUL_KINDS, Finding
from mpsandbox.platform.rules import evaluate
from tests.conftest import WM

DERIVED = WM / "derived"
CONSISTENCY = WM / "metrics-platform" / "tests" / "consistency"
JAVA_EVENTS = WM / "metrics-platform/java/src/test/resources/org/wikimedia/metrics_platform/event"

SAMPLING_VECTORS = json.loads((DERIVED / "sampling_vectors.json").read_text())["vectors"]
ASSIGNMENT = json.loads((DERIVED / "experiment_assignment_vectors.json").read_text())
ENROLLMENT = json.loads((DERIVED / "enrollment_string_vectors.json").read_text())

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC).timestamp()
NOW_DT = "2026-03-01T12:00:00.000Z"


def kinds(findings: list[Finding]) -> list[str]:
    return [f.kind for f in findings]


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]


# --- sampling vectors -------------------------------------------------------------------

RATE_CASES = [
    (v["id"], v["normalized"], rate, expected)
    for v in SAMPLING_VECTORS
    for rate, expected in v["in_sample"].items()
]


def test_sampling_vectors_are_all_used():
    assert len(SAMPLING_VECTORS) == 9
    assert len(RATE_CASES) == 45


@pytest.mark.parametrize(("ident", "normalized", "rate", "expected"), RATE_CASES)
def test_sampling_vector_web_rule(ident, normalized, rate, expected):
    assert sampling.sampling_value(ident) == pytest.approx(normalized, abs=1e-15)
    for unit in ("pageview", "session"):
        assert sampling.web_in_sample(ident, float(rate), unit) is expected


@pytest.mark.parametrize(("ident", "normalized", "rate", "expected"), RATE_CASES)
def test_sampling_vector_app_rule(ident, normalized, rate, expected):
    # Java/Android short-cut rate 1 to in (so ffffffff is in) and rate 0 to out.
    app_expected = True if float(rate) == 1.0 else expected
    for unit in ("session", "device", "pageview"):
        assert sampling.app_in_sample(ident, float(rate), unit) is app_expected


def test_ffffffff_is_where_the_rules_differ():
    assert sampling.web_in_sample("ffffffff000000000000", 1.0, "session") is False
    assert sampling.app_in_sample("ffffffff000000000000", 1.0, "session") is True
    assert sampling.web_in_sample("ffffffff000000000000", 1, "session") is False


def test_web_rule_edges():
    ident = "00000000aaaaaaaaaaaa"
    assert sampling.web_in_sample(ident, 0, "session") is False
    assert sampling.web_in_sample(ident, 0.5, "device") is False  # JS knows no device unit
    assert sampling.web_in_sample(ident, 0.5, "edge-unique") is False
    assert sampling.web_in_sample(ident, 1.5, "session") is False
    assert sampling.web_in_sample(ident, "0.5", "session") is False
    assert sampling.web_in_sample(None, 0.5, "session") is False
    assert sampling.web_in_sample("zz", 0.5, "session") is False  # parseInt -> NaN
    # parseInt reads leading hex digits only: "1g" -> 1
    assert sampling.sampling_value("1gffffff") == 1 / sampling.UINT32_MAX


def test_app_rule_edges():
    assert sampling.app_in_sample(None, 1.0) is True
    assert sampling.app_in_sample("00000000aaaa", 0.0) is False
    assert sampling.app_in_sample("zzzzzzzzzz", 0.5) is False  # parseLong would throw
    assert sampling.app_in_sample("0000", 0.5) is False
    assert sampling.app_in_sample("00000000aaaa", 0.5, "weird") is False


def test_identifier_and_rule_for_event():
    event = {
        "performer": {"session_id": "s" * 20, "pageview_id": "p" * 20},
        "agent": {"app_install_id": "a-uuid", "client_platform": "mediawiki_js"},
    }
    assert sampling.identifier_for(event, "session") == "s" * 20
    assert sampling.identifier_for(event, "pageview") == "p" * 20
    assert sampling.identifier_for(event, "device") == "a-uuid"
    assert sampling.identifier_for(event, "nope") is None
    assert sampling.identifier_field("device") == "agent.app_install_id"
    assert sampling.rule_for(event) == "web"
    assert sampling.rule_for({"agent": {"client_platform": "android"}}) == "app"
    assert sampling.rule_for({"agent": {"client_platform": "ios"}}) == "app"
    assert sampling.rule_for({"agent": {"client_platform_family": "app"}}) == "app"
    assert sampling.rule_for({}) == "web"
    assert sampling.decide(event, None) is None


# --- experiment assignment vectors ------------------------------------------------------


@pytest.mark.parametrize(
    "vector", ASSIGNMENT["get_user_hash_vectors"], ids=lambda v: v["experiment"]
)
def test_user_hash_vector(vector):
    subject = exps.subject_id(vector["identifier"], vector["experiment"])
    assert subject == vector["subject_id"]
    assert exps.subject_id(int(vector["identifier"]), vector["experiment"]) == subject
    hash_ = exps.user_hash(subject)
    assert hash_ == pytest.approx(vector["user_hash"], abs=1e-12)
    assert round(hash_, 3) == vector["expected_rounded_3dp_from_test"]
    groups = vector["example_groups"]
    rate = vector["example_rate"]
    assert exps.is_sampled(rate, groups, hash_) is vector["example_sampled"]
    assert exps.bucket(groups, hash_) == vector["example_bucket"]
    expected_group = vector["example_bucket"] if vector["example_sampled"] else None
    assert exps.assign(subject, rate, groups) == (vector["example_sampled"], expected_group)


@pytest.mark.parametrize(
    "vector",
    ASSIGNMENT["is_sampled_and_bucket_vectors"],
    ids=lambda v: f"{v['rate']}-{len(v['groups'])}-{v['user_hash']}",
)
def test_sampled_and_bucket_vector(vector):
    assert (
        exps.is_sampled(vector["rate"], vector["groups"], vector["user_hash"]) is vector["sampled"]
    )
    assert exps.bucket(vector["groups"], vector["user_hash"]) == vector["bucket"]


def test_assignment_vectors_are_all_used():
    assert len(ASSIGNMENT["get_user_hash_vectors"]) == 8
    assert len(ASSIGNMENT["is_sampled_and_bucket_vectors"]) == 18


# --- enrollment string vectors ----------------------------------------------------------


@pytest.mark.parametrize(
    "example", ENROLLMENT["mpo_query_param"]["examples"], ids=lambda e: e["raw"]
)
def test_mpo_vector(example):
    raw = example["raw"]
    if "parsed" in example:
        assert exps.parse_mpo(raw) == example["parsed"]
        # and it survives a round trip through the formatter
        assert exps.parse_mpo(exps.format_mpo(example["parsed"])) == example["parsed"]
        assert (
            exps.parse_mpo(exps.format_mpo(example["parsed"]), dialect="php") == example["parsed"]
        )
    else:
        # malformed: JS logs and uses {}, PHP logs and uses []; here both raise
        assert example["parsed_js"].startswith("error")
        assert example["parsed_php"].startswith("error")
        with pytest.raises(exps.EnrollmentStringError):
            exps.parse_mpo(raw)
        with pytest.raises(exps.EnrollmentStringError):
            exps.parse_mpo(raw, dialect="php")


def test_mpo_dialects_differ():
    # JS accepts a trailing ';'; PHP's explode(';') then sees an empty entry: malformed
    assert exps.parse_mpo("exp-one-abc:control;") == {"exp-one-abc": "control"}
    with pytest.raises(exps.EnrollmentStringError):
        exps.parse_mpo("exp-one-abc:control;", dialect="php")
    # PHP splits on the first ':' only; JS refuses a second ':'
    assert exps.parse_mpo("exp-one-abc:a:b", dialect="php") == {"exp-one-abc": "a:b"}
    with pytest.raises(exps.EnrollmentStringError):
        exps.parse_mpo("exp-one-abc:a:b")
    with pytest.raises(exps.EnrollmentStringError):
        exps.parse_mpo(";exp-one-abc:a")
    assert exps.parse_mpo("") == {} == exps.parse_mpo(None, dialect="php")
    with pytest.raises(ValueError):
        exps.parse_mpo("a:b", dialect="perl")


def test_server_timing_vector():
    vector = ENROLLMENT["server_timing_WMF-Uniq_desc"]["example"]
    assert exps.parse_server_timing(vector["raw"]) == vector["parsed"]
    assert exps.format_server_timing(vector["parsed"]) == vector["raw"]
    # JS requires the trailing ';' on every entry
    with pytest.raises(exps.EnrollmentStringError):
        exps.parse_server_timing("sticky-headers-2025=treatment")
    with pytest.raises(exps.EnrollmentStringError):
        exps.parse_server_timing("=treatment;=")
    assert exps.parse_server_timing("") == {}


def test_enrollment_header_vector():
    vector = ENROLLMENT["X-Experiment-Enrollments_request_header"]
    assert exps.NAME_RE.pattern == vector["name_regex"].strip("^$")
    assert exps.GROUP_RE.pattern == vector["group_regex"].strip("^$")
    parsed = exps.parse_enrollment_header("sticky-headers-2025=treatment;other-exp-1=B;")
    assert parsed == {"sticky-headers-2025": "treatment", "other-exp-1": "B"}
    assert exps.format_enrollment_header(parsed) == "sticky-headers-2025=treatment;other-exp-1=B"
    for bad in (
        "short=treatment",
        "sticky-headers-2025=",
        "sticky-headers-2025",
        "a=b=c",
        "sticky-headers-2025=-bad",
    ):
        with pytest.raises(exps.EnrollmentStringError):
            exps.parse_enrollment_header(bad)


def test_resulting_subject_id_vector():
    vector = ENROLLMENT["resulting_subject_id"]
    assert vector["override"] == exps.SUBJECT_ID_OVERRIDDEN
    assert vector["header/everyone (edge-unique)"] == exps.SUBJECT_ID_AWAITING
    assert "sha256" in vector["mw-user"]
    assert exps.SUBJECT_ID_RE.fullmatch(exps.subject_id(42, "my-awesome-experiment"))


def test_name_and_group_rules():
    assert exps.valid_name("abcdefgh") and not exps.valid_name("abcdefg")
    assert exps.valid_name("a" * 63) and not exps.valid_name("a" * 64)
    assert not exps.valid_name("-abcdefgh") and not exps.valid_name("abc defgh")
    assert exps.valid_group("A") and not exps.valid_group("") and not exps.valid_group("_a")
    assert exps.valid_group("a" * 63) and not exps.valid_group("a" * 64)
    with pytest.raises(exps.EnrollmentStringError, match="short"):
        exps.format_mpo({"short": "a"})
    with pytest.raises(exps.EnrollmentStringError, match="group"):
        exps.format_mpo({"long-enough": "a;b"})


# --- experiments files ------------------------------------------------------------------

TK_ROW = {
    "name": "lunch-experiment",
    "start": "2026-01-01T00:00:00Z",
    "end": "2026-12-31T00:00:00Z",
    "user_identifier_type": "mw-user",
    "groups": ["control", "treatment"],
    "sample_rate": {"default": "0.5", "1": ["testwiki"], "0.1": ["enwiki"]},
    "stream_name": "product_metrics.web_base",
    "contextual_attributes": ["page_id"],
    "phase_index": 0,
    "version": "api-v7",
}

SIMPLE_YAML = """
- name: my-awesome-experiment
  groups: [control, treatment]
  sample_rate: 0.25
  sampling_unit: edge-unique
  stream: product_metrics.web_base
  schema: /analytics/product_metrics/web/base/2.1.0
"""


def test_load_test_kitchen_rows(tmp_path):
    path = tmp_path / "experiments.json"
    path.write_text(json.dumps([TK_ROW]))
    loaded = exps.load_experiments(path)
    exp = loaded["lunch-experiment"]
    assert exp.groups == ("control", "treatment")
    assert exp.sampling_unit == "mw-user"
    assert exp.stream == "product_metrics.web_base"
    assert exp.rate_for(None) == 0.5
    assert exp.rate_for("testwiki") == 1.0
    assert exp.rate_for("enwiki") == 0.1
    assert exp.rate_for("dewiki") == 0.5
    assert exp.contextual_attributes == ("page_id",)
    assert exp.phase_index == 0 and exp.version == "api-v7"
    assert exp.active_at(NOW) is True
    assert exp.active_at(datetime(2027, 1, 1, tzinfo=UTC).timestamp()) is False


def test_load_simple_yaml_and_other_containers(tmp_path):
    path = tmp_path / "experiments.yaml"
    path.write_text(SIMPLE_YAML)
    loaded = exps.load_experiments(path)
    exp = loaded["my-awesome-experiment"]
    assert exp.sampling_unit == "edge-unique" and exp.default_rate == 0.25
    assert exp.schema == "/analytics/product_metrics/web/base/2.1.0"
    assert exp.active_at(NOW) is None
    by_name = exps.parse_experiments(
        {"lunch-experiment": {k: v for k, v in TK_ROW.items() if k != "name"}}
    )
    assert list(by_name) == ["lunch-experiment"]
    wrapped = exps.parse_experiments({"experiments": [TK_ROW]})
    assert len(wrapped) == 1
    processed = dict(TK_ROW, sample={"rate": 0.3, "unit": "session"})
    del processed["sample_rate"]
    assert exps.parse_experiments([processed])["lunch-experiment"].default_rate == 0.3
    assert len(exps.parse_experiments(None)) == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "short"}, "name must match"),
        ({"name": None}, "name is required"),
        ({"groups": []}, "groups must be a non-empty list"),
        ({"groups": ["ok", "-bad"]}, "group '-bad'"),
        ({"groups": ["a", "a"]}, "unique"),
        ({"user_identifier_type": "session"}, "sampling unit 'session'"),
        ({"sample_rate": {"default": "lots"}}, "sample_rate.default"),
        ({"sample_rate": 2}, "outside 0..1"),
        ({"sample_rate": {"default": 1, "x": ["enwiki"]}}, "entry 'x'"),
        ({"start": "yesterday"}, "not an ISO-8601"),
        ({"contextual_attributes": "page_id"}, "contextual_attributes"),
        ({"phase_index": "0"}, "phase_index"),
    ],
)
def test_experiment_validation_errors(change, message):
    row = dict(TK_ROW, **change)
    with pytest.raises(exps.ExperimentsError) as info:
        exps.parse_experiments([row], source="exp.yaml")
    assert any(message in p for p in info.value.problems), info.value.problems
    assert str(info.value).startswith("exp.yaml: ")


def test_experiment_file_errors(tmp_path):
    with pytest.raises(exps.ExperimentsError, match="duplicate"):
        exps.parse_experiments([TK_ROW, TK_ROW])
    with pytest.raises(exps.ExperimentsError, match="must be an object"):
        exps.parse_experiments(["nope"])
    with pytest.raises(exps.ExperimentsError, match="expected a list"):
        exps.parse_experiments(42)
    with pytest.raises(exps.ExperimentsError, match="neither JSON nor YAML"):
        exps.parse_experiments_text("- [unclosed")
    with pytest.raises(exps.ExperimentsError, match="cannot read"):
        exps.load_experiments(tmp_path / "missing.yaml")
    # every problem is reported, not just the first
    with pytest.raises(exps.ExperimentsError) as info:
        exps.parse_experiments([dict(TK_ROW, name="x"), dict(TK_ROW, groups=[])])
    assert len(info.value.problems) == 2


# --- contextual attributes --------------------------------------------------------------


def test_attribute_paths():
    assert attrs.attribute_path("performer_session_id") == ("performer", "session_id")
    assert attrs.attribute_path("agent_client_platform_family") == (
        "agent",
        "client_platform_family",
    )
    assert attrs.attribute_dotted("page_user_groups_allowed_to_edit") == (
        "page.user_groups_allowed_to_edit"
    )
    assert attrs.attribute_path("platform") == ("platform",)


def test_known_attributes_cover_the_client_config_schema():
    schema = json.loads(
        (
            WM / "metrics-platform/php/src/StreamConfig/data/metrics_platform_client.schema.json"
        ).read_text()
    )
    enum = set(schema["$defs"]["context_attribute"]["enum"])
    assert enum <= attrs.KNOWN_ATTRIBUTES
    assert set(schema["properties"]["curation"]["properties"]) <= attrs.KNOWN_ATTRIBUTES
    assert set(schema["$defs"]["curation_rules"]["properties"]) == set(attrs.CURATION_RULES)
    assert {"agent_app_install_id", "performer_language_groups"} <= attrs.KNOWN_ATTRIBUTES


def _config(provide=(), curation=None, sample=None):
    mpc = {"events": ["x."], "provide_values": list(provide)}
    if curation is not None:
        mpc["curation"] = curation
    config = {
        "schema_title": "analytics/product_metrics/web/base",
        "producers": {"metrics_platform_client": mpc},
    }
    if sample is not None:
        config["sample"] = sample
    return config


def test_missing_and_unrequested():
    event = {
        "agent": {"client_platform": "mediawiki_js", "client_platform_family": "desktop_browser"},
        "performer": {"session_id": "a" * 20, "name": None, "is_bot": False},
        "page": {"id": 3},
    }
    config = _config(["performer_session_id", "performer_name", "mediawiki_skin"])
    assert attrs.missing_requested(event, config) == ["performer_name", "mediawiki_skin"]
    assert attrs.missing_requested(event, config, extra=("page_title",))[-1] == "page_title"
    # always-sent attributes are never unrequested; a false boolean is present
    assert attrs.unrequested_present(event, config) == ["page_id", "performer_is_bot"]
    assert attrs.unrequested_present(event, config, extra=("page_id",)) == ["performer_is_bot"]
    assert attrs.null_attributes(event) == ["performer_name"]
    assert attrs.requested_attributes(None) == []
    assert attrs.missing_requested(event, {"producers": "junk"}) == []


CURATION_CASES = [
    # (value, rule, operand, passes)
    ("vector", "equals", "vector", True),
    ("vector", "equals", "minerva", False),
    (1, "equals", True, False),  # JS ===: no bool/number mixing
    (1, "equals", 1.0, True),
    ("vector", "not_equals", "minerva", True),
    ("vector", "not_equals", "vector", False),
    ("vector", "in", ["minerva", "vector"], True),
    ("monobook", "in", ["minerva", "vector"], False),
    ("monobook", "not_in", ["minerva", "vector"], True),
    ("vector", "not_in", ["minerva", "vector"], False),
    (10, "greater_than", 5, True),
    (5, "greater_than", 5, False),
    (4, "less_than", 5, True),
    (5, "less_than", 5, False),
    (5, "greater_than_or_equals", 5, True),
    (4, "greater_than_or_equals", 5, False),
    (5, "less_than_or_equals", 5, True),
    (6, "less_than_or_equals", 5, False),
    ("5", "greater_than", 1, False),  # not comparable
    (["sysop", "user"], "contains", "sysop", True),
    (["user"], "contains", "sysop", False),
    ("1.39.0-wmf.8", "contains", "wmf", True),
    (["user"], "does_not_contain", "sysop", True),
    (["sysop"], "does_not_contain", "sysop", False),
    (["a", "b", "c"], "contains_all", ["a", "c"], True),
    (["a", "b"], "contains_all", ["a", "c"], False),
    (["a", "b"], "contains_any", ["c", "b"], True),
    (["a", "b"], "contains_any", ["c", "d"], False),
    (5, "contains", 5, False),  # a number has no indexOf
    ("x", "in", "x", False),  # operand must be a list
    ("x", "resembles", "x", False),  # unknown rule
]


@pytest.mark.parametrize(("value", "rule", "operand", "passes"), CURATION_CASES)
def test_curation_rule(value, rule, operand, passes):
    assert attrs.rule_passes(value, rule, operand)[0] is passes
    event = {"mediawiki": {"skin": value}}
    failures = attrs.curation_failures(event, _config(curation={"mediawiki_skin": {rule: operand}}))
    assert (failures == []) is passes
    if not passes:
        assert failures[0].path == "mediawiki.skin" and failures[0].value == value


def test_curation_all_rules_must_pass_and_null_fails():
    config = _config(
        curation={
            "mediawiki_skin": {"in": ["vector", "minerva"], "not_equals": "minerva"},
            "performer_edit_count": {"greater_than": 10},
        }
    )
    ok = {"mediawiki": {"skin": "vector"}, "performer": {"edit_count": 11}}
    assert attrs.curation_failures(ok, config) == []
    bad = {"mediawiki": {"skin": "minerva"}, "performer": {"edit_count": None}}
    failed = {(f.attribute, f.rule) for f in attrs.curation_failures(bad, config)}
    assert failed == {("mediawiki_skin", "not_equals"), ("performer_edit_count", "greater_than")}
    missing = attrs.curation_failures({}, config)
    assert len(missing) == 3 and all(f.reason == "value is missing or null" for f in missing)


# --- identifiers and time ---------------------------------------------------------------


def test_id_formats_per_platform():
    web, upper_uuid = "0123456789abcdef0123", "E3B0C442-98FC-1C14-9AFB-F4C8996FB924"
    assert ids.session_id_ok(web, "web")
    assert not ids.session_id_ok(web.upper(), "web")
    assert not ids.session_id_ok(web[:-1], "web")
    assert ids.session_id_ok(web.upper(), "android")
    assert not ids.session_id_ok(upper_uuid, "android")
    assert ids.session_id_ok(web, "ios") and ids.session_id_ok(upper_uuid, "ios")
    assert not ids.session_id_ok(upper_uuid.lower(), "ios")
    assert ids.id_form(upper_uuid) == "uuid-upper"
    assert ids.app_install_id_ok("ffffffff-ffff-ffff-ffff-ffffffffffff")
    assert not ids.app_install_id_ok("ffffffffffffffffffffffffffffffff")
    assert ids.platform_kind({"agent": {"client_platform": "mediawiki_js"}}) == "web"
    assert ids.platform_kind({"agent": {"client_platform_family": "mobile_browser"}}) == "web"
    assert ids.platform_kind({"agent": {"client_platform": "android"}}) == "android"
    assert ids.platform_kind({}) == "unknown"


def test_dt_formats_and_skew():
    assert ids.dt_format_ok("2026-03-01T12:00:00.123Z", "web")
    assert not ids.dt_format_ok("2026-03-01T12:00:00Z", "web")
    assert not ids.dt_format_ok("2026-03-01T12:00:00.123+00:00", "web")
    assert ids.dt_format_ok("2026-03-01T12:00:00Z", "android")
    assert ids.dt_format_ok("2026-03-01T12:00:00.123456789Z", "ios")
    assert ids.parse_dt("2026-03-01T12:00:00.000Z") == NOW
    assert ids.parse_dt("2026-03-01T12:00:00") is None  # no zone
    assert ids.parse_dt("2026-03-01T12:00:00.123456789Z") == pytest.approx(NOW + 0.123456)
    assert ids.dt_skew("2026-03-01T12:10:00.000Z", NOW) == 600
    assert ids.skew_problem(ids.MAX_FUTURE_SKEW_S + 1) == "future"
    assert ids.skew_problem(ids.MAX_FUTURE_SKEW_S) is None
    assert ids.skew_problem(-ids.MAX_PAST_SKEW_S - 1) == "past"
    assert ids.iso_utc(NOW + 0.5) == "2026-03-01T12:00:00.500Z"


# --- the golden events ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("configs", "expected"),
    [
        ("stream_configs.json", "expected_event.json"),
        ("stream_configs_apps.json", "expected_event_apps.json"),
    ],
)
def test_consistency_fixture_has_no_errors(configs, expected):
    config = json.loads((CONSISTENCY / configs).read_text())["streams"]["test.consistency"]
    event = json.loads((CONSISTENCY / expected).read_text())
    findings = evaluate(
        event, stream="test.consistency", stream_config=config, experiments=None, received_at=NOW
    )
    assert errors(findings) == []
    # the golden events omit dt (documented); everything else about them is clean
    assert sorted(kinds(findings)) == ["sampling.decision", "time.dt_missing"]
    decision = next(f for f in findings if f.kind == "sampling.decision")
    assert decision.facts["in_sample"] is True
    assert decision.facts["rule"] == ("app" if "apps" in expected else "web")
    # with a dt, not even a warning is left
    event["dt"] = NOW_DT if "apps" not in expected else "2026-03-01T12:00:00Z"
    findings = evaluate(
        event, stream="test.consistency", stream_config=config, experiments=None, received_at=NOW
    )
    assert kinds(findings) == ["sampling.decision"]


def _java_event(name):
    event = json.loads((JAVA_EVENTS / name).read_text())[0]
    assert event["dt"] == "${json-unit.ignore}"
    event["dt"] = "2026-03-01T12:00:00Z"  # the Java client sends whole seconds
    return event


JAVA_NAMES = sorted(p.name for p in JAVA_EVENTS.glob("expected_event_*.json"))


def test_java_expected_events_are_all_used():
    assert len(JAVA_NAMES) == 4


@pytest.mark.parametrize("name", JAVA_NAMES)
def test_java_expected_event_is_clean(name):
    event = _java_event(name)
    assert evaluate(event, stream=None, stream_config=None, experiments=None, received_at=NOW) == []
    # a stream config that requests exactly what the Java client sent, sampling by device
    sent = [
        n
        for n in attrs.KNOWN_ATTRIBUTES
        if attrs.is_present(event, n) and n not in attrs.ALWAYS_SENT
    ]
    config = _config(sent, sample={"unit": "device", "rate": 1.0})
    findings = evaluate(event, stream=None, stream_config=config, experiments=None, received_at=NOW)
    # ffffffff at rate 1: in on Android, out by the JS rule; the app rule applies
    assert sorted(kinds(findings)) == ["sampling.decision", "sampling.rules_disagree"]
    assert errors(findings) == []
    # the same config without those attributes: each one is a privacy smell
    findings = evaluate(
        event, stream=None, stream_config=_config([]), experiments=None, received_at=NOW
    )
    smell = next(f for f in findings if f.kind == "attributes.unrequested_present")
    assert set(smell.facts["attributes"]) == set(sent)


# --- crafted failing cases: one per finding kind ----------------------------------------

SESSION = "0123456789abcdef0123"
PAGEVIEW = "fedcba9876543210fedc"
LUNCH = exps.parse_experiments([TK_ROW])


def web_event(**changes):
    event = {
        "$schema": "/analytics/product_metrics/web/base/1.5.0",
        "meta": {"stream": "product_metrics.web_base", "domain": "en.wikipedia.org"},
        "dt": NOW_DT,
        "action": "click",
        "agent": {"client_platform": "mediawiki_js", "client_platform_family": "desktop_browser"},
        "performer": {"session_id": SESSION, "pageview_id": PAGEVIEW},
        "mediawiki": {"database": "dewiki"},
    }
    for path, value in changes.items():
        node = event
        *parents, leaf = path.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        if value is DELETE:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return event


DELETE = object()


def _lunch_subject(*, enrolled: bool, group: str | None = None) -> str:
    """A central user id whose subject is (not) enrolled in lunch-experiment at 0.5."""
    for user in range(1, 10_000):
        subject = exps.subject_id(user, "lunch-experiment")
        hit, got = exps.assign(subject, 0.5, ["control", "treatment"])
        if hit == enrolled and (group is None or got == group):
            return subject
    raise AssertionError("no such subject")


def exp_block(**changes):
    block = {
        "enrolled": "lunch-experiment",
        "assigned": "treatment",
        "subject_id": _lunch_subject(enrolled=True, group="treatment"),
        "sampling_unit": "mw-user",
        "coordinator": "default",
        "phase_index": 0,
    }
    block.update(changes)
    return {k: v for k, v in block.items() if v is not DELETE}


SAMPLED = {"unit": "session", "rate": 0.5}
WEB_REQUESTED = [
    "performer_session_id",
    "performer_pageview_id",
    "mediawiki_database",
]  # SESSION starts 01234567: in at 0.5

CRAFTED: dict[str, dict] = {
    "sampling.decision": {"event": web_event(), "config": _config(sample=SAMPLED)},
    "sampling.out_of_sample": {
        "event": web_event(performer__session_id="f" * 20),
        "config": _config(sample=SAMPLED),
    },
    "sampling.rules_disagree": {
        "event": web_event(performer__session_id="ffffffff" + "0" * 12),
        "config": _config(sample={"unit": "session", "rate": 1}),
    },
    "sampling.identifier_missing": {
        "event": web_event(performer__pageview_id=DELETE),
        "config": _config(sample={"unit": "pageview", "rate": 0.5}),
    },
    "sampling.unknown_unit": {
        "event": web_event(),
        "config": _config(sample={"unit": "edge-unique", "rate": 0.5}),
    },
    "sampling.invalid_rate": {
        "event": web_event(),
        "config": _config(sample={"unit": "session", "rate": 1.5}),
    },
    "sampling.sample_field_mismatch": {
        "event": web_event(sample={"unit": "session", "rate": 1}),
        "config": _config(sample=SAMPLED),
    },
    "attributes.missing_requested": {
        "event": web_event(),
        "config": _config(["performer_session_id", "mediawiki_skin"]),
    },
    "attributes.unrequested_present": {
        "event": web_event(),
        "config": _config(["performer_session_id"]),
    },
    "attributes.unknown_requested": {
        "event": web_event(),
        "config": _config(["performer_session_id", "performer_pageview_id", "user_shoe_size"]),
    },
    "attributes.curation_failed": {
        "event": web_event(mediawiki__skin="monobook"),
        "config": _config(curation={"mediawiki_skin": {"in": ["vector", "minerva"]}}),
    },
    "attributes.null_value": {
        "event": web_event(performer__name=None),
        "config": _config(["performer_session_id", "performer_pageview_id", "performer_name"]),
    },
    "ids.session_id_format": {"event": web_event(performer__session_id=SESSION.upper())},
    "ids.pageview_id_format": {"event": web_event(performer__pageview_id="short")},
    "ids.app_install_id_format": {"event": web_event(agent__app_install_id="not-a-uuid")},
    "time.dt_format": {"event": web_event(dt="2026-03-01T12:00:00Z")},
    "time.dt_future": {"event": web_event(dt="2026-03-01T12:06:00.000Z")},
    "time.dt_past": {"event": web_event(dt="2026-02-27T11:59:59.000Z")},
    "time.client_dt_legacy": {
        "event": web_event(dt=DELETE, client_dt=NOW_DT, **{"$schema": "/analytics/legacy/x/1.0.0"})
    },
    "time.client_dt_and_dt": {"event": web_event(client_dt=NOW_DT)},
    "time.dt_missing": {"event": web_event(dt=DELETE)},
    "experiment.unknown": {
        "event": web_event(experiment=exp_block(enrolled="dinner-experiment")),
        "experiments": LUNCH,
    },
    "experiment.not_enrolled": {
        "event": web_event(
            experiment=exp_block(subject_id=_lunch_subject(enrolled=False), assigned="control")
        ),
        "experiments": LUNCH,
    },
    "experiment.group_mismatch": {
        "event": web_event(experiment=exp_block(assigned="control")),
        "experiments": LUNCH,
    },
    "experiment.group_unknown": {
        "event": web_event(experiment=exp_block(assigned="placebo")),
        "experiments": LUNCH,
    },
    "experiment.subject_id_format": {
        "event": web_event(experiment=exp_block(subject_id="awaiting"))
    },
    "experiment.sampling_unit": {
        "event": web_event(experiment=exp_block(sampling_unit="pageview"))
    },
    "experiment.coordinator": {"event": web_event(experiment=exp_block(coordinator="custom"))},
    "experiment.other_assigned": {
        "event": web_event(experiment=exp_block(other_assigned={"lunch-experiment": "B"}))
    },
    "experiment.name_format": {"event": web_event(experiment=exp_block(enrolled="lunch"))},
    "experiment.overridden": {
        "event": web_event(experiment=exp_block(subject_id="overridden", coordinator="forced"))
    },
    "experiment.inactive": {
        "event": web_event(experiment=exp_block()),
        "experiments": LUNCH,
        "received_at": datetime(2027, 6, 1, tzinfo=UTC).timestamp(),
    },
    "experiment.stream_mismatch": {
        "event": web_event(experiment=exp_block(), meta__stream="my.other.stream"),
        "experiments": LUNCH,
    },
}


def _run(case):
    received_at = case.get("received_at", NOW)
    event = copy.deepcopy(case["event"])
    if "received_at" in case:
        event["dt"] = ids.iso_utc(received_at)
    return evaluate(
        event,
        stream=None,
        stream_config=case.get("config"),
        experiments=case.get("experiments"),
        received_at=received_at,
    )


def test_every_kind_has_a_crafted_case():
    # Stateful kinds (duplicates, funnels, ...) have theirs in tests/test_history.py.
    assert set(CRAFTED) == set(KINDS) - set(STATEFUL_KINDS)


@pytest.mark.parametrize("kind", sorted(CRAFTED))
def test_crafted_case_produces_its_kind(kind):
    findings = _run(CRAFTED[kind])
    produced = [f for f in findings if f.kind == kind]
    assert produced, kinds(findings)
    for f in produced:
        assert f.severity == KINDS[kind].severity
        assert f.message and "\n" not in f.message
        assert Finding.from_dict(json.loads(json.dumps(f.as_dict()))) == f


def test_clean_web_event_has_no_findings():
    event = web_event()
    config = _config(["performer_session_id", "performer_pageview_id", "mediawiki_database"])
    assert (
        evaluate(event, stream=None, stream_config=config, experiments=None, received_at=NOW) == []
    )


def test_sampling_facts_carry_the_numbers():
    findings = _run(CRAFTED["sampling.out_of_sample"])
    out = next(f for f in findings if f.kind == "sampling.out_of_sample")
    assert out.facts["identifier_field"] == "performer.session_id"
    assert out.facts["identifier"] == "f" * 20
    assert out.facts["rate"] == 0.5 and out.facts["value"] == 1.0
    assert out.facts["web_in_sample"] is False and out.facts["app_in_sample"] is False
    assert "should have been sampled out" in out.message
    # the same id on the app rule at rate 1 is in; no sample config means in sample
    assert _run({"event": web_event(), "config": _config(WEB_REQUESTED)}) == []


def test_sample_field_that_agrees_is_quiet():
    case = {
        "event": web_event(sample={"unit": "session", "rate": 0.5}),
        "config": _config(sample=SAMPLED),
    }
    assert "sampling.sample_field_mismatch" not in kinds(_run(case))
    # the event claims sampling but the stream does not sample
    case = {"event": web_event(sample=SAMPLED), "config": _config(WEB_REQUESTED)}
    assert kinds(_run(case)) == ["sampling.sample_field_mismatch"]


def test_experiment_expected_group_facts():
    ok = {"event": web_event(experiment=exp_block()), "experiments": LUNCH}
    assert _run(ok) == []
    findings = _run(CRAFTED["experiment.group_mismatch"])
    mismatch = next(f for f in findings if f.kind == "experiment.group_mismatch")
    assert mismatch.facts["expected_group"] == "treatment"
    assert mismatch.facts["group"] == "control"
    assert mismatch.facts["sample_rate"] == 0.5
    assert "this user is in group 'treatment', but the event says 'control'" in mismatch.message
    # the per-wiki rate applies: on testwiki (rate 1) an unenrolled-at-0.5 subject may be in
    subject = _lunch_subject(enrolled=False)
    _, group = exps.assign(subject, 1.0, ["control", "treatment"])
    event = web_event(experiment=exp_block(subject_id=subject, assigned=group))
    event["mediawiki"]["database"] = "testwiki"
    assert _run({"event": event, "experiments": LUNCH}) == []


def test_edge_unique_and_exposure_events():
    block = exp_block(sampling_unit="edge-unique", subject_id="awaiting")
    edge = {"event": web_event(experiment=block)}
    assert _run(edge) == []
    # an edge-unique experiment with a sha256 subject: the intake, not the client, fills it
    block = exp_block(sampling_unit="edge-unique")
    assert kinds(_run({"event": web_event(experiment=block)})) == ["experiment.subject_id_format"]
    # exposure events carry Test Kitchen's exposure attributes without a stream request
    event = web_event(
        action="experiment_exposure",
        experiment=exp_block(),
        performer__is_logged_in=True,
        performer__is_bot=False,
    )
    config = _config(["performer_session_id", "performer_pageview_id", "page_id"])
    findings = _run({"event": event, "config": config, "experiments": LUNCH})
    assert "attributes.unrequested_present" not in kinds(findings)
    # the experiment's own contextual_attributes (page_id) are requested too
    missing = next(f for f in findings if f.kind == "attributes.missing_requested")
    assert missing.facts["attributes"] == ["page_id"]
    assert missing.facts["absent_nullable"] == ["performer_is_temp"]
    # an experiment event whose config is unknown is not judged for unrequested attributes
    findings = _run({"event": event, "config": _config(["performer_session_id"])})
    assert "attributes.unrequested_present" not in kinds(findings)


def test_overridden_event_is_an_error():
    findings = _run(CRAFTED["experiment.overridden"])
    assert [f.kind for f in errors(findings)] == ["experiment.overridden"]
    # the PHP SDK's overridden unit alone is enough
    findings = _run({"event": web_event(experiment=exp_block(sampling_unit="overridden"))})
    assert "experiment.overridden" in kinds(findings)


def test_finding_round_trip_and_validation():
    f = Finding("sampling.out_of_sample", "warning", "m", {"rate": 0.1})
    assert Finding.from_dict(f.as_dict()) == f
    assert f.as_dict()["facts"] == {"rate": 0.1}
    with pytest.raises(ValueError):
        Finding("x", "fatal", "m")
    for info in KINDS.values():
        assert info.severity in ("error", "warning", "info") and info.description


def test_dt_missing_only_when_the_schema_has_dt():
    event = {"$schema": "/mpsandbox/smoke_test/1.0.0", "meta": {"stream": "s"}}
    common = {"stream": None, "stream_config": None, "experiments": None, "received_at": NOW}
    assert "time.dt_missing" in kinds(evaluate(event, **common))
    assert "time.dt_missing" not in kinds(evaluate(event, **common, schema_has_dt=False))
