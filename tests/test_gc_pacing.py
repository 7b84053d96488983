"""The served intake's garbage collection settings (intake/gc_pacing.py)."""

from __future__ import annotations

import asyncio
import gc

from mpsandbox.intake import gc_pacing


async def test_pacing_collects_young_objects_rarely_and_never_in_full_by_itself():
    """While paced, CPython starts no collection for the objects a few requests keep alive
    (at its default of 700 it started one every few events), none in full at all, and the
    settings are put back when pacing stops."""
    before = gc.get_threshold()
    stop = asyncio.Event()
    task = asyncio.create_task(gc_pacing.pace_collections(lambda: False, stop))
    await asyncio.sleep(0.05)
    seen: list[int] = []

    def note(phase: str, info: dict) -> None:
        if phase == "start":
            seen.append(info["generation"])

    gc.callbacks.append(note)
    try:
        assert gc.get_threshold() == (gc_pacing.YOUNG, gc_pacing.OLDER, gc_pacing._NEVER)
        gc.collect(0)
        seen.clear()
        alive = [{"event": [i]} for i in range(gc_pacing.YOUNG // 3)]  # 2 containers each
        assert seen == []
        more = [{"event": [i]} for i in range(gc_pacing.YOUNG)]
        assert seen and 2 not in seen
        del alive, more
    finally:
        gc.callbacks.remove(note)
        stop.set()
        await task
    assert gc.get_threshold() == before
