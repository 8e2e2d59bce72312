"""The tag index sets of a Redis tier (``tag_add``/``tag_members``/``tag_invalidate``:
one set per tag, members in any slot: cluster-safe, no KEYS, no SCAN).

One source for :class:`AsyncRedisTagIndex` (over ``AsyncRedisTier``) and, generated from
it, ``RedisTagIndex`` (over ``RedisTier``). Both tiers use the same keys, so sync and
async managers on one Redis namespace share one index.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AsyncRedisTagIndex"]


class AsyncRedisTagIndex:
    """The tag index sets of a :class:`~novacache.tiers.AsyncRedisTier`."""

    slot = "remote"

    def __init__(self, tier: Any) -> None:
        self.tier = tier

    async def add(self, tags: tuple[str, ...], keys: list[str], ttl: float | None) -> None:
        """Add ``keys`` to each tag's set; the set lives at least ``ttl`` more (never
        less than before), or forever when ``ttl`` is ``None``."""
        for tag in tags:
            await self.tier.tag_add(tag, keys, ttl)

    async def members(self, tags: tuple[str, ...]) -> set[str]:
        """The keys recorded under any of ``tags``."""
        found: set[str] = set()
        for tag in tags:
            found |= await self.tier.tag_members(tag)
        return found

    async def drop(self, tags: tuple[str, ...]) -> None:
        """Delete the tags' keys and their sets."""
        for tag in tags:
            await self.tier.tag_invalidate(tag)  # deletes members added meanwhile too

    async def clear(self) -> None:
        """Nothing to do: the tier's ``clear`` removes its whole namespace."""
