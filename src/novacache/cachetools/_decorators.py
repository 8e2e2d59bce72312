"""``cached`` and ``cachedmethod``: memoizing decorators over any mutable mapping."""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Hashable, MutableMapping
from typing import TYPE_CHECKING, Any, Concatenate, Literal, ParamSpec, TypeVar, cast, overload

from . import keys
from ._memo import Statistics, discipline
from ._methods import method_descriptor

if TYPE_CHECKING:
    from ._typing import CachedFunction, CachedFunctionWithInfo, CachedMethod, CachedMethodWithInfo

_P = ParamSpec("_P")
_R = TypeVar("_R")

__all__ = ("cached", "cachedmethod")


class _CachedFunction:
    """A function wrapped with a cache: the public attributes of the wrapper.

    Like ``functools.lru_cache`` (the C version), it binds as a method when found on
    a class, and copies and pickles by reference (by qualified name).
    """

    def __init__(
        self,
        func: Callable[..., Any],
        cache: Any,
        key: Callable[..., Hashable],
        lock: Any,
        condition: Any,
        info: bool,
    ) -> None:
        # First, so that the function's __dict__ (another wrapper's state, when
        # decorators are stacked) cannot override the state set below.
        functools.update_wrapper(cast(Any, self), func)
        self.cache = cache
        self.cache_key = key
        self.cache_lock = lock
        self.cache_condition = condition
        self._memo_target = func
        self._memo_counting = info
        self._memo_hits = self._memo_misses = 0
        self._memo_pending: set[Hashable] = set()

    def __get__(self, obj: object, objtype: type | None = None) -> Any:
        return self if obj is None else types.MethodType(cast(Any, self), obj)

    def __copy__(self) -> _CachedFunction:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> _CachedFunction:
        return self

    def __reduce__(self) -> str:
        return self.__qualname__  # type: ignore[no-any-return, attr-defined]

    def __repr__(self) -> str:
        return f"<cached {self.__wrapped__!r}>"  # type: ignore[attr-defined]


_WRAPPER_TYPES: dict[tuple[type, bool], type[Any]] = {}


def _function_wrapper(discipline_type: type, info: bool) -> type[Any]:
    """The wrapper class combining ``_CachedFunction``, a discipline and, with ``info``,
    the statistics."""
    known = _WRAPPER_TYPES.get((discipline_type, info))
    if known is not None:
        return known
    bases = (_CachedFunction, discipline_type) + ((Statistics,) if info else ())
    name = f"_Cached{discipline_type.__name__}{'WithInfo' if info else ''}"
    made = type(name, bases, {"__module__": __name__})
    return _WRAPPER_TYPES.setdefault((discipline_type, info), made)


@overload
def cached(
    cache: MutableMapping[Any, Any],
    key: Callable[..., Hashable] = ...,
    lock: Any = None,
    condition: Any = None,
    *,
    info: Literal[True],
) -> Callable[[Callable[_P, _R]], CachedFunctionWithInfo[_P, _R]]: ...
@overload
def cached(
    cache: MutableMapping[Any, Any],
    key: Callable[..., Hashable] = ...,
    lock: Any = None,
    condition: Any = None,
    info: Literal[False] = ...,
) -> Callable[[Callable[_P, _R]], CachedFunction[_P, _R]]: ...
@overload
def cached(
    cache: MutableMapping[Any, Any],
    key: Callable[..., Hashable],
    lock: Any,
    condition: Any,
    info: Literal[True],
) -> Callable[[Callable[_P, _R]], CachedFunctionWithInfo[_P, _R]]: ...
def cached(
    cache: Any,
    key: Callable[..., Hashable] = keys.hashkey,
    lock: Any = None,
    condition: Any = None,
    info: bool = False,
) -> Callable[[Callable[..., Any]], Any]:
    """Decorator to wrap a function with a memoizing callable that saves
    results in a cache.

    ``cache`` is any mutable mapping; ``key`` makes the key from the arguments;
    ``lock`` (a context manager) guards the cache; ``condition`` (a
    ``threading.Condition``, also used as the lock when ``lock`` is not given)
    makes concurrent callers of one key wait for a single computation; ``info=True``
    adds ``cache_info()``.
    """
    if cache is None:  # unsupported since cachetools 8.0.0
        raise TypeError("cache must not be None")
    if condition is not None and lock is None:
        lock = condition
    wrapper_type = _function_wrapper(discipline(lock, condition), info)

    def decorator(func: Callable[..., Any]) -> Any:
        fast = _compiled_wrapper(func, cache, key, lock, condition, info)
        if fast is not None:
            return fast
        return wrapper_type(func, cache, key, lock, condition, info)

    return decorator


def _compiled_wrapper(
    func: Callable[..., Any], cache: Any, key: Any, lock: Any, condition: Any, info: bool
) -> Any:
    """The compiled wrapper, for what it serves exactly: an ``LRUCache``, ``FIFOCache``
    or ``TTLCache`` (or a subclass) that the compiled core serves, the default key, no
    lock and no condition (the caches are thread-safe without one). ``None`` for
    anything else. (Should the cache later move to the general path, see
    :mod:`._fast`, the wrapper follows it.)"""
    if lock is not None or condition is not None or key is not keys.hashkey:
        return None
    from ._select import IMPLEMENTATION

    if IMPLEMENTATION != "compiled":
        return None
    from .._core import _CachedCall, _CachetoolsCore, _ct_mode  # type: ignore[attr-defined]

    if not isinstance(cache, _CachetoolsCore) or _ct_mode(cache) is not None:
        return None
    from ._memo import CacheInfo

    wrapper = _CachedCall(func, cache, key, info, CacheInfo)
    # First, as for the Python wrapper: the function's __dict__ cannot override these.
    functools.update_wrapper(wrapper, func)
    wrapper.cache = cache
    wrapper.cache_key = key
    wrapper.cache_lock = lock
    wrapper.cache_condition = condition
    return wrapper


@overload
def cachedmethod(
    cache: Callable[[Any], MutableMapping[Any, Any]],
    key: Callable[..., Hashable] = ...,
    lock: Callable[[Any], Any] | None = None,
    condition: Callable[[Any], Any] | None = None,
    *,
    info: Literal[True],
) -> Callable[[Callable[Concatenate[Any, _P], _R]], CachedMethodWithInfo[_P, _R]]: ...
@overload
def cachedmethod(
    cache: Callable[[Any], MutableMapping[Any, Any]],
    key: Callable[..., Hashable] = ...,
    lock: Callable[[Any], Any] | None = None,
    condition: Callable[[Any], Any] | None = None,
    info: Literal[False] = ...,
) -> Callable[[Callable[Concatenate[Any, _P], _R]], CachedMethod[_P, _R]]: ...
@overload
def cachedmethod(
    cache: Callable[[Any], MutableMapping[Any, Any]],
    key: Callable[..., Hashable],
    lock: Callable[[Any], Any] | None,
    condition: Callable[[Any], Any] | None,
    info: Literal[True],
) -> Callable[[Callable[Concatenate[Any, _P], _R]], CachedMethodWithInfo[_P, _R]]: ...
def cachedmethod(
    cache: Callable[[Any], Any],
    key: Callable[..., Hashable] = keys.methodkey,
    lock: Callable[[Any], Any] | None = None,
    condition: Callable[[Any], Any] | None = None,
    info: bool = False,
) -> Callable[[Callable[..., Any]], Any]:
    """Decorator to wrap a method with a memoizing callable that saves
    results in a cache.

    ``cache``, ``lock`` and ``condition`` are functions of the instance that return
    its cache, lock and condition; ``key`` gets the instance as first argument.
    """
    if not callable(cache):
        raise TypeError("cache must be callable")

    def decorator(method: Callable[..., Any]) -> Any:
        return method_descriptor(method, cache, key, lock, condition, info)

    return decorator
