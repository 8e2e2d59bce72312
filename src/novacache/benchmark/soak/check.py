"""The soak's checker: which reads were stale, and how the run ended.

Every key has one writer, and each of its writes (``set`` or ``delete``) carries the next
version of that key (1, 2, 3, ...; a delete is a write of a tombstone, written ``-v``).
A read is *stale* when it returned an older version than the last write of its key that
had completed, and was confirmed by some tier, before the read began; its *age* is how
long before the read began the first newer write had completed. A read returning a
version whose write had not even started when the read ended is *impossible* (a bug of
the harness or of the cache).

>>> c = Checker()
>>> c.write(7, 1, start=0.0, end=0.1)
>>> c.write(7, -2, start=0.2, end=0.3)          # version 2 deletes the key
>>> c.read(7, 2, start=0.25, end=0.26) is None  # the delete was still running: fine
True
>>> stale = c.read(7, 1, start=0.5, end=0.6, source="redis")
>>> stale.expected, round(stale.age, 3), stale.source, stale.resurrected
(-2, 0.2, 'redis', True)
>>> c.last(7)
-2
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from dataclasses import dataclass

__all__ = [
    "AGE_BUCKETS",
    "PROPAGATION",
    "Checker",
    "StaleRead",
    "age_bucket",
    "late",
    "percentile",
    "window",
]

AGE_BUCKETS = (0.01, 0.1, 1.0, 2.0, 10.0)  # upper bounds in seconds, then "more"
AFTER_FAULT = 2.0  # seconds after a fault ended still counted as its aftermath
#: How far an L1 may lag behind a write of another process in the eventual mode: the
#: invalidation bus's delivery (its loss bound, ``InvalidationBus(timeout=0.25)``).
PROPAGATION = 0.25


@dataclass(frozen=True)
class StaleRead:
    """A read that returned ``got`` while ``expected`` was the key's completed write."""

    key: int
    got: int
    expected: int
    age: float
    source: str
    at: float

    @property
    def resurrected(self) -> bool:
        """A value read back after its key had been deleted."""
        return self.got > 0 and self.expected < 0


class Checker:
    """Versions written per key (fed in version order), and the reads checked against
    them. Memory: two floats and two bytes per write; reads are not kept."""

    def __init__(self) -> None:
        self._starts: dict[int, array[float]] = {}
        self._ends: dict[int, array[float]] = {}
        self._confirmed: dict[int, bytearray] = {}
        self._deletes: dict[int, bytearray] = {}
        self.impossible = 0

    def write(
        self, key: int, version: int, start: float, end: float, confirmed: bool = True
    ) -> None:
        """Record the write of ``version`` (negative: a delete) of ``key``; versions of a
        key come in order, 1 first (``ValueError`` otherwise)."""
        ends = self._ends.get(key)
        if ends is None:
            ends = self._ends[key] = array("d")
            self._starts[key] = array("d")
            self._confirmed[key] = bytearray()
            self._deletes[key] = bytearray()
        if abs(version) != len(ends) + 1:
            raise ValueError(f"key {key}: version {abs(version)} after {len(ends)}")
        ends.append(end)
        self._starts[key].append(start)
        self._confirmed[key].append(confirmed)
        self._deletes[key].append(version < 0)

    def _signed(self, key: int, version: int) -> int:
        return -version if version and self._deletes[key][version - 1] else version

    def expected(self, key: int, at: float) -> int:
        """The signed version of the last confirmed write of ``key`` completed before
        ``at`` (0: none)."""
        ends = self._ends.get(key)
        if ends is None:
            return 0
        n = bisect_left(ends, at)
        confirmed = self._confirmed[key]
        while n and not confirmed[n - 1]:
            n -= 1
        return self._signed(key, n)

    def last(self, key: int) -> int:
        """The signed version of the last confirmed write of ``key`` (0: none)."""
        return self.expected(key, float("inf"))

    def read(
        self, key: int, got: int, start: float, end: float, source: str = ""
    ) -> StaleRead | None:
        """Check a read of ``key`` that returned the signed version ``got`` (0: nothing
        was ever written) between ``start`` and ``end``: the stale read, or ``None``."""
        version = abs(got)
        starts = self._starts.get(key)
        started = 0 if starts is None else bisect_left(starts, end)
        if version > started:
            self.impossible += 1
            return None
        expected = self.expected(key, start)
        if version >= abs(expected):
            return None
        age = start - self._ends[key][version]  # the end of the first newer write
        return StaleRead(key, got, expected, age, source, start)


def age_bucket(age: float) -> str:
    """The label of the age bucket of a stale read (``"<10 ms"`` ... ``">=10 s"``)."""
    for bound in AGE_BUCKETS:
        if age < bound:
            return f"<{_seconds(bound)}"
    return f">={_seconds(AGE_BUCKETS[-1])}"


def _seconds(value: float) -> str:
    return f"{value * 1000:g} ms" if value < 1 else f"{value:g} s"


def window(at: float, faults: list[tuple[str, float, float]]) -> str:
    """Where ``at`` falls against ``faults`` (kind, start, end; in start order): during a
    fault, within ``AFTER_FAULT`` seconds after one ended, later, or before any."""
    label = "before any fault"
    for kind, start, end in faults:
        if start > at:
            break
        if at < end:
            label = f"during {kind}"
        elif at - end < AFTER_FAULT:
            label = f"<{AFTER_FAULT:g} s after {kind}"
        else:
            label = f">{AFTER_FAULT:g} s after a fault"
    return label


def late(label: str, age: float) -> bool:
    """Whether a stale read breaks the eventual mode's bound (docs/consistency.md): it
    was not during a fault nor within ``AFTER_FAULT`` seconds after one (``label``, from
    :func:`window`), and it was behind by more than the bus's ``PROPAGATION``."""
    return not label.startswith(("during", "<")) and age > PROPAGATION


def percentile(values: array[float] | list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` by the nearest rank (0.0 when empty).

    >>> percentile([1.0, 2.0, 3.0, 4.0], 0.5), percentile([5.0], 0.99)
    (2.0, 5.0)
    """
    if not len(values):
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(q * len(ordered) + 0.999999)))
    return ordered[rank - 1]
