"""The sources of truth the domain caches read through: protocols the user implements.

The synchronous caches call these methods directly; the asyncio caches await them when
they return an awaitable (a coroutine function), and take a plain return value as it is
(such a method must not block the event loop). A method that raises, or returns
something other than the model it promises, makes the cache raise
:class:`~novacache.errors.SourceError` and cache nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from .models import (
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

__all__ = ["MigrationSource", "MonitorSource", "SchedulerSource", "VMSource"]


@runtime_checkable
class VMSource(Protocol):
    """The VM manager: states and configurations of VMs."""

    def get_vm_state(self, vm_id: str) -> VMState | Any: ...

    def get_vm_states(self, vm_ids: Sequence[str]) -> dict[str, VMState] | Any:
        """The states of the VMs it knows among ``vm_ids`` (unknown ones left out)."""
        ...

    def get_vm_configuration(self, vm_id: str) -> VMConfiguration | Any: ...

    def list_vms(self, node_id: str | None = None) -> Sequence[str] | Any:
        """The ids of the VMs on ``node_id`` (``None``: every VM): for warm-up."""
        ...


@runtime_checkable
class MonitorSource(Protocol):
    """The monitoring system: metrics of a VM over a time range."""

    def get_vm_metrics(self, vm_id: str, time_range: TimeRange) -> VMMetrics | Any: ...


@runtime_checkable
class SchedulerSource(Protocol):
    """The scheduler: node capacities, allocation scores and placements."""

    def get_node_capacity(self, node_id: str) -> NodeCapacity | Any: ...

    def score(self, spec: VMSpecification, capacity: NodeCapacity) -> AllocationScore | Any:
        """How well the node of ``capacity`` suits ``spec``."""
        ...

    def optimal_nodes(
        self, spec: VMSpecification, count: int
    ) -> Sequence[NodeRecommendation] | Any:
        """The ``count`` best nodes for ``spec``, best first."""
        ...

    def list_nodes(self) -> Sequence[str] | Any:
        """The ids of every node: for warm-up."""
        ...


@runtime_checkable
class MigrationSource(Protocol):
    """The migration engine: state and progress of migrations."""

    def get_migration_state(self, migration_id: str) -> MigrationState | Any: ...

    def get_migration_progress(self, migration_id: str) -> MigrationProgress | Any: ...

    def list_migrations(self, node_id: str | None = None) -> Sequence[str] | Any:
        """The ids of the migrations in flight from or to ``node_id`` (``None``: all):
        for warm-up."""
        ...
