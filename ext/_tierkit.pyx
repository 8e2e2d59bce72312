# cython: language_level=3
"""Compiled helpers for the bulk paths of the tiers (pure twin: novacache.tiers._kit).

``prefixed(prefix, names)`` is ``[prefix + name for name in names]`` for ``str`` names
(``TypeError`` naming the type otherwise), except that a key with a lone surrogate (no
strict UTF-8) comes as its ``bytes`` in UTF-8 with ``"surrogatepass"`` (the tiers' one
key encoding, novacache.tiers._keys); ``encoded(prefix, names)`` is
``[prefix + name.encode("utf-8", "surrogatepass") for name in names]`` with ``prefix`` as
``bytes`` (one allocation and two copies per key, so the client has nothing left to
encode);
``present(names, values)`` is
``{n: v for n, v in zip(names, values) if v is not None}``, made at its final size (a
dict grown one key at a time is rebuilt five times on its way to 100 keys, each time in
a fresh table: the larger ones come from ``malloc``). They are the two O(n) steps a
tier's ``get_many`` adds to a bare MGET.

Two helpers of the single-key commands, the same as their Python twins in
``novacache.tiers._redis_base`` (a tier's ``get`` and ``set`` call them once each, and a
Python-level call costs a few hundred nanoseconds beside a ~25 us round trip):
``raw_key(prefix, key, limit)`` is ``prefix + key`` in UTF-8 (a lone surrogate passed
through), ``TypeError`` for a key that is not ``str``, ``EntryTooLarge`` past ``limit``
bytes;
``ttl_ms(ttl)`` is the ``PX`` millisecond count of a TTL in seconds (``None``: no
expiry), computed here for ``None``, an exact ``float`` or ``int``; any other type goes
to the Python twin (``novacache.tiers._kit._ttl_ms``).
"""

from cpython.dict cimport PyDict_SetItem
from cpython.list cimport PyList_New, PyList_SET_ITEM
from cpython.ref cimport Py_INCREF
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.unicode cimport PyUnicode_AsEncodedString, PyUnicode_Concat
from libc.string cimport memcpy
from libc.math cimport fabs, round

cdef extern from "Python.h":
    bint PyUnicode_Check(object)
    bint PyUnicode_IS_COMPACT_ASCII(object)
    void* PyUnicode_DATA(object)
    Py_ssize_t PyUnicode_GET_LENGTH(object)
    object PyUnicode_New(Py_ssize_t, Py_UCS4)
    const char* PyUnicode_AsUTF8AndSize(object, Py_ssize_t*) except NULL
    bint PyFloat_CheckExact(object)
    bint PyLong_CheckExact(object)
    double PyFloat_AS_DOUBLE(object)
    long long PyLong_AsLongLongAndOverflow(object, int*) except? -1

cdef extern from *:
    """
    /* A dict with room for n keys, so filling it never resizes. _PyDict_NewPresized is
       what Cython's own code uses on CPython (see __Pyx_PyDict_NewPresized). */
    #if CYTHON_COMPILING_IN_CPYTHON && !defined(Py_LIMITED_API)
    #define __nc_dict_presized(n) _PyDict_NewPresized(n)
    #else
    #define __nc_dict_presized(n) PyDict_New()
    #endif
    """
    dict __nc_dict_presized(Py_ssize_t n)


def encoded(bytes prefix, list names):
    cdef Py_ssize_t i, n = len(names)
    cdef Py_ssize_t plen = len(prefix)
    cdef Py_ssize_t size
    cdef const char* utf8
    cdef const char* head = PyBytes_AS_STRING(prefix)
    cdef char* dest
    cdef list out = PyList_New(n)
    for i in range(n):
        name = names[i]
        if not PyUnicode_Check(name):
            raise TypeError(f"a key must be str, not {type(name).__name__}")
        if PyUnicode_IS_COMPACT_ASCII(name):
            # ASCII: the characters are their own UTF-8 (no call, no cached copy).
            utf8 = <const char*>PyUnicode_DATA(name)
            size = PyUnicode_GET_LENGTH(name)
        else:
            try:
                utf8 = PyUnicode_AsUTF8AndSize(name, &size)
            except UnicodeEncodeError:
                # A lone surrogate: its bytes, passed through (kept alive by `raw`).
                raw = PyUnicode_AsEncodedString(name, "utf-8", "surrogatepass")
                utf8 = PyBytes_AS_STRING(raw)
                size = len(raw)
        key = PyBytes_FromStringAndSize(NULL, plen + size)
        dest = PyBytes_AS_STRING(key)
        memcpy(dest, head, plen)
        memcpy(dest + plen, utf8, size)
        Py_INCREF(key)
        PyList_SET_ITEM(out, i, key)
    return out


def prefixed(str prefix, list names):
    cdef Py_ssize_t i, n = len(names)
    cdef Py_ssize_t plen = len(prefix)
    cdef Py_ssize_t size
    cdef bint ascii = PyUnicode_IS_COMPACT_ASCII(prefix)
    cdef char* dest
    cdef list out = PyList_New(n)
    for i in range(n):
        name = names[i]
        if not PyUnicode_Check(name):
            # The slots not yet filled are NULL, which a list's dealloc skips.
            raise TypeError(f"a key must be str, not {type(name).__name__}")
        if ascii and PyUnicode_IS_COMPACT_ASCII(name):
            # The common case: an ASCII str made in one step (it is its own UTF-8).
            size = PyUnicode_GET_LENGTH(name)
            key = PyUnicode_New(plen + size, 127)
            dest = <char*>PyUnicode_DATA(key)
            memcpy(dest, PyUnicode_DATA(prefix), plen)
            memcpy(dest + plen, PyUnicode_DATA(name), size)
        else:
            key = PyUnicode_Concat(prefix, name)
            # The UTF-8 made here stays cached on the key for the client to send; a key
            # that has none (a lone surrogate) is sent as its bytes instead.
            try:
                PyUnicode_AsUTF8AndSize(key, NULL)
            except UnicodeEncodeError:
                key = PyUnicode_AsEncodedString(key, "utf-8", "surrogatepass")
        Py_INCREF(key)
        PyList_SET_ITEM(out, i, key)
    return out


def present(list names, list values):
    cdef Py_ssize_t i, n = len(names), found = 0
    if len(values) != n:
        raise ValueError("names and values differ in length")
    for i in range(n):
        if values[i] is not None:
            found += 1
    cdef dict out = __nc_dict_presized(found)
    for i in range(n):
        value = values[i]
        if value is not None:
            PyDict_SetItem(out, names[i], value)
    return out


# -- single-key helpers -----------------------------------------------------------------

from novacache.errors import EntryTooLarge

cdef Py_ssize_t MAX_BULK_BYTES = 512 * 1024 * 1024    # Redis' proto-max-bulk-len default
cdef double MAX_TTL = 100 * 365.25 * 86400.0          # novacache.tiers._checks.MAX_TTL
cdef object _slow_ttl = None  # novacache.tiers._kit._ttl_ms, imported on first use


cdef object _slow_ttl_ms(ttl):
    global _slow_ttl
    if _slow_ttl is None:
        from novacache.tiers._kit import _ttl_ms
        _slow_ttl = _ttl_ms
    return _slow_ttl(ttl)


def raw_key(bytes prefix, key, Py_ssize_t limit=MAX_BULK_BYTES):
    cdef Py_ssize_t plen = len(prefix)
    cdef Py_ssize_t size
    cdef const char* utf8
    cdef char* dest
    raw = None
    if not PyUnicode_Check(key):
        raise TypeError(f"a key must be str, not {type(key).__name__}")
    if PyUnicode_IS_COMPACT_ASCII(key):
        utf8 = <const char*>PyUnicode_DATA(key)
        size = PyUnicode_GET_LENGTH(key)
    else:
        try:
            utf8 = PyUnicode_AsUTF8AndSize(key, &size)
        except UnicodeEncodeError:
            raw = PyUnicode_AsEncodedString(key, "utf-8", "surrogatepass")
            utf8 = PyBytes_AS_STRING(raw)
            size = len(raw)
    if size > limit - plen:
        raise EntryTooLarge(plen + size, limit)  # the key alone
    out = PyBytes_FromStringAndSize(NULL, plen + size)
    dest = PyBytes_AS_STRING(out)
    memcpy(dest, PyBytes_AS_STRING(prefix), plen)
    memcpy(dest + plen, utf8, size)
    return out


cdef inline double _round_half_even(double x) noexcept:
    # round(x) as CPython rounds a float (half to even)
    cdef double r = round(x)  # C's round: half away from zero; then as CPython does
    if fabs(x - r) == 0.5:
        r = 2.0 * round(x / 2.0)
    return r


def ttl_ms(ttl):
    cdef double d
    cdef long long v
    cdef int overflow = 0
    if ttl is None:
        return None
    if PyFloat_CheckExact(ttl):
        d = PyFloat_AS_DOUBLE(ttl)
        if not d > 0:  # also NaN
            raise ValueError(f"ttl must be > 0 seconds, got {ttl!r}")
        if d > MAX_TTL:
            return None
        v = <long long>_round_half_even(d * 1000.0)
        return v if v > 0 else 1
    if PyLong_CheckExact(ttl):
        v = PyLong_AsLongLongAndOverflow(ttl, &overflow)
        if overflow > 0:
            return None
        if overflow < 0 or v <= 0:
            raise ValueError(f"ttl must be > 0 seconds, got {ttl!r}")
        if v > MAX_TTL:
            return None
        return v * 1000
    return _slow_ttl_ms(ttl)


# -- latency histograms of tier calls (novacache.ops.metrics) ---------------------------
#
# ``Histogram(bounds)`` keeps raw latency counts: one per upper bound (seconds,
# increasing), then +Inf, and the sum of the seconds. ``Timed(fn, histogram)`` is ``fn``
# with each call timed into it: two readings of the monotonic clock (ext/_clock.h, ~20 ns
# each via the vDSO) and a scan of the bounds from the smallest (a Redis round trip
# stops at the first or second). The count and the sum are updated in C with the GIL
# held and no Python code in between, so two threads never lose an update; the pure twin
# (novacache.tiers._kit) counts into per-thread arrays to be as exact.

cimport cython
from cpython.mem cimport PyMem_Calloc, PyMem_Free, PyMem_Malloc

cdef extern from "_clock.h":
    void nc_clock_init()
    double nc_clock_precise() nogil

cdef extern from *:
    """
    /* The header's other readings are the core's; marked used here (no warning). */
    #if defined(__GNUC__)
    static void nc__tierkit_clock_used(void) __attribute__((unused));
    static void nc__tierkit_clock_used(void) {
        (void)nc_clock_name; (void)nc_clock_fast; (void)nc_clock_slack;
    }
    #endif
    """

nc_clock_init()


@cython.auto_pickle(False)
cdef class Histogram:
    cdef double* _bounds
    cdef unsigned long long* _counts
    cdef Py_ssize_t _n
    cdef double _total

    def __init__(self, bounds):
        cdef Py_ssize_t i, n = len(bounds)
        if self._bounds != NULL:
            raise TypeError("a Histogram is initialised once")
        if n < 1:
            raise ValueError("buckets must be increasing upper bounds > 0 (seconds)")
        self._bounds = <double*>PyMem_Malloc(n * sizeof(double))
        self._counts = <unsigned long long*>PyMem_Calloc(n + 1, sizeof(unsigned long long))
        if self._bounds == NULL or self._counts == NULL:
            raise MemoryError()
        self._n = n
        for i in range(n):
            self._bounds[i] = float(bounds[i])
            if not self._bounds[i] > 0 or (i and not self._bounds[i] > self._bounds[i - 1]):
                raise ValueError("buckets must be increasing upper bounds > 0 (seconds)")

    def __dealloc__(self):
        PyMem_Free(self._bounds)
        PyMem_Free(self._counts)

    cdef inline void _add(self, double seconds) noexcept:
        cdef Py_ssize_t i = 0
        if self._counts == NULL:  # never initialised (Histogram.__new__): count nothing
            return
        while i < self._n and seconds > self._bounds[i]:
            i += 1
        self._counts[i] += 1
        self._total += seconds

    def record(self, double seconds):
        """Count one call that took ``seconds``."""
        self._add(seconds)

    def snapshot(self):
        """``([count per bucket, then +Inf], sum of seconds)``: not cumulative."""
        if self._counts == NULL:
            return [], 0.0
        return [self._counts[i] for i in range(self._n + 1)], self._total


@cython.auto_pickle(False)
cdef class Timed:
    cdef readonly object wrapped
    cdef readonly Histogram histogram

    def __init__(self, wrapped, Histogram histogram not None):
        self.wrapped = wrapped
        self.histogram = histogram

    def __call__(self, *args, **kwargs):
        cdef double t0 = nc_clock_precise()
        try:
            return self.wrapped(*args, **kwargs)
        finally:
            self.histogram._add(nc_clock_precise() - t0)
