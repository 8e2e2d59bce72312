"""The engine's deletes leave the manager's tombstones (issue 21): a ``get_or_load``
whose loader began before an event cannot store its (now stale) value after the event,
on Redis and on SQLite, sync and asyncio. Before, the engine removed the keys outright,
and the conditional write-back, expecting "absent", found absent and stored.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from manager._support import prefix
from novacache import LocalCache
from novacache.consistency import Version
from novacache.invalidation import AsyncInvalidationEngine, InvalidationEngine
from novacache.manager import AsyncCacheManager, CacheManager
from novacache.manager.envelope import read_tombstone
from novacache.tiers import AsyncRedisTier, AsyncSQLiteTier, RedisTier, SQLiteTier
from tiers.redis_servers import Standalone

KEY = "acct:7"
WAIT = 30.0  # a bound on a hang, never a measurement


@pytest.fixture(params=["redis", "sqlite"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _manager(kind: str, redis: Standalone, db: Path) -> CacheManager:
    if kind == "redis":
        return CacheManager(local=LocalCache(100), remote=RedisTier(redis.url, prefix=prefix()))
    return CacheManager(local=LocalCache(100), store=SQLiteTier(db))


async def _amanager(kind: str, redis: Standalone, db: Path) -> AsyncCacheManager:
    if kind == "redis":
        return AsyncCacheManager(
            local=LocalCache(100), remote=AsyncRedisTier(redis.url, prefix=prefix())
        )
    return AsyncCacheManager(local=LocalCache(100), store=await AsyncSQLiteTier.open(db))


def _is_tombstone(frame: Any) -> bool:
    return isinstance(frame, bytes) and isinstance(read_tombstone(frame), Version)


def test_a_load_that_began_before_an_emit_is_not_stored(
    kind: str, redis_standalone: Standalone, tmp_path: Path
) -> None:
    with _manager(kind, redis_standalone, tmp_path / "t.db") as m:
        engine = InvalidationEngine(m)
        engine.rule("acct.changed", keys=["acct:{id}"])
        started, release = threading.Event(), threading.Event()
        got: list[Any] = []

        def slow() -> str:
            started.set()
            assert release.wait(WAIT)
            return "read-before-the-change"

        t = threading.Thread(target=lambda: got.append(m.get_or_load(KEY, slow)))
        t.start()
        assert started.wait(WAIT)
        report = engine.emit("acct.changed", id=7)  # the source changed under the loader
        assert report.ok
        assert KEY in report.keys
        release.set()
        t.join(WAIT)
        assert got == ["read-before-the-change"]  # the caller still gets its value
        assert m.get(KEY) is None  # ... but no tier (nor L1) keeps it
        slot, tier = m._below[0]
        assert _is_tombstone(tier.get(KEY))  # the delete's mark, as manager.delete's
        assert m.stats.get(slot, "writebacks_refused") == 1
        calls: list[int] = []
        assert m.get_or_load(KEY, lambda: calls.append(1) or "fresh") == "fresh"
        assert calls == [1]  # the next load ran the loader
        assert m.get(KEY) == "fresh"


def test_the_asyncio_engine_leaves_tombstones_too(
    kind: str, redis_standalone: Standalone, tmp_path: Path
) -> None:
    async def main() -> None:
        m = await _amanager(kind, redis_standalone, tmp_path / "t.db")
        async with m:
            engine = AsyncInvalidationEngine(m)
            engine.rule("acct.changed", keys=["acct:{id}"])
            started, release = asyncio.Event(), asyncio.Event()

            async def slow() -> str:
                started.set()
                await release.wait()
                return "read-before-the-change"

            task = asyncio.create_task(m.get_or_load(KEY, slow))
            await started.wait()
            report = await engine.emit("acct.changed", id=7)
            assert report.ok
            assert KEY in report.keys
            release.set()
            assert await task == "read-before-the-change"
            assert await m.get(KEY) is None
            slot, tier = m._below[0]
            assert _is_tombstone(await tier.get(KEY))
            assert m.stats.get(slot, "writebacks_refused") == 1
            calls: list[int] = []

            async def fresh() -> str:
                calls.append(1)
                return "fresh"

            assert await m.get_or_load(KEY, fresh) == "fresh"
            assert calls == [1]
            assert await m.get(KEY) == "fresh"

    asyncio.run(asyncio.wait_for(main(), WAIT))


def test_a_batch_and_a_dependency_leave_tombstones(
    kind: str, redis_standalone: Standalone, tmp_path: Path
) -> None:
    """Every delete of the engine goes the same way: a batch invalidator's flush and a
    dependent key reached through ``depends``."""
    with _manager(kind, redis_standalone, tmp_path / "t.db") as m:
        engine = InvalidationEngine(m)
        m.set("order:1", "o1")
        m.set("order:1:total", "t1")
        engine.depends("order:1:total", ["order:1"])
        with engine.batch(interval=10.0) as batch:
            batch.add(["order:1"])
        _, tier = m._below[0]
        for key in ("order:1", "order:1:total"):
            assert m.get(key) is None
            assert _is_tombstone(tier.get(key)), key
