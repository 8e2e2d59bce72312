"""Fixtures of the deploy/k8s/ checks: the session's Redis temp dir and helpers of
tests/tiers/redis_servers.py (every process they start is stopped at the end)."""

from __future__ import annotations

from tiers.redis_servers import redis_base, redis_secured

__all__ = ["redis_base", "redis_secured"]
