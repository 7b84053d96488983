"""Filling a store through the real write path, without HTTP: how the benchmarks build big
stores fast (judged by the Pipeline, committed by the sandbox's writer, as a POST would be).
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from mpsandbox import jsonio
from mpsandbox.pipeline import RequestContext
from mpsandbox.records import RequestRecord


def judge_and_submit(
    sandbox: Any, batch: list[Any], *, received_at: float, request_id: str
) -> Future:
    """Judge ``batch`` as one request's events and submit it with its request; the future
    resolves once committed."""
    ctx = RequestContext(received_at=received_at, request_id=request_id, headers={})
    records = sandbox.pipeline.judge_batch(batch, ctx)
    request = RequestRecord(
        received_at=received_at,
        method="POST",
        path="/v1/events",
        query="",
        headers=[],
        body=jsonio.dumps(batch),
        remote="127.0.0.1",
        request_id=request_id,
        status=201,
        reason="Created",
        event_count=len(records),
    )
    return sandbox.writer.submit(request, records)
