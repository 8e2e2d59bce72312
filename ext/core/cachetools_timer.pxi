# cachetools' freezable timer, for the compiled TTLCache of novacache.cachetools, and
# the times the core can take exactly.
#
# Holds: _TTLTimer (``with cache.timer as now:``) and _ttl_now ("now" read from C);
# _as_seconds and _exact_time (a time as a C double only when C compares and sums it
# as Python would); _Unrepresentable and _Moved (how the core hands an operation to
# novacache.cachetools' general path).
# Relies on: clock.pxi (the C clock, for time.monotonic); capi.pxi.


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
