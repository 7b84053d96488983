"""The core reads the platform screens use: streams seen, enrollment by experiment and
group, the what-if on a reader, and a stream's effective sampling (configured or
overridden); on the platform fixture, built through the real pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest

from mpsandbox.platform.stream_configs import parse_stream_configs
from mpsandbox.store import StoreReader
from mpsandbox.whatif import sampling_whatif_stored, stream_sample
from tests.tui_fixture import STREAM_CONFIG, build_fixture_db


@pytest.fixture(scope="module")
def reader(tmp_path_factory) -> StoreReader:
    path: Path = tmp_path_factory.mktemp("views") / "fixture.db"
    build_fixture_db(path, platform=True)
    with StoreReader(path) as r:
        yield r


def test_seen_streams(reader):
    assert reader.seen_streams() == ["product_metrics.web_base"]
    assert reader.seen_streams(limit=0) == []


def test_experiment_enrollment_counts_and_bound(reader):
    full = reader.experiment_enrollment()
    assert full == {
        "groups": [
            {"experiment": "fixture-button-test", "group": "control", "events": 1},
            {"experiment": "fixture-button-test", "group": "treatment", "events": 2},
            {"experiment": "fixture-user-test", "group": "b", "events": 1},
        ],
        "scanned": 39,
        "bounded": False,
    }
    newest = reader.experiment_enrollment(scan=2)  # the two newest events only
    assert newest["bounded"] and newest["scanned"] == 2
    assert [(g["experiment"], g["group"]) for g in newest["groups"]] == [
        ("fixture-button-test", "control"),
        ("fixture-user-test", "b"),
    ]


def test_sampling_whatif_on_the_reader(reader):
    result = sampling_whatif_stored(
        reader, unit="session", rate=0.25, stream="product_metrics.web_base"
    )
    assert result["identifier_field"] == "performer.session_id"
    stream = result["scopes"]["stream"]
    assert stream["ids"] == 7 and stream["web"]["in_sample"] == 2
    assert stream["app"]["in_sample"] == 1


def test_stream_sample_configured_overridden_and_unknown():
    configs = parse_stream_configs(STREAM_CONFIG, source="streams.yaml")
    web = "product_metrics.web_base"
    assert stream_sample(configs, web) == {
        "key": web,
        "unit": "session",
        "configured_rate": 0.5,
        "override_rate": None,
        "rate": 0.5,
    }
    assert stream_sample(configs, web, {web: 1})["rate"] == 1.0
    # An override of the /regex/ key applies to the streams it matches; the name wins.
    regex = "/^mpsandbox\\..+/"
    assert stream_sample(configs, "mpsandbox.x", {regex: 0.2})["override_rate"] == 0.2
    assert stream_sample(configs, "mpsandbox.x", {regex: 0.2, "mpsandbox.x": 0.3})["rate"] == 0.3
    assert stream_sample(configs, "mpsandbox.x")["rate"] is None  # no sample config
    assert stream_sample(configs, "nope")["key"] is None
    assert stream_sample(None, web)["rate"] is None
