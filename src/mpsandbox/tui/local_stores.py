"""What the TUI writes itself: the local overrides and the chaos setting of the database.

The intake runs in a child process with its own store writer, so the TUI writes as the CLI
does: on connections of its own, each change one ``BEGIN IMMEDIATE`` transaction; SQLite's
lock and busy timeout (WAL mode) keep them and the intake's writer apart, and the intake
picks a change up within a second (it polls the revisions). Read-only, overrides are refused.
Every method blocks on SQLite: call them off the event loop.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mpsandbox.chaos import ChaosStore
from mpsandbox.config import Settings
from mpsandbox.overrides import OverrideError, Overrides
from mpsandbox.store import StoreError


class LocalStores:
    def __init__(self, settings: Settings, *, read_only: bool) -> None:
        self.settings = settings
        self.read_only = read_only
        self._lock = threading.Lock()
        self._overrides: Overrides | None = None
        self._chaos: ChaosStore | None = None

    def overrides(self) -> Overrides | None:
        """The local overrides (None until the database exists)."""
        with self._lock:
            if self._overrides is None and Path(self.settings.db).exists():
                try:
                    self._overrides = Overrides(
                        self.settings.db,
                        wiki_url=self.settings.wiki_url,
                        write=_refuse_writes if self.read_only else None,
                        busy_timeout=self.settings.busy_timeout,
                    )
                except (StoreError, sqlite3.Error) as exc:
                    raise StoreError(str(exc)) from exc
            return self._overrides

    def chaos(self) -> ChaosStore | None:
        """The chaos setting (None until the database exists)."""
        with self._lock:
            if self._chaos is None and Path(self.settings.db).exists():
                try:
                    self._chaos = ChaosStore(
                        self.settings.db, busy_timeout=self.settings.busy_timeout
                    )
                except (StoreError, sqlite3.Error) as exc:
                    raise StoreError(str(exc)) from exc
            return self._chaos

    def close(self) -> None:
        with self._lock:
            overrides, self._overrides = self._overrides, None
            chaos, self._chaos = self._chaos, None
        if overrides is not None:
            overrides.close()
        if chaos is not None:
            chaos.close()


def _refuse_writes(fn: Callable[..., Any]) -> Any:
    raise OverrideError("read-only: overrides cannot be changed (start without --read-only)")
