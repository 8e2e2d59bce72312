# cython: language_level=3
"""novacache's compiled in-process cache: ``LocalCache`` and ``memoize``.

The contract is ``docs/local-cache.md``; the pure-Python twin is
``novacache._local_py``. Both run the same tests. The module also holds what
``novacache.cachetools`` runs on: the cachetools' modes of a LocalCache, the base class
of its caches (``_CachetoolsCore``) and its compiled ``cached()`` wrapper.

Re-entrancy and threads. The GIL makes each stretch of C code here atomic, but any call
into Python (a key's ``__hash__``/``__eq__``, the weigher, an injected timer, a value's
``__del__`` when its last reference goes) can run arbitrary code, including other
threads and calls into this very cache. So every operation follows one rule: call user
code first (weigher, timer, hash), look up (``__eq__`` may run; ``_lookup`` restarts when
the table changed under it), then mutate in pure C, and only when the table is
consistent again release the references it dropped (the ``Graveyard``). Nothing here
allocates a Python object while the table is inconsistent: an allocation may trigger
the garbage collector, and that may run finalizers.
"""

# The source is split by concept into the parts in ext/core/, included below: one
# module, one translation unit. `include` is textual, so the C compiler sees every part
# at once and inlines across them as it did when this was one file. Measured when it
# was split (issue 12, callgrind, instructions per operation, before / after): str hit
# 788.9 / 788.8, int hit 996.6 / 996.4, get miss 1209.2 / 1209.0, overwrite 845.7 /
# 845.6, insert with eviction 1824.2 / 1823.4, TTL hit 858.2 / 858.0, stats 4457.7 /
# 4457.5 (each with its Python loop). A traceback now names the part it comes
# from. Each part starts by saying what it holds and what it relies on. Directives
# (the `# cython:` line above) are read from this file only; the parts hold none. The
# order matters only for the C types (a struct before a signature that names it, a
# base class before its subclass) and for module-level statements, which run in this
# order at import.

cimport cython
from cpython.mem cimport PyMem_Calloc, PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.object cimport PyObject, PyObject_Hash
from libc.float cimport DBL_MAX
from libc.math cimport INFINITY, isinf, isnan
from libc.stdint cimport int32_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memset

import sys
import threading
import time as _time
from types import GenericAlias

from novacache._stats import CacheInfo, CacheStats
from novacache.errors import ConfigurationError, EntryTooLarge

include "core/capi.pxi"             # C declarations: Python.h, _core_support.h
include "core/table.pxi"            # the entries, the index, the graveyard
include "core/recency.pxi"          # the exact-LRU recency log; eviction
include "core/policy.pxi"           # the "tinylfu" policy (adaptive W-TinyLFU)
include "core/clock.pxi"            # the C clock, TTLs, deadlines, the expiry sweep
include "core/access.pxi"           # _get, _set, _discard: what every operation runs
include "core/stats.pxi"            # the counters' snapshot
include "core/local_cache.pxi"      # class LocalCache
include "core/cachetools_timer.pxi" # cachetools' freezable timer; exact times
include "core/cachetools_mode.pxi"  # a LocalCache in cachetools' modes
include "core/cachetools_core.pxi"  # class _CachetoolsCore (novacache.cachetools)
include "core/memoize.pxi"          # memoize, class Memoized
include "core/cached_call.pxi"      # class _CachedCall (cachetools' cached())
include "core/api.pxi"              # the C API struct other compiled modules use
include "core/export.pxi"           # its capsule, _capi
