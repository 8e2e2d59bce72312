"""Fixtures shared by the tier tests."""

from __future__ import annotations

from .pg_server import postgres_dsn, postgres_server
from .redis_servers import (
    redis_base,
    redis_cluster,
    redis_secured,
    redis_sentinel,
    redis_standalone,
)

__all__ = [
    "postgres_dsn",
    "postgres_server",
    "redis_base",
    "redis_cluster",
    "redis_secured",
    "redis_sentinel",
    "redis_standalone",
]
