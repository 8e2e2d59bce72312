"""``TLRUCache``: an LRU cache whose items expire at a time computed per item."""

from __future__ import annotations

import heapq
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

from ._base import Cache
from ._timed import _TT, _TimedCache

__all__ = ("TLRUCache",)

_KT = TypeVar("_KT")
_VT = TypeVar("_VT")

# Rebuild the heap when it holds more than this many entries per live item.
_HEAP_SLACK = 2


class _Deadline:
    """A heap entry: when ``key`` expires. Replacing or deleting the item marks its
    entry ``removed`` instead of taking it out of the heap. (cachetools'
    ``TLRUCache._Item``, the name it pickles under.)"""

    __slots__ = ("expires", "key", "removed")

    def __init__(self, key: Any = None, expires: Any = None) -> None:
        self.key = key
        self.expires = expires
        self.removed = False

    def __lt__(self, other: _Deadline) -> bool:
        return bool(self.expires < other.expires)


_Deadline.__qualname__ = "TLRUCache._Item"  # cachetools' name, for pickles


class TLRUCache(_TimedCache[_KT, _VT, _TT]):
    """Time-aware Least Recently Used (TLRU) cache implementation.

    ``ttu(key, value, now)`` gives the time an item expires at (its time to use).
    The items' deadlines are kept in an ``OrderedDict``, least recently used first
    (the eviction order), and in a heap ordered by expiry time (for ``expire``).
    Pickled, they take cachetools' names: ``_TLRUCache__items`` and
    ``_TLRUCache__order``.
    """

    _Item = _Deadline

    def __init__(
        self,
        maxsize: float,
        ttu: Callable[[_KT, _VT, _TT], _TT],
        timer: Callable[[], _TT] = time.monotonic,  # type: ignore[assignment]
        getsizeof: Callable[[_VT], float] | None = None,
    ) -> None:
        _TimedCache.__init__(self, maxsize, timer, getsizeof)
        self.__ttu = ttu
        self.__deadlines: OrderedDict[_KT, _Deadline] = OrderedDict()
        self.__heap: list[_Deadline] = []

    @property
    def ttu(self) -> Callable[[_KT, _VT, _TT], _TT]:
        """The time-to-use function used by the cache."""
        return self.__ttu

    def __contains__(self, key: object) -> bool:
        entry = self.__deadlines.get(cast("_KT", key))
        if entry is None:
            return False
        now: Any = self.timer()
        return bool(now < entry.expires)

    def __getitem__(self, key: _KT) -> _VT:
        with self._novacache_lock:
            entry = self.__deadlines.get(key)
            if entry is not None:
                self.__deadlines.move_to_end(key)  # even when expired, as cachetools
                now: Any = self.timer()
                if now < entry.expires:
                    return self._fetch(key)
        if entry is None:
            return Cache.__getitem__(self, key)  # a miss: __missing__ (or a racing store)
        return self.__missing__(key)  # expired; outside the lock: user code

    def __setitem__(self, key: _KT, value: _VT) -> None:
        dropped: list[object] = []
        with self._novacache_lock:
            with self.timer as now:
                dropped.append(self.expire(now))
                expires: Any = self.__ttu(key, value, now)
                if not (cast(Any, now) < expires):
                    # Dead on arrival: the assignment cannot store the value, and
                    # must not leave a previous value behind either.
                    entry = self.__deadlines.pop(key, None)
                    if entry is not None:
                        entry.removed = True
                        dropped.append(self._discard(key))
                    return
                self._store(key, value, dropped)
            # The heap cannot lose an inner entry cheaply: mark the old one removed.
            old = self.__deadlines.get(key)
            if old is not None:
                old.removed = True
                self.__deadlines.move_to_end(key)
            self.__deadlines[key] = entry = _Deadline(key, expires)
            heapq.heappush(self.__heap, entry)

    def __delitem__(self, key: _KT) -> None:
        with self._novacache_lock, self.timer as now:
            # No expire() here: deleting is what eviction does, and must stay cheap.
            value = self._discard(key)  # noqa: F841 (released after the lock)
            entry = self.__deadlines.pop(key)
            entry.removed = True
            if not (now < entry.expires):
                raise KeyError(key)

    def __iter__(self) -> Iterator[_KT]:
        # A snapshot of the keys, in insertion order (see TTLCache.__iter__).
        with self._novacache_lock:
            keys = list(Cache.__iter__(self))
        deadlines = self.__deadlines
        for key in keys:
            with self.timer as now:
                entry = deadlines.get(key)
                if entry is not None and now < entry.expires:
                    yield key

    def expire(self, time: _TT | None = None) -> list[tuple[_KT, _VT]]:
        """Remove expired items from the cache and return an iterable of the
        expired `(key, value)` pairs.

        """
        with self._novacache_lock:
            if time is None:
                time = self.timer()
            deadlines = self.__deadlines
            heap = self.__heap
            if len(heap) > len(deadlines) * _HEAP_SLACK:
                self.__heap = heap = [entry for entry in heap if not entry.removed]
                heapq.heapify(heap)
            expired: list[tuple[_KT, _VT]] = []
            while heap and (heap[0].removed or not (time < heap[0].expires)):
                entry = heapq.heappop(heap)
                if not entry.removed:
                    expired.append((entry.key, self._discard(entry.key)))
                    del deadlines[entry.key]
            return expired

    def popitem(self) -> tuple[_KT, _VT]:
        """Remove and return the `(key, value)` pair least recently used that
        has not already expired.

        """
        with self._novacache_lock, self.timer as now:
            expired = self.expire(now)  # noqa: F841 (released after the lock)
            try:
                key = next(iter(self.__deadlines))
            except StopIteration:
                raise KeyError(f"{type(self).__name__} is empty") from None
            value = self._fetch(key)
            del self[key]
            return (key, value)

    def clear(self) -> None:
        with self._novacache_lock:
            held = self._clear_store()  # noqa: F841 (released after the lock)
            self.__deadlines.clear()
            self.__heap.clear()

    def __copy__(self) -> TLRUCache[_KT, _VT, _TT]:
        with self._novacache_lock:
            clone = cast("TLRUCache[_KT, _VT, _TT]", super().__copy__())
            clone.__heap, clone.__deadlines = self.__copy_entries()
        return clone

    def __copy_entries(self) -> tuple[list[_Deadline], OrderedDict[_KT, _Deadline]]:
        """Copies of the heap and of the deadlines, sharing copied entries as the
        originals share theirs."""
        twins: dict[int, _Deadline] = {}
        for entry in self.__heap:
            twin = twins[id(entry)] = _Deadline(entry.key, entry.expires)
            twin.removed = entry.removed
        heap = [twins[id(entry)] for entry in self.__heap]
        deadlines = OrderedDict((key, twins[id(entry)]) for key, entry in self.__deadlines.items())
        return heap, deadlines

    def _cachetools_state(self) -> dict[str, Any]:
        state = super()._cachetools_state()
        del state["_TLRUCache__heap"], state["_TLRUCache__deadlines"]
        state["_TLRUCache__order"], state["_TLRUCache__items"] = self.__copy_entries()
        return state

    def _load_cachetools_state(self, state: Any) -> dict[str, Any]:
        fields = super()._load_cachetools_state(state)
        self.__deadlines = OrderedDict(fields.pop("_TLRUCache__items", None) or ())
        # A heap already, as cachetools takes it (heapify would reorder equal times).
        self.__heap = list(fields.pop("_TLRUCache__order", None) or ())
        return fields
