"""What a store says through its reader, as plain JSON: the yardstick for format changes.

A migration that changes how events, requests or findings are stored must leave everything
a face can read unchanged. ``store_snapshot`` reads a database through ``StoreReader`` (every
event, every request, the error groups, the sessions, the counts) and keeps only what the
reader means to say, not the columns that hold it; tests compare a migrated copy of
``tests/data/store/release-0008.db`` with the snapshot taken by the release that wrote it.

    .venv/bin/python -m tests.store_snapshot tests/data/store/release-0008.db > expected.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from mpsandbox.store import StoreReader

#: What an event means; every other key of get_event is a storage detail.
EVENT_KEYS = (
    "id", "request_id", "idx", "received_at", "verdict", "stream", "schema_uri",
    "schema_title", "schema_version", "action", "session_id", "pageview_id", "meta_id", "dt",
    "event", "accepted", "fills", "errors", "errors_count", "errors_text", "message",
    "explanation", "findings", "platform", "siblings",
)  # fmt: skip
REQUEST_KEYS = (
    "id", "received_at", "method", "path", "query", "headers", "body", "body_base64",
    "body_size", "remote", "request_id", "status", "reason", "response_body",
    "response_body_base64", "response_body_size", "hasty", "event_count", "stored_events",
    "error", "note", "chaos",
)  # fmt: skip


def store_snapshot(path: str | Path) -> dict[str, Any]:
    with StoreReader(path) as reader:
        events = []
        for summary in reader.list_events(limit=100_000, newest_first=False):
            event = reader.get_event(summary["id"])
            events.append({k: event.get(k) for k in EVENT_KEYS})
        requests = [
            {k: reader.get_request(r["id"]).get(k) for k in REQUEST_KEYS}
            for r in reader.list_requests(limit=100_000)
        ]
        return {
            "events": events,
            "requests": requests,
            "error_groups": reader.list_error_groups(limit=10_000),
            "sessions": reader.list_sessions(limit=10_000),
            "stats": {
                k: v for k, v in reader.stats().items() if k in ("events", "requests", "by_verdict")
            },
        }


if __name__ == "__main__":
    json.dump(store_snapshot(sys.argv[1]), sys.stdout, indent=1, sort_keys=True, ensure_ascii=False)
