# The C entry points that novacache's other compiled modules call instead of a Python
# method (novacache._managerkit: the manager's L1 hit and fill). They are exported as
# a capsule, ``_core._capi``, holding a ``_CoreAPI`` struct of function pointers (the
# struct is in api.pxi); a consumer gets it by the capsule's name, which carries the
# struct's version.
# Each takes an instance of LocalCache itself (the caller checks the exact type: a
# subclass may override the methods these stand for) and behaves as the method named.
# Relies on: api.pxi, _get and _set (access.pxi), _ttl_arg (clock.pxi), LocalCache.

from cpython.pycapsule cimport PyCapsule_New


cdef PyObject* _export_lookup(object cache, object key) except? NULL:
    # LocalCache.__getitem__ without the KeyError: what a miss costs beside the hit.
    return _get(<LocalCache>cache, key, True, 2)


cdef int _export_store(object cache, object key, object value, object ttl) except -1:
    cdef LocalCache self = <LocalCache>cache
    return _set(self, key, value, self._ttl if ttl is None else _ttl_arg(ttl, False), -1)


cdef int _export_store_secs(object cache, object key, object value, double ttl) except -1:
    # The same with a TTL the caller has as a C double already, checked by it (> 0, or
    # INFINITY: none): the manager's L1 fill, whose TTL is an entry's remaining life.
    # A fill whose lookup missed just before: _store_missed (the same as _set).
    return _store_missed(<LocalCache>cache, key, value, ttl)


cdef _CoreAPI _core_api
_core_api.lookup = _export_lookup
_core_api.store = _export_store
_core_api.store_secs = _export_store_secs
_capi = PyCapsule_New(<void*>&_core_api, _CORE_API_NAME, NULL)
