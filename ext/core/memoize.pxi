# memoize: functools.lru_cache's interface on a LocalCache, called through vectorcall.
#
# Holds: the key of a call (_make_key, as functools builds it), the wrapper class
# Memoized, its call path (_memoized_vectorcall -> _memoized_call -> _get/_set) and the
# decorator memoize.
# Relies on: local_cache.pxi (LocalCache), access.pxi (_get, _set), clock.pxi
# (_ttl_arg), capi.pxi (vectorcall, _tuple_put); novacache._stats (CacheInfo).


cdef object _KWD_MARK = object()


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

    def __init__(self, func, maxsize=128, *, ttl=None, typed=False, timer=None,
                 policy="lru"):
        if not callable(func):
            raise TypeError("memoize expects a callable")
        if maxsize is not None:
            if isinstance(maxsize, bool) or not isinstance(maxsize, int):
                raise TypeError("maxsize must be an int or None")
            if maxsize < 0:
                maxsize = 0
        _policy_arg(policy, 128 if maxsize == 0 else maxsize, None)
        self._func = func
        self._typed = bool(typed)
        self._maxsize = maxsize
        self._ttl = ttl
        if ttl is not None:
            _ttl_arg(ttl, True)
        # Any maxsize is accepted, as functools does: beyond the largest cache it means
        # no bound in practice.
        self._cache = None if maxsize == 0 else LocalCache(
            None if maxsize is None else min(maxsize, MAX_ENTRIES), ttl=ttl, timer=timer,
            policy=policy,
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


def memoize(maxsize=128, *, ttl=None, typed=False, timer=None, policy="lru"):
    """Memoize a function like ``functools.lru_cache``, on the compiled LocalCache.

    ``@memoize``, ``@memoize()`` or ``@memoize(maxsize, ttl=..., typed=..., timer=...)``.
    ``maxsize=None`` is unbounded; ``0`` caches nothing. ``ttl`` (seconds) bounds how
    long a result is reused. ``policy`` is the cache's eviction policy (``"lru"``, or
    ``"tinylfu"``, which needs a maxsize). Exceptions are not cached; concurrent misses of one key may
    each call the function.
    """
    if callable(maxsize) and not isinstance(maxsize, int):
        return Memoized(maxsize, 128, ttl=ttl, typed=typed, timer=timer, policy=policy)
    if maxsize is not None and (isinstance(maxsize, bool) or not isinstance(maxsize, int)):
        raise TypeError(f"maxsize must be an int or None, not {type(maxsize).__name__}")
    if ttl is not None:
        _ttl_arg(ttl, True)
    if timer is not None and not callable(timer):
        raise TypeError("timer must be callable")
    _policy_arg(policy, 128 if maxsize == 0 else maxsize, None)

    def decorator(func):
        return Memoized(func, maxsize, ttl=ttl, typed=typed, timer=timer, policy=policy)

    return decorator
