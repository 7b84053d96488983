"""Receive times as the screens show them (local time; tests pin TZ=UTC)."""

from __future__ import annotations

import time


def _local(ts: float, fmt: str, millis: bool) -> str:
    text = time.strftime(fmt, time.localtime(ts))
    return text + f".{int(ts * 1000) % 1000:03d}" if millis else text


def clock_ms(ts: float | None) -> str:
    """``12:03:30.250``: a table row's time."""
    return "" if ts is None else _local(ts, "%H:%M:%S", True)


def short_time(ts: float | None) -> str:
    """``10-01 12:03:30``: first and last seen."""
    return "" if ts is None else _local(ts, "%m-%d %H:%M:%S", False)


def full_time_ms(ts: float | None) -> str:
    """``2024-10-01 12:03:30.250``: one event's receive time."""
    return "?" if ts is None else _local(ts, "%Y-%m-%d %H:%M:%S", True)
