"""The Prometheus collector against real servers: what a scrape says is what the engine
counted, the latency histograms count every timed call (also under threads), the timers
come off again, and /metrics is served (HTTP and ASGI)."""

from __future__ import annotations

import asyncio
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from novacache.coherence import InvalidationBus
from novacache.invalidation import InvalidationEngine
from novacache.manager import AsyncCacheManager, CacheManager
from novacache.ops.metrics import (
    DEFAULT_BUCKETS,
    LatencyRecorder,
    MetricsCollector,
    instrument,
    metrics_app,
    start_http_server,
)
from novacache.tiers import AsyncRedisTier, PostgresTier, RedisTier, SQLiteTier
from tiers.redis_servers import Standalone, start_standalone


def _prefix() -> str:
    return f"ops-{uuid.uuid4().hex[:10]}:"


def scrape(registry: CollectorRegistry) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """``{(sample name, labels): value}`` of one scrape, parsed from the text format."""
    text = generate_latest(registry).decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def manager(
    impl: ModuleType, redis_standalone: Standalone, tmp_path: Path
) -> Iterator[CacheManager]:
    m = CacheManager(
        local=impl.LocalCache(50),
        remote=RedisTier(redis_standalone.url, prefix=_prefix()),
        store=SQLiteTier(tmp_path / "l3.db"),
    )
    yield m
    m.close()


def test_scrape_reports_what_the_manager_counted(
    manager: CacheManager, registry: CollectorRegistry
) -> None:
    collector = MetricsCollector(manager, name="app", registry=registry)
    for i in range(80):  # 80 > L1's 50: evictions
        manager.set(f"k{i}", {"i": i}, ttl=60)
    for i in range(80):
        assert manager.get(f"k{i}") == {"i": i}
    assert manager.get("absent") is None
    assert manager.get_or_load("loaded", lambda: 7) == 7
    s = scrape(registry)
    st, ls = manager.stats.snapshot(), manager.local.stats
    assert value(s, "novacache_hits_total", cache="app", tier="local") == ls.hits
    assert value(s, "novacache_misses_total", cache="app", tier="local") == ls.misses
    assert value(s, "novacache_evictions_total", cache="app", tier="local") == ls.evictions > 0
    assert value(s, "novacache_entries", cache="app", tier="local") == ls.currsize == 50
    assert value(s, "novacache_capacity_entries", cache="app", tier="local") == 50
    for slot in ("remote", "store"):
        counts = st["tiers"].get(slot, {})
        assert value(s, "novacache_hits_total", cache="app", tier=slot) == counts.get("hits", 0)
        assert value(s, "novacache_misses_total", cache="app", tier=slot) == counts.get("misses", 0)
    assert value(s, "novacache_hits_total", cache="app", tier="remote") > 0
    assert value(s, "novacache_loads_total", cache="app") == st["loads"] == 1
    assert value(s, "novacache_breaker_state", cache="app", tier="remote", state="closed") == 1
    # The histogram of Redis GETs counts every tier get of the reads above.
    gets = value(
        s, "novacache_tier_operation_duration_seconds_count", cache="app", tier="remote",
        operation="get",
    )  # fmt: skip
    remote = st["tiers"]["remote"]
    assert gets == remote["hits"] + remote["misses"] + remote["read_errors"]
    inf = value(
        s, "novacache_tier_operation_duration_seconds_bucket", cache="app", tier="remote",
        operation="get", le="+Inf",
    )  # fmt: skip
    first = value(
        s, "novacache_tier_operation_duration_seconds_bucket", cache="app", tier="remote",
        operation="get", le=repr(DEFAULT_BUCKETS[0]),
    )  # fmt: skip
    assert inf == gets
    assert 0 <= first <= inf
    assert value(
        s, "novacache_tier_operation_duration_seconds_sum", cache="app", tier="remote",
        operation="get",
    ) > 0  # fmt: skip
    collector.close()
    assert "get" not in vars(manager.remote)
    assert "set" not in vars(manager.store)
    assert not any(name.startswith("novacache_hits") for name, _ in scrape(registry))


def test_breaker_and_failures_of_a_killed_server(
    redis_base: Path, registry: CollectorRegistry, impl: ModuleType
) -> None:
    server = start_standalone(redis_base)
    try:
        m = CacheManager(
            local=impl.LocalCache(10), remote=RedisTier(server.url, prefix=_prefix(), retries=0)
        )
        MetricsCollector(m, registry=registry)
        m.set("a", 1)
        server.server.kill()
        m.local.clear()
        for _ in range(10):
            assert m.get("a") is None  # a read never raises: a miss of that tier
        s = scrape(registry)
        assert (
            value(s, "novacache_breaker_state", cache="default", tier="remote", state="open") == 1
        )
        assert value(s, "novacache_breaker_opened_total", cache="default", tier="remote") == 1
        assert value(
            s, "novacache_errors_total", cache="default", tier="remote", operation="read",
            kind="failure",
        ) == m.stats.get("remote", "read_errors") > 0  # fmt: skip
        assert value(
            s, "novacache_tier_failures_total", cache="default", tier="remote", kind="unavailable"
        ) == m.remote.stats["unavailable"] > 0  # fmt: skip
        assert value(
            s, "novacache_breaker_rejected_total", cache="default", tier="remote"
        ) == m.remote.breaker.rejected > 0  # fmt: skip
        m.close()
    finally:
        server.server.kill()


def test_histogram_is_exact_under_threads(registry: CollectorRegistry, tmp_path: Path) -> None:
    store = SQLiteTier(tmp_path / "s.db")
    recorder = LatencyRecorder()
    remove = instrument(store, recorder, "store")
    store.set("k", b"v")
    per, threads = 300, 4
    barrier = threading.Barrier(threads)

    def work() -> None:
        barrier.wait()
        for _ in range(per):
            assert store.get("k") == b"v"

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    cumulative, total = recorder.histograms()[("default", "store", "get")]
    assert cumulative[-1] == per * threads
    assert total > 0
    assert cumulative == sorted(cumulative)
    with pytest.raises(ValueError, match="already timed"):
        instrument(store, recorder, "store")
    remove()
    assert "get" not in vars(store)
    store.close()


def test_timer_keeps_results_and_exceptions(tmp_path: Path) -> None:
    store = SQLiteTier(tmp_path / "s.db")
    recorder = LatencyRecorder((0.001, 1.0))
    instrument(store, recorder, "store")
    with pytest.raises(TypeError):
        store.get(1)  # type: ignore[arg-type]
    assert store.get("absent") is None
    cumulative, _ = recorder.histograms()[("default", "store", "get")]
    assert cumulative[-1] == 2  # the failed call is timed too
    store.close()


def test_bad_buckets_and_names(manager: CacheManager, registry: CollectorRegistry) -> None:
    for buckets in ((), (0.1, 0.01), (0.0, 1.0), (1.0, 1.0)):
        with pytest.raises(ValueError, match="buckets"):
            LatencyRecorder(buckets)
    c = MetricsCollector(manager, registry=registry, latency=False)
    with pytest.raises(ValueError, match="already exported"):
        c.add(manager, name="default")
    with pytest.raises(TypeError, match="not a cache manager"):
        c.add(object(), name="x")
    assert "get" not in vars(manager.remote)  # latency=False: untouched
    c.close()
    c.close()


def test_invalidation_and_bus_metrics(
    impl: ModuleType, redis_standalone: Standalone, registry: CollectorRegistry
) -> None:
    tier = RedisTier(redis_standalone.url, prefix=_prefix())
    bus = InvalidationBus(tier)
    m = CacheManager(local=impl.LocalCache(100), remote=tier, bus=bus)
    engine = InvalidationEngine(m)
    engine.rule("vm.moved", keys=["vm:{vm_id}"])
    MetricsCollector(m, registry=registry)
    m.set("vm:1", "x")
    report = engine.emit("vm.moved", vm_id=1)
    assert "vm:1" in report.keys
    s = scrape(registry)
    snap = engine.stats.snapshot()
    assert (
        value(s, "novacache_invalidations_total", cache="default")
        == snap["counts"]["invalidations"]
        >= 1
    )
    assert value(s, "novacache_invalidated_keys_total", cache="default") == snap["counts"]["keys"]
    for who, counts in snap["by"].items():
        assert value(
            s, "novacache_invalidation_events_total", cache="default", strategy=who
        ) == counts.get("events", 0)  # fmt: skip
    assert value(s, "novacache_bus_published_total", cache="default") == bus.published >= 1
    assert value(s, "novacache_bus_healthy", cache="default") in (0, 1)
    m.close()


def test_async_manager_histograms(
    redis_standalone: Standalone, registry: CollectorRegistry, impl: ModuleType
) -> None:
    async def main() -> None:
        m = AsyncCacheManager(
            local=impl.LocalCache(10), remote=AsyncRedisTier(redis_standalone.url, prefix=_prefix())
        )
        c = MetricsCollector(m, registry=registry)
        for i in range(20):
            await m.set(f"k{i}", i)
        m.local.clear()
        assert await asyncio.gather(*(m.get(f"k{i}") for i in range(20))) == list(range(20))
        s = scrape(registry)
        gets = value(
            s, "novacache_tier_operation_duration_seconds_count", cache="default",
            tier="remote", operation="get",
        )  # fmt: skip
        assert gets == m.stats.get("remote", "hits") == 20
        assert value(
            s, "novacache_tier_operation_duration_seconds_count", cache="default",
            tier="remote", operation="set",
        ) == 20  # fmt: skip
        c.close()
        assert "get" not in vars(m.remote)
        await m.close()

    asyncio.run(main())


def test_http_server_and_asgi_app(manager: CacheManager, registry: CollectorRegistry) -> None:
    MetricsCollector(manager, registry=registry)
    manager.set("a", 1)
    server, thread = start_http_server(0, registry=registry)
    try:
        port = server.server_port
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            body = r.read().decode()
        assert 'novacache_tier_operation_duration_seconds_count{cache="default"' in body
    finally:
        server.shutdown()
        thread.join(5)

    app = metrics_app(registry)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "method": "GET", "path": "/metrics", "query_string": b"",
        "headers": [], "http_version": "1.1", "scheme": "http", "root_path": "",
    }  # fmt: skip
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 200
    body = b"".join(m.get("body", b"") for m in sent[1:]).decode()
    assert 'novacache_hits_total{cache="default",tier="local"}' in body


def test_a_tier_call_is_timed_once_under_its_own_name(tmp_path: Path, postgres_dsn: str) -> None:
    """SQLite's set and delete, and PostgreSQL's delete, are made of their ``_many``
    twins: each call is counted once, as what the caller called."""
    sqlite = SQLiteTier(tmp_path / "s.db")
    pg = PostgresTier(postgres_dsn, table=f"t_{uuid.uuid4().hex[:8]}")
    recorder = LatencyRecorder()
    for label, tier in (("sqlite", sqlite), ("pg", pg)):
        instrument(tier, recorder, label)
        tier.set("a", b"x")
        assert tier.delete("a")
        hist = recorder.histograms().items()
        counts = {op: c[-1] for (_, t, op), (c, _) in hist if t == label and c[-1]}
        assert counts == {"set": 1, "delete": 1}, label
    sqlite.close()
    pg.close()
