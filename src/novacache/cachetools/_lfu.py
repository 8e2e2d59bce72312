"""``LFUCache``: evicts the least frequently used key, the oldest among ties."""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar, cast

from ._base import Cache

__all__ = ("LFUCache",)

_KT = TypeVar("_KT")
_VT = TypeVar("_VT")


class LFUCache(Cache[_KT, _VT]):
    """Least Frequently Used (LFU) cache implementation.

    Every key has a use count: 1 when stored, one more for every read hit and every
    store under a present key. Keys with the same count sit in one bucket, oldest
    arrival first; a heap holds the counts that have a bucket. A count whose bucket
    emptied stays in the heap until it reaches the top (lazy deletion), and the heap
    is rebuilt when such stale counts outnumber the live ones.

    Pickled, they take cachetools' layout: ``_LFUCache__links`` maps each key to the
    :class:`LFUCache._Link` of its count (one per count, holding its keys oldest
    first), beside ``_LFUCache__root``.
    """

    class _Link:
        """cachetools' ``LFUCache._Link``: in a pickle, the keys used ``count`` times,
        oldest first."""

        __slots__ = ("count", "keys", "next", "prev")

        def __init__(self, count: int) -> None:
            self.count = count
            self.keys: OrderedDict[Any, None] = OrderedDict()

        def __reduce__(self) -> tuple[Any, ...]:
            return (LFUCache._Link, (self.count,), (None, {"keys": self.keys}))

    def __init__(self, maxsize: float, getsizeof: Callable[[_VT], float] | None = None) -> None:
        Cache.__init__(self, maxsize, getsizeof)
        # key -> [use count, the key object as stored]: after one lookup, every
        # structure is reached with the stored key itself, which compares by
        # identity, so that a key's __eq__ runs once per operation (it may re-enter
        # the cache, and a dict lookup restarts when that changes the dict).
        self.__counts: dict[_KT, list[Any]] = {}
        self.__buckets: dict[int, OrderedDict[_KT, None]] = {}
        self.__heap: list[int] = []

    # -- use-count primitives -----------------------------------------------------

    def __enter_bucket(self, key: _KT, count: int) -> None:
        bucket = self.__buckets.get(count)
        if bucket is None:
            self.__buckets[count] = bucket = OrderedDict()
            heap = self.__heap
            heapq.heappush(heap, count)
            if len(heap) > 2 * len(self.__buckets) + 8:
                self.__heap = sorted(self.__buckets)  # a sorted list is a heap
        bucket[key] = None

    def __leave_bucket(self, key: _KT, count: int) -> None:
        bucket = self.__buckets[count]
        del bucket[key]
        if not bucket:
            del self.__buckets[count]

    def _add(self, key: _KT) -> None:
        """Count the first use of ``key``, just stored."""
        self.__counts[key] = [1, key]
        self.__enter_bucket(key, 1)

    def _touch(self, key: _KT) -> None:
        """Count one more use of ``key``, if present."""
        entry = self.__counts.get(key)
        if entry is not None:
            count, stored = entry
            self.__leave_bucket(stored, count)
            entry[0] = count + 1
            self.__enter_bucket(stored, count + 1)

    def _forget(self, key: _KT) -> None:
        count, stored = self.__counts.pop(key)
        self.__leave_bucket(stored, count)

    def _least_used(self) -> _KT:
        heap = self.__heap
        buckets = self.__buckets
        while heap:
            bucket = buckets.get(heap[0])
            if bucket:
                return next(iter(bucket))
            heapq.heappop(heap)
        raise KeyError(f"{type(self).__name__} is empty")

    # -- mapping protocol ---------------------------------------------------------

    def __getitem__(self, key: _KT) -> _VT:
        try:
            with self._novacache_lock:
                value = self._fetch(key)
                self._touch(key)
                return value
        except KeyError:
            value = self.__missing__(key)  # outside the lock: user code
        with self._novacache_lock:
            self._touch(key)  # __missing__ may have stored the item
        return value

    def __setitem__(self, key: _KT, value: _VT) -> None:
        dropped: list[object] = []
        with self._novacache_lock:
            self._store(key, value, dropped)
            if key in self.__counts:
                self._touch(key)
            else:
                self._add(key)

    def __delitem__(self, key: _KT) -> None:
        with self._novacache_lock:
            value = self._discard(key)  # noqa: F841 (released after the lock)
            self._forget(key)

    def popitem(self) -> tuple[_KT, _VT]:
        """Remove and return the `(key, value)` pair least frequently used."""
        with self._novacache_lock:
            try:
                key = self._least_used()
            except KeyError as exc:
                raise KeyError(*exc.args) from None
            value = self._fetch(key)
            del self[key]
            return (key, value)

    def clear(self) -> None:
        with self._novacache_lock:
            held = self._clear_store()  # noqa: F841 (released after the lock)
            self.__counts.clear()
            self.__buckets.clear()
            self.__heap.clear()

    def _cachetools_state(self) -> dict[str, Any]:
        state = super()._cachetools_state()
        del state["_LFUCache__counts"], state["_LFUCache__heap"]
        buckets: dict[int, OrderedDict[_KT, None]] = state.pop("_LFUCache__buckets")
        links: dict[int, LFUCache._Link] = {}
        for count in sorted(buckets):
            link = links[count] = LFUCache._Link(count)
            link.keys = buckets[count].copy()
        state["_LFUCache__root"] = LFUCache._Link(0)
        state["_LFUCache__links"] = {key: links[count] for key, (count, _) in self.__counts.items()}
        return state

    def _load_cachetools_state(self, state: Any) -> dict[str, Any]:
        fields = super()._load_cachetools_state(state)
        fields.pop("_LFUCache__root", None)
        links: dict[_KT, Any] = fields.pop("_LFUCache__links", None) or {}
        buckets: dict[int, OrderedDict[_KT, None]] = {}
        # One link per count, its keys oldest first (cachetools shares the link
        # between its keys); in order of count, as cachetools links them on load.
        for link in sorted({id(link): link for link in links.values()}.values(), key=_count):
            bucket = buckets.setdefault(link.count, OrderedDict())
            bucket.update(OrderedDict.fromkeys(key for key in link.keys if key in links))
        counts: dict[_KT, list[Any]] = {}
        for count, bucket in buckets.items():
            for key in bucket:
                counts[key] = [count, key]
        self.__counts = counts
        self.__buckets = buckets
        self.__heap = sorted(buckets)
        return fields

    def __copy__(self) -> LFUCache[_KT, _VT]:
        with self._novacache_lock:
            clone = cast("LFUCache[_KT, _VT]", super().__copy__())
            clone.__counts = {key: entry.copy() for key, entry in self.__counts.items()}
            clone.__buckets = {count: keys.copy() for count, keys in self.__buckets.items()}
            clone.__heap = self.__heap.copy()
        return clone


def _count(link: Any) -> Any:
    return link.count
