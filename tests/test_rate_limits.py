"""Rate-limit counters in the process's memory (wallet-memory://, the
default without BROKER_URL): a client held back at its limit gets through
again when its window ends, counts are per key, and counters of windows
that ended are dropped, so memory stays bounded without a timer thread."""

from __future__ import annotations

import threading
import time

import pytest
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from wallet import ratelimit
from wallet.ratelimit import ProcessMemoryStorage


def test_a_key_held_back_at_its_limit_gets_through_when_its_window_ends() -> None:
    storage = storage_from_string("wallet-memory://")
    assert isinstance(storage, ProcessMemoryStorage)
    limiter, limit = FixedWindowRateLimiter(storage), parse("2 per 1 second")
    assert [limiter.hit(limit, "till-1") for _ in range(3)] == [True, True, False]
    assert limiter.hit(limit, "till-2"), "another key has its own count"
    reset_at, remaining = limiter.get_window_stats(limit, "till-1")
    assert remaining == 0 and time.time() < reset_at <= time.time() + 1
    time.sleep(max(0.0, reset_at - time.time()) + 0.05)
    assert limiter.hit(limit, "till-1")


def test_ended_windows_are_swept_and_no_thread_is_started(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ratelimit, "SWEEP_SECONDS", 0.0)
    threads = threading.active_count()
    storage = ProcessMemoryStorage()
    for n in range(100):
        storage.incr(f"key-{n}", 1)
    assert storage.get("key-0") == 1
    time.sleep(1.05)
    storage.incr("late", 60)
    assert storage.get("key-0") == 0
    assert storage.reset() == 1, "only the live counter is left"
    assert threading.active_count() == threads
