# The table: where entries live and how a key finds its entry.
#
# Holds: the table's constants and the Entry record; the graveyard (references dropped
# during a mutation); the open-addressing index (_lookup, _slot_of, _empty_slot);
# adding and removing an entry (_insert, _remove); growing the arrays and rebuilding
# the index (_grow_entries, _rebuild_index); emptying it (_release_table; or
# _empty_table, which keeps the arrays); ordered copies of the live entries (_snapshot).
# Relies on: capi.pxi; recency.pxi (each entry has a record in the recency log:
# _log_append, _bit_clear, NOPOS, RING_FACTOR sizes the log); clock.pxi (the
# deadline side array: _entry_expired, _call_timer; the sweep's bound: _note_deadline);
# cachetools_mode.pxi (the insertion log and the write order, kept only in cachetools'
# modes); the fields of LocalCache (local_cache.pxi).
#
# Layout. Entries live inline in one C array (``Entry``: hash, key, value, the position
# of its recency record and a free-list link, 32 bytes), reached through an
# open-addressing index of ``int32`` slots probed the way CPython's dict probes (``i =
# 5*i + 1 + perturb``), so integer keys read in order stay in order in memory. There is
# no node object per entry: a hit reads one index slot and one entry, and appends to the
# recency log (recency.pxi). Deleted index slots become tombstones (``DUMMY``) until the
# index is rebuilt; free entries are chained through ``next``. Expiry times and weights
# live in side arrays that exist only once a TTL or a weigher is in use, so a cache
# without them pays nothing for them.


cdef enum:
    EMPTY = -1          # index slot never used since the last rebuild
    DUMMY = -2          # index slot whose entry was removed (a tombstone)
    NIL = -1            # no entry: end of the free list and the order lists
    MIN_INDEX = 8       # smallest index (a power of two)
    MIN_ENTRIES = 8
    MAX_ENTRIES = 2147483646


ctypedef struct Entry:
    Py_hash_t hash
    PyObject* key       # NULL: the entry is free
    PyObject* value
    uint32_t pos        # position of the entry's current record in the recency log
    int32_t next        # a free entry: the next free one (free list); a live one, in
                        # cachetools' mode: its place in the insertion log (_ilog)


# ---------------------------------------------------------------------------------------
# The graveyard: references dropped during a mutation, released once it is complete.
#
# Releasing a reference can run a finalizer, and a finalizer can call back into the
# cache. Pushing here instead keeps the table consistent whatever that code does.
# ---------------------------------------------------------------------------------------

ctypedef struct Graveyard:
    Py_ssize_t n
    Py_ssize_t heap_cap
    PyObject** heap
    PyObject* stack[8]


cdef inline void _gy_init(Graveyard* g) noexcept:
    g.n = 0
    g.heap_cap = 0
    g.heap = NULL


cdef void _gy_push(Graveyard* g, PyObject* o) noexcept:
    cdef Py_ssize_t j
    cdef Py_ssize_t cap
    cdef PyObject** grown
    if g.n < 8:
        g.stack[g.n] = o
        g.n += 1
        return
    j = g.n - 8
    if j >= g.heap_cap:
        cap = 64 if g.heap_cap == 0 else g.heap_cap * 2
        grown = <PyObject**>PyMem_Realloc(g.heap, cap * sizeof(PyObject*))
        if grown == NULL:
            # Out of memory: release at once. The finalizer may then see the cache
            # mid-operation, which is the lesser evil next to a leak.
            nc_decref(o)
            return
        g.heap = grown
        g.heap_cap = cap
    g.heap[j] = o
    g.n += 1


cdef inline void _gy_release(Graveyard* g) noexcept:
    cdef Py_ssize_t i
    cdef Py_ssize_t n = g.n
    cdef PyObject** heap = g.heap
    g.n = 0
    g.heap = NULL
    g.heap_cap = 0
    for i in range(n if n < 8 else 8):
        nc_decref(g.stack[i])
    for i in range(n - 8):
        nc_decref(heap[i])
    PyMem_Free(heap)


# ---------------------------------------------------------------------------------------
# The index and the entry arrays
# ---------------------------------------------------------------------------------------

cdef Py_ssize_t _lookup(LocalCache self, object key, Py_hash_t h, size_t* slotp) except -2:
    """Index of the entry holding ``key``, or -1.

    With ``slotp``, also stores the index slot: the slot of the entry when found, else
    the slot where ``key`` would be inserted (the first tombstone or empty slot on its
    probe path). Without it (a read, a removal), an absent key is remembered as the
    last miss (the ``_hint_*`` fields), so that a ``_set`` of the same object right
    after (the cache-aside ``if c.get(k) is None: c[k] = v``) skips its own lookup. A
    key's ``__eq__`` may change the table; then the probe restarts, as CPython's dict
    does.
    """
    cdef size_t mask, i, perturb, freeslot
    cdef int32_t ix
    cdef Entry* e
    cdef PyObject* startkey
    cdef PyObject* k = <PyObject*>key
    cdef uint64_t version
    cdef int cmp
    while True:
        mask = self._mask
        perturb = <size_t>h
        i = <size_t>h & mask
        freeslot = <size_t>-1
        while True:
            ix = self._index[i]
            if ix >= 0:
                e = &self._entries[ix]
                if e.key == k:
                    if slotp != NULL:
                        slotp[0] = i
                    return ix
                if e.hash == h:
                    # Two exact ints or strs: compared in C, no user code runs.
                    cmp = nc_fast_eq(e.key, k)
                    if cmp < 0:
                        startkey = e.key
                        nc_incref(startkey)
                        version = self._version
                        cmp = nc_richcompare_bool(startkey, k, Py_EQ)
                        nc_decref(startkey)
                        if cmp < 0:
                            return -2
                        if self._version != version or self._mask != mask:
                            break           # the table changed: start over
                    if cmp > 0:
                        if slotp != NULL:
                            slotp[0] = i
                        return ix
            elif ix == EMPTY:
                if freeslot == <size_t>-1:
                    freeslot = i
                if slotp != NULL:
                    slotp[0] = freeslot
                else:
                    self._hint_hash = h
                    self._hint_slot = freeslot
                    self._hint_version = self._version
                    # Last: releasing the previous hint may run a finalizer, which may
                    # use the cache. A change to the table bumps _version (this hint is
                    # then stale); a miss there sets a whole hint of its own.
                    self._hint_key = key
                return -1
            elif freeslot == <size_t>-1:
                freeslot = i
            perturb >>= 5
            i = (i * 5 + perturb + 1) & mask


cdef inline size_t _slot_of(LocalCache self, int32_t ix) noexcept:
    """The index slot that points at entry ix (found by its stored hash, no __eq__)."""
    cdef Py_hash_t h = self._entries[ix].hash
    cdef size_t mask = self._mask
    cdef size_t perturb = <size_t>h
    cdef size_t i = <size_t>h & mask
    while self._index[i] != ix:
        perturb >>= 5
        i = (i * 5 + perturb + 1) & mask
    return i


cdef inline size_t _empty_slot(LocalCache self, Py_hash_t h) noexcept:
    """First slot on h's probe path that holds no entry (after a rebuild: EMPTY)."""
    cdef size_t mask = self._mask
    cdef size_t perturb = <size_t>h
    cdef size_t i = <size_t>h & mask
    while self._index[i] >= 0:
        perturb >>= 5
        i = (i * 5 + perturb + 1) & mask
    return i


cdef int32_t _insert(LocalCache self, object key, object value, Py_hash_t h, size_t slot,
                     double expires, Py_ssize_t w) except -1:
    """Add a new entry; return its number. Under the tinylfu policy the caller then
    hands it to _pol_insert (which links it in a queue and evicts)."""
    cdef int32_t ix
    cdef Entry* e
    if <size_t>(self._nused + self._ndummy + 1) * 3 > (self._mask + 1) * 2:
        if <size_t>(self._nused + 1) * 2 <= self._mask + 1:
            # Full of tombstones, not of entries: a cache that evicts (each eviction
            # leaves one). A sparser index (at least 3 slots per entry instead of 2)
            # puts about 4.7x more inserts between two rebuilds (at 1,000 entries: 1,730
            # instead of 365; a rebuild walks every entry), for 4 to 8 more bytes per
            # entry. A cache that only grows never comes here.
            _rebuild_index(self, (self._nused + 1) * 3 // 2)
        else:
            _rebuild_index(self, self._nused + 1)
        slot = _empty_slot(self, h)
    if self._track_insertion and self._ilen == self._icap:
        _ilog_rebuild(self)
    if self._free != NIL:
        ix = self._free
        self._free = self._entries[ix].next
    else:
        if self._nfill == self._ecap:
            _grow_entries(self)
        ix = <int32_t>self._nfill
        self._nfill += 1
    if self._index[slot] == DUMMY:
        self._ndummy -= 1
    self._index[slot] = ix
    e = &self._entries[ix]
    e.hash = h
    nc_incref(<PyObject*>key)
    e.key = <PyObject*>key
    nc_incref(<PyObject*>value)
    e.value = <PyObject*>value
    if self._expires != NULL:
        self._expires[ix] = expires
        if expires != INFINITY:
            self._nttl += 1
            _note_deadline(self, expires)
    if self._weights != NULL:
        self._weights[ix] = w
        self._currbytes += w
    e.pos = NOPOS                           # no record yet (a fresh entry is garbage)
    if self._pol == NULL:
        _log_append(self, ix)
    if self._track_insertion:
        self._ilog[self._ilen] = ix
        e.next = <int32_t>self._ilen
        self._ilen += 1
    if self._worder != NULL:
        _ol_append(self._worder, &self._wfirst, &self._wlast, ix)
    self._nused += 1
    self._version += 1
    return ix


cdef void _remove(LocalCache self, int32_t ix, Graveyard* g) noexcept:
    """Take entry ix out of the index, the list and the counters; its key and value go
    to the graveyard."""
    cdef Entry* e = &self._entries[ix]
    self._index[_slot_of(self, ix)] = DUMMY
    self._ndummy += 1
    if self._pol == NULL:
        _bit_clear(self._lbits, e.pos)      # its log record is stale from now on
    else:
        _pol_unlink(self, ix)               # out of its queue (e.pos is its link)
    e.pos = NOPOS
    if self._ilog != NULL:
        self._ilog[e.next] = -1
    if self._worder != NULL:
        _ol_unlink(self._worder, &self._wfirst, &self._wlast, ix)
    _gy_push(g, e.key)
    _gy_push(g, e.value)
    e.key = NULL
    e.value = NULL
    if self._expires != NULL and self._expires[ix] != INFINITY:
        self._nttl -= 1
        self._expires[ix] = INFINITY
    if self._weights != NULL:
        self._currbytes -= self._weights[ix]
        self._weights[ix] = 0
    e.next = self._free
    self._free = ix
    self._nused -= 1
    self._version += 1


cdef int _rebuild_index(LocalCache self, Py_ssize_t n) except -1:
    """A fresh index for n entries, at most half full, without tombstones."""
    cdef size_t size = MIN_INDEX
    cdef int32_t* index
    cdef Py_ssize_t ix
    cdef size_t i, perturb, mask
    cdef Py_hash_t h
    while size < <size_t>n * 2:
        size <<= 1
    index = <int32_t*>PyMem_Malloc(size * sizeof(int32_t))
    if index == NULL:
        raise MemoryError()
    memset(index, 0xFF, size * sizeof(int32_t))
    mask = size - 1
    for ix in range(self._nfill):
        if self._entries[ix].key == NULL:
            continue
        h = self._entries[ix].hash
        perturb = <size_t>h
        i = <size_t>h & mask
        while index[i] != EMPTY:
            perturb >>= 5
            i = (i * 5 + perturb + 1) & mask
        index[i] = <int32_t>ix
    PyMem_Free(self._index)
    self._index = index
    self._mask = mask
    self._ndummy = 0
    self._version += 1
    return 0


cdef int _grow_entries(LocalCache self) except -1:
    cdef Py_ssize_t cap = MIN_ENTRIES if self._ecap == 0 else self._ecap * 2
    cdef int32_t* log
    cdef uint64_t* bits
    cdef Py_ssize_t lcap
    if self._maxsize >= 0 and cap > self._maxsize:
        cap = max(self._maxsize, self._ecap + 1)
    if cap > MAX_ENTRIES:
        cap = MAX_ENTRIES
    if cap <= self._ecap:
        raise OverflowError("LocalCache cannot hold more than 2**31 - 2 entries")
    if self._pol != NULL:
        # The tinylfu policy keeps no recency log: its queues run through the entries.
        if _pol_grow(self._pol, cap) < 0:
            raise MemoryError()
        return _grow_entry_arrays(self, cap)
    # Log positions are 32-bit and NOPOS is the largest: cap the log below it (for the
    # largest caches that means fewer records per entry, never fewer than two).
    lcap = min(<Py_ssize_t>RING_FACTOR * cap, <Py_ssize_t>0xFFFFFFFE)
    log = <int32_t*>PyMem_Realloc(self._log, lcap * sizeof(int32_t))
    if log == NULL:
        raise MemoryError()
    self._log = log
    bits = <uint64_t*>PyMem_Realloc(self._lbits, ((lcap + 63) >> 6) * sizeof(uint64_t))
    if bits == NULL:
        raise MemoryError()
    memset(&bits[(self._lcap + 63) >> 6], 0,
           (((lcap + 63) >> 6) - ((self._lcap + 63) >> 6)) * sizeof(uint64_t))
    self._lbits = bits
    self._lcap = lcap
    return _grow_entry_arrays(self, cap)


cdef int _grow_entry_arrays(LocalCache self, Py_ssize_t cap) except -1:
    """Grow the entry array and its side arrays to cap entries."""
    cdef Py_ssize_t i
    cdef Entry* entries
    cdef double* expires
    cdef Py_ssize_t* weights
    cdef int32_t* iorder
    entries = <Entry*>PyMem_Realloc(self._entries, cap * sizeof(Entry))
    if entries == NULL:
        raise MemoryError()
    self._entries = entries
    if self._expires != NULL:
        expires = <double*>PyMem_Realloc(self._expires, cap * sizeof(double))
        if expires == NULL:
            raise MemoryError()
        self._expires = expires
        for i in range(self._ecap, cap):
            expires[i] = INFINITY
    if self._keep_expired:
        iorder = <int32_t*>PyMem_Realloc(self._worder, 2 * cap * sizeof(int32_t))
        if iorder == NULL:
            raise MemoryError()
        self._worder = iorder
    if self._weigher is not None:
        weights = <Py_ssize_t*>PyMem_Realloc(self._weights, cap * sizeof(Py_ssize_t))
        if weights == NULL:
            raise MemoryError()
        self._weights = weights
        memset(&weights[self._ecap], 0, (cap - self._ecap) * sizeof(Py_ssize_t))
    self._ecap = cap
    self._version += 1
    return 0


cdef void _release_table(LocalCache self) noexcept:
    """Empty the cache: detach the arrays first, then drop the references, so code
    run by a finalizer sees an empty, consistent cache."""
    cdef Entry* entries = self._entries
    cdef Py_ssize_t nfill = self._nfill
    cdef Py_ssize_t ix
    cdef double* expires = self._expires
    cdef Py_ssize_t* weights = self._weights
    cdef int32_t* small
    if self._index != NULL:
        if self._mask + 1 > MIN_INDEX * 4:
            # Give back a large index; keep a small one (or the large one if out of
            # memory).
            small = <int32_t*>PyMem_Malloc(MIN_INDEX * sizeof(int32_t))
            if small != NULL:
                PyMem_Free(self._index)
                self._index = small
                self._mask = MIN_INDEX - 1
        memset(self._index, 0xFF, (self._mask + 1) * sizeof(int32_t))
    self._entries = NULL
    self._expires = NULL
    self._weights = NULL
    self._ecap = self._nfill = self._nused = self._ndummy = 0
    self._nttl = self._sweep = self._currbytes = 0
    self._exp_floor = self._exp_seen = INFINITY
    self._free = NIL
    PyMem_Free(self._log)
    self._log = NULL
    PyMem_Free(self._lbits)
    self._lbits = NULL
    self._lhead = self._ltail = self._lcap = 0
    PyMem_Free(self._ilog)
    self._ilog = NULL
    self._ilen = self._icap = 0             # dict.clear(): the empty table
    self._iresizes += 1
    self._wfirst = self._wlast = NIL
    PyMem_Free(self._worder)
    self._worder = NULL
    if self._pol != NULL:
        _pol_forget(self._pol)
    self._version += 1
    for ix in range(nfill):
        if entries[ix].key != NULL:
            nc_decref(entries[ix].key)
            nc_decref(entries[ix].value)
    PyMem_Free(entries)
    PyMem_Free(expires)
    PyMem_Free(weights)
    self._hint_key = None                   # stale already (_version): let it go


cdef bint _empty_table(LocalCache self) noexcept:
    """Empty the cache, keeping its table: the index at its size, the entry array's
    capacity (a fresh array of it), the deadline, weight and recency-log arrays. For
    ``clear()`` of a cache bounded by maxsize, whose arrays never outgrow that bound: a
    refill does not regrow them step by step. As _release_table, the references are
    dropped last, from the detached old entry array, so code run by a finalizer sees an
    empty, consistent cache. Not for cachetools' modes (their logs are not kept).
    False (nothing done) when there is no table yet, or no memory for the fresh
    entry array: _release_table then."""
    cdef Entry* entries = self._entries
    cdef Py_ssize_t nfill = self._nfill
    cdef Py_ssize_t ix
    cdef Entry* fresh
    if self._ecap == 0:
        return False                        # no table yet: nothing to keep
    fresh = <Entry*>PyMem_Malloc(self._ecap * sizeof(Entry))
    if fresh == NULL:
        return False
    memset(self._index, 0xFF, (self._mask + 1) * sizeof(int32_t))
    self._entries = fresh
    if self._expires != NULL:
        for ix in range(nfill):
            self._expires[ix] = INFINITY
    if self._weights != NULL:
        memset(self._weights, 0, nfill * sizeof(Py_ssize_t))
    if self._lbits != NULL:
        memset(self._lbits, 0, ((self._lcap + 63) >> 6) * sizeof(uint64_t))
    self._lhead = self._ltail = 0
    self._nfill = self._nused = self._ndummy = 0
    self._nttl = self._sweep = self._currbytes = 0
    self._exp_floor = self._exp_seen = INFINITY
    self._free = NIL
    if self._pol != NULL:
        _pol_forget(self._pol)
    self._version += 1
    for ix in range(nfill):
        if entries[ix].key != NULL:
            nc_decref(entries[ix].key)
            nc_decref(entries[ix].value)
    PyMem_Free(entries)
    self._hint_key = None                   # stale already (_version): let it go
    return True


cdef list _snapshot(LocalCache self, int what, int order=0):
    """Live keys (0), values (1), items (2) or (key, value, deadline) triples (3), least
    recently used first (``order`` 0), oldest insertion first (1) or oldest write first
    (2, only in cachetools' TTL mode); the deadline is ``INFINITY`` for an entry without
    TTL. Expired entries are left out, except in cachetools' TTL mode, which keeps them
    until an expire (the caller expires first where cachetools does; the timer is not
    read here).

    The walk only copies pointers (with a reference each) and deadlines into C arrays;
    Python objects are built after it, so nothing can change the list while it is walked.
    """
    cdef Py_ssize_t n = 0, i
    cdef int32_t ix
    cdef double now = 0.0
    cdef PyObject** buf
    cdef double* deadlines
    cdef list out
    cdef bint keep = self._keep_expired
    if self._timer is not None and self._nttl > 0 and not keep:
        now = _call_timer(self)
    buf = <PyObject**>PyMem_Malloc((2 * self._nused + 1) * sizeof(PyObject*))
    deadlines = <double*>PyMem_Malloc((self._nused + 1) * sizeof(double))
    if buf == NULL or deadlines == NULL:
        PyMem_Free(buf)
        PyMem_Free(deadlines)
        raise MemoryError()
    cdef Py_ssize_t r = self._lhead
    cdef Py_ssize_t ir = 0                  # order 1: the place in the insertion log
    if order == 1:
        ix = _ilog_next(self, &ir)          # NIL: empty or not tracked
    elif order == 2:
        ix = NIL if self._worder == NULL else self._wfirst
    elif self._pol != NULL:
        ix = _pol_first(self)
    else:
        ix = _lru(self)
        r = self._lhead
    while ix != NIL:
        if keep or not _entry_expired(self, ix, now):
            buf[2 * n] = self._entries[ix].key
            buf[2 * n + 1] = self._entries[ix].value
            deadlines[n] = INFINITY if self._expires == NULL else self._expires[ix]
            nc_incref(buf[2 * n])
            nc_incref(buf[2 * n + 1])
            n += 1
        if order == 1:
            ix = _ilog_next(self, &ir)
        elif order == 2:
            ix = self._worder[2 * ix + 1]
        elif self._pol != NULL:
            ix = _pol_next(self, ix)
        else:
            r = _next_current(self, r + 1)
            ix = NIL if r < 0 else self._log[r]
    out = []
    try:
        for i in range(n):
            if what == 0:
                out.append(<object>buf[2 * i])
            elif what == 1:
                out.append(<object>buf[2 * i + 1])
            elif what == 2:
                out.append((<object>buf[2 * i], <object>buf[2 * i + 1]))
            else:
                out.append((<object>buf[2 * i], <object>buf[2 * i + 1], deadlines[i]))
    finally:
        for i in range(2 * n):
            nc_decref(buf[i])
        PyMem_Free(buf)
        PyMem_Free(deadlines)
    return out
