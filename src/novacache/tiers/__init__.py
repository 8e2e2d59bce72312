"""The tiers below the in-process cache: each stores opaque frames under str keys.

- :class:`Tier` / :class:`AsyncTier`: the contract (``novacache.tiers.base``).
"""

from __future__ import annotations

from .base import AsyncTier, Tier

__all__ = ["AsyncTier", "Tier"]
