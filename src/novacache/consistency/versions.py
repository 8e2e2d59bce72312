"""The versions the ``session`` and ``monotonic`` models compare: a minimal interface.

Note that this is the models' own small version source, kept behind three functions
(:func:`wrap`, :func:`unwrap`, :class:`VersionClock`) so that it can be replaced by the
versioned envelope of the manager (``manager.get_versioned``) without touching the
models. Until then a value of a ``session``/``monotonic`` key is stored below as the
list ``["nv-v", nanoseconds, counter, writer, value]`` inside the ordinary envelope;
a value stored without it (written by an older novacache, or by ``set_many``) reads as
version :data:`ZERO`, older than every versioned write.

A :class:`Version` is a hybrid logical clock reading: wall-clock nanoseconds, a counter
for writes within one nanosecond reading (or behind a clock that went back), and the
writer's id as the last tie-break. A process's clock never goes backwards and merges
every version it reads (:meth:`VersionClock.observe`), so a write made after reading a
version is newer than it, whatever the wall clocks say.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, NamedTuple

__all__ = ["ZERO", "Version", "VersionClock", "unwrap", "wrap"]

_MARK = "nv-v"


class Version(NamedTuple):
    """An ordered version: compare with ``<``, ``max`` (tuples order field by field)."""

    ns: int
    counter: int
    writer: str


#: The version of a value stored without one: older than every versioned write.
ZERO = Version(0, 0, "")


def writer_id() -> str:
    """A short random id of this writer (8 hex digits)."""
    return os.urandom(4).hex()


class VersionClock:
    """A hybrid logical clock: :meth:`next` is strictly greater than every version this
    clock made or observed before (thread-safe)."""

    def __init__(self, writer: str | None = None) -> None:
        self.writer = writer if writer is not None else writer_id()
        self._last = (0, 0)
        self._lock = threading.Lock()

    def next(self) -> Version:
        """A new version for a write made now."""
        wall = time.time_ns()
        with self._lock:
            ns, counter = self._last
            self._last = (wall, 0) if wall > ns else (ns, counter + 1)
            return Version(*self._last, self.writer)

    def observe(self, version: Version) -> None:
        """Merge a version read (or carried by a session token): later writes are newer."""
        with self._lock:
            if (version.ns, version.counter) > self._last:
                self._last = (version.ns, version.counter)


def wrap(value: Any, version: Version) -> list[Any]:
    """What is stored below for ``value`` written at ``version``."""
    return [_MARK, version.ns, version.counter, version.writer, value]


def unwrap(stored: Any) -> tuple[Any, Version]:
    """The value and version of what :func:`wrap` stored (:data:`ZERO` for a value
    stored without a version, returned as it is)."""
    if (
        type(stored) is list
        and len(stored) == 5
        and stored[0] == _MARK
        and type(stored[1]) is int
        and type(stored[2]) is int
        and type(stored[3]) is str
    ):
        return stored[4], Version(stored[1], stored[2], stored[3])
    return stored, ZERO
