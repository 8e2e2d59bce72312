"""The access-pattern tracker behind predictive pre-caching (2.2).

Each read of a resource (a node's capacity, a score) is recorded as a decayed count:
``count * 2 ** (-age / half_life)``. For a resource read at a steady rate ``r`` per
second the count settles at ``r * half_life / ln 2``, so ``rate = count * ln 2 /
half_life`` estimates ``r``, and ``1 - exp(-rate * interval)`` is the probability that
it is read in the next ``interval`` seconds (a Poisson process). Pre-caching loads the
resources whose probability is above a threshold, most probable first, at most a budget
per cycle.

The tracker is bounded: beyond ``max_tracked`` resources the least-read quarter is
forgotten (``evicted`` counts them). It is safe to share between threads.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError

__all__ = ["AccessPattern", "AccessTracker"]

_LN2 = math.log(2.0)


@dataclass(frozen=True, slots=True)
class AccessPattern:
    """A resource worth pre-loading: ``kind`` and ``args`` say which, ``probability``
    how likely a read is in the next interval."""

    kind: str
    args: tuple[Any, ...]
    rate: float
    probability: float


class AccessTracker:
    """Decayed read counts of at most ``max_tracked`` resources."""

    def __init__(
        self,
        max_tracked: int = 4096,
        half_life: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(max_tracked, bool) or not isinstance(max_tracked, int) or max_tracked < 4:
            raise ConfigurationError(f"max_tracked is an int >= 4, not {max_tracked!r}")
        if not (isinstance(half_life, (int, float)) and 0 < half_life < math.inf):
            raise ConfigurationError(f"half_life is seconds > 0, not {half_life!r}")
        self.max_tracked = max_tracked
        self.half_life = float(half_life)
        self.clock = clock
        self.evicted = 0
        self._lock = threading.Lock()
        # (kind, args) -> [decayed count, time of that count]
        self._counts: dict[tuple[str, tuple[Hashable, ...]], list[float]] = {}

    def __len__(self) -> int:
        return len(self._counts)

    def record(self, kind: str, *args: Hashable) -> None:
        """Count one read of the resource ``(kind, *args)``."""
        now = self.clock()
        with self._lock:
            entry = self._counts.get((kind, args))
            if entry is None:
                self._counts[(kind, args)] = [1.0, now]
                if len(self._counts) > self.max_tracked:
                    self._shrink(now)
                return
            entry[0] = entry[0] * 2.0 ** (-(now - entry[1]) / self.half_life) + 1.0
            entry[1] = now

    def _shrink(self, now: float) -> None:
        keep = self.max_tracked * 3 // 4
        ranked = sorted(self._counts.items(), key=lambda item: self._decayed(item[1], now))
        for key, _ in ranked[: len(ranked) - keep]:
            del self._counts[key]
            self.evicted += 1

    def _decayed(self, entry: list[float], now: float) -> float:
        return float(entry[0] * 2.0 ** (-(now - entry[1]) / self.half_life))

    def patterns(self, interval: float, threshold: float = 0.0) -> list[AccessPattern]:
        """The resources whose probability of a read within ``interval`` seconds is above
        ``threshold``, most probable first."""
        now = self.clock()
        with self._lock:
            items = [(key, self._decayed(entry, now)) for key, entry in self._counts.items()]
        out = []
        for (kind, args), count in items:
            rate = count * _LN2 / self.half_life
            probability = 1.0 - math.exp(-rate * interval)
            if probability > threshold:
                out.append(AccessPattern(kind, args, rate, probability))
        out.sort(key=lambda p: p.probability, reverse=True)
        return out
