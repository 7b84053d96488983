"""Check results as text for people, JSON for scripts, JUnit XML for CI.

The JSON shape (``"format": "mpsandbox-check/1"``) is documented in ``instruments/README.md``
and only grows: keys are added, never renamed or removed, within the same format name.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

from mpsandbox.instruments.checks import (
    FAIL,
    NOT_SEEN,
    PASS,
    CheckResult,
    InstrumentResult,
    exit_status,
    summary,
)
from mpsandbox.instruments.definitions import Problem

FORMAT = "mpsandbox-check/1"
#: Matched event ids listed per check in JSON (``matched`` has the count).
EVENT_IDS = 20

LABELS = {PASS: "pass", FAIL: "FAIL", NOT_SEEN: "NOT SEEN"}
COLORS = {PASS: "green", FAIL: "red", NOT_SEEN: "yellow"}


def _where(result: InstrumentResult) -> str:
    d = result.definition
    return "" if d.file is None else str(d.file)


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def summary_line(results: Sequence[InstrumentResult]) -> str:
    t = summary(results)
    return (
        f"{_plural(t['instruments'], 'instrument')}, {_plural(t['checks'], 'check')}: "
        f"{t[PASS]:,} passed, {t[FAIL]:,} failed, {t[NOT_SEEN]:,} not seen"
    )


def render_text(
    results: Sequence[InstrumentResult],
    problems: Sequence[Problem] = (),
    *,
    style=None,
    issues: int = 3,
) -> str:
    """Lines for a terminal; ``style(text, status)`` may colour the status words."""

    def paint(text: str, status: str) -> str:
        return style(text, status) if style is not None else text

    out: list[str] = []
    for p in problems:
        out.append(f"definition problem: {p}")
    if problems:
        out.append("")
    for res in results:
        d = res.definition
        head = f"{d.name}  {paint(LABELS[res.status], res.status)}  stream {d.stream}, "
        head += _plural(res.events, "event")
        where = _where(res)
        out.append(head + (f"  ({where})" if where else ""))
        width = max((len(c.id) for c in res.checks), default=0)
        for c in res.checks:
            label = paint(f"{LABELS[c.status]:<8}", c.status)
            count = f"  ({_plural(len(c.matched), 'event')})" if c.matched else ""
            out.append(f"  {label}  {c.id:<{width}}  {c.title}{count}")
            lines = [i.message for i in c.issues[:issues]]
            if c.issue_count > issues:
                lines.append(f"… {c.issue_count - issues} more")
            if c.status == NOT_SEEN and c.note:
                lines = [c.note]
            for line in lines:
                out.append(f"  {'':8}  {'':<{width}}  {line}")
        if res.unmatched_actions:
            others = ", ".join(
                f"{a} ×{n}" for a, n in sorted(res.unmatched_actions.items(), key=lambda x: -x[1])
            )
            out.append(f"  matched by no expectation: {others}")
        out.append("")
    out.append(summary_line(results))
    return "\n".join(out) + "\n"


def _check_dict(c: CheckResult) -> dict[str, Any]:
    return {
        "id": c.id,
        "title": c.title,
        "kind": c.kind,
        "status": c.status,
        "matched": len(c.matched),
        "events": c.matched[:EVENT_IDS],
        "reason": c.reason,
        "event": c.event_id,
        "issues": [i.as_dict() for i in c.issues],
        "issue_count": c.issue_count,
        "line": c.line,
    }


def as_json(
    results: Sequence[InstrumentResult],
    problems: Sequence[Problem] = (),
    *,
    source: dict[str, Any] | None = None,
    allow_not_seen: bool = False,
) -> dict[str, Any]:
    totals = summary(results)
    totals["ok"] = not problems and exit_status(results, allow_not_seen=allow_not_seen) == 0
    return {
        "format": FORMAT,
        "source": source or {},
        "summary": totals,
        "problems": [
            {"file": p.file, "line": p.line, "path": p.path, "message": p.message} for p in problems
        ],
        "instruments": [
            {
                "name": r.definition.name,
                "file": str(r.definition.file) if r.definition.file else None,
                "line": r.definition.line,
                "stream": r.definition.stream,
                "schema": r.definition.schema.describe() if r.definition.schema else None,
                "experiment": r.definition.experiment.name if r.definition.experiment else None,
                "status": r.status,
                "events": r.events,
                "unmatched_actions": r.unmatched_actions,
                "checks": [_check_dict(c) for c in r.checks],
            }
            for r in results
        ],
    }


# XML 1.0 cannot hold most control characters, whatever the escaping; events can.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _x(text: Any) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


def render_junit(
    results: Sequence[InstrumentResult],
    problems: Sequence[Problem] = (),
    *,
    allow_not_seen: bool = False,
) -> str:
    """One ``<testsuite>`` per instrument, one ``<testcase>`` per check; a failure per
    failing check (not seen: a failure too, or ``<skipped>`` with ``allow_not_seen``).
    Definition problems are a suite of their own, each an ``<error>``."""
    root = ET.Element("testsuites", name="mpsandbox check")
    total = failures = skipped = errors = 0
    if problems:
        suite = ET.SubElement(
            root,
            "testsuite",
            name="instrument definitions",
            tests=str(len(problems)),
            failures="0",
            errors=str(len(problems)),
            skipped="0",
        )
        for p in problems:
            case = ET.SubElement(
                suite,
                "testcase",
                classname="definitions",
                name=_x(f"{p.file}{':' + str(p.line) if p.line else ''}"),
            )
            err = ET.SubElement(case, "error", message=_x(str(p)), type="definition")
            err.text = _x(str(p))
        total += len(problems)
        errors += len(problems)
    for r in results:
        d = r.definition
        counts = r.counts()
        s_fail = counts[FAIL] + (0 if allow_not_seen else counts[NOT_SEEN])
        s_skip = counts[NOT_SEEN] if allow_not_seen else 0
        attrs = {
            "name": _x(d.name),
            "tests": str(len(r.checks)),
            "failures": str(s_fail),
            "errors": "0",
            "skipped": str(s_skip),
        }
        if d.file is not None:
            attrs["file"] = _x(d.file)
        suite = ET.SubElement(root, "testsuite", attrs)
        props = ET.SubElement(suite, "properties")
        for key, value in (
            ("stream", d.stream),
            ("schema", d.schema.describe() if d.schema else None),
            ("experiment", d.experiment.name if d.experiment else None),
            ("events", r.events),
        ):
            if value is not None:
                ET.SubElement(props, "property", name=key, value=_x(value))
        for c in r.checks:
            case_attrs = {
                "classname": _x(f"instruments.{d.name}"),
                "name": _x(f"{c.id}: {c.title}"),
            }
            if d.file is not None:
                case_attrs["file"] = _x(d.file)
            if c.line is not None:
                case_attrs["line"] = str(c.line)
            case = ET.SubElement(suite, "testcase", case_attrs)
            if c.status == FAIL:
                node = ET.SubElement(case, "failure", message=_x(c.reason or "failed"), type="fail")
                body = [i.message for i in c.issues]
                if c.issue_count > len(c.issues):
                    body.append(f"… {c.issue_count - len(c.issues)} more")
                event = c.event_id
                if event is not None:
                    body.append(f"nearest event: {event} (mpsandbox: /sandbox/events/{event})")
                node.text = _x("\n".join(body))
            elif c.status == NOT_SEEN:
                tag = "skipped" if allow_not_seen else "failure"
                node = ET.SubElement(case, tag, message=_x(f"not seen: {c.note or ''}"))
                if tag == "failure":
                    node.set("type", "not_seen")
        total += len(r.checks)
        failures += s_fail
        skipped += s_skip
    root.set("tests", str(total))
    root.set("failures", str(failures))
    root.set("errors", str(errors))
    root.set("skipped", str(skipped))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
