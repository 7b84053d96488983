"""The single writer, in its own process.

A writer thread shares the interpreter lock with the event loop: under load the loop's
Python work (parsing, validating, answering) starves the thread between SQLite calls, and
measured commit throughput fell five-fold. A child process has its own interpreter, so
SQLite gets a core of its own while the intake keeps the other.

The parent encodes rows (cheap, and it needs the indexed fields anyway), sends them over a
pipe, and resolves each request's future when the child reports the COMMIT. The hand-off is
batched at every step, because per-request hand-offs between threads (a condition variable's
notify, then a wait for the interpreter lock) once cost more than the writing: the writes
an event-loop iteration queued go as one pickled message, written straight into a
non-blocking pipe (_Sender); the child takes whatever the pipe holds, commits it and answers
it in one message; the parent's reader thread resolves the futures of a commit with one
call into their loop (_hand_over). The child drives an ordinary `StoreWriter` from its one
thread (`start_inline`), so transactions, group commit, retention and error wording are the
same code either way. The child ignores SIGINT/SIGTERM (a Ctrl-C reaches the whole process
group) and stops only when told to or when the parent's end of the pipe closes, draining
its queue first in both cases: an acknowledged event is always on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import gc
import itertools
import logging
import multiprocessing
import os
import pickle
import select
import signal
import struct
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from pathlib import Path
from typing import Any, TypeVar

from ..records import EventRecord, RequestRecord
from .database import DEFAULT_BUSY_TIMEOUT, StoreError
from .writer import (
    MAX_PENDING_NOTES,
    NOTE_BODY_LIMIT,
    BacklogFull,
    StoreWriter,
    encode_event,
    encode_request,
)

T = TypeVar("T")

log = logging.getLogger(__name__)


#: Linux's fcntl to resize a pipe; a bigger pipe takes a burst of batches without the
#: sender ever needing its thread.
_F_SETPIPE_SZ = 1031
_PIPE_SIZE = 1 << 20
_HEADER = struct.Struct("!i")
#: The rows of a write whose events came before it in slices ("p" messages).
_PARTS = "parts"
_BIG_HEADER = struct.Struct("!iQ")
#: Seconds without a write after which the store process counts as idle and indexes the
#: free text of what it committed (see StoreWriter.index_behind): a burst of writes is
#: acknowledged without waiting for, or sharing its core with, the tokenizer.
INDEX_IDLE = 0.1


def _frame(items: list[tuple]) -> bytes:
    """``items`` as ``multiprocessing.Connection.recv`` reads them: a length, then a pickle."""
    data = pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL)
    if len(data) > 0x7FFFFFFF:
        return _BIG_HEADER.pack(-1, len(data)) + data
    return _HEADER.pack(len(data)) + data


class _Sender:
    """Messages for the store process, written by whoever sends them, without waiting.

    The write end of the pipe is non-blocking: a message goes straight into the pipe (one
    write call, no other thread woken), and only what does not fit (the store process is
    behind by a megabyte) is kept, in order, for a thread that writes it once the pipe has
    room. The event loop never blocks on the pipe, and the common case costs no thread
    hand-off: waking a thread per message (a condition variable's notify, then its wait
    for the interpreter lock) was a sixth of the intake's time under load.
    """

    def __init__(self, conn: Any, on_error: Callable[[BaseException], None]) -> None:
        self._conn = conn  # kept open as long as this sender
        self._fd = conn.fileno()
        os.set_blocking(self._fd, False)
        with contextlib.suppress(OSError):
            fcntl.fcntl(self._fd, _F_SETPIPE_SZ, _PIPE_SIZE)
        self._on_error = on_error
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._backlog = bytearray()
        self._broken = False
        self._closed = False
        self._thread: threading.Thread | None = None

    def send(self, frame: bytes) -> None:
        failed = None
        with self._lock:
            if self._broken or self._closed:
                return
            view = memoryview(frame)
            if not self._backlog:
                try:
                    view = view[os.write(self._fd, view) :]
                except BlockingIOError:
                    pass
                except OSError as exc:
                    self._broken, failed = True, exc
                if failed is None and not view:
                    return
            if failed is None:
                self._backlog += view
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._drain, name="mpsandbox-store-pipe", daemon=True
                    )
                    self._thread.start()
                self._room.notify()
        if failed is not None:
            self._on_error(failed)

    def _drain(self) -> None:
        """Write the backlog as the pipe makes room (the thread of a full pipe)."""
        while True:
            with self._lock:
                while not self._backlog and not self._closed and not self._broken:
                    self._room.wait()
                if not self._backlog or self._broken:
                    self._room.notify_all()
                    return
            with contextlib.suppress(OSError, ValueError):
                select.select([], [self._fd], [], 0.5)
            failed = None
            with self._lock:
                try:
                    del self._backlog[: os.write(self._fd, self._backlog)]
                except BlockingIOError:
                    pass
                except OSError as exc:
                    self._broken, failed = True, exc
                    self._backlog.clear()
                if not self._backlog:
                    self._room.notify_all()
            if failed is not None:
                self._on_error(failed)
                return

    def close(self, timeout: float | None = 30) -> None:
        """Write what is kept (up to ``timeout`` seconds), then stop; the pipe stays open
        until the connection is closed (a store process reads to the end first)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self._backlog and not self._broken:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._room.wait(remaining)
            self._closed = True
            self._room.notify_all()


def _child_main(
    conn: Any, send_conn: Any, parent_ends: tuple[Any, ...], path: str, options: dict[str, Any]
) -> None:
    """Entry point of the store process: reads ``conn``, answers on ``send_conn``.

    One thread does everything, in rounds: take every message the pipe holds (lingering a
    moment for more when busy, as the writer thread would), write them in group commits,
    answer them all in one message. A reader thread, a writer thread and an answering
    thread cost three hand-offs of the interpreter lock per request."""
    # A forked child shares the intake's objects until it touches them; its garbage
    # collections would walk (and so copy) every one of them: 100 ms of a start-up.
    # Freezing here is a constant-time move of the inherited objects out of collection.
    gc.freeze()
    # A forked child inherits the intake's ends of the pipes; holding the write end open
    # would hide the intake's death (no EOF), leaving this process behind forever.
    for end in parent_ends:
        end.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    answers: list[tuple] = []
    send = answers.append

    def answer() -> None:
        if answers:
            send_conn.send(answers[:])
            answers.clear()

    # The parent holds all the backlog accounting; the child must never refuse.
    writer = StoreWriter(path, max_backlog_events=1 << 62, **options)
    try:
        writer.start_inline()
    except StoreError as exc:
        send(("error", str(exc), exc.kind))
        answer()
        return
    except Exception as exc:  # pragma: no cover - a bug, but say so rather than hang
        send(("error", f"the store could not start: {exc}", "other"))
        answer()
        return
    send(("ready", os.getpid()))
    answer()

    def done(token: int, result: Any, exc: BaseException | None) -> None:
        if exc is None:
            send(("ok", token, result))
        elif isinstance(exc, StoreError):
            send(("err", token, str(exc), exc.kind))
        else:
            send(("err", token, f"{type(exc).__name__}: {exc}", "other"))

    def reply(token: int, fut: Future) -> None:
        exc = fut.exception()
        done(token, None if exc is not None else fut.result(), exc)

    calls = {
        "reset": writer.reset,
        "flush": writer.flush,
        "retention": writer.run_retention,
        # a picklable fn(connection) (a module-level function or a partial of one)
        "call": writer.run_in_writer,
    }

    parts: dict[int, list] = {}

    def take(batch: list[tuple]) -> bool:
        return any(_handle(msg, writer, calls, send, reply, done, parts) for msg in batch)

    stop = False
    try:
        while not stop:
            wait = writer.inline_wait()
            if writer.index_pending():
                wait = INDEX_IDLE if wait is None else min(wait, INDEX_IDLE)
            if not conn.poll(wait):
                # Nothing came for a while: the free-text index catches up, a chunk at a
                # time while nothing comes; then retention, if due.
                while not conn.poll(0) and writer.index_behind():
                    pass
                writer.work_inline()
                continue
            stop = take(conn.recv())
            # Whatever else is waiting joins this round's commits; a busy writer lingers
            # for a bigger batch, never past its batch size.
            deadline = time.monotonic() + writer.inline_linger()
            while not stop and writer.queued_events < writer.batch_events:
                if not conn.poll(max(0.0, deadline - time.monotonic())):
                    break
                stop = take(conn.recv())
                if writer.queued_events >= writer.linger_events:
                    deadline = 0.0
            writer.work_inline()
            answer()
            # Writes keep coming: the free-text index waits, unless MAX_BEHIND events do.
            while writer.index_behind(busy=True):
                pass
    except (EOFError, OSError):
        pass  # the parent is gone: write what is queued and stop
    finally:
        with contextlib.suppress(Exception):
            writer.close_inline()
        send(("closed", writer.stats()))
        with contextlib.suppress(OSError, ValueError):
            answer()


def _handle(
    msg: tuple, writer: StoreWriter, calls: dict, send: Any, reply: Any, done: Any, parts: dict
) -> bool:
    """Act on one message from the intake process; True when told to stop. ``parts``
    holds the rows of big writes sent in slices ("p"), until their "w" (or "drop")."""
    kind = msg[0]
    if kind == "p":
        parts.setdefault(msg[1], []).extend(msg[2])
    elif kind == "drop":
        parts.pop(msg[1], None)
    elif kind == "w":
        _, token, request_row, event_rows = msg
        if event_rows == _PARTS:
            event_rows = parts.pop(token, [])
        writer.submit_rows_then(request_row, event_rows, functools.partial(done, token))
    elif kind in calls:
        token, args = msg[1], msg[2:]
        try:
            calls[kind](*args).add_done_callback(lambda f, t=token: reply(t, f))
        except StoreError as exc:
            send(("err", token, str(exc), exc.kind))
    elif kind == "stats":
        send(("ok", msg[1], writer.stats()))
    elif kind == "close":
        return True
    return False


@contextlib.contextmanager
def _real_stdio():
    """Start the store child cleanly: real stdout/stderr, and no re-run of ``__main__``.

    A TUI replaces ``sys.stderr`` with an object whose ``fileno()`` is not a descriptor;
    multiprocessing hands that number to the spawned child (and its resource tracker) and
    fails with "bad value(s) in fds_to_keep".
    """
    saved = sys.stdout, sys.stderr
    # The child needs only mpsandbox's modules; without this, spawn re-runs the parent's
    # main script in the child (a benchmark, a test runner, a user's script) first.
    main = sys.modules.get("__main__")
    hidden = {}
    if main is not None:
        if "__file__" in main.__dict__:
            hidden["__file__"] = main.__dict__.pop("__file__")
        hidden["__spec__"] = main.__dict__.get("__spec__")
        main.__dict__["__spec__"] = None
    swap = []
    for name, real in (("stdout", sys.__stdout__), ("stderr", sys.__stderr__)):
        try:
            ok = getattr(sys, name).fileno() >= 0
        except (AttributeError, OSError, ValueError):
            ok = False
        if not ok and real is not None:
            swap.append((name, real))
    for name, real in swap:
        setattr(sys, name, real)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
        if main is not None:
            main.__dict__.update(hidden)


def _hand_over(settled: list[tuple[Any, Any, bool]]) -> None:
    """Resolve asyncio futures on their loops: one thread-safe call per loop, not per future."""
    by_loop: dict[Any, list[tuple[Any, Any, bool]]] = {}
    for item in settled:
        by_loop.setdefault(item[0].get_loop(), []).append(item)
    for loop, items in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
            loop.call_soon_threadsafe(_resolve_all, items)


def _resolve_all(items: list[tuple[Any, Any, bool]]) -> None:
    for fut, value, failed in items:
        if fut.done():  # the caller gave up (client went away); the data is still written
            continue
        if failed:
            fut.set_exception(value)
        else:
            fut.set_result(value)


class ProcessStoreWriter:
    """`StoreWriter`'s interface, with the writing done by a child process."""

    def __init__(
        self,
        path: str | Path,
        *,
        max_backlog_events: int = 100_000,
        retention: tuple[int | None, float | None] | None = None,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        pragmas: dict[str, Any] | None = None,
        max_pending_notes: int = MAX_PENDING_NOTES,
    ) -> None:
        self.path = str(path)
        self.max_backlog_events = max_backlog_events
        self.max_pending_notes = max_pending_notes
        self._options: dict[str, Any] = {"retention": retention, "busy_timeout": busy_timeout}
        if pragmas:
            self._options["pragmas"] = dict(pragmas)
        self._lock = threading.Lock()
        self._tokens = itertools.count(1)
        #: token -> (future, events it holds, "write" | "note" | "call")
        self._pending: dict[int, tuple[Future, int, str]] = {}
        self._pending_events = 0
        self._pending_notes = 0
        self._committed_requests = 0
        self._committed_events = 0
        self._failed_writes = 0
        self._dropped_notes = 0
        self._closing = False
        self._dead: StoreError | None = None
        self._proc: Any = None
        self._conn: Any = None
        self._sender: _Sender | None = None
        #: Messages not yet handed to the sender; written together (see _send).
        self._queued: list[tuple] = []
        #: Held while one caller pickles and writes what is queued, so what one thread
        #: queued is written in the order it was queued.
        self._flushing = threading.Lock()
        self._flush_due = False
        self._reader: threading.Thread | None = None
        self._closed = threading.Event()
        self._final_stats: dict[str, Any] | None = None
        self.last_error: StoreError | None = None
        #: The failure of the latest write, None once one succeeds (a full disk that has
        #: space again, a lock released): what readiness reports.
        self.write_error: StoreError | None = None
        #: Which store process is current: messages and failures of an older one are stale.
        self._generation = 0
        self._restarter: threading.Thread | None = None
        #: Store processes started again after one died.
        self.restarts = 0
        #: Set when a dead store process could not be restarted: nothing can be stored
        #: until mpsandbox is restarted. ``on_fatal(error)`` is called once, from a thread.
        self.fatal: StoreError | None = None
        self.on_fatal: Any = None
        #: A store process begun (begin_start) that start() has not yet waited for.
        self._spawned: tuple[Any, Any, Any] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the store process and wait until it has opened (and migrated) the
        database; after begin_start(), only wait."""
        spawned, self._spawned = self._spawned, None
        self._wire(*(spawned or self._spawn()))

    def begin_start(self) -> None:
        """Start the store process and return at once: it opens and migrates the database
        while the caller goes on (`serve` imports the intake meanwhile); start() waits."""
        if self._spawned is None:
            self._spawned = self._spawn()

    def _launch(self) -> None:
        """Start a store process on the database and wire it up; raise StoreError."""
        self._wire(*self._spawn())

    def _spawn(self) -> tuple[Any, Any, Any]:
        """The store process, started: (process, the end it answers on, the end to it)."""
        # fork is instant and safe while this is the only thread; otherwise spawn.
        method = "fork" if threading.active_count() == 1 and os.name == "posix" else "spawn"
        ctx = multiprocessing.get_context(method)
        # One pipe each way: the intake's write end is non-blocking (_Sender) while its
        # read end blocks in the reader thread, which one duplex socket could not do.
        child_in, to_child = ctx.Pipe(duplex=False)
        parent, child_out = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=_child_main,
            args=(child_in, child_out, (to_child, parent), self.path, self._options),
            name="mpsandbox-store",
            daemon=True,
        )
        with _real_stdio():
            proc.start()
        child_in.close()
        child_out.close()
        return proc, parent, to_child

    def _wire(self, proc: Any, parent: Any, to_child: Any) -> None:
        """Wait for a started store process's first word and wire it up; raise StoreError."""
        if not parent.poll(60):
            proc.kill()
            to_child.close()
            raise StoreError(
                f"The store process for {self.path} did not start", path=self.path, kind="timeout"
            )
        try:
            msg = parent.recv()[0]
        except (EOFError, OSError, IndexError):
            proc.join(5)
            to_child.close()
            raise StoreError(
                f"The store process for {self.path} exited while starting "
                f"(exit code {proc.exitcode})",
                path=self.path,
                kind="other",
            ) from None
        if msg[0] == "error":
            proc.join(5)
            to_child.close()
            raise StoreError(msg[1], path=self.path, kind=msg[2])
        with self._lock:
            self._generation += 1
            generation = self._generation
            old = self._sender
            self._proc, self._conn = proc, parent
            self._sender = _Sender(
                to_child, on_error=lambda exc: self._send_failed(exc, generation)
            )
            # Queued for a process that died: their futures have failed already.
            self._queued = []
            self._dead = None
        if old is not None:
            old.close(0)  # a dead process's
        self._reader = threading.Thread(
            target=self._read_loop,
            args=(parent, proc, generation),
            name="mpsandbox-store-acks",
            daemon=True,
        )
        self._reader.start()

    def close(self, timeout: float | None = 30) -> None:
        with self._lock:
            if self._closing:
                already = True
            else:
                already = False
                self._closing = True
            restarting = self._restarter
        if restarting is not None:
            restarting.join(timeout)
        if self._spawned is not None:  # begun, never waited for: the end of input stops it
            proc, parent, to_child = self._spawned
            self._spawned = None
            to_child.close()
            proc.join(timeout)
            parent.close()
        if self._proc is None:
            return
        if not already and self._dead is None:
            self._send(("close",))
            self._closed.wait(timeout)
        self._flush()
        if self._sender is not None:
            self._sender.close(5)
        self._proc.join(timeout)
        if self._proc.is_alive():
            self._proc.kill()
            raise StoreError(
                f"The store process for {self.path} did not finish within {timeout} s",
                path=self.path,
                kind="timeout",
            )

    @property
    def running(self) -> bool:
        return (
            self._proc is not None
            and self._proc.is_alive()
            and not self._closing
            and self._dead is None
        )

    @property
    def state(self) -> str:
        """ "ok", "restarting" (the store process died; a new one is being started),
        "failed" (it could not be restarted: see `fatal`) or "closed"."""
        if self.fatal is not None:
            return "failed"
        if self._closing:
            return "closed"
        return "ok" if self._dead is None else "restarting"

    # -- submitting ------------------------------------------------------------------------

    def reserve_ok(self, n: int) -> bool:
        """Room in the backlog? A dead store process is no full backlog: submitting then
        raises its StoreError, so the client hears "store error", not "retry in a second"."""
        with self._lock:
            return not self._closing and self._pending_events + n <= self.max_backlog_events

    def submit(self, request: RequestRecord, events: list[EventRecord]) -> Future:
        fut: Future = Future()
        self._enqueue_write(request, events, fut)
        return fut

    def submit_async(
        self, request: RequestRecord, events: list[EventRecord]
    ) -> asyncio.Future[tuple[int, list[int]]]:
        """`submit` for a caller on an event loop: returns a future of the running loop.

        The acknowledgements of one commit arrive together; their futures are resolved by
        one hop to the loop instead of one thread-safe call per request, which is most of
        what a request cost the event loop beyond its own work."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._enqueue_write(request, events, fut, loop=loop)
        return fut

    async def submit_async_sliced(
        self, request: RequestRecord, events: list[EventRecord]
    ) -> asyncio.Future[tuple[int, list[int]]]:
        """`submit_async` for a big batch: its events are encoded and sent to the store
        process a slice at a time, with the event loop free in between (slicing.py). As one
        message, 10,000 realistic events held the loop ~80 ms (pickling 26 MB, writing it)."""
        from mpsandbox.slicing import map_in_slices

        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        n = len(events)
        request_row = self._encode(lambda: encode_request(request, n))
        token, generation = self._reserve(fut, n)

        def send(start: int, end: int) -> list[Any]:
            rows = self._encode(lambda: [encode_event(e) for e in events[start:end]])
            with self._lock:
                if generation != self._generation or token not in self._pending:
                    raise self._dead or self._died("it was replaced", generation)
                sender = self._sender
            if sender is not None:
                sender.send(_frame([("p", token, rows)]))
            return []

        try:
            await map_in_slices(n, send)
        except BaseException:
            self._abandon(token)
            self._send(("drop", token))
            raise
        with self._lock:  # a process that died meanwhile failed the future already
            current = generation == self._generation and token in self._pending
        if current:
            self._send(("w", token, request_row, _PARTS), token, loop)
        return fut

    def _encode(self, encode: Callable[[], T]) -> T:
        """``encode()``, with a record that cannot be encoded a StoreError naming the
        caller's bug."""
        try:
            return encode()
        except (TypeError, ValueError, OverflowError, AttributeError) as exc:
            raise StoreError(
                f"Could not store a request in {self.path}: the record is malformed ({exc}); "
                "this is a bug in the caller",
                path=self.path,
                kind="data",
            ) from exc

    def _enqueue_write(
        self,
        request: RequestRecord,
        events: list[EventRecord],
        fut: Future | asyncio.Future,
        event_rows: list[Any] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        n = len(events)
        request_row = self._encode(lambda: encode_request(request, n))
        if event_rows is None:
            event_rows = self._encode(lambda: [encode_event(e) for e in events])
        token, _ = self._reserve(fut, n)
        self._send(("w", token, request_row, event_rows), token, loop)

    def _reserve(self, fut: Future | asyncio.Future, n: int) -> tuple[int, int]:
        """Room for ``n`` events in the backlog: (token, generation), or BacklogFull."""
        with self._lock:
            self._check_open()
            if self._pending_events + n > self.max_backlog_events:
                raise BacklogFull(
                    f"The store writer already holds {self._pending_events} uncommitted events "
                    f"(limit {self.max_backlog_events}); {n} more do not fit. Retry shortly."
                )
            token = next(self._tokens)
            self._pending[token] = (fut, n, "write")
            self._pending_events += n
            return token, self._generation

    def _abandon(self, token: int) -> None:
        """Give back a reservation whose write was never completed (nothing to answer)."""
        with self._lock:
            entry = self._pending.pop(token, None)
            if entry is not None:
                self._pending_events -= entry[1]

    def submit_unbounded_note(self, request: RequestRecord) -> Future:
        row = encode_request(request, 0)
        body = row[6] or b""
        fut: Future = Future()
        with self._lock:
            if (
                self._closing
                or self._dead is not None
                or self._pending_notes >= self.max_pending_notes
            ):
                self._dropped_notes += 1
                fut.set_result(None)
                return fut
            if len(body) > NOTE_BODY_LIMIT:
                row[6] = body[:NOTE_BODY_LIMIT]
                mark = f"[body cut by the store: kept {NOTE_BODY_LIMIT} of {len(body)} bytes]"
                row[16] = f"{row[16]} {mark}" if row[16] else mark
            token = next(self._tokens)
            self._pending[token] = (fut, 0, "note")
            self._pending_notes += 1
        self._send(("w", token, row, []), token)
        return fut

    def _call(self, *msg: Any) -> Future:
        fut: Future = Future()
        with self._lock:
            self._check_open()
            token = next(self._tokens)
            self._pending[token] = (fut, 0, "call")
        self._send((msg[0], token, *msg[1:]), token)
        return fut

    def reset(self) -> Future:
        fut = self._call("reset")
        fut.add_done_callback(self._after_reset)
        return fut

    def _after_reset(self, fut: Future) -> None:
        if not fut.cancelled() and fut.exception() is None:
            with self._lock:  # failures of the old contents are no news about the new
                self._failed_writes = 0
                self.last_error = self.write_error = None

    def flush(self) -> Future:
        return self._call("flush")

    def run_retention(self, max_events: int | None, max_age_s: float | None) -> Future:
        return self._call("retention", max_events, max_age_s)

    def run_in_writer(self, fn: Any) -> Future:
        """Run ``fn(connection)`` in the store process, after everything queued before it,
        as ``StoreWriter.run_in_writer``. ``fn`` and its result cross the pipe, so both must
        pickle (a module-level function, or a ``functools.partial`` of one)."""
        return self._call("call", fn)

    def stats(self) -> dict[str, Any]:
        child: dict[str, Any] = {}
        if self.running:
            with contextlib.suppress(Exception):
                child = self._call("stats").result(timeout=2)
        elif self._final_stats:
            child = self._final_stats
        with self._lock:
            return {
                **child,
                "process": True,
                "running": self.running,
                "state": self.state,
                "restarts": self.restarts,
                "queued_events": self._pending_events,
                "committed_requests": self._committed_requests,
                "committed_events": self._committed_events,
                "failed_writes": self._failed_writes,
                "dropped_notes": self._dropped_notes + child.get("dropped_notes", 0),
                "last_error": None if self.last_error is None else str(self.last_error),
            }

    # -- plumbing --------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._dead is not None:
            raise self._dead
        if self._closing:
            raise StoreError(f"The writer for {self.path} is closed", path=self.path, kind="closed")

    def _send(
        self, msg: tuple, token: int | None = None, loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        """Queue ``msg`` for the store process and write it: at once, or, for a caller on
        ``loop`` (which awaits its answer, so nobody blocks the loop waiting for it), once
        the loop has run every callback ready now, together with the writes those queued:
        one pickle and one write per loop iteration instead of one per request."""
        with self._lock:
            running = self._sender is not None
            if running:
                self._queued.append(msg)
                due, self._flush_due = self._flush_due, self._flush_due or loop is not None
        if not running:
            if token is not None:
                self._finish(token, self._died("it is not running"))
        elif loop is None:
            self._flush()
        elif not due:
            loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Write everything queued, in order, as one message."""
        with self._flushing:
            with self._lock:
                items, self._queued = self._queued, []
                self._flush_due = False
                sender = self._sender
            if not items or sender is None:
                return
            try:
                frame = _frame(items)
            except Exception:  # something unpicklable (a run_in_writer fn): that item alone
                for msg in items:
                    try:
                        sender.send(_frame([msg]))
                    except Exception as exc:
                        if len(msg) > 1 and isinstance(msg[1], int):
                            self._finish(
                                msg[1],
                                StoreError(
                                    f"Could not send this to the store process: {exc}",
                                    path=self.path,
                                    kind="data",
                                ),
                            )
                return
            sender.send(frame)

    def _send_failed(self, exc: BaseException, generation: int) -> None:
        """The pipe broke (the store process is gone): fail what waits; the reader thread
        sees the end of the pipe and starts a new process."""
        self._died(f"could not reach it ({exc})", generation)

    def _finish(self, token: int, outcome: Any) -> None:
        settled = self._settle(token, outcome)
        if settled is not None:
            _hand_over([settled])

    def _settle(self, token: int, outcome: Any) -> tuple[Any, Any, bool] | None:
        """Account for a finished entry; (future, value or exception, failed), or None.

        Concurrent futures are resolved here; an asyncio future is returned unresolved,
        for `_hand_over` to resolve on its own loop."""
        with self._lock:
            entry = self._pending.pop(token, None)
            if entry is None:
                return None
            fut, n, kind = entry
            self._pending_events -= n
            if kind == "note":
                self._pending_notes -= 1
            failed = isinstance(outcome, BaseException)
            if failed:
                self._failed_writes += 1
                if isinstance(outcome, StoreError):
                    self.last_error = outcome
                    if kind != "call":
                        self.write_error = outcome
            elif kind != "call":
                self._committed_requests += 1
                self._committed_events += n
                self.write_error = None
        # a note resolves to its request row id alone
        value = outcome if failed or kind != "note" else outcome[0]
        if isinstance(fut, Future):
            with contextlib.suppress(InvalidStateError):
                if failed:
                    fut.set_exception(value)
                else:
                    fut.set_result(value)
            return None
        return fut, value, failed

    def _read_loop(self, conn: Any, proc: Any, generation: int) -> None:
        closed = False
        while not closed:
            try:
                batch = conn.recv()
            except (EOFError, OSError):
                break
            settled = []
            for msg in batch:
                kind = msg[0]
                if kind == "ok":
                    done = self._settle(msg[1], msg[2])
                elif kind == "err":
                    done = self._settle(msg[1], StoreError(msg[2], path=self.path, kind=msg[3]))
                else:
                    done = None
                    if kind == "closed":
                        self._final_stats = msg[1]
                        closed = True
                if done is not None:
                    settled.append(done)
            if settled:
                _hand_over(settled)
        with contextlib.suppress(OSError):
            conn.close()
        if self._closing:
            self._died("it was closed", generation)
            self._closed.set()
            return
        proc.join(1)
        self._died(f"it exited unexpectedly (exit code {proc.exitcode})", generation)
        with self._lock:
            if self._closing or generation != self._generation:
                return
            self._restarter = threading.Thread(
                target=self._restart, name="mpsandbox-store-restart", daemon=True
            )
            self._restarter.start()

    def _restart(self, attempts: int = 3, pause: float = 0.5) -> None:
        """Start a new store process on the same database after one died; after
        ``attempts`` failures give up for good (see `fatal`)."""
        why = "no attempt was made"
        for attempt in range(attempts):
            if self._closing:
                return
            if attempt:
                time.sleep(pause)
            try:
                self._launch()
            except Exception as exc:  # StoreError, or the OS refusing a process
                why = str(exc)
                log.warning("restarting the store process for %s failed: %s", self.path, why)
                continue
            with self._lock:
                self.restarts += 1
            log.warning("the store process for %s died and was restarted", self.path)
            return
        err = StoreError(
            f"The store process for {self.path} died and could not be restarted: {why}",
            path=self.path,
            kind="dead",
        )
        with self._lock:
            self.fatal = self._dead = self.last_error = err
        if self.on_fatal is not None:
            try:
                self.on_fatal(err)
            except Exception:
                log.exception("on_fatal callback failed")

    def _died(self, why: str, generation: int | None = None) -> StoreError:
        err = StoreError(
            f"The store process for {self.path} stopped: {why}; it is being restarted and "
            "nothing is stored meanwhile: retry shortly",
            path=self.path,
            kind="dead",
        )
        with self._lock:
            if generation is not None and generation != self._generation:
                return self._dead or err  # an older process: already dealt with
            if self._dead is None:
                self._dead = err
                self.last_error = err if not self._closing else self.last_error
            pending = list(self._pending)
        settled = [done for token in pending if (done := self._settle(token, err)) is not None]
        if settled:
            _hand_over(settled)
        return err
