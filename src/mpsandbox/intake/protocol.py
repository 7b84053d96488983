"""EventGate's wire protocol, as pure functions: how a body is read and how a batch is answered.

Kept apart from aiohttp so replay and `validate` can answer exactly as the HTTP intake does.
Every wording here was read off a real EventGate 1.8.4 (see shared/wm/eventgate).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

from mpsandbox import jsonio
from mpsandbox.intake.v8_messages import json_parse_error
from mpsandbox.records import ERROR, INVALID, EventRecord

EMPTY_REASON = "Request body was empty. Must provide JSON encoded events."
PARSED_TYPES = ("application/json", "text/plain", "application/reports+json")
DEFAULT_MAX_BODY = 4 * 1024 * 1024

CORS_HEADERS = {
    "access-control-allow-origin": "*",
    "access-control-allow-headers": "accept, x-requested-with, content-type",
    "access-control-expose-headers": "etag",
    "access-control-allow-methods": "post",
}


class BodyError(Exception):
    """A body EventGate's body parser refuses; answered as a 500 problem document."""

    def __init__(self, title: str, detail: str, status: int = 500):
        super().__init__(detail)
        self.title = title
        self.detail = detail
        self.status = status


def problem(status: int, title: str, detail: str, method: str, uri: str) -> dict[str, Any]:
    return {
        "status": status,
        "type": "internal_error",
        "title": title,
        "detail": detail,
        "method": method,
        "uri": uri,
    }


def media_type(content_type: str | None) -> tuple[str, dict[str, str]]:
    if not content_type:
        return "", {}
    main, *params = content_type.split(";")
    parsed = {}
    for p in params:
        if "=" in p:
            k, v = p.split("=", 1)
            parsed[k.strip().lower()] = v.strip().strip('"')
    return main.strip().lower(), parsed


def is_hasty(query_value: str | None) -> bool:
    """`?hasty=<anything non-empty>` (even `false`) answers early; a bare `?hasty` does not."""
    return bool(query_value)


def inflate(raw: bytes, encoding: str, limit: int) -> bytes:
    """Inflate with a hard output cap, so a gzip bomb costs at most `limit` bytes of memory."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        if len(raw) > limit:
            raise BodyError("PayloadTooLargeError", "request entity too large")
        return raw
    if encoding == "gzip":
        wbits = 16 + zlib.MAX_WBITS
    elif encoding == "deflate":
        wbits = zlib.MAX_WBITS
    else:
        raise BodyError(
            "UnsupportedMediaTypeError", f'unsupported content encoding "{encoding}"', 500
        )
    decomp = zlib.decompressobj(wbits)
    try:
        out = decomp.decompress(raw, limit + 1)
        if len(out) > limit or decomp.unconsumed_tail:
            raise BodyError("PayloadTooLargeError", "request entity too large")
        out += decomp.flush()
    except zlib.error as exc:
        raise BodyError("Error", str(exc).split(": ", 1)[-1] or "invalid compressed body") from None
    if len(out) > limit:
        raise BodyError("PayloadTooLargeError", "request entity too large")
    return out


def read_body(
    content_type: str | None, content_encoding: str | None, raw: bytes, limit: int
) -> tuple[Any, bytes | None]:
    """Turn raw request bytes into EventGate's idea of the body, and the JSON bytes parsed.

    The body is `{}` for anything the body parser skips (other content types, no body), which
    EventGate then answers as empty; BodyError is raised for what it rejects. The bytes are
    None when nothing was parsed (fixtures keep them as the JSON that was read)."""
    mtype, params = media_type(content_type)
    if mtype not in PARSED_TYPES:
        return {}, None
    charset = params.get("charset", "utf-8").lower()
    if not charset.startswith("utf-"):
        raise BodyError("UnsupportedMediaTypeError", f'unsupported charset "{charset.upper()}"')
    data = inflate(raw, content_encoding or "", limit)
    if not data:
        return {}, None
    if charset in ("utf-8", "utf8"):
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
    else:
        try:
            data = data.decode(charset, errors="replace").encode()
        except LookupError:
            raise BodyError(
                "UnsupportedMediaTypeError", f'unsupported charset "{charset.upper()}"'
            ) from None
    first = data.lstrip(b" \t\n\r")[:1]
    if not first:
        # whitespace only: body-parser's strict check finds no first character and
        # substitutes nothing for its placeholder, hence the odd empty quotes.
        raise BodyError("SyntaxError", "Unexpected token '', \"#\" is not valid JSON")
    if first not in (b"{", b"["):
        text = data.decode("utf-8", errors="replace")
        lead = len(text) - len(text.lstrip(" \t\n\r"))
        char = text[lead]
        detail = f"Unexpected token '{char}', \"{text[:lead]}#\" is not valid JSON"
        raise BodyError("SyntaxError", detail)
    try:
        return jsonio.loads(data), data
    except jsonio.TooDeepError as exc:
        raise BodyError("SyntaxError", f"{exc}; mpsandbox does not accept such bodies") from None
    except ValueError:
        text = data.decode("utf-8", errors="replace")
        raise BodyError("SyntaxError", json_parse_error(text) or "Invalid JSON") from None


def is_empty_body(body: Any) -> bool:
    """Lodash's `_.isEmpty`, which is what EventGate checks."""
    return body is None or (isinstance(body, (dict, list, str)) and len(body) == 0)


def as_events(body: Any) -> list[Any]:
    return body if isinstance(body, list) else [body]


@dataclass(slots=True)
class Answer:
    status: int
    reason: str
    body: dict[str, Any] | None


def _failure_item(event: EventRecord) -> dict[str, Any]:
    if event.verdict == INVALID:
        context: dict[str, Any] = {"errors": event.errors, "errorsText": event.errors_text or ""}
    else:
        context = {"message": event.message or ""}
    # EventGate validates in place, so the echoed event carries its fill-ins and defaults.
    return {"status": event.verdict, "event": event.accepted, "context": context}


def failure_items(events: list[EventRecord]) -> list[dict[str, Any]]:
    """The answer's entries for the invalid and errored ``events``, in their order (a big
    batch builds them a slice at a time and hands them to ``answer_for``)."""
    return [_failure_item(e) for e in events if e.verdict in (INVALID, ERROR)]


def answer_for(events: list[EventRecord], items: list[dict[str, Any]] | None = None) -> Answer:
    """EventGate's status, reason phrase and body for a processed batch (``items``: its
    ``failure_items``, when already built)."""
    n = len(events)
    if items is None:
        items = failure_items(events)
    invalid = [item for item in items if item["status"] == INVALID]
    errored = [item for item in items if item["status"] == ERROR]
    ok = n - len(invalid) - len(errored)
    failed = len(invalid) + len(errored)
    if failed == 0:
        return Answer(201, f"All {ok} out of {n} events were accepted.", None)
    body = {"invalid": invalid, "error": errored}
    if ok > 0:
        reason = (
            f"{ok} out of {n} events were accepted, but {failed} failed "
            f"({len(invalid)} invalid and {len(errored)} errored)."
        )
        return Answer(207, reason, body)
    if not errored:
        return Answer(
            400,
            f"{len(invalid)} out of {n} events were invalid and not accepted.",
            {"invalid": body["invalid"]},
        )
    reason = (
        f"{failed} out of {n} events had failures and were not accepted. "
        f"({len(invalid)} invalid and {len(errored)} errored)."
    )
    return Answer(500, reason, body)


def hasty_reason(n: int) -> str:
    return f"{n} events hastily received."
