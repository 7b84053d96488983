"""A small HTTP load generator, used when wrk is not installed: N concurrent POST loops.

Runs in its own process so it does not share a core's GIL with the server it measures.
Prints one JSON line: requests, seconds, rps, p50_ms, p99_ms, statuses.
"""

import asyncio
import json
import sys
import time
from collections import Counter

import aiohttp


async def main(url: str, body_file: str, seconds: float, concurrency: int) -> None:
    with open(body_file, "rb") as f:
        body = f.read()
    headers = {"content-type": "text/plain;charset=UTF-8"}
    latencies: list[float] = []
    statuses: Counter = Counter()
    deadline = time.perf_counter() + seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                statuses[resp.status] += 1
            latencies.append(time.perf_counter() - t0)

    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as session:
        start = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    n = len(latencies)
    print(
        json.dumps(
            {
                "requests": n,
                "seconds": elapsed,
                "rps": n / elapsed,
                "p50_ms": latencies[n // 2] * 1000 if n else None,
                "p99_ms": latencies[min(n - 1, int(n * 0.99))] * 1000 if n else None,
                "statuses": dict(statuses),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])))
