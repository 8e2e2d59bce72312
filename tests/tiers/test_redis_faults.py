"""Faults against real servers: a killed server (breaker opens, fails fast, recovers), a
frozen server (timeouts bound every call), a Sentinel failover and a killed Cluster
master (the tier serves again within a bounded time and never returns a wrong value).

Each test starts its own topology, since it breaks it; the shared session servers are
never touched here.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
import uuid
from pathlib import Path

import pytest

from novacache.breaker import CircuitBreaker
from novacache.errors import TierError, TierTimeout, TierUnavailable
from novacache.tiers.redis import AsyncRedisTier, RedisTier

from .redis_servers import (
    RedisProcess,
    start_cluster,
    start_sentinel_set,
    start_standalone,
    topology,
    wait_until,
)


def _prefix() -> str:
    return f"f-{uuid.uuid4().hex[:12]}:"


def _restart(server: RedisProcess) -> None:
    """Start a killed server again on the same port and directory (its data is gone)."""
    server.start()


def serve_again(tier: RedisTier, timeout: float) -> float:
    """Retry a write and a read until both succeed (bounded); seconds it took."""
    start = time.monotonic()
    deadline = start + timeout
    while time.monotonic() < deadline:
        try:
            tier.set("probe", b"up")
            if tier.get("probe") == b"up":
                return time.monotonic() - start
        except TierError:
            time.sleep(0.05)
    pytest.fail(f"the tier did not serve again within {timeout} s")


def test_killed_server_opens_breaker_fails_fast_and_recovers(redis_base: Path) -> None:
    changes: list[tuple[str, str]] = []
    breaker = CircuitBreaker(
        threshold=3, window=10, cooldown=1.0, on_state_change=lambda o, n: changes.append((o, n))
    )
    with topology(start_standalone, redis_base) as server:
        tier = RedisTier(server.url, prefix=_prefix(), breaker=breaker, retries=1)
        try:
            tier.set("k", b"v")
            server.server.kill()
            for _ in range(3):
                with pytest.raises(TierUnavailable):
                    tier.get("k")
            assert breaker.state == "open"
            assert changes == [("closed", "open")]

            # Open: every call fails at once, without touching the network.
            rejected = breaker.rejected
            durations = []
            for _ in range(200):
                start = time.perf_counter()
                with pytest.raises(TierUnavailable, match="circuit breaker open"):
                    tier.get("k")
                durations.append(time.perf_counter() - start)
            assert breaker.rejected == rejected + 200
            assert statistics.median(durations) < 0.005
            with pytest.raises(TierUnavailable):
                tier.set_many({"a": b"1"})

            _restart(server.server)
            serve_again(tier, timeout=10)
            assert breaker.state == "closed"
            assert ("half_open", "closed") in changes
            assert tier.get("k") is None  # the restarted server lost its data: a miss
        finally:
            tier.close()


def test_killed_server_async(redis_base: Path) -> None:
    with topology(start_standalone, redis_base) as server:

        async def go() -> None:
            breaker = CircuitBreaker(threshold=2, cooldown=5)
            async with AsyncRedisTier(server.url, prefix=_prefix(), breaker=breaker) as t:
                await t.set("k", b"v")
                server.server.kill()
                for _ in range(2):
                    with pytest.raises(TierUnavailable):
                        await t.get("k")
                assert breaker.state == "open"
                with pytest.raises(TierUnavailable, match="circuit breaker open"):
                    await t.get_many(["k"])

        asyncio.run(go())


def test_frozen_server_calls_are_bounded_by_timeouts(redis_base: Path) -> None:
    with topology(start_standalone, redis_base) as server:
        tier = RedisTier(server.url, prefix=_prefix(), timeout=0.2, connect_timeout=0.2, retries=1)
        outcome: list[BaseException | None] = []
        try:
            tier.set("k", b"v")
            server.server.pause()

            def call() -> None:
                try:
                    tier.get("k")
                    outcome.append(None)
                except BaseException as exc:
                    outcome.append(exc)

            for _ in range(2):
                worker = threading.Thread(target=call, daemon=True)
                worker.start()
                worker.join(timeout=10)  # a hang would leave the thread running
                assert not worker.is_alive()
            assert len(outcome) == 2
            assert all(isinstance(e, TierTimeout) for e in outcome), outcome
            assert isinstance(outcome[0], TimeoutError)  # TierTimeout is a TimeoutError

            async def async_call() -> None:
                t = AsyncRedisTier(server.url, prefix=tier.prefix, timeout=0.2, retries=0)
                try:
                    with pytest.raises(TierTimeout):
                        await asyncio.wait_for(t.get("k"), timeout=10)
                finally:
                    await t.close()

            asyncio.run(async_call())
        finally:
            server.server.resume()
        try:
            tier.breaker.reset()
            serve_again(tier, timeout=10)
            assert tier.get("k") == b"v"
        finally:
            tier.close()


def test_sentinel_failover_after_master_killed(redis_base: Path) -> None:
    with topology(start_sentinel_set, redis_base) as sset:
        old_master = sset.master.port
        tier = RedisTier(
            sset.url,
            prefix=_prefix(),
            breaker=CircuitBreaker(threshold=5, cooldown=0.2),
            timeout=0.3,
            connect_timeout=0.3,
        )
        written: dict[str, set[bytes]] = {}
        try:
            for i in range(20):
                tier.set(f"k{i}", b"before")
                written[f"k{i}"] = {b"before"}
            client = sset.master.client()
            try:
                assert client.execute_command("WAIT", 1, 1000) == 1
            finally:
                client.close()
            sset.master.kill()

            took = serve_again(tier, timeout=20)
            assert sset.current_master_port() == sset.replica.port != old_master
            # Nothing read back is a value that was never written under that key.
            got = tier.get_many(written)
            for key, value in got.items():
                assert value in written[key]
            assert got == {k: b"before" for k in written}  # replicated before the kill
            tier.set("k0", b"after")
            assert tier.get("k0") == b"after"
            assert took < 20
        finally:
            tier.close()


def test_cluster_master_killed(redis_base: Path) -> None:
    with topology(start_cluster, redis_base) as cluster:
        tier = RedisTier(
            cluster.url,
            prefix=_prefix(),
            breaker=CircuitBreaker(threshold=5, cooldown=0.2),
            timeout=0.3,
            connect_timeout=0.3,
        )
        try:
            items = {f"k{i}": f"v{i}".encode() for i in range(100)}
            tier.set_many(items)
            for master in cluster.masters():
                client = master.client()
                try:
                    assert client.execute_command("WAIT", 1, 1000) == 1
                finally:
                    client.close()
            victim = cluster.masters()[0]
            victim.kill()

            deadline = time.monotonic() + 25
            complete = False
            while time.monotonic() < deadline:
                try:
                    got = tier.get_many(items)
                except TierError:
                    time.sleep(0.05)
                    continue
                # Partial answers are fine while the cluster heals; wrong ones never are.
                assert all(items[k] == v for k, v in got.items())
                if got == items:
                    complete = True
                    break
            assert complete, "the cluster did not serve every key again within 25 s"
            assert victim.port not in {m.port for m in cluster.masters()}
            serve_again(tier, timeout=10)
            tier.set_many({"k1": b"new"})
            assert tier.get("k1") == b"new"
        finally:
            tier.close()


def test_sentinel_manual_failover_moves_writes_at_once(redis_base: Path) -> None:
    """After ``SENTINEL FAILOVER`` the old master keeps accepting writes for seconds and
    loses them; the tier follows ``+switch-master`` so its next write lands on the new
    master."""
    with topology(start_sentinel_set, redis_base) as sset:
        tier = RedisTier(sset.url, prefix=_prefix(), timeout=0.3, connect_timeout=0.3)
        try:
            tier.set("k", b"before")
            watch = tier._watch
            assert watch is not None
            wait_until(watch.subscribed.is_set, 5, "the failover watch to subscribe")
            old_master = sset.current_master_port()
            admin = sset.sentinels[0].client()
            try:
                admin.execute_command("SENTINEL", "FAILOVER", sset.service_name)
            finally:
                admin.close()
            wait_until(lambda: tier.stats["failovers"] >= 1, 20, "+switch-master", step=0.05)
            new_master = sset.current_master_port()
            assert new_master != old_master
            serve_again(tier, timeout=10)
            tier.set("k", b"after")
            target = sset.replica if sset.replica.port == new_master else sset.master
            client = target.client()
            try:
                assert client.get(tier.prefix + "k") == b"after"
            finally:
                client.close()
            assert tier.get("k") == b"after"
        finally:
            tier.close()


def test_sentinel_manual_failover_async(redis_base: Path) -> None:
    with topology(start_sentinel_set, redis_base) as sset:

        async def go() -> None:
            async with AsyncRedisTier(
                sset.url, prefix=_prefix(), timeout=0.3, connect_timeout=0.3
            ) as t:
                await t.set("k", b"before")
                watch = t._watch
                assert watch is not None
                await asyncio.wait_for(watch.subscribed.wait(), timeout=5)
                old_master = sset.current_master_port()
                admin = sset.sentinels[0].client()
                try:
                    admin.execute_command("SENTINEL", "FAILOVER", sset.service_name)
                finally:
                    admin.close()
                for _ in range(400):  # bounded: 20 s
                    if t.stats["failovers"] >= 1:
                        break
                    await asyncio.sleep(0.05)
                assert t.stats["failovers"] >= 1
                new_master = sset.current_master_port()
                assert new_master != old_master
                last: TierError | None = None
                for _ in range(200):  # bounded: until the new master takes writes
                    try:
                        await t.set("k", b"after")
                        break
                    except TierError as exc:
                        last = exc
                        await asyncio.sleep(0.05)
                else:
                    raise AssertionError(f"no write succeeded after the failover: {last!r}")
                target = sset.replica if sset.replica.port == new_master else sset.master
                client = target.client()
                try:
                    assert client.get(t.prefix + "k") == b"after"
                finally:
                    client.close()

        asyncio.run(go())
