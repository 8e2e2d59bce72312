"""The time-aware base of ``TTLCache`` and ``TLRUCache``, and its freezable timer."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast, overload

from ._base import _MISSING, Cache

if TYPE_CHECKING:
    from typing_extensions import TypeVar as DefaultTypeVar

    _TT = DefaultTypeVar("_TT", default=float)
else:
    _TT = TypeVar("_TT")

__all__ = ("_TimedCache", "_Timer")

_KT = TypeVar("_KT")
_VT = TypeVar("_VT")
_T = TypeVar("_T")


class _Frozen(threading.local):
    """Per-thread state of a timer: how deeply it is frozen, and at what time."""

    depth = 0
    time: Any = None


class _Timer(Generic[_T]):
    """A cache's view of its timer: calling it gives "now", unless it is frozen.

    ``with cache.timer as now:`` freezes "now" for the block (nested blocks keep the
    outer time), so that one operation sees a single time however often it asks.
    Other attributes are those of the wrapped timer (``cache.timer.tick()``).

    Note that the freezing is per thread: cachetools keeps it per cache, which lets
    one thread's block freeze the time another thread sees; in a single thread the
    two are the same.
    """

    def __init__(self, timer: Callable[[], _T]) -> None:
        self.__timer = timer
        self.__frozen = _Frozen()

    def __call__(self) -> _T:
        frozen = self.__frozen
        if frozen.depth:
            return frozen.time  # type: ignore[no-any-return]
        return self.__timer()

    def __enter__(self) -> _T:
        frozen = self.__frozen
        if not frozen.depth:
            frozen.time = self.__timer()
        frozen.depth += 1
        return frozen.time  # type: ignore[no-any-return]

    def __exit__(self, *exc: object) -> None:
        self.__frozen.depth -= 1

    # A copy wraps the same timer but freezes on its own.

    def __copy__(self) -> _Timer[_T]:
        return _Timer(self.__timer)

    def __deepcopy__(self, memo: dict[int, Any]) -> _Timer[_T]:
        # Defined here, or __getattr__ would hand out the timer's own __deepcopy__.
        return _Timer(copy.deepcopy(self.__timer, memo))

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Timer, (self.__timer,))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_Timer__"):  # not initialised (yet)
            raise AttributeError(name)
        return getattr(self.__timer, name)


class _TimedCache(Cache[_KT, _VT], Generic[_KT, _VT, _TT]):
    """Base class for time-aware cache implementations.

    Every operation that may see expired items freezes the timer for its duration,
    so that it sees one "now" from start to end.
    """

    def __init__(
        self,
        maxsize: float,
        timer: Callable[[], _TT],
        getsizeof: Callable[[_VT], float] | None = None,
    ) -> None:
        Cache.__init__(self, maxsize, getsizeof)
        self.__timer: _Timer[_TT] = _Timer(timer)

    @property
    def timer(self) -> _Timer[_TT]:
        """The timer function used by the cache."""
        return self.__timer

    def __repr__(self) -> str:
        with self._novacache_lock, self.__timer as now:
            expired = self.expire(now)  # noqa: F841 (released after the lock)
            return Cache.__repr__(self)

    def __len__(self) -> int:
        with self._novacache_lock, self.__timer as now:
            expired = self.expire(now)  # noqa: F841 (released after the lock)
            return Cache.__len__(self)

    @property
    def currsize(self) -> float:
        """The current size of the cache, once expired items are removed."""
        with self._novacache_lock, self.__timer as now:
            expired = self.expire(now)  # noqa: F841 (released after the lock)
            return super().currsize

    @overload
    def get(self, key: _KT, default: None = None) -> _VT | None: ...
    @overload
    def get(self, key: _KT, default: _VT | _T) -> _VT | _T: ...
    def get(self, key: _KT, default: Any = None) -> Any:
        with self._novacache_lock, self.__timer:
            return Cache.get(self, key, default)

    @overload
    def pop(self, key: _KT) -> _VT: ...
    @overload
    def pop(self, key: _KT, default: _VT | _T) -> _VT | _T: ...
    def pop(self, key: _KT, default: Any = _MISSING) -> Any:
        with self._novacache_lock, self.__timer:
            return Cache.pop(self, key, default)

    @overload
    def setdefault(
        self: _TimedCache[_KT, _T | None, _TT], key: _KT, default: None = None
    ) -> _T | None: ...
    @overload
    def setdefault(self, key: _KT, default: _VT) -> _VT: ...
    def setdefault(self, key: _KT, default: Any = None) -> Any:
        with self._novacache_lock, self.__timer:
            return Cache.setdefault(self, key, default)

    # Note that clear() does not expire first: it stays O(1) in the number of
    # expired items. Subclasses reset their own time-keeping structures too.

    def expire(self, time: _TT | None = None) -> list[tuple[_KT, _VT]]:
        """Remove expired items; return them as ``(key, value)`` pairs."""
        raise NotImplementedError

    def __copy__(self) -> _TimedCache[_KT, _VT, _TT]:
        with self._novacache_lock:
            clone = cast("_TimedCache[_KT, _VT, _TT]", super().__copy__())
            clone.__timer = copy.copy(self.__timer)
        return clone

    def _cachetools_state(self) -> dict[str, Any]:
        state = super()._cachetools_state()
        timer = self.__timer
        if not isinstance(timer, _Timer):
            # The compiled cache's timer view, kept by a cache that moved from the
            # core to this path: pickled as cachetools' timer of the same timer.
            state["_TimedCache__timer"] = _Timer(timer.wrapped)
        return state

    #: cachetools' name for the timer's class (pickles name it so).
    _Timer = _Timer


# Pickled as cachetools names it: ``_TimedCache._Timer``.
_Timer.__qualname__ = "_TimedCache._Timer"
