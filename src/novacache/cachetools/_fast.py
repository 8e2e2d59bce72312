"""``LRUCache``, ``FIFOCache`` and ``TTLCache`` on the compiled core: the fast path of
the drop-in.

The compiled ``LocalCache`` already is an LRU mapping whose ``c[k]``, ``c[k] = v``,
``del c[k]``, ``in``, ``len`` and ``get`` are C slots. These classes put the rest of
cachetools' behaviour on top of it: iteration in insertion order (the core keeps that
order too, in this mode), mapping views, ``repr``, the ``popitem`` error, copies and
pickles that keep both orders, and ``FIFOCache``'s "only a write refreshes".

The fast path serves exactly the configurations whose behaviour it reproduces: the
library class itself, or a subclass that overrides none of the hooks (``popitem``,
``getsizeof``, ``__missing__``, the mapping methods, see :mod:`._hooks`), with an
integer ``maxsize >= 1`` and no ``getsizeof`` (for ``TTLCache`` also: a ``ttl`` and
timer readings that are exact as doubles, see ``_timer_serves``). Anything else gets the
general path: the
pure classes' methods, put onto the class (for a subclass, when it is created; for an
instance with other arguments, through a derived class made once per class). So a
hook a user overrides is called exactly where cachetools calls it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any, ClassVar, TypeVar

from .._core import (
    LocalCache,
    _cachetools_mode,
    _cachetools_ttl_mode,
    _exact_time,
    _insertion_snapshot,
    _ttl_expire,
    _ttl_given,
    _ttl_len,
    _ttl_restore,
    _ttl_state,
)
from . import _base, _ordered, _ttl
from ._fastmeta import FastMeta, Unservable, is_library_class

__all__ = ("FIFOCache", "LRUCache", "TTLCache")

_KT = TypeVar("_KT")
_VT = TypeVar("_VT")


class _Absent:
    """An attribute of LocalCache that cachetools' class does not have: reading it
    raises AttributeError, so ``hasattr`` and duck typing answer as with cachetools."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        raise AttributeError(
            f"{(owner or type(obj)).__name__!r} object has no attribute {self._name!r}"
        )


def _restore_fast(cls: Any, maxsize: int, items: list[tuple[Any, Any]], recency: list[Any]) -> Any:
    """Rebuild a fast cache: items in insertion order, then the recency order."""
    cache = cls.__new__(cls, maxsize)
    _FastKeyOrderCache.__init__(cache, maxsize)
    for key, value in items:
        LocalCache.__setitem__(cache, key, value)
    for key in recency:
        LocalCache.__setitem__(cache, key, LocalCache.peek(cache, key))
    return cache


class _FastKeyOrderCache(LocalCache):
    """The compiled storage with cachetools' key-order behaviour (abstract)."""

    #: The pure class whose behaviour this one reproduces (the general path).
    _pure: ClassVar[type]
    #: Whether a read hit refreshes an entry (LRU) or only a write does (FIFO).
    _refresh_on_read: ClassVar[bool]

    _novacache_library = True

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        # A user's subclass has its own signature: its __init__ decides (see _fastmeta).
        if not is_library_class(cls) or _bound(_serves, args, kwargs):
            return LocalCache.__new__(cls)
        # Sizes, a float or zero maxsize: the pure class's exact behaviour.
        return cls._pure(*args, **kwargs)

    def __init__(self, maxsize: int, getsizeof: Callable[[Any], float] | None = None) -> None:
        if not isinstance(self, LocalCache):
            # ``LRUCache.__init__(self, ...)`` in a user's subclass made on the pure
            # class (see _fastmeta): initialise it as the pure class.
            _pure_init(self, maxsize, getsizeof)
            return
        if not is_library_class(type(self)) and not _fast_serves(maxsize, getsizeof):
            raise Unservable  # a user's subclass: its instance comes from the pure twin
        LocalCache.__init__(self, maxsize)
        _cachetools_mode(self, type(self)._refresh_on_read)

    # -- what cachetools does differently from LocalCache ---------------------------

    def __iter__(self) -> Iterator[Any]:
        # As a dict's iterator (cachetools iterates its dict): keys in insertion
        # order, and RuntimeError once the cache changed size meanwhile.
        size = len(self)
        for key in _insertion_snapshot(self, 0):
            if len(self) != size:
                break
            yield key
        if len(self) != size:
            raise RuntimeError(f"{type(self).__name__} changed size during iteration")

    # LocalCache's own API beyond cachetools' is hidden: code that probes for a TTL
    # cache with hasattr(cache, "expire") or "ttl" must not mistake these for one.
    expire = _Absent()
    ttl = _Absent()
    timer = _Absent()
    peek = _Absent()
    set = _Absent()
    get_many = _Absent()
    set_many = _Absent()
    delete_many = _Absent()
    stats = _Absent()
    reset_stats = _Absent()
    weigher = _Absent()
    maxbytes = _Absent()
    currbytes = _Absent()

    # Live views, as cachetools has them (LocalCache's are snapshot lists).
    keys = MutableMapping.keys  # type: ignore[assignment]
    values = MutableMapping.values  # type: ignore[assignment]
    items = MutableMapping.items  # type: ignore[assignment]

    def __repr__(self) -> str:
        data = dict(_insertion_snapshot(self, 2))
        return f"{type(self).__name__}({data!r}, maxsize={self.maxsize!r}, currsize={len(self)!r})"

    def popitem(self) -> tuple[Any, Any]:
        """Remove and return the `(key, value)` pair the policy evicts next."""
        try:
            return LocalCache.popitem(self)
        except KeyError:
            raise KeyError(f"{type(self).__name__} is empty") from None

    @property
    def currsize(self) -> int:
        """The current size of the cache."""
        return len(self)

    @staticmethod
    def getsizeof(value: Any) -> float:
        """Return the size of a cache element's value."""
        return 1

    def __missing__(self, key: Any) -> Any:
        raise KeyError(key)

    # Note that a copy shares the instance attributes with its source, as the pure
    # classes' copies do, but not the entries and their two orders.

    def __copy__(self) -> Any:
        clone = self._restore(*self._rebuild_args())
        clone.__dict__.update(self.__dict__)
        return clone

    def __reduce__(self) -> tuple[Any, ...]:
        return (self._restore, self._rebuild_args(), self.__dict__ or None)

    #: Rebuilds an instance from ``_rebuild_args()`` (for copies and pickles).
    _restore = staticmethod(_restore_fast)

    def _rebuild_args(self) -> tuple[Any, ...]:
        return (type(self), self.maxsize, _insertion_snapshot(self, 2), self._recency())

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def _recency(self) -> list[Any]:
        """Keys from least to most recently refreshed."""
        return LocalCache.keys(self)


def _fast_serves(maxsize: Any, getsizeof: Any) -> bool:
    return getsizeof is None and type(maxsize) is int and 1 <= maxsize <= 2**31 - 2


def _serves(maxsize: Any = 1, getsizeof: Any = None) -> bool:
    """``LRUCache``/``FIFOCache`` arguments the compiled core serves. (Arguments that
    do not bind are left to the pure class, which raises cachetools' TypeError.)"""
    return _fast_serves(maxsize, getsizeof)


def _bound(serves: Callable[..., bool], args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """``serves(*args, **kwargs)``, False when the arguments do not bind."""
    try:
        return serves(*args, **kwargs)
    except TypeError:
        return False


def _ttl_serves(maxsize: Any, ttl: Any, timer: Any = time.monotonic, getsizeof: Any = None) -> bool:
    """``TTLCache`` arguments the compiled core serves."""
    return _fast_serves(maxsize, getsizeof) and bool(_exact_time(ttl)) and _timer_serves(timer)


def _pure_init(self: Any, *args: Any) -> None:
    """Run the ``__init__`` of the pure class that ``self`` (an instance of a user's
    subclass, built on a pure class) stands on, among those the fast classes stand for."""
    fast: Any
    for fast in (TTLCache, LRUCache, FIFOCache):
        if isinstance(self, fast._pure):
            fast._pure.__init__(self, *args)
            return
    raise TypeError(f"{type(self).__name__!r} is not a cache class of novacache.cachetools")


def _timer_serves(timer: Any) -> bool:
    """Whether the compiled TTLCache reproduces cachetools with this timer: the default
    clock, or a timer whose reading (probed once, here) is an int or float that is exact
    as a double. Comparisons of such times in C give Python's answers. (A timer that
    later returns another kind of time makes the compiled cache raise TypeError or
    OverflowError on that reading.)"""
    if timer is time.monotonic:
        return True
    if not callable(timer):
        return False
    try:
        return bool(_exact_time(timer()))
    except Exception:
        return False  # the general path calls it again, where cachetools would


class LRUCache(_FastKeyOrderCache, MutableMapping[_KT, _VT], metaclass=FastMeta):
    """Least Recently Used (LRU) cache implementation."""

    _pure = _ordered.LRUCache
    _refresh_on_read = True
    _novacache_library = True


class FIFOCache(_FastKeyOrderCache, MutableMapping[_KT, _VT], metaclass=FastMeta):
    """First In First Out (FIFO) cache implementation."""

    _pure = _ordered.FIFOCache
    _refresh_on_read = False
    _novacache_library = True


def _restore_ttl(
    cls: Any, maxsize: int, ttl: Any, timer: Any, state: tuple[list[Any], list[Any], list[Any]]
) -> Any:
    """Rebuild a fast TTLCache: items in insertion order with their deadlines, then the
    recency and write orders; then expire at the timer's now, as cachetools does."""
    cache = LocalCache.__new__(cls)
    TTLCache.__init__(cache, maxsize, ttl, timer)
    _ttl_restore(cache, *state)
    _ttl_expire(cache)
    return cache


class TTLCache(_FastKeyOrderCache, MutableMapping[_KT, _VT], metaclass=FastMeta):
    """LRU Cache implementation with per-item time-to-live (TTL) value."""

    _pure = _ttl.TTLCache
    _refresh_on_read = True
    _restore = staticmethod(_restore_ttl)  # type: ignore[assignment]
    _novacache_library = True

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if not is_library_class(cls) or _bound(_ttl_serves, args, kwargs):
            return LocalCache.__new__(cls)
        return cls._pure(*args, **kwargs)

    def __init__(
        self,
        maxsize: int,
        ttl: Any,
        timer: Callable[[], Any] = time.monotonic,
        getsizeof: Callable[[Any], float] | None = None,
    ) -> None:
        if not isinstance(self, LocalCache):  # a user's subclass: see _FastKeyOrderCache
            _pure_init(self, maxsize, ttl, timer, getsizeof)
            return
        if not is_library_class(type(self)) and not _ttl_serves(maxsize, ttl, timer, getsizeof):
            raise Unservable  # a user's subclass: its instance comes from the pure twin
        LocalCache.__init__(self, maxsize)
        _cachetools_ttl_mode(self, timer, ttl)

    # The core keeps expired items until an expire, as cachetools does: reads report
    # them missing (c[k] still refreshes the key first), and every write, len(),
    # currsize, repr and popitem() expires first.

    timer = LocalCache.timer  # the freezable view: with cache.timer as now: ...

    @property
    def ttl(self) -> Any:
        """The time-to-live value of the cache's items."""
        return _ttl_given(self)

    def expire(self, time: Any = None) -> list[tuple[Any, Any]]:  # type: ignore[override]
        """Remove expired items from the cache and return an iterable of the
        expired `(key, value)` pairs.

        """
        return _ttl_expire(self, time)

    def __len__(self) -> int:
        return _ttl_len(self)

    @property
    def currsize(self) -> int:
        """The current size of the cache, once expired items are removed."""
        return _ttl_len(self)

    def __iter__(self) -> Iterator[Any]:
        # A snapshot of the keys, in insertion order: storing or deleting while
        # iterating does not raise as for a dict, since items expire meanwhile anyway.
        for key in _insertion_snapshot(self, 0):
            if LocalCache.__contains__(self, key):
                yield key

    def __repr__(self) -> str:
        _ttl_len(self)
        return _FastKeyOrderCache.__repr__(self)

    def _rebuild_args(self) -> tuple[Any, ...]:
        view: Any = self.timer
        return (type(self), self.maxsize, _ttl_given(self), view.wrapped, _ttl_state(self))


# Note that the fast classes do not inherit from the pure ones (a user's subclass is
# made on the pure class, see _fastmeta), so both sides are made each other's virtual
# subclasses: isinstance() and issubclass() answer as with one class.
for _fast_class in (LRUCache, FIFOCache, TTLCache):
    _fast_class.register(_fast_class._pure)
    _base.Cache.register(_fast_class)
del _fast_class
