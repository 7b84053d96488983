"""Nothing acknowledged is lost: the figures behind docs/reliability.md ("Measured").

    .venv/bin/python bench/integrity.py [--posts 400] [--seconds 6]

Runs the real `mpsandbox serve` (intake and store process) on loopback and prints:

1. poison: ``--posts`` concurrent POSTs, every 20th event with a lone UTF-16 surrogate
   (``"click\\ud83d"``): sent, acknowledged (201), stored;
2. kill -9 of the store process while clients post: events sent, acknowledged, answered
   503 store_error, stored, acknowledged but not stored (must be 0), how long until
   readiness came back, and the resident memory of both processes;
3. kill -9 of the intake itself after acknowledged posts: acknowledged and stored.

Every event carries its own meta.id, so "stored" means "this acknowledged event is in the
database", not just a count.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import psutil

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / "tests" / "data"  # reference data, as the tests use it
SCHEMAS = (SHARED / "schemas/secondary/jsonschema", SHARED / "schemas/primary/jsonschema")
EVENT = {
    "$schema": "/analytics/product_metrics/web/base/1.3.0",
    "meta": {"stream": "product_metrics.web_base", "domain": "en.wikipedia.org"},
    "dt": "2024-10-01T11:59:59.123Z",
    "action": "click",
    "agent": {"client_platform": "mediawiki_js", "client_platform_family": "desktop_browser"},
    "performer": {"is_logged_in": False, "session_id": "abcdefghij0123456789"},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(db: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    args = [sys.executable, "-m", "mpsandbox", "serve", "--port", str(port), "--db", str(db)]
    for d in SCHEMAS:
        args += ["--schemas", str(d)]
    proc = subprocess.Popen(
        [*args, "--output", "none"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    json.loads(proc.stdout.readline())
    return proc, f"http://127.0.0.1:{port}"


def event(poisoned: bool = False) -> tuple[str, bytes]:
    """(meta.id, body) of one event; poisoned: the action ends in a lone surrogate escape."""
    meta_id = str(uuid.uuid4())
    e = dict(EVENT, meta=dict(EVENT["meta"], id=meta_id))
    text = json.dumps(e)
    if poisoned:
        text = text.replace('"click"', '"click\\ud83d"')
    return meta_id, text.encode()


def stored_ids(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT meta_id FROM events")}


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)


async def post(http: aiohttp.ClientSession, url: str, body: bytes) -> tuple[int, str]:
    try:
        async with http.post(url + "/v1/events", data=body, headers=JSON) as resp:
            kind = ""
            if resp.status == 503:
                kind = (await resp.json()).get("type", "")
            return resp.status, kind
    except aiohttp.ClientError:
        return 0, "connection"


JSON = {"content-type": "application/json"}


async def poison(posts: int) -> dict:
    db = Path(tempfile.mkdtemp()) / "poison.db"
    proc, url = serve(db)
    try:
        sent = [event(poisoned=i % 20 == 0) for i in range(posts)]
        async with aiohttp.ClientSession() as http:
            answers = await asyncio.gather(*(post(http, url, body) for _, body in sent))
    finally:
        stop(proc)
    acked = {mid for (mid, _), (status, _) in zip(sent, answers, strict=True) if status == 201}
    have = stored_ids(db)
    poisoned = {mid for i, (mid, _) in enumerate(sent) if i % 20 == 0}
    return {
        "sent": posts,
        "poisoned": len(poisoned),
        "acknowledged": len(acked),
        "poisoned_acknowledged": len(acked & poisoned),
        "stored": len(have),
        "acknowledged_not_stored": len(acked - have),
    }


async def kill_store(seconds: float, clients: int = 8) -> dict:
    db = Path(tempfile.mkdtemp()) / "kill.db"
    proc, url = serve(db)
    intake = psutil.Process(proc.pid)
    acked: set[str] = set()
    counts: dict[str, int] = {"sent": 0, "201": 0, "503 store_error": 0, "other": 0}
    deadline = time.monotonic() + seconds
    rss: dict[str, float] = {}

    async def client(http: aiohttp.ClientSession) -> None:
        while time.monotonic() < deadline:
            mid, body = event()
            counts["sent"] += 1
            status, kind = await post(http, url, body)
            if status == 201:
                counts["201"] += 1
                acked.add(mid)
            elif status == 503 and kind == "store_error":
                counts["503 store_error"] += 1
            else:
                counts["other"] += 1

    async def killer(http: aiohttp.ClientSession) -> float:
        await asyncio.sleep(seconds / 3)
        [store] = intake.children()
        rss["store_mib_before"] = store.memory_info().rss / 2**20
        store.kill()
        killed = time.monotonic()
        while True:
            async with http.get(url + "/readyz") as resp:
                if resp.status == 200 and time.monotonic() - killed > 0.05:
                    return time.monotonic() - killed
            await asyncio.sleep(0.02)

    try:
        async with aiohttp.ClientSession() as http:
            results = await asyncio.gather(killer(http), *(client(http) for _ in range(clients)))
            rss["intake_mib"] = intake.memory_info().rss / 2**20
            rss["store_mib_after"] = sum(c.memory_info().rss for c in intake.children()) / 2**20
    finally:
        stop(proc)
    have = stored_ids(db)
    return {
        **counts,
        "stored": len(have),
        "acknowledged_not_stored": len(acked - have),
        "ready_again_after_s": round(results[0], 2),
        **{k: round(v, 1) for k, v in rss.items()},
    }


def kill_intake() -> dict:
    db = Path(tempfile.mkdtemp()) / "sigkill.db"
    proc, url = serve(db)
    import urllib.request

    acked: set[str] = set()
    for _ in range(200):
        mid, body = event()
        req = urllib.request.Request(url + "/v1/events", data=body, headers=JSON)
        with urllib.request.urlopen(req, timeout=10) as resp:
            if resp.status == 201:
                acked.add(mid)
    children = psutil.Process(proc.pid).children()
    rss = psutil.Process(proc.pid).memory_info().rss / 2**20
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    psutil.wait_procs(children, timeout=15)
    have = stored_ids(db)
    return {
        "sent": 200,
        "acknowledged": len(acked),
        "stored": len(have),
        "acknowledged_not_stored": len(acked - have),
        "intake_rss_mib": round(rss, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--posts", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args()
    print("poison:", json.dumps(asyncio.run(poison(args.posts))))
    print("kill -9 store process:", json.dumps(asyncio.run(kill_store(args.seconds))))
    print("kill -9 intake:", json.dumps(kill_intake()))


if __name__ == "__main__":
    main()
