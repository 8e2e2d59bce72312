"""Which implementation the drop-in uses, decided once at import.

``NOVACACHE_CACHETOOLS_IMPL``: ``pure`` (the Python classes everywhere) or ``auto`` (the
default: ``LRUCache``, ``FIFOCache`` and ``TTLCache`` on the compiled core when it is
active). :data:`IMPLEMENTATION` is what is in use: ``"compiled"`` or ``"pure"``.
"""

from __future__ import annotations

import os

from .._local import compiled

__all__ = ["IMPLEMENTATION"]

_IMPLEMENTATIONS = ("pure", "auto")

_requested = os.environ.get("NOVACACHE_CACHETOOLS_IMPL", "auto") or "auto"
if _requested not in _IMPLEMENTATIONS:
    raise ImportError(
        f"NOVACACHE_CACHETOOLS_IMPL={_requested!r}: expected one of {', '.join(_IMPLEMENTATIONS)}"
    )

#: The implementation in use: "compiled" (LRUCache, FIFOCache and TTLCache on the
#: compiled core) or "pure".
IMPLEMENTATION = "compiled" if _requested == "auto" and compiled else "pure"
