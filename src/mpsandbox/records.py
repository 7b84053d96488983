"""The data that flows from the pipeline into the store.

Kept free of any I/O so that the pipeline, the store and every face (HTTP, CLI, TUI) agree
on one vocabulary without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

VALID = "valid"
INVALID = "invalid"
ERROR = "error"
#: A legacy EventLogging beacon: its revision-numbered schema lives on meta.wikimedia.org,
#: outside every schema repository, so it is recorded and shown but never validated.
LEGACY = "legacy"
#: Every verdict, in the order faces show them.
VERDICTS = (VALID, INVALID, ERROR, LEGACY)


@dataclass(slots=True)
class RequestRecord:
    """One HTTP request as received, and what the intake answered.

    `body` is the raw bytes exactly as they came off the wire (still compressed when the
    client compressed them), so a bug report can replay the request byte for byte.
    """

    received_at: float
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    remote: str | None = None
    request_id: str | None = None
    status: int | None = None
    reason: str | None = None
    response_body: bytes | None = None
    hasty: bool = False
    event_count: int = 0
    #: Why the request produced no events (parse error, size limit, backlog...), if so.
    error: str | None = None
    #: Free-form notes such as "answered 503: writer backlog full".
    note: str | None = None
    #: The chaos applied to this request (chaos.Decision.record), None when none was.
    chaos: dict[str, Any] | None = None


@dataclass(slots=True)
class EventRecord:
    """One event: as received, how it was judged, and why.

    The event "as accepted" is `received` with `fills` applied; storing the fills instead of a
    second copy keeps the database small while keeping both forms exact.
    """

    index: int
    received: Any
    verdict: str
    received_at: float
    schema_uri: str | None = None
    schema_title: str | None = None
    schema_version: str | None = None
    stream: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    errors_text: str | None = None
    #: For verdict "error": EventGate's context message.
    message: str | None = None
    #: Fields the intake wrote into the event: dotted path -> {"value": ..., "by": "fill"|"default"}.
    fills: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Structured explanation: where the schema came from, what was tried, hints.
    explanation: dict[str, Any] = field(default_factory=dict)
    #: What the platform rules found: (kind, stored facts) pairs as the store keeps them, or
    #: whole findings (a copy from a reader); platform.findings.render_all shows either.
    findings: list[Any] = field(default_factory=list)
    #: Findings of earlier events this one proved wrong ({"kind", "meta_id", ...} each),
    #: e.g. a funnel gap it filled by arriving late; the store removes them.
    retracts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def accepted(self) -> Any:
        """The event as it was validated (and as EventGate would have produced it)."""
        return apply_fills(self.received, self.fills)


def field_at(event: Any, *path: str) -> Any:
    """``event[path[0]][path[1]]...``, or None as soon as a step is missing or not an
    object (events are whatever clients sent)."""
    node = event
    for part in path:
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def split_path(dotted: str) -> list[str]:
    """Split a fill path like ``http.request_headers.user-agent``.

    Fill paths are built by the intake from known field names, none of which contain a dot
    except as separator, so a plain split is exact. Keys are escaped as ``\\.`` when needed.
    """
    parts: list[str] = []
    current = []
    escaped = False
    for ch in dotted:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ".":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


_JOINED: dict[tuple[str, ...], str] = {}


def join_path(parts: list[str] | tuple[str, ...]) -> str:
    """Dotted form of a path, escaping dots and backslashes inside keys; memoised because
    the intake joins the same few fill paths for every event."""
    key = tuple(parts)
    joined = _JOINED.get(key)
    if joined is None:
        joined = ".".join(p.replace("\\", "\\\\").replace(".", "\\.") for p in key)
        if len(_JOINED) < 10_000:
            _JOINED[key] = joined
    return joined


def apply_fills(event: Any, fills: dict[str, dict[str, Any]]) -> Any:
    """Return a copy of ``event`` with every fill written in (fills never overwrite)."""
    import copy

    if not fills or not isinstance(event, dict):
        return event
    out = copy.deepcopy(event)
    for dotted, fill in fills.items():
        target = out
        parts = split_path(dotted)
        for part in parts[:-1]:
            nxt = target.get(part)
            if not isinstance(nxt, dict):
                nxt = {}
                target[part] = nxt
            target = nxt
        target.setdefault(parts[-1], copy.deepcopy(fill["value"]))
    return out
