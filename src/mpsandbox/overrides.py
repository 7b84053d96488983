"""Local overrides: experiment groups, stream sample rates and feature flags.

Overrides live in the sandbox's own SQLite database (tables ``overrides`` and
``override_log``, migration ``0004_overrides``), so the CLI in one process and the intake in
another see the same set, and they survive restarts.

- ``experiment``: experiment name -> group. Shown as Test Kitchen's ``?mpo=exp:group;...``
  string (and a dev wiki URL carrying it); applied to the Test Kitchen-style configuration
  API (see ``intake/override_routes.py``).
- ``sample_rate``: stream name (or a ``/regex/`` key of the stream configs) -> rate in 0..1,
  applied to the served stream configs' ``sample.rate``.
- ``flag``: name -> any JSON value, for whatever a developer wants to steer locally.

Every change is one *batch* in ``override_log`` (old and new value of each row it touched,
who made it, when), so :meth:`Overrides.clear` ("revert all") is one transaction that
returns what it removed, and :meth:`Overrides.revert_last` undoes the newest change not yet
undone (repeat it to step further back). The log's highest id is the revision: a reader
re-reads the table only when it moved.

The functions taking a ``sqlite3.Connection`` do the writing; a running sandbox hands them
to its single store writer (``writer.run_in_writer``), the CLI runs them on a connection of
its own (SQLite's lock and busy timeout keep the two apart). Textual-free.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

from mpsandbox.errors import MpsandboxError
from mpsandbox.platform import experiments as exps

EXPERIMENT = "experiment"
SAMPLE_RATE = "sample_rate"
FLAG = "flag"
KINDS = (EXPERIMENT, SAMPLE_RATE, FLAG)
SET_BY = ("cli", "api", "tui")
MAX_KEY_LENGTH = 255


class OverrideError(MpsandboxError, ValueError):
    """An override that cannot be set: unknown kind, bad key or bad value."""


@dataclass(frozen=True, slots=True)
class Override:
    kind: str
    key: str
    value: Any
    set_by: str
    set_at: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key": self.key,
            "value": self.value,
            "set_by": self.set_by,
            "set_at": self.set_at,
            "set_at_iso": iso(self.set_at),
        }


def iso(epoch: float) -> str:
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


# --- validation -----------------------------------------------------------------------


def validate(
    kind: Any,
    key: Any,
    value: Any,
    experiments: Mapping[str, exps.Experiment] | None = None,
) -> Any:
    """The value to store for ``kind``/``key``, or :class:`OverrideError` saying why not.

    Experiment names and groups follow Test Kitchen's rules (``platform/experiments.py``)
    and, when experiments are loaded, must name a loaded experiment and one of its groups.
    Rates are numbers in 0..1 (a numeric string is read as a number). Flags take any JSON.
    """
    if kind not in KINDS:
        raise OverrideError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    if not isinstance(key, str) or not key.strip():
        raise OverrideError(f"{kind} override needs a non-empty key (a name)")
    if len(key) > MAX_KEY_LENGTH:
        raise OverrideError(f"key is longer than {MAX_KEY_LENGTH} characters")
    if kind == EXPERIMENT:
        if not exps.valid_name(key):
            raise OverrideError(
                f"experiment name {key!r} must match ^{exps.NAME_RE.pattern}$ (8-63 letters, "
                "digits, '-', '_' or '.', starting with a letter or digit)"
            )
        if not exps.valid_group(value):
            raise OverrideError(
                f"group {value!r} of {key!r} must be a string matching ^{exps.GROUP_RE.pattern}$"
            )
        if experiments is not None and len(experiments) > 0:
            exp = experiments.get(key)
            if exp is None:
                known = ", ".join(sorted(experiments)[:20])
                raise OverrideError(
                    f"experiment {key!r} is not in the loaded experiments (known: {known})"
                )
            if value not in exp.groups:
                raise OverrideError(
                    f"experiment {key!r} has no group {value!r} (groups: {', '.join(exp.groups)})"
                )
        return value
    if kind == SAMPLE_RATE:
        rate = value
        if isinstance(rate, str):
            try:
                rate = float(rate)
            except ValueError:
                raise OverrideError(
                    f"sample rate must be a number in 0..1, got {value!r}"
                ) from None
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate):
            raise OverrideError(f"sample rate must be a number in 0..1, got {value!r}")
        if not 0 <= rate <= 1:
            raise OverrideError(f"sample rate must be in 0..1, got {value!r}")
        return rate
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise OverrideError(f"flag value must be JSON: {exc}") from None
    return value


def parse_cli_value(kind: str, text: str) -> Any:
    """A value typed on the command line: a group as is, a rate as a number, a flag as JSON
    (text that is not JSON is taken as a string, so ``on`` needs no quotes)."""
    if kind == EXPERIMENT:
        return text
    if kind == SAMPLE_RATE:
        try:
            return float(text)
        except ValueError:
            return text  # validate() says what is wrong
    try:
        return json.loads(text)
    except ValueError:
        return text


# --- the tables -----------------------------------------------------------------------


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _row(r: tuple) -> Override:
    kind, key, value, set_by, set_at = r
    return Override(kind, key, _load(value), set_by, set_at)


_SELECT = "SELECT kind, key, value, set_by, set_at FROM overrides"


def db_list(conn: sqlite3.Connection) -> list[Override]:
    return [_row(r) for r in conn.execute(_SELECT + " ORDER BY kind, key")]


def db_revision(conn: sqlite3.Connection) -> int:
    """The newest log id (0 for none): it moves on every change, in any process."""
    return conn.execute("SELECT coalesce(max(id), 0) FROM override_log").fetchone()[0]


def _next_batch(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT coalesce(max(batch), 0) + 1 FROM override_log").fetchone()[0]


def _log(
    conn: sqlite3.Connection,
    batch: int,
    now: float,
    action: str,
    kind: str,
    key: str,
    old: Override | None,
    new_value: str | None,
    by: str,
) -> None:
    conn.execute(
        "INSERT INTO override_log (batch, at, action, kind, key, old_value, old_set_by, "
        "old_set_at, new_value, by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            batch,
            now,
            action,
            kind,
            key,
            None if old is None else _dump(old.value),
            None if old is None else old.set_by,
            None if old is None else old.set_at,
            new_value,
            by,
        ),
    )


def _get(conn: sqlite3.Connection, kind: str, key: str) -> Override | None:
    r = conn.execute(_SELECT + " WHERE kind = ? AND key = ?", (kind, key)).fetchone()
    return None if r is None else _row(r)


def db_set(
    conn: sqlite3.Connection, kind: str, key: str, value_json: str, set_by: str, now: float
) -> dict[str, Any]:
    """Set one override (already validated); returns ``{"override", "previous"}``."""
    with _transaction(conn):
        old = _get(conn, kind, key)
        conn.execute(
            "INSERT INTO overrides (kind, key, value, set_by, set_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value, "
            "set_by = excluded.set_by, set_at = excluded.set_at",
            (kind, key, value_json, set_by, now),
        )
        _log(conn, _next_batch(conn), now, "set", kind, key, old, value_json, set_by)
    new = Override(kind, key, _load(value_json), set_by, now)
    return {
        "override": new.as_dict(),
        "previous": None if old is None else old.as_dict(),
    }


def db_delete(
    conn: sqlite3.Connection, kind: str | None, key: str | None, by: str, now: float
) -> list[dict[str, Any]]:
    """Remove one override (kind and key), every override of a kind (key None), or every
    override (both None), in one transaction; returns what was removed."""
    where, args = "", ()
    if kind is not None and key is not None:
        where, args = " WHERE kind = ? AND key = ?", (kind, key)
    elif kind is not None:
        where, args = " WHERE kind = ?", (kind,)
    action = "delete" if key is not None else "clear"
    with _transaction(conn):
        removed = [_row(r) for r in conn.execute(_SELECT + where + " ORDER BY kind, key", args)]
        if removed:
            batch = _next_batch(conn)
            conn.execute("DELETE FROM overrides" + where, args)
            for o in removed:
                _log(conn, batch, now, action, o.kind, o.key, o, None, by)
    return [o.as_dict() for o in removed]


def db_revert_last(conn: sqlite3.Connection, by: str, now: float) -> dict[str, Any] | None:
    """Undo the newest change not yet undone (never a revert itself); None when there is
    nothing to undo. Returns the batch undone and each override restored or removed."""
    with _transaction(conn):
        r = conn.execute(
            "SELECT batch, action, by, at FROM override_log WHERE action != 'revert' "
            "AND reverted_by IS NULL ORDER BY batch DESC LIMIT 1"
        ).fetchone()
        if r is None:
            return None
        target, action, target_by, target_at = r
        rows = conn.execute(
            "SELECT kind, key, old_value, old_set_by, old_set_at FROM override_log "
            "WHERE batch = ? ORDER BY id DESC",
            (target,),
        ).fetchall()
        batch = _next_batch(conn)
        changes = []
        for kind, key, old_value, old_set_by, old_set_at in rows:
            current = _get(conn, kind, key)
            if old_value is None:
                conn.execute("DELETE FROM overrides WHERE kind = ? AND key = ?", (kind, key))
            else:
                conn.execute(
                    "INSERT OR REPLACE INTO overrides (kind, key, value, set_by, set_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (kind, key, old_value, old_set_by, old_set_at),
                )
            _log(conn, batch, now, "revert", kind, key, current, old_value, by)
            changes.append(
                {
                    "kind": kind,
                    "key": key,
                    "value": _load(old_value),
                    "restored": old_value is not None,
                }
            )
        conn.execute("UPDATE override_log SET reverted_by = ? WHERE batch = ?", (batch, target))
    return {
        "undone": {"batch": target, "action": action, "by": target_by, "at": iso(target_at)},
        "changes": changes,
    }


def db_history(conn: sqlite3.Connection, limit: int = 100) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT id, batch, at, action, kind, key, old_value, new_value, by, reverted_by "
        "FROM override_log ORDER BY id DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [
        {
            "id": i,
            "batch": batch,
            "at": at,
            "at_iso": iso(at),
            "action": action,
            "kind": kind,
            "key": key,
            "old_value": _load(old),
            "new_value": _load(new),
            "by": by,
            "reverted_by": rev,
        }
        for i, batch, at, action, kind, key, old, new, by, rev in rows
    ]


# --- strings and URLs -----------------------------------------------------------------


def mpo_string(groups: Mapping[str, str]) -> str:
    """``exp1:group1;exp2:group2`` in name order (no trailing ``;``, which PHP refuses)."""
    return exps.format_mpo(dict(sorted(groups.items())))


def wiki_url_with_mpo(base: str, mpo: str) -> str:
    """``base`` with ``mpo=...`` set (replacing any there), other parameters kept as they
    were. ``:`` and ``;`` stay literal, as people write the string; without overrides the
    ``mpo`` parameter is removed."""
    parts = urlsplit(base)
    kept = [
        part
        for part in parts.query.split("&")
        if part and unquote_plus(part.split("=", 1)[0]) != exps.MPO_PARAM
    ]
    if mpo:
        kept.append(f"{exps.MPO_PARAM}={quote(mpo, safe=':;')}")
    return urlunsplit(parts._replace(query="&".join(kept)))


# --- the API --------------------------------------------------------------------------

#: Runs ``fn(connection)`` where writes go (the store writer's ``run_in_writer``, waited
#: for) and returns its result; not the store's Writer protocol, one method of it.
WriteThrough = Callable[[Callable[[sqlite3.Connection], Any]], Any]


class Overrides:
    """The overrides of one database.

    Without ``write`` it opens its own read-write connection (the CLI); with it, reads use
    a read-only connection and every write is handed to ``write(fn)``, which must run
    ``fn(connection)`` on the store's writer and return its result (the sandbox).
    Thread-safe; every method blocks on SQLite, so async callers run them in a thread.
    """

    def __init__(
        self,
        db: str | Path,
        *,
        experiments: Mapping[str, exps.Experiment] | None = None,
        wiki_url: str | None = None,
        write: WriteThrough | None = None,
        busy_timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        from mpsandbox.store import connect  # deferred: the store package is heavier

        self.db = Path(db)
        self.experiments = experiments
        self.wiki_base = wiki_url
        self._clock = clock
        self._lock = threading.RLock()
        self._conn = connect(
            db, readonly=write is not None, busy_timeout=busy_timeout, check_same_thread=False
        )
        self._write: WriteThrough = write if write is not None else self._write_here
        self._revision = -1
        self._items: dict[tuple[str, str], Override] = {}
        self.refresh()

    def close(self) -> None:
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._conn.close()

    def _write_here(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        with self._lock:
            return fn(self._conn)

    # reading ---------------------------------------------------------------------------
    @property
    def revision(self) -> int:
        return self._revision

    def refresh(self) -> bool:
        """Re-read the table if any process changed it since; True when it did."""
        with self._lock:
            revision = db_revision(self._conn)
            if revision == self._revision:
                return False
            self._items = {(o.kind, o.key): o for o in db_list(self._conn)}
            self._revision = revision
            return True

    def list(self, kind: str | None = None) -> list[Override]:
        self.refresh()
        with self._lock:
            items = list(self._items.values())
        return [o for o in items if kind is None or o.kind == kind]

    def get(self, kind: str, key: str) -> Override | None:
        self.refresh()
        return self._items.get((kind, key))

    def _values(self, kind: str) -> dict[str, Any]:
        return {o.key: o.value for o in self.list(kind)}

    def experiment_groups(self) -> dict[str, str]:
        return self._values(EXPERIMENT)

    def rate_overrides(self) -> dict[str, float]:
        """Stream name (or ``/regex/`` key) -> rate, for ``StreamConfigs.select``."""
        return {k: float(v) for k, v in self._values(SAMPLE_RATE).items()}

    def flags(self) -> dict[str, Any]:
        return self._values(FLAG)

    def mpo(self) -> str:
        """The ``?mpo=`` value forcing every overridden experiment's group ('' for none)."""
        return mpo_string(self.experiment_groups())

    def wiki_url(self, base: str | None = None) -> str | None:
        """``base`` (default: ``--wiki-url``) with the ``mpo`` parameter; None without one."""
        base = base or self.wiki_base
        return None if not base else wiki_url_with_mpo(base, self.mpo())

    def history(self, limit: int = 100) -> list[dict[str, Any]]:
        with self._lock:
            return db_history(self._conn, limit)

    def summary(self) -> dict[str, Any]:
        """Everything a face shows: the overrides, the mpo string, the wiki URL."""
        items = self.list()
        return {
            "overrides": [o.as_dict() for o in items],
            "mpo": self.mpo(),
            "wiki_url": self.wiki_url(),
            "rate_overrides": self.rate_overrides(),
            "flags": self.flags(),
            "revision": self._revision,
        }

    # writing ---------------------------------------------------------------------------
    def _run(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        result = self._write(fn)
        self.refresh()
        return result

    def set(self, kind: str, key: str, value: Any, set_by: str = "api") -> dict[str, Any]:
        """Validate and set one override; returns ``{"override", "previous"}``."""
        _check_by(set_by)
        value = validate(kind, key, value, self.experiments)
        return self._run(
            functools.partial(
                db_set,
                kind=kind,
                key=key,
                value_json=_dump(value),
                set_by=set_by,
                now=self._clock(),
            )
        )

    def set_mpo(self, raw: str, set_by: str = "api") -> list[dict[str, Any]]:
        """Set an experiment override for each ``name:group`` of an ``mpo`` value (read as
        the JS client reads it; every pair validated before any is set)."""
        try:
            pairs = exps.parse_mpo(raw)
        except exps.EnrollmentStringError as exc:
            raise OverrideError(f"mpo {raw!r}: {exc}") from None
        for name, group in pairs.items():
            validate(EXPERIMENT, name, group, self.experiments)
        return [self.set(EXPERIMENT, name, group, set_by) for name, group in pairs.items()]

    def delete(self, kind: str, key: str, set_by: str = "api") -> dict[str, Any] | None:
        """Remove one override; returns it, or None when there was none."""
        _check_by(set_by)
        if kind not in KINDS:
            raise OverrideError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
        removed = self._run(
            functools.partial(db_delete, kind=kind, key=key, by=set_by, now=self._clock())
        )
        return removed[0] if removed else None

    def clear(self, kind: str | None = None, set_by: str = "api") -> list[dict[str, Any]]:
        """Remove every override (of ``kind``, when given) in one transaction; returns
        what was removed. :meth:`revert_last` brings them back."""
        _check_by(set_by)
        if kind is not None and kind not in KINDS:
            raise OverrideError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
        return self._run(
            functools.partial(db_delete, kind=kind, key=None, by=set_by, now=self._clock())
        )

    def clear_all(self, set_by: str = "api") -> list[dict[str, Any]]:
        return self.clear(None, set_by)

    def revert_last(self, set_by: str = "api") -> dict[str, Any] | None:
        """Undo the newest change not yet undone; None when there is none."""
        _check_by(set_by)
        return self._run(functools.partial(db_revert_last, by=set_by, now=self._clock()))


def _check_by(set_by: str) -> None:
    if set_by not in SET_BY:
        raise OverrideError(f"set_by must be one of {', '.join(SET_BY)}; got {set_by!r}")
