"""The sentinel switch memory: a reconnect right after ``+switch-master`` must not go
back to the retired master because the sentinel it asked has not heard yet."""

from __future__ import annotations

import asyncio
import uuid

from novacache.tiers import AsyncRedisTier, RedisTier
from novacache.tiers._sentinel import Switch, SwitchMemory

from .redis_servers import SentinelSet


def test_switch_parse() -> None:
    s = Switch.parse(b"mymaster 127.0.0.1 7001 127.0.0.2 7002")
    assert s == Switch("mymaster", ("127.0.0.1", 7001), ("127.0.0.2", 7002))
    assert Switch.parse("mymaster 127.0.0.1 7001 127.0.0.2 7002") == s
    for bad in (b"", b"mymaster", b"mymaster a b c d", b"m 1 2 3 4 5", b"m h x h 1"):
        assert Switch.parse(bad) is None


def test_switch_memory_corrects_only_the_retired_address_within_the_window() -> None:
    clock = [0.0]
    memory = SwitchMemory(window=10.0)
    memory._now = lambda: clock[0]  # type: ignore[method-assign]
    switch = Switch("svc", ("10.0.0.1", 6379), ("10.0.0.2", 6380))
    memory.note(switch)
    # redis-py hands the port back as int or str depending on the path: both match.
    assert memory.correct("svc", ("10.0.0.1", 6379)) == ("10.0.0.2", 6380)
    assert memory.correct("svc", ("10.0.0.1", "6379")) == ("10.0.0.2", 6380)
    assert memory.correct("svc", ("10.0.0.2", 6380)) == ("10.0.0.2", 6380)
    assert memory.correct("svc", ("10.0.0.9", 6379)) == ("10.0.0.9", 6379)
    assert memory.correct("other", ("10.0.0.1", 6379)) == ("10.0.0.1", 6379)
    assert memory.corrections == 2
    clock[0] = 10.0  # the window is over: the sentinels' answer is trusted again
    assert memory.correct("svc", ("10.0.0.1", 6379)) == ("10.0.0.1", 6379)
    assert memory.corrections == 2


def _fake_switch(sset: SentinelSet) -> Switch:
    """A switch announcing the replica as the new master while every sentinel still
    names the master: the state a lagging sentinel is in right after a failover."""
    return Switch(
        sset.service_name, ("127.0.0.1", sset.master.port), ("127.0.0.1", sset.replica.port)
    )


def test_sync_reconnect_after_a_switch_goes_to_the_announced_master(
    redis_sentinel: SentinelSet,
) -> None:
    tier = RedisTier(redis_sentinel.url, prefix=f"sw{uuid.uuid4().hex[:8]}:")
    try:
        tier.set("k", b"v")  # connected to the real master
        sentinel = tier._sentinel
        assert sentinel is not None
        assert (
            sentinel.discover_master(redis_sentinel.service_name)[1] == redis_sentinel.master.port
        )
        sentinel.switches.note(_fake_switch(redis_sentinel))
        host, port = sentinel.discover_master(redis_sentinel.service_name)
        assert (host, int(port)) == ("127.0.0.1", redis_sentinel.replica.port)
        assert sentinel.switches.corrections == 1
    finally:
        tier.close()


def test_async_reconnect_after_a_switch_goes_to_the_announced_master(
    redis_sentinel: SentinelSet,
) -> None:
    async def go() -> None:
        async with AsyncRedisTier(redis_sentinel.url, prefix=f"sw{uuid.uuid4().hex[:8]}:") as t:
            await t.set("k", b"v")
            sentinel = t._sentinel
            assert sentinel is not None
            name = redis_sentinel.service_name
            assert (await sentinel.discover_master(name))[1] == redis_sentinel.master.port
            sentinel.switches.note(_fake_switch(redis_sentinel))
            host, port = await sentinel.discover_master(name)
            assert (host, int(port)) == ("127.0.0.1", redis_sentinel.replica.port)

    asyncio.run(go())
