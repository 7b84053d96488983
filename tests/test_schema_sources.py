"""Schema lookup: local checkouts, remote repositories with an offline cache, and misses."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from mpsandbox.schemas.registry import SchemaRegistry
from mpsandbox.schemas.remote import RemoteSource
from mpsandbox.schemas.sources import DirectorySource, title_and_version
from tests.conftest import PRIMARY, SECONDARY

WEB_BASE = "/analytics/product_metrics/web/base"


def registry(*dirs: Path) -> SchemaRegistry:
    return SchemaRegistry([DirectorySource(d) for d in dirs])


def test_text_file_links_and_real_symlinks_resolve():
    reg = registry(SECONDARY, PRIMARY)
    res = reg.resolve(f"{WEB_BASE}/latest")
    assert res.ok and res.location.endswith("1.3.0.yaml")
    assert res.title == "analytics/product_metrics/web/base" and res.version == "1.3.0"
    res = reg.resolve("/error/latest")  # a real symlink in the primary repository
    assert res.ok and res.title == "error"


def test_fragment_refs_resolve_across_repositories():
    reg = registry(SECONDARY, PRIMARY)
    # current.yaml holds $refs into fragments; they are inlined from the sources only
    res = reg.resolve(f"{WEB_BASE}/current.yaml")
    assert res.ok, res.reason
    assert res.compiled.declares(("meta", "dt"))


def test_missing_version_says_where_it_looked_and_what_exists():
    reg = registry(SECONDARY, PRIMARY)
    res = reg.resolve(f"{WEB_BASE}/1.5.0")
    assert not res.ok
    assert res.message == f"Failed loading schema at {WEB_BASE}/1.5.0"
    assert any(str(SECONDARY) in a.location for a in res.attempts)
    assert any(str(PRIMARY) in a.location for a in res.attempts)
    assert res.available_versions[str(SECONDARY)] == ["1.0.0", "1.1.0", "1.2.0", "1.3.0"]
    text = " ".join(res.hints)
    assert "--schemas" in text and "1.3.0" in text
    assert "--remote-schemas" not in text  # a no-op since remote schemas are on by default


def test_title_and_version():
    assert title_and_version("/a/b/1.2.3") == ("a/b", "1.2.3")
    assert title_and_version("/a/b/latest") == ("a/b", "latest")
    assert title_and_version("a/b/1.2.3.yaml") == ("a/b", "1.2.3")


def copy_web_base(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    dest = root / "analytics/product_metrics/web/base"
    dest.mkdir(parents=True)
    shutil.copy(SECONDARY / "analytics/product_metrics/web/base/1.3.0.yaml", dest / "1.3.0.yaml")
    (dest / "latest").symlink_to("1.3.0.yaml")
    return root


def test_yaml_syntax_error_is_reported_with_path_and_line(tmp_path):
    root = copy_web_base(tmp_path)
    bad = root / "analytics/product_metrics/web/base/1.4.0.yaml"
    bad.write_text("title: x\nproperties:\n  a: [unclosed\n  b: 1\n")
    reg = registry(root)
    res = reg.resolve(f"{WEB_BASE}/1.4.0")
    assert not res.ok
    assert res.message == f"Failed loading schema at {WEB_BASE}/1.4.0"
    assert str(bad) in res.reason and ":" in res.reason
    assert str(bad) in reg.load_errors
    # the good version still works
    assert reg.resolve(f"{WEB_BASE}/1.3.0").ok


async def test_latest_follows_a_new_version_without_restart(make_server, http, tmp_path):
    root = copy_web_base(tmp_path)
    server = await make_server(schema_dirs=(root,), watch_schemas=True, fill_ins=False)
    event = json.loads(
        (
            Path(__file__).parent / "data/eventgate/recorded-local-run/req/latest_uri.json"
        ).read_text()
    )
    url = server.url + "/v1/events"
    async with http.post(url, json=event) as resp:
        assert resp.status == 201
    folder = root / "analytics/product_metrics/web/base"
    schema = (
        (folder / "1.3.0.yaml")
        .read_text()
        .replace(
            "$id: /analytics/product_metrics/web/base/1.3.0",
            "$id: /analytics/product_metrics/web/base/1.4.0",
        )
    )
    schema += "\n" if not schema.endswith("\n") else ""
    import yaml

    data = yaml.safe_load(schema)
    data["required"] = [*data.get("required", []), "mpsandbox_new_field"]
    (folder / "1.4.0.yaml").write_text(yaml.safe_dump(data))
    (folder / "latest").unlink()
    (folder / "latest").symlink_to("1.4.0.yaml")
    for _ in range(100):
        async with http.post(url, json=event) as resp:
            if resp.status == 400:
                body = await resp.json()
                break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("latest did not follow the new version")
    errors = body["invalid"][0]["context"]["errors"]
    assert {
        "keyword": errors[-1]["keyword"],
        "missingProperty": errors[-1]["params"]["missingProperty"],
    } == {"keyword": "required", "missingProperty": "mpsandbox_new_field"}


async def test_remote_source_fetches_caches_and_works_offline(schema_host, tmp_path):
    base, hits = schema_host.root, schema_host.hits
    cache = tmp_path / "cache"
    sources = [
        RemoteSource(f"{base}/secondary/jsonschema", cache),
        RemoteSource(f"{base}/primary/jsonschema", cache),
    ]
    reg = SchemaRegistry(sources)
    res = await asyncio.to_thread(reg.resolve, f"{WEB_BASE}/1.3.0")
    assert res.ok, res.reason
    assert hits
    await schema_host.stop()  # the network is gone
    offline = SchemaRegistry([RemoteSource(f"{base}/secondary/jsonschema", cache)])
    res = await asyncio.to_thread(offline.resolve, f"{WEB_BASE}/1.3.0")
    assert res.ok, res.reason
    missing = await asyncio.to_thread(offline.resolve, f"{WEB_BASE}/9.9.9")
    assert not missing.ok
    assert any("unreachable" in a.outcome for a in missing.attempts)


async def test_offline_leaves_remote_sources_to_the_cache(server, http):
    """The suite runs with MPSANDBOX_OFFLINE=1 (conftest): remotes are read from the cache
    only, and nothing but loopback is contacted."""
    async with http.get(server.url + "/sandbox/stats") as resp:
        sources = (await resp.json())["schema_sources"]
    remotes = [s for s in sources if s["kind"] == "remote"]
    assert [s["name"] for s in remotes] == [
        "https://schema.wikimedia.org/repositories/primary/jsonschema",
        "https://schema.wikimedia.org/repositories/secondary/jsonschema",
    ]
    assert all(s["offline"] for s in remotes)


def test_a_ref_the_unreachable_host_holds_is_tried_again_later(tmp_path):
    """An outage is no verdict on the schema: the failure is kept for a minute, not until
    the next schema change (a $ref's outage, too)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        gone = f"http://127.0.0.1:{sock.getsockname()[1]}/primary/jsonschema"
    local = tmp_path / "repo/analytics/mine"
    local.mkdir(parents=True)
    (local / "1.0.0.yaml").write_text(
        "title: analytics/mine\n$id: /analytics/mine/1.0.0\ntype: object\n"
        "allOf:\n  - $ref: /fragment/analytics/common/1.0.0#\n"
    )
    reg = SchemaRegistry(
        [DirectorySource(tmp_path / "repo"), RemoteSource(gone, tmp_path / "cache", timeout=1)]
    )
    res = reg.resolve("/analytics/mine/1.0.0")
    assert not res.ok and "$ref" in res.reason and "unreachable" in res.reason
    assert res.retry_at is not None
    missing = reg.resolve("/analytics/nowhere/1.0.0")
    assert not missing.ok and missing.retry_at is not None
    assert "unreachable" in missing.reason and "--remote-schemas" not in " ".join(missing.hints)
    local_only = SchemaRegistry([DirectorySource(tmp_path / "repo")])
    assert local_only.resolve("/analytics/nowhere/1.0.0").retry_at is None
