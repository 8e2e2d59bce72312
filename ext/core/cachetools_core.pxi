# The base of novacache.cachetools' LRUCache, FIFOCache and TTLCache: _CachetoolsCore,
# a LocalCache whose every operation first checks (one comparison on the core's path)
# whether the core still serves the instance or the pure class of its general path
# does.
#
# Holds: the hook epoch and the general path's callbacks (_ct_install,
# _ct_hooks_changed), the move to the general path (_ct_begin_move, _ct_end_move,
# _ct_wait), _ct_reset, _ct_guard and _ct_guarded (a TTL cache with a timer of the
# user's), the class _CachetoolsCore.
# Relies on: local_cache.pxi (the base class), access.pxi (_get, _set, _discard),
# table.pxi (_lookup, _remove, _release_table), cachetools_mode.pxi (_ttl_set),
# cachetools_timer.pxi (_TTLTimer, _Unrepresentable, _Moved).


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
