"""Instrument definitions and checks: the shipped examples against their fixtures (and
broken variants of them), definition errors, `mpsandbox check` on every source and format,
and `mpsandbox instrument new`. Real schemas, real pipeline, real servers on loopback."""

from __future__ import annotations

import asyncio
import copy
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from mpsandbox.cli import main
from mpsandbox.instruments.checks import FAIL, NOT_SEEN, PASS, ObservedEvent, check_instrument
from mpsandbox.instruments.definitions import (
    load_file,
    load_location,
    parse_data,
    parse_version_range,
    resolve,
)
from mpsandbox.instruments.sources import events_from_fixtures, load_fixture_events
from tests.conftest import PRIMARY, ROOT, SECONDARY, settings_for

INSTRUMENTS = ROOT / "instruments"
SCHEMA_ARGS = ["--schemas", str(SECONDARY), "--schemas", str(PRIMARY)]
EXAMPLES = (
    "web-sticky-header-click",
    "web-article-page-impression",
    "web-edit-attempt-funnel",
    "web-sticky-header-experiment",
    "android-screen-view",
)


def invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def fixture_events(name: str) -> list[dict]:
    return load_fixture_events(INSTRUMENTS / "fixtures" / f"{name}.jsonl")


def check_of(result, check_id: str):
    return next(c for c in result.checks if c.id == check_id)


# --- broken variants: one mistake an instrument could make, and what the check must say ---


def _by(events, **where):
    for e in events:
        if all(e.get(k) == v for k, v in where.items()):
            return e
    raise AssertionError(f"no fixture event with {where}")


def broken_click(events):
    _by(events, element_id="ca-edit")["action_source"] = "menu"
    _by(events[1:], element_id="ca-edit")["action_source"] = "menu"
    return (
        "edit",
        "no event matched; nearest is event",
        "action_source was 'menu', expected 'sticky_header'",
    )


def broken_impression(events):
    events.append(copy.deepcopy(events[0]))  # the same pageview again
    return "impression", "2 matching events, expected exactly 1 per pageview", "pageview 9c8b7a6f"


def broken_funnel(events):
    ready = _by(events, action="ready", funnel_entry_token="f4e3d2c1b0a9f8e7d6c5")
    ready["dt"] = "2026-03-02T10:07:40.500Z"  # after save_intent (10:07:39.800)
    return "save-intent", "step 3 came before step 2 in funnel edit_attempt", "f4e3d2c1b0a9f8e7d6c5"


def broken_experiment(events):
    click = _by(events, action="click", action_source="sticky_header")
    click["dt"] = "2026-03-02T09:59:59.000Z"  # before the session's first exposure
    return "conversion", "came before the first exposure event of subject", "4a1f0c2e9b7d6a5c3e21"


def broken_app(events):
    del events[3]["agent"]["app_install_id"]
    return "article", "agent.app_install_id is missing", "agent.app_install_id is missing"


BROKEN: dict[str, Callable] = {
    "web-sticky-header-click": broken_click,
    "web-article-page-impression": broken_impression,
    "web-edit-attempt-funnel": broken_funnel,
    "web-sticky-header-experiment": broken_experiment,
    "android-screen-view": broken_app,
}


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    """Every example's fixture, then every broken variant, judged through the pipeline
    into a temporary database in one run; events sliced back per file (ids in order)."""
    tmp = tmp_path_factory.mktemp("instruments")
    files, expected = [], {}
    for name in EXAMPLES:
        files.append(INSTRUMENTS / "fixtures" / f"{name}.jsonl")
    for name in EXAMPLES:
        events = fixture_events(name)
        expected[name] = BROKEN[name](events)
        path = tmp / f"broken-{name}.json"
        path.write_text(json.dumps(events))
        files.append(path)
    events = events_from_fixtures(files, settings_for(tmp))
    slices: dict[str, list[ObservedEvent]] = {}
    i = 0
    for f in files:
        n = len(load_fixture_events(f))
        slices[f.stem] = events[i : i + n]
        i += n
    assert i == len(events)
    return slices, expected


def test_the_library_loads_clean_and_every_example_names_its_fixture():
    lib = load_location(INSTRUMENTS)
    assert lib.problems == []
    assert sorted(lib.names()) == sorted(EXAMPLES)
    for d in lib.definitions:
        assert d.fixture == INSTRUMENTS / "fixtures" / f"{d.name}.jsonl" and d.fixture.exists()
        assert d.expects and d.description


@pytest.mark.parametrize("name", EXAMPLES)
def test_each_example_passes_on_its_fixture_and_fails_on_a_broken_one(judged, name):
    slices, expected = judged
    definition = load_location(INSTRUMENTS).get(name)
    good = check_instrument(definition, slices[name])
    assert good.events == len(fixture_events(name))
    assert [(c.id, c.status) for c in good.checks if c.status != PASS] == []
    assert all(c.matched for c in good.checks)

    bad = check_instrument(definition, slices[f"broken-{name}"])
    check_id, reason, detail = expected[name]
    failing = [c for c in bad.checks if c.status != PASS]
    assert [c.id for c in failing] == [check_id], [c.reason for c in failing]
    c = failing[0]
    assert (
        c.status == FAIL
        and reason in c.reason
        and detail in " ".join([c.reason, *(d for i in c.issues for d in i.differs)])
    )
    ids = {e.id for e in slices[f"broken-{name}"]}
    assert c.event_id in ids  # the nearest event is one of the judged ones


def test_invalid_events_of_the_stream_fail_with_their_validation_errors(judged, tmp_path):
    slices, _ = judged
    definition = load_location(INSTRUMENTS).get("web-sticky-header-click")
    events = [copy.copy(e) for e in slices["web-sticky-header-click"]]
    # the last click, judged invalid by the real schema (a short session id)
    raw = fixture_events("web-sticky-header-click")[-1]
    raw["performer"]["session_id"] = "short"
    (tmp_path / "one.json").write_text(json.dumps(raw))
    (invalid,) = events_from_fixtures([tmp_path / "one.json"], settings_for(tmp_path))
    invalid.id = 1000
    result = check_instrument(definition, [*events, invalid])
    valid = check_of(result, "valid")
    assert valid.status == FAIL
    assert valid.reason.startswith("event 1000 was invalid: '.performer.session_id' should NOT")
    edit = check_of(result, "edit")
    assert edit.status == FAIL and "event 1000 was invalid" in edit.reason
    assert check_of(result, "history-or-talk").status == PASS


def test_not_seen_says_what_was_seen_instead(judged):
    slices, _ = judged
    data = {
        "name": "typo",
        "stream": "product_metrics.web_base",
        "match": {"instrument_name": "web-sticky-header-click"},
        "expects": [{"action": "clik"}, {"action": "click", "count": {"max": 3}}],
    }
    (definition,), problems = parse_data(data, Path("typo.yaml"))
    assert problems == []
    result = check_instrument(definition, slices["web-sticky-header-click"])
    clik = check_of(result, "clik")
    assert clik.status == NOT_SEEN
    assert clik.note == (
        "no 'clik' event among the 4 events of the instrument (actions seen: click); "
        "did you mean 'click'?"
    )
    click = check_of(result, "click")
    assert click.status == FAIL
    assert click.reason.startswith("4 matching events, expected at most 3 in total: events ")
    assert result.status == FAIL and result.counts() == {PASS: 1, FAIL: 1, NOT_SEEN: 1}


# --- definitions: errors with file, line and path; never an exception ---------------------


BAD_DEFINITION = """\
name: broken
stream: product_metrics.web_base
schema: {title: analytics/product_metrics/web/base, version: ">=one"}
experiment: {name: x-experiment, sampling_unit: browser}
expects:
  - action: click
    action_sorce: toolbar
    count: {min: 3, max: 1}
  - action: init
    values:
      page.title: {regex: "("}
      agent.client_platform: []
    after: clikc
  - id: click
    action: click
    funnel: {name: f, step: 0}
  - values: {}
"""


def test_a_bad_definition_lists_every_problem_with_line_and_path(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(BAD_DEFINITION)
    lib = load_file(path)
    assert lib.definitions == []
    got = [(p.line, p.path, p.message) for p in lib.problems]
    assert got == [
        (3, "schema.version", "'>=one' is not a version or a comparison such as '>=1.3.0' or '<2'"),
        (
            4,
            "experiment.sampling_unit",
            "must be one of mw-user, edge-unique, session, overridden, got 'browser'",
        ),
        (
            7,
            "expects[0].action_sorce",
            "unknown key in an expectation (did you mean 'action_source'?)",
        ),
        (8, "expects[0].count", "min 3 is more than max 1"),
        (
            11,
            "expects[1].values.page.title.regex",
            "not a regular expression: missing ), unterminated subpattern at position 0",
        ),
        (
            12,
            "expects[1].values.agent.client_platform",
            "an empty list matches nothing; list the allowed values",
        ),
        (16, "expects[2].funnel.step", "must be a whole number >= 1, got 0"),
        (17, "expects[3]", "action: missing (the action this interaction sends)"),
        (14, "expects[2].id", "id 'click' is used by another expectation"),
        (
            13,
            "expects[1].after",
            "no expectation with id 'clikc' (did you mean 'click'?); ids: click, click-2, init",
        ),
    ]
    assert str(lib.problems[0]).startswith(f"{path}:3: schema.version: ")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\nstream: [unclosed\n", "not YAML: "),
        ("- 1\n- 2\n", "an instrument definition is a mapping"),
        ("name: x\n", "stream: missing"),
        ("name: x\nstream: s\nexpects: {action: click}\n", "expects: must be a list"),
        ("name: x\nstream: s\nsample_rate: 2\n", "sample_rate: must be a rate from 0 to 1"),
        (
            "name: x\nstream: s\nexpects: [{action: click, count: {per: week, min: 1}}]\n",
            "must be one of total, session, pageview, device, funnel, subject, got 'week'",
        ),
        (
            "name: x\nstream: s\nexpects: [{action: click, after: {expect: click}}]\n",
            "an expectation cannot come after itself",
        ),
    ],
)
def test_definition_mistakes_are_problems_not_crashes(tmp_path, text, message):
    path = tmp_path / "d.yaml"
    path.write_text(text)
    lib = load_file(path)
    assert lib.definitions == [] and lib.problems
    assert any(message in str(p) for p in lib.problems), [str(p) for p in lib.problems]


def test_a_folder_reports_duplicate_names_and_unreadable_files(tmp_path):
    (tmp_path / "a.yaml").write_text("name: same\nstream: s\n")
    (tmp_path / "b.json").write_text('{"name": "same", "stream": "t"}')
    (tmp_path / "c.yml").write_bytes(b"\xff\xfe\x00binary")
    (tmp_path / "notes.md").write_text("not read")
    lib = load_location(tmp_path)
    assert lib.names() == ["same"]
    messages = [str(p) for p in lib.problems]
    assert any("b.json" in m and "'same' is also defined in" in m for m in messages)
    assert any("c.yml" in m and "cannot read" in m for m in messages)


def test_version_ranges():
    r = parse_version_range(">=1.2.0 <2")
    assert [r.contains(v) for v in ("1.1.9", "1.2.0", "1.3.0", "2.0.0", None)] == [
        False,
        True,
        True,
        False,
        False,
    ]
    assert parse_version_range("1.3").contains("1.3.7")
    assert not parse_version_range("1.3").contains("1.30.0")
    assert parse_version_range("1.3.0").contains("1.3.0")
    assert not parse_version_range("1.3.0").contains("1.3.1")
    assert parse_version_range("*").contains("9.9.9")


def test_names_resolve_in_the_library_and_unknown_ones_are_suggested():
    lib = resolve(["web-sticky-header-click", str(INSTRUMENTS / "android-screen-view.yaml")])
    assert lib.names() == ["web-sticky-header-click", "android-screen-view"]
    lib = resolve(["web-sticky-header-clik"], INSTRUMENTS)
    assert lib.definitions == []
    assert "(did you mean 'web-sticky-header-click'?)" in str(lib.problems[0])


async def test_the_library_also_serves_test_kitchens_instruments_api(make_server, http):
    server = await make_server(instruments=str(INSTRUMENTS))
    async with http.get(server.url + "/api/v1/instruments") as resp:
        rows = await resp.json()
    assert [r["name"] for r in rows] == sorted(EXAMPLES)
    click = next(r for r in rows if r["name"] == "web-sticky-header-click")
    assert click == {
        "name": "web-sticky-header-click",
        "start": "2026-01-05T00:00:00Z",
        "end": "2026-06-30T00:00:00Z",
        "sample_rate": {"default": 1},
        "stream_name": "product_metrics.web_base",
        "schema_title": "analytics/product_metrics/web/base",
        "contextual_attributes": [
            "page_id",
            "page_title",
            "page_namespace_id",
            "mediawiki_skin",
            "mediawiki_database",
            "performer_is_logged_in",
            "performer_session_id",
            "performer_pageview_id",
            "performer_edit_count_bucket",
        ],
        "sample_unit": "session",
    }


# --- mpsandbox check --------------------------------------------------------------------


def test_check_fixtures_text_and_exit_status(tmp_path):
    fixture = INSTRUMENTS / "fixtures" / "web-edit-attempt-funnel.jsonl"
    res = invoke("check", "web-edit-attempt-funnel", "--fixtures", fixture, *SCHEMA_ARGS)
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[0].startswith(
        "web-edit-attempt-funnel  pass  stream product_metrics.web_base, 6 events"
    )
    assert res.output.endswith("1 instrument, 6 checks: 6 passed, 0 failed, 0 not seen\n")

    events = fixture_events("web-edit-attempt-funnel")
    broken_funnel(events)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(e) + "\n" for e in events))
    res = invoke("check", "web-edit-attempt-funnel", "--fixtures", bad, *SCHEMA_ARGS)
    assert res.exit_code == 1
    assert "  FAIL      save-intent   save_intent [funnel edit_attempt step 3" in res.output
    assert "step 3 came before step 2 in funnel edit_attempt (token f4e3d2c1b0a9f8e7d6c5)" in (
        res.output
    )

    # an instrument with no events: not seen fails, unless allowed
    res = invoke("check", "android-screen-view", "--fixtures", fixture, *SCHEMA_ARGS)
    assert res.exit_code == 1 and "NOT SEEN" in res.output
    res = invoke(
        "check", "android-screen-view", "--fixtures", fixture, "--allow-not-seen", *SCHEMA_ARGS
    )
    assert res.exit_code == 0


def test_check_reads_a_har_saved_from_the_browser(tmp_path):
    """--fixtures takes every format import and replay read: here the funnel's events as
    sendBeacon POSTs in a HAR file, one request per event."""
    events = fixture_events("web-edit-attempt-funnel")
    entries = [
        {
            "request": {
                "method": "POST",
                "url": "http://localhost:8192/v1/events?hasty=true",
                "headers": [{"name": "Content-Type", "value": "text/plain;charset=UTF-8"}],
                "postData": {"mimeType": "text/plain;charset=UTF-8", "text": json.dumps([e])},
            },
            "response": {"status": 202},
            "startedDateTime": "2026-11-28T10:00:00.000Z",
        }
        for e in events
    ]
    har = tmp_path / "wiki.har"
    har.write_text(json.dumps({"log": {"version": "1.2", "entries": entries}}))
    res = invoke("check", "web-edit-attempt-funnel", "--fixtures", har, *SCHEMA_ARGS)
    assert res.exit_code == 0, res.output
    assert res.output.endswith("1 instrument, 6 checks: 6 passed, 0 failed, 0 not seen\n")


def test_check_json_and_junit_reports(tmp_path):
    events = fixture_events("web-sticky-header-click")
    broken_click(events)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(events))
    both = ["web-sticky-header-click", "web-article-page-impression"]
    res = invoke("check", *both, "--fixtures", bad, "--format", "json", *SCHEMA_ARGS)
    assert res.exit_code == 1
    report = json.loads(res.output)
    assert report["format"] == "mpsandbox-check/1"
    assert report["source"] == {"kind": "fixtures", "location": [str(bad)], "events": 4}
    assert report["summary"] == {
        "instruments": 2,
        "checks": 7,
        "pass": 3,
        "fail": 1,
        "not_seen": 3,
        "ok": False,
    }
    click = report["instruments"][0]
    assert (click["name"], click["status"], click["events"]) == (
        "web-sticky-header-click",
        "fail",
        4,
    )
    edit = next(c for c in click["checks"] if c["id"] == "edit")
    assert edit["status"] == "fail" and edit["matched"] == 0 and edit["line"] == 30
    assert edit["issues"][0]["rule"] == "identity"
    assert edit["issues"][0]["differs"] == ["action_source was 'menu', expected 'sticky_header'"]
    assert edit["event"] == edit["issues"][0]["event"] and isinstance(edit["event"], int)
    assert click["unmatched_actions"] == {"click": 2}

    out = tmp_path / "report.xml"
    res = invoke("check", *both, "--fixtures", bad, "--format", "junit", "-o", out, *SCHEMA_ARGS)
    assert res.exit_code == 1
    assert res.output.endswith("2 instruments, 7 checks: 3 passed, 1 failed, 3 not seen\n")
    root = ET.parse(out).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("7", "4", "0")
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == both
    cases = suites[0].findall("testcase")
    assert [c.get("name").split(":")[0] for c in cases] == [
        "valid",
        "schema",
        "edit",
        "history-or-talk",
    ]
    failure = cases[2].find("failure")
    assert failure.get("type") == "fail"
    assert "action_source was 'menu', expected 'sticky_header'" in failure.get("message")
    assert "nearest event: " in failure.text
    assert suites[1].find("testcase/failure").get("type") == "not_seen"
    invoke(
        "check",
        *both,
        "--fixtures",
        bad,
        "--format",
        "junit",
        "-o",
        out,
        "--allow-not-seen",
        *SCHEMA_ARGS,
    )
    root = ET.parse(out).getroot()
    assert (root.get("failures"), root.get("skipped")) == ("1", "3")


def test_check_refuses_bad_definitions_and_sources(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nstream: s\nexpects:\n  - acton: click\n")
    res = invoke("check", bad, "--db", tmp_path / "none.db")
    assert res.exit_code == 2
    assert f"{bad}:4: expects[0].acton: unknown key in an expectation (did you mean 'action'?)" in (
        res.output
    )
    res = invoke("check", "web-sticky-header-click", "--db", tmp_path / "none.db")
    assert res.exit_code == 2 and "none.db: no such database" in res.output
    res = invoke("check", "web-sticky-header-click", "--fixtures", tmp_path / "nope.jsonl")
    assert res.exit_code == 2 and "cannot read" in res.output
    (tmp_path / "empty").mkdir()
    res = invoke("check", "--instruments", tmp_path / "empty", "--db", tmp_path / "none.db")
    assert res.exit_code == 2 and "no instrument definitions in" in res.output
    res = invoke("check", "--db", "x", "--url", "http://127.0.0.1:1")
    assert res.exit_code == 2 and "give one source of events" in res.output
    res = invoke("check", "web-sticky-header-click", "--url", "http://127.0.0.1:9", "--since", "5q")
    assert res.exit_code == 2 and "--since: since: takes an ISO date" in res.output


async def post_events(http, url: str, events: list[dict]) -> None:
    async with http.post(url + "/v1/events", data=json.dumps(events)) as resp:
        assert resp.status in (201, 207, 400), await resp.text()


async def test_check_a_database_and_a_running_sandbox(make_server, http, tmp_path):
    server = await make_server()
    for name in ("web-sticky-header-click", "web-article-page-impression"):
        await post_events(http, server.url, fixture_events(name))
    extra = fixture_events("web-article-page-impression")[:1]  # a second impression
    await post_events(http, server.url, extra)
    db = str(server.sandbox.settings.db)
    args = ["web-sticky-header-click", "web-article-page-impression", "--format", "json"]

    async def run(*more):
        res = await asyncio.to_thread(invoke, "check", *args, *more)
        return res.exit_code, json.loads(res.output)

    code, from_db = await run("--db", db)
    assert code == 1
    assert from_db["source"] == {"kind": "db", "location": db, "events": 9}
    impression = from_db["instruments"][1]["checks"][2]
    assert impression["status"] == "fail" and impression["matched"] == 5
    assert impression["reason"].startswith(
        "pageview 9c8b7a6f5e4d3c2b1a09: 2 matching events, expected exactly 1 per pageview"
    )
    code, from_url = await run("--url", server.url)
    assert code == 1
    assert from_url["source"] == {"kind": "url", "location": server.url, "events": 9}
    assert from_url["instruments"] == from_db["instruments"]
    code, recent = await run("--db", db, "--since", "1h")
    assert recent["source"]["events"] == 9
    code, none = await run("--db", db, "--since", "2999-01-01")
    assert none["source"]["events"] == 0 and none["summary"]["not_seen"] == 7


# --- mpsandbox instrument new -------------------------------------------------------------


async def test_instrument_new_scaffolds_a_definition_that_passes(make_server, http, tmp_path):
    server = await make_server()
    for name in ("web-edit-attempt-funnel", "web-sticky-header-experiment"):
        await post_events(http, server.url, fixture_events(name))
    db = str(server.sandbox.settings.db)
    out = tmp_path / "defs"

    def new(*args):
        return invoke("instrument", "new", *args, "--db", db, "-o", out)

    res = await asyncio.to_thread(new, "edits", "instrument_name:web-edit-attempt-funnel")
    assert res.exit_code == 2 and 'unknown key "instrument_name:"' in res.output
    res = await asyncio.to_thread(new, "edits", '"web-edit-attempt-funnel"')
    assert res.exit_code == 0, res.output
    assert res.output.startswith(f"wrote {out / 'edits.yaml'}: 4 expectations from 6 events")
    lib = load_file(out / "edits.yaml")
    assert lib.problems == []
    (d,) = lib.definitions
    assert d.stream == "product_metrics.web_base"
    assert d.schema.describe() == "analytics/product_metrics/web/base >=1.3.0"
    assert [(x.id, x.funnel.step) for x in d.expects] == [
        ("edit-attempt-step-1", 1),
        ("edit-attempt-step-2", 2),
        ("edit-attempt-step-3", 3),
        ("edit-attempt-step-4", 4),
    ]
    text = (out / "edits.yaml").read_text()
    assert "match:\n  instrument_name: web-edit-attempt-funnel\n" in text
    assert "# Test Kitchen's fields" in text

    res = await asyncio.to_thread(new, "edits", '"web-edit-attempt-funnel"')
    assert res.exit_code == 2 and "exists" in res.output

    res = await asyncio.to_thread(new, "sticky", "schema:mpsandbox/example/web_experiment")
    assert res.exit_code == 0, res.output
    (d,) = load_file(out / "sticky.yaml").definitions
    assert d.experiment.name == "sticky-header-edit-button"
    assert d.experiment.groups == ("control", "treatment")
    exposure, click = d.expects
    assert exposure.action.value == "experiment_exposure" and exposure.count.max == 1
    assert click.after.expect == exposure.id and click.after.per == "subject"
    assert dict(click.fields)["action_source"].value == ("sticky_header", "toolbar")

    for name in ("edits", "sticky"):
        res = await asyncio.to_thread(
            invoke, "check", out / f"{name}.yaml", "--db", db, "--format", "json"
        )
        assert res.exit_code == 0, res.output
        assert json.loads(res.output)["summary"]["fail"] == 0

    res = await asyncio.to_thread(new, "nothing", "stream:nope")
    assert res.exit_code == 2 and "no captured events match 'stream:nope'" in res.output


def test_the_readme_example_is_a_valid_definition(tmp_path):
    text = (INSTRUMENTS / "README.md").read_text()
    example = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "example.yaml").write_text(example)
    lib = load_file(tmp_path / "example.yaml")
    assert lib.problems == []
    (d,) = lib.definitions
    assert [x.id for x in d.expects] == ["edit", "step-2", "exposure", "conversion"]
    assert d.testkitchen_row()["sample_rate"] == {"default": 1, "0.5": ["bnwiki"]}
