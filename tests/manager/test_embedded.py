"""``CacheManager.embedded`` / ``AsyncCacheManager.embedded`` take the store's options
(issue 18): with ``rebuild=True`` the embedded default heals a damaged file instead of
failing on every start."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from novacache.errors import StoreCorrupted
from novacache.manager import AsyncCacheManager, CacheManager
from novacache.tiers import SQLiteTier

GARBAGE = b"this is not an SQLite file, just damage " * 100


def _damaged(tmp_path: Path) -> Path:
    path = tmp_path / "cache" / "l3.db"
    path.parent.mkdir()
    path.write_bytes(GARBAGE)
    return path


def _aside(path: Path) -> list[Path]:
    return sorted(path.parent.glob(path.name + ".corrupt-*"))


def test_sync_embedded_rebuilds_a_damaged_file(tmp_path: Path) -> None:
    path = _damaged(tmp_path)
    with pytest.raises(StoreCorrupted):
        CacheManager.embedded(path)
    assert path.read_bytes() == GARBAGE  # refused, untouched
    with CacheManager.embedded(path, rebuild=True) as m:
        assert m.set("k", "v").ok
        assert m.get("k") == "v"
    (aside,) = _aside(path)
    assert aside.read_bytes() == GARBAGE  # moved aside, nothing deleted
    with CacheManager.embedded(path, rebuild=True) as m:  # healthy now: nothing moved
        m.local.clear()  # type: ignore[union-attr]
        assert m.get("k") == "v"
    assert len(_aside(path)) == 1


def test_async_embedded_rebuilds_a_damaged_file(tmp_path: Path) -> None:
    path = _damaged(tmp_path)

    async def main() -> None:
        with pytest.raises(StoreCorrupted):
            await AsyncCacheManager.embedded(path)
        async with await AsyncCacheManager.embedded(path, rebuild=True) as m:
            assert (await m.set("k", "v")).ok
            assert await m.get("k") == "v"

    asyncio.run(asyncio.wait_for(main(), 30))
    assert len(_aside(path)) == 1


def test_embedded_passes_store_options_and_keeps_manager_options(tmp_path: Path) -> None:
    path = tmp_path / "l3.db"
    with CacheManager.embedded(
        path,
        store_maxbytes=1 << 20,
        store_options={"verify": True, "timeout": 1.0, "pragmas": {"cache_size": -2000}},
        default_ttl=30,
        on_write_error="report",
    ) as m:
        assert isinstance(m.store, SQLiteTier)
        assert m.store._maxbytes == 1 << 20
        assert m.store._timeout == 1.0
        assert m.default_ttl == 30
        assert m.on_write_error == "report"
        m.set("k", 1)
        assert m.store.ttl("k") is not None


def test_embedded_refuses_unknown_options_by_name(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="no_such_option"):
        CacheManager.embedded(tmp_path / "l3.db", no_such_option=1)
    with pytest.raises(TypeError, match="no_such_option"):
        CacheManager.embedded(tmp_path / "l3.db", store_options={"no_such_option": 1})
