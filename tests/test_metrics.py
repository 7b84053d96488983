"""Metric previews: definitions, counts, Wilson intervals, grouping, the CLI and the screen.

The store is built once, through the real pipeline: a real intake on 127.0.0.1 judges
events built from the real web/base and app/base schemas (and a legacy app schema with
``app_session_id``), plus Test Kitchen-style experiment events. Those carry an
``experiment`` block, which clients send with web/base 2.1.0; the public mirror stops at
1.3.0, so a stand-in 2.1.0 is written from the real 1.3.0 and the sandbox's experiment
fragment (exactly what ``mpsandbox schema new --fragment mpsandbox/experiment`` makes).

Every expected number below is counted by hand from the lists in ``_requests`` and written
down as a constant; the intervals are the Wilson formula worked on paper (z = 1.959964),
rounded to 4 places.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
import yaml
from click.testing import CliRunner

from mpsandbox.cli import main
from mpsandbox.metrics import (
    compute_all,
    compute_stored,
    load_definitions,
    parse_by,
    parse_metric,
    ratio,
    wilson_interval,
)
from mpsandbox.metrics.definitions import default_metric_dirs
from mpsandbox.platform.experiments import subject_id
from mpsandbox.store import StoreReader, StoreWriter, apply_retention, codec, connect
from tests.conftest import PRIMARY, SECONDARY, settings_for

ROOT = Path(__file__).resolve().parents[1]
WEB = "product_metrics.web_base"
APP = "product_metrics.app_base"
EXP = "product_metrics.experiments"
LATE = "product_metrics.late"
STICKY = "sticky-header-test"
BANNER = "everyone-banner-test"


# -- the hand-computed fixture -------------------------------------------------------------


def sid(prefix: str, n: int) -> str:
    """A 20-character id of the schemas' ^[0-9a-z]{20}$ form."""
    return f"{prefix}{n:0{20 - len(prefix)}d}"


def web(action, session=None, pageview=None, stream=WEB, schema="1.3.0", **extra) -> dict:
    performer: dict = {"is_logged_in": False}
    if session:
        performer["session_id"] = session
    if pageview:
        performer["pageview_id"] = pageview
    event = {
        "$schema": f"/analytics/product_metrics/web/base/{schema}",
        "meta": {"stream": stream, "domain": "en.wikipedia.org"},
        "dt": "2024-10-01T12:00:00.000Z",
        "action": action,
        "agent": {"client_platform": "mediawiki_js", "client_platform_family": "desktop_browser"},
        "performer": performer,
    }
    event.update(extra)
    return event


def app(action, session) -> dict:
    return {
        "$schema": "/analytics/product_metrics/app/base/1.3.0",
        "meta": {"stream": APP, "domain": "en.wikipedia.org"},
        "dt": "2024-10-01T12:00:00Z",
        "action": action,
        "agent": {
            "client_platform": "android",
            "client_platform_family": "app",
            "app_install_id": "33333333-3333-4333-8333-333333333333",
        },
        "performer": {"is_logged_in": False, "session_id": session},
    }


def legacy_app(app_session, text) -> dict:
    """The EPC apps' legacy identifiers: the session is the top-level app_session_id."""
    return {
        "$schema": "/analytics/test/1.1.0",
        "meta": {"stream": "analytics.test", "domain": "en.wikipedia.org"},
        "client_dt": "2024-10-01T12:00:00Z",
        "app_session_id": app_session,
        "test_string": text,
    }


def exposure_or_click(action, experiment, group, *, user=None, session, valid=True) -> dict:
    block = {
        "enrolled": experiment,
        "assigned": group,
        "subject_id": subject_id(user, experiment) if user is not None else "awaiting",
        "sampling_unit": "mw-user" if user is not None else "edge-unique",
        "coordinator": "default" if valid else "x",  # "x" breaks the enum: invalid
    }
    return web(action, session, stream=EXP, schema="2.1.0", experiment=block)


# Web (product_metrics.web_base), per session i:
#   sessions 1-20 each start the instrument (init) on their own pageview P(i);
#   sessions 1-7 click: 1 clicks three times, 2 clicks on another pageview Q(2) (no init);
#   sessions 1-4 save an edit (save_success), and 9 saves one without having clicked;
#   session 8 sends a click that is invalid (action_source must be a string);
#   session 21 clicks without an init; one init carries no performer ids at all.
CLICKERS = range(1, 8)
SAVERS = [1, 2, 3, 4, 9]
# App (product_metrics.app_base, app/base 1.3.0): sessions A1-A3 init, A1 and A2 click.
# Legacy app events (analytics/test): app session L1 twice (one says "tapped"), L2 once.
# Experiment sticky-header-test (mw-user, subject = sha256 of user id + name):
#   control: users 101-110 exposed, 101-103 click; user 111's exposure is invalid;
#   treatment: users 201-212 exposed (201 in two sessions), 201-206 click;
#   user 299 (treatment) clicks without an exposure.
# Experiment everyone-banner-test (edge-unique, subject_id "awaiting"): sessions E1-E3
#   exposed in group b, E1 clicks.
# Late (product_metrics.late, posted after T_MID): sessions Z1, Z2 init, Z1 clicks.


def _requests() -> list[list[dict]]:
    out: list[list[dict]] = []
    for i in range(1, 21):
        s, p = sid("s", i), sid("p", i)
        batch = [web("init", s, p)]
        if i in CLICKERS:
            clicks = 3 if i == 1 else 1
            batch += [web("click", s, sid("q", i) if i == 2 else p) for _ in range(clicks)]
        if i in SAVERS:
            batch.append(web("save_success", s, p))
        if i == 8:
            batch.append(web("click", s, p, action_source=42))
        out.append(batch)
    out.append([web("click", sid("s", 21), sid("p", 21))])
    out.append([web("init")])
    out.append([app("init", sid("a", i)) for i in (1, 2, 3)] + [app("click", sid("a", 1))])
    out.append([app("click", sid("a", 2))])
    out.append(
        [
            legacy_app(sid("l", 1), "opened"),
            legacy_app(sid("l", 1), "tapped"),
            legacy_app(sid("l", 2), "opened"),
        ]
    )
    for user in range(101, 111):
        batch = [exposure_or_click("experiment_exposure", STICKY, "control", user=user,
                                   session=sid("c", user))]  # fmt: skip
        if user <= 103:
            batch.append(
                exposure_or_click("click", STICKY, "control", user=user, session=sid("c", user))
            )
        out.append(batch)
    out.append([exposure_or_click("experiment_exposure", STICKY, "control", user=111,
                                  session=sid("c", 111), valid=False)])  # fmt: skip
    for user in range(201, 213):
        session = sid("t", user)
        batch = [exposure_or_click("experiment_exposure", STICKY, "treatment", user=user,
                                   session=session)]  # fmt: skip
        if user == 201:
            batch.append(exposure_or_click("experiment_exposure", STICKY, "treatment",
                                           user=user, session=sid("u", user)))  # fmt: skip
        if user <= 206:
            batch.append(
                exposure_or_click("click", STICKY, "treatment", user=user, session=session)
            )
        out.append(batch)
    out.append([exposure_or_click("click", STICKY, "treatment", user=299, session=sid("t", 299))])
    for i in (1, 2, 3):
        batch = [exposure_or_click("experiment_exposure", BANNER, "b", session=sid("e", i))]
        if i == 1:
            batch.append(exposure_or_click("click", BANNER, "b", session=sid("e", i)))
        out.append(batch)
    return out


LATE_REQUESTS = [[web("init", sid("z", 1), stream=LATE), web("click", sid("z", 1), stream=LATE)],
                 [web("init", sid("z", 2), stream=LATE)]]  # fmt: skip

TEST_METRICS = """\
- name: session_ctr
  description: Sessions with a click, of the sessions that started the instrument
  unit: session
  where: stream:product_metrics.web_base
  denominator: action:init
  numerator: action:click
- name: session_ctr_all_verdicts
  unit: session
  where: stream:product_metrics.web_base
  denominator: action:init
  numerator: action:click
  valid_only: false
- name: click_share
  unit: event
  denominator: stream:product_metrics.web_base
  numerator: action:click
- name: init_to_click
  unit: session
  denominator: action:init
  numerator: action:click
  by: stream
- name: sticky_sessions
  unit: session
  experiment: sticky-header-test
  denominator: action:experiment_exposure
  numerator: action:click
  by: experiment.assigned
- name: legacy_app_sessions
  unit: session
  denominator: schema:analytics/test
  numerator: tapped
- name: late_ctr
  unit: session
  where: stream:product_metrics.late
  denominator: action:init
  numerator: action:click
"""


def _standin_web_base_2_1_0(root: Path) -> Path:
    base = yaml.safe_load((SECONDARY / "analytics/product_metrics/web/base/1.3.0.yaml").read_text())
    fragment = yaml.safe_load(
        (ROOT / "schemas/jsonschema/fragment/mpsandbox/experiment/1.0.0.yaml").read_text()
    )
    base["$id"] = "/analytics/product_metrics/web/base/2.1.0"
    base["properties"]["experiment"] = fragment["properties"]["experiment"]
    base.pop("examples", None)
    folder = root / "analytics/product_metrics/web/base"
    folder.mkdir(parents=True)
    (folder / "2.1.0.yaml").write_text(yaml.safe_dump(base))
    return root


async def _post_all(url: str, requests: list[list[dict]]) -> None:
    async with aiohttp.ClientSession() as http:
        for body in requests:
            async with http.post(url, data=json.dumps(body)) as resp:
                assert resp.status in (201, 207, 400), (resp.status, resp.reason)


async def _build(tmp: Path) -> tuple[Path, float]:
    from mpsandbox.intake.server import start_server

    schemas = _standin_web_base_2_1_0(tmp / "standin")
    settings = settings_for(tmp, schema_dirs=(schemas, SECONDARY, PRIMARY))
    server = await start_server(settings)
    try:
        await _post_all(server.url + "/v1/events", _requests())
        t_mid = time.time()
        await asyncio.sleep(0.05)
        await _post_all(server.url + "/v1/events", LATE_REQUESTS)
    finally:
        await server.stop()
    return settings.db, t_mid


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[Path, float]:
    return asyncio.run(_build(tmp_path_factory.mktemp("metrics")))


@pytest.fixture(scope="module")
def test_metrics_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("metric-defs")
    (folder / "tests.yaml").write_text(TEST_METRICS)
    return folder


def results_for(db: Path, locations, **options) -> dict:
    definitions = load_definitions(locations)
    assert not definitions.errors, [str(e) for e in definitions.errors]
    with StoreReader(db) as reader:
        return {r.metric.name: r for r in compute_stored(reader, definitions.metrics, **options)}


def close(r, numerator, denominator, rate, low, high):
    assert (r.numerator, r.denominator) == (numerator, denominator)
    assert r.rate == pytest.approx(rate, abs=5e-5)
    assert r.low == pytest.approx(low, abs=5e-5)
    assert r.high == pytest.approx(high, abs=5e-5)


# -- Wilson ------------------------------------------------------------------------------------


def test_wilson_matches_hand_computation():
    # 7 of 20: p = .35, z²/n = .192072, centre = (.35 + .096036)/1.192072 = .374169,
    # half = 1.959964·sqrt(.011375 + .002401)/1.192072 = .192979 -> [.1812, .5671].
    close(ratio(7, 20), 7, 20, 0.35, 0.1812, 0.5671)
    # 3 of 10: centre .355509, half .247718 -> [.1078, .6032]
    close(ratio(3, 10), 3, 10, 0.3, 0.1078, 0.6032)
    # 6 of 12: symmetric about .5, half .246206 -> [.2538, .7462]
    close(ratio(6, 12), 6, 12, 0.5, 0.2538, 0.7462)


def test_wilson_edges():
    empty = ratio(0, 0)
    assert empty.rate is None and empty.low is None and empty.high is None
    assert wilson_interval(0, 0) is None
    # 0 of 10: the lower bound is exactly 0; upper z²/n/(1+z²/n) = .384146/1.384146
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=5e-5)
    # 10 of 10 mirrors it, with the upper bound exactly 1
    low, high = wilson_interval(10, 10)
    assert high == 1.0 and low == pytest.approx(0.7225, abs=5e-5)
    # 1 of 1: [z-free lower bound 1/(1+z²) = .2065, 1]
    assert wilson_interval(1, 1) == (pytest.approx(0.2065, abs=5e-5), 1.0)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


# -- definitions ---------------------------------------------------------------------------


def test_the_shipped_examples_load():
    [folder] = default_metric_dirs()
    assert folder == ROOT / "metrics" and (folder / "README.md").is_file()
    loaded = load_definitions([folder])
    assert not loaded.errors, [str(e) for e in loaded.errors]
    kinds = {m.name: (m.kind, m.unit) for m in loaded.metrics}
    assert kinds == {
        "click_through_rate": ("ratio", "pageview"),
        "funnel_conversion": ("funnel", "session"),
        "experiment_conversion": ("ratio", "subject"),
    }


def test_loading_errors_name_the_file_and_field_and_keep_the_rest(tmp_path):
    (tmp_path / "good.yaml").write_text("name: ok\nunit: session\nnumerator: a\ndenominator: b\n")
    (tmp_path / "typo.yaml").write_text(
        "name: typo\nunit: session\nnumerater: action:click\ndenominator: action:init\n"
    )
    (tmp_path / "query.yaml").write_text(
        "name: badq\nunit: event\nnumerator: acton:click\ndenominator: is:valid\n"
    )
    (tmp_path / "list.yaml").write_text(
        "- name: fine\n  unit: pageview\n  numerator: x\n  denominator: y\n"
        "- name: noun\n  unit: visits\n  numerator: x\n  denominator: y\n"
        "- name: funnel\n  unit: event\n  steps: [action:a, action:b]\n"
    )
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    (tmp_path / "by.yaml").write_text(
        "name: byx\nunit: session\nnumerator: x\ndenominator: y\nby: 'a b'\n"
    )
    (tmp_path / "notes.txt").write_text("not a definition")
    loaded = load_definitions([tmp_path, tmp_path / "missing"])
    assert [m.name for m in loaded.metrics] == ["ok", "fine"]
    errors = {(Path(e.file).name, e.metric, e.field): e.message for e in loaded.errors}
    assert len(errors) == len(loaded.errors) == 7
    assert 'did you mean "numerator"' in errors["typo.yaml", "typo", "numerater"]
    assert 'unknown key "acton:"' in errors["query.yaml", "badq", "numerator"]
    assert "one of event, pageview" in errors["list.yaml", "noun", "unit"]
    assert "not event" in errors["list.yaml", "funnel", "unit"]
    assert "not valid YAML (line 2, column 1)" in errors["broken.yaml", None, None]
    assert "not a field path" in errors["by.yaml", "byx", "by"]
    assert "does not exist" in errors["missing", None, None]
    assert str(loaded.errors[0]).startswith(str(tmp_path / "broken.yaml") + ": is not valid")


def test_a_later_location_redefines_a_metric(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a/m.yaml").write_text("name: m\nunit: event\nnumerator: x\ndenominator: y\n")
    (tmp_path / "b/m.yaml").write_text("name: m\nunit: session\nnumerator: x\ndenominator: y\n")
    loaded = load_definitions([tmp_path / "a", tmp_path / "b"])
    assert [(m.name, m.unit) for m in loaded.metrics] == [("m", "session")]
    (tmp_path / "a/n.yaml").write_text("name: m\nunit: event\nnumerator: x\ndenominator: y\n")
    twice = load_definitions([tmp_path / "a"])
    assert [str(e) for e in twice.errors] == [
        f"{tmp_path / 'a/n.yaml'}: m: name: defined twice: also in {tmp_path / 'a/m.yaml'}"
    ]


def test_group_fields_use_indexed_columns_or_json():
    stream, assigned = parse_by("stream, experiment.assigned")
    assert stream.sql() == ("stream", [])
    assert assigned.sql() == (
        "CASE WHEN instr(unpack_text(event), ?) THEN json_extract(unpack_text(event), ?) END",
        ['"assigned"', '$."experiment"."assigned"'],
    )
    assert parse_by("none") == ()
    with pytest.raises(ValueError):
        parse_by("a,b,c,d")


# -- counts over the store -------------------------------------------------------------------


def test_session_click_through_rate_matches_the_hand_count(store, test_metrics_dir):
    db, _ = store
    r = results_for(db, [test_metrics_dir])
    ctr = r["session_ctr"].total
    # 7 of the 20 init sessions clicked (session 1's three clicks count once)
    close(ctr.ratio, 7, 20, 0.35, 0.1812, 0.5671)
    assert ctr.outside == 1  # session 21 clicked without an init
    assert ctr.without_unit == 1  # the init without performer ids
    assert r["session_ctr"].not_valid == 1  # session 8's invalid click is left out
    # Counting every verdict, session 8's invalid click makes it 8 of 20 (.4 [.2188, .6134])
    close(r["session_ctr_all_verdicts"].total.ratio, 8, 20, 0.4, 0.2188, 0.6134)
    # unit event: 10 valid clicks among the 36 valid web events
    # (21 inits + 10 clicks + 5 saves; the invalid click is left out), and outside the
    # web stream 14 clicks: app 2, sticky control 3 + treatment 6 + user 299, banner 1, late 1
    share = r["click_share"].total
    assert (share.ratio.numerator, share.ratio.denominator, share.outside) == (10, 36, 14)


def test_the_shipped_examples_over_the_fixture(store):
    db, _ = store
    r = results_for(db, default_metric_dirs())
    ctr = r["click_through_rate"].total
    # pageviews: 20 with an init, 6 of them clicked (session 2 clicked on Q(2), which had
    # no init, and so did session 21 on P(21)): 6/20 = .3 [.1455, .5190]
    close(ctr.ratio, 6, 20, 0.3, 0.1455, 0.5190)
    assert (ctr.outside, ctr.without_unit) == (2, 1)

    funnel = r["funnel_conversion"].total
    started, clicked, saved = funnel.steps
    assert [s.reached for s in funnel.steps] == [20, 7, 4]
    assert (clicked.skipped, saved.skipped) == (1, 1)  # session 21; session 9
    close(started.from_first, 20, 20, 1.0, 0.8389, 1.0)
    close(clicked.from_first, 7, 20, 0.35, 0.1812, 0.5671)
    # 4 of 20 = .2 [.0807, .4160]; 4 of 7 = .5714 [.2505, .8418]
    close(saved.from_first, 4, 20, 0.2, 0.0807, 0.4160)
    close(saved.from_previous, 4, 7, 0.5714, 0.2505, 0.8418)

    exp = r["experiment_conversion"]
    assert [f.path for f in exp.by] == ["experiment.enrolled", "experiment.assigned"]
    groups = {g.group: g for g in exp.groups}
    assert list(groups) == [(BANNER, "b"), (STICKY, "control"), (STICKY, "treatment")]
    # edge-unique: "awaiting" is no subject, so each session is one: 1 of 3
    assert (groups[BANNER, "b"].ratio.numerator, groups[BANNER, "b"].ratio.denominator) == (1, 3)
    close(groups[STICKY, "control"].ratio, 3, 10, 0.3, 0.1078, 0.6032)
    # user 201's two exposures are one subject: 6 of 12; user 299 is outside
    close(groups[STICKY, "treatment"].ratio, 6, 12, 0.5, 0.2538, 0.7462)
    assert groups[STICKY, "treatment"].outside == 1
    assert exp.not_valid == 1  # user 111's exposure
    total = exp.total.ratio
    assert (total.numerator, total.denominator) == (10, 25)


def test_grouping_by_stream_and_experiment_group(store, test_metrics_dir):
    db, _ = store
    r = results_for(db, [test_metrics_dir])
    groups = {g.group: g.ratio for g in r["init_to_click"].groups}
    assert (groups[(APP,)].numerator, groups[(APP,)].denominator) == (2, 3)
    assert (groups[(WEB,)].numerator, groups[(WEB,)].denominator) == (7, 20)
    assert (groups[(LATE,)].numerator, groups[(LATE,)].denominator) == (1, 2)
    total = r["init_to_click"].total.ratio
    assert (total.numerator, total.denominator) == (10, 25)
    # by session, user 201's second session counts: treatment 6 of 13
    sticky = {g.group: g.ratio for g in r["sticky_sessions"].groups}
    assert (sticky[("control",)].numerator, sticky[("control",)].denominator) == (3, 10)
    assert (sticky[("treatment",)].numerator, sticky[("treatment",)].denominator) == (6, 13)
    # --by replaces a metric's own grouping; () is none
    regrouped = results_for(db, [test_metrics_dir], by=parse_by("agent.client_platform"))
    platforms = {g.group for g in regrouped["init_to_click"].groups}
    assert platforms == {("android",), ("mediawiki_js",)}
    assert results_for(db, [test_metrics_dir], by=())["init_to_click"].groups == []
    # unit event grouped by a JSON field: the web events carry no experiment block; the
    # experiments' clicks form groups of their own, outside the (empty) denominator
    by_group = results_for(db, [test_metrics_dir], by=parse_by("experiment.assigned"))
    share = {g.group: g for g in by_group["click_share"].groups}
    assert list(share) == [("b",), ("control",), ("treatment",), (None,)]
    assert (share[None,].ratio.numerator, share[None,].ratio.denominator) == (10, 36)
    control = share["control",]
    assert (control.ratio.numerator, control.ratio.denominator, control.outside) == (0, 0, 3)


def test_app_sessions_count_the_legacy_app_session_id(store, test_metrics_dir):
    db, _ = store
    legacy = results_for(db, [test_metrics_dir])["legacy_app_sessions"].total
    assert (legacy.ratio.numerator, legacy.ratio.denominator, legacy.without_unit) == (1, 2, 0)


def test_time_window(store, test_metrics_dir):
    from mpsandbox.query import parse_query

    db, t_mid = store
    since = parse_query(f"since:{datetime.fromtimestamp(t_mid, UTC).isoformat()}")
    after = results_for(db, [test_metrics_dir], window=since)
    assert after["late_ctr"].total.ratio.denominator == 2
    assert after["session_ctr"].total.ratio.denominator == 0
    assert after["session_ctr"].total.ratio.rate is None


# -- the CLI -----------------------------------------------------------------------------------


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_cli_text_and_json(store, test_metrics_dir):
    db, t_mid = store
    res = run("metrics", "session_ctr", "init_to_click", "--db", str(db),
              "--metrics", str(test_metrics_dir))  # fmt: skip
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].startswith("session_ctr: Sessions with a click")
    assert "(all)          7           20  35.0%  [18.1%, 56.7%]" in res.output
    assert "1 session matched the numerator without a denominator event" in res.output
    assert "1 matching event was not valid and is left out" in res.output
    assert any(line.split()[:3] == [APP, "2", "3"] for line in lines)

    res = run("metrics", "late_ctr", "--db", str(db), "--metrics", str(test_metrics_dir),
              "--format", "json", "--by", "stream",
              "--since", datetime.fromtimestamp(t_mid, UTC).isoformat())  # fmt: skip
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["version"] == 1 and doc["by"] == ["stream"] and doc["errors"] == []
    [metric] = doc["metrics"]
    assert metric["name"] == "late_ctr" and metric["unit"] == "session"
    assert metric["total"]["numerator"] == 1 and metric["total"]["denominator"] == 2
    assert metric["total"]["interval"] == [pytest.approx(0.0945, abs=5e-5),
                                           pytest.approx(0.9055, abs=5e-5)]  # fmt: skip
    assert metric["groups"] == [
        {"group": {"stream": LATE}, "label": LATE, **{k: metric["total"][k] for k in
         ("numerator", "denominator", "rate", "interval", "outside", "without_unit")}}
    ]  # fmt: skip

    until = run("metrics", "late_ctr", "--db", str(db), "--metrics", str(test_metrics_dir),
                "--until", datetime.fromtimestamp(t_mid, UTC).isoformat())  # fmt: skip
    assert "(all)          0            0     —  —" in until.output


def test_cli_funnel_json_shape(store):
    db, _ = store
    res = run("metrics", "funnel_conversion", "--db", str(db), "--format", "json")
    doc = json.loads(res.output)
    [metric] = doc["metrics"]
    assert metric["kind"] == "funnel" and [s["name"] for s in metric["steps"]] == [
        "started",
        "clicked",
        "saved",
    ]
    steps = metric["total"]["steps"]
    assert [s["reached"] for s in steps] == [20, 7, 4]
    assert steps[2]["from_previous"]["numerator"] == 4
    assert steps[2]["from_previous"]["denominator"] == 7


def test_cli_problems(store, tmp_path):
    db, _ = store
    unknown = run("metrics", "nope", "--db", str(db))
    assert unknown.exit_code == 2 and "no metric named nope" in unknown.output
    missing = run("metrics", "--db", str(tmp_path / "none.db"))
    assert missing.exit_code == 2 and "no database" in missing.output
    bad_by = run("metrics", "--db", str(db), "--by", "a b")
    assert bad_by.exit_code == 2 and "--by" in bad_by.output
    (tmp_path / "bad.yaml").write_text("name: bad\nunit: session\nnumerator: x\n")
    res = run("metrics", "--db", str(db), "--metrics", str(tmp_path))
    assert res.exit_code == 1
    assert "bad.yaml: bad: denominator: required" in res.output
    assert "click_through_rate" in res.output  # the others are still computed


def test_parse_metric_rejects_numerator_with_steps():
    with pytest.raises(ValueError, match="numerator"):
        parse_metric(
            {"name": "x", "unit": "session", "steps": ["a", "b"], "numerator": "c"}, "f.yaml"
        )


def test_compute_all_on_a_connection_of_its_own(store, test_metrics_dir):
    # Not a reader's: any connection the store opened (it unpacks the packed event JSON).
    import contextlib

    from mpsandbox.store import connect

    db, _ = store
    definitions = load_definitions([test_metrics_dir])
    with contextlib.closing(connect(db, readonly=True)) as conn:
        results = compute_all(conn, definitions.metrics)
    assert [r.error for r in results] == [None] * len(results)


# -- what the metrics read ---------------------------------------------------------------------


def _plan(db: Path, metric) -> str:
    from mpsandbox.metrics.compute import _statement

    sql, params = _statement(metric, tuple(metric.by), None, time.time())
    with StoreReader(db) as reader, reader.snapshot() as conn:
        return " | ".join(r[-1] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params))


def test_the_examples_read_indexes_not_every_event(store):
    """At a million events, reading each counted event's row took seconds: the click and
    funnel metrics read the covering action index alone, the experiment metric opens only
    the events that mention an experiment."""
    db, _ = store
    metrics = {m.name: m for m in load_definitions(default_metric_dirs()).metrics}
    for name in ("click_through_rate", "funnel_conversion"):
        plan = _plan(db, metrics[name])
        assert "SEARCH events USING COVERING INDEX events_action (action=?)" in plan, plan
    plan = _plan(db, metrics["experiment_conversion"])
    assert "ROWID SEARCH ON TABLE event_experiments" in plan, plan


def _experiment_events(db: Path) -> tuple[set[int], set[int]]:
    conn = sqlite3.connect(db)
    codec.register(conn)
    try:
        listed = {r[0] for r in conn.execute("SELECT event_id FROM event_experiments")}
        mention = {
            r[0]
            for r in conn.execute(
                "SELECT id FROM events WHERE instr(unpack_text(event), '\"experiment\"')"
            )
        }
    finally:
        conn.close()
    return listed, mention


def _copy(db: Path, to: Path) -> Path:
    """A copy with what the WAL holds beside it."""
    for suffix in ("", "-wal"):
        if Path(f"{db}{suffix}").exists():
            shutil.copy(f"{db}{suffix}", f"{to}{suffix}")
    return to


def test_the_migration_builds_what_the_metrics_read_and_results_hold(store, tmp_path):
    db, _ = store
    copy = _copy(db, tmp_path / "old.db")
    conn = sqlite3.connect(copy)
    conn.executescript(
        "DROP TABLE event_text; DROP TABLE event_text_state; DROP TABLE event_experiments;"
        " DROP INDEX events_action; CREATE INDEX events_action ON events(action, id);"
        " DELETE FROM _migrations WHERE name = '0011_event_text_index';"
    )
    conn.close()
    connect(copy).close()  # migrates
    listed, mention = _experiment_events(copy)
    assert listed == mention != set()
    before = results_for(db, default_metric_dirs())
    after = results_for(copy, default_metric_dirs())
    for name, r in before.items():
        assert (after[name].total, after[name].groups) == (r.total, r.groups), name


def test_retention_and_reset_keep_the_experiment_events_in_step(store, tmp_path):
    db, _ = store
    copy = _copy(db, tmp_path / "kept.db")
    conn = connect(copy)
    try:
        total = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        apply_retention(conn, max_events=total // 2)
    finally:
        conn.close()
    listed, mention = _experiment_events(copy)
    assert listed == mention != set()
    with StoreWriter(copy) as writer:
        writer.reset().result(30)
    assert _experiment_events(copy) == (set(), set())
