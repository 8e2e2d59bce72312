"""@manager.cached for functions and coroutine functions (sync and asyncio managers),
negative caching, tags, and the decorated types under mypy --strict."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from _typecheck import check_typing
from novacache import LocalCache
from novacache.manager import AsyncCacheManager, CacheManager
from novacache.manager.decorator import default_key
from novacache.tiers import AsyncSQLiteTier, SQLiteTier

CHECK = Path(__file__).resolve().parent / "typing" / "check_cached.py"


@pytest.fixture
def manager(tmp_path: Path) -> CacheManager:
    return CacheManager(local=LocalCache(100), store=SQLiteTier(tmp_path / "s.db"))


def test_a_function_runs_once_per_arguments(manager: CacheManager) -> None:
    calls: list[tuple[int, bool]] = []

    @manager.cached(ttl=60)
    def vm(vm_id: int, *, fresh: bool = False) -> dict[str, int]:
        calls.append((vm_id, fresh))
        return {"id": vm_id}

    assert vm(1) == {"id": 1}
    assert vm(1) == {"id": 1}
    assert vm(2) == {"id": 2}
    assert vm(1, fresh=True) == {"id": 1}
    assert calls == [(1, False), (2, False), (1, True)]
    assert vm.__name__ == "vm"
    assert vm.__wrapped__(5) == {"id": 5}  # type: ignore[attr-defined]
    assert manager.local is not None
    manager.local.clear()
    assert vm(2) == {"id": 2}  # from L3 now
    assert len(calls) == 4


def test_custom_key_tags_and_invalidation(manager: CacheManager) -> None:
    calls = 0

    @manager.cached(key=lambda zone, n: f"zone:{zone}:{n}", tags=lambda zone, n: [zone])
    def count(zone: str, n: int) -> int:
        nonlocal calls
        calls += 1
        return n * 2

    assert count("a", 1) == 2
    assert manager.get("zone:a:1") == 2
    count("a", 2)
    count("b", 1)
    assert manager.invalidate_tags(["a"]) == 2
    count("a", 1)
    count("b", 1)
    assert calls == 4


def test_none_is_cached_only_with_negative_ttl(manager: CacheManager) -> None:
    calls = {"plain": 0, "negative": 0}

    @manager.cached()
    def plain(x: int) -> int | None:
        calls["plain"] += 1
        return None

    @manager.cached(negative_ttl=30)
    def negative(x: int) -> int | None:
        calls["negative"] += 1
        return None

    for _ in range(3):
        assert plain(1) is None
        assert negative(1) is None
    assert calls == {"plain": 3, "negative": 1}
    assert manager.store is not None
    remaining = manager.store.ttl(default_key(f"{__name__}.{negative.__qualname__}", (1,), {}))
    assert remaining is not None
    assert 0 < remaining <= 30


def test_default_keys_are_stable_and_bounded() -> None:
    assert default_key("m.f", (1, "a"), {"b": 2}) == "m.f:(1, 'a')[('b', 2)]"
    long = default_key("m.f", ("x" * 500,), {})
    assert long.startswith("m.f:sha256:")
    assert len(long) < 100


def test_coroutine_function_with_the_async_manager(tmp_path: Path) -> None:
    async def main() -> None:
        store = AsyncSQLiteTier(tmp_path / "s.db")
        async with AsyncCacheManager(local=LocalCache(100), store=store) as m:
            calls = 0
            gate = asyncio.Event()

            @m.cached(ttl=60, tags=["t"])
            async def fetch(x: int) -> list[int]:
                nonlocal calls
                calls += 1
                await gate.wait()
                return [x]

            tasks = [asyncio.create_task(fetch(3)) for _ in range(20)]
            await asyncio.sleep(0.01)
            gate.set()
            assert await asyncio.gather(*tasks) == [[3]] * 20
            assert calls == 1
            assert await m.invalidate_tags(["t"]) == 1
            assert await fetch(3) == [3]
            assert calls == 2

    asyncio.run(asyncio.wait_for(main(), 30))


def test_coroutine_function_with_the_sync_manager(manager: CacheManager) -> None:
    calls = 0

    @manager.cached(ttl=60)
    async def fetch(x: int) -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return f"v{x}"

    async def main() -> list[str]:
        return list(await asyncio.gather(*(fetch(1) for _ in range(10))))

    assert asyncio.run(main()) == ["v1"] * 10
    assert calls == 1
    assert manager.local is not None
    manager.local.clear()
    assert asyncio.run(main()) == ["v1"] * 10  # read back from L3 in a worker thread
    assert calls == 1


def test_the_async_manager_refuses_plain_functions() -> None:
    m = AsyncCacheManager(local=LocalCache(10))
    with pytest.raises(TypeError, match="coroutine"):

        @m.cached()
        def plain() -> int:
            return 1


def test_decorated_types_under_mypy_strict(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    check_typing([CHECK], tmp_path)
