"""Turn `current.yaml` into the versioned `X.Y.Z.yaml` that production loads.

This is jsonschema-tools' `materialize` step, reproduced so that a producer can run the whole
loop (edit, materialize, lint, send events to the sandbox) without Node: dereference every
`$ref` (across repositories), merge `allOf`, bound every number, set `$id` from the title and
version, keep the examples `current.yaml` gives or generate one, and write the file with the
`X.Y.Z`, `latest` and `latest.yaml` links beside it.

A published version is immutable: events already validated against it must stay valid. So an
existing `X.Y.Z.yaml` that differs from the new materialization is never overwritten; that
situation is a `current.yaml` edited without a version bump, and it is reported as such.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mpsandbox.authoring.bounds import enforce_numeric_bounds
from mpsandbox.authoring.deref import RefError, dereference
from mpsandbox.authoring.examples import generate_example
from mpsandbox.authoring.merge import MergeError, merge_all_of
from mpsandbox.authoring.repo import (
    CURRENT,
    VERSION_RE,
    RepoConfig,
    Resolver,
    published_versions,
    read_schema_file,
    repo_root_of,
    version_from_id,
    version_key,
)
from mpsandbox.authoring.yamlout import dump_json, dump_yaml
from mpsandbox.errors import MpsandboxError
from mpsandbox.schemas.sources import SchemaParseError

__all__ = [
    "AuthoringError",
    "Built",
    "Outcome",
    "build",
    "dependency_order",
    "equal_as_data",
    "materialize",
    "materialize_all",
]

#: A "link" stored as a small file holding its target's name (checkouts without symlinks).
_PSEUDO_LINK_MAX = 255


class AuthoringError(MpsandboxError):
    """A schema that cannot be materialized; the message names the file and the reason."""


@dataclass
class Built:
    """A materialization computed in memory (nothing written)."""

    current: Path
    repo_root: Path | None
    title: str
    version: str
    schema: dict
    #: True when `examples` were generated (current.yaml gives none).
    examples_generated: bool
    source_id: str | None = None


@dataclass
class Outcome:
    """What materializing one `current.yaml` did."""

    current: Path
    status: str  # written | unchanged | refused | error
    message: str
    title: str | None = None
    version: str | None = None
    files: list[Path] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.status in ("refused", "error")


def _tagged(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _tagged(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_tagged(v) for v in value]
    if isinstance(value, bool) or value is None:
        return ("literal", value)
    return value


def equal_as_data(a: Any, b: Any, *, ignore_examples: bool = False) -> bool:
    """Whether two schemas hold the same data (key order aside; `1` equals `1.0`, `true`
    does not equal `1`)."""
    if ignore_examples and isinstance(a, dict) and isinstance(b, dict):
        a = {k: v for k, v in a.items() if k != "examples"}
        b = {k: v for k, v in b.items() if k != "examples"}
    return _tagged(a) == _tagged(b)


def build(current: Path, resolver: Resolver, *, version: str | None = None) -> Built:
    """Materialize `current` in memory; `version` overrides the one in its `$id`."""
    try:
        raw = read_schema_file(current)
    except SchemaParseError as exc:
        raise AuthoringError(str(exc)) from None
    if not isinstance(raw, dict):
        raise AuthoringError(f"{current}: does not hold a schema (a YAML mapping)")
    title = raw.get("title")
    if not isinstance(title, str) or not title.strip("/"):
        raise AuthoringError(f"{current}: has no title (it should be the directory path)")
    title = title.strip("/")
    source_id = raw.get("$id") if isinstance(raw.get("$id"), str) else None
    version = version or version_from_id(source_id)
    if version is None:
        raise AuthoringError(f"{current}: $id {source_id!r} names no version (/{title}/1.0.0)")
    if not VERSION_RE.match(version):
        raise AuthoringError(f"{current}: {version!r} is not a version like 1.2.0")
    repo_root = repo_root_of(current.parent)
    try:
        schema = dereference(raw, resolver.with_repo(repo_root).load, name=str(current))
        schema = merge_all_of(schema)
    except RefError as exc:
        raise AuthoringError(f"{current}: {exc}") from None
    except MergeError as exc:
        raise AuthoringError(f"{current}: allOf cannot be merged: {exc}") from None
    enforce_numeric_bounds(schema)
    schema_id = f"/{title}/{version}"
    schema["$id"] = schema_id
    generated = "examples" not in raw
    if generated:
        schema.pop("examples", None)
        if RepoConfig.for_repo(repo_root).generate_examples:
            schema["examples"] = [generate_example(schema, schema_id)]
    elif isinstance(schema.get("examples"), list) and source_id and source_id != schema_id:
        for example in schema["examples"]:
            if isinstance(example, dict) and example.get("$schema") == source_id:
                example["$schema"] = schema_id
    return Built(current, repo_root, title, version, schema, generated, source_id)


# --- files and links ------------------------------------------------------------------------


def _link_target(path: Path) -> str | None:
    """The file name a link (a symlink or a pseudo-link file) points at, else None."""
    if path.is_symlink():
        return os.readlink(path)
    try:
        if path.is_file() and path.stat().st_size <= _PSEUDO_LINK_MAX:
            text = path.read_text("utf-8").strip()
            if re.fullmatch(r"[A-Za-z0-9_.\-]+", text) and (path.parent / text).is_file():
                return text
    except (OSError, UnicodeDecodeError):
        return None
    return None


def _pseudo_link(path: Path) -> bool | None:
    """Whether the link at `path` is a pseudo-link file (False: a symlink; None: no link)."""
    if path.is_symlink():
        return False
    if path.exists():
        return _link_target(path) is not None
    return None


def _uses_pseudo_links(folder: Path) -> bool:
    """Whether this checkout stores links as small files (git with core.symlinks=false),
    judged by the `latest` links already there or, for a new schema, by the nearest other
    schema's; with none anywhere, real symlinks, as the schema repositories have them."""
    for name in ("latest.yaml", "latest"):
        own = _pseudo_link(folder / name)
        if own is not None:
            return own
    for parent in list(folder.parents)[:4]:
        for n, path in enumerate(parent.rglob("latest.yaml")):
            if n >= 20:
                break
            other = _pseudo_link(path)
            if other is not None:
                return other
    return False


def _set_link(path: Path, target: str, *, pseudo: bool) -> bool:
    """Point `path` at `target` (relative); True if anything changed.

    A real symlink is written, unless the checkout stores links as pseudo-link files (then
    the same convention is kept), or the system refuses symlinks.
    """
    current = _link_target(path)
    if current == target:
        return False
    tmp = path.with_name(f".{path.name}.mpsandbox-tmp")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    if not pseudo:
        try:
            tmp.symlink_to(target)
            tmp.replace(path)
            return True
        except OSError:
            if tmp.is_symlink():
                tmp.unlink()
    tmp.write_text(target)
    tmp.replace(path)
    return True


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.mpsandbox-tmp")
    tmp.write_text(text, "utf-8")
    tmp.replace(path)


def _linked_version(folder: Path, name: str) -> str | None:
    target = _link_target(folder / name)
    if target is None:
        return None
    stem = target.removesuffix(".yaml").removesuffix(".json")
    return stem if VERSION_RE.match(stem) else None


def _next_versions(version: str) -> str:
    major, minor, patch = version_key(version)
    return f"{major}.{minor}.{patch + 1} (a fix) or {major}.{minor + 1}.0 (a new field)"


def _rewrite_id(current: Path, title: str, version: str) -> bool:
    """Set the `$id` line of `current` to the new version, keeping every other byte."""
    text = current.read_text("utf-8")
    new, count = re.subn(
        r"(?m)^(\$id:[ \t]*)(['\"]?)[^'\"\n#]*?(['\"]?)([ \t]*(?:#.*)?)$",
        lambda m: f"{m.group(1)}{m.group(2)}/{title}/{version}{m.group(3)}{m.group(4)}",
        text,
        count=1,
    )
    if count and new != text:
        _write(current, new)
        return True
    return False


def _existing_differs(path: Path, schema: dict, *, ignore_examples: bool) -> bool | None:
    """None when `path` does not exist; else whether it holds different data."""
    if not path.exists():
        return None
    try:
        existing = read_schema_file(path)
    except SchemaParseError:
        return True
    return not equal_as_data(existing, schema, ignore_examples=ignore_examples)


def materialize(
    current: Path,
    resolver: Resolver,
    *,
    json_too: bool = False,
    version: str | None = None,
) -> Outcome:
    """Write `X.Y.Z.yaml` (and `.json`) and the links for one `current.yaml`."""
    try:
        built = build(current, resolver, version=version)
    except AuthoringError as exc:
        return Outcome(current, "error", str(exc))
    folder = current.parent
    v, title = built.version, built.title
    published = published_versions(folder)
    if version is not None and published and version_key(v) < version_key(published[-1]):
        return Outcome(
            current,
            "refused",
            f"--version {v} is older than the latest published version {published[-1]} of "
            f"{title}; a bump goes up, e.g. to {_next_versions(published[-1])}",
            title,
            v,
        )
    outputs = [(folder / f"{v}.yaml", dump_yaml)]
    if json_too:
        outputs.append((folder / f"{v}.json", dump_json))
    # Generated examples depend on the generator's version; only the schema itself and
    # hand-written examples decide whether a published file would change.
    ignore = built.examples_generated
    for path, _dump in outputs:
        if _existing_differs(path, built.schema, ignore_examples=ignore):
            return Outcome(
                current,
                "refused",
                f"{path} already exists and differs from what {current.name} materializes "
                f"to: {current.name} was changed without a version bump. Published versions "
                f"are never rewritten; set $id to /{title}/{_next_versions(v)} "
                f"(or pass --version) and materialize again.",
                title,
                v,
            )
    changed: list[Path] = []
    for path, dump in outputs:
        if not path.exists():
            _write(path, dump(built.schema))
            changed.append(path)
    links = [(folder / v, f"{v}.yaml")]
    latest = _linked_version(folder, "latest.yaml")
    if latest is None or version_key(v) >= version_key(latest):
        links += [(folder / "latest", f"{v}.yaml"), (folder / "latest.yaml", f"{v}.yaml")]
        if json_too:
            links.append((folder / "latest.json", f"{v}.json"))
    pseudo = _uses_pseudo_links(folder)
    for path, target in links:
        if _set_link(path, target, pseudo=pseudo):
            changed.append(path)
    note = ""
    if version is not None and built.source_id != f"/{title}/{v}":
        if _rewrite_id(current, title, v):
            changed.append(current)
        else:
            note = f"; set $id in {current.name} to /{title}/{v} by hand (no `$id:` line found)"
    resolver.forget()
    if not changed:
        return Outcome(current, "unchanged", f"{folder / f'{v}.yaml'} is up to date", title, v, [])
    names = ", ".join(p.name for p in changed)
    return Outcome(current, "written", f"{folder}: wrote {names}{note}", title, v, changed)


# --- several at once ------------------------------------------------------------------------


def _refs(node: Any) -> set[str]:
    out: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and not ref.startswith(("#", "./#")):
            out.add("/" + ref.split("#", 1)[0].strip("/"))
        for value in node.values():
            out |= _refs(value)
    elif isinstance(node, list):
        for value in node:
            out |= _refs(value)
    return out


def dependency_order(currents: list[Path]) -> list[Path]:
    """The files ordered so that a fragment is materialized before the schemas using it."""
    ids: dict[str, Path] = {}
    needs: dict[Path, set[str]] = {}
    for path in currents:
        try:
            raw = read_schema_file(path)
        except SchemaParseError:
            raw = None
        needs[path] = _refs(raw)
        if isinstance(raw, dict) and isinstance(raw.get("$id"), str):
            ids["/" + raw["$id"].strip("/")] = path
    done: list[Path] = []
    pending = list(currents)
    while pending:
        ready = [
            p for p in pending if all(ids.get(r) in (None, p) or ids[r] in done for r in needs[p])
        ]
        if not ready:  # a cycle: keep the given order for what is left
            ready = pending[:1]
        for p in ready:
            done.append(p)
            pending.remove(p)
    return done


def materialize_all(
    currents: list[Path],
    resolver: Resolver,
    *,
    json_too: bool = False,
    version: str | None = None,
) -> list[Outcome]:
    """Materialize each file, dependencies first; `version` only with a single file."""
    if version is not None and len(currents) != 1:
        raise AuthoringError(
            f"--version applies to one schema, but {len(currents)} {CURRENT} files were given"
        )
    return [
        materialize(path, resolver, json_too=json_too, version=version)
        for path in dependency_order(currents)
    ]
