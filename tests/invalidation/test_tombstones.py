"""The engine's deletes leave the manager's tombstones (issue 21): a ``get_or_load``
whose loader began before an event cannot store its (now stale) value after the event,
on Redis and on SQLite, sync and asyncio. Before, the engine removed the keys outright,
and the conditional write-back, expecting "absent", found absent and stored.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from manager._support import prefix
from novacache import LocalCache
from novacache.consistency import Version
from novacache.invalidation import AsyncInvalidationEngine, InvalidationEngine, SmartRefresh
from novacache.manager import AsyncCacheManager, CacheManager, InvalidationBus
from novacache.manager.envelope import read_tombstone
from novacache.tiers import (
    AsyncRedisTier,
    AsyncSQLiteTier,
    PostgresTier,
    RedisTier,
    SQLiteTier,
)
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


class _TwoLoads:
    """A loader whose first call (a reader's ``get_or_load``) and second call (the
    engine's reload) each block on their own event and return their own version."""

    def __init__(self) -> None:
        self.started = [threading.Event(), threading.Event()]
        self.release = [threading.Event(), threading.Event()]
        self.calls = 0
        self.version = 1

    def __call__(self) -> dict[str, int]:
        n = self.calls
        self.calls += 1
        if n < 2:
            self.started[n].set()
            assert self.release[n].wait(WAIT)
            return {"version": n + 1}
        return {"version": self.version}


def test_a_load_that_began_before_a_reload_does_not_outlive_it(
    kind: str, redis_standalone: Standalone, tmp_path: Path
) -> None:
    """A hot key is reloaded instead of dropped (smart refresh). A reader's load that
    began before the event stores its value between the reload's read of the tiers and
    its write: the reload's conditional write is refused, so the key is dropped (as a
    failed reload is), never left with the reader's older value."""
    with _manager(kind, redis_standalone, tmp_path / "t.db") as m:
        smart = SmartRefresh(horizon=10, cost_weight=2, min_rate=0.2)
        engine = InvalidationEngine(m, smart=smart)
        engine.rule("acct.changed", keys=["acct:{id}"])
        warm = _TwoLoads()
        warm.calls = 2  # no blocking: just make the key hot
        for _ in range(5):
            assert m.local is not None
            m.local.pop(KEY, None)
            m.get_or_load(KEY, warm)
        m.delete(KEY)  # gone from every tier: the next reader loads
        source = _TwoLoads()
        got: list[Any] = []
        reader = threading.Thread(target=lambda: got.append(m.get_or_load(KEY, source)))
        reader.start()
        assert source.started[0].wait(WAIT)  # the reader's load runs (the old version)
        report = engine.emit("acct.changed", id=7)
        assert report.refreshed == {KEY}  # hot: reloaded in place, not dropped
        assert source.started[1].wait(WAIT)  # the reload read the tiers and loads
        source.release[0].set()  # the reader's older value lands first
        reader.join(WAIT)
        assert got == [{"version": 1}]
        source.release[1].set()
        engine.wait_refreshes()
        assert engine.stats.counts["refresh_refused"] == 1
        assert engine.stats.counts["refreshes"] == 0
        source.version = 3
        assert m.get(KEY) in (None, {"version": 2})  # never the reader's version 1
        assert m.get_or_load(KEY, source) != {"version": 1}


def test_the_asyncio_reload_is_dropped_when_refused(
    kind: str, redis_standalone: Standalone, tmp_path: Path
) -> None:
    async def main() -> None:
        m = await _amanager(kind, redis_standalone, tmp_path / "t.db")
        async with m:
            smart = SmartRefresh(horizon=10, cost_weight=2, min_rate=0.2)
            engine = AsyncInvalidationEngine(m, smart=smart)
            engine.rule("acct.changed", keys=["acct:{id}"])
            started = [asyncio.Event(), asyncio.Event()]
            release = [asyncio.Event(), asyncio.Event()]
            calls = [2]  # warming up: no blocking

            async def source() -> dict[str, int]:
                n = calls[0]
                calls[0] += 1
                if n < 2:
                    started[n].set()
                    await release[n].wait()
                    return {"version": n + 1}
                return {"version": 3}

            for _ in range(5):
                assert m.local is not None
                m.local.pop(KEY, None)
                await m.get_or_load(KEY, source)
            await m.delete(KEY)
            calls[0] = 0
            reader = asyncio.create_task(m.get_or_load(KEY, source))
            await started[0].wait()
            report = await engine.emit("acct.changed", id=7)
            assert report.refreshed == {KEY}
            await started[1].wait()
            release[0].set()
            assert await reader == {"version": 1}
            release[1].set()
            await engine.wait_refreshes()
            assert engine.stats.counts["refresh_refused"] == 1
            assert await m.get(KEY) in (None, {"version": 2})
            assert await m.get_or_load(KEY, source) != {"version": 1}

    asyncio.run(asyncio.wait_for(main(), WAIT))


@pytest.mark.parametrize("connections", [1, 2, 64])
def test_the_scan_fallback_skips_tombstones_on_any_pool_size(
    connections: int, redis_standalone: Standalone
) -> None:
    """An unregistered pattern is resolved by SCAN: keys holding a delete's tombstone
    are no entries (not reported, not counted towards ``scan_limit``), told apart
    after the SCAN (the asyncio tier holds a slot of its connection gate while it
    scans: a read inside it could wait for itself with one slot)."""

    async def main() -> None:
        remote = AsyncRedisTier(redis_standalone.url, prefix=prefix(), max_connections=connections)
        async with AsyncCacheManager(local=LocalCache(100), remote=remote) as m:
            engine = AsyncInvalidationEngine(m, scan_limit=3)
            await m.set_many({f"host:{i}": i for i in range(10)})
            await m.delete_many([f"host:{i}" for i in range(7)])  # 7 tombstones
            report = await engine.invalidate(patterns=["host:*"])
            assert report.keys == {"host:7", "host:8", "host:9"}
            assert report.scanned == 10
            assert await m.get_many([f"host:{i}" for i in range(10)]) == {}
            again = await engine.invalidate(patterns=["host:*"])
            assert again.keys == set()
            assert not again.truncated

    asyncio.run(asyncio.wait_for(main(), WAIT))


# -- coalesced invalidations (run_many: the management API's forced invalidations) --------


def _shared_manager(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> CacheManager:
    remote = store = None
    if "redis" in backend:
        remote = RedisTier(request.getfixturevalue("redis_standalone").url, prefix=prefix())
    if "sqlite" in backend:
        store = SQLiteTier(tmp_path / "t.db")
    if backend == "postgres":  # no tombstone_groups: tombstone_many per group
        dsn = request.getfixturevalue("postgres_dsn")
        store = PostgresTier(dsn, table=f"tomb_{uuid.uuid4().hex[:10]}", timeout=5)
    return CacheManager(local=LocalCache(100), remote=remote, store=store)  # type: ignore[arg-type]


class _BlockedLoads:
    """One loader per key; each blocks until released and returns its key's old value."""

    def __init__(self, keys: list[str]) -> None:
        self.started = {key: threading.Event() for key in keys}
        self.release = threading.Event()

    def loader(self, key: str) -> Any:
        def load() -> str:
            self.started[key].set()
            assert self.release.wait(WAIT)
            return "read-before-the-change"

        return load


@pytest.mark.parametrize("backend", ["redis", "sqlite", "redis+sqlite", "postgres"])
def test_coalesced_invalidations_leave_tombstones(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """``run_many`` (two or more invalidations in one call per tier) tombstones every
    group's keys as one invalidation does: a load of a key of each group that began
    before the batch cannot store its value after it. Each report counts its own live
    entries (a key both name counts in the first)."""
    loading = ["acct:1", "acct:2"]
    with _shared_manager(backend, request, tmp_path) as m:
        engine = InvalidationEngine(m)
        m.set("shared", "old")
        loads = _BlockedLoads(loading)
        got: list[Any] = []
        readers = [
            threading.Thread(target=lambda k=key: got.append(m.get_or_load(k, loads.loader(k))))
            for key in loading
        ]
        for reader in readers:
            reader.start()
        for key in loading:
            assert loads.started[key].wait(WAIT)
        reports = engine.run_many(
            [engine.targets(["acct:1", "shared"]), engine.targets(["acct:2", "shared"])]
        )
        assert all(report.ok for report in reports)
        loads.release.set()
        for reader in readers:
            reader.join(WAIT)
        assert got == ["read-before-the-change"] * 2  # each caller still gets its value
        for slot, tier in m._below:
            assert reports[0].dropped[slot] == 1, slot  # "shared"
            assert reports[1].dropped[slot] == 0, slot  # "shared" counted in the first
            for key in [*loading, "shared"]:
                assert _is_tombstone(tier.get(key)), (slot, key)
        assert m.stats.get(m._below[0][0], "writebacks_refused") == len(loading)
        for key in [*loading, "shared"]:
            assert m.get(key) is None  # ... but no tier (nor L1) keeps the old value
        assert m.get_or_load("acct:1", lambda: "fresh") == "fresh"
        assert m.get("acct:1") == "fresh"


@pytest.mark.parametrize("kind", ["redis", "sqlite"])
def test_asyncio_coalesced_invalidations_leave_tombstones(
    kind: str, redis_standalone: Standalone, tmp_path: Path
) -> None:
    """The asyncio engine's ``run_many`` the same way; on Redis with the bus on the same
    server and prefix (its message rides in the tombstones' pipeline)."""

    async def main() -> None:
        if kind == "redis":
            ns = prefix()
            url = redis_standalone.url
            bus = InvalidationBus(RedisTier(url, prefix=ns), timeout=5.0)
            m = AsyncCacheManager(
                local=LocalCache(100), remote=AsyncRedisTier(url, prefix=ns), bus=bus
            )
        else:
            m = await _amanager(kind, redis_standalone, tmp_path / "t.db")
        async with m:
            engine = AsyncInvalidationEngine(m)
            started = {key: asyncio.Event() for key in ("acct:1", "acct:2")}
            release = asyncio.Event()

            def loader(key: str) -> Any:
                async def load() -> str:
                    started[key].set()
                    await release.wait()
                    return "read-before-the-change"

                return load

            tasks = [asyncio.create_task(m.get_or_load(k, loader(k))) for k in started]
            for event in started.values():
                await event.wait()
            reports = await engine.run_many(
                [engine.targets(["acct:1"]), engine.targets(["acct:2", "acct:1"])]
            )
            assert all(report.ok for report in reports)
            release.set()
            assert await asyncio.gather(*tasks) == ["read-before-the-change"] * 2
            slot, tier = m._below[0]
            for key in started:
                assert await m.get(key) is None
                assert _is_tombstone(await tier.get(key)), key
            assert m.stats.get(slot, "writebacks_refused") == len(started)

    asyncio.run(asyncio.wait_for(main(), WAIT))
