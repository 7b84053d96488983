"""The store's bytes on disk: packed event JSON and bodies, explanations stored once, and
migration 0010 converting a store written by the release before it (see docs/storage.md)."""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from mpsandbox.query import parse_query
from mpsandbox.records import EventRecord, RequestRecord
from mpsandbox.store import EventFilter, ProcessStoreWriter, StoreReader, StoreWriter, codec
from tests.store_snapshot import store_snapshot

DATA = Path(__file__).parent / "data" / "store"
RELEASE_0008 = DATA / "release-0008.db"
TITLE = "analytics/product_metrics/web/base"
EXPLANATION = {"schema_uri": f"/{TITLE}/1.3.0", "schema_location": "/somewhere/1.3.0.yaml"}


def on_disk(path: Path) -> int:
    """The database and its WAL after a checkpoint."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def migrated_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "release-0008.db"
    shutil.copyfile(RELEASE_0008, copy)
    writer = StoreWriter(copy)
    writer.start()
    writer.close()
    return copy


def test_release_0008_migrates_without_changing_what_faces_read(tmp_path: Path) -> None:
    copy = migrated_copy(tmp_path)
    expected = json.loads((DATA / "release-0008.expected.json").read_text())
    assert json.loads(json.dumps(store_snapshot(copy))) == expected


def test_migrated_release_0008_is_smaller(tmp_path: Path) -> None:
    copy = migrated_copy(tmp_path)
    assert on_disk(copy) < 0.8 * RELEASE_0008.stat().st_size
    with contextlib.closing(sqlite3.connect(copy)) as conn:
        kinds = {bytes(v)[0] for (v,) in conn.execute("SELECT event FROM events")}
        assert kinds <= {codec.RAW, codec.ZSTD}  # packed; too few events for a dictionary
        assert conn.execute("SELECT count(*) FROM explanations").fetchone()[0] < 10
        columns = {r[1] for r in conn.execute("PRAGMA table_info(events)")}
        assert "explanation" not in columns and "explanation_id" in columns


def test_migration_trains_a_dictionary_on_a_store_with_enough_events(tmp_path: Path) -> None:
    copy = tmp_path / "big.db"
    shutil.copyfile(RELEASE_0008, copy)
    with contextlib.closing(sqlite3.connect(copy)) as conn:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(events)") if r[1] != "id"]
        names = ", ".join(columns)
        for _ in range(5):  # 192 events -> 6,144 (1 MiB of JSON and more)
            conn.execute(f"INSERT INTO events ({names}) SELECT {names} FROM events")
        conn.commit()
        first = conn.execute("SELECT event FROM events ORDER BY id LIMIT 1").fetchone()[0]
    writer = StoreWriter(copy)
    writer.start()
    writer.close()
    with contextlib.closing(sqlite3.connect(copy)) as conn:
        dicts = {r[0] for r in conn.execute("SELECT column_name FROM codec_dicts")}
        assert "events.event" in dicts and "requests.body" not in dicts  # 50 bodies
        kinds = {bytes(v)[0] for (v,) in conn.execute("SELECT event FROM events")}
        assert codec.ZSTD_DICT in kinds
    with StoreReader(copy) as reader:
        assert reader.get_event(1)["event"] == json.loads(first)
        assert reader.count_events() == 6_144


def varied_event(i: int) -> dict:
    return {
        "$schema": f"/{TITLE}/1.3.0",
        "meta": {"stream": "product_metrics.web_base", "id": f"meta-{i:06d}"},
        "dt": f"2026-12-01T00:00:{i % 60:02d}Z",
        "action": ("click", "init", "hover")[i % 3],
        "page": {"id": i * 7919 % 100_003, "title": f"Page {i * 31 % 997}"},
        "performer": {"session_id": f"{i // 40:020x}", "pageview_id": f"{i // 8:020x}"},
        "experiment": {"enrolled": "toc-pinned", "assigned": "control"},
        "padding": " ".join(f"word{(i * k) % 101}" for k in range(60)),
    }


def finding(i: int) -> list[dict]:
    return [
        {
            "kind": "funnel.gap",
            "severity": "warning",
            "message": f"step {i % 8} missing",
            "facts": {},
        }
    ]


def submit(
    writer: StoreWriter | ProcessStoreWriter, start: int, n: int, explanation: dict | None = None
) -> None:
    received = [varied_event(i) for i in range(start, start + n)]
    body = json.dumps(received).encode()
    request = RequestRecord(
        received_at=time.time(),
        method="POST",
        path="/v1/events",
        query="",
        headers=[("content-type", "application/json")],
        body=body,
        status=201,
        event_count=n,
    )
    records = [
        EventRecord(
            index=k,
            received=e,
            verdict="valid",
            received_at=request.received_at,
            stream="product_metrics.web_base",
            schema_uri=f"/{TITLE}/1.3.0",
            schema_title=TITLE,
            schema_version="1.3.0",
            explanation=EXPLANATION if explanation is None else explanation,
            findings=finding(start + k),
            fills={"dt": {"value": "2026-12-01T00:00:00Z", "by": "fill"}} if k % 2 else {},
        )
        for k, e in enumerate(received)
    ]
    writer.submit(request, records).result(10)


def test_writer_trains_dictionaries_then_packs_with_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(codec, "TRAIN_BYTES", 64 * 1024)
    monkeypatch.setattr(codec, "TRAIN_MIN_SAMPLES", 32)
    db = tmp_path / "s.db"
    writer = StoreWriter(db)
    writer.start()
    try:
        for start in range(0, 400, 10):
            submit(writer, start, 10)
    finally:
        writer.close()
    with contextlib.closing(sqlite3.connect(db)) as conn:
        dicts = dict(conn.execute("SELECT column_name, id FROM codec_dicts"))
        assert set(dicts) == {"events.event", "requests.body"}
        event, body = conn.execute(
            "SELECT e.event, r.body FROM events e JOIN requests r ON r.id = e.request_id"
            " ORDER BY e.id DESC LIMIT 1"
        ).fetchone()
        assert event[0] == codec.ZSTD_DICT and event[1] == dicts["events.event"]
        (findings,) = conn.execute("SELECT findings FROM events ORDER BY id DESC").fetchone()
        assert isinstance(findings, bytes)  # packed (RAW: too short to gain)
        (fills,) = conn.execute("SELECT fills FROM events ORDER BY id DESC").fetchone()
        assert isinstance(fills, bytes)
        assert body[0] == codec.ZSTD_DICT
        (headers,) = conn.execute("SELECT headers FROM requests LIMIT 1").fetchone()
        assert isinstance(headers, bytes)  # packed
        assert len(event) < 0.3 * len(json.dumps(varied_event(399), separators=(",", ":")))
    # A writer started later packs with the stored dictionaries; readers read every row.
    writer = StoreWriter(db)
    writer.start()
    try:
        submit(writer, 400, 10)
    finally:
        writer.close()
    with StoreReader(db) as reader:
        newest = reader.list_events(limit=1)[0]
        full = reader.get_event(newest["id"])
        assert full["event"] == varied_event(409)
        assert full["findings"] == finding(409) and newest["findings_count"] == 1
        assert full["fills"] == {"dt": {"value": "2026-12-01T00:00:00Z", "by": "fill"}}
        assert reader.count_events(EventFilter(query=parse_query("has:fill"))) == 205
        assert json.loads(full["request"]["body"]) == [varied_event(i) for i in range(400, 410)]
        assert full["request"]["body_size"] == len(full["request"]["body"].encode())
        assert full["request"]["headers"] == [["content-type", "application/json"]]
        assert reader.list_requests(limit=1)[0]["body_size"] == full["request"]["body_size"]
        # SQL that reads the JSON: free text, and json_extract (experiment enrolment).
        hits = reader.list_events(EventFilter(query=parse_query('"meta-000123"')))
        assert [r["meta_id"] for r in hits] == ["meta-000123"]
        assert reader.count_events(EventFilter(text="PAGE 17")) == sum(
            1 for i in range(410) if "page 17" in json.dumps(varied_event(i)).lower()
        )
        enrolment = reader.experiment_enrollment()["groups"]
        assert enrolment == [{"experiment": "toc-pinned", "group": "control", "events": 410}]
        assert [e["event"] for e in reader.iter_events()] == [varied_event(i) for i in range(410)]


def test_the_store_process_packs_with_the_dictionaries_already_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store process opens its writer in its own thread (start_inline): it too must
    pack with the dictionaries a previous run trained, not train new ones."""
    monkeypatch.setattr(codec, "TRAIN_BYTES", 64 * 1024)
    monkeypatch.setattr(codec, "TRAIN_MIN_SAMPLES", 32)
    db = tmp_path / "s.db"
    with StoreWriter(db) as writer:
        for start in range(0, 400, 10):
            submit(writer, start, 10)
    with contextlib.closing(sqlite3.connect(db)) as conn:
        trained = dict(conn.execute("SELECT column_name, id FROM codec_dicts"))
    writer = ProcessStoreWriter(db)
    writer.start()
    try:
        submit(writer, 400, 10)
    finally:
        writer.close()
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert dict(conn.execute("SELECT column_name, id FROM codec_dicts")) == trained
        (event,) = conn.execute("SELECT event FROM events ORDER BY id DESC LIMIT 1").fetchone()
    assert event[0] == codec.ZSTD_DICT and event[1] == trained["events.event"]
    with StoreReader(db) as reader:
        assert reader.get_event(reader.max_event_id())["event"] == varied_event(409)


def test_event_json_written_before_packing_still_reads(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    writer = StoreWriter(db)
    writer.start()
    try:
        submit(writer, 0, 2)
        # As migration 0010 leaves a row it was not given (and as the release before it
        # wrote every row): plain JSON text.
        writer.run_in_writer(
            lambda c: c.execute(
                "UPDATE events SET event = ? WHERE id = 1", (json.dumps(varied_event(7)),)
            )
        ).result(5)
    finally:
        writer.close()
    with StoreReader(db) as reader:
        assert reader.get_event(1)["event"] == varied_event(7)
        assert reader.count_events(EventFilter(text="meta-000007")) == 1


def test_each_explanation_is_stored_once_and_goes_with_its_last_event(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    other = {**EXPLANATION, "hints": ["another"]}
    writer = StoreWriter(db)
    writer.start()
    try:
        for start in range(0, 50, 10):
            submit(writer, start, 10)
        submit(writer, 50, 10, explanation=other)
        with contextlib.closing(sqlite3.connect(db)) as conn:
            assert conn.execute("SELECT count(*) FROM explanations").fetchone()[0] == 2
        with StoreReader(db) as reader:
            assert reader.get_event(1)["explanation"] == EXPLANATION
            assert reader.get_event(55)["explanation"] == other
        # Retention keeps an explanation while an event uses it...
        writer.run_retention(5, None).result(5)
        with contextlib.closing(sqlite3.connect(db)) as conn:
            assert conn.execute("SELECT count(*) FROM explanations").fetchone()[0] == 1
        # ...and a later event of the same schema gets it again.
        submit(writer, 60, 10)
        with StoreReader(db) as reader:
            assert reader.get_event(61)["explanation"] == EXPLANATION
        writer.reset().result(5)
        with contextlib.closing(sqlite3.connect(db)) as conn:
            assert conn.execute("SELECT count(*) FROM explanations").fetchone()[0] == 0
        submit(writer, 70, 10)
        with StoreReader(db) as reader:
            assert reader.get_event(71)["explanation"] == EXPLANATION
    finally:
        writer.close()


def test_repeated_headers_are_packed_once_and_again_with_a_new_dictionary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Packer.pack_text remembers the last text: a repeat gives the same bytes, and once a
    dictionary is taken up the same text is packed with it, not served stale."""
    monkeypatch.setattr(codec, "TRAIN_BYTES", 16 * 1024)
    monkeypatch.setattr(codec, "TRAIN_MIN_SAMPLES", 32)
    conn = sqlite3.connect(tmp_path / "d.db")
    conn.execute("CREATE TABLE codec_dicts (id INTEGER PRIMARY KEY, column_name, data)")
    codec.register(conn)
    packer = codec.Packer("requests.headers")
    headers = json.dumps([["User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0"]] * 3)
    first = packer.pack_text(headers)
    assert packer.pack_text(headers) is first
    for i in range(300):
        packer.pack(json.dumps([["User-Agent", f"agent {i} " * 8], ["X-N", str(i)]]).encode())
    packer.train_if_ready(conn)
    packer.committed()
    again = packer.pack_text(headers)
    assert again[0] == codec.ZSTD_DICT and first[0] != codec.ZSTD_DICT
    dict_id = conn.execute("SELECT id FROM codec_dicts").fetchone()[0]
    conn.execute("CREATE TABLE t (v)")
    conn.execute("INSERT INTO t VALUES (?)", (again,))
    assert conn.execute("SELECT unpack_text(v) FROM t").fetchone()[0] == headers
    assert dict_id == 1
