"""Findings benchmark: what the platform rules cost per realistic event, in time and bytes.

    .venv/bin/python bench/findings.py [--events 2000] [--runs 11]

In process, no HTTP and no store: realistic web/base events (bench/realistic.py) judged 10 per
request by the real Pipeline (``fill_ins=False``), as the intake judges them. Prints, beside
the target, the CPU time of the findings alone (``Pipeline._findings``: platform/rules.py and
platform/history.py) per event, without a stream config and with one that samples and
requests contextual attributes; the whole judge + encode (store/writer.encode_event) + pickle
per event, as the intake hands a batch to the store process; and the bytes of findings JSON
stored per event. Each run judges events not seen before (new dts, a fresh History), so no
memo helps more than it would in a running intake; the minimum over runs is reported, the
machine being shared.
"""

from __future__ import annotations

import argparse
import pickle
import time
from typing import Any

import orjson

from mpsandbox.config import Settings
from mpsandbox.pipeline import Pipeline, RequestContext
from mpsandbox.platform.history import History
from mpsandbox.platform.stream_configs import StreamConfigs
from mpsandbox.sandbox import build_registry
from mpsandbox.store.writer import encode_event
from realistic import STREAM, web_base_events

TARGET_US = 8.0
#: A stream config that makes every sampling and attribute rule run for every event.
CONFIG = {
    STREAM: {
        "schema_title": "analytics/product_metrics/web/base",
        "sample": {"unit": "session", "rate": 0.5},
        "producers": {
            "metrics_platform_client": {
                "provide_values": [
                    "performer_session_id",
                    "performer_pageview_id",
                    "mediawiki_database",
                    "page_id",
                    "page_title",
                    "performer_is_logged_in",
                    "mediawiki_skin",
                    "agent_client_platform_family",
                ]
            }
        },
    }
}


def _bodies(events: list[dict[str, Any]]) -> list[bytes]:
    return [orjson.dumps(events[i : i + 10]) for i in range(0, len(events), 10)]


def findings_us(pipeline: Pipeline, events: list[dict[str, Any]], n: int, runs: int) -> float:
    """CPU microseconds per event of Pipeline._findings, minimum over runs."""
    best = float("inf")
    for r in range(runs):
        records, contexts = [], []
        for body in _bodies(events[r * n : (r + 1) * n]):
            ctx = RequestContext()
            contexts.append(ctx)
            records += [pipeline._judge(e, ctx, i) for i, e in enumerate(orjson.loads(body))]
        pipeline.history = History()
        start = time.process_time()
        for i, record in enumerate(records):
            pipeline._findings(record, contexts[i // 10], i % 10)
        best = min(best, time.process_time() - start)
    return best / n * 1e6


def whole_us(
    pipeline: Pipeline, events: list[dict[str, Any]], n: int, runs: int
) -> tuple[float, float]:
    """(CPU microseconds per event of judge + encode + pickle, findings bytes per event)."""
    best, stored = float("inf"), 0
    for r in range(runs):
        bodies = _bodies(events[r * n : (r + 1) * n])
        pipeline.history = History()
        stored = 0
        start = time.process_time()
        for body in bodies:
            records = pipeline.judge_batch(orjson.loads(body), RequestContext())
            rows = [encode_event(e) for e in records]
            pickle.dumps(rows, protocol=5)
            stored += sum(len((row[20] or "").encode()) for row in rows)
        best = min(best, time.process_time() - start)
    return best / n * 1e6, stored / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000, help="events per run")
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args()
    n, runs = args.events, args.runs
    events = list(web_base_events(n * runs * 2))
    registry = build_registry(Settings(watch_schemas=False))
    for label, configs in (("no stream config", None), ("sampling + attributes", CONFIG)):
        pipeline = Pipeline(registry, fill_ins=False)
        pipeline.stream_configs = StreamConfigs(configs) if configs else None
        findings = findings_us(pipeline, events[: n * runs], n, runs)
        whole, stored = whole_us(pipeline, events[n * runs :], n, runs)
        verdict = "" if configs else (" (met)" if findings < TARGET_US else " (missed)")
        print(
            f"{label:24s} findings {findings:5.1f} us/event"
            + (f", target < {TARGET_US:g}{verdict}" if not configs else "")
            + f"; judge + encode + pickle {whole:5.1f} us/event; findings stored {stored:,.0f} B/event"
        )


if __name__ == "__main__":
    main()
