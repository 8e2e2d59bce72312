"""The asyncio engine (the one source of both): the same behaviour over the asyncio
manager, on the embedded default and on a real redis-server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from manager._support import live, prefix
from novacache import LocalCache
from novacache.errors import ConfigurationError, MissingField
from novacache.invalidation import AsyncInvalidationEngine, InvalidationEngine, SmartRefresh
from novacache.manager import AsyncCacheManager, CacheManager
from novacache.tiers import AsyncPostgresTier, AsyncRedisTier, AsyncSQLiteTier
from tiers.redis_servers import Cluster, Standalone

Factory = Callable[[], Awaitable[AsyncCacheManager]]


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


@pytest.fixture(params=["sqlite", "redis", "postgres"])
def factory(request: pytest.FixtureRequest, tmp_path: Path) -> Factory:
    kind = request.param
    ns = prefix()
    table = f"inv_{uuid.uuid4().hex[:10]}"

    async def build() -> AsyncCacheManager:
        if kind == "sqlite":
            return AsyncCacheManager(
                local=LocalCache(1000), store=await AsyncSQLiteTier.open(tmp_path / "s.db")
            )
        if kind == "postgres":
            dsn = request.getfixturevalue("postgres_dsn")
            return AsyncCacheManager(
                local=LocalCache(1000), store=AsyncPostgresTier(dsn, table=table, timeout=5)
            )
        url = request.getfixturevalue("redis_standalone").url
        return AsyncCacheManager(local=LocalCache(1000), remote=AsyncRedisTier(url, prefix=ns))

    return build


def test_emit_patterns_tags_and_dependencies(factory: Factory) -> None:
    async def main() -> None:
        m = await factory()
        async with m:
            engine = AsyncInvalidationEngine(m, ttl_rules={"vm:": 300})
            engine.rule(
                "vm.migrated",
                keys=["vm:{vm_id}:state", "node:{src}"],
                patterns=["vm:{vm_id}:metrics:*"],
                tags=["vm:{vm_id}"],
            )
            await m.set("vm:1:state", "s")
            await m.set_many({"vm:1:metrics:cpu": 1, "vm:2:metrics:cpu": 2})
            await m.set("vm:1:cfg", "c", tags=["vm:1"])
            await m.set("node:a", "A")
            await m.set("report:1", "r")
            await engine.depends("report:1", on=["vm:1:metrics:cpu"])
            with pytest.raises(MissingField):
                await engine.emit("vm.migrated", vm_id=1)
            report = await engine.emit("vm.migrated", vm_id=1, src="a")
            gone = {"vm:1:state", "vm:1:metrics:cpu", "vm:1:cfg", "node:a", "report:1"}
            assert report.keys == gone
            assert report.ok, report.errors
            assert await m.get_many([*sorted(gone), "vm:2:metrics:cpu"]) == {"vm:2:metrics:cpu": 2}
            slot, tier = m._below[0]
            assert report.dropped[slot] == len(gone)
            left = await tier.ttl("vm:2:metrics:cpu")
            assert left is not None
            assert 290 < left <= 300  # the TTL rule
            assert engine.stats.counts["dependents"] == 1

    run(main())


def test_a_batch_flushes_on_size_interval_and_close(factory: Factory) -> None:
    async def main() -> None:
        m = await factory()
        async with m:
            engine = AsyncInvalidationEngine(m)
            await m.set_many({f"k:{i}": i for i in range(20)})
            batch = engine.batch(max_size=5, interval=0.02)
            for i in range(12):
                await batch.add([f"k:{i}"])
            assert len(batch) == 2
            for _ in range(250):  # the loop task flushes the rest
                if not len(batch):
                    break
                await asyncio.sleep(0.01)
            assert len(batch) == 0
            await batch.add(["k:19"])
            await batch.close()
            assert await m.get_many([f"k:{i}" for i in (*range(12), 19)]) == {}
            assert await m.get("k:15") == 15
            assert engine.stats.counts["backpressure"] == 2

    run(main())


def test_a_hot_key_is_reloaded_by_a_task(factory: Factory) -> None:
    async def main() -> None:
        m = await factory()
        async with m:
            engine = AsyncInvalidationEngine(m, smart=SmartRefresh(min_rate=0.2))
            engine.rule("vm.changed", keys=["vm:{vm_id}"])
            version = 1

            async def load() -> dict[str, int]:
                await asyncio.sleep(0.001)
                return {"version": version}

            assert m.local is not None
            for _ in range(5):
                m.local.pop("vm:1", None)
                await m.get_or_load("vm:1", load, ttl=60)
            version = 2
            report = await engine.emit("vm.changed", vm_id=1)
            assert report.refreshed == {"vm:1"}
            await engine.wait_refreshes()
            assert await m.get("vm:1") == {"version": 2}
            assert engine.stats.counts["refreshes"] == 1

    run(main())


def test_each_engine_serves_its_kind_of_manager(tmp_path: Path) -> None:
    async def main() -> None:
        m = await AsyncCacheManager.embedded(tmp_path / "a.db")
        async with m:
            with pytest.raises(ConfigurationError):
                InvalidationEngine(m)
            AsyncInvalidationEngine(m)

    run(main())
    with CacheManager.embedded(tmp_path / "s.db") as sync, pytest.raises(ConfigurationError):
        AsyncInvalidationEngine(sync)


def test_sync_and_async_managers_share_one_redis_index(redis_standalone: Standalone) -> None:
    from novacache.tiers import RedisTier

    ns = prefix()
    with CacheManager(
        local=LocalCache(100), remote=RedisTier(redis_standalone.url, prefix=ns)
    ) as s:
        InvalidationEngine(s).watch("vm:{vm_id}:*")
        s.set("vm:5:x", 1)

        async def main() -> None:
            remote = AsyncRedisTier(redis_standalone.url, prefix=ns)
            async with AsyncCacheManager(local=LocalCache(100), remote=remote) as m:
                engine = AsyncInvalidationEngine(m)
                engine.rule("e", patterns=["vm:{vm_id}:*"])
                report = await engine.emit("e", vm_id=5)
                assert report.keys == {"vm:5:x"}

        run(main())
        assert s.get("vm:5:x") is None or live(s.remote.get("vm:5:x")) is None  # type: ignore[union-attr]


def test_patterns_and_dependencies_on_a_cluster_asyncio(redis_cluster: Cluster) -> None:
    async def main() -> None:
        remote = AsyncRedisTier(redis_cluster.url, prefix=prefix())
        async with AsyncCacheManager(local=LocalCache(1000), remote=remote) as m:
            engine = AsyncInvalidationEngine(m)
            engine.rule("org.changed", patterns=["org:{org}:user:*"])
            await m.set_many({f"org:1:user:{i}": i for i in range(30)})  # many slots
            await m.set("summary", "s")
            await engine.depends("summary", on=["org:1:user:3"])
            report = await engine.emit("org.changed", org=1)
            assert report.ok, report.errors
            assert report.keys == {f"org:1:user:{i}" for i in range(30)} | {"summary"}
            assert await m.get_many([f"org:1:user:{i}" for i in range(30)]) == {}

    run(main())
