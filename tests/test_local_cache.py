"""LocalCache contract (docs/local-cache.md): configuration, mapping protocol, LRU order,
statistics, repr, pickling, weak references, subclassing, garbage collection."""

from __future__ import annotations

import gc
import inspect
import math
import pickle
import random
import sys
import tracemalloc
import types
import weakref
from decimal import Decimal
from fractions import Fraction
from types import ModuleType
from typing import Any

import pytest

from _helpers import ABSENT, FakeTimer, check_invariants, load_impl
from novacache import CacheStats
from novacache.errors import ConfigurationError, NovaCacheError

# -- configuration --------------------------------------------------------------------


def test_defaults(impl: ModuleType) -> None:
    c = impl.LocalCache()
    assert c.maxsize is None
    assert c.maxbytes is None
    assert c.ttl is None
    assert c.timer is None
    assert c.weigher is None
    assert c.currsize == 0
    assert c.currbytes == 0
    assert len(c) == 0
    assert c.stats == CacheStats(0, 0, 0, 0, 0, 0, None, None)


def test_properties_reflect_configuration(impl: ModuleType, timer: FakeTimer) -> None:
    def weigher(k: object, v: object) -> int:
        return 1

    c = impl.LocalCache(10, maxbytes=100, weigher=weigher, ttl=5, timer=timer)
    assert c.maxsize == 10
    assert c.maxbytes == 100
    assert c.weigher is weigher
    assert c.ttl == 5
    assert c.timer is timer
    assert c.stats.maxsize == 10
    assert c.stats.maxbytes == 100


def test_maxbytes_alone_uses_default_weigher(impl: ModuleType) -> None:
    c = impl.LocalCache(maxbytes=10_000)
    assert c.weigher is impl.default_weigher
    value = "x" * 100
    c["k"] = value
    assert c.currbytes == sys.getsizeof(value)


def test_default_weigher_is_shallow_getsizeof(impl: ModuleType) -> None:
    big = list(range(1000))
    assert impl.default_weigher("k", big) == sys.getsizeof(big)
    holder = [big]
    assert impl.default_weigher("k", holder) == sys.getsizeof(holder)
    assert impl.default_weigher(object(), b"abc") == sys.getsizeof(b"abc")


def test_weigher_without_maxbytes_tracks_currbytes(impl: ModuleType) -> None:
    c = impl.LocalCache(weigher=lambda k, v: len(v))
    c["a"] = "xyz"
    c["b"] = "pq"
    assert c.currbytes == 5
    assert c.maxbytes is None
    del c["a"]
    assert c.currbytes == 2


def test_no_weights_computed_without_weigher_or_maxbytes(impl: ModuleType) -> None:
    c = impl.LocalCache(3)
    c["a"] = "x" * 1000
    assert c.currbytes == 0
    assert c.stats.currbytes == 0


@pytest.mark.parametrize("maxsize", [0, -1, 2**31 - 1, 2**40])
def test_bad_maxsize_value(impl: ModuleType, maxsize: int) -> None:
    with pytest.raises(ConfigurationError):
        impl.LocalCache(maxsize)


def test_largest_maxsize_is_accepted(impl: ModuleType) -> None:
    assert impl.LocalCache(2**31 - 2).maxsize == 2**31 - 2


@pytest.mark.parametrize("maxsize", [True, False, 1.5, 2.0, "3", [1]])
def test_bad_maxsize_type(impl: ModuleType, maxsize: object) -> None:
    with pytest.raises(TypeError):
        impl.LocalCache(maxsize)


@pytest.mark.parametrize("maxbytes", [0, -5])
def test_bad_maxbytes_value(impl: ModuleType, maxbytes: int) -> None:
    with pytest.raises(ConfigurationError):
        impl.LocalCache(maxbytes=maxbytes)


@pytest.mark.parametrize("maxbytes", [1.5, "10", [1]])
def test_bad_maxbytes_type(impl: ModuleType, maxbytes: object) -> None:
    with pytest.raises(TypeError):
        impl.LocalCache(maxbytes=maxbytes)


@pytest.mark.parametrize("ttl", [0, 0.0, -1, -0.5, math.nan, -math.inf])
def test_bad_ttl_value(impl: ModuleType, ttl: float) -> None:
    with pytest.raises(ConfigurationError):
        impl.LocalCache(ttl=ttl)


@pytest.mark.parametrize("ttl", ["5", b"5", [1], object(), 1j, True])
def test_bad_ttl_type(impl: ModuleType, ttl: object) -> None:
    with pytest.raises(TypeError):
        impl.LocalCache(ttl=ttl)


@pytest.mark.parametrize("ttl", [2, 2.0, Fraction(2), Decimal("2")])
def test_ttl_accepts_any_real(impl: ModuleType, ttl: object) -> None:
    c = impl.LocalCache(ttl=ttl)
    assert c.ttl == 2.0
    c.set("k", 1, ttl=ttl)
    assert c["k"] == 1


def test_infinite_ttl_means_no_expiry(impl: ModuleType, timer: FakeTimer) -> None:
    c = impl.LocalCache(ttl=math.inf, timer=timer)
    c["a"] = 1
    timer.tick(1e12)
    assert c["a"] == 1


@pytest.mark.parametrize("field", ["weigher", "timer"])
def test_non_callable_weigher_or_timer(impl: ModuleType, field: str) -> None:
    with pytest.raises(TypeError):
        impl.LocalCache(10, **{field: 42})


def test_configuration_error_is_a_value_error() -> None:
    assert issubclass(ConfigurationError, ValueError)
    assert issubclass(ConfigurationError, NovaCacheError)


def test_options_are_keyword_only(impl: ModuleType) -> None:
    with pytest.raises(TypeError):
        impl.LocalCache(10, 100)


# -- mapping protocol -----------------------------------------------------------------


def test_getitem_setitem_delitem(impl: ModuleType) -> None:
    c = impl.LocalCache()
    c["a"] = 1
    assert c["a"] == 1
    c["a"] = 2
    assert c["a"] == 2
    assert len(c) == 1
    del c["a"]
    assert len(c) == 0
    with pytest.raises(KeyError) as info:
        c["a"]
    assert info.value.args == ("a",)
    with pytest.raises(KeyError) as info:
        del c["a"]
    assert info.value.args == ("a",)


def test_keyerror_carries_the_key_even_when_it_is_a_tuple(impl: ModuleType) -> None:
    c = impl.LocalCache()
    with pytest.raises(KeyError) as info:
        c[(1, 2)]
    assert info.value.args == ((1, 2),)


def test_none_is_a_valid_value_and_key(impl: ModuleType) -> None:
    c = impl.LocalCache()
    c[None] = None
    assert None in c
    assert c[None] is None
    assert c.get(None, "d") is None
    assert c.peek(None, "d") is None
    assert c.pop(None, "d") is None
    assert None not in c


def test_unhashable_key_raises_typeerror(impl: ModuleType) -> None:
    c = impl.LocalCache(4)
    with pytest.raises(TypeError):
        c[[1]] = 1
    with pytest.raises(TypeError):
        c.get([1])
    assert len(c) == 0


def test_get_and_default(impl: ModuleType) -> None:
    c = impl.LocalCache()
    assert c.get("x") is None
    assert c.get("x", 7) == 7
    c["x"] = 3
    assert c.get("x", 7) == 3


def test_get_and_set_take_keywords_and_have_signatures(impl: ModuleType) -> None:
    c = impl.LocalCache()
    c.set(key="k", value=1, ttl=math.inf)
    assert c.get(key="k", default=2) == 1
    assert c.get("absent", default=2) == 2
    for name, params in (("get", ["key", "default"]), ("set", ["key", "value", "ttl"])):
        found = list(inspect.signature(getattr(impl.LocalCache, name)).parameters)
        assert found == ["self", *params]


def test_get_and_set_are_method_descriptors() -> None:
    # A method descriptor, as dict.get is: CPython's interpreter calls it directly
    # (a specialised call), where a Cython function object (Cython 3's default,
    # binding=True) goes through the generic vectorcall, about 85 instructions more per
    # c.get(k) (callgrind, the cache-aside loop).
    core = load_impl("compiled")
    for name in ("get", "set"):
        assert isinstance(vars(core.LocalCache)[name], types.MethodDescriptorType), name


def test_equal_int_and_str_keys_that_are_other_objects(impl: ModuleType) -> None:
    # The compiled lookup compares two exact ints or strs in C: equal values that are
    # other objects are found, and values whose hashes collide stay apart (hash(0) ==
    # hash(2**61 - 1), hash(-1) == hash(-2), ...), whatever the digits, sign or kind.
    keys: list[object] = [0, 2**61 - 1, -1, -2, 10**5, 2**100, -(2**100),
                          2**100 + 2**61 - 1, "é", "ab" * 40, "x\u0100", "\U0001f600x"]  # fmt: skip
    c = impl.LocalCache(100)
    for i, key in enumerate(keys):
        c[key] = i
    for i, key in enumerate(keys):
        other = int(str(key)) if isinstance(key, int) else "".join(list(str(key)))
        assert c[other] == i
        assert c.get(other) == i
    assert len(c) == len(keys)
    assert c.get(2**100 + 1) is None
    assert c.get("ab" * 39 + "ac") is None
    assert c.get(True) is None  # bool is not int here: 1 was never stored
    c[1] = "one"
    assert c[True] == "one"  # but equal, as in a dict


def test_contains_counts_nothing_and_keeps_order(impl: ModuleType) -> None:
    c = impl.LocalCache()
    c["a"] = 1
    c["b"] = 2
    assert "a" in c
    assert "z" not in c
    assert c.keys() == ["a", "b"]
    assert c.stats.hits == c.stats.misses == 0


def test_peek_counts_nothing_and_keeps_order(impl: ModuleType) -> None:
    c = impl.LocalCache()
    c["a"] = 1
    c["b"] = 2
    assert c.peek("a") == 1
    assert c.peek("zz") is None
    assert c.peek("zz", 5) == 5
    assert c.keys() == ["a", "b"]
    assert c.stats.hits == c.stats.misses == 0


def test_pop(impl: ModuleType) -> None:
    c = impl.LocalCache()
    c["a"] = 1
    assert c.pop("a") == 1
    assert "a" not in c
    assert c.pop("a", "d") == "d"
    assert c.pop("a", None) is None
    with pytest.raises(KeyError) as info:
        c.pop("a")
    assert info.value.args == ("a",)
    assert c.stats.hits == c.stats.misses == 0


def test_popitem_is_lru(impl: ModuleType) -> None:
    c = impl.LocalCache()
    for k in "abc":
        c[k] = k.upper()
    c.get("a")
    assert c.popitem() == ("b", "B")
    assert c.popitem() == ("c", "C")
    assert c.popitem() == ("a", "A")
    with pytest.raises(KeyError):
        c.popitem()
    assert len(c) == 0


def test_clear_keeps_counters(impl: ModuleType) -> None:
    c = impl.LocalCache(2, weigher=lambda k, v: 3)
    c["a"] = 1
    c["b"] = 2
    c["c"] = 3
    c.get("c")
    c.get("zz")
    c.clear()
    assert len(c) == 0
    assert c.keys() == []
    assert c.currbytes == 0
    assert c.stats == CacheStats(1, 1, 1, 0, 0, 0, 2, None)
    c["d"] = 4
    assert c.keys() == ["d"]


def _workload(c: Any, timer: FakeTimer, seed: int) -> list[Any]:
    """Reads, writes (some with a TTL), deletes and ticks of the clock, in a seeded
    order; what every step answered, with snapshots of the cache along the way."""
    r = random.Random(seed)
    out: list[Any] = []
    for i in range(3000):
        k = r.randrange(150)
        op = r.random()
        if op < 0.45:
            out.append(c.get(k, ABSENT))
        elif op < 0.8:
            c.set(k, (i, k), ttl=r.choice([None, 1, 3, 40]))
        elif op < 0.9:
            out.append(c.pop(k, ABSENT))
        else:
            timer.tick(1)
        if i % 101 == 0:
            out.append((c.keys(), len(c), c.currbytes))
    out.append((c.items(), len(c), c.currbytes))
    return out


@pytest.mark.parametrize(
    "config",
    [
        {"maxsize": 60},
        {"maxsize": 60, "weigher": lambda k, v: 2},
        {"maxsize": 60, "policy": "tinylfu"},
        {"maxsize": 60, "maxbytes": 100, "weigher": lambda k, v: k % 5},
        {},  # unbounded: clear gives the table back
    ],
    ids=["lru", "weighed", "tinylfu", "maxbytes", "unbounded"],
)
def test_a_cleared_cache_behaves_as_a_new_one(impl: ModuleType, config: dict[str, Any]) -> None:
    """clear() keeps a bounded cache's table (compiled core): refilled, it answers
    every operation, and orders, evicts and expires, exactly as a new cache does."""
    timer = FakeTimer()
    used = impl.LocalCache(timer=timer, **config)
    _workload(used, timer, 1)
    used.clear()
    stats = used.stats
    assert (len(used), used.keys(), used.currbytes) == (0, [], 0)
    timer_new = FakeTimer(timer.now)
    new = impl.LocalCache(timer=timer_new, **config)
    assert _workload(used, timer, 2) == _workload(new, timer_new, 2)
    for name in ("hits", "misses", "evictions", "expirations"):
        assert getattr(used.stats, name) - getattr(stats, name) == getattr(new.stats, name)
    check_invariants(used)
    used.clear()
    used.clear()  # twice: nothing to drop
    assert len(used) == 0


def _new(impl: ModuleType, maxsize: int | None) -> Any:
    # A TTL, read against a timer of ints: deadlines are ints (the pure twin allocates
    # no float per entry, which Python's free list of floats would make unaccountable).
    return impl.LocalCache(maxsize, ttl=60, timer=lambda: 0)  # _LINES[0]


def _fill(c: Any, keys: list[str]) -> None:
    for k in keys:
        c[k] = k  # _LINES[1]


def _clear(c: Any) -> None:
    c.clear()  # _LINES[2]


_LINES = (
    _new.__code__.co_firstlineno + 3,
    _fill.__code__.co_firstlineno + 2,
    _clear.__code__.co_firstlineno + 1,
)


def _held() -> int:
    """Bytes live now that _new, _fill or _clear allocated: what the cache holds (its
    keys and values are made before, and not counted)."""
    lines = [tracemalloc.Filter(True, __file__, line, all_frames=True) for line in _LINES]
    return sum(t.size for t in tracemalloc.take_snapshot().filter_traces(lines).traces)


@pytest.mark.parametrize("maxsize", [1000, None])
def test_clear_keeps_a_bounded_cache_within_its_memory(
    impl: ModuleType, maxsize: int | None
) -> None:
    """A cache bounded by maxsize keeps its table on clear() (compiled core): its
    memory, cleared or refilled with other keys, stays what it was full. An unbounded
    one, and the pure twin (a dict: Python's own clear), give their memory back (the
    twin's total moves by a few bytes with Python's free lists: not compared)."""
    keys = [f"key-{i}" for i in range(4000)]
    tracemalloc.start(25)
    try:
        c = _new(impl, maxsize)
        _fill(c, keys[:1000])
        full = _held()
        for start in (1000, 2000, 3000):
            _clear(c)
            if maxsize is None or impl.__name__.endswith("_local_py"):
                assert _held() < full
                break
            assert _held() <= full
            _fill(c, keys[start : start + 1000])
            assert _held() <= full
            assert len(c) == 1000
            assert c.get(keys[start]) == keys[start]
    finally:
        tracemalloc.stop()


def test_iteration_and_views_are_snapshots(impl: ModuleType) -> None:
    c = impl.LocalCache()
    for i in range(5):
        c[i] = i * 10
    assert isinstance(c.keys(), list)
    assert isinstance(c.values(), list)
    assert isinstance(c.items(), list)
    assert c.keys() == [0, 1, 2, 3, 4]
    assert c.values() == [0, 10, 20, 30, 40]
    assert c.items() == [(i, i * 10) for i in range(5)]
    seen = []
    for k in c:  # mutating while iterating is allowed: it is a snapshot
        seen.append(k)
        c.pop(k)
        c[k + 100] = k
    assert seen == [0, 1, 2, 3, 4]
    assert c.keys() == [100, 101, 102, 103, 104]


def test_update_like_dict(impl: ModuleType) -> None:
    c = impl.LocalCache()
    c.update({"a": 1, "b": 2})
    c.update([("c", 3)], d=4)
    c.update(e=5)
    c.update()

    class KeysOnly:
        def keys(self) -> list[str]:
            return ["f"]

        def __getitem__(self, key: str) -> int:
            return 6

    c.update(KeysOnly())
    assert c.items() == [("a", 1), ("b", 2), ("c", 3), ("d", 4), ("e", 5), ("f", 6)]


def test_setdefault(impl: ModuleType) -> None:
    c = impl.LocalCache()
    assert c.setdefault("a", 1) == 1
    assert c.stats.misses == 1
    assert c.setdefault("a", 2) == 1
    assert c.stats.hits == 1
    assert c.setdefault("b") is None
    assert "b" in c
    assert c["b"] is None


def test_get_many(impl: ModuleType) -> None:
    c = impl.LocalCache()
    for k in "abcd":
        c[k] = k
    got = c.get_many(["d", "x", "b", "y"])
    assert got == {"d": "d", "b": "b"}
    assert isinstance(got, dict)
    assert c.keys() == ["a", "c", "d", "b"]
    assert (c.stats.hits, c.stats.misses) == (2, 2)
    assert c.get_many(iter(["a"])) == {"a": "a"}
    assert c.get_many([]) == {}


def test_set_many_mapping_and_pairs(impl: ModuleType) -> None:
    c = impl.LocalCache(3)
    c.set_many({"a": 1, "b": 2})
    c.set_many([("c", 3), ("d", 4)])
    c.set_many(iter([("e", 5)]))
    assert c.items() == [("c", 3), ("d", 4), ("e", 5)]
    assert c.stats.evictions == 2


def test_delete_many(impl: ModuleType) -> None:
    c = impl.LocalCache()
    for k in "abcd":
        c[k] = k
    assert c.delete_many(["a", "x", "c", "c"]) == 2
    assert c.keys() == ["b", "d"]
    assert c.delete_many(iter([])) == 0


def test_bool_and_len(impl: ModuleType) -> None:
    c = impl.LocalCache()
    assert not c
    c[1] = 1
    assert c
    assert len(c) == c.currsize == 1


# -- a set right after a miss ---------------------------------------------------------
# The compiled core remembers the key a read missed and where it would go, so that a set
# of that key right after (cache-aside) skips its lookup. These check that the remembered
# place is never used once the table changed, and that the key is not kept alive.


class _SameHash:
    """A key whose instances all hash alike (they probe the same index slots), equal by
    name; weak-referenceable."""

    __slots__ = ("__weakref__", "cache", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self.cache: object = None

    def __hash__(self) -> int:
        return 12345

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _SameHash) and other.name == self.name


def _change_between(c: Any, how: str, b: _SameHash) -> None:
    if how == "insert":
        c[b] = "b"
    elif how == "delete":
        del c[b]
    elif how == "other-miss":
        assert c.get(_SameHash("x")) is None
        c[b] = "b"
    elif how == "clear":
        c.clear()
        c[b] = "b"


@pytest.mark.parametrize("policy", ["lru", "tinylfu"])
@pytest.mark.parametrize("how", ["insert", "delete", "other-miss", "clear"])
def test_a_set_after_a_miss_sees_changes_made_in_between(
    impl: ModuleType, policy: str, how: str
) -> None:
    a, b = _SameHash("a"), _SameHash("b")
    c = impl.LocalCache(maxsize=100, policy=policy)
    if how == "delete":
        c[b] = "b"
    for i in range(3):  # few: no index rebuild, which would hide a stale slot
        c[i] = i
    assert c.get(a) is None
    _change_between(c, how, b)
    c[a] = "a"
    assert c[a] == "a"
    assert c.get(b) == (None if how == "delete" else "b")
    expected = {"insert": 5, "delete": 4, "other-miss": 5, "clear": 2}[how]
    assert len(c) == len(c.keys()) == expected
    check_invariants(c)


@pytest.mark.parametrize("policy", ["lru", "tinylfu"])
def test_a_set_after_a_miss_sees_what_its_weigher_inserted(impl: ModuleType, policy: str) -> None:
    # The weigher is user code run by the set itself, after the miss and before the set
    # looks the key up: it inserts b, whose hash takes the slot a would have taken.
    a, b = _SameHash("a"), _SameHash("b")

    done: list[bool] = []

    def weigher(key: object, value: object) -> int:
        if key is a and not done:  # (no lookup here: a miss would replace a's hint)
            done.append(True)
            c[b] = "b"
        return 1

    c = impl.LocalCache(maxbytes=100, weigher=weigher, policy=policy)
    assert c.get(a) is None
    c[a] = "a"
    assert (c[a], c[b], len(c), len(c.keys())) == ("a", "b", 2, 2)
    check_invariants(c)


@pytest.mark.parametrize("via", ["get", "in", "peek"])
def test_a_set_after_a_miss_inserts_once(impl: ModuleType, via: str) -> None:
    c = impl.LocalCache(maxsize=50)
    for i in range(200):
        k = _SameHash(str(i % 60))  # a new object each time, equal to an earlier one
        if via == "get":
            missing = c.get(k) is None
        elif via == "in":
            missing = k not in c
        else:
            missing = c.peek(k) is None
        if missing:
            c[k] = i
        c[k] = i  # an overwrite of the key just inserted
    assert len(c) == len(set(c.keys())) == 50
    check_invariants(c)


def test_a_missed_key_is_not_kept_alive(impl: ModuleType) -> None:
    c = impl.LocalCache(maxsize=10)
    k = _SameHash("k")
    ref = weakref.ref(k)
    assert c.get(k) is None
    del k
    c.clear()  # the compiled core drops the key it remembered
    gc.collect()
    assert ref() is None
    k = _SameHash("k")
    ref = weakref.ref(k)
    assert c.get(k) is None
    c[k] = 1  # the set that follows drops it too
    del c[k], k
    gc.collect()
    assert ref() is None


def test_a_cycle_through_a_missed_key_is_collected(impl: ModuleType) -> None:
    c = impl.LocalCache(maxsize=10)
    k = _SameHash("k")
    k.cache = c  # k -> c, and c remembers k (its last miss)
    assert c.get(k) is None
    refs = weakref.ref(c), weakref.ref(k)
    del c, k
    gc.collect()
    assert [r() for r in refs] == [None, None]


# -- LRU order ------------------------------------------------------------------------


def test_lru_order_exact(impl: ModuleType) -> None:
    c = impl.LocalCache()
    for k in "abcde":
        c[k] = k
    assert c.keys() == list("abcde")
    c["b"]
    assert c.keys() == list("acdeb")
    c.get("a")
    assert c.keys() == list("cdeba")
    c["d"] = "D"  # overwrite makes MRU
    assert c.keys() == list("cebad")
    c.get("nope")
    c.peek("c")
    assert "e" in c
    assert c.keys() == list("cebad")
    c.setdefault("c")
    assert c.keys() == list("ebadc")
    c.set_many([("a", 1), ("e", 2)])
    assert c.keys() == list("bdcae")
    del c["d"]
    assert c.keys() == list("bcae")


def test_eviction_follows_lru(impl: ModuleType) -> None:
    c = impl.LocalCache(3)
    c["a"] = 1
    c["b"] = 2
    c["c"] = 3
    c["a"]
    c["d"] = 4
    assert c.keys() == ["c", "a", "d"]
    assert "b" not in c
    assert c.stats.evictions == 1


# -- statistics -----------------------------------------------------------------------


def test_stats_exact(impl: ModuleType) -> None:
    c = impl.LocalCache(2)
    c["a"] = 1
    c["a"]
    c.get("a")
    c.get("b")
    with pytest.raises(KeyError):
        c["b"]
    c.get_many(["a", "b", "a"])
    c["b"] = 2
    c["c"] = 3  # evicts a
    c.peek("b")
    assert "c" in c
    c.pop("c")
    c.pop("zz", None)
    s = c.stats
    assert isinstance(s, CacheStats)
    assert (s.hits, s.misses, s.evictions, s.expirations) == (4, 3, 1, 0)
    assert (s.currsize, s.currbytes, s.maxsize, s.maxbytes) == (1, 0, 2, None)
    c.reset_stats()
    assert c.stats == CacheStats(0, 0, 0, 0, 1, 0, 2, None)
    assert len(c) == 1


def test_stats_is_a_snapshot(impl: ModuleType) -> None:
    c = impl.LocalCache()
    before = c.stats
    c.get("x")
    assert before.misses == 0
    assert c.stats.misses == 1


# -- repr -----------------------------------------------------------------------------


def test_repr_hides_keys_and_values(impl: ModuleType) -> None:
    c = impl.LocalCache(10, maxbytes=10_000)
    c["secret-key-1234"] = "secret-value-5678"
    r = repr(c)
    assert r == "LocalCache(maxsize=10, maxbytes=10000, currsize=1)"
    assert "secret" not in r
    assert "1234" not in r
    assert "5678" not in r
    assert repr(impl.LocalCache()) == "LocalCache(maxsize=None, maxbytes=None, currsize=0)"


# -- pickling -------------------------------------------------------------------------


def _weigh_len(key: Any, value: Any) -> int:
    return len(value)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_round_trip(impl: ModuleType, protocol: int) -> None:
    c = impl.LocalCache(5, maxbytes=100, weigher=_weigh_len)
    for k in "abcd":
        c[k] = k * 3
    c["b"]
    d = pickle.loads(pickle.dumps(c, protocol))
    assert type(d) is type(c)
    assert d is not c
    assert d.items() == c.items() == [("a", "aaa"), ("c", "ccc"), ("d", "ddd"), ("b", "bbb")]
    assert (d.maxsize, d.maxbytes, d.ttl, d.currbytes) == (5, 100, None, 12)
    assert d.weigher is _weigh_len
    d["e"] = "e"
    d["f"] = "f"
    assert d.keys() == ["c", "d", "b", "e", "f"]
    assert c.keys() == ["a", "c", "d", "b"]  # the original is untouched
    check_invariants(d)


def test_pickle_keeps_remaining_ttl(impl: ModuleType, timer: FakeTimer) -> None:
    c = impl.LocalCache(ttl=10, timer=timer)
    c["a"] = 1  # expires at +10
    timer.tick(4)
    c.set("b", 2, ttl=3)  # expires at +7
    c.set("forever", 3, ttl=math.inf)
    c.set("gone", 4, ttl=1)
    timer.tick(2)  # now +6; "gone" expired
    d = pickle.loads(pickle.dumps(c))
    # the timer was pickled too (a copy showing the same time): advance the copy
    new_timer = d.timer
    assert isinstance(new_timer, FakeTimer)
    assert new_timer is not timer
    assert d.ttl == 10
    assert d.keys() == ["a", "b", "forever"]
    new_timer.tick(0.5)  # remaining: a 4, b 1, forever inf
    assert d.keys() == ["a", "b", "forever"]
    new_timer.tick(1)
    assert d.keys() == ["a", "forever"]
    new_timer.tick(3)
    assert d.keys() == ["forever"]
    new_timer.tick(1e9)
    assert d.keys() == ["forever"]
    assert c.keys() == ["a", "b", "forever"]  # the original runs on its own timer


def test_pickle_unbounded_and_empty(impl: ModuleType) -> None:
    d = pickle.loads(pickle.dumps(impl.LocalCache()))
    assert (d.maxsize, d.maxbytes, len(d)) == (None, None, 0)
    d2 = pickle.loads(pickle.dumps(impl.LocalCache(maxbytes=1000)))
    assert d2.weigher is impl.default_weigher


# -- weak references, subclassing, GC -------------------------------------------------


def test_weakref(impl: ModuleType) -> None:
    c = impl.LocalCache()
    r = weakref.ref(c)
    assert r() is c
    del c
    gc.collect()
    assert r() is None


def test_subclass(impl: ModuleType) -> None:
    class Sub(impl.LocalCache):  # type: ignore[name-defined, misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.extra = "x"

        def __getitem__(self, key: Any) -> Any:
            return ("sub", super().__getitem__(key))

    s = Sub(2)
    s["a"] = 1
    assert s["a"] == ("sub", 1)
    assert s.extra == "x"
    assert isinstance(s, impl.LocalCache)
    s["b"] = 2
    s["c"] = 3
    assert s.keys() == ["b", "c"]
    assert repr(s).endswith("(maxsize=2, maxbytes=None, currsize=2)")
    r = weakref.ref(s)
    del s
    gc.collect()
    assert r() is None


class _Node:
    def __init__(self) -> None:
        self.cache: Any = None


def test_gc_collects_cycle_through_value(impl: ModuleType) -> None:
    gc.collect()
    c = impl.LocalCache(10)
    node = _Node()
    node.cache = c  # value -> cache -> value
    c["n"] = node
    c[node] = "self"  # key -> cache, too
    r_cache = weakref.ref(c)
    r_node = weakref.ref(node)
    del c, node
    gc.collect()
    assert r_cache() is None
    assert r_node() is None


def test_gc_collects_cycle_through_weigher_and_timer(impl: ModuleType) -> None:
    def build() -> weakref.ref[Any]:
        holder: dict[str, Any] = {}

        def weigher(k: Any, v: Any) -> int:
            return 1 if holder else 0

        def timer() -> float:
            return 0.0 if holder else 1.0

        c = impl.LocalCache(10, weigher=weigher, ttl=10, timer=timer)
        holder["c"] = c  # cache -> weigher/timer -> holder -> cache
        c["a"] = holder
        return weakref.ref(c)

    r = build()
    gc.collect()
    assert r() is None


def test_values_are_released_on_removal(impl: ModuleType) -> None:
    class Value:
        pass

    c = impl.LocalCache(2)
    refs = []
    for i in range(3):
        v = Value()
        refs.append(weakref.ref(v))
        c[i] = v
    del v
    assert refs[0]() is None  # evicted
    c.pop(1)
    assert refs[1]() is None
    c[2] = "other"  # overwritten
    assert refs[2]() is None
    values = [Value() for _ in range(3)]
    vrefs = [weakref.ref(v) for v in values]
    c.set_many(enumerate(values))
    del values
    c.clear()
    assert all(r() is None for r in vrefs)


def test_absent_sentinel_not_returned(impl: ModuleType) -> None:
    c = impl.LocalCache()
    assert c.peek("nope", ABSENT) is ABSENT
    assert c.get("nope", ABSENT) is ABSENT
    assert c.pop("nope", ABSENT) is ABSENT


def test_infinite_default_ttl_reads_as_none(impl: ModuleType) -> None:
    assert impl.LocalCache(ttl=math.inf).ttl is None
    ttl = impl.LocalCache(ttl=5).ttl
    assert ttl == 5.0
    assert isinstance(ttl, float)


def test_class_is_subscriptable_at_run_time(impl: ModuleType) -> None:
    alias = impl.LocalCache[str, int]
    assert alias.__origin__ is impl.LocalCache
    assert alias.__args__ == (str, int)


def test_huge_maxbytes_is_refused(impl: ModuleType) -> None:
    with pytest.raises(ConfigurationError):
        impl.LocalCache(maxbytes=sys.maxsize + 1)
    assert impl.LocalCache(maxbytes=sys.maxsize).maxbytes == sys.maxsize


def test_overwrite_with_equal_key_keeps_the_original_key_object(impl: ModuleType) -> None:
    c = impl.LocalCache(4)
    c[1] = "a"
    c[1.0] = "b"
    c.set(True, "c")
    c.set_many([(1.0, "d")])
    assert c.items() == [(1, "d")]
    assert type(c.keys()[0]) is int
    key, value = c.popitem()
    assert type(key) is int
    assert value == "d"


def test_key_eq_exception_propagates_and_cache_stays_consistent(impl: ModuleType) -> None:
    class Key:
        def __init__(self, n: int) -> None:
            self.n = n

        def __hash__(self) -> int:
            return 1  # every Key collides: lookups call __eq__

        def __eq__(self, other: object) -> bool:
            if self.n == 99 or getattr(other, "n", None) == 99:
                raise ValueError("eq failed")
            return isinstance(other, Key) and other.n == self.n

    c = impl.LocalCache(3)
    a, b = Key(1), Key(2)
    c[a] = 1
    c[b] = 2
    for op in (
        lambda: c.get(Key(99)),
        lambda: c.set(Key(99), 1),
        lambda: c.pop(Key(99), None),
        lambda: Key(99) in c,
    ):
        with pytest.raises(ValueError, match="eq failed"):
            op()
    assert c.items() == [(a, 1), (b, 2)]
    check_invariants(c)


class _Tagged:
    """Mixin giving a LocalCache subclass an instance attribute, for the pickle test."""

    label = "class"


def test_pickle_keeps_subclass_attributes(impl: ModuleType) -> None:
    cls = type("TaggedCache", (_Tagged, impl.LocalCache), {"__module__": __name__})
    globals()["TaggedCache"] = cls  # pickle finds classes by module-level name
    cache = cls(4, ttl=100)
    cache.label = "instance"
    cache["a"] = 1
    cache.set("b", 2, ttl=math.inf)
    copy = pickle.loads(pickle.dumps(cache))
    assert type(copy) is cls
    assert copy.label == "instance"
    assert copy.items() == [("a", 1), ("b", 2)]
    assert copy.ttl == 100


def test_subclass_missing_answers_a_miss(impl: ModuleType) -> None:
    class Defaulting(impl.LocalCache):  # type: ignore[name-defined,misc]
        def __missing__(self, key: Any) -> Any:
            value = f"made:{key}"
            self[key] = value
            return value

    cache = Defaulting(2)
    assert cache["a"] == "made:a"
    assert cache["a"] == "made:a"
    assert cache.get("b") is None  # get() has its default; __missing__ is for c[k] only
    assert (cache.stats.hits, cache.stats.misses) == (1, 2)
    with pytest.raises(KeyError):
        impl.LocalCache(2)["absent"]
