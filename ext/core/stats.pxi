# The counters: hits, misses, evictions and expirations of a LocalCache.
#
# They are four uint64 fields of LocalCache, bumped in place where they happen (a C
# add, never a call, on the hot path): _get and _get_timed count hits and misses,
# _make_room evictions; _sweep, _expire_one, _discard, popitem, expire and the
# expiries of cachetools' TTL mode count expirations. Memoized.cache_info reports the
# hits and misses as functools' CacheInfo (_CachedCall keeps its own two counters).
# Holds: _stats (the snapshot LocalCache.stats returns) and _reset_stats.
# Relies on: novacache._stats (CacheStats); the fields of LocalCache (local_cache.pxi).


cdef object _stats(LocalCache self):
    """A ``CacheStats`` snapshot of the counters (plain C integers, read now)."""
    return CacheStats(
        self._hits, self._misses, self._evictions, self._expirations,
        self._nused, self._currbytes,
        None if self._maxsize < 0 else self._maxsize,
        None if self._maxbytes < 0 else self._maxbytes,
    )


cdef inline void _reset_stats(LocalCache self) noexcept:
    self._hits = self._misses = self._evictions = self._expirations = 0
