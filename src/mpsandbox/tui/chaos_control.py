"""The chaos setting as the app shows and changes it: the header's CHAOS badge, a note when
it changes (here or in another process), and writing a new spec.

A mixin of the app; the dialog that asks for a spec is in :mod:`mpsandbox.tui.dialogs`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from textual import work

from mpsandbox.chaos import ChaosError
from mpsandbox.store import StoreError
from mpsandbox.tui.messages import ChaosChanged
from mpsandbox.tui.safe_text import clean


class ChaosControl:
    """Mixin of :class:`~mpsandbox.tui.app.MpSandboxApp`."""

    #: Revision of the chaos setting the status shows (-1: not read yet).
    _chaos_revision: int = -1

    def chaos_refused(self) -> bool:
        if self.status.read_only:
            self.notify("Read-only: chaos cannot be changed.", severity="warning")
        return self.status.read_only

    @work(exclusive=True, group="chaos-read")
    async def _read_chaos(self) -> None:
        try:
            state = await asyncio.to_thread(self.local.chaos_state)
        except StoreError:
            return
        if state is not None:
            self._show_chaos(state)

    def on_chaos_changed(self, message: ChaosChanged) -> None:
        self._show_chaos(message.state)

    def _show_chaos(self, state: dict[str, Any]) -> None:
        """Put a (newer) chaos setting in the header, and say so."""
        revision = int(state.get("revision") or 0)
        if revision <= self._chaos_revision:
            return
        first = self._chaos_revision < 0
        self._chaos_revision = revision
        spec = state.get("spec") if state.get("on") else None
        self._set_status(chaos=spec)
        by = f" (by {state['set_by']})" if state.get("set_by") else ""
        if spec:
            self.notify(
                f"{spec}{by}: {state.get('description') or ''}",
                title="CHAOS is on: the intake answers badly on purpose",
                severity="error",
                timeout=8,
                markup=False,
            )
        elif not first:
            self.notify(f"Chaos is off{by}: the intake answers normally.", markup=False)

    def action_chaos_off(self) -> None:
        if not self.chaos_refused():
            self.write_chaos("off")

    @work(group="chaos-write")
    async def write_chaos(self, spec: str) -> None:
        """Send the new setting to the intake, which stores it through its one writer."""
        try:
            change = await asyncio.to_thread(self.local.set_chaos, self.host, spec)
        except ChaosError as exc:
            self.notify(clean(exc, 300), title="Chaos not changed", severity="error", markup=False)
            return
        self._show_chaos(change["chaos"])
