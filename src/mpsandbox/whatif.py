"""What if a stream sampled at another rate: how many of the captured sessions, pageviews or
devices would be in sample, by the web (JS) rule and by the app (Java/Android) rule.

The identifiers are the distinct ones in the store for the sample unit
(``performer.session_id``, ``performer.pageview_id`` or ``agent.app_install_id``), counted
in two scopes: the events of the stream itself, and every captured event (a client that
already samples sends the stream only from in-sample ids, so the stream alone under-counts
the population). Textual-free; reads through the connection it is given.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from mpsandbox.platform.sampling import (
    APP_UNITS,
    app_in_sample,
    identifier_field,
    web_in_sample,
)

#: unit -> SQL expression of the identifier in ``events``
_ID_SQL = {
    "session": "session_id",
    "pageview": "pageview_id",
    "device": "CASE WHEN json_valid(unpack_text(event)) AND json_type(unpack_text(event), '$.agent.app_install_id') = "
    "'text' THEN json_extract(unpack_text(event), '$.agent.app_install_id') END",
}
UNITS = tuple(_ID_SQL)
assert set(UNITS) == set(APP_UNITS)


def distinct_ids(conn: sqlite3.Connection, unit: str, stream: str | None = None) -> list[str]:
    """The distinct identifiers of ``unit`` in stored events (of ``stream``, when given)."""
    expr = _ID_SQL[unit]
    sql = f"SELECT DISTINCT {expr} AS ident FROM events WHERE ident IS NOT NULL"
    args: tuple = ()
    if stream is not None:
        sql += " AND stream = ?"
        args = (stream,)
    return [r[0] for r in conn.execute(sql, args)]


def _share(n: int, of: int) -> float | None:
    return None if of == 0 else n / of


def count_in_sample(ids: list[str], rate: float, unit: str) -> dict[str, Any]:
    """``{"ids": n, "web": {...}, "app": {...}}``, each rule with in/out counts and share."""
    n = len(ids)
    out: dict[str, Any] = {"ids": n}
    for rule, decide in (("web", web_in_sample), ("app", app_in_sample)):
        k = sum(1 for i in ids if decide(i, rate, unit))
        out[rule] = {"in_sample": k, "out_of_sample": n - k, "share": _share(k, n)}
    return out


def sampling_whatif_stored(
    reader: Any, *, unit: str, rate: float, stream: str | None = None
) -> dict[str, Any]:
    """:func:`sampling_whatif` on one read snapshot of a store reader (every count sees the
    same events)."""
    with reader.snapshot() as conn:
        return sampling_whatif(conn, unit=unit, rate=rate, stream=stream)


def sampling_whatif(
    conn: sqlite3.Connection, *, unit: str, rate: float, stream: str | None = None
) -> dict[str, Any]:
    """The what-if for one unit and rate; ``scopes.stream`` only when a stream is given."""
    if unit not in _ID_SQL:
        raise ValueError(f"unit must be one of {', '.join(UNITS)}; got {unit!r}")
    scopes: dict[str, Any] = {}
    if stream is not None:
        scopes["stream"] = count_in_sample(distinct_ids(conn, unit, stream), rate, unit)
    scopes["all"] = count_in_sample(distinct_ids(conn, unit), rate, unit)
    return {
        "unit": unit,
        "identifier_field": identifier_field(unit),
        "rate": rate,
        "scopes": scopes,
    }


def stream_sample(
    configs: Any, stream: str, rate_overrides: dict[str, float] | None = None
) -> dict[str, Any]:
    """What a stream samples by, as the served config says: ``{"key", "unit",
    "configured_rate", "override_rate", "rate"}`` (``rate`` is the override when there is
    one, else the configured rate; None when neither is a number). ``configs`` is a
    :class:`~mpsandbox.platform.stream_configs.StreamConfigs` (or None: nothing configured).
    An override keyed by the stream's name wins over one keyed by its ``/regex/`` key."""
    match = configs.match(stream) if configs is not None else None
    settings = match.settings if match is not None else {}
    sample = settings.get("sample") if isinstance(settings.get("sample"), dict) else {}
    configured = sample.get("rate")
    if isinstance(configured, bool) or not isinstance(configured, int | float):
        configured = None
    overrides = rate_overrides or {}
    override = overrides.get(stream)
    if override is None and match is not None:
        override = overrides.get(match.key)
    rate = override if override is not None else configured
    return {
        "key": None if match is None else match.key,
        "unit": sample.get("unit"),
        "configured_rate": configured,
        "override_rate": override,
        "rate": None if rate is None else float(rate),
    }
