"""Terminal UI benchmark: the real app, headless, over a million stored events (issue #3).

    .venv/bin/python bench/tui.py [--events 1000000] [--rate 2000] [--seconds 20] [--rebuild]

1. Builds (or reuses, from --cache-dir, keyed by event count and the store's migrations) a
   database of N realistic events: 400 varied events (the recorded EventGate requests and the
   schemas' own examples, re-aimed at several streams, actions, domains and sessions, some
   broken on purpose) judged by the real Pipeline against the real schemas (about 90% valid,
   8% invalid, 2% error), then written N times over, in requests of 1 to 10 events, through
   the real StoreWriter with varying receive times, meta.id, session and pageview ids. The
   build runs in a child process so its memory never counts against the app's.
2. MpSandboxApp(listen=False) on it, driven by App.run_test(): first paint (app created ->
   first frame showing the newest rows), RSS, and the keys of part 4 without load.
3. Filter queries typed one key at a time; each key is timed to the first frame that shows
   the results for exactly the text typed so far (the table's rows read for that filter, or
   the syntax error for a half-typed term). The exact total may follow later (it is counted
   in the background); the time to it is shown for each query's last key.
4. The same load first against `mpsandbox serve` (no UI, for reference), then against
   MpSandboxApp(listen=True) on a copy of the database: --rate events/s over HTTP from a
   separate process, while keys are pressed every ~100 ms. Each key is timed to the first
   frame that shows its effect: up/down/pagedown, the cursor on its new row with every
   visible row read; enter, the detail screen with the event's content; escape, the table
   back; f, the table following again with the events committed before the key. Afterwards
   the table's total is checked against a full count.
5. Every figure is printed next to its target (PASS/MISS); exits 0 even on a MISS.

How "on screen" is measured: the app is the real MpSandboxApp with one observer added
(BenchApp._display, which Textual calls with every composed frame). The headless driver skips
turning frames into terminal escape codes, so the observer does that work too (a terminal
needs it) and then checks whether the frame shows the expected state. A latency runs from
handing the key to the app's driver (as a terminal driver does) to the end of that frame.
Pilot.press is not used for timing: it waits for the whole process to go idle (20 ms steps,
up to 1 s while anything is busy).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import hashlib
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

SHARED = ROOT / "tests" / "data"  # reference data, as the tests use it
REQ = SHARED / "eventgate/recorded-local-run/req"
SCHEMA_DIRS = (SHARED / "schemas/secondary/jsonschema", SHARED / "schemas/primary/jsonschema")
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "mpsandbox-bench"
#: Bump when the generated data changes, so cached databases are rebuilt.
BUILD_VERSION = 1
SIZE = (160, 50)

# -- 1. the database ----------------------------------------------------------------------

#: Sentinels put into template events before judging, replaced per stored row. Each has the
#: shape the schemas demand (session and pageview ids: 20 hex digits), so a template's
#: verdict holds for every row made from it.
SID = "5e55105e55105e55105e"
PVID = "9a9e01e09a9e01e09a9e"
DT = "2024-10-01T11:59:59.123Z"

WEB_STREAMS = [
    "product_metrics.web_base",
    "mediawiki.product_metrics.readerexperiments_imagebrowsing",
    "mediawiki.product_metrics.contributors.experiments",
    "product_metrics.web_base.search_satisfaction",
]
APP_STREAMS = ["product_metrics.app_base", "app.product_metrics.android_article_toc"]
ACTIONS = [
    ("click", 30),
    ("init", 14),
    ("scroll", 12),
    ("submit", 6),
    ("hover", 5),
    ("impression", 10),
    ("page_visited", 8),
    ("experiment_exposure", 4),
    ("close", 3),
    ("search_result_click", 3),
]
DOMAINS = [
    "en.wikipedia.org",
    "de.wikipedia.org",
    "fr.wikipedia.org",
    "ja.wikipedia.org",
    "commons.wikimedia.org",
    "www.wikidata.org",
]
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0"


def _load_json(path: Path) -> Any:
    return json.loads(path.read_text())


def _schema_examples() -> list[tuple[dict, frozenset[str]]]:
    """The `examples` of every concrete analytics schema version (real, schema-shaped),
    each with the schema's required top-level fields."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    out = []
    base = SCHEMA_DIRS[0] / "analytics"
    for path in sorted(base.rglob("[0-9]*.yaml")):
        doc = yaml.load(path.read_text(), Loader=loader)
        for ex in (doc or {}).get("examples") or []:
            if isinstance(ex, dict) and isinstance(ex.get("$schema"), str):
                out.append((ex, frozenset(doc.get("required") or ())))
    return out


def _stream_for(title: str, rng: random.Random) -> str:
    if title.endswith("web/base"):
        return rng.choice(WEB_STREAMS)
    if title.endswith("app/base"):
        return rng.choice(APP_STREAMS)
    if title.startswith("analytics/legacy/"):
        return "eventlogging_" + title.rsplit("/", 1)[-1].title().replace("_", "")
    return title.removeprefix("analytics/").replace("/", ".")


#: Fields a Metrics Platform client nearly always sends; other optional ones come and go.
CORE_FIELDS = frozenset({"$schema", "meta", "dt", "action", "agent", "performer"})


def _client_event(seed: tuple[dict, frozenset[str]], rng: random.Random) -> dict:
    """A seed re-aimed like a real client's event: its own stream, action, domain and
    session; no meta.id / meta.dt / http (the intake fills those in, as in production).
    Schema examples set every optional field; about half of those are dropped."""
    e, required = copy.deepcopy(seed[0]), seed[1]
    for key in list(e):
        if key not in required and key not in CORE_FIELDS and rng.random() < 0.5:
            del e[key]
    uri = e.get("$schema") or ""
    title = uri.strip("/").rsplit("/", 1)[0]
    meta = e.setdefault("meta", {})
    for k in ("id", "dt", "request_id", "uri"):
        meta.pop(k, None)
    e.pop("http", None)
    meta["stream"] = _stream_for(title, rng)
    meta["domain"] = rng.choice(DOMAINS)
    if "dt" in e:
        e["dt"] = DT
    if title.endswith("/base"):
        e["action"] = rng.choices([a for a, _ in ACTIONS], [w for _, w in ACTIONS])[0]
        if rng.random() < 0.3:
            e["action_source"] = rng.choice(["toc", "search", "infobox", "header", "footer"])
    performer = e.get("performer")
    if isinstance(performer, dict):
        if "session_id" in performer or title.endswith("/base"):
            performer["session_id"] = SID
        if "pageview_id" in performer or title.endswith("web/base"):
            performer["pageview_id"] = PVID
    return e


#: Ways real clients get events wrong (each an (what, change) pair), for the invalid pool.
BREAKAGES: list[tuple[str, Callable[[dict], None]]] = [
    ("action is a number", lambda e: e.__setitem__("action", 42)),
    ("short session id", lambda e: e.setdefault("performer", {}).__setitem__("session_id", "abc")),
    ("unknown field", lambda e: e.__setitem__("unknown_field", True)),
    (
        "bad platform",
        lambda e: e.setdefault("agent", {}).__setitem__("client_platform", "windows"),
    ),
    (
        "logged in as text",
        lambda e: e.setdefault("performer", {}).__setitem__("is_logged_in", "yes"),
    ),
    ("no action", lambda e: e.pop("action", None)),
    ("dt not a date", lambda e: e.__setitem__("dt", "yesterday")),
]


def _error_event(seed: tuple[dict, frozenset[str]], rng: random.Random, kind: int) -> Any:
    """Events EventGate cannot judge at all (verdict "error")."""
    e = _client_event(seed, rng)
    uri = e.get("$schema", "/analytics/product_metrics/web/base/1.3.0")
    if kind == 0:  # a version that was never published
        e["$schema"] = uri.rsplit("/", 1)[0] + "/9.9.9"
    elif kind == 1:  # no $schema at all
        e.pop("$schema", None)
    elif kind == 2:  # a schema that does not exist
        e["$schema"] = "/analytics/product_metrics/web/baes/1.3.0"
    else:  # not an object
        return [e]
    return e


def _templates(n: int, rng: random.Random) -> dict[str, list[list[Any]]]:
    """Judge ``n`` varied events through the real Pipeline; encoded rows by verdict."""
    from mpsandbox.config import Settings
    from mpsandbox.pipeline import Pipeline, RequestContext
    from mpsandbox.sandbox import build_registry
    from mpsandbox.store.writer import encode_event

    settings = Settings(schema_dirs=SCHEMA_DIRS, watch_schemas=False)
    pipeline = Pipeline(build_registry(settings), fill_ins=settings.fill_ins)
    recorded: list[tuple[dict, frozenset[str]]] = []
    for path in sorted(REQ.glob("*.json")):
        body = _load_json(path)
        for x in body if isinstance(body, list) else [body]:
            if isinstance(x, dict):
                recorded.append((x, frozenset()))
    examples = _schema_examples()
    web = [e for e in recorded + examples if "web/base" in str(e[0].get("$schema"))]
    app = [e for e in examples if "app/base" in str(e[0].get("$schema"))]
    other = [e for e in examples if e not in web and e not in app]
    ctx = RequestContext(
        received_at=time.time(),
        request_id="bench-template",
        headers={"user-agent": USER_AGENT, "content-type": "text/plain;charset=UTF-8"},
        peer="127.0.0.1",
    )
    pools: dict[str, list[list[Any]]] = {"valid": [], "invalid": [], "error": []}
    for i in range(n):
        r = rng.random()
        seed = rng.choice(web if r < 0.5 else app if r < 0.7 else other)
        if i % 10 < 7:
            event: Any = _client_event(seed, rng)
        elif i % 10 < 9:
            event = _client_event(seed, rng)
            for _, breakage in rng.sample(BREAKAGES, rng.choice([1, 1, 2])):
                breakage(event)
        else:
            event = _error_event(seed, rng, i // 10 % 4)
        record = pipeline.judge(event, ctx)
        pools[record.verdict].append(encode_event(record))
    return pools


def _iso(epoch: float) -> str:
    whole = int(epoch)
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{int(epoch * 1000) % 1000:03d}Z"
    )


def build_db(path: Path, n: int, seed: int = 3) -> dict[str, Any]:
    """Write ``n`` events (in requests of 1 to 10 events) through the real StoreWriter."""
    from mpsandbox.records import RequestRecord
    from mpsandbox.store import StoreWriter
    from mpsandbox.store.writer import BacklogFull, encode_request

    rng = random.Random(seed)
    t0 = time.perf_counter()
    pools = _templates(400, rng)
    judged_s = time.perf_counter() - t0
    for name in ("", "-wal", "-shm"):
        Path(f"{path}{name}").unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = StoreWriter(
        path,
        max_backlog_events=400_000,
        batch_events=50_000,
        batch_requests=20_000,
        # A fixture: durability does not matter, a big page cache keeps index inserts fast.
        # No journal while building (switched back to WAL, the store's mode, at the end).
        pragmas={"synchronous": "OFF", "cache_size": -400_000, "journal_mode": "OFF"},
    )
    writer.start()
    sessions = [f"{rng.getrandbits(80):020x}" for _ in range(max(50, n // 40))]
    headers = [
        ("Host", "localhost:8192"),
        ("User-Agent", USER_AGENT),
        ("Content-Type", "text/plain;charset=UTF-8"),
        ("Origin", "https://en.wikipedia.org"),
    ]
    valid, invalid, error = pools["valid"], pools["invalid"], pools["error"]
    end = time.time()
    now = end - n * 0.25  # four events a second on average, in bursts
    written = 0
    futures: deque = deque()
    req_no = 0
    rand, choice, randint = rng.random, rng.choice, rng.randint
    while written < n:
        k = min(n - written, 1 if rand() < 0.5 else randint(2, 10))
        now += rng.expovariate(4.0 / k)
        session = choice(sessions)
        pageview = f"{rng.getrandbits(80):020x}"
        dt = _iso(now - rand())
        ms = f"{int(now * 1000) & 0xFFFFFFFFFFFF:012x}"
        rows = []
        texts = []
        for idx in range(k):
            r = rand()
            tpl = choice(valid if r < 0.90 else invalid if r < 0.98 else error)
            row = list(tpl)
            meta_id = tpl[12]
            rid = f"{rng.getrandbits(80):020x}"
            new_id = f"{ms[:8]}-{ms[8:]}-7{rid[:3]}-8{rid[3:6]}-{rid[6:18]}"
            event_text = row[14].replace(SID, session).replace(PVID, pageview).replace(DT, dt)
            row[14] = event_text
            if meta_id and row[15]:
                row[15] = row[15].replace(meta_id, new_id)
            row[12] = new_id if meta_id else None
            if row[10] == SID:
                row[10] = session
            if row[11] == PVID:
                row[11] = pageview
            if row[13] == DT:
                row[13] = dt
            row[2] = idx
            row[3] = now
            rows.append(row)
            texts.append(event_text)
        body = texts[0] if k == 1 else "[" + ",".join(texts) + "]"
        bad = sum(r[4] != "valid" for r in rows)
        if not bad:
            status, reason = 201, "Created"
        elif bad == k:
            status, reason = 400, "Bad Request"
        else:
            status, reason = 207, "Multi-Status"
        req_no += 1
        request = RequestRecord(
            received_at=now,
            method="POST",
            path="/v1/events",
            query="",
            headers=headers,
            body=body.encode(),
            remote="127.0.0.1",
            request_id=f"bench-{req_no:08d}",
            status=status,
            reason=reason,
            event_count=k,
        )
        request_row = encode_request(request, k)
        while True:
            try:
                futures.append(writer.submit_rows(request_row, rows))
                break
            except BacklogFull:
                for _ in range(min(len(futures), 5_000)):
                    futures.popleft().result(300)
        written += k
    for f in futures:
        f.result(300)
    writer.close(timeout=600)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
    return {
        "templates": {k: len(v) for k, v in pools.items()},
        "judge_s": judged_s,
        "total_s": time.perf_counter() - t0,
        "requests": req_no,
    }


def _cache_path(cache_dir: Path, n: int) -> Path:
    from mpsandbox.store.migrations import MIGRATIONS

    key = json.dumps([BUILD_VERSION, [m.name for m in MIGRATIONS]])
    digest = hashlib.sha1(key.encode()).hexdigest()[:8]
    label = f"{n // 1_000_000}m" if n % 1_000_000 == 0 else f"{n}"
    return cache_dir / f"tui-{label}-{digest}.db"


# -- driving the app ---------------------------------------------------------------------


class Timings:
    """Latencies in seconds, with the labels of the slow ones."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self.labels: list[str] = []
        self.timeouts: list[str] = []

    def add(self, value: float | None, label: str) -> None:
        if value is None:
            self.timeouts.append(label)
            return
        self.values.append(value)
        self.labels.append(label)

    def pct(self, p: float) -> float:
        if not self.values:
            return float("nan")
        v = sorted(self.values)
        return v[min(len(v) - 1, max(0, round(p / 100 * len(v) + 0.5) - 1))]

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    def slowest(self, n: int = 5) -> list[tuple[float, str]]:
        return sorted(zip(self.values, self.labels, strict=True), reverse=True)[:n]


def bench_app_class():
    """MpSandboxApp plus an observer of composed frames (see the module docstring)."""
    from textual._compositor import CompositorUpdate

    from mpsandbox.tui.app import MpSandboxApp

    class BenchApp(MpSandboxApp):
        # Relative CSS paths resolve next to the subclass's module: point at the app's own.
        CSS_PATH = str(Path(sys.modules[MpSandboxApp.__module__].__file__).parent / "app.tcss")

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.frames = 0
            self.frame_seconds = 0.0
            self._probe: tuple[Callable[[], bool], asyncio.Future] | None = None

        def _display(self, screen: Any, renderable: Any) -> None:
            super()._display(screen, renderable)
            if renderable is None or self._batch_count:
                return
            t0 = time.perf_counter()
            # What the headless driver skips and a terminal needs: the escape sequences.
            if isinstance(renderable, CompositorUpdate):
                renderable.render_segments(self.console)
            else:
                self.console._render_buffer(self.console.render(renderable))
            now = time.perf_counter()
            self.frames += 1
            self.frame_seconds += now - t0
            probe = self._probe
            if probe is not None and not probe[1].done():
                try:
                    ok = probe[0]()
                except Exception as exc:  # a probe bug must not pass as a timeout
                    probe[1].set_exception(exc)
                    return
                if ok:
                    probe[1].set_result(now)

        def expect(self, check: Callable[[], bool]) -> asyncio.Future:
            """A future resolved (with the time) at the end of the first frame where
            ``check()`` holds."""
            fut = asyncio.get_running_loop().create_future()
            self._probe = (check, fut)
            return fut

    return BenchApp


def key_event(key: str):
    """The Key event a terminal driver sends for ``key`` (as Pilot builds it)."""
    import unicodedata

    from textual import events
    from textual.keys import REPLACED_KEYS, _character_to_key, _get_unicode_name_from_key

    if len(key) == 1 and not key.isalnum():
        key = _character_to_key(key)
    original = REPLACED_KEYS.get(key, key)
    try:
        char: str | None = unicodedata.lookup(_get_unicode_name_from_key(original))
    except KeyError:
        char = key if len(key) == 1 else None
    return events.Key(key, char)


async def timed_key(app: Any, key: str, check: Callable[[], bool], timeout: float) -> float | None:
    """Send ``key`` as the terminal driver would; seconds until a frame shows ``check()``."""
    fut = app.expect(check)
    event = key_event(key)
    t0 = time.perf_counter()
    app._driver.send_message(event)
    try:
        done = await asyncio.wait_for(fut, timeout)
    except TimeoutError:
        return None
    finally:
        app._probe = None
    return done - t0


async def until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    t0 = time.perf_counter()
    while not condition():
        if time.perf_counter() - t0 > timeout:
            raise SystemExit(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.005)
    return time.perf_counter() - t0


def visible_rows_loaded(table: Any) -> bool:
    top = int(table.scroll_y)
    end = min(table.total, top + max(1, table.size.height))
    return all(table.row_at(i) is not None for i in range(top, end))


def snapshot_busy(app: Any, table: Any) -> bool:
    from textual.worker import WorkerState

    return any(
        w.node is table
        and w.group == "event-table-snapshot"
        and w.state in (WorkerState.PENDING, WorkerState.RUNNING)
        for w in app.workers
    )


def rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def settings_for(db: Path, tmp: Path):
    from mpsandbox.config import Settings

    return Settings(
        host="127.0.0.1", port=0, db=db, schema_dirs=SCHEMA_DIRS, cache_dir=tmp / "cache"
    )


async def first_paint(app: Any, pilot: Any, t_start: float) -> float:
    """Seconds from t_start to the end of the first frame showing the newest rows."""
    from mpsandbox.tui.widgets.event_table import EventTable

    def shown() -> bool:
        try:
            table = app.screen.query_one(EventTable)
        except Exception:
            return False
        return table.total > 0 and table.row_at(0) is not None

    fut = app.expect(shown)
    if shown():  # already painted before run_test handed over: take the next frame
        app.screen.refresh()
    done = await asyncio.wait_for(fut, 60)
    app._probe = None
    return done - t_start


#: (label, query) typed one key at a time in the filter bar.
def filter_queries(stream: str, title: str, word: str) -> list[tuple[str, str]]:
    return [
        ("is:invalid", "is:invalid"),
        ("stream:NAME", f"stream:{stream}"),
        ("action:click", "action:click"),
        ("-is:valid", "-is:valid"),
        ("schema:TITLE", f"schema:{title}"),
        ("free text", word),
    ]


async def read_only_phase(db: Path, tmp: Path, out: dict[str, Any]) -> None:
    """listen=False: first paint, memory, filter keystrokes."""
    from mpsandbox.query import QuerySyntaxError, parse_query
    from mpsandbox.tui.widgets.event_table import EventTable
    from mpsandbox.tui.widgets.filter_bar import FilterBar

    BenchApp = bench_app_class()
    out["rss_baseline"] = rss()
    t_start = time.perf_counter()
    app = BenchApp(settings_for(db, tmp), listen=False)
    async with app.run_test(size=SIZE) as pilot:
        out["first_paint_ro"] = await first_paint(app, pilot, t_start)
        table = app.screen.query_one(EventTable)
        out["total_rows"] = table.total
        await asyncio.sleep(0.5)
        out["rss_painted"] = rss()
        # The exact total (counted in the background after the first rows are shown).
        await until(lambda: not getattr(table, "counting", False), 120, "the exact total")
        out["total_rows"] = table.total
        out["counted_after"] = time.perf_counter() - t_start

        # The navigation keys of part 4, without load: a baseline for them.
        timings, per_key, _, _ = await press_keys(app, table, LOAD_KEYS, time.perf_counter() + 6)
        out["keys_idle"] = timings
        out["keys_idle_per_key"] = per_key
        if detail_open(app):
            await pilot.press("escape")
        await pilot.press("f")
        await until(
            lambda: table.following and not snapshot_busy(app, table), 60, "following again"
        )

        # A stream, a schema title and a word that really occur, from the newest rows.
        row = table.row_at(0)
        stream, title = row["stream"], row["schema_title"]
        bar = app.screen.query_one(FilterBar)
        problem = bar.query_one(".filter-problem")
        await pilot.press("slash")
        await until(lambda: bar.input.has_focus, 5, "the filter bar to take focus")
        timings = Timings()
        per_query: dict[str, Timings] = {}
        counted: list[tuple[str, float | None]] = []
        for label, query in filter_queries(stream, title, "wikidata"):
            per = per_query[label] = Timings()
            for n in range(1, len(query) + 1):
                text = query[:n]
                try:
                    parse_query(text)
                    message = None
                except QuerySyntaxError as exc:
                    message = str(exc)
                g0 = table._generation

                def shown(text=text, message=message, g0=g0) -> bool:
                    if bar.input.value != text:
                        return False
                    if message is not None:
                        return bar.has_class("-invalid") and str(problem.content) == message
                    flt = table.event_filter.query
                    return (
                        flt is not None
                        and flt.text == text
                        and table._generation > g0
                        and not snapshot_busy(app, table)
                        and not bar.has_class("-invalid")
                        and visible_rows_loaded(table)
                    )

                kind = "syntax" if message else _query_kind(text)
                t_key = time.perf_counter()
                seconds = await timed_key(app, text[-1], shown, timeout=120)
                tag = f"{text!r} ({kind})"
                timings.add(seconds, tag)
                per.add(seconds, tag)
                if seconds is None:
                    print(f"  filter {tag}: no result within 120 s", flush=True)
                if args_verbose():
                    shown_ms = "timeout" if seconds is None else f"{seconds * 1000:.0f} ms"
                    print(f"    {tag:<60} {shown_ms}", flush=True)
            # The last key of the query: how long until the exact total is shown, too.
            counted.append((label, await _until_counted(app, table, t_key)))
            # Clear the bar and wait until the whole table is back (not timed).
            g0 = table._generation
            bar.input.value = ""
            await until(
                lambda g0=g0: table._generation > g0 and not snapshot_busy(app, table),
                300,
                "the unfiltered table",
            )
        out["filter"] = timings
        out["filter_per_query"] = per_query
        out["filter_counted"] = counted
        out["rss_filtered"] = rss()
        out["frame_ms_ro"] = 1000 * app.frame_seconds / max(1, app.frames)


def args_verbose() -> bool:
    return bool(os.environ.get("BENCH_VERBOSE"))


async def _until_counted(app: Any, table: Any, t0: float) -> float | None:
    """Seconds from t0 to the end of the first frame with the exact total (None: > 120 s)."""
    counting = getattr(table, "counting", False)  # older tables count before showing rows
    if not counting:
        return None if counting is None else time.perf_counter() - t0
    fut = app.expect(lambda: not table.counting)
    try:
        done = await asyncio.wait_for(fut, 120)
    except TimeoutError:
        return None
    finally:
        app._probe = None
    return done - t0


def _query_kind(text: str) -> str:
    from mpsandbox.query import parse_query

    q = parse_query(text)
    if not q.terms:
        return "empty"
    kinds = []
    for t in q.terms:
        name = "text" if t.key is None else t.key
        kinds.append(("-" if t.negated else "") + name)
    return ",".join(kinds)


LOADGEN = r"""
import asyncio, json, random, sys, time
from collections import Counter
import aiohttp

url, rate, seconds, single_share, req_dir = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
valid = json.load(open(req_dir + "/valid_web_base.json"))
invalid = json.load(open(req_dir + "/invalid_web_base.json"))
rng = random.Random(7)
actions = ["click", "init", "scroll", "submit", "hover", "impression"]
def event():
    e = json.loads(json.dumps(invalid if rng.random() < 0.08 else valid))
    if isinstance(e.get("action"), str):
        e["action"] = rng.choice(actions)
    e["performer"]["session_id"] = "%020x" % rng.getrandbits(80) if rng.random() < 0.9 else "TOO-SHORT"
    return e
singles = [json.dumps(event()).encode() for _ in range(200)]
batches = [json.dumps([event() for _ in range(10)]).encode() for _ in range(50)]
headers = {"content-type": "text/plain;charset=UTF-8"}
statuses = Counter()
latencies = []
events_ok = 0
in_flight = 0
skipped = 0

async def post(session, body, n):
    global events_ok, in_flight
    in_flight += 1
    t0 = time.perf_counter()
    try:
        async with session.post(url, data=body, headers=headers) as resp:
            await resp.read()
            statuses[resp.status] += 1
            if resp.status in (201, 207, 400):
                events_ok += n
    except Exception as exc:
        statuses[type(exc).__name__] += 1
    finally:
        in_flight -= 1
        latencies.append(time.perf_counter() - t0)

async def main():
    global skipped
    conn = aiohttp.TCPConnector(limit=128)
    tasks = set()
    async with aiohttp.ClientSession(connector=conn) as session:
        start = time.perf_counter()
        single_rps = rate * single_share
        batch_rps = rate * (1 - single_share) / 10
        sent_single = sent_batch = 0
        print(json.dumps({"started": True}), flush=True)
        while True:
            now = time.perf_counter() - start
            if now >= seconds:
                break
            due_s = int(now * single_rps) - sent_single
            due_b = int(now * batch_rps) - sent_batch
            for _ in range(due_s):
                if in_flight >= 512:
                    skipped += 1
                else:
                    t = asyncio.ensure_future(post(session, rng.choice(singles), 1))
                    tasks.add(t); t.add_done_callback(tasks.discard)
                sent_single += 1
            for _ in range(due_b):
                if in_flight >= 512:
                    skipped += 10
                else:
                    t = asyncio.ensure_future(post(session, rng.choice(batches), 10))
                    tasks.add(t); t.add_done_callback(tasks.discard)
                sent_batch += 1
            await asyncio.sleep(0.005)
        if tasks:
            await asyncio.wait(tasks, timeout=30)
        elapsed = time.perf_counter() - start
    latencies.sort()
    n = len(latencies)
    print(json.dumps({
        "seconds": elapsed, "events_ok": events_ok, "events_per_s": events_ok / elapsed,
        "requests": n, "skipped_events": skipped, "statuses": dict(statuses),
        "p50_ms": latencies[n // 2] * 1000 if n else None,
        "p99_ms": latencies[min(n - 1, int(n * 0.99))] * 1000 if n else None,
    }), flush=True)

asyncio.run(main())
"""

#: Keys pressed under load, in a loop: move, page, open and close the detail, follow.
LOAD_KEYS = [
    "down",
    "down",
    "pagedown",
    "up",
    "pagedown",
    "enter",
    "escape",
    "f",
    "down",
    "up",
    "f",
]


async def load_phase(db: Path, tmp: Path, args: argparse.Namespace, out: dict[str, Any]) -> None:
    """listen=True on a copy: first paint, then keys every ~100 ms under HTTP load."""
    from mpsandbox.tui.widgets.event_table import EventTable

    BenchApp = bench_app_class()
    t_start = time.perf_counter()
    app = BenchApp(settings_for(db, tmp), listen=True)
    async with app.run_test(size=SIZE) as pilot:
        out["first_paint_listen"] = await first_paint(app, pilot, t_start)
        await until(lambda: app.status.listening or app.status.port_problem, 60, "the intake")
        if not app.status.listening:
            raise SystemExit(f"the intake did not start: {app.status.port_problem}")
        out["listening_after"] = time.perf_counter() - t_start
        table = app.screen.query_one(EventTable)
        reader = app.reader
        url = app.status.url + "/v1/events"
        first_id = await app.read(reader.max_event_id)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            LOADGEN,
            url,
            str(args.rate),
            str(args.seconds),
            str(args.single_share),
            str(REQ),
            stdout=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None
        await proc.stdout.readline()  # started
        t_load = time.perf_counter()
        cpu0 = _cpu_seconds()
        await asyncio.sleep(1.0)  # let the load settle
        keys = os.environ.get("BENCH_KEYS", "").split() or LOAD_KEYS
        timings, per_key, lost, rss_peak = await press_keys(
            app, table, keys, t_load + args.seconds - 1.0
        )
        cpu1, t_cpu = _cpu_seconds(), time.perf_counter() - t_load
        out["cpu_app"] = (cpu1[0] - cpu0[0]) / t_cpu
        out["cpu_intake"] = (cpu1[1] - cpu0[1]) / t_cpu
        line = await asyncio.wait_for(proc.stdout.readline(), args.seconds + 120)
        await proc.wait()
        load = json.loads(line)
        await asyncio.sleep(1.0)
        last_id = await app.read(reader.max_event_id)
        out["load"] = load
        out["committed_per_s"] = (last_id - first_id) / load["seconds"]
        out["keys"] = timings
        out["keys_per_key"] = per_key
        out["keys_lost"] = lost
        out["rss_load_peak"] = rss_peak
        out["frames_load"] = app.frames
        out["frame_ms_load"] = 1000 * app.frame_seconds / max(1, app.frames)
        out["totals_checked"] = await _check_totals(app, pilot, table, url)
        import psutil

        children = [
            c
            for c in psutil.Process().children(recursive=True)
            if "aiohttp" not in " ".join(c.cmdline())
        ]
        out["rss_children"] = sum(c.memory_info().rss for c in children)


async def press_keys(
    app: Any, table: Any, keys: list[str], until_t: float
) -> tuple[Timings, dict[str, Timings], list[str], int]:
    """Press ``keys`` in a loop, one every ~100 ms until ``until_t``; time each to the frame
    that shows its effect. Returns all timings, timings per key, the presses that a table
    refresh undid within 150 ms, and the peak RSS seen."""
    reader = app.reader
    timings = Timings()
    per_key: dict[str, Timings] = {}
    lost: list[str] = []
    rss_peak = rss()
    i = 0
    while time.perf_counter() < until_t:
        slot = time.perf_counter()
        key = keys[i % len(keys)]
        i += 1
        check, still = _load_check(app, table, key)
        if check is None:
            continue
        if key == "f":
            newest = await app.read(reader.max_event_id)
            check, still = _follow_check(table, newest)
        seconds = await timed_key(app, key, check, timeout=10)
        label = f"{key} ({'following' if table.following else 'paused'})"
        timings.add(seconds, key)
        per_key.setdefault(key, Timings()).add(seconds, label)
        if seconds is not None and still is not None:
            await asyncio.sleep(0.15)
            if not still():
                lost.append(key)
        rss_peak = max(rss_peak, rss())
        await asyncio.sleep(max(0.0, 0.1 - (time.perf_counter() - slot)))
    return timings, per_key, lost, rss_peak


async def _check_totals(app: Any, pilot: Any, table: Any, url: str) -> list[tuple[str, int, int]]:
    """The table's total while following is kept up to date by adding the matches among the
    new events to the last full count. Check it against a full count: unfiltered (as kept
    through the whole load), and with a filter set before a second, short burst of load.
    Returns (what, shown, counted) for each."""
    from dataclasses import replace

    from mpsandbox.query import parse_query
    from mpsandbox.store import EventFilter

    if detail_open(app):
        await pilot.press("escape")

    def settled() -> bool:
        return table.following and not table.counting and not snapshot_busy(app, table)

    async def check(what: str) -> tuple[str, int, int]:
        await asyncio.sleep(0.5)  # the last deliveries
        await until(settled, 120, f"the table ({what}) to settle")
        shown, anchor = table.total, table._anchor
        counted = await app.read(
            app.reader.count_events, replace(table.event_filter, max_id=anchor)
        )
        return what, shown, counted

    out = []
    g0 = table._generation
    await pilot.press("f")
    await until(lambda: table._generation > g0, 10, "following")
    out.append(await check("no filter, through the load"))
    table.set_filter(EventFilter(query=parse_query("is:invalid")), follow=True)
    await until(settled, 120, "the filtered table")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        LOADGEN,
        url,
        "1000",
        "3",
        "0.2",
        str(REQ),
        stdout=asyncio.subprocess.PIPE,
    )
    await proc.communicate()
    out.append(await check("is:invalid, through 3 s of load"))
    table.set_filter(EventFilter(), follow=True)
    return out


def headless_reference(db: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The same load against ``mpsandbox serve`` (no terminal UI) on the same database: what
    this machine's intake manages without the app, to tell the app's cost from the
    machine's limit."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "mpsandbox", "serve", "--port", str(port), "--db", str(db)]
    cmd += ["--output", "none"]
    for d in SCHEMA_DIRS:
        cmd += ["--schemas", str(d)]
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        ready = server.stdout.readline() if server.stdout else ""
        if '"ready"' not in ready:
            return {"error": f"mpsandbox serve did not start: {ready.strip()!r}"}
        before = _max_event_id(db)
        loadgen = [sys.executable, "-c", LOADGEN, f"http://127.0.0.1:{port}/v1/events"]
        loadgen += [str(args.rate), str(args.seconds), str(args.single_share), str(REQ)]
        out = subprocess.run(loadgen, capture_output=True, text=True, timeout=args.seconds + 120)
        load = json.loads(out.stdout.strip().splitlines()[-1])
        time.sleep(1.0)
        load["committed_per_s"] = (_max_event_id(db) - before) / load["seconds"]
        return load
    finally:
        server.terminate()
        server.wait(60)


def _max_event_id(db: Path) -> int:
    from mpsandbox.store import StoreReader

    with StoreReader(db) as reader:
        return reader.max_event_id()


def _cpu_seconds() -> tuple[float, float]:
    """CPU seconds used so far by this process (the app) and by its other children (the
    intake and store processes; the load generator excluded)."""
    import psutil

    me = psutil.Process()
    t = me.cpu_times()
    children = 0.0
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "aiohttp" in " ".join(child.cmdline()):
                continue  # the load generator
            c = child.cpu_times()
            children += c.user + c.system
    return t.user + t.system, children


def detail_open(app: Any) -> bool:
    """The Live screen shows an event's detail in place of its list."""
    return bool(getattr(app.screen, "detail_open", False))


def _load_check(app: Any, table: Any, key: str):
    """(check, still): what the next frame must show after ``key``, and what must still
    hold 150 ms later (the press was not undone by a table refresh)."""
    if key in ("down", "up", "pagedown"):
        if detail_open(app):
            return None, None
        page = max(1, table.size.height - 1)
        c0 = table.cursor
        want = {"down": c0 + 1, "up": max(0, c0 - 1), "pagedown": c0 + page}[key]
        want = min(want, max(0, table.total - 1))
        if key == "up" and c0 == 0:
            return None, None

        def moved() -> bool:
            return table.cursor == want and visible_rows_loaded(table)

        return moved, lambda: table.cursor == want
    if key == "enter":
        if detail_open(app) or table.selected_id is None:
            return None, None
        want = table.selected_id

        def opened() -> bool:
            detail = app.screen.detail
            return detail_open(app) and detail.event_id == want and detail.data is not None

        return opened, None
    if key == "escape":
        if not detail_open(app):
            return None, None
        return (lambda: not detail_open(app) and table.display), None
    if key == "f":
        return (lambda: True), None  # replaced by _follow_check (needs the newest id)
    raise AssertionError(key)


def _follow_check(table: Any, newest: int):
    def following() -> bool:
        anchor = table._anchor
        return (
            table.following
            and anchor is not None
            and anchor >= newest
            and table.cursor == 0
            and table.row_at(0) is not None
        )

    return following, None


NAV_KEYS = ("down", "up", "pagedown", "f")


def _subset(per_key: dict[str, Timings], keys: tuple[str, ...]) -> Timings:
    out = Timings()
    for key in keys:
        per = per_key.get(key)
        if per is not None:
            for value, label in zip(per.values, per.labels, strict=True):
                out.add(value, label)
    return out


def _per_key_lines(per_key: dict[str, Timings]) -> None:
    for key, per in per_key.items():
        worst = max(per.values, default=float("nan"))
        timeouts = f"  timeouts {len(per.timeouts)}" if per.timeouts else ""
        print(
            f"  {key:<9} n={len(per.values):<3} p50 {ms(per.pct(50)):>9}"
            f"  p95 {ms(per.pct(95)):>9}  max {ms(worst):>9}{timeouts}"
        )


def report(name: str, value: str, target: str, ok: bool | None) -> None:
    mark = "" if ok is None else ("  PASS" if ok else "  MISS")
    print(f"{name:<48} {value:>20}   target {target}{mark}", flush=True)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--rate", type=float, default=2000, help="events/s over HTTP in part 4")
    ap.add_argument("--seconds", type=float, default=20, help="length of the load in part 4")
    ap.add_argument(
        "--single-share",
        type=float,
        default=0.2,
        help="share of the load's events sent in 1-event bodies (the rest in 10-event ones)",
    )
    ap.add_argument("--rebuild", action="store_true", help="build the database even if cached")
    ap.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--skip-load", action="store_true", help="skip part 4")
    ap.add_argument("--skip-read-only", action="store_true", help="skip parts 2-3")
    ap.add_argument(
        "--skip-reference",
        action="store_true",
        help="skip the same load on `mpsandbox serve` (no UI) before part 4",
    )
    ap.add_argument("--build-only", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.build_only:
        print(json.dumps(build_db(args.build_only, args.events)))
        return

    os.environ.setdefault("TZ", "UTC")
    db = _cache_path(args.cache_dir, args.events)
    built: dict[str, Any] | None = None
    if args.rebuild or not db.exists():
        print(f"building {args.events:,} events into {db} ...", flush=True)
        tmp_db = db.with_suffix(".building")
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, __file__, "--events", str(args.events), "--build-only", str(tmp_db)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise SystemExit(f"building the database failed:\n{proc.stderr}")
        built = json.loads(proc.stdout.strip().splitlines()[-1])
        built["wall_s"] = time.perf_counter() - t0
        for suffix in ("-wal", "-shm"):  # of a database this one replaces
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        tmp_db.replace(db)
        for stale in db.parent.glob(db.name.rsplit("-", 1)[0] + "-*.db"):
            if stale != db:  # built for other store migrations: no longer usable
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{stale}{suffix}").unlink(missing_ok=True)
    size_mb = db.stat().st_size / 2**20
    print(f"database: {db} ({size_mb:,.0f} MB)", flush=True)

    # Imported only now, so the baseline RSS below is what the app's own modules cost.
    import mpsandbox.tui.app  # noqa: F401

    tmp = Path(tempfile.mkdtemp(prefix="mpsandbox-tui-bench-"))
    results: dict[str, Any] = {}
    try:
        print(
            "part 2-3: read-only app (listen=False), first paint, memory, filter keys", flush=True
        )
        if not args.skip_read_only:
            asyncio.run(read_only_phase(db, tmp, results))
        if not args.skip_load:
            copy_db = tmp / "load.db"
            t0 = time.perf_counter()
            subprocess.run(["cp", "--reflink=auto", str(db), str(copy_db)], check=True)
            results["copy_s"] = time.perf_counter() - t0
            print(
                f"part 4: app with intake (listen=True) on a copy ({results['copy_s']:.1f} s to"
                f" copy), {args.rate:,.0f} events/s for {args.seconds:g} s, keys every ~100 ms",
                flush=True,
            )
            if not args.skip_reference:
                print("part 4, reference: the same load on `mpsandbox serve`, no UI", flush=True)
                results["reference"] = headless_reference(copy_db, args)
            asyncio.run(load_phase(copy_db, tmp, args, results))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    summary(args, built, results)


def summary(args: argparse.Namespace, built: dict[str, Any] | None, r: dict[str, Any]) -> None:
    mb = 2**20
    print()
    print(
        f"mpsandbox TUI benchmark: {r.get('total_rows', args.events):,} events,"
        f" {os.cpu_count()} cores,"
        f" terminal {SIZE[0]}x{SIZE[1]}"
    )
    if built is not None:
        report(
            "build: judge templates + write via StoreWriter",
            f"{built['wall_s']:.1f} s",
            "< 120 s",
            built["wall_s"] < 120,
        )
        t = built["templates"]
        print(
            f"  {sum(t.values())} templates judged: {t['valid']} valid, {t['invalid']} invalid,"
            f" {t['error']} error; {built['requests']:,} requests"
        )
    else:
        print("build: reused the cached database (--rebuild to rebuild)")
    if "first_paint_ro" in r:
        report(
            "first paint, listen=False",
            ms(r["first_paint_ro"]),
            "< 1.5 s",
            r["first_paint_ro"] < 1.5,
        )
        report(
            "RSS before the app started (baseline)", f"{r['rss_baseline'] / mb:.0f} MB", "-", None
        )
        report(
            "RSS after first paint",
            f"{r['rss_painted'] / mb:.0f} MB",
            "< 200 MB",
            r["rss_painted"] < 200 * mb,
        )
        report(
            "RSS after the filter keystrokes",
            f"{r['rss_filtered'] / mb:.0f} MB",
            "< 200 MB",
            r["rss_filtered"] < 200 * mb,
        )
        report(
            "first paint -> exact total of the table",
            ms(r["counted_after"]),
            "-",
            None,
        )
        k0: Timings = r["keys_idle"]
        report(
            f"key -> screen without load, p50 ({len(k0.values)} keys)", ms(k0.pct(50)), "-", None
        )
        report("key -> screen without load, p95", ms(k0.pct(95)), "< 100 ms", k0.pct(95) < 0.1)
        nav0 = _subset(r["keys_idle_per_key"], NAV_KEYS)
        report(
            "  moving keys only (up/down/pagedown/f), p95",
            ms(nav0.pct(95)),
            "< 100 ms",
            nav0.pct(95) < 0.1,
        )
        _per_key_lines(r["keys_idle_per_key"])
        f: Timings = r["filter"]
        report(
            f"filter keystroke -> results, median ({len(f.values)} keys)",
            ms(f.median),
            "< 100 ms",
            f.median < 0.1,
        )
        report("filter keystroke -> results, p95", ms(f.pct(95)), "-", None)
        for label, per in r["filter_per_query"].items():
            worst = per.slowest(1)
            worst_s = f", worst {worst[0][1]} {ms(worst[0][0])}" if worst else ""
            print(f"  {label:<14} median {ms(per.median):>9}, p95 {ms(per.pct(95)):>9}{worst_s}")
        if f.timeouts:
            print(f"  no result within the timeout: {', '.join(f.timeouts)}")
        counts = ", ".join(
            f"{label} {'>120 s' if sec is None else ms(sec)}" for label, sec in r["filter_counted"]
        )
        print(f"  last key -> exact total shown: {counts}")
    if "load" in r:
        load = r["load"]
        report(
            "first paint, listen=True",
            ms(r["first_paint_listen"]),
            "< 1.5 s",
            r["first_paint_listen"] < 1.5,
        )
        report(
            "events/s committed during the load",
            f"{r['committed_per_s']:,.0f} ev/s",
            f">= {args.rate:,.0f}",
            r["committed_per_s"] >= args.rate * 0.98,
        )
        ref = r.get("reference")
        if ref is not None and "error" in ref:
            print(f"  reference without the UI failed: {ref['error']}")
        elif ref is not None:
            report(
                "  same load, `mpsandbox serve` (no UI)",
                f"{ref['committed_per_s']:,.0f} ev/s",
                "(this machine's intake)",
                None,
            )
        print(
            f"  load generator: {load['events_ok']:,} events answered in {load['seconds']:.1f} s,"
            f" statuses {load['statuses']}, p50/p99 {load['p50_ms']:.1f}/{load['p99_ms']:.1f} ms"
            f", {load['skipped_events']:,} events not sent (512 requests in flight)"
        )
        k: Timings = r["keys"]
        report(f"key -> screen under load, p50 ({len(k.values)} keys)", ms(k.pct(50)), "-", None)
        report("key -> screen under load, p95", ms(k.pct(95)), "< 100 ms", k.pct(95) < 0.1)
        nav = _subset(r["keys_per_key"], NAV_KEYS)
        report(
            "  moving keys only (up/down/pagedown/f), p95",
            ms(nav.pct(95)),
            "< 100 ms",
            nav.pct(95) < 0.1,
        )
        _per_key_lines(r["keys_per_key"])
        if r["keys_lost"]:
            print(
                f"  presses undone by a table refresh within 150 ms: {len(r['keys_lost'])}"
                f" ({', '.join(r['keys_lost'][:10])})"
            )
        report(
            "RSS under load (app process, peak)",
            f"{r['rss_load_peak'] / mb:.0f} MB",
            "< 200 MB",
            r["rss_load_peak"] < 200 * mb,
        )
        for query, shown, counted in r.get("totals_checked", []):
            report(
                f"  total shown vs counted, {query}",
                f"{shown:,} / {counted:,}",
                "equal",
                shown == counted,
            )
        if "rss_children" in r:
            report("  intake + store processes", f"{r['rss_children'] / mb:.0f} MB", "-", None)
        report("CPU during the load: app process", f"{r['cpu_app']:.0%} of a core", "-", None)
        report("  intake + store processes", f"{r['cpu_intake']:.0%} of a core", "-", None)
        print(
            f"  frames composed under load: {r['frames_load']:,},"
            f" {r['frame_ms_load']:.1f} ms each to turn into terminal output"
        )


if __name__ == "__main__":
    main()
