"""How a memoizing wrapper answers a call: the three locking disciplines.

A wrapper (for a function, see :mod:`._decorators`, or for a method bound to an
instance, see :mod:`._methods`) provides ``cache``, ``cache_key``, ``cache_lock``,
``cache_condition`` and ``_memo_target`` (what computes a missing value). Each
discipline below is a mixin with ``__call__`` and ``cache_clear``; with ``info=True``
the wrapper also counts hits and misses and gets ``cache_info()``.

The number of times a lock or condition is entered is part of the contract (users
count them), so each discipline enters it exactly as cachetools does:

* unlocked: never;
* locked: once on a hit; twice on a miss (lookup, then ``setdefault``, which prefers
  a value another thread stored meanwhile);
* conditioned: once on a hit; three times on a miss (lookup and mark the key
  pending; store; unmark and notify). Callers of a pending key wait for it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, NamedTuple

from ._base import Cache

__all__ = ("CacheInfo", "Conditioned", "Locked", "Statistics", "Unlocked")


class CacheInfo(NamedTuple):
    """Named tuple holding cache statistics."""

    hits: int
    misses: int
    maxsize: float | None
    currsize: float


def make_info(cache: Any, hits: int, misses: int) -> CacheInfo:
    """The statistics of a wrapper over ``cache``: any mapping with ``len()``."""
    if isinstance(cache, Cache):
        return CacheInfo(hits, misses, cache.maxsize, cache.currsize)
    return CacheInfo(hits, misses, None, len(cache))


class _Memoizer:
    """What every discipline relies on (provided by the wrapper classes)."""

    cache: Any
    cache_key: Callable[..., Hashable]
    cache_lock: Any
    cache_condition: Any
    _memo_target: Callable[..., Any]
    _memo_counting: bool = False
    _memo_hits: int = 0
    _memo_misses: int = 0


class Unlocked(_Memoizer):
    """No lock: the cache's own operations are the only synchronisation."""

    def __call__(self, /, *args: Any, **kwargs: Any) -> Any:
        cache = self.cache
        key = self.cache_key(*args, **kwargs)
        try:
            value = cache[key]
        except KeyError:
            if self._memo_counting:
                self._memo_misses += 1
        else:
            if self._memo_counting:
                self._memo_hits += 1
            return value
        value = self._memo_target(*args, **kwargs)
        try:
            cache[key] = value
        except ValueError:
            pass  # too large to be cached
        return value

    def cache_clear(self) -> None:
        """Clear the cache (and the statistics)."""
        self.cache.clear()
        self._memo_hits = self._memo_misses = 0


class Locked(_Memoizer):
    """``lock=``: the lock guards the lookup and the store, not the computation."""

    def __call__(self, /, *args: Any, **kwargs: Any) -> Any:
        cache = self.cache
        key = self.cache_key(*args, **kwargs)
        lock = self.cache_lock
        with lock:
            try:
                value = cache[key]
            except KeyError:
                if self._memo_counting:
                    self._memo_misses += 1
            else:
                if self._memo_counting:
                    self._memo_hits += 1
                return value
        value = self._memo_target(*args, **kwargs)
        with lock:
            try:
                # Another thread may have stored a value meanwhile: return that one.
                return cache.setdefault(key, value)
            except ValueError:
                return value  # too large to be cached

    def cache_clear(self) -> None:
        """Clear the cache (and the statistics) under the lock."""
        with self.cache_lock:
            self.cache.clear()
            self._memo_hits = self._memo_misses = 0


class Conditioned(_Memoizer):
    """``condition=``: one computation per key; other callers wait for its result."""

    _memo_pending: set[Hashable]

    def __call__(self, /, *args: Any, **kwargs: Any) -> Any:
        cache = self.cache
        key = self.cache_key(*args, **kwargs)
        lock = self.cache_lock
        condition = self.cache_condition
        pending = self._memo_pending
        with lock:
            while key in pending:
                condition.wait()
            try:
                value = cache[key]
            except KeyError:
                pending.add(key)
                if self._memo_counting:
                    self._memo_misses += 1
            else:
                if self._memo_counting:
                    self._memo_hits += 1
                return value
        try:
            value = self._memo_target(*args, **kwargs)
            with lock:
                try:
                    cache[key] = value
                except ValueError:
                    pass  # too large to be cached
                return value
        finally:
            with lock:
                pending.remove(key)
                condition.notify_all()

    def cache_clear(self) -> None:
        """Clear the cache (and the statistics) under the lock."""
        with self.cache_lock:
            self.cache.clear()
            self._memo_hits = self._memo_misses = 0


class Statistics(_Memoizer):
    """``info=True``: ``cache_info()``, under the lock when there is one."""

    def cache_info(self) -> CacheInfo:
        """The hits, misses, maxsize and currsize of the cache."""
        lock = self.cache_lock
        if lock is None:
            return make_info(self.cache, self._memo_hits, self._memo_misses)
        with lock:
            return make_info(self.cache, self._memo_hits, self._memo_misses)


def discipline(lock: object, condition: object) -> type[_Memoizer]:
    """The discipline for a decorator's ``lock`` and ``condition`` arguments."""
    if condition is not None:
        return Conditioned
    if lock is not None:
        return Locked
    return Unlocked
