"""Fixtures of the manager tests: the real servers of the tier tests (Redis, PostgreSQL),
an embedded manager on a fake clock, and a counting wrapper around real tiers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from novacache import LocalCache
from novacache.manager import CacheManager
from novacache.tiers import SQLiteTier
from tiers.pg_server import postgres_dsn, postgres_server
from tiers.redis_servers import redis_base, redis_cluster, redis_sentinel, redis_standalone

from ._support import Clock

__all__ = [
    "clock",
    "embedded",
    "postgres_dsn",
    "postgres_server",
    "redis_base",
    "redis_cluster",
    "redis_sentinel",
    "redis_standalone",
]


@pytest.fixture
def clock() -> Clock:
    """One fake clock for the manager's envelopes, the store's expiry and L1's TTLs."""
    return Clock()


@pytest.fixture
def embedded(tmp_path: Path, clock: Clock) -> Iterator[CacheManager]:
    """L1 + SQLite on the fake clock."""
    store = SQLiteTier(tmp_path / "l3.db", clock=clock)
    with CacheManager(local=LocalCache(1000, timer=clock), store=store, clock=clock) as m:
        yield m
