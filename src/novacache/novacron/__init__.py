"""The NovaCron domain caches on the multi-tier manager (``docs/novacron.md``).

- :class:`VMMetadataCache` / :class:`AsyncVMMetadataCache`: VM states (batch gets),
  metrics by time range, configurations, state-change events, optional real-time sync.
- :class:`ResourceAllocationCache` / :class:`AsyncResourceAllocationCache`: node
  capacities with a freshness bound, allocation scores, revalidated optimal nodes,
  predictive pre-caching (:class:`AccessTracker`).
- :class:`MigrationStateCache` / :class:`AsyncMigrationStateCache`: migration state and
  progress, durable checkpoints read in order, events, ``stream_updates``.
- the models (:mod:`.models`), the sources the user implements (:mod:`.sources`), the
  key generator (:class:`KeyGenerator`, ``novacron:v1:...``), warm-up (:mod:`.warmup`).

Build the manager with :func:`codec` (the models round-trip through msgpack, never
pickle), e.g. ``CacheManager.embedded(path, codec=novacron.codec())``.
"""

from __future__ import annotations

from ._async.base import DomainStats
from ._async.migration_state import AsyncMigrationStateCache, MigrationCacheConfig
from ._async.resource_allocation import AsyncResourceAllocationCache, ResourceCacheConfig
from ._async.vm_metadata import AsyncVMMetadataCache, VMCacheConfig
from ._sync.migration_state import MigrationStateCache
from ._sync.resource_allocation import ResourceAllocationCache
from ._sync.vm_metadata import VMMetadataCache
from .keys import KeyGenerator
from .models import (
    MIGRATION_EVENTS,
    MODELS,
    AllocationScore,
    MigrationCheckpoint,
    MigrationEvent,
    MigrationProgress,
    MigrationState,
    MigrationUpdate,
    NodeCapacity,
    NodeRecommendation,
    TimeRange,
    VMConfiguration,
    VMMetrics,
    VMSpecification,
    VMState,
    VMStateChange,
    codec,
)
from .predictive import AccessPattern, AccessTracker
from .sources import MigrationSource, MonitorSource, SchedulerSource, VMSource
from .warmup import ASYNC_WARMERS, WARMERS, WarmupResult

__all__ = [
    "ASYNC_WARMERS",
    "MIGRATION_EVENTS",
    "MODELS",
    "WARMERS",
    "AccessPattern",
    "AccessTracker",
    "AllocationScore",
    "AsyncMigrationStateCache",
    "AsyncResourceAllocationCache",
    "AsyncVMMetadataCache",
    "DomainStats",
    "KeyGenerator",
    "MigrationCacheConfig",
    "MigrationCheckpoint",
    "MigrationEvent",
    "MigrationProgress",
    "MigrationSource",
    "MigrationState",
    "MigrationStateCache",
    "MigrationUpdate",
    "MonitorSource",
    "NodeCapacity",
    "NodeRecommendation",
    "ResourceAllocationCache",
    "ResourceCacheConfig",
    "SchedulerSource",
    "TimeRange",
    "VMCacheConfig",
    "VMConfiguration",
    "VMMetadataCache",
    "VMMetrics",
    "VMSource",
    "VMSpecification",
    "VMState",
    "VMStateChange",
    "WarmupResult",
    "codec",
]
