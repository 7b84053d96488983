"""Free text through its index (store/text_index.py): the same events as a substring test of
every event's JSON, in every state the index can be in (blocks indexed, the tail not yet,
after retention and reset, built by the migration for an older store), and the index used
rather than a scan."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from mpsandbox.query import TEXT_BLOCK, TextBlocks, parse_query
from mpsandbox.records import EventRecord, RequestRecord
from mpsandbox.store import (
    EventFilter,
    StoreReader,
    StoreWriter,
    apply_retention,
    codec,
    connect,
    text_index,
)

WORDS = ["alpha", "Bravo", "CHARLIE", "delta", "écho", "Ünïcödé Straße", 'say "hi"', "100%_off"]


def _event(i: int, at: float) -> EventRecord:
    word = WORDS[i % len(WORDS)]
    received = {
        "$schema": "/test/event/1.0.0",
        "meta": {"stream": "test.stream", "id": f"meta-{i:05d}"},
        "note": f"{word} number {i:05d}",
        "token": f"tok{i * 7919 % 100003:06d}x",
    }
    return EventRecord(
        index=0,
        received=received,
        verdict="valid",
        received_at=at,
        stream="test.stream",
        schema_title="test/event",
        schema_version="1.0.0",
    )


def _write(writer: StoreWriter, n: int, start: int = 0, at: float | None = None) -> None:
    """``n`` events in requests of 1 to 5 events, so commits end mid-block."""
    i = start
    while i < start + n:
        k = min(1 + i % 5, start + n - i)
        when = time.time() if at is None else at
        request = RequestRecord(
            received_at=when, method="POST", path="/v1/events", query="", headers=[], body=b"[]"
        )
        writer.submit(request, [_event(j, when) for j in range(i, i + k)]).result(30)
        i += k


@pytest.fixture
def every_block(monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer indexes each block as it completes (by default it waits for 1,024
    events), so that a few events show every state of the index."""
    monkeypatch.setattr(text_index, "FEED_EVERY", TEXT_BLOCK)


def _ascii_lower(text: str) -> str:
    return text.translate({c: c + 32 for c in range(ord("A"), ord("Z") + 1)})


def _expected(db: Path, term: str, negated: bool = False) -> set[int]:
    """What SQLite's LIKE answers: ASCII letters without case, the rest exactly."""
    conn = sqlite3.connect(db)
    codec.register(conn)
    try:
        rows = conn.execute("SELECT id, unpack_text(event) FROM events").fetchall()
    finally:
        conn.close()
    needle = _ascii_lower(term)
    return {i for i, text in rows if (needle in _ascii_lower(text)) != negated}


def _found(db: Path, query: str) -> set[int]:
    with StoreReader(db) as reader:
        flt = EventFilter(query=parse_query(query))
        rows = reader.list_events(flt, limit=10_000)
        assert reader.count_events(flt) == len(rows)
        # What instrument checks read pages the same events (newest first, as listed).
        bodies = reader.event_bodies(flt, limit=10_000, newest_first=True)
        assert [b["id"] for b in bodies] == [r["id"] for r in rows]
    return {r["id"] for r in rows}


#: (query, the term, negated)
CASES = [
    ("alpha", "alpha", False),
    ("ALPHA", "ALPHA", False),
    ("bravo", "bravo", False),
    ("charlie", "charlie", False),
    ("nosuchthing", "nosuchthing", False),
    ("number 00042", "number", False),
    ('"number 00042"', "number 00042", False),
    ('"say \\"hi\\""', 'say "hi"', False),  # the JSON text escapes the quotes: no match
    ('\\"hi\\"', '\\"hi\\"', False),  # ... and this is how they look in it
    ("100%_off", "100%_off", False),
    ("%_", "%_", False),
    ("écho", "écho", False),
    ("ÉCHO", "ÉCHO", False),  # LIKE folds ASCII only: no match
    ("ünïcödé", "ünïcödé", False),
    ("Ünïcödé", "Ünïcödé", False),
    ("STRASSE", "STRASSE", False),
    ("straße", "straße", False),
    ("zq", "zq", False),  # shorter than a trigram: scanned
    ("o", "o", False),
    ("-alpha", "alpha", True),
    ("-zq", "zq", True),
]


def _check_all(db: Path) -> None:
    for query, term, negated in CASES:
        expected = _expected(db, term, negated)
        if query == "number 00042":
            expected &= _expected(db, "00042")
        assert _found(db, query) == expected, query


def _token(db: Path, event_id: int) -> str:
    with StoreReader(db) as reader:
        event = reader.get_event(event_id)
    assert event is not None
    return event["event"]["token"]


def _blocks(db: Path, term: str) -> set[int]:
    """The blocks the index itself names for a term (its trigrams, ANDed)."""
    grams = " AND ".join(f'"{term[i : i + 3]}"' for i in range(len(term) - 2))
    conn = connect(db, readonly=True)
    try:
        rows = conn.execute("SELECT rowid FROM event_text WHERE event_text MATCH ?", (grams,))
        return {r[0] for r in rows}
    finally:
        conn.close()


def test_free_text_matches_a_substring_test_through_the_index(
    tmp_path: Path, every_block: None
) -> None:
    db = tmp_path / "s.db"
    with StoreWriter(db) as writer:
        _write(writer, 150)
    _check_all(db)
    # Indexed blocks and an unindexed tail: both are found.
    tail_id, head_id = 150, 3
    assert 150 % TEXT_BLOCK != 0
    assert _found(db, _token(db, tail_id)) == {tail_id}
    assert _found(db, _token(db, head_id)) == {head_id}
    assert _blocks(db, _token(db, head_id)) == {head_id // TEXT_BLOCK}
    assert _blocks(db, _token(db, tail_id)) == set()


def test_free_text_reads_the_index_not_every_event(tmp_path: Path, every_block: None) -> None:
    db = tmp_path / "s.db"
    with StoreWriter(db) as writer:
        _write(writer, 40)
    conn = connect(db, readonly=True)
    try:
        where, params = parse_query("nosuchthing").where()
        plan = " | ".join(
            r[-1]
            for r in conn.execute(
                f"EXPLAIN QUERY PLAN SELECT id FROM events WHERE {where} ORDER BY id DESC LIMIT 50",
                params,
            )
        )
    finally:
        conn.close()
    # The candidates (a list from the index) drive rowid lookups: no scan of the events.
    assert "VIRTUAL TABLE INDEX 0:M" in plan, plan
    assert plan.startswith("SEARCH events USING INTEGER PRIMARY KEY (rowid=?) | LIST SUBQUERY")


def test_retention_and_reset_keep_the_index_in_step(tmp_path: Path, every_block: None) -> None:
    db = tmp_path / "s.db"
    old = time.time() - 3600
    with StoreWriter(db) as writer:
        _write(writer, 37, at=old)  # ids 1..37: blocks 0, 1 and part of 2
        _write(writer, 60, start=37)
    gone, kept = _token(db, 20), _token(db, 30)
    # By count: events 1..25 go; block 1 (16..31) keeps 26..31.
    conn = connect(db)
    try:
        apply_retention(conn, max_events=97 - 25)
    finally:
        conn.close()
    assert _blocks(db, gone) == set()
    assert _blocks(db, kept) == {30 // TEXT_BLOCK}
    assert _found(db, gone) == set()
    assert _found(db, kept) == {30}
    _check_all(db)
    # By age, in chunks: the rest of the old events.
    conn = connect(db)
    try:
        while apply_retention(conn, max_age_s=1800, chunk=4)["more"]:
            pass
    finally:
        conn.close()
    assert _found(db, kept) == set()
    assert _blocks(db, kept) == set()
    survivor = _token(db, 40)
    assert _blocks(db, survivor) == {40 // TEXT_BLOCK}
    _check_all(db)
    # Reset empties it; events written afterwards are indexed from their own blocks.
    with StoreWriter(db) as writer:
        writer.reset().result(30)
        assert _blocks(db, survivor) == set()
        _write(writer, 45, start=500)
    _check_all(db)
    assert _found(db, survivor) == set()


def test_the_migration_indexes_an_older_store(tmp_path: Path, every_block: None) -> None:
    db = tmp_path / "s.db"
    with StoreWriter(db) as writer:
        _write(writer, 75)
    # The store as the release before the index left it.
    conn = sqlite3.connect(db)
    conn.executescript(
        "DROP TABLE event_text; DROP TABLE event_text_state; DROP TABLE event_experiments;"
        " DELETE FROM _migrations WHERE name = '0011_event_text_index';"
    )
    conn.close()
    conn = connect(db)  # migrates
    try:
        upto = conn.execute("SELECT upto FROM event_text_state").fetchone()[0]
    finally:
        conn.close()
    assert upto == 75 // TEXT_BLOCK * TEXT_BLOCK
    assert _blocks(db, _token(db, 3)) == {0}
    _check_all(db)
    with StoreWriter(db) as writer:  # and goes on from there
        _write(writer, 30, start=75)
    assert _blocks(db, _token(db, 90)) == {90 // TEXT_BLOCK}
    _check_all(db)


@pytest.mark.parametrize("query", ["alpha", "ünïcödé", "zq"])
def test_text_filter_field_is_the_same_test(tmp_path: Path, query: str) -> None:
    """EventFilter(text=...) (the errors screen's label filter) says what q= says."""
    db = tmp_path / "s.db"
    with StoreWriter(db) as writer:
        _write(writer, 40)
    with StoreReader(db) as reader:
        rows = reader.list_events(EventFilter(text=query), limit=1000)
    assert {r["id"] for r in rows} == _expected(db, query)


def test_a_word_most_events_hold_is_scanned_with_the_same_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, every_block: None
) -> None:
    """Past TEXT_SCAN_BLOCKS candidate blocks the reader tests the text by a scan (the
    newest events hold it at once); the answers do not change."""
    from mpsandbox.store import queries

    db = tmp_path / "s.db"
    with StoreWriter(db) as writer:
        _write(writer, 150)
    monkeypatch.setattr(queries, "TEXT_SCAN_BLOCKS", 3)
    _check_all(db)
    with StoreReader(db) as reader, reader.snapshot() as conn:
        common = reader._planned(conn, EventFilter(query=parse_query("number alpha nosuch")))
    assert common.query is not None
    assert [t.value for t in common.query.terms if t.scan] == ["number", "alpha"]
    assert [t.blocks for t in common.query.terms] == [None, None, TextBlocks(144, ())]


def test_the_writer_indexes_a_thousand_events_at_a_time(tmp_path: Path) -> None:
    """Until 1,024 events wait, none is indexed and every one is found by the scan of the
    waiting events; then the complete blocks are indexed in one go."""
    db = tmp_path / "s.db"
    with StoreWriter(db) as writer:
        _write(writer, 1000)
        assert _blocks(db, _token(db, 3)) == set()
        _check_all(db)
        _write(writer, 40, start=1000)
    assert _blocks(db, _token(db, 3)) == {0}
    assert _blocks(db, _token(db, 1030)) == set()  # in the block still filling
    assert _found(db, _token(db, 1030)) == {1030}
    _check_all(db)


def test_a_block_document_keeps_every_trigram_without_a_quote() -> None:
    texts = ['{"a":"say \\"hi\\" now","b":1}', '{"a":"other","b":1}']
    doc = text_index.document(texts)
    assert doc.count('"') == 0 and doc.count(":1}") == 1  # shared pieces once
    for text in texts:
        for i in range(len(text) - 2):
            gram = text[i : i + 3]
            assert '"' in gram or gram in doc, gram


def _write_inline(writer: StoreWriter, n: int, start: int = 0) -> None:
    """``n`` events committed by a writer driven by this thread (as the store process
    drives it), without the indexing it does between rounds."""
    i = start
    while i < start + n:
        k = min(1 + i % 5, start + n - i)
        when = time.time()
        request = RequestRecord(
            received_at=when, method="POST", path="/v1/events", query="", headers=[], body=b"[]"
        )
        fut = writer.submit(request, [_event(j, when) for j in range(i, i + k)])
        writer.work_inline()
        fut.result(0)
        i += k


def _upto(db: Path) -> int:
    conn = connect(db, readonly=True)
    try:
        return text_index.indexed_upto(conn)
    finally:
        conn.close()


def test_the_index_follows_the_commits_and_the_tail_is_found_meanwhile(
    tmp_path: Path, every_block: None
) -> None:
    """A write is committed (and acknowledged) before its text is indexed, in a
    transaction of its own; until then readers find it by the scan of the tail."""
    db = tmp_path / "s.db"
    writer = StoreWriter(db)
    writer.start_inline()
    try:
        _write_inline(writer, 70)
        assert _upto(db) == 0  # committed, not indexed
        _check_all(db)
        assert _found(db, _token(db, 3)) == {3}
        while writer.index_behind():
            pass
        assert _upto(db) == 64
        assert _blocks(db, _token(db, 3)) == {0}
        assert _blocks(db, _token(db, 66)) == set()
        _check_all(db)
    finally:
        writer.close_inline()


def test_a_busy_writer_indexes_only_past_max_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, every_block: None
) -> None:
    """Under load the index waits until MAX_BEHIND events do, then catches up to
    FEED_EVERY below it; idle, it indexes a chunk of FEED_EVERY per call."""
    monkeypatch.setattr(text_index, "MAX_BEHIND", 4 * TEXT_BLOCK)
    db = tmp_path / "s.db"
    writer = StoreWriter(db)
    writer.start_inline()
    try:
        _write_inline(writer, 60)  # ids 1..60: 61 - 0 waiting < 64
        assert not writer.index_behind(busy=True)
        _write_inline(writer, 40, start=60)  # ids 1..100
        assert writer.index_behind(busy=True)
        assert _upto(db) == 48  # 101 - 48 = 53 waiting: below 64
        assert not writer.index_behind(busy=True)
        steps = 0
        while writer.index_behind():
            steps += 1
        assert steps == 3 and _upto(db) == 96
        _check_all(db)
    finally:
        writer.close_inline()


def test_the_held_texts_never_index_deleted_events(tmp_path: Path, every_block: None) -> None:
    """Retention between a commit and its indexing: the index is built from what is
    stored, so blocks deleted later are taken out of it exactly."""
    db = tmp_path / "s.db"
    writer = StoreWriter(db)
    writer.start_inline()
    try:
        _write_inline(writer, 60)  # ids 1..60, not indexed
        fut = writer.run_retention(max_events=30, max_age_s=None)  # deletes 1..30
        writer.work_inline()
        assert fut.result(0)["events"] == 30
        _write_inline(writer, 20, start=60)  # ids 61..80
        while writer.index_behind():
            pass
        assert _upto(db) == 80
        assert _found(db, _token(db, 40)) == {40}
        _check_all(db)
        kept = _token(db, 50)
    finally:
        writer.close_inline()
    conn = connect(db)
    try:
        apply_retention(conn, max_events=30)  # 31..50 go: block 2 (32..47) and part of 3
    finally:
        conn.close()
    assert _blocks(db, kept) == set()
    assert _blocks(db, _token(db, 55)) == {55 // TEXT_BLOCK}
    _check_all(db)


def test_what_was_committed_before_a_retention_is_indexed_without_a_later_write(
    tmp_path: Path, every_block: None
) -> None:
    """Retention makes the writer forget the texts it held; what it had committed is
    still indexed when it next indexes, without waiting for another write."""
    db = tmp_path / "s.db"
    writer = StoreWriter(db)
    writer.start_inline()
    try:
        _write_inline(writer, 60)  # ids 1..60, not indexed
        fut = writer.run_retention(max_events=50, max_age_s=None)  # deletes 1..10
        writer.work_inline()
        assert fut.result(0)["events"] == 10
        while writer.index_behind():
            pass
        assert _upto(db) == 60 // TEXT_BLOCK * TEXT_BLOCK
        _check_all(db)
    finally:
        writer.close_inline()


_KILLED = """
import os, signal, sys, time
sys.path[:0] = {paths!r}
from mpsandbox.store import StoreWriter, text_index
from test_text_index import _write_inline
text_index.FEED_EVERY = 16
writer = StoreWriter({db!r})
writer.start_inline()
_write_inline(writer, 40, start=300)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_tail_left_unindexed_by_a_kill_is_found_and_indexed_after(
    tmp_path: Path, every_block: None
) -> None:
    """kill -9 between a commit and its indexing: the texts held are lost, the events are
    not; the scan finds them, and the next writer indexes them from the table."""
    import subprocess
    import sys

    db = tmp_path / "s.db"
    with StoreWriter(db) as writer:
        _write(writer, 20)  # ids 1..20: block 0 indexed
    assert _upto(db) == 16
    paths = [str(Path(__file__).parent), *sys.path]
    script = _KILLED.format(paths=paths, db=str(db))
    proc = subprocess.run([sys.executable, "-c", script], timeout=60)
    assert proc.returncode == -9
    assert _upto(db) == 16  # ids 21..60 committed, not indexed
    _check_all(db)
    assert _found(db, _token(db, 45)) == {45}
    with StoreWriter(db):  # the next writer indexes what was left, before any write
        pass
    assert _upto(db) == 48
    with StoreWriter(db) as writer:
        _write(writer, 10, start=400)  # ids 61..70
    assert _upto(db) == 64
    assert _blocks(db, _token(db, 45)) == {45 // TEXT_BLOCK}
    _check_all(db)


def test_the_store_process_indexes_once_the_writes_pause(tmp_path: Path) -> None:
    """The store process acknowledges a burst without indexing it (below MAX_BEHIND), and
    indexes it once no write came for a moment; its events are found all along."""
    from mpsandbox.store import ProcessStoreWriter

    db = tmp_path / "s.db"
    writer = ProcessStoreWriter(db)
    writer.start()
    try:
        futures = []
        for start in range(0, 1100, 100):
            when = time.time()
            request = RequestRecord(
                received_at=when, method="POST", path="/v1/events", query="", headers=[], body=b""
            )
            futures.append(
                writer.submit(request, [_event(j, when) for j in range(start, start + 100)])
            )
        for fut in futures:
            fut.result(30)
        assert _found(db, _token(db, 5)) == {5}
        deadline = time.monotonic() + 30
        while _upto(db) < 1024 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _upto(db) == 1024
        assert _blocks(db, _token(db, 5)) == {0}
        _check_all(db)
    finally:
        writer.close()


def test_a_closed_store_is_indexed(tmp_path: Path) -> None:
    """Closing the store process indexes what waits: the store on disk is complete (the
    disk figures count the index)."""
    from mpsandbox.store import ProcessStoreWriter

    db = tmp_path / "s.db"
    writer = ProcessStoreWriter(db)
    writer.start()
    try:
        when = time.time()
        request = RequestRecord(
            received_at=when, method="POST", path="/v1/events", query="", headers=[], body=b""
        )
        writer.submit(request, [_event(j, when) for j in range(1100)]).result(30)
    finally:
        writer.close()
    assert _upto(db) == 1024
    _check_all(db)


def test_texts_beyond_those_held_are_read_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, every_block: None
) -> None:
    """The writer holds the newest HELD_TEXTS texts; the index reads older ones back, and
    every block comes out the same."""
    from mpsandbox.store import writer as writer_module

    monkeypatch.setattr(writer_module, "HELD_TEXTS", 20)
    db = tmp_path / "s.db"
    writer = StoreWriter(db)
    writer.start_inline()
    try:
        _write_inline(writer, 70)
        assert len(writer._behind) <= 20 + 5
        while writer.index_behind():
            pass
    finally:
        writer.close_inline()
    assert _upto(db) == 64
    for event_id in (3, 20, 40, 63):
        assert _blocks(db, _token(db, event_id)) == {event_id // TEXT_BLOCK}
    _check_all(db)
