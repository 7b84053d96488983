"""Metric previews benchmark: the example metrics over a store of N events (default 1,000,000).

    .venv/bin/python bench/metrics.py [--events 1000000] [--seed-events 10000] [--keep DIR]

Judges --seed-events real web/base events (1.3.0, and a stand-in 2.1.0 with the experiment
block for Test Kitchen-style events) through the real pipeline and writer, then copies them
in SQL with fresh session, pageview and subject ids until the store holds --events (copying
is what makes a million cheap; each copy is a distinct set of units, so distinct counts grow
with the store). Prints the time of each example metric, ungrouped and grouped by
experiment.assigned, as `mpsandbox metrics` computes them (one read transaction).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
WM = ROOT / "tests" / "data"  # reference data, as the tests use it
SECONDARY = WM / "schemas/secondary/jsonschema"
PRIMARY = WM / "schemas/primary/jsonschema"


def standin(root: Path) -> Path:
    """web/base 2.1.0 as the public mirror lacks it: 1.3.0 plus the experiment block."""
    base = yaml.safe_load((SECONDARY / "analytics/product_metrics/web/base/1.3.0.yaml").read_text())
    fragment = yaml.safe_load(
        (ROOT / "schemas/jsonschema/fragment/mpsandbox/experiment/1.0.0.yaml").read_text()
    )
    base["$id"] = "/analytics/product_metrics/web/base/2.1.0"
    base["properties"]["experiment"] = fragment["properties"]["experiment"]
    base.pop("examples", None)
    folder = root / "analytics/product_metrics/web/base"
    folder.mkdir(parents=True)
    (folder / "2.1.0.yaml").write_text(yaml.safe_dump(base))
    return root


def _event(action: str, sid: str, pid: str, experiment: dict | None) -> dict:
    e = {
        "$schema": "/analytics/product_metrics/web/base/1.3.0",
        "meta": {"stream": "product_metrics.web_base", "domain": "en.wikipedia.org"},
        "dt": "2024-10-01T12:00:00.000Z",
        "action": action,
        "agent": {"client_platform": "mediawiki_js", "client_platform_family": "desktop_browser"},
        "performer": {"is_logged_in": True, "session_id": sid, "pageview_id": pid},
    }
    if experiment is not None:
        e["$schema"] = "/analytics/product_metrics/web/base/2.1.0"
        e["experiment"] = experiment
    return e


def seed_events(n: int, rng: random.Random) -> list[dict]:
    """Sessions of 1-3 pageviews, each with an init, a click on 35% and a submit on 40% of
    those; a fifth of the sessions in an experiment (exposure on the first pageview)."""
    from mpsandbox.platform.experiments import subject_id

    events: list[dict] = []
    session = 0
    while len(events) < n:
        session += 1
        sid = f"s{session:019d}"
        experiment = None
        if rng.random() < 0.2:
            experiment = {
                "enrolled": "sticky-header-test",
                "assigned": rng.choice(["control", "treatment"]),
                "subject_id": subject_id(1000 + session, "sticky-header-test"),
                "sampling_unit": "mw-user",
                "coordinator": "default",
            }
        for page in range(rng.randint(1, 3)):
            pid = f"p{session:013d}{page:06d}"
            if experiment is not None and page == 0:
                events.append(_event("experiment_exposure", sid, pid, experiment))
            events.append(_event("init", sid, pid, experiment))
            if rng.random() < 0.35:
                events.append(_event("click", sid, pid, experiment))
                if rng.random() < 0.4:
                    events.append(_event("submit", sid, pid, experiment))
    return events[:n]


def build(db: Path, total: int, seed: int) -> float:
    from direct_write import judge_and_submit
    from mpsandbox.config import Settings
    from mpsandbox.sandbox import Sandbox

    started = time.perf_counter()
    schemas = standin(db.parent / "standin")
    settings = Settings(
        host="127.0.0.1",
        port=0,
        db=db,
        schema_dirs=(schemas, SECONDARY, PRIMARY),
        cache_dir=db.parent / "cache",
        watch_schemas=False,
        writer_process=False,
    )
    sandbox = Sandbox(settings)
    sandbox.start()
    events = seed_events(seed, random.Random(7))
    try:
        for i in range(0, len(events), 500):
            batch = events[i : i + 500]
            judge_and_submit(
                sandbox, batch, received_at=time.time(), request_id=f"bench-{i}"
            ).result(120)
    finally:
        sandbox.writer.close()
        if sandbox.reader is not None:
            sandbox.reader.close()
    judged = time.perf_counter() - started
    print(f"judged and stored {len(events):,} seed events in {judged:.1f} s")

    from mpsandbox.store import codec, connect

    # The store's connection reads packed event JSON (unpack_text); copies are packed again
    # with the store's own dictionary, as the writer would have.
    conn = connect(db)
    conn.isolation_level = ""  # the commits below, as with a plain connection
    packer = codec.Packer("events.event")
    packer.load(conn)
    conn.create_function("pack_text", 1, lambda text: packer.pack(text.encode("utf-8")))
    columns = [r[1] for r in conn.execute("PRAGMA table_info(events)") if r[1] != "id"]
    replaced = {
        "session_id": "session_id || '-' || :copy",
        "pageview_id": "pageview_id || '-' || :copy",
        "event": (
            "pack_text(CASE WHEN instr(unpack_text(event), '\"subject_id\"')"
            " THEN json_set(unpack_text(event),"
            " '$.performer.session_id', session_id || '-' || :copy,"
            " '$.performer.pageview_id', pageview_id || '-' || :copy,"
            " '$.experiment.subject_id',"
            " substr(json_extract(unpack_text(event), '$.experiment.subject_id'),"
            " 1, 56) || printf('%08d', :copy))"
            " ELSE json_set(unpack_text(event), '$.performer.session_id',"
            " session_id || '-' || :copy,"
            " '$.performer.pageview_id', pageview_id || '-' || :copy) END)"
        ),
    }
    select = ", ".join(replaced.get(c, c) for c in columns)
    max_seed = conn.execute("SELECT max(id) FROM events").fetchone()[0]
    copied = time.perf_counter()
    copy = 1
    while True:
        have = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        if have >= total:
            break
        take = min(total - have, seed)
        conn.execute(
            f"INSERT INTO events ({', '.join(columns)}) SELECT {select} FROM events"
            f" WHERE id <= :max ORDER BY id LIMIT :take",
            {"copy": copy, "max": max_seed, "take": take},
        )
        conn.commit()
        copy += 1
    # The copies bypass the writer: give the indexes it keeps what it would have.
    from mpsandbox.store import metric_index, text_index

    conn.execute(
        "INSERT INTO event_experiments (event_id) SELECT id FROM events WHERE id > ?"
        " AND instr(event, ?)",
        (max_seed, metric_index.EXPERIMENT_MARK),
    )
    text_index.catch_up(conn)
    conn.commit()
    conn.close()
    print(f"copied up to {total:,} events in {time.perf_counter() - copied:.1f} s")
    return judged


def measure(db: Path) -> None:
    from mpsandbox.metrics import compute_stored, default_metric_dirs, load_definitions, parse_by
    from mpsandbox.store import StoreReader

    definitions = load_definitions(default_metric_dirs())
    with StoreReader(db) as reader:
        n = reader.count_events()
        print(f"{n:,} events, {len(definitions.metrics)} example metrics")
        for label, by in (("as defined", None), ("by experiment.assigned", "experiment.assigned")):
            group_by = None if by is None else parse_by(by)
            started = time.perf_counter()
            results = compute_stored(reader, definitions.metrics, by=group_by)
            wall = time.perf_counter() - started
            print(f"\n{label}: all metrics in {wall:.2f} s")
            for r in results:
                total = r.total
                head = (
                    f"{total.ratio.numerator:,}/{total.ratio.denominator:,}"
                    if hasattr(total, "ratio")
                    else "/".join(f"{s.reached:,}" for s in total.steps)
                )
                print(
                    f"  {r.metric.name:<24} {r.seconds:6.2f} s  total {head}"
                    f"  groups {len(r.groups)}  {r.error or ''}"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed-events", type=int, default=10_000)
    parser.add_argument("--keep", type=Path, default=None, help="build (or reuse) the DB here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        db = folder / "metrics-bench.db"
        if not db.exists():
            build(db, args.events, args.seed_events)
        measure(db)


if __name__ == "__main__":
    main()
