"""RedisTier against a bare redis-py client on the same server, in the same run.

Targets (issue 5): ``RedisTier.get`` of a 100-byte hit within 1.10x of a bare ``GET``;
``get_many`` of 100 keys within 1.10x of a bare ``MGET`` (Cluster: ``mget_nonatomic``,
one pipeline per node). The bare client is "equal": redis-py with hiredis, the same
server, the same timeouts and the same connection-pool class as the tier.

    pytest benchmarks/test_redis_get.py                        # measure
    taskset -c 0 pytest benchmarks/test_redis_get.py           # one vCPU: stable ratios
    pytest benchmarks/test_redis_get.py --benchmark-disable    # smoke run

Each test checks the value it read, so the smoke run is a correctness test too.
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
import redis.cluster

from novacache.tiers.redis import RedisTier
from tiers.redis_servers import (
    Cluster,
    Standalone,
    require_redis,
    start_cluster,
    start_standalone,
    topology,
)

VALUE = bytes(range(100))
N_MANY = 100


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    require_redis("redis-server", "redis-cli")
    base = tmp_path_factory.mktemp("redis-bench")
    with topology(start_standalone, base) as standalone, topology(start_cluster, base) as cluster:
        yield {"standalone": standalone, "cluster": cluster}


def _bare(topology: str, server: Standalone | Cluster) -> Any:
    """redis-py configured like the tier: same timeouts, blocking pool, hiredis."""
    common = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5, "client_name": "bare"}
    if isinstance(server, Standalone):
        pool = redis.BlockingConnectionPool(
            host="127.0.0.1", port=server.server.port, max_connections=64, timeout=0.5, **common
        )
        return redis.Redis(connection_pool=pool)
    return redis.cluster.RedisCluster(
        startup_nodes=[redis.cluster.ClusterNode(h, p) for h, p in server.startup_nodes],
        max_connections=64,
        **common,
    )


@pytest.fixture(params=["standalone", "cluster"], scope="module")
def pair(request: pytest.FixtureRequest, servers: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A tier and a bare client on one topology, with the same keys stored."""
    topology = request.param
    server = servers[topology]
    tier = RedisTier(server.url, prefix=f"bench-{uuid.uuid4().hex[:8]}:")
    bare = _bare(topology, server)
    many = [f"m{i}" for i in range(N_MANY)]
    tier.set("hit", VALUE)
    tier.set_many(dict.fromkeys(many, VALUE))
    yield {
        "topology": topology,
        "tier": tier,
        "bare": bare,
        "many": many,
        "raw_hit": (tier.prefix + "hit").encode(),
        "str_many": [tier.prefix + k for k in many],
        "raw_many": [(tier.prefix + k).encode() for k in many],
    }
    tier.clear()
    tier.close()
    bare.close()


def test_get_tier(benchmark: Any, pair: dict[str, Any]) -> None:
    benchmark.group = f"redis-get-{pair['topology']}"
    assert benchmark(pair["tier"].get, "hit") == VALUE


def test_get_bare(benchmark: Any, pair: dict[str, Any]) -> None:
    benchmark.group = f"redis-get-{pair['topology']}"
    assert benchmark(pair["bare"].get, pair["raw_hit"]) == VALUE


def test_get_many_tier(benchmark: Any, pair: dict[str, Any]) -> None:
    benchmark.group = f"redis-get-many-{pair['topology']}"
    got = benchmark(pair["tier"].get_many, pair["many"])
    assert len(got) == N_MANY
    assert set(got.values()) == {VALUE}


@pytest.mark.parametrize("keys", ["str_many", "raw_many"])
def test_get_many_bare(benchmark: Any, pair: dict[str, Any], keys: str) -> None:
    """Bare MGET given the full keys as str (what an application holds) or as bytes
    already encoded (the floor: redis-py skips its own encoding)."""
    benchmark.group = f"redis-get-many-{pair['topology']}"
    bare = pair["bare"]
    mget = bare.mget_nonatomic if pair["topology"] == "cluster" else bare.mget
    got = benchmark(mget, pair[keys])
    assert got == [VALUE] * N_MANY


def interleaved(rounds: int = 60) -> None:
    """Tier and bare client alternated round by round on each topology (load on the
    machine then hits both alike); prints per-call medians and the median of the
    per-round ratios. Run: ``python benchmarks/test_redis_get.py``."""
    import statistics
    import tempfile
    import time
    from functools import partial

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        with (
            topology(start_standalone, base) as standalone,
            topology(start_cluster, base) as cluster,
        ):
            for name, server in (("standalone", standalone), ("cluster", cluster)):
                tier = RedisTier(server.url, prefix="bench:")
                bare = _bare(name, server)
                many = [f"m{i}" for i in range(N_MANY)]
                full = [tier.prefix + k for k in many]
                tier.set("hit", VALUE)
                tier.set_many(dict.fromkeys(many, VALUE))
                mget = bare.mget_nonatomic if name == "cluster" else bare.mget
                cases = {
                    "get": (partial(tier.get, "hit"), partial(bare.get, "bench:hit"), 200),
                    "get_many(100)": (partial(tier.get_many, many), partial(mget, full), 20),
                }
                for case, (ours, theirs, n) in cases.items():
                    times: dict[str, list[float]] = {"tier": [], "bare": []}
                    for _ in range(rounds):
                        for label, fn in (("tier", ours), ("bare", theirs)):
                            start = time.perf_counter()
                            for _ in range(n):
                                fn()
                            times[label].append((time.perf_counter() - start) / n)
                    ratio = statistics.median(
                        t / b for t, b in zip(times["tier"], times["bare"], strict=True)
                    )
                    print(
                        f"{name:10s} {case:14s} tier {statistics.median(times['tier']) * 1e6:8.1f}"
                        f" us  bare {statistics.median(times['bare']) * 1e6:8.1f} us"
                        f"  ratio {ratio:.3f}  ({1 / statistics.median(times['tier']):,.0f}"
                        " tier calls/s)"
                    )
                tier.clear()
                tier.close()
                bare.close()


if __name__ == "__main__":
    interleaved()
