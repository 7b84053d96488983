"""Stream configs: loading real snapshots, the EventStreamConfig API, production's stream checks.

Real files, a real server on loopback, real SQLite, and a real HTTP server as the dev wiki.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp import web
from multidict import CIMultiDict

from mpsandbox.config import Settings, from_environment, settings_from_json, settings_to_json
from mpsandbox.pipeline import MISSING_STREAM
from mpsandbox.platform.stream_configs import (
    StreamConfigError,
    StreamConfigSource,
    load_location,
    parse_constraints,
    parse_stream_configs,
    strip_trailing_commas,
)
from tests.conftest import WM
from tests.test_bad_input import VALID

JAVA_CONFIG = WM / "metrics-platform/java/src/test/resources/org/wikimedia/metrics_platform/config"
SNAPSHOT = JAVA_CONFIG / "streamconfigs.json"
SNAPSHOT_LOCAL = JAVA_CONFIG / "streamconfigs-local.json"
CONSISTENCY = WM / "metrics-platform/tests/consistency"

WEB_BASE = "analytics/product_metrics/web/base"
LOCAL_CONFIG = f"""
# a $wgEventStreams-style map, as a developer writes it
product_metrics.web_base:
  schema_title: {WEB_BASE}
  destination_event_service: eventgate-analytics-external
  sample: {{unit: session, rate: 0.5}}
  producers:
    metrics_platform_client:
      provide_values: [agent_client_platform, performer_session_id]
mediawiki.page_change.v1:
  schema_title: mediawiki/page/change
  destination_event_service: eventgate-main
  topic_prefixes: [eqiad., codfw.]
/^mpsandbox\\..+/:
  schema_title: mpsandbox/smoke_test
/^product_metrics\\./:
  schema_title: analytics/mediawiki/client/metrics_event
  destination_event_service: eventgate-analytics-external
empty.stream: {{}}
untitled.stream:
  destination_event_service: eventgate-analytics-external
"""


def event(**changes):
    e = json.loads(json.dumps(VALID))
    e.update(changes)
    return e


# loading ------------------------------------------------------------------------------


def test_real_snapshots_load():
    strict = load_location(str(SNAPSHOT))
    assert len(strict) == 100 and strict.problems == []
    assert strict.get("eventlogging_CentralNoticeImpression")["schema_title"] == (
        "analytics/legacy/centralnoticeimpression"
    )
    local = load_location(str(SNAPSHOT_LOCAL))
    assert len(local) > 100
    # the local snapshot is not strict JSON: it is repaired, and the repair is reported
    assert len(local.problems) == 1
    assert "trailing comma" in local.problems[0] and "streamconfigs-local.json" in local.problems[0]
    for name in ("stream_configs.json", "stream_configs_apps.json"):
        configs = load_location(str(CONSISTENCY / name))
        assert configs.names() == ["test.consistency"]
        settings = configs.get("test.consistency")
        assert settings["sample"] == {"rate": 1.0, "unit": "session"}
        assert "provide_values" in settings["producers"]["metrics_platform_client"]


def test_trailing_commas_outside_strings_only():
    text = '{"a": ",]", "b": [1, 2,\n ],\n "c": {"d": "x,}",},}'
    repaired, removed = strip_trailing_commas(text)
    assert removed == 3
    assert json.loads(repaired) == {"a": ",]", "b": [1, 2], "c": {"d": "x,}"}}
    assert strip_trailing_commas('{"a": "\\",]"}') == ('{"a": "\\",]"}', 0)


def test_regex_keys_exact_first_then_in_order():
    configs = parse_stream_configs(LOCAL_CONFIG, source="local.yaml")
    assert configs.problems == []
    assert configs.get("product_metrics.web_base")["schema_title"] == WEB_BASE  # exact wins
    m = configs.match("product_metrics.other")
    assert m.key == "/^product_metrics\\./" and m.by_regex
    assert configs.match("mpsandbox.smoke_test").key == "/^mpsandbox\\..+/"
    assert configs.get("mpsandbox") is None and configs.get("nope") is None
    assert configs.names()[0] == "product_metrics.web_base" and len(configs.names()) == 6


def test_list_shape_and_api_shape():
    listed = parse_stream_configs(
        json.dumps(
            [{"stream": "a", "schema_title": "t/a"}, {"stream": "/^b/", "schema_title": "t/b"}]
        )
    )
    assert listed.names() == ["a", "/^b/"] and listed.get("bee")["schema_title"] == "t/b"
    api = parse_stream_configs(json.dumps({"batchcomplete": True, "streams": {"x": {}}}))
    assert api.names() == ["x"]
    # a $wgEventStreams map that happens to have a stream named "streams" stays a map
    odd = parse_stream_configs(json.dumps({"streams": {"schema_title": "s"}, "other": {}}))
    assert odd.names() == ["streams", "other"]


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ('{"a": {"schema_title": }', "not valid JSON"),
        ("[1, 2]", "entry 0 of the list has no 'stream'"),
        ('"just a string"', "expected a map of stream names"),
        ("a: [1\nb: c: d", "not valid YAML or JSON"),
        ('{"error": {"code": "badvalue", "info": "Unrecognized value"}}', "answered an error"),
        ('{"a": 3}', "settings of stream 'a' are a int"),
        ("", "empty"),
    ],
)
def test_broken_configs_have_one_line_errors(text, expect):
    with pytest.raises(StreamConfigError) as info:
        parse_stream_configs(text, source="f.json")
    message = str(info.value)
    assert expect in message and message.startswith("f.json: ") and "\n" not in message


def test_as_api_streams_constraints_and_rate_overrides():
    configs = parse_stream_configs(LOCAL_CONFIG)
    out = configs.as_api(["product_metrics.web_base", "product_metrics.x", "unknown"])
    assert list(out["streams"]) == ["product_metrics.web_base", "product_metrics.x"]
    web_base = out["streams"]["product_metrics.web_base"]
    # every setting, plus `stream` (the key) and `topics`, as StreamConfig::toArray
    assert web_base["schema_title"] == WEB_BASE
    assert web_base["stream"] == "product_metrics.web_base"
    assert web_base["topics"] == ["product_metrics.web_base"]
    assert out["streams"]["product_metrics.x"]["stream"] == "/^product_metrics\\./"
    assert out["streams"]["product_metrics.x"]["topics"] == ["product_metrics.x"]
    page = configs.as_api(["mediawiki.page_change.v1"])["streams"]["mediawiki.page_change.v1"]
    assert page["topics"] == ["eqiad.mediawiki.page_change.v1", "codfw.mediawiki.page_change.v1"]
    every = configs.as_api()["streams"]
    assert list(every) == configs.names()
    assert every["/^mpsandbox\\..+/"]["topics"] == ["/^mpsandbox\\..+/"]

    apps = configs.as_api(constraints="destination_event_service=eventgate-analytics-external")
    assert list(apps["streams"]) == [
        "product_metrics.web_base",
        "/^product_metrics\\./",
        "untitled.stream",
    ]
    nested = configs.as_api(
        constraints=[
            "sample[unit]=session",
            "destination_event_service=eventgate-analytics-external",
        ]
    )
    assert list(nested["streams"]) == ["product_metrics.web_base"]
    assert configs.as_api(constraints="sample[rate]=0.5")["streams"].keys() == {
        "product_metrics.web_base"
    }
    listed = configs.as_api(
        constraints=["producers[metrics_platform_client][provide_values][]=performer_session_id"]
    )
    assert list(listed["streams"]) == ["product_metrics.web_base"]
    assert configs.as_api(constraints="stream=mpsandbox.x")["streams"].keys() == {
        "/^mpsandbox\\..+/"
    }
    assert configs.as_api(constraints="nothing=here") == {"streams": {}}

    overridden = configs.as_api(
        ["product_metrics.web_base", "empty.stream"],
        rate_overrides={"product_metrics.web_base": 1.0, "empty.stream": 0.25},
    )["streams"]
    assert overridden["product_metrics.web_base"]["sample"] == {"unit": "session", "rate": 1.0}
    assert overridden["empty.stream"]["sample"] == {"rate": 0.25}
    # the loaded copy is untouched
    assert configs.get("product_metrics.web_base")["sample"]["rate"] == 0.5
    assert parse_constraints("a[b][]=1|a[b][]=2|c") == {"a": {"b": ["1", "2"]}, "c": ""}


def test_real_snapshot_answers_the_apps_query():
    configs = load_location(str(SNAPSHOT))
    apps = configs.as_api(constraints="destination_event_service=eventgate-analytics-external")
    assert len(apps["streams"]) == 100
    # booleans compare as PHP casts them: true is "1"
    enabled = configs.as_api(constraints="canary_events_enabled=1")["streams"]
    assert enabled and all(s["canary_events_enabled"] is True for s in enabled.values())


def test_settings_round_trip_and_environment(monkeypatch):
    s = Settings(stream_config="http://localhost:8080/w/api.php?action=streamconfigs")
    assert settings_from_json(json.loads(json.dumps(settings_to_json(s)))) == s
    monkeypatch.setenv("MPSANDBOX_STREAM_CONFIG", "/tmp/streams.yaml")
    assert from_environment().stream_config == "/tmp/streams.yaml"


# the intake -------------------------------------------------------------------------------


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    f = tmp_path / "streams.yaml"
    f.write_text(LOCAL_CONFIG)
    return f


async def get_json(http, url):
    async with http.get(url) as resp:
        return resp.status, CIMultiDict(resp.headers), await resp.read()


async def test_served_api_like_mediawiki(make_server, http, config_file):
    server = await make_server(stream_config=str(config_file))
    base = server.url + "/w/api.php?action=streamconfigs&format=json"
    status, headers, body = await get_json(
        http, base + "&streams=product_metrics.web_base|product_metrics.x|nope"
    )
    data = json.loads(body)
    # MediaWiki's api.php sends CORS headers only when asked with origin=* (anonymous).
    assert status == 200 and "access-control-allow-origin" not in headers
    _, anonymous, _ = await get_json(http, base + "&origin=*")
    assert anonymous["access-control-allow-origin"] == "*"
    assert anonymous["access-control-allow-credentials"] == "false"
    assert list(data) == ["streams"]
    assert list(data["streams"]) == ["product_metrics.web_base", "product_metrics.x"]
    _, _, body = await get_json(
        http, base + "&constraints=destination_event_service=eventgate-main&all_settings=1"
    )
    assert list(json.loads(body)["streams"]) == ["mediawiki.page_change.v1"]
    _, _, body = await get_json(http, base + "&streams=empty.stream")
    assert (
        body == b'{"streams":{"empty.stream":{"stream":"empty.stream","topics":["empty.stream"]}}}'
    )
    _, _, body = await get_json(http, base + "&streams=nope")
    assert body == b'{"streams":{}}'

    status, headers, body = await get_json(http, server.url + "/w/api.php?action=query")
    error = json.loads(body)["error"]
    assert status == 200 and headers["MediaWiki-API-Error"] == "badvalue"
    assert error["code"] == "badvalue"
    assert error["info"] == 'Unrecognized value for parameter "action": query.'
    status, headers, body = await get_json(http, server.url + "/w/api.php")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b"action=streamconfigs" in body

    # eventgate-wikimedia's route: a plain map, comma or pipe separated, unknowns left out
    status, _, body = await get_json(
        http, server.url + "/v1/stream-configs/product_metrics.web_base,nope|mpsandbox.smoke"
    )
    data = json.loads(body)
    assert status == 200 and list(data) == ["product_metrics.web_base", "mpsandbox.smoke"]
    assert data["mpsandbox.smoke"]["schema_title"] == "mpsandbox/smoke_test"
    _, _, body = await get_json(http, server.url + "/v1/stream-configs")
    assert list(json.loads(body)) == parse_stream_configs(LOCAL_CONFIG).names()

    server.sandbox.stream_rate_overrides["product_metrics.web_base"] = 1.0
    _, _, body = await get_json(http, base + "&streams=product_metrics.web_base")
    assert json.loads(body)["streams"]["product_metrics.web_base"]["sample"]["rate"] == 1.0

    _, _, body = await get_json(http, server.url + "/sandbox/stats")
    stats = json.loads(body)["stream_configs"]
    assert stats["location"] == str(config_file) and stats["streams"] == 6
    assert stats["last_error"] is None


async def test_without_stream_configs(server, http):
    status, _, body = await get_json(http, server.url + "/w/api.php?action=streamconfigs")
    assert status == 200 and json.loads(body) == {"streams": {}}
    status, _, body = await get_json(http, server.url + "/v1/stream-configs/a")
    assert status == 404 and b"Cannot GET /v1/stream-configs/a" in body
    # every stream is allowed
    async with http.post(server.url + "/v1/events", json=event(meta={"stream": "any"})) as resp:
        assert resp.status == 201


async def post_events(http, server, body):
    async with http.post(server.url + "/v1/events", json=body) as resp:
        return resp.status, resp.reason, await resp.json(content_type=None)


async def stored(http, server, n):
    async with http.get(server.url + f"/sandbox/wait?count={n}&timeout=10") as resp:
        assert resp.status == 200
    async with http.get(server.url + f"/sandbox/events?limit={n}&order=asc") as resp:
        page = await resp.json()
    details = []
    for e in page["events"]:
        async with http.get(server.url + f"/sandbox/events/{e['id']}") as resp:
            details.append(await resp.json())
    return details


async def test_enforcement_as_production(make_server, http, config_file):
    server = await make_server(stream_config=str(config_file))
    uri = "/analytics/product_metrics/web/base/1.3.0"
    ok = event()
    not_configured = event(meta={"stream": "no.such.stream", "id": "given-id"})
    wrong_title = event(meta={"stream": "product_metrics.other"})
    untitled = event(meta={"stream": "untitled.stream"})
    empty = event(meta={"stream": "empty.stream"})
    no_stream = event(meta={"dt": "2024-10-01T12:00:00.000Z"})
    status, reason, body = await post_events(
        http, server, [ok, not_configured, wrong_title, untitled, empty, no_stream]
    )
    assert status == 207
    assert reason == "1 out of 6 events were accepted, but 5 failed (0 invalid and 5 errored)."
    messages = [e["context"]["message"] for e in body["error"]]
    assert all(e["status"] == "error" for e in body["error"])
    details = await stored(http, server, 6)
    filled = [d["fills"].get("meta.id", {}).get("value") for d in details]
    assert messages == [
        f"event given-id of schema at {uri} destined to stream no.such.stream is not allowed "
        "in stream; no.such.stream is not configured.",
        f"event {filled[2]} of schema at {uri} destined to stream product_metrics.other is not "
        "allowed in stream; schema title must be analytics/mediawiki/client/metrics_event.",
        f"event {filled[3]} of schema at {uri} destined to stream untitled.stream is not "
        "allowed in stream; untitled.stream does not have a schema_title setting.",
        f"event {filled[4]} of schema at {uri} destined to stream empty.stream is not allowed "
        "in stream; empty.stream is configured but does not have any settings.",
        MISSING_STREAM,
    ]
    assert [d["verdict"] for d in details] == ["valid"] + ["error"] * 5
    # the stream config that judged each event is in its explanation
    judged = [d["explanation"]["stream_config"] for d in details]
    assert judged[0]["outcome"] == "allowed" and judged[0]["matched"] == "product_metrics.web_base"
    assert judged[0]["config"]["schema_title"] == WEB_BASE
    assert judged[0]["source"] == str(config_file)
    assert judged[1]["outcome"] == "not_configured" and "matched" not in judged[1]
    assert judged[2]["outcome"] == "schema_title_mismatch"
    assert judged[2]["matched"] == "/^product_metrics\\./"
    assert judged[2]["schema_title"] == WEB_BASE
    assert [j["outcome"] for j in judged[3:]] == ["no_schema_title", "no_settings", "no_stream"]
    # a missing schema is still reported first, as production loads the schema first
    status, _, body = await post_events(
        http, server, event(**{"$schema": "/analytics/nope/1.0.0", "meta": {"stream": "x"}})
    )
    assert body["error"][0]["context"]["message"].startswith("Failed loading schema at")


async def test_validate_command_judges_streams_too(tmp_path, config_file):
    f = tmp_path / "events.json"
    f.write_text(json.dumps([event(), event(meta={"stream": "elsewhere"})]))
    res = subprocess.run(
        [
            *(sys.executable, "-m", "mpsandbox", "validate", str(f), "--format", "json"),
            *("--schemas", str(WM / "schemas/secondary/jsonschema")),
            *("--stream-config", str(config_file)),
        ],
        capture_output=True,
        timeout=60,
    )
    verdicts = [json.loads(line) for line in res.stdout.splitlines()]
    assert res.returncode == 1 and [v["verdict"] for v in verdicts] == ["valid", "error"]


# a dev wiki as the source ----------------------------------------------------------------


class FakeWiki:
    """A real HTTP server answering api.php?action=streamconfigs from a mutable map."""

    def __init__(self):
        self.streams: dict = {"wiki.stream": {"schema_title": WEB_BASE}}
        self.fail = False
        self.requests = 0
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.fail:
            return web.Response(status=503, text="down for maintenance")
        assert request.query["action"] == "streamconfigs"
        return web.json_response({"streams": self.streams})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/w/api.php", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/w/api.php?action=streamconfigs&format=json"


@pytest.fixture
async def wiki():
    w = FakeWiki()
    await w.start()
    yield w
    await w.runner.cleanup()


async def wait_until(predicate, timeout=10.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_url_source_refreshes_and_keeps_the_last_good_copy(make_server, http, wiki):
    server = await make_server(stream_config=wiki.url, stream_config_refresh_s=0.2)
    source = server.sandbox.stream_source
    api = server.url + "/w/api.php?action=streamconfigs&format=json"
    _, _, body = await get_json(http, api)
    assert list(json.loads(body)["streams"]) == ["wiki.stream"]

    wiki.streams = {"wiki.stream": {"schema_title": WEB_BASE}, "new.stream": {}}
    await wait_until(lambda: "new.stream" in server.sandbox.stream_configs)
    _, _, body = await get_json(http, api)
    assert list(json.loads(body)["streams"]) == ["wiki.stream", "new.stream"]

    wiki.fail = True
    failures = source.failures
    await wait_until(lambda: source.failures > failures)
    assert "HTTP 503" in source.last_error and wiki.url in source.last_error
    _, _, body = await get_json(http, api)
    assert list(json.loads(body)["streams"]) == ["wiki.stream", "new.stream"]  # last good copy
    _, _, body = await get_json(http, server.url + "/sandbox/stats")
    stats = json.loads(body)["stream_configs"]
    assert stats["stale"] is True and "HTTP 503" in stats["last_error"] and stats["kind"] == "url"
    # events are still judged by the last good copy
    status, _, _ = await post_events(http, server, event(meta={"stream": "wiki.stream"}))
    assert status == 201

    wiki.fail = False
    await wait_until(lambda: source.last_error is None)


async def test_file_source_is_reread_when_it_changes(tmp_path):
    f = tmp_path / "s.json"
    f.write_text('{"a": {}}')
    source = StreamConfigSource(str(f), refresh_s=0)
    assert source.load().names() == ["a"]
    assert await source.refresh() is False  # unchanged: not read again
    f.write_text('{"a": {}, "b": {}}')
    import os

    os.utime(f, (1, 1))
    assert await source.refresh() is True and source.current.names() == ["a", "b"]
    f.write_text("{broken")
    os.utime(f, (2, 2))
    assert await source.refresh() is False
    assert source.current.names() == ["a", "b"] and "not valid JSON" in source.last_error


async def test_unreachable_url_fails_start(make_server):
    with pytest.raises(StreamConfigError, match="could not fetch"):
        await make_server(stream_config="http://127.0.0.1:9/w/api.php?action=streamconfigs")


# the command line --------------------------------------------------------------------------


def test_serve_with_a_broken_stream_config_exits_2(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"a": {"schema_title": "x"')
    for path, expect in ((broken, "not valid JSON"), (tmp_path / "missing.yaml", "no such file")):
        res = subprocess.run(
            [
                *(sys.executable, "-m", "mpsandbox", "serve", "--port", "0"),
                *("--db", str(tmp_path / "db.sqlite"), "--stream-config", str(path)),
            ],
            capture_output=True,
            timeout=60,
        )
        err = res.stderr.decode().strip()
        assert res.returncode == 2, err
        assert err.count("\n") == 0 and err.startswith(f"mpsandbox: stream config {path}: ")
        assert expect in err
    assert not (tmp_path / "db.sqlite").exists()
