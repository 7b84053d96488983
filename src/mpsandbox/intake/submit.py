"""The intake's handling of one POST (or legacy beacon), without HTTP: read the body,
judge, store, answer.

The aiohttp handler (``eventgate_routes.post_events``) and the fixture commands (``mpsandbox
import`` and ``replay`` into the local pipeline) both call :func:`handle_post`, so what is
judged, what is stored and what is answered never depend on how a request arrived. HTTP
only adds reading the body off the socket and writing the answer back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from multidict import CIMultiDict
from yarl import URL

from mpsandbox import jsonio, legacy
from mpsandbox.intake import protocol
from mpsandbox.intake.chaos_step import ChaosTurn
from mpsandbox.pipeline import RequestContext
from mpsandbox.records import EventRecord, RequestRecord
from mpsandbox.redaction import redact_headers
from mpsandbox.sandbox import Sandbox
from mpsandbox.slicing import map_in_slices
from mpsandbox.store import BacklogFull, StoreError

#: How much of a refused body is kept: enough to see what it was, not enough to hurt.
REFUSED_BODY_KEEP = 64 * 1024


@dataclass(slots=True)
class Incoming:
    """One POST as the intake received it.

    ``headers`` must look names up case-insensitively (aiohttp's headers, or a
    ``CIMultiDict``: see :func:`incoming`); ``raw_headers`` are stored as they came.
    ``too_large`` is the body reader's verdict (see :func:`exceeds_limit`); ``uri`` is the
    path and query as the client wrote them, echoed in problem documents.
    """

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    raw_headers: list[tuple[str, str]]
    body: bytes
    too_large: bool
    received_at: float
    request_id: str
    uri: str
    remote: str | None = None


@dataclass(slots=True)
class Handled:
    """What the intake answers (status, reason phrase, JSON body or None, extra headers)
    and what it judged: the request record and its events as stored (or refused)."""

    status: int
    reason: str
    body: Any
    record: RequestRecord
    events: list[EventRecord] = field(default_factory=list)
    headers: dict[str, str] | None = None
    #: Chaos dropped the request: nothing is answered, the connection is closed.
    dropped: bool = False


def exceeds_limit(body: bytes, limit: int) -> bool:
    """The HTTP body reader's size verdict (see ``eventgate_routes._read_body``): more than
    ``limit`` bytes as sent is too large, compressed or not, since a compressed body larger
    than the limit inflates to more than the limit too."""
    return len(body) > limit


def incoming(
    *,
    method: str,
    path: str,
    query: str,
    headers: list[tuple[str, str]],
    body: bytes,
    received_at: float,
    request_id: str | None,
    limit: int,
    remote: str | None = None,
) -> Incoming:
    """An :class:`Incoming` for a request that did not come over HTTP (a fixture): the
    request id is the client's ``X-Request-ID`` when it sent one, as over HTTP."""
    from mpsandbox.fillins import new_uuid

    lookup = CIMultiDict(headers)
    rid = request_id or lookup.get("x-request-id") or new_uuid()
    uri = f"{path}?{query}" if query else path
    return Incoming(
        method=method,
        path=path,
        query=query,
        headers=lookup,
        raw_headers=list(headers),
        body=body,
        too_large=exceeds_limit(body, limit),
        received_at=received_at,
        request_id=rid,
        uri=uri,
        remote=remote,
    )


def request_record(req: Incoming, keep_secrets: bool = False) -> RequestRecord:
    """The request as stored: secret header values are redacted unless ``keep_secrets``."""
    return RequestRecord(
        received_at=req.received_at,
        method=req.method,
        path=req.path,
        query=req.query,
        headers=redact_headers(req.raw_headers, keep_secrets),
        body=req.body,
        remote=req.remote,
        request_id=req.request_id,
    )


def context(req: Incoming) -> RequestContext:
    # The fill-ins look headers up case-insensitively.
    return RequestContext(
        received_at=req.received_at,
        request_id=req.request_id,
        headers=req.headers,
        peer=req.remote,
    )


def hasty_value(query: str) -> str | None:
    """``?hasty=`` as aiohttp reads it (the first value; yarl parses both)."""
    if not query:
        return None
    return URL.build(query_string=query).query.get("hasty")


async def handle_post(
    sandbox: Sandbox, req: Incoming, *, wait: bool = False, chaos: ChaosTurn | None = None
) -> Handled:
    """Judge and store one POST exactly as EventGate's route does, and say what to answer.

    ``wait``: a hasty request (``?hasty=...``) is answered 202 before its events are
    committed over HTTP; with ``wait`` the call returns only once they are (the answer is
    the same), which is what an import wants. ``chaos``: what chaos does to this request,
    applied as a step of this one path (chaos_step.py); the caller counts it, waits its
    latency and closes the connection of a dropped request."""
    limit = sandbox.settings.max_body
    record = request_record(req, sandbox.settings.keep_secrets)
    uri = req.uri
    if chaos is not None:
        chaos.mark(record)
    problem = sandbox.store_problem()
    if problem is not None:  # before judging: the rules must not remember what is refused
        sandbox.write_failures += 1
        return store_failed(record, problem)

    if chaos is not None and chaos.drops:
        chaos.drop_note(record, req.headers, req.body, req.too_large, limit, REFUSED_BODY_KEEP)
        with contextlib.suppress(StoreError, BacklogFull):  # dropped either way
            await sandbox.store(record, [])
        return Handled(0, "dropped by chaos", None, record, dropped=True)
    if req.too_large:
        if chaos is not None:
            chaos.not_applied(record)
        record.body = req.body[:REFUSED_BODY_KEEP]
        record.note = f"body over the {limit}-byte limit; first {REFUSED_BODY_KEEP} bytes kept"
        err = protocol.BodyError("PayloadTooLargeError", "request entity too large")
        return await answer_problem(sandbox, record, err, uri)
    async with sandbox.judging_turn(len(req.body)) as sliced:
        try:
            body, _ = protocol.read_body(
                req.headers.get("content-type"),
                req.headers.get("content-encoding"),
                req.body,
                limit,
            )
        except protocol.BodyError as err:
            if chaos is not None:
                chaos.not_applied(record)
            return await answer_problem(sandbox, record, err, uri)

        if protocol.is_empty_body(body):
            if chaos is not None:
                chaos.not_applied(record)
            return await answer_and_store(sandbox, record, 400, protocol.EMPTY_REASON, None, [])

        events = protocol.as_events(body)
        record.event_count = len(events)
        if chaos is not None and (injected := chaos.injected_answer(record, events)):
            status, reason, answer_body, headers = injected
            return await answer_and_store(sandbox, record, status, reason, answer_body, [], headers)
        if not sandbox.reserve(len(events)):
            return refuse_backlog(sandbox, record)
        failed_at = chaos.failed_at(len(events)) if chaos is not None else frozenset()
        judged = await sandbox.judge(events, context(req), sliced=sliced, skip=failed_at)
        hasty = protocol.is_hasty(hasty_value(req.query))
        answered = judged
        if chaos is not None:
            answered = chaos.answered(record, events, judged, failed_at, hasty)
        if not hasty:
            items = None
            if sliced:  # the answer of a big batch is built a slice at a time too
                items = await map_in_slices(
                    len(answered), lambda start, end: protocol.failure_items(answered[start:end])
                )
            answer = protocol.answer_for(answered, items)

    if hasty:
        record.hasty = True
        record.status, record.reason = 202, protocol.hasty_reason(len(events))
        try:
            if wait:
                await sandbox.store(record, judged)
            else:
                sandbox.store_later(record, judged)
        except StoreError as exc:
            return store_failed(record, exc)
        except BacklogFull:  # the backlog filled between reserve and submit
            return refuse_backlog(sandbox, record)
        return Handled(202, record.reason, None, record, judged)

    return await answer_and_store(
        sandbox, record, answer.status, answer.reason, answer.body, judged
    )


async def handle_beacon(sandbox: Sandbox, req: Incoming) -> Handled:
    """Record one beacon and its decoded capsule, and say what to answer (always 204,
    unless the store cannot take it: the sandbox never acknowledges what it did not keep)."""
    record = request_record(req)
    judged: list[EventRecord] = []
    notes = []
    if req.too_large:
        record.body = req.body[:REFUSED_BODY_KEEP]
        notes.append(f"body over the size limit; first {REFUSED_BODY_KEEP} bytes kept")
    elif req.body:
        notes.append(
            f"the {len(req.body)}-byte body was ignored: EventLogging sends beacons with an "
            "empty body, the capsule in the query string"
        )
    try:
        capsule = legacy.decode_query(req.query)
    except legacy.NotACapsule as exc:
        record.error = f"not a legacy EventLogging capsule: {exc}"
    else:
        record.event_count = 1
        if not sandbox.reserve(1):
            return refuse_backlog(sandbox, record)
        judged.append(legacy.judge_capsule(sandbox.pipeline, capsule, context(req)))
    if notes:
        record.note = "; ".join(notes)
    return await answer_and_store(
        sandbox, record, legacy.BEACON_STATUS, legacy.BEACON_REASON, None, judged
    )


def refuse_backlog(sandbox: Sandbox, record: RequestRecord) -> Handled:
    record.status, record.reason = 503, "Service Unavailable"
    record.body = record.body[:REFUSED_BODY_KEEP]
    record.note = "refused: the store's write backlog is full; the client should retry"
    sandbox.note_refused(record)
    return unavailable(
        record,
        1,
        "backlog_full",
        "mpsandbox is behind on writes",
        "The store's write backlog is full; nothing from this request was kept except this "
        "note. Retry after a second.",
    )


async def answer_problem(
    sandbox: Sandbox, record: RequestRecord, err: protocol.BodyError, uri: str
) -> Handled:
    body = protocol.problem(err.status, err.title, err.detail, record.method, uri)
    record.error = f"{err.title}: {err.detail}"
    reason = "Internal Server Error" if err.status == 500 else err.title
    return await answer_and_store(sandbox, record, err.status, reason, body, [])


async def answer_and_store(
    sandbox: Sandbox,
    record: RequestRecord,
    status: int,
    reason: str,
    body: Any,
    judged: list[EventRecord],
    headers: dict[str, str] | None = None,
) -> Handled:
    record.status, record.reason = status, reason
    record.response_body = jsonio.dumps(body) if body is not None else None
    try:
        await sandbox.store(record, judged)
    except StoreError as exc:
        return store_failed(record, exc)
    except BacklogFull:
        return refuse_backlog(sandbox, record)
    return Handled(status, reason, body, record, judged, headers)


def store_failed(record: RequestRecord, exc: StoreError) -> Handled:
    """Never acknowledge what was not stored: the client sees a retryable failure."""
    return unavailable(record, 5, "store_error", "mpsandbox could not store this request", str(exc))


def unavailable(record: RequestRecord, retry_after: int, kind: str, title: str, detail: str):
    """A 503 problem document; EventGate never sends one, only the sandbox's store can."""
    return Handled(
        503,
        "Service Unavailable",
        {"status": 503, "type": kind, "title": title, "detail": detail},
        record,
        [],
        headers={"Retry-After": str(retry_after)},
    )
