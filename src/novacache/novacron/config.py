"""The settings of the domain caches (frozen dataclasses, checked when built): one class
each, shared by the synchronous and the asyncio cache."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ConfigurationError

__all__ = ["MigrationCacheConfig", "ResourceCacheConfig", "VMCacheConfig"]


def _seconds(name: str, value: object, *, zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{name} is a number of seconds, not {value!r}")
    if not (value >= 0 if zero else value > 0) or math.isnan(value):
        raise ConfigurationError(f"{name} is seconds {'>=' if zero else '>'} 0, not {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class VMCacheConfig:
    """TTLs (seconds) of each kind of entry, the largest batch a source call takes, and
    the optional real-time sync (every ``sync_interval`` seconds the states of the VMs
    read lately are fetched in batches and the changed ones handled as state changes).

    ``settle``: seconds after a state change at which its new state is written once
    more, unless a newer change of the VM came meanwhile (``0``: never). A read that
    loaded the old state from the source just before the change may write it back just
    after the change's write (in this process or another); the second write replaces
    it, so such a stale state lives ``settle`` seconds instead of ``state_ttl``."""

    state_ttl: float = 30.0
    metrics_ttl: float = 15.0
    config_ttl: float = 300.0
    batch_size: int = 500
    enable_real_time_sync: bool = False
    sync_interval: float = 5.0
    max_tracked: int = 10_000
    settle: float = 0.5

    def __post_init__(self) -> None:
        for name in ("state_ttl", "metrics_ttl", "config_ttl", "sync_interval"):
            _seconds(name, getattr(self, name))
        _seconds("settle", self.settle, zero=True)
        for name in ("batch_size", "max_tracked"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"{name} is an int >= 1, not {value!r}")


@dataclass(frozen=True, slots=True)
class ResourceCacheConfig:
    """TTLs (seconds), the freshness bound of capacities (a cached capacity measured
    longer ago than ``capacity_freshness`` is fetched again), and predictive caching:
    every ``precache_interval`` seconds, the resources whose probability of a read in
    the next interval is above ``precache_threshold`` are loaded, at most
    ``precache_budget`` per cycle (the tracker holds ``max_tracked`` resources)."""

    capacity_ttl: float = 60.0
    capacity_freshness: float = 60.0
    score_ttl: float = 30.0
    allocation_ttl: float = 30.0
    enable_predictive: bool = False
    precache_threshold: float = 0.5
    precache_interval: float = 5.0
    precache_budget: int = 64
    max_tracked: int = 4096
    half_life: float = 60.0

    def __post_init__(self) -> None:
        for name in (
            "capacity_ttl", "capacity_freshness", "score_ttl", "allocation_ttl",
            "precache_interval", "half_life",
        ):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigurationError(f"{name} is a number of seconds > 0, not {value!r}")
        t = self.precache_threshold
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t < 1:
            raise ConfigurationError(f"precache_threshold is in [0, 1), not {t!r}")
        for name in ("precache_budget", "max_tracked"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"{name} is an int >= 1, not {value!r}")


@dataclass(frozen=True, slots=True)
class MigrationCacheConfig:
    """TTLs (seconds) of states, progress (short: it changes all the time), checkpoints
    and the update log; the update log keeps at most ``stream_buffer_size`` updates per
    migration on Redis (approximately: ``XADD MAXLEN ~``); a reader of the log blocks
    ``block_ms`` per Redis read, polls the store every ``poll_interval`` seconds."""

    state_ttl: float = 30.0
    progress_ttl: float = 5.0
    checkpoint_ttl: float = 86_400.0
    update_ttl: float = 3_600.0
    stream_buffer_size: int = 1_000
    poll_interval: float = 0.05
    block_ms: int = 200

    def __post_init__(self) -> None:
        for name in ("state_ttl", "progress_ttl", "checkpoint_ttl", "update_ttl", "poll_interval"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigurationError(f"{name} is a number of seconds > 0, not {value!r}")
        for name in ("stream_buffer_size", "block_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"{name} is an int >= 1, not {value!r}")
