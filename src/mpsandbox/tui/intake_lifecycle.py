"""The intake's lifecycle as the app drives it: start (or move to another port), hear from
it, ask it for a reset or a re-validation, and stop it without losing an acknowledged event.

A mixin of the app. The intake runs in a child process (:class:`~mpsandbox.host.IntakeHost`);
its reader thread calls :meth:`IntakeLifecycle._from_intake`, which turns the host's
``Batch`` into the TUI's typed messages here, at the boundary.
"""

from __future__ import annotations

import asyncio

from textual import work

from mpsandbox.errors import PortBusy
from mpsandbox.host import Batch, IntakeError, IntakeHost
from mpsandbox.store import StoreError
from mpsandbox.tui.messages import ChaosChanged, Revalidated, StoreHealthChanged


class IntakeLifecycle:
    """Mixin of :class:`~mpsandbox.tui.app.MpSandboxApp`."""

    host: IntakeHost | None

    def _from_intake(self, batch: Batch) -> None:
        """On the host's reader thread: events go to the feed (which wakes the app), a
        re-validation report or a chaos change becomes a message."""
        if batch.revalidated is not None:
            self.post_message(Revalidated(batch.revalidated))
        elif batch.chaos is not None:
            self.post_message(ChaosChanged(batch.chaos))
        elif batch.store is not None:
            self.post_message(StoreHealthChanged(batch.store))
        elif batch.schemas_unreachable is not None:
            self.call_from_thread(self._set_status, schemas_unreachable=batch.schemas_unreachable)
        else:
            self.feed.push(batch)

    @work(thread=True, exclusive=True, group="intake-start")
    def start_intake(self, port: int | None = None) -> None:
        """Bind the intake (on another port when given); reports through the status."""
        if self.host is None:
            self.host = IntakeHost(self.settings)
            self.host.add_listener(self._from_intake)
        try:
            url = self.host.start(port=port)
        except PortBusy as exc:
            self.call_from_thread(self._intake_failed, str(exc), exc.port)
            return
        except (StoreError, IntakeError, OSError) as exc:
            self.call_from_thread(self._intake_failed, str(exc), None, store=True)
            return
        self.call_from_thread(self._intake_started, url, self.host.port)

    def _intake_started(self, url: str, port: int) -> None:
        self._open_reader()
        self._set_status(
            listening=True,
            starting=False,
            url=url,
            port=port,
            port_problem=None,
            store_problem=None,
        )
        self._refresh_counts()
        self._deliver(reset=True)
        self._read_chaos()  # the intake applied any --chaos before it listened

    def _intake_failed(self, message: str, port: int | None, store: bool = False) -> None:
        self._open_reader()
        if store:
            self._set_status(starting=False, listening=False, store_problem=message)
            self.notify(
                message,
                title="The store cannot be opened",
                severity="error",
                timeout=30,
                markup=False,
            )
        else:
            self._set_status(starting=False, listening=False, port_problem=message)
        self._deliver(reset=True)

    def listen_on(self, port: int) -> None:
        if self.host is not None and self.host.running:
            self.notify("The intake is already listening.", severity="warning")
            return
        self._set_status(starting=True, port_problem=None, port=port)
        self.start_intake(port)

    def intake_running(self, refusal: str) -> bool:
        """Whether the intake runs; if not, say ``refusal`` (why the intent cannot be done)."""
        if self.host is None or not self.host.running:
            self.notify(refusal, severity="warning")
            return False
        return True

    def action_revalidate(self) -> None:
        """Judge stored events again now (every schema, the --revalidate newest)."""
        if self.intake_running(
            "Nothing to re-judge with: the intake is not running (read-only view)."
        ):
            self.host.call("revalidate")
            self.notify("Judging stored events again with the schemas as they are now…")

    @work(exclusive=True, group="reset")
    async def reset_store(self) -> None:
        host = self.host
        if host is None or not host.running:
            return
        await asyncio.wrap_future(host.call("reset"))
        self.notify("Store reset: every request and event was deleted.")

    def shutdown_intake(self) -> None:
        """Stop listening and wait until every acknowledged event is on disk; then close
        the reader and the local stores."""
        host, self.host = self.host, None
        if host is not None:
            host.stop()
        self.reads.close()
        self.local.close()
