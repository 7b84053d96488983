"""Run the intake on its own thread and event loop, for faces that own the main loop.

The TUI's event loop must stay free for key presses and painting, so the intake (HTTP
parsing, validation, talking to the store process) runs on a loop of its own in a daemon
thread. Faces call the intake through this class only: start or move it to another port,
run an intent on its loop, hear about committed events, and stop it without losing any.
Everything here is plain threading and asyncio, no Textual.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from mpsandbox.config import Settings
from mpsandbox.intake.server import RunningServer, start_server
from mpsandbox.sandbox import Listener, Sandbox

log = logging.getLogger(__name__)
T = TypeVar("T")


class IntakeHost:
    """One intake on a background loop; thread-safe to call from any face.

    ``listeners`` are called on the intake's thread with each committed batch (a face
    hands them to its own loop). When the port is busy, :meth:`start` raises ``PortBusy``
    and the host stays usable: :meth:`start` may be called again with another port.
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self.server: RunningServer | None = None
        self._listeners: list[Listener] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="mpsandbox-intake", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()
        with contextlib.suppress(Exception):
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()

    # -- calling into the intake's loop -----------------------------------------------------
    def submit(self, fn: Callable[[], Awaitable[T]]) -> concurrent.futures.Future[T]:
        """Run ``fn()`` on the intake's loop; the future completes in the caller's time."""
        return asyncio.run_coroutine_threadsafe(_call(fn), self._loop)

    def call(self, fn: Callable[[], Awaitable[T]], timeout: float | None = 30) -> T:
        """Blocking form of :meth:`submit`, for worker threads and tests."""
        return self.submit(fn).result(timeout)

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.server is not None

    @property
    def url(self) -> str | None:
        return self.server.url if self.server else None

    @property
    def sandbox(self) -> Sandbox | None:
        return self.server.sandbox if self.server else None

    def start(self, port: int | None = None, host: str | None = None) -> RunningServer:
        """Bind the intake (on ``port``/``host`` if given); raises PortBusy or StoreError."""
        if self.server is not None:
            raise RuntimeError(f"the intake is already listening on {self.server.url}")
        changes: dict[str, Any] = {}
        if port is not None:
            changes["port"] = port
        if host is not None:
            changes["host"] = host
        if changes:
            self.settings = self.settings.with_(**changes)
        settings = self.settings

        async def go() -> RunningServer:
            server = await start_server(settings)
            server.sandbox.add_listener(self._fan_out)
            return server

        self.server = self.call(go)
        return self.server

    def stop(self, timeout: float = 60) -> None:
        """Stop listening and drain the store; idempotent. Ends the background loop."""
        server, self.server = self.server, None
        if server is not None:
            try:
                self.call(server.stop, timeout=timeout)
            except Exception:
                log.exception("stopping the intake failed")
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)

    # -- listeners ------------------------------------------------------------------------
    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def _fan_out(self, committed) -> None:
        for listener in list(self._listeners):
            try:
                listener(committed)
            except Exception:
                log.exception("intake listener failed")


async def _call(fn: Callable[[], Awaitable[T]]) -> T:
    return await fn()
