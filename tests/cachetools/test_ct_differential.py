"""Differential: random operation sequences give the same results in both packages.

Every operation's result (or exception type and arguments), the iteration order and
the repr are compared between cachetools (the reference) and novacache.cachetools.
"""

from __future__ import annotations

import copy
import math
from types import ModuleType
from typing import Any

import pytest
from ct_helpers import FakeTimer, load_package
from hypothesis import given, settings
from hypothesis import strategies as st

REFERENCE = load_package("cachetools")
OURS = load_package("novacache.cachetools")

KEY = st.integers(0, 7)
SIZE = st.integers(1, 4)
OPERATION = st.one_of(
    st.tuples(st.just("set"), KEY, SIZE),
    st.tuples(st.just("setdefault"), KEY, SIZE),
    st.tuples(st.just("getitem"), KEY),
    st.tuples(st.just("get"), KEY),
    st.tuples(st.just("del"), KEY),
    st.tuples(st.just("pop"), KEY),
    st.tuples(st.just("contains"), KEY),
    st.tuples(st.just("popitem")),
    st.tuples(st.just("len")),
    st.tuples(st.just("currsize")),
    st.tuples(st.just("iter")),
    st.tuples(st.just("expire")),
    st.tuples(st.just("tick"), st.integers(1, 3)),
    st.tuples(st.just("clear")),
    st.tuples(st.just("copy")),
    st.tuples(st.just("frozen"), KEY, st.integers(1, 3)),
)


def _ttu(key: int, value: int, now: float) -> float:
    return now + 1 + (key + value) % 4


def build(ct: ModuleType, name: str, sized: bool, timer: FakeTimer) -> Any:
    kwargs: dict[str, Any] = {"getsizeof": lambda value: value} if sized else {}
    maxsize = 6 if sized else 4
    if name == "TTLCache":
        return ct.TTLCache(maxsize, 3, timer=timer, **kwargs)
    if name == "TLRUCache":
        return ct.TLRUCache(maxsize, _ttu, timer=timer, **kwargs)
    if name == "RRCache":
        return ct.RRCache(maxsize, choice=min, **kwargs)
    return getattr(ct, name)(maxsize, **kwargs)


def apply(cache: Any, timer: FakeTimer, operation: tuple[Any, ...]) -> Any:
    """Run one operation; return its result, or the exception's type and args.

    A ``copy`` replaces the cache under test by its shallow copy (returned)."""
    kind, *args = operation
    try:
        if kind == "set":
            cache[args[0]] = args[1]
            return None
        if kind == "setdefault":
            return cache.setdefault(args[0], args[1])
        if kind == "getitem":
            return cache[args[0]]
        if kind == "get":
            return cache.get(args[0])
        if kind == "del":
            del cache[args[0]]
            return None
        if kind == "pop":
            return cache.pop(args[0], "absent")
        if kind == "contains":
            return args[0] in cache
        if kind == "popitem":
            return cache.popitem()
        if kind == "len":
            return len(cache)
        if kind == "currsize":
            return cache.currsize
        if kind == "iter":
            return [key for key in cache]
        if kind == "expire":
            return sorted(cache.expire()) if hasattr(cache, "expire") else None
        if kind == "tick":
            timer.tick(args[0])
            return None
        if kind == "clear":
            cache.clear()
            return None
        if kind == "frozen":  # reads inside `with cache.timer`, while the timer moves on
            if not hasattr(cache, "timer"):
                return None
            with cache.timer:
                timer.tick(args[1])
                found = (args[0] in cache, cache.get(args[0]), len(cache), list(cache))
            return (*found, args[0] in cache)
        raise AssertionError(kind)
    except (KeyError, ValueError) as exc:
        return (type(exc).__name__, exc.args)


@pytest.mark.parametrize("sized", [False, True], ids=["unsized", "sized"])
@pytest.mark.parametrize(
    "name", ["Cache", "FIFOCache", "LFUCache", "LRUCache", "RRCache", "TTLCache", "TLRUCache"]
)
@settings(max_examples=120, deadline=None)
@given(operations=st.lists(OPERATION, max_size=40))
def test_same_results_as_cachetools(
    name: str, sized: bool, operations: list[tuple[Any, ...]]
) -> None:
    timers = FakeTimer(), FakeTimer()
    caches = [build(REFERENCE, name, sized, timers[0]), build(OURS, name, sized, timers[1])]
    for step, operation in enumerate(operations):
        if operation[0] == "copy":
            caches = [copy.copy(cache) for cache in caches]
            # a copy's timer wraps the same fake timer: both still tick together
            continue
        expected = apply(caches[0], timers[0], operation)
        actual = apply(caches[1], timers[1], operation)
        assert actual == expected, f"step {step}: {operation}"
    assert repr(caches[1]) == repr(caches[0])
    assert caches[1].currsize == caches[0].currsize
    assert math.isfinite(caches[1].currsize)
