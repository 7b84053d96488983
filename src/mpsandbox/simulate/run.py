"""Pacing and sending: users run their scripts, POSTs go to an intake URL (``--to``) or
into the local pipeline (``intake.submit.handle_post`` on a Sandbox, as replay does).

``users`` users are active at once, each sending its POSTs in order (a user's next POST
waits for the answer to the previous one); ``rate`` caps events per second over all of
them. Without ``duration`` every user plays one visit and the run ends; with it, new users
keep arriving until ``duration`` seconds have passed (0: until cancelled), and the users
already started finish their visit.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mpsandbox.config import Settings
from mpsandbox.fixtures.replay import HttpTarget, LocalTarget
from mpsandbox.simulate.bugs import Bugs
from mpsandbox.simulate.plan import Planner
from mpsandbox.simulate.producers import Batch
from mpsandbox.wording import plural


@dataclass
class SimOptions:
    users: int = 20
    rate: float | None = None
    duration: float | None = None
    seed: int = 0
    bugs: bool = False
    timeout: float = 10.0
    max_consecutive_failures: int = 20


@dataclass
class SimResult:
    target: str
    requests_by_producer: Counter = field(default_factory=Counter)
    events_sent: int = 0
    by_status: Counter = field(default_factory=Counter)
    by_verdict: Counter = field(default_factory=Counter)
    transport_failures: int = 0
    last_failure: str | None = None
    aborted: str | None = None
    users: int = 0
    elapsed: float = 0.0
    out_of_sample: int = 0
    manifest: list[dict[str, Any]] = field(default_factory=list)
    bugs_not_injected: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.transport_failures == 0 and self.aborted is None

    def summary(self) -> str:
        rate = self.events_sent / self.elapsed if self.elapsed > 0 else 0.0
        lines = [
            f"simulated {plural(self.users, 'user')} into {self.target} in {self.elapsed:.1f} s: "
            f"{plural(self.events_sent, 'event')} sent ({rate:.1f}/s), "
            f"{self.out_of_sample} out of sample not sent",
            "requests by producer: "
            + (
                ", ".join(f"{k} {v}" for k, v in sorted(self.requests_by_producer.items()))
                or "none"
            ),
            "statuses: "
            + (", ".join(f"{k} ×{v}" for k, v in sorted(self.by_status.items())) or "none"),
        ]
        if self.by_verdict:
            lines.append(
                "events: " + ", ".join(f"{k} {v}" for k, v in sorted(self.by_verdict.items()))
            )
        if self.manifest or self.bugs_not_injected:
            lines.append(
                f"bugs injected: {len(self.manifest)}"
                + (
                    f" (not injected: {', '.join(self.bugs_not_injected)})"
                    if self.bugs_not_injected
                    else ""
                )
            )
        if self.transport_failures:
            lines.append(
                f"transport failures: {self.transport_failures} (last: {self.last_failure})"
            )
        if self.aborted:
            lines.append(f"stopped: {self.aborted}")
        return "\n".join(lines)


class Pacer:
    """At most ``rate`` events per second over everyone (None: as fast as answered)."""

    def __init__(self, rate: float | None):
        self.rate = rate if rate and rate > 0 else None
        self.next_at = time.monotonic()

    async def wait(self, events: int) -> None:
        if self.rate is None:
            return
        now = time.monotonic()
        at = max(self.next_at, now)
        self.next_at = at + events / self.rate
        if at > now:
            await asyncio.sleep(at - now)


async def simulate_async(
    planner: Planner,
    target: HttpTarget | LocalTarget,
    options: SimOptions,
    *,
    cancel: threading.Event | None = None,
) -> SimResult:
    result = SimResult(target=str(target))
    pacer = Pacer(options.rate)
    started = time.monotonic()
    in_a_row = 0
    next_index = 0

    def stopped() -> bool:
        return (cancel is not None and cancel.is_set()) or result.aborted is not None

    def more_users() -> bool:
        if stopped():
            return False
        if options.duration is None:
            return next_index < options.users
        return options.duration == 0 or time.monotonic() - started < options.duration

    async def send(batch: Batch) -> None:
        nonlocal in_a_row
        await pacer.wait(len(batch.items))
        batch.stamp(time.time())
        status, verdicts, failure = await target.send(batch.request(), time.time())
        result.requests_by_producer[batch.producer.name] += 1
        result.by_status[status] += 1
        result.by_verdict.update(verdicts)
        if failure is None:
            in_a_row = 0
            result.events_sent += len(batch.items)
        else:
            in_a_row += 1
            result.transport_failures += 1
            result.last_failure = failure
            if in_a_row >= options.max_consecutive_failures:
                result.aborted = f"{in_a_row} transport failures in a row ({failure})"

    async def user_slot() -> None:
        nonlocal next_index
        while more_users():
            index = next_index
            next_index += 1
            result.users += 1
            for batch in planner.script(index):
                if stopped():
                    return
                await send(batch)

    async with target:
        started = time.monotonic()
        await asyncio.gather(*(user_slot() for _ in range(max(1, options.users))))
    result.elapsed = time.monotonic() - started
    result.out_of_sample = sum(planner.stats.out_of_sample.values())
    if planner.bugs is not None:
        result.manifest = [b.as_dict() for b in planner.bugs.manifest]
        result.bugs_not_injected = list(planner.bugs.pending)
    return result


def make_planner(
    *,
    instruments: str | Path | None,
    stream_config: str | None,
    experiments_file: str | None,
    seed: int,
    bugs: bool,
) -> Planner:
    """A planner from an instruments folder, a stream config location and an experiments
    file (each optional; see :mod:`mpsandbox.simulate.plan`)."""
    from mpsandbox.instruments.definitions import default_location, load_location
    from mpsandbox.platform.experiments import load_experiments
    from mpsandbox.platform.stream_configs import load_location as load_streams

    location = Path(instruments) if instruments else default_location()
    definitions = load_location(location).definitions if location else []
    configs = load_streams(stream_config) if stream_config else None
    experiments = load_experiments(experiments_file) if experiments_file else None
    # The bugs' own draws (their labelled meta.ids) follow the seed too: the same run, the
    # same ids; another seed, other ids (no false duplicate across runs into one store).
    injected = Bugs(rng=random.Random(f"bugs:{seed}")) if bugs else None
    return Planner(definitions, configs, experiments, seed=seed, bugs=injected)


def simulate(
    planner: Planner,
    *,
    to: str | None = None,
    settings: Settings | None = None,
    options: SimOptions | None = None,
    cancel: threading.Event | None = None,
) -> SimResult:
    """Blocking :func:`simulate_async` on a loop of its own."""
    options = options or SimOptions()
    if to:
        target: HttpTarget | LocalTarget = HttpTarget(
            to, timeout=options.timeout, concurrency=max(1, options.users)
        )
    else:
        if settings is None:
            raise ValueError("the local pipeline needs settings (the store, schemas)")
        target = LocalTarget(settings)
    return asyncio.run(simulate_async(planner, target, options, cancel=cancel))
