"""What the invalidation engine counts, and what one invalidation reports."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import TierError

__all__ = ["EmitReport", "InvalidationStats"]


@dataclass
class EmitReport:
    """What one ``emit`` / ``invalidate`` / batch flush did.

    ``keys``: every key it invalidated (dropped or refreshed: named by a rule, found in
    an index, through a dependency or by a scan; a key named may have been absent);
    ``dropped``: per tier slot
    (``"remote"``, ``"store"``, ``"local"``), how many of those keys the tier held and
    dropped; ``refreshed``: hot keys reloaded in the background instead of dropped;
    ``errors``: per slot (a tier, an index: ``"remote"``/``"store"``/``"local"``, the bus:
    ``"bus"``, the tag indexes: ``"tags:<slot>"``), the failure of that slot (what could
    be done elsewhere was done); ``scanned``: keys examined by the SCAN fallback for
    patterns nobody registered; ``truncated``: a bound was hit (the SCAN limit, the
    dependency depth or the key limit) and some keys may have been left.
    """

    event: str | None = None
    keys: frozenset[str] = frozenset()
    dropped: dict[str, int] = field(default_factory=dict)
    refreshed: frozenset[str] = frozenset()
    errors: dict[str, TierError] = field(default_factory=dict)
    scanned: int = 0
    truncated: bool = False

    @property
    def ok(self) -> bool:
        """Whether every tier, index and the bus did their part (and no bound was hit)."""
        return not self.errors and not self.truncated

    def summary(self) -> dict[str, Any]:
        """The report as JSON-ready data (what the management API and the CLI print):
        ``ok``, the number of ``keys``, ``dropped``, ``errors`` (their messages),
        ``scanned``, ``truncated``."""
        return {
            "ok": self.ok,
            "keys": len(self.keys),
            "dropped": dict(self.dropped),
            "errors": {slot: str(exc) for slot, exc in self.errors.items()},
            "scanned": self.scanned,
            "truncated": self.truncated,
        }


class InvalidationStats:
    """Counts of the engine, exact under threads: totals (``counts``), per strategy and
    rule (``by``: ``{name: {"events": n, "keys": n}}``) and per tier slot
    (``tiers``: ``{slot: {"dropped": n, "errors": n}}``). ``snapshot()`` returns plain
    dicts for an exporter (the metrics issue)."""

    NAMES = (
        "emits",  # emit calls that resolved (a missing field raises before counting)
        "invalidations",  # emits + invalidate calls + batch flushes that ran
        "keys",  # keys invalidated (dropped or refreshed)
        "index_writes",  # index add calls (one per write of a key under a pattern)
        "index_errors",
        "pattern_lookups",  # pattern instances read from the indexes
        "scans",  # ad-hoc patterns resolved by the SCAN fallback
        "scanned",  # keys examined by those scans
        "scan_truncated",
        "dependents",  # keys reached through dependencies
        "depth_limited",  # invalidations that stopped at the depth or key bound
        "edges",  # dependency edges recorded
        "ttl_ruled",  # writes that got their TTL from a TTL rule
        "refreshes",  # smart: hot keys reloaded instead of dropped
        "refresh_errors",  # smart: reloads that failed (the key was dropped then)
        "refresh_skipped",  # smart: reloads not written (a newer event came meanwhile)
        "refresh_refused",  # smart: reloads a tier refused (the key changed): dropped then
        "refresh_overflow",  # smart: hot keys dropped because the pool was full
        "batches",  # batch flushes
        "batch_errors",  # batch flushes with an error
        "backpressure",  # adds that flushed in the caller because the queue was full
        "backfilled",  # keys indexed by backfill (written before their rule)
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._by: dict[str, Counter[str]] = {}
        self._tiers: dict[str, Counter[str]] = {}

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def add_by(self, who: str, name: str, n: int = 1) -> None:
        with self._lock:
            self._by.setdefault(who, Counter())[name] += n

    def add_tier(self, slot: str, name: str, n: int = 1) -> None:
        with self._lock:
            self._tiers.setdefault(slot, Counter())[name] += n

    def merge(
        self,
        counts: Mapping[str, int],
        by: Mapping[str, Mapping[str, int]],
        tiers: Mapping[str, Mapping[str, int]],
    ) -> None:
        """Add ``counts`` (as :meth:`add`), ``by`` (``{who: {name: n}}``, as
        :meth:`add_by`) and ``tiers`` (``{slot: {name: n}}``, as :meth:`add_tier``) at
        once: what a batch of invalidations counts, under one lock."""
        with self._lock:
            self._counts.update(counts)
            for who, named in by.items():
                self._by.setdefault(who, Counter()).update(named)
            for slot, named in tiers.items():
                self._tiers.setdefault(slot, Counter()).update(named)

    def __getitem__(self, name: str) -> int:
        with self._lock:
            return self._counts[name]

    @property
    def counts(self) -> dict[str, int]:
        with self._lock:
            return {name: self._counts[name] for name in self.NAMES}

    @property
    def by(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {who: dict(c) for who, c in self._by.items()}

    @property
    def tiers(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {slot: dict(c) for slot, c in self._tiers.items()}

    def snapshot(self) -> dict[str, Any]:
        """Every count as plain dicts: ``{"counts": ..., "by": ..., "tiers": ...}``."""
        return {"counts": self.counts, "by": self.by, "tiers": self.tiers}

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in self.counts.items() if v)
        return f"InvalidationStats({shown})"
