"""The pure-Python twin of the compiled core (``novacache._core``).

It obeys the same contract (``docs/local-cache.md``) and carries the type annotations
that type checkers see for both. It is used on interpreters other than CPython, when
``NOVACACHE_NO_EXTENSIONS`` is set, or when the extension is missing.

Implementation notes:

- A plain ``dict`` maps each key to an ``_Entry`` (key, value, expiry time, weight);
  the entries also form a doubly-linked ring around a sentinel, least-recently-used
  first. Moving, evicting and iterating walk the ring and never compare keys, so a
  key's ``__eq__`` runs only inside a dictionary lookup.
- One ``threading.RLock`` guards the structure. It is re-entrant, so code the cache runs
  (a key's ``__hash__``/``__eq__``, the timer) may use the same cache from the same
  thread. Every mutation bumps a generation counter; an operation that finds it was
  re-entered meanwhile repairs the structure by identity (the dict is the truth; ring
  and ``currbytes`` are rebuilt from it) before it returns.
- Entries leaving the cache are unlinked (so they hold no reference to their
  neighbours) and kept in local variables until the lock is released: a value's
  ``__del__`` runs outside the lock, on a consistent structure.
- The weigher runs before the lock is taken. The timer is read when the compiled core
  reads it, at most once per operation and before anything changes: a write, when the
  entry has a TTL or the cache holds entries with one (``_nttl``); ``pop``, ``del``,
  ``popitem``, snapshots and ``expire``, when it holds such entries; a lookup, when
  the entry found has one. Readings are checked (``_reading``), so a timer that
  returns garbage fails the same calls with the same error in both twins.
- ``len`` counts the ring. Removal runs the key's ``__hash__``/``__eq__`` inside the
  dict (the compiled core removes by identity and never does); if they raise, the entry
  stays in the dict unlinked, invisible to every method, until a repair or a write
  under an equal key drops it (``_drop``).
- Weights lie in ``[0, maxbytes]`` (``[0, sys.maxsize]`` without maxbytes) and so does
  their sum, as in the compiled core, whose counters are C integers.
- ``policy="tinylfu"``: the decisions are the reference's (``_policy_py.TinyLFUPolicy``),
  fed as the compiled core feeds its copy, so both give the same misses. The policy is
  keyed by a ``_PKey`` per key (hash = the key's hash, equality = identity: no user code
  runs in the policy); the ring then only counts and holds the entries, and the order of
  ``keys()`` and ``popitem`` is the policy's (window, probation, protected).
"""

from __future__ import annotations

import math
import operator
import sys
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from functools import update_wrapper
from types import GenericAlias, MethodType
from typing import Any, Generic, ParamSpec, TypeVar, cast, overload

from ._policy_py import TinyLFUPolicy
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

POLICY_MAX_CAPACITY = 2**40
"""The largest ``maxbytes`` accepted with ``policy="tinylfu"`` (as the compiled core)."""

_INF = math.inf
_LATEST = sys.float_info.max
"""The deadline of an entry whose ``now + ttl`` is past the largest float: it expires
only when the timer reads ``inf`` (the compiled core's ``INFINITY`` means no expiry)."""


def default_weigher(key: Hashable, value: Any) -> int:
    """Return ``sys.getsizeof(value)``: the shallow size of the value object in bytes.

    A container counts its own structure, not the objects it holds. The key is ignored.
    """
    return sys.getsizeof(value)


class _Entry:
    """One cached value with its key, absolute expiry time (``None``: never), weight and
    neighbours in the LRU ring (``prev is None``: not linked, i.e. removed); under the
    tinylfu policy, its key's token in the policy (``pk``)."""

    __slots__ = ("expires", "key", "next", "pk", "prev", "value", "weight")

    def __init__(self, key: Any, value: Any, expires: float | None, weight: int) -> None:
        self.key = key
        self.value = value
        self.expires = expires
        self.weight = weight
        self.prev: _Entry | None = None
        self.next: _Entry | None = None
        self.pk: _PKey | None = None


class _PKey:
    """A resident key as the tinylfu policy sees it: hashes as the key (the sketch
    reads ``hash(key)``, as the compiled core reads the stored hash), equal only to
    itself; ``entry`` is the key's current entry (an overwrite hands the token on)."""

    __slots__ = ("entry", "h")

    def __init__(self, h: int, entry: _Entry) -> None:
        self.h = h
        self.entry: _Entry | None = entry

    def __hash__(self) -> int:
        return self.h


def _check_policy(policy: object, maxsize: int | None, maxbytes: int | None) -> None:
    """``policy``: "lru", or "tinylfu" with exactly one of maxsize and maxbytes (its
    one capacity), maxbytes at most 2**40 (as the compiled core)."""
    if not isinstance(policy, str):
        raise TypeError(f"policy must be a str, not {type(policy).__name__}")
    if policy == "lru":
        return
    if policy != "tinylfu":
        raise ConfigurationError(f"unknown policy {policy!r}; choose 'lru' or 'tinylfu'")
    if (maxsize is None) == (maxbytes is None):
        raise ConfigurationError("policy='tinylfu' needs exactly one bound: maxsize or maxbytes")
    if maxbytes is not None and maxbytes > POLICY_MAX_CAPACITY:
        raise ConfigurationError(f"policy='tinylfu' takes maxbytes <= 2**40, got {maxbytes!r}")


def _check_size(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be None or an int, not {type(value).__name__}")
    if value < 1:
        raise ConfigurationError(f"{name} must be >= 1, got {value}")
    return value


def _as_float(value: object, what: str) -> float:
    """``value`` as a float, as C's ``PyFloat_AsDouble`` converts it (what the compiled
    core does): a float as it is, else through ``__float__`` or ``__index__``; a string
    is never parsed. Not a real number: ``TypeError``; no float at all: ``OverflowError``
    (``10**400``) or ``ValueError`` (``Decimal("sNaN")``), which callers turn into a
    ``ValueError`` of their own."""
    if isinstance(value, float):
        return float.__float__(value)  # a subclass's own __float__ is not consulted
    kind = type(value)
    if not (hasattr(kind, "__float__") or hasattr(kind, "__index__")):
        raise TypeError(f"{what}, not {kind.__name__}")
    return float(value)  # type: ignore[arg-type]


def _check_ttl(value: object, error: type[ValueError]) -> float | None:
    """Validate a ttl: ``None``, a real > 0 or ``math.inf``; ``inf`` is returned as None.

    Not a real number (or a ``bool``): ``TypeError``. Zero, negative, NaN or no float at
    all (``10**400``): ``error`` (``ConfigurationError`` for the constructor and
    memoize, ``ValueError`` for ``set``). As the compiled core's ``_ttl_arg``; messages
    show the float, never the caller's object.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError("ttl must be None or a real number, not bool")
    try:
        ttl = _as_float(value, "ttl must be None or a real number")
    except (OverflowError, ValueError):  # 10**400; Decimal("sNaN")
        raise error("ttl is not a number a float can hold") from None
    if math.isnan(ttl) or ttl <= 0:
        raise error(f"ttl must be > 0 (or math.inf for no expiry), got {ttl!r}")
    if math.isinf(ttl):
        return None
    return ttl


def _reading(value: object) -> float:
    """A timer's reading as a finite float (as the compiled core's ``_timer_reading``).

    Not a real number: ``TypeError``; NaN or no float at all (``10**400``): ``ValueError``.
    (``inf`` is a time: every deadline has passed.)
    """
    try:
        now = _as_float(value, "timer must return a real number")
    except (OverflowError, ValueError):  # 10**400; Decimal("sNaN")
        raise ValueError("timer returned a number a float cannot hold") from None
    if math.isnan(now):
        raise ValueError("timer returned nan, not a time")
    return now


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
        "_bytelimit",
        "_count",
        "_currbytes",
        "_data",
        "_default_ttl",
        "_evictions",
        "_expirations",
        "_gen",
        "_hits",
        "_lock",
        "_maxbytes",
        "_maxsize",
        "_misses",
        "_nttl",
        "_policy",
        "_root",
        "_timer",
        "_timer_arg",
        "_until_full_sweep",
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
        policy: str = "lru",
    ) -> None:
        """Build an empty cache.

        ``policy``: ``"lru"`` (exact LRU, the default) or ``"tinylfu"`` (adaptive
        W-TinyLFU, ``docs/policies.md``; needs exactly one of ``maxsize`` and
        ``maxbytes``). Raises ``ConfigurationError`` (a ``ValueError``) for a bad value
        and ``TypeError`` for a wrong type of ``maxsize``, ``maxbytes``, ``weigher``,
        ``ttl``, ``timer`` or ``policy``.
        """
        self._maxsize = _check_size("maxsize", maxsize)
        if self._maxsize is not None and self._maxsize > MAXSIZE_LIMIT:
            raise ConfigurationError(f"maxsize must be <= {MAXSIZE_LIMIT}, got {maxsize}")
        self._maxbytes = _check_size("maxbytes", maxbytes)
        if self._maxbytes is not None and self._maxbytes > sys.maxsize:
            raise ConfigurationError(f"maxbytes is too large: {maxbytes}")
        _check_policy(policy, self._maxsize, self._maxbytes)
        if weigher is not None and not callable(weigher):
            raise TypeError(f"weigher must be callable or None, not {type(weigher).__name__}")
        if timer is not None and not callable(timer):
            raise TypeError(f"timer must be callable or None, not {type(timer).__name__}")
        if weigher is None and self._maxbytes is not None:
            weigher = default_weigher
        self._weigher = weigher
        # The bound on the byte total: maxbytes, or without it the largest total the
        # compiled core's counter holds (a weigher alone only tracks currbytes).
        self._bytelimit: int | None = (
            None if weigher is None else sys.maxsize if maxbytes is None else maxbytes
        )
        self._default_ttl: float | None = _check_ttl(ttl, ConfigurationError)  # inf: None
        self._timer_arg = timer
        self._timer: Callable[[], float] = time.monotonic if timer is None else timer
        self._data: dict[Hashable, _Entry] = {}
        self._root = self._new_root()
        self._lock = threading.RLock()
        self._currbytes = 0
        self._count = 0  # entries linked in the ring: len(self)
        self._hits = 0
        self._misses = 0
        self._evictions = 0
        self._expirations = 0
        self._gen = 0  # bumped by every mutation: detects re-entrant changes
        # Inserts of new keys left until the next full sweep: the entries counted at
        # the last one, plus 16 (counted from then: a cache that grows with every
        # insert is swept in full too).
        self._until_full_sweep = 0
        self._nttl = 0  # linked entries with an expiry time (the compiled core's _nttl)
        self._policy: TinyLFUPolicy | None = None
        if policy == "tinylfu":
            self._policy = self._new_policy()

    def _new_policy(self) -> TinyLFUPolicy:
        """A fresh tinylfu policy: capacity maxsize (an entry weighs 1), or maxbytes (an
        entry weighs its weight; the sketch starts sized for min(maxbytes, 1024)
        entries and grows with the entries held)."""
        if self._maxsize is not None:
            return TinyLFUPolicy(self._maxsize)
        assert self._maxbytes is not None
        return TinyLFUPolicy(self._maxbytes, entries=min(self._maxbytes, 1024))

    @staticmethod
    def _new_root() -> _Entry:
        root = _Entry(None, None, None, 0)
        root.prev = root.next = root
        return root

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
        """The default time-to-live in seconds (a float), or ``None`` for no expiry
        (also when the cache was built with ``ttl=math.inf``)."""
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
    def policy(self) -> str:
        """The eviction policy: ``"lru"`` or ``"tinylfu"``."""
        return "lru" if self._policy is None else "tinylfu"

    @property
    def currsize(self) -> int:
        """The number of entries held (``len(self)``)."""
        return self._count

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
                self._count,
                self._currbytes,
                self._maxsize,
                self._maxbytes,
            )

    def reset_stats(self) -> None:
        """Zero ``hits``, ``misses``, ``evictions`` and ``expirations``."""
        with self._lock:
            self._hits = self._misses = self._evictions = self._expirations = 0

    def __class_getitem__(cls, item: Any) -> GenericAlias:
        """``LocalCache[K, V]`` is allowed at run time (as for the compiled core)."""
        return GenericAlias(cls, item)

    def __repr__(self) -> str:
        """``LocalCache(maxsize=..., maxbytes=..., currsize=...)``: never keys or values."""
        return (
            f"{type(self).__name__}(maxsize={self._maxsize}, maxbytes={self._maxbytes}, "
            f"currsize={self._count})"
        )

    # -- internals: the ring (the lock is held; no user code runs here) ---------------

    def _link(self, entry: _Entry) -> None:
        """Link ``entry`` as most-recently-used and account its weight."""
        root = self._root
        last = root.prev
        assert last is not None
        entry.prev = last
        entry.next = root
        last.next = entry
        root.prev = entry
        self._currbytes += entry.weight
        self._count += 1
        if entry.expires is not None:
            self._nttl += 1

    def _unlink(self, entry: _Entry) -> bool:
        """Take ``entry`` out of the ring (False if it was not in it)."""
        prev, nxt = entry.prev, entry.next
        if prev is None or nxt is None:
            return False
        prev.next = nxt
        nxt.prev = prev
        entry.prev = entry.next = None
        pk = entry.pk
        if pk is not None:  # the tinylfu policy: the key leaves it too
            entry.pk = pk.entry = None
            assert self._policy is not None
            self._policy.remove(pk)
        self._currbytes -= entry.weight
        self._count -= 1
        if entry.expires is not None:
            self._nttl -= 1
        return True

    def _to_mru(self, entry: _Entry) -> None:
        if self._unlink(entry):
            self._link(entry)

    def _touch(self, entry: _Entry) -> None:
        """A counted lookup's hit: MRU (LRU), or the policy's hit."""
        pk = entry.pk
        if pk is None:
            self._to_mru(entry)
        else:
            assert self._policy is not None
            self._policy.hit(pk)

    def _policy_miss(self, key: Hashable) -> None:
        """A counted lookup's miss, told to the tinylfu policy (its shadow may sample
        it), as the compiled core does with the hash it computed."""
        if self._policy is not None:
            self._policy.lookup_miss(hash(key))

    def _ordered(self) -> list[_Entry]:
        """The linked entries in ``keys()`` order: LRU first, or the policy's order."""
        policy = self._policy
        if policy is None:
            return self._entries()
        out: list[_Entry] = []
        for pk in policy:
            entry = cast(_PKey, pk).entry
            if entry is not None and entry.prev is not None:
                out.append(entry)
        return out

    def _policy_first(self) -> _Entry | None:
        """The first linked entry in the policy's order (popitem's), or None."""
        assert self._policy is not None
        for pk in self._policy:
            entry = cast(_PKey, pk).entry
            if entry is not None and entry.prev is not None:
                return entry
        return None

    def _entries(self) -> list[_Entry]:
        """The linked entries, least-recently-used first (a snapshot)."""
        root = self._root
        out: list[_Entry] = []
        node = root.next
        while node is not root and node is not None:
            out.append(node)
            node = node.next
        return out

    def _repair(self, garbage: list[Any]) -> None:
        """Make ring and ``currbytes`` agree with the dict again, by identity only.

        Runs after an operation was re-entered: entries linked but no longer in the dict
        (replaced meanwhile) are unlinked; entries in the dict but unlinked (removed
        meanwhile) leave the dict (see ``_drop``). What is dropped goes to ``garbage``.
        The dict is never rebuilt: that would call every key's ``__hash__`` again.
        """
        for _ in range(3):
            gen = self._gen
            data = self._data
            for entry in [e for e in data.values() if e.prev is None]:
                self._drop(entry)
                garbage.append(entry)
            held = {id(e) for e in data.values()}
            for entry in self._entries():
                if id(entry) not in held:
                    self._unlink(entry)
                    garbage.append(entry)
            linked = self._entries()
            self._currbytes = sum(e.weight for e in linked)
            self._count = len(linked)
            self._nttl = sum(e.expires is not None for e in linked)
            if self._gen == gen:
                return

    def _finish(self, gen: int, garbage: list[Any]) -> None:
        """End of an operation: repair if re-entrant code changed the cache meanwhile."""
        if self._gen != gen:
            self._repair(garbage)

    # -- internals: lookups and removals (user code may run) --------------------------

    def _weigh(self, key: Hashable, value: Any) -> int:
        """The weight of an entry: an int in ``[0, _bytelimit]`` (maxbytes, or
        ``sys.maxsize`` without it). Negative: ``ValueError``; above: ``EntryTooLarge``
        (as the compiled core, whose byte counter is a ``Py_ssize_t``)."""
        weigher = self._weigher
        if weigher is None:
            return 0
        weight = operator.index(weigher(key, value))
        if weight < 0:
            raise ValueError("weigher returned a negative weight")
        limit = self._bytelimit
        if limit is not None and weight > limit:
            raise EntryTooLarge(weight, limit)
        return weight

    def _now(self) -> float:
        """The timer's reading, checked: a finite float (see ``_reading``)."""
        now = self._timer()
        if self._timer_arg is None or (type(now) is float and now == now):
            return now  # time.monotonic(), or a float that is not NaN
        return _reading(now)

    def _expired(self, entry: _Entry, now: float | None = None) -> bool:
        """Whether ``entry`` has expired at ``now``; without ``now`` the timer is read
        (only for an entry with an expiry time)."""
        if entry.expires is None:
            return False
        if now is None:
            now = self._now()
        return now >= entry.expires

    def _remove(self, entry: _Entry) -> bool:
        """Remove ``entry`` from ring and dict; False if it was already removed."""
        if not self._unlink(entry):
            return False
        data = self._data  # _drop(entry), inline: evictions come through here
        key = entry.key
        try:
            if data.get(key) is entry:
                del data[key]
        except Exception:  # the user's key failed: see _drop
            pass
        return True

    def _drop(self, entry: _Entry) -> None:
        """Take an unlinked entry out of the dict, by identity (a newer entry under an
        equal key stays).

        The dict runs the key's ``__hash__``/``__eq__`` (the compiled core removes by
        identity and never does). If that code raises, the entry stays in the dict,
        unlinked: no method sees it (``len`` counts the ring), the next repair or
        insert under an equal key drops it, and the removal still counts as done.
        """
        data = self._data
        key = entry.key
        try:
            if data.get(key) is entry:
                del data[key]
        except Exception:  # the user's key failed: see above
            pass

    def _lookup(self, key: Hashable, garbage: list[Any], now: float | None = None) -> _Entry | None:
        """The live entry under ``key`` or None; reclaims it when expired."""
        entry = self._data.get(key)
        if entry is None or entry.prev is None:
            return None
        if self._expired(entry, now):
            if self._remove(entry):
                self._expirations += 1
                garbage.append(entry)
            return None
        return entry

    def _reclaim(
        self, candidates: list[_Entry], garbage: list[Any], now: float | None = None
    ) -> int:
        """Remove the expired ones among ``candidates`` (the timer, if ``now`` is not
        given, is read before anything is removed)."""
        dead = []
        for entry in candidates:
            if entry.expires is not None:
                if now is None:
                    now = self._now()
                if now >= entry.expires:
                    dead.append(entry)
        count = 0
        for entry in dead:
            if self._remove(entry):
                count += 1
                garbage.append(entry)
        self._expirations += count
        return count

    def _sweep(self, garbage: list[Any], now: float | None) -> None:
        """Examine a few LRU entries for expiry; now and then, all of them (amortised).
        Without ``now`` (the operation did not read the timer) nothing is examined."""
        if now is None:
            return
        self._until_full_sweep -= 1
        if self._until_full_sweep < 0:
            self._reclaim(self._entries(), garbage, now)
            self._until_full_sweep = self._count + 16
            return
        root = self._root
        first: list[_Entry] = []
        node = root.next
        while node is not root and node is not None and len(first) < _SWEEP_STEP:
            first.append(node)
            node = node.next
        self._reclaim(first, garbage, now)

    def _make_room(self, keep: _Entry, garbage: list[Any], now: float | None) -> None:
        """Evict LRU entries (never ``keep``) until both bounds hold. Runs no user code
        but the dict's (``_drop``): an expired victim is told by ``now``, which the
        operation read before it changed anything (``None``: not read, none expired)."""
        maxsize = self._maxsize
        limit = self._bytelimit
        root = self._root
        while (maxsize is not None and self._count > maxsize) or (
            limit is not None and self._currbytes > limit
        ):
            victim = root.next
            if victim is None or victim is root or victim is keep:
                break
            expired = now is not None and self._expired(victim, now)
            if self._remove(victim):
                garbage.append(victim)
                if expired:
                    self._expirations += 1
                else:
                    self._evictions += 1

    def _store(
        self, key: Hashable, value: Any, weight: int, ttl: float | None, now: float | None
    ) -> list[Any]:
        """Insert or overwrite ``key`` as MRU, then make room. Returns the garbage.

        ``now`` is the timer's reading, taken by the caller before anything changed
        when the entry has a ``ttl`` or the cache holds entries with an expiry (the
        timer is not read again: a failing timer cannot leave an insert half done).
        """
        garbage: list[Any] = []
        self._gen += 1
        gen = self._gen
        expires = None if ttl is None or now is None else now + ttl
        if expires == _INF:
            expires = _LATEST  # as the compiled core: the latest deadline, not "never"
        entry = _Entry(key, value, expires, weight)
        data = self._data
        old = data.get(key)
        policy = self._policy
        if old is None or old.prev is None:
            if self._nttl > 0:  # without any expiry there is nothing to sweep for
                self._sweep(garbage, now)
            if policy is not None:
                entry.pk = _PKey(hash(key), entry)
        else:
            entry.key = old.key  # as dict does: an equal key keeps the original key object
            pk = old.pk
            if pk is not None:  # the policy's token passes to the new entry
                old.pk = None
                pk.entry = entry
                entry.pk = pk
        data = self._data
        data[key] = entry
        if old is not None and self._unlink(old):
            garbage.append(old)
        self._link(entry)
        self._finish(gen, garbage)
        if policy is None:
            self._make_room(entry, garbage, now)
        elif entry.pk is not None and entry.prev is not None:
            self._admit(policy, entry, entry.pk, garbage)
        self._finish(gen, garbage)
        return garbage

    def _admit(self, policy: TinyLFUPolicy, entry: _Entry, pk: _PKey, garbage: list[Any]) -> None:
        """The tinylfu policy's insert or update of ``entry``; evict what it evicts
        (maybe ``entry`` itself: a rejected candidate). No user code runs."""
        weight = entry.weight if self._maxsize is None else 1
        evicted = policy.update(pk, weight) if pk in policy else policy.insert(pk, weight)
        for gone in evicted:
            victim = cast(_PKey, gone).entry
            if victim is not None and self._remove(victim):
                self._evictions += 1
                garbage.append(victim)

    def _clock_for(self, ttl: float | None) -> float | None:
        """The timer's reading for a write of an entry with ``ttl``, or ``None``.

        Read when the entry expires or the cache holds entries that do (the sweep and
        eviction need it): the compiled core reads its timer in exactly these cases, so
        a failing timer fails the same calls in both.
        """
        if ttl is not None or self._nttl > 0:
            return self._now()
        return None

    # -- mapping protocol -------------------------------------------------------------

    def __len__(self) -> int:
        """The number of entries held, which may include expired ones not yet reclaimed."""
        return self._count

    def __contains__(self, key: object) -> bool:
        """``True`` for a live entry; no recency change, no hit or miss counted (an
        expired entry found is reclaimed, as by every lookup)."""
        garbage: list[Any] = []
        with self._lock:
            self._gen += 1
            gen = self._gen
            entry = self._lookup(key, garbage)
            self._finish(gen, garbage)
        return entry is not None

    def _counted_lookup(self, key: Hashable) -> _Entry | None:
        """The live entry under ``key`` made MRU and counted as a hit, or ``None``
        counted as a miss. Entries dropped meanwhile are released on return, after
        the lock: before any code the caller runs next.

        The hit is written out inline (no helper calls): this is the twin's hottest
        path. It does what ``_lookup`` + ``_to_mru`` + ``_finish`` do.
        """
        garbage: list[Any] | None = None
        with self._lock:
            self._gen += 1
            gen = self._gen
            entry = self._data.get(key)  # a key's __eq__ may run here
            if entry is None or entry.prev is None:
                entry = None
            elif entry.expires is not None:
                now = self._timer()
                # An injected timer's reading is checked (as by _now()); the default
                # clock's, time.monotonic(), is always a float and never NaN.
                if self._timer_arg is not None and (type(now) is not float or now != now):
                    now = _reading(now)
                if now >= entry.expires:
                    garbage = []
                    if self._remove(entry):
                        self._expirations += 1
                        garbage.append(entry)
                    entry = None
            if entry is None:
                self._misses += 1
                if self._policy is not None:
                    self._policy_miss(key)
            else:
                self._hits += 1
                prev = entry.prev  # None if the timer's code removed it meanwhile
                root = self._root
                if entry.pk is not None:
                    self._policy.hit(entry.pk)  # type: ignore[union-attr]
                elif prev is not None and entry.next is not root:
                    nxt = entry.next
                    assert nxt is not None
                    prev.next = nxt
                    nxt.prev = prev
                    last = root.prev
                    assert last is not None
                    entry.prev = last
                    entry.next = root
                    last.next = entry
                    root.prev = entry
            if self._gen != gen:
                if garbage is None:
                    garbage = []
                self._repair(garbage)
        return entry

    def __getitem__(self, key: Hashable) -> Any:
        """The value of a live entry, made MRU (a hit); ``KeyError(key)`` on a miss."""
        entry = self._counted_lookup(key)
        if entry is None:
            missing = getattr(type(self), "__missing__", None)
            if missing is not None:
                # As dict does: a subclass's __missing__ answers a miss.
                return missing(self, key)
            raise KeyError(key)
        return entry.value

    def get(self, key: Hashable, default: Any = None) -> Any:
        """As ``self[key]``, but return ``default`` on a miss (the miss is counted)."""
        entry = self._counted_lookup(key)
        return default if entry is None else entry.value

    def peek(self, key: Hashable, default: Any = None) -> Any:
        """The value of a live entry without changing recency or counting a hit or miss;
        else ``default`` (an expired entry found is reclaimed, as by every lookup)."""
        garbage: list[Any] = []
        with self._lock:
            self._gen += 1
            gen = self._gen
            entry = self._lookup(key, garbage)
            self._finish(gen, garbage)
        return default if entry is None else entry.value

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
            garbage = self._store(key, value, weight, ttl, self._clock_for(ttl))
        del garbage

    def _pop_entry(self, key: Hashable) -> tuple[_Entry | None, list[Any]]:
        garbage: list[Any] = []
        with self._lock:
            self._gen += 1
            gen = self._gen
            now = self._now() if self._nttl > 0 else None  # first, as the compiled core
            entry = self._lookup(key, garbage, now)
            if entry is not None and not self._remove(entry):
                entry = None
            self._finish(gen, garbage)
        return entry, garbage

    def __delitem__(self, key: Hashable) -> None:
        """Remove ``key``; ``KeyError(key)`` when it is absent or expired."""
        entry, garbage = self._pop_entry(key)
        if entry is None:
            del garbage
            raise KeyError(key)

    def pop(self, key: Hashable, default: Any = _MISSING) -> Any:
        """Remove ``key`` and return its value; absent or expired: ``default``, or
        ``KeyError(key)`` when no default is given. Nothing is counted as a hit or miss.
        """
        entry, garbage = self._pop_entry(key)
        del garbage
        if entry is not None:
            return entry.value
        if default is _MISSING:
            raise KeyError(key)
        return default

    def popitem(self) -> tuple[Any, Any]:
        """Remove and return the least-recently-used live ``(key, value)``.

        Expired entries met on the way are reclaimed. Empty: ``KeyError``.
        """
        garbage: list[Any] = []
        found: _Entry | None = None
        with self._lock:
            self._gen += 1
            gen = self._gen
            # Once, before anything is removed (when the compiled core reads it too).
            now = self._now() if self._nttl > 0 else None
            root = self._root
            while found is None:
                entry = root.next if self._policy is None else self._policy_first()
                if entry is None or entry is root:
                    break
                expired = now is not None and self._expired(entry, now)
                if not self._remove(entry):
                    continue
                garbage.append(entry)
                if expired:
                    self._expirations += 1
                else:
                    found = entry
            self._finish(gen, garbage)
        del garbage
        if found is None:
            raise KeyError("popitem(): cache is empty")
        return found.key, found.value

    def clear(self) -> None:
        """Remove every entry; counters other than currsize/currbytes are kept."""
        with self._lock:
            self._gen += 1
            old_data = self._data
            old = self._entries()
            for entry in old:  # break the ring: entries are freed by refcount alone
                entry.prev = entry.next = None
                if entry.pk is not None:
                    entry.pk.entry = None
                    entry.pk = None
            if self._policy is not None:  # the policy starts afresh, as the core's
                self._policy = self._new_policy()
            self._data = {}
            self._root = self._new_root()
            self._currbytes = 0
            self._count = 0
            self._until_full_sweep = 0
            self._nttl = 0
        del old, old_data  # values' __del__ run here, outside the lock

    def __iter__(self) -> Iterator[Any]:
        """An iterator over a snapshot of the live keys, least-recently-used first."""
        return iter(self.keys())

    def _snapshot(self) -> list[_Entry]:
        with self._lock:
            entries = self._ordered()
            now: float | None = None
            live: list[_Entry] = []
            for entry in entries:
                if entry.expires is not None:
                    if now is None:
                        now = self._now()
                    if now >= entry.expires:
                        continue
                live.append(entry)
            return live

    def keys(self) -> list[Any]:
        """A list of the live keys, least-recently-used first (a snapshot)."""
        return [e.key for e in self._snapshot()]

    def values(self) -> list[Any]:
        """A list of the live values, least-recently-used first (a snapshot)."""
        return [e.value for e in self._snapshot()]

    def items(self) -> list[tuple[Any, Any]]:
        """A list of the live ``(key, value)`` pairs, least-recently-used first."""
        return [(e.key, e.value) for e in self._snapshot()]

    # -- batch operations -------------------------------------------------------------

    def get_many(self, keys: Iterable[Hashable]) -> dict[Any, Any]:
        """``{key: value}`` for the live keys among ``keys``.

        Each key counts a hit or a miss; hits become MRU in the order given.
        """
        keys = list(keys)
        result: dict[Any, Any] = {}
        garbage: list[Any] = []
        with self._lock:
            self._gen += 1
            gen = self._gen
            for key in keys:
                entry = self._lookup(key, garbage)
                if entry is None:
                    self._misses += 1
                    self._policy_miss(key)
                else:
                    self._hits += 1
                    self._touch(entry)
                    result[key] = entry.value
            self._finish(gen, garbage)
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
                garbage.extend(self._store(key, value, weight, ttl, self._clock_for(ttl)))
        del garbage

    def delete_many(self, keys: Iterable[Hashable]) -> int:
        """Remove the given keys that are present; return how many live ones were removed."""
        keys = list(keys)
        garbage: list[Any] = []
        count = 0
        with self._lock:
            self._gen += 1
            gen = self._gen
            for key in keys:
                now = self._now() if self._nttl > 0 else None  # as in _pop_entry
                entry = self._lookup(key, garbage, now)
                if entry is not None and self._remove(entry):
                    garbage.append(entry)
                    count += 1
            self._finish(gen, garbage)
        del garbage
        return count

    def expire(self) -> int:
        """Remove every expired entry; return how many (``expirations`` grows by that)."""
        garbage: list[Any] = []
        with self._lock:
            self._gen += 1
            gen = self._gen
            count = self._reclaim(self._entries(), garbage)
            self._until_full_sweep = self._count + 16
            self._finish(gen, garbage)
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
            now: float | None = None
            entries: list[tuple[Hashable, Any, float]] = []
            for entry in self._ordered():
                if entry.expires is None:
                    entries.append((entry.key, entry.value, math.inf))
                    continue
                if now is None:
                    now = self._now()
                remaining = entry.expires - now
                if remaining > 0:
                    entries.append((entry.key, entry.value, remaining))
        weigher = self._weigher
        config = {
            "maxsize": self._maxsize,
            "maxbytes": self._maxbytes,
            "weigher": None if weigher is default_weigher else weigher,
            "ttl": self._default_ttl,
            "timer": self._timer_arg,
            "policy": self.policy,
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
        policy: str = "lru",
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
        _check_policy(policy, 128 if maxsize == 0 else maxsize, None)
        self._ttl: float | None = None if ttl is None else (math.inf if checked is None else ttl)
        self._func = func
        self._maxsize = maxsize
        self._typed = bool(typed)
        bound = None if maxsize is None else min(maxsize, MAXSIZE_LIMIT)
        self._cache: LocalCache | None = (
            None if maxsize == 0 else LocalCache(bound, ttl=ttl, timer=timer, policy=policy)
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

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> Memoized[P, R]: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> Callable[..., R]: ...

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        """On an instance, a bound method whose calls pass the instance as first argument
        (so the instance is part of the key, as with ``functools.lru_cache``)."""
        if instance is None:
            return self
        return MethodType(self, instance)

    def __reduce__(self) -> str:
        """Pickled by reference to its module-level name, as ``functools.lru_cache``."""
        return str(self.__dict__["__qualname__"])

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
    policy: str = "lru",
) -> Callable[[Callable[P, R]], Memoized[P, R]]: ...


def memoize(
    maxsize: Any = 128,
    *,
    ttl: float | None = None,
    typed: bool = False,
    timer: Callable[[], float] | None = None,
    policy: str = "lru",
) -> Any:
    """Cache a function's results, like ``functools.lru_cache``, optionally with a TTL.

    ``@memoize``, ``@memoize()`` and ``@memoize(maxsize, ttl=..., typed=..., timer=...)``
    all work. ``maxsize=None``: unbounded; 0 or negative: nothing is cached. ``ttl``:
    seconds a result stays cached (``None``: forever). ``typed=True``: arguments of
    different types are cached separately. ``policy``: the cache's eviction policy,
    ``"lru"`` or ``"tinylfu"`` (which needs a maxsize). Exceptions are not cached.
    """
    if callable(maxsize) and not isinstance(maxsize, int):
        return Memoized(maxsize, 128, ttl=ttl, typed=typed, timer=timer, policy=policy)
    if maxsize is not None and (isinstance(maxsize, bool) or not isinstance(maxsize, int)):
        raise TypeError("Expected first argument to be an integer, a callable, or None")
    # validate now, so that a bad decorator argument fails at decoration time
    _check_ttl(ttl, ConfigurationError)
    if timer is not None and not callable(timer):
        raise TypeError(f"timer must be callable or None, not {type(timer).__name__}")
    _check_policy(policy, 128 if maxsize == 0 else maxsize, None)

    def decorator(func: Callable[P, R]) -> Memoized[P, R]:
        return Memoized(func, maxsize, ttl=ttl, typed=typed, timer=timer, policy=policy)

    return decorator
