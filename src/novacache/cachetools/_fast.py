"""``LRUCache`` and ``FIFOCache`` on the compiled core: the fast path of the drop-in.

The compiled ``LocalCache`` already is an LRU mapping whose ``c[k]``, ``c[k] = v``,
``del c[k]``, ``in``, ``len`` and ``get`` are C slots. These classes put the rest of
cachetools' behaviour on top of it: iteration in insertion order (the core keeps that
order too, in this mode), mapping views, ``repr``, the ``popitem`` error, copies and
pickles that keep both orders, and ``FIFOCache``'s "only a write refreshes".

The fast path serves exactly the configurations whose behaviour it reproduces: the
library class itself, or a subclass that overrides none of the hooks (``popitem``,
``getsizeof``, ``__missing__``, the mapping methods, see :mod:`._hooks`), with an
integer ``maxsize >= 1`` and no ``getsizeof``. Anything else gets the general path: the
pure classes' methods, put onto the class (for a subclass, when it is created; for an
instance with other arguments, through a derived class made once per class). So a
hook a user overrides is called exactly where cachetools calls it.
"""

from __future__ import annotations

from abc import ABCMeta
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any, ClassVar, TypeVar

from .._core import LocalCache, _cachetools_mode, _insertion_snapshot
from . import _base, _ordered

__all__ = ("FIFOCache", "LRUCache")

_KT = TypeVar("_KT")
_VT = TypeVar("_VT")


class _FastMeta(ABCMeta):
    """Creates a user's subclass of a fast class on the pure class instead.

    Note that a subclass may override any method and call ``super()``: only the pure
    classes call the hooks where cachetools does, so a subclass always gets the pure
    class as its base. The pure class is registered as a virtual subclass of the fast
    one, so ``isinstance`` and ``issubclass`` answer as the user expects.
    """

    #: On each fast class: the pure class it stands for.
    _pure: type

    def __new__(mcls, name: str, bases: tuple[type, ...], ns: dict[str, Any], **kw: Any) -> Any:
        if ns.get("__module__") == __name__ or not any(isinstance(b, _FastMeta) for b in bases):
            return super().__new__(mcls, name, bases, ns, **kw)
        pure_bases = tuple(b._pure if isinstance(b, _FastMeta) else b for b in bases)
        return ABCMeta(name, pure_bases, ns, **kw)


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

    def __new__(cls, maxsize: Any = 1, getsizeof: Callable[[Any], float] | None = None) -> Any:
        if _fast_serves(maxsize, getsizeof):
            return LocalCache.__new__(cls)
        # Sizes, a float or zero maxsize: the pure class's exact behaviour.
        return cls._pure(maxsize, getsizeof)

    def __init__(self, maxsize: int, getsizeof: Callable[[Any], float] | None = None) -> None:
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
        clone = _restore_fast(*self._rebuild_args())
        clone.__dict__.update(self.__dict__)
        return clone

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore_fast, self._rebuild_args(), self.__dict__ or None)

    def _rebuild_args(self) -> tuple[Any, ...]:
        return (type(self), self.maxsize, _insertion_snapshot(self, 2), self._recency())

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def _recency(self) -> list[Any]:
        """Keys from least to most recently refreshed."""
        return LocalCache.keys(self)


def _fast_serves(maxsize: Any, getsizeof: Any) -> bool:
    return getsizeof is None and type(maxsize) is int and 1 <= maxsize <= 2**31 - 2


class LRUCache(_FastKeyOrderCache, MutableMapping[_KT, _VT], metaclass=_FastMeta):
    """Least Recently Used (LRU) cache implementation."""

    _pure = _ordered.LRUCache
    _refresh_on_read = True


class FIFOCache(_FastKeyOrderCache, MutableMapping[_KT, _VT], metaclass=_FastMeta):
    """First In First Out (FIFO) cache implementation."""

    _pure = _ordered.FIFOCache
    _refresh_on_read = False


# Note that the fast classes do not inherit from the pure ones (a user's subclass is
# made on the pure class, see _FastMeta), so both sides are made each other's virtual
# subclasses: isinstance() and issubclass() answer as with one class.
for _fast_class in (LRUCache, FIFOCache):
    _fast_class.register(_fast_class._pure)
    _base.Cache.register(_fast_class)
del _fast_class
