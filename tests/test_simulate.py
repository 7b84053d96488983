"""The simulator: its decisions match the derived vectors, its traffic is clean without
--bugs, and with --bugs each labelled bug is found exactly once (real pipeline, real
schemas, real SQLite; a real server for --to)."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path

from click.testing import CliRunner

from conftest import PRIMARY, ROOT, SECONDARY, WM, settings_for
from mpsandbox.platform.experiments import parse_experiments
from mpsandbox.simulate import DEMO_EXPERIMENTS, DEMO_STREAMS, decide
from mpsandbox.simulate.bugs import BUG_KINDS, injected_bug
from mpsandbox.simulate.producers import PRODUCERS, Batch, Item
from mpsandbox.simulate.run import SimOptions, make_planner, simulate
from mpsandbox.simulate.world import AppDevice, format_dt, hex20
from mpsandbox.store import connect

DERIVED = WM / "derived"
INSTRUMENTS = ROOT / "instruments"
USERS = 40
SEED = 7


def planner(*, bugs: bool, seed: int = SEED):
    return make_planner(
        instruments=INSTRUMENTS,
        stream_config=str(DEMO_STREAMS),
        experiments_file=str(DEMO_EXPERIMENTS),
        seed=seed,
        bugs=bugs,
    )


def local_settings(tmp_path: Path, name: str):
    return settings_for(
        tmp_path,
        db=tmp_path / f"{name}.db",
        stream_config=str(DEMO_STREAMS),
        experiments_file=str(DEMO_EXPERIMENTS),
    )


def run_local(tmp_path: Path, name: str, *, bugs: bool):
    settings = local_settings(tmp_path, name)
    result = simulate(
        planner(bugs=bugs), settings=settings, options=SimOptions(users=USERS, seed=SEED)
    )
    return result, settings.db


def rows(db: Path, sql: str, *args) -> list[tuple]:
    conn = connect(db, readonly=True)  # with unpack_text for the packed event JSON
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


# --- decisions ----------------------------------------------------------------------------


def test_sampling_decisions_match_the_derived_vectors():
    vectors = json.loads((DERIVED / "sampling_vectors.json").read_text())["vectors"]
    checked = 0
    for v in vectors:
        for rate_text, expected in v["in_sample"].items():
            rate = float(rate_text)
            for unit in ("session", "pageview"):
                sample = {"unit": unit, "rate": rate}
                assert decide.in_sample(v["id"], sample, "web") is expected, (v["id"], rate)
                # Java/Android: rate 1 is in and 0 out before computing; else the same
                app = True if rate == 1.0 else False if rate == 0.0 else expected
                assert decide.in_sample(v["id"], sample, "app") is app, (v["id"], rate)
                checked += 1
    assert checked >= 40
    # JS drops the device unit; the apps sample by it
    assert decide.in_sample("00000000aaaaaaaaaaaa", {"unit": "device", "rate": 0.5}, "web") is False
    assert decide.in_sample(
        "00000000-aaaa-4aaa-8aaa-aaaaaaaaaaaa", {"unit": "device", "rate": 0.5}, "app"
    )
    assert decide.in_sample("ffffffffffffffffffff", None, "web") is True


def test_enrollment_decisions_match_the_derived_vectors():
    data = json.loads((DERIVED / "experiment_assignment_vectors.json").read_text())
    for v in data["get_user_hash_vectors"]:
        [experiment] = parse_experiments(
            [
                {
                    "name": f"{v['experiment']}-experiment-x",
                    "groups": v["example_groups"],
                    "sample_rate": v["example_rate"],
                }
            ]
        ).values()
        # the vectors' experiment names are short ("dog"): compute with the real name
        experiment = dataclasses.replace(experiment, name=v["experiment"])
        enrolled, group, subject = decide.mw_user_enrollment(v["identifier"], experiment)
        assert subject == v["subject_id"]
        assert enrolled is v["example_sampled"]
        assert group == (v["example_bucket"] if v["example_sampled"] else None)


def test_ids_dt_and_bodies_are_shaped_like_each_producer():
    import random

    rng = random.Random(1)
    assert all(len(hex20(rng)) == 20 and hex20(rng).islower() for _ in range(20))
    assert format_dt(0.5) == "1970-01-01T00:00:00.500Z"
    assert format_dt(0.5, whole_seconds=True) == "1970-01-01T00:00:00Z"
    event = {"$schema": "/x/1.0.0", "meta": {"stream": "s", "id": "i"}}
    shapes = {}
    for name, producer in PRODUCERS.items():
        batch = Batch(producer, [Item(dict(event), "s")])
        batch.stamp(1000.0)
        req = batch.request()
        shapes[name] = (dict(req.headers)["Content-Type"], json.loads(req.body).__class__.__name__)
    assert shapes == {
        "js": ("text/plain;charset=UTF-8", "list"),
        "eventlogging": ("text/plain;charset=UTF-8", "dict"),
        "testkitchen": ("text/plain;charset=UTF-8", "list"),
        "android": ("application/json", "list"),
        "ios": ("application/json", "list"),
    }
    device = AppDevice.create(0, rng, "android")
    first = device.session_at(0)
    assert device.session_at(29 * 60) == first  # still active
    assert device.session_at(29 * 60 + 30 * 60 + 1) != first  # 30 minutes in the background


# --- the crux: clean without bugs, every bug found exactly once with them -----------------

SERIOUS = "severity IN ('warning', 'error')"


def test_without_bugs_every_event_is_valid_and_nothing_is_wrong(tmp_path):
    result, db = run_local(tmp_path, "clean", bugs=False)
    assert result.ok and result.events_sent > 100 and result.out_of_sample > 0
    assert set(result.requests_by_producer) >= {"js", "eventlogging", "testkitchen", "android"}
    assert rows(db, "SELECT verdict, count(*) FROM events GROUP BY 1") == [
        ("valid", result.events_sent)
    ]
    assert rows(db, f"SELECT kind, count(*) FROM event_findings WHERE {SERIOUS} GROUP BY 1") == []
    # info findings are facts, not problems: every sampled stream records its decision
    kinds = dict(rows(db, "SELECT kind, count(*) FROM event_findings GROUP BY 1"))
    assert kinds["sampling.decision"] == result.events_sent
    assert set(kinds) <= {"sampling.decision", "sampling.rules_disagree"}
    # both experiment forms were played: mw-user (sha256 subject) and edge-unique (awaiting)
    subjects = {
        s if s == "awaiting" else len(s)
        for (s,) in rows(
            db,
            "SELECT json_extract(unpack_text(event), '$.experiment.subject_id') FROM events "
            "WHERE json_extract(unpack_text(event), '$.experiment') IS NOT NULL",
        )
    }
    assert subjects == {"awaiting", 64}


def test_with_bugs_each_bug_is_found_exactly_once_and_nothing_else(tmp_path):
    result, db = run_local(tmp_path, "bugs", bugs=True)
    assert result.ok
    assert sorted(b["bug"] for b in result.manifest) == sorted(BUG_KINDS)
    assert result.bugs_not_injected == []
    serious = rows(
        db,
        f"SELECT e.meta_id, f.kind, e.id FROM event_findings f JOIN events e ON e.id = f.event_id "
        f"WHERE f.{SERIOUS} ORDER BY e.id",
    )
    bad = rows(db, "SELECT meta_id, verdict, errors, id FROM events WHERE verdict != 'valid'")
    matched_findings: set[int] = set()
    matched_invalid: set[int] = set()
    for bug in result.manifest:
        copies = rows(db, "SELECT id FROM events WHERE meta_id = ? ORDER BY id", bug["meta_id"])
        assert len(copies) == bug["copy"], bug  # the duplicate: two copies
        event_id = copies[bug["copy"] - 1][0]
        if "finding" in bug:
            hits = [i for i, (m, k, _) in enumerate(serious) if k == bug["finding"]]
            assert len(hits) == 1, (bug, serious)
            assert serious[hits[0]][2] == event_id, bug
            matched_findings.add(hits[0])
        else:
            hits = [i for i, (_, v, _, eid) in enumerate(bad) if eid == event_id]
            assert len(hits) == 1, (bug, bad)
            _meta, verdict, errors, _ = bad[hits[0]]
            errors = json.loads(errors)
            assert verdict == "invalid" and len(errors) == 1
            assert {k: errors[0][k] for k in ("keyword", "dataPath")} == bug["validation"]
            matched_invalid.add(hits[0])
    # nothing else: every warning/error finding and every invalid event is a manifest entry's
    assert len(matched_findings) == len(serious)
    assert len(matched_invalid) == len(bad)
    assert Counter(b["bug"] for b in result.manifest) == Counter(BUG_KINDS)


def test_same_seed_same_traffic(tmp_path):
    a = planner(bugs=True)
    b = planner(bugs=True)
    for i in range(15):
        sa, sb = a.script(i), b.script(i)
        assert [[it.event for it in x.items] for x in sa] == [
            [it.event for it in x.items] for x in sb
        ]
    assert [m.meta_id for m in a.bugs.manifest] == [m.meta_id for m in b.bugs.manifest]


# --- the command line ---------------------------------------------------------------------

SCHEMA_ARGS = ["--schemas", str(SECONDARY), "--schemas", str(PRIMARY)]


def invoke(*args: str):
    from mpsandbox.cli import main

    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_check_passes_on_a_run_without_bugs(tmp_path):
    db = tmp_path / "check.db"
    res = invoke(
        "simulate",
        "--db",
        str(db),
        "--users",
        str(USERS),
        "--seed",
        str(SEED),
        "--instruments",
        str(INSTRUMENTS),
        *SCHEMA_ARGS,
    )
    assert res.exit_code == 0, res.output
    assert "events sent" in res.output and "out of sample not sent" in res.output
    assert "requests by producer: android" in res.output
    # Every shipped instrument, as it is, is satisfied by the simulator's traffic.
    res = invoke("check", "--db", str(db), "--instruments", str(INSTRUMENTS), *SCHEMA_ARGS)
    assert res.exit_code == 0, res.output
    assert "5 instruments" in res.output and "0 failed, 0 not seen" in res.output
    # and with a bug the check fails
    db2 = tmp_path / "bugs.db"
    manifest = tmp_path / "manifest.json"
    res = invoke(
        "simulate",
        "--db",
        str(db2),
        "--users",
        str(USERS),
        "--seed",
        str(SEED),
        "--bugs",
        "--manifest",
        str(manifest),
        "--instruments",
        str(INSTRUMENTS),
        *SCHEMA_ARGS,
    )
    assert res.exit_code == 0 and "bugs injected: 7" in res.output, res.output
    bugs = json.loads(manifest.read_text())["bugs"]
    assert {b["bug"] for b in bugs} == set(BUG_KINDS)
    res = invoke("check", "--db", str(db2), "--instruments", str(INSTRUMENTS), *SCHEMA_ARGS)
    assert res.exit_code == 1


async def test_to_a_real_server_with_the_same_configs(make_server, tmp_path):
    from mpsandbox.fixtures.replay import HttpTarget
    from mpsandbox.simulate.run import simulate_async

    server = await make_server(
        stream_config=str(DEMO_STREAMS), experiments_file=str(DEMO_EXPERIMENTS)
    )
    url = server.url + "/v1/events"
    result = await simulate_async(
        planner(bugs=True),
        HttpTarget(url, timeout=10, concurrency=8),
        SimOptions(users=USERS, seed=SEED),
    )
    assert result.ok and result.events_sent > 100
    assert set(result.by_status) <= {"201", "202", "207", "400"}
    await server.stop()  # flushes every write
    db = server.sandbox.settings.db
    invalid = rows(db, "SELECT meta_id FROM events WHERE verdict != 'valid'")
    serious = rows(db, f"SELECT DISTINCT f.kind FROM event_findings f WHERE f.{SERIOUS}")
    assert invalid == [
        (next(b["meta_id"] for b in result.manifest if b["bug"] == "invalid_field"),)
    ]
    assert {k for (k,) in serious} == {b["finding"] for b in result.manifest if "finding" in b}
    assert rows(db, "SELECT count(*) FROM events")[0][0] == result.events_sent


def test_transport_failures_exit_1(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = invoke(
        "simulate",
        "--to",
        f"http://127.0.0.1:{port}/v1/events",
        "--users",
        "3",
        "--instruments",
        str(INSTRUMENTS),
    )
    assert res.exit_code == 1
    assert "transport failures" in res.output


async def test_rate_and_duration_pace_the_run(make_server):
    from mpsandbox.fixtures.replay import HttpTarget
    from mpsandbox.simulate.run import simulate_async

    server = await make_server(
        stream_config=str(DEMO_STREAMS), experiments_file=str(DEMO_EXPERIMENTS)
    )
    result = await simulate_async(
        planner(bugs=False),
        HttpTarget(server.url + "/v1/events", timeout=10, concurrency=4),
        SimOptions(users=4, rate=40, duration=1.5),
    )
    assert result.ok and result.users > 4  # new users kept arriving
    # at most 40 events/s, give or take the users' last POSTs after the deadline
    assert result.elapsed >= 1.4 and result.events_sent <= 40 * result.elapsed + 40
    assert result.events_sent >= 20


def test_injected_events_say_so_in_their_meta_id(tmp_path):
    """The demo marks its mistakes on screen by the bug's meta.id: each manifest entry's
    event reads back as its bug, and no event of the clean traffic reads as one."""
    result, db = run_local(tmp_path, "labels", bugs=True)
    labelled = {bug["meta_id"]: bug["bug"] for bug in result.manifest}
    assert {injected_bug(m) for m in labelled} == set(BUG_KINDS)
    for (meta_id,) in rows(db, "SELECT meta_id FROM events"):
        assert injected_bug(meta_id) == labelled.get(meta_id), meta_id


def test_the_shipped_funnel_counts_what_the_simulator_sends(tmp_path):
    """metrics/funnel_conversion.yaml over clean simulated traffic: every step is reached
    by some session (its last step once named an action nothing sends: always 0%)."""
    from mpsandbox.metrics import compute_stored, default_metric_dirs, load_definitions
    from mpsandbox.store import StoreReader

    _result, db = run_local(tmp_path, "funnel", bugs=False)
    definitions = load_definitions(default_metric_dirs())
    [funnel] = [m for m in definitions.metrics if m.name == "funnel_conversion"]
    reader = StoreReader(db)
    try:
        [result] = compute_stored(reader, [funnel], by=None)
    finally:
        reader.close()
    reached = [step.reached for step in result.total.steps]
    assert len(reached) == 3 and all(n > 0 for n in reached), reached
