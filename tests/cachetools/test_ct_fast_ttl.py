"""The compiled ``TTLCache`` and subclass placement: what only our drop-in has.

Behaviour shared with cachetools is stated in the contract, differential and
acceptance tests; here: which path serves which configuration, the per-thread frozen
timer, the default clock read in C, and timers the core refuses.
"""

from __future__ import annotations

import math
import os
import pickle
import threading
import time
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest
from ct_helpers import FakeTimer, core_serves

import novacache
import novacache.cachetools as ct


@pytest.fixture(autouse=True)
def _compiled_fast_path() -> None:
    if ct._implementation != "compiled":
        if os.environ.get("CI") and novacache.compiled:
            pytest.fail("CI is set and the core is active, but the fast path is off")
        pytest.skip("no compiled fast path in this run")


def test_which_configurations_the_core_serves() -> None:
    assert core_serves(ct.TTLCache(3, 10))  # default timer: the C clock
    assert core_serves(ct.TTLCache(3, 0.5, timer=FakeTimer()))
    assert core_serves(ct.TTLCache(3, math.inf))
    assert core_serves(ct.TTLCache(maxsize=3, ttl=1, timer=time.time))
    pure = [
        ct.TTLCache(3, 10, getsizeof=len),
        ct.TTLCache(0, 10),
        ct.TTLCache(3.5, 10),
        ct.TTLCache(3, math.nan),  # NaN compares False both ways: Python semantics
        ct.TTLCache(3, 2**60, timer=lambda: 0),  # not exact as a double
        ct.TTLCache(3, timedelta(seconds=1), timer=datetime.now),
        ct.TTLCache(3, math.inf, timer=FakeTimer()),  # the timer is read anyway
    ]
    for cache in pure:
        assert not core_serves(cache)
        assert type(cache) is ct.TTLCache  # the general path, in the same class
    # The core reads a timer of the user's where cachetools does (never when the
    # cache is made); a first reading it cannot take moves the cache.
    cache = ct.TTLCache(3, 10**12, timer=time.time_ns)  # readings beyond 2**53
    assert core_serves(cache)
    cache["k"] = 1
    assert not core_serves(cache)
    assert cache["k"] == 1
    with pytest.raises(TypeError):
        ct.TTLCache(3)  # ttl is required, as in cachetools


def test_subclass_placement() -> None:
    class OnlyInit(ct.TTLCache):  # type: ignore[misc]
        def __init__(self, maxsize: int) -> None:
            super().__init__(maxsize, 5)

    class Hooked(ct.TTLCache):  # type: ignore[misc]
        def expire(self, time: Any = None) -> Any:
            return super().expire(time)

    assert core_serves(OnlyInit(2))
    assert not core_serves(Hooked(2, 5))
    assert type(Hooked(2, 5)) is Hooked

    class SizedInit(ct.LRUCache):  # type: ignore[misc]
        def __init__(self, maxsize: int) -> None:
            super().__init__(maxsize, getsizeof=lambda v: 2)

    sized = SizedInit(4)
    assert not core_serves(sized)
    assert type(sized) is SizedInit
    sized["a"] = 1
    sized["b"] = 2
    sized["c"] = 3
    assert list(sized) == ["b", "c"]
    assert sized.currsize == 4


def test_frozen_time_is_per_thread() -> None:
    timer = FakeTimer()
    cache = ct.TTLCache(10, 5, timer=timer)
    cache["k"] = "v"
    seen: list[Any] = []
    inside = threading.Event()
    release = threading.Event()

    def freezer() -> None:
        with cache.timer as now:
            seen.append(now)
            inside.set()
            release.wait(10)
            seen.append("k" in cache)  # still the frozen time: live

    thread = threading.Thread(target=freezer)
    thread.start()
    assert inside.wait(10)
    timer.tick(5)
    assert "k" not in cache  # this thread is not frozen: expired
    assert cache.get("k") is None
    release.set()
    thread.join(10)
    assert seen == [0, True]
    assert cache.timer() == 5


def test_nested_freeze_keeps_the_outer_time() -> None:
    timer = FakeTimer(100)
    cache = ct.TTLCache(10, 1, timer=timer)
    with cache.timer as outer:
        timer.tick(3)
        with cache.timer as inner:
            cache["k"] = 1  # stored at the frozen time: expires at 101
            assert inner == outer == 100
        assert cache.timer() == 100
    assert cache.timer() == 103
    assert cache.expire(100.5) == []
    assert cache.expire(101) == [("k", 1)]


def test_default_clock_deadlines_match_time_monotonic() -> None:
    cache = ct.TTLCache(10, 5)
    with cache.timer as now:
        cache["frozen"] = 1  # deadline exactly now + 5, now from time.monotonic
    assert cache.expire(math.nextafter(now + 5, -math.inf)) == []
    assert cache.expire(now + 5) == [("frozen", 1)]
    before = time.monotonic()
    cache["live"] = 2
    after = time.monotonic()
    assert cache.expire(math.nextafter(before + 5, -math.inf)) == []
    assert cache.expire(after + 5) == [("live", 2)]


def test_a_timer_that_changes_kind_moves_the_cache_to_the_general_path() -> None:
    import cachetools

    def run(package: Any) -> list[Any]:
        readings: list[Any] = [1.0]
        calls: list[Any] = []

        def timer() -> Any:
            calls.append(readings[0])
            return readings[0]

        cache = package.TTLCache(4, 10, timer=timer)
        seen: list[Any] = [core_serves(cache)]
        cache["k"] = 1
        readings[0] = Fraction(3, 2)  # cachetools takes it; the core cannot
        cache["j"] = 2
        seen.append(core_serves(cache))
        readings[0] = 2**60  # an int beyond 2**53: exact in Python
        seen.append(cache.expire())
        readings[0] = "noon"
        try:
            cache["x"] = 3
        except TypeError:
            seen.append("TypeError")
        readings[0] = 3
        seen += [list(cache.items()), len(cache), calls]
        return seen

    ours, theirs = run(ct), run(cachetools)
    assert ours[:2] == [True, False]
    assert ours[2:] == theirs[2:]


def _three_orders(ttl_cache: Any) -> list[Any]:
    """Build a cache whose insertion, write and recency orders all differ, pickle it,
    and use the clone: what each step returns."""
    timer = FakeTimer()
    cache = ttl_cache(3, 10, timer=timer)
    cache["a"] = 1
    timer.tick()
    cache["b"] = 2
    timer.tick()
    cache["c"] = 3
    cache["a"] = 4  # rewritten: last to expire, still first in insertion order
    _ = cache["b"]  # recency: c, a, b
    clone = pickle.loads(pickle.dumps(cache))
    seen: list[Any] = [type(clone).__name__, list(clone)]
    clone.timer.tick(9)  # the clone has its own copy of the fake timer: now 11
    seen.append(clone.expire())
    clone["d"] = 5
    clone["e"] = 6  # full: evicts the least recently used of c and a (c)
    seen.append(sorted(clone))
    seen.append(list(clone.items()))
    return seen


def test_pickle_keeps_the_three_orders() -> None:
    import cachetools

    assert core_serves(pickle.loads(pickle.dumps(ct.TTLCache(3, 1))))
    expected = _three_orders(cachetools.TTLCache)
    assert expected[3] == ["a", "d", "e"]
    assert _three_orders(ct.TTLCache) == expected


def test_cached_on_a_fast_ttl_cache_uses_the_compiled_wrapper() -> None:
    timer = FakeTimer()
    calls: list[int] = []

    @ct.cached(ct.TTLCache(4, 2, timer=timer), info=True)
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    assert type(square).__name__ == "_CachedCall"
    assert square(3) == square(3) == 9
    timer.tick(2)
    assert square(3) == 9
    assert calls == [3, 3]
    assert square.cache_info() == ct.CacheInfo(1, 2, 4, 1)
