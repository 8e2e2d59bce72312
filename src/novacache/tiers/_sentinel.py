"""Sentinel clients that remember the last ``+switch-master`` they were told about.

Why: after a failover, the sentinel that led it knows the new master at once, while the
others learn it from the hello channel up to a few seconds later; meanwhile the old
master still takes writes (measured: ~11 s) and then throws them away. redis-py asks the
sentinels in turn and takes the first answer, so a reconnect that reaches a sentinel
which has not heard yet goes back to the old master. The failover watch records the
switch here, and for a short window an answer naming the retired master is replaced by
the announced one.

The window is bounded (:data:`SWITCH_WINDOW`) so that a second failover missed by the
watch (its connection lost) cannot pin the tier to a demoted node for long: the worst
case is writes refused as read-only for the rest of the window, never a lost one.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio.sentinel
import redis.sentinel

__all__ = ["SWITCH_WINDOW", "AsyncWatchedSentinel", "Switch", "SwitchMemory", "WatchedSentinel"]

#: Seconds during which an answer naming the retired master is corrected.
SWITCH_WINDOW = 30.0

Address = tuple[str, int]


@dataclass(frozen=True)
class Switch:
    """One ``+switch-master`` announcement: the service moved from ``old`` to ``new``."""

    service: str
    old: Address
    new: Address

    @classmethod
    def parse(cls, data: bytes | str) -> Switch | None:
        """Parse ``"<name> <old ip> <old port> <new ip> <new port>"``; ``None`` if the
        message has another shape."""
        text = data.decode(errors="replace") if isinstance(data, bytes) else data
        parts = text.split()
        if len(parts) != 5 or not parts[2].isdigit() or not parts[4].isdigit():
            return None
        return cls(parts[0], (parts[1], int(parts[2])), (parts[3], int(parts[4])))


class SwitchMemory:
    """The latest switch per service, forgotten after :data:`SWITCH_WINDOW` seconds."""

    def __init__(self, window: float = SWITCH_WINDOW) -> None:
        self.window = window
        self._lock = threading.Lock()
        self._latest: dict[str, tuple[Switch, float]] = {}
        #: How many answers were corrected (a sentinel still naming the old master).
        self.corrections = 0
        self._now = time.monotonic

    def note(self, switch: Switch) -> None:
        with self._lock:
            self._latest[switch.service] = (switch, self._now() + self.window)

    def correct(self, service: str, address: tuple[Any, Any]) -> tuple[Any, Any]:
        """Return ``address``, or the announced new master if ``address`` is the master
        retired by a switch announced less than :data:`SWITCH_WINDOW` seconds ago."""
        with self._lock:
            entry = self._latest.get(service)
            if entry is None:
                return address
            switch, until = entry
            if self._now() >= until:
                del self._latest[service]
                return address
        if (str(address[0]), int(address[1])) != switch.old:
            return address
        self.corrections += 1
        return switch.new


class WatchedSentinel(redis.sentinel.Sentinel):
    """:class:`redis.sentinel.Sentinel` whose master discovery honours a recent switch."""

    # Note that the base methods are called by their qualified names, not through
    # super(): redis-py annotates them in some releases and not in others, and mypy
    # accepts an unannotated callee only when it can name it (``untyped_calls_exclude``).
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        redis.sentinel.Sentinel.__init__(self, *args, **kwargs)
        self.switches = SwitchMemory()

    def discover_master(self, service_name: str) -> tuple[Any, Any]:
        found = redis.sentinel.Sentinel.discover_master(self, service_name)
        return self.switches.correct(service_name, found)


class AsyncWatchedSentinel(redis.asyncio.sentinel.Sentinel):
    """The asyncio twin of :class:`WatchedSentinel`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        redis.asyncio.sentinel.Sentinel.__init__(self, *args, **kwargs)
        self.switches = SwitchMemory()

    async def discover_master(self, service_name: str) -> tuple[Any, Any]:
        found = await super().discover_master(service_name)
        return self.switches.correct(service_name, found)
