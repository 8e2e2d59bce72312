# C declarations every part uses: the pieces of Python.h called directly (reference
# counts, tuple slots, exact type checks), the helpers of _core_support.h (the GC and
# vectorcall slots of a type, a write prefetch, count-trailing-zeros, the hash of an
# exact int or str without a call), and two reference helpers (_steal, _tuple_put).
# Relies on: the cimports of _core.pyx; ext/_core_support.h.


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
    int nc_popcount64(uint64_t x) noexcept nogil
    long long nc_muldiv(long long a, long long b, long long d) noexcept nogil
    Py_hash_t nc_hash(object o) except? -1
    int nc_fast_eq(PyObject* a, PyObject* b) noexcept
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


cdef inline object _steal(PyObject* o):
    """Turn an owned reference into an object (the cast adds one; drop ours)."""
    cdef object r = <object>o
    nc_decref(o)
    return r


cdef inline void _tuple_put(object t, Py_ssize_t i, PyObject* o) noexcept:
    """PyTuple_SET_ITEM steals a reference: give it one of its own."""
    nc_incref(o)
    nc_tuple_set(t, i, o)
