"""Local overrides: the store-backed core, the HTTP API, the CLI, the Test Kitchen-style
configuration API and the sampling what-if. Real SQLite files, real servers on loopback,
the real command line in subprocesses, and the shared enrollment-string vectors."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from mpsandbox.config import Settings, from_environment, settings_from_json, settings_to_json
from mpsandbox.overrides import OverrideError, Overrides, parse_cli_value
from mpsandbox.platform import experiments as exps
from mpsandbox.platform.sampling import UINT32_MAX
from tests.conftest import WM
from tests.test_stream_configs import LOCAL_CONFIG, event

PY = sys.executable
VECTORS = json.loads((WM / "derived" / "enrollment_string_vectors.json").read_text())

EXPERIMENTS = """
- name: my-awesome-experiment
  groups: [control, treatment]
  sample_rate: {default: 0.5, "1": [testwiki]}
  sampling_unit: mw-user
  stream: product_metrics.web_base
  schema: /analytics/product_metrics/web/base/2.1.0
  contextual_attributes: [page_id]
- name: sticky-headers-2025
  groups: [control, treatment, treatment-b]
  sample_rate: 0.1
  sampling_unit: edge-unique
  start: "2026-01-01T00:00:00Z"
  end: "2027-01-01T00:00:00Z"
"""

INSTRUMENTS = """
- name: web-scroll-ui
  sample_unit: pageview
  sample_rate: {default: 1, "0.5": [bnwiki]}
  stream_name: mediawiki.web_ui_scroll
  schema_title: analytics/mediawiki/web_ui_scroll
  contextual_attributes: [page_namespace_id, mediawiki_skin]
- name: desktop-ui-interactions
  stream: mediawiki.desktop_ui_interactions
  schema: analytics/product_metrics/mediawiki/desktop_ui_interactions
  sample: {unit: session, rate: 0.5}
"""


def run_cli(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PY, "-m", "mpsandbox", *args], capture_output=True, timeout=60, env=env, text=True
    )


@pytest.fixture
def experiments_file(tmp_path):
    path = tmp_path / "experiments.yaml"
    path.write_text(EXPERIMENTS)
    return path


# the core ------------------------------------------------------------------------------


def test_set_list_delete_clear_all_and_revert_with_audit(tmp_path):
    clock = iter(range(1_800_000_000, 1_800_000_100))
    o = Overrides(tmp_path / "o.db", clock=lambda: float(next(clock)))
    assert o.list() == [] and o.mpo() == "" and o.revert_last("cli") is None

    first = o.set("experiment", "my-awesome-experiment", "treatment", "cli")
    assert first["previous"] is None
    assert first["override"]["set_by"] == "cli"
    assert (
        first["override"]["set_at_iso"] == "2027-01-15T08:00:01.000Z"
    )  # tick 0 went to the revert
    again = o.set("experiment", "my-awesome-experiment", "control", "api")
    assert again["previous"]["value"] == "treatment" and again["override"]["value"] == "control"
    o.set("sample_rate", "product_metrics.web_base", 1, "tui")
    o.set("flag", "dark-mode", {"on": True, "level": [1, 2]}, "api")
    assert [(x.kind, x.key, x.value, x.set_by) for x in o.list()] == [
        ("experiment", "my-awesome-experiment", "control", "api"),
        ("flag", "dark-mode", {"on": True, "level": [1, 2]}, "api"),
        ("sample_rate", "product_metrics.web_base", 1, "tui"),
    ]
    assert o.rate_overrides() == {"product_metrics.web_base": 1.0}
    assert o.flags() == {"dark-mode": {"on": True, "level": [1, 2]}}

    assert o.delete("flag", "dark-mode", "cli")["value"] == {"on": True, "level": [1, 2]}
    assert o.delete("flag", "dark-mode", "cli") is None  # nothing left to delete

    # revert all: one transaction, returning what it removed
    removed = o.clear_all("cli")
    assert [(r["kind"], r["key"]) for r in removed] == [
        ("experiment", "my-awesome-experiment"),
        ("sample_rate", "product_metrics.web_base"),
    ]
    assert o.list() == [] and o.clear_all("cli") == []

    # the audit: every change, newest first, with old and new values and who did it
    history = o.history()
    assert [(h["action"], h["kind"], h["by"]) for h in history] == [
        ("clear", "sample_rate", "cli"),
        ("clear", "experiment", "cli"),
        ("delete", "flag", "cli"),
        ("set", "flag", "api"),
        ("set", "sample_rate", "tui"),
        ("set", "experiment", "api"),
        ("set", "experiment", "cli"),
    ]
    assert history[5]["old_value"] == "treatment" and history[5]["new_value"] == "control"
    assert history[0]["batch"] == history[1]["batch"]  # one step

    # undo the clear: both come back exactly as they were (who set them, when)
    undone = o.revert_last("tui")
    assert undone["undone"]["action"] == "clear"
    restored = {(x.kind, x.key): x for x in o.list()}
    assert restored[("experiment", "my-awesome-experiment")].set_by == "api"
    assert restored[("sample_rate", "product_metrics.web_base")].set_at == 1_800_000_003
    # further back: the delete of the flag, then the set of the flag
    assert o.revert_last("cli")["undone"]["action"] == "delete"
    assert o.get("flag", "dark-mode").value == {"on": True, "level": [1, 2]}
    assert o.revert_last("cli")["undone"]["action"] == "set"
    assert o.get("flag", "dark-mode") is None
    o.close()


def test_overrides_persist_and_other_connections_see_changes(tmp_path):
    db = tmp_path / "o.db"
    a = Overrides(db)
    b = Overrides(db)
    a.set("sample_rate", "/^product_metrics\\./", 0.25, "cli")
    assert b.rate_overrides() == {"/^product_metrics\\./": 0.25}  # refreshed by revision
    a.close()
    b.close()
    reopened = Overrides(db)
    assert [(x.kind, x.key, x.value) for x in reopened.list()] == [
        ("sample_rate", "/^product_metrics\\./", 0.25)
    ]
    # the tables are the migration's, in the same file as the events
    conn = sqlite3.connect(db)
    names = {r[0] for r in conn.execute("SELECT name FROM _migrations")}
    assert "0004_overrides" in names
    conn.close()


def test_validation(tmp_path, experiments_file):
    loaded = exps.load_experiments(experiments_file)
    o = Overrides(tmp_path / "o.db", experiments=loaded)
    bad = [
        ("nope", "x", 1, "kind must be one of"),
        ("experiment", "short", "a", "experiment name 'short' must match"),
        ("experiment", "my-awesome-experiment", "-bad", "group '-bad'"),
        ("experiment", "my-awesome-experiment", 3, "group 3"),
        ("experiment", "unknown-experiment", "a", "not in the loaded experiments"),
        ("experiment", "my-awesome-experiment", "treatment-b", "has no group 'treatment-b'"),
        ("sample_rate", "s", 1.5, "must be in 0..1"),
        ("sample_rate", "s", -0.1, "must be in 0..1"),
        ("sample_rate", "s", True, "must be a number"),
        ("sample_rate", "s", "half", "must be a number"),
        ("sample_rate", "s", float("nan"), "must be a number"),
        ("sample_rate", "", 0.5, "non-empty key"),
        ("flag", "f", float("inf"), "flag value must be JSON"),
        ("flag", "f", {1, 2}, "flag value must be JSON"),
    ]
    for kind, key, value, message in bad:
        with pytest.raises(OverrideError, match=message.replace("(", r"\(")):
            o.set(kind, key, value, "cli")
    with pytest.raises(OverrideError, match="set_by"):
        o.set("flag", "f", 1, "someone")
    assert o.list() == [] and o.history() == []
    # valid edges
    o.set("sample_rate", "s", 0, "cli")
    o.set("sample_rate", "t", "1", "cli")  # a numeric string is a number
    o.set("flag", "f", None, "cli")
    o.set("experiment", "sticky-headers-2025", "treatment-b", "cli")
    assert o.rate_overrides() == {"s": 0.0, "t": 1.0} and o.flags() == {"f": None}
    # without loaded experiments only the name and group rules apply
    free = Overrides(tmp_path / "free.db")
    free.set("experiment", "any-experiment-name", "B", "cli")
    assert parse_cli_value("flag", "on") == "on" and parse_cli_value("flag", "[1]") == [1]
    assert parse_cli_value("sample_rate", "0.5") == 0.5


def test_mpo_string_and_wiki_url_match_the_vectors(tmp_path):
    examples = VECTORS["mpo_query_param"]["examples"]
    for i, example in enumerate(examples):
        o = Overrides(tmp_path / f"v{i}.db", wiki_url="http://localhost:8080/wiki/Main_Page")
        if "parsed" not in example:
            with pytest.raises(OverrideError, match="mpo 'bad-no-colon'"):
                o.set_mpo(example["raw"])
            assert o.list() == []
            continue
        o.set_mpo(example["raw"], "cli")
        assert o.experiment_groups() == example["parsed"]
        mpo = o.mpo()
        assert mpo == example["raw"].rstrip(";")  # no trailing ';', which PHP refuses
        assert exps.parse_mpo(mpo, dialect="js") == example["parsed"]
        assert exps.parse_mpo(mpo, dialect="php") == example["parsed"]
        assert o.wiki_url() == f"http://localhost:8080/wiki/Main_Page?mpo={mpo}"

    o = Overrides(tmp_path / "u.db")
    assert o.wiki_url() is None
    o.set("experiment", "exp-two-xyz", "B", "cli")
    o.set("experiment", "exp-one-abc", "control", "cli")
    assert o.mpo() == "exp-one-abc:control;exp-two-xyz:B"  # name order
    base = "http://localhost:8080/w/index.php?title=Main_Page&mpo=old-exp-one:A&useskin=vector#top"
    assert o.wiki_url(base) == (
        "http://localhost:8080/w/index.php?title=Main_Page&useskin=vector"
        "&mpo=exp-one-abc:control;exp-two-xyz:B#top"
    )
    o.clear("experiment", "cli")
    assert o.wiki_url(base) == (
        "http://localhost:8080/w/index.php?title=Main_Page&useskin=vector#top"
    )


def test_settings_fields_are_json_and_read_from_the_environment(monkeypatch):
    s = Settings(experiments_file="e.yaml", instruments="inst", wiki_url="http://w/")
    assert settings_from_json(json.loads(json.dumps(settings_to_json(s)))) == s
    monkeypatch.setenv("MPSANDBOX_EXPERIMENTS", "x.yaml")
    monkeypatch.setenv("MPSANDBOX_WIKI_URL", "http://wiki.local/")
    env = from_environment(Settings())
    assert env.experiments_file == "x.yaml" and env.wiki_url == "http://wiki.local/"


# HTTP ----------------------------------------------------------------------------------


async def call(http, method, url, **kw):
    async with http.request(method, url, **kw) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_http_api_set_list_delete_clear_and_revert(make_server, http, experiments_file):
    server = await make_server(
        experiments_file=str(experiments_file), wiki_url="http://localhost:8080/wiki/Main_Page"
    )
    url = server.url + "/sandbox/overrides"
    status, data = await call(http, "GET", url)
    assert status == 200 and data["overrides"] == [] and data["mpo"] == ""
    assert data["wiki_url"] == "http://localhost:8080/wiki/Main_Page"

    body = {"kind": "experiment", "key": "my-awesome-experiment", "value": "treatment"}
    status, data = await call(http, "PUT", url, json=body)
    assert status == 200 and data["override"]["set_by"] == "api" and data["previous"] is None
    assert data["mpo"] == "my-awesome-experiment:treatment"
    assert data["wiki_url"] == (
        "http://localhost:8080/wiki/Main_Page?mpo=my-awesome-experiment:treatment"
    )
    await call(http, "PUT", url, json={"kind": "flag", "key": "f", "value": [1], "set_by": "tui"})
    status, data = await call(http, "PUT", url, json={**body, "value": "nope"})
    assert status == 400 and "has no group 'nope'" in data["detail"]
    for bad in (
        b"{",
        b"[]",
        b'{"kind": "flag"}',
        b'{"kind":"flag","key":"f","value":1,"set_by":"cli"}',
    ):
        status, data = await call(http, "PUT", url, data=bad)
        assert status == 400, bad

    status, data = await call(http, "GET", url)
    assert [(o["key"], o["set_by"]) for o in data["overrides"]] == [
        ("my-awesome-experiment", "api"),
        ("f", "tui"),
    ]
    assert data["history"][0]["action"] == "set"

    status, data = await call(http, "DELETE", url + "?kind=flag&key=f")
    assert status == 200 and data["removed"][0]["value"] == [1]
    status, _ = await call(http, "DELETE", url + "?kind=flag&key=f")
    assert status == 404
    status, _ = await call(http, "DELETE", url + "?key=f")
    assert status == 400
    status, data = await call(http, "DELETE", url)  # everything, one step
    assert [o["key"] for o in data["removed"]] == ["my-awesome-experiment"]
    assert data["overrides"] == [] and data["mpo"] == ""
    status, data = await call(http, "POST", url + "/revert")
    assert data["reverted"]["undone"]["action"] == "clear"
    assert data["mpo"] == "my-awesome-experiment:treatment"


async def test_overrides_survive_a_restart(make_server, http):
    first = await make_server()
    await call(
        http,
        "PUT",
        first.url + "/sandbox/overrides",
        json={"kind": "sample_rate", "key": "s.one", "value": 0.5},
    )
    await first.stop()
    second = await make_server()
    _, data = await call(http, "GET", second.url + "/sandbox/overrides")
    assert data["rate_overrides"] == {"s.one": 0.5}
    assert second.sandbox.stream_rate_overrides == {"s.one": 0.5}


async def test_served_stream_configs_follow_overrides_set_by_the_cli(make_server, http, tmp_path):
    config = tmp_path / "streams.yaml"
    config.write_text(LOCAL_CONFIG)
    server = await make_server(stream_config=str(config))
    api = (
        server.url + "/w/api.php?action=streamconfigs&format=json&streams=product_metrics.web_base"
    )

    async def served_rate():
        _, data = await call(http, "GET", api)
        return data["streams"]["product_metrics.web_base"]["sample"]["rate"]

    assert await served_rate() == 0.5
    db = str(server.sandbox.settings.db)
    res = run_cli("override", "set", "sample_rate", "product_metrics.web_base", "1", "--db", db)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("sample_rate product_metrics.web_base = 1.0")
    assert await served_rate() == 1.0  # the next read sees the other process's change
    _, data = await call(http, "GET", server.url + "/v1/stream-configs/product_metrics.web_base")
    assert data["product_metrics.web_base"]["sample"] == {"unit": "session", "rate": 1.0}
    # a regex key's rate applies to every stream it serves
    run_cli("override", "set", "sample_rate", "/^mpsandbox\\..+/", "0.1", "--db", db)
    _, data = await call(http, "GET", server.url + "/v1/stream-configs/mpsandbox.smoke")
    assert data["mpsandbox.smoke"]["sample"] == {"rate": 0.1}
    # the background poll applies changes without any read too
    run_cli("override", "clear", "--all", "--db", db)
    for _ in range(40):
        if server.sandbox.stream_rate_overrides == {}:
            break
        await __import__("asyncio").sleep(0.1)
    assert server.sandbox.stream_rate_overrides == {}
    assert await served_rate() == 0.5


async def test_test_kitchen_api(make_server, http, experiments_file, tmp_path):
    instruments = tmp_path / "instruments"
    instruments.mkdir()
    (instruments / "scroll.yaml").write_text(INSTRUMENTS)
    (instruments / "README.md").write_text("not read")
    server = await make_server(experiments_file=str(experiments_file), instruments=str(instruments))
    status, rows = await call(http, "GET", server.url + "/api/v1/experiments")
    assert status == 200
    assert rows == [
        {
            "name": "my-awesome-experiment",
            "start": "2000-01-01T00:00:00Z",
            "end": "9999-12-31T23:59:59Z",
            "user_identifier_type": "mw-user",
            "groups": ["control", "treatment"],
            "sample_rate": {"default": 0.5, "1": ["testwiki"]},
            "stream_name": "product_metrics.web_base",
            "contextual_attributes": ["page_id"],
            "schema_id": "/analytics/product_metrics/web/base/2.1.0",
        },
        {
            "name": "sticky-headers-2025",
            "start": "2026-01-01T00:00:00Z",
            "end": "2027-01-01T00:00:00Z",
            "user_identifier_type": "edge-unique",
            "groups": ["control", "treatment", "treatment-b"],
            "sample_rate": {"default": 0.1},
            "stream_name": None,
            "contextual_attributes": [],
        },
    ]
    # the rows read back as experiments (Test Kitchen's shape is one this project reads)
    assert list(exps.parse_experiments(rows)) == ["my-awesome-experiment", "sticky-headers-2025"]

    status, inst = await call(http, "GET", server.url + "/api/v1/instruments")
    assert status == 200
    assert inst == [
        {
            "name": "web-scroll-ui",
            "start": "2000-01-01T00:00:00Z",
            "end": "9999-12-31T23:59:59Z",
            "sample_rate": {"default": 1, "0.5": ["bnwiki"]},
            "stream_name": "mediawiki.web_ui_scroll",
            "schema_title": "analytics/mediawiki/web_ui_scroll",
            "contextual_attributes": ["page_namespace_id", "mediawiki_skin"],
            "sample_unit": "pageview",
        },
        {
            "name": "desktop-ui-interactions",
            "start": "2000-01-01T00:00:00Z",
            "end": "9999-12-31T23:59:59Z",
            "sample_rate": {"default": 0.5},
            "stream_name": "mediawiki.desktop_ui_interactions",
            "schema_title": "analytics/product_metrics/mediawiki/desktop_ui_interactions",
            "contextual_attributes": [],
            "sample_unit": "session",
        },
    ]

    # overrides applied
    url = server.url + "/sandbox/overrides"
    await call(
        http,
        "PUT",
        url,
        json={"kind": "experiment", "key": "sticky-headers-2025", "value": "treatment-b"},
    )
    await call(
        http,
        "PUT",
        url,
        json={"kind": "sample_rate", "key": "mediawiki.web_ui_scroll", "value": 0.25},
    )
    _, rows = await call(http, "GET", server.url + "/api/v1/experiments")
    sticky = rows[1]
    assert sticky["groups"] == ["treatment-b"] and sticky["sample_rate"] == {"default": 1}
    assert sticky["mpsandbox_override"] == {
        "group": "treatment-b",
        "mpo": "sticky-headers-2025:treatment-b",
        "groups": ["control", "treatment", "treatment-b"],
        "sample_rate": {"default": 0.1},
    }
    assert "mpsandbox_override" not in rows[0]
    # Test Kitchen's assignment of the served row puts every subject in the forced group
    for user in range(200):
        subject = exps.subject_id(user, "sticky-headers-2025")
        assert exps.assign(subject, sticky["sample_rate"]["default"], sticky["groups"]) == (
            True,
            "treatment-b",
        )
    _, inst = await call(http, "GET", server.url + "/api/v1/instruments")
    assert inst[0]["sample_rate"] == {"default": 0.25}
    assert inst[0]["mpsandbox_override"]["sample_rate"] == {"default": 1, "0.5": ["bnwiki"]}
    assert "mpsandbox_override" not in inst[1]


async def test_test_kitchen_api_without_configs(server, http):
    assert await call(http, "GET", server.url + "/api/v1/experiments") == (200, [])
    assert await call(http, "GET", server.url + "/api/v1/instruments") == (200, [])


def _session(value_hex8: str, n: int) -> str:
    return value_hex8 + f"{n:012x}"


async def test_sampling_whatif_counts_by_hand(make_server, http, tmp_path):
    config = tmp_path / "streams.yaml"
    config.write_text(LOCAL_CONFIG)  # product_metrics.web_base samples by session at 0.5
    server = await make_server(stream_config=str(config))
    stream = "product_metrics.web_base"
    # sampling values: 00000000 -> 0, 40000000 -> 0.25, 80000000 -> 0.5000000001,
    # ffffffff -> 1.0 exactly; each id twice (distinct ids count once)
    heads = ["00000000", "40000000", "80000000", "ffffffff"]
    events = []
    for i, head in enumerate(heads):
        for _ in range(2):
            events.append(event(performer={"is_logged_in": False, "session_id": _session(head, i)}))
    # another stream: one more session (only in scope "all"), and an event with no session
    events.append(
        event(
            meta={"stream": "mpsandbox.other"},
            performer={"session_id": _session("20000000", 9)},
        )
    )
    events.append(event(performer={"is_logged_in": False}))
    async with http.post(server.url + "/v1/events", json=events) as resp:
        assert resp.status in (201, 207, 400)
    async with http.get(server.url + f"/sandbox/wait?count={len(events)}&timeout=10") as resp:
        assert resp.status == 200
    assert int("80000000", 16) / UINT32_MAX > 0.5

    base = server.url + "/sandbox/whatif/sampling?stream=" + stream
    status, data = await call(http, "GET", base + "&rate=0.5")
    assert status == 200
    assert data["unit"] == "session" and data["unit_from"] == "stream config"
    assert data["identifier_field"] == "performer.session_id"
    assert data["configured_rate"] == 0.5 and data["override_rate"] is None
    # by hand: at 0.5, ids 00000000 and 40000000 are in (0.5000000001 and 1.0 are not)
    assert data["scopes"]["stream"] == {
        "ids": 4,
        "web": {"in_sample": 2, "out_of_sample": 2, "share": 0.5},
        "app": {"in_sample": 2, "out_of_sample": 2, "share": 0.5},
    }
    # all captured events: 20000000 (0.125) is in too
    assert data["scopes"]["all"]["ids"] == 5
    assert data["scopes"]["all"]["web"]["in_sample"] == 3

    # at rate 1 the rules differ: JS leaves ffffffff out (1.0 < 1 is false), Java takes all
    _, data = await call(http, "GET", base + "&rate=1")
    assert data["scopes"]["stream"]["web"] == {"in_sample": 3, "out_of_sample": 1, "share": 0.75}
    assert data["scopes"]["stream"]["app"] == {"in_sample": 4, "out_of_sample": 0, "share": 1.0}
    # at rate 0 nothing is in
    _, data = await call(http, "GET", base + "&rate=0")
    assert data["scopes"]["stream"]["web"]["in_sample"] == 0
    assert data["scopes"]["stream"]["app"]["in_sample"] == 0
    # without rate=: the override when there is one, else the configured rate
    _, data = await call(http, "GET", base)
    assert data["rate"] == 0.5
    await call(
        http,
        "PUT",
        server.url + "/sandbox/overrides",
        json={"kind": "sample_rate", "key": stream, "value": 0.3},
    )
    _, data = await call(http, "GET", base)
    assert data["rate"] == 0.3 and data["override_rate"] == 0.3
    assert data["scopes"]["stream"]["web"]["in_sample"] == 2  # 0 and 0.25 < 0.3
    # by pageview: these events carry none
    _, data = await call(http, "GET", base + "&rate=1&unit=pageview")
    assert data["unit_from"] == "query" and data["scopes"]["stream"]["ids"] == 0
    assert data["scopes"]["stream"]["web"]["share"] is None
    # unit= alone covers every captured event
    _, data = await call(http, "GET", server.url + "/sandbox/whatif/sampling?unit=session&rate=0.2")
    assert list(data["scopes"]) == ["all"] and data["scopes"]["all"]["web"]["in_sample"] == 2
    for bad in ("&rate=2", "&rate=x", "&unit=user"):
        status, _ = await call(http, "GET", base + bad)
        assert status == 400, bad
    status, data = await call(http, "GET", server.url + "/sandbox/whatif/sampling?stream=unknown")
    assert status == 400 and "give unit=" in data["detail"]


# the command line ----------------------------------------------------------------------


def test_cli_set_list_clear_and_revert(tmp_path, experiments_file):
    db = str(tmp_path / "cli.db")
    common = ["--db", db, "--experiments", str(experiments_file)]
    wiki = ["--wiki-url", "http://localhost:8080/wiki/Main_Page?useskin=vector"]
    res = run_cli(
        "override", "set", "experiment", "my-awesome-experiment", "treatment", *common, *wiki
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [
        "experiment my-awesome-experiment = treatment",
        "mpo: my-awesome-experiment:treatment",
        "wiki: http://localhost:8080/wiki/Main_Page?useskin=vector&mpo=my-awesome-experiment:treatment",
    ]
    res = run_cli("override", "set", "flag", "banner", '{"text": "hi"}', *common)
    assert res.returncode == 0
    res = run_cli("override", "set", "flag", "banner", "on", *common)
    assert res.stdout.startswith('flag banner = on (was {"text":"hi"})')

    res = run_cli("override", "set", "experiment", "my-awesome-experiment", "nope", *common)
    assert res.returncode == 2 and "has no group 'nope'" in res.stderr
    res = run_cli("override", "set", "sample_rate", "s", "2", *common)
    assert res.returncode == 2 and "must be in 0..1" in res.stderr

    res = run_cli("override", "list", *common)
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["KIND", "KEY", "VALUE", "SET", "BY", "SET", "AT"]
    assert lines[1].split()[:4] == ["experiment", "my-awesome-experiment", "treatment", "cli"]
    assert lines[2].split()[:4] == ["flag", "banner", "on", "cli"]
    assert lines[3] == "mpo: my-awesome-experiment:treatment"
    data = json.loads(run_cli("override", "list", "--format", "json", *common).stdout)
    assert data["mpo"] == "my-awesome-experiment:treatment"
    assert [o["key"] for o in data["overrides"]] == ["my-awesome-experiment", "banner"]

    res = run_cli("override", "clear", *common)
    assert res.returncode == 2 and "--all" in res.stderr
    res = run_cli("override", "clear", "flag", "missing", *common)
    assert res.returncode == 1
    res = run_cli("override", "clear", "flag", *common)
    assert res.stdout.splitlines()[0] == "removed flag banner = on"
    res = run_cli("override", "clear", "--all", *common)
    assert res.stdout.splitlines() == ["removed experiment my-awesome-experiment = treatment"]
    res = run_cli("override", "revert", *common)
    assert res.stdout.splitlines()[1] == "  experiment my-awesome-experiment = treatment"
    res = run_cli("override", "list", "--format", "json", *common)
    assert [o["key"] for o in json.loads(res.stdout)["overrides"]] == ["my-awesome-experiment"]


def test_broken_experiments_file_stops_serve_in_one_line(tmp_path):
    broken = tmp_path / "experiments.yaml"
    broken.write_text("- name: short\n  groups: []\n")
    env = {**os.environ, "MPSANDBOX_EXPERIMENTS": str(broken)}
    res = run_cli("serve", "--port", "0", "--db", str(tmp_path / "x.db"), env=env)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"mpsandbox: experiments {broken}: ")
    assert "groups must be a non-empty list" in lines[0]
