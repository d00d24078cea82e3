"""The bounded map behind the per-process caches: a full cache drops only its
least recently used entry, so a hot club or key stays while cold ones go."""

from __future__ import annotations

import threading

from wallet.lru import LRU


def test_a_full_cache_drops_the_least_recently_used_entry_only() -> None:
    cache: LRU[str] = LRU(2)
    cache.put("a", "A")
    cache.put("b", "B")
    assert cache.get("a") == "A"  # now "b" is the coldest
    cache.put("c", "C")
    assert cache.get("b") is None
    assert (cache.get("a"), cache.get("c"), len(cache)) == ("A", "C", 2)


def test_putting_a_kept_key_again_replaces_it_and_makes_it_recent() -> None:
    cache: LRU[int] = LRU(2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("a", 3)
    cache.put("c", 4)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (3, None, 4)


def test_pop_forgets_a_key_and_says_what_it_held() -> None:
    cache: LRU[int] = LRU(4)
    cache.put("a", 1)
    assert cache.pop("a") == 1
    assert cache.pop("a") is None
    assert cache.get("a") is None and len(cache) == 0


def test_threads_filling_it_at_once_never_leave_it_over_its_size() -> None:
    cache: LRU[int] = LRU(50)

    def fill(offset: int) -> None:
        for number in range(2000):
            cache.put((offset, number), number)
            cache.get((offset, number // 2))

    threads = [threading.Thread(target=fill, args=(offset,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache) == 50
