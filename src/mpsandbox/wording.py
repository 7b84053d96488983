"""Counts in words, for every face: "1 request", "2 requests", "1,204 events".

One helper so that no message says "1 error groups" or "exported 1 requests".
"""

from __future__ import annotations


def plural(n: int, one: str, many: str | None = None) -> str:
    """``n`` with thousands separators and the noun that agrees with it (``many`` for nouns
    that do not just take an s)."""
    return f"{n:,} {one if n == 1 else (many or one + 's')}"
