"""Start a new schema in repository layout, built on a base schema and fragments.

Most instrument schemas are the same few lines: a title and `$id` that match the path, an
`allOf` of the Metrics Platform base schema and some fragments, the instrument's own
`properties`, and one example. Getting any of those subtly wrong (a title that does not match
the directory, an example whose `$schema` is stale) fails only in CI, so `schema new` writes
them right and the author fills in the fields. Refs name the newest version found in the
sources, like a producer would pick by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mpsandbox.authoring.deref import RefError, dereference
from mpsandbox.authoring.examples import generate_example
from mpsandbox.authoring.materialize import AuthoringError
from mpsandbox.authoring.merge import MergeError, merge_all_of
from mpsandbox.authoring.repo import CURRENT, Resolver, version_key
from mpsandbox.authoring.yamlout import dump_yaml
from mpsandbox.schemas.sources import SchemaParseError

__all__ = ["Scaffolded", "jsonschema_dir", "resolve_ref", "scaffold"]

_TITLE_RE = re.compile(r"^[a-z0-9_]+(/[a-z0-9_]+)*$")
DRAFT_07 = "https://json-schema.org/draft-07/schema#"


@dataclass
class Scaffolded:
    path: Path
    title: str
    refs: list[str]


def jsonschema_dir(into: Path) -> Path:
    """The `jsonschema/` directory of the repository at `into` (created when missing)."""
    into = into.expanduser()
    if into.name == "jsonschema":
        return into
    return into / "jsonschema"


def resolve_ref(arg: str, resolver: Resolver, *, fragment: bool) -> str:
    """`/title/X.Y.Z` for `title` (newest version) or `title@X.Y.Z`; a fragment may be
    named without its `fragment/` prefix."""
    title, _, version = arg.strip().partition("@")
    title = title.strip("/")
    candidates = [title]
    if fragment and not title.startswith("fragment/"):
        candidates.insert(0, f"fragment/{title}")
    seen: dict[str, list[str]] = {}
    for candidate in candidates:
        if version:
            # Looked up directly: a remote source can fetch a version it cannot list.
            try:
                if resolver.find(f"/{candidate}/{version}") is not None:
                    return f"/{candidate}/{version}"
            except SchemaParseError as exc:
                raise AuthoringError(str(exc)) from None
        versions = resolver.versions(candidate)
        seen[candidate] = versions
        if versions and not version:
            return f"/{candidate}/{max(versions, key=version_key)}"
    known = "; ".join(f"{t}: {', '.join(v)}" for t, v in seen.items() if v)
    where = ", ".join(s.name for s in resolver.sources) or "no sources (give --schemas DIR)"
    wanted = f"{title}@{version}" if version else title
    remote = any(s.kind == "remote" for s in resolver.sources)
    raise AuthoringError(
        f"no schema source holds {wanted}"
        + (f" (versions found: {known})" if known else "")
        + f"; looked in {where}"
        + ("; remote sources cannot list versions: name one (TITLE@X.Y.Z)" if remote else "")
    )


def _example(title: str, schema_id: str, refs: list[str], resolver: Resolver) -> dict:
    """A minimal event (required fields only) for the schema the refs make up."""
    try:
        merged = merge_all_of(dereference({"allOf": [{"$ref": r} for r in refs]}, resolver.load))
    except (RefError, MergeError) as exc:
        raise AuthoringError(f"the chosen schemas cannot be combined: {exc}") from None
    example = generate_example(merged, schema_id, required_only=True)
    if not isinstance(example, dict):
        example = {}
    if "$schema" in (merged.get("properties") or {}):
        example["$schema"] = {"$ref": "#/$id"}
    meta = example.get("meta")
    if isinstance(meta, dict) and "stream" in meta:
        meta["stream"] = title.replace("/", ".")
    return example


def scaffold(
    title: str,
    into: Path,
    resolver: Resolver,
    *,
    base: str | None,
    fragments: list[str],
) -> Scaffolded:
    """Write `<into>/jsonschema/<title>/current.yaml`; never overwrites a file."""
    title = title.strip("/")
    if not _TITLE_RE.match(title):
        raise AuthoringError(
            f"{title!r} is not a schema title: lower-case words, digits and underscores "
            "separated by '/', e.g. analytics/my_team/button_click"
        )
    if base is None and not fragments:
        raise AuthoringError("give a base schema (--from) and/or fragments (--fragment)")
    root = jsonschema_dir(into)
    folder = root / title
    path = folder / CURRENT
    if path.exists():
        raise AuthoringError(f"{path} already exists; edit it, or choose another name")
    resolver = resolver.with_repo(root if root.is_dir() else None)
    refs = []
    if base is not None:
        refs.append(resolve_ref(base, resolver, fragment=False))
    refs += [resolve_ref(f, resolver, fragment=True) for f in fragments]
    schema_id = f"/{title}/1.0.0"
    example = _example(title, schema_id, refs, resolver)
    lines = [
        f"title: {title}",
        "description: >-",
        "  TODO: what one event of this schema records, when it is sent, and by whom.",
        f"$id: {schema_id}",
        f"$schema: {DRAFT_07}",
        "type: object",
        "allOf:",
        *(f"  - $ref: {r}" for r in refs),
        "# This event's own fields, beyond those of the schemas above. For example:",
        "properties:",
        "  # button_label:",
        "  #   description: The visible label of the button that was clicked.",
        "  #   type: string",
        "  #   maxLength: 100",
        "# One minimal event (the required fields only): replace the values with a real",
        "# event of this instrument. $schema refers to $id, so it follows version bumps.",
        dump_yaml({"examples": [example]}).rstrip("\n"),
    ]
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return Scaffolded(path, title, refs)
