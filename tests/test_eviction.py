"""Eviction by count and by weight, EntryTooLarge, set_many all-or-nothing, weighers."""

from __future__ import annotations

import random
import sys
from collections import OrderedDict
from types import ModuleType
from typing import Any

import pytest

from _helpers import FakeTimer, check_invariants
from novacache.errors import EntryTooLarge, NovaCacheError


def weigh_value(key: Any, value: Any) -> int:
    return int(value)


def test_evict_by_count(impl: ModuleType) -> None:
    c = impl.LocalCache(3)
    for i in range(10):
        c[i] = i
        assert len(c) == min(i + 1, 3)
    assert c.keys() == [7, 8, 9]
    assert c.stats.evictions == 7
    check_invariants(c)


def test_maxsize_one(impl: ModuleType) -> None:
    c = impl.LocalCache(1)
    c["a"] = 1
    c["b"] = 2
    assert c.items() == [("b", 2)]
    c["b"] = 3
    assert c.items() == [("b", 3)]
    assert c.stats.evictions == 1


def test_overwrite_does_not_evict(impl: ModuleType) -> None:
    c = impl.LocalCache(2)
    c["a"] = 1
    c["b"] = 2
    c["a"] = 3
    c["b"] = 4
    assert c.items() == [("a", 3), ("b", 4)]
    assert c.stats.evictions == 0


def test_evict_by_weight(impl: ModuleType) -> None:
    c = impl.LocalCache(maxbytes=10, weigher=weigh_value)
    c["a"] = 4
    c["b"] = 4
    assert c.currbytes == 8
    c["c"] = 3  # 11 > 10: evict a
    assert c.keys() == ["b", "c"]
    assert c.currbytes == 7
    c.get("b")
    c["d"] = 6  # 13: evict c (LRU), then 10 fits
    assert c.keys() == ["b", "d"]
    assert c.currbytes == 10
    c["e"] = 10  # exactly maxbytes: everything else goes
    assert c.keys() == ["e"]
    assert c.currbytes == 10
    assert c.stats.evictions == 4
    check_invariants(c)


def test_evict_many_for_one_heavy_entry(impl: ModuleType) -> None:
    c = impl.LocalCache(maxbytes=100, weigher=weigh_value)
    for i in range(10):
        c[i] = 10
    c["big"] = 95
    assert c.keys() == ["big"]
    assert c.stats.evictions == 10
    assert c.currbytes == 95


def test_overwrite_changes_weight(impl: ModuleType) -> None:
    c = impl.LocalCache(maxbytes=10, weigher=weigh_value)
    c["a"] = 3
    c["b"] = 3
    c["a"] = 7  # 10: fits, nothing evicted
    assert c.currbytes == 10
    assert c.stats.evictions == 0
    c["b"] = 4  # 11: evict a (LRU), never b (the one just set)
    assert c.items() == [("b", 4)]
    assert c.currbytes == 4
    c["b"] = 0
    assert c.currbytes == 0


def test_count_and_weight_together(impl: ModuleType) -> None:
    c = impl.LocalCache(3, maxbytes=10, weigher=weigh_value)
    c.set_many([("a", 1), ("b", 1), ("c", 1)])
    c["d"] = 1  # count bound
    assert c.keys() == ["b", "c", "d"]
    c["e"] = 9  # weight bound: 12 -> evict b, c (d stays: 10)
    assert c.keys() == ["d", "e"]
    assert c.stats.evictions == 3
    check_invariants(c)


def test_zero_weight_entries(impl: ModuleType) -> None:
    c = impl.LocalCache(maxbytes=1, weigher=lambda k, v: 0)
    for i in range(100):
        c[i] = i
    assert len(c) == 100
    assert c.currbytes == 0


def test_default_weigher_eviction(impl: ModuleType) -> None:
    small = "x"
    budget = 3 * sys.getsizeof(small)
    c = impl.LocalCache(maxbytes=budget)
    for k in "abcd":
        c[k] = small
    assert c.keys() == ["b", "c", "d"]
    assert c.currbytes == budget
    with pytest.raises(EntryTooLarge):
        c["big"] = "x" * budget


def test_weigher_receives_key_and_value(impl: ModuleType) -> None:
    calls: list[tuple[Any, Any]] = []

    def weigher(key: Any, value: Any) -> int:
        calls.append((key, value))
        return 1

    c = impl.LocalCache(maxbytes=10, weigher=weigher)
    c["k"] = "v"
    assert calls == [("k", "v")]


# -- EntryTooLarge --------------------------------------------------------------------


def test_entry_too_large_leaves_cache_unchanged(impl: ModuleType) -> None:
    c = impl.LocalCache(5, maxbytes=10, weigher=weigh_value)
    c["a"] = 2
    c["b"] = 3
    c.get("a")
    before = (c.items(), c.currbytes, c.stats)
    with pytest.raises(EntryTooLarge) as info:
        c["c"] = 11
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, NovaCacheError)
    assert info.value.weight == 11
    assert info.value.maxbytes == 10
    with pytest.raises(EntryTooLarge):
        c["a"] = 100  # an older value under that key stays
    assert (c.items(), c.currbytes, c.stats) == before
    assert c["a"] == 2


def test_entry_too_large_via_set_with_ttl(impl: ModuleType, timer: FakeTimer) -> None:
    c = impl.LocalCache(maxbytes=5, weigher=weigh_value, timer=timer)
    c.set("a", 1, ttl=10)
    with pytest.raises(EntryTooLarge):
        c.set("a", 6, ttl=100)
    timer.tick(9)
    assert c["a"] == 1
    timer.tick(1)
    assert "a" not in c


def test_set_many_all_or_nothing(impl: ModuleType) -> None:
    c = impl.LocalCache(maxbytes=10, weigher=weigh_value)
    c["keep"] = 5
    before = (c.items(), c.currbytes, c.stats)
    with pytest.raises(EntryTooLarge):
        c.set_many([("x", 1), ("keep", 2), ("y", 11), ("z", 1)])
    assert (c.items(), c.currbytes, c.stats) == before
    with pytest.raises(EntryTooLarge):
        c.set_many({"x": 1, "huge": 50})
    assert (c.items(), c.currbytes, c.stats) == before
    c.set_many({"x": 1, "keep": 2})
    assert c.items() == [("x", 1), ("keep", 2)]


def test_set_many_evicts_in_order(impl: ModuleType) -> None:
    c = impl.LocalCache(maxbytes=10, weigher=weigh_value)
    c.set_many([("a", 4), ("b", 4), ("c", 4), ("d", 4)])
    assert c.items() == [("c", 4), ("d", 4)]
    assert c.stats.evictions == 2


def test_update_is_not_atomic_but_each_set_is(impl: ModuleType) -> None:
    c = impl.LocalCache(maxbytes=10, weigher=weigh_value)
    with pytest.raises(EntryTooLarge):
        c.update([("a", 1), ("b", 11), ("c", 1)])
    assert c.items() == [("a", 1)]


@pytest.mark.parametrize("weight", [-1, -100])
def test_negative_weight_is_value_error(impl: ModuleType, weight: int) -> None:
    c = impl.LocalCache(maxbytes=10, weigher=lambda k, v: weight if v == "neg" else 1)
    c["a"] = 1
    with pytest.raises(ValueError):
        c["b"] = "neg"
    with pytest.raises(ValueError):
        c["a"] = "neg"
    assert c.items() == [("a", 1)]
    assert c.currbytes == 1


@pytest.mark.parametrize("weight", [1.5, "3", None])
def test_non_int_weight_is_type_error(impl: ModuleType, weight: object) -> None:
    c = impl.LocalCache(maxbytes=10, weigher=lambda k, v: weight)
    with pytest.raises(TypeError):
        c["b"] = 2
    assert len(c) == 0
    assert c.currbytes == 0


def test_weight_uses_operator_index(impl: ModuleType) -> None:
    class Three:
        def __index__(self) -> int:
            return 3

    c = impl.LocalCache(maxbytes=10, weigher=lambda k, v: Three())
    c["a"] = 1
    assert c.currbytes == 3


def test_weigher_exception_propagates_and_leaves_cache_unchanged(impl: ModuleType) -> None:
    def weigher(key: Any, value: Any) -> int:
        if value == "bad":
            raise RuntimeError("boom")
        return 1

    c = impl.LocalCache(maxbytes=10, weigher=weigher)
    c["a"] = "ok"
    with pytest.raises(RuntimeError, match="boom"):
        c["a"] = "bad"
    with pytest.raises(RuntimeError, match="boom"):
        c.set_many([("b", "ok"), ("c", "bad")])
    assert c.items() == [("a", "ok")]
    assert c.currbytes == 1


def _replay_lru(
    cache: Any,
    model: OrderedDict[int, int],
    rng: random.Random,
    *,
    steps: int,
    keys: int,
    maxsize: int | None,
    mix: tuple[float, float, float],
    check_every: int,
) -> int:
    """``steps`` random requests over ``keys`` int keys, to ``cache`` and to ``model``
    (an OrderedDict kept in exact LRU order, bounded by ``maxsize``): ``mix`` the
    cumulative shares of get, set and pop (the rest popitem). Every answer must be the
    model's, and the order too every ``check_every`` steps. The evictions the model
    made."""
    get_share, set_share, pop_share = mix
    evicted = 0
    for step in range(steps):
        key = rng.randrange(keys)
        action = rng.random()
        if action < get_share:
            assert cache.get(key) == model.get(key)
            if key in model:
                model.move_to_end(key)
        elif action < set_share:
            cache[key] = step
            model[key] = step
            model.move_to_end(key)
            if maxsize is not None and len(model) > maxsize:
                model.popitem(last=False)
                evicted += 1
        elif action < pop_share:
            assert cache.pop(key, None) == model.pop(key, None)
        elif model:
            assert cache.popitem() == model.popitem(last=False)
        else:
            with pytest.raises(KeyError):
                cache.popitem()
        if step % check_every == 0:
            assert cache.keys() == list(model)
    return evicted


@pytest.mark.parametrize("maxsize", [None, 1000])
def test_exact_lru_order_through_many_compactions(impl: ModuleType, maxsize: int | None) -> None:
    """Thousands of hits, writes, deletes and evictions (the compiled core compacts its
    recency log every few thousand of them): order and contents match an OrderedDict."""
    rng = random.Random(7)
    cache = impl.LocalCache(maxsize)
    model: OrderedDict[int, int] = OrderedDict()
    _replay_lru(
        cache,
        model,
        rng,
        steps=60_000,
        keys=1500,
        maxsize=maxsize,
        mix=(0.55, 0.9, 0.97),
        check_every=5000,
    )
    assert cache.keys() == list(model)
    assert cache.items() == list(model.items())


def test_exact_lru_order_in_a_large_full_cache(impl: ModuleType) -> None:
    """A full cache of 40,000 entries (the compiled core prefetches the next victims
    from 32,768 on, and a new key takes the evicted entry's place): hits, new keys,
    deletes and popitem in random order over 50,000 keys; order, contents and the
    eviction count match an OrderedDict."""
    rng = random.Random(11)
    maxsize = 40_000
    cache = impl.LocalCache(maxsize)
    model: OrderedDict[int, int] = OrderedDict()
    for key in range(maxsize):
        cache[key] = key
        model[key] = key
    evicted = _replay_lru(
        cache,
        model,
        rng,
        steps=80_000,
        keys=50_000,
        maxsize=maxsize,
        mix=(0.5, 0.95, 0.99),
        check_every=20_000,
    )
    assert cache.items() == list(model.items())
    assert cache.stats.evictions == evicted
