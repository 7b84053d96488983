"""Run the intake in a child process, for faces that own the main loop (the TUI).

The face keeps its interpreter lock for key presses and painting; the intake (HTTP, schema
validation, the store writer) runs in ``python -m mpsandbox.intake.child`` with a lock of its
own (see that module for why, and for the line protocol). Faces call the intake through
this class only: start it or move it to another port, hear about committed batches, send an
intent (reset, a change of the overrides or the chaos: the intake commits it through its
single store writer), ask its schema registry, and stop it without losing an acknowledged
event. Plain threads and
subprocesses, no Textual.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import itertools
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mpsandbox import jsonio
from mpsandbox.config import Settings, settings_to_json
from mpsandbox.errors import MpsandboxError, PortBusy
from mpsandbox.store import StoreError

log = logging.getLogger(__name__)

#: How long a starting intake may take to bind and open its store.
START_TIMEOUT = 60.0


@dataclass(slots=True)
class Batch:
    """Committed events the face has not seen yet (or a reset of the store)."""

    events: int = 0
    newest_id: int = 0
    by_verdict: dict[str, int] = field(default_factory=dict)
    reset: bool = False
    #: Not events: a re-validation run finished (its report, as Report.as_dict gives it).
    revalidated: dict[str, Any] | None = None
    #: Not events: the chaos setting changed (ChaosState.as_dict).
    chaos: dict[str, Any] | None = None
    #: Not events: a schema host cannot be reached (the line to show).
    schemas_unreachable: str | None = None
    #: Not events: the store's health changed (store.health.Health.as_dict).
    store: dict[str, Any] | None = None


Listener = Callable[[Batch], None]


class IntakeError(MpsandboxError):
    """The intake process failed in a way that is neither a busy port nor the store."""


class IntakeHost:
    """One intake child process; thread-safe to call from any face thread.

    ``listeners`` are called on the host's reader thread with each committed batch. When
    the port is busy, :meth:`start` raises ``PortBusy`` and the host stays usable: call
    :meth:`start` again with another port.
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self.url: str | None = None
        self.port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._listeners: list[Listener] = []
        self._pending: dict[int, concurrent.futures.Future] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._reader: threading.Thread | None = None
        self._stderr_tail: collections.deque[bytes] = collections.deque(maxlen=200)

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None and self.url is not None

    def start(self, port: int | None = None, host: str | None = None) -> str:
        """Start the intake (on ``port``/``host`` if given) and return its URL once it
        listens. Raises PortBusy, StoreError or IntakeError; blocks up to START_TIMEOUT."""
        if self.running:
            raise RuntimeError(f"the intake is already listening on {self.url}")
        changes: dict[str, Any] = {}
        if port is not None:
            changes["port"] = port
        if host is not None:
            changes["host"] = host
        if changes:
            self.settings = self.settings.with_(**changes)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        proc = subprocess.Popen(
            [sys.executable, "-m", "mpsandbox.intake.child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,  # the terminal's Ctrl-C goes to the face, not the intake
        )
        assert proc.stdin is not None and proc.stdout is not None
        self._stderr_tail = tail = collections.deque(maxlen=200)
        threading.Thread(
            target=_drain, args=(proc.stderr, tail), name="mpsandbox-intake-stderr", daemon=True
        ).start()
        proc.stdin.write(jsonio.dumps(settings_to_json(self.settings)) + b"\n")
        proc.stdin.flush()
        first = _read_line(proc, START_TIMEOUT)
        if first is None or not first.get("ready"):
            self._fail(proc, first)
        self._proc = proc
        self.url, self.port = first["url"], int(first["port"])
        self._reader = threading.Thread(
            target=self._read_loop, args=(proc,), name="mpsandbox-intake-lines", daemon=True
        )
        self._reader.start()
        return self.url

    def _fail(self, proc: subprocess.Popen[bytes], first: dict[str, Any] | None) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        if proc.poll() is None:
            proc.kill()
        first = first or {}
        stderr = b"".join(self._stderr_tail).decode("utf-8", "replace").strip()
        message = first.get("message") or stderr[-2000:]
        if first.get("failed") == "port_busy":
            raise PortBusy(self.settings.host, int(first.get("port") or self.settings.port))
        if first.get("failed") == "store":
            raise StoreError(message, path=str(self.settings.db))
        raise IntakeError(message or f"the intake exited with status {proc.returncode}")

    def stop(self, timeout: float = 60) -> None:
        """Stop listening and drain the store; idempotent."""
        proc, self._proc = self._proc, None
        self.url = None
        if proc is None:
            return
        with contextlib.suppress(OSError, ValueError):
            proc.stdin.close()  # end of input: the child drains and exits
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.error("the intake did not stop within %s s; killing it", timeout)
            proc.kill()
            proc.wait(10)
        if self._reader is not None:
            self._reader.join(5)
        self._fail_pending("the intake stopped")

    # -- intents ----------------------------------------------------------------------------
    def call(self, name: str, **args: Any) -> concurrent.futures.Future:
        """Ask the running intake to do ``name`` (intake/child.py lists them: "reset",
        "stats", "revalidate", "override", "chaos", "resolve", ...). A refusal fails the
        future with IntakeError, worded for people."""
        fut: concurrent.futures.Future = concurrent.futures.Future()
        proc = self._proc
        if proc is None or not self.running:
            fut.set_exception(IntakeError("the intake is not running"))
            return fut
        with self._lock:
            call_id = next(self._ids)
            self._pending[call_id] = fut
            try:
                line = {"id": call_id, "call": name, "args": args}
                proc.stdin.write(jsonio.dumps(line) + b"\n")
                proc.stdin.flush()
            except (OSError, ValueError) as exc:
                self._pending.pop(call_id, None)
                fut.set_exception(IntakeError(f"the intake is gone: {exc}"))
        return fut

    # -- listeners ------------------------------------------------------------------------
    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def _read_loop(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            try:
                msg = jsonio.loads(raw)
            except ValueError:
                continue
            if "reply" in msg:
                with self._lock:
                    fut = self._pending.pop(msg.get("reply"), None)
                if fut is not None:
                    if "error" in msg:
                        fut.set_exception(IntakeError(msg["error"]))
                    else:
                        fut.set_result(msg.get("result"))
                continue
            if msg.get("reset"):
                batch = Batch(reset=True)
            elif "revalidated" in msg:
                batch = Batch(revalidated=dict(msg["revalidated"]))
            elif "chaos" in msg:
                batch = Batch(chaos=dict(msg["chaos"]))
            elif "schemas_unreachable" in msg:
                batch = Batch(schemas_unreachable=str(msg["schemas_unreachable"]))
            elif "store" in msg:
                batch = Batch(store=dict(msg["store"]))
            elif "committed" in msg:
                batch = Batch(
                    events=int(msg["committed"]),
                    newest_id=int(msg.get("newest") or 0),
                    by_verdict=dict(msg.get("by_verdict") or {}),
                )
            else:
                continue
            for listener in list(self._listeners):
                try:
                    listener(batch)
                except Exception:
                    log.exception("intake listener failed")
        self._fail_pending("the intake exited")

    def _fail_pending(self, why: str) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(IntakeError(why))


def _drain(stream, tail: collections.deque) -> None:
    """Keep the child's stderr flowing (a full pipe would stall it) and its last lines."""
    with contextlib.suppress(OSError, ValueError):
        for line in stream:
            tail.append(line)


def _read_line(proc: subprocess.Popen[bytes], timeout: float) -> dict[str, Any] | None:
    """The child's first line, or None if it exited (or said nothing) in time."""
    box: list[bytes] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not box or not box[0]:
        return None
    try:
        return jsonio.loads(box[0])
    except ValueError:
        return None
