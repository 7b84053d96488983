"""Field-level differences between two schema versions, each judged compatible or breaking.

Before bumping a version, a producer needs to know whether events valid today stay valid
(and whether downstream tables can evolve): a new optional field is fine, a removed field or a
narrower type is not. Whole-file diffs of materialized schemas bury that answer in
description churn, so the schemas are flattened to fields (`meta.stream`, `items` as `[]`,
map values as `{}`) and each change is classed:

* **breaking**: a field removed; a required field added, or a field made required; a type
  changed or narrowed; an enum narrowed (or introduced); a bound tightened (`maxLength`
  lowered, `minLength` raised, ...); a `pattern` or `format` added or changed; an object
  closed with `additionalProperties: false`;
* **compatible**: an optional field added, and every widening (a bound relaxed or removed,
  an enum extended, a field no longer required, a type widened such as integer to number);
* **doc**: `title`, `description` and `examples` changes.

A changed keyword the rules do not understand is counted as breaking: a wrong "compatible"
costs more than a second look.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator

from mpsandbox.authoring.deref import RefError, dereference
from mpsandbox.authoring.materialize import AuthoringError, build
from mpsandbox.authoring.merge import MergeError, merge_all_of
from mpsandbox.authoring.repo import CURRENT, Resolver, read_schema_file, repo_root_of
from mpsandbox.schemas.sources import Attempt, SchemaParseError, title_and_version

__all__ = ["BREAKING", "COMPATIBLE", "DOC", "Change", "SchemaDiff", "diff_schemas", "load_side"]

BREAKING = "breaking"
COMPATIBLE = "compatible"
DOC = "doc"

_DOC_KEYS = ("title", "description", "examples", "$comment")
_IGNORED_KEYS = ("$id", "$schema", "properties", "required", "items", "definitions")
#: keyword -> True when a larger value accepts more (upper bounds), False for lower bounds.
_BOUNDS = {
    "maxLength": True,
    "maximum": True,
    "exclusiveMaximum": True,
    "maxItems": True,
    "maxProperties": True,
    "minLength": False,
    "minimum": False,
    "exclusiveMinimum": False,
    "minItems": False,
    "minProperties": False,
}
_WIDER_TYPES = {"integer": {"number"}}
#: Draft-07's keywords; anything else (a typo such as `mexLength`) validates nothing.
_VOCABULARY = frozenset(Draft7Validator.META_SCHEMA["properties"]) | {"$ref", "format"}


@dataclass(frozen=True)
class Change:
    path: str
    kind: str
    severity: str
    message: str
    before: Any = None
    after: Any = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "class": self.severity,
            "message": self.message,
            "before": self.before,
            "after": self.after,
        }


@dataclass
class SchemaDiff:
    a: str
    b: str
    changes: list[Change] = field(default_factory=list)

    def count(self, severity: str) -> int:
        return sum(1 for c in self.changes if c.severity == severity)

    @property
    def breaking(self) -> bool:
        return self.count(BREAKING) > 0

    def summary(self) -> str:
        return (
            f"{self.a} -> {self.b}: {self.count(BREAKING)} breaking, "
            f"{self.count(COMPATIBLE)} compatible, {self.count(DOC)} doc"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "breaking": self.count(BREAKING),
            "compatible": self.count(COMPATIBLE),
            "doc": self.count(DOC),
            "changes": [c.as_dict() for c in self.changes],
        }


# --- loading --------------------------------------------------------------------------------


def _uri_of(arg: str) -> str:
    """`title@version` -> `/title/version`; an `$id` URI is used as it is."""
    if "@" in arg:
        title, _, version = arg.rpartition("@")
        return f"/{title.strip('/')}/{version}"
    return "/" + arg.strip("/") if not arg.startswith("/") else arg


def load_side(arg: str, resolver: Resolver) -> tuple[str, dict]:
    """The schema an argument names (a file, `title@version` or an `$id`), materialized.

    Raises AuthoringError saying where it looked when nothing matches.
    """
    path = Path(arg).expanduser()
    if path.is_file():
        if path.name == CURRENT:
            return str(path), build(path, resolver).schema
        try:
            schema = read_schema_file(path)
        except SchemaParseError as exc:
            raise AuthoringError(str(exc)) from None
        return str(path), _normalized(schema, resolver.with_repo(repo_root_of(path.parent)))
    uri = _uri_of(arg)
    attempts: list[Attempt] = []
    try:
        found = resolver.find(uri, attempts)
    except SchemaParseError as exc:
        raise AuthoringError(str(exc)) from None
    if found is None:
        title = title_and_version(uri)[0]
        known = resolver.versions(title) if title else []
        lines = [f"{arg}: not a file, and no schema source holds {uri}"]
        if known:
            lines.append(f"  {title} exists in versions {', '.join(known)}")
        for a in attempts[:8]:
            lines.append(f"  tried {a.location}: {a.outcome}")
        if len(attempts) > 8:
            lines.append(f"  (and {len(attempts) - 8} more places)")
        if not resolver.sources:
            lines.append("  (no sources: give --schemas DIR)")
        raise AuthoringError("\n".join(lines))
    label = uri if "@" not in arg else arg
    return label, _normalized(found.schema, resolver)


def _normalized(schema: Any, resolver: Resolver) -> dict:
    if not isinstance(schema, dict):
        raise AuthoringError("not a schema (a mapping)")
    try:
        return merge_all_of(dereference(schema, resolver.load))
    except (RefError, MergeError) as exc:
        raise AuthoringError(str(exc)) from None


# --- comparing ------------------------------------------------------------------------------


def _fields(schema: Any, prefix: str, required: bool | None, out: dict) -> None:
    """Flatten to {path: (schema, required)}; `""` is the root."""
    if not isinstance(schema, dict):
        return
    out[prefix] = (schema, required)
    names = set(schema.get("required") or [])
    for name, sub in (schema.get("properties") or {}).items():
        path = f"{prefix}.{name}" if prefix else name
        _fields(sub, path, name in names, out)
    items = schema.get("items")
    if isinstance(items, dict):
        _fields(items, f"{prefix}[]", None, out)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        _fields(extra, f"{prefix}{{}}", None, out)


def _types(schema: dict) -> set[str] | None:
    t = schema.get("type")
    if t is None:
        return None
    return set(t) if isinstance(t, list) else {t}


def _accepts_all(wide: set[str], narrow: set[str]) -> bool:
    return all(t in wide or _WIDER_TYPES.get(t, set()) & wide for t in narrow)


def _is_under(path: str, parents: set[str]) -> bool:
    return any(path.startswith(p + ".") or path.startswith(p + "[") for p in parents if p)


def diff_schemas(a: dict, b: dict, *, a_label: str = "A", b_label: str = "B") -> SchemaDiff:
    result = SchemaDiff(a_label, b_label)
    fa: dict = {}
    fb: dict = {}
    _fields(a, "", None, fa)
    _fields(b, "", None, fb)
    added_roots: set[str] = set()
    removed_roots: set[str] = set()
    add = result.changes.append
    for path in fa:
        if path not in fb and not _is_under(path, removed_roots):
            removed_roots.add(path)
            add(Change(path, "removed", BREAKING, "field removed", before=_brief(fa[path][0])))
    for path, (schema, required) in fb.items():
        if path in fa or _is_under(path, added_roots):
            continue
        added_roots.add(path)
        if required:
            add(Change(path, "added", BREAKING, "required field added", after=_brief(schema)))
        else:
            add(Change(path, "added", COMPATIBLE, "optional field added", after=_brief(schema)))
    for path, (old, was_required) in fa.items():
        if path in fb:
            new, is_required = fb[path]
            result.changes.extend(_compare_field(path, old, new, was_required, is_required))
    order = {p: i for i, p in enumerate(list(fa) + [p for p in fb if p not in fa])}
    result.changes.sort(key=lambda c: order.get(c.path, len(order)))
    return result


def _brief(schema: dict) -> str:
    t = schema.get("type")
    return "/".join(t) if isinstance(t, list) else str(t or "any")


def _compare_field(
    path: str, old: dict, new: dict, was_required: bool | None, is_required: bool | None
) -> list[Change]:
    out: list[Change] = []
    shown = path or "(root)"

    def add(kind: str, severity: str, message: str, before: Any = None, after: Any = None):
        out.append(Change(shown, kind, severity, message, before, after))

    if was_required is False and is_required:
        add("required", BREAKING, "now required", False, True)
    elif was_required and is_required is False:
        add("required", COMPATIBLE, "no longer required", True, False)
    keys = list(dict.fromkeys([*old, *new]))
    for key in keys:
        before, after = old.get(key), new.get(key)
        if key in _IGNORED_KEYS or before == after:
            continue
        if key in _DOC_KEYS:
            add(key, DOC, f"{key} changed", before, after)
        elif key == "type":
            add(*_type_change(before, after, old, new))
        elif key in ("enum", "const"):
            add(*_enum_change(key, before, after, key in old, key in new))
        elif key in _BOUNDS:
            add(*_bound_change(key, before, after))
        elif key in ("pattern", "format", "multipleOf"):
            if key not in new:
                add(key, COMPATIBLE, f"{key} removed", before, after)
            elif key not in old:
                add(key, BREAKING, f"{key} added: {after!r}", before, after)
            else:
                add(key, BREAKING, f"{key} changed: {before!r} -> {after!r}", before, after)
        elif key == "additionalProperties":
            add(*_additional_change(before, after))
        elif key == "uniqueItems":
            severity = BREAKING if after is True else COMPATIBLE
            add(key, severity, f"uniqueItems {before!r} -> {after!r}", before, after)
        elif key == "default":
            add(key, COMPATIBLE, f"default changed: {before!r} -> {after!r}", before, after)
        elif key not in _VOCABULARY:
            add(key, DOC, f"{key} changed (not a JSON Schema keyword: no effect)", before, after)
        else:
            add(key, BREAKING, f"{key} changed (not analysed)", before, after)
    return out


def _type_change(before: Any, after: Any, old: dict, new: dict) -> tuple:
    was, now = _types(old), _types(new)
    if now is None:
        return ("type", COMPATIBLE, f"type constraint removed (was {before})", before, after)
    if was is None:
        return ("type", BREAKING, f"type constraint added: {after}", before, after)
    if _accepts_all(now, was):
        return ("type", COMPATIBLE, f"type widened: {before} -> {after}", before, after)
    return ("type", BREAKING, f"type changed: {before} -> {after}", before, after)


def _enum_change(key: str, before: Any, after: Any, had: bool, has: bool) -> tuple:
    old = before if key == "enum" else [before]
    new = after if key == "enum" else [after]
    if not has:
        return (key, COMPATIBLE, f"{key} removed (any value allowed)", before, after)
    if not had:
        return (key, BREAKING, f"{key} added: only {new!r}", before, after)
    gone = [v for v in old if v not in new]
    extra = [v for v in new if v not in old]
    if gone:
        return (key, BREAKING, f"{key} narrowed: {gone!r} no longer allowed", before, after)
    if extra:
        return (key, COMPATIBLE, f"{key} widened: {extra!r} added", before, after)
    return (key, DOC, f"{key} reordered", before, after)


def _bound_change(key: str, before: Any, after: Any) -> tuple:
    upper = _BOUNDS[key]
    if after is None:
        return (key, COMPATIBLE, f"{key} removed (was {before})", before, after)
    if before is None:
        return (key, BREAKING, f"{key} added: {after}", before, after)
    tighter = after < before if upper else after > before
    word = "lowered" if after < before else "raised"
    severity = BREAKING if tighter else COMPATIBLE
    return (key, severity, f"{key} {word}: {before} -> {after}", before, after)


def _additional_change(before: Any, after: Any) -> tuple:
    key = "additionalProperties"
    if after is False:
        return (key, BREAKING, "object closed: additionalProperties false", before, after)
    if before is False:
        return (key, COMPATIBLE, "object opened: other properties now allowed", before, after)
    if isinstance(before, dict) and isinstance(after, dict):
        return (key, DOC, "map value schema changed (see the {} fields)", before, after)
    return (key, BREAKING, "additionalProperties changed (not analysed)", before, after)
