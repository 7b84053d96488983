"""Run the intake headless: bind, announce, print each event, and shut down without loss.

On SIGINT/SIGTERM the listener closes first, in-flight requests finish, and then the store
writer drains its queue, so every acknowledged event is on disk before the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import signal
import sys
import time
from collections.abc import Callable
from typing import TextIO

from aiohttp import web

from mpsandbox import fieldmap, jsonio
from mpsandbox.chaos import ChaosState, warning_line
from mpsandbox.config import Settings
from mpsandbox.errors import PortBusy  # here too: where the intake's callers look for it
from mpsandbox.intake.app import make_app
from mpsandbox.records import INVALID, LEGACY, VALID
from mpsandbox.sandbox import Committed, Sandbox
from mpsandbox.schemas.remote import HEALTH, unreachable_line
from mpsandbox.store.health import Health


class RunningServer:
    """A started intake: the sandbox, the aiohttp runner and the bound address."""

    def __init__(self, sandbox: Sandbox, runner: web.AppRunner, host: str, port: int):
        self.sandbox, self.runner, self.host, self.port = sandbox, runner, host, port
        self._gc_stop: asyncio.Event | None = None
        self._gc_task: asyncio.Task | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        if self._gc_stop is not None:
            self._gc_stop.set()
            await self._gc_task
        await self.runner.cleanup()
        await self.sandbox.close()

    def pace_collections(self) -> None:
        """Own this process's full garbage collections (gc_pacing.py): for a process that
        is only this intake (serve, the TUI's intake child), never for a library user."""
        from mpsandbox.intake.gc_pacing import big_batch_turn, pace_collections

        self.sandbox.on_big_turn = big_batch_turn
        self._gc_stop = asyncio.Event()
        self._gc_task = asyncio.create_task(
            pace_collections(lambda: self.sandbox.busy_with_big_batches, self._gc_stop),
            name="gc-pacing",
        )


async def start_server(settings: Settings, sandbox: Sandbox | None = None) -> RunningServer:
    """Start the intake on settings.host:port (port 0 picks a free one)."""
    sandbox = sandbox or Sandbox(settings)
    await sandbox.load_stream_configs()  # a bad --stream-config fails before anything opens
    sandbox.start()
    app = make_app(sandbox)
    runner = web.AppRunner(
        app,
        auto_decompress=False,
        access_log=None,
        handle_signals=False,
        shutdown_timeout=10,
        # A connection without a complete request this long is closed (slow_clients.py).
        keepalive_timeout=settings.read_timeout,
    )
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, backlog=1024, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        await sandbox.close()
        if exc.errno in (errno.EADDRINUSE, errno.EACCES) or "address already in use" in str(exc):
            raise PortBusy(settings.host, settings.port) from None
        raise
    port = settings.port
    server = getattr(site, "_server", None)
    if server is not None and server.sockets:
        port = server.sockets[0].getsockname()[1]
    await sandbox.start_watching()
    return RunningServer(sandbox, runner, settings.host, port)


def event_line(c: Committed) -> str:
    """One compact, human line per stored event."""
    r = c.record
    clock = time.strftime("%H:%M:%S", time.localtime(r.received_at))
    badge = {VALID: "ok     ", INVALID: "INVALID", LEGACY: "legacy "}.get(r.verdict, "ERROR  ")
    action = fieldmap.indexed(r.received).action
    action = f" {action}" if action else ""
    schema = r.schema_uri or "-"
    line = f"{clock} {badge} #{c.event_id} {r.stream or '-'}{action} {schema}"
    if r.verdict == INVALID:
        line += f"  {r.errors_text}"
    elif r.message:
        line += f"  {r.message}"
    return line


def event_json(c: Committed) -> str:
    r = c.record
    return jsonio.dumps_str(
        {
            "id": c.event_id,
            "request": c.request_id,
            "received_at": r.received_at,
            "verdict": r.verdict,
            "stream": r.stream,
            "schema": r.schema_uri,
            "errors": r.errors,
            "message": r.message,
            "fills": sorted(r.fills),
        }
    )


def make_printer(out: TextIO, jsonl: bool) -> Callable[[list[Committed]], None]:
    fmt = event_json if jsonl else event_line

    def printer(committed: list[Committed]) -> None:
        try:
            for c in committed:
                # a lone surrogate (see jsonio) has no encoding: shown as its escape
                out.write(jsonio.escape_lone_surrogates(fmt(c)) + "\n")
            out.flush()
        except (BrokenPipeError, ValueError):
            pass  # a closed stdout must not stop the intake

    return printer


def _say(out: TextIO, jsonl: bool, quiet: bool, obj: dict, words: str) -> None:
    """A state change, said once: the words on the output in text mode; in JSON lines mode
    ``obj`` as a line there and the words on stderr; with ``quiet`` (``--output none``) the
    words on stderr only. A closed output must not stop the intake."""
    try:
        if jsonl and not quiet:
            out.write(jsonio.dumps_str(obj) + "\n")
            out.flush()
        target = sys.stderr if jsonl or quiet else out
        target.write(words + "\n")
        target.flush()
    except (BrokenPipeError, ValueError):
        pass


def _store_announcer(out: TextIO, jsonl: bool) -> Callable[[Health], None]:
    """Say when the store stops (or starts again) being writable: in text mode a line on
    the output; in JSON lines mode a ``{"store": ...}`` line there and the words on stderr,
    even with ``--output none`` (a script waiting on the output must hear of it)."""

    def announce(health: Health) -> None:
        words = (
            "mpsandbox: the store takes writes again; events are acknowledged"
            if health.ok
            else f"mpsandbox STORE {health.state.upper()}: {health.detail}"
        )
        _say(out, jsonl, False, {"store": health.as_dict()}, words)

    return announce


def _chaos_announcer(out: TextIO, jsonl: bool, quiet: bool, db) -> Callable[[ChaosState], None]:
    """Say loudly that chaos is on (at start, and at every change), as _say does, with a
    ``{"chaos": ...}`` line in JSON lines mode."""

    def announce(state: ChaosState) -> None:
        _say(out, jsonl, quiet, {"chaos": state.as_dict()}, warning_line(state, db))

    return announce


def _unreachable_announcer(out: TextIO, jsonl: bool, quiet: bool, settings: Settings):
    """Say once per outage that a schema host cannot be reached (not once per event), as
    _say does, with a ``{"schemas_unreachable": ...}`` line in JSON lines mode."""

    def announce(host: str) -> None:
        line = "mpsandbox: " + unreachable_line(host, settings.cache_dir)
        _say(out, jsonl, quiet, {"schemas_unreachable": {"host": host, "message": line}}, line)

    return announce


async def serve_forever(
    settings: Settings,
    *,
    out: TextIO = sys.stdout,
    jsonl: bool | None = None,
    ready: Callable[[RunningServer], None] | None = None,
    quiet: bool = False,
    sandbox: Sandbox | None = None,
) -> int:
    if jsonl is None:
        jsonl = not out.isatty()
    server = await start_server(settings, sandbox)
    server.pace_collections()
    if not quiet:
        server.sandbox.add_listener(make_printer(out, jsonl))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    paths = ", ".join(server.url + p for p in settings.intake_paths)
    if jsonl:
        out.write(
            jsonio.dumps_str(
                {
                    "ready": True,
                    "url": server.url,
                    "intake": [server.url + p for p in settings.intake_paths],
                    "beacon": [server.url + p for p in settings.beacon_paths],
                    "db": str(settings.db),
                }
            )
            + "\n"
        )
    else:
        beacons = ", ".join(server.url + p for p in settings.beacon_paths)
        out.write(
            f"mpsandbox ready: intake {paths}, legacy beacons {beacons}  "
            f"(db {settings.db}; Ctrl-C to stop)\n"
        )
    out.flush()
    announce = _chaos_announcer(out, jsonl, quiet, settings.db)
    if server.sandbox.chaos_state.on:
        announce(server.sandbox.chaos_state)
    server.sandbox.add_chaos_listener(
        lambda state: loop.call_soon_threadsafe(announce, state)  # heard on a poll thread
    )
    unreachable = _unreachable_announcer(out, jsonl, quiet, settings)

    def heard(host: str, _failure) -> None:  # on whichever thread fetched
        loop.call_soon_threadsafe(unreachable, host)

    HEALTH.add_listener(heard)
    server.sandbox.add_store_listener(_store_announcer(out, jsonl))
    failed: list[str] = []

    def fail_for_good(health: Health) -> None:
        if health.state == "failed":  # the store process could not be restarted
            failed.append(health.detail or "the store failed")
            stop.set()

    server.sandbox.add_store_listener(fail_for_good)
    if ready:
        ready(server)
    await stop.wait()
    HEALTH.remove_listener(heard)
    await server.stop()
    if failed:
        sys.stderr.write(f"mpsandbox: stopping: {failed[0]}\n")
        return 1
    stats = server.sandbox.writer.stats()
    msg = f"mpsandbox stopped; {stats.get('committed_events', '?')} events stored this run\n"
    if jsonl:
        sys.stderr.write(msg)
    else:
        out.write(msg)
    return 0
