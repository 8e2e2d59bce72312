"""PostgresTier against the private test server: single get/set beside get_many/set_many
of 100 frames, each bulk call one round-trip (one statement).

Target (issue 6): report us per key of the bulk calls next to single calls.

    pytest benchmarks/test_store_postgres.py                       # measure
    pytest benchmarks/test_store_postgres.py --benchmark-disable   # smoke run

``extra_info["keys"]`` is the number of keys one benchmarked call handles: divide by it
for us/key. Each call checks what it read, so the smoke run is a correctness test too.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from tiers.pg_server import PostgresServer, find_bindir

pytest.importorskip("psycopg")

from novacache.tiers.postgres import PostgresTier

FRAME = os.urandom(1024)
N_MANY = 100
KEYS = [f"key:{i}" for i in range(N_MANY)]


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    server = PostgresServer(find_bindir())
    try:
        server.initdb()
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture(params=[True, False], ids=["unlogged", "logged"])
def tier(server: PostgresServer, request: pytest.FixtureRequest) -> Iterator[PostgresTier]:
    tier = PostgresTier(server.dsn, table=f"bench_{uuid.uuid4().hex[:8]}", unlogged=request.param)
    tier.set_many(dict.fromkeys(KEYS, FRAME))
    yield tier
    tier.clear()
    tier.close()


def test_get_single(benchmark: Any, tier: PostgresTier) -> None:
    benchmark.group = "postgres get, 1 KiB frames"
    benchmark.extra_info["keys"] = 1
    assert benchmark(tier.get, KEYS[7]) == FRAME


def test_get_many_100(benchmark: Any, tier: PostgresTier) -> None:
    benchmark.group = "postgres get, 1 KiB frames"
    benchmark.extra_info["keys"] = N_MANY
    got = benchmark(tier.get_many, KEYS)
    assert len(got) == N_MANY
    assert all(v == FRAME for v in got.values())


def test_set_single(benchmark: Any, tier: PostgresTier) -> None:
    benchmark.group = "postgres set, 1 KiB frames"
    benchmark.extra_info["keys"] = 1
    benchmark(tier.set, KEYS[7], FRAME)
    assert tier.get(KEYS[7]) == FRAME


def test_set_many_100(benchmark: Any, tier: PostgresTier) -> None:
    benchmark.group = "postgres set, 1 KiB frames"
    benchmark.extra_info["keys"] = N_MANY
    items = dict.fromkeys(KEYS, FRAME)
    benchmark(tier.set_many, items)
    assert tier.get_many(KEYS) == items
