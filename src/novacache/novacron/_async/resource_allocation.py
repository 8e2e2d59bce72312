"""AsyncResourceAllocationCache (2.2): node capacities with a freshness bound, allocation
scores, optimal nodes revalidated before they are served, predictive pre-caching.

The one hand-written source of ``../_sync/resource_allocation.py`` (``scripts/unasync.py``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..._concurrency import AsyncWorker
from ...errors import ConfigurationError, SourceError
from ...invalidation import EmitReport
from ...manager import AsyncCacheManager
from .._warmkit import Scope, WarmupResult, check_request
from ..config import ResourceCacheConfig
from ..keys import KeyGenerator, check_id
from ..models import AllocationScore, NodeCapacity, NodeRecommendation, VMSpecification
from ..predictive import AccessTracker
from ..sources import SchedulerSource
from .base import AsyncDomainCache

__all__ = ["CAPACITY_CHANGED", "AsyncResourceAllocationCache", "ResourceCacheConfig"]

#: The invalidation event of a node whose capacity changed (field ``node_id``), after
#: the namespace (``cache.event(CAPACITY_CHANGED)``).
CAPACITY_CHANGED = "node.capacity_changed"


class AsyncResourceAllocationCache(AsyncDomainCache):
    """Capacities, scores and placements of the scheduler through a manager.

    :param manager: an :class:`~novacache.manager.AsyncCacheManager` whose codec knows
        the models (``codec=novacache.novacron.codec()``).
    :param scheduler: the :class:`~novacache.novacron.sources.SchedulerSource`.
    :param config: a :class:`ResourceCacheConfig`.
    :param clock: the wall clock the capacities' ``last_updated`` is compared with
        (default: the manager's).
    """

    source_name = "scheduler"

    def __init__(
        self,
        manager: AsyncCacheManager,
        scheduler: SchedulerSource,
        config: ResourceCacheConfig | None = None,
        *,
        keys: KeyGenerator | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(manager, keys)
        self.scheduler = scheduler
        self.config = config if config is not None else ResourceCacheConfig()
        if not isinstance(self.config, ResourceCacheConfig):
            raise ConfigurationError("config is a ResourceCacheConfig")
        self.clock = clock if clock is not None else manager.clock
        self.tracker = AccessTracker(self.config.max_tracked, self.config.half_life)
        k = self.keys
        self._rule(
            CAPACITY_CHANGED,
            keys=[k.template("node_capacity")],
            patterns=[k.template("node_scores")],
        )
        self._worker: AsyncWorker | None = None

    # -- capacities -------------------------------------------------------------------

    async def get_node_capacity(self, node_id: str) -> NodeCapacity:
        """The capacity of ``node_id``: the cached one while it is younger than
        ``capacity_freshness`` (by its ``last_updated``), else the scheduler's."""
        key = self.keys.node_capacity(node_id)
        self.tracker.record("capacity", node_id)
        capacity = await self._read_through(
            key, NodeCapacity, "get_node_capacity", lambda: self._fetch_capacity(node_id),
            self.config.capacity_ttl,
        )  # fmt: skip
        if self._fresh(capacity):
            return capacity
        self.stats.add("stale_refetches")
        capacity = await self._fetch_capacity(node_id)
        await self._write(key, capacity, self.config.capacity_ttl)
        return capacity

    def _fresh(self, capacity: NodeCapacity, fraction: float = 1.0) -> bool:
        age = self.clock() - capacity.last_updated
        return math.isfinite(age) and age < self.config.capacity_freshness * fraction

    async def _fetch_capacity(self, node_id: str) -> NodeCapacity:
        value = await self._call("get_node_capacity", self.scheduler.get_node_capacity, node_id)
        return self._expect("get_node_capacity", value, NodeCapacity, node_id)

    async def on_capacity_change(
        self, node_id: str, capacity: NodeCapacity | None = None
    ) -> EmitReport:
        """Invalidate the node's capacity and every score of it (through the engine's
        index), then cache ``capacity`` when given."""
        node_id = check_id("node_id", node_id)
        report = await self._emit(CAPACITY_CHANGED, node_id=node_id)
        if capacity is not None:
            await self._write(self.keys.node_capacity(node_id), capacity, self.config.capacity_ttl)
        return report

    # -- scores -----------------------------------------------------------------------

    async def get_allocation_score(self, spec: VMSpecification, node_id: str) -> AllocationScore:
        """The score of ``node_id`` for ``spec`` (cached ``score_ttl``), computed by the
        scheduler from the node's capacity."""
        key = self.keys.allocation_score(spec, node_id)
        self.tracker.record("score", spec, node_id)

        async def load() -> AllocationScore:
            capacity = await self.get_node_capacity(node_id)
            return await self._call("score", self.scheduler.score, spec, capacity)  # type: ignore[no-any-return]

        return await self._read_through(key, AllocationScore, "score", load, self.config.score_ttl)

    # -- placements -------------------------------------------------------------------

    async def get_optimal_nodes(
        self, spec: VMSpecification, count: int
    ) -> tuple[NodeRecommendation, ...]:
        """The ``count`` best nodes for ``spec``, best first. A cached answer is served
        only while every node in it still fits ``spec`` by its current capacity (fresh
        per ``capacity_freshness``); otherwise the scheduler is asked again."""
        key = self.keys.optimal_nodes(spec, count)
        cached = await self.manager.get(key)
        if isinstance(cached, tuple) and all(isinstance(r, NodeRecommendation) for r in cached):
            if await self._still_valid(spec, cached):
                self.stats.add("recommendations_revalidated")
                self.stats.add("reads")
                return cached
            self.stats.add("recommendations_rejected")
        elif cached is not None:
            self.stats.add("wrong_type")
        found = await self._call("optimal_nodes", self.scheduler.optimal_nodes, spec, count)
        if isinstance(found, (str, bytes)) or not isinstance(found, Sequence):
            self.stats.add("source_errors")
            raise SourceError(self.source_name, "optimal_nodes", "did not answer a list")
        recommendations = tuple(
            self._expect("optimal_nodes", r, NodeRecommendation, key) for r in found
        )
        await self._write(key, recommendations, self.config.allocation_ttl)
        self.stats.add("reads")
        return recommendations

    async def _still_valid(
        self, spec: VMSpecification, recommendations: tuple[NodeRecommendation, ...]
    ) -> bool:
        capacities = [await self.get_node_capacity(r.node_id) for r in recommendations]
        return all(spec.fits(capacity) for capacity in capacities)

    # -- predictive pre-caching -------------------------------------------------------

    async def precache_once(self) -> WarmupResult:
        """One cycle: load the resources the tracker predicts (probability above
        ``precache_threshold`` within ``precache_interval``), most probable first, at
        most ``precache_budget`` loads (what is still fresh is skipped): a capacity is
        loaded when missing or past half its freshness bound, a score when missing."""
        start = time.perf_counter()
        c = self.config
        loaded = skipped = failed = 0
        patterns = self.tracker.patterns(c.precache_interval, c.precache_threshold)
        for pattern in patterns:
            if loaded + failed >= c.precache_budget:
                break
            try:
                if pattern.kind == "capacity":
                    (node_id,) = pattern.args
                    key = self.keys.node_capacity(node_id)
                    cached = await self.manager.get(key)
                    if isinstance(cached, NodeCapacity) and self._fresh(cached, 0.5):
                        skipped += 1
                        continue
                    await self._write(key, await self._fetch_capacity(node_id), c.capacity_ttl)
                else:
                    spec, node_id = pattern.args
                    key = self.keys.allocation_score(spec, node_id)
                    if isinstance(await self.manager.get(key), AllocationScore):
                        skipped += 1
                        continue
                    capacity = await self.get_node_capacity(node_id)
                    score = await self._call("score", self.scheduler.score, spec, capacity)
                    score = self._expect("score", score, AllocationScore, key)
                    await self._write(key, score, c.score_ttl)
                loaded += 1
            except SourceError:
                failed += 1
        self.stats.add("precache_loaded", loaded)
        self.stats.add("precache_skipped", skipped)
        self.stats.add("precache_failed", failed)
        return WarmupResult(loaded, skipped, failed, time.perf_counter() - start)

    def start_predictive(self) -> None:
        """Start the pre-caching loop (asyncio: a task of the running loop)."""
        if self._worker is not None:
            return
        self._worker = AsyncWorker(self._predictive_loop, "novacron-precache")
        self._worker.start()

    async def _predictive_loop(self) -> None:
        worker = self._worker
        assert worker is not None
        while worker.running:
            await worker.pause(self.config.precache_interval)
            if not worker.running:
                break
            await self.precache_once()

    async def close(self) -> None:
        """Stop the pre-caching loop (the manager is the caller's to close)."""
        worker, self._worker = self._worker, None
        if worker is not None:
            await worker.stop()

    # -- warm-up ----------------------------------------------------------------------

    async def warmup(
        self,
        scope: Scope,
        targets: Sequence[str],
        *,
        parameters: Mapping[str, Any] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> WarmupResult:
        """Load the capacities of ``targets`` (scope ``"node"``) or of every node
        (``"cluster"``); ``"all"`` also runs one predictive cycle. Parameter ``force``:
        reload capacities that are cached and fresh."""
        start = time.perf_counter()
        scope_, nodes, params = check_request(scope, targets, parameters, {"force": bool})
        if scope_ == "node":
            ids = list(nodes)
        else:
            ids = list(
                dict.fromkeys(
                    check_id("node_id", n)
                    for n in await self._list("list_nodes", self.scheduler.list_nodes)
                )
            )
        force = bool(params.get("force", False))
        loaded = skipped = failed = 0
        for done, node_id in enumerate(ids, 1):
            key = self.keys.node_capacity(node_id)
            cached = None if force else await self.manager.get(key)
            if isinstance(cached, NodeCapacity) and self._fresh(cached):
                skipped += 1
            else:
                try:
                    capacity = await self._fetch_capacity(node_id)
                except SourceError:
                    failed += 1
                else:
                    await self._write(key, capacity, self.config.capacity_ttl)
                    loaded += 1
            if progress is not None:
                progress(done, len(ids))
        if scope_ == "all":
            extra = await self.precache_once()
            loaded += extra.loaded
            skipped += extra.skipped
            failed += extra.failed
        return WarmupResult(loaded, skipped, failed, time.perf_counter() - start)
