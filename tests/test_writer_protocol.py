"""The store's one write interface: both writers satisfy the Writer protocol, member by
member (names, sync or async, parameters, properties), and the check catches a writer that
does not."""

from __future__ import annotations

import asyncio
import inspect
from concurrent.futures import Future
from pathlib import Path

import pytest

from mpsandbox.records import EventRecord, RequestRecord
from mpsandbox.store import ProcessStoreWriter, StoreReader, StoreWriter, Writer

ROOT = Path(__file__).resolve().parents[1]


def protocol_members(protocol: type) -> dict[str, object]:
    """Every member the protocol names: its methods and properties, and its attributes."""
    members: dict[str, object] = {}
    for klass in reversed(protocol.__mro__):
        if klass in (object,) or klass.__name__ in ("Protocol", "Generic"):
            continue
        for name in getattr(klass, "__annotations__", {}):
            members[name] = "attribute"
        for name, value in vars(klass).items():
            if not name.startswith("_") and (callable(value) or isinstance(value, property)):
                members[name] = value
    return members


def _params(fn) -> list[inspect.Parameter]:
    return list(inspect.signature(fn).parameters.values())[1:]  # without self


def _accepts(theirs: list[inspect.Parameter], ours: list[inspect.Parameter]) -> str | None:
    """None when a method with parameters ``theirs`` takes every call the protocol's
    ``ours`` allows: the same names in the same kinds, and nothing more that is required."""
    by_name = {p.name: p for p in theirs}
    var_kw = any(p.kind is p.VAR_KEYWORD for p in theirs)
    var_pos = any(p.kind is p.VAR_POSITIONAL for p in theirs)
    for i, p in enumerate(ours):
        q = by_name.get(p.name)
        if q is None:
            if var_kw or (var_pos and p.kind is p.POSITIONAL_OR_KEYWORD):
                continue
            return f"has no parameter {p.name!r}"
        if p.kind is p.POSITIONAL_OR_KEYWORD and theirs.index(q) != i:
            return f"takes {p.name!r} at another position"
        if p.kind is not q.kind and not (
            p.kind is p.KEYWORD_ONLY and q.kind is q.POSITIONAL_OR_KEYWORD
        ):
            return f"takes {p.name!r} as {q.kind.description}, not {p.kind.description}"
        if p.default is not p.empty and q.default is q.empty:
            return f"requires {p.name!r}, which callers may leave out"
    extra = [
        q.name
        for q in theirs
        if q.name not in {p.name for p in ours}
        and q.default is q.empty
        and q.kind not in (q.VAR_POSITIONAL, q.VAR_KEYWORD)
    ]
    if extra:
        return f"requires {', '.join(extra)}, which the protocol does not pass"
    return None


def conformance_problems(cls: type, protocol: type, instance: object) -> list[str]:
    """What keeps ``cls`` from satisfying ``protocol`` (empty when it does)."""
    problems = []
    for name, ours in protocol_members(protocol).items():
        theirs = inspect.getattr_static(cls, name, None)
        if ours == "attribute":
            if theirs is None and not hasattr(instance, name):
                problems.append(f"{cls.__name__}.{name} is missing")
            continue
        if theirs is None:
            problems.append(f"{cls.__name__}.{name}() is missing")
            continue
        if isinstance(ours, property):
            if not isinstance(theirs, property):
                problems.append(f"{cls.__name__}.{name} is not a property")
            continue
        if not callable(theirs):
            problems.append(f"{cls.__name__}.{name} is not a method")
            continue
        if inspect.iscoroutinefunction(ours) != inspect.iscoroutinefunction(theirs):
            kind = "async" if inspect.iscoroutinefunction(ours) else "plain"
            problems.append(f"{cls.__name__}.{name}() is not {kind}")
        why = _accepts(_params(theirs), _params(ours))
        if why is not None:
            problems.append(f"{cls.__name__}.{name}() {why}")
    return problems


def test_the_protocol_names_what_callers_use():
    names = set(protocol_members(Writer))
    assert {
        "submit",
        "submit_async",
        "submit_async_sliced",
        "submit_unbounded_note",
        "reserve_ok",
        "flush",
        "reset",
        "run_retention",
        "run_in_writer",
        "stats",
        "state",
        "running",
        "close",
        "start",
        "fatal",
        "on_fatal",
        "last_error",
        "write_error",
    } <= names


@pytest.mark.parametrize("cls", [StoreWriter, ProcessStoreWriter])
def test_both_writers_satisfy_the_protocol(cls, tmp_path):
    writer = cls(tmp_path / "never-opened.db")  # constructing opens nothing
    assert conformance_problems(cls, Writer, writer) == []


def test_the_check_fails_for_a_writer_that_does_not_satisfy_it(tmp_path):
    class Lacking(StoreWriter):
        submit_async = None  # type: ignore[assignment]

        def flush(self, wait):  # a parameter callers never pass
            return super().flush()

        def submit_async_sliced(self, request, events):  # not async
            return self.submit_async(request, events)

        def reset(self, *, hard=False, everything):  # keyword-only, required
            return super().reset()

        state = "ok"  # not a property

    problems = conformance_problems(Lacking, Writer, Lacking(tmp_path / "x.db"))
    text = "\n".join(problems)
    assert "Lacking.submit_async() is missing" in text
    assert "Lacking.flush() requires wait" in text
    assert "Lacking.submit_async_sliced() is not async" in text
    assert "Lacking.reset() requires everything" in text
    assert "Lacking.state is not a property" in text

    class Missing:
        def submit(self, events, request):  # the parameters swapped
            return Future()

    problems = conformance_problems(Missing, Writer, Missing())
    assert "Missing.start() is missing" in problems
    assert "Missing.fatal is missing" in problems
    assert "Missing.submit() takes 'request' at another position" in problems


def _request() -> RequestRecord:
    return RequestRecord(1.0, "POST", "/v1/events", "", [], b"[]")


def _events(n: int) -> list[EventRecord]:
    return [
        EventRecord(i, {"$schema": "/x/1.0.0", "meta": {"stream": "s"}}, "valid", 1.0)
        for i in range(n)
    ]


@pytest.mark.parametrize("cls", [StoreWriter, ProcessStoreWriter])
async def test_every_async_submit_commits_through_either_writer(cls, tmp_path):
    """What the sandbox calls, called for real on both: a small batch, a big one sliced."""
    db = tmp_path / "w.db"
    writer: Writer = cls(db)
    writer.start()
    try:
        small = await writer.submit_async(_request(), _events(2))
        big = await (await writer.submit_async_sliced(_request(), _events(300)))
        assert len(small[1]) == 2 and len(big[1]) == 300
        await asyncio.wrap_future(writer.flush())
    finally:
        writer.close()
    reader = StoreReader(db)
    try:
        assert reader.count_events() == 302
    finally:
        reader.close()


def test_no_caller_probes_which_writer_it_has():
    """Writers are called through the protocol: no ``getattr(writer, ...)`` or
    ``hasattr(writer, ...)`` anywhere in the package."""
    offenders = []
    for path in (ROOT / "src" / "mpsandbox").rglob("*.py"):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if ("getattr(" in line or "hasattr(" in line) and "writer" in line:
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert offenders == []
