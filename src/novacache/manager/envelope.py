"""The envelope: what the manager puts inside a codec frame for L2 and L3.

A frame written by the manager decodes to the list ``[3, expires_at, ttl, value, stamp,
writer]``, or, for an entry with a grace period or early refresh, ``[4, expires_at, ttl,
value, fresh_until, delta, beta, stamp, writer]`` (``fresh_until``: wall time when it
turns stale; ``delta``: seconds its loader took; ``beta``: XFetch's eagerness;
``stamp`` and ``writer``: the entry's :class:`~novacache.consistency.Version`, see
:mod:`novacache.consistency.hlc`). Envelopes of the versions 1 (``[1, expires_at, ttl,
value]``) and 2 (``[2, expires_at, ttl, value, fresh_until, delta, beta]``), written
before entries were versioned, keep reading: as version ``(0, 0)``, older than any
versioned write.

- ``3`` / ``4``: the envelope version (anything else reads as a corrupt frame, a miss).
- ``expires_at``: the hard deadline, wall-clock seconds since the epoch (``time.time()``
  of the writer plus ``ttl``), or ``None`` for no expiry.
- ``ttl``: the lifetime the entry was written with (``None``: no expiry).
- ``value``: the cached value itself.

A **tombstone** (what a delete leaves in L2 and L3 for :data:`TOMBSTONE_TTL` seconds,
so that a write-back that began before the delete cannot bring the key back) is not a
codec frame: it is the 14 bytes ``b"NT" + Version.pack()`` (:func:`tombstone`), read as a
miss, recognised by a tier without decoding it (:func:`is_tombstone`).

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
from ..consistency import hlc
from ..consistency.hlc import MAX_STAMP, MAX_WRITER, Version
from ..consistency.hlc import tick as _tick

__all__ = [
    "TOMBSTONE_MAGIC",
    "TOMBSTONE_TTL",
    "VERSION",
    "VERSION_SWR",
    "Envelope",
    "is_tombstone",
    "open_envelope",
    "open_envelope_py",
    "read_tombstone",
    "seal",
    "tombstone",
]

VERSION = 3
VERSION_SWR = 4
_OLD, _OLD_SWR = 1, 2  # unversioned envelopes, still read
TOMBSTONE_MAGIC = b"NT"
#: Seconds a delete's tombstone stays in L2 and L3 (the longest load it protects
#: against: a loader that started before the delete and ends later than this may store
#: its value; see docs/consistency.md).
TOMBSTONE_TTL = 60.0


class Envelope(NamedTuple):
    """A value read back from below, with what is left of its life and its version."""

    value: Any
    remaining: float | None  # seconds left before the hard deadline (None: no expiry)
    fresh: float | None = None  # seconds left before it turns stale (<= 0: stale now)
    delta: float = 0.0  # seconds its loader took (XFetch)
    beta: float = 0.0  # XFetch's eagerness (0: no early refresh)
    stamp: int = 0  # the version's HLC stamp (0: an unversioned envelope)
    writer: int = 0  # the version's writer id

    @property
    def version(self) -> Version:
        """The entry's version (``Version(0, 0)`` for an unversioned envelope)."""
        return Version(self.stamp, self.writer)


def tombstone(version: Version) -> bytes:
    """The tombstone a delete of ``version`` leaves in L2/L3 (see the module)."""
    return TOMBSTONE_MAGIC + version.pack()


def is_tombstone(frame: bytes) -> bool:
    """Whether ``frame`` (bytes read from a tier) is a tombstone."""
    return len(frame) == 14 and frame[:2] == TOMBSTONE_MAGIC


def read_tombstone(frame: bytes) -> Version | None:
    """The version of the delete a tombstone records; ``None`` when ``frame`` is none."""
    if type(frame) is not bytes or not is_tombstone(frame):
        return None
    return Version.unpack(frame[2:])


def seal(
    value: Any,
    ttl: float | None,
    now: float,
    *,
    stale: float | None = None,
    delta: float = 0.0,
    beta: float = 0.0,
    stamp: int | None = None,
) -> list[Any]:
    """The envelope of ``value`` written at wall time ``now``, fresh for ``ttl`` seconds,
    then served stale for ``stale`` more seconds (stale-while-revalidate); ``delta`` and
    ``beta`` drive the probabilistic early refresh (XFetch). Its version is ``stamp``
    (default: a new one, :func:`novacache.consistency.hlc.tick`) and this process's
    writer id."""
    # (the hot path of every write: module attributes, no call but the clock's tick)
    if stamp is None:
        stamp = _tick(now)
    if ttl is None or ttl == math.inf:
        return [VERSION, None, None, value, stamp, hlc.WRITER]
    if not stale and not beta:
        return [VERSION, now + ttl, float(ttl), value, stamp, hlc.WRITER]
    hard = ttl + (stale or 0.0)
    return [
        VERSION_SWR, now + hard, float(hard), value, now + ttl, float(delta), float(beta),
        stamp, hlc.WRITER,
    ]  # fmt: skip


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


def _int(x: Any, top: int, what: str) -> int:
    if type(x) is not int or not 0 <= x <= top:
        raise ValueError(f"malformed envelope: {what} is not an int in [0, {top}]")
    return x


def open_envelope(decoded: Any, clock: Callable[[], float] = time.time) -> Envelope | None:
    """The envelope's value, remaining lifetime and version; ``None`` when it has
    expired. The version's stamp is merged into this process's clock
    (:func:`novacache.consistency.hlc.observe`).

    Raises ``ValueError`` when ``decoded`` is not a well-formed envelope of a known
    version: every field is checked (the version an ``int``; the deadlines finite
    reals; ``ttl`` finite and > 0; ``delta`` and ``beta`` finite and >= 0; an entry
    without deadline carries no ``ttl`` and no freshness; ``stamp`` an int in [0,
    2**63), ``writer`` in [0, 2**32)), so a forged envelope (NaN or an infinity, where
    ``min`` would keep the other operand) can never extend a lifetime. The manager counts
    such a frame as a corrupt read: a miss.
    """
    if type(decoded) is not list:
        raise ValueError("not a novacache envelope")
    n = len(decoded)
    version = decoded[0] if n else None
    if type(version) is not int:
        raise ValueError("not a novacache envelope")
    if n == 6 and version == VERSION:
        swr = False
    elif n == 9 and version == VERSION_SWR:
        swr = True
    elif (n == 4 and version == _OLD) or (n == 7 and version == _OLD_SWR):
        swr = n == 7
    else:
        raise ValueError("not a novacache envelope")
    stamp = writer = 0
    if version >= VERSION:
        stamp = _int(decoded[n - 2], MAX_STAMP, "stamp")
        writer = _int(decoded[n - 1], MAX_WRITER, "writer")
    expires_at, ttl, value = decoded[1], decoded[2], decoded[3]
    if expires_at is None:
        if ttl is not None or swr:
            raise ValueError("malformed envelope: a lifetime without a deadline")
        if stamp:
            hlc.observe(stamp)
        return _new(Envelope, (value, None, None, 0.0, 0.0, stamp, writer))
    deadline = _number(expires_at, "expires_at")
    lifetime = _number(ttl, "ttl")
    if not lifetime > 0:
        raise ValueError("malformed envelope: ttl is not > 0")
    if swr:
        fresh_until = _number(decoded[4], "fresh_until")
        delta = _number(decoded[5], "delta")
        beta = _number(decoded[6], "beta")
        if delta < 0 or beta < 0:
            raise ValueError("malformed envelope: negative delta or beta")
    if stamp:
        hlc.observe(stamp)
    now = clock()
    remaining = min(deadline - now, lifetime)
    if not remaining > 0:
        return None
    if not swr:
        return _new(Envelope, (value, remaining, None, 0.0, 0.0, stamp, writer))
    fresh = min(fresh_until - now, remaining)
    return _new(Envelope, (value, remaining, fresh, delta, beta, stamp, writer))


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
