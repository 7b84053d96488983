"""Nothing exposed: the host check, the origin check, CORS only where the real servers send
it, and secrets redacted at capture (docs/security.md)."""

from __future__ import annotations

import asyncio
import json

import pytest
from yarl import URL

from mpsandbox.config import Settings, from_environment
from mpsandbox.fixtures.formats import FixtureRequest
from mpsandbox.fixtures.replay import HttpTarget, ReplayOptions, replay_async
from mpsandbox.store import StoreReader
from tests.test_bad_input import VALID

COOKIE = "enwikiSession=0123456789abcdef0123456789abcdef; enwikiUserID=42"


def port_of(server) -> int:
    return URL(server.url).port


async def status_of(http, method, url, **kw) -> tuple[int, str, dict]:
    async with http.request(method, url, **kw) as resp:
        return resp.status, await resp.text(), {k.lower(): v for k, v in resp.headers.items()}


async def event_count(http, server) -> int:
    async with http.get(server.url + "/sandbox/stats") as resp:
        return (await resp.json())["events"]


# --- host check ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "localhost:{port}",
        "LOCALHOST:{port}",
        "localhost.",
        "dev.localhost:{port}",
        "127.0.0.1:{port}",
        "127.0.0.1",
        "10.0.2.2:{port}",
        "192.168.1.20",
        "[::1]:{port}",
        "[::1]",
        "0.0.0.0:{port}",
        "host.docker.internal:{port}",  # a dev wiki in a container
    ],
)
async def test_loopback_names_and_ip_literals_are_served(server, http, host):
    host = host.format(port=port_of(server))
    status, _, _ = await status_of(http, "GET", server.url + "/readyz", headers={"Host": host})
    assert status == 200


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:{port}", "localhost.evil.example", "[::1", "x:y"]
)
async def test_any_other_host_is_refused_with_one_line_naming_the_flag(server, http, host):
    host = host.format(port=port_of(server))
    for method, path in (("GET", "/readyz"), ("GET", "/sandbox/events"), ("GET", "/nowhere")):
        status, body, _ = await status_of(http, method, server.url + path, headers={"Host": host})
        assert status == 403, (host, path)
        assert body.count("\n") == 1 and "--allowed-host" in body


async def test_rebound_host_cannot_post_events_or_switch_chaos_on(server, http):
    evil = {"Host": f"evil.example:{port_of(server)}"}
    status, _, _ = await status_of(
        http, "POST", server.url + "/v1/events", json=VALID, headers=evil
    )
    assert status == 403
    status, _, _ = await status_of(
        http, "PUT", server.url + "/sandbox/chaos", json={"spec": "500:1"}, headers=evil
    )
    assert status == 403
    async with http.get(server.url + "/sandbox/chaos") as resp:
        assert (await resp.json())["on"] is False
    assert await event_count(http, server) == 0


async def test_allowed_hosts_add_names_and_dotted_names_add_subdomains(make_server, http):
    server = await make_server(allowed_hosts=("devbox.test", ".wiki.test"))
    for host, want in [
        ("devbox.test:8192", 200),
        ("wiki.test", 200),
        ("en.wiki.test", 200),
        ("sub.devbox.test", 403),
        ("other.test", 403),
    ]:
        status, _, _ = await status_of(http, "GET", server.url + "/readyz", headers={"Host": host})
        assert status == want, host


async def test_a_request_without_host_header_is_served(server):
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(server))
    writer.write(b"GET /readyz HTTP/1.0\r\n\r\n")
    await writer.drain()
    head = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    assert head.split()[1] == b"200"


def test_allowed_hosts_from_the_environment_space_or_comma_separated(monkeypatch):
    monkeypatch.setenv("MPSANDBOX_ALLOWED_HOSTS", "a.test, b.test  .c.test")
    assert from_environment(Settings()).allowed_hosts == ("a.test", "b.test", ".c.test")


# --- CORS ---------------------------------------------------------------------------------


async def test_cors_only_where_the_real_servers_send_it(make_server, http):
    server = await make_server(intake_paths=("/v1/events", "/evt-103e/v2/events"))
    origin = {"Origin": "http://127.0.0.1:1"}
    posted = [
        ("POST", "/v1/events"),
        ("POST", "/v1/events/"),
        ("POST", "/evt-103e/v2/events"),
        ("POST", "/evt-103e/v2/events/"),
    ]
    for method, path in [*posted, ("GET", "/v1/_test/events"), ("GET", "/v1/_test/events/")]:
        _, _, headers = await status_of(http, method, server.url + path, json=VALID, headers=origin)
        assert headers.get("access-control-allow-origin") == "*", path
        assert headers["access-control-allow-methods"] == "post"
    for path in ("/v1/events", "/v1/events/", "/evt-103e/v2/events/"):
        preflight = {
            **origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        }
        status, body, headers = await status_of(
            http, "OPTIONS", server.url + path, headers=preflight
        )
        assert (status, body, headers["allow"]) == (200, "POST", "POST"), path
        assert headers["access-control-allow-origin"] == "*"
        assert headers["access-control-allow-headers"] == "accept, x-requested-with, content-type"
    for path in (
        "/sandbox/events",
        "/sandbox/requests/1",
        "/sandbox/stats",
        "/sandbox/openapi.json",
        "/sandbox/nowhere",
        "/readyz",
        "/w/api.php?action=streamconfigs&format=json",
    ):
        _, _, headers = await status_of(http, "GET", server.url + path, headers=origin)
        assert not any(k.startswith("access-control-") for k in headers), path
    # Test Kitchen's devserver config says cors: "*"; MediaWiki's api.php with origin=*.
    _, _, headers = await status_of(http, "GET", server.url + "/api/v1/experiments")
    assert headers["access-control-allow-origin"] == "*"
    _, _, headers = await status_of(
        http, "GET", server.url + "/w/api.php?action=streamconfigs&format=json&origin=*"
    )
    assert headers["access-control-allow-origin"] == "*"


# --- origin check -------------------------------------------------------------------------


async def test_foreign_origins_cannot_change_state_whatever_the_content_type(server, http):
    await status_of(http, "POST", server.url + "/v1/events", json=VALID)
    assert await event_count(http, server) == 1
    foreign = [
        {"Origin": "http://127.0.0.1:1"},
        {"Origin": "null"},
        {"Origin": server.url.replace("127.0.0.1", "localhost")},
        {"Sec-Fetch-Site": "cross-site"},
    ]
    for headers in foreign:
        for content_type in ("text/plain", "application/json", "application/x-www-form-urlencoded"):
            status, body, _ = await status_of(
                http,
                "POST",
                server.url + "/sandbox/reset",
                data=b"{}",
                headers={**headers, "Content-Type": content_type},
            )
            assert status == 403, (headers, content_type)
            assert body.startswith("Blocked request")
        status, _, _ = await status_of(
            http, "PUT", server.url + "/sandbox/chaos", json={"spec": "500:1"}, headers=headers
        )
        assert status == 403
        status, _, _ = await status_of(
            http,
            "PUT",
            server.url + "/sandbox/overrides",
            json={"kind": "flag", "key": "x", "value": True},
            headers=headers,
        )
        assert status == 403
    assert await event_count(http, server) == 1
    async with http.get(server.url + "/sandbox/chaos") as resp:
        assert (await resp.json())["on"] is False


async def test_own_origin_scripts_and_the_intake_work_as_before(server, http):
    for headers in ({}, {"Origin": server.url}, {"Sec-Fetch-Site": "same-origin"}):
        status, _, _ = await status_of(
            http, "POST", server.url + "/v1/events", json=VALID, headers=headers
        )
        assert status == 201
    status, _, _ = await status_of(
        http,
        "POST",
        server.url + "/v1/events",
        data=json.dumps(VALID),
        headers={"Origin": "http://127.0.0.1:1", "Content-Type": "text/plain"},
    )
    assert status == 201  # a dev wiki on any origin keeps posting
    assert await event_count(http, server) == 4
    own = server.url.replace("127.0.0.1", "localhost")
    status, _, _ = await status_of(
        http,
        "POST",
        server.url + "/sandbox/reset",
        headers={"Origin": own, "Host": URL(own).raw_authority},
    )
    assert status == 200
    assert await event_count(http, server) == 0


# --- secrets ------------------------------------------------------------------------------


async def stored_headers(http, server) -> list[dict[str, str]]:
    async with http.get(server.url + "/sandbox/requests?limit=100") as resp:
        listed = (await resp.json())["requests"]
    out = []
    for row in sorted(listed, key=lambda r: r["id"]):
        async with http.get(f"{server.url}/sandbox/requests/{row['id']}") as resp:
            text = await resp.text()
        out.append({k.lower(): v for k, v in json.loads(text)["headers"]})
        assert "0123456789abcdef" not in text or server.sandbox.settings.keep_secrets
    return out


async def test_secret_headers_are_stored_as_a_marker_with_their_length(server, http):
    secrets = {
        "Cookie": COOKIE,
        "Authorization": "Bearer 0123456789abcdef",
        "Proxy-Authorization": "Basic 0123456789abcdef",
        "Set-Cookie": "a=0123456789abcdef",
    }
    await status_of(http, "POST", server.url + "/v1/events", json=VALID, headers=secrets)
    await status_of(http, "GET", server.url + "/v1/_test/events", headers=secrets)
    await status_of(http, "POST", server.url + "/v1/events", data=b"{", headers=secrets)
    await status_of(http, "PUT", server.url + "/sandbox/chaos", json={"spec": "latency:1ms"})
    await status_of(http, "POST", server.url + "/v1/events", json=VALID, headers=secrets)
    stored = await stored_headers(http, server)
    assert len(stored) == 4
    for headers in stored:
        for name, value in secrets.items():
            assert headers[name.lower()] == f"[redacted: {len(value)} bytes]"
    with StoreReader(server.sandbox.settings.db) as reader:
        raw = json.dumps(list(reader.iter_requests()), default=str)
    assert "0123456789abcdef" not in raw


async def test_keep_secrets_stores_them_as_received(make_server, http):
    server = await make_server(keep_secrets=True)
    await status_of(http, "POST", server.url + "/v1/events", json=VALID, headers={"Cookie": COOKIE})
    (headers,) = await stored_headers(http, server)
    assert headers["cookie"] == COOKIE


async def test_replay_never_sends_a_marker_as_a_credential(make_server, http):
    first = await make_server()
    await status_of(http, "POST", first.url + "/v1/events", json=VALID, headers={"Cookie": COOKIE})
    with StoreReader(first.sandbox.settings.db) as reader:
        (row,) = list(reader.iter_requests())
    request = FixtureRequest(
        row["method"], row["path"], row["query"], [tuple(h) for h in row["headers"]], row["body"]
    )
    assert ("Cookie", f"[redacted: {len(COOKIE)} bytes]") in request.headers
    second = await make_server(keep_secrets=True, db=first.sandbox.settings.db.with_name("2.db"))
    target = HttpTarget(second.url, timeout=10, concurrency=1)
    progress = await replay_async([request], target, ReplayOptions(all_headers=True))
    assert progress.ok
    (headers,) = await stored_headers(http, second)
    assert "cookie" not in headers and headers["content-type"].startswith("application/json")
