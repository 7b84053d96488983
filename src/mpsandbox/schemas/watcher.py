"""Drop compiled schemas when a file under a local source changes.

Invalidating the whole cache is deliberately coarse: recompiling a handful of schemas costs
milliseconds, while tracking which compiled schema inlined which fragment file is easy to get
wrong, and a stale schema is exactly the confusion this tool exists to remove.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from mpsandbox.schemas.registry import SchemaRegistry

log = logging.getLogger(__name__)


async def watch_sources(
    registry: SchemaRegistry,
    *,
    stop: asyncio.Event,
    on_change: Callable[[set[str]], None] | None = None,
    debounce_ms: int = 150,
) -> None:
    """Watch every local source until `stop` is set."""
    from watchfiles import awatch  # imported lazily: its Rust extension costs ~20 ms at startup

    paths = [str(p) for s in registry.sources for p in s.watch_paths() if p.exists()]
    if not paths:
        return
    with contextlib.suppress(asyncio.CancelledError):
        async for changes in awatch(
            *paths, stop_event=stop, debounce=debounce_ms, recursive=True, force_polling=False
        ):
            changed = {path for _, path in changes}
            registry.invalidate()
            log.info("schemas changed: %s", ", ".join(sorted(changed)[:5]))
            if on_change is not None:
                on_change(changed)
