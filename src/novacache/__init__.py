"""novacache: a multi-tier cache engine with a compiled in-process core.

Public API (everything else is private and may change):

- :class:`LocalCache`: the in-process L1 cache (LRU, per-entry TTL, size-aware).
- :func:`memoize`: a ``functools.lru_cache``-like decorator on the same core.
- :data:`compiled`: ``True`` when the compiled core is active, ``False`` on the twin.
- :class:`Codec`, :class:`KeyRing`: the frames stored in L2/L3 (serialize, compress, encrypt).
- :class:`CacheManager`, :class:`AsyncCacheManager`, :class:`Router`, :class:`Route`: the
  multi-tier manager (:mod:`novacache.manager`) over L1, L2 and L3.
- :mod:`novacache.errors`: the exception hierarchy.
"""

from __future__ import annotations

from . import errors
from ._local import LocalCache, Memoized, compiled, default_weigher, memoize
from ._stats import CacheInfo, CacheStats
from ._version import __version__
from .codec import Codec, KeyRing
from .manager import AsyncCacheManager, CacheManager, Route, Router

__all__ = [
    "AsyncCacheManager",
    "CacheInfo",
    "CacheManager",
    "CacheStats",
    "Codec",
    "KeyRing",
    "LocalCache",
    "Memoized",
    "Route",
    "Router",
    "__version__",
    "compiled",
    "default_weigher",
    "errors",
    "memoize",
]
