"""Single-flight: one call of a loader per key at a time, its outcome shared.

:class:`SingleFlight` (threads) and :class:`AsyncSingleFlight` (asyncio tasks) keep one
*flight* per key. The first caller (the leader) runs the function; callers that arrive
while it runs wait for its outcome: the same value, or the same exception raised in each
of them. The flight is removed before its waiters are woken, so a caller arriving after
that starts a new one (the manager re-reads the cache first, so it finds the value).

Note that no lock is held while the function runs: only the bookkeeping of the table of
flights is guarded, so a function may itself use single-flight for other keys (the
re-entrancy that made cachebox deadlock, issue #54). A call for the *same* key from inside
its own flight (same thread, or same task) would wait for itself forever: it raises
:class:`~novacache.errors.ReentrantLoad` at once instead.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

from ..errors import ReentrantLoad

__all__ = ["AsyncSingleFlight", "SingleFlight"]

T = TypeVar("T")


class _Flight(Generic[T]):
    __slots__ = ("done", "error", "owner", "value")

    def __init__(self, owner: object) -> None:
        self.done = threading.Event()
        self.owner = owner
        self.value: T | None = None
        self.error: BaseException | None = None


class SingleFlight:
    """Deduplicates concurrent calls per key across threads."""

    __slots__ = ("_flights", "_lock", "leaders", "waiters")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[Hashable, _Flight[Any]] = {}
        self.leaders = 0  # flights run (the function was called this many times)
        self.waiters = 0  # calls that shared another caller's flight

    def in_flight(self, key: Hashable) -> bool:
        """Whether a flight for ``key`` is running now."""
        return key in self._flights

    def do(self, key: Hashable, fn: Callable[[], T]) -> T:
        """Run ``fn()`` unless a flight for ``key`` is running; then wait for its outcome.

        Returns ``fn``'s value, or raises its exception, in the leader and in every caller
        that waited for it.
        """
        me = threading.get_ident()
        with self._lock:
            flight = self._flights.get(key)
            if flight is None:
                flight = self._flights[key] = _Flight(me)
                self.leaders += 1
                leader = True
            else:
                self.waiters += 1
                leader = False
        if not leader:
            if flight.owner == me:
                raise ReentrantLoad(f"get_or_load re-entered for the same key {key!r}")
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.value  # type: ignore[return-value]
        try:
            value = fn()
        except BaseException as exc:
            flight.error = exc
            raise
        else:
            flight.value = value
            return value
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()


class _AsyncFlight:
    __slots__ = ("future", "owner")

    def __init__(self, future: asyncio.Future[Any], owner: object) -> None:
        self.future = future
        self.owner = owner


class AsyncSingleFlight:
    """Deduplicates concurrent calls per key across the tasks of one event loop.

    A leader that is cancelled cancels the waiters of its flight too (they see
    ``CancelledError``); the next caller starts a new flight.
    """

    __slots__ = ("_flights", "leaders", "waiters")

    def __init__(self) -> None:
        self._flights: dict[Hashable, _AsyncFlight] = {}
        self.leaders = 0
        self.waiters = 0

    def in_flight(self, key: Hashable) -> bool:
        """Whether a flight for ``key`` is running now."""
        return key in self._flights

    async def do(self, key: Hashable, fn: Callable[[], Awaitable[T]]) -> T:
        """Await ``fn()`` unless a flight for ``key`` is running; then await its outcome."""
        me = asyncio.current_task()
        flight = self._flights.get(key)
        if flight is not None:
            if flight.owner is me:
                raise ReentrantLoad(f"get_or_load re-entered for the same key {key!r}")
            self.waiters += 1
            # shield: a waiter that is cancelled must not cancel the shared future
            result: T = await asyncio.shield(flight.future)
            return result
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        flight = self._flights[key] = _AsyncFlight(future, me)
        self.leaders += 1
        try:
            value = await fn()
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)
                # the leader raises it too; mark it retrieved so asyncio does not log it
                # as never retrieved when nobody was waiting
                future.exception()
            raise
        else:
            future.set_result(value)
            return value
        finally:
            del self._flights[key]
