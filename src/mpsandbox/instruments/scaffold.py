"""``mpsandbox instrument new``: a definition written from events already captured.

From the events a query selects, it takes the stream and schema title (the most common,
with the lowest version seen as the floor of the range), the instrument's
``instrument_name`` and experiment when every event shares one, the contextual attributes
every event carries, and one expectation per distinct action (per funnel step when the
events carry funnel positions), each with the interaction fields whose values are constant
(or one of a few), the attributes it always carries as ``required`` and the platform as
``values``. For an experiment it adds exposures at most once per pageview and the other
actions after an exposure, when the events bear that out.

The result is checked against the same events before it is written: a constraint the
events do not meet is left out, so the scaffold passes ``mpsandbox check`` on them unless
the events themselves break a rule no definition may waive (invalid events, funnel steps
out of order); those are listed as notes.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mpsandbox.errors import MpsandboxError
from mpsandbox.instruments.checks import (
    FAIL,
    InstrumentResult,
    ObservedEvent,
    check_instrument,
)
from mpsandbox.instruments.definitions import (
    Definition,
    is_empty,
    lookup,
    parse_data,
    parse_version_range,
)
from mpsandbox.platform.attributes import (
    ALWAYS_SENT,
    APP_ATTRIBUTES,
    WEB_ATTRIBUTES,
    attribute_path,
)
from mpsandbox.wording import plural

#: Interaction fields a scaffold constrains when their values are constant or few.
SCAFFOLD_FIELDS = ("action_source", "action_subtype", "element_id", "element_friendly_name")
#: Fields an expectation requires when every one of its events carries them: the sample
#: units and the page's identity (the rest of what they carry is in contextual_attributes).
REQUIRED_CANDIDATES = (
    "performer.session_id",
    "performer.pageview_id",
    "agent.app_install_id",
    "page.id",
    "page.title",
    "mediawiki.database",
)
#: At most this many distinct values become a one-of list; more are left out.
MAX_CHOICES = 5
EXPOSURE = "experiment_exposure"
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class ScaffoldError(MpsandboxError, ValueError):
    pass


@dataclass
class Scaffold:
    data: dict[str, Any]
    text: str
    definition: Definition
    result: InstrumentResult
    events: int
    notes: list[str] = field(default_factory=list)


def _value(event: Any, dotted: str) -> tuple[bool, Any]:
    return lookup(event, tuple(dotted.split(".")))


def _constant(events: Sequence[ObservedEvent], dotted: str) -> Any:
    values = {repr(_value(e.event, dotted)) for e in events}
    if len(values) != 1:
        return None
    present, value = _value(events[0].event, dotted)
    return value if present and not is_empty(value) else None


def _version_key(version: str | None) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in (version or "").split("."))
    except ValueError:
        return (10**9,)


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()
    return slug or "expectation"


def _attributes(events: Sequence[ObservedEvent]) -> list[str]:
    """Contextual attributes every event carries (the ones clients always add left out)."""
    names = [n for n in (*WEB_ATTRIBUTES, *APP_ATTRIBUTES) if n not in ALWAYS_SENT]
    out = []
    for name in dict.fromkeys(names):
        path = attribute_path(name)
        if all((pv := lookup(e.event, path))[0] and not is_empty(pv[1]) for e in events):
            out.append(name)
    return out


def _field_constraint(events: Sequence[ObservedEvent], name: str) -> Any:
    values = []
    for e in events:
        present, value = lookup(e.event, (name,))
        if not present or is_empty(value) or not isinstance(value, (str, int, float, bool)):
            return None
        values.append(value)
    distinct = list(dict.fromkeys(values))
    if len(distinct) == 1:
        return distinct[0]
    if len(distinct) <= MAX_CHOICES:
        return sorted(distinct, key=str)
    return None


def _group_key(e: ObservedEvent) -> tuple[Any, ...] | None:
    action = lookup(e.event, ("action",))[1]
    if not isinstance(action, str) or not action:
        return None
    funnel = lookup(e.event, ("funnel_name",))[1]
    pos = lookup(e.event, ("funnel_event_sequence_position",))[1]
    if isinstance(funnel, str) and funnel and isinstance(pos, int) and not isinstance(pos, bool):
        return (action, funnel, pos)
    return (action, None, None)


def build(
    name: str, events: Sequence[ObservedEvent], *, query: str = "", where: str = ""
) -> Scaffold:
    """The scaffold of ``name`` from ``events`` (what the query selected, any order)."""
    if not NAME_RE.fullmatch(name):
        raise ScaffoldError(
            f"{name!r}: an instrument name is letters, digits, '.', '_' and '-' "
            "(it also names the file)"
        )
    if not events:
        raise ScaffoldError(
            "no captured events match"
            + (f" {query!r}" if query else "")
            + (f" in {where}" if where else "")
        )
    notes: list[str] = []
    streams = Counter(e.stream for e in events if e.stream)
    if not streams:
        raise ScaffoldError("the events have no meta.stream to scaffold from")
    stream = streams.most_common(1)[0][0]
    if len(streams) > 1:
        others = ", ".join(f"{s} ({n})" for s, n in streams.most_common()[1:4])
        notes.append(
            f"events of {len(streams)} streams matched; used {stream} ({streams[stream]}"
            f" events), left out {others}: narrow the query with stream:NAME"
        )
    mine = sorted((e for e in events if e.stream == stream), key=lambda e: (e.when, e.id))

    data: dict[str, Any] = {"name": name}
    data["description"] = f"Scaffolded from {len(mine)} captured events: say what it measures."
    data["stream"] = stream
    titles = Counter(e.schema_title for e in mine if e.schema_title)
    if titles:
        title = titles.most_common(1)[0][0]
        versions = sorted(
            {e.schema_version for e in mine if e.schema_title == title and e.schema_version},
            key=_version_key,
        )
        schema: dict[str, Any] = {"title": title}
        if versions and _version_key(versions[0]) != (10**9,):
            schema["version"] = f">={versions[0]}"
            parse_version_range(schema["version"])
        data["schema"] = schema
        if len(titles) > 1:
            notes.append(f"the events have {len(titles)} schema titles; used {title}")
    instrument_name = _constant(mine, "instrument_name")
    if isinstance(instrument_name, str):
        data["match"] = {"instrument_name": instrument_name}
    enrolled = _constant(mine, "experiment.enrolled")
    if isinstance(enrolled, str):
        groups = sorted(
            {g for e in mine if isinstance(g := _value(e.event, "experiment.assigned")[1], str)}
        )
        experiment: dict[str, Any] = {"name": enrolled}
        if groups:
            experiment["groups"] = groups
        unit = _constant(mine, "experiment.sampling_unit")
        if isinstance(unit, str):
            experiment["sampling_unit"] = unit
        data["experiment"] = experiment
    is_app = any(_value(e.event, "agent.client_platform_family")[1] == "app" for e in mine)
    data["sample_unit"] = "device" if is_app else "session"
    data["sample_rate"] = {"default": 1}
    attributes = _attributes(mine)
    data["contextual_attributes"] = attributes

    groups_of: dict[tuple[Any, ...], list[ObservedEvent]] = {}
    skipped = 0
    for e in mine:
        key = _group_key(e)
        if key is None:
            skipped += 1
            continue
        groups_of.setdefault(key, []).append(e)
    if skipped:
        notes.append(
            f"{plural(skipped, 'event')} without an action "
            f"{'was' if skipped == 1 else 'were'} left out of the expectations"
        )
    expects: list[dict[str, Any]] = []
    used: set[str] = set()
    exposure_id = None
    for (action, funnel, pos), members in groups_of.items():
        base = _slug(f"{funnel}-step-{pos}" if funnel else action)
        expect_id, n = base, 2
        while expect_id in used:
            expect_id, n = f"{base}-{n}", n + 1
        used.add(expect_id)
        x: dict[str, Any] = {"id": expect_id, "action": action}
        for f in SCAFFOLD_FIELDS:
            c = _field_constraint(members, f)
            if c is not None:
                x[f] = c
        if funnel:
            x["funnel"] = {"name": funnel, "step": pos}
        present = {".".join(attribute_path(a)) for a in _attributes(members)}
        required = [p for p in REQUIRED_CANDIDATES if p in present]
        if funnel:
            required.append("funnel_entry_token")
        if required:
            x["required"] = required
        values = {}
        for path in ("agent.client_platform", "agent.client_platform_family"):
            v = _constant(members, path)
            if isinstance(v, str):
                values[path] = v
        if values:
            x["values"] = values
        if "experiment" in data and action == EXPOSURE:
            x["count"] = {"max": 1, "per": "pageview"}
            exposure_id = exposure_id or expect_id
        expects.append(x)
    if exposure_id is not None:
        for x in expects:
            if x["action"] != EXPOSURE:
                x["after"] = exposure_id
    data["expects"] = expects

    definition, result = _checked(data, mine)
    # Leave out what the events do not bear out (optional parts only).
    for check in result.checks:
        if check.kind != "expectation" or check.status != FAIL:
            continue
        x = next(x for x in expects if x["id"] == check.id)
        for key in ("after", "count"):
            if key in x and any(i.rule == key for i in check.issues):
                del x[key]
    definition, result = _checked(data, mine)
    for check in result.checks:
        if check.status == FAIL:
            notes.append(f"{check.id} fails on these events: {check.reason}")
    header = [
        f"{name}: scaffolded by `mpsandbox instrument new` on {datetime.now(UTC):%Y-%m-%d}",
        f"from {len(mine)} captured events" + (f" in {where}" if where else ""),
        f"matching {query}" if query else "(every captured event)",
        "Edit it into what the instrument must send (the format: instruments/README.md),",
        f"then check it: mpsandbox check {name} --db ...",
    ]
    return Scaffold(data, render(data, header), definition, result, len(mine), notes)


def _checked(
    data: dict[str, Any], events: Sequence[ObservedEvent]
) -> tuple[Definition, InstrumentResult]:
    definitions, problems = parse_data(data, Path("(scaffold)"))
    if problems or not definitions:  # a bug here, not the user's
        raise ScaffoldError("scaffold is not a valid definition: " + "; ".join(map(str, problems)))
    return definitions[0], check_instrument(definitions[0], events)


def _scalar(value: Any) -> str:
    """One scalar as YAML writes it inside a flow list (quoted only when it must be)."""
    import yaml

    return yaml.safe_dump([value], default_flow_style=True, width=10**6).strip()[1:-1]


def _emit(value: Any, indent: int, out: list[str], key: str | None = None) -> None:
    """Block mappings and lists; a list of scalars inline when it fits on the line."""
    pad = " " * indent
    head = f"{pad}{key}:" if key is not None else None
    if isinstance(value, dict):
        if (
            head is not None
            and 0 < len(value) <= 3
            and key not in ("values", "match")
            and all(not isinstance(v, (dict, list)) for v in value.values())
        ):
            inline = ", ".join(f"{_scalar(k)}: {_scalar(v)}" for k, v in value.items())
            if len(head) + len(inline) + 3 <= 92:
                out.append(f"{head} {{{inline}}}")
                return
        if head is not None:
            out.append(head)
            indent += 2
        for k, v in value.items():
            _emit(v, indent, out, str(k))
        return
    if isinstance(value, list) and all(not isinstance(v, (dict, list)) for v in value):
        inline = "[" + ", ".join(_scalar(v) for v in value) + "]"
        if head is not None and len(head) + 1 + len(inline) <= 92:
            out.append(f"{head} {inline}")
            return
        if head is not None:
            out.append(head)
        for v in value:
            out.append(f"{pad}  - {_scalar(v)}" if head is not None else f"{pad}- {_scalar(v)}")
        return
    if isinstance(value, list):
        if head is not None:
            out.append(head)
        for item in value:
            lines: list[str] = []
            _emit(item, indent + 4, lines)
            first = lines[0].lstrip()
            out.append(f"{pad}  - {first}")
            out.extend(lines[1:])
        return
    out.append(f"{head} {_scalar(value)}")


def dump_block(data: dict[str, Any]) -> str:
    out: list[str] = []
    _emit(data, 0, out)
    return "\n".join(out)


def render(data: dict[str, Any], header: Sequence[str]) -> str:
    """The definition as commented YAML, in the order the README documents."""
    top = {k: data[k] for k in ("name", "description", "stream", "schema") if k in data}
    tk = {k: data[k] for k in ("sample_unit", "sample_rate", "contextual_attributes") if k in data}
    out = [f"# {line}" for line in header]
    out.append(dump_block(top))
    if "match" in data:
        out.append("# Fields that pick this instrument's events out of its stream")
        out.append(dump_block({"match": data["match"]}))
    if "experiment" in data:
        out.append("# The Test Kitchen experiment every event belongs to (experiment.enrolled)")
        out.append(dump_block({"experiment": data["experiment"]}))
    out.append("# Test Kitchen's fields, served at /api/v1/instruments (add start and end)")
    out.append(dump_block(tk))
    out.append("# What the instrument must send: one expectation per interaction")
    out.append(dump_block({"expects": data["expects"]}))
    return "\n".join(out) + "\n"
