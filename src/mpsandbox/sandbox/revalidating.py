"""Judging stored events again when schemas change, or when asked.

A part of :class:`~mpsandbox.sandbox.Sandbox` (a mixin): the state it reads and writes is
set up in ``Sandbox.__init__``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from mpsandbox.revalidation import Report, rejudge, store_call, titles_for_paths
from mpsandbox.schemas.sources import DirectorySource

log = logging.getLogger(__name__)

#: Stored events read at a time by a re-validation run.
REVALIDATION_CHUNK = 2_000

#: Pending re-validation of every title (a fragment changed).
_EVERY_TITLE = object()

RevalidationListener = Callable[[Report], None]


class Revalidating:
    """Gathers schema file changes into runs and records what flipped."""

    def add_revalidation_listener(self, listener: RevalidationListener) -> None:
        self._revalidation_listeners.append(listener)

    async def judge_by_working_copy(self, event_id: int) -> dict[str, Any] | None:
        """A stored event judged by its schema's working copy (current.yaml), by this
        sandbox's registry (the API's and the TUI's question); None when there is no such
        event."""
        from mpsandbox.working_copy import judge_stored  # the authoring code, when asked

        loop = asyncio.get_running_loop()
        stored = await loop.run_in_executor(None, self.reader.get_event, int(event_id))
        if stored is None:
            return None
        fill_ins = self.settings.fill_ins
        return await loop.run_in_executor(
            None, lambda: judge_stored(self.registry, stored, fill_ins=fill_ins)
        )

    def schemas_changed(self, paths: set[str]) -> None:
        """The watcher saw schema files change: judge the stored events of the schemas they
        hold again. Changes that arrive during a run are gathered into the next one."""
        roots = [s.root for s in self.registry.sources if isinstance(s, DirectorySource)]
        titles = titles_for_paths(paths, roots)
        if titles is None or self._pending_titles is _EVERY_TITLE:
            self._pending_titles = _EVERY_TITLE
        else:
            self._pending_titles = (self._pending_titles or set()) | titles
        if self._revalidation_task is None or self._revalidation_task.done():
            self._revalidation_task = asyncio.create_task(
                self._revalidate_pending(), name="revalidation"
            )

    async def _revalidate_pending(self) -> None:
        while self._pending_titles is not None:
            pending, self._pending_titles = self._pending_titles, None
            titles = None if pending is _EVERY_TITLE else pending
            try:
                await self.revalidate(titles=titles, trigger="schema change")
            except Exception:  # a store problem must not end the watching
                log.exception("re-validation after a schema change failed")

    async def revalidate(
        self,
        *,
        titles: set[str] | list[str] | None = None,
        limit: int | str | None = "default",
        trigger: str = "asked",
    ) -> Report:
        """Judge stored events again with the schemas as they are now; record and announce
        every verdict that flips. ``limit``: newest events taken (None: all; "default": the
        settings' --revalidate)."""
        if limit == "default":
            limit = self.settings.revalidate_limit
        if self._revalidation_lock is None:
            self._revalidation_lock = asyncio.Lock()
        loop = asyncio.get_running_loop()
        async with self._revalidation_lock:
            report = Report(
                trigger=trigger,
                titles=None if titles is None else sorted(titles),
                limit=limit,  # type: ignore[arg-type]
            )
            t0 = time.perf_counter()

            # Judged on a worker thread, with a short sleep every few dozen events so the
            # intake's loop gets the interpreter: it keeps answering while a run is judged.
            # Read a chunk at a time (newest first): `all` of a large store never sits in
            # memory at once.
            def judge() -> Callable[[Any], int]:
                before, left = None, report.limit
                while left is None or left > 0:
                    n = REVALIDATION_CHUNK if left is None else min(REVALIDATION_CHUNK, left)
                    rows = self.reader.revalidation_candidates(report.titles, n, before)
                    if not rows:
                        break
                    rejudge(self.pipeline, rows, report, pause=lambda: time.sleep(0.0005))
                    before = rows[-1]["id"]
                    left = None if left is None else left - len(rows)
                report.seconds = time.perf_counter() - t0
                report.problems = dict(self.registry.load_errors)
                return store_call(report)

            call = await loop.run_in_executor(None, judge)
            report.run_id = await asyncio.wrap_future(self.writer.run_in_writer(call))
        for listener in list(self._revalidation_listeners):
            try:
                listener(report)
            except Exception:
                log.exception("re-validation listener failed")
        return report
