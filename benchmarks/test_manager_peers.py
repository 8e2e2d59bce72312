"""The manager section of ``novacache bench`` as a pytest-benchmark suite: one test per
(row, implementation), the same cases (:mod:`novacache.benchmark.manager_cases`), so
pytest-benchmark's table shows each row's implementations side by side (``group``).

    pytest benchmarks/test_manager_peers.py                      # measure
    pytest benchmarks/test_manager_peers.py --benchmark-disable  # smoke run: one pass each

One benchmarked call is one pass over the keys (``extra_info["ops"]`` operations, the
preparation and the check of its result included); the bench's own clock, around the
loop alone, is in ``extra_info["per_op"]`` (ns per operation, or operations per second
for the tasks and threads rows). Unlike ``novacache bench --only manager``, the
implementations are not interleaved: for ratios, use the command. A peer that is not
installed (``pip install novacache[peers]``) is skipped with that reason. Redis comes from
the test fixtures (``tests/tiers/redis_servers.py``), never mocked.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from novacache.benchmark.manager_cases import ROWS, Bench, Case
from novacache.benchmark.peers_manager import RedisTarget
from tiers.redis_servers import Standalone, require_redis, start_standalone, topology

PAIRS = [(row.id, impl) for row in ROWS for impl in row.entries]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standalone]:
    require_redis("redis-server")
    with topology(start_standalone, tmp_path_factory.mktemp("mgr-peers")) as s:
        yield s


@pytest.fixture(scope="module")
def bench(server: Standalone, request: pytest.FixtureRequest) -> Iterator[Bench]:
    """Every case, set up once (smaller under ``--benchmark-disable``)."""
    smoke = bool(request.config.getoption("benchmark_disable", False))
    sizes: dict[str, Any] = (
        {"n": 50, "repeat": 2, "per_task": 2, "per_thread": 50}
        if smoke
        else {"n": 1000, "repeat": 20, "per_task": 20, "per_thread": 1000}
    )
    built = Bench(RedisTarget("127.0.0.1", server.server.port), **sizes)
    try:
        built.setup()
        yield built
    finally:
        built.close()


def _case(bench: Bench, row: str, impl: str) -> Case:
    return next(c for c in bench.cases if c.row == row and c.impl == impl)


@pytest.mark.parametrize(("row", "impl"), PAIRS, ids=[f"{r}-{i}" for r, i in PAIRS])
def test_manager_row(benchmark: Any, bench: Bench, row: str, impl: str) -> None:
    case = _case(bench, row, impl)
    if case.status is not None:
        pytest.skip(f"{impl}: {case.status}")
    benchmark.group = f"manager {row}"
    order = list(range(bench.n))
    measured: list[float] = []

    def one_pass() -> None:
        value, problem = case.one_pass(order)
        assert problem is None, problem
        measured.append(value)

    one_pass()  # a warm-up, checked too
    benchmark.pedantic(one_pass, rounds=1 if benchmark.disabled else 15, iterations=1)
    benchmark.extra_info.update(
        ops=case.ops(bench.n), per_op=statistics.median(measured), label=case.label
    )
    assert all(v > 0 for v in measured)
