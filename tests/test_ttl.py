"""Time-to-live with an injected fake timer: expired entries are never returned.

No test sleeps: the ``timer`` fixture is a FakeTimer advanced with ``tick()``.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import pytest

from _helpers import ABSENT, FakeTimer, check_invariants
from novacache import CacheStats


def make(impl: ModuleType, timer: FakeTimer, **kw: Any) -> Any:
    return impl.LocalCache(timer=timer, **kw)


def test_expiry_boundary(impl: ModuleType, timer: FakeTimer) -> None:
    c = make(impl, timer, ttl=5)
    c["a"] = 1
    timer.tick(4.999)
    assert c["a"] == 1
    timer.tick(0.001)  # timer() == t + ttl: expired
    assert "a" not in c
    assert c.get("a") is None


def test_int_timer_and_int_ttl(impl: ModuleType) -> None:
    now = [10]
    c = impl.LocalCache(ttl=3, timer=lambda: now[0])
    c["a"] = 1
    now[0] = 12
    assert c["a"] == 1
    now[0] = 13
    assert c.get("a", ABSENT) is ABSENT


def test_per_entry_ttl_overrides_default(impl: ModuleType, timer: FakeTimer) -> None:
    c = make(impl, timer, ttl=10)
    c.set("short", 1, ttl=1)
    c.set("default", 2)
    c.set("forever", 3, ttl=math.inf)
    c["item"] = 4  # default ttl
    timer.tick(1)
    assert c.keys() == ["default", "forever", "item"]
    timer.tick(9)
    assert c.keys() == ["forever"]
    timer.tick(1e15)
    assert c["forever"] == 3


def test_no_default_ttl_means_no_expiry(impl: ModuleType, timer: FakeTimer) -> None:
    c = make(impl, timer)
    c["a"] = 1
    c.set("b", 2, ttl=2)
    timer.tick(1e9)
    assert c.items() == [("a", 1)]


@pytest.mark.parametrize("ttl", [0, 0.0, -1, math.nan, -math.inf])
def test_bad_set_ttl(impl: ModuleType, timer: FakeTimer, ttl: float) -> None:
    c = make(impl, timer)
    c["a"] = 1
    with pytest.raises(ValueError):
        c.set("a", 2, ttl=ttl)
    with pytest.raises(ValueError):
        c.set_many({"b": 2}, ttl=ttl)
    assert c.items() == [("a", 1)]


@pytest.mark.parametrize("ttl", ["1", [1], object()])
def test_bad_set_ttl_type(impl: ModuleType, timer: FakeTimer, ttl: object) -> None:
    c = make(impl, timer)
    with pytest.raises(TypeError):
        c.set("a", 2, ttl=ttl)
    assert len(c) == 0


def test_overwrite_replaces_ttl(impl: ModuleType, timer: FakeTimer) -> None:
    c = make(impl, timer)
    c.set("a", 1, ttl=5)
    timer.tick(4)
    c.set("a", 2, ttl=5)  # now expires at +9
    timer.tick(4)
    assert c["a"] == 2
    c["a"] = 3  # no ttl now
    timer.tick(100)
    assert c["a"] == 3
    c.set("a", 4, ttl=1)
    timer.tick(1)
    assert "a" not in c


def test_set_over_expired_entry(impl: ModuleType, timer: FakeTimer) -> None:
    c = make(impl, timer, maxsize=2)
    c.set("a", 1, ttl=1)
    timer.tick(2)
    c["a"] = 2
    assert c.items() == [("a", 2)]
    assert len(c) == 1
    assert c.stats.evictions == 0


def test_expired_never_returned_by_any_method(impl: ModuleType, timer: FakeTimer) -> None:
    def fill() -> Any:
        c = make(impl, timer, ttl=1)
        c["dead"] = "D"
        c.set("live", "L", ttl=100)
        timer.tick(1)
        return c

    c = fill()
    assert "dead" not in c
    assert c.peek("dead", ABSENT) is ABSENT
    assert c.get("dead", ABSENT) is ABSENT
    with pytest.raises(KeyError):
        c["dead"]
    assert c.keys() == ["live"]
    assert c.values() == ["L"]
    assert c.items() == [("live", "L")]
    assert list(c) == ["live"]
    assert c.get_many(["dead", "live"]) == {"live": "L"}

    c = fill()
    assert c.pop("dead", ABSENT) is ABSENT
    with pytest.raises(KeyError):
        fill().pop("dead")
    with pytest.raises(KeyError):
        del fill()["dead"]
    assert fill().popitem() == ("live", "L")
    c = fill()
    c.pop("live")
    with pytest.raises(KeyError):
        c.popitem()
    c = fill()
    assert c.setdefault("dead", "new") == "new"
    assert c["dead"] == "new"
    assert fill().delete_many(["dead", "live"]) == 1


def test_lookup_reclaims_expired_entry(impl: ModuleType, timer: FakeTimer) -> None:
    c = make(impl, timer, ttl=1)
    c["a"] = 1
    c["b"] = 2
    timer.tick(1)
    assert len(c) == 2  # not reclaimed yet: len may include expired entries
    assert c.get("a") is None
    assert len(c) == 1
    s = c.stats
    assert (s.hits, s.misses, s.expirations, s.currsize) == (0, 1, 1, 1)
    with pytest.raises(KeyError):
        c["b"]
    assert len(c) == 0
    assert c.stats == CacheStats(0, 2, 0, 2, 0, 0, None, None)


def test_get_many_counts_expired_as_misses(impl: ModuleType, timer: FakeTimer) -> None:
    c = make(impl, timer)
    c.set("a", 1, ttl=1)
    c.set("b", 2)
    timer.tick(1)
    assert c.get_many(["a", "b"]) == {"b": 2}
    s = c.stats
    assert (s.hits, s.misses, s.expirations) == (1, 1, 1)
    assert len(c) == 1


def test_expire_returns_count(impl: ModuleType, timer: FakeTimer) -> None:
    c = make(impl, timer)
    for i in range(10):
        c.set(i, i, ttl=i + 1)  # i expires at +i+1
    c.set("forever", 0)
    timer.tick(4)
    assert c.expire() == 4
    assert len(c) == 7
    assert c.stats.expirations == 4
    assert c.expire() == 0
    timer.tick(100)
    assert c.expire() == 6
    assert c.keys() == ["forever"]
    assert len(c) == 1
    assert c.stats.expirations == 10
    check_invariants(c)


def test_popitem_skips_expired(impl: ModuleType, timer: FakeTimer) -> None:
    c = make(impl, timer)
    c.set("a", 1, ttl=1)
    c.set("b", 2, ttl=1)
    c.set("c", 3)
    c.set("d", 4, ttl=1)
    timer.tick(1)
    assert c.popitem() == ("c", 3)
    with pytest.raises(KeyError):
        c.popitem()
    assert len(c) == 0


def test_insert_prefers_expired_lru_over_live(impl: ModuleType, timer: FakeTimer) -> None:
    c = make(impl, timer, maxsize=3)
    c.set("x", 1, ttl=1)
    c["y"] = 2
    c["z"] = 3
    timer.tick(1)
    c["w"] = 4
    assert c.keys() == ["y", "z", "w"]
    assert len(c) == 3
    s = c.stats
    assert s.evictions + s.expirations == 1


def test_insert_reclaims_expired_before_live_in_small_cache(
    impl: ModuleType, timer: FakeTimer
) -> None:
    # two entries: the sweep that examines "a few entries" on an insert must find the
    # expired one, which then goes before the live LRU entry
    c = make(impl, timer, maxsize=2)
    c["a"] = 1
    c.set("b", 2, ttl=1)
    timer.tick(1)
    c["c"] = 3
    assert c.keys() == ["a", "c"]
    s = c.stats
    assert (s.evictions, s.expirations) == (0, 1)


def test_inserts_reclaim_expired_entries(impl: ModuleType, timer: FakeTimer) -> None:
    c = make(impl, timer)
    for i in range(100):
        c.set(("old", i), i, ttl=1)
    timer.tick(1)
    for i in range(1000):
        c[i] = i
    assert len(c) < 1100
    assert c.stats.expirations > 0
    c.expire()
    assert len(c) == 1000
    assert c.stats.expirations == 100


def test_inserts_reclaim_an_entry_whose_ttl_an_overwrite_shortened(
    impl: ModuleType, timer: FakeTimer
) -> None:
    # The compiled core skips the sweep while no deadline can have passed (a lower
    # bound of them all): an overwrite that brings one forward must lower that bound.
    c = make(impl, timer)
    for i in range(100):
        c.set(i, i, ttl=1000)
    for i in range(10):
        c.set(i, -i, ttl=1)
    timer.tick(1)
    for i in range(100, 1100):
        c[i] = i  # no TTL: each insert sweeps for the entries that have one
    assert c.stats.expirations == 10
    assert len(c) == 1090
    check_invariants(c)


def test_inserts_reclaim_short_ttls_set_after_a_full_sweep(
    impl: ModuleType, timer: FakeTimer
) -> None:
    # A full pass of the sweep raises its bound to the earliest deadline left (the long
    # ones); an insert with an earlier deadline must lower it again.
    c = make(impl, timer)
    for i in range(50):
        c.set(("short", i), i, ttl=1)
    for i in range(50):
        c.set(("long", i), i, ttl=1000)
    timer.tick(1)
    for i in range(500):
        c[i] = i
    assert c.stats.expirations == 50
    for i in range(20):
        c.set(("late", i), i, ttl=1)
    timer.tick(1)
    for i in range(500, 1500):
        c[i] = i
    assert c.stats.expirations == 70
    assert len(c) == 1550
    assert [k for k in c if isinstance(k, tuple) and k[0] != "long"] == []
    check_invariants(c)


def test_weight_of_expired_entries_released(impl: ModuleType, timer: FakeTimer) -> None:
    c = make(impl, timer, maxbytes=10, weigher=lambda k, v: v)
    c.set("a", 6, ttl=1)
    timer.tick(1)
    c["b"] = 6
    assert c.keys() == ["b"]
    assert c.currbytes == 6
    s = c.stats
    assert s.evictions + s.expirations == 1


def test_entries_without_ttl_never_read_the_clock(impl: ModuleType, timer: FakeTimer) -> None:
    c = make(impl, timer, maxsize=3, maxbytes=1000, weigher=lambda k, v: 1)
    for i in range(10):
        c[i] = i
    c.get(8)
    c.get(100)
    c.peek(9)
    assert 9 in c
    c.get_many([7, 8, 1])
    c.set_many({"a": 1, "b": 2})
    c.setdefault("c", 3)
    c.update(d=4)
    c.keys()
    c.items()
    c.values()
    list(c)
    c.pop("d")
    c.popitem()
    del c["c"]
    c.delete_many(["a", "zz"])
    c.expire()
    assert c.stats.currsize == len(c)
    assert timer.calls == 0


def test_reset_stats_keeps_entries(impl: ModuleType, timer: FakeTimer) -> None:
    c = make(impl, timer, ttl=1)
    c["a"] = 1
    c["b"] = 2
    timer.tick(1)
    c.get("a")
    c.reset_stats()
    assert c.stats == CacheStats(0, 0, 0, 0, 1, 0, None, None)
    assert c.expire() == 1
    assert c.stats.expirations == 1


def test_timer_property_and_default_clock(impl: ModuleType) -> None:
    c = impl.LocalCache(ttl=1000)
    assert c.timer is None
    c["a"] = 1
    assert c["a"] == 1  # the default monotonic clock: not expired immediately


def test_timer_exception_propagates_and_cache_stays_consistent(impl: ModuleType) -> None:
    timer = FakeTimer()
    boom = [False]

    def flaky() -> float:
        if boom[0]:
            raise RuntimeError("timer failed")
        return timer()

    c = impl.LocalCache(3, ttl=5, timer=flaky)
    for i in range(3):
        c[i] = i
    boom[0] = True
    for op in (
        lambda: c.get(0),
        lambda: c[1],
        lambda: c.set(9, 9),
        lambda: c.keys(),
        lambda: c.expire(),
        lambda: c.popitem(),
        lambda: c.pop(2),
        lambda: 1 in c,
    ):
        with pytest.raises(RuntimeError, match="timer failed"):
            op()
    boom[0] = False
    assert c.items() == [(0, 0), (1, 1), (2, 2)]
    check_invariants(c)


def test_in_and_peek_reclaim_expired_entries(impl: ModuleType, timer: FakeTimer) -> None:
    """Every lookup that finds an expired entry removes it and counts an expiration;
    ``in`` and ``peek`` count no hit or miss."""
    cache = impl.LocalCache(10, ttl=5, timer=timer)
    cache["a"] = 1
    cache["b"] = 2
    timer.tick(5)
    assert "a" not in cache
    assert cache.peek("b", "gone") == "gone"
    stats = cache.stats
    assert (stats.hits, stats.misses, stats.expirations, len(cache)) == (0, 0, 2, 0)
