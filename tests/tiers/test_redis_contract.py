"""RedisTier and AsyncRedisTier bound to the shared tier contract on the three topologies.

Each test gets a tier with a fresh, unique key prefix on a session-scoped server, so
tests never see each other's keys. Expiry is server-side, so ``advance`` sleeps (the
contract keeps its TTLs under a second).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from novacache.tiers import AsyncTier
from novacache.tiers.redis import AsyncRedisTier, RedisTier

from .contract import AsyncTierContract, TierContract
from .redis_servers import Cluster, SentinelSet, Standalone


def _prefix() -> str:
    return f"t-{uuid.uuid4().hex[:12]}:"


def _options(request: pytest.FixtureRequest, topology: str) -> dict[str, Any]:
    if topology == "standalone":
        s: Standalone = request.getfixturevalue("redis_standalone")
        return {"config": s.url}
    if topology == "sentinel":
        t: SentinelSet = request.getfixturevalue("redis_sentinel")
        return {"config": t.url}
    c: Cluster = request.getfixturevalue("redis_cluster")
    return {"config": c.url}


class _RedisBinding:
    topology = "standalone"

    @pytest.fixture
    def tier(self, request: pytest.FixtureRequest) -> Iterator[RedisTier]:
        t = RedisTier(prefix=_prefix(), **_options(request, self.topology))
        yield t
        if not t._closed:
            t.clear()
        t.close()

    @pytest.fixture
    def advance(self) -> Callable[[float], None]:
        return time.sleep

    @pytest.fixture
    def atier(self, request: pytest.FixtureRequest) -> Callable[[], Awaitable[AsyncTier]]:
        options = _options(request, self.topology)

        async def make() -> AsyncTier:
            return AsyncRedisTier(prefix=_prefix(), **options)

        return make


class TestStandaloneContract(_RedisBinding, TierContract, AsyncTierContract):
    topology = "standalone"


class TestSentinelContract(_RedisBinding, TierContract, AsyncTierContract):
    topology = "sentinel"


class TestClusterContract(_RedisBinding, TierContract, AsyncTierContract):
    topology = "cluster"
