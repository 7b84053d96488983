"""Metric results as JSON (a stable shape, documented in metrics/README.md) and as text."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from mpsandbox.metrics.compute import (
    FunnelCounts,
    MetricResult,
    RatioCounts,
    group_label,
)
from mpsandbox.metrics.definitions import UNIT_FIELDS, DefinitionError
from mpsandbox.metrics.wilson import Ratio

#: Bumped when the JSON shape changes in a way that breaks readers.
JSON_VERSION = 1


def percent(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def interval_text(r: Ratio, digits: int = 1) -> str:
    if r.low is None:
        return "—"
    return f"[{percent(r.low, digits)}, {percent(r.high, digits)}]"


def _counts_dict(counts: RatioCounts | FunnelCounts, by: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if by:
        out["group"] = dict(zip(by, counts.group, strict=True))
        out["label"] = group_label(counts.group)
    if isinstance(counts, RatioCounts):
        out.update(counts.ratio.as_dict())
        out["outside"] = counts.outside
    else:
        out["steps"] = [
            {
                "name": s.name,
                "query": s.query,
                "reached": s.reached,
                "from_first": s.from_first.as_dict(),
                "from_previous": s.from_previous.as_dict(),
                "skipped": s.skipped,
            }
            for s in counts.steps
        ]
    out["without_unit"] = counts.without_unit
    return out


def result_dict(result: MetricResult) -> dict[str, Any]:
    by = [f.path for f in result.by]
    out = result.metric.as_dict()
    out["by"] = by
    out["total"] = None if result.total is None else _counts_dict(result.total, ())
    out["groups"] = [_counts_dict(g, by) for g in result.groups]
    out["not_valid"] = result.not_valid
    out["error"] = result.error
    out["seconds"] = round(result.seconds, 6)
    return out


def report_dict(
    results: Iterable[MetricResult],
    errors: Iterable[DefinitionError] = (),
    **context: Any,
) -> dict[str, Any]:
    """``{"version", ...context, "metrics": [...], "errors": [...]}``."""
    return {
        "version": JSON_VERSION,
        **context,
        "metrics": [result_dict(r) for r in results],
        "errors": [e.as_dict() for e in errors],
    }


# -- text ----------------------------------------------------------------------------------


def _table(rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  " + "  ".join(cells).rstrip())
    return lines


def _unit_noun(unit: str, n: int) -> str:
    noun = {"funnel_entry_token": "funnel entry token", "subject": "subject"}.get(unit, unit)
    return noun if n == 1 else noun + "s"


def _events(n: int) -> str:
    return f"{n:,} matching event{'' if n == 1 else 's'}"


def explain(result: MetricResult, counts: RatioCounts | FunnelCounts) -> list[str]:
    """Sentences for what ``counts`` leaves out and why (the total's also say what
    valid_only left out)."""
    unit = result.metric.unit
    notes: list[str] = []
    if isinstance(counts, RatioCounts) and counts.outside:
        notes.append(
            f"{counts.outside:,} {_unit_noun(unit, counts.outside)} matched the numerator "
            "without a denominator event: not counted"
        )
    if isinstance(counts, FunnelCounts):
        for i, step in enumerate(counts.steps, 1):
            if step.skipped:
                notes.append(
                    f"{step.skipped:,} {_unit_noun(unit, step.skipped)} did step {i} without "
                    "every earlier step: not counted there"
                )
    if counts.without_unit:
        notes.append(f"{_events(counts.without_unit)} had no {UNIT_FIELDS[unit]}: not counted")
    if not counts.group and result.not_valid:
        n = result.not_valid
        notes.append(
            f"{_events(n)} {'was' if n == 1 else 'were'} not valid and "
            f"{'is' if n == 1 else 'are'} left out (valid_only)"
        )
    return notes


def _ratio_lines(result: MetricResult) -> list[str]:
    rows = [["group", "numerator", "denominator", "rate", "95% interval"]]
    notes: list[str] = []
    shown = [result.total, *result.groups] if result.total is not None else result.groups
    for counts in shown:
        assert isinstance(counts, RatioCounts)
        r = counts.ratio
        rows.append(
            [
                group_label(counts.group),
                f"{r.numerator:,}",
                f"{r.denominator:,}",
                percent(r.rate),
                interval_text(r),
            ]
        )
    if result.total is not None:
        notes = explain(result, result.total)
    return _table(rows, {1, 2, 3}) + [f"  note: {n}" for n in notes]


def _funnel_lines(result: MetricResult) -> list[str]:
    lines: list[str] = []
    shown = [result.total, *result.groups] if result.total is not None else result.groups
    for counts in shown:
        assert isinstance(counts, FunnelCounts)
        if result.groups:
            lines.append(f"  {group_label(counts.group)}:")
        rows = [["step", "reached", "of first", "95% interval", "of previous", "95% interval"]]
        for i, s in enumerate(counts.steps, 1):
            rows.append(
                [
                    f"{i}. {s.name}",
                    f"{s.reached:,}",
                    percent(s.from_first.rate),
                    interval_text(s.from_first),
                    percent(s.from_previous.rate) if i > 1 else "",
                    interval_text(s.from_previous) if i > 1 else "",
                ]
            )
        lines += _table(rows, {1, 2, 4})
        lines += [f"  note: {n}" for n in explain(result, counts)]
    return lines


def format_text(results: Iterable[MetricResult], errors: Iterable[DefinitionError] = ()) -> str:
    out: list[str] = []
    for result in results:
        metric = result.metric
        title = metric.name + (f": {metric.description}" if metric.description else "")
        out.append(title)
        facts = [f"unit {metric.unit}"]
        if result.by:
            facts.append("by " + ", ".join(f.path for f in result.by))
        if metric.experiment:
            facts.append(f"experiment {metric.experiment}")
        if metric.where is not None:
            facts.append(f"where {metric.where.text}")
        facts.append("valid events only" if metric.valid_only else "every verdict")
        out.append("  " + " · ".join(facts))
        if not metric.steps:
            out.append(f"  numerator:   {metric.numerator.text if metric.numerator else ''}")
            out.append(f"  denominator: {metric.denominator.text if metric.denominator else ''}")
        if result.error:
            out.append(f"  error: {result.error}")
            out.append("")
            continue
        if metric.steps:
            out += _funnel_lines(result)
        else:
            out += _ratio_lines(result)
        out.append("")
    for error in errors:
        out.append(f"error: {error}")
    return "\n".join(out).rstrip() + "\n"
