"""A small circuit breaker shared by the synchronous and the asyncio tiers.

Note that we do not use a library here. ``pybreaker`` is synchronous (its async support
is Tornado-only) and wraps every call in a Python-level decorator with listener
dispatch; ``aiobreaker`` is asyncio-only. We need one breaker object that both twins can
consult, that costs one attribute read on the hot path while closed, and that never
awaits or sleeps: :meth:`CircuitBreaker.allow` and the ``record_*`` methods are plain,
non-blocking calls, so they are safe from threads and from coroutines alike.

The states::

    closed --(threshold failures within window seconds)--> open
    open --(cooldown seconds elapsed)--> half_open (one probe call is let through)
    half_open --(probe succeeds)--> closed
    half_open --(probe fails)--> open (a new cooldown starts)
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Final, Literal

__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "BreakerState", "CircuitBreaker"]

BreakerState = Literal["closed", "open", "half_open"]
CLOSED: Final = "closed"
OPEN: Final = "open"
HALF_OPEN: Final = "half_open"

StateListener = Callable[[BreakerState, BreakerState], None]


class CircuitBreaker:
    """Counts failures of a remote dependency and stops calling it while it is down.

    ``allow()`` says whether a call may go out now; the caller then reports the outcome
    with ``record_success()`` or ``record_failure()``. While the breaker is open,
    ``allow()`` returns ``False`` without any I/O, so callers can fail fast.

    ``on_state_change(old, new)`` is called after every transition (outside the lock);
    an exception raised by it is swallowed, since a metrics hook must never break a
    cache call. The counters (``opened``, ``rejected``, ``failures``) are plain ints
    for metrics to read.

    ``idle`` is ``True`` while the breaker is closed with no failure on record: then
    ``allow()`` is ``True`` and ``record_success()`` changes nothing, so a hot path may
    read the attribute and skip both calls (``if not b.idle and not b.allow()``).
    """

    __slots__ = (
        "_failures",
        "_lock",
        "_opened_at",
        "_probe_in_flight",
        "_state",
        "clock",
        "cooldown",
        "failures",
        "idle",
        "name",
        "on_state_change",
        "opened",
        "rejected",
        "threshold",
        "window",
    )

    def __init__(
        self,
        threshold: int = 5,
        window: float = 10.0,
        cooldown: float = 2.0,
        *,
        name: str = "breaker",
        on_state_change: StateListener | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if threshold < 1:
            raise ValueError(f"threshold must be >= 1, got {threshold!r}")
        if not window > 0 or not cooldown > 0:
            raise ValueError("window and cooldown must be > 0 seconds")
        self.threshold = threshold
        self.window = float(window)
        self.cooldown = float(cooldown)
        self.name = name
        self.on_state_change = on_state_change
        self.clock = clock
        self._state: BreakerState = CLOSED
        self._failures: deque[float] = deque()
        self._opened_at = 0.0
        self._probe_in_flight = False
        self._lock = threading.Lock()
        self.opened = 0  # how many times the breaker opened
        self.rejected = 0  # calls refused while open
        self.failures = 0  # failures recorded in total
        self.idle = True  # closed, no failure on record (read without the lock)

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.name!r} {self._state}>"

    @property
    def state(self) -> BreakerState:
        """The current state; an open breaker whose cooldown is over reads ``half_open``."""
        if self._state == OPEN and self.clock() - self._opened_at >= self.cooldown:
            return HALF_OPEN
        return self._state

    def allow(self) -> bool:
        """Whether a call may go out now. Never blocks, never does I/O.

        Closed: always. Open: no, until the cooldown is over; then exactly one caller
        gets ``True`` (the half-open probe) and the others keep getting ``False`` until
        that probe's outcome is recorded.
        """
        if self._state == CLOSED:
            return True
        return self._allow_slow()

    def _allow_slow(self) -> bool:
        changed: tuple[BreakerState, BreakerState] | None = None
        with self._lock:
            if self._state == CLOSED:
                return True
            if self._state == OPEN and self.clock() - self._opened_at >= self.cooldown:
                changed = (OPEN, HALF_OPEN)
                self._state = HALF_OPEN
                self._probe_in_flight = False
            # Note that a probe whose outcome never arrives (a cancelled coroutine) would
            # keep the breaker half-open forever: after one more cooldown, probe again.
            if self._state == HALF_OPEN and (
                not self._probe_in_flight or self.clock() - self._opened_at >= 2 * self.cooldown
            ):
                if self._probe_in_flight:
                    self._opened_at = self.clock() - self.cooldown
                self._probe_in_flight = True
                allowed = True
            else:
                self.rejected += 1
                allowed = False
        if changed is not None:
            self._notify(*changed)
        return allowed

    def record_success(self) -> None:
        """A call went through: a half-open breaker closes, failure history is forgotten."""
        if self._state == CLOSED and not self._failures:
            return
        changed: tuple[BreakerState, BreakerState] | None = None
        with self._lock:
            if self._state != CLOSED:
                changed = (self._state, CLOSED)
                self._state = CLOSED
            self._probe_in_flight = False
            self._failures.clear()
            self.idle = True
        if changed is not None:
            self._notify(*changed)

    def record_failure(self) -> None:
        """A call failed because the dependency is unhealthy (not because of bad input)."""
        now = self.clock()
        changed: tuple[BreakerState, BreakerState] | None = None
        with self._lock:
            self.idle = False
            self.failures += 1
            if self._state == HALF_OPEN:
                changed = (HALF_OPEN, OPEN)
            elif self._state == CLOSED:
                failures = self._failures
                failures.append(now)
                while failures and now - failures[0] > self.window:
                    failures.popleft()
                if len(failures) >= self.threshold:
                    changed = (CLOSED, OPEN)
            # Already open: a late failure of a call that started before opening.
            if changed is not None:
                self._state = OPEN
                self._opened_at = now
                self._probe_in_flight = False
                self._failures.clear()
                self.opened += 1
        if changed is not None:
            self._notify(*changed)

    def reset(self) -> None:
        """Force the breaker closed and forget every failure (for tests and operators)."""
        self.record_success()

    def _notify(self, old: BreakerState, new: BreakerState) -> None:
        listener = self.on_state_change
        if listener is not None:
            try:
                listener(old, new)
            except Exception:
                pass
