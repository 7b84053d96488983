"""Replay every exchange recorded against a real EventGate 1.8.4 and compare the answers.

The server runs as the recorded EventGate was configured: schema bases secondary then
primary, no production fill-ins, a 4 MiB limit, one test event.
"""

from __future__ import annotations

import gzip
import json

import pytest

from tests.conftest import RECORDED, RECORDED_TEST_EVENT


def parse_recorded(name: str) -> tuple[int, str, dict[str, str], bytes]:
    raw = (RECORDED / "responses" / name).read_bytes()
    # skip interim answers such as "HTTP/1.1 100 Continue"
    while raw.startswith(b"HTTP/1.1 1"):
        raw = raw.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in raw else raw.split(b"\n\n", 1)[1]
    sep = b"\r\n\r\n" if b"\r\n\r\n" in raw else b"\n\n"
    head, _, body = raw.partition(sep)
    lines = head.decode().splitlines()
    _, status, reason = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(status), reason, headers, body.strip()


def req(name: str) -> bytes:
    return (RECORDED / "req" / name).read_bytes()


JSON = {"content-type": "application/json"}
# name of the recorded response -> (method, path, headers, body)
CASES = {
    "01_valid_single.txt": ("POST", "/v1/events", JSON, req("valid_web_base.json")),
    "02_invalid_single.txt": ("POST", "/v1/events", JSON, req("invalid_web_base.json")),
    "03_batch_mixed.txt": ("POST", "/v1/events", JSON, req("batch_mixed.json")),
    "04_batch_all_invalid.txt": ("POST", "/v1/events", JSON, req("batch_all_invalid.json")),
    "05_unknown_schema.txt": ("POST", "/v1/events", JSON, req("unknown_schema.json")),
    "06_valid_plus_unknown.txt": (
        "POST",
        "/v1/events",
        JSON,
        req("batch_valid_plus_unknown_schema.json"),
    ),
    "07_missing_schema_fld.txt": ("POST", "/v1/events", JSON, req("missing_schema_field.json")),
    "08_missing_meta_dt.txt": ("POST", "/v1/events", JSON, req("missing_meta_dt.json")),
    "09_latest_uri.txt": ("POST", "/v1/events", JSON, req("latest_uri.json")),
    "10_hasty_invalid.txt": ("POST", "/v1/events?hasty=true", JSON, req("batch_all_invalid.json")),
    "11_empty_body.txt": ("POST", "/v1/events", JSON, b""),
    "12_empty_array.txt": ("POST", "/v1/events", JSON, b"[]"),
    "13_malformed_json.txt": ("POST", "/v1/events", JSON, b'{"$schema": "/x", "meta": '),
    "14_text_plain_beacon.txt": (
        "POST",
        "/v1/events",
        {"content-type": "text/plain;charset=UTF-8"},
        req("valid_web_base.json"),
    ),
    "15_no_content_type.txt": ("POST", "/v1/events", {}, req("valid_web_base.json")),
    "16_form_urlencoded.txt": (
        "POST",
        "/v1/events",
        {"content-type": "application/x-www-form-urlencoded"},
        req("valid_web_base.json"),
    ),
    "17_gzip_body.txt": (
        "POST",
        "/v1/events",
        {**JSON, "content-encoding": "gzip"},
        gzip.compress(req("valid_web_base.json")),
    ),
    "18_json_scalar.txt": ("POST", "/v1/events", JSON, b'"#"'),
    "19_too_large_5mb.txt": (
        "POST",
        "/v1/events",
        JSON,
        b'[{"padding": "' + b"x" * (5 * 1024 * 1024) + b'"}]',
    ),
    "20_test_events_route.txt": ("GET", "/v1/_test/events", {}, b""),
    "21_get_events.txt": ("GET", "/v1/events", {}, b""),
    "22_options_preflight.txt": ("OPTIONS", "/v1/events", {}, b""),
    "23_info_version.txt": ("GET", "/_info", {}, b""),
    "24_spec.txt": ("GET", "/?spec", {}, b""),
    "25_xrequestid_header.txt": (
        "POST",
        "/v1/events",
        {**JSON, "x-request-id": "my-request-id-123"},
        req("invalid_web_base.json"),
    ),
    "26_format_and_coercion.txt": ("POST", "/v1/events", JSON, req("format_and_coercion.json")),
}


def test_every_recorded_exchange_has_a_case():
    recorded = sorted(p.name for p in (RECORDED / "responses").iterdir())
    assert recorded == sorted(CASES)


def shape(value):
    """Keys and container types, recursively: what 'same body shape' means here."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value[:1]]
    return type(value).__name__


def failures(body: dict) -> list[tuple[str, list | str]]:
    out = []
    for kind in ("invalid", "error"):
        for item in body.get(kind, []):
            ctx = item["context"]
            if "errors" in ctx:
                out.append(
                    (item["status"], sorted((e["keyword"], e["dataPath"]) for e in ctx["errors"]))
                )
            else:
                out.append((item["status"], ctx["message"]))
    return out


@pytest.fixture
async def recorded_server(make_server):
    return await make_server(fill_ins=False, test_events=(RECORDED_TEST_EVENT,))


@pytest.mark.parametrize("name", sorted(CASES))
async def test_recorded_exchange(name, recorded_server, http):
    method, path, headers, body = CASES[name]
    status, reason, rec_headers, rec_body = parse_recorded(name)
    async with http.request(
        method, recorded_server.url + path, headers=headers, data=body if method == "POST" else None
    ) as resp:
        got = await resp.read()
        assert (resp.status, resp.reason) == (status, reason)
        for key in (
            "access-control-allow-origin",
            "access-control-allow-headers",
            "access-control-allow-methods",
        ):
            assert resp.headers.get(key) == rec_headers[key]
        if "allow" in rec_headers:
            assert resp.headers.get("allow") == rec_headers["allow"]
    if not rec_body:
        assert got == b""
        return
    if rec_headers.get("content-type", "").startswith("text/html"):
        assert got.decode().strip() == rec_body.decode().strip()
        return
    expected, actual = json.loads(rec_body), json.loads(got)
    if name == "24_spec.txt":
        assert "/v1/events" in actual["paths"] and actual["openapi"].startswith("3.")
        return
    assert shape(actual) == shape(expected)
    if name.endswith(("13_malformed_json.txt", "18_json_scalar.txt", "19_too_large_5mb.txt")):
        assert actual["title"] == expected["title"]
        assert actual["detail"] == expected["detail"]
        return
    if isinstance(expected, dict) and ("invalid" in expected or "error" in expected):
        assert failures(actual) == failures(expected)
        for kind in ("invalid", "error"):
            for got_item, want_item in zip(
                actual.get(kind, []), expected.get(kind, []), strict=True
            ):
                assert got_item["event"] == want_item["event"]
                if "errors" in want_item["context"]:
                    assert got_item["context"]["errors"] == want_item["context"]["errors"]
                    assert got_item["context"]["errorsText"] == want_item["context"]["errorsText"]
    else:
        assert actual == expected


async def test_stored_events_match_what_eventgate_wrote(recorded_server, http):
    """After replaying the whole run, the accepted events equal the devserver's events.json."""
    for name in sorted(CASES):
        method, path, headers, body = CASES[name]
        async with http.request(
            method,
            recorded_server.url + path,
            headers=headers,
            data=body if method == "POST" else None,
        ) as resp:
            await resp.read()
    async with http.get(
        recorded_server.url + "/sandbox/events?verdict=valid&order=asc&limit=100"
    ) as resp:
        rows = (await resp.json())["events"]
    accepted = []
    for row in rows:
        async with http.get(f"{recorded_server.url}/sandbox/events/{row['id']}") as resp:
            accepted.append((await resp.json())["accepted"])
    want = [
        json.loads(line) for line in (RECORDED / "events.json").read_text().splitlines() if line
    ]
    assert accepted == want


# --- corners found by replaying a recorded EventGate run -----------------------------------


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"[NaN]", "Unexpected token 'N', \"[NaN]\" is not valid JSON"),
        (b'{"x": Infinity}', 'Unexpected token \'I\', "{"x": Infinity}" is not valid JSON'),
        (b"[-Infinity]", "No number after minus sign in JSON at position 2"),
        # a lone surrogate sends the body down the standard library's path, not orjson's
        (
            b'{"a": "\\ud83d", "b": NaN}',
            'Unexpected token \'N\', "{"a": "\\ud83d", "b": NaN}" is not valid JSON',
        ),
    ],
)
@pytest.mark.parametrize("content_type", ["application/json", "text/plain;charset=UTF-8"])
async def test_nan_and_infinity_literals_are_refused_like_json_parse(
    server, http, body, detail, content_type
):
    async with http.post(
        server.url + "/v1/events", data=body, headers={"content-type": content_type}
    ) as resp:
        problem = await resp.json()
        assert (resp.status, resp.reason) == (500, "Internal Server Error")
    assert problem == {
        "status": 500,
        "type": "internal_error",
        "title": "SyntaxError",
        "detail": detail,
        "method": "POST",
        "uri": "/v1/events",
    }
    async with http.get(server.url + "/sandbox/stats") as resp:
        stats = await resp.json()
    assert stats["events"] == 0 and stats["requests"] == 1  # the request is kept, no event


async def test_a_trailing_slash_reaches_every_intake_route(make_server, http):
    from tests.test_bad_input import VALID

    server = await make_server(intake_paths=("/v1/events", "/evt-103e/v2/events"))
    for path in ("/v1/events/", "/evt-103e/v2/events/"):
        async with http.post(server.url + path, json=VALID) as resp:
            assert resp.status == 201, path
        async with http.options(server.url + path) as resp:
            assert (resp.status, await resp.text()) == (200, "POST")
    async with http.get(server.url + "/v1/_test/events/") as resp:
        assert resp.status == 201
    async with http.get(server.url + "/_info/") as resp:
        assert await resp.json() == {"version": "1.8.4"}
    async with http.get(server.url + "/sandbox/requests") as resp:
        paths = sorted(r["path"] for r in (await resp.json())["requests"])
    assert paths == ["/evt-103e/v2/events/", "/v1/_test/events/", "/v1/events/"]
