"""A real browser: a page on another local origin sends events with sendBeacon and with fetch
(CORS), and a hostile page can neither read the sandbox, nor reset it, nor reach it through a
rebound name."""

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


def headless_flags(tmp_path) -> list[str]:
    """Headless Chromium on a closed machine: no background traffic, a fresh profile."""
    return [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]


@pytest.fixture
def chromium():
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI (scripts/ensure-chromium.sh installs it)")
        pytest.skip("chromium not installed (apt-get install chromium)")
    return CHROMIUM


async def run_page(chromium, tmp_path, page: str, *flags: str) -> tuple[bytes, int]:
    """Serve ``page`` from a loopback origin of its own and let headless Chromium run it;
    the DOM it leaves, and the page's port."""

    async def serve_page(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    app = web.Application()
    app.router.add_get("/page.html", serve_page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    origin_port = site._server.sockets[0].getsockname()[1]
    host = "evil.example" if any("evil.example" in f for f in flags) else "127.0.0.1"
    try:
        proc = await asyncio.create_subprocess_exec(
            chromium,
            *headless_flags(tmp_path),
            "--virtual-time-budget=5000",
            *flags,
            "--dump-dom",
            f"http://{host}:{origin_port}/page.html",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        dom, _ = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        await runner.cleanup()
    return dom, origin_port


async def test_send_beacon_and_cors_fetch_are_stored(chromium, server, http, tmp_path):
    beacon = dict(VALID, action="beacon")
    fetched = dict(VALID, action="fetch")
    page = PAGE % {
        "intake": json.dumps(server.url + "/v1/events"),
        "beacon": json.dumps(beacon),
        "fetch": json.dumps(fetched),
    }

    dom, origin_port = await run_page(chromium, tmp_path, page)
    assert f":{origin_port}" not in server.url  # another origin
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


ATTACK = """<!DOCTYPE html><html><body><pre id=out>running</pre><script>
const sandbox = %(sandbox)s;
const rebound = %(rebound)s;
const log = [];
async function attempt(name, fn) {
  try { log.push(name + ':' + await fn()); } catch (e) { log.push(name + ':blocked'); }
}
(async () => {
  await attempt('read', async () => {
    const text = await (await fetch(sandbox + '/sandbox/requests/1')).text();
    return text.includes('enwikiSession') ? 'cookie-read' : 'readable';
  });
  await attempt('reset', async () => {
    await fetch(sandbox + '/sandbox/reset', {method: 'POST', mode: 'no-cors',
      headers: {'content-type': 'text/plain'}, body: '{}'});
    return 'sent';
  });
  await attempt('rebound-post', async () => {
    await fetch(rebound + '/v1/events', {method: 'POST', mode: 'no-cors',
      headers: {'content-type': 'text/plain'}, body: %(event)s});
    return 'sent';
  });
  await attempt('rebound-chaos', async () => (await fetch(rebound + '/sandbox/chaos', {
    method: 'PUT', headers: {'content-type': 'text/plain'}, body: '{"spec": "500:1"}'})).status);
  document.getElementById('out').textContent = 'done ' + log.join(' ');
})();
</script></body></html>"""


async def test_a_hostile_page_cannot_read_reset_or_rebind(chromium, server, http, tmp_path):
    """A page on another loopback origin, and one on a name rebound to 127.0.0.1."""
    cookie = {"Cookie": "enwikiSession=0123456789abcdef"}
    async with http.post(server.url + "/v1/events", json=VALID, headers=cookie) as resp:
        assert resp.status == 201
    port = server.url.rsplit(":", 1)[1]
    page = ATTACK % {
        "sandbox": json.dumps(server.url),
        "rebound": json.dumps(f"http://evil.example:{port}"),
        "event": json.dumps(json.dumps(dict(VALID, action="rebound"))),
    }
    dom, _ = await run_page(
        chromium, tmp_path, page, "--host-resolver-rules=MAP evil.example 127.0.0.1"
    )
    assert b"done " in dom, dom[-500:]
    results = dict(
        item.split(":", 1) for item in dom.split(b"done ", 1)[1].split(b"<")[0].decode().split()
    )
    assert results["read"] == "blocked"  # no CORS on /sandbox/*: the answer is unreadable
    assert results["rebound-chaos"] in ("blocked", "403")
    async with http.get(server.url + "/sandbox/events") as resp:
        rows = (await resp.json())["events"]
    assert [r["action"] for r in rows] == ["click"]  # not reset, nothing from the rebound name
    async with http.get(server.url + "/sandbox/chaos") as resp:
        assert (await resp.json())["on"] is False
    async with http.get(server.url + "/sandbox/requests/1") as resp:
        assert "0123456789abcdef" not in await resp.text()  # and the cookie is not stored


REBIND = """<!DOCTYPE html><html><body><pre id=out>running</pre><script>
(async () => {
  let result = 'never';
  for (let i = 0; i < 20000; i++) {
    try {
      const r = await fetch('/sandbox/chaos', {method: 'PUT',
        headers: {'content-type': 'application/json'}, body: '{"spec": "500:1"}'});
      if ((r.headers.get('server') || '').startsWith('mpsandbox')) { result = r.status; break; }
    } catch (e) { /* between the two servers: nothing listens */ }
  }
  document.getElementById('out').textContent = 'rebound:' + result + ':end';
})();
</script></body></html>"""


async def test_a_rebound_name_cannot_switch_chaos_on(chromium, make_server, http, tmp_path):
    """DNS rebinding as it happens: the page comes from evil.example, whose address then
    turns out to be the sandbox's; the page's same-origin PUT arrives with Host
    evil.example (and its own Origin), which the host check refuses."""
    hit = asyncio.Event()

    async def serve_page(request: web.Request) -> web.Response:
        return web.Response(text=REBIND, content_type="text/html")

    async def first_put(request: web.Request) -> web.Response:
        hit.set()
        return web.Response(status=404, text="not yet the sandbox")

    app = web.Application()
    app.router.add_get("/page.html", serve_page)
    app.router.add_put("/sandbox/chaos", first_put)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    proc = await asyncio.create_subprocess_exec(
        chromium,
        *headless_flags(tmp_path),
        "--host-resolver-rules=MAP evil.example 127.0.0.1",
        "--virtual-time-budget=20000",
        "--dump-dom",
        f"http://evil.example:{port}/page.html",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await asyncio.wait_for(hit.wait(), 60)
        await runner.cleanup()  # "evil.example" now resolves to the sandbox's port
        server = await make_server(port=port)
        dom, _ = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await runner.cleanup()
    assert b"rebound:403:end" in dom, dom[-300:]
    async with http.get(server.url + "/sandbox/chaos") as resp:
        assert (await resp.json())["on"] is False
