# Time: the clock, TTLs and deadlines.
#
# Holds: the C monotonic clock (ext/_clock.h: on Linux a coarse reading, with the
# precise one read only within the coarse clock's slack of a deadline), clock_info();
# what a TTL and an injected timer's reading may be (_ttl_arg, _timer_reading); "now"
# from an injected timer (_call_timer); whether a deadline has passed (_c_expired,
# _entry_expired); the lookup of an entry with a deadline (_get_timed, the slow side
# of _get); the deadline side array (_alloc_expires, _set_expiry) and the incremental
# expiry sweep (_sweep, _note_deadline, _expire_one).
# Relies on: ext/_clock.h; capi.pxi; the table (table.pxi: _lookup, _remove, the
# graveyard); recency.pxi (_touch); cachetools_timer.pxi (the freezable timer of a
# cache in cachetools' TTL mode, _Moved); novacache.errors (ConfigurationError).


cdef extern from "_clock.h":
    void nc_clock_init()
    double nc_clock_precise() nogil
    double nc_clock_fast() nogil
    double nc_clock_slack() nogil
    const char* nc_clock_name()
    int NC_CLOCK_IS_PY_MONOTONIC


nc_clock_init()


def clock_info():
    """Name and slack (seconds) of the clock used when no ``timer`` is injected."""
    return (nc_clock_name().decode("ascii"), nc_clock_slack())


cdef enum:
    SWEEP_STEPS = 4     # entries examined for expiry per insert of a new key


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
    if PyFloat_CheckExact(ttl):
        # The common case (a TTL a caller computed, e.g. a manager's L1 fill): no
        # conversion. Zero, negative and NaN go on to the checks below.
        d = PyFloat_AS_DOUBLE(ttl)
        if d > 0.0:
            return d
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
        if touch:
            if self._read_refreshes:
                _touch(self, <int32_t>ix)
            elif self._pol != NULL:
                _pol_record(self, <int32_t>ix)
        if count:
            self._hits += 1
        return self._entries[ix].value
    if count:
        self._misses += 1
        if self._pol != NULL:
            _pol_miss_fn(self, h)
    return NULL


cdef Py_ssize_t _expire_one(LocalCache self, int32_t ix) noexcept:
    cdef Graveyard g
    _gy_init(&g)
    _remove(self, ix, &g)
    self._expirations += 1
    _gy_release(&g)
    return -1


cdef inline void _set_expiry(LocalCache self, int32_t ix, double expires) noexcept:
    cdef double old
    if self._expires == NULL:
        return                              # no TTL ever: expires is INFINITY
    old = self._expires[ix]
    if old != INFINITY:
        self._nttl -= 1
    if expires != INFINITY:
        self._nttl += 1
        _note_deadline(self, expires)
    self._expires[ix] = expires


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


cdef inline void _note_deadline(LocalCache self, double expires) noexcept:
    """A live entry got the deadline ``expires`` (finite): keep the sweep's bounds."""
    if expires < self._exp_floor:
        self._exp_floor = expires
    if expires < self._exp_seen:
        self._exp_seen = expires


cdef void _sweep(LocalCache self, double now, Graveyard* g) noexcept:
    """Examine a few entries, round robin, and remove those that have expired.

    Nothing is examined (and the cursor stays) while ``now`` is before ``_exp_floor``,
    a lower bound of every live entry's deadline: then none has expired. The bound is
    lowered by every deadline set (_note_deadline) and raised when the cursor completes
    a pass over the entries, to the earliest deadline that pass saw or that was set
    during it (``_exp_seen``): every entry live at the end of a pass was either
    examined by it (and kept: not expired) or given its deadline during it.
    ``now`` is the injected timer's reading; without a timer the C clock decides.
    """
    cdef Py_ssize_t steps = SWEEP_STEPS
    cdef Py_ssize_t ix
    cdef double exp
    if self._nfill == 0:
        return
    if self._timer is not None:
        if now < self._exp_floor:
            return
    elif not _c_expired(self._exp_floor):
        return
    while steps > 0 and self._nttl > 0:
        ix = self._sweep
        if ix >= self._nfill:
            ix = 0
            self._exp_floor = self._exp_seen    # a pass is complete
            self._exp_seen = INFINITY
        self._sweep = ix + 1
        if self._entries[ix].key != NULL:
            if _entry_expired(self, <int32_t>ix, now):
                _remove(self, <int32_t>ix, g)
                self._expirations += 1
            else:
                exp = self._expires[ix]
                if exp < self._exp_seen:
                    self._exp_seen = exp
        steps -= 1
