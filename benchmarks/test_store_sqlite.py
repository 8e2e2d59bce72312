"""SQLiteTier beside diskcache.Cache (the established SQLite-backed peer), same run, same
file system: get hit and set of a 1 KiB frame, with 1 and 2 threads.

Target (issue 6): SQLiteTier at least as fast as diskcache.Cache for both.

    pytest benchmarks/test_store_sqlite.py                       # measure
    pytest benchmarks/test_store_sqlite.py --benchmark-disable   # smoke run

One benchmarked call runs ``OPS`` operations (split over the threads), so divide the
times by ``extra_info["ops"]`` for us/op. The "lru" variants bound both stores by bytes
with least-recently-used eviction (diskcache: ``eviction_policy="least-recently-used"``,
which writes an access time on every hit; SQLiteTier batches them). Each call checks what
it read, so the smoke run is a correctness test too.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from novacache.tiers.sqlite import SQLiteTier

diskcache = pytest.importorskip("diskcache")

FRAME = os.urandom(1024)
N_KEYS = 10_000
OPS = 1000
KEYS = [f"key:{i}" for i in range(N_KEYS)]
BUDGET = 1 << 30


class Store:
    """One store behind get/set, whichever library it is."""

    def __init__(self, impl: str, variant: str, directory: Path) -> None:
        lru = variant == "lru"
        if impl == "novacache":
            tier = SQLiteTier(directory / "store.db", maxbytes=BUDGET if lru else None)
            self.get: Callable[[str], Any] = tier.get
            self.set: Callable[[str, bytes], Any] = tier.set
            self.close: Callable[[], None] = tier.close
            tier.set_many(dict.fromkeys(KEYS, FRAME))
        else:
            policy = "least-recently-used" if lru else "least-recently-stored"
            cache = diskcache.Cache(
                str(directory / "diskcache"), size_limit=BUDGET, eviction_policy=policy
            )
            self.get, self.set, self.close = cache.get, cache.set, cache.close
            with cache.transact():
                for key in KEYS:
                    cache.set(key, FRAME)


@pytest.fixture(params=["novacache", "diskcache"])
def impl(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["plain", "lru"])
def variant(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(impl: str, variant: str, tmp_path: Path) -> Iterator[Store]:
    store = Store(impl, variant, tmp_path)  # holding the N_KEYS keys
    yield store
    store.close()


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request: pytest.FixtureRequest) -> Iterator[ThreadPoolExecutor | None]:
    if request.param == 1:
        yield None
        return
    with ThreadPoolExecutor(max_workers=request.param) as pool:
        yield pool


def _batches(start: list[int], parts: int) -> list[list[str]]:
    """The next OPS keys (cycling over KEYS), split into ``parts`` lists."""
    first = start[0]
    start[0] = (first + OPS) % N_KEYS
    keys = [KEYS[(first + i) % N_KEYS] for i in range(OPS)]
    return [keys[p::parts] for p in range(parts)]


def _run(
    benchmark: Any, pool: ThreadPoolExecutor | None, work: Callable[[list[str]], None]
) -> None:
    position = [0]
    parts = 1 if pool is None else pool._max_workers

    def one_call() -> None:
        batches = _batches(position, parts)
        if pool is None:
            work(batches[0])
        else:
            for future in [pool.submit(work, b) for b in batches]:
                future.result()

    benchmark.extra_info["ops"] = OPS
    benchmark(one_call)


def test_get_hit_1k(
    benchmark: Any, store: Store, variant: str, threads: ThreadPoolExecutor | None
) -> None:
    benchmark.group = f"store get hit 1 KiB, {variant}, {1 if threads is None else 2} thread(s)"

    def work(keys: list[str]) -> None:
        get = store.get
        for key in keys:
            if get(key) != FRAME:
                raise AssertionError(f"wrong frame for {key}")

    _run(benchmark, threads, work)


def test_set_1k(
    benchmark: Any, store: Store, variant: str, threads: ThreadPoolExecutor | None
) -> None:
    benchmark.group = f"store set 1 KiB, {variant}, {1 if threads is None else 2} thread(s)"

    def work(keys: list[str]) -> None:
        put = store.set
        for key in keys:
            put(key, FRAME)

    _run(benchmark, threads, work)
    assert store.get(KEYS[0]) == FRAME
