"""Bounded under abuse: memory, time and event-loop bounds that hostile or careless clients
cannot push past. Each bound is measured in the process that holds it (the served child, or
this process for an in-process intake), with generous but real limits."""

from __future__ import annotations

import json
import signal
import time
import urllib.request
from pathlib import Path

from mpsandbox.schemas.registry import SchemaRegistry
from mpsandbox.schemas.sources import DirectorySource
from tests.test_cli import start_serve


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def post_json(port: int, body: bytes) -> int:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/events",
        data=body,
        headers={"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_unknown_schema_uris_do_not_grow_memory(tmp_path):
    """10,000 distinct unknown $schema values: misses are cached briefly and bounded, so
    the intake's memory stays where it was (before: 237 -> 500 MiB, never freed)."""
    proc, port, _ = start_serve(tmp_path, "--output", "none")
    try:
        warm = [{"$schema": f"/warm/x{i}/1.0.0", "meta": {"stream": "s"}} for i in range(500)]
        assert post_json(port, json.dumps(warm).encode()) == 500
        before = rss_mib(proc.pid)
        for batch in range(10):
            events = [
                {"$schema": f"/nothing/here/n{batch}_{i}/1.0.0", "meta": {"stream": "s"}}
                for i in range(1000)
            ]
            assert post_json(port, json.dumps(events).encode()) == 500
        after = rss_mib(proc.pid)
        print(f"RSS before {before:.0f} MiB, after 10,000 unknown $schema {after:.0f} MiB")
        assert after < 200, (before, after)
        assert after - before < 35, (before, after)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


SCHEMA = "title: t\n$id: /t/1.0.0\ntype: object\nproperties:\n  a: {type: string}\n"


def test_schema_caches_are_bounded_and_misses_are_rechecked(tmp_path):
    registry = SchemaRegistry(
        [DirectorySource(tmp_path)], max_resolved=3, max_misses=5, miss_ttl=0.2
    )
    for i in range(100):
        assert not registry.resolve(f"/nothing/{i}/1.0.0").ok
    assert registry.cached_count() == (0, 5)
    # A miss is kept briefly (the same object), then looked up again: a schema added
    # later is found without a restart or a watcher.
    first = registry.resolve("/t/1.0.0")
    assert not first.ok and registry.resolve("/t/1.0.0") is first
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "1.0.0.yaml").write_text(SCHEMA)
    time.sleep(0.25)
    assert registry.resolve("/t/1.0.0").ok
    # Compiled schemas: least recently used dropped first (a #fragment is a new URI).
    for i in range(10):
        assert registry.resolve(f"/t/1.0.0#f{i}").ok
    hot = registry.resolve("/t/1.0.0#f9")
    registry.resolve("/t/1.0.0#f20")
    assert registry.cached_count()[0] == 3 and registry.resolve("/t/1.0.0#f9") is hot
