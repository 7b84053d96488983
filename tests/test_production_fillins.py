"""Which production fill-ins an event gets, as eventgate-wikimedia writes them: only once
its schema is loaded (they depend on what the schema declares), and http.client_ip only
from X-Client-IP, never from X-Forwarded-For or the TCP peer."""

from __future__ import annotations

import json

from tests.test_legacy_beacons import api, legacy_shaped_eas


async def post(http, server, event, headers=None):
    async with http.post(server.url + "/v1/events", json=event, headers=headers or {}) as resp:
        return resp.status


async def newest(http, server) -> dict:
    (summary,) = (await api(http, server, "/sandbox/events?limit=1"))["events"]
    return await api(http, server, f"/sandbox/events/{summary['id']}")


async def test_client_ip_comes_from_x_client_ip_only(server, http):
    event = legacy_shaped_eas("ready")
    assert await post(http, server, event) == 201
    detail = await newest(http, server)
    assert "http.client_ip" not in detail["fills"]  # not the TCP peer (127.0.0.1)
    assert "http.request_headers.user-agent" in detail["fills"]

    assert await post(http, server, event, {"X-Forwarded-For": "203.0.113.9, 10.0.0.1"}) == 201
    assert "http.client_ip" not in (await newest(http, server))["fills"]

    assert await post(http, server, event, {"X-Client-IP": "198.51.100.7"}) == 201
    detail = await newest(http, server)
    assert detail["fills"]["http.client_ip"] == {"value": "198.51.100.7", "by": "fill"}


async def test_no_fill_ins_for_an_event_whose_schema_cannot_be_loaded(server, http):
    invalid = legacy_shaped_eas("ready")
    invalid["event"]["page_id"] = "not a number"
    assert await post(http, server, invalid) == 400
    detail = await newest(http, server)
    assert detail["verdict"] == "invalid"
    assert {"meta.id", "meta.dt", "meta.request_id"} <= set(detail["fills"])

    missing = json.loads(json.dumps(invalid))
    missing["$schema"] = "/analytics/legacy/nosuchschema/1.0.0"
    assert await post(http, server, missing) == 500  # EventGate: every event errored
    detail = await newest(http, server)
    assert detail["verdict"] == "error" and detail["message"].startswith("Failed loading schema")
    assert detail["fills"] == {}
    assert "id" not in detail["event"]["meta"] and "id" not in detail["accepted"]["meta"]


async def test_fill_ins_written_into_the_parsed_event_are_taken_out_before_it_is_stored(
    server, http
):
    """The intake parses a body once and writes the fill-ins into the events it parsed: the
    stored event is still exactly what was received (key order, a ``null`` parent the
    fill-ins replaced), while the answer echoes the event as accepted, fill-ins included."""
    valid = legacy_shaped_eas("ready")
    invalid = legacy_shaped_eas("ready")
    invalid["event"]["page_id"] = "not a number"
    invalid["http"] = None  # fill-ins write http.request_headers.user-agent through it
    invalid = {"meta": invalid.pop("meta"), **invalid}  # not the schema's key order
    sent = [valid, invalid]
    body = json.dumps(sent, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "one-parse/1.0"}
    async with http.post(server.url + "/v1/events", data=body, headers=headers) as resp:
        assert resp.status == 207
        answer = await resp.json()
    (echoed,) = answer["invalid"]

    summaries = (await api(http, server, "/sandbox/events?limit=2"))["events"]
    details = [await api(http, server, f"/sandbox/events/{s['id']}") for s in summaries]
    details.sort(key=lambda d: d["verdict"] == "invalid")
    for detail, event in zip(details, sent, strict=True):
        assert detail["event"] == event
        assert json.dumps(detail["event"]) == json.dumps(event)  # same keys, same order
        fills = detail["fills"]
        assert {"meta.id", "meta.dt", "meta.request_id"} <= set(fills)
        assert fills["http.request_headers.user-agent"]["value"] == "one-parse/1.0"
        accepted = detail["accepted"]
        assert accepted["meta"]["id"] == fills["meta.id"]["value"]
        assert accepted["http"] == {"request_headers": {"user-agent": "one-parse/1.0"}}
    assert details[1]["event"]["http"] is None and "id" not in details[1]["event"]["meta"]
    assert echoed["event"] == details[1]["accepted"]
    assert echoed["event"]["meta"]["id"] == details[1]["fills"]["meta.id"]["value"]
