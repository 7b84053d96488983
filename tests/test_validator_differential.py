"""The fast verdict and the detailed AJV errors must never disagree, on any real schema.

The intake decides with ``is_valid`` (jsonschema-rs) and explains with ``errors`` (jsonschema);
if they disagree, an event is accepted and reported broken, or the reverse. Every materialized
schema in the reference repositories is compiled and fed deterministic mutations of its own
``examples`` (plus an event synthesized from its properties), aimed at the places where a
standard validator and AJV 6 part ways: integral floats, booleans vs numbers, trailing newlines,
astral characters, non-ISO timestamps, Object.prototype names, extra and missing keys.
"""

from __future__ import annotations

import copy
import random
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from mpsandbox.schemas.validator import CompiledSchema, SchemaCompileError

WM = Path(__file__).resolve().parent / "data"
ROOTS = [
    WM / "schemas" / "primary" / "jsonschema",
    WM / "schemas" / "secondary" / "jsonschema",
    WM / "eventgate" / "test" / "schemas",
]
MUTATIONS_PER_BASE = 60
SEED = 20241001


_VERSION = re.compile(r"\d+\.\d+\.\d+")


def _schema_files() -> list[Path]:
    """Materialized versions: ``X.Y.Z.yaml``, and extension-less ``X.Y.Z`` files that hold a
    schema rather than the name of the file they stand for (the repositories' "symlinks")."""
    out = []
    for root in ROOTS:
        for path in sorted(root.rglob("*")):
            if not path.is_file():
                continue
            if (path.suffix == ".yaml" and _VERSION.fullmatch(path.name[: -len(".yaml")])) or (
                _VERSION.fullmatch(path.name) and isinstance(_load(path), dict)
            ):
                out.append(path)
    return out


def _load(path: Path) -> Any:
    with path.open() as f:
        return yaml.safe_load(f)


# -- event synthesis and mutation ----------------------------------------------------------


def synthesize(schema: Any, rng: random.Random, depth: int = 0) -> Any:
    """A plausible event for ``schema``, so that schemas without examples get exercised."""
    if not isinstance(schema, dict) or depth > 6:
        return "x"
    if schema.get("enum"):
        return copy.deepcopy(rng.choice(schema["enum"]))
    if "const" in schema:
        return copy.deepcopy(schema["const"])
    t = schema.get("type")
    if isinstance(t, list):
        t = t[0]
    if t == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        return {k: synthesize(v, rng, depth + 1) for k, v in props.items()}
    if t == "array":
        return [synthesize(schema.get("items"), rng, depth + 1)]
    if t == "integer":
        return int(schema.get("minimum", 1))
    if t == "number":
        return 0.5
    if t == "boolean":
        return True
    if t == "null":
        return None
    if schema.get("format") == "date-time":
        return "2024-10-01T12:00:00Z"
    if schema.get("format") == "uri-reference":
        return "https://example.org/x"
    if schema.get("pattern") == "^[0-9a-z]{20}$":
        return "abcdefghij0123456789"
    if "pattern" in schema and "0-9a-fA-F" in schema["pattern"]:
        return "12345678-1234-5678-1234-567812345678"
    return "dolor"


SCALARS: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    1.0,
    1.5,
    -0.0,
    2**53,
    9007199254740991,
    "",
    "x",
    "3",
    "1.0",
    "true",
    [],
    {},
    [1, 1],
    [{"a": 1}, {"a": 1}],
    {"a": 1},
]
STRINGS = [
    "yesterday",
    "2024-10-01T12:00:00Z",
    "2024-10-01 12:00:00Z",
    "2024-10-01T12:00:00",
    "2024-13-01T00:00:00Z",
    "2024-10-01T12:00:00Z\n",
    "2024-10-01T12:00:00.123+0530",
    "2024-10-01t12:00:00z",
    "abcdefghij0123456789",
    "abcdefghij0123456789\n",
    "ABCDEFGHIJ0123456789",
    "abcdefghij012345678\u0663",
    "12345678-1234-5678-1234-567812345678",
    "12345678-1234-5678-1234-567812345678\n",
    "https://example.org/a b",
    "\\\\server",
    "é" * 20,
    "\U0001f600" * 20,
    "\U0001f600" * 10,
    "a\u2028b",
    "mediawiki_js",
    "desktop_browser",
    "pageview",
]
EXTRA_KEYS = [
    "unknown_field",
    "constructor",
    "toString",
    "0",
    "10",
    "2",
    "a b",
    "it's",
    "$x",
    "__proto__",
]


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(_paths(v, (*prefix, i)))
    return out


def _get(value: Any, path: tuple) -> Any:
    for p in path:
        value = value[p]
    return value


def _set(root: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    _get(root, path[:-1])[path[-1]] = new
    return root


def _flip_number(v: Any) -> Any:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return float(v) if v not in (0, 1) else (v == 1)
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def mutate(event: Any, rng: random.Random) -> Any:
    event = copy.deepcopy(event)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        paths = _paths(event)
        path = rng.choice(paths)
        target = _get(event, path)
        op = rng.randrange(11)
        if op == 0 and path:
            parent = _get(event, path[:-1])
            if isinstance(parent, dict):
                del parent[path[-1]]
            else:
                parent.pop(path[-1])
        elif op == 1:
            event = _set(event, path, copy.deepcopy(rng.choice(SCALARS)))
        elif op == 2:
            event = _set(event, path, rng.choice(STRINGS))
        elif op == 3 and isinstance(target, str):
            event = _set(event, path, rng.choice((target * 40, target[:1], target + "\n", "")))
        elif op == 4 and isinstance(target, dict):
            target[rng.choice(EXTRA_KEYS)] = copy.deepcopy(rng.choice(SCALARS))
        elif op == 5:
            event = _set(event, path, _flip_number(target))
        elif op == 6 and isinstance(target, dict):
            event = _set(event, path, list(target.values()) or "{}")
        elif op == 7 and isinstance(target, list):
            event = _set(event, path, [*target, *target] if target else [None])
        elif op == 8:
            for p in _paths(event):
                if p and isinstance(_get(event, p), (int, float)):
                    event = _set(event, p, _flip_number(_get(event, p)))
        elif op == 9 and isinstance(target, dict):
            target.clear()
        elif op == 10 and isinstance(target, str):
            event = _set(event, path, target.upper())
    return event


def cases_for(schema: dict, rng: random.Random) -> list[Any]:
    bases = [e for e in schema.get("examples") or [] if isinstance(e, dict)]
    bases.append(synthesize(schema, rng))
    out: list[Any] = []
    for base in bases:
        out.append(copy.deepcopy(base))
        out.extend(mutate(base, rng) for _ in range(MUTATIONS_PER_BASE))
    out.extend(copy.deepcopy(s) for s in SCALARS)
    return out


# -- the test ------------------------------------------------------------------------------


def test_fast_and_detailed_verdicts_agree_on_every_reference_schema() -> None:
    files = _schema_files()
    assert len(files) > 100, "reference schemas not found"
    started = time.perf_counter()
    compiled = refused = fast_off = total = invalid = 0
    reasons: dict[str, int] = {}
    disagreements: list[str] = []
    for path in files:
        schema = _load(path)
        if not isinstance(schema, dict) or ("type" not in schema and "properties" not in schema):
            continue
        try:
            cs = CompiledSchema(schema, uri=str(path))
        except SchemaCompileError as exc:
            refused += 1
            key = exc.reason.split(":")[0]
            reasons[key] = reasons.get(key, 0) + 1
            continue
        compiled += 1
        if cs.fast_path_off_reason is not None:
            fast_off += 1
        rng = random.Random(f"{SEED}:{path.name}:{len(schema)}")
        for event in cases_for(schema, rng):
            cs.apply_defaults(event)
            fast = cs.is_valid(event)
            errors = cs.errors(event)
            total += 1
            invalid += bool(errors)
            if fast != (errors == []):
                disagreements.append(f"{path}: is_valid={fast} errors={errors[:2]} event={event!r}")
    elapsed = time.perf_counter() - started
    print(
        f"\n{len(files)} schema files: {compiled} compiled ({fast_off} without fast path), "
        f"{refused} refused {reasons}; {total} events ({invalid} invalid) in {elapsed:.1f}s"
    )
    assert not disagreements, "\n".join(disagreements[:10])
    assert compiled > 100
    assert total >= 3000
    assert 0 < invalid < total


@pytest.mark.parametrize(
    ("schema", "events"),
    [
        # Areas the reference schemas barely touch, each with AJV-specific behaviour.
        (
            {
                "type": "object",
                "properties": {"toString": {"type": "string"}},
                "required": ["constructor"],
            },
            [{}, {"toString": "x"}, {"toString": 1}],
        ),
        (
            {"type": "array", "items": {"type": "string"}, "uniqueItems": True, "maxItems": 9},
            [["a", "a"], ["__proto__", "__proto__"], ["a", 1, 1], [1, 1], ["a", "b"]],
        ),
        (
            {"multipleOf": 0.1},
            [0.3, 0.2, 1e22, 3, True, "x"],
        ),
        (
            {"pattern": "^.{2}$", "maxLength": 9},
            ["\U0001f600", "ab", "é", "\U0001f600\U0001f600"],
        ),
        (
            {
                "patternProperties": {"^x.$": {"type": "integer"}},
                "additionalProperties": False,
                "propertyNames": {"maxLength": 9},
            },
            [{"x\U0001f600": 1}, {"xa": 1.0}, {"xa": "1"}],
        ),
        (
            {
                "definitions": {"n": {"type": "integer"}},
                "properties": {"a": {"$ref": "#/definitions/n", "type": "string"}},
            },
            [{"a": 1}, {"a": "s"}, {"a": 1.0}],
        ),
        (
            {
                "type": "object",
                "properties": {
                    "kids": {"type": "array", "items": {"$ref": "#"}},
                    "n": {"type": "integer"},
                },
            },
            [{"kids": [{"n": 1}, {"n": "x", "kids": [{"n": 1.5}]}]}],
        ),
    ],
)
def test_fast_and_detailed_agree_on_ajv_quirks(schema: dict, events: list) -> None:
    cs = CompiledSchema(schema, secure=False)
    for event in events:
        assert cs.is_valid(event) == (cs.errors(event) == []), (schema, event, cs.errors(event))
