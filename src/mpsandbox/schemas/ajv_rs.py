"""The fast path: translate the AJV plan into a schema ``jsonschema-rs`` judges identically.

``jsonschema-rs`` is a standard draft-07 validator, and a standard reading of an EventGate
schema is *not* what AJV 6 does: AJV checks ``type`` next to a ``$ref``, drops defaulted
properties from ``required``, counts ``multipleOf`` in floating point, runs patterns as
JavaScript regexes over UTF-16 code units, and has its own formats. So rather than handing the
raw schema over, this module emits a schema from the planner's ops (the same ops the detailed
validator runs): plain keywords where the standard meaning coincides with AJV's, and small
Python custom keywords where it does not. Where no faithful translation exists (Object.prototype
property names, unsafe ``patternProperties``), it gives up and the caller falls back to the
detailed validator, so the two verdicts can never disagree.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import jsonschema_rs

from mpsandbox.schemas.ajv_compile import (
    PROTO_NAMES,
    BranchesSpec,
    ChildSpec,
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
)
from mpsandbox.schemas.ajv_engine import AJV_TYPE_CHECKER, js_equal, multiple_of_ok
from mpsandbox.schemas.ajv_errors import js_json, js_string_of_key
from mpsandbox.schemas.ajv_formats import AJV_FORMATS, format_regex
from mpsandbox.schemas.ajv_regex import compile_js_regex

__all__ = ["Untranslatable", "build_rs_validator"]

_DRAFT7 = "http://json-schema.org/draft-07/schema#"


class Untranslatable(Exception):
    """The plan uses an AJV behaviour with no faithful jsonschema-rs rendering."""


# --- custom keywords (called by jsonschema-rs with the parent schema, value, path) ----------


class _AjvPattern:
    def __init__(self, parent: dict, value: str, path: list) -> None:
        self.regex = compile_js_regex(value)

    def validate(self, instance: Any) -> None:
        if isinstance(instance, str) and not self.regex.search(instance):
            raise ValueError("does not match")


class _AjvMultipleOf:
    def __init__(self, parent: dict, value: Any, path: list) -> None:
        self.value = value

    def validate(self, instance: Any) -> None:
        if (
            isinstance(instance, (int, float))
            and not isinstance(instance, bool)
            and not multiple_of_ok(instance, self.value)
        ):
            raise ValueError("not a multiple")


class _AjvEqual:
    """enum / const over containers, compared with fast-deep-equal's rules (js_equal)."""

    def __init__(self, parent: dict, value: dict, path: list) -> None:
        self.allowed = value["allowed"]

    def validate(self, instance: Any) -> None:
        if not any(js_equal(instance, v) for v in self.allowed):
            raise ValueError("not an allowed value")


class _AjvUniqueItems:
    """AJV's uniqueness: deep (fast-deep-equal) or hashed for scalar item types (which skips
    items of other types and can never see "__proto__")."""

    def __init__(self, parent: dict, value: dict, path: list) -> None:
        self.deep = value["types"] is None
        self.types = tuple(value["types"] or ())
        self.prefix = bool(value["prefix"])

    def validate(self, instance: Any) -> None:
        if not isinstance(instance, list) or len(instance) < 2:
            return
        if self.deep:
            for i in range(len(instance) - 1, 0, -1):
                for j in range(i - 1, -1, -1):
                    if js_equal(instance[i], instance[j]):
                        raise ValueError("duplicate items")
            return
        seen: set[str] = set()
        for item in reversed(instance):
            if not any(AJV_TYPE_CHECKER.is_type(item, t) for t in self.types):
                continue
            key = '"' + item if self.prefix and isinstance(item, str) else js_string_of_key(item)
            if key == "__proto__":
                continue
            if key in seen:
                raise ValueError("duplicate items")
            seen.add(key)


_KEYWORDS = {
    "ajvEqual": _AjvEqual,
    "ajvPattern": _AjvPattern,
    "ajvMultipleOf": _AjvMultipleOf,
    "ajvUniqueItems": _AjvUniqueItems,
}


@lru_cache(maxsize=1024)
def _rs_pattern_ok(source: str) -> bool:
    """Whether jsonschema-rs itself accepts the rendered pattern (its parser is stricter)."""
    try:
        jsonschema_rs.validator_for({"$schema": _DRAFT7, "pattern": source})
    except Exception:
        return False
    return True


class _Translator:
    def __init__(self, root: Node, native_patterns: bool) -> None:
        self.root = root
        self.native_patterns = native_patterns
        self.units: dict[int, str] = {id(root): "#"}
        self.definitions: dict[str, Any] = {}
        self.pending: list[Node] = []
        #: What the rendering needs registered with jsonschema-rs (each costs per call).
        self.keywords: set[str] = set()
        self.formats: set[str] = set()

    def unit_ref(self, node: Node) -> dict:
        name = self.units.get(id(node))
        if name is None:
            name = f"#/definitions/ajv{len(self.units)}"
            self.units[id(node)] = name
            self.pending.append(node)
        return {"$ref": name}

    def run(self) -> dict:
        body = self.emit(self.root)
        while self.pending:
            node = self.pending.pop()
            key = self.units[id(node)].rsplit("/", 1)[1]
            self.definitions[key] = self.emit(node)
        out: dict[str, Any] = {"$schema": _DRAFT7}
        if isinstance(body, bool):
            out["allOf"] = [body]
        else:
            out.update(body)
        if self.definitions:
            out["definitions"] = self.definitions
        return out

    def pattern(self, source: str, custom_ok: bool) -> tuple[str, str]:
        """Return (keyword, value) rendering a JavaScript pattern for jsonschema-rs."""
        rx = compile_js_regex(source)
        if self.native_patterns and rx.rs_source is not None and _rs_pattern_ok(rx.rs_source):
            return "pattern", rx.rs_source
        if not custom_ok:
            raise Untranslatable(f"pattern {source!r} cannot run natively")
        self.keywords.add("ajvPattern")
        return "ajvPattern", source

    def emit(self, node: Node) -> Any:
        s = node.schema
        if s is True or s is False:
            return s
        out: dict[str, Any] = {}
        required: list[str] = []
        all_of: list[Any] = []
        for kw, spec in node.ops:
            if kw in ("type", "$typeElse"):
                assert isinstance(spec, TypeSpec)
                out["type"] = list(spec.types) if len(spec.types) > 1 else spec.types[0]
            elif kw == "$false":
                return False
            elif kw == "$ref":
                assert isinstance(spec, ChildSpec) and spec.node is not None
                all_of.append(self.emit(spec.node) if spec.inline else self.unit_ref(spec.node))
            elif kw in ("maximum", "minimum"):
                assert isinstance(spec, LimitSpec)
                name = ("exclusive" + kw.capitalize()) if spec.exclusive else kw
                out[name] = js_json(spec.limit)
            elif kw == "multipleOf":
                out["ajvMultipleOf"] = spec.value
                self.keywords.add("ajvMultipleOf")
            elif kw in ("maxLength", "minLength", "maxItems", "minItems") or kw in (
                "maxProperties",
                "minProperties",
            ):
                out[kw] = js_json(spec.value)
            elif kw == "pattern":
                assert isinstance(spec, PatternSpec)
                name, value = self.pattern(spec.source, True)
                out[name] = value
            elif kw == "format":
                assert isinstance(spec, FormatSpec)
                # A fast format is a regex; run it natively when that is provably the same,
                # since a Python callback per string costs more than the whole rest.
                rx = format_regex(spec.name) if self.native_patterns else None
                if rx is not None and rx.rs_source is not None and _rs_pattern_ok(rx.rs_source):
                    all_of.append({"pattern": rx.rs_source})
                else:
                    out["format"] = spec.name
                    self.formats.add(spec.name)
            elif kw == "items":
                self.items(spec, out)
            elif kw == "contains":
                assert isinstance(spec, ChildSpec)
                out["contains"] = self.emit(spec.node) if spec.node is not None else True
            elif kw == "uniqueItems":
                assert isinstance(spec, UniqueSpec)
                # Always AJV's own comparison: objects with a "constructor" key never match.
                out["ajvUniqueItems"] = {
                    "types": None if spec.hash_types is None else list(spec.hash_types),
                    "prefix": spec.prefix_strings,
                }
                self.keywords.add("ajvUniqueItems")
            elif kw == "required":
                assert isinstance(spec, RequiredSpec)
                self.names(spec.props)
                required.extend(spec.props)
            elif kw == "dependencies":
                self.dependencies(spec, out)
            elif kw == "propertyNames":
                assert isinstance(spec, ChildSpec) and spec.node is not None
                out["propertyNames"] = self.emit(spec.node)
            elif kw == "properties":
                self.properties(spec, out, required)
            elif kw in ("const", "enum"):
                allowed = [spec.value] if kw == "const" else list(spec.value)
                if any(isinstance(v, (dict, list)) for v in allowed):
                    # A container can hold objects, which fast-deep-equal compares its way.
                    all_of.append({"ajvEqual": {"allowed": allowed}})
                    self.keywords.add("ajvEqual")
                else:
                    out[kw] = spec.value
            elif kw == "not":
                assert isinstance(spec, ChildSpec)
                out["not"] = self.emit(spec.node) if spec.node is not None else True
            elif kw in ("anyOf", "oneOf"):
                assert isinstance(spec, BranchesSpec)
                out[kw] = [self.emit(n) if n is not None else True for n in spec.nodes]
            elif kw == "allOf":
                assert isinstance(spec, BranchesSpec)
                all_of.extend(self.emit(n) for n in spec.nodes if n is not None)
            elif kw == "if":
                assert isinstance(spec, IfSpec)
                out["if"] = self.emit(spec.condition)
                if spec.then is not None:
                    out["then"] = self.emit(spec.then)
                if spec.otherwise is not None:
                    out["else"] = self.emit(spec.otherwise)
        if required:
            out["required"] = list(dict.fromkeys(required))
        if all_of:
            out["allOf"] = all_of
        return out

    @staticmethod
    def names(names: Any) -> None:
        # `data.toString !== undefined` holds for every JavaScript object: no standard
        # keyword can say that, so such schemas use the detailed validator only.
        if any(n in PROTO_NAMES for n in names):
            raise Untranslatable("a property name inherited from Object.prototype")

    def items(self, spec: ItemsSpec, out: dict) -> None:
        if spec.tuple_nodes is None:
            assert spec.single is not None
            out["items"] = self.emit(spec.single)
            return
        out["items"] = [self.emit(n) if n is not None else True for n in spec.tuple_nodes]
        if spec.additional_false:
            out["additionalItems"] = False
        elif spec.additional is not None:
            out["additionalItems"] = self.emit(spec.additional)

    def dependencies(self, spec: DependenciesSpec, out: dict) -> None:
        deps: dict[str, Any] = {}
        for prop, names in spec.prop_deps:
            self.names([prop, *names])
            deps[prop] = list(names)
        for prop, node in spec.schema_deps:
            self.names([prop])
            deps[prop] = self.emit(node)
        if deps:
            out["dependencies"] = deps

    def properties(self, spec: PropertiesSpec, out: dict, required: list[str]) -> None:
        self.names(spec.names)
        props: dict[str, Any] = {}
        for entry in spec.entries:
            props[entry.key] = self.emit(entry.node)
            if entry.required and not entry.has_default:
                required.append(entry.key)
        for name in spec.names:
            props.setdefault(name, True)  # empty schemas still make a name non-additional
        if props:
            out["properties"] = props
        if spec.some_properties and spec.check_additional:
            # Keep every pattern (even those with empty schemas): they decide what is
            # "additional". Their regexes must run natively here.
            patterns: dict[str, Any] = {}
            nodes = {source: node for source, _, node in spec.pattern_entries}
            for rx in spec.name_patterns:
                _, native = self.pattern(rx.source, False)
                if native in patterns:
                    raise Untranslatable("two patternProperties render to the same regex")
                node = nodes.get(rx.source)
                patterns[native] = self.emit(node) if node is not None else True
            if patterns:
                out["patternProperties"] = patterns
        elif spec.pattern_entries:
            patterns = {}
            for source, _, node in spec.pattern_entries:
                _, native = self.pattern(source, False)
                if native in patterns:
                    raise Untranslatable("two patternProperties render to the same regex")
                patterns[native] = self.emit(node)
            out["patternProperties"] = patterns
        if spec.check_additional:
            if spec.no_additional:
                out["additionalProperties"] = False
            elif spec.additional is not None:
                out["additionalProperties"] = self.emit(spec.additional)


def build_rs_validator(root: Node) -> tuple[Any, dict]:
    """Return ``(jsonschema_rs validator, translated schema)``; raise Untranslatable."""
    last_error: Exception | None = None
    for native in (True, False):
        translator = _Translator(root, native_patterns=native)
        schema = translator.run()
        options: dict[str, Any] = {}
        if translator.formats:
            options["formats"] = {name: AJV_FORMATS[name] for name in translator.formats}
        if translator.keywords:
            options["keywords"] = {name: _KEYWORDS[name] for name in translator.keywords}
        try:
            validator = jsonschema_rs.validator_for(
                schema,
                validate_formats=bool(translator.formats),
                ignore_unknown_formats=False,
                **options,
            )
        except Exception as exc:  # a rendering jsonschema-rs refuses: try the safer one
            last_error = exc
            continue
        return validator, schema
    raise Untranslatable(f"jsonschema-rs refused the translation: {last_error}")
