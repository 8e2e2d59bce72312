"""What the manager counts, and what a write reports."""

from __future__ import annotations

from typing import Any, NamedTuple

from .._counters import Counters
from ..errors import TierError

__all__ = ["ManagerStats", "WriteReport"]

_PER_TIER = (
    "hits",
    "misses",
    "corrupt",
    "expired",
    "read_errors",
    "promote_errors",
    "tombstones",
    "writebacks_refused",
    "repairs",
)
_SLOTS = ("remote", "store")
_OVERALL_NAMES = (
    "loads",
    "refreshes",
    "stale_served",
    "write_errors",
    "l1_refused",
    "l1_skipped",
    "hook_errors",
    "resolve_errors",
    "repair_overflows",
)
_NAMES = (*_OVERALL_NAMES, *(f"{slot}.{name}" for slot in _SLOTS for name in _PER_TIER))
_OVERALL = {name: _NAMES.index(name) for name in _OVERALL_NAMES}
_PER_SLOT = {slot: {name: _NAMES.index(f"{slot}.{name}") for name in _PER_TIER} for slot in _SLOTS}


class WriteReport(NamedTuple):
    """The outcome of a write: the tier slots (``"local"``, ``"remote"``, ``"store"``)
    written, and the error of each slot that failed."""

    written: tuple[str, ...]
    failed: dict[str, TierError]

    @property
    def ok(self) -> bool:
        """Whether every tier the write was meant for took it."""
        return not self.failed


class ManagerStats:
    """What the manager counts, read by metrics at scrape time (no call on the L1 hit
    path: L1's own hits and misses are in ``LocalCache.stats``).

    Per tier slot (``"remote"``, ``"store"``): ``hits``, ``misses``, ``corrupt`` (frames
    the codec or the envelope refused: read as misses), ``expired`` (envelope deadline
    passed), ``read_errors`` and ``promote_errors`` (tier failures), ``tombstones``
    (deletes' tombstones read: misses), ``writebacks_refused`` (a loaded or promoted
    value not stored because the tier held a newer write or a delete, see
    docs/consistency.md), ``repairs`` (keys whose stale copy was removed or overwritten
    after a failed write, an outage or a disagreement between tiers). Overall: ``loads``
    (loader calls), ``refreshes`` (loads that replaced a stale or early-refreshed value),
    ``stale_served`` (stale values returned while another caller refreshed them),
    ``write_errors`` (tiers that failed a write), ``l1_refused`` (values larger than
    L1's budget), ``l1_skipped`` (L1 fills skipped because the invalidation bus was down,
    or an invalidation or a write of this process arrived during the read),
    ``hook_errors`` (exceptions raised by ``on_error``), ``resolve_errors`` (a
    ``resolve=`` callable that failed), ``repair_overflows`` (repair logs that
    overflowed: the tier was then cleared).

    The counts are exact under threads (:class:`~novacache._counters.Counters`: each
    thread counts into its own array, a read sums them).
    """

    __slots__ = ("_counters",)

    def __init__(self) -> None:
        self._counters = Counters(_NAMES)

    @property
    def counters(self) -> Counters:
        """The counters underneath (for callers that count by index)."""
        return self._counters

    def index(self, slot: str, name: str) -> int:
        """The index of the counter ``name`` of tier ``slot`` in :attr:`counters`."""
        return _PER_SLOT[slot][name]

    def add(self, name: str, n: int = 1) -> None:
        """Add ``n`` to the overall counter ``name`` (``"loads"``, ``"refreshes"``, ...)."""
        self._counters.add(_OVERALL[name], n)

    def count(self, slot: str, name: str, n: int = 1) -> None:
        """Add ``n`` to the counter ``name`` of tier ``slot``."""
        self._counters.add(_PER_SLOT[slot][name], n)

    def get(self, slot: str, name: str) -> int:
        """The counter ``name`` of tier ``slot`` (0 before anything was counted)."""
        return self._counters[f"{slot}.{name}"]

    @property
    def tiers(self) -> dict[str, dict[str, int]]:
        """``{slot: {name: count}}`` for the tiers that counted anything."""
        return self.snapshot()["tiers"]  # type: ignore[no-any-return]

    @property
    def loads(self) -> int:
        return self._counters["loads"]

    @property
    def refreshes(self) -> int:
        return self._counters["refreshes"]

    @property
    def stale_served(self) -> int:
        return self._counters["stale_served"]

    @property
    def write_errors(self) -> int:
        return self._counters["write_errors"]

    @property
    def l1_refused(self) -> int:
        return self._counters["l1_refused"]

    @property
    def l1_skipped(self) -> int:
        return self._counters["l1_skipped"]

    @property
    def hook_errors(self) -> int:
        return self._counters["hook_errors"]

    def snapshot(self) -> dict[str, Any]:
        """Every counter, as plain data (one consistent read)."""
        totals = self._counters.snapshot()
        tiers: dict[str, dict[str, int]] = {}
        for slot in _SLOTS:
            counts = {name: totals[f"{slot}.{name}"] for name in _PER_TIER}
            if any(counts.values()):
                tiers[slot] = counts
        out: dict[str, Any] = {"tiers": tiers}
        out.update((name, totals[name]) for name in _OVERALL)
        return out

    def __repr__(self) -> str:
        return f"ManagerStats({self.snapshot()!r})"
