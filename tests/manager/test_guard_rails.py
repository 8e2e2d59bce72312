"""A manager refuses a tier of the other kind at construction (issue 19's guard rail):
before, ``CacheManager(remote=AsyncRedisTier(...))`` reported writes that never happened
("never awaited"), and the reverse failed at the first await after a sync write."""

from __future__ import annotations

from pathlib import Path

import pytest

from novacache import AsyncCacheManager, CacheManager, LocalCache
from novacache.errors import ConfigurationError
from novacache.tiers import AsyncRedisTier, AsyncSQLiteTier, RedisTier, SQLiteTier

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
