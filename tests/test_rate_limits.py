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


class _Down(ProcessMemoryStorage):
    """A shared storage that can be taken down and brought back."""

    down = False

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        if self.down:
            raise ConnectionError("storage down")
        return super().incr(key, expiry, amount)


def test_spend_stops_at_the_tightest_limit_and_says_when_to_retry() -> None:
    limiter = FixedWindowRateLimiter(ProcessMemoryStorage())
    limits = ratelimit.parse_limits("100 per hour;2 per minute")
    assert [str(item) for item in limits] == ["2 per 1 minute", "100 per 1 hour"]
    assert ratelimit.spend(limiter, limits, "till-1", "api") is None
    assert ratelimit.spend(limiter, limits, "till-1", "api") is None
    breach = ratelimit.spend(limiter, limits, "till-1", "api")
    assert breach is not None and str(breach.limit) == "2 per 1 minute"
    assert 1 <= breach.retry_after <= 62
    assert ratelimit.spend(limiter, limits, "till-2", "api") is None, "another key has its own count"
    assert ratelimit.spend(limiter, limits, "till-1", "other") is None, "another scope has its own count"


def test_a_failing_storage_counts_in_this_process_until_it_is_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ratelimit, "_fallback", ratelimit._Fallback())
    storage = _Down()
    shared = FixedWindowRateLimiter(storage)
    limits = ratelimit.parse_limits("2 per minute")
    storage.down = True
    # Never an error for the request, and still held back at the limit.
    assert [ratelimit.spend(shared, limits, "till", "api") is None for _ in range(3)] == [True, True, False]
    storage.down = False
    assert ratelimit.spend(shared, limits, "till", "api") is not None, "the fallback counts until the retry"
    monkeypatch.setattr(ratelimit._fallback, "until", 0.0)
    assert ratelimit.spend(shared, limits, "till", "api") is None, "the shared storage is used again"
