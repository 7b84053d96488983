"""Legacy EventLogging beacons: decode the capsule from the query string, and judge it
the only ways it can be judged.

``mw.eventLog.logEvent`` with a revision number (in the browser) and
``EventLogging::logEvent`` (in PHP) send ``$wgEventLoggingBaseUri?`` +
``encodeURIComponent(JSON.stringify(capsule)) + ";"`` with an empty body, where the
capsule is ``{event: {...}, schema: NAME, revision: N, webHost, wiki, ...}``. Production
answers such a beacon ``204 No Content`` at the edge and processes it later, so a client
never learns whether its event was any good.

A revision-numbered schema lives on meta.wikimedia.org (``Schema:NAME``, that revision),
in none of the schema repositories, so the capsule itself is never validated: its verdict
is ``legacy``. Most such schemas were migrated to Event Platform as
``analytics/legacy/<lowercased name>``; when the schema repositories hold that form, the
capsule is converted as EventLogging's ``EventLoggingLegacyConverter`` converts it
(``$schema``, ``meta.stream = eventlogging_NAME``, ``dt`` and ``client_dt`` at receive
time, ``uuid``, ``recvFrom``, the user agent) and judged against it, and the explanation
says how that went. Pure: no I/O beyond the registry's schema files.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from mpsandbox.fillins import iso_ms, new_uuid
from mpsandbox.pipeline import Pipeline, RequestContext
from mpsandbox.records import LEGACY, EventRecord

#: What a URL's query may carry unescaped (RFC 3986), and ``%``. ``encodeURIComponent``
#: escapes more (``:``, ``,``, ``/``...), but clients and proxies may unescape those again
#: (they mean the same in a query), so only what no URL may carry betrays raw JSON.
_URL_ENCODED = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
#: What production's edge answers to every beacon, good or bad.
BEACON_STATUS, BEACON_REASON = 204, "No Content"
#: Production's caches answer every request under this prefix as a beacon.
BEACON_PREFIX = "/beacon/"
#: Where migrated legacy schemas live in the schema repositories.
MIGRATED_PREFIX = "/analytics/legacy/"
#: How many of the migrated form's errors the explanation keeps.
MAX_MIGRATED_ERRORS = 20


class NotACapsule(ValueError):
    """The query string is not an EventLogging capsule; ``str()`` says why, for a person."""


def is_beacon_path(path: str) -> bool:
    """Whether production would take a request to ``path`` for a beacon."""
    return path.startswith(BEACON_PREFIX)


def stream_name(schema: str) -> str:
    """The Event Platform stream a legacy schema's events go to (EventLogging's rule)."""
    return "eventlogging_" + schema


def migrated_uri(schema: str) -> str:
    """The migrated schema's URI at its latest version in the schema repositories."""
    return f"{MIGRATED_PREFIX}{schema.lower()}/latest"


def meta_schema_url(schema: str, revision: Any) -> str:
    """Where a revision-numbered schema lives."""
    url = f"https://meta.wikimedia.org/w/index.php?title=Schema:{schema}"
    if isinstance(revision, int) and not isinstance(revision, bool):
        url += f"&oldid={revision}"
    return url


def beacon_query(capsule: dict[str, Any]) -> str:
    """The query string ``mw.eventLog.logEvent`` sends for a capsule (the inverse of
    :func:`decode_query`): ``encodeURIComponent(JSON.stringify(capsule)) + ";"``."""
    text = json.dumps(capsule, separators=(",", ":"), ensure_ascii=False)
    return quote(text, safe="-_.!~*'()") + ";"


def decode_query(raw_query: str) -> dict[str, Any]:
    """The capsule in a beacon's query string, exactly as the client sent it (still
    percent-encoded); raises :class:`NotACapsule` with the reason otherwise."""
    if not raw_query:
        raise NotACapsule(
            "no query string: a legacy beacon carries its event there, as "
            "encodeURIComponent(JSON.stringify(capsule)) + ';'"
        )
    if not raw_query.endswith(";"):
        raise NotACapsule(
            "the query string does not end with ';': EventLogging ends every beacon with one, "
            "so this one was cut short (browsers and proxies truncate long URLs; EventLogging "
            "refuses beacons over 2,000 characters) or was not made by EventLogging"
        )
    encoded = raw_query[:-1]
    if not _URL_ENCODED.fullmatch(encoded):
        at = next(i for i, ch in enumerate(encoded) if not _URL_ENCODED.fullmatch(ch))
        raise NotACapsule(
            f"not URL-encoded: {encoded[at]!r} at character {at + 1} cannot appear unescaped "
            "in a URL (EventLogging sends encodeURIComponent(JSON))"
        )
    bad = _BAD_ESCAPE.search(encoded)
    if bad:
        raise NotACapsule(
            f"not URL-encoded: '%' at character {bad.start() + 1} does not start a %XX escape"
        )
    try:
        text = unquote_to_bytes(encoded).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotACapsule(
            f"not URL-encoded UTF-8: the escapes decode to bytes that are not UTF-8 ({exc.reason})"
        ) from None
    try:
        capsule = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string"):
            raise NotACapsule(
                f"truncated JSON: the text ends after {len(text)} characters, before the "
                f"capsule closes ({exc.msg})"
            ) from None
        raise NotACapsule(
            f"not JSON: {exc.msg} at character {exc.pos + 1} of the decoded query"
        ) from None
    except RecursionError:
        raise NotACapsule("not a capsule: JSON nested too deeply") from None
    if not isinstance(capsule, dict):
        raise NotACapsule(f"not a capsule: the JSON is a {_json_type(capsule)}, not an object")
    if not isinstance(capsule.get("schema"), str) or not capsule["schema"]:
        raise NotACapsule("not a capsule: it has no 'schema' name")
    if not isinstance(capsule.get("event"), dict):
        raise NotACapsule("not a capsule: it has no 'event' object")
    return capsule


def _json_type(value: Any) -> str:
    return {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


def migrate(capsule: dict[str, Any], ctx: RequestContext, schema_uri: str) -> dict[str, Any]:
    """The capsule as EventLogging's legacy converter turns it into an Event Platform event
    (the capsule itself is left as received)."""
    event = json.loads(json.dumps(capsule))
    event["$schema"] = schema_uri
    event["meta"] = {"stream": stream_name(capsule["schema"])}
    event.setdefault("uuid", new_uuid())
    event["dt"] = event["client_dt"] = iso_ms(ctx.received_at)
    if ctx.peer:
        event["recvFrom"] = ctx.peer
    user_agent = ctx.headers.get("user-agent")
    if user_agent is not None:
        event["http"] = {"request_headers": {"user-agent": user_agent}}
    return event


def judge_capsule(
    pipeline: Pipeline, capsule: dict[str, Any], ctx: RequestContext, index: int = 0
) -> EventRecord:
    """A decoded capsule as an event: verdict ``legacy``, and the judgement of its migrated
    form, when the schema repositories hold one, in the explanation."""
    name = capsule["schema"]
    revision = capsule.get("revision")
    where = meta_schema_url(name, revision)
    record = EventRecord(
        index=index,
        received=capsule,
        verdict=LEGACY,
        received_at=ctx.received_at,
        schema_uri=where,
        schema_title=name,
        schema_version=None if revision is None else str(revision),
        stream=stream_name(name),
    )
    legacy = {
        "schema": name,
        "revision": revision,
        "schema_location": where,
        "stream": record.stream,
    }
    uri = migrated_uri(name)
    resolution = pipeline.registry.resolve(uri)
    if resolution.compiled is None:
        migrated: dict[str, Any] = {
            "schema_uri": uri,
            "found": False,
            "reason": resolution.message or "not found",
        }
        judged = f"The schema repositories hold no migrated form ({uri}) to judge it against."
    else:
        versioned = f"{MIGRATED_PREFIX}{name.lower()}/{resolution.version}"
        form = pipeline.rejudge(migrate(capsule, ctx, versioned), ctx)
        migrated = {
            "schema_uri": versioned,
            "found": True,
            "verdict": form.verdict,
            "errors_text": form.errors_text,
            "errors": form.errors[:MAX_MIGRATED_ERRORS],
            "message": form.message,
        }
        if form.verdict == "valid":
            judged = f"Converted to its migrated form, it is valid against {versioned}."
        elif form.verdict == "invalid":
            judged = (
                f"Converted to its migrated form, it is invalid against {versioned}: "
                f"{form.errors_text}"
            )
        else:
            judged = f"Converted to its migrated form, it fails: {form.message}"
        migrated["summary"] = judged
    record.explanation = {
        "reason": (
            f"A legacy EventLogging beacon: schema {name} revision {revision} lives on "
            "meta.wikimedia.org, in no schema repository, so the event is recorded but not "
            f"validated. {judged}"
        ),
        "schema_location": where,
        "schema_source": "meta.wikimedia.org (revision-numbered EventLogging schema)",
        "legacy": legacy,
        "migrated": migrated,
        "hints": [
            f"Production answers every beacon 204 and drops what it cannot process; to "
            f"validate this event, send it to Event Platform as {stream_name(name)} with "
            f"$schema {MIGRATED_PREFIX}{name.lower()}/<version> "
            f"($wgEventLoggingSchemas['{name}'] = that URI)."
        ],
    }
    return record
