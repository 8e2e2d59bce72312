# LocalCache: the class, its mapping API and pickling, and its garbage-collection slots.
#
# Holds: the default weigher, the check of maxsize/maxbytes (_bound_arg), the class
# LocalCache (its fields are the state every other part reads: the table, the
# recency log, the side arrays, the counters, the cachetools' modes), _restore (what a
# pickled LocalCache is rebuilt by) and the GC wrappers.
# Relies on: access.pxi (_get, _set, _discard, _weigh), table.pxi, recency.pxi,
# clock.pxi, stats.pxi; cachetools_timer.pxi (_TTLTimer, the type of a field) and
# cachetools_mode.pxi (_ttl_expire_head, for popitem in cachetools' TTL mode).


cdef object _MISSING = object()
cdef object _getsizeof = sys.getsizeof


def default_weigher(key, value):
    """The default weigher: ``sys.getsizeof(value)``, the shallow size of the value.

    A container counts its own structure, not the objects it holds; pass a ``weigher``
    for deep sizes.
    """
    return _getsizeof(value)


cdef int _policy_arg(object policy, object maxsize, object maxbytes) except -1:
    """Check ``policy``: "lru", or "tinylfu" with exactly one of maxsize and maxbytes
    (the policy has one capacity), maxbytes at most 2**40."""
    if not isinstance(policy, str):
        raise TypeError(f"policy must be a str, not {type(policy).__name__}")
    if policy == "lru":
        return 0
    if policy != "tinylfu":
        raise ConfigurationError(f"unknown policy {policy!r}; choose 'lru' or 'tinylfu'")
    if (maxsize is None) == (maxbytes is None):
        raise ConfigurationError(
            "policy='tinylfu' needs exactly one bound: maxsize or maxbytes"
        )
    if maxbytes is not None and isinstance(maxbytes, int) and maxbytes > POLICY_MAX_CAPACITY:
        raise ConfigurationError(
            f"policy='tinylfu' takes maxbytes <= 2**40, got {maxbytes!r}"
        )
    return 0


cdef int _pol_init(LocalCache self) except -1:
    """Give the cache a fresh tinylfu policy (its bounds are set). Bounded by maxsize,
    an entry weighs 1 and the sketch is sized for maxsize entries; by maxbytes, an
    entry weighs its weight and the sketch starts sized for min(maxbytes, 1024)
    entries (it grows with the entries held)."""
    if self._maxsize >= 0:
        self._pol = _pol_new(self._maxsize, self._maxsize, False, self._ecap)
    else:
        self._pol = _pol_new(self._maxbytes, min(self._maxbytes, 1024), True, self._ecap)
    self._read_refreshes = False            # a hit takes _pol_record (see _get)
    return 0


cdef Py_ssize_t _bound_arg(object value, str name) except -2:
    """None -> -1 (no bound); else an int >= 1."""
    if value is None:
        return -1
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int or None, not {type(value).__name__}")
    if value < 1:
        raise ConfigurationError(f"{name} must be >= 1 or None, got {value!r}")
    if name == "maxsize" and value > MAX_ENTRIES:
        raise ConfigurationError(f"maxsize must be <= {MAX_ENTRIES}, got {value!r}")
    if value > sys.maxsize:
        raise ConfigurationError(f"{name} is too large: {value!r}")
    return value


cdef class LocalCache:
    """An in-process LRU cache with per-entry TTL and a size budget.

    ``LocalCache(maxsize=None, *, maxbytes=None, weigher=None, ttl=None, timer=None,
    policy="lru")``

    Holds live objects (no serialization). Bounded by entry count (``maxsize``) and/or
    by the total weight of its entries (``maxbytes``, weights from ``weigher(key,
    value)``, by default ``sys.getsizeof(value)``); the least recently used entries are
    evicted first. ``ttl`` is the default time-to-live in seconds; ``set(k, v, ttl=...)``
    overrides it per entry. An expired entry is never returned. Safe to share between
    threads without a lock. See ``docs/local-cache.md`` for the full contract.

    Without ``timer``, time comes from a C monotonic clock (on Linux a coarse reading,
    checked against the precise one near a deadline, so expiry is exact).

    ``policy="tinylfu"`` replaces exact LRU by an adaptive W-TinyLFU (``docs/policies.md``):
    it needs exactly one bound, ``maxsize`` or ``maxbytes``.
    """

    cdef Entry* _entries
    cdef double* _expires           # NULL until the first TTL; INFINITY = no expiry
    cdef Py_ssize_t* _weights       # NULL unless a weigher is in use
    cdef int32_t* _index
    cdef size_t _mask               # index size - 1
    cdef Py_ssize_t _ecap           # capacity of the entry arrays
    cdef Py_ssize_t _nfill          # entries ever handed out (live or on the free list)
    cdef Py_ssize_t _nused          # live entries
    cdef Py_ssize_t _ndummy         # tombstones in the index
    cdef int32_t _free
    cdef int32_t* _log              # recency log: entry numbers, least recent first
    cdef Py_ssize_t _lhead          # first record that may be current
    cdef Py_ssize_t _ltail          # end of the log (next record goes here)
    cdef Py_ssize_t _lcap           # records the log holds (RING_FACTOR * _ecap)
    cdef uint64_t* _lbits           # one bit per log position: the record is current
    cdef Py_ssize_t _maxsize        # -1: unbounded
    cdef Py_ssize_t _maxbytes       # -1: unbounded
    cdef Py_ssize_t _currbytes      # sum of the weights: 0 <= _currbytes <= _bytelimit
    cdef Py_ssize_t _nttl           # live entries with a finite expiry
    cdef Py_ssize_t _sweep          # cursor of the incremental expiry sweep
    cdef double _exp_floor          # no live entry's deadline is earlier (_sweep)
    cdef double _exp_seen           # the earliest deadline of the pass (_sweep)
    cdef bint _track_insertion      # keep the insertion order too (cachetools' iteration)
    cdef int32_t* _ilog             # with it: the insertion log, laid out as the entries
                                    # table of the dict cachetools keeps its items in
                                    # (see _ilog_append): entry numbers in insertion
                                    # order, -1 where a key was removed
    cdef Py_ssize_t _ilen           # places of the log handed out (live or removed)
    cdef Py_ssize_t _icap           # places it has (0: the dict's empty table)
    cdef uint64_t _iresizes         # how often it was rebuilt
    cdef bint _keep_expired         # cachetools' TTLCache: expired entries stay until
                                    # an expire (by a write, len, popitem or expire())
    cdef _TTLTimer _ttl_timer       # with it: the freezable timer ("now"); else None
    cdef bint _guarded              # with it, novacache.cachetools': a timer of the
                                    # user's, so operations take _ct_guarded
    cdef bint _moved                # novacache.cachetools' cache moved (or moving) to
                                    # its general path: the core's storage is dead
    cdef object _ttl_given          # with it: the ttl as the caller gave it
    cdef int32_t* _worder           # with it: per entry (older, newer) in last-write order
    cdef int32_t _wfirst            # oldest write (the next to expire)
    cdef int32_t _wlast             # newest write
    cdef bint _read_refreshes       # a hit makes the entry most recently used (LRU);
                                    # False: only writes do (FIFO by last write)
    cdef uint64_t _version          # bumped by every change to the index or entry arrays
    cdef uint64_t _hits
    cdef uint64_t _misses
    cdef uint64_t _evictions
    cdef uint64_t _expirations
    cdef double _ttl                # default TTL; INFINITY = none
    cdef object _timer              # None: the C clock
    cdef object _weigher            # None: weights are not tracked
    cdef Py_ssize_t _bytelimit      # -1: no weights; else maxbytes, or PY_SSIZE_T_MAX
                                    # (last: the fields a hit reads keep their places)
    cdef Policy* _pol               # NULL: exact LRU; else the tinylfu policy
    # The last miss (table.pxi, _lookup): the key object a lookup did not find,
    # its hash, the index slot where it would go, and _version then. The next _set of
    # that same object inserts there without a second lookup if the table has not
    # changed since. The reference is held (an object at a freed key's address could
    # pass for it) and dropped when the hint is used or the table emptied.
    cdef object _hint_key
    cdef Py_hash_t _hint_hash
    cdef size_t _hint_slot
    cdef uint64_t _hint_version
    cdef object __weakref__

    def __cinit__(self, *args, **kwargs):
        self._index = <int32_t*>PyMem_Malloc(MIN_INDEX * sizeof(int32_t))
        if self._index == NULL:
            raise MemoryError()
        memset(self._index, 0xFF, MIN_INDEX * sizeof(int32_t))   # all EMPTY (-1)
        self._mask = MIN_INDEX - 1
        self._free = NIL
        self._wfirst = NIL
        self._wlast = NIL
        self._read_refreshes = True
        self._maxsize = -1
        self._maxbytes = -1
        self._bytelimit = -1
        self._ttl = INFINITY
        self._exp_floor = INFINITY
        self._exp_seen = INFINITY

    def __init__(self, maxsize=None, *, maxbytes=None, weigher=None, ttl=None, timer=None,
                 policy="lru"):
        if self._nfill:
            raise RuntimeError("LocalCache.__init__ called twice")
        self._maxsize = _bound_arg(maxsize, "maxsize")
        self._maxbytes = _bound_arg(maxbytes, "maxbytes")
        _policy_arg(policy, maxsize, maxbytes)
        if weigher is not None and not callable(weigher):
            raise TypeError("weigher must be callable")
        if timer is not None and not callable(timer):
            raise TypeError("timer must be callable")
        if weigher is None and self._maxbytes >= 0:
            weigher = default_weigher
        self._weigher = weigher
        # The bound on the byte total: maxbytes, or without it the largest total the
        # counter holds (a weigher alone only tracks currbytes, up to that).
        if weigher is None:
            self._bytelimit = -1
        elif self._maxbytes >= 0:
            self._bytelimit = self._maxbytes
        else:
            self._bytelimit = PY_SSIZE_T_MAX
        self._timer = timer
        self._ttl = INFINITY if ttl is None else _ttl_arg(ttl, True)
        _pol_free(self._pol)
        self._pol = NULL
        self._read_refreshes = True
        if policy == "tinylfu":
            _pol_init(self)

    def __dealloc__(self):
        _release_table(self)
        PyMem_Free(self._index)
        self._index = NULL
        _pol_free(self._pol)
        self._pol = NULL

    # -- the hot path ------------------------------------------------------------------

    def __getitem__(self, key):
        cdef PyObject* v = _get(self, key, True, 2)
        if v == NULL:
            if type(self) is not LocalCache:
                missing = getattr(type(self), "__missing__", None)
                if missing is not None:
                    # As dict does: a subclass's __missing__ answers a miss.
                    return missing(self, key)
            raise KeyError(key)
        return <object>v

    # get and set are method descriptors, as dict.get is (binding=False; Cython 3
    # makes function objects by default): CPython calls a method descriptor straight
    # from its specialised call instruction, a function object through the generic
    # vectorcall (about 85 instructions more per c.get(k)). The clinic signature keeps
    # inspect.signature working.
    @cython.binding(False)
    @cython.embedsignature.format("clinic")
    def get(self, key, default=None):
        """The value of a live entry (now most recently used), or ``default``."""
        cdef PyObject* v = _get(self, key, True, 1)
        if v == NULL:
            return default
        return <object>v

    def __contains__(self, key):
        return _get(self, key, False, 0) != NULL

    def __setitem__(self, key, value):
        _set(self, key, value, self._ttl, -1)

    def __delitem__(self, key):
        if not _discard(self, key, NULL):
            raise KeyError(key)

    def __len__(self):
        return self._nused

    def __iter__(self):
        return iter(_snapshot(self, 0))

    # -- the rest of the mapping API ---------------------------------------------------

    @cython.binding(False)
    @cython.embedsignature.format("clinic")
    def set(self, key, value, ttl=None):
        """Insert or overwrite ``key``; it becomes most recently used.

        ``ttl`` (seconds) overrides the default TTL; ``math.inf`` means no expiry. Then
        evicts least recently used entries until the bounds hold. Raises
        ``EntryTooLarge`` (and changes nothing) if the entry alone outweighs ``maxbytes``.
        """
        _set(self, key, value, self._ttl if ttl is None else _ttl_arg(ttl, False), -1)

    def peek(self, key, default=None):
        """The value of a live entry without making it recent and without counting it."""
        cdef PyObject* v = _get(self, key, False, 0)
        if v == NULL:
            return default
        return <object>v

    def pop(self, key, default=_MISSING):
        """Remove ``key`` and return its value; ``default`` (or ``KeyError``) if absent."""
        cdef PyObject* v = NULL
        if _discard(self, key, &v):
            return _steal(v)
        if default is _MISSING:
            raise KeyError(key)
        return default

    def popitem(self):
        """Remove and return the least recently used live ``(key, value)``."""
        cdef Graveyard g
        cdef PyObject* k
        cdef PyObject* v
        cdef int32_t ix
        cdef double now = 0.0
        if self._timer is not None and self._nttl > 0:
            now = _call_timer(self)
        _gy_init(&g)
        if self._keep_expired:
            _ttl_expire_head(self, now, &g)
        while True:
            ix = _lru(self) if self._pol == NULL else _pol_first(self)
            if ix == NIL:
                _gy_release(&g)
                raise KeyError("popitem(): cache is empty")
            if _entry_expired(self, ix, now):
                _remove(self, ix, &g)
                self._expirations += 1
                continue
            k = self._entries[ix].key
            v = self._entries[ix].value
            nc_incref(k)
            nc_incref(v)
            _remove(self, ix, &g)
            _gy_release(&g)
            return (_steal(k), _steal(v))

    def clear(self):
        """Remove every entry. The counters other than currsize/currbytes are kept.
        The tinylfu policy starts afresh too (an empty sketch, ghost and shadow).
        A cache bounded by maxsize keeps its table (never larger than that bound asks),
        so refilling it does not grow the table again; any other gives its memory back."""
        if (self._maxsize < 0 or self._keep_expired or self._track_insertion
                or not _empty_table(self)):
            _release_table(self)
        if self._pol != NULL:
            _pol_free(self._pol)
            self._pol = NULL
            _pol_init(self)

    def get_many(self, keys):
        """``{key: value}`` for the live keys among ``keys``; each counts a hit or miss."""
        cdef dict out = {}
        cdef PyObject* v
        for key in keys:
            v = _get(self, key, True, 1)
            if v != NULL:
                out[key] = <object>v
        return out

    def set_many(self, mapping, ttl=None):
        """Set every pair of ``mapping`` (or of an iterable of pairs), in order.

        All weights are computed first; if any entry outweighs ``maxbytes``,
        ``EntryTooLarge`` is raised and nothing is stored.
        """
        cdef double d = self._ttl if ttl is None else _ttl_arg(ttl, False)
        pairs = list(mapping.items()) if hasattr(mapping, "items") else list(mapping)
        for pair in pairs:
            if len(pair) != 2:
                raise ValueError("set_many expects a mapping or an iterable of pairs")
        cdef list weights = []
        if self._weigher is not None:
            for k, v in pairs:
                weights.append(_weigh(self, k, v))     # raises EntryTooLarge
        for i, (k, v) in enumerate(pairs):
            _set(self, k, v, d, weights[i] if weights else -1)

    def delete_many(self, keys):
        """Remove the given keys; return how many live entries were removed."""
        cdef Py_ssize_t n = 0
        for key in keys:
            if _discard(self, key, NULL):
                n += 1
        return n

    def expire(self):
        """Remove every expired entry now; return how many were removed."""
        cdef Graveyard g
        cdef Py_ssize_t ix
        cdef Py_ssize_t n = 0
        cdef double now = 0.0
        if self._nttl == 0:
            return 0
        if self._timer is not None:
            now = _call_timer(self)
        _gy_init(&g)
        for ix in range(self._nfill):
            if self._entries[ix].key != NULL and _entry_expired(self, <int32_t>ix, now):
                _remove(self, <int32_t>ix, &g)
                n += 1
        self._expirations += n
        _gy_release(&g)
        return n

    def keys(self):
        """A list of the live keys, least recently used first (a snapshot)."""
        return _snapshot(self, 0)

    def values(self):
        """A list of the live values, least recently used first (a snapshot)."""
        return _snapshot(self, 1)

    def items(self):
        """A list of the live ``(key, value)`` pairs, least recently used first."""
        return _snapshot(self, 2)

    def update(self, other=(), **kwargs):
        """Set every pair of ``other`` and of ``kwargs``, as ``dict.update``."""
        if hasattr(other, "keys"):
            for k in other.keys():
                _set(self, k, other[k], self._ttl, -1)
        else:
            for k, v in other:
                _set(self, k, v, self._ttl, -1)
        for k, v in kwargs.items():
            _set(self, k, v, self._ttl, -1)

    def setdefault(self, key, default=None):
        """The value of ``key`` if live (counted as a hit); else set it to ``default``."""
        cdef PyObject* v = _get(self, key, True, 1)
        if v != NULL:
            return <object>v
        _set(self, key, default, self._ttl, -1)
        return default

    def reset_stats(self):
        """Zero the hit, miss, eviction and expiration counters."""
        _reset_stats(self)

    # -- properties --------------------------------------------------------------------

    @property
    def maxsize(self):
        return None if self._maxsize < 0 else self._maxsize

    @property
    def maxbytes(self):
        return None if self._maxbytes < 0 else self._maxbytes

    @property
    def ttl(self):
        return None if self._ttl == INFINITY else self._ttl

    @property
    def timer(self):
        return self._timer

    @property
    def weigher(self):
        return self._weigher

    @property
    def currsize(self):
        return self._nused

    @property
    def policy(self):
        """The eviction policy: ``"lru"`` or ``"tinylfu"``."""
        return "lru" if self._pol == NULL else "tinylfu"

    @property
    def currbytes(self):
        return self._currbytes

    @property
    def stats(self):
        """A ``CacheStats`` snapshot of the counters (plain C integers, read now)."""
        return _stats(self)

    def __repr__(self):
        # Never keys or values: they may be secrets.
        return (
            f"{type(self).__name__}(maxsize={self.maxsize!r}, maxbytes={self.maxbytes!r}, "
            f"currsize={self._nused})"
        )

    def __class_getitem__(cls, item):
        return GenericAlias(cls, item)

    def __reduce__(self):
        cdef double now = 0.0
        cdef list entries = []
        cdef double exp
        if self._nttl > 0:
            now = _call_timer(self) if self._timer is not None else nc_clock_precise()
        for key, value, exp in _snapshot(self, 3):
            entries.append((key, value, None if exp == INFINITY else exp - now))
        config = {
            "maxsize": self.maxsize,
            "maxbytes": self.maxbytes,
            "weigher": None if self._weigher is default_weigher else self._weigher,
            "ttl": self.ttl,
            "timer": self._timer,
            "policy": self.policy,
        }
        state = getattr(self, "__dict__", None)
        return (_restore, (type(self), config, entries), state or None)


def _restore(cls, config, entries):
    """Rebuild a pickled LocalCache (entries in LRU order, with their remaining TTL).

    A subclass's instance attributes come back through the pickle state (its
    ``__dict__``), which pickle applies after this returns.
    """
    cache = cls.__new__(cls)
    LocalCache.__init__(
        cache,
        config["maxsize"],
        maxbytes=config["maxbytes"],
        weigher=config["weigher"],
        ttl=config["ttl"],
        timer=config["timer"],
        policy=config.get("policy", "lru"),
    )
    for key, value, remaining in entries:
        if remaining is None:
            cache.set(key, value, float("inf"))
        elif remaining > 0:
            cache.set(key, value, remaining)
    return cache


# ---------------------------------------------------------------------------------------
# Garbage collection: Cython's slots see _timer and _weigher; these wrappers add the
# keys and values held in the C table.
# ---------------------------------------------------------------------------------------

cdef nc_traverseproc _base_traverse = nc_get_traverse(LocalCache)
cdef nc_inquiry _base_clear = nc_get_clear(LocalCache)


cdef int _lc_traverse(PyObject* o, nc_visitproc visit, void* arg) noexcept:
    cdef int r
    cdef Py_ssize_t ix
    cdef Entry* entries
    if _base_traverse != NULL:
        r = _base_traverse(o, visit, arg)
        if r:
            return r
    entries = (<LocalCache>o)._entries
    for ix in range((<LocalCache>o)._nfill):
        if entries[ix].key != NULL:
            r = visit(entries[ix].key, arg)
            if r:
                return r
            r = visit(entries[ix].value, arg)
            if r:
                return r
    return 0


cdef int _lc_clear(PyObject* o) noexcept:
    _release_table(<LocalCache>o)
    if _base_clear != NULL:
        return _base_clear(o)
    return 0


nc_set_gc(LocalCache, _lc_traverse, _lc_clear)
