"""Convergence of the default ("eventual") mode (issue 21 items 1-2, issue 13
"consistency"): write-backs never replace a newer write nor bring back a deleted key,
L1 fills pass the staleness gate, a tier that missed writes is repaired once it answers
again, and tiers that disagree are resolved by version. On a real Redis and SQLite file;
a "peer" manager on the same tiers plays another process.

Every test here failed before the fix (the write-back, promotion and fill were
unconditional, deletes left nothing behind, nothing repaired a tier), except those of
get_versioned/resolve=, which are new API.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from novacache import LocalCache
from novacache.breaker import CircuitBreaker
from novacache.consistency import Version, Versioned
from novacache.errors import ConfigurationError
from novacache.manager import AsyncCacheManager, CacheManager
from novacache.tiers import AsyncRedisTier, AsyncSQLiteTier, RedisTier, SQLiteTier
from tiers.redis_servers import Standalone, start_standalone, topology

from ._support import live, prefix

TIMEOUT = 0.3


def _eventually(check: Callable[[], bool], within: float, what: str) -> float:
    """Seconds until ``check()`` held (fails after ``within`` seconds)."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > within:
            pytest.fail(f"not within {within} s: {what}")
        time.sleep(0.02)
    return time.monotonic() - started


@pytest.fixture
def tiers(redis_standalone: Standalone, tmp_path: Path) -> dict[str, Any]:
    """Where two "processes" meet: one Redis namespace and one SQLite file."""
    return {"url": redis_standalone.url, "prefix": prefix(), "db": tmp_path / "l3.db"}


def _manager(t: dict[str, Any], *, local: bool = True, **options: Any) -> CacheManager:
    return CacheManager(
        local=LocalCache(1000) if local else None,
        remote=RedisTier(t["url"], prefix=t["prefix"]),
        store=SQLiteTier(t["db"]),
        on_write_error="report",
        **options,
    )


def _amanager(t: dict[str, Any], *, local: bool = True) -> AsyncCacheManager:
    return AsyncCacheManager(
        local=LocalCache(1000) if local else None,
        remote=AsyncRedisTier(t["url"], prefix=t["prefix"]),
        store=AsyncSQLiteTier(t["db"]),
        on_write_error="report",
    )


# -- conditional write-backs (issue 21, item 2) -------------------------------------------


def test_a_load_never_overwrites_a_set_made_while_it_ran(tiers: dict[str, Any]) -> None:
    with _manager(tiers) as m, _manager(tiers, local=False) as peer:

        def loader() -> str:
            peer.set("k", "new")  # another process writes while the loader runs
            return "loaded-before"

        assert m.get_or_load("k", loader) == "loaded-before"  # the caller gets its value
        assert peer.get("k") == "new"  # ... but no tier lost the newer write
        assert peer.store.get("k") == peer.remote.get("k")  # type: ignore[union-attr]
        assert m.get("k") == "new"  # and L1 did not keep the loaded one
        assert m.stats.get("remote", "writebacks_refused") == 1
        assert m.stats.get("store", "writebacks_refused") == 1


def test_a_load_never_brings_back_a_key_deleted_while_it_ran(tiers: dict[str, Any]) -> None:
    with _manager(tiers) as m, _manager(tiers, local=False) as peer:
        peer.set("k", "old")
        m.local.clear()  # type: ignore[union-attr]
        peer.delete("k")  # the key is gone: m's load starts from a tombstone

        def loader() -> str:
            peer.set("k", "again")
            peer.delete("k")  # written and deleted again while the loader runs
            return "resurrected?"

        assert m.get_or_load("k", loader) == "resurrected?"
        assert peer.get("k") is None
        assert m.get("k") is None
        assert m.get_versioned("k") is None


def test_a_load_after_a_delete_is_stored(tiers: dict[str, Any]) -> None:
    """A tombstone blocks only loads that began before the delete."""
    with _manager(tiers) as m, _manager(tiers, local=False) as peer:
        m.set("k", "v1")
        assert m.delete("k") is True
        assert m.delete("k") is False  # a tombstone is no entry
        assert m.get_or_load("k", lambda: "v2") == "v2"
        assert peer.get("k") == "v2"
        assert m.stats.get("remote", "writebacks_refused") == 0


def test_the_asyncio_manager_writes_back_conditionally(tiers: dict[str, Any]) -> None:
    async def main() -> None:
        async with _amanager(tiers) as m, _amanager(tiers, local=False) as peer:

            async def loader() -> str:
                await peer.set("k", "new")
                return "loaded-before"

            assert await m.get_or_load("k", loader) == "loaded-before"
            assert await peer.get("k") == "new"
            assert await m.get("k") == "new"

            async def deleting() -> str:
                await peer.delete("k")
                return "resurrected?"

            m.local.clear()  # type: ignore[union-attr]
            await peer.set("k", "stale", ttl=0.2)
            await asyncio.sleep(0.3)  # expired: m's read misses, its loader deletes
            assert await m.get_or_load("k", deleting) == "resurrected?"
            assert await peer.get("k") is None

    asyncio.run(asyncio.wait_for(main(), 30))


class _SlowStore(SQLiteTier):
    """An SQLite tier whose read lets a callback run in between: a write of another
    process that lands after the read below and before the promotion above."""

    between: Callable[[], None] | None = None

    def get(self, key: str) -> bytes | None:
        frame = super().get(key)
        hook, self.between = self.between, None
        if hook is not None:
            hook()
        return frame

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        frames = super().get_many(keys)
        hook, self.between = self.between, None
        if hook is not None:
            hook()
        return frames


def test_a_promotion_never_overwrites_a_newer_write(tiers: dict[str, Any]) -> None:
    store = _SlowStore(tiers["db"])
    with (
        CacheManager(
            local=LocalCache(100),
            remote=RedisTier(tiers["url"], prefix=tiers["prefix"]),
            store=store,
        ) as m,
        _manager(tiers, local=False) as peer,
    ):
        store.set("k", b"")  # placeholder, replaced below
        peer.store.set("k", m.codec.encode("k", ["x"]))  # type: ignore[union-attr]
        peer.store.delete("k")  # type: ignore[union-attr]
        m.set("k", "old")
        m.remote.delete("k")  # type: ignore[union-attr]  # only L3 holds it: a read promotes
        m.local.clear()  # type: ignore[union-attr]
        store.between = lambda: peer.set("k", "new")
        assert m.get("k") == "old"  # read from L3 before the write landed: fine
        assert peer.remote.get("k") is not None  # type: ignore[union-attr]
        assert peer.get("k") == "new"  # the promotion did not replace it in Redis
        assert m.get("k") == "new"  # nor did L1 keep the old value
        assert m.stats.get("remote", "writebacks_refused") == 1


def test_a_hit_below_a_newer_delete_is_a_miss(tiers: dict[str, Any]) -> None:
    """Redis holds a delete's tombstone, SQLite still the older value (its delete
    failed): the read does not serve, nor promote, the deleted value."""
    with _manager(tiers) as m:
        m.set("k", "old")
        before = m.store.get("k")  # type: ignore[union-attr]
        m.delete("k")
        m.store.set("k", before)  # type: ignore[union-attr, arg-type]  # the delete "failed" here
        assert m.get("k") is None
        assert m.get_or_load("k", lambda: "fresh") == "fresh"


def test_a_write_of_this_process_during_a_read_wins_in_l1(tiers: dict[str, Any]) -> None:
    """The same process writes while its own read is between Redis and L1: the read
    does not put the older value into L1 (issue 21: the gate ignored own writes)."""

    class Between(RedisTier):
        hook: Callable[[], None] | None = None

        def get(self, key: str) -> bytes | None:
            frame = super().get(key)
            hook, self.hook = self.hook, None
            if hook is not None:
                hook()
            return frame

    remote = Between(tiers["url"], prefix=tiers["prefix"])
    with CacheManager(local=LocalCache(100), remote=remote) as m:
        m.set("k", "old")
        m.local.clear()  # type: ignore[union-attr]
        remote.hook = lambda: m.set("k", "new")
        assert m.get("k") == "old"  # read before the write
        assert m.local.get("k") != "old"  # type: ignore[union-attr]
        assert m.get("k") == "new"


# -- repair (issue 21, item 1) --------------------------------------------------------------


@pytest.fixture
def own_redis(redis_base: Path) -> Iterator[Standalone]:
    with topology(start_standalone, redis_base) as server:
        try:
            yield server
        finally:
            server.server.resume()


def _fragile(url: str, pre: str, db: Path, **options: Any) -> CacheManager:
    # A breaker that opens at the first failure: a write while it is open is not sent
    # at all (a write sent to a frozen server would still land when it wakes up).
    breaker = CircuitBreaker(threshold=1, cooldown=0.2)
    return CacheManager(
        local=LocalCache(100),
        remote=RedisTier(
            url, prefix=pre, timeout=TIMEOUT, connect_timeout=TIMEOUT, retries=0, breaker=breaker
        ),
        store=SQLiteTier(db),
        on_write_error="report",
        **options,
    )


@pytest.mark.parametrize("op", ["set", "delete"])
def test_a_write_that_failed_on_a_frozen_redis_is_repaired(
    own_redis: Standalone, tmp_path: Path, op: str
) -> None:
    """Redis frozen: the write reaches SQLite only. Once Redis answers again, a reader
    (another process, no L1) never gets the replaced value for more than the bound,
    though the writer makes no call any more (the repairer's ping finds Redis back)."""
    pre, db = prefix(), tmp_path / "l3.db"
    with _fragile(own_redis.url, pre, db) as writer, _fragile(own_redis.url, pre, db) as reader:
        writer.set("k", "v1")
        own_redis.server.pause()
        assert writer.get("other") is None  # times out: the breaker opens
        report = writer.set("k", "v2") if op == "set" else None
        if op == "delete":
            writer.delete("k")
        else:
            assert report is not None
            assert set(report.failed) == {"remote"}
        own_redis.server.resume()
        time.sleep(0.25)  # the breaker's cooldown
        writer.local.clear()  # type: ignore[union-attr]
        writer.get("k")  # the writer's own L1 may take the old value from Redis ...
        reader.local.clear()  # type: ignore[union-attr]
        want = "v2" if op == "set" else None

        def current() -> bool:
            reader.local.clear()  # type: ignore[union-attr]
            return reader.get("k") == want

        took = _eventually(current, 5.0, "the reader gets the write that reached SQLite")
        assert took < 2.0, took
        _eventually(lambda: writer.get("k") == want, 1.0, "... until the repair drops it")
        assert writer.stats.get("remote", "repairs") >= 1
        for _ in range(20):  # and it stays so
            reader.local.clear()  # type: ignore[union-attr]
            assert reader.get("k") == want


def test_a_redis_restarted_from_old_data_is_repaired(own_redis: Standalone, tmp_path: Path) -> None:
    """Redis comes back from a snapshot older than the writes it had confirmed (an
    RDB/AOF behind its last writes): the keys written just before it went away are
    repaired, so the old values it came back with are not served."""
    pre, db = prefix(), tmp_path / "l3.db"
    with _fragile(own_redis.url, pre, db) as writer, _fragile(own_redis.url, pre, db) as reader:
        writer.set("k", "v1")
        own_redis.server.client().execute_command("SAVE")  # the snapshot holds v1
        writer.set("k", "v2")  # confirmed by Redis and SQLite, not in the snapshot
        own_redis.server.kill()
        assert writer.get("other") is None  # the writer notices Redis is gone
        own_redis.server.start()  # back from the snapshot: k is v1 again there

        def current() -> bool:
            reader.local.clear()  # type: ignore[union-attr]
            return reader.get("k") == "v2"

        assert _eventually(current, 5.0, "the reader gets v2") < 2.5


def test_repair_runs_by_hand_and_counts(own_redis: Standalone, tmp_path: Path) -> None:
    pre, db = prefix(), tmp_path / "l3.db"
    with _fragile(own_redis.url, pre, db, repair_probe=None) as m:
        m.set("k", "v1")
        own_redis.server.pause()
        assert m.get("other") is None  # times out: the breaker opens
        m.set("k", "v2")  # not sent: the breaker is open
        assert m.repair() == 0  # Redis still frozen: nothing done, nothing lost
        own_redis.server.resume()
        time.sleep(0.25)  # the breaker's cooldown
        m.remote.ping()  # type: ignore[union-attr]  # a call went through
        m.repair()
        assert m.stats.get("remote", "repairs") >= 1
        assert m.remote.get("k") is None  # type: ignore[union-attr]
        m.local.clear()  # type: ignore[union-attr]
        assert m.get("k") == "v2"


# -- versions and resolution (issue 13) -------------------------------------------------


def test_get_versioned_returns_the_version_and_repairs_the_loser(tiers: dict[str, Any]) -> None:
    with _manager(tiers) as m, CacheManager(store=SQLiteTier(tiers["db"])) as store_only:
        m.set("k", "v1")
        first = m.get_versioned("k")
        assert isinstance(first, Versioned)
        assert (first.value, first.tier, first.deleted) == ("v1", "remote", False)
        assert first.version.writer
        assert first.version.stamp
        store_only.set("k", "v2")  # a write that reached L3 only: the tiers disagree
        second = m.get_versioned("k")
        assert second is not None
        assert (second.value, second.tier) == ("v2", "store")
        assert second.version > first.version
        assert m.stats.get("remote", "repairs") == 1
        again = m.get_versioned("k")
        assert again is not None
        assert (again.value, again.tier, again.version) == ("v2", "remote", second.version)
        assert m.get_versioned("absent") is None


def test_the_resolve_option(tiers: dict[str, Any]) -> None:
    def lower(a: Versioned, b: Versioned) -> Versioned:
        return a if a.version < b.version else b

    with _manager(tiers, resolve=lower) as m, CacheManager(store=SQLiteTier(tiers["db"])) as s:
        m.set("k", "v1")
        s.set("k", "v2")
        got = m.get_versioned("k")
        assert got is not None
        assert got.value == "v1"  # the user's rule kept the lower version
    with _manager(tiers, resolve="last_writer_wins") as m:
        got = m.get_versioned("k")
        assert got is not None
        assert got.value == "v1"  # both tiers agree now (the repair above)
    with (
        _manager(tiers, resolve=lambda a, b: 1 / 0) as m,
        CacheManager(  # type: ignore[arg-type,return-value]
            store=SQLiteTier(tiers["db"])
        ) as s,
    ):
        s.set("k", "v3")
        got = m.get_versioned("k")
        assert got is not None
        assert got.value == "v1"  # a failing rule keeps the higher tier's copy
        assert m.stats.snapshot()["resolve_errors"] == 1
    with pytest.raises(ConfigurationError):
        _manager(tiers, resolve="newest")  # type: ignore[arg-type]


def test_the_consistency_hook_and_bad_options(tiers: dict[str, Any]) -> None:
    with _manager(tiers, consistency={"acct:": "eventual", "acct:s": "strong"}) as m:
        assert m.model_for("acct:1") == "eventual"
        assert m.model_for("acct:s1") == "strong"
        assert m.model_for("other") == "eventual"
    for bad in ({"acct:": "linear"}, {1: "eventual"}, ["eventual"]):
        with pytest.raises(ConfigurationError):
            _manager(tiers, consistency=bad)
    for bad_ttl in (0, -1, float("nan"), None):
        with pytest.raises((ConfigurationError, ValueError)):
            _manager(tiers, tombstone_ttl=bad_ttl)
    with pytest.raises(ConfigurationError):
        _manager(tiers, repair_probe=0)


def test_versions_increase_across_writes_and_processes(tiers: dict[str, Any]) -> None:
    """A write made after reading another writer's version gets a greater one."""
    with _manager(tiers) as m, _manager(tiers, local=False) as peer:
        m.set("k", "a")
        a = peer.get_versioned("k")
        peer.set("k", "b")
        b = m.get_versioned("k")
        assert a is not None
        assert b is not None
        assert b.version > a.version
        assert isinstance(b.version, Version)


def test_get_many_honours_tombstones_and_promotes_conditionally(tiers: dict[str, Any]) -> None:
    with _manager(tiers) as m, _manager(tiers, local=False) as peer:
        m.set_many({"a": 1, "b": 2, "c": 3})
        old_b = m.store.get("b")  # type: ignore[union-attr]
        m.delete("b")
        m.store.set("b", old_b)  # type: ignore[union-attr, arg-type]  # its delete "failed" there
        m.remote.delete("c")  # type: ignore[union-attr]  # only L3 holds c: promoted
        m.local.clear()  # type: ignore[union-attr]
        assert m.get_many(["a", "b", "c"]) == {"a": 1, "c": 3}
        assert peer.remote.get("c") is not None  # type: ignore[union-attr]
        assert peer.get("c") == 3
        assert m.stats.get("remote", "tombstones") == 1


def test_get_many_promotes_in_one_conditional_call_per_tier(tiers: dict[str, Any]) -> None:
    """The promotions of a ``get_many`` go to Redis as one ``set_if_many`` (one pipeline
    of the script), not one ``set_if`` per key, and stay conditional: a key a peer wrote
    meanwhile is refused (counted, and not kept in L1)."""
    store = _SlowStore(tiers["db"])
    keys = [f"p:{i}" for i in range(5)]
    with (
        CacheManager(
            local=LocalCache(100),
            remote=RedisTier(tiers["url"], prefix=tiers["prefix"]),
            store=store,
        ) as m,
        _manager(tiers, local=False) as peer,
    ):
        m.set_many({k: f"old{i}" for i, k in enumerate(keys)})
        remote: Any = m.remote
        remote.delete_many(keys)  # only L3 holds them: a read promotes
        m.local.clear()  # type: ignore[union-attr]
        calls: list[tuple[str, int]] = []
        one, many = remote.set_if, remote.set_if_many
        remote.set_if = lambda *a, **kw: calls.append(("set_if", 1)) or one(*a, **kw)
        remote.set_if_many = lambda items: calls.append(("set_if_many", len(items))) or many(items)
        store.between = lambda: peer.set("p:3", "new")  # lands after the reads
        assert m.get_many(keys) == {k: f"old{i}" for i, k in enumerate(keys)}
        assert calls == [("set_if_many", 5)]
        assert m.stats.get("remote", "writebacks_refused") == 1
        assert peer.get("p:3") == "new"  # the promotion did not replace it in Redis
        assert m.get("p:3") == "new"  # nor did L1 keep the old value
        assert live(peer.remote.get_many(keys)).keys() == set(keys)  # type: ignore[union-attr]
        assert peer.get_many(keys) == {k: "new" if k == "p:3" else f"old{i}"
                                       for i, k in enumerate(keys)}  # fmt: skip


def test_the_asyncio_get_many_promotes_in_one_call_per_tier(tiers: dict[str, Any]) -> None:
    keys = [f"p:{i}" for i in range(4)]

    async def main() -> None:
        async with _amanager(tiers) as m, _amanager(tiers, local=False) as peer:
            await m.set_many({k: i for i, k in enumerate(keys)})
            remote: Any = m.remote
            await remote.delete_many(keys[1:])  # only L3 holds them: promoted
            await remote.set("p:0", b"garbage")  # unreadable there: a miss, promoted over
            m.local.clear()  # type: ignore[union-attr]
            sizes: list[int] = []
            many = remote.set_if_many

            async def spy(items: Any) -> Any:
                sizes.append(len(items))
                await remote.set("p:0", b"other")  # not what the read saw any more
                return await many(items)

            remote.set_if_many = spy
            assert await m.get_many(keys) == {k: i for i, k in enumerate(keys)}
            assert sizes == [4]  # one call for the four promotions
            assert m.stats.get("remote", "writebacks_refused") == 1
            assert await remote.get("p:0") == b"other"
            assert "p:0" not in m.local  # type: ignore[operator]
            assert await peer.get_many(keys[1:]) == {k: i + 1 for i, k in enumerate(keys[1:])}
            assert peer.stats.get("remote", "hits") == 3

    asyncio.run(asyncio.wait_for(main(), 30))


def test_the_asyncio_repairer_repairs(own_redis: Standalone, tmp_path: Path) -> None:
    """The asyncio manager's repairer (a task of its loop) does what the thread does."""
    pre, db = prefix(), tmp_path / "l3.db"

    def manager() -> AsyncCacheManager:
        return AsyncCacheManager(
            local=LocalCache(100),
            remote=AsyncRedisTier(
                own_redis.url,
                prefix=pre,
                timeout=TIMEOUT,
                connect_timeout=TIMEOUT,
                retries=0,
                breaker=CircuitBreaker(threshold=1, cooldown=0.2),
            ),
            store=AsyncSQLiteTier(db),
            on_write_error="report",
        )

    async def main() -> None:
        async with manager() as writer, manager() as reader:
            await writer.set("k", "v1")
            own_redis.server.pause()
            assert await writer.get("other") is None  # the breaker opens
            await writer.set("k", "v2")  # not sent
            own_redis.server.resume()
            started = time.monotonic()
            while True:
                reader.local.clear()  # type: ignore[union-attr]
                if await reader.get("k") == "v2":
                    break
                assert time.monotonic() - started < 2.0, "not repaired within 2 s"
                await asyncio.sleep(0.02)
            assert writer.stats.get("remote", "repairs") >= 1

    asyncio.run(asyncio.wait_for(main(), 30))
