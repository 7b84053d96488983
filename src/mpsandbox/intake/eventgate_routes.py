"""EventGate's routes: `POST /v1/events` (and extra intake paths), test events, info, spec.

Answers match a real EventGate 1.8.4 status for status, reason phrase and body. What EventGate
does not do, the sandbox adds without changing those answers: every request is stored before
it is acknowledged, and an overfull writer answers 503 instead of growing memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiohttp import web

from mpsandbox import jsonio
from mpsandbox.chaos import DROP, INJECTED_MESSAGE, Chaos, Decision
from mpsandbox.fillins import new_uuid
from mpsandbox.intake import protocol, submit
from mpsandbox.intake.exposure import route_key
from mpsandbox.pipeline import RequestContext
from mpsandbox.records import ERROR, EventRecord, RequestRecord
from mpsandbox.redaction import redact_headers
from mpsandbox.sandbox import Sandbox
from mpsandbox.store import BacklogFull, StoreError

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
    """Read the body off the socket (at most the limit and a byte), then hand the request
    to the transport-free core (submit.handle_post) that imports and replays use too."""
    sandbox = request.app[SANDBOX_KEY]
    chaos = sandbox.chaos  # the only cost of chaos while it is off
    if chaos is not None:
        decision = chaos.decide()
        if decision is not None:
            return await _post_with_chaos(request, sandbox, chaos, decision)
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
    return _respond(await submit.handle_post(sandbox, req))


def _respond(handled: submit.Handled) -> web.Response:
    return _json_response(handled.status, handled.reason, handled.body, handled.headers)


# --- chaos (see chaos.py for what each injection means) ---------------------------------


async def _post_with_chaos(
    request: web.Request, sandbox: Sandbox, chaos: Chaos, decision: Decision
) -> web.StreamResponse:
    """post_events with chaos applied: the request is recorded with what was done to it,
    the answer waits the decided latency, and a drop closes the connection unanswered."""
    now = time.time()
    request_id = _request_id(request)
    limit = sandbox.settings.max_body
    raw, too_large = await _read_body(request, limit)
    record = _request_record(request, raw, now, request_id)
    record.chaos = decision.record()
    if decision.injected == DROP:
        await _drop(sandbox, record, request, raw, too_large)
        response = None
    else:
        response = await _chaotic_answer(request, sandbox, chaos, decision, record, raw, too_large)
    chaos.note(record.chaos)
    if decision.latency_ms:
        await asyncio.sleep(decision.latency_ms / 1000)
    if response is None:
        transport = request.transport
        if transport is not None:
            transport.close()  # no status line, no headers: the client sees a disconnect
        return web.Response(status=204)  # never sent
    return response


async def _drop(
    sandbox: Sandbox, record: RequestRecord, request: web.Request, raw: bytes, too_large: bool
) -> None:
    """Record a request whose connection chaos closes without an answer."""
    if too_large:
        record.body = raw[: submit.REFUSED_BODY_KEEP]
    else:
        with contextlib.suppress(protocol.BodyError, ValueError):
            body, _ = protocol.read_body(
                request.headers.get("content-type"),
                request.headers.get("content-encoding"),
                raw,
                sandbox.settings.max_body,
            )
            if not protocol.is_empty_body(body):
                record.event_count = len(protocol.as_events(body))
    record.note = "chaos: the connection was closed without an answer; no event was stored"
    with contextlib.suppress(StoreError, BacklogFull):  # dropped either way
        await sandbox.store(record, [])


async def _chaotic_answer(
    request: web.Request,
    sandbox: Sandbox,
    chaos: Chaos,
    decision: Decision,
    record: RequestRecord,
    raw: bytes,
    too_large: bool,
) -> web.StreamResponse:
    """The answer under an injected 500, 503 or 207 (or latency alone). A body without
    events is answered as always: an injected status needs events to fail."""
    uri = request.path_qs
    limit = sandbox.settings.max_body
    if too_large:
        _not_applied(record, decision)
        record.body = raw[: submit.REFUSED_BODY_KEEP]
        record.note = (
            f"body over the {limit}-byte limit; first {submit.REFUSED_BODY_KEEP} bytes kept"
        )
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
        _not_applied(record, decision)
        return await _answer_problem(sandbox, record, err, uri)
    if protocol.is_empty_body(body):
        _not_applied(record, decision)
        return await _answer_and_store(sandbox, record, 400, protocol.EMPTY_REASON, None, [])

    events = protocol.as_events(body)
    n = record.event_count = len(events)
    now = record.received_at
    if decision.injected == 503:
        record.note = f"chaos: answered 503; none of the {n} events was stored"
        problem = {
            "status": 503,
            "type": "chaos",
            "title": "mpsandbox chaos: injected 503",
            "detail": f"The chaos setting {decision.spec} answered this request 503; none of "
            f"its {n} events was stored. Retry after {decision.retry_after} s.",
        }
        headers = {"Retry-After": str(decision.retry_after)}
        return await _answer_and_store(
            sandbox, record, 503, "Service Unavailable", problem, [], headers
        )
    message = INJECTED_MESSAGE.format(spec=decision.spec)
    if decision.injected == 500:
        # EventGate's answer when every event of a request errored.
        failed = [EventRecord(i, e, ERROR, now, message=message) for i, e in enumerate(events)]
        answer = protocol.answer_for(failed)
        record.note = f"chaos: answered 500; none of the {n} events was stored"
        return await _answer_and_store(
            sandbox, record, answer.status, answer.reason, answer.body, []
        )

    if not sandbox.reserve(n):
        return _refuse_backlog(sandbox, record)
    ctx = _context(request, now, record.request_id or "")
    working = protocol.as_events(jsonio.loads(data)) if data is not None else None
    if working is not None and len(working) != n:
        working = None
    failed_at = set(chaos.choose_failed(n)) if decision.injected == 207 else set()
    judged: list[EventRecord] = []
    answered: list[EventRecord] = []
    for i, event in enumerate(events):
        if i in failed_at:
            # Never judged: the platform rules' memory must not count it as received, so
            # the client's retry of it is no duplicate.
            answered.append(EventRecord(i, event, ERROR, now, message=message))
            continue
        rec = sandbox.pipeline.judge(event, ctx, i, working=None if working is None else working[i])
        judged.append(rec)
        answered.append(rec)
    if failed_at:
        record.chaos = decision.record(failed=sorted(failed_at))
        which = ", ".join(str(i) for i in sorted(failed_at))
        record.note = (
            f"chaos: {len(failed_at)} of {n} events failed by injection and were not stored "
            f"(index {which})"
        )

    if protocol.is_hasty(request.query.get("hasty")):
        record.hasty = True
        record.status, record.reason = 202, protocol.hasty_reason(n)
        if failed_at:
            record.note += "; hasty: answered 202 before processing, so the client never knows"
        try:
            sandbox.store_later(record, judged)
        except StoreError as exc:
            return _store_failed(record, exc)
        except BacklogFull:
            return _refuse_backlog(sandbox, record)
        return web.Response(status=202, reason=record.reason)

    answer = protocol.answer_for(answered)
    return await _answer_and_store(
        sandbox, record, answer.status, answer.reason, answer.body, judged
    )


def _not_applied(record: RequestRecord, decision: Decision) -> None:
    """An injected status needs events; a request without any keeps only the latency."""
    if decision.injected is not None:
        record.chaos = Decision(None, decision.latency_ms, decision.spec).record()
        if not decision.latency_ms:
            record.chaos = None


# --- answers: submit.py's, as HTTP responses (the chaos path builds its own) -------------


def _refuse_backlog(sandbox: Sandbox, record: RequestRecord) -> web.Response:
    return _respond(submit.refuse_backlog(sandbox, record))


async def _answer_problem(
    sandbox: Sandbox, record: RequestRecord, err: protocol.BodyError, uri: str
) -> web.StreamResponse:
    return _respond(await submit.answer_problem(sandbox, record, err, uri))


async def _answer_and_store(
    sandbox: Sandbox,
    record: RequestRecord,
    status: int,
    reason: str,
    body,
    judged,
    headers: dict[str, str] | None = None,
) -> web.StreamResponse:
    return _respond(
        await submit.answer_and_store(sandbox, record, status, reason, body, judged, headers)
    )


def _store_failed(record: RequestRecord, exc: StoreError) -> web.Response:
    return _respond(submit.store_failed(record, exc))


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
