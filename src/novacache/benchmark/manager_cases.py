"""The cases of the manager section: every (row, implementation) pair, ready to time.

:class:`Bench` sets everything up against one Redis server: the managers
(``CacheManager`` / ``AsyncCacheManager``, one per configuration), the floors (bare
redis-py / ``redis.asyncio`` clients configured like the Redis tier's), the baselines
(``functools.lru_cache``, a plain ``async def``) and the peers
(:mod:`.peers_manager`), each asyncio family on its own event loop so that one
library's background tasks never run while another is timed. Every key lives under a
run-unique prefix; :meth:`Bench.close` closes every client and, on a server the bench
did not start, deletes its keys.

A :class:`Case` times one pass: a loop compiled from source for that case alone (so
CPython's specialising interpreter adapts it to one implementation), the clock read
before and after the whole loop, the garbage collector off. Each pass goes over every
key once, in an order rotated from round to round, and returns the last result (of
each task or thread) for :meth:`Case.verify` to compare with the expected value.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import math
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from .peers_manager import (
    Peer,
    RedisTarget,
    aiocache_cache,
    cashews_cache,
    dogpile_region,
    installed,
)

__all__ = [
    "L1_SIZE",
    "PEER_NAMES",
    "REFILL_AFTER",
    "ROWS",
    "TTL",
    "Bench",
    "BenchError",
    "Case",
    "Dataset",
    "Row",
    "Shape",
    "make_value",
]

#: The TTL of every entry, for every implementation (seconds).
TTL = 300.0
#: Entries the L1s and memoizers may hold (above the key count: no eviction).
L1_SIZE = 10_000
#: A data set older than this (seconds) is written again before its next pass, so no
#: entry expires during a long run.
REFILL_AFTER = 240.0

Evidence = list[tuple[int, Any]]


class BenchError(RuntimeError):
    """An implementation of ours (or a floor) returned a wrong result or raised."""


def make_value(i: int) -> dict[str, Any]:
    """The value of key ``i``: a 7-field dict of JSON-safe primitives (every serializer
    in the section takes it: msgpack, pickle, JSON)."""
    return {
        "id": i,
        "name": f"vm-{i:05d}",
        "cpu": 2.5 + i % 4,
        "ram_mb": 1024 * (1 + i % 8),
        "active": i % 3 != 0,
        "zone": f"zone-{i % 5}",
        "owner": f"team-{i % 17}",
    }


@dataclass(frozen=True)
class Row:
    """One row: what it measures, its reference and novacache's target against it."""

    id: str
    title: str
    unit: str  # "ns" (per operation, lower is better) or "ops/s" (higher is better)
    reference: str  # the implementation the ratios are to
    target: float  # novacache / reference: at most this (ns) or at least this (ops/s)
    measures: str
    entries: tuple[str, ...]  # the implementations, in the order of the table

    @property
    def higher_is_better(self) -> bool:
        return self.unit == "ops/s"


ROWS: tuple[Row, ...] = (
    Row("cached-l1-sync", "@manager.cached hit (L1), f(int)", "ns", "lru_cache", 2.0,
        "a call of a CacheManager.cached function answered by L1, vs functools.lru_cache",
        ("lru_cache", "memoize", "novacache")),
    Row("cached-l1-async", "@manager.cached hit (L1), async f(int)", "ns", "baseline", 2.0,
        "an awaited AsyncCacheManager.cached coroutine function answered by L1, vs "
        "awaiting the async def itself",
        ("baseline", "novacache", "cashews client_side")),
    Row("get-or-load-l1-sync", "get_or_load hit (L1)", "ns", "manager.get", 1.3,
        "CacheManager.get_or_load answered by L1, vs CacheManager.get answered by L1",
        ("manager.get", "novacache")),
    Row("get-or-load-l1-async", "get_or_load hit (L1), asyncio", "ns", "manager.get", 1.3,
        "AsyncCacheManager.get_or_load answered by L1, vs its get answered by L1",
        ("manager.get", "novacache")),
    Row("get-redis-sync", "get served by Redis", "ns", "floor", 1.05,
        "CacheManager.get with Redis only, vs redis-py GET + Codec.decode",
        ("floor", "novacache", "dogpile.cache")),
    Row("get-redis-async", "get served by Redis, asyncio", "ns", "floor", 1.05,
        "AsyncCacheManager.get with Redis only, vs redis.asyncio GET + Codec.decode",
        ("floor", "floor, no gate", "novacache", "cashews", "aiocache")),
    Row("get-redis-l1-sync", "get served by Redis, L1 in front", "ns", "redis-only", 1.03,
        "CacheManager.get with L1 (cleared before each pass) + Redis, vs Redis only",
        ("redis-only", "novacache")),
    Row("get-redis-l1-async", "get served by Redis, L1 in front, asyncio", "ns",
        "redis-only", 1.03,
        "AsyncCacheManager.get with L1 (cleared before each pass) + Redis, vs Redis only",
        ("redis-only", "novacache", "cashews client_side")),
    Row("set-sync", "set", "ns", "floor", 1.05,
        "CacheManager.set with Redis only, vs redis-py SET + Codec.encode",
        ("floor", "floor, pre-encoded", "novacache", "dogpile.cache")),
    Row("set-async", "set, asyncio", "ns", "floor", 1.05,
        "AsyncCacheManager.set with Redis only, vs redis.asyncio SET + Codec.encode",
        ("floor", "floor, pre-encoded", "novacache", "cashews", "cashews client_side",
         "aiocache")),
    Row("tasks-100", "100 asyncio tasks, Redis-served gets", "ops/s", "floor", 1.0,
        "gets/s of 100 concurrent tasks on AsyncCacheManager (Redis only), vs the floor",
        ("floor", "floor, blocking pool", "novacache", "cashews", "aiocache")),
    Row("threads-2", "2 threads, Redis-served gets", "ops/s", "floor", 0.95,
        "gets/s of 2 threads sharing a CacheManager (Redis only), vs the floor",
        ("floor", "novacache", "dogpile.cache")),
    Row("metrics-l1-sync", "get hit (L1), metrics collector scraped every second", "ns",
        "without", 1.02,
        "CacheManager.get answered by L1 with a MetricsCollector registered and scraped "
        "every second (novacache.ops.metrics), vs the same manager without it",
        ("without", "novacache")),
    Row("metrics-redis-sync", "get served by Redis, latency histogram on", "ns", "without",
        1.03,
        "CacheManager.get with Redis only, its tier timed into the latency histogram "
        "(novacache.ops.metrics), vs the same manager without it",
        ("without", "novacache")),
)  # fmt: skip

#: The peers, as named in the rows (cashews twice: on Redis, and with its client-side L1).
PEER_NAMES = ("dogpile.cache", "cashews", "cashews client_side", "aiocache")


# -- compiled loops --------------------------------------------------------------------

_SYNC = """
def loop(c, items, _clock=_clock{params}):
    r = None
    t0 = _clock()
    for {target} in items:
        r = {expr}
    return _clock() - t0, r
"""

_ASYNC = """
async def loop(c, items, _clock=_clock{params}):
    r = None
    t0 = _clock()
    for {target} in items:
        r = {expr}
    return _clock() - t0, r
"""

_TASK = """
async def worker(c, items{params}):
    r = None
    for {target} in items:
        r = {expr}
    return r
"""

_THREAD = """
def worker(c, items, barrier, out, slot, _clock=_clock{params}):
    barrier.wait()
    r = None
    t0 = _clock()
    for {target} in items:
        r = {expr}
    out[slot] = (t0, _clock(), r)
"""


def _compile(template: str, name: str, target: str, expr: str, extras: dict[str, Any]) -> Any:
    namespace: dict[str, Any] = {"_clock": time.perf_counter_ns, **extras}
    params = "".join(f", {n}={n}" for n in extras)
    source = template.format(params=params, target=target, expr=expr)
    exec(compile(source, f"<novacache bench: manager {expr}>", "exec"), namespace)
    return namespace[name]


class _GcOff:
    def __enter__(self) -> None:
        self.enabled = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            gc.enable()


Shape = str  # "loop" (one pass, ns/op), "tasks" or "threads" (ops/s)


@dataclass
class Dataset:
    """Entries some cases read: written once by ``fill`` and again before a pass when
    older than :data:`REFILL_AFTER` (so a long run never reads an expired entry)."""

    name: str
    fill: Callable[[], None]
    filled_at: float = -math.inf

    def ensure(self) -> None:
        if time.monotonic() - self.filled_at > REFILL_AFTER:
            self.fill()
            self.filled_at = time.monotonic()


@dataclass
class Case:
    """One implementation in one row.

    ``run(order)`` times one pass over the keys in ``order`` and returns the measure
    (ns per operation, or operations per second for the tasks and threads rows) and the
    evidence: ``(key index, result)`` of the last call (of each task or thread).
    ``verify(evidence, ops)`` says what is wrong with it (``None``: nothing).
    ``status`` is set instead of numbers when the implementation is not installed,
    failed to set up, raised or returned a wrong result.
    """

    row: str
    impl: str
    label: str
    role: str  # "reference", "novacache", "peer" or "info"
    run: Callable[[list[int]], tuple[float, Evidence]] | None = None
    verify: Callable[[Evidence, int], str | None] | None = None
    before: Callable[[], None] | None = None
    data: tuple[Dataset, ...] = ()
    ops: Callable[[int], int] = int  # operations in a pass over n keys (default: n)
    note: str = ""
    status: str | None = None
    samples: dict[int, float] = field(default_factory=dict)

    def one_pass(self, order: list[int]) -> tuple[float, str | None]:
        """Prepare (data sets, ``before``), time one pass, verify it: (measure, problem)."""
        if self.run is None or self.verify is None:
            raise BenchError(f"{self.row} / {self.impl} is not runnable: {self.status}")
        for data in self.data:
            data.ensure()
        if self.before is not None:
            self.before()
        measure, evidence = self.run(order)
        return measure, self.verify(evidence, self.ops(len(order)))


def _equals(values: Sequence[Any]) -> Callable[[Evidence, int], str | None]:
    def verify(evidence: Evidence, ops: int) -> str | None:
        for i, result in evidence:
            if result != values[i]:
                return f"key {i}: got {result!r:.120}, expected {values[i]!r:.120}"
        return None

    return verify


# -- the cases -------------------------------------------------------------------------


class Bench:
    """Every case of the manager section against the Redis at ``target``.

    ``n`` keys; ``repeat`` passes over them per timed run in the L1 rows (an L1 hit is
    ~100 ns: one pass would be too short to time); ``tasks`` x ``per_task`` gets in the
    asyncio row, 2 x ``per_thread`` in the threads row. ``external``: the server is not
    the bench's own, so :meth:`close` deletes the keys it wrote.
    """

    def __init__(
        self,
        target: RedisTarget,
        *,
        n: int = 1000,
        repeat: int = 20,
        tasks: int = 100,
        per_task: int = 20,
        per_thread: int = 1000,
        external: bool = False,
        progress: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.target = target
        self.n = n
        self.repeat = repeat
        self.tasks = tasks
        self.per_task = per_task
        self.per_thread = per_thread
        self.external = external
        self.progress = progress
        self.run_id = f"nb{uuid.uuid4().hex[:8]}"
        self.values = [make_value(i) for i in range(n)]
        self.names = [f"k{i}" for i in range(n)]
        self.set_names = [f"s{i}" for i in range(n)]
        self.cases: list[Case] = []
        self.notes: dict[str, str] = {}
        self.loops: dict[str, asyncio.AbstractEventLoop] = {}
        self._closers: list[Callable[[], None]] = []
        self._admin: Any = None

    # -- plumbing -----------------------------------------------------------------------

    def ns(self, family: str) -> str:
        """The key prefix of one implementation (run-unique)."""
        return f"{self.run_id}:{family}:"

    def loop(self, family: str) -> asyncio.AbstractEventLoop:
        """The event loop of one asyncio family (created on first use)."""
        if family not in self.loops:
            self.loops[family] = asyncio.new_event_loop()
        return self.loops[family]

    def in_loop(self, family: str, coro: Coroutine[Any, Any, Any]) -> Any:
        loop = self.loop(family)
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(coro)

    def admin(self) -> Any:
        """A plain redis-py client for checks (PTTL, readback) and cleanup."""
        if self._admin is None:
            import redis

            t = self.target
            self._admin = redis.Redis(
                host=t.host, port=t.port, db=t.db, username=t.username, password=t.password
            )
        return self._admin

    def _ttl_ok(self, raw: str | bytes) -> str | None:
        pttl = self.admin().pttl(raw)
        if not 0 < pttl <= TTL * 1000:
            return f"PTTL of {raw!r} is {pttl} ms, expected (0, {TTL * 1000:.0f}]"
        return None

    def _add(self, case: Case) -> Case:
        self.cases.append(case)
        return case

    def _absent(self, rows: Sequence[str], impl: str, label: str, status: str) -> None:
        for row in rows:
            self._add(Case(row, impl, label, "peer", status=status))

    # -- sync and async loop cases ------------------------------------------------------

    def _loop_case(
        self,
        row: str,
        impl: str,
        label: str,
        role: str,
        obj: Any,
        items: Sequence[Any],
        expr: str,
        *,
        target: str = "k",
        extras: dict[str, Any] | None = None,
        family: str | None = None,
        repeat: int = 1,
        verify: Callable[[Evidence, int], str | None] | None = None,
        data: tuple[Dataset, ...] = (),
        before: Callable[[], None] | None = None,
        note: str = "",
    ) -> Case:
        """A case timing ``r = <expr>`` over ``items`` (``family``: an asyncio family,
        whose event loop runs it; ``None``: synchronous)."""
        extras = extras or {}
        if family is None:
            fn = _compile(_SYNC, "loop", target, expr, extras)

            def run(order: list[int]) -> tuple[float, Evidence]:
                seq = [items[i] for i in order] * repeat
                with _GcOff():
                    elapsed, r = fn(obj, seq)
                return elapsed / len(seq), [(order[-1], r)]

        else:
            afn = _compile(_ASYNC, "loop", target, expr, extras)
            fam = family

            def run(order: list[int]) -> tuple[float, Evidence]:
                seq = [items[i] for i in order] * repeat
                with _GcOff():
                    elapsed, r = self.in_loop(fam, afn(obj, seq))
                return elapsed / len(seq), [(order[-1], r)]

        return self._add(
            Case(
                row,
                impl,
                label,
                role,
                run,
                verify or _equals(self.values),
                before,
                data,
                (lambda n: n * repeat),
                note,
            )
        )

    def _tasks_case(
        self,
        impl: str,
        label: str,
        role: str,
        family: str,
        obj: Any,
        items: Sequence[Any],
        expr: str,
        *,
        target: str = "k",
        extras: dict[str, Any] | None = None,
        data: tuple[Dataset, ...] = (),
        note: str = "",
    ) -> Case:
        """``tasks`` asyncio tasks, each ``per_task`` gets of its own keys; ops/s."""
        worker = _compile(_TASK, "worker", target, expr, extras or {})
        tasks, per = self.tasks, self.per_task

        async def drive(parts: list[list[Any]]) -> tuple[int, list[Any]]:
            t0 = time.perf_counter_ns()
            results = await asyncio.gather(*[worker(obj, p) for p in parts])
            return time.perf_counter_ns() - t0, results

        def run(order: list[int]) -> tuple[float, Evidence]:
            n = len(order)
            index = [[order[(t * per + j) % n] for j in range(per)] for t in range(tasks)]
            parts = [[items[i] for i in ix] for ix in index]
            with _GcOff():
                elapsed, results = self.in_loop(family, drive(parts))
            return tasks * per / (elapsed / 1e9), [
                (ix[-1], r) for ix, r in zip(index, results, strict=True)
            ]

        return self._add(
            Case(
                "tasks-100",
                impl,
                label,
                role,
                run,
                _equals(self.values),
                None,
                data,
                lambda n: tasks * per,
                note,
            )
        )

    def _threads_case(
        self,
        impl: str,
        label: str,
        role: str,
        obj: Any,
        items: Sequence[Any],
        expr: str,
        *,
        target: str = "k",
        extras: dict[str, Any] | None = None,
        data: tuple[Dataset, ...] = (),
        note: str = "",
    ) -> Case:
        """Two threads sharing ``obj``, ``per_thread`` gets each; ops/s from the first
        start to the last finish (both start at a barrier)."""
        workers = [_compile(_THREAD, "worker", target, expr, extras or {}) for _ in range(2)]
        per = self.per_thread

        def run(order: list[int]) -> tuple[float, Evidence]:
            n = len(order)
            index = [[order[(t * (n // 2) + j) % n] for j in range(per)] for t in range(2)]
            parts = [[items[i] for i in ix] for ix in index]
            barrier = threading.Barrier(2)
            out: list[Any] = [None, None]
            errors: list[BaseException] = []

            def target_fn(slot: int) -> None:
                try:
                    workers[slot](obj, parts[slot], barrier, out, slot)
                except BaseException as exc:
                    errors.append(exc)
                    barrier.abort()

            threads = [threading.Thread(target=target_fn, args=(s,)) for s in range(2)]
            with _GcOff():
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
            if errors:
                raise errors[0]
            start = min(o[0] for o in out)
            end = max(o[1] for o in out)
            return 2 * per / ((end - start) / 1e9), [
                (ix[-1], o[2]) for ix, o in zip(index, out, strict=True)
            ]

        return self._add(
            Case(
                "threads-2",
                impl,
                label,
                role,
                run,
                _equals(self.values),
                None,
                data,
                lambda n: 2 * per,
                note,
            )
        )

    # -- building -----------------------------------------------------------------------

    def setup(self) -> list[Case]:
        """Build (and fill) every case; peers that are missing or fail to set up get a
        status instead."""
        self.progress("manager: setting up novacache, the floors and the baselines")
        self._sync_novacache()
        self._async_novacache()
        self._peers()
        built = sorted((case.row, case.impl) for case in self.cases)
        listed = sorted((row.id, impl) for row in ROWS for impl in row.entries)
        if built != listed:  # the catalogue in ROWS and the building code disagree
            raise BenchError(f"cases built {built} differ from ROWS' entries {listed}")
        for case in self.cases:
            for data in case.data:
                data.ensure()
        return self.cases

    def _config(self) -> Any:
        from ..tiers import RedisConfig

        t = self.target
        return RedisConfig(
            host=t.host, port=t.port, db=t.db, username=t.username, password=t.password
        )

    def _sync_pool(self, client_name: str) -> Any:
        """A redis-py ``BlockingConnectionPool`` like the sync Redis tier's."""
        import redis
        from redis.backoff import EqualJitterBackoff
        from redis.retry import Retry

        c = self._config()
        return redis.BlockingConnectionPool(
            host=c.host,
            port=c.port,
            db=c.db,
            username=c.username,
            password=c.password,
            max_connections=c.max_connections,
            timeout=c.timeout,
            socket_timeout=c.timeout,
            socket_connect_timeout=c.connect_timeout,
            health_check_interval=0,
            client_name=client_name,
            decode_responses=False,
            retry=Retry(EqualJitterBackoff(cap=c.backoff_cap, base=c.backoff_base), c.retries),
        )

    def _sync_novacache(self) -> None:
        import redis
        from redis.backoff import EqualJitterBackoff
        from redis.retry import Retry

        from .._local import LocalCache, memoize
        from ..codec import Codec
        from ..manager import CacheManager
        from ..manager.envelope import seal
        from ..tiers import RedisTier

        values, names, n, conf = self.values, self.names, self.n, self._config()
        ms = int(TTL * 1000)

        def tier(family: str) -> RedisTier:
            return RedisTier(conf, prefix=self.ns(family))

        self.notes["novacache (sync)"] = (
            f"CacheManager(local=LocalCache({L1_SIZE}), remote=RedisTier(url, prefix=...)),"
            " RedisTier's defaults (BlockingConnectionPool of"
            f" {conf.max_connections}), Codec() (msgpack); one manager per configuration"
        )
        m_l1 = CacheManager(local=LocalCache(L1_SIZE), remote=tier("m1"))
        m_remote = CacheManager(remote=tier("mr"))
        m_front = CacheManager(local=LocalCache(L1_SIZE), remote=tier("mf"))
        for m in (m_l1, m_remote, m_front):
            self._closers.append(m.close)

        table = dict(enumerate(values))

        def plain(i: int) -> dict[str, Any]:
            return table[i]

        lru = functools.lru_cache(maxsize=L1_SIZE)(plain)
        memo = memoize(L1_SIZE, ttl=TTL)(plain)
        cached = m_l1.cached(ttl=TTL)(plain)

        def fill_lru() -> None:
            lru.cache_clear()
            memo.cache_clear()
            for i in range(n):
                lru(i)
                memo(i)

        def fill_l1() -> None:
            m_l1.clear()
            for i in range(n):
                m_l1.set(names[i], values[i], TTL)
                cached(i)

        def fill(m: CacheManager) -> Callable[[], None]:
            def run() -> None:
                for i in range(n):
                    m.set(names[i], values[i], TTL)

            return run

        d_lru, d_l1 = Dataset("lru", fill_lru), Dataset("m1", fill_l1)
        d_remote, d_front = Dataset("mr", fill(m_remote)), Dataset("mf", fill(m_front))
        ints = list(range(n))
        rep = self.repeat

        # @cached L1 hit, sync.
        self._loop_case(
            "cached-l1-sync", "lru_cache", f"functools.lru_cache(maxsize={L1_SIZE})",
            "reference", lru, ints, "c(k)", repeat=rep, data=(d_lru,),
        )  # fmt: skip
        self._loop_case(
            "cached-l1-sync", "memoize", f"novacache.memoize({L1_SIZE}, ttl={TTL:g})",
            "info", memo, ints, "c(k)", repeat=rep, data=(d_lru,),
        )  # fmt: skip
        self._loop_case(
            "cached-l1-sync", "novacache", f"CacheManager.cached(ttl={TTL:g}), L1 + Redis",
            "novacache", cached, ints, "c(k)", repeat=rep, data=(d_l1,),
        )  # fmt: skip

        # get_or_load L1 hit against get, sync.
        def load() -> Any:
            raise RuntimeError("the loader ran on what should be an L1 hit")

        self._loop_case(
            "get-or-load-l1-sync", "manager.get", "CacheManager.get(k), L1 hit",
            "reference", m_l1, names, "c.get(k)", repeat=rep, data=(d_l1,),
        )  # fmt: skip
        self._loop_case(
            "get-or-load-l1-sync", "novacache", f"CacheManager.get_or_load(k, load, {TTL:g})",
            "novacache", m_l1, names, "c.get_or_load(k, load, ttl)", repeat=rep,
            extras={"load": load, "ttl": TTL}, data=(d_l1,),
        )  # fmt: skip

        # The floor: redis-py like the sync tier's client, GET + Codec.decode.
        codec = Codec()
        pool = self._sync_pool("novacache-bench-floor")
        retry = Retry(
            EqualJitterBackoff(cap=conf.backoff_cap, base=conf.backoff_base), conf.retries
        )
        bare = redis.Redis(connection_pool=pool, retry=retry)
        self._closers.append(bare.close)
        floor_ns = self.ns("fl")
        raw = [(floor_ns + k).encode() for k in names]
        raw_set = [(floor_ns + k).encode() for k in self.set_names]

        def fill_floor() -> None:
            now = time.time()
            for i in range(n):
                bare.set(raw[i], codec.encode(names[i], seal(values[i], TTL, now)), px=ms)

        d_floor = Dataset("floor", fill_floor)
        floor_items = list(zip(names, raw, strict=True))
        self.notes["floor (sync)"] = (
            f"redis-py Redis(BlockingConnectionPool(max_connections={conf.max_connections},"
            f" timeout={conf.timeout:g} s), retries={conf.retries}) like RedisTier's;"
            " GET prefix+key, then Codec.decode of the frame"
        )
        self._loop_case(
            "get-redis-sync", "floor", "redis-py GET + Codec.decode", "reference", bare,
            floor_items, "dec(k, c.get(rk))[3]", target="k, rk",
            extras={"dec": codec.decode}, data=(d_floor,),
        )  # fmt: skip
        self._loop_case(
            "get-redis-sync", "novacache", "CacheManager.get(k), Redis only", "novacache",
            m_remote, names, "c.get(k)", data=(d_remote,),
        )  # fmt: skip

        # L1 in front, cleared before each pass: every get is served by Redis.
        self._loop_case(
            "get-redis-l1-sync", "redis-only", "CacheManager.get(k), Redis only",
            "reference", m_remote, names, "c.get(k)", data=(d_remote,),
        )  # fmt: skip
        self._front_case("get-redis-l1-sync", m_front, names, None, (d_front,))

        # set: the floor encodes the frame and SETs it, as the get floor GETs and decodes
        # (info: a frame encoded beforehand, the bare round trip).
        frames = [codec.encode(k, seal(v, TTL, time.time())) for k, v in zip(
            self.set_names, values, strict=True)]  # fmt: skip
        self._loop_case(
            "set-sync", "floor, pre-encoded", "redis-py SET of a frame encoded before (PX)",
            "info", bare,
            list(zip(raw_set, frames, strict=True)), "c.set(rk, f, px=px)", target="rk, f",
            extras={"px": ms}, verify=self._set_verify(lambda i: bare.get(raw_set[i]),
                                                       frames, lambda i: raw_set[i], True),
        )  # fmt: skip
        self._loop_case(
            "set-sync", "floor", "redis-py SET of Codec.encode(seal(v)) (PX)", "reference",
            bare, list(zip(self.set_names, raw_set, values, strict=True)),
            "c.set(rk, enc(k, seal(v, ttl, now())), px=px)", target="k, rk, v",
            extras={"enc": codec.encode, "seal": seal, "ttl": TTL, "now": time.time, "px": ms},
            verify=self._set_verify(
                lambda i: codec.decode(self.set_names[i], bare.get(raw_set[i]))[3],
                values, lambda i: raw_set[i], True),
        )  # fmt: skip
        mr_ns = self.ns("mr")
        self._loop_case(
            "set-sync", "novacache", f"CacheManager.set(k, v, {TTL:g}), Redis only",
            "novacache", m_remote, list(zip(self.set_names, values, strict=True)),
            "c.set(k, v, ttl)", target="k, v", extras={"ttl": TTL},
            verify=self._set_verify(lambda i: m_remote.get(self.set_names[i]), values,
                                    lambda i: mr_ns + self.set_names[i], "report-ok"),
        )  # fmt: skip

        self._metrics_cases(tier, d_remote, m_remote)

        # Two threads.
        self._threads_case(
            "floor", "redis-py GET + Codec.decode", "reference", bare, floor_items,
            "dec(k, c.get(rk))[3]", target="k, rk", extras={"dec": codec.decode},
            data=(d_floor,),
        )  # fmt: skip
        self._threads_case(
            "novacache", "CacheManager.get(k), Redis only", "novacache", m_remote, names,
            "c.get(k)", data=(d_remote,),
        )  # fmt: skip

    def _metrics_cases(self, tier: Callable[[str], Any], d_remote: Dataset, m_remote: Any) -> None:
        """The two rows of novacache.ops.metrics: L1 hits of a manager whose collector a
        thread scrapes every second, and Redis-served gets with the latency histogram on,
        each beside the same manager without metrics."""
        from .._local import LocalCache
        from ..manager import CacheManager

        rows = ("metrics-l1-sync", "metrics-redis-sync")
        names, rep = self.names, self.repeat
        try:
            from prometheus_client import CollectorRegistry, generate_latest

            from ..ops.metrics import MetricsCollector
        except ImportError:
            missing = "prometheus-client not installed (pip install novacache[ops])"
            for row in rows:
                self._add(Case(row, "novacache", "with metrics", "novacache", status=missing))
            plain = CacheManager(local=LocalCache(L1_SIZE), remote=tier("p0"))
            self._closers.append(plain.close)
            self._loop_case(
                "metrics-l1-sync", "without", "CacheManager.get(k), L1 hit, no collector",
                "reference", plain, names, "c.get(k)", repeat=rep,
                data=(Dataset("p0", self._filler(plain)),),
            )  # fmt: skip
            self._loop_case(
                "metrics-redis-sync", "without", "CacheManager.get(k), Redis only",
                "reference", m_remote, names, "c.get(k)", data=(d_remote,),
            )  # fmt: skip
            return
        plain = CacheManager(local=LocalCache(L1_SIZE), remote=tier("p0"))
        scraped = CacheManager(local=LocalCache(L1_SIZE), remote=tier("p1"))
        timed = CacheManager(remote=tier("p2"))
        registry = CollectorRegistry()
        # latency on: the tiers of both managers are timed (an L1 hit never reaches one)
        collector = MetricsCollector(scraped, name="scraped", registry=registry)
        collector.add(timed, name="timed")
        stop = threading.Event()

        def scrape_every_second() -> None:
            while not stop.wait(1.0):
                generate_latest(registry)

        scraper = threading.Thread(target=scrape_every_second, daemon=True)
        scraper.start()

        def close() -> None:
            stop.set()
            scraper.join(5)
            collector.close()
            for m in (plain, scraped, timed):
                m.close()

        self._closers.append(close)
        t0 = time.perf_counter()
        generate_latest(registry)
        self.notes["metrics"] = (
            "MetricsCollector(manager, registry=CollectorRegistry()) scraped by a thread "
            f"every second (one scrape took {(time.perf_counter() - t0) * 1e3:.2f} ms here, "
            "off the timed thread's path); the Redis row's tier timed by "
            "the same collector (latency on: get/set/... of L2 and L3 timed)"
        )
        d_plain = Dataset("p0", self._filler(plain))
        d_scraped = Dataset("p1", self._filler(scraped))
        d_timed = Dataset("p2", self._filler(timed))
        self._loop_case(
            "metrics-l1-sync", "without", "CacheManager.get(k), L1 hit, no collector",
            "reference", plain, names, "c.get(k)", repeat=rep, data=(d_plain,),
        )  # fmt: skip
        self._loop_case(
            "metrics-l1-sync", "novacache",
            "CacheManager.get(k), L1 hit, collector scraped every second", "novacache",
            scraped, names, "c.get(k)", repeat=rep, data=(d_scraped,),
        )  # fmt: skip
        self._loop_case(
            "metrics-redis-sync", "without", "CacheManager.get(k), Redis only",
            "reference", m_remote, names, "c.get(k)", data=(d_remote,),
        )  # fmt: skip
        self._loop_case(
            "metrics-redis-sync", "novacache",
            "CacheManager.get(k), Redis only, tier timed (histogram)", "novacache", timed,
            names, "c.get(k)", data=(d_timed,),
        )  # fmt: skip

    def _filler(self, m: Any) -> Callable[[], None]:
        """Write every key of the bench into ``m`` (all its tiers)."""
        names, values = self.names, self.values

        def run() -> None:
            for i in range(self.n):
                m.set(names[i], values[i], TTL)

        return run

    def _front_case(
        self,
        row: str,
        manager: Any,
        names: list[str],
        family: str | None,
        data: tuple[Dataset, ...],
    ) -> None:
        """The manager with an L1 in front of Redis, L1 cleared before each pass; the
        check also asks its counters that every get of the pass was served by Redis."""
        seen = [0]
        values = self.values

        def before() -> None:
            manager.local.clear()
            seen[0] = manager.stats.get("remote", "hits")

        def verify(evidence: Evidence, ops: int) -> str | None:
            problem = _equals(values)(evidence, ops)
            if problem:
                return problem
            served = manager.stats.get("remote", "hits") - seen[0]
            if served != ops:
                return f"{served} of {ops} gets were served by Redis (L1 not cleared?)"
            return None

        kind = "AsyncCacheManager" if family else "CacheManager"
        self._loop_case(
            row, "novacache", f"{kind}.get(k), L1 (cleared) + Redis", "novacache", manager,
            names, "await c.get(k)" if family else "c.get(k)", family=family,
            verify=verify, before=before, data=data,
        )  # fmt: skip

    def _set_verify(
        self,
        readback: Callable[[int], Any],
        expected: Sequence[Any],
        raw_key: Callable[[int], str | bytes],
        returns: Any,
    ) -> Callable[[Evidence, int], str | None]:
        """The check of a set pass: what the last set returned, the value read back
        from Redis, and the key's TTL there."""

        def verify(evidence: Evidence, ops: int) -> str | None:
            for i, result in evidence:
                if returns == "report-ok":
                    if not getattr(result, "ok", False):
                        return f"set returned {result!r:.120}"
                elif result != returns:
                    return f"set returned {result!r:.120}, expected {returns!r}"
                got = readback(i)
                if got != expected[i]:
                    return f"key {i} read back {got!r:.120}, expected {expected[i]!r:.120}"
                problem = self._ttl_ok(raw_key(i))
                if problem:
                    return problem
            return None

        return verify

    def _async_novacache(self) -> None:
        import redis.asyncio
        import redis.asyncio.retry
        from redis.backoff import EqualJitterBackoff

        from .._local import LocalCache
        from ..codec import Codec
        from ..manager import AsyncCacheManager
        from ..manager.envelope import seal
        from ..tiers import AsyncRedisTier

        values, names, n, conf = self.values, self.names, self.n, self._config()
        ms = int(TTL * 1000)
        fam = "novacache"

        async def make() -> tuple[AsyncCacheManager, AsyncCacheManager, AsyncCacheManager]:
            def tier(family: str) -> AsyncRedisTier:
                return AsyncRedisTier(conf, prefix=self.ns(family))

            return (
                AsyncCacheManager(local=LocalCache(L1_SIZE), remote=tier("a1")),
                AsyncCacheManager(remote=tier("ar")),
                AsyncCacheManager(local=LocalCache(L1_SIZE), remote=tier("af")),
            )

        m_l1, m_remote, m_front = self.in_loop(fam, make())
        self.notes["novacache (asyncio)"] = (
            "AsyncCacheManager over AsyncRedisTier(url, prefix=...), its defaults"
            f" (ConnectionPool of {conf.max_connections} + a semaphore), Codec() (msgpack)"
        )
        for m in (m_l1, m_remote, m_front):
            self._closers.append(functools.partial(self._aclose, fam, m.close))

        table = dict(enumerate(values))

        async def plain(i: int) -> dict[str, Any]:  # the baseline: no cache
            return table[i]

        async def aplain(i: int) -> dict[str, Any]:  # the same, to be decorated
            return table[i]

        cached = m_l1.cached(ttl=TTL)(aplain)

        async def fill_l1() -> None:
            await m_l1.clear()
            for i in range(n):
                await m_l1.set(names[i], values[i], TTL)
                await cached(i)

        def fill(m: AsyncCacheManager, f: str) -> Callable[[], None]:
            async def run() -> None:
                for i in range(n):
                    await m.set(names[i], values[i], TTL)

            return lambda: self.in_loop(f, run())

        d_l1 = Dataset("a1", lambda: self.in_loop(fam, fill_l1()))
        d_remote, d_front = Dataset("ar", fill(m_remote, fam)), Dataset("af", fill(m_front, fam))
        ints = list(range(n))
        rep = self.repeat

        self._loop_case(
            "cached-l1-async", "baseline", "await f(k): the async def itself, no cache",
            "reference", plain, ints, "await c(k)", family="baseline", repeat=rep,
        )  # fmt: skip
        self._loop_case(
            "cached-l1-async", "novacache", f"AsyncCacheManager.cached(ttl={TTL:g}), L1 + Redis",
            "novacache", cached, ints, "await c(k)", family=fam, repeat=rep, data=(d_l1,),
        )  # fmt: skip

        async def load() -> Any:
            raise RuntimeError("the loader ran on what should be an L1 hit")

        self._loop_case(
            "get-or-load-l1-async", "manager.get", "await AsyncCacheManager.get(k), L1 hit",
            "reference", m_l1, names, "await c.get(k)", family=fam, repeat=rep, data=(d_l1,),
        )  # fmt: skip
        self._loop_case(
            "get-or-load-l1-async", "novacache",
            f"await AsyncCacheManager.get_or_load(k, load, {TTL:g})", "novacache", m_l1,
            names, "await c.get_or_load(k, load, ttl)", family=fam, repeat=rep,
            extras={"load": load, "ttl": TTL}, data=(d_l1,),
        )  # fmt: skip

        # The floor: redis.asyncio like the async tier's client (a ConnectionPool of the
        # same size, and the tier's semaphore: that pool raises when every connection
        # is busy, the tier's tasks wait for one).
        codec = Codec()
        ffam = "floor"
        retry = redis.asyncio.retry.Retry(
            EqualJitterBackoff(cap=conf.backoff_cap, base=conf.backoff_base), conf.retries
        )

        async def make_floor() -> tuple[Any, Any, asyncio.Semaphore]:
            client = redis.asyncio.Redis(
                host=conf.host,
                port=conf.port,
                db=conf.db,
                username=conf.username,
                password=conf.password,
                max_connections=conf.max_connections,
                retry=retry,
                socket_timeout=conf.timeout,
                socket_connect_timeout=conf.connect_timeout,
                client_name="novacache-bench-floor",
                decode_responses=False,
            )
            blocking = redis.asyncio.Redis(
                connection_pool=redis.asyncio.BlockingConnectionPool(
                    host=conf.host,
                    port=conf.port,
                    db=conf.db,
                    username=conf.username,
                    password=conf.password,
                    max_connections=conf.max_connections,
                    timeout=conf.timeout,
                    socket_timeout=conf.timeout,
                    socket_connect_timeout=conf.connect_timeout,
                    client_name="novacache-bench-floor-blocking",
                    decode_responses=False,
                ),
                retry=retry,
            )
            return client, blocking, asyncio.Semaphore(conf.max_connections)

        client, blocking, gate = self.in_loop(ffam, make_floor())
        self._closers.append(functools.partial(self._aclose, ffam, client.aclose))
        self._closers.append(functools.partial(self._aclose, ffam, blocking.aclose))

        async def fget(rk: bytes) -> Any:
            async with gate:
                return await client.get(rk)

        async def fset(rk: bytes, frame: bytes) -> Any:
            async with gate:
                return await client.set(rk, frame, px=ms)

        floor_ns = self.ns("af-floor")
        raw = [(floor_ns + k).encode() for k in names]
        raw_set = [(floor_ns + k).encode() for k in self.set_names]

        async def fill_floor() -> None:
            now = time.time()
            for i in range(n):
                await client.set(raw[i], codec.encode(names[i], seal(values[i], TTL, now)), px=ms)

        d_floor = Dataset("afloor", lambda: self.in_loop(ffam, fill_floor()))
        floor_items = list(zip(names, raw, strict=True))
        dec = {"dec": codec.decode}
        self.notes["floor (asyncio)"] = (
            f"redis.asyncio.Redis(max_connections={conf.max_connections}) (a ConnectionPool,"
            " as AsyncRedisTier's) behind an asyncio.Semaphore of the same size, as the tier"
            " waits for a free connection; GET prefix+key, then Codec.decode. Info rows: no"
            " semaphore; a BlockingConnectionPool of the same size"
        )
        self._loop_case(
            "get-redis-async", "floor", "redis.asyncio GET + Codec.decode", "reference", fget,
            floor_items, "dec(k, await c(rk))[3]", target="k, rk", extras=dec, family=ffam,
            data=(d_floor,),
        )  # fmt: skip
        self._loop_case(
            "get-redis-async", "floor, no gate", "redis.asyncio GET + Codec.decode, no semaphore",
            "info", client, floor_items, "dec(k, await c.get(rk))[3]", target="k, rk",
            extras=dec, family=ffam, data=(d_floor,),
        )  # fmt: skip
        self._loop_case(
            "get-redis-async", "novacache", "await AsyncCacheManager.get(k), Redis only",
            "novacache", m_remote, names, "await c.get(k)", family=fam, data=(d_remote,),
        )  # fmt: skip
        self._loop_case(
            "get-redis-l1-async", "redis-only", "await AsyncCacheManager.get(k), Redis only",
            "reference", m_remote, names, "await c.get(k)", family=fam, data=(d_remote,),
        )  # fmt: skip
        self._front_case("get-redis-l1-async", m_front, names, fam, (d_front,))

        frames = [codec.encode(k, seal(v, TTL, time.time())) for k, v in zip(
            self.set_names, values, strict=True)]  # fmt: skip
        admin = self.admin()
        self._loop_case(
            "set-async", "floor, pre-encoded", "redis.asyncio SET of a frame encoded before (PX)",
            "info",
            fset, list(zip(raw_set, frames, strict=True)), "await c(rk, f)", target="rk, f",
            family=ffam, verify=self._set_verify(lambda i: admin.get(raw_set[i]), frames,
                                                 lambda i: raw_set[i], True),
        )  # fmt: skip
        self._loop_case(
            "set-async", "floor", "redis.asyncio SET of Codec.encode(seal(v)) (PX)",
            "reference", fset, list(zip(self.set_names, raw_set, values, strict=True)),
            "await c(rk, enc(k, seal(v, ttl, now())))", target="k, rk, v",
            extras={"enc": codec.encode, "seal": seal, "ttl": TTL, "now": time.time},
            family=ffam, verify=self._set_verify(
                lambda i: codec.decode(self.set_names[i], admin.get(raw_set[i]))[3],
                values, lambda i: raw_set[i], True),
        )  # fmt: skip
        ar_ns = self.ns("ar")
        self._loop_case(
            "set-async", "novacache", f"await AsyncCacheManager.set(k, v, {TTL:g}), Redis only",
            "novacache", m_remote, list(zip(self.set_names, values, strict=True)),
            "await c.set(k, v, ttl)", target="k, v", extras={"ttl": TTL}, family=fam,
            verify=self._set_verify(
                lambda i: self.in_loop(fam, m_remote.get(self.set_names[i])), values,
                lambda i: ar_ns + self.set_names[i], "report-ok"),
        )  # fmt: skip

        # 100 tasks.
        self._tasks_case(
            "floor", "redis.asyncio GET + Codec.decode", "reference", ffam, fget, floor_items,
            "dec(k, await c(rk))[3]", target="k, rk", extras=dec, data=(d_floor,),
        )  # fmt: skip
        self._tasks_case(
            "floor, blocking pool", "redis.asyncio BlockingConnectionPool GET + Codec.decode",
            "info", ffam, blocking, floor_items, "dec(k, await c.get(rk))[3]", target="k, rk",
            extras=dec, data=(d_floor,),
        )  # fmt: skip
        self._tasks_case(
            "novacache", "await AsyncCacheManager.get(k), Redis only", "novacache", fam,
            m_remote, names, "await c.get(k)", data=(d_remote,),
        )  # fmt: skip

    def _aclose(self, family: str, close: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            self.in_loop(family, close())

    # -- peers --------------------------------------------------------------------------

    def _peers(self) -> None:
        builders = {
            "dogpile.cache": self._dogpile,
            "cashews": self._cashews,
            "cashews client_side": self._cashews_cs,
            "aiocache": self._aiocache,
        }
        for name in PEER_NAMES:
            build = builders[name]
            rows = [row.id for row in ROWS if name in row.entries]
            dist = name.split()[0]
            if not installed(dist):
                self._absent(rows, name, name, "not installed")
                continue
            self.progress(f"manager: setting up {name}")
            kept = len(self.cases)
            try:
                build()
                for case in self.cases[kept:]:
                    for data in case.data:
                        data.ensure()
            except Exception as exc:
                del self.cases[kept:]
                self._absent(rows, name, name, f"setup failed: {type(exc).__name__}: {exc}"[:160])

    def _dogpile(self) -> None:
        pool = self._sync_pool("novacache-bench-dogpile")
        peer = dogpile_region(pool, TTL)
        self._closers.append(peer.close)
        self.notes[peer.name] = peer.note
        region, values, n = peer.obj, self.values, self.n
        keys = [self.ns("dp") + k for k in self.names]
        set_keys = [self.ns("dp") + k for k in self.set_names]

        def fill() -> None:
            for i in range(n):
                region.set(keys[i], values[i])

        data = (Dataset("dogpile", fill),)
        self._loop_case(
            "get-redis-sync", peer.name, "region.get(k)", "peer", region, keys, "c.get(k)",
            data=data,
        )  # fmt: skip
        self._loop_case(
            "set-sync", peer.name, "region.set(k, v)", "peer", region,
            list(zip(set_keys, values, strict=True)), "c.set(k, v)", target="k, v",
            verify=self._set_verify(lambda i: region.get(set_keys[i]), values,
                                    lambda i: set_keys[i], None),
        )  # fmt: skip
        self._threads_case(peer.name, "region.get(k)", "peer", region, keys, "c.get(k)", data=data)

    def _cashews(self) -> None:
        fam = "cashews"
        size = self._config().max_connections
        make = _call(cashews_cache, self.target, client_side=False, max_connections=size)
        peer: Peer = self.in_loop(fam, make)
        self._closers.append(functools.partial(self._aclose, fam, peer.close))
        self.notes[peer.name] = peer.note
        self._async_peer(fam, peer, "expire", tasks=True)

    def _aiocache(self) -> None:
        fam = "aiocache"
        peer: Peer = self.in_loop(fam, _call(aiocache_cache, self.target, self.ns("ai")[:-1]))
        self._closers.append(functools.partial(self._aclose, fam, peer.close))
        self.notes[peer.name] = peer.note
        self._async_peer(fam, peer, "ttl", tasks=True)

    def _async_peer(self, fam: str, peer: Peer, ttl_kw: str, *, tasks: bool) -> None:
        """The get, set (and 100 tasks) rows of an asyncio peer (cashews, aiocache)."""
        cache, values, n = peer.obj, self.values, self.n
        prefix = self.ns(fam[:2]) if fam != "aiocache" else ""
        keys = [prefix + k for k in self.names]
        set_keys = [prefix + k for k in self.set_names]
        ttl = {ttl_kw: TTL}

        async def fill_all() -> None:
            for i in range(n):
                await cache.set(keys[i], values[i], **ttl)

        data = (Dataset(fam, lambda: self.in_loop(fam, fill_all())),)
        self._loop_case(
            "get-redis-async", peer.name, "await cache.get(k)", "peer", cache, keys,
            "await c.get(k)", family=fam, data=data,
        )  # fmt: skip
        self._loop_case(
            "set-async", peer.name, f"await cache.set(k, v, {ttl_kw}={TTL:g})", "peer", cache,
            list(zip(set_keys, values, strict=True)), f"await c.set(k, v, {ttl_kw}=ttl)",
            target="k, v", extras={"ttl": TTL}, family=fam,
            verify=self._set_verify(lambda i: self.in_loop(fam, cache.get(set_keys[i])), values,
                                    lambda i: peer.raw_key(set_keys[i]), True),
        )  # fmt: skip
        if tasks:
            self._tasks_case(
                peer.name, "await cache.get(k)", "peer", fam, cache, keys, "await c.get(k)",
                data=data,
            )  # fmt: skip

    def _cashews_cs(self) -> None:
        fam = "cashews-cs"
        size = self._config().max_connections
        make = _call(cashews_cache, self.target, client_side=True, max_connections=size)
        peer: Peer = self.in_loop(fam, make)
        self._closers.append(functools.partial(self._aclose, fam, peer.close))
        self.notes[peer.name] = peer.note
        cache, backend, values, n = peer.obj, peer.backend, self.values, self.n
        local = getattr(backend, "_local_cache", None)
        if local is None:
            raise RuntimeError("cashews' client-side backend has no _local_cache to clear")
        prefix = self.ns("cc")
        keys = [prefix + k for k in self.names]
        set_keys = [prefix + k for k in self.set_names]
        dec_keys = [f"{prefix}dec:{i}" for i in range(n)]

        async def undecorated(i: int) -> dict[str, Any]:
            return values[i]

        # As a user writes ``@cache(ttl=..., key=...)`` above the function.
        plain: Any = cache(ttl=TTL, key=prefix + "dec:{i}")(undecorated)

        async def fill_all() -> None:
            for i in range(n):
                await cache.set(keys[i], values[i], expire=TTL)
                await cache.delete(dec_keys[i])
                await plain(i)

        data = (Dataset(fam, lambda: self.in_loop(fam, fill_all())),)
        data[0].ensure()
        started = getattr(backend, "_listen_started", None)
        if started is None or not started.is_set():
            # Then every get would go to Redis: not the client-side cache it claims to be.
            raise RuntimeError("cashews' client-side invalidation listener did not start")
        ints = list(range(n))
        self._loop_case(
            "cached-l1-async", peer.name, f"@cache(ttl={TTL:g}, key=...) hit, client_side",
            "peer", plain, ints, "await c(k)", family=fam, repeat=self.repeat, data=data,
        )  # fmt: skip
        self._loop_case(
            "get-redis-l1-async", peer.name, "await cache.get(k), local cache cleared",
            "peer", cache, keys, "await c.get(k)", family=fam, data=data,
            before=lambda: self.in_loop(fam, local.clear()),
        )  # fmt: skip
        self._loop_case(
            "set-async", peer.name, f"await cache.set(k, v, expire={TTL:g}), client_side",
            "peer", cache, list(zip(set_keys, values, strict=True)),
            "await c.set(k, v, expire=ttl)", target="k, v", extras={"ttl": TTL}, family=fam,
            verify=self._set_verify(
                lambda i: self._unpickled(self.admin().get(peer.raw_key(set_keys[i]))),
                values, lambda i: peer.raw_key(set_keys[i]), True),
        )  # fmt: skip

    @staticmethod
    def _unpickled(raw: bytes | None) -> Any:
        """A cashews value read from Redis directly (without ``secret`` its frame is the
        bare pickle); ``None`` when absent."""
        import pickle

        return None if raw is None else pickle.loads(raw)

    # -- the end ------------------------------------------------------------------------

    def close(self) -> None:
        """Close every client and event loop; on an external server, delete our keys."""
        for close in reversed(self._closers):
            try:
                close()
            except Exception as exc:  # a peer's close must not hide the results
                self.progress(f"manager: closing failed: {type(exc).__name__}: {exc}")
        self._closers.clear()
        for loop in self.loops.values():
            asyncio.set_event_loop(loop)
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
        self.loops.clear()
        asyncio.set_event_loop(None)
        if self._admin is not None:
            if self.external:
                keys = list(self._admin.scan_iter(match=f"*{self.run_id}:*", count=1000))
                for i in range(0, len(keys), 500):
                    self._admin.unlink(*keys[i : i + 500])
            self._admin.close()
            self._admin = None


async def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` from inside a running event loop."""
    return fn(*args, **kwargs)
