"""EventGate's routes: `POST /v1/events` (and extra intake paths), test events, info, spec.

Answers match a real EventGate 1.8.4 status for status, reason phrase and body. What EventGate
does not do, the sandbox adds without changing those answers: every request is stored before
it is acknowledged, and an overfull writer answers 503 instead of growing memory.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web

from mpsandbox import jsonio
from mpsandbox.fillins import new_uuid
from mpsandbox.intake import protocol
from mpsandbox.pipeline import RequestContext
from mpsandbox.records import RequestRecord
from mpsandbox.sandbox import Sandbox
from mpsandbox.store import BacklogFull, StoreError

log = logging.getLogger(__name__)

SANDBOX_KEY = web.AppKey("sandbox", Sandbox)
REQUEST_ID_KEY = web.RequestKey("request_id", str)
EVENTGATE_VERSION = "1.8.4"
#: How much of a refused body is kept: enough to see what it was, not enough to hurt.
REFUSED_BODY_KEEP = 64 * 1024


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


def _request_record(
    request: web.Request, body: bytes, now: float, request_id: str
) -> RequestRecord:
    return RequestRecord(
        received_at=now,
        method=request.method,
        path=request.path,
        query=request.query_string,
        headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers],
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
    while size < cap:
        chunk = await request.content.read(min(65536, cap - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    body = b"".join(chunks)
    encoding = (request.headers.get("content-encoding") or "identity").lower()
    too_large = size > limit and encoding in ("identity", "")
    if size >= cap and encoding not in ("identity", ""):
        # A compressed body larger than the limit inflates to more than the limit too.
        too_large = True
    return body, too_large


async def post_events(request: web.Request) -> web.StreamResponse:
    sandbox = request.app[SANDBOX_KEY]
    now = time.time()
    request_id = _request_id(request)
    limit = sandbox.settings.max_body
    raw, too_large = await _read_body(request, limit)
    record = _request_record(request, raw, now, request_id)
    uri = request.path_qs

    if too_large:
        record.body = raw[:REFUSED_BODY_KEEP]
        record.note = f"body over the {limit}-byte limit; first {REFUSED_BODY_KEEP} bytes kept"
        err = protocol.BodyError("PayloadTooLargeError", "request entity too large")
        return await _answer_problem(sandbox, record, err, uri)
    try:
        body, data = protocol.read_body(
            request.headers.get("content-type"),
            request.headers.get("content-encoding"),
            raw,
            limit,
        )
    except protocol.BodyError as err:
        return await _answer_problem(sandbox, record, err, uri)

    if protocol.is_empty_body(body):
        return await _answer_and_store(sandbox, record, 400, protocol.EMPTY_REASON, None, [])

    events = protocol.as_events(body)
    record.event_count = len(events)
    if not sandbox.reserve(len(events)):
        return _refuse_backlog(sandbox, record)
    ctx = _context(request, now, request_id)
    working = protocol.as_events(jsonio.loads(data)) if data is not None else None
    judged = sandbox.pipeline.judge_batch(events, ctx, working)

    if protocol.is_hasty(request.query.get("hasty")):
        record.hasty = True
        record.status, record.reason = 202, protocol.hasty_reason(len(events))
        try:
            sandbox.store_later(record, judged)
        except StoreError as exc:
            return _store_failed(exc)
        except BacklogFull:  # the backlog filled between reserve and submit
            return _refuse_backlog(sandbox, record)
        return web.Response(status=202, reason=record.reason)

    answer = protocol.answer_for(judged)
    return await _answer_and_store(
        sandbox, record, answer.status, answer.reason, answer.body, judged
    )


def _refuse_backlog(sandbox: Sandbox, record: RequestRecord) -> web.Response:
    record.status, record.reason = 503, "Service Unavailable"
    record.body = record.body[:REFUSED_BODY_KEEP]
    record.note = "refused: the store's write backlog is full; the client should retry"
    sandbox.note_refused(record)
    return _unavailable(
        1,
        "backlog_full",
        "mpsandbox is behind on writes",
        "The store's write backlog is full; nothing from this request was kept except this "
        "note. Retry after a second.",
    )


async def _answer_problem(
    sandbox: Sandbox, record: RequestRecord, err: protocol.BodyError, uri: str
) -> web.StreamResponse:
    body = protocol.problem(err.status, err.title, err.detail, record.method, uri)
    record.error = f"{err.title}: {err.detail}"
    reason = "Internal Server Error" if err.status == 500 else err.title
    return await _answer_and_store(sandbox, record, err.status, reason, body, [])


async def _answer_and_store(
    sandbox: Sandbox, record: RequestRecord, status: int, reason: str, body, judged
) -> web.StreamResponse:
    record.status, record.reason = status, reason
    record.response_body = jsonio.dumps(body) if body is not None else None
    try:
        await sandbox.store(record, judged)
    except StoreError as exc:
        return _store_failed(exc)
    except BacklogFull:
        return _refuse_backlog(sandbox, record)
    return _json_response(status, reason, body)


def _store_failed(exc: StoreError) -> web.Response:
    """Never acknowledge what was not stored: the client sees a retryable failure."""
    return _unavailable(5, "store_error", "mpsandbox could not store this request", str(exc))


def _unavailable(retry_after: int, kind: str, title: str, detail: str) -> web.Response:
    """A 503 problem document; EventGate never sends one, only the sandbox's store can."""
    return _json_response(
        503,
        "Service Unavailable",
        {"status": 503, "type": kind, "title": title, "detail": detail},
        headers={"Retry-After": str(retry_after)},
    )


async def test_events(request: web.Request) -> web.StreamResponse:
    sandbox = request.app[SANDBOX_KEY]
    now = time.time()
    request_id = _request_id(request)
    record = _request_record(request, b"", now, request_id)
    events = list(sandbox.settings.test_events)  # the pipeline never modifies its input
    record.event_count = len(events)
    judged = sandbox.pipeline.judge_batch(events, _context(request, now, request_id))
    answer = protocol.answer_for(judged)
    return await _answer_and_store(
        sandbox, record, answer.status, answer.reason, answer.body, judged
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


def add_routes(app: web.Application, intake_paths: tuple[str, ...]) -> None:
    for path in dict.fromkeys(intake_paths):
        app.router.add_post(path, post_events)
        app.router.add_route("OPTIONS", path, options)
    app.router.add_get("/v1/_test/events", test_events)
    app.router.add_get("/_info", info)
    app.router.add_get("/", root)
    app.router.add_get("/robots.txt", robots)
