"""Findings stored as kind + facts: every reader shows what it showed before, derived on read.

The words are derived, not stored, so these tests check that what a reader shows of a
converted store (tests/data/store/release-0008.db) and of a fresh one is exactly what the
release that stored whole findings showed, and that nothing is lost for findings that do not
follow their kind's form.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from mpsandbox.pipeline import Pipeline, RequestContext
from mpsandbox.platform import findings as F
from mpsandbox.platform.history import History
from mpsandbox.platform.stream_configs import StreamConfigs
from mpsandbox.query import parse_query
from mpsandbox.records import RequestRecord
from mpsandbox.sandbox import build_registry
from mpsandbox.store import EventFilter, StoreReader, StoreWriter, codec, migrations
from tests.conftest import settings_for
from tests.store_snapshot import store_snapshot
from tests.test_platform_rules import CRAFTED, _run

DATA = Path(__file__).parent / "data" / "store"


@pytest.fixture(scope="module")
def migrated(tmp_path_factory) -> Path:
    """A copy of release-0008.db, opened (and so migrated) by the current writer."""
    db = tmp_path_factory.mktemp("release") / "release-0008.db"
    shutil.copy(DATA / "release-0008.db", db)
    with StoreWriter(db):
        pass
    return db


def stored_text(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    codec.register(conn)
    try:
        rows = conn.execute(
            "SELECT unpack_text(findings) FROM events WHERE findings IS NOT NULL"
        ).fetchall()
    finally:
        conn.close()
    return [text for (text,) in rows]


def stored_findings(db: Path) -> list[list]:
    return [json.loads(text) for text in stored_text(db)]


def test_a_converted_store_reads_as_before(migrated):
    expected = json.loads((DATA / "release-0008.expected.json").read_text())
    assert store_snapshot(migrated) == expected


def test_the_conversion_goes_a_chunk_at_a_time_to_the_same_result(migrated, tmp_path, monkeypatch):
    db = tmp_path / "small-chunks.db"
    shutil.copy(DATA / "release-0008.db", db)
    monkeypatch.setattr(migrations, "FINDINGS_CHUNK", 7)  # 192 events: 28 chunks
    with StoreWriter(db):
        pass
    assert stored_text(db) == stored_text(migrated)


def test_every_finding_of_the_old_store_is_kind_and_facts_worded_as_before(migrated):
    # Kept as [kind, facts] with nothing beside them: every message the old release stored
    # is derived from its kind and facts, word for word (the snapshot above compares them).
    entries = [f for findings in stored_findings(migrated) for f in findings]
    assert len(entries) >= 300
    assert {len(f) for f in entries} == {2}
    kinds = {f[0] for f in entries}
    assert {"sampling.decision", "time.dt_past", "funnel.gap", "duplicate.meta_id"} <= kinds
    # facts that follow from others are not stored (the expected form, the limits, the
    # sampling decision), and the frequent kinds keep their values without names
    by_kind = {f[0]: f[1] for f in entries}
    assert by_kind["ids.session_id_format"][1] == "web"
    assert len(by_kind["ids.session_id_format"]) == 2
    assert len(by_kind["sampling.decision"]) == 4
    assert set(by_kind["time.dt_past"]) == {"dt", "received_at", "skew_seconds"}


def test_the_store_keeps_facts_and_the_reader_gives_the_whole_findings(tmp_path):
    stream = "product_metrics.web_base"
    pipeline = Pipeline(build_registry(settings_for(tmp_path)), fill_ins=False)
    pipeline.stream_configs = StreamConfigs(
        {
            stream: {
                "schema_title": "analytics/product_metrics/web/base",
                "sample": {"unit": "session", "rate": 0.5},
            }
        }
    )
    event = {
        "$schema": "/analytics/product_metrics/web/base/1.3.0",
        "meta": {"stream": stream, "domain": "en.wikipedia.org"},
        "dt": "2024-10-01T11:59:59.123Z",
        "action": "click",
        "agent": {"client_platform": "mediawiki_js", "client_platform_family": "desktop_browser"},
        "performer": {"is_logged_in": False, "session_id": "F" * 20},
    }
    now = time.time()
    records = pipeline.judge_batch([event, dict(event)], RequestContext(received_at=now))
    db = tmp_path / "s.db"
    with StoreWriter(db) as writer:
        request = RequestRecord(now, "POST", "/v1/events", "", [], b"[]", status=201)
        writer.submit(request, records).result(10)
    for text in stored_text(db):
        assert "message" not in text and "severity" not in text and "should have" not in text
    with StoreReader(db) as reader:
        ids = [e["id"] for e in reader.list_events(newest_first=False)]
        shown = reader.get_event(ids[1])["findings"]
        # an info finding is filterable like any other
        decided = reader.list_events(EventFilter(query=parse_query("finding:sampling.decision")))
        assert len(decided) == 2
        assert len(reader.list_events(EventFilter(query=parse_query("has:finding")))) == 2
    by_kind = {f["kind"]: f for f in shown}
    assert set(by_kind) == {
        "sampling.decision",
        "sampling.out_of_sample",
        "ids.session_id_format",
        "time.dt_past",
        "duplicate.event",
    }
    assert by_kind["ids.session_id_format"] == {
        "kind": "ids.session_id_format",
        "severity": "warning",
        "message": f"performer.session_id {'F' * 20!r} is not 20 lowercase hex characters (web)",
        "facts": {
            "path": "performer.session_id",
            "value": "F" * 20,
            "platform": "web",
            "form": "hex20",
            "expected": "20 lowercase hex characters",
        },
    }
    past = by_kind["time.dt_past"]["facts"]
    assert past["dt"] == event["dt"] and past["max_past_seconds"] == 86_400
    assert past["skew_seconds"] == round(1727783999.123 - now, 3)
    assert by_kind["duplicate.event"]["facts"]["first"]["idx"] == 0
    assert by_kind["sampling.out_of_sample"]["message"] == (
        "should have been sampled out: performer.session_id FFFFFFFFFFFFFFFFFFFF is out of "
        "sample at rate 0.5 by the web rule"
    )


@pytest.mark.parametrize("kind", sorted(CRAFTED))
def test_each_kind_packs_to_its_stored_facts_and_back(kind):
    for finding in _run(CRAFTED[kind]):
        whole = finding.as_dict()
        entry = F.pack(whole)
        assert len(entry) == 2, entry  # nothing kept beside kind and facts
        assert F.render(json.loads(json.dumps(entry))) == whole


def test_stateful_kinds_pack_to_their_stored_facts_and_back():
    h = History()
    app = {"agent": {"client_platform": "android"}, "performer": {"session_id": "c" * 20}}
    script = [
        {"meta": {"id": "m"}},
        {"meta": {"id": "m"}},
        {"funnel_entry_token": "t", "funnel_event_sequence_position": 4},
        {"funnel_entry_token": "t", "funnel_event_sequence_position": 4},
        {**app, "dt": "2024-10-01T10:00:00Z"},
        {**app, "dt": "2024-10-01T10:47:13.5Z"},
    ]
    seen = set()
    for i, event in enumerate(script):
        for finding in h.observe(event, received_at=i, ref={"request": "r", "idx": i}):
            seen.add(finding.kind)
            entry = F.pack(finding.as_dict())
            assert len(entry) == 2, entry
            assert F.render(json.loads(json.dumps(entry))) == finding.as_dict()
    assert seen >= {"duplicate.meta_id", "funnel.gap", "funnel.repeat", "session.inactive_kept_id"}


@pytest.mark.parametrize(
    "whole",
    [
        # worded by another release
        {"kind": "funnel.repeat", "severity": "warning", "message": "old words", "facts": {"position": 2}},
        # a severity of its own
        {"kind": "time.dt_missing", "severity": "error", "message": "neither dt nor client_dt: the client time of the event is unknown", "facts": {"schema": None}},
        # facts that do not follow the kind's form (an expected form of another release)
        {"kind": "ids.pageview_id_format", "severity": "warning", "message": "m", "facts": {"path": "performer.pageview_id", "value": "x", "platform": "web", "form": None, "expected": "something else"}},
        # not a registered kind at all
        {"kind": "rules.failed", "severity": "info", "message": "boom", "facts": {"error": "KeyError"}},
    ],
)  # fmt: skip
def test_whatever_does_not_follow_a_form_is_kept(whole):
    entry = F.pack(whole)
    assert len(entry) == 3
    assert F.render(json.loads(json.dumps(entry))) == whole
