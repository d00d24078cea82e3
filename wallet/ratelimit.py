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
"""

from __future__ import annotations

import threading
import time
from typing import Any

from limits.storage import Storage

SWEEP_SECONDS = 60.0


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
