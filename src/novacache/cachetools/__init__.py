"""A drop-in for cachetools 8.x: ``import novacache.cachetools as cachetools``.

The same classes, decorators and behaviour as cachetools 8.0.2, and thread-safe
without ``lock=``. ``NOVACACHE_CACHETOOLS_IMPL`` selects the implementation at
import: ``pure`` (the Python classes here) or ``auto`` (the default: ``LRUCache``,
``FIFOCache`` and ``TTLCache`` on the compiled core when it is active, see
:mod:`._fast`; the Python classes otherwise, and for every other class). Pickles take
cachetools' layout; :mod:`.compat` loads cachetools' pickles as ours (and back). See
``docs/cachetools.md``.
"""

from __future__ import annotations

from . import keys as keys
from ._base import Cache
from ._decorators import cached, cachedmethod
from ._lfu import LFUCache
from ._memo import CacheInfo
from ._ordered import FIFOCache, LRUCache
from ._rr import RRCache
from ._select import IMPLEMENTATION
from ._timed import _TimedCache as _TimedCache
from ._tlru import TLRUCache
from ._ttl import TTLCache

__all__ = (
    "Cache",
    "CacheInfo",
    "FIFOCache",
    "LFUCache",
    "LRUCache",
    "RRCache",
    "TLRUCache",
    "TTLCache",
    "cached",
    "cachedmethod",
)

#: The cachetools release whose API and behaviour this package reproduces.
__version__ = "8.0.2"

#: The implementation in use: "compiled" (LRUCache, FIFOCache and TTLCache on the
#: compiled core) or "pure" (see :mod:`._select`).
_implementation = IMPLEMENTATION

if _implementation == "compiled":
    from ._fast import FIFOCache, LRUCache, TTLCache  # type: ignore[assignment]

# Pickles name the public classes (and the helpers cachetools nests in them) by these
# module names, whichever implementation serves them, so that a pickle made with one
# loads with the other, and :mod:`.compat` maps them to cachetools' names and back.
for _public in (
    Cache,
    CacheInfo,
    FIFOCache,
    LFUCache,
    LRUCache,
    RRCache,
    TLRUCache,
    TTLCache,
    _TimedCache,
    _TimedCache._Timer,
    TTLCache._Link,
    LFUCache._Link,
    TLRUCache._Item,
):
    _public.__module__ = __name__
del _public
