"""Writes racing invalidations, across threads and processes on a real redis-server (and
an SQLite file): no index entry is lost, so an invalidation that starts after the last
write finds every key; an engine shared by threads keeps exact counts."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import pytest

from manager._support import live, prefix
from novacache import LocalCache
from novacache.invalidation import InvalidationEngine
from novacache.manager import CacheManager
from novacache.tiers import RedisTier, SQLiteTier
from tiers.redis_servers import Standalone

WRITERS = 4
ROUNDS = 150


def _manager(url: str, ns: str, db: Path) -> CacheManager:
    m = CacheManager(
        local=LocalCache(10_000), remote=RedisTier(url, prefix=ns), store=SQLiteTier(db)
    )
    engine = InvalidationEngine(m)
    engine.rule("vm.changed", patterns=["vm:{vm_id}:*"], keys=["vm:{vm_id}"])
    return m


def _all(m: CacheManager) -> dict[str, object]:
    keys = [f"vm:{v}:{w}:{i}" for v in range(3) for w in range(WRITERS) for i in range(ROUNDS)]
    found: dict[str, object] = {}
    for slot, tier in m._below:
        found.update({f"{slot}/{k}": v for k, v in live(tier.get_many(keys)).items()})
    return found


def test_threads_writing_while_events_fire_leave_nothing_after_the_last_event(
    redis_standalone: Standalone, tmp_path: Path
) -> None:
    m = _manager(redis_standalone.url, prefix(), tmp_path / "s.db")
    engine = m.invalidation
    assert isinstance(engine, InvalidationEngine)
    start = threading.Barrier(WRITERS + 1)
    done = threading.Event()
    errors: list[BaseException] = []

    def write(w: int) -> None:
        try:
            start.wait()
            for i in range(ROUNDS):
                m.set(f"vm:{i % 3}:{w}:{i}", i)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def fire() -> None:
        try:
            start.wait()
            n = 0
            while not done.is_set():
                engine.emit("vm.changed", vm_id=n % 3)
                n += 1
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    writers = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
    firing = threading.Thread(target=fire)
    for t in [*writers, firing]:
        t.start()
    for t in writers:
        t.join()
    done.set()
    firing.join()
    try:
        assert not errors
        for vm in range(3):
            engine.emit("vm.changed", vm_id=vm)
        assert _all(m) == {}
        counts = engine.stats.counts
        assert counts["index_writes"] == WRITERS * ROUNDS
        assert counts["index_errors"] == 0
    finally:
        m.close()


def _writer(url: str, ns: str, db: str, w: int, ready: multiprocessing.synchronize.Barrier) -> None:
    m = _manager(url, ns, Path(db))
    ready.wait()
    for i in range(ROUNDS):
        m.set(f"vm:{i % 3}:{w}:{i}", i)
    m.close()


def test_processes_writing_while_another_fires_events(
    redis_standalone: Standalone, tmp_path: Path
) -> None:
    ns = prefix()
    db = tmp_path / "s.db"
    m = _manager(redis_standalone.url, ns, db)
    engine = m.invalidation
    assert isinstance(engine, InvalidationEngine)
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Barrier(WRITERS + 1)
    procs = [
        ctx.Process(target=_writer, args=(redis_standalone.url, ns, str(db), w, ready))
        for w in range(WRITERS)
    ]
    for p in procs:
        p.start()
    try:
        ready.wait(timeout=60)
        n = 0
        while any(p.is_alive() for p in procs):
            engine.emit("vm.changed", vm_id=n % 3)
            n += 1
        for p in procs:
            p.join(30)
            assert p.exitcode == 0
        for vm in range(3):
            report = engine.emit("vm.changed", vm_id=vm)
            assert report.ok, report.errors
        assert _all(m) == {}
    finally:
        for p in procs:
            if p.is_alive():  # pragma: no cover - a hung child
                p.kill()
        m.close()


@pytest.mark.parametrize("threads", [8])
def test_dependencies_declared_from_threads_are_all_followed(
    redis_standalone: Standalone, tmp_path: Path, threads: int
) -> None:
    m = _manager(redis_standalone.url, prefix(), tmp_path / "s.db")
    engine = m.invalidation
    assert isinstance(engine, InvalidationEngine)
    m.set("root", 0)
    start = threading.Barrier(threads)

    def declare(t: int) -> None:
        start.wait()
        for i in range(50):
            m.set(f"leaf:{t}:{i}", i)
            engine.depends(f"leaf:{t}:{i}", on=["root"])

    workers = [threading.Thread(target=declare, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    try:
        report = engine.invalidate(["root"])
        assert len(report.keys) == threads * 50 + 1
        assert engine.stats.counts["edges"] == threads * 50
    finally:
        m.close()
