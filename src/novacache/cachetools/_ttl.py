"""``TTLCache``: an LRU cache whose items expire a fixed time after they are stored."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

from ._base import Cache
from ._timed import _TT, _TimedCache

__all__ = ("TTLCache",)

_KT = TypeVar("_KT")
_VT = TypeVar("_VT")


class TTLCache(_TimedCache[_KT, _VT, _TT]):
    """LRU Cache implementation with per-item time-to-live (TTL) value.

    Two orders are kept beside the mapping, both as ``OrderedDict``:

    * ``__deadlines``: key -> expiry time, in the order the items were last stored;
      with one ``ttl`` for all items this is also the order they expire in, so
      ``expire()`` only looks at the front;
    * ``__recency``: the keys, least recently used first (the eviction order).

    Pickled, they take cachetools' layout: ``_TTLCache__links``, the keys least
    recently used first, each with a :class:`TTLCache._Link` holding its expiry time,
    and ``_TTLCache__root``. Loading rebuilds the expiry order from the times (as
    cachetools does), then expires what is due.
    """

    class _Link:
        """cachetools' ``TTLCache._Link``: in a pickle, when a key expires."""

        __slots__ = ("expires", "key", "next", "prev")

        def __init__(self, key: Any = None, expires: Any = None) -> None:
            self.key = key
            self.expires = expires

        def __reduce__(self) -> tuple[Any, ...]:
            return (TTLCache._Link, (self.key, self.expires))

    def __init__(
        self,
        maxsize: float,
        ttl: Any,
        timer: Callable[[], _TT] = time.monotonic,  # type: ignore[assignment]
        getsizeof: Callable[[_VT], float] | None = None,
    ) -> None:
        _TimedCache.__init__(self, maxsize, timer, getsizeof)
        self.__ttl = ttl
        self.__deadlines: OrderedDict[_KT, Any] = OrderedDict()
        self.__recency: OrderedDict[_KT, None] = OrderedDict()

    @property
    def ttl(self) -> Any:
        """The time-to-live value of the cache's items."""
        return self.__ttl

    # -- order primitives ---------------------------------------------------------

    def _link(self, key: _KT, deadline: Any) -> None:
        """Record a store of ``key`` expiring at ``deadline``: newest in both orders."""
        deadlines = self.__deadlines
        if key in deadlines:
            deadlines.move_to_end(key)
            self.__recency.move_to_end(key)
        else:
            self.__recency[key] = None
        deadlines[key] = deadline

    def _unlink(self, key: _KT) -> Any:
        """Forget ``key`` in both orders; return its deadline."""
        del self.__recency[key]
        return self.__deadlines.pop(key)

    # -- mapping protocol ---------------------------------------------------------

    def __contains__(self, key: object) -> bool:
        deadline = self.__deadlines.get(cast("_KT", key), _GONE)
        if deadline is _GONE:
            return False
        now: Any = self.timer()
        return bool(now < deadline)

    def __getitem__(self, key: _KT) -> _VT:
        with self._novacache_lock:
            deadline = self.__deadlines.get(key, _GONE)
            if deadline is not _GONE:
                self.__recency.move_to_end(key)  # even when expired, as cachetools
                now: Any = self.timer()
                if now < deadline:
                    return self._fetch(key)
        if deadline is _GONE:
            return Cache.__getitem__(self, key)  # a miss: __missing__ (or a racing store)
        return self.__missing__(key)  # expired; outside the lock: user code

    def __setitem__(self, key: _KT, value: _VT) -> None:
        dropped: list[object] = []
        with self._novacache_lock:
            with self.timer as now:
                deadline = now + self.__ttl
                dropped.append(self.expire(now))
                self._store(key, value, dropped)
            self._link(key, deadline)

    def __delitem__(self, key: _KT) -> None:
        with self._novacache_lock:
            value = self._discard(key)  # noqa: F841 (released after the lock)
            deadline = self._unlink(key)
            # Deleting an expired item removes it, but reports it as missing.
            now: Any = self.timer()
            if not (now < deadline):
                raise KeyError(key)

    def __iter__(self) -> Iterator[_KT]:
        # A snapshot of the keys, in insertion order: storing or deleting while
        # iterating does not raise as for a dict, since items expire meanwhile anyway.
        with self._novacache_lock:
            keys = list(Cache.__iter__(self))
        return self._iter_keys(keys)

    def _iter_keys(self, keys: list[_KT]) -> Iterator[_KT]:
        """The live keys among ``keys``: one "now" per step, frozen until the next
        (as cachetools, which yields inside its ``with self.timer`` block)."""
        deadlines = self.__deadlines
        for key in keys:
            with self.timer as now:
                deadline = deadlines.get(key, _GONE)
                if deadline is not _GONE and now < deadline:
                    yield key

    def _live(self, key: _KT) -> bool:
        """Whether ``key`` is present and not expired, at the timer's now."""
        with self.timer as now:
            deadline = self.__deadlines.get(key, _GONE)
            return deadline is not _GONE and bool(now < deadline)

    def expire(self, time: _TT | None = None) -> list[tuple[_KT, _VT]]:
        """Remove expired items from the cache and return an iterable of the
        expired `(key, value)` pairs.

        """
        with self._novacache_lock:
            if time is None:
                time = self.timer()
            deadlines = self.__deadlines
            expired: list[tuple[_KT, _VT]] = []
            while deadlines:
                key, deadline = next(iter(deadlines.items()))
                if time < deadline:
                    break
                expired.append((key, self._discard(key)))
                self._unlink(key)
            return expired

    def popitem(self) -> tuple[_KT, _VT]:
        """Remove and return the `(key, value)` pair least recently used that
        has not already expired.

        """
        with self._novacache_lock, self.timer as now:
            expired = self.expire(now)  # noqa: F841 (released after the lock)
            try:
                key = next(iter(self.__recency))
            except StopIteration:
                raise KeyError(f"{type(self).__name__} is empty") from None
            value = self._fetch(key)
            del self[key]
            return (key, value)

    def clear(self) -> None:
        with self._novacache_lock:
            held = self._clear_store()  # noqa: F841 (released after the lock)
            self.__deadlines.clear()
            self.__recency.clear()

    def __copy__(self) -> TTLCache[_KT, _VT, _TT]:
        with self._novacache_lock:
            clone = cast("TTLCache[_KT, _VT, _TT]", super().__copy__())
            clone.__deadlines = self.__deadlines.copy()
            clone.__recency = self.__recency.copy()
        return clone

    def _cachetools_state(self) -> dict[str, Any]:
        state = super()._cachetools_state()
        deadlines = state.pop("_TTLCache__deadlines")
        recency = state.pop("_TTLCache__recency")
        link = TTLCache._Link
        state["_TTLCache__root"] = link()
        state["_TTLCache__links"] = OrderedDict((key, link(key, deadlines[key])) for key in recency)
        return state

    def _load_cachetools_state(self, state: Any) -> dict[str, Any]:
        fields = super()._load_cachetools_state(state)
        fields.pop("_TTLCache__root", None)
        links: dict[Any, Any] = fields.pop("_TTLCache__links", None) or {}
        self.__recency = OrderedDict.fromkeys(links)
        # As cachetools: the expiry order from the times, ties in recency order.
        timed = sorted(links.items(), key=lambda item: item[1].expires)
        self.__deadlines = OrderedDict((key, link.expires) for key, link in timed)
        return fields

    def __setstate__(self, state: Any) -> None:
        self._load_cachetools_state(state)
        self.expire(self.timer())

    def _adopt_write_order(self, keys: Any) -> None:
        """Put the expiry order back in the order the keys were last written (a
        state in cachetools' layout keeps only the times)."""
        deadlines = self.__deadlines
        self.__deadlines = OrderedDict((key, deadlines[key]) for key in keys)


_GONE: Any = object()
