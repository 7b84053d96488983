"""The inspection API, against a real server and a real database."""

from __future__ import annotations

import asyncio
import json
import uuid

from mpsandbox.intake.openapi import sandbox_openapi
from tests.test_bad_input import VALID


def event(**changes):
    e = json.loads(json.dumps(VALID))
    e.update(changes)
    return e


async def post(http, server, body, **kw):
    async with http.post(server.url + "/v1/events", json=body, **kw) as resp:
        return resp.status, await resp.read()


async def get(http, server, path):
    async with http.get(server.url + path) as resp:
        return resp.status, await resp.json()


async def test_list_filter_and_detail(server, http):
    await post(
        http, server, [event(action="click"), event(action="hover", meta={"stream": "other"})]
    )
    await post(http, server, event(action=42))
    status, page = await get(http, server, "/sandbox/events")
    assert status == 200 and len(page["events"]) == 3
    assert page["events"][0]["verdict"] == "invalid"  # newest first
    _, page = await get(http, server, "/sandbox/events?verdict=valid&action=hover")
    assert [e["stream"] for e in page["events"]] == ["other"]
    _, page = await get(http, server, "/sandbox/events?stream=product_metrics.web_base")
    assert len(page["events"]) == 2
    _, detail = await get(http, server, f"/sandbox/events/{page['events'][0]['id']}")
    assert detail["errors"][0]["keyword"] == "type"
    assert detail["request"]["method"] == "POST"
    # production fill-ins are recorded and the accepted event carries them
    assert "meta.id" in detail["fills"] and "meta.request_id" in detail["fills"]
    assert detail["accepted"]["meta"]["id"] == detail["fills"]["meta.id"]["value"]
    # filled ids are time-ordered UUIDs (version 7), so they index cheaply and sort by time
    filled = uuid.UUID(detail["fills"]["meta.id"]["value"])
    assert filled.version == 7
    assert abs(int(filled.hex[:12], 16) / 1000 - detail["received_at"]) < 5
    assert "id" not in detail["event"]["meta"]


async def test_cursor_pagination(server, http):
    await post(http, server, [event(action=f"a{i}") for i in range(25)])
    seen = []
    path = "/sandbox/events?limit=10"
    while path:
        _, page = await get(http, server, path)
        seen += [e["action"] for e in page["events"]]
        path = page["next"]
    assert seen == [f"a{i}" for i in reversed(range(25))]


async def test_wait_long_polls_until_events_arrive(server, http):
    async def later():
        await asyncio.sleep(0.3)
        await post(http, server, [event(action="late")] * 2)

    task = asyncio.create_task(later())
    status, body = await get(http, server, "/sandbox/wait?action=late&count=2&timeout=5")
    await task
    assert status == 200 and body["count"] == 2
    status, body = await get(http, server, "/sandbox/wait?action=never&timeout=0.2")
    assert status == 408 and body["count"] == 0


async def test_reset_and_stats(server, http):
    await post(http, server, [event(), event(action=1)])
    _, stats = await get(http, server, "/sandbox/stats")
    assert stats["by_verdict"]["valid"] == 1 and stats["by_verdict"]["invalid"] == 1
    async with http.post(server.url + "/sandbox/reset") as resp:
        assert resp.status == 200
    _, page = await get(http, server, "/sandbox/events")
    assert page["events"] == []


async def test_resolve_probe(server, http):
    _, found = await get(
        http, server, "/sandbox/schemas/resolve?uri=/analytics/product_metrics/web/base/latest"
    )
    assert found["found"] and found["version"] == "1.3.0"
    _, missing = await get(
        http, server, "/sandbox/schemas/resolve?uri=/analytics/product_metrics/web/base/2.1.0"
    )
    assert not missing["found"] and missing["tried"]
    assert "1.3.0" in json.dumps(missing["available_versions"])


async def test_readyz_and_bad_params(server, http):
    status, body = await get(http, server, "/readyz")
    assert status == 200 and body["ready"]
    status, body = await get(http, server, "/sandbox/events?limit=abc")
    assert status == 400 and "limit" in body["detail"]
    status, body = await get(http, server, "/sandbox/events?verdict=maybe")
    assert status == 400


async def test_every_route_is_in_the_openapi_document(server, http):
    _, doc = await get(http, server, "/sandbox/openapi.json")
    assert doc == json.loads(json.dumps(sandbox_openapi(server.runner.app)))
    for route in server.runner.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if route.method == "HEAD":
            continue
        if path != "/" and path.endswith("/"):
            path = path.rstrip("/")  # EventGate's routes also answer with a trailing slash
        assert path in doc["paths"], path
        assert route.method.lower() in doc["paths"][path], (route.method, path)


async def test_extra_intake_paths(make_server, http):
    server = await make_server(intake_paths=("/v1/events", "/evt-103e/v2/events"))
    async with http.post(server.url + "/evt-103e/v2/events?hasty=true", json=[event()]) as resp:
        assert (resp.status, resp.reason) == (202, "1 events hastily received.")
    status, _ = await get(http, server, "/sandbox/wait?count=1&timeout=5")
    assert status == 200
