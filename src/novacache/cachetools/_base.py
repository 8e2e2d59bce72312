"""``Cache``: the mutable mapping every cachetools-compatible cache derives from.

Storage primitives
------------------
The state of a cache changes only through a few methods:

* ``_fetch(key)``: the stored value, ``KeyError`` when absent (no ``__missing__``);
* ``_store(key, value, dropped)``: insert or replace, evicting through ``popitem()``
  until the item fits, exactly as ``cachetools.Cache.__setitem__`` does;
* ``_discard(key)``: remove an item and its size, return the value;
* ``_clear_store()``: empty the mapping, return what it held.

Thread safety
-------------
cachetools' classes are not thread-safe; ours are. Each instance owns a re-entrant
lock (``_novacache_lock``), held for every change of state, so a ``popitem`` override,
``getsizeof`` or ``expire`` may call back into the cache from the same thread.
``__missing__`` runs *outside* the lock: it is where users compute values, and a lock
held across it deadlocks as soon as that computation waits for another thread.

Note that values and keys removed by an operation are kept alive until the operation
has left every structure consistent (the ``dropped`` list, or a local), so that a
``__del__`` which re-enters the cache never sees it half updated.

Pickles
-------
Every class pickles its state as cachetools 8.0.2 lays out its instance ``__dict__``
(``_Cache__data``, ``_Cache__currsize``, ``_Cache__maxsize``, ``_Cache__size`` for a
sized cache, then each class's own), and ``__setstate__`` takes that layout: a pickle
made by one loads in the other (see :mod:`.compat` for the module names). Where our
structures differ from cachetools' (the order of a ``TTLCache``, the counts of an
``LFUCache``), ``__getstate__`` and ``__setstate__`` convert.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any, TypeVar, overload

__all__ = ("Cache",)

_KT = TypeVar("_KT")
_VT = TypeVar("_VT")
_T = TypeVar("_T")

_MISSING: Any = object()


class Cache(MutableMapping[_KT, _VT]):
    """Mutable mapping to serve as a simple cache or cache base class.

    ``maxsize`` bounds the sum of the items' sizes; ``getsizeof(value)`` gives an
    item's size (1 for every item by default).
    """

    _novacache_lock: threading.RLock

    # Sizes are tracked per item (``{key: size}``) only when an item's size can differ
    # from 1; else None, as a class attribute (so that an unsized cache's state is the
    # one cachetools pickles).
    __size: dict[Any, float] | None = None

    def __init__(self, maxsize: float, getsizeof: Callable[[_VT], float] | None = None) -> None:
        if maxsize < 0:
            raise ValueError("maxsize must be non-negative")
        if getsizeof is not None:
            self.getsizeof = getsizeof  # type: ignore[method-assign, assignment]
        self._novacache_lock = threading.RLock()
        # As cachetools decides, when the cache is made: sized when getsizeof is not
        # Cache's own (an argument, now or to an earlier __init__, or an override).
        if "getsizeof" in vars(self) or _resolve(type(self), "getsizeof") is not _GETSIZEOF:
            self.__size = {}
        elif "_Cache__size" in vars(self):
            del self.__size  # an earlier __init__ made it sized
        self.__data: dict[_KT, _VT] = {}
        self.__currsize: float = 0
        self.__maxsize = maxsize

    # -- storage primitives -------------------------------------------------------

    def _fetch(self, key: _KT) -> _VT:
        """Return the stored value for ``key``; ``KeyError`` when there is none."""
        return self.__data[key]

    def _store(self, key: _KT, value: _VT, dropped: list[object]) -> None:
        """Store ``value`` under ``key``, evicting with ``popitem()`` until it fits.

        Evicted pairs and a replaced value are appended to ``dropped``, for the
        caller to release once its own structures are consistent.
        """
        data = self.__data
        sizes = self.__size
        maxsize = self.__maxsize
        if sizes is None:
            if maxsize < 1:
                raise ValueError("value too large")
            if key in data:
                dropped.append(data[key])
                data[key] = value
                return
            while self.__currsize + 1 > maxsize:
                dropped.append(self.popitem())
            data[key] = value
            self.__currsize += 1
            return
        itemsize = self.getsizeof(value)
        if itemsize > maxsize:
            raise ValueError("value too large")
        if itemsize < 0:
            raise ValueError("value size must be non-negative")
        if key in data:
            growth = itemsize - sizes[key]
            while self.__currsize + growth > maxsize:
                dropped.append(self.popitem())
                if key not in data:
                    # The eviction took the item being replaced: it is new now.
                    growth = itemsize
        else:
            growth = itemsize
            while self.__currsize + growth > maxsize:
                dropped.append(self.popitem())
        dropped.append(data.get(key))
        data[key] = value
        sizes[key] = itemsize
        self.__currsize += growth

    def _discard(self, key: _KT) -> _VT:
        """Remove ``key`` and its size; return its value (``KeyError`` when absent).

        Note that the key is looked up as cachetools looks it up: ``dict.pop`` on an
        empty dict raises ``KeyError`` without hashing the key, ``del d[key]`` hashes
        it first (a key whose ``__hash__`` fails raises that error).
        """
        sizes = self.__size
        if sizes is None:
            data = self.__data
            value = data[key]
            del data[key]
            self.__currsize -= 1
        else:
            itemsize = sizes.pop(key)
            value = self.__data.pop(key)
            self.__currsize -= itemsize
        return value

    def _clear_store(self) -> list[tuple[_KT, _VT]]:
        """Empty the mapping; return the items it held, for the caller to release."""
        held = list(self.__data.items())
        if self.__size is not None:
            self.__size.clear()
        self.__data.clear()
        self.__currsize = 0
        return held

    # -- mapping protocol ---------------------------------------------------------

    def __repr__(self) -> str:
        with self._novacache_lock:
            data = dict(self.__data)
            maxsize = self.__maxsize
            currsize = self.__currsize
        return f"{type(self).__name__}({data!r}, maxsize={maxsize!r}, currsize={currsize!r})"

    def __getitem__(self, key: _KT) -> _VT:
        try:
            return self.__data[key]
        except KeyError:
            # In the handler: a KeyError that __missing__ raises has the failed
            # lookup as its context, as with cachetools.
            return self.__missing__(key)

    def __setitem__(self, key: _KT, value: _VT) -> None:
        dropped: list[object] = []
        with self._novacache_lock:
            self._store(key, value, dropped)

    def __delitem__(self, key: _KT) -> None:
        with self._novacache_lock:
            value = self._discard(key)  # noqa: F841 (released after the lock)

    def __contains__(self, key: object) -> bool:
        return key in self.__data

    def __missing__(self, key: _KT) -> _VT:
        raise KeyError(key)

    def __iter__(self) -> Iterator[_KT]:
        return iter(self.__data)

    def __len__(self) -> int:
        return len(self.__data)

    # Note that get(), pop() and setdefault() cannot be inherited from MutableMapping:
    # those rely on __getitem__ raising KeyError for a missing key, which a subclass
    # implementing __missing__ does not. Each runs under the lock, so that another
    # thread cannot remove the key between the membership test and the access.

    @overload
    def get(self, key: _KT, default: None = None) -> _VT | None: ...
    @overload
    def get(self, key: _KT, default: _VT | _T) -> _VT | _T: ...
    def get(self, key: _KT, default: Any = None) -> Any:
        with self._novacache_lock:
            if key in self:
                return self[key]
            return default

    @overload
    def pop(self, key: _KT) -> _VT: ...
    @overload
    def pop(self, key: _KT, default: _VT | _T) -> _VT | _T: ...
    def pop(self, key: _KT, default: Any = _MISSING) -> Any:
        with self._novacache_lock:
            if key in self:
                value = self[key]
                del self[key]
                return value
        if default is _MISSING:
            raise KeyError(key)
        return default

    @overload
    def setdefault(self: Cache[_KT, _T | None], key: _KT, default: None = None) -> _T | None: ...
    @overload
    def setdefault(self, key: _KT, default: _VT) -> _VT: ...
    def setdefault(self, key: _KT, default: Any = None) -> Any:
        with self._novacache_lock:
            if key in self:
                return self[key]
            self[key] = default
            return default

    def popitem(self) -> tuple[_KT, _VT]:
        """Remove and return a ``(key, value)`` pair (the first in iteration order)."""
        with self._novacache_lock:
            try:
                key = next(iter(self))
            except StopIteration:
                raise KeyError from None
            value = self[key]
            del self[key]
            return (key, value)

    # Note that MutableMapping.clear() would call popitem() until the cache is empty,
    # which is O(n) calls and runs a user's eviction hook for every item.

    def clear(self) -> None:
        with self._novacache_lock:
            held = self._clear_store()  # noqa: F841 (released after the lock)

    @property
    def maxsize(self) -> float:
        """The maximum size of the cache."""
        return self.__maxsize

    @property
    def currsize(self) -> float:
        """The current size of the cache."""
        return self.__currsize

    @staticmethod
    def getsizeof(value: Any) -> float:
        """Return the size of a cache element's value."""
        return 1

    # -- copy and pickle ----------------------------------------------------------
    #
    # Note that a shallow copy shares the instance attributes with its source (a
    # user's lock, statistics, ...), except for the cache's own state: its items,
    # their sizes and order, and its lock.

    def __copy__(self) -> Cache[_KT, _VT]:
        clone: Cache[_KT, _VT] = self._novacache_blank()
        with self._novacache_lock:
            clone.__dict__.update(self.__dict__)
            clone.__data = self.__data.copy()
            if self.__size is not None:
                clone.__size = self.__size.copy()
        clone._novacache_lock = threading.RLock()
        return clone

    def _novacache_blank(self) -> Any:
        """An uninitialised instance of this cache's class (for a copy)."""
        cls = type(self)
        return cls.__new__(cls)

    def __getstate__(self) -> dict[str, Any]:
        with self._novacache_lock:
            return self._cachetools_state()

    def __setstate__(self, state: Any) -> None:
        self._load_cachetools_state(state)

    def _cachetools_state(self) -> dict[str, Any]:
        """The instance ``__dict__`` cachetools would have (the lock held): the user's
        attributes, and copies of the containers, which the caller may hold on to."""
        state = self.__dict__.copy()
        state.pop("_novacache_lock", None)
        state["_Cache__data"] = self.__data.copy()
        if self.__size is not None:
            state["_Cache__size"] = self.__size.copy()
        return state

    def _load_cachetools_state(self, state: Any) -> dict[str, Any]:
        """Take a state in cachetools' layout (what :meth:`_cachetools_state` gives,
        or what cachetools pickled); subclasses take their own entries out first.
        Returns the instance ``__dict__``."""
        state, slots = split_state(state)
        self.__dict__.update(state)
        for name, value in slots.items():
            setattr(self, name, value)
        self._novacache_lock = threading.RLock()
        return self.__dict__


def split_state(state: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A pickled state as ``(dict, slots)``: a copy of the dict (its entries are taken
    out as they are converted), and the ``__slots__`` values of a subclass, if any (as
    pickle lays them out: ``(dict or None, {slot: value})``)."""
    slots: dict[str, Any] = {}
    if isinstance(state, tuple) and len(state) == 2:
        state, slots = state
        slots = dict(slots or {})
    if state is None:
        state = {}
    if not isinstance(state, dict):
        raise TypeError(f"cannot restore a cache from a {type(state).__name__} state")
    return dict(state), slots


def _resolve(cls: type, name: str) -> Any:
    """What ``name`` is on ``cls`` (the first definition in its MRO, undecorated)."""
    for klass in cls.__mro__:
        found = vars(klass).get(name, _MISSING)
        if found is not _MISSING:
            return found
    return None


_GETSIZEOF = vars(Cache)["getsizeof"]
