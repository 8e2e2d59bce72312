# cython: language_level=3
"""novacache's compiled in-process cache: ``LocalCache`` and ``memoize``.

The contract is ``docs/local-cache.md``; the pure-Python twin is
``novacache._local_py``. Both run the same tests.

Layout. Entries live inline in one C array (``Entry``: hash, key, value, the position
of its recency record and a free-list link, 32 bytes), reached through an open-addressing
index of ``int32`` slots probed the way CPython's dict probes (``i = 5*i + 1 +
perturb``), so integer keys read in order stay in order in memory. There is no node
object per entry: a hit reads one index slot and one entry, and appends to the recency
log (below). Deleted
index slots become tombstones (``DUMMY``) until the index is rebuilt; free entries are
chained through ``next``. Expiry times and weights live in side arrays that exist only
once a TTL or a weigher is in use, so a cache without them pays nothing for them.

Recency log. A doubly linked LRU list makes every hit write to the entry's two
neighbours, which in a large cache sit anywhere in memory: two cache misses per hit that
a dict lookup does not pay. Instead, the order is a log: an array of entry numbers in
the order they were last used (inserted, hit, or written). A hit appends its entry to
the log and records the position in the entry (``pos``, in the line the lookup already
read), so a hit writes its own entry, the log's end and one bit. A record is current
while its entry points at it, and a bitmap beside the log (one bit per record, small
enough for the L2 cache) marks the current ones; the least recently used entry is the
first current record. When the log is full, ``_compact`` moves the current records (one
per live entry, in order) to its start, finding them in the bitmap without reading stale
records, then tells each entry its new position (writes prefetched ahead): with room for
``RING_FACTOR`` (2) records per entry of capacity, that is at most one moved record per
hit. (A larger log compacts less often but makes the bitmap larger, and every hit
clears a bit at a random place in it: measured with 100,000 entries, 2 beat 4 and 16
in random key order.) The order stays exactly LRU.

Re-entrancy and threads. The GIL makes each stretch of C code here atomic, but any call
into Python (a key's ``__hash__``/``__eq__``, the weigher, an injected timer, a value's
``__del__`` when its last reference goes) can run arbitrary code, including other
threads and calls into this very cache. So every operation follows one rule: call user
code first (weigher, timer, hash), look up (``__eq__`` may run; ``_lookup`` restarts when
the table changed under it), then mutate in pure C, and only when the table is
consistent again release the references it dropped (the ``Graveyard``). Nothing here
allocates a Python object while the table is inconsistent: an allocation may trigger
the garbage collector, and that may run finalizers.
"""

cimport cython
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.object cimport PyObject, PyObject_Hash
from libc.float cimport DBL_MAX
from libc.math cimport INFINITY, isinf, isnan
from libc.stdint cimport int32_t, uint32_t, uint64_t
from libc.string cimport memset

import sys
import threading
import time as _time
from types import GenericAlias

from novacache._stats import CacheInfo, CacheStats
from novacache.errors import ConfigurationError, EntryTooLarge


cdef extern from "_clock.h":
    void nc_clock_init()
    double nc_clock_precise() nogil
    double nc_clock_fast() nogil
    double nc_clock_slack() nogil
    const char* nc_clock_name()
    int NC_CLOCK_IS_PY_MONOTONIC


cdef extern from "_core_support.h":
    ctypedef int (*nc_visitproc)(PyObject*, void*) noexcept
    ctypedef int (*nc_traverseproc)(PyObject*, nc_visitproc, void*) noexcept
    ctypedef int (*nc_inquiry)(PyObject*) noexcept
    nc_traverseproc nc_get_traverse(object tp)
    nc_inquiry nc_get_clear(object tp)
    void nc_set_gc(object tp, nc_traverseproc traverse, nc_inquiry clear)
    void nc_enable_vectorcall(object tp, Py_ssize_t offset)
    void nc_prefetch_w(void* p) noexcept nogil
    int nc_ctz64(uint64_t x) noexcept nogil
    Py_hash_t nc_hash(object o) except? -1
    Py_ssize_t nc_vectorcall_nargs(size_t nargsf)
    object nc_vectorcall(object f, PyObject** args, size_t nargsf, PyObject* kwnames)


cdef extern from "Python.h":
    int Py_EQ
    int nc_richcompare_bool "PyObject_RichCompareBool"(PyObject*, PyObject*, int)
    void nc_incref "Py_INCREF"(PyObject*)
    void nc_decref "Py_DECREF"(PyObject*)
    bint PyLong_CheckExact(object)
    bint PyUnicode_CheckExact(object)
    bint PyTuple_CheckExact(object)
    Py_ssize_t PyTuple_GET_SIZE(object)
    PyObject* PyTuple_GET_ITEM(object, Py_ssize_t)
    object PyTuple_New(Py_ssize_t)
    void nc_tuple_set "PyTuple_SET_ITEM"(object, Py_ssize_t, PyObject*)
    object PyMethod_New(object, object)
    object PyNumber_Index(object)
    double PyLong_AsDouble(object) except? -1.0
    long long PyLong_AsLongLongAndOverflow(object, int*) except? -1
    Py_ssize_t PY_SSIZE_T_MAX
    bint PyFloat_CheckExact(object)
    bint PyBool_Check(object)
    bint PyLong_Check(object)
    int PY_VERSION_HEX
    double PyFloat_AS_DOUBLE(object)
    PyObject* PyExc_KeyError


cdef enum:
    EMPTY = -1          # index slot never used since the last rebuild
    DUMMY = -2          # index slot whose entry was removed (a tombstone)
    NIL = -1            # no entry: end of the free list and the order lists
    MIN_INDEX = 8       # smallest index (a power of two)
    MIN_ENTRIES = 8
    SWEEP_STEPS = 4     # entries examined for expiry per insert of a new key
    MAX_ENTRIES = 2147483646
    RING_FACTOR = 2     # recency log records per entry of capacity
    PREFETCH_AHEAD = 32 # log records whose entries _compact prefetches ahead


ctypedef struct Entry:
    Py_hash_t hash
    PyObject* key       # NULL: the entry is free
    PyObject* value
    uint32_t pos        # position of the entry's current record in the recency log
    int32_t next        # a free entry: the next free one (free list); a live one, in
                        # cachetools' mode: its place in the insertion log (_ilog)


nc_clock_init()

cdef object _MISSING = object()
cdef object _getsizeof = sys.getsizeof


def default_weigher(key, value):
    """The default weigher: ``sys.getsizeof(value)``, the shallow size of the value.

    A container counts its own structure, not the objects it holds; pass a ``weigher``
    for deep sizes.
    """
    return _getsizeof(value)


def clock_info():
    """Name and slack (seconds) of the clock used when no ``timer`` is injected."""
    return (nc_clock_name().decode("ascii"), nc_clock_slack())


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


cdef void _gy_release(Graveyard* g) noexcept:
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
# Argument checks shared by the constructor and the methods.
# ---------------------------------------------------------------------------------------

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


cdef double _ttl_arg(object ttl, bint config) except -1.0:
    """A TTL in seconds: a real > 0; math.inf (or None at the call sites) means none.

    A real is what ``PyFloat_AsDouble`` takes (a float, or an object with ``__float__``
    or ``__index__``; never a string), except ``bool``. Not one: ``TypeError``. Zero,
    negative, NaN, or no float at all (``10**400``, ``Decimal("sNaN")``):
    ``ConfigurationError`` when ``config`` (the constructor, memoize), else ``ValueError``. Messages show the float,
    never the caller's object (its ``repr`` may fail, or be a 5,000-digit int).
    The twin's ``_check_ttl`` decides alike.
    """
    cdef double d
    if isinstance(ttl, bool):
        raise TypeError("ttl must be a real number or None, not bool")
    try:
        d = ttl
    except TypeError:
        raise TypeError(f"ttl must be a real number or None, not {type(ttl).__name__}") from None
    except (OverflowError, ValueError):     # 10**400; Decimal("sNaN")
        if config:
            raise ConfigurationError("ttl is not a number a float can hold") from None
        raise ValueError("ttl is not a number a float can hold") from None
    if isnan(d) or d <= 0.0:
        if config:
            raise ConfigurationError(f"ttl must be > 0, math.inf or None, got {d!r}")
        raise ValueError(f"ttl must be > 0, math.inf or None, got {d!r}")
    return d


cdef double _timer_reading(object t) except? -1.0:
    """A reading of an injected timer, in seconds: a real number (as for a TTL, bool
    included: it is an int), not NaN. Not a number: ``TypeError``; NaN or no float at
    all (``10**400``): ``ValueError``. (``inf`` is a time: every deadline has passed.)
    The twin's ``_reading`` decides alike."""
    cdef double d
    if PyFloat_CheckExact(t):
        d = PyFloat_AS_DOUBLE(t)
    else:
        try:
            d = t
        except TypeError:
            raise TypeError(
                f"timer must return a real number, not {type(t).__name__}"
            ) from None
        except (OverflowError, ValueError):     # 10**400; Decimal("sNaN")
            raise ValueError("timer returned a number a float cannot hold") from None
    if isnan(d):
        raise ValueError("timer returned nan, not a time")
    return d


# ---------------------------------------------------------------------------------------
# LocalCache
# ---------------------------------------------------------------------------------------

# ---------------------------------------------------------------------------------------
# cachetools' freezable timer, for the compiled TTLCache of novacache.cachetools
# ---------------------------------------------------------------------------------------

cdef double _EXACT_INT = 9007199254740992.0     # 2**53: larger ints lose bits as doubles


class _Unrepresentable(Exception):
    """Private: a time (a timer's reading, or a time passed to ``expire``) that the
    compiled TTLCache cannot compare exactly as Python would (see :func:`_as_seconds`).
    ``novacache.cachetools`` catches it and moves the cache to its general path, which
    takes the time as it is, as cachetools does. ``args[0]`` is the time."""


class _Moved(_Unrepresentable):
    """Private: while the core called user code in an operation of a cache in
    cachetools' TTL mode, another thread moved the cache to the general path (see
    ``novacache.cachetools._fast``): the operation is done there instead, at the time
    read (``args[0]``, as for :class:`_Unrepresentable`), or reading the timer itself
    when none was read (no ``args``)."""


cdef bint _g_reading_int = False        # the last time _as_seconds took was an int


cdef double _as_seconds(object t) except? -1.0:
    """A time as a double, for times whose double gives, in C comparisons and sums,
    the answers Python gives with the original object: a finite float, or an int (or
    bool) below 2**53 in magnitude. Anything else raises :class:`_Unrepresentable`.
    Records whether it was an int (see ``_ttl_set``)."""
    global _g_reading_int
    cdef double d
    if PyFloat_CheckExact(t):
        d = PyFloat_AS_DOUBLE(t)
        if isinf(d) or isnan(d):
            raise _Unrepresentable(t)
        _g_reading_int = False
        return d
    if PyLong_CheckExact(t) or PyBool_Check(t):
        d = PyLong_AsDouble(t)
        if -_EXACT_INT < d < _EXACT_INT:
            _g_reading_int = True
            return d
    raise _Unrepresentable(t)


def _exact_time(t):
    """Private: whether a time (or TTL) keeps its exact value as a C double, so the
    compiled TTLCache can serve a timer (probed once) and a ttl without changing a
    comparison's answer."""
    if type(t) is float:
        return t == t                       # not NaN: NaN compares False both ways
    if type(t) is int:
        return -_EXACT_INT < t < _EXACT_INT
    return False


cdef class _TTLTimer:
    """The timer of a compiled ``TTLCache``: calling it gives "now" unless the calling
    thread froze it with ``with cache.timer as now:`` (nested blocks keep the outer time).
    Other attributes are the wrapped timer's. The twin of ``_timed._Timer``, readable
    from C: the core asks it for "now" without a Python call unless a thread froze it or
    the timer is not ``time.monotonic`` (on Linux read from the C clock, converted as
    Python converts it; elsewhere called).
    """

    cdef readonly object wrapped    # the user's timer
    cdef bint _c_clock              # wrapped is time.monotonic: the C clock answers
    cdef object _local              # per thread: depth, time
    cdef Py_ssize_t _nfrozen        # threads inside a block (more if one died inside)

    def __cinit__(self, timer):
        if not callable(timer):
            raise TypeError("timer must be callable")
        self.wrapped = timer
        # The C clock stands in for time.monotonic only where it is the same clock.
        self._c_clock = timer is _time.monotonic and NC_CLOCK_IS_PY_MONOTONIC
        self._local = threading.local()

    def __call__(self):
        if self._nfrozen:
            depth = getattr(self._local, "depth", 0)
            if depth:
                return self._local.time
        return self.wrapped()

    def __enter__(self):
        local = self._local
        depth = getattr(local, "depth", 0)
        if not depth:
            now = self.wrapped()
            local.time = now
            local.depth = 1
            self._nfrozen += 1
            return now
        local.depth = depth + 1
        return local.time

    def __exit__(self, *exc):
        local = self._local
        depth = local.depth
        local.depth = depth - 1
        if depth == 1:
            self._nfrozen -= 1
            local.time = None
        return None

    def __copy__(self):
        return _TTLTimer(self.wrapped)

    def __deepcopy__(self, memo):
        import copy
        return _TTLTimer(copy.deepcopy(self.wrapped, memo))

    def __reduce__(self):
        return (_TTLTimer, (self.wrapped,))

    def _enter_at(self, now):
        """Private: as ``__enter__``, at ``now`` instead of a reading of the timer (a
        nested block keeps the outer time); leave with ``__exit__``."""
        local = self._local
        depth = getattr(local, "depth", 0)
        if not depth:
            local.time = now
            self._nfrozen += 1
        local.depth = depth + 1

    def __getattr__(self, name):
        return getattr(self.wrapped, name)


cdef double _ttl_now(_TTLTimer t) except? -1.0:
    """"Now" for the core: the calling thread's frozen time, else the timer's reading."""
    global _g_reading_int
    if t._nfrozen:
        if getattr(t._local, "depth", 0):
            return _as_seconds(t._local.time)
    if t._c_clock:
        _g_reading_int = False
        return nc_clock_precise()
    return _as_seconds(t.wrapped())


cdef class LocalCache:
    """An in-process LRU cache with per-entry TTL and a size budget.

    ``LocalCache(maxsize=None, *, maxbytes=None, weigher=None, ttl=None, timer=None)``

    Holds live objects (no serialization). Bounded by entry count (``maxsize``) and/or
    by the total weight of its entries (``maxbytes``, weights from ``weigher(key,
    value)``, by default ``sys.getsizeof(value)``); the least recently used entries are
    evicted first. ``ttl`` is the default time-to-live in seconds; ``set(k, v, ttl=...)``
    overrides it per entry. An expired entry is never returned. Safe to share between
    threads without a lock. See ``docs/local-cache.md`` for the full contract.

    Without ``timer``, time comes from a C monotonic clock (on Linux a coarse reading,
    checked against the precise one near a deadline, so expiry is exact).
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

    def __init__(self, maxsize=None, *, maxbytes=None, weigher=None, ttl=None, timer=None):
        if self._nfill:
            raise RuntimeError("LocalCache.__init__ called twice")
        self._maxsize = _bound_arg(maxsize, "maxsize")
        self._maxbytes = _bound_arg(maxbytes, "maxbytes")
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

    def __dealloc__(self):
        _release_table(self)
        PyMem_Free(self._index)
        self._index = NULL

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
            ix = _lru(self)
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
        """Remove every entry. The counters other than currsize/currbytes are kept."""
        _release_table(self)

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
        self._hits = self._misses = self._evictions = self._expirations = 0

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
    def currbytes(self):
        return self._currbytes

    @property
    def stats(self):
        """A ``CacheStats`` snapshot of the counters (plain C integers, read now)."""
        return CacheStats(
            self._hits, self._misses, self._evictions, self._expirations,
            self._nused, self._currbytes,
            None if self._maxsize < 0 else self._maxsize,
            None if self._maxbytes < 0 else self._maxbytes,
        )

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
        }
        state = getattr(self, "__dict__", None)
        return (_restore, (type(self), config, entries), state or None)


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
    )
    for key, value, remaining in entries:
        if remaining is None:
            cache.set(key, value, float("inf"))
        elif remaining > 0:
            cache.set(key, value, remaining)
    return cache


# ---------------------------------------------------------------------------------------
# The base of novacache.cachetools' LRUCache, FIFOCache and TTLCache
# ---------------------------------------------------------------------------------------

cdef uint64_t _ct_epoch = 0         # bumped whenever a hook changes on one of their classes
cdef object _ct_revalidate = None   # set by novacache.cachetools._fast
cdef object _ct_replay = None       # set by novacache.cachetools._fast

# The operations of _ct_guarded.
cdef enum:
    OP_GETITEM = 0
    OP_GET = 1
    OP_CONTAINS = 2
    OP_SETITEM = 3
    OP_DELITEM = 4
    OP_POP = 5
    OP_SETDEFAULT = 6

cdef tuple _OP_NAMES = (
    "__getitem__", "get", "__contains__", "__setitem__", "__delitem__", "pop", "setdefault",
)


def _ct_hooks_changed():
    """Private: a hook of a class based on :class:`_CachetoolsCore` was set or deleted:
    every instance served by the core checks its class again at its next operation."""
    global _ct_epoch
    _ct_epoch += 1


def _ct_install(revalidate, replay):
    """Private, for ``novacache.cachetools._fast``: ``revalidate(cache)`` moves a cache
    served by the core to the general path when its class now has a hook;
    ``replay(cache, times, name, args)`` moves it there because of a time the core
    cannot take (:class:`_Unrepresentable`, whose ``args`` are ``times``), and runs
    method ``name`` of the general path with the timer frozen at that time (if any)."""
    global _ct_revalidate, _ct_replay
    _ct_revalidate = revalidate
    _ct_replay = replay


cdef object _ct_general(_CachetoolsCore self):
    """The pure class serving ``self``, or None when the core does; a cache served by
    the core whose class may have changed since is checked first. While another
    thread moves the cache to the general path, this waits for it."""
    if self._moving is not None:
        _ct_wait(self)
    if self._epoch != _ct_epoch:
        self._epoch = _ct_epoch
        if self._general is None and _ct_revalidate is not None:
            _ct_revalidate(self)
    return self._general


cdef void _ct_wait(_CachetoolsCore self) except *:
    lock = self._moving
    if lock is not None:
        with lock:                          # (an RLock: its own thread goes on)
            pass


def _ct_begin_move(_CachetoolsCore cache, lock):
    """Private: start moving ``cache`` (served by the core) to the general path, holding
    ``lock`` (an RLock): until :func:`_ct_end_move`, the operations of other threads
    wait for it, and one already under way in a call to the timer finds the cache
    moved when the timer returns (it is done again on the general path). False when
    the cache is on the general path or moving already."""
    if cache._moving is not None or cache._general is not None:
        return False
    cache._moving = lock
    cache._slow = True
    cache._moved = True
    return True


def _ct_end_move(_CachetoolsCore cache):
    """Private: the move started by :func:`_ct_begin_move` is over."""
    cache._moving = None


def _ct_mode(_CachetoolsCore cache):
    """Private: the pure class serving ``cache`` (its general path), or None."""
    return _ct_general(cache)


def _ct_reset(_CachetoolsCore cache, general=None):
    """Private: empty ``cache`` and forget its mode, for an ``__init__`` or a
    ``__setstate__`` to set again: served by the core (``general`` None, then still to
    be configured) or by the pure class ``general``, whose state lives in the
    instance's ``__dict__``."""
    _release_table(cache)
    cache._track_insertion = False
    cache._keep_expired = False
    cache._read_refreshes = True
    cache._ttl_timer = None
    cache._ttl_given = None
    cache._timer = None
    cache._weigher = None
    cache._ttl = INFINITY
    cache._maxsize = -1
    cache._maxbytes = -1
    cache._general = general
    cache._guarded = False
    cache._moved = general is not None
    cache._slow = general is not None
    cache._epoch = _ct_epoch


def _ct_guard(_CachetoolsCore cache):
    """Private: ``cache`` (in cachetools' TTL mode) has a timer of the user's, which
    may return a time the core cannot take, and whose calls cachetools counts: its
    operations take :func:`_ct_guarded`."""
    if cache._ttl_timer is None:
        raise ValueError("not a cache in cachetools' TTL mode")
    cache._guarded = True
    cache._slow = True


cdef class _CachetoolsCore(LocalCache):
    """Private: the base of ``novacache.cachetools``' ``LRUCache``, ``FIFOCache`` and
    ``TTLCache``. An instance is served by the core (``_general`` is None), or by the
    general path: the pure class ``_general``, whose methods these slots call with the
    instance itself, so the instance is always of its own class whichever path serves
    it. A TTL cache with a timer of the user's (``_guarded``) is served by the core
    through :func:`_ct_guarded`. The check costs one comparison on the core's path."""

    cdef readonly object _general   # None: the core serves; else the pure class
    cdef bint _slow                 # _general is not None or _guarded or _moving
    cdef uint64_t _epoch            # _ct_epoch when the instance was last checked
    cdef object _moving             # while a thread moves it to the general path: the
                                    # RLock that thread holds (see _ct_begin_move)

    def __cinit__(self, *args, **kwargs):
        self._epoch = _ct_epoch

    def __getitem__(self, key):
        cdef PyObject* v
        if self._slow or self._epoch != _ct_epoch:
            if _ct_general(self) is not None:
                return self._general.__getitem__(self, key)
            if self._guarded:
                return _ct_guarded(self, OP_GETITEM, key, None)
        v = _get(self, key, True, 2)
        if v == NULL:
            return _ct_missing(self, key)
        return <object>v

    def get(self, key, default=None):
        cdef PyObject* v
        if self._slow or self._epoch != _ct_epoch:
            if _ct_general(self) is not None:
                return self._general.get(self, key, default)
            if self._guarded:
                return _ct_guarded(self, OP_GET, key, default)
        v = _get(self, key, True, 1)
        if v == NULL:
            return default
        return <object>v

    def __contains__(self, key):
        if self._slow or self._epoch != _ct_epoch:
            if _ct_general(self) is not None:
                return self._general.__contains__(self, key)
            if self._guarded:
                return _ct_guarded(self, OP_CONTAINS, key, None)
        return _get(self, key, False, 0) != NULL

    def __setitem__(self, key, value):
        if self._slow or self._epoch != _ct_epoch:
            if _ct_general(self) is not None:
                self._general.__setitem__(self, key, value)
                return
            if self._guarded:
                _ct_guarded(self, OP_SETITEM, key, value)
                return
        if _set(self, key, value, self._ttl, -1):
            _ct_general(self).__setitem__(self, key, value)  # moved meanwhile (_ttl_set)

    def __delitem__(self, key):
        if self._slow or self._epoch != _ct_epoch:
            if _ct_general(self) is not None:
                self._general.__delitem__(self, key)
                return
            if self._guarded:
                _ct_guarded(self, OP_DELITEM, key, None)
                return
        if not _discard(self, key, NULL):
            raise KeyError(key)

    def __len__(self):
        if self._slow or self._epoch != _ct_epoch:
            if _ct_general(self) is not None:
                return self._general.__len__(self)
        return self._nused

    def pop(self, key, default=_MISSING):
        cdef PyObject* v = NULL
        if self._slow or self._epoch != _ct_epoch:
            if _ct_general(self) is not None:
                if default is _MISSING:
                    return self._general.pop(self, key)
                return self._general.pop(self, key, default)
            if self._guarded:
                return _ct_guarded(self, OP_POP, key, default)
        if _discard(self, key, &v):
            return _steal(v)
        if default is _MISSING:
            raise KeyError(key)
        return default

    def setdefault(self, key, default=None):
        cdef PyObject* v
        if self._slow or self._epoch != _ct_epoch:
            if _ct_general(self) is not None:
                return self._general.setdefault(self, key, default)
            if self._guarded:
                return _ct_guarded(self, OP_SETDEFAULT, key, default)
        v = _get(self, key, True, 1)
        if v != NULL:
            return <object>v
        if _set(self, key, default, self._ttl, -1):
            return _ct_general(self).setdefault(self, key, default)  # moved meanwhile
        return default

    def clear(self):
        if self._slow or self._epoch != _ct_epoch:
            if _ct_general(self) is not None:
                self._general.clear(self)
                return
        _release_table(self)


cdef object _ct_missing(_CachetoolsCore self, object key):
    """A miss of ``c[key]``: the class's ``__missing__`` answers, as with cachetools."""
    missing = getattr(type(self), "__missing__", None)
    if missing is not None:
        return missing(self, key)
    raise KeyError(key)


cdef object _ct_guarded(_CachetoolsCore self, int op, object key, object arg):
    """Operation ``op`` of a TTL cache with a timer of the user's, served by the core:
    the timer is called as often as cachetools calls it (``get``, ``pop`` and
    ``setdefault`` freeze it for their duration, as cachetools does), and a time the core
    cannot take moves the cache to the general path, which then runs the operation at
    that time (so the timer is not called twice)."""
    cdef PyObject* v = NULL
    cdef _TTLTimer view = self._ttl_timer
    cdef bint found
    try:
        if op == OP_GETITEM:
            v = _get(self, key, True, 2)
            if v != NULL:
                return <object>v
        elif op == OP_CONTAINS:
            return _get(self, key, False, 0) != NULL
        elif op == OP_SETITEM:
            _ttl_set(self, key, arg)
            return None
        elif op == OP_DELITEM:
            _ct_ttl_delitem(self, key)
            return None
        else:
            with view:
                if op == OP_GET:
                    v = _get(self, key, True, 1)
                    return arg if v == NULL else <object>v
                if op == OP_POP:
                    found = _discard(self, key, &v)
                    if found:
                        return _steal(v)
                    if arg is _MISSING:
                        raise KeyError(key)
                    return arg
                v = _get(self, key, True, 1)     # OP_SETDEFAULT
                if v != NULL:
                    return <object>v
                _ttl_set(self, key, arg)
                return arg
    except _Unrepresentable as exc:         # (or _Moved)
        name = _OP_NAMES[op]
        if op == OP_GETITEM or op == OP_CONTAINS or op == OP_DELITEM:
            return _ct_replay(self, exc.args, name, (key,))
        if op == OP_POP and arg is _MISSING:
            return _ct_replay(self, exc.args, name, (key,))
        return _ct_replay(self, exc.args, name, (key, arg))
    return _ct_missing(self, key)           # OP_GETITEM: a miss


cdef int _ct_ttl_delitem(LocalCache self, object key) except -1:
    """cachetools' ``TTLCache.__delitem__``: ``KeyError`` for an absent key (without
    reading the timer); else remove it, then read the timer (which may raise: the key
    is gone all the same), and raise ``KeyError`` if it had expired. The reading is
    compared as Python compares it, whatever it is."""
    cdef Py_hash_t h = PyObject_Hash(key)
    cdef Py_ssize_t ix = _lookup(self, key, h, NULL)
    cdef double deadline
    cdef Graveyard g
    if self._moved:
        raise _Moved()                      # the key's __hash__/__eq__ let it move
    if ix < 0:
        raise KeyError(key)
    deadline = INFINITY if self._expires == NULL else self._expires[ix]
    _gy_init(&g)
    _remove(self, <int32_t>ix, &g)
    _gy_release(&g)
    now = self._ttl_timer() if self._ttl_timer is not None else self._timer()
    if not (now < deadline):
        raise KeyError(key)
    return 0


# ---------------------------------------------------------------------------------------
# The table. All helpers take the cache as first argument; none is virtual.
# ---------------------------------------------------------------------------------------

cdef inline object _steal(PyObject* o):
    """Turn an owned reference into an object (the cast adds one; drop ours)."""
    cdef object r = <object>o
    nc_decref(o)
    return r


cdef double _call_timer(LocalCache self) except? -1.0:
    cdef _TTLTimer view = self._ttl_timer
    cdef double now
    if self._moved:
        raise _Moved()                      # moved before this call (see below)
    if view is not None:
        now = _ttl_now(view)
        if self._moved:
            # The timer (user code) let another thread move the cache to the general
            # path: what the core was doing no longer counts.
            raise _Moved(int(now) if _g_reading_int else now)
        return now
    return _timer_reading(self._timer())


cdef inline bint _c_expired(double expires) noexcept nogil:
    """Whether a deadline from nc_clock_precise() has passed, reading the cheap clock
    first and the precise one only inside the slack before the deadline."""
    cdef double now = nc_clock_fast()
    if now >= expires:
        return True
    if now + nc_clock_slack() < expires:
        return False
    return nc_clock_precise() >= expires


cdef inline bint _entry_expired(LocalCache self, int32_t ix, double now) noexcept:
    """Whether entry ix is expired; ``now`` is used only with an injected timer."""
    cdef double exp
    if self._expires == NULL:
        return False
    exp = self._expires[ix]
    if exp == INFINITY:
        return False
    if self._timer is not None:
        return now >= exp
    return _c_expired(exp)


cdef Py_ssize_t _lookup(LocalCache self, object key, Py_hash_t h, size_t* slotp) except -2:
    """Index of the entry holding ``key``, or -1.

    With ``slotp``, also stores the index slot: the slot of the entry when found, else
    the slot where ``key`` would be inserted (the first tombstone or empty slot on its
    probe path). A key's ``__eq__`` may change the table; then the probe restarts, as
    CPython's dict does.
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
                    startkey = e.key
                    nc_incref(startkey)
                    version = self._version
                    cmp = nc_richcompare_bool(startkey, k, Py_EQ)
                    nc_decref(startkey)
                    if cmp < 0:
                        return -2
                    if self._version != version or self._mask != mask:
                        break               # the table changed: start over
                    if cmp > 0:
                        if slotp != NULL:
                            slotp[0] = i
                        return ix
            elif ix == EMPTY:
                if slotp != NULL:
                    slotp[0] = i if freeslot == <size_t>-1 else freeslot
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


cdef void _remove(LocalCache self, int32_t ix, Graveyard* g) noexcept:
    """Take entry ix out of the index, the list and the counters; its key and value go
    to the graveyard."""
    cdef Entry* e = &self._entries[ix]
    self._index[_slot_of(self, ix)] = DUMMY
    self._ndummy += 1
    _bit_clear(self._lbits, e.pos)          # its log record is stale from now on
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
        ix = _lookup(self, key, h, NULL)
        if ix < 0:
            if count:
                self._misses += 1
            return NULL
    if self._expires != NULL and self._expires[ix] != INFINITY:
        # Live by the C clock (the default): a hit. Anything else: _get_timed.
        if self._timer is not None or _c_expired(self._expires[ix]):
            return _get_timed(self, key, h, ix, count, touch)
    if touch and self._read_refreshes:
        _touch(self, <int32_t>ix)
    if count:
        self._hits += 1
    return self._entries[ix].value


cdef PyObject* _get_timed(LocalCache self, object key, Py_hash_t h, Py_ssize_t ix,
                          bint count, int touch) except? NULL:
    """``_get`` for an entry with a deadline: check it against now."""
    cdef double now = 0.0, exp
    cdef bint have_now = False, expired
    cdef uint64_t version
    while ix >= 0:
        exp = INFINITY if self._expires == NULL else self._expires[ix]
        if exp != INFINITY:
            if self._timer is None:
                expired = _c_expired(exp)
            elif (self._ttl_timer is not None and self._ttl_timer._c_clock
                    and not self._ttl_timer._nfrozen):
                expired = _c_expired(exp)
            else:
                if not have_now:
                    if touch == 2 and self._keep_expired:
                        _touch(self, <int32_t>ix)  # cachetools refreshes, then reads
                    version = self._version
                    now = _call_timer(self)
                    have_now = True
                    if self._version != version:
                        ix = _lookup(self, key, h, NULL)
                        continue        # the timer changed the table: look again
                expired = now >= exp
            if expired:
                if not self._keep_expired:
                    _expire_one(self, <int32_t>ix)
                elif touch == 2:
                    _touch(self, <int32_t>ix)
                break
        if touch and self._read_refreshes:
            _touch(self, <int32_t>ix)
        if count:
            self._hits += 1
        return self._entries[ix].value
    if count:
        self._misses += 1
    return NULL


cdef Py_ssize_t _expire_one(LocalCache self, int32_t ix) noexcept:
    cdef Graveyard g
    _gy_init(&g)
    _remove(self, ix, &g)
    self._expirations += 1
    _gy_release(&g)
    return -1


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
    h = nc_hash(key)
    # 2. Look up (a key's __eq__ may run; _lookup copes). The common overwrite, the key
    # object itself in its home slot, needs no probe loop.
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
    _gy_init(&g)
    if self._nttl > 0:
        _sweep(self, now, &g)
    _make_room(self, 1, w, NIL, &g)
    try:
        _insert(self, key, value, h, slot, expires, w)
    finally:
        _gy_release(&g)
    return 0


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


cdef inline void _set_expiry(LocalCache self, int32_t ix, double expires) noexcept:
    cdef double old
    if self._expires == NULL:
        return                              # no TTL ever: expires is INFINITY
    old = self._expires[ix]
    if old != INFINITY:
        self._nttl -= 1
    if expires != INFINITY:
        self._nttl += 1
    self._expires[ix] = expires


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


cdef void _sweep(LocalCache self, double now, Graveyard* g) noexcept:
    """Examine a few entries, round robin, and remove those that have expired."""
    cdef Py_ssize_t steps = SWEEP_STEPS
    cdef Py_ssize_t ix
    if self._nfill == 0:
        return
    while steps > 0 and self._nttl > 0:
        ix = self._sweep
        if ix >= self._nfill:
            ix = 0
        self._sweep = ix + 1
        if self._entries[ix].key != NULL and _entry_expired(self, <int32_t>ix, now):
            _remove(self, <int32_t>ix, g)
            self._expirations += 1
        steps -= 1


cdef int _insert(LocalCache self, object key, object value, Py_hash_t h, size_t slot,
                 double expires, Py_ssize_t w) except -1:
    cdef int32_t ix
    cdef Entry* e
    if <size_t>(self._nused + self._ndummy + 1) * 3 > (self._mask + 1) * 2:
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
    if self._weights != NULL:
        self._weights[ix] = w
        self._currbytes += w
    e.pos = NOPOS                           # no record yet (a fresh entry is garbage)
    _log_append(self, ix)
    if self._track_insertion:
        self._ilog[self._ilen] = ix
        e.next = <int32_t>self._ilen
        self._ilen += 1
    if self._worder != NULL:
        _ol_append(self._worder, &self._wfirst, &self._wlast, ix)
    self._nused += 1
    self._version += 1
    return 0


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
    cdef Py_ssize_t i
    cdef Entry* entries
    cdef double* expires
    cdef Py_ssize_t* weights
    cdef int32_t* iorder
    cdef int32_t* log
    cdef uint64_t* bits
    cdef Py_ssize_t lcap
    if self._maxsize >= 0 and cap > self._maxsize:
        cap = max(self._maxsize, self._ecap + 1)
    if cap > MAX_ENTRIES:
        cap = MAX_ENTRIES
    if cap <= self._ecap:
        raise OverflowError("LocalCache cannot hold more than 2**31 - 2 entries")
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


cdef int _alloc_expires(LocalCache self) except -1:
    cdef Py_ssize_t i
    cdef Py_ssize_t cap = self._ecap if self._ecap > 0 else 1
    cdef double* expires = <double*>PyMem_Malloc(cap * sizeof(double))
    if expires == NULL:
        raise MemoryError()
    for i in range(cap):
        expires[i] = INFINITY
    self._expires = expires
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
    self._version += 1
    for ix in range(nfill):
        if entries[ix].key != NULL:
            nc_decref(entries[ix].key)
            nc_decref(entries[ix].value)
    PyMem_Free(entries)
    PyMem_Free(expires)
    PyMem_Free(weights)


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


# ---------------------------------------------------------------------------------------
# memoize
# ---------------------------------------------------------------------------------------

cdef object _KWD_MARK = object()


cdef inline void _tuple_put(object t, Py_ssize_t i, PyObject* o) noexcept:
    """PyTuple_SET_ITEM steals a reference: give it one of its own."""
    nc_incref(o)
    nc_tuple_set(t, i, o)


cdef object _make_key(PyObject** args, Py_ssize_t nargs, PyObject* kwnames, bint typed):
    """The cache key of a call, as functools builds it: a lone int or str argument is its
    own key; otherwise the arguments, a marker, the keyword items and (typed) the types,
    in one tuple."""
    cdef Py_ssize_t nkw = 0 if kwnames == NULL else PyTuple_GET_SIZE(<object>kwnames)
    cdef Py_ssize_t size = nargs + (1 + 2 * nkw if nkw else 0)
    cdef Py_ssize_t i, j
    cdef object key
    cdef object a
    if nargs == 1 and nkw == 0 and not typed:
        a = <object>args[0]
        if PyLong_CheckExact(a) or PyUnicode_CheckExact(a):
            return a
    if typed:
        size += nargs + nkw
    key = PyTuple_New(size)
    for i in range(nargs):
        _tuple_put(key, i, args[i])
    j = nargs
    if nkw:
        _tuple_put(key, j, <PyObject*>_KWD_MARK)
        j += 1
        for i in range(nkw):
            _tuple_put(key, j, PyTuple_GET_ITEM(<object>kwnames, i))
            _tuple_put(key, j + 1, args[nargs + i])
            j += 2
    if typed:
        for i in range(nargs + nkw):
            a = type(<object>args[i])
            _tuple_put(key, j, <PyObject*>a)
            j += 1
    return key


@cython.final
cdef class Memoized:
    """A function wrapped by :func:`memoize`: call it as the function itself.

    ``cache_info()``, ``cache_clear()``, ``cache_parameters()`` and ``__wrapped__`` as
    for ``functools.lru_cache``.
    """

    cdef void* _vectorcall          # read by CPython through tp_vectorcall_offset
    cdef object _func
    cdef LocalCache _cache          # None when maxsize == 0: nothing is cached
    cdef bint _typed
    cdef object _maxsize
    cdef object _ttl
    cdef uint64_t _uncached_misses
    cdef dict __dict__
    cdef object __weakref__

    def __cinit__(self, *args, **kwargs):
        self._vectorcall = <void*>_memoized_vectorcall

    def __init__(self, func, maxsize=128, *, ttl=None, typed=False, timer=None):
        if not callable(func):
            raise TypeError("memoize expects a callable")
        if maxsize is not None:
            if isinstance(maxsize, bool) or not isinstance(maxsize, int):
                raise TypeError("maxsize must be an int or None")
            if maxsize < 0:
                maxsize = 0
        self._func = func
        self._typed = bool(typed)
        self._maxsize = maxsize
        self._ttl = ttl
        if ttl is not None:
            _ttl_arg(ttl, True)
        # Any maxsize is accepted, as functools does: beyond the largest cache it means
        # no bound in practice.
        self._cache = None if maxsize == 0 else LocalCache(
            None if maxsize is None else min(maxsize, MAX_ENTRIES), ttl=ttl, timer=timer
        )
        from functools import update_wrapper
        update_wrapper(self, func)

    def __call__(self, *args, **kwargs):
        # Reached only through tp_call (e.g. PyObject_Call); `f(x)` uses vectorcall.
        cdef Py_ssize_t n = len(args)
        cdef tuple kwnames = tuple(kwargs)
        cdef list flat = list(args) + list(kwargs.values())
        cdef PyObject** argv = <PyObject**>PyMem_Malloc((len(flat) + 1) * sizeof(PyObject*))
        cdef Py_ssize_t i
        if argv == NULL:
            raise MemoryError()
        try:
            for i in range(len(flat)):
                argv[i] = <PyObject*>flat[i]
            return _memoized_call(self, argv, n, <PyObject*>kwnames if kwnames else NULL)
        finally:
            PyMem_Free(argv)

    def __get__(self, obj, objtype):
        if obj is None:
            return self
        return PyMethod_New(self, obj)

    def cache_info(self):
        """``CacheInfo(hits, misses, maxsize, currsize)`` as functools reports it."""
        if self._cache is None:
            return CacheInfo(0, self._uncached_misses, 0, 0)
        return CacheInfo(self._cache._hits, self._cache._misses, self._maxsize,
                         self._cache._nused)

    def cache_clear(self):
        """Drop every cached result and zero the counters."""
        self._uncached_misses = 0
        if self._cache is not None:
            self._cache.clear()
            self._cache.reset_stats()

    def cache_parameters(self):
        """``{"maxsize", "typed", "ttl"}`` as given to memoize."""
        return {"maxsize": self._maxsize, "typed": self._typed, "ttl": self._ttl}

    def __reduce__(self):
        # As functools: pickled by reference to the module-level name.
        return self.__qualname__

    def __repr__(self):
        return f"<novacache.memoize wrapper of {self._func!r}>"

    def __class_getitem__(cls, item):
        return GenericAlias(cls, item)


cdef object _memoized_call(Memoized self, PyObject** args, Py_ssize_t nargs,
                           PyObject* kwnames):
    cdef LocalCache cache = self._cache
    cdef object key
    cdef object result
    cdef PyObject* v
    if cache is None:
        self._uncached_misses += 1
        return nc_vectorcall(self._func, args, <size_t>nargs, kwnames)
    key = _make_key(args, nargs, kwnames, self._typed)
    v = _get(cache, key, True, 1)
    if v != NULL:
        return <object>v
    result = nc_vectorcall(self._func, args, <size_t>nargs, kwnames)
    _set(cache, key, result, cache._ttl, -1)
    return result


cdef object _memoized_vectorcall(object callable, PyObject** args, size_t nargsf,
                                 PyObject* kwnames):
    return _memoized_call(<Memoized>callable, args, nc_vectorcall_nargs(nargsf), kwnames)


cdef Py_ssize_t _vectorcall_offset():
    cdef Memoized probe = Memoized.__new__(Memoized)
    return <Py_ssize_t>(<char*>&probe._vectorcall - <char*><PyObject*>probe)


nc_enable_vectorcall(Memoized, _vectorcall_offset())


def memoize(maxsize=128, *, ttl=None, typed=False, timer=None):
    """Memoize a function like ``functools.lru_cache``, on the compiled LocalCache.

    ``@memoize``, ``@memoize()`` or ``@memoize(maxsize, ttl=..., typed=..., timer=...)``.
    ``maxsize=None`` is unbounded; ``0`` caches nothing. ``ttl`` (seconds) bounds how
    long a result is reused. Exceptions are not cached; concurrent misses of one key may
    each call the function.
    """
    if callable(maxsize) and not isinstance(maxsize, int):
        return Memoized(maxsize, 128, ttl=ttl, typed=typed, timer=timer)
    if maxsize is not None and (isinstance(maxsize, bool) or not isinstance(maxsize, int)):
        raise TypeError(f"maxsize must be an int or None, not {type(maxsize).__name__}")
    if ttl is not None:
        _ttl_arg(ttl, True)
    if timer is not None and not callable(timer):
        raise TypeError("timer must be callable")

    def decorator(func):
        return Memoized(func, maxsize, ttl=ttl, typed=typed, timer=timer)

    return decorator


# ---------------------------------------------------------------------------------------
# cachetools' cached(): the compiled wrapper for the fast path of novacache.cachetools
# ---------------------------------------------------------------------------------------

@cython.final
cdef class _CachedCall:
    """Private: ``novacache.cachetools.cached(cache)`` where ``cache`` is a library
    ``LRUCache``/``FIFOCache`` on this core, with the default key (``hashkey``), no lock
    and no condition. It does what cachetools' wrapper does without a lock: look the key
    up, else call the function and store its result. The Python side sets the public
    attributes (``cache``, ``cache_key``, ``cache_lock``, ``cache_condition``) and the
    ones ``functools.update_wrapper`` copies.
    """

    cdef void* _vectorcall          # read by CPython through tp_vectorcall_offset
    cdef object _func
    cdef _CachetoolsCore _cache
    cdef object _key                # hashkey, for calls with keyword arguments
    cdef bint _counting
    cdef uint64_t _hits
    cdef uint64_t _misses
    cdef object _info_type
    cdef dict __dict__
    cdef object __weakref__

    def __cinit__(self, *args, **kwargs):
        self._vectorcall = <void*>_cached_call_vectorcall

    def __init__(self, func, _CachetoolsCore cache not None, key, bint info, info_type):
        self._func = func
        self._cache = cache
        self._key = key
        self._counting = info
        self._info_type = info_type

    def __call__(self, *args, **kwargs):
        # Reached only through tp_call; `f(x)` uses vectorcall.
        return _cached_call_slow(self, args, kwargs)

    def __get__(self, obj, objtype):
        if obj is None:
            return self
        return PyMethod_New(self, obj)

    @property
    def cache_info(self):
        """``cache_info()``, present only for ``cached(..., info=True)``."""
        if not self._counting:
            raise AttributeError("'cached' wrapper has no attribute 'cache_info'")
        return self._cache_info

    def _cache_info(self):
        cache = self._cache
        return self._info_type(self._hits, self._misses, cache.maxsize, cache.currsize)

    def __dir__(self):
        # As cachetools' wrapper: ``cache_info`` only with ``info=True``.
        names = object.__dir__(self)
        if not self._counting:
            names = [name for name in names if name != "cache_info"]
        return names

    def cache_clear(self):
        """Clear the cache (and, with ``info``, the hit and miss counts)."""
        self._cache.clear()
        self._hits = self._misses = 0

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __reduce__(self):
        return self.__qualname__

    def __repr__(self):
        return f"<cached {self._func!r}>"


cdef object _cached_call_slow(_CachedCall self, tuple args, dict kwargs):
    key = self._key(*args, **kwargs)
    return _cached_call_with_key(self, key, args, kwargs)


cdef inline object _cached_call_with_key(_CachedCall self, object key, tuple args,
                                        dict kwargs):
    """Look ``key`` up; on a miss call the function (``kwargs`` may be ``None``) and
    store its result. A cache the core no longer serves (see ``_CachetoolsCore``) takes
    the general path."""
    cdef PyObject* v
    cdef _CachetoolsCore cache = self._cache
    if cache._slow or cache._epoch != _ct_epoch:
        if _ct_general(cache) is not None or cache._guarded:
            return _cached_call_general(self, key, args, kwargs)
    v = _get(cache, key, True, 2)  # as cache[key]
    if v != NULL:
        if self._counting:
            self._hits += 1
        return <object>v
    if self._counting:
        self._misses += 1
    result = self._func(*args, **kwargs) if kwargs else self._func(*args)
    if cache._slow or cache._epoch != _ct_epoch:
        if _ct_general(cache) is not None:  # the function changed the cache's class
            try:
                cache[key] = result
            except ValueError:
                pass
            return result
    if _set(cache, key, result, cache._ttl, -1):    # moved meanwhile (see _ttl_set)
        try:
            cache[key] = result
        except ValueError:
            pass
    return result


cdef object _cached_call_general(_CachedCall self, object key, tuple args, dict kwargs):
    """What cachetools' wrapper without a lock does, through the cache's methods."""
    cache = self._cache
    try:
        value = cache[key]
    except KeyError:
        if self._counting:
            self._misses += 1
    else:
        if self._counting:
            self._hits += 1
        return value
    result = self._func(*args, **kwargs) if kwargs else self._func(*args)
    try:
        cache[key] = result
    except ValueError:
        pass                                # too large to be cached
    return result


cdef object _cached_call_vectorcall(object callable, PyObject** args, size_t nargsf,
                                    PyObject* kwnames):
    cdef _CachedCall self = <_CachedCall>callable
    cdef Py_ssize_t nargs = nc_vectorcall_nargs(nargsf)
    cdef Py_ssize_t i
    cdef object key
    if kwnames != NULL and PyTuple_GET_SIZE(<object>kwnames):
        # Keyword arguments: build the key with hashkey itself (sorted pairs).
        pos = PyTuple_New(nargs)
        for i in range(nargs):
            _tuple_put(pos, i, args[i])
        kw = {}
        for i in range(PyTuple_GET_SIZE(<object>kwnames)):
            kw[<object>PyTuple_GET_ITEM(<object>kwnames, i)] = <object>args[nargs + i]
        return _cached_call_with_key(self, self._key(*pos, **kw), pos, kw)
    key = PyTuple_New(nargs)                # hashkey(*args) is the tuple of the args
    for i in range(nargs):
        _tuple_put(key, i, args[i])
    return _cached_call_with_key(self, key, key, None)


cdef Py_ssize_t _cached_call_offset():
    cdef _CachedCall probe = _CachedCall.__new__(_CachedCall)
    return <Py_ssize_t>(<char*>&probe._vectorcall - <char*><PyObject*>probe)


nc_enable_vectorcall(_CachedCall, _cached_call_offset())
