# The cachetools' modes of a LocalCache, for novacache.cachetools: insertion order kept
# for iteration (laid out as the dict cachetools keeps its items in), a hit that
# refreshes or not (LRU or FIFO), and cachetools' TTLCache (every item expiring ttl
# after its last write, expired items kept until an expire).
#
# Holds: the private module functions that set and drive the modes (_cachetools_mode,
# _cachetools_ttl_mode, _ttl_*, _insertion_*); the insertion log (_ilog_rebuild,
# _ilog_next, _InsertionIter); the last-write order (_ol_unlink, _ol_append); a write
# and an expiry in the TTL mode (_ttl_set, _ttl_expire_head).
# Relies on: table.pxi (_lookup, _insert, _remove, _snapshot, _release_table, the
# graveyard), recency.pxi (_touch, _make_room), clock.pxi (_call_timer,
# _alloc_expires, _set_expiry); cachetools_timer.pxi (_TTLTimer, _as_seconds,
# _exact_time, _Unrepresentable, _Moved); the fields of LocalCache.


def _cachetools_mode(LocalCache cache, bint read_refreshes):
    """Private, for ``novacache.cachetools``: make an empty cache keep its insertion
    order as well (cachetools iterates in it) and choose whether a hit refreshes an
    entry (LRU) or only a write does (FIFO by last write)."""
    if cache._nused:
        raise ValueError("only an empty cache can change mode")
    _release_table(cache)
    cache._track_insertion = True
    cache._read_refreshes = read_refreshes


def _cachetools_ttl_mode(LocalCache cache, timer, ttl):
    """Private, for ``novacache.cachetools``: make an empty cache behave as cachetools'
    ``TTLCache(maxsize, ttl, timer)``: LRU eviction, insertion order kept for iteration,
    every item expiring ``ttl`` after its last write, expired items kept (reported
    missing) until an expire, which every write runs first; "now" from a freezable
    :class:`_TTLTimer` around ``timer``. The caller checks that ``ttl`` is exact as a
    double (:func:`_exact_time`); a reading of the timer that is not raises
    :class:`_Unrepresentable` where it is read. Returns the timer view."""
    if cache._nused:
        raise ValueError("only an empty cache can change mode")
    if not _exact_time(ttl):
        raise ValueError(f"ttl {ttl!r} is not exact as a double")
    view = _TTLTimer(timer)
    _release_table(cache)
    cache._track_insertion = True
    cache._read_refreshes = True
    cache._keep_expired = True
    cache._ttl_timer = view
    cache._timer = view
    cache._ttl = <double>ttl
    cache._ttl_given = ttl
    return view


def _ttl_given(LocalCache cache):
    """Private: the ttl of a cache in cachetools' TTL mode, as it was given."""
    return cache._ttl_given


def _ttl_expire(LocalCache cache, time=None):
    """Private: cachetools' ``TTLCache.expire(time=None)``: remove the items whose time
    has come at ``time`` (default: the timer's now), oldest write first, and return
    them as ``(key, value)`` pairs."""
    cdef double now
    cdef Py_ssize_t n = 0, i
    cdef int32_t ix
    cdef PyObject** buf
    cdef Graveyard g
    cdef list out = []
    if not cache._keep_expired:
        raise ValueError("not a cache in cachetools' TTL mode")
    now = _call_timer(cache) if time is None else _as_seconds(time)
    if cache._expires == NULL:
        return out
    ix = cache._wfirst
    while ix != NIL and not (now < cache._expires[ix]):
        n += 1
        ix = cache._worder[2 * ix + 1]
    if n == 0:
        return out
    buf = <PyObject**>PyMem_Malloc(2 * n * sizeof(PyObject*))
    if buf == NULL:
        raise MemoryError()
    _gy_init(&g)
    for i in range(n):
        ix = cache._wfirst
        buf[2 * i] = cache._entries[ix].key
        buf[2 * i + 1] = cache._entries[ix].value
        nc_incref(buf[2 * i])
        nc_incref(buf[2 * i + 1])
        _remove(cache, ix, &g)
    cache._expirations += n
    _gy_release(&g)
    try:
        for i in range(n):
            out.append((<object>buf[2 * i], <object>buf[2 * i + 1]))
    finally:
        for i in range(2 * n):
            nc_decref(buf[i])
        PyMem_Free(buf)
    return out


def _ttl_len(LocalCache cache):
    """Private: cachetools' ``len(TTLCache)``: expire at now, then count."""
    cdef Graveyard g
    cdef double now = _call_timer(cache)
    _gy_init(&g)
    _ttl_expire_head(cache, now, &g)
    _gy_release(&g)
    return cache._nused


def _ttl_state(LocalCache cache):
    """Private: what rebuilds a cache in cachetools' TTL mode: its items (expired ones
    kept until an expire included, as cachetools keeps them) in insertion order as
    ``(key, value, deadline)``, its keys least recently used first, and its keys oldest
    write first. Reads no timer."""
    return (_snapshot(cache, 3, 1), _snapshot(cache, 0, 0), _snapshot(cache, 0, 2))


def _ttl_restore(LocalCache cache, items, recency, writes):
    """Private: refill an empty cache in cachetools' TTL mode from :func:`_ttl_state`."""
    cdef Py_ssize_t ix
    cdef size_t slot
    cdef Py_hash_t h
    cdef double deadline
    if cache._nused or not cache._keep_expired:
        raise ValueError("only an empty cache in cachetools' TTL mode can be restored")
    for key, value, when in items:
        if PyFloat_CheckExact(when) and isinf(PyFloat_AS_DOUBLE(when)):
            deadline = PyFloat_AS_DOUBLE(when)  # ttl=inf: never expires
        else:
            deadline = _as_seconds(when)
        h = PyObject_Hash(key)
        ix = _lookup(cache, key, h, &slot)
        if ix >= 0:
            raise ValueError(f"duplicate key {key!r}")
        if cache._expires == NULL:
            _alloc_expires(cache)
        _insert(cache, key, value, h, slot, deadline, 0)
    for key in recency:
        ix = _lookup(cache, key, PyObject_Hash(key), NULL)
        if ix >= 0:
            _touch(cache, <int32_t>ix)
    for key in writes:
        ix = _lookup(cache, key, PyObject_Hash(key), NULL)
        if ix >= 0:
            _ol_unlink(cache._worder, &cache._wfirst, &cache._wlast, <int32_t>ix)
            _ol_append(cache._worder, &cache._wfirst, &cache._wlast, <int32_t>ix)


cdef int _ttl_set(LocalCache self, object key, object value) except -1:
    """cachetools' ``TTLCache.__setitem__``: with one "now", expire everything whose
    time has come (oldest write first), then store the item to expire ``ttl`` after now,
    newest in the write order and most recently used; a new key evicts the least
    recently used while the cache is full."""
    cdef _TTLTimer view = self._ttl_timer
    cdef double now = _call_timer(self)     # may run Python: before anything else
    cdef bint was_int = _g_reading_int      # (the reading was an int: see _as_seconds)
    cdef double expires = now + self._ttl
    cdef Py_hash_t h
    cdef Py_ssize_t ix
    cdef size_t slot
    cdef Graveyard g
    cdef Entry* e
    if (isinf(expires) and not isinf(self._ttl)) or (
            was_int and PyLong_Check(self._ttl_given)
            and not (-_EXACT_INT < expires < _EXACT_INT)):
        # now + ttl is not the sum Python makes (an overflow; ints beyond 2**53).
        raise _Unrepresentable(int(now) if was_int else now)
    _gy_init(&g)
    try:
        # As cachetools: expire first, then hash the key (which may raise).
        _ttl_expire_head(self, now, &g)
        h = PyObject_Hash(key)
        slot = <size_t>h & self._mask
        ix = self._index[slot]
        if ix < 0 or self._entries[ix].key != <PyObject*>key:
            ix = _lookup(self, key, h, &slot)   # a key's __eq__ may run
        if self._moved:
            # A key's __hash__ or __eq__ let another thread move the cache to the
            # general path (see _call_timer): _ct_guarded does it there; a caller on
            # the core's path gets 1 and does the same.
            if self._guarded:
                raise _Moved(int(now) if was_int else now)
            return 1
        if self._expires == NULL:               # first TTL, or cleared meanwhile
            _alloc_expires(self)
        if ix >= 0:
            e = &self._entries[ix]
            _gy_push(&g, e.value)
            nc_incref(<PyObject*>value)
            e.value = <PyObject*>value
            _set_expiry(self, <int32_t>ix, expires)
            _touch(self, <int32_t>ix)
            _ol_unlink(self._worder, &self._wfirst, &self._wlast, <int32_t>ix)
            _ol_append(self._worder, &self._wfirst, &self._wlast, <int32_t>ix)
            self._version += 1
        else:
            _make_room(self, 1, 0, NIL, &g)
            _insert(self, key, value, h, slot, expires, 0)
    finally:
        _gy_release(&g)
    return 0


cdef Py_ssize_t _ttl_expire_head(LocalCache self, double now, Graveyard* g) noexcept:
    """Remove entries from the oldest write on while their time has come (``now`` is
    not before their deadline), as cachetools' ``TTLCache.expire`` walks its list;
    return how many. Pure C."""
    cdef Py_ssize_t n = 0
    cdef int32_t ix
    if self._expires == NULL:
        return 0
    ix = self._wfirst
    while ix != NIL and not (now < self._expires[ix]):
        _remove(self, ix, g)
        n += 1
        ix = self._wfirst
    self._expirations += n
    return n


cdef Py_ssize_t _dict_table_size(Py_ssize_t minsize) noexcept:
    """The number of slots CPython gives a dict's table asked for ``minsize``
    (``calculate_log2_keysize`` since 3.11; the smallest power of two from 8 before)."""
    cdef Py_ssize_t size = 8, m
    if PY_VERSION_HEX >= 0x030B0000:
        m = ((minsize | 8) - 1) | 7
        size = 1
        while m:
            size <<= 1
            m >>= 1
        return size
    while size < minsize:
        size <<= 1
    return size


cdef int _ilog_rebuild(LocalCache self) except -1:
    """Make room in the insertion log for one more key, as the dict cachetools keeps
    its items in makes room in its entries table (CPython 3.10 to 3.13): a table
    asked for three times the keys it holds (see ``_dict_table_size``), two thirds of
    its slots usable, with the live keys moved to the front in order (their places
    change). Until it is full, a new key takes the next place; a removed key leaves
    its place empty; ``clear`` goes back to the empty table. A dict's iterator walks
    these places (see :class:`_InsertionIter`). Pure C but for the allocation, done
    last."""
    cdef Py_ssize_t size, cap, r, w = 0
    cdef int32_t ix
    cdef int32_t* grown
    size = 8 if self._ilen == 0 and self._icap == 0 else _dict_table_size(3 * self._nused)
    cap = (2 * size) // 3
    if cap > 0x7FFFFFFF:
        raise OverflowError("too many keys for a cache in cachetools' mode")
    for r in range(self._ilen):
        ix = self._ilog[r]
        if ix >= 0:
            self._ilog[w] = ix
            self._entries[ix].next = <int32_t>w
            w += 1
    self._ilen = w
    self._iresizes += 1
    grown = <int32_t*>PyMem_Realloc(self._ilog, cap * sizeof(int32_t))
    if grown == NULL:
        raise MemoryError()
    self._ilog = grown
    self._icap = cap
    return 0


cdef inline int32_t _ilog_next(LocalCache self, Py_ssize_t* r) noexcept:
    """The entry at the first live place of the insertion log at or after ``r[0]``
    (NIL: none), and ``r[0]`` moved past it."""
    cdef int32_t ix
    while r[0] < self._ilen:
        ix = self._ilog[r[0]]
        r[0] += 1
        if ix >= 0:
            return ix
    return NIL


@cython.final
cdef class _InsertionIter:
    """Private: iteration over the keys of a cache in cachetools' mode as a dict's
    iterator goes over cachetools' dict of items: over the places of the insertion
    log (laid out as that dict's table, see ``_ilog_rebuild``), ``RuntimeError`` once
    the size changed (and at every call after), and when a key is found after as many
    keys as the cache held."""

    cdef LocalCache _cache          # None once exhausted
    cdef Py_ssize_t _size           # the size when made; -1 once it changed
    cdef Py_ssize_t _left           # keys still expected
    cdef Py_ssize_t _pos            # the place to look from

    def __iter__(self):
        return self

    def __next__(self):
        cdef LocalCache c = self._cache
        cdef Py_ssize_t r
        if self._size < 0:
            raise RuntimeError("dictionary changed size during iteration")
        if c is None:
            raise StopIteration
        if c._nused != self._size:
            self._size = -1
            raise RuntimeError("dictionary changed size during iteration")
        r = self._pos
        while r < c._ilen and c._ilog[r] < 0:
            r += 1
        if r >= c._ilen:
            self._cache = None
            raise StopIteration
        if self._left == 0:
            self._cache = None
            raise RuntimeError("dictionary keys changed during iteration")
        self._pos = r + 1
        self._left -= 1
        return <object>c._entries[c._ilog[r]].key

    def __length_hint__(self):
        if self._cache is None or self._size < 0 or self._cache._nused != self._size:
            return 0
        return self._left


def _insertion_iter(LocalCache cache):
    """Private: an iterator over the keys of ``cache`` (in cachetools' mode) in
    insertion order, as a dict's (see :class:`_InsertionIter`)."""
    cdef _InsertionIter it
    if not cache._track_insertion:
        raise ValueError("not a cache in cachetools' mode")
    it = _InsertionIter.__new__(_InsertionIter)
    it._cache = cache
    it._size = cache._nused
    it._left = cache._nused
    it._pos = 0
    return it


def _insertion_copy_layout(LocalCache copy, LocalCache source):
    """Private: lay out the insertion log of ``copy`` (just filled with the items of
    ``source``, in its insertion order) as CPython 3.11 lays out ``dict.copy()`` of
    the dict cachetools keeps its items in: the same table when at most a third of
    its places are empty (removed keys), else a compact table sized for the keys."""
    cdef Py_ssize_t r, k = 0, cap, n = source._nused
    cdef int32_t* log
    if (not (copy._track_insertion and source._track_insertion) or copy._nused != n
            or copy._ilen != n):
        raise ValueError("not a fresh copy of a cache in cachetools' mode")
    if n >= (source._ilen * 2) // 3:
        cap = source._icap
    elif n == 0:
        cap = 0
    else:
        cap = (2 * _dict_table_size((n * 3 + 1) // 2)) // 3
    log = <int32_t*>PyMem_Malloc((cap if cap > 0 else 1) * sizeof(int32_t))
    if log == NULL:
        raise MemoryError()
    if n >= (source._ilen * 2) // 3:
        for r in range(source._ilen):       # the same places, removed ones included
            if source._ilog[r] < 0:
                log[r] = -1
            else:
                log[r] = copy._ilog[k]          # (the fresh fill is compact)
                copy._entries[log[r]].next = <int32_t>r
                k += 1
        copy._ilen = source._ilen
    else:
        for r in range(n):
            log[r] = copy._ilog[r]
            copy._entries[log[r]].next = <int32_t>r
        copy._ilen = n
    PyMem_Free(copy._ilog)
    copy._ilog = log
    copy._icap = cap
    copy._iresizes += 1


def _insertion_snapshot(LocalCache cache, int what):
    """Private: keys (0), values (1) or items (2), oldest insertion first."""
    if what < 0 or what > 2:
        raise ValueError("what must be 0, 1 or 2")
    return _snapshot(cache, what, 1)


# Insertion order and last-write order are doubly linked lists kept in int32 arrays
# (per entry: older, newer), with their ends in the cache. One pair of helpers serves both.


cdef inline void _ol_unlink(int32_t* links, int32_t* first, int32_t* last,
                            int32_t ix) noexcept:
    cdef int32_t older = links[2 * ix]
    cdef int32_t newer = links[2 * ix + 1]
    if older != NIL:
        links[2 * older + 1] = newer
    else:
        first[0] = newer
    if newer != NIL:
        links[2 * newer] = older
    else:
        last[0] = older


cdef inline void _ol_append(int32_t* links, int32_t* first, int32_t* last,
                            int32_t ix) noexcept:
    links[2 * ix] = last[0]
    links[2 * ix + 1] = NIL
    if last[0] != NIL:
        links[2 * last[0] + 1] = ix
    else:
        first[0] = ix
    last[0] = ix
