"""`q` and `/sandbox/errors` on the inspection API, against a real server and database."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from mpsandbox.query import QUERY_EXAMPLES, QUERY_HELP
from tests.test_inspection_api import event, get, post


async def test_events_q_ands_with_the_other_filters(server, http) -> None:
    await post(
        http,
        server,
        [event(action="click"), event(action="hover"), event(action=42), event(action=None)],
    )
    _, page = await get(http, server, "/sandbox/events?q=" + quote("-is:valid"))
    assert [e["errors_count"] for e in page["events"]] == [1, 1]
    _, page = await get(http, server, "/sandbox/events?q=" + quote("action:click action:hover"))
    assert sorted(e["action"] for e in page["events"]) == ["click", "hover"]
    _, page = await get(
        http, server, "/sandbox/events?verdict=valid&q=" + quote("action:click action:42")
    )
    assert [e["action"] for e in page["events"]] == ["click"]
    _, page = await get(http, server, "/sandbox/events?q=" + quote('"HOVER" since:1h'))
    assert [e["action"] for e in page["events"]] == ["hover"]
    _, page = await get(http, server, "/sandbox/events?q=" + quote("until:1h"))
    assert page["events"] == []
    # The next link keeps q.
    _, page = await get(http, server, "/sandbox/events?limit=1&q=" + quote("has:fill"))
    assert "q=has" in page["next"]
    _, page2 = await get(http, server, page["next"])
    assert page2["events"][0]["id"] < page["events"][0]["id"]


async def test_bad_query_is_a_400_naming_the_problem(server, http) -> None:
    status, body = await get(http, server, "/sandbox/events?q=" + quote("is:valid strem:x"))
    assert status == 400
    assert body["title"] == "bad query" and body["position"] == 9
    assert 'did you mean "stream"' in body["message"] and body["message"] in body["detail"]
    assert body["q"] == "is:valid strem:x"
    for path in ("/sandbox/wait?timeout=0&q=", "/sandbox/errors?q="):
        status, body = await get(http, server, path + quote('"open'))
        assert status == 400 and "unterminated quote" in body["detail"], path


async def test_wait_with_q(server, http) -> None:
    async def later():
        await asyncio.sleep(0.3)
        await post(http, server, [event(action=42), event(action="x"), event(action=43)])

    task = asyncio.create_task(later())
    status, body = await get(http, server, "/sandbox/wait?count=2&timeout=5&q=is:invalid")
    await task
    assert (status, body["count"]) == (200, 2)
    status, body = await get(http, server, "/sandbox/wait?count=3&timeout=0.2&q=is:invalid")
    assert (status, body["count"]) == (408, 2)


async def test_errors_route_groups_and_drills_down(server, http) -> None:
    await post(
        http,
        server,
        [event(action=1), event(action=2), event(action=None), event(), event(meta={"x": 1})],
    )
    await post(http, server, event(**{"$schema": "/analytics/nope/1.0.0"}))
    status, body = await get(http, server, "/sandbox/errors")
    assert status == 200
    groups = body["groups"]
    top = groups[0]
    assert (top["data_path"], top["keyword"], top["count"], top["events"]) == (
        ".action",
        "type",
        3,
        3,
    )
    assert {(g["keyword"], g["detail"]) for g in groups} >= {
        ("required", "stream"),
        ("(error)", "Failed loading schema at /analytics/nope/1.0.0"),
    }
    assert top["first_seen"] <= top["last_seen"]
    _, page = await get(http, server, f"/sandbox/events?q=group:{top['id']}")
    _, everything = await get(http, server, "/sandbox/events")
    first_request = min(e["request_id"] for e in everything["events"])
    expected = [
        e["id"]
        for e in everything["events"]
        if e["request_id"] == first_request and e["idx"] in (0, 1, 2)
    ]
    assert [e["id"] for e in page["events"]] == expected and len(expected) == 3
    # Filters and q narrow the groups.
    _, body = await get(http, server, "/sandbox/errors?q=is:error")
    assert [g["keyword"] for g in body["groups"]] == ["(error)"]
    _, body = await get(http, server, "/sandbox/errors?verdict=valid")
    assert body["groups"] == []
    _, body = await get(http, server, "/sandbox/errors?limit=1")
    assert len(body["groups"]) == 1
    status, _ = await get(http, server, "/sandbox/errors?limit=0")
    assert status == 400
    async with http.post(server.url + "/sandbox/reset") as resp:
        assert resp.status == 200
    _, body = await get(http, server, "/sandbox/errors")
    assert body["groups"] == []


async def test_openapi_documents_q_and_errors(server, http) -> None:
    _, doc = await get(http, server, "/sandbox/openapi.json")
    for path in ("/sandbox/events", "/sandbox/wait", "/sandbox/errors"):
        params = {p["name"]: p for p in doc["paths"][path]["get"]["parameters"]}
        text = params["q"]["description"]
        for syntax, meaning in QUERY_HELP:
            assert f"`{syntax}`: {meaning}" in text, syntax
        for example, _ in QUERY_EXAMPLES:
            assert example in text
    assert "group:ID" in doc["paths"]["/sandbox/errors"]["get"]["summary"]
