"""The fault tests of the Redis tier, run through the manager: L1 + RedisTier + SQLiteTier
while a Sentinel master or a Cluster master is killed (SIGKILL).

Meanwhile ``get`` never raises and never returns a wrong value: it serves from L1, L3 and
the loader; writes go to the tiers that are up and report Redis; and within a bounded
time after the failover, writes reach Redis again. Each test starts its own topology
(the shared session servers are never broken); waits are deadlines, never sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from novacache import LocalCache
from novacache.breaker import CircuitBreaker
from novacache.manager import CacheManager
from novacache.tiers import RedisTier, SQLiteTier
from tiers.redis_servers import Cluster, RedisProcess, start_cluster, start_sentinel_set, topology

from ._support import prefix

RECOVERY = 20.0  # seconds allowed from the kill to a write that reaches Redis again


def _manager(url: str, ns: str, path: Path) -> CacheManager:
    remote = RedisTier(
        url,
        prefix=ns,
        breaker=CircuitBreaker(threshold=5, cooldown=0.2),
        timeout=0.3,
        connect_timeout=0.3,
    )
    return CacheManager(
        local=LocalCache(1000), remote=remote, store=SQLiteTier(path), on_write_error="report"
    )


def _wait_for_replicas(masters: list[RedisProcess]) -> None:
    """Every master's writes are on its replica (so a failover loses none of them)."""
    for master in masters:
        client = master.client()
        try:
            assert client.execute_command("WAIT", 1, 2000) == 1
        finally:
            client.close()


def _ride_out_the_failover(m: CacheManager, url: str, ns: str, kill: Callable[[], None]) -> float:
    """Write keys, ``kill``, then read and write through the manager until a write
    reaches Redis again (bounded by ``RECOVERY``); seconds that took. Every read on the
    way is checked against what was written."""
    assert m.local is not None
    assert m.remote is not None
    written = {f"k{i}": f"v{i}" for i in range(40)}
    report = m.set_many(written, ttl=300)
    assert report.ok, report.failed
    kill()
    start = time.monotonic()
    deadline = start + RECOVERY
    rounds = 0
    back = False
    while not back:
        assert time.monotonic() < deadline, f"no write reached Redis within {RECOVERY} s"
        rounds += 1
        # L1 hits: never touch Redis.
        assert m.get_many(list(written)) == written
        # Cold L1: L2 fails or answers; either way the value is the one written (L3 has it).
        m.local.clear()
        for key in ("k0", f"k{rounds % 40}", "k39"):
            assert m.get(key) == written[key]
        # A key no tier has: the loader's value, never an exception.
        fresh = f"loaded {rounds}"
        assert m.get_or_load(f"new:{rounds}", lambda: fresh, ttl=300) == fresh  # noqa: B023
        assert m.get(f"new:{rounds}") == f"loaded {rounds}"
        # Writes: L1 and L3 take them at once; Redis when it is back, in every slot (64
        # keys: some are on the killed node, but for a chance of (2/3)**64), and then
        # they are readable straight from the tier.
        batch = {f"w:{rounds}:{j}": j for j in range(64)}
        report = m.set_many(batch, ttl=300)
        assert {"local", "store"} <= set(report.written)
        assert set(report.failed) <= {"remote"}
        if "remote" in report.written:
            back = len(m.remote.get_many(list(batch))) == len(batch)
    took = time.monotonic() - start
    # The outage was seen (and counted), not skipped over.
    assert m.stats.get("remote", "read_errors") + m.stats.write_errors > 0
    # Writes reach Redis again: another manager on Redis alone reads them.
    m.set("after", "failover", ttl=300)
    with CacheManager(remote=RedisTier(url, prefix=ns, timeout=2)) as only_redis:
        assert only_redis.get("after") == "failover"
        assert only_redis.get_many(list(batch)) == batch
        got = only_redis.get_many(list(written))
        assert all(written[k] == v for k, v in got.items())  # whatever survived is right
    return took


def test_manager_rides_out_a_killed_sentinel_master(redis_base: Path, tmp_path: Path) -> None:
    with topology(start_sentinel_set, redis_base) as sset:
        old_master = sset.master.port
        ns = prefix()
        with _manager(sset.url, ns, tmp_path / "l3.db") as m:
            m.set("warm", 1)  # connected and watching before the kill

            def kill() -> None:
                _wait_for_replicas([sset.master])
                sset.master.kill()

            took = _ride_out_the_failover(m, sset.url, ns, kill)
            assert sset.current_master_port() == sset.replica.port != old_master
            assert took < RECOVERY


def test_manager_rides_out_a_killed_cluster_master(redis_base: Path, tmp_path: Path) -> None:
    with topology(start_cluster, redis_base) as cluster:
        assert isinstance(cluster, Cluster)
        ns = prefix()
        with _manager(cluster.url, ns, tmp_path / "l3.db") as m:
            m.set("warm", 1)
            victim = cluster.masters()[0]

            def kill() -> None:
                _wait_for_replicas(cluster.masters())
                victim.kill()

            took = _ride_out_the_failover(m, cluster.url, ns, kill)
            assert victim.port not in {node.port for node in cluster.masters()}
            assert took < RECOVERY
