"""get_or_load: one loader call per key per process, its outcome shared by every waiter,
re-entrancy without deadlock (threading.Barrier bursts, bounded waits)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from novacache import LocalCache
from novacache.errors import ReentrantLoad
from novacache.manager import CacheManager
from novacache.tiers import SQLiteTier
from tiers.redis_servers import wait_until

THREADS = 64


def _manager(tmp_path: Path) -> CacheManager:
    return CacheManager(local=LocalCache(1000), store=SQLiteTier(tmp_path / "s.db"))


def test_64_threads_on_one_cold_key_run_the_loader_once(tmp_path: Path) -> None:
    calls = 0
    release = threading.Event()
    barrier = threading.Barrier(THREADS)

    def loader() -> dict[str, int]:
        nonlocal calls
        calls += 1
        release.wait(10)
        return {"cpus": 8}

    with _manager(tmp_path) as m:

        def worker() -> dict[str, int]:
            barrier.wait(10)
            return m.get_or_load("vm:cold", loader, ttl=60)

        with ThreadPoolExecutor(THREADS) as pool:
            futures = [pool.submit(worker) for _ in range(THREADS)]
            # every thread is either waiting on the flight or already done
            wait_until(lambda: m._flights.waiters == THREADS - 1, 10, "63 waiters")
            release.set()
            results = [f.result(timeout=10) for f in futures]
        assert calls == 1
        assert m.stats.loads == 1
        assert all(r == {"cpus": 8} for r in results)
        assert len({id(r) for r in results}) == 1  # the one object, shared
        assert m.get("vm:cold") == {"cpus": 8}


def test_an_exception_reaches_every_waiter_and_is_not_cached(tmp_path: Path) -> None:
    release = threading.Event()
    calls = 0

    def failing() -> int:
        nonlocal calls
        calls += 1
        release.wait(10)
        raise LookupError("vm not found")

    n = 16
    with _manager(tmp_path) as m, ThreadPoolExecutor(n) as pool:
        futures = [pool.submit(m.get_or_load, "vm:gone", failing) for _ in range(n)]
        wait_until(lambda: m._flights.waiters == n - 1, 10, "15 waiters")
        release.set()
        for f in futures:
            with pytest.raises(LookupError, match="vm not found"):
                f.result(timeout=10)
        assert calls == 1
        assert m.get("vm:gone") is None  # the failure was not cached
        assert m.get_or_load("vm:gone", lambda: "found now") == "found now"


def test_a_loader_may_load_other_keys(tmp_path: Path) -> None:
    with _manager(tmp_path) as m:

        def outer() -> list[int]:
            return [m.get_or_load("inner", lambda: 1), 2]

        assert m.get_or_load("outer", outer) == [1, 2]
        assert m.get("inner") == 1


def test_reentry_for_the_same_key_raises_instead_of_deadlocking(tmp_path: Path) -> None:
    with _manager(tmp_path) as m:

        def loops() -> int:
            return m.get_or_load("self", lambda: 1)

        with pytest.raises(ReentrantLoad):
            m.get_or_load("self", loops)
        # the flight was cleaned up: the key loads normally afterwards
        assert m.get_or_load("self", lambda: 3) == 3


def test_a_hit_does_not_call_the_loader(tmp_path: Path) -> None:
    with _manager(tmp_path) as m:
        m.set("k", "cached")

        def never() -> str:
            raise AssertionError("loader called on a hit")

        assert m.get_or_load("k", never) == "cached"
        assert m.local is not None
        m.local.clear()
        assert m.get_or_load("k", never) == "cached"  # L3 hit
        assert m.stats.loads == 0


def test_loaded_value_is_stored_with_its_ttl(tmp_path: Path) -> None:
    with _manager(tmp_path) as m:
        assert m.get_or_load("k", lambda: 5, ttl=30) == 5
        assert m.store is not None
        remaining = m.store.ttl("k")
        assert remaining is not None
        assert 0 < remaining <= 30
