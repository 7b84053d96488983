"""Judge stored events again after a schema changed, and record every verdict that flips.

An author edits a schema and wants to know, at once, which of the events already captured it
now accepts or refuses, without clicking through the wiki again. The events are judged by the
same pipeline as the intake's, with the context they arrived in (time, request headers, the
request id the intake filled in), so a flip is due to the schema, not to a different judge.

The stored verdict is never rewritten: it is what the intake answered at the time, and what
a client saw. Each flip is kept beside it (``flips``), with the errors before and after, so
flipping back later is a second flip, not a silent undo.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from mpsandbox import jsonio
from mpsandbox.pipeline import Pipeline, RequestContext
from mpsandbox.schemas.sources import EXTENSIONS, VERSION_RE

#: Stored events judged again by default after a change: the newest ones are those an author
#: is working on; ``--revalidate all`` takes every one.
DEFAULT_LIMIT = 10_000


@dataclass(slots=True)
class Flip:
    event_id: int
    schema_uri: str | None
    schema_location: str | None
    before: str
    after: str
    before_errors: list | None
    after_errors: list | None
    after_message: str | None

    def row(self, run_id: int) -> tuple:
        return (
            run_id,
            self.event_id,
            self.schema_uri,
            self.schema_location,
            self.before,
            self.after,
            _json_or_none(self.before_errors),
            _json_or_none(self.after_errors),
            self.after_message,
        )


@dataclass(slots=True)
class Report:
    """One run: what was judged again and what changed."""

    trigger: str
    titles: list[str] | None
    limit: int | None
    started_at: float = field(default_factory=time.time)
    seconds: float = 0.0
    checked: int = 0
    errors_changed: int = 0
    #: "valid→invalid" and the like -> how many events flipped that way.
    by_change: dict[str, int] = field(default_factory=dict)
    flips: list[Flip] = field(default_factory=list)
    run_id: int | None = None
    #: Schema files that do not parse at the end of the run (location -> message).
    problems: dict[str, str] = field(default_factory=dict)

    @property
    def flipped(self) -> int:
        return len(self.flips)

    def as_dict(self, *, with_flips: int = 20) -> dict[str, Any]:
        return {
            "run": self.run_id,
            "trigger": self.trigger,
            "titles": self.titles,
            "limit": self.limit,
            "started_at": self.started_at,
            "seconds": round(self.seconds, 3),
            "checked": self.checked,
            "flipped": self.flipped,
            "errors_changed": self.errors_changed,
            "by_change": self.by_change,
            "events": [f.event_id for f in self.flips[:with_flips]],
            "problems": self.problems,
        }

    def headline(self) -> str:
        """One line for a notification or a log."""
        if not self.flips:
            return f"Re-judged {self.checked:,} stored events: no verdict changed."
        parts = ", ".join(f"{n:,} {change}" for change, n in sorted(self.by_change.items()))
        return f"Re-judged {self.checked:,} stored events: {parts}."


def _json_or_none(value: Any) -> str | None:
    return None if not value else jsonio.dumps_str(value)


def _errors_key(errors: Any) -> str:
    return jsonio.dumps_str(errors or [])


def titles_for_paths(paths: Iterable[str], roots: Iterable[Path]) -> set[str] | None:
    """The schema titles a set of changed files can affect; None when any of them is a
    fragment (mixed into any schema, so every stored event may be affected) or lies outside
    every known schema directory."""
    titles: set[str] = set()
    bases = [b for root in roots for b in (root, root / "jsonschema")]
    for raw in paths:
        path = Path(raw)
        rel = next((path.relative_to(b) for b in bases if b in path.parents), None)
        if rel is None:
            return None
        parts = rel.parts
        if parts and parts[0] == "jsonschema":
            parts = parts[1:]
        if not parts or parts[0] == "fragment":
            return None
        name = parts[-1]
        stem = name
        for ext in EXTENSIONS:
            if stem.endswith(ext):
                stem = stem[: -len(ext)]
        if VERSION_RE.match(stem) or stem in ("current", "latest"):
            parts = parts[:-1]
        if parts:
            titles.add("/".join(parts))
    return titles


def stored_context(
    event_id: int, received_at: float, fills: dict[str, Any], headers: list
) -> RequestContext:
    """The context a stored event arrived in: its time, its request's headers, and the
    request id the intake filled in (so a judged-again event is filled in alike)."""
    filled_id = (fills.get("meta.request_id") or {}).get("value")
    return RequestContext(
        received_at=received_at,
        request_id=filled_id if isinstance(filled_id, str) else f"stored-event-{event_id}",
        headers={str(k).lower(): str(v) for k, v in headers},
    )


def rejudge(
    pipeline: Pipeline, rows: Iterable[dict[str, Any]], report: Report, *, pause: Callable[[], None]
) -> None:
    """Judge each stored event again; ``rows`` carry the event, its verdict and errors as
    last judged (the latest flip, else as stored), and its request's context."""
    for n, row in enumerate(rows, 1):
        if n % 50 == 0:
            pause()
        event = jsonio.loads(row["event"])
        ctx = stored_context(
            row["id"],
            row["received_at"],
            jsonio.loads(row["fills"]) if row["fills"] else {},
            jsonio.loads(row["headers"] or "[]"),
        )
        record = pipeline.rejudge(event, ctx)
        report.checked += 1
        before_errors = jsonio.loads(row["errors"]) if row["errors"] else []
        if record.verdict == row["verdict"]:
            if _errors_key(record.errors) != _errors_key(before_errors):
                report.errors_changed += 1
            continue
        change = f"{row['verdict']}→{record.verdict}"
        report.by_change[change] = report.by_change.get(change, 0) + 1
        explanation = record.explanation or {}
        report.flips.append(
            Flip(
                event_id=row["id"],
                schema_uri=record.schema_uri,
                schema_location=explanation.get("schema_location"),
                before=row["verdict"],
                after=record.verdict,
                before_errors=before_errors,
                after_errors=record.errors,
                after_message=record.message,
            )
        )


def record_run(run: tuple, flips: list[tuple], conn: Any) -> int:
    """Store a run and its flips in one transaction; runs on the store's single writer
    (module-level, so it crosses to the store process)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        cur = conn.execute(
            "INSERT INTO revalidations (started_at, seconds, trigger, titles, limit_n, checked,"
            " flipped, errors_changed, summary) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            run,
        )
        run_id = cur.lastrowid
        # Events deleted (retention, reset) while the run judged them are skipped.
        conn.executemany(
            "INSERT INTO flips (run_id, event_id, schema_uri, schema_location, before_verdict,"
            " after_verdict, before_errors, after_errors, after_message)"
            " SELECT ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM events WHERE id = ?)",
            [(run_id, *flip[1:], flip[1]) for flip in flips],
        )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return run_id


def store_call(report: Report) -> Callable[[Any], int]:
    """The writer call that records ``report`` (a picklable partial)."""
    run = (
        report.started_at,
        report.seconds,
        report.trigger,
        None if report.titles is None else jsonio.dumps_str(report.titles),
        report.limit,
        report.checked,
        report.flipped,
        report.errors_changed,
        jsonio.dumps_str(report.as_dict(with_flips=0)),
    )
    return partial(record_run, run, [f.row(0) for f in report.flips])
