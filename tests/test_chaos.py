"""Chaos: a share of intake requests answered badly, so an author sees how a client retries.

Real servers on 127.0.0.1, real SQLite files, the real schemas; the CLI in real processes."""

from __future__ import annotations

import json
import sqlite3
import sys

import pytest

from mpsandbox.chaos import (
    Chaos,
    ChaosError,
    ChaosSettings,
    ChaosStore,
    parse_spec,
)
from tests.test_bad_input import VALID

PY = sys.executable


def event(**changes):
    e = json.loads(json.dumps(VALID))
    e.update(changes)
    return e


def batch(n: int) -> list[dict]:
    return [event(action=f"step{i}") for i in range(n)]


# --- the spec and the decision ------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "canonical"),
    [
        ("503:0.2,latency:200ms,drop:0.05", "503:0.2,drop:0.05,latency:200ms"),
        ("207:0.5,latency:50-400ms,seed:7", "207:0.5,latency:50-400ms,seed:7"),
        ("500:10%", "500:0.1"),
        (" 207:50%  failed:25% ", "207:0.5,failed:0.25"),
        ("LATENCY:1.5s", "latency:1500ms"),
        ("latency:50ms-1s", "latency:50-1000ms"),
        ("503:1,retry-after:5s", "503:1,retry-after:5"),
        ("500:0.25,503:0.25,207:0.25,drop:0.25", "500:0.25,503:0.25,207:0.25,drop:0.25"),
    ],
)
def test_spec_grammar_round_trips(spec, canonical):
    settings = parse_spec(spec)
    assert settings.spec() == canonical
    assert parse_spec(settings.spec()) == settings
    assert ChaosSettings.from_json(json.loads(json.dumps(settings.to_json()))) == settings


def test_off_and_json_forms():
    assert parse_spec("off") is None and parse_spec(" OFF ") is None
    s = ChaosSettings.from_json({"503": 0.2, "latency_ms": [50, 400], "seed": 7})
    assert s.spec() == "503:0.2,latency:50-400ms,seed:7"
    assert ChaosSettings.from_json({"207": "50%", "latency": "20ms"}).spec() == (
        "207:0.5,latency:20ms"
    )
    assert s.to_json() == {
        "500": 0.0,
        "503": 0.2,
        "207": 0.0,
        "drop": 0.0,
        "latency_ms": [50.0, 400.0],
        "failed": 0.5,
        "retry_after": 1,
        "seed": 7,
    }


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("", "empty"),
        ("503", "write KEY:VALUE"),
        ("503:abc", "a share is a number"),
        ("503:1.5", "between 0 and 1"),
        ("503:150%", "between 0 and 1"),
        ("404:0.1", "unknown key '404'"),
        ("503:0.1,503:0.2", "503 is given twice"),
        ("503:0.6,500:0.6", "add up to 1.2"),
        ("seed:7", "nothing to do"),
        ("failed:0.3,503:0.1", "failed: only means something with 207"),
        ("retry-after:3,500:0.1", "retry-after: only means something with 503"),
        ("latency:400-50ms", "from low to high"),
        ("latency:10m", "a duration is"),
        ("latency:301s", "at most 300 s"),
        ("207:0.5,failed:0", "more than 0"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec, says):
    with pytest.raises(ChaosError) as info:
        parse_spec(spec)
    assert says in str(info.value)


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ([], "JSON object"),
        ({"504": 0.1}, "unknown chaos setting '504'"),
        ({"503": True}, "503: a share must be a number"),
        ({"latency_ms": [1, 2, 3]}, "latency_ms"),
        ({"503": 0.1, "seed": 1.5}, "seed: a whole number"),
        ({}, "nothing to do"),
    ],
)
def test_bad_json_settings_say_what_is_wrong(data, says):
    with pytest.raises(ChaosError) as info:
        ChaosSettings.from_json(data)
    assert says in str(info.value)


def test_decisions_follow_the_shares_and_a_seed_repeats_them():
    settings = parse_spec("500:0.1,503:0.2,207:0.3,drop:0.05,latency:10-20ms,seed:42")
    first, second = Chaos(settings), Chaos(settings)
    a = [first.decide() for _ in range(4000)]
    assert a == [second.decide() for _ in range(4000)]
    shares = {kind: sum(d.injected == kind for d in a) / len(a) for kind in (500, 503, 207, "drop")}
    assert shares[500] == pytest.approx(0.1, abs=0.025)
    assert shares[503] == pytest.approx(0.2, abs=0.025)
    assert shares[207] == pytest.approx(0.3, abs=0.025)
    assert shares["drop"] == pytest.approx(0.05, abs=0.015)
    assert all(10 <= d.latency_ms <= 20 for d in a)
    assert len({d.latency_ms for d in a}) > 100  # drawn, not fixed
    # another seed, another sequence
    other = Chaos(parse_spec("500:0.1,503:0.2,207:0.3,drop:0.05,latency:10-20ms,seed:43"))
    assert [other.decide() for _ in range(50)] != a[:50]


def test_no_decision_when_nothing_applies_and_failed_bounds():
    chaos = Chaos(parse_spec("503:0.000001,seed:1"))
    assert [chaos.decide() for _ in range(100)] == [None] * 100
    chaos = Chaos(parse_spec("207:1,failed:0.9,seed:1"))
    assert chaos.choose_failed(1) == [0]  # one event: it fails
    assert len(chaos.choose_failed(2)) == 1  # one kept at least
    assert len(chaos.choose_failed(10)) == 9
    chaos = Chaos(parse_spec("207:1,failed:0.01,seed:1"))
    assert len(chaos.choose_failed(10)) == 1  # one failed at least
    picked = chaos.choose_failed(8)
    assert picked == sorted(set(picked)) and all(0 <= i < 8 for i in picked)


def test_store_is_off_on_a_fresh_database_and_shared_between_connections(tmp_path):
    db = tmp_path / "chaos.db"
    one = ChaosStore(db)
    state = one.state()
    assert not state.on and state.revision == 0 and state.set_by is None
    other = ChaosStore(db)
    change = one.set(parse_spec("503:0.5"), "cli")
    assert change["previous"]["on"] is False and change["chaos"]["spec"] == "503:0.5"
    seen = other.refresh()
    assert seen is not None and seen.spec == "503:0.5" and seen.set_by == "cli"
    assert other.refresh() is None  # nothing moved since
    one.off("api")
    assert other.state().on is False and other.state().set_by == "api"
    assert other.state().revision == 2
    with pytest.raises(ChaosError):
        one.set(None, "someone")
    one.close()
    other.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM chaos").fetchone()[0] == 1
        columns = [r[1] for r in conn.execute("PRAGMA table_info(requests)")]
        assert columns[-1] == "chaos"
