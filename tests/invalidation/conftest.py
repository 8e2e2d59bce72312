"""Fixtures of the invalidation tests: the real servers of the tier tests (Redis,
PostgreSQL) and a fake clock."""

from __future__ import annotations

import pytest

from manager._support import Clock
from tiers.pg_server import postgres_dsn, postgres_server
from tiers.redis_servers import redis_base, redis_cluster, redis_standalone

__all__ = [
    "clock",
    "postgres_dsn",
    "postgres_server",
    "redis_base",
    "redis_cluster",
    "redis_standalone",
]


@pytest.fixture
def clock() -> Clock:
    return Clock()
