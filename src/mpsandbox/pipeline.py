"""Judge events: find the schema, write the fill-ins and defaults, validate, explain.

Every way in (HTTP intake, `validate` on a file, replay) goes through `Pipeline.judge`, so a
verdict never depends on how an event arrived. Pure CPU work with no I/O except schema files
on a cache miss; storing is the caller's business.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from mpsandbox import jsonio
from mpsandbox.fillins import FillPlan, plan_fills, undo_fills, write_fills
from mpsandbox.platform.experiments import Experiments
from mpsandbox.platform.findings import pack
from mpsandbox.platform.history import History
from mpsandbox.platform.identifiers import platform_kind
from mpsandbox.platform.rules import find
from mpsandbox.platform.stream_configs import StreamConfigs
from mpsandbox.records import ERROR, INVALID, VALID, EventRecord, field_at, join_path
from mpsandbox.schemas.ajv_errors import errors_text
from mpsandbox.schemas.registry import SchemaRegistry

log = logging.getLogger(__name__)

MISSING_SCHEMA = "Field(s) $schema were missing from event and could not be extracted."
#: eventgate-wikimedia's MissingFieldError when a stream config is in use and the event has
#: no meta.stream (its stream_field).
MISSING_STREAM = "Field(s) meta.stream were missing from event and could not be extracted."
_ABSENT = object()


def _js_string(value: Any) -> str:
    """``String(value)`` as JavaScript writes it into eventgate-wikimedia's messages."""
    if isinstance(value, str):
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    if isinstance(value, list):
        return ",".join("" if v is None else _js_string(v) for v in value)
    if isinstance(value, dict):
        return "[object Object]"
    return str(value)


def _js_truthy(value: Any) -> bool:
    if isinstance(value, dict | list):
        return True
    return bool(value) and value == value  # NaN is falsy


def event_repr(event: Any) -> str:
    """eventgate-wikimedia's makeEventRepr: ``event <meta.id> of schema at <$schema>
    destined to stream <meta.stream>``, each part only when present."""
    meta = event.get("meta") if isinstance(event, dict) else None
    event_id = meta.get("id") if isinstance(meta, dict) else None
    schema_uri = event.get("$schema") if isinstance(event, dict) else None
    stream = meta.get("stream") if isinstance(meta, dict) else None
    out = "event"
    if _js_truthy(event_id):
        out += f" {_js_string(event_id)}"
    if _js_truthy(schema_uri):
        out += f" of schema at {_js_string(schema_uri)}"
    if _js_truthy(stream):
        out += f" destined to stream {_js_string(stream)}"
    return out


@dataclass(slots=True)
class RequestContext:
    """What the pipeline may know about the request an event came in."""

    received_at: float = field(default_factory=time.time)
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    #: Lower-cased header names.
    headers: Mapping[str, str] = field(default_factory=dict)
    #: The TCP peer. No fill-in reads it (production's EventGate sits behind proxies and
    #: takes the client's address from X-Client-IP only); a legacy beacon's migrated form
    #: records it as ``recvFrom``, as EventLogging's converter does.
    peer: str | None = None


def _clone(event: Any) -> Any:
    """A deep copy; a JSON round trip is several times faster than copy.deepcopy here."""
    try:
        return orjson.loads(orjson.dumps(event))
    except (TypeError, orjson.JSONEncodeError, orjson.JSONDecodeError):
        return jsonio.loads(jsonio.dumps(event))


class Pipeline:
    def __init__(
        self,
        registry: SchemaRegistry,
        *,
        fill_ins: bool = True,
        stream_configs: StreamConfigs | None = None,
        experiments: Experiments | None = None,
        history: History | None = None,
    ):
        self.registry = registry
        self.fill_ins = fill_ins
        #: Loaded experiments (``--experiments``), for the experiment findings.
        self.experiments = experiments
        #: The recent past, for duplicate, funnel, session and exposure findings.
        self.history = history if history is not None else History()
        #: Local sample-rate overrides (stream or /regex/ key -> rate): the sampling findings
        #: judge with the rate the sandbox serves, as a client configured from it would.
        self.rate_overrides: dict[str, float] = {}
        #: The stream configs in force, swapped whole when a refresh brings a new copy;
        #: None allows every stream (`$wgEventLoggingStreamNames = false`).
        self.stream_configs = stream_configs
        #: (id(settings), rate) -> (settings, settings with that sample rate).
        self._overridden: dict[tuple[int, float], tuple[dict, dict]] = {}

    def judge_batch(
        self, events: list[Any], ctx: RequestContext, start: int = 0
    ) -> list[EventRecord]:
        """Judge a request's events. `start`: the position of ``events[0]`` in its request,
        when judged in slices."""
        return [self.judge(event, ctx, start + i) for i, event in enumerate(events)]

    def judge(self, event: Any, ctx: RequestContext, index: int = 0) -> EventRecord:
        """Judge one event: schema, fill-ins, stream rules, validation, then the platform
        rules' findings (which never change the verdict: production does not apply them)."""
        record = self._judge(event, ctx, index)
        if isinstance(event, dict):
            record.findings = self._findings(record, ctx, index)
        return record

    def rejudge(self, event: Any, ctx: RequestContext) -> EventRecord:
        """The verdict alone, for an event judged before (re-validation): findings depend on
        the events around it when it arrived, not on its schema, and stay as stored."""
        return self._judge(event, ctx)

    def _findings(self, record: EventRecord, ctx: RequestContext, index: int) -> list[Any]:
        """The platform rules' findings as the store keeps them: ``(kind, facts)`` pairs
        (platform/findings.py renders them on read)."""
        event = record.received
        stream_config = None if self.stream_configs is None else self._stream_config(record.stream)
        try:
            kind = platform_kind(event)
            found = find(
                event,
                stream=record.stream,
                stream_config=stream_config,
                experiments=self.experiments,
                received_at=ctx.received_at,
                # Only asked of an event with neither dt nor client_dt.
                schema_has_dt="dt" in event
                or "client_dt" in event
                or self._schema_has_dt(record.schema_uri),
                kind=kind,
            )
            meta = event.get("meta")
            meta_id = meta.get("id") if isinstance(meta, dict) else None
            if not isinstance(meta_id, str):
                meta_id = (record.fills.get("meta.id") or {}).get("value")
            ref = {"request": ctx.request_id, "idx": index, "meta_id": meta_id}
            found += self.history.find(event, received_at=ctx.received_at, ref=ref, kind=kind)
            retracted = self.history.take_retractions()
            if retracted:
                record.retracts = [
                    {"kind": k, **r}
                    for k, r in retracted
                    if isinstance(r, dict) and r.get("meta_id")
                ]
        except Exception as exc:  # a rule's bug must not cost the event
            log.exception("platform rules failed")
            failed = {"kind": "rules.failed", "severity": "info", "message": str(exc)}
            return [pack({**failed, "facts": {"error": type(exc).__name__}})]
        return found

    def _stream_config(self, stream: str | None) -> dict[str, Any] | None:
        """The stream's config with the local sample-rate override applied, the same dict
        for every event while neither changes (the rules plan once per config)."""
        configs = self.stream_configs
        if configs is None or not stream:
            return None
        match = configs.match(stream)
        if match is None:
            return None
        settings = match.settings
        overrides = self.rate_overrides
        if not overrides:
            return settings
        rate = overrides.get(stream, overrides.get(match.key))
        if rate is None:
            return settings
        key = (id(settings), rate)
        hit = self._overridden.get(key)
        if hit is None or hit[0] is not settings:
            if len(self._overridden) >= 256:
                self._overridden.clear()
            sample = dict(settings.get("sample") or {}, rate=rate)
            hit = self._overridden[key] = (settings, {**settings, "sample": sample})
        return hit[1]

    def _schema_has_dt(self, uri: str | None) -> bool:
        """Whether the event's schema declares ``dt``, once per schema (unknown: True)."""
        resolution = self.registry.resolve(uri) if uri else None
        if resolution is None or resolution.compiled is None:
            return True
        has = resolution.memo.get("declares_dt")
        if has is None:
            has = resolution.memo["declares_dt"] = resolution.compiled.declares(("dt",))
        return has

    def _judge(self, event: Any, ctx: RequestContext, index: int = 0) -> EventRecord:
        stream = field_at(event, "meta", "stream")
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
        fills: dict[str, dict[str, Any]] = {}
        plan = memo.get("fill_plan")
        if plan is None:
            plan = memo["fill_plan"] = FillPlan.for_schema(compiled, resolution.title)
        fill = self.fill_ins and not plan.empty
        # The event is stored as received. A schema that writes defaults gets a copy to
        # write them into; fill-ins alone are written into the event itself and taken out
        # again before it is returned (a copy of each event, or a second parse of the
        # body, cost more than judging it).
        working = _clone(event) if compiled.may_write_defaults else event
        undo = None
        if fill:
            planned = plan_fills(
                plan,
                working,
                received_at=ctx.received_at,
                request_id=ctx.request_id,
                headers=ctx.headers,
            )
            if planned:
                written = write_fills(working, planned)
                if working is event:
                    undo = written
                for path, value in planned:
                    fills[join_path(path)] = {"value": value, "by": "fill"}
        try:
            return self._validate(record, working, compiled, uri, memo, fills)
        finally:
            if undo:
                undo_fills(undo)

    def _validate(
        self,
        record: EventRecord,
        working: Any,
        compiled: Any,
        uri: str,
        memo: dict,
        fills: dict[str, dict[str, Any]],
    ) -> EventRecord:
        """The stream's rules, the schema's defaults and validation, on the event with its
        fill-ins written in."""
        configs = self.stream_configs
        if configs is not None and not self._allowed_in_stream(
            record, configs, working, compiled.schema, uri, memo
        ):
            record.fills = fills
            return record
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

    def _allowed_in_stream(
        self,
        record: EventRecord,
        configs: StreamConfigs,
        event: Any,
        schema: Any,
        uri: str,
        memo: dict,
    ) -> bool:
        """eventgate-wikimedia's ensureEventAllowedInStream, after the fill-ins and before
        validation: the stream must be configured and its ``schema_title`` must equal the
        schema's ``title``. On failure the record becomes an error with production's message.
        The explanation records the config that judged the event either way."""
        meta = event.get("meta") if isinstance(event, dict) else None
        raw_stream = meta.get("stream", _ABSENT) if isinstance(meta, dict) else _ABSENT
        if raw_stream is _ABSENT:
            record.verdict = ERROR
            record.message = MISSING_STREAM
            record.explanation = {
                **record.explanation,
                "stream_config": {
                    "source": configs.source,
                    "outcome": "no_stream",
                    "reason": "a stream config is in use, so every event must name its "
                    "stream in meta.stream",
                },
            }
            return False
        stream = _js_string(raw_stream)
        schema_title = schema.get("title") if isinstance(schema, dict) else None
        # The explanation is shared by every event of this schema and stream (the store
        # encodes each distinct dict once), so build it once per config snapshot.
        cache = memo.get("stream_explanations")
        if cache is None or cache[0] is not configs or len(cache[1]) > 1000:
            cache = memo["stream_explanations"] = (configs, {})
        key = (id(record.explanation), stream)
        hit = cache[1].get(key)
        if hit is None:
            hit = cache[1][key] = self._stream_verdict(
                configs, stream, schema_title, uri, record.explanation
            )
        outcome, explanation = hit
        record.explanation = explanation
        if outcome is None:
            return True
        record.verdict = ERROR
        record.message = outcome(event_repr(event))
        return False

    @staticmethod
    def _stream_verdict(
        configs: StreamConfigs,
        stream: str,
        schema_title: Any,
        uri: str,
        base: dict,
    ) -> tuple[Callable[[str], str] | None, dict]:
        """(None or a message maker taking the event's repr, the explanation)."""
        facts: dict[str, Any] = {"source": configs.source, "stream": stream}
        match = configs.match(stream)
        if match is not None:
            facts["matched"] = match.key
            facts["config"] = match.settings
        message: Callable[[str], str] | None = None
        allowed = match.settings.get("schema_title") if match is not None else None
        if schema_title is None:
            facts["outcome"] = "schema_without_title"
            facts["reason"] = f"the schema at {uri} has no title, so no stream can accept it"
            message = lambda r: f"Schema at {uri} must define a 'title' field. From {r}"  # noqa: E731
        elif match is None:
            facts["outcome"] = "not_configured"
            facts["reason"] = (
                f"no stream config names {stream} or has a /regex/ key matching it; "
                f"configured: {', '.join(configs.names()[:20])}"
                + (" ..." if len(configs) > 20 else "")
            )
            message = lambda r: f"{r} is not allowed in stream; {stream} is not configured."  # noqa: E731
        elif not match.settings:
            facts["outcome"] = "no_settings"
            facts["reason"] = f"{match.key} is configured with no settings at all"
            message = lambda r: (  # noqa: E731
                f"{r} is not allowed in stream; {stream} is configured but does not have "
                "any settings."
            )
        elif "schema_title" not in match.settings:
            facts["outcome"] = "no_schema_title"
            facts["reason"] = f"the config of {match.key} has no schema_title"
            message = lambda r: (  # noqa: E731
                f"{r} is not allowed in stream; {stream} does not have a schema_title setting."
            )
        elif schema_title != allowed:
            facts["outcome"] = "schema_title_mismatch"
            facts["schema_title"] = schema_title
            facts["reason"] = (
                f"{match.key} accepts schema title {_js_string(allowed)}, but {uri} is "
                f"titled {_js_string(schema_title)}"
            )
            message = lambda r: (  # noqa: E731
                f"{r} is not allowed in stream; schema title must be {_js_string(allowed)}."
            )
        else:
            facts["outcome"] = "allowed"
        return message, {**base, "stream_config": facts}
