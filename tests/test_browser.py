"""A real browser on another local origin sends events with sendBeacon and with fetch (CORS)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil

import pytest
from aiohttp import web

from tests.test_bad_input import VALID

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.browser

PAGE = """<!DOCTYPE html><html><body><pre id=out>running</pre><script>
const intake = %(intake)s;
const beaconEvent = %(beacon)s;
const fetchEvent = %(fetch)s;
const queued = navigator.sendBeacon(intake, JSON.stringify([beaconEvent]));
fetch(intake, {method: 'POST', body: JSON.stringify(fetchEvent),
               headers: {'content-type': 'application/json'}})
  .then(r => { document.getElementById('out').textContent = 'beacon:' + queued + ' fetch:' + r.status; })
  .catch(e => { document.getElementById('out').textContent = 'beacon:' + queued + ' fetch-error:' + e; });
</script></body></html>"""


@pytest.fixture
def chromium():
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI (scripts/ensure-chromium.sh installs it)")
        pytest.skip("chromium not installed (apt-get install chromium)")
    return CHROMIUM


async def test_send_beacon_and_cors_fetch_are_stored(chromium, server, http, tmp_path):
    beacon = dict(VALID, action="beacon")
    fetched = dict(VALID, action="fetch")
    page = PAGE % {
        "intake": json.dumps(server.url + "/v1/events"),
        "beacon": json.dumps(beacon),
        "fetch": json.dumps(fetched),
    }

    async def serve_page(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    app = web.Application()
    app.router.add_get("/page.html", serve_page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    origin_port = site._server.sockets[0].getsockname()[1]
    assert f":{origin_port}" not in server.url  # another origin
    try:
        proc = await asyncio.create_subprocess_exec(
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            f"http://127.0.0.1:{origin_port}/page.html",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        dom, _ = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        await runner.cleanup()
    assert b"fetch:201" in dom, dom[-500:]
    async with http.get(server.url + "/sandbox/wait?count=2&timeout=10") as resp:
        assert resp.status == 200
    async with http.get(server.url + "/sandbox/events?order=asc") as resp:
        rows = (await resp.json())["events"]
    by_action = {}
    for row in rows:
        async with http.get(f"{server.url}/sandbox/events/{row['id']}") as resp:
            detail = await resp.json()
        headers = {k.lower(): v for k, v in detail["request"]["headers"]}
        by_action[row["action"]] = (
            row["verdict"],
            headers.get("content-type"),
            headers.get("origin"),
        )
    assert by_action["beacon"][0] == "valid" and by_action["beacon"][1].startswith("text/plain")
    assert by_action["fetch"] == ("valid", "application/json", f"http://127.0.0.1:{origin_port}")
