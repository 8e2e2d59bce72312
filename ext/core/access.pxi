# The operations every read and write of a LocalCache goes through: _get (the hot
# path: a lookup that counts and refreshes), _set (insert or overwrite, then evict),
# _discard (remove a key), and _weigh (an entry's weight).
#
# Each follows the module's rule (see its docstring): call user code first, look up,
# mutate in pure C, release dropped references last.
# Relies on: table.pxi, recency.pxi, clock.pxi; cachetools_mode.pxi (_ttl_set: a write
# in cachetools' TTL mode); novacache.errors (EntryTooLarge).


cdef inline PyObject* _get(LocalCache self, object key, bint count,
                           int touch) except? NULL:
    """Borrowed value of a live entry, or NULL on a miss (with no error set).

    An expired entry found on the way is removed, unless the cache keeps expired
    entries (cachetools' TTLCache), where it is only reported missing. ``count`` updates
    hits/misses; ``touch`` 1 makes a live entry most recently used, 2 an expired kept one
    too (cachetools' ``__getitem__`` refreshes the key before it checks the time).

    Small on purpose, so the compiler inlines it into every caller: an entry with a
    deadline is checked here only against the C clock; an injected timer, or an expired
    entry, takes ``_get_timed``.
    """
    cdef Py_hash_t h = nc_hash(key)
    cdef Py_ssize_t ix
    # The common hit: the key object itself sits in its home slot. No probe loop.
    ix = self._index[<size_t>h & self._mask]
    if ix < 0 or self._entries[ix].key != <PyObject*>key:
        ix = _lookup(self, key, h, NULL)    # a miss is remembered (the last miss)
        if ix < 0:
            if count:
                self._misses += 1
                if self._pol != NULL:
                    _pol_miss_fn(self, h)
            return NULL
    if self._expires != NULL and self._expires[ix] != INFINITY:
        # Live by the C clock (the default): a hit. Anything else: _get_timed.
        if self._timer is not None or _c_expired(self._expires[ix]):
            return _get_timed(self, key, h, ix, count, touch)
    if touch:
        # LRU: the same one test as before the policies. The tinylfu policy turns
        # _read_refreshes off, so its hit costs the LRU path nothing.
        if self._read_refreshes:
            _touch(self, <int32_t>ix)
        elif self._pol != NULL:
            _pol_record(self, <int32_t>ix)
    if count:
        self._hits += 1
    return self._entries[ix].value


cdef Py_ssize_t _weigh(LocalCache self, object key, object value) except -1:
    """The weight of an entry: the weigher's result through ``operator.index``, an int
    in ``[0, _bytelimit]``. Negative: ``ValueError``; above the limit (maxbytes, or
    PY_SSIZE_T_MAX without it): ``EntryTooLarge``. So every weight, and every sum the
    cache forms (never above the limit), fits a ``Py_ssize_t``."""
    cdef object w = PyNumber_Index(self._weigher(key, value))    # an exact int
    cdef int overflow = 0
    cdef long long n = PyLong_AsLongLongAndOverflow(w, &overflow)
    if overflow > 0 or (overflow == 0 and n > self._bytelimit):
        raise EntryTooLarge(w, self._bytelimit)
    if overflow < 0 or n < 0:
        raise ValueError("weigher returned a negative weight")
    return <Py_ssize_t>n


cdef int _set(LocalCache self, object key, object value, double ttl,
              Py_ssize_t w) except -1:
    """Insert or overwrite. ``w`` is the entry's weight if already computed, else -1."""
    cdef double now = 0.0
    cdef double expires = INFINITY
    cdef Py_hash_t h
    cdef Py_ssize_t ix
    cdef size_t slot
    cdef Graveyard g
    cdef Entry* e
    cdef PyObject* old
    if self._keep_expired:
        return _ttl_set(self, key, value)
    # 1. User code first: weigher, timer, hash. None of it may see a half-done change.
    if self._weigher is None:
        w = 0
    elif w < 0:
        w = _weigh(self, key, value)        # 0 <= w <= _bytelimit, or it raised
    if self._timer is not None:
        if ttl != INFINITY or self._nttl > 0:
            now = _call_timer(self)
    elif ttl != INFINITY:
        now = nc_clock_precise()
    if ttl != INFINITY:
        expires = now + ttl
        if expires == INFINITY:
            # Past the largest double (a huge ttl, or a timer at inf): the latest
            # deadline there is, never INFINITY, which means "no expiry" here.
            expires = DBL_MAX
    if <PyObject*>key == <PyObject*>self._hint_key and PyLong_CheckExact(key):
        h = self._hint_hash                 # the hash of an exact int is its value's
    else:
        h = nc_hash(key)
    # 2. Look up (a key's __eq__ may run; _lookup copes). The key a read just missed,
    # the table unchanged since (no user code above changed it either): its slot is
    # known (_lookup remembered it). The common overwrite, the key object itself in
    # its home slot, needs no probe loop.
    if (<PyObject*>key == <PyObject*>self._hint_key
            and self._hint_version == self._version and self._hint_hash == h):
        ix = -1
        slot = self._hint_slot
        self._hint_key = None               # the caller holds key: no finalizer runs
    else:
        slot = <size_t>h & self._mask
        ix = self._index[slot]
        if ix < 0 or self._entries[ix].key != <PyObject*>key:
            ix = _lookup(self, key, h, &slot)
    # 3. Pure C from here on, until the graveyard is released. (The expiry array is
    # allocated only now: user code above may have cleared the cache, which frees it.)
    if expires != INFINITY and self._expires == NULL:
        _alloc_expires(self)
    if ix >= 0:
        e = &self._entries[ix]
        old = e.value
        nc_incref(<PyObject*>value)
        e.value = <PyObject*>value
        _set_expiry(self, <int32_t>ix, expires)
        if self._pol != NULL:
            return _pol_set_existing(self, <int32_t>ix, w, old)
        _touch(self, <int32_t>ix)
        if self._weights == NULL:
            # Without weights an overwrite never needs room: the old value is all
            # there is to release, and the table is consistent already.
            nc_decref(old)
            return 0
        # Swap the weights without ever forming a sum beyond the limit: take the old
        # one out, make room for the new one (never evicting this entry), put it in.
        self._currbytes -= self._weights[ix]
        self._weights[ix] = 0
        _gy_init(&g)
        _gy_push(&g, old)
        _make_room(self, 0, w, <int32_t>ix, &g)
        self._weights[ix] = w
        self._currbytes += w
        _gy_release(&g)
        return 0
    if (self._pol == NULL and self._expires == NULL and self._bytelimit < 0
            and not self._track_insertion and 0 <= self._maxsize <= self._nused
            and <size_t>(self._nused + self._ndummy + 1) * 3 <= (self._mask + 1) * 2):
        # A full cache bounded by maxsize alone, whose index has room (else _insert
        # rebuilds it): evict one, insert, in one pass (the same result).
        _replace_lru(self, key, value, h, slot)
        return 0
    if (self._pol != NULL and self._expires == NULL and self._weights == NULL
            and _pol_replace_fn(self, key, value, h, slot)):
        return 0                            # the common tinylfu insert, fused
    _gy_init(&g)
    if self._nttl > 0:
        _sweep(self, now, &g)
    if self._pol != NULL:
        return _pol_set_new(self, key, value, h, slot, expires, w, &g)
    _make_room(self, 1, w, NIL, &g)
    try:
        _insert(self, key, value, h, slot, expires, w)
    finally:
        _gy_release(&g)
    return 0


cdef inline int _store_missed(LocalCache self, object key, object value,
                              double ttl) except -1:
    """``_set(self, key, value, ttl, -1)`` (``ttl`` > 0, or INFINITY), with the common
    fill of a read-through cache fused: a key the last lookup missed (an exact ``str``
    or ``int``, whose hash is its value's), the table unchanged since (the hint of
    ``_lookup``: its free slot is where the key goes), a plain cache (exact LRU, the C
    clock, no weigher, not in cachetools' modes) whose deadline array exists, with room
    for one more entry (no eviction, no index rebuild, an entry free or never used),
    and no entry due for the expiry sweep. Then it is _set without the weigher, the
    timer, the hash, the probe, the sweep and the eviction: _insert at the slot the
    lookup remembered (the same result); anything else takes _set itself. For the manager's L1 fill (export.pxi), whose
    lookup missed just before: a smaller footprint in the caches that the round trip
    to the tier below has left cold."""
    cdef double expires
    if (<PyObject*>key != <PyObject*>self._hint_key
            or self._hint_version != self._version
            or self._expires == NULL or ttl == INFINITY
            or self._timer is not None or self._weigher is not None
            or self._pol != NULL or self._keep_expired or self._track_insertion
            or self._worder != NULL or self._bytelimit >= 0
            or (self._maxsize >= 0 and self._nused >= self._maxsize)
            or <size_t>(self._nused + self._ndummy + 1) * 3 > (self._mask + 1) * 2
            or (self._free == NIL and self._nfill == self._ecap)
            or not (PyUnicode_CheckExact(key) or PyLong_CheckExact(key))
            or (self._nttl > 0 and _c_expired(self._exp_floor))):
        return _set(self, key, value, ttl, -1)
    expires = nc_clock_precise() + ttl
    if expires == INFINITY:
        expires = DBL_MAX                   # as _set: never INFINITY ("no expiry")
    self._hint_key = None                   # the caller holds key: no finalizer runs
    # _insert's checks for a rebuild, growth, weights and cachetools' logs all fail
    # here (excluded above): the table's own insert, at the slot the lookup found.
    _insert(self, key, value, self._hint_hash, self._hint_slot, expires, 0)
    return 0


cdef bint _discard(LocalCache self, object key, PyObject** out) except -1:
    """Remove ``key`` if live; with ``out``, hand over an owned reference to its value.
    An expired entry is removed (and counted) but reported as absent."""
    cdef Py_hash_t h = PyObject_Hash(key)
    cdef Py_ssize_t ix
    cdef double now = 0.0
    cdef Graveyard g
    cdef bint live
    if self._timer is not None and self._nttl > 0:
        now = _call_timer(self)
    ix = _lookup(self, key, h, NULL)
    if ix < 0:
        return False
    live = not _entry_expired(self, <int32_t>ix, now)
    if not live and out != NULL and self._keep_expired:
        return False                        # cachetools' pop: an expired item stays
    if live and out != NULL:
        out[0] = self._entries[ix].value
        nc_incref(out[0])
    _gy_init(&g)
    _remove(self, <int32_t>ix, &g)
    if not live:
        self._expirations += 1
    _gy_release(&g)
    return live
