"""Intake throughput benchmark: the sandbox against a no-op aiohttp endpoint, same load.

    .venv/bin/python bench/intake.py [--seconds 10] [--connections 32] [--million]

Prints requests/s, events/s, p50/p99 latency, peak RSS and the ratio to the no-op ceiling,
each with its target. Uses wrk when installed (Debian `wrk`), else bench/loadgen.py in a
separate process. Events are real web/base 1.3.0 events; every 201 is counted only after the
sandbox committed it (that is what a 201 means there).
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

ROOT = Path(__file__).resolve().parents[1]
SHARED = (ROOT / ".." / "shared" / "wm").resolve()
EVENT = json.loads((SHARED / "eventgate/recorded-local-run/req/valid_web_base.json").read_text())
SCHEMAS = [SHARED / "schemas/secondary/jsonschema", SHARED / "schemas/primary/jsonschema"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def body_file(n: int, tmp: Path) -> Path:
    events = [dict(EVENT, action=f"bench_{i}") for i in range(n)]
    path = tmp / f"body{n}.json"
    path.write_text(json.dumps(events))
    return path


WRK_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "text/plain;charset=UTF-8"
local f = io.open("%s", "rb")
wrk.body = f:read("*all")
f:close()
"""


def run_load(url: str, body: Path, seconds: float, connections: int, tmp: Path) -> dict:
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

    def sample(self) -> int:
        rss = self.proc.memory_info().rss
        for child in self.proc.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                rss += child.memory_info().rss
        self.peak = max(self.peak, rss)
        return rss


def start(cmd: list[str], ready_prefix: str) -> tuple[subprocess.Popen, float]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    if ready_prefix not in line:
        proc.kill()
        raise SystemExit(f"did not start: {cmd}: {line!r}")
    return proc, time.perf_counter() - t0


def stored_events(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/sandbox/stats", timeout=30) as resp:
        return json.loads(resp.read())["events"]


def report(name: str, value: str, target: str, ok: bool | None) -> None:
    mark = "" if ok is None else ("  PASS" if ok else "  MISS")
    print(f"{name:<44} {value:>18}   target {target}{mark}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument(
        "--million", action="store_true", help="also fill to 1,000,000 events and measure RSS"
    )
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mpsandbox-bench-"))
    one, ten = body_file(1, tmp), body_file(10, tmp)

    noop_port = free_port()
    noop, _ = start([sys.executable, str(ROOT / "bench/noop_server.py"), str(noop_port)], "ready")
    try:
        ceiling = run_load(
            f"http://127.0.0.1:{noop_port}/v1/events", one, args.seconds, args.connections, tmp
        )
    finally:
        noop.terminate()
        noop.wait()

    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "mpsandbox",
        "serve",
        "--port",
        str(port),
        "--db",
        str(tmp / "bench.db"),
        "--output",
        "none",
        "--no-watch",
    ]
    for s in SCHEMAS:
        cmd += ["--schemas", str(s)]
    sandbox, ready_s = start(cmd, "ready")
    peak = Peak(sandbox.pid)
    try:
        single = run_load(
            f"http://127.0.0.1:{port}/v1/events", one, args.seconds, args.connections, tmp
        )
        peak.sample()
        before = stored_events(port)
        t0 = time.perf_counter()
        batch = run_load(
            f"http://127.0.0.1:{port}/v1/events", ten, args.seconds, args.connections, tmp
        )
        elapsed = time.perf_counter() - t0
        peak.sample()
        committed = stored_events(port) - before
        million_rss = None
        if args.million:
            while stored_events(port) < 1_000_000:
                run_load(f"http://127.0.0.1:{port}/v1/events", ten, 20, args.connections, tmp)
                peak.sample()
            million_rss = peak.sample()
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=60)

    print(
        f"load generator: {ceiling['tool']}, {args.connections} connections, {args.seconds:g} s per run, "
        f"{os.cpu_count()} cores"
    )
    report(
        "no-op aiohttp ceiling, 1-event bodies", f"{ceiling['rps']:,.0f} req/s", "(baseline)", None
    )
    ratio = single["rps"] / ceiling["rps"]
    report(
        "sandbox, 1-event bodies", f"{single['rps']:,.0f} req/s", ">= 50% of ceiling", ratio >= 0.5
    )
    report("  ratio to ceiling", f"{ratio:.0%}", ">= 50%", ratio >= 0.5)
    report("  latency p50 / p99", f"{single['p50_ms']:.1f} / {single['p99_ms']:.1f} ms", "-", None)
    events_s = batch["rps"] * 10
    report(
        "sandbox, 10-event bodies",
        f"{events_s:,.0f} events/s",
        ">= 20,000 events/s",
        events_s >= 20_000,
    )
    report(
        "  committed during that run",
        f"{committed / elapsed:,.0f} events/s",
        ">= 20,000",
        committed / elapsed >= 20_000,
    )
    report("  latency p50 / p99", f"{batch['p50_ms']:.1f} / {batch['p99_ms']:.1f} ms", "-", None)
    report(
        "  non-2xx answers",
        f"{single['non2xx'] + batch['non2xx']}",
        "0",
        single["non2xx"] + batch["non2xx"] == 0,
    )
    report("ready after start", f"{ready_s:.2f} s", "< 1 s", ready_s < 1)
    report("peak RSS (intake + store process)", f"{peak.peak / 2**20:.0f} MB", "-", None)
    if million_rss is not None:
        report(
            "RSS after 1,000,000 stored events (both)",
            f"{million_rss / 2**20:.0f} MB",
            "< 150 MB",
            million_rss < 150 * 2**20,
        )
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
