"""The envelope: what the manager puts inside a codec frame for L2 and L3.

A frame written by the manager decodes to the list ``[1, expires_at, ttl, value]``:

- ``1``: the envelope version (anything else reads as a corrupt frame, a miss).
- ``expires_at``: the hard deadline, wall-clock seconds since the epoch (``time.time()``
  of the writer plus ``ttl``), or ``None`` for no expiry.
- ``ttl``: the lifetime the entry was written with (``None``: no expiry).
- ``value``: the cached value itself.

Note that the deadline is absolute so that a hit below can be promoted to the tiers above
with the *remaining* lifetime, without asking the tier for it (no extra round trip).
Wall clocks of two machines may disagree (clock skew). We chose: the reader computes
``remaining = expires_at - its own time.time()`` and caps it at the original ``ttl``, so
skew can shorten a promoted entry's life (or make it read as expired early: a miss, never
a stale hit) but can never extend it past the lifetime it was written with. The tiers
also enforce their own TTL (Redis server-side, SQLite with its clock), so a reader never
sees an entry past both deadlines.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, NamedTuple

__all__ = ["VERSION", "Envelope", "open_envelope", "seal"]

VERSION = 1


class Envelope(NamedTuple):
    """A value read back from below, with what is left of its life."""

    value: Any
    remaining: float | None  # seconds left (None: no expiry); always > 0


def seal(value: Any, ttl: float | None, now: float) -> list[Any]:
    """The envelope of ``value`` written at wall time ``now`` for ``ttl`` seconds."""
    if ttl is None or ttl == math.inf:
        return [VERSION, None, None, value]
    return [VERSION, now + ttl, float(ttl), value]


def open_envelope(decoded: Any, clock: Callable[[], float] = time.time) -> Envelope | None:
    """The envelope's value and remaining lifetime; ``None`` when it has expired.

    Raises ``ValueError`` when ``decoded`` is not an envelope of a known version.
    """
    if type(decoded) is not list or len(decoded) != 4 or decoded[0] != VERSION:
        raise ValueError("not a novacache envelope")
    _, expires_at, ttl, value = decoded
    if expires_at is None:
        return Envelope(value, None)
    if not isinstance(expires_at, (int, float)) or not isinstance(ttl, (int, float)):
        raise ValueError("malformed envelope deadline")
    remaining = min(float(expires_at) - clock(), float(ttl))
    if not remaining > 0:
        return None
    return Envelope(value, remaining)
