"""Fixtures of the consistency tests: the real Redis servers of the tier tests."""

from __future__ import annotations

from tiers.redis_servers import redis_base, redis_standalone

__all__ = ["redis_base", "redis_standalone"]
