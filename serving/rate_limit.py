"""Per-key rate limits: one token bucket per API key.

A bucket holds up to ``burst`` tokens and gains ``rate`` per second; a request takes one.
An empty bucket answers 429 with ``Retry-After``: the whole seconds until a token is back.
The buckets live in the process (each uvicorn worker limits on its own: with N workers a
key gets up to N times the rate). Used from the event loop only, so no lock.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class TokenBuckets:
    """``take(key)`` returns 0 when allowed, else the seconds to wait (> 0)."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"need rate > 0 and burst >= 1, got {rate}, {burst}")
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, key: str) -> float:
        now = self.clock()
        tokens, at = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1 - tokens) / self.rate


def retry_after_header(wait_seconds: float) -> str:
    """``Retry-After`` in whole seconds, at least 1."""
    return str(max(1, math.ceil(wait_seconds)))
