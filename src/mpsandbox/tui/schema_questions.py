"""The schema questions the TUI asks: what the sources hold, where a ``$schema`` URI
resolves, how a stored event fares against its schema's working copy.

One registry per running sandbox: while the intake runs, every question goes to its
registry (``IntakeHost.call``), so the answers are the ones the intake judges by (its cache,
the files it failed to load) and the TUI builds no second registry. With no intake running
(a read-only view, or one that could not start) there is no sandbox to ask; then the app
builds one registry of its own, the same way, and drops it once an intake runs. The answers
are plain dicts either way (``Resolution.probe``, ``describe_sources``,
``working_copy.judge_stored``). Every method blocks: call them off the event loop.
"""

from __future__ import annotations

import threading
from typing import Any

from mpsandbox.config import Settings
from mpsandbox.host import IntakeError, IntakeHost
from mpsandbox.schemas.catalog import SourceCatalog, describe_sources

#: How long a question may take the intake (a working copy compiles schemas).
ANSWER_TIMEOUT = 60.0


class SchemaQuestions:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._own: Any = None  # a SchemaRegistry, only while no intake runs

    def sources(self, host: IntakeHost | None) -> tuple[list[SourceCatalog], dict[str, str]]:
        """What each source holds, and the files that would not load."""
        answer = self._ask(host, "schema_sources")
        if answer is None:
            answer = describe_sources(self._registry())
        catalogs = [SourceCatalog.from_dict(c) for c in answer["catalogs"]]
        return catalogs, dict(answer["load_errors"])

    def probe(self, host: IntakeHost | None, uri: str) -> dict[str, Any]:
        """Where ``uri`` resolves from, or why not (``Resolution.probe``)."""
        answer = self._ask(host, "resolve", uri=uri)
        if answer is None:
            answer = self._registry().resolve(uri).probe()
        return answer

    def working_copy(self, host: IntakeHost | None, stored: dict[str, Any]) -> dict[str, Any]:
        """A stored event (as the reader gives it) judged by its schema's working copy."""
        answer = self._ask(host, "working_copy", event_id=stored["id"])
        if answer is not None:
            return answer
        from mpsandbox.working_copy import judge_stored

        registry = self._registry()
        registry.invalidate()  # every file read as it is now
        return judge_stored(registry, stored, fill_ins=self.settings.fill_ins)

    def rescan(self) -> None:
        """Read the schema files again on the next question (the intake's registry has
        its own watcher)."""
        with self._lock:
            if self._own is not None:
                self._own.invalidate()

    @property
    def builds_its_own(self) -> bool:
        """Whether the app holds a registry of its own (only while no intake runs)."""
        return self._own is not None

    def _ask(self, host: IntakeHost | None, name: str, **args: Any) -> Any:
        """The running intake's answer, or None when no intake runs."""
        if host is None or not host.running:
            return None
        with self._lock:
            self._own = None  # an intake runs: its registry is the one
        try:
            return host.call(name, **args).result(ANSWER_TIMEOUT)
        except TimeoutError:
            raise IntakeError(f"the intake did not answer within {ANSWER_TIMEOUT:g} s") from None

    def _registry(self) -> Any:
        from mpsandbox.sandbox import build_registry

        with self._lock:
            if self._own is None:
                self._own = build_registry(self.settings)
            return self._own
