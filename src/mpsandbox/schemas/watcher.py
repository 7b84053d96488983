"""Drop compiled schemas when a file under a local source changes.

Invalidating the whole cache is deliberately coarse: recompiling a handful of schemas costs
milliseconds, while tracking which compiled schema inlined which fragment file is easy to get
wrong, and a stale schema is exactly the confusion this tool exists to remove.

Only the folders really inside a ``--schemas`` root are watched, each on its own: a
recursive watch follows symlinks, so a link to ``/`` or a home folder would have put a watch
on every folder below it. A symlink that stays inside the root needs no watch of its own
(its target is watched where it lies); one that leaves is ignored here, and the lookup
refuses to read through it (``DirectorySource``). When a folder appears or goes, the watch
list is built again. (``sandbox.py`` imports this module only when watching is on:
watchfiles' Rust extension costs tens of milliseconds at startup.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

from watchfiles import Change, awatch

from mpsandbox.schemas.registry import SchemaRegistry

log = logging.getLogger(__name__)

#: Folders never worth watching (version control and tool caches).
_SKIP_DIRS = frozenset({".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv"})


def folders_to_watch(roots: list[Path]) -> list[str]:
    """Every real folder under each root, links not followed, whatever their target."""
    found: list[str] = []
    for root in roots:
        if not root.is_dir():
            continue
        for here, dirs, _ in os.walk(root, followlinks=False):
            dirs[:] = [d for d in dirs if d not in _SKIP_DIRS]
            found.append(here)
    return found


def _folders_changed(changes: set[tuple[Change, str]], watched: set[str]) -> bool:
    """True when a folder (or a link to one) appeared or went: the watch list is stale."""
    for change, path in changes:
        if change == Change.added and os.path.isdir(path):
            return True
        if change == Change.deleted and path in watched:
            return True
    return False


async def watch_sources(
    registry: SchemaRegistry,
    *,
    stop: asyncio.Event,
    on_change: Callable[[set[str]], None] | None = None,
    debounce_ms: int = 150,
) -> None:
    """Watch every local source until `stop` is set."""
    roots = [p for s in registry.sources for p in s.watch_paths()]
    with contextlib.suppress(asyncio.CancelledError):
        while not stop.is_set():
            # Walked here, not in a thread: the watch must start at once (a file saved
            # right after the intake started must be seen), and a walk takes milliseconds.
            folders = folders_to_watch(roots)
            if not folders:
                return
            watched = set(folders)
            rebuild = False
            async for changes in awatch(
                *folders, stop_event=stop, debounce=debounce_ms, recursive=False
            ):
                changed = {path for _, path in changes}
                registry.invalidate()
                log.info("schemas changed: %s", ", ".join(sorted(changed)[:5]))
                if on_change is not None:
                    on_change(changed)
                if _folders_changed(changes, watched):
                    rebuild = True
                    break
            if not rebuild:
                return
