"""Argument checks shared by the store tiers (the contract's TypeError / ValueError rules)."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable

from ..errors import ConfigurationError

__all__ = [
    "MAX_TTL",
    "check_count",
    "check_frame",
    "check_key",
    "check_keys",
    "check_path",
    "check_seconds",
    "check_ttl",
]

#: The longest TTL a tier keeps (100 years, in seconds); a longer one means no expiry, in
#: every tier alike (Redis cannot take 1e300 seconds, PostgreSQL's timestamps end in the
#: year 294276, and nobody can tell the difference).
MAX_TTL = 100 * 365.25 * 86400.0


def check_seconds(name: str, value: object, *, zero: bool = True) -> float:
    """A tier option in seconds: a finite real >= 0 (> 0 with ``zero=False``).
    ``TypeError`` naming the option for a non-number, ``ConfigurationError`` for a value
    out of range."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    try:
        seconds = float(value)
    except OverflowError:  # an int beyond the floats
        seconds = math.inf
    if not (seconds >= 0 if zero else seconds > 0) or not math.isfinite(seconds):
        bound = ">= 0" if zero else "> 0"
        raise ConfigurationError(f"{name} must be a finite number of seconds {bound}")
    return seconds


def check_count(name: str, value: object, minimum: int = 1) -> int:
    """A tier option that counts: an ``int`` (never a ``bool``) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < minimum:
        raise ConfigurationError(f"{name} must be >= {minimum}, not {value!r}")
    return value


def check_path(path: object) -> str:
    """A file path given as ``str``, ``bytes`` or ``os.PathLike``, as a ``str``."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, not {type(path).__name__}")
    text = os.fsdecode(path)
    if not isinstance(text, str):  # an os.PathLike returning something else
        raise TypeError("path must be a str or os.PathLike")
    if not text or "\x00" in text:
        raise ConfigurationError("a path must be non-empty and free of NUL characters")
    return text


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
