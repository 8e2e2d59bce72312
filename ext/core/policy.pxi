# The "tinylfu" eviction policy: adaptive W-TinyLFU, decision for decision the
# reference novacache._policy_py.TinyLFUPolicy (read its docstrings for the rules;
# each function here names the reference method it copies).
#
# Holds: the ordered set of 64-bit keys (OSet: the shadow LRU), the count-min sketch
# and the ghost of rejected fingerprints beside it (Sketch), the policy's state
# (Policy) and what
# the rest of the core calls: _pol_new/_pol_free (LocalCache.__init__, clear,
# __dealloc__), _pol_record and _pol_miss (a counted lookup: _get, _get_timed),
# _pol_set_new and _pol_set_existing (a write: _set), _pol_unlink (_remove), _pol_grow
# (_grow_entries), _pol_forget (_release_table), _pol_first/_pol_next (the order of
# keys() and popitem).
# A hit moves nothing (_pol_record): it adds one to the entry's count, 3 bits of its
# pq byte. The count reaches the sketch (_pol_flush) and decides the moves when the
# policy looks at the entry: leaving the window, at the front of probation
# (_pol_settle: lazy promotion) or of protected (_pol_demote_overflow: a second
# chance), weighed as a victim, or removed.
# Relies on: table.pxi (Entry, _remove, the graveyard), capi.pxi (nc_popcount64,
# nc_muldiv); the fields of LocalCache (_entries, _weights, _pol, _evictions).
#
# A cache made with policy="lru" has _pol == NULL and never calls into this file: the
# LRU paths test `_pol` only where they already branch (a miss, an insert, a removal).
#
# Layout. The three queues (window, probation, protected) are doubly linked lists
# threaded through the entry array: an entry's ``pos`` field (the LRU log position,
# unused under this policy) holds its previous entry, its ``next`` field (unused by a
# live entry outside cachetools' modes) the next one. One byte per entry (``pq``) holds
# its queue, three flags and its count. The sketch is 128-byte slabs, 128-byte
# aligned, one per block: 64 bytes of 4-bit counters (a key's four counters in one
# cache line), then the block's ghost bucket (64 bytes: up to 15 fingerprints of
# rejected candidates, oldest first, and their number), so that an insert finds the
# new key's ghost bucket in the line beside its counters (the adjacent-line
# prefetcher fetches the pair) and a rejection writes the candidate's bucket beside
# the counters its frequency just read. Memory per entry of capacity, beside the
# table's own: 1 byte (pq) + 16 bytes (slab: 8 of counters, 8 of ghost; blocks = the
# power of two >= entries / 8, so 16 to 32 bytes in all), and until the first
# eviction the log of the sketch's deferred changes (Sketch.deferred: 8 bytes per
# record, 8 records per block, half the slabs' size; a large one takes memory page by
# page as it is written, as the slabs do).
# The shadow (caches of 1,024 entries or more) adds at most 1.3 to 5 bytes (an OSet
# node and index slots for 1/16 of the entries or fewer).


cdef enum:
    PQ_WINDOW = 0
    PQ_PROBATION = 1
    PQ_PROTECTED = 2
    PQ_QMASK = 3
    PQ_DEMOTED = 4          # demoted from protected, not hit since
    PQ_PENDING = 8          # during an eviction: a candidate (never a victim)
    PQ_SAMPLED = 16         # the shadow samples this key ((h >> 56) < shadow_limit)
    PQ_FLAGS = 31           # the queue and the flags; the top 3 bits: the hit count
    PQ_COUNT_ONE = 32       # one hit in the count (bits 5..7: hits not yet in the sketch)
    PQ_COUNT_FULL = 0xE0    # the count saturates at 7
    POL_Q = 256             # the protected target's unit: 1/256 of a weight
    ADMIT_RANDOM_THRESHOLD = 6
    WINDOW_PERCENT = 1
    WINDOW_MAX_PERCENT = 99
    SHADOW_MIN_ENTRIES = 1024
    SHADOW_MIN_SHIFT = 4
    SHADOW_MAX_CAP = 1024
    SHADOW_PERIOD = 4
    SHADOW_MARGIN = 20
    SHADOW_STEP = 5
    PROTECTED_INITIAL = 80
    PROTECTED_MIN = 5
    PROTECTED_MAX = 90
    DOWN_NUM = 13
    DOWN_DEN = 10
    SAMPLE_FACTOR = 10
    GHOST_PERCENT = 125     # the ghost keeps about this percent of the entries' fingerprints
    SK_DRAIN = 12           # deferred changes applied for each one logged, once draining


cdef uint32_t RNG_SEED = 0x2545F491u
cdef uint64_t NO_BLOCK = <uint64_t>-1   # no block: a sketch's memo holds nothing
cdef long long STEP_CAP = 1LL << 62     # beyond any protected target: steps saturate here
cdef Py_ssize_t POLICY_MAX_CAPACITY = 1LL << 40  # weights stay far from int64 overflow


cdef inline uint64_t _fmix64(Py_hash_t hash) noexcept:
    """MurmurHash3's finaliser on the hash taken as uint64 (the reference's fmix64)."""
    cdef uint64_t h = <uint64_t>hash
    h ^= h >> 33
    h *= 0xFF51AFD7ED558CCDULL
    h ^= h >> 33
    h *= 0xC4CEB9FE1A85EC53ULL
    h ^= h >> 33
    return h


cdef inline uint64_t _mix_memo(Py_hash_t hash, Py_hash_t known, uint64_t known_mix) noexcept:
    """_fmix64(hash), taken from a memo (``known`` and its mix) when it holds it."""
    return known_mix if hash == known else _fmix64(hash)


cdef inline Py_ssize_t _pow2_at_least(Py_ssize_t n) noexcept:
    cdef Py_ssize_t w = 1
    while w < n:
        w <<= 1
    return w


# ---------------------------------------------------------------------------------------
# OSet: an ordered set of uint64 keys (oldest first), as the reference's OrderedDict
# of mixed hashes (the shadow). Nodes in one array,
# chained oldest to newest; an open-addressing index (linear probing, deletion by
# backward shift, so no tombstones) finds a key's node.
# ---------------------------------------------------------------------------------------

ctypedef struct OSNode:
    uint64_t key
    int32_t prev
    int32_t next


ctypedef struct OSet:
    OSNode* nodes
    int32_t* index
    size_t mask
    Py_ssize_t cap          # nodes allocated: members never exceed it
    Py_ssize_t n            # members
    Py_ssize_t nfill        # nodes ever handed out
    int32_t head            # oldest
    int32_t tail            # newest
    int32_t free


cdef size_t OS_SPARSE_SLOTS = 131072     # the largest index kept sparse (see _os_alloc)


cdef inline size_t _os_home(OSet* s, uint64_t key) noexcept:
    return <size_t>((key * 0x9E3779B97F4A7C15ULL) >> 29) & s.mask


cdef int _os_alloc(OSet* s, Py_ssize_t cap) noexcept:
    """Make s an empty set with room for cap members; -1 when out of memory (then s
    is left as it was). The index has 8 to 16 slots per member (load 1/16 to 1/8)
    while that keeps it within OS_SPARSE_SLOTS (512 KB), else 2 to 4 (load 1/4 to
    1/2): a sampled lookup probes the shadow for a hash that is often absent, and a
    shadow miss removes its oldest; at load 1/4 to 1/2 the test "is this slot empty"
    in both is a coin toss to the branch predictor, at 1/8 it is mostly "yes" (this
    sizing was measured on the ghost, which was an OSet then: 2 mispredicts per insert
    at 1,000 entries at the higher load). A larger sparse index no longer fits the
    CPU's caches, and its misses cost more than the mispredicts."""
    cdef size_t size = 8
    cdef OSNode* nodes
    cdef int32_t* index
    while size < <size_t>cap * 2 or (size < <size_t>cap * 8 and size < OS_SPARSE_SLOTS):
        size <<= 1
    nodes = <OSNode*>PyMem_Malloc(cap * sizeof(OSNode))
    index = <int32_t*>PyMem_Malloc(size * sizeof(int32_t))
    if nodes == NULL or index == NULL:
        PyMem_Free(nodes)
        PyMem_Free(index)
        return -1
    memset(index, 0xFF, size * sizeof(int32_t))
    s.nodes = nodes
    s.index = index
    s.mask = size - 1
    s.cap = cap
    s.n = s.nfill = 0
    s.head = s.tail = s.free = NIL
    return 0


cdef void _os_free(OSet* s) noexcept:
    PyMem_Free(s.nodes)
    PyMem_Free(s.index)
    s.nodes = NULL
    s.index = NULL
    s.cap = s.n = s.nfill = 0
    s.head = s.tail = s.free = NIL


cdef inline int32_t _os_find(OSet* s, uint64_t key) noexcept:
    cdef size_t i = _os_home(s, key)
    cdef int32_t ix = s.index[i]
    while ix != NIL:
        if s.nodes[ix].key == key:
            return ix
        i = (i + 1) & s.mask
        ix = s.index[i]
    return NIL


cdef inline void _os_index_put(OSet* s, int32_t ix) noexcept:
    cdef size_t i = _os_home(s, s.nodes[ix].key)
    while s.index[i] != NIL:
        i = (i + 1) & s.mask
    s.index[i] = ix


cdef void _os_append(OSet* s, uint64_t key) noexcept:
    """Add key (not a member) as the newest; the caller keeps n < cap."""
    cdef int32_t ix
    if s.free != NIL:
        ix = s.free
        s.free = s.nodes[ix].next
    else:
        ix = <int32_t>s.nfill
        s.nfill += 1
    s.nodes[ix].key = key
    s.nodes[ix].prev = s.tail
    s.nodes[ix].next = NIL
    if s.tail != NIL:
        s.nodes[s.tail].next = ix
    else:
        s.head = ix
    s.tail = ix
    s.n += 1
    _os_index_put(s, ix)


cdef inline void _os_unchain(OSet* s, int32_t ix) noexcept:
    cdef int32_t p = s.nodes[ix].prev
    cdef int32_t q = s.nodes[ix].next
    if p != NIL:
        s.nodes[p].next = q
    else:
        s.head = q
    if q != NIL:
        s.nodes[q].prev = p
    else:
        s.tail = p


cdef void _os_remove(OSet* s, int32_t ix) noexcept:
    cdef size_t i = _os_home(s, s.nodes[ix].key)
    cdef size_t j, k
    cdef int32_t jx
    while s.index[i] != ix:
        i = (i + 1) & s.mask
    # Backward-shift deletion: pull later members of the probe run into the hole when
    # their home is not cyclically within (hole, their slot].
    j = i
    while True:
        j = (j + 1) & s.mask
        jx = s.index[j]
        if jx == NIL:
            break
        k = _os_home(s, s.nodes[jx].key)
        if (i <= j and i < k and k <= j) or (i > j and (i < k or k <= j)):
            continue
        s.index[i] = jx
        i = j
    s.index[i] = NIL
    _os_unchain(s, ix)
    s.nodes[ix].next = s.free
    s.free = ix
    s.n -= 1


cdef inline void _os_move_to_end(OSet* s, int32_t ix) noexcept:
    if s.tail == ix:
        return
    _os_unchain(s, ix)
    s.nodes[ix].prev = s.tail
    s.nodes[ix].next = NIL
    s.nodes[s.tail].next = ix      # tail != NIL: ix is a member and not the tail
    s.tail = ix


# ---------------------------------------------------------------------------------------
# The count-min sketch (the reference's _Sketch): 4-bit counters, 16 to a uint64 word,
# 8 words (128 counters, 64 bytes) to a block; each block followed by its ghost bucket
# (16 uint32: up to 15 fingerprints, oldest first, empty slots 0, then their number):
# a 128-byte slab, 128-byte aligned.
# ---------------------------------------------------------------------------------------

cdef extern from *:
    """
    /* The slots (bit i: slot i, of 0..14) of a ghost bucket that hold fp (never 0). */
    #if defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
    #include <emmintrin.h>
    static inline unsigned int nc_ghost_match(const uint32_t* b, uint32_t fp) {
        __m128i f = _mm_set1_epi32((int)fp);
        __m128i m0 = _mm_cmpeq_epi32(_mm_load_si128((const __m128i*)b), f);
        __m128i m1 = _mm_cmpeq_epi32(_mm_load_si128((const __m128i*)b + 1), f);
        __m128i m2 = _mm_cmpeq_epi32(_mm_load_si128((const __m128i*)b + 2), f);
        __m128i m3 = _mm_cmpeq_epi32(_mm_load_si128((const __m128i*)b + 3), f);
        __m128i m = _mm_packs_epi16(_mm_packs_epi32(m0, m1), _mm_packs_epi32(m2, m3));
        return (unsigned int)_mm_movemask_epi8(m) & 0x7FFFu;
    }
    #else
    static inline unsigned int nc_ghost_match(const uint32_t* b, uint32_t fp) {
        unsigned int m = 0, i;
        for (i = 0; i < 15; i++)
            m |= (unsigned int)(b[i] == fp) << i;
        return m;
    }
    #endif
    /* Drop bucket b's oldest fingerprint (slot 0) and append fp as its k-th: slots
       1..14 move down one (a fixed-size move the compiler inlines; the slots from k
       on are 0 and stay 0 below slot 14, which k == 15 then overwrites). */
    static inline void nc_ghost_push_full(uint32_t* b, uint32_t fp, uint32_t k) {
        memmove(b, b + 1, 14 * sizeof(uint32_t));
        b[k - 1] = fp;
    }
    """
    unsigned int nc_ghost_match(const uint32_t* b, uint32_t fp) noexcept nogil
    void nc_ghost_push_full(uint32_t* b, uint32_t fp, uint32_t k) noexcept nogil


ctypedef struct Sketch:
    void* mem               # what was allocated (table is in it, 128-byte aligned)
    uint64_t* table         # 16 words a block: 8 of counters, 8 of ghost bucket
    uint64_t block_mask
    Py_ssize_t sample       # increments between two halvings
    Py_ssize_t adds
    uint32_t ghost_k        # the most fingerprints a bucket keeps (1..15)
    Py_ssize_t ghost_n      # fingerprints in all the buckets (the reference's G)
    # The last frequency read through _sk_frequency_memo: of the key whose table hash
    # is memo_hash, in block memo_block (NO_BLOCK: none). Any change to the counters
    # of that block (an increment, an add, a halving) forgets it.
    Py_hash_t memo_hash
    uint64_t memo_block
    int memo_freq
    # Deferred: until the policy first reads the sketch (the cache's first eviction),
    # its changes are logged in order, not applied (log: nlog records, see SK_REC_H;
    # the slabs are allocated zeroed, never written, and the ghost is empty). They
    # are applied in the same order (_sk_apply: drained from three quarters full on,
    # _pol_drain_check; what is left when full or at the first eviction): the same
    # counters, the same halvings, as if applied one by one. A cache that never fills
    # never writes its slabs (a random cache line per insert); the log is written in
    # order.
    bint deferred
    uint64_t* log           # a ring of logmask + 1 = blocks * 8 records
    uint64_t logmask
    Py_ssize_t nlog         # records ever logged (the next goes to nlog & logmask)
    Py_ssize_t head         # records applied (the oldest pending is at head & logmask)
    Py_ssize_t drain        # records applied after each one logged (0: none)


cdef int _sk_alloc(Sketch* sk, Py_ssize_t entries) noexcept:
    """An empty sketch and ghost for ``entries`` (the reference's _Sketch); -1 when
    out of memory (then sk is left as it was). Blocks: the power of two >= entries / 8
    (at least 4); a bucket keeps up to k = min(15, ceil(ghost_max / blocks))
    fingerprints, ghost_max = max(16, entries * GHOST_PERCENT // 100)."""
    cdef Py_ssize_t blocks = _pow2_at_least((max(1, entries) + 7) // 8)
    cdef Py_ssize_t gmax = max(16, entries * GHOST_PERCENT // 100)
    cdef void* mem
    cdef uint64_t* log
    if blocks < 4:
        blocks = 4
    # Zeroed by the allocator: a large one maps pages that stay untouched (and take
    # no memory) until the sketch is first written (_sk_materialize).
    mem = PyMem_Calloc(blocks * 128 + 127, 1)
    if mem == NULL:
        return -1
    # The log, as large as it may grow (blocks * 8 records of 8 bytes: half the
    # slabs): a large one's pages take memory as they are first written.
    log = <uint64_t*>PyMem_Malloc(blocks * 64)
    if log == NULL:
        PyMem_Free(mem)
        return -1
    sk.mem = mem
    sk.table = <uint64_t*>((<size_t>mem + 127) & ~(<size_t>127))
    sk.block_mask = <uint64_t>(blocks - 1)
    sk.sample = max(16, SAMPLE_FACTOR * entries)
    sk.adds = 0
    sk.ghost_k = <uint32_t>min(15, (gmax + blocks - 1) // blocks)
    sk.ghost_n = 0
    sk.memo_block = NO_BLOCK
    sk.deferred = True
    sk.log = log
    sk.logmask = <uint64_t>(blocks * 8 - 1)
    sk.nlog = sk.head = sk.drain = 0
    return 0


cdef void _sk_free(Sketch* sk) noexcept:
    PyMem_Free(sk.mem)
    PyMem_Free(sk.log)
    sk.mem = sk.log = NULL


cdef inline uint64_t* _sk_block(Sketch* sk, uint64_t h) noexcept:
    """h's slab: its block's 8 words of counters, then (words 8..15) its ghost bucket."""
    return sk.table + ((h & sk.block_mask) << 4)


cdef inline uint32_t* _gh_bucket(Sketch* sk, uint64_t h) noexcept:
    """The ghost bucket of h's block: the second half of its slab."""
    return <uint32_t*>(_sk_block(sk, h) + 8)


cdef inline uint32_t _gh_fp(uint64_t h) noexcept:
    """h's fingerprint: its high 32 bits, 0 taken as 1 (an empty slot is 0)."""
    cdef uint32_t fp = <uint32_t>(h >> 32)
    return fp + (fp == 0)


cdef inline void _gh_remove_at(Sketch* sk, uint32_t* b, unsigned int i) noexcept:
    """Take slot i's fingerprint out of bucket b: the later ones shift down."""
    cdef uint32_t n = b[15]
    while i + 1 < n:
        b[i] = b[i + 1]
        i += 1
    b[n - 1] = 0
    b[15] = n - 1
    sk.ghost_n -= 1


cdef inline bint _gh_take(Sketch* sk, uint64_t h) noexcept:
    """The reference's ghost hit: True, and h's fingerprint leaves its bucket, when it
    is there."""
    cdef uint32_t* b = _gh_bucket(sk, h)
    cdef unsigned int m = nc_ghost_match(b, _gh_fp(h))
    if m == 0:
        return False
    _gh_remove_at(sk, b, <unsigned int>nc_ctz64(m))
    return True


cdef inline void _gh_add(Sketch* sk, uint64_t h) noexcept:
    """The reference's ghost record of a rejected candidate: its fingerprint, unless it
    is there, to the end of its bucket; a full bucket (k) drops its oldest first."""
    cdef uint32_t* b = _gh_bucket(sk, h)
    cdef uint32_t fp = _gh_fp(h)
    cdef uint32_t n = b[15]
    if nc_ghost_match(b, fp):
        return
    if n < sk.ghost_k:
        b[n] = fp
        b[15] = n + 1
        sk.ghost_n += 1
        return
    nc_ghost_push_full(b, fp, n)


cdef inline int _sk_frequency(Sketch* sk, uint64_t h) noexcept:
    """The minimum of h's four counters. Row i's counter is bits 32 + 5*i .. 36 + 5*i
    of h within the block's quarter i (words 2*i and 2*i + 1), so the rows never share
    a word."""
    cdef uint64_t* b = _sk_block(sk, h)
    cdef uint64_t c = h >> 32
    cdef uint64_t x0 = c & 31, x1 = (c >> 5) & 31, x2 = (c >> 10) & 31, x3 = (c >> 15) & 31
    cdef uint64_t v0 = (b[x0 >> 4] >> ((x0 & 15) << 2)) & 15
    cdef uint64_t v1 = (b[2 + (x1 >> 4)] >> ((x1 & 15) << 2)) & 15
    cdef uint64_t v2 = (b[4 + (x2 >> 4)] >> ((x2 & 15) << 2)) & 15
    cdef uint64_t v3 = (b[6 + (x3 >> 4)] >> ((x3 & 15) << 2)) & 15
    if v1 < v0:
        v0 = v1
    if v3 < v2:
        v2 = v3
    return <int>(v0 if v0 < v2 else v2)


cdef inline int _sk_frequency_memo(Sketch* sk, Py_hash_t hash) noexcept:
    """_sk_frequency of the key whose table hash is ``hash``, remembered: asked again
    for the same hash while its block's counters are unchanged, the same answer
    without mixing the hash or reading the counters. (The victim a rejected candidate
    leaves in place is weighed again at the next insert.)"""
    cdef uint64_t h
    cdef int f
    if sk.memo_block != NO_BLOCK and sk.memo_hash == hash:
        return sk.memo_freq
    h = _fmix64(hash)
    f = _sk_frequency(sk, h)
    sk.memo_hash = hash
    sk.memo_block = h & sk.block_mask
    sk.memo_freq = f
    return f


cdef inline void _sk_forget(Sketch* sk, uint64_t h) noexcept:
    """h's block is about to change: the memo of _sk_frequency_memo forgets it if it
    held a frequency from that block."""
    if (h & sk.block_mask) == sk.memo_block:
        sk.memo_block = NO_BLOCK


cdef void _sk_age(Sketch* sk) noexcept:
    """Halve every counter; adds = (adds - odd // 4) // 2 (the reference's age). The
    ghost buckets (words 8..15 of each block) stay."""
    cdef Py_ssize_t i, nwords = <Py_ssize_t>(sk.block_mask + 1) * 16
    cdef Py_ssize_t odd = 0
    cdef uint64_t x
    sk.memo_block = NO_BLOCK
    for i in range(nwords):
        if i & 8:
            continue
        x = sk.table[i]
        odd += nc_popcount64(x & 0x1111111111111111ULL)
        sk.table[i] = (x >> 1) & 0x7777777777777777ULL
    sk.adds = (sk.adds - (odd >> 2)) >> 1


cdef inline void _sk_increment(Sketch* sk, uint64_t h) noexcept:
    """Conservative increment: the counters equal to the minimum grow by one, unless it
    is 15; every ``sample`` counted increments, halve (_sk_age)."""
    cdef uint64_t* b = _sk_block(sk, h)
    cdef uint64_t c = h >> 32
    cdef uint64_t x0 = c & 31, x1 = (c >> 5) & 31, x2 = (c >> 10) & 31, x3 = (c >> 15) & 31
    cdef uint64_t* w0 = b + (x0 >> 4)
    cdef uint64_t* w1 = b + 2 + (x1 >> 4)
    cdef uint64_t* w2 = b + 4 + (x2 >> 4)
    cdef uint64_t* w3 = b + 6 + (x3 >> 4)
    cdef uint64_t s0 = (x0 & 15) << 2, s1 = (x1 & 15) << 2
    cdef uint64_t s2 = (x2 & 15) << 2, s3 = (x3 & 15) << 2
    cdef uint64_t v0 = (w0[0] >> s0) & 15, v1 = (w1[0] >> s1) & 15
    cdef uint64_t v2 = (w2[0] >> s2) & 15, v3 = (w3[0] >> s3) & 15
    cdef uint64_t low = v0 if v0 < v1 else v1
    cdef uint64_t low2 = v2 if v2 < v3 else v3
    if low2 < low:
        low = low2
    if low >= 15:
        return
    _sk_forget(sk, h)
    # Without branches: which of the four equal the minimum is a coin toss to the CPU.
    w0[0] += (<uint64_t>(v0 == low)) << s0
    w1[0] += (<uint64_t>(v1 == low)) << s1
    w2[0] += (<uint64_t>(v2 == low)) << s2
    w3[0] += (<uint64_t>(v3 == low)) << s3
    sk.adds += 1
    if sk.adds >= sk.sample:
        _sk_age(sk)


cdef void _sk_add(Sketch* sk, uint64_t h, uint64_t n) noexcept:
    """``n`` conservative increments at once (the reference's add): every counter
    below ``top = min(low + n, 15)`` rises to it (``low`` the minimum); ``top - low``
    increments are counted, then the sketch is halved if ``sample`` were reached.
    Deferred (sk.deferred), logged instead (_sk_log)."""
    if sk.deferred:
        _sk_log(sk, h, n)
        return
    cdef uint64_t* b = _sk_block(sk, h)
    cdef uint64_t c = h >> 32
    cdef uint64_t x0 = c & 31, x1 = (c >> 5) & 31, x2 = (c >> 10) & 31, x3 = (c >> 15) & 31
    cdef uint64_t* w0 = b + (x0 >> 4)
    cdef uint64_t* w1 = b + 2 + (x1 >> 4)
    cdef uint64_t* w2 = b + 4 + (x2 >> 4)
    cdef uint64_t* w3 = b + 6 + (x3 >> 4)
    cdef uint64_t s0 = (x0 & 15) << 2, s1 = (x1 & 15) << 2
    cdef uint64_t s2 = (x2 & 15) << 2, s3 = (x3 & 15) << 2
    cdef uint64_t v0 = (w0[0] >> s0) & 15, v1 = (w1[0] >> s1) & 15
    cdef uint64_t v2 = (w2[0] >> s2) & 15, v3 = (w3[0] >> s3) & 15
    cdef uint64_t low = v0 if v0 < v1 else v1
    cdef uint64_t low2 = v2 if v2 < v3 else v3
    cdef uint64_t top
    if low2 < low:
        low = low2
    top = low + n
    if top > 15:
        top = 15
    if top <= low:
        return
    _sk_forget(sk, h)
    # A counter below top rises by top - v (without branches, as _sk_increment).
    w0[0] += ((top - v0) * <uint64_t>(v0 < top)) << s0
    w1[0] += ((top - v1) * <uint64_t>(v1 < top)) << s1
    w2[0] += ((top - v2) * <uint64_t>(v2 < top)) << s2
    w3[0] += ((top - v3) * <uint64_t>(v3 < top)) << s3
    sk.adds += <Py_ssize_t>(top - low)
    if sk.adds >= sk.sample:
        _sk_age(sk)


# A log record: the bits of h that _sk_add reads (the block, bits 0..31 as masked by
# block_mask < 2**32; the counters, bits 32..51) and n (1..7) in bits 56..58.
cdef uint64_t SK_REC_H = (1ULL << 52) - 1


cdef void _sk_apply(Sketch* sk, Py_ssize_t k) noexcept:
    """Apply the ``k`` oldest logged changes (all when fewer are logged) in their
    order, and stop deferring once none is left. The slabs of the records that follow
    are fetched ahead: the slabs are random, the records in order."""
    cdef Py_ssize_t end = min(sk.nlog, sk.head + k)
    cdef uint64_t* log = sk.log
    cdef uint64_t mask = sk.logmask
    cdef uint64_t r
    sk.deferred = False                     # _sk_add applies while this runs
    while sk.head < end:
        if sk.head + 8 < sk.nlog:
            nc_prefetch_w(_sk_block(sk, log[(sk.head + 8) & mask]))
        r = log[sk.head & mask]
        sk.head += 1
        _sk_add(sk, r & SK_REC_H, r >> 56)
    if sk.head < sk.nlog:
        sk.deferred = True
        return
    PyMem_Free(log)
    sk.log = NULL
    sk.drain = 0


cdef inline void _sk_materialize(Sketch* sk) noexcept:
    """Apply every deferred change: the sketch is read next."""
    _sk_apply(sk, sk.nlog - sk.head)


cdef inline void _sk_push(Sketch* sk, uint64_t h, uint64_t n) noexcept:
    """Append the record of _sk_add(sk, h, n) to the log (which has room)."""
    sk.log[sk.nlog & sk.logmask] = (h & SK_REC_H) | (n << 56)
    sk.nlog += 1


cdef void _sk_log_slow(Sketch* sk, uint64_t h, uint64_t n) noexcept:
    """_sk_log with the log full (its oldest change is applied first: the log is a
    ring) or draining (``drain`` changes are applied after each one logged)."""
    if <uint64_t>(sk.nlog - sk.head) > sk.logmask:
        _sk_apply(sk, 1)
    _sk_push(sk, h, n)
    if sk.drain:
        _sk_apply(sk, sk.drain)


cdef inline void _sk_log(Sketch* sk, uint64_t h, uint64_t n) noexcept:
    """_sk_add(sk, h, n) deferred (sk.deferred): logged."""
    if <uint64_t>(sk.nlog - sk.head) > sk.logmask or sk.drain:
        _sk_log_slow(sk, h, n)
        return
    _sk_push(sk, h, n)


# ---------------------------------------------------------------------------------------
# The policy's state
# ---------------------------------------------------------------------------------------

ctypedef struct Policy:
    Py_ssize_t capacity     # the most total weight (maxsize, or maxbytes)
    Py_ssize_t hint         # entries the sketch (and its ghost) are sized for
    Py_ssize_t window_max
    Py_ssize_t window_min
    long long protected_q   # the protected target, in 1/POL_Q units of weight
    Py_ssize_t qweight[3]
    int32_t qhead[3]        # least recent entry of each queue
    int32_t qtail[3]        # most recent
    Py_ssize_t nres         # resident entries
    Py_ssize_t ndemoted     # resident entries with PQ_DEMOTED
    uint32_t rng
    bint by_weight          # an entry weighs its weight (maxbytes), else 1 (maxsize)
    uint8_t* pq             # per entry: its queue | flags (sized as the entry arrays)
    Sketch sk               # and the ghost, in the same slabs
    OSet shadow
    uint64_t shadow_limit   # a key is sampled iff (h >> 56) < shadow_limit; 0: none
    Py_ssize_t shadow_cap
    Py_ssize_t sh_lookups
    Py_ssize_t sh_hits
    Py_ssize_t sampled_hits
    # _fmix64 of two table hashes, remembered where they are computed for a prefetch
    # and used again by the insert that follows (a pure function of the hash: a memo
    # is right whatever happened in between): the key of the last counted miss
    # (_pol_miss), and the window's oldest entry after the last fused insert.
    Py_hash_t miss_hash
    uint64_t miss_mix
    Py_hash_t cand_hash
    uint64_t cand_mix


cdef Policy* _pol_new(Py_ssize_t capacity, Py_ssize_t entries, bint by_weight,
                      Py_ssize_t ecap) except NULL:
    """A fresh policy (the reference's __init__) for ecap entry slots."""
    cdef Policy* p = <Policy*>PyMem_Malloc(sizeof(Policy))
    cdef int shift, i
    cdef Py_ssize_t n
    if p == NULL:
        raise MemoryError()
    memset(p, 0, sizeof(Policy))
    p.capacity = capacity
    p.hint = max(1, entries)
    p.by_weight = by_weight
    for i in range(3):
        p.qhead[i] = p.qtail[i] = NIL
    p.window_max = max(1, capacity * WINDOW_PERCENT // 100)
    p.window_min = p.window_max
    p.protected_q = <long long>(capacity - p.window_max) * POL_Q * PROTECTED_INITIAL // 100
    p.rng = RNG_SEED
    p.miss_mix = p.cand_mix = _fmix64(0)    # of the hashes they hold (0)
    n = p.hint
    if n >= SHADOW_MIN_ENTRIES:
        shift = SHADOW_MIN_SHIFT
        while shift < 8 and (n >> shift) > SHADOW_MAX_CAP:
            shift += 1
        p.shadow_limit = 256 >> shift
        p.shadow_cap = n >> shift
    p.shadow.head = p.shadow.tail = p.shadow.free = NIL
    if (
        _sk_alloc(&p.sk, p.hint) < 0
        or (p.shadow_limit and _os_alloc(&p.shadow, p.shadow_cap + 1) < 0)
        or _pol_grow(p, ecap) < 0
    ):
        _pol_free(p)
        raise MemoryError()
    return p


cdef void _pol_free(Policy* p) noexcept:
    if p == NULL:
        return
    _sk_free(&p.sk)
    _os_free(&p.shadow)
    PyMem_Free(p.pq)
    PyMem_Free(p)


cdef int _pol_grow(Policy* p, Py_ssize_t ecap) noexcept:
    """Room for ecap entries' bytes (the entry arrays grew); -1 when out of memory."""
    cdef uint8_t* pq
    if ecap <= 0:
        return 0
    pq = <uint8_t*>PyMem_Realloc(p.pq, ecap)
    if pq == NULL:
        return -1
    p.pq = pq
    return 0


cdef void _pol_forget(Policy* p) noexcept:
    """The table was emptied (_release_table): no entry is resident any more."""
    cdef int i
    PyMem_Free(p.pq)
    p.pq = NULL
    for i in range(3):
        p.qhead[i] = p.qtail[i] = NIL
        p.qweight[i] = 0
    p.nres = p.ndemoted = 0


# ---------------------------------------------------------------------------------------
# The queues: doubly linked through Entry.pos (previous) and Entry.next
# ---------------------------------------------------------------------------------------

cdef inline Py_ssize_t _pw(LocalCache self, Policy* p, int32_t ix) noexcept:
    return self._weights[ix] if p.by_weight else 1


cdef inline void _pol_flush(LocalCache self, Policy* p, int32_t ix) noexcept:
    """The reference's _flush: entry ix's hits not yet in the sketch (its count) go
    there (_sk_add), and the count restarts at 0."""
    cdef uint8_t f = p.pq[ix]
    if f >= PQ_COUNT_ONE:
        _sk_add(&p.sk, _fmix64(self._entries[ix].hash), f >> 5)
        p.pq[ix] = f & PQ_FLAGS


cdef inline int _pol_freq(LocalCache self, Policy* p, int32_t ix) noexcept:
    """The reference's _freq: flush entry ix, then its sketch estimate."""
    _pol_flush(self, p, ix)
    return _sk_frequency(&p.sk, _fmix64(self._entries[ix].hash))


cdef inline int _pol_victim_freq(LocalCache self, Policy* p, int32_t ix) noexcept:
    """_pol_freq for a victim, through the sketch's memo (_sk_frequency_memo): the
    victim a rejected candidate leaves in place is weighed again by the next insert."""
    _pol_flush(self, p, ix)
    return _sk_frequency_memo(&p.sk, self._entries[ix].hash)


cdef inline void _q_unlink(Entry* es, Policy* p, int32_t ix, int q) noexcept:
    cdef int32_t pv = <int32_t>es[ix].pos
    cdef int32_t nx = es[ix].next
    if pv != NIL:
        es[pv].next = nx
    else:
        p.qhead[q] = nx
    if nx != NIL:
        es[nx].pos = <uint32_t>pv
    else:
        p.qtail[q] = pv


cdef inline void _q_append(Entry* es, Policy* p, int32_t ix, int q) noexcept:
    cdef int32_t t = p.qtail[q]
    es[ix].pos = <uint32_t>t
    es[ix].next = NIL
    if t != NIL:
        es[t].next = ix
    else:
        p.qhead[q] = ix
    p.qtail[q] = ix


cdef inline void _pol_move(LocalCache self, Policy* p, int32_t ix, int to) noexcept:
    """The reference's _move: out of its queue, to the MRU end of queue ``to``."""
    cdef int q = p.pq[ix] & PQ_QMASK
    cdef Py_ssize_t w = _pw(self, p, ix)
    _q_unlink(self._entries, p, ix, q)
    p.qweight[q] -= w
    p.pq[ix] = <uint8_t>((p.pq[ix] & ~PQ_QMASK) | to)
    _q_append(self._entries, p, ix, to)
    p.qweight[to] += w


cdef void _pol_unlink(LocalCache self, int32_t ix) noexcept:
    """The reference's remove: called by _remove for every entry leaving the table.
    Its hits not yet counted go to the sketch first (_pol_flush)."""
    cdef Policy* p = self._pol
    cdef int q
    _pol_flush(self, p, ix)
    q = p.pq[ix] & PQ_QMASK
    _q_unlink(self._entries, p, ix, q)
    p.qweight[q] -= _pw(self, p, ix)
    if p.pq[ix] & PQ_DEMOTED:
        p.ndemoted -= 1
    p.pq[ix] = 0
    p.nres -= 1


cdef inline int32_t _pol_first(LocalCache self) noexcept:
    """The first resident entry in keys() order: window, probation, protected, each
    oldest first (NIL when empty)."""
    cdef Policy* p = self._pol
    cdef int q
    for q in range(3):
        if p.qhead[q] != NIL:
            return p.qhead[q]
    return NIL


cdef inline int32_t _pol_next(LocalCache self, int32_t ix) noexcept:
    """The entry after ix in keys() order, or NIL."""
    cdef Policy* p = self._pol
    cdef int q
    if self._entries[ix].next != NIL:
        return self._entries[ix].next
    for q in range((p.pq[ix] & PQ_QMASK) + 1, 3):
        if p.qhead[q] != NIL:
            return p.qhead[q]
    return NIL


# ---------------------------------------------------------------------------------------
# The decisions
# ---------------------------------------------------------------------------------------

cdef inline void _pol_clamp_protected(Policy* p) noexcept:
    cdef long long main = p.capacity - p.window_max
    cdef long long lo = main * POL_Q * PROTECTED_MIN // 100
    cdef long long hi = main * POL_Q * PROTECTED_MAX // 100
    if p.protected_q < lo:
        p.protected_q = lo
    if p.protected_q > hi:
        p.protected_q = hi


cdef void _pol_adapt(Policy* p, Py_ssize_t weight, bint grow) noexcept:
    """The reference's _adapt (ARC-style move of the protected target)."""
    cdef long long scale = min(<Py_ssize_t>POL_Q, p.hint // 2)
    cdef long long g = p.sk.ghost_n
    cdef long long d = p.ndemoted
    cdef long long step
    if scale < 1:
        scale = 1
    if grow:
        step = weight * scale
        if g > d:
            step = nc_muldiv(step, g, max(1, d))
        p.protected_q += min(step, STEP_CAP)
    else:
        step = weight * scale * DOWN_NUM // DOWN_DEN
        if d > g:
            step = nc_muldiv(step, d, max(1, g))
        p.protected_q -= min(step, STEP_CAP)
    _pol_clamp_protected(p)


cdef void _pol_shadow_lookup(Policy* p, uint64_t h, bint main_hit) noexcept:
    """The reference's _shadow_lookup: feed the shadow LRU, move the window now and
    then."""
    cdef OSet* sh = &p.shadow
    cdef int32_t ix = _os_find(sh, h)
    cdef Py_ssize_t margin, step, top
    if ix != NIL:
        _os_move_to_end(sh, ix)
        p.sh_hits += 1
    else:
        _os_append(sh, h)
        if sh.n > p.shadow_cap:
            _os_remove(sh, sh.head)
    p.sampled_hits += main_hit
    p.sh_lookups += 1
    if p.sh_lookups < SHADOW_PERIOD * p.shadow_cap:
        return
    margin = p.sh_lookups * SHADOW_MARGIN // 1000
    step = max(1, p.capacity * SHADOW_STEP // 100)
    if p.sh_hits > p.sampled_hits + margin:
        top = max(1, p.capacity * WINDOW_MAX_PERCENT // 100)
        p.window_max = min(top, p.window_max + step)
    elif p.sampled_hits > p.sh_hits + margin:
        p.window_max = max(p.window_min, p.window_max - step)
    _pol_clamp_protected(p)
    p.sh_lookups = p.sh_hits = p.sampled_hits = 0


cdef inline void _pol_demote_overflow(LocalCache self, Policy* p) noexcept:
    """While protected outweighs its target, look at its oldest entry (its head): hit
    since it was placed (a count), it is flushed and goes to the protected tail (a
    second chance, as CLOCK); else it goes to the probation tail with the demoted flag
    (the reference's _demote_overflow). The entry is protected's head, so it is
    unlinked as one (no previous entry to rewrite)."""
    cdef Entry* es = self._entries
    cdef long long limit = p.protected_q >> 8      # // POL_Q; the target is >= 0
    cdef int32_t k, nx
    cdef Py_ssize_t w
    cdef uint8_t f
    while p.qweight[PQ_PROTECTED] > limit:
        k = p.qhead[PQ_PROTECTED]
        if k == NIL:
            break
        nx = es[k].next
        p.qhead[PQ_PROTECTED] = nx
        if nx != NIL:
            es[nx].pos = <uint32_t>NIL
        else:
            p.qtail[PQ_PROTECTED] = NIL
        if p.pq[k] >= PQ_COUNT_ONE:
            _pol_flush(self, p, k)
            _q_append(es, p, k, PQ_PROTECTED)
            continue
        w = _pw(self, p, k)
        p.qweight[PQ_PROTECTED] -= w
        p.qweight[PQ_PROBATION] += w
        _q_append(es, p, k, PQ_PROBATION)
        f = p.pq[k]
        p.ndemoted += (f & PQ_DEMOTED) == 0
        p.pq[k] = <uint8_t>((f & ~PQ_QMASK) | PQ_PROBATION | PQ_DEMOTED)


cdef void _pol_promote(LocalCache self, Policy* p, int32_t ix) noexcept:
    """Probation entry ix, hit since it was placed (so not demoted: a hit clears the
    flag), reached the front (the reference's _promote): flushed, to the protected
    tail. Protected's overflow is demoted at the end of the eviction (_pol_evict)."""
    cdef Py_ssize_t w = _pw(self, p, ix)
    _pol_flush(self, p, ix)
    p.pq[ix] = <uint8_t>((p.pq[ix] & ~PQ_QMASK) | PQ_PROTECTED)
    _q_unlink(self._entries, p, ix, PQ_PROBATION)
    _q_append(self._entries, p, ix, PQ_PROTECTED)
    p.qweight[PQ_PROBATION] -= w
    p.qweight[PQ_PROTECTED] += w


cdef void _pol_undemote(LocalCache self, Policy* p, int32_t ix) noexcept:
    """A hit or a write on an entry demoted from protected and not hit since: the
    flag goes and the protected target grows (_pol_adapt: protected was too small)."""
    p.pq[ix] &= ~PQ_DEMOTED
    p.ndemoted -= 1
    _pol_adapt(p, _pw(self, p, ix), True)


cdef inline uint8_t _pq_counted(uint8_t f) noexcept:
    """pq byte ``f`` with one more hit in its count, unless the count is full (7),
    without a branch (the byte is stored even when unchanged): whether a hot entry's
    count is full is a coin toss to the CPU, on every hit."""
    return <uint8_t>(f + ((<uint8_t>(f < PQ_COUNT_FULL)) << 5))


cdef inline void _pol_touch(LocalCache self, Policy* p, int32_t ix) noexcept:
    """The reference's _touch: a hit or a write adds one to entry ix's count (up to 7),
    after clearing a demoted flag (_pol_undemote); nothing moves until the entry
    reaches the front of its queue."""
    cdef uint8_t f = p.pq[ix]
    if f & PQ_DEMOTED:
        _pol_undemote(self, p, ix)
        f = p.pq[ix]
    p.pq[ix] = _pq_counted(f)


cdef void _pol_rare_hit(LocalCache self, int32_t ix) noexcept:
    """A counted lookup found entry ix, whose key the shadow samples or which is
    demoted: the shadow's lookup, then the flag (the reference's hit, in its order)."""
    cdef Policy* p = self._pol
    if p.pq[ix] & PQ_SAMPLED:
        _pol_shadow_lookup(p, _fmix64(self._entries[ix].hash), True)
    if p.pq[ix] & PQ_DEMOTED:
        _pol_undemote(self, p, ix)


cdef void _pol_miss(LocalCache self, Py_hash_t hash) noexcept:
    """A counted lookup that missed (the reference's hit, not resident)."""
    cdef Policy* p = self._pol
    cdef uint64_t h = _fmix64(hash)
    cdef uint64_t* b = _sk_block(&p.sk, h)
    # A miss is commonly followed by the key's insert (cache-aside, a read-through
    # fill), which reads the key's ghost bucket and writes its counters: fetch the
    # slab's two lines now, while the caller computes the value; the insert takes the
    # mix from here.
    # (Deferred, the slabs are not written yet: the lines fetched are zeros.)
    nc_prefetch_w(b)
    nc_prefetch_w(b + 8)
    p.miss_hash = hash
    p.miss_mix = h
    if p.shadow_limit:
        if (h >> 56) < p.shadow_limit:
            _pol_shadow_lookup(p, h, False)


# _get reaches _pol_rare_hit and _pol_miss through these pointers, never by a direct
# call: the compiler would inline the policy into _get, which then no longer fits
# inline in its callers, and the LRU hit would pay a call (measured: 4 instructions).
ctypedef void (*_PolHitFn)(LocalCache, int32_t) noexcept
ctypedef void (*_PolMissFn)(LocalCache, Py_hash_t) noexcept
cdef _PolHitFn _pol_rare_hit_fn = _pol_rare_hit
cdef _PolMissFn _pol_miss_fn = _pol_miss


cdef inline void _pol_record(LocalCache self, int32_t ix) noexcept:
    """A counted lookup that found live entry ix (the reference's hit, resident): the
    shadow's lookup if it samples the key, a demoted flag cleared (both rare, out of
    line), and one more in the entry's count. Commonly one byte read and written: the
    sketch and the queues see the hits later (_pol_flush, _pol_settle)."""
    cdef Policy* p = self._pol
    cdef uint8_t f = p.pq[ix]
    if f & (PQ_SAMPLED | PQ_DEMOTED):
        _pol_rare_hit_fn(self, ix)
        f = p.pq[ix]
    p.pq[ix] = _pq_counted(f)


cdef inline bint _pol_admit_random(Policy* p) noexcept:
    cdef uint32_t x = p.rng
    x ^= x << 13
    x ^= x >> 17
    x ^= x << 5
    p.rng = x
    return (x & 127) == 0


cdef Py_ssize_t _pol_victims(LocalCache self, Policy* p, Py_ssize_t excess, int* maxf,
                             Graveyard* g) noexcept:
    """The reference's _victims: main entries covering ``excess`` weight, probation LRU
    first, then protected LRU, never a pending one. Without ``g``: how many, and the
    highest frequency among them in ``maxf``; with it: evict them (the same walk)."""
    cdef Entry* es = self._entries
    cdef Py_ssize_t got = 0, n = 0
    cdef int32_t ix, nx
    cdef int q, f
    for q in range(PQ_PROBATION, PQ_PROTECTED + 1):
        ix = p.qhead[q]
        while ix != NIL:
            if got >= excess:
                return n
            nx = es[ix].next
            if not (p.pq[ix] & PQ_PENDING):
                n += 1
                got += _pw(self, p, ix)
                if g == NULL:
                    f = _pol_freq(self, p, ix)
                    if f > maxf[0]:
                        maxf[0] = f
                else:
                    _remove(self, ix, g)
                    self._evictions += 1
            ix = nx
    return n


cdef inline int32_t _pol_first_victim(LocalCache self, Policy* p) noexcept:
    """_pol_victims for an excess of 1 when every entry weighs 1: the probation LRU
    entry that is not pending, else the protected LRU entry (never pending), or NIL."""
    cdef int32_t ix = p.qhead[PQ_PROBATION]
    while ix != NIL:
        if not (p.pq[ix] & PQ_PENDING):
            return ix
        ix = self._entries[ix].next
    return p.qhead[PQ_PROTECTED]


cdef void _pol_settle(LocalCache self, Policy* p) noexcept:
    """The reference's _settle: while the first probation entry that is not pending
    was hit since it was placed, promote it (_pol_promote): the first victim is then
    one that was not hit (lazy promotion, as S3-FIFO's and SIEVE's)."""
    cdef int32_t ix
    while True:
        ix = p.qhead[PQ_PROBATION]
        while ix != NIL and (p.pq[ix] & PQ_PENDING):
            ix = self._entries[ix].next
        if ix == NIL or p.pq[ix] < PQ_COUNT_ONE:
            return
        _pol_promote(self, p, ix)


cdef void _pol_reject(LocalCache self, Policy* p, int32_t ix, Graveyard* g) noexcept:
    """The reference's _reject: out, and its fingerprint to the ghost."""
    cdef uint64_t h = _fmix64(self._entries[ix].hash)
    _remove(self, ix, g)
    self._evictions += 1
    _gh_add(&p.sk, h)


cdef void _pol_evict(LocalCache self, Policy* p, int32_t direct, Graveyard* g) noexcept:
    """The reference's _evict: bring the total weight back to the capacity.

    The pending candidates are the last ``npend`` entries of probation: they are moved
    there first, and nothing else joins probation until the end (promotions leave it;
    protected's overflow is demoted after the pending flags are cleared)."""
    cdef Py_ssize_t npend = 0, excess, nv
    cdef int32_t k, cand, v = NIL
    cdef int cf, vf
    cdef bint admit
    while p.qweight[PQ_WINDOW] > p.window_max and p.qhead[PQ_WINDOW] != NIL:
        k = p.qhead[PQ_WINDOW]
        _pol_flush(self, p, k)
        _pol_move(self, p, k, PQ_PROBATION)
        p.pq[k] |= PQ_PENDING
        npend += 1
    if direct != NIL:
        p.pq[direct] |= PQ_PENDING
    while True:
        excess = p.qweight[0] + p.qweight[1] + p.qweight[2] - p.capacity
        if excess <= 0:
            break
        if p.sk.deferred:
            _sk_materialize(&p.sk)          # the first eviction reads the sketch
        _pol_settle(self, p)
        vf = -1
        if excess == 1 and not p.by_weight:
            # Every entry weighs 1 (the common case): the one victim is the first
            # main entry that is not pending; no second walk to evict it.
            v = _pol_first_victim(self, p)
            nv = v != NIL
            if nv:
                vf = _pol_victim_freq(self, p, v)
        else:
            v = NIL
            nv = _pol_victims(self, p, excess, &vf, NULL)
        if npend == 0:
            if v != NIL:
                _remove(self, v, g)
                self._evictions += 1
            elif nv:
                _pol_victims(self, p, excess, &vf, g)
            elif p.qhead[PQ_WINDOW] != NIL:
                _remove(self, p.qhead[PQ_WINDOW], g)
                self._evictions += 1
            elif direct != NIL:
                # Only the direct entry is left, heavier than the rest: it goes.
                _remove(self, direct, g)
                self._evictions += 1
                direct = NIL
            else:
                break                       # unreachable: nothing resident
            continue
        cand = p.qtail[PQ_PROBATION]
        admit = False
        if nv:
            cf = _pol_freq(self, p, cand)
            admit = cf > vf or (cf >= ADMIT_RANDOM_THRESHOLD and _pol_admit_random(p))
        if admit:
            if v != NIL:
                _remove(self, v, g)
                self._evictions += 1
            else:
                _pol_victims(self, p, excess, &vf, g)
        else:
            npend -= 1
            _pol_reject(self, p, cand, g)
    # The flags of the candidates left (the tail of probation) and of ``direct``.
    k = p.qtail[PQ_PROBATION]
    while npend > 0:
        p.pq[k] &= ~PQ_PENDING
        k = <int32_t>self._entries[k].pos
        npend -= 1
    if direct != NIL and self._entries[direct].key != NULL:
        p.pq[direct] &= ~PQ_PENDING
    _pol_demote_overflow(self, p)


cdef void _pol_grow_sketch(Policy* p) noexcept:
    """The reference's _grow_sketch_if_needed: more entries resident than the sketch
    is sized for (only a weight-bounded cache): an empty sketch for twice as many, and
    so an empty ghost (its buckets are in the sketch's slabs). Out of memory: the old
    one is kept."""
    cdef Sketch sk
    cdef Py_ssize_t hint
    if p.nres <= p.hint:
        return
    hint = _pow2_at_least(2 * p.nres)
    if _sk_alloc(&sk, hint) < 0:
        return
    _sk_free(&p.sk)
    p.sk = sk
    p.hint = hint


cdef void _pol_drain_check(Policy* p) noexcept:
    """After an insert into a cache whose sketch is deferred: from three quarters of
    the capacity on, the log drains (SK_DRAIN changes applied for each one logged),
    so that the first eviction finds it applied (or nearly: the rest is applied
    then) instead of applying it all at once; full by count, it is applied now (the
    next insert may be the fused one, which reads the sketch and the ghost
    directly)."""
    cdef Py_ssize_t total = p.qweight[0] + p.qweight[1] + p.qweight[2]
    if total >= p.capacity and not p.by_weight:
        _sk_materialize(&p.sk)
    elif total >= p.capacity - p.capacity // 4:
        p.sk.drain = SK_DRAIN


cdef void _pol_insert(LocalCache self, int32_t ix, Graveyard* g) noexcept:
    """The reference's insert, for entry ix just added to the table (pure C)."""
    cdef Policy* p = self._pol
    cdef uint64_t h = _fmix64(self._entries[ix].hash)
    cdef int q = PQ_WINDOW
    cdef Py_ssize_t w = _pw(self, p, ix)
    if p.sk.deferred:
        _sk_log(&p.sk, h, 1)                # the ghost is empty: nothing was rejected
    else:
        _sk_increment(&p.sk, h)
        if _gh_take(&p.sk, h):
            _pol_adapt(p, w, False)
            q = PQ_PROBATION
    p.pq[ix] = <uint8_t>(q | (PQ_SAMPLED if (h >> 56) < p.shadow_limit else 0))
    _q_append(self._entries, p, ix, q)
    p.qweight[q] += w
    p.nres += 1
    if p.sk.deferred:
        _pol_drain_check(p)
    if q == PQ_PROBATION:
        _pol_demote_overflow(self, p)
        _pol_evict(self, p, ix, g)
    else:
        _pol_evict(self, p, NIL, g)
    _pol_grow_sketch(p)


cdef void _pol_update(LocalCache self, int32_t ix, Py_ssize_t w, Graveyard* g) noexcept:
    """The reference's update: a write to live entry ix whose new weight is ``w`` (the
    byte weight, or 0 without a weigher): a hit's moves at the old weight, then the
    new weight, then evict."""
    cdef Policy* p = self._pol
    cdef Py_ssize_t old
    _pol_touch(self, p, ix)
    if self._weights != NULL:
        old = self._weights[ix]
        self._currbytes -= old
        self._currbytes += w
        self._weights[ix] = w
        if p.by_weight:
            p.qweight[p.pq[ix] & PQ_QMASK] += w - old
    _pol_evict(self, p, NIL, g)


# ---------------------------------------------------------------------------------------
# _set's two paths under the policy, out of line so that the LRU paths of _set compile
# as they did before the policy existed.
# ---------------------------------------------------------------------------------------

cdef int _pol_set_existing(LocalCache self, int32_t ix, Py_ssize_t w, PyObject* old) except -1:
    """An overwrite of live entry ix (its value already replaced; ``old`` is the
    reference to the previous one, released here)."""
    cdef Graveyard g
    _gy_init(&g)
    _gy_push(&g, old)
    _pol_update(self, ix, w, &g)
    _gy_release(&g)
    return 0


cdef int _pol_set_new(LocalCache self, object key, object value, Py_hash_t h, size_t slot,
                      double expires, Py_ssize_t w, Graveyard* g) except -1:
    """An insert of a new key: into the table, then the policy admits or evicts (the
    new entry may be the one to go). Releases ``g``."""
    cdef int32_t ix
    try:
        ix = _insert(self, key, value, h, slot, expires, w)
        _pol_insert(self, ix, g)
    finally:
        _gy_release(g)
    return 0


cdef inline int32_t _pol_settled_victim(LocalCache self, Policy* p) noexcept:
    """_pol_settle, then _pol_first_victim, for an excess of 1 when every entry weighs
    1: commonly the first probation entry that is not pending was not hit since it
    was placed; then nothing is promoted and it is the victim (one walk, no call)."""
    cdef int32_t ix = p.qhead[PQ_PROBATION]
    while ix != NIL and (p.pq[ix] & PQ_PENDING):
        ix = self._entries[ix].next
    if ix == NIL:
        return p.qhead[PQ_PROTECTED]
    if p.pq[ix] < PQ_COUNT_ONE:
        return ix
    _pol_settle(self, p)
    return _pol_first_victim(self, p)


cdef inline void _pol_prefetch_next(LocalCache self, Policy* p) noexcept:
    """Prefetch what the next fused insert touches: the counters of its candidate,
    the window's oldest entry (flushed there, its frequency read; its mix remembered
    for that insert), and of its likely victim, probation's oldest entry, the index
    slot and the key (its reference count is written if it goes; its frequency is
    commonly remembered, _sk_frequency_memo). Only hints: nothing is read wrong if
    another entry comes first."""
    cdef int32_t c = p.qhead[PQ_WINDOW]
    cdef int32_t v = p.qhead[PQ_PROBATION]
    cdef Entry* e
    if c != NIL:
        p.cand_hash = self._entries[c].hash
        p.cand_mix = _fmix64(p.cand_hash)
        nc_prefetch_w(_sk_block(&p.sk, p.cand_mix))
    if v != NIL:
        e = &self._entries[v]
        nc_prefetch_w(&self._index[<size_t>e.hash & self._mask])
        nc_prefetch_w(e.key)


cdef bint _pol_replace(LocalCache self, object key, object value, Py_hash_t hash,
                       size_t slot) noexcept:
    """The common insert of a new key, fused (as LRU's _replace_lru): every entry
    weighs 1 and the cache is full, so exactly one entry must go, and the new entry
    takes its entry number and the key's index slot: no _remove, no _insert. The
    decisions are _pol_insert's then _pol_evict's, in their order, but the loser is
    known before the new key enters the table. Two cases:

    - the key's fingerprint is not in the ghost and the window is full: the window's
      oldest entry (the candidate) overflows to probation, and the loser is the
      candidate (rejected: its fingerprint to the ghost) or the first victim (the
      candidate admitted). In order: the sketch's increment of the new key, the
      candidate's flush, _pol_settle's promotions, the victim's and the candidate's
      frequencies, the random draw, the ghost, the demotions;
    - the fingerprint is in the ghost (the entry goes straight to probation, *direct*)
      and the window is not over its maximum: no candidate; the loser is the first
      victim (or, with no main entry, the window's oldest). In order: the increment,
      the ghost's removal, _pol_adapt, the demotions (after which the new entry stands
      in probation: before the entries demoted now), _pol_settle, the victim's
      frequency, the demotions again.

    No allocation, no user code: the key and value of the loser are released last,
    once the table and the policy are consistent. False, with nothing changed, in any
    other case (the caller then takes _pol_set_new). The caller checks there is no
    TTL array and no weight array (no weigher)."""
    cdef Policy* p = self._pol
    cdef Entry* es = self._entries
    cdef Entry* e
    cdef uint64_t h, hc
    cdef int32_t cand = NIL, v, loser, nx, before = NIL, pv
    cdef uint32_t* gb
    cdef unsigned int gm
    cdef int cf, vf, q
    cdef uint8_t f
    cdef bint admit = False
    cdef PyObject* old_key
    cdef PyObject* old_value
    if (p.by_weight or self._track_insertion or p.nres != p.capacity
            or <size_t>(self._nused + self._ndummy + 1) * 3 > (self._mask + 1) * 2):
        return False
    h = _mix_memo(hash, p.miss_hash, p.miss_mix)
    gb = _gh_bucket(&p.sk, h)
    gm = nc_ghost_match(gb, _gh_fp(h))
    if gm == 0:
        if p.qweight[PQ_WINDOW] != p.window_max:
            return False
    elif p.qweight[PQ_WINDOW] > p.window_max:
        return False                        # candidates beside a direct entry
    _sk_increment(&p.sk, h)                 # may halve the counters: the ghost stays
    if gm != 0:
        _gh_remove_at(&p.sk, gb, <unsigned int>nc_ctz64(gm))
        _pol_adapt(p, 1, False)
        # The new entry would stand at probation's tail now: the entries demoted next
        # go after it. Remember the first of them (NIL: none).
        pv = p.qtail[PQ_PROBATION]
        _pol_demote_overflow(self, p)
        before = p.qhead[PQ_PROBATION] if pv == NIL else es[pv].next
        # The loser: the first victim, else the window's oldest (the cache is full: the
        # window is not empty). Its hits go to the sketch first, as they do when
        # _pol_evict weighs the victim (_pol_freq) or removes the window's oldest
        # (_pol_unlink); no frequency is read: nothing is compared.
        v = _pol_settled_victim(self, p)
        loser = v if v != NIL else p.qhead[PQ_WINDOW]
        _pol_flush(self, p, loser)
        if loser == before:
            before = es[loser].next
    else:
        # The window's oldest entry (the window holds window_max >= 1 entries)
        # overflows: flushed, out of the window, the candidate.
        cand = p.qhead[PQ_WINDOW]
        hc = _mix_memo(es[cand].hash, p.cand_hash, p.cand_mix)
        f = p.pq[cand]
        if f >= PQ_COUNT_ONE:
            _sk_add(&p.sk, hc, f >> 5)
        nx = es[cand].next
        p.qhead[PQ_WINDOW] = nx
        if nx != NIL:
            es[nx].pos = <uint32_t>NIL
        else:
            p.qtail[PQ_WINDOW] = NIL
        p.qweight[PQ_WINDOW] -= 1
        # It would stand at probation's tail, pending, while the victim is chosen: the
        # walks from probation's head (_pol_settled_victim) skip a pending entry and
        # the promotions only take entries out, so it joins probation's tail once
        # admitted (the same order), and a rejected one never enters it.
        v = _pol_settled_victim(self, p)
        if v != NIL:
            vf = _pol_victim_freq(self, p, v)
            cf = _sk_frequency(&p.sk, hc)   # the candidate's count was flushed above
            admit = cf > vf or (cf >= ADMIT_RANDOM_THRESHOLD and _pol_admit_random(p))
        if admit:
            loser = v
            p.pq[cand] = <uint8_t>((f & PQ_FLAGS) | PQ_PROBATION)  # was WINDOW (0)
            _q_append(es, p, cand, PQ_PROBATION)
            p.qweight[PQ_PROBATION] += 1
        else:
            loser = cand                    # out of the window already
            _gh_add(&p.sk, hc)
    if loser != cand:
        # The loser leaves its queue (its count is 0: flushed above).
        f = p.pq[loser]
        q = f & PQ_QMASK
        _q_unlink(es, p, loser, q)
        p.qweight[q] -= 1
        if f & PQ_DEMOTED:
            p.ndemoted -= 1
    # The new entry takes the loser's entry and the new key's index slot (never the
    # loser's, which holds an entry).
    e = &es[loser]
    old_key = e.key
    old_value = e.value
    self._index[_slot_of(self, loser)] = DUMMY
    self._ndummy += self._index[slot] != DUMMY     # without a branch: a coin toss
    self._index[slot] = loser
    e.hash = hash
    nc_incref(<PyObject*>key)
    e.key = <PyObject*>key
    nc_incref(<PyObject*>value)
    e.value = <PyObject*>value
    f = PQ_SAMPLED if (h >> 56) < p.shadow_limit else 0
    if gm == 0:
        p.pq[loser] = <uint8_t>(PQ_WINDOW | f)
        _q_append(es, p, loser, PQ_WINDOW)
        p.qweight[PQ_WINDOW] += 1
    else:
        p.pq[loser] = <uint8_t>(PQ_PROBATION | f)
        p.qweight[PQ_PROBATION] += 1
        if before == NIL:
            _q_append(es, p, loser, PQ_PROBATION)
        else:
            pv = <int32_t>es[before].pos
            e.pos = <uint32_t>pv
            e.next = before
            es[before].pos = <uint32_t>loser
            if pv != NIL:
                es[pv].next = loser
            else:
                p.qhead[PQ_PROBATION] = loser
    self._evictions += 1
    self._version += 2                      # a removal and an insert
    _pol_demote_overflow(self, p)
    _pol_prefetch_next(self, p)
    nc_decref(old_key)
    nc_decref(old_value)
    return True


# _set reaches _pol_replace through this pointer, as _get reaches _pol_miss: inlined,
# the fused insert would make _set's body (the LRU paths among it) larger and move
# them (measured: the LRU cache-aside loop 1.5 ns a request slower at 1k and 10k
# entries after a change to _pol_replace alone).
ctypedef bint (*_PolReplaceFn)(LocalCache, object, object, Py_hash_t, size_t) noexcept
cdef _PolReplaceFn _pol_replace_fn = _pol_replace
