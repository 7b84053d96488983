"""Stream configs: load them, look a stream up, and answer as EventStreamConfig's API does.

Three things live here, all free of aiohttp and Textual:

- :class:`StreamConfigs`, an immutable snapshot: ``get(stream)`` finds a stream's settings the
  way MediaWiki's EventStreamConfig and eventgate-wikimedia do (an exact key first, then the
  first ``/regex/`` key, in order, that matches), and ``as_api`` answers
  ``action=streamconfigs`` with ``streams=`` and ``constraints=`` like the real extension.
- :func:`parse_stream_configs` / :func:`load_location`: YAML or JSON, either a
  ``$wgEventStreams``-style map (``{name or "/regex/": {...}}``, or a list of dicts with a
  ``stream`` key) or the API's ``{"streams": {...}}``. Trailing commas (which one real snapshot
  has) are repaired and reported in ``problems``.
- :class:`StreamConfigSource`, the loader the sandbox owns: it reads a file or fetches a URL
  (urllib, always in a worker thread), refreshes periodically, and keeps the last good copy
  when a refresh fails, recording the failure for display.

References: mediawiki-extensions-EventStreamConfig ``includes/StreamConfigs.php``,
``includes/StreamConfig.php`` and ``includes/ApiStreamConfigs.php``; eventgate-wikimedia
``stream-configs.js``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mpsandbox.errors import MpsandboxError, describe_network_failure

__all__ = [
    "DEFAULT_REFRESH_S",
    "StreamConfigError",
    "StreamConfigSource",
    "StreamConfigs",
    "is_url",
    "load_location",
    "matches_settings",
    "parse_constraints",
    "parse_stream_configs",
    "php_string",
    "strip_trailing_commas",
]

DEFAULT_REFRESH_S = 60.0
FETCH_TIMEOUT_S = 10.0
#: Keys MediaWiki's API puts beside "streams" in an answer (never stream names).
_API_ENVELOPE_KEYS = {
    "streams",
    "warnings",
    "batchcomplete",
    "servedby",
    "requestid",
    "curtimestamp",
}


class StreamConfigError(MpsandboxError):
    """Stream configs that cannot be used: unreadable, not JSON/YAML, or the wrong shape."""


def is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


# --------------------------------------------------------------------------------------
# parsing


def strip_trailing_commas(text: str) -> tuple[str, int]:
    """Remove commas that directly precede ``}`` or ``]`` (ignoring whitespace and strings).

    Returns the repaired text and how many commas were removed. Strings (with escapes) are
    copied untouched, so a ``",]"`` inside a value survives.
    """
    out: list[str] = []
    removed = 0
    i, n = 0, len(text)
    pending_comma: int | None = None  # index in `out` of a comma not yet known to be trailing
    while i < n:
        ch = text[i]
        if ch == '"':
            pending_comma = None
            j = i + 1
            while j < n:
                if text[j] == "\\":
                    j += 2
                    continue
                if text[j] == '"':
                    break
                j += 1
            out.append(text[i : j + 1])
            i = j + 1
            continue
        if ch == ",":
            pending_comma = len(out)
        elif ch in "}]":
            if pending_comma is not None:
                out[pending_comma] = ""
                removed += 1
            pending_comma = None
        elif not ch.isspace():
            pending_comma = None
        out.append(ch)
        i += 1
    return "".join(out), removed


def _parse_text(text: str, name: str) -> tuple[Any, list[str]]:
    """JSON (leniently: trailing commas repaired) or YAML; the data and what was repaired."""
    problems: list[str] = []
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            return json.loads(text), problems
        except json.JSONDecodeError as first:
            repaired, removed = strip_trailing_commas(text)
            if removed:
                try:
                    data = json.loads(repaired)
                except json.JSONDecodeError:
                    pass
                else:
                    problems.append(
                        f"{name}: not strict JSON: {removed} trailing comma"
                        f"{'s' if removed != 1 else ''} removed to read it "
                        f"(first at line {first.lineno}, column {first.colno})"
                    )
                    return data, problems
            json_error = first
    else:
        json_error = None
    import yaml  # PyYAML: schema repositories already need it

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader), problems
    except yaml.YAMLError as exc:
        if json_error is not None:
            raise StreamConfigError(
                f"{name}: not valid JSON: {json_error.msg} at line {json_error.lineno}, "
                f"column {json_error.colno}"
            ) from None
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise StreamConfigError(f"{name}: not valid YAML or JSON: {what}{where}") from None


def _entries_from(data: Any, name: str) -> tuple[dict[str, dict], list[str]]:
    """Stream key -> settings, in order, from any of the accepted shapes."""
    problems: list[str] = []
    if isinstance(data, dict) and "error" in data and "streams" not in data:
        err = data["error"]
        info = err.get("info") or err.get("code") if isinstance(err, dict) else err
        raise StreamConfigError(f"{name}: the API answered an error: {info}")
    if (
        isinstance(data, dict)
        and isinstance(data.get("streams"), dict | list)
        and set(data) <= _API_ENVELOPE_KEYS
    ):
        data = data["streams"]
    if data is None:
        raise StreamConfigError(f"{name}: empty; expected a map of stream names to settings")
    entries: dict[str, dict] = {}
    if isinstance(data, list):
        # $wgEventStreams used to be a list of entries, each naming its `stream`.
        for i, item in enumerate(data):
            if not isinstance(item, dict) or not isinstance(item.get("stream"), str):
                raise StreamConfigError(
                    f"{name}: entry {i} of the list has no 'stream' name "
                    "(a list of stream configs must give each one a 'stream')"
                )
            entries[item["stream"]] = item
    elif isinstance(data, dict):
        for key, settings in data.items():
            if settings is None:
                settings = {}
            if not isinstance(settings, dict):
                raise StreamConfigError(
                    f"{name}: the settings of stream {key!r} are a "
                    f"{type(settings).__name__}, not a map"
                )
            entries[str(key)] = settings
    else:
        raise StreamConfigError(
            f"{name}: expected a map of stream names to settings (or the API's "
            f'{{"streams": {{...}}}}), found a {type(data).__name__}'
        )
    return entries, problems


def parse_stream_configs(text: str | bytes, *, source: str = "<text>") -> StreamConfigs:
    """Parse stream configs from YAML or JSON text; raises StreamConfigError."""
    if isinstance(text, bytes):
        text = text.decode("utf-8-sig", "replace")
    data, problems = _parse_text(text, source)
    entries, more = _entries_from(data, source)
    return StreamConfigs(entries, source=source, problems=problems + more)


def _read(location: str, timeout: float) -> bytes:
    if is_url(location):
        req = urllib.request.Request(
            location, headers={"User-Agent": "mpsandbox (stream configs)", "Accept": "*/*"}
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.read()
        except urllib.error.HTTPError as exc:
            raise StreamConfigError(f"{location}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise StreamConfigError(
                f"{location}: could not fetch: {describe_network_failure(exc, timeout)}"
            ) from None
    path = Path(location).expanduser()
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise StreamConfigError(f"{location}: no such file") from None
    except IsADirectoryError:
        raise StreamConfigError(f"{location}: is a directory, not a file") from None
    except OSError as exc:
        raise StreamConfigError(f"{location}: {exc.strerror or exc}") from None


def load_location(location: str, *, timeout: float = FETCH_TIMEOUT_S) -> StreamConfigs:
    """Read and parse a file or URL (blocking: call it in a thread from async code)."""
    return parse_stream_configs(_read(location, timeout), source=location)


# --------------------------------------------------------------------------------------
# constraints (ApiStreamConfigs::multiParamToAssocArray, StreamConfig::isPartialMatch)


def _set_cgi(target: dict, key: str, value: str) -> None:
    """Set ``a[b][c]=v`` into target as PHP's wfCgiToArray does (``a[]=v`` appends)."""
    m = re.match(r"^([^\[]*)((?:\[[^\]]*\])*)$", key)
    if not m or not m.group(2):
        _merge(target, key, value)
        return
    parts = [m.group(1), *re.findall(r"\[([^\]]*)\]", m.group(2))]
    node = target
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "" and i > 0:
            part = str(sum(1 for k in node if k.isdigit()))
        if last:
            _merge(node, part, value)
        else:
            nxt = node.get(part)
            if not isinstance(nxt, dict):
                nxt = node[part] = {}
            node = nxt


def _merge(node: dict, key: str, value: Any) -> None:
    """array_merge_recursive: a key given twice becomes a list of both values."""
    if key in node:
        old = node[key]
        node[key] = [*old, value] if isinstance(old, list) else [old, value]
    else:
        node[key] = value


def _lists(node: Any) -> Any:
    """Turn dicts whose keys are 0..n-1 (from ``a[]=``) into lists, as PHP arrays are."""
    if isinstance(node, dict):
        node = {k: _lists(v) for k, v in node.items()}
        if node and list(node) == [str(i) for i in range(len(node))]:
            return list(node.values())
    return node


def parse_constraints(values: Iterable[str] | str | None) -> dict[str, Any]:
    """``["destination_event_service=eventgate-analytics-external", "a[b]=1"]`` (or one
    string joined with ``|``) -> ``{"destination_event_service": "...", "a": {"b": "1"}}``."""
    if values is None:
        return {}
    if isinstance(values, str):
        values = split_multi(values)
    out: dict[str, Any] = {}
    for element in values:
        if not element:
            continue
        if "=" in element:
            key, value = element.split("=", 1)
        else:
            key, value = element, ""
        _set_cgi(out, urllib.parse.unquote_plus(key), urllib.parse.unquote_plus(value))
    return _lists(out)


def split_multi(value: str) -> list[str]:
    """A MediaWiki multi-value parameter: ``a|b``, or ``\\x1fa\\x1fb`` when values hold ``|``."""
    if value.startswith("\x1f"):
        return value[1:].split("\x1f")
    return value.split("|")


def php_string(value: Any) -> str:
    """``(string)$value`` as PHP casts a scalar: true -> "1", false -> "", 1.0 -> "1"."""
    if value is True:
        return "1"
    if value is False or value is None:
        return ""
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        text = repr(value)
        if "e" in text:
            mantissa, exp = text.split("e")
            if "." not in mantissa:
                mantissa += ".0"
            text = f"{mantissa}E{'+' if not exp.startswith('-') else ''}{exp.lstrip('+')}"
        return text
    return str(value)


def _is_list(value: Any) -> bool:
    return isinstance(value, list)


def _partial_match(lhs: Any, rhs: Mapping[str, Any], depth: int = 10) -> bool:
    if depth == 0:
        return True
    for key, expected in rhs.items():
        if not isinstance(lhs, dict) or lhs.get(key) is None:  # PHP isset()
            return False
        actual = lhs[key]
        e_arr = isinstance(expected, dict | list)
        a_arr = isinstance(actual, dict | list)
        if e_arr and a_arr:
            if _is_list(expected) and _is_list(actual):
                # array_intersect($expected, $actual) === $expected, compared as strings;
                # like the PHP original, a list decides the whole match.
                have = {php_string(a) for a in actual if not isinstance(a, dict | list)}
                return all(php_string(e) in have for e in expected)
            if not _partial_match(
                actual if isinstance(actual, dict) else dict(enumerate(actual)),
                expected
                if isinstance(expected, dict)
                else {str(i): v for i, v in enumerate(expected)},
                depth - 1,
            ):
                return False
        elif e_arr or a_arr or php_string(expected) != php_string(actual):
            return False
    return True


def matches_settings(key: str, settings: Mapping[str, Any], constraints: Mapping) -> bool:
    """StreamConfig::matchesSettings: every constraint present (a ``stream`` constraint is
    matched against the stream name or regex); values compared as PHP strings."""
    constraints = dict(constraints)
    if "stream" in constraints:
        wanted = constraints.pop("stream")
        if not isinstance(wanted, str) or not _key_matches(key, _compile_key(key), wanted):
            return False
    full = {**settings, "stream": key}
    return _partial_match(full, constraints)


# --------------------------------------------------------------------------------------
# the snapshot


def _compile_key(key: str) -> re.Pattern[str] | None:
    """A ``/regex/`` key as a pattern (None for a plain name or a regex that does not compile).

    PHP and JavaScript regexes are close enough to Python's for the simple patterns stream
    configs use (``/^mediawiki\\.job\\..+/``); flags after the last ``/`` are honoured for
    ``i``, ``m``, ``s`` and ``x``."""
    if len(key) < 2 or not key.startswith("/"):
        return None
    end = key.rfind("/")
    if end <= 0:
        return None
    body, flags_text = key[1:end], key[end + 1 :]
    flags = 0
    for f in flags_text:
        flag = {"i": re.I, "m": re.M, "s": re.S, "x": re.X, "u": 0}.get(f)
        if flag is None:
            return None
        flags |= flag
    try:
        return re.compile(body, flags)
    except re.error:
        return None


def _key_matches(key: str, pattern: re.Pattern[str] | None, stream: str) -> bool:
    return pattern.search(stream) is not None if pattern is not None else key == stream


@dataclass(frozen=True, slots=True)
class Match:
    """The config that applies to a stream: the key that matched and its settings."""

    stream: str
    key: str
    settings: dict[str, Any]

    @property
    def by_regex(self) -> bool:
        return self.key != self.stream


class StreamConfigs:
    """One loaded set of stream configs. Treat it as immutable; a refresh makes a new one."""

    def __init__(
        self,
        entries: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        source: str = "",
        problems: Iterable[str] = (),
        loaded_at: float | None = None,
    ):
        self._entries: dict[str, dict[str, Any]] = {
            str(k): dict(v) for k, v in (entries or {}).items()
        }
        self.source = source
        self.problems: list[str] = list(problems)
        self.loaded_at = time.time() if loaded_at is None else loaded_at
        self._patterns: list[tuple[str, re.Pattern[str]]] = []
        for key in self._entries:
            if key.startswith("/"):
                pattern = _compile_key(key)
                if pattern is None:
                    self.problems.append(
                        f"{source or 'stream configs'}: {key!r} looks like a regex but does "
                        "not compile; it only matches a stream of exactly that name"
                    )
                else:
                    self._patterns.append((key, pattern))
        self._cache: dict[str, Match | None] = {}

    # lookup ----------------------------------------------------------------------------
    def match(self, stream: str) -> Match | None:
        """Exact name first, then the first ``/regex/`` key (in order) that matches."""
        hit = self._cache.get(stream, False)
        if hit is not False:
            return hit  # type: ignore[return-value]
        found: Match | None = None
        if stream in self._entries:
            found = Match(stream, stream, self._entries[stream])
        else:
            for key, pattern in self._patterns:
                if pattern.search(stream):
                    found = Match(stream, key, self._entries[key])
                    break
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[stream] = found
        return found

    def get(self, stream: str) -> dict[str, Any] | None:
        """The settings that apply to ``stream`` (do not modify them), or None."""
        m = self.match(stream)
        return m.settings if m is not None else None

    def names(self) -> list[str]:
        """Every key as configured (names and ``/regex/`` patterns), in order."""
        return list(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, stream: object) -> bool:
        return isinstance(stream, str) and self.match(stream) is not None

    def entries(self) -> dict[str, dict[str, Any]]:
        return copy.deepcopy(self._entries)

    # the API ---------------------------------------------------------------------------
    def served(
        self, key: str, settings: Mapping[str, Any], stream: str, rate: float | None
    ) -> dict[str, Any]:
        """One stream's settings as ``StreamConfig::toArray`` exports them: every setting,
        ``stream`` (the configured name or pattern) and ``topics``; with a rate override."""
        out = copy.deepcopy(dict(settings))
        out["stream"] = key
        out["topics"] = _topics(out, key, stream)
        if rate is not None:
            sample = out.get("sample")
            sample = dict(sample) if isinstance(sample, dict) else {}
            sample["rate"] = rate
            out["sample"] = sample
        return out

    def select(
        self,
        streams: Iterable[str] | None = None,
        constraints: Mapping[str, Any] | None = None,
        rate_overrides: Mapping[str, float] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """StreamConfigs::get: requested name -> exported settings. Unknown streams are left
        out; without ``streams`` every configured key (patterns too) is listed."""
        overrides = rate_overrides or {}
        if streams is None:
            chosen = [(key, key, settings) for key, settings in self._entries.items()]
        else:
            chosen = []
            for stream in streams:
                m = self.match(stream)
                if m is not None:
                    chosen.append((stream, m.key, m.settings))
        result: dict[str, dict[str, Any]] = {}
        for name, key, settings in chosen:
            if constraints and not matches_settings(key, settings, constraints):
                continue
            rate = overrides.get(name, overrides.get(key))
            result[name] = self.served(key, settings, name, rate)
        return result

    def as_api(
        self,
        streams: Iterable[str] | None = None,
        constraints: Mapping[str, Any] | Iterable[str] | str | None = None,
        rate_overrides: Mapping[str, float] | None = None,
    ) -> dict[str, Any]:
        """The answer of ``api.php?action=streamconfigs``: ``{"streams": {...}}``.

        ``constraints`` is a parsed mapping, or the raw ``k=v`` elements (a list, or one
        string joined with ``|``) as the API receives them."""
        if constraints is not None and not isinstance(constraints, Mapping):
            constraints = parse_constraints(constraints)
        return {"streams": self.select(streams, constraints or None, rate_overrides)}

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "streams": len(self._entries),
            "patterns": [k for k, _ in self._patterns],
            "loaded_at": self.loaded_at,
            "problems": list(self.problems),
        }


def _topics(settings: Mapping[str, Any], key: str, stream: str) -> list[Any]:
    """StreamConfig::topics: explicit topics, else the stream itself, else each prefix + it."""
    topics = settings.get("topics")
    if isinstance(topics, list):
        return topics
    prefixes = settings.get("topic_prefixes")
    target = stream or key
    if not isinstance(prefixes, list):
        return [target]
    if target.startswith("/") and _compile_key(target) is not None:
        body = target.strip("/")
        anchor = ""
        if body.startswith("^"):
            anchor, body = "^", body[1:]
        alternatives = "|".join(re.escape(str(p)) for p in prefixes)
        return [f"/{anchor}({alternatives}){body}/"]
    return [f"{p}{target}" for p in prefixes]


# --------------------------------------------------------------------------------------
# the loader the sandbox owns


@dataclass
class StreamConfigSource:
    """A file or URL of stream configs, its current good copy, and how refreshing went.

    ``load()`` (blocking) is for start-up and raises StreamConfigError. ``refresh()`` runs the
    blocking read in a thread and never loses the last good copy. ``run(stop)`` refreshes
    every ``refresh_s`` seconds (files only when their modification time changed).
    """

    location: str
    refresh_s: float = DEFAULT_REFRESH_S
    timeout: float = FETCH_TIMEOUT_S
    #: Called on the event loop with each new good copy (after a successful refresh).
    on_change: Callable[[StreamConfigs], None] | None = None
    current: StreamConfigs | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    last_attempt_at: float | None = None
    last_success_at: float | None = None
    refreshes: int = 0
    failures: int = 0
    _mtime: float | None = field(default=None, repr=False)

    @property
    def is_url(self) -> bool:
        return is_url(self.location)

    def _file_mtime(self) -> float | None:
        if self.is_url:
            return None
        with contextlib.suppress(OSError):
            return os.stat(Path(self.location).expanduser()).st_mtime
        return None

    def load(self) -> StreamConfigs:
        """Blocking first load; raises StreamConfigError with a one-line message."""
        self.last_attempt_at = time.time()
        mtime = self._file_mtime()
        configs = load_location(self.location, timeout=self.timeout)
        self._mtime = mtime
        self.current = configs
        self.last_success_at = configs.loaded_at
        self.last_error = None
        return configs

    async def refresh(self, *, force: bool = False) -> bool:
        """Fetch again in a worker thread. True when a new copy was taken; on failure the
        last good copy stays and the failure is recorded in ``last_error``."""
        unchanged = not self.is_url and self._file_mtime() == self._mtime
        if not force and self.current is not None and unchanged:
            return False
        loop = asyncio.get_running_loop()
        self.last_attempt_at = time.time()
        mtime = self._file_mtime()
        try:
            configs = await loop.run_in_executor(
                None, lambda: load_location(self.location, timeout=self.timeout)
            )
        except StreamConfigError as exc:
            self.failures += 1
            self.last_error, self.last_error_at = str(exc), time.time()
            return False
        except Exception as exc:  # never let a refresh take the intake down
            self.failures += 1
            self.last_error = f"{self.location}: {type(exc).__name__}: {exc}"
            self.last_error_at = time.time()
            return False
        self._mtime = mtime
        self.current = configs
        self.refreshes += 1
        self.last_success_at = configs.loaded_at
        self.last_error = None
        if self.on_change is not None:
            self.on_change(configs)
        return True

    async def run(self, stop: asyncio.Event) -> None:
        """Refresh every ``refresh_s`` seconds until ``stop`` is set."""
        if self.refresh_s <= 0:
            return
        while not stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), self.refresh_s)
            if stop.is_set():
                return
            await self.refresh()

    def status(self) -> dict[str, Any]:
        """For display: where from, what is loaded, and the last failure (if the last
        attempt failed, the configs in use are the last good copy)."""
        out: dict[str, Any] = {
            "location": self.location,
            "kind": "url" if self.is_url else "file",
            "refresh_s": self.refresh_s,
            "last_attempt_at": self.last_attempt_at,
            "last_success_at": self.last_success_at,
            "refreshes": self.refreshes,
            "failures": self.failures,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "stale": self.last_error is not None,
        }
        if self.current is not None:
            out.update(self.current.describe())
            out["source"] = self.location
        return out
