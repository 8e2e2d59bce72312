"""A hybrid logical clock (HLC): the versions of the manager's writes.

A version is ``(stamp, writer)``. The ``stamp`` packs the writer's wall clock in
milliseconds and a logical counter: ``wall_ms << 16 | counter``. :func:`tick` returns a
stamp greater than every stamp this process has made or :func:`observe`-d, and at least
its wall clock: so versions keep increasing in a process, and a write made after reading
a version (of any process) gets a greater one even when the reader's clock lags behind
the writer's. Nothing of it lives in Redis: a Redis restart or failover cannot set it
back (a Redis counter would restart from what the server kept).

``writer`` is a random 32-bit id of this process (drawn again in a forked child); it
only breaks ties between two stamps that are equal, so the order of versions is total.

A stamp read from storage is merged (:func:`observe`) only when it is at most
:data:`MAX_AHEAD_MS` ahead of this process's wall clock: a forged or corrupt entry
cannot push the clock into the far future.

The functions are compiled in ``ext/_managerkit.pyx`` where built (the clock's state
then lives there, shared with the compiled envelope reader); this module is their pure
twin and the one place to import them from.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from typing import TYPE_CHECKING, NamedTuple

from .._select import NO_EXTENSIONS

__all__ = [
    "LOGICAL_BITS",
    "MAX_AHEAD_MS",
    "MAX_STAMP",
    "WRITER",
    "ZERO",
    "Version",
    "last",
    "observe",
    "tick",
    "writer",
]

LOGICAL_BITS = 16
MAX_STAMP = (1 << 63) - 1  # a stamp fits a signed 64-bit integer (SQLite, PostgreSQL)
MAX_AHEAD_MS = 60_000  # a stamp read further ahead of our wall clock is not merged
MAX_WRITER = (1 << 32) - 1


class Version(NamedTuple):
    """The version of an entry: ordered (by ``stamp``, then ``writer``), comparable,
    hashable and serialisable (a tuple of two ints; :meth:`pack`/:meth:`unpack`).

    ``Version(0, 0)`` (:data:`ZERO`) is the version of an entry written before versions
    existed (an old envelope) and of an absent key."""

    stamp: int
    writer: int

    @property
    def timestamp(self) -> float:
        """The wall-clock time of the write, seconds since the epoch (millisecond
        resolution; the writer's clock, advanced past the versions it had seen)."""
        return (self.stamp >> LOGICAL_BITS) / 1000.0

    @property
    def logical(self) -> int:
        """The logical counter: writes within one millisecond of one clock."""
        return self.stamp & ((1 << LOGICAL_BITS) - 1)

    def pack(self) -> bytes:
        """12 bytes, big-endian: byte-wise order is the versions' order."""
        return self.stamp.to_bytes(8, "big") + self.writer.to_bytes(4, "big")

    @classmethod
    def unpack(cls, data: bytes) -> Version:
        """The version :meth:`pack` made (``ValueError`` for anything else)."""
        if type(data) is not bytes or len(data) != 12:
            raise ValueError("a packed version is 12 bytes")
        return cls(int.from_bytes(data[:8], "big"), int.from_bytes(data[8:], "big"))


ZERO = Version(0, 0)

_lock = threading.Lock()
_last = 0
_ceiling = 0  # stamps up to here merge without reading the clock (updated by _tick)
#: This process's writer id (read it through the module: a forked child draws another).
WRITER = secrets.randbits(32)


def _new_writer() -> None:
    global WRITER
    WRITER = secrets.randbits(32)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_writer)


def _wall_stamp(now: float) -> int:
    ms = int(now * 1000.0) if now == now and 0 <= now < 1e11 else 0  # fits 63 bits
    return ms << LOGICAL_BITS


def _tick(now: float) -> int:
    """A stamp greater than any made or observed here, and at least ``now`` (seconds)."""
    global _last, _ceiling
    wall = _wall_stamp(now)
    _ceiling = max(_ceiling, wall + (MAX_AHEAD_MS << LOGICAL_BITS))
    with _lock:
        stamp = _last + 1 if _last >= wall else wall
        if stamp > MAX_STAMP:
            stamp = MAX_STAMP
        _last = stamp
    return stamp


def _observe(stamp: int) -> None:
    """Merge a stamp read from storage (ignored when it is far ahead of our clock)."""
    global _last, _ceiling
    if stamp <= _last:
        return
    if stamp > _ceiling:
        _ceiling = _wall_stamp(time.time()) + (MAX_AHEAD_MS << LOGICAL_BITS)
        if stamp > _ceiling:
            return
    with _lock:
        if stamp > _last:
            _last = stamp


def _last_stamp() -> int:
    """The greatest stamp made or observed in this process so far."""
    return _last


def writer() -> int:
    """This process's writer id (a random 32-bit int; another one in a forked child)."""
    return WRITER


tick = _tick
observe = _observe
last = _last_stamp

if not TYPE_CHECKING and not NO_EXTENSIONS:
    try:
        from .._managerkit import hlc_last as last
        from .._managerkit import hlc_observe as observe
        from .._managerkit import hlc_tick as tick
    except ImportError:  # a pure build
        pass
