# The C API of novacache._core for its other compiled modules: the struct that the
# capsule ``novacache._core._capi`` points to (defined in export.pxi). Included by
# _core.pyx and by each consumer; the capsule's name carries the struct's version.


ctypedef PyObject* (*_lookup_fn)(object, object) except? NULL
ctypedef int (*_store_fn)(object, object, object, object) except -1

ctypedef int (*_store_secs_fn)(object, object, object, double) except -1

ctypedef struct _CoreAPI:
    _lookup_fn lookup  # cache[key]: a borrowed value, or NULL (no error set) on a miss
    _store_fn store    # cache.set(key, value, ttl)
    _store_secs_fn store_secs  # cache.set(key, value, ttl=seconds): a double > 0 (or inf)

cdef const char* _CORE_API_NAME = b"novacache._core._capi.v2"
