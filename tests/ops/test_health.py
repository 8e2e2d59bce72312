"""The health monitor against real servers it kills and freezes (SIGSTOP): statuses with
hysteresis, transitions told once to the sinks, one fixed probe key, a webhook sink that
never delays a check, the thread and the asyncio task stopping cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from novacache.coherence import InvalidationBus
from novacache.errors import ConfigurationError, TierUnavailable
from novacache.manager import AsyncCacheManager, CacheManager
from novacache.ops.health import (
    HealthMonitor,
    HealthTransition,
    LoggingSink,
    Probe,
    RedisChecker,
    Status,
    WebhookSink,
    probe_key,
)
from novacache.ops.metrics import MetricsCollector
from novacache.tiers import AsyncRedisTier, PostgresTier, RedisTier, SQLiteTier
from tiers.pg_server import PostgresServer, find_bindir
from tiers.redis_servers import Cluster, SentinelSet, Standalone, start_standalone, wait_until


def _prefix() -> str:
    return f"hl-{uuid.uuid4().hex[:10]}:"


class Recorder:
    """A sink keeping every transition it is told."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    def __call__(self, t: HealthTransition) -> None:
        self.seen.append((t.scope, t.old, t.new))


@pytest.fixture
def server(redis_base: Path) -> Iterator[Standalone]:
    """A redis-server of this test alone (killed, frozen, restarted)."""
    s = start_standalone(redis_base)
    yield s
    s.server.kill()


def _monitor(m: Any, **kw: Any) -> HealthMonitor:
    kw.setdefault("failure_threshold", 2)
    kw.setdefault("recovery_threshold", 2)
    kw.setdefault("timeout", 1.0)
    return HealthMonitor(m, interval=0.05, **kw)


def test_healthy_report_and_one_fixed_probe_key(
    impl: ModuleType, server: Standalone, tmp_path: Path
) -> None:
    prefix = _prefix()
    m = CacheManager(
        local=impl.LocalCache(100),
        remote=RedisTier(server.url, prefix=prefix),
        store=SQLiteTier(tmp_path / "s.db", maxbytes=10**6),
    )
    m.set("a", 1)
    before = m.local.stats
    mon = _monitor(m)
    for _ in range(5):
        report = mon.check_now()
    assert report.status == "healthy"
    assert set(report.tiers) == {"local", "remote", "store"}
    assert report.tiers["remote"].consecutive_successes == 5
    assert report.tiers["remote"].detail["role"] == "master"
    assert report.tiers["remote"].detail["used_memory"] > 0
    assert report.tiers["store"].detail["quota_bytes"] == 10**6
    after = m.local.stats
    assert (after.hits, after.misses) == (before.hits, before.misses)  # probes count nothing
    assert m.local.get("a") == 1
    assert json.loads(json.dumps(report.to_dict()))["tiers"]["store"]["status"] == "healthy"
    assert mon.last is report
    assert report.uptime_s >= 0
    # The probes wrote, read and deleted one fixed key: none is left in Redis.
    admin = server.server.client()
    assert admin.keys(f"{prefix}novacache:health:*") == []
    m.close()


class _FailingDelete:
    """A real Redis tier whose ``delete`` fails: a probe's cleanup that never succeeds."""

    def __init__(self, tier: RedisTier) -> None:
        self.tier = tier
        self.config = tier.config
        self.name = tier.name

    def __getattr__(self, name: str) -> Any:
        return getattr(self.tier, name)

    def delete(self, key: str) -> bool:
        raise TierUnavailable("cleanup failed")


def test_failed_cleanups_leave_one_key_with_a_ttl(server: Standalone) -> None:
    prefix = _prefix()
    tier = RedisTier(server.url, prefix=prefix)
    checker = RedisChecker(_FailingDelete(tier), ttl=30)
    mon = HealthMonitor(CacheManager(remote=tier), checkers=[checker], failure_threshold=1)
    for _ in range(5):
        report = mon.check_now()
    assert report.tiers["remote"].status == "unhealthy"
    admin = server.server.client()
    keys = admin.keys(f"{prefix}novacache:health:*")
    assert keys == [f"{prefix}{probe_key()}".encode()]  # one key for every check, not five
    assert 0 < admin.pttl(keys[0]) <= 30_000
    tier.close()


def test_killed_redis_goes_unhealthy_after_the_threshold_and_recovers(
    impl: ModuleType, server: Standalone, tmp_path: Path
) -> None:
    seen = Recorder()
    m = CacheManager(
        local=impl.LocalCache(100),
        remote=RedisTier(server.url, prefix=_prefix(), retries=0),
        store=SQLiteTier(tmp_path / "s.db"),
    )
    mon = _monitor(m, sinks=[seen], failure_threshold=3, recovery_threshold=2)
    assert mon.check_now().status == "healthy"
    server.server.kill()
    statuses = [mon.check_now().tiers["remote"].status for _ in range(3)]
    assert statuses == ["healthy", "healthy", "unhealthy"]  # hysteresis: 3 in a row
    report = mon.last
    assert report is not None
    assert report.tiers["remote"].consecutive_failures == 3
    assert "error" in report.tiers["remote"].detail
    # remote weighs 2 of local 1 + remote 2 + store 2: more than half is not reached.
    assert report.status == "degraded"
    assert seen.seen == [("overall", "healthy", "degraded"), ("remote", "healthy", "unhealthy")]
    mon.check_now()
    assert len(seen.seen) == 2  # transitions only
    server.server.start()
    assert mon.check_now().tiers["remote"].status == "unhealthy"  # 1 success of 2
    assert mon.check_now().status == "healthy"
    assert seen.seen[2:] == [("overall", "degraded", "healthy"), ("remote", "unhealthy", "healthy")]
    m.close()


def test_frozen_redis_never_blocks_a_check(impl: ModuleType, server: Standalone) -> None:
    m = CacheManager(local=impl.LocalCache(10), remote=RedisTier(server.url, prefix=_prefix()))
    mon = _monitor(m, timeout=0.3, failure_threshold=1)
    assert mon.check_now().status == "healthy"
    server.server.pause()
    try:
        report = mon.check_now()
        assert report.tiers["remote"].status == "unhealthy"
        assert "no answer in 0.3 s" in report.tiers["remote"].detail["error"]
        # Redis-only plus L1: remote's weight 2 of 3 is more than half.
        assert report.status == "unhealthy"
        # The probe of the last round is still stuck: not started twice.
        again = mon.check_now().tiers["remote"]
        assert again.status == "unhealthy"
        assert again.detail["error"] in ("the last probe has not ended", "no answer in 0.3 s")
    finally:
        server.server.resume()
    wait_until(
        lambda: mon.check_now().status == "healthy" and mon.check_now().status == "healthy",
        30,
        "the monitor to see Redis again",
        step=0.1,
    )
    mon.stop()
    m.close()


class Scripted:
    """A checker that reports the statuses it is given, in order (no I/O)."""

    def __init__(self, statuses: list[Status], name: str = "x", weight: float = 1.0) -> None:
        self.statuses = statuses
        self.name = name
        self.weight = weight

    async def probe(self) -> Probe:
        return Probe(self.statuses.pop(0), 0.0, {})


def test_hysteresis_a_flapping_tier_does_not_flap(tmp_path: Path) -> None:
    seen = Recorder()
    flapping: list[Status] = ["unhealthy", "healthy"] * 5 + ["degraded"] * 3 + ["unhealthy"] * 3
    m = CacheManager(store=SQLiteTier(tmp_path / "s.db"))
    mon = HealthMonitor(
        m, checkers=[Scripted(flapping)], sinks=[seen], failure_threshold=3, recovery_threshold=2
    )
    statuses = [mon.check_now().status for _ in range(16)]
    assert statuses[:10] == ["healthy"] * 10
    assert statuses[10:13] == ["healthy", "healthy", "degraded"]
    assert statuses[13:] == ["degraded", "degraded", "unhealthy"]
    assert seen.seen == [
        ("overall", "healthy", "degraded"),
        ("x", "healthy", "degraded"),
        ("overall", "degraded", "unhealthy"),
        ("x", "degraded", "unhealthy"),
    ]
    m.close()


def test_sink_errors_are_counted_never_raised(tmp_path: Path, caplog: Any) -> None:
    def broken(t: HealthTransition) -> None:
        raise RuntimeError("sink down")

    m = CacheManager(store=SQLiteTier(tmp_path / "s.db"))
    mon = HealthMonitor(
        m,
        checkers=[Scripted(["unhealthy"])],
        sinks=[broken, LoggingSink()],
        failure_threshold=1,
    )
    with caplog.at_level(logging.INFO, logger="novacache.health"):
        assert mon.check_now().status == "unhealthy"
    assert mon.sink_errors == 2  # the overall and the tier transition
    assert any("x healthy -> unhealthy" in r.getMessage() for r in caplog.records)
    m.close()


def test_bad_configuration_is_refused(tmp_path: Path) -> None:
    m = CacheManager(store=SQLiteTier(tmp_path / "s.db"))
    for kw in ({"interval": 0}, {"failure_threshold": 0}, {"unhealthy_share": 1.0}):
        with pytest.raises(ConfigurationError):
            HealthMonitor(m, **kw)
    with pytest.raises(ConfigurationError, match="unique"):
        HealthMonitor(m, checkers=[Scripted([]), Scripted([])])
    with pytest.raises(ConfigurationError):
        WebhookSink("ftp://example.invalid/")
    m.close()


def test_thread_runs_and_stops(impl: ModuleType, redis_standalone: Standalone) -> None:
    m = CacheManager(
        local=impl.LocalCache(10), remote=RedisTier(redis_standalone.url, prefix=_prefix())
    )
    mon = _monitor(m)
    mon.start()
    wait_until(lambda: mon.checks >= 3, 30, "three rounds of checks")
    mon.stop()
    done = mon.checks
    assert not any(t.name == "novacache-health" for t in threading.enumerate())
    time.sleep(0.2)
    assert mon.checks == done
    m.close()


def test_redis_memory_near_maxmemory_is_degraded(server: Standalone, impl: ModuleType) -> None:
    m = CacheManager(local=impl.LocalCache(10), remote=RedisTier(server.url, prefix=_prefix()))
    mon = _monitor(m, failure_threshold=1)
    assert "memory" not in mon.check_now().tiers["remote"].detail.get("warning", "")
    admin = server.server.client()
    used = int(admin.info("memory")["used_memory"])
    cap = int(used / 0.93)  # used is 93 % of maxmemory: past the 90 % warning
    admin.config_set("maxmemory", cap)
    remote = mon.check_now().tiers["remote"]
    assert remote.status == "degraded", remote.detail
    assert "memory" in remote.detail["warning"]
    assert remote.detail["maxmemory"] == cap
    # Past maxmemory under noeviction the probe's write is refused (OOM): unhealthy, and
    # the memory is still reported.
    admin.config_set("maxmemory-policy", "noeviction")
    admin.config_set("maxmemory", used // 2)
    remote = mon.check_now().tiers["remote"]
    assert remote.status == "unhealthy"
    assert "OOM" in remote.detail["error"] or "maxmemory" in remote.detail["error"]
    assert remote.detail["maxmemory"] == used // 2
    assert remote.detail["used_memory"] > used // 2
    assert "memory" in remote.detail["warning"]
    admin.config_set("maxmemory", 0)
    m.close()


def test_bus_unhealthy_when_redis_dies(impl: ModuleType, server: Standalone) -> None:
    tier = RedisTier(server.url, prefix=_prefix(), retries=0)
    m = CacheManager(local=impl.LocalCache(10), remote=tier, bus=InvalidationBus(tier))
    mon = _monitor(m, failure_threshold=1)
    wait_until(lambda: mon.check_now().tiers["bus"].status == "healthy", 30, "the bus up")
    server.server.kill()
    wait_until(lambda: mon.check_now().tiers["bus"].status == "unhealthy", 30, "the bus down")
    m.close()


def test_sentinel_and_cluster_probes(
    redis_sentinel: SentinelSet, redis_cluster: Cluster, impl: ModuleType
) -> None:
    sentinel = RedisTier(redis_sentinel.url, prefix=_prefix())
    cluster = RedisTier(redis_cluster.url, prefix=_prefix())
    for tier in (sentinel, cluster):
        m = CacheManager(local=impl.LocalCache(10), remote=tier)
        report = _monitor(m, failure_threshold=1).check_now()
        assert report.status == "healthy", report.tiers["remote"].detail
        detail = report.tiers["remote"].detail
        if tier is sentinel:
            assert detail["sentinel_master"] == f"127.0.0.1:{redis_sentinel.current_master_port()}"
            assert detail["role"] == "master"
        else:
            assert detail["cluster_state"] == "ok"
        m.close()


# -- PostgreSQL ---------------------------------------------------------------------------


def _server_pids(pg: PostgresServer) -> list[int]:
    """The postmaster and its children."""
    master = int((pg.data / "postmaster.pid").read_text().split()[0])
    pids = [master]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                    pids.append(int(entry))
    return pids


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    pg = PostgresServer(find_bindir())
    try:
        pg.initdb()
        pg.start()
        yield pg
    finally:
        pg.destroy()


def test_postgres_store_killed_and_frozen(own_postgres: PostgresServer, impl: ModuleType) -> None:
    pg = own_postgres
    m = CacheManager(
        local=impl.LocalCache(10),
        store=PostgresTier(pg.dsn, table=f"t_{uuid.uuid4().hex[:8]}", timeout=0.5),
    )
    m.set("a", 1)
    mon = _monitor(m, failure_threshold=1, recovery_threshold=1, timeout=1.0)
    report = mon.check_now()
    assert report.status == "healthy"
    assert report.tiers["store"].detail["entries"] >= 1
    pg.stop("immediate")
    assert mon.check_now().tiers["store"].status == "unhealthy"
    pg.start()
    wait_until(lambda: mon.check_now().status == "healthy", 30, "the store back", step=0.1)
    pids = _server_pids(pg)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        report = mon.check_now()
        assert report.tiers["store"].status == "unhealthy"
        assert report.status == "unhealthy"  # store 2 of local 1 + store 2
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
    wait_until(lambda: mon.check_now().status == "healthy", 60, "the store thawed", step=0.1)
    mon.stop()
    m.close()


# -- webhook ------------------------------------------------------------------------------


class _Hook(http.server.BaseHTTPRequestHandler):
    mode = "ok"  # "ok", "slow", "fail"
    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.mode == "slow":
            time.sleep(1.0)
        type(self).received.append(json.loads(body))
        self.send_response(500 if self.mode == "fail" else 200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def hook_server(mode: str) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    handler = type(f"Hook_{mode}", (_Hook,), {"mode": mode, "received": []})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_port}/hook", handler.received
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


def test_webhook_sink_posts_transitions_and_never_blocks(tmp_path: Path) -> None:
    m = CacheManager(store=SQLiteTier(tmp_path / "s.db"))
    with (
        hook_server("ok") as (ok_url, ok_got),
        hook_server("slow") as (slow_url, slow_got),
        hook_server("fail") as (fail_url, fail_got),
    ):
        ok = WebhookSink(ok_url, timeout=2.0)
        slow = WebhookSink(slow_url, timeout=0.2, retries=1, backoff=0.01)
        fail = WebhookSink(fail_url, timeout=2.0, retries=2, backoff=0.01)
        dead = WebhookSink("http://127.0.0.1:9/nothing", timeout=0.2, retries=0)
        script: list[Status] = ["unhealthy", "healthy"]
        mon = HealthMonitor(
            m,
            checkers=[Scripted(script)],
            sinks=[slow, fail, dead, ok],
            failure_threshold=1,
            recovery_threshold=1,
        )
        mon.check_now()
        mon.check_now()
        # The checks are done while the slow endpoint still holds its first request; the
        # fast one got its posts all the same.
        wait_until(lambda: ok.sent == 4, 10, "4 posts to the fast endpoint")
        assert [(p["scope"], p["new"]) for p in ok_got] == [
            ("overall", "unhealthy"),
            ("x", "unhealthy"),
            ("overall", "healthy"),
            ("x", "healthy"),
        ]
        assert ok_got[0]["report"]["tiers"]["x"]["status"] == "unhealthy"
        wait_until(lambda: fail.failed == 4, 20, "4 failed posts (3 tries each)")
        assert len(fail_got) == 12
        wait_until(lambda: dead.failed == 4, 20, "4 posts to nowhere")
        wait_until(lambda: slow.failed + slow.sent == 4, 30, "the slow posts to give up")
        assert slow.failed == 4  # each timed out twice (0.2 s against a 1 s answer)
        wait_until(lambda: len(slow_got) == 8, 30, "the slow endpoint to see 2 tries of 4")
        for sink in (ok, slow, fail, dead):
            sink.close()
    m.close()


def test_webhook_queue_is_bounded(tmp_path: Path) -> None:
    with hook_server("slow") as (url, _):
        sink = WebhookSink(url, timeout=5.0, retries=0, queue_size=2)
        m = CacheManager(store=SQLiteTier(tmp_path / "s.db"))
        mon = HealthMonitor(
            m,
            checkers=[Scripted(["unhealthy", "healthy"] * 5)],
            sinks=[sink],
            failure_threshold=1,
            recovery_threshold=1,
        )
        for _ in range(10):
            mon.check_now()  # 20 transitions; the sink holds at most 1 posting + 2 queued
        assert sink.dropped >= 17
        sink.close(timeout=5)
        m.close()


# -- asyncio ------------------------------------------------------------------------------


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def test_async_monitor_task_and_killed_redis(impl: ModuleType, server: Standalone) -> None:
    async def main() -> None:
        seen = Recorder()
        m = AsyncCacheManager(
            local=impl.LocalCache(10),
            remote=AsyncRedisTier(server.url, prefix=_prefix(), retries=0),
        )
        mon = _monitor(m, sinks=[seen], failure_threshold=2)
        with pytest.raises(ConfigurationError):
            mon.check_now()
        report = await mon.acheck_now()
        assert report.status == "healthy"
        assert report.tiers["remote"].detail["role"] == "master"
        await mon.astart()
        deadline = time.monotonic() + 30
        while mon.checks < 4 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert mon.checks >= 4
        server.server.kill()
        deadline = time.monotonic() + 30
        while ("remote", "healthy", "unhealthy") not in seen.seen:
            assert time.monotonic() < deadline, seen.seen
            await asyncio.sleep(0.02)
        await mon.astop()
        done = mon.checks
        await asyncio.sleep(0.2)
        assert mon.checks == done
        assert mon.last is not None
        assert mon.last.status == "unhealthy"  # remote 2 of 3
        await m.close()

    _run(main())


def test_async_monitor_frozen_redis(impl: ModuleType, server: Standalone) -> None:
    async def main() -> None:
        m = AsyncCacheManager(
            local=impl.LocalCache(10), remote=AsyncRedisTier(server.url, prefix=_prefix())
        )
        mon = _monitor(m, timeout=0.3, failure_threshold=1)
        assert (await mon.acheck_now()).status == "healthy"
        server.server.pause()
        try:
            report = await mon.acheck_now()
            assert report.tiers["remote"].status == "unhealthy"
            assert "no answer in 0.3 s" in report.tiers["remote"].detail["error"]
        finally:
            server.server.resume()
        deadline = time.monotonic() + 30
        while (await mon.acheck_now()).status != "healthy":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        await mon.astop()
        await m.close()

    _run(main())


def test_collector_exports_the_health_report(impl: ModuleType, server: Standalone) -> None:
    m = CacheManager(local=impl.LocalCache(10), remote=RedisTier(server.url, prefix=_prefix()))
    mon = _monitor(m)
    registry = CollectorRegistry()
    MetricsCollector(m, health=mon, registry=registry)
    assert b"novacache_health_status" not in generate_latest(registry)  # no report yet
    mon.check_now()
    text = generate_latest(registry).decode()
    assert 'novacache_health_status{cache="default",state="healthy"} 1.0' in text
    assert 'novacache_tier_health_status{cache="default",state="healthy",tier="remote"} 1.0' in text
    assert 'novacache_redis_memory_used_bytes{cache="default",tier="remote"}' in text
    m.close()
