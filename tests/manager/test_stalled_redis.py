"""A stalled Redis (SIGSTOP: it keeps its sockets and answers nothing) costs one manager
call at most one timeout of that tier (issue 18): once a tier timed out or was
unreachable in a call, the rest of the call (the second read inside the single-flight
lead, the promotion of a hit from L3, the write of the loaded value, the tag index on
the same tier) does not try it again, and the write reports it.

What is asserted is the number of timeouts paid, counted by the tier (``stats``) and by
its breaker (``failures``); the elapsed time is only checked against a loose bound of
two timeouts. The tier runs with ``retries=0`` so that one tier call is one socket
timeout. Each test starts its own server, since it freezes it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from novacache import LocalCache
from novacache.breaker import CircuitBreaker
from novacache.errors import TierTimeout
from novacache.manager import AsyncCacheManager, CacheManager
from novacache.tiers import AsyncRedisTier, AsyncSQLiteTier, RedisTier, SQLiteTier
from tiers.redis_servers import Standalone, start_standalone, topology

from ._support import prefix

TIMEOUT = 0.5


def _options() -> dict[str, object]:
    # A breaker that never opens here: every call really goes to the frozen server.
    return {
        "prefix": prefix(),
        "timeout": TIMEOUT,
        "connect_timeout": TIMEOUT,
        "retries": 0,
        "breaker": CircuitBreaker(threshold=1000),
    }


@pytest.fixture
def frozen(redis_base: Path) -> Iterator[Standalone]:
    """A server of its own; the test freezes it with ``server.server.pause()``."""
    with topology(start_standalone, redis_base) as server:
        try:
            yield server
        finally:
            server.server.resume()


class Paid:
    """The timeouts a Redis tier paid since the last ``take()``."""

    def __init__(self, tier: RedisTier | AsyncRedisTier) -> None:
        self.tier = tier
        self.timeouts = tier.stats["timeouts"]
        self.failures = tier.breaker.failures
        self.started = time.monotonic()

    def take(self) -> tuple[int, int, float]:
        """(timeouts counted by the tier, failures counted by the breaker, seconds)."""
        now = time.monotonic()
        out = (
            self.tier.stats["timeouts"] - self.timeouts,
            self.tier.breaker.failures - self.failures,
            now - self.started,
        )
        self.timeouts = self.tier.stats["timeouts"]
        self.failures = self.tier.breaker.failures
        self.started = now
        return out


def _one_timeout(paid: Paid) -> None:
    timeouts, failures, took = paid.take()
    assert (timeouts, failures) == (1, 1)
    assert took < 2 * TIMEOUT + 0.5  # loose: a second timeout would take this long


def test_sync_calls_pay_one_timeout_per_tier(frozen: Standalone, tmp_path: Path) -> None:
    remote = RedisTier(frozen.url, **_options())  # type: ignore[arg-type]
    errors: list[tuple[str, str]] = []
    with CacheManager(
        local=LocalCache(100),
        remote=remote,
        store=SQLiteTier(tmp_path / "l3.db"),
        on_write_error="report",
        on_error=lambda op, slot, exc: errors.append((op, slot)),
        repair_probe=None,  # the repairer's own pings would count here
    ) as m:
        m.set("in-l3", "stored", ttl=60)
        m.set("tagged", 0, tags=["t"])
        assert m.local is not None
        m.local.clear()
        frozen.server.pause()
        paid = Paid(remote)

        # The case: a cold key read twice (before and inside the lead) and
        # written once. Before the fix this paid three timeouts.
        assert m.get_or_load("cold", lambda: "loaded", ttl=60) == "loaded"
        _one_timeout(paid)
        assert errors == [("get", "remote"), ("set", "remote")]  # the skipped write is reported
        assert m.get("cold") == "loaded"  # L1 took it

        # A hit in L3 is not promoted to the tier that just timed out.
        assert m.get("in-l3") == "stored"
        _one_timeout(paid)
        assert m.stats.get("remote", "promote_errors") == 0

        # Writes: the tag index lives on the same tier, so its timeout spares the write.
        report = m.set("new", 1, tags=["t"])
        assert set(report.failed) == {"remote"}
        assert isinstance(report.failed["remote"], TierTimeout)
        assert report.written == ("store", "local")
        _one_timeout(paid)
        assert m.set_many({"a": 1, "b": 2}, tags=["t"]).written == ("store", "local")
        _one_timeout(paid)
        m.local.clear()
        assert m.get_many(["a", "b", "in-l3"]) == {"a": 1, "b": 2, "in-l3": "stored"}
        _one_timeout(paid)
        assert m.invalidate_tags(["t"]) >= 1  # the SQLite index still answers
        _one_timeout(paid)
        with_lease = m.get_or_load("leased", lambda: "mine", ttl=60, lease=5)
        assert with_lease == "mine"
        _one_timeout(paid)
    frozen.server.resume()


def test_async_calls_pay_one_timeout_per_tier(frozen: Standalone, tmp_path: Path) -> None:
    async def main() -> None:
        remote = AsyncRedisTier(frozen.url, **_options())  # type: ignore[arg-type]
        store = AsyncSQLiteTier(tmp_path / "l3.db")
        async with AsyncCacheManager(
            local=LocalCache(100),
            remote=remote,
            store=store,
            on_write_error="report",
            repair_probe=None,  # the repairer's own pings would count here
        ) as m:
            await m.set("in-l3", "stored", ttl=60)
            await m.set("tagged", 0, tags=["t"])
            assert m.local is not None
            m.local.clear()
            frozen.server.pause()
            paid = Paid(remote)

            async def load() -> str:
                return "loaded"

            assert await m.get_or_load("cold", load, ttl=60) == "loaded"
            _one_timeout(paid)
            assert await m.get("in-l3") == "stored"
            _one_timeout(paid)
            report = await m.set("new", 1, tags=["t"])
            assert set(report.failed) == {"remote"}
            _one_timeout(paid)
            assert (await m.set_many({"a": 1}, tags=["t"])).written == ("store", "local")
            _one_timeout(paid)
            m.local.clear()
            assert await m.get_many(["a", "in-l3"]) == {"a": 1, "in-l3": "stored"}
            _one_timeout(paid)
            assert await m.invalidate_tags(["t"]) >= 1
            _one_timeout(paid)
            assert await m.get_or_load("leased", load, ttl=60, lease=5) == "loaded"
            _one_timeout(paid)
            frozen.server.resume()

    asyncio.run(asyncio.wait_for(main(), 60))
