"""Chaos: a share of intake requests answered badly, so an author sees how a client retries.

Real servers on 127.0.0.1, real SQLite files, the real schemas; the CLI in real processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import subprocess
import sys
import threading
import time

import aiohttp
import pytest

from mpsandbox.chaos import (
    Chaos,
    ChaosError,
    ChaosSettings,
    ChaosStore,
    parse_spec,
)
from mpsandbox.store import StoreReader, connect
from tests.test_bad_input import VALID

PY = sys.executable


def event(**changes):
    e = json.loads(json.dumps(VALID))
    e.update(changes)
    return e


def batch(n: int) -> list[dict]:
    return [event(action=f"step{i}") for i in range(n)]


# --- the spec and the decision ------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "canonical"),
    [
        ("503:0.2,latency:200ms,drop:0.05", "503:0.2,drop:0.05,latency:200ms"),
        ("207:0.5,latency:50-400ms,seed:7", "207:0.5,latency:50-400ms,seed:7"),
        ("500:10%", "500:0.1"),
        (" 207:50%  failed:25% ", "207:0.5,failed:0.25"),
        ("LATENCY:1.5s", "latency:1500ms"),
        ("latency:50ms-1s", "latency:50-1000ms"),
        ("503:1,retry-after:5s", "503:1,retry-after:5"),
        ("500:0.25,503:0.25,207:0.25,drop:0.25", "500:0.25,503:0.25,207:0.25,drop:0.25"),
    ],
)
def test_spec_grammar_round_trips(spec, canonical):
    settings = parse_spec(spec)
    assert settings.spec() == canonical
    assert parse_spec(settings.spec()) == settings
    assert ChaosSettings.from_json(json.loads(json.dumps(settings.to_json()))) == settings


def test_off_and_json_forms():
    assert parse_spec("off") is None and parse_spec(" OFF ") is None
    s = ChaosSettings.from_json({"503": 0.2, "latency_ms": [50, 400], "seed": 7})
    assert s.spec() == "503:0.2,latency:50-400ms,seed:7"
    assert ChaosSettings.from_json({"207": "50%", "latency": "20ms"}).spec() == (
        "207:0.5,latency:20ms"
    )
    assert s.to_json() == {
        "500": 0.0,
        "503": 0.2,
        "207": 0.0,
        "drop": 0.0,
        "latency_ms": [50.0, 400.0],
        "failed": 0.5,
        "retry_after": 1,
        "seed": 7,
    }


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("", "empty"),
        ("503", "write KEY:VALUE"),
        ("503:abc", "a share is a number"),
        ("503:1.5", "between 0 and 1"),
        ("503:150%", "between 0 and 1"),
        ("404:0.1", "unknown key '404'"),
        ("503:0.1,503:0.2", "503 is given twice"),
        ("503:0.6,500:0.6", "add up to 1.2"),
        ("seed:7", "nothing to do"),
        ("failed:0.3,503:0.1", "failed: only means something with 207"),
        ("retry-after:3,500:0.1", "retry-after: only means something with 503"),
        ("latency:400-50ms", "from low to high"),
        ("latency:10m", "a duration is"),
        ("latency:301s", "at most 300 s"),
        ("207:0.5,failed:0", "more than 0"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec, says):
    with pytest.raises(ChaosError) as info:
        parse_spec(spec)
    assert says in str(info.value)


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ([], "JSON object"),
        ({"504": 0.1}, "unknown chaos setting '504'"),
        ({"503": True}, "503: a share must be a number"),
        ({"latency_ms": [1, 2, 3]}, "latency_ms"),
        ({"503": 0.1, "seed": 1.5}, "seed: a whole number"),
        ({}, "nothing to do"),
    ],
)
def test_bad_json_settings_say_what_is_wrong(data, says):
    with pytest.raises(ChaosError) as info:
        ChaosSettings.from_json(data)
    assert says in str(info.value)


def test_decisions_follow_the_shares_and_a_seed_repeats_them():
    settings = parse_spec("500:0.1,503:0.2,207:0.3,drop:0.05,latency:10-20ms,seed:42")
    first, second = Chaos(settings), Chaos(settings)
    a = [first.decide() for _ in range(4000)]
    assert a == [second.decide() for _ in range(4000)]
    shares = {kind: sum(d.injected == kind for d in a) / len(a) for kind in (500, 503, 207, "drop")}
    assert shares[500] == pytest.approx(0.1, abs=0.025)
    assert shares[503] == pytest.approx(0.2, abs=0.025)
    assert shares[207] == pytest.approx(0.3, abs=0.025)
    assert shares["drop"] == pytest.approx(0.05, abs=0.015)
    assert all(10 <= d.latency_ms <= 20 for d in a)
    assert len({d.latency_ms for d in a}) > 100  # drawn, not fixed
    # another seed, another sequence
    other = Chaos(parse_spec("500:0.1,503:0.2,207:0.3,drop:0.05,latency:10-20ms,seed:43"))
    assert [other.decide() for _ in range(50)] != a[:50]


def test_no_decision_when_nothing_applies_and_failed_bounds():
    chaos = Chaos(parse_spec("503:0.000001,seed:1"))
    assert [chaos.decide() for _ in range(100)] == [None] * 100
    chaos = Chaos(parse_spec("207:1,failed:0.9,seed:1"))
    assert chaos.choose_failed(1) == [0]  # one event: it fails
    assert len(chaos.choose_failed(2)) == 1  # one kept at least
    assert len(chaos.choose_failed(10)) == 9
    chaos = Chaos(parse_spec("207:1,failed:0.01,seed:1"))
    assert len(chaos.choose_failed(10)) == 1  # one failed at least
    picked = chaos.choose_failed(8)
    assert picked == sorted(set(picked)) and all(0 <= i < 8 for i in picked)


def test_store_is_off_on_a_fresh_database_and_shared_between_connections(tmp_path):
    db = tmp_path / "chaos.db"
    one = ChaosStore(db)
    state = one.state()
    assert not state.on and state.revision == 0 and state.set_by is None
    other = ChaosStore(db)
    change = one.set(parse_spec("503:0.5"), "cli")
    assert change["previous"]["on"] is False and change["chaos"]["spec"] == "503:0.5"
    seen = other.refresh()
    assert seen is not None and seen.spec == "503:0.5" and seen.set_by == "cli"
    assert other.refresh() is None  # nothing moved since
    one.off("api")
    assert other.state().on is False and other.state().set_by == "api"
    assert other.state().revision == 2
    with pytest.raises(ChaosError):
        one.set(None, "someone")
    one.close()
    other.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM chaos").fetchone()[0] == 1
        columns = [r[1] for r in conn.execute("PRAGMA table_info(requests)")]
        assert columns[-1] == "chaos"


# --- the intake under chaos -----------------------------------------------------------------


async def post(http, server, body, path="/v1/events", **kw):
    async with http.post(server.url + path, json=body, **kw) as resp:
        return resp.status, resp.reason, resp.headers, await resp.read()


async def api(http, method, url, body=None):
    async with http.request(method, url, json=body) as resp:
        return resp.status, await resp.json()


async def set_chaos(http, server, spec):
    status, data = await api(http, "PUT", server.url + "/sandbox/chaos", {"spec": spec})
    assert status == 200, data
    return data


def rows(server, sql, *args):
    with sqlite3.connect(server.sandbox.settings.db) as conn:
        return conn.execute(sql, args).fetchall()


def last_request(server) -> dict:
    # The store's own connection: it unpacks the stored body (see store/codec.py).
    with contextlib.closing(connect(server.sandbox.settings.db, readonly=True)) as conn:
        conn.row_factory = sqlite3.Row
        row = dict(conn.execute("SELECT * FROM requests ORDER BY id DESC LIMIT 1").fetchone())
        row["body"] = conn.execute("SELECT unpack_blob(?)", (row["body"],)).fetchone()[0]
    row["chaos"] = None if row["chaos"] is None else json.loads(row["chaos"])
    return row


def stored_events(server) -> int:
    return rows(server, "SELECT count(*) FROM events")[0][0]


async def test_off_by_default_and_nothing_recorded(server, http):
    status, data = await api(http, "GET", server.url + "/sandbox/chaos")
    assert status == 200 and data["on"] is False and data["spec"] is None
    assert "503:SHARE" in data["grammar"] and data["examples"]
    assert server.sandbox.chaos is None
    assert (await post(http, server, batch(2)))[0] == 201
    assert last_request(server)["chaos"] is None
    _, stats = await api(http, "GET", server.url + "/sandbox/stats")
    assert stats["chaos"]["on"] is False


async def test_injected_503_stores_no_events_and_records_the_request(server, http):
    data = await set_chaos(http, server, "503:1,retry-after:7")
    assert data["on"] and data["spec"] == "503:1,retry-after:7" and data["set_by"] == "api"
    assert data["previous"]["on"] is False
    status, reason, headers, body = await post(http, server, batch(3))
    assert (status, reason) == (503, "Service Unavailable")
    assert headers["Retry-After"] == "7"
    assert headers["access-control-allow-origin"] == "*"  # EventGate's headers as always
    problem = json.loads(body)
    assert problem["status"] == 503 and problem["type"] == "chaos"
    assert (
        "503:1,retry-after:7" in problem["detail"] and "none of its 3 events" in problem["detail"]
    )
    assert stored_events(server) == 0
    req = last_request(server)
    assert req["status"] == 503 and req["event_count"] == 3 and req["stored_events"] == 0
    assert req["chaos"] == {"spec": "503:1,retry-after:7", "injected": 503}
    assert json.loads(req["body"])[2]["action"] == "step2"  # the body as sent, kept
    assert json.loads(req["response_body"]) == problem
    assert "chaos" in req["note"]


async def test_injected_500_answers_as_eventgate_when_every_event_errored(server, http):
    await set_chaos(http, server, "500:1")
    sent = batch(2)
    status, reason, _, body = await post(http, server, sent)
    assert status == 500
    assert reason == (
        "2 out of 2 events had failures and were not accepted. (0 invalid and 2 errored)."
    )
    answer = json.loads(body)
    assert answer["invalid"] == [] and len(answer["error"]) == 2
    for item, original in zip(answer["error"], sent, strict=True):
        assert item["status"] == "error" and item["event"] == original
        assert item["context"]["message"].startswith("mpsandbox chaos: injected failure (500:1)")
    assert stored_events(server) == 0
    assert last_request(server)["chaos"] == {"spec": "500:1", "injected": 500}


async def test_injected_207_fails_a_subset_and_stores_the_rest(server, http):
    await set_chaos(http, server, "207:1,failed:0.5,seed:3")
    sent = batch(6)
    status, reason, _, body = await post(http, server, sent)
    assert status == 207
    assert reason == "3 out of 6 events were accepted, but 3 failed (0 invalid and 3 errored)."
    answer = json.loads(body)
    failed_actions = [item["event"]["action"] for item in answer["error"]]
    assert len(failed_actions) == 3 and answer["invalid"] == []
    req = last_request(server)
    assert req["chaos"]["injected"] == 207 and len(req["chaos"]["failed"]) == 3
    assert [sent[i]["action"] for i in req["chaos"]["failed"]] == failed_actions
    stored = rows(server, "SELECT idx, action FROM events WHERE request_id = ?", req["id"])
    kept = [i for i in range(6) if i not in req["chaos"]["failed"]]
    assert sorted(stored) == [(i, f"step{i}") for i in kept]  # only the failed are absent
    assert req["stored_events"] == 3 and req["event_count"] == 6

    # The client retries the failed events: accepted, and no duplicate finding, since the
    # failed copies were never judged.
    await api(http, "DELETE", server.url + "/sandbox/chaos")
    retry = [sent[i] for i in req["chaos"]["failed"]]
    assert (await post(http, server, retry))[0] == 201
    _, page = await api(http, "GET", server.url + "/sandbox/events?limit=3")
    for summary in page["events"]:
        _, detail = await api(http, "GET", server.url + f"/sandbox/events/{summary['id']}")
        assert not [f for f in detail["findings"] if f["kind"].startswith("duplicate.")]


async def test_207_of_one_event_fails_it_and_invalid_events_keep_their_verdict(server, http):
    await set_chaos(http, server, "207:1,seed:1")
    status, reason, _, body = await post(http, server, [event()])
    assert status == 500 and reason.startswith("1 out of 1 events had failures")
    assert stored_events(server) == 0
    # Two events, one invalid: the failure may hit either; the invalid one stays invalid.
    status, _, _, body = await post(http, server, [event(action=42), event()])
    answer = json.loads(body)
    req = last_request(server)
    assert req["chaos"]["failed"] in ([0], [1])
    if req["chaos"]["failed"] == [1]:
        assert status == 500 and len(answer["invalid"]) == 1 and len(answer["error"]) == 1
        assert rows(server, "SELECT verdict FROM events WHERE request_id = ?", req["id"]) == [
            ("invalid",)
        ]
    else:
        assert status == 207 and answer["invalid"] == [] and len(answer["error"]) == 1


async def test_drop_closes_the_connection_without_an_answer(server, http):
    await set_chaos(http, server, "drop:1")
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await post(http, server, batch(2))
    assert stored_events(server) == 0
    req = last_request(server)
    assert req["status"] is None and req["event_count"] == 2
    assert req["chaos"] == {"spec": "drop:1", "injected": "drop"}
    assert json.loads(req["body"])[0]["action"] == "step0"
    # the server is fine: the next request on a new connection is answered
    assert (await api(http, "GET", server.url + "/sandbox/chaos"))[1]["counts"]["drop"] == 1


async def test_latency_delays_the_answer_and_stores_events(server, http):
    await set_chaos(http, server, "latency:300ms")
    t0 = time.perf_counter()
    status, *_ = await post(http, server, batch(2))
    elapsed = time.perf_counter() - t0
    assert status == 201 and 0.3 <= elapsed < 2.0
    assert stored_events(server) == 2
    assert last_request(server)["chaos"] == {"spec": "latency:300ms", "latency_ms": 300.0}
    # hasty: the 202 waits too
    t0 = time.perf_counter()
    status, *_ = await post(http, server, batch(1), path="/v1/events?hasty=true")
    assert status == 202 and 0.3 <= time.perf_counter() - t0 < 2.0


async def test_hasty_requests(server, http):
    await set_chaos(http, server, "503:1")
    status, *_ = await post(http, server, batch(2), path="/v1/events?hasty=true")
    assert status == 503  # the service failed before it could answer 202
    assert stored_events(server) == 0
    await set_chaos(http, server, "207:1,seed:5")
    status, reason, _, _ = await post(http, server, batch(4), path="/v1/events?hasty=true")
    assert (status, reason) == (202, "4 events hastily received.")
    for _ in range(50):  # stored after the answer
        if rows(server, "SELECT stored_events FROM requests ORDER BY id DESC LIMIT 1")[0][0]:
            break
        await asyncio.sleep(0.05)
    req = last_request(server)
    assert req["hasty"] == 1 and len(req["chaos"]["failed"]) == 2 and req["stored_events"] == 2
    assert "never knows" in req["note"]


async def test_only_intake_posts_are_subject_to_chaos(make_server, http):
    server = await make_server(intake_paths=("/v1/events", "/evt-103e/v2/events"))
    await set_chaos(http, server, "503:1")
    assert (await post(http, server, batch(1), path="/evt-103e/v2/events"))[0] == 503
    for path in ("/sandbox/events", "/sandbox/stats", "/_info", "/sandbox/openapi.json"):
        async with http.get(server.url + path) as resp:
            assert resp.status == 200, path
    async with http.get(server.url + "/v1/stream-configs") as resp:
        assert resp.status == 404  # as without chaos: no --stream-config
    async with http.options(server.url + "/v1/events") as resp:
        assert resp.status == 200
    async with http.get(server.url + "/v1/_test/events") as resp:
        assert resp.status == 201
    # A body without events is answered as always; nothing was applied, so nothing recorded.
    async with http.post(server.url + "/v1/events", data=b"") as resp:
        assert resp.status == 400
    assert last_request(server)["chaos"] is None


async def test_api_validation_json_form_stats_and_views(server, http):
    url = server.url + "/sandbox/chaos"
    status, problem = await api(http, "PUT", url, {"spec": "503:2"})
    assert status == 400 and problem["title"] == "bad chaos setting"
    assert "between 0 and 1" in problem["detail"] and "Grammar:" in problem["detail"]
    status, problem = await api(http, "PUT", url, {"503": 0.1, "bogus": 1})
    assert status == 400 and "'bogus'" in problem["detail"]
    status, problem = await api(http, "PUT", url, {"spec": "503:0.1", "drop": 0.1})
    assert status == 400 and "not both" in problem["detail"]
    status, problem = await api(http, "PUT", url, {"spec": "503:0.1", "set_by": "me"})
    assert status == 400 and "set_by" in problem["detail"]
    async with http.put(url, data=b"{nope") as resp:
        assert resp.status == 400
    assert server.sandbox.chaos is None  # nothing bad was stored

    status, data = await api(http, "PUT", url, {"207": 1, "failed": 0.5, "seed": 2})
    assert status == 200 and data["spec"] == "207:1,seed:2"
    assert data["description"].startswith("100% 207")
    await post(http, server, batch(2))
    _, stats = await api(http, "GET", server.url + "/sandbox/stats")
    assert stats["chaos"]["spec"] == "207:1,seed:2"
    assert stats["chaos"]["counts"] == {"requests": 1, "207": 1}
    _, page = await api(http, "GET", server.url + "/sandbox/events")
    _, detail = await api(http, "GET", server.url + f"/sandbox/events/{page['events'][0]['id']}")
    assert detail["request"]["chaos"]["injected"] == 207
    _, requests = await api(http, "GET", server.url + "/sandbox/requests?limit=5")
    newest = requests["requests"][0]
    assert newest["chaos"]["injected"] == 207 and newest["stored_events"] == 1
    _, one = await api(http, "GET", server.url + f"/sandbox/requests/{newest['id']}")
    assert one["chaos"] == newest["chaos"] and len(one["events"]) == 1
    assert json.loads(one["response_body"])["error"][0]["status"] == "error"
    status, _ = await api(http, "GET", server.url + "/sandbox/requests/999999")
    assert status == 404

    status, data = await api(http, "DELETE", url)
    assert status == 200 and data["on"] is False and data["previous"]["spec"] == "207:1,seed:2"
    assert server.sandbox.chaos is None
    assert (await post(http, server, batch(2)))[0] == 201


async def test_seeded_chaos_repeats_after_setting_it_again(server, http):
    async def run() -> list[int]:
        await set_chaos(http, server, "500:0.3,503:0.3,seed:11")
        return [(await post(http, server, [event()]))[0] for _ in range(12)]

    first = await run()
    assert set(first) == {201, 500, 503}
    assert await run() == first


# --- chaos is a step of the one POST path (intake/submit.py's handle_post) ----------------


def judged_rows(server, request_id: int) -> list[tuple]:
    """What the store holds of a request's events, without ids and times."""
    return rows(
        server,
        "SELECT idx, verdict, action, schema_uri FROM events WHERE request_id = ? ORDER BY idx",
        request_id,
    )


def findings_of(server, request_id: int) -> list[tuple]:
    """The findings' kinds by event position, as the store's reader tells them."""
    ids = rows(server, "SELECT id, idx FROM events WHERE request_id = ?", request_id)
    reader = StoreReader(server.sandbox.settings.db)
    try:
        return sorted(
            (idx, f["kind"])
            for event_id, idx in ids
            for f in reader.get_event(event_id)["findings"]
        )
    finally:
        reader.close()


def mixed_batch() -> list[dict]:
    """Valid, invalid and errored events, and a duplicate meta.id within the body."""
    twice = {**VALID["meta"], "id": "0f3c5a4e-0000-4000-8000-000000000001"}
    return [
        event(action="first", meta=twice),
        event(action=42),
        {"$schema": "/analytics/nowhere/1.0.0", "meta": {"stream": "x"}},
        event(action="again", meta=twice),
    ]


async def test_a_chaotic_post_is_judged_and_answered_as_any_other(make_server, http, tmp_path):
    """Latency alone changes nothing but the wait: the same multi-event body gets the same
    answer, verdicts and findings with chaos on as with it off."""
    calm = await make_server(db=tmp_path / "calm.db")
    chaotic = await make_server(db=tmp_path / "chaotic.db")
    await set_chaos(http, chaotic, "latency:1ms")
    answers = []
    for server in (calm, chaotic):
        status, reason, _, body = await post(http, server, mixed_batch())
        items = [
            (item["status"], item["event"].get("action"), item["context"].get("message"))
            for kind in ("invalid", "error")
            for item in json.loads(body)[kind]
        ]
        answers.append((status, reason, items))
    assert answers[0] == answers[1] and answers[0][0] == 207 and len(answers[0][2]) == 2
    calm_req, chaotic_req = last_request(calm), last_request(chaotic)
    assert judged_rows(calm, calm_req["id"]) == judged_rows(chaotic, chaotic_req["id"])
    assert findings_of(calm, calm_req["id"]) == findings_of(chaotic, chaotic_req["id"])
    assert "duplicate.meta_id" in {k for _, k in findings_of(chaotic, chaotic_req["id"])}
    assert chaotic_req["chaos"] == {"spec": "latency:1ms", "latency_ms": 1.0}
    assert calm_req["chaos"] is None and chaotic_req["event_count"] == 4


async def test_a_chaotic_207_judges_the_rest_of_a_multi_event_body(server, http):
    """The events chaos does not fail are judged together, each at its own position, with
    the findings a body's events give one another."""
    await set_chaos(http, server, "207:1,failed:0.25,seed:2")
    sent = mixed_batch() + [event(action=f"tail{i}") for i in range(4)]
    status, _, _, body = await post(http, server, sent)
    req = last_request(server)
    failed = req["chaos"]["failed"]
    assert len(failed) == 2 and req["stored_events"] == 6
    stored = judged_rows(server, req["id"])
    assert [idx for idx, *_ in stored] == [i for i in range(8) if i not in failed]
    verdicts = {idx: verdict for idx, verdict, *_ in stored}
    expected = {0: "valid", 1: "invalid", 2: "error", 3: "valid"}
    assert all(verdicts[i] == v for i, v in expected.items() if i not in failed)
    answer = json.loads(body)
    injected = [e for e in answer["error"] if "chaos" in e["context"]["message"]]
    assert sorted(sent.index(e["event"]) for e in injected) == failed
    assert status == 207 and len(answer["invalid"]) == (0 if 1 in failed else 1)


async def test_a_big_chaotic_post_takes_its_turn_and_is_judged_in_slices(server, http):
    """A body over BIG_BODY under chaos waits its turn and is judged a slice at a time like
    any big body, so it never holds the event loop for its whole length."""
    from mpsandbox.sandbox import BIG_BODY

    await set_chaos(http, server, "207:1,failed:0.1,seed:9")
    sent = batch(240)
    assert len(json.dumps(sent)) > BIG_BODY
    assert not server.sandbox.busy_with_big_batches
    status, reason, _, _ = await post(http, server, sent)
    assert server.sandbox.busy_with_big_batches  # it took the big bodies' turn
    req = last_request(server)
    assert status == 207 and len(req["chaos"]["failed"]) == 24
    assert reason.startswith("216 out of 240 events were accepted")
    assert req["stored_events"] == 216


@pytest.mark.parametrize("hasty", ["true", "false", "1"])
async def test_a_chaotic_hasty_post_reads_hasty_as_any_other(server, http, hasty):
    """``?hasty=`` with any non-empty value answers 202 (EventGate's reading), chaos or not;
    the events chaos spares are stored after the answer."""
    await set_chaos(http, server, "207:1,failed:0.5,seed:5,latency:1ms")
    status, reason, _, _ = await post(http, server, batch(4), path=f"/v1/events?hasty={hasty}")
    assert (status, reason) == (202, "4 events hastily received.")
    for _ in range(100):
        if rows(server, "SELECT stored_events FROM requests WHERE stored_events > 0"):
            break
        await asyncio.sleep(0.05)
    req = last_request(server)
    assert req["hasty"] == 1 and req["stored_events"] == 2
    assert req["chaos"]["latency_ms"] == 1.0 and len(req["chaos"]["failed"]) == 2
    # a bare ?hasty is no hasty request: answered in full
    status, *_ = await post(http, server, batch(4), path="/v1/events?hasty")
    assert status == 207


async def test_every_chaotic_request_is_counted_once(server, http):
    await set_chaos(http, server, "503:0.5,latency:1ms,seed:3")
    statuses = [(await post(http, server, batch(2)))[0] for _ in range(6)]
    _, data = await api(http, "GET", server.url + "/sandbox/chaos")
    assert data["counts"]["requests"] == 6 and data["counts"]["latency"] == 6
    assert data["counts"].get("503", 0) == statuses.count(503) > 0
    recorded = rows(server, "SELECT chaos FROM requests ORDER BY id DESC LIMIT 6")
    assert all(json.loads(c)["latency_ms"] == 1.0 for (c,) in recorded)


# --- the command line -----------------------------------------------------------------------


def run_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PY, "-m", "mpsandbox", *args], capture_output=True, timeout=60, text=True
    )


async def test_a_cli_change_reaches_a_running_intake_within_a_second(server, http):
    db = str(server.sandbox.settings.db)
    assert (await post(http, server, [event()]))[0] == 201

    async def first_status(expected: int, since: float) -> float:
        while True:
            status = (await post(http, server, [event()]))[0]
            if status == expected:
                return time.perf_counter() - since
            assert time.perf_counter() - since < 3, f"still {status}, not {expected}"
            await asyncio.sleep(0.02)

    res = await asyncio.to_thread(run_cli, "chaos", "set", "503:1", "--db", db)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("chaos is ON: 503:1 (was off)")
    assert "100% answered 503" in res.stdout
    assert await first_status(503, time.perf_counter()) < 1.5  # polled every second
    assert server.sandbox.chaos_state.set_by == "cli"

    res = await asyncio.to_thread(run_cli, "chaos", "show", "--db", db)
    assert res.stdout.splitlines()[0] == "chaos is ON: 503:1" and "set by cli" in res.stdout

    res = await asyncio.to_thread(run_cli, "chaos", "off", "--db", db)
    assert res.returncode == 0 and res.stdout.strip() == "chaos is off (was 503:1)"
    assert await first_status(201, time.perf_counter()) < 1.5
    res = await asyncio.to_thread(run_cli, "chaos", "show", "--db", db, "--format", "json")
    shown = json.loads(res.stdout)
    assert shown["on"] is False and shown["set_by"] == "cli" and shown["revision"] == 2


def test_bad_specs_exit_2_naming_the_problem(tmp_path):
    db = str(tmp_path / "cli.db")
    res = run_cli("chaos", "set", "503:0.7,drop:0.5", "--db", db)
    assert res.returncode == 2
    assert "add up to 1.2" in res.stderr and "grammar:" in res.stderr
    res = run_cli("serve", "--chaos", "latency:fast", "--db", db, "--port", "0")
    assert res.returncode == 2
    assert "Invalid value for '--chaos'" in res.stderr and "a duration is" in res.stderr
    res = run_cli("chaos", "show", "--db", db)
    assert res.stdout.strip() == "chaos is off"  # nothing was stored


def test_serve_says_loudly_when_chaos_is_on_and_when_it_changes(tmp_path):
    from tests.test_cli import free_port, schema_args

    db = str(tmp_path / "serve.db")
    port = free_port()
    args = ["serve", "--port", str(port), "--db", db, *schema_args()]
    args += ["--chaos", "503:0.5,latency:20ms", "--output", "text"]
    proc = subprocess.Popen(
        [PY, "-m", "mpsandbox", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()

    def wait_for(text: str) -> str:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            found = [line for line in lines if text in line]
            if found:
                return found[-1]
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.05)
        raise AssertionError(f"serve never printed {text!r}: {lines}")

    try:
        assert wait_for("mpsandbox ready").startswith("mpsandbox ready: intake")
        warning = wait_for("CHAOS ON")
        assert "503:0.5,latency:20ms" in warning and "50% answered 503" in warning
        assert f"mpsandbox chaos off --db {db}" in warning
        t0 = time.monotonic()
        assert run_cli("chaos", "off", "--db", db).returncode == 0
        assert "by cli" in wait_for("chaos is OFF")
        assert time.monotonic() - t0 < 2.5
    finally:
        proc.terminate()
        proc.wait(20)
