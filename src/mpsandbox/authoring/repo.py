"""Where a schema file sits in its repository, and where its `$ref`s are looked up.

Authoring commands take paths (`jsonschema/analytics/x/current.yaml`, a schema directory or a
whole repository), while `$ref`s name absolute schema paths (`/fragment/common/2.0.0`) that may
live in another repository: the real secondary repository refers into primary. So each file
is tied to its own repository root (the `jsonschema/` directory above it), and refs are looked
up there first and then in the sources the user gave with `--schemas`, as jsonschema-tools'
`schemaBaseUris` do.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mpsandbox.schemas.configured import Source
from mpsandbox.schemas.refs import RefError
from mpsandbox.schemas.sources import (
    Attempt,
    DirectorySource,
    Found,
    SchemaParseError,
    parse_schema_text,
)

__all__ = [
    "CURRENT",
    "RepoConfig",
    "Resolver",
    "find_current_files",
    "path_title",
    "published_versions",
    "read_schema_file",
    "repo_root_of",
    "version_from_id",
    "version_key",
]

CURRENT = "current.yaml"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
VERSION_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
_COERCE_RE = re.compile(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?")


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def version_from_id(schema_id: Any) -> str | None:
    """The version in a `$id` such as `/analytics/x/1.2.0`, read as jsonschema-tools reads it
    (semver.coerce of the last path part: `1.2` is 1.2.0)."""
    if not isinstance(schema_id, str) or not schema_id:
        return None
    last = schema_id.split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    match = _COERCE_RE.search(last)
    if match is None:
        return None
    return ".".join(str(int(p or 0)) for p in match.groups())


def repo_root_of(path: Path) -> Path | None:
    """The nearest `jsonschema/` directory at or above `path` (the base schema titles are
    relative to), or None outside any repository."""
    path = path.resolve()
    for candidate in (path, *path.parents):
        if candidate.name == "jsonschema" and candidate.is_dir():
            return candidate
    return None


def path_title(schema_dir: Path, repo_root: Path) -> str:
    """`analytics/product_metrics/web/base` for `.../jsonschema/analytics/product_metrics/web/base`."""
    return schema_dir.resolve().relative_to(repo_root.resolve()).as_posix()


def find_current_files(target: Path) -> list[Path]:
    """Every `current.yaml` a command argument names: the file itself, a schema directory,
    or every one under a repository or subtree (sorted, for stable output)."""
    target = target.expanduser()
    if target.is_file():
        return [target]
    if (target / CURRENT).is_file():
        return [target / CURRENT]
    return sorted(p for p in target.rglob(CURRENT) if p.is_file())


def published_versions(folder: Path) -> list[str]:
    """The versions with an `X.Y.Z.yaml` in a schema directory, oldest first."""
    found = (p.name.removesuffix(".yaml") for p in folder.glob("*.yaml"))
    return sorted((v for v in found if VERSION_RE.match(v)), key=version_key)


def read_schema_file(path: Path) -> Any:
    """Parse a YAML or JSON schema file; a parse problem names the file and line."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SchemaParseError(str(path), exc.strerror or str(exc)) from None
    return parse_schema_text(data, str(path))


@dataclass
class RepoConfig:
    """The parts of a repository's `.jsonschema-tools.yaml` the authoring commands honour."""

    path: Path | None = None
    #: `$id` regex -> names of jsonschema-tools test cases skipped for matching schemas.
    skip: dict[str, list[str]] = field(default_factory=dict)
    generate_examples: bool = True

    @classmethod
    def for_repo(cls, repo_root: Path | None) -> RepoConfig:
        if repo_root is None:
            return cls()
        path = repo_root.parent / ".jsonschema-tools.yaml"
        try:
            stamp = path.stat().st_mtime_ns
        except OSError:
            return cls()
        return _read_config(path, stamp)

    @classmethod
    def parse(cls, path: Path) -> RepoConfig:
        try:
            data = yaml.load(path.read_text("utf-8"), Loader=_LOADER) or {}
        except (OSError, yaml.YAMLError):
            return cls(path=path)
        if not isinstance(data, dict):
            return cls(path=path)
        skip = data.get("skipSchemaTestCases")
        if not isinstance(skip, dict):
            skip = {}
        return cls(
            path=path,
            skip={
                str(k): [str(n) for n in (v if isinstance(v, list) else [v] if v else [])]
                for k, v in skip.items()
            },
            generate_examples=data.get("shouldGenerateExample", True) is not False,
        )

    def skips(self, schema_id: str, test_case: str) -> bool:
        """Whether `test_case` is skipped for the schema with this `$id` (regex search, as
        jsonschema-tools matches these keys)."""
        for pattern, cases in self.skip.items():
            if test_case in cases:
                try:
                    if re.search(pattern, schema_id):
                        return True
                except re.error:
                    continue
        return False


@functools.lru_cache(maxsize=32)
def _read_config(path: Path, _stamp: int) -> RepoConfig:
    """Parsed once per file version: every schema built in a run asks for it."""
    return RepoConfig.parse(path)


class Resolver:
    """Loads schemas by URI from an ordered list of sources, remembering what it found."""

    def __init__(self, sources: list[Source]):
        self.sources = list(sources)
        self._cache: dict[str, Found] = {}

    def with_repo(self, repo_root: Path | None) -> Resolver:
        """A resolver that looks in `repo_root` before the configured sources."""
        if repo_root is None:
            return self
        root = repo_root.resolve()
        if any(isinstance(s, DirectorySource) and s.root == root for s in self.sources[:1]):
            return self
        return Resolver([DirectorySource(root, name=str(root)), *self.sources])

    def forget(self) -> None:
        """Drop what was loaded (after writing files that later lookups must see)."""
        self._cache.clear()

    def find(self, uri: str, attempts: list[Attempt] | None = None) -> Found | None:
        key = uri.split("#", 1)[0]
        if key in self._cache:
            return self._cache[key]
        attempts = attempts if attempts is not None else []
        for source in self.sources:
            found = source.lookup(key, attempts)
            if found is not None:
                self._cache[key] = found
                return found
        return None

    def load(self, uri: str) -> Any:
        """The document at `uri`; RefError names every place tried when none holds it."""
        attempts: list[Attempt] = []
        try:
            found = self.find(uri, attempts)
        except SchemaParseError as exc:
            raise RefError(f"$ref {uri}: {exc}") from None
        if found is None:
            tried = "; ".join(f"{a.location} ({a.outcome})" for a in attempts) or "no sources"
            raise RefError(f"$ref {uri} not found; tried {tried}")
        return found.schema

    def versions(self, title: str) -> list[str]:
        found: set[str] = set()
        for source in self.sources:
            found.update(source.versions(title))
        return sorted(found, key=version_key)
