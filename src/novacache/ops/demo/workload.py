"""One worker of the demo: client threads running the NovaCron operation mix through the
domain caches (or straight to the sources, for the run without cache), the state-change
events of the VMs it owns, migrations streaming progress and checkpoints, and predictive
pre-caching when the phase asks for it.

Every ``SNAPSHOT`` seconds the worker sends what it measured since the last report (a
plain dict) through ``send``; the parent adds them up (see report.py).
"""

from __future__ import annotations

import contextlib
import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ... import novacron
from ..._local import LocalCache
from ...errors import NovaCacheError
from ...manager import CacheManager
from ...novacron import (
    MigrationCheckpoint,
    MigrationEvent,
    MigrationProgress,
    MigrationState,
    TimeRange,
    VMSpecification,
    VMStateChange,
)
from .cluster import Plan, Sources, Truth, tls

__all__ = ["PHASES", "TIERS", "Phase", "Settings", "run_worker"]

SNAPSHOT = 0.25
GRACE = 1.0  # a state older than the truth this long before the read is stale
TIERS = ("L1", "L2", "L3", "source")
SPECS = (
    VMSpecification(2, 4096, 40),
    VMSpecification(4, 8192, 80),
    VMSpecification(8, 16384, 160),
)
# (operation, weight): the mix of a NovaCron control plane (dashboards, API, scheduler)
MIX = (
    ("vm_state", 40),
    ("vm_states", 6),
    ("vm_metrics", 10),
    ("vm_config", 6),
    ("capacity", 18),
    ("score", 10),
    ("optimal", 4),
    ("migration", 6),
)


@dataclass(frozen=True)
class Phase:
    """One part of the run: ``cached`` (through the caches or straight to the sources),
    ``predictive`` (pre-caching on), from ``t0`` to ``t1`` (wall-clock seconds)."""

    name: str
    cached: bool
    predictive: bool
    t0: float
    t1: float


PHASES = (
    ("without cache", False, False, 0.25),
    ("with cache", True, False, 0.35),
    ("cache + predictive", True, True, 0.40),
)


@dataclass(frozen=True)
class Settings:
    """How a worker builds its stack: the SQLite file (L3) every worker shares, a Redis
    URL (L2 and the invalidation bus) or ``None``, threads, and the key namespace."""

    path: Path
    redis_url: str | None
    threads: int
    namespace: str
    l1_ttl: float | None


class _Meter:
    """What one worker measured since the last snapshot."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.ops = 0
        self.by_tier = dict.fromkeys(TIERS, 0)
        self.latency: dict[str, list[float]] = {t: [] for t in TIERS}
        self.cap_reads = 0
        self.cap_source = 0
        self.stale = 0
        self.state_reads = 0
        self.errors = 0
        self.invalidations = 0
        self.updates = 0
        self.updates_lost = 0
        self.migrations_done = 0

    def take(self) -> dict[str, Any]:
        with self.lock:
            out = dict(vars(self))
            del out["lock"]
            self.reset()
        return out


def _watch(tier: Any, mark: str) -> None:
    """Mark the thread's current operation when ``tier`` answers a read with a hit."""
    for name in ("get", "get_many"):
        real = getattr(tier, name)

        def counted(*args: Any, _real: Callable[..., Any] = real) -> Any:
            found = _real(*args)
            if found:
                setattr(tls, mark, 1)
            return found

        setattr(tier, name, counted)


def _manager(settings: Settings) -> CacheManager:
    from ...tiers import SQLiteTier

    store = SQLiteTier(settings.path, timeout=10)
    remote = bus = None
    if settings.redis_url is not None:
        from ...coherence import InvalidationBus
        from ...tiers import RedisTier

        remote = RedisTier(settings.redis_url, prefix=settings.namespace)
        bus = InvalidationBus(
            RedisTier(settings.redis_url, prefix=settings.namespace),
            channel=f"{settings.namespace}invalidate",
        )
    manager = CacheManager(
        local=LocalCache(50_000, ttl=settings.l1_ttl),
        remote=remote,
        store=store,
        codec=novacron.codec(),
        on_write_error="report",
        bus=bus,
    )
    if remote is not None:
        _watch(remote, "remote")
    _watch(store, "store")
    return manager


class _Worker:
    def __init__(
        self, index: int, plan: Plan, settings: Settings, send: Callable[[dict[str, Any]], None]
    ) -> None:
        self.index = index
        self.plan = plan
        self.settings = settings
        self.send = send
        self.truth = Truth(plan)
        self.sources = Sources(self.truth)
        self.manager = _manager(settings)
        self._build(0)
        self.meter = _Meter()
        self.phase: Phase | None = None
        self.in_flight: set[str] = set()
        self._flying = threading.Lock()  # guards in_flight
        self._stop = threading.Event()
        weights = [w for _, w in MIX]
        self._ops = [op for op, _ in MIX]
        self._cum = [sum(weights[: i + 1]) for i in range(len(weights))]
        vm_weights = [1.0 / (r + 1) ** 0.9 for r in range(plan.vms)]
        self._vm_cum = [0.0] * plan.vms
        acc = 0.0
        for i, w in enumerate(vm_weights):
            acc += w
            self._vm_cum[i] = acc
        node_weights = [1.0 / (r + 1) ** 1.1 for r in range(plan.nodes)]
        self._node_cum = [sum(node_weights[: i + 1]) for i in range(plan.nodes)]

    def _build(self, phase: int) -> None:
        """The caches of a phase, in a namespace of its own: each cached phase starts
        cold, and nothing one phase does reaches another."""
        m = self.manager
        keys = novacron.KeyGenerator(f"novacron-p{phase}")
        self.vms = novacron.VMMetadataCache(
            m, self.sources, self.sources,
            novacron.VMCacheConfig(state_ttl=30, metrics_ttl=10, config_ttl=300),
            keys=keys,
        )  # fmt: skip
        self.resources = novacron.ResourceAllocationCache(
            m,
            self.sources,
            novacron.ResourceCacheConfig(
                capacity_ttl=60, capacity_freshness=2.0, score_ttl=2.0, allocation_ttl=2.0,
                precache_threshold=0.3, precache_interval=0.25, precache_budget=64,
                half_life=2.0,
            ),
            keys=keys,
            clock=time.time,
        )  # fmt: skip
        self.migrations = novacron.MigrationStateCache(
            m, self.sources, novacron.MigrationCacheConfig(progress_ttl=2.0), keys=keys
        )

    # -- picking ----------------------------------------------------------------------

    def _vm(self, rng: random.Random) -> str:
        i = _pick(self._vm_cum, rng)
        return f"vm-{(i * 7919) % self.plan.vms:05d}"

    def _node(self, rng: random.Random) -> str:
        return f"node-{_pick(self._node_cum, rng):03d}"

    # -- one operation ----------------------------------------------------------------

    def _op(self, rng: random.Random, cached: bool) -> None:
        op = self._ops[_pick(self._cum, rng)]
        tls.source = tls.remote = tls.store = 0
        t0 = time.time()
        start = time.perf_counter()
        stale = state_reads = cap = 0
        src = self.sources
        if op == "vm_state":
            vm = self._vm(rng)
            state = self.vms.get_state(vm) if cached else src.get_vm_state(vm)
            state_reads = 1
            truth = self.truth.generation(src.vm_index(vm), t0 - GRACE)
            stale = int(state.generation < truth)
        elif op == "vm_states":
            ids = list(dict.fromkeys(self._vm(rng) for _ in range(20)))
            (self.vms.get_states if cached else src.get_vm_states)(ids)
        elif op == "vm_metrics":
            vm = self._vm(rng)
            bucket = math.floor(t0 / 10) * 10
            window = TimeRange(bucket - 300, bucket, 60)
            (self.vms.get_metrics if cached else src.get_vm_metrics)(vm, window)
        elif op == "vm_config":
            vm = self._vm(rng)
            (self.vms.get_configuration if cached else src.get_vm_configuration)(vm)
        elif op == "capacity":
            node = self._node(rng)
            cap = 1
            if cached:
                self.resources.get_node_capacity(node)
            else:
                src.get_node_capacity(node)
        elif op == "score":
            spec, node = SPECS[rng.randrange(len(SPECS))], self._node(rng)
            if cached:
                self.resources.get_allocation_score(spec, node)
            else:
                src.score(spec, src.get_node_capacity(node))
        elif op == "optimal":
            spec = SPECS[rng.randrange(len(SPECS))]
            if cached:
                self.resources.get_optimal_nodes(spec, 3)
            else:
                src.optimal_nodes(spec, 3)
        else:
            with self._flying:
                flying = sorted(self.in_flight)
            if not flying:
                return  # no migration to look at now: not an operation
            mid = flying[rng.randrange(len(flying))]
            if cached:
                self.migrations.get_progress(mid)
            else:
                src.get_migration_progress(mid)
        seconds = time.perf_counter() - start
        if tls.source:
            tier = "source"
        elif tls.store:
            tier = "L3"
        elif tls.remote:
            tier = "L2"
        else:
            tier = "L1"
        meter = self.meter
        with meter.lock:
            meter.ops += 1
            meter.by_tier[tier] += 1
            meter.latency[tier].append(seconds)
            meter.stale += stale
            meter.state_reads += state_reads
            if cap:
                meter.cap_reads += 1
                meter.cap_source += int(tls.source > 0)

    def _client(self, seed: int, phase: Phase) -> None:
        rng = random.Random(seed)
        while time.time() < phase.t1 and not self._stop.is_set():
            try:
                self._op(rng, phase.cached)
            except NovaCacheError:
                with self.meter.lock:
                    self.meter.errors += 1

    # -- the cluster's own activity ---------------------------------------------------

    def _changes(self, phase: Phase) -> None:
        """Emit the state changes of the VMs this worker owns, as they happen."""
        last = phase.t0
        while not self._stop.is_set():
            now = time.time()
            if now >= phase.t1:
                break
            for when, vm in self.truth.changes_between(last, now):
                if vm % self.plan.workers != self.index:
                    continue
                new = self.truth.state(vm, when)
                with contextlib.suppress(NovaCacheError):
                    self.vms.on_state_change(VMStateChange(new.vm_id, None, new, when))
                    with self.meter.lock:
                        self.meter.invalidations += 1
            last = now
            self._stop.wait(0.02)

    def _migrations(self, phase: Phase) -> None:
        """Start a migration every second: progress every 0.1 s, a checkpoint every
        third step, completion at 100 %; a reader streams each one's updates."""
        n = 0
        readers: list[threading.Thread] = []
        while time.time() < phase.t1 - 1.5 and not self._stop.is_set():
            n += 1
            mid = f"w{self.index}-{int(phase.t0)}-m{n}"
            vm = f"vm-{(n * 31) % self.plan.vms:05d}"
            state = MigrationState(mid, vm, "node-000", "node-001", "running", time.time())
            self.sources.migrations[mid] = state
            self.sources.progress[mid] = MigrationProgress(mid, 0.0, 0, 8 << 30)
            published = [0]
            reader = threading.Thread(target=self._read_updates, args=(mid, published))
            reader.start()
            readers.append(reader)
            with self._flying:
                self.in_flight.add(mid)
            with contextlib.suppress(NovaCacheError):
                self._publish(MigrationEvent("started", mid, state=state), published)
                for step in range(1, 11):
                    self._stop.wait(0.1)
                    p = MigrationProgress(
                        mid, step * 10.0, step * (8 << 27), 8 << 30, 800e6, (10 - step) / 10
                    )
                    self.sources.progress[mid] = p
                    self._publish(MigrationEvent("progress", mid, progress=p), published)
                    if step % 3 == 0:
                        cp = MigrationCheckpoint(
                            mid, step // 3, step * (8 << 27), created_at=time.time()
                        )
                        self._publish(MigrationEvent("checkpointed", mid, checkpoint=cp), published)
                done = MigrationState(
                    mid, vm, "node-000", "node-001", "completed", state.started_at
                )
                self.sources.migrations[mid] = done
                self._publish(MigrationEvent("completed", mid, state=done), published)
            with self._flying:
                self.in_flight.discard(mid)
            with self.meter.lock:
                self.meter.migrations_done += 1
        for reader in readers:
            reader.join(10)

    def _publish(self, event: MigrationEvent, published: list[int]) -> None:
        self.migrations.handle_event(event)
        published[0] += 1

    def _read_updates(self, mid: str, published: list[int]) -> None:
        got = 0
        try:
            for _ in self.migrations.stream_updates(mid, idle_timeout=5):
                got += 1
        except NovaCacheError:
            pass
        with self.meter.lock:
            self.meter.updates += got
            self.meter.updates_lost += max(published[0] - got, 0)

    def _predict(self, phase: Phase) -> None:
        while time.time() < phase.t1 and not self._stop.is_set():
            self._stop.wait(self.resources.config.precache_interval)
            with contextlib.suppress(NovaCacheError):
                self.resources.precache_once()

    def _report(self) -> None:
        while not self._stop.is_set():
            self._stop.wait(SNAPSHOT)
            self._flush()

    def _flush(self) -> None:
        phase = self.phase
        if phase is None:
            return
        snap = self.meter.take()
        snap.update(
            kind="snap",
            worker=self.index,
            phase=phase.name,
            at=time.time(),
            in_flight=len(self.in_flight),
            source_calls=sum(self.sources.calls.values()),
        )
        self.send(snap)

    # -- the run ----------------------------------------------------------------------

    def run(self, phases: list[Phase]) -> None:
        reporter = threading.Thread(target=self._report, daemon=True)
        reporter.start()
        try:
            for number, phase in enumerate(phases):
                wait = phase.t0 - time.time()
                if wait > 0:
                    time.sleep(wait)
                self._flush()
                self.meter.take()  # what ran before the phase is not the phase's
                self._build(number)
                self.phase = phase
                threads = [
                    threading.Thread(target=self._client, args=(self.plan.seed * 97 + i, phase))
                    for i in range(self.settings.threads)
                ]
                if phase.cached:
                    threads.append(threading.Thread(target=self._changes, args=(phase,)))
                    threads.append(threading.Thread(target=self._migrations, args=(phase,)))
                if phase.predictive:
                    threads.append(threading.Thread(target=self._predict, args=(phase,)))
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                self._flush()
            self.phase = None
        finally:
            self._stop.set()
            reporter.join(2)
            self.send(
                {
                    "kind": "done",
                    "worker": self.index,
                    "vm_stats": self.vms.stats.snapshot(),
                    "resource_stats": self.resources.stats.snapshot(),
                    "migration_stats": self.migrations.stats.snapshot(),
                    "manager": self.manager.stats.snapshot(),
                }
            )
            self.manager.close()


def _pick(cumulative: Sequence[float], rng: random.Random) -> int:
    import bisect

    return min(bisect.bisect_left(cumulative, rng.random() * cumulative[-1]), len(cumulative) - 1)


def run_worker(
    index: int,
    plan: Plan,
    settings: Settings,
    phases: list[Phase],
    send: Callable[[dict[str, Any]], None],
) -> None:
    """Run worker ``index`` through ``phases``, reporting through ``send``."""
    _Worker(index, plan, settings, send).run(phases)
