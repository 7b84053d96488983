"""Metric definitions: YAML files of ratios and funnels over the captured events.

A file holds one metric (a mapping), a list of them, or ``{metrics: [...]}``; see
``metrics/README.md`` at the repository root for the format and its meaning. Loading never
raises for a bad file: every problem becomes a :class:`DefinitionError` naming the file
and the field, and the metrics that did load are still used.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mpsandbox.query import Query, QuerySyntaxError, parse_query

__all__ = [
    "FIELDS",
    "UNITS",
    "UNIT_FIELDS",
    "DefinitionError",
    "Definitions",
    "FieldPath",
    "Metric",
    "Step",
    "default_metric_dirs",
    "load_definitions",
    "parse_by",
    "parse_field",
    "parse_metric",
]

#: What a metric counts, and the event field that identifies one.
UNITS: dict[str, str] = {
    "event": "events (each matching event counts once)",
    "pageview": "distinct performer.pageview_id",
    "session": "distinct performer.session_id (apps' legacy app_session_id where it is absent)",
    "subject": "distinct experiment.subject_id; the session where it is a placeholder "
    "(awaiting, overridden)",
    "funnel_entry_token": "distinct funnel_entry_token",
}

#: The field whose values are the units, as notes name it.
UNIT_FIELDS: dict[str, str] = {
    "event": "event",
    "pageview": "performer.pageview_id",
    "session": "performer.session_id or app_session_id",
    "subject": "experiment.subject_id or session id",
    "funnel_entry_token": "funnel_entry_token",
}

#: The keys a definition may have, and what each is.
FIELDS: dict[str, str] = {
    "name": "the metric's name (letters, digits, - _ .)",
    "description": "one line saying what it measures",
    "unit": f"what is counted: {', '.join(UNITS)}",
    "numerator": "a query (the filter language): the units that converted",
    "denominator": "a query: the units that could convert",
    "steps": "a funnel instead of a ratio: a list of queries, or of {name, query}",
    "where": "a query every side must also match (the stream, for example)",
    "experiment": 'only events of this experiment (experiment.enrolled), or "*": of any',
    "by": "group by this event field (or a list of fields)",
    "valid_only": "count only valid events and legacy beacons, which are accepted unvalidated "
    "(default true)",
}

_NAME = re.compile(r"[A-Za-z0-9][-_.A-Za-z0-9]{0,99}")
_SEGMENT = re.compile(r"\$?[A-Za-z0-9_][-A-Za-z0-9_]*")

#: Field paths answered by an indexed column rather than by reading the event's JSON. The
#: columns hold the event's value as received, as json_extract would read it.
_COLUMNS: dict[str, str] = {
    "stream": "stream",
    "meta.stream": "stream",
    "action": "action",
    "performer.session_id": "session_id",
    "session": "session_id",
    "performer.pageview_id": "pageview_id",
    "pageview": "pageview_id",
    "agent.client_platform": "platform",
    "platform": "platform",
    "$schema": "schema_uri",
    "schema": "schema_title",
    "verdict": "verdict",
}


@dataclass(frozen=True, slots=True)
class FieldPath:
    """An event field to group by: an indexed column, or a JSON path into the event."""

    path: str
    column: str | None = None
    json_path: str | None = None

    def sql(self) -> tuple[str, list[Any]]:
        if self.column is not None:
            return self.column, []
        # instr first: a substring test is much cheaper than parsing the JSON, and most
        # events lack most fields (experiment.assigned, say).
        key = '"' + self.path.rsplit(".", 1)[-1] + '"'
        return (
            "CASE WHEN instr(unpack_text(event), ?) THEN json_extract(unpack_text(event), ?) END",
            [key, self.json_path],
        )


def parse_field(path: str) -> FieldPath:
    """``experiment.assigned`` -> a :class:`FieldPath`; ValueError saying what is wrong."""
    text = str(path).strip()
    if text in _COLUMNS:
        return FieldPath(text, column=_COLUMNS[text])
    segments = text.split(".")
    if not text or not all(_SEGMENT.fullmatch(s) for s in segments):
        raise ValueError(
            f'"{path}" is not a field path: use dotted names such as experiment.assigned, '
            "agent.client_platform or stream"
        )
    # Every segment quoted, so names with "-" or a leading digit read literally.
    return FieldPath(text, json_path="$" + "".join(f'."{s}"' for s in segments))


@dataclass(frozen=True, slots=True)
class Step:
    """One funnel step: a label and the query its events match."""

    name: str
    query: Query


@dataclass(frozen=True)
class Metric:
    """A loaded definition. ``steps`` makes it a funnel; otherwise it is a ratio of
    ``numerator`` to ``denominator``."""

    name: str
    unit: str
    description: str = ""
    numerator: Query | None = None
    denominator: Query | None = None
    steps: tuple[Step, ...] = ()
    where: Query | None = None
    experiment: str | None = None
    by: tuple[FieldPath, ...] = ()
    valid_only: bool = True
    source: str = ""

    @property
    def kind(self) -> str:
        return "funnel" if self.steps else "ratio"

    def as_dict(self) -> dict[str, Any]:
        """The definition as the JSON output repeats it."""
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "unit": self.unit,
        }
        if self.steps:
            out["steps"] = [{"name": s.name, "query": s.query.text} for s in self.steps]
        else:
            out["numerator"] = self.numerator.text if self.numerator else ""
            out["denominator"] = self.denominator.text if self.denominator else ""
        out["where"] = self.where.text if self.where else None
        out["experiment"] = self.experiment
        out["by"] = [f.path for f in self.by]
        out["valid_only"] = self.valid_only
        out["source"] = self.source
        return out


@dataclass(frozen=True, slots=True)
class DefinitionError:
    """A definition that could not be used: where (file, metric, field) and why."""

    file: str
    message: str
    field: str | None = None
    metric: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.metric:
            where += f": {self.metric}"
        if self.field:
            where += f": {self.field}"
        return f"{where}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "metric": self.metric,
            "field": self.field,
            "message": self.message,
        }


@dataclass
class Definitions:
    """What loading found: the metrics (by name, in file order) and the problems."""

    metrics: list[Metric] = field(default_factory=list)
    errors: list[DefinitionError] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def get(self, name: str) -> Metric | None:
        return next((m for m in self.metrics if m.name == name), None)


class _Invalid(ValueError):
    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _query(value: Any, field: str) -> Query:
    if not isinstance(value, str) or not value.strip():
        raise _Invalid(field, "needs a query as text, e.g. stream:product_metrics.web_base")
    try:
        return parse_query(value)
    except QuerySyntaxError as exc:
        raise _Invalid(field, str(exc)) from None


def _bool(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(field, f"takes true or false, got {value!r}")
    return value


def parse_by(value: Any, field: str = "by") -> tuple[FieldPath, ...]:
    """``by`` as written (a path, a comma-separated list, a list, null) -> field paths."""
    if value is None or value == "" or value == []:
        return ()
    if isinstance(value, str):
        if value.strip().lower() == "none":
            return ()
        items: Sequence[Any] = [v for v in value.split(",") if v.strip()]
    elif isinstance(value, list):
        items = value
    else:
        raise _Invalid(field, f"takes a field path or a list of them, got {value!r}")
    out = []
    for item in items:
        if not isinstance(item, str):
            raise _Invalid(field, f"takes field paths as text, got {item!r}")
        try:
            out.append(parse_field(item))
        except ValueError as exc:
            raise _Invalid(field, str(exc)) from None
    if len(out) > 3:
        raise _Invalid(field, "groups by at most 3 fields")
    return tuple(out)


def _steps(value: Any) -> tuple[Step, ...]:
    if not isinstance(value, list) or len(value) < 2:
        raise _Invalid("steps", "takes a list of at least two queries (or {name, query})")
    steps = []
    for i, item in enumerate(value, 1):
        where = f"steps[{i}]"
        if isinstance(item, str):
            steps.append(Step(item.strip(), _query(item, where)))
        elif isinstance(item, dict):
            unknown = set(item) - {"name", "query"}
            if unknown:
                raise _Invalid(
                    where, f"unknown key {sorted(unknown)[0]!r} (a step has name, query)"
                )
            query = _query(item.get("query"), f"{where}.query")
            name = item.get("name", query.text)
            if not isinstance(name, str) or not name.strip():
                raise _Invalid(f"{where}.name", "takes text")
            steps.append(Step(name.strip(), query))
        else:
            raise _Invalid(where, "takes a query, or a mapping with name and query")
    return tuple(steps)


def parse_metric(raw: Any, source: str = "") -> Metric:
    """One definition (a mapping) -> :class:`Metric`; :class:`ValueError` carries a
    :class:`DefinitionError`-ready ``field`` and ``message`` (see :func:`load_definitions`)."""
    if not isinstance(raw, dict):
        raise _Invalid(None, f"a metric is a mapping of {', '.join(FIELDS)}; got {raw!r}")
    for key in raw:
        if key not in FIELDS:
            close = difflib.get_close_matches(str(key), list(FIELDS), n=1, cutoff=0.6)
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            raise _Invalid(str(key), f"unknown key{hint}; keys are {', '.join(FIELDS)}")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise _Invalid("name", "required: letters, digits, - _ . (up to 100 characters)")
    description = raw.get("description") or ""
    if not isinstance(description, str):
        raise _Invalid("description", "takes text")
    unit = raw.get("unit")
    if unit not in UNITS:
        raise _Invalid(
            "unit",
            f"required, one of {', '.join(UNITS)}; got {unit!r}"
            if unit is not None
            else f"required, one of {', '.join(UNITS)}",
        )
    numerator = denominator = None
    steps: tuple[Step, ...] = ()
    if "steps" in raw:
        for side in ("numerator", "denominator"):
            if side in raw:
                raise _Invalid(side, "a funnel (steps) has no numerator or denominator")
        if unit == "event":
            raise _Invalid(
                "unit",
                "a funnel follows units through its steps; use session, pageview, "
                "funnel_entry_token or subject, not event",
            )
        steps = _steps(raw["steps"])
    else:
        for side in ("numerator", "denominator"):
            if side not in raw:
                raise _Invalid(side, "required (or steps, for a funnel)")
        numerator = _query(raw["numerator"], "numerator")
        denominator = _query(raw["denominator"], "denominator")
    where = _query(raw["where"], "where") if raw.get("where") is not None else None
    experiment = raw.get("experiment")
    if experiment is not None and (not isinstance(experiment, str) or not experiment.strip()):
        raise _Invalid("experiment", "takes an experiment name (experiment.enrolled)")
    by = parse_by(raw.get("by"))
    valid_only = _bool(raw.get("valid_only", True), "valid_only")
    return Metric(
        name=name,
        unit=unit,
        description=description.strip(),
        numerator=numerator,
        denominator=denominator,
        steps=steps,
        where=where,
        experiment=experiment.strip() if experiment else None,
        by=by,
        valid_only=valid_only,
        source=source,
    )


def default_metric_dirs() -> list[Path]:
    """The checkout's ``metrics/`` directory (beside ``instruments/``) when there is one."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file():
            candidate = parent / "metrics"
            return [candidate] if candidate.is_dir() else []
    return []


def _files(location: Path) -> list[Path]:
    if location.is_dir():
        return sorted(
            p for p in location.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()
        )
    return [location]


def _display(path: Path) -> str:
    """The path as errors and screens show it: relative to the working directory when it
    is inside it, else as given."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_file(path: Path) -> tuple[list[Any], DefinitionError | None]:
    shown = _display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [], DefinitionError(shown, f"cannot be read: {exc}")
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        return [], DefinitionError(shown, f"is not valid YAML{where}: {problem}")
    if data is None:
        return [], None
    if isinstance(data, dict) and "metrics" in data and "name" not in data:
        data = data["metrics"]
        if not isinstance(data, list):
            return [], DefinitionError(shown, "takes a list of metrics", field="metrics")
    if isinstance(data, dict):
        return [data], None
    if isinstance(data, list):
        return data, None
    return [], DefinitionError(shown, "holds neither a metric (a mapping) nor a list of them")


def load_definitions(locations: Iterable[str | Path]) -> Definitions:
    """Read every ``*.yaml`` / ``*.yml`` of each directory (or each file) in order.

    A metric defined again by a later location replaces the earlier one (your own
    directory can redefine an example); two of the same name in one location is an error.
    """
    out = Definitions()
    by_name: dict[str, int] = {}
    for location in locations:
        location = Path(location)
        if not location.exists():
            out.errors.append(DefinitionError(_display(location), "does not exist"))
            continue
        out.sources.append(_display(location))
        seen_here: dict[str, str] = {}
        for path in _files(location):
            items, problem = _read_file(path)
            if problem is not None:
                out.errors.append(problem)
            shown = _display(path)
            for i, raw in enumerate(items, 1):
                label = raw.get("name") if isinstance(raw, dict) else None
                metric_label = str(label) if label else (f"[{i}]" if len(items) > 1 else None)
                try:
                    metric = parse_metric(raw, shown)
                except _Invalid as exc:
                    out.errors.append(DefinitionError(shown, exc.message, exc.field, metric_label))
                    continue
                if metric.name in seen_here:
                    out.errors.append(
                        DefinitionError(
                            shown,
                            f"defined twice: also in {seen_here[metric.name]}",
                            "name",
                            metric.name,
                        )
                    )
                    continue
                seen_here[metric.name] = shown
                if metric.name in by_name:
                    out.metrics[by_name[metric.name]] = metric
                else:
                    by_name[metric.name] = len(out.metrics)
                    out.metrics.append(metric)
    return out
