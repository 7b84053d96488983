"""Experiments (Test Kitchen, formerly xLab): configs, assignment and enrollment strings.

An experiments file (YAML or JSON) holds a list of experiment rows; a map keyed by
experiment name, or ``{"experiments": [...]}``, is accepted too. Two row shapes are read:

Test Kitchen's API rows (``GET /api/v1/experiments``; read by TestKitchen's
``includes/ConfigsFetcher.php``)::

    {"name": "my-awesome-experiment", "start": "2026-01-01T00:00:00Z",
     "end": "2026-12-31T00:00:00Z", "user_identifier_type": "mw-user",
     "groups": ["control", "treatment"],
     "sample_rate": {"default": 0.5, "1": ["testwiki"]},   # rate -> wikis
     "sample_unit": "session",                              # optional
     "stream_name": "product_metrics.web_base",
     "schema_id": "/analytics/product_metrics/web/base/2.1.0",  # optional
     "contextual_attributes": ["page_id"], "phase_index": 0, "version": "..."}

The simple shape (this project's)::

    - name: my-awesome-experiment
      groups: [control, treatment]
      sample_rate: 0.5            # a number, or Test Kitchen's {"default": ..., rate: [wikis]}
      sampling_unit: mw-user      # or edge-unique
      stream: product_metrics.web_base          # optional
      schema: /analytics/product_metrics/web/base/2.1.0   # optional
      contextual_attributes: [page_id]          # optional
      start: 2026-01-01T00:00:00Z  # optional; end, status, phase_index, version likewise

Assignment for ``mw-user`` (TestKitchen ``UserSplitterInstrumentation.php``; PLATFORM.md §7):
``subject_id = sha256_hex(str(central_user_id) + name)``,
``h = int(subject_id[0:6], 16) / 2**24``, ``scaled = h * max(1, len(groups))``;
enrolled iff ``scaled % 1 < sample_rate``; group ``groups[int(scaled)]``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mpsandbox.errors import MpsandboxError

NAME_RE = re.compile(r"[A-Za-z0-9][-_.A-Za-z0-9]{7,62}")
GROUP_RE = re.compile(r"[A-Za-z0-9][-_.A-Za-z0-9]{0,62}")

SAMPLING_UNITS = ("mw-user", "edge-unique")
#: Values ``experiment.sampling_unit`` takes in events: the two units, ``session``
#: (accepted by the schema) and ``overridden`` (PHP SDK, overridden experiments).
EVENT_SAMPLING_UNITS = ("mw-user", "edge-unique", "session", "overridden")

SUBJECT_ID_AWAITING = "awaiting"
SUBJECT_ID_OVERRIDDEN = "overridden"
SUBJECT_ID_RE = re.compile(r"[0-9a-f]{64}")

COORDINATOR_DEFAULT = "default"
COORDINATOR_FORCED = "forced"
COORDINATORS = (COORDINATOR_DEFAULT, COORDINATOR_FORCED)

MPO_PARAM = "mpo"


class ExperimentsError(MpsandboxError, ValueError):
    """An experiments file that cannot be used; ``problems`` lists every reason."""

    def __init__(self, problems: list[str], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(where + "; ".join(self.problems))


class EnrollmentStringError(ValueError):
    """A malformed ``mpo`` value or enrollment header."""


def valid_name(name: Any) -> bool:
    return isinstance(name, str) and NAME_RE.fullmatch(name) is not None


def valid_group(group: Any) -> bool:
    return isinstance(group, str) and GROUP_RE.fullmatch(group) is not None


# --- experiment configs ---------------------------------------------------------------


@dataclass(frozen=True)
class Experiment:
    """One experiment, normalised from either row shape."""

    name: str
    groups: tuple[str, ...]
    sampling_unit: str
    default_rate: float
    #: Test Kitchen's per-wiki rates: rate -> database names
    wiki_rates: tuple[tuple[float, tuple[str, ...]], ...] = ()
    stream: str | None = None
    schema: str | None = None
    contextual_attributes: tuple[str, ...] = ()
    start: str | None = None
    end: str | None = None
    status: Any = None
    phase_index: int | None = None
    version: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def rate_for(self, wiki: str | None = None) -> float:
        """The sample rate on a wiki (by database name), else the default."""
        if wiki:
            for rate, wikis in self.wiki_rates:
                if wiki in wikis:
                    return rate
        return self.default_rate

    def active_at(self, epoch: float) -> bool | None:
        """Whether ``start <= epoch <= end``; None when no dates are known."""
        start = _epoch(self.start)
        end = _epoch(self.end)
        if start is None and end is None:
            return None
        return (start is None or start <= epoch) and (end is None or epoch <= end)


def _epoch(value: Any) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()
    if not isinstance(value, str) or not value:
        return None
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


class Experiments(Mapping[str, Experiment]):
    """Loaded experiments by name."""

    def __init__(self, experiments: list[Experiment], source: str | None = None) -> None:
        self._by_name = {e.name: e for e in experiments}
        self.source = source

    def __getitem__(self, name: str) -> Experiment:
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _parse_rates(
    value: Any, where: str, problems: list[str]
) -> tuple[float, tuple[tuple[float, tuple[str, ...]], ...]]:
    if isinstance(value, dict):
        default = _as_float(value.get("default"))
        if default is None:
            problems.append(
                f"{where}: sample_rate.default must be a number, got {value.get('default')!r}"
            )
            default = 0.0
        per_wiki: list[tuple[float, tuple[str, ...]]] = []
        for key, wikis in value.items():
            if key == "default":
                continue
            rate = _as_float(key)
            if rate is None or not isinstance(wikis, list):
                problems.append(
                    f"{where}: sample_rate entry {key!r} must map a rate to a list of wikis"
                )
                continue
            if not 0 <= rate <= 1:
                problems.append(f"{where}: sample rate {key!r} is outside 0..1")
            per_wiki.append((rate, tuple(str(w) for w in wikis)))
        rates = (default, tuple(per_wiki))
    else:
        rate = _as_float(value)
        if rate is None:
            problems.append(f"{where}: sample_rate must be a number or a map, got {value!r}")
            rate = 0.0
        rates = (rate, ())
    if not 0 <= rates[0] <= 1:
        problems.append(f"{where}: sample rate {rates[0]!r} is outside 0..1")
    return rates


def parse_experiment(row: Any, index: int = 0) -> tuple[Experiment | None, list[str]]:
    """One row in either shape -> (experiment or None, problems)."""
    problems: list[str] = []
    if not isinstance(row, dict):
        return None, [f"experiment #{index + 1}: must be an object, got {type(row).__name__}"]
    name = row.get("name")
    where = f"experiment #{index + 1} {name!r}" if name is not None else f"experiment #{index + 1}"
    if not isinstance(name, str):
        problems.append(f"{where}: name is required and must be a string")
        name = ""
    elif not valid_name(name):
        problems.append(
            f"{where}: name must match ^[A-Za-z0-9][-_.A-Za-z0-9]{{7,62}}$ "
            "(8-63 letters, digits, '-', '_' or '.', starting with a letter or digit)"
        )
    groups = row.get("groups")
    if not isinstance(groups, list) or not groups:
        problems.append(f"{where}: groups must be a non-empty list")
        groups = []
    for group in groups:
        if not valid_group(group):
            problems.append(
                f"{where}: group {group!r} must match ^[A-Za-z0-9][-_.A-Za-z0-9]{{0,62}}$"
            )
    if len(set(map(str, groups))) != len(groups):
        problems.append(f"{where}: groups must be unique")
    unit = row.get("sampling_unit", row.get("user_identifier_type", row.get("unit")))
    if unit is None:
        unit = "mw-user"
    if unit not in SAMPLING_UNITS:
        problems.append(
            f"{where}: sampling unit {unit!r} must be one of {', '.join(SAMPLING_UNITS)}"
        )
    if "sample_rate" in row:
        rate_value = row["sample_rate"]
    elif isinstance(row.get("sample"), dict):
        rate_value = row["sample"].get("rate")
    else:
        rate_value = row.get("rate", 1.0)
    default_rate, wiki_rates = _parse_rates(rate_value, where, problems)
    stream = row.get("stream", row.get("stream_name"))
    schema = row.get("schema", row.get("schema_id", row.get("schema_title")))
    attrs = row.get("contextual_attributes") or []
    if not isinstance(attrs, list) or not all(isinstance(a, str) for a in attrs):
        problems.append(f"{where}: contextual_attributes must be a list of names")
        attrs = []
    start = row.get("start", row.get("utc_start_dt"))
    end = row.get("end", row.get("utc_end_dt"))
    for label, value in (("start", start), ("end", end)):
        if value is not None and _epoch(value) is None:
            problems.append(f"{where}: {label} {value!r} is not an ISO-8601 date-time")
    phase = row.get("phase_index")
    if phase is not None and (not isinstance(phase, int) or isinstance(phase, bool)):
        problems.append(f"{where}: phase_index must be an integer")
        phase = None
    version = row.get("version")
    experiment = Experiment(
        name=name,
        groups=tuple(str(g) for g in groups),
        sampling_unit=str(unit),
        default_rate=default_rate,
        wiki_rates=wiki_rates,
        stream=stream if isinstance(stream, str) else None,
        schema=schema if isinstance(schema, str) else None,
        contextual_attributes=tuple(attrs),
        start=start if isinstance(start, str) else (str(start) if start is not None else None),
        end=end if isinstance(end, str) else (str(end) if end is not None else None),
        status=row.get("status"),
        phase_index=phase,
        version=str(version) if version is not None else None,
        raw=row,
    )
    return (None if problems else experiment), problems


def parse_experiments(data: Any, source: str | None = None) -> Experiments:
    """Parsed JSON/YAML data -> :class:`Experiments`; raises :class:`ExperimentsError`
    listing every problem."""
    if isinstance(data, dict) and isinstance(data.get("experiments"), list | dict):
        data = data["experiments"]
    if isinstance(data, dict):
        rows = []
        for key, value in data.items():
            row = dict(value) if isinstance(value, dict) else value
            if isinstance(row, dict):
                row.setdefault("name", key)
            rows.append(row)
    elif isinstance(data, list):
        rows = data
    elif data is None:
        rows = []
    else:
        raise ExperimentsError(
            [f"expected a list of experiments (or a map by name), got {type(data).__name__}"],
            source,
        )
    experiments: list[Experiment] = []
    problems: list[str] = []
    seen: set[str] = set()
    for index, row in enumerate(rows):
        experiment, row_problems = parse_experiment(row, index)
        problems.extend(row_problems)
        if experiment is not None:
            if experiment.name in seen:
                problems.append(f"experiment #{index + 1} {experiment.name!r}: duplicate name")
            seen.add(experiment.name)
            experiments.append(experiment)
    if problems:
        raise ExperimentsError(problems, source)
    return Experiments(experiments, source)


def parse_experiments_text(text: str, source: str | None = None) -> Experiments:
    """YAML or JSON text -> :class:`Experiments` (JSON is tried first, then YAML)."""
    try:
        data = json.loads(text)
    except ValueError:
        import yaml  # deferred: only files that are not JSON need it

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ExperimentsError([f"neither JSON nor YAML: {exc}"], source) from exc
    return parse_experiments(data, source)


def load_experiments(path: str | Path) -> Experiments:
    """Read and parse an experiments file (the only I/O in this module)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ExperimentsError([f"cannot read: {exc.strerror or exc}"], str(path)) from exc
    return parse_experiments_text(text, str(path))


# --- assignment -----------------------------------------------------------------------


def subject_id(central_user_id: int | str, experiment: str | Experiment) -> str:
    """``sha256_hex(str(central_user_id) + experiment_name)``."""
    name = experiment.name if isinstance(experiment, Experiment) else experiment
    return hashlib.sha256(f"{central_user_id}{name}".encode()).hexdigest()


def user_hash(subject: str) -> float:
    """``int(subject_id[0:6], 16) / 2**24``."""
    return int(subject[0:6], 16) / 2**24


def is_sampled(sample_rate: float, groups: list[str] | tuple[str, ...], hash_: float) -> bool:
    scaled = hash_ * max(1, len(groups))
    return math.fmod(scaled, 1) < sample_rate


def bucket(groups: list[str] | tuple[str, ...], hash_: float) -> str | None:
    if not groups:
        return None
    scaled = hash_ * max(1, len(groups))
    return groups[min(int(scaled), len(groups) - 1)]


def assign(
    subject: str, sample_rate: float, groups: list[str] | tuple[str, ...]
) -> tuple[bool, str | None]:
    """(enrolled, group) for an ``mw-user`` subject id; group is None when not enrolled."""
    hash_ = user_hash(subject)
    if not is_sampled(sample_rate, groups, hash_):
        return False, None
    return True, bucket(groups, hash_)


# --- enrollment strings ---------------------------------------------------------------


def _process_raw_value(raw: str, separator: str) -> dict[str, str]:
    """Test Kitchen's JS ``processRawValue``: ``name<sep>group;`` repeated, each entry
    ending in ``;``; raises on anything else."""
    result: dict[str, str] = {}
    acc = ""
    state = 0
    name = ""
    for ch in raw:
        if ch == separator:
            if state != 0:
                raise EnrollmentStringError(
                    f'Unexpected "{separator}" while processing experiment name'
                )
            name, acc, state = acc, "", 1
        elif ch == ";":
            if state != 1:
                raise EnrollmentStringError(
                    'Unexpected ";" character while processing experiment group'
                )
            result[name] = acc
            acc, state, name = "", 0, ""
        else:
            acc += ch
    if state != 0 or acc != "":
        raise EnrollmentStringError("Unexpected end of raw value")
    return result


def parse_mpo(raw: str | None, *, dialect: str = "js") -> dict[str, str]:
    """Parse the ``mpo`` override value ``exp1:group1;exp2:group2``.

    ``dialect="js"`` follows ``enrollmentConfig.js`` (a trailing ``;`` is optional;
    ``a:b:c`` is an error). ``dialect="php"`` follows ``RequestEnrollmentsProcessor.php``
    (split on ``;`` then on the first ``:``, so ``a:b:c`` gives ``{"a": "b:c"}`` and a
    trailing ``;`` makes the whole value malformed). Both clients then ignore the whole
    value; here malformed input raises :class:`EnrollmentStringError`. Names are not
    validated by either client; see :func:`enrollment_problems`.
    """
    if not raw:
        return {}
    if dialect == "js":
        return _process_raw_value(raw if raw.endswith(";") else raw + ";", ":")
    if dialect == "php":
        result: dict[str, str] = {}
        for part in raw.split(";"):
            pieces = part.split(":", 1)
            if len(pieces) != 2:
                raise EnrollmentStringError(
                    "The raw enrollment overrides could not be parsed properly. They are malformed."
                )
            result[pieces[0]] = pieces[1]
        return result
    raise ValueError(f"unknown dialect {dialect!r}")


def parse_server_timing(raw: str | None) -> dict[str, str]:
    """The ``WMF-Uniq`` Server-Timing description ``exp1=group1;exp2=group2;`` (JS: each
    entry must end in ``;``)."""
    if not raw:
        return {}
    return _process_raw_value(raw, "=")


def parse_enrollment_header(raw: str | None) -> dict[str, str]:
    """The ``X-Experiment-Enrollments`` request header ``exp1=group1;exp2=group2`` as
    ``RequestEnrollmentsProcessor.php`` reads it: trailing ``;`` trimmed, each entry exactly
    ``name=group`` with valid names and groups, else the whole header is rejected."""
    if not raw:
        return {}
    result: dict[str, str] = {}
    for entry in raw.rstrip(";").split(";"):
        # PHP array_filter drops empty strings and "0"
        pieces = [p for p in entry.split("=") if p not in ("", "0")]
        if len(pieces) != 2:
            raise EnrollmentStringError(
                "The X-Experiment-Enrollments header could not be parsed properly. "
                "The header is malformed."
            )
        name, group = pieces
        if not valid_name(name):
            raise EnrollmentStringError(f"The experiment name {name} is invalid")
        if not valid_group(group):
            raise EnrollmentStringError(f"The group name {group} for experiment {name} is invalid")
        result[name] = group
    return result


def enrollment_problems(assignments: Mapping[str, Any]) -> list[str]:
    """Names and groups that break the platform's rules, one message each."""
    problems = []
    for name, group in assignments.items():
        if not valid_name(name):
            problems.append(f"experiment name {name!r} must match {NAME_RE.pattern}")
        if not valid_group(group):
            problems.append(f"group {group!r} of {name!r} must match {GROUP_RE.pattern}")
    return problems


def _format(assignments: Mapping[str, str], separator: str, trailing: bool) -> str:
    problems = enrollment_problems(assignments)
    if problems:
        raise EnrollmentStringError("; ".join(problems))
    body = ";".join(f"{name}{separator}{group}" for name, group in assignments.items())
    return body + ";" if trailing and body else body


def format_mpo(assignments: Mapping[str, str]) -> str:
    """``{"exp1": "a", "exp2": "b"}`` -> ``exp1:a;exp2:b`` (no trailing ``;``, which the
    PHP reader would reject)."""
    return _format(assignments, ":", trailing=False)


def format_server_timing(assignments: Mapping[str, str]) -> str:
    """``exp1=a;exp2=b;`` (every entry ends in ``;`` as the JS reader requires)."""
    return _format(assignments, "=", trailing=True)


def format_enrollment_header(assignments: Mapping[str, str]) -> str:
    """``exp1=a;exp2=b`` for ``X-Experiment-Enrollments``."""
    return _format(assignments, "=", trailing=False)
