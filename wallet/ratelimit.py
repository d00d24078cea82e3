"""Where rate-limit counters live without Redis: ``wallet-memory://``.

The default RATELIMIT_STORAGE_URI when BROKER_URL is not set. limits' own
``memory://`` storage expires its counters on a timer thread that it starts
again whenever none is running: at the pace of an API client, a new thread
per request (about 0.7 ms of CPU, as much as the rest of the limiter
together). Here a counter expires when it is next read, and a sweep at most
once a minute, on the request that finds it due, drops the counters no one
reads any more, so memory stays bounded by the keys of the last window.

Fixed windows only (Flask-Limiter's default strategy, the one we use).
Registered with limits by its scheme when this module is imported
(``limits.storage.Storage`` subclasses register themselves).

``spend`` counts a request against limits in a limiter's storage directly,
for views that keep their limit themselves rather than through
Flask-Limiter's generic per-request check (the API: its check cost a
purchase more than its Idempotency-Key claim).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from typing import Any, NamedTuple

from limits import RateLimitItem, parse_many
from limits.storage import Storage
from limits.strategies import FixedWindowRateLimiter, RateLimiter

log = logging.getLogger(__name__)

SWEEP_SECONDS = 60.0
# After the shared storage fails, count in this process's memory for this
# long before trying it again (Flask-Limiter's in-memory fallback, which
# RATELIMIT_IN_MEMORY_FALLBACK_ENABLED asks for, does the same for its checks).
RETRY_SHARED_SECONDS = 30.0


class ProcessMemoryStorage(Storage):
    """Fixed-window counters in this process's memory."""

    STORAGE_SCHEME = ["wallet-memory"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: Any) -> None:
        self._counters: dict[str, tuple[int, float]] = {}  # key -> (count, when the window ends)
        self._lock = threading.Lock()
        self._next_sweep = time.time() + SWEEP_SECONDS
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return ValueError

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        now = time.time()
        with self._lock:
            if now >= self._next_sweep:
                self._sweep(now)
            count, ends = self._counters.get(key, (0, 0.0))
            if ends <= now:
                count, ends = 0, now + expiry
            count += amount
            self._counters[key] = (count, ends)
            return count

    def get(self, key: str) -> int:
        count, ends = self._counters.get(key, (0, 0.0))
        return count if ends > time.time() else 0

    def get_expiry(self, key: str) -> float:
        now = time.time()
        _, ends = self._counters.get(key, (0, 0.0))
        return ends if ends > now else now

    def check(self) -> bool:
        return True

    def reset(self) -> int | None:
        with self._lock:
            cleared = len(self._counters)
            self._counters.clear()
        return cleared

    def clear(self, key: str) -> None:
        with self._lock:
            self._counters.pop(key, None)

    def _sweep(self, now: float) -> None:
        self._counters = {key: value for key, value in self._counters.items() if value[1] > now}
        self._next_sweep = now + SWEEP_SECONDS


class Breach(NamedTuple):
    """A limit a request went over, and in how many seconds its window resets."""

    limit: RateLimitItem
    retry_after: int


@functools.lru_cache(maxsize=16)
def parse_limits(text: str) -> tuple[RateLimitItem, ...]:
    """A limit setting ("100 per minute;1000 per hour"), tightest first as
    Flask-Limiter checks them."""
    return tuple(sorted(parse_many(text)))


class _Fallback:
    """Where ``spend`` counts while the shared storage is failing."""

    def __init__(self) -> None:
        self.limiter = FixedWindowRateLimiter(ProcessMemoryStorage())
        self.until = 0.0


_fallback = _Fallback()


def spend(shared: RateLimiter, limits: tuple[RateLimitItem, ...], key: str, scope: str) -> Breach | None:
    """Count one request under ``key`` against each of ``limits`` (as
    ``parse_limits`` gives them) in ``shared``'s storage, stopping at the
    first one it goes over, which is returned. A storage that fails does not
    fail the request: the count goes on in this process's memory for
    RETRY_SHARED_SECONDS."""
    now = time.time()
    if now >= _fallback.until:
        try:
            return _spend(shared, limits, key, scope)
        except Exception as exc:  # noqa: BLE001 - the storage's own errors, whatever its client
            log.warning("rate limit storage failed, counting in this process for %.0f s: %s",
                        RETRY_SHARED_SECONDS, exc)
            _fallback.until = now + RETRY_SHARED_SECONDS
    return _spend(_fallback.limiter, limits, key, scope)


def _spend(limiter: RateLimiter, limits: tuple[RateLimitItem, ...], key: str, scope: str) -> Breach | None:
    for item in limits:
        if not limiter.hit(item, key, scope):
            reset_at = int(limiter.get_window_stats(item, key, scope).reset_time + 1)
            return Breach(item, max(1, int(reset_at - time.time()) + 1))
    return None
