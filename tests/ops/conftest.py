"""Fixtures of the management API tests: the real Redis of the tier tests."""

from __future__ import annotations

from tiers.redis_servers import redis_base, redis_standalone

__all__ = ["redis_base", "redis_standalone"]
