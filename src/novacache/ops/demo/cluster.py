"""The simulated NovaCron cluster: slow sources over one deterministic truth.

Every worker process builds the same :class:`Truth` from the same :class:`Plan` (seed,
sizes, start time), so they agree on the state of every VM at every instant without
talking to each other: VM ``v`` changes state at the times the seeded schedule gives it,
and its ``generation`` is the number of changes so far. A cached state older than the
truth (by more than a grace period) is a stale read, which is how the demo measures
cross-process coherence.

The sources sleep like the tiers of the seed design (L2 ~5 ms, L3 ~50 ms): a VM state
5 ms, a batch of states 8 ms, metrics 20 ms, a configuration 50 ms, a node capacity
5 ms, a score 10 ms, a placement 50 ms, a migration's state or progress 5 ms.
"""

from __future__ import annotations

import bisect
import random
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from ...novacron import (
    AllocationScore,
    MigrationProgress,
    MigrationState,
    NodeCapacity,
    NodeRecommendation,
    TimeRange,
    VMConfiguration,
    VMMetrics,
    VMSpecification,
    VMState,
)

__all__ = ["LATENCY", "Plan", "Sources", "Truth", "tls"]

#: Seconds each source call sleeps.
LATENCY = {
    "vm_state": 0.005,
    "vm_states": 0.008,
    "vm_metrics": 0.020,
    "vm_config": 0.050,
    "capacity": 0.005,
    "score": 0.010,
    "optimal": 0.050,
    "migration": 0.005,
}

_STATUSES = ("running", "running", "paused", "running", "stopped", "migrating")

#: Per-thread marks of where the current operation was served (see workload.py).
tls = threading.local()


@dataclass(frozen=True)
class Plan:
    """What every worker shares: the cluster's sizes, its seed and its clock origin."""

    seed: int
    vms: int
    nodes: int
    start: float
    seconds: float
    change_rate: float  # VM state changes per second, cluster-wide
    workers: int


class Truth:
    """The state of the cluster at any time (the same in every process)."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        rng = random.Random(plan.seed)
        self.changes: list[tuple[float, int]] = []
        t = plan.start
        end = plan.start + plan.seconds + 60
        while t < end and plan.change_rate > 0:
            t += rng.expovariate(plan.change_rate)
            self.changes.append((t, rng.randrange(plan.vms)))
        self._times = [c[0] for c in self.changes]
        self._per_vm: dict[int, list[float]] = {}
        for when, vm in self.changes:
            self._per_vm.setdefault(vm, []).append(when)

    def generation(self, vm: int, at: float) -> int:
        return bisect.bisect_right(self._per_vm.get(vm, ()), at)

    def changes_between(self, t0: float, t1: float) -> list[tuple[float, int]]:
        lo = bisect.bisect_right(self._times, t0)
        hi = bisect.bisect_right(self._times, t1)
        return self.changes[lo:hi]

    def state(self, vm: int, at: float) -> VMState:
        gen = self.generation(vm, at)
        node = (vm * 7 + gen * 13) % self.plan.nodes
        return VMState(f"vm-{vm:05d}", _STATUSES[gen % len(_STATUSES)], f"node-{node:03d}", gen, at)

    def capacity(self, node: int, at: float) -> NodeCapacity:
        # The load on a node drifts every few seconds.
        step = int((at - self.plan.start) // 3)
        wobble = random.Random(self.plan.seed * 1_000_003 + node * 101 + step).random()
        free = 4 + 28 * wobble
        return NodeCapacity(
            f"node-{node:03d}", 32, round(free, 1), 262_144,
            int(262_144 * wobble), 2_000, 0, at,
        )  # fmt: skip


class Sources:
    """The VM manager, the monitor, the scheduler and the migration engine of the
    simulated cluster, each call sleeping its :data:`LATENCY` and counted."""

    def __init__(self, truth: Truth) -> None:
        self.truth = truth
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.migrations: dict[str, MigrationState] = {}
        self.progress: dict[str, MigrationProgress] = {}

    def _cost(self, kind: str) -> None:
        with self._lock:
            self.calls[kind] += 1
        tls.source = getattr(tls, "source", 0) + 1
        time.sleep(LATENCY[kind])

    @staticmethod
    def vm_index(vm_id: str) -> int:
        return int(vm_id.rsplit("-", 1)[1])

    @staticmethod
    def node_index(node_id: str) -> int:
        return int(node_id.rsplit("-", 1)[1])

    # -- the VM manager ---------------------------------------------------------------

    def get_vm_state(self, vm_id: str) -> VMState:
        self._cost("vm_state")
        return self.truth.state(self.vm_index(vm_id), time.time())

    def get_vm_states(self, vm_ids: Sequence[str]) -> dict[str, VMState]:
        self._cost("vm_states")
        now = time.time()
        return {v: self.truth.state(self.vm_index(v), now) for v in vm_ids}

    def get_vm_configuration(self, vm_id: str) -> VMConfiguration:
        self._cost("vm_config")
        i = self.vm_index(vm_id)
        return VMConfiguration(vm_id, 2 << (i % 3), 2048 << (i % 4), 40, "debian-12", ("br0",))

    def list_vms(self, node_id: str | None = None) -> list[str]:
        now = time.time()
        ids = [f"vm-{v:05d}" for v in range(self.truth.plan.vms)]
        if node_id is None:
            return ids
        return [v for v in ids if self.truth.state(self.vm_index(v), now).node_id == node_id]

    # -- the monitor ------------------------------------------------------------------

    def get_vm_metrics(self, vm_id: str, time_range: TimeRange) -> VMMetrics:
        self._cost("vm_metrics")
        i = self.vm_index(vm_id)
        return VMMetrics(vm_id, time_range, 10.0 + i % 80, 20.0 + i % 70, 150.0, 12.0, 60)

    # -- the scheduler ----------------------------------------------------------------

    def get_node_capacity(self, node_id: str) -> NodeCapacity:
        self._cost("capacity")
        return self.truth.capacity(self.node_index(node_id), time.time())

    def score(self, spec: VMSpecification, capacity: NodeCapacity) -> AllocationScore:
        self._cost("score")
        fit = min(capacity.free_cpus / max(spec.vcpus, 1), 8.0) / 8.0
        return AllocationScore(capacity.node_id, spec.fingerprint, round(fit, 3), time.time())

    def optimal_nodes(self, spec: VMSpecification, count: int) -> list[NodeRecommendation]:
        self._cost("optimal")
        now = time.time()
        caps = [self.truth.capacity(n, now) for n in range(self.truth.plan.nodes)]
        ranked = sorted((c for c in caps if spec.fits(c)), key=lambda c: -c.free_cpus)
        return [NodeRecommendation(c.node_id, c.free_cpus, i) for i, c in enumerate(ranked[:count])]

    def list_nodes(self) -> list[str]:
        return [f"node-{n:03d}" for n in range(self.truth.plan.nodes)]

    # -- the migration engine ---------------------------------------------------------

    def get_migration_state(self, migration_id: str) -> MigrationState:
        self._cost("migration")
        return self.migrations[migration_id]

    def get_migration_progress(self, migration_id: str) -> MigrationProgress:
        self._cost("migration")
        return self.progress[migration_id]

    def list_migrations(self, node_id: str | None = None) -> list[str]:
        return [
            m
            for m, s in self.migrations.items()
            if node_id is None or node_id in (s.source_node, s.target_node)
        ]
