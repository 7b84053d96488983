"""The floor of the stack: how close to the no-op can a Python intake get at all?

    .venv/bin/python bench/floor.py [--pin] [--runs 3] [--seconds 5] [--connections 32]

Issue 15's throughput targets are ratios to a no-op aiohttp server, taken from EventGate
(Node: parse, validate, write a file). This benchmark runs, under the same load as
bench/intake.py and in the same run, servers that do a growing share of that work with this
project's libraries and none of its code (bench/floor_server.py): parse only; parse and
validate; validate and append to a file (EventGate's devserver); validate and commit to
SQLite in groups. Then the sandbox itself (``serve --no-fill-ins``). Each row prints its
throughput, its ratio to the no-op and the server's CPU per request or per event, so the
distance between the sandbox and the least that does the same job is a measured figure,
not a guess.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from intake import (
    LOAD_CPU,
    SERVER_CPU,
    SHARED,
    Peak,
    body_file,
    free_port,
    median,
    run_load,
    serve_command,
    start,
)

SCHEMA = SHARED / "schemas/secondary/jsonschema/analytics/product_metrics/web/base/1.3.0"
MODES = ("noop", "parse", "validate", "file", "sqlite")
HERE = Path(__file__).resolve().parent


def measure(cmd: list[str], url: str, bodies: dict[int, Path], args, tmp: Path) -> dict:
    """Start ``cmd`` pinned, load it with 1- and 10-event bodies; rates and CPU per unit."""
    server_cpu = SERVER_CPU if args.pin else None
    load_cpu = LOAD_CPU if args.pin else None
    proc, _ = start(cmd, "ready", server_cpu)
    cpu = Peak(proc.pid)
    out: dict = {}
    try:
        for n, body in bodies.items():
            rates, used = [], []
            for _ in range(args.runs):
                before = sum(cpu.cpu())
                result = run_load(url, body, args.seconds, args.connections, tmp, load_cpu)
                rates.append(result["rps"] * n)
                used.append((sum(cpu.cpu()) - before) / max(1.0, result["rps"] * args.seconds))
            out[n] = (median(rates), median(used) / n * 1e6)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pin", action="store_true", help="servers on CPU 0, the load on CPU 1")
    args = ap.parse_args()
    if args.pin and (os.cpu_count() or 1) < 2:
        raise SystemExit("--pin needs two CPUs")
    tmp = Path(tempfile.mkdtemp(prefix="mpsandbox-floor-"))
    bodies = {1: body_file(1, tmp), 10: body_file(10, tmp)}
    rows: dict[str, dict] = {}
    for mode in MODES:
        port = free_port()
        cmd = [sys.executable, str(HERE / "floor_server.py"), str(port), mode, str(SCHEMA)]
        if mode in ("file", "sqlite"):
            cmd.append(str(tmp / f"{mode}.out"))
        rows[mode] = measure(cmd, f"http://127.0.0.1:{port}/v1/events", bodies, args, tmp)
    port = free_port()
    cmd = serve_command(port, tmp / "sandbox.db", fill_ins=False)
    rows["sandbox"] = measure(cmd, f"http://127.0.0.1:{port}/v1/events", bodies, args, tmp)

    where = (
        f"pinned: servers on CPU {SERVER_CPU}, load on CPU {LOAD_CPU}" if args.pin else "unpinned"
    )
    print(
        f"{args.connections} connections, {args.seconds:g} s per run, median of {args.runs}; {where}"
    )
    print(
        f"{'server':<10} {'1-event req/s':>14} {'ratio':>6} {'us/req':>7}"
        f" {'10-event ev/s':>14} {'ratio':>6} {'us/event':>9}"
    )
    base = rows["noop"]
    for name, row in rows.items():
        (r1, c1), (r10, c10) = row[1], row[10]
        print(
            f"{name:<10} {r1:>14,.0f} {r1 / base[1][0]:>6.2f} {c1:>7.0f}"
            f" {r10:>14,.0f} {r10 / base[10][0]:>6.2f} {c10:>9.1f}"
        )


if __name__ == "__main__":
    main()
