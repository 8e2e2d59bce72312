"""The multi-tier cache manager: one API over L1 (LocalCache), L2 (Redis) and L3 (a store).

- :class:`CacheManager`: the synchronous manager (threads).
- :class:`AsyncCacheManager`: its asyncio twin (async tiers, asyncio single-flight).
- :class:`Router`, :class:`Route`: which tiers a write goes to.
- :class:`InvalidationBus`: cross-process L1 coherence over Redis pub/sub
  (:mod:`novacache.coherence`).
- :class:`WriteReport`, :class:`ManagerStats`: what writes report and what is counted.
"""

from __future__ import annotations

from ..coherence import InvalidationBus
from ._async.manager import AsyncCacheManager
from ._sync.manager import CacheManager
from .router import Route, Router
from .stats import ManagerStats, WriteReport

__all__ = [
    "AsyncCacheManager",
    "CacheManager",
    "InvalidationBus",
    "ManagerStats",
    "Route",
    "Router",
    "WriteReport",
]
