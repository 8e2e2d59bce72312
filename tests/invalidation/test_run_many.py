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


def test_run_many_reports_each_as_if_run_one_after_another(
    make: Callable[[], CacheManager],
) -> None:
    m = make()
    engine = InvalidationEngine(m)
    sequential = [engine.run(t) for t in _fill(m, engine, "one/")]
    counts = dict(engine.stats.counts)
    together = engine.run_many(_fill(m, engine, "many/"))
    assert [_view(r, "many/") for r in together] == [_view(r, "one/") for r in sequential]
    assert together[0].dropped["local"] == 2  # a, b (absent: not there)
    assert together[1].keys >= {f"many/{k}" for k in ("b", "c", "d", "vm:1:m:cpu")}
    for key in ("a", "b", "c", "d", "vm:1:m:cpu", "scan:x"):
        assert m.get("many/" + key) is None
    after = engine.stats.counts
    for name in ("invalidations", "keys", "dependents", "pattern_lookups"):
        assert after[name] - counts[name] == counts[name], name


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


def test_a_redis_outage_fails_the_drop_and_the_ridden_message_in_every_report(
    tmp_path: Path, redis_base: Path
) -> None:
    """The bus rides in the Redis pipeline and Redis is unreachable: every report of the
    batch names the Redis tier and the bus; the store and L1 are done all the same."""
    from tiers.redis_servers import free_port

    url = f"redis://127.0.0.1:{free_port()}/0"
    ns = prefix()

    async def go() -> list[Any]:
        store = await AsyncSQLiteTier.open(tmp_path / "s.db")
        remote = AsyncRedisTier(url, prefix=ns, timeout=0.2, retries=0)
        bus = InvalidationBus(RedisTier(url, prefix=ns, timeout=0.2, retries=0))
        m = AsyncCacheManager(
            local=LocalCache(100), remote=remote, store=store, bus=bus, on_write_error="report"
        )
        try:
            engine = AsyncInvalidationEngine(m, dependencies=False)  # no index read first
            for key in ("a", "b"):
                await m.set(key, key)
                m.local[key] = key  # (the failed Redis write left L1 alone)
            reports = await engine.run_many([engine.targets(["a"]), engine.targets(["b"])])
            assert bus.publish_errors == 1
            assert "a" not in m.local
            assert "b" not in m.local
            return reports
        finally:
            await m.close()

    for report in asyncio.run(go()):
        assert set(report.errors) == {"remote", "bus"}
        assert report.dropped == {"store": 1, "local": 1}
