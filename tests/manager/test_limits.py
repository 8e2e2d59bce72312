"""A tier's own limits seen through the manager (issue 18): a frame larger than a tier
takes is a per-tier failure like any other (reported, counted, the older value there
dropped), never a raw ``ValueError``; absurd TTLs work in every tier.

The size limits are lowered for the tests (Redis' 512 MiB bulk limit and PostgreSQL's
1 GiB are module constants; the SQLite tier reads SQLite's own length limit at open),
so no test allocates gigabytes: the code path is the one a 512 MiB frame takes.
"""

from __future__ import annotations

import asyncio
import math
import random
from pathlib import Path
from typing import Any

import pytest

from novacache import LocalCache
from novacache.codec import Codec
from novacache.errors import EntryTooLarge, PartialWrite, TierError
from novacache.manager import AsyncCacheManager, CacheManager
from novacache.tiers import (
    AsyncPostgresTier,
    AsyncRedisTier,
    AsyncSQLiteTier,
    PostgresTier,
    RedisTier,
    SQLiteTier,
)
from novacache.tiers import _pg_base as postgres_tier  # its limits are patched
from novacache.tiers import _redis_base as redis_tier  # its limits are patched
from novacache.tiers._checks import MAX_TTL
from tiers.redis_servers import Standalone

from ._support import prefix

LIMIT = 4096
BIG = random.Random(3).randbytes(LIMIT)  # incompressible: its frame is over LIMIT
SMALL = b"fits"


@pytest.fixture
def low_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redis_tier, "MAX_BULK_BYTES", LIMIT)
    monkeypatch.setattr(postgres_tier, "MAX_FRAME_BYTES", LIMIT)


def _sqlite(path: Path, limited: bool) -> SQLiteTier:
    tier = SQLiteTier(path)
    if limited:
        tier._max_frame = LIMIT  # as if SQLite were built with SQLITE_MAX_LENGTH = LIMIT
    return tier


def _sync_tiers(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """The manager's tiers: ``kind`` is the one whose limit the big frame exceeds; the
    other below-L1 tier takes it."""
    if kind == "redis":
        server: Standalone = request.getfixturevalue("redis_standalone")
        return {
            "remote": RedisTier(server.url, prefix=prefix()),
            "store": _sqlite(tmp_path / "s.db", False),
        }
    if kind == "sqlite":
        return {"store": _sqlite(tmp_path / "s.db", True)}
    dsn: str = request.getfixturevalue("postgres_dsn")
    return {"store": PostgresTier(dsn, table=f"lim_{prefix()[2:-1]}")}


@pytest.mark.parametrize("kind", ["redis", "sqlite", "postgres"])
def test_sync_frame_over_a_tier_limit_is_a_reported_failure(
    kind: str, low_limits: None, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    tiers = _sync_tiers(kind, request, tmp_path)
    slot = "remote" if kind == "redis" else "store"
    seen: list[tuple[str, str, type]] = []
    with CacheManager(
        local=LocalCache(10),
        codec=Codec(compress_min=1 << 30),
        on_write_error="report",
        on_error=lambda op, s, exc: seen.append((op, s, type(exc))),
        **tiers,
    ) as m:
        assert m.set("k", SMALL).ok
        report = m.set("k", BIG)
        assert set(report.failed) == {slot}
        assert isinstance(report.failed[slot], TierError)
        assert "local" in report.written
        assert ("set", slot, EntryTooLarge) in seen
        assert m.stats.write_errors == 1
        tier = tiers[slot]
        assert tier.get("k") is None  # the older value there is gone, not left stale
        assert m.get("k") == BIG  # from L1 (and the other tier, when there is one)
        report = m.set_many({"a": SMALL, "b": BIG})
        assert set(report.failed) == {slot}
        assert m.stats.write_errors == 2
        # get_or_load keeps its value whatever a tier refuses
        assert m.get_or_load("c", lambda: BIG) == BIG
        assert m.stats.write_errors == 3
        m.on_write_error = "raise"
        with pytest.raises(PartialWrite) as info:
            m.set("k", BIG)
        assert set(info.value.failed) == {slot}


@pytest.mark.parametrize("kind", ["redis", "sqlite", "postgres"])
def test_async_frame_over_a_tier_limit_is_a_reported_failure(
    kind: str, low_limits: None, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    slot = "remote" if kind == "redis" else "store"
    options: dict[str, Any] = {}
    if kind == "redis":
        server: Standalone = request.getfixturevalue("redis_standalone")
        dsn = None
    elif kind == "postgres":
        dsn = request.getfixturevalue("postgres_dsn")

    async def main() -> None:
        if kind == "redis":
            options["remote"] = AsyncRedisTier(server.url, prefix=prefix())
            options["store"] = AsyncSQLiteTier(tmp_path / "s.db")
        elif kind == "sqlite":
            store = AsyncSQLiteTier(tmp_path / "s.db")
            store.sync._max_frame = LIMIT
            options["store"] = store
        else:
            assert dsn is not None
            options["store"] = AsyncPostgresTier(dsn, table=f"lim_{prefix()[2:-1]}")
        async with AsyncCacheManager(
            local=LocalCache(10), codec=Codec(compress_min=1 << 30), on_write_error="report",
            **options,
        ) as m:  # fmt: skip
            assert (await m.set("k", SMALL)).ok
            report = await m.set("k", BIG)
            assert set(report.failed) == {slot}
            assert await options[slot].get("k") is None
            assert await m.get("k") == BIG
            assert set((await m.set_many({"a": SMALL, "b": BIG})).failed) == {slot}

            async def load() -> bytes:
                return BIG

            assert await m.get_or_load("c", load) == BIG
            assert m.stats.write_errors == 3

    asyncio.run(asyncio.wait_for(main(), 30))


def test_tiers_refuse_an_oversized_frame_before_any_io(
    low_limits: None, redis_standalone: Standalone, postgres_dsn: str, tmp_path: Path
) -> None:
    """At the tier level the refusal is ``EntryTooLarge`` (a ``ValueError``), with the
    limit named, and nothing is written."""
    tiers: list[Any] = [
        RedisTier(redis_standalone.url, prefix=prefix()),
        _sqlite(tmp_path / "s.db", True),
        PostgresTier(postgres_dsn, table=f"lim_{prefix()[2:-1]}"),
    ]
    for tier in tiers:
        with pytest.raises(EntryTooLarge) as info:
            tier.set("k", b"x" * (LIMIT + 1))
        assert info.value.maxbytes == LIMIT
        with pytest.raises(EntryTooLarge):
            tier.set_many({"a": b"", "b": b"x" * (LIMIT + 1)})
        assert tier.get_many(["k", "a", "b"]) == {}
        tier.set("k", b"x" * LIMIT)  # the limit itself fits
        tier.close()


ABSURD_TTLS = [1e300, 10**400, MAX_TTL * 2, math.inf]


@pytest.mark.parametrize("ttl", ABSURD_TTLS, ids=repr)
def test_absurd_ttls_mean_no_expiry_in_every_tier(
    ttl: float, redis_standalone: Standalone, postgres_dsn: str, tmp_path: Path
) -> None:
    """A TTL beyond 100 years is kept as no expiry by the manager and by each tier
    (Redis refused 1e300 s with a raw ``ValueError``, PostgreSQL with an interval out
    of range)."""
    remote = RedisTier(redis_standalone.url, prefix=prefix())
    with CacheManager(
        local=LocalCache(10), remote=remote, store=SQLiteTier(tmp_path / "s.db")
    ) as m:
        assert m.set("k", 1, ttl=ttl).ok
        assert m.set_many({"a": 2}, ttl=ttl).ok
        assert (
            m.get_or_load("b", lambda: 3, ttl=ttl, stale_ttl=ttl if ttl < math.inf else None) == 3
        )
        assert remote.ttl("k") == math.inf
    pg = PostgresTier(postgres_dsn, table=f"ttl_{prefix()[2:-1]}")
    with CacheManager(store=pg) as m:
        assert m.set("k", 1, ttl=ttl).ok
        assert pg.ttl("k") == math.inf
        assert m.get("k") == 1
    for tier in (RedisTier(redis_standalone.url, prefix=prefix()), SQLiteTier(tmp_path / "t.db")):
        tier.set("k", b"v", ttl=ttl)
        assert tier.ttl("k") == math.inf
        tier.close()


@pytest.mark.parametrize("ttl", [0, -1, math.nan, -math.inf, True, "10"], ids=repr)
def test_invalid_ttls_are_refused_before_anything_is_written(
    ttl: Any, embedded: CacheManager
) -> None:
    with pytest.raises(ValueError):
        embedded.set("k", 1, ttl=ttl)
    with pytest.raises(ValueError):
        embedded.get_or_load("k", lambda: 1, ttl=ttl)
    assert embedded.get("k") is None
    assert embedded.stats.loads == 0


@pytest.mark.parametrize(
    "option",
    [
        {"stale_ttl": math.inf},
        {"stale_ttl": math.nan},
        {"beta": math.inf},
        {"beta": -1},
        {"lease": math.inf},
        {"lease": 0},
    ],
    ids=repr,
)
def test_invalid_freshness_options_are_refused_before_loading(
    option: dict[str, float], embedded: CacheManager
) -> None:
    """Before the fix ``stale_ttl=inf`` and ``beta=inf`` were written into envelopes."""
    with pytest.raises(ValueError):
        embedded.get_or_load("k", lambda: 1, ttl=10, **option)
    assert embedded.stats.loads == 0
