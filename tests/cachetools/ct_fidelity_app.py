"""A user's application module, for the drop-in fidelity test (test_ct_fidelity.py).

It imports the package named by ``CT_FIDELITY_PACKAGE`` (``cachetools``, the default, or
``novacache.cachetools``), as an application imports whichever it was switched to, and
defines what such an application pickles: caches of every class, its own subclasses,
keys made with keyword arguments. :func:`observe` says what a cache or key does, in
terms both packages share, so that a pickle loaded by the other package can be compared
with the object it was made from.

Pickles name this module's classes and functions (the timer, ``ttu``, the
subclasses), so every process that loads them imports this module too.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any

ct: Any = importlib.import_module(os.environ.get("CT_FIDELITY_PACKAGE", "cachetools"))
importlib.import_module(ct.__name__ + ".keys")
importlib.import_module(ct.__name__ + ".func")


class FakeTimer:
    """A picklable timer that only moves when told to."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float = 1) -> None:
        self.now += seconds


def ttu(key: Any, value: Any, now: float) -> float:
    """A TLRUCache's time to use: ``weight(value)`` seconds from now."""
    return now + weight(value)


def weight(value: Any) -> int:
    """A getsizeof: an int weighs itself, anything else its length."""
    return value if isinstance(value, int) else len(value)


def identity(x: Any, **kwargs: Any) -> Any:
    return (x, sorted(kwargs.items()))


class AppLRU(ct.LRUCache):  # type: ignore[misc,name-defined]
    """Only ``__init__`` and an attribute: served by the core in novacache."""

    def __init__(self, maxsize: int) -> None:
        super().__init__(maxsize)
        self.label = "app"


class AppSizedTTL(ct.TTLCache):  # type: ignore[misc,name-defined]
    """Sized: the general path in novacache."""

    def __init__(self, maxsize: int, timer: Any) -> None:
        super().__init__(maxsize, 10, timer=timer, getsizeof=len)
        self.label = "sized"


class AppHookedFIFO(ct.FIFOCache):  # type: ignore[misc,name-defined]
    """Overrides the eviction hook."""

    def popitem(self) -> Any:
        key, value = super().popitem()
        return key, value


def _fill(cache: Any, items: str) -> Any:
    for key in items:
        cache[key] = ord(key)
    return cache


def _lru() -> Any:
    cache = _fill(ct.LRUCache(5), "abcd")
    _ = cache["a"], cache["c"]  # recency: b, d, a, c
    return cache


def _fifo() -> Any:
    cache = _fill(ct.FIFOCache(4), "abcd")
    cache["a"] = 0  # a write refreshes: b, c, d, a
    _ = cache["b"]  # a read does not
    return cache


def _lfu() -> Any:
    cache = _fill(ct.LFUCache(5), "abcd")
    for key in "bbbddac":
        _ = cache[key]
    return cache


def _ttl(timer: Any = None, maxsize: int = 4, **kwargs: Any) -> Any:
    timer = timer or FakeTimer()
    cache = ct.TTLCache(maxsize, 10, timer=timer, **kwargs)
    cache["a"] = "1"
    timer.tick(2)
    cache["b"] = "22"
    timer.tick(2)
    cache["c"] = "333"
    cache["a"] = "4"  # rewritten: last to expire, first in insertion order
    _ = cache["b"]  # recency: c, a, b
    timer.tick(1)
    return cache


def _ttl_with_expired() -> Any:
    timer = FakeTimer()
    cache = ct.TTLCache(4, 5, timer=timer)
    cache["old"] = 1
    timer.tick(3)
    cache["new"] = 2
    timer.tick(3)  # "old" is expired, not yet removed: the pickle holds it
    return cache


def _tlru() -> Any:
    timer = FakeTimer()
    cache = ct.TLRUCache(4, ttu, timer=timer)
    cache["a"] = 7
    cache["b"] = 3
    timer.tick(1)
    cache["c"] = 5
    cache["b"] = 9  # the old entry stays in the heap, marked removed
    _ = cache["a"]
    return cache


def _keyed() -> Any:
    cache = ct.LRUCache(8)
    cache[ct.keys.hashkey(1, a=2)] = "hashkey"
    cache[ct.keys.typedkey(1, a=2.0)] = "typedkey"
    cache[ct.keys.methodkey(None, "m", b=(1, 2))] = "methodkey"
    cache[ct.keys.hashkey("plain")] = "plain"
    return cache


def _func_cache() -> Any:
    wrapped = ct.func.ttl_cache(maxsize=None, ttl=3600)(identity)
    wrapped(1, a=2)
    wrapped("x")
    return wrapped.cache


def _app_lru() -> Any:
    cache = _fill(AppLRU(3), "abc")
    _ = cache["a"]
    return cache


def _app_sized_ttl() -> Any:
    timer = FakeTimer()
    cache = AppSizedTTL(9, timer)
    cache["a"] = "xx"
    timer.tick(1)
    cache["b"] = "yyy"
    return cache


#: Caches an application pickles, by name: how to make each.
CACHES: dict[str, Callable[[], Any]] = {
    "Cache": lambda: _fill(ct.Cache(5), "abc"),
    "Cache-sized": lambda: _fill(ct.Cache(300, getsizeof=weight), "abc"),
    "Cache-sized-len": lambda: _fill(ct.Cache(30, getsizeof=len), ""),
    "LRUCache": _lru,
    "LRUCache-full": lambda: _fill(ct.LRUCache(3), "abcde"),
    "LRUCache-float": lambda: _fill(ct.LRUCache(3.5), "abcd"),
    "LRUCache-sized": lambda: _fill(ct.LRUCache(250, getsizeof=weight), "abcd"),
    "LRUCache-empty": lambda: ct.LRUCache(2),
    "FIFOCache": _fifo,
    "FIFOCache-zero": lambda: ct.FIFOCache(0),
    "LFUCache": _lfu,
    "RRCache": lambda: _fill(ct.RRCache(4, choice=min), "dbca"),
    "TTLCache": _ttl,
    "TTLCache-expired-inside": _ttl_with_expired,
    "TTLCache-sized": lambda: _ttl(maxsize=9, getsizeof=len),
    "TTLCache-float-times": lambda: _ttl(FakeTimer(0.25)),
    "TTLCache-monotonic": lambda: _fill(ct.TTLCache(3, 3600), "abc"),
    "TLRUCache": _tlru,
    "keys-in-a-cache": _keyed,
    "func.ttl_cache": _func_cache,
    "AppLRU": _app_lru,
    "AppSizedTTL": _app_sized_ttl,
    "AppHookedFIFO": lambda: _fill(AppHookedFIFO(3), "abcd"),
}

#: Keys an application pickles (a shelve's values hold them), by name.
KEYS: dict[str, Callable[[Any], Any]] = {
    "hashkey-kwargs": lambda ct: ct.keys.hashkey(1, a=2),
    "hashkey-positional": lambda ct: ct.keys.hashkey(1, "two"),
    "typedkey-kwargs": lambda ct: ct.keys.typedkey(1, a=2.0),
    "methodkey-kwargs": lambda ct: ct.keys.methodkey(object(), 3, b=4),
    "typedmethodkey-kwargs": lambda ct: ct.keys.typedmethodkey(object(), 3, b=4),
}


def observe_cache(make: Callable[[], Any]) -> list[str]:
    """What a cache does, each probe on a fresh one from ``make()``: its type, items,
    sizes and attributes; the order ``popitem()`` empties it in; what storing one more
    item does; what expires when (for a fake timer); lookups with the keys this
    package makes."""
    seen: list[Any] = []
    cache = make()
    seen += [type(cache).__name__, list(cache.items()), list(cache), len(cache)]
    seen += [cache.maxsize, cache.currsize, repr(cache), getattr(cache, "label", None)]
    for name in ("ttl", "choice", "ttu"):
        value = getattr(cache, name, None)
        seen.append(getattr(value, "__name__", value))
    cache = make()
    seen.append([cache.popitem() for _ in range(len(cache))])
    cache = make()
    try:
        cache["new"] = "zz"
    except ValueError as exc:
        seen.append(("ValueError", str(exc)))
    seen += [list(cache.items()), cache.currsize]
    timer = getattr(cache, "timer", None)
    if isinstance(getattr(timer, "now", None), (int, float)):
        start = make().timer()
        for step in range(14):
            cache = make()
            seen.append((step, cache.expire(start + step), list(cache)))
    cache = make()
    seen.append([cache.get(make_key(ct)) for make_key in KEYS.values()])
    marker = repr(ct.keys._HashedTuple)  # each package's own: compare the rest
    return [repr(item).replace(marker, "<kwmark>") for item in seen]


def observe_key(name: str, key: Any) -> list[Any]:
    """What a loaded key does: equal to, and hashing as, the key this package makes
    for the same arguments; found in a cache under that key."""
    fresh = KEYS[name](ct)  # (a method key's instance argument is not part of it)
    cache = ct.LRUCache(2)
    cache[fresh] = "hit"
    return [key == fresh, hash(key) == hash(fresh), cache.get(key), type(key).__name__]
