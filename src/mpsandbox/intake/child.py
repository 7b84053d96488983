"""The intake as a child process of a face (the TUI), speaking JSON lines on stdio.

Why a process and not a thread: on two cores, an intake thread and a UI thread fight over
one interpreter lock, and both lose (the UI answered keys in ~300 ms at p95 and the intake
committed half of 2,000 events/s). As a child the intake has a lock of its own, and the face
only reads the store and a few summary lines.

Protocol (one JSON object per line):

- stdin, first line: the settings (``config.settings_to_json``); then commands
  ``{"id": N, "call": NAME, "args": {...}}``, NAME one of ``reset``, ``load_errors``,
  ``stats``, ``revalidate``; the schema questions a face asks of the intake's registry (one
  registry per running sandbox): ``schema_sources``, ``resolve`` (``{"uri": ...}``) and
  ``working_copy`` (``{"event_id": N}``); ``override`` (``{"change": "set", "args": [...]}``: one change
  of the overrides, see ``Sandbox.change_overrides``) and ``chaos`` (``{"spec": ...}``):
  the face's writes go through the intake's single store writer, never a connection of its
  own. End of input (the parent quit or died) stops the intake after every acknowledged
  event is written.
- stdout: ``{"ready": true, "url": ..., "port": ...}`` or
  ``{"failed": "port_busy" | "store", "message": ..., "port": ...}`` (then exit 2); after
  that ``{"committed": n, "newest": id, "by_verdict": {...}}`` per committed batch,
  ``{"reset": true}`` after a reset, ``{"chaos": {...}}`` when the chaos setting changed
  (``ChaosState.as_dict``; any process may change it, the intake notices within a second),
  ``{"schemas_unreachable": line}`` once when a schema host cannot be reached, and
  ``{"reply": N, "result": ...}`` or
  ``{"reply": N, "error": ...}`` for commands (a refused intent's error is its message as
  the person should read it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

from mpsandbox import jsonio
from mpsandbox.chaos import parse_spec
from mpsandbox.config import settings_from_json
from mpsandbox.errors import MpsandboxError
from mpsandbox.platform.stream_configs import StreamConfigError
from mpsandbox.sandbox import Committed, Sandbox
from mpsandbox.schemas.catalog import describe_sources
from mpsandbox.schemas.remote import HEALTH, unreachable_line
from mpsandbox.store import StoreError

if TYPE_CHECKING:
    from mpsandbox.intake.server import RunningServer

#: How much lower than the face the intake and its store process run (nice(2) steps).
INTAKE_NICENESS = 5


class _Out:
    """Line-at-a-time writer; a parent that went away must not stop the intake."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.broken = False

    def send(self, obj: dict[str, Any]) -> None:
        if self.broken:
            return
        line = jsonio.dumps_str(obj) + "\n"
        with self._lock:
            try:
                sys.stdout.write(line)
                sys.stdout.flush()
            except (BrokenPipeError, OSError, ValueError):
                self.broken = True


def _summary(committed: list[Committed]) -> dict[str, Any]:
    if not committed:
        return {"reset": True}
    by_verdict: dict[str, int] = {}
    for c in committed:
        by_verdict[c.record.verdict] = by_verdict.get(c.record.verdict, 0) + 1
    return {
        "committed": len(committed),
        "newest": max(c.event_id for c in committed),
        "by_verdict": by_verdict,
    }


async def _call(server: RunningServer, name: str, args: dict[str, Any]) -> Any:
    sandbox = server.sandbox
    if name == "revalidate":
        titles = args.get("titles")
        limit = args.get("limit", "default")
        report = await sandbox.revalidate(titles=titles, limit=limit, trigger="asked")
        return report.as_dict()
    if name == "reset":
        await sandbox.reset()
        return True
    if name == "load_errors":
        return dict(sandbox.registry.load_errors)
    if name == "schema_sources":
        return await asyncio.to_thread(describe_sources, sandbox.registry)
    if name == "resolve":
        res = await asyncio.to_thread(sandbox.registry.resolve, str(args.get("uri")))
        return res.probe()
    if name == "working_copy":
        return await sandbox.judge_by_working_copy(int(args["event_id"]))
    if name == "stats":
        return sandbox.writer.stats()
    if name == "override":
        return await sandbox.change_overrides(
            str(args.get("change")), *(args.get("args") or ()), set_by="tui"
        )
    if name == "chaos":
        return await sandbox.set_chaos(parse_spec(str(args.get("spec"))), "tui")
    raise ValueError(f"unknown call {name!r}")


async def _serve(out: _Out, first: bytes) -> int:
    """Serve with the settings line ``first`` (read before any thread started)."""
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[bytes] = asyncio.Queue()

    def read_stdin() -> None:
        for raw in sys.stdin.buffer:
            loop.call_soon_threadsafe(lines.put_nowait, raw)
        loop.call_soon_threadsafe(lines.put_nowait, b"")

    try:
        settings = settings_from_json(jsonio.loads(first))
    except (ValueError, TypeError) as exc:
        out.send({"failed": "settings", "message": f"bad settings: {exc}"})
        return 2
    try:
        sandbox = Sandbox(settings)
        # Forked while this is the only thread (a spawned one imports everything again),
        # the store process opens the database while the intake's server is imported.
        sandbox.begin_start()
    except OSError as exc:
        out.send({"failed": "store", "message": str(exc)})
        return 2
    from mpsandbox.intake.server import PortBusy, start_server

    threading.Thread(target=read_stdin, name="mpsandbox-intake-stdin", daemon=True).start()
    try:
        server = await start_server(settings, sandbox)
    except PortBusy as exc:
        out.send({"failed": "port_busy", "message": str(exc), "port": exc.port})
        return 2
    except (StoreError, OSError) as exc:
        out.send({"failed": "store", "message": str(exc)})
        return 2
    except StreamConfigError as exc:
        out.send({"failed": "stream_config", "message": f"stream config {exc}"})
        return 2
    server.pace_collections()
    server.sandbox.add_listener(lambda committed: out.send(_summary(committed)))
    server.sandbox.add_revalidation_listener(
        lambda report: out.send({"revalidated": report.as_dict()})
    )
    server.sandbox.add_chaos_listener(lambda state: out.send({"chaos": state.as_dict()}))
    HEALTH.add_listener(
        lambda host, _failure: out.send(
            {"schemas_unreachable": unreachable_line(host, settings.cache_dir)}
        )
    )
    server.sandbox.add_store_listener(lambda health: out.send({"store": health.as_dict()}))
    out.send({"ready": True, "url": server.url, "port": server.port, "db": str(settings.db)})

    stop = asyncio.Event()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGTERM, stop.set)

    async def answer(raw: bytes) -> None:
        msg: Any = None
        try:
            msg = jsonio.loads(raw)
            reply: dict[str, Any] = {"reply": msg.get("id")}
            reply["result"] = await _call(server, str(msg.get("call")), msg.get("args") or {})
        except Exception as exc:  # a bad command gets an answer, never a crash
            reply = {"reply": msg.get("id") if isinstance(msg, dict) else None}
            worded = isinstance(exc, MpsandboxError)  # already in the person's words
            reply["error"] = str(exc) if worded else f"{type(exc).__name__}: {exc}"
        out.send(reply)

    async def commands() -> None:
        # Each command its own task: a long re-validation must not hold up a reset or stats.
        running: set[asyncio.Task] = set()
        while True:
            raw = await lines.get()
            if not raw:
                stop.set()
                return
            task = asyncio.create_task(answer(raw))
            running.add(task)
            task.add_done_callback(running.discard)

    reader = asyncio.create_task(commands())
    await stop.wait()
    reader.cancel()
    await server.stop()
    return 0


def main() -> None:
    # The parent owns the terminal: Ctrl-C there must not kill the intake before it has
    # drained; the parent asks it to stop by closing stdin.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The face the user types into comes first when the cores are busy: a key press waits
    # for a CPU at most one scheduler slice, while the intake only answers a little later.
    with contextlib.suppress(OSError, AttributeError):
        os.nice(INTAKE_NICENESS)
    sys.setswitchinterval(0.0005)
    out = _Out()
    first = sys.stdin.buffer.readline()  # the settings, before any thread starts
    try:
        import uvloop

        code = uvloop.run(_serve(out, first))
    except ImportError:
        code = asyncio.run(_serve(out, first))
    sys.exit(code)


if __name__ == "__main__":
    main()
