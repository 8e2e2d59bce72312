"""What cachetools' own suite leaves out, stated for cachetools and for our drop-in."""

from __future__ import annotations

import copy
import math
import pickle
from collections.abc import MutableMapping
from datetime import datetime, timedelta
from types import ModuleType
from typing import Any

import pytest
from ct_helpers import FakeTimer

POLICIES = ["FIFOCache", "LFUCache", "LRUCache", "RRCache", "TTLCache", "TLRUCache"]


def make(ct: ModuleType, name: str, maxsize: float, **kwargs: Any) -> Any:
    """A cache of policy ``name``; timed ones get a fake timer and items never expire
    unless told otherwise; RR evicts the smallest key (deterministic)."""
    cls = getattr(ct, name)
    if name == "TTLCache":
        kwargs.setdefault("timer", FakeTimer())
        return cls(maxsize, kwargs.pop("ttl", math.inf), **kwargs)
    if name == "TLRUCache":
        kwargs.setdefault("timer", FakeTimer())
        return cls(maxsize, kwargs.pop("ttu", lambda _k, _v, now: math.inf), **kwargs)
    if name == "RRCache":
        kwargs.setdefault("choice", min)
    return cls(maxsize, **kwargs)


def subclass(ct: ModuleType, name: str, **body: Any) -> type:
    return type(f"User{name}", (getattr(ct, name),), body)


# -- construction, properties, repr ------------------------------------------------


@pytest.mark.parametrize("name", ["Cache", *POLICIES])
def test_is_a_mutable_mapping_with_runtime_generics(ct: ModuleType, name: str) -> None:
    cls = getattr(ct, name)
    assert issubclass(cls, MutableMapping)
    assert cls[int, str] is not cls  # subscriptable at runtime, like cachetools'
    if name in ("TTLCache", "TLRUCache"):
        assert cls[int, str, datetime] is not cls


@pytest.mark.parametrize("name", ["Cache", *POLICIES])
def test_repr_format(ct: ModuleType, name: str) -> None:
    cache = make(ct, name, 3) if name != "Cache" else ct.Cache(3)
    cache[1] = "one"
    cache["two"] = 2
    expected = f"{name}({{1: 'one', 'two': 2}}, maxsize=3, currsize=2)"
    assert repr(cache) == expected
    user = subclass(ct, name)(3) if name in ("Cache", "FIFOCache", "LRUCache") else None
    if user is not None:
        assert repr(user) == f"User{name}({{}}, maxsize=3, currsize=0)"


@pytest.mark.parametrize("name", ["Cache", *POLICIES])
def test_constructor_errors(ct: ModuleType, name: str) -> None:
    with pytest.raises(ValueError, match=r"^maxsize must be non-negative$"):
        make(ct, name, -1) if name != "Cache" else ct.Cache(-1)


@pytest.mark.parametrize("name", POLICIES)
def test_value_errors_leave_the_cache_unchanged(ct: ModuleType, name: str) -> None:
    cache = make(ct, name, 3, getsizeof=lambda value: value)
    cache[1] = 1
    with pytest.raises(ValueError, match=r"^value too large$"):
        cache[2] = 4
    with pytest.raises(ValueError, match=r"^value size must be non-negative$"):
        cache[3] = -1
    assert dict(cache.items()) == {1: 1}
    assert cache.currsize == 1
    empty = make(ct, name, 0)
    with pytest.raises(ValueError, match=r"^value too large$"):
        empty[1] = 1


@pytest.mark.parametrize("name", POLICIES)
def test_popitem_on_empty_names_the_class(ct: ModuleType, name: str) -> None:
    with pytest.raises(KeyError) as info:
        make(ct, name, 2).popitem()
    assert info.value.args == (f"{name} is empty",)
    user = subclass(ct, name)
    args = (2, math.inf) if name == "TTLCache" else (2,)
    if name == "TLRUCache":
        args = (2, lambda _k, _v, now: math.inf)
    with pytest.raises(KeyError) as info:
        user(*args).popitem()
    assert info.value.args == (f"User{name} is empty",)


def test_base_cache_popitem(ct: ModuleType) -> None:
    cache = ct.Cache(3)
    cache.update({"a": 1, "b": 2})
    assert cache.popitem() == ("a", 1)
    assert cache.popitem() == ("b", 2)
    with pytest.raises(KeyError) as info:
        cache.popitem()
    assert info.value.args == ()


def test_properties(ct: ModuleType) -> None:
    timer = FakeTimer()

    def ttu(_key: Any, _value: Any, now: float) -> float:
        return now + 1

    assert ct.RRCache(2).choice.__name__ == "choice"
    assert ct.RRCache(2, choice=max).choice is max
    ttl = ct.TTLCache(2, ttl=5, timer=timer)
    assert (ttl.maxsize, ttl.currsize, ttl.ttl) == (2, 0, 5)
    tlru = ct.TLRUCache(2, ttu, timer=timer)
    assert tlru.ttu is ttu
    # The timer property wraps the timer, forwarding its attributes.
    assert tlru.timer() == 0
    tlru.timer.tick()
    assert (timer.now, tlru.timer.now) == (1, 1)
    sized = ct.LRUCache(10, getsizeof=len)
    sized["k"] = "abc"
    assert (sized.getsizeof("abcd"), sized.currsize) == (4, 3)


# -- subclass hooks -------------------------------------------------------------


@pytest.mark.parametrize("name", POLICIES)
def test_popitem_override_is_the_eviction_hook(ct: ModuleType, name: str) -> None:
    evicted: list[Any] = []

    def popitem(self: Any) -> Any:
        item = super(type(self), self).popitem()
        evicted.append(item)
        return item

    cache = _instance(ct, name, subclass(ct, name, popitem=popitem), 2)
    for key in range(5):
        cache[key] = key * 10
    assert len(evicted) == 3
    assert len(cache) == 2
    assert {key for key, _ in evicted} | set(cache) == set(range(5))
    assert all(value == key * 10 for key, value in evicted)


def _instance(ct: ModuleType, name: str, cls: type, maxsize: float, **kwargs: Any) -> Any:
    if name == "TTLCache":
        return cls(maxsize, math.inf, timer=FakeTimer(), **kwargs)
    if name == "TLRUCache":
        return cls(maxsize, lambda _k, _v, now: math.inf, timer=FakeTimer(), **kwargs)
    if name == "RRCache":
        return cls(maxsize, choice=min, **kwargs)
    return cls(maxsize, **kwargs)


@pytest.mark.parametrize("name", POLICIES)
def test_getsizeof_as_a_method(ct: ModuleType, name: str) -> None:
    def getsizeof(self: Any, value: str) -> int:
        return len(value)

    cache = _instance(ct, name, subclass(ct, name, getsizeof=getsizeof), 5)
    cache["a"] = "xx"
    cache["b"] = "yyy"
    assert cache.currsize == 5
    cache["c"] = "z"
    assert cache.currsize <= 5
    assert "c" in cache


@pytest.mark.parametrize("name", ["LRUCache", "LFUCache", "TTLCache", "TLRUCache"])
def test_missing_that_stores_counts_as_a_use(ct: ModuleType, name: str) -> None:
    def __missing__(self: Any, key: Any) -> Any:
        self[key] = key
        return key

    cache = _instance(ct, name, subclass(ct, name, __missing__=__missing__), 2)
    cache[1] = 1
    assert cache[2] == 2  # stored by __missing__, then read: most recently used
    cache[1]
    cache[2]
    cache[3] = 3
    assert 2 in cache
    assert 3 in cache


@pytest.mark.parametrize("name", ["TTLCache", "TLRUCache"])
def test_expire_override_sees_the_frozen_time(ct: ModuleType, name: str) -> None:
    seen: list[Any] = []

    def expire(self: Any, time: Any = None) -> Any:
        seen.append(time)
        return super(type(self), self).expire(time)

    cache = _instance(ct, name, subclass(ct, name, expire=expire), 2)
    cache.timer.tick(7)
    cache[1] = 1
    len(cache)
    cache.currsize  # noqa: B018
    repr(cache)
    assert seen == [7, 7, 7, 7]


def test_ttl_delete_of_expired_item_removes_it_and_raises(ct: ModuleType) -> None:
    cache = ct.TTLCache(3, ttl=1, timer=FakeTimer())
    cache[1] = 1
    cache.timer.tick()
    with pytest.raises(KeyError):
        del cache[1]
    assert cache.expire() == []
    assert 1 not in set(cache)


def test_tlru_ttu_gets_key_value_and_frozen_now(ct: ModuleType) -> None:
    calls: list[tuple[Any, Any, Any]] = []

    def ttu(key: Any, value: Any, now: float) -> float:
        calls.append((key, value, now))
        return now + value

    cache = ct.TLRUCache(3, ttu, timer=FakeTimer(5))
    cache["a"] = 2
    cache.timer.tick()
    assert calls == [("a", 2, 5)]
    assert "a" in cache
    cache.timer.tick()
    assert "a" not in cache


# -- the timer ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["TTLCache", "TLRUCache"])
def test_timer_context_freezes_now_and_nests(ct: ModuleType, name: str) -> None:
    cache = make(ct, name, 2)
    with cache.timer as outer:
        cache.timer.tick()
        assert cache.timer() == outer == 0
        with cache.timer as inner:
            assert inner == outer
        cache.timer.tick()
        assert cache.timer() == 0
    assert cache.timer() == 2


def test_ttl_with_datetime_timer_expires_in_order(ct: ModuleType) -> None:
    start = datetime(2026, 1, 1)
    now = [start]
    cache = ct.TTLCache(3, ttl=timedelta(minutes=1), timer=lambda: now[0])
    cache["a"] = 1
    now[0] += timedelta(seconds=30)
    cache["b"] = 2
    now[0] += timedelta(seconds=31)
    assert [key for key in cache] == ["b"]  # list() would expire: it calls len()
    assert cache.expire() == [("a", 1)]
    now[0] += timedelta(minutes=1)
    assert len(cache) == 0


# -- policy details -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("FIFOCache", [2, 3, 1, 4]),  # storing a present key makes it the newest
        ("LRUCache", [3, 1, 4, 2]),
        ("LFUCache", [3, 4, 1, 2]),  # ties go to the oldest of the least used
        ("RRCache", [1, 2, 3, 4]),  # choice=min
        ("TTLCache", [3, 1, 4, 2]),
        ("TLRUCache", [3, 1, 4, 2]),
    ],
)
def test_eviction_order(ct: ModuleType, name: str, expected: list[int]) -> None:
    cache = make(ct, name, 4)
    for key in (1, 2, 3):
        cache[key] = key
    cache[1] = "again"
    cache[2]
    cache[4] = 4
    cache[2]
    assert [cache.popitem()[0] for _ in range(4)] == expected


@pytest.mark.parametrize("name", POLICIES)
@pytest.mark.parametrize("how", ["copy", "deepcopy", "pickle"])
def test_copies_keep_the_eviction_order(ct: ModuleType, name: str, how: str) -> None:
    if name in ("TTLCache", "TLRUCache"):  # a timer that pickles
        cache = getattr(ct, name)(5, *_timed_args(name), timer=_PicklableTimer())
    else:
        cache = make(ct, name, 5)
    for key in (3, 1, 4, 5, 2):
        cache[key] = str(key)
    cache[4]
    cache[3]
    cache[4]
    clone = {
        "copy": copy.copy,
        "deepcopy": copy.deepcopy,
        "pickle": lambda c: pickle.loads(pickle.dumps(c)),
    }[how](cache)
    assert type(clone) is type(cache)
    assert clone.currsize == cache.currsize
    assert [clone.popitem() for _ in range(5)] == [cache.popitem() for _ in range(5)]


class _PicklableTimer:
    def __call__(self) -> float:
        return 0.0


def _always(_key: Any, _value: Any, _now: float) -> float:
    return math.inf


def _timed_args(name: str) -> tuple[Any, ...]:
    return (math.inf,) if name == "TTLCache" else (_always,)


@pytest.mark.parametrize("name", ["Cache", "FIFOCache", "LRUCache", "LFUCache", "RRCache"])
def test_growing_while_iterating_raises_as_a_dict(ct: ModuleType, name: str) -> None:
    cache = ct.Cache(10) if name == "Cache" else make(ct, name, 10)
    cache.update({1: 1, 2: 2})

    def grow_while_iterating() -> None:
        for key in cache:
            cache[key + 10] = key

    with pytest.raises(RuntimeError):
        grow_while_iterating()


# -- decorators -----------------------------------------------------------------


def test_cached_key_function_and_attributes(ct: ModuleType) -> None:
    seen: list[tuple[Any, ...]] = []

    def key(*args: Any, **kwargs: Any) -> Any:
        seen.append(args)
        return args[0]

    cache = ct.LRUCache(2)

    @ct.cached(cache, key=key, info=True)
    def double(x: int, unused: int = 0) -> int:
        return 2 * x

    assert double(3, 1) == 6
    assert double(3, 2) == 6  # same key: a hit
    assert seen == [(3, 1), (3, 2)]
    assert dict(cache.items()) == {3: 6}
    info = double.cache_info()
    assert isinstance(info, ct.CacheInfo)
    assert info._fields == ("hits", "misses", "maxsize", "currsize")
    assert (info.hits, info.misses, info.maxsize, info.currsize) == (1, 1, 2, 1)
    assert double.cache_key is key
    assert double.__wrapped__(5) == 10
    assert double.__name__ == "double"


def test_cached_value_too_large_is_returned_uncached(ct: ModuleType) -> None:
    cache = ct.LRUCache(3, getsizeof=len)
    calls: list[str] = []

    @ct.cached(cache, info=True)
    def echo(text: str) -> str:
        calls.append(text)
        return text

    assert echo("abcd") == "abcd"
    assert echo("abcd") == "abcd"
    assert calls == ["abcd", "abcd"]
    assert echo.cache_info() == (0, 2, 3, 0)


def test_cachedmethod_per_instance_state(ct: ModuleType) -> None:
    class Squares:
        def __init__(self) -> None:
            self.cache = ct.LRUCache(4)
            self.calls = 0

        @ct.cachedmethod(lambda self: self.cache, info=True)
        def square(self, x: int) -> int:
            self.calls += 1
            return x * x

    one, two = Squares(), Squares()
    assert (one.square(3), one.square(3), two.square(3)) == (9, 9, 9)
    assert (one.calls, two.calls) == (1, 1)
    assert one.square.cache_info() == (1, 1, 4, 1)
    assert one.square.cache is one.cache
    assert one.square.cache_key(3) == ct.keys.methodkey(one, 3)
    one.square.cache_clear()
    assert one.square.cache_info() == (0, 0, 4, 0)
    assert two.square.cache_info() == (0, 1, 4, 1)


@pytest.mark.parametrize("decorator", ["fifo_cache", "lfu_cache", "lru_cache", "rr_cache"])
def test_func_decorators_typed_and_cache(ct: ModuleType, decorator: str) -> None:
    wrapper = getattr(ct.func, decorator)(maxsize=4, typed=True)(lambda x: x)
    assert wrapper.cache_parameters() == {"maxsize": 4, "typed": True}
    wrapper(1)
    wrapper(1.0)
    assert wrapper.cache_info() == (0, 2, 4, 2)
    assert type(wrapper.cache).__name__ == decorator.split("_")[0].upper() + "Cache"
    assert wrapper.cache_condition is wrapper.cache_lock is not None


def test_func_ttl_cache_expires(ct: ModuleType) -> None:
    timer = FakeTimer()
    wrapper = ct.func.ttl_cache(maxsize=2, ttl=3, timer=timer)(lambda x: [x])
    first = wrapper(1)
    timer.tick(2)
    assert wrapper(1) is first
    timer.tick(1)
    assert wrapper(1) is not first
    assert wrapper.cache_info() == (1, 2, 2, 1)


def test_keys_are_plain_tuples(ct: ModuleType) -> None:
    assert ct.keys.hashkey(1, 2) == (1, 2)
    assert type(ct.keys.hashkey(1, b=2)) is tuple
    assert ct.keys.hashkey(1, b=2) == ct.keys.hashkey(1, b=2)
    assert ct.keys.hashkey(1, b=2) != ct.keys.hashkey(1, 2)
    assert ct.keys.typedkey(1) == (1, int)
    assert ct.keys.methodkey("self", 1, b=2) == ct.keys.hashkey(1, b=2)
    assert ct.keys.typedmethodkey("self", 1) == (1, int)
    for key in (ct.keys.hashkey(1, b=2), ct.keys.typedkey(1, b=2.0)):
        assert pickle.loads(pickle.dumps(key)) == key


@pytest.mark.parametrize("name", ["Cache", *POLICIES])
def test_missing_raises_in_the_lookups_handler(ct: ModuleType, name: str) -> None:
    def __missing__(self: Any, key: Any) -> Any:
        raise KeyError(f"no {key}")

    cls = subclass(ct, name, __missing__=__missing__)
    cache = cls(2) if name == "Cache" else _instance(ct, name, cls, 2)
    with pytest.raises(KeyError) as info:
        cache["absent"]
    assert info.value.args == ("no absent",)
    # Raised while handling the failed lookup, as a dict subclass's __missing__ is.
    assert isinstance(info.value.__context__, KeyError)
    assert cache.get("absent", 0) == 0


@pytest.mark.parametrize("name", ["TTLCache", "TLRUCache"])
def test_expired_item_goes_to_missing_without_context(ct: ModuleType, name: str) -> None:
    def __missing__(self: Any, key: Any) -> Any:
        raise KeyError(f"expired {key}")

    cls = subclass(ct, name, __missing__=__missing__)
    if name == "TTLCache":
        cache = cls(2, 1, timer=FakeTimer())
    else:
        cache = cls(2, lambda _k, _v, now: now + 1, timer=FakeTimer())
    cache["k"] = "v"
    cache.timer.tick()
    with pytest.raises(KeyError) as info:
        cache["k"]
    assert info.value.args == ("expired k",)
    assert info.value.__context__ is None
