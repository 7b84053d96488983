"""Where schemas come from, and how a `$schema` URI is looked up in each place.

Lookup mirrors EventGate: the URI is appended to each base by plain concatenation and a file
extension is tried only when the last path part has none (a version number counts as none).
Unlike EventGate, every attempt is recorded, so a miss can say where it looked.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

EXTENSIONS = (".yaml", ".json")
VERSION_RE = _VERSION_RE = re.compile(r"^\d+\.\d+\.\d+$")
_LINK_TARGET_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")
#: Git checkouts made without symlink support store a link as a tiny file holding its target.
_PSEUDO_LINK_MAX_BYTES = 255


class SchemaParseError(Exception):
    """A schema file exists but cannot be parsed; carries the location and parser message."""

    def __init__(self, location: str, message: str, line: int | None = None):
        self.location = location
        self.message = message
        self.line = line
        where = f"{location}:{line}" if line else location
        super().__init__(f"{where}: {message}")


@dataclass(slots=True)
class Attempt:
    """One place a URI was looked for, and what happened there."""

    source: str
    location: str
    outcome: str
    #: For a remote: why it failed (remote.py's UNREACHABLE, TIMED_OUT, NOT_FOUND, ...).
    cause: str | None = None

    def as_dict(self) -> dict[str, str]:
        out = {"source": self.source, "location": self.location, "outcome": self.outcome}
        if self.cause is not None:
            out["cause"] = self.cause
        return out


@dataclass(slots=True)
class Found:
    schema: Any
    location: str
    source: str
    #: The file no longer parses and ``schema`` is its last version that did (see
    #: DirectorySource): the parser's message, so the problem is shown until it is fixed.
    stale: str | None = None


def has_protocol(uri: str) -> bool:
    return re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*://", uri) is not None


def needs_extension(uri: str) -> bool:
    """True when the last path part has no extension; `1.3.0` counts as none, like EventGate."""
    last = uri.rstrip("/").rsplit("/", 1)[-1]
    if _VERSION_RE.match(last):
        return True
    return "." not in last


def materialized_alias(path: str) -> bool:
    """True when the last part of ``path`` names what a schema repository publishes as an
    extensionless symlink (`1.3.0 -> 1.3.0.yaml`, `latest -> latest.yaml`): only then is
    the `.yaml`/`.json` file tried too, standing in for a link a copy may have lost.
    EventGate (configured without a file extension, as in production) reads the path as
    given, so `current` (only ever `current.yaml`, the unmaterialized source) is a miss."""
    last = path.rsplit("/", 1)[-1]
    return last == "latest" or _VERSION_RE.match(last) is not None


def lookup_candidates(uri: str, *, base_slash: bool = False) -> list[str]:
    """The paths under a schema base tried for ``uri``, in order (see eventgate_path and
    materialized_alias); ``base_slash``: the base ends with '/'. Raises UnloadableURI."""
    rel = eventgate_path(uri, base_slash=base_slash)
    if rel.endswith("/"):
        raise UnloadableURI("the URI names a folder, not a schema file")
    if materialized_alias(rel):
        return [rel] + [rel + ext for ext in EXTENSIONS]
    return [rel]


class UnloadableURI(ValueError):
    """A `$schema` EventGate cannot turn into a file to read (why, for people)."""


#: What the WHATWG URL parser strips from both ends (C0 controls and space) and removes
#: everywhere (tab and newlines).
_URL_TRIM = "".join(chr(c) for c in range(0x21))
_URL_DROP = str.maketrans("", "", "\t\n\r")
#: Characters the URL parser percent-encodes in a path (the path percent-encode set, plus
#: everything outside ASCII); the encoded form is what EventGate then asks the file system
#: for, literally.
_PATH_ENCODE = frozenset(chr(c) for c in range(0x20)) | frozenset(' "<>`{}\x7f')


def _posix_resolve(path: str) -> str:
    """Node's ``path.resolve`` on an absolute POSIX path: empty and ``.`` segments dropped,
    ``..`` applied, no trailing slash."""
    out: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out:
                out.pop()
            continue
        out.append(part)
    return "/" + "/".join(out)


def _percent_encode(segment: str) -> str:
    if segment.isascii() and not any(ch in _PATH_ENCODE for ch in segment):
        return segment
    out = []
    for ch in segment:
        if ch.isascii() and ch not in _PATH_ENCODE:
            out.append(ch)
            continue
        if 0xD800 <= ord(ch) <= 0xDFFF:
            ch = "\ufffd"  # a URL string is USV: a lone surrogate becomes U+FFFD
        out.append("".join(f"%{b:02X}" for b in ch.encode("utf-8")))
    return "".join(out)


def eventgate_path(uri: str, *, base_slash: bool = False) -> str:
    """The path under a schema base that EventGate reads for the `$schema` ``uri``.

    EventGate (``@wikimedia/url-get``) concatenates the base and the URI as strings,
    applies ``path.resolve`` and reads ``new URL("file://" + that).pathname``. Hence:
    a URI must start with ``/`` (``analytics/x/1.0.0`` glues onto the base's folder name);
    spaces and control characters at the end are trimmed and tabs and newlines dropped;
    ``?query`` and ``#fragment`` are not part of the path; backslashes are slashes; dot
    segments are applied; and characters a URL path percent-encodes (inner spaces, quotes,
    anything outside ASCII) stay encoded, so they name a file that is literally called so.
    ``base_slash``: the base ends with ``/`` (as in EventGate's test config), so a URI
    without a leading slash lands under it too. Returned relative to the base with a
    leading ``/``; raises UnloadableURI."""
    if base_slash:
        uri = "/" + uri
    elif not uri.startswith("/"):
        raise UnloadableURI(
            "EventGate joins the schema base and the URI by plain concatenation, so a "
            "$schema must start with '/' (as in /analytics/x/1.0.0)"
        )
    text = _posix_resolve(uri).rstrip(_URL_TRIM).translate(_URL_DROP)
    for mark in ("#", "?"):
        text = text.split(mark, 1)[0]
    text = text.replace("\\", "/")
    parts: list[str] = []
    for part in text.split("/")[1:]:
        low = part.lower().replace("%2e", ".")
        if low == ".":
            continue
        if low == "..":
            if parts:
                parts.pop()
            continue
        parts.append(_percent_encode(part))
    return "/" + "/".join(parts)


def parse_schema_text(text: str | bytes, location: str) -> Any:
    """Parse YAML or JSON (JSON is YAML, but orjson is faster and gives better messages)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise SchemaParseError(location, f"not UTF-8: {exc}") from None
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass  # may still be YAML flow style; let YAML report the real problem
    import yaml  # imported by the first YAML file read, not by the intake's start

    try:
        # libyaml's safe loader when present: ten times faster on big schema repositories.
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise SchemaParseError(location, str(problem).strip(), line) from None


def title_and_version(uri: str) -> tuple[str | None, str | None]:
    """Split `/analytics/x/1.2.0` into (`analytics/x`, `1.2.0`); `latest` is a version too."""
    path = uri.split("#", 1)[0]
    if has_protocol(path):
        path = "/" + path.split("://", 1)[1].split("/", 1)[-1]
    path = path.strip("/")
    for ext in EXTENSIONS:
        if path.endswith(ext):
            path = path[: -len(ext)]
    if "/" not in path:
        return (path or None), None
    title, last = path.rsplit("/", 1)
    if _VERSION_RE.match(last) or last == "latest":
        return title, last
    return path, None


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


class DirectorySource:
    """A local checkout of a schema repository (or any directory of schema files).

    The root may be the repository itself or its `jsonschema/` folder; both are tried.
    Nothing outside the root is ever read, even through symlinks or `..`.
    """

    kind = "directory"

    def __init__(self, root: str | Path, name: str | None = None, *, base_slash: bool = False):
        self.root = Path(root).expanduser().resolve()
        #: Stands for an EventGate base URI with a trailing slash (see eventgate_path).
        self.base_slash = base_slash
        self.name = name or str(self.root)
        #: The last parsed content of each file read, for when an edit breaks it.
        self._last_good: dict[Path, Any] = {}
        self._bases = [self.root]
        if (self.root / "jsonschema").is_dir():
            self._bases.append(self.root / "jsonschema")

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "root": str(self.root)}

    def lookup(self, uri: str, attempts: list[Attempt]) -> Found | None:
        if has_protocol(uri):
            return None
        try:
            candidates = lookup_candidates(uri, base_slash=self.base_slash)
        except UnloadableURI as exc:
            attempts.append(Attempt(self.name, uri, str(exc)))
            return None
        for base in self._bases:
            for cand in candidates:
                found = self._try(base, cand, attempts)
                if found is not None:
                    return found
        return None

    def _try(self, base: Path, rel: str, attempts: list[Attempt]) -> Found | None:
        joined = base / rel.lstrip("/")
        location = str(joined)
        if ".." not in rel and not os.path.isfile(joined):
            # One stat settles the common miss; resolving costs an lstat per path part,
            # and a flood of made-up URIs must stay cheap.
            attempts.append(Attempt(self.name, location, "not found"))
            return None
        try:
            return self._read(joined, location, attempts)
        except (OSError, ValueError, RuntimeError) as exc:
            # A name no file system takes (a NUL byte, a 300-byte segment, a lone
            # surrogate): EventGate's read fails too, so it is a miss like any other.
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            attempts.append(Attempt(self.name, location, f"unreadable: {why}"))
            return None

    def _read(self, joined: Path, location: str, attempts: list[Attempt]) -> Found | None:
        real = joined.resolve()
        if real != self.root and self.root not in real.parents:
            attempts.append(Attempt(self.name, location, "outside the schema directory; refused"))
            return None
        if not real.is_file():
            attempts.append(Attempt(self.name, location, "not found"))
            return None
        real = self._follow_pseudo_links(real)
        if real is None:
            attempts.append(Attempt(self.name, location, "link points outside; refused"))
            return None
        try:
            data = real.read_bytes()
        except OSError as exc:
            attempts.append(Attempt(self.name, location, f"unreadable: {exc.strerror}"))
            return None
        try:
            schema = parse_schema_text(data, str(real))
        except SchemaParseError as exc:
            # A save half-way through an edit must not turn every event of the schema into
            # an error: the last version that parsed stays in force, and the error is shown.
            good = self._last_good.get(real)
            if good is None:
                raise
            return Found(schema=good, location=str(real), source=self.name, stale=str(exc))
        self._last_good[real] = schema
        return Found(schema=schema, location=str(real), source=self.name)

    def _follow_pseudo_links(self, path: Path) -> Path | None:
        for _ in range(8):
            try:
                if path.stat().st_size > _PSEUDO_LINK_MAX_BYTES:
                    return path
                text = path.read_text("utf-8").strip()
            except (OSError, UnicodeDecodeError):
                return path
            if not _LINK_TARGET_RE.match(text) or text == path.name:
                return path
            target = (path.parent / text).resolve()
            if not target.is_file():
                return path
            if self.root not in target.parents:
                return None
            path = target
        return path

    def versions(self, title: str) -> list[str]:
        """Every materialized version of `title` present here, oldest first."""
        found: set[str] = set()
        for base in self._bases:
            folder = base / title.strip("/")
            if not folder.is_dir():
                continue
            folder = folder.resolve()
            if self.root not in folder.parents or not folder.is_dir():
                continue
            for child in folder.iterdir():
                stem = child.name
                for ext in EXTENSIONS:
                    if stem.endswith(ext):
                        stem = stem[: -len(ext)]
                if _VERSION_RE.match(stem):
                    found.add(stem)
        return sorted(found, key=_version_key)

    def watch_paths(self) -> list[Path]:
        return [self.root]


def builtin_schema_dir() -> Path:
    """The project's own schema library (`schemas/` at the repository root).

    In a checkout that is the `schemas/` directory itself. An installed package has no
    checkout around it, so `mpsandbox/builtin_schemas` (a symlink to `../../schemas` in the
    source tree) is shipped as package data (`pyproject.toml`), its files copied in.
    """
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "schemas"
        if (candidate / "jsonschema").is_dir():
            return candidate
    return here.parent.parent / "builtin_schemas"
