"""``@manager.cached(...)``: cache a function's results through a manager.

The decorated function keeps its exact type (the decorator is typed ``F -> F``), so
``mypy --strict`` sees the original signature, coroutine functions included. Calls go
through ``get_or_load``: one call of the function per key at a time in the process.

Keys: ``key(*args, **kwargs) -> str`` when given; otherwise
``"<module>.<qualname>:" + repr(args) + repr(sorted kwargs)``, which is stable across
processes for arguments whose ``repr`` is (numbers, strings, tuples, ...); pass ``key=``
for anything else. A key longer than 200 characters is replaced by a SHA-256 digest of it.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
import weakref
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast

from . import _kit
from ._async.singleflight import AsyncSingleFlight
from ._base import MISS

__all__ = ["KeyFunc", "TagsArg", "default_key", "make_decorator"]

F = TypeVar("F", bound=Callable[..., Any])
KeyFunc = Callable[..., str]
TagsArg = Iterable[str] | Callable[..., Iterable[str]]

_MAX_KEY = 200


def default_key(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """The default cache key of a call of the function ``name``."""
    text = f"{name}:{args!r}"
    if kwargs:
        text += repr(sorted(kwargs.items()))
    if len(text) > _MAX_KEY:
        # Note that a custom __repr__ may return a lone surrogate: hash the key's bytes
        # as the tiers store them (novacache.tiers._keys), never a UnicodeEncodeError.
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        text = f"{name}:sha256:{digest}"
    return text


def _key_builder(fn: Callable[..., Any], key: KeyFunc | None) -> Callable[..., str]:
    if key is not None:
        return key
    name = f"{fn.__module__}.{fn.__qualname__}"

    def build(*args: Any, **kwargs: Any) -> str:
        return default_key(name, args, kwargs)

    return build


def _tags_for(tags: TagsArg, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterable[str]:
    return tags(*args, **kwargs) if callable(tags) else tags


def make_decorator(
    manager: Any,
    ttl: float | None,
    key: KeyFunc | None,
    tags: TagsArg,
    negative_ttl: float | None,
) -> Callable[[F], F]:
    """The decorator behind ``CacheManager.cached`` and ``AsyncCacheManager.cached``
    (``manager`` is one of them: this module imports neither, the managers import it).

    Note that an L1 hit builds nothing a miss needs: the key of a call with exact
    ``int`` or ``str`` arguments is memoized (the default key of equal such arguments is
    the same text), the tags and the loader are made only on a miss, and the plain
    function's wrapper is compiled (:mod:`._kit`)."""
    is_async = manager._async_tiers

    def decorate(fn: F) -> F:
        build = _key_builder(fn, key)
        if inspect.iscoroutinefunction(fn):
            if is_async:
                return cast(F, _async_wrapper(manager, fn, build, key is None, ttl, tags,
                                              negative_ttl))  # fmt: skip
            return cast(F, _sync_manager_coroutine(manager, fn, build, ttl, tags, negative_ttl))
        if is_async:
            raise TypeError(
                "AsyncCacheManager.cached decorates coroutine functions; use a CacheManager"
                " for plain functions"
            )

        miss = _miss(manager, fn, ttl, tags, negative_ttl)
        wrapper = _kit.CachedCall(fn, manager.local, miss, build, key is None)
        functools.update_wrapper(wrapper, fn)
        return cast(F, wrapper)

    return decorate


def _miss(
    manager: Any,
    fn: Callable[..., Any],
    ttl: float | None,
    tags: TagsArg,
    negative_ttl: float | None,
) -> Callable[[str, tuple[Any, ...], dict[str, Any] | None], Any]:
    """What a ``CachedCall`` calls on an L1 miss: the manager's ``get_or_load`` of the
    key with ``fn(*args, **kwargs)`` as the loader (for the asyncio manager, the
    coroutine it returns)."""

    def miss(k: str, args: tuple[Any, ...], kwargs: dict[str, Any] | None) -> Any:
        kw = kwargs or {}
        return manager.get_or_load(
            k,
            lambda: fn(*args, **kw),
            ttl,
            tags=_tags_for(tags, args, kw),
            negative_ttl=negative_ttl,
        )

    return miss


def _async_wrapper(
    manager: Any,
    fn: Callable[..., Any],
    build: Callable[..., str],
    default_key: bool,
    ttl: float | None,
    tags: TagsArg,
    negative_ttl: float | None,
) -> Callable[..., Any]:
    """A coroutine function cached by the asyncio manager: the L1 first (the key of a
    call with exact ``int``/``str`` arguments memoized), then ``get_or_load``.

    The wrapper is a :class:`._kit.CachedCall`: a call returns an awaitable, for an L1
    hit a ``Ready`` (the value at once, no coroutine run), else the coroutine of
    ``get_or_load``. Both are coroutines to asyncio (``create_task``, ``gather``); the
    wrapper is a coroutine function to ``inspect`` and ``asyncio`` (it carries the
    wrapped function's code object and signature, as ``functools.wraps`` would)."""

    miss = _miss(manager, fn, ttl, tags, negative_ttl)
    wrapper = _kit.CachedCall(fn, manager.local, miss, build, default_key, True)
    functools.update_wrapper(wrapper, fn)
    # What makes a callable a coroutine function to inspect.iscoroutinefunction: on
    # 3.12+ its mark; before, a function-like object whose code is a coroutine's.
    for name in ("__code__", "__defaults__", "__kwdefaults__"):
        setattr(wrapper, name, getattr(fn, name, None))
    mark = getattr(inspect, "markcoroutinefunction", None)
    if mark is not None:
        mark(wrapper)
    return cast("Callable[..., Any]", wrapper)


def _sync_manager_coroutine(
    manager: Any,
    fn: Callable[..., Any],
    build: Callable[..., str],
    ttl: float | None,
    tags: TagsArg,
    negative_ttl: float | None,
) -> Callable[..., Any]:
    """A coroutine function cached by a *synchronous* manager: an L1 hit is answered
    directly; the manager's blocking calls below L1 run in a worker thread, and the
    function itself once per key per event loop (an asyncio single-flight)."""

    flights: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncSingleFlight] = (
        weakref.WeakKeyDictionary()
    )

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        k = build(*args, **kwargs)
        local = manager.local
        if local is not None:
            hit = local.get(k, MISS)
            if hit is not MISS:
                return hit
        loop = asyncio.get_running_loop()
        flight = flights.get(loop)
        if flight is None:
            flight = flights[loop] = AsyncSingleFlight()

        async def lead() -> Any:
            cached = await asyncio.to_thread(manager.get, k, MISS)
            if cached is not MISS:
                return cached
            manager.stats.add("loads")
            value = await fn(*args, **kwargs)
            if value is None and negative_ttl is None:
                return value
            life = negative_ttl if value is None else ttl
            await asyncio.to_thread(
                manager._set, k, value, life, tuple(_tags_for(tags, args, kwargs)), "report"
            )
            return value

        return await flight.do(k, lead)

    return wrapper
