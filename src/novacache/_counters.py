"""Counters that stay exact under threads, with no lock on the counting path.

``x += 1`` on a shared attribute or dict entry is a read, an add and a write: two threads
can read the same value and one increment is lost. Here each thread adds into an array of
its own (found through a :class:`threading.local`), so no two threads ever write the same
slot; a read sums every thread's array. The arrays of threads that ended are folded into
one, so a process that starts many short-lived threads keeps a bounded number of them.

Used by the manager's :class:`~novacache.manager.ManagerStats` and the tiers' error
counters. (The L1 core's own hit and miss counters are C integers updated under the GIL.)
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable
from typing import Any

__all__ = ["Counters", "ThreadArrays"]


class ThreadArrays:
    """``size`` numbers that each thread adds into an array of its own (found through
    ``_local.array``, made by :meth:`_register` on the thread's first add); :meth:`_sums`
    reads the totals. The arrays of threads that ended are folded into ``_retired``.
    The mechanism of :class:`Counters` and of the tiers' pure latency histogram."""

    __slots__ = ("_arrays", "_local", "_lock", "_retired", "_size")

    def __init__(self, size: int) -> None:
        self._size = size
        self._local = threading.local()
        self._lock = threading.Lock()
        self._arrays: list[tuple[weakref.ref[threading.Thread], list[Any]]] = []
        self._retired: list[Any] = [0] * size  # the arrays of threads that ended

    def _register(self) -> list[Any]:
        """The calling thread's array, made on its first count."""
        array: list[Any] = [0] * self._size
        with self._lock:
            self._fold_ended()
            self._arrays.append((weakref.ref(threading.current_thread()), array))
        self._local.array = array
        return array

    def _fold_ended(self) -> None:
        """Add the arrays of threads that ended to ``_retired`` (under ``_lock``)."""
        live = []
        for ref, array in self._arrays:
            thread = ref()
            if thread is None or not thread.is_alive():
                for i, value in enumerate(array):
                    self._retired[i] += value
            else:
                live.append((ref, array))
        self._arrays = live

    def _sums(self) -> list[Any]:
        """Every slot's total over all threads, ended ones included."""
        with self._lock:
            self._fold_ended()
            out = list(self._retired)
            for _, array in self._arrays:
                for i, value in enumerate(array):
                    out[i] += value
        return out


class Counters(ThreadArrays):
    """A fixed set of named integer counters.

    ``add(i, n)`` adds ``n`` to the counter at index ``i`` (its position in ``names``);
    ``counters[name]`` and :meth:`snapshot` read the totals, exact once the threads that
    counted are done.
    """

    __slots__ = ("_index", "_names")

    def __init__(self, names: Iterable[str]) -> None:
        self._names = tuple(names)
        self._index = {name: i for i, name in enumerate(self._names)}
        if len(self._index) != len(self._names):
            raise ValueError("counter names must be unique")
        super().__init__(len(self._names))

    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    def index(self, name: str) -> int:
        """The index of the counter ``name`` (``KeyError`` if there is none)."""
        return self._index[name]

    def add(self, i: int, n: int = 1) -> None:
        """Add ``n`` to the counter at index ``i``."""
        try:
            array: list[int] = self._local.array
        except AttributeError:
            array = self._register()
        array[i] += n

    def add_name(self, name: str, n: int = 1) -> None:
        """Add ``n`` to the counter ``name``."""
        self.add(self._index[name], n)

    def totals(self) -> list[int]:
        """Every counter's total, in the order of ``names``."""
        return self._sums()

    def __getitem__(self, name: str) -> int:
        return self.totals()[self._index[name]]

    def snapshot(self) -> dict[str, int]:
        """``{name: total}`` for every counter."""
        return dict(zip(self._names, self.totals(), strict=True))

    def reset(self) -> None:
        """Every counter back to 0 (counts that race with the reset may survive it)."""
        with self._lock:
            self._retired = [0] * len(self._names)
            for _, array in self._arrays:
                for i in range(len(array)):
                    array[i] = 0

    def __repr__(self) -> str:
        return f"Counters({self.snapshot()!r})"
