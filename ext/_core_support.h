/* Small C helpers for ext/_core.pyx: CPython slots that Cython does not expose.
 *
 * - GC: LocalCache keeps its keys and values in a C table that Cython's generated
 *   tp_traverse/tp_clear cannot see; the module wraps those slots so that the garbage
 *   collector visits (and can clear) every cached key and value. Without this, a value
 *   that refers back to its cache would form a cycle the collector never frees.
 * - Vectorcall: Memoized stores a vectorcall function pointer in each instance so that
 *   `f(x)` reaches it without packing a tuple, as CPython's own functions do.
 */
#ifndef NOVACACHE_CORE_SUPPORT_H
#define NOVACACHE_CORE_SUPPORT_H
#include <Python.h>
#include <limits.h>
#include <string.h>

typedef int (*nc_visitproc)(PyObject *, void *);
typedef int (*nc_traverseproc)(PyObject *, nc_visitproc, void *);
typedef int (*nc_inquiry)(PyObject *);

static inline nc_traverseproc nc_get_traverse(PyObject *tp) {
    return (nc_traverseproc)((PyTypeObject *)tp)->tp_traverse;
}
static inline nc_inquiry nc_get_clear(PyObject *tp) {
    return (nc_inquiry)((PyTypeObject *)tp)->tp_clear;
}
static inline void nc_set_gc(PyObject *tp, nc_traverseproc traverse, nc_inquiry clear) {
    ((PyTypeObject *)tp)->tp_traverse = (traverseproc)traverse;
    ((PyTypeObject *)tp)->tp_clear = (inquiry)clear;
}

static inline void nc_enable_vectorcall(PyObject *tp, Py_ssize_t offset) {
    PyTypeObject *t = (PyTypeObject *)tp;
    t->tp_vectorcall_offset = offset;
    t->tp_flags |= Py_TPFLAGS_HAVE_VECTORCALL;
    PyType_Modified(t);
}

/* A hint that the line at p is about to be written (no effect where unsupported). */
#if defined(__GNUC__) || defined(__clang__)
#define nc_prefetch_w(p) __builtin_prefetch((p), 1, 3)
#else
#define nc_prefetch_w(p) ((void)(p))
#endif

/* Index of the lowest set bit of a non-zero 64-bit word. */
#if defined(__GNUC__) || defined(__clang__)
#define nc_ctz64(x) ((int)__builtin_ctzll((unsigned long long)(x)))
#elif defined(_MSC_VER) && defined(_WIN64)
#include <intrin.h>
static __inline int nc_ctz64(unsigned long long x) {
    unsigned long i;
    _BitScanForward64(&i, x);
    return (int)i;
}
#else
static inline int nc_ctz64(unsigned long long x) {
    int i = 0;
    while (!(x & 1ULL)) { x >>= 1; i++; }
    return i;
}
#endif

/* hash(o), reading an exact str's cached hash without the call through tp_hash (the
 * field exists in every CPython this builds for; PyObject_Hash fills it when -1). */
static inline Py_hash_t nc_hash(PyObject *o) {
#if !defined(Py_LIMITED_API) && !defined(PYPY_VERSION) && PY_VERSION_HEX < 0x030E0000
    if (PyUnicode_CheckExact(o)) {
        Py_hash_t h = ((PyASCIIObject *)o)->hash;
        if (h != -1)
            return h;
    }
#endif
    return PyObject_Hash(o);
}

/* Whether a == b, without a call, for two keys of the same exact type int or str
 * (the keys a cache sees most): 1 equal, 0 not; -1 for any other pair (the caller
 * then asks PyObject_RichCompareBool). Both are canonical objects, so equal values
 * have equal sizes and bytes: for str the same length and kind (as CPython's dict
 * compares str keys), for int the same sign and digits. Reads the int layout of
 * CPython 3.11 (ob_size) and 3.12-3.13 (lv_tag); elsewhere always -1. */
static inline int nc_fast_eq(PyObject *a, PyObject *b) {
#if !defined(Py_LIMITED_API) && !defined(PYPY_VERSION) && PY_VERSION_HEX < 0x030E0000
    PyTypeObject *t = Py_TYPE(a);
    if (t != Py_TYPE(b))
        return -1;
    if (t == &PyLong_Type) {
#if PY_VERSION_HEX < 0x030C0000
        Py_ssize_t n = Py_SIZE(a);
        if (n != Py_SIZE(b))
            return 0;
        if (n < 0)
            n = -n;
        if (n == 1)             /* below 2**30: one digit, no call */
            return ((PyLongObject *)a)->ob_digit[0] == ((PyLongObject *)b)->ob_digit[0];
        return memcmp(((PyLongObject *)a)->ob_digit, ((PyLongObject *)b)->ob_digit,
                      (size_t)n * sizeof(digit)) == 0;
#else
        uintptr_t tag = ((PyLongObject *)a)->long_value.lv_tag;
        if (tag != ((PyLongObject *)b)->long_value.lv_tag)
            return 0;
        if ((tag >> 3) == 1)    /* below 2**30: one digit, no call */
            return ((PyLongObject *)a)->long_value.ob_digit[0]
                   == ((PyLongObject *)b)->long_value.ob_digit[0];
        return memcmp(((PyLongObject *)a)->long_value.ob_digit,
                      ((PyLongObject *)b)->long_value.ob_digit,
                      (size_t)(tag >> 3) * sizeof(digit)) == 0;
#endif
    }
    if (t == &PyUnicode_Type) {
        Py_ssize_t n = PyUnicode_GET_LENGTH(a);
        int kind;
#if PY_VERSION_HEX < 0x030C0000
        if (!PyUnicode_IS_READY(a) || !PyUnicode_IS_READY(b))
            return -1;
#endif
        if (n != PyUnicode_GET_LENGTH(b))
            return 0;
        kind = PyUnicode_KIND(a);
        if (kind != (int)PyUnicode_KIND(b))
            return 0;
        return memcmp(PyUnicode_DATA(a), PyUnicode_DATA(b), (size_t)n * kind) == 0;
    }
#endif
    return -1;
}

/* Number of set bits of a 64-bit word. */
#if defined(__GNUC__) || defined(__clang__)
#define nc_popcount64(x) ((int)__builtin_popcountll((unsigned long long)(x)))
#else
static inline int nc_popcount64(unsigned long long x) {
    int n = 0;
    while (x) { x &= x - 1; n++; }
    return n;
}
#endif

/* a * b / d for a, b >= 0 and d >= 1, saturated at LLONG_MAX (the tinylfu policy's
 * ARC-style step, exact where 128-bit integers exist; elsewhere exact while a * b
 * fits 64 bits, which holds for every cache below 2**31 entries of weight 1). */
static inline long long nc_muldiv(long long a, long long b, long long d) {
#if defined(__SIZEOF_INT128__)
    long long q;
    unsigned __int128 p;
    if (!__builtin_mul_overflow(a, b, &q))
        return q / d;               /* the common case: one 64-bit division */
    p = (unsigned __int128)a * (unsigned __int128)b / (unsigned __int128)d;
    return p > (unsigned __int128)LLONG_MAX ? LLONG_MAX : (long long)p;
#else
    if (b != 0 && a > LLONG_MAX / b)
        return LLONG_MAX;
    return a * b / d;
#endif
}

#define nc_vectorcall_nargs(n) PyVectorcall_NARGS(n)
#define nc_vectorcall(f, args, nargsf, kwnames) \
    PyObject_Vectorcall((f), (PyObject *const *)(args), (nargsf), (kwnames))

#endif /* NOVACACHE_CORE_SUPPORT_H */
