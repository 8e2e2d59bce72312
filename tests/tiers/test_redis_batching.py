"""AsyncRedisTier.get batches concurrent gets into one MGET: the same answers as one GET
each, failures shared by every waiter, nobody left waiting (a cancelled caller, a closed
tier, a server gone), on a real redis-server."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from novacache.errors import TierError, TierUnavailable
from novacache.tiers.redis import AsyncRedisTier

from .redis_servers import Cluster, Standalone, start_standalone, topology


def _prefix() -> str:
    return f"b-{uuid.uuid4().hex[:12]}:"


def _commands(server: Standalone) -> dict[str, int]:
    stats = server.server.client().info("commandstats")
    return {name: int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("get", "mget")}


def test_concurrent_gets_share_round_trips_and_answer_as_gets(
    redis_standalone: Standalone,
) -> None:
    async def main() -> None:
        tier = AsyncRedisTier(redis_standalone.url, prefix=_prefix())
        try:
            await tier.set_many({f"k{i}": f"v{i}".encode() for i in range(0, 300, 2)})
            before = _commands(redis_standalone)
            keys = [f"k{i % 300}" for i in range(2000)]  # repeats, and every other absent
            got = await asyncio.gather(*(tier.get(k) for k in keys))
            after = _commands(redis_standalone)
            expected = [f"v{int(k[1:])}".encode() if int(k[1:]) % 2 == 0 else None for k in keys]
            assert got == expected
            round_trips = (after["get"] - before["get"]) + (after["mget"] - before["mget"])
            assert after["mget"] > before["mget"]  # batches happened
            assert round_trips < len(keys) // 10
        finally:
            await tier.close()

    asyncio.run(main())


def test_a_lone_get_is_a_plain_get(redis_standalone: Standalone) -> None:
    async def main() -> None:
        tier = AsyncRedisTier(redis_standalone.url, prefix=_prefix())
        try:
            await tier.set("k", b"v")
            before = _commands(redis_standalone)
            for _ in range(20):
                assert await tier.get("k") == b"v"
            after = _commands(redis_standalone)
            assert after["get"] - before["get"] == 20
            assert after["mget"] == before["mget"]
        finally:
            await tier.close()

    asyncio.run(main())


def test_batches_in_a_cluster_answer_as_gets(redis_cluster: Cluster) -> None:
    async def main() -> None:
        tier = AsyncRedisTier(redis_cluster.url, prefix=_prefix())
        try:
            await tier.set_many({f"k{i}": f"v{i}".encode() for i in range(100)})
            keys = [f"k{i}" for i in range(150)]
            got = await asyncio.gather(*(tier.get(k) for k in keys))
            assert got == [f"v{i}".encode() if i < 100 else None for i in range(150)]
        finally:
            await tier.close()

    asyncio.run(main())


def test_a_cancelled_waiter_does_not_cancel_the_others(redis_standalone: Standalone) -> None:
    async def main() -> None:
        tier = AsyncRedisTier(redis_standalone.url, prefix=_prefix())
        try:
            await tier.set_many({f"k{i}": b"x" for i in range(50)})
            tasks = [asyncio.ensure_future(tier.get(f"k{i % 50}")) for i in range(200)]
            await asyncio.sleep(0)
            for task in tasks[1::3]:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            for i, result in enumerate(results):
                if i % 3 == 1 and isinstance(result, asyncio.CancelledError):
                    continue
                assert result == b"x"
        finally:
            await tier.close()

    asyncio.run(main())


def test_a_failing_batch_fails_every_waiter_and_none_hangs(redis_base: Path) -> None:
    async def main(server: Standalone) -> None:
        tier = AsyncRedisTier(server.url, prefix=_prefix(), retries=0, timeout=0.5)
        try:
            await tier.set("k", b"v")
            server.server.kill()
            results = await asyncio.wait_for(
                asyncio.gather(*(tier.get(f"k{i}") for i in range(100)), return_exceptions=True),
                timeout=10,
            )
            assert all(isinstance(r, TierError) for r in results), results[:3]
        finally:
            await tier.close()

    with topology(start_standalone, redis_base) as server:
        asyncio.run(main(server))


def test_closing_the_tier_releases_waiting_gets(redis_base: Path) -> None:
    async def main(server: Standalone) -> None:
        tier = AsyncRedisTier(server.url, prefix=_prefix(), retries=0, timeout=5)
        await tier.set("k", b"v")
        server.server.pause()  # the first get waits on the server; the others batch
        try:
            tasks = [asyncio.ensure_future(tier.get("k")) for _ in range(50)]
            await asyncio.sleep(0.05)
            await asyncio.wait_for(tier.close(), timeout=10)
            results = await asyncio.wait_for(
                asyncio.gather(*tasks, return_exceptions=True), timeout=10
            )
            assert all(isinstance(r, (TierUnavailable, TierError, bytes)) for r in results)
            assert any(isinstance(r, TierUnavailable) for r in results)
        finally:
            server.server.resume()

    with topology(start_standalone, redis_base) as server:
        asyncio.run(main(server))


@pytest.mark.parametrize("n", [1, 2, 64])
def test_duplicate_keys_in_one_batch(redis_standalone: Standalone, n: int) -> None:
    async def main() -> None:
        tier = AsyncRedisTier(redis_standalone.url, prefix=_prefix())
        try:
            await tier.set("same", b"v")
            got = await asyncio.gather(*(tier.get("same") for _ in range(n)))
            assert got == [b"v"] * n
        finally:
            await tier.close()

    asyncio.run(main())
