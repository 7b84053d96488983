"""Placing AJV errors on fields, terminal-safe text, the schema catalog and curl resends."""

from __future__ import annotations

import subprocess

import pytest

from mpsandbox import jsonio
from mpsandbox.config import Settings
from mpsandbox.explain import detail, is_missing, parse_data_path, value_at
from mpsandbox.pipeline import Pipeline, RequestContext
from mpsandbox.resend import curl_command
from mpsandbox.sandbox import build_registry
from mpsandbox.schemas.catalog import catalog
from mpsandbox.schemas.sources import DirectorySource
from mpsandbox.tui.safe_text import clean
from tests.conftest import PRIMARY, RECORDED, SECONDARY


@pytest.mark.parametrize(
    ("data_path", "keys"),
    [
        ("", []),
        (".meta.stream", ["meta", "stream"]),
        ("['user-agent']", ["user-agent"]),
        (".http.request_headers['user-agent']", ["http", "request_headers", "user-agent"]),
        (".items[3].name", ["items", 3, "name"]),
        ("['it\\'s']", ["it's"]),
        ("meta", None),
    ],
)
def test_ajv_data_paths_become_keys(data_path, keys):
    assert parse_data_path(data_path) == keys


def test_value_at_tells_absent_from_null():
    doc = {"a": {"b": None}, "l": [1, 2]}
    assert value_at(doc, ["a", "b"]) is None
    assert is_missing(value_at(doc, ["a", "c"]))
    assert value_at(doc, ["l", 1]) == 2 and is_missing(value_at(doc, ["l", 5]))


def test_real_errors_are_placed_on_their_fields_with_expected_and_actual():
    pipeline = Pipeline(build_registry(Settings(schema_dirs=(SECONDARY, PRIMARY))))
    event = jsonio.loads((RECORDED / "req/invalid_web_base.json").read_bytes())
    record = pipeline.judge(event, RequestContext())
    assert record.verdict == "invalid"
    details = {
        d.keyword + d.message: d for d in (detail(record.accepted, e) for e in record.errors)
    }
    by_keyword = {d.keyword: d for d in details.values()}
    assert by_keyword["type"].field == ("action",)
    assert by_keyword["type"].expected == "type string"
    assert by_keyword["type"].actual == "integer 42"
    assert by_keyword["minLength"].field == ("performer", "session_id")
    assert by_keyword["minLength"].actual == "9 characters"
    assert by_keyword["enum"].actual == '"windows"'
    assert by_keyword["additionalProperties"].field == ("unknown_field",)
    missing = detail(
        {"meta": {}},
        {
            "keyword": "required",
            "dataPath": ".meta",
            "params": {"missingProperty": "stream"},
            "message": "x",
        },
    )
    assert missing.field == ("meta", "stream") and missing.actual == "absent"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("[bold red]x[/]", "[bold red]x[/]"),
        ("\x1b[31mred", "\\u001b[31mred"),
        ("a\nb\tc\rd", "a\\nb\\tc\\rd"),
        ("\u202eevil", "\\u202eevil"),
        ("\x9b2J", "\\u009b2J"),
        ("שלום 👩‍💻", "שלום 👩‍💻"),
    ],
)
def test_clean_keeps_text_and_neutralises_control_sequences(raw, shown):
    assert clean(raw) == shown


def test_clean_cuts_long_values_cheaply():
    assert clean("x" * 10_000_000, 20) == "x" * 19 + "…"


def test_catalog_lists_titles_and_names_broken_files(tmp_path):
    c = catalog(DirectorySource(SECONDARY))
    assert "analytics/product_metrics/web/base" in c.titles
    assert "1.3.0" in c.titles["analytics/product_metrics/web/base"]
    assert not c.problems
    (tmp_path / "x/y").mkdir(parents=True)
    (tmp_path / "x/y/1.0.0.yaml").write_text("title: x/y\nbad: [\n")
    (tmp_path / "x/y/current.yaml").write_text("title: x/y\n")
    broken = catalog(DirectorySource(tmp_path))
    assert broken.titles == {"x/y": ["1.0.0"]}
    [(path, message)] = broken.problems.items()
    assert path.endswith("x/y/1.0.0.yaml") and "line" in message


def test_curl_command_resends_the_exact_event():
    event = {"weird": 'it\'s $HOME `ls` "quoted" \\ back', "n": 1}
    cmd = curl_command(event, "http://127.0.0.1:9/v1/events")
    # Ask the shell to echo the body curl would send, instead of sending it.
    echoed = subprocess.run(
        ["sh", "-c", cmd.replace("curl ", "printf '%s\\n' ", 1)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert jsonio.loads(echoed[echoed.index("--data-binary") + 1]) == event
