"""The synchronous Redis tier's command lane (novacache.tiers._lane): connections kept out
of the pool for get/set/delete, within ``max_connections``, safe across threads, forks,
reply errors, a server restart and close."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import random
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from novacache.errors import TierError
from novacache.tiers._async.lane import AsyncCommandLane
from novacache.tiers._sync.lane import CommandLane, lane_size
from novacache.tiers.redis import AsyncRedisTier, RedisTier

from .redis_servers import Standalone, start_standalone, topology


def _prefix() -> str:
    return f"lane-{uuid.uuid4().hex[:12]}:"


def _clients(raw: Any, name: str) -> int:
    """How many connections the server has from clients named ``name``."""
    return sum(1 for c in raw.client_list() if c.get("name") == name)


@pytest.fixture
def raw(redis_standalone: Standalone) -> Iterator[Any]:
    client = redis_standalone.server.client()
    yield client
    client.close()


def test_lane_sizes() -> None:
    assert [lane_size(n) for n in (0, 1, 2, 4, 8, 16, 32, 64, 1000)] == [0, 0, 1, 1, 2, 4, 8, 8, 8]


def test_the_tier_sends_single_key_commands_on_the_lane(redis_standalone: Standalone) -> None:
    tier = RedisTier(redis_standalone.url, prefix=_prefix())
    try:
        tier.set("k", b"v", 60)
        assert isinstance(tier._exec, CommandLane)
        assert tier.get("k") == b"v"
        assert tier.delete("k") is True
        assert tier.get("k") is None
        assert tier.delete("k") is False
    finally:
        tier.close()


def test_many_threads_stay_within_max_connections(redis_standalone: Standalone, raw: Any) -> None:
    """8 threads on a tier of 4 connections: the lane takes 1 of them, the other threads
    go through the pool; every answer is right and the server never sees more than 4."""
    name = f"lane{uuid.uuid4().hex[:8]}"
    tier = RedisTier(redis_standalone.url, prefix=_prefix(), max_connections=4, client_name=name)
    errors: list[BaseException] = []
    peak = 0
    stop = threading.Event()

    def work(i: int) -> None:
        try:
            for n in range(300):
                key = f"t{i}:{n % 7}"
                tier.set(key, f"{i}:{n}".encode(), 60)
                assert tier.get(key) == f"{i}:{n}".encode()
                if n % 5 == 0:
                    tier.delete(key)
        except BaseException as exc:  # reported below
            errors.append(exc)

    def watch() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _clients(raw, name))
            stop.wait(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        stop.set()
        watcher.join()
        tier.clear()
        tier.close()
    assert errors == []
    assert 1 <= peak <= 4


def _forked_child(tier: RedisTier, parent_id: int, out: Any) -> None:
    try:
        child_id = tier._exec("CLIENT", "ID")
        tier.set("from-child", b"c", 60)
        out.put((child_id, tier.get("from-child")))
    except BaseException as exc:  # reported to the parent
        out.put(("error", repr(exc)))


def test_a_forked_child_never_uses_the_parents_lane_connections(
    redis_standalone: Standalone,
) -> None:
    tier = RedisTier(redis_standalone.url, prefix=_prefix())
    try:
        tier.set("k", b"v", 60)
        parent_id = tier._exec("CLIENT", "ID")
        ctx = multiprocessing.get_context("fork")
        out = ctx.Queue()
        child = ctx.Process(target=_forked_child, args=(tier, parent_id, out))
        child.start()
        child_id, value = out.get(timeout=30)
        child.join(30)
        assert child.exitcode == 0
        assert child_id != "error", value
        assert child_id != parent_id  # its own connection, not the parent's socket
        assert value == b"c"
        # the parent's lane connection is intact
        assert tier._exec("CLIENT", "ID") == parent_id
        assert tier.get("from-child") == b"c"
    finally:
        tier.clear()
        tier.close()


def test_a_reply_error_is_raised_and_the_connection_kept(
    redis_standalone: Standalone, raw: Any
) -> None:
    prefix = _prefix()
    tier = RedisTier(redis_standalone.url, prefix=prefix)
    try:
        tier.set("ok", b"v", 60)
        conn_id = tier._exec("CLIENT", "ID")
        raw.rpush(f"{prefix}list", b"x")  # GET on a list: WRONGTYPE
        with pytest.raises(TierError):
            tier.get("list")
        assert tier.get("ok") == b"v"
        assert tier._exec("CLIENT", "ID") == conn_id
    finally:
        raw.delete(f"{prefix}list")
        tier.clear()
        tier.close()


def test_close_hands_the_lane_connections_back(redis_standalone: Standalone, raw: Any) -> None:
    name = f"lane{uuid.uuid4().hex[:8]}"
    tier = RedisTier(redis_standalone.url, prefix=_prefix(), client_name=name)
    tier.set("k", b"v", 60)
    assert _clients(raw, name) >= 1
    tier.clear()
    tier.close()
    assert _clients(raw, name) == 0


def test_the_lane_reconnects_after_a_restart(redis_base: Any) -> None:
    """A restarted server: the lane's connection is dead; the next command reconnects
    (the tier's retries) and answers right."""
    with topology(start_standalone, redis_base) as topo:
        tier = RedisTier(topo.url, prefix=_prefix(), retries=3, backoff_base=0.05)
        try:
            tier.set("k", b"v", 60)
            topo.server.kill()
            topo.server.start()
            tier.set("k", b"w", 60)
            assert tier.get("k") == b"w"
        finally:
            tier.close()


def test_set_once_and_delete_once_are_never_retried(redis_base: Any) -> None:
    """The strong model's writes: after a restart the lane's connection is dead, and a
    write sent on it fails (its outcome unknown) instead of being sent again, where
    ``set`` retries; the next one goes on a new connection."""
    with topology(start_standalone, redis_base) as topo:
        tier = RedisTier(topo.url, prefix=_prefix(), retries=3, backoff_base=0.05)
        try:
            tier.set_once("k", b"v", 60)
            assert tier.get("k") == b"v"
            topo.server.kill()
            topo.server.start()
            with pytest.raises(TierError):
                tier.set_once("k", b"w", 60)
            tier.set_once("k", b"x", 60)
            assert tier.get("k") == b"x"
            ttl = tier.ttl("k")
            assert ttl is not None
            assert 0 < ttl <= 60
            tier.set_once("forever", b"y")
            assert tier.ttl("forever") == float("inf")
            assert tier.delete_once("k") is True
            assert tier.delete_once("k") is False
        finally:
            tier.close()


def test_the_asyncio_set_once_is_never_retried(redis_base: Any) -> None:
    async def main(topo: Standalone) -> None:
        tier = AsyncRedisTier(topo.url, prefix=_prefix(), retries=3, backoff_base=0.05)
        try:
            await tier.set_once("k", b"v", 60)
            topo.server.kill()
            topo.server.start()
            with pytest.raises(TierError):
                await tier.set_once("k", b"w", 60)
            await tier.set_once("k", b"x", 60)
            assert await tier.get("k") == b"x"
            assert await tier.delete_once("k") is True
        finally:
            await tier.close()

    with topology(start_standalone, redis_base) as topo:
        asyncio.run(main(topo))


# -- the asyncio tier --------------------------------------------------------------------


def test_the_asyncio_tier_sends_single_key_commands_on_the_lane(
    redis_standalone: Standalone,
) -> None:
    async def main() -> None:
        tier = AsyncRedisTier(redis_standalone.url, prefix=_prefix())
        try:
            await tier.set("k", b"v", 60)
            assert isinstance(tier._exec, AsyncCommandLane)
            assert await tier.get("k") == b"v"
            assert await tier.delete("k") is True
            assert await tier.get("k") is None
        finally:
            await tier.close()

    asyncio.run(main())


def test_cancelled_commands_never_leave_a_reply_behind(redis_standalone: Standalone) -> None:
    """Gets and sets cancelled at every point of their round trip: every later answer is
    the one of its own command (a reply left in a reused connection would shift them).
    Values of ~180 KB make a reply take several reads, so cancels land inside them."""

    async def main() -> None:
        tier = AsyncRedisTier(redis_standalone.url, prefix=_prefix(), max_connections=8)
        try:
            keys = {f"k{i}": f"value-{i}-".encode() * 20000 for i in range(20)}
            await tier.set_many(keys, 60)
            rng = random.Random(7)
            for _ in range(300):
                key = rng.choice(list(keys))
                op = tier.get(key) if rng.random() < 0.7 else tier.set(key, keys[key], 60)
                task = asyncio.ensure_future(op)
                for _ in range(rng.randrange(6)):
                    await asyncio.sleep(0)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                probe = rng.choice(list(keys))
                assert await tier.get(probe) == keys[probe]
            answers = await asyncio.gather(*(tier.get(k) for k in keys))
            assert answers == list(keys.values())
        finally:
            await tier.clear()
            await tier.close()

    asyncio.run(main())


def test_many_tasks_stay_within_max_connections(redis_standalone: Standalone, raw: Any) -> None:
    name = f"alane{uuid.uuid4().hex[:8]}"

    async def main() -> int:
        tier = AsyncRedisTier(
            redis_standalone.url, prefix=_prefix(), max_connections=4, client_name=name
        )
        peak = 0
        try:

            async def work(i: int) -> None:
                nonlocal peak
                for n in range(50):
                    key = f"t{i}:{n % 5}"
                    await tier.set(key, f"{i}:{n}".encode(), 60)
                    assert await tier.get(key) == f"{i}:{n}".encode()
                    if n % 10 == 0:
                        peak = max(peak, _clients(raw, name))

            await asyncio.gather(*(work(i) for i in range(40)))
        finally:
            await tier.clear()
            await tier.close()
        return peak

    peak = asyncio.run(main())
    assert 1 <= peak <= 4
    assert _clients(raw, name) == 0  # close handed the lane's connections back
