"""Prometheus metrics of a cache manager, read at scrape time (``pip install novacache[ops]``).

:class:`MetricsCollector` is a ``prometheus_client`` custom collector: nothing is counted
on the cache's paths for it. At each scrape it reads the counters the engine keeps anyway
(the manager's :class:`~novacache.manager.ManagerStats`, L1's C counters, each tier's
failure counters and circuit breaker, the single-flight table, the invalidation engine,
the L1 coherence bus and, when given, the last report of a
:class:`~novacache.ops.health.HealthMonitor`) and turns them into metric families.

The one thing measured on a path is opt-in: ``latency=True`` (the default) wraps the
L2/L3 tiers' ``get``, ``set``, ``get_many``, ``set_many``, ``delete`` and ``delete_many``
of the manager with a timer (:func:`instrument`): two readings of the monotonic clock and
a bucket increment, compiled where built (:class:`LatencyRecorder`); the collector makes
the histograms from those raw counts at scrape time. Off (or after
:meth:`MetricsCollector.close`), the tiers are untouched and cost nothing more. L1 is
never timed (a hit is ~100 ns: a timer would double it).

Every metric carries the label ``cache`` (the name given to the collector for that
manager), so one registry can hold several managers. The list of metrics with their
labels is in docs/operations.md.

``/metrics`` for a process without one: :func:`start_http_server` (a thread) or
:func:`metrics_app` (an ASGI app to mount in a web application).
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

try:
    import prometheus_client
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
        Metric,
    )
    from prometheus_client.registry import REGISTRY, Collector, CollectorRegistry
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "novacache.ops.metrics needs prometheus-client: pip install 'novacache[ops]'"
    ) from exc

from .._version import __version__
from ..tiers._kit import Histogram, Timed

if TYPE_CHECKING:
    from .health import HealthMonitor

__all__ = [
    "DEFAULT_BUCKETS",
    "TIMED_OPERATIONS",
    "LatencyRecorder",
    "MetricsCollector",
    "instrument",
    "metrics_app",
    "start_http_server",
]

#: Upper bounds (seconds) of the latency buckets: from 25 µs (a Redis round trip on
#: loopback) to 2.5 s (a tier's timeouts and retries).
DEFAULT_BUCKETS: tuple[float, ...] = (
    25e-6, 50e-6, 100e-6, 250e-6, 500e-6,
    1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3,
    1.0, 2.5,
)  # fmt: skip

#: The tier methods :func:`instrument` times.
TIMED_OPERATIONS = ("get", "set", "get_many", "set_many", "delete", "delete_many")

_SLOTS = ("remote", "store")
_STATES = ("healthy", "degraded", "unhealthy")
_BREAKER_STATES = ("closed", "open", "half_open")


class LatencyRecorder:
    """Raw latency counts per (cache, tier, operation), exact under threads.

    ``buckets`` are the upper bounds in seconds (increasing, > 0). :meth:`timer` wraps a
    tier method; :meth:`histograms` reads ``{(cache, tier, op): (cumulative counts, sum
    in seconds)}`` for the collector. A synchronous method is wrapped in the compiled
    ``Timed`` where built (two readings of the C monotonic clock and a bucket increment,
    under the GIL), else in its pure twin (per-thread arrays): see
    :mod:`novacache.tiers._kit`.
    """

    def __init__(self, buckets: Sequence[float] = DEFAULT_BUCKETS) -> None:
        bounds = tuple(float(b) for b in buckets)
        if not bounds or any(not b > 0 for b in bounds) or list(bounds) != sorted(set(bounds)):
            raise ValueError("buckets must be increasing upper bounds > 0 (seconds)")
        self.buckets = bounds
        self._series: dict[tuple[str, str, str], Histogram] = {}
        self._lock = threading.Lock()

    def series(self, cache: str, tier: str, op: str) -> Histogram:
        """The counts of ``(cache, tier, op)`` (made on first use)."""
        with self._lock:
            found = self._series.get((cache, tier, op))
            if found is None:
                found = self._series[(cache, tier, op)] = Histogram(self.buckets)
            return found

    def timer(self, fn: Callable[..., Any], cache: str, tier: str, op: str) -> Callable[..., Any]:
        """``fn`` (a tier method, plain or ``async``) timed into the series ``(cache, tier,
        op)``: the same arguments, result and exceptions (a failed call is timed too).
        The timer's ``wrapped`` attribute is ``fn``."""
        histogram = self.series(cache, tier, op)
        if not inspect.iscoroutinefunction(fn):
            return Timed(fn, histogram)
        record, clock = histogram.record, time.monotonic

        async def atimed(*args: Any, **kwargs: Any) -> Any:
            t0 = clock()
            try:
                return await fn(*args, **kwargs)
            finally:
                record(clock() - t0)

        atimed.wrapped = fn  # type: ignore[attr-defined]
        return atimed

    def histograms(self) -> dict[tuple[str, str, str], tuple[list[int], float]]:
        """``{(cache, tier, op): (cumulative bucket counts incl. +Inf, sum of seconds)}``."""
        with self._lock:
            items = list(self._series.items())
        out = {}
        for key, histogram in items:
            counts, total = histogram.snapshot()
            cumulative, running = [], 0
            for count in counts:
                running += count
                cumulative.append(running)
            out[key] = (cumulative, total)
        return out


def instrument(
    tier: Any,
    recorder: LatencyRecorder,
    label: str,
    *,
    cache: str = "default",
    ops: Iterable[str] = TIMED_OPERATIONS,
) -> Callable[[], None]:
    """Time ``tier``'s methods ``ops`` into ``recorder`` under the labels ``cache`` and
    ``tier=label``; returns the function that removes the timers again.

    The timers are set on the tier object itself (instance attributes that shadow the
    class's methods), so every caller of ``tier.get`` is timed and the tier's class is
    untouched; a tier whose method is already a timer is refused (``ValueError``), so
    latencies are never counted twice.
    """
    installed: list[str] = []
    for op in ops:
        method = getattr(tier, op, None)
        if method is None:
            continue
        if op in vars(tier) and getattr(method, "wrapped", None) is not None:
            for name in installed:
                delattr(tier, name)
            raise ValueError(f"{op} of tier {getattr(tier, 'name', tier)!r} is already timed")
        setattr(tier, op, recorder.timer(method, cache, label, op))
        installed.append(op)

    def remove() -> None:
        for name in installed:
            if name in vars(tier):
                delattr(tier, name)
        installed.clear()

    return remove


class _Watched:
    """One manager under a collector: its name, health monitor and timers."""

    def __init__(
        self,
        manager: Any,
        name: str,
        health: HealthMonitor | None,
        recorder: LatencyRecorder | None,
    ) -> None:
        self.manager = manager
        self.name = name
        self.health = health
        self.removers: list[Callable[[], None]] = []
        if recorder is not None:
            for slot in _SLOTS:
                tier = getattr(manager, slot, None)
                if tier is not None:
                    self.removers.append(instrument(tier, recorder, slot, cache=name))

    def close(self) -> None:
        for remove in self.removers:
            remove()
        self.removers.clear()


class _Families:
    """The metric families of one scrape, made on first use and yielded in order."""

    def __init__(self) -> None:
        self._made: dict[str, Metric] = {}

    def counter(self, name: str, doc: str, labels: Sequence[str]) -> CounterMetricFamily:
        found = self._made.get(name)
        if found is None:
            found = self._made[name] = CounterMetricFamily(name, doc, labels=labels)
        return found  # type: ignore[return-value]

    def gauge(self, name: str, doc: str, labels: Sequence[str]) -> GaugeMetricFamily:
        found = self._made.get(name)
        if found is None:
            found = self._made[name] = GaugeMetricFamily(name, doc, labels=labels)
        return found  # type: ignore[return-value]

    def histogram(self, name: str, doc: str, labels: Sequence[str]) -> HistogramMetricFamily:
        found = self._made.get(name)
        if found is None:
            found = self._made[name] = HistogramMetricFamily(name, doc, labels=labels)
        return found  # type: ignore[return-value]

    def __iter__(self) -> Iterator[Metric]:
        return iter(self._made.values())


class MetricsCollector(Collector):
    """A ``prometheus_client`` collector of one or more cache managers (sync or asyncio).

    :param manager: a :class:`~novacache.CacheManager` or ``AsyncCacheManager`` (more with
        :meth:`add`), or ``None`` to add them later.
    :param name: the value of the ``cache`` label of this manager's metrics.
    :param health: a :class:`~novacache.ops.health.HealthMonitor` whose last report is
        exported (overall and per-tier status, probe latency, Redis memory, store usage).
    :param latency: time the L2/L3 tiers' operations (:func:`instrument`).
    :param buckets: the latency histogram's upper bounds in seconds.
    :param registry: register into this registry (``None``: do not register; the
        default is ``prometheus_client``'s global registry).

    :meth:`close` unregisters the collector and removes its timers.
    """

    def __init__(
        self,
        manager: Any = None,
        *,
        name: str = "default",
        health: HealthMonitor | None = None,
        latency: bool = True,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
        registry: CollectorRegistry | None = REGISTRY,
    ) -> None:
        self.recorder = LatencyRecorder(buckets) if latency else None
        self._watched: dict[str, _Watched] = {}
        self._lock = threading.Lock()
        if manager is not None:
            self.add(manager, name=name, health=health)
        self.registry = registry
        if registry is not None:
            registry.register(self)

    def add(self, manager: Any, *, name: str, health: HealthMonitor | None = None) -> None:
        """Export ``manager`` too, under ``cache=name`` (a name used once per collector)."""
        if not isinstance(name, str) or not name:
            raise ValueError("the cache name must be a non-empty str")
        for attr in ("stats", "local"):
            if not hasattr(manager, attr):
                raise TypeError(f"not a cache manager: {type(manager).__name__}")
        with self._lock:
            if name in self._watched:
                raise ValueError(f"a manager named {name!r} is already exported")
            self._watched[name] = _Watched(manager, name, health, self.recorder)

    def remove(self, name: str) -> None:
        """Stop exporting the manager ``name`` (its timers removed)."""
        with self._lock:
            watched = self._watched.pop(name)
        watched.close()

    def close(self) -> None:
        """Unregister from the registry and remove every timer (idempotent)."""
        with self._lock:
            watched, self._watched = list(self._watched.values()), {}
        for w in watched:
            w.close()
        if self.registry is not None:
            try:
                self.registry.unregister(self)
            except KeyError:
                pass
            self.registry = None

    def describe(self) -> Iterable[Metric]:
        # Note that describing by collecting would scrape at registration; the names are
        # checked for clashes by the registry with what a scrape of no manager yields.
        return ()

    # -- the scrape ---------------------------------------------------------------------

    def collect(self) -> Iterable[Metric]:
        """The metric families now (called by the registry at each scrape)."""
        f = _Families()
        f.gauge("novacache_info", "novacache's version.", ["version"]).add_metric([__version__], 1)
        with self._lock:
            watched = list(self._watched.values())
        for w in watched:
            self._manager(f, w)
            if w.health is not None:
                self._health(f, w.name, w.health)
        if self.recorder is not None:
            self._latency(f)
        yield from f

    def _manager(self, f: _Families, w: _Watched) -> None:
        m, cache = w.manager, w.name
        stats = m.stats.snapshot()
        tiers = stats["tiers"]
        hits = f.counter("novacache_hits", "Reads answered by a tier.", ["cache", "tier"])
        misses = f.counter("novacache_misses", "Reads a tier did not answer.", ["cache", "tier"])
        expired = f.counter(
            "novacache_expirations",
            "Entries found expired (L1: removed at expiry; L2/L3: envelope deadline passed).",
            ["cache", "tier"],
        )
        errors = f.counter(
            "novacache_errors",
            "Failures seen by the manager, by tier, operation and kind.",
            ["cache", "tier", "operation", "kind"],
        )
        local = m.local
        if local is not None:
            ls = local.stats
            hits.add_metric([cache, "local"], ls.hits)
            misses.add_metric([cache, "local"], ls.misses)
            expired.add_metric([cache, "local"], ls.expirations)
            f.counter(
                "novacache_evictions", "Entries evicted to respect a bound.", ["cache", "tier"]
            ).add_metric([cache, "local"], ls.evictions)
            f.gauge("novacache_entries", "Entries held.", ["cache", "tier"]).add_metric(
                [cache, "local"], ls.currsize
            )
            f.gauge("novacache_bytes", "Bytes held (weights).", ["cache", "tier"]).add_metric(
                [cache, "local"], ls.currbytes
            )
            cap_entries = f.gauge(
                "novacache_capacity_entries", "The entry bound (maxsize).", ["cache", "tier"]
            )
            cap_bytes = f.gauge(
                "novacache_capacity_bytes", "The byte bound (maxbytes).", ["cache", "tier"]
            )
            if ls.maxsize is not None:
                cap_entries.add_metric([cache, "local"], ls.maxsize)
            if ls.maxbytes is not None:
                cap_bytes.add_metric([cache, "local"], ls.maxbytes)
        breaker_state = f.gauge(
            "novacache_breaker_state",
            "1 for the circuit breaker's current state of a tier, 0 for the others.",
            ["cache", "tier", "state"],
        )
        opened = f.counter("novacache_breaker_opened", "Times a breaker opened.", ["cache", "tier"])
        rejected = f.counter(
            "novacache_breaker_rejected", "Calls refused by an open breaker.", ["cache", "tier"]
        )
        failures = f.counter(
            "novacache_tier_failures",
            "Failures of a tier's client by kind (errors, timeouts, unavailable, rejected).",
            ["cache", "tier", "kind"],
        )
        for slot in _SLOTS:
            tier = getattr(m, slot, None)
            if tier is None:
                continue
            counts = tiers.get(slot, {})
            hits.add_metric([cache, slot], counts.get("hits", 0))
            misses.add_metric([cache, slot], counts.get("misses", 0))
            expired.add_metric([cache, slot], counts.get("expired", 0))
            errors.add_metric([cache, slot, "read", "failure"], counts.get("read_errors", 0))
            errors.add_metric([cache, slot, "read", "corrupt"], counts.get("corrupt", 0))
            errors.add_metric([cache, slot, "promote", "failure"], counts.get("promote_errors", 0))
            breaker = getattr(tier, "breaker", None)
            if breaker is not None:
                state = breaker.state
                for name in _BREAKER_STATES:
                    breaker_state.add_metric([cache, slot, name], 1 if state == name else 0)
                opened.add_metric([cache, slot], breaker.opened)
                rejected.add_metric([cache, slot], breaker.rejected)
            tier_stats = getattr(tier, "stats", None)
            if tier_stats is not None and hasattr(tier_stats, "snapshot"):
                for kind, value in tier_stats.snapshot().items():
                    if kind != "failovers":
                        failures.add_metric([cache, slot, kind], value)
                    else:
                        f.counter(
                            "novacache_failovers",
                            "Sentinel failovers seen by a tier.",
                            ["cache", "tier"],
                        ).add_metric([cache, slot], value)
        errors.add_metric([cache, "all", "write", "failure"], stats["write_errors"])
        errors.add_metric([cache, "manager", "hook", "exception"], stats["hook_errors"])
        for metric, key, doc in (
            ("novacache_loads", "loads", "Loader calls."),
            ("novacache_refreshes", "refreshes", "Loads that replaced a stale value."),
            ("novacache_stale_served", "stale_served", "Stale values served meanwhile."),
            ("novacache_l1_refused", "l1_refused", "Values larger than L1's budget."),
            ("novacache_l1_skipped", "l1_skipped", "L1 fills skipped (bus down or a race)."),
        ):
            f.counter(metric, doc, ["cache"]).add_metric([cache], stats[key])
        flights = getattr(m, "_flights", None)
        if flights is not None:
            f.counter(
                "novacache_singleflight_waits",
                "get_or_load calls that waited for another caller's load.",
                ["cache"],
            ).add_metric([cache], flights.waiters)
        self._bus(f, cache, getattr(m, "bus", None))
        self._invalidation(f, cache, getattr(m, "invalidation", None))

    @staticmethod
    def _bus(f: _Families, cache: str, bus: Any) -> None:
        if bus is None:
            return
        f.gauge(
            "novacache_bus_healthy",
            "1 while invalidations are known to reach this process's L1 (the coherence bus).",
            ["cache"],
        ).add_metric([cache], 1 if bus.healthy else 0)
        for metric, attr, doc in (
            ("novacache_bus_received", "received", "Invalidations from other processes."),
            ("novacache_bus_published", "published", "Invalidation messages published."),
            ("novacache_bus_publish_errors", "publish_errors", "Publishes that failed."),
            ("novacache_bus_flushes", "flushes", "L1 flushes because the bus was lost."),
        ):
            f.counter(metric, doc, ["cache"]).add_metric([cache], getattr(bus, attr))

    @staticmethod
    def _invalidation(f: _Families, cache: str, engine: Any) -> None:
        if engine is None:
            return
        snap = engine.stats.snapshot()
        counts = snap["counts"]
        f.counter("novacache_invalidations", "Invalidations run.", ["cache"]).add_metric(
            [cache], counts["invalidations"]
        )
        f.counter(
            "novacache_invalidated_keys", "Keys invalidated (dropped or refreshed).", ["cache"]
        ).add_metric([cache], counts["keys"])
        f.counter(
            "novacache_invalidation_errors",
            "Index writes and batch flushes that failed.",
            ["cache", "kind"],
        ).add_metric([cache, "index"], counts["index_errors"])
        by_events = f.counter(
            "novacache_invalidation_events",
            "Events per strategy or rule that invalidated something.",
            ["cache", "strategy"],
        )
        by_keys = f.counter(
            "novacache_invalidation_strategy_keys",
            "Keys invalidated per strategy or rule.",
            ["cache", "strategy"],
        )
        for who, c in snap["by"].items():
            by_events.add_metric([cache, who], c.get("events", 0))
            by_keys.add_metric([cache, who], c.get("keys", 0))
        dropped = f.counter(
            "novacache_invalidation_dropped",
            "Keys a tier held and dropped for an invalidation.",
            ["cache", "tier"],
        )
        for slot, c in snap["tiers"].items():
            dropped.add_metric([cache, slot], c.get("dropped", 0))
        f.counter(
            "novacache_smart_refreshes", "Hot keys reloaded instead of dropped.", ["cache"]
        ).add_metric([cache], counts["refreshes"])

    @staticmethod
    def _health(f: _Families, cache: str, monitor: HealthMonitor) -> None:
        report = monitor.last
        if report is None:
            return
        overall = f.gauge(
            "novacache_health_status",
            "1 for the overall health status now (healthy, degraded, unhealthy), 0 for others.",
            ["cache", "state"],
        )
        for state in _STATES:
            overall.add_metric([cache, state], 1 if report.status == state else 0)
        per_tier = f.gauge(
            "novacache_tier_health_status",
            "1 for a tier's health status now, 0 for the others.",
            ["cache", "tier", "state"],
        )
        latency = f.gauge(
            "novacache_health_check_latency_seconds",
            "How long the last health probe of a tier took.",
            ["cache", "tier"],
        )
        for name, th in report.tiers.items():
            for state in _STATES:
                per_tier.add_metric([cache, name, state], 1 if th.status == state else 0)
            latency.add_metric([cache, name], th.latency_s)
            detail: Mapping[str, Any] = th.detail
            if "used_memory" in detail:
                f.gauge(
                    "novacache_redis_memory_used_bytes",
                    "Redis used_memory (INFO memory), at the last health check.",
                    ["cache", "tier"],
                ).add_metric([cache, name], detail["used_memory"])
                f.gauge(
                    "novacache_redis_memory_max_bytes",
                    "Redis maxmemory (0: unbounded), at the last health check.",
                    ["cache", "tier"],
                ).add_metric([cache, name], detail.get("maxmemory", 0))
            if "entries" in detail and name != "local":
                f.gauge("novacache_entries", "Entries held.", ["cache", "tier"]).add_metric(
                    [cache, name], detail["entries"]
                )
                f.gauge("novacache_bytes", "Bytes held (weights).", ["cache", "tier"]).add_metric(
                    [cache, name], detail["bytes"]
                )
        f.gauge(
            "novacache_health_checked_timestamp_seconds",
            "When the last health check ran (Unix time).",
            ["cache"],
        ).add_metric([cache], report.checked_at)

    def _latency(self, f: _Families) -> None:
        assert self.recorder is not None
        bounds = [repr(b) for b in self.recorder.buckets] + ["+Inf"]
        hist = f.histogram(
            "novacache_tier_operation_duration_seconds",
            "Latency of L2/L3 tier operations (failed calls included).",
            ["cache", "tier", "operation"],
        )
        for (cache, tier, op), (cumulative, total) in sorted(self.recorder.histograms().items()):
            hist.add_metric(
                [cache, tier, op], list(zip(bounds, cumulative, strict=True)), sum_value=total
            )


def metrics_app(registry: CollectorRegistry = REGISTRY) -> Callable[..., Any]:
    """An ASGI app serving ``registry`` in Prometheus' text format (mount it at
    ``/metrics``)."""
    return prometheus_client.make_asgi_app(registry)


def start_http_server(
    port: int, addr: str = "127.0.0.1", registry: CollectorRegistry = REGISTRY
) -> tuple[Any, threading.Thread]:
    """Serve ``registry`` at ``http://addr:port/metrics`` from a daemon thread; returns
    ``(server, thread)`` (``server.shutdown()`` stops it). ``port=0`` picks a free port
    (``server.server_port``). Binds to loopback unless told otherwise."""
    server, thread = prometheus_client.start_http_server(port, addr=addr, registry=registry)
    return server, thread
