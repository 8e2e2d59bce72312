"""Static descriptions of the decorators' wrappers, for type checkers only.

The runtime wrappers (:mod:`._decorators`, :mod:`._methods`) compose a locking
discipline at decoration time, which a type checker cannot follow; these generic
classes say what users may rely on: the wrapped signature (``ParamSpec``), binding as
a method, and the ``cache_*`` attributes. They are imported under ``TYPE_CHECKING``
only and never instantiated.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar, overload

from ._memo import CacheInfo

_P = ParamSpec("_P")
_Q = ParamSpec("_Q")
_R = TypeVar("_R")
_S = TypeVar("_S")


class CachedFunction(Protocol[_P, _R]):
    """What ``@cached(...)`` returns."""

    __wrapped__: Callable[_P, _R]
    __name__: str
    __qualname__: str
    cache: MutableMapping[Any, Any]
    cache_key: Callable[..., Any]
    cache_lock: Any
    cache_condition: Any

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> CachedFunction[_P, _R]: ...
    @overload
    def __get__(
        self: CachedFunction[Concatenate[_S, _Q], _R], obj: _S, objtype: type | None = None
    ) -> CachedFunction[_Q, _R]: ...
    @overload
    def __get__(self, obj: object, objtype: type | None = None) -> CachedFunction[_P, _R]: ...
    def __get__(self, obj: Any, objtype: type | None = None) -> Any: ...
    def __call__(self, /, *args: _P.args, **kwargs: _P.kwargs) -> _R: ...
    def cache_clear(self) -> None: ...


class CachedFunctionWithInfo(CachedFunction[_P, _R], Protocol[_P, _R]):
    """What ``@cached(..., info=True)`` returns."""

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> CachedFunctionWithInfo[_P, _R]: ...
    @overload
    def __get__(
        self: CachedFunctionWithInfo[Concatenate[_S, _Q], _R],
        obj: _S,
        objtype: type | None = None,
    ) -> CachedFunctionWithInfo[_Q, _R]: ...
    @overload
    def __get__(
        self, obj: object, objtype: type | None = None
    ) -> CachedFunctionWithInfo[_P, _R]: ...
    def __get__(self, obj: Any, objtype: type | None = None) -> Any: ...
    def cache_info(self) -> CacheInfo: ...


class LruCacheFunction(CachedFunctionWithInfo[_P, _R], Protocol[_P, _R]):
    """What the ``novacache.cachetools.func`` decorators return."""

    def cache_parameters(self) -> dict[str, Any]: ...


class CachedMethodUnbound(Protocol[_P, _R]):
    """A cached method looked up on its class: takes the instance first."""

    __wrapped__: Callable[Concatenate[Any, _P], _R]
    __name__: str
    __qualname__: str

    def __call__(self, obj: Any, /, *args: _P.args, **kwargs: _P.kwargs) -> _R: ...


class CachedMethod(Protocol[_P, _R]):
    """A cached method bound to an instance (and, in a class body, its descriptor)."""

    __wrapped__: Callable[Concatenate[Any, _P], _R]
    __name__: str
    __qualname__: str
    cache: MutableMapping[Any, Any]
    cache_key: Callable[..., Any]
    cache_lock: Any
    cache_condition: Any

    def __set_name__(self, owner: type, name: str) -> None: ...
    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> CachedMethodUnbound[_P, _R]: ...
    @overload
    def __get__(self, obj: Any, objtype: type | None = None) -> CachedMethod[_P, _R]: ...
    def __get__(self, obj: Any, objtype: type | None = None) -> Any: ...
    def __call__(self, /, *args: _P.args, **kwargs: _P.kwargs) -> _R: ...
    def cache_clear(self) -> None: ...


class CachedMethodWithInfo(CachedMethod[_P, _R], Protocol[_P, _R]):
    """A cached method with ``info=True``."""

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> CachedMethodUnbound[_P, _R]: ...
    @overload
    def __get__(self, obj: Any, objtype: type | None = None) -> CachedMethodWithInfo[_P, _R]: ...
    def __get__(self, obj: Any, objtype: type | None = None) -> Any: ...
    def cache_info(self) -> CacheInfo: ...
