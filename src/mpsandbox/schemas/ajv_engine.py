"""The detailed validator: ``jsonschema`` driven by AJV-ordered ops and AJV-shaped errors.

``jsonschema`` supplies the machinery (a validator class from ``validators.create``, ``descend``
for instance-path bookkeeping, a ``TypeChecker``, a ``FormatChecker``); every keyword function
here is a custom one that reproduces what AJV 6's generated code does for that keyword, and
``applicable_validators`` hands ``jsonschema`` the ops the planner produced instead of the raw
schema's items, so errors come out in AJV's order without any sorting afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from jsonschema import TypeChecker
from jsonschema.exceptions import ValidationError
from jsonschema.validators import create

from mpsandbox.schemas.ajv_compile import (
    PROTO_NAMES,
    BranchesSpec,
    ChildSpec,
    DefaultsSpec,
    DependenciesSpec,
    FormatSpec,
    IfSpec,
    ItemsSpec,
    LimitSpec,
    Node,
    PatternSpec,
    PropertiesSpec,
    RequiredSpec,
    TypeSpec,
    UniqueSpec,
    ValueSpec,
    js_keys,
)
from mpsandbox.schemas.ajv_errors import DynKey, data_path, js_json, js_number, js_string_of_key
from mpsandbox.schemas.ajv_formats import FORMAT_CHECKER

__all__ = [
    "UNDEFINED",
    "WRITES",
    "AjvValidator",
    "WriteLog",
    "js_equal",
    "js_get",
    "json_copy",
    "node_is_valid",
    "to_ajv_errors",
]


class _Undefined:
    __slots__ = ()

    def __repr__(self) -> str:
        return "undefined"


class _InheritedFunction:
    """What ``data.toString`` is in JavaScript when the event has no own ``toString``."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"[Function: {self.name}]"


UNDEFINED: Any = _Undefined()
_INHERITED = {name: _InheritedFunction(name) for name in PROTO_NAMES}


def js_get(obj: dict, key: str) -> Any:
    """``obj[key]`` with JavaScript's answer for a missing key (undefined, or an inherited
    ``Object.prototype`` method, which AJV then validates like any value)."""
    value = obj.get(key, UNDEFINED)
    if value is UNDEFINED and key in _INHERITED:
        return _INHERITED[key]
    return value


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def json_copy(value: Any) -> Any:
    """A fresh copy per event, as AJV inlines ``JSON.stringify(default)`` into its code."""
    if isinstance(value, dict):
        return {k: json_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_copy(v) for v in value]
    return value


class WriteLog:
    """Defaults written during a validation pass, with the data path of every container
    (keyword functions see values, not paths, so containers are located by identity)."""

    def __init__(self, event: Any) -> None:
        self.paths: dict[int, tuple[str, ...]] = {}
        self.written: list[tuple[tuple[str, ...], Any]] = []
        self._register(event, ())

    def _register(self, value: Any, path: tuple[str, ...]) -> None:
        if isinstance(value, dict):
            self.paths[id(value)] = path
            for k, v in value.items():
                self._register(v, (*path, k))
        elif isinstance(value, list):
            self.paths[id(value)] = path
            for i, v in enumerate(value):
                self._register(v, (*path, str(i)))

    def write(self, container: Any, key: Any, default: Any) -> None:
        value = json_copy(default)
        if isinstance(container, list):
            container.append(value)
        else:
            container[key] = value
        path = (*self.paths.get(id(container), ()), str(key))
        self._register(value, path)
        self.written.append((path, value))


#: Set while a pass must write defaults the way AJV's useDefaults does (see validator.py).
WRITES: ContextVar[WriteLog | None] = ContextVar("ajv_default_writes", default=None)


def _kind(x: Any) -> str:
    if x is None:
        return "null"
    if isinstance(x, bool):
        return "boolean"
    if isinstance(x, (int, float)):
        return "number"
    if isinstance(x, str):
        return "string"
    if isinstance(x, list):
        return "array"
    if isinstance(x, dict):
        return "object"
    return "other"


_OBJECT_CONSTRUCTOR = object()


def _strict_equal(a: Any, b: Any) -> bool:
    """JavaScript ``===``: containers are equal only to themselves."""
    if a is b:
        return True
    ka = _kind(a)
    return ka == _kind(b) and ka not in ("array", "object", "other") and a == b


def js_equal(a: Any, b: Any) -> bool:
    """``fast-deep-equal`` on JSON: ``true`` is not ``1``, but ``1`` is ``1.0``; and, as there,
    two objects whose ``constructor`` differ (an own ``constructor`` key holding an object
    differs from every other value) are unequal before any key is looked at."""
    ka, kb = _kind(a), _kind(b)
    if ka != kb:
        return False
    if ka == "array":
        return len(a) == len(b) and all(js_equal(x, y) for x, y in zip(a, b, strict=True))
    if ka == "object":
        ca = a.get("constructor", _OBJECT_CONSTRUCTOR)
        cb = b.get("constructor", _OBJECT_CONSTRUCTOR)
        if not _strict_equal(ca, cb):
            return False
        return len(a) == len(b) and all(k in b and js_equal(v, b[k]) for k, v in a.items())
    if ka == "other":
        return a is b
    return a == b


def _integer(_: Any, x: Any) -> bool:
    if type(x) is int or (isinstance(x, int) and not isinstance(x, bool)):
        return True
    return isinstance(x, float) and (x.is_integer() or math.isinf(x))


#: JavaScript's view of JSON types: ``1.0`` is an integer, a boolean is never a number.
AJV_TYPE_CHECKER = TypeChecker(
    {
        "null": lambda _, x: x is None,
        "boolean": lambda _, x: isinstance(x, bool),
        "number": lambda _, x: _is_number(x),
        "integer": _integer,
        "string": lambda _, x: isinstance(x, str),
        "array": lambda _, x: isinstance(x, list),
        "object": lambda _, x: isinstance(x, dict),
    }
)


class AjvError(ValidationError):
    """A ``jsonschema`` error carrying the AJV fields that cannot be derived afterwards."""

    def __init__(self, keyword: str, schema_path: str, params: dict, message: str) -> None:
        super().__init__(message, validator=keyword)
        self.ajv_keyword = keyword
        self.ajv_schema_path = schema_path
        self.ajv_params = params


def _type_error(spec: TypeSpec) -> AjvError:
    return AjvError("type", spec.path, {"type": spec.text}, "should be " + spec.text)


def _has_type(v: Any, types: tuple[str, ...], x: Any) -> bool:
    return any(v.is_type(x, t) for t in types)


# --- keyword functions (validator, spec, instance, wrapper) -> errors -----------------------


def _kw_default_properties(v: Any, spec: DefaultsSpec, x: Any, _: dict) -> Iterator[AjvError]:
    log = WRITES.get()
    if log is not None and isinstance(x, dict):
        for key, default in spec.entries:
            if js_get(x, key) is UNDEFINED:
                log.write(x, key, default)
    return iter(())


def _kw_default_items(v: Any, spec: DefaultsSpec, x: Any, _: dict) -> Iterator[AjvError]:
    log = WRITES.get()
    if log is not None and isinstance(x, list):
        for index, default in spec.entries:
            if index == len(x):
                log.write(x, index, default)
            elif index > len(x):
                break  # JavaScript would leave holes; JSON cannot, so stop at the first gap
    return iter(())


def _kw_type(v: Any, spec: TypeSpec, x: Any, _: dict) -> Iterator[AjvError]:
    if not _has_type(v, spec.types, x):
        yield _type_error(spec)


def _kw_type_else(v: Any, spec: TypeSpec, x: Any, _: dict) -> Iterator[AjvError]:
    # Emitted as the `else` of the guarded group's `if (typeof data == ...)`.
    if not v.is_type(x, spec.group):
        yield _type_error(spec)


def _kw_false(v: Any, spec: ChildSpec, x: Any, _: dict) -> Iterator[AjvError]:
    yield AjvError("false schema", spec.path, {}, "boolean schema is false")


def _kw_ref(v: Any, spec: ChildSpec, x: Any, _: dict) -> Iterator[ValidationError]:
    assert spec.node is not None
    yield from v.descend(x, spec.node.wrapper)


def _kw_limit(v: Any, spec: LimitSpec, x: Any, _: dict) -> Iterator[AjvError]:
    if not _is_number(x):
        return
    limit = spec.limit
    if spec.is_max:
        bad = x >= limit if spec.exclusive else x > limit
    else:
        bad = x <= limit if spec.exclusive else x < limit
    if bad or x != x:  # AJV also rejects NaN (`data !== data`)
        op = spec.op
        yield AjvError(
            spec.keyword,
            spec.path,
            {"comparison": op, "limit": limit, "exclusive": spec.exclusive},
            f"should be {op} {js_number(limit)}",
        )


def multiple_of_ok(x: int | float, divisor: int | float) -> bool:
    """``data / m === parseInt(data / m)``, AJV's test: floating point, so 0.3 is not a
    multiple of 0.1, and quotients from 1e21 up print in exponent form and never match."""
    try:
        q = float(x) / float(divisor)
    except (OverflowError, ZeroDivisionError):
        return False
    return math.isfinite(q) and q.is_integer() and abs(q) < 1e21


def _kw_multiple_of(v: Any, spec: ValueSpec, x: Any, _: dict) -> Iterator[AjvError]:
    if _is_number(x) and not multiple_of_ok(x, spec.value):
        yield AjvError(
            "multipleOf",
            spec.path,
            {"multipleOf": spec.value},
            f"should be multiple of {js_number(spec.value)}",
        )


def _kw_max_length(v: Any, spec: ValueSpec, x: Any, _: dict) -> Iterator[AjvError]:
    if isinstance(x, str) and len(x) > spec.value:
        n = js_number(spec.value)
        yield AjvError(
            "maxLength",
            spec.path,
            {"limit": spec.value},
            f"should NOT be longer than {n} characters",
        )


def _kw_min_length(v: Any, spec: ValueSpec, x: Any, _: dict) -> Iterator[AjvError]:
    if isinstance(x, str) and len(x) < spec.value:
        n = js_number(spec.value)
        yield AjvError(
            "minLength",
            spec.path,
            {"limit": spec.value},
            f"should NOT be shorter than {n} characters",
        )


def _kw_pattern(v: Any, spec: PatternSpec, x: Any, _: dict) -> Iterator[AjvError]:
    if isinstance(x, str) and not spec.regex.search(x):
        yield AjvError(
            "pattern", spec.path, {"pattern": spec.source}, f'should match pattern "{spec.source}"'
        )


def _kw_format(v: Any, spec: FormatSpec, x: Any, _: dict) -> Iterator[AjvError]:
    if isinstance(x, str) and not v.format_checker.conforms(x, spec.name):
        yield AjvError(
            "format", spec.path, {"format": spec.name}, f'should match format "{spec.name}"'
        )


def _count_error(keyword: str, spec: ValueSpec, noun: str) -> AjvError:
    more = keyword.startswith("max")
    n = js_number(spec.value)
    word = "more" if more else "fewer"
    return AjvError(
        keyword, spec.path, {"limit": spec.value}, f"should NOT have {word} than {n} {noun}"
    )


def _kw_max_items(v: Any, spec: ValueSpec, x: Any, _: dict) -> Iterator[AjvError]:
    if isinstance(x, list) and len(x) > spec.value:
        yield _count_error("maxItems", spec, "items")


def _kw_min_items(v: Any, spec: ValueSpec, x: Any, _: dict) -> Iterator[AjvError]:
    if isinstance(x, list) and len(x) < spec.value:
        yield _count_error("minItems", spec, "items")


def _kw_max_properties(v: Any, spec: ValueSpec, x: Any, _: dict) -> Iterator[AjvError]:
    if isinstance(x, dict) and len(x) > spec.value:
        yield _count_error("maxProperties", spec, "properties")


def _kw_min_properties(v: Any, spec: ValueSpec, x: Any, _: dict) -> Iterator[AjvError]:
    if isinstance(x, dict) and len(x) < spec.value:
        yield _count_error("minProperties", spec, "properties")


def _kw_items(v: Any, spec: ItemsSpec, x: Any, _: dict) -> Iterator[ValidationError]:
    if not isinstance(x, list):
        return
    if spec.tuple_nodes is None:
        assert spec.single is not None
        for i, item in enumerate(x):
            yield from v.descend(item, spec.single.wrapper, path=i)
        return
    n = len(spec.tuple_nodes)
    if spec.additional_false and len(x) > n:
        yield AjvError(
            "additionalItems",
            spec.path_additional,
            {"limit": n},
            f"should NOT have more than {n} items",
        )
    for i, node in enumerate(spec.tuple_nodes):
        if node is not None and len(x) > i:
            yield from v.descend(x[i], node.wrapper, path=i)
    if spec.additional is not None:
        for i in range(n, len(x)):
            yield from v.descend(x[i], spec.additional.wrapper, path=i)


def _kw_contains(v: Any, spec: ChildSpec, x: Any, _: dict) -> Iterator[ValidationError]:
    if not isinstance(x, list):
        return
    err = AjvError("contains", spec.path, {}, "should contain a valid item")
    if spec.node is None:
        if not x:
            yield err
        return
    collected: list[ValidationError] = []
    for i, item in enumerate(x):
        errors = list(v.descend(item, spec.node.wrapper, path=i))
        if not errors:
            return  # one valid item: every error gathered so far is dropped
        collected.extend(errors)
    yield from collected
    yield err


def _kw_unique_items(v: Any, spec: UniqueSpec, x: Any, _: dict) -> Iterator[AjvError]:
    if not isinstance(x, list) or len(x) < 2:
        return
    found = None
    if spec.hash_types is None:
        for i in range(len(x) - 1, 0, -1):
            for j in range(i - 1, -1, -1):
                if js_equal(x[i], x[j]):
                    found = (i, j)
                    break
            if found:
                break
    else:
        # AJV hashes scalars into a plain object, walking from the end: so `i` is the earlier
        # index here, and a "__proto__" string can never be recorded as seen.
        seen: dict[str, int] = {}
        for i in range(len(x) - 1, -1, -1):
            item = x[i]
            if not _has_type(v, spec.hash_types, item):
                continue
            if spec.prefix_strings and isinstance(item, str):
                key = '"' + item
            else:
                key = js_string_of_key(item)
            if key == "__proto__":
                continue
            if key in seen:
                found = (i, seen[key])
                break
            seen[key] = i
    if found:
        i, j = found
        yield AjvError(
            "uniqueItems",
            spec.path,
            {"i": i, "j": j},
            f"should NOT have duplicate items (items ## {j} and {i} are identical)",
        )


def _kw_required(v: Any, spec: RequiredSpec, x: Any, _: dict) -> Iterator[AjvError]:
    if not isinstance(x, dict):
        return
    for prop in spec.props:
        if js_get(x, prop) is UNDEFINED:
            yield _missing(spec.path, prop)


def _missing(path: str, prop: str) -> AjvError:
    return AjvError(
        "required", path, {"missingProperty": prop}, f"should have required property '{prop}'"
    )


def _kw_dependencies(v: Any, spec: DependenciesSpec, x: Any, _: dict) -> Iterator[ValidationError]:
    if not isinstance(x, dict):
        return
    for prop, deps in spec.prop_deps:
        if js_get(x, prop) is UNDEFINED:
            continue
        joined = ", ".join(deps)
        wanted = f"property {deps[0]}" if len(deps) == 1 else f"properties {joined}"
        for dep in deps:
            if js_get(x, dep) is UNDEFINED:
                yield AjvError(
                    "dependencies",
                    spec.path,
                    {
                        "property": prop,
                        "missingProperty": dep,
                        "depsCount": len(deps),
                        "deps": deps[0] if len(deps) == 1 else joined,
                    },
                    f"should have {wanted} when property {prop} is present",
                )
    for prop, node in spec.schema_deps:
        if js_get(x, prop) is not UNDEFINED:
            yield from v.descend(x, node.wrapper)


def _kw_property_names(v: Any, spec: ChildSpec, x: Any, _: dict) -> Iterator[ValidationError]:
    if not isinstance(x, dict) or spec.node is None:
        return
    for key in js_keys(x):
        errors = list(v.descend(key, spec.node.wrapper))
        if errors:
            yield from errors
            yield AjvError(
                "propertyNames",
                spec.path,
                {"propertyName": key},
                f"property name '{key}' is invalid",
            )


def _kw_properties(v: Any, spec: PropertiesSpec, x: Any, _: dict) -> Iterator[ValidationError]:
    if not isinstance(x, dict):
        return
    if spec.check_additional:
        for key in js_keys(x):
            if spec.some_properties and (
                key in spec.names or any(rx.search(key) for rx in spec.name_patterns)
            ):
                continue
            if spec.no_additional:
                yield AjvError(
                    "additionalProperties",
                    spec.path_additional,
                    {"additionalProperty": key},
                    "should NOT have additional properties",
                )
            elif spec.additional is not None:
                yield from v.descend(x[key], spec.additional.wrapper, path=DynKey(key))
    for entry in spec.entries:
        value = js_get(x, entry.key)
        if value is UNDEFINED:
            # A defaulted property was filled before validation (AJV never reports it).
            if entry.required and not entry.has_default:
                yield _missing(spec.path_required, entry.key)
            continue
        yield from v.descend(value, entry.node.wrapper, path=entry.key)
    for _source, rx, node in spec.pattern_entries:
        for key in js_keys(x):
            if rx.search(key):
                yield from v.descend(x[key], node.wrapper, path=DynKey(key))


def _kw_const(v: Any, spec: ValueSpec, x: Any, _: dict) -> Iterator[AjvError]:
    if not js_equal(x, spec.value):
        yield AjvError(
            "const", spec.path, {"allowedValue": spec.value}, "should be equal to constant"
        )


def _kw_enum(v: Any, spec: ValueSpec, x: Any, _: dict) -> Iterator[AjvError]:
    if not any(js_equal(x, allowed) for allowed in spec.value):
        yield AjvError(
            "enum",
            spec.path,
            {"allowedValues": spec.value},
            "should be equal to one of the allowed values",
        )


def node_is_valid(v: Any, x: Any, node: Node) -> bool:
    for _ in v.descend(x, node.wrapper):
        return False
    return True


def _kw_not(v: Any, spec: ChildSpec, x: Any, _: dict) -> Iterator[AjvError]:
    if spec.node is None:
        valid = True
    elif WRITES.get() is not None:
        # Only the defaults written on the way depend on how far AJV gets in there.
        valid = _break_valid(v, spec.node, x)
    else:
        valid = node_is_valid(v, x, spec.node)
    if valid:
        yield AjvError("not", spec.path, {}, "should NOT be valid")


# --- AJV's allErrors:false mode -------------------------------------------------------------
#
# AJV compiles the subschema of `not` with allErrors switched off: each rule group stops at its
# first failing rule, and the node stops after the first group that saw any error (a failed
# `type` check still lets the first group run). Verdicts are the same as a full evaluation;
# only the defaults that non-inlined $refs write on the way differ, so this mode is used only
# while defaults are being written.

_GROUP_GUARDS = {
    "number": _is_number,
    "string": lambda x: isinstance(x, str),
    "array": lambda x: isinstance(x, list),
    "object": lambda x: isinstance(x, dict),
    "any": lambda x: True,
}


def _break_valid(v: Any, node: Node, x: Any) -> bool:
    s = node.schema
    if s is False:
        return False
    failed = False
    for kw, spec in node.ops[:2]:
        if kw == "type":
            failed = not _has_type(v, spec.types, x)
        elif kw == "$ref":
            if spec.inline:
                return _break_valid(v, spec.node, x) and not failed
            return not list(v.descend(x, spec.node.wrapper)) and not failed
    for group, ops in node.groups:
        if _GROUP_GUARDS[group](x):
            for kw, spec in ops:
                if kw != "$typeElse" and not _break_rule(v, kw, spec, x):
                    failed = True
                    break
        elif any(kw == "$typeElse" for kw, _ in ops):
            failed = True
        if failed:
            return False
    return not failed


def _break_rule(v: Any, kw: str, spec: Any, x: Any) -> bool:
    bv = _break_valid
    if kw == "properties":
        if spec.check_additional:
            for key in js_keys(x):
                if spec.some_properties and (
                    key in spec.names or any(rx.search(key) for rx in spec.name_patterns)
                ):
                    continue
                if spec.no_additional:
                    return False
                if spec.additional is not None and not bv(v, spec.additional, x[key]):
                    return False
        for entry in spec.entries:
            value = js_get(x, entry.key)
            if value is UNDEFINED:
                if entry.required and not entry.has_default:
                    return False
            elif not bv(v, entry.node, value):
                return False
        for _source, rx, node in spec.pattern_entries:
            for key in js_keys(x):
                if rx.search(key) and not bv(v, node, x[key]):
                    return False
        return True
    if kw == "items":
        if spec.tuple_nodes is None:
            return all(bv(v, spec.single, item) for item in x)
        n = len(spec.tuple_nodes)
        if spec.additional_false and len(x) > n:
            return False
        for i, node in enumerate(spec.tuple_nodes):
            if node is not None and len(x) > i and not bv(v, node, x[i]):
                return False
        if spec.additional is not None:
            return all(bv(v, spec.additional, x[i]) for i in range(n, len(x)))
        return True
    if kw == "contains":
        if spec.node is None:
            return bool(x)
        return any(bv(v, spec.node, item) for item in x)
    if kw == "dependencies":
        for prop, deps in spec.prop_deps:
            if js_get(x, prop) is not UNDEFINED and any(js_get(x, d) is UNDEFINED for d in deps):
                return False
        return all(
            bv(v, node, x) for prop, node in spec.schema_deps if js_get(x, prop) is not UNDEFINED
        )
    if kw == "propertyNames":
        return spec.node is None or all(bv(v, spec.node, key) for key in js_keys(x))
    if kw == "not":
        return spec.node is not None and not bv(v, spec.node, x)
    if kw == "anyOf":
        return any(bv(v, node, x) for node in spec.nodes)
    if kw == "oneOf":
        passed = 0
        for node in spec.nodes:
            if node is None or bv(v, node, x):
                passed += 1
                if passed == 2:
                    return False
        return passed == 1
    if kw == "allOf":
        return all(bv(v, node, x) for node in spec.nodes)
    if kw == "if":
        branch = spec.then if bv(v, spec.condition, x) else spec.otherwise
        return branch is None or bv(v, branch, x)
    return not any(True for _ in KEYWORDS[kw](v, spec, x, {}))


def _kw_any_of(v: Any, spec: BranchesSpec, x: Any, _: dict) -> Iterator[ValidationError]:
    collected: list[ValidationError] = []
    for node in spec.nodes:
        assert node is not None
        errors = list(v.descend(x, node.wrapper))
        if not errors:
            return
        collected.extend(errors)
    yield from collected
    yield AjvError("anyOf", spec.path, {}, "should match some schema in anyOf")


def _kw_one_of(v: Any, spec: BranchesSpec, x: Any, _: dict) -> Iterator[ValidationError]:
    collected: list[ValidationError] = []
    passing: Any = None
    valid = prev_valid = False
    for i, node in enumerate(spec.nodes):
        if node is None:
            ok = True
        else:
            errors = list(v.descend(x, node.wrapper))
            collected.extend(errors)
            ok = not errors
        if i and ok and prev_valid:
            # A second passing branch: AJV stops evaluating the remaining ones.
            valid = False
            passing = [passing, i]
            break
        if ok:
            valid = prev_valid = True
            passing = i
    if not valid:
        yield from collected
        yield AjvError(
            "oneOf",
            spec.path,
            {"passingSchemas": passing},
            "should match exactly one schema in oneOf",
        )


def _kw_all_of(v: Any, spec: BranchesSpec, x: Any, _: dict) -> Iterator[ValidationError]:
    for node in spec.nodes:
        assert node is not None
        yield from v.descend(x, node.wrapper)


def _kw_if(v: Any, spec: IfSpec, x: Any, _: dict) -> Iterator[ValidationError]:
    # The condition runs in full (AJV keeps allErrors inside `if`; it matters for defaults
    # written by $refs in it), unlike `not`, which AJV compiles to stop at the first error.
    if not list(v.descend(x, spec.condition.wrapper)):
        branch, name = spec.then, "then"
    else:
        branch, name = spec.otherwise, "else"
    if branch is None:
        return
    errors = list(v.descend(x, branch.wrapper))
    if errors:
        yield from errors
        yield AjvError("if", spec.path, {"failingKeyword": name}, f'should match "{name}" schema')


KEYWORDS = {
    "$defaultProperties": _kw_default_properties,
    "$defaultItems": _kw_default_items,
    "type": _kw_type,
    "$typeElse": _kw_type_else,
    "$false": _kw_false,
    "$ref": _kw_ref,
    "maximum": _kw_limit,
    "minimum": _kw_limit,
    "multipleOf": _kw_multiple_of,
    "maxLength": _kw_max_length,
    "minLength": _kw_min_length,
    "pattern": _kw_pattern,
    "format": _kw_format,
    "maxItems": _kw_max_items,
    "minItems": _kw_min_items,
    "items": _kw_items,
    "contains": _kw_contains,
    "uniqueItems": _kw_unique_items,
    "maxProperties": _kw_max_properties,
    "minProperties": _kw_min_properties,
    "required": _kw_required,
    "dependencies": _kw_dependencies,
    "propertyNames": _kw_property_names,
    "properties": _kw_properties,
    "const": _kw_const,
    "enum": _kw_enum,
    "not": _kw_not,
    "anyOf": _kw_any_of,
    "oneOf": _kw_one_of,
    "allOf": _kw_all_of,
    "if": _kw_if,
}


def _ops_of(wrapper: Any) -> list[tuple[str, Any]]:
    return wrapper["__ajv__"].ops


#: A validator class whose "schemas" are planner nodes; see module docstring.
AjvValidator = create(
    meta_schema={"$id": "urn:mpsandbox:ajv6-plan"},
    validators=KEYWORDS,
    type_checker=AJV_TYPE_CHECKER,
    format_checker=FORMAT_CHECKER,
    id_of=lambda _schema: None,
    applicable_validators=_ops_of,
)


def to_ajv_errors(errors: list[ValidationError]) -> list[dict]:
    out = []
    for e in errors:
        assert isinstance(e, AjvError), e
        out.append(
            {
                "keyword": e.ajv_keyword,
                "dataPath": data_path(e.path),
                "schemaPath": e.ajv_schema_path,
                "params": js_json(e.ajv_params),
                "message": e.message,
            }
        )
    return out
