"""``run_many``: several invalidations run together (what the management API does with
the forced invalidations that arrive while one is running), each with its own report,
equal to what running them one after another reports; the bus message rides in the
Redis tier's pipeline when the bus is on that server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from manager._support import prefix
from novacache import LocalCache
from novacache.invalidation import AsyncInvalidationEngine, InvalidationEngine, Targets
from novacache.manager import AsyncCacheManager, CacheManager, InvalidationBus
from novacache.tiers import AsyncRedisTier, AsyncSQLiteTier, RedisTier
from tiers.redis_servers import Standalone, wait_until

from .test_engine import BACKENDS, make

__all__ = ["BACKENDS", "make"]


def _fill(m: CacheManager, engine: InvalidationEngine, ns: str) -> list[Targets]:
    """Keys under ``ns`` and three invalidations of them that overlap: a key two of them
    name, a pattern instance, a dependent, a tag (where the tiers keep tags), an ad-hoc
    pattern (SCAN) and an absent key."""
    engine.watch(ns + "vm:{id}:m:*")
    for key in ("a", "b", "c", "d", "vm:1:m:cpu", "vm:1:m:mem", "scan:x"):
        m.set(ns + key, key.upper(), ttl=60)
    tags = [ns + "grp"] if m._indexes() else []
    m.set(ns + "t1", 1, ttl=60, tags=tags)
    engine.depends(ns + "d", on=[ns + "c"])
    return [
        engine.targets([ns + "a", ns + "b", ns + "absent"]),
        engine.targets([ns + "b", ns + "c"], patterns=[ns + "vm:1:m:*"]),
        engine.targets([], patterns=[ns + "scan:*"], tags=tags),
    ]


def _view(report: Any, ns: str) -> tuple[Any, ...]:
    keys = sorted(k.removeprefix(ns) for k in report.keys)
    return (keys, report.dropped, sorted(report.errors), report.truncated)


def _as_one_after_another(
    make: Callable[[], CacheManager],
    fill: Callable[[CacheManager, InvalidationEngine, str], list[Targets]],
    gone: tuple[str, ...],
    counters: tuple[str, ...],
) -> list[Any]:
    """The invalidations ``fill`` makes, run one after another (keys under ``one/``)
    and then together with ``run_many`` (the same under ``many/``): the reports agree,
    the keys ``gone`` are gone under ``many/``, and ``run_many`` added to each of
    ``counters`` what the runs one after another did. ``run_many``'s reports."""
    m = make()
    engine = InvalidationEngine(m)
    sequential = [engine.run(t) for t in fill(m, engine, "one/")]
    counts = dict(engine.stats.counts)
    together = engine.run_many(fill(m, engine, "many/"))
    assert [_view(r, "many/") for r in together] == [_view(r, "one/") for r in sequential]
    for key in gone:
        assert m.get("many/" + key) is None
    after = engine.stats.counts
    for name in counters:
        assert after[name] - counts[name] == counts[name], name
    return together


def test_run_many_reports_each_as_if_run_one_after_another(
    make: Callable[[], CacheManager],
) -> None:
    together = _as_one_after_another(
        make,
        _fill,
        ("a", "b", "c", "d", "vm:1:m:cpu", "scan:x"),
        ("invalidations", "keys", "dependents", "pattern_lookups"),
    )
    assert together[0].dropped["local"] == 2  # a, b (absent: not there)
    assert together[1].keys >= {f"many/{k}" for k in ("b", "c", "d", "vm:1:m:cpu")}


def test_run_many_of_nothing_and_of_empty_targets(make: Callable[[], CacheManager]) -> None:
    m = make()
    engine = InvalidationEngine(m)
    assert engine.run_many([]) == []
    (report,) = engine.run_many([Targets()])
    assert (report.keys, report.dropped, report.ok) == (frozenset(), {}, True)


@pytest.mark.parametrize("same_prefix", [True, False])
def test_the_bus_message_rides_in_the_redis_pipeline(
    redis_standalone: Standalone, same_prefix: bool
) -> None:
    """With the bus on the Redis tier's server and prefix, one batch publishes one
    message from the tier's own pipeline (no worker thread); otherwise the bus publishes
    it (from a worker thread). Either way the other process's L1 drops the keys."""
    ns = prefix()
    url = redis_standalone.url
    peer_remote = RedisTier(url, prefix=ns)
    bus_ns = ns if same_prefix else prefix()
    peer = CacheManager(
        local=LocalCache(100),
        remote=peer_remote,
        bus=InvalidationBus(RedisTier(url, prefix=bus_ns), timeout=5.0),
    )

    async def go() -> None:
        bus = InvalidationBus(RedisTier(url, prefix=bus_ns), timeout=5.0)  # no flush under load
        m = AsyncCacheManager(local=LocalCache(100), remote=AsyncRedisTier(url, prefix=ns), bus=bus)
        try:
            engine = AsyncInvalidationEngine(m)
            await asyncio.to_thread(
                wait_until, lambda: bus.healthy and peer.bus.healthy, 10, "buses"
            )  # type: ignore[union-attr]
            assert peer.bus is not None
            heard = peer.bus.received
            for key in ("a", "b", "c"):
                await m.set(key, key)
            # (each set's own bus message reaches the peer first: it would drop its copy)
            await asyncio.to_thread(wait_until, lambda: peer.bus.received >= heard + 3, 5, "sets")  # type: ignore[union-attr]
            for key in ("a", "b", "c"):
                assert peer.get(key) == key
            assert m.local is not None
            assert peer.local is not None
            assert {"a", "b", "c"} <= set(m.local) & set(peer.local)
            before = bus.published
            threads: list[Any] = []
            original = asyncio.to_thread

            async def spy(fn: Any, *args: Any) -> Any:
                threads.append(fn)
                return await original(fn, *args)

            asyncio.to_thread = spy  # type: ignore[assignment]
            try:
                reports = await engine.run_many(
                    [engine.targets(["a", "b"]), engine.targets(["b", "c"])]
                )
            finally:
                asyncio.to_thread = original
            assert [r.dropped for r in reports] == [
                {"remote": 2, "local": 2},
                {"remote": 1, "local": 1},
            ]
            assert all(r.ok for r in reports)
            assert bus.published == before + 1  # one message for the batch
            published_by_bus = [
                fn for fn in threads if getattr(fn, "__name__", "") == "publish_keys"
            ]
            assert bool(published_by_bus) is not same_prefix
            await asyncio.to_thread(
                wait_until,
                lambda: not {"a", "b", "c"} & set(peer.local),
                5,
                "the peer's L1",  # type: ignore[arg-type]
            )
        finally:
            await m.close()

    try:
        asyncio.run(go())
    finally:
        peer.close()


def _batch_while_redis_is_down(tmp_path: Path, **engine_options: Any) -> tuple[list[Any], int, int]:
    """Two one-key invalidations run together (``run_many``) by an asyncio engine
    (``engine_options``) over L1, a Redis tier nobody listens on, a SQLite store and a
    bus on that Redis: L1 is dropped all the same. The reports, then the bus's publish
    errors and the engine's index errors as they stood before the manager closed."""
    from tiers.redis_servers import free_port

    url = f"redis://127.0.0.1:{free_port()}/0"
    ns = prefix()

    async def go() -> tuple[list[Any], int, int]:
        store = await AsyncSQLiteTier.open(tmp_path / "s.db")
        remote = AsyncRedisTier(url, prefix=ns, timeout=0.2, retries=0)
        bus = InvalidationBus(RedisTier(url, prefix=ns, timeout=0.2, retries=0))
        m = AsyncCacheManager(
            local=LocalCache(100), remote=remote, store=store, bus=bus, on_write_error="report"
        )
        try:
            engine = AsyncInvalidationEngine(m, **engine_options)
            for key in ("a", "b"):
                await m.set(key, key)
                m.local[key] = key  # (the failed Redis write left L1 alone)
            reports = await engine.run_many([engine.targets(["a"]), engine.targets(["b"])])
            assert "a" not in m.local
            assert "b" not in m.local
            return reports, bus.publish_errors, engine.stats.counts["index_errors"]
        finally:
            await m.close()

    return asyncio.run(go())


def test_a_redis_outage_fails_the_drop_and_the_ridden_message_in_every_report(
    tmp_path: Path, redis_base: Path
) -> None:
    """The bus rides in the Redis pipeline and Redis is unreachable: every report of the
    batch names the Redis tier and the bus; the store and L1 are done all the same."""
    # No dependency index: no index read before the drop.
    reports, publish_errors, _ = _batch_while_redis_is_down(tmp_path, dependencies=False)
    assert publish_errors == 1
    for report in reports:
        assert set(report.errors) == {"remote", "bus"}
        assert report.dropped == {"store": 1, "local": 1}


def _chain(m: CacheManager, engine: InvalidationEngine, ns: str) -> list[Targets]:
    """Keys with dependents one and two levels deep, and three invalidations of them."""
    for key in ("c", "d", "e", "x", "y", "z"):
        m.set(ns + key, key.upper(), ttl=60)
    engine.depends(ns + "d", on=[ns + "c"])  # c <- d <- e: depth 1 and 2
    engine.depends(ns + "e", on=[ns + "d"])
    engine.depends(ns + "y", on=[ns + "x"])  # x <- y: depth 1
    return [
        engine.targets([ns + "c"]),
        engine.targets([ns + "x", ns + "absent"]),
        engine.targets([ns + "z"]),
    ]


def test_run_many_follows_dependents_two_levels_deep_as_run_does(
    make: Callable[[], CacheManager],
) -> None:
    together = _as_one_after_another(
        make, _chain, ("c", "d", "e", "x", "y", "z"), ("invalidations", "keys", "dependents")
    )
    assert together[0].keys == {"many/c", "many/d", "many/e"}
    assert together[1].keys == {"many/x", "many/y", "many/absent"}
    assert together[0].dropped["local"] == 3


def test_run_many_counts_a_key_once_where_two_invalidations_reach_it(
    make: Callable[[], CacheManager],
) -> None:
    """One invalidation reaches ``d`` as a dependent, another names it: both reports
    list it, one of them counts it (the one that names it: it is dropped first)."""
    m = make()
    engine = InvalidationEngine(m)
    for key in ("c", "d", "e"):
        m.set(key, key, ttl=60)
    engine.depends("d", on=["c"])
    engine.depends("e", on=["d"])
    first, second = engine.run_many([engine.targets(["c"]), engine.targets(["d"])])
    assert first.keys == {"c", "d", "e"}
    assert second.keys == {"d", "e"}
    for slot in set(first.dropped) | set(second.dropped):
        assert first.dropped.get(slot, 0) + second.dropped.get(slot, 0) == 3, slot
    assert m.get_many(["c", "d", "e"]) == {}


def test_a_batch_without_dependents_is_one_round_trip(redis_standalone: Standalone) -> None:
    """The index read of a batch (its keys' dependents) rides in the tombstones' round
    trip, with the bus message: one call of the Redis tier, and the index is never read
    on its own; the same for one invalidation (``run``)."""
    ns = prefix()
    url = redis_standalone.url

    async def go() -> None:
        bus = InvalidationBus(RedisTier(url, prefix=ns), timeout=5.0)
        remote = AsyncRedisTier(url, prefix=ns)
        m = AsyncCacheManager(local=LocalCache(100), remote=remote, bus=bus)
        try:
            engine = AsyncInvalidationEngine(m)
            await asyncio.to_thread(wait_until, lambda: bus.healthy, 10, "the bus")
            for key in ("a", "b", "c"):
                await m.set(key, key)
            calls: list[tuple[int, int]] = []
            reads: list[Any] = []
            (index,) = engine.indexes
            bury, take = remote.tombstone_groups, index.take

            async def spy(groups: Any, frame: bytes, ttl: float, **kw: Any) -> Any:
                calls.append((len(groups), len(kw.get("riders", ()))))
                return await bury(groups, frame, ttl, **kw)

            async def spy_take(*args: Any) -> Any:
                reads.append(args)
                return await take(*args)

            remote.tombstone_groups = spy  # type: ignore[method-assign]
            index.take = spy_take
            published = bus.published
            reports = await engine.run_many([engine.targets([k]) for k in ("a", "b", "x")])
            assert calls == [(3, 1)]
            assert reads == []
            assert bus.published == published + 1
            assert [r.dropped for r in reports] == [
                {"remote": 1, "local": 1},
                {"remote": 1, "local": 1},
                {"remote": 0, "local": 0},
            ]
            assert all(r.ok for r in reports)
            report = await engine.run(engine.targets(["c"]))
            assert calls[1:] == [(1, 1)]
            assert reads == []
            assert report.dropped == {"remote": 1, "local": 1}
            assert await m.get_many(["a", "b", "c"]) == {}
        finally:
            await m.close()

    asyncio.run(go())


def test_a_redis_outage_fails_the_riding_index_read_too(tmp_path: Path, redis_base: Path) -> None:
    """Redis unreachable while the index read rides with the tombstones: every report
    names the Redis tier and the bus, the index read counts as failed, the store and L1
    are done all the same."""
    reports, _, index_errors = _batch_while_redis_is_down(tmp_path)
    assert index_errors >= 1
    for report in reports:
        assert set(report.errors) == {"remote", "bus"}
        assert report.dropped == {"store": 1, "local": 1}
