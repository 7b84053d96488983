"""The least an EventGate-like intake can do per request with this project's stack.

    python bench/floor_server.py PORT MODE SCHEMA_FILE [DB_OR_FILE]

MODE is one of ``noop`` (read the body, answer 201), ``parse`` (and orjson-parse it),
``validate`` (and check each event with jsonschema_rs, compiled once), ``file`` (and append
each event as a JSON line to a file, which is what EventGate's devserver does) or ``sqlite``
(and insert each event into SQLite, one transaction per event-loop turn, acknowledged after
the commit, WAL with synchronous=NORMAL as the sandbox's store). None of the sandbox's
own code runs here: this is the ceiling the libraries set, against which bench/floor.py
puts the sandbox's figures (see docs/performance.md, "The floor of the stack").
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys

import jsonschema_rs
import orjson
import yaml
from aiohttp import web


def validator(path: str):
    with open(path, encoding="utf-8") as f:
        schema = yaml.safe_load(f)
    schema.pop("$schema", None)  # the draft is known; jsonschema_rs needs no meta-schema
    return jsonschema_rs.validator_for(schema)


class SqliteSink:
    """Events committed in groups: every request waiting in one loop turn shares a commit."""

    def __init__(self, path: str):
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = NORMAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS events"
            " (id INTEGER PRIMARY KEY, stream TEXT, dt TEXT, event BLOB)"
        )
        self.db.execute("CREATE INDEX IF NOT EXISTS events_stream ON events (stream, id)")
        self.waiting: list[tuple[list[tuple], asyncio.Future]] = []

    async def put(self, rows: list[tuple]) -> None:
        fut = asyncio.get_running_loop().create_future()
        self.waiting.append((rows, fut))
        if len(self.waiting) == 1:
            asyncio.get_running_loop().call_soon(self.commit)
        await fut

    def commit(self) -> None:
        group, self.waiting = self.waiting, []
        self.db.execute("BEGIN")
        for rows, _ in group:
            self.db.executemany("INSERT INTO events (stream, dt, event) VALUES (?, ?, ?)", rows)
        self.db.execute("COMMIT")
        for _, fut in group:
            fut.set_result(None)


def make_app(mode: str, schema_path: str, out: str | None) -> web.Application:
    check = validator(schema_path).is_valid if mode != "noop" else None
    sink = SqliteSink(out) if mode == "sqlite" else None
    lines = open(out, "ab") if mode == "file" else None  # noqa: SIM115 (open while serving)

    async def events(request: web.Request) -> web.Response:
        raw = await request.read()
        if mode == "noop":
            return web.Response(status=201)
        body = orjson.loads(raw)
        batch = body if isinstance(body, list) else [body]
        if mode == "parse":
            return web.Response(status=201)
        valid = [e for e in batch if check(e)]
        if lines is not None:
            lines.write(b"".join(orjson.dumps(e) + b"\n" for e in valid))
            lines.flush()
        elif sink is not None:
            rows = [(e["meta"]["stream"], e["dt"], orjson.dumps(e)) for e in valid]
            await sink.put(rows)
        status = 201 if len(valid) == len(batch) else 207
        return web.Response(status=status)

    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post("/v1/events", events)
    return app


def main() -> None:
    port, mode, schema_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    out = sys.argv[4] if len(sys.argv) > 4 else None
    try:  # the sandbox's event loop, so the comparison is a fair one
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    web.run_app(
        make_app(mode, schema_path, out),
        host="127.0.0.1",
        port=port,
        print=lambda *_: print("ready", flush=True),
        access_log=None,
    )


if __name__ == "__main__":
    main()
