"""``emit`` with a million unrelated keys in Redis against ``emit`` with a thousand.

Target (issue 13): the 1M case within 1.2x of the 1k case. Patterns named in rules are
indexed at write time (a sorted set per pattern instance), so an event reads the index
of the instance it names and never scans the keyspace: its cost does not depend on the
other keys. Two redis-servers are started (one per size), each with the unrelated keys
loaded directly (``MSET``), and the same manager set-up over each. Every round writes the
10 keys the event names (not timed) and times the ``emit``.

    pytest benchmarks/test_invalidation_emit.py                      # measure
    pytest benchmarks/test_invalidation_emit.py --benchmark-disable  # smoke run

The last test prints the ratio of the medians (no timed assertion); each round checks
that the event dropped exactly its 10 keys, so the smoke run is a correctness test too.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import redis

from novacache import LocalCache
from novacache.invalidation import InvalidationEngine
from novacache.manager import CacheManager
from novacache.tiers.redis import RedisTier
from tiers.redis_servers import Standalone, require_redis, start_standalone, topology

SIZES = {"1k": 1_000, "1M": 1_000_000}
NAMED = 10  # keys the event names
MEDIANS: dict[str, float] = {}


def _load(server: Standalone, ns: str, n: int) -> None:
    """``n`` unrelated keys of ~100 bytes in the namespace, loaded with MSET."""
    client = redis.Redis.from_url(server.url)
    value = b"x" * 100
    step = 10_000
    for start in range(0, n, step):
        client.mset(
            {f"{ns}other:{i}:metrics:cpu": value for i in range(start, min(n, start + step))}
        )
    assert client.dbsize() >= n


@pytest.fixture(scope="module")
def managers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    require_redis("redis-server", "redis-cli")
    base = tmp_path_factory.mktemp("redis-inv-bench")
    with topology(start_standalone, base) as small, topology(start_standalone, base) as large:
        out: dict[str, Any] = {}
        for name, server in (("1k", small), ("1M", large)):
            ns = f"b-{uuid.uuid4().hex[:8]}:"
            _load(server, ns, SIZES[name])
            m = CacheManager(local=LocalCache(10_000), remote=RedisTier(server.url, prefix=ns))
            engine = InvalidationEngine(m)
            engine.rule("vm.migrated", keys=["vm:{vm_id}:state"],
                        patterns=["vm:{vm_id}:metrics:*"])  # fmt: skip
            out[name] = (m, engine)
        yield out
        for m, _ in out.values():
            m.close()


@pytest.mark.parametrize("size", list(SIZES))
def test_emit(benchmark: Any, managers: dict[str, Any], size: str) -> None:
    m, engine = managers[size]
    keys = {f"vm:7:metrics:{i}": i for i in range(NAMED - 1)}

    def refill() -> None:
        m.set_many(keys)
        m.set("vm:7:state", "running")

    def emit() -> None:
        report = engine.emit("vm.migrated", vm_id=7)
        assert len(report.keys) == NAMED
        assert report.scanned == 0

    benchmark.group = "invalidation emit: unrelated keys in Redis"
    benchmark.extra_info["unrelated_keys"] = SIZES[size]
    benchmark.pedantic(emit, setup=refill, rounds=300, warmup_rounds=20)
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        MEDIANS[size] = stats.stats.median


def test_ratio_1m_over_1k() -> None:
    """Prints emit(1M) / emit(1k) (target <= 1.2); nothing to print when disabled."""
    if len(MEDIANS) == 2:
        ratio = MEDIANS["1M"] / MEDIANS["1k"]
        print(f"\nemit median: 1k {MEDIANS['1k'] * 1e6:.1f} us, 1M {MEDIANS['1M'] * 1e6:.1f} us,"
              f" ratio {ratio:.3f} (target <= 1.2)")  # fmt: skip
