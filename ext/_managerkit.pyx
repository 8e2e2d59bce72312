# cython: language_level=3
"""Compiled hit paths of the cache manager (pure twin: ``novacache.manager._kit``).

Every call of the manager that an L1 hit can answer pays, with the pure twin, for a
Python frame that does nothing a miss does not need as well: argument defaults, a
closure, building a key. The helpers here answer a hit in C and hand everything else
to the manager's Python code, with the same results:

``get(self, key, default=None)`` and ``get_or_load(self, key, loader, ttl=None, *,
tags=(), negative_ttl=None, stale_ttl=None, beta=None, lease=None)`` are the method
bodies of the synchronous ``CacheManager``: ``self._l1[key]`` when it holds the key,
else ``self._get_below(key, default)`` / ``self._load(key, loader, ttl, tags,
negative_ttl, stale_ttl, beta, lease)``.

``read(self, key, down)`` and ``get_below(self, key, default=None)`` are the synchronous
manager's ``_read`` and ``_get_below`` (a read below L1), compiled: their pure twins are
the generated synchronous methods, whose one source is the asyncio manager's.

``fill_l1(self, local, bus, plan, key, frame, env, gen)`` puts a value read below into L1
(the asyncio manager's ``_read`` calls it): the common case (a LocalCache, no route rules,
no freshness deadline, a healthy bus or none) here, else ``self._fill_l1_any``. A
LocalCache is read and filled through the core's C API (the capsule
``novacache._core._capi``): a miss makes no KeyError, a fill no method call.

``CachedCall(func, local, miss, key, default_key, is_async=False)`` is
``@manager.cached``'s wrapper of a function. A call builds the cache key (with the default key, a memo maps the
arguments to their key string for calls of exact ``int`` and ``str`` arguments, so a hit
builds nothing), answers from ``local`` (the manager's L1) when it holds the key, and
otherwise calls ``miss(key, args, kwargs)``, the manager's ``get_or_load`` path. For a
coroutine function (``is_async``), ``miss`` returns a coroutine and a hit comes as a
``Ready``: an awaitable that gives the value at once (its ``am_send`` slot answers the
``await`` with no coroutine made, run, or StopIteration raised).

``open_envelope(decoded, clock)`` checks and opens an envelope read from L2/L3 exactly
as ``novacache.manager.envelope.open_envelope`` does (the envelope class is given once
with ``bind``).
"""

cimport cython
from cpython.object cimport PyObject
from cpython.pycapsule cimport PyCapsule_GetPointer
from libc.math cimport isfinite

include "core/api.pxi"

cdef extern from "_core_support.h":
    void nc_enable_vectorcall(object tp, Py_ssize_t offset)
    Py_ssize_t nc_vectorcall_nargs(size_t nargsf)

cdef extern from "Python.h":
    bint PyLong_CheckExact(object)
    bint PyUnicode_CheckExact(object)
    bint PyFloat_CheckExact(object)
    bint PyList_CheckExact(object)
    Py_ssize_t PyTuple_GET_SIZE(object)
    PyObject* PyTuple_GET_ITEM(object, Py_ssize_t)
    object PyTuple_New(Py_ssize_t)
    void nc_tuple_set "PyTuple_SET_ITEM"(object, Py_ssize_t, PyObject*)
    void nc_incref "Py_INCREF"(PyObject*)
    object PyMethod_New(object, object)
    PyObject* PyDict_GetItemWithError(object, object) except? NULL
    PyObject* PyList_GET_ITEM(object, Py_ssize_t)
    Py_ssize_t PyList_GET_SIZE(object)
    double PyFloat_AS_DOUBLE(object)
    int PyErr_ExceptionMatches(object) noexcept
    void PyErr_Clear() noexcept

from time import time as _time
from types import FunctionType as _FunctionType

from novacache._core import LocalCache as _LocalCache, _capi
from novacache.errors import EntryTooLarge, TierError

cdef _CoreAPI* _core = <_CoreAPI*>PyCapsule_GetPointer(_capi, _CORE_API_NAME)
# The core's stores as the fill calls them: the error (-1, set) checked by the caller.
ctypedef int (*_store_secs_nx)(object, object, object, double) noexcept
ctypedef int (*_store_nx)(object, object, object, object) noexcept
cdef object _MISS = object()
cdef object _Envelope = None
cdef object _tuple_new = tuple.__new__
cdef Py_ssize_t _MEMO_MAX = 4096  # keys memoized per decorated function, at most


def bind(envelope_type):
    """Give the envelope class that :func:`open_envelope` returns (once, at import)."""
    global _Envelope
    _Envelope = envelope_type


# A class's version tag (0: none), and an object's class, as borrowed pointers.
cdef extern from *:
    """
    static unsigned int nc_type_version(PyObject* tp) {
        PyTypeObject* t = (PyTypeObject*)tp;
    #ifdef Py_TPFLAGS_VALID_VERSION_TAG
        if (!PyType_HasFeature(t, Py_TPFLAGS_VALID_VERSION_TAG))
            return 0;
    #endif
        return t->tp_version_tag;
    }
    #define nc_type_of(o) ((PyObject*)Py_TYPE(o))
    """
    unsigned int nc_type_version(PyObject* tp) noexcept
    PyObject* nc_type_of(PyObject* o) noexcept


# What a class answered, remembered with the class's version tag: CPython gives a class
# a new tag (or none) whenever an attribute of it or of a base changes, and never gives
# two classes the same one, so a remembered (class, tag) pair that still matches still
# answers the same. (The class is held by address only: a class freed and another made
# at its address has another tag.)
ctypedef struct _ClassMemo:
    PyObject* cls
    unsigned int tag


cdef inline bint _memo_holds(_ClassMemo* memo, PyObject* cls) noexcept:
    """Whether ``memo`` was set for ``cls`` as it is now."""
    return cls == memo.cls and memo.tag != 0 and nc_type_version(cls) == memo.tag


cdef inline void _memo_set(_ClassMemo* memo, cls) noexcept:
    """Remember ``cls`` as it is now (after an attribute lookup on it, which gives it a
    tag; with none, 0, ``memo`` holds for no class)."""
    memo.tag = nc_type_version(<PyObject*>cls)
    memo.cls = <PyObject*>cls


# -- the synchronous manager's hit-first methods --------------------------------------


cdef inline object _l1_get(object l1, object key):
    """``l1[key]``, or ``_MISS``. A LocalCache is read through the core's C API and an
    empty dict (no L1) directly, so that a miss makes no KeyError (its traceback costs
    more than the hit)."""
    cdef PyObject* v
    if type(l1) is _LocalCache:
        v = _core.lookup(l1, key)
    elif type(l1) is dict:
        v = PyDict_GetItemWithError(l1, key)
    else:
        try:
            return l1[key]
        except KeyError:
            return _MISS
    return <object>v if v != NULL else _MISS


cdef inline object _env_value(env):
    """``env.value`` (the value of an entry read below), as the Python twin reads it: for
    an Envelope, the tuple's first item, taken directly (indexing a tuple subclass from C
    goes through its sequence slot, which CPython gives a subclass as a generic wrapper:
    a method lookup, an int made, a call, ~750 instructions of each Redis-served get);
    anything else a subclass's ``_read`` returns, through its ``value``."""
    if type(env) is _Envelope:
        return <object>PyTuple_GET_ITEM(env, 0)
    return env.value


def get(self, key, default=None):
    """The value cached under ``key``, or ``default``.

    Never raises because a tier below is unreachable or holds a corrupt frame: those
    read as misses of that tier (counted in :attr:`stats`).
    """
    l1 = self._l1
    value = _l1_get(l1, key)
    if value is not _MISS:
        return value
    if _reads_here(self):
        # self._get_below(key, default), without the method call (it is get_below);
        # a LocalCache L1 is self.local (self._l1 is self.local but for no L1: {}).
        env = _read(self, key, {}, None, l1 if type(l1) is _LocalCache else _MISS)
        return default if env is None else _env_value(env)
    return self._get_below(key, default)


def get_or_load(self, key, loader, ttl=None, *, tags=(), negative_ttl=None,
                stale_ttl=None, beta=None, lease=None):
    """The cached value of ``key``; on a miss, the value of ``loader()``, cached for
    ``ttl``: the loader runs once at a time per key in this process, and its failures are
    raised in every caller that waited for it. ``tags``, ``negative_ttl``, ``stale_ttl``
    (stale-while-revalidate), ``beta`` (XFetch) and ``lease`` (one load across processes)
    as documented for ``AsyncCacheManager.get_or_load`` and in docs/manager.md.
    """
    value = _l1_get(self._l1, key)
    if value is not _MISS:
        return value
    return self._load(key, loader, ttl, tags, negative_ttl, stale_ttl, beta, lease)


def aget(self, key, default=None):
    """``AsyncCacheManager.get``: for an L1 hit a ``Ready`` (awaited to the value, no
    coroutine made and run), else the coroutine of ``self._get_below(key, default)``."""
    value = _l1_get(self._l1, key)
    if value is not _MISS:
        return _ready(value)
    below = _class_get_below(self)
    if below is not None:
        return below(self, key, default)  # self._get_below(key, default), unbound
    return self._get_below(key, default)


# The function that is an asyncio manager's class's _get_below, remembered for the last
# class asked (a _ClassMemo): an L1 miss then calls it with no attribute lookup and no
# bound method made. (A _get_below set on an instance is not looked for, as the
# synchronous read does not look for an instance's _read.)
cdef _ClassMemo _below_memo
_below_memo.cls = NULL
_below_memo.tag = 0
cdef object _below_func = None


cdef inline object _class_get_below(self):
    """``type(self)._get_below`` when it is a plain Python function, else ``None``."""
    if _memo_holds(&_below_memo, nc_type_of(<PyObject*>self)):
        return _below_func
    return _check_class_get_below(type(self))


cdef object _check_class_get_below(cls):
    global _below_func
    func = getattr(cls, "_get_below", None)
    if type(func) is not _FunctionType:
        return None
    _below_func = func
    _memo_set(&_below_memo, cls)
    return func


def aget_or_load(self, key, loader, ttl=None, *, tags=(), negative_ttl=None,
                 stale_ttl=None, beta=None, lease=None):
    """``AsyncCacheManager.get_or_load``: for an L1 hit a ``Ready``, else the coroutine of
    ``self._load(...)``."""
    value = _l1_get(self._l1, key)
    if value is not _MISS:
        return _ready(value)
    return self._load(key, loader, ttl, tags, negative_ttl, stale_ttl, beta, lease)


def read(self, key, dict down, seen=None):
    """``CacheManager._read``, compiled: the entry of ``key`` from the first tier below L1
    that holds it (promoted to the tiers above), or ``None``; its pure twin is the
    generated synchronous ``_read`` (the asyncio source's body), which it follows step
    for step."""
    return _read(self, key, down, seen)


cdef object _read(self, key, dict down, seen, local=_MISS):
    """The body of ``read`` (called without a Python call by ``get`` and ``get_below``
    when the manager's class reads with this module's functions: ``_reads_here``).
    ``local``: ``self.local`` when the caller has it, else ``_MISS``."""
    below = <tuple>self._below
    bus = self.bus
    # The fill plan (see _fill_common) as the read begins; its stripes are _wseq.
    plan = self._fill
    cdef list wseq
    if plan is not None:
        wseq = <list>PyTuple_GET_ITEM(plan, 0)
    else:
        wseq = <list>self._wseq
    cdef Py_ssize_t h = hash(key) & (PyList_GET_SIZE(wseq) - 1)
    gen = <object>PyList_GET_ITEM(wseq, h)
    if bus is not None:
        gen = gen + (<list>bus.stripes)[h] + bus.epoch
    count = self._count
    cdef Py_ssize_t i
    for i in range(len(below)):
        slot, tier = <tuple>below[i]
        if down and slot in down:
            continue
        try:
            frame = tier.get(key)
        except (TierError, EntryTooLarge) as exc:
            self._read_failed("get", slot, exc, down)
            continue
        if frame is None:
            count(self._misses[slot])
            if seen is None:
                seen = {}
            seen[slot] = None
            continue
        env = self._open(slot, key, frame)
        if env is None:
            if seen is None:
                seen = {}
            seen[slot] = frame
            continue
        count(self._hits[slot])
        if seen is not None:
            seen[slot] = frame
        if i:
            return self._promote(key, frame, env, below[:i], gen, down, seen)
        if local is _MISS:
            local = self.local
        if local is None:
            pass
        elif type(local) is _LocalCache:
            if not _fill_common(self, plan, local, key, h, env, gen, bus):
                self._fill_l1_any(key, len(frame), env, gen)
        else:
            self._fill_l1_any(key, len(frame), env, gen)
        return env
    return None


def get_below(self, key, default=None):
    """``CacheManager._get_below``: the value of ``key`` read below L1, or ``default``
    (with the compiled ``read`` when the manager's ``_read`` is it)."""
    env = _read(self, key, {}, None) if _reads_here(self) else self._read(key, {})
    return default if env is None else _env_value(env)


# Whether a manager's class reads below L1 with this module's get_below and read (a
# subclass may override either), answered by the class's attributes and remembered for
# the last class that answered yes (a _ClassMemo).
cdef _ClassMemo _here_memo
_here_memo.cls = NULL
_here_memo.tag = 0


cdef inline bint _reads_here(self) except -1:
    """``type(self)._get_below is get_below and type(self)._read is read``."""
    if _memo_holds(&_here_memo, nc_type_of(<PyObject*>self)):
        return True
    return _check_reads_here(type(self))


cdef bint _check_reads_here(cls) except -1:
    if getattr(cls, "_get_below", None) is not get_below or (
        getattr(cls, "_read", None) is not read
    ):
        return False
    _memo_set(&_here_memo, cls)
    return True


cdef inline bint _fill_common(self, plan, local, key, Py_ssize_t h, env, gen,
                              bus) except -1:
    """The common case of ``self._fill_l1_any`` (see there) in C, for ``local`` (the
    manager's LocalCache, of that exact type) and ``bus`` (``self.bus``): no route
    rules, no freshness deadline, the bus (if any) healthy and no write or invalidation
    of the key's stripe since the read began (``gen``). True when done (the value
    stored, or refused as too large: counted, the old one dropped); False when the
    caller must take the general path, nothing done. The same rule as the general path,
    with what it reads from the manager in one attribute (``plan``: ``self._fill``, see
    ``ManagerBase._plan_fill``, which ``read`` reads as it begins: a router replaced
    during the read applies from the next one) and ``env`` read by index. ``h``: the
    key's stripe, or -1 (then computed here)."""
    if plan is None or type(env) is not _Envelope or (
        <object>PyTuple_GET_ITEM(env, 2) is not None
    ):
        # Route rules, not an Envelope (read by index below), or a freshness deadline
        # (stale-while-revalidate).
        return False
    cdef list wseq = <list>PyTuple_GET_ITEM(plan, 0)
    if h < 0:
        h = hash(key) & (PyList_GET_SIZE(wseq) - 1)
    now = <object>PyList_GET_ITEM(wseq, h)
    if bus is not None:
        if not bus.healthy:
            return False
        now = now + (<list>bus.stripes)[h] + bus.epoch
    if gen is not now and gen != now:
        return False  # a write or an invalidation since the read began
    ttl = <object>PyTuple_GET_ITEM(env, 1)  # env.remaining
    cap = <object>PyTuple_GET_ITEM(plan, 1)
    cdef double secs = 0.0
    if PyFloat_CheckExact(ttl) and (cap is None or PyFloat_CheckExact(cap)):
        # The common case, in C doubles (the same choice: the lesser of the two); a
        # TTL not > 0 takes the general store, which says what is wrong with it.
        secs = PyFloat_AS_DOUBLE(ttl)
        if cap is not None and PyFloat_AS_DOUBLE(cap) < secs:
            secs = PyFloat_AS_DOUBLE(cap)
            ttl = cap
    elif ttl is None or (cap is not None and cap < ttl):
        ttl = cap
    # The store's error is checked here, not by a try block (whose set-up every fill
    # would pay): EntryTooLarge is a refusal (counted, the old value dropped).
    cdef int rc
    if secs > 0.0:
        rc = (<_store_secs_nx>_core.store_secs)(
            local, key, <object>PyTuple_GET_ITEM(env, 0), secs)
    else:
        rc = (<_store_nx>_core.store)(local, key, <object>PyTuple_GET_ITEM(env, 0), ttl)
    if rc < 0:
        return _refused(self, local, key)
    return True


cdef bint _refused(self, local, key) except -1:
    """After a failed L1 store: an EntryTooLarge (set) is a refusal, counted, the key's
    old value dropped (True); any other error is raised."""
    if not PyErr_ExceptionMatches(EntryTooLarge):
        return -1
    PyErr_Clear()
    local.pop(key, None)
    self.stats.add("l1_refused")
    return True


def fill_l1(self, local, bus, plan, key, frame, env, gen):
    """Put a value read from the first tier below into L1: ``self._fill_l1_any`` (the
    rule, see there), with its common case (a LocalCache, no route rules, no freshness
    deadline, a healthy bus or none) done here. What the asyncio manager's ``_read``
    calls: ``local``, ``bus`` and ``plan`` are the manager's ``local`` (not ``None``),
    ``bus`` and ``_fill``, read by the caller (the interpreter reads an instance's
    attribute for less than C does); ``frame`` the bytes ``env`` was opened from (its
    size matters to the general path only); ``gen`` the key's generation as the read
    began."""
    if type(local) is not _LocalCache or not _fill_common(
        self, plan, local, key, -1, env, gen, bus
    ):
        self._fill_l1_any(key, len(frame), env, gen)


# -- @manager.cached for plain functions ----------------------------------------------


@cython.final
cdef class CachedCall:
    """``@manager.cached``'s wrapper of a plain function (see the module)."""

    cdef void* _vectorcall          # read by CPython through tp_vectorcall_offset
    cdef object _func
    cdef object _local              # the manager's L1, or None
    cdef object _miss               # miss(key, args, kwargs) -> value
    cdef object _key                # key(*args, **kwargs) -> str
    cdef bint _default_key          # _key is the default: the memo may serve it
    cdef bint _async                # wraps a coroutine function: a hit is a Ready
    cdef dict _memo1                # one exact int/str argument -> its key
    cdef dict _memo                 # a tuple of exact int/str arguments -> its key
    cdef dict __dict__
    cdef object __weakref__

    def __cinit__(self, *args, **kwargs):
        self._vectorcall = <void*>_cached_call_vectorcall

    def __init__(self, func, local, miss, key, bint default_key, bint is_async=False):
        self._func = func
        self._local = local
        self._miss = miss
        self._key = key
        self._default_key = default_key
        self._async = is_async
        self._memo1 = {}
        self._memo = {}

    def __call__(self, *args, **kwargs):
        # Reached only through tp_call; `f(x)` uses vectorcall.
        return _cached_call(self, self._key(*args, **kwargs), args, kwargs)

    def __get__(self, obj, objtype):
        if obj is None:
            return self
        return PyMethod_New(self, obj)

    def __repr__(self):
        return f"<manager.cached {self._func!r}>"


cdef inline object _cached_call(CachedCall self, object key, tuple args, dict kwargs):
    local = self._local
    if local is not None:
        value = _l1_get(local, key)
        if value is not _MISS:
            return _ready(value) if self._async else value
    return self._miss(key, args, kwargs)


cdef tuple _args_tuple(PyObject** args, Py_ssize_t nargs):
    cdef tuple pos = PyTuple_New(nargs)
    cdef Py_ssize_t i
    for i in range(nargs):
        nc_incref(args[i])
        nc_tuple_set(pos, i, args[i])
    return pos


cdef inline bint _memoable(PyObject* o) noexcept:
    """An argument whose key text its value alone decides (``repr`` of an exact ``int``
    or ``str``: equal values, equal text; ``True``, ``1.0`` and ``-0.0`` are excluded)."""
    return PyLong_CheckExact(<object>o) or PyUnicode_CheckExact(<object>o)


cdef object _memo_key(CachedCall self, dict memo, object memo_key, tuple pos):
    """The key of the call whose arguments are ``pos``, built once per ``memo_key``."""
    key = self._key(*pos)
    if len(memo) >= _MEMO_MAX:
        memo.clear()
    memo[memo_key] = key
    return key


cdef object _cached_call_vectorcall(object callable, PyObject** args, size_t nargsf,
                                    PyObject* kwnames):
    cdef CachedCall self = <CachedCall>callable
    cdef Py_ssize_t nargs = nc_vectorcall_nargs(nargsf)
    cdef Py_ssize_t i
    cdef PyObject* found
    cdef tuple pos
    if kwnames != NULL and PyTuple_GET_SIZE(<object>kwnames):
        pos = _args_tuple(args, nargs)
        kw = {}
        for i in range(PyTuple_GET_SIZE(<object>kwnames)):
            kw[<object>PyTuple_GET_ITEM(<object>kwnames, i)] = <object>args[nargs + i]
        return _cached_call(self, self._key(*pos, **kw), pos, kw)
    if self._default_key and nargs == 1 and _memoable(args[0]):
        # The hit path of a one-argument function: no tuple, no key text built.
        found = PyDict_GetItemWithError(self._memo1, <object>args[0])
        if found != NULL:
            key = <object>found
            local = self._local
            if local is not None:
                value = _l1_get(local, key)
                if value is not _MISS:
                    return _ready(value) if self._async else value
            return self._miss(key, _args_tuple(args, 1), None)
        pos = _args_tuple(args, 1)
        return _cached_call(self, _memo_key(self, self._memo1, pos[0], pos), pos, None)
    pos = _args_tuple(args, nargs)
    if not self._default_key or nargs == 0:
        return _cached_call(self, self._key(*pos), pos, None)
    for i in range(nargs):
        if not _memoable(args[i]):
            return _cached_call(self, self._key(*pos), pos, None)
    found = PyDict_GetItemWithError(self._memo, pos)
    if found != NULL:
        return _cached_call(self, <object>found, pos, None)
    return _cached_call(self, _memo_key(self, self._memo, pos, pos), pos, None)


# -- a value that is already there, as an awaitable ----------------------------------

cdef extern from "Python.h":
    ctypedef enum PySendResult:
        PYGEN_RETURN
        PYGEN_ERROR
        PYGEN_NEXT
    ctypedef PySendResult (*sendfunc)(PyObject*, PyObject*, PyObject**) noexcept

cdef extern from *:
    """
    /* Give a static type's async slots an am_send (CPython 3.10+: what `await` calls
       first; without it a finished await is a StopIteration raised and caught). */
    static int nc_set_am_send(PyObject* type, sendfunc f) {
        PyTypeObject* t = (PyTypeObject*)type;
        if (t->tp_as_async == NULL) {
            PyErr_SetString(PyExc_SystemError, "a type without async slots");
            return -1;
        }
        t->tp_as_async->am_send = f;
        PyType_Modified(t);
        return 0;
    }
    """
    int nc_set_am_send(object type, sendfunc f) except -1


@cython.final
@cython.freelist(16)
cdef class Ready:
    """What an asyncio ``@manager.cached`` function returns for an L1 hit: an awaitable
    whose ``await`` gives the value at once, with no coroutine made and run. It is a
    coroutine to asyncio (``asyncio.iscoroutine``: registered as
    ``collections.abc.Coroutine``; ``send``/``throw``/``close``), so ``create_task``,
    ``gather`` and ``wait_for`` take it as they take the function's coroutine."""

    cdef object _value

    def __init__(self, value):
        self._value = value

    def __await__(self):
        return self

    def __iter__(self):
        return self

    def __next__(self):
        raise StopIteration(self._value)

    def send(self, arg):
        """Finish (a coroutine's first ``send`` must be ``None``)."""
        if arg is not None:
            raise TypeError("can't send non-None value to a just-started coroutine")
        raise StopIteration(self._value)

    def throw(self, typ, val=None, tb=None):
        """Raise the exception thrown in (the value is never delivered)."""
        if val is None:
            raise typ
        raise val

    def close(self):
        """Nothing to release."""

    def __repr__(self):
        return "<manager.cached hit>"


cdef PySendResult _ready_send(PyObject* self, PyObject* arg, PyObject** result) noexcept:
    cdef PyObject* value = <PyObject*>(<Ready>self)._value
    nc_incref(value)
    result[0] = value
    return PYGEN_RETURN


nc_set_am_send(Ready, _ready_send)


cdef inline Ready _ready(object value):
    cdef Ready r = Ready.__new__(Ready)
    r._value = value
    return r


cdef Py_ssize_t _vectorcall_offset():
    cdef CachedCall probe = CachedCall.__new__(CachedCall)
    return <Py_ssize_t>(<char*>&probe._vectorcall - <char*><PyObject*>probe)


nc_enable_vectorcall(CachedCall, _vectorcall_offset())


# -- envelopes --------------------------------------------------------------------------


cdef double _number(object x, str what) except? -1.0:
    """``x`` as a float when it is a finite real (an exact ``int`` or ``float``, never a
    ``bool``); ``ValueError`` otherwise (NaN and the infinities included)."""
    cdef double f
    if PyFloat_CheckExact(x):
        f = PyFloat_AS_DOUBLE(x)
    elif PyLong_CheckExact(x):
        try:
            f = float(x)
        except OverflowError:
            raise ValueError(f"malformed envelope: {what} out of range") from None
    else:
        raise ValueError(f"malformed envelope: {what} is not a number")
    if not isfinite(f):
        raise ValueError(f"malformed envelope: {what} is not finite")
    return f


# -- the hybrid logical clock (pure twin: novacache.consistency.hlc) --------------------

cdef long long _HLC_MAX = 0x7FFFFFFFFFFFFFFF
cdef long long _HLC_AHEAD = (<long long>60000) << 16  # MAX_AHEAD_MS, as a stamp
cdef long long _hlc_last = 0
cdef long long _hlc_ceiling = 0


cdef inline long long _wall_stamp(double now) noexcept:
    if not (now >= 0 and now < 1e11):  # NaN included; 1e11 s: the stamp fits 63 bits
        return 0
    return (<long long>(now * 1000.0)) << 16


def hlc_tick(double now):
    """See ``novacache.consistency.hlc.tick`` (the GIL makes this one step)."""
    global _hlc_last, _hlc_ceiling
    cdef long long wall = _wall_stamp(now)
    cdef long long stamp
    if wall + _HLC_AHEAD > _hlc_ceiling:
        _hlc_ceiling = wall + _HLC_AHEAD
    if _hlc_last >= wall:
        stamp = _hlc_last + 1 if _hlc_last < _HLC_MAX else _HLC_MAX
    else:
        stamp = wall
    _hlc_last = stamp
    return stamp


cdef inline void _observe(long long stamp):
    global _hlc_last, _hlc_ceiling
    if stamp <= _hlc_last:
        return
    if stamp > _hlc_ceiling:
        _hlc_ceiling = _wall_stamp(_time()) + _HLC_AHEAD
        if stamp > _hlc_ceiling:
            return
    _hlc_last = stamp


def hlc_observe(stamp):
    """See ``novacache.consistency.hlc.observe``."""
    if PyLong_CheckExact(stamp) and 0 <= stamp <= _HLC_MAX:
        _observe(<long long>stamp)


def hlc_last():
    """See ``novacache.consistency.hlc.last``."""
    return _hlc_last


cdef long long _int_field(object x, long long top, str what) except -1:
    """``x`` as a C integer when it is an exact ``int`` in [0, top]; ``ValueError``
    (with the pure twin's message) otherwise."""
    cdef long long v = -1
    if PyLong_CheckExact(x):
        try:
            v = x
        except OverflowError:
            v = -1
    if v < 0 or v > top:
        raise ValueError(f"malformed envelope: {what} is not an int in [0, {top}]")
    return v


cdef long long _MAX_WRITER = 0xFFFFFFFF
cdef long long _MAX_STAMP = 0x7FFFFFFFFFFFFFFF


def open_envelope(decoded, clock=_time):
    """See ``novacache.manager.envelope.open_envelope``: the same checks, the same
    errors, the same result (and the same clock merge)."""
    cdef Py_ssize_t n
    cdef double deadline, lifetime, fresh_until = 0.0, delta = 0.0, beta = 0.0
    cdef double now, remaining, fresh
    cdef bint swr
    cdef long long c_stamp = 0
    if not PyList_CheckExact(decoded):
        raise ValueError("not a novacache envelope")
    cdef list env = <list>decoded
    n = len(env)
    version = env[0] if n else None
    if not PyLong_CheckExact(version):
        raise ValueError("not a novacache envelope")
    if n == 6 and version == 3:
        swr = False
    elif n == 9 and version == 4:
        swr = True
    elif (n == 4 and version == 1) or (n == 7 and version == 2):
        swr = n == 7
    else:
        raise ValueError("not a novacache envelope")
    stamp = writer = 0
    if n == 6 or n == 9:
        stamp = env[n - 2]
        writer = env[n - 1]
        c_stamp = _int_field(stamp, _MAX_STAMP, "stamp")
        _int_field(writer, _MAX_WRITER, "writer")
    expires_at = env[1]
    ttl = env[2]
    value = env[3]
    if expires_at is None:
        if ttl is not None or swr:
            raise ValueError("malformed envelope: a lifetime without a deadline")
        if c_stamp:
            _observe(c_stamp)
        return _tuple_new(_Envelope, (value, None, None, 0.0, 0.0, stamp, writer))
    deadline = _number(expires_at, "expires_at")
    lifetime = _number(ttl, "ttl")
    if not lifetime > 0:
        raise ValueError("malformed envelope: ttl is not > 0")
    if swr:
        fresh_until = _number(env[4], "fresh_until")
        delta = _number(env[5], "delta")
        beta = _number(env[6], "beta")
        if delta < 0 or beta < 0:
            raise ValueError("malformed envelope: negative delta or beta")
    if c_stamp:
        _observe(c_stamp)
    now = clock()
    remaining = min(deadline - now, lifetime)
    if not remaining > 0:
        return None
    if not swr:
        return _tuple_new(_Envelope, (value, remaining, None, 0.0, 0.0, stamp, writer))
    fresh = min(fresh_until - now, remaining)
    return _tuple_new(_Envelope, (value, remaining, fresh, delta, beta, stamp, writer))
