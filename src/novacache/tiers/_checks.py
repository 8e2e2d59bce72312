"""Argument checks shared by the store tiers (the contract's TypeError / ValueError rules)."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["MAX_TTL", "check_frame", "check_key", "check_keys", "check_ttl"]

#: The longest TTL a tier keeps (100 years, in seconds); a longer one means no expiry, in
#: every tier alike (Redis cannot take 1e300 seconds, PostgreSQL's timestamps end in the
#: year 294276, and nobody can tell the difference).
MAX_TTL = 100 * 365.25 * 86400.0


def check_key(key: object) -> str:
    """Return ``key`` when it is a ``str``; raise ``TypeError`` otherwise."""
    if type(key) is not str and not isinstance(key, str):
        raise TypeError(f"tier keys are str, not {type(key).__name__}")
    return key


def check_keys(keys: Iterable[str]) -> list[str]:
    """The keys as a list without duplicates (first occurrence kept), each checked."""
    if isinstance(keys, str):
        raise TypeError("keys must be an iterable of str, not one str")
    return list(dict.fromkeys(check_key(k) for k in keys))


def check_frame(frame: object) -> bytes:
    """Return ``frame`` when it is ``bytes``; raise ``TypeError`` otherwise."""
    if type(frame) is not bytes and not isinstance(frame, bytes):
        raise TypeError(f"tier frames are bytes, not {type(frame).__name__}")
    return frame


def check_ttl(ttl: float | None) -> float | None:
    """The TTL in seconds, or ``None`` for no expiry (``math.inf`` and any TTL above
    :data:`MAX_TTL` count as none).

    Raises ``ValueError`` for a TTL that is not > 0 (NaN included) and ``TypeError`` for
    a value that is not a real number.
    """
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
        raise TypeError(f"ttl must be a number of seconds or None, not {type(ttl).__name__}")
    if not ttl > 0:  # also catches NaN
        raise ValueError(f"ttl must be > 0 seconds, got {ttl!r}")
    if ttl > MAX_TTL:
        return None
    return float(ttl)
