"""The free-text index: which blocks of events hold a trigram, kept in step with the events.

Free text (``/sandbox/events?q=word``, the TUI's filter) is a case-insensitive substring of
the event JSON as received; without an index every query that matches little reads every
event. The index is an FTS5 table with the trigram tokenizer, contentless and with
``detail=none``: it stores, per trigram, the documents that hold it and nothing else. A
document per event measured 0.58x the events' compact JSON (a ~1,480-byte event has ~900
distinct trigrams), over the disk budget; a document per block of ``TEXT_BLOCK`` (16)
consecutive event ids shares the trigrams the events of a block have in common and
measured 0.08x, at the price of reading the 16 events of a candidate block. Readers (see
:func:`mpsandbox.query.text_clause`) use the blocks as a prefilter and test the text itself
on the candidates, so the index only ever has to be a superset.

Invariants, relied on by the 'delete' command of a contentless table (it must be given the
exact text that was indexed):

* every block below ``upto`` (in ``event_text_state``) is indexed, its document made by
  :func:`document` from the texts of the events present in it, in id order; events from
  ``upto`` on (fewer than MAX_BEHIND and a batch) are not indexed, and readers scan them;
* whatever deletes events re-indexes their blocks: :func:`forget` before the deletion,
  :func:`remember` after it (retention), or :func:`clear` (reset).

The writer indexes behind its commits, in a transaction of its own (:func:`index_upto`),
from the texts it still holds: an acknowledgement never waits for the tokenizer (a third
of the writer's time), and a committed event is findable at once all the same, through the
readers' scan of what is not indexed yet. It indexes when it has nothing else to do, or,
under a load that does not pause, once MAX_BEHIND events wait, so the scan stays
bounded. The migration indexes an existing store with :func:`catch_up`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

from ..query import EVENT_TEXT, TEXT_BLOCK, TEXT_INDEX, TEXT_STATE

__all__ = [
    "catch_up",
    "clear",
    "create",
    "document",
    "forget",
    "index_upto",
    "indexed_upto",
    "remember",
]

_B = TEXT_BLOCK
#: Events read at a time while indexing what is already stored.
CATCH_UP_CHUNK = 16 * 1024
#: The writer indexes once this many events wait (whole blocks), when it is idle: one FTS5
#: segment per 1,024 events rather than one per commit (small segments cost merges: a
#: commit of 10 events paid twice the time per event of one of 1,000); readers scan the
#: waiting events, a millisecond or two.
FEED_EVERY = 1024
#: ... and once this many wait even when it is busy, so that readers never scan more
#: (a query matching nothing: ~2.5 us per realistic event, ~40 ms for 16,384). A burst of
#: writes below it is acknowledged without paying for the index at all (a third of the
#: writer's time); the index catches up once the writes pause.
MAX_BEHIND = 16 * FEED_EVERY


def create(conn: sqlite3.Connection) -> None:
    conn.execute(
        f"CREATE VIRTUAL TABLE {TEXT_INDEX} USING fts5(text, content='', detail=none,"
        " columnsize=0, tokenize='trigram')"
    )
    conn.execute(
        f"CREATE TABLE {TEXT_STATE} (id INTEGER PRIMARY KEY CHECK (id = 1), upto INTEGER NOT NULL)"
    )
    conn.execute(f"INSERT INTO {TEXT_STATE} (id, upto) VALUES (1, 0)")


def indexed_upto(conn: sqlite3.Connection) -> int:
    """The first event id not indexed yet (every block below it is)."""
    return conn.execute(f"SELECT upto FROM {TEXT_STATE}").fetchone()[0]


def document(texts: Iterable[str]) -> str:
    """A block's document: the distinct pieces between double quotes of its events' texts,
    in id order, one per line.

    The events of a block share most of their text (keys, constant values), so the
    tokenizer reads about an eighth of it (measured: 188 of 1,481 characters an event, and
    less than half the time). A trigram without a double quote lies inside one piece, so a
    block holding a text has every such trigram of it (readers leave out the others, see
    mpsandbox.query.text_candidates). The same events give the same document, as the
    'delete' command needs. (Joined by quotes and split once: the same pieces as a split of
    each text, for one call instead of one per text.)"""
    return "\n".join(dict.fromkeys('"'.join(texts).split('"')))


def _insert(conn: sqlite3.Connection, blocks: dict[int, list[str]]) -> None:
    conn.executemany(
        f"INSERT INTO {TEXT_INDEX} (rowid, text) VALUES (?, ?)",
        [(block, document(texts)) for block, texts in blocks.items() if texts],
    )


def _stored(conn: sqlite3.Connection, lo: int, hi: int) -> Iterable[tuple[int, str]]:
    """(id, text) of the stored events with lo <= id < hi, in id order."""
    return conn.execute(
        f"SELECT id, {EVENT_TEXT} FROM events WHERE id >= ? AND id < ? ORDER BY id", (lo, hi)
    )


def _by_block(rows: Iterable[tuple[int, str]]) -> dict[int, list[str]]:
    blocks: dict[int, list[str]] = {}
    for event_id, text in rows:
        blocks.setdefault(event_id // _B, []).append(text)
    return blocks


def index_upto(conn: sqlite3.Connection, end: int, known: Sequence[tuple[int, str]]) -> int:
    """Index the complete blocks below ``end`` that are not indexed yet; return the new
    ``upto``. Call inside a write transaction.

    ``known`` is (id, text as received) of stored events in ascending ids, every stored
    event from its first id on (the writer's texts still in hand): those are not read
    back; events below its first id are read from the table."""
    upto = indexed_upto(conn)
    end = end // _B * _B
    if end <= upto:
        return upto
    first = known[0][0] if known else end
    earlier = list(_stored(conn, upto, min(first, end))) if first > upto else []
    fresh = [(i, t) for i, t in known if upto <= i < end]
    _insert(conn, _by_block([*earlier, *fresh]))
    conn.execute(f"UPDATE {TEXT_STATE} SET upto = ?", (end,))
    return end


def catch_up(conn: sqlite3.Connection, chunk: int = CATCH_UP_CHUNK) -> int:
    """Index every complete block of the stored events that is not indexed yet, reading
    ``chunk`` events at a time; return the events indexed."""
    upto = indexed_upto(conn)
    top = conn.execute("SELECT max(id) FROM events").fetchone()[0]
    if top is None:
        return 0
    end = (top + 1) // _B * _B
    done = 0
    step = max(_B, chunk // _B * _B)
    while upto < end:
        hi = min(end, upto + step)
        rows = list(_stored(conn, upto, hi))
        _insert(conn, _by_block(rows))
        done += len(rows)
        upto = hi
    conn.execute(f"UPDATE {TEXT_STATE} SET upto = ?", (upto,))
    return done


def forget(conn: sqlite3.Connection, ids: Iterable[int]) -> list[int]:
    """Take the indexed blocks of the events ``ids`` (about to be deleted) out of the index;
    return them, for :func:`remember` once the events are gone."""
    upto = indexed_upto(conn)
    blocks = sorted({i // _B for i in ids if i < upto})
    for block in blocks:
        texts = [t for _, t in _stored(conn, block * _B, block * _B + _B)]
        if texts:
            conn.execute(
                f"INSERT INTO {TEXT_INDEX} ({TEXT_INDEX}, rowid, text) VALUES ('delete', ?, ?)",
                (block, document(texts)),
            )
    return blocks


def forget_range(conn: sqlite3.Connection, lo: int, hi: int) -> list[int]:
    """:func:`forget` for the events with ids from ``lo`` to ``hi`` inclusive."""
    upto = indexed_upto(conn)
    return forget(conn, (b * _B for b in range(lo // _B, min(hi, upto - 1) // _B + 1)))


def remember(conn: sqlite3.Connection, blocks: Iterable[int]) -> None:
    """Index again what is left of ``blocks`` after a deletion."""
    for block in blocks:
        _insert(conn, _by_block(_stored(conn, block * _B, block * _B + _B)))


def clear(conn: sqlite3.Connection) -> None:
    """Empty the index (every event is being deleted); ``upto`` stays, as ids do."""
    conn.execute(f"INSERT INTO {TEXT_INDEX} ({TEXT_INDEX}) VALUES ('delete-all')")
