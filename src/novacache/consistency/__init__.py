"""Versioned entries and convergence after faults (see ``docs/consistency.md``).

- :class:`Version`: an entry's version, ``(stamp, writer)``, ordered and serialisable;
  :mod:`.hlc` makes them (a hybrid logical clock).
- :class:`Versioned`: what ``manager.get_versioned(key)`` returns.
- Conflict resolution between tiers (:data:`HIGHEST_VERSION`, :data:`LAST_WRITER_WINS`,
  or a callable): :func:`resolver`.
"""

from __future__ import annotations

from .hlc import ZERO, Version
from .resolve import (
    HIGHEST_VERSION,
    LAST_WRITER_WINS,
    Resolution,
    Resolver,
    Versioned,
    resolver,
)

__all__ = [
    "HIGHEST_VERSION",
    "LAST_WRITER_WINS",
    "ZERO",
    "Resolution",
    "Resolver",
    "Version",
    "Versioned",
    "resolver",
]
