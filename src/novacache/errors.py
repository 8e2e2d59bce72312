"""The exceptions novacache raises.

Every error novacache raises on purpose derives from :class:`NovaCacheError`, so one
``except NovaCacheError`` catches them all. Where an error has a natural builtin
counterpart it derives from that too (``EntryTooLarge`` is a ``ValueError``), so code
written for cachetools or ``dict`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "EntryTooLarge",
    "NovaCacheError",
]


class NovaCacheError(Exception):
    """Base class of every error novacache raises on purpose."""


class ConfigurationError(NovaCacheError, ValueError):
    """A cache, tier or codec was built with options that cannot work together."""


class EntryTooLarge(NovaCacheError, ValueError):
    """One entry weighs more than the whole budget of the cache it was offered to.

    The cache is left exactly as it was: the entry is refused, nothing is evicted for it,
    and an older value under the same key stays in place.
    """

    def __init__(self, weight: int, maxbytes: int) -> None:
        super().__init__(f"entry weighs {weight}, more than maxbytes={maxbytes}")
        self.weight = weight
        self.maxbytes = maxbytes

    def __reduce__(self) -> tuple[type[EntryTooLarge], tuple[int, int]]:
        return (type(self), (self.weight, self.maxbytes))
