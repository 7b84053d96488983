"""What chaos costs the intake: nothing measurable while it is off.

    .venv/bin/python bench/chaos.py [--requests 2000]

Prints (1) the cost of the one check the intake's hot path makes while chaos is off (read
``sandbox.chaos``, compare with None), (2) what a whole request costs end to end on a real
server on loopback (one web/base event, sequential, client in the same process), so the
check can be put in proportion, (3) the decision's cost while chaos is on, and (4) the cost
of the poll that picks up changes (once a second, off the event loop).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import timeit
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mpsandbox.chaos import Chaos, parse_spec  # noqa: E402
from mpsandbox.config import Settings  # noqa: E402
from mpsandbox.intake.server import start_server  # noqa: E402

SHARED = ROOT / "tests" / "data"  # reference data, as the tests use it
BODY = (SHARED / "eventgate/recorded-local-run/req/valid_web_base.json").read_bytes()
SCHEMAS = (SHARED / "schemas/secondary/jsonschema", SHARED / "schemas/primary/jsonschema")


def per_call_ns(stmt: str, namespace: dict, number: int = 1_000_000) -> float:
    best = min(timeit.repeat(stmt, globals=namespace, number=number, repeat=5))
    return best / number * 1e9


async def requests_us(url: str, n: int) -> list[float]:
    """Per-request wall time (µs) of n sequential POSTs, in rounds of 200 (median each)."""
    headers = {"content-type": "text/plain;charset=UTF-8"}
    rounds = []
    async with aiohttp.ClientSession() as session:
        for _ in range(50):  # warm up: schema compiled, connection open
            async with session.post(url, data=BODY, headers=headers) as resp:
                await resp.read()
        for _ in range(n // 200):
            times = []
            for _ in range(200):
                t0 = time.perf_counter()
                async with session.post(url, data=BODY, headers=headers) as resp:
                    await resp.read()
                    assert resp.status == 201, resp.status
                times.append(time.perf_counter() - t0)
            rounds.append(statistics.median(times) * 1e6)
    return rounds


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            port=0,
            db=Path(tmp) / "bench.db",
            schema_dirs=SCHEMAS,
            cache_dir=Path(tmp) / "cache",
            watch_schemas=False,
        )
        server = await start_server(settings)
        try:
            sandbox = server.sandbox
            assert sandbox.chaos is None
            check = per_call_ns(
                "chaos = sandbox.chaos\nif chaos is not None: pass", {"sandbox": sandbox}
            )
            rounds = await requests_us(server.url + "/v1/events", n)
            chaos = Chaos(parse_spec("503:0.000001"))  # on, but (almost) never applies
            decide = per_call_ns("chaos.decide()", {"chaos": chaos})
            store = sandbox.chaos_store
            poll = per_call_ns("store.state()", {"store": store}, number=20_000)
        finally:
            await server.stop()
    request = statistics.median(rounds)
    print(
        json.dumps(
            {
                "off_check_ns": round(check, 1),
                "request_us_median": round(request, 1),
                "request_us_rounds_min_max": [round(min(rounds), 1), round(max(rounds), 1)],
                "off_check_share_of_request": f"{check / (request * 1000):.5%}",
                "on_decide_ns": round(decide, 1),
                "poll_us_per_second": round(poll / 1000, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    asyncio.run(main(parser.parse_args().requests))
