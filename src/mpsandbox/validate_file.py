"""`mpsandbox validate`: judge events from a file through the same pipeline, with no server."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from mpsandbox import jsonio
from mpsandbox.config import Settings
from mpsandbox.pipeline import Pipeline, RequestContext
from mpsandbox.records import INVALID, VALID
from mpsandbox.sandbox import build_registry


class ReadError(Exception):
    pass


def read_events(source: str) -> list[Any]:
    """One event, an array, or JSON lines; a clear error for anything else."""
    try:
        data = sys.stdin.buffer.read() if source == "-" else open(source, "rb").read()  # noqa: SIM115
    except OSError as exc:
        raise ReadError(f"cannot read {source}: {exc.strerror}") from None
    data = data.removeprefix(b"\xef\xbb\xbf")
    if not data.strip():
        raise ReadError(f"{source} is empty")
    try:
        value = jsonio.loads(data)
        return value if isinstance(value, list) else [value]
    except ValueError:
        pass
    events = []
    for n, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            events.append(jsonio.loads(line))
        except ValueError as exc:
            raise ReadError(f"{source}:{n}: not JSON ({exc})") from None
    return events


def run_validate(
    settings: Settings, source: str, *, fmt: str, out: TextIO, working_copy: bool = False
) -> int:
    """``working_copy``: judge by each title's unmaterialized current.yaml where there is
    one (see working_copy.py), to test an edit before materializing it."""
    events = read_events(source)
    stream_configs = None
    if settings.stream_config:
        from mpsandbox.platform.stream_configs import StreamConfigError, load_location

        try:
            stream_configs = load_location(settings.stream_config)
        except StreamConfigError as exc:
            raise ReadError(f"stream config {exc}") from None
    registry: Any = build_registry(settings)
    if working_copy:
        from mpsandbox.working_copy import WorkingCopyRegistry

        registry = WorkingCopyRegistry(registry)
    pipeline = Pipeline(registry, fill_ins=settings.fill_ins, stream_configs=stream_configs)
    ctx = RequestContext(headers={})
    records = pipeline.judge_batch(events, ctx)
    bad = 0
    for r in records:
        if r.verdict != VALID:
            bad += 1
        if fmt == "json":
            out.write(
                jsonio.dumps_str(
                    {
                        "index": r.index,
                        "verdict": r.verdict,
                        "schema": r.schema_uri,
                        "stream": r.stream,
                        "errors": r.errors,
                        "errorsText": r.errors_text,
                        "message": r.message,
                        "explanation": r.explanation,
                    }
                )
                + "\n"
            )
            continue
        head = f"#{r.index} {r.verdict.upper():7} {r.stream or '-'} {r.schema_uri or '-'}"
        out.write(head + "\n")
        if r.verdict == INVALID:
            for e in r.errors:
                out.write(
                    f"    {e['dataPath'] or '(root)'}: {e['message']}  [{e['keyword']} at {e['schemaPath']}]\n"
                )
        elif r.message:
            out.write(f"    {r.message}\n")
            reason = r.explanation.get("reason")
            if reason:
                out.write(f"    why: {reason}\n")
            for hint in r.explanation.get("hints", []):
                out.write(f"    hint: {hint}\n")
    if fmt == "text":
        out.write(f"{len(records)} events: {len(records) - bad} valid, {bad} not\n")
    return 1 if bad else 0
