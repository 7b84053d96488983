"""Bundles: what goes in (store, schema files with their $refs and aliases, configs,
overrides, manifest), that they open as a normal store judged alike, and that a hostile or
broken archive is refused in one line."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from mpsandbox import jsonio
from mpsandbox.cli import main
from mpsandbox.fixtures.bundle import BundleError
from mpsandbox.fixtures.unbundle import extract
from mpsandbox.intake.server import start_server
from mpsandbox.overrides import Overrides
from mpsandbox.pipeline import Pipeline, RequestContext
from mpsandbox.sandbox import build_registry
from mpsandbox.store import StoreReader
from tests.conftest import PRIMARY, SECONDARY, WM, settings_for
from tests.test_fixtures import _post_all, recorded_posts, web_event

STREAM_CONFIG = WM / "metrics-platform/tests/consistency/stream_configs.json"
EXPERIMENTS = """
- name: my-awesome-experiment
  groups: [control, treatment]
  sample_rate: 0.5
  sampling_unit: mw-user
  stream: test.consistency
"""
SCHEMAS = ["--schemas", str(SECONDARY), "--schemas", str(PRIMARY)]


def consistency(**changes) -> dict:
    event = web_event(**changes)
    event["meta"] = {"stream": "test.consistency", "domain": "en.wikipedia.org"}
    return event


async def _build(tmp: Path) -> Path:
    experiments = tmp / "experiments.yaml"
    experiments.write_text(EXPERIMENTS)
    settings = settings_for(
        tmp, stream_config=str(STREAM_CONFIG), experiments_file=str(experiments)
    )
    server = await start_server(settings)
    try:
        await _post_all(server.url, recorded_posts())
        events = [
            consistency(action="valid"),
            consistency(**{"$schema": "/analytics/product_metrics/web/base/latest"}),
            consistency(**{"$schema": "/analytics/product_metrics/web/base/current.yaml"}),
            consistency(action=42),
        ]
        body = jsonio.dumps(events)
        await _post_all(server.url, [("", "/v1/events", {"content-type": "text/plain"}, body)])
    finally:
        await server.stop()
    overrides = Overrides(tmp / "sandbox.db")
    overrides.set("sample_rate", "test.consistency", 0.25, "cli")
    overrides.close()
    return tmp / "sandbox.db"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return asyncio.run(_build(tmp_path_factory.mktemp("bundle-store")))


def cli(*args) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def bundle(store, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "all.tar.gz"
    experiments = store.parent / "experiments.yaml"
    code, stdout, err = cli(
        "bundle", "--db", store, "-o", out, "--experiments", experiments, *SCHEMAS
    )
    assert code == 0, err
    assert "bundled 22 events of 21 requests" in stdout
    return out


def test_bundle_contents(bundle, store):
    with tarfile.open(bundle) as tar:
        members = {m.name: m for m in tar.getmembers()}
        manifest = json.load(tar.extractfile("manifest.json"))
    assert all(m.isfile() for m in members.values())
    assert sorted(members) == manifest["contents"]
    assert manifest["format"] == "mpsandbox-bundle/1" and manifest["query"] == ""
    assert manifest["counts"]["events"] == 22 and manifest["counts"]["requests"] == 21
    base = "schemas/1/analytics/product_metrics/web/base"
    fragments = "schemas/1/fragment/analytics/product_metrics/common"
    for name in (f"{base}/1.3.0.yaml", f"{base}/current.yaml", f"{base}/latest"):
        assert name in members
    # current.yaml's $refs, at their place in the repository layout, by the names the
    # lookup opens (1.2.0, a link to 1.2.0.yaml in the checkout) and their real names.
    assert f"{fragments}/1.2.0" in members and f"{fragments}/1.2.0.yaml" in members
    assert "schemas/1/fragment/analytics/product_metrics/web/1.1.0.yaml" in members
    files = {f["path"]: f for f in manifest["schemas"]["files"]}
    origin = SECONDARY / "analytics/product_metrics/web/base/1.3.0.yaml"
    assert files[f"{base}/1.3.0.yaml"]["sha256"] == hashlib.sha256(origin.read_bytes()).hexdigest()
    assert files[f"{base}/latest"]["role"].endswith(
        "reaches analytics/product_metrics/web/base/1.3.0.yaml by this name"
    )
    assert manifest["schemas"]["dirs"][0]["origin"] == str(SECONDARY)
    assert manifest["experiments"]["path"] == "config/experiments.yaml"
    stream = manifest["stream_config"]
    assert stream["how"].startswith("rebuilt") and stream["origin"] == str(STREAM_CONFIG)
    with tarfile.open(bundle) as tar:
        rebuilt = json.load(tar.extractfile(stream["path"]))
    assert list(rebuilt["streams"]) == ["test.consistency"]
    assert manifest["overrides"] == [
        {
            "kind": "sample_rate",
            "key": "test.consistency",
            "value": 0.25,
            "set_by": "cli",
            "set_at": manifest["overrides"][0]["set_at"],
        }
    ]


def test_the_bundle_opens_as_a_normal_store_and_judges_alike(bundle, store, tmp_path):
    opened = extract(bundle, tmp_path / "x")
    settings = opened.settings()
    assert settings.schema_dirs == (tmp_path / "x/schemas/1",)
    assert not settings.use_builtin_schemas and settings.db == tmp_path / "x/store.db"
    with StoreReader(opened.db) as bundled, StoreReader(store) as original:
        new, old = list(bundled.iter_events()), list(original.iter_events())
        assert bundled.list_error_groups()  # rebuilt by the writer
        assert bundled.count_sessions() >= 1

        def key(r):
            return r["verdict"], r["errors"], r["message"], r["findings"], r["event"]

        assert [key(r) for r in new] == [key(r) for r in old]
    overrides = Overrides(opened.db, write=lambda fn: None)
    assert overrides.rate_overrides() == {"test.consistency": 0.25}
    overrides.close()
    # The bundle's own schemas judge every event as the intake did.
    from mpsandbox.platform.stream_configs import load_location

    pipeline = Pipeline(
        build_registry(settings), stream_configs=load_location(settings.stream_config)
    )
    for row in new:
        if row["schema_uri"] is None:
            continue
        again = pipeline.rejudge(row["event"], RequestContext(received_at=row["received_at"]))
        assert (again.verdict, again.errors) == (row["verdict"], row["errors"]), row["schema_uri"]


def test_bundle_a_query_with_the_stream_config_file(store, tmp_path):
    out = tmp_path / "invalid.tar.gz"
    code, _, err = cli(
        "bundle", "is:invalid", "--db", store, "-o", out, "--stream-config", STREAM_CONFIG, *SCHEMAS
    )
    assert code == 0, err
    opened = extract(out, tmp_path / "x")
    with StoreReader(opened.db) as reader:
        verdicts = {r["verdict"] for r in reader.iter_events()}
        requests = list(reader.iter_requests(methods=None))
    assert verdicts == {"invalid"} and all(r["event_count"] for r in requests)
    assert opened.manifest["query"] == "is:invalid"
    stream = opened.manifest["stream_config"]
    assert stream["how"] == "file"
    assert (opened.root / stream["path"]).read_bytes() == STREAM_CONFIG.read_bytes()
    assert opened.manifest["experiments"] is None


def test_open_print(bundle):
    code, out, err = cli("open", bundle, "--print")
    assert code == 0, err
    assert "22 events (valid " in out and "21 requests" in out
    assert "schemas/1/analytics/product_metrics/web/base/current.yaml  (judged)" in out
    assert "sample_rate test.consistency = 0.25" in out
    assert "experiments: config/experiments.yaml" in out
    # Without a terminal, open prints rather than starting the TUI.
    assert cli("open", bundle)[1] == out


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.addfile(tarfile.TarInfo("manifest.json"), io.BytesIO(b""))
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _link(name: str, target: str, kind=tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


@pytest.mark.parametrize(
    ("member", "message"),
    [
        ((tarfile.TarInfo("../evil.txt"), b"pwned"), "climbs out with '..'"),
        ((tarfile.TarInfo("schemas/../../evil.txt"), b"pwned"), "climbs out with '..'"),
        ((tarfile.TarInfo("/tmp/mpsandbox-evil.txt"), b"pwned"), "absolute path"),
        ((_link("schemas", "/etc"), None), "points outside the bundle"),
        ((_link("schemas/x", "../../evil.txt"), None), "points outside the bundle"),
        ((_link("hard", "../evil.txt", tarfile.LNKTYPE), None), "points outside the bundle"),
    ],
)
def test_tar_slip_is_refused(tmp_path, member, message):
    path = tmp_path / "evil.tar.gz"
    path.write_bytes(_tar([member]))
    dest = tmp_path / "deep" / "dest"
    with pytest.raises(BundleError, match=message):
        extract(path, dest)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "deep/evil.txt").exists()
    assert not dest.exists() or not any(dest.iterdir())
    code, _, err = cli("open", path, "--print")
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_corrupt_or_truncated_bundles_exit_2_in_one_line(bundle, tmp_path):
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(bundle.read_bytes()[: bundle.stat().st_size // 2])
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"this is not a bundle at all\n" * 10)
    no_manifest = tmp_path / "plain.tar.gz"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("readme.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    no_manifest.write_bytes(buf.getvalue())
    for path, message in (
        (truncated, "truncated or corrupt"),
        (garbage, "truncated or corrupt"),
        (no_manifest, "no manifest.json inside"),
        (tmp_path / "missing.tar.gz", "no such file"),
    ):
        code, out, err = cli("open", path, "--print")
        assert code == 2, (path, out)
        assert message in err and len(err.strip().splitlines()) == 1, err


async def test_schemas_judged_from_a_remote_go_in_from_the_cache(
    schema_host, tmp_path, monkeypatch
):
    """A stranger's session, judged by schema.wikimedia.org (a loopback stand-in): the
    bundle carries the fetched files, so it opens and judges alike with no network."""
    cache = Path(os.environ["MPSANDBOX_CACHE"])  # this test's own (conftest)
    monkeypatch.delenv("MPSANDBOX_OFFLINE")
    monkeypatch.setenv("MPSANDBOX_REMOTE_SCHEMAS", " ".join(schema_host.bases))
    settings = settings_for(
        tmp_path, schema_dirs=(), remote_schemas=schema_host.bases, offline=False, cache_dir=cache
    )
    # Fetched ahead (in a thread: the stand-in answers on this event loop, which the
    # in-process intake below would hold while it fetched).
    code, _, err = await asyncio.to_thread(
        cli, "schema", "fetch", "analytics/product_metrics/web/base/1.3.0"
    )
    assert code == 0, err
    server = await start_server(settings)
    try:
        events = [web_event(), web_event(action=42)]
        body = jsonio.dumps(events)
        await _post_all(server.url, [("", "/v1/events", {"content-type": "text/plain"}, body)])
    finally:
        await server.stop()
    await schema_host.stop()

    out = tmp_path / "remote.tar.gz"
    code, _, err = cli("bundle", "--db", settings.db, "-o", out)
    assert code == 0, err
    opened = extract(out, tmp_path / "x")
    schemas = opened.manifest["schemas"]
    assert schemas["missing"] == []
    assert [d["origin"] for d in schemas["dirs"]] == [schema_host.bases[1]]
    pipeline = Pipeline(build_registry(opened.settings()))
    with StoreReader(opened.db) as bundled:
        rows = list(bundled.iter_events())
    assert [r["verdict"] for r in rows] == ["valid", "invalid"]
    for row in rows:
        again = pipeline.rejudge(row["event"], RequestContext(received_at=row["received_at"]))
        assert (again.verdict, again.errors) == (row["verdict"], row["errors"])


def test_link_chains_are_refused_before_anything_is_written(tmp_path):
    # Each link alone stays inside (d1 -> . ; d1/d2 -> .. seen from d1 is the root), but
    # d1/d2 resolves through d1 to the root's parent.
    path = tmp_path / "chain.tar.gz"
    path.write_bytes(
        _tar(
            [
                (_link("d1", "."), None),
                (_link("d1/d2", ".."), None),
                (tarfile.TarInfo("d1/d2/evil.txt"), b"pwned"),
            ]
        )
    )
    dest = tmp_path / "deep" / "dest"
    with pytest.raises(BundleError, match="refused: member 'd1/d2' goes through the link 'd1'"):
        extract(path, dest)
    assert not dest.exists() or not any(dest.iterdir())
    assert not (tmp_path / "deep/evil.txt").exists()
    code, _, err = cli("open", path, "--print")
    assert code == 2 and "refused: member 'd1/d2'" in err and len(err.strip().splitlines()) == 1


def _manifest_bundle(tmp_path: Path, manifest: dict) -> Path:
    data = json.dumps(manifest).encode()
    info = tarfile.TarInfo("manifest.json")
    db = tarfile.TarInfo("store.db")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        db.size = 0
        tar.addfile(db, io.BytesIO(b""))
    path = tmp_path / "manifest.tar.gz"
    path.write_bytes(buf.getvalue())
    return path


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("store", "ABSOLUTE_DB"),
        ("schemas", {"dirs": [{"path": "/etc"}]}),
        ("schemas", {"dirs": [{"path": "schemas/../../.."}]}),
        ("stream_config", {"path": "/etc/passwd"}),
        ("experiments", {"path": "../outside.yaml"}),
    ],
)
def test_manifest_paths_must_stay_inside_the_bundle(bundle, tmp_path, field, value):
    # A real store outside the bundle: before the check, open read it and printed counts.
    outside = tmp_path / "elsewhere.db"
    extract(bundle, tmp_path / "real").db.rename(outside)
    if value == "ABSOLUTE_DB":
        value = str(outside)
    manifest = json.loads(
        extract(bundle, tmp_path / "orig").root.joinpath("manifest.json").read_text()
    )
    manifest[field] = value
    path = _manifest_bundle(tmp_path, manifest)
    with pytest.raises(BundleError, match=r"refused: manifest.json names .* outside the bundle"):
        extract(path, tmp_path / "dest")
    code, out, err = cli("open", path, "--print")
    assert code == 2 and "outside the bundle" in err and "events" not in out


def test_extracted_size_and_member_count_are_capped(tmp_path):
    # 300 MiB of zeros compresses to ~300 KB: a bomb, refused before a byte is written.
    class Zeros(io.RawIOBase):
        def __init__(self, n):
            self.left = n

        def readable(self):
            return True

        def readinto(self, b):
            k = min(len(b), self.left)
            b[:k] = bytes(k)
            self.left -= k
            return k

    big = tmp_path / "bomb.tar.gz"
    with tarfile.open(big, "w:gz", compresslevel=1) as tar:
        tar.addfile(tarfile.TarInfo("manifest.json"), io.BytesIO(b""))
        for i in range(3):
            info = tarfile.TarInfo(f"zeros{i}")
            info.size = 100 * 2**20
            tar.addfile(info, io.BufferedReader(Zeros(info.size)))
    assert big.stat().st_size < 2 * 2**20
    dest = tmp_path / "dest"
    with pytest.raises(BundleError, match="refused: member 'zeros2' takes the extracted size"):
        extract(big, dest)
    assert not dest.exists() or not any(dest.iterdir())
    code, _, err = cli("open", big, "--print", "--max-extract-mb", "100")
    assert code == 2 and "past the 100 MiB allowed" in err
    many = tmp_path / "many.tar.gz"
    many.write_bytes(_tar([(tarfile.TarInfo(f"f{i}"), b"") for i in range(10_001)]))
    with pytest.raises(BundleError, match="refused: more than 10,000 members"):
        extract(many, tmp_path / "dest2")
    assert not (tmp_path / "dest2").exists()
