"""Stale-while-revalidate, XFetch early refresh and the cross-process lease of
get_or_load (fake clock for the deadlines; bounded waits for the threads)."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from novacache import LocalCache
from novacache.breaker import CircuitBreaker
from novacache.manager import AsyncCacheManager, CacheManager
from novacache.tiers import AsyncRedisTier, AsyncSQLiteTier, RedisTier, SQLiteTier
from tiers.redis_servers import Standalone, free_port, wait_until

from ._support import Clock, prefix


def test_stale_value_served_while_one_caller_refreshes(
    embedded: CacheManager, clock: Clock
) -> None:
    assert embedded.get_or_load("k", lambda: "v1", ttl=10, stale_ttl=20) == "v1"
    clock.tick(12)  # stale now, within the grace period
    assert embedded.local is not None
    assert "k" not in embedded.local  # L1 only ever holds fresh values
    release = threading.Event()

    def slow_refresh() -> str:
        release.wait(10)
        return "v2"

    def never() -> str:
        raise AssertionError("a second refresh ran")

    with ThreadPoolExecutor(1) as pool:
        refresher = pool.submit(embedded.get_or_load, "k", slow_refresh, ttl=10, stale_ttl=20)
        wait_until(lambda: embedded._flights.in_flight("k"), 5, "the refresh to start")
        # everyone else gets the stale value at once
        assert embedded.get_or_load("k", never, ttl=10, stale_ttl=20) == "v1"
        assert embedded.stats.stale_served == 1
        release.set()
        assert refresher.result(timeout=10) == "v2"
    assert embedded.stats.refreshes == 1
    assert embedded.get_or_load("k", never, ttl=10, stale_ttl=20) == "v2"


def test_never_served_past_the_grace_period(embedded: CacheManager, clock: Clock) -> None:
    embedded.get_or_load("k", lambda: "v1", ttl=10, stale_ttl=20)
    clock.tick(31)
    assert embedded.get("k") is None
    assert embedded.get_or_load("k", lambda: "v2", ttl=10, stale_ttl=20) == "v2"
    assert embedded.stats.refreshes == 0  # a plain miss, not a refresh


def test_plain_get_returns_a_stale_value_within_the_grace(
    embedded: CacheManager, clock: Clock
) -> None:
    embedded.get_or_load("k", lambda: "v1", ttl=10, stale_ttl=20)
    clock.tick(15)
    assert embedded.get("k") == "v1"
    assert embedded.local is not None
    assert "k" not in embedded.local


def _slow(value: str) -> str:
    time.sleep(0.002)  # XFetch's delta: the loader's duration
    return value


def test_xfetch_refreshes_early_with_a_large_beta(embedded: CacheManager) -> None:
    # beta=1e9: the random head start dwarfs any ttl (except with probability 2**-53)
    assert embedded.get_or_load("eager", lambda: _slow("a"), ttl=60, beta=1e9) == "a"
    assert embedded.get_or_load("eager", lambda: _slow("b"), ttl=60, beta=1e9) == "b"
    assert embedded.stats.refreshes == 1
    # beta=0: never early
    assert embedded.get_or_load("calm", lambda: _slow("a"), ttl=60, beta=0) == "a"
    assert embedded.get_or_load("calm", lambda: _slow("b"), ttl=60, beta=0) == "a"


def test_freshness_options_are_checked(embedded: CacheManager) -> None:
    with pytest.raises(ValueError, match="ttl"):
        embedded.get_or_load("k", lambda: 1, ttl=10, stale_ttl=0)
    with pytest.raises(ValueError, match="beta"):
        embedded.get_or_load("k", lambda: 1, ttl=10, beta=-1)
    with pytest.raises(ValueError, match="lease"):
        embedded.get_or_load("k", lambda: 1, ttl=10, lease=0)


def test_lease_makes_the_loader_run_once_across_managers(
    redis_standalone: Standalone, tmp_path: Path
) -> None:
    """Two managers with their own single-flight (as two processes have) and 16 threads
    each on one cold key: the Redis lease lets one loader run in all."""
    ns = prefix()
    managers = [
        CacheManager(local=LocalCache(10), remote=RedisTier(redis_standalone.url, prefix=ns))
        for _ in range(2)
    ]
    calls = 0
    lock = threading.Lock()
    barrier = threading.Barrier(32)

    def loader() -> str:
        nonlocal calls
        with lock:
            calls += 1
        time.sleep(0.2)
        return "loaded"

    def worker(i: int) -> str:
        barrier.wait(10)
        return managers[i % 2].get_or_load("cold", loader, ttl=60, lease=5)

    try:
        with ThreadPoolExecutor(32) as pool:
            results = list(pool.map(worker, range(32)))
        assert results == ["loaded"] * 32
        assert calls == 1
        assert managers[0].remote is not None
        raw = managers[0].remote._client
        assert list(raw.scan_iter(match=managers[0].remote.prefix.encode() + b"\xfflease:*")) == []
    finally:
        for m in managers:
            m.close()


def test_lease_with_redis_down_loads_locally(tmp_path: Path) -> None:
    remote = RedisTier(
        f"redis://127.0.0.1:{free_port()}/0",
        breaker=CircuitBreaker(threshold=1, cooldown=60),
        timeout=0.2,
        retries=0,
    )
    with CacheManager(
        local=LocalCache(10), remote=remote, store=SQLiteTier(tmp_path / "s.db")
    ) as m:
        assert m.get_or_load("k", lambda: 7, ttl=60, lease=5) == 7
        assert m.get("k") == 7


def test_async_stale_while_revalidate(tmp_path: Path) -> None:
    clock = Clock()

    async def main() -> None:
        store = AsyncSQLiteTier(tmp_path / "s.db", clock=clock)
        local = LocalCache(10, timer=clock)
        async with AsyncCacheManager(local=local, store=store, clock=clock) as m:

            async def first() -> str:
                return "v1"

            assert await m.get_or_load("k", first, ttl=10, stale_ttl=20) == "v1"
            clock.tick(12)
            gate = asyncio.Event()

            async def refresh() -> str:
                await gate.wait()
                return "v2"

            async def never() -> str:
                raise AssertionError("a second refresh ran")

            refresher = asyncio.create_task(m.get_or_load("k", refresh, ttl=10, stale_ttl=20))
            while not m._flights.in_flight("k"):
                await asyncio.sleep(0.001)
            assert await m.get_or_load("k", never, ttl=10, stale_ttl=20) == "v1"
            assert m.stats.stale_served == 1
            gate.set()
            assert await refresher == "v2"
            assert await m.get_or_load("k", never, ttl=10, stale_ttl=20) == "v2"
            clock.tick(31)
            assert await m.get("k") is None  # never past the grace period

    asyncio.run(asyncio.wait_for(main(), 30))


def test_async_lease_across_managers(redis_standalone: Standalone) -> None:
    async def main() -> None:
        ns = prefix()
        managers = [
            AsyncCacheManager(
                local=LocalCache(10), remote=AsyncRedisTier(redis_standalone.url, prefix=ns)
            )
            for _ in range(2)
        ]
        calls = 0

        async def loader() -> str:
            nonlocal calls
            calls += 1
            await asyncio.sleep(0.2)
            return "loaded"

        try:
            results = await asyncio.gather(
                *(managers[i % 2].get_or_load("cold", loader, ttl=60, lease=5) for i in range(16))
            )
            assert results == ["loaded"] * 16
            assert calls == 1
        finally:
            for m in managers:
                await m.close()

    asyncio.run(asyncio.wait_for(main(), 30))
