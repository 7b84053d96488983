"""The inspection API: what people, scripts and CI ask the sandbox about stored events.

Reads run in a worker thread against the store's read connection, so a slow query never
stalls the intake on the event loop.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

from aiohttp import web

from mpsandbox import jsonio
from mpsandbox.config import parse_duration
from mpsandbox.intake.eventgate_routes import SANDBOX_KEY
from mpsandbox.query import QuerySyntaxError, parse_query
from mpsandbox.records import VERDICTS
from mpsandbox.store import EventFilter

FILTER_PARAMS = (
    "stream",
    "verdict",
    "schema",
    "action",
    "session",
    "pageview",
    "meta_id",
    "since",
    "until",
    "text",
    "request",
    "q",
)


class BadParam(web.HTTPBadRequest):
    def __init__(self, message: str):
        super().__init__(
            text=jsonio.dumps_str({"status": 400, "title": "bad parameter", "detail": message}),
            content_type="application/json",
        )


class BadQuery(web.HTTPBadRequest):
    """A ``q`` that does not parse: the message and the 0-based position of the problem."""

    def __init__(self, text: str, err: QuerySyntaxError):
        super().__init__(
            text=jsonio.dumps_str(
                {
                    "status": 400,
                    "title": "bad query",
                    "detail": f"q: {err}",
                    "message": err.message,
                    "position": err.position,
                    "q": text,
                }
            ),
            content_type="application/json",
        )


def json_ok(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=jsonio.dumps(data), content_type="application/json", headers=headers
    )


def parse_time(value: str, name: str) -> float:
    """Epoch seconds, ISO-8601, or a duration back from now (`5m`)."""
    v = value.strip()
    try:
        return float(v)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
    except ValueError:
        pass
    try:
        return time.time() - parse_duration(v)
    except ValueError:
        raise BadParam(
            f"{name}={value!r} is not a time (epoch seconds, ISO-8601 or e.g. 5m)"
        ) from None


def filter_from_query(query) -> EventFilter:
    unknown_verdict = query.get("verdict")
    if unknown_verdict is not None and unknown_verdict not in VERDICTS:
        raise BadParam(f"verdict must be one of {', '.join(VERDICTS)}; got {unknown_verdict!r}")
    kwargs: dict[str, Any] = {}
    for key in ("stream", "verdict", "schema", "action", "session", "pageview", "meta_id", "text"):
        if query.get(key):
            kwargs[key] = query[key]
    for key in ("since", "until"):
        if query.get(key):
            kwargs[key] = parse_time(query[key], key)
    if query.get("request"):
        kwargs["request"] = _int(query["request"], "request")
    if query.get("q"):
        try:
            # Pinned: "since:5m" means the five minutes before this request, also while
            # /sandbox/wait keeps counting.
            kwargs["query"] = parse_query(query["q"], now=time.time())
        except QuerySyntaxError as err:
            raise BadQuery(query["q"], err) from None
    return EventFilter(**kwargs)


def _int(value: str, name: str, lo: int | None = None, hi: int | None = None) -> int:
    try:
        n = int(value)
    except ValueError:
        raise BadParam(f"{name} must be an integer, got {value!r}") from None
    if (lo is not None and n < lo) or (hi is not None and n > hi):
        raise BadParam(f"{name} must be between {lo} and {hi}")
    return n


async def in_thread(fn, *args, **kwargs):
    return await asyncio.get_running_loop().run_in_executor(None, lambda: fn(*args, **kwargs))


async def list_events(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX_KEY]
    q = request.query
    flt = filter_from_query(q)
    limit = _int(q.get("limit", "50"), "limit", 1, 1000)
    before = _int(q["before"], "before") if q.get("before") else None
    after = _int(q["after"], "after") if q.get("after") else None
    oldest_first = q.get("order") == "asc"
    rows = await in_thread(
        sandbox.reader.list_events,
        flt,
        before_id=before,
        after_id=after,
        limit=limit + 1,
        newest_first=not oldest_first,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    nxt = None
    if more and rows:
        key = "after" if oldest_first else "before"
        params = {k: v for k, v in q.items() if k not in ("before", "after")}
        params[key] = str(rows[-1]["id"])
        nxt = str(request.url.with_query(params).relative())
    return json_ok({"events": rows, "next": nxt})


async def list_errors(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX_KEY]
    q = request.query
    flt = filter_from_query(q)
    limit = _int(q.get("limit", "100"), "limit", 1, 1000)
    groups = await in_thread(sandbox.reader.list_error_groups, flt, limit=limit)
    return json_ok({"groups": groups})


async def get_event(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX_KEY]
    event_id = _int(request.match_info["id"], "id")
    detail = await in_thread(sandbox.reader.get_event, event_id)
    if detail is None:
        raise web.HTTPNotFound(
            text=jsonio.dumps_str(
                {"status": 404, "title": "no such event", "detail": f"id {event_id}"}
            ),
            content_type="application/json",
        )
    return json_ok(detail)


async def stats(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX_KEY]
    data = await in_thread(sandbox.reader.stats)
    data["writer"] = sandbox.writer.stats()
    data["refused_backlog"] = sandbox.refused_backlog
    data["write_failures"] = sandbox.write_failures
    data["schema_sources"] = sandbox.registry.describe()
    data["schema_load_errors"] = dict(sandbox.registry.load_errors)
    source = sandbox.stream_source
    data["stream_configs"] = source.status() if source is not None else None
    data["chaos"] = sandbox.chaos_summary()
    data["settings"] = {
        "fill_ins": sandbox.settings.fill_ins,
        "intake_paths": list(sandbox.settings.intake_paths),
        "beacon_paths": list(sandbox.settings.beacon_paths),
        "max_body": sandbox.settings.max_body,
        "db": str(sandbox.settings.db),
    }
    return json_ok(data)


async def reset(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX_KEY]
    await sandbox.reset()
    return json_ok({"reset": True})


async def wait(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX_KEY]
    q = request.query
    flt = filter_from_query(q)
    count = _int(q.get("count", "1"), "count", 1, 10_000_000)
    try:
        timeout = float(q.get("timeout", "30"))
    except ValueError:
        raise BadParam("timeout must be a number of seconds") from None
    timeout = max(0.0, min(timeout, 600.0))
    n = await sandbox.wait_for(flt, count, timeout)
    if n is None:
        have = await in_thread(sandbox.reader.count_events, flt)
        return json_ok(
            {
                "status": 408,
                "title": "timed out",
                "detail": f"{have} of {count} matching events arrived within {timeout:g} s",
                "count": have,
            },
            status=408,
        )
    return json_ok({"count": n})


async def resolve_schema(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX_KEY]
    uri = request.query.get("uri")
    if not uri:
        raise BadParam("give the schema URI as ?uri=/title/1.0.0")
    res = await in_thread(sandbox.registry.resolve, uri)
    return json_ok(res.probe())


async def readyz(request: web.Request) -> web.Response:
    """Ready while the store can write: "store" names its state ("ok", "restarting",
    "failed", "deleted", "replaced", "full", "readonly", ...) and "detail" says why not."""
    sandbox = request.app[SANDBOX_KEY]
    health = sandbox.check_store()
    if not health.ok:
        body = {"ready": False, "store": health.state, "detail": health.detail}
        return json_ok(body, status=503)
    return json_ok({"ready": True, "store": "ok"})


async def openapi(request: web.Request) -> web.Response:
    from mpsandbox.intake.openapi import sandbox_openapi

    return json_ok(sandbox_openapi(request.app))


# Recorded requests: every one received, malformed ones and those chaos failed or dropped
# (which store no events) included.


def _int_or(value: str | None, name: str, default: int | None) -> int | None:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise BadParam(f"{name} must be a whole number") from None


async def list_requests(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX_KEY]
    limit = _int_or(request.query.get("limit"), "limit", 50)
    before = _int_or(request.query.get("before"), "before", None)
    rows = await in_thread(sandbox.reader.list_requests, limit, before)
    return json_ok({"requests": rows})


async def get_request(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX_KEY]
    request_id = _int_or(request.match_info["id"], "id", None)
    row = await in_thread(sandbox.reader.get_request, request_id)
    if row is None:
        return json_ok(
            {"status": 404, "title": "no such request", "detail": f"id {request_id}"}, 404
        )
    return json_ok(row)
