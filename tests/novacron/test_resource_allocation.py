"""ResourceAllocationCache / AsyncResourceAllocationCache on the embedded default, Redis
and PostgreSQL, and the access-pattern tracker."""

from __future__ import annotations

import pytest

from manager._support import Clock
from novacache.errors import ConfigurationError, InvalidArgument, SourceError
from novacache.novacron import (
    AccessTracker,
    KeyGenerator,
    NodeCapacity,
    ResourceCacheConfig,
    VMSpecification,
)

from ._env import Env, maybe, run
from ._sources import Scheduler

SPEC = VMSpecification(vcpus=4, memory_mb=8192, disk_gb=40)
CONFIG = ResourceCacheConfig(capacity_ttl=600, capacity_freshness=60, score_ttl=300)


def test_a_capacity_past_its_freshness_bound_is_fetched_again(env: Env) -> None:
    async def body() -> None:
        clock = Clock()
        m = await env.manager(clock=clock)
        sched = Scheduler(clock)
        cache = env.resource_cache(m, sched, CONFIG)
        first = await cache.get_node_capacity("n1")
        clock.tick(30)
        assert await cache.get_node_capacity("n1") == first  # cached, 30 s old
        assert sched.calls["get_node_capacity"] == 1
        clock.tick(31)  # 61 s old: still cached (TTL 600) but past the bound
        fresh = await cache.get_node_capacity("n1")
        assert fresh.last_updated == clock.now
        assert sched.calls["get_node_capacity"] == 2
        assert cache.stats["stale_refetches"] == 1
        assert await cache.get_node_capacity("n1") == fresh  # the new one was cached
        assert sched.calls["get_node_capacity"] == 2

    run(env, body)


def test_scores_are_cached_and_a_capacity_change_drops_the_nodes_scores(env: Env) -> None:
    async def body() -> None:
        clock = Clock()
        m = await env.manager(clock=clock)
        sched = Scheduler(clock)
        cache = env.resource_cache(m, sched, CONFIG)
        other = VMSpecification(vcpus=2, memory_mb=1024)
        for _ in range(2):
            await cache.get_allocation_score(SPEC, "n1")
            await cache.get_allocation_score(other, "n1")
            await cache.get_allocation_score(SPEC, "n2")
        assert sched.calls["score"] == 3
        sched.free["n1"] = (1.0, 1024)
        report = await cache.on_capacity_change("n1")
        k = KeyGenerator()
        assert report.keys == {
            k.node_capacity("n1"),
            k.allocation_score(SPEC, "n1"),
            k.allocation_score(other, "n1"),
        }
        score = await cache.get_allocation_score(SPEC, "n1")
        assert score.score == 1.0 / 4
        await cache.get_allocation_score(SPEC, "n2")
        assert sched.calls["score"] == 4  # n2's score stayed cached

    run(env, body)


def test_optimal_nodes_are_revalidated_against_current_capacities(env: Env) -> None:
    async def body() -> None:
        clock = Clock()
        m = await env.manager(clock=clock)
        sched = Scheduler(clock)
        cache = env.resource_cache(m, sched, CONFIG)
        best = await cache.get_optimal_nodes(SPEC, 2)
        assert [r.node_id for r in best] == ["n0", "n1"]
        assert await cache.get_optimal_nodes(SPEC, 2) == best
        assert sched.calls["optimal_nodes"] == 1
        assert cache.stats["recommendations_revalidated"] == 1
        # n0 fills up: the cached answer no longer fits, it is computed again
        sched.free["n0"] = (2.0, 1024)
        await cache.on_capacity_change("n0", await maybe(sched.get_node_capacity("n0")))
        again = await cache.get_optimal_nodes(SPEC, 2)
        assert [r.node_id for r in again] == ["n1", "n2"]
        assert sched.calls["optimal_nodes"] == 2
        assert cache.stats["recommendations_rejected"] == 1
        with pytest.raises(InvalidArgument):
            await cache.get_optimal_nodes(SPEC, 0)
        with pytest.raises(InvalidArgument):
            await cache.get_optimal_nodes("4 cpus", 1)

    run(env, body)


def test_predictive_precaching_loads_what_is_likely_within_its_budget(env: Env) -> None:
    async def body() -> None:
        clock = Clock()
        m = await env.manager(clock=clock)
        sched = Scheduler(clock, nodes=6)
        config = ResourceCacheConfig(
            capacity_ttl=600, capacity_freshness=10, precache_threshold=0.5,
            precache_interval=5, precache_budget=2, half_life=30,
        )  # fmt: skip
        cache = env.resource_cache(m, sched, config)
        for _ in range(20):  # n0, n1, n2 are read all the time; n5 once
            for node in ("n0", "n1", "n2"):
                await cache.get_node_capacity(node)
        await cache.get_node_capacity("n5")
        predicted = cache.tracker.patterns(5, 0.5)
        assert {p.args for p in predicted} == {("n0",), ("n1",), ("n2",)}
        clock.tick(8)  # the capacities are past half their freshness bound
        before = sched.calls["get_node_capacity"]
        result = await cache.precache_once()
        assert (result.loaded, result.failed) == (2, 0)  # the budget
        assert sched.calls["get_node_capacity"] == before + 2
        result = await cache.precache_once()
        assert (result.loaded, result.skipped) == (1, 2)
        clock.tick(3)  # 11 s: without pre-caching these reads would go to the source
        before = sched.calls["get_node_capacity"]
        for node in ("n0", "n1", "n2"):
            await cache.get_node_capacity(node)
        assert sched.calls["get_node_capacity"] == before
        sched.fail = True
        clock.tick(20)
        assert (await cache.precache_once()).failed == 2
        with pytest.raises(SourceError):
            await cache.get_node_capacity("n4")

    run(env, body)


def test_warmup_loads_capacities(env: Env) -> None:
    async def body() -> None:
        clock = Clock()
        m = await env.manager(clock=clock)
        sched = Scheduler(clock, nodes=5)
        cache = env.resource_cache(m, sched, CONFIG)
        seen: list[tuple[int, int]] = []
        result = await cache.warmup("node", ["n1", "n2"], progress=lambda d, t: seen.append((d, t)))
        assert (result.loaded, result.skipped, result.failed) == (2, 0, 0)
        assert seen == [(1, 2), (2, 2)]
        result = await cache.warmup("cluster", [])
        assert (result.loaded, result.skipped) == (3, 2)
        result = await cache.warmup("all", [], parameters={"force": True})
        assert result.loaded >= 5
        with pytest.raises(InvalidArgument):
            await cache.warmup("node", ["n1"], parameters={"force": "yes"})

    run(env, body)


def test_the_tracker_is_bounded_and_ranks_by_probability() -> None:
    clock = Clock()
    tracker = AccessTracker(max_tracked=8, half_life=10, clock=clock)
    for i in range(100):
        tracker.record("capacity", f"n{i}")
        tracker.record("capacity", "hot")
    assert len(tracker) <= 8
    assert tracker.evicted >= 92
    top = tracker.patterns(interval=1.0)
    assert top[0].args == ("hot",)
    assert all(0 < p.probability < 1 for p in top)
    clock.tick(1000)  # everything decays away
    assert tracker.patterns(interval=1.0, threshold=0.01) == []
    with pytest.raises(ConfigurationError):
        AccessTracker(max_tracked=0)
    with pytest.raises(ConfigurationError):
        ResourceCacheConfig(precache_threshold=1.5)


def test_a_capacity_of_the_wrong_type_is_a_source_error(env: Env) -> None:
    async def body() -> None:
        clock = Clock()
        m = await env.manager(clock=clock)
        sched = Scheduler(clock)
        sched.get_node_capacity = lambda node_id: {"node": node_id}  # type: ignore[method-assign]
        cache = env.resource_cache(m, sched, CONFIG)
        with pytest.raises(SourceError):
            await cache.get_node_capacity("n1")
        assert await maybe(m.get(KeyGenerator().node_capacity("n1"))) is None
        assert NodeCapacity  # the model named in the message

    run(env, body)
