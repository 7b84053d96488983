"""Instrument definitions: load, validate and look up (the format is documented, with a
commented example, in ``instruments/README.md``).

One file holds one definition (a mapping) or a list of them; a folder holds ``*.yaml``,
``*.yml`` and ``*.json`` files (not its subfolders, so ``instruments/fixtures/`` is never
read as definitions), exactly the files ``--instruments DIR`` serves at
``/api/v1/instruments`` (:mod:`mpsandbox.testkitchen`). Test Kitchen's row fields are
accepted as they are, so a plain Test Kitchen row is a definition without expectations.

A definition that cannot be used is never an exception: :func:`load_location` returns the
good definitions and a :class:`Problem` for each mistake, with the file, the line (YAML),
the path inside the file (``expects[2].count.min``) and what is wrong.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any

from mpsandbox.platform.experiments import EVENT_SAMPLING_UNITS

#: Interaction fields an expectation may constrain by name, beside ``action`` (web/base and
#: app/base spell them so). Each picks the events the expectation is about.
INTERACTION_FIELDS: tuple[str, ...] = (
    "action_source",
    "action_subtype",
    "action_context",
    "element_id",
    "element_friendly_name",
    "funnel_name",
    "funnel_entry_token",
    "instrument_name",
)

#: What ``count.per`` and ``after.per`` group events by, and where each key is read.
#: ``subject`` is the experiment subject (see :func:`mpsandbox.instruments.checks.subject_key`).
UNITS: dict[str, tuple[str, ...] | None] = {
    "total": None,
    "session": ("performer", "session_id"),
    "pageview": ("performer", "pageview_id"),
    "device": ("agent", "app_install_id"),
    "funnel": ("funnel_entry_token",),
    "subject": None,
}

#: Test Kitchen's instrument row fields (``GET /api/v1/instruments``).
TEST_KITCHEN_FIELDS = (
    "start",
    "end",
    "sample_unit",
    "sample_rate",
    "sample",
    "contextual_attributes",
)
#: Columns of Test Kitchen's ``instruments`` table that rows exported from it may carry;
#: accepted and ignored.
TEST_KITCHEN_EXTRA = (
    "id",
    "slug",
    "creator",
    "owner",
    "purpose",
    "created_at",
    "updated_at",
    "utc_start_dt",
    "utc_end_dt",
    "task",
    "risk_level",
    "environments",
    "security_legal_review",
    "status",
    "was_activated",
    "schema_type",
    "email_address",
    "type",
    "variants",
)
DEFINITION_KEYS = (
    "name",
    "description",
    "stream",
    "stream_name",
    "schema",
    "schema_title",
    "experiment",
    "match",
    "expects",
    "fixture",
    *TEST_KITCHEN_FIELDS,
)
EXPECTATION_KEYS = (
    "id",
    "description",
    "action",
    *INTERACTION_FIELDS,
    "required",
    "values",
    "count",
    "funnel",
    "after",
)
CONSTRAINT_KINDS = ("equals", "one_of", "regex")
DEFINITION_SUFFIXES = (".yaml", ".yml", ".json")

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One mistake in a definition file."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "")
        return f"{where}: {self.path + ': ' if self.path else ''}{self.message}"


# --- values and constraints --------------------------------------------------------------


def split_field(path: str) -> tuple[str, ...]:
    """``performer.session_id`` -> ``("performer", "session_id")``."""
    return tuple(path.split("."))


_MISSING = object()


def lookup(event: Any, path: tuple[str, ...]) -> tuple[bool, Any]:
    """(present, value) of a field; a field inside a non-object is missing."""
    node = event
    for part in path:
        if type(node) is not dict:
            return False, None
        node = node.get(part, _MISSING)
        if node is _MISSING:
            return False, None
    return True, node


def is_empty(value: Any) -> bool:
    """What ``required`` refuses besides absence: null, "", [] and {}."""
    return value is None or value == "" or value == [] or value == {}


def same_value(a: Any, b: Any) -> bool:
    """JSON equality: ``true`` is not ``1`` (Python says it is), ``1`` is ``1.0``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def show(value: Any) -> str:
    """A value as messages show it: Python's repr for text (``'menu'``), JSON otherwise."""
    if isinstance(value, str):
        text = repr(value)
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, sort_keys=True)
        except (TypeError, ValueError):
            text = repr(value)
    return text if len(text) <= 120 else text[:117] + "…"


@dataclass(frozen=True)
class Constraint:
    """What a field's value must be: ``equals`` a value, ``one_of`` a list, or match a
    ``regex`` (Python's ``re.search``, as JSON Schema's ``pattern`` searches)."""

    kind: str
    value: Any
    pattern: re.Pattern | None = field(default=None, compare=False, repr=False)

    def test(self, present: bool, value: Any) -> bool:
        if not present:
            return False
        if self.kind == "equals":
            return same_value(value, self.value)
        if self.kind == "one_of":
            return any(same_value(value, v) for v in self.value)
        assert self.pattern is not None
        return isinstance(value, str) and self.pattern.search(value) is not None

    def describe(self) -> str:
        if self.kind == "equals":
            return show(self.value)
        if self.kind == "one_of":
            return "one of [" + ", ".join(show(v) for v in self.value) + "]"
        return f"a match for /{self.value}/"

    def mismatch(self, name: str, present: bool, value: Any) -> str:
        """``action_source was 'menu', expected one of ['toolbar']``."""
        if not present:
            return f"{name} is missing, expected {self.describe()}"
        return f"{name} was {show(value)}, expected {self.describe()}"


_VERSION_RE = re.compile(r"(>=|<=|==|=|>|<)?\s*v?(\d+(?:\.\d+){0,2})(?:\.[x*])?")


def _parts(version: str) -> tuple[int, ...] | None:
    m = re.fullmatch(r"v?(\d+)(?:\.(\d+))?(?:\.(\d+))?", version.strip())
    if m is None:
        return None
    return tuple(int(g) for g in m.groups() if g is not None)


@dataclass(frozen=True)
class VersionRange:
    """Schema versions: ``1.3.0`` (exactly), ``1.3`` or ``1.3.x`` (any 1.3.z), ``>=1.3.0``,
    ``>=1.2.0 <2.0.0`` (every clause must hold; commas work too), ``*`` (any)."""

    text: str
    clauses: tuple[tuple[str, tuple[int, ...]], ...]

    def contains(self, version: str | None) -> bool:
        if not self.clauses:
            return True
        parts = _parts(version or "")
        if parts is None:
            return False
        full = (*parts, 0, 0, 0)[:3]
        for op, bound in self.clauses:
            b = (*bound, 0, 0, 0)[:3]
            if op == "prefix":
                if parts[: len(bound)] != bound:
                    return False
            elif (
                (op == "==" and full != b)
                or (op == ">=" and full < b)
                or (op == ">" and full <= b)
                or (op == "<=" and full > b)
                or (op == "<" and full >= b)
            ):
                return False
        return True


def parse_version_range(text: str) -> VersionRange:
    """Raise ValueError naming the clause that is not a version."""
    clauses: list[tuple[str, tuple[int, ...]]] = []
    for token in re.split(r"[\s,]+", text.strip()):
        if token in ("", "*", "x", "latest"):
            if token == "latest":
                raise ValueError("'latest' is not a version range; give one, e.g. '>=1.3.0'")
            continue
        m = _VERSION_RE.fullmatch(token)
        if m is None:
            raise ValueError(
                f"{token!r} is not a version or a comparison such as '>=1.3.0' or '<2'"
            )
        op, number = m.group(1), m.group(2)
        bound = tuple(int(x) for x in number.split("."))
        if op is None:
            op = "==" if len(bound) == 3 and not token.endswith(("x", "*")) else "prefix"
        clauses.append(("==" if op == "=" else op, bound))
    return VersionRange(text.strip(), tuple(clauses))


# --- the model ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SchemaSpec:
    title: str
    version: VersionRange | None = None

    def describe(self) -> str:
        return self.title + (f" {self.version.text}" if self.version else "")


@dataclass(frozen=True)
class ExperimentSpec:
    """The Test Kitchen experiment the instrument's events belong to (``experiment.enrolled``)."""

    name: str
    groups: tuple[str, ...] = ()
    sampling_unit: str | None = None


@dataclass(frozen=True)
class Count:
    """How many matching events: at least ``min`` and at most ``max``, in total or per
    session, pageview, device, funnel (entry token) or experiment subject."""

    min: int | None
    max: int | None
    per: str = "total"

    def describe(self) -> str:
        if self.min is not None and self.min == self.max:
            text = f"exactly {self.min}"
        elif self.min is not None and self.max is not None:
            text = f"{self.min} to {self.max}"
        elif self.min is not None:
            text = f"at least {self.min}"
        else:
            text = f"at most {self.max}"
        return text + (" in total" if self.per == "total" else f" per {self.per}")


@dataclass(frozen=True)
class FunnelStep:
    """The step ``funnel_event_sequence_position == step`` of the funnel ``funnel_name ==
    name``; steps of one funnel (one ``funnel_entry_token``) must come in order by ``dt``."""

    name: str
    step: int


@dataclass(frozen=True)
class After:
    """Every matching event comes after (by ``dt``) an event of expectation ``expect`` with
    the same ``per`` key: the experiment's exposure before its conversion."""

    expect: str
    per: str


@dataclass(frozen=True)
class Expectation:
    id: str
    index: int
    action: Constraint
    #: The other interaction fields that pick the events (name, constraint).
    fields: tuple[tuple[str, Constraint], ...] = ()
    required: tuple[str, ...] = ()
    values: tuple[tuple[str, Constraint], ...] = ()
    count: Count | None = None
    funnel: FunnelStep | None = None
    after: After | None = None
    description: str | None = None
    line: int | None = None

    @cached_property
    def identity(self) -> tuple[tuple[str, Constraint], ...]:
        """Every (field, constraint) an event must meet to be one of this expectation's."""
        out = [("action", self.action), *self.fields]
        if self.funnel is not None:
            out.append(("funnel_name", Constraint("equals", self.funnel.name)))
            out.append(("funnel_event_sequence_position", Constraint("equals", self.funnel.step)))
        return tuple(out)

    @cached_property
    def identity_paths(self) -> tuple[tuple[tuple[str, ...], Constraint], ...]:
        """:attr:`identity` with each field split into its path (judging runs it a lot)."""
        return tuple((split_field(name), c) for name, c in self.identity)

    def picks(self, event: Any) -> bool:
        """Whether ``event`` is one of this expectation's (meets every identity field)."""
        for path, c in self.identity_paths:
            present, value = lookup(event, path)
            if not c.test(present, value):
                return False
        return True

    @property
    def title(self) -> str:
        """A one-line summary: ``click [action_source='toolbar'] (exactly 1 per pageview)``."""
        if self.description:
            return self.description
        head = self.action.describe() if self.action.kind != "equals" else str(self.action.value)
        parts = [f"{name}={c.describe()}" for name, c in self.fields]
        if self.funnel is not None:
            parts.insert(0, f"funnel {self.funnel.name} step {self.funnel.step}")
        text = head + (f" [{', '.join(parts)}]" if parts else "")
        if self.count is not None:
            text += f" ({self.count.describe()})"
        if self.after is not None:
            text += f" after {self.after.expect}"
        return text


@dataclass
class Definition:
    name: str
    stream: str
    description: str | None = None
    schema: SchemaSpec | None = None
    experiment: ExperimentSpec | None = None
    #: Further fields that pick the instrument's events out of its stream.
    match: tuple[tuple[str, Constraint], ...] = ()
    expects: tuple[Expectation, ...] = ()
    file: Path | None = None
    line: int | None = None
    #: An event file that satisfies this definition (``fixture:``, relative to the file).
    fixture: Path | None = None
    #: The mapping as written (Test Kitchen's row is built from it).
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @cached_property
    def match_paths(self) -> tuple[tuple[tuple[str, ...], Constraint], ...]:
        return tuple((split_field(name), c) for name, c in self.match)

    def expectation(self, expect_id: str) -> Expectation | None:
        for x in self.expects:
            if x.id == expect_id:
                return x
        return None

    def testkitchen_row(self) -> dict[str, Any]:
        """This definition as ``GET /api/v1/instruments`` serves it."""
        from mpsandbox.testkitchen import instrument_row

        return instrument_row(self.raw, str(self.file or self.name))


@dataclass
class Library:
    """Definitions loaded from files, and every problem found on the way."""

    definitions: list[Definition] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    #: Where they were looked for (a folder or a file), when known.
    location: Path | None = None

    def names(self) -> list[str]:
        return [d.name for d in self.definitions]

    def get(self, name: str) -> Definition | None:
        for d in self.definitions:
            if d.name == name:
                return d
        return None

    def streams(self) -> list[str]:
        return sorted({d.stream for d in self.definitions})

    def extend(self, other: Library) -> None:
        for d in other.definitions:
            if self.get(d.name) is None:
                self.definitions.append(d)
        self.problems += [p for p in other.problems if p not in self.problems]
        self.files += [f for f in other.files if f not in self.files]


# --- parsing -----------------------------------------------------------------------------


def _format_path(path: Path_) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def _line_of(node: Any, path: Path_) -> int | None:
    """The line of the deepest YAML node along ``path`` (1-based), None without a node."""
    import yaml

    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in path:
        nxt = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    nxt = value
                    break
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(part, int)
            and 0 <= part < len(node.value)
        ):
            nxt = node.value[part]
        if nxt is None:
            break
        node = nxt
        line = node.start_mark.line + 1
    return line


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Parser:
    def __init__(self, file: Path, node: Any = None) -> None:
        self.file = file
        self.node = node
        self.problems: list[Problem] = []

    def problem(self, path: Path_, message: str) -> None:
        self.problems.append(
            Problem(str(self.file), _line_of(self.node, path), _format_path(path), message)
        )

    def line(self, path: Path_) -> int | None:
        return _line_of(self.node, path)

    # -- pieces ------------------------------------------------------------------------------
    def unknown_keys(self, data: dict, allowed: Iterable[str], path: Path_, what: str) -> None:
        allowed = tuple(allowed)
        for key in data:
            if key not in allowed:
                hint = _suggest(str(key), allowed)
                if key == "funnel_event_sequence_position":
                    hint = " (give the step as funnel: {name: ..., step: N})"
                self.problem((*path, str(key)), f"unknown key in {what}{hint}")

    def text(self, data: dict, key: str, path: Path_, *, required: bool = False) -> str | None:
        value = data.get(key)
        if value is None:
            if required:
                self.problem(path, f"{key}: missing (a non-empty text)")
            return None
        if not isinstance(value, str) or not value.strip():
            self.problem((*path, key), f"must be a non-empty text, got {show(value)}")
            return None
        return value

    def constraint(self, value: Any, path: Path_) -> Constraint | None:
        scalar = (str, int, float, bool)
        if isinstance(value, list):
            if not value:
                self.problem(path, "an empty list matches nothing; list the allowed values")
                return None
            if not all(isinstance(v, scalar) for v in value):
                self.problem(path, "a list of allowed values holds texts, numbers or booleans")
                return None
            return Constraint("one_of", tuple(value))
        if isinstance(value, dict):
            kinds = [k for k in value if k in CONSTRAINT_KINDS]
            extra = [k for k in value if k not in CONSTRAINT_KINDS]
            if extra or len(kinds) != 1:
                self.problem(
                    path,
                    "a constraint is a value, a list (one of), or one of {equals: V}, "
                    "{one_of: [...]}, {regex: '...'}"
                    + (
                        f"; unknown key {extra[0]!r}{_suggest(str(extra[0]), CONSTRAINT_KINDS)}"
                        if extra
                        else ""
                    ),
                )
                return None
            kind = kinds[0]
            if kind == "equals":
                return self.constraint_scalar(value["equals"], (*path, "equals"))
            if kind == "one_of":
                if not isinstance(value["one_of"], list):
                    self.problem((*path, "one_of"), "must be a list of allowed values")
                    return None
                return self.constraint(value["one_of"], (*path, "one_of"))
            pattern = value["regex"]
            if not isinstance(pattern, str):
                self.problem((*path, "regex"), f"must be a text, got {show(pattern)}")
                return None
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                self.problem((*path, "regex"), f"not a regular expression: {exc}")
                return None
            return Constraint("regex", pattern, compiled)
        return self.constraint_scalar(value, path)

    def constraint_scalar(self, value: Any, path: Path_) -> Constraint | None:
        if value is None:
            self.problem(path, "null matches nothing: give a value, or leave the field out")
            return None
        if not isinstance(value, (str, int, float, bool)):
            self.problem(path, f"must be a text, number or boolean, got {show(value)}")
            return None
        return Constraint("equals", value)

    def field_path(self, value: Any, path: Path_) -> str | None:
        if (
            not isinstance(value, str)
            or not value.strip()
            or value.startswith(".")
            or (value.endswith(".") or ".." in value)
        ):
            self.problem(
                path, f"must be a dotted field path such as performer.session_id, got {show(value)}"
            )
            return None
        return value

    def unit(self, value: Any, path: Path_) -> str | None:
        if value not in UNITS:
            self.problem(
                path,
                f"must be one of {', '.join(UNITS)}, got {show(value)}"
                + (_suggest(value, UNITS) if isinstance(value, str) else ""),
            )
            return None
        return value

    def whole(self, value: Any, path: Path_, minimum: int = 0) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.problem(path, f"must be a whole number >= {minimum}, got {show(value)}")
            return None
        return value

    # -- sections ------------------------------------------------------------------------------
    def schema(self, data: dict, path: Path_) -> SchemaSpec | None:
        raw = data.get("schema", data.get("schema_title"))
        key = "schema" if "schema" in data else "schema_title"
        if raw is None:
            return None
        if isinstance(raw, str) and raw.strip():
            return SchemaSpec(raw.strip().strip("/"))
        if not isinstance(raw, dict):
            self.problem((*path, key), "must be a schema title, or {title: ..., version: ...}")
            return None
        self.unknown_keys(raw, ("title", "version"), (*path, key), "schema")
        title = self.text(raw, "title", (*path, key), required=True)
        version = None
        if raw.get("version") is not None:
            text = raw["version"]
            if isinstance(text, (int, float)) and not isinstance(text, bool):
                text = str(text)
            if not isinstance(text, str):
                self.problem(
                    (*path, key, "version"),
                    f"must be a text such as '>=1.3.0', got {show(raw['version'])}",
                )
            else:
                try:
                    version = parse_version_range(text)
                except ValueError as exc:
                    self.problem((*path, key, "version"), str(exc))
        return SchemaSpec(title.strip().strip("/"), version) if title else None

    def experiment(self, raw: Any, path: Path_) -> ExperimentSpec | None:
        if raw is None:
            return None
        if isinstance(raw, str) and raw.strip():
            return ExperimentSpec(raw.strip())
        if not isinstance(raw, dict):
            self.problem(path, "must be an experiment name, or {name, groups, sampling_unit}")
            return None
        self.unknown_keys(raw, ("name", "groups", "sampling_unit"), path, "experiment")
        name = self.text(raw, "name", path, required=True)
        groups: tuple[str, ...] = ()
        if raw.get("groups") is not None:
            g = raw["groups"]
            if not isinstance(g, list) or not g or not all(isinstance(x, str) and x for x in g):
                self.problem((*path, "groups"), "must be a non-empty list of group names")
            else:
                groups = tuple(g)
        unit = raw.get("sampling_unit")
        if unit is not None and unit not in EVENT_SAMPLING_UNITS:
            self.problem(
                (*path, "sampling_unit"),
                f"must be one of {', '.join(EVENT_SAMPLING_UNITS)}, got {show(unit)}",
            )
            unit = None
        return ExperimentSpec(name, groups, unit) if name else None

    def constraints_map(self, raw: Any, path: Path_, what: str) -> tuple:
        if raw is None:
            return ()
        if not isinstance(raw, dict):
            self.problem(path, f"{what} is a mapping of field paths to constraints")
            return ()
        out = []
        for key, value in raw.items():
            name = self.field_path(key, (*path, str(key)))
            c = self.constraint(value, (*path, str(key)))
            if name and c:
                out.append((name, c))
        return tuple(out)

    def count(self, raw: Any, path: Path_) -> Count | None:
        if raw is None:
            return None
        if isinstance(raw, int) and not isinstance(raw, bool):
            n = self.whole(raw, path)
            return None if n is None else Count(n, n)
        if not isinstance(raw, dict):
            self.problem(
                path, "must be a number (exactly that many in total) or {min, max, exactly, per}"
            )
            return None
        self.unknown_keys(raw, ("min", "max", "exactly", "per"), path, "count")
        lo = hi = None
        if "exactly" in raw:
            if "min" in raw or "max" in raw:
                self.problem(path, "give exactly, or min and/or max, not both")
            lo = hi = self.whole(raw["exactly"], (*path, "exactly"))
        else:
            if "min" in raw:
                lo = self.whole(raw["min"], (*path, "min"))
            if "max" in raw:
                hi = self.whole(raw["max"], (*path, "max"))
            if "min" not in raw and "max" not in raw:
                self.problem(path, "needs min, max or exactly")
                return None
        per = self.unit(raw.get("per", "total"), (*path, "per")) or "total"
        if lo is not None and hi is not None and lo > hi:
            self.problem(path, f"min {lo} is more than max {hi}")
            return None
        if lo is None and hi is None:
            return None
        return Count(lo, hi, per)

    def funnel(self, raw: Any, path: Path_) -> FunnelStep | None:
        if raw is None:
            return None
        if not isinstance(raw, dict):
            self.problem(path, "must be {name: FUNNEL_NAME, step: N}")
            return None
        self.unknown_keys(raw, ("name", "step"), path, "funnel")
        name = self.text(raw, "name", path, required=True)
        if "step" not in raw:
            self.problem(path, "step: missing (the funnel_event_sequence_position, from 1)")
            return None
        step = self.whole(raw["step"], (*path, "step"), minimum=1)
        return FunnelStep(name, step) if name and step else None

    def after(self, raw: Any, path: Path_, default_per: str) -> After | None:
        if raw is None:
            return None
        if isinstance(raw, str) and raw:
            return After(raw, default_per)
        if not isinstance(raw, dict):
            self.problem(path, "must be an expectation id, or {expect: ID, per: UNIT}")
            return None
        self.unknown_keys(raw, ("expect", "per"), path, "after")
        expect = self.text(raw, "expect", path, required=True)
        per = self.unit(raw.get("per", default_per), (*path, "per")) or default_per
        if per == "total":
            self.problem((*path, "per"), "after needs a unit to compare within, not total")
            return None
        return After(expect, per) if expect else None

    def expectation(
        self, raw: Any, path: Path_, index: int, default_per: str
    ) -> Expectation | None:
        if not isinstance(raw, dict):
            self.problem(path, "an expectation is a mapping with at least an action")
            return None
        self.unknown_keys(raw, EXPECTATION_KEYS, path, "an expectation")
        if "action" not in raw:
            self.problem(path, "action: missing (the action this interaction sends)")
            return None
        action = self.constraint(raw["action"], (*path, "action"))
        fields = []
        for name in INTERACTION_FIELDS:
            if name in raw:
                c = self.constraint(raw[name], (*path, name))
                if c is not None:
                    fields.append((name, c))
        required: list[str] = []
        req = raw.get("required")
        if isinstance(req, str):
            req = [req]
        if req is not None and not isinstance(req, list):
            self.problem((*path, "required"), "must be a list of field paths")
        elif req:
            for i, item in enumerate(req):
                name = self.field_path(item, (*path, "required", i))
                if name:
                    required.append(name)
        values = self.constraints_map(raw.get("values"), (*path, "values"), "values")
        count = self.count(raw.get("count"), (*path, "count"))
        funnel = self.funnel(raw.get("funnel"), (*path, "funnel"))
        if funnel is not None and "funnel_name" in raw:
            self.problem((*path, "funnel_name"), "give the funnel's name once, in funnel.name")
        after = self.after(raw.get("after"), (*path, "after"), default_per)
        expect_id = raw.get("id")
        if expect_id is not None and (not isinstance(expect_id, str) or not expect_id.strip()):
            self.problem((*path, "id"), f"must be a non-empty text, got {show(expect_id)}")
            expect_id = None
        description = self.text(raw, "description", path)
        if action is None:
            return None
        if expect_id is None:
            expect_id = str(action.value) if action.kind == "equals" else f"expectation-{index + 1}"
            if funnel is not None:
                expect_id = f"{funnel.name}-step-{funnel.step}"
        return Expectation(
            id=expect_id,
            index=index,
            action=action,
            fields=tuple(fields),
            required=tuple(required),
            values=values,
            count=count,
            funnel=funnel,
            after=after,
            description=description,
            line=self.line(path),
        )

    def definition(self, raw: Any, path: Path_) -> Definition | None:
        if not isinstance(raw, dict):
            self.problem(
                path, "an instrument definition is a mapping (name, stream, schema, expects)"
            )
            return None
        self.unknown_keys(raw, (*DEFINITION_KEYS, *TEST_KITCHEN_EXTRA), path, "a definition")
        before = len(self.problems)
        name = self.text(raw, "name", path, required=True)
        stream_key = "stream" if "stream" in raw else "stream_name"
        stream = self.text(raw, stream_key, path)
        if stream is None and raw.get(stream_key) is None:
            self.problem(path, "stream: missing (the stream the instrument's events go to)")
        description = self.text(raw, "description", path)
        schema = self.schema(raw, path)
        experiment = self.experiment(raw.get("experiment"), (*path, "experiment"))
        match = self.constraints_map(raw.get("match"), (*path, "match"), "match")
        self._test_kitchen(raw, path)
        fixture = None
        if raw.get("fixture") is not None:
            f = raw["fixture"]
            if not isinstance(f, str) or not f:
                self.problem((*path, "fixture"), "must be a path to an event file")
            else:
                fixture = (self.file.parent / f) if not Path(f).is_absolute() else Path(f)
        expects: list[Expectation] = []
        raw_expects = raw.get("expects")
        default_per = "subject" if experiment is not None else "session"
        if raw_expects is not None and not isinstance(raw_expects, list):
            self.problem((*path, "expects"), "must be a list of expectations")
        elif raw_expects:
            for i, item in enumerate(raw_expects):
                x = self.expectation(item, (*path, "expects", i), i, default_per)
                if x is not None:
                    expects.append(x)
        expects = self._unique_ids(expects, raw_expects, path)
        ids = {x.id for x in expects}
        for x in expects:
            if x.after is not None:
                where = (*path, "expects", x.index, "after")
                if x.after.expect == x.id:
                    self.problem(where, "an expectation cannot come after itself")
                elif x.after.expect not in ids:
                    self.problem(
                        where,
                        f"no expectation with id {x.after.expect!r}"
                        f"{_suggest(x.after.expect, ids)}; ids: {', '.join(sorted(ids))}",
                    )
        if len(self.problems) > before or name is None or stream is None:
            return None
        return Definition(
            name=name,
            stream=stream,
            description=description,
            schema=schema,
            experiment=experiment,
            match=match,
            expects=tuple(expects),
            file=self.file,
            line=self.line(path),
            fixture=fixture,
            raw=dict(raw),
        )

    def _unique_ids(self, expects: list[Expectation], raw: Any, path: Path_) -> list[Expectation]:
        """Explicit ids must differ; a generated one gets -2, -3... when it repeats."""
        seen: set[str] = set()
        out = []
        for x in expects:
            explicit = (
                isinstance(raw, list) and isinstance(raw[x.index], dict) and ("id" in raw[x.index])
            )
            expect_id = x.id
            if expect_id in seen:
                if explicit:
                    self.problem(
                        (*path, "expects", x.index, "id"),
                        f"id {expect_id!r} is used by another expectation",
                    )
                n = 2
                while f"{x.id}-{n}" in seen:
                    n += 1
                expect_id = f"{x.id}-{n}"
            seen.add(expect_id)
            out.append(x if expect_id == x.id else _replace_id(x, expect_id))
        return out

    def _test_kitchen(self, raw: dict, path: Path_) -> None:
        for key in ("start", "end"):
            v = raw.get(key)
            if v is not None and not isinstance(v, (str, date)):
                self.problem((*path, key), f"must be an ISO-8601 date-time, got {show(v)}")
        unit = raw.get("sample_unit")
        if unit is not None and not isinstance(unit, str):
            self.problem((*path, "sample_unit"), f"must be a text, got {show(unit)}")
        rate = raw.get("sample_rate")
        if rate is not None and not (
            _is_rate(rate)
            or (
                isinstance(rate, dict)
                and _is_rate(rate.get("default"))
                and all(k == "default" or isinstance(v, list) for k, v in rate.items())
            )
        ):
            self.problem(
                (*path, "sample_rate"),
                "must be a rate from 0 to 1, or Test Kitchen's {default: RATE, 'RATE': [wikis]}",
            )
        sample = raw.get("sample")
        if sample is not None and not (
            isinstance(sample, dict) and (sample.get("rate") is None or _is_rate(sample["rate"]))
        ):
            self.problem((*path, "sample"), "must be {unit: ..., rate: 0..1}")
        attrs = raw.get("contextual_attributes")
        if attrs is not None and (
            not isinstance(attrs, list) or not all(isinstance(a, str) for a in attrs)
        ):
            self.problem((*path, "contextual_attributes"), "must be a list of attribute names")


def _is_rate(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1


def _replace_id(x: Expectation, new_id: str) -> Expectation:
    from dataclasses import replace

    return replace(x, id=new_id)


# --- files and folders -------------------------------------------------------------------


def _read(path: Path) -> tuple[Any, Any, Problem | None]:
    """(data, YAML node or None, problem)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, None, Problem(str(path), None, "", f"cannot read: {exc}")
    if path.suffix == ".json":
        try:
            return json.loads(text), None, None
        except json.JSONDecodeError as exc:
            return None, None, Problem(str(path), exc.lineno, "", f"not JSON: {exc.msg}")
    import yaml  # deferred: only YAML definitions need it

    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        message = " ".join(str(x) for x in (exc.context, exc.problem) if x)
        return None, None, Problem(str(path), line, "", f"not YAML: {message}")
    except yaml.YAMLError as exc:
        return None, None, Problem(str(path), None, "", f"not YAML: {exc}")
    return data, node, None


def parse_data(data: Any, file: Path, node: Any = None) -> tuple[list[Definition], list[Problem]]:
    """Definitions from already-read data (one mapping, a list of them, or Test Kitchen's
    ``{"instruments": [...]}``)."""
    p = _Parser(file, node)
    definitions: list[Definition] = []
    if data is None:
        return [], []
    if isinstance(data, dict) and isinstance(data.get("instruments"), list):
        items = [(("instruments", i), item) for i, item in enumerate(data["instruments"])]
    elif isinstance(data, list):
        items = [((i,), item) for i, item in enumerate(data)]
    else:
        items = [((), data)]
    for path, item in items:
        d = p.definition(item, path)
        if d is not None:
            definitions.append(d)
    return definitions, p.problems


def load_file(path: str | Path) -> Library:
    path = Path(path)
    data, node, problem = _read(path)
    lib = Library(files=[path], location=path)
    if problem is not None:
        lib.problems.append(problem)
        return lib
    lib.definitions, lib.problems = parse_data(data, path, node)
    return lib


def definition_files(folder: Path) -> list[Path]:
    """The files of a folder that hold definitions (as ``--instruments DIR`` serves them)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in DEFINITION_SUFFIXES)


def load_location(location: str | Path) -> Library:
    """Every definition of a file or a folder; duplicate names are problems."""
    path = Path(location)
    lib = Library(location=path)
    if path.is_dir():
        files = definition_files(path)
    elif path.is_file():
        files = [path]
    else:
        lib.problems.append(Problem(str(path), None, "", "no such file or folder"))
        return lib
    seen: dict[str, Definition] = {}
    for f in files:
        one = load_file(f)
        lib.files.append(f)
        lib.problems += one.problems
        for d in one.definitions:
            if d.name in seen:
                other = seen[d.name]
                lib.problems.append(
                    Problem(
                        str(f),
                        d.line,
                        "name",
                        f"{d.name!r} is also defined in "
                        f"{other.file}{':' + str(other.line) if other.line else ''}",
                    )
                )
                continue
            seen[d.name] = d
            lib.definitions.append(d)
    return lib


def checkout_instruments() -> Path | None:
    """``instruments/`` of the mpsandbox checkout this code runs from, if there is one."""
    here = Path(__file__).resolve().parents[3] / "instruments"
    return here if here.is_dir() else None


def default_location(configured: str | Path | None = None) -> Path | None:
    """Where definitions are looked for: ``--instruments``, else ``./instruments``, else the
    mpsandbox checkout's ``instruments/`` (its examples)."""
    if configured:
        return Path(configured)
    local = Path("instruments")
    if local.is_dir():
        return local
    return checkout_instruments()


def resolve(targets: Iterable[str], library: str | Path | None = None) -> Library:
    """The definitions ``mpsandbox check`` is asked for: each target a file, a folder, or a
    name (or file stem) in the library (``library``, else :func:`default_location`). No
    targets: the whole library. Unknown names are problems listing the names there are."""
    targets = list(targets)
    where = default_location(library)
    out = Library(location=where)
    catalog: Library | None = None
    if not targets:
        if where is None:
            out.problems.append(
                Problem(
                    "instruments",
                    None,
                    "",
                    "no instruments/ folder here; give definition files or --instruments DIR",
                )
            )
            return out
        out.extend(load_location(where))
        return out
    for target in targets:
        path = Path(target)
        if path.exists():
            out.extend(load_location(path))
            continue
        if catalog is None:
            catalog = load_location(where) if where is not None else Library()
        found = catalog.get(target) or next(
            (d for d in catalog.definitions if d.file is not None and d.file.stem == target),
            None,
        )
        if found is not None:
            own = [p for p in catalog.problems if found.file and p.file == str(found.file)]
            out.extend(Library([found], own, [found.file] if found.file else []))
            continue
        names = catalog.names()
        out.problems.append(
            Problem(
                target,
                None,
                "",
                f"no such file, and no instrument of that name in {where or 'instruments/'}"
                + _suggest(target, names)
                + (f"; instruments: {', '.join(names)}" if names else ""),
            )
        )
    return out


def library_signature(location: Path | None) -> tuple:
    """Changes when a definition file is added, removed or edited (cheap: stats only)."""
    if location is None:
        return ()
    try:
        files = definition_files(location) if location.is_dir() else [location]
        return tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    except OSError:
        return ("unreadable",)
