"""Platform rules (PLATFORM.md §4-7): every derived vector, the consistency fixture, the
Java expected events, and a crafted failing case for every finding kind."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from mpsandbox.platform import experiments as exps
from mpsandbox.platform import sampling
from mpsandbox.platform.findings import Finding
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
