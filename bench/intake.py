"""Intake throughput benchmark: the sandbox against a no-op aiohttp endpoint, same load.

    .venv/bin/python bench/intake.py [--pin] [--runs 3] [--seconds 10] [--connections 32]
                                     [--no-fill-ins] [--disk-events N] [--million]

Prints requests/s, events/s, p50/p99 latency, the CPU time each request or event cost (the
intake and the store process; the no-op's too: what a busy machine changes least), peak RSS,
bytes on disk per stored event and the ratio of each throughput to the no-op's, measured in
the same run, with its target.
``--pin`` puts every process of the server under test (the no-op, the sandbox and its store
process) on CPU 0 and the load generator on CPU 1, so the figures do not depend on what else
the machine runs; each figure is the median of ``--runs`` runs. Uses wrk when installed
(Debian `wrk`), else bench/loadgen.py in a separate process. Events are realistic web/base 1.3.0
events (bench/realistic.py); every 201 is counted only after the sandbox committed it (that is what a 201 means
there).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from realistic import web_base_events

#: CPUs for --pin: the server under test on one, the load generator on the other.
SERVER_CPU, LOAD_CPU = 0, 1

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / "tests" / "data"  # reference data, as the tests use it
SCHEMAS = [SHARED / "schemas/secondary/jsonschema", SHARED / "schemas/primary/jsonschema"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def body_file(n: int, tmp: Path) -> Path:
    path = tmp / f"body{n}.json"
    path.write_text(json.dumps(list(web_base_events(n)), separators=(",", ":")))
    return path


def fill_distinct(port: int, total: int, per_request: int = 10, concurrency: int = 8) -> float:
    """Post ``total`` distinct realistic events, ``per_request`` per body; events/s committed.

    wrk repeats one body, so its events are identical: fine for speed, useless for what
    the store makes of real, varied events on disk. This is the disk figure's input.
    """
    import asyncio

    import aiohttp

    bodies = iter(
        json.dumps(chunk, separators=(",", ":")).encode()
        for chunk in _chunks(web_base_events(total, seed=port), per_request)
    )

    async def worker(session: aiohttp.ClientSession) -> None:
        for body in bodies:
            async with session.post(
                f"http://127.0.0.1:{port}/v1/events",
                data=body,
                headers={"Content-Type": "application/json"},
            ) as resp:
                if resp.status != 201:
                    raise SystemExit(f"fill: HTTP {resp.status}: {await resp.text()}")

    async def run() -> None:
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(worker(session) for _ in range(concurrency)))

    t0 = time.perf_counter()
    asyncio.run(run())
    return total / (time.perf_counter() - t0)


def _chunks(events, n: int):
    chunk = []
    for event in events:
        chunk.append(event)
        if len(chunk) == n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


WRK_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "text/plain;charset=UTF-8"
local f = io.open("%s", "rb")
wrk.body = f:read("*all")
f:close()
"""


def _pinned(cpu: int | None):
    """A preexec_fn that puts the child (and everything it starts later) on ``cpu``."""
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def run_load(
    url: str, body: Path, seconds: float, connections: int, tmp: Path, cpu: int | None = None
) -> dict:
    wrk = shutil.which("wrk")
    if wrk:
        script = tmp / f"{body.stem}.lua"
        script.write_text(WRK_LUA % body)
        out = subprocess.run(
            [
                wrk,
                "-t2",
                f"-c{connections}",
                f"-d{int(seconds)}s",
                "--latency",
                "-s",
                str(script),
                url,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            preexec_fn=_pinned(cpu),
        ).stdout
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

        def pct(p: str) -> float:
            m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
            value, unit = float(m.group(1)), m.group(2)
            return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

        non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
        return {
            "tool": "wrk",
            "rps": rps,
            "p50_ms": pct("50"),
            "p99_ms": pct("99"),
            "non2xx": int(non2xx.group(1)) if non2xx else 0,
        }
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench/loadgen.py"),
            url,
            str(body),
            str(seconds),
            str(connections),
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        preexec_fn=_pinned(cpu),
    ).stdout
    data = json.loads(out)
    data["tool"] = "python"
    data["non2xx"] = sum(v for k, v in data["statuses"].items() if not str(k).startswith("2"))
    return data


class Peak:
    """Samples the RSS of a process and its children (the store runs in one), so the peak
    of the whole sandbox is reported, not just the last value of one process."""

    def __init__(self, pid: int):
        self.proc = psutil.Process(pid)
        self.peak = 0

    def cpu(self) -> tuple[float, float]:
        """CPU seconds used so far: (the intake process, its children: the store process)."""
        t = self.proc.cpu_times()
        children = 0.0
        for child in self.proc.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                c = child.cpu_times()
                children += c.user + c.system
        return t.user + t.system, children

    def sample(self) -> int:
        rss = self.proc.memory_info().rss
        for child in self.proc.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                rss += child.memory_info().rss
        self.peak = max(self.peak, rss)
        return rss


def start(
    cmd: list[str], ready_prefix: str, cpu: int | None = None
) -> tuple[subprocess.Popen, float]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        preexec_fn=_pinned(cpu),
    )
    line = proc.stdout.readline()
    if ready_prefix not in line:
        proc.kill()
        raise SystemExit(f"did not start: {cmd}: {line!r}")
    return proc, time.perf_counter() - t0


def serve_command(port: int, db: Path, *, fill_ins: bool) -> list[str]:
    """``mpsandbox serve`` as every intake benchmark runs it: headless, offline, the test
    schemas, nothing printed but the ready line."""
    cmd = [
        *[sys.executable, "-m", "mpsandbox", "serve", "--port", str(port)],
        *["--db", str(db), "--output", "none", "--no-watch", "--offline"],
    ]
    if not fill_ins:
        cmd.append("--no-fill-ins")
    for s in SCHEMAS:
        cmd += ["--schemas", str(s)]
    return cmd


def stored_events(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/sandbox/stats", timeout=30) as resp:
        return json.loads(resp.read())["events"]


def disk_bytes(db: Path) -> int:
    """The database and its WAL after a checkpoint: every table and index included."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))


def compact_json_bytes(db: Path) -> int:
    """What the stored events weigh as compact JSON (as accepted: with the fill-ins the
    store keeps): the yardstick for the disk target. Read through the store's own reader,
    so it holds whatever the storage format is."""
    from mpsandbox.store import StoreReader

    total, after = 0, 0
    with StoreReader(db) as reader:
        while page := reader.event_bodies(after_id=after, limit=5_000):
            for event in page:
                total += len(json.dumps(event["accepted"], separators=(",", ":")))
            after = page[-1]["id"]
    return total


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def report(name: str, value: str, target: str, ok: bool | None) -> None:
    mark = "" if ok is None else ("  PASS" if ok else "  MISS")
    print(f"{name:<44} {value:>18}   target {target}{mark}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--runs", type=int, default=3, help="median of this many runs (default 3)")
    ap.add_argument(
        "--pin",
        action="store_true",
        help=f"servers on CPU {SERVER_CPU}, the load generator on CPU {LOAD_CPU}",
    )
    ap.add_argument(
        "--no-fill-ins", action="store_true", help="serve --no-fill-ins (as generic EventGate)"
    )
    ap.add_argument(
        "--disk-events",
        type=int,
        default=20_000,
        help="distinct events (10 per request) stored for the disk figure (default 20,000)",
    )
    ap.add_argument(
        "--million", action="store_true", help="also fill to 1,000,000 events and measure RSS"
    )
    args = ap.parse_args()
    if args.pin and (os.cpu_count() or 1) < 2:
        raise SystemExit("--pin needs two CPUs")
    server_cpu = SERVER_CPU if args.pin else None
    load_cpu = LOAD_CPU if args.pin else None
    tmp = Path(tempfile.mkdtemp(prefix="mpsandbox-bench-"))
    one, ten = body_file(1, tmp), body_file(10, tmp)

    def load(port: int, body: Path, seconds: float | None = None) -> dict:
        url = f"http://127.0.0.1:{port}/v1/events"
        return run_load(url, body, seconds or args.seconds, args.connections, tmp, load_cpu)

    noop_port = free_port()
    noop, _ = start(
        [sys.executable, str(ROOT / "bench/noop_server.py"), str(noop_port)], "ready", server_cpu
    )
    noop_cpu = Peak(noop.pid)
    try:
        before = noop_cpu.cpu()[0]
        noop_one = [load(noop_port, one) for _ in range(args.runs)]
        answered = sum(r["rps"] for r in noop_one) * args.seconds
        noop_us = (noop_cpu.cpu()[0] - before) / max(1.0, answered) * 1e6
        noop_ten = [load(noop_port, ten) for _ in range(args.runs)]
    finally:
        noop.terminate()
        noop.wait()

    port = free_port()
    db = tmp / "bench.db"
    cmd = serve_command(port, db, fill_ins=not args.no_fill_ins)
    sandbox, ready_s = start(cmd, "ready", server_cpu)
    peak = Peak(sandbox.pid)
    cpu_one: list[tuple[float, float]] = []  # CPU us per request: (intake, store process)
    cpu_ten: list[tuple[float, float]] = []  # CPU us per committed event
    try:
        single = []
        for _ in range(args.runs):
            before, cpu0 = stored_events(port), peak.cpu()
            single.append(load(port, one))
            cpu1, n = peak.cpu(), max(1, stored_events(port) - before)
            cpu_one.append(((cpu1[0] - cpu0[0]) / n * 1e6, (cpu1[1] - cpu0[1]) / n * 1e6))
        peak.sample()
        batches, committed_rates = [], []
        for _ in range(args.runs):
            before, cpu0 = stored_events(port), peak.cpu()
            t0 = time.perf_counter()
            batches.append(load(port, ten))
            elapsed = time.perf_counter() - t0
            cpu1 = peak.cpu()
            peak.sample()
            n = stored_events(port) - before
            committed_rates.append(n / elapsed)
            n = max(1, n)
            cpu_ten.append(((cpu1[0] - cpu0[0]) / n * 1e6, (cpu1[1] - cpu0[1]) / n * 1e6))
        million_rss = None
        if args.million:
            while stored_events(port) < 1_000_000:
                load(port, ten, 20)
                peak.sample()
            million_rss = peak.sample()
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=60)

    # Disk: a fresh database filled with distinct events (see fill_distinct).
    disk_db = tmp / "disk.db"
    disk_cmd = [*cmd[: cmd.index("--db") + 1], str(disk_db), *cmd[cmd.index("--db") + 2 :]]
    disk_port = free_port()
    disk_cmd[disk_cmd.index("--port") + 1] = str(disk_port)
    sandbox, _ = start(disk_cmd, "ready", server_cpu)
    try:
        fill_rate = fill_distinct(disk_port, args.disk_events)
        stored = stored_events(disk_port)
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=120)
    on_disk = disk_bytes(disk_db)
    as_json = compact_json_bytes(disk_db)

    pinned = (
        f"pinned: servers on CPU {SERVER_CPU}, load on CPU {LOAD_CPU}"
        if args.pin
        else f"unpinned, {os.cpu_count()} cores"
    )
    print(
        f"load generator: {noop_one[0]['tool']}, {args.connections} connections, "
        f"{args.seconds:g} s per run, median of {args.runs}; {pinned}"
        + ("; --no-fill-ins" if args.no_fill_ins else "")
    )
    noop_rps = median([r["rps"] for r in noop_one])
    noop_events = median([r["rps"] for r in noop_ten]) * 10
    report("no-op aiohttp, 1-event bodies", f"{noop_rps:,.0f} req/s", "(baseline)", None)
    report("  CPU per request", f"{noop_us:.0f} us", "-", None)
    report("no-op aiohttp, 10-event bodies", f"{noop_events:,.0f} events/s", "(baseline)", None)
    rps = median([r["rps"] for r in single])
    ratio = rps / noop_rps
    report("sandbox, 1-event bodies", f"{rps:,.0f} req/s", "-", None)
    report("  ratio to the no-op", f"{ratio:.2f}", ">= 0.25 (goal 0.4)", ratio >= 0.25)
    report(
        "  latency p50 / p99",
        f"{median([r['p50_ms'] for r in single]):.1f} / "
        f"{median([r['p99_ms'] for r in single]):.1f} ms",
        "-",
        None,
    )
    report(
        "  CPU per request: intake + store process",
        f"{median([c[0] for c in cpu_one]):.0f} + {median([c[1] for c in cpu_one]):.0f} us",
        "-",
        None,
    )
    events_s = median([r["rps"] for r in batches]) * 10
    committed = median(committed_rates)
    ratio10 = committed / noop_events
    report("sandbox, 10-event bodies, committed", f"{committed:,.0f} events/s", "-", None)
    report("  ratio to the no-op", f"{ratio10:.2f}", ">= 0.23 (goal 0.35)", ratio10 >= 0.23)
    if not args.pin:
        report(
            "  unpinned, 2 cores", f"{committed:,.0f} events/s", ">= 40,000", committed >= 40_000
        )
    report("  answered", f"{events_s:,.0f} events/s", "-", None)
    report(
        "  CPU per event: intake + store process",
        f"{median([c[0] for c in cpu_ten]):.0f} + {median([c[1] for c in cpu_ten]):.0f} us",
        "-",
        None,
    )
    report(
        "  latency p50 / p99",
        f"{median([r['p50_ms'] for r in batches]):.1f} / "
        f"{median([r['p99_ms'] for r in batches]):.1f} ms",
        "-",
        None,
    )
    non2xx = sum(r["non2xx"] for r in (*single, *batches))
    report("  non-2xx answers", f"{non2xx}", "0", non2xx == 0)
    report("ready after start", f"{ready_s:.2f} s", "< 0.5 s", ready_s < 0.5)
    report("peak RSS (intake + store process)", f"{peak.peak / 2**20:.0f} MB", "< 200 MB", None)
    report(f"bytes on disk per event ({stored:,} events)", f"{on_disk / stored:,.0f} B", "-", None)
    report("  filled at", f"{fill_rate:,.0f} events/s", "-", None)
    if as_json:
        factor = on_disk / as_json
        report("  compact JSON per event", f"{as_json / stored:,.0f} B", "-", None)
        report("  disk / compact JSON", f"{factor:.2f}x", "<= 1.5x (goal 1.0x)", factor <= 1.5)
    if million_rss is not None:
        report(
            "RSS after 1,000,000 stored events (both)",
            f"{million_rss / 2**20:.0f} MB",
            "< 200 MB",
            million_rss < 200 * 2**20,
        )
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
