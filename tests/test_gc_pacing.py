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


async def test_while_big_batches_are_judged_young_objects_are_collected_as_cpython_does():
    """A big batch keeps everything it parsed alive: then CPython's own small thresholds
    keep each collection short, and the intake's come back once the batches are done."""
    before = gc.get_threshold()
    busy = [False]
    stop = asyncio.Event()
    task = asyncio.create_task(gc_pacing.pace_collections(lambda: busy[0], stop))
    try:
        await asyncio.sleep(0.05)
        assert gc.get_threshold()[:2] == (gc_pacing.YOUNG, gc_pacing.OLDER)
        busy[0] = True
        await asyncio.sleep(gc_pacing.TICK * 2)
        assert gc.get_threshold() == (before[0], before[1], gc_pacing._NEVER)
        busy[0] = False
        await asyncio.sleep(gc_pacing.TICK * 2)
        assert gc.get_threshold()[:2] == (gc_pacing.YOUNG, gc_pacing.OLDER)
    finally:
        stop.set()
        await task
    assert gc.get_threshold() == before


async def test_a_big_batch_gets_cpythons_thresholds_as_it_takes_its_turn(tmp_path):
    """Before its body is parsed (a 10,000-event body makes ~300,000 objects in one call):
    the pacer would only notice at its next look."""
    from mpsandbox.config import Settings
    from mpsandbox.sandbox import BIG_BODY, Sandbox

    sandbox = Sandbox(Settings(db=tmp_path / "never-opened.db", offline=True))
    sandbox.on_big_turn = gc_pacing.big_batch_turn
    before = gc.get_threshold()
    stop = asyncio.Event()
    task = asyncio.create_task(gc_pacing.pace_collections(lambda: False, stop))
    try:
        await asyncio.sleep(0.05)
        async with sandbox.judging_turn(BIG_BODY) as sliced:  # small enough: judged at once
            assert not sliced
            assert gc.get_threshold()[:2] == (gc_pacing.YOUNG, gc_pacing.OLDER)
        async with sandbox.judging_turn(BIG_BODY + 1) as sliced:
            assert sliced
            assert gc.get_threshold() == (before[0], before[1], gc_pacing._NEVER)
    finally:
        stop.set()
        await task
    assert gc.get_threshold() == before
    gc_pacing.big_batch_turn()  # not paced: changes nothing
    assert gc.get_threshold() == before
