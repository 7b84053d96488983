"""What each schema source holds, and which of its files would not load.

The registry only reads a file when an event asks for it, so a broken edit stays silent
until the next click in the wiki. The catalog walks a local source once (in a worker) and
parses the files that matter for new events, each title's ``current.yaml`` and its newest
version, so the Schemas view can show a parse error before any event hits it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mpsandbox.schemas.remote import RemoteSource, cached_urls
from mpsandbox.schemas.sources import (
    EXTENSIONS,
    DirectorySource,
    SchemaParseError,
    parse_schema_text,
)

_VERSION_FILE = re.compile(r"^(\d+\.\d+\.\d+)(\.yaml|\.json)?$")
#: Directory walks stop after this many titles (a whole monorepo is not a schema source).
TITLE_LIMIT = 5_000


@dataclass(slots=True)
class SourceCatalog:
    name: str
    kind: str
    location: str
    #: title -> versions, oldest first.
    titles: dict[str, list[str]] = field(default_factory=dict)
    #: file -> the parser's message, for files that would not load.
    problems: dict[str, str] = field(default_factory=dict)
    note: str | None = None
    truncated: bool = False

    @property
    def version_count(self) -> int:
        return sum(len(v) for v in self.titles.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "location": self.location,
            "titles": self.titles,
            "problems": self.problems,
            "note": self.note,
            "truncated": self.truncated,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SourceCatalog:
        return cls(**data)


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def _check(path: Path, problems: dict[str, str]) -> None:
    try:
        parse_schema_text(path.read_bytes(), str(path))
    except SchemaParseError as exc:
        where = f"line {exc.line}: " if exc.line else ""
        problems[str(path)] = where + exc.message
    except OSError as exc:
        problems[str(path)] = f"unreadable: {exc.strerror or exc}"


def _newest_file(folder: Path, version: str) -> Path | None:
    for ext in (*EXTENSIONS, ""):
        candidate = folder / f"{version}{ext}"
        if candidate.is_file():
            return candidate
    return None


def catalog_directory(source: DirectorySource, *, check: bool = True) -> SourceCatalog:
    out = SourceCatalog(source.name, source.kind, str(source.root))
    root = source.root
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        versions = sorted(
            {m.group(1) for f in filenames if (m := _VERSION_FILE.match(f))}, key=_version_key
        )
        folder = Path(dirpath)
        if not versions and "current.yaml" not in filenames:
            continue
        rel = folder.relative_to(root).as_posix()
        if rel.startswith("jsonschema/"):
            rel = rel[len("jsonschema/") :]
        out.titles[rel] = versions
        if check:
            if "current.yaml" in filenames:
                _check(folder / "current.yaml", out.problems)
            newest = _newest_file(folder, versions[-1]) if versions else None
            if newest is not None:
                _check(newest, out.problems)
        if len(out.titles) >= TITLE_LIMIT:
            out.truncated = True
            break
    return out


def catalog_remote(source: RemoteSource) -> SourceCatalog:
    info: dict[str, Any] = source.describe()
    out = SourceCatalog(info.get("name", source.base_url), source.kind, source.base_url)
    cached = sum(1 for url, _ in cached_urls(source.cache_dir) if url.startswith(source.base_url))
    how = "cache only (offline)" if source.offline else "fetched on demand"
    out.note = f"{how}; {cached:,} documents cached on disk for offline use"
    return out


def describe_sources(registry: Any) -> dict[str, Any]:
    """What a registry's sources hold (``catalogs``, as dicts) and the files it failed to
    load when an event needed them (``load_errors``): the Schemas screen's content, asked
    of the running intake's registry. Walks directories: call it off the event loop."""
    return {
        "catalogs": [catalog(s).as_dict() for s in registry.sources],
        "load_errors": dict(registry.load_errors),
    }


def catalog(source: Any, *, check: bool = True) -> SourceCatalog:
    if isinstance(source, DirectorySource):
        return catalog_directory(source, check=check)
    if isinstance(source, RemoteSource):
        return catalog_remote(source)
    return SourceCatalog(str(source), "unknown", str(source))
