"""Where an event's indexed values come from: the one field map.

The store indexes five values of every event (``action``, ``session_id``, ``pageview_id``,
``platform``, ``dt``) so that filters (``action:ready``, ``session:ID``), session views,
funnels and metrics read an index instead of parsing JSON. Which field holds each value
depends on the event's family, and this module is the only place that knows:

============  ===================  ===========================================  ================
value         Metrics Platform     legacy EventLogging (capsule)                other schemas
============  ===================  ===========================================  ================
action        ``action``           ``event.action``                             ``action``
session       performer.session_id ``event.session_token``, else                -
                                   ``event.editing_session_id``, else
                                   ``event.editingSessionId``
pageview      performer.pageview_id ``event.page_token``                        -
platform      agent.client_platform ``event.platform``                          -
time          ``dt``               ``client_dt``, else ``dt``                   ``dt``
============  ===================  ===========================================  ================

A **legacy** event is anything shaped like EventLogging's capsule: an ``event`` object and a
``schema`` name beside it (a beacon's capsule, or its migrated Event Platform form
``/analytics/legacy/<name>``). A **Metrics Platform** event has a ``performer`` or an
``agent`` object. Everything else is judged by its schema's own top-level ``action`` and
``dt``. In every family the intake's ``dt`` fill-in stands in when the event has no time.
``editingSessionId`` is how WikiEditor's ``VisualEditorFeatureUse`` spells the editing
session, so its events join the EditAttemptStep events of the same edit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

METRICS_PLATFORM = "metrics_platform"
LEGACY = "legacy"
OTHER = "other"

#: (value -> candidate paths, first string wins), per family. Documented above.
FIELD_MAP: dict[str, dict[str, tuple[tuple[str, ...], ...]]] = {
    METRICS_PLATFORM: {
        "action": (("action",),),
        "session_id": (("performer", "session_id"),),
        "pageview_id": (("performer", "pageview_id"),),
        "platform": (("agent", "client_platform"),),
        "dt": (("dt",),),
    },
    LEGACY: {
        "action": (("event", "action"),),
        "session_id": (
            ("event", "session_token"),
            ("event", "editing_session_id"),
            ("event", "editingSessionId"),
        ),
        "pageview_id": (("event", "page_token"),),
        "platform": (("event", "platform"),),
        "dt": (("client_dt",), ("dt",)),
    },
    OTHER: {
        "action": (("action",),),
        "session_id": (),
        "pageview_id": (),
        "platform": (),
        "dt": (("dt",),),
    },
}


assert all(1 <= len(p) <= 2 for f in FIELD_MAP.values() for ps in f.values() for p in ps)


class Indexed(NamedTuple):
    action: str | None
    session_id: str | None
    pageview_id: str | None
    platform: str | None
    meta_id: str | None
    dt: str | None


_NONE = Indexed(None, None, None, None, None, None)


def family(event: Any) -> str | None:
    """The family whose paths :data:`FIELD_MAP` reads for this event (None: not an object)."""
    if not isinstance(event, dict):
        return None
    if isinstance(event.get("event"), dict) and isinstance(event.get("schema"), str):
        return LEGACY
    if isinstance(event.get("performer"), dict) or isinstance(event.get("agent"), dict):
        return METRICS_PLATFORM
    return OTHER


def _first(event: dict, paths: tuple[tuple[str, ...], ...]) -> str | None:
    """The first of ``paths`` that holds a string. Every path in the map has one or two
    steps, so both are spelled out: this runs for every stored event."""
    for path in paths:
        if len(path) == 1:
            value = event.get(path[0])
        else:
            node = event.get(path[0])
            if not isinstance(node, dict):
                continue
            value = node.get(path[1])
        if isinstance(value, str):
            return value
    return None


def _fill(fills: Mapping[str, Any] | None, key: str) -> str | None:
    fill = fills.get(key) if fills else None
    value = fill.get("value") if isinstance(fill, dict) else None
    return value if isinstance(value, str) else None


#: FIELD_MAP as tuples in Indexed's order, so indexing an event looks nothing up by name.
_ORDER = ("action", "session_id", "pageview_id", "platform", "dt")
_PATHS = {fam: tuple(paths[name] for name in _ORDER) for fam, paths in FIELD_MAP.items()}


def indexed(event: Any, fills: Mapping[str, Any] | None = None) -> Indexed:
    """The indexed values of an event as received, with the intake's fill-ins standing in
    for a missing ``meta.id`` and ``dt``. Events can be any JSON: read defensively."""
    fam = family(event)
    if fam is None:
        if not fills:
            return _NONE
        return Indexed(None, None, None, None, _fill(fills, "meta.id"), _fill(fills, "dt"))
    action, session, pageview, platform, dt = _PATHS[fam]
    meta = event.get("meta")
    meta_id = meta.get("id") if isinstance(meta, dict) else None
    if not isinstance(meta_id, str):
        meta_id = _fill(fills, "meta.id")
    when = _first(event, dt) if dt else None
    if when is None:
        when = _fill(fills, "dt")
    return Indexed(
        _first(event, action) if action else None,
        _first(event, session) if session else None,
        _first(event, pageview) if pageview else None,
        _first(event, platform) if platform else None,
        meta_id,
        when,
    )
