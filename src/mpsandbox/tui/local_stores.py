"""The local overrides and the chaos setting as the TUI shows and changes them.

The TUI reads them on read-only connections; it never writes the database itself. A change
is an intent sent to the running intake (``IntakeHost.call``: "override", "chaos"), whose
sandbox commits it through the store's single writer and puts it in force at once, exactly
as a change made over the API. Without a running intake (a read-only view, or an intake
that could not start) nothing can be changed. Every method blocks: call them off the
event loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mpsandbox.chaos import ChaosError, ChaosStore
from mpsandbox.config import Settings
from mpsandbox.errors import MpsandboxError
from mpsandbox.host import IntakeHost
from mpsandbox.overrides import OverrideError, Overrides
from mpsandbox.store import StoreError, explain_error

#: How long a change may take to be committed by the intake.
CHANGE_TIMEOUT = 60.0


class LocalStores:
    def __init__(self, settings: Settings, *, read_only: bool) -> None:
        self.settings = settings
        self.read_only = read_only
        self._lock = threading.Lock()
        self._overrides: Overrides | None = None
        self._chaos: ChaosStore | None = None

    def overrides(self) -> Overrides | None:
        """The local overrides, to read (None until the database exists)."""
        with self._lock:
            if self._overrides is None and Path(self.settings.db).exists():
                self._overrides = self._open(
                    lambda: Overrides(
                        self.settings.db,
                        wiki_url=self.settings.wiki_url,
                        write=_through_the_intake,  # given: a read-only connection
                        busy_timeout=self.settings.busy_timeout,
                    )
                )
            return self._overrides

    def chaos(self) -> ChaosStore | None:
        """The chaos setting, to read (None until the database exists)."""
        with self._lock:
            if self._chaos is None and Path(self.settings.db).exists():
                self._chaos = self._open(
                    lambda: ChaosStore(
                        self.settings.db,
                        write=_through_the_intake,  # given: a read-only connection
                        busy_timeout=self.settings.busy_timeout,
                    )
                )
            return self._chaos

    def chaos_state(self) -> dict[str, Any] | None:
        """The chaos setting as stored now (None without a database)."""
        store = self.chaos()
        if store is None:
            return None
        try:
            return store.state().as_dict()
        except Exception as exc:  # SQLite's, worded for people
            raise explain_error(exc, self.settings.db, "read") from exc

    def change_overrides(self, host: IntakeHost | None, change: str, *args: Any) -> Any:
        """Ask the intake to make one change of the overrides (``Overrides.<change>``
        with these arguments, by "tui"); its result once committed. Raises OverrideError
        saying why when it cannot be made."""
        if self.read_only:
            raise OverrideError(
                "read-only: overrides cannot be changed (start without --read-only)"
            )
        return self._ask(host, OverrideError, "override", change=change, args=list(args))

    def set_chaos(self, host: IntakeHost | None, spec: str) -> dict[str, Any]:
        """Ask the intake to store a chaos spec ("off" turns it off); ``{"chaos",
        "previous"}`` once committed. Raises ChaosError saying why when it cannot."""
        if self.read_only:
            raise ChaosError("read-only: chaos cannot be changed (start without --read-only)")
        return self._ask(host, ChaosError, "chaos", spec=spec)

    def _ask(self, host: IntakeHost | None, error: type[Exception], name: str, **args: Any):
        if host is None or not host.running:
            raise error("the intake is not running, so nothing can be changed now")
        try:
            return host.call(name, **args).result(CHANGE_TIMEOUT)
        except MpsandboxError as exc:  # the intake's refusal, in the person's words
            raise error(str(exc)) from exc
        except TimeoutError as exc:
            raise error(f"the intake did not answer within {CHANGE_TIMEOUT:g} s") from exc

    def _open(self, opener: Callable[[], Any]) -> Any:
        try:
            return opener()
        except Exception as exc:  # SQLite's, worded for people
            raise explain_error(exc, self.settings.db, "open") from exc

    def close(self) -> None:
        with self._lock:
            overrides, self._overrides = self._overrides, None
            chaos, self._chaos = self._chaos, None
        if overrides is not None:
            overrides.close()
        if chaos is not None:
            chaos.close()


def _through_the_intake(fn: Callable[..., Any]) -> Any:
    raise StoreError("the TUI changes the store only through the intake", kind="readonly")
