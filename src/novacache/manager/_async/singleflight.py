"""AsyncSingleFlight: one call of a loader per key at a time, its outcome shared.

It keeps one *flight* per key. The first caller (the leader) runs the function; callers
that arrive while it runs wait for its outcome: the same value, or the same exception
raised in each of them. The flight is removed before its waiters are woken, so a caller
arriving after that starts a new one (the manager re-reads the cache first, so it finds
the value).

Note that no lock is held while the function runs: only the bookkeeping of the table of
flights is guarded, so a function may itself use single-flight for other keys (the
re-entrancy that made cachebox deadlock, issue #54). A call for the *same* key from inside
its own flight (same thread or task) would wait for itself forever: it raises
:class:`~novacache.errors.ReentrantLoad` at once instead. A leader that is cancelled
cancels the waiters of its flight too (they see ``CancelledError``).

``AsyncSingleFlight`` serves the tasks of one event loop; ``SingleFlight`` (generated from
it) serves threads.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from ..._concurrency import AsyncFlight, AsyncMutex, async_owner
from ...errors import ReentrantLoad

__all__ = ["AsyncSingleFlight"]

T = TypeVar("T")


class AsyncSingleFlight:
    """Deduplicates concurrent calls per key."""

    __slots__ = ("_flights", "_lock", "leaders", "waiters")

    def __init__(self) -> None:
        self._lock = AsyncMutex()
        self._flights: dict[Hashable, AsyncFlight[Any]] = {}
        self.leaders = 0  # flights run (the function was called this many times)
        self.waiters = 0  # calls that shared another caller's flight

    def in_flight(self, key: Hashable) -> bool:
        """Whether a flight for ``key`` is running now."""
        return key in self._flights

    async def do(self, key: Hashable, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn()`` unless a flight for ``key`` is running; then wait for its outcome.

        Returns ``fn``'s value, or raises its exception, in the leader and in every caller
        that waited for it.
        """
        me = async_owner()
        with self._lock:
            flight: AsyncFlight[Any] | None = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = AsyncFlight(me)
                self.leaders += 1
            elif flight.owner != me:
                self.waiters += 1
        if not leader:
            if flight.owner == me:
                raise ReentrantLoad(f"get_or_load re-entered for the same key {key!r}")
            result: T = await flight.wait()
            return result
        try:
            value = await fn()
        except BaseException as exc:
            flight.fail(exc)
            raise
        else:
            flight.succeed(value)
            return value
        finally:
            with self._lock:
                del self._flights[key]
            flight.release()
