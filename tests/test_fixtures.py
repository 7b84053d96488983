"""Fixtures: every input format, corrupt input, export -> import round trips, replays to a
second real intake, the --dt / --ids rewrites and transport failures.

The traffic is real: the requests recorded against EventGate 1.8.4 (tests/data), posted to a
real intake on loopback; the HAR files are built here around real event bodies.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import socket
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from mpsandbox import jsonio
from mpsandbox.cli import main
from mpsandbox.fixtures import FixtureError, read_fixture
from mpsandbox.fixtures.formats import REQUEST_FORMAT
from mpsandbox.fixtures.replay import ReplayOptions, replay, replay_async
from mpsandbox.fixtures.transform import Rewriter, format_dt, new_like
from mpsandbox.intake.server import start_server
from mpsandbox.platform.identifiers import parse_dt
from mpsandbox.store import StoreReader
from tests.conftest import PRIMARY, RECORDED, SECONDARY, WM, settings_for
from tests.test_eventgate_parity import CASES

SCHEMAS = ["--schemas", str(SECONDARY), "--schemas", str(PRIMARY)]
REQ = RECORDED / "req"
HEX_SESSION = "0a1b2c3d4e5f60718293"
HEX_PAGEVIEW = "ffeeddccbbaa99887766"


def recorded_posts() -> list[tuple[str, str, dict, bytes]]:
    """The recorded EventGate exchanges that are POSTs of a sensible size."""
    return [
        (name, path, headers, body)
        for name, (method, path, headers, body) in CASES.items()
        if method == "POST" and len(body) < 100_000
    ]


def web_event(**changes) -> dict:
    """The recorded valid web event, with proper 20-hex ids (and any changes)."""
    event = jsonio.loads((REQ / "valid_web_base.json").read_bytes())
    event["performer"].update(session_id=HEX_SESSION, pageview_id=HEX_PAGEVIEW)
    event.update(changes)
    return event


async def _post_all(url: str, posts) -> None:
    import aiohttp

    async with aiohttp.ClientSession(auto_decompress=False) as http:
        for _, path, headers, body in posts:
            async with http.post(url + path, data=body, headers=headers) as resp:
                await resp.read()


async def _build_store(tmp: Path) -> Path:
    server = await start_server(settings_for(tmp))
    try:
        await _post_all(server.url, recorded_posts())
        extra = [
            (
                "session",
                "/v1/events",
                {"content-type": "text/plain;charset=UTF-8"},
                jsonio.dumps([web_event(action="one"), web_event(action="two")]),
            ),
        ]
        await _post_all(server.url, extra)
    finally:
        await server.stop()
    return tmp / "sandbox.db"


@pytest.fixture(scope="module")
def recorded_db(tmp_path_factory) -> Path:
    """A store built by a real intake from the recorded requests (once per module)."""
    tmp = tmp_path_factory.mktemp("recorded")
    return asyncio.run(_build_store(tmp))


def cli(*args) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def event_key(row: dict) -> tuple:
    """What must survive a round trip: verdict, errors, message and the findings."""
    findings = [(f["kind"], f["severity"], f["message"]) for f in row["findings"]]
    return row["verdict"], row["errors"], row["message"], row["schema_uri"], findings


def rows(db: Path) -> list[dict]:
    with StoreReader(db) as reader:
        return list(reader.iter_events())


# -- formats -------------------------------------------------------------------------------


def test_export_requests_is_exact_and_reads_back(recorded_db, tmp_path):
    out = tmp_path / "requests.jsonl"
    code, _, err = cli("export", "--db", recorded_db, "-o", out)
    assert code == 0, err
    lines = out.read_bytes().splitlines()
    assert all(json.loads(line)["format"] == REQUEST_FORMAT for line in lines)
    fixture = read_fixture(out)
    assert fixture.format == REQUEST_FORMAT and not fixture.problems
    with StoreReader(recorded_db) as reader:
        stored = list(reader.iter_requests())
    assert len(fixture.requests) == len(stored) == len(recorded_posts()) + 1
    for got, row in zip(fixture.requests, stored, strict=True):
        assert got.body == row["body"]  # bytes exact, gzip included
        assert got.received_at == row["received_at"]
        assert got.headers == [tuple(h) for h in row["headers"]]
        assert (got.path, got.query) == (row["path"], row["query"])
    gz = next(r for r in fixture.requests if r.header("content-encoding") == "gzip")
    assert json.loads(gzip.decompress(gz.body)) == json.loads(
        (REQ / "valid_web_base.json").read_bytes()
    )
    assert "base64" in json.loads(next(line for line in lines if b'"base64"' in line))["body"]


def test_export_query_and_events_only(recorded_db, tmp_path):
    out = tmp_path / "invalid.jsonl"
    code, _, err = cli("export", "is:invalid", "--events-only", "--db", recorded_db, "-o", out)
    assert code == 0, err
    header, *events = [json.loads(line) for line in out.read_bytes().splitlines()]
    assert header["format"] == "mpsandbox-events/1" and header["query"] == "is:invalid"
    invalid = [r["event"] for r in rows(recorded_db) if r["verdict"] == "invalid"]
    assert events == invalid and len(events) > 3
    fixture = read_fixture(out)
    assert fixture.format == "mpsandbox-events/1"
    assert fixture.events() == invalid
    # A bad query is refused, naming the problem.
    code, _, err = cli("export", "bogus:x", "--db", recorded_db, "-o", out)
    assert code == 2 and "bogus" in err


def test_eventgate_devserver_events_json():
    fixture = read_fixture(RECORDED / "events.json")
    lines = (RECORDED / "events.json").read_bytes().splitlines()
    assert fixture.format == "eventgate-events"
    assert fixture.events() == [json.loads(line) for line in lines]
    assert all(r.received_at is None and r.method == "POST" for r in fixture.requests)


def test_json_array_and_single_event():
    java = WM / "metrics-platform/java/src/test/resources/org/wikimedia/metrics_platform/event"
    array = read_fixture(java / "expected_event_click.json")
    assert array.format == "json-events" and len(array.events()) == 1
    assert array.events()[0]["action"] == "TestClick"
    single = read_fixture(WM / "metrics-platform/tests/consistency/expected_event.json")
    assert single.format == "json-events" and single.events()[0]["performer"]["session_id"]


def har(entries: list[dict]) -> dict:
    return {
        "log": {
            "version": "1.2",
            "creator": {"name": "Firefox", "version": "131"},
            "entries": entries,
        }
    }


def har_entry(method: str, url: str, started: str, post: dict | None = None) -> dict:
    request = {
        "method": method,
        "url": url,
        "httpVersion": "HTTP/2",
        "headers": [
            {"name": ":authority", "value": "en.wikipedia.org"},
            {"name": "User-Agent", "value": "Mozilla/5.0 Firefox/131.0"},
            {"name": "Cookie", "value": "enwikiSession=secret"},
            {"name": "Content-Length", "value": "123"},
        ],
    }
    if post is not None:
        request["postData"] = post
    return {"startedDateTime": started, "request": request, "response": {"status": 204}}


def test_har_with_a_beacon_and_a_base64_body(tmp_path):
    beacon = (REQ / "valid_web_base.json").read_text()
    batch = (REQ / "batch_mixed.json").read_bytes()
    doc = har(
        [
            har_entry("GET", "https://en.wikipedia.org/wiki/Main_Page", "2024-10-01T12:00:00.000Z"),
            har_entry(
                "POST",
                "https://en.wikipedia.org/evt-103e/v2/events?hasty=true",
                "2024-10-01T12:00:01.250+00:00",
                {"mimeType": "text/plain;charset=UTF-8", "text": beacon},
            ),
            har_entry(
                "POST",
                "https://intake-analytics.wikimedia.org/v1/events",
                "2024-10-01T12:00:02.000Z",
                {
                    "mimeType": "application/json",
                    "encoding": "base64",
                    "text": base64.b64encode(batch).decode(),
                },
            ),
            har_entry(
                "POST",
                "https://en.wikipedia.org/w/api.php",
                "2024-10-01T12:00:03Z",
                {"mimeType": "application/x-www-form-urlencoded", "text": "action=query"},
            ),
        ]
    )
    path = tmp_path / "session.har"
    path.write_text(json.dumps(doc))
    fixture = read_fixture(path)
    assert fixture.format == "har" and not fixture.problems
    assert fixture.ignored == {"not an intake URL": 2}
    first, second = fixture.requests
    assert (first.path, first.query) == ("/evt-103e/v2/events", "hasty=true")
    assert first.body == beacon.encode()
    assert first.header("content-type") == "text/plain;charset=UTF-8"
    assert first.header("user-agent") == "Mozilla/5.0 Firefox/131.0"
    assert first.header("content-length") is None and first.header(":authority") is None
    assert first.received_at == pytest.approx(1727784001.25)
    assert second.body == batch and len(second.events()) == 2


def test_har_imports_through_the_pipeline(tmp_path):
    doc = har(
        [
            har_entry(
                "POST",
                "http://localhost:8192/v1/events",
                "2024-10-01T12:00:01Z",
                {
                    "mimeType": "text/plain;charset=UTF-8",
                    "text": (REQ / "batch_mixed.json").read_text(),
                },
            )
        ]
    )
    path = tmp_path / "devtools.har"
    path.write_text(json.dumps(doc))
    db = tmp_path / "har.db"
    code, _, err = cli("import", path, "--db", db, *SCHEMAS)
    assert code == 0, err
    stored = rows(db)
    assert [r["verdict"] for r in stored] == ["valid", "invalid"]
    assert {r["received_at"] for r in stored} == {1727784001.0}


def test_a_corrupt_line_is_skipped_and_reported(recorded_db, tmp_path):
    out = tmp_path / "r.jsonl"
    cli("export", "--db", recorded_db, "-o", out)
    lines = out.read_bytes().splitlines()
    lines[2] = lines[2][: len(lines[2]) // 2]  # a write cut short
    lines[4] = b'{"format": "mpsandbox-request/1", "headers": "nope"}'
    out.write_bytes(b"\n".join(lines) + b"\n")
    fixture = read_fixture(out)
    assert len(fixture.requests) == len(lines) - 2
    assert [p.where for p in fixture.problems] == ["3", "5"]
    assert str(fixture.problems[0]).startswith(f"{out}:3: not JSON")
    assert "mpsandbox-request/1" in str(fixture.problems[0])
    assert "headers" in fixture.problems[1].message
    with pytest.raises(FixtureError, match=r":3: not JSON"):
        read_fixture(out, strict=True)
    db = tmp_path / "skipped.db"
    code, _, err = cli("import", out, "--db", db, *SCHEMAS)
    assert code == 0 and f"skipped {out}:3: not JSON" in err and f"{out}:5:" in err
    code, _, err = cli("import", out, "--db", tmp_path / "strict.db", "--strict", *SCHEMAS)
    assert code == 2 and "--strict" in err and not (tmp_path / "strict.db").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"  \n\n", "the file is empty"),
        (
            b'{"log": {"version": "1.2", "entries": [{"request": {"method": "POST", "url": "ht',
            "looks like a HAR file but is not valid JSON",
        ),
        (b'[{"$schema": "/test/event/1.0.0"}, {"meta"', "a JSON array that does not parse"),
        (b'{"format": "mpsandbox-request/2", "body": ""}\n', "another mpsandbox version"),
        (b'{"name": "left-pad", "version": "1.0.0"}', "is not a fixture"),
        (b"hello\nworld\n", "no line is JSON"),
        (b"SQLite format 3\x00\x10\x00", "an SQLite database, not a fixture"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "a binary file"),
    ],
)
def test_unusable_files_are_refused_clearly(tmp_path, content, message):
    path = tmp_path / "input.json"
    path.write_bytes(content)
    with pytest.raises(FixtureError, match=message) as info:
        read_fixture(path)
    assert str(info.value).startswith(str(path))


def test_not_a_fixture_at_all_on_the_command_line(tmp_path):
    config = WM / "eventlogging/devserver/eventgate.config.yaml"
    code, _, err = cli("import", config, "--db", tmp_path / "x.db", *SCHEMAS)
    assert code == 2 and str(config) in err and "expected" in err
    assert not (tmp_path / "x.db").exists()


def test_gzipped_fixture_files_are_read(tmp_path):
    path = tmp_path / "events.json.gz"
    path.write_bytes(gzip.compress((RECORDED / "events.json").read_bytes()))
    assert len(read_fixture(path).events()) == 7


# -- round trip ----------------------------------------------------------------------------


def test_export_reset_import_gives_the_same_verdicts_errors_and_findings(recorded_db, tmp_path):
    out = tmp_path / "all.jsonl"
    assert cli("export", "--db", recorded_db, "-o", out)[0] == 0
    fresh = tmp_path / "fresh.db"
    code, _, err = cli("import", out, "--db", fresh, *SCHEMAS)
    assert code == 0, err
    assert "events error 3, invalid 8, valid 9" in err
    before, after = rows(recorded_db), rows(fresh)
    assert len(before) == len(after) == 20
    assert [event_key(r) for r in after] == [event_key(r) for r in before]
    assert any(r["findings"] for r in after) and any(r["errors"] for r in after)
    with StoreReader(recorded_db) as a, StoreReader(fresh) as b:
        old, new = list(a.iter_requests()), list(b.iter_requests())
    assert [(r["status"], r["reason"], r["received_at"], r["body"]) for r in new] == [
        (r["status"], r["reason"], r["received_at"], r["body"]) for r in old
    ]


async def test_replay_to_a_second_real_intake_answers_alike(recorded_db, tmp_path, make_server):
    """The library function, as the TUI calls it: progress after every request."""
    out = tmp_path / "all.jsonl"
    assert (await asyncio.to_thread(cli, "export", "--db", recorded_db, "-o", out))[0] == 0
    second = await make_server(db=tmp_path / "second.db")
    seen: list[int] = []
    from mpsandbox.fixtures.replay import HttpTarget

    requests = read_fixture(out).requests
    target = HttpTarget(second.url + "/v1/events", timeout=10, concurrency=4)
    progress = await replay_async(
        requests,
        target,
        ReplayOptions(pacing="fast", concurrency=4),
        on_progress=lambda p: seen.append(p.done),
    )
    assert progress.ok and progress.finished and progress.done == len(requests)
    with StoreReader(recorded_db) as reader:
        statuses = [r["status"] for r in reader.iter_requests()]
    expected: dict[str, int] = {}
    for s in statuses:
        expected[str(s)] = expected.get(str(s), 0) + 1
    assert progress.by_status == expected
    assert seen[-1] == len(requests) and seen == sorted(seen)
    await second.sandbox.wait_for(None, 20, 10)  # the hasty request is committed later

    def verdicts(db: Path) -> list[str]:
        # Findings may differ: four requests in flight arrive in any order.
        return sorted(jsonio.dumps_str(event_key(r)[:4]) for r in rows(db))

    assert verdicts(tmp_path / "second.db") == verdicts(recorded_db)


async def test_replay_cli_to_a_url_keeps_headers_that_matter(tmp_path, make_server):
    second = await make_server(db=tmp_path / "second.db")
    doc = har(
        [
            har_entry(
                "POST",
                "https://en.wikipedia.org/evt-103e/v2/events",
                "2024-10-01T12:00:01Z",
                {"mimeType": "text/plain;charset=UTF-8", "text": jsonio.dumps_str(web_event())},
            )
        ]
    )
    (tmp_path / "one.har").write_text(json.dumps(doc))
    # A request sent with no Content-Type (recorded case 15) must arrive without one.
    bare = {
        "format": REQUEST_FORMAT,
        "method": "POST",
        "path": "/v1/events",
        "headers": [],
        "body": (REQ / "valid_web_base.json").read_text(),
    }
    (tmp_path / "bare.jsonl").write_text(json.dumps(bare) + "\n")
    code, _, err = await asyncio.to_thread(
        cli,
        "replay",
        tmp_path / "one.har",
        tmp_path / "bare.jsonl",
        "--to",
        second.url + "/v1/events",
    )
    assert code == 0, err
    assert "201 ×1, 400 ×1" in err
    with StoreReader(tmp_path / "second.db") as reader:
        beacon, no_type = list(reader.iter_requests())
    names = {k.lower(): v for k, v in beacon["headers"]}
    assert names["content-type"] == "text/plain;charset=UTF-8"
    assert names["user-agent"] == "Mozilla/5.0 Firefox/131.0"
    assert "cookie" not in names
    assert beacon["path"] == "/v1/events" and beacon["status"] == 201
    assert {k.lower() for k, _ in no_type["headers"]}.isdisjoint({"content-type", "user-agent"})
    assert no_type["reason"] == "Request body was empty. Must provide JSON encoded events."


def test_transport_failure_exits_1(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    code, _, err = cli(
        "replay",
        RECORDED / "events.json",
        "--to",
        f"http://127.0.0.1:{port}/v1/events",
        "--timeout",
        "2",
    )
    assert code == 1
    assert "transport error ×7" in err and "7 requests not delivered" in err
    # in the user's words, without the HTTP library's jargon
    assert f"could not connect to 127.0.0.1:{port}: connection refused" in err
    assert "ssl:default" not in err and "Connect call failed" not in err


def test_invalid_events_are_outcomes_not_failures(tmp_path):
    db = tmp_path / "local.db"
    code, _, err = cli("replay", REQ / "batch_all_invalid.json", "--db", db, *SCHEMAS)
    assert code == 0, err
    assert "events invalid 2" in err


# -- rewrites ------------------------------------------------------------------------------


def test_dt_shift_and_now(tmp_path):
    events = [web_event(action="a"), web_event(action="b", dt="2024-10-01T12:00:04.000Z")]
    path = tmp_path / "two.json"
    path.write_text(json.dumps(events))
    shifted = tmp_path / "shift.db"
    t0 = time.time()
    code, _, err = cli("replay", path, "--db", shifted, "--dt", "shift", *SCHEMAS)
    assert code == 0, err
    first, second = rows(shifted)
    a, b = parse_dt(first["event"]["dt"]), parse_dt(second["event"]["dt"])
    assert b - a == pytest.approx(4.877, abs=0.001)  # the gap is kept
    assert t0 - 1 <= a <= time.time() + 1
    assert first["event"]["meta"]["dt"] != "2024-10-01T12:00:00.000Z"
    assert not any(f["kind"] == "time.dt_past" for f in first["findings"])

    kept = tmp_path / "keep.db"
    assert cli("replay", path, "--db", kept, *SCHEMAS)[0] == 0
    assert any(f["kind"] == "time.dt_past" for f in rows(kept)[0]["findings"])

    now = tmp_path / "now.db"
    assert cli("replay", path, "--db", now, "--dt", "now", *SCHEMAS)[0] == 0
    for row in rows(now):
        assert abs(parse_dt(row["event"]["dt"]) - row["received_at"]) < 1


def test_ids_fresh_maps_consistently_and_keeps_shape(tmp_path):
    events = [
        web_event(action="a"),
        web_event(action="b"),
        web_event(
            action="c",
            meta={
                "stream": "product_metrics.web_base",
                "id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
            },
        ),
    ]
    path = tmp_path / "three.json"
    path.write_text(json.dumps(events))
    db = tmp_path / "fresh.db"
    code, _, err = cli("replay", path, "--db", db, "--ids", "fresh", *SCHEMAS)
    assert code == 0, err
    stored = rows(db)
    sessions = {r["event"]["performer"]["session_id"] for r in stored}
    pageviews = {r["event"]["performer"]["pageview_id"] for r in stored}
    assert len(sessions) == len(pageviews) == 1  # one old id, one new id
    (session,) = sessions
    assert session != HEX_SESSION and len(session) == 20 and int(session, 16) >= 0
    meta_id = stored[2]["event"]["meta"]["id"]
    assert meta_id != events[2]["meta"]["id"]
    assert [len(p) for p in meta_id.split("-")] == [8, 4, 4, 4, 12]
    assert [r["verdict"] for r in stored] == ["valid"] * 3


def test_rewrites_keep_precision_and_leave_non_json_alone():
    assert format_dt(1727784000.5, "2024-10-01T12:00:00.123Z") == "2024-10-01T12:00:00.500Z"
    assert format_dt(1727784000.5, "2024-10-01T12:00:00Z") == "2024-10-01T12:00:00Z"
    assert new_like("TOO-SHORT")[3] == "-" and len(new_like("TOO-SHORT")) == 9
    assert all(c in "0123456789ABCDEF-" for c in new_like("3FA85F64-5717-4562-B3FC-2C963F66AFA6"))
    from mpsandbox.fixtures.formats import FixtureRequest

    form = FixtureRequest("POST", "/v1/events", "", [("Content-Type", "text/html")], b"x=1")
    rewriter = Rewriter(dt="now", ids="fresh")
    assert rewriter.request(form, time.time()) is form


def test_replay_library_needs_a_target():
    with pytest.raises(ValueError, match="settings"):
        replay([], options=ReplayOptions())


def test_pacing_by_rate_and_by_original_timing(tmp_path):
    from mpsandbox.fixtures.formats import event_request

    requests = [event_request(web_event(action=str(i))) for i in range(3)]
    for i, r in enumerate(requests):
        r.received_at = 1727784000.0 + (0, 0.3, 0.6)[i]
    settings = settings_for(tmp_path)
    original = replay(requests, settings=settings, options=ReplayOptions(pacing="original"))
    assert original.by_status == {"201": 3} and original.elapsed >= 0.55
    rate = replay(requests, settings=settings, options=ReplayOptions(pacing="rate", rate=10))
    assert rate.by_status == {"201": 3} and rate.elapsed >= 0.18
    fast = replay(requests, settings=settings, options=ReplayOptions(pacing="fast"))
    assert fast.elapsed < original.elapsed
    # The local pipeline judged them in the file's order whatever the pacing.
    assert [r["event"]["action"] for r in rows(tmp_path / "sandbox.db")] == ["0", "1", "2"] * 3


def test_replay_usage_errors(tmp_path):
    code, _, err = cli("replay", RECORDED / "events.json", "--fast", "--rate", "3")
    assert code == 2 and "choose one of --rate, --fast" in err
    code, _, err = cli(
        "replay",
        RECORDED / "events.json",
        "--to",
        "http://127.0.0.1:1/v1/events",
        "--db",
        tmp_path / "x.db",
    )
    assert code == 2 and "apply to the local pipeline" in err
    code, _, err = cli("replay", RECORDED / "events.json", "--to", "ftp://example.org/")
    assert code == 2 and "is not an http:// or https:// URL" in err
