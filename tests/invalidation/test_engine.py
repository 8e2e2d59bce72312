"""The synchronous engine over every shared tier (real redis-server, SQLite file, real
PostgreSQL, L1 alone): rules and emit, patterns indexed at write time, dependencies,
TTL rules, the SCAN fallback, reports and counts."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from manager._support import Clock, live, prefix
from novacache import LocalCache
from novacache.errors import ConfigurationError, MissingField, PartialWrite
from novacache.invalidation import InvalidationEngine, Targets, Template
from novacache.manager import CacheManager, InvalidationBus
from novacache.tiers import PostgresTier, RedisTier, SQLiteTier
from tiers.redis_servers import Cluster, Standalone, wait_until

BACKENDS = ["local", "sqlite", "redis", "redis+sqlite", "postgres"]


SHARED = [b for b in BACKENDS if b != "local"]  # the backends with a tier below L1


@pytest.fixture(params=BACKENDS)
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], CacheManager]]:
    """A factory of managers that share their tiers (L1 alone: one manager)."""
    kind = request.param
    ns = prefix()
    table = f"inv_{uuid.uuid4().hex[:10]}"
    made: list[CacheManager] = []

    def build() -> CacheManager:
        remote = store = None
        if "redis" in kind:
            url = request.getfixturevalue("redis_standalone").url
            remote = RedisTier(url, prefix=ns)
        if "sqlite" in kind:
            store = SQLiteTier(tmp_path / "store.db")
        if kind == "postgres":
            store = PostgresTier(request.getfixturevalue("postgres_dsn"), table=table, timeout=5)
        m = CacheManager(local=LocalCache(10_000), remote=remote, store=store)  # type: ignore[arg-type]
        made.append(m)
        return m

    yield build
    for m in made:
        m.close()


def _vm_rules(engine: InvalidationEngine) -> None:
    engine.rule(
        "vm.migrated",
        keys=["vm:{vm_id}:state", "node:{src}", "node:{dst}"],
        patterns=["vm:{vm_id}:metrics:*"],
        tags=["vm:{vm_id}"],
    )


def test_emit_drops_what_the_rules_name_and_nothing_else(
    make: Callable[[], CacheManager],
) -> None:
    m = make()
    engine = InvalidationEngine(m)
    _vm_rules(engine)
    assert m.invalidation is engine
    m.set("vm:1:state", "running")
    m.set("vm:1:metrics:cpu", 0.5)
    m.set_many({"vm:1:metrics:mem": 1, "vm:1:metrics:disk": 2})
    m.set("vm:1:config", "cfg", tags=["vm:1"])
    m.set("vm:2:metrics:cpu", 0.7)  # another VM
    m.set("vm:10:metrics:cpu", 0.9)  # a longer id with the same digits
    m.set("node:a", "A")
    m.set("node:b", "B")
    m.set("node:c", "C")
    report = engine.emit("vm.migrated", vm_id=1, src="a", dst="b")
    gone = {"vm:1:state", "vm:1:metrics:cpu", "vm:1:metrics:mem", "vm:1:metrics:disk",
            "vm:1:config", "node:a", "node:b"}  # fmt: skip
    assert report.keys == gone
    assert report.ok, report.errors
    assert report.scanned == 0
    everything = [*sorted(gone), "vm:2:metrics:cpu", "vm:10:metrics:cpu", "node:c"]
    assert m.get_many(everything) == {"vm:2:metrics:cpu": 0.7, "vm:10:metrics:cpu": 0.9,
                                      "node:c": "C"}  # fmt: skip
    for slot, tier in m._below:
        assert live(tier.get_many(sorted(gone))) == {}, slot
        assert report.dropped[slot] == len(gone)
    assert report.dropped["local"] == len(gone)
    counts = engine.stats.counts
    assert counts["emits"] == 1
    assert counts["keys"] == len(gone)
    assert counts["scans"] == 0
    assert engine.stats.by["vm.migrated#1"] == {"events": 1, "keys": len(gone)}


def test_a_missing_placeholder_raises_before_anything_is_dropped(
    make: Callable[[], CacheManager],
) -> None:
    m = make()
    engine = InvalidationEngine(m)
    _vm_rules(engine)
    m.set("vm:1:state", "running")
    m.set("vm:1:metrics:cpu", 0.5)
    with pytest.raises(MissingField, match="dst"):
        engine.emit("vm.migrated", vm_id=1, src="a")
    assert m.get_many(["vm:1:state", "vm:1:metrics:cpu"]) == {
        "vm:1:state": "running",
        "vm:1:metrics:cpu": 0.5,
    }
    assert engine.stats.counts["emits"] == 0


@pytest.mark.parametrize("make", SHARED, indirect=True)  # an L1 alone is not shared
def test_another_manager_on_the_same_tiers_finds_what_this_one_indexed(
    make: Callable[[], CacheManager],
) -> None:
    writer, other = make(), make()
    InvalidationEngine(writer).watch("vm:{vm_id}:metrics:*")
    engine = InvalidationEngine(other)
    engine.rule("vm.gone", patterns=["vm:{vm_id}:metrics:*"])
    writer.set("vm:3:metrics:cpu", 1)
    report = engine.emit("vm.gone", vm_id=3)
    assert report.keys == {"vm:3:metrics:cpu"}
    assert live(writer._below[0][1].get("vm:3:metrics:cpu")) is None


def test_dependencies_are_transitive_guarded_against_cycles_and_bounded(
    make: Callable[[], CacheManager],
) -> None:
    m = make()
    engine = InvalidationEngine(m, max_depth=3)
    for key in "abcdefg":
        m.set(key, key.upper(), ttl=60)
    engine.depends("b", on=["a"])
    engine.depends("c", on=["b"])
    engine.depends("a", on=["c"])  # a cycle
    engine.depends("d", on=["c"])
    engine.depends("e", on=["d"])  # depth 4 from a: beyond the bound
    report = engine.invalidate(["a"])
    assert report.keys == {"a", "b", "c", "d"}
    assert report.truncated  # e was not followed
    assert m.get("e") == "E"
    assert m.get("f") == "F"
    assert engine.stats.counts["dependents"] == 3
    assert engine.stats.counts["depth_limited"] == 1


def test_dependency_edges_and_the_keys_of_a_pattern_come_from_one_read(
    make: Callable[[], CacheManager],
) -> None:
    m = make()
    engine = InvalidationEngine(m)
    engine.rule("tenant.changed", patterns=["tenant:{t}:*"])
    m.set("tenant:1:a", 1)
    m.set("report:1", "r")
    engine.depends("report:1", on=["tenant:1:a"])
    report = engine.emit("tenant.changed", t=1)
    assert report.keys == {"tenant:1:a", "report:1"}
    assert m.get("report:1") is None


def test_ttl_rules_give_writes_without_ttl_their_ttl(make: Callable[[], CacheManager]) -> None:
    m = make()
    InvalidationEngine(m, ttl_rules={"vm:": 300, "vm:*:metrics:*": 15})
    m.set("vm:1:state", 1)
    m.set("vm:1:metrics:cpu", 2)
    m.set("vm:1:pinned", 3, ttl=1000)  # a TTL given wins
    m.set("other", 4)
    m.set_many({"vm:2:state": 5, "vm:2:metrics:cpu": 6, "other:2": 7})
    for slot, tier in m._below:
        for key, want in (("vm:1:state", 300), ("vm:1:metrics:cpu", 15),
                          ("vm:1:pinned", 1000), ("vm:2:state", 300),
                          ("vm:2:metrics:cpu", 15)):  # fmt: skip
            left = tier.ttl(key)
            assert left is not None, (slot, key)
            assert want - 5 < left <= want, (slot, key, left)
        assert tier.ttl("other") == float("inf")
        assert tier.ttl("other:2") == float("inf")
    assert m.get_many(["vm:2:state", "vm:2:metrics:cpu", "other:2"]) == {
        "vm:2:state": 5,
        "vm:2:metrics:cpu": 6,
        "other:2": 7,
    }
    assert engine_of(m).stats.counts["ttl_ruled"] == 4


def engine_of(m: CacheManager) -> InvalidationEngine:
    engine = m.invalidation
    assert isinstance(engine, InvalidationEngine)
    return engine


def test_an_unregistered_pattern_falls_back_to_a_bounded_counted_scan(
    make: Callable[[], CacheManager],
) -> None:
    m = make()
    engine = InvalidationEngine(m, scan_limit=5)
    engine.watch("vm:{vm_id}:*")
    for i in range(8):
        m.set(f"host:{i}", i)
    m.set("vm:1:x", 1)
    report = engine.invalidate(patterns=["vm:1:*"])  # an instance: the index
    assert report.keys == {"vm:1:x"}
    assert report.scanned == 0
    report = engine.invalidate(patterns=["host:*"])
    assert report.truncated
    assert len(report.keys) >= 5  # at most 5 per tier (two tiers: up to 10)
    assert report.scanned >= 5
    left = set(m.get_many([f"host:{i}" for i in range(8)]))
    assert left == {f"host:{i}" for i in range(8)} - report.keys
    report = engine.invalidate(patterns=["host:*"])
    assert report.keys == left
    assert not report.truncated
    assert m.get_many([f"host:{i}" for i in range(8)]) == {}
    counts = engine.stats.counts
    assert counts["scans"] == 2
    assert counts["scan_truncated"] >= 1  # per tier that hit the limit


# L1 alone has no tier to scan (its keys are indexed as written)
@pytest.mark.parametrize("make", SHARED, indirect=True)
def test_backfill_indexes_keys_written_before_the_rule(
    make: Callable[[], CacheManager],
) -> None:
    m = make()
    engine = InvalidationEngine(m)
    m.set("vm:1:metrics:cpu", 1, ttl=60)
    m.set("vm:1:metrics:mem", 2)
    m.set("vm:1:state", 3)
    m.set("vm:2:metrics:cpu", 4)
    engine.rule("vm.migrated", patterns=["vm:{vm_id}:metrics:*"])
    assert engine.emit("vm.migrated", vm_id=1).keys == set()  # written before the rule
    with pytest.raises(ConfigurationError):
        engine.backfill("vm:*")
    assert engine.backfill("vm:{vm_id}:metrics:*") == 3
    assert engine.stats.counts["backfilled"] == 3
    report = engine.emit("vm.migrated", vm_id=1)
    assert report.keys == {"vm:1:metrics:cpu", "vm:1:metrics:mem"}
    assert m.get("vm:2:metrics:cpu") == 4
    assert m.get("vm:1:state") == 3


def test_a_custom_strategy_names_targets_for_an_event(make: Callable[[], CacheManager]) -> None:
    class TenantStrategy:
        name = "tenant"

        def targets(self, event: str, fields: dict[str, Any]) -> Targets | None:
            if event != "tenant.deleted":
                return None
            return Targets(keys={f"tenant:{fields['tenant']}"},
                           patterns={f"tenant:{fields['tenant']}:*"})  # fmt: skip

        def patterns(self) -> list[Template]:
            return [Template("tenant:{t}:*", pattern=True)]

    m = make()
    engine = InvalidationEngine(m, strategies=[TenantStrategy()])
    m.set("tenant:9", 1)
    m.set("tenant:9:users", 2)
    m.set("tenant:8:users", 3)
    report = engine.emit("tenant.deleted", tenant=9)
    assert report.keys == {"tenant:9", "tenant:9:users"}
    assert engine.stats.by["tenant"]["events"] == 1
    with pytest.raises(ConfigurationError):
        engine.add_strategy(object())  # type: ignore[arg-type]


def test_one_engine_per_manager_of_its_kind(make: Callable[[], CacheManager]) -> None:
    m = make()
    InvalidationEngine(m)
    with pytest.raises(ConfigurationError, match="already"):
        InvalidationEngine(m)
    with pytest.raises(ConfigurationError):
        InvalidationEngine(object())


def test_a_key_that_is_no_str_gets_the_manager_s_own_error(
    make: Callable[[], CacheManager],
) -> None:
    m = make()
    bare = [type(e) for e in _set_errors(m)]
    InvalidationEngine(m, ttl_rules={"vm:": 60}).watch("vm:{x}:*")
    assert [type(e) for e in _set_errors(m)] == bare


def _set_errors(m: CacheManager) -> list[BaseException | None]:
    out: list[BaseException | None] = []
    for key in (123, b"vm:1:x", None):
        try:
            m.set(key, 1)  # type: ignore[arg-type]
            out.append(None)
        except Exception as exc:
            out.append(exc)
    return out


def test_a_manager_without_an_engine_is_unchanged(make: Callable[[], CacheManager]) -> None:
    m = make()
    assert m.invalidation is None
    assert m._on_write is None
    m.set("vm:1:metrics:cpu", 1)
    assert m.get("vm:1:metrics:cpu") == 1


# -- Redis: what the index holds, no SCAN per event, other processes' L1 -----------------


def _admin(server: Standalone) -> redis.Redis:
    return redis.Redis.from_url(server.url)


def _calls(client: redis.Redis, command: str) -> int:
    stats = client.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


def test_an_event_reads_the_index_and_never_scans(redis_standalone: Standalone) -> None:
    admin = _admin(redis_standalone)
    remote = RedisTier(redis_standalone.url, prefix=prefix())
    with CacheManager(local=LocalCache(1000), remote=remote) as m:
        engine = InvalidationEngine(m)
        engine.rule("vm.migrated", patterns=["vm:{vm_id}:metrics:*"])
        m.set_many({f"vm:{i}:metrics:cpu": i for i in range(50)})
        scans, keys = _calls(admin, "scan"), _calls(admin, "keys")
        report = engine.emit("vm.migrated", vm_id=7)
        assert report.keys == {"vm:7:metrics:cpu"}
        assert (_calls(admin, "scan"), _calls(admin, "keys")) == (scans, keys)


def test_redis_index_sets_expire_with_their_keys(redis_standalone: Standalone) -> None:
    admin = _admin(redis_standalone)
    ns = prefix()
    remote = RedisTier(redis_standalone.url, prefix=ns)
    with CacheManager(local=LocalCache(1000), remote=remote) as m:
        engine = InvalidationEngine(m)
        engine.rule("e", patterns=["vm:{vm_id}:*"])
        engine.depends("b", on=["a"], ttl=0.3)
        m.set("vm:1:x", 1, ttl=0.3)
        sets = list(admin.scan_iter(match=ns.encode() + b"\xffinv:*"))
        assert len(sets) == 2
        for name in sets:
            assert 0 < admin.pttl(name) <= 1300  # the key's TTL and a second of slack
        wait_until(lambda: not list(admin.scan_iter(match=ns.encode() + b"\xffinv:*")), 5,
                   "the index sets to expire")  # fmt: skip
        # A set written without expiry and then with: the expired members are trimmed
        m.set("vm:2:a", 1)
        m.set("vm:2:b", 1, ttl=0.05)
        (name,) = admin.scan_iter(match=ns.encode() + b"\xffinv:*")
        assert admin.pttl(name) == -1  # holds a key without expiry

        def trimmed() -> bool:
            m.set("vm:2:c", 1, ttl=60)  # a write trims the members that expired
            return set(admin.zrange(name, 0, -1)) == {b"vm:2:a", b"vm:2:c"}

        wait_until(trimmed, 5, "vm:2:b's entry to be trimmed")


def test_the_index_survives_a_server_that_lost_its_scripts(
    redis_standalone: Standalone,
) -> None:
    admin = _admin(redis_standalone)
    remote = RedisTier(redis_standalone.url, prefix=prefix())
    with CacheManager(local=LocalCache(1000), remote=remote) as m:
        engine = InvalidationEngine(m)
        engine.rule("e", patterns=["vm:{vm_id}:*"])
        m.set("vm:1:a", 1)
        admin.script_flush()  # as after a restart
        m.set("vm:1:b", 2)
        admin.script_flush()
        assert engine.emit("e", vm_id=1).keys == {"vm:1:a", "vm:1:b"}


def test_an_invalidation_shortens_the_entries_it_read(redis_standalone: Standalone) -> None:
    admin = _admin(redis_standalone)
    ns = prefix()
    remote = RedisTier(redis_standalone.url, prefix=ns)
    with CacheManager(local=LocalCache(1000), remote=remote) as m:
        engine = InvalidationEngine(m, grace=0.2)
        engine.rule("e", patterns=["vm:{vm_id}:*"])
        m.set("vm:1:x", 1)  # no expiry
        (name,) = admin.scan_iter(match=ns.encode() + b"\xffinv:*")
        assert admin.pttl(name) == -1
        engine.emit("e", vm_id=1)
        assert 0 < admin.pttl(name) <= 200
        wait_until(lambda: not admin.exists(name), 5, "the read entries to expire")


def test_emit_reaches_every_process_l1_through_the_bus(redis_standalone: Standalone) -> None:
    ns = prefix()

    def coherent() -> CacheManager:
        remote = RedisTier(redis_standalone.url, prefix=ns)
        m = CacheManager(local=LocalCache(1000), remote=remote, bus=InvalidationBus(remote))
        wait_until(lambda: m.bus is not None and m.bus.healthy, 10, "the bus")
        return m

    a, b = coherent(), coherent()
    try:
        engine = InvalidationEngine(a)
        engine.rule("vm.migrated", keys=["vm:{vm_id}:state"], patterns=["vm:{vm_id}:m:*"])
        InvalidationEngine(b).watch("vm:{vm_id}:m:*")
        b.set("vm:1:m:cpu", 1)
        b.set("vm:1:state", "s")
        assert b.local is not None
        assert "vm:1:m:cpu" in b.local
        report = engine.emit("vm.migrated", vm_id=1)
        assert report.ok
        assert b.bus is not None
        assert a.bus is not None
        wait_until(lambda: "vm:1:m:cpu" not in b.local and "vm:1:state" not in b.local,  # type: ignore[operator]
                   5, "b's L1 to drop the keys")  # fmt: skip
        assert b.get("vm:1:m:cpu") is None
    finally:
        a.close()
        b.close()


def test_a_redis_outage_is_reported_per_tier_and_the_rest_is_done(
    tmp_path: Path, redis_base: Path
) -> None:
    from tiers.redis_servers import free_port

    remote = RedisTier(f"redis://127.0.0.1:{free_port()}/0", prefix=prefix(), timeout=0.2,
                       retries=0)  # fmt: skip
    store = SQLiteTier(tmp_path / "s.db")
    with CacheManager(local=LocalCache(100), remote=remote, store=store,
                      on_write_error="report") as m:  # fmt: skip
        engine = InvalidationEngine(m)
        engine.rule("e", keys=["k:{x}"], patterns=["p:{x}:*"])
        report = m.set("p:1:a", 1)
        assert "remote" in report.failed  # the index write failed there: reported
        m.set("k:1", 1)
        assert store.get("p:1:a") is not None
        out = engine.emit("e", x=1)
        assert set(out.errors) >= {"remote"}
        assert out.keys == {"k:1", "p:1:a"}  # found in the SQLite index
        assert live(store.get("p:1:a")) is None
        assert live(store.get("k:1")) is None
        assert out.dropped["store"] == 2
        assert "remote" not in out.dropped
        assert engine.stats.tiers["remote"]["errors"] == 1


def test_depends_raises_partial_write_when_no_index_takes_the_edges(redis_base: Path) -> None:
    from tiers.redis_servers import free_port

    remote = RedisTier(f"redis://127.0.0.1:{free_port()}/0", prefix=prefix(), timeout=0.2,
                       retries=0)  # fmt: skip
    with CacheManager(local=LocalCache(100), remote=remote) as m:
        engine = InvalidationEngine(m)
        with pytest.raises(PartialWrite):
            engine.depends("b", on=["a"], ttl=5)
        with pytest.raises(TypeError):
            engine.depends("b", on="a")


# -- the embedded default on a fake clock -------------------------------------------------


def test_sqlite_index_rows_expire_with_their_keys(tmp_path: Path, clock: Clock) -> None:
    store = SQLiteTier(tmp_path / "s.db", clock=clock)
    with CacheManager(local=LocalCache(100, timer=clock), store=store, clock=clock) as m:
        engine = InvalidationEngine(m)
        engine.rule("e", patterns=["vm:{vm_id}:*"])
        m.set("vm:1:short", 1, ttl=5)
        m.set("vm:1:long", 2, ttl=50)
        clock.tick(10)
        report = engine.emit("e", vm_id=1)
        assert report.keys == {"vm:1:long"}
        (index,) = engine.indexes
        for i in range(300):  # writes purge expired rows now and then
            m.set(f"vm:2:{i}", i, ttl=1)
        clock.tick(100)
        for i in range(300):
            m.set(f"vm:3:{i}", i, ttl=1)
        assert index.size() < 400


def test_the_local_index_stays_bounded_by_l1() -> None:
    with CacheManager(local=LocalCache(50)) as m:
        engine = InvalidationEngine(m)
        engine.rule("e", patterns=["vm:{vm_id}:*"])
        for i in range(5000):
            m.set(f"vm:{i % 7}:{i}", i)
        (index,) = engine.indexes
        assert index.size() <= 4 * 64 + 2 * 50
        report = engine.emit("e", vm_id=3)
        assert report.keys
        assert all(k.startswith("vm:3:") for k in report.keys)
        assert not any(k.startswith("vm:3:") for k in m.local)  # type: ignore[union-attr]


def test_patterns_and_dependencies_on_a_cluster(redis_cluster: Cluster) -> None:
    remote = RedisTier(redis_cluster.url, prefix=prefix())
    with CacheManager(local=LocalCache(1000), remote=remote) as m:
        engine = InvalidationEngine(m)
        engine.rule("org.changed", patterns=["org:{org}:user:*"])
        m.set_many({f"org:1:user:{i}": i for i in range(30)})  # many slots
        m.set_many({f"org:2:user:{i}": i for i in range(5)})
        m.set("summary", "s")
        engine.depends("summary", on=["org:1:user:3"])
        report = engine.emit("org.changed", org=1)
        assert report.ok, report.errors
        assert report.keys == {f"org:1:user:{i}" for i in range(30)} | {"summary"}
        assert report.dropped["remote"] == 31
        assert m.get_many([f"org:1:user:{i}" for i in range(30)]) == {}
        assert len(m.get_many([f"org:2:user:{i}" for i in range(5)])) == 5
