"""``RRCache``: evicts a key picked by a ``choice`` function (random by default)."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

from ._base import Cache

__all__ = ("RRCache",)

_KT = TypeVar("_KT")
_VT = TypeVar("_VT")


class RRCache(Cache[_KT, _VT]):
    """Random Replacement (RR) cache implementation.

    The keys are kept in a list that ``choice`` picks the victim from; a removed key's
    slot is filled with the last key, so removal is O(1) and the list stays dense.
    """

    def __init__(
        self,
        maxsize: float,
        choice: Callable[[Sequence[_KT]], _KT] = random.choice,
        getsizeof: Callable[[_VT], float] | None = None,
    ) -> None:
        Cache.__init__(self, maxsize, getsizeof)
        self.__choice = choice
        self.__keys: list[_KT] = []
        self.__index: dict[_KT, int] = {}

    @property
    def choice(self) -> Callable[[Sequence[_KT]], _KT]:
        """The `choice` function used by the cache."""
        return self.__choice

    def __setitem__(self, key: _KT, value: _VT) -> None:
        dropped: list[object] = []
        with self._novacache_lock:
            self._store(key, value, dropped)
            if key not in self.__index:
                self.__index[key] = len(self.__keys)
                self.__keys.append(key)

    def __delitem__(self, key: _KT) -> None:
        with self._novacache_lock:
            value = self._discard(key)  # noqa: F841 (released after the lock)
            keys = self.__keys
            slot = self.__index.pop(key)
            last = keys.pop()
            if slot < len(keys):
                keys[slot] = last
                self.__index[last] = slot

    def popitem(self) -> tuple[_KT, _VT]:
        """Remove and return a random `(key, value)` pair."""
        with self._novacache_lock:
            keys = self.__keys
            # A custom choice only has to handle non-empty sequences.
            if not keys:
                raise KeyError(f"{type(self).__name__} is empty") from None
            key = self.__choice(keys)
            value = self._fetch(key)
            del self[key]
            return (key, value)

    def clear(self) -> None:
        with self._novacache_lock:
            held = self._clear_store()  # noqa: F841 (released after the lock)
            self.__index.clear()
            self.__keys.clear()

    # Pickled under the names cachetools uses: _RRCache__choice, __keys, __index.

    def _cachetools_state(self) -> dict[str, Any]:
        state = super()._cachetools_state()
        state["_RRCache__keys"] = self.__keys.copy()
        state["_RRCache__index"] = self.__index.copy()
        return state

    def __copy__(self) -> RRCache[_KT, _VT]:
        with self._novacache_lock:
            clone = cast("RRCache[_KT, _VT]", super().__copy__())
            clone.__keys = self.__keys.copy()
            clone.__index = self.__index.copy()
        return clone
