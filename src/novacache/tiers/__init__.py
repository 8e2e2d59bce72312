"""The tiers below the in-process cache: each stores opaque frames under str keys.

- :class:`Tier` / :class:`AsyncTier`: the contract (``novacache.tiers.base``).
- :class:`RedisTier` / :class:`AsyncRedisTier` (L2, ``novacache.tiers.redis``): imported on
  first use, so ``import novacache`` works without redis-py installed.
- :class:`SQLiteTier` / :class:`AsyncSQLiteTier` (L3 embedded, ``novacache.tiers.sqlite``)
  and :class:`PostgresTier` / :class:`AsyncPostgresTier` (L3 shared,
  ``novacache.tiers.postgres``, needs the ``postgres`` extra): imported on first use too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import AsyncTier, Tier

__all__ = [
    "AsyncPostgresTier",
    "AsyncRedisTier",
    "AsyncSQLiteTier",
    "AsyncTier",
    "PostgresTier",
    "RedisConfig",
    "RedisTier",
    "SQLiteTier",
    "Tier",
]

if TYPE_CHECKING:
    from .postgres import AsyncPostgresTier, PostgresTier
    from .redis import AsyncRedisTier, RedisConfig, RedisTier
    from .sqlite import AsyncSQLiteTier, SQLiteTier

_REDIS_NAMES = ("AsyncRedisTier", "RedisConfig", "RedisTier")
_SQLITE_NAMES = ("AsyncSQLiteTier", "SQLiteTier")
_POSTGRES_NAMES = ("AsyncPostgresTier", "PostgresTier")


def __getattr__(name: str) -> Any:
    if name in _REDIS_NAMES:
        try:
            from . import redis
        except ImportError as exc:
            raise ImportError(
                f"novacache.tiers.{name} needs redis-py: pip install 'novacache[redis]'"
            ) from exc
        return getattr(redis, name)
    if name in _SQLITE_NAMES:
        from . import sqlite

        return getattr(sqlite, name)
    if name in _POSTGRES_NAMES:
        from . import postgres

        return getattr(postgres, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
