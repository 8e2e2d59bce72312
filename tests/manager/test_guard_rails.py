"""Issue 19's guard rails. A manager refuses a tier of the other kind at construction:
before, ``CacheManager(remote=AsyncRedisTier(...))`` reported writes that never happened
("never awaited"), and the reverse failed at the first await after a sync write. And one
TTL intent: ``CacheManager(ttl=...)`` for every tier."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from novacache import AsyncCacheManager, CacheManager, LocalCache
from novacache.errors import ConfigurationError
from novacache.tiers import AsyncRedisTier, AsyncSQLiteTier, RedisTier, SQLiteTier

from ._support import prefix

URL = "redis://127.0.0.1:6390/0"  # never connected to: construction does no I/O


def test_sync_manager_refuses_asyncio_tiers(tmp_path: Path) -> None:
    store = AsyncSQLiteTier(tmp_path / "a.db")
    with pytest.raises(
        ConfigurationError, match=r"store=AsyncSQLiteTier .*give CacheManager SQLiteTier"
    ):
        CacheManager(local=LocalCache(10), store=store)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"remote=AsyncRedisTier .*AsyncCacheManager"):
        CacheManager(remote=AsyncRedisTier(URL))  # type: ignore[arg-type]


def test_asyncio_manager_refuses_sync_tiers(tmp_path: Path) -> None:
    with (
        SQLiteTier(tmp_path / "s.db") as store,
        pytest.raises(ConfigurationError, match=r"store=SQLiteTier is a synchronous"),
    ):
        AsyncCacheManager(store=store)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"AsyncRedisTier\), or use CacheManager"):
        AsyncCacheManager(remote=RedisTier(URL))  # type: ignore[arg-type]


def test_a_non_tier_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="must be a cache tier"):
        CacheManager(remote={"not": "a tier"})  # type: ignore[arg-type]


def test_each_manager_takes_its_own_kind(tmp_path: Path) -> None:
    with CacheManager(store=SQLiteTier(tmp_path / "s.db"), remote=RedisTier(URL)) as m:
        assert m.store is not None
    m2 = AsyncCacheManager(store=AsyncSQLiteTier(tmp_path / "a.db"), remote=AsyncRedisTier(URL))
    assert m2.store is not None


# -- one TTL intent -----------------------------------------------------------------------


class _Timer:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_ttl_applies_to_every_tier(tmp_path: Path, redis_standalone: Any) -> None:
    """``CacheManager(ttl=...)``: the lifetime of a write without its own ``ttl`` in L1,
    Redis and the store; a call's ``ttl`` wins; without any, nothing expires."""
    timer = _Timer()
    with CacheManager(
        local=LocalCache(10, timer=timer),
        remote=RedisTier(redis_standalone.url, prefix=prefix()),
        store=SQLiteTier(tmp_path / "s.db"),
        ttl=60,
    ) as m:
        assert m.default_ttl == 60
        m.set("k", 1)
        m.set("own", 1, ttl=5)
        assert m.remote is not None
        assert m.store is not None
        assert 59 < (m.remote.ttl("k") or 0) <= 60
        assert 59 < (m.store.ttl("k") or 0) <= 60
        assert 4 < (m.remote.ttl("own") or 0) <= 5
        assert 4 < (m.store.ttl("own") or 0) <= 5
        timer.now += 59
        assert "k" in m.local  # type: ignore[operator]
        timer.now += 2
        assert "k" not in m.local  # type: ignore[operator]
    with CacheManager(
        remote=RedisTier(redis_standalone.url, prefix=prefix()),
        store=SQLiteTier(tmp_path / "t.db"),
    ) as m:
        m.set("k", 1)
        assert m.remote is not None
        assert m.store is not None
        assert m.remote.ttl("k") == math.inf
        assert m.store.ttl("k") == math.inf


def test_ttl_and_default_ttl_are_one_setting() -> None:
    assert CacheManager(default_ttl=30).default_ttl == 30
    assert CacheManager(ttl=30, default_ttl=30).default_ttl == 30
    with pytest.raises(ConfigurationError, match="name the same setting"):
        CacheManager(ttl=30, default_ttl=60)
    with pytest.raises(ConfigurationError, match="name the same setting"):
        AsyncCacheManager(ttl=30, default_ttl=60)
    assert AsyncCacheManager(ttl=7).default_ttl == 7
