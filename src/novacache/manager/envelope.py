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
from typing import TYPE_CHECKING, Any, NamedTuple

from .._select import NO_EXTENSIONS

__all__ = ["VERSION", "VERSION_SWR", "Envelope", "open_envelope", "open_envelope_py", "seal"]

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


# Note that the read path builds envelopes with tuple.__new__: the NamedTuple's own
# __new__ is a Python function with defaults, a call that costs more than the tuple.
_new = tuple.__new__


def _number(x: Any, what: str) -> float:
    """``x`` as a float when it is a finite real (an ``int`` or a ``float``, never a
    ``bool``); ``ValueError`` otherwise (NaN and the infinities included)."""
    if type(x) is float:
        f = x
    elif type(x) is int:
        try:
            f = float(x)
        except OverflowError:
            raise ValueError(f"malformed envelope: {what} out of range") from None
    else:
        raise ValueError(f"malformed envelope: {what} is not a number")
    if not math.isfinite(f):
        raise ValueError(f"malformed envelope: {what} is not finite")
    return f


def open_envelope(decoded: Any, clock: Callable[[], float] = time.time) -> Envelope | None:
    """The envelope's value and remaining lifetime; ``None`` when it has expired.

    Raises ``ValueError`` when ``decoded`` is not a well-formed envelope of a known
    version: every field is checked (the version an ``int``; the deadlines finite
    reals; ``ttl`` finite and > 0; ``delta`` and ``beta`` finite and >= 0; an entry
    without deadline carries no ``ttl`` and no freshness), so a forged envelope (NaN or
    an infinity, where ``min`` would keep the other operand) can never extend a
    lifetime. The manager counts such a frame as a corrupt read: a miss.
    """
    if type(decoded) is not list:
        raise ValueError("not a novacache envelope")
    n = len(decoded)
    version = decoded[0] if n else None
    if type(version) is not int or not (
        (n == 4 and version == VERSION) or (n == 7 and version == VERSION_SWR)
    ):
        raise ValueError("not a novacache envelope")
    expires_at, ttl, value = decoded[1], decoded[2], decoded[3]
    if expires_at is None:
        if ttl is not None or n != 4:
            raise ValueError("malformed envelope: a lifetime without a deadline")
        return _new(Envelope, (value, None, None, 0.0, 0.0))
    deadline = _number(expires_at, "expires_at")
    lifetime = _number(ttl, "ttl")
    if not lifetime > 0:
        raise ValueError("malformed envelope: ttl is not > 0")
    if n == 7:
        fresh_until = _number(decoded[4], "fresh_until")
        delta = _number(decoded[5], "delta")
        beta = _number(decoded[6], "beta")
        if delta < 0 or beta < 0:
            raise ValueError("malformed envelope: negative delta or beta")
    now = clock()
    remaining = min(deadline - now, lifetime)
    if not remaining > 0:
        return None
    if n == 4:
        return _new(Envelope, (value, remaining, None, 0.0, 0.0))
    fresh = min(fresh_until - now, remaining)
    return _new(Envelope, (value, remaining, fresh, delta, beta))


#: The pure-Python twin, kept importable (the tests run both).
open_envelope_py = open_envelope

if not TYPE_CHECKING and not NO_EXTENSIONS:
    try:
        from .._managerkit import bind as _bind
        from .._managerkit import open_envelope
    except ImportError:  # a pure build
        pass
    else:
        _bind(Envelope)
