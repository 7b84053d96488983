"""Re-validation benchmark: edit a schema under 10,000 stored events, while the intake answers.

    .venv/bin/python bench/revalidate.py [--events 10000] [--probe-interval 0.02]

Starts `mpsandbox serve` (its own processes, as a user runs it) on copies of the real schema
repositories, stores N real web/base 1.3.0 events, then edits the published 1.3.0 file so that
every one of them flips. Prints the time from the edit to the recorded run (and the run's own
judging time), with the target, and the intake's latency for single-event requests sent all
along: before the edit (the baseline) and during the run, as a ratio, with any failures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / "tests" / "data"  # reference data, as the tests use it
EVENT = json.loads((SHARED / "eventgate/recorded-local-run/req/valid_web_base.json").read_text())
WEB_BASE = "analytics/product_metrics/web/base"
TARGET_S = 5.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def narrow_action(secondary: Path) -> None:
    path = secondary / WEB_BASE / "1.3.0.yaml"
    text = path.read_text()
    head, rest = text.split("  action:\n", 1)
    before, after = rest.split("    maxLength: ", 1)
    path.write_text(f"{head}  action:\n{before}    maxLength: 2\n{after.split(chr(10), 1)[1]}")


async def probe(session: aiohttp.ClientSession, url: str, stop: asyncio.Event, every: float):
    """Single-event requests at a steady pace; (sent at, seconds or None on failure)."""
    out: list[tuple[float, float | None]] = []
    body = json.dumps(dict(EVENT, action="go"))
    headers = {"Content-Type": "text/plain;charset=UTF-8"}
    while not stop.is_set():
        t0 = time.perf_counter()
        try:
            async with session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                out.append((t0, time.perf_counter() - t0 if resp.status < 500 else None))
        except aiohttp.ClientError:
            out.append((t0, None))
        await asyncio.sleep(max(0.0, every - (time.perf_counter() - t0)))
    return out


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))] if values else float("nan")


async def main_async(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="mpsandbox-bench-reval-"))
    secondary, primary = tmp / "secondary", tmp / "primary"
    shutil.copytree(SHARED / "schemas/secondary/jsonschema", secondary, symlinks=True)
    shutil.copytree(SHARED / "schemas/primary/jsonschema", primary, symlinks=True)
    port = free_port()
    cmd = [sys.executable, "-m", "mpsandbox", "serve", "--port", str(port), "--db"]
    cmd += [str(tmp / "bench.db"), "--output", "none", "--schemas", str(secondary)]
    cmd += ["--schemas", str(primary), "--revalidate", str(args.events)]
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        ready = server.stdout.readline() if server.stdout else ""
        if '"ready"' not in ready:
            print(f"mpsandbox serve did not start: {ready.strip()!r}")
            return 2
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            batch = [dict(EVENT, action=f"a{i}") for i in range(100)]
            t0 = time.perf_counter()
            for _ in range(args.events // 100):
                async with session.post(base + "/v1/events", json=batch) as resp:
                    assert resp.status == 201, await resp.text()
            stored_s = time.perf_counter() - t0

            stop = asyncio.Event()
            task = asyncio.create_task(
                probe(session, base + "/v1/events", stop, args.probe_interval)
            )
            await asyncio.sleep(3.0)
            edited = time.perf_counter()
            narrow_action(secondary)
            run = None
            while time.perf_counter() - edited < 120:
                async with session.get(base + "/sandbox/revalidations") as resp:
                    runs = (await resp.json())["runs"]
                if runs:
                    run = runs[0]
                    break
                await asyncio.sleep(0.05)
            recorded = time.perf_counter()
            await asyncio.sleep(1.0)
            stop.set()
            samples = await task
    finally:
        server.terminate()
        server.wait(60)
        shutil.rmtree(tmp, ignore_errors=True)
    if run is None:
        print("no re-validation run was recorded within 120 s")
        return 1
    before = [s for t, s in samples if t < edited and s is not None]
    during = [s for t, s in samples if edited <= t <= recorded and s is not None]
    failed = sum(1 for _t, s in samples if s is None)
    took = recorded - edited
    print(f"mpsandbox re-validation benchmark: {args.events:,} stored events, 2 cores")
    print(f"stored {args.events:,} events in {stored_s:.1f} s (100 per request)")
    verdict = "PASS" if took < TARGET_S and run["checked"] == args.events else "MISS"
    print(
        f"edit -> run recorded: {took:.2f} s for {run['checked']:,} events judged, "
        f"{run['flipped']:,} flipped (judging {run['seconds']:.2f} s)   "
        f"target < {TARGET_S:g} s  {verdict}"
    )
    print(f"  throughput: {run['checked'] / max(run['seconds'], 1e-9):,.0f} events/s judged again")
    print(
        f"intake latency, 1-event requests every {args.probe_interval * 1000:.0f} ms: "
        f"before p50 {pct(before, 50) * 1000:.1f} ms p99 {pct(before, 99) * 1000:.1f} ms (n={len(before)}); "
        f"during p50 {pct(during, 50) * 1000:.1f} ms p99 {pct(during, 99) * 1000:.1f} ms "
        f"max {max(during, default=0) * 1000:.1f} ms (n={len(during)})"
    )
    if before and during:
        ratio = statistics.median(during) / statistics.median(before)
        print(f"  median latency during / before: {ratio:.1f}x")
    answered = "PASS" if failed == 0 and during else "MISS"
    print(
        f"requests failed or unanswered: {failed}   target 0 (the intake keeps answering)  {answered}"
    )
    return 0 if verdict == answered == "PASS" else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--probe-interval", type=float, default=0.02)
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
