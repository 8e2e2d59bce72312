"""Batching (size, interval, close, backpressure, one round trip per tier, errors per
batch, threads) and smart refresh (hot keys reloaded in place, cold ones dropped, the
pool bound, loader errors, a newer event) with the synchronous engine."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from manager._support import Counting, live, prefix
from novacache import LocalCache
from novacache.errors import ConfigurationError
from novacache.invalidation import EmitReport, InvalidationEngine, SmartRefresh
from novacache.manager import CacheManager
from novacache.tiers import RedisTier, SQLiteTier
from tiers.redis_servers import Standalone, free_port, wait_until


def _calls(client: redis.Redis, command: str) -> int:
    """How many ``command`` calls the server ran, not counting refused ones: the first
    pipeline a server gets a script in is refused (NOSCRIPT, a failed call) and sent
    again once the script is loaded, so a run of this file alone on a fresh server
    counts the same as one after other tests loaded the scripts."""
    stats = client.info("commandstats").get(f"cmdstat_{command}", {})
    return int(stats.get("calls", 0)) - int(stats.get("failed_calls", 0))


def _redis_manager(server: Standalone, tmp_path: Path) -> tuple[CacheManager, Counting]:
    store = Counting(SQLiteTier(tmp_path / "s.db"))
    m = CacheManager(
        local=LocalCache(10_000),
        remote=RedisTier(server.url, prefix=prefix()),
        store=store,  # type: ignore[arg-type]
    )
    return m, store


def test_a_batch_is_one_round_trip_per_level(redis_standalone: Standalone, tmp_path: Path) -> None:
    """Over Redis a batch goes level by level: the keys it names are dropped in the
    round trip that reads the index (their patterns and dependents: one script call),
    the keys found in the next one with the read of their own dependents; each round
    trip is one call of the Redis tier (a script call for the tombstones, one for the
    index), one delete of the store."""
    admin = redis.Redis.from_url(redis_standalone.url)
    m, store = _redis_manager(redis_standalone, tmp_path)
    with m:
        engine = InvalidationEngine(m)
        engine.rule("vm.gone", keys=["vm:{vm_id}"], patterns=["vm:{vm_id}:*"])
        for i in range(40):
            m.set(f"vm:{i}", i)
            m.set(f"vm:{i}:cpu", i)
        batch = engine.batch(max_size=10_000, interval=60)
        sets, scripts = _calls(admin, "set"), _calls(admin, "evalsha")
        unlinks = _calls(admin, "unlink")
        bury = m.remote.tombstone_groups  # type: ignore[union-attr]
        buried: list[tuple[list[int], int]] = []

        def spy(groups: list[list[str]], frame: bytes, ttl: float, **kw: Any) -> list[int]:
            buried.append(([len(g) for g in groups], len(kw.get("riders", ()))))
            return bury(groups, frame, ttl, **kw)  # type: ignore[no-any-return]

        m.remote.tombstone_groups = spy  # type: ignore[union-attr]
        store.calls.clear()
        for i in range(40):
            batch.emit("vm.gone", vm_id=i)
        assert len(batch) == 80
        report = batch.flush()
        assert isinstance(report, EmitReport)
        assert len(report.keys) == 80
        assert report.ok
        # the 40 keys named, with the read of the 40 pattern sets and their dependents;
        # then the 40 keys the patterns found, with the read of their dependents
        assert buried == [([40], 1), ([40], 1)]
        assert _calls(admin, "set") - sets == 80  # a tombstone each (SET ... GET), as delete's
        assert _calls(admin, "unlink") == unlinks
        assert _calls(admin, "evalsha") - scripts == 2 + 2
        assert store.calls["delete_many"] == 2
        assert report.dropped == {"store": 80, "remote": 80, "local": 80}
        assert m.get_many([f"vm:{i}" for i in range(40)]) == {}
        assert m.get_many([f"vm:{i}:cpu" for i in range(40)]) == {}
        batch.close()
        assert engine.stats.counts["batches"] == 1


def test_a_full_queue_flushes_in_the_caller_and_nothing_is_dropped(tmp_path: Path) -> None:
    with CacheManager.embedded(tmp_path / "e.db") as m:
        engine = InvalidationEngine(m)
        for i in range(100):
            m.set(f"k:{i}", i)
        batch = engine.batch(max_size=7, interval=60)
        for i in range(100):
            batch.add([f"k:{i}"])
            assert len(batch) < 7  # never more than max_size queued after a call
        batch.close()
        assert m.get_many([f"k:{i}" for i in range(100)]) == {}
        counts = engine.stats.counts
        assert counts["backpressure"] == 100 // 7
        assert counts["batches"] == 100 // 7 + 1


def test_the_interval_flushes_from_one_background_loop(tmp_path: Path) -> None:
    with CacheManager.embedded(tmp_path / "e.db") as m:
        engine = InvalidationEngine(m)
        seen: list[EmitReport] = []
        batch = engine.batch(max_size=1000, interval=0.05, on_flush=seen.append)
        threads = threading.active_count()
        for round_ in range(3):
            m.set(f"k:{round_}", 1)
            batch.add([f"k:{round_}"])
            wait_until(lambda r=round_: m.get(f"k:{r}") is None, 5, "the interval flush")  # type: ignore[misc]
        assert threading.active_count() <= threads + 1  # one loop, no thread per flush
        assert len(seen) == 3
        assert list(batch.reports) == seen
        batch.close()
        with pytest.raises(ConfigurationError):
            batch.add(["x"])


def test_close_flushes_what_is_queued(tmp_path: Path) -> None:
    with CacheManager.embedded(tmp_path / "e.db") as m:
        engine = InvalidationEngine(m)
        m.set("k", 1)
        batch = engine.batch(max_size=1000, interval=60)
        batch.add(["k"])
        report = batch.close()
        assert report is not None
        assert report.keys == {"k"}
        assert m.get("k") is None
        assert batch.close() is None  # harmless to repeat


def test_closing_the_manager_flushes_its_batches(tmp_path: Path) -> None:
    m = CacheManager.embedded(tmp_path / "e.db")
    engine = InvalidationEngine(m)
    m.set("k", 1)
    batch = engine.batch(max_size=1000, interval=60)
    batch.add(["k"])
    m.close()
    assert batch.reports[-1].keys == {"k"}
    with CacheManager.embedded(tmp_path / "e.db") as again:
        assert again.get("k") is None


def test_a_batch_reports_its_errors(tmp_path: Path, redis_base: Path) -> None:
    remote = RedisTier(f"redis://127.0.0.1:{free_port()}/0", prefix=prefix(), timeout=0.2,
                       retries=0)  # fmt: skip
    store = SQLiteTier(tmp_path / "s.db")
    with CacheManager(local=LocalCache(100), remote=remote, store=store,
                      on_write_error="report") as m:  # fmt: skip
        engine = InvalidationEngine(m)
        m.set("k", 1)
        batch = engine.batch(max_size=1000, interval=60)
        batch.add(["k"])
        report = batch.flush()
        assert report is not None
        assert "remote" in report.errors
        assert live(store.get("k")) is None  # the rest was done (a tombstone)
        assert engine.stats.counts["batch_errors"] == 1
        batch.close()


def test_threads_adding_at_once_lose_no_key(tmp_path: Path) -> None:
    with CacheManager.embedded(tmp_path / "e.db") as m:
        engine = InvalidationEngine(m)
        keys = [f"k:{t}:{i}" for t in range(8) for i in range(200)]
        m.set_many(dict.fromkeys(keys, 1))
        batch = engine.batch(max_size=64, interval=0.01)
        start = threading.Barrier(8)
        errors: list[BaseException] = []

        def work(t: int) -> None:
            try:
                start.wait()
                for i in range(200):
                    batch.add([f"k:{t}:{i}"])
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        batch.close()
        assert not errors
        assert m.get_many(keys) == {}
        assert m.store is not None
        assert live(m.store.get_many(keys)) == {}


# -- smart refresh -------------------------------------------------------------------------


class Source:
    """A loader whose value changes with each version, counting its calls."""

    def __init__(self, delay: float = 0.0) -> None:
        self.version = 1
        self.calls = 0
        self.delay = delay
        self.gate: threading.Event | None = None
        self.fail = False

    def __call__(self) -> dict[str, int]:
        self.calls += 1
        if self.gate is not None:
            self.gate.wait(5)
        if self.delay:
            time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("source down")
        return {"version": self.version}


def _read(m: CacheManager, key: str, source: Source, times: int) -> None:
    """``times`` reads through get_or_load that miss L1 (as after invalidations)."""
    assert m.local is not None
    for _ in range(times):
        m.local.pop(key, None)
        m.get_or_load(key, source, ttl=60)


def _smart_manager(tmp_path: Path, **options: object) -> tuple[CacheManager, InvalidationEngine]:
    m = CacheManager.embedded(tmp_path / "e.db")
    smart = SmartRefresh(horizon=10, cost_weight=2, min_rate=0.2, **options)  # type: ignore[arg-type]
    engine = InvalidationEngine(m, smart=smart)
    engine.rule("vm.changed", keys=["vm:{vm_id}"])
    return m, engine


def test_a_hot_key_is_reloaded_in_place_and_a_cold_one_dropped(tmp_path: Path) -> None:
    m, engine = _smart_manager(tmp_path)
    with m:
        hot, cold = Source(delay=0.01), Source(delay=0.01)
        _read(m, "vm:1", hot, 5)
        _read(m, "vm:2", cold, 1)
        m.set("vm:3", "never read through a loader")
        hot.version = cold.version = 2
        for vm in (1, 2, 3):
            report = engine.emit("vm.changed", vm_id=vm)
            assert report.refreshed == ({"vm:1"} if vm == 1 else set())
        assert m.store is not None
        assert m.store.get("vm:1") is not None  # readers of the hot key do not miss
        engine.wait_refreshes()
        assert m.get("vm:1") == {"version": 2}
        assert m.get("vm:2") is None
        assert m.get("vm:3") is None
        counts = engine.stats.counts
        assert counts["refreshes"] == 1
        assert engine.stats.by["smart"]["keys"] == 1


def test_the_refresh_pool_is_bounded_and_overflow_drops(tmp_path: Path) -> None:
    m, engine = _smart_manager(tmp_path, workers=1, max_pending=1)
    with m:
        a, b = Source(), Source()
        _read(m, "vm:1", a, 5)
        _read(m, "vm:2", b, 5)
        a.gate = threading.Event()
        first = engine.emit("vm.changed", vm_id=1)
        second = engine.emit("vm.changed", vm_id=2)
        assert first.refreshed == {"vm:1"}
        assert second.refreshed == set()
        assert m.get("vm:2") is None
        a.gate.set()
        engine.wait_refreshes()
        assert engine.stats.counts["refresh_overflow"] == 1


def test_a_failed_reload_drops_the_key(tmp_path: Path) -> None:
    seen: list[tuple[str, str]] = []
    m, engine = _smart_manager(tmp_path)
    m.on_error = lambda op, slot, exc: seen.append((op, slot))
    with m:
        source = Source()
        _read(m, "vm:1", source, 5)
        source.fail = True
        assert engine.emit("vm.changed", vm_id=1).refreshed == {"vm:1"}
        engine.wait_refreshes()
        assert m.get("vm:1") is None
        assert m.store is not None
        assert live(m.store.get("vm:1")) is None
        assert engine.stats.counts["refresh_errors"] == 1
        assert ("refresh", "loader") in seen


def test_a_reload_overtaken_by_a_newer_event_does_not_write(tmp_path: Path) -> None:
    m, engine = _smart_manager(tmp_path, workers=2)
    with m:
        source = Source()
        _read(m, "vm:1", source, 5)
        source.gate = threading.Event()
        before = source.calls
        engine.emit("vm.changed", vm_id=1)  # reload 1 waits on the gate
        wait_until(lambda: source.calls == before + 1, 5, "the first reload to start")
        engine.emit("vm.changed", vm_id=1)  # reload 2: the newer one
        source.version = 3
        source.gate.set()
        engine.wait_refreshes()
        assert engine.stats.counts["refresh_skipped"] == 1
        assert engine.stats.counts["refreshes"] == 1
        assert m.get("vm:1") == {"version": 3}


def test_a_reload_never_overwrites_a_set_made_while_it_ran(tmp_path: Path) -> None:
    """The refresh stores its value only over what the tiers held when it began
    (docs/consistency.md): a user's set made meanwhile wins, in L1 and in the store.
    Before, the refresh wrote unconditionally and replaced it."""
    m, engine = _smart_manager(tmp_path, workers=2)
    with m:
        source = Source()
        _read(m, "vm:1", source, 5)
        source.gate = threading.Event()
        before = source.calls
        engine.emit("vm.changed", vm_id=1)  # the reload waits on the gate
        wait_until(lambda: source.calls == before + 1, 5, "the reload to start")
        m.set("vm:1", {"version": 99})  # newer than what the reload will bring
        source.version = 2
        source.gate.set()
        engine.wait_refreshes()
        assert engine.stats.counts["refresh_refused"] == 1  # refused, and the set kept
        assert m.get("vm:1") == {"version": 99}
        assert m.local is not None
        m.local.clear()
        assert m.get("vm:1") == {"version": 99}


def test_the_tracker_is_bounded() -> None:
    smart = SmartRefresh(max_tracked=10)
    for i in range(1000):
        smart.accessed(f"k:{i}", lambda: 1, None, ())
    assert len(smart) == 10
    assert smart.rate("k:0") == 0.0
    assert smart.rate("k:999") > 0
    for bad in ({"max_tracked": 0}, {"horizon": 0}, {"min_rate": -1}, {"workers": True}):
        with pytest.raises(ConfigurationError):
            SmartRefresh(**bad)  # type: ignore[arg-type]
