"""The pure-Python twin of the compiled core (``novacache._core``).

It obeys the same contract (``docs/local-cache.md``) and carries the type annotations
that type checkers see for both. It is used on interpreters other than CPython, when
``NOVACACHE_NO_EXTENSIONS`` is set, or when the extension is missing.

Implementation notes:

- An ``OrderedDict`` maps each key to a small ``_Entry`` (value, expiry time, weight);
  the least-recently-used entry is first, a hit moves its entry to the end.
- One ``threading.RLock`` guards the structure. It is re-entrant, so code the cache runs
  (a key's ``__hash__``/``__eq__``, a ``timer``) may use the same cache from the same
  thread. Every dictionary operation is accounted from what it actually returned, and
  an operation that was re-entered recomputes ``currbytes`` before it returns.
- Entries leaving the cache are kept in local variables until the lock is released, so
  a value's ``__del__`` runs outside the lock, on a consistent structure.
- The weigher runs before the lock is taken; the timer is read only when an entry with
  an expiry time is involved.
"""

from __future__ import annotations

import math
import numbers
import operator
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from functools import update_wrapper
from itertools import islice
from types import MethodType
from typing import Any, Generic, ParamSpec, TypeVar, overload

from ._stats import CacheInfo, CacheStats
from .errors import ConfigurationError, EntryTooLarge

__all__ = ["LocalCache", "Memoized", "default_weigher", "memoize"]

P = ParamSpec("P")
R = TypeVar("R")

MAXSIZE_LIMIT = 2**31 - 2
"""The largest ``maxsize`` accepted (the compiled core's bound)."""

_SWEEP_STEP = 4
"""How many least-recently-used entries an insert of a new key examines for expiry."""

_MISSING: Any = object()


def default_weigher(key: Hashable, value: Any) -> int:
    """Return ``sys.getsizeof(value)``: the shallow size of the value object in bytes.

    A container counts its own structure, not the objects it holds. The key is ignored.
    """
    return sys.getsizeof(value)


class _Entry:
    """One cached value, its absolute expiry time (``None``: never) and its weight."""

    __slots__ = ("expires", "value", "weight")

    def __init__(self, value: Any, expires: float | None, weight: int) -> None:
        self.value = value
        self.expires = expires
        self.weight = weight


def _check_size(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be None or an int, not {type(value).__name__}")
    if value < 1:
        raise ConfigurationError(f"{name} must be >= 1, got {value}")
    return value


def _check_ttl(value: object, error: type[ValueError]) -> float | None:
    """Validate a ttl: ``None``, a real > 0 or ``math.inf``; ``inf`` is returned as None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"ttl must be None or a real number, not {type(value).__name__}")
    ttl = float(value)
    if math.isnan(ttl) or ttl <= 0:
        raise error(f"ttl must be > 0 (or math.inf for no expiry), got {value!r}")
    if math.isinf(ttl):
        return None
    return ttl


def _restore(
    cls: type[LocalCache],
    config: dict[str, Any],
    entries: list[tuple[Hashable, Any, float]],
    state: dict[str, Any] | None,
) -> LocalCache:
    """Rebuild a pickled cache: configuration, then live entries in LRU order."""
    cache = cls.__new__(cls)
    LocalCache.__init__(cache, **config)
    for key, value, remaining in entries:
        cache.set(key, value, ttl=remaining)
    if state:
        cache.__dict__.update(state)
    return cache


class LocalCache:
    """An in-process LRU cache with per-entry TTL and an optional weight budget.

    See ``docs/local-cache.md`` for the full contract; every method below states what it
    promises. All methods are safe to call from several threads at once.
    """

    __slots__ = (
        "__weakref__",
        "_currbytes",
        "_data",
        "_default_ttl",
        "_evictions",
        "_expirations",
        "_gen",
        "_hits",
        "_inserts",
        "_lock",
        "_maxbytes",
        "_maxsize",
        "_misses",
        "_timer",
        "_timer_arg",
        "_weigher",
    )

    def __init__(
        self,
        maxsize: int | None = None,
        *,
        maxbytes: int | None = None,
        weigher: Callable[[Any, Any], int] | None = None,
        ttl: float | None = None,
        timer: Callable[[], float] | None = None,
    ) -> None:
        """Build an empty cache.

        Raises ``ConfigurationError`` (a ``ValueError``) for a bad value and
        ``TypeError`` for a wrong type of ``maxsize``, ``maxbytes``, ``weigher``,
        ``ttl`` or ``timer``.
        """
        self._maxsize = _check_size("maxsize", maxsize)
        if self._maxsize is not None and self._maxsize > MAXSIZE_LIMIT:
            raise ConfigurationError(f"maxsize must be <= {MAXSIZE_LIMIT}, got {maxsize}")
        self._maxbytes = _check_size("maxbytes", maxbytes)
        if weigher is not None and not callable(weigher):
            raise TypeError(f"weigher must be callable or None, not {type(weigher).__name__}")
        if timer is not None and not callable(timer):
            raise TypeError(f"timer must be callable or None, not {type(timer).__name__}")
        if weigher is None and self._maxbytes is not None:
            weigher = default_weigher
        self._weigher = weigher
        self._default_ttl: float | None = _check_ttl(ttl, ConfigurationError)
        if ttl is not None and self._default_ttl is None:
            self._default_ttl = math.inf
        self._timer_arg = timer
        self._timer: Callable[[], float] = time.monotonic if timer is None else timer
        self._data: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._lock = threading.RLock()
        self._currbytes = 0
        self._hits = 0
        self._misses = 0
        self._evictions = 0
        self._expirations = 0
        self._gen = 0  # bumped by every mutation: detects re-entrant changes
        self._inserts = 0  # inserts of new keys since the last full sweep

    # -- configuration and counters ---------------------------------------------------

    @property
    def maxsize(self) -> int | None:
        """The bound on the number of entries, or ``None``."""
        return self._maxsize

    @property
    def maxbytes(self) -> int | None:
        """The bound on the sum of entry weights, or ``None``."""
        return self._maxbytes

    @property
    def ttl(self) -> float | None:
        """The default time-to-live in seconds, or ``None`` (no expiry)."""
        return self._default_ttl

    @property
    def timer(self) -> Callable[[], float] | None:
        """The timer passed to the constructor, or ``None`` (the default clock)."""
        return self._timer_arg

    @property
    def weigher(self) -> Callable[[Any, Any], int] | None:
        """The effective weigher (``default_weigher`` when only ``maxbytes`` was given)."""
        return self._weigher

    @property
    def currsize(self) -> int:
        """The number of entries held (``len(self)``)."""
        return len(self._data)

    @property
    def currbytes(self) -> int:
        """The sum of the weights of the entries held (0 when weights are not computed)."""
        return self._currbytes

    @property
    def stats(self) -> CacheStats:
        """A snapshot of the counters, taken now."""
        with self._lock:
            return CacheStats(
                self._hits,
                self._misses,
                self._evictions,
                self._expirations,
                len(self._data),
                self._currbytes,
                self._maxsize,
                self._maxbytes,
            )

    def reset_stats(self) -> None:
        """Zero ``hits``, ``misses``, ``evictions`` and ``expirations``."""
        with self._lock:
            self._hits = self._misses = self._evictions = self._expirations = 0

    def __repr__(self) -> str:
        """``LocalCache(maxsize=..., maxbytes=..., currsize=...)``: never keys or values."""
        return (
            f"{type(self).__name__}(maxsize={self._maxsize}, maxbytes={self._maxbytes}, "
            f"currsize={len(self._data)})"
        )

    # -- internals (the lock is held) -------------------------------------------------

    def _weigh(self, key: Hashable, value: Any) -> int:
        weigher = self._weigher
        if weigher is None:
            return 0
        weight = operator.index(weigher(key, value))
        if weight < 0:
            raise ValueError(f"weigher returned a negative weight: {weight}")
        if self._maxbytes is not None and weight > self._maxbytes:
            raise EntryTooLarge(weight, self._maxbytes)
        return weight

    def _expiry(self, ttl: float | None) -> float | None:
        """Absolute expiry time for an entry set now with ``ttl`` (validated)."""
        if ttl is None or math.isinf(ttl):
            return None
        return self._timer() + ttl

    def _resync(self, gen: int) -> None:
        """After a re-entrant mutation, recompute ``currbytes`` from the entries."""
        if self._gen != gen:
            self._currbytes = sum(e.weight for e in self._data.values())

    def _unlink(self, key: Hashable, entry: _Entry) -> _Entry | None:
        """Remove ``key`` if it still maps to ``entry``; return what was removed."""
        data = self._data
        cur = data.pop(key, None)
        if cur is None:
            return None
        if cur is not entry:  # replaced meanwhile by re-entrant code: keep the newer one
            data[key] = cur
            return None
        self._currbytes -= cur.weight
        return cur

    def _lookup(self, key: Hashable, garbage: list[Any]) -> _Entry | None:
        """The live entry under ``key`` or None; reclaims it when expired."""
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry.expires is not None and self._timer() >= entry.expires:
            removed = self._unlink(key, entry)
            if removed is not None:
                self._expirations += 1
                garbage.append(removed)
            return None
        return entry

    def _touch(self, key: Hashable) -> None:
        try:
            self._data.move_to_end(key)
        except KeyError:  # removed by re-entrant code meanwhile
            pass

    def _sweep(self, garbage: list[Any]) -> None:
        """Examine a few LRU entries for expiry; now and then, all of them (amortised)."""
        data = self._data
        self._inserts += 1
        if self._inserts > len(data) + 16:
            self._inserts = 0
            self._expire_all(garbage)
            return
        now: float | None = None
        dead: list[tuple[Hashable, _Entry]] = []
        for key, entry in islice(data.items(), _SWEEP_STEP):
            if entry.expires is not None:
                if now is None:
                    now = self._timer()
                if now >= entry.expires:
                    dead.append((key, entry))
        for key, entry in dead:
            removed = self._unlink(key, entry)
            if removed is not None:
                self._expirations += 1
                garbage.append((key, removed))

    def _expire_all(self, garbage: list[Any]) -> int:
        now: float | None = None
        dead: list[tuple[Hashable, _Entry]] = []
        for key, entry in list(self._data.items()):
            if entry.expires is not None:
                if now is None:
                    now = self._timer()
                if now >= entry.expires:
                    dead.append((key, entry))
        count = 0
        for key, entry in dead:
            removed = self._unlink(key, entry)
            if removed is not None:
                count += 1
                garbage.append((key, removed))
        self._expirations += count
        return count

    def _make_room(self, keep: _Entry, garbage: list[Any]) -> None:
        """Evict LRU entries (never ``keep``) until both bounds hold."""
        data = self._data
        maxsize = self._maxsize
        maxbytes = self._maxbytes
        while data and (
            (maxsize is not None and len(data) > maxsize)
            or (maxbytes is not None and self._currbytes > maxbytes)
        ):
            key, entry = data.popitem(last=False)
            if entry is keep:  # only the new entry is left: put it back
                data[key] = entry
                data.move_to_end(key, last=False)
                break
            self._currbytes -= entry.weight
            garbage.append((key, entry))
            if entry.expires is not None and self._timer() >= entry.expires:
                self._expirations += 1
            else:
                self._evictions += 1

    def _store(self, key: Hashable, value: Any, weight: int, expires: float | None) -> list[Any]:
        """Insert or overwrite ``key`` as MRU, then make room. Returns the garbage."""
        garbage: list[Any] = []
        data = self._data
        self._gen += 1
        gen = self._gen
        entry = _Entry(value, expires, weight)
        old = data.pop(key, None)
        if old is None:
            self._sweep(garbage)
        else:
            self._currbytes -= old.weight
            garbage.append(old)
        data[key] = entry
        self._currbytes += weight
        self._resync(gen)
        self._make_room(entry, garbage)
        self._resync(gen)
        return garbage

    # -- mapping protocol -------------------------------------------------------------

    def __len__(self) -> int:
        """The number of entries held, which may include expired ones not yet reclaimed."""
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        """``True`` for a live entry; no recency change, nothing counted."""
        with self._lock:
            entry = self._data.get(key)
            if entry is None:
                return False
            return entry.expires is None or self._timer() < entry.expires

    def __getitem__(self, key: Hashable) -> Any:
        """The value of a live entry, made MRU (a hit); ``KeyError(key)`` on a miss."""
        garbage: list[Any] = []
        with self._lock:
            entry = self._lookup(key, garbage)
            if entry is None:
                self._misses += 1
            else:
                self._hits += 1
                self._touch(key)
                return entry.value
        del garbage
        raise KeyError(key)

    def get(self, key: Hashable, default: Any = None) -> Any:
        """As ``self[key]``, but return ``default`` on a miss (the miss is counted)."""
        garbage: list[Any] = []
        with self._lock:
            entry = self._lookup(key, garbage)
            if entry is None:
                self._misses += 1
                return default
            self._hits += 1
            self._touch(key)
            return entry.value

    def peek(self, key: Hashable, default: Any = None) -> Any:
        """The value of a live entry without changing recency or counting; else default."""
        with self._lock:
            entry = self._data.get(key)
            if entry is None or (entry.expires is not None and self._timer() >= entry.expires):
                return default
            return entry.value

    def __setitem__(self, key: Hashable, value: Any) -> None:
        """``self.set(key, value)``."""
        self.set(key, value)

    def set(self, key: Hashable, value: Any, ttl: float | None = None) -> None:
        """Insert or overwrite ``key`` (it becomes MRU), then evict LRU entries to fit.

        ``ttl=None`` takes the default ttl; otherwise a real > 0, or ``math.inf`` for no
        expiry (0, negative or NaN: ``ValueError``). An entry heavier than ``maxbytes``
        raises ``EntryTooLarge`` and leaves the cache unchanged.
        """
        ttl = self._default_ttl if ttl is None else _check_ttl(ttl, ValueError)
        weight = self._weigh(key, value)
        with self._lock:
            garbage = self._store(key, value, weight, self._expiry(ttl))
        del garbage

    def __delitem__(self, key: Hashable) -> None:
        """Remove ``key``; ``KeyError(key)`` when it is absent or expired."""
        garbage: list[Any] = []
        with self._lock:
            self._gen += 1
            entry = self._lookup(key, garbage)
            if entry is not None:
                removed = self._unlink(key, entry)
                if removed is not None:
                    garbage.append(removed)
                    return
        del garbage
        raise KeyError(key)

    def pop(self, key: Hashable, default: Any = _MISSING) -> Any:
        """Remove ``key`` and return its value; absent or expired: ``default``, or
        ``KeyError(key)`` when no default is given. Nothing is counted as a hit or miss.
        """
        garbage: list[Any] = []
        with self._lock:
            self._gen += 1
            entry = self._lookup(key, garbage)
            if entry is not None:
                removed = self._unlink(key, entry)
                if removed is not None:
                    garbage.append(removed)
                    return removed.value
        del garbage
        if default is _MISSING:
            raise KeyError(key)
        return default

    def popitem(self) -> tuple[Any, Any]:
        """Remove and return the least-recently-used live ``(key, value)``.

        Expired entries met on the way are reclaimed. Empty: ``KeyError``.
        """
        garbage: list[Any] = []
        with self._lock:
            self._gen += 1
            data = self._data
            while data:
                key, entry = data.popitem(last=False)
                self._currbytes -= entry.weight
                garbage.append(entry)
                if entry.expires is not None and self._timer() >= entry.expires:
                    self._expirations += 1
                    continue
                return key, entry.value
        del garbage
        raise KeyError("popitem(): cache is empty")

    def clear(self) -> None:
        """Remove every entry; counters other than currsize/currbytes are kept."""
        with self._lock:
            self._gen += 1
            old = self._data
            self._data = OrderedDict()
            self._currbytes = 0
            self._inserts = 0
        del old  # values' __del__ run here, outside the lock

    def __iter__(self) -> Iterator[Any]:
        """An iterator over a snapshot of the live keys, least-recently-used first."""
        return iter(self.keys())

    def _snapshot(self) -> list[tuple[Hashable, _Entry]]:
        with self._lock:
            items = list(self._data.items())
            now: float | None = None
            live: list[tuple[Hashable, _Entry]] = []
            for key, entry in items:
                if entry.expires is not None:
                    if now is None:
                        now = self._timer()
                    if now >= entry.expires:
                        continue
                live.append((key, entry))
            return live

    def keys(self) -> list[Any]:
        """A list of the live keys, least-recently-used first (a snapshot)."""
        return [k for k, _ in self._snapshot()]

    def values(self) -> list[Any]:
        """A list of the live values, least-recently-used first (a snapshot)."""
        return [e.value for _, e in self._snapshot()]

    def items(self) -> list[tuple[Any, Any]]:
        """A list of the live ``(key, value)`` pairs, least-recently-used first."""
        return [(k, e.value) for k, e in self._snapshot()]

    # -- batch operations -------------------------------------------------------------

    def get_many(self, keys: Iterable[Hashable]) -> dict[Any, Any]:
        """``{key: value}`` for the live keys among ``keys``.

        Each key counts a hit or a miss; hits become MRU in the order given.
        """
        keys = list(keys)
        result: dict[Any, Any] = {}
        garbage: list[Any] = []
        with self._lock:
            for key in keys:
                entry = self._lookup(key, garbage)
                if entry is None:
                    self._misses += 1
                else:
                    self._hits += 1
                    self._touch(key)
                    result[key] = entry.value
        return result

    def set_many(
        self,
        mapping: Mapping[Any, Any] | Iterable[tuple[Any, Any]],
        ttl: float | None = None,
    ) -> None:
        """Set every pair of ``mapping`` (a mapping or an iterable of pairs) in order.

        All weights are computed first: if any entry is too large, ``EntryTooLarge`` is
        raised and nothing is stored.
        """
        ttl = self._default_ttl if ttl is None else _check_ttl(ttl, ValueError)
        pairs: list[tuple[Any, Any]] = (
            list(mapping.items()) if hasattr(mapping, "items") else [(k, v) for k, v in mapping]
        )
        weights = [self._weigh(k, v) for k, v in pairs]
        garbage: list[Any] = []
        with self._lock:
            for (key, value), weight in zip(pairs, weights, strict=True):
                garbage.extend(self._store(key, value, weight, self._expiry(ttl)))
        del garbage

    def delete_many(self, keys: Iterable[Hashable]) -> int:
        """Remove the given keys that are present; return how many live ones were removed."""
        keys = list(keys)
        garbage: list[Any] = []
        count = 0
        with self._lock:
            self._gen += 1
            for key in keys:
                entry = self._lookup(key, garbage)
                if entry is not None:
                    removed = self._unlink(key, entry)
                    if removed is not None:
                        garbage.append(removed)
                        count += 1
        del garbage
        return count

    def expire(self) -> int:
        """Remove every expired entry; return how many (``expirations`` grows by that)."""
        garbage: list[Any] = []
        with self._lock:
            self._gen += 1
            self._inserts = 0
            count = self._expire_all(garbage)
        del garbage
        return count

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        """As ``dict.update``: set each pair of ``other`` (mapping or pairs), then kwargs."""
        if hasattr(other, "keys"):
            for key in other.keys():  # noqa: SIM118 (dict.update calls keys())
                self.set(key, other[key])
        else:
            for key, value in other:
                self.set(key, value)
        for key, value in kwargs.items():
            self.set(key, value)

    def setdefault(self, key: Hashable, default: Any = None) -> Any:
        """The live value under ``key`` (a hit, made MRU), else set ``default`` (a miss)."""
        value = self.get(key, _MISSING)
        if value is not _MISSING:
            return value
        self.set(key, default)
        return default

    # -- pickling ---------------------------------------------------------------------

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle the configuration and the live entries, LRU first, with remaining TTL."""
        with self._lock:
            items = list(self._data.items())
            now: float | None = None
            entries: list[tuple[Hashable, Any, float]] = []
            for key, entry in items:
                if entry.expires is None:
                    entries.append((key, entry.value, math.inf))
                    continue
                if now is None:
                    now = self._timer()
                remaining = entry.expires - now
                if remaining > 0:
                    entries.append((key, entry.value, remaining))
        weigher = self._weigher
        config = {
            "maxsize": self._maxsize,
            "maxbytes": self._maxbytes,
            "weigher": None if weigher is default_weigher else weigher,
            "ttl": self._default_ttl,
            "timer": self._timer_arg,
        }
        state = getattr(self, "__dict__", None) or None
        return (_restore, (type(self), config, entries, state))


# -- memoize --------------------------------------------------------------------------


class _HashedSeq(list[Any]):
    """A key tuple that hashes once (as ``functools._HashedSeq``)."""

    __slots__ = ("hashvalue",)

    def __init__(self, tup: tuple[Any, ...]) -> None:
        self[:] = tup
        self.hashvalue = hash(tup)

    def __hash__(self) -> int:  # type: ignore[override]
        return self.hashvalue


_KWD_MARK = (object(),)
_FASTTYPES = frozenset({int, str})


def _make_key(args: tuple[Any, ...], kwds: dict[str, Any], typed: bool) -> Hashable:
    """The cache key of a call, exactly as ``functools._make_key`` builds it."""
    key = args
    if kwds:
        key += _KWD_MARK
        for item in kwds.items():
            key += item
    if typed:
        key += tuple(type(v) for v in args)
        if kwds:
            key += tuple(type(v) for v in kwds.values())
    elif len(key) == 1 and type(key[0]) in _FASTTYPES:
        return key[0]  # type: ignore[no-any-return]
    return _HashedSeq(key)


class Memoized(Generic[P, R]):
    """A function wrapped by :func:`memoize`: calls are cached on their arguments.

    Behaves like ``functools.lru_cache``'s wrapper: ``cache_info()``, ``cache_clear()``,
    ``cache_parameters()``, ``__wrapped__`` and the attributes ``update_wrapper``
    copies; on a class it binds like a method (the instance is part of the key).
    """

    __wrapped__: Callable[P, R]

    def __init__(
        self,
        func: Callable[P, R],
        maxsize: int | None = 128,
        *,
        ttl: float | None = None,
        typed: bool = False,
        timer: Callable[[], float] | None = None,
    ) -> None:
        """Wrap ``func``; see :func:`memoize` for the parameters."""
        if not callable(func):
            raise TypeError(f"memoize needs a callable, not {type(func).__name__}")
        if maxsize is not None:
            if isinstance(maxsize, bool) or not isinstance(maxsize, int):
                raise TypeError("maxsize must be None or an int")
            if maxsize < 0:
                maxsize = 0
        if timer is not None and not callable(timer):
            raise TypeError(f"timer must be callable or None, not {type(timer).__name__}")
        checked = _check_ttl(ttl, ConfigurationError)
        self._ttl: float | None = None if ttl is None else (math.inf if checked is None else ttl)
        self._func = func
        self._maxsize = maxsize
        self._typed = bool(typed)
        bound = None if maxsize is None else min(maxsize, MAXSIZE_LIMIT)
        self._cache: LocalCache | None = (
            None if maxsize == 0 else LocalCache(bound, ttl=ttl, timer=timer)
        )
        self._misses0 = 0  # misses when nothing is cached (maxsize 0)
        self._lock = threading.Lock()
        update_wrapper(self, func)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Return the cached result for these arguments, or call the function and cache it.

        Exceptions raised by the function propagate and are not cached.
        """
        cache = self._cache
        if cache is None:
            with self._lock:
                self._misses0 += 1
            return self._func(*args, **kwargs)
        key = _make_key(args, kwargs, self._typed)
        result = cache.get(key, _MISSING)
        if result is not _MISSING:
            return result  # type: ignore[no-any-return]
        result = self._func(*args, **kwargs)
        cache.set(key, result)
        return result

    def cache_info(self) -> CacheInfo:
        """``CacheInfo(hits, misses, maxsize, currsize)``, as functools reports it."""
        cache = self._cache
        if cache is None:
            return CacheInfo(0, self._misses0, self._maxsize, 0)
        stats = cache.stats
        return CacheInfo(stats.hits, stats.misses, self._maxsize, stats.currsize)

    def cache_clear(self) -> None:
        """Drop every cached result and zero the counters."""
        cache = self._cache
        with self._lock:
            self._misses0 = 0
        if cache is not None:
            cache.clear()
            cache.reset_stats()

    def cache_parameters(self) -> dict[str, Any]:
        """``{"maxsize": ..., "typed": ..., "ttl": ...}``: a new dict on every call."""
        return {"maxsize": self._maxsize, "typed": self._typed, "ttl": self._ttl}

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        """On an instance, a bound method whose calls pass the instance as first argument."""
        if instance is None:
            return self
        return MethodType(self, instance)

    def __repr__(self) -> str:
        return f"<memoized {self._func!r}>"


@overload
def memoize(maxsize: Callable[P, R], /) -> Memoized[P, R]: ...


@overload
def memoize(
    maxsize: int | None = 128,
    *,
    ttl: float | None = None,
    typed: bool = False,
    timer: Callable[[], float] | None = None,
) -> Callable[[Callable[P, R]], Memoized[P, R]]: ...


def memoize(
    maxsize: Any = 128,
    *,
    ttl: float | None = None,
    typed: bool = False,
    timer: Callable[[], float] | None = None,
) -> Any:
    """Cache a function's results, like ``functools.lru_cache``, optionally with a TTL.

    ``@memoize``, ``@memoize()`` and ``@memoize(maxsize, ttl=..., typed=..., timer=...)``
    all work. ``maxsize=None``: unbounded; 0 or negative: nothing is cached. ``ttl``:
    seconds a result stays cached (``None``: forever). ``typed=True``: arguments of
    different types are cached separately. Exceptions are not cached.
    """
    if callable(maxsize) and not isinstance(maxsize, int):
        return Memoized(maxsize, 128, ttl=ttl, typed=typed, timer=timer)
    if maxsize is not None and (isinstance(maxsize, bool) or not isinstance(maxsize, int)):
        raise TypeError("Expected first argument to be an integer, a callable, or None")
    # validate now, so that a bad decorator argument fails at decoration time
    _check_ttl(ttl, ConfigurationError)
    if timer is not None and not callable(timer):
        raise TypeError(f"timer must be callable or None, not {type(timer).__name__}")

    def decorator(func: Callable[P, R]) -> Memoized[P, R]:
        return Memoized(func, maxsize, ttl=ttl, typed=typed, timer=timer)

    return decorator
