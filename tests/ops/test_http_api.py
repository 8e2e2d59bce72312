"""The management API served by a real uvicorn over real Redis + SQLite, driven over HTTP
with httpx: auth, limits, 422s, forced and batched invalidation across tiers and across
L1s (through the bus), stats, health, probes and warmup jobs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from manager._support import live
from novacache import LocalCache
from novacache.coherence import InvalidationBus
from novacache.errors import ConfigurationError
from novacache.manager import AsyncCacheManager, CacheManager
from novacache.ops.http import create_app
from novacache.tiers import AsyncRedisTier, AsyncSQLiteTier, RedisTier
from tiers.redis_servers import Standalone

from ._providers import BrokenWarmer, KeyWarmer, PingMonitor, text_metrics
from ._served import Served, serve, wait_for

TOKEN = "t0k3n-" + "x" * 26
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Rig:
    """The served app, its manager (in the server's loop) and a peer process's manager
    (synchronous, its own L1 and bus) on the same Redis."""

    def __init__(self, served: Served, manager: AsyncCacheManager, peer: CacheManager) -> None:
        self.served = served
        self.manager = manager
        self.peer = peer
        self.http = httpx.Client(base_url=served.url, timeout=30)

    def get(self, key: str) -> Any:
        return self.served.run(self.manager.get(key))

    def set(self, key: str, value: Any, **kw: Any) -> None:
        self.served.run(self.manager.set(key, value, **kw))


@contextlib.contextmanager
def _rig(tmp_path: Path, url: str, **options: Any) -> Iterator[Rig]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    prefix = f"http-{secrets.token_hex(4)}:"
    holder: dict[str, Any] = {}
    gate = options.pop("gate", None)

    async def build() -> tuple[Any, Any]:
        store = await AsyncSQLiteTier.open(tmp_path / "store.db")
        manager = AsyncCacheManager(
            local=LocalCache(1000),
            remote=AsyncRedisTier(url, prefix=prefix),
            store=store,
            bus=InvalidationBus(RedisTier(url, prefix=prefix)),
        )
        holder["manager"] = manager
        warmers = {
            "vm_metadata": KeyWarmer(manager, "vm", gate),
            "resource_allocation": KeyWarmer(manager, "res"),
            "migration_state": BrokenWarmer(),
        }
        holder["warmers"] = warmers
        opts: dict[str, Any] = {
            "token": TOKEN,
            "health": PingMonitor(manager),
            "warmers": warmers,
            "metrics": text_metrics,
        }
        opts.update(options)
        return create_app(manager, **opts), manager.close

    peer = CacheManager(
        local=LocalCache(100),
        remote=RedisTier(url, prefix=prefix),
        bus=InvalidationBus(RedisTier(url, prefix=prefix)),
    )
    try:
        with serve(build) as served:
            rig = Rig(served, holder["manager"], peer)
            rig.warmers = holder["warmers"]  # type: ignore[attr-defined]
            assert wait_for(lambda: holder["manager"].bus.healthy and peer.bus.healthy)
            with rig.http:
                yield rig
    finally:
        peer.close()


@pytest.fixture
def rig(tmp_path: Path, redis_standalone: Standalone) -> Iterator[Rig]:
    with _rig(tmp_path, redis_standalone.url) as rig:
        yield rig


def _everywhere(rig: Rig, key: str) -> dict[str, Any]:
    """Where ``key`` is: this manager's L1, Redis, the store, the peer's L1 (a delete's
    tombstone in a tier is no entry)."""
    m = rig.manager
    remote = live(rig.served.run(m.remote.get(key)))
    store = live(rig.served.run(m.store.get(key)))
    return {
        "local": key in m.local,
        "remote": remote is not None,
        "store": store is not None,
        "peer": key in rig.peer.local,
    }


def _seed(rig: Rig, key: str) -> None:
    heard = rig.peer.bus.received
    rig.set(key, {"v": key})
    # The announcement of this very write reaches the peer's L1 asynchronously: once it
    # has arrived it cannot drop the copy the peer reads next.
    assert wait_for(lambda: rig.peer.bus.received > heard)
    # The peer reads it into its L1 (a read during which a bus message arrived skips the
    # fill: read again then).
    assert wait_for(lambda: rig.peer.get(key) == {"v": key} and key in rig.peer.local)
    # (This manager's L1 too: a bus that missed its heartbeat deadline flushed it.)
    assert wait_for(lambda: rig.get(key) == {"v": key} and key in rig.manager.local)
    seen = _everywhere(rig, key)
    assert seen["remote"]
    assert seen["store"]


# -- auth ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token-wrong-token-xxxxxx"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Bearer {TOKEN[:-1]}"},
    ],
    ids=["none", "wrong", "scheme", "longer", "shorter"],
)
def test_a_write_without_the_right_token_is_401_and_changes_nothing(
    rig: Rig, headers: dict[str, str]
) -> None:
    _seed(rig, "vm:1")
    r = rig.http.post(
        "/api/cache/invalidate", json={"keys": ["vm:1"], "force": True}, headers=headers
    )
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.json()["error"] == "unauthorized"
    r = rig.http.post("/api/cache/warmup", json={"type": "vm_metadata"}, headers=headers)
    assert r.status_code == 401
    kept = _everywhere(rig, "vm:1")
    assert kept["remote"]
    assert kept["store"]
    assert kept["local"] or rig.manager.bus.flushes  # (a missed heartbeat flushes L1)
    assert kept["peer"] or rig.peer.bus.flushes
    assert rig.served.app.state.novacache.jobs == {}


def test_reads_are_open_unless_protected(tmp_path: Path, redis_standalone: Standalone) -> None:
    for protect in (False, True):
        with _rig(tmp_path / str(protect), redis_standalone.url, protect_reads=protect) as rig:
            for path in ("/api/cache/stats", "/api/cache/health", "/metrics"):
                assert rig.http.get(path).status_code == (401 if protect else 200), path
                assert rig.http.get(path, headers=AUTH).status_code == 200, path
            for path in ("/healthz", "/readyz", "/openapi.json"):  # probes stay open
                assert rig.http.get(path).status_code == 200, path


def test_an_app_without_a_token_must_say_insecure() -> None:
    manager = CacheManager(local=LocalCache(10))
    with pytest.raises(ConfigurationError, match="bearer token"):
        create_app(manager)
    for bad in ("short", "sixteen chars with spaces", "é" * 20, "\ud800" * 20, b"x" * 20):
        with pytest.raises(ConfigurationError, match="16 printable ASCII"):
            create_app(manager, token=bad)  # type: ignore[arg-type]
    create_app(manager, insecure=True)  # explicit


# -- invalidation -------------------------------------------------------------------------


def test_forced_invalidation_is_done_everywhere_before_the_answer(rig: Rig) -> None:
    for key in ("vm:1", "vm:2", "node:a"):
        _seed(rig, key)
    # A bus that missed its heartbeat deadline flushes its whole L1 (docs/manager.md):
    # on a loaded machine that may happen to either L1 during the test.
    flushes = (rig.manager.bus.flushes, rig.peer.bus.flushes)
    r = rig.http.post(
        "/api/cache/invalidate", json={"keys": ["vm:1", "vm:2"], "force": True}, headers=AUTH
    )
    assert r.status_code == 200
    body = r.json()
    assert body["forced"] is True
    assert body["ok"] is True
    assert body["keys"] == 2
    assert body["dropped"] == {"remote": 2, "store": 2, "local": 2}
    assert body["errors"] == {}
    for key in ("vm:1", "vm:2"):
        seen = _everywhere(rig, key)
        assert seen["local"] is seen["remote"] is seen["store"] is False
    # The peer's L1 hears it over the bus (asynchronously, within the bus's bound).
    assert wait_for(lambda: "vm:1" not in rig.peer.local and "vm:2" not in rig.peer.local)
    kept = _everywhere(rig, "node:a")  # not named: kept everywhere
    assert kept["remote"]
    assert kept["store"]
    assert kept["local"] or rig.manager.bus.flushes > flushes[0]
    assert kept["peer"] or rig.peer.bus.flushes > flushes[1]


def test_a_non_forced_invalidation_is_queued_202_and_then_done(rig: Rig) -> None:
    _seed(rig, "vm:9")
    r = rig.http.post("/api/cache/invalidate", json={"keys": ["vm:9"]}, headers=AUTH)
    assert r.status_code == 202
    body = r.json()
    assert body["forced"] is False
    assert body["queued"] == 1
    assert body["id"]
    assert wait_for(lambda: _everywhere(rig, "vm:9") == dict.fromkeys(
        ("local", "remote", "store", "peer"), False))  # fmt: skip
    engine = rig.manager.invalidation
    assert engine.stats["batches"] >= 1


def test_patterns_and_tags(rig: Rig) -> None:
    rig.set("host:1:cpu", 1)
    rig.set("host:2:cpu", 2)
    rig.set("tagged", 3, tags=["rack:7"])
    r = rig.http.post(
        "/api/cache/invalidate",
        json={"patterns": ["host:*"], "tags": ["rack:7"], "force": True},
        headers=AUTH,
    )
    assert r.status_code == 200, r.text
    assert r.json()["keys"] == 3
    assert r.json()["scanned"] >= 2
    for key in ("host:1:cpu", "host:2:cpu", "tagged"):
        assert rig.get(key) is None


def test_a_pattern_that_can_match_everything_needs_force(rig: Rig) -> None:
    _seed(rig, "vm:3")
    for pattern in ("*", "?m:*", "*:3"):
        r = rig.http.post("/api/cache/invalidate", json={"patterns": [pattern]}, headers=AUTH)
        assert (r.status_code, r.json()["error"]) == (422, "force_required"), pattern
    assert _everywhere(rig, "vm:3")["remote"]
    r = rig.http.post(
        "/api/cache/invalidate", json={"patterns": ["*"], "force": True}, headers=AUTH
    )
    assert r.status_code == 200
    assert r.json()["keys"] >= 1
    assert not any(_everywhere(rig, "vm:3").values()) or wait_for(
        lambda: not any(_everywhere(rig, "vm:3").values())
    )


def test_any_str_key_goes_over_json(rig: Rig) -> None:
    key = "vm:\ud800:é"  # a lone surrogate, as \\ud800 in the JSON text
    rig.set(key, 1)
    r = rig.http.post(
        "/api/cache/invalidate",
        content=b'{"keys": ["vm:\\ud800:\\u00e9"], "force": true}',
        headers={**AUTH, "content-type": "application/json"},
    )
    assert r.status_code == 200
    assert r.json()["keys"] == 1
    assert rig.get(key) is None


# -- limits and 422s ----------------------------------------------------------------------


def test_limits_are_413(tmp_path: Path, redis_standalone: Standalone) -> None:
    with _rig(tmp_path, redis_standalone.url, max_body_bytes=1024, max_keys=5) as rig:
        _seed(rig, "k0")
        big = {"keys": ["k0", "x" * 2000], "force": True}
        r = rig.http.post("/api/cache/invalidate", json=big, headers=AUTH)
        assert r.status_code == 413
        assert r.json()["error"] == "too_large"

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
            yield b'{"keys": ["k0", "'
            for _ in range(100):
                yield b"x" * 100
            yield b'"], "force": true}'

        r = rig.http.post("/api/cache/invalidate", content=chunks(), headers=AUTH)
        assert r.status_code == 413
        many = {"keys": [f"k{i}" for i in range(6)], "force": True}
        r = rig.http.post("/api/cache/invalidate", json=many, headers=AUTH)
        assert r.status_code == 413
        assert r.json()["error"] == "too_many_keys"
        r = rig.http.post(
            "/api/cache/warmup",
            json={"type": "vm_metadata", "scope": "node", "targets": list("abcdef")},
            headers=AUTH,
        )
        assert r.status_code == 413
        assert _everywhere(rig, "k0")["remote"]  # nothing was done


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[1, 2]",
        b'{"keys": "vm:1", "force": true}',
        b'{"keys": [1], "force": true}',
        b'{"keys": ["a"], "force": "yes"}',
        b'{"keys": [], "patterns": [], "tags": []}',
        b'{"patterns": [""], "force": true}',
        b'{"tags": [""]}',
        b'{"keys": ["a"], "extra": 1}',
        b'{"keys": ["a"], "force": null}',
        b"[" * 100_000,
    ],
)
def test_bad_invalidation_bodies_are_422(rig: Rig, body: bytes) -> None:
    r = rig.http.post(
        "/api/cache/invalidate", content=body, headers={**AUTH, "content-type": "application/json"}
    )
    assert r.status_code in (413, 422), r.text
    payload = r.json()
    assert set(payload) == {"error", "detail"}
    assert "Traceback" not in r.text


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"type": "vms"},
        {"type": "vm_metadata", "scope": "planet"},
        {"type": "vm_metadata", "priority": 7},
        {"type": "vm_metadata", "targets": "n1"},
        {"type": "vm_metadata", "parameters": [1]},
        {"type": "vm_metadata", "when": "now"},
    ],
)
def test_bad_warmup_bodies_are_422(rig: Rig, body: dict[str, Any]) -> None:
    r = rig.http.post("/api/cache/warmup", json=body, headers=AUTH)
    assert r.status_code == 422, r.text
    assert rig.served.app.state.novacache.jobs == {}


# -- stats, health, probes, metrics ---------------------------------------------------------


def test_stats_count_per_layer_and_overall(rig: Rig) -> None:
    rig.set("s:1", 1)
    rig.set("s:2", 2)
    assert rig.get("s:1") == 1  # an L1 hit
    rig.manager.local.clear()
    assert rig.get("s:2") == 2  # L1 miss, Redis hit
    assert rig.get("s:none") is None  # a miss everywhere
    data = rig.http.get("/api/cache/stats").json()
    local, remote, store = (data["layers"][s] for s in ("local", "remote", "store"))
    assert (local["hits"], local["misses"]) == (1, 2)
    assert (remote["hits"], remote["misses"]) == (1, 1)
    assert (store["hits"], store["misses"]) == (0, 1)
    assert local["entries"] == 1
    assert local["kind"] == "LocalCache"
    assert remote["kind"] == "AsyncRedisTier"
    assert store["kind"] == "AsyncSQLiteTier"
    assert store["entries"] == 2
    assert store["size_bytes"] > 0
    overall = data["overall"]
    assert (overall["lookups"], overall["hits"], overall["misses"]) == (3, 2, 1)
    assert overall["hit_rate"] == pytest.approx(2 / 3)
    assert data["bus"]["healthy"] is True


def test_health_and_probes(rig: Rig) -> None:
    r = rig.http.get("/api/cache/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "healthy"
    assert set(body["layers"]) == {"remote", "store"}
    assert body["layers"]["remote"]["latency_s"] >= 0
    assert body["uptime_s"] >= 0
    assert "overall" in body["metrics"]
    assert rig.http.get("/healthz").json() == {"status": "ok"}
    r = rig.http.get("/readyz")
    assert r.status_code == 200
    assert r.json()["status"] == "healthy"


def test_health_reports_a_dead_tier(tmp_path: Path) -> None:
    """A Redis nobody listens on: the monitor says degraded (200), and without a monitor
    /readyz pings the tiers itself and says which is down; /api/cache/health is 503."""
    dead = "redis://127.0.0.1:1/0"
    with _rig_dead(tmp_path, dead) as rig:
        r = rig.http.get("/api/cache/health")
        assert r.status_code == 200
        assert r.json()["status"] == "degraded"
        assert r.json()["layers"]["remote"]["status"] == "unhealthy"


@contextlib.contextmanager
def _rig_dead(tmp_path: Path, url: str) -> Iterator[Rig]:
    holder: dict[str, Any] = {}

    async def build() -> tuple[Any, Any]:
        store = await AsyncSQLiteTier.open(tmp_path / "s.db")
        manager = AsyncCacheManager(
            local=LocalCache(10), remote=AsyncRedisTier(url, timeout=0.2, retries=0), store=store
        )
        holder["manager"] = manager
        return create_app(manager, token=TOKEN, health=PingMonitor(manager)), manager.close

    with serve(build) as served:
        rig = Rig(served, holder["manager"], None)  # type: ignore[arg-type]
        with rig.http:
            yield rig


def test_without_providers_endpoints_say_so_with_503(tmp_path: Path) -> None:
    async def build() -> tuple[Any, Any]:
        store = await AsyncSQLiteTier.open(tmp_path / "s.db")
        manager = AsyncCacheManager(
            local=LocalCache(10),
            remote=AsyncRedisTier("redis://127.0.0.1:1/0", timeout=0.2, retries=0),
            store=store,
        )
        return create_app(manager, token=TOKEN), manager.close

    with serve(build) as served, httpx.Client(base_url=served.url) as http:
        for path in ("/api/cache/health", "/metrics"):
            r = http.get(path)
            assert (r.status_code, r.json()["error"]) == (503, "not_configured"), path
        r = http.post("/api/cache/warmup", json={"type": "vm_metadata"}, headers=AUTH)
        assert r.status_code == 503
        assert "no warmer" in r.json()["detail"]
        r = http.get("/readyz")  # pings the tiers itself
        assert r.status_code == 200
        assert r.json() == {"status": "degraded", "layers": {"remote": "down", "store": "up"}}


def test_metrics_is_the_injected_exposition(rig: Rig) -> None:
    r = rig.http.get("/metrics")
    assert r.status_code == 200
    assert "novacache_up 1" in r.text
    assert r.headers["content-type"].startswith("text/plain")


def test_an_internal_error_shows_no_trace_or_message(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        last = None

        async def acheck_now(self) -> Any:
            raise RuntimeError("password=hunter2")

    async def build() -> tuple[Any, Any]:
        manager = AsyncCacheManager(local=LocalCache(10))
        return create_app(manager, token=TOKEN, health=Broken()), manager.close

    with caplog.at_level(logging.DEBUG), serve(build) as served:
        r = httpx.get(served.url + "/api/cache/health")
    assert r.status_code == 500
    assert r.json() == {"error": "internal_error", "detail": "internal error"}
    logged = "\n".join(rec.getMessage() + (rec.exc_text or "") for rec in caplog.records)
    assert "hunter2" not in logged
    assert "Traceback" not in logged
    assert "RuntimeError" in logged


# -- warmup -------------------------------------------------------------------------------


def _job(rig: Rig, ident: str) -> dict[str, Any]:
    r = rig.http.get(f"/api/cache/warmup/{ident}")
    assert r.status_code == 200
    return r.json()  # type: ignore[no-any-return]


def test_a_warmup_job_runs_in_the_background_and_reports_progress(rig: Rig) -> None:
    r = rig.http.post(
        "/api/cache/warmup",
        json={"type": "vm_metadata", "scope": "node", "targets": ["n1", "n2", "n3"],
              "priority": "high"},
        headers=AUTH,
    )  # fmt: skip
    assert r.status_code == 202
    job = r.json()
    assert r.headers["location"] == f"/api/cache/warmup/{job['id']}"
    assert job["state"] in ("queued", "running", "done")
    assert wait_for(lambda: _job(rig, job["id"])["state"] == "done")
    done = _job(rig, job["id"])
    assert done["progress"] == {"done": 3, "total": 3}
    assert done["result"]["loaded"] == 3
    assert done["error"] is None
    assert [rig.get(f"vm:n{i}") for i in (1, 2, 3)] == [{"warm": f"n{i}"} for i in (1, 2, 3)]
    assert rig.http.get("/api/cache/warmup/nope").status_code == 404


def test_a_failing_warmer_fails_its_job_without_leaking(rig: Rig) -> None:
    r = rig.http.post("/api/cache/warmup", json={"type": "migration_state"}, headers=AUTH)
    ident = r.json()["id"]
    assert wait_for(lambda: _job(rig, ident)["state"] == "failed")
    job = _job(rig, ident)
    assert job["error"] == "the warmer raised RuntimeError"
    assert "hunter2" not in str(job)


def test_warmup_jobs_are_bounded_and_ordered_by_priority(
    tmp_path: Path, redis_standalone: Standalone
) -> None:
    gate = asyncio.Event()
    with _rig(
        tmp_path, redis_standalone.url, gate=gate, max_warmup_jobs=1, max_warmup_queue=3
    ) as rig:

        def post(target: str, priority: str) -> httpx.Response:
            return rig.http.post(
                "/api/cache/warmup",
                json={"type": "vm_metadata", "scope": "node", "targets": [target],
                      "priority": priority},
                headers=AUTH,
            )  # fmt: skip

        first = post("first", "low").json()["id"]
        assert wait_for(lambda: _job(rig, first)["state"] == "running")  # holds the worker
        ids = [post(t, p).json()["id"] for t, p in (("a", "low"), ("b", "normal"), ("c", "high"))]
        r = post("d", "high")
        assert r.status_code == 429
        assert r.json()["error"] == "busy"
        assert [_job(rig, i)["state"] for i in ids] == ["queued"] * 3
        rig.served.loop.call_soon_threadsafe(gate.set)
        assert wait_for(lambda: all(_job(rig, i)["state"] == "done" for i in ids))
        assert rig.warmers["vm_metadata"].order == ["first", "c", "b", "a"]  # type: ignore[attr-defined]


# -- the synchronous manager --------------------------------------------------------------


def test_a_synchronous_manager_is_served_through_worker_threads(
    tmp_path: Path, redis_standalone: Standalone
) -> None:
    prefix = f"sync-{secrets.token_hex(4)}:"
    manager = CacheManager.embedded(tmp_path / "e.db")
    manager.set("a", 1)

    async def build() -> tuple[Any, Any]:
        async def close() -> None:
            await asyncio.to_thread(manager.close)

        return create_app(manager, token=TOKEN), close

    assert prefix
    with serve(build) as served, httpx.Client(base_url=served.url) as http:
        r = http.post("/api/cache/invalidate", json={"keys": ["a"], "force": True}, headers=AUTH)
        assert r.status_code == 200
        assert r.json()["dropped"] == {"store": 1, "local": 1}
        assert http.get("/api/cache/stats").json()["layers"]["store"]["kind"] == "SQLiteTier"
        assert http.get("/readyz").json() == {"status": "ready", "layers": {"store": "up"}}


# -- the real health monitor and metrics collector ------------------------------------------


def test_the_real_health_monitor_and_metrics_collector(
    tmp_path: Path, redis_standalone: Standalone
) -> None:
    """novacache.ops.health.HealthMonitor and novacache.ops.metrics wired as
    `novacache serve` wires them: health, readiness, the Prometheus exposition and the
    stats' average latency per tier (from the collector's histograms)."""
    from prometheus_client import CollectorRegistry

    from novacache.ops.admin import _metrics
    from novacache.ops.health import HealthMonitor

    prefix = f"real-{secrets.token_hex(4)}:"
    holder: dict[str, Any] = {}

    async def build() -> tuple[Any, Any]:
        store = await AsyncSQLiteTier.open(tmp_path / "store.db")
        manager = AsyncCacheManager(
            local=LocalCache(100), remote=AsyncRedisTier(redis_standalone.url, prefix=prefix),
            store=store,
        )  # fmt: skip
        monitor = HealthMonitor(manager, interval=0.2)
        await monitor.astart()
        metrics, latency, collector = _metrics(manager, monitor)
        holder["manager"] = manager
        app = create_app(manager, token=TOKEN, health=monitor, metrics=metrics, latency=latency)

        async def close() -> None:
            await monitor.astop()
            collector.close()
            await manager.close()

        return app, close

    assert CollectorRegistry  # prometheus-client is installed (the 'ops' extra)
    with serve(build) as served, httpx.Client(base_url=served.url) as http:
        manager = holder["manager"]
        served.run(manager.set("k", 1))
        manager.local.clear()
        assert served.run(manager.get("k")) == 1
        assert wait_for(lambda: http.get("/api/cache/health").status_code == 200)
        health = http.get("/api/cache/health").json()
        assert health["status"] == "healthy"
        assert {"local", "remote", "store"} <= set(health["layers"])
        assert health["layers"]["remote"]["latency_s"] >= 0
        assert http.get("/readyz").json()["status"] == "healthy"
        text = http.get("/metrics").text
        assert "novacache_" in text
        stats = http.get("/api/cache/stats").json()
        assert stats["layers"]["remote"]["avg_latency_ms"] > 0
        assert stats["layers"]["store"]["avg_latency_ms"] > 0
        assert stats["layers"]["local"]["avg_latency_ms"] is None


def test_a_report_with_a_nan_latency_is_answered_with_null(tmp_path: Path) -> None:
    """A probe that failed may carry NaN or infinite numbers; JSON has neither."""
    from ._providers import HealthReport, TierHealth

    class NaNMonitor:
        last = HealthReport(
            "degraded",
            {"remote": TierHealth("unhealthy", float("nan"), {"rtt": float("inf")}, 3, 0)},
            float("nan"),
            float("inf"),
        )

    async def build() -> tuple[Any, Any]:
        manager = AsyncCacheManager(local=LocalCache(10))
        return create_app(manager, token=TOKEN, health=NaNMonitor()), manager.close

    with serve(build) as served:
        r = httpx.get(served.url + "/api/cache/health")
    assert r.status_code == 200
    body = r.json()
    assert body["layers"]["remote"]["latency_s"] is None
    assert body["layers"]["remote"]["detail"] == {"rtt": None}
    assert body["checked_at"] == 0.0
    assert body["uptime_s"] == 0.0


def test_warmup_with_the_real_domain_cache(tmp_path: Path) -> None:
    """The VM metadata cache of novacache.novacron as the warmer: a node's VMs are
    loaded from the source; a target it refuses fails the job with its message."""
    from novacache import config
    from novacache.novacron import AsyncVMMetadataCache
    from novacron._sources import VMs

    cfg = config.parse({"tiers": {"sqlite": {"path": "s.db"}}}, base=tmp_path)
    source = VMs(n=8, nodes=2)
    holder: dict[str, Any] = {}

    async def build() -> tuple[Any, Any]:
        manager = await cfg.open_async_manager()  # its codec knows the NovaCron models
        cache = AsyncVMMetadataCache(manager, source)
        holder["cache"] = cache
        return create_app(manager, token=TOKEN, warmers={"vm_metadata": cache}), manager.close

    with serve(build) as served, httpx.Client(base_url=served.url) as http:
        r = http.post(
            "/api/cache/warmup",
            json={"type": "vm_metadata", "scope": "node", "targets": ["n1"]},
            headers=AUTH,
        )
        assert r.status_code == 202
        ident = r.json()["id"]
        assert wait_for(lambda: http.get(f"/api/cache/warmup/{ident}").json()["state"] == "done")
        job = http.get(f"/api/cache/warmup/{ident}").json()
        assert job["result"]["loaded"] == 4  # vm1, vm3, vm5, vm7 run on n1
        assert job["progress"]["done"] == job["progress"]["total"]
        r = http.post(
            "/api/cache/warmup",
            json={"type": "vm_metadata", "scope": "node", "targets": ["n:1"]},
            headers=AUTH,
        )
        ident = r.json()["id"]
        assert wait_for(lambda: http.get(f"/api/cache/warmup/{ident}").json()["state"] == "failed")
        error = http.get(f"/api/cache/warmup/{ident}").json()["error"]
        assert error.startswith("InvalidArgument: ")


def test_finished_jobs_are_forgotten_past_keep_jobs_even_behind_a_running_one(
    tmp_path: Path, redis_standalone: Standalone
) -> None:
    """A long job (here: held by a gate) must not keep every later finished job alive:
    the job table stays bounded by keep_jobs finished jobs plus the unfinished ones."""
    gate = asyncio.Event()
    with _rig(tmp_path, redis_standalone.url, gate=gate, max_warmup_jobs=2) as rig:
        jobs = rig.served.app.state.novacache.jobs

        def post(kind: str) -> str:
            r = rig.http.post("/api/cache/warmup", json={"type": kind}, headers=AUTH)
            assert r.status_code == 202
            return str(r.json()["id"])

        held = post("vm_metadata")  # waits on the gate: running, the oldest job
        assert wait_for(lambda: jobs[held].state == "running")
        first = None
        for _ in range(260):
            ident = post("resource_allocation")
            first = first or ident
            assert wait_for(lambda ident=ident: jobs[ident].state == "done")  # type: ignore[misc]
        assert len(jobs) <= 256 + 2
        assert held in jobs
        assert rig.http.get(f"/api/cache/warmup/{first}").status_code == 404
        rig.served.loop.call_soon_threadsafe(gate.set)


# -- forced invalidations coalesced; the stats snapshot -------------------------------------


def _spy_batches(rig: Rig) -> tuple[list[int], asyncio.Event]:
    """Record the size of each batch the app's engine runs (the engine itself runs them);
    the event is set when the first one starts."""
    engine = rig.served.app.state.novacache.engine()
    run_many = engine.run_many
    sizes: list[int] = []
    started = rig.served.run(_event())

    async def spy(batch: list[Any], event: str | None = None) -> Any:
        sizes.append(len(batch))
        started.set()
        return await run_many(batch, event)

    engine.run_many = spy
    return sizes, started


async def _event() -> asyncio.Event:
    return asyncio.Event()


def test_forced_invalidations_arriving_meanwhile_join_the_next_batch(rig: Rig) -> None:
    """While one forced invalidation runs, the ones that arrive wait and then run as one
    batch; each answer counts what its own invalidation dropped, and its keys are gone
    from every tier and L1 when it gets it."""
    keys = [f"c:{i}" for i in range(8)]
    for key in [*keys, "c:shared"]:
        rig.set(key, key)
        assert rig.get(key) == key
    api = rig.served.app.state.novacache
    engine = api.engine()
    sizes, started = _spy_batches(rig)
    m = rig.manager

    async def one(i: int) -> tuple[int, Any]:
        report = await api.forced(engine.targets([keys[i], "c:shared"]))
        for key in (keys[i], "c:shared"):  # gone everywhere before the answer (a tier
            # holds the delete's tombstone: no entry)
            assert live(await m.remote.get(key)) is None
            assert live(await m.store.get(key)) is None
            assert key not in m.local
        return i, report

    async def go() -> list[tuple[int, Any]]:
        first = asyncio.ensure_future(one(0))
        await started.wait()  # the first batch is under way
        rest = await asyncio.gather(*(one(i) for i in range(1, len(keys))))
        return [await first, *rest]

    answers = rig.served.run(go())
    assert sizes == [1, len(keys) - 1]
    for i, report in answers:
        shared = 1 if i in (0, 1) else 0  # the first batch dropped it; then the first of the rest
        assert report.keys == {keys[i], "c:shared"}
        assert report.ok
        if i == 0:
            assert report.dropped == {"store": 2, "remote": 2, "local": 2}
        else:
            assert report.dropped == {"store": 1, "remote": 1, "local": 1}, (i, shared)
    assert wait_for(lambda: not set(keys) & set(rig.peer.local))


def test_concurrent_forced_invalidations_over_http_each_get_their_counts(rig: Rig) -> None:
    keys = [f"h:{i}" for i in range(12)]
    for key in keys:
        rig.set(key, key)
    sizes, _ = _spy_batches(rig)

    async def go() -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=rig.served.url, timeout=30) as http:
            answers = await asyncio.gather(
                *(
                    http.post(
                        "/api/cache/invalidate", json={"keys": [key], "force": True}, headers=AUTH
                    )
                    for key in keys
                )
            )
        assert {a.status_code for a in answers} == {200}
        return [a.json() for a in answers]

    bodies = asyncio.run(go())
    for body in bodies:
        assert body["forced"] is True
        assert body["ok"] is True
        assert body["keys"] == 1
        assert body["dropped"] == {"store": 1, "remote": 1, "local": 1}
    assert sum(sizes) == len(keys)
    for key in keys:
        seen = _everywhere(rig, key)
        assert seen["local"] is seen["remote"] is seen["store"] is False


def test_tags_and_scans_are_not_coalesced(rig: Rig) -> None:
    """A forced invalidation naming tags or an ad-hoc pattern runs alone (their lookups
    can fail on their own, e.g. a cache without a shared tag index: that must not fail
    the requests it would have joined); keys and registered patterns are coalesced."""
    api = rig.served.app.state.novacache
    forced = api.forced
    joined: list[Any] = []

    async def spy(targets: Any) -> Any:
        joined.append(targets)
        return await forced(targets)

    api.forced = spy
    rig.set("k", 1, tags=["t"])
    for body in ({"tags": ["t"]}, {"patterns": ["*k"]}, {"keys": ["k"]}):
        r = rig.http.post("/api/cache/invalidate", json={**body, "force": True}, headers=AUTH)
        assert r.status_code == 200, r.text
    assert [t.keys for t in joined] == [{"k"}]


def test_the_stats_document_is_a_snapshot_of_at_most_stats_interval(
    tmp_path: Path, redis_standalone: Standalone
) -> None:
    with _rig(tmp_path, redis_standalone.url, stats_interval=3600) as rig:
        first = rig.http.get("/api/cache/stats")
        rig.set("s", 1)
        assert rig.get("s") == 1
        again = rig.http.get("/api/cache/stats")
        assert again.content == first.content  # the same snapshot (taken_at says when)
        assert again.headers["content-type"] == "application/json"
    with _rig(tmp_path / "fresh", redis_standalone.url, stats_interval=0) as rig:
        before = rig.http.get("/api/cache/stats").json()
        rig.set("s", 1)
        assert rig.get("s") == 1
        after = rig.http.get("/api/cache/stats").json()
        assert after["layers"]["local"]["hits"] == before["layers"]["local"]["hits"] + 1
        assert after["taken_at"] >= before["taken_at"]


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), True, "1"])
def test_a_bad_stats_interval_is_refused(bad: Any) -> None:
    manager = AsyncCacheManager(local=LocalCache(10))
    with pytest.raises(ConfigurationError, match="stats_interval"):
        create_app(manager, token=TOKEN, stats_interval=bad)


@given(
    dropped=st.dictionaries(
        st.sampled_from(["local", "remote", "store", "other slot", 'q"uote']),
        st.integers(0, 10**6),
    ),
    keys=st.frozensets(st.text(max_size=3), max_size=4),
    scanned=st.integers(0, 10**6),
    truncated=st.booleans(),
    failed=st.booleans(),
)
def test_the_forced_answer_is_what_the_json_encoder_writes(
    dropped: dict[str, int], keys: frozenset[str], scanned: int, truncated: bool, failed: bool
) -> None:
    """The answer of a forced invalidation, written out directly in the common case, is
    byte for byte the generic encoding of the report's summary (which it falls back to
    for errors and for slot names it does not know)."""
    from novacache.errors import TierError
    from novacache.invalidation import EmitReport
    from novacache.ops.http import _dumps, _forced_answer

    errors = {"remote": TierError('down "now"\n')} if failed else {}
    report = EmitReport(
        keys=keys, dropped=dropped, errors=errors, scanned=scanned, truncated=truncated
    )
    expected = _dumps({"id": "ab12cd34-7", "forced": True, **report.summary()})
    assert _forced_answer("ab12cd34-7", report) == expected
