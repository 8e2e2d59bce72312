"""CacheManager (sync): read path, promotion with the remaining TTL, write path, routing,
bulk calls, corrupt frames, and degradation with Redis down, against real tiers."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

import novacache
from novacache import Codec, LocalCache
from novacache.breaker import CircuitBreaker
from novacache.errors import CodecError, PartialWrite, TierUnavailable
from novacache.manager import CacheManager, Route, Router
from novacache.manager.envelope import seal
from novacache.tiers import PostgresTier, RedisTier, SQLiteTier
from tiers.redis_servers import (
    Cluster,
    SentinelSet,
    Standalone,
    free_port,
    start_standalone,
    wait_until,
)

from ._support import Clock, Counting, prefix

NOISE = random.Random(7).randbytes(2560)  # lz4 cannot shrink it
BIG = random.Random(8).randbytes(6000)


def test_exported_from_the_package() -> None:
    assert novacache.CacheManager is CacheManager
    assert novacache.Router is Router


def test_set_then_get_serves_the_live_object_from_l1(embedded: CacheManager) -> None:
    value = {"vm": "vm-1", "cpus": 4}
    report = embedded.set("vm:1", value, ttl=60)
    assert report.written == ("store", "local")
    assert report.ok
    assert embedded.get("vm:1") is value  # L1 holds the live object
    assert embedded.store is not None
    assert embedded.store.get("vm:1") is not None  # and L3 a frame


def test_miss_returns_default(embedded: CacheManager) -> None:
    assert embedded.get("nope") is None
    assert embedded.get("nope", 7) == 7
    assert embedded.stats.get("store", "misses") == 2


def test_store_hit_is_promoted_to_l1_with_the_remaining_ttl(
    embedded: CacheManager, clock: Clock
) -> None:
    embedded.set("k", [1, 2], ttl=10)
    assert embedded.local is not None
    clock.tick(4)
    embedded.local.clear()
    assert embedded.get("k") == [1, 2]  # from L3
    assert embedded.stats.get("store", "hits") == 1
    assert "k" in embedded.local  # promoted
    clock.tick(5.9)
    assert embedded.local.peek("k") == [1, 2]  # 0.1 s left of the 6 s that remained
    clock.tick(0.2)
    assert "k" not in embedded.local  # not the full 10 s again
    assert embedded.get("k") is None  # and gone below too


def test_an_expired_envelope_reads_as_a_miss(embedded: CacheManager, clock: Clock) -> None:
    # a frame whose envelope deadline passed, in a tier that keeps it forever
    assert embedded.store is not None
    frame = embedded.codec.encode("k", seal("old", 5, clock() - 10))
    embedded.store.set("k", frame, None)
    assert embedded.get("k") is None
    assert embedded.stats.get("store", "expired") == 1


@pytest.mark.parametrize(
    "frame",
    [b"garbage", Codec().encode("k", "not an envelope"), Codec().encode("k", [9, None, None, 1])],
    ids=["not-a-frame", "no-envelope", "unknown-version"],
)
def test_a_corrupt_frame_reads_as_a_miss_and_is_counted(
    embedded: CacheManager, frame: bytes
) -> None:
    assert embedded.store is not None
    embedded.store.set("k", frame)
    assert embedded.get("k", "default") == "default"
    assert embedded.get_many(["k"]) == {}
    assert embedded.stats.get("store", "corrupt") == 2


def test_an_unencodable_value_raises_before_anything_is_written(embedded: CacheManager) -> None:
    with pytest.raises(CodecError):
        embedded.set("k", object())
    assert embedded.get("k") is None


@pytest.mark.parametrize("ttl", [0, -1, math.nan])
def test_bad_ttl_is_refused(embedded: CacheManager, ttl: float) -> None:
    with pytest.raises(ValueError, match="ttl"):
        embedded.set("k", 1, ttl=ttl)


def test_infinite_ttl_and_default_ttl(tmp_path: Path, clock: Clock) -> None:
    store = SQLiteTier(tmp_path / "s.db", clock=clock)
    with CacheManager(
        local=LocalCache(10, timer=clock), store=store, clock=clock, default_ttl=5
    ) as m:
        m.set("default", 1)
        m.set("forever", 2, ttl=math.inf)
        clock.tick(6)
        assert m.get("default") is None
        assert m.get("forever") == 2
        assert store.ttl("forever") == math.inf


def test_delete_and_delete_many_and_clear_reach_every_tier(embedded: CacheManager) -> None:
    assert embedded.store is not None
    embedded.set_many({"a": 1, "b": 2, "c": 3})
    assert embedded.delete("a") is True
    assert embedded.delete("a") is False
    assert embedded.get("a") is None
    assert embedded.delete_many(["b", "zz"]) == 1
    assert embedded.get_many(["a", "b", "c"]) == {"c": 3}
    embedded.clear()
    assert embedded.get("c") is None
    assert list(embedded.store.scan()) == []


def test_router_local_only_remote_only_and_by_size(tmp_path: Path) -> None:
    router = Router([Route("local", prefix="session:"), Route("remote", min_size=2000)])
    store = Counting(SQLiteTier(tmp_path / "s.db"))
    with CacheManager(local=LocalCache(100), store=store, router=router) as m:
        assert m.local is not None
        m.set("session:1", "token")
        assert store.calls["set"] == 0  # local-only: nothing encoded or sent
        assert m.get("session:1") == "token"
        big = "x" * 50_000
        m.set("blob", NOISE)  # 2560 incompressible bytes: remote-only
        assert "blob" not in m.local
        assert store.tier.get("blob") is not None
        m.set("blob", "small")  # now routed to all: L1 gets it
        assert m.local.peek("blob") == "small"
        m.set("blob", big)  # lz4 shrinks it below min_size: routed to all again
        assert m.get("blob") == big
        m.local.clear()
        assert m.get("blob") == big  # promoted back from L3
        assert m.local.peek("blob") == big


def test_remote_only_route_removes_an_older_l1_value(tmp_path: Path) -> None:
    router = Router([Route("remote", min_size=1000)])
    with CacheManager(
        local=LocalCache(100), store=SQLiteTier(tmp_path / "s.db"), router=router
    ) as m:
        assert m.local is not None
        m.set("k", "small")
        assert m.local.peek("k") == "small"
        m.set("k", NOISE)
        assert "k" not in m.local  # no stale L1 value left behind
        assert m.get("k") == NOISE


def test_a_router_replaced_later_rules_the_l1_fill(tmp_path: Path) -> None:
    # The compiled fill after a read below keeps what it needs of the router in one
    # attribute: replacing the router must reach it.
    with CacheManager(local=LocalCache(100), store=SQLiteTier(tmp_path / "s.db")) as m:
        assert m.local is not None
        m.set("session:1", "v")
        m.local.clear()
        assert m.get("session:1") == "v"
        assert m.local.peek("session:1") == "v"  # no rules: filled
        m.router = Router([Route("remote", prefix="session:")])
        m.local.clear()
        assert m.get("session:1") == "v"
        assert "session:1" not in m.local  # routed away from L1: not filled
        m.router = Router()
        assert m.get("session:1") == "v"
        assert m.local.peek("session:1") == "v"


def test_route_validation() -> None:
    with pytest.raises(ValueError, match="prefix"):
        Route("all")
    with pytest.raises(ValueError, match="route"):
        Route("nowhere", prefix="x")  # type: ignore[arg-type]


def _three_tiers(server: Standalone, tmp_path: Path) -> tuple[CacheManager, Counting, Counting]:
    remote = Counting(RedisTier(server.url, prefix=prefix()))
    store = Counting(SQLiteTier(tmp_path / "s.db"))
    return CacheManager(local=LocalCache(1000), remote=remote, store=store), remote, store


def test_bulk_calls_make_one_call_per_tier(redis_standalone: Standalone, tmp_path: Path) -> None:
    m, remote, store = _three_tiers(redis_standalone, tmp_path)
    with m:
        assert m.local is not None
        items = {f"vm:{i}": {"id": i} for i in range(100)}
        m.set_many(items, ttl=60)
        assert (remote.calls["set_many"], store.calls["set_many"]) == (1, 1)
        m.local.clear()
        assert m.get_many(items) == items
        assert (remote.calls["get_many"], store.calls["get_many"]) == (1, 0)
        m.local.clear()
        remote.tier.clear()
        assert m.get_many([*items, "absent"]) == items
        assert (remote.calls["get_many"], store.calls["get_many"]) == (2, 1)
        assert remote.calls["set_many"] == 2  # L3 hits promoted to L2 in one call
        assert remote.tier.get("vm:7") is not None
        assert m.delete_many(items) == 100
        assert (remote.calls["delete_many"], store.calls["delete_many"]) == (1, 1)
        assert m.get_many(items) == {}


def test_remote_hit_is_promoted_to_l1_and_store_not_asked(
    redis_standalone: Standalone, tmp_path: Path
) -> None:
    m, remote, store = _three_tiers(redis_standalone, tmp_path)
    with m:
        assert m.local is not None
        m.set("k", {"a": 1}, ttl=30)
        m.local.clear()
        assert m.get("k") == {"a": 1}
        assert store.calls["get"] == 0
        assert m.stats.get("remote", "hits") == 1
        assert m.local.peek("k") == {"a": 1}
        remaining = remote.tier.ttl("k")
        assert remaining is not None
        assert 0 < remaining <= 30


def test_store_hit_is_promoted_to_redis_with_the_remaining_ttl(
    redis_standalone: Standalone, tmp_path: Path
) -> None:
    clock = Clock()
    remote = RedisTier(redis_standalone.url, prefix=prefix())
    store = SQLiteTier(tmp_path / "s.db", clock=clock)
    with CacheManager(local=LocalCache(10), remote=remote, store=store, clock=clock) as m:
        m.set("k", "v", ttl=100)
        clock.tick(60)
        remote.delete("k")
        assert m.local is not None
        m.local.clear()
        assert m.get("k") == "v"
        remaining = remote.ttl("k")
        assert remaining is not None
        assert 35 < remaining <= 40


def test_with_redis_down_get_never_raises_and_set_reports_per_tier(tmp_path: Path) -> None:
    seen: list[tuple[str, str]] = []
    breaker = CircuitBreaker(threshold=1, cooldown=60)
    remote = RedisTier(
        f"redis://127.0.0.1:{free_port()}/0", breaker=breaker, timeout=0.2, retries=0
    )
    store = SQLiteTier(tmp_path / "s.db")
    with CacheManager(
        local=LocalCache(100),
        remote=remote,
        store=store,
        on_error=lambda op, slot, exc: seen.append((op, slot)),
    ) as m:
        with pytest.raises(PartialWrite) as info:
            m.set("k", "v")
        assert set(info.value.failed) == {"remote"}
        assert isinstance(info.value.failed["remote"], TierUnavailable)
        assert info.value.written == ("store", "local")
        assert breaker.state == "open"
        assert m.local is not None
        m.local.clear()
        assert m.get("k") == "v"  # served from L3, no exception
        m.local.clear()
        assert m.get_many(["k", "x"]) == {"k": "v"}
        assert m.get_or_load("loaded", lambda: 42) == 42
        assert m.get("loaded") == 42
        assert m.stats.get("remote", "read_errors") >= 3
        assert ("set", "remote") in seen
        assert ("get", "remote") in seen
        m.on_write_error = "report"
        report = m.set("k2", "v2")
        assert set(report.failed) == {"remote"}
        assert not report.ok
        assert m.stats.write_errors >= 2


def test_writes_reach_redis_again_when_it_comes_back(redis_base: Path, tmp_path: Path) -> None:
    server = start_standalone(redis_base)
    try:
        breaker = CircuitBreaker(threshold=1, cooldown=0.2)
        remote = RedisTier(server.url, prefix=prefix(), breaker=breaker, timeout=0.2, retries=0)
        with CacheManager(
            local=LocalCache(100),
            remote=remote,
            store=SQLiteTier(tmp_path / "s.db"),
            on_write_error="report",
        ) as m:
            m.set("before", 1)
            server.server.kill()
            assert not m.set("during", 2).ok
            assert m.get("before") == 1  # L1
            server.server.start()

            def writes_reach_redis() -> bool:
                return m.set("after", 3).written == ("store", "remote", "local")

            wait_until(writes_reach_redis, 10, "writes to reach Redis again")
            assert remote.get("after") is not None
    finally:
        server.server.kill()


def test_cluster_as_remote(redis_cluster: Cluster, tmp_path: Path) -> None:
    remote = RedisTier(redis_cluster.url, prefix=prefix())
    with CacheManager(local=LocalCache(1000), remote=remote) as m:
        items = {f"user:{i}": i for i in range(50)}  # many slots
        m.set_many(items, ttl=60)
        assert m.local is not None
        m.local.clear()
        assert m.get_many(items) == items
        assert m.delete_many(list(items)[:10]) == 10
        assert len(m.get_many(items)) == 40


def test_sentinel_as_remote(redis_sentinel: SentinelSet, tmp_path: Path) -> None:
    remote = RedisTier(redis_sentinel.url, prefix=prefix())
    with CacheManager(
        local=LocalCache(100), remote=remote, store=SQLiteTier(tmp_path / "s.db")
    ) as m:
        m.set_many({"a": 1, "b": [2]}, ttl=60, tags=["t"])
        assert m.local is not None
        m.local.clear()
        assert m.get_many(["a", "b"]) == {"a": 1, "b": [2]}
        assert m.stats.get("remote", "hits") == 2
        assert m.invalidate_tags(["t"]) == 2
        assert m.get("a") is None


def test_postgres_as_store(postgres_dsn: str) -> None:
    store = PostgresTier(postgres_dsn, table=f"mgr_{prefix()[2:-1]}", timeout=2)
    with CacheManager(local=LocalCache(100), store=store) as m:
        m.set("vm:1", {"state": "running"}, ttl=60)
        assert m.local is not None
        m.local.clear()
        assert m.get("vm:1") == {"state": "running"}
        assert m.get_or_load("vm:2", lambda: {"state": "stopped"}) == {"state": "stopped"}
        m.local.clear()
        assert m.get_many(["vm:1", "vm:2"]) == {
            "vm:1": {"state": "running"},
            "vm:2": {"state": "stopped"},
        }
        m.clear()


def test_close_closes_the_tiers_below_once(tmp_path: Path) -> None:
    store = Counting(SQLiteTier(tmp_path / "s.db"))
    with CacheManager(local=LocalCache(10), store=store) as m:
        m.set("k", 1)
    m.close()
    assert store.calls["close"] == 1


def test_l1_only_manager_needs_no_codec_round_trip() -> None:
    with CacheManager(local=LocalCache(10)) as m:
        marker = object()  # not encodable: never encoded with no tier below
        m.set("k", marker)
        assert m.get("k") is marker
        assert m.get_or_load("j", lambda: 5) == 5


def test_a_store_that_refuses_an_entry_is_reported_and_keeps_no_old_value(
    tmp_path: Path,
) -> None:
    store = SQLiteTier(tmp_path / "s.db", maxbytes=4096)
    with CacheManager(local=LocalCache(10), store=store, on_write_error="report") as m:
        m.set("k", "small")
        report = m.set("k", BIG)  # 6 KB of frame: more than the store's budget
        assert set(report.failed) == {"store"}
        assert report.written == ("local",)
        assert store.get("k") is None  # the older value is not left behind
        assert m.get("k") == BIG  # L1 has the new one
        report = m.set_many({"a": 1, "b": BIG})
        assert set(report.failed) == {"store"}
        m.on_write_error = "raise"
        with pytest.raises(PartialWrite):
            m.set("k", BIG)
