"""The validator must answer exactly as EventGate (AJV 6) does.

First against the real thing: every invalid event in the recorded EventGate run must produce
the recorded ``context.errors`` (same order, same fields) and ``errorsText``. Then keyword by
keyword, with expectations taken from AJV 6.12 itself, so that the parts the recording does not
reach (composites, tuples, dependencies, dynamic keys, key order, defaults) are pinned too.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from mpsandbox.schemas.validator import CompiledSchema, SchemaCompileError, errors_text

WM = Path(__file__).resolve().parent / "data"
SECONDARY = WM / "schemas" / "secondary" / "jsonschema"
RECORDED = WM / "eventgate" / "recorded-local-run"
EVENTGATE_TEST_SCHEMAS = WM / "eventgate" / "test" / "schemas"

#: response file -> request body it answered (see the recorded run's req/ directory)
RECORDED_CASES = {
    "02_invalid_single.txt": "invalid_web_base.json",
    "03_batch_mixed.txt": "batch_mixed.json",
    "04_batch_all_invalid.txt": "batch_all_invalid.json",
    "08_missing_meta_dt.txt": "missing_meta_dt.json",
    "25_xrequestid_header.txt": "invalid_web_base.json",
    "26_format_and_coercion.txt": "format_and_coercion.json",
}


def load_schema_for(uri: str, base: Path = SECONDARY) -> dict:
    """Find ``uri`` the way EventGate does: plain concatenation, ``.yaml`` for an
    extension-less last part, and the repositories' text-file "symlinks" followed."""
    path = base / uri.lstrip("/")
    for _ in range(5):
        if not path.exists() and path.suffix != ".yaml":
            path = path.with_name(path.name + ".yaml")
        text = path.read_text()
        loaded = yaml.safe_load(text)
        if isinstance(loaded, dict):
            return loaded
        assert isinstance(loaded, str), f"{path} is neither a schema nor a link"
        path = path.with_name(loaded.strip())
    raise AssertionError(f"link loop at {path}")


def parse_response(path: Path) -> tuple[int, dict | None]:
    raw = path.read_text()
    head, _, body = raw.partition("\n\n")
    status = int(head.split()[1])
    return status, json.loads(body) if body.strip() else None


def request_events(name: str) -> list[dict]:
    body = json.loads((RECORDED / "req" / name).read_text())
    return body if isinstance(body, list) else [body]


# -- the recorded EventGate run ------------------------------------------------------------


@pytest.mark.parametrize("response_name", sorted(RECORDED_CASES))
def test_recorded_eventgate_errors_are_reproduced_exactly(response_name: str) -> None:
    status, body = parse_response(RECORDED / "responses" / response_name)
    assert status in (207, 400) and body is not None
    sent = request_events(RECORDED_CASES[response_name])
    invalid = body["invalid"]
    assert invalid, "the recording holds no invalid event"
    for entry in invalid:
        event = copy.deepcopy(entry["event"])
        assert event in sent, "the response event is not one the request sent"
        compiled = CompiledSchema(load_schema_for(event["$schema"]), uri=event["$schema"])
        compiled.apply_defaults(event)
        errors = compiled.errors(event)
        assert errors == entry["context"]["errors"]
        assert errors_text(errors) == entry["context"]["errorsText"]
        assert compiled.is_valid(event) is False


@pytest.mark.parametrize("request_name", ["valid_web_base.json", "batch_mixed.json"])
def test_recorded_accepted_events_are_valid(request_name: str) -> None:
    accepted = [e for e in request_events(request_name) if e.get("action") == "click"]
    assert accepted
    for event in accepted:
        compiled = CompiledSchema(load_schema_for(event["$schema"]), uri=event["$schema"])
        compiled.apply_defaults(event)
        assert compiled.errors(event) == []
        assert compiled.is_valid(event) is True


def test_latest_link_resolves_to_the_same_schema() -> None:
    latest = load_schema_for("/analytics/product_metrics/web/base/latest")
    assert latest["$id"] == "/analytics/product_metrics/web/base/1.3.0"


# -- keyword by keyword (expectations produced by AJV 6.12.6) ------------------------------


def E(keyword: str, data_path: str, schema_path: str, params: dict, message: str) -> dict:
    return {
        "keyword": keyword,
        "dataPath": data_path,
        "schemaPath": schema_path,
        "params": params,
        "message": message,
    }


def _type(dp: str, sp: str, t: str) -> dict:
    return E("type", dp, sp, {"type": t}, f"should be {t}")


def _additional(key: str, dp: str = "", sp: str = "#/additionalProperties") -> dict:
    return E(
        "additionalProperties",
        dp,
        sp,
        {"additionalProperty": key},
        "should NOT have additional properties",
    )


def _required(prop: str, dp: str = "", sp: str = "#/required") -> dict:
    return E(
        "required", dp, sp, {"missingProperty": prop}, f"should have required property '{prop}'"
    )


KEYWORD_CASES: list[tuple[str, dict, Any, list[dict]]] = [
    (
        "type",
        {"properties": {"a": {"type": "string"}}},
        {"a": 1},
        [_type(".a", "#/properties/a/type", "string")],
    ),
    (
        "type array",
        {"properties": {"a": {"type": ["string", "null"]}}},
        {"a": 1},
        [_type(".a", "#/properties/a/type", "string,null")],
    ),
    (
        "type integer first",
        {"type": "integer", "minimum": 5},
        "x",
        [_type("", "#/type", "integer")],
    ),
    (
        "type inside its group",
        {"type": "string", "maxLength": 3},
        5,
        [_type("", "#/type", "string")],
    ),
    (
        "additionalProperties",
        {"properties": {"a": {}}, "additionalProperties": False},
        {"a": 1, "b": 2, "c d": 3},
        [_additional("b"), _additional("c d")],
    ),
    (
        "enum",
        {"enum": ["x", 1]},
        True,
        [
            E(
                "enum",
                "",
                "#/enum",
                {"allowedValues": ["x", 1]},
                "should be equal to one of the allowed values",
            )
        ],
    ),
    (
        "const",
        {"const": {"a": 1}},
        {"a": True},
        [E("const", "", "#/const", {"allowedValue": {"a": 1}}, "should be equal to constant")],
    ),
    (
        "minLength",
        {"minLength": 3},
        "ab",
        [
            E(
                "minLength",
                "",
                "#/minLength",
                {"limit": 3},
                "should NOT be shorter than 3 characters",
            )
        ],
    ),
    (
        "maxLength",
        {"maxLength": 2},
        "abc",
        [E("maxLength", "", "#/maxLength", {"limit": 2}, "should NOT be longer than 2 characters")],
    ),
    (
        "pattern",
        {"pattern": "^a$"},
        "a\n",
        [E("pattern", "", "#/pattern", {"pattern": "^a$"}, 'should match pattern "^a$"')],
    ),
    (
        "format",
        {"format": "date-time"},
        "yesterday",
        [E("format", "", "#/format", {"format": "date-time"}, 'should match format "date-time"')],
    ),
    (
        "minimum",
        {"minimum": 1.5},
        1,
        [
            E(
                "minimum",
                "",
                "#/minimum",
                {"comparison": ">=", "limit": 1.5, "exclusive": False},
                "should be >= 1.5",
            )
        ],
    ),
    (
        "exclusiveMinimum",
        {"exclusiveMinimum": 1},
        1,
        [
            E(
                "exclusiveMinimum",
                "",
                "#/exclusiveMinimum",
                {"comparison": ">", "limit": 1, "exclusive": True},
                "should be > 1",
            )
        ],
    ),
    (
        "maximum",
        {"maximum": 10},
        11,
        [
            E(
                "maximum",
                "",
                "#/maximum",
                {"comparison": "<=", "limit": 10, "exclusive": False},
                "should be <= 10",
            )
        ],
    ),
    (
        "exclusiveMaximum",
        {"exclusiveMaximum": 10},
        10,
        [
            E(
                "exclusiveMaximum",
                "",
                "#/exclusiveMaximum",
                {"comparison": "<", "limit": 10, "exclusive": True},
                "should be < 10",
            )
        ],
    ),
    (
        "multipleOf is floating point",
        {"multipleOf": 0.1},
        0.3,
        [E("multipleOf", "", "#/multipleOf", {"multipleOf": 0.1}, "should be multiple of 0.1")],
    ),
    (
        "minItems",
        {"minItems": 2},
        [1],
        [E("minItems", "", "#/minItems", {"limit": 2}, "should NOT have fewer than 2 items")],
    ),
    (
        "maxItems",
        {"maxItems": 1},
        [1, 2],
        [E("maxItems", "", "#/maxItems", {"limit": 1}, "should NOT have more than 1 items")],
    ),
    (
        "additionalItems",
        {"items": [{}, {}], "additionalItems": False},
        [1, 2, 3],
        [
            E(
                "additionalItems",
                "",
                "#/additionalItems",
                {"limit": 2},
                "should NOT have more than 2 items",
            )
        ],
    ),
    (
        "uniqueItems compares deeply from the end",
        {"uniqueItems": True},
        [1, {"a": 1}, 2, {"a": 1}],
        [
            E(
                "uniqueItems",
                "",
                "#/uniqueItems",
                {"i": 3, "j": 1},
                "should NOT have duplicate items (items ## 1 and 3 are identical)",
            )
        ],
    ),
    (
        "uniqueItems hashes scalar item types (i is the earlier index)",
        {"items": {"type": "string"}, "uniqueItems": True},
        ["a", "b", "a"],
        [
            E(
                "uniqueItems",
                "",
                "#/uniqueItems",
                {"i": 0, "j": 2},
                "should NOT have duplicate items (items ## 2 and 0 are identical)",
            )
        ],
    ),
    (
        "contains reports every item's errors first",
        {"contains": {"type": "string"}},
        [1, 2],
        [
            _type("[0]", "#/contains/type", "string"),
            _type("[1]", "#/contains/type", "string"),
            E("contains", "", "#/contains", {}, "should contain a valid item"),
        ],
    ),
    (
        "minProperties",
        {"minProperties": 2},
        {"a": 1},
        [
            E(
                "minProperties",
                "",
                "#/minProperties",
                {"limit": 2},
                "should NOT have fewer than 2 properties",
            )
        ],
    ),
    (
        "maxProperties",
        {"maxProperties": 1},
        {"a": 1, "b": 2},
        [
            E(
                "maxProperties",
                "",
                "#/maxProperties",
                {"limit": 1},
                "should NOT have more than 1 properties",
            )
        ],
    ),
    (
        "dependencies (one)",
        {"dependencies": {"a": ["b"]}},
        {"a": 1},
        [
            E(
                "dependencies",
                "",
                "#/dependencies",
                {"property": "a", "missingProperty": "b", "depsCount": 1, "deps": "b"},
                "should have property b when property a is present",
            )
        ],
    ),
    (
        "dependencies (several)",
        {"dependencies": {"a": ["b", "c"]}},
        {"a": 1, "c": 1},
        [
            E(
                "dependencies",
                "",
                "#/dependencies",
                {"property": "a", "missingProperty": "b", "depsCount": 2, "deps": "b, c"},
                "should have properties b, c when property a is present",
            )
        ],
    ),
    (
        "propertyNames",
        {"propertyNames": {"maxLength": 3}},
        {"abcd": 1, "ab": 2},
        [
            E(
                "maxLength",
                "",
                "#/propertyNames/maxLength",
                {"limit": 3},
                "should NOT be longer than 3 characters",
            ),
            E(
                "propertyNames",
                "",
                "#/propertyNames",
                {"propertyName": "abcd"},
                "property name 'abcd' is invalid",
            ),
        ],
    ),
    ("not", {"not": {"type": "string"}}, "x", [E("not", "", "#/not", {}, "should NOT be valid")]),
    (
        "anyOf",
        {"anyOf": [{"type": "string"}, {"minimum": 5}]},
        1,
        [
            _type("", "#/anyOf/0/type", "string"),
            E(
                "minimum",
                "",
                "#/anyOf/1/minimum",
                {"comparison": ">=", "limit": 5, "exclusive": False},
                "should be >= 5",
            ),
            E("anyOf", "", "#/anyOf", {}, "should match some schema in anyOf"),
        ],
    ),
    (
        "oneOf (none passes)",
        {"oneOf": [{"type": "string"}, {"type": "boolean"}]},
        1,
        [
            _type("", "#/oneOf/0/type", "string"),
            _type("", "#/oneOf/1/type", "boolean"),
            E(
                "oneOf",
                "",
                "#/oneOf",
                {"passingSchemas": None},
                "should match exactly one schema in oneOf",
            ),
        ],
    ),
    (
        "oneOf (two pass)",
        {"oneOf": [{"type": "number"}, {"minimum": 0}, {"type": "string"}]},
        1,
        [
            E(
                "oneOf",
                "",
                "#/oneOf",
                {"passingSchemas": [0, 1]},
                "should match exactly one schema in oneOf",
            )
        ],
    ),
    (
        "if/then",
        {
            "if": {"properties": {"a": {"const": 1}}},
            "then": {"required": ["b"]},
            "else": {"required": ["c"]},
        },
        {"a": 1},
        [
            _required("b", sp="#/then/required"),
            E("if", "", "#/if", {"failingKeyword": "then"}, 'should match "then" schema'),
        ],
    ),
    (
        "if/else",
        {
            "if": {"properties": {"a": {"const": 1}}},
            "then": {"required": ["b"]},
            "else": {"required": ["c"]},
        },
        {"a": 2},
        [
            _required("c", sp="#/else/required"),
            E("if", "", "#/if", {"failingKeyword": "else"}, 'should match "else" schema'),
        ],
    ),
    (
        "false schema",
        {"properties": {"a": False}},
        {"a": 1},
        [E("false schema", ".a", "#/properties/a/false schema", {}, "boolean schema is false")],
    ),
    (
        "required: names with a property schema are reported in properties order",
        {
            "properties": {"a": {"type": "string"}, "b": {}, "c": {"type": "integer"}},
            "required": ["c", "b", "a"],
        },
        {"x": 1},
        [_required("b"), _required("a"), _required("c")],
    ),
    (
        "required: a defaulted property is filled, never missing",
        {
            "properties": {"a": {"type": "string", "default": "d"}, "b": {"type": "string"}},
            "required": ["a", "b"],
        },
        {},
        [_required("b")],
    ),
    (
        "dynamic keys are quoted and never escaped",
        {
            "additionalProperties": {"type": "integer"},
            "patternProperties": {"^p": {"type": "string"}},
        },
        {"x y": "s", "it's": "s", "p1": 1, "ok": 2},
        [
            _type("['x y']", "#/additionalProperties/type", "integer"),
            _type("['it's']", "#/additionalProperties/type", "integer"),
            _type("['p1']", "#/patternProperties/%5Ep/type", "string"),
        ],
    ),
    (
        "static keys: identifiers dotted, others quoted and escaped; array-index names first",
        {
            "properties": {
                "a b": {"type": "integer"},
                "it's": {"type": "integer"},
                "$ok": {"type": "integer"},
                "0": {"type": "integer"},
            }
        },
        {"a b": "x", "it's": "x", "$ok": "x", "0": "x"},
        [
            _type("['0']", "#/properties/0/type", "integer"),
            _type("['a b']", "#/properties/a%20b/type", "integer"),
            _type("['it\\'s']", "#/properties/it's/type", "integer"),
            _type(".$ok", "#/properties/%24ok/type", "integer"),
        ],
    ),
    (
        "data keys iterate like a JavaScript object",
        {"additionalProperties": False},
        {"b": 1, "10": 1, "a": 1, "2": 1, "01": 1},
        [
            _additional("2"),
            _additional("10"),
            _additional("b"),
            _additional("a"),
            _additional("01"),
        ],
    ),
    (
        "array paths",
        {"properties": {"list": {"items": {"properties": {"n": {"type": "integer"}}}}}},
        {"list": [{"n": 1}, {"n": "x"}, {"n": 2.5}]},
        [
            _type(".list[1].n", "#/properties/list/items/properties/n/type", "integer"),
            _type(".list[2].n", "#/properties/list/items/properties/n/type", "integer"),
        ],
    ),
    (
        "tuple paths",
        {"items": [{"type": "string"}, {"type": "integer"}]},
        [1, "x"],
        [_type("[0]", "#/items/0/type", "string"), _type("[1]", "#/items/1/type", "integer")],
    ),
    (
        "1.0 is an integer; booleans are never numbers",
        {
            "properties": {
                "a": {"type": "integer"},
                "b": {"type": "integer"},
                "c": {"type": "number"},
                "d": {"type": "integer"},
            }
        },
        {"a": 1.0, "b": 1.5, "c": True, "d": True},
        [
            _type(".b", "#/properties/b/type", "integer"),
            _type(".c", "#/properties/c/type", "number"),
            _type(".d", "#/properties/d/type", "integer"),
        ],
    ),
    (
        "true is not 1, but 1.0 is 1",
        {"properties": {"a": {"enum": [1]}, "b": {"enum": [True]}, "c": {"const": 1}}},
        {"a": True, "b": 1, "c": 1.0},
        [
            E(
                "enum",
                ".a",
                "#/properties/a/enum",
                {"allowedValues": [1]},
                "should be equal to one of the allowed values",
            ),
            E(
                "enum",
                ".b",
                "#/properties/b/enum",
                {"allowedValues": [True]},
                "should be equal to one of the allowed values",
            ),
        ],
    ),
    (
        "type next to $ref is still checked; inlined refs report the ref's path",
        {
            "definitions": {"n": {"type": "integer"}},
            "properties": {"a": {"$ref": "#/definitions/n", "type": "string"}},
        },
        {"a": 1.5},
        [
            _type(".a", "#/properties/a/type", "string"),
            _type(".a", "#/definitions/n/type", "integer"),
        ],
    ),
    (
        "a recursive $ref reports paths from its own root",
        {"properties": {"n": {"type": "integer"}, "kids": {"items": {"$ref": "#"}}}},
        {"kids": [{"n": "x"}]},
        [_type(".kids[0].n", "#/properties/n/type", "integer")],
    ),
]


@pytest.mark.parametrize(
    ("schema", "event", "expected"),
    [pytest.param(s, e, x, id=name) for name, s, e, x in KEYWORD_CASES],
)
def test_keyword_errors_match_ajv(schema: dict, event: Any, expected: list[dict]) -> None:
    compiled = CompiledSchema(schema, secure=False)
    compiled.apply_defaults(event)
    assert compiled.errors(event) == expected
    assert compiled.is_valid(event) is (expected == [])


def test_errors_text_format() -> None:
    errors = [_additional("x"), _required("dt", dp=".meta", sp="#/properties/meta/required")]
    assert errors_text(errors) == (
        "'' should NOT have additional properties, '.meta' should have required property 'dt'"
    )


# -- values where Python and JavaScript disagree -------------------------------------------


def test_string_lengths_count_code_points() -> None:
    compiled = CompiledSchema({"maxLength": 2, "minLength": 2}, secure=False)
    assert compiled.is_valid("\U0001f600\U0001f600")
    assert compiled.errors("\U0001f600\U0001f600") == []
    assert compiled.errors("\U0001f600")[0]["keyword"] == "minLength"


def test_patterns_see_utf16_code_units_like_javascript() -> None:
    # Without the `u` flag an emoji is two units to ".": "^.$" fails, "^.{2}$" passes.
    one = CompiledSchema({"pattern": "^.$", "maxLength": 9}, secure=False)
    two = CompiledSchema({"pattern": "^.{2}$", "maxLength": 9}, secure=False)
    assert not one.is_valid("\U0001f600") and one.errors("\U0001f600")
    assert two.is_valid("\U0001f600") and two.errors("\U0001f600") == []


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("abcdefghij0123456789", True),
        ("abcdefghij0123456789\n", False),  # Python's "$" would accept this
        ("abcdefghij012345678\u0663", False),  # \d-like Unicode digits are not [0-9]
        ("ABCDEFGHIJ0123456789", False),
    ],
)
def test_pattern_uses_javascript_semantics(value: str, valid: bool) -> None:
    compiled = CompiledSchema(
        {"type": "string", "pattern": "^[0-9a-z]{20}$", "maxLength": 21}, secure=False
    )
    assert compiled.is_valid(value) is valid
    assert (compiled.errors(value) == []) is valid


def test_digit_and_word_classes_are_ascii() -> None:
    compiled = CompiledSchema({"pattern": "^\\d\\w$", "maxLength": 2}, secure=False)
    assert compiled.is_valid("1a")
    assert not compiled.is_valid("\u0661a")
    assert not compiled.is_valid("1\u00e9")


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("2024-10-01T12:00:00Z", True),
        ("2024-10-01 12:00:00Z", True),
        ("2024-10-01t12:00:00.123z", True),
        ("2024-10-01T12:00:00+0530", True),
        ("2024-10-01T12:00:00+05", True),
        ("2024-13-01T00:00:00Z", True),  # fast mode: month is only [0-1]\d
        ("2024-10-39T23:59:60Z", True),
        ("2024-10-01T12:00:00", False),  # no time zone
        ("yesterday", False),
        ("2024-10-01T24:00:00Z", True),  # [0-2]\d for the hour
        ("2024-10-01T12:00:00Z\n", False),
        ("\u0662024-10-01T12:00:00Z", False),
    ],
)
def test_date_time_is_ajv_fast_format(value: str, valid: bool) -> None:
    compiled = CompiledSchema(
        {"type": "string", "format": "date-time", "maxLength": 128}, secure=False
    )
    assert compiled.is_valid(value) is valid
    assert (compiled.errors(value) == []) is valid


@pytest.mark.parametrize(
    ("fmt", "good", "bad"),
    [
        ("uri-reference", "https://example.org/a?b#c", "a b"),
        ("uri", "mailto:x@y", "/relative"),
        ("uuid", "123e4567-e89b-12d3-a456-426614174000", "123e4567e89b12d3a456426614174000"),
        ("email", "a.b@c-d.e", "a@-b.c"),
        ("hostname", "example.com", "-a.com"),
        ("ipv4", "1.2.3.4", "256.1.1.1"),
        ("ipv6", "fe80::1%eth0", "12345::1"),
        ("date", "2024-19-39", "2024-1-1"),
        ("time", "12:00:00", "12:00"),
        ("regex", "^a(b)$", "("),
        ("json-pointer", "/a/b~0~1", "/a~2"),
        ("relative-json-pointer", "0#", "01"),
        ("uri-template", "/path/{id}{?q,r}", "{x"),
        ("url", "http://example.com/x", "http://10.0.0.1"),
        ("json-pointer-uri-fragment", "#/a%20b", "#/a b"),
    ],
)
def test_every_fast_format(fmt: str, good: str, bad: str) -> None:
    compiled = CompiledSchema({"format": fmt, "maxLength": 99}, secure=False)
    assert compiled.is_valid(good) and compiled.errors(good) == []
    assert not compiled.is_valid(bad)
    assert compiled.errors(bad)[0]["params"] == {"format": fmt}


def test_formats_only_judge_strings() -> None:
    compiled = CompiledSchema({"format": "date-time", "maxLength": 9}, secure=False)
    for value in (1, None, True, [], {}):
        assert compiled.is_valid(value) and compiled.errors(value) == []


def test_unknown_format_is_refused_at_compile_time() -> None:
    with pytest.raises(SchemaCompileError) as caught:
        CompiledSchema({"properties": {"x": {"type": "string", "format": "foo", "maxLength": 9}}})
    assert caught.value.reason.startswith('unknown format "foo"')
    assert "#/properties/x" in caught.value.reason


def test_invalid_schema_is_refused_with_ajv_wording() -> None:
    with pytest.raises(SchemaCompileError) as caught:
        CompiledSchema({"type": "object", "properties": {"a": {"type": "strin"}}})
    assert caught.value.reason.startswith(
        "schema is invalid: data.properties['a'].type should be equal to one of the allowed values"
    )


def test_unresolvable_local_ref_is_refused() -> None:
    with pytest.raises(SchemaCompileError) as caught:
        CompiledSchema({"$id": "/x/1.0.0", "properties": {"a": {"$ref": "#/definitions/nope"}}})
    assert "can't resolve reference #/definitions/nope" in caught.value.reason


def test_recursion_that_never_descends_is_refused() -> None:
    # AJV compiles these and then overflows its stack on every event that reaches the loop.
    for schema in (
        {"$ref": "#"},
        {"anyOf": [{"type": "string"}, {"$ref": "#"}]},
        {
            "definitions": {
                "a": {"$ref": "#/definitions/b"},
                "b": {"allOf": [{"$ref": "#/definitions/a"}]},
            },
            "$ref": "#/definitions/a",
        },
    ):
        with pytest.raises(SchemaCompileError, match="unbounded recursion"):
            CompiledSchema(schema, secure=False)
    # Recursion through the data is fine.
    CompiledSchema({"properties": {"child": {"$ref": "#"}}}, secure=False)


def test_schema_dialect_spellings() -> None:
    for declared in (
        "https://json-schema.org/draft-07/schema#",
        "http://json-schema.org/draft-07/schema",
        "http://json-schema.org/schema#",
    ):
        assert CompiledSchema({"$schema": declared, "type": "string"}).draft == 7
    with pytest.raises(SchemaCompileError, match='no schema with key or ref "urn:nope"'):
        CompiledSchema({"$schema": "urn:nope"})


def test_draft4_and_draft6_schemas_compile_and_validate() -> None:
    for name in ("test_draft4", "test_draft6"):
        schema = yaml.safe_load((EVENTGATE_TEST_SCHEMAS / name / "0.0.1").read_text())
        compiled = CompiledSchema(schema)
        event = {
            "$schema": f"/{name}/0.0.1",
            "meta": {"stream": "s", "id": "12345678-1234-5678-1234-567812345678"},
        }
        compiled.apply_defaults(event)
        assert compiled.errors(event) == [] and compiled.is_valid(event)
        del event["meta"]["id"]
        assert compiled.errors(event) == [_required("id", ".meta", "#/properties/meta/required")]


def test_draft4_boolean_exclusive_maximum() -> None:
    schema = {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "maximum": 5,
        "exclusiveMaximum": True,
    }
    compiled = CompiledSchema(schema, secure=False)
    assert compiled.errors(5) == [
        E(
            "exclusiveMaximum",
            "",
            "#/exclusiveMaximum",
            {"comparison": "<", "limit": 5, "exclusive": True},
            "should be < 5",
        )
    ]
    assert compiled.is_valid(4.5)


# -- defaults ------------------------------------------------------------------------------


def test_defaults_from_eventgate_test_schema_are_written() -> None:
    schema = yaml.safe_load((EVENTGATE_TEST_SCHEMAS / "test" / "0.0.1").read_text())
    compiled = CompiledSchema(schema, uri="/test/0.0.1")
    event = {
        "$schema": "/test/0.0.1",
        "meta": {"stream": "test.event", "id": "12345678-1234-5678-1234-567812345678"},
    }
    written = compiled.apply_defaults(event)
    assert written == [(("test_default",), "default_value")]
    assert event["test_default"] == "default_value"
    assert compiled.is_valid(event) and compiled.errors(event) == []
    # A value the producer sent is never replaced.
    again = {**event, "test_default": "mine"}
    assert compiled.apply_defaults(again) == [] and again["test_default"] == "mine"


def test_defaults_are_copies_and_nested_objects_are_filled() -> None:
    schema = {
        "type": "object",
        "properties": {
            "box": {
                "type": "object",
                "default": {},
                "properties": {"n": {"type": "integer", "default": 1}},
            },
            "tags": {"type": "array", "default": ["a"]},
        },
    }
    compiled = CompiledSchema(schema, secure=False)
    first: dict = {}
    assert compiled.apply_defaults(first) == [
        (("box",), {"n": 1}),
        (("tags",), ["a"]),
        (("box", "n"), 1),
    ]
    second: dict = {}
    compiled.apply_defaults(second)
    first["tags"].append("b")
    assert second["tags"] == ["a"] and schema["properties"]["tags"]["default"] == ["a"]


def test_no_defaults_inside_composite_keywords() -> None:
    schema = {"anyOf": [{"properties": {"a": {"default": 1}}}, {"type": "object"}]}
    compiled = CompiledSchema(schema, secure=False)
    event: dict = {}
    assert compiled.apply_defaults(event) == [] and event == {}


def test_defaults_interleave_with_checks_like_ajv() -> None:
    # AJV checks maxProperties before the allOf branch writes its default.
    schema = {
        "type": "object",
        "maxProperties": 1,
        "allOf": [{"properties": {"b": {"default": 2}}}],
    }
    compiled = CompiledSchema(schema, secure=False)
    event = {"a": 1}
    assert compiled.apply_defaults(event) == [(("b",), 2)]
    assert event == {"a": 1, "b": 2}
    assert compiled.errors(event) == [] and compiled.is_valid(event)


# -- declares ------------------------------------------------------------------------------


def test_declares_follows_properties() -> None:
    compiled = CompiledSchema(load_schema_for("/analytics/product_metrics/web/base/1.3.0"))
    assert compiled.declares(("meta", "id"))
    assert compiled.declares(("http", "request_headers"))
    assert compiled.declares(("dt",))
    assert not compiled.declares(("meta", "nope"))
    assert not compiled.declares(("http", "client_ip"))
    legacy_like = CompiledSchema(
        {
            "definitions": {"meta": {"type": "object", "properties": {"id": {"type": "string"}}}},
            "allOf": [{"properties": {"meta": {"$ref": "#/definitions/meta"}}}],
        },
        secure=False,
    )
    assert legacy_like.declares(("meta", "id"))
    assert not legacy_like.declares(("meta", "dt"))


def test_without_fill_ins_an_event_is_copied_only_when_its_schema_writes_defaults() -> None:
    """Judged without a working copy (no fill-ins: the intake parses each body once), the
    event as received stays as received, and a schema's default is still a fill."""
    from mpsandbox.config import Settings
    from mpsandbox.pipeline import Pipeline, RequestContext
    from mpsandbox.sandbox import build_registry

    registry = build_registry(Settings(schema_dirs=[EVENTGATE_TEST_SCHEMAS], offline=True))
    pipeline = Pipeline(registry, fill_ins=False)
    event = {
        "$schema": "/test/0.0.1",
        "meta": {"stream": "test.event", "id": "12345678-1234-5678-1234-567812345678"},
    }
    sent = copy.deepcopy(event)
    [record] = pipeline.judge_batch([event], RequestContext())
    assert record.verdict == "valid"
    assert record.received == sent and "test_default" not in event
    assert record.fills == {"test_default": {"value": "default_value", "by": "default"}}
    assert registry.resolve("/test/0.0.1").compiled.may_write_defaults
