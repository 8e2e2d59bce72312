"""``LRUCache``, ``FIFOCache`` and ``TTLCache`` on the compiled core: the fast path of
the drop-in.

Each class derives from the core's ``_CachetoolsCore`` (a ``LocalCache`` whose
``c[k]``, ``c[k] = v``, ``del c[k]``, ``in``, ``len``, ``get``, ``pop``,
``setdefault`` and ``clear`` are C slots) and from the pure class it stands for. An
instance is served by one of two paths:

* the core, for exactly the configurations whose behaviour it reproduces: an integer
  ``maxsize >= 1``, no ``getsizeof`` (for ``TTLCache`` also a ``ttl`` exact as a
  double, see :func:`_ttl_serves`), and no hook
  (``popitem``, ``getsizeof``, ``expire``, ``__missing__``, the mapping methods, see
  :mod:`._hooks`) other than the library's, on the instance or its class. The classes
  put the rest of cachetools' behaviour on top: iteration in insertion order (the core
  keeps that order too, in this mode), mapping views, ``repr``, the ``popitem`` error,
  ``FIFOCache``'s "only a write refreshes";
* the general path, for anything else: the pure class's methods run on the instance
  itself (its state in the instance's ``__dict__``), and call each hook exactly where
  cachetools calls it. The C slots hand the call over (one comparison on the core's
  path), and so do the methods here.

The path is decided when the instance is made (``__init__``, ``__setstate__``). The
instance moves to the general path, with its items and their orders, when a hook
appears later (set on the instance, or on a class of the library or of the user, see
:mod:`._fastmeta`), and, for a ``TTLCache`` with a timer of the user's, at the first
time the core cannot compare as Python does (see ``_replay``). Either way an instance
is of its own class: ``type(obj) is Sub``, ``Sub.__init__`` runs once, and what is set
on ``Sub`` later is seen.

A ``TTLCache`` with a timer of the user's calls it where cachetools does, as often
(the core's ``_ct_guarded``). Iterating an ``LRUCache``/``FIFOCache`` goes as a dict's
iterator over cachetools' dict (the core's ``_InsertionIter``). Copies and pickles
keep every order; pickles take cachetools' layout (see :mod:`._base`), whichever path
serves the instance. ``docs/cachetools.md`` says what users see.
"""

from __future__ import annotations

import copyreg
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any, ClassVar, TypeVar

from .._core import LocalCache as _LocalCache
from .._core import (
    _cachetools_mode,
    _cachetools_ttl_mode,
    _CachetoolsCore,
    _ct_begin_move,
    _ct_end_move,
    _ct_guard,
    _ct_install,
    _ct_mode,
    _ct_reset,
    _exact_time,
    _insertion_copy_layout,
    _insertion_iter,
    _insertion_snapshot,
    _ttl_expire,
    _ttl_given,
    _ttl_len,
    _ttl_restore,
    _ttl_state,
    _Unrepresentable,
)
from . import _base, _ordered, _timed, _ttl
from ._base import split_state
from ._fastmeta import Absent, FastMeta, absent
from ._hooks import HOOKS

__all__ = ("FIFOCache", "LRUCache", "TTLCache")

# The compiled LocalCache, whose methods these classes call on themselves (their base,
# though its stub, the pure twin's, says otherwise).
LocalCache: Any = _LocalCache
_NEWOBJ = vars(copyreg)["__newobj__"]  # what pickle writes as NEWOBJ (protocol 2+)

_KT = TypeVar("_KT")
_VT = TypeVar("_VT")

_HOOK_NAMES = frozenset(HOOKS)

# The state the pure classes keep in an instance's __dict__ (dropped when an instance
# goes back to the core, by a second __init__ or a __setstate__).
_PURE_PREFIXES = ("_Cache__", "_KeyOrderCache__", "_TimedCache__", "_TTLCache__")
_PURE_NAMES = frozenset(("_novacache_lock",))


def _resolve(cls: type, name: str) -> Any:
    """What ``name`` is on ``cls``: the first definition in its MRO, undecorated."""
    for klass in cls.__mro__:
        found = vars(klass).get(name, _resolve)
        if found is not _resolve:
            return found
    return None


def _hooked(cache: Any) -> bool:
    """Whether a hook of ``cache`` is not the library's: set on the instance (see
    ``__setattr__``), or resolved on its class (or a mixin) to something else than the
    library class defined. Looked up now, so a class patched after it was made counts.

    (The instance's ``__dict__`` is not read: that would make CPython build it, and a
    method call on an instance whose dict was built is not specialised, 10 ns slower.)
    """
    if cache._novacache_instance_hooks:
        return True
    cls = type(cache)
    original = cls._novacache_hooks
    return any(_resolve(cls, name) is not original[name] for name in HOOKS)


def _forget_general(cache: Any) -> None:
    """Drop the pure classes' state from an instance going back to the core."""
    fields = vars(cache)
    for name in [n for n in fields if n in _PURE_NAMES or n.startswith(_PURE_PREFIXES)]:
        del fields[name]


def _to_general(cache: Any) -> None:
    """Move an instance served by the core to the general path, with its items, their
    orders and its attributes (a hook appeared after it was made; a time came that the
    core cannot take). A TTL cache keeps its timer view, and so its frozen times.

    Other threads' operations on the cache wait until the move is over (and a second
    thread that would move it waits for the first); one already under way in the core
    inside a call to the timer, or to a key's ``__hash__``/``__eq__`` in a TTL write,
    finds the storage dead when it returns and is done again on the general path (the
    core raises ``_Moved``, or ``_ttl_set`` returns 1). Note that one under way inside
    a key's ``__hash__``/``__eq__`` in any other operation completes on the storage the
    move left behind: its effect is lost. A move happens once per instance, on a hook
    set later or a timer's first odd reading, and such a race needs both at once.
    """
    lock = threading.RLock()
    with lock:
        if not _ct_begin_move(cache, lock):
            _ct_mode(cache)  # waits for the thread moving it
            return
        try:
            state = cache._core_state()
            pure = type(cache)._pure
            if isinstance(cache, TTLCache):
                view = LocalCache.timer.__get__(cache)
                writes = _ttl_state(cache)[2]
                _ct_reset(cache, pure)
                pure._load_cachetools_state(cache, state)
                cache._adopt_write_order(writes)
                object.__setattr__(cache, "_TimedCache__timer", view)
            else:
                _ct_reset(cache, pure)
                pure._load_cachetools_state(cache, state)
        finally:
            _ct_end_move(cache)


def _revalidate(cache: Any) -> None:
    """Called by the core, at the next operation of an instance it serves, once a hook
    was set on or deleted from a class: the instance moves if it now has one."""
    if _hooked(cache):
        _to_general(cache)


def _replay(cache: Any, times: tuple[Any, ...], name: str, args: tuple[Any, ...]) -> Any:
    """A TTL cache served by the core met a time it cannot take (``times``: the
    ``args`` of the :class:`_Unrepresentable` raised: a reading of its timer, or a
    time given to ``expire``), or was moved by another thread while it read its timer:
    move it to the general path (if not done), and run its method ``name`` there with
    the timer frozen at that time, which stands for the reading already made
    (cachetools calls the timer once per operation). Without a time, the method reads
    the timer itself."""
    if cache._general is None:
        view = LocalCache.timer.__get__(cache)
        _to_general(cache)
    else:
        view = cache.timer
    method = getattr(cache._pure, name)
    if not times:
        return method(cache, *args)
    view._enter_at(times[0])
    try:
        return method(cache, *args)
    finally:
        view.__exit__(None, None, None)


_ct_install(_revalidate, _replay)


def _restore_fast(cls: Any, maxsize: int, items: list[tuple[Any, Any]], recency: list[Any]) -> Any:
    """Rebuild a fast cache: items in insertion order, then the recency order."""
    cache = cls.__new__(cls)
    cache._to_core()
    LocalCache.__init__(cache, maxsize)
    _cachetools_mode(cache, cls._refresh_on_read)
    _fill(cache, dict(items), recency)
    return cache


def _fill(cache: Any, data: dict[Any, Any], recency: Any) -> None:
    """Store ``data`` (in its order: the insertion order) in an empty cache the core
    serves, then refresh the keys of ``recency``, least recent first."""
    setitem = LocalCache.__setitem__
    for key, value in data.items():
        setitem(cache, key, value)
    for key in recency:
        setitem(cache, key, data[key])


class _FastKeyOrderCache(_CachetoolsCore):
    """The compiled storage with cachetools' key-order behaviour (abstract)."""

    #: The pure class whose behaviour this one reproduces (the general path).
    _pure: ClassVar[Any]
    #: Whether a read hit refreshes an entry (LRU) or only a write does (FIFO).
    _refresh_on_read: ClassVar[bool]
    #: The hooks as the library class defines them (see ``_hooked``).
    _novacache_hooks: ClassVar[dict[str, Any]]
    #: Set on an instance once a hook was set on it.
    _novacache_instance_hooks = False

    def __init__(self, maxsize: int, getsizeof: Callable[[Any], float] | None = None) -> None:
        if getsizeof is None and _fast_serves(maxsize) and not _hooked(self):
            self._to_core()
            LocalCache.__init__(self, maxsize)
            _cachetools_mode(self, type(self)._refresh_on_read)
        else:
            self._to_general()
            self._pure.__init__(self, maxsize, getsizeof)

    def _to_core(self) -> None:
        """Empty the instance for the core to serve (``__init__``, ``__setstate__``)."""
        if self._general is not None:
            _forget_general(self)
        _ct_reset(self)

    def _to_general(self) -> None:
        """Empty the instance for the general path to serve."""
        if self._general is not None:
            _forget_general(self)
        _ct_reset(self, self._pure)

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name in _HOOK_NAMES:
            # A hook on the instance: only the general path calls it.
            object.__setattr__(self, "_novacache_instance_hooks", True)
            if self._general is None and LocalCache.maxsize.__get__(self) is not None:
                _to_general(self)

    # -- what cachetools does differently from LocalCache ---------------------------

    def __iter__(self) -> Iterator[Any]:
        general = _ct_mode(self)
        if general is not None:
            return general.__iter__(self)  # type: ignore[no-any-return]
        return self._core_iter()

    def _core_iter(self) -> Iterator[Any]:
        # As a dict's iterator (cachetools iterates its dict): keys in insertion
        # order, RuntimeError once the cache changed size (or keys) meanwhile.
        return _insertion_iter(self)

    # LocalCache's own API beyond cachetools' is hidden: code that probes for a TTL
    # cache with hasattr(cache, "expire") or "ttl" must not mistake these for one.
    expire = Absent()
    ttl = Absent()
    timer = Absent()
    peek = Absent()
    set = Absent()
    get_many = Absent()
    set_many = Absent()
    delete_many = Absent()
    stats = Absent()
    reset_stats = Absent()
    weigher = Absent()
    maxbytes = Absent()
    currbytes = Absent()
    policy = Absent()

    # Live views and update(), as cachetools has them (LocalCache's are snapshot
    # lists, and its update() would bypass a subclass's __setitem__).
    keys = MutableMapping.keys
    values = MutableMapping.values
    items = MutableMapping.items
    update = MutableMapping.update

    def __dir__(self) -> list[str]:
        cls = type(self)
        return [n for n in object.__dir__(self) if not (n in _ABSENT and absent(cls, n))]

    def __repr__(self) -> str:
        general = _ct_mode(self)
        if general is not None:
            return general.__repr__(self)  # type: ignore[no-any-return]
        data = dict(_insertion_snapshot(self, 2))
        size = LocalCache.__len__(self)  # (a TTL cache expired already: no timer call)
        return f"{type(self).__name__}({data!r}, maxsize={self.maxsize!r}, currsize={size!r})"

    def popitem(self) -> tuple[Any, Any]:
        """Remove and return the `(key, value)` pair the policy evicts next."""
        general = _ct_mode(self)
        if general is not None:
            return general.popitem(self)  # type: ignore[no-any-return]
        try:
            return LocalCache.popitem(self)  # type: ignore[no-any-return]
        except KeyError:
            raise KeyError(f"{type(self).__name__} is empty") from None

    @property
    def maxsize(self) -> Any:
        """The maximum size of the cache."""
        general = _ct_mode(self)
        if general is not None:
            return _base.Cache.maxsize.__get__(self)
        return LocalCache.maxsize.__get__(self)

    @property
    def currsize(self) -> Any:
        """The current size of the cache."""
        general = _ct_mode(self)
        if general is not None:
            return general.currsize.__get__(self)
        return len(self)

    # -- copies and pickles -------------------------------------------------------
    #
    # Note that a copy shares the instance attributes with its source, as the pure
    # classes' copies do, but not the entries and their orders.

    def __copy__(self) -> Any:
        general = _ct_mode(self)
        if general is not None:
            return general.__copy__(self)
        clone = self._restore(*self._rebuild_args())
        if not isinstance(clone, TTLCache):
            # Iterating the copy goes as cachetools' copied dict would.
            _insertion_copy_layout(clone, self)
        clone.__dict__.update(self.__dict__)
        return clone

    def _novacache_blank(self) -> Any:
        """An uninitialised instance of this class, on the general path (the pure
        classes' ``__copy__`` fills it)."""
        cls = type(self)
        clone = cls.__new__(cls)
        _ct_reset(clone, self._general)
        return clone

    def __reduce__(self) -> tuple[Any, ...]:
        # cachetools' pickle: the class, then its instance __dict__ as state (with
        # copyreg.__newobj__ at every protocol: object.__new__ cannot make these).
        return (_NEWOBJ, (type(self),), self.__getstate__())

    def __getstate__(self) -> dict[str, Any]:
        general = _ct_mode(self)
        if general is not None:
            return general.__getstate__(self)  # type: ignore[no-any-return]
        return self._core_state()

    def __setstate__(self, state: Any) -> None:
        fields, slots = split_state(state)
        if not self._core_load(fields):
            self._to_general()
            self._pure.__setstate__(self, state)
            return
        for name, value in slots.items():
            setattr(self, name, value)

    #: Rebuilds an instance from ``_rebuild_args()`` (for copies).
    _restore = staticmethod(_restore_fast)

    def _rebuild_args(self) -> tuple[Any, ...]:
        return (type(self), self.maxsize, _insertion_snapshot(self, 2), self._recency())

    def _recency(self) -> list[Any]:
        """Keys from least to most recently refreshed."""
        return LocalCache.keys(self)  # type: ignore[no-any-return]

    def _core_state(self) -> dict[str, Any]:
        """cachetools' state of an instance the core serves."""
        state = dict(self.__dict__)
        items = _insertion_snapshot(self, 2)
        state["_Cache__data"] = dict(items)
        state["_Cache__currsize"] = len(items)
        state["_Cache__maxsize"] = LocalCache.maxsize.__get__(self)
        state[self._pure._CACHETOOLS_ORDER] = OrderedDict.fromkeys(self._recency())
        return state

    def _core_load(self, fields: dict[str, Any]) -> bool:
        """Load a state in cachetools' layout onto the core, if it serves it; else
        False (and nothing done). ``fields`` is the caller's copy."""
        order_name = self._pure._CACHETOOLS_ORDER
        maxsize = fields.get("_Cache__maxsize")
        data = fields.get("_Cache__data")
        order = fields.get(order_name)
        if not (
            _state_serves(self, fields, maxsize, data)
            and isinstance(order, dict)
            and len(order) == len(data)  # type: ignore[arg-type]
            and all(key in data for key in order)  # type: ignore[operator]
        ):
            # (A NaN key, say, comes back as two objects that are not equal: the
            # general path keeps the state as cachetools does.)
            return False
        self._to_core()
        LocalCache.__init__(self, maxsize)
        _cachetools_mode(self, type(self)._refresh_on_read)
        for name in ("_Cache__data", "_Cache__currsize", "_Cache__maxsize", order_name):
            del fields[name]
        _fill(self, data, order)  # type: ignore[arg-type]
        _set_attributes(self, fields)
        return True


def _set_attributes(cache: Any, fields: dict[str, Any]) -> None:
    """Set a loaded instance's own attributes (one by one: see ``_hooked``)."""
    for name, value in fields.items():
        if type(name) is str:
            object.__setattr__(cache, name, value)
        else:
            cache.__dict__[name] = value


def _state_serves(cache: Any, fields: dict[str, Any], maxsize: Any, data: Any) -> bool:
    """The checks every fast class makes of a state before the core takes it: a maxsize
    it serves, at least as many slots as items, and no size or hook that only the
    general path honours."""
    return (
        _fast_serves(maxsize)
        and type(data) is dict
        and len(data) <= maxsize
        and fields.get("_Cache__currsize") == len(data)
        and "_Cache__size" not in fields
        and _HOOK_NAMES.isdisjoint(fields)
        and not _hooked(cache)
    )


def _fast_serves(maxsize: Any) -> bool:
    return type(maxsize) is int and 1 <= maxsize <= 2**31 - 2


def _ttl_serves(maxsize: Any, ttl: Any, timer: Any) -> bool:
    """``TTLCache`` arguments the compiled core serves: a ``ttl`` that is an int or
    float exact as a double, and a timer. The default clock is read in C; another
    timer is called where cachetools calls it, and its first reading the core cannot
    take exactly (not a finite float, nor an int below 2**53) moves the cache to the
    general path (see ``_replay``). (With a timer of the user's, a ``ttl`` of
    ``math.inf`` takes the general path: the core would not call the timer for
    items that never expire, and cachetools does.)"""
    if not (_fast_serves(maxsize) and _exact_time(ttl) and callable(timer)):
        return False
    return timer is time.monotonic or math.isfinite(ttl)


def _ttl_core_mode(cache: Any, timer: Any, ttl: Any) -> None:
    _cachetools_ttl_mode(cache, timer, ttl)
    if timer is not time.monotonic:
        _ct_guard(cache)


def _finite_time(t: Any) -> bool:
    """A time the core takes from a timer of the user's (see ``_as_seconds``)."""
    return bool(_exact_time(t)) and math.isfinite(t)


class LRUCache(_FastKeyOrderCache, _ordered.LRUCache[_KT, _VT], metaclass=FastMeta):
    """Least Recently Used (LRU) cache implementation."""

    _pure = _ordered.LRUCache
    _refresh_on_read = True


class FIFOCache(_FastKeyOrderCache, _ordered.FIFOCache[_KT, _VT], metaclass=FastMeta):
    """First In First Out (FIFO) cache implementation."""

    _pure = _ordered.FIFOCache
    _refresh_on_read = False


def _restore_ttl(
    cls: Any, maxsize: int, ttl: Any, timer: Any, state: tuple[list[Any], list[Any], list[Any]]
) -> Any:
    """Rebuild a fast TTLCache (a copy): items in insertion order with their deadlines,
    then the recency and write orders. (As cachetools' copy, nothing expires.)"""
    cache = cls.__new__(cls)
    cache._to_core()
    LocalCache.__init__(cache, maxsize)
    _ttl_core_mode(cache, timer, ttl)
    _ttl_restore(cache, *state)
    return cache


class TTLCache(_FastKeyOrderCache, _ttl.TTLCache[_KT, _VT, Any], metaclass=FastMeta):
    """LRU Cache implementation with per-item time-to-live (TTL) value."""

    _pure = _ttl.TTLCache
    _refresh_on_read = True
    _restore = staticmethod(_restore_ttl)  # type: ignore[assignment]

    def __init__(
        self,
        maxsize: int,
        ttl: Any,
        timer: Callable[[], Any] = time.monotonic,
        getsizeof: Callable[[Any], float] | None = None,
    ) -> None:
        if getsizeof is None and _ttl_serves(maxsize, ttl, timer) and not _hooked(self):
            self._to_core()
            LocalCache.__init__(self, maxsize)
            _ttl_core_mode(self, timer, ttl)
        else:
            self._to_general()
            self._pure.__init__(self, maxsize, ttl, timer, getsizeof)

    # The core keeps expired items until an expire, as cachetools does: reads report
    # them missing (c[k] still refreshes the key first), and every write, len(),
    # currsize, repr and popitem() expires first.

    @property
    def timer(self) -> Any:
        """The timer function used by the cache (``with cache.timer as now:`` freezes
        it, per thread)."""
        general = _ct_mode(self)
        if general is not None:
            return _timed._TimedCache.timer.__get__(self)
        return LocalCache.timer.__get__(self)

    @property
    def ttl(self) -> Any:
        """The time-to-live value of the cache's items."""
        general = _ct_mode(self)
        if general is not None:
            return _ttl.TTLCache.ttl.__get__(self)
        return _ttl_given(self)

    # Note that each method the core serves here catches _Unrepresentable: a time the
    # core cannot take moves the cache to the general path, which does the operation
    # (see _replay).

    def expire(self, time: Any = None) -> list[tuple[Any, Any]]:
        """Remove expired items from the cache and return an iterable of the
        expired `(key, value)` pairs.

        """
        general = _ct_mode(self)
        if general is not None:
            return general.expire(self, time)  # type: ignore[no-any-return]
        try:
            return _ttl_expire(self, time)
        except _Unrepresentable as exc:
            return _replay(self, exc.args, "expire", (time,))  # type: ignore[no-any-return]

    def __len__(self) -> int:
        general = _ct_mode(self)
        if general is not None:
            return general.__len__(self)  # type: ignore[no-any-return]
        try:
            return _ttl_len(self)
        except _Unrepresentable as exc:
            return _replay(self, exc.args, "__len__", ())  # type: ignore[no-any-return]

    @property
    def currsize(self) -> Any:
        """The current size of the cache, once expired items are removed."""
        general = _ct_mode(self)
        if general is not None:
            return general.currsize.__get__(self)
        try:
            return _ttl_len(self)
        except _Unrepresentable as exc:
            return _replay(self, exc.args, "__len__", ())

    def popitem(self) -> tuple[Any, Any]:
        """Remove and return the `(key, value)` pair least recently used that
        has not already expired.

        """
        general = _ct_mode(self)
        if general is not None:
            return general.popitem(self)  # type: ignore[no-any-return]
        view = LocalCache.timer.__get__(self)
        try:
            with view:  # one reading, as cachetools (even when the cache is empty)
                return LocalCache.popitem(self)  # type: ignore[no-any-return]
        except _Unrepresentable as exc:
            return _replay(self, exc.args, "popitem", ())  # type: ignore[no-any-return]
        except KeyError:
            raise KeyError(f"{type(self).__name__} is empty") from None

    def _core_iter(self) -> Iterator[Any]:
        # A snapshot of the keys, in insertion order: storing or deleting while
        # iterating does not raise as for a dict, since items expire meanwhile anyway.
        # As cachetools, one "now" per step, frozen until the next.
        keys = _insertion_snapshot(self, 0)
        view = LocalCache.timer.__get__(self)
        for i, key in enumerate(keys):
            if _ct_mode(self) is not None:  # moved to the general path meanwhile
                yield from self._pure._iter_keys(self, keys[i:])
                return
            with view:
                try:
                    live = LocalCache.__contains__(self, key)
                except _Unrepresentable:
                    _to_general(self)  # its timer is this view, frozen at that time
                    live = self._pure._live(self, key)
                if live:
                    yield key

    def __repr__(self) -> str:
        if _ct_mode(self) is None:
            try:
                _ttl_len(self)
            except _Unrepresentable as exc:
                return _replay(self, exc.args, "__repr__", ())  # type: ignore[no-any-return]
        return _FastKeyOrderCache.__repr__(self)

    def _rebuild_args(self) -> tuple[Any, ...]:
        view: Any = LocalCache.timer.__get__(self)
        return (type(self), self.maxsize, _ttl_given(self), view.wrapped, _ttl_state(self))

    def _core_state(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        items, recency, _ = _ttl_state(self)
        view: Any = LocalCache.timer.__get__(self)
        link = _ttl.TTLCache._Link
        deadlines = {key: deadline for key, _, deadline in items}
        state["_Cache__data"] = {key: value for key, value, _ in items}
        state["_Cache__currsize"] = len(items)
        state["_Cache__maxsize"] = LocalCache.maxsize.__get__(self)
        state["_TimedCache__timer"] = _timed._Timer(view.wrapped)
        state["_TTLCache__root"] = link()
        state["_TTLCache__links"] = OrderedDict((key, link(key, deadlines[key])) for key in recency)
        state["_TTLCache__ttl"] = _ttl_given(self)
        return state

    def _core_load(self, fields: dict[str, Any]) -> bool:
        maxsize = fields.get("_Cache__maxsize")
        data = fields.get("_Cache__data")
        links = fields.get("_TTLCache__links")
        ttl = fields.get("_TTLCache__ttl")
        timer: Any = getattr(fields.get("_TimedCache__timer"), "_Timer__timer", None)
        exact = _exact_time if timer is time.monotonic else _finite_time
        if not (
            _state_serves(self, fields, maxsize, data)
            and isinstance(links, dict)
            and len(links) == len(data)  # type: ignore[arg-type]
            and all(key in links and exact(links[key].expires) for key in data)  # type: ignore[union-attr]
            and all(key in data for key in links)  # type: ignore[operator]
            and _ttl_serves(maxsize, ttl, timer)
        ):
            return False
        self._to_core()
        LocalCache.__init__(self, maxsize)
        _ttl_core_mode(self, timer, ttl)
        for name in (
            "_Cache__data",
            "_Cache__currsize",
            "_Cache__maxsize",
            "_TimedCache__timer",
            "_TTLCache__root",
            "_TTLCache__links",
            "_TTLCache__ttl",
        ):
            fields.pop(name, None)
        # As cachetools loads it: the expiry order from the times (ties in recency
        # order), then expire what is due.
        items = [(key, value, links[key].expires) for key, value in data.items()]  # type: ignore[union-attr]
        writes = sorted(links, key=lambda key: links[key].expires)
        _ttl_restore(self, items, list(links), writes)
        _set_attributes(self, fields)
        self.expire(LocalCache.timer.__get__(self)())  # as cachetools: expire(timer())
        return True


_ABSENT = frozenset(
    name for name, value in vars(_FastKeyOrderCache).items() if isinstance(value, Absent)
)

for _fast_class in (LRUCache, FIFOCache, TTLCache):
    # The hooks as the library defines them: a subclass (or a later patch) that
    # resolves one to anything else is served by the general path.
    _fast_class._novacache_hooks = {name: _resolve(_fast_class, name) for name in HOOKS}
del _fast_class
