"""The invalidation bus notices a frozen Redis within its documented bound (issue 21,
item 3).

A SIGSTOPped server keeps its sockets and answers nothing: a heartbeat published to it
blocks for the tier's timeouts and retries. The bus promises that L1 is flushed when its
own heartbeat has not come back for ``timeout`` seconds; before the fix the watchdog
published synchronously and only then checked the deadline, so loss was seen after the
tier's timeouts (here 3 x 1 s), not after ``timeout``. The bound asserted is
``timeout + heartbeat`` (the watchdog looks every ``heartbeat``) plus ``SLACK`` for a
loaded machine, far below the tier's timeouts. When the server runs again, heartbeats
come back, the bus is healthy and L1 is flushed once more.

Both managers use the same (synchronous) bus; the asyncio manager attaches it too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from novacache import LocalCache
from novacache.breaker import CircuitBreaker
from novacache.manager import AsyncCacheManager, CacheManager, InvalidationBus
from novacache.tiers import AsyncRedisTier, RedisTier
from tiers.redis_servers import Standalone, start_standalone, topology, wait_until

from ._support import prefix

HEARTBEAT = 0.05
TIMEOUT = 0.25  # the bus's defaults
TIER_TIMEOUT = 1.0  # each of the tier's 3 attempts waits this long on a frozen server
SLACK = 0.5  # scheduling delay allowed on a loaded machine (the bug took >= 1 s more)


@pytest.fixture
def frozen(redis_base: Path) -> Iterator[Standalone]:
    """A server of its own; the test freezes it."""
    with topology(start_standalone, redis_base) as server:
        try:
            yield server
        finally:
            server.server.resume()


def _slow_tier(url: str, ns: str) -> RedisTier:
    # A breaker that never opens: every heartbeat really waits on the frozen server.
    return RedisTier(
        url,
        prefix=ns,
        timeout=TIER_TIMEOUT,
        connect_timeout=TIER_TIMEOUT,
        retries=2,
        breaker=CircuitBreaker(threshold=1000),
    )


def _freeze_and_recover(server: Standalone, bus: InvalidationBus, local: LocalCache) -> None:
    """Freeze the server; the bus must go down (and flush ``local``) within the bound;
    resume it; the bus must come back and flush once more."""
    wait_until(lambda: bus.healthy, 10, "the bus to be healthy")
    assert "k" in local
    flushes = bus.flushes
    seen: list[float] = []

    def down() -> bool:
        if bus.healthy:
            return False
        seen.append(time.monotonic())
        return True

    started = time.monotonic()
    server.server.pause()
    try:
        wait_until(down, 10, "the bus to notice the frozen server", step=0.002)
        took = seen[0] - started
        assert took <= TIMEOUT + HEARTBEAT + SLACK, f"loss seen after {took:.3f} s"
        assert "k" not in local  # flushed
        assert bus.flushes == flushes + 1
    finally:
        server.server.resume()
    wait_until(lambda: bus.healthy, 10, "the bus to recover")
    assert bus.flushes == flushes + 2  # flushed again on recovery


def test_sync_manager_sees_a_frozen_server_in_time(frozen: Standalone) -> None:
    remote = _slow_tier(frozen.url, prefix())
    bus = InvalidationBus(remote, heartbeat=HEARTBEAT, timeout=TIMEOUT)
    local = LocalCache(100)
    with CacheManager(local=local, remote=remote, bus=bus) as m:
        wait_until(lambda: bus.healthy, 10, "the bus to be healthy")
        m.set("k", "v")
        _freeze_and_recover(frozen, bus, local)
        m.set("k2", "v2")
        assert local.peek("k2") == "v2"  # L1 is filled again


def test_async_manager_sees_a_frozen_server_in_time(frozen: Standalone) -> None:
    ns = prefix()
    bus = InvalidationBus(_slow_tier(frozen.url, ns), heartbeat=HEARTBEAT, timeout=TIMEOUT)
    local = LocalCache(100)

    async def main() -> None:
        remote = AsyncRedisTier(frozen.url, prefix=ns, timeout=TIER_TIMEOUT)
        async with AsyncCacheManager(local=local, remote=remote, bus=bus) as m:
            check: Callable[[], bool] = lambda: bus.healthy  # noqa: E731
            await asyncio.to_thread(wait_until, check, 10, "the bus to be healthy")
            await m.set("k", "v")
            await asyncio.to_thread(_freeze_and_recover, frozen, bus, local)
            await m.set("k2", "v2")
            assert local.peek("k2") == "v2"

    asyncio.run(asyncio.wait_for(main(), 60))
