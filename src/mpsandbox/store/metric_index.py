"""What the metric previews (mpsandbox.metrics) read, kept where they need not open events.

The example metrics count units (pageviews, sessions) over the events of a few actions;
with only ``(action, id)`` indexed, SQLite read every such event's row (~1.5 kB of JSON
each) to learn its verdict, stream and unit: seconds at a million events. Two structures
answer them instead:

* ``events_action`` covers ``(action, id, verdict, stream, session_id, pageview_id)``: the
  same order as before for the ``action:`` filter, and every column those metrics read, so
  they never touch the table;
* ``event_experiments`` lists the events whose JSON mentions ``"experiment"``: a metric of
  an experiment (``experiment:`` in its definition) tests the JSON of those alone. It is a
  superset filter (the exact test follows on the candidates), kept by the writer and
  emptied with the events through its foreign key.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from ..query import EVENT_TEXT

__all__ = ["EXPERIMENT_MARK", "create", "feed"]

#: What an event's JSON holds when it may have an experiment block (metrics/compute.py
#: tests the same with instr).
EXPERIMENT_MARK = '"experiment"'


def create(conn: sqlite3.Connection) -> None:
    conn.execute("DROP INDEX IF EXISTS events_action")
    conn.execute(
        "CREATE INDEX events_action ON events(action, id, verdict, stream, session_id, pageview_id)"
    )
    conn.execute(
        "CREATE TABLE event_experiments ("
        " event_id INTEGER PRIMARY KEY REFERENCES events(id) ON DELETE CASCADE)"
    )
    conn.execute(
        "INSERT INTO event_experiments (event_id)"
        f" SELECT id FROM events WHERE instr({EVENT_TEXT}, ?)",
        (EXPERIMENT_MARK,),
    )


def feed(conn: sqlite3.Connection, rows: Sequence[tuple[int, str]]) -> None:
    """Note the events of ``rows`` (id, text as received) that mention an experiment."""
    ids = [(event_id,) for event_id, text in rows if EXPERIMENT_MARK in text]
    if ids:
        conn.executemany("INSERT INTO event_experiments (event_id) VALUES (?)", ids)
