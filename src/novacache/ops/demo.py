"""``novacache demo``: the manager on the embedded default (L1 + SQLite, no server).

A short NovaCron-style workload: VM metadata looked up through ``get_or_load`` with a
slow loader (the "inventory database"), with a skewed key popularity; a stampede of
threads on one cold key; a restart of the process's cache (a new manager on the same
file) that shows L3 persistence; a delete; a tag invalidation (every VM of one
host). Each phase prints what it measured: lookups, hit ratio
per tier, loader calls, latency p50/p99.
"""

from __future__ import annotations

import random
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ..manager import CacheManager

__all__ = ["Phase", "run"]


@dataclass
class Phase:
    """What one phase of the demo measured."""

    name: str
    lookups: int
    l1_hits: int
    l3_hits: int
    loads: int
    p50_us: float
    p99_us: float
    seconds: float

    def row(self) -> str:
        """One line of the demo's table."""
        n = max(self.lookups, 1)
        return (
            f"{self.name:<28} {self.lookups:>7} {self.l1_hits / n:>7.1%} {self.l3_hits / n:>7.1%}"
            f" {self.loads:>7} {self.p50_us:>10.1f} {self.p99_us:>10.1f} {self.seconds:>7.2f}"
        )


HEADER = (
    f"{'phase':<28} {'lookups':>7} {'L1 hit':>7} {'L3 hit':>7} {'loads':>7}"
    f" {'p50 µs':>10} {'p99 µs':>10} {'secs':>7}"
)


def _percentile(samples: list[float], q: float) -> float:
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class _Inventory:
    """The slow source of truth: VM records, ``delay`` seconds per lookup."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.calls = 0
        self._lock = threading.Lock()

    def loader(self, vm_id: int) -> Callable[[], dict[str, Any]]:
        def load() -> dict[str, Any]:
            with self._lock:
                self.calls += 1
            time.sleep(self.delay)
            return {
                "id": f"vm-{vm_id:05d}",
                "host": f"node-{vm_id % 17:02d}",
                "state": "running" if vm_id % 5 else "stopped",
                "cpus": 2 << (vm_id % 4),
                "memory_mb": 1024 * (1 + vm_id % 8),
                "tags": ["tenant-" + str(vm_id % 9), "zone-" + "abc"[vm_id % 3]],
            }

        return load


def _phase(
    name: str,
    manager: CacheManager,
    inventory: _Inventory,
    keys: list[int],
    ttl: float,
) -> Phase:
    local = manager.local
    assert local is not None
    l1_before = local.stats.hits
    l3_before = manager.stats.get("store", "hits")
    loads_before = inventory.calls
    samples: list[float] = []
    clock = time.perf_counter
    start = clock()
    for vm_id in keys:
        t0 = clock()
        manager.get_or_load(
            f"vm:{vm_id}", inventory.loader(vm_id), ttl=ttl, tags=[f"host:node-{vm_id % 17:02d}"]
        )
        samples.append((clock() - t0) * 1e6)
    return Phase(
        name,
        len(keys),
        local.stats.hits - l1_before,
        manager.stats.get("store", "hits") - l3_before,
        inventory.calls - loads_before,
        _percentile(samples, 0.50),
        _percentile(samples, 0.99),
        clock() - start,
    )


def _stampede(manager: CacheManager, inventory: _Inventory, threads: int) -> Phase:
    barrier = threading.Barrier(threads)
    samples: list[float] = []
    lock = threading.Lock()
    loads_before = inventory.calls
    local = manager.local
    assert local is not None
    l1_before = local.stats.hits

    def worker() -> None:
        barrier.wait(10)
        t0 = time.perf_counter()
        manager.get_or_load("vm:hot-new", inventory.loader(99_999), ttl=300)
        with lock:
            samples.append((time.perf_counter() - t0) * 1e6)

    start = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(30)
    return Phase(
        f"stampede: {threads} threads, 1 key",
        threads,
        local.stats.hits - l1_before,
        0,
        inventory.calls - loads_before,
        _percentile(samples, 0.50),
        _percentile(samples, 0.99),
        time.perf_counter() - start,
    )


def run(*, quick: bool = False, out: TextIO, workdir: Path | None = None) -> list[Phase]:
    """Run the demo, print its table to ``out``, and return the phases measured.

    ``quick``: a few hundred lookups and a shorter loader delay (a smoke test, a second
    or two); otherwise a few thousand lookups, well under 30 s.
    """
    vms, lookups, delay, threads = (50, 400, 0.002, 16) if quick else (500, 20_000, 0.005, 64)
    rng = random.Random(1234)
    # Zipf-like popularity: a few VMs are looked up all the time (dashboards, scheduler)
    weights = [1.0 / (rank + 1) for rank in range(vms)]
    workload = rng.choices(range(vms), weights, k=lookups)
    inventory = _Inventory(delay)
    phases: list[Phase] = []
    with tempfile.TemporaryDirectory(prefix="novacache-demo-", dir=workdir) as tmp:
        path = Path(tmp) / "l3.db"
        print(
            "novacache demo: CacheManager on the embedded default (LocalCache L1 +"
            f" SQLiteTier L3 at {path}), no server.\n"
            f"Source of truth: an inventory lookup of {delay * 1000:.0f} ms per VM;"
            f" {vms} VMs, {lookups} lookups with Zipf-like popularity.\n",
            file=out,
        )
        print(HEADER, file=out)
        with CacheManager.embedded(path, maxsize=vms // 5) as manager:
            phases.append(_phase("cold start, small L1", manager, inventory, workload, 600))
            print(phases[-1].row(), file=out, flush=True)
            phases.append(_phase("warm (same workload)", manager, inventory, workload, 600))
            print(phases[-1].row(), file=out, flush=True)
            phases.append(_stampede(manager, inventory, threads))
            print(phases[-1].row(), file=out, flush=True)
        with CacheManager.embedded(path, maxsize=vms * 2) as manager:
            phases.append(_phase("restart: new L1, same L3", manager, inventory, workload, 600))
            print(phases[-1].row(), file=out, flush=True)
            phases.append(_phase("after restart, L1 warm", manager, inventory, workload, 600))
            print(phases[-1].row(), file=out, flush=True)
            manager.delete("vm:0")
            phases.append(_phase("after delete of vm:0", manager, inventory, [0, 0, 0], 600))
            print(phases[-1].row(), file=out, flush=True)
            # node-03 is drained: every VM record it hosts is invalidated by its tag
            dropped = manager.invalidate_tags(["host:node-03"])
            phases.append(
                _phase("after invalidating node-03", manager, inventory, sorted(set(workload)), 600)
            )
            print(phases[-1].row(), file=out, flush=True)
    stampede = phases[2]
    restart = phases[3]
    print(
        f"\nstampede: {stampede.lookups} threads on one cold key, loader ran"
        f" {stampede.loads} time(s).\n"
        f"restart: {restart.lookups} lookups after a restart, {restart.loads} loader calls"
        f" ({restart.l3_hits} served from the SQLite file).\n"
        f"tags: invalidate_tags(['host:node-03']) removed {dropped} VM records from L1 and"
        f" L3; the next pass over the {phases[-1].lookups} VMs in use reloaded"
        f" {phases[-1].loads}.\n"
        f"total loader calls: {inventory.calls} for {sum(p.lookups for p in phases)} lookups.",
        file=out,
    )
    return phases
