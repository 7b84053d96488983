"""Re-validation: a schema file changes, the stored events of that schema are judged again,
and every verdict that flips is recorded beside the untouched original.

A real intake with the schema watcher on, real copies of the schema repositories in a temp
dir edited on disk, the real store, all driven over HTTP.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sqlite3
from pathlib import Path

import pytest

from mpsandbox import jsonio
from mpsandbox.revalidation import titles_for_paths
from tests.conftest import PRIMARY, SECONDARY

WEB_BASE = "analytics/product_metrics/web/base"
EVENT = {
    "$schema": f"/{WEB_BASE}/1.3.0",
    "meta": {"stream": "product_metrics.web_base", "domain": "en.wikipedia.org"},
    "dt": "2024-10-01T11:59:59.123Z",
    "action": "click",
    "agent": {"client_platform": "mediawiki_js", "client_platform_family": "desktop_browser"},
    "performer": {"is_logged_in": False, "session_id": "abcdefghij0123456789"},
}


@pytest.fixture
def repos(tmp_path: Path) -> tuple[Path, Path]:
    secondary, primary = tmp_path / "secondary", tmp_path / "primary"
    shutil.copytree(SECONDARY, secondary, symlinks=True)
    shutil.copytree(PRIMARY, primary, symlinks=True)
    return secondary, primary


def schema_file(secondary: Path) -> Path:
    return secondary / WEB_BASE / "1.3.0.yaml"


def narrow_action(secondary: Path, max_length: int) -> None:
    """Edit the published 1.3.0 file in place: ``action`` gets another maxLength."""
    path = schema_file(secondary)
    text = path.read_text()
    head, rest = text.split("  action:\n", 1)
    before, after = rest.split("    maxLength: ", 1)
    after = after.split("\n", 1)[1]
    path.write_text(f"{head}  action:\n{before}    maxLength: {max_length}\n{after}")


async def post(http, server, body) -> int:
    headers = {"Content-Type": "application/json"}
    url = server.url + "/v1/events"
    async with http.post(url, data=jsonio.dumps(body), headers=headers) as resp:
        return resp.status


async def get(http, server, path):
    async with http.get(server.url + path) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def wait_runs(http, server, n: int, timeout: float = 20.0) -> list[dict]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        runs = (await get(http, server, "/sandbox/revalidations"))["runs"]
        if len(runs) >= n:
            return runs
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{len(runs)} re-validation runs after {timeout} s, not {n}")
        await asyncio.sleep(0.1)


async def test_an_edited_schema_flips_stored_verdicts_and_keeps_the_originals(
    make_server, http, repos
):
    secondary, primary = repos
    server = await make_server(schema_dirs=(secondary, primary), watch_schemas=True)
    assert await post(http, server, [EVENT, {**EVENT, "action": "go"}]) == 201
    other = {**EVENT, "$schema": "/test/event/1.0.0", "meta": {"stream": "test.event"}}
    await post(http, server, other)

    narrow_action(secondary, 3)
    runs = await wait_runs(http, server, 1)
    run = runs[0]
    assert run["trigger"] == "schema change" and run["titles"] == [WEB_BASE]
    assert run["checked"] == 2 and run["flipped"] == 1
    assert run["summary"]["by_change"] == {"valid→invalid": 1}

    flips = (await get(http, server, "/sandbox/flips"))["flips"]
    assert len(flips) == 1
    flip = flips[0]
    assert flip["before_verdict"] == "valid" and flip["after_verdict"] == "invalid"
    assert flip["before_errors"] == []
    assert [e["keyword"] for e in flip["after_errors"]] == ["maxLength"]
    assert flip["after_errors"][0]["dataPath"] == ".action"
    assert flip["schema_location"].endswith("web/base/1.3.0.yaml")
    # The stored verdict is what the intake answered; the flip sits beside it.
    event = await get(http, server, f"/sandbox/events/{flip['event_id']}")
    assert event["verdict"] == "valid" and event["action"] == "click"
    assert [f["after_verdict"] for f in event["flips"]] == ["invalid"]
    flipped = await get(http, server, "/sandbox/events?q=has:flip")
    assert [e["id"] for e in flipped["events"]] == [flip["event_id"]]

    # New events are judged by the edited schema; restoring it flips the old one back.
    assert await post(http, server, EVENT) == 400
    narrow_action(secondary, 64)
    runs = await wait_runs(http, server, 2)
    back = runs[0]
    # The first event flips back, and the one stored as invalid meanwhile flips to valid.
    assert back["summary"]["by_change"] == {"invalid→valid": 2}
    flips = (await get(http, server, f"/sandbox/flips?event={flip['event_id']}"))["flips"]
    assert [(f["before_verdict"], f["after_verdict"]) for f in flips] == [
        ("invalid", "valid"),
        ("valid", "invalid"),
    ]


async def test_a_broken_save_keeps_the_last_good_schema_and_says_so(make_server, http, repos):
    secondary, primary = repos
    server = await make_server(schema_dirs=(secondary, primary), watch_schemas=True)
    assert await post(http, server, EVENT) == 201
    path = schema_file(secondary)
    good = path.read_text()
    path.write_text(good + "\n  broken: [unclosed\n")
    runs = await wait_runs(http, server, 1)
    assert runs[0]["flipped"] == 0
    problems = runs[0]["summary"]["problems"]
    # The path, the line and the parser's message.
    assert re.match(r".*1\.3\.0\.yaml:\d+: did not find", problems[str(path.resolve())])
    # Still judged by the last version that parsed, and the event says so.
    assert await post(http, server, EVENT) == 201
    newest = (await get(http, server, "/sandbox/events?limit=1"))["events"][0]
    detail = await get(http, server, f"/sandbox/events/{newest['id']}")
    assert "does not parse" in detail["explanation"]["stale_schema_file"]
    stats = await get(http, server, "/sandbox/stats")
    assert "last version that parsed" in stats["schema_load_errors"][str(path.resolve())]

    path.write_text(good)
    await wait_runs(http, server, 2)
    stats = await get(http, server, "/sandbox/stats")
    assert str(path.resolve()) not in stats["schema_load_errors"]


async def test_revalidate_on_request_with_titles_and_a_limit(make_server, http, repos, tmp_path):
    secondary, primary = repos
    server = await make_server(schema_dirs=(secondary, primary))
    for i in range(5):
        assert await post(http, server, {**EVENT, "action": f"click-{i}"}) == 201
    narrow_action(secondary, 3)  # no watcher here: nothing happens until asked
    server.sandbox.registry.invalidate()
    assert (await get(http, server, "/sandbox/revalidations"))["runs"] == []

    async with http.post(server.url + "/sandbox/revalidate", json={"limit": 2}) as resp:
        report = await resp.json()
    assert resp.status == 200, report
    assert report["checked"] == 2 and report["flipped"] == 2 and report["trigger"] == "api"
    newest = (await get(http, server, "/sandbox/events?limit=2"))["events"]
    assert sorted(report["events"]) == sorted(e["id"] for e in newest)

    # Flipped events are judged from their latest verdict: no second flip for them.
    url = server.url + f"/sandbox/revalidate?schema={WEB_BASE}&limit=all"
    async with http.post(url) as resp:
        report = await resp.json()
    assert report["checked"] == 5 and report["flipped"] == 3 and report["titles"] == [WEB_BASE]
    async with http.post(server.url + "/sandbox/revalidate?schema=nothing/here") as resp:
        assert (await resp.json())["checked"] == 0

    for bad in ({"limit": 0}, {"limit": "lots"}, {"schemas": "x"}, [1]):
        async with http.post(server.url + "/sandbox/revalidate", json=bad) as resp:
            assert resp.status == 400, bad
            assert "detail" in await resp.json()

    # A reset forgets runs and flips with the events.
    async with http.post(server.url + "/sandbox/reset") as resp:
        assert resp.status == 200
    conn = sqlite3.connect(server.sandbox.settings.db)
    assert conn.execute("SELECT count(*) FROM flips").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM revalidations").fetchone()[0] == 0


def test_changed_files_name_the_titles_they_can_affect(tmp_path):
    root = tmp_path / "repo"
    base = root / "jsonschema"
    assert titles_for_paths(
        [str(base / "analytics/x/1.0.0.yaml"), str(base / "analytics/y/current.yaml")], [root]
    ) == {"analytics/x", "analytics/y"}
    assert titles_for_paths([str(base / "analytics/x/latest")], [root]) == {"analytics/x"}
    # A fragment can be mixed into anything; a file elsewhere is unknown: judge everything.
    assert titles_for_paths([str(base / "fragment/common/1.0.0.yaml")], [root]) is None
    assert titles_for_paths([str(tmp_path / "elsewhere.yaml")], [root]) is None


async def test_an_event_judged_by_the_working_copy_before_materializing(
    make_server, http, repos, tmp_path
):
    secondary, primary = repos
    server = await make_server(schema_dirs=(secondary, primary))
    assert await post(http, server, EVENT) == 201
    event_id = (await get(http, server, "/sandbox/events?limit=1"))["events"][0]["id"]
    current = secondary / WEB_BASE / "current.yaml"

    out = await get(http, server, f"/sandbox/events/{event_id}/working-copy")
    assert out["working_copy"] == str(current.resolve())
    assert out["verdict"] == "valid" and out["working_copy_version"] == "1.3.0"
    assert out["judged_by"] == str(current.resolve())

    # An edit of current.yaml (merged with its fragments as materialize would) is judged
    # at once, while the published version still judges what arrives.
    current.write_text(current.read_text() + "required:\n  - action_source\n")
    out = await get(http, server, f"/sandbox/events/{event_id}/working-copy")
    assert out["verdict"] == "invalid" and out["stored_verdict"] == "valid"
    assert [(e["keyword"], e["params"]["missingProperty"]) for e in out["errors"]] == [
        ("required", "action_source")
    ]
    assert await post(http, server, EVENT) == 201

    # A broken working copy says why; a title without one is judged as published.
    current.write_text(
        f"title: {WEB_BASE}\n$id: /{WEB_BASE}/1.4.0\nallOf: [{{$ref: /nope/1.0.0}}]\n"
    )
    out = await get(http, server, f"/sandbox/events/{event_id}/working-copy")
    assert out["verdict"] == "error" and "cannot be materialized" in out["reason"]
    assert "/nope/1.0.0" in out["reason"]
    assert await post(http, server, {**EVENT, "$schema": "/no/such/schema/1.0.0"}) == 500
    missing = (await get(http, server, "/sandbox/events?limit=1"))["events"][0]["id"]
    out = await get(http, server, f"/sandbox/events/{missing}/working-copy")
    assert out["working_copy"] is None and out["verdict"] == "error"
    async with http.get(server.url + "/sandbox/events/99999/working-copy") as resp:
        assert resp.status == 404


def test_validate_on_the_command_line_by_the_working_copy(repos, tmp_path):
    from click.testing import CliRunner

    from mpsandbox.cli import main

    secondary, primary = repos
    (secondary / WEB_BASE / "current.yaml").write_text(
        (secondary / WEB_BASE / "current.yaml").read_text() + "required:\n  - action_source\n"
    )
    event = tmp_path / "event.json"
    event.write_text(jsonio.dumps_str(EVENT))
    args = ["validate", str(event), "--schemas", str(secondary), "--schemas", str(primary)]
    runner = CliRunner()
    published = runner.invoke(main, args)
    assert published.exit_code == 0, published.output
    working = runner.invoke(main, [*args, "--working-copy"])
    assert working.exit_code == 1 and "action_source" in working.output


async def test_revalidating_all_reads_more_than_one_chunk(make_server, http, repos):
    from mpsandbox.sandbox import REVALIDATION_CHUNK

    secondary, primary = repos
    server = await make_server(schema_dirs=(secondary, primary))
    n = REVALIDATION_CHUNK + 150
    for start in range(0, n, 250):
        batch = [{**EVENT, "action": f"c{i}"} for i in range(start, min(n, start + 250))]
        assert await post(http, server, batch) == 201
    narrow_action(secondary, 2)
    server.sandbox.registry.invalidate()
    async with http.post(server.url + "/sandbox/revalidate", json={"limit": "all"}) as resp:
        report = await resp.json()
    # c0..c9 still fit in 2 characters; every other event flips, each exactly once.
    assert report["checked"] == n and report["flipped"] == n - 10
    flips = (await get(http, server, f"/sandbox/flips?run={report['run']}&limit=5000"))["flips"]
    assert len({f["event_id"] for f in flips}) == n - 10
