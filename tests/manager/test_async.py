"""AsyncCacheManager: the same behaviour as the sync manager, on the asyncio tiers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

import novacache
from novacache import LocalCache
from novacache.breaker import CircuitBreaker
from novacache.errors import PartialWrite, ReentrantLoad
from novacache.manager import AsyncCacheManager
from novacache.tiers import AsyncPostgresTier, AsyncRedisTier, AsyncSQLiteTier
from tiers.redis_servers import Standalone, free_port

from ._support import Clock, prefix

T = TypeVar("T")


def run(main: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(asyncio.wait_for(main(), 30))  # type: ignore[arg-type]


def test_exported() -> None:
    assert novacache.AsyncCacheManager is AsyncCacheManager


def test_read_path_and_promotion_with_the_remaining_ttl(tmp_path: Path) -> None:
    clock = Clock()

    async def main() -> None:
        store = AsyncSQLiteTier(tmp_path / "s.db", clock=clock)
        local = LocalCache(100, timer=clock)
        async with AsyncCacheManager(local=local, store=store, clock=clock) as m:
            value = {"vm": 1}
            assert (await m.set("k", value, ttl=10)).written == ("store", "local")
            assert await m.get("k") is value
            clock.tick(4)
            local.clear()
            assert await m.get("k") == value
            assert m.stats.get("store", "hits") == 1
            clock.tick(5.9)
            assert "k" in local
            clock.tick(0.2)
            assert "k" not in local
            assert await m.get("k", "gone") == "gone"
            await store.set("bad", b"garbage")
            assert await m.get("bad") is None
            assert m.stats.get("store", "corrupt") == 1

    run(main)


def test_bulk_and_deletes_with_redis_and_sqlite(
    redis_standalone: Standalone, tmp_path: Path
) -> None:
    async def main() -> None:
        remote = AsyncRedisTier(redis_standalone.url, prefix=prefix())
        store = AsyncSQLiteTier(tmp_path / "s.db")
        local = LocalCache(1000)
        async with AsyncCacheManager(local=local, remote=remote, store=store) as m:
            items = {f"vm:{i}": [i, "x" * i] for i in range(50)}
            await m.set_many(items, ttl=60)
            local.clear()
            assert await m.get_many(items) == items
            assert m.stats.get("remote", "hits") == 50
            local.clear()
            await remote.clear()
            assert await m.get_many([*items, "absent"]) == items
            assert m.stats.get("store", "hits") == 50
            assert await remote.get("vm:3") is not None  # promoted to L2
            assert await m.delete("vm:0") is True
            assert await m.delete_many(list(items)) == 49
            assert await m.get_many(items) == {}
            await m.set("k", 1)
            await m.clear()
            assert await m.get("k") is None

    run(main)


def test_with_redis_down_get_never_raises(tmp_path: Path) -> None:
    async def main() -> None:
        remote = AsyncRedisTier(
            f"redis://127.0.0.1:{free_port()}/0",
            breaker=CircuitBreaker(threshold=1, cooldown=60),
            timeout=0.2,
            retries=0,
        )
        local = LocalCache(100)
        store = AsyncSQLiteTier(tmp_path / "s.db")
        async with AsyncCacheManager(local=local, remote=remote, store=store) as m:
            with pytest.raises(PartialWrite) as info:
                await m.set("k", "v")
            assert set(info.value.failed) == {"remote"}
            local.clear()
            assert await m.get("k") == "v"
            local.clear()
            assert await m.get_many(["k"]) == {"k": "v"}

            async def load() -> int:
                return 42

            assert await m.get_or_load("x", load) == 42
            assert m.stats.get("remote", "read_errors") >= 3

    run(main)


def test_64_tasks_on_one_cold_key_run_the_loader_once(tmp_path: Path) -> None:
    async def main() -> None:
        calls = 0
        release = asyncio.Event()

        async def loader() -> str:
            nonlocal calls
            calls += 1
            await release.wait()
            return "loaded"

        async with await AsyncCacheManager.embedded(tmp_path / "s.db") as m:
            tasks = [asyncio.create_task(m.get_or_load("cold", loader)) for _ in range(64)]
            while m._flights.waiters < 63:
                await asyncio.sleep(0.001)
            release.set()
            assert await asyncio.gather(*tasks) == ["loaded"] * 64
            assert calls == 1
            assert m.stats.loads == 1

    run(main)


def test_an_exception_reaches_every_waiting_task(tmp_path: Path) -> None:
    async def main() -> None:
        release = asyncio.Event()

        async def failing() -> str:
            await release.wait()
            raise LookupError("nope")

        async with await AsyncCacheManager.embedded(tmp_path / "s.db") as m:
            tasks = [asyncio.create_task(m.get_or_load("k", failing)) for _ in range(8)]
            while m._flights.waiters < 7:
                await asyncio.sleep(0.001)
            release.set()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            assert all(isinstance(r, LookupError) for r in results)
            assert await m.get("k") is None

    run(main)


def test_reentrant_loads(tmp_path: Path) -> None:
    async def main() -> None:
        async with await AsyncCacheManager.embedded(tmp_path / "s.db") as m:

            async def one() -> int:
                return 1

            async def outer() -> int:
                return await m.get_or_load("inner", one) + 1

            assert await m.get_or_load("outer", outer) == 2

            async def loops() -> int:
                return await m.get_or_load("self", one)

            with pytest.raises(ReentrantLoad):
                await m.get_or_load("self", loops)
            assert await m.get_or_load("self", one) == 1

    run(main)


def test_postgres_as_async_store(postgres_dsn: str) -> None:
    async def main() -> None:
        store = AsyncPostgresTier(postgres_dsn, table=f"amgr_{prefix()[2:-1]}", timeout=2)
        local = LocalCache(10)
        async with AsyncCacheManager(local=local, store=store) as m:
            await m.set("vm:1", {"state": "running"}, ttl=60)
            local.clear()
            assert await m.get("vm:1") == {"state": "running"}
            await m.clear()

    run(main)
