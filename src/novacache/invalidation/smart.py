"""Smart invalidation: which invalidated keys to reload in place instead of dropping.

The manager tells the engine about every ``get_or_load`` (and so ``@cached``) call that
missed L1, with its loader, and how long each load took. Note that L1 hits are not seen
(the hit path stays untouched): a key refreshed in place is dropped from the L1s (the
write that refreshes it announces it on the bus), so each process's next read misses L1
once and is counted. The tracker keeps, per key, a decayed access count (half-life
``horizon`` seconds: an estimate of the reads per second) and the loader's cost (an
exponential average of its seconds); it holds at most ``max_tracked`` keys (least
recently read out first): no per-key history grows.

Decision, for an invalidated key the tracker knows: reload when

    rate * horizon * miss_cost  >=  cost_weight * loader_cost     and   rate >= min_rate

that is, when the readers expected over the next ``horizon`` seconds, each sparing a
miss that costs ``miss_cost`` (default: the loader's cost, the wait of a reader), save
more than ``cost_weight`` loads cost. Otherwise (cold, unknown, or no loader) the key is
dropped. :meth:`SmartRefresh.decide` can be overridden.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import ConfigurationError

__all__ = ["SmartRefresh", "Tracked"]

_LN2 = math.log(2.0)


class Tracked:
    """What the tracker knows of one key (constant size)."""

    __slots__ = ("cost", "count", "epoch", "last", "loader", "tags", "ttl")

    def __init__(self, loader: Any, ttl: float | None, tags: tuple[str, ...], now: float) -> None:
        self.loader = loader
        self.ttl = ttl
        self.tags = tags
        self.count = 0.0
        self.last = now
        self.cost: float | None = None
        self.epoch = 0


class SmartRefresh:
    """The smart strategy's tracker, cost model and refresh bounds (see the module
    docstring).

    :param max_tracked: keys tracked at most.
    :param horizon: seconds: the half-life of the access counts and the look-ahead of
        the benefit.
    :param cost_weight: how many loads one reload must be worth.
    :param min_rate: reads per second below which a key is always cold.
    :param miss_cost: ``miss_cost(key)`` in seconds (default: the loader's cost).
    :param workers: reloads running at once.
    :param max_pending: reloads queued or running at most; a hot key beyond that is
        dropped (counted ``refresh_overflow``).
    """

    def __init__(
        self,
        *,
        max_tracked: int = 10_000,
        horizon: float = 10.0,
        cost_weight: float = 2.0,
        min_rate: float = 0.1,
        miss_cost: Callable[[str], float] | None = None,
        workers: int = 4,
        max_pending: int = 256,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for name, value in (("max_tracked", max_tracked), ("workers", workers),
                            ("max_pending", max_pending)):  # fmt: skip
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"{name} must be an int >= 1, not {value!r}")
        for name, x in (("horizon", horizon), ("cost_weight", cost_weight)):
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not 0 < x < math.inf:
                raise ConfigurationError(f"{name} must be a finite number > 0, not {x!r}")
        if isinstance(min_rate, bool) or not isinstance(min_rate, (int, float)) or min_rate < 0:
            raise ConfigurationError(f"min_rate must be a number >= 0, not {min_rate!r}")
        self.max_tracked = max_tracked
        self.horizon = float(horizon)
        self.cost_weight = float(cost_weight)
        self.min_rate = float(min_rate)
        self.miss_cost = miss_cost
        self.workers = workers
        self.max_pending = max_pending
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: OrderedDict[str, Tracked] = OrderedDict()

    def __len__(self) -> int:
        return len(self._keys)

    # -- what the manager reports --------------------------------------------------------

    def accessed(self, key: str, loader: Any, ttl: float | None, tags: Iterable[str]) -> None:
        """A ``get_or_load`` of ``key`` missed L1 (it will read below or load)."""
        now = self._clock()
        with self._lock:
            keys = self._keys
            entry = keys.get(key)
            if entry is None:
                entry = keys[key] = Tracked(loader, ttl, tuple(tags), now)
                if len(keys) > self.max_tracked:
                    keys.popitem(last=False)
            else:
                keys.move_to_end(key)
                entry.loader, entry.ttl, entry.tags = loader, ttl, tuple(tags)
            entry.count = entry.count * 0.5 ** ((now - entry.last) / self.horizon) + 1.0
            entry.last = now

    def loaded(self, key: str, seconds: float) -> None:
        """The loader of ``key`` took ``seconds``."""
        with self._lock:
            entry = self._keys.get(key)
            if entry is not None:
                entry.cost = seconds if entry.cost is None else 0.7 * entry.cost + 0.3 * seconds

    # -- what the engine asks ------------------------------------------------------------

    def rate(self, key: str) -> float:
        """The estimated reads per second of ``key`` (0 for a key not tracked)."""
        now = self._clock()
        with self._lock:
            entry = self._keys.get(key)
            if entry is None:
                return 0.0
            count: float = entry.count * 0.5 ** ((now - entry.last) / self.horizon)
        return count * _LN2 / self.horizon

    def decide(self, key: str, rate: float, loader_cost: float) -> bool:
        """Whether reloading ``key`` is worth it (see the module docstring)."""
        if rate < self.min_rate:
            return False
        miss = float(self.miss_cost(key)) if self.miss_cost is not None else loader_cost
        return rate * self.horizon * miss >= self.cost_weight * loader_cost

    def pick(self, keys: Iterable[str]) -> dict[str, Tracked]:
        """The keys among ``keys`` to reload, with what is known of them; every key
        invalidated gets a new epoch (a reload started before it must not write)."""
        out: dict[str, Tracked] = {}
        for key in keys:
            with self._lock:
                entry = self._keys.get(key)
                if entry is None:
                    continue
                entry.epoch += 1
                if entry.cost is None:
                    continue
                cost = entry.cost
            if self.decide(key, self.rate(key), cost):
                out[key] = entry
        return out

    def current(self, key: str, entry: Tracked, epoch: int) -> bool:
        """Whether no invalidation of ``key`` came since the reload of ``epoch`` began."""
        with self._lock:
            return self._keys.get(key) is entry and entry.epoch == epoch
