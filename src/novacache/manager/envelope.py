"""The envelope: what the manager puts inside a codec frame for L2 and L3.

A frame written by the manager decodes to the list ``[1, expires_at, ttl, value]``, or,
for an entry with a grace period or early refresh, ``[2, expires_at, ttl, value,
fresh_until, delta, beta]`` (``fresh_until``: wall time when it turns stale; ``delta``:
seconds its loader took; ``beta``: XFetch's eagerness):

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

__all__ = ["VERSION", "VERSION_SWR", "Envelope", "open_envelope", "seal"]

VERSION = 1
VERSION_SWR = 2


class Envelope(NamedTuple):
    """A value read back from below, with what is left of its life."""

    value: Any
    remaining: float | None  # seconds left before the hard deadline (None: no expiry)
    fresh: float | None = None  # seconds left before it turns stale (<= 0: stale now)
    delta: float = 0.0  # seconds its loader took (XFetch)
    beta: float = 0.0  # XFetch's eagerness (0: no early refresh)


def seal(
    value: Any,
    ttl: float | None,
    now: float,
    *,
    stale: float | None = None,
    delta: float = 0.0,
    beta: float = 0.0,
) -> list[Any]:
    """The envelope of ``value`` written at wall time ``now``, fresh for ``ttl`` seconds,
    then served stale for ``stale`` more seconds (stale-while-revalidate); ``delta`` and
    ``beta`` drive the probabilistic early refresh (XFetch)."""
    if ttl is None or ttl == math.inf:
        return [VERSION, None, None, value]
    if not stale and not beta:
        return [VERSION, now + ttl, float(ttl), value]
    hard = ttl + (stale or 0.0)
    return [VERSION_SWR, now + hard, float(hard), value, now + ttl, float(delta), float(beta)]


def open_envelope(decoded: Any, clock: Callable[[], float] = time.time) -> Envelope | None:
    """The envelope's value and remaining lifetime; ``None`` when it has expired.

    Raises ``ValueError`` when ``decoded`` is not an envelope of a known version.
    """
    if type(decoded) is not list:
        raise ValueError("not a novacache envelope")
    n = len(decoded)
    if not ((n == 4 and decoded[0] == VERSION) or (n == 7 and decoded[0] == VERSION_SWR)):
        raise ValueError("not a novacache envelope")
    expires_at, ttl, value = decoded[1], decoded[2], decoded[3]
    if expires_at is None:
        return Envelope(value, None)
    if not isinstance(expires_at, (int, float)) or not isinstance(ttl, (int, float)):
        raise ValueError("malformed envelope deadline")
    now = clock()
    remaining = min(float(expires_at) - now, float(ttl))
    if not remaining > 0:
        return None
    if n == 4:
        return Envelope(value, remaining)
    fresh_until, delta, beta = decoded[4], decoded[5], decoded[6]
    if not all(isinstance(x, (int, float)) for x in (fresh_until, delta, beta)):
        raise ValueError("malformed envelope freshness")
    fresh = min(float(fresh_until) - now, remaining)
    return Envelope(value, remaining, fresh, float(delta), float(beta))
