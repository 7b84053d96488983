"""EventGate production refuses "insecure" schemas; the sandbox must refuse the same ones.

The rules are AJV 6's secure meta-schema. A producer whose schema works in the sandbox but is
refused in production (with an opaque ``Failed loading schema``) loses a deploy cycle, so the
refusal has to happen here too, and name the offending subschema.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mpsandbox.schemas.ajv_security import find_insecurities
from mpsandbox.schemas.validator import CompiledSchema, SchemaCompileError

TEST_SCHEMAS = Path(__file__).resolve().parent / "data" / "eventgate" / "test" / "schemas"


def _load(name: str) -> dict:
    return yaml.safe_load((TEST_SCHEMAS / name / "0.0.1").read_text())


def test_eventgate_insecure_test_schema_is_refused_naming_the_path() -> None:
    with pytest.raises(SchemaCompileError) as caught:
        CompiledSchema(_load("test_insecure"), uri="/test_insecure/0.0.1")
    reason = caught.value.reason
    assert reason == (
        'insecure: /properties/meta/properties/id has "pattern" but no "maxLength" (and 1 more)'
    )
    found = [str(x) for x in find_insecurities(_load("test_insecure"))]
    assert found == [
        '/properties/meta/properties/id has "pattern" but no "maxLength"',
        '/properties/meta/properties/dt has "format" but no "maxLength"',
    ]


def test_eventgate_test_schema_is_secure() -> None:
    compiled = CompiledSchema(_load("test"), uri="/test/0.0.1")
    assert compiled.insecurities == []


def test_security_can_be_switched_off() -> None:
    compiled = CompiledSchema(_load("test_insecure"), secure=False)
    assert len(compiled.insecurities) == 2
    event = {"meta": {"stream": "s", "id": "12345678-1234-5678-1234-567812345678"}}
    compiled.apply_defaults(event)
    assert compiled.is_valid(event) and compiled.errors(event) == []


def _reason(schema: dict) -> str:
    with pytest.raises(SchemaCompileError) as caught:
        CompiledSchema(schema)
    return caught.value.reason


@pytest.mark.parametrize(
    ("schema", "reason"),
    [
        ({"type": "string", "pattern": "^a"}, 'insecure: / has "pattern" but no "maxLength"'),
        ({"type": "string", "format": "date-time"}, 'insecure: / has "format" but no "maxLength"'),
        (
            {"patternProperties": {"^a": {}}},
            'insecure: / has "patternProperties" but no "propertyNames" with "maxLength"',
        ),
        (
            {"patternProperties": {"^a": {}}, "propertyNames": {"minLength": 1}},
            'insecure: / has "patternProperties" but its "propertyNames" has no "maxLength"',
        ),
        (
            {"type": "array", "uniqueItems": True, "items": {"type": "object"}},
            'insecure: / has "uniqueItems": true over items that may be objects or arrays but no "maxItems"',
        ),
        (
            {"type": "array", "uniqueItems": True, "items": {"type": ["string", "array"]}},
            'insecure: / has "uniqueItems": true over items that may be objects or arrays but no "maxItems"',
        ),
        (
            # The meta-schema cannot tell what unspecified items are, so it asks for a bound.
            {"type": "array", "uniqueItems": True},
            'insecure: / has "uniqueItems": true over items that may be objects or arrays but no "maxItems"',
        ),
    ],
)
def test_each_rule_is_enforced(schema: dict, reason: str) -> None:
    assert _reason(schema) == reason


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "string", "pattern": "^a", "maxLength": 10},
        {"type": "string", "format": "date-time", "maxLength": 128},
        {"patternProperties": {"^a": {}}, "propertyNames": {"maxLength": 64}},
        {
            "patternProperties": {"^a": {}},
            "propertyNames": True,
        },  # AJV's rule only inspects objects
        {"type": "array", "uniqueItems": True, "items": {"type": "object"}, "maxItems": 10},
        {"type": "array", "uniqueItems": True, "items": {"type": "string"}},
        {"type": "array", "uniqueItems": False, "items": {"type": "object"}},
        # Tuple-form items are not inspected by the secure meta-schema.
        {"type": "array", "items": [{"type": "string", "pattern": "^a"}]},
        # A property *named* pattern is not the keyword.
        {"type": "object", "properties": {"pattern": {"type": "string"}}},
    ],
)
def test_secure_schemas_compile(schema: dict) -> None:
    CompiledSchema(schema)


@pytest.mark.parametrize(
    ("schema", "pointer"),
    [
        (
            {"properties": {"a": {"properties": {"b": {"pattern": "x"}}}}},
            "/properties/a/properties/b",
        ),
        ({"items": {"pattern": "x"}}, "/items"),
        ({"additionalProperties": {"format": "uri"}}, "/additionalProperties"),
        (
            {"patternProperties": {"^a/b": {"pattern": "x"}}, "propertyNames": {"maxLength": 9}},
            "/patternProperties/^a~1b",
        ),
        ({"definitions": {"x": {"format": "uri"}}}, "/definitions/x"),
        ({"dependencies": {"a": {"pattern": "x"}}}, "/dependencies/a"),
        ({"allOf": [{}, {"pattern": "x"}]}, "/allOf/1"),
        ({"anyOf": [{"pattern": "x"}]}, "/anyOf/0"),
        ({"oneOf": [{"pattern": "x"}]}, "/oneOf/0"),
        ({"not": {"pattern": "x"}}, "/not"),
        ({"if": {"pattern": "x"}}, "/if"),
        ({"then": {"pattern": "x"}}, "/then"),
        ({"else": {"pattern": "x"}}, "/else"),
        ({"contains": {"pattern": "x"}}, "/contains"),
        ({"propertyNames": {"pattern": "x"}}, "/propertyNames"),
        ({"additionalItems": {"pattern": "x"}}, "/additionalItems"),
    ],
)
def test_rules_apply_in_every_subschema(schema: dict, pointer: str) -> None:
    found = find_insecurities(schema)
    assert [x.pointer for x in found] == [pointer]
    assert _reason(schema).startswith(f"insecure: {pointer} has ")


def test_reference_schemas_are_secure() -> None:
    wm = TEST_SCHEMAS.parents[2]
    web_base = wm / "schemas/secondary/jsonschema/analytics/product_metrics/web/base/1.3.0.yaml"
    app_base = wm / "schemas/secondary/jsonschema/analytics/product_metrics/app/base/1.3.0.yaml"
    for path in (web_base, app_base):
        CompiledSchema(yaml.safe_load(path.read_text()))
