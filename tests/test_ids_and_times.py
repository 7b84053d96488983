"""The intake's ids and times: the cheap ways of making them keep the formats and the
uniqueness of the obvious ones (datetime, os.urandom)."""

from __future__ import annotations

import os
import random
import re
import time
from datetime import UTC, datetime

from mpsandbox.fillins import iso_ms, new_uuid
from mpsandbox.platform.identifiers import iso_utc

UUID7 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def _datetime_iso(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _date_to_iso_string(epoch: float) -> str:
    whole = int(epoch)
    ms = round((epoch - whole) * 1000)
    if ms == 1000:
        whole, ms = whole + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{ms:03d}Z"


def _moments() -> list[float]:
    rng = random.Random(15)
    now = time.time()
    edges = [
        s + f
        for s in (0, 1, 1_700_000_000, 1_999_999_999)
        for f in (0.0, 0.0005, 0.0004999, 0.9994999, 0.9995, 0.9999994, 0.9999995, 0.999_999_9)
    ]
    return (
        edges
        + [rng.uniform(0, 4e9) for _ in range(20_000)]
        + [now + i * 1e-4 for i in range(20_000)]  # many in the same second
        + [now - i * 0.37 for i in range(2_000)]  # seconds going back and forth
    )


def test_iso_utc_is_the_datetime_text_for_every_moment():
    for epoch in _moments():
        assert iso_utc(epoch) == _datetime_iso(epoch), epoch
    assert iso_utc(-1.5) == _datetime_iso(-1.5)


def test_iso_ms_is_date_to_iso_string_for_every_moment():
    for epoch in _moments():
        assert iso_ms(epoch) == _date_to_iso_string(epoch), epoch


def test_new_uuid_is_a_unique_time_ordered_version_7_uuid():
    before = time.time_ns() // 1_000_000
    ids = [new_uuid() for _ in range(50_000)]
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == len(ids)
    assert all(UUID7.fullmatch(i) for i in ids)
    stamps = [int(i[:8] + i[9:13], 16) for i in ids]
    assert before <= stamps[0] and stamps == sorted(stamps) and stamps[-1] <= after


def test_new_uuid_ignores_random_seed_and_differs_in_a_forked_child():
    random.seed(1)
    first = new_uuid()
    random.seed(1)
    assert new_uuid()[14:] != first[14:]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, then gone
        os.write(write, new_uuid().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    os.close(read)
    mine = new_uuid()
    assert UUID7.fullmatch(child) and child[14:] != mine[14:]
