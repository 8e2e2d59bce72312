"""Tags: set(..., tags=...) and invalidate_tags across every tier and every manager that
shares the tiers; the indexes are Redis sets and an SQLite table (no KEYS)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from novacache import LocalCache
from novacache.breaker import CircuitBreaker
from novacache.errors import ConfigurationError, PartialWrite
from novacache.manager import AsyncCacheManager, CacheManager
from novacache.tiers import AsyncRedisTier, AsyncSQLiteTier, RedisTier, SQLiteTier
from tiers.redis_servers import Cluster, Standalone, free_port

from ._support import Clock, Counting, live, prefix


def test_invalidate_tags_on_the_embedded_default(embedded: CacheManager) -> None:
    assert embedded.store is not None
    embedded.set("vm:1", 1, tags=["tenant:a", "host:7"])
    embedded.set("vm:2", 2, tags=["tenant:a"])
    embedded.set_many({"vm:3": 3, "vm:4": 4}, tags=["tenant:b"])
    embedded.set("vm:5", 5)
    assert embedded.invalidate_tags(["tenant:a"]) == 2
    assert embedded.get_many(["vm:1", "vm:2", "vm:3", "vm:4", "vm:5"]) == {
        "vm:3": 3,
        "vm:4": 4,
        "vm:5": 5,
    }
    assert live(embedded.store.get("vm:1")) is None
    assert embedded.invalidate_tags(["host:7"]) == 0  # vm:1 is already gone
    assert embedded.invalidate_tags(["tenant:b", "nobody"]) == 2
    assert embedded.get("vm:3") is None
    assert embedded.invalidate_tags([]) == 0


def test_another_manager_on_the_same_file_invalidates_what_this_one_tagged(
    tmp_path: Path,
) -> None:
    path = tmp_path / "shared.db"
    with CacheManager.embedded(path) as writer, CacheManager.embedded(path) as other:
        writer.set("vm:1", "v", tags=["t"])
        assert other.invalidate_tags(["t"]) == 1
        assert other.get("vm:1") is None
        assert writer.store is not None
        assert live(writer.store.get("vm:1")) is None


def test_sqlite_index_rows_expire_with_their_entries(tmp_path: Path, clock: Clock) -> None:
    store = SQLiteTier(tmp_path / "s.db", clock=clock)
    with CacheManager(local=LocalCache(10, timer=clock), store=store, clock=clock) as m:
        m.set("short", 1, ttl=5, tags=["t"])
        m.set("long", 2, ttl=50, tags=["t"])
        clock.tick(10)
        (index,) = m._indexes()
        assert index.members(("t",)) == {"long"}
        assert m.invalidate_tags(["t"]) == 1


def test_tags_with_redis_and_sqlite_reach_every_tier(
    redis_standalone: Standalone, tmp_path: Path
) -> None:
    ns = prefix()
    path = tmp_path / "s.db"

    def manager() -> CacheManager:
        return CacheManager(
            local=LocalCache(100),
            remote=RedisTier(redis_standalone.url, prefix=ns),
            store=SQLiteTier(path),
        )

    with manager() as a, manager() as b:
        a.set_many({f"vm:{i}": i for i in range(20)}, ttl=60, tags=["zone-a"])
        a.set("vm:x", "x", tags=["zone-b"])
        assert b.invalidate_tags(["zone-a"]) == 20
        assert a.remote is not None
        assert a.remote.get_many([f"vm:{i}" for i in range(20)]) == {}
        assert a.remote.tag_members("zone-a") == set()  # type: ignore[attr-defined]
        assert b.get("vm:3") is None
        assert b.get("vm:x") == "x"


def test_tags_on_a_cluster(redis_cluster: Cluster) -> None:
    with CacheManager(
        local=LocalCache(100), remote=RedisTier(redis_cluster.url, prefix=prefix())
    ) as m:
        m.set_many({f"user:{i}": i for i in range(30)}, tags=["org:1"])  # many slots
        assert m.invalidate_tags(["org:1"]) == 30
        assert m.get_many([f"user:{i}" for i in range(30)]) == {}


def test_invalidation_with_redis_down_uses_the_sqlite_index_and_reports(tmp_path: Path) -> None:
    remote = RedisTier(
        f"redis://127.0.0.1:{free_port()}/0",
        breaker=CircuitBreaker(threshold=1, cooldown=60),
        timeout=0.2,
        retries=0,
    )
    with CacheManager(
        local=LocalCache(10), remote=remote, store=SQLiteTier(tmp_path / "s.db")
    ) as m:
        with pytest.raises(PartialWrite) as info:
            m.set("k", 1, tags=["t"])
        assert set(info.value.failed) == {"remote"}
        with pytest.raises(PartialWrite) as info:
            m.invalidate_tags(["t"])
        assert set(info.value.failed) == {"remote"}
        assert m.get("k") is None  # removed from L1 and L3 all the same


def test_l1_only_manager_keeps_a_local_index() -> None:
    with CacheManager(local=LocalCache(10)) as m:
        m.set("a", 1, tags=["t"])
        m.set("b", 2)
        assert m.invalidate_tags(["t"]) == 1
        assert m.get("a") is None
        assert m.get("b") == 2


def test_tags_with_another_store_and_no_redis_are_refused(tmp_path: Path) -> None:
    store = Counting(SQLiteTier(tmp_path / "s.db"))  # not a store that can hold an index
    with CacheManager(local=LocalCache(10), store=store) as m:
        with pytest.raises(ConfigurationError, match="tag index"):
            m.set("a", 1, tags=["t"])
        m.set("a", 1)  # untagged writes are fine
        assert m.get("a") == 1


def test_bad_tags_are_refused(embedded: CacheManager) -> None:
    with pytest.raises(TypeError):
        embedded.set("a", 1, tags="tenant")
    with pytest.raises(ValueError, match="tag"):
        embedded.set("a", 1, tags=[""])


def test_async_manager_tags(tmp_path: Path) -> None:
    async def main() -> None:
        store = AsyncSQLiteTier(tmp_path / "s.db")
        async with AsyncCacheManager(local=LocalCache(10), store=store) as m:
            await m.set("a", 1, tags=["t"])
            await m.set_many({"b": 2, "c": 3}, tags=["t", "u"])
            await m.set("d", 4)
            assert await m.invalidate_tags(["t"]) == 3
            assert await m.get_many(["a", "b", "c", "d"]) == {"d": 4}

    asyncio.run(asyncio.wait_for(main(), 30))


# -- the Redis index of an AsyncCacheManager, shared with sync managers ------------------


def _tag_pttl(server: Standalone, ns: str, tag: str) -> int:
    """PTTL of a tag's index set, read with a bare client (-1: no expiry, -2: absent)."""
    client = server.server.client()
    try:
        return int(client.pttl(ns.encode() + b"\xfftag:" + tag.encode()))
    finally:
        client.close()


@pytest.mark.parametrize("topology", ["standalone", "cluster"])
def test_sync_and_async_managers_share_one_redis_tag_index(
    topology: str, request: pytest.FixtureRequest
) -> None:
    server = request.getfixturevalue(f"redis_{topology}")
    ns = prefix()
    # No L1: keeping other processes' L1 coherent is the bus's job (test_invalidation);
    # here every read goes to Redis, so it shows what the shared index removed.
    sync = CacheManager(remote=RedisTier(server.url, prefix=ns))

    async def main() -> None:
        async with AsyncCacheManager(remote=AsyncRedisTier(server.url, prefix=ns)) as m:
            await m.set_many({f"user:{i}": i for i in range(20)}, ttl=60, tags=["org:1"])
            sync.set("user:x", "x", ttl=60, tags=["org:1", "org:2"])
            sync.set("user:y", "y", tags=["org:2"])
            # the async manager's tags are in Redis: the sync manager finds them
            assert sync.invalidate_tags(["org:1"]) == 21
            assert await m.get_many([f"user:{i}" for i in range(20)]) == {}
            assert await m.get("user:x") is None  # the sync manager's tag, from Redis
            # and the sync manager's tags reach the async manager
            assert await m.invalidate_tags(["org:2"]) == 1
            assert sync.get("user:y") is None
            assert sync.remote is not None
            assert sync.remote.tag_members("org:1") == set()  # type: ignore[attr-defined]

    try:
        asyncio.run(asyncio.wait_for(main(), 30))
    finally:
        sync.clear()
        sync.close()


def test_two_async_managers_on_redis_only_share_tags(redis_standalone: Standalone) -> None:
    ns = prefix()

    def manager() -> AsyncCacheManager:
        return AsyncCacheManager(
            local=LocalCache(100), remote=AsyncRedisTier(redis_standalone.url, prefix=ns)
        )

    async def main() -> None:
        async with manager() as a, manager() as b:
            await a.set("vm:1", 1, tags=["host-1"])
            await a.set("vm:2", 2, ttl=30, tags=["host-1"])
            assert await b.get("vm:1") == 1  # b's L1 holds it now
            assert await b.invalidate_tags(["host-1"]) == 2
            assert await b.get_many(["vm:1", "vm:2"]) == {}
            assert await a.remote.get("vm:1") is None  # type: ignore[union-attr]
            await a.clear()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_a_sync_manager_refuses_an_async_redis_tier(redis_standalone: Standalone) -> None:
    tier = AsyncRedisTier(redis_standalone.url, prefix=prefix())
    with pytest.raises(ConfigurationError, match="AsyncCacheManager"):
        CacheManager(local=LocalCache(10), remote=tier)  # type: ignore[arg-type]


def test_manager_tag_set_ttl_follows_the_longest_entry_ttl(redis_standalone: Standalone) -> None:
    ns = prefix()
    with CacheManager(remote=RedisTier(redis_standalone.url, prefix=ns)) as m:
        m.set("a", 1, ttl=30, tags=["t"])
        assert 30_000 <= _tag_pttl(redis_standalone, ns, "t") <= 31_000
        m.set_many({"b": 2, "c": 3}, ttl=90, tags=["t"])
        assert 90_000 <= _tag_pttl(redis_standalone, ns, "t") <= 91_000
        m.set("d", 4, ttl=5, tags=["t"])  # shorter: the set's expiry never shrinks
        assert _tag_pttl(redis_standalone, ns, "t") >= 89_000
        m.set("e", 5, tags=["t"])  # no TTL: the set must not expire before "e"
        assert _tag_pttl(redis_standalone, ns, "t") == -1
        m.set("f", 6, ttl=1, tags=["t"])
        assert _tag_pttl(redis_standalone, ns, "t") == -1
        assert m.invalidate_tags(["t"]) == 6
        assert _tag_pttl(redis_standalone, ns, "t") == -2
        m.clear()


def test_async_manager_tag_set_ttl_never_shrinks(redis_standalone: Standalone) -> None:
    ns = prefix()

    async def main() -> None:
        async with AsyncCacheManager(remote=AsyncRedisTier(redis_standalone.url, prefix=ns)) as m:
            await m.set("a", 1, ttl=60, tags=["t"])
            await m.set("b", 2, ttl=2, tags=["t"])
            assert 59_000 <= _tag_pttl(redis_standalone, ns, "t") <= 61_000
            await m.set("c", 3, tags=["t"])
            assert _tag_pttl(redis_standalone, ns, "t") == -1
            await m.clear()

    asyncio.run(asyncio.wait_for(main(), 30))
