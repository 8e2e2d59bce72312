"""Fixtures of the operations tests (metrics, health, dashboard, the HTTP API and the
CLI): the real servers of the tier tests (every process they start is stopped at the
end of the session)."""

from __future__ import annotations

from tiers.pg_server import postgres_dsn, postgres_server
from tiers.redis_servers import redis_base, redis_cluster, redis_sentinel, redis_standalone

__all__ = [
    "postgres_dsn",
    "postgres_server",
    "redis_base",
    "redis_cluster",
    "redis_sentinel",
    "redis_standalone",
]
