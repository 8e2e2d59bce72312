"""One soak process: ``python -m novacache.benchmark.soak.worker CONFIG INDEX``.

It builds one :class:`~novacache.CacheManager` as an application would (L1
``LocalCache`` + Redis + SQLite on the run's shared file + the
:class:`~novacache.manager.InvalidationBus`), waits for the runner's start signal, and
runs its threads until the stop signal: 70 % ``get_or_load`` of any key, 20 % ``set``
of a new version and 10 % ``delete`` of a key the thread owns (one writer per key). Every
operation is recorded (:mod:`.shared`) to one file per thread; a summary (exceptions,
RSS over time, counters) is written at the end.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ... import CacheManager, LocalCache
from ...manager import InvalidationBus
from ...tiers import RedisTier, SQLiteTier
from . import shared as S
from .server import rss

__all__ = ["main"]

_BATCH = 64  # operations between two looks at the stop signal
_BUFFERED = 2048  # records kept before they are written to the thread's file

_where = threading.local()


class _TracedRedis(RedisTier):
    """The Redis tier, noting in the calling thread that a read found a frame here."""

    def get(self, key: str) -> bytes | None:
        frame = super().get(key)
        if frame is not None and _where.source == S.L1:
            _where.source = S.REDIS
        return frame


class _TracedSQLite(SQLiteTier):
    """The SQLite tier, noting in the calling thread that a read found a frame here."""

    def get(self, key: str) -> bytes | None:
        frame = super().get(key)
        if frame is not None and _where.source == S.L1:
            _where.source = S.SQLITE
        return frame


def _pick(rng: random.Random, n: int) -> int:
    """An index below ``n``: 80 % of the picks among the first fifth (the hot keys)."""
    if rng.random() < 0.8:
        return rng.randrange(max(1, n // 5))
    return rng.randrange(n)


class _Thread:
    def __init__(
        self,
        index: int,
        manager: CacheManager,
        config: dict[str, Any],
        process: int,
        control: S.Control,
        db: S.Database,
        errors: Counter[str],
    ) -> None:
        self.manager = manager
        self.control = control
        self.db = db.versions
        self.errors = errors
        self.process = process
        n_keys: int = config["keys"]
        writers = config["processes"] * config["threads"]
        me = process * config["threads"] + index
        self.keys = [f"k{i}" for i in range(n_keys)]
        self.own = [i for i in range(n_keys) if i % writers == me]
        self.rng = random.Random(config["seed"] * 1_000_003 + me)
        self.versions = dict.fromkeys(self.own, 0)
        self.path = Path(config["records"]) / f"p{process}-t{index}.bin"
        self.count = 0
        self.read_errors = 0
        self.failed: set[str] = set()

    def run(self) -> None:
        try:
            self._run()
        except BaseException:  # a crash of the harness, not of a read: report it
            self.errors["harness:" + traceback.format_exc(limit=3)] += 1

    def _run(self) -> None:
        control, stop = self.control, S.STOP
        buf = bytearray(S.RECORD.size * _BUFFERED)
        used = 0
        n_keys = len(self.keys)
        n_own = len(self.own)
        rng = self.rng
        with open(self.path, "wb") as out:
            while not control.get(stop):
                for _ in range(_BATCH):
                    r = rng.random()
                    if r < 0.7 or not n_own:
                        rec = self._read(_pick(rng, n_keys))
                    else:
                        idx = self.own[_pick(rng, n_own)]
                        rec = self._write(idx, S.SET if r < 0.9 else S.DELETE)
                    S.RECORD.pack_into(buf, used, *rec)
                    used += S.RECORD.size
                    if used == len(buf):
                        out.write(buf)
                        used = 0
                self.count += _BATCH  # the process's main thread publishes the sum
            out.write(buf[:used])

    def _read(self, idx: int) -> tuple[int, int, int, int, int, float, float]:
        db = self.db

        def load() -> list[int]:
            if _where.source == S.L1:
                _where.source = S.LOADER
            return [db[idx], idx]

        _where.source = S.L1
        flags = 0
        version = S.NO_VERSION
        start = time.monotonic()
        try:
            value = self.manager.get_or_load(self.keys[idx], load)
        except Exception as exc:
            end = time.monotonic()
            flags = S.RAISED
            self.errors[f"read:{type(exc).__name__}: {exc}"[:200]] += 1
            self.read_errors += 1
        else:
            end = time.monotonic()
            if type(value) is list and len(value) == 2 and value[1] == idx:
                version = int(value[0])
            else:
                flags = S.BAD_VALUE
        return (S.READ, _where.source, flags, idx, version, start, end)

    def _write(self, idx: int, kind: int) -> tuple[int, int, int, int, int, float, float]:
        v = self.versions[idx] + 1
        self.versions[idx] = v
        signed = v if kind == S.SET else -v
        failed = self.failed
        failed.clear()
        flags = 0
        start = time.monotonic()
        self.db[idx] = signed  # the source of truth first, then the cache
        try:
            if kind == S.SET:
                report = self.manager.set(self.keys[idx], [signed, idx])
                failed.update(report.failed)
            else:
                self.manager.delete(self.keys[idx])
        except Exception as exc:
            flags |= S.RAISED
            self.errors[f"write:{type(exc).__name__}: {exc}"[:200]] += 1
        end = time.monotonic()
        if "remote" in failed:
            flags |= S.REMOTE_FAILED
        elif not flags:
            flags |= S.REMOTE_OK
            self.control.put(self.control.of(self.process, S.REMOTE_OK_AT), end)
        flags |= S.STORE_FAILED if "store" in failed else (0 if flags & S.RAISED else S.STORE_OK)
        if "bus" in failed:
            flags |= S.BUS_FAILED
        return (kind, 0, flags, idx, signed, start, end)


def build_manager(config: dict[str, Any], on_error: Callable[..., None] | None) -> CacheManager:
    """The manager of one soak process, as the scenario describes it."""
    remote = _TracedRedis(config["url"], prefix=config["prefix"])
    store = _TracedSQLite(config["sqlite"])
    return CacheManager(
        local=LocalCache(config["l1_size"]),
        remote=remote,
        store=store,
        bus=InvalidationBus(remote),
        on_write_error="report",
        on_error=on_error,
    )


def main(argv: list[str]) -> int:
    config: dict[str, Any] = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    process = int(argv[1])
    control = S.Control(Path(config["control"]), config["processes"])
    db = S.Database(Path(config["database"]), config["keys"])
    errors: Counter[str] = Counter()
    threads: list[_Thread] = []
    local_failed = threading.local()

    def on_error(op: str, slot: str, exc: BaseException) -> None:
        failed = getattr(local_failed, "failed", None)
        if failed is not None:
            failed.add(slot)

    manager = build_manager(config, on_error)
    bus = manager.bus
    deadline = time.monotonic() + 60
    while bus is not None and not bus.healthy and time.monotonic() < deadline:
        time.sleep(0.01)
    for t in range(config["threads"]):
        threads.append(_Thread(t, manager, config, process, control, db, errors))
    control.put(control.of(process, S.READY), 1.0)
    while not control.get(S.GO):
        if control.get(S.STOP):
            return 1
        time.sleep(0.005)

    def run(worker: _Thread) -> None:
        local_failed.failed = worker.failed  # the on_error hook fills the op's set
        worker.run()

    running = [threading.Thread(target=run, args=(w,), daemon=True) for w in threads]
    for thread in running:
        thread.start()
    samples: list[tuple[float, int]] = []
    ops_slot, errors_slot = control.of(process, S.OPS), control.of(process, S.READ_ERRORS)
    while not control.get(S.STOP):  # one writer per slot: each thread counts its own
        samples.append((time.monotonic(), rss()))
        control.put(ops_slot, sum(w.count for w in threads))
        control.put(errors_slot, sum(w.read_errors for w in threads))
        time.sleep(0.5)
    for thread in running:
        thread.join(60)
    samples.append((time.monotonic(), rss()))
    stats = {"l1_skipped": manager.stats.l1_skipped}
    bus_stats = {}
    if bus is not None:
        bus_stats = {
            "flushes": bus.flushes,
            "received": bus.received,
            "published": bus.published,
            "publish_errors": bus.publish_errors,
        }
    manager.close()
    summary = {
        "process": process,
        "ops": sum(w.count for w in threads),
        "errors": dict(errors),
        "rss": samples,
        "bus": bus_stats,
        "manager": stats,
        "alive_threads": sum(t.is_alive() for t in running),
    }
    path = Path(config["records"]) / f"p{process}.json"
    path.write_text(json.dumps(summary), encoding="utf-8")
    control.close()
    db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
