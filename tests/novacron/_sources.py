"""Sources of truth for the tests: plain in-memory objects that count their calls (the
user's side of the protocols; the caches and tiers under test are real)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from novacache.novacron import (
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


class Failure(RuntimeError):
    """What a failing source raises."""


class VMs:
    """The VM manager and the monitor."""

    def __init__(self, n: int = 20, nodes: int = 4) -> None:
        self.states = {f"vm{i}": VMState(f"vm{i}", "running", f"n{i % nodes}", 1) for i in range(n)}
        self.calls: Counter[str] = Counter()
        self.batches: list[list[str]] = []
        self.fail = False
        self.answer: Any = None  # answered instead of the model when set

    def _check(self, op: str) -> None:
        self.calls[op] += 1
        if self.fail:
            raise Failure(f"{op} is down")

    def get_vm_state(self, vm_id: str) -> Any:
        self._check("get_vm_state")
        return self.answer if self.answer is not None else self.states[vm_id]

    def get_vm_states(self, vm_ids: Sequence[str]) -> dict[str, VMState]:
        self._check("get_vm_states")
        self.batches.append(list(vm_ids))
        return {v: self.states[v] for v in vm_ids if v in self.states}

    def get_vm_configuration(self, vm_id: str) -> VMConfiguration:
        self._check("get_vm_configuration")
        return VMConfiguration(vm_id, 2, 2048, 20, "debian-12", ("net0",), (("tier", "web"),))

    def list_vms(self, node_id: str | None = None) -> list[str]:
        self._check("list_vms")
        return [v for v, s in self.states.items() if node_id is None or s.node_id == node_id]

    def get_vm_metrics(self, vm_id: str, time_range: TimeRange) -> VMMetrics:
        self._check("get_vm_metrics")
        return VMMetrics(vm_id, time_range, 12.5, 40.0, 100.0, 3.0, 60, time_range.end)


class Scheduler:
    """Node capacities measured at the clock's time; scores and placements computed."""

    def __init__(self, clock: Any, nodes: int = 4) -> None:
        self.clock = clock
        self.free = {f"n{i}": (16.0 - i, 65_536 - 4096 * i) for i in range(nodes)}
        self.calls: Counter[str] = Counter()
        self.fail = False

    def _check(self, op: str) -> None:
        self.calls[op] += 1
        if self.fail:
            raise Failure(f"{op} is down")

    def get_node_capacity(self, node_id: str) -> NodeCapacity:
        self._check("get_node_capacity")
        cpus, mem = self.free[node_id]
        return NodeCapacity(node_id, 16, cpus, 65_536, mem, 500, 0, self.clock())

    def score(self, spec: VMSpecification, capacity: NodeCapacity) -> AllocationScore:
        self._check("score")
        value = capacity.free_cpus / max(spec.vcpus, 1)
        return AllocationScore(capacity.node_id, spec.fingerprint, value, self.clock())

    def optimal_nodes(self, spec: VMSpecification, count: int) -> list[NodeRecommendation]:
        self._check("optimal_nodes")
        ranked = sorted(self.free, key=lambda n: -self.free[n][0])
        fitting = [n for n in ranked if self.free[n][0] >= spec.vcpus]
        return [NodeRecommendation(n, self.free[n][0], i) for i, n in enumerate(fitting[:count])]

    def list_nodes(self) -> list[str]:
        self._check("list_nodes")
        return list(self.free)


class Migrations:
    """The migration engine."""

    def __init__(self) -> None:
        self.states: dict[str, MigrationState] = {}
        self.progress: dict[str, MigrationProgress] = {}
        self.calls: Counter[str] = Counter()

    def add(self, mid: str, src: str = "n0", dst: str = "n1") -> None:
        self.states[mid] = MigrationState(mid, f"vm-{mid}", src, dst, "running", 1.0, 1.0)
        self.progress[mid] = MigrationProgress(mid, 10.0, 100, 1000, 50.0, 18.0, 1.0)

    def get_migration_state(self, mid: str) -> MigrationState:
        self.calls["get_migration_state"] += 1
        return self.states[mid]

    def get_migration_progress(self, mid: str) -> MigrationProgress:
        self.calls["get_migration_progress"] += 1
        return self.progress[mid]

    def list_migrations(self, node_id: str | None = None) -> list[str]:
        self.calls["list_migrations"] += 1
        return [
            m
            for m, s in self.states.items()
            if node_id is None or node_id in (s.source_node, s.target_node)
        ]
