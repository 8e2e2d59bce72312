"""Versioned entries, convergence after faults, and the consistency models (see
``docs/consistency.md``).

- :class:`Version`: an entry's version, ``(stamp, writer)``, ordered and serialisable;
  :mod:`.hlc` makes them (a hybrid logical clock).
- :class:`Versioned`: what ``manager.get_versioned(key)`` returns.
- Conflict resolution between tiers (:data:`HIGHEST_VERSION`, :data:`LAST_WRITER_WINS`,
  or a callable): :func:`resolver`.
- The models per key prefix: :mod:`.spec` names them and makes session tokens (of
  the entries' versions above: the models compare no other); :mod:`.checker` checks
  recorded histories (linearizability per key, session and monotonic-read
  invariants). The managers apply
  the models in :mod:`novacache.manager._async.consistency` (a layer above this package,
  which imports nothing of the manager).
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
