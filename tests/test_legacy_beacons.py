"""A dev wiki's three kinds of EventLogging traffic, through a real server, byte for byte:
sendBeacon'd Event Platform events (one JSON object, text/plain), legacy beacons (the
capsule in the query string, empty body) from a browser and from PHP by GET and POST, and
legacy-shaped Event Platform events (EditAttemptStep as /analytics/legacy/editattemptstep).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from urllib.parse import quote

import pytest

from mpsandbox import fieldmap
from mpsandbox.store import StoreReader
from mpsandbox.store.migrations import MIGRATIONS, apply_migrations
from tests.test_bad_input import VALID

WIKI = "http://localhost:8080"
CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/120.0.0.0 Safari/537.36"
)
SESSION = "a1b2c3d4e5f6a7b8c9d0"
PAGEVIEW = "0f1e2d3c4b5a69788796"
EDITING_SESSION = "e0e1e2e3e4e5e6e7e8e9eaebecedeeef"


def eas_fields(action: str) -> dict:
    """EditAttemptStep's event fields as WikiEditor (REL1_39) fills them in."""
    return {
        "version": 1,
        "action": action,
        "is_oversample": False,
        "editing_session_id": EDITING_SESSION,
        "page_token": PAGEVIEW,
        "session_token": SESSION,
        "editor_interface": "wikitext",
        "platform": "desktop",
        "integration": "page",
        "page_id": 1,
        "page_title": "Main_Page",
        "page_ns": 0,
        "revision_id": 1,
        "user_id": 0,
        "user_editcount": 0,
        "mw_version": "1.39.5",
        "user_class": "IP",
        f"{action}_timing": 120,
    }


def browser_capsule(action: str) -> dict:
    """mw.eventLog.logEvent's capsule for a revision-numbered schema (core.prepare)."""
    return {
        "event": eas_fields(action),
        "schema": "EditAttemptStep",
        "webHost": "localhost",
        "wiki": "my_wiki",
        "revision": 18530416,
    }


def browser_beacon_query(capsule: dict) -> str:
    """core.makeBeaconUrl: encodeURIComponent(JSON.stringify(capsule)) + ';'."""
    text = json.dumps(capsule, separators=(",", ":"), ensure_ascii=False)
    return quote(text, safe="-_.!~*'()") + ";"


def php_beacon_query(capsule: dict) -> str:
    """EventLogging::logEvent: rawurlencode(serializeEvent()) . ';', where serializeEvent
    writes spaces as \\u0020."""
    text = json.dumps(capsule, separators=(",", ":")).replace(" ", "\\u0020")
    return quote(text, safe="-_.~") + ";"


def php_capsule() -> dict:
    """WikiEditor's VisualEditorFeatureUse on save, encapsulated by PHP (with userAgent)."""
    return {
        "event": {
            "feature": "mwSave",
            "action": "source-has-js",
            "editingSessionId": EDITING_SESSION,
            "platform": "desktop",
            "integration": "page",
            "editor_interface": "wikitext",
            "user_id": 0,
            "user_editcount": 0,
        },
        "schema": "VisualEditorFeatureUse",
        "wiki": "my_wiki",
        "webHost": "localhost:8080",
        "revision": 21199762,
        "userAgent": "Mozilla/5.0 (editing user) Firefox/121.0",
    }


async def raw_request(server, head: str, body: bytes = b"") -> tuple[int, dict, bytes]:
    """Send exactly these bytes (no client library adding headers) and read the answer."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
    await writer.drain()
    status_line = (await reader.readline()).decode()
    headers = {}
    while (line := (await reader.readline()).decode().strip()) != "":
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    payload = await reader.readexactly(length) if length else b""
    writer.close()
    return int(status_line.split()[1]), headers, payload


def browser_beacon(method: str, path_qs: str, host: str) -> str:
    """navigator.sendBeacon(url) (POST, no body) or the <img> fallback (GET), from the wiki."""
    lines = [f"{method} {path_qs} HTTP/1.1", f"Host: {host}", f"User-Agent: {CHROME}"]
    if method == "POST":
        lines += ["Content-Length: 0", f"Origin: {WIKI}", "Sec-Fetch-Mode: no-cors"]
    else:
        lines += ["Accept: image/avif,image/webp,*/*", "Sec-Fetch-Dest: image"]
    lines += ["Sec-Fetch-Site: same-site", f"Referer: {WIKI}/index.php?title=Main_Page&action=edit"]
    return "\n".join(lines) + "\nConnection: close\n"


def php_beacon(method: str, path_qs: str, host: str) -> str:
    """MediaWiki's HTTP client (EventLogging::sendBeacon): POST without postData."""
    lines = [f"{method} {path_qs} HTTP/1.1", f"Host: {host}", "User-Agent: MediaWiki/1.39.5"]
    if method == "POST":
        lines.append("Content-Length: 0")
    return "\n".join(lines) + "\nAccept: */*\nConnection: close\n"


async def api(http, server, path: str) -> dict:
    async with http.get(server.url + path) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def test_legacy_beacons_from_browser_and_php_are_answered_recorded_and_decoded(server, http):
    host = f"{server.host}:{server.port}"
    sent = [
        ("POST", browser_beacon_query(browser_capsule("ready")), browser_beacon),
        ("GET", browser_beacon_query(browser_capsule("loaded")), browser_beacon),
        ("POST", php_beacon_query(php_capsule()), php_beacon),
        ("GET", php_beacon_query(php_capsule()), php_beacon),
    ]
    for method, query, client in sent:
        status, headers, body = await raw_request(
            server, client(method, f"/beacon/event?{query}", host)
        )
        assert (status, body) == (204, b""), (method, client.__name__)
        assert headers["access-control-allow-origin"] == "*"

    with StoreReader(server.sandbox.settings.db) as reader:
        requests = [reader.get_request(r["id"]) for r in reversed(reader.list_requests())]
    assert [(r["method"], r["path"], r["status"]) for r in requests] == [
        (m, "/beacon/event", 204) for m, _, _ in sent
    ]
    # recorded as received: the query still percent-encoded, the body empty
    assert [r["query"] for r in requests] == [q for _, q, _ in sent]
    assert all(not r["body"] and r["error"] is None for r in requests)

    page = await api(http, server, "/sandbox/events?verdict=legacy")
    assert len(page["events"]) == 4
    ready = (await api(http, server, "/sandbox/events?q=action:ready"))["events"]
    assert [(e["verdict"], e["stream"], e["action"]) for e in ready] == [
        ("legacy", "eventlogging_EditAttemptStep", "ready")
    ]
    detail = await api(http, server, f"/sandbox/events/{ready[0]['id']}")
    assert detail["event"] == browser_capsule("ready")  # the capsule, exactly as sent
    assert detail["session_id"] == SESSION and detail["pageview_id"] == PAGEVIEW
    exp = detail["explanation"]
    assert "not validated" in exp["reason"]
    assert exp["schema_location"].endswith("title=Schema:EditAttemptStep&oldid=18530416")
    # the schema repositories hold its migrated form: judged against it, and said so
    migrated = exp["migrated"]
    assert migrated["found"] and migrated["schema_uri"].startswith(
        "/analytics/legacy/editattemptstep/"
    )
    assert migrated["schema_uri"] in exp["reason"] and migrated["verdict"] == "valid"

    # PHP's capsule: VisualEditorFeatureUse has no migrated form here; its userAgent is kept
    vefu = (await api(http, server, "/sandbox/events?q=schema:VisualEditorFeatureUse"))["events"]
    assert len(vefu) == 2
    detail = await api(http, server, f"/sandbox/events/{vefu[0]['id']}")
    assert detail["event"] == php_capsule()
    assert detail["explanation"]["migrated"]["found"] is False
    assert "no migrated form" in detail["explanation"]["reason"]
    # the editing session joins the EditAttemptStep events of the same edit
    by_session = await api(http, server, f"/sandbox/events?q=session:{EDITING_SESSION}")
    assert {e["schema_title"] for e in by_session["events"]} == {"VisualEditorFeatureUse"}
    by_session = await api(http, server, f"/sandbox/events?session={SESSION}")
    assert len(by_session["events"]) == 2

    stats = await api(http, server, "/sandbox/stats")
    assert stats["settings"]["beacon_paths"] == ["/beacon/event"]
    assert stats["by_verdict"] == {"valid": 0, "invalid": 0, "error": 0, "legacy": 4}


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("", "no query string"),
        (quote('{"schema":"Edit","event":{}}'), "does not end with ';'"),
        ('{"schema":"Edit","event":{}};', "not URL-encoded"),
        (quote('{"schema":"Edit","event":{"action":"re') + ";", "truncated JSON"),
        (quote("schema=Edit&action=ready", safe="") + ";", "not JSON"),
        ("%7B%zz;", "does not start a %XX escape"),
        ("%FF%FE;", "not URL-encoded UTF-8"),
        (quote("[1,2]") + ";", "the JSON is a array"),
        (quote('{"event":{"action":"ready"}}') + ";", "no 'schema' name"),
        (quote('{"schema":"Edit","event":"ready"}') + ";", "no 'event' object"),
    ],
)
async def test_a_query_that_is_not_a_capsule_is_recorded_with_the_reason(server, query, reason):
    host = f"{server.host}:{server.port}"
    target = "/beacon/event" + (f"?{query}" if query else "")
    status, _, body = await raw_request(server, browser_beacon("POST", target, host))
    assert (status, body) == (204, b"")
    with StoreReader(server.sandbox.settings.db) as reader:
        (request,) = reader.list_requests()
        request = reader.get_request(request["id"])
        assert reader.count_events() == 0
    assert request["query"] == query
    assert request["error"].startswith("not a legacy EventLogging capsule: ")
    assert reason in request["error"]


async def test_extra_beacon_paths_and_nothing_is_404(make_server):
    server = await make_server(beacon_paths=("/beacon/event", "/el/beacon"))
    host = f"{server.host}:{server.port}"
    query = browser_beacon_query(browser_capsule("init"))
    for path in ("/beacon/event", "/el/beacon"):
        for method in ("GET", "POST"):
            status, _, _ = await raw_request(server, php_beacon(method, f"{path}?{query}", host))
            assert status == 204, (path, method)
    status, _, _ = await raw_request(server, php_beacon("GET", f"/beacon/other?{query}", host))
    assert status == 404


def sendbeacon_post(host: str, body: bytes) -> str:
    """navigator.sendBeacon(serviceUri, JSON.stringify(event)): one object, text/plain."""
    return (
        f"POST /v1/events HTTP/1.1\nHost: {host}\nUser-Agent: {CHROME}\n"
        "Content-Type: text/plain;charset=UTF-8\n"
        f"Content-Length: {len(body)}\nOrigin: {WIKI}\nSec-Fetch-Mode: no-cors\n"
        "Sec-Fetch-Site: same-site\nConnection: close\n"
    )


def legacy_shaped_eas(action: str) -> dict:
    """mw.eventLog.logEvent('EditAttemptStep', ...) with $wgEventLoggingSchemas mapping it to
    its Event Platform URI: core.prepare's capsule with $schema and client_dt, submitted to
    stream eventlogging_EditAttemptStep (meta.stream and meta.domain added by the client)."""
    return {
        "event": eas_fields(action),
        "schema": "EditAttemptStep",
        "webHost": "localhost",
        "wiki": "my_wiki",
        "$schema": "/analytics/legacy/editattemptstep/2.0.2",
        "client_dt": "2026-12-06T00:10:00.123Z",
        "meta": {"stream": "eventlogging_EditAttemptStep", "domain": "localhost"},
    }


async def test_sendbeacon_event_platform_events_and_legacy_shaped_ones_are_indexed(server, http):
    host = f"{server.host}:{server.port}"
    for event in (VALID, legacy_shaped_eas("ready"), legacy_shaped_eas("saveIntent")):
        body = json.dumps(event).encode()
        status, _, answer = await raw_request(server, sendbeacon_post(host, body), body)
        assert status == 201, answer

    ready = (await api(http, server, "/sandbox/events?q=action:ready"))["events"]
    assert [(e["verdict"], e["stream"]) for e in ready] == [
        ("valid", "eventlogging_EditAttemptStep")
    ]
    detail = await api(http, server, f"/sandbox/events/{ready[0]['id']}")
    assert detail["session_id"] == SESSION and detail["pageview_id"] == PAGEVIEW
    assert detail["dt"] == "2026-12-06T00:10:00.123Z"  # client_dt: the event's own time
    assert detail["platform"] == "desktop"
    session = (await api(http, server, f"/sandbox/events?q=session:{SESSION}"))["events"]
    assert {e["action"] for e in session} == {"ready", "saveIntent"}
    with StoreReader(server.sandbox.settings.db) as reader:
        sessions = {s["session_id"]: s for s in reader.list_sessions()}
    assert sessions[SESSION]["events"] == 2 and sessions[SESSION]["platform"] == "desktop"
    click = (await api(http, server, "/sandbox/events?q=action:click"))["events"]
    assert [e["session_id"] for e in click] == ["abcdefghij0123456789"]
    with StoreReader(server.sandbox.settings.db) as reader:
        requests = [reader.get_request(r["id"]) for r in reader.list_requests()]
    assert len(requests) == 3  # every request recorded as received
    assert {dict(r["headers"])["Content-Type"] for r in requests} == {"text/plain;charset=UTF-8"}


def test_the_field_map_reads_each_family_from_its_own_fields():
    mp = fieldmap.indexed(VALID)
    assert (mp.action, mp.session_id, mp.platform, mp.dt) == (
        "click",
        "abcdefghij0123456789",
        "mediawiki_js",
        "2024-10-01T11:59:59.123Z",
    )
    leg = fieldmap.indexed(legacy_shaped_eas("ready"))
    assert leg == (
        "ready",
        SESSION,
        PAGEVIEW,
        "desktop",
        None,
        "2026-12-06T00:10:00.123Z",
    )
    no_token = legacy_shaped_eas("ready")
    del no_token["event"]["session_token"]
    assert fieldmap.indexed(no_token).session_id == EDITING_SESSION
    other = fieldmap.indexed({"$schema": "/x/1.0.0", "action": "a", "dt": "t", "event": "x"})
    assert other == ("a", None, None, None, None, "t")
    filled = fieldmap.indexed({"event": {}, "schema": "S"}, {"dt": {"value": "f"}})
    assert filled.dt == "f"


def _old_database(path: Path) -> sqlite3.Connection:
    """A database as the previous mpsandbox left it: migrations up to 0007 only, and events
    stored with the columns the old writer filled (none of a legacy event's)."""
    conn = sqlite3.connect(path, isolation_level=None)
    assert MIGRATIONS[7].name == "0008_legacy_indexed_columns"
    apply_migrations(conn, MIGRATIONS[:7])
    conn.execute(
        "INSERT INTO requests (id, received_at, method, path, stored_events) VALUES"
        " (1, 1000.0, 'POST', '/v1/events', 3)"
    )
    rows = [
        (1, 0, "valid", "eventlogging_EditAttemptStep", legacy_shaped_eas("ready"), None),
        (2, 1, "valid", "eventlogging_EditAttemptStep", legacy_shaped_eas("saveSuccess"), None),
        (3, 2, "valid", "product_metrics.web_base", VALID, "click"),
    ]
    for event_id, idx, verdict, stream, event, action in rows:
        session = VALID["performer"]["session_id"] if action else None
        conn.execute(
            "INSERT INTO events (id, request_id, idx, received_at, verdict, stream, action,"
            " session_id, event, platform) VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event_id,
                idx,
                1000.0 + idx,
                verdict,
                stream,
                action,
                session,
                json.dumps(event),
                "mediawiki_js" if action else None,
            ),
        )
    conn.execute(
        "INSERT INTO sessions (session_id, platform, first_seen, last_seen, events)"
        " VALUES (?, 'mediawiki_js', 1002.0, 1002.0, 1)",
        (VALID["performer"]["session_id"],),
    )
    return conn


def test_migration_fills_the_columns_of_legacy_events_stored_before_it(tmp_path):
    db = tmp_path / "old.db"
    conn = _old_database(db)
    before = conn.execute("SELECT count(*) FROM events WHERE action IS NOT NULL").fetchone()
    assert before == (1,)
    assert apply_migrations(conn, MIGRATIONS[:8]) == ["0008_legacy_indexed_columns"]
    got = conn.execute(
        "SELECT id, action, session_id, pageview_id, platform, dt FROM events ORDER BY id"
    ).fetchall()
    assert got == [
        (1, "ready", SESSION, PAGEVIEW, "desktop", "2026-12-06T00:10:00.123Z"),
        (2, "saveSuccess", SESSION, PAGEVIEW, "desktop", "2026-12-06T00:10:00.123Z"),
        (3, "click", "abcdefghij0123456789", None, "mediawiki_js", None),
    ]
    apply_migrations(conn)  # the later ones, for the reader
    conn.close()
    with StoreReader(db) as reader:
        sessions = {s["session_id"]: s for s in reader.list_sessions()}
        assert sessions[SESSION]["events"] == 2 and sessions[SESSION]["pageviews"] == 1
        assert sessions["abcdefghij0123456789"]["events"] == 1  # untouched
        assert len(reader.session_events(SESSION)) == 2


async def test_beacons_export_and_import_into_a_fresh_store_alike(server, tmp_path):
    from tests.test_fixtures import SCHEMAS, cli

    host = f"{server.host}:{server.port}"
    for method, query in (
        ("GET", browser_beacon_query(browser_capsule("ready"))),
        ("POST", php_beacon_query(php_capsule())),
        ("GET", "not-a-capsule"),
    ):
        await raw_request(server, php_beacon(method, f"/beacon/event?{query}", host))
    db = server.sandbox.settings.db
    out = tmp_path / "beacons.jsonl"
    code, _, err = await asyncio.to_thread(cli, "export", "--db", db, "-o", out)
    assert code == 0, err
    assert "exported 3 requests" in err
    fresh = tmp_path / "fresh.db"
    code, _, err = await asyncio.to_thread(cli, "import", out, "--db", fresh, *SCHEMAS)
    assert code == 0, err
    with StoreReader(db) as a, StoreReader(fresh) as b:
        before = [(e["verdict"], e["action"], e["session_id"]) for e in a.list_events()]
        after = [(e["verdict"], e["action"], e["session_id"]) for e in b.list_events()]
        errors = [r["error"] for r in b.list_requests()]
    assert after == before and len(after) == 2, errors
    assert errors[0].startswith("not a legacy EventLogging capsule")


def test_a_capsule_whose_query_safe_characters_were_unescaped_still_decodes():
    """Clients and proxies may turn %3A and %2C back into ':' and ',' (legal in a query):
    still a capsule. Raw JSON punctuation ('{', '"', ' ') never is."""
    from mpsandbox import legacy

    capsule = browser_capsule("ready")
    query = browser_beacon_query(capsule).replace("%3A", ":").replace("%2C", ",")
    assert ":" in query and legacy.decode_query(query) == capsule
    with pytest.raises(legacy.NotACapsule, match="cannot appear unescaped"):
        legacy.decode_query(json.dumps(capsule) + ";")


async def test_the_copied_curl_of_a_legacy_event_resends_it_as_a_beacon(server, http):
    import shlex
    import subprocess

    from mpsandbox import legacy
    from mpsandbox.resend import beacon_curl_command

    capsule = browser_capsule("saveSuccess")
    assert legacy.decode_query(legacy.beacon_query(capsule)) == capsule
    command = beacon_curl_command(capsule, server.url + "/beacon/event")
    done = await asyncio.to_thread(
        subprocess.run, shlex.split(command), capture_output=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    (row,) = (await api(http, server, "/sandbox/events?q=action:saveSuccess"))["events"]
    assert row["verdict"] == "legacy"
    detail = await api(http, server, f"/sandbox/events/{row['id']}")
    assert detail["event"] == capsule


async def test_an_edit_funnel_counts_beacons_and_legacy_shaped_events_by_session(server):
    from mpsandbox.metrics import compute_stored
    from mpsandbox.metrics.definitions import parse_metric

    host = f"{server.host}:{server.port}"
    # one edit session: init and ready as beacons, saveSuccess as a legacy-shaped event
    for action in ("init", "ready"):
        query = browser_beacon_query(browser_capsule(action))
        await raw_request(server, browser_beacon("POST", f"/beacon/event?{query}", host))
    body = json.dumps(legacy_shaped_eas("saveSuccess")).encode()
    status, _, _ = await raw_request(server, sendbeacon_post(host, body), body)
    assert status == 201
    funnel = parse_metric(
        {
            "name": "edit_funnel",
            "unit": "session",
            "where": "stream:eventlogging_EditAttemptStep",
            "steps": ["action:init", "action:ready", "action:saveSuccess"],
        }
    )
    with StoreReader(server.sandbox.settings.db) as reader:
        (result,) = compute_stored(reader, [funnel])
    assert result.error is None
    assert [s.reached for s in result.total.steps] == [1, 1, 1]
    assert result.not_valid == 0  # beacons count as production accepts them


def test_beacons_in_a_har_file_import_as_legacy_events(tmp_path):
    from tests.test_fixtures import SCHEMAS, cli, har, har_entry

    query = browser_beacon_query(browser_capsule("ready"))
    doc = har(
        [
            har_entry("GET", "http://localhost:8080/index.php?title=X", "2026-12-06T00:00:00Z"),
            har_entry(
                "POST", f"http://localhost:8192/beacon/event?{query}", "2026-12-06T00:00:01Z"
            ),
            har_entry("GET", "http://localhost:8192/beacon/event?broken", "2026-12-06T00:00:02Z"),
        ]
    )
    path = tmp_path / "wiki.har"
    path.write_text(json.dumps(doc))
    db = tmp_path / "har.db"
    code, _, err = cli("import", path, "--db", db, *SCHEMAS)
    assert code == 0, err
    with StoreReader(db) as reader:
        (event,) = reader.list_events()
        requests = [reader.get_request(r["id"]) for r in reversed(reader.list_requests())]
    assert (event["verdict"], event["action"], event["session_id"]) == ("legacy", "ready", SESSION)
    assert [(r["method"], r["query"], r["status"]) for r in requests] == [
        ("POST", query, 204),
        ("GET", "broken", 204),
    ]
    assert "does not end with ';'" in requests[1]["error"]


def test_beacon_path_option_adds_paths_beside_the_default():
    from mpsandbox.cli.options import build_settings

    settings = build_settings(beacon_paths=("el/beacon", "/beacon/event", "/x"))
    assert settings.beacon_paths == ("/beacon/event", "/el/beacon", "/x")
    assert build_settings().beacon_paths == ("/beacon/event",)


async def test_a_beacon_from_a_wiki_on_another_origin_passes_the_origin_check(server, http):
    """The exposure policy refuses state changes from foreign origins, but a beacon path is
    an intake route: a wiki on another origin posts it (sendBeacon) and is answered 204."""
    capsule = {"event": {"action": "ready"}, "schema": "EditAttemptStep", "revision": 1}
    foreign = {"Origin": "http://wiki.localhost:8080", "Sec-Fetch-Site": "cross-site"}
    target = f"{server.url}/beacon/event?{quote(json.dumps(capsule))};"
    async with http.post(target, headers=foreign) as resp:
        assert resp.status == 204
    async with http.post(f"{server.url}/sandbox/reset", headers=foreign) as resp:
        assert resp.status == 403  # while a state change elsewhere is refused
    with StoreReader(server.sandbox.settings.db) as reader:
        assert [e["verdict"] for e in reader.list_events()] == ["legacy"]
