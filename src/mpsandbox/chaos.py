"""Chaos: the intake answers a share of requests badly, so an author can see how a client
retries.

The setting lives in the sandbox's database (table ``chaos``, one row, migration
``0007_chaos``), so the CLI and the API (the TUI through the intake) change it and a running
intake picks the change up within a second (it polls with the overrides). It is off by
default and on a fresh database. Textual-free.

The spec (the CLI's and the TUI's form; the API also takes it as JSON)
--------------------------------------------------------------------

Terms ``KEY:VALUE`` separated by commas (or spaces); ``off`` turns chaos off::

    503:0.2,latency:200ms,drop:0.05
    207:0.5,failed:0.25,latency:50-400ms,seed:7
    500:10%

=================  ==========================================================================
``500:SHARE``      answer this share of intake requests 500, every event failed with an
                   injected error (EventGate's shape when every event errored)
``503:SHARE``      answer 503 Service Unavailable with ``Retry-After`` (a problem document)
``207:SHARE``      fail some of the request's events with an injected error; the rest are
                   stored and acknowledged (207, or 500 when a request has one event)
``drop:SHARE``     close the connection without an answer
``latency:DUR``    delay every answer by DUR, or by a uniform draw in ``MIN-MAX``
``failed:SHARE``   with 207: the share of a request's events that fail (default 0.5)
``retry-after:N``  with 503: the ``Retry-After`` seconds (default 1)
``seed:N``         seed the random choices: the same requests, sent one after another after
                   the setting was made, get the same chaos
=================  ==========================================================================

SHARE is a fraction (``0.2``) or a percentage (``20%``). 500, 503, 207 and drop exclude one
another (a request gets at most one), so their shares add up to 1 or less. DUR is ``200ms``,
``1.5s`` or a bare number of milliseconds (at most 300 s); a range ``50-400ms`` takes its unit
from the end unless each end has its own.

What each does to the store
---------------------------

Every request is recorded as always (raw body and headers, the status sent) with the chaos
applied to it in ``requests.chaos`` (JSON; NULL when none was). Injected 500, 503 and drops
store **no events**: the client was not acknowledged, so its retry must not become a
duplicate. A 207 stores the events it acknowledges; the failed ones are absent (never
judged, so a retry of them is not flagged as a duplicate either). Latency delays the answer
after the events are stored, as a slow network does: a client that times out and retries
does produce duplicates, and the sandbox flags them.

``hasty`` requests (answered 202 before processing): 500, 503 and drop replace the 202 (they
stand for the service failing before it could answer); latency delays the 202; a 207 cannot
be sent once 202 is, so the chosen events are silently not stored, which is what production
does with events that fail after a hasty answer.

Chaos applies only to POSTs on intake paths, never to the inspection API, stream configs,
``OPTIONS`` preflights or ``GET /v1/_test/events``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import random
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mpsandbox.errors import MpsandboxError

#: The injections that exclude one another, in the order the decision tries them.
STATUSES = (500, 503, 207)
DROP = "drop"
SET_BY = ("cli", "api", "tui")
MAX_LATENCY_MS = 300_000.0
MAX_RETRY_AFTER = 3600
DEFAULT_FAILED = 0.5
DEFAULT_RETRY_AFTER = 1
#: Message of an event failed by chaos (207 and 500), in the answer's ``context.message``.
INJECTED_MESSAGE = "mpsandbox chaos: injected failure ({spec}); this event was not stored"

GRAMMAR = (
    "KEY:VALUE terms, comma separated: 500:SHARE 503:SHARE 207:SHARE drop:SHARE "
    "latency:DUR|MIN-MAX failed:SHARE (with 207) retry-after:SECONDS (with 503) seed:N; "
    "SHARE 0.2 or 20%; DUR 200ms, 1.5s; 'off' turns chaos off"
)
#: The grammar as (term, meaning) rows, for help screens and dialogs.
SPEC_HELP = (
    ("500:SHARE", "answer 500, every event failed (none stored)"),
    ("503:SHARE", "answer 503 with Retry-After (none stored)"),
    ("207:SHARE", "fail some events (failed:SHARE of them, default 0.5); store the rest"),
    ("drop:SHARE", "close the connection without an answer (none stored)"),
    ("latency:200ms  50-400ms", "delay every answer (after storing)"),
    ("retry-after:N  seed:N", "503's Retry-After seconds; repeatable random choices"),
    ("SHARE", "0.2 or 20%; 500, 503, 207 and drop add up to 1 or less"),
)
EXAMPLES = (
    ("503:0.2,latency:200ms,drop:0.05", "a fifth answered 503, 5% dropped, all 200 ms late"),
    ("207:0.5,failed:0.25,seed:7", "half partly failed (a quarter of their events), repeatable"),
    ("500:10%,latency:50-400ms", "10% answered 500, every answer 50 to 400 ms late"),
    ("off", "answer normally"),
)

_KEYS = ("500", "503", "207", "drop", "latency", "failed", "retry-after", "seed")
_ALIASES = {"retry_after": "retry-after", "retryafter": "retry-after", "delay": "latency"}


class ChaosError(MpsandboxError, ValueError):
    """A chaos spec or setting that cannot be used; the message says what and why."""


# --- the setting ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChaosSettings:
    """What chaos does: shares of requests per injection, latency, and the knobs."""

    status_500: float = 0.0
    status_503: float = 0.0
    status_207: float = 0.0
    drop: float = 0.0
    #: (min, max) milliseconds, or None for no added latency.
    latency_ms: tuple[float, float] | None = None
    failed: float = DEFAULT_FAILED
    retry_after: int = DEFAULT_RETRY_AFTER
    seed: int | None = None

    def __post_init__(self) -> None:
        _check(self)

    # forms ---------------------------------------------------------------------------------
    @classmethod
    def parse(cls, spec: str) -> ChaosSettings:
        """The setting a spec describes; ChaosError for ``off`` or a bad spec (use
        :func:`parse_spec` to accept ``off``)."""
        settings = parse_spec(spec)
        if settings is None:
            raise ChaosError("'off' describes no chaos")
        return settings

    def to_json(self) -> dict[str, Any]:
        return {
            "500": self.status_500,
            "503": self.status_503,
            "207": self.status_207,
            "drop": self.drop,
            "latency_ms": None if self.latency_ms is None else list(self.latency_ms),
            "failed": self.failed,
            "retry_after": self.retry_after,
            "seed": self.seed,
        }

    @classmethod
    def from_json(cls, data: Any) -> ChaosSettings:
        """From the API's JSON (:meth:`to_json`'s keys, any subset; ``latency`` may be a
        spec duration such as ``"50-400ms"``)."""
        if not isinstance(data, dict):
            raise ChaosError("chaos settings must be a JSON object, e.g. " + _JSON_EXAMPLE)
        known = {"500", "503", "207", "drop", "latency_ms", "latency", "failed"}
        known |= {"retry_after", "seed"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ChaosError(
                f"unknown chaos setting {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(sorted(known))}"
            )
        if "latency" in data and "latency_ms" in data:
            raise ChaosError("give latency or latency_ms, not both")
        values: dict[str, Any] = {}
        for key, attr in (("500", "status_500"), ("503", "status_503"), ("207", "status_207")):
            if key in data:
                values[attr] = _json_share(key, data[key])
        if "drop" in data:
            values["drop"] = _json_share("drop", data["drop"])
        if data.get("failed") is not None:
            values["failed"] = _json_share("failed", data["failed"])
        latency = data.get("latency_ms")
        if "latency" in data and data["latency"] is not None:
            if not isinstance(data["latency"], str):
                raise ChaosError('latency must be a duration such as "200ms" or "50-400ms"')
            values["latency_ms"] = _parse_latency(data["latency"])
        elif latency is not None:
            values["latency_ms"] = _json_latency(latency)
        if data.get("retry_after") is not None:
            values["retry_after"] = _json_int("retry_after", data["retry_after"])
        if data.get("seed") is not None:
            values["seed"] = _json_int("seed", data["seed"])
        return cls(**values)

    def spec(self) -> str:
        """The canonical spec: parse(s.spec()) == s."""
        terms = []
        for status, share in zip(STATUSES, self.shares()[:3], strict=True):
            if share:
                terms.append(f"{status}:{_num(share)}")
        if self.status_207 and self.failed != DEFAULT_FAILED:
            terms.append(f"failed:{_num(self.failed)}")
        if self.status_503 and self.retry_after != DEFAULT_RETRY_AFTER:
            terms.append(f"retry-after:{self.retry_after}")
        if self.drop:
            terms.append(f"drop:{_num(self.drop)}")
        if self.latency_ms is not None:
            lo, hi = self.latency_ms
            span = _num(lo) if lo == hi else f"{_num(lo)}-{_num(hi)}"
            terms.append(f"latency:{span}ms")
        if self.seed is not None:
            terms.append(f"seed:{self.seed}")
        return ",".join(terms)

    def shares(self) -> tuple[float, float, float, float]:
        """Shares of 500, 503, 207 and drop, in the order the decision tries them."""
        return (self.status_500, self.status_503, self.status_207, self.drop)

    def describe(self) -> str:
        """One line for people: what happens to the intake's requests."""
        parts = []
        for label, share in (
            ("answered 500", self.status_500),
            (f"answered 503 (Retry-After {self.retry_after} s)", self.status_503),
            (f"207 with {_pct(self.failed)} of their events failed", self.status_207),
            ("dropped without an answer", self.drop),
        ):
            if share:
                parts.append(f"{_pct(share)} {label}")
        if self.latency_ms is not None:
            lo, hi = self.latency_ms
            late = f"{_num(lo)} ms" if lo == hi else f"{_num(lo)}-{_num(hi)} ms"
            parts.append(f"every answer {late} late")
        return "; ".join(parts)


_JSON_EXAMPLE = '{"503": 0.2, "latency_ms": [50, 400], "seed": 7} or {"spec": "503:0.2"}'


def _check(s: ChaosSettings) -> None:
    for name, share in (
        ("500", s.status_500),
        ("503", s.status_503),
        ("207", s.status_207),
        ("drop", s.drop),
        ("failed", s.failed),
    ):
        if not _is_number(share) or not 0 <= share <= 1:
            raise ChaosError(f"{name}: a share must be between 0 and 1 (or 0% and 100%)")
    if s.failed <= 0:
        raise ChaosError("failed: the share of a 207's events that fail must be more than 0")
    total = sum(s.shares())
    if total > 1 + 1e-9:
        raise ChaosError(
            f"the shares of 500, 503, 207 and drop add up to {_num(total)}; a request gets at "
            "most one of them, so they must add up to 1 (100%) or less"
        )
    if s.latency_ms is not None:
        lo, hi = s.latency_ms
        if not (_is_number(lo) and _is_number(hi)) or lo < 0 or hi < lo:
            raise ChaosError("latency: give 0 or more milliseconds, a range low to high")
        if hi > MAX_LATENCY_MS:
            raise ChaosError(f"latency: at most {MAX_LATENCY_MS / 1000:g} s")
    if isinstance(s.retry_after, bool) or not isinstance(s.retry_after, int):
        raise ChaosError("retry-after: a whole number of seconds")
    if not 0 <= s.retry_after <= MAX_RETRY_AFTER:
        raise ChaosError(f"retry-after: between 0 and {MAX_RETRY_AFTER} seconds")
    if s.seed is not None and (
        isinstance(s.seed, bool) or not isinstance(s.seed, int) or not 0 <= s.seed < 2**63
    ):
        raise ChaosError("seed: a whole number from 0")
    if total == 0 and s.latency_ms is None:
        raise ChaosError(
            "nothing to do: give at least one of 500, 503, 207, drop or latency "
            "(e.g. 503:0.2), or 'off'"
        )
    if s.failed != DEFAULT_FAILED and not s.status_207:
        raise ChaosError("failed: only means something with 207:SHARE")
    if s.retry_after != DEFAULT_RETRY_AFTER and not s.status_503:
        raise ChaosError("retry-after: only means something with 503:SHARE")


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _num(v: float) -> str:
    return format(v, ".12g")


def _pct(share: float) -> str:
    return f"{share * 100:g}%"


# --- parsing the spec -------------------------------------------------------------------

_SEPARATORS = re.compile(r"[,\s]+")
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_DURATION = re.compile(rf"^({_NUMBER})\s*(ms|s)?$")


def parse_spec(spec: str) -> ChaosSettings | None:
    """Parse a spec; None for ``off``. ChaosError names the term that is wrong."""
    if not isinstance(spec, str):
        raise ChaosError("the chaos spec must be text, e.g. 503:0.2,latency:200ms")
    text = spec.strip()
    if not text:
        raise ChaosError("the chaos spec is empty: give e.g. 503:0.2,latency:200ms, or 'off'")
    if text.lower() in ("off", "none"):
        return None
    values: dict[str, Any] = {}
    seen: set[str] = set()
    for term in _SEPARATORS.split(text):
        if not term:
            continue
        key, sep, value = term.partition(":")
        key = _ALIASES.get(key.strip().lower(), key.strip().lower())
        value = value.strip()
        if not sep or not value:
            raise ChaosError(f"{term!r}: write KEY:VALUE, e.g. 503:0.2 ({GRAMMAR})")
        if key not in _KEYS:
            raise ChaosError(f"{term!r}: unknown key {key!r}; known: {', '.join(_KEYS)}")
        if key in seen:
            raise ChaosError(f"{term!r}: {key} is given twice")
        seen.add(key)
        try:
            if key in ("500", "503", "207"):
                values[f"status_{key}"] = _parse_share(value)
            elif key in ("drop", "failed"):
                values[key] = _parse_share(value)
            elif key == "latency":
                values["latency_ms"] = _parse_latency(value)
            elif key == "retry-after":
                values["retry_after"] = _parse_int(value.removesuffix("s"), MAX_RETRY_AFTER)
            else:
                values["seed"] = _parse_int(value, 2**63 - 1)
        except ChaosError as exc:
            raise ChaosError(f"{term!r}: {exc}") from None
    try:
        return ChaosSettings(**values)
    except ChaosError as exc:
        raise ChaosError(f"{text!r}: {exc}") from None


def _parse_share(text: str) -> float:
    percent = text.endswith("%")
    body = text[:-1].strip() if percent else text
    if not re.fullmatch(_NUMBER, body):
        raise ChaosError("a share is a number from 0 to 1 (0.2) or a percentage (20%)")
    share = float(body) / (100 if percent else 1)
    if not 0 <= share <= 1:
        raise ChaosError("a share must be between 0 and 1 (or 0% and 100%)")
    return share


def _parse_duration(text: str, unit: str | None) -> float:
    m = _DURATION.match(text.strip().lower())
    if not m:
        raise ChaosError("a duration is 200ms, 1.5s or a number of milliseconds")
    value, own = float(m.group(1)), m.group(2) or unit or "ms"
    return value * 1000 if own == "s" else value


def _parse_latency(text: str) -> tuple[float, float]:
    lo_text, dash, hi_text = text.strip().lower().partition("-")
    if not dash:
        ms = _parse_duration(lo_text, None)
        result = (ms, ms)
    else:
        unit_m = _DURATION.match(hi_text.strip())
        unit = unit_m.group(2) if unit_m else None
        result = (_parse_duration(lo_text, unit), _parse_duration(hi_text, None))
        if result[1] < result[0]:
            raise ChaosError("a latency range goes from low to high, e.g. 50-400ms")
    if result[1] > MAX_LATENCY_MS:
        raise ChaosError(f"latency: at most {MAX_LATENCY_MS / 1000:g} s")
    return result


def _parse_int(text: str, limit: int) -> int:
    if not text.isdigit():
        raise ChaosError("give a whole number")
    n = int(text)
    if n > limit:
        raise ChaosError(f"at most {limit}")
    return n


def _json_share(key: str, value: Any) -> float:
    if isinstance(value, str):
        try:
            return _parse_share(value.strip())
        except ChaosError as exc:
            raise ChaosError(f"{key}: {exc}") from None
    if not _is_number(value):
        raise ChaosError(f"{key}: a share must be a number from 0 to 1, got {value!r}")
    return float(value)


def _json_latency(value: Any) -> tuple[float, float]:
    if _is_number(value):
        return (float(value), float(value))
    if isinstance(value, list) and len(value) == 2 and all(_is_number(v) for v in value):
        return (float(value[0]), float(value[1]))
    if isinstance(value, str):
        return _parse_latency(value)
    raise ChaosError(f"latency_ms: a number of milliseconds or [min, max], got {value!r}")


def _json_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ChaosError(f"{key}: a whole number, got {value!r}")
    return value


# --- deciding, per request --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    """What chaos does to one request: an injection (500, 503, 207, "drop" or None) and
    the milliseconds its answer waits."""

    injected: int | str | None
    latency_ms: float
    spec: str
    retry_after: int = DEFAULT_RETRY_AFTER

    def record(self, **extra: Any) -> dict[str, Any]:
        """What ``requests.chaos`` keeps for this request."""
        out: dict[str, Any] = {"spec": self.spec}
        if self.injected is not None:
            out["injected"] = self.injected
        if self.latency_ms:
            out["latency_ms"] = self.latency_ms
        out.update(extra)
        return out


class Chaos:
    """A setting in force, with its random source. Used on the intake's event loop only;
    a new setting gets a new object (and, with a seed, starts its sequence again)."""

    __slots__ = ("_cuts", "_rng", "counts", "settings", "spec")

    def __init__(self, settings: ChaosSettings) -> None:
        self.settings = settings
        self.spec = settings.spec()
        self._rng = random.Random(settings.seed)
        cuts, total = [], 0.0
        for kind, share in zip((*STATUSES, DROP), settings.shares(), strict=True):
            if share:
                total += share
                cuts.append((total, kind))
        self._cuts = tuple(cuts)
        #: Requests this setting touched, by what it did ("latency" counts delayed ones).
        self.counts: dict[str, int] = {}

    def decide(self) -> Decision | None:
        """The chaos for the next request (None: none). Always draws the same number of
        random values for a setting, so a seeded run is repeatable."""
        u = self._rng.random()
        injected: int | str | None = None
        for cut, kind in self._cuts:
            if u < cut:
                injected = kind
                break
        latency = 0.0
        span = self.settings.latency_ms
        if span is not None:
            lo, hi = span
            latency = lo if lo == hi else round(self._rng.uniform(lo, hi), 1)
        if injected is None and not latency:
            return None
        return Decision(injected, latency, self.spec, self.settings.retry_after)

    def note(self, applied: dict[str, Any] | None) -> None:
        """Count what was applied to a request (its ``requests.chaos``)."""
        if not applied:
            return
        counts = self.counts
        counts["requests"] = counts.get("requests", 0) + 1
        injected = applied.get("injected")
        if injected is not None:
            key = str(injected)
            counts[key] = counts.get(key, 0) + 1
        if applied.get("latency_ms"):
            counts["latency"] = counts.get("latency", 0) + 1

    def choose_failed(self, n: int) -> list[int]:
        """Indices of the events a 207 fails among ``n``: the ``failed`` share, at least one,
        and one at least kept when there are two or more."""
        if n <= 0:
            return []
        k = max(1, round(self.settings.failed * n))
        if n >= 2:
            k = min(k, n - 1)
        return sorted(self._rng.sample(range(n), k))


# --- the shared setting -----------------------------------------------------------------


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


@dataclass(frozen=True, slots=True)
class ChaosState:
    """The stored setting: None when off; who changed it last and when; its revision
    (moves on every change, in any process)."""

    settings: ChaosSettings | None = None
    set_by: str | None = None
    set_at: float | None = None
    revision: int = 0

    @property
    def on(self) -> bool:
        return self.settings is not None

    @property
    def spec(self) -> str | None:
        return None if self.settings is None else self.settings.spec()

    def as_dict(self) -> dict[str, Any]:
        return {
            "on": self.on,
            "spec": self.spec,
            "settings": None if self.settings is None else self.settings.to_json(),
            "description": None if self.settings is None else self.settings.describe(),
            "set_by": self.set_by,
            "set_at": self.set_at,
            "set_at_iso": iso(self.set_at),
            "revision": self.revision,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChaosState:
        settings = data.get("settings")
        return cls(
            None if settings is None else ChaosSettings.from_json(settings),
            data.get("set_by"),
            data.get("set_at"),
            int(data.get("revision") or 0),
        )


def _row_state(row: tuple | None) -> ChaosState:
    if row is None:
        return ChaosState()
    settings_json, set_by, set_at, revision = row
    settings = None
    if settings_json is not None:
        try:
            settings = ChaosSettings.from_json(json.loads(settings_json))
        except (ValueError, ChaosError):
            settings = None  # written by another version: treated as off
    return ChaosState(settings, set_by, set_at, int(revision or 0))


_SELECT = "SELECT settings, set_by, set_at, revision FROM chaos WHERE id = 1"


def db_state(conn: sqlite3.Connection) -> ChaosState:
    return _row_state(conn.execute(_SELECT).fetchone())


def db_revision(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT revision FROM chaos WHERE id = 1").fetchone()
    return 0 if row is None else int(row[0])


def db_set(
    conn: sqlite3.Connection, settings_json: str | None, set_by: str, now: float
) -> dict[str, Any]:
    """Store the setting (None: off) in one transaction; returns ``{"chaos", "previous"}``
    as dicts (they cross the process writer's pipe)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        old = db_state(conn)
        conn.execute(
            "INSERT INTO chaos (id, settings, set_by, set_at, revision) VALUES (1, ?, ?, ?, 1) "
            "ON CONFLICT (id) DO UPDATE SET settings = excluded.settings, "
            "set_by = excluded.set_by, set_at = excluded.set_at, revision = revision + 1",
            (settings_json, set_by, now),
        )
        new = db_state(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return {"chaos": new.as_dict(), "previous": old.as_dict()}


#: Runs ``fn(connection)`` where writes go (the store writer's ``run_in_writer``, waited
#: for) and returns its result; not the store's Writer protocol, one method of it.
WriteThrough = Callable[[Callable[[sqlite3.Connection], Any]], Any]


class ChaosStore:
    """The chaos setting of one database.

    Without ``write`` it opens its own read-write connection (the CLI); with it, reads use
    a read-only connection and writes are handed to ``write(fn)``, which runs
    ``fn(connection)`` on the store's writer (the sandbox; the TUI passes one that refuses,
    and sends its changes to the intake). Thread-safe; every method
    blocks on SQLite.
    """

    def __init__(
        self,
        db: str | Path,
        *,
        write: WriteThrough | None = None,
        busy_timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        from mpsandbox.store import connect  # deferred: the store package is heavier

        self.db = Path(db)
        self._clock = clock
        self._lock = threading.RLock()
        self._conn = connect(
            db, readonly=write is not None, busy_timeout=busy_timeout, check_same_thread=False
        )
        self._write: WriteThrough = write if write is not None else self._write_here
        self._state = ChaosState(revision=-1)

    def close(self) -> None:
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._conn.close()

    def _write_here(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        with self._lock:
            return fn(self._conn)

    def state(self) -> ChaosState:
        """The setting as stored now."""
        self.refresh()
        return self._state

    def refresh(self) -> ChaosState | None:
        """The new state when any process changed it since the last look, else None. One
        indexed read of one row: cheap enough to ask every second."""
        with self._lock:
            if db_revision(self._conn) == self._state.revision:
                return None
            self._state = db_state(self._conn)
            return self._state

    def set(self, settings: ChaosSettings | None, set_by: str = "api") -> dict[str, Any]:
        """Store a setting (None: off); returns ``{"chaos", "previous"}`` (dicts)."""
        if set_by not in SET_BY:
            raise ChaosError(f"set_by must be one of {', '.join(SET_BY)}; got {set_by!r}")
        text = None if settings is None else json.dumps(settings.to_json())
        call = functools.partial(db_set, settings_json=text, set_by=set_by, now=self._clock())
        result = self._write(call)
        self.refresh()
        return result

    def set_spec(self, spec: str, set_by: str = "api") -> dict[str, Any]:
        return self.set(parse_spec(spec), set_by)

    def off(self, set_by: str = "api") -> dict[str, Any]:
        return self.set(None, set_by)


def warning_line(state: ChaosState, db: str | Path | None = None) -> str:
    """The loud line a face prints when chaos is on (or that it went off)."""
    if not state.on:
        by = f" by {state.set_by}" if state.set_by else ""
        return f"mpsandbox: chaos is OFF{by}: the intake answers normally again"
    where = ""
    if db is not None:
        from mpsandbox.config import default_db_path

        where = "" if Path(db) == default_db_path() else f" --db {db}"
    by = f" (set by {state.set_by} at {iso(state.set_at)})" if state.set_by else ""
    return (
        f"mpsandbox: CHAOS ON: {state.spec}{by}: {state.settings.describe()}. "
        f"Turn it off with: mpsandbox chaos off{where}"
    )
