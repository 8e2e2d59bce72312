# cachetools' cached(): the compiled wrapper for the fast path of novacache.cachetools.
#
# Holds: _CachedCall and its call path (_cached_call_vectorcall ->
# _cached_call_with_key -> _get/_set, or _cached_call_general once the cache is no
# longer served by the core).
# Relies on: cachetools_core.pxi (_CachetoolsCore, _ct_general, _ct_epoch),
# access.pxi (_get, _set), capi.pxi (vectorcall, _tuple_put).


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
