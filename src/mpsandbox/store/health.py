"""Is the store usable right now? One answer for readiness, the serve output and the TUI.

A store can stop being usable while the intake runs: its process dies (and is being
restarted, or could not be), its disk fills up, or its file is deleted or replaced under
it. SQLite keeps writing to an open file that was deleted: every later "201 Created" would
go into a file nobody can open again. So the file at the path is compared with the one
opened at start (device and inode), and a difference stops the intake from acknowledging.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .database import StoreError

if TYPE_CHECKING:
    from .writer_protocol import Writer

#: Store error kinds of a write that say the store itself is unusable (not one request).
UNUSABLE_KINDS = frozenset(("full", "readonly", "io", "corrupt", "notadb", "cantopen", "os"))

#: How often the intake looks at the store (seconds): changes are noticed within this.
CHECK_EVERY = 0.5


@dataclass(frozen=True, slots=True)
class Health:
    """``state``: "ok", "restarting", "failed", "deleted", "replaced", or an unusable
    write's error kind ("full", "readonly", ...); ``detail`` says what and what to do."""

    state: str
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.state == "ok"

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "detail": self.detail}


def file_identity(path: str | Path) -> tuple[int, int] | None:
    """(device, inode) of the file at ``path``; None when there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def file_problem(path: str | Path, opened: tuple[int, int] | None) -> StoreError | None:
    """Why the file at ``path`` is no longer the database opened as ``opened``, or None."""
    if opened is None:
        return None
    now = file_identity(path)
    if now == opened:
        return None
    if now is None:
        what, kind = "was deleted", "deleted"
    else:
        what, kind = "was replaced by another file", "replaced"
    return StoreError(
        f"The database file {path} {what} while mpsandbox was running; nothing more is "
        "acknowledged, since it could not be read back. Restart mpsandbox (events stored "
        "before are in the old file only if another program still holds it open)",
        path=str(path),
        kind=kind,
    )


def health(writer: Writer, file_error: StoreError | None) -> Health:
    """The store's health from its writer and the file check (see module docstring)."""
    if writer.fatal is not None:
        return Health("failed", str(writer.fatal))
    if file_error is not None:
        return Health(file_error.kind, str(file_error))
    state = writer.state
    if state != "ok":
        last = writer.last_error
        return Health(state, str(last) if last is not None else f"the store writer is {state}")
    error = writer.write_error
    if error is not None and error.kind in UNUSABLE_KINDS:
        return Health(error.kind, str(error))
    return Health("ok")
