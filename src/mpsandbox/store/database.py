"""Opening the SQLite file.

Every connection the store makes goes through :func:`connect`, so the pragmas that make the
single-writer design work (WAL, busy timeout, foreign keys) are set in one place, and every
way a file can be unusable turns into a :class:`StoreError` that tells a person what to do
instead of a traceback.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mpsandbox.errors import MpsandboxError

from . import codec
from .migrations import MIGRATIONS, applied_migrations, apply_migrations

if TYPE_CHECKING:
    import sqlite_utils

log = logging.getLogger(__name__)

#: Seconds a connection waits for another one's lock before giving up with "locked".
DEFAULT_BUSY_TIMEOUT = 5.0

_PRAGMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PRAGMA_WORD = re.compile(r"[A-Za-z0-9_\-]+")


class StoreError(MpsandboxError):
    """A store failure worded for the person at the keyboard.

    The CLI, the TUI and the HTTP faces show ``str(error)`` as is, so the message names the
    file and says what to do. ``kind`` lets code react without parsing text (for example an
    intake may answer 503 on ``"locked"`` or ``"full"``); the SQLite exception, if any, stays
    available as ``__cause__``.
    """

    def __init__(self, message: str, *, path: str | None = None, kind: str = "other") -> None:
        super().__init__(message)
        self.path = path
        self.kind = kind


# (kind, sqlite error-name prefixes, message fragments, advice)
_ADVICE: list[tuple[str, tuple[str, ...], tuple[str, ...], str]] = [
    (
        "full",
        ("SQLITE_FULL",),
        ("database or disk is full",),
        # Not "reset the store": deleting rows needs room for the journal, so a reset on a
        # full disk fails too. Writing resumes by itself once there is space.
        "the database or disk is full; free some disk space or lower the retention limits "
        "(maximum events or maximum age); writing resumes by itself once there is room",
    ),
    (
        "locked",
        ("SQLITE_BUSY", "SQLITE_LOCKED"),
        ("database is locked", "database table is locked", "busy"),
        "the database is locked by another program or connection (another mpsandbox using "
        "the same file?); close it or wait, then try again",
    ),
    (
        "notadb",
        ("SQLITE_NOTADB",),
        ("file is not a database", "not a database"),
        "the file is not an SQLite database (or is encrypted); move it aside or choose "
        "another database path",
    ),
    (
        "corrupt",
        ("SQLITE_CORRUPT",),
        ("malformed",),
        "the database file is damaged; move it aside (keep it for a bug report) and start "
        "with a fresh database",
    ),
    (
        "readonly",
        ("SQLITE_READONLY",),
        ("readonly database", "read-only"),
        "the database file or its folder is read-only; fix the permissions or choose a "
        "writable path",
    ),
    (
        "cantopen",
        ("SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH"),
        ("unable to open", "authorization denied"),
        "the file cannot be opened; check that the path is a file (not a folder) that you "
        "may read and write, in a folder you may write to",
    ),
    (
        "io",
        ("SQLITE_IOERR",),
        ("disk i/o error",),
        "the operating system reported an I/O error; check the disk, free space and permissions",
    ),
]


def explain_error(exc: BaseException, path: str | Path, doing: str) -> StoreError:
    """Turn an exception from SQLite (or the OS) into a :class:`StoreError` with advice.

    ``doing`` completes "Could not ... the database": "open", "write to", "read"...
    """
    if isinstance(exc, StoreError):
        return exc
    text = str(exc) or type(exc).__name__
    low = text.lower()
    name = getattr(exc, "sqlite_errorname", "") or ""
    match = next(
        (
            (kind, advice)
            for kind, names, fragments, advice in _ADVICE
            if name.startswith(names) or any(f in low for f in fragments)
        ),
        None,
    )
    if match is not None:
        kind, advice = match
    elif isinstance(exc, OSError) and exc.strerror:
        kind, advice = "os", f"{exc.strerror}; check the path and its permissions"
    else:
        kind, advice = "other", "see the SQLite message; if it persists, report a bug"
    return StoreError(
        f"Could not {doing} the database {path}: {advice} (SQLite said: {text})",
        path=str(path),
        kind=kind,
    )


def _pragma_sql(name: str, value: Any) -> str:
    if not _PRAGMA_NAME.fullmatch(name):
        raise ValueError(f"not a pragma name: {name!r}")
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int | float):
        return f"PRAGMA {name} = {value}"
    text = str(value)
    if not _PRAGMA_WORD.fullmatch(text):
        raise ValueError(f"unsupported value for PRAGMA {name}: {value!r}")
    return f"PRAGMA {name} = {text}"


def _check_path(path: str | Path) -> Path:
    if str(path) in ("", ":memory:") or str(path).startswith("file:"):
        raise StoreError(
            f"The store needs a real file path, not {str(path)!r}; pass a path such as "
            "./mpsandbox.db",
            path=str(path),
            kind="cantopen",
        )
    p = Path(path).expanduser()
    if p.is_dir():
        raise StoreError(
            f"Could not open the database {p}: it is a folder, not a file; choose a file path "
            f"such as {p / 'mpsandbox.db'}",
            path=str(p),
            kind="cantopen",
        )
    return p


def connect(
    path: str | Path,
    *,
    readonly: bool = False,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    pragmas: Mapping[str, Any] | None = None,
    check_same_thread: bool = True,
) -> sqlite3.Connection:
    """Open a raw connection, configured and (unless read-only) migrated.

    The connection is in autocommit mode (``isolation_level=None``): the store always
    begins its transactions explicitly, so the moment of commit is exactly known.
    ``pragmas`` are applied last, after migrations, so they can tune or constrain the
    connection (tests use ``max_page_count`` to make the disk "full").
    """
    p = _check_path(path)
    if readonly:
        if not p.exists():
            raise StoreError(
                f"There is no database at {p}; check the path, or start the server with this "
                "database path once to create it",
                path=str(p),
                kind="missing",
            )
        target, uri = p.resolve().as_uri() + "?mode=ro", True
    else:
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"Could not create the folder {p.parent} for the database {p}: "
                f"{exc.strerror or exc}; choose a path in a folder you may write to",
                path=str(p),
                kind="cantopen",
            ) from exc
        target, uri = str(p), False
    try:
        conn = sqlite3.connect(
            target,
            uri=uri,
            timeout=busy_timeout,
            isolation_level=None,
            check_same_thread=check_same_thread,
        )
    except (sqlite3.Error, OSError) as exc:
        raise explain_error(exc, p, "open") from exc
    try:
        # Packed event JSON and bodies read through these (see codec.py), migrations too.
        codec.register(conn)
        conn.execute(f"PRAGMA busy_timeout = {max(0, int(busy_timeout * 1000))}")
        conn.execute("PRAGMA foreign_keys = ON")
        if readonly:
            conn.execute("PRAGMA query_only = 1")
            _check_schema(conn, p)
        else:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                log.warning("%s: could not switch to WAL mode (got %s); readers may block", p, mode)
            conn.execute("PRAGMA synchronous = NORMAL")
            _refuse_foreign(conn, p)
            apply_migrations(conn)
        for name, value in (pragmas or {}).items():
            conn.execute(_pragma_sql(name, value))
    except BaseException as exc:
        conn.close()
        if isinstance(exc, StoreError | sqlite3.Error | OSError):
            raise explain_error(exc, p, "open") from exc
        raise
    return conn


def _refuse_foreign(conn: sqlite3.Connection, path: Path) -> None:
    """Never add our tables to some other program's database."""
    names = {
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    }
    if names and "_migrations" not in names:
        raise StoreError(
            f"The file {path} is an SQLite database of another program (it has tables "
            f"{', '.join(sorted(names)[:5])} but no mpsandbox history); choose another "
            "database path",
            path=str(path),
            kind="schema",
        )


def _check_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a read-only connection to a file the writer has not set up (yet)."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "_migrations" not in tables:
        raise StoreError(
            f"The database {path} was not created by mpsandbox (it has no _migrations table); "
            "check the path, or start the server with it once to set it up",
            path=str(path),
            kind="schema",
        )
    missing = [m.name for m in MIGRATIONS if m.name not in applied_migrations(conn)]
    if missing:
        raise StoreError(
            f"The database {path} was made by an older mpsandbox and needs upgrading "
            f"(pending: {', '.join(missing)}); open it once with the server to upgrade it",
            path=str(path),
            kind="schema",
        )


def open_database(
    path: str | Path,
    *,
    readonly: bool = False,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    pragmas: Mapping[str, Any] | None = None,
) -> sqlite_utils.Database:
    """Open the store as a ``sqlite_utils.Database`` for tools, exports and tests.

    The running server writes only through :class:`~mpsandbox.store.writer.StoreWriter`;
    a read-write Database from here is for offline work (CLI import, maintenance).
    """
    conn = connect(path, readonly=readonly, busy_timeout=busy_timeout, pragmas=pragmas)
    import sqlite_utils  # deferred: ~25 ms at startup, and only tools and tests need it

    return sqlite_utils.Database(conn, execute_plugins=False)
