"""deploy/grafana/novacache.json and deploy/prometheus/: checked for real.

``promtool`` checks the rules, the example scrape configuration and that every
expression of the dashboard parses; then a Prometheus server started here (scraping
every second, evaluating the rules every second) scrapes a running workload that exports
the metrics of two caches, one healthy (its Redis near its maxmemory) and one whose
Redis is dead, and every expression of the dashboard and of the rules must return data
from it (a name that nobody exports returns nothing: the classic dashboard bug); every
alert must be pending or firing, since the workload makes each condition true.
"""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import novacache
from novacache.coherence import InvalidationBus
from novacache.errors import TierError
from novacache.invalidation import InvalidationEngine
from novacache.manager import CacheManager
from novacache.ops.health import HealthMonitor
from novacache.ops.metrics import MetricsCollector, start_http_server
from novacache.tiers import RedisTier, SQLiteTier
from tiers.redis_servers import Standalone, free_port, start_standalone, wait_until

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
DASHBOARD = DEPLOY / "grafana" / "novacache.json"
RULES = DEPLOY / "prometheus" / "rules.yml"
SCRAPE_EXAMPLE = DEPLOY / "prometheus" / "prometheus.yml"
# What Grafana substitutes in the dashboard's expressions, as a query would have it.
GRAFANA_VARS = {"$__rate_interval": "15s", "$cache": ".*"}

pytestmark = pytest.mark.skipif(
    not DEPLOY.is_dir(), reason="deploy/ is not shipped with the package (a source checkout)"
)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: run scripts/system-deps (Debian package prometheus)")
    return path


def dashboard_exprs() -> list[str]:
    """Every target expression of the dashboard, with Grafana's variables filled in."""
    board = json.loads(DASHBOARD.read_text())
    out = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for var, value in GRAFANA_VARS.items():
                expr = expr.replace(var, value)
            out.append(expr)
    return out


def dashboard_variable_metrics() -> list[str]:
    """The metrics the dashboard's variables list label values of."""
    board = json.loads(DASHBOARD.read_text())
    out = []
    for var in board["templating"]["list"]:
        query = var.get("query")
        if isinstance(query, dict) and query["query"].startswith("label_values("):
            out.append(query["query"][len("label_values(") :].split(",")[0].strip())
    return out


def rule_exprs() -> dict[str, str]:
    """``{alert name: expression}`` of the rules file."""
    doc = yaml.safe_load(RULES.read_text())
    return {r["alert"]: r["expr"] for g in doc["groups"] for r in g["rules"]}


def test_promtool_accepts_the_rules_and_the_scrape_example() -> None:
    promtool = _tool("promtool")
    done = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rule_exprs())} rules found" in done.stdout
    done = subprocess.run(
        [promtool, "check", "config", SCRAPE_EXAMPLE.name],
        cwd=SCRAPE_EXAMPLE.parent, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_dashboard_expression_parses(tmp_path: Path) -> None:
    exprs = dashboard_exprs()
    assert len(exprs) >= 20
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"novacache_dashboard:expr{i}", "expr": e} for i, e in enumerate(exprs)
    ]}]}  # fmt: skip
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump(rules))
    done = subprocess.run(
        [_tool("promtool"), "check", "rules", str(path)], capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


# -- a live server against a live workload -------------------------------------------------


class Workload:
    """Two caches exporting their metrics at ``url``: ``good`` (L1 + Redis near its
    maxmemory + SQLite, a bus, an invalidation engine) and ``bad`` (L1 + a dead Redis +
    a bus on it), driven by a thread until :meth:`stop`."""

    def __init__(self, good_redis: Standalone, bad_redis: Standalone, tmp: Path) -> None:
        prefix = f"dash-{uuid.uuid4().hex[:8]}:"
        good_tier = RedisTier(good_redis.url, prefix=prefix)
        self.good = CacheManager(
            local=novacache.LocalCache(100),
            remote=good_tier,
            store=SQLiteTier(tmp / "good.db"),
            bus=InvalidationBus(good_tier),
            on_write_error="report",  # Redis at its maxmemory may refuse a write
        )
        self.engine = InvalidationEngine(self.good)
        self.engine.rule("item.changed", keys=["item:{id}"])
        bad_tier = RedisTier(bad_redis.url, prefix=prefix, retries=0, timeout=0.2)
        self.bad = CacheManager(
            local=novacache.LocalCache(100), remote=bad_tier, bus=InvalidationBus(bad_tier)
        )
        self.monitors = [
            HealthMonitor(self.good, interval=0.2),
            HealthMonitor(self.bad, interval=0.2, failure_threshold=1, timeout=0.5),
        ]
        self.registry = CollectorRegistry()
        self.collector = MetricsCollector(
            self.good, name="good", health=self.monitors[0], registry=self.registry
        )
        self.collector.add(self.bad, name="bad", health=self.monitors[1])
        self.server, self.server_thread = start_http_server(0, registry=self.registry)
        self.port = self.server.server_port
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.rounds = 0

    def start(self) -> None:
        for monitor in self.monitors:
            monitor.start()
        self._thread.start()

    def _run(self) -> None:
        rng = random.Random(7)
        while not self._stop.is_set():
            i = rng.randrange(200)  # 200 keys through an L1 of 100: hits, misses, evictions
            key = f"item:{i}"
            if self.good.get(key) is None:
                self.good.set(key, {"i": i}, ttl=30)
            self.good.get_or_load(f"load:{i % 20}", lambda i=i: i, ttl=1)
            if self.rounds % 10 == 0:
                with contextlib.suppress(TierError):
                    self.engine.emit("item.changed", id=rng.randrange(200))
            self.bad.get(key)  # the dead Redis: misses, errors, an open breaker
            with contextlib.suppress(TierError):
                self.bad.set(key, i)
            self.rounds += 1
            self._stop.wait(0.002)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        for monitor in self.monitors:
            monitor.stop()
        self.server.shutdown()
        self.server_thread.join(5)
        self.collector.close()
        self.good.close()
        self.bad.close()


class Prometheus:
    """A prometheus server of this test: scrapes ``target`` every second and evaluates
    ``rules`` every second."""

    def __init__(self, target: str, rules: Path, workdir: Path) -> None:
        self.port = free_port()
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules)],
            "scrape_configs": [
                {"job_name": "novacache", "static_configs": [{"targets": [target]}]}
            ],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = workdir / "prometheus.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    _tool("prometheus"),
                    f"--config.file={workdir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until(self._ready, 60, "prometheus to be ready", step=0.2)

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            pytest.fail(f"prometheus exited:\n{self.log.read_text()[-3000:]}")
        url = f"http://127.0.0.1:{self.port}/-/ready"
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as r:
            return bool(r.status == 200)
        return False

    def api(self, path: str, **params: str) -> Any:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[Any]:
        return self.api("query", query=expr)["result"]  # type: ignore[no-any-return]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def workload(redis_base: Path, tmp_path: Path) -> Iterator[Workload]:
    good = start_standalone(redis_base, **{"maxmemory-policy": "allkeys-lru"})
    bad = start_standalone(redis_base)
    bad.server.kill()
    w = Workload(good, bad, tmp_path)
    w.start()
    try:
        # Once every key was written (the key set is bounded): Redis near its maxmemory,
        # used at 93 % of it (the memory alert's condition; allkeys-lru evicts past it).
        wait_until(lambda: w.rounds > 1000, 60, "the workload to write its keys")
        admin = good.server.client()
        admin.config_set("maxmemory", int(int(admin.info("memory")["used_memory"]) / 0.93))
        yield w
    finally:
        w.stop()
        good.server.kill()


@pytest.fixture
def prometheus(workload: Workload, tmp_path: Path) -> Iterator[Prometheus]:
    work = tmp_path / "prometheus"
    work.mkdir()
    p = Prometheus(f"127.0.0.1:{workload.port}", RULES, work)
    try:
        yield p
    finally:
        p.stop()


def test_every_expression_returns_data_from_a_scraped_workload(
    workload: Workload, prometheus: Prometheus
) -> None:
    exprs = {f"dashboard: {e}": e for e in dashboard_exprs()}
    exprs.update({f"variable: {m}": m for m in dashboard_variable_metrics()})
    exprs.update({f"rule {name}": e for name, e in rule_exprs().items()})
    empty = dict(exprs)
    deadline = time.monotonic() + 90
    while empty and time.monotonic() < deadline:
        for label, expr in list(empty.items()):
            if prometheus.query(expr):
                del empty[label]
        time.sleep(1)
    assert not empty, "no data for:\n" + "\n".join(empty)
    # The server evaluates the rules too: every alert is pending or firing.
    wanted = set(rule_exprs())
    seen: set[str] = set()
    while time.monotonic() < deadline and seen != wanted:
        seen = {a["labels"]["alertname"] for a in prometheus.api("alerts")["alerts"]}
        time.sleep(0.5)
    assert seen == wanted
    targets = prometheus.api("targets")["activeTargets"]
    assert [t["health"] for t in targets] == ["up"]
    assert workload.rounds > 0


def test_every_exported_metric_is_documented(workload: Workload) -> None:
    """docs/operations.md lists every metric the workload (every part of a manager, and
    a health monitor) exports."""
    docs = (REPO / "docs" / "operations.md").read_text()
    wait_until(lambda: all(m.last is not None for m in workload.monitors), 30, "reports")
    families = text_string_to_metric_families(generate_latest(workload.registry).decode())
    names = {f.name + ("_total" if f.type == "counter" else "") for f in families}
    assert len(names) > 30
    missing = sorted(n for n in names if f"| `{n}` |" not in docs)
    assert not missing, missing
