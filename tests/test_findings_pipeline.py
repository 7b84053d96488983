"""Findings through the real intake: stored, filterable, and judged with local overrides."""

from __future__ import annotations

import json

from mpsandbox import jsonio

STREAM = "product_metrics.web_base"
SESSION = "fffffffe" + "0" * 12  # 0.99999...: out of sample at 0.5, in at 1.0 (both rules)
EVENT = {
    "$schema": "/analytics/product_metrics/web/base/1.3.0",
    "meta": {"stream": STREAM, "domain": "en.wikipedia.org"},
    "dt": "2024-10-01T11:59:59.123Z",
    "action": "click",
    "agent": {"client_platform": "mediawiki_js", "client_platform_family": "desktop_browser"},
    "performer": {"is_logged_in": False, "session_id": SESSION},
}


async def post(http, server, body):
    async with http.post(
        server.url + "/v1/events",
        data=jsonio.dumps(body),
        headers={"Content-Type": "application/json"},
    ) as resp:
        return resp.status


async def matching(http, server, q):
    async with http.get(server.url + "/sandbox/events", params={"q": q}) as resp:
        assert resp.status == 200, await resp.text()
        return (await resp.json())["events"]


async def test_sampling_findings_follow_the_served_rate(make_server, http, tmp_path):
    config = tmp_path / "streams.json"
    config.write_text(
        json.dumps(
            {
                STREAM: {
                    "schema_title": "analytics/product_metrics/web/base",
                    "sample": {"unit": "session", "rate": 0.5},
                }
            }
        )
    )
    server = await make_server(stream_config=str(config))
    assert await post(http, server, EVENT) == 201
    [out] = await matching(http, server, "finding:sampling.out_of_sample")
    assert out["findings_count"] >= 1
    async with http.get(server.url + f"/sandbox/events/{out['id']}") as resp:
        detail = await resp.json()
    [finding] = [f for f in detail["findings"] if f["kind"] == "sampling.out_of_sample"]
    assert finding["facts"]["rate"] == 0.5 and finding["severity"] == "warning"

    async with http.put(
        server.url + "/sandbox/overrides",
        json={"kind": "sample_rate", "key": STREAM, "value": 1.0},
    ) as resp:
        assert resp.status == 200, await resp.text()
    second = {**EVENT, "action": "after-override"}
    assert await post(http, server, second) == 201
    assert len(await matching(http, server, "finding:sampling.out_of_sample")) == 1
    assert len(await matching(http, server, "action:after-override -finding:sampling")) == 0
    assert len(await matching(http, server, "action:after-override finding:sampling")) == 1


async def test_duplicates_are_found_across_requests_and_filterable(server, http):
    event = {
        "$schema": "/mpsandbox/smoke_test/1.0.0",
        "meta": {"stream": "mpsandbox.smoke_test", "id": "same-id-1"},
        "message": "hello",
    }
    assert await post(http, server, event) == 201
    assert await post(http, server, [event, event]) == 201
    dupes = await matching(http, server, "finding:duplicate")
    assert len(dupes) == 2
    assert len(await matching(http, server, "has:finding")) == 2
    assert len(await matching(http, server, "-has:finding")) == 1


def funnel_step(position: int, second: int) -> dict:
    return {
        **EVENT,
        "performer": {"is_logged_in": False, "session_id": "0" * 20},
        "instrument_name": "checkout",
        "funnel_entry_token": "token-1",
        "funnel_event_sequence_position": position,
        "dt": f"2024-10-01T12:00:{second:02d}.000Z",
    }


async def test_a_funnel_gap_filled_by_a_late_step_is_retracted(server, http):
    # Arrival order 1, 3, 2; dt order 1, 2, 3: no gap once every beacon is in.
    assert await post(http, server, funnel_step(1, 1)) == 201
    assert await post(http, server, funnel_step(3, 3)) == 201
    [gapped] = await matching(http, server, "finding:funnel.gap")
    assert await post(http, server, funnel_step(2, 2)) == 201
    assert await matching(http, server, "finding:funnel") == []
    async with http.get(server.url + f"/sandbox/events/{gapped['id']}") as resp:
        detail = await resp.json()
    assert not [f for f in detail["findings"] if f["kind"].startswith("funnel.")]
    # A real gap stays: step 5 with no 4, and a repeat is a repeat.
    assert await post(http, server, [funnel_step(5, 5), funnel_step(2, 6)]) == 201
    kinds = {
        f["kind"]
        for e in await matching(http, server, "finding:funnel")
        for f in (await (await http.get(server.url + f"/sandbox/events/{e['id']}")).json())[
            "findings"
        ]
        if f["kind"].startswith("funnel.")
    }
    assert kinds == {"funnel.gap", "funnel.repeat"}
