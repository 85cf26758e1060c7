"""A per-key request budget: a token bucket per API key, in the API process.

Each key may make `rate` requests a second on average, and up to `rate` at once after
a quiet second (the bucket holds one second's worth, and at least one request). A
request over budget gets 429 with `Retry-After`: the whole seconds until a token is
back. The buckets live in the process: with N API processes behind a balancer a key
gets up to N times the rate, the documented trade for checking the budget without a
round trip.
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from app.errors import ProblemError


class TooManyRequests(ProblemError):
    status = 429


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._capacity = max(rate, 1.0)
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def spend(self, key_id: str) -> None:
        """Takes one token of the key's bucket, or raises TooManyRequests."""
        if self._rate <= 0:  # 0 switches the limit off
            return
        now = self._clock()
        bucket = self._buckets.get(key_id)
        if bucket is None:
            bucket = self._buckets[key_id] = _Bucket(tokens=self._capacity, updated=now)
        bucket.tokens = min(self._capacity, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return
        wait = math.ceil((1 - bucket.tokens) / self._rate)
        raise TooManyRequests(
            f"This API key made more than {self._rate:g} requests a second; retry in {wait} s.",
            headers={"Retry-After": str(wait)},
        )
