"""VMMetadataCache / AsyncVMMetadataCache on the embedded default, Redis and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from novacache import novacron
from novacache.errors import ConfigurationError, InvalidArgument, SourceError
from novacache.manager import CacheManager
from novacache.novacron import TimeRange, VMCacheConfig, VMState, VMStateChange

from ._env import Env, count_calls, maybe, redis_commands, run
from ._sources import Failure, VMs

CONFIG = VMCacheConfig(state_ttl=30, metrics_ttl=15, config_ttl=300, batch_size=50)


def test_reads_go_through_once_with_their_own_ttls(env: Env) -> None:
    async def body() -> None:
        m = await env.manager()
        src = VMs()
        cache = env.vm_cache(m, src, src, CONFIG)
        window = TimeRange(1000.0, 1600.0, 60.0)
        for _ in range(3):
            assert (await cache.get_state("vm1")) == src.states["vm1"]
            metrics = await cache.get_metrics("vm1", window)
            config = await cache.get_configuration("vm1")
        assert metrics.time_range == window
        assert config.vcpus == 2
        assert src.calls == {"get_vm_state": 1, "get_vm_metrics": 1, "get_vm_configuration": 1}
        k = novacron.KeyGenerator()
        for key, ttl in ((k.vm_state("vm1"), 30), (k.vm_metrics("vm1", window), 15),
                         (k.vm_config("vm1"), 300)):  # fmt: skip
            assert ttl - 2 < await maybe(m.store.ttl(key)) <= ttl
        assert cache.stats["reads"] == 9

    run(env, body)


def test_batch_get_one_round_trip_per_tier_and_one_source_call(env: Env) -> None:
    """40 VMs in L1, 30 only below L1 (in Redis and the store, or the store), 30 nowhere:
    one get_many per tier below L1 (one MGET on Redis, counted by the server), one source
    call for exactly the 30 misses."""

    async def body() -> None:
        m = await env.manager()
        src = VMs(n=100)
        cache = env.vm_cache(m, src, None, VMCacheConfig(batch_size=500))
        ids = [f"vm{i}" for i in range(100)]
        await cache.get_states(ids[:70])
        k = novacron.KeyGenerator()
        for vm_id in ids[40:70]:
            m.local.pop(k.vm_state(vm_id), None)
        src.batches.clear()
        below = [tier for tier in (m.remote, m.store) if tier is not None]
        counts = [count_calls(tier, "get_many") for tier in below]
        before = redis_commands(env.url) if env.url else {}
        found = await cache.get_states([*ids, "ghost"])
        assert found == {v: src.states[v] for v in ids}
        assert src.batches == [[*ids[70:], "ghost"]]  # one source call, the misses only
        assert [len(c) for c in counts] == [1] * len(below)
        if env.url:
            after = redis_commands(env.url)
            assert after.get("mget", 0) - before.get("mget", 0) == 1
            assert after.get("get", 0) == before.get("get", 0)
        assert cache.stats["source_missing"] == 1

    run(env, body)


def test_a_failing_source_raises_typed_and_caches_nothing(env: Env) -> None:
    async def body() -> None:
        m = await env.manager()
        src = VMs()
        cache = env.vm_cache(m, src, src, CONFIG)
        src.fail = True
        with pytest.raises(SourceError) as info:
            await cache.get_state("vm1")
        assert isinstance(info.value.__cause__, Failure)
        assert info.value.op == "get_vm_state"
        with pytest.raises(SourceError):
            await cache.get_states(["vm1", "vm2"])
        src.fail = False
        src.answer = {"not": "a VMState"}
        with pytest.raises(SourceError, match="dict"):
            await cache.get_state("vm1")
        src.answer = None
        assert await maybe(m.get(novacron.KeyGenerator().vm_state("vm1"))) is None
        assert (await cache.get_state("vm1")).vm_id == "vm1"  # loaded now
        calls = sum(src.calls.values())
        for bad in ("", "a:b", "vm*", "x" * 201, "a b", 7):
            with pytest.raises(InvalidArgument):
                await cache.get_state(bad)
        with pytest.raises(InvalidArgument):
            TimeRange(10.0, 5.0)
        assert sum(src.calls.values()) == calls  # nothing reached the source

    run(env, body)


def test_a_state_change_drops_state_and_metrics_and_prepopulates(env: Env) -> None:
    async def body() -> None:
        m = await env.manager()
        src = VMs()
        cache = env.vm_cache(m, src, src, CONFIG)
        w1, w2 = TimeRange(0.0, 60.0), TimeRange(60.0, 120.0)
        await cache.get_state("vm1")
        await cache.get_metrics("vm1", w1)
        await cache.get_metrics("vm1", w2)
        await cache.get_metrics("vm2", w1)
        new = VMState("vm1", "stopped", "n3", 2)
        report = await cache.on_state_change(VMStateChange("vm1", src.states["vm1"], new))
        k = novacron.KeyGenerator()
        assert report.keys == {k.vm_state("vm1"), k.vm_metrics("vm1", w1), k.vm_metrics("vm1", w2)}
        assert report.ok
        before = dict(src.calls)
        assert await cache.get_state("vm1") == new  # pre-populated, no source call
        await cache.get_metrics("vm1", w1)  # dropped: loaded again
        await cache.get_metrics("vm2", w1)  # another VM: still cached
        assert src.calls["get_vm_state"] == before["get_vm_state"]
        assert src.calls["get_vm_metrics"] == before["get_vm_metrics"] + 1

    run(env, body)


def test_sync_once_finds_changed_states(env: Env) -> None:
    async def body() -> None:
        m = await env.manager()
        src = VMs()
        cache = env.vm_cache(m, src, None, CONFIG)
        await cache.get_states(["vm1", "vm2", "vm3"])
        src.states["vm2"] = VMState("vm2", "paused", "n2", 2)
        assert await cache.sync_once() == 1
        assert (await cache.get_state("vm2")).status == "paused"
        assert cache.stats["sync_changes"] == 1

    run(env, body)


def test_warmup_by_node_and_cluster(env: Env) -> None:
    async def body() -> None:
        m = await env.manager()
        src = VMs(n=20, nodes=4)
        cache = env.vm_cache(m, src, None, CONFIG)
        seen: list[tuple[int, int]] = []
        result = await cache.warmup(
            "node", ["n1"], parameters={"batch_size": 2}, progress=lambda d, t: seen.append((d, t))
        )
        assert (result.loaded, result.skipped, result.failed) == (5, 0, 0)
        assert seen[-1] == (5, 5)
        assert len(seen) == 3
        again = await cache.warmup("cluster", ["ignored"])
        assert (again.loaded, again.skipped, again.failed) == (15, 5, 0)
        full = await cache.warmup("all", [])
        assert (full.loaded, full.skipped) == (20, 20)  # the configurations, then states
        for scope, targets, params in (("rack", [], None), ("node", [], None),
                                       ("node", "n1", None), ("node", ["a:b"], None),
                                       ("cluster", [], {"bogus": 1}),
                                       ("cluster", [], {"batch_size": 0})):  # fmt: skip
            with pytest.raises(InvalidArgument):
                await cache.warmup(scope, targets, parameters=params)
        src.fail = True
        with pytest.raises(SourceError):
            await cache.warmup("cluster", [])

    run(env, body)


def test_warmers_contract() -> None:
    import inspect

    from novacache.novacron.warmup import ASYNC_WARMERS, WARMERS, WarmupResult

    assert set(WARMERS) == set(ASYNC_WARMERS) == {
        "vm_metadata", "resource_allocation", "migration_state",
    }  # fmt: skip
    for name, cls in WARMERS.items():
        params = list(inspect.signature(cls.warmup).parameters)
        assert params == ["self", "scope", "targets", "parameters", "progress"], name
        assert not inspect.iscoroutinefunction(cls.warmup)
        assert inspect.iscoroutinefunction(ASYNC_WARMERS[name].warmup)
    result = WarmupResult(1, 2, 3, 0.5)
    with pytest.raises(AttributeError):
        result.loaded = 5  # type: ignore[misc]


def test_the_models_round_trip_through_msgpack_without_pickle(tmp_path: Any) -> None:
    codec = novacron.codec()  # no pickle_key: it cannot read or write a pickle frame
    window = TimeRange(1.0, 2.0)
    state = VMState("vm1", "running", "n1", 3, 1.5)
    samples = [state, window, VMStateChange("vm1", None, state, 2.0),
               novacron.VMMetrics("vm1", window, 1.0, 2.0),
               novacron.MigrationUpdate("progress", "m1", "1-0",
                                        progress=novacron.MigrationProgress("m1", 5, 1, 2)),
               (novacron.NodeRecommendation("n1", 0.5, 0),)]  # fmt: skip
    for value in samples:
        frame = codec.encode("k", value)
        assert codec.decode("k", frame) == value
    with pytest.raises(ConfigurationError, match=r"novacron\.codec"):
        novacron.VMMetadataCache(CacheManager.embedded(tmp_path / "x.db"), VMs())


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_tier_that_fails_degrades_to_the_source(kind: str) -> None:
    """A Redis tier with no server behind it: reads come from the source, the manager
    counts the tier's failures, the caller never sees them."""
    from novacache import LocalCache
    from novacache.manager import AsyncCacheManager
    from novacache.tiers import AsyncRedisTier, RedisTier
    from tiers.redis_servers import free_port

    env = Env(kind, "embedded", Path("."), None, None)
    url = f"redis://127.0.0.1:{free_port()}/0"

    async def body() -> None:
        tier_cls, manager_cls = (
            (AsyncRedisTier, AsyncCacheManager) if env.is_async else (RedisTier, CacheManager)
        )
        m = manager_cls(
            local=LocalCache(100), remote=tier_cls(url, timeout=0.05, retries=0),
            codec=novacron.codec(), on_write_error="report",
        )  # fmt: skip
        env.managers.append(m)
        src = VMs()
        cache = env.vm_cache(m, src, None, CONFIG)
        assert await cache.get_state("vm1") == src.states["vm1"]
        found = await cache.get_states(["vm2", "vm3"])
        assert found == {v: src.states[v] for v in ("vm2", "vm3")}
        assert m.stats.get("remote", "read_errors") >= 2
        assert m.stats.write_errors >= 1
        assert getattr(cache, "_target", cache).stats["write_errors"] >= 1

    run(env, body)


def test_caches_in_two_namespaces_on_one_manager_each_get_their_rules(env: Env) -> None:
    async def body() -> None:
        m = await env.manager()
        src = VMs()
        keys_a, keys_b = novacron.KeyGenerator("tenanta"), novacron.KeyGenerator("tenantb")
        a = env.vm_cache(m, src, src, CONFIG, keys=keys_a)
        b = env.vm_cache(m, src, src, CONFIG, keys=keys_b)
        window = TimeRange(0.0, 60.0)
        await a.get_metrics("vm1", window)
        await b.get_metrics("vm1", window)
        report = await b.on_state_change(VMStateChange("vm1"))
        assert report.keys == {keys_b.vm_metrics("vm1", window), keys_b.vm_state("vm1")}
        assert await maybe(m.get(keys_b.vm_metrics("vm1", window))) is None
        assert await maybe(m.get(keys_a.vm_metrics("vm1", window))) is not None
        report = await a.on_state_change(VMStateChange("vm1"))
        assert report.keys == {keys_a.vm_metrics("vm1", window), keys_a.vm_state("vm1")}

    run(env, body)


def _eventually(check: Any, timeout: float = 10.0) -> Any:
    """Poll the async ``check()`` until it is truthy (bounded; not a timing assertion)."""
    import asyncio
    import time

    async def wait() -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = await check()
            if value:
                return value
            await asyncio.sleep(0.02)
        raise AssertionError("the condition never held")

    return wait()


def test_a_stale_write_back_after_a_change_is_replaced_when_it_settles(env: Env) -> None:
    """A read that loaded the old state before a change and wrote it after the change's
    own write (another process, say) would keep the old state for state_ttl; the settle
    write replaces it. A newer change in the meantime is never overwritten."""

    async def body() -> None:
        m = await env.manager()
        src = VMs()
        cache = env.vm_cache(m, src, None, VMCacheConfig(state_ttl=300, settle=0.2))
        key = novacron.KeyGenerator().vm_state("vm1")
        old = VMState("vm1", "running", "n1", 1)
        new = VMState("vm1", "stopped", "n1", 2)
        await cache.on_state_change(VMStateChange("vm1", old, new))
        await maybe(m.set(key, old))  # the racing loader's late write-back
        assert await cache.get_state("vm1") == old
        assert await _eventually(lambda: _is(cache.get_state("vm1"), new))
        newer = VMState("vm1", "paused", "n1", 3)
        await cache.on_state_change(VMStateChange("vm1", old, new))
        await cache.on_state_change(VMStateChange("vm1", new, newer))
        assert await _eventually(lambda: _settled(cache))
        assert await cache.get_state("vm1") == newer
        await cache.close()

    run(env, body)


async def _is(pending: Any, expected: Any) -> bool:
    return bool(await pending == expected)


async def _settled(cache: Any) -> bool:
    inner = getattr(cache, "_target", cache)
    return not inner._changes


def test_real_time_sync_runs_on_its_own(env: Env) -> None:
    async def body() -> None:
        m = await env.manager()
        src = VMs()
        config = VMCacheConfig(enable_real_time_sync=True, sync_interval=0.05)
        cache = env.vm_cache(m, src, None, config)
        await cache.get_state("vm3")
        src.states["vm3"] = VMState("vm3", "stopped", "n0", 9)

        async def synced() -> bool:
            return bool((await cache.get_state("vm3")).generation == 9)

        assert await _eventually(synced)
        await cache.close()

    run(env, body)
