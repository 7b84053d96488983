"""The Wilson score interval for a proportion: k successes out of n trials.

Chosen over the textbook ``p ± z·sqrt(p(1-p)/n)`` (the Wald interval) because a preview
sees small counts: Wald collapses to a zero-width interval at 0 of n or n of n and can run
below 0 or above 1, where Wilson stays inside [0, 1] and keeps a sensible width.

    centre    = (p + z²/2n) / (1 + z²/n)
    halfwidth = z · sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n)

with p = k/n. For n = 0 there is no rate and no interval (None); at k = 0 the lower bound
is exactly 0 and at k = n the upper bound exactly 1 (the formula gives them up to rounding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: The two-sided 95% normal quantile, Φ⁻¹(0.975).
Z95 = 1.959964


@dataclass(frozen=True, slots=True)
class Ratio:
    """``numerator`` of ``denominator`` with the rate and its Wilson interval (None
    when the denominator is 0)."""

    numerator: int
    denominator: int
    rate: float | None
    low: float | None
    high: float | None

    def as_dict(self) -> dict:
        return {
            "numerator": self.numerator,
            "denominator": self.denominator,
            "rate": self.rate,
            "interval": None if self.low is None else [self.low, self.high],
        }


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of k successes in n trials; None when n is 0."""
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return None
    p = k / n
    z2 = z * z
    scale = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / scale
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / scale
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return low, high


def ratio(k: int, n: int, z: float = Z95) -> Ratio:
    """k of n as a :class:`Ratio` (rate and 95% Wilson interval)."""
    interval = wilson_interval(k, n, z)
    if interval is None:
        return Ratio(k, n, None, None, None)
    return Ratio(k, n, k / n, interval[0], interval[1])
