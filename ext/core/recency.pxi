# Recency and eviction: the exact-LRU recency log, and the eviction loop that takes its
# least recently used entry.
#
# Holds: the log's constants; _touch (a hit or a write makes an entry most recently
# used), _log_append, _compact, _next_current and _lru (the least recently used live
# entry); _make_room (evicts until a new entry fits the bounds).
# Relies on: the table (table.pxi: Entry.pos, _remove, the graveyard) and the log's
# fields of LocalCache (_log, _lbits, _lhead, _ltail, _lcap), which _grow_entries sizes
# and _release_table frees.
#
# The rest of the core reaches the policy only through these calls: a hit or a write
# (_touch), a new entry (_insert: _log_append), a removal (_remove: _bit_clear), a
# victim (_make_room and popitem: _lru), the order of keys() (_snapshot: _lru,
# _next_current). The second policy, "tinylfu" (policy.pxi), sits behind the same
# calls: each tests LocalCache._pol where it already branches (see policy.pxi).
#
# Recency log. A doubly linked LRU list makes every hit write to the entry's two
# neighbours, which in a large cache sit anywhere in memory: two cache misses per hit that
# a dict lookup does not pay. Instead, the order is a log: an array of entry numbers in
# the order they were last used (inserted, hit, or written). A hit appends its entry to
# the log and records the position in the entry (``pos``, in the line the lookup already
# read), so a hit writes its own entry, the log's end and one bit. A record is current
# while its entry points at it, and a bitmap beside the log (one bit per record, small
# enough for the L2 cache) marks the current ones; the least recently used entry is the
# first current record. When the log is full, ``_compact`` moves the current records (one
# per live entry, in order) to its start, finding them in the bitmap without reading stale
# records, then tells each entry its new position (writes prefetched ahead): with room for
# ``RING_FACTOR`` (2) records per entry of capacity, that is at most one moved record per
# hit. (A larger log compacts less often but makes the bitmap larger, and every hit
# clears a bit at a random place in it: measured with 100,000 entries, 2 beat 4 and 16
# in random key order.) The order stays exactly LRU.


cdef enum:
    RING_FACTOR = 2     # recency log records per entry of capacity
    PREFETCH_AHEAD = 32 # log records whose entries _compact prefetches ahead
    PREFETCH_VICTIMS = 32768    # _replace_lru prefetches the next victims from this
                                # maxsize on (below it the table fits the L2 cache)


cdef uint32_t NOPOS = 0xFFFFFFFFu       # an entry with no record (free)


cdef inline void _touch(LocalCache self, int32_t ix) noexcept:
    """Make live entry ix the most recently used."""
    if self._entries[ix].pos != <uint32_t>(self._ltail - 1):
        _log_append(self, ix)


cdef inline void _bit_clear(uint64_t* bits, Py_ssize_t r) noexcept:
    bits[r >> 6] &= ~((<uint64_t>1) << (r & 63))


cdef inline void _log_append(LocalCache self, int32_t ix) noexcept:
    """Append entry ix to the recency log: its record there is now the current one
    (its previous record, if any, is no longer)."""
    cdef Entry* e = &self._entries[ix]
    cdef Py_ssize_t t
    if e.pos != NOPOS:
        _bit_clear(self._lbits, e.pos)
    t = self._ltail
    if t == self._lcap:
        _compact(self)
        t = self._ltail
    self._log[t] = ix
    self._lbits[t >> 6] |= (<uint64_t>1) << (t & 63)
    e.pos = <uint32_t>t
    self._ltail = t + 1


cdef void _compact(LocalCache self) noexcept:
    """Keep only the current records of the log, in order, at its start. Pure C. The
    bitmap says which records are current, so stale records are never read; the log has
    room for RING_FACTOR (>= 2) records per entry, so at least half of it is free
    afterwards."""
    cdef Entry* entries = self._entries
    cdef int32_t* log = self._log
    cdef uint64_t* bits = self._lbits
    cdef Py_ssize_t word, nwords = (self._ltail + 63) >> 6
    cdef Py_ssize_t w = 0, r, i
    cdef uint64_t x
    # 1. Move the current records to the front (sequential reads and writes).
    for word in range(self._lhead >> 6, nwords):
        x = bits[word]
        while x:
            r = (word << 6) + nc_ctz64(x)
            x &= x - 1
            log[w] = log[r]
            w += 1
    # 2. Tell each entry where its record went (random writes, prefetched ahead).
    for i in range(w):
        if i + PREFETCH_AHEAD < w:
            nc_prefetch_w(&entries[log[i + PREFETCH_AHEAD]])
        entries[log[i]].pos = <uint32_t>i
    # 3. The bitmap: the first w positions are current.
    memset(bits, 0, nwords * sizeof(uint64_t))
    memset(bits, 0xFF, (w >> 6) * sizeof(uint64_t))
    if w & 63:
        bits[w >> 6] = ((<uint64_t>1) << (w & 63)) - 1
    self._lhead = 0
    self._ltail = w


cdef inline Py_ssize_t _next_current(LocalCache self, Py_ssize_t r) noexcept:
    """The first current log position at or after r, or -1."""
    cdef Py_ssize_t word = r >> 6
    cdef Py_ssize_t nwords = (self._ltail + 63) >> 6
    cdef uint64_t x
    if r >= self._ltail:
        return -1
    x = self._lbits[word] & (~(<uint64_t>0) << (r & 63))
    while True:
        if x:
            r = (word << 6) + nc_ctz64(x)
            return r if r < self._ltail else -1
        word += 1
        if word >= nwords:
            return -1
        x = self._lbits[word]


cdef inline int32_t _lru(LocalCache self) noexcept:
    """The least recently used entry, or NIL: the first current record (the log's
    start moves past the stale records before it for good)."""
    cdef Py_ssize_t r = _next_current(self, self._lhead)
    if r < 0:
        self._lhead = self._ltail
        return NIL
    self._lhead = r
    return self._log[r]


cdef void _make_room(LocalCache self, Py_ssize_t extra, Py_ssize_t w, int32_t keep,
                     Graveyard* g) noexcept:
    """Evict from the LRU end until ``extra`` more entries weighing ``w`` fit.

    ``0 <= w <= _bytelimit`` and ``0 <= _currbytes <= _bytelimit``, so the room left,
    ``_bytelimit - _currbytes``, never overflows (``_currbytes + w`` could). When it
    returns, the entry fits unless the only entry left is ``keep``, and an entry of
    weight ``w`` always fits alone."""
    cdef int32_t victim
    if not (
        (self._maxsize >= 0 and self._nused + extra > self._maxsize)
        or (self._bytelimit >= 0 and w > self._bytelimit - self._currbytes)
    ):
        return
    while (
        (self._maxsize >= 0 and self._nused + extra > self._maxsize)
        or (self._bytelimit >= 0 and w > self._bytelimit - self._currbytes)
    ):
        victim = _lru(self)
        if victim == NIL or victim == keep:
            break
        _remove(self, victim, g)
        self._evictions += 1


cdef inline void _prefetch_victims(LocalCache self, Py_ssize_t r) noexcept:
    """Prefetch what the next two evictions touch, r being the log position of the
    entry being evicted now: the next victim's index slot and key (its reference
    count is written when it goes; its entry was prefetched by the eviction before),
    and the entry of the victim after it. In a large cache each of these is a cache
    miss that would otherwise come one after the other. Only hints: a hit in
    between makes another entry the next victim, and nothing is read wrong."""
    cdef Entry* e
    r = _next_current(self, r + 1)
    if r < 0:
        return
    e = &self._entries[self._log[r]]
    nc_prefetch_w(&self._index[<size_t>e.hash & self._mask])
    nc_prefetch_w(e.key)
    r = _next_current(self, r + 1)
    if r >= 0:
        nc_prefetch_w(&self._entries[self._log[r]])


cdef inline void _replace_lru(LocalCache self, object key, object value, Py_hash_t h,
                              size_t slot) noexcept:
    """Put a new key in the place of the least recently used entry: _make_room's
    eviction of one entry then _insert, fused, for the common cache (``maxsize`` its
    only bound, full, exact LRU, no TTL, no cachetools' insertion log), when the index
    needs no rebuild. The caller checks all that. ``slot`` is the key's free index slot
    (never the victim's, which holds an entry). The victim's entry number is reused
    for the new entry; the evicted key and value are released last, once the table is
    consistent (they may run a finalizer that uses the cache)."""
    cdef int32_t victim = _lru(self)        # nused == maxsize >= 1: never NIL
    cdef Entry* e = &self._entries[victim]
    cdef PyObject* old_key = e.key
    cdef PyObject* old_value = e.value
    if self._maxsize >= PREFETCH_VICTIMS:
        _prefetch_victims(self, self._lhead)
    self._index[_slot_of(self, victim)] = DUMMY
    if self._index[slot] == DUMMY:
        self._ndummy -= 1
    self._ndummy += 1
    self._index[slot] = victim
    e.hash = h
    nc_incref(<PyObject*>key)
    e.key = <PyObject*>key
    nc_incref(<PyObject*>value)
    e.value = <PyObject*>value
    _log_append(self, victim)               # the victim's record goes stale: it is new
    self._evictions += 1
    self._version += 2                      # a removal and an insert
    nc_decref(old_key)
    nc_decref(old_value)
