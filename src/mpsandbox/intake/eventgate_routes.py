"""EventGate's routes: `POST /v1/events` (and extra intake paths), test events, info, spec.

Answers match a real EventGate 1.8.4 status for status, reason phrase and body. What EventGate
does not do, the sandbox adds without changing those answers: every request is stored before
it is acknowledged, and an overfull writer answers 503 instead of growing memory.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web

from mpsandbox import jsonio
from mpsandbox.fillins import new_uuid
from mpsandbox.intake import protocol, submit
from mpsandbox.intake.chaos_step import ChaosTurn
from mpsandbox.intake.exposure import route_key
from mpsandbox.pipeline import RequestContext
from mpsandbox.records import RequestRecord
from mpsandbox.redaction import redact_headers
from mpsandbox.sandbox import Sandbox

log = logging.getLogger(__name__)

SANDBOX_KEY = web.AppKey("sandbox", Sandbox)
REQUEST_ID_KEY = web.RequestKey("request_id", str)
EVENTGATE_VERSION = "1.8.4"


def _json_response(
    status: int, reason: str, body: object | None, headers: dict[str, str] | None = None
) -> web.Response:
    if body is None:
        return web.Response(status=status, reason=reason, headers=headers)
    return web.Response(
        status=status,
        reason=reason,
        headers=headers,
        body=jsonio.dumps(body),
        content_type="application/json",
        charset="utf-8",
    )


def _raw_headers(request: web.Request) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers]


def _request_record(
    request: web.Request, body: bytes, now: float, request_id: str
) -> RequestRecord:
    """The request as stored (secrets redacted as submit.request_record does)."""
    keep = request.app[SANDBOX_KEY].settings.keep_secrets
    return RequestRecord(
        received_at=now,
        method=request.method,
        path=request.path,
        query=request.query_string,
        headers=redact_headers(_raw_headers(request), keep),
        body=body,
        remote=request.remote,
        request_id=request_id,
    )


def _context(request: web.Request, now: float, request_id: str) -> RequestContext:
    # request.headers is a CIMultiDict: the fill-ins look headers up case-insensitively
    return RequestContext(
        received_at=now, request_id=request_id, headers=request.headers, peer=request.remote
    )


def _request_id(request: web.Request) -> str:
    """The client's X-Request-ID, or a fresh one; echoed on the answer for correlation."""
    rid = request.headers.get("x-request-id") or new_uuid()
    request[REQUEST_ID_KEY] = rid
    return rid


async def _read_body(request: web.Request, limit: int) -> tuple[bytes, bool]:
    """Read at most limit+1 bytes; (bytes, too_large). Compressed bodies are capped later."""
    chunks = []
    size = 0
    cap = limit + 1
    content = request.content
    while size < cap:
        chunk = await content.read(min(65536, cap - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if content.at_eof():  # the whole body came with the headers: no empty read
            break
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    encoding = (request.headers.get("content-encoding") or "identity").lower()
    too_large = size > limit and encoding in ("identity", "")
    if size >= cap and encoding not in ("identity", ""):
        # A compressed body larger than the limit inflates to more than the limit too.
        too_large = True
    return body, too_large


async def post_events(request: web.Request) -> web.StreamResponse:
    """Read the body off the socket (at most the limit and a byte), then hand the request
    to the transport-free core (submit.handle_post) that imports and replays use too.
    Chaos is a step of that one path; only what needs the socket is done here: waiting
    its latency and closing the connection of a dropped request."""
    sandbox = request.app[SANDBOX_KEY]
    chaos = ChaosTurn.decide(sandbox.chaos)  # None at once while chaos is off
    now = time.time()
    request_id = _request_id(request)
    raw, too_large = await _read_body(request, sandbox.settings.max_body)
    req = submit.Incoming(
        method=request.method,
        path=request.path,
        query=request.query_string,
        headers=request.headers,
        raw_headers=_raw_headers(request),
        body=raw,
        too_large=too_large,
        received_at=now,
        request_id=request_id,
        uri=request.path_qs,
        remote=request.remote,
    )
    handled = await submit.handle_post(sandbox, req, chaos=chaos)
    if chaos is None:
        return _respond(handled)
    chaos.noted(handled.record)
    if chaos.latency_s:
        await asyncio.sleep(chaos.latency_s)
    if handled.dropped:
        transport = request.transport
        if transport is not None:
            transport.close()  # no status line, no headers: the client sees a disconnect
        return web.Response(status=204)  # never sent
    return _respond(handled)


def _respond(handled: submit.Handled) -> web.Response:
    return _json_response(handled.status, handled.reason, handled.body, handled.headers)


async def test_events(request: web.Request) -> web.StreamResponse:
    sandbox = request.app[SANDBOX_KEY]
    now = time.time()
    request_id = _request_id(request)
    record = _request_record(request, b"", now, request_id)
    events = list(sandbox.settings.test_events)  # the pipeline never modifies its input
    record.event_count = len(events)
    judged = await sandbox.judge(events, _context(request, now, request_id))
    answer = protocol.answer_for(judged)
    return _respond(
        await submit.answer_and_store(
            sandbox, record, answer.status, answer.reason, answer.body, judged
        )
    )


async def options(request: web.Request) -> web.Response:
    return web.Response(
        status=200, text="POST", content_type="text/html", headers={"Allow": "POST"}
    )


async def info(request: web.Request) -> web.Response:
    return _json_response(200, "OK", {"version": EVENTGATE_VERSION})


async def root(request: web.Request) -> web.Response:
    if "spec" in request.query:
        from mpsandbox.intake.openapi import eventgate_spec

        return _json_response(200, "OK", eventgate_spec())
    if "doc" in request.query:
        return web.Response(
            status=200,
            text="<!DOCTYPE html><title>mpsandbox</title><p>EventGate-compatible intake. "
            "See <a href='/?spec'>/?spec</a> and <a href='/sandbox/openapi.json'>"
            "/sandbox/openapi.json</a>.</p>",
            content_type="text/html",
        )
    raise web.HTTPNotFound()


async def robots(request: web.Request) -> web.Response:
    return web.Response(text="User-agent: *\nDisallow: /\n", content_type="text/plain")


def with_slash(path: str) -> tuple[str, str]:
    """A route and its trailing-slash twin: Express's non-strict routing (EventGate's)
    answers ``POST /v1/events/`` as ``POST /v1/events``."""
    bare = route_key(path)
    return bare, bare + "/"
