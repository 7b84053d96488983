"""A Test Kitchen-style configuration API, so a dev wiki's TestKitchen extension can take its
experiment and instrument configs from the sandbox (``$wgTestKitchenInstrumentConfiguratorBaseUrl
= 'http://localhost:8192';`` with ``$wgTestKitchenEnableConfigsFetching = true;``).

TestKitchen's ``includes/ConfigsFetcher.php`` fetches ``{base}/api/v1/experiments`` and
``{base}/api/v1/instruments``; each answers a JSON list of rows:

- experiment: ``name``, ``start``, ``end`` (ISO-8601; rows outside them are dropped by the
  extension), ``user_identifier_type`` (``mw-user`` / ``edge-unique``), ``groups``,
  ``sample_rate`` (``{"default": rate, "<rate>": [dbnames]}``), ``stream_name``,
  ``contextual_attributes``, and optionally ``schema_id``, ``sample_unit``, ``version``,
  ``phase_index``, ``status``.
- instrument: ``name``, ``start``, ``end``, ``sample_unit``, ``sample_rate``,
  ``stream_name``, ``schema_title``, ``contextual_attributes``.

A row without dates gets ``start`` 2000-01-01 and ``end`` 9999-12-31, because the extension
drops a row whose dates do not parse (and with them every other row).

How overrides are reflected (the API has no per-user view, so an override applies to all):

- an ``experiment`` override ``name -> group`` serves that experiment with
  ``groups: [group]`` and ``sample_rate: {"default": 1}``: Test Kitchen's assignment then
  enrolls every subject, in that group (one group: ``scaled = h``, enrolled iff
  ``h % 1 < 1``, group ``groups[0]``). Unlike ``?mpo=``, the client is not told it is
  forced (``coordinator`` stays ``default``), so its events are sent and can be inspected.
- a ``sample_rate`` override of a stream sets ``sample_rate: {"default": rate}`` of every
  instrument whose ``stream_name`` is that stream (experiments' enrollment rates are not
  stream sample rates and are left alone).
- each row changed carries ``mpsandbox_override`` with what was replaced (the extension
  ignores keys it does not know).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mpsandbox.errors import MpsandboxError
from mpsandbox.platform.experiments import Experiment

FAR_PAST = "2000-01-01T00:00:00Z"
FAR_FUTURE = "9999-12-31T23:59:59Z"
#: Row keys copied from an experiments file's Test Kitchen-shaped rows when present.
EXPERIMENT_PASS_THROUGH = ("sample_unit", "version", "status", "phase_index", "owner", "id")
INSTRUMENT_KEYS = (
    "name",
    "start",
    "end",
    "sample_unit",
    "sample_rate",
    "stream_name",
    "schema_title",
    "contextual_attributes",
)


class InstrumentsError(MpsandboxError, ValueError):
    """Instrument definitions that cannot be served."""


def _rate_key(rate: float) -> str:
    return f"{rate:g}"


def _sample_rate(default: float, per_wiki: Iterable[tuple[float, Iterable[str]]]) -> dict:
    out: dict[str, Any] = {"default": default}
    for rate, wikis in per_wiki:
        out[_rate_key(rate)] = list(wikis)
    return out


def experiment_row(experiment: Experiment, group: str | None = None) -> dict[str, Any]:
    """One experiment as Test Kitchen's API row; with ``group``, forced to that group."""
    e = experiment
    row: dict[str, Any] = {
        "name": e.name,
        "start": e.start or FAR_PAST,
        "end": e.end or FAR_FUTURE,
        "user_identifier_type": e.sampling_unit,
        "groups": list(e.groups),
        "sample_rate": _sample_rate(e.default_rate, e.wiki_rates),
        "stream_name": e.stream,
        "contextual_attributes": list(e.contextual_attributes),
    }
    if e.schema and e.schema.startswith("/"):
        row["schema_id"] = e.schema
    raw = e.raw if isinstance(e.raw, Mapping) else {}
    for key in EXPERIMENT_PASS_THROUGH:
        if key in raw:
            row[key] = raw[key]
    if e.phase_index is not None:
        row["phase_index"] = e.phase_index
    if e.version is not None:
        row["version"] = e.version
    if group is not None:
        row["mpsandbox_override"] = {
            "group": group,
            "mpo": f"{e.name}:{group}",
            "groups": row["groups"],
            "sample_rate": row["sample_rate"],
        }
        row["groups"] = [group]
        row["sample_rate"] = {"default": 1}
    return row


def experiment_rows(
    experiments: Mapping[str, Experiment] | None, groups: Mapping[str, str]
) -> list[dict[str, Any]]:
    """``GET /api/v1/experiments``: every loaded experiment, overrides applied."""
    if not experiments:
        return []
    return [experiment_row(e, groups.get(name)) for name, e in experiments.items()]


# --- instruments ----------------------------------------------------------------------


def _read(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return json.loads(text)
    import yaml  # deferred: only YAML definitions need it

    return yaml.safe_load(text)


def _rows_of(data: Any) -> list[Any]:
    if isinstance(data, dict) and isinstance(data.get("instruments"), list | dict):
        data = data["instruments"]
    if isinstance(data, dict) and "name" in data:
        return [data]
    if isinstance(data, dict):
        rows = []
        for name, value in data.items():
            row = dict(value) if isinstance(value, dict) else value
            if isinstance(row, dict):
                row.setdefault("name", name)
            rows.append(row)
        return rows
    if isinstance(data, list):
        return data
    return [] if data is None else [data]


def instrument_row(row: Any, where: str) -> dict[str, Any]:
    """A definition (Test Kitchen's row, or ``stream``/``schema``/``sample: {unit, rate}``
    spellings, as instrument definitions write them; see ``mpsandbox.instruments``) as
    Test Kitchen's API row."""
    if not isinstance(row, dict) or not isinstance(row.get("name"), str) or not row["name"]:
        raise InstrumentsError(f"{where}: each instrument needs a name")
    sample = row.get("sample") if isinstance(row.get("sample"), dict) else {}
    rate = row.get("sample_rate", sample.get("rate", 1))
    if not isinstance(rate, dict):
        rate = {"default": rate}
    unit = row.get("sample_unit", sample.get("unit"))
    schema = row.get("schema_title", row.get("schema"))
    if isinstance(schema, dict):  # an instrument definition's {title, version}
        schema = schema.get("title")
    out: dict[str, Any] = {
        "name": row["name"],
        "start": str(row.get("start") or FAR_PAST),
        "end": str(row.get("end") or FAR_FUTURE),
        "sample_rate": rate,
        "stream_name": row.get("stream_name", row.get("stream")),
        "schema_title": schema,
        "contextual_attributes": list(row.get("contextual_attributes") or []),
    }
    if unit is not None:
        out["sample_unit"] = unit
    return out


def load_instruments(location: str | Path | None) -> list[dict[str, Any]]:
    """Rows from a YAML/JSON file, or every ``*.yaml``/``*.yml``/``*.json`` in a folder (in
    name order); an empty list without a location or when the folder holds none."""
    if not location:
        return []
    path = Path(location)
    if path.is_dir():
        files = sorted(
            p for p in path.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml", ".json")
        )
    elif path.exists():
        files = [path]
    else:
        raise InstrumentsError(f"{path}: no such file or folder")
    rows = []
    for f in files:
        try:
            data = _read(f)
        except Exception as exc:
            raise InstrumentsError(f"{f}: cannot read: {exc}") from exc
        for i, row in enumerate(_rows_of(data)):
            rows.append(instrument_row(row, f"{f} #{i + 1}"))
    return rows


def instrument_rows(
    rows: list[dict[str, Any]], rate_overrides: Mapping[str, float]
) -> list[dict[str, Any]]:
    """``GET /api/v1/instruments``: the rows, stream sample-rate overrides applied."""
    out = []
    for row in rows:
        stream = row.get("stream_name")
        if isinstance(stream, str) and stream in rate_overrides:
            row = {
                **row,
                "sample_rate": {"default": rate_overrides[stream]},
                "mpsandbox_override": {
                    "stream": stream,
                    "rate": rate_overrides[stream],
                    "sample_rate": row.get("sample_rate"),
                },
            }
        out.append(row)
    return out
