"""When the next attempt of a failed delivery is due (docs/api.md#retries), in one place.

Delay before attempt n+1 (n ≥ 1) = min(cap, base × 2^(n−1)) × jitter, jitter uniform in
[0.5, 1.0]; a `Retry-After` (seconds) on a 429 or 503 raises the delay to that value,
still capped.
"""

import random
from collections.abc import Callable

from app.core.settings import Settings

RETRY_AFTER_STATUSES = frozenset({429, 503})


def backoff_seconds(failed_attempts: int, base: float, cap: float) -> float:
    """The delay before jitter, after `failed_attempts` failures (1 for the first)."""
    exponent = min(failed_attempts - 1, 64)  # 2**64 × any base is far past any cap
    return float(min(cap, base * 2**exponent))


def next_delay(
    settings: Settings,
    failed_attempts: int,
    retry_after: float | None = None,
    jitter: Callable[[], float] = lambda: random.uniform(0.5, 1.0),
) -> float:
    cap = settings.retry_max_delay_seconds
    delay = backoff_seconds(failed_attempts, settings.retry_base_seconds, cap) * jitter()
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, cap)


def parse_retry_after(status_code: int | None, header: str | None) -> float | None:
    """Seconds from a `Retry-After` header on a 429 or 503 answer, else None."""
    if status_code not in RETRY_AFTER_STATUSES or header is None:
        return None
    try:
        seconds = float(header.strip())
    except ValueError:
        return None  # HTTP-date form and garbage are ignored: the backoff applies
    return seconds if seconds >= 0 else None
