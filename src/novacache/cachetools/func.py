"""`functools.lru_cache` compatible memoizing function decorators."""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from . import FIFOCache, LFUCache, LRUCache, RRCache, TTLCache, keys
from ._decorators import cached

if TYPE_CHECKING:
    from ._typing import LruCacheFunction

_P = ParamSpec("_P")
_R = TypeVar("_R")

__all__ = ("fifo_cache", "lfu_cache", "lru_cache", "rr_cache", "ttl_cache")


class _UnboundTTLCache(TTLCache[Any, Any, Any]):
    """A TTL cache without a size bound (``ttl_cache(maxsize=None)``)."""

    def __init__(self, ttl: Any, timer: Callable[[], Any]) -> None:
        TTLCache.__init__(self, math.inf, ttl, timer)

    @property
    def maxsize(self) -> None:  # type: ignore[override]
        return None


def _decorate(cache: Any, maxsize: float | None, typed: bool) -> Callable[[Any], Any]:
    def decorator(func: Callable[..., Any]) -> Any:
        # As functools.lru_cache, thread-safe; the condition (over an RLock, so
        # that a key's __eq__ may call the function again) also makes concurrent
        # callers of one key wait for a single computation.
        key = keys.typedkey if typed else keys.hashkey
        wrapper = cached(cache, key=key, condition=threading.Condition(), info=True)(func)
        wrapper.cache_parameters = lambda: {"maxsize": maxsize, "typed": typed}  # type: ignore[attr-defined]
        return wrapper

    return decorator


def _policy_decorator(
    maxsize: Any, typed: bool, make_cache: Callable[[float], Any]
) -> Callable[[Any], Any]:
    if maxsize is None:
        return _decorate({}, None, typed)
    if callable(maxsize):  # used bare: @lru_cache
        return _decorate(make_cache(128), 128, typed)(maxsize)  # type: ignore[no-any-return]
    return _decorate(make_cache(maxsize), maxsize, typed)


@overload
def fifo_cache(
    maxsize: int | None = 128, typed: bool = False
) -> Callable[[Callable[_P, _R]], LruCacheFunction[_P, _R]]: ...
@overload
def fifo_cache(maxsize: Callable[_P, _R], typed: bool = False) -> LruCacheFunction[_P, _R]: ...
def fifo_cache(maxsize: Any = 128, typed: bool = False) -> Any:
    """Decorator to wrap a function with a memoizing callable that saves
    up to `maxsize` results based on a First In First Out (FIFO)
    algorithm.

    """
    return _policy_decorator(maxsize, typed, FIFOCache)


@overload
def lfu_cache(
    maxsize: int | None = 128, typed: bool = False
) -> Callable[[Callable[_P, _R]], LruCacheFunction[_P, _R]]: ...
@overload
def lfu_cache(maxsize: Callable[_P, _R], typed: bool = False) -> LruCacheFunction[_P, _R]: ...
def lfu_cache(maxsize: Any = 128, typed: bool = False) -> Any:
    """Decorator to wrap a function with a memoizing callable that saves
    up to `maxsize` results based on a Least Frequently Used (LFU)
    algorithm.

    """
    return _policy_decorator(maxsize, typed, LFUCache)


@overload
def lru_cache(
    maxsize: int | None = 128, typed: bool = False
) -> Callable[[Callable[_P, _R]], LruCacheFunction[_P, _R]]: ...
@overload
def lru_cache(maxsize: Callable[_P, _R], typed: bool = False) -> LruCacheFunction[_P, _R]: ...
def lru_cache(maxsize: Any = 128, typed: bool = False) -> Any:
    """Decorator to wrap a function with a memoizing callable that saves
    up to `maxsize` results based on a Least Recently Used (LRU)
    algorithm.

    """
    return _policy_decorator(maxsize, typed, LRUCache)


@overload
def rr_cache(
    maxsize: int | None = 128,
    choice: Callable[[Sequence[Any]], Any] = ...,
    typed: bool = False,
) -> Callable[[Callable[_P, _R]], LruCacheFunction[_P, _R]]: ...
@overload
def rr_cache(
    maxsize: Callable[_P, _R],
    choice: Callable[[Sequence[Any]], Any] = ...,
    typed: bool = False,
) -> LruCacheFunction[_P, _R]: ...
def rr_cache(
    maxsize: Any = 128,
    choice: Callable[[Sequence[Any]], Any] = random.choice,
    typed: bool = False,
) -> Any:
    """Decorator to wrap a function with a memoizing callable that saves
    up to `maxsize` results based on a Random Replacement (RR)
    algorithm.

    """
    return _policy_decorator(maxsize, typed, lambda size: RRCache(size, choice))


@overload
def ttl_cache(
    maxsize: int | None = 128,
    ttl: Any = 600,
    timer: Callable[[], Any] = ...,
    typed: bool = False,
) -> Callable[[Callable[_P, _R]], LruCacheFunction[_P, _R]]: ...
@overload
def ttl_cache(
    maxsize: Callable[_P, _R],
    ttl: Any = 600,
    timer: Callable[[], Any] = ...,
    typed: bool = False,
) -> LruCacheFunction[_P, _R]: ...
def ttl_cache(
    maxsize: Any = 128,
    ttl: Any = 600,
    timer: Callable[[], Any] = time.monotonic,
    typed: bool = False,
) -> Any:
    """Decorator to wrap a function with a memoizing callable that saves
    up to `maxsize` results based on a Least Recently Used (LRU)
    algorithm with a per-item time-to-live (TTL) value.

    """
    if maxsize is None:
        return _decorate(_UnboundTTLCache(ttl, timer), None, typed)
    return _policy_decorator(maxsize, typed, lambda size: TTLCache(size, ttl, timer))
