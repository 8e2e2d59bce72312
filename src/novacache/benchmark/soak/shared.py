"""What the soak's processes share: the record format, the control file and the
"database" file (see :mod:`novacache.benchmark.soak`).

- A record is one operation, 32 bytes: kind, source, flags, key index, signed version,
  start and end (``time.monotonic()``, which is system-wide on Linux, so the records of
  every process share one time line).
- The control file holds float64 slots: the start signal, the stop signal, and per
  process its readiness, its operation count, the end time of its last write that reached
  Redis and its exceptions out of reads (the runner's progress line and its wait for
  recovery read them).
- The database is the source of truth the loader reads: one int64 per key, the signed
  version its writer wrote last (``v > 0`` a value, ``-v`` deleted at version ``v``,
  ``0`` never written).
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

__all__ = [
    "DELETE",
    "READ",
    "RECORD",
    "SET",
    "SOURCES",
    "Control",
    "Database",
]

RECORD = struct.Struct("<BBBxiqdd")  # kind, source, flags, -, key, version, start, end
READ, SET, DELETE = 0, 1, 2
KINDS = ("read", "set", "delete")
# Where a read's value came from: the first tier below L1 that returned a frame in the
# call, else the loader, else L1.
L1, REDIS, SQLITE, LOADER = 0, 1, 2, 3
SOURCES = ("l1", "redis", "sqlite", "loader")
# flags of a read
RAISED = 1  # the call raised (reads and writes)
BAD_VALUE = 2  # a value that is not this key's [version, key]
# flags of a write
REMOTE_OK, STORE_OK, REMOTE_FAILED, STORE_FAILED, BUS_FAILED = 2, 4, 8, 16, 32
NO_VERSION = -(2**63)  # a read that returned nothing usable

GO, STOP = 0, 1
_PER_PROCESS = 4
READY, OPS, REMOTE_OK_AT, READ_ERRORS = range(_PER_PROCESS)


def _mapped(path: Path, size: int, create: bool) -> mmap.mmap:
    if create:
        path.write_bytes(b"\0" * size)
    with open(path, "r+b") as f:
        return mmap.mmap(f.fileno(), size)


class Control:
    """The control file of a run with ``processes`` workers (float64 slots)."""

    def __init__(self, path: Path, processes: int, *, create: bool = False) -> None:
        self.processes = processes
        self._map = _mapped(path, 8 * (8 + _PER_PROCESS * processes), create)
        self._slots = memoryview(self._map).cast("d")

    def get(self, slot: int) -> float:
        return float(self._slots[slot])

    def put(self, slot: int, value: float) -> None:
        self._slots[slot] = value

    def of(self, process: int, field: int) -> int:
        """The slot of ``field`` for ``process``."""
        return 8 + _PER_PROCESS * process + field

    def close(self) -> None:
        self._slots.release()
        self._map.close()


class Database:
    """The soak's source of truth: one signed version per key (int64 slots)."""

    def __init__(self, path: Path, keys: int, *, create: bool = False) -> None:
        self._map = _mapped(path, 8 * keys, create)
        self.versions = memoryview(self._map).cast("q")

    def close(self) -> None:
        self.versions.release()
        self._map.close()
