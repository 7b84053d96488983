"""Plan each subschema the way AJV 6's code generator would, keyword by keyword.

AJV does not evaluate keywords in document order: it groups them by the data type they apply
to, emits a misplaced ``type`` error inside the group it guards, reports a missing required
property at that property's position, and so on (see ``lib/dotjs/validate.js``). The order of
the resulting error list is what EventGate returns to producers, so the sandbox reproduces the
generator's decisions once per subschema, at compile time, as an ordered list of *ops*. Each op
is a ``(keyword, spec)`` pair; the detailed validator runs them through ``jsonschema`` custom
keyword functions, the defaults walker and the ``jsonschema-rs`` translation read the same list,
so the three can never drift apart.

A subschema is planned per *context*: the error schema path AJV would print for it (which
depends on how it was reached through ``$ref``) and whether it sits inside a composite keyword
(``anyOf``, ``oneOf``, ``not``, ``if``, ``contains``, ``propertyNames``), where AJV neither writes
defaults nor exempts defaulted properties from ``required``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import referencing
import referencing.exceptions
import referencing.jsonschema

from mpsandbox.schemas.ajv_errors import escape_fragment
from mpsandbox.schemas.ajv_formats import AJV_FORMATS
from mpsandbox.schemas.ajv_regex import JsRegex, JsRegexError, compile_js_regex

__all__ = ["Node", "SchemaCompileError", "compile_schema", "has_rules", "js_items", "js_keys"]


class SchemaCompileError(Exception):
    """Raised when a schema cannot be used; ``.reason`` is a one-line human explanation."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


#: Every keyword AJV 6 treats as a validation rule (``RULES.all``). A schema holding none of
#: them is "empty": AJV generates no code for it, wherever it appears.
RULES_ALL = frozenset(
    {
        "type",
        "$comment",
        "maximum",
        "exclusiveMaximum",
        "minimum",
        "exclusiveMinimum",
        "multipleOf",
        "format",
        "maxLength",
        "minLength",
        "pattern",
        "maxItems",
        "minItems",
        "items",
        "contains",
        "uniqueItems",
        "maxProperties",
        "minProperties",
        "required",
        "dependencies",
        "propertyNames",
        "properties",
        "additionalProperties",
        "patternProperties",
        "$ref",
        "const",
        "enum",
        "not",
        "anyOf",
        "oneOf",
        "allOf",
        "if",
    }
)

#: The type-guarded rule groups, in generation order, and the keywords that switch each on.
GROUPS: tuple[tuple[str, frozenset[str]], ...] = (
    (
        "number",
        frozenset(
            {"maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum", "multipleOf", "format"}
        ),
    ),
    ("string", frozenset({"maxLength", "minLength", "pattern", "format"})),
    ("array", frozenset({"maxItems", "minItems", "items", "contains", "uniqueItems"})),
    (
        "object",
        frozenset(
            {
                "maxProperties",
                "minProperties",
                "required",
                "dependencies",
                "propertyNames",
                "properties",
                "additionalProperties",
                "patternProperties",
            }
        ),
    ),
)
_GROUP_TYPES = {"number", "string", "array", "object"}

#: Names every plain JavaScript object inherits; ``data.toString !== undefined`` is always true.
PROTO_NAMES = frozenset(
    {
        "constructor",
        "__defineGetter__",
        "__defineSetter__",
        "hasOwnProperty",
        "__lookupGetter__",
        "__lookupSetter__",
        "isPrototypeOf",
        "propertyIsEnumerable",
        "toString",
        "valueOf",
        "__proto__",
        "toLocaleString",
    }
)


def has_rules(schema: Any) -> bool:
    """``util.schemaHasRules(schema, RULES.all)``: false for ``true`` and for empty schemas."""
    if isinstance(schema, bool):
        return not schema
    if isinstance(schema, dict):
        return any(k in RULES_ALL for k in schema)
    return False


def _is_array_index(key: str) -> bool:
    return key == "0" or (
        key[:1] in "123456789" and key.isascii() and key.isdigit() and int(key) < 4294967295
    )


def js_keys(obj: dict) -> list[str]:
    """Keys in JavaScript ``for..in`` order: array-index names ascending, then insertion order."""
    keys = list(obj)
    if not any(isinstance(k, str) and k[:1].isdigit() for k in keys):
        return keys
    index = sorted((k for k in keys if isinstance(k, str) and _is_array_index(k)), key=int)
    if not index:
        return keys
    taken = set(index)
    return index + [k for k in keys if k not in taken]


def js_items(obj: dict) -> list[tuple[str, Any]]:
    """``(str(key), value)`` in JavaScript order; YAML may have produced non-string keys."""
    fixed = {str(k): v for k, v in obj.items()}
    return [(k, fixed[k]) for k in js_keys(fixed)]


# --- op specs ------------------------------------------------------------------------------


@dataclass(eq=False)
class Node:
    """One subschema in one AJV context; ``wrapper`` is what ``jsonschema`` validates with."""

    schema: Any
    path: str
    composite: bool
    resolver: Any = None
    ops: list[tuple[str, Any]] = field(default_factory=list)
    wrapper: dict = field(default_factory=dict)
    may_write: bool = False
    #: The same ops by rule group ("number", ..., "any"), for AJV's stop-at-first-error mode.
    groups: list[tuple[str, list[tuple[str, Any]]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.wrapper = {"__ajv__": self}


@dataclass(frozen=True)
class TypeSpec:
    types: tuple[str, ...]
    text: str
    path: str
    group: str | None = None


@dataclass(frozen=True)
class LimitSpec:
    keyword: str
    limit: int | float
    exclusive: bool
    is_max: bool
    path: str

    @property
    def op(self) -> str:
        return ("<" if self.is_max else ">") + ("" if self.exclusive else "=")


@dataclass(frozen=True)
class ValueSpec:
    """A keyword with one schema value: multipleOf, lengths, counts, const, enum."""

    keyword: str
    value: Any
    path: str


@dataclass(frozen=True)
class PatternSpec:
    source: str
    regex: JsRegex
    path: str


@dataclass(frozen=True)
class FormatSpec:
    name: str
    check: Callable[[str], bool]
    path: str


@dataclass(frozen=True)
class ItemsSpec:
    tuple_nodes: tuple[Node | None, ...] | None
    single: Node | None
    additional_false: bool
    additional: Node | None
    path_additional: str


@dataclass(frozen=True)
class ChildSpec:
    """contains / propertyNames / not / $ref: one (possibly absent) subschema."""

    node: Node | None
    path: str
    inline: bool = True


@dataclass(frozen=True)
class UniqueSpec:
    #: None: compare items deeply (AJV's path for objects/arrays/untyped items). Otherwise the
    #: scalar item types AJV hashes by ``String(item)``, skipping items of other types.
    hash_types: tuple[str, ...] | None
    prefix_strings: bool
    path: str


@dataclass(frozen=True)
class RequiredSpec:
    props: tuple[str, ...]
    path: str


@dataclass(frozen=True)
class DependenciesSpec:
    prop_deps: tuple[tuple[str, tuple[str, ...]], ...]
    schema_deps: tuple[tuple[str, Node], ...]
    path: str


@dataclass(frozen=True)
class PropEntry:
    key: str
    node: Node
    has_default: bool
    required: bool


@dataclass(frozen=True)
class PropertiesSpec:
    check_additional: bool
    some_properties: bool
    names: frozenset[str]
    name_patterns: tuple[JsRegex, ...]
    no_additional: bool
    additional: Node | None
    entries: tuple[PropEntry, ...]
    pattern_entries: tuple[tuple[str, JsRegex, Node], ...]
    path_additional: str
    path_required: str


@dataclass(frozen=True)
class BranchesSpec:
    """anyOf / oneOf / allOf; ``None`` marks an empty branch (always passes)."""

    nodes: tuple[Node | None, ...]
    path: str


@dataclass(frozen=True)
class IfSpec:
    condition: Node
    then: Node | None
    otherwise: Node | None
    path: str


@dataclass(frozen=True)
class DefaultsSpec:
    """``(property name or item index, default value)`` in the order AJV assigns them."""

    entries: tuple[tuple[Any, Any], ...]


# --- the planner ---------------------------------------------------------------------------


def _check_no_ref(schema: Any) -> bool:
    """AJV inlines a referenced schema only when it contains no ``$ref`` anywhere."""
    if isinstance(schema, list):
        return all(_check_no_ref(x) for x in schema if isinstance(x, (dict, list)))
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "$ref":
                return False
            if isinstance(value, (dict, list)) and not _check_no_ref(value):
                return False
    return True


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


class _Planner:
    def __init__(self, root: Any, specification: Any, base_uri: str) -> None:
        self.root = root
        self.specification = specification
        self.base_uri = base_uri
        resource = specification.create_resource(root)
        registry = referencing.Registry().with_resource(base_uri, resource)
        self.root_resolver = registry.resolver(base_uri=base_uri)
        self.cache: dict[tuple[int, str, bool], Node] = {}
        self.pending: list[Node] = []
        self.id_key = "id" if specification is referencing.jsonschema.DRAFT4 else "$id"

    def node(self, schema: Any, path: str, composite: bool, resolver: Any) -> Node:
        key = (id(schema), path, composite)
        found = self.cache.get(key)
        if found is not None:
            return found
        if (
            isinstance(schema, dict)
            and isinstance(schema.get(self.id_key), str)
            and schema is not self.root
        ):
            resolver = resolver.in_subresource(self.specification.create_resource(schema))
        made = Node(schema, path, composite, resolver)
        self.cache[key] = made
        self.pending.append(made)
        return made

    def run(self) -> Node:
        root = self.node(self.root, "#", False, self.root_resolver)
        while self.pending:
            self.plan(self.pending.pop())
        return root

    # -- per subschema ----------------------------------------------------------------------
    def plan(self, n: Node) -> None:
        s = n.schema
        if s is False:
            # AJV files this under a pseudo-keyword, which its schema path then names.
            n.ops = [("$false", ChildSpec(None, n.path + "/false schema"))]
            return
        if not isinstance(s, dict) or not (has_rules(s) or "$ref" in s):
            n.ops = []
            return
        ops: list[tuple[str, Any]] = []
        types: tuple[str, ...] | None = None
        text = ""
        type_first = False
        guarded_group = None
        if "type" in s and s["type"] is not None:
            raw = s["type"]
            types = tuple(raw) if isinstance(raw, list) else (raw,)
            text = ",".join(types)
            single = types[0] if len(types) == 1 else None
            if single in _GROUP_TYPES and self.group_used(s, single):
                guarded_group = single
            else:
                type_first = True
        if type_first:
            assert types is not None
            ops.append(("type", TypeSpec(types, text, n.path + "/type")))
        if "$ref" in s:
            # draft-07: siblings of $ref are ignored -- except that AJV has already emitted
            # the type check above when the type was not deferred to a rule group.
            ops.append(("$ref", self.ref(n, s["$ref"])))
            n.ops = ops
            return
        groups: list[tuple[str, list[tuple[str, Any]]]] = []
        for group, _ in GROUPS:
            if not self.group_used(s, group):
                continue
            group_ops = getattr(self, f"group_{group}")(n, s)
            if guarded_group == group:
                assert types is not None
                group_ops.append(("$typeElse", TypeSpec(types, text, n.path + "/type", group)))
            groups.append((group, group_ops))
            ops.extend(group_ops)
        untyped = self.untyped(n, s)
        if untyped:
            groups.append(("any", untyped))
        ops.extend(untyped)
        n.ops = ops
        n.groups = groups

    @staticmethod
    def group_used(s: dict, group: str) -> bool:
        keywords = dict(GROUPS)[group]
        return any(k in s for k in keywords)

    def child(self, n: Node, schema: Any, suffix: str, composite: bool | None = None) -> Node:
        return self.node(
            schema,
            n.path + suffix,
            n.composite if composite is None else composite,
            n.resolver,
        )

    def regex(self, source: Any, where: str) -> JsRegex:
        if not isinstance(source, str):
            raise SchemaCompileError(f"pattern at {where} is not a string")
        try:
            return compile_js_regex(source)
        except JsRegexError as exc:
            raise SchemaCompileError(f"{exc} (at {where})") from exc

    def ref(self, n: Node, ref: Any) -> ChildSpec:
        if not isinstance(ref, str):
            raise SchemaCompileError(f"$ref at {n.path} is not a string")
        if ref in ("#", "#/"):
            return ChildSpec(self.node(self.root, "#", False, self.root_resolver), n.path, False)
        try:
            resolved = n.resolver.lookup(ref)
        except referencing.exceptions.Unresolvable as exc:
            raise SchemaCompileError(
                f"can't resolve reference {ref} from id {self.base_uri or '#'}"
            ) from exc
        target = resolved.contents
        if _check_no_ref(target):
            # Inlined: compiled in place, keeping the caller's context; AJV prints the
            # $ref string itself as the schema path of everything inside.
            return ChildSpec(self.node(target, ref, n.composite, resolved.resolver), n.path)
        # Compiled as its own function: paths restart at "#" and it is never composite.
        return ChildSpec(self.node(target, "#", False, resolved.resolver), n.path, False)

    # -- rule groups, each in AJV's keyword order --------------------------------------------
    def limit(self, n: Node, s: dict, keyword: str, excl_keyword: str) -> LimitSpec | None:
        is_max = keyword == "maximum"
        limit = s.get(keyword)
        excl = s.get(excl_keyword)
        excl_is_num = _is_number(excl)
        if excl_is_num and limit is None:
            return LimitSpec(excl_keyword, excl, True, is_max, n.path + "/" + excl_keyword)
        value = limit
        if excl_is_num and _is_number(limit):
            value = min(excl, limit) if is_max else max(excl, limit)
        exclusive = (excl == value) if excl_is_num else (excl is True)
        if not _is_number(value):
            return None  # comparing with undefined never fails
        kw = excl_keyword if exclusive else keyword
        return LimitSpec(kw, value, exclusive, is_max, n.path + "/" + kw)

    def format_spec(self, n: Node, s: dict) -> FormatSpec:
        name = s["format"]
        if not isinstance(name, str) or name not in AJV_FORMATS:
            raise SchemaCompileError(
                f'unknown format "{name}" is used in schema at path "{n.path}"'
            )
        return FormatSpec(name, AJV_FORMATS[name], n.path + "/format")

    def group_number(self, n: Node, s: dict) -> list[tuple[str, Any]]:
        ops: list[tuple[str, Any]] = []
        for kw, excl in (("maximum", "exclusiveMaximum"), ("minimum", "exclusiveMinimum")):
            if kw in s or excl in s:
                spec = self.limit(n, s, kw, excl)
                if spec is not None:
                    ops.append((kw, spec))
        if "multipleOf" in s:
            ops.append(
                ("multipleOf", ValueSpec("multipleOf", s["multipleOf"], n.path + "/multipleOf"))
            )
        if "format" in s:
            self.format_spec(n, s)  # string formats generate nothing here, but unknown ones throw
        return ops

    def group_string(self, n: Node, s: dict) -> list[tuple[str, Any]]:
        ops: list[tuple[str, Any]] = []
        for kw in ("maxLength", "minLength"):
            if kw in s:
                ops.append((kw, ValueSpec(kw, s[kw], n.path + "/" + kw)))
        if "pattern" in s:
            path = n.path + "/pattern"
            ops.append(("pattern", PatternSpec(s["pattern"], self.regex(s["pattern"], path), path)))
        if "format" in s:
            ops.append(("format", self.format_spec(n, s)))
        return ops

    def group_array(self, n: Node, s: dict) -> list[tuple[str, Any]]:
        ops: list[tuple[str, Any]] = []
        items = s.get("items")
        if not n.composite and isinstance(items, list):
            entries = tuple(
                (i, sub["default"])
                for i, sub in enumerate(items)
                if isinstance(sub, dict) and "default" in sub
            )
            if entries:
                ops.append(("$defaultItems", DefaultsSpec(entries)))
        for kw in ("maxItems", "minItems"):
            if kw in s:
                ops.append((kw, ValueSpec(kw, s[kw], n.path + "/" + kw)))
        if "items" in s:
            spec = self.items(n, s, items)
            if spec is not None:
                ops.append(("items", spec))
        if "contains" in s:
            sub = s["contains"]
            node = self.child(n, sub, "/contains", True) if has_rules(sub) else None
            ops.append(("contains", ChildSpec(node, n.path + "/contains")))
        if s.get("uniqueItems") is True:
            ops.append(("uniqueItems", self.unique(n, s, items)))
        return ops

    def items(self, n: Node, s: dict, items: Any) -> ItemsSpec | None:
        additional = s.get("additionalItems")
        if isinstance(items, list):
            tuple_nodes = tuple(
                self.child(n, sub, f"/items/{i}") if has_rules(sub) else None
                for i, sub in enumerate(items)
            )
            extra = (
                self.child(n, additional, "/additionalItems")
                if isinstance(additional, dict) and has_rules(additional)
                else None
            )
            return ItemsSpec(
                tuple_nodes, None, additional is False, extra, n.path + "/additionalItems"
            )
        if has_rules(items):
            return ItemsSpec(None, self.child(n, items, "/items"), False, None, "")
        return None

    def unique(self, n: Node, s: dict, items: Any) -> UniqueSpec:
        item_type = items.get("type") if isinstance(items, dict) else None
        path = n.path + "/uniqueItems"
        large = ("object", "array")
        if (
            not item_type
            or item_type in large
            or (isinstance(item_type, list) and any(t in large for t in item_type))
        ):
            return UniqueSpec(None, False, path)
        types = tuple(item_type) if isinstance(item_type, list) else (item_type,)
        if "number" in types:
            types = tuple(t for t in types if t != "integer")
        return UniqueSpec(types, isinstance(item_type, list), path)

    def group_object(self, n: Node, s: dict) -> list[tuple[str, Any]]:
        ops: list[tuple[str, Any]] = []
        props = s.get("properties")
        prop_items = js_items(props) if isinstance(props, dict) else []
        if not n.composite and prop_items:
            entries = tuple(
                (k, sub["default"])
                for k, sub in prop_items
                if isinstance(sub, dict) and "default" in sub
            )
            if entries:
                ops.append(("$defaultProperties", DefaultsSpec(entries)))
        for kw in ("maxProperties", "minProperties"):
            if kw in s:
                ops.append((kw, ValueSpec(kw, s[kw], n.path + "/" + kw)))
        required = [str(p) for p in s.get("required") or []] if "required" in s else []
        if "required" in s:
            if prop_items:
                named = dict(prop_items)
                # Required names with a non-empty property schema are checked in `properties`
                # -- unless that schema is `false`, which AJV's `$propertySch && ...` skips, so
                # such a name is reported missing here *and* there.
                left = tuple(
                    p
                    for p in required
                    if not (p in named and named[p] is not False and has_rules(named[p]))
                )
            else:
                left = tuple(required)
            if left:
                ops.append(("required", RequiredSpec(left, n.path + "/required")))
        if "dependencies" in s and isinstance(s["dependencies"], dict):
            ops.append(("dependencies", self.dependencies(n, s["dependencies"])))
        if "propertyNames" in s and has_rules(s["propertyNames"]):
            node = self.child(n, s["propertyNames"], "/propertyNames", True)
            ops.append(("propertyNames", ChildSpec(node, n.path + "/propertyNames")))
        if "properties" in s or "additionalProperties" in s or "patternProperties" in s:
            ops.append(("properties", self.properties(n, s, prop_items, set(required))))
        return ops

    def dependencies(self, n: Node, deps: dict) -> DependenciesSpec:
        prop_deps = []
        schema_deps = []
        for prop, dep in js_items(deps):
            if isinstance(dep, list):
                if dep:
                    prop_deps.append((prop, tuple(str(d) for d in dep)))
            elif has_rules(dep):
                schema_deps.append(
                    (prop, self.child(n, dep, "/dependencies/" + escape_fragment(prop)))
                )
        # AJV emits every property dependency before any schema dependency.
        return DependenciesSpec(tuple(prop_deps), tuple(schema_deps), n.path + "/dependencies")

    def properties(
        self, n: Node, s: dict, prop_items: list[tuple[str, Any]], required: set[str]
    ) -> PropertiesSpec:
        patterns = s.get("patternProperties")
        pattern_items = js_items(patterns) if isinstance(patterns, dict) else []
        additional = s.get("additionalProperties")
        no_additional = additional is False
        additional_is_schema = isinstance(additional, dict) and len(additional) > 0
        name_patterns = tuple(
            self.regex(p, n.path + "/patternProperties/" + escape_fragment(p))
            for p, _ in pattern_items
        )
        entries = []
        for key, sub in prop_items:
            if not has_rules(sub):
                continue
            node = self.child(n, sub, "/properties/" + escape_fragment(key))
            has_default = not n.composite and isinstance(sub, dict) and "default" in sub
            entries.append(PropEntry(key, node, has_default, key in required))
        pattern_entries = []
        for (p, sub), rx in zip(pattern_items, name_patterns, strict=True):
            if has_rules(sub):
                node = self.child(n, sub, "/patternProperties/" + escape_fragment(p))
                pattern_entries.append((p, rx, node))
        return PropertiesSpec(
            check_additional=no_additional or additional_is_schema,
            some_properties=bool(prop_items or pattern_items),
            names=frozenset(k for k, _ in prop_items),
            name_patterns=name_patterns,
            no_additional=no_additional,
            additional=(
                self.child(n, additional, "/additionalProperties") if additional_is_schema else None
            ),
            entries=tuple(entries),
            pattern_entries=tuple(pattern_entries),
            path_additional=n.path + "/additionalProperties",
            path_required=n.path + "/required",
        )

    def untyped(self, n: Node, s: dict) -> list[tuple[str, Any]]:
        ops: list[tuple[str, Any]] = []
        if "const" in s:
            ops.append(("const", ValueSpec("const", s["const"], n.path + "/const")))
        if "enum" in s:
            ops.append(("enum", ValueSpec("enum", s["enum"], n.path + "/enum")))
        if "not" in s:
            sub = s["not"]
            node = self.child(n, sub, "/not", True) if has_rules(sub) else None
            ops.append(("not", ChildSpec(node, n.path + "/not")))
        if "anyOf" in s and isinstance(s["anyOf"], list):
            branches = s["anyOf"]
            # One empty branch makes anyOf always pass: AJV then generates nothing.
            if all(has_rules(b) for b in branches):
                nodes = tuple(self.child(n, b, f"/anyOf/{i}", True) for i, b in enumerate(branches))
                ops.append(("anyOf", BranchesSpec(nodes, n.path + "/anyOf")))
        if "oneOf" in s and isinstance(s["oneOf"], list):
            nodes = tuple(
                self.child(n, b, f"/oneOf/{i}", True) if has_rules(b) else None
                for i, b in enumerate(s["oneOf"])
            )
            ops.append(("oneOf", BranchesSpec(nodes, n.path + "/oneOf")))
        if "allOf" in s and isinstance(s["allOf"], list):
            nodes = tuple(
                self.child(n, b, f"/allOf/{i}") for i, b in enumerate(s["allOf"]) if has_rules(b)
            )
            if nodes:
                ops.append(("allOf", BranchesSpec(nodes, n.path + "/allOf")))
        if "if" in s:
            then = s.get("then")
            otherwise = s.get("else")
            then_node = self.child(n, then, "/then") if "then" in s and has_rules(then) else None
            else_node = (
                self.child(n, otherwise, "/else") if "else" in s and has_rules(otherwise) else None
            )
            if then_node is not None or else_node is not None:
                condition = self.child(n, s["if"], "/if", True)
                ops.append(("if", IfSpec(condition, then_node, else_node, n.path + "/if")))
        return ops


def _children(n: Node) -> list[Node]:
    out: list[Node] = []
    for _, spec in n.ops:
        if isinstance(spec, ChildSpec):
            if spec.node is not None:
                out.append(spec.node)
        elif isinstance(spec, ItemsSpec):
            out.extend(x for x in (spec.tuple_nodes or ()) if x is not None)
            out.extend(x for x in (spec.single, spec.additional) if x is not None)
        elif isinstance(spec, DependenciesSpec):
            out.extend(node for _, node in spec.schema_deps)
        elif isinstance(spec, PropertiesSpec):
            if spec.additional is not None:
                out.append(spec.additional)
            out.extend(e.node for e in spec.entries)
            out.extend(node for _, _, node in spec.pattern_entries)
        elif isinstance(spec, BranchesSpec):
            out.extend(x for x in spec.nodes if x is not None)
        elif isinstance(spec, IfSpec):
            out.extend(x for x in (spec.condition, spec.then, spec.otherwise) if x is not None)
    return out


def _mark_writers(nodes: list[Node]) -> None:
    """Flag every node from which a default can get written, so the defaults walk can skip
    everything else (for most schemas: all of it)."""
    for n in nodes:
        n.may_write = any(kw in ("$defaultProperties", "$defaultItems") for kw, _ in n.ops)
    parents: dict[int, list[Node]] = {}
    for n in nodes:
        for c in _children(n):
            parents.setdefault(id(c), []).append(n)
    work = [n for n in nodes if n.may_write]
    while work:
        n = work.pop()
        for p in parents.get(id(n), ()):
            if not p.may_write:
                p.may_write = True
                work.append(p)


_SAME_DATA_COMPOSITION = ("allOf", "anyOf", "oneOf", "not", "if")


def _order_sensitive(nodes: list[Node]) -> bool:
    """Whether a default could be written *after* AJV already judged the data it lands in.

    AJV writes defaults while it validates, so a check that ran before a write did not see it.
    That can only happen where a node able to write (directly or below) lets two schemas judge
    the same data: its own data through allOf/anyOf/oneOf/not/if or a schema dependency, or one
    member through both `properties` and `patternProperties` (or two patterns), or items
    through both `items` and `contains`. Then the caller needs the single AJV-order pass;
    otherwise validating after all defaults are written is exact."""
    for n in nodes:
        if not n.may_write:
            continue
        kws = {kw for kw, _ in n.ops}
        if kws & set(_SAME_DATA_COMPOSITION) or {"items", "contains"} <= kws:
            return True
        for _, spec in n.ops:
            if isinstance(spec, DependenciesSpec) and spec.schema_deps:
                return True
            if (
                isinstance(spec, PropertiesSpec)
                and spec.pattern_entries
                and (spec.entries or len(spec.pattern_entries) > 1 or spec.additional)
            ):
                return True
    return False


def _same_data_children(n: Node) -> list[Node]:
    out: list[Node] = []
    for kw, spec in n.ops:
        if kw in ("$ref", "not") and spec.node is not None:
            out.append(spec.node)
        elif kw in ("allOf", "anyOf", "oneOf"):
            out.extend(x for x in spec.nodes if x is not None)
        elif kw == "if":
            out.extend(x for x in (spec.condition, spec.then, spec.otherwise) if x is not None)
        elif kw == "dependencies":
            out.extend(node for _, node in spec.schema_deps)
    return out


def _same_data_cycle(nodes: list[Node]) -> Node | None:
    """A node that can reach itself without descending into the data, if any.

    Validating such a schema never terminates: AJV 6 dies with "Maximum call stack size
    exceeded" on every event that gets there (EventGate then reports the event as an error),
    jsonschema-rs quietly accepts. Neither is an answer, so the planner refuses the schema."""
    state: dict[int, int] = {}  # 1: on the current path, 2: done
    for start in nodes:
        if id(start) in state:
            continue
        stack = [(start, iter(_same_data_children(start)))]
        state[id(start)] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[id(node)] = 2
                stack.pop()
            elif state.get(id(child)) == 1:
                return child
            elif id(child) not in state:
                state[id(child)] = 1
                stack.append((child, iter(_same_data_children(child))))
    return None


@dataclass
class Plan:
    root: Node
    nodes: list[Node]
    #: See _order_sensitive: defaults and validation must then run as one pass.
    order_sensitive: bool = False


def compile_schema(schema: Any, specification: Any, base_uri: str) -> Plan:
    """Plan ``schema`` (and every subschema it reaches) in AJV's order; raise SchemaCompileError
    where AJV's ``compile`` would throw (unknown format, bad regex, unresolvable $ref)."""
    planner = _Planner(schema, specification, base_uri)
    root = planner.run()
    nodes = list(planner.cache.values())
    looping = _same_data_cycle(nodes)
    if looping is not None:
        raise SchemaCompileError(
            f"unbounded recursion: the subschema at {looping.path} leads back to itself "
            "without descending into the data, so AJV 6 overflows its stack on events that "
            "reach it"
        )
    _mark_writers(nodes)
    return Plan(root, nodes, _order_sensitive(nodes))
