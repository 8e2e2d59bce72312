"""The manager's hit paths: compiled (``ext/_managerkit.pyx``) or this pure twin.

``get`` and ``get_or_load`` are the synchronous manager's method bodies: the L1 first,
and everything a miss needs in the manager's own ``_get_below`` / ``_load``.
``aget`` and ``aget_or_load`` are the asyncio manager's: the compiled twin returns, for
an L1 hit, a ``Ready`` (below), else the coroutine of ``_get_below`` / ``_load``; the
pure twin is the ``async def`` of the same body. ``fill_l1`` is what both managers'
``_read`` calls to put a value read below into L1.
``CachedCall`` is ``@manager.cached``'s wrapper of a function: it builds the key
(memoized for calls of exact ``int`` and ``str`` arguments with the default key), answers
from the L1, else calls ``miss(key, args, kwargs)``. For a coroutine function
(``is_async``), ``miss`` returns a coroutine and a hit is returned as a ``Ready``: an
awaitable that gives the value at once (no coroutine made and run for a hit). Both
twins give the same results; the compiled one is used unless ``NOVACACHE_NO_EXTENSIONS``
is set or it is not built.
The envelope's compiled twin is selected in :mod:`.envelope`.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Coroutine, Generator, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from .._select import NO_EXTENSIONS

__all__ = [
    "COMPILED",
    "CachedCall",
    "Ready",
    "aget",
    "aget_or_load",
    "documented",
    "fill_l1",
    "get",
    "get_below",
    "get_or_load",
    "read",
]

T = TypeVar("T")

_MEMO_MAX = 4096  # keys memoized per decorated function, at most
_MEMOABLE = (int, str)  # exact types whose key text the value alone decides


def _get(self: Any, key: str, default: Any = None) -> Any:
    """The value cached under ``key``, or ``default``.

    Never raises because a tier below is unreachable or holds a corrupt frame: those read
    as misses of that tier (counted in :attr:`stats`).
    """
    try:
        return self._l1[key]
    except KeyError:
        pass
    return self._get_below(key, default)


def _get_or_load(
    self: Any,
    key: str,
    loader: Callable[[], T],
    ttl: float | None = None,
    *,
    tags: Iterable[str] = (),
    negative_ttl: float | None = None,
    stale_ttl: float | None = None,
    beta: float | None = None,
    lease: float | None = None,
) -> T:
    """The cached value of ``key``; on a miss, the value of ``loader()``, cached for
    ``ttl``: the loader runs once at a time per key in this process, and its failures are
    raised in every caller that waited for it. ``tags``, ``negative_ttl``, ``stale_ttl``
    (stale-while-revalidate), ``beta`` (XFetch) and ``lease`` (one load across processes)
    as documented for ``AsyncCacheManager.get_or_load`` and in docs/manager.md.
    """
    try:
        return self._l1[key]  # type: ignore[no-any-return]  # L1 holds fresh values only
    except KeyError:
        pass
    return self._load(key, loader, ttl, tags, negative_ttl, stale_ttl, beta, lease)  # type: ignore[no-any-return]


class _Ready:
    """The pure twin of the compiled ``_Ready``: an awaitable that gives ``value`` at
    once, a coroutine to asyncio (what an asyncio ``@manager.cached`` returns for an L1
    hit)."""

    __slots__ = ("_value",)

    def __init__(self, value: Any) -> None:
        self._value = value

    def __await__(self) -> Generator[Any, None, Any]:
        return self._value
        yield  # a generator function: its first send() returns the value

    def send(self, arg: Any) -> Any:
        """Finish (a coroutine's first ``send`` must be ``None``)."""
        if arg is not None:
            raise TypeError("can't send non-None value to a just-started coroutine")
        raise StopIteration(self._value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        """Raise the exception thrown in (the value is never delivered)."""
        raise typ if val is None else val

    def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return "<manager.cached hit>"


class _CachedCall:
    """The pure twin of the compiled ``CachedCall`` (see the module)."""

    def __init__(
        self,
        func: Callable[..., Any],
        local: Any,
        miss: Callable[[str, tuple[Any, ...], dict[str, Any] | None], Any],
        key: Callable[..., str],
        default_key: bool,
        is_async: bool = False,
    ) -> None:
        self._func = func
        self._local = local
        self._miss = miss
        self._key = key
        self._default_key = default_key
        self._async = is_async
        self._memo1: dict[Any, str] = {}
        self._memo: dict[tuple[Any, ...], str] = {}

    def _memo_key(self, memo: dict[Any, str], memo_key: Any, args: tuple[Any, ...]) -> str:
        key = self._key(*args)
        if len(memo) >= _MEMO_MAX:
            memo.clear()
        memo[memo_key] = key
        return key

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs:
            key = self._key(*args, **kwargs)
        elif not self._default_key or not args:
            key = self._key(*args)
        elif len(args) == 1 and type(args[0]) in _MEMOABLE:
            found = self._memo1.get(args[0])
            key = found if found is not None else self._memo_key(self._memo1, args[0], args)
        elif all(type(a) in _MEMOABLE for a in args):
            found = self._memo.get(args)
            key = found if found is not None else self._memo_key(self._memo, args, args)
        else:
            key = self._key(*args)
        local = self._local
        if local is not None:
            try:
                value = local[key]
            except KeyError:
                pass
            else:
                return _Ready(value) if self._async else value
        return self._miss(key, args, kwargs or None)

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:
            return self
        import types

        return types.MethodType(self, obj)

    def __repr__(self) -> str:
        return f"<manager.cached {self._func!r}>"


async def _aget(self: Any, key: str, default: Any = None) -> Any:
    """``AsyncCacheManager.get``'s body (the compiled twin returns a ``Ready`` for an L1
    hit, the coroutine of ``_get_below`` for a miss). The subscript is the L1's cheapest
    hit; a miss costs a KeyError, cheap beside the round trip after it."""
    try:
        return self._l1[key]
    except KeyError:
        pass
    return await self._get_below(key, default)


async def _aget_or_load(
    self: Any,
    key: str,
    loader: Callable[[], Any],
    ttl: float | None = None,
    *,
    tags: Iterable[str] = (),
    negative_ttl: float | None = None,
    stale_ttl: float | None = None,
    beta: float | None = None,
    lease: float | None = None,
) -> Any:
    """``AsyncCacheManager.get_or_load``'s body (the compiled twin returns a ``Ready``
    for an L1 hit, the coroutine of ``_load`` for a miss)."""
    try:
        return self._l1[key]  # L1 holds fresh values only
    except KeyError:
        pass
    return await self._load(key, loader, ttl, tags, negative_ttl, stale_ttl, beta, lease)


def _fill_l1(
    self: Any, local: Any, bus: Any, plan: Any, key: str, frame: bytes, env: Any, gen: int
) -> None:
    """Put a value read from the first tier below into L1 (``self._fill_l1_any``; the
    compiled twin does its common case in C). ``local``, ``bus`` and ``plan`` are the
    manager's ``local`` (not ``None``), ``bus`` and ``_fill``; ``frame`` the bytes
    ``env`` was opened from, ``gen`` the key's generation as the read began."""
    self._fill_l1_any(key, len(frame), env, gen)


def documented(compiled: Any, method: Callable[..., Any]) -> Any:
    """``compiled`` (a compiled method body) named and documented as ``method``, its
    Python form, and marked as a coroutine function for ``inspect`` (3.12+) and
    ``asyncio`` when ``method`` is one: what a reader of the class and a framework that
    checks see is the method's own."""
    for name in ("__doc__", "__name__", "__qualname__", "__module__"):
        setattr(compiled, name, getattr(method, name))
    if inspect.iscoroutinefunction(method):
        mark = getattr(inspect, "markcoroutinefunction", None)
        if mark is not None:
            mark(compiled)
        marker = getattr(asyncio.coroutines, "_is_coroutine", None)
        if marker is not None:  # what asyncio.iscoroutinefunction checks before 3.12
            compiled._is_coroutine = marker
    return compiled


get = _get
get_or_load = _get_or_load
read: Any = None  # compiled only: the pure twin is the manager's own _read
get_below: Any = None  # likewise _get_below
aget = _aget
aget_or_load = _aget_or_load
fill_l1 = _fill_l1
CachedCall: Any = _CachedCall
Ready: Any = _Ready
COMPILED = False

if not TYPE_CHECKING and not NO_EXTENSIONS:
    try:
        from .._managerkit import (
            CachedCall,
            Ready,
            aget,
            aget_or_load,
            fill_l1,
            get,
            get_below,
            get_or_load,
            read,
        )

        COMPILED = True
    except ImportError:  # a pure build
        pass

Coroutine.register(_Ready)
if Ready is not _Ready:
    Coroutine.register(Ready)
