"""The fields Wikimedia's production EventGate writes into an event before validating it.

Each is written only when the schema declares the field and the event lacks it, so an event
that already carries a value keeps it. Generic EventGate (the devserver) writes none of them;
`fill_ins=False` reproduces that.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

HEADER_LIMIT = 400


def iso_ms(epoch: float) -> str:
    """ISO-8601 UTC with milliseconds and `Z`, as JavaScript's Date.toISOString() writes it."""
    whole = int(epoch)
    ms = int(round((epoch - whole) * 1000))
    if ms == 1000:
        whole, ms = whole + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{ms:03d}Z"


def client_ip(headers: Mapping[str, str], peer: str | None) -> str | None:
    ip = headers.get("x-client-ip")
    if ip:
        return ip.strip()[:HEADER_LIMIT]
    xff = headers.get("x-forwarded-for")
    if xff:
        return xff.split(",")[0].strip()[:HEADER_LIMIT]
    return peer


def plan_fills(
    compiled: Any,
    event: dict[str, Any],
    *,
    title: str | None,
    received_at: float,
    request_id: str,
    headers: Mapping[str, str],
    peer: str | None,
) -> list[tuple[tuple[str, ...], Any]]:
    """The (path, value) pairs production would write into this event, in order."""
    fills: list[tuple[tuple[str, ...], Any]] = []

    def want(path: tuple[str, ...]) -> bool:
        if not compiled.declares(path):
            return False
        node: Any = event
        for part in path[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
            if node is None:
                return True
            if not isinstance(node, dict):
                return False
        return path[-1] not in node

    if want(("meta", "id")):
        fills.append((("meta", "id"), str(uuid.uuid4())))
    if want(("meta", "dt")):
        fills.append((("meta", "dt"), iso_ms(received_at)))
    if want(("meta", "request_id")):
        fills.append((("meta", "request_id"), request_id))
    ua = headers.get("user-agent")
    if ua is not None and want(("http", "request_headers", "user-agent")):
        fills.append((("http", "request_headers", "user-agent"), ua[:HEADER_LIMIT]))
    elif ua is not None and compiled.declares(("http", "request_headers")):
        rh = event.get("http", {}).get("request_headers") if isinstance(event.get("http"), dict) else None
        if rh is None or (isinstance(rh, dict) and "user-agent" not in rh):
            fills.append((("http", "request_headers", "user-agent"), ua[:HEADER_LIMIT]))
    ip = client_ip(headers, peer)
    if ip and want(("http", "client_ip")):
        fills.append((("http", "client_ip"), ip))
    if title and title.startswith("analytics/legacy") and want(("dt",)):
        fills.append((("dt",), iso_ms(received_at)))
    return fills


def write_fills(event: dict[str, Any], fills: list[tuple[tuple[str, ...], Any]]) -> None:
    for path, value in fills:
        node = event
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node.setdefault(path[-1], value)
