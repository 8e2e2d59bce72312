"""Fixtures shared by the tier tests."""

from __future__ import annotations

from .redis_servers import redis_base, redis_cluster, redis_sentinel, redis_standalone

__all__ = ["redis_base", "redis_cluster", "redis_sentinel", "redis_standalone"]
