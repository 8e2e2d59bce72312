"""What the manager counts, and what a write reports."""

from __future__ import annotations

from typing import Any, NamedTuple

from ..errors import TierError

__all__ = ["ManagerStats", "WriteReport"]

_PER_TIER = ("hits", "misses", "corrupt", "expired", "read_errors", "promote_errors")


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
    """Plain counters, read by metrics at scrape time (no call on the L1 hit path: L1's
    own hits and misses are in ``LocalCache.stats``).

    Per tier slot (``"remote"``, ``"store"``): ``hits``, ``misses``, ``corrupt`` (frames
    the codec or the envelope refused: read as misses), ``expired`` (envelope deadline
    passed), ``read_errors`` and ``promote_errors`` (tier failures). Overall: ``loads``
    (loader calls), ``refreshes`` (loads that replaced a stale or early-refreshed value),
    ``stale_served`` (stale values returned while another caller refreshed them),
    ``write_errors`` (tiers that failed a write), ``l1_refused`` (values larger than
    L1's budget), ``l1_skipped`` (L1 fills skipped because the
    invalidation bus was down or an invalidation arrived during the read),
    ``hook_errors`` (exceptions raised by ``on_error``).

    Note that the counters are updated without a lock: under heavy thread contention
    an increment may be lost; they are for monitoring, not accounting.
    """

    __slots__ = (
        "hook_errors",
        "l1_refused",
        "l1_skipped",
        "loads",
        "refreshes",
        "stale_served",
        "tiers",
        "write_errors",
    )

    def __init__(self) -> None:
        self.tiers: dict[str, dict[str, int]] = {}
        self.loads = 0
        self.refreshes = 0
        self.stale_served = 0
        self.write_errors = 0
        self.l1_refused = 0
        self.l1_skipped = 0
        self.hook_errors = 0

    def count(self, slot: str, name: str, n: int = 1) -> None:
        """Add ``n`` to the counter ``name`` of tier ``slot``."""
        counters = self.tiers.get(slot)
        if counters is None:
            counters = self.tiers[slot] = dict.fromkeys(_PER_TIER, 0)
        counters[name] += n

    def get(self, slot: str, name: str) -> int:
        """The counter ``name`` of tier ``slot`` (0 before anything was counted)."""
        return self.tiers.get(slot, {}).get(name, 0)

    def snapshot(self) -> dict[str, Any]:
        """Every counter, as plain data."""
        return {
            "tiers": {slot: dict(c) for slot, c in self.tiers.items()},
            "loads": self.loads,
            "refreshes": self.refreshes,
            "stale_served": self.stale_served,
            "write_errors": self.write_errors,
            "l1_refused": self.l1_refused,
            "l1_skipped": self.l1_skipped,
            "hook_errors": self.hook_errors,
        }

    def __repr__(self) -> str:
        return f"ManagerStats({self.snapshot()!r})"
