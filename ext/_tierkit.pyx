# cython: language_level=3
"""Compiled helpers for the bulk paths of the tiers (pure twin: novacache.tiers._kit).

``prefixed(prefix, names)`` is ``[prefix + name for name in names]`` for ``str`` names
(``TypeError`` naming the type otherwise); ``encoded(prefix, names)`` is
``[prefix + name.encode() for name in names]`` with ``prefix`` as ``bytes`` (one
allocation and two copies per key, so the client has nothing left to encode);
``present(names, values)`` is
``{n: v for n, v in zip(names, values) if v is not None}``. They are the two O(n) steps
a tier's ``get_many`` adds to a bare MGET.
"""

from cpython.dict cimport PyDict_SetItem
from cpython.list cimport PyList_New, PyList_SET_ITEM
from cpython.ref cimport Py_INCREF
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.unicode cimport PyUnicode_Concat
from libc.string cimport memcpy

cdef extern from "Python.h":
    bint PyUnicode_Check(object)
    const char* PyUnicode_AsUTF8AndSize(object, Py_ssize_t*) except NULL


def encoded(bytes prefix, list names):
    cdef Py_ssize_t i, n = len(names)
    cdef Py_ssize_t plen = len(prefix)
    cdef Py_ssize_t size
    cdef const char* utf8
    cdef char* dest
    cdef list out = PyList_New(n)
    for i in range(n):
        name = names[i]
        if not PyUnicode_Check(name):
            raise TypeError(f"a key must be str, not {type(name).__name__}")
        utf8 = PyUnicode_AsUTF8AndSize(name, &size)
        key = PyBytes_FromStringAndSize(NULL, plen + size)
        dest = PyBytes_AS_STRING(key)
        memcpy(dest, PyBytes_AS_STRING(prefix), plen)
        memcpy(dest + plen, utf8, size)
        Py_INCREF(key)
        PyList_SET_ITEM(out, i, key)
    return out


def prefixed(str prefix, list names):
    cdef Py_ssize_t i, n = len(names)
    cdef list out = PyList_New(n)
    for i in range(n):
        name = names[i]
        if not PyUnicode_Check(name):
            # The slots not yet filled are NULL, which a list's dealloc skips.
            raise TypeError(f"a key must be str, not {type(name).__name__}")
        key = PyUnicode_Concat(prefix, name)
        Py_INCREF(key)
        PyList_SET_ITEM(out, i, key)
    return out


def present(list names, list values):
    cdef Py_ssize_t i, n = len(names)
    cdef dict out = {}
    if len(values) != n:
        raise ValueError("names and values differ in length")
    for i in range(n):
        value = values[i]
        if value is not None:
            PyDict_SetItem(out, names[i], value)
    return out
