# Checked by tests/manager/test_decorator.py with `mypy --strict`; never imported by pytest.
# A "reveal:" comment: mypy must reveal exactly that type on that line.
# An "error:" comment: mypy must report errors with exactly those codes on that line.
# Every other line must be clean.
# ruff: noqa: F821
# fmt: off
from __future__ import annotations

from novacache import AsyncCacheManager, CacheManager, LocalCache

manager = CacheManager(local=LocalCache(100))
amanager = AsyncCacheManager(local=LocalCache(100))


@manager.cached(ttl=60, tags=["vms"])
def vm(vm_id: int, *, fresh: bool = False) -> dict[str, int]:
    return {"id": vm_id}


@manager.cached(key=lambda host: f"host:{host}", negative_ttl=5)
async def host(host: str) -> list[str] | None:
    return [host]


@amanager.cached(ttl=1.5, tags=lambda zone: [f"zone:{zone}"])
async def zone(zone: str) -> tuple[str, int]:
    return (zone, 1)


reveal_type(vm)  # reveal: def (vm_id: int, *, fresh: bool =) -> dict[str, int]
reveal_type(vm(1))  # reveal: dict[str, int]
reveal_type(host)  # reveal: def (host: str) -> typing.Coroutine[Any, Any, list[str] | None]
reveal_type(zone)  # reveal: def (zone: str) -> typing.Coroutine[Any, Any, tuple[str, int]]
vm("one")  # error: arg-type
manager.cached(ttl="long")  # error: arg-type
