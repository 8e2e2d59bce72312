"""Plain records that caches hand out: counters read at call time, never live views."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["CacheInfo", "CacheStats"]


class CacheStats(NamedTuple):
    """A snapshot of a LocalCache's counters.

    ``hits``/``misses`` count lookups by ``c[k]``, ``get`` and ``get_many`` (``peek`` and
    ``in`` count nothing). ``evictions`` counts entries removed to respect ``maxsize`` or
    ``maxbytes``; ``expirations`` counts entries removed because their TTL ran out.
    ``currbytes`` is the sum of the weights of the entries held (0 when the cache has
    neither ``maxbytes`` nor a ``weigher``).
    """

    hits: int
    misses: int
    evictions: int
    expirations: int
    currsize: int
    currbytes: int
    maxsize: int | None
    maxbytes: int | None


class CacheInfo(NamedTuple):
    """What ``memoize(...)(f).cache_info()`` returns: the fields of functools' CacheInfo."""

    hits: int
    misses: int
    maxsize: int | None
    currsize: int
