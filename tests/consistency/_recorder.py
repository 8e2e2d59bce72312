"""The recorder harness: N processes (spawn) run reads and writes of a few keys on real
``CacheManager`` s over a real redis-server; every operation is recorded with
``time.monotonic_ns()`` before the call and after it returns (CLOCK_MONOTONIC is one
clock for every process on Linux, so the intervals compare across processes), and the
histories are gathered as :class:`~novacache.consistency.checker.Op` s for the checker.

A write writes a value no other op writes (``"<worker>-<n>"``), so a read names the
write it saw. A call that raised is recorded with its outcome: a read as ``failed``
(it constrains nothing), a write as ``failed`` when the error says nothing was sent
(``ConsistencyUnavailable.applied is False``), else as ``unknown`` (it may have taken
effect: the checker lets it apply at any time after its start).
"""

from __future__ import annotations

import multiprocessing
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from typing import Any

from novacache import LocalCache
from novacache.breaker import CircuitBreaker
from novacache.consistency.checker import Op
from novacache.errors import ConsistencyUnavailable, TierError
from novacache.manager import CacheManager
from novacache.tiers import RedisTier

Row = tuple[Any, ...]


@dataclass(frozen=True)
class Plan:
    """What every worker does: ``ops`` operations at most (fewer when the run is
    stopped), on ``keys`` under ``prefix``, with the model ``mode`` for them."""

    url: str
    ns: str
    mode: str  # "eventual", "strong", "session" or "monotonic"
    keys: tuple[str, ...] = ("k:a", "k:b", "k:c")
    ops: int = 200
    reads: float = 0.6  # the share of reads
    pause: float = 0.0005  # seconds between two ops of a worker
    seed: int = 0
    resume: float = 0.05  # session mode: chance per op to resume the session from its token
    deletes: float = 0.0  # the share of writes that are deletes
    cooldown: float = 0.25  # the Redis tier's breaker: seconds open before it probes
    options: dict[str, Any] = field(default_factory=dict)  # more RedisTier options


def _manager(plan: Plan) -> CacheManager:
    remote = RedisTier(
        plan.url,
        prefix=plan.ns,
        timeout=0.25,
        connect_timeout=0.25,
        breaker=CircuitBreaker(cooldown=plan.cooldown),
        **plan.options,
    )
    consistency = None if plan.mode == "eventual" else {"k:": plan.mode}
    return CacheManager(local=LocalCache(1000), remote=remote, consistency=consistency)


def worker(
    conn: Connection,
    plan: Plan,
    index: int,
    go: Event,
    stop: Event,
    done: Synchronized[int],
    ok: Synchronized[int],
) -> None:
    """One process of the run: wait for ``go``, run the plan, send back its rows (and
    count each op that ended in ``done``, each that succeeded in ``ok``)."""
    rnd = random.Random(plan.seed * 1000 + index)
    rows: list[Row] = []
    with _manager(plan) as m:
        for key in plan.keys:
            m.get(key)  # connect (and fill L1) before the run starts
        conn.send("ready")
        if not go.wait(30):
            conn.send(rows)
            return
        session = m.session() if plan.mode == "session" else None
        sid = f"s{index}" if session is not None else None
        for n in range(plan.ops):
            if stop.is_set():
                break
            key = rnd.choice(plan.keys)
            if session is not None and rnd.random() < plan.resume:
                session = m.session(session.token)  # the same session, resumed
            target: Any = session if session is not None else m
            value: Any = None
            if rnd.random() < plan.reads:
                kind = "read"
            elif rnd.random() < plan.deletes:
                kind = "delete"
            else:
                kind, value = "write", f"{index}-{n}"
            status, error = "ok", ""
            start = time.monotonic_ns()
            try:
                if kind == "read":
                    value = target.get(key)
                elif kind == "write":
                    target.set(key, value)
                else:
                    target.delete(key)
            except ConsistencyUnavailable as exc:
                error = f"{type(exc).__name__}: {exc}"
                status = "failed" if kind == "read" or exc.applied is False else "unknown"
            except TierError as exc:
                error = f"{type(exc).__name__}: {exc} {getattr(exc, 'failed', '')}"
                # PartialWrite of a write below the strong model: it may have applied. A
                # strong op raises nothing but ConsistencyUnavailable (the worker fails).
                if plan.mode == "strong":
                    raise
                status = "failed" if kind == "read" else "unknown"
            end = time.monotonic_ns()
            rows.append((index, kind, key, value, start, end, status, sid, error))
            with done.get_lock():
                done.value += 1
            if status == "ok":
                with ok.get_lock():
                    ok.value += 1
            if plan.pause:
                time.sleep(plan.pause)
    conn.send(rows)


def run(
    plan: Plan,
    workers: int = 4,
    during: Callable[[Callable[[], tuple[int, int]]], None] | None = None,
    timeout: float = 60.0,
    errors: list[str] | None = None,
) -> list[Op]:
    """Run ``workers`` processes on ``plan`` and return their merged history (the
    text of each error an op raised is appended to ``errors``).

    ``during`` (a fault, e.g. kill and restart Redis) runs in this thread once every
    worker has started, given a function that says how many ops of all workers ended
    so far and how many of them succeeded (to wait for ops rather than for a time a
    loaded machine may not give them);
    the workers are stopped when it returns (or when they finish their ``ops``)."""
    ctx = multiprocessing.get_context("spawn")
    go, stop = ctx.Event(), ctx.Event()
    done, ok = ctx.Value("q", 0), ctx.Value("q", 0)
    pipes: list[Connection] = []
    children = []
    for index in range(workers):
        ours, theirs = ctx.Pipe()
        child = ctx.Process(
            target=worker, args=(theirs, plan, index, go, stop, done, ok), daemon=True
        )
        child.start()
        pipes.append(ours)
        children.append(child)
    rows: list[Row] = []
    try:
        for ours in pipes:
            assert ours.poll(timeout), "a worker did not start"
            assert ours.recv() == "ready"
        go.set()
        if during is not None:
            # Note that the fault runs in this thread: a redis-server it restarts dies
            # with the thread that started it (PR_SET_PDEATHSIG), so not in a helper.
            try:
                during(lambda: (int(done.value), int(ok.value)))
            finally:
                stop.set()
        for ours in pipes:
            assert ours.poll(timeout), "a worker did not finish"
            rows += ours.recv()
    finally:
        stop.set()
        for child in children:
            child.join(10)
            if child.is_alive():
                child.kill()
    assert [child.exitcode for child in children] == [0] * workers
    if errors is not None:
        errors += [row[-1] for row in rows if row[-1]]
    return [
        Op(f"p{p}", kind, key, value, start, end, status, session=sid)
        for p, kind, key, value, start, end, status, sid, _ in rows
    ]


def resume_and_read(conn: Connection, url: str, ns: str, key: str, session_key: bytes) -> None:
    """A process of its own: read ``key`` (into its L1) and send it; then receive a
    session token, read ``key`` plainly and in the resumed session, and send both."""
    models = {"acct:": "strong", "user:": "session", "feed:": "monotonic"}
    remote = RedisTier(url, prefix=ns)
    with CacheManager(
        local=LocalCache(100), remote=remote, consistency=models, session_key=session_key
    ) as m:
        conn.send(m.get(key))
        if not conn.poll(30):
            return
        token = conn.recv()
        plain = m.get(key)
        with m.session(token) as s:
            conn.send((plain, s.get(key)))
