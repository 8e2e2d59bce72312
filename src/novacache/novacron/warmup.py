"""Warm-up of the domain caches: the contract the HTTP API (``POST /api/cache/warmup``)
builds on.

:data:`WARMERS` maps a cache name (``"vm_metadata"``, ``"resource_allocation"``,
``"migration_state"``) to the synchronous cache class, :data:`ASYNC_WARMERS` to the
asyncio one. Each has::

    warmup(scope, targets, *, parameters=None, progress=None) -> WarmupResult

(awaited on the asyncio classes). ``scope`` is ``"node"`` (``targets`` are node ids),
``"cluster"`` or ``"all"`` (``targets`` ignored). ``progress(done, total)`` is called as
entries are handled. A bad scope, target or parameter raises
:class:`~novacache.errors.InvalidArgument` before anything is loaded; a source that
fails for some entries counts them in ``failed`` (the others are loaded); a source that
cannot even list what to load raises :class:`~novacache.errors.SourceError`.
"""

from __future__ import annotations

from ._async.migration_state import AsyncMigrationStateCache
from ._async.resource_allocation import AsyncResourceAllocationCache
from ._async.vm_metadata import AsyncVMMetadataCache
from ._sync.migration_state import MigrationStateCache
from ._sync.resource_allocation import ResourceAllocationCache
from ._sync.vm_metadata import VMMetadataCache
from ._warmkit import SCOPES, Scope, WarmupResult, check_request

__all__ = ["ASYNC_WARMERS", "SCOPES", "WARMERS", "Scope", "WarmupResult", "check_request"]

#: The synchronous warmers, by the name the HTTP API uses.
WARMERS: dict[str, type] = {
    "vm_metadata": VMMetadataCache,
    "resource_allocation": ResourceAllocationCache,
    "migration_state": MigrationStateCache,
}

#: The asyncio warmers (``await cache.warmup(...)``), by the same names.
ASYNC_WARMERS: dict[str, type] = {
    "vm_metadata": AsyncVMMetadataCache,
    "resource_allocation": AsyncResourceAllocationCache,
    "migration_state": AsyncMigrationStateCache,
}
