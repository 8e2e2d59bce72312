"""The tiers below the in-process cache: each stores opaque frames under str keys.

- :class:`Tier` / :class:`AsyncTier`: the contract (``novacache.tiers.base``).
- :class:`RedisTier` / :class:`AsyncRedisTier` (L2, ``novacache.tiers.redis``): imported on
  first use, so ``import novacache`` works without redis-py installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import AsyncTier, Tier

__all__ = ["AsyncRedisTier", "AsyncTier", "RedisConfig", "RedisTier", "Tier"]

if TYPE_CHECKING:
    from .redis import AsyncRedisTier, RedisConfig, RedisTier

_REDIS_NAMES = ("AsyncRedisTier", "RedisConfig", "RedisTier")


def __getattr__(name: str) -> Any:
    if name in _REDIS_NAMES:
        from . import redis

        return getattr(redis, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
