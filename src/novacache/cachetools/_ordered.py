"""``FIFOCache`` and ``LRUCache``: caches that evict by a key order.

Both keep their keys in an ``OrderedDict`` (oldest first) beside the mapping. They
differ only in what moves a key to the newest end: storing it (both), or also reading
it (LRU). The order changes through three primitives, ``_link``, ``_touch`` and
``_unlink``, and the victim is ``_oldest()``: the storage a compiled core replaces.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar, cast

from ._base import Cache

__all__ = ("FIFOCache", "LRUCache")

_KT = TypeVar("_KT")
_VT = TypeVar("_VT")


class _KeyOrderCache(Cache[_KT, _VT]):
    """A cache that evicts the oldest key of an order kept beside the mapping."""

    #: The name cachetools gives the order in an instance's ``__dict__``.
    _CACHETOOLS_ORDER: ClassVar[str]

    def __init__(self, maxsize: float, getsizeof: Callable[[_VT], float] | None = None) -> None:
        Cache.__init__(self, maxsize, getsizeof)
        self.__order: OrderedDict[_KT, None] = OrderedDict()

    # -- order primitives ---------------------------------------------------------

    def _link(self, key: _KT) -> None:
        """Make ``key`` (just stored) the newest, whether it was present or not."""
        order = self.__order
        if key in order:
            order.move_to_end(key)
        else:
            order[key] = None

    def _touch(self, key: _KT) -> None:
        """Make ``key`` the newest if it is present (a read hit)."""
        try:
            self.__order.move_to_end(key)
        except KeyError:  # __missing__ may not have stored it
            pass

    def _unlink(self, key: _KT) -> None:
        del self.__order[key]

    def _oldest(self) -> _KT:
        """The key to evict next; ``KeyError`` naming the class when empty."""
        try:
            return next(iter(self.__order))
        except StopIteration:
            raise KeyError(f"{type(self).__name__} is empty") from None

    # -- mapping protocol ---------------------------------------------------------

    def __setitem__(self, key: _KT, value: _VT) -> None:
        dropped: list[object] = []
        with self._novacache_lock:
            self._store(key, value, dropped)
            self._link(key)

    def __delitem__(self, key: _KT) -> None:
        with self._novacache_lock:
            value = self._discard(key)  # noqa: F841 (released after the lock)
            self._unlink(key)

    def popitem(self) -> tuple[_KT, _VT]:
        """Remove and return the oldest ``(key, value)`` pair of the policy's order."""
        with self._novacache_lock:
            key = self._oldest()
            value = self._fetch(key)
            del self[key]
            return (key, value)

    def clear(self) -> None:
        with self._novacache_lock:
            held = self._clear_store()  # noqa: F841 (released after the lock)
            self.__order.clear()

    def __copy__(self) -> _KeyOrderCache[_KT, _VT]:
        with self._novacache_lock:
            clone = cast("_KeyOrderCache[_KT, _VT]", super().__copy__())
            clone.__order = self.__order.copy()
        return clone

    def _cachetools_state(self) -> dict[str, Any]:
        state = super()._cachetools_state()
        del state["_KeyOrderCache__order"]
        state[self._CACHETOOLS_ORDER] = self.__order.copy()
        return state

    def _load_cachetools_state(self, state: Any) -> dict[str, Any]:
        fields = super()._load_cachetools_state(state)
        order = fields.pop(self._CACHETOOLS_ORDER, None)
        if order is None:  # not a cachetools state: the keys in insertion order
            order = OrderedDict.fromkeys(fields.get("_Cache__data", ()))
        self.__order = OrderedDict.fromkeys(order)
        return fields


class FIFOCache(_KeyOrderCache[_KT, _VT]):
    """First In First Out (FIFO) cache implementation.

    Note that storing a value under a present key makes it the newest, as in
    cachetools; reading does not change the order.
    """

    _CACHETOOLS_ORDER = "_FIFOCache__order"

    def popitem(self) -> tuple[_KT, _VT]:
        """Remove and return the `(key, value)` pair first inserted."""
        return _KeyOrderCache.popitem(self)


class LRUCache(_KeyOrderCache[_KT, _VT]):
    """Least Recently Used (LRU) cache implementation."""

    _CACHETOOLS_ORDER = "_LRUCache__order"

    def __getitem__(self, key: _KT) -> _VT:
        try:
            with self._novacache_lock:
                value = self._fetch(key)
                self._touch(key)
                return value
        except KeyError:
            # Outside the lock: __missing__ is user code and may wait for other
            # threads. In the handler, so that its KeyError chains to the lookup's.
            value = self.__missing__(key)
        with self._novacache_lock:
            self._touch(key)
        return value

    def popitem(self) -> tuple[_KT, _VT]:
        """Remove and return the `(key, value)` pair least recently used."""
        return _KeyOrderCache.popitem(self)
