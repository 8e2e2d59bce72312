"""The demo's figures: the snapshots of every worker added up per phase and over time,
the live table, the final report (with and without the cache), the JSON and the plot."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .workload import TIERS

__all__ = ["Tally", "Totals", "comparison", "percentile", "plot"]

BIN = 0.5  # seconds per point of the hit-ratio timeline


def percentile(samples: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``samples`` (0 when empty), nearest rank."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


@dataclass
class Totals:
    """What one phase measured, over every worker."""

    ops: int = 0
    by_tier: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TIERS, 0))
    latency: dict[str, list[float]] = field(default_factory=lambda: {t: [] for t in TIERS})
    cap_reads: int = 0
    cap_source: int = 0
    stale: int = 0
    state_reads: int = 0
    errors: int = 0
    invalidations: int = 0
    updates: int = 0
    updates_lost: int = 0
    migrations_done: int = 0
    in_flight: dict[int, int] = field(default_factory=dict)
    first: float = math.inf
    last: float = 0.0

    def add(self, snap: dict[str, Any]) -> None:
        for name in ("ops", "cap_reads", "cap_source", "stale", "state_reads", "errors",
                     "invalidations", "updates", "updates_lost", "migrations_done"):  # fmt: skip
            setattr(self, name, getattr(self, name) + snap[name])
        for tier in TIERS:
            self.by_tier[tier] += snap["by_tier"][tier]
            self.latency[tier].extend(snap["latency"][tier])
        self.in_flight[snap["worker"]] = snap["in_flight"]
        self.first = min(self.first, snap["at"] - 0.25)
        self.last = max(self.last, snap["at"])

    @property
    def seconds(self) -> float:
        return max(self.last - self.first, 1e-9) if self.ops else 0.0

    def hit_ratio(self, tier: str | None = None) -> float:
        """Share of operations served by ``tier`` (``None``: by any cache tier)."""
        if not self.ops:
            return 0.0
        if tier is None:
            return 1.0 - self.by_tier["source"] / self.ops
        return self.by_tier[tier] / self.ops

    def all_latency(self) -> list[float]:
        return [s for tier in TIERS for s in self.latency[tier]]

    def summary(self, source_calls: int) -> dict[str, Any]:
        every = self.all_latency()
        return {
            "ops": self.ops,
            "seconds": round(self.seconds, 3),
            "ops_per_second": round(self.ops / self.seconds, 1) if self.ops else 0.0,
            "source_calls": source_calls,
            "source_calls_per_1000_ops": round(1000 * source_calls / self.ops, 1)
            if self.ops
            else 0.0,
            "hit_ratio": round(self.hit_ratio(), 4),
            "latency_ms": {
                "mean": round(1000 * sum(every) / len(every), 3) if every else 0.0,
                "p50": round(1000 * percentile(every, 0.50), 3),
                "p99": round(1000 * percentile(every, 0.99), 3),
            },
            "tiers": {
                tier: {
                    "served": self.by_tier[tier],
                    "ratio": round(self.hit_ratio(tier), 4),
                    "p50_ms": round(1000 * percentile(self.latency[tier], 0.50), 3),
                    "p99_ms": round(1000 * percentile(self.latency[tier], 0.99), 3),
                }
                for tier in TIERS
            },
            "capacity_reads": self.cap_reads,
            "capacity_hit_ratio": round(1 - self.cap_source / self.cap_reads, 4)
            if self.cap_reads
            else 0.0,
            "state_reads": self.state_reads,
            "stale_state_reads": self.stale,
            "invalidations": self.invalidations,
            "migrations_completed": self.migrations_done,
            "migration_updates_streamed": self.updates,
            "migration_updates_missed": self.updates_lost,
            "errors": self.errors,
        }


class Tally:
    """Every snapshot received, per phase and per timeline bin."""

    def __init__(self, phases: Iterable[str], start: float) -> None:
        self.phases = {name: Totals() for name in phases}
        self.start = start
        self.timeline: dict[str, dict[int, list[int]]] = {name: {} for name in self.phases}
        self.source_calls: dict[str, dict[int, int]] = {name: {} for name in self.phases}
        self._last_calls: dict[int, int] = {}
        self.done: list[dict[str, Any]] = []
        self.current: str | None = None

    def add(self, snap: dict[str, Any]) -> None:
        if snap.get("kind") == "done":
            self.done.append(snap)
            return
        name = snap["phase"]
        self.current = name
        self.phases[name].add(snap)
        worker = snap["worker"]
        calls = snap["source_calls"] - self._last_calls.get(worker, 0)
        self._last_calls[worker] = snap["source_calls"]
        per = self.source_calls[name]
        per[worker] = per.get(worker, 0) + calls
        point = self.timeline[name].setdefault(int((snap["at"] - self.start) / BIN), [0, 0])
        point[0] += snap["ops"]
        point[1] += snap["by_tier"]["source"]

    def figures(self) -> dict[str, Any]:
        """Every figure of the run, as JSON-ready data."""
        out: dict[str, Any] = {"phases": {}}
        for name, totals in self.phases.items():
            summary = totals.summary(sum(self.source_calls[name].values()))
            summary["timeline"] = [
                {"t": round(b * BIN, 2), "ops": ops, "hit_ratio": round(1 - src / ops, 4)}
                for b, (ops, src) in sorted(self.timeline[name].items())
                if ops
            ]
            out["phases"][name] = summary
        return out


def comparison(figures: dict[str, Any]) -> list[str]:
    """The lines of the final report: the same workload without and with the cache."""
    p = figures["phases"]
    base, cached, pred = p["without cache"], p["with cache"], p["cache + predictive"]
    lines = []

    def speedup(a: float, b: float) -> str:
        return f"{a / b:.1f}x" if b else "n/a"

    lines.append(
        f"without cache: {base['ops_per_second']:.0f} ops/s, "
        f"{base['source_calls_per_1000_ops']:.0f} source calls per 1000 ops, "
        f"latency p50 {base['latency_ms']['p50']:.2f} ms, p99 {base['latency_ms']['p99']:.2f} ms"
    )
    for label, phase in (("with cache", cached), ("cache + predictive", pred)):
        lines.append(
            f"{label}: {phase['ops_per_second']:.0f} ops/s "
            f"({speedup(phase['ops_per_second'], base['ops_per_second'])}), "
            f"{phase['source_calls_per_1000_ops']:.0f} source calls per 1000 ops, "
            f"hit ratio {phase['hit_ratio']:.1%}, "
            f"latency p50 {phase['latency_ms']['p50']:.3f} ms "
            f"({speedup(base['latency_ms']['p50'], phase['latency_ms']['p50'])} lower), "
            f"p99 {phase['latency_ms']['p99']:.2f} ms"
        )
    lines.append(
        f"predictive pre-caching: node-capacity hit ratio {cached['capacity_hit_ratio']:.1%} "
        f"without it, {pred['capacity_hit_ratio']:.1%} with it (capacities older than 2 s "
        "are refetched)"
    )
    stale = cached["stale_state_reads"] + pred["stale_state_reads"]
    reads = cached["state_reads"] + pred["state_reads"]
    lines.append(
        f"coherence: {stale} of {reads} VM-state reads older than the truth by more than "
        f"1 s, after {cached['invalidations'] + pred['invalidations']} state-change events"
    )
    done, streamed, missed = (
        cached[name] + pred[name]
        for name in (
            "migrations_completed", "migration_updates_streamed", "migration_updates_missed",
        )
    )  # fmt: skip
    lines.append(f"migrations: {done} completed, {streamed} updates streamed, {missed} missed")
    return lines


def plot(figures: dict[str, Any], path: Path) -> Path | None:
    """A PNG: the hit ratio over time per phase, and p50/p99 latency per tier. ``None``
    when matplotlib is missing (``pip install 'novacache[demo]'``)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    phases = figures["phases"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, phase in phases.items():
        points = phase["timeline"]
        left.plot([p["t"] for p in points], [p["hit_ratio"] for p in points], label=name)
    left.set_xlabel("seconds since start")
    left.set_ylabel("operations served by a cache tier")
    left.set_ylim(-0.02, 1.02)
    left.set_title("hit ratio over time")
    left.legend(loc="lower right")
    labels: list[str] = []
    p50: list[float] = []
    p99: list[float] = []
    for name, phase in phases.items():
        for tier, row in phase["tiers"].items():
            if row["served"]:
                labels.append(f"{tier}, {name}")
                p50.append(max(row["p50_ms"], 1e-3))
                p99.append(max(row["p99_ms"], 1e-3))
    xs = range(len(labels))
    right.bar([x - 0.2 for x in xs], p50, width=0.4, label="p50")
    right.bar([x + 0.2 for x in xs], p99, width=0.4, label="p99")
    right.set_yscale("log")
    # one line per label, slanted: two-line labels of neighbouring bars ran into each other
    right.set_xticks(list(xs), labels, fontsize=7, rotation=30, ha="right")
    if p99:
        right.set_ylim(top=max(p99) * 8)  # room for the legend above the tallest bar
    right.set_ylabel("latency per operation (ms, log)")
    right.set_title("latency by where the operation was served")
    right.legend(loc="upper center", ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
