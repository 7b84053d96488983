"""Nothing lost: one bad event never costs its neighbours, odd input is stored as sent."""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import Future

import pytest

from mpsandbox.records import VALID as VALID_VERDICT
from mpsandbox.records import EventRecord, RequestRecord
from mpsandbox.store import StoreError, StoreWriter
from tests.test_bad_input import JSON, VALID

#: A JavaScript string cut mid-pair: JSON.parse accepts the escape, EventGate stores it.
LONE = "click\\ud83d"


def raw_event(**changes: str) -> bytes:
    """VALID as JSON text, with values replaced by raw JSON text (escapes kept)."""
    text = json.dumps(VALID)
    for key, value in changes.items():
        text = text.replace(json.dumps(VALID[key]) if key in VALID else key, value, 1)
    return text.encode()


async def post(http, server, body: bytes, path="/v1/events"):
    async with http.post(server.url + path, data=body, headers=JSON) as resp:
        return resp.status, await resp.read()


async def get_json(http, server, path: str):
    async with http.get(server.url + path) as resp:
        assert resp.status == 200, path
        return await resp.json(content_type=None), await resp.read()


async def test_lone_surrogate_is_answered_201_stored_and_shown_escaped(server, http):
    body = raw_event(action=f'"{LONE}"')
    status, _ = await post(http, server, body)
    assert status == 201
    events, _ = await get_json(http, server, "/sandbox/events")
    [event] = events["events"]
    assert event["verdict"] == VALID_VERDICT
    assert event["action"] == "click\\ud83d"  # the surrogate shown as its escape
    _, raw = await get_json(http, server, f"/sandbox/events/{event['id']}")
    assert b'"click\\ud83d"' in raw  # the event JSON keeps it as a JSON escape
    request, _ = await get_json(http, server, f"/sandbox/requests/{event['request_id']}")
    assert request["body"].encode() == body  # byte-exact


@pytest.mark.parametrize(
    ("where", "body", "status"),
    [
        ("$schema", raw_event(**{'"$schema": "/analytics': '"$schema": "/\\ud83danalytics'}), 500),
        ("key", raw_event(**{'"action"': '"act\\udc00ion"'}), 400),
        ("meta.stream", raw_event(**{'"product_metrics.web_base"': '"s\\ud83d"'}), 201),
    ],
    ids=["schema", "key", "stream"],
)
async def test_lone_surrogate_anywhere_is_judged_and_stored(server, http, where, body, status):
    got, answer = await post(http, server, body)
    assert got == status, answer
    if where == "$schema":
        failed = json.loads(answer)["error"][0]
        assert failed["context"]["message"].startswith("Failed loading schema at /")
    stats, _ = await get_json(http, server, "/sandbox/stats")
    assert stats["events"] == 1 and stats["requests"] == 1


async def test_concurrent_posts_with_every_20th_poisoned_all_stored(server, http):
    n = 400
    bodies = [
        raw_event(action=f'"{LONE}"') if i % 20 == 0 else json.dumps(VALID).encode()
        for i in range(n)
    ]
    statuses = await asyncio.gather(*(post(http, server, b) for b in bodies))
    assert [s for s, _ in statuses] == [201] * n
    stats, _ = await get_json(http, server, "/sandbox/stats")
    assert stats["events"] == n


def _request() -> RequestRecord:
    return RequestRecord(time.time(), "POST", "/v1/events", "", [], b"{}")


def _event() -> EventRecord:
    return EventRecord(0, dict(VALID), VALID_VERDICT, time.time(), stream="s")


def test_one_unwritable_item_fails_alone_in_its_group_commit(tmp_path):
    """The general rule behind the surrogate fix: whatever makes one item of a group
    commit unwritable, the others are committed and only that item gets the error."""
    from mpsandbox.store.writer import encode_event, encode_request

    writer = StoreWriter(tmp_path / "s.db", linger=0)
    writer.start()
    try:
        gate = Future()
        writer.run_in_writer(lambda conn: gate.result(10))  # hold the writer: one batch
        futures = []
        for i in range(20):
            event_row = encode_event(_event())
            if i == 7:
                event_row[9] = ["not", "bindable"]  # the action column: no SQLite type
            futures.append(writer.submit_rows(encode_request(_request(), 1), [event_row]))
        gate.set_result(None)
        outcomes = [f.exception(10) for f in futures]
        assert isinstance(outcomes[7], StoreError)
        assert [o for i, o in enumerate(outcomes) if i != 7] == [None] * 19
        writer.flush().result(10)
    finally:
        writer.close()
    import sqlite3

    with sqlite3.connect(tmp_path / "s.db") as conn:
        assert conn.execute("select count(*) from events").fetchone()[0] == 19


def test_the_tui_shows_a_lone_surrogate_as_its_escape():
    from mpsandbox.tui.json_view import render_json
    from mpsandbox.tui.safe_text import clean

    assert clean("click\ud83d") == "click\\ud83d"
    assert "click\\ud83d" in render_json({"action": "click\ud83d"}).plain


WEB_BASE = "/analytics/product_metrics/web/base"


@pytest.mark.parametrize(
    "schema",
    [
        "/a\x00b/1.0.0",  # NUL: no file system takes it
        "/" + "a" * 300 + "/1.0.0",  # a segment longer than a file name may be
        f"{WEB_BASE}\ud83d/1.3.0",  # a lone surrogate: no file name encoding has it
        f"{WEB_BASE}/1.3.0/" + "b" * 5000,
    ],
    ids=["nul", "long-segment", "surrogate", "long-path"],
)
async def test_schema_uris_the_file_system_refuses_are_failed_loads(server, http, schema):
    bad = dict(VALID, **{"$schema": schema})
    status, answer = await post(http, server, json.dumps([VALID, bad, VALID]).encode())
    assert status == 207, answer
    body = json.loads(answer)
    [failed] = body["error"]
    assert failed["context"]["message"] == f"Failed loading schema at {schema}"
    assert str(server.sandbox.settings.db.parent) not in answer.decode()
    assert str(_checkout()) not in answer.decode()  # no local path leaks
    stats, _ = await get_json(http, server, "/sandbox/stats")
    assert stats["events"] == 3 and stats["requests"] == 1


def _checkout():
    from pathlib import Path

    return Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("schema", "loads"),
    [
        (f"{WEB_BASE}/1.3.0", True),
        (f"{WEB_BASE}/1.3.0 ", True),  # the URL parser trims spaces at the end
        (f"{WEB_BASE}/1.3.0\t", True),
        (f"{WEB_BASE}/1.3.0?x=1", True),  # the query is no part of the path
        (f"{WEB_BASE}/1.3.0#frag", True),
        (f"{WEB_BASE}/../base/1.3.0", True),  # dot segments are applied
        (f"/{WEB_BASE}//1.3.0", True),  # path.resolve drops empty segments
        ("/analytics\\product_metrics\\web\\base\\1.3.0", True),  # a file URL's \ is /
        (f"{WEB_BASE}/latest", True),
        (f"{WEB_BASE}/1.3.0.yaml", True),
        (WEB_BASE[1:] + "/1.3.0", False),  # glued onto the base's folder name
        (f"{WEB_BASE}/current", False),  # only current.yaml exists
        (f"{WEB_BASE}/ 1.3.0", False),  # an inner space is percent-encoded: %201.3.0
        (f"{WEB_BASE}/1.3.0/", True),  # path.resolve drops a trailing slash
        (f"{WEB_BASE}/1.3.0/ ", False),  # ...but the URL parser's trim comes after it
        (f"{WEB_BASE}/1%2E3%2E0", False),  # read literally, never decoded
    ],
)
async def test_schema_spellings_load_as_eventgate_loads_them(server, http, schema, loads):
    status, answer = await post(
        http, server, json.dumps(dict(VALID, **{"$schema": schema})).encode()
    )
    if loads:
        assert status == 201, answer
    else:
        assert status == 500, answer
        [failed] = json.loads(answer)["error"]
        assert failed["context"]["message"] == f"Failed loading schema at {schema}"


async def _newest_kinds(http, server) -> set[str]:
    events, _ = await get_json(http, server, "/sandbox/events?limit=1")
    event, _ = await get_json(http, server, f"/sandbox/events/{events['events'][0]['id']}")
    return {f["kind"] for f in event.get("findings") or []}


async def test_reset_forgets_every_event_findings_were_judged_against(make_server, http, tmp_path):
    import sqlite3

    server = await make_server(busy_timeout=0.2)
    step = dict(
        VALID,
        meta=dict(VALID["meta"], id="11111111-2222-4333-8444-555555555555"),
        instrument_name="demo",
        funnel_entry_token="tok",
        funnel_event_sequence_position=1,
    )
    for _ in range(2):
        status, _ = await post(http, server, json.dumps(step).encode())
        assert status == 201
    assert {"duplicate.meta_id", "funnel.repeat"} <= await _newest_kinds(http, server)
    # a write failure, for the counters
    locker = sqlite3.connect(tmp_path / "sandbox.db", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        status, _ = await post(http, server, json.dumps(VALID).encode())
        assert status == 503
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    stats, _ = await get_json(http, server, "/sandbox/stats")
    assert stats["write_failures"] == 1 and stats["writer"]["last_error"]

    async with http.post(server.url + "/sandbox/reset") as resp:
        assert resp.status == 200
    status, _ = await post(http, server, json.dumps(step).encode())
    assert status == 201
    kinds = await _newest_kinds(http, server)
    assert not kinds & {"duplicate.meta_id", "duplicate.event", "funnel.repeat"}
    stats, _ = await get_json(http, server, "/sandbox/stats")
    assert stats["write_failures"] == 0
    assert stats["writer"]["failed_writes"] == 0 and stats["writer"]["last_error"] is None
