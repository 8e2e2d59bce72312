"""The health monitor of a cache manager: per-tier probes, hysteresis, an overall status
and alerts on transitions (docs/operations.md).

:class:`HealthMonitor` runs one *checker* per part of the manager every ``interval``
seconds, in a thread (:meth:`~HealthMonitor.start`) or an asyncio task
(:meth:`~HealthMonitor.astart`), or on demand (:meth:`~HealthMonitor.check_now`):

- ``local`` (:class:`L1Checker`): a write/read/delete round trip of one private key in
  L1 (counted in no hit or miss), its fill, and its eviction rate since the last check.
- ``remote`` (:class:`RedisChecker`): PING, then a write, read and delete of **one fixed
  key per process** (``novacache:health:<host>:<pid>``, with a TTL: a failed delete
  leaves one key that expires, and the next check writes the same key again), the
  round-trip latency, memory against ``maxmemory``, the replication link of a replica,
  the master a Sentinel names, a Cluster's ``cluster_state``.
- ``store`` (:class:`StoreChecker`): the same write/read/delete round trip, and the
  rows and bytes stored against the store's ``maxbytes`` quota when it has one.
- ``bus`` (:class:`BusChecker`): whether the L1 coherence bus receives its heartbeats.

A probe says ``healthy``, ``degraded`` (it answered, but something is off: slow, memory
nearly full, replication link down, L1 thrashing) or ``unhealthy`` (it failed or did not
answer within ``timeout``). A tier's status moves to a worse one only after
``failure_threshold`` probes in a row say so, and back to a better one after
``recovery_threshold`` (hysteresis: a flapping tier does not flap the status); every
tier starts ``healthy``. The overall status is ``unhealthy`` when the tiers that are
unhealthy carry more than ``unhealthy_share`` of the total weight (default weights:
``local`` 1, ``remote`` 2, ``store`` 2, ``bus`` 1), else ``degraded`` when any tier is
not healthy, else ``healthy``.

Sinks are called with a :class:`HealthTransition` when the overall status or a tier's
status changes, and only then: :class:`LoggingSink` logs it, :class:`WebhookSink` POSTs
it as JSON from its own thread (a bounded queue, a timeout and retries: a slow or dead
endpoint never delays a check). An exception raised by a sink is logged and counted
(``sink_errors``), never raised into the checks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import json
import logging
import os
import queue
import secrets
import socket
import threading
import time
import urllib.request
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

from ..errors import ConfigurationError, EntryTooLarge, TierError

__all__ = [
    "BusChecker",
    "Checker",
    "HealthMonitor",
    "HealthReport",
    "HealthTransition",
    "L1Checker",
    "LoggingSink",
    "Probe",
    "RedisChecker",
    "Status",
    "StoreChecker",
    "TierHealth",
    "WebhookSink",
    "default_checkers",
]

Status = Literal["healthy", "degraded", "unhealthy"]
HEALTHY: Status = "healthy"
DEGRADED: Status = "degraded"
UNHEALTHY: Status = "unhealthy"
_RANK: dict[str, int] = {HEALTHY: 0, DEGRADED: 1, UNHEALTHY: 2}

DEFAULT_WEIGHTS: Mapping[str, float] = {"local": 1.0, "remote": 2.0, "store": 2.0, "bus": 1.0}

log = logging.getLogger("novacache.health")
T = TypeVar("T")


def probe_key() -> str:
    """The one key this process's probes write in Redis and the store."""
    return f"novacache:health:{socket.gethostname()}:{os.getpid()}"


# -- results ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """What one checker found: a status, how long the probe took, and details."""

    status: Status
    latency_s: float
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TierHealth:
    """One tier's status after hysteresis, its last probe and the streaks behind it."""

    status: Status
    latency_s: float
    detail: Mapping[str, Any]
    consecutive_failures: int
    consecutive_successes: int

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready data."""
        return {
            "status": self.status,
            "latency_s": self.latency_s,
            "detail": _jsonable(self.detail),
            "consecutive_failures": self.consecutive_failures,
            "consecutive_successes": self.consecutive_successes,
        }


@dataclass(frozen=True)
class HealthReport:
    """The outcome of one round of checks."""

    status: Status
    tiers: Mapping[str, TierHealth]
    checked_at: float  # wall time (Unix seconds)
    uptime_s: float  # seconds since the monitor was made

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready data."""
        return {
            "status": self.status,
            "tiers": {name: th.to_dict() for name, th in self.tiers.items()},
            "checked_at": self.checked_at,
            "uptime_s": self.uptime_s,
        }


@dataclass(frozen=True)
class HealthTransition:
    """A change of status: ``scope`` is ``"overall"`` or a tier's name."""

    scope: str
    old: Status
    new: Status
    report: HealthReport

    def to_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "old": self.old,
            "new": self.new,
            "report": self.report.to_dict(),
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


# -- checkers -----------------------------------------------------------------------------


async def _v(value: Awaitable[T] | T) -> T:
    """``value``, awaited when it is awaitable: one probe source for sync and asyncio
    tiers (a probe of sync tiers never suspends, see :func:`_drive`)."""
    if inspect.isawaitable(value):
        return await value
    return value


def _drive(coro: Coroutine[Any, Any, T]) -> T:
    """Run a probe of synchronous objects to its end without an event loop."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coro.close()
    raise ConfigurationError("a synchronous health check met an asyncio tier: use acheck_now")


class Checker(Protocol):
    """A probe of one part of a manager. ``probe()`` is a coroutine function; for a
    synchronous manager it must not suspend (it is run without an event loop)."""

    name: str
    weight: float

    def probe(self) -> Coroutine[Any, Any, Probe]: ...


def _failed(t0: float, exc: BaseException, **detail: Any) -> Probe:
    return Probe(
        UNHEALTHY, time.perf_counter() - t0, {**detail, "error": f"{type(exc).__name__}: {exc}"}
    )


async def _round_trip(tier: Any, key: str, ttl: float) -> float:
    """Write, read back and delete ``key`` in ``tier``; the seconds it took. Raises
    ``TierError`` (or ``AssertionError`` when the value read back differs)."""
    token = secrets.token_bytes(8)
    t0 = time.perf_counter()
    await _v(tier.set(key, token, ttl))
    got = await _v(tier.get(key))
    if got != token:
        raise TierError(f"probe read back {got!r}, wrote {token!r}")
    await _v(tier.delete(key))
    return time.perf_counter() - t0


class L1Checker:
    """L1: a write/read/delete round trip of a private key (``peek``: no hit or miss is
    counted), the fill and the eviction rate. Degraded when the cache is full and more
    than ``evict_warn`` of its lookups since the last check evicted an entry
    (thrashing)."""

    def __init__(
        self, local: Any, *, name: str = "local", weight: float = 1.0, evict_warn: float = 0.5
    ) -> None:
        self.local = local
        self.name = name
        self.weight = weight
        self.evict_warn = evict_warn
        self._key = ("novacache:health", os.getpid(), id(self))
        self._last: tuple[int, int] | None = None  # (evictions, lookups) at the last check

    async def probe(self) -> Probe:
        t0 = time.perf_counter()
        local = self.local
        try:
            token = secrets.token_bytes(8)
            local.set(self._key, token)
            got = local.peek(self._key)
            local.pop(self._key, None)
            if got != token:
                return Probe(UNHEALTHY, time.perf_counter() - t0, {"error": "read back differs"})
            st = local.stats
        except Exception as exc:
            return _failed(t0, exc)
        latency = time.perf_counter() - t0
        lookups = st.hits + st.misses
        last, self._last = self._last, (st.evictions, lookups)
        evictions = st.evictions - last[0] if last else 0
        looked = lookups - last[1] if last else 0
        ratio = evictions / looked if looked else 0.0
        fill = st.currsize / st.maxsize if st.maxsize else None
        detail: dict[str, Any] = {
            "entries": st.currsize,
            "bytes": st.currbytes,
            "fill": fill,
            "evictions": evictions,
            "eviction_ratio": ratio,
        }
        if fill is not None and fill >= 0.95 and ratio > self.evict_warn:
            return Probe(DEGRADED, latency, {**detail, "warning": "L1 is thrashing"})
        return Probe(HEALTHY, latency, detail)


def _info_int(info: Mapping[Any, Any], name: str) -> int | None:
    value = info.get(name)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


class RedisChecker:
    """Redis (L2): PING, a write/read/delete of the process's fixed key (TTL ``ttl``),
    latency (degraded above ``latency_warn`` seconds), memory (degraded above
    ``memory_warn`` of ``maxmemory``), a replica's link to its master, the master the
    Sentinels name, a Cluster's state (unhealthy unless ``ok``)."""

    def __init__(
        self,
        tier: Any,
        *,
        name: str = "remote",
        weight: float = 2.0,
        latency_warn: float = 0.1,
        memory_warn: float = 0.9,
        ttl: float = 60.0,
    ) -> None:
        self.tier = tier
        self.name = name
        self.weight = weight
        self.latency_warn = latency_warn
        self.memory_warn = memory_warn
        self.ttl = ttl
        self.key = probe_key()

    async def probe(self) -> Probe:
        t0 = time.perf_counter()
        tier = self.tier
        detail: dict[str, Any] = {}
        try:
            detail["ping_s"] = await _v(tier.ping())
        except (TierError, EntryTooLarge) as exc:
            return _failed(t0, exc)
        failure: BaseException | None = None
        try:
            detail["round_trip_s"] = await _round_trip(tier, self.key, self.ttl)
        except (TierError, EntryTooLarge) as exc:
            failure = exc  # the server answers PING: still read its state (OOM, a replica)
        warnings: list[str] = []
        try:
            await self._server(detail, warnings)
        except Exception as exc:  # the server answered PING: report, do not fail
            detail["info_error"] = f"{type(exc).__name__}: {exc}"
        latency = time.perf_counter() - t0
        if failure is not None:
            return _failed(t0, failure, **detail, warning=", ".join(warnings))
        if detail.get("cluster_state", "ok") != "ok":
            return Probe(UNHEALTHY, latency, {**detail, "error": "cluster state not ok"})
        if max(detail["ping_s"], detail["round_trip_s"] / 3) > self.latency_warn:
            warnings.append("slow")
        if warnings:
            return Probe(DEGRADED, latency, {**detail, "warning": ", ".join(warnings)})
        return Probe(HEALTHY, latency, detail)

    async def _server(self, detail: dict[str, Any], warnings: list[str]) -> None:
        tier = self.tier
        config = tier.config
        client = tier._client or tier._connect()  # the tier's own client
        if config.topology == "cluster":
            info = await _v(client.cluster_info())
            detail["cluster_state"] = str(info.get("cluster_state", "unknown"))
            return
        memory = await _v(client.info("memory"))
        used, cap = _info_int(memory, "used_memory"), _info_int(memory, "maxmemory")
        if used is not None:
            detail["used_memory"] = used
            detail["maxmemory"] = cap or 0
            if cap and used > self.memory_warn * cap:
                warnings.append("memory")
        replication = await _v(client.info("replication"))
        role = str(replication.get("role", "unknown"))
        detail["role"] = role
        if role == "slave":
            link = str(replication.get("master_link_status", "unknown"))
            detail["master_link_status"] = link
            if link != "up":
                warnings.append("replication link down")
        sentinel = tier._sentinel
        if config.topology == "sentinel" and sentinel is not None:
            host, port = await _v(sentinel.discover_master(config.service_name))
            detail["sentinel_master"] = f"{host}:{port}"


class StoreChecker:
    """The store (L3): a write/read/delete of the process's fixed key, and its usage
    (rows, bytes) against its ``maxbytes`` quota (degraded above ``quota_warn``)."""

    def __init__(
        self,
        tier: Any,
        *,
        name: str = "store",
        weight: float = 2.0,
        quota_warn: float = 0.9,
        ttl: float = 60.0,
    ) -> None:
        self.tier = tier
        self.name = name
        self.weight = weight
        self.quota_warn = quota_warn
        self.ttl = ttl
        self.key = probe_key()

    async def probe(self) -> Probe:
        t0 = time.perf_counter()
        tier = self.tier
        detail: dict[str, Any] = {}
        try:
            detail["round_trip_s"] = await _round_trip(tier, self.key, self.ttl)
            usage = getattr(tier, "usage", None)
            if usage is not None:
                entries, size = await _v(usage())
                detail["entries"], detail["bytes"] = int(entries), int(size)
        except (TierError, EntryTooLarge) as exc:
            return _failed(t0, exc, **detail)
        latency = time.perf_counter() - t0
        quota = getattr(tier, "_maxbytes", None) or getattr(
            getattr(tier, "_sync", None), "_maxbytes", None
        )
        if quota and "bytes" in detail:
            detail["quota_bytes"] = quota
            if detail["bytes"] > self.quota_warn * quota:
                return Probe(DEGRADED, latency, {**detail, "warning": "quota nearly full"})
        return Probe(HEALTHY, latency, detail)


class BusChecker:
    """The L1 coherence bus: healthy while it receives its own heartbeats."""

    def __init__(self, bus: Any, *, name: str = "bus", weight: float = 1.0) -> None:
        self.bus = bus
        self.name = name
        self.weight = weight

    async def probe(self) -> Probe:
        bus = self.bus
        detail = {
            "received": bus.received,
            "published": bus.published,
            "flushes": bus.flushes,
            "publish_errors": bus.publish_errors,
        }
        return Probe(HEALTHY if bus.healthy else UNHEALTHY, 0.0, detail)


def default_checkers(manager: Any, weights: Mapping[str, float] | None = None) -> list[Checker]:
    """The checkers of ``manager``'s parts: L1, Redis (a tier with a Redis config), the
    store, the bus."""
    w = {**DEFAULT_WEIGHTS, **(weights or {})}
    out: list[Checker] = []
    if manager.local is not None:
        out.append(L1Checker(manager.local, weight=w["local"]))
    remote = manager.remote
    if remote is not None:
        if hasattr(remote, "config") and hasattr(remote, "_connect"):
            out.append(RedisChecker(remote, weight=w["remote"]))
        else:
            out.append(StoreChecker(remote, name="remote", weight=w["remote"]))
    if manager.store is not None:
        out.append(StoreChecker(manager.store, weight=w["store"]))
    if getattr(manager, "bus", None) is not None:
        out.append(BusChecker(manager.bus, weight=w["bus"]))
    return out


# -- the monitor --------------------------------------------------------------------------


@dataclass
class _TierState:
    status: Status = HEALTHY
    pending: Status | None = None
    streak: int = 0
    failures: int = 0
    successes: int = 0

    def update(self, seen: Status, failure_threshold: int, recovery_threshold: int) -> None:
        if seen == UNHEALTHY:
            self.failures += 1
            self.successes = 0
        else:
            self.successes += 1
            self.failures = 0
        if seen == self.status:
            self.pending, self.streak = None, 0
            return
        if seen == self.pending:
            self.streak += 1
        else:
            self.pending, self.streak = seen, 1
        worse = _RANK[seen] > _RANK[self.status]
        if self.streak >= (failure_threshold if worse else recovery_threshold):
            self.status, self.pending, self.streak = seen, None, 0


Sink = Callable[[HealthTransition], Any]


class HealthMonitor:
    """Checks the parts of a cache manager and keeps the last :class:`HealthReport`.

    :param manager: a ``CacheManager`` (checks run in worker threads) or an
        ``AsyncCacheManager`` (checks run as tasks of the loop: use the ``a`` methods).
    :param interval: seconds between two rounds when started.
    :param checkers: the checkers (default: :func:`default_checkers`).
    :param sinks: callables given each :class:`HealthTransition`.
    :param failure_threshold: probes in a row that must say worse before a tier's status
        gets worse; ``recovery_threshold``: ... better, before it gets better.
    :param timeout: seconds a probe may take (a probe still running counts as failed,
        and is not started again before it ends).
    :param weights: tier weights (defaults ``local`` 1, ``remote`` 2, ``store`` 2,
        ``bus`` 1) for the default checkers.
    :param unhealthy_share: the overall status is unhealthy when the unhealthy tiers'
        weight is more than this share of the total.
    """

    def __init__(
        self,
        manager: Any,
        *,
        interval: float = 5.0,
        checkers: Sequence[Checker] | None = None,
        sinks: Iterable[Sink] = (),
        failure_threshold: int = 3,
        recovery_threshold: int = 2,
        timeout: float = 2.0,
        weights: Mapping[str, float] | None = None,
        unhealthy_share: float = 0.5,
    ) -> None:
        if not interval > 0 or not timeout > 0:
            raise ConfigurationError("interval and timeout must be > 0 seconds")
        if failure_threshold < 1 or recovery_threshold < 1:
            raise ConfigurationError("failure_threshold and recovery_threshold must be >= 1")
        if not 0 <= unhealthy_share < 1:
            raise ConfigurationError("unhealthy_share must be in [0, 1)")
        self.manager = manager
        self.interval = float(interval)
        self.timeout = float(timeout)
        self.failure_threshold = failure_threshold
        self.recovery_threshold = recovery_threshold
        self.unhealthy_share = unhealthy_share
        self.checkers: list[Checker] = list(
            checkers if checkers is not None else default_checkers(manager, weights)
        )
        names = [c.name for c in self.checkers]
        if len(set(names)) != len(names):
            raise ConfigurationError(f"checker names must be unique: {names}")
        self.sinks: list[Sink] = list(sinks)
        self.sink_errors = 0
        self.checks = 0
        self._async = bool(getattr(manager, "_async_tiers", False))
        self._states = {c.name: _TierState() for c in self.checkers}
        self._overall: Status = HEALTHY
        self._started = time.monotonic()
        self._last: HealthReport | None = None
        self._lock = threading.Lock()  # one round of checks at a time
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._running: dict[str, concurrent.futures.Future[Probe]] = {}
        self._arunning: dict[str, asyncio.Task[Probe]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def last(self) -> HealthReport | None:
        """The last report (``None`` before the first round)."""
        return self._last

    # -- one round ----------------------------------------------------------------------

    def check_now(self) -> HealthReport:
        """Run every checker now (in worker threads, each bounded by ``timeout``) and
        return the report; sinks hear of the transitions it found."""
        if self._async:
            raise ConfigurationError("an AsyncCacheManager is checked with acheck_now()")
        with self._lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(
                    max_workers=max(1, len(self.checkers)),
                    thread_name_prefix="novacache-health",
                )
            deadline = time.monotonic() + self.timeout
            futures: dict[str, concurrent.futures.Future[Probe] | None] = {}
            for checker in self.checkers:
                running = self._running.get(checker.name)
                if running is not None and not running.done():
                    futures[checker.name] = None  # the last probe has not ended
                    continue
                fut = self._pool.submit(_drive, checker.probe())
                self._running[checker.name] = fut
                futures[checker.name] = fut
            probes: dict[str, Probe] = {}
            for name, pending in futures.items():
                probes[name] = self._outcome(pending, deadline)
            return self._record(probes)

    def _outcome(self, fut: concurrent.futures.Future[Probe] | None, deadline: float) -> Probe:
        if fut is None:
            return Probe(UNHEALTHY, self.timeout, {"error": "the last probe has not ended"})
        try:
            return fut.result(timeout=max(0.0, deadline - time.monotonic()))
        except concurrent.futures.TimeoutError:
            return Probe(UNHEALTHY, self.timeout, {"error": f"no answer in {self.timeout:g} s"})
        except Exception as exc:
            return Probe(UNHEALTHY, 0.0, {"error": f"{type(exc).__name__}: {exc}"})

    async def acheck_now(self) -> HealthReport:
        """:meth:`check_now` for an asyncio manager (probes run as tasks of the running
        loop; those of a synchronous manager in worker threads)."""
        if not self._async:
            return await asyncio.to_thread(self.check_now)
        tasks: dict[str, asyncio.Task[Probe] | None] = {}
        for checker in self.checkers:
            running = self._arunning.get(checker.name)
            if running is not None and not running.done():
                tasks[checker.name] = None
                continue
            task = asyncio.ensure_future(checker.probe())
            self._arunning[checker.name] = task
            tasks[checker.name] = task
        live = [t for t in tasks.values() if t is not None]
        if live:
            await asyncio.wait(live, timeout=self.timeout)
        probes: dict[str, Probe] = {}
        for name, atask in tasks.items():
            if atask is None:
                probes[name] = Probe(
                    UNHEALTHY, self.timeout, {"error": "the last probe has not ended"}
                )
            elif not atask.done():
                # Note that the probe is left to end (or time out in the tier): cancelling
                # it mid-command could leave a connection in an unknown state.
                probes[name] = Probe(
                    UNHEALTHY, self.timeout, {"error": f"no answer in {self.timeout:g} s"}
                )
            elif atask.cancelled():
                probes[name] = Probe(UNHEALTHY, 0.0, {"error": "cancelled"})
            elif (exc := atask.exception()) is not None:
                probes[name] = Probe(UNHEALTHY, 0.0, {"error": f"{type(exc).__name__}: {exc}"})
            else:
                probes[name] = atask.result()
        with self._lock:
            return self._record(probes)

    def _record(self, probes: Mapping[str, Probe]) -> HealthReport:
        """Apply the probes (hysteresis), make the report, tell the sinks."""
        changes: list[tuple[str, Status, Status]] = []
        tiers: dict[str, TierHealth] = {}
        total = unhealthy = 0.0
        any_bad = False
        for checker in self.checkers:
            state = self._states[checker.name]
            probe = probes[checker.name]
            before = state.status
            state.update(probe.status, self.failure_threshold, self.recovery_threshold)
            if state.status != before:
                changes.append((checker.name, before, state.status))
            tiers[checker.name] = TierHealth(
                state.status, probe.latency_s, dict(probe.detail), state.failures, state.successes
            )
            total += checker.weight
            if state.status == UNHEALTHY:
                unhealthy += checker.weight
            any_bad = any_bad or state.status != HEALTHY
        if total and unhealthy > self.unhealthy_share * total:
            overall: Status = UNHEALTHY
        elif any_bad:
            overall = DEGRADED
        else:
            overall = HEALTHY
        if overall != self._overall:
            changes.insert(0, ("overall", self._overall, overall))
            self._overall = overall
        report = HealthReport(overall, tiers, time.time(), time.monotonic() - self._started)
        self._last = report
        self.checks += 1
        for scope, old, new in changes:
            self._tell(HealthTransition(scope, old, new, report))
        return report

    def _tell(self, transition: HealthTransition) -> None:
        for sink in self.sinks:
            try:
                sink(transition)
            except Exception:
                self.sink_errors += 1
                log.exception("health sink %r failed", sink)

    # -- running ------------------------------------------------------------------------

    def start(self) -> None:
        """Check every ``interval`` seconds in a daemon thread (the first round now)."""
        if self._async:
            raise ConfigurationError("an AsyncCacheManager is monitored with astart()")
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="novacache-health", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.check_now()
            except Exception:  # a bug of a checker must not end the monitor
                log.exception("health check round failed")
            self._stop.wait(self.interval)

    def stop(self, timeout: float | None = None) -> None:
        """Stop the thread and wait for it (up to ``timeout``, default ``interval`` plus
        the probe ``timeout``); probes still running in the pool are left to end."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(self.interval + self.timeout if timeout is None else timeout)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    async def astart(self) -> None:
        """Check every ``interval`` seconds in a task of the running loop."""
        if self._task is not None and not self._task.done():
            return
        self._task = asyncio.get_running_loop().create_task(self._arun())

    async def _arun(self) -> None:
        while True:
            try:
                await self.acheck_now()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("health check round failed")
            await asyncio.sleep(self.interval)

    async def astop(self) -> None:
        """Cancel the task and wait for it to end."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        for running in self._arunning.values():
            running.cancel()
        self._arunning.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


# -- sinks --------------------------------------------------------------------------------


class LoggingSink:
    """Logs each transition: ``ERROR`` when it goes unhealthy, ``WARNING`` degraded,
    ``INFO`` healthy."""

    _LEVELS: Mapping[str, int] = {
        UNHEALTHY: logging.ERROR,
        DEGRADED: logging.WARNING,
        HEALTHY: logging.INFO,
    }

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or log

    def __call__(self, transition: HealthTransition) -> None:
        t = transition
        detail = ""
        if t.scope in t.report.tiers:
            d = t.report.tiers[t.scope].detail
            detail = str(d.get("error") or d.get("warning") or "")
        self.logger.log(
            self._LEVELS[t.new],
            "novacache health: %s %s -> %s%s",
            t.scope,
            t.old,
            t.new,
            f" ({detail})" if detail else "",
        )


class WebhookSink:
    """POSTs each transition as JSON (:meth:`HealthTransition.to_dict`) to ``url`` from a
    daemon thread of its own.

    A call only enqueues (``queue_size`` at most; when full the transition is dropped
    and counted in ``dropped``), so a slow or dead endpoint never delays a check. Each
    POST waits ``timeout`` seconds at most and is tried ``retries`` more times after a
    failure (a connection error, a timeout or a non-2xx status), ``backoff`` seconds
    apart (doubling); ``sent`` and ``failed`` count the outcomes. :meth:`close` stops the
    thread (pending posts are abandoned after ``timeout``).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 2.0,
        retries: int = 2,
        backoff: float = 0.5,
        queue_size: int = 100,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigurationError(f"a webhook URL is http(s)://..., not {url!r}")
        if not timeout > 0 or retries < 0 or backoff < 0 or queue_size < 1:
            raise ConfigurationError("timeout > 0, retries >= 0, backoff >= 0, queue_size >= 1")
        self.url = url
        self.timeout = float(timeout)
        self.retries = retries
        self.backoff = float(backoff)
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._queue: queue.Queue[HealthTransition | None] = queue.Queue(queue_size)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="novacache-webhook", daemon=True)
        self._thread.start()

    def __call__(self, transition: HealthTransition) -> None:
        if self._closed.is_set():
            self.dropped += 1
            return
        try:
            self._queue.put_nowait(transition)
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None or self._closed.is_set():
                return
            body = json.dumps(item.to_dict()).encode()
            delay = self.backoff
            for attempt in range(self.retries + 1):
                if self._post(body):
                    self.sent += 1
                    break
                if attempt == self.retries or self._closed.wait(delay):
                    self.failed += 1
                    break
                delay *= 2

    def _post(self, body: bytes) -> bool:
        request = urllib.request.Request(self.url, body, dict(self.headers), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return 200 <= int(response.status) < 300
        except Exception as exc:  # URLError, HTTPError, timeouts, resets
            log.warning("health webhook %s failed: %s", self.url, exc)
            return False

    def close(self, timeout: float | None = None) -> None:
        """Stop the thread (waits up to ``timeout``, default the POST timeout)."""
        self._closed.set()
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass
        self._thread.join(self.timeout if timeout is None else timeout)
