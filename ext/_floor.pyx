# cython: language_level=3
"""The benchmark floor: the least a compiled mapping type can cost from Python.

``FloorMapping`` is private and exists only so that ``novacache bench`` can show what any
extension type pays on ``m[k]`` and ``m.get(k)`` (the slot call or method call that
CPython does not specialise, plus one dict lookup), beside ``dict`` and beside
``LocalCache``. It is built with the same compiler flags and directives as the core.
It has no eviction, no TTL, no statistics: do not use it as a cache.
"""

cimport cython


@cython.final
cdef class FloorMapping:
    cdef dict _data

    def __cinit__(self):
        self._data = {}

    def __getitem__(self, key):
        return self._data[key]

    def __setitem__(self, key, value):
        self._data[key] = value

    def __len__(self):
        return len(self._data)

    def get(self, key, default=None):
        return self._data.get(key, default)
