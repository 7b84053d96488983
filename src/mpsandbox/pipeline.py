"""Judge events: find the schema, write the fill-ins and defaults, validate, explain.

Every way in (HTTP intake, `validate` on a file, replay) goes through `Pipeline.judge`, so a
verdict never depends on how an event arrived. Pure CPU work with no I/O except schema files
on a cache miss; storing is the caller's business.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from mpsandbox import jsonio
from mpsandbox.fillins import FillPlan, plan_fills, write_fills
from mpsandbox.records import ERROR, INVALID, VALID, EventRecord, join_path
from mpsandbox.schemas.registry import SchemaRegistry
from mpsandbox.schemas.validator import errors_text

MISSING_SCHEMA = "Field(s) $schema were missing from event and could not be extracted."


@dataclass(slots=True)
class RequestContext:
    """What the pipeline may know about the request an event came in."""

    received_at: float = field(default_factory=time.time)
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    #: Lower-cased header names.
    headers: Mapping[str, str] = field(default_factory=dict)
    peer: str | None = None


def _get(event: Any, *path: str) -> Any:
    node = event
    for part in path:
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _clone(event: Any) -> Any:
    """A deep copy; a JSON round trip is several times faster than copy.deepcopy here."""
    try:
        return orjson.loads(orjson.dumps(event))
    except (TypeError, orjson.JSONEncodeError, orjson.JSONDecodeError):
        return jsonio.loads(jsonio.dumps(event))


class Pipeline:
    def __init__(self, registry: SchemaRegistry, *, fill_ins: bool = True):
        self.registry = registry
        self.fill_ins = fill_ins

    def judge_batch(
        self, events: list[Any], ctx: RequestContext, working: list[Any] | None = None
    ) -> list[EventRecord]:
        """Judge a request's events. `working`, when given, is a second, independent parse
        of the same events (cheaper than copying each one) that the pipeline may modify."""
        if working is None or len(working) != len(events):
            return [self.judge(event, ctx, index) for index, event in enumerate(events)]
        return [
            self.judge(event, ctx, index, working=w)
            for index, (event, w) in enumerate(zip(events, working, strict=True))
        ]

    def judge(
        self, event: Any, ctx: RequestContext, index: int = 0, *, working: Any = None
    ) -> EventRecord:
        stream = _get(event, "meta", "stream")
        record = EventRecord(
            index=index,
            received=event,
            verdict=ERROR,
            received_at=ctx.received_at,
            stream=stream if isinstance(stream, str) else None,
        )
        schema_uri = event.get("$schema") if isinstance(event, dict) else None
        if schema_uri is None:
            record.message = MISSING_SCHEMA
            record.explanation = {
                "reason": "the event has no $schema field"
                if isinstance(event, dict)
                else f"the event is a JSON {type(event).__name__}, not an object",
            }
            return record
        uri = schema_uri if isinstance(schema_uri, str) else jsonio.dumps_str(schema_uri)
        record.schema_uri = uri
        resolution = self.registry.resolve(uri)
        record.schema_title = resolution.title
        record.schema_version = resolution.version
        memo = resolution.memo
        explanation = memo.get("explanation")
        if explanation is None:
            explanation = memo["explanation"] = resolution.explanation()
        # Shared by every event of this schema; copied before any per-event change.
        record.explanation = explanation
        if resolution.compiled is None:
            record.message = resolution.message
            return record
        compiled = resolution.compiled
        if working is None or working is event:
            working = _clone(event)
        fills: dict[str, dict[str, Any]] = {}
        plan = memo.get("fill_plan")
        if plan is None:
            plan = memo["fill_plan"] = FillPlan.for_schema(compiled, resolution.title)
        if self.fill_ins and not plan.empty:
            planned = plan_fills(
                plan,
                working,
                received_at=ctx.received_at,
                request_id=ctx.request_id,
                headers=ctx.headers,
                peer=ctx.peer,
            )
            write_fills(working, planned)
            for path, value in planned:
                fills[join_path(path)] = {"value": value, "by": "fill"}
        for path, value in compiled.apply_defaults(working):
            fills.setdefault(join_path(path), {"value": value, "by": "default"})
        record.fills = fills
        if compiled.is_valid(working):
            record.verdict = VALID
            return record
        errors = compiled.errors(working)
        if not errors:
            # The fast and the detailed validator disagree; trust the detailed one, loudly.
            record.verdict = VALID
            record.explanation = {**record.explanation, "validator_disagreement": True}
            return record
        record.verdict = INVALID
        record.errors = errors
        record.errors_text = errors_text(errors)
        return record
