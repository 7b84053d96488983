"""The simulator as a load generator: realistic producer traffic against `mpsandbox serve`.

    .venv/bin/python bench/simulate_load.py [--seconds 10] [--users 32] [--rate EVENTS/S]
                                            [--to URL]

Starts `mpsandbox serve` (demo stream configs and experiments, the reference schemas) on a
free port in a child process, unless --to names an intake already running; runs the
simulator against it for --seconds with --users users at once (their visits: the JS
library's batches, EventLogging objects, Test Kitchen arrays of one, app batches), then
stops the server and counts what it committed. Prints one JSON line: events sent and sent/s
(by the simulator, as answered), events committed and committed/s (rows in the database),
requests by producer and statuses.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / "tests" / "data"  # reference data, as the tests use it
sys.path.insert(0, str(ROOT / "src"))

from mpsandbox.fixtures.replay import HttpTarget  # noqa: E402
from mpsandbox.simulate import DEMO_EXPERIMENTS, DEMO_STREAMS  # noqa: E402
from mpsandbox.simulate.run import SimOptions, make_planner, simulate_async  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--users", type=int, default=32)
    ap.add_argument("--rate", type=float, default=None)
    ap.add_argument("--to", default=None, help="an intake already running (not counted)")
    args = ap.parse_args()

    proc = None
    db = None
    url = args.to
    with tempfile.TemporaryDirectory(prefix="mpsandbox-simload-") as tmp:
        if url is None:
            port = free_port()
            db = Path(tmp) / "bench.db"
            cmd = [
                sys.executable, "-m", "mpsandbox", "serve", "--port", str(port),
                "--db", str(db), "--output", "none", "--no-watch",
                "--stream-config", str(DEMO_STREAMS), "--experiments", str(DEMO_EXPERIMENTS),
                "--schemas", str(SHARED / "schemas/secondary/jsonschema"),
                "--schemas", str(SHARED / "schemas/primary/jsonschema"),
            ]  # fmt: skip
            env = {"PYTHONPATH": str(ROOT / "src")}
            import os

            proc = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                env={**os.environ, **env},
            )  # fmt: skip
            assert proc.stdout is not None
            ready = proc.stdout.readline()
            if '"ready":true' not in ready:
                raise SystemExit(f"serve did not start: {ready!r}")
            url = f"http://127.0.0.1:{port}/v1/events"
        planner = make_planner(
            instruments=ROOT / "instruments",
            stream_config=str(DEMO_STREAMS),
            experiments_file=str(DEMO_EXPERIMENTS),
            seed=int(time.time()),
            bugs=False,
        )
        options = SimOptions(users=args.users, rate=args.rate, duration=args.seconds)
        target = HttpTarget(url, timeout=30, concurrency=args.users)
        result = asyncio.run(simulate_async(planner, target, options))
        out = {
            "seconds": round(result.elapsed, 2),
            "users": args.users,
            "events_sent": result.events_sent,
            "sent_per_s": round(result.events_sent / result.elapsed, 1),
            "out_of_sample_not_sent": result.out_of_sample,
            "requests_by_producer": dict(result.requests_by_producer),
            "statuses": dict(result.by_status),
            "transport_failures": result.transport_failures,
        }
        if proc is not None:
            proc.terminate()  # serve drains its writer before it exits
            proc.wait(60)
            conn = sqlite3.connect(db)
            committed = conn.execute("SELECT count(*) FROM events").fetchone()[0]
            conn.close()
            out["events_committed"] = committed
            out["committed_per_s"] = round(committed / result.elapsed, 1)
        print(json.dumps(out))


if __name__ == "__main__":
    main()
