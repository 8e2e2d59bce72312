"""Helpers of the manager tests (no mocks: wrappers that count calls to real tiers)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import Any


class Clock:
    """A fake clock advanced by hand (``tick``): expiry tests never sleep."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds


def prefix() -> str:
    """A unique key namespace for a test on a shared server."""
    return f"m-{uuid.uuid4().hex[:12]}:"


class Counting:
    """A real tier, with every call counted by method name in ``calls``."""

    def __init__(self, tier: Any) -> None:
        self.tier = tier
        self.name = tier.name
        self.calls: Counter[str] = Counter()

    def _call(self, op: str, *args: Any) -> Any:
        self.calls[op] += 1
        return getattr(self.tier, op)(*args)

    def get(self, key: str) -> bytes | None:
        return self._call("get", key)  # type: ignore[no-any-return]

    def set(self, key: str, frame: bytes, ttl: float | None = None) -> None:
        self._call("set", key, frame, ttl)

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        return self._call("get_many", list(keys))  # type: ignore[no-any-return]

    def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        self._call("set_many", dict(items), ttl)

    def delete(self, key: str) -> bool:
        return self._call("delete", key)  # type: ignore[no-any-return]

    def delete_many(self, keys: Iterable[str]) -> int:
        return self._call("delete_many", list(keys))  # type: ignore[no-any-return]

    def ttl(self, key: str) -> float | None:
        return self._call("ttl", key)  # type: ignore[no-any-return]

    def scan(self, pattern: str = "*") -> Iterator[str]:
        return self._call("scan", pattern)  # type: ignore[no-any-return]

    def clear(self) -> None:
        self._call("clear")

    def ping(self) -> float:
        return self._call("ping")  # type: ignore[no-any-return]

    def close(self) -> None:
        self._call("close")


def live(frames: Mapping[str, bytes] | bytes | None) -> Any:
    """What a tier read returned, without deletes' tombstones (a delete leaves one in
    L2 and L3 for ``tombstone_ttl``: see docs/consistency.md): ``None`` for a
    tombstone, a dict without them for a ``get_many`` result."""
    from novacache.manager.envelope import is_tombstone

    if frames is None or isinstance(frames, bytes):
        return None if frames is None or is_tombstone(frames) else frames
    return {k: f for k, f in frames.items() if not is_tombstone(f)}
