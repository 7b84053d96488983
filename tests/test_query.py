"""The event query language: parsing, every error message, and the SQL it compiles to,
run against a real store written through the real pipeline and writer."""

from __future__ import annotations

import copy
import time
from datetime import datetime
from pathlib import Path

import pytest

from mpsandbox.pipeline import Pipeline, RequestContext
from mpsandbox.query import QUERY_EXAMPLES, QUERY_HELP, Query, QuerySyntaxError, parse_query
from mpsandbox.records import RequestRecord
from mpsandbox.sandbox import build_registry
from mpsandbox.store import EventFilter, StoreReader, StoreWriter, connect, open_database
from tests.conftest import settings_for
from tests.test_bad_input import VALID

# -- parsing -------------------------------------------------------------------------------


def terms(text: str) -> list[tuple[str | None, str, bool]]:
    return [(t.key, t.value, t.negated) for t in parse_query(text).terms]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("stream:a.b", [("stream", "a.b", False)]),
        ("action:click", [("action", "click", False)]),
        ("session:s1", [("session", "s1", False)]),
        ("pageview:p1", [("pageview", "p1", False)]),
        ("id:018f-abc", [("id", "018f-abc", False)]),
        ("request:12", [("request", "12", False)]),
        ("group:3", [("group", "3", False)]),
        ("is:valid", [("is", "valid", False)]),
        ("is:INVALID", [("is", "invalid", False)]),
        ("is:error", [("is", "error", False)]),
        ("has:fill", [("has", "fill", False)]),
        ("has:error", [("has", "error", False)]),
        ("schema:a/b", [("schema", "a/b", False)]),
        ("schema:a/b/1.0.0", [("schema", "a/b/1.0.0", False)]),
        ("schema:analytics/*", [("schema", "analytics/*", False)]),
        ("Stream:x", [("stream", "x", False)]),
        ("-stream:x", [("stream", "x", True)]),
        ("-is:valid", [("is", "valid", True)]),
        ('-"some text"', [(None, "some text", True)]),
        ("-word", [(None, "word", True)]),
        ('"a \\"quoted\\" \\\\ b"', [(None, 'a "quoted" \\ b', False)]),
        ('stream:"a b"', [("stream", "a b", False)]),
        ('-action:"x y"', [("action", "x y", True)]),
        ("plain words", [(None, "plain", False), (None, "words", False)]),
        ("https://example.org/x", [(None, "https://example.org/x", False)]),
        ("schema:/a/b", [("schema", "/a/b", False)]),
        ("12:30", [(None, "12:30", False)]),
        ("a-b:c", [(None, "a-b:c", False)]),
        ('say"hi"', [(None, 'say"hi"', False)]),
        ("  stream:a \t is:error  ", [("stream", "a", False), ("is", "error", False)]),
        ("", []),
    ],
)
def test_terms(text: str, expected) -> None:
    assert terms(text) == expected


def test_since_until_absolute_and_relative() -> None:
    q = parse_query("since:5m until:2024-10-01T12:00:00Z since:1d", now=1_000_000.0)
    since5, until, since1d = q.terms
    assert (since5.relative, since5.seconds) == (True, 300.0)
    assert (since1d.relative, since1d.seconds) == (True, 86400.0)
    assert not until.relative and until.seconds == 1727784000.0
    assert since5.sql(1_000_000.0) == ("received_at >= ?", [1_000_000.0 - 300])
    # A date without a zone is local time, as in the rest of the sandbox.
    local = parse_query("since:2024-10-01").terms[0]
    assert local.seconds == datetime(2024, 10, 1).timestamp()
    for text, seconds in (("30s", 30), ("2h", 7200), ("1w", 604800), ("1.5h", 5400)):
        assert parse_query(f"since:{text}").terms[0].seconds == seconds


def test_relative_times_follow_the_clock_unless_pinned() -> None:
    live = parse_query("since:1h")
    ((_, [at]),) = live.clauses()
    assert abs(at - (time.time() - 3600)) < 5
    pinned = parse_query("since:1h", now=10_000.0)
    assert pinned.clauses() == [("received_at >= ?", [6400.0])]
    assert pinned.clauses(now=20_000.0) == [("received_at >= ?", [16400.0])]


@pytest.mark.parametrize(
    ("text", "fragments", "position"),
    [
        ("strem:x", ['unknown key "strem:"', 'did you mean "stream"', '"strem:x"'], 0),
        ("is:valid sesion:1", ['unknown key "sesion:"', 'did you mean "session"'], 9),
        ("TypeError:boom", ['unknown key "TypeError:"', "keys are stream"], 0),
        ("zzz:1", ['unknown key "zzz:"'], 0),
        ('"abc', ["unterminated quote"], 0),
        ('stream:"abc', ["unterminated quote"], 7),
        ("is:error stream:", ["stream: needs a value"], 16),
        ("stream:", ["stream: needs a value (a stream name)"], 7),
        ('stream:""', ["stream: needs a value"], 7),
        ('""', ["empty quotes"], 0),
        ("is:bogus", ['is: takes valid, invalid, error or legacy; got "bogus"'], 3),
        ("is:invald", ['did you mean "invalid"'], 3),
        ("has:fil", ["has: takes error, fill, finding or flip", 'did you mean "fill"'], 4),
        ("finding:sampling.out_of_sampel", ["finding: takes", "sampling.out_of_sample"], 8),
        ("since:yesterday", ["since: takes an ISO date", '"yesterday"'], 6),
        ("until:5x", ["until: takes an ISO date"], 6),
        ("request:abc", ['request: takes a number; got "abc"'], 8),
        ("group:-1", ["group: takes a number"], 6),
        ("-", ['"-" must be followed by a term'], 0),
        ("a - b", ['"-" must be followed by a term'], 2),
        ("schema:a*b", ["* is only allowed at the end"], 8),
        ('stream:a"b"', ["quoted value must start right after the colon"], 8),
        ('stream:"a"b', ["put a space after the closing quote"], 10),
    ],
)
def test_syntax_errors(text: str, fragments: list[str], position: int) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse_query(text)
    err = info.value
    for fragment in fragments:
        assert fragment in err.message, (fragment, err.message)
    assert err.position == position, err.message
    assert isinstance(err, ValueError)
    assert str(err).endswith(f"(at character {position + 1})")


def test_same_key_ors_other_keys_and() -> None:
    q = parse_query("stream:a is:invalid stream:b -stream:c -stream:d")
    where, params = q.where()
    assert where == (
        "NOT coalesce((stream = ?), 0) AND NOT coalesce((stream = ?), 0)"
        " AND stream IN (?, ?) AND verdict = ?"
    )
    assert params == ["c", "d", "a", "b", "invalid"]
    # Non-equality keys OR their clauses too.
    where, _ = parse_query("schema:a/b schema:c/*").where()
    assert where == "((schema_title = ?) OR (schema_title >= ? AND schema_title < ?))"
    # Free text: every word must appear (a clause each, ANDed; each tests its text).
    clauses = parse_query("foo bar").clauses()
    assert len(clauses) == 2
    assert [params[-1] for _, params in clauses] == ["%foo%", "%bar%"]


def test_describe() -> None:
    q = parse_query('stream:a stream:b -is:valid "x y" since:5m has:error schema:a/*', now=0)
    assert q.describe() == (
        'stream a or b; not valid; text "x y"; since 5 minutes ago; with errors; schema a/…'
    )
    assert parse_query("").describe() == "all events"
    assert parse_query("since:1h until:2024-01-01").describe() == (
        "since 1 hour ago; before 2024-01-01"
    )


def test_help_covers_every_key_and_examples_parse() -> None:
    from mpsandbox.query import KEYS

    syntax = " ".join(s for s, _ in QUERY_HELP)
    for key in KEYS:
        assert f"{key}:" in syntax, key
    for example, meaning in QUERY_EXAMPLES:
        assert parse_query(example).terms and meaning


def test_event_filter_is_empty() -> None:
    assert EventFilter().is_empty()
    assert EventFilter(query=parse_query("  ")).is_empty()
    assert not EventFilter(query=parse_query("is:valid")).is_empty()
    assert not EventFilter(error_group=1).is_empty()
    assert not EventFilter(stream="x").is_empty()
    assert not EventFilter(stream=[]).is_empty()


# -- against a real store ------------------------------------------------------------------


def _event(**changes):
    e = copy.deepcopy(VALID)
    for key, value in changes.items():
        if value is None:
            e.pop(key, None)
        else:
            e[key] = value
    return e


#: (label, event): labels name the events in expectations below.
CORPUS = [
    ("click", _event()),
    ("hover", _event(action="hover")),
    ("other_stream", _event(meta={"stream": "other.stream", "dt": "2024-10-01T00:00:00Z"})),
    ("bad_type", _event(action=42)),
    ("no_action", _event(action=None)),
    ("no_schema", _event(**{"$schema": None})),
    ("unknown_schema", _event(**{"$schema": "/analytics/nope/1.0.0"})),
    ("not_an_object", [1, 2]),
    ("no_stream", _event(meta={"dt": "2024-10-01T00:00:00Z"})),
    ("session2", _event(performer={"is_logged_in": False, "session_id": "zzzzzzzzzz0123456789"})),
    ("text_hit", _event(action="The Needle")),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """The corpus judged by the real pipeline and written by the real writer, one request
    per event, an hour apart; returns (reader, {label: id}, {label: record})."""
    tmp: Path = tmp_path_factory.mktemp("query")
    pipeline = Pipeline(build_registry(settings_for(tmp)))
    base = time.time() - 3600 * len(CORPUS)
    ids, records = {}, {}
    with StoreWriter(tmp / "q.db") as writer:
        for n, (label, body) in enumerate(CORPUS):
            at = base + 3600 * n
            record = pipeline.judge(body, RequestContext(received_at=at))
            request = RequestRecord(
                received_at=at, method="POST", path="/v1/events", query="", headers=[],
                body=b"[]", status=201, event_count=1,
            )  # fmt: skip
            _, [event_id] = writer.submit(request, [record]).result(10)
            ids[label], records[label] = event_id, record
    reader = StoreReader(tmp / "q.db")
    yield reader, ids, records
    reader.close()


def matching(store, text: str) -> set[str]:
    reader, ids, _ = store
    by_id = {v: k for k, v in ids.items()}
    rows = reader.list_events(EventFilter(query=parse_query(text)), limit=1000)
    assert reader.count_events(EventFilter(query=parse_query(text))) == len(rows)
    return {by_id[r["id"]] for r in rows}


ALL = {label for label, _ in CORPUS}
INVALID = {"bad_type", "no_action", "no_stream"}
ERRORS = {"no_schema", "unknown_schema", "not_an_object"}
NO_STREAM = {"other_stream", "no_stream", "not_an_object"}
CLICKS = {"click", "other_stream", "no_stream", "session2", "no_schema", "unknown_schema"}
WEB_BASE_SCHEMA = ALL - ERRORS


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ALL),
        ("stream:product_metrics.web_base", ALL - NO_STREAM),
        ("-stream:product_metrics.web_base", NO_STREAM),
        ("stream:other.stream stream:nope", {"other_stream"}),
        ("-stream:other.stream -stream:product_metrics.web_base", {"no_stream", "not_an_object"}),
        ("is:invalid", INVALID),
        ("is:error", ERRORS),
        ("is:invalid is:error", INVALID | ERRORS),
        ("-is:valid", INVALID | ERRORS),
        ("-is:valid -is:invalid", ERRORS),
        ("has:error", INVALID | ERRORS),
        ("-has:error", ALL - INVALID - ERRORS),
        ("action:hover", {"hover"}),
        ("action:hover action:click", CLICKS | {"hover"}),
        # Events without an action (a number, missing, not an object) are "not click".
        ("-action:click", {"hover", "bad_type", "no_action", "not_an_object", "text_hit"}),
        ("session:zzzzzzzzzz0123456789", {"session2"}),
        ("schema:analytics/product_metrics/web/base", WEB_BASE_SCHEMA),
        ("schema:analytics/product_metrics/web/base/1.3.0", WEB_BASE_SCHEMA),
        ("schema:/analytics/product_metrics/web/base/1", WEB_BASE_SCHEMA),
        ("schema:analytics/product_metrics/web/base/2", set()),
        ("schema:analytics/product_metrics/web/base schema:analytics/nope", ALL - {"no_schema", "not_an_object"}),
        ("schema:analytics/*", ALL - {"no_schema", "not_an_object"}),
        ("schema:/analytics/no*", {"unknown_schema"}),
        ("schema:analytics/nope/*", set()),
        ("schema:*", ALL - {"no_schema", "not_an_object"}),
        ("-schema:analytics/product_metrics/*", ERRORS),
        ("needle", {"text_hit"}),
        ('"THE NEEDLE"', {"text_hit"}),
        ("-needle", ALL - {"text_hit"}),
        ("needle hover", set()),
        ("has:fill", ALL - ERRORS),
        ("-has:fill", ERRORS),
        ('stream:"other.stream" -is:error', {"other_stream"}),
        ("is:error -stream:product_metrics.web_base", {"not_an_object"}),
    ],
)  # fmt: skip
def test_queries_select_the_right_events(store, text: str, expected: set[str]) -> None:
    assert matching(store, text) == expected


def test_time_request_and_id_terms(store) -> None:
    reader, ids, records = store
    # Half an hour before "bad_type" (events are an hour apart): a float round trip
    # through ISO text can move an exact timestamp by a microsecond either way.
    mid = records["bad_type"].received_at - 1800
    iso = datetime.fromtimestamp(mid).isoformat()
    order = [label for label, _ in CORPUS]
    after = set(order[order.index("bad_type") :])
    assert matching(store, f"since:{iso}") == after
    assert matching(store, f"until:{iso}") == ALL - after
    assert matching(store, f"-since:{iso}") == ALL - after
    # The corpus spans the last len(CORPUS) hours.
    assert matching(store, "since:150m") == set(order[-2:])
    assert matching(store, "since:1w") == ALL
    event = reader.get_event(ids["hover"])
    assert matching(store, f"request:{event['request_id']}") == {"hover"}
    assert matching(store, f"-request:{event['request_id']}") == ALL - {"hover"}
    meta_id = event["accepted"]["meta"]["id"]
    assert matching(store, f"id:{meta_id}") == {"hover"}


def test_query_ands_with_the_other_filter_fields(store) -> None:
    reader, ids, _ = store
    flt = EventFilter(verdict="invalid", query=parse_query("action:hover action:42"))
    assert reader.list_events(flt) == []
    flt = EventFilter(stream="product_metrics.web_base", query=parse_query("-is:valid"))
    got = {r["id"] for r in reader.list_events(flt)}
    assert got == {ids[k] for k in (INVALID | ERRORS) - NO_STREAM}


def test_query_type() -> None:
    q = parse_query("is:valid")
    assert isinstance(q, Query) and str(q) == "is:valid" and not q.is_empty()


# -- plans -----------------------------------------------------------------------------------


def plan(conn, flt: EventFilter) -> str:
    where, params = flt.where()
    return " | ".join(
        row[3]
        for row in conn.execute(
            f"EXPLAIN QUERY PLAN SELECT id FROM events WHERE {where}"
            " AND id < ? ORDER BY id DESC LIMIT 50",
            [*params, 10**9],
        )
    )


@pytest.mark.parametrize(
    ("text", "index"),
    [
        ("stream:x", "events_stream"),
        ("is:invalid", "events_verdict"),
        ("is:invalid -stream:x", "events_verdict"),
        ("schema:a/b", "events_schema"),
        ("schema:a/b/1.0.0", "events_schema"),
        ("schema:a/b/1", "events_schema"),
        ("session:s", "events_session"),
        ("action:a", "events_action"),
        ("pageview:p", "events_pageview"),
        ("session:s needle", "events_session"),
    ],
)
def test_terms_use_an_index_newest_first_without_sorting(tmp_path, text: str, index: str):
    db = tmp_path / "plan.db"
    open_database(db).close()
    conn = connect(db, readonly=True)
    try:
        p = plan(conn, EventFilter(query=parse_query(text)))
    finally:
        conn.close()
    assert f"INDEX {index} " in p, p
    assert "TEMP B-TREE" not in p, p


def test_group_and_id_terms_use_indexes(tmp_path) -> None:
    db = tmp_path / "plan.db"
    open_database(db).close()
    conn = connect(db, readonly=True)
    try:
        p = plan(conn, EventFilter(query=parse_query("group:1")))
        assert "error_links" in p and "SCAN events" not in p, p
        # Either of two streams: both read on the index, merged by a sort of what matched.
        p = plan(conn, EventFilter(query=parse_query("stream:a stream:b")))
        assert "events_stream" in p, p
        p = plan(conn, EventFilter(query=parse_query("id:m")))
        assert "events_meta_id" in p, p
        p = plan(conn, EventFilter(query=parse_query("schema:analytics/*")))
        assert "events_schema" in p, p
    finally:
        conn.close()
